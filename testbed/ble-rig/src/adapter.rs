//! The adapter `hci0` (`org.bluez.Adapter1`) and discovery.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use uuid::Uuid;
use zbus::message::Header;
use zbus::object_server::SignalEmitter;
use zbus::zvariant::{OwnedObjectPath, OwnedValue};
use zbus::{interface, Connection};

use crate::bluez::sender;
use crate::device::{self, Device, DeviceIface};
use crate::error::BluezError;

/// Adapter state and the peripherals within range.
pub(crate) struct Adapter {
    pub(crate) path: OwnedObjectPath,
    address: String,
    pub(crate) devices: Vec<Arc<Device>>,
    state: Mutex<AdapterState>,
}

struct AdapterState {
    powered: bool,
    /// Unique names of the clients that called StartDiscovery and not yet StopDiscovery.
    scanning: HashSet<String>,
    /// Each client's service UUID filter (empty: no filter), from SetDiscoveryFilter.
    filters: HashMap<String, Vec<Uuid>>,
}

/// Which advertisements the merged discovery filters let through.
enum Scan {
    Off,
    All,
    Services(Vec<Uuid>),
}

impl Adapter {
    pub(crate) fn new(path: OwnedObjectPath, address: String, devices: Vec<Arc<Device>>) -> Self {
        Self {
            path,
            address,
            devices,
            state: Mutex::new(AdapterState {
                powered: true,
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
                Some(filter) if !filter.is_empty() => uuids.extend_from_slice(filter),
                _ => return Scan::All,
            }
        }
        Scan::Services(uuids)
    }

    pub(crate) fn device(&self, address: &str) -> Option<&Arc<Device>> {
        let address = address.to_ascii_uppercase();
        self.devices.iter().find(|d| d.address() == address)
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
        let visible = match self.scan() {
            Scan::Off => false,
            Scan::All => true,
            Scan::Services(uuids) => device.advertises_any(&uuids),
        };
        if visible && device.reveal_if_advertising() {
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
    ) -> Result<(), BluezError> {
        let started = {
            let mut state = self.adapter.state();
            if !state.powered {
                return Err(BluezError::NotReady("Resource Not Ready".into()));
            }
            if !state.scanning.insert(sender(&header)) {
                return Err(BluezError::InProgress(
                    "Operation already in progress".into(),
                ));
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

    /// Only `UUIDs` filters; RSSI, Transport, DuplicateData and the rest are accepted and
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
        self.adapter.state().filters.insert(sender(&header), uuids);
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

    #[zbus(property)]
    fn powered(&self) -> bool {
        self.adapter.state().powered
    }

    #[zbus(property)]
    fn set_powered(&mut self, powered: bool) {
        self.adapter.state().powered = powered;
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
