//! The desktop client against a real door-server, and `door lock-sim` as the lock: over the
//! fake BlueZ (so `door unlock` goes through btleplug and D-Bus as on a Linux desktop) and
//! over TCP.

mod common;

use std::sync::Arc;

use common::*;
use door_cli::tcp_link::TcpTransport;
use door_core::ble::Transport;
use door_core::{ClientConfig, DoorClient};
use door_server::seed::{self, Scale, Seeded, PASSWORD};
use door_server::ServerHandle;

const ADMIN: &str = "real-server-test-admin";

async fn property() -> (ServerHandle, Seeded) {
    let server = door_server::start(
        "127.0.0.1:0".parse().unwrap(),
        None,
        ADMIN,
        door_server::system_clock(),
    )
    .await
    .unwrap();
    let seeded = seed::main_st(&server.url(), ADMIN, Scale::SMALL)
        .await
        .unwrap();
    (server, seeded)
}

/// `door lock-sim` standing in for the seeded door `name`, served with `how`.
fn lock_sim(dir: &std::path::Path, seeded: &Seeded, name: &str, how: &[&str]) -> Background {
    let d = seeded.door(name);
    let mut c = door(dir);
    c.args([
        "lock-sim",
        "--door-id",
        &d.door.id,
        "--lock-id",
        &d.door.lock_id,
        "--lock-key",
        &hex::encode(d.lock_secret),
        "--issuer-key",
        &seeded.property.issuer_public_key,
    ])
    .args(how);
    Background::spawn(&mut c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resident_at_the_command_line_with_a_lock_on_the_fake_bluez() {
    let (server, seeded) = property().await;
    let dir = tempfile::tempdir().unwrap();
    let mut lock = lock_sim(dir.path(), &seeded, "Lobby", &["--fake-bluez"]);
    let announced = lock.until("Ctrl-C");
    assert_eq!(
        field(&announced, "lock id"),
        seeded.door("Lobby").door.lock_id
    );
    let bus = field(&announced, "bus")
        .strip_prefix("DBUS_SYSTEM_BUS_ADDRESS=")
        .unwrap()
        .to_owned();
    let cli = || {
        let mut c = door(dir.path());
        c.env("DBUS_SYSTEM_BUS_ADDRESS", &bus);
        c
    };

    let ran = run(cli()
        .args(["login", "--server", &server.url(), "--email"])
        .arg("alice@1800main.example")
        .env("DOOR_PASSWORD", PASSWORD));
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert!(ran
        .stdout
        .contains("Signed in as Alice (resident) at 1800 Main St"));

    let ran = run(cli().args(["doors", "--codes"]));
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    let lobby_line = ran.stdout.lines().find(|l| l.starts_with("Lobby")).unwrap();
    assert!(lobby_line.contains("open · doorcode "), "{}", ran.stdout);

    let ran = run(cli().args(["unlock", "lobby"]));
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert!(ran.stdout.starts_with("Lobby opened in "), "{}", ran.stdout);

    // "Sync this door": the lock takes the server's bundle without opening.
    let ran = run(cli().args(["sync", "lobby"]));
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert!(ran.stdout.starts_with("Lobby synced in "), "{}", ran.stdout);

    let ran = run(cli().args(["unlock", "Nowhere"]));
    assert_eq!(ran.code, Some(1));
    assert!(
        ran.stderr.contains("no door \"Nowhere\" among your"),
        "{}",
        ran.stderr
    );

    // The Garage Gate has no lock in range.
    let ran = run(cli().args(["unlock", "Garage Gate", "--timeout-ms", "1500"]));
    assert_eq!(ran.code, Some(1));
    assert!(
        ran.stderr.contains("Garage Gate: the lock is not in range"),
        "{}",
        ran.stderr
    );

    let ran = run(cli().args([
        "invite",
        "--door",
        "Lobby",
        "--door",
        "Unit 101",
        "--contact",
        "+1 555 0100",
        "--hours",
        "48",
    ]));
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    let guest_id = ran
        .stdout
        .split("(guest id ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .unwrap()
        .to_owned();
    let ran = run(cli().arg("guests"));
    assert!(
        ran.stdout.contains(&guest_id) && ran.stdout.contains("Lobby, Unit 101"),
        "{}",
        ran.stdout
    );
    let ran = run(cli().args(["revoke", &guest_id]));
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    let ran = run(cli().arg("guests"));
    assert!(ran.stdout.contains("revoked"), "{}", ran.stdout);

    let ran = run(cli().args(["invite", "--door", "Pool", "--contact", "x"]));
    assert_eq!(ran.code, Some(1));
    assert!(
        ran.stderr
            .contains("these doors may not be shared with guests: Pool"),
        "{}",
        ran.stderr
    );

    let ran = run(cli().arg("logout"));
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert!(!dir.path().join("device-key").exists());
    assert_eq!(run(cli().arg("doors")).code, Some(1));

    assert!(lock.stop().success());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_sim_over_tcp_opens_for_door_core() {
    let (server, seeded) = property().await;
    let dir = tempfile::tempdir().unwrap();
    let mut lock = lock_sim(dir.path(), &seeded, "Lobby", &["--tcp", "127.0.0.1:0"]);
    let addr = field(&lock.until("Ctrl-C"), "tcp").parse().unwrap();
    let data = tempfile::tempdir().unwrap();
    // DoorClient::with_clock is the Rust-side constructor that takes a Rust transport.
    let client = DoorClient::with_clock(
        ClientConfig {
            server_url: server.url(),
            data_dir: data.path().to_string_lossy().into_owned(),
            request_timeout_ms: 5000,
        },
        Some(door_core::ephemeral_device_signer()),
        None,
        Some(Arc::new(TcpTransport::new(addr)) as Arc<dyn Transport>),
        Arc::new(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs() as i64
        }),
    )
    .unwrap();
    client
        .sign_in("bob@1800main.example".into(), PASSWORD.into())
        .await
        .unwrap();
    let receipt = client
        .unlock(seeded.door("Lobby").door.id.clone(), 5000, None)
        .await
        .unwrap();
    assert_eq!(receipt.attempts, 1);
    assert!(lock.stop().success());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_sees_the_lock_sims_health_after_a_residents_unlock() {
    let (server, seeded) = property().await;
    let dir = tempfile::tempdir().unwrap();
    let mut lock = lock_sim(
        dir.path(),
        &seeded,
        "Lobby",
        &[
            "--tcp",
            "127.0.0.1:0",
            "--battery",
            "18",
            "--firmware",
            "lobby-fw 3.2",
        ],
    );
    let announced = lock.until("Ctrl-C");
    assert!(
        announced
            .iter()
            .any(|l| l.trim() == "health       battery 18 %, firmware lobby-fw 3.2"),
        "{announced:?}"
    );
    let addr = field(&announced, "tcp").parse().unwrap();
    let locks = || {
        let mut c = door(dir.path());
        c.args([
            "locks",
            "--server",
            &server.url(),
            "--property",
            &seeded.property.id,
        ])
        .env("DOOR_MANAGER_KEY", &seeded.manager_key);
        run(&mut c)
    };
    let ran = locks();
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert!(
        ran.stdout.contains("doors have no report yet"),
        "{}",
        ran.stdout
    );

    // Bob, a resident, opens the Lobby; his phone brings the lock's signed report home.
    let data = tempfile::tempdir().unwrap();
    let client = DoorClient::with_clock(
        ClientConfig {
            server_url: server.url(),
            data_dir: data.path().to_string_lossy().into_owned(),
            request_timeout_ms: 5000,
        },
        Some(door_core::ephemeral_device_signer()),
        None,
        Some(Arc::new(TcpTransport::new(addr)) as Arc<dyn Transport>),
        Arc::new(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs() as i64
        }),
    )
    .unwrap();
    client
        .sign_in("bob@1800main.example".into(), PASSWORD.into())
        .await
        .unwrap();
    client
        .unlock(seeded.door("Lobby").door.id.clone(), 5000, None)
        .await
        .unwrap();
    // The Door Sync after the unlock and the upload run on after the unlock returns.
    let mut lobby = None;
    for _ in 0..100 {
        let ran = locks();
        assert_eq!(ran.code, Some(0), "{}", ran.stderr);
        lobby = ran
            .stdout
            .lines()
            .find(|l| l.starts_with("Lobby"))
            .map(str::to_owned);
        if lobby.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let lobby = lobby.expect("the Lobby's health reached the manager");
    for part in ["battery 17 %, replace soon", "lobby-fw 3.2", "all access"] {
        assert!(lobby.contains(part), "{part:?} in {lobby:?}");
    }

    // A wrong manager key is a sentence and exit 1.
    let mut c = door(dir.path());
    c.args([
        "locks",
        "--server",
        &server.url(),
        "--property",
        &seeded.property.id,
    ])
    .env("DOOR_MANAGER_KEY", "not-a-key");
    let ran = run(&mut c);
    assert_eq!(ran.code, Some(1));
    assert!(
        ran.stderr.starts_with("door: the manager key was refused"),
        "{}",
        ran.stderr
    );
    assert!(lock.stop().success());
    server.stop().await;
}
