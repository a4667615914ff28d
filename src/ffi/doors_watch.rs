//! The doors stream (OpenDOOR `listenForLocks()`): a listener gets the cached doors at once,
//! then the doors again after every change the core reports (a refresh, a sign-in or
//! sign-out, a Door Sync that changes what the phone carries for a lock). Kotlin's `doors`
//! Flow and Swift's `doors` AsyncStream are built on [`DoorClient::watch_doors`].
//!
//! [`DoorClient::watch_doors`]: super::DoorClient::watch_doors

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use super::door::{doors_of, Door};
use super::DoorError;
use crate::client::Core;
use crate::live::LiveToken;

/// Receives the doors on a core thread (the first time on the caller's); hand them to the UI
/// thread yourself. It may cancel its watch from here, but must not start another.
#[uniffi::export(foreign)]
pub trait DoorsListener: Send + Sync {
    fn on_doors(&self, doors: Vec<Door>);
}

/// The doors listeners of one client.
#[derive(Default)]
pub(crate) struct DoorWatchers {
    core: OnceLock<Weak<Core>>,
    next_id: AtomicU64,
    listeners: Mutex<Vec<(u64, Arc<dyn DoorsListener>)>>,
    /// Held while doors are read and delivered, so that every listener gets the lists in the
    /// order they were read (the cached list first, never after a newer one). Not held by
    /// `cancel`, which a listener may call from its callback.
    delivering: Mutex<()>,
}

impl DoorWatchers {
    /// The client's core, once it exists (the watchers are made before it, for its events).
    pub(crate) fn attach(&self, core: &Arc<Core>) {
        let _ = self.core.set(Arc::downgrade(core));
    }

    fn add(&self, listener: Arc<dyn DoorsListener>) -> Result<u64, DoorError> {
        let _order = lock(&self.delivering);
        let doors = self.read()?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        lock(&self.listeners).push((id, listener.clone()));
        listener.on_doors(doors);
        Ok(id)
    }

    fn remove(&self, id: u64) {
        lock(&self.listeners).retain(|(i, _)| *i != id);
    }

    /// The doors changed: every listener gets them. Reads nothing when no one listens.
    pub(crate) fn changed(&self) {
        let _order = lock(&self.delivering);
        let listeners = lock(&self.listeners).clone();
        if listeners.is_empty() {
            return;
        }
        match self.read() {
            Ok(doors) => {
                for (_, l) in &listeners {
                    l.on_doors(doors.clone());
                }
            }
            Err(e) => tracing::warn!(error = %e, "doors not read for their listeners"),
        }
    }

    fn read(&self) -> Result<Vec<Door>, DoorError> {
        let core = self
            .core
            .get()
            .and_then(Weak::upgrade)
            .ok_or_else(|| DoorError::invalid("client", "is closed"))?;
        doors_of(&core, core.doors()?)
    }
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
