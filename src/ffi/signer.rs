//! The device key across the boundary: apps implement `DeviceSigner` over their hardware
//! keystore (Secure Enclave, Android Keystore), or use the core's software signer.

use std::sync::Arc;

use super::DoorError;
use crate::device::{self, SoftwareKey};
use crate::live::LiveToken;

/// A P-256 key that signs with ECDSA over SHA-256. Implemented by apps (hardware-backed,
/// non-exportable keys) or by the core.
#[uniffi::export(rust, foreign)]
pub trait DeviceSigner: Send + Sync {
    /// The public key as a SEC1 point, compressed (33 bytes) or uncompressed (65 bytes).
    fn public_key(&self) -> Result<Vec<u8>, DoorError>;
    /// ECDSA P-256 / SHA-256 over `message` (the signer hashes), as raw r||s (64 bytes) or DER.
    fn sign(&self, message: Vec<u8>) -> Result<Vec<u8>, DoorError>;
}

/// Proof that this device holds its key, answering a server challenge.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct DeviceProof {
    /// SEC1 compressed public key (33 bytes).
    pub public_key: Vec<u8>,
    /// Raw r||s, low S (64 bytes).
    pub signature: Vec<u8>,
}

/// Has `signer` sign the possession message for `challenge`, checks the signature, and
/// returns it normalized. The signer runs on a blocking thread: a hardware keystore may
/// take its time (or wait for the user).
#[uniffi::export(async_runtime = "tokio")]
pub async fn prove_device_possession(
    signer: Arc<dyn DeviceSigner>,
    challenge: Vec<u8>,
) -> Result<DeviceProof, DoorError> {
    if challenge.is_empty() {
        return Err(DoorError::invalid("challenge", "must not be empty"));
    }
    tokio::task::spawn_blocking(move || {
        let public_key = signer.public_key()?;
        let signature = signer.sign(device::possession_message(&challenge))?;
        let proof = device::check_possession(&public_key, &challenge, &signature)?;
        Ok(DeviceProof {
            public_key: proof.public_key,
            signature: proof.signature.to_vec(),
        })
    })
    .await
    .map_err(|e| DoorError::DeviceKey {
        reason: format!("the signing task failed: {e}"),
    })?
}

/// A device key held in memory for the life of the object: for tests, demos and desktop
/// tools. Apps keep their key in the platform keystore instead.
struct EphemeralSigner {
    key: SoftwareKey,
    _live: LiveToken,
}

impl DeviceSigner for EphemeralSigner {
    fn public_key(&self) -> Result<Vec<u8>, DoorError> {
        Ok(self.key.public_key())
    }

    fn sign(&self, message: Vec<u8>) -> Result<Vec<u8>, DoorError> {
        Ok(self.key.sign(&message).to_vec())
    }
}

/// A new in-memory device key (see `DeviceSigner`).
#[uniffi::export]
pub fn ephemeral_device_signer() -> Arc<dyn DeviceSigner> {
    Arc::new(EphemeralSigner {
        key: SoftwareKey::generate(),
        _live: LiveToken::new(),
    })
}
