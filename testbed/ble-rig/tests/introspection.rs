//! The fake's introspection data must parse with bluez-async (btleplug's BlueZ layer). It reads
//! the XML with serde-xml-rs into `Vec`s of interfaces and of child nodes, and serde-xml-rs fails
//! with "duplicate field `interface`" when the `<interface>` elements of a `<node>` are not
//! contiguous, e.g. interface, child node, interface. zbus (5.x and 6.x alike) writes all of a
//! node's interfaces before its children; these tests keep it that way.

use std::sync::Arc;
use std::time::Duration;

use bluez_async::{BluetoothSession, CharacteristicFlags, DeviceId};
use door_ble_rig::{
    CharacteristicConfig, FakeBluez, FakeBluezConfig, GattBackend, PeripheralConfig, ServiceConfig,
};
use uuid::Uuid;
use zbus::zvariant::OwnedValue;
use zbus::Connection;

const SERVICE: Uuid = Uuid::from_u128(0x6e400001_b5a3_f393_e0a9_e50e24dcca9e);
const COMMAND: Uuid = Uuid::from_u128(0x6e400002_b5a3_f393_e0a9_e50e24dcca9e);
const STATUS: Uuid = Uuid::from_u128(0x6e400003_b5a3_f393_e0a9_e50e24dcca9e);
const DEVICE: &str = "/org/bluez/hci0/dev_C0_FF_EE_00_00_01";

struct Silent;

impl GattBackend for Silent {
    fn on_write(&self, _value: &[u8], _with_response: bool) -> Vec<Vec<u8>> {
        Vec::new()
    }
}

/// A peripheral with two characteristics, so nodes have several children.
fn config() -> FakeBluezConfig {
    let service = ServiceConfig::new(SERVICE)
        .characteristic(CharacteristicConfig::new(COMMAND, Arc::new(Silent)))
        .characteristic(
            CharacteristicConfig::new(STATUS, Arc::new(Silent))
                .flags(&[door_ble_rig::CharFlag::Read, door_ble_rig::CharFlag::Notify]),
        );
    FakeBluezConfig::new().peripheral(
        PeripheralConfig::new("C0:FF:EE:00:00:01", "door-lock-1")
            .advertised_service(SERVICE)
            .mtu(185)
            .service(service),
    )
}

async fn call(conn: &Connection, path: &str, interface: &str, method: &str) -> zbus::Message {
    conn.call_method(Some("org.bluez"), path, Some(interface), method, &())
        .await
        .unwrap_or_else(|e| panic!("{interface}.{method} on {path}: {e}"))
}

/// Connect returns before service discovery ends, as on BlueZ; wait for ServicesResolved.
async fn wait_until_resolved(conn: &Connection) {
    for _ in 0..500 {
        let reply = conn
            .call_method(
                Some("org.bluez"),
                DEVICE,
                Some("org.freedesktop.DBus.Properties"),
                "Get",
                &("org.bluez.Device1", "ServicesResolved"),
            )
            .await
            .expect("ServicesResolved");
        let resolved: OwnedValue = reply.body().deserialize().expect("a variant");
        if bool::try_from(resolved) == Ok(true) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("services not resolved after 5 s");
}

async fn introspect(conn: &Connection, path: &str) -> String {
    call(
        conn,
        path,
        "org.freedesktop.DBus.Introspectable",
        "Introspect",
    )
    .await
    .body()
    .deserialize()
    .expect("introspection XML")
}

/// Checks that in every `<node>` of `xml` all `<interface>` elements precede the child nodes;
/// returns the names of the direct children.
fn check_order(path: &str, xml: &str) -> Vec<String> {
    // One frame per open <node>: whether a child node has been seen in it yet.
    let mut open: Vec<bool> = Vec::new();
    let mut children = Vec::new();
    for tag in xml.split('<').skip(1).filter_map(|t| t.split('>').next()) {
        if let Some(rest) = tag.strip_prefix("node") {
            let self_closing = rest.ends_with('/');
            if let Some(parent) = open.last_mut() {
                *parent = true;
            }
            if open.len() == 1 {
                let name = rest.split('"').nth(1).expect("child node has a name");
                children.push(name.to_owned());
            }
            if !self_closing {
                open.push(false);
            }
        } else if tag.starts_with("/node") {
            open.pop();
        } else if tag.starts_with("interface") {
            assert!(
                !open.last().expect("interface inside a node"),
                "{path}: <interface> after a child <node>:\n{xml}"
            );
        }
    }
    assert!(open.is_empty(), "{path}: unbalanced <node> tags:\n{xml}");
    children
}

#[test]
#[should_panic(expected = "<interface> after a child <node>")]
fn order_check_rejects_interleaved_interfaces() {
    check_order(
        "/",
        r#"<node><interface name="a"/><node name="x"/><interface name="b"/></node>"#,
    );
}

#[tokio::test]
async fn every_node_lists_interfaces_before_children() {
    let fake = FakeBluez::start(config()).expect("fake BlueZ");
    let conn = zbus::connection::Builder::address(fake.bus_address())
        .unwrap()
        .build()
        .await
        .unwrap();
    // Populate the whole tree: a discovered device, connected, with its GATT objects.
    call(
        &conn,
        "/org/bluez/hci0",
        "org.bluez.Adapter1",
        "StartDiscovery",
    )
    .await;
    call(&conn, DEVICE, "org.bluez.Device1", "Connect").await;
    wait_until_resolved(&conn).await;

    let mut pending = vec!["/".to_owned()];
    let mut visited = Vec::new();
    while let Some(path) = pending.pop() {
        let xml = introspect(&conn, &path).await;
        for child in check_order(&path, &xml) {
            pending.push(format!("{}/{child}", path.trim_end_matches('/')));
        }
        visited.push(path);
    }
    visited.sort();
    let gatt: Vec<&str> = visited
        .iter()
        .filter_map(|p| p.strip_prefix(DEVICE))
        .collect();
    assert_eq!(
        gatt,
        [
            "",
            "/service0010",
            "/service0010/char0011",
            "/service0010/char0014"
        ]
    );
}

#[tokio::test]
async fn bluez_async_reads_the_gatt_tree() {
    let _fake = FakeBluez::start(config()).expect("fake BlueZ");
    let (_connection, session) = BluetoothSession::new().await.expect("session");
    session.start_discovery().await.unwrap();
    let devices = session.get_devices().await.unwrap();
    assert_eq!(devices.len(), 1);
    let device: &DeviceId = &devices[0].id;
    assert_eq!(devices[0].name.as_deref(), Some("door-lock-1"));
    assert_eq!(devices[0].services, [SERVICE]);

    session.connect(device).await.unwrap();
    let services = session.get_services(device).await.unwrap();
    assert_eq!(services.len(), 1);
    assert_eq!(services[0].uuid, SERVICE);
    assert!(services[0].primary);

    let mut characteristics = session.get_characteristics(&services[0].id).await.unwrap();
    characteristics.sort_by_key(|c| c.uuid);
    assert_eq!(characteristics.len(), 2);
    assert_eq!(characteristics[0].uuid, COMMAND);
    assert_eq!(
        characteristics[0].flags,
        CharacteristicFlags::READ
            | CharacteristicFlags::WRITE
            | CharacteristicFlags::WRITE_WITHOUT_RESPONSE
            | CharacteristicFlags::NOTIFY
    );
    assert_eq!(characteristics[1].uuid, STATUS);
    assert_eq!(
        characteristics[1].flags,
        CharacteristicFlags::READ | CharacteristicFlags::NOTIFY
    );
    assert!(characteristics.iter().all(|c| c.mtu == Some(185)));
    assert!(session
        .get_descriptors(&characteristics[0].id)
        .await
        .unwrap()
        .is_empty());
    session.disconnect(device).await.unwrap();
}
