//! `DoorClient`: the one object an app holds. It converts and delegates to `client::Core`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::ble::{BleTransport, ForeignTransport};
use super::cancel::{cancellable, Cancellation};
use super::door::{doors_of, Door};
use super::doors_watch::{DoorWatchers, DoorsListener, DoorsWatch};
use super::schedule::AccessDecision;
use super::signer::DeviceSigner;
use super::time::{from_unix, now, to_unix};
use super::DoorError;
use crate::access_log;
use crate::api::wire::GuestJson;
use crate::ble::Transport;
use crate::client::{Config, Core, Event, UnlockPhase as Phase};
use crate::error::{CoreError, CoreResult};
use crate::keystore::{ensure_default_store, KeyringKey};
use crate::live::LiveToken;
use crate::proximity::ProximityConfig;
use crate::signer::Signer;
use crate::unlock::Unlocked;
use crate::unlock_slot::Trigger;
use door_protocol::unlock::DenyReason;

#[derive(Debug, Clone, uniffi::Record)]
pub struct ClientConfig {
    /// The property backend, e.g. "https://door.example.com".
    pub server_url: String,
    /// A directory the app owns (its files or Application Support directory); the offline
    /// cache lives here.
    pub data_dir: String,
    /// Per request; 15 000 when zero.
    pub request_timeout_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Person {
    pub id: String,
    pub name: String,
    /// resident, staff, vendor or guest.
    pub role: String,
    pub property_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Guest {
    pub id: String,
    pub contact: String,
    /// Doors the guest opens with the app.
    pub door_ids: Vec<String>,
    /// Doors the guest opens with a temporary doorcode at the keypad.
    pub doorcode_door_ids: Vec<String>,
    pub from: SystemTime,
    pub until: SystemTime,
    /// The guest has signed in with the invite.
    pub redeemed: bool,
    pub revoked: bool,
}

/// One of the person's devices in use (a phone or tablet signed in as them).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct RegisteredDevice {
    pub id: String,
    /// When the device was first registered.
    pub registered_at: SystemTime,
    /// When the device last fetched its doors; absent: never.
    pub last_seen: Option<SystemTime>,
    /// The device of this client (removing it signs this client out).
    pub this_device: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct GuestInvite {
    pub guest: Guest,
    /// Send this to the guest; they sign in with it once. It is not shown again.
    pub invite_token: String,
    /// The guest's temporary doorcodes, one per doorcode door: pass them on. They are not
    /// shown again.
    pub doorcodes: Vec<GuestDoorcode>,
}

/// A guest's temporary doorcode at one keypad door.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct GuestDoorcode {
    pub door_id: String,
    pub code: String,
}

#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub enum DoorEvent {
    /// The door list or a door's state changed: read `doors()` again.
    DoorsChanged,
    /// The session ended (revoked, or refresh impossible): sign in again.
    SessionExpired,
    /// An unlock, tapped or hands-free, moved on. Each unlock reports `Started`, then ends
    /// with one of `Succeeded`, `Failed` or `Cancelled`.
    Unlock {
        door_id: String,
        trigger: UnlockTrigger,
        phase: UnlockPhase,
    },
    /// Proximity unlock stopped by itself, e.g. `BluetoothOff` when Bluetooth was switched
    /// off; start it again when the reason is gone.
    ProximityStopped { error: DoorError },
    /// A Door Sync transfer moved on: bytes the lock acknowledged, of the total.
    SyncProgress {
        door_id: String,
        done: u64,
        total: u64,
    },
    /// A Door Sync with the door's lock ended (after an unlock, or asked for).
    DoorSynced {
        door_id: String,
        lock_iteration: Option<u64>,
        applied: bool,
        audit_records: u32,
    },
}

/// One of this person's recent unlocks on this phone.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Activity {
    pub door_id: String,
    pub door_name: String,
    pub at: SystemTime,
    /// "granted", "out of schedule", or "not opened: <why>".
    pub outcome: String,
}

/// What a lock recorded at a door.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum AccessOutcome {
    Granted,
    Denied,
    /// The lock's log was full and it dropped `lost` records the server never received: the
    /// log has a gap here.
    RecordsLost,
}

/// How someone came to the door.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum AccessMethod {
    /// A phone over Bluetooth.
    Ble,
    /// A code typed on the keypad.
    Doorcode,
}

/// One entry of a door's access log, from the lock's signed records.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct AccessLogEntry {
    /// The lock's clock when it happened.
    pub at: SystemTime,
    pub outcome: AccessOutcome,
    /// Absent for `RecordsLost`.
    pub method: Option<AccessMethod>,
    /// Who, when the record names a person of the property.
    pub person_id: Option<String>,
    pub person_name: Option<String>,
    /// For `Denied`: out_of_schedule, revoked, expired, not_yet_valid, wrong_door,
    /// bad_credential, clock_untrusted, replayed, busy; doorcode_not_valid (the person's own
    /// code, expired or outside its schedule), unknown_doorcode (no code matched).
    pub deny_reason: Option<String>,
    /// For `RecordsLost`: how many records.
    pub lost: Option<u64>,
}

/// A page of a door's access log, newest first.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct AccessLogPage {
    pub entries: Vec<AccessLogEntry>,
    /// Pass as `before` for the next, older page; absent on the last one.
    pub next_cursor: Option<String>,
}

/// Who started an unlock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum UnlockTrigger {
    /// The person asked (`unlock`).
    Explicit,
    /// Proximity unlock, when the phone came close to the door.
    Proximity,
}

/// Where an unlock is.
#[derive(Debug, Clone, PartialEq, uniffi::Enum)]
pub enum UnlockPhase {
    Started,
    /// Finding the lock and preparing the request, side by side; `attempt` is 2 when a
    /// dropped connection is retried.
    Connecting {
        attempt: u32,
    },
    /// Connected; waiting for the lock's answer.
    Authorizing,
    Succeeded {
        receipt: UnlockReceipt,
    },
    /// The error `unlock` throws (for a hands-free unlock, the only report of it).
    Failed {
        error: DoorError,
    },
    /// The app cancelled it, proximity unlock was stopped, or a tap took over.
    Cancelled,
}

/// How close is close enough for proximity unlock. Signal strengths are medians of the
/// newest `samples` advertisements, in dBm; the defaults suit a lock advertising at 0 dBm
/// (about an arm's length to open, a few metres to count as gone).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ProximitySettings {
    /// Opens at or above this.
    #[uniffi(default = -60)]
    pub unlock_rssi: i16,
    /// The phone has gone away below this (and the door may open on the next approach);
    /// must be below `unlock_rssi`.
    #[uniffi(default = -75)]
    pub away_rssi: i16,
    /// Advertisements the median takes (1..=64); more is steadier and slower.
    #[uniffi(default = 5)]
    pub samples: u32,
    /// If set, the door may open again after this long even if the phone never went away.
    /// Unset (the default), a person waiting by the door does not keep opening it.
    #[uniffi(default = None)]
    pub hold_off_ms: Option<u64>,
    /// Only these doors open hands-free (a resident may want it at the lobby, not at their
    /// own flat); empty: every door.
    #[uniffi(default = [])]
    pub door_ids: Vec<String>,
}

/// A door that opened.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct UnlockReceipt {
    /// The lock's clock when it decided.
    pub lock_time: SystemTime,
    /// Audit records the lock holds that the server has not acknowledged.
    pub pending_audit: u32,
    /// Connections it took (2 when a dropped connection was retried).
    pub attempts: u32,
}

/// Why the lock said no, when it is not the schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum UnlockDenial {
    /// The credential was revoked.
    Revoked,
    /// The credential has ended; refresh.
    Expired,
    /// The credential has not begun.
    NotYetValid,
    /// The credential is not for this door.
    WrongDoor,
    /// The lock does not accept the credential (unknown issuer, wrong device key).
    BadCredential,
    /// The lock's clock disagrees with the phone's; a Door Sync sets it right.
    ClockUntrusted,
    /// The lock saw this request before.
    Replayed,
    /// The lock is busy (an unusual burst of unlocks); try again shortly.
    Busy,
}

/// Receives events on a core thread; hand them to the UI thread yourself.
#[uniffi::export(foreign)]
pub trait EventListener: Send + Sync {
    fn on_event(&self, event: DoorEvent);
}

/// The app's own signer, as the core uses it.
struct ForeignSigner(Arc<dyn DeviceSigner>);

impl Signer for ForeignSigner {
    fn public_key(&self) -> CoreResult<Vec<u8>> {
        self.0
            .public_key()
            .map_err(|e| CoreError::DeviceKey(e.to_string()))
    }

    fn sign(&self, message: &[u8]) -> CoreResult<Vec<u8>> {
        self.0
            .sign(message.to_vec())
            .map_err(|e| CoreError::DeviceKey(e.to_string()))
    }
}

impl Signer for KeyringKey {
    fn public_key(&self) -> CoreResult<Vec<u8>> {
        Ok(KeyringKey::public_key(self)?)
    }

    fn sign(&self, message: &[u8]) -> CoreResult<Vec<u8>> {
        Ok(KeyringKey::sign(self, message)?.to_vec())
    }

    fn forget(&self) -> CoreResult<()> {
        Ok(self.delete()?)
    }
}

#[derive(uniffi::Object)]
pub struct DoorClient {
    core: Arc<Core>,
    watchers: Arc<DoorWatchers>,
    _live: LiveToken,
}

impl DoorClient {
    /// `new` with the notion of now supplied: the demo and the tests walk a simulated day.
    /// Not exported: apps use the device clock.
    pub fn with_clock(
        config: ClientConfig,
        signer: Option<Arc<dyn DeviceSigner>>,
        listener: Option<Arc<dyn EventListener>>,
        transport: Option<Arc<dyn Transport>>,
        clock: Arc<dyn Fn() -> door_protocol::UnixTime + Send + Sync>,
    ) -> Result<Arc<DoorClient>, DoorError> {
        // The core's records are collected from the first client on, before the app thinks of
        // logs: a support request then has the minutes before it.
        crate::diagnostics::install();
        if config.data_dir.trim().is_empty() {
            return Err(DoorError::invalid("data_dir", "must name a directory"));
        }
        let data_dir = PathBuf::from(&config.data_dir);
        let signer: Arc<dyn Signer> = match signer {
            Some(s) => Arc::new(ForeignSigner(s)),
            None => {
                ensure_default_store().map_err(CoreError::from)?;
                Arc::new(
                    KeyringKey::open_or_create(&account_for(&data_dir)).map_err(CoreError::from)?,
                )
            }
        };
        let watchers = DoorWatchers::new();
        let to_watchers = watchers.clone();
        let listener = listener.map(|l| move |e: Event| l.on_event(e.into()));
        let events: Box<dyn Fn(Event) + Send + Sync> = Box::new(move |e: Event| {
            if matches!(e, Event::DoorsChanged | Event::DoorSynced { .. }) {
                to_watchers.changed();
            }
            if let Some(l) = &listener {
                l(e);
            }
        });
        let timeout = match config.request_timeout_ms {
            0 => Duration::from_secs(15),
            ms => Duration::from_millis(ms),
        };
        let core = Arc::new(Core::open(
            Config {
                server_url: config.server_url,
                data_dir,
                request_timeout: timeout,
            },
            signer,
            transport,
            events,
            Box::new(move || clock()),
        )?);
        watchers.attach(&core);
        Ok(Arc::new(DoorClient {
            core,
            watchers,
            _live: LiveToken::new(),
        }))
    }
}

impl From<Event> for DoorEvent {
    fn from(e: Event) -> DoorEvent {
        match e {
            Event::DoorsChanged => DoorEvent::DoorsChanged,
            Event::SessionExpired => DoorEvent::SessionExpired,
            Event::Unlock {
                door_id,
                trigger,
                phase,
            } => DoorEvent::Unlock {
                door_id,
                trigger: match trigger {
                    Trigger::Explicit => UnlockTrigger::Explicit,
                    Trigger::Proximity => UnlockTrigger::Proximity,
                },
                phase: phase.into(),
            },
            Event::ProximityStopped { error } => DoorEvent::ProximityStopped {
                error: error.into(),
            },
            Event::SyncProgress {
                door_id,
                done,
                total,
            } => DoorEvent::SyncProgress {
                door_id,
                done,
                total,
            },
            Event::DoorSynced { door_id, report } => DoorEvent::DoorSynced {
                door_id,
                lock_iteration: report.lock_iteration,
                applied: report.applied,
                audit_records: report.audit_records,
            },
        }
    }
}

impl Drop for DoorClient {
    fn drop(&mut self) {
        self.watchers.close();
    }
}

#[uniffi::export(async_runtime = "tokio")]
impl DoorClient {
    /// Opens the client over its data directory; works offline from the cache. Without a
    /// `signer`, the device key is kept in the platform credential store. Without `ble`, the
    /// core owns the radio through btleplug (CoreBluetooth on iOS, droidplug on Android, also the
    /// desktops); pass `ble` only when the app must drive Bluetooth itself.
    #[uniffi::constructor]
    pub fn new(
        config: ClientConfig,
        signer: Option<Arc<dyn DeviceSigner>>,
        listener: Option<Arc<dyn EventListener>>,
        ble: Option<Arc<dyn BleTransport>>,
    ) -> Result<Arc<DoorClient>, DoorError> {
        let transport: Option<Arc<dyn Transport>> = match ble {
            Some(b) => Some(Arc::new(ForeignTransport(b))),
            None => default_transport(),
        };
        DoorClient::with_clock(config, signer, listener, transport, Arc::new(now))
    }

    /// Opens the door: an instant `OutOfSchedule` from the cache when the schedule says no
    /// (no radio work), else one exchange with the lock, within `timeout_ms` (10 s when 0).
    /// `cancellation` ends the call early with `Cancelled` (Kotlin can simply cancel the
    /// coroutine; the Swift facade wires Task cancellation to it).
    #[uniffi::method(default(cancellation = None))]
    pub async fn unlock(
        &self,
        door_id: String,
        timeout_ms: u64,
        cancellation: Option<Arc<Cancellation>>,
    ) -> Result<UnlockReceipt, DoorError> {
        let timeout = match timeout_ms {
            0 => Duration::from_secs(10),
            ms => Duration::from_millis(ms),
        };
        cancellable(cancellation, async {
            Ok(self.core.unlock(&door_id, timeout).await?.into())
        })
        .await
    }

    /// Starts proximity (hands-free) unlock: the core scans for the locks of the doors that
    /// open to this person now (an Out of Schedule door is never contacted) and opens one
    /// when the phone comes close (the nearest, if several), once per approach. Off until
    /// called; reports through `DoorEvent::Unlock` with trigger `Proximity`. Throws
    /// `BluetoothOff`, `BluetoothPermissionMissing` or `BluetoothUnavailable` (an app's own
    /// `BleTransport` cannot scan for the core) when it cannot start, `InvalidInput` for
    /// settings that cannot work. Calling it again restarts it with the new settings.
    #[uniffi::method(default(settings = None))]
    pub async fn start_proximity_unlock(
        &self,
        settings: Option<ProximitySettings>,
    ) -> Result<(), DoorError> {
        let (config, only) = match settings {
            None => (ProximityConfig::default(), Vec::new()),
            Some(s) => (
                ProximityConfig {
                    unlock_rssi: s.unlock_rssi,
                    away_rssi: s.away_rssi,
                    samples: usize::try_from(s.samples).unwrap_or(usize::MAX),
                    hold_off: s.hold_off_ms.map(Duration::from_millis),
                    ..ProximityConfig::default()
                },
                s.door_ids,
            ),
        };
        Ok(self.core.start_proximity_unlock(config, only).await?)
    }

    /// Stops proximity unlock, cancelling a hands-free unlock under way.
    pub async fn stop_proximity_unlock(&self) {
        self.core.stop_proximity_unlock().await
    }

    /// Whether proximity unlock runs (it stops by itself when Bluetooth goes off).
    pub fn is_proximity_unlock_on(&self) -> bool {
        self.core.is_proximity_unlock_on()
    }

    pub fn is_signed_in(&self) -> bool {
        self.core.is_signed_in()
    }

    /// Signs in, registers this device and fetches the doors. When the person already has as
    /// many devices as the property allows, this fails with `DeviceLimit` after the session
    /// started: the client is signed in without a device; `devices()` lists the others,
    /// `remove_device` removes one, and `refresh()` then registers this one.
    pub async fn sign_in(&self, email: String, password: String) -> Result<Person, DoorError> {
        Ok(self.core.sign_in(&email, &password).await?.into())
    }

    /// Signs in with an OpenID Connect ID token from the app's own identity provider (the
    /// provider the property's manager configured), then registers this device and fetches the
    /// doors, as `sign_in` does. Pass the `nonce` of the authentication request when the app
    /// sent one: the server then refuses a token that does not carry it. A token the server
    /// does not accept fails with `InvalidInput` on `id_token` (one reason for every check,
    /// by design); a valid token of someone the property does not know, or who was revoked,
    /// with `NotPermitted`.
    pub async fn sign_in_with_token(
        &self,
        id_token: String,
        nonce: Option<String>,
    ) -> Result<Person, DoorError> {
        Ok(self
            .core
            .sign_in_with_token(&id_token, nonce.as_deref())
            .await?
            .into())
    }

    /// Signs a guest in with the token of their invite.
    pub async fn redeem_invite(&self, invite_token: String) -> Result<Person, DoorError> {
        Ok(self.core.redeem_invite(&invite_token).await?.into())
    }

    pub async fn sign_out(&self) -> Result<(), DoorError> {
        Ok(self.core.sign_out().await?)
    }

    /// Fetches doors and credentials now. The cache is replaced only by a complete, verified
    /// answer.
    pub async fn refresh(&self) -> Result<Vec<Door>, DoorError> {
        let views = self.core.refresh().await?;
        doors_of(&self.core, views)
    }

    /// The cached doors, sorted by name, each with its state now. Works offline.
    pub fn doors(&self) -> Result<Vec<Door>, DoorError> {
        let views = self.core.doors()?;
        doors_of(&self.core, views)
    }

    /// The doors stream (OpenDOOR `listenForLocks()`): `listener` gets the cached doors now,
    /// before this returns, then the doors again after every change (a refresh, sign-in or
    /// sign-out, a Door Sync that changes what the phone carries for a lock) and when a door's
    /// decision changes with the time (at the earliest `Door.nextChange`), in order, until the
    /// returned watch is cancelled or dropped.
    pub fn watch_doors(
        &self,
        listener: Arc<dyn DoorsListener>,
    ) -> Result<Arc<DoorsWatch>, DoorError> {
        DoorsWatch::start(&self.watchers, listener)
    }

    pub fn door(&self, door_id: String) -> Result<Door, DoorError> {
        let view = self.core.door(&door_id)?;
        let pending = self.core.sync_pending(&view.door)?;
        Ok(Door::new(view, pending))
    }

    /// The instant answer: may this person open this door now? No radio, no network.
    pub fn access_now(&self, door_id: String) -> Result<AccessDecision, DoorError> {
        Ok(self.core.door(&door_id)?.decision.into())
    }

    /// "Sync this door": carries Door Sync data to the lock without opening it (the phone
    /// must be near the door), within `timeout_ms` (30 s when 0). Unlocks sync on their own.
    #[uniffi::method(default(cancellation = None))]
    pub async fn sync_door(
        &self,
        door_id: String,
        timeout_ms: u64,
        cancellation: Option<Arc<Cancellation>>,
    ) -> Result<(), DoorError> {
        let timeout = match timeout_ms {
            0 => Duration::from_secs(30),
            ms => Duration::from_millis(ms),
        };
        cancellable(cancellation, async {
            self.core.sync_door(&door_id, timeout).await?;
            Ok(())
        })
        .await
    }

    /// This person's recent unlocks on this phone, newest first.
    pub fn recent_activity(&self, limit: u32) -> Result<Vec<Activity>, DoorError> {
        Ok(self
            .core
            .activity(limit)?
            .into_iter()
            .map(|(door_id, door_name, at, outcome)| Activity {
                door_id,
                door_name,
                at: from_unix(at),
                outcome,
            })
            .collect())
    }

    /// A page of the door's access log (OpenDOOR `getAccessLogs`), newest first: `limit` (1 to
    /// 200) entries older than `before`, a page's `next_cursor` (absent: the newest). This
    /// person's own entries at any door they have or had; every entry, with names, at a door
    /// of their own unit; never other people's at a shared door. A door they never had is
    /// `InvalidInput` on `door_id`.
    pub async fn access_log(
        &self,
        door_id: String,
        before: Option<String>,
        limit: u32,
    ) -> Result<AccessLogPage, DoorError> {
        let page = self
            .core
            .access_log(&door_id, before.as_deref(), limit)
            .await?;
        Ok(AccessLogPage {
            entries: page.entries.into_iter().map(AccessLogEntry::from).collect(),
            next_cursor: page.next,
        })
    }

    /// Audit records this phone carries for the server (uploaded on the next refresh).
    pub fn pending_audit_records(&self) -> Result<u64, DoorError> {
        Ok(self.core.outbox_len()?)
    }

    /// The person's doorcode for the door, where a key enables doorcodes there.
    pub fn doorcode(&self, door_id: String) -> Result<Option<String>, DoorError> {
        Ok(self.core.doorcode(&door_id)?)
    }

    /// Invites a guest to some of this person's shareable doors for `[from, until)`: with the
    /// app at `door_ids`, with a temporary doorcode at `doorcode_door_ids` (keypad doors where
    /// a key this person shares enables doorcodes), both where a door is in both. The backend
    /// makes one key per door for the guest. The invite token and the codes are in the answer
    /// only. `DoorcodesNotShareable` names doors where no shared key gives a doorcode.
    #[uniffi::method(default(doorcode_door_ids))]
    pub async fn invite_guest(
        &self,
        door_ids: Vec<String>,
        contact: String,
        from: SystemTime,
        until: SystemTime,
        doorcode_door_ids: Vec<String>,
    ) -> Result<GuestInvite, DoorError> {
        let (from, until) = (to_unix(from, "from")?, to_unix(until, "until")?);
        let invited = self
            .core
            .invite_guest(&door_ids, &doorcode_door_ids, &contact, from, until)
            .await?;
        Ok(GuestInvite {
            guest: invited.guest.into(),
            invite_token: invited.invite_token,
            doorcodes: invited
                .doorcodes
                .into_iter()
                .map(|c| GuestDoorcode {
                    door_id: c.door_id,
                    code: c.code,
                })
                .collect(),
        })
    }

    pub async fn guests(&self) -> Result<Vec<Guest>, DoorError> {
        Ok(self
            .core
            .guests()
            .await?
            .into_iter()
            .map(Guest::from)
            .collect())
    }

    pub async fn revoke_guest(&self, guest_id: String) -> Result<Guest, DoorError> {
        Ok(self.core.revoke_guest(&guest_id).await?.into())
    }

    /// Revokes the guest's access to one door of the invite; the guest keeps the others
    /// (their document for that door is refused at offline locks from the locks' next Door
    /// Sync). Removing the last door revokes the guest. A guest or door not of this invite is
    /// `InvalidInput` on `guest_id` or `door_id`.
    pub async fn revoke_guest_door(
        &self,
        guest_id: String,
        door_id: String,
    ) -> Result<Guest, DoorError> {
        Ok(self
            .core
            .revoke_guest_door(&guest_id, &door_id)
            .await?
            .into())
    }

    /// The person's devices in use, oldest first (removed ones are left out); `this_device`
    /// marks this client's.
    pub async fn devices(&self) -> Result<Vec<RegisteredDevice>, DoorError> {
        Ok(self
            .core
            .devices()
            .await?
            .into_iter()
            .map(RegisteredDevice::from)
            .collect())
    }

    /// Removes one of the person's devices (a lost or replaced phone): the server gives it
    /// nothing more, its credentials are revoked at offline locks from their next Door Sync,
    /// and its sessions end. Removing this client's own device signs this client out (as
    /// `sign_out`: the cache and a key the core made are forgotten); signing in again
    /// registers the device anew. Another person's device is `InvalidInput` on `device_id`.
    pub async fn remove_device(&self, device_id: String) -> Result<(), DoorError> {
        Ok(self.core.remove_device(&device_id).await?)
    }
}

#[cfg(feature = "radio")]
fn default_transport() -> Option<Arc<dyn Transport>> {
    Some(Arc::new(crate::ble::btleplug::BtleplugTransport::new()))
}

#[cfg(not(feature = "radio"))]
fn default_transport() -> Option<Arc<dyn Transport>> {
    None
}

impl From<access_log::Entry> for AccessLogEntry {
    fn from(e: access_log::Entry) -> AccessLogEntry {
        AccessLogEntry {
            at: from_unix(e.at),
            outcome: match e.outcome {
                access_log::Outcome::Granted => AccessOutcome::Granted,
                access_log::Outcome::Denied => AccessOutcome::Denied,
                access_log::Outcome::RecordsLost => AccessOutcome::RecordsLost,
            },
            method: e.method.map(|m| match m {
                access_log::Method::Ble => AccessMethod::Ble,
                access_log::Method::Doorcode => AccessMethod::Doorcode,
            }),
            person_id: e.person_id,
            person_name: e.person_name,
            deny_reason: e.deny_reason,
            lost: e.lost,
        }
    }
}

impl From<Unlocked> for UnlockReceipt {
    fn from(u: Unlocked) -> UnlockReceipt {
        UnlockReceipt {
            lock_time: from_unix(u.lock_time),
            pending_audit: u.pending_audit,
            attempts: u.attempts,
        }
    }
}

impl From<Phase> for UnlockPhase {
    fn from(p: Phase) -> UnlockPhase {
        match p {
            Phase::Started => UnlockPhase::Started,
            Phase::Connecting { attempt } => UnlockPhase::Connecting { attempt },
            Phase::Authorizing => UnlockPhase::Authorizing,
            Phase::Succeeded(u) => UnlockPhase::Succeeded { receipt: u.into() },
            Phase::Failed(e) => UnlockPhase::Failed { error: e.into() },
            Phase::Cancelled => UnlockPhase::Cancelled,
        }
    }
}

impl From<DenyReason> for UnlockDenial {
    fn from(r: DenyReason) -> UnlockDenial {
        match r {
            DenyReason::Revoked => UnlockDenial::Revoked,
            DenyReason::Expired => UnlockDenial::Expired,
            DenyReason::NotYetValid => UnlockDenial::NotYetValid,
            DenyReason::WrongDoor => UnlockDenial::WrongDoor,
            DenyReason::ClockUntrusted => UnlockDenial::ClockUntrusted,
            DenyReason::Replayed => UnlockDenial::Replayed,
            DenyReason::Busy => UnlockDenial::Busy,
            // OutOfSchedule travels as DoorError::OutOfSchedule with its next opening.
            DenyReason::BadCredential | DenyReason::OutOfSchedule { .. } => {
                UnlockDenial::BadCredential
            }
        }
    }
}

/// One credential-store entry per data directory, so two clients on one device (tests, a
/// multi-account app) keep separate keys.
fn account_for(dir: &std::path::Path) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(dir.to_string_lossy().as_bytes());
    format!("data-{}", hex_prefix(&digest[..8]))
}

fn hex_prefix(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl From<crate::client::Person> for Person {
    fn from(p: crate::client::Person) -> Person {
        Person {
            id: p.id,
            name: p.name,
            role: p.role,
            property_name: p.property_name,
        }
    }
}

impl From<crate::client::Device> for RegisteredDevice {
    fn from(d: crate::client::Device) -> RegisteredDevice {
        RegisteredDevice {
            id: d.id,
            registered_at: from_unix(d.created_at),
            last_seen: d.last_seen_at.map(from_unix),
            this_device: d.this_device,
        }
    }
}

impl From<GuestJson> for Guest {
    fn from(g: GuestJson) -> Guest {
        Guest {
            id: g.id,
            contact: g.contact,
            door_ids: g.door_ids,
            doorcode_door_ids: g.doorcode_door_ids,
            from: from_unix(g.starts_at),
            until: from_unix(g.ends_at),
            redeemed: g.redeemed,
            revoked: g.revoked,
        }
    }
}
