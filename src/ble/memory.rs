//! An in-memory BLE link with a link model, for tests and benchmarks: the phone's writes and
//! the lock's notifications travel in connection events of a given interval, a few packets
//! per event, at a given MTU, on tokio's clock (so a paused clock measures link time
//! exactly). Faults (drop, duplicate, reorder, disconnect) are injected per packet.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use super::{BleError, Connection, LockTarget, Transport};

/// The lock end of a link: gets each fragment the phone writes, answers with the fragments
/// to notify. A reference lock's connection session implements it.
pub trait Peripheral: Send {
    fn on_write(&mut self, fragment: &[u8], mtu: usize) -> Vec<Vec<u8>>;
}

/// Makes a fresh peripheral session for each connection to a lock.
pub type PeripheralFactory = Arc<dyn Fn() -> Box<dyn Peripheral> + Send + Sync>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkModel {
    /// ATT MTU: each packet carries at most `mtu - 3` bytes of a write or notification.
    pub mtu: usize,
    /// Time between connection events.
    pub connection_interval: Duration,
    /// Packets one direction may send in one connection event.
    pub packets_per_event: usize,
    /// Scan plus connection set-up plus discovery.
    pub connect_time: Duration,
}

impl LinkModel {
    /// A phone with data length extension: MTU 247, 30 ms interval.
    pub const FAST: LinkModel = LinkModel {
        mtu: 247,
        connection_interval: Duration::from_millis(30),
        packets_per_event: 4,
        connect_time: Duration::from_millis(0),
    };
    /// The BLE 4.0 minimum: MTU 23, 7.5 ms interval.
    pub const MINIMAL: LinkModel = LinkModel {
        mtu: 23,
        connection_interval: Duration::from_micros(7500),
        packets_per_event: 4,
        connect_time: Duration::from_millis(0),
    };
}

/// Faults on the phone-to-lock direction, by packet index (0-based, counted over the
/// connection), and on the lock-to-phone direction likewise.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults {
    pub drop_writes: Vec<usize>,
    pub duplicate_writes: Vec<usize>,
    /// Holds the packet back and delivers it after the next one.
    pub reorder_writes: Vec<usize>,
    pub drop_notifications: Vec<usize>,
    /// The link drops just before this phone-to-lock packet.
    pub disconnect_before_write: Option<usize>,
    /// The link drops just before this lock-to-phone packet.
    pub disconnect_before_notification: Option<usize>,
}

struct Lock {
    factory: PeripheralFactory,
    in_range: bool,
    /// Faults for the next connection only, then cleared: a retry meets a clean link.
    faults: Faults,
}

/// Locks reachable over the in-memory link, by lock id.
#[derive(Clone)]
pub struct MemoryTransport {
    model: LinkModel,
    locks: Arc<Mutex<HashMap<String, Lock>>>,
    connections: Arc<Mutex<u64>>,
}

impl MemoryTransport {
    pub fn new(model: LinkModel) -> MemoryTransport {
        MemoryTransport {
            model,
            locks: Default::default(),
            connections: Default::default(),
        }
    }

    pub fn add_lock(&self, lock_id: &str, factory: PeripheralFactory) {
        self.locks().insert(
            lock_id.to_owned(),
            Lock {
                factory,
                in_range: true,
                faults: Faults::default(),
            },
        );
    }

    pub fn set_in_range(&self, lock_id: &str, in_range: bool) {
        if let Some(l) = self.locks().get_mut(lock_id) {
            l.in_range = in_range;
        }
    }

    /// Faults for the next connection to `lock_id`.
    pub fn inject(&self, lock_id: &str, faults: Faults) {
        if let Some(l) = self.locks().get_mut(lock_id) {
            l.faults = faults;
        }
    }

    /// Connections made so far (tests check retries with it).
    pub fn connection_count(&self) -> u64 {
        *self.connections.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn locks(&self) -> std::sync::MutexGuard<'_, HashMap<String, Lock>> {
        self.locks.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl Transport for MemoryTransport {
    async fn connect(
        &self,
        target: &LockTarget,
        timeout: Duration,
    ) -> Result<Box<dyn Connection>, BleError> {
        let found = {
            let mut locks = self.locks();
            locks
                .get_mut(&target.lock_id)
                .filter(|l| l.in_range)
                .map(|l| ((l.factory)(), std::mem::take(&mut l.faults)))
        };
        let Some((peripheral, faults)) = found else {
            tokio::time::sleep(timeout).await;
            return Err(BleError::NotInRange);
        };
        if self.model.connect_time > timeout {
            tokio::time::sleep(timeout).await;
            return Err(BleError::Timeout);
        }
        tokio::time::sleep(self.model.connect_time).await;
        *self.connections.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        let start = Instant::now();
        Ok(Box::new(MemoryConnection {
            model: self.model,
            peripheral,
            faults,
            start,
            tx_slot: Slot::default(),
            rx_slot: Slot::default(),
            inbox: VecDeque::new(),
            held: None,
            writes: 0,
            notifications: 0,
            connected: true,
        }))
    }
}

const TIMER_GRANULARITY: Duration = Duration::from_millis(1);

/// The next free packet slot of one direction: connection event number and packets used.
#[derive(Debug, Default, Clone, Copy)]
struct Slot {
    event: u64,
    used: usize,
}

struct MemoryConnection {
    model: LinkModel,
    peripheral: Box<dyn Peripheral>,
    faults: Faults,
    start: Instant,
    tx_slot: Slot,
    rx_slot: Slot,
    /// Notifications with the instant they arrive.
    inbox: VecDeque<(Instant, Vec<u8>)>,
    held: Option<Vec<u8>>,
    writes: usize,
    notifications: usize,
    connected: bool,
}

impl MemoryConnection {
    fn event_time(&self, event: u64) -> Instant {
        self.start + self.model.connection_interval * event as u32
    }

    /// The first connection event at or after now. tokio's timers fire on whole
    /// milliseconds, so a task that slept until an event 7.5 ms in wakes 0.5 ms after it;
    /// without the allowance it would miss the rest of that event's packets.
    fn current_event(&self) -> u64 {
        let elapsed = Instant::now()
            .saturating_duration_since(self.start)
            .saturating_sub(TIMER_GRANULARITY);
        elapsed
            .as_nanos()
            .div_ceil(self.model.connection_interval.as_nanos().max(1)) as u64
    }

    /// Takes the next packet slot at or after `not_before`.
    fn take(&self, slot: Slot, not_before: u64) -> (Slot, u64) {
        let mut s = slot;
        if s.event < not_before {
            s = Slot {
                event: not_before,
                used: 0,
            };
        }
        if s.used >= self.model.packets_per_event {
            s = Slot {
                event: s.event + 1,
                used: 0,
            };
        }
        let event = s.event;
        s.used += 1;
        (s, event)
    }

    fn deliver(&mut self, fragment: &[u8], event: u64) {
        let answers = self.peripheral.on_write(fragment, self.model.mtu);
        // The lock answers from the next connection event on.
        for answer in answers {
            let index = self.notifications;
            self.notifications += 1;
            if self.faults.disconnect_before_notification == Some(index) {
                self.connected = false;
                return;
            }
            let (slot, at) = self.take(self.rx_slot, event + 1);
            self.rx_slot = slot;
            if !self.faults.drop_notifications.contains(&index) {
                let when = self.event_time(at);
                self.inbox.push_back((when, answer));
            }
        }
    }
}

#[async_trait]
impl Connection for MemoryConnection {
    fn mtu(&self) -> usize {
        self.model.mtu
    }

    async fn write(&mut self, fragment: &[u8]) -> Result<(), BleError> {
        if !self.connected {
            return Err(BleError::Disconnected);
        }
        if fragment.len() > self.model.mtu - 3 {
            return Err(BleError::Other(format!(
                "a write of {} bytes exceeds MTU {} - 3",
                fragment.len(),
                self.model.mtu
            )));
        }
        let index = self.writes;
        self.writes += 1;
        if self.faults.disconnect_before_write == Some(index) {
            self.connected = false;
            return Err(BleError::Disconnected);
        }
        let (slot, event) = self.take(self.tx_slot, self.current_event());
        self.tx_slot = slot;
        tokio::time::sleep_until(self.event_time(event)).await;
        if self.faults.drop_writes.contains(&index) {
            return Ok(());
        }
        if self.faults.reorder_writes.contains(&index) && self.held.is_none() {
            self.held = Some(fragment.to_vec());
            return Ok(());
        }
        self.deliver(fragment, event);
        if let Some(held) = self.held.take() {
            self.deliver(&held, event);
        }
        if self.faults.duplicate_writes.contains(&index) {
            self.deliver(fragment, event);
        }
        Ok(())
    }

    async fn notification(&mut self) -> Result<Vec<u8>, BleError> {
        match self.inbox.pop_front() {
            Some((when, bytes)) => {
                tokio::time::sleep_until(when).await;
                Ok(bytes)
            }
            None if !self.connected => Err(BleError::Disconnected),
            // Nothing is coming on this link: wait as a real radio would, until the caller's
            // deadline cancels the wait.
            None => std::future::pending().await,
        }
    }

    async fn close(&mut self) {
        self.connected = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers each write with its reverse, split in two notifications.
    struct Echo;

    impl Peripheral for Echo {
        fn on_write(&mut self, fragment: &[u8], _mtu: usize) -> Vec<Vec<u8>> {
            let mut r = fragment.to_vec();
            r.reverse();
            let (a, b) = r.split_at(r.len() / 2);
            vec![a.to_vec(), b.to_vec()]
        }
    }

    fn transport(model: LinkModel) -> MemoryTransport {
        let t = MemoryTransport::new(model);
        t.add_lock("lock", Arc::new(|| Box::new(Echo) as Box<dyn Peripheral>));
        t
    }

    fn target() -> LockTarget {
        LockTarget {
            lock_id: "lock".into(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_and_its_answer_take_two_connection_events() {
        let t = transport(LinkModel::FAST);
        let mut c = t.connect(&target(), Duration::from_secs(1)).await.unwrap();
        let start = Instant::now();
        c.write(b"abcd").await.unwrap();
        assert_eq!(c.notification().await.unwrap(), b"dc");
        assert_eq!(c.notification().await.unwrap(), b"ba");
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(30),
            "request in event 0, answer in event 1"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn packets_beyond_the_per_event_budget_wait_for_the_next_event() {
        let t = transport(LinkModel::MINIMAL);
        let mut c = t.connect(&target(), Duration::from_secs(1)).await.unwrap();
        let start = Instant::now();
        for _ in 0..9 {
            c.write(b"x").await.unwrap();
        }
        // 9 packets at 4 per event: events 0, 1 and 2.
        assert_eq!(start.elapsed(), Duration::from_micros(15_000));
        assert!(c.write(&[0; 21]).await.is_err(), "more than MTU - 3");
    }

    #[tokio::test(start_paused = true)]
    async fn faults_drop_duplicate_reorder_and_disconnect() {
        let t = transport(LinkModel::FAST);
        t.inject(
            "lock",
            Faults {
                drop_writes: vec![0],
                duplicate_writes: vec![1],
                reorder_writes: vec![2],
                ..Default::default()
            },
        );
        let mut c = t.connect(&target(), Duration::from_secs(1)).await.unwrap();
        for w in [b"aa", b"bb", b"cc", b"dd"] {
            c.write(w).await.unwrap();
        }
        let mut got = Vec::new();
        for _ in 0..8 {
            got.push(c.notification().await.unwrap());
        }
        assert_eq!(
            got,
            [b"b", b"b", b"b", b"b", b"d", b"d", b"c", b"c"].map(|x| x.to_vec())
        );

        // Faults last one connection; a disconnect fails the write.
        t.inject(
            "lock",
            Faults {
                disconnect_before_write: Some(1),
                ..Default::default()
            },
        );
        let mut c = t.connect(&target(), Duration::from_secs(1)).await.unwrap();
        c.write(b"ab").await.unwrap();
        assert_eq!(c.write(b"cd").await, Err(BleError::Disconnected));
        let mut c = t.connect(&target(), Duration::from_secs(1)).await.unwrap();
        c.write(b"ab").await.unwrap();
        c.write(b"cd").await.unwrap();
        assert_eq!(t.connection_count(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_lock_out_of_range_times_out() {
        let t = transport(LinkModel::FAST);
        t.set_in_range("lock", false);
        let start = Instant::now();
        assert_eq!(
            t.connect(&target(), Duration::from_secs(2)).await.err(),
            Some(BleError::NotInRange)
        );
        assert_eq!(start.elapsed(), Duration::from_secs(2));
        assert_eq!(
            t.connect(
                &LockTarget {
                    lock_id: "other".into()
                },
                Duration::from_millis(1)
            )
            .await
            .err(),
            Some(BleError::NotInRange)
        );
    }
}
