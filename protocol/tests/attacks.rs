//! Rows of the threat model (docs/SECURITY.md) that no other suite covers on its own: what an
//! eavesdropper on the BLE link learns from an unlock, and a document whose issuer-signed
//! header asks verifiers to understand something they do not.

mod common;

use common::*;
use coset::{iana, CoseSign1Builder, HeaderBuilder, TaggedCborSerializable};
use door_protocol::access::ACCESS_CONTENT_TYPE;
use door_protocol::{decode_access, PreparedUnlock, UnlockPreparation, UnlockTarget};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use rand_core::OsRng;

fn request_bytes() -> Vec<u8> {
    let target = UnlockTarget {
        lock_id: LOCK_ID,
        lock_key: *lock_config().key.public(),
        access_document: sample_access().sign(&issuer()).unwrap(),
    };
    let (prep, to_sign) = UnlockPreparation::new(target, MONDAY_0800_NY, &mut OsRng).unwrap();
    let device = SigningKey::from_bytes(&DEVICE_SCALAR.into()).unwrap();
    let signature: Signature = device.sign(&to_sign);
    let prepared: PreparedUnlock = prep.signed(&signature.to_bytes()).unwrap();
    prepared.request_fragments(247).concat()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn an_eavesdropper_learns_neither_who_nor_what_from_an_unlock_request() {
    let sent = request_bytes();
    let document = sample_access();
    // Nothing that identifies the person or their credential crosses the air in the clear.
    for (what, secret) in [
        ("credential id", document.credential_id.0.to_vec()),
        ("person id", document.person_id.0.to_vec()),
        ("device key", document.device_key.to_vec()),
        ("door id", LOBBY.0.to_vec()),
        ("issuer kid", issuer().kid().0.to_vec()),
    ] {
        assert!(
            !contains(&sent, &secret),
            "the {what} is readable on the link"
        );
    }
    // And two requests by the same person at the same moment share nothing an observer could
    // link them by, beyond the framing and the lock id the phone addresses.
    let again = request_bytes();
    let head = 1 + 3 + 1 + 16; // chunk header, message type and length, version, lock id
    assert_eq!(sent[..head], again[..head]);
    let linkable = sent[head..]
        .windows(8)
        .filter(|w| contains(&again[head..], w))
        .count();
    assert_eq!(linkable, 0, "8-byte runs repeat across two requests");
}

/// An access document whose protected header is `header`, over the sample payload, signed
/// with the real issuer key: only the header is at fault.
fn signed_with_header(header: HeaderBuilder) -> Vec<u8> {
    let issuer_key = SigningKey::from_bytes(&ISSUER_SCALAR.into()).unwrap();
    CoseSign1Builder::new()
        .protected(header.build())
        .payload(sample_access().to_cbor().unwrap())
        .create_signature(&[], |tbs| {
            let s: Signature = issuer_key.sign(tbs);
            s.normalize_s().unwrap_or(s).to_bytes().to_vec()
        })
        .build()
        .to_tagged_vec()
        .unwrap()
}

fn our_header() -> HeaderBuilder {
    HeaderBuilder::new()
        .algorithm(iana::Algorithm::ES256)
        .content_type(ACCESS_CONTENT_TYPE.to_string())
        .key_id(issuer().kid().0.to_vec())
}

#[test]
fn an_unknown_critical_header_is_refused_even_when_the_issuer_signed_it() {
    assert!(
        decode_access(&signed_with_header(our_header()), &issuer_keys()).is_ok(),
        "the control document must verify"
    );
    // A newer issuer marks a restriction critical; a verifier that does not know it must
    // refuse rather than ignore it.
    let critical = our_header()
        .add_critical_label(coset::RegisteredLabelWithPrivate::PrivateUse(-65_537))
        .value(-65_537, coset::cbor::Value::Bool(true));
    assert!(decode_access(&signed_with_header(critical), &issuer_keys()).is_err());
    // Any header parameter we do not read is refused too, critical or not.
    let extra = our_header().value(-65_538, coset::cbor::Value::Bool(true));
    assert!(decode_access(&signed_with_header(extra), &issuer_keys()).is_err());
    // As is anything in the unprotected header, which the signature does not cover.
    let mut unprotected =
        coset::CoseSign1::from_tagged_slice(&signed_with_header(our_header())).unwrap();
    unprotected.unprotected = HeaderBuilder::new().key_id(vec![0; 8]).build();
    assert!(decode_access(&unprotected.to_tagged_vec().unwrap(), &issuer_keys()).is_err());
}
