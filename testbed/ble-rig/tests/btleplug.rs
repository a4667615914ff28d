//! btleplug, unmodified, as a central against the fake BlueZ: the path door-core's BLE
//! transport takes on Linux. The tests of this binary run one after another (one fake per
//! process at a time, see `FakeBluez`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use btleplug::api::{
    Central, CentralEvent, CentralState, CharPropFlags, Characteristic, Manager as _,
    Peripheral as _, ScanFilter, ValueNotification, WriteType,
};
use btleplug::platform::{Adapter, Manager, Peripheral};
use door_ble_rig::{
    AddressType, CharacteristicConfig, FakeBluez, FakeBluezConfig, GattBackend, PeripheralConfig,
    ServiceConfig,
};
use futures::StreamExt;
use uuid::Uuid;

pub const LOCK_SERVICE: Uuid = Uuid::from_u128(0x6e400001_b5a3_f393_e0a9_e50e24dcca9e);
pub const LOCK_CHAR: Uuid = Uuid::from_u128(0x6e400002_b5a3_f393_e0a9_e50e24dcca9e);
pub const OTHER_SERVICE: Uuid = Uuid::from_u128(0x0000180d_0000_1000_8000_00805f9b34fb);
pub const LOCK_ADDRESS: &str = "C0:FF:EE:00:00:01";
pub const LOCK_NAME: &str = "door-lock-1";

/// Bounds every wait, so a broken fake fails a test instead of hanging it.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Answers each write with the value uppercased, in one notification.
pub struct Uppercase;

impl GattBackend for Uppercase {
    fn on_write(&self, value: &[u8], _with_response: bool) -> Vec<Vec<u8>> {
        vec![value.to_ascii_uppercase()]
    }

    fn on_read(&self) -> Vec<u8> {
        b"ready".to_vec()
    }
}

/// Answers each write with `response`, split into notifications of at most MTU - 3 bytes, as a
/// lock must; records the link events it sees.
pub struct Chunked {
    pub response: Vec<u8>,
    pub mtu: AtomicU16,
    pub disconnects: AtomicUsize,
}

impl Chunked {
    pub fn new(response: Vec<u8>) -> Arc<Self> {
        Arc::new(Self {
            response,
            mtu: AtomicU16::new(0),
            disconnects: AtomicUsize::new(0),
        })
    }
}

impl GattBackend for Chunked {
    fn on_write(&self, _value: &[u8], _with_response: bool) -> Vec<Vec<u8>> {
        let payload = usize::from(self.mtu.load(Ordering::SeqCst)) - 3;
        self.response.chunks(payload).map(<[u8]>::to_vec).collect()
    }

    fn on_connect(&self, mtu: u16) {
        self.mtu.store(mtu, Ordering::SeqCst);
    }

    fn on_disconnect(&self) {
        self.disconnects.fetch_add(1, Ordering::SeqCst);
    }
}

/// A lock peripheral advertising `LOCK_SERVICE` with one command characteristic.
pub fn lock(backend: Arc<dyn GattBackend>) -> PeripheralConfig {
    PeripheralConfig::new(LOCK_ADDRESS, LOCK_NAME)
        .advertised_service(LOCK_SERVICE)
        .manufacturer_data(0xffff, vec![1, 2, 3])
        .service(
            ServiceConfig::new(LOCK_SERVICE)
                .characteristic(CharacteristicConfig::new(LOCK_CHAR, backend)),
        )
}

/// btleplug's first adapter; call after `FakeBluez::start` has set the bus address.
pub async fn central() -> Adapter {
    let manager = Manager::new().await.expect("btleplug manager");
    let mut adapters = manager.adapters().await.expect("adapters");
    assert_eq!(adapters.len(), 1, "the fake has exactly one adapter");
    adapters.remove(0)
}

/// Scans for `service` and returns the first peripheral called `name` that advertises it. BlueZ
/// merges the scan filters of all its clients, so the results are filtered here as well.
pub async fn find(central: &Adapter, name: &str, service: Uuid) -> Peripheral {
    let mut events = central.events().await.expect("events");
    central
        .start_scan(ScanFilter {
            services: vec![service],
        })
        .await
        .expect("start_scan");
    let found = tokio::time::timeout(TIMEOUT, async {
        while let Some(event) = events.next().await {
            let CentralEvent::DeviceDiscovered(id) = event else {
                continue;
            };
            let peripheral = central.peripheral(&id).await.expect("peripheral");
            let properties = peripheral
                .properties()
                .await
                .expect("properties")
                .expect("BlueZ always has properties");
            if properties.local_name.as_deref() == Some(name)
                && properties.services.contains(&service)
            {
                return peripheral;
            }
        }
        panic!("event stream ended before {name} was found");
    })
    .await
    .expect("peripheral discovered in time");
    central.stop_scan().await.expect("stop_scan");
    found
}

/// Connects, discovers services and returns the lock's command characteristic.
pub async fn connect(peripheral: &Peripheral) -> Characteristic {
    peripheral.connect().await.expect("connect");
    peripheral
        .discover_services()
        .await
        .expect("discover_services");
    peripheral
        .characteristics()
        .into_iter()
        .find(|c| c.uuid == LOCK_CHAR && c.service_uuid == LOCK_SERVICE)
        .expect("lock characteristic")
}

/// The next notification of the stream, within `TIMEOUT`.
async fn next_value(
    notifications: &mut (impl futures::Stream<Item = ValueNotification> + Unpin),
) -> Vec<u8> {
    tokio::time::timeout(TIMEOUT, notifications.next())
        .await
        .expect("notification in time")
        .expect("notification stream open")
        .value
}

#[tokio::test]
async fn scan_connect_write_and_receive_notifications() {
    let fake = FakeBluez::start(FakeBluezConfig::new().peripheral(lock(Arc::new(Uppercase))))
        .expect("fake BlueZ");
    let central = central().await;
    assert_eq!(
        central.adapter_state().await.unwrap(),
        CentralState::PoweredOn
    );

    let lock = find(&central, LOCK_NAME, LOCK_SERVICE).await;
    assert_eq!(lock.address().to_string(), LOCK_ADDRESS);
    let properties = lock.properties().await.unwrap().unwrap();
    assert_eq!(
        properties.manufacturer_data.get(&0xffff),
        Some(&vec![1, 2, 3])
    );

    let command = connect(&lock).await;
    assert!(lock.is_connected().await.unwrap());
    assert!(fake.is_connected(LOCK_ADDRESS).unwrap());
    assert_eq!(lock.mtu(), 247, "btleplug reads BlueZ's MTU property");
    assert!(command
        .properties
        .contains(CharPropFlags::WRITE_WITHOUT_RESPONSE));
    assert!(command.properties.contains(CharPropFlags::NOTIFY));

    let mut notifications = lock.notifications().await.unwrap();
    lock.subscribe(&command).await.unwrap();
    lock.write(&command, b"open door", WriteType::WithoutResponse)
        .await
        .unwrap();
    assert_eq!(next_value(&mut notifications).await, b"OPEN DOOR");
    lock.write(&command, b"status", WriteType::WithResponse)
        .await
        .unwrap();
    assert_eq!(next_value(&mut notifications).await, b"STATUS");
    // BlueZ signals a read's value like a notification; the fake does the same.
    assert_eq!(lock.read(&command).await.unwrap(), b"ready");
    assert_eq!(next_value(&mut notifications).await, b"ready");

    lock.unsubscribe(&command).await.unwrap();
    lock.disconnect().await.unwrap();
    assert!(!lock.is_connected().await.unwrap());
    assert!(!fake.is_connected(LOCK_ADDRESS).unwrap());
}

#[tokio::test]
async fn long_response_arrives_as_mtu_sized_notifications() {
    let response: Vec<u8> = (0..=199).collect();
    let backend = Chunked::new(response.clone());
    let fake = FakeBluez::start(FakeBluezConfig::new().peripheral(lock(backend.clone()).mtu(64)))
        .expect("fake BlueZ");
    let central = central().await;
    let lock = find(&central, LOCK_NAME, LOCK_SERVICE).await;
    let command = connect(&lock).await;
    assert_eq!(lock.mtu(), 64);
    let payload = usize::from(lock.mtu()) - 3;

    let mut notifications = lock.notifications().await.unwrap();
    lock.subscribe(&command).await.unwrap();
    lock.write(&command, &[0; 61], WriteType::WithoutResponse)
        .await
        .unwrap();
    let mut received = Vec::new();
    while received.len() < response.len() {
        let chunk = next_value(&mut notifications).await;
        assert!(chunk.len() <= payload, "a notification fits one ATT PDU");
        received.extend_from_slice(&chunk);
    }
    assert_eq!(received, response);

    // A command must fit one PDU; a request may be longer (BlueZ does a long write).
    assert!(lock
        .write(&command, &[0; 62], WriteType::WithoutResponse)
        .await
        .is_err());
    lock.write(&command, &[0; 62], WriteType::WithResponse)
        .await
        .unwrap();
    assert_eq!(next_value(&mut notifications).await, response[..payload]);
    drop(fake);
}

#[tokio::test]
async fn peripheral_disconnect_mid_exchange_is_observed() {
    let backend = Chunked::new(b"unlocked".to_vec());
    let fake = FakeBluez::start(FakeBluezConfig::new().peripheral(lock(backend.clone())))
        .expect("fake BlueZ");
    let central = central().await;
    let lock = find(&central, LOCK_NAME, LOCK_SERVICE).await;
    let command = connect(&lock).await;
    let mut events = central.events().await.unwrap();
    let mut notifications = lock.notifications().await.unwrap();
    lock.subscribe(&command).await.unwrap();

    // The lock takes its time to answer, and the link drops before it does.
    fake.set_notification_delay(LOCK_ADDRESS, Duration::from_millis(300))
        .unwrap();
    lock.write(&command, b"unlock", WriteType::WithResponse)
        .await
        .unwrap();
    fake.disconnect_peripheral(LOCK_ADDRESS).await.unwrap();

    let disconnected = tokio::time::timeout(TIMEOUT, async {
        while let Some(event) = events.next().await {
            if let CentralEvent::DeviceDisconnected(id) = event {
                return id;
            }
        }
        panic!("event stream ended");
    })
    .await
    .expect("DeviceDisconnected in time");
    assert_eq!(disconnected, lock.id());
    assert!(!lock.is_connected().await.unwrap());
    assert_eq!(backend.disconnects.load(Ordering::SeqCst), 1);
    // The answer was lost with the link.
    assert!(
        tokio::time::timeout(Duration::from_millis(600), notifications.next())
            .await
            .is_err()
    );
    // The GATT objects went with the link: the old characteristic is unusable.
    assert!(lock
        .write(&command, b"unlock", WriteType::WithResponse)
        .await
        .is_err());

    // Reconnecting works and needs a new subscription, as on real BlueZ.
    fake.set_notification_delay(LOCK_ADDRESS, Duration::ZERO)
        .unwrap();
    let command = connect(&lock).await;
    let mut notifications = lock.notifications().await.unwrap();
    lock.subscribe(&command).await.unwrap();
    lock.write(&command, b"unlock", WriteType::WithResponse)
        .await
        .unwrap();
    assert_eq!(next_value(&mut notifications).await, b"unlocked");
}

#[tokio::test]
async fn delayed_notifications_keep_their_order() {
    let backend = Chunked::new((0..100).collect());
    let fake = FakeBluez::start(FakeBluezConfig::new().peripheral(lock(backend).mtu(23)))
        .expect("fake BlueZ");
    let central = central().await;
    let lock = find(&central, LOCK_NAME, LOCK_SERVICE).await;
    let command = connect(&lock).await;
    let mut notifications = lock.notifications().await.unwrap();
    lock.subscribe(&command).await.unwrap();

    let delay = Duration::from_millis(50);
    fake.set_notification_delay(LOCK_ADDRESS, delay).unwrap();
    let started = Instant::now();
    lock.write(&command, b"log", WriteType::WithResponse)
        .await
        .unwrap();
    let mut received = Vec::new();
    while received.len() < 100 {
        received.extend(next_value(&mut notifications).await);
    }
    assert_eq!(received, (0..100).collect::<Vec<u8>>());
    // 100 bytes in 20-byte notifications, each held back by the delay.
    assert!(started.elapsed() >= delay * 5);
}

#[tokio::test]
async fn scan_filter_and_hidden_peripherals() {
    let heart_rate = PeripheralConfig::new("C0:FF:EE:00:00:02", "heart-rate")
        .address_type(AddressType::Public)
        .advertised_service(OTHER_SERVICE);
    let fake = FakeBluez::start(
        FakeBluezConfig::new()
            .peripheral(lock(Arc::new(Uppercase)))
            .peripheral(heart_rate),
    )
    .expect("fake BlueZ");
    let central = central().await;

    let lock = find(&central, LOCK_NAME, LOCK_SERVICE).await;
    let names = names(&central).await;
    assert_eq!(
        names,
        vec![LOCK_NAME.to_owned()],
        "the filter keeps others out"
    );

    // Out of range: the device is forgotten, and a new scan does not find it.
    fake.set_advertising(LOCK_ADDRESS, false).await.unwrap();
    assert!(names_eventually(&central, &[]).await);
    central.start_scan(ScanFilter::default()).await.unwrap();
    assert!(names_eventually(&central, &["heart-rate"]).await);

    // Back in range during the scan: discovered again.
    let mut events = central.events().await.unwrap();
    fake.set_advertising(LOCK_ADDRESS, true).await.unwrap();
    let rediscovered = tokio::time::timeout(TIMEOUT, async {
        loop {
            match events.next().await {
                Some(CentralEvent::DeviceDiscovered(id)) if id == lock.id() => return,
                Some(_) => {}
                None => panic!("event stream ended"),
            }
        }
    })
    .await;
    assert!(rediscovered.is_ok(), "lock rediscovered");
    central.stop_scan().await.unwrap();
}

#[tokio::test]
async fn failed_connects_surface_as_errors() {
    let fake = FakeBluez::start(FakeBluezConfig::new().peripheral(lock(Arc::new(Uppercase))))
        .expect("fake BlueZ");
    let central = central().await;
    let lock = find(&central, LOCK_NAME, LOCK_SERVICE).await;

    fake.fail_next_connects(LOCK_ADDRESS, 2).unwrap();
    let error = lock.connect().await.unwrap_err().to_string();
    assert!(error.contains("le-connection-abort-by-local"), "{error}");
    assert!(lock.connect().await.is_err());
    assert!(!lock.is_connected().await.unwrap());
    let command = connect(&lock).await;
    assert_eq!(command.uuid, LOCK_CHAR);
}

/// Local names of the peripherals btleplug currently knows, sorted.
async fn names(central: &Adapter) -> Vec<String> {
    let mut names = Vec::new();
    for peripheral in central.peripherals().await.unwrap() {
        if let Some(name) = peripheral.properties().await.unwrap().unwrap().local_name {
            names.push(name);
        }
    }
    names.sort();
    names
}

/// Whether the known peripherals become exactly `expected` within `TIMEOUT`.
async fn names_eventually(central: &Adapter, expected: &[&str]) -> bool {
    let deadline = Instant::now() + TIMEOUT;
    while Instant::now() < deadline {
        if names(central).await == expected {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

/// A central event reduced to what the radio tests compare.
#[derive(Debug, PartialEq)]
enum Seen {
    Discovered,
    Services(Vec<Uuid>),
    Connected,
    Disconnected,
    Rssi(i16),
    ManufacturerData(HashMap<u16, Vec<u8>>),
    ServiceData(HashMap<Uuid, Vec<u8>>),
    State(CentralState),
    /// Anything else: no test expects one.
    Other(String),
}

impl From<CentralEvent> for Seen {
    fn from(event: CentralEvent) -> Self {
        match event {
            CentralEvent::DeviceDiscovered(_) => Self::Discovered,
            CentralEvent::ServicesAdvertisement { services, .. } => Self::Services(services),
            CentralEvent::DeviceConnected(_) => Self::Connected,
            CentralEvent::DeviceDisconnected(_) => Self::Disconnected,
            CentralEvent::RssiUpdate { rssi, .. } => Self::Rssi(rssi),
            CentralEvent::ManufacturerDataAdvertisement {
                manufacturer_data, ..
            } => Self::ManufacturerData(manufacturer_data),
            CentralEvent::ServiceDataAdvertisement { service_data, .. } => {
                Self::ServiceData(service_data)
            }
            CentralEvent::StateUpdate(state) => Self::State(state),
            other => Self::Other(format!("{other:?}")),
        }
    }
}

type Events = std::pin::Pin<Box<dyn futures::Stream<Item = CentralEvent> + Send>>;

/// The central's event stream, past the events btleplug synthesises for the peripherals it
/// already knows: DeviceDiscovered, then ServicesAdvertisement if it advertises services and
/// DeviceConnected if it is connected.
async fn live_events(central: &Adapter) -> Events {
    let mut synthesised = 0;
    for peripheral in central.peripherals().await.unwrap() {
        let properties = peripheral.properties().await.unwrap().unwrap();
        synthesised += 1
            + usize::from(!properties.services.is_empty())
            + usize::from(peripheral.is_connected().await.unwrap());
    }
    let mut events = central.events().await.unwrap();
    for _ in 0..synthesised {
        next_event(&mut events).await;
    }
    events
}

/// The next event, within `TIMEOUT`.
async fn next_event(events: &mut Events) -> Seen {
    tokio::time::timeout(TIMEOUT, events.next())
        .await
        .expect("central event in time")
        .expect("event stream open")
        .into()
}

/// The D-Bus error name behind a btleplug error, if BlueZ (or the bus) answered one.
fn dbus_error_name(error: &btleplug::Error) -> Option<String> {
    let btleplug::Error::Other(source) = error else {
        return None;
    };
    match source.downcast_ref::<bluez_async::BluetoothError>()? {
        bluez_async::BluetoothError::DbusError(e) => e.name().map(str::to_owned),
        _ => None,
    }
}

/// The data events btleplug raises for each advertisement of `lock()`, after its RssiUpdate.
fn lock_data() -> Seen {
    Seen::ManufacturerData(HashMap::from([(0xffff, vec![1, 2, 3])]))
}

#[tokio::test]
async fn each_advertisement_reports_rssi_then_data_in_order() {
    let lock_config = lock(Arc::new(Uppercase)).service_data(LOCK_SERVICE, vec![7]);
    let fake =
        FakeBluez::start(FakeBluezConfig::new().peripheral(lock_config)).expect("fake BlueZ");
    let central = central().await;
    let lock = find(&central, LOCK_NAME, LOCK_SERVICE).await;
    assert_eq!(lock.properties().await.unwrap().unwrap().rssi, Some(-60));
    central
        .start_scan(ScanFilter {
            services: vec![LOCK_SERVICE],
        })
        .await
        .unwrap();
    let mut events = live_events(&central).await;

    // Walking up to the door; the repeated value is a second advertisement at the same strength.
    let readings = [-75, -68, -68, -52, -41];
    for rssi in readings {
        fake.set_rssi(LOCK_ADDRESS, rssi).await.unwrap();
    }
    // btleplug scans with DuplicateData, so BlueZ repeats the unchanged advertising data too.
    for rssi in readings {
        assert_eq!(next_event(&mut events).await, Seen::Rssi(rssi));
        assert_eq!(next_event(&mut events).await, lock_data());
        assert_eq!(
            next_event(&mut events).await,
            Seen::ServiceData(HashMap::from([(LOCK_SERVICE, vec![7])]))
        );
    }
    assert_eq!(lock.properties().await.unwrap().unwrap().rssi, Some(-41));
    central.stop_scan().await.unwrap();
}

#[tokio::test]
async fn rssi_is_reported_only_while_heard() {
    let fake = FakeBluez::start(FakeBluezConfig::new().peripheral(lock(Arc::new(Uppercase))))
        .expect("fake BlueZ");
    let central = central().await;
    let lock = find(&central, LOCK_NAME, LOCK_SERVICE).await;
    let mut events = live_events(&central).await;

    // No scan, no advertisements reach BlueZ: the new strength is kept but not signalled.
    fake.set_rssi(LOCK_ADDRESS, -80).await.unwrap();
    central.start_scan(ScanFilter::default()).await.unwrap();
    fake.set_rssi(LOCK_ADDRESS, -70).await.unwrap();
    assert_eq!(next_event(&mut events).await, Seen::Rssi(-70));
    assert_eq!(next_event(&mut events).await, lock_data());

    // Out of range: forgotten, and silent however its strength changes meanwhile.
    fake.set_advertising(LOCK_ADDRESS, false).await.unwrap();
    assert!(names_eventually(&central, &[]).await);
    fake.set_rssi(LOCK_ADDRESS, -90).await.unwrap();
    fake.set_rssi(LOCK_ADDRESS, -48).await.unwrap();

    // Back in range: rediscovered with the strength of its latest advertisement.
    fake.set_advertising(LOCK_ADDRESS, true).await.unwrap();
    assert_eq!(next_event(&mut events).await, Seen::Discovered);
    assert_eq!(
        next_event(&mut events).await,
        Seen::Services(vec![LOCK_SERVICE])
    );
    let lock = central.peripheral(&lock.id()).await.unwrap();
    assert_eq!(lock.properties().await.unwrap().unwrap().rssi, Some(-48));
    fake.set_rssi(LOCK_ADDRESS, -44).await.unwrap();
    assert_eq!(next_event(&mut events).await, Seen::Rssi(-44));
    assert_eq!(next_event(&mut events).await, lock_data());
    central.stop_scan().await.unwrap();
}

#[tokio::test]
async fn bluetooth_off_drops_links_and_refuses_connects() {
    let fake = FakeBluez::start(FakeBluezConfig::new().peripheral(lock(Arc::new(Uppercase))))
        .expect("fake BlueZ");
    let central = central().await;
    let lock = find(&central, LOCK_NAME, LOCK_SERVICE).await;
    connect(&lock).await;
    let mut events = live_events(&central).await;

    fake.set_powered(false).await.unwrap();
    assert_eq!(next_event(&mut events).await, Seen::Disconnected);
    assert_eq!(
        next_event(&mut events).await,
        Seen::State(CentralState::PoweredOff)
    );
    assert_eq!(
        central.adapter_state().await.unwrap(),
        CentralState::PoweredOff
    );
    assert!(!fake.is_connected(LOCK_ADDRESS).unwrap());

    // What door-core sees when connecting with Bluetooth off.
    let error = lock.connect().await.unwrap_err();
    assert!(matches!(error, btleplug::Error::Other(_)), "{error:?}");
    assert_eq!(
        dbus_error_name(&error).as_deref(),
        Some("org.bluez.Error.NotReady")
    );

    // Scanning is no way to find out: btleplug powers the adapter on before it scans.
    central.start_scan(ScanFilter::default()).await.unwrap();
    assert_eq!(
        next_event(&mut events).await,
        Seen::State(CentralState::PoweredOn)
    );
    assert_eq!(
        central.adapter_state().await.unwrap(),
        CentralState::PoweredOn
    );

    // Off during a scan ends it; on again, the lock can be reached again.
    fake.set_powered(false).await.unwrap();
    assert_eq!(
        next_event(&mut events).await,
        Seen::State(CentralState::PoweredOff)
    );
    fake.set_powered(true).await.unwrap();
    assert_eq!(
        next_event(&mut events).await,
        Seen::State(CentralState::PoweredOn)
    );
    let command = connect(&lock).await;
    assert_eq!(command.uuid, LOCK_CHAR);
    assert_eq!(next_event(&mut events).await, Seen::Connected);
}

#[tokio::test]
async fn missing_permission_surfaces_as_access_denied() {
    let fake = FakeBluez::start(FakeBluezConfig::new().peripheral(lock(Arc::new(Uppercase))))
        .expect("fake BlueZ");
    let central = central().await;
    let lock = find(&central, LOCK_NAME, LOCK_SERVICE).await;

    fake.deny_access(true);
    for error in [
        central.start_scan(ScanFilter::default()).await.unwrap_err(),
        lock.connect().await.unwrap_err(),
    ] {
        // btleplug's Error::PermissionDenied is never used on Linux.
        assert!(matches!(error, btleplug::Error::Other(_)), "{error:?}");
        assert_eq!(
            dbus_error_name(&error).as_deref(),
            Some("org.freedesktop.DBus.Error.AccessDenied")
        );
    }
    assert!(!fake.is_connected(LOCK_ADDRESS).unwrap());

    fake.deny_access(false);
    connect(&lock).await;
    assert!(fake.is_connected(LOCK_ADDRESS).unwrap());
}
