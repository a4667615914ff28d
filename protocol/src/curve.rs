//! The P-256 operations the lock's paths run: ECDSA verification (documents, bundles, device
//! signatures), ECDH (unlock sessions, sealed doorcodes) and ECDSA signing (COSE frames: the
//! lock's audit records). RustCrypto's `p256` everywhere, except in lock firmware built with
//! the feature `cortex-m4-p256` for a 32-bit Arm target: there the hand-written assembly of
//! P256-Cortex-M4 (the `p256-cortex-m4` crate), 8 to 24 times fewer instructions on a
//! Cortex-M4 (docs/PERFORMANCE.md, "The lock on a Cortex-M4"). Both give the same answers:
//! signatures are RFC 6979 in both, so byte for byte the same, and scripts/bench-mcu checks
//! the emulated lock's replies against the host's.

use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::{AffinePoint, NonZeroScalar};
use zeroize::Zeroizing;

/// Whether `signature` is `key`'s over `message` (ECDSA P-256, SHA-256), either S.
pub(crate) fn verify(key: &VerifyingKey, message: &[u8], signature: &Signature) -> bool {
    backend::verify(key, message, signature)
}

/// The ECDH shared secret (the x coordinate) of `secret` and `peer`.
pub(crate) fn ecdh(secret: &NonZeroScalar, peer: &AffinePoint) -> Zeroizing<[u8; 32]> {
    backend::ecdh(secret, peer)
}

/// ECDSA P-256 over SHA-256 of `message`, nonce by RFC 6979; S as it comes (callers that need
/// low S normalise).
pub(crate) fn sign(key: &SigningKey, message: &[u8]) -> Signature {
    backend::sign(key, message)
}

#[cfg(not(all(feature = "cortex-m4-p256", target_arch = "arm")))]
mod backend {
    use p256::ecdsa::signature::{Signer, Verifier};
    use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
    use p256::{AffinePoint, NonZeroScalar};
    use zeroize::Zeroizing;

    pub fn verify(key: &VerifyingKey, message: &[u8], signature: &Signature) -> bool {
        key.verify(message, signature).is_ok()
    }

    pub fn ecdh(secret: &NonZeroScalar, peer: &AffinePoint) -> Zeroizing<[u8; 32]> {
        let shared = p256::ecdh::diffie_hellman(secret, peer);
        Zeroizing::new((*shared.raw_secret_bytes()).into())
    }

    pub fn sign(key: &SigningKey, message: &[u8]) -> Signature {
        key.sign(message)
    }
}

#[cfg(all(feature = "cortex-m4-p256", target_arch = "arm"))]
mod backend {
    use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
    use p256::elliptic_curve::ff::PrimeField;
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    use p256::{AffinePoint, NonZeroScalar};
    use p256_cortex_m4 as m4;
    use sha2::{Digest, Sha256};
    use zeroize::Zeroizing;

    /// The order of P-256's group, big-endian: RFC 6979 draws the nonce below it.
    const ORDER: [u8; 32] = [
        0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63,
        0x25, 0x51,
    ];

    fn public(point: &AffinePoint) -> Option<m4::PublicKey> {
        m4::PublicKey::from_sec1_bytes(point.to_encoded_point(false).as_bytes()).ok()
    }

    pub fn verify(key: &VerifyingKey, message: &[u8], signature: &Signature) -> bool {
        let Some(key) = public(key.as_affine()) else {
            return false;
        };
        let Ok(signature) = m4::Signature::from_untagged_bytes(&signature.to_bytes()) else {
            return false;
        };
        key.verify_prehashed(&Sha256::digest(message), &signature)
    }

    pub fn ecdh(secret: &NonZeroScalar, peer: &AffinePoint) -> Zeroizing<[u8; 32]> {
        let secret = m4::SecretKey::from_bytes(secret.to_repr())
            .expect("a non-zero scalar below the order is a secret key");
        let peer = public(peer).expect("an affine point of p256 is on the curve");
        Zeroizing::new(*secret.agree(&peer).as_bytes())
    }

    pub fn sign(key: &SigningKey, message: &[u8]) -> Signature {
        let scalar = key.as_nonzero_scalar().to_repr();
        let digest = Sha256::digest(message);
        // What RustCrypto's ecdsa does: the digest unreduced, as bits2field leaves it.
        let k = rfc6979::generate_k::<Sha256, _>(&scalar, &ORDER.into(), &digest, &[]);
        let secret =
            m4::SecretKey::from_bytes(scalar).expect("a signing key's scalar is a secret key");
        let signature = secret.sign_prehashed(&digest, Nonce::new(&k));
        Signature::from_slice(&signature.to_untagged_bytes())
            .expect("P256-Cortex-M4 signs with r and s in range")
    }

    /// The one way p256-cortex-m4 takes a nonce is from a random source: this one hands out
    /// the RFC 6979 nonce, as the little-endian words the library reads. The library draws
    /// again only if signing with it failed (r or s zero: probability 2^-256); the nonce is
    /// then refused rather than reused.
    struct Nonce {
        little_endian: Zeroizing<[u8; 32]>,
        drawn: bool,
    }

    impl Nonce {
        fn new(big_endian: &[u8]) -> Nonce {
            let mut little_endian = Zeroizing::new([0u8; 32]);
            for (to, from) in little_endian.iter_mut().zip(big_endian.iter().rev()) {
                *to = *from;
            }
            Nonce {
                little_endian,
                drawn: false,
            }
        }
    }

    impl rand_core::RngCore for Nonce {
        fn next_u32(&mut self) -> u32 {
            rand_core::impls::next_u32_via_fill(self)
        }
        fn next_u64(&mut self) -> u64 {
            rand_core::impls::next_u64_via_fill(self)
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            assert!(!self.drawn, "an RFC 6979 nonce is used once");
            self.drawn = true;
            dest.copy_from_slice(&self.little_endian[..]);
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
            self.fill_bytes(dest);
            Ok(())
        }
    }

    // The nonce is RFC 6979's: secret, unpredictable, one per (key, message).
    impl rand_core::CryptoRng for Nonce {}
}
