//! Starting and stopping the fake: configuration checks and the one-fake-per-process
//! rule. `FakeBluez::start` is synchronous, so these tests need no async runtime. Cleanup is
//! checked in `cleanup.rs`, alone in its process: here the next test's fake reuses the socket
//! path as soon as one is dropped.

use door_ble_rig::{Error, FakeBluez, FakeBluezConfig, PeripheralConfig};

#[test]
fn one_fake_per_thread_and_the_next_after_drop() {
    let fake = FakeBluez::start(FakeBluezConfig::new()).expect("fake BlueZ");
    let address = fake.bus_address().to_owned();
    // Waiting for ourselves would never end.
    assert!(matches!(
        FakeBluez::start(FakeBluezConfig::new()),
        Err(Error::AlreadyRunning)
    ));
    drop(fake);
    let next = FakeBluez::start(FakeBluezConfig::new()).expect("fake BlueZ");
    // The same address every time: libdbus only reads it once per process.
    assert_eq!(next.bus_address(), address);
}

#[test]
fn a_panicking_test_releases_the_bus() {
    let crashed = std::thread::spawn(|| {
        let _fake = FakeBluez::start(FakeBluezConfig::new()).expect("fake BlueZ");
        panic!("test failure while the fake runs");
    })
    .join();
    assert!(crashed.is_err());
    FakeBluez::start(FakeBluezConfig::new()).expect("the bus is free again");
}

#[test]
fn invalid_configurations_are_rejected() {
    let invalid =
        |config: FakeBluezConfig| matches!(FakeBluez::start(config), Err(Error::InvalidConfig(_)));
    assert!(invalid(FakeBluezConfig::new().adapter_address("hci0")));
    assert!(invalid(
        FakeBluezConfig::new().peripheral(PeripheralConfig::new("C0:FF:EE:00:00", "short"))
    ));
    assert!(invalid(
        FakeBluezConfig::new()
            .peripheral(PeripheralConfig::new("C0:FF:EE:00:00:01", "a"))
            .peripheral(PeripheralConfig::new("c0:ff:ee:00:00:01", "b"))
    ));
    assert!(invalid(FakeBluezConfig::new().peripheral(
        PeripheralConfig::new("C0:FF:EE:00:00:01", "tiny").mtu(22)
    )));
}

#[test]
fn hooks_name_unknown_peripherals() {
    let fake = FakeBluez::start(FakeBluezConfig::new()).expect("fake BlueZ");
    assert!(matches!(
        fake.is_connected("C0:FF:EE:00:00:09"),
        Err(Error::UnknownPeripheral(_))
    ));
}
