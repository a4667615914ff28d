//! Proof that a phone holds its device key: what it signs for a server challenge. Phone and
//! server build the message here, so they cannot disagree on it.

use alloc::vec::Vec;

/// Domain separation: a possession proof can never be mistaken for any other signature.
pub const POSSESSION_CONTEXT: &[u8] = b"door-core/device-possession/v1\0";

/// What the device signs (ECDSA P-256 / SHA-256) to prove it holds its key.
pub fn possession_message(challenge: &[u8]) -> Vec<u8> {
    [POSSESSION_CONTEXT, challenge].concat()
}
