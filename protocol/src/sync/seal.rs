//! Sealing a bundle's doorcodes to one lock (ECIES on P-256):
//!
//! ```text
//! e            = fresh P-256 key drawn by the issuer for this bundle (public E, SEC1 compressed)
//! Z            = x-coordinate of ECDH(e, LockStatic)                 (32 bytes)
//! PRK          = HKDF-Extract(salt = "door-sync/v1", IKM = Z)        (HKDF-SHA256)
//! key          = HKDF-Expand(PRK, lock_id || E || LockStatic || "doorcodes", 32)
//! aad          = lock_id (16) || iteration (8, BE) || base_iteration (8, BE)
//! ciphertext   = AES-256-GCM(key, nonce = 0^12, aad, plaintext)
//! ```
//!
//! The salt and info differ from the unlock session's ("door-unlock/v1", "request"/"response"),
//! so no key of one can be a key of the other even for the same ECDH secret. The nonce is fixed
//! because each key seals exactly one plaintext: it comes from an ephemeral key drawn for one
//! bundle. The AAD repeats what the signature already binds (lock, iteration, base), so a
//! sealed blob lifted into another bundle does not open even before the signature is checked.

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit};
use alloc::vec::Vec;
use hkdf::Hkdf;
use p256::ecdh::EphemeralSecret;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::PublicKey;
use rand_core::CryptoRngCore;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::curve;
use crate::ids::Id;
use crate::keys::{LockKey, LockPublicKey};

const SALT: &[u8] = b"door-sync/v1";
const INFO: &[u8] = b"doorcodes";
const NONCE: [u8; 12] = [0; 12];
/// Bytes of the AES-GCM tag at the end of a ciphertext.
pub(crate) const TAG_LEN: usize = 16;

/// Which bundle a sealed blob belongs to: bound as AAD.
#[derive(Clone, Copy)]
pub(crate) struct Binding {
    pub(crate) lock_id: Id,
    pub(crate) iteration: u64,
    pub(crate) base_iteration: u64,
}

impl Binding {
    fn aad(&self) -> [u8; 32] {
        let mut aad = [0u8; 32];
        aad[..16].copy_from_slice(&self.lock_id.0);
        aad[16..24].copy_from_slice(&self.iteration.to_be_bytes());
        aad[24..].copy_from_slice(&self.base_iteration.to_be_bytes());
        aad
    }
}

fn derive(shared_x: &[u8], lock_id: Id, ephemeral: &[u8; 33], lock: &[u8; 33]) -> Aes256Gcm {
    let hk = Hkdf::<Sha256>::new(Some(SALT), shared_x);
    let mut key = Zeroizing::new([0u8; 32]);
    // 32 bytes is far below HKDF-SHA256's 8160-byte limit: expand cannot fail.
    hk.expand_multi_info(&[&lock_id.0, ephemeral, lock, INFO], key.as_mut())
        .expect("32 bytes is a valid HKDF-SHA256 length");
    Aes256Gcm::new(key.as_ref().into())
}

/// Seals `plaintext` to the lock's static key; returns `E` and the ciphertext.
pub(crate) fn seal(
    lock: &LockPublicKey,
    binding: Binding,
    plaintext: &[u8],
    rng: &mut impl CryptoRngCore,
) -> ([u8; 33], Vec<u8>) {
    let secret = EphemeralSecret::random(rng);
    let mut ephemeral = [0u8; 33];
    ephemeral.copy_from_slice(secret.public_key().to_encoded_point(true).as_bytes());
    let shared = secret.diffie_hellman(&(*lock.verifying_key()).into());
    let cipher = derive(
        shared.raw_secret_bytes(),
        binding.lock_id,
        &ephemeral,
        &lock.to_sec1_compressed(),
    );
    let ciphertext = cipher
        .encrypt(
            &NONCE.into(),
            Payload {
                msg: plaintext,
                aad: &binding.aad(),
            },
        )
        // aes-gcm fails only for plaintexts above 64 GiB.
        .expect("plaintext fits AES-GCM limits");
    (ephemeral, ciphertext)
}

/// Opens a sealed blob with the lock's key; `None` when it was sealed to another key, for
/// another bundle, or altered. The plaintext is wiped when dropped.
pub(crate) fn open(
    lock: &LockKey,
    binding: Binding,
    ephemeral: &[u8; 33],
    ciphertext: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    let e = PublicKey::from_sec1_bytes(ephemeral).ok()?;
    let shared = curve::ecdh(lock.signing_key().as_nonzero_scalar(), e.as_affine());
    let cipher = derive(
        &shared[..],
        binding.lock_id,
        ephemeral,
        &lock.public().to_sec1_compressed(),
    );
    cipher
        .decrypt(
            &NONCE.into(),
            Payload {
                msg: ciphertext,
                aad: &binding.aad(),
            },
        )
        .ok()
        .map(Zeroizing::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding() -> Binding {
        Binding {
            lock_id: Id([1; 16]),
            iteration: 5,
            base_iteration: 4,
        }
    }

    #[test]
    fn opens_only_with_the_right_key_and_binding() {
        let lock = LockKey::from_bytes(&[0x41; 32]).unwrap();
        let other = LockKey::from_bytes(&[0x42; 32]).unwrap();
        let mut rng = rand_core::OsRng;
        let (e, ct) = seal(lock.public(), binding(), b"1234", &mut rng);
        assert_eq!(ct.len(), 4 + TAG_LEN);
        assert_eq!(open(&lock, binding(), &e, &ct).unwrap().as_slice(), b"1234");
        assert!(open(&other, binding(), &e, &ct).is_none());
        let moved = Binding {
            iteration: 6,
            ..binding()
        };
        assert!(open(&lock, moved, &e, &ct).is_none());
        let mut bad_e = e;
        bad_e[1] ^= 1;
        assert!(open(&lock, binding(), &bad_e, &ct).is_none());
    }
}
