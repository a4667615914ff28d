//! The image's allocator: embedded-alloc's linked-list heap, counted, so the emulator can read
//! how much each phase held at most (its high-water mark above what it started with).

use core::alloc::{GlobalAlloc, Layout};
use core::sync::atomic::{AtomicUsize, Ordering};

use embedded_alloc::LlffHeap;

#[global_allocator]
pub static HEAP: CountingHeap = CountingHeap {
    inner: LlffHeap::empty(),
    in_use: AtomicUsize::new(0),
    peak: AtomicUsize::new(0),
};

pub struct CountingHeap {
    inner: LlffHeap,
    in_use: AtomicUsize,
    peak: AtomicUsize,
}

impl CountingHeap {
    /// # Safety
    /// Once, before the first allocation, with `size` bytes at `start` used by nothing else.
    pub unsafe fn init(&self, start: usize, size: usize) {
        // SAFETY: as this function's contract.
        unsafe { self.inner.init(start, size) }
    }

    /// Bytes allocated and not yet freed.
    pub fn in_use(&self) -> usize {
        self.in_use.load(Ordering::Relaxed)
    }

    /// The most [`CountingHeap::in_use`] reached since the last [`CountingHeap::reset_peak`].
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    pub fn reset_peak(&self) {
        self.peak.store(self.in_use(), Ordering::Relaxed);
    }
}

// SAFETY: delegates to LlffHeap; the counters only observe. One core, no interrupts use the
// heap, so the load-then-store of the peak cannot race.
unsafe impl GlobalAlloc for CountingHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let ptr = unsafe { self.inner.alloc(layout) };
        if !ptr.is_null() {
            let now = self.in_use.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            if now > self.peak.load(Ordering::Relaxed) {
                self.peak.store(now, Ordering::Relaxed);
            }
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { self.inner.dealloc(ptr, layout) };
        self.in_use.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}
