//! What the fake BlueZ exposes: one adapter and the peripherals it can discover.

use std::collections::BTreeMap;
use std::sync::Arc;

use uuid::Uuid;

use crate::gatt::GattBackend;

/// The whole fake: adapter `hci0` and the peripherals in radio range.
#[derive(Clone)]
pub struct FakeBluezConfig {
    pub(crate) adapter_address: String,
    pub(crate) peripherals: Vec<PeripheralConfig>,
}

impl FakeBluezConfig {
    /// An adapter with a fixed public address and no peripherals.
    pub fn new() -> Self {
        Self {
            adapter_address: "00:1B:DC:00:00:01".to_owned(),
            peripherals: Vec::new(),
        }
    }

    /// The adapter's own address ("AA:BB:CC:DD:EE:FF").
    pub fn adapter_address(mut self, address: &str) -> Self {
        self.adapter_address = address.to_owned();
        self
    }

    /// Adds a peripheral; it advertises from the start.
    pub fn peripheral(mut self, peripheral: PeripheralConfig) -> Self {
        self.peripherals.push(peripheral);
        self
    }
}

impl Default for FakeBluezConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// BlueZ's `AddressType` of a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressType {
    Public,
    /// Random static, what most battery-powered locks use.
    Random,
}

impl AddressType {
    pub(crate) fn as_bluez(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Random => "random",
        }
    }
}

/// One BLE peripheral: its advertisement and its GATT database.
#[derive(Clone)]
pub struct PeripheralConfig {
    pub(crate) address: String,
    pub(crate) address_type: AddressType,
    pub(crate) name: String,
    pub(crate) rssi: i16,
    pub(crate) advertised_services: Vec<Uuid>,
    pub(crate) manufacturer_data: BTreeMap<u16, Vec<u8>>,
    pub(crate) service_data: BTreeMap<Uuid, Vec<u8>>,
    pub(crate) mtu: u16,
    pub(crate) services: Vec<ServiceConfig>,
}

impl PeripheralConfig {
    /// `address` is "AA:BB:CC:DD:EE:FF" (checked by [`crate::FakeBluez::start`]). Defaults: random
    /// address type, RSSI -60 dBm, ATT MTU 247, nothing advertised, no GATT services.
    pub fn new(address: &str, name: &str) -> Self {
        Self {
            address: address.to_ascii_uppercase(),
            address_type: AddressType::Random,
            name: name.to_owned(),
            rssi: -60,
            advertised_services: Vec::new(),
            manufacturer_data: BTreeMap::new(),
            service_data: BTreeMap::new(),
            mtu: 247,
            services: Vec::new(),
        }
    }

    pub fn address_type(mut self, address_type: AddressType) -> Self {
        self.address_type = address_type;
        self
    }

    pub fn rssi(mut self, rssi: i16) -> Self {
        self.rssi = rssi;
        self
    }

    /// A service UUID in the advertisement (BlueZ's `UUIDs` before connection); discovery
    /// filters match on these.
    pub fn advertised_service(mut self, uuid: Uuid) -> Self {
        self.advertised_services.push(uuid);
        self
    }

    pub fn manufacturer_data(mut self, company_id: u16, data: Vec<u8>) -> Self {
        self.manufacturer_data.insert(company_id, data);
        self
    }

    pub fn service_data(mut self, uuid: Uuid, data: Vec<u8>) -> Self {
        self.service_data.insert(uuid, data);
        self
    }

    /// The ATT MTU negotiated on connection, exposed as the characteristics' `MTU` property
    /// (BlueZ >= 5.62). Notifications longer than MTU - 3 are truncated and write-without-response
    /// values longer than MTU - 3 are refused, as over the air.
    pub fn mtu(mut self, mtu: u16) -> Self {
        self.mtu = mtu;
        self
    }

    /// A primary GATT service; it appears on D-Bus once a central connects.
    pub fn service(mut self, service: ServiceConfig) -> Self {
        self.services.push(service);
        self
    }
}

/// A primary GATT service.
#[derive(Clone)]
pub struct ServiceConfig {
    pub(crate) uuid: Uuid,
    pub(crate) characteristics: Vec<CharacteristicConfig>,
}

impl ServiceConfig {
    pub fn new(uuid: Uuid) -> Self {
        Self {
            uuid,
            characteristics: Vec::new(),
        }
    }

    pub fn characteristic(mut self, characteristic: CharacteristicConfig) -> Self {
        self.characteristics.push(characteristic);
        self
    }
}

/// GATT characteristic properties, as BlueZ spells them in `Flags`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CharFlag {
    Read,
    Write,
    WriteWithoutResponse,
    Notify,
    Indicate,
}

impl CharFlag {
    pub(crate) fn as_bluez(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::WriteWithoutResponse => "write-without-response",
            Self::Notify => "notify",
            Self::Indicate => "indicate",
        }
    }
}

/// A characteristic whose behaviour is a [`GattBackend`].
#[derive(Clone)]
pub struct CharacteristicConfig {
    pub(crate) uuid: Uuid,
    pub(crate) flags: Vec<CharFlag>,
    pub(crate) backend: Arc<dyn GattBackend>,
}

impl CharacteristicConfig {
    /// Flags default to read, write, write-without-response and notify: one characteristic that
    /// takes requests and answers with notifications, as a lock's command channel does.
    pub fn new(uuid: Uuid, backend: Arc<dyn GattBackend>) -> Self {
        Self {
            uuid,
            flags: vec![
                CharFlag::Read,
                CharFlag::Write,
                CharFlag::WriteWithoutResponse,
                CharFlag::Notify,
            ],
            backend,
        }
    }

    pub fn flags(mut self, flags: &[CharFlag]) -> Self {
        self.flags = flags.to_vec();
        self
    }

    pub(crate) fn has(&self, flag: CharFlag) -> bool {
        self.flags.contains(&flag)
    }
}
