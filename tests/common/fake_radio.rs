//! Reference locks behind the fake BlueZ, for tests that reach them through btleplug and
//! D-Bus as a phone's radio would, and a background advertiser that repeats each lock's
//! advertisement at a signal strength the test moves.

#![allow(dead_code)] // each test binary uses its own part of this

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use door_ble_rig::{
    CharFlag, CharacteristicConfig, FakeBluez, GattBackend, PeripheralConfig, ServiceConfig,
};
use door_core::ble::{CHARACTERISTIC_UUID, SERVICE_UUID};
use uuid::Uuid;

/// A reference lock as a GATT server: each BLE connection gets a fresh lock session.
pub struct LockGatt {
    lock: door_lock::Lock,
    session: Mutex<Option<(door_lock::Connection, u16)>>,
    /// Connections made to this lock so far.
    pub connections: Mutex<u32>,
}

impl GattBackend for LockGatt {
    fn on_write(&self, value: &[u8], _with_response: bool) -> Vec<Vec<u8>> {
        let mut session = self.session.lock().unwrap();
        let (conn, mtu) = session.get_or_insert_with(|| (self.lock.connect(), 23));
        conn.on_write(value, *mtu).unwrap_or_default()
    }

    fn on_connect(&self, mtu: u16) {
        *self.connections.lock().unwrap() += 1;
        *self.session.lock().unwrap() = Some((self.lock.connect(), mtu));
    }

    fn on_disconnect(&self) {
        *self.session.lock().unwrap() = None;
    }
}

/// A peripheral advertising the door-core service with `lock_id`, served by `lock`.
pub fn lock_peripheral(
    address: &str,
    lock_id: &str,
    lock: door_lock::Lock,
) -> (PeripheralConfig, Arc<LockGatt>) {
    let service = Uuid::parse_str(SERVICE_UUID).unwrap();
    let backend = Arc::new(LockGatt {
        lock,
        session: Mutex::new(None),
        connections: Mutex::new(0),
    });
    let peripheral = PeripheralConfig::new(address, "door lock")
        .advertised_service(service)
        .service_data(
            service,
            door_protocol::Id::from_hex(lock_id).unwrap().0.to_vec(),
        )
        .mtu(247)
        .service(
            ServiceConfig::new(service).characteristic(
                CharacteristicConfig::new(
                    Uuid::parse_str(CHARACTERISTIC_UUID).unwrap(),
                    backend.clone(),
                )
                .flags(&[CharFlag::WriteWithoutResponse, CharFlag::Notify]),
            ),
        );
    (peripheral, backend)
}

/// Advertises every listed peripheral every `interval` at the signal strength last set for
/// it (`None`: silent, out of range), as locks advertise on their own.
pub struct Advertiser {
    levels: Arc<Mutex<HashMap<String, Option<i16>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Advertiser {
    pub fn start(bluez: Arc<FakeBluez>, interval: Duration) -> Advertiser {
        let levels: Arc<Mutex<HashMap<String, Option<i16>>>> = Arc::default();
        let shared = levels.clone();
        let task = tokio::spawn(async move {
            loop {
                let now: Vec<(String, i16)> = shared
                    .lock()
                    .unwrap()
                    .iter()
                    .filter_map(|(a, l)| Some((a.clone(), (*l)?)))
                    .collect();
                for (address, rssi) in now {
                    let _ = bluez.set_rssi(&address, rssi).await;
                }
                tokio::time::sleep(interval).await;
            }
        });
        Advertiser { levels, task }
    }

    pub fn set(&self, address: &str, rssi: Option<i16>) {
        self.levels.lock().unwrap().insert(address.to_owned(), rssi);
    }
}

impl Drop for Advertiser {
    fn drop(&mut self) {
        self.task.abort();
    }
}
