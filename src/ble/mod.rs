//! Bluetooth LE as the core sees it: scan for locks, connect, write fragments, read
//! notifications. One trait, three implementations: btleplug (the core's own radio on phones
//! and desktops, tested over a fake BlueZ), the app's own BLE stack (a foreign trait), and an
//! in-memory link with a link model for tests and benchmarks.

#[cfg(feature = "radio")]
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

/// What went wrong on the radio, in the terms an app acts on: ask to turn Bluetooth on, ask
/// for the permission, walk closer, try again.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum BleError {
    /// No Bluetooth LE on this device, or no transport to reach it.
    #[error("Bluetooth is not available")]
    Unavailable,
    /// The adapter is there but switched off.
    #[error("Bluetooth is off")]
    Off,
    /// The app lacks the permission to scan or connect.
    #[error("the app is not permitted to use Bluetooth")]
    PermissionMissing,
    /// This transport cannot scan on the core's behalf (an app's own stack).
    #[error("this Bluetooth transport cannot scan for locks")]
    ScanUnsupported,
    #[error("the lock is not in range")]
    NotInRange,
    /// The lock was seen but the connection could not be set up.
    #[error("the connection to the lock failed: {0}")]
    ConnectFailed(String),
    #[error("the connection to the lock dropped")]
    Disconnected,
    #[error("the lock did not answer in time")]
    Timeout,
    #[error("Bluetooth failed: {0}")]
    Other(String),
}

/// One advertisement of a lock: which lock, and how strong its signal arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sighting {
    /// The advertised lock id, 32 hex digits.
    pub lock_id: String,
    /// Received signal strength, dBm.
    pub rssi: i16,
}

#[async_trait]
pub trait Transport: Send + Sync {
    /// Scans for locks until `stop` is cancelled, sending every advertisement seen to
    /// `sightings` (dropping some when the receiver lags behind is fine) and, if the scan
    /// ends on its own (Bluetooth switched off), the reason as its last message. Returns once
    /// the scan runs, or the reason it cannot start. Scanning must not disturb `connect`.
    async fn scan(
        &self,
        sightings: tokio::sync::mpsc::Sender<Result<Sighting, BleError>>,
        stop: tokio_util::sync::CancellationToken,
    ) -> Result<(), BleError> {
        let _ = (sightings, stop);
        Err(BleError::ScanUnsupported)
    }

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
