//! Counts the core's objects that a foreign language currently holds, so the Kotlin and Swift
//! suites can prove that creating and releasing objects leaks nothing across the boundary.

use std::sync::atomic::{AtomicU64, Ordering};

static LIVE: AtomicU64 = AtomicU64::new(0);

/// Embedded in every exported object: counts up when made, down when dropped.
#[derive(Debug)]
pub(crate) struct LiveToken(());

impl LiveToken {
    pub(crate) fn new() -> LiveToken {
        LIVE.fetch_add(1, Ordering::Relaxed);
        LiveToken(())
    }
}

impl Drop for LiveToken {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::Relaxed);
    }
}

pub(crate) fn live_objects() -> u64 {
    LIVE.load(Ordering::Relaxed)
}
