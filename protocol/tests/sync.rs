//! Door Sync end to end at the protocol level: bundles (build, seal, sign, open, apply), signed
//! time, the keypad, audit acknowledgement, and the BLE transfer and audit pull between the
//! phone's state machines and a lock session, with disconnects, duplicates and reordering.

mod common;

use common::*;
use door_protocol::revocation::{Floor, FloorList};
use door_protocol::sync::messages::{Offer, SyncMessage, MAX_BLOCK};
use door_protocol::sync::state::{KEYPAD_LOCKOUT, KEYPAD_MAX_FAILURES};
use door_protocol::sync::{ClockState, SyncState};
use door_protocol::sync::{
    DoorcodeDenied, FailReason, Progress, SyncEvent, TimeUpdate, TransferError,
};
use door_protocol::wire::{kind, Message};
use door_protocol::{
    inspect_bundle, open_bundle, verify_audit, Applied, AuditAck, AuditEpoch, AuditEvent,
    AuditPuller, DenyReason, Doorcode, DoorcodeChanges, DoorcodeResult, ErrorCode, Id, LockConfig,
    LockKey, LockSession, LockState, OpenedBundle, PreparedUnlock, SignedTime, SyncBundle,
    SyncError, SyncOutcome, SyncTransfer, UnlockOutcome, UnlockPreparation, UnlockResult,
    UnlockTarget,
};
use door_protocol::{AccessDocument, Malformed, Problem};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use proptest::prelude::*;
use rand_core::OsRng;

const NOW: i64 = MONDAY_0800_NY;
const DAY: i64 = 86_400;

fn config() -> LockConfig {
    lock_config()
}

fn sign(bundle: &SyncBundle) -> Vec<u8> {
    bundle
        .seal_and_sign(&issuer(), config().key.public(), &mut OsRng)
        .unwrap()
}

fn opened(bundle: &SyncBundle) -> OpenedBundle {
    open_bundle(&sign(bundle), &config()).unwrap()
}

fn apply(state: &mut LockState, bundle: &SyncBundle) -> Result<Applied, SyncError> {
    apply_at(state, bundle, NOW)
}

/// [`apply`] with the lock's hardware clock at `clock`.
fn apply_at(state: &mut LockState, bundle: &SyncBundle, clock: i64) -> Result<Applied, SyncError> {
    state.apply_bundle(&config(), &opened(bundle), clock)
}

fn delta(iteration: u64, base_iteration: u64) -> SyncBundle {
    SyncBundle {
        iteration,
        base_iteration,
        doorcodes: DoorcodeChanges::default(),
        keypad: None,
        ..full_bundle(0, iteration)
    }
}

/// Voids `person_id`'s documents below `floor` until the sample document expires.
fn floor(person_id: Id, floor: u64) -> Floor {
    Floor {
        person_id,
        floor,
        expires_at: NOT_AFTER,
    }
}

/// The sample document, for `person_id` at `access_iteration`, issued at `issued_at`.
fn doc(person_id: Id, access_iteration: u64, issued_at: i64) -> AccessDocument {
    AccessDocument {
        person_id,
        access_iteration,
        issued_at,
        ..sample_access()
    }
}

fn code(person: u8, code: &str, expires_at: Option<i64>) -> Doorcode {
    Doorcode {
        person_id: Id([person; 16]),
        code: code.into(),
        expires_at,
        schedules: vec![0],
    }
}

fn events(state: &LockState) -> Vec<AuditEvent> {
    state
        .audit
        .records()
        .map(|r| verify_audit(r, config().key.public()).unwrap().event)
        .collect()
}

// --- Unlocking, as in tests/unlock.rs, with an optional signed time. ---

fn prepare(phone_time: i64, signed_time: Option<Vec<u8>>) -> PreparedUnlock {
    prepare_with(
        sample_access().sign(&issuer()).unwrap(),
        phone_time,
        signed_time,
    )
}

fn prepare_with(
    access_document: Vec<u8>,
    phone_time: i64,
    signed_time: Option<Vec<u8>>,
) -> PreparedUnlock {
    let config = config();
    let target = UnlockTarget {
        lock_id: config.lock_id,
        lock_key: *config.key.public(),
        access_document,
    };
    let (mut prep, to_sign) = UnlockPreparation::new(target, phone_time, &mut OsRng).unwrap();
    if let Some(t) = signed_time {
        prep = prep.with_signed_time(t);
    }
    let device = SigningKey::from_bytes(&DEVICE_SCALAR.into()).unwrap();
    let signature: Signature = device.sign(&to_sign);
    prep.signed(&signature.to_bytes()).unwrap()
}

/// One unlock on `session`, with the lock's hardware clock at `clock`.
fn unlock_on(
    session: &mut LockSession,
    state: &mut LockState,
    phone_time: i64,
    clock: i64,
    signed_time: Option<Vec<u8>>,
) -> UnlockOutcome {
    let mut phone = prepare(phone_time, signed_time);
    let mut reply = None;
    for c in phone.request_fragments(247) {
        reply = session.on_fragment(&config(), state, &c, clock, &mut OsRng);
    }
    let reply = reply.expect("an answer");
    assert!(reply.persist.state, "a decision is persisted");
    let mut outcome = None;
    for c in reply.message.fragments(247) {
        outcome = phone.on_fragment(&c).unwrap();
    }
    outcome.unwrap()
}

fn unlock(state: &mut LockState, phone_time: i64, clock: i64, t: Option<Vec<u8>>) -> UnlockOutcome {
    unlock_on(&mut LockSession::new(), state, phone_time, clock, t)
}

fn signed_time(time: i64, lock_id: Option<Id>) -> Vec<u8> {
    SignedTime {
        time,
        lock_id,
        epoch: None,
    }
    .sign(&issuer())
}

/// A signed time bound to the test lock's installation (`LockState::default()`'s epoch): what
/// commissions a new lock.
fn bound_time(time: i64) -> Vec<u8> {
    SignedTime {
        time,
        lock_id: Some(LOCK_ID),
        epoch: Some(AuditEpoch::default()),
    }
    .sign(&issuer())
}

// --- Bundles ---

#[test]
fn a_full_bundle_round_trips_and_replaces_the_sync_state() {
    let bundle = full_bundle(3, 5);
    let bytes = sign(&bundle);
    let info = inspect_bundle(&bytes, &issuer_keys()).unwrap();
    assert_eq!(
        (
            info.lock_id,
            info.iteration,
            info.base_iteration,
            info.floors
        ),
        (LOCK_ID, 5, 0, 3)
    );
    assert!(info.doorcodes);
    let opened = open_bundle(&bytes, &config()).unwrap();
    assert_eq!(*opened.bundle(), bundle);
    assert_eq!(opened.kid(), issuer().kid());

    let mut state = LockState::default();
    // Something an older full bundle left: a full bundle replaces it.
    apply(
        &mut state,
        &SyncBundle {
            floors: vec![floor(Id([0xee; 16]), 9)],
            doorcodes: DoorcodeChanges {
                added: vec![code(0xee, "9999", None)],
                removed: Vec::new(),
            },
            ..full_bundle(0, 1)
        },
    )
    .unwrap();
    let applied = state.apply_bundle(&config(), &opened, NOW).unwrap();
    assert_eq!(
        applied,
        Applied {
            iteration: 5,
            full: true,
            freed: 0,
            clock_step: 0
        }
    );
    assert_eq!(state.sync_iteration(), 5);
    assert_eq!(state.sync.floors().entries(), &bundle.floors[..]);
    assert_eq!(state.sync.doorcodes(), &bundle.doorcodes.added[..]);
    assert_eq!(state.sync.keypad(), bundle.keypad.as_ref());
    assert!(!state.is_revoked(&doc(Id([0xee; 16]), 0, ISSUED_AT), NOW));
    assert!(state.is_revoked(&doc(numbered(0xc0, 2), 1, ISSUED_AT), NOW));
    assert!(!state.is_revoked(&doc(numbered(0xc0, 2), 2, ISSUED_AT), NOW));
    assert_eq!(
        events(&state).last(),
        Some(&AuditEvent::SyncApplied { iteration: 5 })
    );
}

#[test]
fn a_delta_raises_floors_and_upserts_and_removes_doorcodes() {
    let mut state = LockState::default();
    let full = SyncBundle {
        floors: vec![floor(Id([1; 16]), 2)],
        doorcodes: DoorcodeChanges {
            added: vec![code(0xa1, "1111", None), code(0xa2, "2222", None)],
            removed: Vec::new(),
        },
        ..full_bundle(0, 1)
    };
    apply(&mut state, &full).unwrap();
    let change = SyncBundle {
        floors: vec![floor(Id([2; 16]), 5)],
        doorcodes: DoorcodeChanges {
            added: vec![
                code(0xa1, "1212", None),
                code(0xa3, "3333", Some(NOT_AFTER)),
            ],
            removed: vec![Id([0xa2; 16])],
        },
        ..delta(2, 1)
    };
    let applied = apply(&mut state, &change).unwrap();
    assert!(!applied.full);
    assert_eq!(state.sync_iteration(), 2);
    assert!(state.is_revoked(&doc(Id([1; 16]), 1, ISSUED_AT), NOW));
    assert!(!state.is_revoked(&doc(Id([1; 16]), 2, ISSUED_AT), NOW));
    assert!(state.is_revoked(&doc(Id([2; 16]), 4, ISSUED_AT), NOW));
    assert!(!state.is_revoked(&doc(Id([2; 16]), 5, ISSUED_AT), NOW));
    assert!(!state.is_revoked(&doc(Id([3; 16]), 0, ISSUED_AT), NOW));
    assert_eq!(
        state.sync.doorcodes(),
        [
            code(0xa1, "1212", None),
            code(0xa3, "3333", Some(NOT_AFTER))
        ]
    );
    // Expired entries are dropped as the bundle applies.
    let expiring = SyncBundle {
        floors: vec![Floor {
            person_id: Id([3; 16]),
            floor: 9,
            expires_at: NOW - 1,
        }],
        ..delta(3, 2)
    };
    apply(&mut state, &expiring).unwrap();
    assert_eq!(state.sync.floors().len(), 2);
    assert!(!state.is_revoked(&doc(Id([3; 16]), 0, ISSUED_AT), NOW));
}

#[test]
fn a_delta_never_lowers_a_floor_and_a_full_bundle_replaces_them() {
    let mut state = LockState::default();
    apply(
        &mut state,
        &SyncBundle {
            floors: vec![floor(Id([1; 16]), 5)],
            ..full_bundle(0, 1)
        },
    )
    .unwrap();
    // A replayed, lower entry in a later delta lowers nothing; an earlier expiry shortens
    // nothing either.
    apply(
        &mut state,
        &SyncBundle {
            floors: vec![Floor {
                person_id: Id([1; 16]),
                floor: 2,
                expires_at: NOW + 10,
            }],
            ..delta(2, 1)
        },
    )
    .unwrap();
    assert_eq!(state.sync.floors().entries(), [floor(Id([1; 16]), 5)]);
    assert!(state.is_revoked(&doc(Id([1; 16]), 4, ISSUED_AT), NOW + DAY));
    // A higher one raises it.
    apply(
        &mut state,
        &SyncBundle {
            floors: vec![floor(Id([1; 16]), 7)],
            ..delta(3, 2)
        },
    )
    .unwrap();
    assert!(state.is_revoked(&doc(Id([1; 16]), 6, ISSUED_AT), NOW));
    assert!(!state.is_revoked(&doc(Id([1; 16]), 7, ISSUED_AT), NOW));
    // A full bundle states the whole list: a lower floor, or none, replaces it.
    apply(
        &mut state,
        &SyncBundle {
            floors: vec![floor(Id([1; 16]), 3)],
            ..full_bundle(0, 4)
        },
    )
    .unwrap();
    assert_eq!(state.sync.floors().entries(), [floor(Id([1; 16]), 3)]);
    assert!(!state.is_revoked(&doc(Id([1; 16]), 3, ISSUED_AT), NOW));
    apply(&mut state, &full_bundle(0, 5)).unwrap();
    assert!(state.sync.floors().is_empty());
    assert!(!state.is_revoked(&doc(Id([1; 16]), 0, ISSUED_AT), NOW));
    // A floor stops voiding when it expires.
    apply(
        &mut state,
        &SyncBundle {
            floors: vec![Floor {
                person_id: Id([1; 16]),
                floor: 3,
                expires_at: NOW + 10,
            }],
            ..delta(6, 5)
        },
    )
    .unwrap();
    assert!(state.is_revoked(&doc(Id([1; 16]), 2, ISSUED_AT), NOW + 9));
    assert!(!state.is_revoked(&doc(Id([1; 16]), 2, ISSUED_AT), NOW + 10));
}

#[test]
fn the_issued_floor_voids_older_documents_and_is_never_lowered() {
    let mut state = LockState::default();
    apply(
        &mut state,
        &SyncBundle {
            issued_floor: Some(ISSUED_AT + 100),
            ..full_bundle(0, 1)
        },
    )
    .unwrap();
    assert_eq!(state.sync.issued_floor(), Some(ISSUED_AT + 100));
    // Anyone's, at any iteration, issued before it.
    assert!(state.is_revoked(&doc(PERSON, 1_000, ISSUED_AT + 99), NOW));
    assert!(state.is_revoked(&doc(Id([7; 16]), 0, ISSUED_AT), NOW));
    assert!(!state.is_revoked(&doc(PERSON, 0, ISSUED_AT + 100), NOW));
    // Neither a delta nor a full bundle with a lower one, or none, lowers it.
    for bundle in [
        SyncBundle {
            issued_floor: Some(ISSUED_AT),
            ..delta(2, 1)
        },
        SyncBundle {
            issued_floor: Some(ISSUED_AT),
            ..full_bundle(0, 3)
        },
        full_bundle(0, 4),
    ] {
        apply(&mut state, &bundle).unwrap();
        assert_eq!(state.sync.issued_floor(), Some(ISSUED_AT + 100));
        assert!(state.is_revoked(&doc(PERSON, 3, ISSUED_AT + 99), NOW));
    }
    // A higher one raises it.
    apply(
        &mut state,
        &SyncBundle {
            issued_floor: Some(ISSUED_AT + 200),
            ..delta(5, 4)
        },
    )
    .unwrap();
    assert!(state.is_revoked(&doc(PERSON, 3, ISSUED_AT + 199), NOW));
    // At unlock: the sample document, issued before it, is refused as revoked.
    assert_eq!(
        unlock(&mut state, NOW, NOW, None).result,
        UnlockResult::Denied(DenyReason::Revoked)
    );
}

#[test]
fn floors_are_capped_by_people() {
    let cap = FloorList::CAPACITY;
    let people = |tag: u8, n: usize| (0..n).map(move |i| floor(numbered(tag, i), 1));
    // A full bundle of exactly the cap applies; an issuer cannot even sign one above it.
    let mut state = LockState::default();
    apply(
        &mut state,
        &SyncBundle {
            floors: people(0xf0, cap).collect(),
            ..full_bundle(0, 1)
        },
    )
    .unwrap();
    assert_eq!(state.sync.floors().len(), cap);
    let over = SyncBundle {
        floors: people(0xf0, cap + 1).collect(),
        ..full_bundle(0, 2)
    };
    assert_eq!(
        over.seal_and_sign(&issuer(), config().key.public(), &mut OsRng),
        Err(Malformed::new("floors", Problem::TooMany))
    );
    // A delta raising floors of people the lock holds fits; one more person does not.
    let before = state.clone();
    apply(
        &mut state,
        &SyncBundle {
            floors: people(0xf0, cap).map(|f| Floor { floor: 2, ..f }).collect(),
            ..delta(2, 1)
        },
    )
    .unwrap();
    assert_eq!(state.sync.floors().len(), cap);
    assert_ne!(state, before);
    let before = state.clone();
    assert_eq!(
        apply(
            &mut state,
            &SyncBundle {
                floors: vec![floor(Id([0x01; 16]), 1)],
                ..delta(3, 2)
            },
        ),
        Err(SyncError::Full { capacity: cap })
    );
    assert_eq!(state, before);
    // Restoring more than the cap fails the same way.
    assert_eq!(
        SyncState::restore(1, people(0xf0, cap + 1), None, Vec::new(), None),
        Err(SyncError::Full { capacity: cap })
    );
}

#[test]
fn a_delta_with_one_floor_is_under_300_bytes() {
    let bundle = SyncBundle {
        floors: vec![floor(PERSON, 4)],
        issued_floor: Some(ISSUED_AT),
        audit_ack: ack(123_456),
        ..delta(1_000_001, 1_000_000)
    };
    let bytes = sign(&bundle);
    println!("delta bundle with one floor: {} bytes", bytes.len());
    assert!(bytes.len() < 300, "{} bytes", bytes.len());
}

#[test]
fn a_full_bundle_for_a_thousand_people_stays_bounded() {
    let bytes = sign(&full_bundle(1000, 1));
    println!(
        "full bundle, 1000 doorcodes and 1000 floors: {} bytes",
        bytes.len()
    );
    assert!(bytes.len() < 64 * 1024, "{} bytes", bytes.len());
    let mut state = LockState::default();
    state
        .apply_bundle(&config(), &open_bundle(&bytes, &config()).unwrap(), NOW)
        .unwrap();
    assert_eq!(state.sync.doorcodes().len(), 1000);
    assert_eq!(state.sync.floors().len(), 1000);
}

#[test]
fn an_altered_byte_anywhere_is_refused() {
    let bytes = sign(&sample_delta());
    for i in 0..bytes.len() {
        for flip in [0x01, 0x80] {
            let mut altered = bytes.clone();
            altered[i] ^= flip;
            assert!(
                open_bundle(&altered, &config()).is_err(),
                "byte {i} ^ {flip:#x} accepted"
            );
        }
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(open_bundle(&longer, &config()).is_err());
    assert!(open_bundle(&bytes[..bytes.len() - 1], &config()).is_err());
}

#[test]
fn stale_wrong_base_and_foreign_bundles_are_refused() {
    let mut state = LockState::default();
    apply(&mut state, &full_bundle(1, 4)).unwrap();
    assert_eq!(
        apply(&mut state, &full_bundle(1, 4)),
        Err(SyncError::Stale { have: 4, got: 4 })
    );
    assert_eq!(
        apply(&mut state, &delta(3, 2)),
        Err(SyncError::Stale { have: 4, got: 3 })
    );
    assert_eq!(
        apply(&mut state, &delta(6, 5)),
        Err(SyncError::WrongBase { have: 4, base: 5 })
    );
    let other = SyncBundle {
        lock_id: Id([0x20; 16]),
        ..full_bundle(1, 9)
    };
    assert_eq!(
        open_bundle(&sign(&other), &config()),
        Err(SyncError::Foreign {
            lock_id: Id([0x20; 16])
        })
    );
    // Opened for another lock's configuration, it still does not apply here.
    let elsewhere = LockConfig {
        lock_id: Id([0x20; 16]),
        ..config()
    };
    let foreign = open_bundle(&sign(&other), &elsewhere).unwrap();
    assert_eq!(
        state.apply_bundle(&config(), &foreign, NOW),
        Err(SyncError::Foreign {
            lock_id: Id([0x20; 16])
        })
    );
    // An unknown issuer.
    let stranger = door_protocol::IssuerKey::from_bytes(&[0x55; 32]).unwrap();
    let unknown = full_bundle(1, 9)
        .seal_and_sign(&stranger, config().key.public(), &mut OsRng)
        .unwrap();
    assert!(matches!(
        open_bundle(&unknown, &config()),
        Err(SyncError::UnknownIssuerKey { .. })
    ));
    // After all of that, one delta from the right base still applies.
    apply(&mut state, &delta(5, 4)).unwrap();
}

#[test]
fn a_refused_bundle_changes_nothing() {
    let mut state = LockState::default();
    apply(&mut state, &full_bundle(1000, 1)).unwrap();
    // Audit records for the acknowledgement to free, and a clock a signed time would move.
    unlock(&mut state, NOW, NOW, None);
    let before = state.clone();
    let refusals = [
        (full_bundle(1, 1), "stale"),
        (delta(3, 2), "wrong base"),
        (
            // 1000 people's floors held; 25 more people exceed the 1024 a lock holds. Its
            // doorcodes and acknowledgement would have been fine: nothing of it lands.
            SyncBundle {
                floors: (0..25).map(|i| floor(numbered(0xcc, i), 1)).collect(),
                issued_floor: Some(NOW),
                doorcodes: DoorcodeChanges {
                    added: vec![code(0x01, "5555", None)],
                    removed: vec![numbered(0xa0, 0)],
                },
                audit_ack: ack(1),
                issued_at: NOW + 3600,
                ..delta(2, 1)
            },
            "floors full",
        ),
        (
            // Floors fit, but the new code is already another person's: the delta fails at
            // its last check.
            SyncBundle {
                floors: vec![floor(Id([0x77; 16]), 1)],
                issued_floor: Some(NOW),
                doorcodes: DoorcodeChanges {
                    added: vec![code(0x01, "100007", None)],
                    removed: Vec::new(),
                },
                audit_ack: ack(1),
                issued_at: NOW + 3600,
                ..delta(2, 1)
            },
            "code conflict",
        ),
    ];
    for (bundle, what) in refusals {
        assert!(apply(&mut state, &bundle).is_err(), "{what}");
        assert_eq!(state, before, "{what} changed the state");
    }
}

#[test]
fn doorcodes_open_only_with_the_lock_key_and_never_travel_in_the_clear() {
    let bundle = SyncBundle {
        doorcodes: DoorcodeChanges {
            added: vec![code(0xa1, "86420975", None)],
            removed: Vec::new(),
        },
        ..full_bundle(0, 1)
    };
    let bytes = sign(&bundle);
    assert!(!bytes.windows(8).any(|w| w == b"86420975"));
    let same_id_other_key = LockConfig {
        key: LockKey::from_bytes(&[0x66; 32]).unwrap(),
        ..config()
    };
    assert_eq!(
        open_bundle(&bytes, &same_id_other_key),
        Err(SyncError::Undecryptable)
    );
    assert_eq!(
        open_bundle(&bytes, &config()).unwrap().bundle().doorcodes,
        bundle.doorcodes
    );
}

#[test]
fn doorcodes_are_enforced_at_the_keypad_with_a_lockout() {
    let config = config();
    let mut state = LockState::default();
    apply(
        &mut state,
        &SyncBundle {
            doorcodes: DoorcodeChanges {
                added: vec![code(0xa1, "4821", None), code(0xa2, "7777", Some(NOW + 1))],
                removed: Vec::new(),
            },
            issued_at: NOW - 10,
            ..full_bundle(0, 1)
        },
    )
    .unwrap();
    let person = Id([0xa1; 16]);
    assert_eq!(
        state.enter_doorcode(&config, "4821", NOW),
        DoorcodeResult::Granted { person_id: person }
    );
    // Expired one second later: a wrong code too.
    let t = NOW + 1;
    assert_eq!(
        state.enter_doorcode(&config, "7777", t),
        DoorcodeResult::Denied(DoorcodeDenied::Expired {
            person_id: Id([0xa2; 16])
        })
    );
    for _ in 1..KEYPAD_MAX_FAILURES {
        assert_eq!(
            state.enter_doorcode(&config, "0000", t),
            DoorcodeResult::Denied(DoorcodeDenied::Unknown)
        );
    }
    let until = t + KEYPAD_LOCKOUT;
    let recorded = state.audit.len();
    assert_eq!(
        state.enter_doorcode(&config, "4821", t + 1),
        DoorcodeResult::Denied(DoorcodeDenied::LockedOut { until })
    );
    assert_eq!(
        state.audit.len(),
        recorded,
        "a locked keypad records nothing"
    );
    assert_eq!(
        state.enter_doorcode(&config, "4821", until),
        DoorcodeResult::Granted { person_id: person }
    );
    let doorcode_events: Vec<_> = events(&state)
        .into_iter()
        .filter(|e| matches!(e, AuditEvent::DoorcodeEntry { .. }))
        .collect();
    assert_eq!(doorcode_events.len(), 2 + KEYPAD_MAX_FAILURES - 1 + 1);
    assert_eq!(
        doorcode_events[0],
        AuditEvent::DoorcodeEntry {
            person_id: Some(person),
            granted: true
        }
    );
    assert_eq!(
        doorcode_events[1],
        AuditEvent::DoorcodeEntry {
            person_id: Some(Id([0xa2; 16])),
            granted: false
        }
    );
    // A later delta removes the code.
    apply(
        &mut state,
        &SyncBundle {
            doorcodes: DoorcodeChanges {
                added: Vec::new(),
                removed: vec![person],
            },
            ..delta(2, 1)
        },
    )
    .unwrap();
    assert_eq!(
        state.enter_doorcode(&config, "4821", until + 1),
        DoorcodeResult::Denied(DoorcodeDenied::Unknown)
    );
}

#[test]
fn a_revoked_person_is_refused_at_unlock_after_the_bundle() {
    let mut state = LockState::default();
    assert_eq!(
        unlock(&mut state, NOW, NOW, None).result,
        UnlockResult::Granted
    );
    apply(
        &mut state,
        &SyncBundle {
            // The sample document is the person's iteration 3.
            floors: vec![floor(PERSON, 4)],
            ..full_bundle(0, 7)
        },
    )
    .unwrap();
    let outcome = unlock(&mut state, NOW, NOW, None);
    assert_eq!(outcome.result, UnlockResult::Denied(DenyReason::Revoked));
    assert_eq!(outcome.sync_iteration, 7);
    // A full bundle without it lifts it.
    apply(&mut state, &full_bundle(0, 8)).unwrap();
    assert_eq!(
        unlock(&mut state, NOW, NOW, None).result,
        UnlockResult::Granted
    );
}

#[test]
fn the_audit_ack_frees_exactly_the_acknowledged_records() {
    let mut state = LockState::default();
    for _ in 0..5 {
        unlock(&mut state, NOW, NOW, None);
    }
    assert_eq!(state.audit.pending(), 5);
    let applied = apply(
        &mut state,
        &SyncBundle {
            audit_ack: ack(3),
            ..full_bundle(0, 1)
        },
    )
    .unwrap();
    assert_eq!(applied.freed, 3);
    let seqs: Vec<u64> = state
        .audit
        .records()
        .map(|r| verify_audit(r, config().key.public()).unwrap().seq)
        .collect();
    // Records 3 and 4 stay; the bundle's own record is 5.
    assert_eq!(seqs, [3, 4, 5]);
    assert_eq!(events(&state)[2], AuditEvent::SyncApplied { iteration: 1 });
    // The same acknowledgement again frees nothing more.
    assert_eq!(
        apply(
            &mut state,
            &SyncBundle {
                audit_ack: ack(3),
                ..delta(2, 1)
            }
        )
        .unwrap()
        .freed,
        0
    );
}

// --- Signed time ---

#[test]
fn a_signed_time_corrects_a_slow_lock_and_the_same_unlock_is_granted() {
    let mut state = LockState::default();
    let slow = NOW - 600;
    assert_eq!(
        unlock(&mut state, NOW, slow, None).result,
        UnlockResult::Denied(DenyReason::ClockUntrusted)
    );
    // A new lock's first trusted time must be bound to its installation: a time for the lock
    // but not its epoch changes nothing.
    let outcome = unlock(&mut state, NOW, slow, Some(signed_time(NOW, Some(LOCK_ID))));
    assert_eq!(
        outcome.result,
        UnlockResult::Denied(DenyReason::ClockUntrusted)
    );
    assert_eq!(state.clock, ClockState::default());
    let outcome = unlock(&mut state, NOW, slow, Some(bound_time(NOW)));
    assert_eq!(outcome.result, UnlockResult::Granted);
    assert_eq!(outcome.lock_time, NOW);
    assert_eq!(state.clock.offset, 600);
    assert_eq!(state.now(slow + 10), NOW + 10);
    let events = events(&state);
    assert_eq!(events[2], AuditEvent::ClockSet { step: 600 });
    assert!(matches!(events[3], AuditEvent::UnlockGranted { .. }));
    // Commissioned, the lock takes any newer signed time for it or for every lock.
    let outcome = unlock(
        &mut state,
        NOW + 900,
        slow + 600,
        Some(signed_time(NOW + 900, None)),
    );
    assert_eq!(outcome.result, UnlockResult::Granted);
    assert_eq!(state.clock.offset, 900);
}

#[test]
fn a_fast_lock_steps_back_within_the_drift_bound() {
    let config = config();
    let mut state = LockState::default();
    // Anchored forty days ago; since then its crystal ran 600 s fast.
    let anchored = NOW - 40 * DAY;
    state
        .accept_signed_time(&config, &bound_time(anchored), anchored, None)
        .unwrap();
    let fast = NOW + 600;
    assert_eq!(
        unlock(&mut state, NOW, fast, None).result,
        UnlockResult::Denied(DenyReason::ClockUntrusted)
    );
    let outcome = unlock(&mut state, NOW, fast, Some(signed_time(NOW, None)));
    assert_eq!(outcome.result, UnlockResult::Granted);
    assert_eq!(state.now(fast), NOW);

    // A lock that jumped 600 s ahead within a day cannot be that fast by drift: it may step
    // back only the tolerance plus a day's drift, which leaves the phone's clock untrusted, so
    // no proven holder vouches for the step and it is undone.
    let mut state = LockState::default();
    state
        .accept_signed_time(&config, &bound_time(NOW - DAY), NOW - DAY, None)
        .unwrap();
    let before = state.clock;
    let outcome = unlock(&mut state, NOW, fast, Some(signed_time(NOW, None)));
    assert_eq!(
        outcome.result,
        UnlockResult::Denied(DenyReason::ClockUntrusted)
    );
    assert_eq!(outcome.lock_time, fast);
    assert_eq!(state.clock, before);
}

#[test]
fn a_stranger_cannot_turn_the_clock_back() {
    let config = config();
    let mut state = LockState::default();
    let anchored = NOW - 40 * DAY;
    state
        .accept_signed_time(&config, &bound_time(anchored), anchored, None)
        .unwrap();
    let before = state.clone();
    let fast = NOW + 600;
    // A document no trusted issuer signed, a phone clock claiming the lock is fast and a
    // genuine signed time: the tentative step back is undone with the refusal.
    let stranger = door_protocol::IssuerKey::from_bytes(&[0x55; 32]).unwrap();
    let mut phone = prepare_with(
        sample_access().sign(&stranger).unwrap(),
        NOW,
        Some(signed_time(NOW, None)),
    );
    let mut session = LockSession::new();
    let mut reply = None;
    for c in phone.request_fragments(247) {
        reply = session.on_fragment(&config, &mut state, &c, fast, &mut OsRng);
    }
    let reply = reply.unwrap();
    assert_eq!(
        reply.decision.unwrap().result,
        UnlockResult::Denied(DenyReason::BadCredential)
    );
    let mut outcome = None;
    for c in reply.message.fragments(247) {
        outcome = phone.on_fragment(&c).unwrap();
    }
    assert_eq!(outcome.unwrap().lock_time, fast);
    assert_eq!(state.clock, before.clock);
    assert_eq!(
        events(&state).last(),
        Some(&AuditEvent::UnlockDenied {
            credential_id: None,
            reason: DenyReason::BadCredential
        })
    );
    // The same signed time from a resident's phone then steps it back.
    let outcome = unlock(&mut state, NOW, fast, Some(signed_time(NOW, None)));
    assert_eq!(outcome.result, UnlockResult::Granted);
    assert_eq!(state.clock.offset, -600);
}

#[test]
fn an_old_foreign_or_forged_signed_time_changes_nothing() {
    let config = config();
    let mut state = LockState::default();
    state
        .accept_signed_time(&config, &bound_time(NOW), NOW - 300, None)
        .unwrap();
    assert_eq!(state.clock.offset, 300);
    let before = state.clone();
    assert_eq!(
        state.accept_signed_time(&config, &signed_time(NOW, None), NOW, None),
        Ok(TimeUpdate::Stale { last: NOW })
    );
    assert_eq!(
        state.accept_signed_time(
            &config,
            &signed_time(NOW + 900, Some(Id([9; 16]))),
            NOW,
            None
        ),
        Err(SyncError::Foreign {
            lock_id: Id([9; 16])
        })
    );
    let stranger = door_protocol::IssuerKey::from_bytes(&[0x55; 32]).unwrap();
    let forged = SignedTime {
        time: NOW + 900,
        lock_id: None,
        epoch: None,
    }
    .sign(&stranger);
    assert!(state
        .accept_signed_time(&config, &forged, NOW, None)
        .is_err());
    assert_eq!(state, before);
    // In an unlock such a time is ignored and the request judged on its own.
    let outcome = unlock(
        &mut state,
        NOW,
        NOW - 300,
        Some(signed_time(NOW - 60, None)),
    );
    assert_eq!(outcome.result, UnlockResult::Granted);
    assert_eq!(state.clock, before.clock);
    // A bundle's issued_at is a signed time too, and never moves the clock back.
    apply(
        &mut state,
        &SyncBundle {
            issued_at: NOW - 3600,
            ..full_bundle(0, 1)
        },
    )
    .unwrap();
    assert_eq!(state.clock.offset, 300);
    assert_eq!(state.clock.last_signed_time, Some(NOW));
}

/// A lock at the pool door (Monday to Friday 09:00-17:00 for the sample credential).
fn pool_config() -> LockConfig {
    LockConfig {
        door_id: POOL,
        ..config()
    }
}

/// One unlock at `config`'s lock with the sample credential: the lock's decision.
fn decide_at(
    config: &LockConfig,
    state: &mut LockState,
    phone_time: i64,
    clock: i64,
    signed_time: Option<Vec<u8>>,
) -> UnlockResult {
    let mut phone = prepare(phone_time, signed_time);
    let mut session = LockSession::new();
    let mut reply = None;
    for c in phone.request_fragments(247) {
        reply = session.on_fragment(config, state, &c, clock, &mut OsRng);
    }
    let reply = reply.expect("an answer");
    let mut outcome = None;
    for c in reply.message.fragments(247) {
        outcome = phone.on_fragment(&c).unwrap();
    }
    assert_eq!(outcome.unwrap().result, reply.decision.unwrap().result);
    reply.decision.unwrap().result
}

#[test]
fn a_credential_holder_cannot_walk_the_clock_back_step_by_step() {
    // Issue 16: a vendor whose key opens the pool Monday to Friday 09:00-17:00 collected a
    // signed time every 30 s during the day. At 17:20 they send eleven requests, each with a
    // fresh ephemeral key, the next collected signed time and a phone clock 240 s behind the
    // lock's. Before the high-water mark each moved the clock back 120 s and the eleventh was
    // judged at 16:58 and granted.
    let config = pool_config();
    let mut state = LockState::default();
    // The lock's clock is right; it took a bundle's time at 08:00.
    state
        .accept_signed_time(&config, &bound_time(NOW), NOW, None)
        .unwrap();
    let start = NOW + 9 * 3600 + 20 * 60; // 17:20
    let collected = |i: i64| signed_time(NOW + 8 * 3600 + 40 * 60 + 30 * i, None); // 16:40:30 on
                                                                                   // The bound: the tolerance behind the high-water mark (the clock as it read, advanced with
                                                                                   // the hardware clock), plus 200 ppm of the 9 h 20 min since the mark was set at 08:00 (6 s).
    let drift = (start + 11 - NOW) * 200 / 1_000_000;
    assert_eq!(drift, 6);
    for i in 1..=11 {
        let clock = start + i;
        let phone = state.now(clock) - 240;
        let result = decide_at(&config, &mut state, phone, clock, Some(collected(i)));
        assert!(
            matches!(
                result,
                UnlockResult::Denied(DenyReason::OutOfSchedule { .. })
                    | UnlockResult::Denied(DenyReason::ClockUntrusted)
            ),
            "request {i}: {result:?}"
        );
        assert!(
            state.now(clock) >= clock - 120 - drift,
            "request {i}: {} s back",
            clock - state.now(clock)
        );
    }
    let clock = start + 11;
    assert_eq!(state.now(clock), clock - 120 - drift);
    assert!(!events(&state)
        .iter()
        .any(|e| matches!(e, AuditEvent::UnlockGranted { .. })));

    // A lock that took a fresh signed time at 17:00 (a resident's unlock, a bundle) counts no
    // drift to speak of: the tolerance is all the vendor gets.
    let mut state = LockState::default();
    let five = NOW + 9 * 3600;
    state
        .accept_signed_time(&config, &bound_time(five), five, None)
        .unwrap();
    for i in 1..=11 {
        let clock = start + i;
        let phone = state.now(clock) - 240;
        let signed = signed_time(five + 30 * i, None);
        let result = decide_at(&config, &mut state, phone, clock, Some(signed));
        assert!(result != UnlockResult::Granted, "request {i}");
    }
    assert_eq!(state.now(start + 11), start + 11 - 120);
}

#[test]
fn a_new_lock_cannot_be_rewound_at_first_contact() {
    // Issue 16: a new or wiped lock has no trusted time. An old document, an old signed time
    // and a matching old phone clock do not move it back to that era, nor forward to one: its
    // first trusted time must be bound to its installation (its audit epoch), and only ever
    // moves the clock forward.
    let config = pool_config();
    let mut state = LockState::default();
    let sunday = NOW - DAY; // Sunday 08:00: the pool is closed all day.
    let friday = NOW - 3 * DAY + 3 * 3600; // Friday 11:00: open
    assert_eq!(
        decide_at(
            &config,
            &mut state,
            friday,
            sunday,
            Some(signed_time(friday, None))
        ),
        UnlockResult::Denied(DenyReason::ClockUntrusted)
    );
    assert_eq!(state.now(sunday), sunday);
    assert_eq!(state.clock.offset, 0);
    // A lock whose hardware clock went back further (a battery change to Thursday) is not
    // carried forward into Friday's opening hours by an old, unbound time either.
    let thursday = NOW - 4 * DAY;
    assert_eq!(
        decide_at(
            &config,
            &mut state,
            friday,
            thursday,
            Some(signed_time(friday, Some(LOCK_ID)))
        ),
        UnlockResult::Denied(DenyReason::ClockUntrusted)
    );
    assert_eq!(state.clock, ClockState::default());
    // A time bound to this installation sets it, forward, and sets the mark.
    assert!(matches!(
        decide_at(&config, &mut state, NOW, sunday, Some(bound_time(NOW))),
        UnlockResult::Denied(DenyReason::OutOfSchedule { .. })
    ));
    assert_eq!(state.now(sunday), NOW);
    assert!(state.clock.high_water.is_some());
    // A time bound to the lock's installation before a wipe does not commission it again.
    let mut wiped = LockState::new(AuditEpoch([0x77; 8]));
    assert_eq!(
        decide_at(
            &config,
            &mut wiped,
            friday,
            thursday,
            Some(bound_time(friday))
        ),
        UnlockResult::Denied(DenyReason::ClockUntrusted)
    );
    assert_eq!(wiped.clock, ClockState::default());
}

#[test]
fn a_lock_whose_hardware_clock_jumped_back_recovers_through_a_bundle() {
    let config = config();
    let mut state = LockState::default();
    state
        .accept_signed_time(&config, &bound_time(NOW), NOW, None)
        .unwrap();
    // A battery change: the hardware clock restarts thirty days behind.
    let behind = 30 * DAY;
    let clock = |t: i64| t - behind;
    assert_eq!(state.now(clock(NOW + 60)), NOW + 60 - behind);
    assert_eq!(
        unlock(&mut state, NOW + 60, clock(NOW + 60), None).result,
        UnlockResult::Denied(DenyReason::ClockUntrusted)
    );
    // The next bundle any phone carries sets it right: a commissioned lock takes any newer
    // signed time forward, a bundle's too.
    apply_at(
        &mut state,
        &SyncBundle {
            issued_at: NOW + 120,
            ..full_bundle(0, 1)
        },
        clock(NOW + 120),
    )
    .unwrap();
    assert_eq!(state.now(clock(NOW + 180)), NOW + 180);
    assert_eq!(
        unlock(&mut state, NOW + 180, clock(NOW + 180), None).result,
        UnlockResult::Granted
    );
    // Its high-water mark moved on with it, so no step back reaches before the bundle's time.
    let mark = state.clock.high_water.unwrap();
    assert_eq!(mark.at(clock(NOW + 120)), NOW + 120);
}

#[test]
fn a_request_pruned_before_the_clock_stepped_back_is_still_a_replay() {
    let config = config();
    let mut state = LockState::default();
    state
        .accept_signed_time(&config, &bound_time(NOW - 40 * DAY), NOW - 40 * DAY, None)
        .unwrap();
    // The lock runs 600 s fast, and so does a phone: the lock grants its request, once.
    let chunks = prepare(NOW + 600, None).request_fragments(247);
    let deliver = |state: &mut LockState, clock: i64| {
        let mut session = LockSession::new();
        let mut reply = None;
        for c in &chunks {
            reply = session.on_fragment(&config, state, c, clock, &mut OsRng);
        }
        reply.unwrap().decision.unwrap().result
    };
    assert_eq!(deliver(&mut state, NOW + 600), UnlockResult::Granted);
    assert_eq!(
        deliver(&mut state, NOW + 600),
        UnlockResult::Denied(DenyReason::Replayed)
    );
    // 200 s later another unlock prunes its replay entry.
    unlock(&mut state, NOW + 800, NOW + 800, None);
    assert_eq!(state.replay.len(), 1);
    // A phone with the true time and a fresh signed time cannot step the lock back yet: until
    // true time passes the fast phone's request time, any request could be the replay of a
    // pruned one (the floor), this honest one included, and an unproven step is undone.
    let outcome = unlock(
        &mut state,
        NOW + 200,
        NOW + 800,
        Some(signed_time(NOW + 200, None)),
    );
    assert_eq!(outcome.result, UnlockResult::Denied(DenyReason::Replayed));
    assert_eq!(state.clock.offset, 0);
    // Past it, the step back stands.
    let outcome = unlock(
        &mut state,
        NOW + 610,
        NOW + 1210,
        Some(signed_time(NOW + 610, None)),
    );
    assert_eq!(outcome.result, UnlockResult::Granted);
    assert_eq!(state.clock.offset, -600);
    // At true time NOW + 650 the captured request is fresh again by the corrected clock, and
    // no longer in the cache: the floor refuses it.
    assert_eq!(
        deliver(&mut state, NOW + 650 + 600),
        UnlockResult::Denied(DenyReason::Replayed)
    );
}

// --- Transfer ---

/// A phone, a lock and the link between them. `filter` decides what the lock receives of
/// each batch of phone messages (drop, duplicate, reorder); `cut_after` ends the connection
/// once that many data messages reached the lock (the next one arrives half).
struct Link {
    session: LockSession,
    state: LockState,
    mtu: u16,
    clock: i64,
    progress: Vec<Progress>,
    /// Whether the phone proves its credential (an unlock) on each connection first, as a
    /// phone carrying a bundle after an unlock does: only then does a transfer resume.
    proven: bool,
}

enum Ended {
    Finished(SyncOutcome),
    /// The phone has nothing to send and the lock nothing to say: a real phone times out.
    Stalled,
    Cut,
}

impl Link {
    fn new(state: LockState, mtu: u16) -> Link {
        Link {
            session: LockSession::new(),
            state,
            mtu,
            clock: NOW,
            progress: Vec::new(),
            proven: false,
        }
    }

    /// A link on which the phone unlocks before each transfer.
    fn proven(state: LockState, mtu: u16) -> Link {
        let mut link = Link {
            proven: true,
            ..Link::new(state, mtu)
        };
        link.prove();
        link
    }

    fn prove(&mut self) {
        let outcome = unlock_on(
            &mut self.session,
            &mut self.state,
            self.clock,
            self.clock,
            None,
        );
        assert_eq!(outcome.result, UnlockResult::Granted);
    }

    fn reconnect(&mut self, phone: &mut SyncTransfer) {
        self.session = LockSession::new();
        if self.proven {
            self.prove();
        }
        phone.reconnect();
    }

    /// Writes one message's chunks (all, or the first half); feeds any answer to the phone.
    fn write(&mut self, phone: &mut SyncTransfer, m: &Message, half: bool) -> Option<SyncOutcome> {
        let chunks = m.fragments(self.mtu);
        let n = if half {
            chunks.len().div_ceil(2).min(chunks.len() - 1).max(1)
        } else {
            chunks.len()
        };
        for c in &chunks[..n] {
            let reply =
                self.session
                    .on_fragment(&config(), &mut self.state, c, self.clock, &mut OsRng);
            let Some(reply) = reply else { continue };
            for f in reply.message.fragments(self.mtu) {
                match phone.on_fragment(&f).unwrap() {
                    Some(SyncEvent::Progress(p)) => self.progress.push(p),
                    Some(SyncEvent::Finished(o)) => return Some(o),
                    None => {}
                }
            }
        }
        None
    }

    fn run(
        &mut self,
        phone: &mut SyncTransfer,
        mut filter: impl FnMut(Vec<Message>) -> Vec<Message>,
        cut_after: Option<usize>,
    ) -> Ended {
        let mut data = 0;
        loop {
            let sent = phone.next_messages();
            if sent.is_empty() {
                return Ended::Stalled;
            }
            for m in filter(sent) {
                let is_data = m.kind == kind::SYNC_DATA;
                if is_data && cut_after == Some(data) {
                    // The connection drops halfway through this block, when it has more
                    // than one chunk.
                    if m.fragments(self.mtu).len() > 1 {
                        self.write(phone, &m, true);
                    }
                    return Ended::Cut;
                }
                data += usize::from(is_data);
                if let Some(o) = self.write(phone, &m, false) {
                    return Ended::Finished(o);
                }
            }
        }
    }
}

fn finished(e: Ended) -> SyncOutcome {
    match e {
        Ended::Finished(o) => o,
        Ended::Stalled => panic!("stalled"),
        Ended::Cut => panic!("cut"),
    }
}

fn medium_bundle(iteration: u64) -> (SyncBundle, Vec<u8>) {
    let b = full_bundle(150, iteration);
    let bytes = sign(&b);
    (b, bytes)
}

#[test]
fn a_bundle_transfers_at_every_mtu_with_monotone_progress() {
    let (bundle, bytes) = medium_bundle(3);
    for mtu in [23, 185, 247, 515] {
        let mut link = Link::new(LockState::default(), mtu);
        let mut phone = SyncTransfer::new(bytes.clone(), 3, 0).unwrap();
        let outcome = finished(link.run(&mut phone, |m| m, None));
        assert_eq!(outcome, SyncOutcome::Applied { iteration: 3 });
        assert_eq!(link.state.sync_iteration(), 3);
        assert_eq!(link.state.sync.doorcodes(), &bundle.doorcodes.added[..]);
        assert!(link.state.transfer.is_none());
        assert!(link
            .progress
            .windows(2)
            .all(|w| w[0].done <= w[1].done && w[1].total == bytes.len() as u64));
        assert_eq!(
            phone.progress(),
            Progress {
                done: bytes.len() as u64,
                total: bytes.len() as u64
            }
        );
        assert!(phone.is_finished());
        assert!(phone.next_messages().is_empty());
    }
}

#[test]
fn a_disconnect_at_every_block_resumes_from_the_last_ack() {
    let (_, bytes) = medium_bundle(3);
    let block = 512;
    let blocks = bytes.len().div_ceil(block);
    assert!(blocks > 10);
    for cut in 0..blocks {
        let mut link = Link::proven(LockState::default(), 247);
        let mut phone = SyncTransfer::new(bytes.clone(), 3, 0)
            .unwrap()
            .with_flow(block, 4);
        assert!(matches!(link.run(&mut phone, |m| m, Some(cut)), Ended::Cut));
        let acked = phone.progress().done;
        assert_eq!(acked, (cut * block) as u64, "cut {cut}");
        assert_eq!(
            link.state
                .transfer
                .as_ref()
                .map_or(0, |t| t.received().len()),
            cut * block
        );
        link.reconnect(&mut phone);
        let before = link.progress.len();
        let outcome = finished(link.run(&mut phone, |m| m, None));
        assert_eq!(outcome, SyncOutcome::Applied { iteration: 3 }, "cut {cut}");
        // The lock's Accept resumed exactly at the last acknowledged byte.
        assert_eq!(link.progress[before].done, acked);
    }
}

#[test]
fn a_disconnect_at_every_chunk_resumes_from_the_last_ack() {
    let bytes = sign(&full_bundle(40, 3));
    let mtu = 64;
    let mut cuts = 0;
    for cut in 0.. {
        let mut link = Link::proven(LockState::default(), mtu);
        let mut phone = SyncTransfer::new(bytes.clone(), 3, 0)
            .unwrap()
            .with_flow(512, 2);
        // Writes the phone's chunks one by one, the connection dropping before chunk `cut`.
        let mut written = 0;
        let mut ended = None;
        'link: while ended.is_none() {
            let messages = phone.next_messages();
            assert!(!messages.is_empty(), "stalled before chunk {cut}");
            for chunk in messages.iter().flat_map(|m| m.fragments(mtu)) {
                if written == cut {
                    break 'link;
                }
                written += 1;
                let reply =
                    link.session
                        .on_fragment(&config(), &mut link.state, &chunk, NOW, &mut OsRng);
                for f in reply.map_or(Vec::new(), |r| r.message.fragments(mtu)) {
                    if let Some(SyncEvent::Finished(o)) = phone.on_fragment(&f).unwrap() {
                        ended = Some(o);
                    }
                }
            }
        }
        if let Some(outcome) = ended {
            // `cut` is past the last chunk: every earlier index was tried.
            assert_eq!(outcome, SyncOutcome::Applied { iteration: 3 });
            break;
        }
        cuts += 1;
        let acked = phone.progress().done;
        let persisted = link
            .state
            .transfer
            .as_ref()
            .map_or(0, |t| t.received().len());
        assert_eq!(acked, persisted as u64, "cut before chunk {cut}");
        link.reconnect(&mut phone);
        let before = link.progress.len();
        assert_eq!(
            finished(link.run(&mut phone, |m| m, None)),
            SyncOutcome::Applied { iteration: 3 },
            "cut before chunk {cut}"
        );
        assert_eq!(
            link.progress[before].done, acked,
            "resumed from the last ack"
        );
    }
    assert!(cuts > 40, "{cuts} cuts");
}

/// An attacker who saw the honest phone's offer in the clear offers the same bundle on their
/// own connection and writes junk from wherever the lock says to resume; returns that offset.
fn poison(session: &mut LockSession, state: &mut LockState, offer: Offer) -> u32 {
    let mut send = |m: SyncMessage| {
        session
            .on_message(&config(), state, &m.to_message(), NOW, &mut OsRng)
            .map(|r| SyncMessage::from_message(&r.message).unwrap())
    };
    let Some(SyncMessage::Accept { resume_from }) = send(SyncMessage::Offer(offer)) else {
        panic!("the offer is accepted");
    };
    for i in 0..3 {
        send(SyncMessage::Data {
            offset: resume_from + i * 512,
            bytes: vec![0xee; 512],
        });
    }
    resume_from
}

#[test]
fn a_transfer_poisoned_by_a_third_party_resumes_correctly() {
    let (_, bytes) = medium_bundle(3);
    let mut neighbour = sample_access();
    neighbour.person_id = Id([0xa9; 16]);
    neighbour.credential_id = Id([0xc9; 16]);
    let neighbour = neighbour.sign(&issuer()).unwrap();
    // A stranger on BLE, and a neighbour who holds a credential for the door.
    for attacker_proves in [false, true] {
        let mut link = Link::proven(LockState::default(), 247);
        let mut phone = SyncTransfer::new(bytes.clone(), 3, 0)
            .unwrap()
            .with_flow(512, 4);
        assert!(matches!(link.run(&mut phone, |m| m, Some(4)), Ended::Cut));
        let kept = link.state.transfer.clone().unwrap();
        assert_eq!(kept.received().len(), 4 * 512);

        let mut attacker = LockSession::new();
        if attacker_proves {
            let mut unlock = prepare_with(neighbour.clone(), NOW, None);
            let mut reply = None;
            for c in unlock.request_fragments(247) {
                reply = attacker.on_fragment(&config(), &mut link.state, &c, NOW, &mut OsRng);
            }
            for c in reply.unwrap().message.fragments(247) {
                unlock.on_fragment(&c).unwrap();
            }
        }
        let resumed_at = poison(&mut attacker, &mut link.state, phone.offer());
        assert_eq!(resumed_at, 0, "no one resumes another's transfer");
        if !attacker_proves {
            assert_eq!(
                link.state.transfer.as_ref(),
                Some(&kept),
                "a stranger's junk changes nothing"
            );
        }
        // Data with no offer on a fresh connection goes nowhere either.
        let before = link.state.transfer.clone();
        let reply = LockSession::new().on_message(
            &config(),
            &mut link.state,
            &SyncMessage::Data {
                offset: 4 * 512,
                bytes: vec![0xee; 512],
            }
            .to_message(),
            NOW,
            &mut OsRng,
        );
        assert!(matches!(
            SyncMessage::from_message(&reply.unwrap().message),
            Ok(SyncMessage::Failed {
                reason: FailReason::NoTransfer,
                ..
            })
        ));
        assert_eq!(link.state.transfer, before);

        link.reconnect(&mut phone);
        let before = link.progress.len();
        assert_eq!(
            finished(link.run(&mut phone, |m| m, None)),
            SyncOutcome::Applied { iteration: 3 },
            "attacker proves: {attacker_proves}"
        );
        // After a stranger the phone resumed where it stopped; after a neighbour, whose
        // transfer replaced its own, from the start (never onto the neighbour's bytes).
        let expected = if attacker_proves { 0 } else { 4 * 512 };
        assert_eq!(link.progress[before].done, expected);
        assert_eq!(link.state.sync_iteration(), 3);
    }
}

#[test]
fn duplicated_blocks_are_ignored() {
    let (_, bytes) = medium_bundle(3);
    let mut link = Link::new(LockState::default(), 247);
    let mut phone = SyncTransfer::new(bytes.clone(), 3, 0)
        .unwrap()
        .with_flow(1024, 4);
    let outcome = finished(link.run(
        &mut phone,
        |msgs| msgs.into_iter().flat_map(|m| [m.clone(), m]).collect(),
        None,
    ));
    assert_eq!(outcome, SyncOutcome::Applied { iteration: 3 });
}

#[test]
fn reordered_blocks_make_the_phone_rewind() {
    let (_, bytes) = medium_bundle(3);
    let mut link = Link::new(LockState::default(), 247);
    let mut phone = SyncTransfer::new(bytes.clone(), 3, 0)
        .unwrap()
        .with_flow(1024, 4);
    let outcome = finished(link.run(
        &mut phone,
        |mut msgs| {
            msgs.reverse();
            msgs
        },
        None,
    ));
    assert_eq!(outcome, SyncOutcome::Applied { iteration: 3 });
    // Some acknowledgements did not advance: rewinds.
    assert!(link.progress.windows(2).any(|w| w[0] == w[1]));
}

#[test]
fn a_lost_block_stalls_until_a_reconnect_resumes() {
    let (_, bytes) = medium_bundle(3);
    let mut link = Link::new(LockState::default(), 247);
    let mut phone = SyncTransfer::new(bytes.clone(), 3, 0)
        .unwrap()
        .with_flow(1024, 2);
    let mut dropped = false;
    let ended = link.run(
        &mut phone,
        |msgs| {
            msgs.into_iter()
                .filter(|m| {
                    let first_data = m.kind == kind::SYNC_DATA && !dropped;
                    dropped |= first_data;
                    !first_data
                })
                .collect()
        },
        None,
    );
    // The first block vanished, the second drew a rewind, the phone resent both.
    assert_eq!(finished(ended), SyncOutcome::Applied { iteration: 3 });
}

#[test]
fn the_window_bounds_the_bytes_in_flight() {
    let (_, bytes) = medium_bundle(3);
    let mut phone = SyncTransfer::new(bytes, 3, 0).unwrap().with_flow(1000, 3);
    assert_eq!(phone.next_messages().len(), 1, "the offer alone");
    assert!(
        phone.next_messages().is_empty(),
        "nothing before the accept"
    );
    phone
        .on_message(&SyncMessage::Accept { resume_from: 0 }.to_message())
        .unwrap();
    let burst = phone.next_messages();
    assert_eq!(burst.len(), 3);
    assert!(phone.next_messages().is_empty());
    phone
        .on_message(&SyncMessage::Ack { next_offset: 1000 }.to_message())
        .unwrap();
    let next = phone.next_messages();
    assert_eq!(next.len(), 1);
    assert_eq!(
        SyncMessage::from_message(&next[0]).unwrap(),
        SyncMessage::Data {
            offset: 3000,
            bytes: next[0].body[4..].to_vec()
        }
    );
    // A lock acknowledging less than before, or beyond the bundle, is not to be believed.
    assert_eq!(
        phone.on_message(&SyncMessage::Ack { next_offset: 10 }.to_message()),
        Err(TransferError::Protocol)
    );
    assert_eq!(phone.next_messages(), Vec::<Message>::new());
}

#[test]
fn a_lock_that_does_not_need_the_bundle_declines_at_once() {
    let mut state = LockState::default();
    apply(&mut state, &full_bundle(0, 5)).unwrap();
    for (iteration, base, expected) in [
        (
            5,
            0,
            SyncOutcome::Declined {
                current_iteration: 5,
            },
        ),
        (
            4,
            3,
            SyncOutcome::Declined {
                current_iteration: 5,
            },
        ),
        (
            7,
            6,
            SyncOutcome::Failed {
                reason: FailReason::WrongBase,
                current_iteration: 5,
            },
        ),
    ] {
        let bytes = sign(&SyncBundle {
            iteration,
            base_iteration: base,
            keypad: None,
            ..full_bundle(0, iteration)
        });
        let mut link = Link::new(state.clone(), 247);
        let mut phone = SyncTransfer::new(bytes, iteration, base).unwrap();
        let mut data_sent = 0;
        let outcome = finished(link.run(
            &mut phone,
            |msgs| {
                data_sent += msgs.iter().filter(|m| m.kind == kind::SYNC_DATA).count();
                msgs
            },
            None,
        ));
        assert_eq!(outcome, expected);
        assert_eq!(data_sent, 0, "no byte of the bundle was sent");
    }
}

#[test]
fn an_altered_bundle_or_block_fails_the_transfer_and_changes_nothing() {
    let (_, bytes) = medium_bundle(3);
    // The courier altered the bundle itself (its digest matches what it offers).
    let mut altered = bytes.clone();
    altered[bytes.len() / 2] ^= 1;
    let mut link = Link::new(LockState::default(), 247);
    let before = link.state.clone();
    let mut phone = SyncTransfer::new(altered, 3, 0).unwrap();
    assert_eq!(
        finished(link.run(&mut phone, |m| m, None)),
        SyncOutcome::Failed {
            reason: FailReason::BadSignature,
            current_iteration: 0
        }
    );
    assert_eq!(link.state, before);
    // A relay altered a block on the way: the bytes no longer match the offer.
    let mut link = Link::new(LockState::default(), 247);
    let mut phone = SyncTransfer::new(bytes, 3, 0).unwrap();
    let outcome = finished(link.run(
        &mut phone,
        |msgs| {
            msgs.into_iter()
                .map(|mut m| {
                    if m.kind == kind::SYNC_DATA {
                        m.body[10] ^= 1;
                    }
                    m
                })
                .collect()
        },
        None,
    ));
    assert_eq!(
        outcome,
        SyncOutcome::Failed {
            reason: FailReason::DigestMismatch,
            current_iteration: 0
        }
    );
    assert_eq!(link.state, before);
}

#[test]
fn a_bundle_rides_after_an_unlock_on_the_same_connection() {
    let mut link = Link::new(LockState::default(), 247);
    let outcome = unlock_on(&mut link.session, &mut link.state, NOW, NOW, None);
    assert_eq!(outcome.result, UnlockResult::Granted);
    let bytes = sign(&SyncBundle {
        floors: vec![floor(PERSON, 4)],
        ..full_bundle(0, 1)
    });
    let mut phone = SyncTransfer::new(bytes, 1, 0).unwrap();
    assert_eq!(
        finished(link.run(&mut phone, |m| m, None)),
        SyncOutcome::Applied { iteration: 1 }
    );
    let outcome = unlock_on(&mut link.session, &mut link.state, NOW, NOW, None);
    assert_eq!(outcome.result, UnlockResult::Denied(DenyReason::Revoked));
    assert_eq!(outcome.sync_iteration, 1);
}

#[test]
fn data_without_an_accepted_offer_is_refused() {
    let mut state = LockState::default();
    let data = SyncMessage::Data {
        offset: 0,
        bytes: vec![1; 10],
    }
    .to_message();
    let reply = LockSession::new()
        .on_message(&config(), &mut state, &data, NOW, &mut OsRng)
        .unwrap();
    assert_eq!(
        SyncMessage::from_message(&reply.message).unwrap(),
        SyncMessage::Failed {
            reason: FailReason::NoTransfer,
            current_iteration: 0
        }
    );
    // Oversized offers and blocks.
    let offer = SyncMessage::Offer(door_protocol::sync::Offer {
        iteration: 1,
        base_iteration: 0,
        total_len: u32::MAX,
        digest: [0; 32],
    })
    .to_message();
    let reply = LockSession::new()
        .on_message(&config(), &mut state, &offer, NOW, &mut OsRng)
        .unwrap();
    assert_eq!(
        SyncMessage::from_message(&reply.message).unwrap(),
        SyncMessage::Failed {
            reason: FailReason::TooLarge,
            current_iteration: 0
        }
    );
    let big = Message::new(kind::SYNC_DATA, vec![0; 4 + MAX_BLOCK + 1]).unwrap();
    let reply = LockSession::new()
        .on_message(&config(), &mut state, &big, NOW, &mut OsRng)
        .unwrap();
    assert_eq!(reply.message, ErrorCode::Malformed.message());
    assert!(SyncTransfer::new(vec![0; door_protocol::sync::MAX_BUNDLE_SIZE + 1], 1, 0).is_err());
    assert!(SyncTransfer::new(Vec::new(), 1, 0).is_err());
}

// --- Audit pull ---

fn pull_all(
    session: &mut LockSession,
    state: &mut LockState,
    from_seq: u64,
) -> Result<Vec<door_protocol::sync::PulledRecord>, TransferError> {
    let epoch = state.audit.epoch();
    pull_epoch(session, state, epoch, from_seq)
}

/// Pulls as a phone that last saw the lock at `epoch`, `from_seq`.
fn pull_epoch(
    session: &mut LockSession,
    state: &mut LockState,
    epoch: AuditEpoch,
    from_seq: u64,
) -> Result<Vec<door_protocol::sync::PulledRecord>, TransferError> {
    let mut puller = AuditPuller::new(*config().key.public(), epoch, from_seq);
    let mut all = Vec::new();
    loop {
        let mut batch = None;
        for c in puller.request_fragments(23) {
            if let Some(reply) = session.on_fragment(&config(), state, &c, NOW, &mut OsRng) {
                assert_eq!(reply.persist, door_protocol::Persist::default());
                for f in reply.message.fragments(23) {
                    batch = puller.on_fragment(&f)?;
                }
            }
        }
        let batch = batch.expect("a batch");
        all.extend(batch.records);
        if !batch.more {
            return Ok(all);
        }
    }
}

#[test]
fn audit_records_are_pulled_in_bounded_batches_and_stay_until_acknowledged() {
    let mut state = LockState::default();
    let mut session = LockSession::new();
    // A stranger's pull, before any credential was proven on the connection, is refused.
    assert_eq!(
        pull_all(&mut session, &mut state, 0).unwrap_err(),
        TransferError::Refused(ErrorCode::Forbidden)
    );
    for _ in 0..59 {
        unlock(&mut state, NOW, NOW, None);
    }
    assert_eq!(
        unlock_on(&mut session, &mut state, NOW, NOW, None).result,
        UnlockResult::Granted
    );
    let all = pull_all(&mut session, &mut state, 0).unwrap();
    assert_eq!(
        all.iter().map(|r| r.record.seq).collect::<Vec<_>>(),
        (0..60).collect::<Vec<_>>()
    );
    // The batches were several; the records are all still at the lock.
    assert_eq!(state.audit.pending(), 60);
    let tail = pull_all(&mut session, &mut state, 57).unwrap();
    assert_eq!(tail.len(), 3);
    apply(
        &mut state,
        &SyncBundle {
            audit_ack: ack(60),
            ..full_bundle(0, 1)
        },
    )
    .unwrap();
    let rest = pull_all(&mut session, &mut state, 60).unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(
        rest[0].record.event,
        AuditEvent::SyncApplied { iteration: 1 }
    );
}

#[test]
fn a_wiped_lock_hands_over_its_new_epoch_and_ignores_the_old_acknowledgement() {
    let old_epoch = AuditEpoch([0x01; 8]);
    let mut state = LockState::new(old_epoch);
    for _ in 0..5 {
        unlock(&mut state, NOW, NOW, None);
    }
    // The server holds 0-4 of the old epoch. Then the lock is wiped: a new epoch, from 0.
    let new_epoch = AuditEpoch([0x02; 8]);
    let mut state = LockState::new(new_epoch);
    let mut session = LockSession::new();
    for _ in 0..2 {
        unlock(&mut state, NOW, NOW, None);
    }
    assert_eq!(
        unlock_on(&mut session, &mut state, NOW, NOW, None).result,
        UnlockResult::Granted
    );
    // A phone that last pulled the old log up to 5 still gets the new log from its start.
    let pulled = pull_epoch(&mut session, &mut state, old_epoch, 5).unwrap();
    assert_eq!(
        pulled
            .iter()
            .map(|r| (r.record.epoch, r.record.seq))
            .collect::<Vec<_>>(),
        [(new_epoch, 0), (new_epoch, 1), (new_epoch, 2)]
    );
    // A bundle acknowledging the old epoch (the server has not seen the new one yet) frees
    // none of the new records, though its seq is above them all.
    let applied = apply(
        &mut state,
        &SyncBundle {
            audit_ack: Some(AuditAck {
                epoch: old_epoch,
                below: 5,
            }),
            ..full_bundle(0, 1)
        },
    )
    .unwrap();
    assert_eq!(applied.freed, 0);
    assert_eq!(
        state.audit.pending(),
        4,
        "three unlocks and the sync record"
    );
    assert_eq!(
        state.audit.next_seq(),
        4,
        "the count did not jump to the old ack"
    );
    // The acknowledgement of the new epoch frees them.
    let applied = apply(
        &mut state,
        &SyncBundle {
            audit_ack: Some(AuditAck {
                epoch: new_epoch,
                below: 3,
            }),
            ..delta(2, 1)
        },
    )
    .unwrap();
    assert_eq!(applied.freed, 3);
}

/// One audit pull from `from_seq` of the lock's epoch: the records and what the lock asked to
/// persist before answering.
fn pull_once(
    session: &mut LockSession,
    state: &mut LockState,
    from_seq: u64,
) -> (
    Vec<door_protocol::sync::PulledRecord>,
    door_protocol::Persist,
) {
    let mut puller = AuditPuller::new(*config().key.public(), state.audit.epoch(), from_seq);
    let mut out = None;
    for c in puller.request_fragments(512) {
        if let Some(reply) = session.on_fragment(&config(), state, &c, NOW, &mut OsRng) {
            for f in reply.message.fragments(512) {
                if let Some(batch) = puller.on_fragment(&f).unwrap() {
                    out = Some((batch.records, reply.persist));
                }
            }
        }
    }
    out.expect("a batch")
}

#[test]
fn a_proven_pull_records_the_locks_health_once_per_connection() {
    let mut state = LockState::default();
    // The lock took a signed time 30 s behind its clock.
    state.clock.accept(NOW - 30, NOW, None, true, 120);
    let readings = door_protocol::HealthReadings {
        battery_percent: 73,
        firmware: door_protocol::FirmwareVersion::new("door-lock 2.1").unwrap(),
    };
    let mut session = LockSession::new();
    session.report_health(readings);
    // A stranger's pull is refused and records nothing.
    assert_eq!(
        pull_all(&mut session, &mut state, 0).unwrap_err(),
        TransferError::Refused(ErrorCode::Forbidden)
    );
    assert_eq!(state.audit.next_seq(), 0);
    unlock_on(&mut session, &mut state, NOW, NOW, None);
    let (records, persist) = pull_once(&mut session, &mut state, 0);
    assert_eq!(
        persist,
        door_protocol::Persist::DECISION,
        "kept before it leaves"
    );
    assert_eq!(
        records.last().map(|r| r.record.event),
        Some(AuditEvent::Health(door_protocol::LockHealth {
            battery_percent: 73,
            firmware: readings.firmware,
            clock_offset: Some(30),
            iteration: 0,
        }))
    );
    assert_eq!(records.len(), 2, "the unlock and the health record");
    // The same connection pulls again: no second record.
    let (again, persist) = pull_once(&mut session, &mut state, 0);
    assert_eq!(
        (again.len(), persist),
        (2, door_protocol::Persist::default())
    );
    // A connection whose lock gives no readings records none.
    let mut quiet = LockSession::new();
    unlock_on(&mut quiet, &mut state, NOW, NOW, None);
    let (records, _) = pull_once(&mut quiet, &mut state, 2);
    assert!(matches!(
        records.iter().map(|r| r.record.event).collect::<Vec<_>>()[..],
        [AuditEvent::UnlockGranted { .. }]
    ));
}

#[test]
fn the_puller_refuses_records_that_do_not_verify() {
    let mut puller = AuditPuller::new(*config().key.public(), AuditEpoch::default(), 0);
    let other = LockKey::from_bytes(&[0x66; 32]).unwrap();
    let mut log = door_protocol::AuditLog::default();
    log.record(&other, NOW, AuditEvent::SyncApplied { iteration: 1 });
    let batch = SyncMessage::AuditBatch {
        records: log.records().map(<[u8]>::to_vec).collect(),
        more: false,
    }
    .to_message();
    assert!(matches!(
        puller.on_message(&batch),
        Err(TransferError::BadRecord(_))
    ));
    assert_eq!(puller.next_seq(), 0);
}

// --- Nothing panics ---

fn sync_kind() -> impl Strategy<Value = u8> {
    prop_oneof![
        Just(kind::SYNC_OFFER),
        Just(kind::SYNC_DATA),
        Just(kind::AUDIT_PULL),
        Just(kind::SYNC_ACCEPT),
        Just(kind::SYNC_DECLINE),
        Just(kind::SYNC_ACK),
        Just(kind::SYNC_DONE),
        Just(kind::SYNC_FAILED),
        Just(kind::AUDIT_BATCH),
        Just(kind::ERROR),
        any::<u8>(),
    ]
}

/// Random sync messages, often with plausible numbers (small offsets, the real digest).
fn lock_bound() -> impl Strategy<Value = Message> {
    let (_, bytes) = &*MEDIUM;
    let total = bytes.len() as u32;
    let digest = SyncTransfer::new(bytes.clone(), 3, 0)
        .unwrap()
        .offer()
        .digest;
    prop_oneof![
        (sync_kind(), prop::collection::vec(any::<u8>(), 0..80))
            .prop_map(|(k, body)| Message { kind: k, body }),
        (1u64..4, 0u64..3, prop_oneof![Just(total), any::<u32>()]).prop_map(
            move |(iteration, base_iteration, total_len)| {
                SyncMessage::Offer(door_protocol::sync::Offer {
                    iteration,
                    base_iteration,
                    total_len,
                    digest,
                })
                .to_message()
            }
        ),
        (0u32..(total + 100), 1usize..3000).prop_map(move |(offset, len)| {
            let start = (offset as usize).min(bytes.len());
            let mut block = bytes[start..(start + len).min(bytes.len())].to_vec();
            if block.is_empty() {
                block.push(0);
            }
            SyncMessage::Data {
                offset,
                bytes: block,
            }
            .to_message()
        }),
        any::<([u8; 8], u64)>().prop_map(|(epoch, from_seq)| SyncMessage::AuditPull {
            epoch: AuditEpoch(epoch),
            from_seq
        }
        .to_message()),
    ]
}

static MEDIUM: std::sync::LazyLock<(SyncBundle, Vec<u8>)> =
    std::sync::LazyLock::new(|| medium_bundle(3));

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_messages_never_panic_the_lock(messages in prop::collection::vec(lock_bound(), 0..40)) {
        let mut state = LockState::default();
        let mut session = LockSession::new();
        for m in &messages {
            if let Some(reply) = session.on_message(&config(), &mut state, m, NOW, &mut OsRng) {
                prop_assert!(reply.decision.is_none_or(|d| !d.result.is_granted()));
            }
        }
        // Whatever arrived, only the genuine bundle can have been applied.
        prop_assert!(state.sync_iteration() == 0 || state.sync_iteration() == 3);
    }

    #[test]
    fn random_chunks_never_panic_the_phone(
        chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..120), 0..30),
        messages in prop::collection::vec((sync_kind(), prop::collection::vec(any::<u8>(), 0..60)), 0..30),
    ) {
        let mut phone = SyncTransfer::new(MEDIUM.1.clone(), 3, 0).unwrap();
        let mut puller = AuditPuller::new(*config().key.public(), AuditEpoch::default(), 0);
        phone.next_messages();
        for c in &chunks {
            let _ = phone.on_fragment(c);
            let _ = puller.on_fragment(c);
            phone.next_messages();
        }
        phone.reconnect();
        phone.next_messages();
        for (k, body) in messages {
            let m = Message { kind: k, body };
            let _ = phone.on_message(&m);
            let _ = puller.on_message(&m);
            let sent = phone.next_messages();
            prop_assert!(sent.iter().all(|m| m.body.len() <= 4 + SyncTransfer::DEFAULT_BLOCK));
            if phone.is_finished() {
                phone.reconnect();
            }
        }
    }
}
