//! Door Sync: what offline locks learn from the server and what they report back, with phones
//! as untrusted couriers (docs/PROTOCOL.md, "Door Sync", is the specification).
//!
//! - [`bundle`]: the issuer-signed sync bundle, bound to one lock and one iteration, its
//!   doorcodes sealed to the lock's key; full or a delta from the lock's current iteration.
//! - [`time`]: issuer-signed time, and the rules by which a lock corrects its clock with it.
//! - [`state`]: what a lock keeps (sync iteration, revocations, doorcodes, keypad) and how it
//!   applies a bundle: atomically or not at all.
//! - [`messages`] and [`transfer`]: the BLE messages that move a bundle in flow-controlled,
//!   resumable blocks and carry audit records home; the phone's state machines live in
//!   [`transfer`], the lock's in `crate::sync::lock`,
//!   which `LockSession` (`crate::session`) hands them to.
//!
//! Nothing here needs per-session encryption: a bundle is signed by the issuer and its secrets
//! (doorcodes) are sealed to the lock, audit records are signed by the lock, and the control
//! messages (offers, acknowledgements) only steer the transfer; a tampering relay can stall a
//! transfer, never make a lock accept what the issuer did not sign for it.

pub mod bundle;
pub(crate) mod lock;
pub mod messages;
mod seal;
pub mod state;
pub mod time;
pub mod transfer;

use core::fmt;

use crate::cbor::Malformed;
use crate::cose::OpenError;
use crate::ids::Id;
use crate::keys::KeyId;
use crate::revocation::RevocationList;

pub use bundle::{
    inspect_bundle, open_bundle, BundleInfo, Doorcode, DoorcodeChanges, KeypadRules, OpenedBundle,
    SyncBundle, SYNC_CONTENT_TYPE,
};
pub use messages::{FailReason, Offer, SyncMessage};
pub use state::{Applied, DoorcodeDenied, DoorcodeResult, Keypad, PartialTransfer, SyncState};
pub use time::{verify_signed_time, ClockState, HighWater, SignedTime, TimeUpdate};
pub use transfer::{
    AuditBatch, AuditPuller, Progress, PulledRecord, SyncEvent, SyncOutcome, SyncTransfer,
    TransferError,
};

/// The largest signed bundle (the whole COSE_Sign1). A full bundle at both caps below is about
/// 67 KiB; a lock buffers at most one bundle while it arrives.
pub const MAX_BUNDLE_SIZE: usize = 96 * 1024;
/// Most revocation entries one bundle carries, and most a lock's sync state holds: the
/// capacity of a [`RevocationList`].
pub const MAX_BUNDLE_REVOCATIONS: usize = RevocationList::CAPACITY;
/// Most doorcodes one bundle carries, and most a lock holds.
pub const MAX_DOORCODES: usize = 1024;

/// Why a bundle or a signed time was refused, or could not be applied. On any of them the
/// lock's state is unchanged.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SyncError {
    /// Not well formed: frame, payload, sealed doorcodes or their contents.
    Malformed(Malformed),
    /// Signed by a key the lock does not trust.
    UnknownIssuerKey { kid: KeyId },
    /// The signature does not verify: altered on the way, or forged.
    BadSignature,
    /// Signed for another lock.
    Foreign { lock_id: Id },
    /// The doorcodes do not open with this lock's key: sealed to another key (the server holds
    /// a stale key for this lock).
    Undecryptable,
    /// The bundle's iteration `got` is not above the lock's `have`: old, or already applied.
    Stale { have: u64, got: u64 },
    /// A delta from `base`, but the lock is at `have`: the courier should bring a full bundle.
    WrongBase { have: u64, base: u64 },
    /// Applying the delta would exceed what the lock holds (revocations or doorcodes).
    Full { capacity: usize },
}

impl From<OpenError> for SyncError {
    fn from(e: OpenError) -> SyncError {
        match e {
            OpenError::BadSignature => SyncError::BadSignature,
            OpenError::UnknownIssuerKey { kid } => SyncError::UnknownIssuerKey { kid },
            OpenError::Malformed(m) => SyncError::Malformed(m),
        }
    }
}

impl From<Malformed> for SyncError {
    fn from(m: Malformed) -> SyncError {
        SyncError::Malformed(m)
    }
}

impl fmt::Display for SyncError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SyncError::Malformed(m) => write!(f, "malformed sync data: {m}"),
            SyncError::UnknownIssuerKey { kid } => write!(f, "unknown issuer key {kid}"),
            SyncError::BadSignature => f.write_str("sync data signature does not verify"),
            SyncError::Foreign { lock_id } => write!(f, "sync data is for lock {lock_id}"),
            SyncError::Undecryptable => f.write_str("doorcodes do not open with this lock's key"),
            SyncError::Stale { have, got } => {
                write!(f, "sync iteration {got} is not newer than {have}")
            }
            SyncError::WrongBase { have, base } => {
                write!(f, "delta from iteration {base}, but the lock is at {have}")
            }
            SyncError::Full { capacity } => write!(f, "would exceed {capacity} entries"),
        }
    }
}

impl core::error::Error for SyncError {}
