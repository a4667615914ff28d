//! `door testbed --json` as the Kotlin and Swift suites use it: one JSON line, then a server,
//! a TCP port with every door's lock and (Linux) a fake BlueZ with the same locks, until
//! standard input closes.

mod common;

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use door_cli::tcp_link::TcpTransport;
use door_cli::testbed::Testbed;
use door_core::ble::Transport;
use door_core::{ClientConfig, DoorClient};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_testbed_announces_itself_and_its_locks_open_over_tcp() {
    let dir = tempfile::tempdir().unwrap();
    let mut bed = Background::spawn(door(dir.path()).args(["testbed", "--json"]));
    let first = bed.until("{");
    let t: Testbed = serde_json::from_str(first.last().unwrap()).unwrap();
    assert!(t.server_url.starts_with("http://127.0.0.1:"));
    assert_eq!(t.time_zone, "America/New_York");
    let alice = t.people.iter().find(|p| p.name == "Alice").unwrap();
    assert_eq!(alice.email, "alice@1800main.example");
    let lobby = t.doors.iter().find(|d| d.name == "Lobby").unwrap();
    assert_eq!(
        t.doors.len(),
        4 + 4 + 3,
        "entrances, service, office, units, amenities"
    );

    // An app's view: sign in, then the Lobby over the TCP link.
    let data = tempfile::tempdir().unwrap();
    let link = TcpTransport::new(([127, 0, 0, 1], t.lock_port).into());
    let client = DoorClient::with_clock(
        ClientConfig {
            server_url: t.server_url.clone(),
            data_dir: data.path().to_string_lossy().into_owned(),
            request_timeout_ms: 5000,
        },
        Some(door_core::ephemeral_device_signer()),
        None,
        Some(Arc::new(link) as Arc<dyn Transport>),
        Arc::new(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs() as i64
        }),
    )
    .unwrap();
    client
        .sign_in(alice.email.clone(), alice.password.clone())
        .await
        .unwrap();
    let receipt = client.unlock(lobby.id.clone(), 5000, None).await.unwrap();
    assert_eq!(receipt.attempts, 1);
    assert_eq!(receipt.pending_audit, 1);

    // The printed ID token signs its resident in on another install (token sign-in).
    let bob = t.people.iter().find(|p| p.name == "Bob").unwrap();
    assert_eq!(
        (t.oidc.email.as_str(), t.oidc.name.as_str()),
        (bob.email.as_str(), "Bob")
    );
    let token_data = tempfile::tempdir().unwrap();
    let with_token = DoorClient::with_clock(
        ClientConfig {
            server_url: t.server_url.clone(),
            data_dir: token_data.path().to_string_lossy().into_owned(),
            request_timeout_ms: 5000,
        },
        Some(door_core::ephemeral_device_signer()),
        None,
        Some(
            Arc::new(TcpTransport::new(([127, 0, 0, 1], t.lock_port).into())) as Arc<dyn Transport>,
        ),
        Arc::new(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs() as i64
        }),
    )
    .unwrap();
    let person = with_token
        .sign_in_with_token(t.oidc.id_token.clone(), Some(t.oidc.nonce.clone()))
        .await
        .unwrap();
    assert_eq!(person.name, "Bob");
    let doors: Vec<String> = with_token
        .doors()
        .unwrap()
        .into_iter()
        .map(|d| d.name)
        .collect();
    assert!(doors.contains(&"Lobby".to_owned()), "{doors:?}");

    // A lock id the testbed does not have: the connection closes at once.
    let mut raw = std::net::TcpStream::connect(("127.0.0.1", t.lock_port)).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    raw.write_all(format!("{}\n", "00".repeat(16)).as_bytes())
        .unwrap();
    assert_eq!(raw.read(&mut [0u8; 8]).unwrap(), 0);

    // Closing its standard input ends it.
    drop(bed.child.stdin.take());
    let started = Instant::now();
    let status = loop {
        if let Some(s) = bed.child.try_wait().unwrap() {
            break s;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "still running");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
}

/// The core's own radio (btleplug -> libdbus -> the testbed's fake BlueZ) and the TCP link
/// reach the same lock: what one leaves in it, the other sees.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_testbeds_locks_are_ble_peripherals_too_and_share_their_state_with_tcp() {
    let dir = tempfile::tempdir().unwrap();
    let mut bed = Background::spawn(door(dir.path()).args(["testbed", "--json"]));
    let first = bed.until("{");
    let t: Testbed = serde_json::from_str(first.last().unwrap()).unwrap();
    let bus = t.bluez_bus.clone().expect("a fake BlueZ on Linux");
    assert!(bus.starts_with("unix:path=/"), "{bus}");
    // The only test of this binary that opens D-Bus, and libdbus has not read it yet.
    std::env::set_var("DBUS_SYSTEM_BUS_ADDRESS", &bus);
    let alice = t.people.iter().find(|p| p.name == "Alice").unwrap();
    let lobby = t.doors.iter().find(|d| d.name == "Lobby").unwrap();

    let data = tempfile::tempdir().unwrap();
    let signer = door_core::ephemeral_device_signer();
    let client = |transport: Arc<dyn Transport>| {
        DoorClient::with_clock(
            ClientConfig {
                server_url: t.server_url.clone(),
                data_dir: data.path().to_string_lossy().into_owned(),
                request_timeout_ms: 5000,
            },
            Some(signer.clone()),
            None,
            Some(transport),
            Arc::new(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs() as i64
            }),
        )
        .unwrap()
    };
    let radio = client(Arc::new(door_core::ble::btleplug::BtleplugTransport::new()));
    radio
        .sign_in(alice.email.clone(), alice.password.clone())
        .await
        .unwrap();
    let over_ble = radio.unlock(lobby.id.clone(), 10_000, None).await.unwrap();
    assert_eq!(over_ble.pending_audit, 1);
    drop(radio);

    // The same data directory (the same signed-in device) over TCP: the Lobby lock still
    // holds the record the BLE unlock left, so it reports more than a lock only TCP has seen
    // (her own unit's, opened the same way right after).
    let link = client(Arc::new(TcpTransport::new(
        ([127, 0, 0, 1], t.lock_port).into(),
    )));
    let over_tcp = link.unlock(lobby.id.clone(), 5000, None).await.unwrap();
    let unit = t.doors.iter().find(|d| d.name == "Unit 101").unwrap();
    let untouched = link.unlock(unit.id.clone(), 5000, None).await.unwrap();
    assert!(
        over_tcp.pending_audit > untouched.pending_audit,
        "one lock behind both transports: Lobby {over_tcp:?}, Unit 101 {untouched:?}"
    );
}
