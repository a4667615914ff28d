//! Unlocking a door: the instant schedule check from the cache first (no radio work when the
//! answer is "Out of Schedule"), then, at once and side by side, preparing the request
//! (ephemeral key, ECDH, the device signature) and finding and connecting to the lock; then
//! one request and one response. One deadline bounds everything; a connection that drops
//! before the answer is retried once with a fresh request, which is safe: a replayed request
//! is refused by the lock, and a second, new request at worst opens the door a second time.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use door_protocol::sync::messages::SyncMessage;
use door_protocol::unlock::{
    DenyReason, PhoneError, PreparedUnlock, UnlockPreparation, UnlockResult, UnlockTarget,
};
use door_protocol::{AuditEpoch, Decision, Id, LockPublicKey, Reassembler, UnixTime};
use tokio::time::Instant;

use crate::ble::{BleError, Connection, LockTarget, Transport};
use crate::doors::CachedDoor;
use crate::error::{CoreError, CoreResult};
use crate::signer::Signer;

/// Where an unlock is, for the app's progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Looking for the lock and preparing the request; `attempt` 2 after a dropped link.
    Connecting { attempt: u32 },
    /// Connected; the request is on its way.
    Authorizing,
}

/// A granted unlock, with what the lock said about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unlocked {
    pub lock_time: UnixTime,
    pub sync_iteration: u64,
    pub pending_audit: u32,
    /// Connections it took (2 after a retry).
    pub attempts: u32,
}

/// The pre-check the phone can make alone, from the signed facts in its cache.
pub fn precheck(decision: Decision) -> CoreResult<()> {
    match decision {
        Decision::Allowed { .. } => Ok(()),
        Decision::OutOfSchedule { next_allowed } => Err(CoreError::OutOfSchedule { next_allowed }),
        Decision::NotYetValid { from } => Err(CoreError::OutOfSchedule {
            next_allowed: Some(from),
        }),
        Decision::Expired { .. } => Err(CoreError::Denied(DenyReason::Expired)),
    }
}

/// Fetches a signed time bound to a lock's installation (its id in hex and its audit epoch),
/// for a lock with no trusted time yet; `None` when the phone cannot (offline).
pub type BoundTime<'a> = dyn Fn(String, AuditEpoch) -> Pin<Box<dyn Future<Output = Option<Vec<u8>>> + Send + 'a>>
    + Send
    + Sync
    + 'a;

pub struct Unlocker<'a> {
    pub transport: &'a dyn Transport,
    pub signer: Arc<dyn Signer>,
    pub now: UnixTime,
    /// An issuer-signed time to hand the lock, so a lock whose clock fell behind is corrected
    /// in this very unlock.
    pub signed_time: Option<Vec<u8>>,
    /// How to commission a lock that answers "clock untrusted" because it has no trusted time
    /// at all (new or wiped): a time bound to its installation, sent before one more request.
    pub bound_time: &'a BoundTime<'a>,
    pub progress: &'a (dyn Fn(Stage) + Send + Sync),
}

impl Unlocker<'_> {
    /// Opens the door; on success also hands back the still-open connection, so a Door Sync
    /// can ride along after the answer.
    pub async fn unlock(
        &self,
        door: &CachedDoor,
        timeout: Duration,
    ) -> CoreResult<(Unlocked, Box<dyn Connection>)> {
        let deadline = Instant::now() + timeout;
        let target = target_of(door)?;
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.attempt(door, &target, attempts, deadline).await {
                Err(CoreError::Ble(BleError::Disconnected))
                    if attempts == 1 && Instant::now() < deadline =>
                {
                    continue
                }
                Err(e) => return Err(e),
                Ok((mut unlocked, connection)) => {
                    unlocked.attempts = attempts;
                    return Ok((unlocked, connection));
                }
            }
        }
    }

    async fn attempt(
        &self,
        door: &CachedDoor,
        target: &UnlockTarget,
        attempt: u32,
        deadline: Instant,
    ) -> CoreResult<(Unlocked, Box<dyn Connection>)> {
        (self.progress)(Stage::Connecting { attempt });
        let lock = LockTarget {
            lock_id: door.lock_id.clone(),
        };
        let remaining = deadline.saturating_duration_since(Instant::now());
        let (prepared, connection) = tokio::join!(
            self.prepare(target.clone()),
            self.transport.connect(&lock, remaining)
        );
        let mut connection = connection.map_err(CoreError::Ble)?;
        let outcome = async {
            let mut prepared = prepared?;
            (self.progress)(Stage::Authorizing);
            let outcome = exchange(connection.as_mut(), &mut prepared, deadline).await?;
            if outcome.result == UnlockResult::Denied(DenyReason::ClockUntrusted)
                && self
                    .commission(connection.as_mut(), &door.lock_id, deadline)
                    .await
            {
                let mut again = self.prepare(target.clone()).await?;
                return exchange(connection.as_mut(), &mut again, deadline).await;
            }
            Ok(outcome)
        }
        .await;
        let outcome = match outcome {
            Ok(o) if o.result.is_granted() => o,
            other => {
                connection.close().await;
                other?
            }
        };
        match outcome.result {
            UnlockResult::Granted => Ok((
                Unlocked {
                    lock_time: outcome.lock_time,
                    sync_iteration: outcome.sync_iteration,
                    pending_audit: outcome.pending_audit,
                    attempts: 0,
                },
                connection,
            )),
            UnlockResult::Denied(DenyReason::OutOfSchedule { next_allowed }) => {
                Err(CoreError::OutOfSchedule { next_allowed })
            }
            UnlockResult::Denied(reason) => Err(CoreError::Denied(reason)),
        }
    }

    /// Whether the lock, which had no trusted time, now has: it says whether it has and its
    /// epoch (`ClockSet` with no time), the server signs a time bound to that epoch, and the
    /// lock takes it. Any failure (an older lock that does not know the message, offline, a
    /// lock that had trusted time already and is simply fast) leaves the denial as it was.
    async fn commission(
        &self,
        connection: &mut dyn Connection,
        lock_id: &str,
        deadline: Instant,
    ) -> bool {
        let Ok((epoch, false)) = clock_exchange(connection, Vec::new(), deadline).await else {
            return false;
        };
        let Some(time) = (self.bound_time)(lock_id.to_owned(), epoch).await else {
            return false;
        };
        matches!(
            clock_exchange(connection, time, deadline).await,
            Ok((_, true))
        )
    }

    /// Everything that needs no lock input, including the device signature (a hardware
    /// keystore may take a while, so it runs on the blocking pool while the radio works).
    async fn prepare(&self, target: UnlockTarget) -> CoreResult<PreparedUnlock> {
        let (mut preparation, message) =
            UnlockPreparation::new(target, self.now, &mut rand_core::OsRng).map_err(phone_error)?;
        if let Some(t) = &self.signed_time {
            preparation = preparation.with_signed_time(t.clone());
        }
        let signer = self.signer.clone();
        let signature = tokio::task::spawn_blocking(move || signer.sign(&message))
            .await
            .map_err(|e| CoreError::DeviceKey(format!("the signing task failed: {e}")))??;
        preparation.signed(&signature).map_err(phone_error)
    }
}

async fn exchange(
    connection: &mut dyn Connection,
    prepared: &mut PreparedUnlock,
    deadline: Instant,
) -> CoreResult<door_protocol::unlock::UnlockOutcome> {
    let mtu = u16::try_from(connection.mtu()).unwrap_or(u16::MAX);
    for fragment in prepared.request_fragments(mtu) {
        within(deadline, connection.write(&fragment)).await?;
    }
    loop {
        let fragment = within(deadline, connection.notification()).await?;
        if let Some(outcome) = prepared.on_fragment(&fragment).map_err(phone_error)? {
            return Ok(outcome);
        }
    }
}

/// Sends `ClockSet` (a signed time, or nothing) and reads the lock's `ClockState`: its epoch and
/// whether it has trusted time.
async fn clock_exchange(
    connection: &mut dyn Connection,
    signed_time: Vec<u8>,
    deadline: Instant,
) -> CoreResult<(AuditEpoch, bool)> {
    let mtu = u16::try_from(connection.mtu()).unwrap_or(u16::MAX);
    let question = SyncMessage::ClockSet { signed_time }.to_message();
    for fragment in question.fragments(mtu) {
        within(deadline, connection.write(&fragment)).await?;
    }
    let mut rx = Reassembler::new();
    let message = loop {
        let fragment = within(deadline, connection.notification()).await?;
        if let Some(message) = rx
            .push(&fragment)
            .map_err(|e| CoreError::Protocol(format!("clock: {e}")))?
        {
            break message;
        }
    };
    match SyncMessage::from_message(&message) {
        Ok(SyncMessage::ClockState { epoch, trusted, .. }) => Ok((epoch, trusted)),
        _ => Err(CoreError::Protocol(format!(
            "clock: unexpected message type {}",
            message.kind
        ))),
    }
}

async fn within<T>(
    deadline: Instant,
    step: impl std::future::Future<Output = Result<T, BleError>>,
) -> CoreResult<T> {
    match tokio::time::timeout_at(deadline, step).await {
        Ok(r) => r.map_err(CoreError::Ble),
        Err(_) => Err(CoreError::Ble(BleError::Timeout)),
    }
}

fn target_of(door: &CachedDoor) -> CoreResult<UnlockTarget> {
    let lock_id = Id::from_hex(&door.lock_id).ok_or_else(|| CoreError::Cache("lock id".into()))?;
    let lock_key = LockPublicKey::from_sec1(&door.lock_public_key)
        .map_err(|_| CoreError::Cache("lock key".into()))?;
    Ok(UnlockTarget {
        lock_id,
        lock_key,
        access_document: door.document.clone(),
    })
}

fn phone_error(e: PhoneError) -> CoreError {
    match e {
        PhoneError::WrongSigner | PhoneError::SignatureEncoding => {
            CoreError::DeviceKey(e.to_string())
        }
        PhoneError::NotGenuine => CoreError::NotGenuine,
        other => CoreError::Protocol(other.to_string()),
    }
}
