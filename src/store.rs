//! The offline cache in the app's data directory: an embedded SQLite database (rusqlite,
//! bundled SQLite). Everything unlocking needs lives here, so unlock and the Out of Schedule
//! check work in airplane mode. Every change is one transaction: a refresh that fails half
//! way leaves the previous cache exactly as it was.

use std::path::Path;
use std::sync::Mutex;

use door_protocol::access::decode_access;
use rusqlite::{params, Connection, OptionalExtension, Transaction};

use crate::api::wire::Tokens;
use crate::doors::{self, CachedDoor};

/// One step of the schema; `PRAGMA user_version` counts the steps done.
enum Migration {
    Sql(&'static str),
    /// A step SQL cannot express, in the same transaction.
    Rust(fn(&Transaction<'_>) -> Result<(), StoreError>),
}

const MIGRATIONS: &[Migration] = &[
    Migration::Sql(
        r#"
CREATE TABLE meta (
    key     TEXT PRIMARY KEY,
    value   TEXT NOT NULL
);
CREATE TABLE doors (
    id          TEXT PRIMARY KEY,
    position    INTEGER NOT NULL,
    json        TEXT NOT NULL,
    document    BLOB NOT NULL
);
"#,
    ),
    Migration::Sql(
        r#"
-- What the phone knows of each lock it may talk to, and the newest bundle it carries for it.
CREATE TABLE locks (
    lock_id         TEXT PRIMARY KEY,
    -- The lock's sync iteration when this phone last talked to it (from its sealed answer).
    seen_iteration  INTEGER,
    needs_full      INTEGER NOT NULL DEFAULT 0,
    bundle_iteration INTEGER,
    bundle_base     INTEGER,
    bundle          BLOB
);
-- Audit records pulled from locks, kept until the server has them.
CREATE TABLE outbox (
    lock_id     TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    record      BLOB NOT NULL,
    PRIMARY KEY (lock_id, seq)
);
CREATE TABLE activity (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    door_id     TEXT NOT NULL,
    door_name   TEXT NOT NULL,
    at          INTEGER NOT NULL,
    outcome     TEXT NOT NULL
);
"#,
    ),
    Migration::Rust(copy_signed_zone_rules),
    Migration::Sql(
        r#"
-- Step 4: audit records are named by (lock, epoch, seq): a wiped lock numbers from 0 again under
-- a new epoch. `refused` is NULL while a record waits for the server, else the reason the
-- server refused it (signature, conflict, malformed): such a record is never sent again and
-- never dropped, so support can see it. Records pulled before epochs (audit version 1) move
-- over with the epoch '' and are refused by the server as malformed on their next upload.
CREATE TABLE audit_outbox (
    lock_id     TEXT NOT NULL,
    epoch       TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    record      BLOB NOT NULL,
    refused     TEXT,
    detail      TEXT,
    PRIMARY KEY (lock_id, epoch, seq)
);
INSERT INTO audit_outbox (lock_id, epoch, seq, record) SELECT lock_id, '', seq, record FROM outbox;
DROP TABLE outbox;
"#,
    ),
];

/// Step 3: doors decide "open now" from the zone rules signed into their access documents,
/// as the lock does. Doors cached before kept those rules only inside the document, so they
/// are read from it here (checked again against the issuer key, like any cached document).
fn copy_signed_zone_rules(tx: &Transaction<'_>) -> Result<(), StoreError> {
    let meta: Option<String> = tx
        .query_row("SELECT value FROM meta WHERE key = 'doors'", [], |r| {
            r.get(0)
        })
        .optional()?;
    let Some(meta) = meta else {
        return Ok(()); // nothing cached yet
    };
    let meta: DoorsMeta = serde_json::from_str(&meta)?;
    let keys = doors::issuer_keys(&meta.issuer_public_key)
        .map_err(|e| StoreError(format!("cached doors: {e}")))?;
    let rows = {
        let mut stmt = tx.prepare("SELECT id, json, document FROM doors")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        rows.collect::<Result<Vec<(String, String, Vec<u8>)>, _>>()?
    };
    for (id, json, document) in rows {
        let verified = decode_access(&document, &keys)
            .map_err(|e| StoreError(format!("cached door {id}: access document: {e}")))?;
        let zone = &verified.document().zone;
        let mut door: serde_json::Value = serde_json::from_str(&json)?;
        door["zone_initial_offset"] = zone.initial_offset.into();
        door["zone_transitions"] = zone
            .transitions
            .iter()
            .map(|t| serde_json::json!([t.at, t.offset]))
            .collect();
        tx.execute(
            "UPDATE doors SET json = ?1 WHERE id = ?2",
            params![door.to_string(), id],
        )?;
    }
    Ok(())
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("local store: {0}")]
pub struct StoreError(String);

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        StoreError(e.to_string())
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> StoreError {
        // Where and what kind, not serde's message: it may quote the value, and stored JSON
        // holds the tokens and access documents.
        StoreError(format!(
            "stored JSON: {:?} error at line {} column {}",
            e.classify(),
            e.line(),
            e.column()
        ))
    }
}

/// One audit record the phone carries for a lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRecord {
    /// The lock's audit epoch, 16 hex digits ('' for a record pulled before epochs).
    pub epoch: String,
    pub seq: u64,
    pub bytes: Vec<u8>,
}

/// Audit records of one lock waiting for the server, by epoch and sequence.
pub type AuditRecords = Vec<OutboxRecord>;

/// What the server said of one uploaded record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadOutcome {
    /// Stored, or already held: the record leaves the phone.
    Held,
    /// Refused: kept aside with the reason and the server's words, never sent again.
    Refused { reason: String, detail: String },
    /// No usable answer for it: it stays and goes again next time.
    Unknown,
}

/// A record the server refused, kept for support.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedRecord {
    pub lock_id: String,
    pub epoch: String,
    pub seq: u64,
    /// signature, conflict or malformed.
    pub reason: String,
    pub detail: String,
    pub bytes: Vec<u8>,
}

/// The newest bundle the phone carries for a lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarriedBundle {
    pub iteration: u64,
    pub base: u64,
    pub bytes: Vec<u8>,
}

pub struct Store {
    conn: Mutex<Connection>,
}

/// What the cache holds about the person's doors, besides the doors themselves.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DoorsMeta {
    pub person_id: String,
    pub time_zone: String,
    pub issuer_public_key: String,
    pub issued_at: i64,
}

impl Store {
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError(format!("{}: {e}", dir.display())))?;
        let mut conn = Connection::open(dir.join("door-core.sqlite3"))?;
        // WAL + FULL: a commit is on disk when it returns, so what was acknowledged survives
        // the app being killed right after.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        let done: usize = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        for (i, step) in MIGRATIONS.iter().enumerate().skip(done) {
            let tx = conn.transaction()?;
            match step {
                Migration::Sql(sql) => tx.execute_batch(sql)?,
                Migration::Rust(step) => step(&tx)?,
            }
            tx.pragma_update(None, "user_version", i + 1)?;
            tx.commit()?;
        }
        Ok(Store {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn()
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }

    pub fn set_meta(&self, key: &str, value: Option<&str>) -> Result<(), StoreError> {
        let conn = self.conn();
        match value {
            Some(v) => conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
                params![key, v],
            )?,
            None => conn.execute("DELETE FROM meta WHERE key = ?1", [key])?,
        };
        Ok(())
    }

    pub fn tokens(&self) -> Result<Option<Tokens>, StoreError> {
        Ok(self
            .meta("tokens")?
            .map(|s| serde_json::from_str(&s))
            .transpose()?)
    }

    pub fn set_tokens(&self, tokens: Option<&Tokens>) -> Result<(), StoreError> {
        let json = tokens.map(serde_json::to_string).transpose()?;
        self.set_meta("tokens", json.as_deref())
    }

    /// Replaces the cached doors with a fresh, verified answer from the server, atomically.
    pub fn replace_doors(&self, meta: &DoorsMeta, doors: &[CachedDoor]) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM doors", [])?;
        for (i, d) in doors.iter().enumerate() {
            tx.execute(
                "INSERT INTO doors (id, position, json, document) VALUES (?1, ?2, ?3, ?4)",
                params![d.id, i as i64, serde_json::to_string(d)?, d.document],
            )?;
        }
        tx.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('doors', ?1)",
            [serde_json::to_string(meta)?],
        )?;
        tx.commit()?;
        Ok(())
    }

    pub fn doors(&self) -> Result<Vec<CachedDoor>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached("SELECT json, document FROM doors ORDER BY position")?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (json, document) = row?;
            let mut door: CachedDoor = serde_json::from_str(&json)?;
            door.document = document;
            out.push(door);
        }
        Ok(out)
    }

    pub fn door(&self, id: &str) -> Result<Option<CachedDoor>, StoreError> {
        let conn = self.conn();
        let row: Option<(String, Vec<u8>)> = conn
            .query_row(
                "SELECT json, document FROM doors WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        row.map(|(json, document)| {
            let mut door: CachedDoor = serde_json::from_str(&json)?;
            door.document = document;
            Ok(door)
        })
        .transpose()
    }

    /// The bundle this phone carries for a lock.
    pub fn bundle(&self, lock_id: &str) -> Result<Option<CarriedBundle>, StoreError> {
        let row = self
            .conn()
            .query_row(
                "SELECT bundle_iteration, bundle_base, bundle FROM locks WHERE lock_id = ?1 AND bundle IS NOT NULL",
                [lock_id],
                |r| {
                    Ok(CarriedBundle {
                        iteration: r.get::<_, i64>(0)? as u64,
                        base: r.get::<_, i64>(1)? as u64,
                        bytes: r.get(2)?,
                    })
                },
            )
            .optional()?;
        Ok(row)
    }

    pub fn set_bundle(
        &self,
        lock_id: &str,
        iteration: u64,
        base: u64,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO locks (lock_id, bundle_iteration, bundle_base, bundle) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (lock_id) DO UPDATE SET bundle_iteration = ?2, bundle_base = ?3, bundle = ?4",
            params![lock_id, iteration as i64, base as i64, bytes],
        )?;
        Ok(())
    }

    /// (the lock's iteration when last seen, whether it needs a full bundle)
    pub fn lock_seen(&self, lock_id: &str) -> Result<(Option<u64>, bool), StoreError> {
        let row: Option<(Option<i64>, bool)> = self
            .conn()
            .query_row(
                "SELECT seen_iteration, needs_full FROM locks WHERE lock_id = ?1",
                [lock_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        Ok(row
            .map(|(i, f)| (i.map(|i| i as u64), f))
            .unwrap_or((None, false)))
    }

    pub fn set_lock_seen(
        &self,
        lock_id: &str,
        iteration: u64,
        needs_full: bool,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO locks (lock_id, seen_iteration, needs_full) VALUES (?1, ?2, ?3) \
             ON CONFLICT (lock_id) DO UPDATE SET seen_iteration = ?2, needs_full = ?3",
            params![lock_id, iteration as i64, needs_full],
        )?;
        Ok(())
    }

    /// Locks for which the phone carries something: a bundle newer than what the lock had
    /// when last seen (or a full one it needs), or audit records not yet uploaded. One pass
    /// over two small tables, so listing many doors stays cheap.
    pub fn locks_with_pending_sync(&self) -> Result<std::collections::HashSet<String>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT lock_id FROM locks WHERE bundle_iteration IS NOT NULL \
               AND (needs_full OR seen_iteration IS NULL OR seen_iteration < bundle_iteration) \
             UNION SELECT DISTINCT lock_id FROM audit_outbox WHERE refused IS NULL",
        )?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Stores pulled audit records of the lock's epoch `epoch` (16 hex digits) in one
    /// transaction, with where the next pull starts (`next_seq` of `epoch`); a record already
    /// held is kept as is (waiting or refused).
    pub fn add_outbox(
        &self,
        lock_id: &str,
        epoch: &str,
        next_seq: u64,
        records: &[(u64, Vec<u8>)],
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        for (seq, bytes) in records {
            tx.execute(
                "INSERT OR IGNORE INTO audit_outbox (lock_id, epoch, seq, record) \
                 VALUES (?1, ?2, ?3, ?4)",
                params![lock_id, epoch, *seq as i64, bytes],
            )?;
        }
        tx.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
            params![
                format!("audit.pull.{lock_id}"),
                format!("{epoch}:{next_seq}")
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Where the next pull from a lock starts: the lock's audit epoch as last seen (hex; ''
    /// before any) and one past the last record pulled of it. A lock of another epoch (wiped
    /// since) answers from its oldest record.
    pub fn audit_pull_position(&self, lock_id: &str) -> Result<(String, u64), StoreError> {
        let at = self.meta(&format!("audit.pull.{lock_id}"))?;
        Ok(at
            .as_deref()
            .and_then(|s| s.split_once(':'))
            .and_then(|(e, n)| Some((e.to_owned(), n.parse().ok()?)))
            .unwrap_or_default())
    }

    /// Records waiting for the server (refused ones are set aside), per lock, oldest epoch
    /// first as they arrived, then by sequence.
    pub fn outbox(&self) -> Result<Vec<(String, AuditRecords)>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT lock_id, epoch, seq, record FROM audit_outbox WHERE refused IS NULL \
             ORDER BY lock_id, rowid",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                OutboxRecord {
                    epoch: r.get(1)?,
                    seq: r.get::<_, i64>(2)? as u64,
                    bytes: r.get(3)?,
                },
            ))
        })?;
        let mut out: Vec<(String, AuditRecords)> = Vec::new();
        for row in rows {
            let (lock, record) = row?;
            match out.last_mut() {
                Some((l, v)) if *l == lock => v.push(record),
                _ => out.push((lock, vec![record])),
            }
        }
        Ok(out)
    }

    /// What the server said of uploaded records, in one transaction: held ones leave the
    /// phone, refused ones are set aside with the reason, the others stay as they were.
    pub fn uploaded(
        &self,
        lock_id: &str,
        outcomes: &[(&OutboxRecord, UploadOutcome)],
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        for (r, outcome) in outcomes {
            match outcome {
                UploadOutcome::Held => tx.execute(
                    "DELETE FROM audit_outbox WHERE lock_id = ?1 AND epoch = ?2 AND seq = ?3",
                    params![lock_id, r.epoch, r.seq as i64],
                )?,
                UploadOutcome::Refused { reason, detail } => tx.execute(
                    "UPDATE audit_outbox SET refused = ?4, detail = ?5 \
                     WHERE lock_id = ?1 AND epoch = ?2 AND seq = ?3",
                    params![lock_id, r.epoch, r.seq as i64, reason, detail],
                )?,
                UploadOutcome::Unknown => 0,
            };
        }
        tx.commit()?;
        Ok(())
    }

    /// Records waiting for the server (refused ones not counted: they wait for no one).
    pub fn outbox_len(&self) -> Result<u64, StoreError> {
        Ok(self.conn().query_row(
            "SELECT COUNT(*) FROM audit_outbox WHERE refused IS NULL",
            [],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }

    /// Records the server refused, kept on the phone for support.
    pub fn refused_audit_records(&self) -> Result<Vec<RefusedRecord>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT lock_id, epoch, seq, refused, COALESCE(detail, ''), record FROM audit_outbox \
             WHERE refused IS NOT NULL ORDER BY lock_id, rowid",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(RefusedRecord {
                lock_id: r.get(0)?,
                epoch: r.get(1)?,
                seq: r.get::<_, i64>(2)? as u64,
                reason: r.get(3)?,
                detail: r.get(4)?,
                bytes: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn add_activity(
        &self,
        door_id: &str,
        door_name: &str,
        at: i64,
        outcome: &str,
    ) -> Result<(), StoreError> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO activity (door_id, door_name, at, outcome) VALUES (?1, ?2, ?3, ?4)",
            params![door_id, door_name, at, outcome],
        )?;
        // The phone keeps recent activity only.
        conn.execute(
            "DELETE FROM activity WHERE id <= (SELECT MAX(id) FROM activity) - 200",
            [],
        )?;
        Ok(())
    }

    /// Newest first.
    pub fn activity(&self, limit: u32) -> Result<Vec<(String, String, i64, String)>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT door_id, door_name, at, outcome FROM activity ORDER BY id DESC LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Forgets the person: sign-out. The database file stays, empty.
    pub fn clear(&self) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM doors", [])?;
        tx.execute("DELETE FROM meta", [])?;
        tx.execute("DELETE FROM locks", [])?;
        tx.execute("DELETE FROM activity", [])?;
        // The outbox stays: those records belong to the property, not to the person, and the
        // next session (or the next sign-in) uploads them.
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::fixtures;

    fn doors_meta(store: &Store) -> Option<DoorsMeta> {
        let json = store.meta("doors").unwrap()?;
        Some(serde_json::from_str(&json).unwrap())
    }

    fn door(id: &str) -> CachedDoor {
        CachedDoor {
            id: id.into(),
            name: format!("Door {id}"),
            online: false,
            keypad: true,
            lock_id: "00".repeat(16),
            lock_public_key: vec![2; 33],
            doorcode: Some("123456".into()),
            may_share: true,
            credential_id: "11".repeat(16),
            document: vec![0xd2, 1, 2, 3],
            document_not_before: 0,
            document_not_after: 10,
            windows: vec![(0x1f, 360, 1320)],
            schedule_not_before: None,
            schedule_not_after: Some(9),
            more_schedules: Vec::new(),
            zone_initial_offset: -5 * 3600,
            zone_transitions: vec![(5, -4 * 3600)],
        }
    }

    fn meta() -> DoorsMeta {
        DoorsMeta {
            person_id: "p".into(),
            time_zone: "America/New_York".into(),
            issuer_public_key: "K".into(),
            issued_at: 7,
        }
    }

    #[test]
    fn doors_survive_a_reopen_in_order_with_their_documents() {
        let dir = tempfile::tempdir().unwrap();
        let doors = [door("b"), door("a"), door("c")];
        Store::open(dir.path())
            .unwrap()
            .replace_doors(&meta(), &doors)
            .unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.doors().unwrap(), doors);
        assert_eq!(store.door("a").unwrap().as_ref(), Some(&doors[1]));
        assert_eq!(store.door("z").unwrap(), None);
        assert_eq!(doors_meta(&store), Some(meta()));
    }

    #[test]
    fn replace_is_all_or_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.replace_doors(&meta(), &[door("a")]).unwrap();
        // A duplicate id violates the primary key half way through: nothing changes.
        let mut other = meta();
        other.issued_at = 8;
        assert!(store
            .replace_doors(&other, &[door("x"), door("y"), door("y")])
            .is_err());
        assert_eq!(store.doors().unwrap(), [door("a")]);
        assert_eq!(doors_meta(&store), Some(meta()));
    }

    #[test]
    fn tokens_and_clear() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let t = Tokens {
            access_token: "a".into(),
            refresh_token: "r".into(),
            expires_at: 1,
            person_id: "p".into(),
        };
        store.set_tokens(Some(&t)).unwrap();
        store.replace_doors(&meta(), &[door("a")]).unwrap();
        assert_eq!(store.tokens().unwrap(), Some(t));
        store.clear().unwrap();
        assert_eq!(store.tokens().unwrap(), None);
        assert_eq!(doors_meta(&store), None);
        assert!(store.doors().unwrap().is_empty());
    }

    /// A cache written before doors kept their signed zone rules (schema step 2) opens with
    /// them, read from each door's access document, and decides as before: nothing cached is
    /// lost to the upgrade.
    #[test]
    fn an_old_cache_gains_the_signed_zone_rules_and_decides_as_the_lock() {
        use base64::Engine;

        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let document = fixtures::sample_access().sign(&fixtures::issuer()).unwrap();
        let pool = crate::api::wire::MyDoor {
            id: fixtures::POOL.to_string(),
            name: "Pool".into(),
            online: false,
            keypad: true,
            lock_id: fixtures::LOCK_ID.to_string(),
            lock_public_key: b64(&fixtures::lock_config().key.public().to_sec1_compressed()),
            schedules: Vec::new(),
            doorcode: None,
            may_share: true,
            access_document: b64(&document),
        };
        let answer = crate::api::wire::MyDoors {
            person_id: fixtures::PERSON.to_string(),
            time_zone: "America/New_York".into(),
            issuer_kid: String::new(),
            issuer_public_key: b64(&fixtures::issuer().verifying().to_sec1_compressed()),
            credential_id: None,
            doors: vec![pool],
            issued_at: fixtures::ISSUED_AT,
        };
        let doors = crate::doors::verify(&answer, &fixtures::device_key()).unwrap();
        assert_eq!(doors[0].zone(), fixtures::new_york_2026());
        let meta = DoorsMeta {
            issuer_public_key: answer.issuer_public_key.clone(),
            ..meta()
        };

        let dir = tempfile::tempdir().unwrap();
        Store::open(dir.path())
            .unwrap()
            .replace_doors(&meta, &doors)
            .unwrap();
        let old = Connection::open(dir.path().join("door-core.sqlite3")).unwrap();
        old.execute_batch(
            "UPDATE doors SET json = json_remove(json, '$.zone_initial_offset', '$.zone_transitions');
             DROP TABLE audit_outbox;
             CREATE TABLE outbox (lock_id TEXT NOT NULL, seq INTEGER NOT NULL, record BLOB NOT NULL,
                 PRIMARY KEY (lock_id, seq));
             PRAGMA user_version = 2;",
        )
        .unwrap();
        drop(old);

        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.doors().unwrap(), doors);

        // And the phone's answer is the lock's, every half hour of the document's year and a
        // day either side: the same outcome, and the same instant of change wherever the lock
        // names one (from the document's end on, the lock says "never").
        let pool = &store.doors().unwrap()[0];
        let lock_view = decode_access(&document, &fixtures::issuer_keys()).unwrap();
        for t in (fixtures::NOT_BEFORE - 86_400..=fixtures::NOT_AFTER + 86_400).step_by(1800) {
            let phone = pool.decide(t);
            let lock = lock_view.decision(fixtures::POOL, t).unwrap();
            assert_eq!(
                std::mem::discriminant(&phone),
                std::mem::discriminant(&lock),
                "at {t}: {phone:?} / {lock:?}"
            );
            if lock.next_change().is_some() {
                assert_eq!(phone.next_change(), lock.next_change(), "at {t}");
            }
        }
    }

    #[test]
    fn the_outbox_keeps_epochs_apart_and_sets_refused_records_aside() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.audit_pull_position("l1").unwrap(), (String::new(), 0));
        store
            .add_outbox("l1", "0101010101010101", 2, &[(0, vec![1]), (1, vec![2])])
            .unwrap();
        // The lock was wiped: seqs 0 and 1 again, under another epoch, beside the old ones.
        store
            .add_outbox("l1", "0202020202020202", 2, &[(0, vec![3]), (1, vec![4])])
            .unwrap();
        assert_eq!(
            store.audit_pull_position("l1").unwrap(),
            ("0202020202020202".to_owned(), 2)
        );
        let (lock, records) = store.outbox().unwrap().remove(0);
        assert_eq!(lock, "l1");
        assert_eq!(
            records.iter().map(|r| r.bytes[0]).collect::<Vec<_>>(),
            [1, 2, 3, 4]
        );
        store
            .uploaded(
                "l1",
                &[
                    (&records[0], UploadOutcome::Held),
                    (
                        &records[1],
                        UploadOutcome::Refused {
                            reason: "conflict".into(),
                            detail: "another record".into(),
                        },
                    ),
                    (&records[2], UploadOutcome::Unknown),
                ],
            )
            .unwrap();
        assert_eq!(store.outbox_len().unwrap(), 2, "records 3 and 4 still wait");
        let refused = store.refused_audit_records().unwrap();
        assert_eq!(
            (refused.len(), refused[0].seq, refused[0].reason.as_str()),
            (1, 1, "conflict")
        );
        // A refused record pulled again stays refused; the outbox no longer offers it.
        store
            .add_outbox("l1", "0101010101010101", 2, &[(1, vec![2])])
            .unwrap();
        assert_eq!(store.outbox_len().unwrap(), 2);
        assert_eq!(store.refused_audit_records().unwrap().len(), 1);
    }

    #[test]
    fn records_pulled_before_epochs_move_to_the_new_outbox() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path()).unwrap());
        let old = Connection::open(dir.path().join("door-core.sqlite3")).unwrap();
        old.execute_batch(
            "DROP TABLE audit_outbox;
             CREATE TABLE outbox (lock_id TEXT NOT NULL, seq INTEGER NOT NULL, record BLOB NOT NULL,
                 PRIMARY KEY (lock_id, seq));
             INSERT INTO outbox VALUES ('l1', 7, X'01');
             PRAGMA user_version = 3;",
        )
        .unwrap();
        drop(old);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(
            store.outbox().unwrap(),
            [(
                "l1".to_owned(),
                vec![OutboxRecord {
                    epoch: String::new(),
                    seq: 7,
                    bytes: vec![1]
                }]
            )]
        );
    }
}
