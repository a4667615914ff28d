//! Key Schedules between their JSON form and door-protocol's, with errors that name the field.

use door_protocol::{Schedule, Weekdays, Window};

use crate::error::ApiError;
use crate::model::{ScheduleJson, WindowJson};

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Parses and validates; `field` is the path of the schedule in the request.
pub fn parse(json: &ScheduleJson, field: &str) -> Result<Schedule, ApiError> {
    let mut windows = Vec::with_capacity(json.windows.len());
    for (i, w) in json.windows.iter().enumerate() {
        let at = format!("{field}.windows[{i}]");
        let mut days = 0u8;
        for d in &w.days {
            let bit = DAY_NAMES.iter().position(|n| n == d).ok_or_else(|| {
                ApiError::invalid(
                    format!("{at}.days"),
                    format!("{d:?} is not one of {DAY_NAMES:?}"),
                )
            })?;
            days |= 1 << bit;
        }
        if days == 0 {
            return Err(ApiError::invalid(format!("{at}.days"), "names no weekday"));
        }
        let start = minutes(&w.start, false).ok_or_else(|| {
            ApiError::invalid(
                format!("{at}.start"),
                "must be HH:MM between 00:00 and 23:59",
            )
        })?;
        let end = minutes(&w.end, true).ok_or_else(|| {
            ApiError::invalid(format!("{at}.end"), "must be HH:MM between 00:01 and 24:00")
        })?;
        if start == end {
            return Err(ApiError::invalid(
                format!("{at}.end"),
                "equals start; a whole day is 00:00-24:00",
            ));
        }
        windows.push(Window {
            days: Weekdays(days),
            start_minute: start,
            end_minute: end,
        });
    }
    if let (Some(a), Some(b)) = (json.not_before, json.not_after) {
        if b <= a {
            return Err(ApiError::invalid(
                format!("{field}.not_after"),
                "must be after not_before",
            ));
        }
    }
    let schedule = Schedule {
        windows,
        not_before: json.not_before,
        not_after: json.not_after,
    };
    schedule
        .validate()
        .map_err(|e| ApiError::invalid(field.to_owned(), format!("not a valid schedule: {e:?}")))?;
    Ok(schedule)
}

pub fn to_json(s: &Schedule) -> ScheduleJson {
    ScheduleJson {
        windows: s
            .windows
            .iter()
            .map(|w| WindowJson {
                days: (0..7)
                    .filter(|d| w.days.contains(*d))
                    .map(|d| DAY_NAMES[d as usize].to_owned())
                    .collect(),
                start: hhmm(w.start_minute),
                end: hhmm(w.end_minute),
            })
            .collect(),
        not_before: s.not_before,
        not_after: s.not_after,
    }
}

/// The schedule a person gets for a door that several keys give: every window of each, and
/// the widest validity. A key with no schedule makes the door 24/7.
pub fn union<'a>(schedules: impl IntoIterator<Item = &'a Schedule>) -> Schedule {
    let mut out = Schedule {
        windows: Vec::new(),
        not_before: None,
        not_after: None,
    };
    let mut first = true;
    for s in schedules {
        for w in &s.windows {
            if !out.windows.contains(w) {
                out.windows.push(*w);
            }
        }
        if first {
            out.not_before = s.not_before;
            out.not_after = s.not_after;
            first = false;
        } else {
            out.not_before = out.not_before.zip(s.not_before).map(|(a, b)| a.min(b));
            out.not_after = out.not_after.zip(s.not_after).map(|(a, b)| a.max(b));
        }
    }
    out
}

fn minutes(s: &str, allow_24: bool) -> Option<u16> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    let total = h * 60 + m;
    match (h, m) {
        (24, 0) if allow_24 => Some(1440),
        (0..=23, 0..=59) if allow_24 && total == 0 => None,
        (0..=23, 0..=59) => Some(total),
        _ => None,
    }
}

fn hhmm(minute: u16) -> String {
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(days: &[&str], start: &str, end: &str) -> WindowJson {
        WindowJson {
            days: days.iter().map(|d| d.to_string()).collect(),
            start: start.into(),
            end: end.into(),
        }
    }

    #[test]
    fn round_trips() {
        let json = ScheduleJson {
            windows: vec![
                w(&["mon", "fri"], "06:00", "22:00"),
                w(&["sat"], "22:00", "02:00"),
            ],
            not_before: Some(10),
            not_after: Some(20),
        };
        assert_eq!(to_json(&parse(&json, "s").unwrap()), json);
        let all_day = ScheduleJson {
            windows: vec![w(&["sun"], "00:00", "24:00")],
            not_before: None,
            not_after: None,
        };
        assert_eq!(to_json(&parse(&all_day, "s").unwrap()), all_day);
    }

    #[test]
    fn errors_name_the_field() {
        let bad = |windows, field: &str| {
            let e = parse(
                &ScheduleJson {
                    windows,
                    not_before: None,
                    not_after: None,
                },
                "doors[1].schedule",
            )
            .unwrap_err();
            assert_eq!(e.body.field.as_deref(), Some(field), "{:?}", e.body);
        };
        bad(
            vec![w(&["funday"], "06:00", "07:00")],
            "doors[1].schedule.windows[0].days",
        );
        bad(
            vec![w(&[], "06:00", "07:00")],
            "doors[1].schedule.windows[0].days",
        );
        bad(
            vec![w(&["mon"], "24:00", "07:00")],
            "doors[1].schedule.windows[0].start",
        );
        bad(
            vec![w(&["mon"], "6", "07:00")],
            "doors[1].schedule.windows[0].start",
        );
        bad(
            vec![w(&["mon"], "06:00", "00:00")],
            "doors[1].schedule.windows[0].end",
        );
        bad(
            vec![w(&["mon"], "06:00", "06:00")],
            "doors[1].schedule.windows[0].end",
        );
        let e = parse(
            &ScheduleJson {
                windows: vec![],
                not_before: Some(5),
                not_after: Some(5),
            },
            "s",
        )
        .unwrap_err();
        assert_eq!(e.body.field.as_deref(), Some("s.not_after"));
    }

    #[test]
    fn union_takes_every_window_and_the_widest_range() {
        let a = parse(
            &ScheduleJson {
                windows: vec![w(&["mon"], "06:00", "08:00")],
                not_before: Some(5),
                not_after: Some(50),
            },
            "a",
        )
        .unwrap();
        let b = parse(
            &ScheduleJson {
                windows: vec![w(&["tue"], "06:00", "08:00")],
                not_before: Some(1),
                not_after: None,
            },
            "b",
        )
        .unwrap();
        let u = union([&a, &b]);
        assert_eq!(u.windows.len(), 2);
        assert_eq!((u.not_before, u.not_after), (Some(1), None));
    }
}
