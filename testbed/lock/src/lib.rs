//! door-lock: the reference lock. door-protocol's lock side (all the verification) plus what a
//! lock keeps: its revocations, doorcodes, replay cache, clock correction and signed audit log
//! in a directory that survives restarts, a clock that can drift, and a keypad. Transports
//! drive it through [`Lock::connect`] and [`Connection::on_write`]: chunks in, chunks to notify
//! out, so an in-memory link and a GATT server serve it the same way. A connection takes
//! unlock requests and Door Sync messages (bundle transfers, audit pulls) alike. A simulated
//! battery drains per operation ([`battery`]); with the firmware version it goes into the
//! signed health record the lock writes for each phone that syncs it.

pub mod battery;
mod clock;
mod store;

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use door_protocol::sync::{Applied, DoorcodeResult};
use door_protocol::{
    open_bundle, verify_revocation, AuditEpoch, AuditLog, FirmwareVersion, HealthReadings, Id,
    LockConfig, LockSession, LockState, Persist, RevocationError, SyncError, UnixTime,
    AUDIT_CAPACITY,
};
use rand_core::OsRng;

use battery::{Battery, SYNC_DRAW, UNLOCK_DRAW};
pub use clock::LockClock;
use store::{Change, Store};

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
    #[error("sync bundle refused: {0}")]
    Sync(#[from] SyncError),
}

struct Inner {
    store: Store,
    state: LockState,
    /// The simulated hardware: not persisted (a restart of the process is a fresh battery).
    battery: Battery,
    firmware: FirmwareVersion,
}

impl Inner {
    /// Persists what `what` names. If that fails, memory goes back to what the disk holds, so
    /// the lock never acts on (or answers from) a state a restart would not find.
    fn commit(&mut self, lock_id: Id, what: Persist) -> Result<(), LockError> {
        let written = self.write(lock_id, what);
        if written.is_err() {
            // A state on disk always has its epoch: the fallback epoch is never used.
            if let Ok(Some((state, _))) = self.store.load(lock_id, new_epoch) {
                self.state = state;
            }
        }
        written
    }

    fn write(&mut self, lock_id: Id, what: Persist) -> Result<(), LockError> {
        // State first: when a transfer completes, the applied bundle must be on disk before
        // the partial transfer is removed (see store).
        if what.state {
            let change = match what.decision_only {
                true => Change::Decision,
                false => Change::All,
            };
            self.store.save(lock_id, &self.state, change)?;
        }
        if what.transfer {
            self.store.save_transfer(self.state.transfer.as_ref())?;
        }
        Ok(())
    }
}

const STATE: Persist = Persist {
    state: true,
    decision_only: false,
    transfer: false,
};

/// The firmware version the reference lock reports: this crate's name and version.
pub fn default_firmware() -> FirmwareVersion {
    FirmwareVersion::new(concat!("door-lock ", env!("CARGO_PKG_VERSION")))
        .expect("the crate's name and version are short printable ASCII")
}

/// A fresh audit epoch: the lock's log starts (first start, wipe).
fn new_epoch() -> AuditEpoch {
    AuditEpoch::random(&mut OsRng)
}

/// A lock's state when it starts afresh, with a log of a new epoch.
fn fresh_state(audit_capacity: usize) -> LockState {
    LockState {
        audit: AuditLog::new(new_epoch()).with_capacity(audit_capacity),
        ..LockState::default()
    }
}

/// A lock: fixed configuration, persistent state and a clock. Cheap to clone: clones are
/// handles to the same lock, so a transport can hold one per connection.
#[derive(Clone)]
pub struct Lock {
    config: Arc<LockConfig>,
    clock: LockClock,
    audit_capacity: usize,
    inner: Arc<Mutex<Inner>>,
}

impl Lock {
    /// Opens the lock whose state lives in `dir`: reloads it if present (and refuses a
    /// directory that holds another lock's state), else starts empty, with a new audit epoch,
    /// and writes it.
    pub fn open(dir: &Path, config: LockConfig, clock: LockClock) -> Result<Lock, LockError> {
        Lock::open_with_audit_capacity(dir, config, clock, AUDIT_CAPACITY)
    }

    /// [`Lock::open`] for a lock whose audit log holds at most `capacity` records (a lock
    /// with less storage; tests that fill the log).
    pub fn open_with_audit_capacity(
        dir: &Path,
        config: LockConfig,
        clock: LockClock,
        capacity: usize,
    ) -> Result<Lock, LockError> {
        let mut store = Store::new(dir, capacity)?;
        let state = match store.load(config.lock_id, new_epoch)? {
            Some((state, older_format)) => {
                if older_format {
                    store.create(config.lock_id, &state)?;
                }
                state
            }
            None => {
                let fresh = fresh_state(capacity);
                store.create(config.lock_id, &fresh)?;
                fresh
            }
        };
        Ok(Lock {
            config: Arc::new(config),
            clock,
            audit_capacity: capacity,
            inner: Arc::new(Mutex::new(Inner {
                store,
                state,
                battery: Battery::default(),
                firmware: default_firmware(),
            })),
        })
    }

    pub fn config(&self) -> &LockConfig {
        &self.config
    }

    /// The lock's hardware clock (which drifts); [`Lock::now`] is what the lock goes by.
    pub fn clock(&self) -> &LockClock {
        &self.clock
    }

    /// The lock's time now: the hardware clock plus the correction signed time made.
    pub fn now(&self) -> UnixTime {
        let clock = self.clock.now();
        self.inner().state.now(clock)
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        // Every change is persisted before the lock is released, and a failed write puts
        // memory back to the disk's state; after a panic the on-disk state is the truth.
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
        let now = inner.state.now(self.clock.now());
        let mut revocations = inner.state.revocations.clone();
        revocations.apply(&verified)?;
        revocations.prune(now);
        inner.state.revocations = revocations;
        inner.commit(self.config.lock_id, STATE)
    }

    /// Opens and applies a sync bundle handed to the lock directly (an installer's tool, a
    /// test), as one arriving over BLE is: atomically, and persisted before it counts.
    pub fn apply_bundle(&self, bytes: &[u8]) -> Result<Applied, LockError> {
        let opened = open_bundle(bytes, &self.config)?;
        let mut inner = self.inner();
        let applied = inner
            .state
            .apply_bundle(&self.config, &opened, self.clock.now())?;
        inner.commit(self.config.lock_id, STATE)?;
        inner.battery.draw(SYNC_DRAW);
        Ok(applied)
    }

    /// A code typed on the lock's keypad: opens for a live doorcode that sync delivered. The
    /// try is recorded (outside a lockout) and persisted before the answer counts.
    pub fn enter_doorcode(&self, code: &str) -> Result<DoorcodeResult, LockError> {
        let mut inner = self.inner();
        let before = inner.state.audit.next_seq();
        let result = inner
            .state
            .enter_doorcode(&self.config, code, self.clock.now());
        // A locked-out keypad records nothing and changes nothing.
        if inner.state.audit.next_seq() != before {
            inner.commit(self.config.lock_id, Persist::DECISION)?;
        }
        if matches!(result, DoorcodeResult::Granted { .. }) {
            inner.battery.draw(UNLOCK_DRAW);
        }
        Ok(result)
    }

    /// The revocation documents' iteration (bundles have their own: [`Lock::sync_iteration`]).
    pub fn revocation_iteration(&self) -> u64 {
        self.inner().state.revocations.iteration()
    }

    /// The last sync bundle applied (0 before any): what unlock answers report.
    pub fn sync_iteration(&self) -> u64 {
        self.inner().state.sync_iteration()
    }

    /// Doorcodes the lock holds.
    pub fn doorcodes(&self) -> usize {
        self.inner().state.sync.doorcodes().len()
    }

    /// Seconds signed time has added to the hardware clock.
    pub fn clock_offset(&self) -> i64 {
        self.inner().state.clock.offset
    }

    /// The simulated battery's charge left, 0 to 100 ([`battery`]).
    pub fn battery_percent(&self) -> u8 {
        self.inner().battery.percent()
    }

    /// Puts in a battery charged to `percent` (a test, a simulator starting low).
    pub fn set_battery_percent(&self, percent: u8) {
        self.inner().battery = Battery::at_percent(percent);
    }

    /// The firmware version the lock reports ([`default_firmware`] until set).
    pub fn firmware(&self) -> FirmwareVersion {
        self.inner().firmware
    }

    /// A firmware update, as far as health reports tell.
    pub fn set_firmware(&self, firmware: FirmwareVersion) {
        self.inner().firmware = firmware;
    }

    /// What signed time last told the lock of its clock: its clock minus that time, as it was
    /// taken (`None`: none taken since the lock started afresh).
    pub fn clock_skew(&self) -> Option<i64> {
        self.inner().state.clock.last_skew
    }

    /// The newest issuer-signed time the lock took.
    pub fn last_signed_time(&self) -> Option<UnixTime> {
        self.inner().state.clock.last_signed_time
    }

    /// The clock's high-water mark (`None`: no trusted time yet, so no step back).
    pub fn clock_high_water(&self) -> Option<door_protocol::sync::HighWater> {
        self.inner().state.clock.high_water
    }

    /// A bundle arriving over BLE: `(bytes received and persisted, total)`.
    pub fn transfer_progress(&self) -> Option<(usize, usize)> {
        self.inner()
            .state
            .transfer
            .as_ref()
            .map(|t| (t.received().len(), t.total_len as usize))
    }

    /// A factory reset: the lock forgets everything it was given and recorded (revocations,
    /// doorcodes, sync iteration, clock correction, keypad, replay cache, a transfer in
    /// progress and its audit log, records not yet acknowledged included) and starts a new
    /// audit log under a new epoch, from seq 0. Its key and configuration stay. Persisted
    /// before it returns.
    pub fn wipe(&self) -> Result<(), LockError> {
        let mut inner = self.inner();
        inner.state = fresh_state(self.audit_capacity);
        inner.commit(
            self.config.lock_id,
            Persist {
                state: true,
                decision_only: false,
                transfer: true,
            },
        )
    }

    /// The epoch of the lock's audit log: drawn at its first start and at every wipe.
    pub fn audit_epoch(&self) -> AuditEpoch {
        self.inner().state.audit.epoch()
    }

    /// The sequence number the lock's next audit record gets: it has written all below.
    pub fn next_audit_seq(&self) -> u64 {
        self.inner().state.audit.next_seq()
    }

    /// Audit records no server has acknowledged.
    pub fn pending_audit(&self) -> u32 {
        self.inner().state.audit.pending()
    }

    /// The signed audit records (COSE_Sign1, check with `door_protocol::verify_audit`), oldest
    /// first. Phones fetch them over BLE with audit pulls; they leave the lock only when a
    /// bundle acknowledges them.
    pub fn audit_records(&self) -> Vec<Vec<u8>> {
        self.inner()
            .state
            .audit
            .records()
            .map(<[u8]>::to_vec)
            .collect()
    }

    /// Live entries in the replay cache.
    pub fn replay_entries(&self) -> usize {
        self.inner().state.replay.len()
    }
}

/// One BLE connection to the lock.
pub struct Connection {
    lock: Lock,
    session: LockSession,
}

impl Connection {
    /// One chunk the phone wrote; returns the chunks to notify back (none while a message is
    /// incomplete or needs no answer), cut for `mtu`. Whatever the answer depends on (an unlock
    /// decision's audit record and replay entry, an applied bundle, an acknowledged block) is
    /// persisted before the answer is released: if the state cannot be written the error
    /// comes back instead of the answer, and the lock's memory returns to what its disk holds.
    pub fn on_write(&mut self, fragment: &[u8], mtu: u16) -> Result<Vec<Vec<u8>>, LockError> {
        let lock = &self.lock;
        let clock = lock.clock.now();
        let mut inner = lock.inner();
        self.session.report_health(HealthReadings {
            battery_percent: inner.battery.percent(),
            firmware: inner.firmware,
        });
        let iteration = inner.state.sync_iteration();
        let Some(reply) =
            self.session
                .on_fragment(&lock.config, &mut inner.state, fragment, clock, &mut OsRng)
        else {
            return Ok(Vec::new());
        };
        inner.commit(lock.config.lock_id, reply.persist)?;
        if reply.decision.is_some() {
            inner.battery.draw(UNLOCK_DRAW);
        }
        if inner.state.sync_iteration() > iteration {
            inner.battery.draw(SYNC_DRAW);
        }
        Ok(reply.message.fragments(mtu))
    }
}
