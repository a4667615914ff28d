//! Sync bundles: `open_bundle` as the lock checks them (frame, signature, payload, lock,
//! sealed doorcodes), `inspect_bundle` as a phone does, and `apply_bundle` on what opens.
//!
//! Input: a mode byte, then
//! - 0: the signed bundle;
//! - 1: a payload the harness signs with the trusted issuer, to get past the signature;
//! - 2: a bundle the harness builds from the bytes, seals and signs, to get past the sealed
//!   doorcodes too (only the issuer can seal them): it must open to what was sealed.
#![no_main]

use arbitrary::{Result, Unstructured};
use door_protocol::revocation::Floor;
use door_protocol::sync::bundle::KeypadRules;
use door_protocol::sync::SYNC_CONTENT_TYPE;
use door_protocol::{
    cose, inspect_bundle, open_bundle, AuditAck, AuditEpoch, Doorcode, DoorcodeChanges, Id,
    LockState, Schedule, SyncBundle, SyncError, Weekdays, Window, ZoneRules,
};
use door_protocol_fuzz::{FuzzRng, AFTER_FULL, CONFIG, ISSUER, LOCK_ID, NOW};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let bytes = match mode % 3 {
        0 => rest.to_vec(),
        1 => match cose::sign1(&ISSUER, SYNC_CONTENT_TYPE, rest.to_vec()) {
            Ok(b) => b,
            Err(_) => return,
        },
        _ => {
            let Ok(bundle) = sync_bundle(&mut Unstructured::new(rest)) else {
                return;
            };
            let lock = CONFIG.key.public();
            let Ok(bytes) = bundle.seal_and_sign(&ISSUER, lock, &mut FuzzRng(0)) else {
                return;
            };
            let opened = open_bundle(&bytes, &CONFIG);
            if bundle.lock_id == LOCK_ID {
                let opened = opened.map(|o| normalized(o.bundle().clone()));
                assert_eq!(opened, Ok(normalized(bundle)));
            } else {
                assert!(matches!(opened, Err(SyncError::Foreign { .. })));
            }
            bytes
        }
    };
    check(&bytes);
});

fn check(bytes: &[u8]) {
    let info = inspect_bundle(bytes, &CONFIG.issuer_keys);
    let Ok(opened) = open_bundle(bytes, &CONFIG) else {
        return;
    };
    let b = opened.bundle();
    let info = info.expect("a bundle the lock opens, anyone can inspect");
    assert_eq!(
        (info.lock_id, info.iteration, info.base_iteration),
        (b.lock_id, b.iteration, b.base_iteration)
    );
    assert_eq!(
        (info.issued_at, info.audit_ack, info.floors),
        (b.issued_at, b.audit_ack, b.floors.len())
    );
    assert_eq!(info.doorcodes, !b.doorcodes.is_empty());
    assert!(b.validate().is_ok());
    for mut state in [LockState::default(), AFTER_FULL.clone()] {
        let before = state.clone();
        match state.apply_bundle(&CONFIG, &opened, NOW) {
            Ok(applied) => {
                assert_eq!(state.sync_iteration(), applied.iteration);
                // The bundle's time may have moved the clock: floors expired by then are gone.
                let at = state.clock.now(NOW);
                // Floors only go up within a delta, and the issued floor never goes down.
                assert!(state.sync.issued_floor() >= before.sync.issued_floor());
                assert!(state.sync.issued_floor() >= b.issued_floor);
                if !b.is_full() {
                    for f in before.sync.floors().entries() {
                        if at < f.expires_at {
                            let now = state.sync.floors().entries();
                            let kept = now.iter().find(|g| g.person_id == f.person_id);
                            assert!(kept.is_some_and(|g| g.floor >= f.floor));
                        }
                    }
                    assert_eq!(state.sync.keypad(), before.sync.keypad());
                } else {
                    assert_eq!(state.sync.keypad(), b.keypad.as_ref());
                }
                for f in &b.floors {
                    if at < f.expires_at {
                        let now = state.sync.floors().entries();
                        let kept = now.iter().find(|g| g.person_id == f.person_id);
                        assert!(kept.is_some_and(|g| g.floor >= f.floor));
                    }
                }
            }
            Err(_) => assert_eq!(state, before, "a refused bundle changes nothing"),
        }
    }
}

/// Lists in the order the encoding sorts them.
fn normalized(mut b: SyncBundle) -> SyncBundle {
    b.floors.sort_unstable_by_key(|e| e.person_id);
    b.doorcodes.added.sort_unstable_by_key(|c| c.person_id);
    b.doorcodes.removed.sort_unstable();
    b
}

/// A bundle of up to 7 floors, an issued floor, 7 added (with up to 9 schedule indexes each)
/// and 3 removed doorcodes, and keypad rules of up to 4 schedules in a fixed zone, mostly for
/// the lock.
fn sync_bundle(u: &mut Unstructured) -> Result<SyncBundle> {
    let lock_id = if u.arbitrary()? {
        LOCK_ID
    } else {
        Id(u.arbitrary()?)
    };
    let iteration = u.arbitrary()?;
    let base_iteration = u.arbitrary()?;
    let issued_at = u.arbitrary()?;
    let mut floors = Vec::new();
    for _ in 0..u.arbitrary::<u8>()? % 8 {
        floors.push(Floor {
            person_id: Id(u.arbitrary()?),
            floor: u.arbitrary()?,
            expires_at: u.arbitrary()?,
        });
    }
    let issued_floor = u.arbitrary()?;
    let mut doorcodes = DoorcodeChanges::default();
    for _ in 0..u.arbitrary::<u8>()? % 8 {
        // Digits only, any length: the shape rules are the lengths and uniqueness.
        let len = u.arbitrary::<u8>()? % 12;
        let mut code = String::new();
        for _ in 0..len {
            code.push(char::from(b'0' + u.arbitrary::<u8>()? % 10));
        }
        let person_id = Id(u.arbitrary()?);
        let expires_at = u.arbitrary()?;
        let mut schedules = Vec::new();
        for _ in 0..u.arbitrary::<u8>()? % 10 {
            schedules.push(u.arbitrary()?);
        }
        doorcodes.added.push(Doorcode {
            person_id,
            code,
            expires_at,
            schedules,
        });
    }
    for _ in 0..u.arbitrary::<u8>()? % 4 {
        doorcodes.removed.push(Id(u.arbitrary()?));
    }
    let keypad = if u.arbitrary()? {
        let zone = ZoneRules::fixed(u.arbitrary()?);
        let mut schedules = Vec::new();
        for _ in 0..u.arbitrary::<u8>()? % 5 {
            let mut windows = Vec::new();
            for _ in 0..u.arbitrary::<u8>()? % 4 {
                windows.push(Window {
                    days: Weekdays(u.arbitrary()?),
                    start_minute: u.arbitrary()?,
                    end_minute: u.arbitrary()?,
                });
            }
            schedules.push(Schedule {
                windows,
                not_before: u.arbitrary()?,
                not_after: u.arbitrary()?,
            });
        }
        Some(KeypadRules { zone, schedules })
    } else {
        None
    };
    Ok(SyncBundle {
        lock_id,
        iteration,
        base_iteration,
        issued_at,
        floors,
        issued_floor,
        doorcodes,
        keypad,
        audit_ack: match u.arbitrary()? {
            false => None,
            true => Some(AuditAck {
                epoch: AuditEpoch(u.arbitrary()?),
                below: u.arbitrary()?,
            }),
        },
    })
}
