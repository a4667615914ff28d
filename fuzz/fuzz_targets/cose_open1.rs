//! Our COSE_Sign1 profile on its own: `cose::open1` under each content type, and `sign1`
//! then `open1` returning exactly the payload signed, whatever its bytes.
//!
//! Input: a content-type selector byte, then the frame to open (and payload to sign).
#![no_main]

use door_protocol::access::ACCESS_CONTENT_TYPE;
use door_protocol::audit::AUDIT_CONTENT_TYPE;
use door_protocol::cose;
use door_protocol::revocation::REVOCATION_CONTENT_TYPE;
use door_protocol::sync::time::TIME_CONTENT_TYPE;
use door_protocol::sync::SYNC_CONTENT_TYPE;
use door_protocol_fuzz::{CONFIG, ISSUER};
use libfuzzer_sys::fuzz_target;

const CONTENT_TYPES: [&str; 5] = [
    ACCESS_CONTENT_TYPE,
    REVOCATION_CONTENT_TYPE,
    SYNC_CONTENT_TYPE,
    TIME_CONTENT_TYPE,
    AUDIT_CONTENT_TYPE,
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let i = usize::from(selector) % CONTENT_TYPES.len();
    let (content_type, other) = (
        CONTENT_TYPES[i],
        CONTENT_TYPES[(i + 1) % CONTENT_TYPES.len()],
    );
    let keys = &CONFIG.issuer_keys;
    if cose::open1(rest, content_type, keys).is_ok() {
        assert!(
            cose::open1(rest, other, keys).is_err(),
            "one frame, one type"
        );
    }
    if let Ok(frame) = cose::sign1(&ISSUER, content_type, rest.to_vec()) {
        let opened = cose::open1(&frame, content_type, keys).expect("what we sign opens");
        assert_eq!(opened.payload, rest);
        assert_eq!(opened.kid, ISSUER.kid());
    }
});
