//! `door locks`: a manager's view of the property's locks, as DOOR OS shows it
//! (`GET /v1/properties/{id}/locks`): each lock's battery, firmware and clock as it last
//! reported them (signed by the lock, carried home by whichever phone synced it), the sync
//! iteration it has applied and whether it lacks access the server has, and when a phone last
//! brought its records in. The demo ends with the same view.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anstream::println;
use chrono::TimeZone;
use door_server::health::LockHealthJson;
use door_server::model::PropertyJson;
use serde::de::DeserializeOwned;

use crate::show::{self, paint, BOLD, DIM, WARN};
use crate::CliResult;

/// At or below this the battery line is a warning: time to send someone with batteries.
pub const LOW_BATTERY: u8 = 20;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The property's server, e.g. https://door.example.com (http:// for a local one).
    #[arg(long, env = "DOOR_SERVER", value_name = "URL")]
    pub server: String,
    /// The property's id (32 hex digits).
    #[arg(long, env = "DOOR_PROPERTY", value_name = "ID")]
    pub property: String,
    /// A manager key of the property (DOOR OS's); prefer the environment variable.
    #[arg(
        long,
        env = "DOOR_MANAGER_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub manager_key: String,
    /// Every door, also those without a lock that reports (online doors, locks never synced).
    #[arg(long)]
    pub all: bool,
}

/// The property's time zone and its locks, as its manager sees them.
pub async fn fetch(
    server: &str,
    property: &str,
    manager_key: &str,
) -> CliResult<(chrono_tz::Tz, Vec<LockHealthJson>)> {
    // One process-wide TLS provider (door-core's client installs the same one).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()?;
    let base = format!("{}/v1/properties/{property}", server.trim_end_matches('/'));
    let info: PropertyJson = get(&http, &base, manager_key).await?;
    let zone: chrono_tz::Tz = info
        .time_zone
        .parse()
        .map_err(|_| format!("the server's time zone {:?} is unknown", info.time_zone))?;
    let locks = get(&http, &format!("{base}/locks"), manager_key).await?;
    Ok((zone, locks))
}

/// A manager's GET, its answer read as `T` or as a sentence saying why not.
async fn get<T: DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
    manager_key: &str,
) -> CliResult<T> {
    let response = http.get(url).bearer_auth(manager_key).send().await?;
    let status = response.status();
    if status.is_success() {
        return Ok(response.json().await?);
    }
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    let why = body["message"].as_str().unwrap_or("no reason given");
    Err(match status.as_u16() {
        401 => format!("the manager key was refused ({why})"),
        404 => format!("no such property on this server ({why})"),
        _ => format!("the server answered {status}: {why}"),
    }
    .into())
}

pub async fn run(args: Args) -> CliResult<()> {
    let (zone, locks) = fetch(&args.server, &args.property, &args.manager_key).await?;
    let now = SystemTime::now();
    let shown: Vec<&LockHealthJson> = locks
        .iter()
        .filter(|l| args.all || l.health.is_some())
        .collect();
    let width = shown.iter().map(|l| l.door_name.len()).max().unwrap_or(0);
    for l in &shown {
        println!(
            "{}  {}",
            paint(BOLD, format!("{:width$}", l.door_name)),
            line(&zone, now, l)
        );
    }
    let silent = locks.len() - locks.iter().filter(|l| l.health.is_some()).count();
    if !args.all && silent > 0 {
        println!(
            "{}",
            paint(
                DIM,
                format!("{silent} more doors have no report yet (--all lists them)")
            )
        );
    }
    Ok(())
}

fn at(t: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(t.max(0) as u64)
}

/// One lock's health in a line: battery, firmware, clock, sync, when it reported and when a
/// phone last reached it. Warnings (low battery, missing access) in the warning colour.
pub fn line<Tz: TimeZone>(zone: &Tz, now: SystemTime, l: &LockHealthJson) -> String
where
    Tz::Offset: std::fmt::Display,
{
    let reached = match l.last_upload_at {
        Some(t) => format!("a phone last reached it {}", show::when(zone, now, at(t))),
        None => "no phone has reached it".into(),
    };
    let Some(h) = &l.health else {
        return format!("no report yet; {reached}");
    };
    let battery = format!("battery {} %", h.battery_percent);
    let battery = match h.battery_percent <= LOW_BATTERY {
        true => paint(WARN, format!("{battery}, replace soon")),
        false => battery,
    };
    let clock = match h.clock_offset {
        None => "clock not yet set by signed time".to_string(),
        Some(0) => "clock on time".to_string(),
        Some(o) if o > 0 => format!("clock {o} s ahead"),
        Some(o) => format!("clock {} s behind", o.unsigned_abs()),
    };
    let sync = match h.up_to_date {
        true => format!("iteration {}, all access", h.applied_iteration),
        false => paint(
            WARN,
            format!(
                "iteration {}, lacks access of iteration {}",
                h.applied_iteration, l.latest_iteration
            ),
        ),
    };
    format!(
        "{battery}, {}, {clock}, {sync}; reported {}, {reached}",
        h.firmware,
        show::when(zone, now, at(h.reported_at))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use door_server::health::ReportedHealthJson;

    const T: i64 = 1_795_000_000;

    fn lock(health: Option<ReportedHealthJson>, last_upload_at: Option<i64>) -> LockHealthJson {
        LockHealthJson {
            door_id: "d".into(),
            door_name: "Lobby".into(),
            lock_id: "l".into(),
            latest_iteration: 4,
            last_upload_at,
            health,
        }
    }

    #[test]
    fn a_line_says_what_a_manager_acts_on() {
        let zone = chrono_tz::UTC;
        let now = at(T);
        let reported = ReportedHealthJson {
            reported_at: T - 3600,
            battery_percent: 12,
            firmware: "door-lock 0.1.0".into(),
            clock_offset: Some(-40),
            applied_iteration: 3,
            up_to_date: false,
        };
        let text = line(&zone, now, &lock(Some(reported.clone()), Some(T - 3600)));
        for part in [
            "battery 12 %, replace soon",
            "door-lock 0.1.0",
            "clock 40 s behind",
            "iteration 3, lacks access of iteration 4",
        ] {
            assert!(text.contains(part), "{part:?} in {text:?}");
        }
        let fine = ReportedHealthJson {
            battery_percent: 80,
            clock_offset: Some(5),
            up_to_date: true,
            ..reported
        };
        let text = line(&zone, now, &lock(Some(fine), Some(T)));
        assert!(text.starts_with(
            "battery 80 %, door-lock 0.1.0, clock 5 s ahead, iteration 3, all access"
        ));
        assert!(!text.contains("replace"));
        assert_eq!(
            line(&zone, now, &lock(None, None)),
            "no report yet; no phone has reached it"
        );
    }
}
