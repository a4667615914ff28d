//! An app's own BLE stack as the core's transport (CoreBluetooth, Android's BluetoothGatt):
//! the app scans, connects and moves bytes; the core does everything else.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::ble::{BleError, Connection, LockTarget, Transport, CHARACTERISTIC_UUID, SERVICE_UUID};

#[derive(Debug, Clone, thiserror::Error, uniffi::Error)]
pub enum BleFailure {
    /// No Bluetooth LE on this device.
    #[error("Bluetooth is not available")]
    Unavailable,
    #[error("Bluetooth is off")]
    Off,
    #[error("the app may not use Bluetooth")]
    PermissionMissing,
    #[error("the lock is not in range")]
    NotInRange,
    /// The lock was found but the connection could not be set up (GATT errors such as
    /// Android's 133 after the app's own retries).
    #[error("the connection failed: {reason}")]
    ConnectionFailed { reason: String },
    #[error("the connection dropped")]
    Disconnected,
    #[error("timed out")]
    Timeout,
    #[error("{reason}")]
    Other { reason: String },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for BleFailure {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> BleFailure {
        BleFailure::Other { reason: e.reason }
    }
}

/// An app's BLE stack: finds, connects to and talks with locks. The lock advertises the
/// service `lock_service_uuid()` with its lock id (16 bytes) as service data; filter scan
/// results on it yourself, since the OS may merge scan filters. The core keeps at most one
/// connection per lock, so each call names the lock it is about.
#[uniffi::export(foreign)]
#[async_trait]
pub trait BleTransport: Send + Sync {
    /// Scan for the lock whose id is `lock_id` (32 hex digits), connect, discover the
    /// service, subscribe to notifications of `lock_characteristic_uuid()`, and return the
    /// negotiated ATT MTU (the core writes at most MTU - 3 bytes at a time).
    async fn connect(&self, lock_id: String, timeout_ms: u64) -> Result<u16, BleFailure>;
    /// Write without response to the lock characteristic.
    async fn write(&self, lock_id: String, fragment: Vec<u8>) -> Result<(), BleFailure>;
    /// The next notification of the lock characteristic, in order.
    async fn next_notification(&self, lock_id: String) -> Result<Vec<u8>, BleFailure>;
    async fn disconnect(&self, lock_id: String);
}

#[uniffi::export]
pub fn lock_service_uuid() -> String {
    SERVICE_UUID.to_owned()
}

#[uniffi::export]
pub fn lock_characteristic_uuid() -> String {
    CHARACTERISTIC_UUID.to_owned()
}

fn from_failure(e: BleFailure) -> BleError {
    match e {
        BleFailure::Unavailable => BleError::Unavailable,
        BleFailure::Off => BleError::Off,
        BleFailure::PermissionMissing => BleError::PermissionMissing,
        BleFailure::NotInRange => BleError::NotInRange,
        BleFailure::ConnectionFailed { reason } => BleError::ConnectFailed(reason),
        BleFailure::Disconnected => BleError::Disconnected,
        BleFailure::Timeout => BleError::Timeout,
        BleFailure::Other { reason } => BleError::Other(reason),
    }
}

pub(crate) struct ForeignTransport(pub Arc<dyn BleTransport>);

#[async_trait]
impl Transport for ForeignTransport {
    async fn connect(
        &self,
        target: &LockTarget,
        timeout: Duration,
    ) -> Result<Box<dyn Connection>, BleError> {
        let ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        let mtu = self
            .0
            .connect(target.lock_id.clone(), ms)
            .await
            .map_err(from_failure)?;
        Ok(Box::new(ForeignConnection {
            app: self.0.clone(),
            lock_id: target.lock_id.clone(),
            mtu: usize::from(mtu).max(23),
        }))
    }
}

struct ForeignConnection {
    app: Arc<dyn BleTransport>,
    lock_id: String,
    mtu: usize,
}

#[async_trait]
impl Connection for ForeignConnection {
    fn mtu(&self) -> usize {
        self.mtu
    }

    async fn write(&mut self, fragment: &[u8]) -> Result<(), BleError> {
        self.app
            .write(self.lock_id.clone(), fragment.to_vec())
            .await
            .map_err(from_failure)
    }

    async fn notification(&mut self) -> Result<Vec<u8>, BleError> {
        self.app
            .next_notification(self.lock_id.clone())
            .await
            .map_err(from_failure)
    }

    async fn close(&mut self) {
        self.app.disconnect(self.lock_id.clone()).await
    }
}
