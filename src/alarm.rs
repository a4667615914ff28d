//! An alarm: one thread that calls `ring` when the time set last comes. Setting it again
//! replaces the time; the thread exists only while a time is set, and `stop` ends it for good.
//! The doors stream uses it to deliver the doors again when a door's decision changes with
//! the hour (`ffi::doors_watch`).

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

pub(crate) struct Alarm {
    state: Mutex<State>,
    wake: Condvar,
    ring: Box<dyn Fn() + Send + Sync>,
}

#[derive(Default)]
struct State {
    due: Option<Instant>,
    thread: bool,
    stopped: bool,
}

impl Alarm {
    pub(crate) fn new(ring: impl Fn() + Send + Sync + 'static) -> Arc<Alarm> {
        Arc::new(Alarm {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            ring: Box::new(ring),
        })
    }

    /// Rings once at `due` (not at all for `None`), instead of the time set before.
    pub(crate) fn set(self: &Arc<Self>, due: Option<Instant>) {
        let mut s = self.lock();
        if s.stopped {
            return;
        }
        s.due = due;
        if due.is_some() && !s.thread {
            s.thread = true;
            let alarm = self.clone();
            // A thread of its own: the doors stream is watched from foreign threads with no
            // async runtime, and the wait may be hours long.
            std::thread::Builder::new()
                .name("door-core alarm".into())
                .spawn(move || alarm.run())
                .map_err(|e| tracing::warn!(error = %e, "alarm thread not started"))
                .ok();
        }
        self.wake.notify_all();
    }

    /// Never rings again; the thread ends.
    pub(crate) fn stop(&self) {
        self.lock().stopped = true;
        self.wake.notify_all();
    }

    fn run(self: Arc<Self>) {
        let mut s = self.lock();
        while let (false, Some(due)) = (s.stopped, s.due) {
            let now = Instant::now();
            if now < due {
                s = self
                    .wake
                    .wait_timeout(s, due - now)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
                continue;
            }
            s.due = None;
            drop(s);
            (self.ring)();
            s = self.lock();
        }
        s.thread = false;
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    fn counting() -> (Arc<Alarm>, mpsc::Receiver<()>) {
        let (tx, rx) = mpsc::channel();
        let tx = Mutex::new(tx);
        let alarm = Alarm::new(move || {
            let _ = tx.lock().unwrap().send(());
        });
        (alarm, rx)
    }

    #[test]
    fn it_rings_once_at_the_time_set_last() {
        let (alarm, rang) = counting();
        let start = Instant::now();
        alarm.set(Some(start + Duration::from_secs(3600)));
        alarm.set(Some(start + Duration::from_millis(20)));
        rang.recv_timeout(Duration::from_secs(10)).expect("it rang");
        assert!(start.elapsed() >= Duration::from_millis(20));
        assert!(
            rang.recv_timeout(Duration::from_millis(100)).is_err(),
            "it rang twice"
        );
        // Set again after ringing: a new thread rings again.
        alarm.set(Some(Instant::now()));
        rang.recv_timeout(Duration::from_secs(10))
            .expect("it rang again");
    }

    #[test]
    fn cleared_or_stopped_it_does_not_ring() {
        let (alarm, rang) = counting();
        alarm.set(Some(Instant::now() + Duration::from_millis(30)));
        alarm.set(None);
        assert!(rang.recv_timeout(Duration::from_millis(150)).is_err());
        alarm.set(Some(Instant::now() + Duration::from_millis(30)));
        alarm.stop();
        alarm.set(Some(Instant::now()));
        assert!(rang.recv_timeout(Duration::from_millis(150)).is_err());
    }
}
