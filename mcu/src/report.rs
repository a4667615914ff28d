//! Registers only the emulator maps (scripts/bench-mcu): the image writes a word to one, the
//! emulator notes the instruction count, reads the heap figures and (at a phase's start)
//! paints the free stack.

use core::ptr::write_volatile;

use crate::heap::HEAP;

const BASE: usize = 0x4000_0000;
const PHASE_START: usize = 0x00;
const PHASE_END: usize = 0x04;
const HEAP_AT_START: usize = 0x08;
const HEAP_PEAK: usize = 0x0c;
const HEAP_AT_END: usize = 0x10;
const MATCHED: usize = 0x14;
const HEAP_END: usize = 0x18;
const NAME_ADDRESS: usize = 0x1c;
const NAME_LEN: usize = 0x28;
const DONE: usize = 0x20;
const PANIC_LINE: usize = 0x24;

fn write(register: usize, value: u32) {
    // SAFETY: the emulator maps this page as writable device memory; nothing else uses it.
    unsafe { write_volatile((BASE + register) as *mut u32, value) }
}

pub fn heap_end(address: usize) {
    write(HEAP_END, address as u32);
}

/// `name` stays where it is (the inputs, or the image's flash) for the emulator to read.
pub fn phase_start(phase: u32, name: &'static [u8]) {
    write(NAME_ADDRESS, name.as_ptr() as u32);
    write(NAME_LEN, name.len() as u32);
    HEAP.reset_peak();
    write(HEAP_AT_START, HEAP.in_use() as u32);
    write(PHASE_START, phase);
}

pub fn phase_end(phase: u32) {
    write(PHASE_END, phase);
    write(HEAP_PEAK, HEAP.peak() as u32);
    write(HEAP_AT_END, HEAP.in_use() as u32);
}

pub fn phase_matched(phase: u32, matched: bool) {
    write(MATCHED, (phase << 1) | u32::from(matched));
}

pub fn done() -> ! {
    write(DONE, 0);
    loop {
        cortex_m::asm::wfi();
    }
}

pub fn panicked(line: u32) -> ! {
    write(PANIC_LINE, line);
    loop {
        cortex_m::asm::wfi();
    }
}
