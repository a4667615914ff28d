//! Access documents as a lock reads them: `decode_access` (COSE frame, issuer signature,
//! payload), then the door, validity and schedule checks on whatever verifies.
//!
//! Input: a mode byte, then the signed document (even) or a payload that the harness signs
//! with the trusted issuer (odd), so that the fuzzer reaches the payload decoder.
#![no_main]

use door_protocol::access::ACCESS_CONTENT_TYPE;
use door_protocol::{decode_access, RevocationList};
use door_protocol_fuzz::{document, CONFIG, ISSUER, NOW};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Some(input) = document(mode, rest, &ISSUER, ACCESS_CONTENT_TYPE) else {
        return;
    };
    let Ok(verified) = decode_access(&input.bytes, &CONFIG.issuer_keys) else {
        return;
    };
    let doc = verified.document();
    // A payload that verifies is the one encoding of the document it decoded to.
    if let Some(payload) = input.payload {
        assert_eq!(doc.to_cbor().as_deref(), Ok(payload));
    }
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
            // Outside the validity period nothing opens, whatever the schedule says.
            if checked.is_ok() || decision.is_some_and(|d| d.is_allowed()) {
                assert!(t >= doc.not_before && t < doc.not_after);
            }
        }
    }
});
