//! Audit records: `verify_audit` as the phone and server check them, `read_own` and
//! `AuditLog::restore` as the lock reloads its own.
//!
//! Input: a mode byte, then the signed record (even) or a payload that the harness signs with
//! the lock's key (odd), to reach the payload decoder past the signature.
#![no_main]

use std::sync::LazyLock;

use door_protocol::audit::AUDIT_CONTENT_TYPE;
use door_protocol::{cose, verify_audit, AuditLog, AuditRecord, IssuerKey, IssuerKeys};
use door_protocol_fuzz::{CONFIG, LOCK_SCALAR};
use libfuzzer_sys::fuzz_target;

// The lock signs its records under the issuers' COSE profile, so its key can play an issuer's
// to sign payloads and to open frames.
static LOCK_AS_ISSUER: LazyLock<IssuerKey> =
    LazyLock::new(|| IssuerKey::from_bytes(&LOCK_SCALAR).expect("fixed scalar is valid"));
static LOCK_KEYS: LazyLock<IssuerKeys> =
    LazyLock::new(|| IssuerKeys::single(*LOCK_AS_ISSUER.verifying()));

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let signed;
    let bytes = if mode % 2 == 0 {
        rest
    } else {
        let Ok(s) = cose::sign1(&LOCK_AS_ISSUER, AUDIT_CONTENT_TYPE, rest.to_vec()) else {
            return;
        };
        signed = s;
        &signed[..]
    };
    // The unverified read the lock uses on its own records must be as strict as the verified
    // one, bar the signature.
    let own = AuditRecord::read_own(bytes);
    let _ = AuditLog::restore(u64::MAX, [bytes.to_vec()]);
    let Ok(record) = verify_audit(bytes, CONFIG.key.public()) else {
        return;
    };
    assert_eq!(own, Ok(record));
    let payload = cose::open1(bytes, AUDIT_CONTENT_TYPE, &LOCK_KEYS)
        .expect("verify_audit opened it")
        .payload;
    assert_eq!(record.to_cbor(), payload);
    if let Some(next) = record.seq.checked_add(1) {
        let log = AuditLog::restore(next, [bytes.to_vec()]).expect("one record below next_seq");
        assert_eq!(log.records().collect::<Vec<_>>(), [bytes]);
    }
});
