//! The desktop client's device key: a P-256 key in a file of the data directory, readable by
//! its owner only (mode 0600), like an SSH key.
//!
//! Why not door-core's default (the OS credential store; on Linux the kernel keyutils
//! store): a keyutils key lives in the session keyring and the per-user persistent keyring,
//! which the kernel expires a few days after the last login session ends
//! (/proc/sys/kernel/keys/persistent_keyring_expiry), and a lost device key means signing in
//! again. And on the machines this project's CI runs on, keyring-core's keyutils store fails
//! outright: the key is added, then reading or linking it is refused (`AccessDenied`).

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use door_core::{DeviceSigner, DoorError};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use zeroize::Zeroizing;

pub struct FileSigner {
    key: SigningKey,
}

fn key_error(reason: impl std::fmt::Display) -> DoorError {
    DoorError::DeviceKey {
        reason: reason.to_string(),
    }
}

impl FileSigner {
    /// A new key, written to `path` (replacing any older one) with mode 0600.
    pub fn create(path: &Path) -> Result<FileSigner, DoorError> {
        let key = SigningKey::random(&mut rand_core::OsRng);
        let hex = Zeroizing::new(hex::encode(key.to_bytes()));
        // A new file, so the mode applies from the first byte written.
        let fresh = path.with_extension("new");
        let _ = std::fs::remove_file(&fresh);
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options
            .open(&fresh)
            .map_err(|e| key_error(format!("cannot create {}: {e}", fresh.display())))?;
        file.write_all(hex.as_bytes())
            .and_then(|()| file.sync_all())
            .and_then(|()| std::fs::rename(&fresh, path))
            .map_err(|e| key_error(format!("cannot write {}: {e}", path.display())))?;
        Ok(FileSigner { key })
    }

    /// The key at `path`.
    pub fn open(path: &Path) -> Result<FileSigner, DoorError> {
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
            key_error(format!(
                "cannot read {} ({e}); sign in again with `door login`",
                path.display()
            ))
        })?);
        let bytes = Zeroizing::new(
            hex::decode(text.trim())
                .map_err(|_| key_error(format!("{} is damaged", path.display())))?,
        );
        let key = SigningKey::from_slice(&bytes)
            .map_err(|_| key_error(format!("{} is damaged", path.display())))?;
        Ok(FileSigner { key })
    }

    /// Where the key of the data directory `dir` lives.
    pub fn path_in(dir: &Path) -> PathBuf {
        dir.join("device-key")
    }
}

impl DeviceSigner for FileSigner {
    fn public_key(&self) -> Result<Vec<u8>, DoorError> {
        Ok(self
            .key
            .verifying_key()
            .to_encoded_point(true)
            .as_bytes()
            .to_vec())
    }

    fn sign(&self, message: Vec<u8>) -> Result<Vec<u8>, DoorError> {
        let signature: Signature = self.key.sign(&message);
        Ok(signature.to_bytes().to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn a_key_is_kept_owner_only_and_reopened() {
        let dir = tempfile::tempdir().unwrap();
        let path = FileSigner::path_in(dir.path());
        let made = FileSigner::create(&path).unwrap();
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&path).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
        let again = FileSigner::open(&path).unwrap();
        assert_eq!(made.public_key().unwrap(), again.public_key().unwrap());
        let proof = door_core::device::possession_message(b"challenge");
        let sig = again.sign(proof).unwrap();
        door_core::device::check_possession(&again.public_key().unwrap(), b"challenge", &sig)
            .unwrap();
        assert_ne!(
            FileSigner::create(&path).unwrap().public_key().unwrap(),
            made.public_key().unwrap(),
            "a new sign-in makes a new key"
        );
    }
}
