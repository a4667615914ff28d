//! The adapter `hci0` (`org.bluez.Adapter1`) and discovery.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use uuid::Uuid;
use zbus::message::Header;
use zbus::object_server::SignalEmitter;
use zbus::zvariant::{OwnedObjectPath, OwnedValue};
use zbus::{interface, Connection};

use crate::bluez::{emit_changed, sender, ADAPTER_IFACE};
use crate::device::{self, Device, DeviceIface};
use crate::error::{BluezError, CallError};

/// The host's side of the radio, which the adapter and its devices both consult.
pub(crate) struct Host {
    powered: AtomicBool,
    /// Whether the bus policy refuses this host's clients (see `FakeBluez::deny_access`).
    access_denied: AtomicBool,
}

impl Host {
    pub(crate) fn new() -> Self {
        Self {
            powered: AtomicBool::new(true),
            access_denied: AtomicBool::new(false),
        }
    }

    pub(crate) fn is_powered(&self) -> bool {
        self.powered.load(Ordering::SeqCst)
    }

    pub(crate) fn deny_access(&self, denied: bool) {
        self.access_denied.store(denied, Ordering::SeqCst);
    }

    /// Refuses the call as the bus would if the client lacked permission.
    pub(crate) fn check_access(&self) -> Result<(), CallError> {
        if self.access_denied.load(Ordering::SeqCst) {
            Err(CallError::access_denied())
        } else {
            Ok(())
        }
    }
}

/// Adapter state and the peripherals within range.
pub(crate) struct Adapter {
    pub(crate) path: OwnedObjectPath,
    address: String,
    pub(crate) devices: Vec<Arc<Device>>,
    pub(crate) host: Arc<Host>,
    state: Mutex<AdapterState>,
}

struct AdapterState {
    /// Unique names of the clients that called StartDiscovery and not yet StopDiscovery.
    scanning: HashSet<String>,
    /// Each client's filter, from SetDiscoveryFilter.
    filters: HashMap<String, Filter>,
}

/// The parts of a discovery filter the fake acts on.
struct Filter {
    /// Service UUIDs (empty: no UUID filter).
    uuids: Vec<Uuid>,
    /// `DuplicateData`: report every advertisement's data, not only changes.
    duplicate_data: bool,
}

/// Which advertisements the merged discovery filters let through.
enum Scan {
    Off,
    All,
    Services(Vec<Uuid>),
}

impl Adapter {
    pub(crate) fn new(
        path: OwnedObjectPath,
        address: String,
        devices: Vec<Arc<Device>>,
        host: Arc<Host>,
    ) -> Self {
        Self {
            path,
            address,
            devices,
            host,
            state: Mutex::new(AdapterState {
                scanning: HashSet::new(),
                filters: HashMap::new(),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, AdapterState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// BlueZ merges the filters of all scanning clients: a client without a UUID filter lets
    /// everything through, otherwise the union of the UUIDs applies.
    fn scan(&self) -> Scan {
        let state = self.state();
        if state.scanning.is_empty() {
            return Scan::Off;
        }
        let mut uuids = Vec::new();
        for client in &state.scanning {
            match state.filters.get(client) {
                Some(filter) if !filter.uuids.is_empty() => uuids.extend_from_slice(&filter.uuids),
                _ => return Scan::All,
            }
        }
        Scan::Services(uuids)
    }

    pub(crate) fn device(&self, address: &str) -> Option<&Arc<Device>> {
        let address = address.to_ascii_uppercase();
        self.devices.iter().find(|d| d.address() == address)
    }

    /// Whether the running scan would pass the device's advertisements on to BlueZ.
    fn scan_lets_through(&self, device: &Device) -> bool {
        match self.scan() {
            Scan::Off => false,
            Scan::All => true,
            Scan::Services(uuids) => device.advertises_any(&uuids),
        }
    }

    /// Whether a scanning client asked for `DuplicateData`; BlueZ then signals the advertising
    /// data of every advertisement again (adapter.c's `filter_duplicate_data`).
    pub(crate) fn duplicate_data(&self) -> bool {
        let state = self.state();
        state
            .scanning
            .iter()
            .any(|client| state.filters.get(client).is_some_and(|f| f.duplicate_data))
    }

    /// Whether BlueZ receives the device's advertisements right now and reports them on its
    /// object: it advertises, a scan lets it through, and it is on the bus.
    pub(crate) fn hears(&self, device: &Device) -> bool {
        self.scan_lets_through(device) && device.is_heard()
    }

    /// Turns the radio on or off and signals `Powered`. Off ends every discovery session and
    /// drops every link, as BlueZ does when the controller powers down. Like BlueZ, setting the
    /// current state does nothing and signals nothing.
    pub(crate) async fn power(&self, on: bool, conn: &Connection) -> zbus::Result<()> {
        if self.host.powered.swap(on, Ordering::SeqCst) == on {
            return Ok(());
        }
        if !on {
            let was_scanning = {
                let mut state = self.state();
                state.filters.clear();
                !std::mem::take(&mut state.scanning).is_empty()
            };
            for device in &self.devices {
                device::disconnect(device, conn).await?;
            }
            if was_scanning {
                emit_changed(conn, &self.path, ADAPTER_IFACE, "Discovering", false.into()).await?;
            }
        }
        emit_changed(conn, &self.path, ADAPTER_IFACE, "Powered", on.into()).await
    }

    /// Puts every advertising device that the current scan lets through on the bus.
    pub(crate) async fn reveal(&self, conn: &Connection) -> zbus::Result<()> {
        for device in &self.devices {
            self.reveal_one(device, conn).await?;
        }
        Ok(())
    }

    pub(crate) async fn reveal_one(
        &self,
        device: &Arc<Device>,
        conn: &Connection,
    ) -> zbus::Result<()> {
        if self.scan_lets_through(device) && device.reveal_if_advertising() {
            conn.object_server()
                .at(&device.path, DeviceIface::new(device.clone()))
                .await?;
        }
        Ok(())
    }
}

pub(crate) struct AdapterIface {
    adapter: Arc<Adapter>,
}

impl AdapterIface {
    pub(crate) fn new(adapter: Arc<Adapter>) -> Self {
        Self { adapter }
    }
}

#[interface(name = "org.bluez.Adapter1")]
impl AdapterIface {
    async fn start_discovery(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> Result<(), CallError> {
        self.adapter.host.check_access()?;
        let started = {
            let mut state = self.adapter.state();
            // Read under the lock, so a concurrent power-off cannot miss this session.
            if !self.adapter.host.is_powered() {
                return Err(BluezError::NotReady("Resource Not Ready".into()).into());
            }
            if !state.scanning.insert(sender(&header)) {
                return Err(BluezError::InProgress("Operation already in progress".into()).into());
            }
            state.scanning.len() == 1
        };
        if started {
            self.discovering_changed(&emitter).await?;
        }
        // Devices in range show up (InterfacesAdded) once a scan runs, as after their first
        // advertisement.
        self.adapter.reveal(conn).await?;
        Ok(())
    }

    async fn stop_discovery(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> Result<(), BluezError> {
        let stopped = {
            let mut state = self.adapter.state();
            let client = sender(&header);
            if !state.scanning.remove(&client) {
                return Err(BluezError::Failed("No discovery started".into()));
            }
            state.filters.remove(&client);
            state.scanning.is_empty()
        };
        if stopped {
            self.discovering_changed(&emitter).await?;
        }
        Ok(())
    }

    /// Only `UUIDs` and `DuplicateData` matter; RSSI, Transport and the rest are accepted and
    /// ignored, since every fake advertisement is strong and LE.
    async fn set_discovery_filter(
        &self,
        filter: HashMap<String, OwnedValue>,
        #[zbus(header)] header: Header<'_>,
    ) -> Result<(), BluezError> {
        let uuids = match filter.get("UUIDs") {
            None => Vec::new(),
            Some(value) => {
                let strings: Vec<String> = value
                    .try_clone()
                    .and_then(Vec::<String>::try_from)
                    .map_err(|_| BluezError::InvalidArguments("Invalid arguments".into()))?;
                strings
                    .iter()
                    .map(|s| Uuid::parse_str(s))
                    .collect::<Result<_, _>>()
                    .map_err(|_| BluezError::InvalidArguments("Invalid arguments".into()))?
            }
        };
        let duplicate_data = match filter.get("DuplicateData") {
            None => false,
            Some(value) => value
                .downcast_ref::<bool>()
                .map_err(|_| BluezError::InvalidArguments("Invalid arguments".into()))?,
        };
        self.adapter.state().filters.insert(
            sender(&header),
            Filter {
                uuids,
                duplicate_data,
            },
        );
        Ok(())
    }

    async fn remove_device(
        &self,
        device: OwnedObjectPath,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(), BluezError> {
        let Some(device) = self.adapter.devices.iter().find(|d| d.path == device) else {
            return Err(BluezError::DoesNotExist("Does Not Exist".into()));
        };
        device::disconnect(device, conn).await?;
        if !device.mark_removed() {
            return Err(BluezError::DoesNotExist("Does Not Exist".into()));
        }
        conn.object_server()
            .remove::<DeviceIface, _>(&device.path)
            .await?;
        Ok(())
    }

    fn get_discovery_filters(&self) -> Vec<String> {
        [
            "UUIDs",
            "RSSI",
            "Pathloss",
            "Transport",
            "DuplicateData",
            "Discoverable",
            "Pattern",
        ]
        .map(str::to_owned)
        .to_vec()
    }

    #[zbus(property(emits_changed_signal = "const"))]
    fn address(&self) -> String {
        self.adapter.address.clone()
    }

    #[zbus(property(emits_changed_signal = "const"))]
    fn address_type(&self) -> String {
        "public".to_owned()
    }

    #[zbus(property(emits_changed_signal = "const"))]
    fn name(&self) -> String {
        "door-ble-rig".to_owned()
    }

    #[zbus(property(emits_changed_signal = "const"))]
    fn alias(&self) -> String {
        "door-ble-rig".to_owned()
    }

    #[zbus(property(emits_changed_signal = "const"))]
    fn class(&self) -> u32 {
        0
    }

    /// The Linux Foundation's id with BlueZ's version, as bluetoothd reports it.
    #[zbus(property(emits_changed_signal = "const"))]
    fn modalias(&self) -> String {
        "usb:v1D6Bp0246d0548".to_owned()
    }

    // `Powered` is signalled by `Adapter::power` when it changes, not by zbus after every Set:
    // btleplug sets it to true before each scan, and BlueZ stays silent when nothing changes.
    // The price is an EmitsChangedSignal=false annotation in introspection, which BlueZ lacks.
    #[zbus(property(emits_changed_signal = "false"))]
    fn powered(&self) -> bool {
        self.adapter.host.is_powered()
    }

    /// Any client may power the adapter on or off, as on BlueZ.
    #[zbus(property)]
    async fn set_powered(
        &self,
        powered: bool,
        #[zbus(connection)] conn: &Connection,
    ) -> zbus::fdo::Result<()> {
        self.adapter.power(powered, conn).await?;
        Ok(())
    }

    #[zbus(property)]
    fn discovering(&self) -> bool {
        !self.adapter.state().scanning.is_empty()
    }

    #[zbus(property(emits_changed_signal = "const"))]
    fn discoverable(&self) -> bool {
        false
    }

    #[zbus(property(emits_changed_signal = "const"))]
    fn pairable(&self) -> bool {
        false
    }

    #[zbus(property(emits_changed_signal = "const"), name = "UUIDs")]
    fn uuids(&self) -> Vec<String> {
        Vec::new()
    }
}
