//! The default device key: a P-256 scalar kept in the OS credential store through
//! keyring-core (Keychain, Android Keystore-backed storage, Linux keyutils). The scalar is
//! read for each signature and zeroized right after; apps that can keep a non-exportable
//! hardware key implement `DeviceSigner` instead.

use std::sync::Arc;

use keyring_core::{CredentialStore, Entry, Error as KeyringError};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use zeroize::Zeroizing;

use crate::device::compressed;

const SERVICE: &str = "door-core device key";

#[derive(Debug, Clone, thiserror::Error)]
pub enum KeystoreError {
    #[error("no credential store is configured for this platform; pass a DeviceSigner")]
    NoStore,
    #[error("the credential store failed: {0}")]
    Store(String),
    #[error("the stored device key is damaged")]
    Damaged,
}

impl From<KeyringError> for KeystoreError {
    fn from(e: KeyringError) -> KeystoreError {
        match e {
            KeyringError::NoDefaultStore => KeystoreError::NoStore,
            other => KeystoreError::Store(other.to_string()),
        }
    }
}

/// Makes sure a default credential store exists: the platform's own where the core knows it.
/// An app that configured keyring-core itself keeps its choice.
pub fn ensure_default_store() -> Result<(), KeystoreError> {
    if keyring_core::get_default_store().is_some() {
        return Ok(());
    }
    keyring_core::set_default_store(platform_store()?);
    Ok(())
}

/// The platform's own store. On Android it reaches SharedPreferences and the Keystore through
/// JNI, so the app must first hand over its context (`io.crates.keyring.Keyring
/// .initializeNdkContext`, shipped in the android/ module); until then this fails and the app
/// should pass a DeviceSigner.
///
/// Built without the `platform-keystore` feature there is none: `NoStore`.
fn platform_store() -> Result<Arc<CredentialStore>, KeystoreError> {
    #[cfg(all(feature = "platform-keystore", target_os = "linux"))]
    return Ok(linux_keyutils_keyring_store::Store::new()?);
    #[cfg(all(feature = "platform-keystore", target_os = "android"))]
    return Ok(android_native_keyring_store::Store::new()?);
    // iOS apps are signed with a provisioning profile: the data-protection keychain.
    #[cfg(all(feature = "platform-keystore", target_os = "ios"))]
    return Ok(apple_native_keyring_store::protected::Store::new()?);
    #[cfg(all(feature = "platform-keystore", target_os = "macos"))]
    return Ok(apple_native_keyring_store::keychain::Store::new()?);
    #[allow(unreachable_code)]
    Err(KeystoreError::NoStore)
}

/// A device key in the credential store under `account` (one per data directory).
pub struct KeyringKey {
    entry: Entry,
}

impl KeyringKey {
    /// Opens the key, creating and storing a new one on first use.
    pub fn open_or_create(account: &str) -> Result<KeyringKey, KeystoreError> {
        let entry = Entry::new(SERVICE, account)?;
        match entry.get_secret() {
            Ok(secret) => {
                let secret = Zeroizing::new(secret);
                SigningKey::from_slice(&secret).map_err(|_| KeystoreError::Damaged)?;
            }
            Err(KeyringError::NoEntry) => {
                let key = SigningKey::random(&mut rand_core::OsRng);
                entry.set_secret(&Zeroizing::new(key.to_bytes().to_vec()))?;
            }
            Err(e) => return Err(e.into()),
        }
        Ok(KeyringKey { entry })
    }

    fn load(&self) -> Result<SigningKey, KeystoreError> {
        let secret = Zeroizing::new(self.entry.get_secret()?);
        SigningKey::from_slice(&secret).map_err(|_| KeystoreError::Damaged)
    }

    pub fn public_key(&self) -> Result<Vec<u8>, KeystoreError> {
        Ok(compressed(self.load()?.verifying_key()))
    }

    pub fn sign(&self, message: &[u8]) -> Result<[u8; 64], KeystoreError> {
        let sig: Signature = self.load()?.sign(message);
        Ok(sig.to_bytes().into())
    }

    /// Forgets the key (sign-out): the next person on this device gets a new one.
    pub fn delete(&self) -> Result<(), KeystoreError> {
        match self.entry.delete_credential() {
            Ok(()) | Err(KeyringError::NoEntry) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_made_once_and_reused_then_forgotten() {
        keyring_core::set_default_store(keyring_core::mock::Store::new().unwrap());
        let a = KeyringKey::open_or_create("test-account").unwrap();
        let b = KeyringKey::open_or_create("test-account").unwrap();
        assert_eq!(a.public_key().unwrap(), b.public_key().unwrap());
        let old = a.public_key().unwrap();
        let sig = a.sign(&crate::device::possession_message(b"x")).unwrap();
        crate::device::check_possession(&old, b"x", &sig).unwrap();
        a.delete().unwrap();
        assert!(a.sign(b"m").is_err(), "a forgotten key cannot sign");
        let c = KeyringKey::open_or_create("test-account").unwrap();
        assert_ne!(c.public_key().unwrap(), old);
    }
}
