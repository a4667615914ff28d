//! door-core's btleplug transport against a fake BlueZ on a private D-Bus daemon: the same
//! code path as on a Linux desktop with a Bluetooth adapter. One fake per process, so the
//! tests of this binary run one after another.

mod common;
#[path = "common/fake_radio.rs"]
mod fake_radio;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use door_ble_rig::{
    CharFlag, CharacteristicConfig, FakeBluez, FakeBluezConfig, GattBackend, PeripheralConfig,
    ServiceConfig,
};
use door_core::ble::btleplug::BtleplugTransport;
use door_core::ble::{BleError, LockTarget, Transport, CHARACTERISTIC_UUID, SERVICE_UUID};
use door_core::{DoorError, UnlockDenial};
use door_server::seed::PASSWORD;
use fake_radio::lock_peripheral;
use uuid::Uuid;

const LOCK_ID: &str = "0123456789abcdef0123456789abcdef";

/// Answers each write with its bytes reversed, in notifications of at most MTU - 3 bytes.
struct Reverse {
    mtu: Mutex<usize>,
}

impl GattBackend for Reverse {
    fn on_write(&self, value: &[u8], _with_response: bool) -> Vec<Vec<u8>> {
        let mut r = value.to_vec();
        r.reverse();
        r.repeat(3)
            .chunks(*self.mtu.lock().unwrap() - 3)
            .map(<[u8]>::to_vec)
            .collect()
    }

    fn on_connect(&self, mtu: u16) {
        *self.mtu.lock().unwrap() = mtu.into();
    }
}

fn lock(address: &str, lock_id: &str, mtu: u16) -> PeripheralConfig {
    let service = Uuid::parse_str(SERVICE_UUID).unwrap();
    let backend = Arc::new(Reverse {
        mtu: Mutex::new(23),
    });
    PeripheralConfig::new(address, "door lock")
        .advertised_service(service)
        .service_data(
            service,
            door_protocol::Id::from_hex(lock_id).unwrap().0.to_vec(),
        )
        .mtu(mtu)
        .service(
            ServiceConfig::new(service).characteristic(
                CharacteristicConfig::new(Uuid::parse_str(CHARACTERISTIC_UUID).unwrap(), backend)
                    .flags(&[
                        CharFlag::WriteWithoutResponse,
                        CharFlag::Write,
                        CharFlag::Notify,
                    ]),
            ),
        )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finds_the_lock_by_its_id_among_others_and_exchanges_fragments() {
    let other_id = "ffffffffffffffffffffffffffffffff";
    let _bluez = FakeBluez::start(
        FakeBluezConfig::new()
            .peripheral(lock("C0:FF:EE:00:00:02", other_id, 247))
            .peripheral(lock("C0:FF:EE:00:00:01", LOCK_ID, 185)),
    )
    .unwrap();
    let transport = BtleplugTransport::new();
    let mut conn = transport
        .connect(
            &LockTarget {
                lock_id: LOCK_ID.into(),
            },
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    assert_eq!(
        conn.mtu(),
        185,
        "the negotiated MTU of the lock we asked for"
    );
    conn.write(b"hello").await.unwrap();
    let mut got = Vec::new();
    while got.len() < 15 {
        got.extend(conn.notification().await.unwrap());
    }
    assert_eq!(got, b"olleholleholleh".to_vec());
    conn.close().await;

    // A lock that is not there is NotInRange at the deadline.
    let missing = transport
        .connect(
            &LockTarget {
                lock_id: "00".repeat(16),
            },
            Duration::from_millis(800),
        )
        .await;
    assert_eq!(missing.err(), Some(BleError::NotInRange));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn door_core_unlocks_through_btleplug_dbus_and_the_fake_bluez() {
    let mut w = World::start().await;
    let lobby = w.seeded.door("Lobby").door.clone();
    let (peripheral, _) = lock_peripheral(
        "C0:FF:EE:00:10:01",
        &lobby.lock_id,
        w.locks["Lobby"].clone(),
    );
    let _bluez = FakeBluez::start(FakeBluezConfig::new().peripheral(peripheral)).unwrap();
    let alice = w.client_over(Arc::new(BtleplugTransport::new()), Arc::default());
    alice
        .sign_in("alice@1800main.example".into(), PASSWORD.into())
        .await
        .unwrap();

    let receipt = alice.unlock(lobby.id.clone(), 10_000, None).await.unwrap();
    assert_eq!(receipt.attempts, 1);
    assert_eq!(w.locks["Lobby"].pending_audit(), 1);

    // Denied over the same path: the lock's clock has drifted far.
    w.lock_clock.set_drift(3600);
    let e = alice
        .unlock(lobby.id.clone(), 10_000, None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            DoorError::Denied {
                reason: UnlockDenial::ClockUntrusted
            }
        ),
        "{e:?}"
    );
    // Put right, and an hour on (a lock that ran fast keeps refusing requests older than
    // what it already let expire, so a rewound clock cannot revive a captured request).
    w.lock_clock.set_drift(0);
    w.set_time(TUESDAY_10AM + 2 * HOUR);
    alice.unlock(lobby.id, 10_000, None).await.unwrap();
}
