//! The Key Schedules of "1800 Main St" (the Latch/DOOR seeds), decided right now in the
//! property's time zone: what a resident's app shows next to each door.
//!
//! cargo run --example schedules [-- IANA_ZONE]

use std::time::{SystemTime, UNIX_EPOCH};

use door_core::access::ZonedSchedule;
use door_protocol::{Decision, Schedule, Weekdays, Window};

fn window(days: Weekdays, from_h: u16, to_h: u16) -> Window {
    Window {
        days,
        start_minute: from_h * 60,
        end_minute: to_h * 60,
    }
}

fn main() {
    let zone = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "America/New_York".to_owned());
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64;
    let doors = [
        ("Lobby (Residences, 24/7)", Schedule::always()),
        (
            "Gym (Mon-Fri 6 AM-10 PM)",
            weekly(vec![window(Weekdays::MON_FRI, 6, 22)]),
        ),
        (
            "Pool (Mon-Fri 9 AM-5 PM)",
            weekly(vec![window(Weekdays::MON_FRI, 9, 17)]),
        ),
        (
            "Service door (Vendors, 8 AM-6 PM)",
            weekly(vec![window(Weekdays::ALL, 8, 18)]),
        ),
        (
            "Roof deck (nightly 10 PM-2 AM)",
            weekly(vec![window(Weekdays::ALL, 22, 2)]),
        ),
    ];
    println!("1800 Main St ({zone}), {}", fmt(now, &zone));
    for (name, schedule) in doors {
        let zoned = match ZonedSchedule::new(schedule, &zone, now) {
            Ok(z) => z,
            Err(e) => {
                eprintln!("error: {e}");
                std::process::exit(2);
            }
        };
        let answer = match zoned.decision_at(now) {
            Decision::Allowed { until: Some(t) } => format!("open until {}", fmt(t, &zone)),
            Decision::Allowed { until: None } => "open".to_owned(),
            Decision::OutOfSchedule {
                next_allowed: Some(t),
            } => {
                format!("Out of Schedule, opens {}", fmt(t, &zone))
            }
            Decision::OutOfSchedule { next_allowed: None } => "Out of Schedule".to_owned(),
            Decision::NotYetValid { from } => format!("not yet valid, from {}", fmt(from, &zone)),
            Decision::Expired { at } => format!("expired at {}", fmt(at, &zone)),
        };
        println!("  {name:<36} {answer}");
    }
}

fn weekly(windows: Vec<Window>) -> Schedule {
    Schedule {
        windows,
        not_before: None,
        not_after: None,
    }
}

fn fmt(t: i64, zone: &str) -> String {
    let tz: chrono_tz::Tz = zone.parse().expect("zone accepted above");
    match chrono::DateTime::from_timestamp(t, 0) {
        Some(utc) => utc.with_timezone(&tz).format("%a %d %b %H:%M").to_string(),
        None => t.to_string(),
    }
}
