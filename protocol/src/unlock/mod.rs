//! BLE unlock: one request from the phone, one response from the lock, both offline.
//!
//! The phone seals its request to the lock's static key (ECDH P-256 with an ephemeral key,
//! HKDF-SHA256, AES-256-GCM, as Aliro and Tedee do): only the genuine lock can read it, and
//! only the genuine lock can seal the answer, so the phone learns the lock is genuine. Inside
//! the request the phone presents its access document, its clock and an ECDSA signature by its
//! device key over a transcript that binds the lock, the ephemeral key, the time and the
//! document. Everything the phone computes depends only on what it has cached, so all of it is
//! done while scanning and connecting ([`phone`]); the lock verifies everything offline
//! ([`lock`]). docs/PROTOCOL.md, "BLE unlock", is the specification.

pub(crate) mod codec;
mod keys;
pub mod lock;
pub mod phone;
pub mod verified;

use alloc::vec::Vec;
use core::fmt;

use sha2::{Digest, Sha256};

use crate::ids::Id;
use crate::unlock::keys::TAG_LEN;
use crate::wire::MAX_BODY;
use crate::UnixTime;

pub use lock::{
    respond, Fingerprint, LockConfig, LockDecision, LockReply, LockState, Persist, ReplayCache,
    DEFAULT_CLOCK_TOLERANCE,
};
pub use phone::{PhoneError, PreparedUnlock, UnlockPreparation, UnlockTarget};
pub use verified::{DocumentDigest, VerifiedDocuments, VERIFIED_CAPACITY};

/// The protocol version byte at the start of every unlock request and response body. Version 1
/// sent payloads unpadded; a lock of either version refuses the other's requests in the clear
/// (unsupported version) instead of reading them as bad credentials.
pub const UNLOCK_VERSION: u8 = 2;

/// The sizes a sealed request body comes in. The phone pads its payload with zeros to the
/// smallest that holds it, so an observer learns which size a person's document falls in, not
/// its length, which would single the person out for as long as the document lives. The first
/// holds a one-door document with a few grants and windows and a signed time, which is what
/// nearly every resident carries; each next doubles, and the last is the largest message
/// (docs/PROTOCOL.md, "Padding", has the figures).
pub const REQUEST_BODY_SIZES: [usize; 6] = [768, 1536, 3072, 6144, 12288, MAX_BODY];

/// The size of every sealed response body, whatever the lock decided: a granted answer and a
/// denial (with or without the next opening) look alike on the air.
pub const RESPONSE_BODY_SIZE: usize = codec::RESPONSE_HEADER_LEN + codec::OUTCOME_LEN + TAG_LEN;

/// Prefix of the transcript the device key signs; the NUL ends the label, so no other use of
/// the device key can produce a message that starts the same way by accident.
const TRANSCRIPT_LABEL: &[u8] = b"door-unlock/v1\0";

/// Why a lock refused to open.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum DenyReason {
    /// The credential is valid here but not now; `next_allowed` is the next opening by the
    /// lock's clock (`None`: never again under this grant).
    OutOfSchedule { next_allowed: Option<UnixTime> },
    /// The credential is on the lock's revocation list.
    Revoked,
    /// The access document (or the grant's schedule range) has ended.
    Expired,
    /// The access document (or the grant's schedule range) has not begun.
    NotYetValid,
    /// The access document grants nothing for this lock's door.
    WrongDoor,
    /// The document is not one the lock's issuer keys vouch for, or the phone did not prove
    /// it holds the document's device key.
    BadCredential,
    /// The phone's time and the lock's differ by more than the lock's tolerance: one of the two
    /// clocks is wrong, and the lock will not judge freshness or schedules by it.
    ClockUntrusted,
    /// The lock has already answered this request (same ephemeral key): a replay.
    Replayed,
    /// The lock's replay cache is full of live entries (an unusual burst of unlocks within
    /// the clock tolerance). It refuses rather than forgets an entry a replay could then reuse;
    /// a retry succeeds once the oldest entries expire.
    Busy,
}

/// What the lock decided.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum UnlockResult {
    Granted,
    Denied(DenyReason),
}

impl UnlockResult {
    pub fn is_granted(&self) -> bool {
        matches!(self, UnlockResult::Granted)
    }
}

impl fmt::Display for UnlockResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnlockResult::Granted => f.write_str("granted"),
            UnlockResult::Denied(r) => write!(f, "denied: {r}"),
        }
    }
}

impl fmt::Display for DenyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DenyReason::OutOfSchedule {
                next_allowed: Some(t),
            } => write!(f, "out of schedule until {t}"),
            DenyReason::OutOfSchedule { next_allowed: None } => f.write_str("out of schedule"),
            DenyReason::Revoked => f.write_str("credential revoked"),
            DenyReason::Expired => f.write_str("credential expired"),
            DenyReason::NotYetValid => f.write_str("credential not yet valid"),
            DenyReason::WrongDoor => f.write_str("credential does not grant this door"),
            DenyReason::BadCredential => f.write_str("credential not accepted"),
            DenyReason::ClockUntrusted => f.write_str("phone and lock clocks disagree"),
            DenyReason::Replayed => f.write_str("request already used"),
            DenyReason::Busy => f.write_str("lock busy, retry shortly"),
        }
    }
}

/// The lock's authenticated answer, as the phone reads it.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub struct UnlockOutcome {
    pub result: UnlockResult,
    /// The lock's clock when it decided.
    pub lock_time: UnixTime,
    /// The lock's sync iteration: the last sync bundle it applied (0 before any), so the phone
    /// knows whether it carries something newer.
    pub sync_iteration: u64,
    /// Audit records the lock holds that no server has acknowledged, this unlock's included.
    pub pending_audit: u32,
}

/// The bytes the device key signs (ECDSA P-256 with SHA-256 over them):
///
/// ```text
/// "door-unlock/v1\0" || lock_id (16) || E (33) || lock static key (33) || t (8, big-endian)
///     || SHA-256(access document)
/// ```
///
/// `E` and the lock key are SEC1 compressed. Binding `E` makes the signature good for this one
/// session, binding the lock and `t` makes it useless anywhere or any time else, and the
/// document hash ties the proof to the rights presented.
pub fn transcript(
    lock_id: Id,
    ephemeral: &[u8; 33],
    lock_key: &[u8; 33],
    time: UnixTime,
    document: &[u8],
) -> Vec<u8> {
    let mut t = Vec::with_capacity(TRANSCRIPT_LABEL.len() + 16 + 33 + 33 + 8 + 32);
    t.extend_from_slice(TRANSCRIPT_LABEL);
    t.extend_from_slice(&lock_id.0);
    t.extend_from_slice(ephemeral);
    t.extend_from_slice(lock_key);
    t.extend_from_slice(&time.to_be_bytes());
    t.extend_from_slice(&Sha256::digest(document));
    t
}
