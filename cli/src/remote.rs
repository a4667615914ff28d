//! The desktop client against a real server: `door login`, `doors`, `unlock`, `invite`,
//! `guests`, `revoke`, `logout`. door-core does the work exactly as in an app: the session
//! and offline cache live in the data directory, and unlocking goes through btleplug. The
//! device key is a file beside them (see signer.rs for why not the OS credential store).

use std::collections::HashMap;
use std::io::BufRead;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anstream::{eprintln, println};
use chrono::Local;
use door_core::{ClientConfig, Door, DoorClient, DoorError, Guest, UnlockDenial};
use serde::{Deserialize, Serialize};

use crate::show::{self, paint, BOLD, DIM, OK, WARN};
use crate::signer::FileSigner;
use crate::CliResult;

/// Where the client keeps its state; every command that talks to the server takes it.
#[derive(Debug, clap::Args)]
pub struct DirArg {
    /// Where the client keeps its session, offline cache, device key and settings
    /// [default: the OS data directory, e.g. ~/.local/share/door-cli].
    #[arg(long, env = "DOOR_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("secret").required(true).args(["password_stdin", "password"])))]
pub struct LoginArgs {
    #[command(flatten)]
    pub dir: DirArg,
    /// The property's server, e.g. https://door.example.com (http:// for a local one).
    #[arg(long, env = "DOOR_SERVER", value_name = "URL")]
    pub server: String,
    /// The email you sign in with.
    #[arg(long, value_name = "EMAIL")]
    pub email: String,
    /// Read the password from the first line of standard input.
    #[arg(long, conflicts_with = "password")]
    pub password_stdin: bool,
    /// The password; prefer --password-stdin (command lines and environments can leak).
    #[arg(long, env = "DOOR_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct DoorsArgs {
    #[command(flatten)]
    pub dir: DirArg,
    /// Show your doorcode for each door whose keypad takes one.
    #[arg(long)]
    pub codes: bool,
}

#[derive(Debug, clap::Args)]
pub struct UnlockArgs {
    #[command(flatten)]
    pub dir: DirArg,
    /// The door's name (as `door doors` lists it; any case) or id.
    pub door: String,
    /// How long to look for the lock and wait for its answer, in milliseconds.
    #[arg(long, default_value_t = 10_000, value_name = "MS")]
    pub timeout_ms: u64,
}

#[derive(Debug, clap::Args)]
pub struct InviteArgs {
    #[command(flatten)]
    pub dir: DirArg,
    /// A door the guest opens with the app (name or id); repeat for more doors. The server
    /// makes one guest key per door.
    #[arg(
        long = "door",
        value_name = "DOOR",
        required_unless_present = "doorcodes"
    )]
    pub doors: Vec<String>,
    /// A keypad door the guest opens with a temporary doorcode, for a guest without the app
    /// (name or id); repeat for more doors. A door also given with --door gets both.
    #[arg(long = "doorcode", value_name = "DOOR")]
    pub doorcodes: Vec<String>,
    /// How to reach the guest (phone number or email), as the server records it.
    #[arg(long, value_name = "CONTACT")]
    pub contact: String,
    /// How long the invite lasts from now, in hours.
    #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u64).range(1..=24 * 366))]
    pub hours: u64,
}

#[derive(Debug, clap::Args)]
pub struct RevokeArgs {
    #[command(flatten)]
    pub dir: DirArg,
    /// The guest's id, as `door guests` lists it.
    pub guest_id: String,
}

/// What the CLI keeps beside door-core's own files: which server the session belongs to.
#[derive(Debug, Serialize, Deserialize)]
struct Settings {
    server_url: String,
}

/// The data directory: door-core's cache under `core/`, the CLI's settings beside it.
struct DataDir(PathBuf);

impl DataDir {
    /// The one given, or the OS's per-user data directory (`~/.local/share/door-cli` on
    /// Linux).
    fn new(arg: DirArg) -> CliResult<DataDir> {
        let dir = match arg.data_dir {
            Some(d) => d,
            None => dirs::data_dir()
                .ok_or("this system has no per-user data directory; pass --data-dir")?
                .join("door-cli"),
        };
        Ok(DataDir(dir))
    }

    fn settings_file(&self) -> PathBuf {
        self.0.join("settings.json")
    }

    fn core_dir(&self) -> PathBuf {
        self.0.join("core")
    }

    fn settings(&self) -> CliResult<Settings> {
        match std::fs::read(self.settings_file()) {
            Ok(bytes) => Ok(serde_json::from_slice(&bytes).map_err(|e| {
                format!(
                    "{} is damaged ({e}); sign in again",
                    self.settings_file().display()
                )
            })?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(
                "nobody is signed in here: run `door login --server URL --email EMAIL` first"
                    .into(),
            ),
            Err(e) => Err(format!("cannot read {}: {e}", self.settings_file().display()).into()),
        }
    }

    fn save(&self, settings: &Settings) -> CliResult<()> {
        std::fs::write(self.settings_file(), serde_json::to_vec_pretty(settings)?)?;
        Ok(())
    }
}

/// A client on the data directory, signed in or not.
struct Session {
    client: Arc<DoorClient>,
    server_url: String,
}

impl Session {
    fn open(dir: &DataDir, server_url: String, signer: FileSigner) -> CliResult<Session> {
        let core = dir.core_dir();
        std::fs::create_dir_all(&core)
            .map_err(|e| format!("cannot create {}: {e}", core.display()))?;
        let client = DoorClient::new(
            ClientConfig {
                server_url: server_url.clone(),
                data_dir: core.to_string_lossy().into_owned(),
                request_timeout_ms: 15_000,
            },
            Some(Arc::new(signer)),
            None,
            // btleplug on this machine's Bluetooth adapter.
            None,
        )
        .map_err(|e| explain(&e, &server_url, &HashMap::new()))?;
        Ok(Session { client, server_url })
    }

    fn resume(dir: &DataDir) -> CliResult<Session> {
        let settings = dir.settings()?;
        let signer = FileSigner::open(&FileSigner::path_in(&dir.0))
            .map_err(|e| explain(&e, &settings.server_url, &HashMap::new()))?;
        Session::open(dir, settings.server_url, signer)
    }

    fn fail(&self, e: DoorError) -> Box<dyn std::error::Error + Send + Sync> {
        let names = self
            .client
            .doors()
            .map(|d| d.into_iter().map(|d| (d.id, d.name)).collect())
            .unwrap_or_default();
        explain(&e, &self.server_url, &names).into()
    }

    /// The doors, fresh from the server when it answers, else from the offline cache.
    async fn doors(&self) -> CliResult<Vec<Door>> {
        match self.client.refresh().await {
            Ok(doors) => Ok(doors),
            Err(DoorError::Offline { reason }) => {
                eprintln!(
                    "{} cannot reach the server at {} ({reason}); these are the doors cached \
                     on this computer",
                    paint(WARN, "offline:"),
                    self.server_url
                );
                self.client.doors().map_err(|e| self.fail(e))
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    /// The door a person named, by id or by name in any case.
    fn find(&self, doors: &[Door], wanted: &str) -> CliResult<Door> {
        doors
            .iter()
            .find(|d| d.id == wanted)
            .or_else(|| doors.iter().find(|d| d.name.eq_ignore_ascii_case(wanted)))
            .cloned()
            .ok_or_else(|| {
                format!(
                    "no door {wanted:?} among your {} doors (see `door doors`)",
                    doors.len()
                )
                .into()
            })
    }
}

pub async fn login(args: LoginArgs) -> CliResult<()> {
    let dir = &DataDir::new(args.dir)?;
    // clap requires one of the two.
    let password = match args.password {
        Some(p) if !args.password_stdin => p,
        _ => {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    let server_url = args.server.trim_end_matches('/').to_owned();
    // Each sign-in starts afresh: the previous session ends (best effort: it may have
    // expired, or its server be gone) and a new device key is made, so one key never
    // belongs to two people.
    if let Ok(previous) = Session::resume(dir) {
        let _ = previous.client.sign_out().await;
        let _ = std::fs::remove_file(dir.settings_file());
    }
    std::fs::create_dir_all(&dir.0)
        .map_err(|e| format!("cannot create {}: {e}", dir.0.display()))?;
    let signer = FileSigner::create(&FileSigner::path_in(&dir.0))
        .map_err(|e| explain(&e, &server_url, &HashMap::new()))?;
    let session = Session::open(dir, server_url.clone(), signer)?;
    let me = session
        .client
        .sign_in(args.email, password)
        .await
        .map_err(|e| session.fail(e))?;
    dir.save(&Settings { server_url })?;
    let doors = session.client.doors().map_err(|e| session.fail(e))?;
    println!(
        "{} as {} ({}) at {}; {} doors. This computer's device key is registered.",
        paint(OK, "Signed in"),
        paint(BOLD, &me.name),
        me.role,
        me.property_name,
        doors.len()
    );
    Ok(())
}

pub async fn doors(args: DoorsArgs) -> CliResult<()> {
    let dir = &DataDir::new(args.dir)?;
    let session = Session::resume(dir)?;
    let doors = session.doors().await?;
    if doors.is_empty() {
        println!("No doors.");
        return Ok(());
    }
    let now = SystemTime::now();
    let mut rows = Vec::new();
    for d in &doors {
        let mut state = show::access(&Local, now, &d.access);
        if args.codes && d.has_doorcode {
            let code = session
                .client
                .doorcode(d.id.clone())
                .map_err(|e| session.fail(e))?;
            if let Some(code) = code {
                state.push_str(&format!(" · doorcode {code}"));
            }
        }
        rows.push((d, state));
    }
    let name_width = rows.iter().map(|(d, _)| d.name.chars().count()).max();
    let state_width = rows.iter().map(|(_, s)| s.chars().count()).max();
    let (name_width, state_width) = (name_width.unwrap_or(0), state_width.unwrap_or(0));
    for (d, state) in rows {
        println!(
            "{:<name_width$}  {state:<state_width$}  {}",
            d.name,
            paint(DIM, &d.id)
        );
    }
    Ok(())
}

pub async fn unlock(args: UnlockArgs) -> CliResult<()> {
    let dir = &DataDir::new(args.dir)?;
    let session = Session::resume(dir)?;
    // The cache answers at once; the door list does not need the network to unlock.
    let doors = session.client.doors().map_err(|e| session.fail(e))?;
    let door = session.find(&doors, &args.door)?;
    let started = Instant::now();
    let receipt = session
        .client
        .unlock(door.id.clone(), args.timeout_ms, None)
        .await
        .map_err(|e| format!("{}: {}", door.name, session.fail(e)))?;
    let lock_time = show::local(&Local, receipt.lock_time);
    println!(
        "{} {} in {} (the lock's clock: {}{})",
        paint(BOLD, &door.name),
        paint(OK, "opened"),
        show::duration(started.elapsed()),
        lock_time.format("%H:%M:%S"),
        if receipt.attempts > 1 {
            ", after one reconnection"
        } else {
            ""
        }
    );
    Ok(())
}

pub async fn sync(args: UnlockArgs) -> CliResult<()> {
    let dir = &DataDir::new(args.dir)?;
    let session = Session::resume(dir)?;
    // Fresh bundles first when the server is reachable; offline, the phone carries what it has.
    let doors = match session.client.refresh().await {
        Ok(d) => d,
        Err(_) => session.client.doors().map_err(|e| session.fail(e))?,
    };
    let door = session.find(&doors, &args.door)?;
    let started = Instant::now();
    session
        .client
        .sync_door(door.id.clone(), args.timeout_ms, None)
        .await
        .map_err(|e| format!("{}: {}", door.name, session.fail(e)))?;
    println!(
        "{} {} in {}",
        paint(BOLD, &door.name),
        paint(OK, "synced"),
        show::duration(started.elapsed())
    );
    Ok(())
}

pub async fn invite(args: InviteArgs) -> CliResult<()> {
    let dir = &DataDir::new(args.dir)?;
    let session = Session::resume(dir)?;
    let doors = session.doors().await?;
    let pick = |names: &[String]| {
        names
            .iter()
            .map(|d| session.find(&doors, d))
            .collect::<CliResult<Vec<Door>>>()
    };
    let (chosen, with_code) = (pick(&args.doors)?, pick(&args.doorcodes)?);
    let ids = |doors: &[Door]| doors.iter().map(|d| d.id.clone()).collect();
    let now = SystemTime::now();
    let until = now + Duration::from_secs(args.hours * 3600);
    let invite = session
        .client
        .invite_guest(ids(&chosen), args.contact, now, until, ids(&with_code))
        .await
        .map_err(|e| session.fail(e))?;
    let mut names: Vec<&str> = chosen.iter().map(|d| d.name.as_str()).collect();
    for d in &with_code {
        if !names.contains(&d.name.as_str()) {
            names.push(&d.name);
        }
    }
    println!(
        "{} {} to {} until {} (guest id {}).",
        paint(OK, "Invited"),
        invite.guest.contact,
        names.join(", "),
        show::when(&Local, now, until),
        invite.guest.id
    );
    println!("Send the guest this invite token; it is not shown again:");
    println!("  {}", invite.invite_token);
    if !invite.doorcodes.is_empty() {
        println!("And their doorcodes, for the keypads; they are not shown again:");
        for c in &invite.doorcodes {
            let door = with_code.iter().find(|d| d.id == c.door_id);
            println!(
                "  {}: {}",
                door.map_or(c.door_id.as_str(), |d| &d.name),
                c.code
            );
        }
    }
    Ok(())
}

pub async fn guests(args: DirArg) -> CliResult<()> {
    let dir = &DataDir::new(args)?;
    let session = Session::resume(dir)?;
    let list = session.client.guests().await.map_err(|e| session.fail(e))?;
    if list.is_empty() {
        println!("No guests.");
        return Ok(());
    }
    let names: HashMap<String, String> = session
        .client
        .doors()
        .map(|d| d.into_iter().map(|d| (d.id, d.name)).collect())
        .unwrap_or_default();
    let now = SystemTime::now();
    for g in &list {
        println!("{}", guest_line(g, &names, now));
    }
    Ok(())
}

fn guest_line(g: &Guest, names: &HashMap<String, String>, now: SystemTime) -> String {
    let name = |id: &String| names.get(id).cloned().unwrap_or_else(|| id.clone());
    let mut doors: Vec<String> = g.door_ids.iter().map(name).collect();
    doors.extend(
        g.doorcode_door_ids
            .iter()
            .map(|id| format!("{} (doorcode)", name(id))),
    );
    doors.sort();
    let status = if g.revoked {
        "revoked"
    } else if g.until <= now {
        "ended"
    } else if g.redeemed {
        "redeemed"
    } else {
        "not yet redeemed"
    };
    format!(
        "{}  {}  {}  until {}  {}",
        g.id,
        g.contact,
        doors.join(", "),
        show::when(&Local, now, g.until),
        status
    )
}

pub async fn revoke(args: RevokeArgs) -> CliResult<()> {
    let dir = &DataDir::new(args.dir)?;
    let session = Session::resume(dir)?;
    let g = session
        .client
        .revoke_guest(args.guest_id)
        .await
        .map_err(|e| session.fail(e))?;
    println!(
        "{} the invite of {} ({}): their session ends at once.",
        paint(OK, "Revoked"),
        g.contact,
        g.id
    );
    Ok(())
}

pub async fn logout(args: DirArg) -> CliResult<()> {
    let dir = &DataDir::new(args)?;
    let session = Session::resume(dir)?;
    session
        .client
        .sign_out()
        .await
        .map_err(|e| session.fail(e))?;
    std::fs::remove_file(dir.settings_file())?;
    std::fs::remove_file(FileSigner::path_in(&dir.0))?;
    println!("Signed out; this computer's cache and device key are forgotten.");
    Ok(())
}

/// A `DoorError` as a sentence a person can act on. `names` turns door ids into names.
pub fn explain(e: &DoorError, server_url: &str, names: &HashMap<String, String>) -> String {
    let name = |id: &String| names.get(id).cloned().unwrap_or_else(|| id.clone());
    match e {
        DoorError::InvalidInput { field, reason } => format!("{field}: {reason}"),
        DoorError::DeviceKey { reason } => {
            format!("this computer's device key could not be used: {reason}")
        }
        DoorError::OutOfSchedule { next_allowed } => {
            show::out_of_schedule(&Local, SystemTime::now(), *next_allowed)
        }
        DoorError::NotPermitted { reason } => format!("not permitted: {reason}"),
        DoorError::NotShareable { door_ids } => format!(
            "these doors may not be shared with guests: {}",
            door_ids.iter().map(name).collect::<Vec<_>>().join(", ")
        ),
        DoorError::DoorcodesNotShareable { door_ids } => format!(
            "no key you may share gives a doorcode at: {}",
            door_ids.iter().map(name).collect::<Vec<_>>().join(", ")
        ),
        DoorError::DeviceLimit { limit } => format!(
            "this person already has {limit} devices, the most allowed: remove one (in the app, \
             or ask the property's manager) and run `door doors` to register this one"
        ),
        DoorError::Offline { reason } => {
            format!("cannot reach the server at {server_url}: {reason}")
        }
        DoorError::SessionExpired => {
            "the session has ended (revoked, or too long unused): sign in again with `door login`"
                .into()
        }
        DoorError::NotSignedIn => {
            "nobody is signed in here: run `door login --server URL --email EMAIL` first".into()
        }
        DoorError::Timeout => format!("the server at {server_url} did not answer in time"),
        DoorError::Server { code, detail } => {
            format!("the server at {server_url} failed ({code}): {detail}")
        }
        DoorError::Storage { reason } => format!("the local cache failed: {reason}"),
        DoorError::Cancelled => "cancelled".into(),
        DoorError::Denied { reason } => format!(
            "the lock refused: {}",
            match reason {
                UnlockDenial::Revoked => "this credential has been revoked",
                UnlockDenial::Expired => "the credential has ended; run `door doors` to renew it",
                UnlockDenial::NotYetValid => "the credential has not begun yet",
                UnlockDenial::WrongDoor => "the credential is not for this door",
                UnlockDenial::BadCredential => "it does not accept this credential",
                UnlockDenial::ClockUntrusted =>
                    "its clock disagrees with this computer's; a Door Sync sets it right",
                UnlockDenial::Replayed => "it saw this request before; try again",
                UnlockDenial::Busy => "it is busy; try again in a moment",
            }
        ),
        DoorError::LockNotInRange => {
            "the lock is not in range (its advertisement was not seen)".into()
        }
        DoorError::BluetoothUnavailable => {
            "Bluetooth is not available here (no adapter, or BlueZ is not running)".into()
        }
        DoorError::BluetoothOff => "Bluetooth is off: turn it on and try again".into(),
        DoorError::BluetoothPermissionMissing => {
            "this user may not use Bluetooth (BlueZ's D-Bus policy refused)".into()
        }
        DoorError::LockConnectionFailed { reason } => {
            format!("the lock was seen but the connection failed ({reason}); try again")
        }
        DoorError::LockTimeout => "the lock did not answer in time".into(),
        DoorError::UnlockInProgress { door_id } => {
            format!("an unlock of {} is under way", name(door_id))
        }
        DoorError::LockNotGenuine => {
            "the lock could not prove it is the property's lock: do not trust it".into()
        }
        DoorError::LockProtocol { reason } => {
            format!("the exchange with the lock failed: {reason}")
        }
    }
}
