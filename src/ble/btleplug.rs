//! The core's own radio through btleplug (CoreBluetooth on iOS and macOS, droidplug on
//! Android, BlueZ on Linux, WinRT on Windows). Locks advertise the door-core service with their
//! lock id as its service data; the OS may merge the scan filters of every app on the
//! device, so results are filtered here.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use btleplug::api::{
    Central, CentralEvent, CentralState, Characteristic, Manager as _, Peripheral as _, ScanFilter,
    ValueNotification, WriteType,
};
use btleplug::platform::{Adapter, Manager, Peripheral};
use futures::{Stream, StreamExt};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{
    BleError, Connection, LockTarget, Sighting, Transport, CHARACTERISTIC_UUID, SERVICE_UUID,
};

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
        btleplug::Error::PermissionDenied => BleError::PermissionMissing,
        btleplug::Error::NoAdapterAvailable => BleError::Unavailable,
        e => {
            // BlueZ's refusals reach btleplug (on Linux) as a wrapped D-Bus error; its name
            // is in the debug form only.
            let text = format!("{e:?}");
            if text.contains("NotReady") {
                BleError::Off
            } else if ["AccessDenied", "NotPermitted", "NotAuthorized"]
                .iter()
                .any(|name| text.contains(name))
            {
                BleError::PermissionMissing
            } else {
                BleError::Other(e.to_string())
            }
        }
    }
}

/// A failed connection attempt: the lock was seen, so what is not about the adapter is about
/// the link.
fn connect_error(e: btleplug::Error) -> BleError {
    match other(e) {
        BleError::Other(reason) => BleError::ConnectFailed(reason),
        e => e,
    }
}

/// Finds locks with the first Bluetooth adapter of the machine.
#[derive(Default)]
pub struct BtleplugTransport {
    adapter: tokio::sync::OnceCell<Adapter>,
    /// How many scans want the radio (a connect's search, a proximity scan): BlueZ keeps one
    /// discovery session per client, so the adapter scans while any of them runs.
    scans: Arc<tokio::sync::Mutex<u32>>,
}

impl BtleplugTransport {
    pub fn new() -> BtleplugTransport {
        BtleplugTransport::default()
    }

    async fn adapter(&self) -> Result<&Adapter, BleError> {
        #[cfg(target_os = "android")]
        if !crate::android::radio_ready() {
            return Err(BleError::Unavailable);
        }
        self.adapter
            .get_or_try_init(|| async {
                let manager = Manager::new().await.map_err(other)?;
                let adapters = manager.adapters().await.map_err(other)?;
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
                CentralEvent::StateUpdate(CentralState::PoweredOff) => return Err(BleError::Off),
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

/// Starts the adapter scanning for locks unless another scan already has it, after checking
/// that Bluetooth is on (a switched-off adapter is `Off`, not a generic failure).
async fn start_scanning(
    scans: &tokio::sync::Mutex<u32>,
    adapter: &Adapter,
) -> Result<(), BleError> {
    let mut running = scans.lock().await;
    if *running == 0 {
        if adapter.adapter_state().await.map_err(other)? == CentralState::PoweredOff {
            return Err(BleError::Off);
        }
        adapter
            .start_scan(ScanFilter {
                services: vec![service()],
            })
            .await
            .map_err(other)?;
    }
    *running += 1;
    Ok(())
}

async fn stop_scanning(scans: &tokio::sync::Mutex<u32>, adapter: &Adapter) {
    let mut running = scans.lock().await;
    *running = running.saturating_sub(1);
    if *running == 0 {
        let _ = adapter.stop_scan().await;
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

/// The lock a peripheral advertises, with its last signal strength.
async fn sighting(adapter: &Adapter, id: &btleplug::platform::PeripheralId) -> Option<Sighting> {
    let props = adapter
        .peripheral(id)
        .await
        .ok()?
        .properties()
        .await
        .ok()??;
    let lock = props.service_data.get(&service())?;
    let lock_id = door_protocol::Id::from_slice(lock)?.to_string();
    Some(Sighting {
        lock_id,
        rssi: props.rssi?,
    })
}

/// Reports sightings until stopped; ends with `Off` when the adapter is switched off.
async fn report_sightings(
    adapter: Adapter,
    mut events: Pin<Box<dyn Stream<Item = CentralEvent> + Send>>,
    sightings: mpsc::Sender<Result<Sighting, BleError>>,
    stop: CancellationToken,
) {
    // Locks already known (a scan that was running before) count as seen now.
    if let Ok(known) = adapter.peripherals().await {
        for p in known {
            if let Some(seen) = sighting(&adapter, &p.id()).await {
                let _ = sightings.try_send(Ok(seen));
            }
        }
    }
    loop {
        let event = tokio::select! {
            _ = stop.cancelled() => return,
            event = events.next() => event,
        };
        let seen = match event {
            None | Some(CentralEvent::StateUpdate(CentralState::PoweredOff)) => {
                let _ = sightings.send(Err(BleError::Off)).await;
                return;
            }
            Some(CentralEvent::DeviceDiscovered(id)) => sighting(&adapter, &id).await,
            // Only RSSI updates count as fresh advertisements: other updates (a connection,
            // services) would repeat an old reading as if new.
            Some(CentralEvent::RssiUpdate { id, rssi }) => sighting(&adapter, &id)
                .await
                .map(|s| Sighting { rssi, ..s }),
            Some(_) => None,
        };
        if let Some(seen) = seen {
            // A receiver that lags behind loses readings, never the scan.
            let _ = sightings.try_send(Ok(seen));
        }
    }
}

#[async_trait]
impl Transport for BtleplugTransport {
    async fn scan(
        &self,
        sightings: mpsc::Sender<Result<Sighting, BleError>>,
        stop: CancellationToken,
    ) -> Result<(), BleError> {
        let adapter = self.adapter().await?.clone();
        let events = adapter.events().await.map_err(other)?;
        start_scanning(&self.scans, &adapter).await?;
        let scans = self.scans.clone();
        tokio::spawn(async move {
            report_sightings(adapter.clone(), events, sightings, stop).await;
            stop_scanning(&scans, &adapter).await;
        });
        Ok(())
    }

    async fn connect(
        &self,
        target: &LockTarget,
        timeout: Duration,
    ) -> Result<Box<dyn Connection>, BleError> {
        let deadline = Instant::now() + timeout;
        let lock_id = hex_bytes(&target.lock_id)
            .ok_or_else(|| BleError::Other("lock id is not hex".into()))?;
        let adapter = self.adapter().await?;
        start_scanning(&self.scans, adapter).await?;
        let found = self.find(adapter, &lock_id, deadline).await;
        stop_scanning(&self.scans, adapter).await;
        let peripheral = found?;
        tokio::time::timeout_at(deadline, peripheral.connect())
            .await
            .map_err(|_| BleError::Timeout)?
            .map_err(connect_error)?;
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
            closed: false,
        }))
    }
}

struct BtleplugConnection {
    peripheral: Peripheral,
    characteristic: Characteristic,
    notifications: Pin<Box<dyn Stream<Item = ValueNotification> + Send>>,
    closed: bool,
}

impl Drop for BtleplugConnection {
    /// An unlock cancelled mid-exchange drops its connection unclosed: the link must still
    /// go, or the lock stays connected with a half-done exchange and cannot advertise.
    fn drop(&mut self) {
        if self.closed {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let peripheral = self.peripheral.clone();
            runtime.spawn(async move {
                let _ = peripheral.disconnect().await;
            });
        }
    }
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
        self.closed = true;
        let _ = self.peripheral.disconnect().await;
    }
}

fn hex_bytes(s: &str) -> Option<Vec<u8>> {
    door_protocol::Id::from_hex(s).map(|id| id.0.to_vec())
}
