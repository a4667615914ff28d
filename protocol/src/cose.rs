//! Our COSE_Sign1 profile (RFC 9052): how every issuer-signed document is framed and checked.
//!
//! ```text
//! COSE_Sign1_Tagged = #6.18([
//!     protected:   bstr .cbor { 1: -7, 3: content-type, 4: kid },   ; alg ES256, tstr, bstr .size 8
//!     unprotected: {},
//!     payload:     bstr,                                            ; deterministic CBOR
//!     signature:   bstr .size 64,                                   ; r || s, big-endian
//! ])
//! ```
//!
//! The signature is ES256 (ECDSA P-256 with SHA-256, deterministic nonces per RFC 6979) over
//! `Sig_structure = ["Signature1", protected, h'', payload]` (RFC 9052 §4.4, empty external
//! AAD); coset builds that structure. `s` is always in low-S form (`s <= n/2`): signers
//! normalise, verifiers refuse the high-S twin, so no one can re-sign a document into a second
//! valid byte string. The tag is always present, so stored documents say what
//! they are and any COSE library detects the type; the content type in the protected header
//! says which document the payload is, so a signature over one kind can never be accepted as
//! another.
//!
//! Verification first reads the frame with the strict deterministic reader: exactly the shape
//! above, nothing else, no trailing bytes. Only then is the key looked up and the signature
//! checked, and only after that does a caller parse the payload.

use alloc::string::ToString;
use alloc::vec::Vec;
use core::fmt;

use coset::{iana, CoseSign1Builder, HeaderBuilder, TaggedCborSerializable};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};

use crate::cbor::{At, Keys, Malformed, Problem, Reader};
use crate::curve;
use crate::keys::{IssuerKey, IssuerKeys, KeyId};

/// The largest signed document (the whole COSE_Sign1, tag included) any decoder accepts.
/// Bounds the work and memory a lock spends on one document; a typical access document is a
/// few hundred bytes.
pub const MAX_DOCUMENT_SIZE: usize = 16 * 1024;

/// COSE algorithm ES256.
pub const ALG_ES256: i64 = -7;

/// CBOR tag of COSE_Sign1.
pub const COSE_SIGN1_TAG: u64 = 18;

const HEADER_ALG: u64 = 1;
const HEADER_CONTENT_TYPE: u64 = 3;
const HEADER_KID: u64 = 4;

/// Why a signed frame was refused.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum OpenError {
    /// The signature does not verify under the named key.
    BadSignature,
    /// The key id names no key the verifier trusts.
    UnknownIssuerKey { kid: KeyId },
    /// The frame is not our COSE_Sign1 profile.
    Malformed(Malformed),
}

impl From<Malformed> for OpenError {
    fn from(m: Malformed) -> OpenError {
        OpenError::Malformed(m)
    }
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::BadSignature => f.write_str("bad signature"),
            OpenError::UnknownIssuerKey { kid } => write!(f, "unknown issuer key {kid}"),
            OpenError::Malformed(m) => write!(f, "malformed: {m}"),
        }
    }
}

impl core::error::Error for OpenError {}

/// Our protected header. coset writes its fields in label order (1, 3, 4), which is the
/// deterministic order; the strict reader below insists on exactly that.
fn protected_header(kid: KeyId, content_type: &str) -> HeaderBuilder {
    HeaderBuilder::new()
        .algorithm(iana::Algorithm::ES256)
        .content_type(content_type.to_string())
        .key_id(kid.0.to_vec())
}

/// Signs `payload` (already deterministic CBOR) as a tagged COSE_Sign1.
///
/// Fails only when the result would exceed [`MAX_DOCUMENT_SIZE`], so that no issuer mints a
/// document every verifier refuses.
pub fn sign1(key: &IssuerKey, content_type: &str, payload: Vec<u8>) -> Result<Vec<u8>, Malformed> {
    sign1_with(
        key.signing_key(),
        key.kid(),
        content_type,
        payload,
        MAX_DOCUMENT_SIZE,
    )
}

/// [`sign1`] with any P-256 key, named by `kid` (locks sign their audit records this way), and
/// its own size cap (sync bundles are larger than other documents).
pub(crate) fn sign1_with(
    signing: &SigningKey,
    kid: KeyId,
    content_type: &str,
    payload: Vec<u8>,
    max_len: usize,
) -> Result<Vec<u8>, Malformed> {
    let sign1 = CoseSign1Builder::new()
        .protected(protected_header(kid, content_type).build())
        .payload(payload)
        .create_signature(&[], |tbs| {
            let sig = curve::sign(signing, tbs);
            // Low-S form, so that the whole frame, signature included, has one encoding.
            sig.normalize_s().unwrap_or(sig).to_bytes().to_vec()
        })
        .build();
    // Serialising a COSE_Sign1 into a Vec cannot fail: the writer is infallible and every
    // value in it is a plain CBOR item.
    let bytes = sign1
        .to_tagged_vec()
        .expect("COSE_Sign1 serialises into a Vec");
    if bytes.len() > max_len {
        return Err(Malformed::new("document", Problem::TooLarge));
    }
    Ok(bytes)
}

/// A frame whose signature verified: the payload is authentic, not yet parsed.
#[derive(Clone, Copy, Debug)]
pub struct Opened<'a> {
    pub kid: KeyId,
    pub payload: &'a [u8],
}

/// The parts of a frame that passed the shape check, before the signature is checked.
struct Frame<'a> {
    protected: &'a [u8],
    kid: KeyId,
    payload: &'a [u8],
    signature: [u8; 64],
}

fn read_frame<'a>(
    bytes: &'a [u8],
    content_type: &str,
    max_len: usize,
) -> Result<Frame<'a>, Malformed> {
    if bytes.len() > max_len {
        return Err(Malformed::new("document", Problem::TooLarge));
    }
    let mut r = Reader::new(bytes);
    if r.tag().at("cose.tag")? != COSE_SIGN1_TAG {
        return Err(Malformed::new("cose.tag", Problem::WrongType));
    }
    if r.array(4).at("cose")? != 4 {
        return Err(Malformed::new("cose", Problem::WrongType));
    }
    let protected = r.bytes().at("cose.protected")?;
    if r.map().at("cose.unprotected")? != 0 {
        return Err(Malformed::new("cose.unprotected", Problem::Unsupported));
    }
    let payload = r.bytes().at("cose.payload")?;
    let signature = r.bytes_fixed::<64>().at("cose.signature")?;
    r.finish().at("cose")?;
    let kid = read_protected(protected, content_type)?;
    Ok(Frame {
        protected,
        kid,
        payload,
        signature,
    })
}

/// Reads `{1: -7, 3: content_type, 4: kid}` and returns the kid; any other header is refused.
fn read_protected(bytes: &[u8], content_type: &str) -> Result<KeyId, Malformed> {
    let mut r = Reader::new(bytes);
    let n = r.map().at("protected")?;
    let mut keys = Keys::new();
    let mut kid = KeyId([0; 8]);
    for _ in 0..n {
        match keys.next(&mut r).at("protected")? {
            HEADER_ALG => {
                if r.int().at("protected.alg")? != ALG_ES256 {
                    return Err(Malformed::new("protected.alg", Problem::Unsupported));
                }
            }
            HEADER_CONTENT_TYPE => {
                if r.text().at("protected.content_type")? != content_type {
                    return Err(Malformed::new(
                        "protected.content_type",
                        Problem::Unsupported,
                    ));
                }
            }
            HEADER_KID => kid = KeyId(r.bytes_fixed().at("protected.kid")?),
            key => return Err(Malformed::new("protected", Problem::UnknownKey { key })),
        }
    }
    keys.require(&[HEADER_ALG, HEADER_CONTENT_TYPE, HEADER_KID])
        .at("protected")?;
    r.finish().at("protected")?;
    Ok(kid)
}

/// The payload of a well-formed frame, its signature unchecked: for a holder reading its own
/// cached document (the phone finding its device key), never for a verifier.
pub(crate) fn payload_unverified<'a>(
    bytes: &'a [u8],
    content_type: &str,
) -> Result<&'a [u8], Malformed> {
    read_frame(bytes, content_type, MAX_DOCUMENT_SIZE).map(|f| f.payload)
}

/// Checks the frame, looks up the issuer key and verifies the signature; returns the
/// authenticated payload bytes.
///
/// Steps, in order: size and shape ([`OpenError::Malformed`]), key id
/// ([`OpenError::UnknownIssuerKey`]), signature ([`OpenError::BadSignature`]).
pub fn open1<'a>(
    bytes: &'a [u8],
    content_type: &str,
    keys: &IssuerKeys,
) -> Result<Opened<'a>, OpenError> {
    open1_with(bytes, content_type, MAX_DOCUMENT_SIZE, |kid| {
        keys.get(kid).map(|k| *k.verifying_key())
    })
}

/// [`open1`] with the verifying key found by `lookup` (`None`: [`OpenError::UnknownIssuerKey`];
/// audit records are checked against the one lock key this way) and its own size cap.
pub(crate) fn open1_with<'a>(
    bytes: &'a [u8],
    content_type: &str,
    max_len: usize,
    lookup: impl FnOnce(KeyId) -> Option<VerifyingKey>,
) -> Result<Opened<'a>, OpenError> {
    let frame = read_frame(bytes, content_type, max_len)?;
    let key = lookup(frame.kid).ok_or(OpenError::UnknownIssuerKey { kid: frame.kid })?;
    // r or s of zero or not below the group order cannot be a valid signature.
    let signature = Signature::from_slice(&frame.signature).map_err(|_| OpenError::BadSignature)?;
    // (r, n - s) verifies whenever (r, s) does; accepting only the low-S twin keeps one byte
    // string per document, so a hash of the frame can name it (replay caches, deduplication).
    if signature.normalize_s().is_some() {
        return Err(OpenError::BadSignature);
    }
    // The header struct only matters when coset has to serialise it; with the original bytes
    // given, the Sig_structure carries exactly the bytes that were signed.
    let protected = coset::ProtectedHeader {
        original_data: Some(frame.protected.to_vec()),
        header: protected_header(frame.kid, content_type).build(),
    };
    let tbs = coset::sig_structure_data(
        coset::SignatureContext::CoseSign1,
        protected,
        None,
        &[],
        frame.payload,
    );
    if !curve::verify(&key, &tbs, &signature) {
        return Err(OpenError::BadSignature);
    }
    Ok(Opened {
        kid: frame.kid,
        payload: frame.payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::Verifier;

    const CT: &str = "application/test+cbor";

    fn key() -> IssuerKey {
        IssuerKey::from_bytes(&[5u8; 32]).unwrap()
    }

    #[test]
    fn sign_then_open() {
        let k = key();
        let doc = sign1(&k, CT, alloc::vec![0xa0]).unwrap();
        let opened = open1(&doc, CT, &IssuerKeys::single(*k.verifying())).unwrap();
        assert_eq!(opened.payload, [0xa0]);
        assert_eq!(opened.kid, k.kid());
    }

    #[test]
    fn coset_parses_and_reserialises_identically() {
        let doc = sign1(&key(), CT, alloc::vec![1, 2, 3]).unwrap();
        let parsed = coset::CoseSign1::from_tagged_slice(&doc).unwrap();
        assert_eq!(
            parsed.protected.header.alg,
            Some(coset::RegisteredLabelWithPrivate::Assigned(
                iana::Algorithm::ES256
            ))
        );
        let mut p = parsed.clone();
        p.protected.original_data = None;
        assert_eq!(p.to_tagged_vec().unwrap(), doc);
    }

    #[test]
    fn the_high_s_twin_of_a_valid_signature_is_refused() {
        let k = key();
        let keys = IssuerKeys::single(*k.verifying());
        let doc = sign1(&k, CT, alloc::vec![0xa0]).unwrap();
        let at = doc.len() - 64;
        let low = Signature::from_slice(&doc[at..]).unwrap();
        assert!(low.normalize_s().is_none(), "signers emit low S");
        // n - s: p256 accepts it as ECDSA, the profile does not.
        let high = Signature::from_scalars(low.r().to_bytes(), (-*low.s()).to_bytes()).unwrap();
        let mut twin = doc.clone();
        twin[at..].copy_from_slice(&high.to_bytes());
        let tbs = coset::CoseSign1::from_tagged_slice(&twin)
            .unwrap()
            .tbs_data(&[]);
        assert!(k.verifying().verifying_key().verify(&tbs, &high).is_ok());
        assert_eq!(
            open1(&twin, CT, &keys).unwrap_err(),
            OpenError::BadSignature
        );
    }

    #[test]
    fn wrong_content_type_is_refused_before_the_key() {
        let doc = sign1(&key(), CT, alloc::vec![]).unwrap();
        let err = open1(&doc, "application/other+cbor", &IssuerKeys::new()).unwrap_err();
        assert_eq!(
            err,
            OpenError::Malformed(Malformed::new(
                "protected.content_type",
                Problem::Unsupported
            ))
        );
    }

    #[test]
    fn untagged_frames_are_refused() {
        let doc = sign1(&key(), CT, alloc::vec![]).unwrap();
        let err = open1(&doc[1..], CT, &IssuerKeys::single(*key().verifying())).unwrap_err();
        assert!(matches!(err, OpenError::Malformed(m) if m.field == "cose.tag"));
    }

    #[test]
    fn oversized_frames_are_refused_unread() {
        let big = alloc::vec![0u8; MAX_DOCUMENT_SIZE + 1];
        let err = open1(&big, CT, &IssuerKeys::new()).unwrap_err();
        assert_eq!(
            err,
            OpenError::Malformed(Malformed::new("document", Problem::TooLarge))
        );
        assert!(sign1(&key(), CT, alloc::vec![0; MAX_DOCUMENT_SIZE]).is_err());
    }
}
