//! The doors stream (OpenDOOR `listenForLocks()`): a listener gets the cached doors at once,
//! then the doors again after every change the core reports (a refresh, a sign-in or
//! sign-out, a Door Sync that changes what the phone carries for a lock) and when a door's
//! decision changes with the time (the Pool opens at 09:00: the earliest `next_change` sets an
//! [`Alarm`]). Kotlin's `doors` Flow and Swift's `doors` AsyncStream are built on
//! [`DoorClient::watch_doors`].
//!
//! [`DoorClient::watch_doors`]: super::DoorClient::watch_doors

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::door::{doors_of, Door};
use super::DoorError;
use crate::alarm::Alarm;
use crate::client::Core;
use crate::live::LiveToken;
use door_protocol::UnixTime;

/// The longest the stream waits for a door's next change before looking again: the device's
/// clock may have been moved in between.
const MAX_WAIT: Duration = Duration::from_secs(15 * 60);

/// Receives the doors on a core thread (the first time on the caller's); hand them to the UI
/// thread yourself. It may cancel its watch from here, but must not start another.
#[uniffi::export(foreign)]
pub trait DoorsListener: Send + Sync {
    fn on_doors(&self, doors: Vec<Door>);
}

/// The doors listeners of one client.
pub(crate) struct DoorWatchers {
    core: OnceLock<Weak<Core>>,
    next_id: AtomicU64,
    listeners: Mutex<Vec<(u64, Arc<dyn DoorsListener>)>>,
    /// Held while doors are read and delivered, so that every listener gets the lists in the
    /// order they were read (the cached list first, never after a newer one). Not held by
    /// `cancel`, which a listener may call from its callback.
    delivering: Mutex<Option<Vec<Door>>>,
    /// Rings when the earliest door's decision changes.
    alarm: Arc<Alarm>,
}

impl DoorWatchers {
    pub(crate) fn new() -> Arc<DoorWatchers> {
        Arc::new_cyclic(|me: &Weak<DoorWatchers>| {
            let me = me.clone();
            DoorWatchers {
                core: OnceLock::new(),
                next_id: AtomicU64::new(0),
                listeners: Mutex::new(Vec::new()),
                delivering: Mutex::new(None),
                alarm: Alarm::new(move || {
                    if let Some(w) = me.upgrade() {
                        w.time_passed();
                    }
                }),
            }
        })
    }

    /// The client is gone: no more wake-ups.
    pub(crate) fn close(&self) {
        self.alarm.stop();
    }

    /// The client's core, once it exists (the watchers are made before it, for its events).
    pub(crate) fn attach(&self, core: &Arc<Core>) {
        let _ = self.core.set(Arc::downgrade(core));
    }

    fn add(&self, listener: Arc<dyn DoorsListener>) -> Result<u64, DoorError> {
        let mut last = lock(&self.delivering);
        let (core, doors) = self.read()?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        lock(&self.listeners).push((id, listener.clone()));
        listener.on_doors(doors.clone());
        self.alarm.set(next_change(&doors, core.now()));
        *last = Some(doors);
        Ok(id)
    }

    fn remove(&self, id: u64) {
        lock(&self.listeners).retain(|(i, _)| *i != id);
    }

    /// The doors changed: every listener gets them. Reads nothing when no one listens.
    pub(crate) fn changed(&self) {
        self.deliver(true);
    }

    /// The alarm rang: a door's decision may have changed with the time. The listeners get
    /// the doors if they differ from the last ones they got.
    fn time_passed(&self) {
        self.deliver(false);
    }

    fn deliver(&self, always: bool) {
        let mut last = lock(&self.delivering);
        let listeners = lock(&self.listeners).clone();
        if listeners.is_empty() {
            return;
        }
        match self.read() {
            Ok((core, doors)) => {
                if always || last.as_ref() != Some(&doors) {
                    for (_, l) in &listeners {
                        l.on_doors(doors.clone());
                    }
                }
                self.alarm.set(next_change(&doors, core.now()));
                *last = Some(doors);
            }
            Err(e) => tracing::warn!(error = %e, "doors not read for their listeners"),
        }
    }

    fn read(&self) -> Result<(Arc<Core>, Vec<Door>), DoorError> {
        let core = self
            .core
            .get()
            .and_then(Weak::upgrade)
            .ok_or_else(|| DoorError::invalid("client", "is closed"))?;
        let doors = doors_of(&core, core.doors()?)?;
        Ok((core, doors))
    }
}

/// When to look at the doors again: at the earliest door's next change by the core's clock
/// `now` (at once if it is due), but within [`MAX_WAIT`]; never when no door changes.
fn next_change(doors: &[Door], now: UnixTime) -> Option<Instant> {
    let unix = |t: SystemTime| {
        t.duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    };
    let earliest = doors.iter().filter_map(|d| d.next_change).map(unix).min()?;
    // At least a second: decisions are by the second, and a due change read back unchanged
    // must not make the alarm ring in a loop.
    let wait = Duration::from_secs(earliest.saturating_sub(now).max(1) as u64);
    Some(Instant::now() + wait.min(MAX_WAIT))
}

/// One listener's subscription: `cancel()` (or dropping it) ends the deliveries.
#[derive(uniffi::Object)]
pub struct DoorsWatch {
    watchers: Weak<DoorWatchers>,
    id: u64,
    _live: LiveToken,
}

impl DoorsWatch {
    pub(crate) fn start(
        watchers: &Arc<DoorWatchers>,
        listener: Arc<dyn DoorsListener>,
    ) -> Result<Arc<DoorsWatch>, DoorError> {
        let id = watchers.add(listener)?;
        Ok(Arc::new(DoorsWatch {
            watchers: Arc::downgrade(watchers),
            id,
            _live: LiveToken::new(),
        }))
    }
}

#[uniffi::export]
impl DoorsWatch {
    /// Stops the deliveries; a delivery under way when this is called may still arrive.
    pub fn cancel(&self) {
        if let Some(w) = self.watchers.upgrade() {
            w.remove(self.id);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Drop for DoorsWatch {
    fn drop(&mut self) {
        self.cancel();
    }
}
