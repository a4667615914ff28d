//! A fake BlueZ for testing BLE centrals without Bluetooth hardware.
//!
//! This machine's kernel has no Bluetooth, so there is no bluetoothd. btleplug's Linux backend
//! only talks D-Bus to BlueZ, though, so a process that owns `org.bluez` on a private system bus
//! and behaves like BlueZ is enough to run a real btleplug central end to end: scan, connect,
//! discover services, subscribe, write, receive notifications, disconnect.
//!
//! ```
//! use std::sync::Arc;
//! use door_ble_rig::{CharacteristicConfig, FakeBluez, FakeBluezConfig, GattBackend,
//!     PeripheralConfig, ServiceConfig};
//! # let (service, characteristic) = (uuid::Uuid::nil(), uuid::Uuid::nil());
//!
//! struct Echo;
//! impl GattBackend for Echo {
//!     fn on_write(&self, value: &[u8], _with_response: bool) -> Vec<Vec<u8>> {
//!         vec![value.to_vec()]
//!     }
//! }
//!
//! let lock = PeripheralConfig::new("C0:FF:EE:00:00:01", "door-lock")
//!     .advertised_service(service)
//!     .service(ServiceConfig::new(service)
//!         .characteristic(CharacteristicConfig::new(characteristic, Arc::new(Echo))));
//! let fake = FakeBluez::start(FakeBluezConfig::new().peripheral(lock))?;
//! // btleplug's Manager::new() now reaches the fake through DBUS_SYSTEM_BUS_ADDRESS.
//! # Ok::<(), door_ble_rig::Error>(())
//! ```
//!
//! What it does like BlueZ: devices appear (InterfacesAdded) once a client starts discovery and
//! its UUID filter lets them through; Connect returns once `Connected` flips, then the GATT
//! objects are exported and `ServicesResolved` flips; a disconnect removes them again; notifications
//! are PropertiesChanged on `Value`; characteristics carry `MTU`; errors use BlueZ's names.
//!
//! A test can also move the radio world: a peripheral's signal strength changes with each
//! advertisement (`set_rssi`: `RSSI`, and the advertising data again for DuplicateData scans,
//! signalled while a scan hears it), it goes out of range and comes back (`set_advertising`),
//! the adapter is powered off, which drops links and ends scans (`set_powered`), and the bus
//! policy can refuse a client that lacks permission (`deny_access`).
//!
//! What it leaves out: pairing, descriptors, BR/EDR, changing advertisement data (names,
//! manufacturer and service data stay as configured), BlueZ's 8 dBm RSSI threshold for scans
//! without a discovery filter and its dropping of `RSSI` when discovery stops, and rfkill.
//!
//! Needs the `dbus-daemon` binary (Debian package `dbus-daemon`). One fake runs per process at a
//! time, because libdbus caches the system bus address per process: tests of one binary that
//! each start a fake run one after another, whatever `--test-threads` says.
//!
//! Modules: `daemon` runs dbus-daemon, `bluez` owns the fake and its hooks, `adapter`, `device`
//! and `gatt` are the D-Bus objects.

mod adapter;
mod bluez;
mod config;
mod daemon;
mod device;
mod error;
mod gatt;

pub use bluez::FakeBluez;
pub use config::{
    AddressType, CharFlag, CharacteristicConfig, FakeBluezConfig, PeripheralConfig, ServiceConfig,
};
pub use error::{Error, Result};
pub use gatt::GattBackend;
