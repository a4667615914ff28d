//! door-lock: the reference lock. door-protocol's lock side (all the verification) plus what a
//! lock keeps: its revocation list, replay cache and signed audit log in a directory that
//! survives restarts, and a clock that can drift. Transports drive it through
//! [`Lock::connect`] and [`Connection::on_write`]: chunks in, chunks to notify out, so an
//! in-memory link and a GATT server serve it the same way.

mod clock;
mod store;

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use door_protocol::unlock::LockDecision;
use door_protocol::{
    verify_revocation, AuditRecord, Id, LockConfig, LockSession, LockState, RevocationError,
    UnixTime,
};
use rand_core::OsRng;

pub use clock::LockClock;
use store::{Persistent, Store};

/// Why the lock could not start, persist or take a document.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("lock state I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("lock state file unreadable: {0}")]
    Corrupt(String),
    /// The directory holds the state of another lock.
    #[error("the state directory belongs to lock {stored}")]
    OtherLock { stored: Id },
    #[error("revocation document refused: {0}")]
    Revocation(#[from] RevocationError),
}

struct Inner {
    store: Store,
    state: LockState,
    /// Signed audit records, oldest first, until a server acknowledges them (a later issue).
    audit: Vec<Vec<u8>>,
    next_seq: u64,
}

/// A lock: fixed configuration, persistent state and a clock. Cheap to clone: clones are
/// handles to the same lock, so a transport can hold one per connection.
#[derive(Clone)]
pub struct Lock {
    config: Arc<LockConfig>,
    clock: LockClock,
    inner: Arc<Mutex<Inner>>,
}

impl Lock {
    /// Opens the lock whose state lives in `dir`: reloads it if present (and refuses a
    /// directory that holds another lock's state), else starts empty and writes it.
    pub fn open(dir: &Path, config: LockConfig, clock: LockClock) -> Result<Lock, LockError> {
        let store = Store::new(dir)?;
        let persistent = match store.load(config.lock_id)? {
            Some(p) => p,
            None => {
                let fresh = Persistent {
                    revocations: Default::default(),
                    replay: Default::default(),
                    audit: Vec::new(),
                    next_seq: 0,
                };
                store.save(config.lock_id, &fresh)?;
                fresh
            }
        };
        let state = LockState {
            revocations: persistent.revocations,
            replay: persistent.replay,
            pending_audit: pending(&persistent.audit),
        };
        Ok(Lock {
            config: Arc::new(config),
            clock,
            inner: Arc::new(Mutex::new(Inner {
                store,
                state,
                audit: persistent.audit,
                next_seq: persistent.next_seq,
            })),
        })
    }

    pub fn config(&self) -> &LockConfig {
        &self.config
    }

    pub fn clock(&self) -> &LockClock {
        &self.clock
    }

    /// The lock's time now.
    pub fn now(&self) -> UnixTime {
        self.clock.now()
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        // Every change is persisted before the lock is released; after a panic the on-disk
        // state is the truth, and the in-memory copy at worst holds one more replay entry.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new BLE connection.
    pub fn connect(&self) -> Connection {
        Connection {
            lock: self.clone(),
            session: LockSession::new(),
        }
    }

    /// Verifies a revocation document with the lock's issuer keys and applies it (iteration
    /// must grow), then persists.
    pub fn apply_revocation(&self, bytes: &[u8]) -> Result<(), LockError> {
        let verified = verify_revocation(bytes, &self.config.issuer_keys)?;
        let mut inner = self.inner();
        let mut revocations = inner.state.revocations.clone();
        revocations.apply(&verified)?;
        revocations.prune(self.clock.now());
        let previous = std::mem::replace(&mut inner.state.revocations, revocations);
        if let Err(e) = save(&self.config, &inner) {
            inner.state.revocations = previous;
            return Err(e);
        }
        Ok(())
    }

    /// The revocation list's iteration: what the lock reports as its sync iteration.
    pub fn revocation_iteration(&self) -> u64 {
        self.inner().state.revocations.iteration()
    }

    /// Audit records no server has acknowledged.
    pub fn pending_audit(&self) -> u32 {
        self.inner().state.pending_audit
    }

    /// The signed audit records (COSE_Sign1, check with `door_protocol::verify_audit`), oldest
    /// first.
    pub fn audit_records(&self) -> Vec<Vec<u8>> {
        self.inner().audit.clone()
    }

    /// Live entries in the replay cache.
    pub fn replay_entries(&self) -> usize {
        self.inner().state.replay.len()
    }
}

fn pending(audit: &[Vec<u8>]) -> u32 {
    u32::try_from(audit.len()).unwrap_or(u32::MAX)
}

fn save(config: &LockConfig, inner: &Inner) -> Result<(), LockError> {
    inner.store.save(
        config.lock_id,
        &Persistent {
            revocations: inner.state.revocations.clone(),
            replay: inner.state.replay.clone(),
            audit: inner.audit.clone(),
            next_seq: inner.next_seq,
        },
    )
}

/// One BLE connection to the lock.
pub struct Connection {
    lock: Lock,
    session: LockSession,
}

impl Connection {
    /// One chunk the phone wrote; returns the chunks to notify back (none while a message is
    /// incomplete), cut for `mtu`. A decision is recorded in the audit log and persisted
    /// before its answer is released: if the state cannot be written the error comes back
    /// instead of the answer, so no unlock is ever answered whose replay entry and audit
    /// record a restart could lose.
    pub fn on_write(&mut self, fragment: &[u8], mtu: u16) -> Result<Vec<Vec<u8>>, LockError> {
        let lock = &self.lock;
        let now = lock.clock.now();
        let mut inner = lock.inner();
        let Some(reply) =
            self.session
                .on_fragment(&lock.config, &mut inner.state, fragment, now, &mut OsRng)
        else {
            return Ok(Vec::new());
        };
        if let Some(LockDecision { event, .. }) = reply.decision {
            let record = AuditRecord {
                seq: inner.next_seq,
                at: now,
                event,
            };
            let signed = record.sign(&lock.config.key);
            inner.audit.push(signed);
            inner.next_seq += 1;
            inner.state.pending_audit = pending(&inner.audit);
            save(&lock.config, &inner)?;
        }
        Ok(reply.message.fragments(mtu))
    }
}
