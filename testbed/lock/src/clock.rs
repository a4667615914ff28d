//! The lock's clock: real or injected time, plus a drift that tests can set, as a lock's
//! crystal drifts from true time between syncs.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use door_protocol::UnixTime;

#[derive(Debug)]
struct Reading {
    /// `None`: the system clock; `Some`: a fixed instant that moves only when told.
    injected: Option<UnixTime>,
    drift: i64,
}

/// A shared handle: clones read and steer the same clock, so a test keeps one while the lock
/// holds another.
#[derive(Clone, Debug)]
pub struct LockClock {
    inner: Arc<Mutex<Reading>>,
}

impl LockClock {
    /// The system clock, no drift.
    pub fn system() -> LockClock {
        LockClock::with(None)
    }

    /// Time stands at `t` until moved with [`LockClock::set_time`] or [`LockClock::advance`].
    pub fn fixed(t: UnixTime) -> LockClock {
        LockClock::with(Some(t))
    }

    fn with(injected: Option<UnixTime>) -> LockClock {
        LockClock {
            inner: Arc::new(Mutex::new(Reading { injected, drift: 0 })),
        }
    }

    fn reading(&self) -> MutexGuard<'_, Reading> {
        // The guarded values are plain integers, valid whatever a panicking holder left.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The lock's time: the true (or injected) time plus the drift.
    pub fn now(&self) -> UnixTime {
        let r = self.reading();
        let base = r.injected.unwrap_or_else(system_now);
        base.saturating_add(r.drift)
    }

    /// Injects the true time (the drift still applies on top).
    pub fn set_time(&self, t: UnixTime) {
        self.reading().injected = Some(t);
    }

    /// Moves injected time forward (or the system clock's reading, which then stays put).
    pub fn advance(&self, seconds: i64) {
        let mut r = self.reading();
        let base = r.injected.unwrap_or_else(system_now);
        r.injected = Some(base.saturating_add(seconds));
    }

    /// How far the lock's clock is off true time, in seconds (positive: ahead).
    pub fn set_drift(&self, seconds: i64) {
        self.reading().drift = seconds;
    }

    pub fn drift(&self) -> i64 {
        self.reading().drift
    }
}

fn system_now() -> UnixTime {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drift_and_injection() {
        let clock = LockClock::fixed(1000);
        let handle = clock.clone();
        handle.set_drift(-30);
        assert_eq!(clock.now(), 970);
        handle.advance(10);
        assert_eq!(clock.now(), 980);
        handle.set_time(5000);
        assert_eq!(clock.now(), 4970);
        assert_eq!(clock.drift(), -30);
        let real = LockClock::system();
        assert!(real.now() > 1_700_000_000);
    }
}
