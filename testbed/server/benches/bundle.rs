//! Door Sync bundles as the server builds them for a lobby held by 10,000 people: a full bundle
//! with 1,000 doorcodes and 1,000 floors (near the protocol's caps of 1,024 each), a delta
//! carrying one new floor, and a lock with more floors than it holds (compacted into an issued
//! floor). Each round is one request's work without HTTP: the desired state read from the
//! database and compared with the latest snapshot, the bundle sealed and signed.
//!
//! cargo bench -p door-server --bench bundle

#[path = "../tests/support/scale.rs"]
mod scale;

use criterion::{criterion_group, criterion_main, Criterion};
use door_protocol::FloorList;
use door_server::sync::bundle_for;
use scale::{Scale, NOW};

const PEOPLE: usize = 10_000;
const ENTRIES: usize = 1_000;

fn bench(c: &mut Criterion) {
    let s = Scale::new(PEOPLE, ENTRIES, ENTRIES);
    let build = |s: &Scale, since: u64| {
        s.db.write(|tx| bundle_for(tx, s.property, s.lock, since, NOW))
            .unwrap()
    };
    let full = build(&s, 0);
    assert_eq!((full.iteration, full.base_iteration), (1, 0));
    println!(
        "full bundle, {PEOPLE} people, {ENTRIES} doorcodes and {ENTRIES} floors: {} bytes",
        full.size
    );
    // One more person narrowed: iteration 2, a delta of one floor from iteration 1.
    s.add_people(PEOPLE, 1, 0, 1);
    let delta = build(&s, 1);
    assert_eq!((delta.iteration, delta.base_iteration), (2, 1));
    println!("delta, one floor: {} bytes", delta.size);
    let over = FloorList::CAPACITY + 100;
    let compacted = Scale::new(PEOPLE, ENTRIES, over);
    let issued = build(&compacted, 0);
    println!(
        "full bundle, {PEOPLE} people, {over} floors (compacted into the issued floor): {} bytes",
        issued.size
    );

    let mut group = c.benchmark_group("sync_bundle");
    group.sample_size(20);
    group.bench_function("full_10000_people_1000_doorcodes_1000_floors", |b| {
        b.iter(|| build(&s, 0))
    });
    group.bench_function("delta_one_floor", |b| b.iter(|| build(&s, 1)));
    group.bench_function("full_10000_people_1124_floors_compacted", |b| {
        b.iter(|| build(&compacted, 0))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
