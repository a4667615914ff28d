//! Access documents issued per second for a 1,000-person property: every person holds a key
//! of five doors and one registered device; each round re-issues everyone's documents (one
//! signed document per door), as after a key edit that touches the whole property.
//!
//! cargo bench -p door-server --bench issue

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use door_server::access::{documents_for, id_param, new_id};
use door_server::Db;
use p256::ecdsa::SigningKey;
use rusqlite::params;

const PEOPLE: usize = 1_000;
const DOORS_PER_KEY: usize = 5;
const NOW: i64 = 1_795_532_400;

fn setup() -> (
    Db,
    door_protocol::Id,
    Vec<(door_protocol::Id, door_protocol::Id)>,
) {
    let db = Db::open(None).unwrap();
    let property = new_id();
    let issuer = door_protocol::IssuerKey::generate(&mut rand::rngs::OsRng);
    let people = db
        .write(|tx| {
            tx.execute(
                "INSERT INTO properties (id, name, time_zone, issuer_secret, issuer_kid, manager_key_hash, created_at) \
                 VALUES (?1, 'bench', 'America/New_York', ?2, ?3, ?4, ?5)",
                params![id_param(&property), issuer.to_bytes().as_slice(), issuer.kid().0.as_slice(), vec![0u8; 32], NOW],
            )?;
            let mut doors = Vec::new();
            for i in 0..50 {
                let door = new_id();
                let lock = SigningKey::random(&mut rand::rngs::OsRng);
                tx.execute(
                    "INSERT INTO doors (id, property_id, name, online, lock_id, lock_public_key, keypad) VALUES (?1, ?2, ?3, 0, ?4, ?5, 1)",
                    params![id_param(&door), id_param(&property), format!("Door {i}"), id_param(&new_id()), lock.verifying_key().to_encoded_point(true).as_bytes()],
                )?;
                doors.push(door);
            }
            let mut people = Vec::new();
            for p in 0..PEOPLE {
                let key = new_id();
                tx.execute("INSERT INTO keys (id, property_id, name, kind) VALUES (?1, ?2, 'k', 'manager')", params![id_param(&key), id_param(&property)])?;
                for d in 0..DOORS_PER_KEY {
                    let schedule = if d % 2 == 0 { "null" } else { r#"{"windows":[{"days":["mon","tue","wed","thu","fri"],"start":"06:00","end":"22:00"}]}"# };
                    tx.execute(
                        "INSERT INTO key_doors (key_id, door_id, doorcodes, schedule) VALUES (?1, ?2, 1, ?3)",
                        params![id_param(&key), id_param(&doors[(p + d * 7) % doors.len()]), schedule],
                    )?;
                }
                let person = new_id();
                tx.execute(
                    "INSERT INTO people (id, property_id, name, role) VALUES (?1, ?2, ?3, 'resident')",
                    params![id_param(&person), id_param(&property), format!("Person {p}")],
                )?;
                tx.execute(
                    "INSERT INTO assignments (id, key_id, person_id, may_share, created_at) VALUES (?1, ?2, ?3, 1, ?4)",
                    params![id_param(&new_id()), id_param(&key), id_param(&person), NOW],
                )?;
                let device = new_id();
                let device_key = SigningKey::random(&mut rand::rngs::OsRng);
                tx.execute(
                    "INSERT INTO devices (id, person_id, public_key, created_at) VALUES (?1, ?2, ?3, ?4)",
                    params![id_param(&device), id_param(&person), device_key.verifying_key().to_encoded_point(true).as_bytes(), NOW],
                )?;
                people.push((person, device));
            }
            Ok(people)
        })
        .unwrap();
    (db, property, people)
}

fn bench(c: &mut Criterion) {
    let (db, property, people) = setup();
    let mut group = c.benchmark_group("server");
    group.sample_size(10);
    group.throughput(Throughput::Elements((PEOPLE * DOORS_PER_KEY) as u64));
    group.bench_function("issue_documents_1000_people_x5_doors", |b| {
        b.iter(|| {
            db.write(|tx| {
                tx.execute("UPDATE credentials SET superseded = 1", [])?;
                for (person, device) in &people {
                    let (_, docs) =
                        documents_for(tx, *person, property, *device, NOW, None)?.expect("doors");
                    assert_eq!(docs.len(), DOORS_PER_KEY);
                }
                Ok(())
            })
            .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
