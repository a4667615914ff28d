//! The lock's cache of verified access documents (`door_protocol::unlock::verified`) never
//! changes a decision: a lock that caches and one that never does (the oracle) are fed the same
//! generated sequences of presentations (some with altered bytes, some carrying an
//! issuer-signed time that steps the lock's clock), revocations, bundles and clock steps, and
//! must decide every request alike; revoked, expired and altered documents are never granted.

mod common;

use common::*;
use door_protocol::revocation::Floor;
use door_protocol::unlock::{LockDecision, VerifiedDocuments, DEFAULT_CLOCK_TOLERANCE};
use door_protocol::{
    open_bundle, verify_revocation, AccessDocument, Id, IssuerKey, IssuerKeys, LockConfig, LockKey,
    LockSession, LockState, RevocationDocument, RevocationEntry, RevocationMode, SignedTime,
    SyncBundle, UnlockPreparation, UnlockResult, UnlockTarget,
};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use proptest::prelude::*;
use rand_core::OsRng;

const NOW: i64 = MONDAY_0800_NY;
/// When the short-lived document expires: within reach of the generated clock steps.
const SHORT_EXPIRY: i64 = NOW + 3 * 3600;

fn config() -> LockConfig {
    LockConfig {
        lock_id: LOCK_ID,
        door_id: LOBBY,
        key: LockKey::from_bytes(&[0x77; 32]).unwrap(),
        issuer_keys: issuer_keys(),
        clock_tolerance: DEFAULT_CLOCK_TOLERANCE,
    }
}

/// Three residents' documents: the sample, one expiring within hours, one more.
fn documents() -> Vec<AccessDocument> {
    let short = AccessDocument {
        credential_id: Id([0xc5; 16]),
        person_id: Id([0xa5; 16]),
        not_after: SHORT_EXPIRY,
        ..sample_access()
    };
    let other = AccessDocument {
        credential_id: Id([0xc6; 16]),
        person_id: Id([0xa6; 16]),
        ..sample_access()
    };
    vec![sample_access(), short, other]
}

/// The chunks of a request presenting `document` (signed by the sample device key, so an
/// altered document still carries a valid device signature: only the issuer's catches it).
/// `None` when the phone cannot read the sample device key from it (an alteration that breaks
/// the frame or the payload, or changes the device key: the lock refuses those alike with and
/// without a cache, at decoding or at the issuer's signature).
/// With `signed_time`, the request carries an issuer-signed time that far from the phone's
/// clock, which steps the lock's clock (and so changes the state cache entries are made in).
fn request_at(
    config: &LockConfig,
    document: Vec<u8>,
    phone_time: i64,
    signed_time: Option<i64>,
) -> Option<Vec<Vec<u8>>> {
    let target = UnlockTarget {
        lock_id: config.lock_id,
        lock_key: *config.key.public(),
        access_document: document,
    };
    let (mut prep, to_sign) = UnlockPreparation::new(target, phone_time, &mut OsRng).ok()?;
    if let Some(skew) = signed_time {
        let signed = SignedTime {
            time: phone_time + skew,
            lock_id: Some(config.lock_id),
            epoch: None,
        }
        .sign(&issuer());
        prep = prep.with_signed_time(signed);
    }
    let device = SigningKey::from_bytes(&DEVICE_SCALAR.into()).unwrap();
    let signature: Signature = device.sign(&to_sign);
    Some(
        prep.signed(&signature.to_bytes())
            .ok()?
            .request_fragments(247),
    )
}

fn request(config: &LockConfig, document: Vec<u8>, phone_time: i64) -> Option<Vec<Vec<u8>>> {
    request_at(config, document, phone_time, None)
}

fn decide(
    config: &LockConfig,
    state: &mut LockState,
    chunks: &[Vec<u8>],
    now: i64,
) -> LockDecision {
    let mut session = LockSession::new();
    let mut reply = None;
    for chunk in chunks {
        reply = session.on_fragment(config, state, chunk, now, &mut OsRng);
    }
    reply
        .and_then(|r| r.decision)
        .expect("a sealed request is decided")
}

#[derive(Clone, Copy, Debug)]
struct Alteration {
    at: usize,
    mask: u8,
    in_signature: bool,
}

impl Alteration {
    fn apply(self, bytes: &mut [u8]) {
        let at = match self.in_signature {
            true => bytes.len() - 1 - self.at % 64,
            false => self.at % bytes.len(),
        };
        bytes[at] ^= self.mask;
    }
}

#[derive(Clone, Debug)]
enum Op {
    /// Present document `doc`; with `alter`, one byte of it flipped (position, mask): a
    /// position counted from the end when `in_signature` (the frame ends with the signature's
    /// 64 bytes), from the start otherwise.
    Present {
        doc: usize,
        alter: Option<Alteration>,
        /// An issuer-signed time in the request, this many seconds from the phone's clock.
        signed_time: Option<i64>,
    },
    /// A revocation document naming `doc`'s credential.
    Revoke {
        doc: usize,
    },
    /// A bundle voiding `doc`'s holder's documents below iteration 4 (all of them).
    Floor {
        doc: usize,
    },
    /// A bundle that changes nothing a document depends on (no floors).
    EmptyBundle,
    Advance {
        seconds: i64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (
            0..3usize,
            proptest::option::weighted(0.3, (any::<usize>(), 1..=255u8, any::<bool>())),
            proptest::option::weighted(0.2, -300..300i64),
        )
            .prop_map(|(doc, alter, signed_time)| Op::Present {
                doc,
                alter: alter.map(|(at, mask, in_signature)| Alteration { at, mask, in_signature }),
                signed_time,
            }),
        1 => (0..3usize).prop_map(|doc| Op::Revoke { doc }),
        1 => (0..3usize).prop_map(|doc| Op::Floor { doc }),
        1 => Just(Op::EmptyBundle),
        2 => (0..7200i64).prop_map(|seconds| Op::Advance { seconds }),
    ]
}

/// The same change, applied to both locks.
fn apply(
    config: &LockConfig,
    locks: &mut [&mut LockState; 2],
    op: &Op,
    docs: &[AccessDocument],
    now: i64,
    revocations: &mut u64,
) {
    match *op {
        Op::Revoke { doc } => {
            *revocations += 1;
            let bytes = RevocationDocument {
                version: 1,
                iteration: *revocations,
                mode: RevocationMode::Update,
                entries: vec![RevocationEntry {
                    credential_id: docs[doc].credential_id,
                    expires_at: None,
                }],
                issued_at: now,
            }
            .sign(&issuer())
            .unwrap();
            let verified = verify_revocation(&bytes, &config.issuer_keys).unwrap();
            for lock in locks.iter_mut() {
                lock.revocations.apply(&verified).unwrap();
            }
        }
        Op::Floor { .. } | Op::EmptyBundle => {
            let have = locks[0].sync_iteration();
            let floors = match *op {
                Op::Floor { doc } => vec![Floor {
                    person_id: docs[doc].person_id,
                    floor: 4,
                    expires_at: NOT_AFTER,
                }],
                _ => Vec::new(),
            };
            let bundle = SyncBundle {
                base_iteration: have,
                floors,
                keypad: None,
                issued_at: now,
                ..full_bundle(0, have + 1)
            };
            let bytes = bundle
                .seal_and_sign(&issuer(), config.key.public(), &mut OsRng)
                .unwrap();
            let opened = open_bundle(&bytes, config).unwrap();
            for lock in locks.iter_mut() {
                lock.apply_bundle(config, &opened, now).unwrap();
            }
        }
        Op::Present { .. } | Op::Advance { .. } => unreachable!("not a change of state"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn caching_never_changes_a_decision(ops in proptest::collection::vec(op(), 1..14)) {
        let config = config();
        let docs = documents();
        let signed: Vec<Vec<u8>> = docs.iter().map(|d| d.sign(&issuer()).unwrap()).collect();
        let mut cached = LockState::default();
        let mut oracle = LockState {
            verified: VerifiedDocuments::with_limit(0),
            ..LockState::default()
        };
        let mut now = NOW;
        let mut revocations = 0;
        let mut revoked = [false; 3];
        for op in &ops {
            match *op {
                Op::Present { doc, alter, signed_time } => {
                    let mut bytes = signed[doc].clone();
                    if let Some(alteration) = alter {
                        alteration.apply(&mut bytes);
                    }
                    let Some(chunks) = request_at(&config, bytes, now, signed_time) else {
                        continue;
                    };
                    let with_cache = decide(&config, &mut cached, &chunks, now);
                    let without = decide(&config, &mut oracle, &chunks, now);
                    prop_assert_eq!(with_cache, without);
                    if with_cache.result == UnlockResult::Granted {
                        prop_assert!(alter.is_none(), "an altered document opened the door");
                        prop_assert!(!revoked[doc], "a revoked document opened the door");
                        prop_assert!(now < docs[doc].not_after, "an expired document opened the door");
                    }
                }
                Op::Advance { seconds } => now += seconds,
                Op::Revoke { doc } | Op::Floor { doc } => {
                    apply(&config, &mut [&mut cached, &mut oracle], op, &docs, now, &mut revocations);
                    revoked[doc] = true;
                }
                Op::EmptyBundle => {
                    apply(&config, &mut [&mut cached, &mut oracle], op, &docs, now, &mut revocations);
                }
            }
            prop_assert!(oracle.verified.is_empty());
        }
    }
}

#[test]
fn a_granted_document_is_cached_and_granted_again() {
    let config = config();
    let mut state = LockState::default();
    let document = sample_access().sign(&issuer()).unwrap();
    for at in [NOW, NOW + 10] {
        let decision = decide(
            &config,
            &mut state,
            &request(&config, document.clone(), at).unwrap(),
            at,
        );
        assert_eq!(decision.result, UnlockResult::Granted);
        assert_eq!(state.verified.len(), 1);
    }
}

#[test]
fn a_cached_document_is_refused_once_its_issuer_key_is_gone() {
    let mut config = config();
    let mut state = LockState::default();
    let document = sample_access().sign(&issuer()).unwrap();
    let granted = decide(
        &config,
        &mut state,
        &request(&config, document.clone(), NOW).unwrap(),
        NOW,
    );
    assert_eq!(granted.result, UnlockResult::Granted);
    assert_eq!(state.verified.len(), 1);
    // The issuer's key rotated out: another key under the lock's trust, the old one removed.
    let successor = IssuerKey::from_bytes(&[0x33; 32]).unwrap();
    config.issuer_keys = IssuerKeys::single(*successor.verifying());
    let refused = decide(
        &config,
        &mut state,
        &request(&config, document, NOW + 10).unwrap(),
        NOW + 10,
    );
    assert!(!refused.result.is_granted());
    assert!(state.verified.is_empty(), "the stale entry was dropped");
}

#[test]
fn caching_is_off_with_a_limit_of_zero() {
    let config = config();
    let mut state = LockState {
        verified: VerifiedDocuments::with_limit(0),
        ..LockState::default()
    };
    let document = sample_access().sign(&issuer()).unwrap();
    let decision = decide(
        &config,
        &mut state,
        &request(&config, document, NOW).unwrap(),
        NOW,
    );
    assert_eq!(decision.result, UnlockResult::Granted);
    assert!(state.verified.is_empty());
}
