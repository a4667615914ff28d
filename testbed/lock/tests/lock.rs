//! The reference lock driven like a transport would: a phone (door-protocol's phone side with
//! a software device key) writes chunks into a connection and reads the notified chunks back.

#[path = "../../../protocol/tests/common/mod.rs"]
mod common;

use common::*;
use door_lock::{Lock, LockClock, LockError};
use door_protocol::{
    verify_audit, AuditEvent, AuditRecord, DenyReason, Id, LockConfig, LockKey, UnlockOutcome,
    UnlockPreparation, UnlockResult, UnlockTarget,
};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use rand_core::OsRng;
use std::path::Path;

const NOW: i64 = MONDAY_0800_NY;

fn config(door: Id) -> LockConfig {
    LockConfig::new(
        Id([0x10; 16]),
        door,
        LockKey::from_bytes(&[0x77; 32]).unwrap(),
        issuer_keys(),
    )
}

fn open(dir: &Path, door: Id, clock: &LockClock) -> Lock {
    Lock::open(dir, config(door), clock.clone()).unwrap()
}

/// The phone's request chunks, prepared at `phone_time`, and the means to read the answer.
fn prepare(lock: &Lock, phone_time: i64) -> door_protocol::PreparedUnlock {
    let target = UnlockTarget {
        lock_id: lock.config().lock_id,
        lock_key: *lock.config().key.public(),
        access_document: sample_access().sign(&issuer()).unwrap(),
    };
    let (prep, to_sign) = UnlockPreparation::new(target, phone_time, &mut OsRng).unwrap();
    let device = SigningKey::from_bytes(&DEVICE_SCALAR.into()).unwrap();
    let signature: Signature = device.sign(&to_sign);
    prep.signed(&signature.to_bytes()).unwrap()
}

fn exchange(
    lock: &Lock,
    phone: &mut door_protocol::PreparedUnlock,
    chunks: &[Vec<u8>],
    mtu: u16,
) -> UnlockOutcome {
    let mut conn = lock.connect();
    let mut notified = Vec::new();
    for c in chunks {
        notified = conn.on_write(c, mtu).unwrap();
    }
    let mut outcome = None;
    for n in &notified {
        outcome = phone.on_fragment(n).unwrap();
    }
    outcome.expect("a complete answer")
}

fn unlock(lock: &Lock, phone_time: i64, mtu: u16) -> UnlockOutcome {
    let mut phone = prepare(lock, phone_time);
    let chunks = phone.request_fragments(mtu);
    exchange(lock, &mut phone, &chunks, mtu)
}

fn records(lock: &Lock) -> Vec<AuditRecord> {
    lock.audit_records()
        .iter()
        .map(|r| verify_audit(r, lock.config().key.public()).unwrap())
        .collect()
}

#[test]
fn granted_with_a_signed_audit_record() {
    let dir = tempfile::tempdir().unwrap();
    let clock = LockClock::fixed(NOW);
    let lock = open(dir.path(), LOBBY, &clock);
    for mtu in [23, 247] {
        let outcome = unlock(&lock, NOW, mtu);
        assert_eq!(outcome.result, UnlockResult::Granted);
        assert_eq!(outcome.lock_time, NOW);
    }
    assert_eq!(lock.pending_audit(), 2);
    assert_eq!(
        records(&lock),
        [0, 1].map(|seq| AuditRecord {
            epoch: lock.audit_epoch(),
            seq,
            at: NOW,
            event: AuditEvent::UnlockGranted {
                credential_id: CREDENTIAL,
                door_id: LOBBY,
            },
        })
    );
}

#[test]
fn out_of_schedule_by_the_locks_own_clock() {
    let dir = tempfile::tempdir().unwrap();
    let clock = LockClock::fixed(NOW);
    let lock = open(dir.path(), POOL, &clock);
    assert_eq!(
        unlock(&lock, NOW, 185).result,
        UnlockResult::Denied(DenyReason::OutOfSchedule {
            next_allowed: Some(NOW + 3600)
        })
    );
    clock.advance(3600);
    assert_eq!(unlock(&lock, NOW + 3600, 185).result, UnlockResult::Granted);
}

#[test]
fn a_drifted_clock_is_untrusted_beyond_the_tolerance() {
    let dir = tempfile::tempdir().unwrap();
    let clock = LockClock::fixed(NOW);
    let lock = open(dir.path(), LOBBY, &clock);
    clock.set_drift(600);
    let outcome = unlock(&lock, NOW, 247);
    assert_eq!(
        outcome.result,
        UnlockResult::Denied(DenyReason::ClockUntrusted)
    );
    assert_eq!(outcome.lock_time, NOW + 600);
    clock.set_drift(-90);
    assert_eq!(unlock(&lock, NOW, 247).result, UnlockResult::Granted);
    assert_eq!(
        records(&lock)[0].event,
        AuditEvent::UnlockDenied {
            credential_id: None,
            reason: DenyReason::ClockUntrusted
        }
    );
}

#[test]
fn state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let clock = LockClock::fixed(NOW);
    let mut phone = prepare(&open(dir.path(), LOBBY, &clock), NOW);
    let chunks = phone.request_fragments(247);
    {
        let lock = open(dir.path(), LOBBY, &clock);
        assert_eq!(
            exchange(&lock, &mut phone, &chunks, 247).result,
            UnlockResult::Granted
        );
        lock.apply_revocation(&sample_revocation().sign(&issuer()).unwrap())
            .unwrap();
    }
    let lock = open(dir.path(), LOBBY, &clock);
    assert_eq!(lock.revocation_iteration(), 7);
    assert_eq!(lock.replay_entries(), 1);
    // The captured request, replayed after the restart.
    let mut replayer = prepare(&lock, NOW);
    let mut conn = lock.connect();
    let mut notified = Vec::new();
    for c in &chunks {
        notified = conn.on_write(c, 247).unwrap();
    }
    // The replayer cannot read the answer (it was sealed for the original phone's key)...
    assert!(notified
        .iter()
        .map(|n| replayer.on_fragment(n))
        .any(|r| r.is_err()));
    // ...but the audit log says what the lock decided.
    let outcome = unlock(&lock, NOW, 247);
    assert_eq!(outcome.result, UnlockResult::Denied(DenyReason::Revoked));
    // The answer reports the sync bundles' iteration (none yet), not the document's.
    assert_eq!(outcome.sync_iteration, 0);
    assert_eq!(outcome.pending_audit, 3);
    let log = records(&lock);
    assert_eq!(log.iter().map(|r| r.seq).collect::<Vec<_>>(), [0, 1, 2]);
    assert_eq!(
        log[1].event,
        AuditEvent::UnlockDenied {
            credential_id: None,
            reason: DenyReason::Replayed
        }
    );
    assert_eq!(
        log[2].event,
        AuditEvent::UnlockDenied {
            credential_id: Some(CREDENTIAL),
            reason: DenyReason::Revoked
        }
    );
    // A stale revocation document is refused and changes nothing.
    assert!(matches!(
        lock.apply_revocation(&sample_revocation().sign(&issuer()).unwrap()),
        Err(LockError::Revocation(_))
    ));
    assert_eq!(lock.revocation_iteration(), 7);
}

#[test]
fn the_audit_epoch_survives_a_restart_and_a_wipe_starts_a_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let clock = LockClock::fixed(NOW);
    let lock = open(dir.path(), LOBBY, &clock);
    let epoch = lock.audit_epoch();
    unlock(&lock, NOW, 247);
    unlock(&lock, NOW + 1, 247);
    drop(lock);
    let lock = open(dir.path(), LOBBY, &clock);
    assert_eq!(lock.audit_epoch(), epoch, "the epoch is persisted");
    assert_eq!(
        records(&lock)
            .iter()
            .map(|r| (r.epoch, r.seq))
            .collect::<Vec<_>>(),
        [(epoch, 0), (epoch, 1)]
    );
    lock.wipe().unwrap();
    let wiped = lock.audit_epoch();
    assert_ne!(wiped, epoch, "a wipe draws a new epoch");
    assert_eq!((lock.pending_audit(), lock.next_audit_seq()), (0, 0));
    assert_eq!(lock.replay_entries(), 0);
    unlock(&lock, NOW + 2, 247);
    drop(lock);
    let lock = open(dir.path(), LOBBY, &clock);
    assert_eq!(
        records(&lock)
            .iter()
            .map(|r| (r.epoch, r.seq))
            .collect::<Vec<_>>(),
        [(wiped, 0)],
        "the wipe was persisted, and the new log numbers from 0"
    );
    // A fresh directory (a replaced lock) starts yet another epoch.
    let other = tempfile::tempdir().unwrap();
    assert_ne!(open(other.path(), LOBBY, &clock).audit_epoch(), wiped);
}

#[test]
fn a_state_file_from_before_epochs_gets_one_if_it_holds_no_records() {
    let dir = tempfile::tempdir().unwrap();
    let clock = LockClock::fixed(NOW);
    let lock = open(dir.path(), LOBBY, &clock);
    drop(lock);
    let path = dir.path().join("state.json");
    let mut f: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    f["format"] = 2.into();
    f.as_object_mut().unwrap().remove("audit_epoch");
    std::fs::write(&path, serde_json::to_vec(&f).unwrap()).unwrap();
    let lock = open(dir.path(), LOBBY, &clock);
    let epoch = lock.audit_epoch();
    drop(lock);
    assert_eq!(open(dir.path(), LOBBY, &clock).audit_epoch(), epoch);
    // One with records (of audit version 1) cannot be read.
    f["audit"] = serde_json::json!(["d28443a10126a0f6"]);
    f["next_seq"] = 1.into();
    std::fs::write(&path, serde_json::to_vec(&f).unwrap()).unwrap();
    assert!(matches!(
        Lock::open(dir.path(), config(LOBBY), clock),
        Err(LockError::Corrupt(_))
    ));
}

#[test]
fn a_directory_keeps_to_its_lock() {
    let dir = tempfile::tempdir().unwrap();
    let clock = LockClock::fixed(NOW);
    open(dir.path(), LOBBY, &clock);
    let other = LockConfig {
        lock_id: Id([0x20; 16]),
        ..config(LOBBY)
    };
    assert!(matches!(
        Lock::open(dir.path(), other, clock.clone()),
        Err(LockError::OtherLock { stored }) if stored == Id([0x10; 16])
    ));
    std::fs::write(dir.path().join("state.json"), b"{not json").unwrap();
    assert!(matches!(
        Lock::open(dir.path(), config(LOBBY), clock),
        Err(LockError::Corrupt(_))
    ));
}

#[test]
fn writes_leave_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let clock = LockClock::fixed(NOW);
    let lock = open(dir.path(), LOBBY, &clock);
    unlock(&lock, NOW, 247);
    let mut names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["audit.journal", "state.json"]);
}

#[test]
fn garbage_gets_an_error_frame_and_no_record() {
    let dir = tempfile::tempdir().unwrap();
    let lock = open(dir.path(), LOBBY, &LockClock::fixed(NOW));
    let mut conn = lock.connect();
    let notified = conn.on_write(&[0x01, 0x02, 0x03], 23).unwrap();
    assert_eq!(notified, [vec![0x80, 0xff, 0x00, 0x01, 0x01]]);
    assert_eq!(lock.pending_audit(), 0);
}

#[test]
fn generated_locks_differ_and_system_clock_works() {
    let a = LockConfig::generate(LOBBY, issuer_keys(), &mut OsRng);
    let b = LockConfig::generate(LOBBY, issuer_keys(), &mut OsRng);
    assert_ne!(a.lock_id, b.lock_id);
    assert_ne!(a.key.public(), b.key.public());
    let dir = tempfile::tempdir().unwrap();
    let lock = Lock::open(dir.path(), a, LockClock::system()).unwrap();
    // The sample document is valid through 2026; judge by whatever the lock's clock says.
    let outcome = unlock(&lock, lock.now(), 247);
    assert!((outcome.lock_time - lock.now()).abs() <= 1);
}

#[test]
fn a_format_3_file_with_records_moves_them_to_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let clock = LockClock::fixed(NOW);
    let epoch = door_protocol::AuditEpoch([0x33; 8]);
    let records: Vec<Vec<u8>> = (0..3)
        .map(|seq| {
            AuditRecord {
                epoch,
                seq,
                at: NOW,
                event: AuditEvent::SyncApplied { iteration: 1 },
            }
            .sign(&config(LOBBY).key)
        })
        .collect();
    let old = serde_json::json!({
        "format": 3,
        "lock_id": Id([0x10; 16]).to_string(),
        "revocation_iteration": 0,
        "revocations": [],
        "replay": [],
        "audit_epoch": epoch.to_string(),
        "next_seq": 3,
        "audit": records.iter().map(hex::encode).collect::<Vec<_>>(),
        "sync": {"iteration": 0, "doorcodes": []},
        "keypad": {"failures": 2, "locked_until": null},
    });
    let path = dir.path().join("state.json");
    std::fs::write(&path, serde_json::to_vec(&old).unwrap()).unwrap();
    for _ in 0..2 {
        let lock = open(dir.path(), LOBBY, &clock);
        assert_eq!(
            (
                lock.audit_epoch(),
                lock.next_audit_seq(),
                lock.audit_records()
            ),
            (epoch, 3, records.clone())
        );
        let f: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!((f["format"].as_u64(), f.get("audit")), (Some(4), None));
    }
}
