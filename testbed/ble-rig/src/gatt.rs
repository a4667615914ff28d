//! GATT objects (`org.bluez.GattService1`, `org.bluez.GattCharacteristic1`) and the trait that
//! gives a characteristic its behaviour.
//!
//! Like BlueZ for an unpaired LE device, the objects exist only while a central is connected:
//! they are exported (InterfacesAdded) on Connect and removed (InterfacesRemoved) on disconnect,
//! each time fresh, so notify sessions do not survive a reconnection.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::mpsc;
use uuid::Uuid;
use zbus::message::Header;
use zbus::object_server::SignalEmitter;
use zbus::zvariant::{OwnedFd, OwnedObjectPath, OwnedValue, Value};
use zbus::{interface, Connection};

use crate::bluez::{emit_changed, sender, CHARACTERISTIC_IFACE};
use crate::config::{CharFlag, CharacteristicConfig, ServiceConfig};
use crate::device::Device;
use crate::error::BluezError;

/// The peripheral side of one characteristic: a lock implements this.
///
/// Calls come from the fake's runtime thread, one at a time per characteristic and in the order
/// the central sent them; keep them quick (no blocking I/O).
pub trait GattBackend: Send + Sync {
    /// A central wrote `value` (`with_response`: a write request rather than a command). Returns
    /// the notifications to send back, in order. Each is delivered only while the central is
    /// subscribed, after the peripheral's notification delay, and truncated to MTU - 3 bytes as
    /// the ATT layer would: split long responses yourself.
    fn on_write(&self, value: &[u8], with_response: bool) -> Vec<Vec<u8>>;

    /// A central read the characteristic.
    fn on_read(&self) -> Vec<u8> {
        Vec::new()
    }

    /// A central connected; `mtu` is the negotiated ATT MTU. Called once per characteristic
    /// backed by this backend.
    fn on_connect(&self, _mtu: u16) {}

    /// The link dropped (either side). Called once per characteristic backed by this backend.
    fn on_disconnect(&self) {}
}

/// Where a service and its characteristics live on D-Bus, fixed when the fake starts.
pub(crate) struct ServiceEntry {
    pub(crate) path: OwnedObjectPath,
    pub(crate) uuid: Uuid,
    pub(crate) characteristics: Vec<CharacteristicEntry>,
}

pub(crate) struct CharacteristicEntry {
    pub(crate) path: OwnedObjectPath,
    pub(crate) config: CharacteristicConfig,
}

/// Object paths as BlueZ names them: `serviceXXXX` and `charXXXX` after attribute handles.
/// bluez-async relies on those prefixes when it walks the introspection tree.
pub(crate) fn layout(
    device_path: &str,
    services: &[ServiceConfig],
) -> zbus::Result<Vec<ServiceEntry>> {
    // Handle 0x0001.. belong to the GAP and GATT services every peripheral has.
    let mut handle: u16 = 0x0010;
    let mut entries = Vec::with_capacity(services.len());
    for service in services {
        let service_path = format!("{device_path}/service{handle:04x}");
        handle += 1;
        let mut characteristics = Vec::with_capacity(service.characteristics.len());
        for characteristic in &service.characteristics {
            characteristics.push(CharacteristicEntry {
                path: OwnedObjectPath::try_from(format!("{service_path}/char{handle:04x}"))?,
                config: characteristic.clone(),
            });
            // Declaration, value and client configuration descriptor.
            handle += 3;
        }
        entries.push(ServiceEntry {
            path: OwnedObjectPath::try_from(service_path)?,
            uuid: service.uuid,
            characteristics,
        });
    }
    Ok(entries)
}

/// Exports the device's GATT database for connection number `link`.
pub(crate) async fn export(device: &Arc<Device>, link: u64, conn: &Connection) -> zbus::Result<()> {
    let server = conn.object_server();
    for service in &device.services {
        server
            .at(
                &service.path,
                ServiceIface {
                    uuid: service.uuid,
                    device: device.path.clone(),
                },
            )
            .await?;
        for characteristic in &service.characteristics {
            let state = Arc::new(CharacteristicState::default());
            let (notifications, queue) = mpsc::unbounded_channel();
            tokio::spawn(deliver_notifications(
                queue,
                conn.clone(),
                characteristic.path.clone(),
                device.clone(),
                link,
                state.clone(),
            ));
            let iface = CharacteristicIface {
                device: device.clone(),
                config: characteristic.config.clone(),
                service: service.path.clone(),
                state,
                notifications,
            };
            server.at(&characteristic.path, iface).await?;
        }
    }
    Ok(())
}

/// Removes the GATT objects, children before parents: zbus drops a whole subtree silently when
/// its root goes, and clients would miss the InterfacesRemoved signals.
pub(crate) async fn unexport(device: &Device, conn: &Connection) -> zbus::Result<()> {
    let server = conn.object_server();
    for service in device.services.iter().rev() {
        for characteristic in service.characteristics.iter().rev() {
            ignore_missing(
                server
                    .remove::<CharacteristicIface, _>(&characteristic.path)
                    .await,
            )?;
        }
        ignore_missing(server.remove::<ServiceIface, _>(&service.path).await)?;
    }
    Ok(())
}

fn ignore_missing(result: zbus::Result<bool>) -> zbus::Result<()> {
    match result {
        Ok(_) | Err(zbus::Error::InterfaceNotFound) => Ok(()),
        Err(e) => Err(e),
    }
}

pub(crate) struct ServiceIface {
    uuid: Uuid,
    device: OwnedObjectPath,
}

#[interface(name = "org.bluez.GattService1")]
impl ServiceIface {
    #[zbus(property(emits_changed_signal = "const"), name = "UUID")]
    fn uuid(&self) -> String {
        self.uuid.to_string()
    }

    #[zbus(property(emits_changed_signal = "const"))]
    fn primary(&self) -> bool {
        true
    }

    #[zbus(property(emits_changed_signal = "const"))]
    fn device(&self) -> OwnedObjectPath {
        self.device.clone()
    }

    #[zbus(property(emits_changed_signal = "const"))]
    fn includes(&self) -> Vec<OwnedObjectPath> {
        Vec::new()
    }
}

/// State shared between a characteristic object and its notification task.
#[derive(Default)]
struct CharacteristicState {
    /// Unique bus names of the clients with a notify session (BlueZ counts them per client).
    subscribers: Mutex<HashSet<String>>,
    value: Mutex<Vec<u8>>,
}

impl CharacteristicState {
    fn subscribers(&self) -> MutexGuard<'_, HashSet<String>> {
        self.subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn value(&self) -> MutexGuard<'_, Vec<u8>> {
        self.value.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

pub(crate) struct CharacteristicIface {
    device: Arc<Device>,
    config: CharacteristicConfig,
    service: OwnedObjectPath,
    state: Arc<CharacteristicState>,
    /// Dropped with the object, which ends its notification task.
    notifications: mpsc::UnboundedSender<Vec<u8>>,
}

// `spawn = false`: calls are handled one at a time in arrival order, so the backend sees writes
// in the order the central sent them, as over one ATT bearer.
#[interface(name = "org.bluez.GattCharacteristic1", spawn = false)]
impl CharacteristicIface {
    async fn read_value(
        &self,
        _options: HashMap<String, OwnedValue>,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> Result<Vec<u8>, BluezError> {
        if !self.config.has(CharFlag::Read) {
            return Err(BluezError::NotPermitted("Read not permitted".into()));
        }
        let value = self.config.backend.on_read();
        *self.state.value() = value.clone();
        // BlueZ stores what it read in `Value` and signals the change, so a read also shows up
        // in a client's notification stream; clients must cope with that on real hardware too.
        self.value_changed(&emitter).await?;
        Ok(value)
    }

    async fn write_value(
        &self,
        value: Vec<u8>,
        options: HashMap<String, OwnedValue>,
    ) -> Result<(), BluezError> {
        let with_response = match options.get("type").map(|t| t.downcast_ref::<&str>()) {
            None => self.config.has(CharFlag::Write),
            Some(Ok("request")) => true,
            Some(Ok("command")) => false,
            Some(Ok("reliable")) => {
                return Err(BluezError::NotSupported(
                    "Operation is not supported".into(),
                ))
            }
            Some(_) => return Err(BluezError::InvalidArguments("Invalid arguments".into())),
        };
        let permitted = if with_response {
            self.config.has(CharFlag::Write)
        } else {
            self.config.has(CharFlag::WriteWithoutResponse)
        };
        if !permitted {
            return Err(BluezError::NotPermitted("Write not permitted".into()));
        }
        // A command must fit one ATT PDU; a request may be long (BlueZ uses prepare/execute).
        if !with_response && value.len() > self.device.max_payload() {
            return Err(BluezError::Failed("Failed to initiate write".into()));
        }
        for notification in self.config.backend.on_write(&value, with_response) {
            // The receiver lives as long as this object, so sending cannot fail here.
            let _ = self.notifications.send(notification);
        }
        Ok(())
    }

    async fn start_notify(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> Result<(), BluezError> {
        if !self.config.has(CharFlag::Notify) && !self.config.has(CharFlag::Indicate) {
            return Err(BluezError::NotSupported(
                "Operation is not supported".into(),
            ));
        }
        let first = {
            let mut subscribers = self.state.subscribers();
            if !subscribers.insert(sender(&header)) {
                return Err(BluezError::InProgress(
                    "Operation already in progress".into(),
                ));
            }
            subscribers.len() == 1
        };
        if first {
            self.notifying_changed(&emitter).await?;
        }
        Ok(())
    }

    async fn stop_notify(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> Result<(), BluezError> {
        let last = {
            let mut subscribers = self.state.subscribers();
            if !subscribers.remove(&sender(&header)) {
                // The exact text btleplug recognises as "nothing to stop".
                return Err(BluezError::Failed("No notify session started".into()));
            }
            subscribers.is_empty()
        };
        if last {
            self.notifying_changed(&emitter).await?;
        }
        Ok(())
    }

    /// File-descriptor writes are a BlueZ optimisation the fake does not offer; clients fall
    /// back to WriteValue, as they must for peripherals that lack it.
    async fn acquire_write(
        &self,
        _options: HashMap<String, OwnedValue>,
    ) -> Result<(OwnedFd, u16), BluezError> {
        Err(BluezError::NotSupported(
            "Operation is not supported".into(),
        ))
    }

    async fn acquire_notify(
        &self,
        _options: HashMap<String, OwnedValue>,
    ) -> Result<(OwnedFd, u16), BluezError> {
        Err(BluezError::NotSupported(
            "Operation is not supported".into(),
        ))
    }

    #[zbus(property(emits_changed_signal = "const"), name = "UUID")]
    fn uuid(&self) -> String {
        self.config.uuid.to_string()
    }

    #[zbus(property(emits_changed_signal = "const"))]
    fn service(&self) -> OwnedObjectPath {
        self.service.clone()
    }

    #[zbus(property)]
    fn value(&self) -> Vec<u8> {
        self.state.value().clone()
    }

    #[zbus(property)]
    fn notifying(&self) -> bool {
        !self.state.subscribers().is_empty()
    }

    #[zbus(property(emits_changed_signal = "const"))]
    fn flags(&self) -> Vec<String> {
        self.config
            .flags
            .iter()
            .map(|flag| flag.as_bluez().to_owned())
            .collect()
    }

    #[zbus(property(emits_changed_signal = "const"), name = "MTU")]
    fn mtu(&self) -> u16 {
        self.device.config.mtu
    }
}

/// Sends a characteristic's notifications one by one, in order, as PropertiesChanged on `Value`
/// (what BlueZ does with an ATT notification). Ends when the characteristic object is removed.
async fn deliver_notifications(
    mut queue: mpsc::UnboundedReceiver<Vec<u8>>,
    conn: Connection,
    path: OwnedObjectPath,
    device: Arc<Device>,
    link: u64,
    state: Arc<CharacteristicState>,
) {
    while let Some(mut value) = queue.recv().await {
        let delay = device.notification_delay();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        // Over the air a notification needs the link it was produced on and an enabled CCCD.
        if !device.is_connected_on(link) || state.subscribers().is_empty() {
            continue;
        }
        value.truncate(device.max_payload());
        *state.value() = value.clone();
        if emit_changed(
            &conn,
            &path,
            CHARACTERISTIC_IFACE,
            "Value",
            Value::from(value),
        )
        .await
        .is_err()
        {
            // The bus connection is gone: the fake is shutting down.
            return;
        }
    }
}
