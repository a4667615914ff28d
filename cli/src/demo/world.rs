//! The demo's world, all in this process: door-server on SQLite in a temporary directory,
//! reference locks on the in-memory BLE link, and phones (DoorClient, as an app makes it),
//! all on one simulated clock so that "the pool at night" happens whenever the demo runs.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use chrono::TimeZone;
use chrono_tz::Tz;
use door_core::ble::memory::{LinkModel, MemoryTransport, Peripheral};
use door_core::ble::{BleError, Connection, LockTarget, Transport};
use door_core::{ClientConfig, DoorClient, DoorEvent, EventListener};
use door_lock::{Lock, LockClock};
use door_server::seed::Seeded;
use door_server::ServerHandle;

use super::steps::StepError;

/// The simulated clock the server and the phones read (the locks have their own, moved with
/// it: a lock's clock is its own in real life too).
#[derive(Clone)]
pub struct SimClock(Arc<AtomicI64>);

impl SimClock {
    pub fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }

    pub fn f(&self) -> Arc<dyn Fn() -> i64 + Send + Sync> {
        let c = self.0.clone();
        Arc::new(move || c.load(Ordering::SeqCst))
    }
}

/// What crossed the link, counted as a BLE sniffer would.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LinkStats {
    pub connections: u64,
    pub writes: u64,
    pub bytes_up: usize,
    pub notifications: u64,
    pub bytes_down: usize,
    /// Time connections were open, connect to close.
    pub open: Duration,
}

impl LinkStats {
    /// What happened between `self` (earlier) and `later`.
    pub fn since(&self, later: &LinkStats) -> LinkStats {
        LinkStats {
            connections: later.connections - self.connections,
            writes: later.writes - self.writes,
            bytes_up: later.bytes_up - self.bytes_up,
            notifications: later.notifications - self.notifications,
            bytes_down: later.bytes_down - self.bytes_down,
            open: later.open.saturating_sub(self.open),
        }
    }
}

/// The in-memory link with a meter on it, so a step can show (and check) what the radio did.
#[derive(Clone)]
pub struct MeteredLink {
    pub link: MemoryTransport,
    stats: Arc<Mutex<LinkStats>>,
}

impl MeteredLink {
    pub fn stats(&self) -> LinkStats {
        *self.stats.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl Transport for MeteredLink {
    async fn connect(
        &self,
        target: &LockTarget,
        timeout: Duration,
    ) -> Result<Box<dyn Connection>, BleError> {
        let inner = self.link.connect(target, timeout).await?;
        self.stats
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .connections += 1;
        Ok(Box::new(Metered {
            inner,
            stats: self.stats.clone(),
            opened: Some(Instant::now()),
        }))
    }
}

struct Metered {
    inner: Box<dyn Connection>,
    stats: Arc<Mutex<LinkStats>>,
    opened: Option<Instant>,
}

impl Metered {
    fn count(&self, f: impl FnOnce(&mut LinkStats)) {
        f(&mut self.stats.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

#[async_trait]
impl Connection for Metered {
    fn mtu(&self) -> usize {
        self.inner.mtu()
    }

    async fn write(&mut self, fragment: &[u8]) -> Result<(), BleError> {
        self.inner.write(fragment).await?;
        self.count(|s| {
            s.writes += 1;
            s.bytes_up += fragment.len();
        });
        Ok(())
    }

    async fn notification(&mut self) -> Result<Vec<u8>, BleError> {
        let n = self.inner.notification().await?;
        self.count(|s| {
            s.notifications += 1;
            s.bytes_down += n.len();
        });
        Ok(n)
    }

    async fn close(&mut self) {
        self.inner.close().await;
        if let Some(opened) = self.opened.take() {
            self.count(|s| s.open += opened.elapsed());
        }
    }
}

/// A reference lock's connection as the in-memory link's peripheral.
struct LockPeripheral(door_lock::Connection);

impl Peripheral for LockPeripheral {
    fn on_write(&mut self, fragment: &[u8], mtu: usize) -> Vec<Vec<u8>> {
        // A lock that cannot persist its decision answers nothing; the phone times out.
        self.0.on_write(fragment, mtu as u16).unwrap_or_default()
    }
}

/// What a phone's app was told, with when.
#[derive(Default)]
pub struct EventLog(Mutex<Vec<(Instant, DoorEvent)>>);

impl EventListener for EventLog {
    fn on_event(&self, event: DoorEvent) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((Instant::now(), event));
    }
}

impl EventLog {
    pub fn since(&self, t: Instant) -> Vec<(Duration, DoorEvent)> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(at, _)| *at >= t)
            .map(|(at, e)| (at.duration_since(t), e.clone()))
            .collect()
    }

    pub fn saw(&self, e: &DoorEvent) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .any(|(_, x)| x == e)
    }
}

/// A phone with the app on it.
pub struct Phone {
    pub client: Arc<DoorClient>,
    pub events: Arc<EventLog>,
}

pub struct World {
    /// The database, the locks' state and the phones' data directories.
    pub dir: tempfile::TempDir,
    pub zone: Tz,
    pub clock: SimClock,
    pub lock_clock: LockClock,
    pub link: MeteredLink,
    pub admin_token: String,
    pub server: Option<ServerHandle>,
    pub seeded: Option<Seeded>,
    /// Reference locks by door name.
    pub locks: BTreeMap<String, Lock>,
}

impl World {
    /// An empty world at `start` (local time in `zone`).
    pub fn new(zone: Tz, start: chrono::NaiveDateTime) -> std::io::Result<World> {
        let t = zone
            .from_local_datetime(&start)
            .single()
            .expect("the demo starts at an unambiguous local time")
            .timestamp();
        let link = MemoryTransport::new(LinkModel::FAST);
        Ok(World {
            dir: tempfile::tempdir()?,
            zone,
            clock: SimClock(Arc::new(AtomicI64::new(t))),
            lock_clock: LockClock::fixed(t),
            link: MeteredLink {
                link,
                stats: Default::default(),
            },
            // Anyone on this machine could reach the demo's server for a few seconds: a
            // fresh random token keeps them from creating properties on it.
            admin_token: hex::encode(rand_bytes()),
            server: None,
            seeded: None,
            locks: BTreeMap::new(),
        })
    }

    /// Moves the whole world (server, phones, locks) to local time `hh:mm` of the same day.
    pub fn set_time_of_day(&self, hour: u32, minute: u32) {
        let today = self.local(self.clock.now()).date_naive();
        let t = self
            .zone
            .from_local_datetime(&today.and_hms_opt(hour, minute, 0).expect("a valid time"))
            .single()
            .expect("an unambiguous local time")
            .timestamp();
        self.clock.0.store(t, Ordering::SeqCst);
        self.lock_clock.set_time(t);
    }

    pub fn local(&self, t: i64) -> chrono::DateTime<Tz> {
        self.zone
            .timestamp_opt(t, 0)
            .single()
            .expect("a Unix time maps to one instant")
    }

    pub fn now(&self) -> SystemTime {
        at(self.clock.now())
    }

    pub fn server(&self) -> Result<&ServerHandle, StepError> {
        self.server
            .as_ref()
            .ok_or(StepError::Skipped("door-server did not start"))
    }

    pub fn seeded(&self) -> Result<&Seeded, StepError> {
        self.seeded
            .as_ref()
            .ok_or(StepError::Skipped("the property was not seeded"))
    }

    pub fn door_id(&self, name: &str) -> Result<String, StepError> {
        self.seeded()?
            .doors
            .iter()
            .find(|d| d.door.name == name)
            .map(|d| d.door.id.clone())
            .ok_or_else(|| StepError::Failed(format!("the seed has no door {name:?}")))
    }

    pub fn lock(&self, door: &str) -> Result<&Lock, StepError> {
        self.locks
            .get(door)
            .ok_or(StepError::Skipped("the reference locks did not start"))
    }

    /// Starts a reference lock for the seeded door `name` and puts it on the link.
    pub fn add_lock(&mut self, name: &str) -> Result<(), StepError> {
        let seeded = self.seeded()?;
        let door = seeded
            .doors
            .iter()
            .find(|d| d.door.name == name)
            .ok_or_else(|| StepError::Failed(format!("the seed has no door {name:?}")))?;
        if door.door.online {
            return Err(StepError::Failed(format!(
                "{name} is an online door; the demo's locks are offline ones"
            )));
        }
        let issuer = crate::testbed::issuer_keys(seeded).map_err(StepError::failed)?;
        let lock = crate::testbed::reference_lock(
            door,
            issuer,
            &self.dir.path().join("locks"),
            self.lock_clock.clone(),
        )
        .map_err(StepError::failed)?;
        let l = lock.clone();
        self.link.link.add_lock(
            &door.door.lock_id,
            Arc::new(move || Box::new(LockPeripheral(l.connect())) as Box<dyn Peripheral>),
        );
        self.locks.insert(name.to_owned(), lock);
        Ok(())
    }

    /// A fresh app install on a new phone: its own data directory and device key.
    pub fn phone(&self, name: &str) -> Result<Phone, StepError> {
        let data_dir = self.dir.path().join("phones").join(name);
        std::fs::create_dir_all(&data_dir)?;
        let events = Arc::new(EventLog::default());
        let client = DoorClient::with_clock(
            ClientConfig {
                server_url: self.server()?.url(),
                data_dir: data_dir.to_string_lossy().into_owned(),
                request_timeout_ms: 5000,
            },
            // An app passes its hardware-backed signer; a demo phone keeps its key in memory.
            Some(door_core::ephemeral_device_signer()),
            Some(events.clone()),
            Some(Arc::new(self.link.clone()) as Arc<dyn Transport>),
            self.clock.f(),
        )?;
        Ok(Phone { client, events })
    }

    /// One number from the server's database (what DOOR OS would show a manager).
    pub fn count(&self, sql: &str) -> Result<i64, StepError> {
        self.server()?
            .state
            .db
            .read(|tx| Ok(tx.query_row(sql, [], |r| r.get(0))?))
            .map_err(db_error)
    }

    /// One text column from the server's database.
    pub fn texts(&self, sql: &str) -> Result<Vec<String>, StepError> {
        self.server()?
            .state
            .db
            .read(|tx| {
                let mut stmt = tx.prepare(sql)?;
                let rows = stmt.query_map([], |r| r.get(0))?;
                Ok(rows.collect::<Result<Vec<String>, _>>()?)
            })
            .map_err(db_error)
    }
}

fn db_error(e: door_server::error::ApiError) -> StepError {
    StepError::Failed(format!("the server's database: {}", e.body.message))
}

pub fn at(t: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(t.max(0) as u64)
}

fn rand_bytes() -> [u8; 16] {
    use rand_core::RngCore;
    let mut b = [0u8; 16];
    rand_core::OsRng.fill_bytes(&mut b);
    b
}
