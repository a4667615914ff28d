//! The fake over plain D-Bus, for what btleplug never shows: it powers the adapter on before
//! every scan, so it never calls StartDiscovery on a powered-off adapter, and it always scans
//! with DuplicateData.

use std::collections::HashMap;
use std::time::Duration;

use door_ble_rig::{FakeBluez, FakeBluezConfig, PeripheralConfig};
use futures::StreamExt;
use zbus::zvariant::Value;
use zbus::Connection;

const ADAPTER: &str = "/org/bluez/hci0";
const LOCK: &str = "C0:FF:EE:00:00:01";

async fn start_discovery(conn: &Connection) -> zbus::Result<zbus::Message> {
    conn.call_method(
        Some("org.bluez"),
        ADAPTER,
        Some("org.bluez.Adapter1"),
        "StartDiscovery",
        &(),
    )
    .await
}

/// The D-Bus error name of a failed call.
fn error_name(result: zbus::Result<zbus::Message>) -> String {
    match result {
        Err(zbus::Error::MethodError(name, _, _)) => name.to_string(),
        other => panic!("expected a D-Bus error reply, got {other:?}"),
    }
}

#[tokio::test]
async fn discovery_needs_a_powered_adapter_and_access() {
    let fake = FakeBluez::start(FakeBluezConfig::new()).expect("fake BlueZ");
    let conn = zbus::connection::Builder::address(fake.bus_address())
        .unwrap()
        .build()
        .await
        .unwrap();

    fake.set_powered(false).await.unwrap();
    assert_eq!(
        error_name(start_discovery(&conn).await),
        "org.bluez.Error.NotReady"
    );
    fake.set_powered(true).await.unwrap();
    fake.deny_access(true);
    assert_eq!(
        error_name(start_discovery(&conn).await),
        "org.freedesktop.DBus.Error.AccessDenied"
    );
    fake.deny_access(false);
    start_discovery(&conn).await.expect("StartDiscovery");
}

#[tokio::test]
async fn without_duplicate_data_an_advertisement_signals_only_rssi() {
    let lock = PeripheralConfig::new(LOCK, "door-lock").manufacturer_data(0xffff, vec![1]);
    let fake = FakeBluez::start(FakeBluezConfig::new().peripheral(lock)).expect("fake BlueZ");
    let conn = zbus::connection::Builder::address(fake.bus_address())
        .unwrap()
        .build()
        .await
        .unwrap();
    let filter = HashMap::from([("Transport", Value::from("le"))]);
    conn.call_method(
        Some("org.bluez"),
        ADAPTER,
        Some("org.bluez.Adapter1"),
        "SetDiscoveryFilter",
        &(filter,),
    )
    .await
    .expect("SetDiscoveryFilter");
    start_discovery(&conn).await.expect("StartDiscovery");
    let properties = zbus::fdo::PropertiesProxy::builder(&conn)
        .destination("org.bluez")
        .unwrap()
        .path("/org/bluez/hci0/dev_C0_FF_EE_00_00_01")
        .unwrap()
        .build()
        .await
        .unwrap();
    let mut changes = properties.receive_properties_changed().await.unwrap();

    fake.set_rssi(LOCK, -50).await.unwrap();
    let signal = tokio::time::timeout(Duration::from_secs(10), changes.next())
        .await
        .expect("PropertiesChanged in time")
        .expect("signal stream open");
    let args = signal.args().unwrap();
    let changed: Vec<&str> = args.changed_properties().keys().copied().collect();
    assert_eq!(changed, ["RSSI"]);
    assert_eq!(args.changed_properties()["RSSI"], Value::from(-50_i16));
}
