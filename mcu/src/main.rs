//! A minimal lock image built from door-protocol, for scripts/bench-mcu: it replays the phases
//! that `cargo run -p door-protocol --example mcu_inputs` wrote (BLE chunks a phone sends, and
//! the reply the lock gave on the host) through [`LockSession`], as firmware would, and tells
//! the emulator where each phase starts and ends, its heap use and whether the reply matched.
//!
//! No board: the inputs sit at [`inputs::BASE`] and the reports go to [`report`]'s registers,
//! both mapped by the emulator. Everything else is what a lock would link.
#![no_std]
#![no_main]

mod heap;
mod inputs;
mod primitives;
mod report;
mod rng;

use cortex_m_rt::entry;
use door_protocol::{
    Id, IssuerKeys, IssuerPublicKey, LockConfig, LockKey, LockReply, LockSession, LockState,
    UnlockResult,
};
use sha2::{Digest, Sha256};

/// Kept free for the stack at the top of RAM; the heap takes what lies between .bss and it.
const STACK_RESERVE: usize = 64 * 1024;
const RAM_END: usize = 0x2008_0000;

#[entry]
fn main() -> ! {
    let heap_start = cortex_m_rt::heap_start() as usize;
    // SAFETY: called once, before any allocation; the range is RAM no section uses (.bss
    // ends at heap_start) below the stack's reserve.
    unsafe { heap::HEAP.init(heap_start, RAM_END - STACK_RESERVE - heap_start) };
    report::heap_end(RAM_END - STACK_RESERVE);

    let mut input = inputs::Reader::new();
    input.magic();
    let key = LockKey::from_bytes(&input.array()).expect("lock scalar");
    let lock_id = Id(input.array());
    let door_id = Id(input.array());
    let issuer = IssuerPublicKey::from_sec1(&input.array::<33>()).expect("issuer key");
    let mut config = LockConfig::new(lock_id, door_id, key, IssuerKeys::single(issuer));
    config.clock_tolerance = input.u32();
    let mut rng = rng::CounterRng::new(input.array());
    let mut state = LockState::default();

    let phases = input.u32();
    for phase in 0..phases {
        let name = input.bytes();
        let now = input.i64();
        let want_decision = input.u8();
        let want_kind = input.u8();
        let want_body = input.bytes();
        let chunks = input.u32();

        report::phase_start(phase, name);
        let mut session = LockSession::new();
        let mut last: Option<LockReply> = None;
        for _ in 0..chunks {
            let chunk = input.bytes();
            if let Some(reply) = session.on_fragment(&config, &mut state, chunk, now, &mut rng) {
                last = Some(reply);
            }
        }
        report::phase_end(phase);

        let matched = last.is_some_and(|reply| {
            let decision = match reply.decision.map(|d| d.result) {
                None => 0,
                Some(UnlockResult::Granted) => 1,
                Some(UnlockResult::Denied(_)) => 2,
            };
            decision == want_decision
                && reply.message.kind == want_kind
                && reply.message.body == want_body
        });
        report::phase_matched(phase, matched);
    }
    let want_audit: [u8; 32] = input.array();
    report::phase_start(phases, b"audit records signed as on host");
    let audit = audit_digest(&state);
    report::phase_end(phases);
    report::phase_matched(phases, audit == want_audit);

    primitives::measure(&config, phases + 1);
    report::done()
}

/// SHA-256 over the signed audit records, each after its length: as
/// protocol/examples/mcu_inputs.rs computes it on the host.
fn audit_digest(state: &LockState) -> [u8; 32] {
    let mut hash = Sha256::new();
    for record in state.audit.records() {
        hash.update((record.len() as u32).to_le_bytes());
        hash.update(record);
    }
    hash.finalize().into()
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    report::panicked(info.location().map_or(0, |l| l.line()))
}
