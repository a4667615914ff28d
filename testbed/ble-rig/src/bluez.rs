//! [`FakeBluez`]: the daemon, the `org.bluez` connection and its runtime, and the test hooks.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::oneshot;
use zbus::message::Header;
use zbus::names::InterfaceName;
use zbus::object_server::SignalEmitter;
use zbus::zvariant::{ObjectPath, OwnedObjectPath, Value};
use zbus::Connection;

use crate::adapter::{Adapter, AdapterIface, Host};
use crate::config::FakeBluezConfig;
use crate::daemon::{BusLease, DbusDaemon};
use crate::device::{self, Device, DeviceIface};
use crate::error::{Error, Result};

pub(crate) const ADAPTER_IFACE: &str = "org.bluez.Adapter1";
pub(crate) const DEVICE_IFACE: &str = "org.bluez.Device1";
pub(crate) const CHARACTERISTIC_IFACE: &str = "org.bluez.GattCharacteristic1";
const ADAPTER_PATH: &str = "/org/bluez/hci0";

/// A fake BlueZ (`org.bluez` with adapter `hci0`) on a private system bus.
///
/// [`FakeBluez::start`] points `DBUS_SYSTEM_BUS_ADDRESS` of this process at the private bus, so a
/// btleplug `Manager` created afterwards talks to the fake. Only one `FakeBluez` lives in a
/// process at a time (libdbus caches the system bus address per process, see `daemon.rs`):
/// `start` waits for the previous one to be dropped, which serialises the tests of one test
/// binary. Dropping it stops the fake, kills the daemon and removes its files.
///
/// The fake serves D-Bus from its own thread and tokio runtime, so it works under any test
/// runtime flavour and while the test's own thread is blocked.
pub struct FakeBluez {
    // Fields drop in order: the server thread stops before its daemon is killed, and the lease
    // on the process's bus goes last.
    adapter: Arc<Adapter>,
    connection: Connection,
    server: ServerThread,
    daemon: DbusDaemon,
    _lease: BusLease,
}

impl FakeBluez {
    /// Starts `dbus-daemon`, claims `org.bluez` and exports the adapter; devices appear once a
    /// client starts discovery. Blocks while another `FakeBluez` of this process is alive.
    pub fn start(config: FakeBluezConfig) -> Result<Self> {
        let adapter = Arc::new(build_adapter(config)?);
        let lease = BusLease::acquire()?;
        let daemon = DbusDaemon::start(lease.dir())?;
        let (server, connection) = ServerThread::start(daemon.address(), adapter.clone())?;
        // The address is the same for every fake of this process, so once set it never changes
        // under a libdbus that has already read it.
        if std::env::var_os("DBUS_SYSTEM_BUS_ADDRESS").as_deref() != Some(daemon.address().as_ref())
        {
            std::env::set_var("DBUS_SYSTEM_BUS_ADDRESS", daemon.address());
        }
        Ok(Self {
            adapter,
            connection,
            server,
            daemon,
            _lease: lease,
        })
    }

    /// The private bus, e.g. `unix:path=/tmp/door-ble-rig-1234/system_bus_socket`.
    pub fn bus_address(&self) -> &str {
        self.daemon.address()
    }

    /// Whether a central is connected to the peripheral.
    pub fn is_connected(&self, address: &str) -> Result<bool> {
        Ok(self.device(address)?.is_connected())
    }

    /// The peripheral drops the link (out of range, reset): Connected and ServicesResolved go
    /// false and its GATT objects are removed, as BlueZ reports a supervision timeout.
    pub async fn disconnect_peripheral(&self, address: &str) -> Result<()> {
        let device = self.device(address)?.clone();
        let conn = self.connection.clone();
        self.on_server(async move { device::disconnect(&device, &conn).await })
            .await
    }

    /// Starts or stops the peripheral's advertising. Stopping hides it: it is not discovered
    /// any more, and if it is known but not connected its object is removed (InterfacesRemoved),
    /// as when BlueZ expires a device that went out of range. Starting it again during a scan
    /// makes it reappear.
    pub async fn set_advertising(&self, address: &str, advertising: bool) -> Result<()> {
        let device = self.device(address)?.clone();
        let adapter = self.adapter.clone();
        let conn = self.connection.clone();
        self.on_server(async move {
            device.set_advertising(advertising);
            if advertising {
                adapter.reveal_one(&device, &conn).await
            } else {
                if device.forget_if_idle() {
                    conn.object_server()
                        .remove::<DeviceIface, _>(&device.path)
                        .await?;
                }
                Ok(())
            }
        })
        .await
    }

    /// The peripheral's next advertisement arrives with signal strength `rssi` (dBm). If BlueZ
    /// hears it (the peripheral advertises, a running scan lets it through and its object is on
    /// the bus), it is signalled in one PropertiesChanged on org.bluez.Device1, as BlueZ does:
    /// `RSSI`, even when unchanged (with a discovery filter set BlueZ reports every
    /// advertisement's RSSI), so calling this again with the same value is a repeated
    /// advertisement; and, while a scanning client set `DuplicateData`, the unchanged
    /// `ManufacturerData` and `ServiceData` (those it advertises). Otherwise the value is only
    /// stored, and shown once the device is next revealed.
    ///
    /// btleplug 0.13.5 always scans with a filter and `DuplicateData`, so per advertisement a
    /// central sees, in this order: `CentralEvent::RssiUpdate { id, rssi }`, then
    /// `ManufacturerDataAdvertisement` if the peripheral advertises manufacturer data, then
    /// `ServiceDataAdvertisement` if it advertises service data (bluez-async 0.9 splits the
    /// signal into `DeviceEvent`s in that order). `Peripheral::properties()` reports the new
    /// `rssi`. Never `DeviceUpdated`: btleplug's BlueZ backend does not send it.
    ///
    /// Left out: without a discovery filter BlueZ only signals RSSI changes of 8 dBm or more,
    /// and it invalidates `RSSI` when discovery stops; the fake always signals and keeps the
    /// last value.
    pub async fn set_rssi(&self, address: &str, rssi: i16) -> Result<()> {
        let device = self.device(address)?.clone();
        let adapter = self.adapter.clone();
        let conn = self.connection.clone();
        self.on_server(async move {
            device.set_rssi(rssi);
            if adapter.hears(&device) {
                device::advertisement_received(&device, &conn, adapter.duplicate_data()).await?;
            }
            Ok(())
        })
        .await
    }

    /// Turns the adapter on or off, as `bluetoothctl power off` does, and signals `Powered`
    /// (btleplug: `CentralEvent::StateUpdate`). Off drops every link (`DeviceDisconnected`) and
    /// ends every discovery session; while off, StartDiscovery and Connect fail with
    /// `org.bluez.Error.NotReady`. Known devices stay on the bus.
    ///
    /// A client may power the adapter on again through its `Powered` property, and btleplug's
    /// `start_scan` does so before it starts discovery (bluez-async's
    /// `start_discovery_on_adapter_with_filter`), so scanning turns a powered-off adapter back
    /// on. An rfkill block, which refuses that, is not modelled.
    pub async fn set_powered(&self, on: bool) -> Result<()> {
        let adapter = self.adapter.clone();
        let conn = self.connection.clone();
        self.on_server(async move { adapter.power(on, &conn).await })
            .await
    }

    /// While `denied`, StartDiscovery and Connect answer
    /// `org.freedesktop.DBus.Error.AccessDenied`, as dbus-daemon does when its policy does not
    /// let the client talk to BlueZ (the usual Linux form of a missing Bluetooth permission).
    /// A real policy would refuse every call; these two are where a central first needs BlueZ
    /// to act for it. btleplug 0.13.5 reports the denial as `Error::Other` wrapping
    /// `bluez_async::BluetoothError::DbusError`, never as `Error::PermissionDenied`.
    pub fn deny_access(&self, denied: bool) {
        self.adapter.host.deny_access(denied);
    }

    /// Holds back each of the peripheral's notifications by `delay` (a slow lock).
    pub fn set_notification_delay(&self, address: &str, delay: Duration) -> Result<()> {
        self.device(address)?.set_notification_delay(delay);
        Ok(())
    }

    /// Makes the next `count` Connect calls to the peripheral fail with
    /// `org.bluez.Error.Failed: le-connection-abort-by-local`, as flaky links do.
    pub fn fail_next_connects(&self, address: &str, count: u32) -> Result<()> {
        self.device(address)?.fail_next_connects(count);
        Ok(())
    }

    fn device(&self, address: &str) -> Result<&Arc<Device>> {
        self.adapter
            .device(address)
            .ok_or_else(|| Error::UnknownPeripheral(address.to_owned()))
    }

    /// Runs bus work on the fake's runtime, where the connection's tasks live.
    async fn on_server<F>(&self, work: F) -> Result<()>
    where
        F: Future<Output = zbus::Result<()>> + Send + 'static,
    {
        self.server
            .runtime
            .spawn(work)
            .await
            .map_err(|e| Error::Runtime(e.to_string()))??;
        Ok(())
    }
}

fn build_adapter(config: FakeBluezConfig) -> Result<Adapter> {
    check_address(&config.adapter_address)?;
    let adapter_path = OwnedObjectPath::try_from(ADAPTER_PATH).map_err(zbus::Error::from)?;
    let host = Arc::new(Host::new());
    let mut seen = HashSet::new();
    let mut devices = Vec::with_capacity(config.peripherals.len());
    for peripheral in config.peripherals {
        check_address(&peripheral.address)?;
        if !seen.insert(peripheral.address.clone()) {
            return Err(Error::InvalidConfig(format!(
                "two peripherals with address {}",
                peripheral.address
            )));
        }
        if peripheral.mtu < 23 {
            return Err(Error::InvalidConfig(format!(
                "{}: ATT MTU {} is below the minimum of 23",
                peripheral.address, peripheral.mtu
            )));
        }
        devices.push(Arc::new(Device::new(
            peripheral,
            &adapter_path,
            host.clone(),
        )?));
    }
    Ok(Adapter::new(
        adapter_path,
        config.adapter_address.to_ascii_uppercase(),
        devices,
        host,
    ))
}

fn check_address(address: &str) -> Result<()> {
    let parts: Vec<&str> = address.split(':').collect();
    let valid = parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()));
    if valid {
        Ok(())
    } else {
        Err(Error::InvalidConfig(format!(
            "{address:?} is not a Bluetooth address like AA:BB:CC:DD:EE:FF"
        )))
    }
}

/// The thread that owns the fake's tokio runtime; dropping it stops the runtime.
struct ServerThread {
    runtime: Handle,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl ServerThread {
    fn start(address: &str, adapter: Arc<Adapter>) -> Result<(Self, Connection)> {
        let address = address.to_owned();
        let (ready_tx, ready_rx) = mpsc::channel();
        let (stop, stopped) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("fake-bluez".to_owned())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = ready_tx.send(Err(Error::Io(e)));
                        return;
                    }
                };
                runtime.block_on(async move {
                    match serve(&address, adapter).await {
                        Ok(connection) => {
                            let _ = ready_tx.send(Ok((Handle::current(), connection)));
                            // Serve until FakeBluez is dropped (or dropped its sender).
                            let _ = stopped.await;
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                        }
                    }
                });
            })?;
        let ready = ready_rx.recv().unwrap_or_else(|_| {
            Err(Error::Runtime(
                "the fake's thread died during startup".into(),
            ))
        });
        match ready {
            Ok((runtime, connection)) => Ok((
                Self {
                    runtime,
                    stop: Some(stop),
                    thread: Some(thread),
                },
                connection,
            )),
            Err(e) => {
                // The thread is finishing after its failed startup; reap it before reporting.
                let _ = thread.join();
                Err(e)
            }
        }
    }
}

impl Drop for ServerThread {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            // A panic on the fake's thread has already been reported by the test harness.
            let _ = thread.join();
        }
    }
}

/// Connects to the bus and exports ObjectManager and the adapter before claiming `org.bluez`,
/// so no client can see a half-built BlueZ.
async fn serve(address: &str, adapter: Arc<Adapter>) -> Result<Connection> {
    let path = adapter.path.clone();
    Ok(zbus::connection::Builder::address(address)?
        .serve_at("/", zbus::fdo::ObjectManager)?
        .serve_at(path, AdapterIface::new(adapter))?
        .name("org.bluez")?
        .build()
        .await?)
}

/// Emits `PropertiesChanged` for one property with its new value, the way BlueZ signals state
/// changes and GATT notifications.
pub(crate) async fn emit_changed(
    conn: &Connection,
    path: &ObjectPath<'_>,
    interface: &'static str,
    property: &str,
    value: Value<'_>,
) -> zbus::Result<()> {
    emit_all_changed(conn, path, interface, HashMap::from([(property, value)])).await
}

/// Emits one `PropertiesChanged` for several properties, as BlueZ batches the changes of one
/// event.
pub(crate) async fn emit_all_changed(
    conn: &Connection,
    path: &ObjectPath<'_>,
    interface: &'static str,
    changed: HashMap<&str, Value<'_>>,
) -> zbus::Result<()> {
    let emitter = SignalEmitter::new(conn, path.clone())?;
    zbus::fdo::Properties::properties_changed(
        &emitter,
        InterfaceName::from_static_str_unchecked(interface),
        changed,
        Cow::Borrowed(&[]),
    )
    .await
}

/// The unique bus name of a method call's sender; BlueZ keeps discovery and notify sessions per
/// client.
pub(crate) fn sender(header: &Header<'_>) -> String {
    header
        .sender()
        .map(|name| name.to_string())
        .unwrap_or_default()
}
