//! The store against what it must give back: the same state after any sequence of decisions,
//! acknowledgements, bundles and compactions, and after a crash tore its last write.

use std::fs;

use door_protocol::sync::Keypad;
use door_protocol::{
    AuditAck, AuditEpoch, AuditEvent, AuditLog, AuditRecord, Id, LockKey, LockState, RevocationList,
};

use super::{Change, Store, JOURNAL, TEMP};
use crate::LockError;

const LOCK: Id = Id([0x10; 16]);
const EPOCH: AuditEpoch = AuditEpoch([0xe1; 8]);

fn key() -> LockKey {
    LockKey::from_bytes(&[0x77; 32]).unwrap()
}

fn store(dir: &std::path::Path, capacity: usize) -> Store {
    let mut store = Store::new(dir, capacity).unwrap();
    store.compact_min = 2048;
    store
}

fn reload(dir: &std::path::Path, capacity: usize) -> Result<LockState, LockError> {
    let (state, older) = store(dir, capacity)
        .load(LOCK, || unreachable!("a format-4 store has its epoch"))?
        .expect("a stored state");
    assert!(!older);
    Ok(state)
}

/// A decision: a record, a replay entry, a keypad failure.
fn decide(state: &mut LockState, i: i64) {
    let k = key();
    state.audit.record(
        &k,
        i,
        AuditEvent::DoorcodeEntry {
            person_id: None,
            granted: false,
        },
    );
    let mut fingerprint = [0u8; 16];
    fingerprint[..8].copy_from_slice(&i.to_be_bytes());
    state.replay.prune(i);
    state.replay.insert(fingerprint, i + 10);
    state.keypad = Keypad::restore((0..i % 5).map(|k| i - k).collect(), None);
}

fn fresh(capacity: usize) -> LockState {
    LockState {
        audit: AuditLog::new(EPOCH).with_capacity(capacity),
        ..LockState::default()
    }
}

#[test]
fn the_store_reopens_to_the_same_state_after_decisions_acknowledgements_and_compactions() {
    let dir = tempfile::tempdir().unwrap();
    let capacity = 6;
    let mut s = store(dir.path(), capacity);
    let mut state = fresh(capacity);
    s.create(LOCK, &state).unwrap();
    let (mut compactions, mut dropped) = (0, false);
    for i in 0..120 {
        decide(&mut state, i);
        let change = if i % 20 == 19 {
            // A bundle: its acknowledgement frees records, and state.json is rewritten.
            let below = state.audit.next_seq().saturating_sub(3);
            state.audit.acknowledge(AuditAck {
                epoch: EPOCH,
                below,
            });
            state.revocations = RevocationList::restore(i as u64, []).unwrap();
            Change::All
        } else {
            Change::Decision
        };
        let before = s.journal_len;
        s.save(LOCK, &state, change).unwrap();
        compactions += usize::from(s.journal_len < before);
        assert!(state.audit.len() <= capacity);
        dropped |= state.audit.records().any(|r| {
            matches!(
                AuditRecord::read_own(r).unwrap().event,
                AuditEvent::RecordsDropped { .. }
            )
        });
        assert_eq!(
            reload(dir.path(), capacity).unwrap(),
            state,
            "after step {i}"
        );
    }
    assert!(compactions > 0, "the journal was compacted");
    assert!(dropped, "the log filled between acknowledgements");
    // A wipe starts a new log, and the journal holds nothing of the old one.
    let mut wiped = LockState {
        audit: AuditLog::new(AuditEpoch([0x5a; 8])).with_capacity(capacity),
        ..LockState::default()
    };
    s.save(LOCK, &wiped, Change::All).unwrap();
    assert_eq!(reload(dir.path(), capacity).unwrap(), wiped);
    decide(&mut wiped, 1000);
    s.save(LOCK, &wiped, Change::Decision).unwrap();
    assert_eq!(reload(dir.path(), capacity).unwrap(), wiped);
    let journal = fs::read(dir.path().join(JOURNAL)).unwrap();
    assert!(!String::from_utf8_lossy(&journal).contains(&EPOCH.to_string()));
}

#[test]
fn a_torn_last_append_is_cut_off_and_no_answered_record_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = store(dir.path(), 64);
    let mut state = fresh(64);
    s.create(LOCK, &state).unwrap();
    for i in 0..5 {
        decide(&mut state, i);
        s.save(LOCK, &state, Change::Decision).unwrap();
    }
    // Every save above returned: its answer may have gone out, its records been pulled.
    let answered = state.clone();
    let answered_len = s.journal_len;
    decide(&mut state, 5);
    s.save(LOCK, &state, Change::Decision).unwrap();
    let path = dir.path().join(JOURNAL);
    let whole = fs::read(&path).unwrap();
    // A crash during the last append: it stopped anywhere in the frame, or wrote all of its
    // length but not all of its bytes (a byte is wrong).
    let torn = (answered_len as usize + 1..whole.len()).step_by(37);
    let cut_short = torn.map(|end| whole[..end].to_vec());
    let mut flipped = whole.clone();
    *flipped.last_mut().unwrap() ^= 0x20;
    for bytes in cut_short.chain([flipped]) {
        fs::write(&path, &bytes).unwrap();
        assert_eq!(reload(dir.path(), 64).unwrap(), answered);
        assert_eq!(
            fs::read(&path).unwrap().len() as u64,
            answered_len,
            "the tail is cut off"
        );
        // And the store goes on from there.
        let mut s = store(dir.path(), 64);
        let mut again = reload(dir.path(), 64).unwrap();
        s.load(LOCK, || unreachable!()).unwrap();
        decide(&mut again, 6);
        s.save(LOCK, &again, Change::Decision).unwrap();
        assert_eq!(reload(dir.path(), 64).unwrap(), again);
    }
    // A wrong byte with whole frames after it is no torn write: the journal is corrupt.
    let mut middle = whole.clone();
    middle[answered_len as usize - 3] ^= 0x20;
    fs::write(&path, &middle).unwrap();
    assert!(matches!(reload(dir.path(), 64), Err(LockError::Corrupt(_))));
}

#[test]
fn a_bundle_whose_state_file_never_landed_leaves_no_trace_in_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = store(dir.path(), 64);
    let mut state = fresh(64);
    s.create(LOCK, &state).unwrap();
    decide(&mut state, 0);
    s.save(LOCK, &state, Change::Decision).unwrap();
    let before = state.clone();
    // The bundle's frame lands; state.json cannot be replaced.
    fs::create_dir(dir.path().join(TEMP)).unwrap();
    let mut bundled = state.clone();
    bundled
        .audit
        .record(&key(), 1, AuditEvent::SyncApplied { iteration: 1 });
    bundled.revocations = RevocationList::restore(9, []).unwrap();
    assert!(matches!(
        s.save(LOCK, &bundled, Change::All),
        Err(LockError::Io(_))
    ));
    assert_eq!(
        reload(dir.path(), 64).unwrap(),
        before,
        "no sync-applied without the bundle"
    );
    // The next decision (from the state the disk holds) follows the last valid frame.
    fs::remove_dir(dir.path().join(TEMP)).unwrap();
    decide(&mut state, 1);
    s.save(LOCK, &state, Change::Decision).unwrap();
    assert_eq!(reload(dir.path(), 64).unwrap(), state);
}
