//! `door lock-sim`: one reference lock (door-lock, the lock side of door-protocol), kept in
//! memory and a state directory, served over TCP (the framing of `tcp_link`) or on a fake
//! BlueZ so that `door unlock` reaches it through btleplug. Runs until Ctrl-C or SIGTERM.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine;
use door_lock::{Lock, LockClock};
use door_protocol::{
    FirmwareVersion, Id, IssuerKey, IssuerKeys, IssuerPublicKey, LockConfig, LockKey,
};
use rand_core::{OsRng, RngCore};

use crate::CliResult;

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("serve").required(true).args(["tcp", "fake_bluez"])))]
pub struct Args {
    /// The door the lock opens (32 hex digits); random when omitted.
    #[arg(long, value_parser = parse_id)]
    pub door_id: Option<Id>,
    /// The lock's id (32 hex digits) as the server registered it; random when omitted.
    #[arg(long, value_parser = parse_id)]
    pub lock_id: Option<Id>,
    /// The lock's P-256 secret scalar (64 hex digits); a new key when omitted, whose public
    /// half is printed for registering the door.
    #[arg(long, value_parser = parse_lock_key)]
    pub lock_key: Option<LockKey>,
    /// The property's issuer public key (SEC1, in base64 as the server's property record
    /// has it, or hex); a fresh one when omitted, which no server's credentials match.
    #[arg(long, value_parser = parse_issuer)]
    pub issuer_key: Option<IssuerPublicKey>,
    /// Where the lock keeps its revocations, replay cache and audit log; a temporary
    /// directory (forgotten at exit) when omitted.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Serve over TCP at this address (port 0 picks one): the lock id line, then u16
    /// big-endian length-prefixed frames each way; see tcp_link.rs.
    #[arg(long, value_name = "ADDR")]
    pub tcp: Option<SocketAddr>,
    /// Serve on a fake BlueZ on a private D-Bus (Linux, needs dbus-daemon); point
    /// DBUS_SYSTEM_BUS_ADDRESS at the printed bus to reach it with `door unlock`.
    #[arg(long)]
    pub fake_bluez: bool,
    /// The Bluetooth address the fake BlueZ gives the lock.
    #[arg(long, default_value = "C0:FF:EE:00:10:01", requires = "fake_bluez")]
    pub address: String,
    /// How far the lock's clock is off this machine's, in seconds (negative: behind).
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub drift: i64,
    /// The simulated battery's charge at start, in percent; each unlock and each applied
    /// bundle draws on it (door_lock::battery), and every phone that syncs the lock carries
    /// its signed health report home.
    #[arg(long, default_value_t = 100, value_name = "PERCENT",
        value_parser = clap::value_parser!(u8).range(0..=100))]
    pub battery: u8,
    /// The firmware version the lock reports (1 to 32 printable ASCII characters)
    /// [default: door-lock and its version].
    #[arg(long, value_name = "VERSION", value_parser = parse_firmware)]
    pub firmware: Option<FirmwareVersion>,
}

fn parse_firmware(s: &str) -> Result<FirmwareVersion, String> {
    FirmwareVersion::new(s).ok_or_else(|| "must be 1 to 32 printable ASCII characters".into())
}

fn parse_id(s: &str) -> Result<Id, String> {
    Id::from_hex(s).ok_or_else(|| "must be 32 hex digits".into())
}

fn parse_lock_key(s: &str) -> Result<LockKey, String> {
    let bytes: [u8; 32] = hex::decode(s)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or("must be 64 hex digits")?;
    LockKey::from_bytes(&bytes).map_err(|_| "is not a valid P-256 secret scalar".into())
}

fn parse_issuer(s: &str) -> Result<IssuerPublicKey, String> {
    let bytes = hex::decode(s)
        .or_else(|_| base64::engine::general_purpose::STANDARD.decode(s))
        .map_err(|_| "must be a SEC1 public key in base64 or hex")?;
    IssuerPublicKey::from_sec1(&bytes).map_err(|_| "is not a P-256 public key".into())
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn random_id() -> Id {
    let mut id = Id::default();
    OsRng.fill_bytes(&mut id.0);
    id
}

pub async fn run(args: Args) -> CliResult<()> {
    let door_id = args.door_id.unwrap_or_else(random_id);
    let lock_id = args.lock_id.unwrap_or_else(random_id);
    let generated_key = args.lock_key.is_none();
    let key = args
        .lock_key
        .unwrap_or_else(|| LockKey::generate(&mut OsRng));
    let (issuer, issuer_note) = match args.issuer_key {
        Some(k) => (k, "given"),
        None => (
            *IssuerKey::generate(&mut OsRng).verifying(),
            "generated: no server's credentials verify; pass the property's with --issuer-key",
        ),
    };
    let temp;
    let state_dir = match args.state_dir {
        Some(d) => d,
        None => {
            temp = tempfile::tempdir()?;
            temp.path().to_owned()
        }
    };
    let clock = LockClock::system();
    clock.set_drift(args.drift);
    let public = key.public().to_sec1_compressed();
    let secret = hex::encode(*key.to_bytes());
    let config = LockConfig::new(lock_id, door_id, key, IssuerKeys::single(issuer));
    let lock = Lock::open(&state_dir, config, clock).map_err(|e| {
        format!(
            "cannot open the lock's state in {}: {e}",
            state_dir.display()
        )
    })?;

    println!("door lock-sim: a reference lock");
    println!("  door id      {door_id}");
    println!("  lock id      {lock_id}");
    println!(
        "  lock key     {}  (public; register the door with it)",
        b64(&public)
    );
    if generated_key {
        println!("  lock secret  {secret}  (pass it as --lock-key to run this lock again)");
    }
    println!(
        "  issuer key   {}  ({issuer_note})",
        b64(&issuer.to_sec1_compressed())
    );
    println!("  state        {}", state_dir.display());
    lock.set_battery_percent(args.battery);
    if let Some(firmware) = args.firmware {
        lock.set_firmware(firmware);
    }
    println!(
        "  health       battery {} %, firmware {}",
        lock.battery_percent(),
        lock.firmware()
    );

    // Whichever way it is served, the lock lives until a signal; the guard keeps the fake
    // BlueZ (and its dbus-daemon) alive until then and stops it cleanly after.
    let _served: Box<dyn std::any::Any> = if let Some(addr) = args.tcp {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        println!("  tcp          {}", listener.local_addr()?);
        let locks = Arc::new(HashMap::from([(lock_id.to_string(), lock)]));
        Box::new(tokio::spawn(crate::tcp_link::serve(listener, locks)))
    } else {
        serve_fake_bluez(&args.address, lock)?
    };
    println!("Ctrl-C stops it.");
    wait_for_signal().await;
    Ok(())
}

#[cfg(target_os = "linux")]
fn serve_fake_bluez(address: &str, lock: Lock) -> CliResult<Box<dyn std::any::Any>> {
    let peripheral = crate::gatt::peripheral(address, "door lock", lock);
    let bluez =
        door_ble_rig::FakeBluez::start(door_ble_rig::FakeBluezConfig::new().peripheral(peripheral))
            .map_err(|e| format!("cannot start the fake BlueZ: {e}"))?;
    println!("  peripheral   {address}");
    println!(
        "  bus          DBUS_SYSTEM_BUS_ADDRESS={}",
        bluez.bus_address()
    );
    Ok(Box::new(bluez))
}

#[cfg(not(target_os = "linux"))]
fn serve_fake_bluez(_address: &str, _lock: Lock) -> CliResult<Box<dyn std::any::Any>> {
    Err("--fake-bluez needs Linux (a fake BlueZ on D-Bus); use --tcp".into())
}

/// Ctrl-C, or SIGTERM from a supervisor or a test, ends the process through the normal
/// path, so destructors run (the fake BlueZ's dbus-daemon is not left behind).
pub async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
