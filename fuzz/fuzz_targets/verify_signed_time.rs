//! Issuer-signed time: `verify_signed_time`, then a lock taking it
//! (`LockState::accept_signed_time`, the clock-correction rules of `ClockState::accept`).
//!
//! Input: a mode byte, the hardware clock (i64), an optional phone time (bool, i64), then the
//! signed time (even mode) or a payload that the harness signs with the trusted issuer (odd),
//! so that the fuzzer reaches the payload decoder.
#![no_main]

use arbitrary::Unstructured;
use door_protocol::sync::time::TIME_CONTENT_TYPE;
use door_protocol::sync::TimeUpdate;
use door_protocol::{verify_signed_time, LockState, SyncError, UnixTime};
use door_protocol_fuzz::{document, CONFIG, ISSUER};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let (Ok(mode), Ok(clock), Ok(phone_time)) = (
        u.arbitrary::<u8>(),
        u.arbitrary::<UnixTime>(),
        u.arbitrary::<Option<UnixTime>>(),
    ) else {
        return;
    };
    let Some(input) = document(mode, u.take_rest(), &ISSUER, TIME_CONTENT_TYPE) else {
        return;
    };
    let verified = verify_signed_time(&input.bytes, &CONFIG.issuer_keys);
    let mut state = LockState::default();
    let taken = state.accept_signed_time(&CONFIG, &input.bytes, clock, phone_time);
    let Ok(time) = verified else {
        assert!(taken.is_err(), "a lock takes only what verifies");
        return;
    };
    if let Some(payload) = input.payload {
        assert_eq!(time.to_cbor(), payload);
    }
    match time.lock_id {
        Some(id) if id != CONFIG.lock_id => {
            assert!(matches!(taken, Err(SyncError::Foreign { .. })));
        }
        // A new lock takes only a time bound to its installation (commissioning), and nothing
        // else changes it.
        _ if time.lock_id.is_none() || time.epoch != Some(state.audit.epoch()) => {
            assert_eq!(taken, Ok(TimeUpdate::Unbound));
            assert_eq!(state.clock, LockState::default().clock);
        }
        _ => {
            assert!(matches!(taken, Ok(TimeUpdate::Taken { .. })));
            // The same statement twice moves nothing: it is not newer than itself.
            let again = state.accept_signed_time(&CONFIG, &input.bytes, clock, phone_time);
            assert!(matches!(again, Ok(TimeUpdate::Stale { .. })));
        }
    }
});
