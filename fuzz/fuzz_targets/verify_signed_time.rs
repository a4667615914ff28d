//! Issuer-signed time: `verify_signed_time`, then a lock taking it
//! (`LockState::accept_signed_time`, the clock-correction rules of `ClockState::accept`).
//!
//! Input: a mode byte, the hardware clock (i64), an optional phone time (bool, i64), then the
//! signed time (even mode) or a payload the harness signs with the trusted issuer (odd), to
//! get past the signature.
#![no_main]

use arbitrary::Unstructured;
use door_protocol::sync::time::TIME_CONTENT_TYPE;
use door_protocol::sync::TimeUpdate;
use door_protocol::{cose, verify_signed_time, LockState, SyncError, UnixTime};
use door_protocol_fuzz::{issuer, CONFIG};
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
    let rest = u.take_rest();
    let signed;
    let bytes = if mode % 2 == 0 {
        rest
    } else {
        let Ok(s) = cose::sign1(&issuer(), TIME_CONTENT_TYPE, rest.to_vec()) else {
            return;
        };
        signed = s;
        &signed[..]
    };
    let verified = verify_signed_time(bytes, &CONFIG.issuer_keys);
    let mut state = LockState::default();
    let taken = state.accept_signed_time(&CONFIG, bytes, clock, phone_time);
    let Ok(time) = verified else {
        assert!(taken.is_err(), "a lock takes only what verifies");
        return;
    };
    let payload = cose::open1(bytes, TIME_CONTENT_TYPE, &CONFIG.issuer_keys)
        .expect("verify_signed_time opened it")
        .payload;
    assert_eq!(time.to_cbor(), payload);
    match time.lock_id {
        Some(id) if id != CONFIG.lock_id => {
            assert!(matches!(taken, Err(SyncError::Foreign { .. })));
        }
        _ => {
            assert!(matches!(taken, Ok(TimeUpdate::Taken { .. })));
            // The same statement twice moves nothing: it is not newer than itself.
            let again = state.accept_signed_time(&CONFIG, bytes, clock, phone_time);
            assert!(matches!(again, Ok(TimeUpdate::Stale { .. })));
        }
    }
});
