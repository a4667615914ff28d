//! Bluetooth LE as the core sees it: find a lock, connect, write fragments, read
//! notifications. One trait, three implementations: btleplug (desktop and tests over a fake
//! BlueZ), the app's own BLE stack (a foreign trait), and an in-memory link with a link model
//! for tests and benchmarks.

#[cfg(all(
    feature = "radio",
    any(
        target_os = "linux",
        target_os = "macos",
        target_os = "windows",
        target_os = "ios",
        target_os = "android"
    )
))]
pub mod btleplug;
pub mod memory;

use std::time::Duration;

use async_trait::async_trait;

/// The GATT service every lock advertises, and its one characteristic: the phone writes
/// fragments to it and the lock answers in notifications on it.
pub const SERVICE_UUID: &str = "6e0d0001-2f6c-4f2a-9c3e-0d00c0de0001";
pub const CHARACTERISTIC_UUID: &str = "6e0d0002-2f6c-4f2a-9c3e-0d00c0de0001";

/// What the core asks a transport to connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockTarget {
    /// The lock's id (32 hex digits), advertised by the lock so the phone can pick it out.
    pub lock_id: String,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum BleError {
    #[error("Bluetooth is off or not available")]
    Unavailable,
    #[error("the lock is not in range")]
    NotInRange,
    #[error("the connection to the lock dropped")]
    Disconnected,
    #[error("the lock did not answer in time")]
    Timeout,
    #[error("Bluetooth failed: {0}")]
    Other(String),
}

#[async_trait]
pub trait Transport: Send + Sync {
    /// Scans for the lock, connects, discovers the service and subscribes to notifications.
    async fn connect(
        &self,
        target: &LockTarget,
        timeout: Duration,
    ) -> Result<Box<dyn Connection>, BleError>;
}

#[async_trait]
pub trait Connection: Send {
    /// The negotiated ATT MTU; a write carries at most `mtu - 3` bytes.
    fn mtu(&self) -> usize;
    /// Writes one fragment (write without response).
    async fn write(&mut self, fragment: &[u8]) -> Result<(), BleError>;
    /// The next notification from the lock.
    async fn notification(&mut self) -> Result<Vec<u8>, BleError>;
    async fn close(&mut self);
}
