//! Revocation documents: `verify_revocation`, then applying what verifies to a lock's list.
//!
//! Input: a mode byte, then the signed document (even) or a payload that the harness signs
//! with the trusted issuer (odd), to reach the payload decoder past the signature.
#![no_main]

use door_protocol::revocation::REVOCATION_CONTENT_TYPE;
use door_protocol::{cose, verify_revocation, RevocationError, RevocationList};
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
        let Ok(s) = cose::sign1(&issuer(), REVOCATION_CONTENT_TYPE, rest.to_vec()) else {
            return;
        };
        signed = s;
        &signed[..]
    };
    let keys = &CONFIG.issuer_keys;
    let Ok(verified) = verify_revocation(bytes, keys) else {
        return;
    };
    let doc = verified.document();
    let payload = cose::open1(bytes, REVOCATION_CONTENT_TYPE, keys)
        .expect("verify_revocation opened it")
        .payload;
    assert_eq!(doc.to_cbor().as_deref(), Ok(payload));

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
