//! One BLE connection at the lock: unlock requests (`crate::unlock::lock`) and Door Sync
//! messages (`crate::sync::lock`) arrive on it in any order. It sits above both so that neither
//! depends on the other.

use rand_core::CryptoRngCore;

use crate::health::HealthReadings;
use crate::sync::lock::{self as sync_lock, SyncSession};
use crate::sync::messages::SyncMessage;
use crate::unlock::lock::{refuse, respond, LockConfig, LockReply, LockState};
use crate::wire::{ErrorCode, Message, Reassembler};
use crate::UnixTime;

/// One BLE connection's receiving side: unlock requests and Door Sync messages, in any order.
#[derive(Default)]
pub struct LockSession {
    rx: Reassembler,
    sync: SyncSession,
}

impl LockSession {
    pub fn new() -> LockSession {
        LockSession::default()
    }

    /// What the lock's hardware measures now (battery, firmware). Give it before the
    /// connection's messages, and again as it changes: the first audit pull of a phone that
    /// proved a credential records it, with the clock and sync state, as a signed health
    /// record (`crate::health`). A lock that never gives readings records none.
    pub fn report_health(&mut self, readings: HealthReadings) {
        self.sync.readings = Some(readings);
    }

    /// One written chunk; `now` is the hardware clock. `None`: nothing to send (more chunks
    /// are due, or a message needs no answer). A reassembly failure answers with an error frame
    /// and drops the partial message.
    pub fn on_fragment(
        &mut self,
        config: &LockConfig,
        state: &mut LockState,
        fragment: &[u8],
        now: UnixTime,
        rng: &mut impl CryptoRngCore,
    ) -> Option<LockReply> {
        match self.rx.push(fragment) {
            Ok(None) => None,
            Ok(Some(message)) => self.on_message(config, state, &message, now, rng),
            Err(_) => Some(refuse(ErrorCode::Framing)),
        }
    }

    /// One whole message, for a lock that reassembles chunks itself.
    pub fn on_message(
        &mut self,
        config: &LockConfig,
        state: &mut LockState,
        message: &Message,
        now: UnixTime,
        rng: &mut impl CryptoRngCore,
    ) -> Option<LockReply> {
        if SyncMessage::is_sync_kind(message.kind) {
            return sync_lock::handle(&mut self.sync, config, state, message, now);
        }
        let reply = respond(config, state, message, now, rng);
        // The first holder proven on a connection is its holder: a second credential on the
        // same link does not take over the first one's transfer.
        if let Some(holder) = reply.decision.and_then(|d| d.holder) {
            self.sync.holder.get_or_insert(holder);
        }
        Some(reply)
    }
}
