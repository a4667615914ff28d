//! How the core signs with the device key, whichever holds it (the app's hardware keystore
//! through the foreign `DeviceSigner`, or the default key store). Its own module so that the
//! services that sign (sessions in `client`, unlocking in `unlock`) depend on it and not on
//! each other.

use crate::error::CoreResult;

pub trait Signer: Send + Sync {
    fn public_key(&self) -> CoreResult<Vec<u8>>;
    fn sign(&self, message: &[u8]) -> CoreResult<Vec<u8>>;
    /// Called on sign-out: a key the core made is forgotten with the person.
    fn forget(&self) -> CoreResult<()> {
        Ok(())
    }
}
