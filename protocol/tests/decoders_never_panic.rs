//! Every decoder, fed arbitrary bytes or mutations of valid documents, returns (never panics),
//! and whatever it accepts is the unique deterministic encoding of what it returned.

mod common;

use common::*;
use door_protocol::access::ACCESS_CONTENT_TYPE;
use door_protocol::revocation::REVOCATION_CONTENT_TYPE;
use door_protocol::sync::{SignedTime, SyncMessage, SYNC_CONTENT_TYPE};
use door_protocol::wire::Message;
use door_protocol::{
    cose, decode_access, inspect_bundle, open_bundle, verify_audit, verify_revocation,
    verify_signed_time, AccessDocument, AuditEvent, AuditRecord, DenyReason, IssuerPublicKey,
    LockKey, RevocationDocument,
};
use proptest::prelude::*;
use std::sync::LazyLock;

// Signing is the slow part of these properties in a debug build: sign the samples once.
static ACCESS: LazyLock<Vec<u8>> = LazyLock::new(|| sample_access().sign(&issuer()).unwrap());
static REVOCATION: LazyLock<Vec<u8>> =
    LazyLock::new(|| sample_revocation().sign(&issuer()).unwrap());
static ACCESS_PAYLOAD: LazyLock<Vec<u8>> = LazyLock::new(|| sample_access().to_cbor().unwrap());
static REVOCATION_PAYLOAD: LazyLock<Vec<u8>> =
    LazyLock::new(|| sample_revocation().to_cbor().unwrap());
static LOCK: LazyLock<LockKey> = LazyLock::new(|| LockKey::from_bytes(&LOCK_SCALAR).unwrap());
static AUDIT_RECORD: AuditRecord = AuditRecord {
    epoch: door_protocol::AuditEpoch([0xe0; 8]),
    seq: 41,
    at: MONDAY_0800_NY,
    event: AuditEvent::UnlockDenied {
        credential_id: Some(CREDENTIAL),
        reason: DenyReason::OutOfSchedule {
            next_allowed: Some(MONDAY_0800_NY + 3600),
        },
    },
};
static AUDIT: LazyLock<Vec<u8>> = LazyLock::new(|| AUDIT_RECORD.sign(&LOCK));
static BUNDLE: LazyLock<Vec<u8>> = LazyLock::new(|| {
    sample_delta()
        .seal_and_sign(&issuer(), lock_config().key.public(), &mut rand_core::OsRng)
        .unwrap()
});
static BUNDLE_PAYLOAD: LazyLock<Vec<u8>> = LazyLock::new(|| {
    use coset::TaggedCborSerializable;
    coset::CoseSign1::from_tagged_slice(&BUNDLE)
        .unwrap()
        .payload
        .unwrap()
});
static TIME: LazyLock<Vec<u8>> = LazyLock::new(|| {
    SignedTime {
        time: MONDAY_0800_NY,
        lock_id: Some(LOCK_ID),
        epoch: None,
    }
    .sign(&issuer())
});

/// One edit to a byte string.
#[derive(Clone, Debug)]
enum Mutation {
    Set(usize, u8),
    Insert(usize, u8),
    Remove(usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Remove),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn mutate(bytes: &[u8], edits: &[Mutation]) -> Vec<u8> {
    let mut b = bytes.to_vec();
    for m in edits {
        match *m {
            Mutation::Set(i, v) if !b.is_empty() => {
                let i = i % b.len();
                b[i] = v;
            }
            Mutation::Insert(i, v) => {
                let i = i % (b.len() + 1);
                b.insert(i, v);
            }
            Mutation::Remove(i) if !b.is_empty() => {
                let i = i % b.len();
                b.remove(i);
            }
            Mutation::Truncate(n) => b.truncate(n % (b.len() + 1)),
            _ => {}
        }
    }
    b
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_are_refused(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let keys = issuer_keys();
        prop_assert!(decode_access(&bytes, &keys).is_err());
        prop_assert!(verify_revocation(&bytes, &keys).is_err());
        prop_assert!(cose::open1(&bytes, ACCESS_CONTENT_TYPE, &keys).is_err());
        prop_assert!(AccessDocument::from_cbor(&bytes).is_err());
        prop_assert!(RevocationDocument::from_cbor(&bytes).is_err());
        prop_assert!(verify_audit(&bytes, LOCK.public()).is_err());
        if let Ok(record) = AuditRecord::from_cbor(&bytes) {
            prop_assert_eq!(record.to_cbor(), bytes.clone());
        }
        let _ = IssuerPublicKey::from_sec1(&bytes);
        prop_assert!(open_bundle(&bytes, &lock_config()).is_err());
        prop_assert!(inspect_bundle(&bytes, &keys).is_err());
        prop_assert!(verify_signed_time(&bytes, &keys).is_err());
        if let Ok(t) = SignedTime::from_cbor(&bytes) {
            prop_assert_eq!(t.to_cbor(), bytes.clone());
        }
        for kind in 0..=u8::MAX {
            let m = Message { kind, body: bytes.clone() };
            if let Ok(parsed) = SyncMessage::from_message(&m) {
                prop_assert_eq!(parsed.to_message(), m);
            }
        }
    }

    #[test]
    fn mutated_signed_documents_are_refused(edits in proptest::collection::vec(mutation(), 1..4)) {
        let keys = issuer_keys();
        let a = mutate(&ACCESS, &edits);
        let r = mutate(&REVOCATION, &edits);
        // A mutation can be a no-op (setting a byte to its own value).
        prop_assert_eq!(decode_access(&a, &keys).is_ok(), a == *ACCESS);
        prop_assert_eq!(verify_revocation(&r, &keys).is_ok(), r == *REVOCATION);
        let l = mutate(&AUDIT, &edits);
        prop_assert_eq!(verify_audit(&l, LOCK.public()).is_ok(), l == *AUDIT);
        let b = mutate(&BUNDLE, &edits);
        prop_assert_eq!(open_bundle(&b, &lock_config()).is_ok(), b == *BUNDLE);
        let t = mutate(&TIME, &edits);
        prop_assert_eq!(verify_signed_time(&t, &keys).is_ok(), t == *TIME);
    }

    #[test]
    fn mutated_payloads_decode_only_to_their_own_encoding(
        edits in proptest::collection::vec(mutation(), 1..4),
    ) {
        let m = mutate(&ACCESS_PAYLOAD, &edits);
        if let Ok(doc) = AccessDocument::from_cbor(&m) {
            prop_assert_eq!(doc.to_cbor().unwrap(), m);
        }
        let m = mutate(&REVOCATION_PAYLOAD, &edits);
        if let Ok(doc) = RevocationDocument::from_cbor(&m) {
            prop_assert_eq!(doc.to_cbor().unwrap(), m);
        }
        let m = mutate(&AUDIT_RECORD.to_cbor(), &edits);
        if let Ok(record) = AuditRecord::from_cbor(&m) {
            prop_assert_eq!(record.to_cbor(), m);
        }
    }

}

proptest! {
    // Each case signs twice: fewer cases keep a debug-build run short.
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn mutated_payloads_signed_by_the_issuer_never_panic(
        edits in proptest::collection::vec(mutation(), 1..4),
    ) {
        // The issuer's signature does not make a payload well-formed: the decoder still checks.
        let keys = issuer_keys();
        let payload = mutate(&ACCESS_PAYLOAD, &edits);
        let bytes = cose::sign1(&issuer(), ACCESS_CONTENT_TYPE, payload.clone()).unwrap();
        if let Ok(verified) = decode_access(&bytes, &keys) {
            prop_assert_eq!(verified.document().to_cbor().unwrap(), payload);
        }
        let payload = mutate(&REVOCATION_PAYLOAD, &edits);
        let bytes = cose::sign1(&issuer(), REVOCATION_CONTENT_TYPE, payload.clone()).unwrap();
        if let Ok(verified) = verify_revocation(&bytes, &keys) {
            prop_assert_eq!(verified.document().to_cbor().unwrap(), payload);
        }
        let payload = mutate(&BUNDLE_PAYLOAD, &edits);
        let bytes = cose::sign1(&issuer(), SYNC_CONTENT_TYPE, payload).unwrap();
        if let Ok(opened) = open_bundle(&bytes, &lock_config()) {
            // What opens is a bundle the issuer could have built: it passes the issuer's checks.
            prop_assert!(opened.bundle().validate().is_ok());
        }
    }
}

#[test]
fn deep_nesting_is_refused_without_recursion() {
    // 16 KiB of nested one-element arrays: a generic decoder would recurse on each.
    let keys = issuer_keys();
    let mut nested = vec![0x81u8; cose::MAX_DOCUMENT_SIZE - 1];
    nested.push(0x00);
    assert!(decode_access(&nested, &keys).is_err());
    let mut tagged = vec![0xd2, 0x84, 0x40, 0xa0];
    tagged.extend_from_slice(&nested[..cose::MAX_DOCUMENT_SIZE - 8]);
    assert!(decode_access(&tagged, &keys).is_err());
    assert!(AccessDocument::from_cbor(&nested).is_err());
}
