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
use door_protocol::sync::SYNC_CONTENT_TYPE;
use door_protocol::{
    cose, inspect_bundle, open_bundle, AuditAck, AuditEpoch, Doorcode, DoorcodeChanges, Id,
    LockState, RevocationEntry, SyncBundle, SyncError,
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
        (info.issued_at, info.audit_ack, info.revocations),
        (b.issued_at, b.audit_ack, b.revocations.len())
    );
    assert_eq!(info.doorcodes, !b.doorcodes.is_empty());
    assert!(b.validate().is_ok());
    for mut state in [LockState::default(), AFTER_FULL.clone()] {
        let before = state.clone();
        match state.apply_bundle(&CONFIG, &opened, NOW) {
            Ok(applied) => assert_eq!(state.sync_iteration(), applied.iteration),
            Err(_) => assert_eq!(state, before, "a refused bundle changes nothing"),
        }
    }
}

/// Lists in the order the encoding sorts them.
fn normalized(mut b: SyncBundle) -> SyncBundle {
    b.revocations.sort_unstable_by_key(|e| e.credential_id);
    b.doorcodes.added.sort_unstable_by_key(|c| c.person_id);
    b.doorcodes.removed.sort_unstable();
    b
}

/// A bundle of up to 7 revocations, 7 added and 3 removed doorcodes, mostly for the lock.
fn sync_bundle(u: &mut Unstructured) -> Result<SyncBundle> {
    let lock_id = if u.arbitrary()? {
        LOCK_ID
    } else {
        Id(u.arbitrary()?)
    };
    let iteration = u.arbitrary()?;
    let base_iteration = u.arbitrary()?;
    let issued_at = u.arbitrary()?;
    let mut revocations = Vec::new();
    for _ in 0..u.arbitrary::<u8>()? % 8 {
        revocations.push(RevocationEntry {
            credential_id: Id(u.arbitrary()?),
            expires_at: u.arbitrary()?,
        });
    }
    let mut doorcodes = DoorcodeChanges::default();
    for _ in 0..u.arbitrary::<u8>()? % 8 {
        // Digits only, any length: the shape rules are the lengths and uniqueness.
        let len = u.arbitrary::<u8>()? % 12;
        let mut code = String::new();
        for _ in 0..len {
            code.push(char::from(b'0' + u.arbitrary::<u8>()? % 10));
        }
        doorcodes.added.push(Doorcode {
            person_id: Id(u.arbitrary()?),
            code,
            expires_at: u.arbitrary()?,
        });
    }
    for _ in 0..u.arbitrary::<u8>()? % 4 {
        doorcodes.removed.push(Id(u.arbitrary()?));
    }
    Ok(SyncBundle {
        lock_id,
        iteration,
        base_iteration,
        issued_at,
        revocations,
        doorcodes,
        audit_ack: match u.arbitrary()? {
            false => None,
            true => Some(AuditAck {
                epoch: AuditEpoch(u.arbitrary()?),
                below: u.arbitrary()?,
            }),
        },
    })
}
