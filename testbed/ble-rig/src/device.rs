//! Remote devices (`org.bluez.Device1`) and the connection life cycle.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use uuid::Uuid;
use zbus::zvariant::{OwnedObjectPath, OwnedValue, Value};
use zbus::{fdo, interface, Connection};

use crate::adapter::Host;
use crate::bluez::{emit_all_changed, emit_changed, DEVICE_IFACE};
use crate::config::PeripheralConfig;
use crate::error::{BluezError, CallError};
use crate::gatt::{self, ServiceEntry};

/// A configured peripheral and what the fake knows about it right now.
pub(crate) struct Device {
    pub(crate) config: PeripheralConfig,
    pub(crate) path: OwnedObjectPath,
    pub(crate) services: Vec<ServiceEntry>,
    adapter: OwnedObjectPath,
    host: Arc<Host>,
    state: Mutex<DeviceState>,
    /// Serialises connect, service resolution and disconnect, so a link drop cannot interleave
    /// with service resolution and leave GATT objects behind.
    transition: tokio::sync::Mutex<()>,
}

struct DeviceState {
    advertising: bool,
    /// The signal strength of the latest advertisement.
    rssi: i16,
    /// Whether the Device1 object is on the bus (BlueZ has "seen" it).
    exported: bool,
    connected: bool,
    services_resolved: bool,
    /// Counts connections, so work queued on one link is not delivered on the next.
    link: u64,
    connect_failures: u32,
    notification_delay: Duration,
}

impl Device {
    pub(crate) fn new(
        config: PeripheralConfig,
        adapter: &OwnedObjectPath,
        host: Arc<Host>,
    ) -> zbus::Result<Self> {
        let path = format!(
            "{}/dev_{}",
            adapter.as_str(),
            config.address.replace(':', "_")
        );
        let services = gatt::layout(&path, &config.services)?;
        Ok(Self {
            path: OwnedObjectPath::try_from(path)?,
            services,
            adapter: adapter.clone(),
            host,
            state: Mutex::new(DeviceState {
                advertising: true,
                rssi: config.rssi,
                exported: false,
                connected: false,
                services_resolved: false,
                link: 0,
                connect_failures: 0,
                notification_delay: Duration::ZERO,
            }),
            transition: tokio::sync::Mutex::new(()),
            config,
        })
    }

    fn state(&self) -> MutexGuard<'_, DeviceState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn address(&self) -> &str {
        &self.config.address
    }

    /// The largest ATT payload in one PDU.
    pub(crate) fn max_payload(&self) -> usize {
        usize::from(self.config.mtu) - 3
    }

    pub(crate) fn is_connected(&self) -> bool {
        self.state().connected
    }

    pub(crate) fn is_connected_on(&self, link: u64) -> bool {
        let state = self.state();
        state.connected && state.link == link
    }

    pub(crate) fn notification_delay(&self) -> Duration {
        self.state().notification_delay
    }

    pub(crate) fn set_notification_delay(&self, delay: Duration) {
        self.state().notification_delay = delay;
    }

    pub(crate) fn fail_next_connects(&self, count: u32) {
        self.state().connect_failures = count;
    }

    pub(crate) fn advertises_any(&self, uuids: &[Uuid]) -> bool {
        self.config
            .advertised_services
            .iter()
            .any(|uuid| uuids.contains(uuid))
    }

    /// Marks the device seen if it advertises and is not on the bus yet; true if the caller
    /// must now export it.
    pub(crate) fn reveal_if_advertising(&self) -> bool {
        let mut state = self.state();
        let reveal = state.advertising && !state.exported;
        state.exported |= reveal;
        reveal
    }

    pub(crate) fn set_rssi(&self, rssi: i16) {
        self.state().rssi = rssi;
    }

    /// Whether the device advertises and its object is on the bus, where BlueZ would report a
    /// received advertisement.
    pub(crate) fn is_heard(&self) -> bool {
        let state = self.state();
        state.advertising && state.exported
    }

    pub(crate) fn set_advertising(&self, advertising: bool) {
        self.state().advertising = advertising;
    }

    /// Forgets the device if it is on the bus and not connected; true if the caller must now
    /// remove its object.
    pub(crate) fn forget_if_idle(&self) -> bool {
        let mut state = self.state();
        let forget = state.exported && !state.connected;
        state.exported &= !forget;
        forget
    }

    /// Marks the device as no longer on the bus; false if it was not.
    pub(crate) fn mark_removed(&self) -> bool {
        std::mem::replace(&mut self.state().exported, false)
    }

    fn each_backend(&self, call: impl Fn(&dyn gatt::GattBackend)) {
        for characteristic in self.services.iter().flat_map(|s| &s.characteristics) {
            call(characteristic.config.backend.as_ref());
        }
    }
}

/// Signals one received advertisement in a single PropertiesChanged, as BlueZ does: its `RSSI`,
/// even if unchanged (with a discovery filter set BlueZ reports every RSSI, delta 0 in
/// adapter.c's `btd_adapter_device_found`), and with `duplicate_data` its `ManufacturerData` and
/// `ServiceData` again (device.c clears and re-adds them, which signals them).
pub(crate) async fn advertisement_received(
    device: &Device,
    conn: &Connection,
    duplicate_data: bool,
) -> zbus::Result<()> {
    let mut changed = HashMap::from([("RSSI", Value::from(device.state().rssi))]);
    if duplicate_data {
        if !device.config.manufacturer_data.is_empty() {
            changed.insert("ManufacturerData", manufacturer_data(device)?.into());
        }
        if !device.config.service_data.is_empty() {
            changed.insert("ServiceData", service_data(device)?.into());
        }
    }
    emit_all_changed(conn, &device.path, DEVICE_IFACE, changed).await
}

fn manufacturer_data(device: &Device) -> fdo::Result<HashMap<u16, OwnedValue>> {
    device
        .config
        .manufacturer_data
        .iter()
        .map(|(id, data)| Ok((*id, bytes_value(data)?)))
        .collect()
}

fn service_data(device: &Device) -> fdo::Result<HashMap<String, OwnedValue>> {
    device
        .config
        .service_data
        .iter()
        .map(|(uuid, data)| Ok((uuid.to_string(), bytes_value(data)?)))
        .collect()
}

/// Connects as BlueZ does for LE: Connected flips and Connect returns once the link is up; the
/// GATT database is then exported and ServicesResolved flips, so clients must wait for it as on
/// real BlueZ (btleplug does).
pub(crate) async fn connect(device: &Arc<Device>, conn: &Connection) -> Result<(), CallError> {
    device.host.check_access()?;
    let _transition = device.transition.lock().await;
    let link = {
        let mut state = device.state();
        if state.connected {
            return Ok(());
        }
        // device.c's answer when the adapter is powered off. Checked under the transition lock:
        // a power-off that has begun disconnecting waits for it, so no link outlives the radio.
        if !device.host.is_powered() {
            return Err(BluezError::NotReady("Resource Not Ready".into()).into());
        }
        if state.connect_failures > 0 {
            state.connect_failures -= 1;
            // What BlueZ reports when an LE connection attempt fails or times out.
            return Err(BluezError::Failed("le-connection-abort-by-local".into()).into());
        }
        state.connected = true;
        state.link += 1;
        state.link
    };
    emit_changed(
        conn,
        &device.path,
        DEVICE_IFACE,
        "Connected",
        Value::from(true),
    )
    .await?;
    let mtu = device.config.mtu;
    device.each_backend(|backend| backend.on_connect(mtu));
    tokio::spawn(resolve_services(device.clone(), link, conn.clone()));
    Ok(())
}

/// Service discovery, in the background of Connect as in BlueZ; gives up if the link it was
/// started for has dropped meanwhile.
async fn resolve_services(device: Arc<Device>, link: u64, conn: Connection) {
    let _transition = device.transition.lock().await;
    if !device.is_connected_on(link) {
        return;
    }
    // Errors mean the bus is gone, i.e. the fake is shutting down: nobody is left to tell.
    if gatt::export(&device, link, &conn).await.is_ok() {
        device.state().services_resolved = true;
        let _ = emit_changed(
            &conn,
            &device.path,
            DEVICE_IFACE,
            "ServicesResolved",
            Value::from(true),
        )
        .await;
    }
}

/// Drops the link, whoever asked: ServicesResolved and Connected go false and the GATT objects
/// are removed, as BlueZ does for an unpaired device.
pub(crate) async fn disconnect(device: &Device, conn: &Connection) -> zbus::Result<()> {
    let _transition = device.transition.lock().await;
    {
        let mut state = device.state();
        if !state.connected {
            return Ok(());
        }
        state.connected = false;
        state.services_resolved = false;
    }
    emit_changed(
        conn,
        &device.path,
        DEVICE_IFACE,
        "ServicesResolved",
        Value::from(false),
    )
    .await?;
    gatt::unexport(device, conn).await?;
    emit_changed(
        conn,
        &device.path,
        DEVICE_IFACE,
        "Connected",
        Value::from(false),
    )
    .await?;
    device.each_backend(|backend| backend.on_disconnect());
    Ok(())
}

pub(crate) struct DeviceIface {
    device: Arc<Device>,
}

impl DeviceIface {
    pub(crate) fn new(device: Arc<Device>) -> Self {
        Self { device }
    }
}

#[interface(name = "org.bluez.Device1")]
impl DeviceIface {
    async fn connect(&self, #[zbus(connection)] conn: &Connection) -> Result<(), CallError> {
        connect(&self.device, conn).await
    }

    async fn disconnect(&self, #[zbus(connection)] conn: &Connection) -> Result<(), BluezError> {
        Ok(disconnect(&self.device, conn).await?)
    }

    #[zbus(property(emits_changed_signal = "const"))]
    fn address(&self) -> String {
        self.device.config.address.clone()
    }

    #[zbus(property(emits_changed_signal = "const"))]
    fn address_type(&self) -> String {
        self.device.config.address_type.as_bluez().to_owned()
    }

    #[zbus(property(emits_changed_signal = "const"))]
    fn name(&self) -> String {
        self.device.config.name.clone()
    }

    #[zbus(property(emits_changed_signal = "const"))]
    fn alias(&self) -> String {
        self.device.config.name.clone()
    }

    #[zbus(property(emits_changed_signal = "const"))]
    fn adapter(&self) -> OwnedObjectPath {
        self.device.adapter.clone()
    }

    /// Signalled per advertisement by `FakeBluez::set_rssi`.
    #[zbus(property, name = "RSSI")]
    fn rssi(&self) -> i16 {
        self.device.state().rssi
    }

    #[zbus(property(emits_changed_signal = "const"), name = "UUIDs")]
    fn uuids(&self) -> Vec<String> {
        self.device
            .config
            .advertised_services
            .iter()
            .map(Uuid::to_string)
            .collect()
    }

    /// Signalled again per advertisement while a client asks for DuplicateData.
    #[zbus(property)]
    fn manufacturer_data(&self) -> fdo::Result<HashMap<u16, OwnedValue>> {
        manufacturer_data(&self.device)
    }

    /// Signalled again per advertisement while a client asks for DuplicateData.
    #[zbus(property)]
    fn service_data(&self) -> fdo::Result<HashMap<String, OwnedValue>> {
        service_data(&self.device)
    }

    #[zbus(property)]
    fn connected(&self) -> bool {
        self.device.state().connected
    }

    #[zbus(property)]
    fn services_resolved(&self) -> bool {
        self.device.state().services_resolved
    }

    // Pairing is out of scope: the door protocol authenticates at the application layer.
    #[zbus(property(emits_changed_signal = "const"))]
    fn paired(&self) -> bool {
        false
    }

    #[zbus(property(emits_changed_signal = "const"))]
    fn bonded(&self) -> bool {
        false
    }

    #[zbus(property(emits_changed_signal = "const"))]
    fn trusted(&self) -> bool {
        false
    }

    #[zbus(property(emits_changed_signal = "const"))]
    fn blocked(&self) -> bool {
        false
    }

    #[zbus(property(emits_changed_signal = "const"))]
    fn legacy_pairing(&self) -> bool {
        false
    }
}

fn bytes_value(data: &[u8]) -> fdo::Result<OwnedValue> {
    OwnedValue::try_from(Value::from(data.to_vec()))
        .map_err(|e| fdo::Error::Failed(format!("cannot encode bytes: {e}")))
}
