//! The resident's client: cold start (open the store in the data directory and list 200
//! doors with their decisions now) and `doors()` on a warm client.
//!
//! cargo bench -p door-core --bench client

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use door_core::doors::CachedDoor;
use door_core::store::{DoorsMeta, Store};
use door_core::{ClientConfig, DoorClient};
use door_protocol::ZoneRules;

const NOW: i64 = 1_795_532_400;

fn populate(dir: &std::path::Path, n: usize) {
    let store = Store::open(dir).unwrap();
    // The zone rules the issuer signs into a week-long document.
    let zone = ZoneRules::from_iana("America/New_York", NOW - 300, NOW + 7 * 86_400).unwrap();
    let doors: Vec<CachedDoor> = (0..n)
        .map(|i| CachedDoor {
            id: format!("{i:032x}"),
            name: format!("Unit {i:03}"),
            online: false,
            keypad: true,
            lock_id: format!("{:032x}", i + 10_000),
            lock_public_key: vec![2; 33],
            doorcode: Some(format!("{:06}", i * 7919 % 1_000_000)),
            may_share: i % 3 == 0,
            credential_id: "11".repeat(16),
            // A realistic size for a one-door signed document.
            document: vec![0xd2; 260],
            document_not_before: NOW - 300,
            document_not_after: NOW + 7 * 86_400,
            windows: if i % 4 == 0 {
                vec![(0x1f, 360, 1320), (0x60, 480, 1200)]
            } else {
                vec![(0x7f, 0, 1440)]
            },
            schedule_not_before: None,
            schedule_not_after: None,
            more_schedules: Vec::new(),
            zone_initial_offset: zone.initial_offset,
            zone_transitions: zone.transitions.iter().map(|t| (t.at, t.offset)).collect(),
        })
        .collect();
    let meta = DoorsMeta {
        person_id: "p".into(),
        time_zone: "America/New_York".into(),
        issuer_public_key: String::new(),
        issued_at: NOW,
    };
    store.replace_doors(&meta, &doors).unwrap();
}

fn client(dir: &std::path::Path) -> Arc<DoorClient> {
    DoorClient::with_clock(
        ClientConfig {
            server_url: "https://door.example".into(),
            data_dir: dir.to_string_lossy().into(),
            request_timeout_ms: 0,
        },
        Some(door_core::ephemeral_device_signer()),
        None,
        None,
        Arc::new(|| NOW),
    )
    .unwrap()
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    populate(dir.path(), 200);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _guard = runtime.enter();
    c.bench_function("client/cold_start_200_doors", |b| {
        b.iter(|| {
            let client = client(dir.path());
            assert_eq!(client.doors().unwrap().len(), 200);
        })
    });
    let warm = client(dir.path());
    c.bench_function("client/doors_200", |b| {
        b.iter(|| warm.doors().unwrap().len())
    });
    c.bench_function("client/access_now", |b| {
        b.iter(|| warm.access_now(format!("{:032x}", 17)).unwrap())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
