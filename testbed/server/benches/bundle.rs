//! Door Sync bundles as the server builds them for one lock with 1,000 doorcodes and 1,000
//! revocations (near the protocol's caps of 1,024 each): a full bundle, and a delta carrying
//! one new revocation. Each round is one request's work without HTTP: the desired state read
//! from the database and compared with the latest snapshot, the bundle sealed and signed.
//!
//! cargo bench -p door-server --bench bundle

use criterion::{criterion_group, criterion_main, Criterion};
use door_protocol::{Id, IssuerKey, LockKey};
use door_server::access::{id_param, new_id};
use door_server::sync::bundle_for;
use door_server::Db;
use rusqlite::{params, Transaction};

const ENTRIES: usize = 1_000;
const NOW: i64 = 1_795_532_400;

/// A person with a revoked credential that had a document for `door`, and with `doorcode`, a
/// doorcode there.
fn revoked_person(
    tx: &Transaction<'_>,
    property: Id,
    door: Id,
    n: usize,
    doorcode: bool,
) -> rusqlite::Result<()> {
    let person = new_id();
    tx.execute(
        "INSERT INTO people (id, property_id, name, role) VALUES (?1, ?2, ?3, 'resident')",
        params![
            id_param(&person),
            id_param(&property),
            format!("Person {n}")
        ],
    )?;
    if doorcode {
        tx.execute(
            "INSERT INTO doorcodes (person_id, door_id, code) VALUES (?1, ?2, ?3)",
            params![id_param(&person), id_param(&door), format!("{n:06}")],
        )?;
    }
    let device = new_id();
    let device_key = LockKey::generate(&mut rand::rngs::OsRng);
    tx.execute(
        "INSERT INTO devices (id, person_id, public_key, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![
            id_param(&device),
            id_param(&person),
            device_key.public().to_sec1_compressed().as_slice(),
            NOW
        ],
    )?;
    let credential = new_id();
    tx.execute(
        "INSERT INTO credentials (id, person_id, device_id, access_iteration, issued_at, not_after, superseded) \
         VALUES (?1, ?2, ?3, 1, ?4, ?5, 1)",
        params![id_param(&credential), id_param(&person), id_param(&device), NOW, NOW + 7 * 86_400],
    )?;
    // Only the document's existence matters to the bundle: the lock's door had one.
    tx.execute(
        "INSERT INTO credential_documents (credential_id, door_id, document) VALUES (?1, ?2, x'00')",
        params![id_param(&credential), id_param(&door)],
    )?;
    tx.execute(
        "INSERT INTO revocations (property_id, credential_id, iteration, expires_at) VALUES (?1, ?2, 1, ?3)",
        params![id_param(&property), id_param(&credential), NOW + 7 * 86_400],
    )?;
    Ok(())
}

fn setup() -> (Db, Id, Id, Id) {
    let db = Db::open(None).unwrap();
    let property = new_id();
    let (door, lock) = (new_id(), new_id());
    let issuer = IssuerKey::generate(&mut rand::rngs::OsRng);
    let lock_key = LockKey::generate(&mut rand::rngs::OsRng);
    db.write(|tx| {
        tx.execute(
            "INSERT INTO properties (id, name, time_zone, issuer_secret, issuer_kid, manager_key_hash, created_at) \
             VALUES (?1, 'bench', 'America/New_York', ?2, ?3, ?4, ?5)",
            params![id_param(&property), issuer.to_bytes().as_slice(), issuer.kid().0.as_slice(), vec![0u8; 32], NOW],
        )?;
        tx.execute(
            "INSERT INTO doors (id, property_id, name, online, lock_id, lock_public_key, keypad) VALUES (?1, ?2, 'Lobby', 0, ?3, ?4, 1)",
            params![id_param(&door), id_param(&property), id_param(&lock), lock_key.public().to_sec1_compressed().as_slice()],
        )?;
        for n in 0..ENTRIES {
            revoked_person(tx, property, door, n, true)?;
        }
        Ok(())
    })
    .unwrap();
    (db, property, door, lock)
}

fn bench(c: &mut Criterion) {
    let (db, property, door, lock) = setup();
    let build = |since: u64| {
        db.write(|tx| bundle_for(tx, property, lock, since, NOW))
            .unwrap()
    };
    let full = build(0);
    assert_eq!((full.iteration, full.base_iteration), (1, 0));
    println!(
        "full bundle, {ENTRIES} doorcodes and {ENTRIES} revocations: {} bytes",
        full.size
    );
    // One more revoked credential: iteration 2, a delta of one revocation from iteration 1.
    db.write(|tx| Ok(revoked_person(tx, property, door, ENTRIES, false)?))
        .unwrap();
    let delta = build(1);
    assert_eq!((delta.iteration, delta.base_iteration), (2, 1));
    println!("delta, one revocation: {} bytes", delta.size);

    let mut group = c.benchmark_group("sync_bundle");
    group.sample_size(20);
    group.bench_function("full_1000_doorcodes_1000_revocations", |b| {
        b.iter(|| build(0))
    });
    group.bench_function("delta_one_revocation", |b| b.iter(|| build(1)));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
