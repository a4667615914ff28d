//! The database: SQLite through rusqlite in WAL mode, one writing connection behind a mutex
//! (SQLite serializes writers anyway) and a few reading ones, so that reads never queue
//! behind a write; versioned migrations, and one transaction per request.

use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, Transaction};

use crate::error::ApiError;

/// Each entry upgrades the schema by one version; `PRAGMA user_version` records how many
/// have run. Append only: a deployed database has run the earlier ones.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE properties (
    id              BLOB PRIMARY KEY,
    name            TEXT NOT NULL,
    time_zone       TEXT NOT NULL,
    issuer_secret   BLOB NOT NULL,
    issuer_kid      BLOB NOT NULL,
    manager_key_hash BLOB NOT NULL UNIQUE,
    revocation_iteration INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL
);
CREATE TABLE doors (
    id              BLOB PRIMARY KEY,
    property_id     BLOB NOT NULL REFERENCES properties(id),
    name            TEXT NOT NULL,
    online          INTEGER NOT NULL,
    lock_id         BLOB NOT NULL UNIQUE,
    lock_public_key BLOB NOT NULL,
    keypad          INTEGER NOT NULL
);
CREATE TABLE keys (
    id              BLOB PRIMARY KEY,
    property_id     BLOB NOT NULL REFERENCES properties(id),
    name            TEXT NOT NULL,
    -- 'manager' keys are made in DOOR OS; 'guest' keys are made per door for an invite.
    kind            TEXT NOT NULL CHECK (kind IN ('manager', 'guest'))
);
CREATE TABLE key_doors (
    key_id          BLOB NOT NULL REFERENCES keys(id),
    door_id         BLOB NOT NULL REFERENCES doors(id),
    doorcodes       INTEGER NOT NULL,
    schedule        TEXT NOT NULL,
    PRIMARY KEY (key_id, door_id)
);
CREATE TABLE people (
    id              BLOB PRIMARY KEY,
    property_id     BLOB NOT NULL REFERENCES properties(id),
    name            TEXT NOT NULL,
    email           TEXT,
    role            TEXT NOT NULL CHECK (role IN ('resident', 'staff', 'vendor', 'guest')),
    password_hash   TEXT,
    revoked         INTEGER NOT NULL DEFAULT 0,
    UNIQUE (email)
);
CREATE TABLE assignments (
    id              BLOB PRIMARY KEY,
    key_id          BLOB NOT NULL REFERENCES keys(id),
    person_id       BLOB NOT NULL REFERENCES people(id),
    may_share       INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    revoked_at      INTEGER
);
CREATE UNIQUE INDEX assignments_live ON assignments(key_id, person_id) WHERE revoked_at IS NULL;
CREATE TABLE doorcodes (
    person_id       BLOB NOT NULL REFERENCES people(id),
    door_id         BLOB NOT NULL REFERENCES doors(id),
    code            TEXT NOT NULL,
    PRIMARY KEY (person_id, door_id),
    UNIQUE (door_id, code)
);
CREATE TABLE sessions (
    token_hash      BLOB PRIMARY KEY,
    person_id       BLOB NOT NULL REFERENCES people(id),
    kind            TEXT NOT NULL CHECK (kind IN ('access', 'refresh')),
    expires_at      INTEGER NOT NULL
);
CREATE TABLE challenges (
    challenge       BLOB PRIMARY KEY,
    person_id       BLOB NOT NULL REFERENCES people(id),
    expires_at      INTEGER NOT NULL
);
CREATE TABLE devices (
    id              BLOB PRIMARY KEY,
    person_id       BLOB NOT NULL REFERENCES people(id),
    public_key      BLOB NOT NULL UNIQUE,
    created_at      INTEGER NOT NULL
);
CREATE TABLE credentials (
    id              BLOB PRIMARY KEY,
    person_id       BLOB NOT NULL REFERENCES people(id),
    device_id       BLOB NOT NULL REFERENCES devices(id),
    access_iteration INTEGER NOT NULL,
    issued_at       INTEGER NOT NULL,
    not_after       INTEGER NOT NULL,
    superseded      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX credentials_person ON credentials(person_id, device_id, superseded);
-- One signed document per door: a lock sees only its own door, and an unlock carries a few
-- hundred bytes whatever the number of doors the person has.
CREATE TABLE credential_documents (
    credential_id   BLOB NOT NULL REFERENCES credentials(id),
    door_id         BLOB NOT NULL REFERENCES doors(id),
    document        BLOB NOT NULL,
    PRIMARY KEY (credential_id, door_id)
);
CREATE TABLE revocations (
    property_id     BLOB NOT NULL REFERENCES properties(id),
    credential_id   BLOB NOT NULL,
    iteration       INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    PRIMARY KEY (property_id, credential_id)
);
CREATE TABLE invites (
    id              BLOB PRIMARY KEY,
    property_id     BLOB NOT NULL REFERENCES properties(id),
    inviter_id      BLOB NOT NULL REFERENCES people(id),
    guest_id        BLOB NOT NULL REFERENCES people(id),
    contact         TEXT NOT NULL,
    token_hash      BLOB NOT NULL UNIQUE,
    starts_at       INTEGER NOT NULL,
    ends_at         INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    redeemed_at     INTEGER,
    revoked_at      INTEGER
);
CREATE TABLE invite_keys (
    invite_id       BLOB NOT NULL REFERENCES invites(id),
    key_id          BLOB NOT NULL REFERENCES keys(id),
    door_id         BLOB NOT NULL REFERENCES doors(id),
    PRIMARY KEY (invite_id, key_id)
);
CREATE TABLE audit_records (
    lock_id         BLOB NOT NULL,
    seq             INTEGER NOT NULL,
    record          BLOB NOT NULL,
    received_at     INTEGER NOT NULL,
    PRIMARY KEY (lock_id, seq)
);
"#,
    r#"
-- Door Sync: what each lock should hold (its revocations, doorcodes and audit acknowledgement),
-- numbered per lock. A phone names the iteration its lock is at; while that snapshot is kept the
-- answer is a delta from it, else a full bundle. Only the latest few are kept per lock.
CREATE TABLE sync_snapshots (
    lock_id         BLOB NOT NULL REFERENCES doors(lock_id),
    iteration       INTEGER NOT NULL,
    -- JSON of sync::SyncState.
    state           TEXT NOT NULL,
    -- SHA-256 of state: each request compares the desired state with the latest by this alone.
    digest          BLOB NOT NULL,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (lock_id, iteration)
);
"#,
    r#"
-- Devices are removed, never deleted (audit and history); removed ones do not count against
-- the per-person limit and get no documents. last_seen_at: the device's latest door fetch.
ALTER TABLE devices ADD COLUMN removed_at INTEGER;
ALTER TABLE devices ADD COLUMN last_seen_at INTEGER;
CREATE INDEX devices_person ON devices(person_id);
-- A session is an access and a refresh token issued together (session_id), bound to the
-- device it registered, so that removing a device ends the sessions of the phone that holds it.
ALTER TABLE sessions ADD COLUMN session_id BLOB;
ALTER TABLE sessions ADD COLUMN device_id BLOB REFERENCES devices(id);
CREATE INDEX sessions_session ON sessions(session_id);
CREATE INDEX sessions_device ON sessions(device_id);
"#,
    r#"
-- Revocation by floor (policy.rs): every document of a person below `floor` is void until
-- `expires_at`. One row per person, whatever their number of devices and credentials.
CREATE TABLE person_floors (
    person_id       BLOB PRIMARY KEY REFERENCES people(id),
    property_id     BLOB NOT NULL REFERENCES properties(id),
    floor           INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    raised_at       INTEGER NOT NULL
);
CREATE INDEX person_floors_property ON person_floors(property_id, expires_at);
-- Per lock: every document issued before this is void (what replaces floors a lock cannot hold).
CREATE TABLE lock_issued_floors (
    lock_id         BLOB PRIMARY KEY,
    issued_floor    INTEGER NOT NULL
);
-- The (door, schedule) pairs a credential's documents grant, to tell narrowing from widening
-- without opening documents. NULL (credentials issued before this): counted as wider.
ALTER TABLE credentials ADD COLUMN grants TEXT;
-- Credentials revoked one by one before floors: each voids its person's documents up to it.
INSERT INTO person_floors (person_id, property_id, floor, expires_at, raised_at)
    SELECT c.person_id, r.property_id, MAX(c.access_iteration) + 1, MAX(r.expires_at), 0
    FROM revocations r JOIN credentials c ON c.id = r.credential_id GROUP BY c.person_id;
"#,
    r#"
-- Audit records are named by (lock, epoch, seq): a lock draws a new epoch when its log starts
-- (new, wiped, replaced) and numbers from 0 again. `at` (the lock's signed clock) picks the
-- lock's latest epoch for the sync bundle's acknowledgement. The records held so far are audit
-- version 1, without an epoch, which this server no longer reads: they stay untouched in
-- audit_records_v1 rather than being dropped.
ALTER TABLE audit_records RENAME TO audit_records_v1;
CREATE TABLE audit_records (
    lock_id         BLOB NOT NULL,
    epoch           BLOB NOT NULL,
    seq             INTEGER NOT NULL,
    at              INTEGER NOT NULL,
    record          BLOB NOT NULL,
    received_at     INTEGER NOT NULL,
    PRIMARY KEY (lock_id, epoch, seq)
);
"#,
    r#"
-- A lock whose audit log filled dropped its oldest records unacknowledged and signed a
-- records-dropped record naming them (seqs dropped_from to dropped_through): the gap it explains
-- does not stop the acknowledgement. NULL for every other record.
ALTER TABLE audit_records ADD COLUMN dropped_from INTEGER;
ALTER TABLE audit_records ADD COLUMN dropped_through INTEGER;
"#,
    r#"
-- Refresh-token families (sessions.rs): sign-in or an invite starts a family, each refresh
-- continues it. A spent refresh token stays, with spent_at, until it would have expired, so
-- that its reuse is recognized: the family then ends and the reuse is recorded. Sessions from
-- before families are each their own family.
ALTER TABLE sessions ADD COLUMN family_id BLOB;
ALTER TABLE sessions ADD COLUMN spent_at INTEGER;
UPDATE sessions SET family_id = COALESCE(session_id, randomblob(16));
CREATE INDEX sessions_family ON sessions(family_id);
CREATE TABLE refresh_reuses (
    family_id       BLOB NOT NULL,
    person_id       BLOB NOT NULL REFERENCES people(id),
    device_id       BLOB,
    detected_at     INTEGER NOT NULL
);
CREATE INDEX refresh_reuses_person ON refresh_reuses(person_id);
"#,
    r#"
-- A host removes one door from a guest's invite (guests.rs): the door stays recorded, with when
-- it was removed, and no longer counts for the guest's grants or the invite's door list.
ALTER TABLE invite_keys ADD COLUMN removed_at INTEGER;
"#,
    r#"
-- Invite types, per door (guests.rs): in-app access (an access document for the guest's
-- phone), a temporary doorcode, or both. Invites from before are in-app only.
ALTER TABLE invite_keys ADD COLUMN app INTEGER NOT NULL DEFAULT 1;
ALTER TABLE invite_keys ADD COLUMN doorcode INTEGER NOT NULL DEFAULT 0;
"#,
    r#"
-- Units (units.rs, access_log.rs): an apartment is a unit; the manager names the unit a door
-- belongs to (NULL: a shared door, a lobby or a gym) and the unit a person lives in. At a door of
-- their own unit a person's access log shows every entry, elsewhere only their own. Free text,
-- compared within the property.
ALTER TABLE doors ADD COLUMN unit TEXT;
ALTER TABLE people ADD COLUMN unit TEXT;
-- An access log page reads one lock's records newest first from a cursor.
CREATE INDEX audit_records_lock_time ON audit_records(lock_id, at, epoch, seq);
"#,
    r#"
-- Token sign-in (oidc/): the OpenID Connect issuer a property's people sign in with, and the
-- identity (issuer, subject) each person is known by there, linked at their first token
-- sign-in. One identity per person; a subject names at most one person of a property.
CREATE TABLE property_oidc (
    property_id     BLOB PRIMARY KEY REFERENCES properties(id),
    issuer          TEXT NOT NULL,
    audience        TEXT NOT NULL,
    jwks_url        TEXT NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX property_oidc_issuer ON property_oidc(issuer);
CREATE TABLE person_identities (
    person_id       BLOB PRIMARY KEY REFERENCES people(id),
    property_id     BLOB NOT NULL REFERENCES properties(id),
    issuer          TEXT NOT NULL,
    subject         TEXT NOT NULL,
    linked_at       INTEGER NOT NULL,
    UNIQUE (property_id, issuer, subject)
);
"#,
    r#"
-- Each lock's newest health (health.rs): battery, firmware, clock offset and applied sync
-- iteration from its signed health audit record with the latest signed time `at`, that record's
-- name in the log, and when the server received it. The record itself stays in audit_records.
CREATE TABLE lock_health (
    lock_id         BLOB PRIMARY KEY,
    epoch           BLOB NOT NULL,
    seq             INTEGER NOT NULL,
    at              INTEGER NOT NULL,
    battery         INTEGER NOT NULL,
    firmware        TEXT NOT NULL,
    clock_offset    INTEGER,
    iteration       INTEGER NOT NULL,
    received_at     INTEGER NOT NULL
);
"#,
];

/// Reading connections of a database file: enough for the requests that read at once on a
/// small server, each holding its connection for one short transaction.
const READERS: usize = 4;
/// A reader can meet a lock only while a checkpoint resets the WAL: wait rather than fail.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct Db {
    writer: Arc<Mutex<Connection>>,
    /// `None` in memory: a private in-memory database has one connection, and a shared-cache
    /// one locks per table and fails readers with SQLITE_LOCKED instead of giving them a
    /// snapshot, so there the writer serves reads too.
    readers: Option<Arc<Readers>>,
}

struct Readers {
    idle: Mutex<Vec<Connection>>,
    returned: Condvar,
}

impl Readers {
    fn take(&self) -> Lease<'_> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(conn) = idle.pop() {
                return Lease {
                    readers: self,
                    conn: Some(conn),
                };
            }
            idle = self.returned.wait(idle).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// A reader on loan, given back when dropped, also when the read panics: a lost connection
/// would shrink the pool for good.
struct Lease<'a> {
    readers: &'a Readers,
    conn: Option<Connection>,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.readers
                .idle
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(conn);
            self.readers.returned.notify_one();
        }
    }
}

impl Db {
    /// Opens (creating if needed) the database at `path`, or an in-memory one for `None`,
    /// and brings its schema up to date.
    pub fn open(path: Option<&Path>) -> Result<Db, rusqlite::Error> {
        let mut conn = match path {
            Some(p) => Connection::open(p)?,
            None => Connection::open_in_memory()?,
        };
        conn.pragma_update(None, "foreign_keys", true)?;
        // WAL lets readers proceed during a write; NORMAL sync is durable at each commit in
        // WAL mode except against power loss, which a reference server can accept.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        migrate(&mut conn)?;
        let readers = match path {
            Some(p) => Some(Arc::new(Readers {
                idle: Mutex::new((0..READERS).map(|_| reader(p)).collect::<Result<_, _>>()?),
                returned: Condvar::new(),
            })),
            None => None,
        };
        Ok(Db {
            writer: Arc::new(Mutex::new(conn)),
            readers,
        })
    }

    /// Runs `f` in one transaction: committed if it returns Ok, rolled back otherwise, so a
    /// failed request leaves nothing half-written.
    pub fn write<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let mut conn = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn.transaction()?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    /// Reads inside a transaction too, so a multi-query read sees one snapshot: the latest
    /// commit when it starts, whatever the writer does meanwhile.
    pub fn read<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let Some(readers) = &self.readers else {
            return self.write(f);
        };
        let mut lease = readers.take();
        let conn = lease.conn.as_mut().expect("a lease holds its connection");
        // Dropping the transaction ends it: a read has nothing to commit.
        let tx = conn.transaction()?;
        f(&tx)
    }
}

/// Runs `f` on a blocking thread. A database call may wait for the writer and signing or
/// hashing takes milliseconds; on an async worker either would stall the other requests that
/// worker serves.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("blocking task: {e}")))?
}

/// A connection that only reads: a `read` closure that writes is a bug, and fails as one.
fn reader(path: &Path) -> Result<Connection, rusqlite::Error> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> Result<(), rusqlite::Error> {
    let done: usize = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(done) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i + 1)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_records_from_before_epochs_are_kept_aside_not_dropped() {
        let mut conn = Connection::open_in_memory().unwrap();
        let epochs = MIGRATIONS
            .iter()
            .position(|m| m.contains("RENAME TO audit_records_v1"))
            .unwrap();
        for (i, sql) in MIGRATIONS.iter().take(epochs).enumerate() {
            conn.execute_batch(sql).unwrap();
            conn.pragma_update(None, "user_version", i + 1).unwrap();
        }
        conn.execute(
            "INSERT INTO audit_records (lock_id, seq, record, received_at) VALUES (X'10', 0, X'd2', 1)",
            [],
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let count = |table: &str| -> i64 {
            conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!((count("audit_records_v1"), count("audit_records")), (1, 0));
        conn.execute(
            "INSERT INTO audit_records (lock_id, epoch, seq, at, record, received_at) \
             VALUES (X'10', X'0102030405060708', 0, 5, X'd2', 1)",
            [],
        )
        .unwrap();
    }
}
