//! Audit records: `verify_audit` as the phone and server check them, `read_own` and
//! `AuditLog::restore` as the lock reloads its own.
//!
//! Input: a mode byte, then the signed record (even) or a payload that the harness signs with
//! the lock's key (odd), so that the fuzzer reaches the payload decoder.
#![no_main]

use std::sync::LazyLock;

use door_protocol::audit::AUDIT_CONTENT_TYPE;
use door_protocol::{verify_audit, AuditEpoch, AuditLog, AuditRecord, IssuerKey};
use door_protocol_fuzz::{document, CONFIG, LOCK_SCALAR};
use libfuzzer_sys::fuzz_target;

// A lock signs its records under the issuers' COSE profile, so its key can sign as one.
static LOCK_AS_ISSUER: LazyLock<IssuerKey> =
    LazyLock::new(|| IssuerKey::from_bytes(&LOCK_SCALAR).expect("fixed scalar is valid"));

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Some(input) = document(mode, rest, &LOCK_AS_ISSUER, AUDIT_CONTENT_TYPE) else {
        return;
    };
    // The unverified read the lock uses on its own records must be as strict as the verified
    // one, bar the signature.
    let own = AuditRecord::read_own(&input.bytes);
    let _ = AuditLog::restore(AuditEpoch::default(), u64::MAX, [input.bytes.to_vec()]);
    let Ok(record) = verify_audit(&input.bytes, CONFIG.key.public()) else {
        return;
    };
    assert_eq!(own, Ok(record));
    if let Some(payload) = input.payload {
        assert_eq!(record.to_cbor(), payload);
    }
    if let Some(next) = record.seq.checked_add(1) {
        let log = AuditLog::restore(record.epoch, next, [input.bytes.to_vec()])
            .expect("one record of the epoch below next_seq");
        assert_eq!(log.records().collect::<Vec<_>>(), [&input.bytes[..]]);
    }
});
