//! The resident's core behind `DoorClient`: session, device registration, the offline door
//! cache with its schedule decisions, doorcodes and guests. Unlocking and Door Sync build on
//! it.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use reqwest::Method;
use tracing::Instrument;

use crate::access_log;
use crate::api::wire::{self, GuestJson, InvitedGuest, MeJson, MyDoors, Tokens};
use crate::api::{ApiClient, ApiError, TokenSink};
use crate::ble::{BleError, Transport};
use crate::device;
use crate::diagnostics::short;
use crate::doors::{self, CachedDoor};
use crate::error::{CoreError, CoreResult};
use crate::signer::Signer;
use crate::store::{DoorsMeta, Store};
use crate::sync::{self, SyncReport};
use crate::unlock::{self, Stage, Unlocked, Unlocker};
use crate::unlock_slot::{Trigger, UnlockSlot};
use door_protocol::{Decision, UnixTime};

/// Something the app may want to show; delivered to the listener.
#[derive(Debug, Clone)]
pub enum Event {
    DoorsChanged,
    SessionExpired,
    /// An unlock, explicit or hands-free, moved on.
    Unlock {
        door_id: String,
        trigger: Trigger,
        phase: UnlockPhase,
    },
    /// Proximity unlock stopped by itself (Bluetooth was switched off, say).
    ProximityStopped {
        error: CoreError,
    },
    /// Bytes of a bundle the lock has acknowledged, of the total.
    SyncProgress {
        door_id: String,
        done: u64,
        total: u64,
    },
    /// A Door Sync with the lock ended (after an unlock, or asked for).
    DoorSynced {
        door_id: String,
        report: SyncReport,
    },
}

/// Where an unlock is. Every unlock reports `Started` and ends with exactly one of
/// `Succeeded`, `Failed` or `Cancelled`.
#[derive(Debug, Clone)]
pub enum UnlockPhase {
    Started,
    Connecting { attempt: u32 },
    Authorizing,
    Succeeded(Unlocked),
    Failed(CoreError),
    Cancelled,
}

pub struct Config {
    pub server_url: String,
    pub data_dir: PathBuf,
    pub request_timeout: Duration,
}

pub struct Core {
    api: ApiClient,
    store: Arc<Store>,
    signer: Arc<dyn Signer>,
    transport: Option<Arc<dyn Transport>>,
    events: Box<dyn Fn(Event) + Send + Sync>,
    /// Door Syncs riding along after unlocks, by lock id, so a new unlock there can stop one.
    rides: Mutex<std::collections::HashMap<String, Ride>>,
    clock: Box<dyn Fn() -> UnixTime + Send + Sync>,
    unlocking: UnlockSlot,
    /// Proximity unlock while it is on (hands_free.rs).
    pub(crate) hands_free: Mutex<Option<Background>>,
}

/// A task of the client's that runs until stopped; dropping the handle stops it.
pub(crate) struct Background {
    pub(crate) stop: tokio_util::sync::CancellationToken,
    pub(crate) task: tokio::task::JoinHandle<()>,
}

impl Drop for Background {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

type Ride = (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
);

struct StoreTokens(Arc<Store>);

impl TokenSink for StoreTokens {
    fn tokens_changed(&self, tokens: Option<&Tokens>) {
        // A token that fails to persist costs a sign-in after a restart, nothing more.
        let _ = self.0.set_tokens(tokens);
    }
}

/// A door with its decision now, as the app lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoorView {
    pub door: CachedDoor,
    pub decision: Decision,
}

pub struct Person {
    pub id: String,
    pub name: String,
    pub role: String,
    pub property_name: String,
}

/// One of the person's devices in use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub id: String,
    pub created_at: UnixTime,
    pub last_seen_at: Option<UnixTime>,
    /// The device this client registered.
    pub this_device: bool,
}

impl Core {
    pub fn open(
        config: Config,
        signer: Arc<dyn Signer>,
        transport: Option<Arc<dyn Transport>>,
        events: Box<dyn Fn(Event) + Send + Sync>,
        clock: Box<dyn Fn() -> UnixTime + Send + Sync>,
    ) -> CoreResult<Core> {
        if !(config.server_url.starts_with("https://") || config.server_url.starts_with("http://"))
        {
            return Err(CoreError::invalid(
                "server_url",
                "must start with https:// (or http:// for a local server)",
            ));
        }
        let store = Arc::new(Store::open(&config.data_dir)?);
        let tokens = store.tokens()?;
        let api = ApiClient::new(
            &config.server_url,
            config.request_timeout,
            tokens,
            Box::new(StoreTokens(store.clone())),
        )?;
        Ok(Core {
            api,
            store,
            signer,
            transport,
            events,
            rides: Mutex::new(Default::default()),
            clock,
            unlocking: UnlockSlot::default(),
            hands_free: Mutex::new(None),
        })
    }

    pub fn now(&self) -> UnixTime {
        (self.clock)()
    }

    pub(crate) fn transport(&self) -> Option<Arc<dyn Transport>> {
        self.transport.clone()
    }

    pub(crate) fn emit(&self, e: Event) {
        (self.events)(e);
    }

    /// Runs an API call; a session that cannot be refreshed is announced to the listener.
    async fn api<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, ApiError>>,
    ) -> CoreResult<T> {
        match call.await {
            Err(ApiError::SessionExpired) => {
                self.emit(Event::SessionExpired);
                Err(ApiError::SessionExpired.into())
            }
            other => Ok(other?),
        }
    }

    pub fn is_signed_in(&self) -> bool {
        self.api.tokens().is_some()
    }

    pub async fn sign_in(&self, email: &str, password: &str) -> CoreResult<Person> {
        if email.trim().is_empty() {
            return Err(CoreError::invalid("email", "must not be empty"));
        }
        if password.is_empty() {
            return Err(CoreError::invalid("password", "must not be empty"));
        }
        let body = wire::Login { email, password };
        let signed_in = async {
            let tokens: Tokens = self
                .api
                .anonymous(Method::POST, "/v1/auth/login", Some(&body))
                .await
                .map_err(|e| credentials_refused(e, "password"))?;
            self.start_session(tokens).await
        };
        // Neither the email nor the password: the outcome says enough.
        logged(signed_in)
            .instrument(tracing::info_span!("sign_in"))
            .await
    }

    /// Signs in with an ID token of the property's OpenID Connect issuer (the partner app's
    /// own sign-in); `nonce`, when the app sent one to its provider, must be the token's.
    pub async fn sign_in_with_token(
        &self,
        id_token: &str,
        nonce: Option<&str>,
    ) -> CoreResult<Person> {
        if id_token.trim().is_empty() {
            return Err(CoreError::invalid("id_token", "must not be empty"));
        }
        if nonce.is_some_and(|n| n.is_empty()) {
            return Err(CoreError::invalid("nonce", "must not be empty when given"));
        }
        let body = wire::TokenSignIn { id_token, nonce };
        let signed_in = async {
            let tokens: Tokens = self
                .api
                .anonymous(Method::POST, "/v1/auth/token", Some(&body))
                .await
                .map_err(|e| credentials_refused(e, "id_token"))?;
            self.start_session(tokens).await
        };
        // Not the token: it is a credential.
        logged(signed_in)
            .instrument(tracing::info_span!("sign_in_with_token"))
            .await
    }

    pub async fn redeem_invite(&self, invite_token: &str) -> CoreResult<Person> {
        if invite_token.trim().is_empty() {
            return Err(CoreError::invalid("invite_token", "must not be empty"));
        }
        let body = wire::RedeemInvite { invite_token };
        let redeemed = async {
            let tokens: Tokens = self
                .api
                .anonymous(Method::POST, "/v1/auth/invite", Some(&body))
                .await
                .map_err(|e| credentials_refused(e, "invite_token"))?;
            self.start_session(tokens).await
        };
        logged(redeemed)
            .instrument(tracing::info_span!("redeem_invite"))
            .await
    }

    async fn start_session(&self, tokens: Tokens) -> CoreResult<Person> {
        if self
            .store
            .meta("person_id")?
            .as_deref()
            .is_some_and(|p| p != tokens.person_id)
        {
            // Another person signed in on this device: nothing of the previous one may stay.
            tracing::info!("another person signed in: the previous one's data is cleared");
            self.store.clear()?;
        }
        self.store.set_meta("person_id", Some(&tokens.person_id))?;
        tracing::debug!(person = short(&tokens.person_id), "session started");
        self.api.set_tokens(Some(tokens));
        let me: MeJson = self
            .api(self.api.call::<(), _>(Method::GET, "/v1/me", None))
            .await?;
        self.store
            .set_meta("property_name", Some(&me.property.name))?;
        // Always registered anew at sign-in (the same key is the same device on the server):
        // it binds the new session to the device, and brings back a device removed meanwhile.
        self.store.set_meta("device_id", None)?;
        self.register_device().await?;
        self.refresh().await?;
        Ok(Person {
            id: me.person_id,
            name: me.name,
            role: me.role,
            property_name: me.property.name,
        })
    }

    /// Registers this device's key with proof of possession; a no-op once registered.
    pub async fn register_device(&self) -> CoreResult<String> {
        if let Some(id) = self.store.meta("device_id")? {
            return Ok(id);
        }
        let challenge: wire::Challenge = self
            .api(
                self.api
                    .call::<(), _>(Method::POST, "/v1/me/devices/challenge", None),
            )
            .await?;
        let raw = b64d(&challenge.challenge)
            .ok_or_else(|| ApiError::Malformed("challenge is not base64".into()))?;
        let signer = self.signer.clone();
        let (public_key, signature) = tokio::task::spawn_blocking(move || -> CoreResult<_> {
            let public_key = signer.public_key()?;
            let signature = signer.sign(&device::possession_message(&raw))?;
            let proof = device::check_possession(&public_key, &raw, &signature)
                .map_err(|e| CoreError::DeviceKey(e.to_string()))?;
            Ok((proof.public_key, proof.signature))
        })
        .await
        .map_err(|e| CoreError::DeviceKey(format!("the signing task failed: {e}")))??;
        let body = wire::NewDevice {
            public_key: b64e(&public_key),
            challenge: challenge.challenge,
            signature: b64e(&signature),
        };
        let device: wire::DeviceJson = self
            .api(self.api.call(Method::POST, "/v1/me/devices", Some(&body)))
            .await?;
        tracing::info!(device = short(&device.device_id), "device registered");
        self.store.set_meta("device_id", Some(&device.device_id))?;
        self.store
            .set_meta("device_key", Some(&b64e(&public_key)))?;
        Ok(device.device_id)
    }

    /// The person's devices in use (removed ones are left out), oldest first.
    pub async fn devices(&self) -> CoreResult<Vec<Device>> {
        let mine = self.store.meta("device_id")?;
        let listed: Vec<wire::RegisteredDevice> = self
            .api(self.api.call::<(), _>(Method::GET, "/v1/me/devices", None))
            .await?;
        Ok(listed
            .into_iter()
            .filter(|d| d.removed_at.is_none())
            .map(|d| Device {
                this_device: mine.as_deref() == Some(d.id.as_str()),
                id: d.id,
                created_at: d.created_at,
                last_seen_at: d.last_seen_at,
            })
            .collect())
    }

    /// Removes one of the person's devices: the server issues it nothing more, revokes its
    /// credentials at offline locks (from their next Door Sync) and ends its sessions.
    /// Removing this client's own device signs this client out, as `sign_out` does.
    pub async fn remove_device(&self, device_id: &str) -> CoreResult<()> {
        if door_protocol::Id::from_hex(device_id).is_none() {
            return Err(CoreError::invalid("device_id", "must be 32 hex digits"));
        }
        let removed: Result<serde_json::Value, _> = self
            .api(self.api.call::<(), _>(
                Method::DELETE,
                &format!("/v1/me/devices/{device_id}"),
                None,
            ))
            .await;
        match removed {
            Err(CoreError::Api(ApiError::Status { status: 404, .. })) => {
                return Err(CoreError::invalid(
                    "device_id",
                    "is not one of your devices",
                ))
            }
            other => other?,
        };
        tracing::info!(device = short(device_id), "device removed");
        if self.store.meta("device_id")?.as_deref() == Some(device_id) {
            // The server has ended this session with the device.
            self.forget_session()?;
        }
        Ok(())
    }

    /// Fetches the doors and their documents, checks every document, and only then replaces
    /// the cache. A failure of any kind leaves the cache as it was. Registers this device
    /// first if it is not yet (a sign-in refused with the device limit).
    pub async fn refresh(&self) -> CoreResult<Vec<DoorView>> {
        logged(self.refresh_doors())
            .instrument(tracing::info_span!("refresh"))
            .await
    }

    async fn refresh_doors(&self) -> CoreResult<Vec<DoorView>> {
        if self.store.meta("device_id")?.is_none() && !self.is_signed_in() {
            return Err(CoreError::NotSignedIn);
        }
        let device_id = self.register_device().await?;
        let device_key = self
            .store
            .meta("device_key")?
            .and_then(|k| b64d(&k))
            .ok_or(CoreError::NotSignedIn)?;
        let path = format!("/v1/me/doors?device_id={device_id}");
        let doors: MyDoors = self
            .api(self.api.call::<(), _>(Method::GET, &path, None))
            .await?;
        let cached = doors::verify(&doors, &device_key)?;
        let meta = DoorsMeta {
            person_id: doors.person_id.clone(),
            time_zone: doors.time_zone.clone(),
            issuer_public_key: doors.issuer_public_key.clone(),
            issued_at: doors.issued_at,
        };
        self.store.replace_doors(&meta, &cached)?;
        tracing::info!(doors = cached.len(), "doors refreshed");
        // Door Sync data is a bonus of being online: its failure never fails the refresh.
        if let Err(e) = self.prefetch_sync(&cached).await {
            tracing::warn!(error = %e, "Door Sync data not fetched");
        }
        self.emit(Event::DoorsChanged);
        self.doors()
    }

    /// While online: the newest bundle for every offline door (so any unlock there can carry
    /// it), a fresh signed time for locks whose clocks fell behind, and the outbox uploaded.
    async fn prefetch_sync(&self, doors: &[CachedDoor]) -> CoreResult<()> {
        self.fetch_bundles(doors.iter()).await?;
        let time: wire::SignedTimeJson = self
            .api(self.api.call::<(), _>(Method::GET, "/v1/time", None))
            .await?;
        sync::keep_signed_time(&self.store, &time)?;
        sync::upload_outbox(&self.api, &self.store).await?;
        Ok(())
    }

    /// Keeps the newest bundle for each offline door of `doors`.
    async fn fetch_bundles(&self, doors: impl Iterator<Item = &CachedDoor>) -> CoreResult<()> {
        for door in doors.filter(|d| !d.online) {
            let path = sync::bundle_path(&self.store, &door.lock_id)?;
            let answer: wire::SyncBundleJson = self
                .api(self.api.call::<(), _>(Method::GET, &path, None))
                .await?;
            sync::keep_bundle(&self.store, &answer)?;
        }
        Ok(())
    }

    /// The cached doors, sorted by name, each with its decision now. Works offline.
    pub fn doors(&self) -> CoreResult<Vec<DoorView>> {
        let mut doors = self.store.doors()?;
        if doors.is_empty() {
            return Ok(Vec::new());
        }
        doors.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
        let now = self.now();
        Ok(doors
            .into_iter()
            .map(|door| {
                let decision = door.decide(now);
                DoorView { door, decision }
            })
            .collect())
    }

    /// One cached door with its decision now: one row read, one evaluation.
    pub fn door(&self, door_id: &str) -> CoreResult<DoorView> {
        let door = self
            .store
            .door(door_id)?
            .ok_or_else(|| CoreError::invalid("door_id", "is not one of your doors"))?;
        let now = self.now();
        let decision = door.decide(now);
        Ok(DoorView { door, decision })
    }

    pub fn doorcode(&self, door_id: &str) -> CoreResult<Option<String>> {
        let code = self.door(door_id)?.door.doorcode;
        // Whether there is one, never the digits.
        tracing::debug!(
            door = short(door_id),
            present = code.is_some(),
            "doorcode read"
        );
        Ok(code)
    }

    /// Invites a guest: in-app access at `door_ids`, a temporary doorcode at
    /// `doorcode_door_ids` (both where a door is in both). The codes come back in this answer
    /// only.
    pub async fn invite_guest(
        &self,
        door_ids: &[String],
        doorcode_door_ids: &[String],
        contact: &str,
        from: UnixTime,
        until: UnixTime,
    ) -> CoreResult<InvitedGuest> {
        // Checked here too so that an app gets the answer without a round trip, offline.
        if door_ids.is_empty() && doorcode_door_ids.is_empty() {
            return Err(CoreError::invalid(
                "door_ids",
                "name at least one door (in door_ids or doorcode_door_ids)",
            ));
        }
        if until <= from {
            return Err(CoreError::invalid("until", "must be after from"));
        }
        let doors = self.store.doors()?;
        for (field, ids) in [
            ("door_ids", door_ids),
            ("doorcode_door_ids", doorcode_door_ids),
        ] {
            for (i, id) in ids.iter().enumerate() {
                let Some(door) = doors.iter().find(|d| &d.id == id) else {
                    return Err(CoreError::invalid(
                        format!("{field}[{i}]"),
                        "is not one of your doors",
                    ));
                };
                if field == "doorcode_door_ids" && !door.keypad {
                    return Err(CoreError::invalid(format!("{field}[{i}]"), "has no keypad"));
                }
            }
        }
        let body = wire::NewGuest {
            door_ids,
            doorcode_door_ids,
            contact,
            starts_at: from,
            ends_at: until,
        };
        let invited: InvitedGuest = self
            .api(self.api.call(Method::POST, "/v1/me/guests", Some(&body)))
            .await
            .inspect_err(|e| tracing::warn!(error = %e, "guest not invited"))?;
        // Never the invite token (it signs the guest in) nor the contact.
        tracing::info!(
            guest = short(&invited.guest.id),
            doors = door_ids.len(),
            doorcodes = invited.doorcodes.len(),
            "guest invited"
        );
        // A guest's doorcode reaches an offline keypad only in a bundle: carry the new one.
        self.refetch_bundles(&invited.guest.doorcode_door_ids).await;
        Ok(invited)
    }

    /// A page of the door's access log, newest first, older than `before` (a page's `next`).
    /// The server shows this person their own entries, and every entry at a door of their
    /// own unit; a door they never had is `InvalidInput` on `door_id`.
    pub async fn access_log(
        &self,
        door_id: &str,
        before: Option<&str>,
        limit: u32,
    ) -> CoreResult<access_log::Page> {
        let path = access_log::path(door_id, before, limit)?;
        let page: wire::AccessLogPage = self
            .api(self.api.call::<(), _>(Method::GET, &path, None))
            .await?;
        access_log::page(page)
    }

    /// Fetches the newest bundles for the offline locks of `door_ids` after this person
    /// changed who may open them, so that their next visit carries the change there (a
    /// revoked guest's code or documents). Best effort: the next refresh fetches them anyway.
    async fn refetch_bundles(&self, door_ids: &[String]) {
        let fetched = async {
            let doors = self.store.doors()?;
            self.fetch_bundles(doors.iter().filter(|d| door_ids.contains(&d.id)))
                .await
        };
        if let Err(e) = fetched.await {
            tracing::warn!(error = %e, "Door Sync data not fetched after a guest change");
        }
    }

    pub async fn guests(&self) -> CoreResult<Vec<GuestJson>> {
        self.api(self.api.call::<(), _>(Method::GET, "/v1/me/guests", None))
            .await
    }

    pub async fn revoke_guest(&self, guest_id: &str) -> CoreResult<GuestJson> {
        if door_protocol::Id::from_hex(guest_id).is_none() {
            return Err(CoreError::invalid("guest_id", "must be 32 hex digits"));
        }
        let revoked: GuestJson = self
            .api(
                self.api
                    .call::<(), _>(Method::DELETE, &format!("/v1/me/guests/{guest_id}"), None),
            )
            .await
            .inspect_err(|e| tracing::warn!(error = %e, "guest not revoked"))?;
        tracing::info!(guest = short(guest_id), "guest revoked");
        let doors: Vec<String> = revoked
            .door_ids
            .iter()
            .chain(&revoked.doorcode_door_ids)
            .cloned()
            .collect();
        self.refetch_bundles(&doors).await;
        Ok(revoked)
    }

    /// Revokes the guest's access to one door of the invite (OpenDOOR
    /// `revokeGuestAccess(guest, lock)`); the guest keeps the others. Removing the last door
    /// revokes the guest, as [`Core::revoke_guest`] does. The guest as it is now.
    pub async fn revoke_guest_door(&self, guest_id: &str, door_id: &str) -> CoreResult<GuestJson> {
        let left: GuestJson = self
            .api(
                self.api
                    .call::<(), _>(Method::DELETE, &guest_door_path(guest_id, door_id)?, None),
            )
            .await?;
        // The guest's documents are voided by a floor, which every lock of theirs gets.
        let mut doors = vec![door_id.to_owned()];
        doors.extend(left.door_ids.iter().chain(&left.doorcode_door_ids).cloned());
        self.refetch_bundles(&doors).await;
        Ok(left)
    }

    /// Opens a door: the schedule check from the cache first (an Out of Schedule answer
    /// costs no radio work), then one exchange with the lock over BLE, within `timeout`. After
    /// the answer, a Door Sync rides along on the same connection in the background.
    ///
    /// One unlock at a time: while one runs, another fails at once with `UnlockInProgress`,
    /// except that this explicit one cancels a hands-free unlock and goes first.
    pub async fn unlock(
        self: &Arc<Self>,
        door_id: &str,
        timeout: Duration,
    ) -> CoreResult<Unlocked> {
        self.unlock_as(door_id, timeout, Trigger::Explicit).await
    }

    /// An unlock reported through `Event::Unlock` from start to end, whatever ends it
    /// (dropping the future reports `Cancelled`).
    pub(crate) async fn unlock_as(
        self: &Arc<Self>,
        door_id: &str,
        timeout: Duration,
        trigger: Trigger,
    ) -> CoreResult<Unlocked> {
        let span = tracing::info_span!("unlock", door = short(door_id), ?trigger);
        async {
            let view = self.door(door_id)?;
            let mut run = UnlockRun {
                core: self,
                door_id: &view.door.id,
                trigger,
                ended: false,
            };
            run.report(UnlockPhase::Started);
            let result = self.unlock_claimed(&view, timeout, trigger, &run).await;
            run.ended = true;
            run.report(match &result {
                Ok(unlocked) => UnlockPhase::Succeeded(unlocked.clone()),
                Err(CoreError::Cancelled) => UnlockPhase::Cancelled,
                Err(e) => UnlockPhase::Failed(e.clone()),
            });
            result
        }
        .instrument(span)
        .await
    }

    async fn unlock_claimed(
        self: &Arc<Self>,
        view: &DoorView,
        timeout: Duration,
        trigger: Trigger,
        run: &UnlockRun<'_>,
    ) -> CoreResult<Unlocked> {
        // The cache's answer first: an Out of Schedule door costs no radio work, and an app
        // gets it even while another unlock runs.
        let result = match unlock::precheck(view.decision) {
            Err(e) => Err(e),
            Ok(()) => {
                let held = self
                    .unlocking
                    .claim(trigger, &view.door.id)
                    .await
                    .map_err(|door_id| CoreError::UnlockInProgress { door_id })?;
                self.stop_ride(&view.door.lock_id).await;
                let progress = |stage| run.stage(stage);
                tokio::select! {
                    result = self.unlock_door(view, timeout, &progress) => result,
                    _ = held.preempted() => Err(CoreError::Cancelled),
                }
            }
        };
        let outcome = match &result {
            Ok(_) => "granted".to_owned(),
            Err(CoreError::OutOfSchedule { .. }) => "out of schedule".to_owned(),
            Err(e) => format!("not opened: {e}"),
        };
        self.store
            .add_activity(&view.door.id, &view.door.name, self.now(), &outcome)?;
        let (unlocked, connection) = result?;
        let core = self.clone();
        let door = view.door.clone();
        let lock_view = unlocked.clone();
        let (cancel, cancelled) = tokio::sync::oneshot::channel();
        let lock_id = door.lock_id.clone();
        let span = tracing::info_span!("door_sync", door = short(&door.id));
        let task = tokio::spawn(
            async move {
                core.ride_along(door, connection, lock_view, cancelled)
                    .await
            }
            .instrument(span),
        );
        self.rides
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(lock_id, (cancel, task));
        Ok(unlocked)
    }

    async fn unlock_door(
        &self,
        view: &DoorView,
        timeout: Duration,
        progress: &(dyn Fn(Stage) + Send + Sync),
    ) -> CoreResult<(Unlocked, Box<dyn crate::ble::Connection>)> {
        let transport = self
            .transport
            .as_deref()
            .ok_or(CoreError::Ble(BleError::Unavailable))?;
        let bound_time = |lock_id: String, epoch: door_protocol::AuditEpoch| {
            Box::pin(async move {
                let path = format!("/v1/time?lock_id={lock_id}&epoch={epoch}");
                let time: wire::SignedTimeJson = self
                    .api(self.api.call::<(), _>(Method::GET, &path, None))
                    .await
                    .ok()?;
                sync::signed_time_bytes(&time)
            }) as std::pin::Pin<Box<dyn std::future::Future<Output = _> + Send + '_>>
        };
        Unlocker {
            transport,
            signer: self.signer.clone(),
            now: self.now(),
            signed_time: sync::signed_time(&self.store)?,
            bound_time: &bound_time,
            progress,
        }
        .unlock(&view.door, timeout)
        .await
    }

    /// After a granted unlock: the bundle the lock lacks, then its audit records, then the
    /// upload, best effort (a cut link resumes at the next visit; nothing is lost).
    async fn ride_along(
        &self,
        door: CachedDoor,
        mut connection: Box<dyn crate::ble::Connection>,
        unlocked: Unlocked,
        cancel: tokio::sync::oneshot::Receiver<()>,
    ) {
        let deadline = tokio::time::Instant::now() + sync::SYNC_TIMEOUT;
        let door_id = door.id.clone();
        let progress = |done, total| {
            self.emit(Event::SyncProgress {
                door_id: door_id.clone(),
                done,
                total,
            })
        };
        let mut report = SyncReport::default();
        let work = async {
            if let Ok(after) = sync::transfer_bundle(
                &self.store,
                connection.as_mut(),
                &door.lock_id,
                Some(unlocked.sync_iteration),
                &progress,
                deadline,
            )
            .await
            {
                report.applied = after > Some(unlocked.sync_iteration);
                report.lock_iteration = after;
            }
            if unlocked.pending_audit > 0 {
                if let Ok(key) = door_protocol::LockPublicKey::from_sec1(&door.lock_public_key) {
                    if let Ok(n) = sync::pull_audit(
                        &self.store,
                        connection.as_mut(),
                        &door.lock_id,
                        &key,
                        deadline,
                    )
                    .await
                    {
                        report.audit_records = n;
                    }
                }
            }
        };
        // A new unlock at this lock takes the link back at once; what was acknowledged is kept
        // and the transfer resumes at the next visit.
        tokio::select! {
            _ = work => {}
            _ = cancel => {}
        }
        connection.close().await;
        tracing::info!(
            applied = report.applied,
            lock_iteration = ?report.lock_iteration,
            audit_records = report.audit_records,
            "Door Sync after the unlock"
        );
        let _ = sync::upload_outbox(&self.api, &self.store).await;
        self.emit(Event::DoorSynced { door_id, report });
    }

    /// Ends a Door Sync still riding along at this lock, and waits until its link is closed.
    async fn stop_ride(&self, lock_id: &str) {
        let ride = self
            .rides
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(lock_id);
        if let Some((cancel, task)) = ride {
            let _ = cancel.send(());
            let _ = task.await;
        }
    }

    /// "Sync this door": carries the phone's bundle to the lock without opening it, then
    /// uploads what the outbox holds. A lock trusts such a connection less than one where the
    /// phone proved a credential (an unlock): it brings no audit records home, and a transfer
    /// cut short here starts over next time instead of resuming.
    pub async fn sync_door(&self, door_id: &str, timeout: Duration) -> CoreResult<SyncReport> {
        let span = tracing::info_span!("door_sync", door = short(door_id));
        logged(self.sync_door_now(door_id, timeout))
            .instrument(span)
            .await
    }

    async fn sync_door_now(&self, door_id: &str, timeout: Duration) -> CoreResult<SyncReport> {
        let door = self.door(door_id)?.door;
        self.stop_ride(&door.lock_id).await;
        let transport = self
            .transport
            .as_deref()
            .ok_or(CoreError::Ble(BleError::Unavailable))?;
        let deadline = tokio::time::Instant::now() + timeout;
        let target = crate::ble::LockTarget {
            lock_id: door.lock_id.clone(),
        };
        let mut connection = transport.connect(&target, timeout).await?;
        let progress = |done, total| {
            self.emit(Event::SyncProgress {
                door_id: door.id.clone(),
                done,
                total,
            })
        };
        let result = sync::transfer_bundle(
            &self.store,
            connection.as_mut(),
            &door.lock_id,
            None,
            &progress,
            deadline,
        )
        .await;
        connection.close().await;
        let after = result?;
        let _ = sync::upload_outbox(&self.api, &self.store).await;
        let report = SyncReport {
            lock_iteration: after,
            applied: after.is_some(),
            audit_records: 0,
        };
        tracing::info!(lock_iteration = ?after, "Door Sync asked for");
        self.emit(Event::DoorSynced {
            door_id: door.id,
            report: report.clone(),
        });
        Ok(report)
    }

    /// Whether the phone carries something for this door's lock: a bundle newer than what
    /// the lock had when last seen, or audit records not yet uploaded.
    pub fn sync_pending(&self, door: &CachedDoor) -> CoreResult<bool> {
        Ok(self
            .store
            .locks_with_pending_sync()?
            .contains(&door.lock_id))
    }

    /// The lock ids `sync_pending` holds for, all at once (for door lists).
    pub fn locks_with_pending_sync(&self) -> CoreResult<std::collections::HashSet<String>> {
        Ok(self.store.locks_with_pending_sync()?)
    }

    /// This person's recent unlocks on this phone, newest first.
    pub fn activity(&self, limit: u32) -> CoreResult<Vec<(String, String, i64, String)>> {
        Ok(self.store.activity(limit)?)
    }

    /// Audit records waiting for the server on this phone (refused ones not counted).
    pub fn outbox_len(&self) -> CoreResult<u64> {
        Ok(self.store.outbox_len()?)
    }

    /// Audit records the server refused (bad signature, a conflicting record, malformed): kept
    /// on the phone with the reason for support, never sent again, never dropped.
    pub fn refused_audit_records(&self) -> CoreResult<Vec<crate::store::RefusedRecord>> {
        Ok(self.store.refused_audit_records()?)
    }

    /// Ends the session here and on the server (when reachable), stops proximity unlock, and
    /// forgets the cache and a key the core made.
    pub async fn sign_out(&self) -> CoreResult<()> {
        // Nobody's doors open hands-free once nobody is signed in.
        self.stop_proximity_unlock().await;
        if self.api.tokens().is_some() {
            // Best effort: offline, the server's tokens simply expire.
            let _ = self
                .api
                .call::<(), serde_json::Value>(Method::POST, "/v1/auth/logout", None)
                .await;
        }
        self.forget_session()?;
        tracing::info!("signed out");
        Ok(())
    }

    /// Forgets the session, the cache and a key the core made, here.
    fn forget_session(&self) -> CoreResult<()> {
        self.api.set_tokens(None);
        self.store.clear()?;
        self.signer.forget()?;
        self.emit(Event::DoorsChanged);
        Ok(())
    }
}

/// Reports one unlock's phases; an unlock dropped before its end reports `Cancelled`.
struct UnlockRun<'a> {
    core: &'a Core,
    door_id: &'a str,
    trigger: Trigger,
    ended: bool,
}

impl UnlockRun<'_> {
    fn report(&self, phase: UnlockPhase) {
        // Inside the unlock's span (door, trigger): the stage and outcome, never the request,
        // the access document or keys.
        match &phase {
            UnlockPhase::Started => tracing::debug!("started"),
            UnlockPhase::Connecting { attempt } => tracing::debug!(attempt, "connecting"),
            UnlockPhase::Authorizing => tracing::debug!("authorizing"),
            UnlockPhase::Succeeded(u) => tracing::info!(
                attempts = u.attempts,
                pending_audit = u.pending_audit,
                lock_iteration = u.sync_iteration,
                "granted"
            ),
            UnlockPhase::Failed(CoreError::OutOfSchedule { .. }) => {
                tracing::info!("out of schedule")
            }
            UnlockPhase::Failed(e) => tracing::warn!(error = %e, "not opened"),
            UnlockPhase::Cancelled => tracing::info!("cancelled"),
        }
        self.core.emit(Event::Unlock {
            door_id: self.door_id.to_owned(),
            trigger: self.trigger,
            phase,
        });
    }

    fn stage(&self, stage: Stage) {
        self.report(match stage {
            Stage::Connecting { attempt } => UnlockPhase::Connecting { attempt },
            Stage::Authorizing => UnlockPhase::Authorizing,
        });
    }
}

impl Drop for UnlockRun<'_> {
    fn drop(&mut self) {
        if !self.ended {
            self.report(UnlockPhase::Cancelled);
        }
    }
}

/// Logs how an operation ended: info when it succeeded, a warning with the error if not.
async fn logged<T>(op: impl std::future::Future<Output = CoreResult<T>>) -> CoreResult<T> {
    let result = op.await;
    match &result {
        Ok(_) => tracing::info!("done"),
        Err(e) => tracing::warn!(error = %e, "failed"),
    }
    result
}

/// A 401 at sign-in is about what the person typed, not about a session.
fn credentials_refused(e: ApiError, field: &str) -> CoreError {
    match e {
        ApiError::Status { status: 401, body } => CoreError::invalid(field, body.message),
        other => other.into(),
    }
}

fn b64e(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn b64d(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}

/// The path that removes one door from a guest's invite, both ids checked first.
fn guest_door_path(guest_id: &str, door_id: &str) -> CoreResult<String> {
    let guest = door_protocol::Id::from_hex(guest_id)
        .ok_or_else(|| CoreError::invalid("guest_id", "must be 32 hex digits"))?;
    let door = door_protocol::Id::from_hex(door_id)
        .ok_or_else(|| CoreError::invalid("door_id", "must be 32 hex digits"))?;
    Ok(format!("/v1/me/guests/{guest}/doors/{door}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guest_door_revoke_checks_both_ids_and_names_the_one_at_fault() {
        let guest = "0123456789abcdef0123456789abcdef";
        let door = "fedcba9876543210fedcba9876543210";
        assert_eq!(
            guest_door_path(guest, door).unwrap(),
            format!("/v1/me/guests/{guest}/doors/{door}")
        );
        let field = |r: CoreResult<String>| match r {
            Err(CoreError::InvalidInput { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(guest_door_path("nope", door)), "guest_id");
        assert_eq!(field(guest_door_path(guest, "")), "door_id");
        assert_eq!(field(guest_door_path(guest, &door[..30])), "door_id");
    }
}
