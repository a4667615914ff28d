//! The strict deterministic CBOR reader behind every payload, through each public `from_cbor`
//! (access, revocation, audit, signed time): whatever one accepts must be the unique encoding
//! of what it returned, so no two byte strings decode to the same signed value.
#![no_main]

use door_protocol::sync::SignedTime;
use door_protocol::{AccessDocument, AuditRecord, RevocationDocument};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(doc) = AccessDocument::from_cbor(data) {
        assert_eq!(doc.to_cbor().as_deref(), Ok(data));
    }
    if let Ok(doc) = RevocationDocument::from_cbor(data) {
        assert_eq!(doc.to_cbor().as_deref(), Ok(data));
    }
    if let Ok(record) = AuditRecord::from_cbor(data) {
        assert_eq!(record.to_cbor(), data);
    }
    if let Ok(time) = SignedTime::from_cbor(data) {
        assert_eq!(time.to_cbor(), data);
    }
});
