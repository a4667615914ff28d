//! `door testbed`: a whole property for the app test suites (Kotlin, Swift), which cannot
//! link door-server and door-lock: door-server on 127.0.0.1 (in-memory SQLite) with the
//! seeds' "1800 Main St" at a small scale, a reference lock for every door, and every lock
//! reachable two ways:
//!
//! - on one TCP port (the framing of `tcp_link`: the lock-id line picks the lock), for apps
//!   that own the radio and pass the core a `BleTransport`;
//! - on Linux, as a peripheral of one fake BlueZ (door-ble-rig, on a private D-Bus system
//!   bus; `gatt.rs`), so that a client built without a `BleTransport` unlocks through the
//!   core's own radio (btleplug -> D-Bus) once its process points `DBUS_SYSTEM_BUS_ADDRESS`
//!   at `bluez_bus`.
//!
//! Both serve the same `Lock` handles (clones of one lock share its state), so what one
//! transport changes (a revocation list, a sync, the audit log) the other sees. On the system
//! clock. It announces itself, then runs until its standard input closes, so the test process
//! that spawned it controls its lifetime without signals.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use door_lock::{Lock, LockClock};
use door_protocol::{Id, IssuerKeys, IssuerPublicKey, LockConfig, LockKey};
use door_server::seed::{self, Scale, Seeded};
use door_server::test_issuer::TestIssuer;
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;

use crate::CliResult;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print one JSON line (see `Testbed`) instead of a listing for people.
    #[arg(long)]
    pub json: bool,
}

/// What `door testbed --json` prints: one line, then nothing more on stdout.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Testbed {
    /// The server's base URL, e.g. "http://127.0.0.1:40123".
    pub server_url: String,
    /// The TCP port on 127.0.0.1 that serves every lock (see tcp_link.rs).
    pub lock_port: u16,
    /// The fake BlueZ's private D-Bus system bus ("unix:path=/tmp/door-ble-rig-<pid>/
    /// system_bus_socket"), on which every lock is a peripheral advertising its lock id; null
    /// off Linux. libdbus reads `DBUS_SYSTEM_BUS_ADDRESS` once per process, at its first use.
    pub bluez_bus: Option<String>,
    /// The property's IANA time zone ("America/New_York").
    pub time_zone: String,
    pub people: Vec<TestbedPerson>,
    pub doors: Vec<TestbedDoor>,
    /// Token sign-in: the property's OpenID Connect issuer (on loopback) and a ready token.
    pub oidc: TestbedOidc,
}

/// The testbed's OpenID Connect issuer, configured as the property's, and an ID token it
/// signed for the last seeded resident (Bob), for `signInWithToken(id_token, nonce)`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TestbedOidc {
    pub issuer: String,
    pub audience: String,
    /// Valid for `TOKEN_LIFETIME` from the testbed's start, for `email` (verified).
    pub id_token: String,
    /// The nonce in `id_token`.
    pub nonce: String,
    /// The person the token signs in.
    pub email: String,
    pub name: String,
}

/// The audience (client id) of the testbed's tokens.
const AUDIENCE: &str = "door-testbed-app";
/// How long the printed ID token lasts: longer than any app test suite runs.
const TOKEN_LIFETIME: i64 = 6 * 3600;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TestbedPerson {
    pub name: String,
    pub email: String,
    pub password: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TestbedDoor {
    pub id: String,
    pub name: String,
    pub lock_id: String,
}

pub async fn run(args: Args) -> CliResult<()> {
    let mut token = [0u8; 16];
    OsRng.fill_bytes(&mut token);
    let admin = hex::encode(token);
    let server = door_server::start(
        "127.0.0.1:0".parse()?,
        None,
        &admin,
        door_server::system_clock(),
    )
    .await
    .map_err(|e| format!("cannot start door-server: {e}"))?;
    let seeded = seed::main_st(&server.url(), &admin, Scale::SMALL)
        .await
        .map_err(|e| format!("cannot seed the property: {e}"))?;
    let (issuer, oidc) = oidc_issuer(&server.url(), &seeded).await?;
    let states = tempfile::tempdir()?;
    let locks = Arc::new(reference_locks(
        &seeded,
        states.path(),
        LockClock::system(),
    )?);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let lock_port = listener.local_addr()?.port();
    let bluez = fake_bluez(&seeded, &locks)?;
    let serving = tokio::spawn(crate::tcp_link::serve(listener, locks));

    let testbed = Testbed {
        server_url: server.url(),
        lock_port,
        bluez_bus: bluez_address(&bluez),
        time_zone: seeded.property.time_zone.clone(),
        people: seeded
            .people
            .iter()
            .map(|p| TestbedPerson {
                name: p.person.name.clone(),
                email: p.email.clone(),
                password: seed::PASSWORD.into(),
            })
            .collect(),
        doors: seeded
            .doors
            .iter()
            .map(|d| TestbedDoor {
                id: d.door.id.clone(),
                name: d.door.name.clone(),
                lock_id: d.door.lock_id.clone(),
            })
            .collect(),
        oidc,
    };
    if args.json {
        println!("{}", serde_json::to_string(&testbed)?);
    } else {
        print_listing(&testbed);
    }

    // Standard input closing (the parent exiting, or Ctrl-D) ends the testbed.
    let mut sink = Vec::new();
    let _ = tokio::io::stdin().read_to_end(&mut sink).await;
    serving.abort();
    stop_radio(bluez).await; // stops its dbus-daemon
    drop(issuer);
    server.stop().await;
    Ok(())
}

/// A loopback OpenID Connect issuer made the seeded property's, and a token it signed for
/// the last seeded resident.
async fn oidc_issuer(server_url: &str, seeded: &Seeded) -> CliResult<(TestIssuer, TestbedOidc)> {
    let issuer = TestIssuer::start()
        .await
        .map_err(|e| format!("cannot start the OpenID Connect issuer: {e}"))?;
    issuer
        .configure(
            server_url,
            &seeded.manager_key,
            &seeded.property.id,
            AUDIENCE,
        )
        .await?;
    // The last resident (Bob): the app suites sign Alice in on many devices with her password,
    // and a person's devices are limited.
    let resident = seeded
        .people
        .iter()
        .rfind(|p| p.person.role == "resident")
        .ok_or("the seed has no resident")?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    let mut nonce = [0u8; 12];
    OsRng.fill_bytes(&mut nonce);
    let nonce = hex::encode(nonce);
    let mut claims = issuer.claims(&format!("testbed-{}", resident.person.id), AUDIENCE, now);
    claims.exp = now + TOKEN_LIFETIME;
    claims.email = Some(resident.email.clone());
    claims.email_verified = Some(true);
    claims.nonce = Some(nonce.clone());
    let oidc = TestbedOidc {
        issuer: issuer.issuer(),
        audience: AUDIENCE.into(),
        id_token: issuer.sign(&claims),
        nonce,
        email: resident.email.clone(),
        name: resident.person.name.clone(),
    };
    Ok((issuer, oidc))
}

/// The BLE address of the `index`th door's lock: distinct for up to 65536 doors.
pub fn ble_address(index: usize) -> String {
    format!(
        "C0:FF:EE:01:{:02X}:{:02X}",
        (index >> 8) & 0xff,
        index & 0xff
    )
}

/// One fake BlueZ with a peripheral for every door's lock (the same `Lock` handles the TCP
/// link serves), at `ble_address` of the door's index in the seed.
#[cfg(target_os = "linux")]
fn fake_bluez(seeded: &Seeded, locks: &HashMap<String, Lock>) -> CliResult<Option<Radio>> {
    let mut config = door_ble_rig::FakeBluezConfig::new();
    for (index, d) in seeded.doors.iter().enumerate() {
        let lock = locks
            .get(&d.door.lock_id.to_ascii_lowercase())
            .ok_or_else(|| format!("no lock for door {:?}", d.door.name))?;
        config = config.peripheral(crate::gatt::peripheral(
            &ble_address(index),
            &d.door.name,
            lock.clone(),
        ));
    }
    let bluez = Arc::new(
        door_ble_rig::FakeBluez::start(config)
            .map_err(|e| format!("cannot start the fake BlueZ (needs dbus-daemon): {e}"))?,
    );
    // Every lock advertises on its own, as real ones do, at the strength of a phone held
    // near it, so an app's proximity unlock sees each lock close by.
    let addresses: Vec<String> = (0..seeded.doors.len()).map(ble_address).collect();
    let weak = Arc::downgrade(&bluez);
    let advertising = tokio::spawn(async move {
        loop {
            let Some(bluez) = weak.upgrade() else { return };
            for address in &addresses {
                let _ = bluez.set_rssi(address, NEAR_RSSI).await;
            }
            drop(bluez);
            tokio::time::sleep(ADVERTISING_INTERVAL).await;
        }
    });
    Ok(Some(Radio { bluez, advertising }))
}

/// The signal strength every testbed lock advertises at, and how often.
#[cfg(target_os = "linux")]
const NEAR_RSSI: i16 = -50;
#[cfg(target_os = "linux")]
const ADVERTISING_INTERVAL: std::time::Duration = std::time::Duration::from_millis(200);

#[cfg(target_os = "linux")]
struct Radio {
    bluez: Arc<door_ble_rig::FakeBluez>,
    advertising: tokio::task::JoinHandle<()>,
}

#[cfg(target_os = "linux")]
fn bluez_address(radio: &Option<Radio>) -> Option<String> {
    radio.as_ref().map(|r| r.bluez.bus_address().to_owned())
}

/// Stops advertising, then the fake BlueZ and its dbus-daemon.
#[cfg(target_os = "linux")]
async fn stop_radio(radio: Option<Radio>) {
    if let Some(radio) = radio {
        radio.advertising.abort();
        let _ = radio.advertising.await;
    }
}

#[cfg(not(target_os = "linux"))]
async fn stop_radio(_radio: Option<()>) {}

/// No BlueZ off Linux: apps there reach the locks over the TCP port.
#[cfg(not(target_os = "linux"))]
fn fake_bluez(_seeded: &Seeded, _locks: &HashMap<String, Lock>) -> CliResult<Option<()>> {
    Ok(None)
}

#[cfg(not(target_os = "linux"))]
fn bluez_address(_bluez: &Option<()>) -> Option<String> {
    None
}

/// A reference lock for every seeded door, keyed by lock id, state under `dir`.
pub fn reference_locks(
    seeded: &Seeded,
    dir: &std::path::Path,
    clock: LockClock,
) -> CliResult<HashMap<String, Lock>> {
    let issuer = issuer_keys(seeded)?;
    let mut locks = HashMap::new();
    for d in &seeded.doors {
        let lock = reference_lock(d, issuer.clone(), dir, clock.clone())?;
        locks.insert(d.door.lock_id.to_ascii_lowercase(), lock);
    }
    Ok(locks)
}

/// The issuer keys a property's locks accept: the property's issuer public key.
pub fn issuer_keys(seeded: &Seeded) -> CliResult<IssuerKeys> {
    let sec1 = base64::engine::general_purpose::STANDARD
        .decode(&seeded.property.issuer_public_key)
        .map_err(|e| format!("the property's issuer key is not base64: {e}"))?;
    let key = IssuerPublicKey::from_sec1(&sec1)
        .map_err(|e| format!("the property's issuer key is not a P-256 key: {e}"))?;
    Ok(IssuerKeys::single(key))
}

/// A reference lock for one seeded door, its state in a subdirectory of `dir`.
pub fn reference_lock(
    door: &seed::SeededDoor,
    issuer: IssuerKeys,
    dir: &std::path::Path,
    clock: LockClock,
) -> CliResult<Lock> {
    let bad = |what: &str| format!("door {:?} has a bad {what}", door.door.name);
    let config = LockConfig::new(
        Id::from_hex(&door.door.lock_id).ok_or_else(|| bad("lock id"))?,
        Id::from_hex(&door.door.id).ok_or_else(|| bad("id"))?,
        LockKey::from_bytes(&door.lock_secret).map_err(|_| bad("lock key"))?,
        issuer,
    );
    let state = dir.join(&door.door.lock_id);
    Ok(Lock::open(&state, config, clock)?)
}

fn print_listing(t: &Testbed) {
    println!("door testbed: \"1800 Main St\" ({})", t.time_zone);
    println!("  server     {}", t.server_url);
    println!(
        "  locks      tcp 127.0.0.1:{} (all {} doors)",
        t.lock_port,
        t.doors.len()
    );
    if let Some(bus) = &t.bluez_bus {
        println!("  bluez      DBUS_SYSTEM_BUS_ADDRESS={bus} (all doors, as BLE peripherals)");
    }
    for p in &t.people {
        println!(
            "  person     {:<8} {}  password {:?}",
            p.name, p.email, p.password
        );
    }
    println!(
        "  oidc       issuer {}  audience {}  (id_token for {} in --json)",
        t.oidc.issuer, t.oidc.audience, t.oidc.email
    );
    for d in &t.doors {
        println!(
            "  door       {:<16} id {}  lock {}",
            d.name, d.id, d.lock_id
        );
    }
    println!("Close standard input (Ctrl-D) to stop it.");
}
