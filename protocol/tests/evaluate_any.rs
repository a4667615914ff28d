//! `evaluate_any` (several grants for one door, one per key) against an oracle that steps
//! minute by minute over two weeks and asks `evaluate` about each schedule: the door is open
//! exactly when one of them is, `until` is the first instant none is and `next_allowed` the
//! first instant one is.
#![cfg(feature = "std")]

use std::sync::OnceLock;

use door_protocol::civil::{days_from_civil, SECONDS_PER_DAY};
use door_protocol::{evaluate, evaluate_any, Decision, Schedule, Weekdays, Window, ZoneRules};
use proptest::prelude::*;

const MINUTE: i64 = 60;
const DAY: i64 = SECONDS_PER_DAY;
/// How far the oracle steps: two weeks covers every weekly pattern twice over.
const HORIZON: i64 = 14 * DAY;

fn utc(y: i32, mo: u8, d: u8) -> i64 {
    days_from_civil(y, mo, d) * DAY
}

/// New York over 2026 and the start of 2027, from the IANA database.
fn new_york() -> &'static ZoneRules {
    static RULES: OnceLock<ZoneRules> = OnceLock::new();
    RULES.get_or_init(|| {
        ZoneRules::from_iana("America/New_York", utc(2025, 12, 1), utc(2027, 3, 1)).unwrap()
    })
}

/// India: a fixed offset that is not whole hours.
fn fixed() -> ZoneRules {
    ZoneRules::fixed(5 * 3600 + 1800)
}

/// Half-hour edges, so that windows of different grants touch and overlap often.
fn window() -> impl Strategy<Value = Window> {
    (1u8..=0x7f, 0u16..48, 1u16..=48)
        .prop_filter("a window is not empty", |(_, s, e)| s != e)
        .prop_map(|(days, s, e)| Window {
            days: Weekdays(days),
            start_minute: s * 30,
            end_minute: e * 30,
        })
}

/// A schedule with 0-3 windows and an optional validity range around `t` (minute-aligned, so
/// every change happens on a minute the oracle looks at).
fn schedule(t: i64) -> impl Strategy<Value = Schedule> {
    (
        prop::collection::vec(window(), 0..=3),
        prop::option::of(-3 * 24 * 60..8 * 24 * 60i64),
        prop::option::of(1..10 * 24 * 60i64),
    )
        .prop_map(move |(windows, from, length)| {
            let not_before = from.map(|m| t + m * MINUTE);
            let not_after = length.map(|m| not_before.unwrap_or(t - 2 * DAY) + m * MINUTE);
            Schedule {
                windows,
                not_before,
                not_after,
            }
        })
}

/// A probe instant in 2026, often in the fortnight around a DST change, on a whole minute.
fn instant() -> impl Strategy<Value = i64> {
    let minutes = |from: i64, to: i64| (from / MINUTE..to / MINUTE).prop_map(|m| m * MINUTE);
    prop_oneof![
        minutes(utc(2026, 1, 1), utc(2026, 12, 15)),
        minutes(utc(2026, 3, 1), utc(2026, 3, 10)),
        minutes(utc(2026, 10, 24), utc(2026, 11, 2)),
    ]
}

fn case() -> impl Strategy<Value = (bool, Vec<Schedule>, i64)> {
    (any::<bool>(), instant()).prop_flat_map(|(dst, t)| {
        (
            Just(dst),
            prop::collection::vec(schedule(t), 1..=3),
            Just(t),
        )
    })
}

fn open(schedules: &[Schedule], zone: &ZoneRules, t: i64) -> bool {
    schedules.iter().any(|s| evaluate(s, zone, t).is_allowed())
}

/// The first instant after `t`, on a minute, within the horizon, at which `open` is `want`.
fn first(schedules: &[Schedule], zone: &ZoneRules, t: i64, want: bool) -> Option<i64> {
    (1..=HORIZON / MINUTE)
        .map(|k| t + k * MINUTE)
        .find(|&x| open(schedules, zone, x) == want)
}

/// An instant the oracle did not find within the horizon must lie beyond it, or never come.
fn beyond_horizon(t: i64, reported: Option<i64>) -> bool {
    reported.is_none_or(|r| r > t + HORIZON)
}

fn check(schedules: &[Schedule], zone: &ZoneRules, t: i64) -> Result<(), TestCaseError> {
    let decision = evaluate_any(schedules, zone, t);
    if let [only] = schedules {
        prop_assert_eq!(decision, evaluate(only, zone, t));
    }
    let now = open(schedules, zone, t);
    prop_assert_eq!(decision.is_allowed(), now, "{:?}", decision);
    match decision {
        Decision::Allowed { until } => match first(schedules, zone, t, false) {
            Some(close) => prop_assert_eq!(until, Some(close)),
            None => prop_assert!(beyond_horizon(t, until), "until {:?}", until),
        },
        Decision::OutOfSchedule { next_allowed } => {
            // Some grant is merely out of its windows, or none ever opens again.
            match first(schedules, zone, t, true) {
                Some(opening) => prop_assert_eq!(next_allowed, Some(opening)),
                None => prop_assert!(beyond_horizon(t, next_allowed)),
            }
        }
        Decision::NotYetValid { from } => {
            // Every grant is not yet valid or expired, and `from` is the earliest start.
            let mut earliest = None::<i64>;
            for s in schedules {
                match evaluate(s, zone, t) {
                    Decision::NotYetValid { from } => {
                        earliest = Some(earliest.map_or(from, |e| e.min(from)));
                    }
                    Decision::Expired { .. } => {}
                    other => prop_assert!(false, "a grant is {:?}", other),
                }
            }
            prop_assert_eq!(Some(from), earliest);
            if let Some(opening) = first(schedules, zone, t, true) {
                prop_assert!(opening >= from);
            }
        }
        Decision::Expired { at } => {
            let mut latest = None::<i64>;
            for s in schedules {
                match evaluate(s, zone, t) {
                    Decision::Expired { at } => latest = latest.max(Some(at)),
                    other => prop_assert!(false, "a grant is {:?}", other),
                }
            }
            prop_assert_eq!(Some(at), latest);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn evaluate_any_matches_a_minute_by_minute_oracle((dst, schedules, t) in case()) {
        let zone = if dst { new_york().clone() } else { fixed() };
        check(&schedules, &zone, t)?;
    }
}

fn every_day(start: u16, end: u16) -> Schedule {
    Schedule {
        windows: vec![Window {
            days: Weekdays::ALL,
            start_minute: start,
            end_minute: end,
        }],
        not_before: None,
        not_after: None,
    }
}

#[test]
fn grants_that_take_turns_forever_never_close() {
    // 00:00-12:30 under one key, 12:00-24:00 under another: open around the clock, which no
    // single grant says.
    let zone = new_york();
    let t = utc(2026, 3, 2) + 15 * 3600;
    let grants = [every_day(0, 750), every_day(720, 1440)];
    assert_eq!(
        evaluate_any(&grants, zone, t),
        Decision::Allowed { until: None }
    );
    // Until one of them ends: then the other's next close.
    let ending = utc(2026, 3, 20) + 5 * 3600 + 7 * 60;
    let grants = [
        Schedule {
            not_after: Some(ending),
            ..every_day(0, 750)
        },
        every_day(720, 1440),
    ];
    let close = evaluate_any(&grants, zone, t);
    assert_eq!(
        close,
        Decision::Allowed {
            until: Some(ending)
        }
    );
    check(&grants, zone, t).unwrap();
    check(&grants, zone, ending - 3 * DAY).unwrap();
}
