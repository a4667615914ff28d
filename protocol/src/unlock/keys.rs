//! The unlock session's key schedule and AEAD.
//!
//! ```text
//! Z   = x-coordinate of ECDH(e, LockStatic)                      (32 bytes)
//! PRK = HKDF-Extract(salt = "door-unlock/v1", IKM = Z)
//! info = lock_id (16) || E (33) || LockStatic (33)               (SEC1 compressed points)
//! request key  = HKDF-Expand(PRK, info || "request",  32)
//! response key = HKDF-Expand(PRK, info || "response", 32)
//! ```
//!
//! AES-256-GCM seals both directions. The request nonce is fixed (all zero): a request key
//! comes from an ephemeral key drawn for one unlock and seals exactly one plaintext (the phone's
//! preparation is consumed when it seals). The response nonce is drawn by the lock for each
//! response and travels with it: a replayed request makes the lock answer again under the same
//! response key, and a fixed nonce would then repeat, leaking the GHASH key.

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit};
use alloc::vec::Vec;
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::ids::Id;

const SALT: &[u8] = b"door-unlock/v1";
const REQUEST_INFO: &[u8] = b"request";
const RESPONSE_INFO: &[u8] = b"response";
const REQUEST_NONCE: [u8; 12] = [0; 12];

/// Bytes of the AES-GCM nonce carried in a response.
pub(crate) const NONCE_LEN: usize = 12;
/// Bytes an AES-GCM tag adds to a plaintext.
pub(crate) const TAG_LEN: usize = 16;

/// One unlock's two AEAD keys; wiped when dropped.
pub(crate) struct SessionKeys {
    request: Zeroizing<[u8; 32]>,
    response: Zeroizing<[u8; 32]>,
}

impl SessionKeys {
    /// `shared_x` is the ECDH shared secret's x-coordinate.
    pub(crate) fn derive(
        shared_x: &[u8],
        lock_id: Id,
        ephemeral: &[u8; 33],
        lock_key: &[u8; 33],
    ) -> SessionKeys {
        let hk = Hkdf::<Sha256>::new(Some(SALT), shared_x);
        let mut info = [0u8; 16 + 33 + 33];
        info[..16].copy_from_slice(&lock_id.0);
        info[16..49].copy_from_slice(ephemeral);
        info[49..].copy_from_slice(lock_key);
        let mut request = Zeroizing::new([0u8; 32]);
        let mut response = Zeroizing::new([0u8; 32]);
        // 32 bytes is far below HKDF-SHA256's 8160-byte limit: expand cannot fail.
        hk.expand_multi_info(&[&info, REQUEST_INFO], request.as_mut())
            .expect("32 bytes is a valid HKDF-SHA256 length");
        hk.expand_multi_info(&[&info, RESPONSE_INFO], response.as_mut())
            .expect("32 bytes is a valid HKDF-SHA256 length");
        SessionKeys { request, response }
    }

    pub(crate) fn seal_request(&self, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        seal(&self.request, &REQUEST_NONCE, aad, plaintext)
    }

    pub(crate) fn open_request(&self, aad: &[u8], ciphertext: &[u8]) -> Option<Vec<u8>> {
        open(&self.request, &REQUEST_NONCE, aad, ciphertext)
    }

    pub(crate) fn seal_response(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Vec<u8> {
        seal(&self.response, nonce, aad, plaintext)
    }

    pub(crate) fn open_response(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        ciphertext: &[u8],
    ) -> Option<Vec<u8>> {
        open(&self.response, nonce, aad, ciphertext)
    }
}

fn seal(key: &[u8; 32], nonce: &[u8; NONCE_LEN], aad: &[u8], msg: &[u8]) -> Vec<u8> {
    Aes256Gcm::new(key.into())
        .encrypt(nonce.into(), Payload { msg, aad })
        // aes-gcm fails only for plaintexts above 64 GiB.
        .expect("plaintext fits AES-GCM limits")
}

fn open(key: &[u8; 32], nonce: &[u8; NONCE_LEN], aad: &[u8], msg: &[u8]) -> Option<Vec<u8>> {
    Aes256Gcm::new(key.into())
        .decrypt(nonce.into(), Payload { msg, aad })
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directions_and_inputs_give_distinct_keys() {
        let e = [2u8; 33];
        let l = [3u8; 33];
        let k = SessionKeys::derive(&[1; 32], Id([4; 16]), &e, &l);
        assert_ne!(*k.request, *k.response);
        let other_lock = SessionKeys::derive(&[1; 32], Id([5; 16]), &e, &l);
        assert_ne!(*k.request, *other_lock.request);
        let other_secret = SessionKeys::derive(&[9; 32], Id([4; 16]), &e, &l);
        assert_ne!(*k.response, *other_secret.response);
    }

    #[test]
    fn seal_open_and_tamper() {
        let k = SessionKeys::derive(&[1; 32], Id([4; 16]), &[2; 33], &[3; 33]);
        let ct = k.seal_request(b"aad", b"hello");
        assert_eq!(ct.len(), 5 + TAG_LEN);
        assert_eq!(k.open_request(b"aad", &ct).as_deref(), Some(&b"hello"[..]));
        assert_eq!(k.open_request(b"aaD", &ct), None);
        let nonce = [7u8; NONCE_LEN];
        let ct = k.seal_response(&nonce, b"", b"x");
        assert_eq!(k.open_response(&[8; NONCE_LEN], b"", &ct), None);
        // The request key does not open the response.
        assert_eq!(open(&k.request, &nonce, b"", &ct), None);
    }
}
