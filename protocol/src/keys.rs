//! Issuer keys: the property's P-256 signing key (held by the server), its public half, the
//! 8-byte key id that names it inside COSE headers, and the set of public keys a verifier
//! trusts. Also each lock's static key: it anchors BLE unlock sessions (ECDH) and signs the
//! lock's audit records.

use alloc::vec::Vec;
use core::fmt;

use p256::ecdsa::{SigningKey, VerifyingKey};
use rand_core::CryptoRngCore;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// A key id: the first 8 bytes of SHA-256 over the SEC1 compressed public key.
///
/// Derived rather than assigned, so that a verifier can recompute it from the key it was
/// given and two parties cannot disagree about which key an id names.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId(pub [u8; 8]);

impl KeyId {
    pub const LEN: usize = 8;
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// Why key material was refused.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum KeyError {
    /// The 32 bytes are zero or not below the group order.
    InvalidScalar,
    /// The bytes are not a SEC1 encoding of a point on P-256.
    InvalidPoint,
    /// A different key with the same key id is already in the set (a 64-bit collision: never
    /// by accident, so refused rather than shadowed).
    KidCollision { kid: KeyId },
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::InvalidScalar => f.write_str("not a valid P-256 private key"),
            KeyError::InvalidPoint => f.write_str("not a valid P-256 public key"),
            KeyError::KidCollision { kid } => write!(f, "another key already has key id {kid}"),
        }
    }
}

impl core::error::Error for KeyError {}

/// The property's issuer signing key. The scalar is zeroized on drop (p256's `SigningKey`
/// does that itself).
#[derive(Clone)]
pub struct IssuerKey {
    signing: SigningKey,
    public: IssuerPublicKey,
}

impl IssuerKey {
    /// Draws a fresh key from `rng`.
    pub fn generate(rng: &mut impl CryptoRngCore) -> IssuerKey {
        IssuerKey::from_signing(SigningKey::random(rng))
    }

    /// The key from its 32-byte big-endian scalar.
    pub fn from_bytes(scalar: &[u8; 32]) -> Result<IssuerKey, KeyError> {
        SigningKey::from_bytes(scalar.into())
            .map(IssuerKey::from_signing)
            .map_err(|_| KeyError::InvalidScalar)
    }

    /// The 32-byte big-endian scalar, for the server's key store; wiped when dropped.
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.signing.to_bytes().into())
    }

    fn from_signing(signing: SigningKey) -> IssuerKey {
        let public = IssuerPublicKey::new(*signing.verifying_key());
        IssuerKey { signing, public }
    }

    pub fn verifying(&self) -> &IssuerPublicKey {
        &self.public
    }

    pub fn kid(&self) -> KeyId {
        self.public.kid
    }

    pub(crate) fn signing_key(&self) -> &SigningKey {
        &self.signing
    }
}

impl fmt::Debug for IssuerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the scalar.
        write!(f, "IssuerKey({})", self.public.kid)
    }
}

/// An issuer's public key with its key id.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct IssuerPublicKey {
    key: VerifyingKey,
    kid: KeyId,
}

impl IssuerPublicKey {
    fn new(key: VerifyingKey) -> IssuerPublicKey {
        let kid = kid_of(&sec1_compressed(&key));
        IssuerPublicKey { key, kid }
    }

    /// From a SEC1 encoding (compressed, 33 bytes, or uncompressed, 65 bytes).
    pub fn from_sec1(bytes: &[u8]) -> Result<IssuerPublicKey, KeyError> {
        VerifyingKey::from_sec1_bytes(bytes)
            .map(IssuerPublicKey::new)
            .map_err(|_| KeyError::InvalidPoint)
    }

    /// The 33-byte SEC1 compressed encoding, the form the key id is computed over.
    pub fn to_sec1_compressed(&self) -> [u8; 33] {
        sec1_compressed(&self.key)
    }

    pub fn kid(&self) -> KeyId {
        self.kid
    }

    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.key
    }
}

/// A lock's static P-256 key. One key serves both the unlock sessions' ECDH (so a phone that
/// completes a session knows it spoke to the holder of this key) and the ES256 signatures on
/// the lock's audit records. The scalar is zeroized on drop (p256's `SigningKey` does that).
#[derive(Clone)]
pub struct LockKey {
    signing: SigningKey,
    public: LockPublicKey,
}

impl LockKey {
    /// Draws a fresh key from `rng`.
    pub fn generate(rng: &mut impl CryptoRngCore) -> LockKey {
        LockKey::from_signing(SigningKey::random(rng))
    }

    /// The key from its 32-byte big-endian scalar.
    pub fn from_bytes(scalar: &[u8; 32]) -> Result<LockKey, KeyError> {
        SigningKey::from_bytes(scalar.into())
            .map(LockKey::from_signing)
            .map_err(|_| KeyError::InvalidScalar)
    }

    /// The 32-byte big-endian scalar, for the lock's key store; wiped when dropped.
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.signing.to_bytes().into())
    }

    fn from_signing(signing: SigningKey) -> LockKey {
        let public = LockPublicKey::new(*signing.verifying_key());
        LockKey { signing, public }
    }

    pub fn public(&self) -> &LockPublicKey {
        &self.public
    }

    pub(crate) fn signing_key(&self) -> &SigningKey {
        &self.signing
    }
}

impl fmt::Debug for LockKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the scalar.
        write!(f, "LockKey({})", self.public.kid)
    }
}

/// A lock's public key, as phones cache it and the server verifies audit records with it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct LockPublicKey {
    key: VerifyingKey,
    compressed: [u8; 33],
    kid: KeyId,
}

impl LockPublicKey {
    fn new(key: VerifyingKey) -> LockPublicKey {
        let compressed = sec1_compressed(&key);
        LockPublicKey {
            key,
            compressed,
            kid: kid_of(&compressed),
        }
    }

    /// From a SEC1 encoding (compressed, 33 bytes, or uncompressed, 65 bytes).
    pub fn from_sec1(bytes: &[u8]) -> Result<LockPublicKey, KeyError> {
        VerifyingKey::from_sec1_bytes(bytes)
            .map(LockPublicKey::new)
            .map_err(|_| KeyError::InvalidPoint)
    }

    /// The 33-byte SEC1 compressed encoding: what the unlock key schedule and transcript bind.
    pub fn to_sec1_compressed(&self) -> [u8; 33] {
        self.compressed
    }

    /// Names the key in audit records' COSE headers, computed as for issuer keys.
    pub fn kid(&self) -> KeyId {
        self.kid
    }

    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.key
    }
}

fn sec1_compressed(key: &VerifyingKey) -> [u8; 33] {
    let point = key.to_encoded_point(true);
    let mut out = [0u8; 33];
    // A compressed encoding of a valid (non-identity) point is always 33 bytes.
    out.copy_from_slice(point.as_bytes());
    out
}

fn kid_of(sec1_compressed: &[u8; 33]) -> KeyId {
    let digest = Sha256::digest(sec1_compressed);
    let mut kid = [0u8; 8];
    kid.copy_from_slice(&digest[..8]);
    KeyId(kid)
}

/// The issuer public keys a verifier trusts, looked up by key id. Holding more than one lets
/// a property rotate its key: documents signed by the old key keep verifying until the old key
/// is removed.
#[derive(Clone, Default, Debug)]
pub struct IssuerKeys {
    keys: Vec<IssuerPublicKey>,
}

impl IssuerKeys {
    pub fn new() -> IssuerKeys {
        IssuerKeys::default()
    }

    /// A set holding just `key`.
    pub fn single(key: IssuerPublicKey) -> IssuerKeys {
        IssuerKeys {
            keys: alloc::vec![key],
        }
    }

    /// Adds `key`; adding a key already present is a no-op.
    pub fn insert(&mut self, key: IssuerPublicKey) -> Result<(), KeyError> {
        match self.get(key.kid) {
            Some(existing) if *existing == key => Ok(()),
            Some(_) => Err(KeyError::KidCollision { kid: key.kid }),
            None => {
                self.keys.push(key);
                Ok(())
            }
        }
    }

    /// Removes the key named `kid`; returns whether it was present.
    pub fn remove(&mut self, kid: KeyId) -> bool {
        let before = self.keys.len();
        self.keys.retain(|k| k.kid != kid);
        self.keys.len() != before
    }

    pub fn get(&self, kid: KeyId) -> Option<&IssuerPublicKey> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &IssuerPublicKey> {
        self.keys.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kid_is_sha256_prefix_of_compressed_key() {
        let key = IssuerKey::from_bytes(&[7u8; 32]).unwrap();
        let sec1 = key.verifying().to_sec1_compressed();
        let digest = Sha256::digest(sec1);
        assert_eq!(key.kid().0, digest[..8]);
        assert!(sec1[0] == 2 || sec1[0] == 3);
    }

    #[test]
    fn generated_keys_are_distinct_and_round_trip() {
        let a = IssuerKey::generate(&mut rand_core::OsRng);
        let b = IssuerKey::generate(&mut rand_core::OsRng);
        assert_ne!(a.kid(), b.kid());
        let again = IssuerKey::from_bytes(&a.to_bytes()).unwrap();
        assert_eq!(again.verifying(), a.verifying());
    }

    #[test]
    fn scalar_round_trips_and_invalid_scalars_are_refused() {
        let key = IssuerKey::from_bytes(&[7u8; 32]).unwrap();
        assert_eq!(*key.to_bytes(), [7u8; 32]);
        assert_eq!(
            IssuerKey::from_bytes(&[0u8; 32]).unwrap_err(),
            KeyError::InvalidScalar
        );
        assert_eq!(
            IssuerKey::from_bytes(&[0xff; 32]).unwrap_err(),
            KeyError::InvalidScalar
        );
    }

    #[test]
    fn public_key_parses_both_sec1_forms() {
        let key = IssuerKey::from_bytes(&[9u8; 32]).unwrap();
        let compressed = key.verifying().to_sec1_compressed();
        let uncompressed = key.verifying().verifying_key().to_encoded_point(false);
        assert_eq!(
            IssuerPublicKey::from_sec1(&compressed).unwrap(),
            *key.verifying()
        );
        assert_eq!(
            IssuerPublicKey::from_sec1(uncompressed.as_bytes()).unwrap(),
            *key.verifying()
        );
        // x = 2^256 - 1 is not below the field prime.
        let mut bad = [0xffu8; 33];
        bad[0] = 2;
        assert_eq!(
            IssuerPublicKey::from_sec1(&bad).unwrap_err(),
            KeyError::InvalidPoint
        );
    }

    #[test]
    fn key_set_insert_get_remove() {
        let a = *IssuerKey::from_bytes(&[1u8; 32]).unwrap().verifying();
        let b = *IssuerKey::from_bytes(&[2u8; 32]).unwrap().verifying();
        let mut set = IssuerKeys::single(a);
        set.insert(a).unwrap();
        set.insert(b).unwrap();
        assert_eq!(set.len(), 2);
        assert_eq!(set.get(b.kid()), Some(&b));
        assert!(set.remove(a.kid()));
        assert!(!set.remove(a.kid()));
        assert_eq!(set.get(a.kid()), None);
    }

    #[test]
    fn lock_keys_round_trip_and_name_themselves_like_issuer_keys() {
        let key = LockKey::from_bytes(&[3u8; 32]).unwrap();
        assert_eq!(*key.to_bytes(), [3u8; 32]);
        let public = LockPublicKey::from_sec1(&key.public().to_sec1_compressed()).unwrap();
        assert_eq!(public, *key.public());
        let issuer = IssuerKey::from_bytes(&[3u8; 32]).unwrap();
        assert_eq!(public.kid(), issuer.kid());
        assert_eq!(
            alloc::format!("{key:?}"),
            alloc::format!("LockKey({})", key.public().kid())
        );
    }

    #[test]
    fn debug_does_not_show_the_scalar() {
        let key = IssuerKey::from_bytes(&[7u8; 32]).unwrap();
        let shown = alloc::format!("{key:?}");
        assert_eq!(shown, alloc::format!("IssuerKey({})", key.kid()));
    }
}
