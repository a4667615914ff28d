//! Door Sync at scale: a lobby held by 10,000 people. Revocation state stays within what a lock
//! holds whatever the number of people, devices and credentials, and no bundle is ever too
//! large to build: more floors than a lock holds become an issued floor.

mod common;
#[path = "support/scale.rs"]
mod scale;

use door_lock::{Lock, LockClock};
use door_protocol::access::{AccessDocument, DoorGrant, ACCESS_VERSION};
use door_protocol::sync::MAX_BUNDLE_SIZE;
use door_protocol::unlock::{DenyReason, UnlockResult};
use door_protocol::{
    inspect_bundle, open_bundle, FloorList, Id, IssuerKeys, LockConfig, Schedule, ZoneRules,
};
use door_server::sync::bundle_for;
use p256::ecdsa::SigningKey;
use scale::{Scale, NOW};
use tempfile::TempDir;

fn lock(s: &Scale) -> (Lock, TempDir) {
    let config = LockConfig::new(
        s.lock,
        s.door,
        s.lock_key.clone(),
        IssuerKeys::single(*s.issuer.verifying()),
    );
    let dir = TempDir::new().unwrap();
    let lock = Lock::open(dir.path(), config, LockClock::fixed(NOW)).unwrap();
    (lock, dir)
}

fn bundle(s: &Scale, since: u64) -> (Vec<u8>, u64, u64) {
    let b =
        s.db.write(|tx| bundle_for(tx, s.property, s.lock, since, NOW))
            .unwrap();
    let bytes = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        b.bundle.expect("a bundle"),
    )
    .unwrap();
    (bytes, b.iteration, b.base_iteration)
}

/// A document for a person of the property, issued at `issued_at`, presented at `lock`.
fn present(s: &Scale, lock: &Lock, issued_at: i64) -> UnlockResult {
    let device = SigningKey::random(&mut rand::rngs::OsRng);
    let mut device_key = [0u8; 33];
    device_key.copy_from_slice(device.verifying_key().to_encoded_point(true).as_bytes());
    let document = AccessDocument {
        version: ACCESS_VERSION,
        credential_id: Id([0x5c; 16]),
        person_id: Id([0x5e; 16]),
        device_key,
        grants: vec![DoorGrant {
            door_id: s.door,
            schedule: Schedule::always(),
            doorcode: false,
        }],
        not_before: issued_at - 300,
        not_after: issued_at + 7 * 86_400,
        issued_at,
        access_iteration: 1,
        may_share: false,
        zone: ZoneRules::fixed(0),
    }
    .sign(&s.issuer)
    .unwrap();
    common::present(lock, &device, &document)
}

#[test]
fn a_lobby_of_ten_thousand_people_with_a_thousand_floors_fits_one_bundle() {
    let s = Scale::new(10_000, 1_000, 1_000);
    let (bytes, iteration, base) = bundle(&s, 0);
    assert_eq!((iteration, base), (1, 0));
    assert!(bytes.len() <= MAX_BUNDLE_SIZE, "{} bytes", bytes.len());
    let info = inspect_bundle(&bytes, &IssuerKeys::single(*s.issuer.verifying())).unwrap();
    assert_eq!((info.floors, info.doorcodes), (1_000, true));
    let (lock, _dir) = lock(&s);
    lock.apply_bundle(&bytes).unwrap();
    assert_eq!(lock.doorcodes(), 1_000);

    // One more person narrowed: a delta of one floor.
    s.add_people(10_000, 1, 0, 1);
    let (delta, iteration, base) = bundle(&s, 1);
    assert_eq!((iteration, base), (2, 1));
    assert!(
        delta.len() < 400,
        "a one-floor delta is {} bytes",
        delta.len()
    );
    lock.apply_bundle(&delta).unwrap();
}

#[test]
fn more_floors_than_a_lock_holds_become_an_issued_floor() {
    let over = FloorList::CAPACITY + 100;
    let s = Scale::new(over + 500, 0, over);
    let (bytes, _, _) = bundle(&s, 0);
    let info = inspect_bundle(&bytes, &IssuerKeys::single(*s.issuer.verifying())).unwrap();
    // Every floor voided documents issued before now, which the issued floor voids anyway.
    assert_eq!(info.floors, 0);
    let (lock, _dir) = lock(&s);
    lock.apply_bundle(&bytes).unwrap();
    // Every document issued before the bundle is void there; one issued after it opens.
    assert_eq!(
        present(&s, &lock, NOW - 60),
        UnlockResult::Denied(DenyReason::Revoked)
    );
    assert_eq!(present(&s, &lock, NOW), UnlockResult::Granted);
    // The issued floor is recorded for the lock: one more narrowed person (issued before it
    // too) changes nothing, and every later full bundle carries it.
    s.add_people(over + 500, 1, 0, 1);
    let again =
        s.db.write(|tx| bundle_for(tx, s.property, s.lock, 1, NOW))
            .unwrap();
    assert!(again.up_to_date);
    let (full, _, _) = bundle(&s, 0);
    let opened = open_bundle(&full, lock.config()).unwrap();
    assert_eq!(opened.bundle().issued_floor, Some(NOW));
}
