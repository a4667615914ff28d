//! Door Sync at the reference lock: bundles over BLE after an unlock, resumed across
//! disconnects and restarts, doorcodes at the keypad, audit pulls and acknowledgements, signed
//! time, and what a failed write leaves behind.

#[path = "../../../protocol/tests/common/mod.rs"]
mod common;

use common::*;
use door_lock::{Connection, Lock, LockClock, LockError};
use door_protocol::sync::state::KEYPAD_MAX_FAILURES;
use door_protocol::sync::{DoorcodeDenied, SyncEvent};
use door_protocol::wire::kind;
use door_protocol::{
    verify_audit, AuditAck, AuditEpoch, AuditEvent, AuditPuller, DenyReason, Doorcode,
    DoorcodeChanges, DoorcodeResult, Floor, Id, SignedTime, SyncBundle, SyncError, SyncOutcome,
    SyncTransfer, UnlockOutcome, UnlockPreparation, UnlockResult, UnlockTarget,
};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use rand_core::OsRng;
use std::path::Path;

const NOW: i64 = MONDAY_0800_NY;
const MTU: u16 = 185;

fn open(dir: &Path, clock: &LockClock) -> Lock {
    Lock::open(dir, lock_config(), clock.clone()).unwrap()
}

fn sign(bundle: &SyncBundle) -> Vec<u8> {
    bundle
        .seal_and_sign(&issuer(), lock_config().key.public(), &mut OsRng)
        .unwrap()
}

fn unlock_on(
    conn: &mut Connection,
    phone_time: i64,
    signed_time: Option<Vec<u8>>,
) -> UnlockOutcome {
    let config = lock_config();
    let target = UnlockTarget {
        lock_id: config.lock_id,
        lock_key: *config.key.public(),
        access_document: sample_access().sign(&issuer()).unwrap(),
    };
    let (mut prep, to_sign) = UnlockPreparation::new(target, phone_time, &mut OsRng).unwrap();
    if let Some(t) = signed_time {
        prep = prep.with_signed_time(t);
    }
    let device = SigningKey::from_bytes(&DEVICE_SCALAR.into()).unwrap();
    let signature: Signature = device.sign(&to_sign);
    let mut phone = prep.signed(&signature.to_bytes()).unwrap();
    let mut notified = Vec::new();
    for c in phone.request_fragments(MTU) {
        notified = conn.on_write(&c, MTU).unwrap();
    }
    let mut outcome = None;
    for n in &notified {
        outcome = phone.on_fragment(n).unwrap();
    }
    outcome.unwrap()
}

/// Sends the phone's messages over the connection until the transfer ends, or until
/// `cut_after` data messages went through (the connection then drops mid-block).
fn drive(
    conn: &mut Connection,
    phone: &mut SyncTransfer,
    cut_after: Option<usize>,
) -> Option<SyncOutcome> {
    let mut data = 0;
    loop {
        let messages = phone.next_messages();
        if messages.is_empty() {
            return None;
        }
        for m in messages {
            let chunks = m.fragments(MTU);
            let is_data = m.kind == kind::SYNC_DATA;
            let chunks = if is_data && cut_after == Some(data) {
                &chunks[..chunks.len() / 2]
            } else {
                &chunks[..]
            };
            for c in chunks {
                for f in conn.on_write(c, MTU).unwrap() {
                    if let Some(SyncEvent::Finished(o)) = phone.on_fragment(&f).unwrap() {
                        return Some(o);
                    }
                }
            }
            if is_data && cut_after == Some(data) {
                return None;
            }
            data += usize::from(is_data);
        }
    }
}

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn a_bundle_rides_after_an_unlock_and_the_next_unlock_is_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let clock = LockClock::fixed(NOW);
    let lock = open(dir.path(), &clock);
    let mut conn = lock.connect();
    let outcome = unlock_on(&mut conn, NOW, None);
    assert_eq!(outcome.result, UnlockResult::Granted);
    assert_eq!(outcome.sync_iteration, 0);
    let bundle = SyncBundle {
        floors: vec![Floor {
            person_id: PERSON,
            floor: 4,
            expires_at: NOT_AFTER,
        }],
        ..full_bundle(200, 1)
    };
    let mut phone = SyncTransfer::new(sign(&bundle), 1, 0).unwrap();
    assert_eq!(
        drive(&mut conn, &mut phone, None),
        Some(SyncOutcome::Applied { iteration: 1 })
    );
    let outcome = unlock_on(&mut conn, NOW, None);
    assert_eq!(outcome.result, UnlockResult::Denied(DenyReason::Revoked));
    assert_eq!(outcome.sync_iteration, 1);
    assert_eq!(files(dir.path()), ["audit.journal", "state.json"]);
    // All of it survives a restart.
    drop((conn, lock));
    let lock = open(dir.path(), &clock);
    assert_eq!((lock.sync_iteration(), lock.doorcodes()), (1, 200));
    assert_eq!(
        unlock_on(&mut lock.connect(), NOW, None).result,
        UnlockResult::Denied(DenyReason::Revoked)
    );
}

#[test]
fn a_transfer_resumes_after_a_disconnect_and_a_restart_at_every_block() {
    let dir = tempfile::tempdir().unwrap();
    let clock = LockClock::fixed(NOW);
    let bytes = sign(&full_bundle(80, 1));
    let block = 512;
    let blocks = bytes.len().div_ceil(block);
    assert!(blocks > 8, "{blocks} blocks");
    let mut phone = SyncTransfer::new(bytes, 1, 0).unwrap().with_flow(block, 3);
    // Each connection gets one block further before it drops, and the lock restarts between
    // connections: only what it persisted carries the transfer on. The phone proves its
    // credential on each (an unlock), without which nothing resumes.
    for cut in 1..blocks {
        let lock = open(dir.path(), &clock);
        assert_eq!(
            lock.transfer_progress().map_or(0, |(done, _)| done),
            (cut - 1) * block
        );
        phone.reconnect();
        let mut conn = lock.connect();
        unlock_on(&mut conn, NOW, None);
        assert_eq!(drive(&mut conn, &mut phone, Some(1)), None);
        assert_eq!(phone.progress().done as usize, cut * block);
        assert!(files(dir.path()).contains(&"transfer.bin".to_string()));
    }
    let lock = open(dir.path(), &clock);
    phone.reconnect();
    let mut conn = lock.connect();
    unlock_on(&mut conn, NOW, None);
    assert_eq!(
        drive(&mut conn, &mut phone, None),
        Some(SyncOutcome::Applied { iteration: 1 })
    );
    assert_eq!(lock.transfer_progress(), None);
    assert_eq!(files(dir.path()), ["audit.journal", "state.json"]);
    assert_eq!(lock.doorcodes(), 80);
}

#[test]
fn doorcodes_from_sync_open_the_keypad_and_every_try_is_audited() {
    let dir = tempfile::tempdir().unwrap();
    let clock = LockClock::fixed(NOW);
    let lock = open(dir.path(), &clock);
    let person = Id([0xa1; 16]);
    let bundle = SyncBundle {
        doorcodes: DoorcodeChanges {
            added: vec![Doorcode {
                person_id: person,
                code: "482105".into(),
                expires_at: Some(NOT_AFTER),
                schedules: vec![0],
            }],
            removed: Vec::new(),
        },
        ..full_bundle(0, 1)
    };
    assert_eq!(
        lock.enter_doorcode("482105").unwrap(),
        DoorcodeResult::Denied(DoorcodeDenied::Unknown)
    );
    lock.apply_bundle(&sign(&bundle)).unwrap();
    assert_eq!(
        lock.enter_doorcode("482105").unwrap(),
        DoorcodeResult::Granted { person_id: person }
    );
    // All but one of the wrong codes the keypad tolerates (the unknown code before the sync
    // was one, and the success since cleared nothing), then a restart: the last still locks.
    for _ in 2..KEYPAD_MAX_FAILURES {
        lock.enter_doorcode("000000").unwrap();
    }
    drop(lock);
    let lock = open(dir.path(), &clock);
    lock.enter_doorcode("111111").unwrap();
    assert!(matches!(
        lock.enter_doorcode("482105").unwrap(),
        DoorcodeResult::Denied(DoorcodeDenied::LockedOut { .. })
    ));
    let events: Vec<AuditEvent> = lock
        .audit_records()
        .iter()
        .map(|r| verify_audit(r, lock_config().key.public()).unwrap().event)
        .collect();
    assert_eq!(
        events[..3],
        [
            AuditEvent::DoorcodeEntry {
                person_id: None,
                granted: false
            },
            AuditEvent::SyncApplied { iteration: 1 },
            AuditEvent::DoorcodeEntry {
                person_id: Some(person),
                granted: true
            },
        ]
    );
    assert_eq!(events.len(), 2 + KEYPAD_MAX_FAILURES);
}

#[test]
fn audit_records_go_home_over_ble_and_leave_only_with_the_servers_ack() {
    let dir = tempfile::tempdir().unwrap();
    let clock = LockClock::fixed(NOW);
    let lock = open(dir.path(), &clock);
    for _ in 0..30 {
        unlock_on(&mut lock.connect(), NOW, None);
    }
    let mut conn = lock.connect();
    unlock_on(&mut conn, NOW, None);
    let mut puller = AuditPuller::new(*lock_config().key.public(), AuditEpoch::default(), 0);
    let mut carried = Vec::new();
    let mut batches = 0;
    loop {
        let mut batch = None;
        for c in puller.request_fragments(MTU) {
            for f in conn.on_write(&c, MTU).unwrap() {
                batch = puller.on_fragment(&f).unwrap();
            }
        }
        let batch = batch.unwrap();
        batches += 1;
        carried.extend(batch.records.into_iter().map(|r| r.bytes));
        if !batch.more {
            break;
        }
    }
    assert!(batches > 1);
    assert_eq!(carried, lock.audit_records());
    // 31 unlocks, and the health record the connection's first pull wrote.
    assert_eq!(lock.pending_audit(), 32);
    assert!(matches!(
        verify_audit(&carried[31], lock_config().key.public())
            .unwrap()
            .event,
        AuditEvent::Health(_)
    ));
    // The server acknowledges the first 20; a later bundle brings that home.
    let applied = lock
        .apply_bundle(&sign(&SyncBundle {
            audit_ack: Some(AuditAck {
                epoch: lock.audit_epoch(),
                below: 20,
            }),
            ..full_bundle(0, 1)
        }))
        .unwrap();
    assert_eq!(applied.freed, 20);
    drop((conn, lock));
    let lock = open(dir.path(), &clock);
    let seqs: Vec<u64> = lock
        .audit_records()
        .iter()
        .map(|r| verify_audit(r, lock_config().key.public()).unwrap().seq)
        .collect();
    assert_eq!(seqs, (20..33).collect::<Vec<_>>());

    // Wiped: the old log's acknowledgement, however high, frees nothing of the new one.
    let old = lock.audit_epoch();
    lock.wipe().unwrap();
    unlock_on(&mut lock.connect(), NOW, None);
    let applied = lock
        .apply_bundle(&sign(&SyncBundle {
            audit_ack: Some(AuditAck {
                epoch: old,
                below: 32,
            }),
            ..full_bundle(0, 1)
        }))
        .unwrap();
    assert_eq!(applied.freed, 0);
    assert_eq!(lock.pending_audit(), 2, "the unlock and the sync record");
}

#[test]
fn a_signed_time_corrects_a_drifted_lock_and_the_correction_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let clock = LockClock::fixed(NOW);
    clock.set_drift(-600);
    let lock = open(dir.path(), &clock);
    assert_eq!(
        unlock_on(&mut lock.connect(), NOW, None).result,
        UnlockResult::Denied(DenyReason::ClockUntrusted)
    );
    let time = SignedTime {
        time: NOW,
        lock_id: Some(LOCK_ID),
        // Bound to this installation: a new lock's first trusted time must be.
        epoch: Some(lock.audit_epoch()),
    }
    .sign(&issuer());
    let outcome = unlock_on(&mut lock.connect(), NOW, Some(time.clone()));
    assert_eq!(outcome.result, UnlockResult::Granted);
    assert_eq!(outcome.lock_time, NOW);
    assert_eq!(lock.now(), NOW);
    drop(lock);
    let lock = open(dir.path(), &clock);
    assert_eq!(
        (lock.clock_offset(), lock.last_signed_time()),
        (600, Some(NOW))
    );
    clock.advance(60);
    assert_eq!(lock.now(), NOW + 60);
    // The same signed time again is old news.
    let outcome = unlock_on(&mut lock.connect(), NOW + 60, Some(time));
    assert_eq!(outcome.result, UnlockResult::Granted);
    assert_eq!(lock.clock_offset(), 600);
}

#[test]
fn the_clock_high_water_mark_is_persisted_and_derived_for_older_files() {
    let dir = tempfile::tempdir().unwrap();
    let clock = LockClock::fixed(NOW);
    clock.set_drift(-600);
    let lock = open(dir.path(), &clock);
    assert_eq!(lock.clock_high_water(), None, "no trusted time yet");
    let time = SignedTime {
        time: NOW,
        lock_id: Some(LOCK_ID),
        // Bound to this installation: a new lock's first trusted time must be.
        epoch: Some(lock.audit_epoch()),
    }
    .sign(&issuer());
    unlock_on(&mut lock.connect(), NOW, Some(time));
    let mark = lock
        .clock_high_water()
        .expect("a mark from the first signed time");
    assert_eq!(mark.time, NOW);
    drop(lock);
    let lock = open(dir.path(), &clock);
    assert_eq!(lock.clock_high_water(), Some(mark));
    drop(lock);
    // A format 3 file (everything in state.json) written before the mark: clock = {offset,
    // last_signed_time, anchor}.
    let path = dir.path().join("state.json");
    let mut f: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert!(f.get("clock").is_none(), "the clock is in the journal now");
    f["format"] = 3.into();
    f["clock"] = serde_json::json!({
        "offset": 600,
        "last_signed_time": NOW - 60,
        "anchor": NOW - 30,
    });
    std::fs::write(&path, serde_json::to_vec(&f).unwrap()).unwrap();
    let lock = open(dir.path(), &clock);
    // Set where the clock read at the anchor, on the hardware clock of that instant: it reads
    // the clock as it is now, so the lock may step back no further than before.
    let mark = lock.clock_high_water().unwrap();
    assert_eq!((mark.time, mark.clock), (NOW - 30, NOW - 30 - 600));
    assert_eq!(mark.at(clock.now()), lock.now());
    drop(lock);
    // Without a signed time taken there is no trusted time, and no mark.
    f["clock"] = serde_json::json!({"offset": 0, "last_signed_time": null, "anchor": null});
    std::fs::write(&path, serde_json::to_vec(&f).unwrap()).unwrap();
    assert_eq!(open(dir.path(), &clock).clock_high_water(), None);
}

#[test]
fn a_failed_write_leaves_the_lock_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let clock = LockClock::fixed(NOW);
    let lock = open(dir.path(), &clock);
    lock.apply_bundle(&sign(&full_bundle(3, 1))).unwrap();
    // A directory where the temporary state file goes makes every state write fail.
    std::fs::create_dir(dir.path().join("state.json.tmp")).unwrap();
    let delta = SyncBundle {
        base_iteration: 1,
        floors: vec![Floor {
            person_id: PERSON,
            floor: 4,
            expires_at: NOT_AFTER,
        }],
        keypad: None,
        ..full_bundle(0, 2)
    };
    assert!(matches!(
        lock.apply_bundle(&sign(&delta)),
        Err(LockError::Io(_))
    ));
    assert_eq!(lock.sync_iteration(), 1);
    // Over BLE: an unlock while state.json cannot be written.
    let pending = lock.pending_audit();
    let mut conn = lock.connect();
    let config = lock_config();
    let target = UnlockTarget {
        lock_id: config.lock_id,
        lock_key: *config.key.public(),
        access_document: sample_access().sign(&issuer()).unwrap(),
    };
    let (prep, to_sign) = UnlockPreparation::new(target, NOW, &mut OsRng).unwrap();
    let device = SigningKey::from_bytes(&DEVICE_SCALAR.into()).unwrap();
    let signature: Signature = device.sign(&to_sign);
    let phone = prep.signed(&signature.to_bytes()).unwrap();
    let results: Vec<_> = phone
        .request_fragments(MTU)
        .iter()
        .map(|c| conn.on_write(c, MTU))
        .collect();
    // A decision does not rewrite state.json, so it goes through and is persisted.
    assert!(matches!(results.last(), Some(Ok(notified)) if !notified.is_empty()));
    assert_eq!(
        (lock.pending_audit(), lock.replay_entries()),
        (pending + 1, 1)
    );
    // Once the disk works again, so does the lock, and the delta applies.
    std::fs::remove_dir(dir.path().join("state.json.tmp")).unwrap();
    lock.apply_bundle(&sign(&delta)).unwrap();
    drop(lock);
    let lock = open(dir.path(), &clock);
    assert_eq!(lock.sync_iteration(), 2);
    assert_eq!(lock.replay_entries(), 1);
    assert!(matches!(
        lock.apply_bundle(&sign(&delta)),
        Err(LockError::Sync(SyncError::Stale { have: 2, got: 2 }))
    ));
}

#[test]
fn a_failed_transfer_write_withholds_the_ack() {
    let dir = tempfile::tempdir().unwrap();
    let clock = LockClock::fixed(NOW);
    let lock = open(dir.path(), &clock);
    std::fs::create_dir(dir.path().join("transfer.bin.tmp")).unwrap();
    let mut phone = SyncTransfer::new(sign(&full_bundle(40, 1)), 1, 0)
        .unwrap()
        .with_flow(512, 1);
    let mut conn = lock.connect();
    unlock_on(&mut conn, NOW, None);
    let mut failed = false;
    'send: for _ in 0..3 {
        for m in phone.next_messages() {
            for c in m.fragments(MTU) {
                match conn.on_write(&c, MTU) {
                    Ok(notified) => {
                        for f in notified {
                            phone.on_fragment(&f).unwrap();
                        }
                    }
                    Err(LockError::Io(_)) => {
                        failed = true;
                        break 'send;
                    }
                    Err(e) => panic!("{e}"),
                }
            }
        }
    }
    assert!(failed);
    assert_eq!(phone.progress().done, 0, "no ack left the lock");
    assert_eq!(lock.transfer_progress(), None, "memory follows the disk");
}

#[test]
fn foreign_and_stale_bundles_are_refused_directly_too() {
    let dir = tempfile::tempdir().unwrap();
    let lock = open(dir.path(), &LockClock::fixed(NOW));
    let foreign = SyncBundle {
        lock_id: Id([0x20; 16]),
        ..full_bundle(0, 1)
    };
    assert!(matches!(
        lock.apply_bundle(&sign(&foreign)),
        Err(LockError::Sync(SyncError::Foreign { .. }))
    ));
    lock.apply_bundle(&sign(&full_bundle(0, 3))).unwrap();
    assert!(matches!(
        lock.apply_bundle(&sign(&full_bundle(0, 2))),
        Err(LockError::Sync(SyncError::Stale { have: 3, got: 2 }))
    ));
    assert_eq!(lock.sync_iteration(), 3);
}

/// Pulls every record over `conn`, batch by batch.
fn pull_all(conn: &mut Connection) -> Vec<door_protocol::AuditRecord> {
    let mut puller = AuditPuller::new(*lock_config().key.public(), AuditEpoch::default(), 0);
    let mut out = Vec::new();
    loop {
        let mut batch = None;
        for c in puller.request_fragments(MTU) {
            for f in conn.on_write(&c, MTU).unwrap() {
                batch = puller.on_fragment(&f).unwrap();
            }
        }
        let batch = batch.unwrap();
        out.extend(batch.records.into_iter().map(|r| r.record));
        if !batch.more {
            return out;
        }
    }
}

fn health_of(records: &[door_protocol::AuditRecord]) -> Vec<door_protocol::LockHealth> {
    records
        .iter()
        .filter_map(|r| match r.event {
            AuditEvent::Health(h) => Some(h),
            _ => None,
        })
        .collect()
}

#[test]
fn the_battery_drains_per_operation_and_each_sync_reports_it_signed() {
    use door_lock::battery::{FULL_CHARGE, SYNC_DRAW, UNLOCK_DRAW};
    let dir = tempfile::tempdir().unwrap();
    let clock = LockClock::fixed(NOW);
    let lock = open(dir.path(), &clock);
    assert_eq!(lock.battery_percent(), 100);
    assert_eq!(lock.firmware(), door_lock::default_firmware());
    // Ten unlocks draw ten unlock draws; a denied one draws too (the radio ran).
    for _ in 0..9 {
        unlock_on(&mut lock.connect(), NOW, None);
    }
    assert_eq!(
        unlock_on(&mut lock.connect(), NOW - 3600, None).result,
        UnlockResult::Denied(DenyReason::ClockUntrusted)
    );
    let drawn = 10 * UNLOCK_DRAW;
    assert_eq!(
        u32::from(lock.battery_percent()),
        (FULL_CHARGE - drawn) * 100 / FULL_CHARGE
    );
    // A bundle applied draws the sync draw.
    lock.apply_bundle(&sign(&full_bundle(0, 1))).unwrap();
    let drawn = drawn + SYNC_DRAW;
    assert_eq!(
        u32::from(lock.battery_percent()),
        (FULL_CHARGE - drawn) * 100 / FULL_CHARGE
    );
    // A phone that syncs the lock carries home its health, as it is after the phone's unlock,
    // signed by the lock.
    lock.set_battery_percent(15);
    let mut conn = lock.connect();
    let bound = SignedTime {
        time: NOW - 5,
        lock_id: Some(LOCK_ID),
        epoch: Some(lock.audit_epoch()),
    }
    .sign(&issuer());
    unlock_on(&mut conn, NOW, Some(bound));
    let pulled = pull_all(&mut conn);
    let health = health_of(&pulled);
    assert_eq!(
        health,
        [door_protocol::LockHealth {
            battery_percent: 14,
            firmware: door_lock::default_firmware(),
            clock_offset: Some(5),
            iteration: 1,
        }]
    );
    assert_eq!(lock.clock_skew(), Some(5));
    // Its pulls on the same connection add none; the next connection reports again.
    assert_eq!(health_of(&pull_all(&mut conn)).len(), 1);
    lock.set_firmware(door_protocol::FirmwareVersion::new("door-lock 9.9").unwrap());
    let mut next = lock.connect();
    unlock_on(&mut next, NOW, None);
    let again = health_of(&pull_all(&mut next));
    assert_eq!(again.len(), 2);
    assert_eq!(again[1].firmware.as_str(), "door-lock 9.9");
    assert_eq!(
        again[1].battery_percent, 14,
        "1500 units less two unlocks: 1480"
    );
    // The skew survives a restart with the rest of the clock state, and the health records
    // with the rest of the log.
    drop((conn, next, lock));
    let lock = open(dir.path(), &clock);
    assert_eq!(lock.clock_skew(), Some(5));
    let kept: Vec<door_protocol::AuditRecord> = lock
        .audit_records()
        .iter()
        .map(|r| verify_audit(r, lock_config().key.public()).unwrap())
        .collect();
    assert_eq!(health_of(&kept), again);
}
