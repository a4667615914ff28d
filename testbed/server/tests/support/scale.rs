//! A property at scale, written straight into the database (no HTTP, no Argon2): one offline
//! keypad door held by `people` people through one key, `codes` of them with a doorcode there,
//! and `floors` of them narrowed since their document was issued (a floor above it). Shared by
//! tests/scale.rs (what must hold) and benches/bundle.rs (what it costs).

#![allow(dead_code)] // each includer uses its own part of this

use door_protocol::{Id, IssuerKey, LockKey};
use door_server::access::{id_param, new_id};
use door_server::Db;
use rusqlite::params;

pub const NOW: i64 = 1_795_532_400;
/// When every person's document was issued: before `NOW`.
pub const ISSUED: i64 = NOW - 3_600;
pub const DOCUMENT_END: i64 = ISSUED + 7 * 86_400;

pub struct Scale {
    pub db: Db,
    pub property: Id,
    pub door: Id,
    pub lock: Id,
    pub key: Id,
    pub issuer: IssuerKey,
    pub lock_key: LockKey,
}

impl Scale {
    pub fn new(people: usize, codes: usize, floors: usize) -> Scale {
        let db = Db::open(None).unwrap();
        let (property, door, lock, key) = (new_id(), new_id(), new_id(), new_id());
        let issuer = IssuerKey::generate(&mut rand::rngs::OsRng);
        let lock_key = LockKey::generate(&mut rand::rngs::OsRng);
        db.write(|tx| {
            tx.execute(
                "INSERT INTO properties (id, name, time_zone, issuer_secret, issuer_kid, manager_key_hash, created_at) \
                 VALUES (?1, 'scale', 'America/New_York', ?2, ?3, ?4, ?5)",
                params![id_param(&property), issuer.to_bytes().as_slice(), issuer.kid().0.as_slice(), id_param(&new_id()), NOW],
            )?;
            tx.execute(
                "INSERT INTO doors (id, property_id, name, online, lock_id, lock_public_key, keypad) VALUES (?1, ?2, 'Lobby', 0, ?3, ?4, 1)",
                params![id_param(&door), id_param(&property), id_param(&lock), lock_key.public().to_sec1_compressed().as_slice()],
            )?;
            tx.execute(
                "INSERT INTO keys (id, property_id, name, kind) VALUES (?1, ?2, 'Residences', 'manager')",
                params![id_param(&key), id_param(&property)],
            )?;
            tx.execute(
                "INSERT INTO key_doors (key_id, door_id, doorcodes, schedule) VALUES (?1, ?2, 1, 'null')",
                params![id_param(&key), id_param(&door)],
            )?;
            Ok(())
        })
        .unwrap();
        let scale = Scale {
            db,
            property,
            door,
            lock,
            key,
            issuer,
            lock_key,
        };
        scale.add_people(0, people, codes, floors);
        scale
    }

    /// People `from..from + n`: the first `codes` of them with a doorcode, the last `floors` of
    /// them with a floor above their document and their key taken back.
    pub fn add_people(&self, from: usize, n: usize, codes: usize, floors: usize) {
        self.db
            .write(|tx| {
                for i in 0..n {
                    let person = new_id();
                    let narrowed = i >= n - floors;
                    tx.execute(
                        "INSERT INTO people (id, property_id, name, role) VALUES (?1, ?2, ?3, 'resident')",
                        params![id_param(&person), id_param(&self.property), format!("Person {}", from + i)],
                    )?;
                    tx.execute(
                        "INSERT INTO assignments (id, key_id, person_id, may_share, created_at, revoked_at) \
                         VALUES (?1, ?2, ?3, 0, ?4, ?5)",
                        params![id_param(&new_id()), id_param(&self.key), id_param(&person), ISSUED, narrowed.then_some(NOW)],
                    )?;
                    if i < codes && !narrowed {
                        tx.execute(
                            "INSERT INTO doorcodes (person_id, door_id, code) VALUES (?1, ?2, ?3)",
                            params![id_param(&person), id_param(&self.door), format!("{:06}", from + i)],
                        )?;
                    }
                    let device = new_id();
                    tx.execute(
                        "INSERT INTO devices (id, person_id, public_key, created_at) VALUES (?1, ?2, ?3, ?4)",
                        // Never read on these paths; unique, as the column requires.
                        params![id_param(&device), id_param(&person), id_param(&device), ISSUED],
                    )?;
                    let credential = new_id();
                    tx.execute(
                        "INSERT INTO credentials (id, person_id, device_id, access_iteration, issued_at, not_after, superseded, grants) \
                         VALUES (?1, ?2, ?3, 1, ?4, ?5, ?6, '[]')",
                        params![id_param(&credential), id_param(&person), id_param(&device), ISSUED, DOCUMENT_END, narrowed],
                    )?;
                    // Only the document's existence matters to the bundle: the lock's door had one.
                    tx.execute(
                        "INSERT INTO credential_documents (credential_id, door_id, document) VALUES (?1, ?2, x'00')",
                        params![id_param(&credential), id_param(&self.door)],
                    )?;
                    if narrowed {
                        tx.execute(
                            "INSERT INTO person_floors (person_id, property_id, floor, expires_at, raised_at) \
                             VALUES (?1, ?2, 2, ?3, ?4)",
                            params![id_param(&person), id_param(&self.property), DOCUMENT_END, NOW],
                        )?;
                    }
                }
                Ok(())
            })
            .unwrap();
    }
}
