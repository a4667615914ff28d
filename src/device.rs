//! The device key: proof that this phone holds the P-256 key its credentials are bound to.
//!
//! The key may live in the app's hardware keystore (a foreign `DeviceSigner`) or in software;
//! either way the core checks every signature it is handed before it relies on it, because a
//! platform signer may return DER (Android Keystore, JCA) or raw r||s (CryptoKit).

use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DeviceError {
    #[error("the public key is not a P-256 SEC1 point ({0} bytes)")]
    BadPublicKey(usize),
    #[error("the signature is neither raw r||s (64 bytes) nor DER ({0} bytes)")]
    BadSignatureEncoding(usize),
    #[error("the signature does not verify under the device's public key")]
    SignatureMismatch,
    #[error("the challenge is empty")]
    EmptyChallenge,
}

pub use door_protocol::device::possession_message;

/// Accepts SEC1 compressed (33 bytes) or uncompressed (65 bytes) points.
pub fn parse_public_key(bytes: &[u8]) -> Result<VerifyingKey, DeviceError> {
    VerifyingKey::from_sec1_bytes(bytes).map_err(|_| DeviceError::BadPublicKey(bytes.len()))
}

/// The compressed SEC1 form, which is what access documents carry.
pub fn compressed(key: &VerifyingKey) -> Vec<u8> {
    key.to_encoded_point(true).as_bytes().to_vec()
}

/// Accepts raw r||s (64 bytes) or ASN.1 DER, and returns the raw form with low S, so one
/// signature has one encoding whatever platform produced it.
pub fn normalize_signature(bytes: &[u8]) -> Result<Signature, DeviceError> {
    let sig = if bytes.len() == 64 {
        Signature::from_slice(bytes)
    } else {
        Signature::from_der(bytes)
    }
    .map_err(|_| DeviceError::BadSignatureEncoding(bytes.len()))?;
    Ok(sig.normalize_s().unwrap_or(sig))
}

/// A checked proof of possession, in the encodings the server expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PossessionProof {
    pub public_key: Vec<u8>,
    pub signature: [u8; 64],
}

/// Checks that `signature` over the possession message for `challenge` verifies under
/// `public_key`, and returns the normalized proof.
pub fn check_possession(
    public_key: &[u8],
    challenge: &[u8],
    signature: &[u8],
) -> Result<PossessionProof, DeviceError> {
    if challenge.is_empty() {
        return Err(DeviceError::EmptyChallenge);
    }
    let key = parse_public_key(public_key)?;
    let sig = normalize_signature(signature)?;
    key.verify(&possession_message(challenge), &sig)
        .map_err(|_| DeviceError::SignatureMismatch)?;
    Ok(PossessionProof {
        public_key: compressed(&key),
        signature: sig.to_bytes().into(),
    })
}

/// A device key held in process memory. The platform-keystore signers replace it in apps;
/// it serves tests, the demo and desktop use. The scalar is zeroized on drop by p256.
pub struct SoftwareKey {
    signing: SigningKey,
}

impl SoftwareKey {
    pub fn generate() -> SoftwareKey {
        SoftwareKey {
            signing: SigningKey::random(&mut rand_core::OsRng),
        }
    }

    pub fn public_key(&self) -> Vec<u8> {
        compressed(self.signing.verifying_key())
    }

    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        let sig: Signature = self.signing.sign(message);
        sig.to_bytes().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn software_key_proves_possession() {
        let key = SoftwareKey::generate();
        let sig = key.sign(&possession_message(b"challenge"));
        let proof = check_possession(&key.public_key(), b"challenge", &sig).unwrap();
        assert_eq!(proof.public_key, key.public_key());
    }

    #[test]
    fn der_and_raw_signatures_are_the_same_proof() {
        let key = SoftwareKey::generate();
        let raw = key.sign(&possession_message(b"c"));
        let der = Signature::from_slice(&raw).unwrap().to_der();
        let a = check_possession(&key.public_key(), b"c", &raw).unwrap();
        let b = check_possession(&key.public_key(), b"c", der.as_bytes()).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn high_s_is_normalized() {
        let key = SoftwareKey::generate();
        let sig = Signature::from_slice(&key.sign(&possession_message(b"c"))).unwrap();
        let (r, s) = sig.split_scalars();
        let flipped = Signature::from_scalars(r, -*s).unwrap();
        let a = check_possession(&key.public_key(), b"c", &sig.to_bytes()).unwrap();
        let b = check_possession(&key.public_key(), b"c", &flipped.to_bytes()).unwrap();
        assert_eq!(a.signature, b.signature);
    }

    #[test]
    fn wrong_challenge_key_or_encoding_is_refused() {
        let key = SoftwareKey::generate();
        let other = SoftwareKey::generate();
        let sig = key.sign(&possession_message(b"c"));
        assert_eq!(
            check_possession(&key.public_key(), b"d", &sig),
            Err(DeviceError::SignatureMismatch)
        );
        assert_eq!(
            check_possession(&other.public_key(), b"c", &sig),
            Err(DeviceError::SignatureMismatch)
        );
        assert_eq!(
            check_possession(&key.public_key(), b"c", &sig[..63]),
            Err(DeviceError::BadSignatureEncoding(63))
        );
        assert_eq!(
            check_possession(&[4u8; 12], b"c", &sig),
            Err(DeviceError::BadPublicKey(12))
        );
        assert_eq!(
            check_possession(&key.public_key(), b"", &sig),
            Err(DeviceError::EmptyChallenge)
        );
    }

    #[test]
    fn a_plain_signature_of_the_challenge_is_not_a_proof() {
        let key = SoftwareKey::generate();
        let sig = key.sign(b"c");
        assert_eq!(
            check_possession(&key.public_key(), b"c", &sig),
            Err(DeviceError::SignatureMismatch)
        );
    }
}
