//! Revocation documents: `verify_revocation`, then applying what verifies to a lock's list.
//!
//! Input: a mode byte, then the signed document (even) or a payload that the harness signs
//! with the trusted issuer (odd), so that the fuzzer reaches the payload decoder.
#![no_main]

use door_protocol::revocation::REVOCATION_CONTENT_TYPE;
use door_protocol::{verify_revocation, RevocationError, RevocationList};
use door_protocol_fuzz::{document, CONFIG, ISSUER, NOW};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Some(input) = document(mode, rest, &ISSUER, REVOCATION_CONTENT_TYPE) else {
        return;
    };
    let Ok(verified) = verify_revocation(&input.bytes, &CONFIG.issuer_keys) else {
        return;
    };
    let doc = verified.document();
    if let Some(payload) = input.payload {
        assert_eq!(doc.to_cbor().as_deref(), Ok(payload));
    }
    let mut list = RevocationList::new();
    if list.apply(&verified).is_ok() {
        // On an empty list either mode leaves exactly the document's entries.
        let restored = RevocationList::restore(doc.iteration, doc.entries.iter().copied());
        assert_eq!(restored.as_ref(), Ok(&list));
        assert!(matches!(
            list.apply(&verified),
            Err(RevocationError::Stale { .. })
        ));
        for e in &doc.entries {
            assert_eq!(
                list.is_revoked(e.credential_id, NOW),
                e.expires_at.is_none_or(|t| NOW < t)
            );
        }
        list.prune(NOW);
    }
});
