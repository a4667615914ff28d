//! The desktop BLE stack through btleplug (BlueZ on Linux, CoreBluetooth on macOS, WinRT on
//! Windows). Locks advertise the door-core service with their lock id as its service data;
//! BlueZ merges the scan filters of every app on the machine, so results are filtered here.

use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use btleplug::api::{
    Central, CentralEvent, Characteristic, Manager as _, Peripheral as _, ScanFilter,
    ValueNotification, WriteType,
};
use btleplug::platform::{Adapter, Manager, Peripheral};
use futures::{Stream, StreamExt};
use tokio::time::Instant;
use uuid::Uuid;

use super::{BleError, Connection, LockTarget, Transport, CHARACTERISTIC_UUID, SERVICE_UUID};

fn service() -> Uuid {
    Uuid::parse_str(SERVICE_UUID).expect("a valid UUID constant")
}

fn characteristic() -> Uuid {
    Uuid::parse_str(CHARACTERISTIC_UUID).expect("a valid UUID constant")
}

fn other(e: btleplug::Error) -> BleError {
    match e {
        btleplug::Error::NotConnected => BleError::Disconnected,
        btleplug::Error::TimedOut(_) => BleError::Timeout,
        btleplug::Error::PermissionDenied => BleError::Unavailable,
        e => BleError::Other(e.to_string()),
    }
}

/// Finds locks with the first Bluetooth adapter of the machine.
#[derive(Default)]
pub struct BtleplugTransport {
    adapter: tokio::sync::OnceCell<Adapter>,
}

impl BtleplugTransport {
    pub fn new() -> BtleplugTransport {
        BtleplugTransport::default()
    }

    async fn adapter(&self) -> Result<&Adapter, BleError> {
        self.adapter
            .get_or_try_init(|| async {
                let manager = Manager::new().await.map_err(|_| BleError::Unavailable)?;
                let adapters = manager
                    .adapters()
                    .await
                    .map_err(|_| BleError::Unavailable)?;
                adapters.into_iter().next().ok_or(BleError::Unavailable)
            })
            .await
    }

    async fn find(
        &self,
        adapter: &Adapter,
        lock_id: &[u8],
        deadline: Instant,
    ) -> Result<Peripheral, BleError> {
        let mut events = adapter.events().await.map_err(other)?;
        adapter
            .start_scan(ScanFilter {
                services: vec![service()],
            })
            .await
            .map_err(other)?;
        // A lock seen by an earlier scan may not advertise anew before the deadline.
        for p in adapter.peripherals().await.map_err(other)? {
            if is_lock(&p, lock_id).await {
                return Ok(p);
            }
        }
        loop {
            let event = tokio::time::timeout_at(deadline, events.next())
                .await
                .map_err(|_| BleError::NotInRange)?;
            let id = match event.ok_or(BleError::Unavailable)? {
                CentralEvent::DeviceDiscovered(id)
                | CentralEvent::DeviceUpdated(id)
                | CentralEvent::ServiceDataAdvertisement { id, .. } => id,
                _ => continue,
            };
            if let Ok(p) = adapter.peripheral(&id).await {
                if is_lock(&p, lock_id).await {
                    return Ok(p);
                }
            }
        }
    }
}

async fn within<T>(
    deadline: Instant,
    step: impl std::future::Future<Output = btleplug::Result<T>>,
) -> Result<T, BleError> {
    tokio::time::timeout_at(deadline, step)
        .await
        .map_err(|_| BleError::Timeout)?
        .map_err(other)
}

async fn is_lock(p: &Peripheral, lock_id: &[u8]) -> bool {
    matches!(p.properties().await, Ok(Some(props)) if props.service_data.get(&service()).is_some_and(|d| d == lock_id))
}

#[async_trait]
impl Transport for BtleplugTransport {
    async fn connect(
        &self,
        target: &LockTarget,
        timeout: Duration,
    ) -> Result<Box<dyn Connection>, BleError> {
        let deadline = Instant::now() + timeout;
        let lock_id = hex_bytes(&target.lock_id)
            .ok_or_else(|| BleError::Other("lock id is not hex".into()))?;
        let adapter = self.adapter().await?;
        let found = self.find(adapter, &lock_id, deadline).await;
        let _ = adapter.stop_scan().await;
        let peripheral = found?;
        within(deadline, peripheral.connect()).await?;
        within(deadline, peripheral.discover_services()).await?;
        let ch = peripheral
            .characteristics()
            .into_iter()
            .find(|c| c.uuid == characteristic())
            .ok_or_else(|| BleError::Other("the lock has no door-core characteristic".into()))?;
        // Subscribe before the first write so no answer can be missed.
        let notifications = peripheral.notifications().await.map_err(other)?;
        within(deadline, peripheral.subscribe(&ch)).await?;
        Ok(Box::new(BtleplugConnection {
            peripheral,
            characteristic: ch,
            notifications,
        }))
    }
}

struct BtleplugConnection {
    peripheral: Peripheral,
    characteristic: Characteristic,
    notifications: Pin<Box<dyn Stream<Item = ValueNotification> + Send>>,
}

#[async_trait]
impl Connection for BtleplugConnection {
    fn mtu(&self) -> usize {
        // BlueZ reports the negotiated MTU; 23 is the floor every link has.
        usize::from(self.peripheral.mtu()).max(23)
    }

    async fn write(&mut self, fragment: &[u8]) -> Result<(), BleError> {
        self.peripheral
            .write(&self.characteristic, fragment, WriteType::WithoutResponse)
            .await
            .map_err(other)
    }

    async fn notification(&mut self) -> Result<Vec<u8>, BleError> {
        loop {
            match self.notifications.next().await {
                Some(n) if n.uuid == self.characteristic.uuid => return Ok(n.value),
                Some(_) => continue,
                None => return Err(BleError::Disconnected),
            }
        }
    }

    async fn close(&mut self) {
        let _ = self.peripheral.disconnect().await;
    }
}

fn hex_bytes(s: &str) -> Option<Vec<u8>> {
    door_protocol::Id::from_hex(s).map(|id| id.0.to_vec())
}
