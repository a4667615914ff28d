//! Adapter1 over plain D-Bus, for what btleplug never shows: it powers the adapter on before
//! every scan, so it never calls StartDiscovery on a powered-off adapter.

use door_ble_rig::{FakeBluez, FakeBluezConfig};
use zbus::Connection;

const ADAPTER: &str = "/org/bluez/hci0";

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
