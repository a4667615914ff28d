//! What an observer of the radio learns from lengths (docs/SECURITY.md, "Lengths"): a request's
//! length only tells which of the listed sizes its document needs, and every response has one
//! length, whatever the lock decided. Documents of random shapes (grants, windows, date ranges,
//! zone transitions, a signed time or none) are presented at random times, to this lock's door
//! or another, sometimes twice.

mod common;

use common::*;
use door_protocol::unlock::{REQUEST_BODY_SIZES, RESPONSE_BODY_SIZE};
use door_protocol::wire::kind;
use door_protocol::{
    DoorGrant, Id, LockConfig, LockKey, LockSession, LockState, Message, PreparedUnlock, Schedule,
    SignedTime, Transition, UnlockPreparation, UnlockTarget, Weekdays, Window,
};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use proptest::prelude::*;
use rand_core::OsRng;

const NOW: i64 = MONDAY_0800_NY;
const DAY: i64 = 86_400;
/// ATT MTUs: the minimum, a common iOS one, and the largest data length extension's.
const MTUS: [u16; 3] = [23, 185, 247];

/// The shape of one access document.
#[derive(Clone, Debug)]
struct Shape {
    grants: Vec<Grant>,
    transitions: usize,
    signed_time: bool,
}

#[derive(Clone, Debug)]
struct Grant {
    windows: Vec<Window>,
    /// Days from `NOW` to its start, and its length in days.
    range: Option<(i64, i64)>,
}

fn window() -> impl Strategy<Value = Window> {
    (1u8..=0x7f, 0u16..1440, 1u16..=1440)
        .prop_filter("a window is not empty", |(_, start, end)| start != end)
        .prop_map(|(days, start_minute, end_minute)| Window {
            days: Weekdays(days),
            start_minute,
            end_minute,
        })
}

/// Up to `grants` grants of up to `windows` windows (none: closed for good), and up to
/// `transitions` zone transitions.
fn shape(grants: usize, windows: usize, transitions: usize) -> impl Strategy<Value = Shape> {
    let grant = (
        prop::collection::vec(window(), 0..=windows),
        prop::option::of((-3i64..=1, 1i64..=5)),
    )
        .prop_map(|(windows, range)| Grant { windows, range });
    (
        prop::collection::vec(grant, 1..=grants),
        0..=transitions,
        any::<bool>(),
    )
        .prop_map(|(grants, transitions, signed_time)| Shape {
            grants,
            transitions,
            signed_time,
        })
}

/// Documents of the size the server issues (one door, a few grants: the smallest request
/// size) and larger ones.
fn any_shape() -> impl Strategy<Value = Shape> {
    prop_oneof![shape(2, 4, 4), shape(16, 8, 32)]
}

/// The signed document and the signed time the phone brings, if any, for the lock's clock.
fn build(shape: &Shape, lock_time: i64) -> (Vec<u8>, Option<Vec<u8>>) {
    let mut doc = sample_access();
    doc.grants = shape
        .grants
        .iter()
        .map(|&Grant { ref windows, range }| DoorGrant {
            door_id: LOBBY,
            schedule: Schedule {
                windows: windows.clone(),
                not_before: range.map(|(from, _)| NOW + from * DAY),
                not_after: range.map(|(from, days)| NOW + (from + days) * DAY),
            },
            doorcode: false,
        })
        .collect();
    // Zone transitions every ten days from the document's start, alternating DST.
    doc.zone.transitions = (0..shape.transitions)
        .map(|i| Transition {
            at: NOT_BEFORE + (i as i64 + 1) * 10 * DAY,
            offset: if i % 2 == 0 { -4 * 3600 } else { -5 * 3600 },
        })
        .collect();
    let signed_time = shape.signed_time.then(|| {
        SignedTime {
            time: lock_time,
            lock_id: Some(LOCK_ID),
            epoch: None,
        }
        .sign(&issuer())
    });
    (doc.sign(&issuer()).unwrap(), signed_time)
}

/// A CBOR head's length for argument `n` (RFC 8949, shortest form).
fn head(n: usize) -> usize {
    match n {
        0..=23 => 1,
        24..=0xff => 2,
        0x100..=0xffff => 3,
        _ => 5,
    }
}

/// The request body without padding, from the specification (docs/PROTOCOL.md, "Messages"):
/// header and tag, then the payload map: document, time, signature, signed time.
fn unpadded_body(document: &[u8], time: i64, signed_time: Option<&[u8]>) -> usize {
    let bytes = |len| 1 + head(len) + len;
    66 + 1
        + bytes(document.len())
        + 1
        + head(usize::try_from(time).unwrap())
        + bytes(64)
        + signed_time.map_or(0, |t| bytes(t.len()))
}

fn lock(door: Id) -> LockConfig {
    LockConfig::new(
        LOCK_ID,
        door,
        LockKey::from_bytes(&[0x77; 32]).unwrap(),
        issuer_keys(),
    )
}

fn prepare(
    config: &LockConfig,
    document: Vec<u8>,
    signed_time: Option<Vec<u8>>,
    time: i64,
) -> PreparedUnlock {
    let target = UnlockTarget {
        lock_id: config.lock_id,
        lock_key: *config.key.public(),
        access_document: document,
    };
    let (mut prep, to_sign) = UnlockPreparation::new(target, time, &mut OsRng).unwrap();
    if let Some(t) = signed_time {
        prep = prep.with_signed_time(t);
    }
    let device = SigningKey::from_bytes(&DEVICE_SCALAR.into()).unwrap();
    let signature: Signature = device.sign(&to_sign);
    prep.signed(&signature.to_bytes()).unwrap()
}

/// What the air shows of a message at each MTU: its chunks' lengths.
fn on_the_air(chunks_at: impl Fn(u16) -> Vec<Vec<u8>>) -> Vec<Vec<usize>> {
    MTUS.iter()
        .map(|&mtu| chunks_at(mtu).iter().map(Vec::len).collect())
        .collect()
}

/// The request's chunks at each MTU, the body size it was padded to, and the size it needs.
fn request(shape: &Shape) -> (Vec<Vec<usize>>, usize, usize) {
    let (document, signed_time) = build(shape, NOW);
    let needed = unpadded_body(&document, NOW, signed_time.as_deref());
    let phone = prepare(&lock(LOBBY), document, signed_time, NOW);
    let air = on_the_air(|mtu| phone.request_fragments(mtu));
    let first = &phone.request_fragments(515)[0];
    let body = usize::from(u16::from_be_bytes([first[2], first[3]]));
    (air, body, needed)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn request_lengths_depend_only_on_the_size_the_document_needs(
        a in any_shape(),
        b in any_shape(),
    ) {
        let (air_a, body_a, needed_a) = request(&a);
        let (air_b, body_b, needed_b) = request(&b);
        for (body, needed, air) in [(body_a, needed_a, &air_a), (body_b, needed_b, &air_b)] {
            // The smallest listed size that holds the request, and chunked like any message
            // of that size.
            let size = REQUEST_BODY_SIZES.into_iter().find(|&s| s >= needed);
            prop_assert_eq!(Some(body), size, "{} bytes needed", needed);
            let same_size = Message::new(kind::UNLOCK_REQUEST, vec![0; body]).unwrap();
            prop_assert_eq!(air, &on_the_air(|mtu| same_size.fragments(mtu)));
        }
        if body_a == body_b {
            prop_assert_eq!(air_a, air_b);
        }
    }

    #[test]
    fn every_response_has_one_length(
        shape in shape(3, 3, 4),
        at_days in -4i64..=4,
        at_minute in 0i64..1440,
        skew in -130i64..=130,
        other_door in prop::bool::weighted(0.2),
        replay in any::<bool>(),
    ) {
        let config = lock(if other_door { GARAGE } else { LOBBY });
        let lock_time = NOW + at_days * DAY + at_minute * 60;
        let (document, signed_time) = build(&shape, lock_time);
        let phone = prepare(&config, document, signed_time, lock_time + skew);
        let mut state = LockState::default();
        for _ in 0..1 + usize::from(replay) {
            let mut session = LockSession::new();
            let mut reply = None;
            for chunk in phone.request_fragments(247) {
                reply = session.on_fragment(&config, &mut state, &chunk, lock_time, &mut OsRng);
            }
            let reply = reply.unwrap();
            prop_assert!(reply.decision.is_some());
            prop_assert_eq!(reply.message.kind, kind::UNLOCK_RESPONSE);
            prop_assert_eq!(reply.message.body.len(), RESPONSE_BODY_SIZE);
        }
    }
}
