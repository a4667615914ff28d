//! How the CLI says things: times in a zone, a door's state, durations, and the few styles.
//! Colour goes through anstream, which drops it for NO_COLOR, pipes and dumb terminals.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anstyle::{AnsiColor, Style};
use chrono::{DateTime, TimeZone};
use door_core::AccessDecision;

pub const OK: Style = AnsiColor::Green.on_default().bold();
pub const FAIL: Style = AnsiColor::Red.on_default().bold();
pub const WARN: Style = AnsiColor::Yellow.on_default().bold();
pub const BOLD: Style = Style::new().bold();
pub const DIM: Style = Style::new().dimmed();

/// `text` in `style` (the escapes are removed on output where colour is off).
pub fn paint(style: Style, text: impl std::fmt::Display) -> String {
    format!("{style}{text}{style:#}")
}

pub fn local<Tz: TimeZone>(zone: &Tz, t: SystemTime) -> DateTime<Tz> {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    zone.timestamp_opt(secs, 0)
        .single()
        .unwrap_or_else(|| zone.timestamp_opt(0, 0).unwrap())
}

/// `t` as a person near `now` says it: "17:00" later today, "Wed 09:00" within the week,
/// "Mon Dec 7 09:00" beyond.
pub fn when<Tz: TimeZone>(zone: &Tz, now: SystemTime, t: SystemTime) -> String
where
    Tz::Offset: std::fmt::Display,
{
    let (n, l) = (local(zone, now), local(zone, t));
    let days = (l.date_naive() - n.date_naive()).num_days();
    if days == 0 {
        l.format("%H:%M").to_string()
    } else if (-6..=6).contains(&days) {
        l.format("%a %H:%M").to_string()
    } else {
        l.format("%a %b %-d %H:%M").to_string()
    }
}

/// A door's state for a list: "open", "open until 17:00", "Out of Schedule — opens Wed 09:00".
pub fn access<Tz: TimeZone>(zone: &Tz, now: SystemTime, d: &AccessDecision) -> String
where
    Tz::Offset: std::fmt::Display,
{
    match d {
        AccessDecision::Allowed { until: None } => "open".into(),
        AccessDecision::Allowed { until: Some(t) } => format!("open until {}", when(zone, now, *t)),
        AccessDecision::OutOfSchedule { next_allowed } => out_of_schedule(zone, now, *next_allowed),
        AccessDecision::NotYetValid { from } => {
            format!("not yet — from {}", when(zone, now, *from))
        }
        AccessDecision::Expired { at } => format!("ended {}", when(zone, now, *at)),
    }
}

pub fn out_of_schedule<Tz: TimeZone>(zone: &Tz, now: SystemTime, next: Option<SystemTime>) -> String
where
    Tz::Offset: std::fmt::Display,
{
    match next {
        Some(t) => format!("Out of Schedule — opens {}", when(zone, now, t)),
        None => "Out of Schedule — does not open again".into(),
    }
}

/// A duration at a precision a person reads: "0.21 ms", "4.1 ms", "63 ms", "1.38 s".
pub fn duration(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 1.0 {
        format!("{ms:.2} ms")
    } else if ms < 10.0 {
        format!("{ms:.1} ms")
    } else if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{:.2} s", ms / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::America::New_York;

    fn t(secs: i64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs as u64)
    }

    /// Tuesday 2026-11-24 23:30 in New York.
    const TUE_2330: i64 = 1_795_581_000;

    #[test]
    fn times_read_as_a_person_says_them() {
        let now = t(TUE_2330);
        assert_eq!(when(&New_York, now, t(TUE_2330 + 1800)), "Wed 00:00");
        assert_eq!(when(&New_York, now, t(TUE_2330 - 3600)), "22:30");
        assert_eq!(
            when(&New_York, now, t(TUE_2330 + 9 * 3600 + 1800)),
            "Wed 09:00"
        );
        assert_eq!(
            when(&New_York, now, t(TUE_2330 + 8 * 86400)),
            "Wed Dec 2 23:30"
        );
        assert_eq!(
            access(
                &New_York,
                now,
                &AccessDecision::OutOfSchedule {
                    next_allowed: Some(t(TUE_2330 + 9 * 3600 + 1800))
                }
            ),
            "Out of Schedule — opens Wed 09:00"
        );
        assert_eq!(
            access(&New_York, now, &AccessDecision::Allowed { until: None }),
            "open"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(duration(Duration::from_micros(210)), "0.21 ms");
        assert_eq!(duration(Duration::from_micros(4100)), "4.1 ms");
        assert_eq!(duration(Duration::from_millis(63)), "63 ms");
        assert_eq!(duration(Duration::from_millis(1380)), "1.38 s");
    }
}
