//! door-protocol: the trust core shared by the phone, the lock and the server.
//!
//! Sans-I/O in the manner of quinn-proto and rustls: no sockets, no async, no clock and no
//! hidden randomness. Time is always an argument (`UnixTime`, seconds since the Unix epoch,
//! UTC) and randomness is passed in as a `rand_core::CryptoRngCore`, so the same code runs in
//! a phone, a server and lock firmware (`--no-default-features` builds for Cortex-M).
#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod access;
pub mod audit;
pub mod cbor;
pub mod civil;
pub mod cose;
mod curve;
pub mod device;
pub mod ids;
pub mod keys;
pub mod revocation;
pub mod schedule;
pub mod session;
pub mod sync;
pub mod unlock;
pub mod wire;
pub mod zone;

pub use access::{
    decode_access, verify_access, AccessDocument, AccessError, DoorGrant, VerifiedAccess,
};
pub use audit::{
    verify_audit, AuditAck, AuditEpoch, AuditError, AuditEvent, AuditLog, AuditRecord,
    AUDIT_CAPACITY, MIN_AUDIT_CAPACITY,
};
pub use cbor::{Malformed, Problem};
pub use ids::Id;
pub use keys::{IssuerKey, IssuerKeys, IssuerPublicKey, KeyError, KeyId, LockKey, LockPublicKey};
pub use revocation::{
    verify_revocation, Floor, FloorList, RevocationDocument, RevocationEntry, RevocationError,
    RevocationList, RevocationMode, VerifiedRevocation,
};
pub use schedule::{evaluate, evaluate_any, Decision, Schedule, ScheduleError, Weekdays, Window};
pub use session::LockSession;
pub use sync::{
    inspect_bundle, open_bundle, verify_signed_time, Applied, AuditPuller, Doorcode,
    DoorcodeChanges, DoorcodeResult, OpenedBundle, SignedTime, SyncBundle, SyncError, SyncOutcome,
    SyncTransfer,
};
pub use unlock::{
    DenyReason, LockConfig, LockReply, LockState, Persist, PhoneError, PreparedUnlock,
    UnlockOutcome, UnlockPreparation, UnlockResult, UnlockTarget,
};
pub use wire::{ErrorCode, Message, Reassembler, WireError};
pub use zone::{LocalTime, Transition, ZoneError, ZoneRules};

/// Seconds since 1970-01-01T00:00:00Z. Signed so that arithmetic around the epoch is plain.
pub type UnixTime = i64;
