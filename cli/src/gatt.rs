//! A reference lock behind the fake BlueZ: its GATT service, advertised with the lock id as
//! service data (as door-core's btleplug transport looks for it), one characteristic that the
//! phone writes and the lock notifies on.

use std::sync::{Arc, Mutex};

use door_ble_rig::{CharFlag, CharacteristicConfig, GattBackend, PeripheralConfig, ServiceConfig};
use door_core::ble::{CHARACTERISTIC_UUID, SERVICE_UUID};
use door_lock::Lock;
use uuid::Uuid;

/// Each BLE connection gets a fresh lock session, sized for the MTU negotiated then.
struct LockGatt {
    lock: Lock,
    session: Mutex<Option<(door_lock::Connection, u16)>>,
}

impl LockGatt {
    fn session(&self) -> std::sync::MutexGuard<'_, Option<(door_lock::Connection, u16)>> {
        // A session is rebuilt on the next connection; a poisoned one is as good as any.
        self.session.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl GattBackend for LockGatt {
    fn on_write(&self, value: &[u8], _with_response: bool) -> Vec<Vec<u8>> {
        let mut session = self.session();
        let (conn, mtu) = session.get_or_insert_with(|| (self.lock.connect(), 23));
        // A lock that cannot persist its decision answers nothing; the phone times out.
        conn.on_write(value, *mtu).unwrap_or_default()
    }

    fn on_connect(&self, mtu: u16) {
        *self.session() = Some((self.lock.connect(), mtu));
    }

    fn on_disconnect(&self) {
        *self.session() = None;
    }
}

/// The peripheral at `address` serving `lock`.
pub fn peripheral(address: &str, name: &str, lock: Lock) -> PeripheralConfig {
    let service = Uuid::parse_str(SERVICE_UUID).expect("a valid UUID constant");
    let characteristic = Uuid::parse_str(CHARACTERISTIC_UUID).expect("a valid UUID constant");
    let lock_id = lock.config().lock_id.0.to_vec();
    let backend = Arc::new(LockGatt {
        lock,
        session: Mutex::new(None),
    });
    PeripheralConfig::new(address, name)
        .advertised_service(service)
        .service_data(service, lock_id)
        .mtu(247)
        .service(ServiceConfig::new(service).characteristic(
            CharacteristicConfig::new(characteristic, backend).flags(&[
                CharFlag::WriteWithoutResponse,
                CharFlag::Write,
                CharFlag::Notify,
            ]),
        ))
}
