//! What persisting one decision costs the reference lock, by how many audit records it holds:
//! a keypad entry with a live doorcode (one signed record, the keypad state, all persisted
//! before the answer counts). The lock starts from a state directory written in format 3 (the
//! last one-file format, which it migrates on opening), holding `n` records no server has
//! acknowledged.

use std::path::Path;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use door_lock::{Lock, LockClock};
use door_protocol::sync::KeypadRules;
use door_protocol::{
    AuditEpoch, AuditEvent, AuditRecord, Id, IssuerKeys, LockConfig, Schedule, ZoneRules,
};
use rand_core::OsRng;

const NOW: i64 = 1_781_524_800;
const CODE: &str = "482916";

/// A format-3 state file for `config`'s lock with `n` unacknowledged records and one doorcode.
fn write_state(dir: &Path, config: &LockConfig, n: u64) {
    let epoch = AuditEpoch([7; 8]);
    let audit: Vec<String> = (0..n)
        .map(|seq| {
            let record = AuditRecord {
                epoch,
                seq,
                at: NOW,
                event: AuditEvent::DoorcodeEntry {
                    person_id: Some(Id([3; 16])),
                    granted: true,
                },
            };
            hex::encode(record.sign(&config.key))
        })
        .collect();
    let rules = KeypadRules {
        zone: ZoneRules::fixed(0),
        schedules: vec![Schedule::always()],
    };
    let state = serde_json::json!({
        "format": 3,
        "lock_id": config.lock_id.to_string(),
        "revocation_iteration": 0,
        "revocations": [],
        "replay": [],
        "audit_epoch": epoch.to_string(),
        "next_seq": n,
        "audit": audit,
        "sync": {
            "iteration": 1,
            "doorcodes": [{
                "person_id": Id([3; 16]).to_string(),
                "code": CODE,
                "expires_at": null,
                "schedules": [0],
            }],
            "keypad": hex::encode(rules.to_cbor()),
        },
    });
    std::fs::write(dir.join("state.json"), serde_json::to_vec(&state).unwrap()).unwrap();
}

fn keypad_entry(c: &mut Criterion) {
    let mut group = c.benchmark_group("lock_persist_decision");
    for n in [10u64, 10_000] {
        let dir = tempfile::tempdir().unwrap();
        let config = LockConfig::generate(Id([1; 16]), IssuerKeys::new(), &mut OsRng);
        write_state(dir.path(), &config, n);
        // Room for every record, so that the log holds `n` and more while measured.
        let lock =
            Lock::open_with_audit_capacity(dir.path(), config, LockClock::fixed(NOW), 16_384)
                .unwrap();
        group.bench_with_input(BenchmarkId::new("keypad_entry", n), &lock, |b, lock| {
            b.iter(|| lock.enter_doorcode(CODE).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, keypad_entry);
criterion_main!(benches);
