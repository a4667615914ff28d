//! Byte layouts of the unlock request and response (docs/PROTOCOL.md, "BLE unlock").
//!
//! ```text
//! request body  = version (1) || lock_id (16) || E (33) || AES-GCM(request key, payload)
//!                 AAD = message type || version || lock_id || E
//! response body = version (1) || nonce (12) || AES-GCM(response key, nonce, payload)
//!                 AAD = message type || version
//! ```
//!
//! Each payload is one CBOR map followed by zeros: a request's up to one of
//! [`REQUEST_BODY_SIZES`], a response's up to [`OUTCOME_LEN`]. The map ends itself, so the
//! padding needs no length of its own.

use alloc::vec::Vec;

use crate::cbor::{At, Keys, Malformed, Problem, Reader, Writer};
use crate::cose::MAX_DOCUMENT_SIZE;
use crate::ids::Id;
use crate::sync::time::MAX_SIGNED_TIME_SIZE;
use crate::unlock::keys::{NONCE_LEN, TAG_LEN};
use crate::unlock::{DenyReason, UnlockOutcome, UnlockResult, REQUEST_BODY_SIZES, UNLOCK_VERSION};
use crate::wire::kind;
use crate::UnixTime;

/// Bytes of the request's clear header: version, lock id, ephemeral key.
pub(crate) const REQUEST_HEADER_LEN: usize = 1 + 16 + 33;

/// The request's clear header and the AAD that binds it to the ciphertext.
pub(crate) struct RequestHeader {
    pub(crate) lock_id: Id,
    pub(crate) ephemeral: [u8; 33],
}

impl RequestHeader {
    pub(crate) fn encode(&self) -> [u8; REQUEST_HEADER_LEN] {
        let mut h = [0u8; REQUEST_HEADER_LEN];
        h[0] = UNLOCK_VERSION;
        h[1..17].copy_from_slice(&self.lock_id.0);
        h[17..].copy_from_slice(&self.ephemeral);
        h
    }

    /// The message type followed by the encoded header.
    pub(crate) fn aad(header: &[u8; REQUEST_HEADER_LEN]) -> [u8; 1 + REQUEST_HEADER_LEN] {
        let mut aad = [0u8; 1 + REQUEST_HEADER_LEN];
        aad[0] = kind::UNLOCK_REQUEST;
        aad[1..].copy_from_slice(header);
        aad
    }
}

/// The response's AAD: message type and version.
pub(crate) const RESPONSE_AAD: [u8; 2] = [kind::UNLOCK_RESPONSE, UNLOCK_VERSION];
/// Bytes of the response body before the ciphertext: version and nonce.
pub(crate) const RESPONSE_HEADER_LEN: usize = 1 + NONCE_LEN;
/// The smallest sealed request body: the header and an AEAD tag.
pub(crate) const MIN_REQUEST_BODY: usize = REQUEST_HEADER_LEN + TAG_LEN;
/// A response payload's padded length: the longest outcome's encoding (a map of five entries
/// with `next_allowed`, the lock's time and the sync iteration each a 9-byte integer, and
/// the pending count a 5-byte one), so every outcome fits and none is told by its length.
pub(crate) const OUTCOME_LEN: usize = 1 + 2 + 3 * 10 + 6;

/// What the request's ciphertext holds.
pub(crate) struct RequestPayload<'a> {
    pub(crate) document: &'a [u8],
    pub(crate) time: UnixTime,
    pub(crate) signature: [u8; 64],
    /// An issuer-signed time (COSE bytes) the phone brings to correct the lock's clock.
    pub(crate) signed_time: Option<&'a [u8]>,
}

mod key {
    pub const DOCUMENT: u64 = 0;
    pub const TIME: u64 = 1;
    pub const SIGNATURE: u64 = 2;
    pub const SIGNED_TIME: u64 = 3;

    pub const RESULT: u64 = 0;
    pub const NEXT_ALLOWED: u64 = 1;
    pub const LOCK_TIME: u64 = 2;
    pub const SYNC_ITERATION: u64 = 3;
    pub const PENDING_AUDIT: u64 = 4;
}

impl RequestPayload<'_> {
    /// The payload padded with zeros so that the sealed body is the smallest of
    /// [`REQUEST_BODY_SIZES`] that holds it; `None` if none does.
    pub(crate) fn encode(&self) -> Option<Vec<u8>> {
        let mut w = Writer::new();
        w.map(3 + usize::from(self.signed_time.is_some()));
        w.uint(key::DOCUMENT);
        w.bytes(self.document);
        w.uint(key::TIME);
        w.int(self.time);
        w.uint(key::SIGNATURE);
        w.bytes(&self.signature);
        if let Some(t) = self.signed_time {
            w.uint(key::SIGNED_TIME);
            w.bytes(t);
        }
        let mut payload = w.into_vec();
        let padded = REQUEST_BODY_SIZES
            .iter()
            .map(|size| size - MIN_REQUEST_BODY)
            .find(|&len| len >= payload.len())?;
        payload.resize(padded, 0);
        Some(payload)
    }

    /// Reads a padded payload (the plaintext of a request body). Only zeros may follow the
    /// map, and the body must be one of the sizes, so padding carries nothing and no phone
    /// sends a length of its own choosing.
    pub(crate) fn decode(bytes: &[u8]) -> Result<RequestPayload<'_>, Malformed> {
        if !REQUEST_BODY_SIZES.contains(&(bytes.len() + MIN_REQUEST_BODY)) {
            return Err(Malformed::new("request.padding", Problem::OutOfRange));
        }
        let mut r = Reader::new(bytes);
        let n = r.map().at("request")?;
        let mut keys = Keys::new();
        let mut p = RequestPayload {
            document: &[],
            time: 0,
            signature: [0; 64],
            signed_time: None,
        };
        for _ in 0..n {
            match keys.next(&mut r).at("request")? {
                key::DOCUMENT => {
                    p.document = r.bytes().at("request.document")?;
                    if p.document.len() > MAX_DOCUMENT_SIZE {
                        return Err(Malformed::new("request.document", Problem::TooLarge));
                    }
                }
                key::TIME => p.time = r.int().at("request.time")?,
                key::SIGNATURE => p.signature = r.bytes_fixed().at("request.signature")?,
                key::SIGNED_TIME => {
                    let t = r.bytes().at("request.signed_time")?;
                    if t.len() > MAX_SIGNED_TIME_SIZE {
                        return Err(Malformed::new("request.signed_time", Problem::TooLarge));
                    }
                    p.signed_time = Some(t);
                }
                key => return Err(Malformed::new("request", Problem::UnknownKey { key })),
            }
        }
        keys.require(&[key::DOCUMENT, key::TIME, key::SIGNATURE])
            .at("request")?;
        r.finish_padded().at("request.padding")?;
        Ok(p)
    }
}

/// Result codes, shared by responses and audit records: 0 granted, then one per
/// [`DenyReason`]. `next_allowed` travels beside the code, only with out-of-schedule.
pub(crate) fn result_code(result: &UnlockResult) -> (u64, Option<UnixTime>) {
    match *result {
        UnlockResult::Granted => (0, None),
        UnlockResult::Denied(reason) => match reason {
            DenyReason::OutOfSchedule { next_allowed } => (1, next_allowed),
            DenyReason::Revoked => (2, None),
            DenyReason::Expired => (3, None),
            DenyReason::NotYetValid => (4, None),
            DenyReason::WrongDoor => (5, None),
            DenyReason::BadCredential => (6, None),
            DenyReason::ClockUntrusted => (7, None),
            DenyReason::Replayed => (8, None),
            DenyReason::Busy => (9, None),
        },
    }
}

/// The inverse of [`result_code`]; a `next_allowed` with any other code than out-of-schedule
/// is refused, so each result has one encoding.
pub(crate) fn result_from_code(
    code: u64,
    next_allowed: Option<UnixTime>,
) -> Result<UnlockResult, Problem> {
    let reason = match code {
        0 if next_allowed.is_none() => return Ok(UnlockResult::Granted),
        1 => {
            return Ok(UnlockResult::Denied(DenyReason::OutOfSchedule {
                next_allowed,
            }))
        }
        _ if next_allowed.is_some() => return Err(Problem::OutOfRange),
        2 => DenyReason::Revoked,
        3 => DenyReason::Expired,
        4 => DenyReason::NotYetValid,
        5 => DenyReason::WrongDoor,
        6 => DenyReason::BadCredential,
        7 => DenyReason::ClockUntrusted,
        8 => DenyReason::Replayed,
        9 => DenyReason::Busy,
        _ => return Err(Problem::OutOfRange),
    };
    Ok(UnlockResult::Denied(reason))
}

/// The outcome padded with zeros to [`OUTCOME_LEN`].
pub(crate) fn encode_outcome(o: &UnlockOutcome) -> Vec<u8> {
    let (code, next_allowed) = result_code(&o.result);
    let mut w = Writer::new();
    w.map(4 + usize::from(next_allowed.is_some()));
    w.uint(key::RESULT);
    w.uint(code);
    if let Some(t) = next_allowed {
        w.uint(key::NEXT_ALLOWED);
        w.int(t);
    }
    w.uint(key::LOCK_TIME);
    w.int(o.lock_time);
    w.uint(key::SYNC_ITERATION);
    w.uint(o.sync_iteration);
    w.uint(key::PENDING_AUDIT);
    w.uint(u64::from(o.pending_audit));
    let mut payload = w.into_vec();
    debug_assert!(payload.len() <= OUTCOME_LEN);
    payload.resize(OUTCOME_LEN, 0);
    payload
}

pub(crate) fn decode_outcome(bytes: &[u8]) -> Result<UnlockOutcome, Malformed> {
    if bytes.len() != OUTCOME_LEN {
        return Err(Malformed::new("response.padding", Problem::OutOfRange));
    }
    let mut r = Reader::new(bytes);
    let n = r.map().at("response")?;
    let mut keys = Keys::new();
    let (mut code, mut next_allowed) = (0, None);
    let mut o = UnlockOutcome {
        result: UnlockResult::Granted,
        lock_time: 0,
        sync_iteration: 0,
        pending_audit: 0,
    };
    for _ in 0..n {
        match keys.next(&mut r).at("response")? {
            key::RESULT => code = r.uint().at("response.result")?,
            key::NEXT_ALLOWED => next_allowed = Some(r.int().at("response.next_allowed")?),
            key::LOCK_TIME => o.lock_time = r.int().at("response.lock_time")?,
            key::SYNC_ITERATION => o.sync_iteration = r.uint().at("response.sync_iteration")?,
            key::PENDING_AUDIT => {
                o.pending_audit = u32::try_from(r.uint().at("response.pending_audit")?)
                    .map_err(|_| Malformed::new("response.pending_audit", Problem::OutOfRange))?
            }
            key => return Err(Malformed::new("response", Problem::UnknownKey { key })),
        }
    }
    keys.require(&[
        key::RESULT,
        key::LOCK_TIME,
        key::SYNC_ITERATION,
        key::PENDING_AUDIT,
    ])
    .at("response")?;
    r.finish_padded().at("response.padding")?;
    o.result = result_from_code(code, next_allowed).at("response.result")?;
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_results() -> Vec<UnlockResult> {
        let mut v = alloc::vec![UnlockResult::Granted];
        for r in [
            DenyReason::OutOfSchedule { next_allowed: None },
            DenyReason::OutOfSchedule {
                next_allowed: Some(-5),
            },
            DenyReason::Revoked,
            DenyReason::Expired,
            DenyReason::NotYetValid,
            DenyReason::WrongDoor,
            DenyReason::BadCredential,
            DenyReason::ClockUntrusted,
            DenyReason::Replayed,
            DenyReason::Busy,
        ] {
            v.push(UnlockResult::Denied(r));
        }
        v
    }

    #[test]
    fn outcomes_round_trip() {
        for result in all_results() {
            let o = UnlockOutcome {
                result,
                lock_time: 1_781_524_800,
                sync_iteration: 7,
                pending_audit: u32::MAX,
            };
            let bytes = encode_outcome(&o);
            assert_eq!(bytes.len(), OUTCOME_LEN);
            assert_eq!(decode_outcome(&bytes), Ok(o));
        }
    }

    #[test]
    fn the_longest_outcome_needs_no_padding() {
        let longest = UnlockOutcome {
            result: UnlockResult::Denied(DenyReason::OutOfSchedule {
                next_allowed: Some(i64::MIN),
            }),
            lock_time: i64::MIN,
            sync_iteration: u64::MAX,
            pending_audit: u32::MAX,
        };
        let bytes = encode_outcome(&longest);
        // Its last byte is the pending count's, not padding: OUTCOME_LEN is no longer than
        // needed.
        assert_eq!(bytes[OUTCOME_LEN - 1], 0xff);
        assert_eq!(decode_outcome(&bytes), Ok(longest));
    }

    #[test]
    fn outcome_padding_is_zeros_to_the_exact_length() {
        let o = UnlockOutcome {
            result: UnlockResult::Granted,
            lock_time: 0,
            sync_iteration: 0,
            pending_audit: 0,
        };
        let bytes = encode_outcome(&o);
        let mut dirty = bytes.clone();
        *dirty.last_mut().unwrap() = 1;
        let padding = |m: Result<UnlockOutcome, Malformed>| m.unwrap_err().field;
        assert_eq!(padding(decode_outcome(&dirty)), "response.padding");
        assert_eq!(
            padding(decode_outcome(&bytes[..OUTCOME_LEN - 1])),
            "response.padding"
        );
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(padding(decode_outcome(&long)), "response.padding");
    }

    proptest::proptest! {
        #[test]
        fn every_outcome_has_the_same_length(
            result in proptest::sample::select(all_results()),
            next_allowed in proptest::option::of(proptest::num::i64::ANY),
            lock_time: i64,
            sync_iteration: u64,
            pending_audit: u32,
        ) {
            let result = match result {
                UnlockResult::Denied(DenyReason::OutOfSchedule { .. }) => {
                    UnlockResult::Denied(DenyReason::OutOfSchedule { next_allowed })
                }
                r => r,
            };
            let o = UnlockOutcome { result, lock_time, sync_iteration, pending_audit };
            let bytes = encode_outcome(&o);
            proptest::prop_assert_eq!(bytes.len(), OUTCOME_LEN);
            proptest::prop_assert_eq!(decode_outcome(&bytes), Ok(o));
        }
    }

    #[test]
    fn next_allowed_only_with_out_of_schedule() {
        assert_eq!(result_from_code(2, Some(1)), Err(Problem::OutOfRange));
        assert_eq!(result_from_code(0, Some(1)), Err(Problem::OutOfRange));
        assert_eq!(result_from_code(10, None), Err(Problem::OutOfRange));
    }

    fn sample_request() -> RequestPayload<'static> {
        RequestPayload {
            document: &[1, 2, 3],
            time: -1,
            signature: [9; 64],
            signed_time: None,
        }
    }

    #[test]
    fn request_payload_round_trips_and_is_strict() {
        let p = sample_request();
        let bytes = p.encode().unwrap();
        assert_eq!(bytes.len() + MIN_REQUEST_BODY, REQUEST_BODY_SIZES[0]);
        let back = RequestPayload::decode(&bytes).unwrap();
        assert_eq!(
            (back.document, back.time, back.signature, back.signed_time),
            (&[1u8, 2, 3][..], -1, [9; 64], None)
        );
        let with_time = RequestPayload {
            signed_time: Some(&[7; 5]),
            ..p
        };
        let bytes = with_time.encode().unwrap();
        let back = RequestPayload::decode(&bytes).unwrap();
        assert_eq!(back.signed_time, Some(&[7u8; 5][..]));
        let too_long = RequestPayload {
            signed_time: Some(&[7; MAX_SIGNED_TIME_SIZE + 1]),
            ..with_time
        };
        assert!(RequestPayload::decode(&too_long.encode().unwrap()).is_err());
    }

    #[test]
    fn request_padding_is_zeros_to_one_of_the_sizes() {
        let bytes = sample_request().encode().unwrap();
        let field = |bytes: &[u8]| RequestPayload::decode(bytes).err().map(|m| m.field);
        for at in [100, bytes.len() - 1] {
            let mut dirty = bytes.clone();
            dirty[at] = 0x80;
            assert_eq!(field(&dirty), Some("request.padding"), "byte {at}");
        }
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(field(&long), Some("request.padding"));
        assert_eq!(field(&bytes[..bytes.len() - 1]), Some("request.padding"));
        // A phone may pad to a larger size than it needs: the lock reads it all the same.
        let mut larger = bytes.clone();
        larger.resize(REQUEST_BODY_SIZES[1] - MIN_REQUEST_BODY, 0);
        assert_eq!(field(&larger), None);
    }

    #[test]
    fn the_largest_request_fits_the_largest_size() {
        let document = alloc::vec![0xd2; MAX_DOCUMENT_SIZE];
        let signed_time = [7; MAX_SIGNED_TIME_SIZE];
        let largest = RequestPayload {
            document: &document,
            time: i64::MIN,
            signature: [9; 64],
            signed_time: Some(&signed_time),
        };
        let bytes = largest.encode().unwrap();
        assert_eq!(
            bytes.len() + MIN_REQUEST_BODY,
            *REQUEST_BODY_SIZES.last().unwrap()
        );
        assert_eq!(
            RequestPayload::decode(&bytes).unwrap().document.len(),
            MAX_DOCUMENT_SIZE
        );
        let beyond = alloc::vec![0; *REQUEST_BODY_SIZES.last().unwrap()];
        assert!(RequestPayload {
            document: &beyond,
            ..largest
        }
        .encode()
        .is_none());
    }
}
