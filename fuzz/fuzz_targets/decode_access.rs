//! Access documents as a lock reads them: `decode_access` (COSE frame, issuer signature,
//! payload), then the door, validity and schedule checks on whatever verifies.
//!
//! Input: a mode byte, then the signed document (even) or a payload that the harness signs
//! with the trusted issuer (odd): the fuzzer cannot forge a signature, and without this the
//! payload decoder behind it would only ever see the seeds.
#![no_main]

use door_protocol::access::ACCESS_CONTENT_TYPE;
use door_protocol::{cose, decode_access, RevocationList};
use door_protocol_fuzz::{issuer, CONFIG, NOW};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let signed;
    let bytes = if mode % 2 == 0 {
        rest
    } else {
        let Ok(s) = cose::sign1(&issuer(), ACCESS_CONTENT_TYPE, rest.to_vec()) else {
            return;
        };
        signed = s;
        &signed[..]
    };
    let keys = &CONFIG.issuer_keys;
    let Ok(verified) = decode_access(bytes, keys) else {
        return;
    };
    // What verifies is valid, and the one encoding of what it decoded to.
    let doc = verified.document();
    let payload = cose::open1(bytes, ACCESS_CONTENT_TYPE, keys)
        .expect("decode_access opened it")
        .payload;
    assert_eq!(doc.to_cbor().as_deref(), Ok(payload));
    let revocations = RevocationList::new();
    let times = [
        i64::MIN,
        doc.not_before.saturating_sub(1),
        doc.not_before,
        NOW,
        doc.not_after.saturating_sub(1),
        doc.not_after,
        i64::MAX,
    ];
    for t in times {
        for grant in &doc.grants {
            let checked = verified.check(grant.door_id, t, &revocations);
            let decision = verified.decision(grant.door_id, t);
            assert!(decision.is_some(), "a granted door has a decision");
            // Inside the validity period the only question left is the schedule.
            if checked.is_ok() && decision.is_some_and(|d| d.is_allowed()) {
                assert!(t >= doc.not_before && t < doc.not_after);
            }
        }
    }
});
