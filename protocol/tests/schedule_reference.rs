//! `evaluate` against a brute-force reference that steps minute by minute, reading the wall
//! clock from chrono-tz directly, over real zones with DST.
#![cfg(feature = "std")]

use chrono::{DateTime, Datelike, FixedOffset, TimeZone, Timelike};
use chrono_tz::Tz;
use door_protocol::civil::{days_from_civil, SECONDS_PER_DAY};
use door_protocol::{evaluate, Decision, Schedule, ScheduleError, Weekdays, Window, ZoneRules};
use proptest::prelude::*;

const ZONES: &[&str] = &[
    "America/New_York",
    "Europe/London",
    "Australia/Lord_Howe",
    "Pacific/Apia",
    "America/Sao_Paulo",
    "Asia/Kolkata",
    "Pacific/Chatham",
    "America/St_Johns",
    "UTC",
];

/// How far the reference looks ahead. Any weekly pattern changes state within a week of wall
/// time plus a DST jump, so every finite answer of `evaluate` falls inside it.
const HORIZON: i64 = 9 * SECONDS_PER_DAY;

/// The module docs' predicate, written out again from the wall clock chrono-tz gives.
fn reference_open<Z: TimeZone>(schedule: &Schedule, tz: &Z, t: i64) -> bool {
    let local = tz.from_utc_datetime(&DateTime::from_timestamp(t, 0).unwrap().naive_utc());
    let day = local.weekday().num_days_from_monday() as u8;
    let yesterday = (day + 6) % 7;
    let s = local.num_seconds_from_midnight();
    schedule.windows.iter().any(|w| {
        let (start, end) = (u32::from(w.start_minute) * 60, u32::from(w.end_minute) * 60);
        if w.end_minute > w.start_minute {
            w.days.contains(day) && start <= s && s < end
        } else {
            (w.days.contains(day) && s >= start) || (w.days.contains(yesterday) && s < end)
        }
    })
}

/// What the reference sees after `t`, stepping a minute at a time.
#[derive(Debug, PartialEq)]
enum Ahead {
    /// The predicate first changes at this instant.
    Flip(i64),
    /// `not_after` comes first.
    Expires(i64),
    /// Nothing happens within the horizon.
    Quiet,
}

fn reference(schedule: &Schedule, tz: Tz, t: i64) -> (Decision, Ahead) {
    if let Some(from) = schedule.not_before.filter(|&from| t < from) {
        return (Decision::NotYetValid { from }, Ahead::Quiet);
    }
    if let Some(at) = schedule.not_after.filter(|&at| t >= at) {
        return (Decision::Expired { at }, Ahead::Quiet);
    }
    let open = reference_open(schedule, &tz, t);
    let mut m = t + 60;
    let ahead = loop {
        if m > t + HORIZON {
            break Ahead::Quiet;
        }
        if let Some(at) = schedule.not_after.filter(|&at| m >= at) {
            break Ahead::Expires(at);
        }
        if reference_open(schedule, &tz, m) != open {
            break Ahead::Flip(m);
        }
        m += 60;
    };
    let decision = match (open, &ahead) {
        (true, Ahead::Flip(at) | Ahead::Expires(at)) => Decision::Allowed { until: Some(*at) },
        (true, Ahead::Quiet) => Decision::Allowed { until: None },
        (false, Ahead::Flip(at)) => Decision::OutOfSchedule {
            next_allowed: Some(*at),
        },
        (false, _) => Decision::OutOfSchedule { next_allowed: None },
    };
    (decision, ahead)
}

/// Local times at which the zones above change offset, and their neighbours: a window edge
/// there is where an evaluator can go wrong.
const CHANGE_MINUTES: &[u16] = &[0, 60, 90, 120, 150, 165, 180, 210, 225, 240, 1380, 1410];

fn minute() -> impl Strategy<Value = u16> {
    prop_oneof![
        0u16..1440,
        (0u16..48).prop_map(|h| h * 30),
        proptest::sample::select(CHANGE_MINUTES),
    ]
}

fn window() -> impl Strategy<Value = Window> {
    let days = prop_oneof![1u8..=0x7f, Just(Weekdays::ALL.0), Just(Weekdays::MON_FRI.0)];
    (days, minute(), minute().prop_map(|m| m + 1))
        .prop_filter("empty window", |&(_, start, end)| start != end)
        .prop_map(|(days, start_minute, end_minute)| Window {
            days: Weekdays(days),
            start_minute,
            end_minute: if end_minute == 1441 { 1440 } else { end_minute },
        })
        .prop_filter("empty window", |w| w.start_minute != w.end_minute)
}

#[derive(Debug, Clone)]
struct Case {
    zone: &'static str,
    schedule: Schedule,
    t: i64,
    rules_from: i64,
    rules_to: i64,
}

fn case() -> impl Strategy<Value = Case> {
    let first_minute = days_from_civil(2010, 1, 1) * 1440;
    let last_minute = days_from_civil(2030, 1, 1) * 1440;
    (
        proptest::sample::select(ZONES),
        proptest::collection::vec(window(), 0..4),
        first_minute..last_minute,
        any::<prop::sample::Index>(),
        -1440i64..1440,
        any::<bool>(),
        (
            proptest::option::weighted(0.2, -2000i64..2000),
            proptest::option::weighted(0.2, 1i64..10_000),
        ),
        (0i64..400, 0i64..400),
        any::<u16>(),
    )
        .prop_map(
            |(
                zone,
                mut windows,
                minute,
                pick,
                nudge,
                near_change,
                (nb, na),
                (back, forward),
                snap,
            )| {
                let mut t = minute * 60;
                if near_change {
                    // Most interesting cases sit within a day of a transition, with window edges
                    // at the wall times either side of it.
                    let year = ZoneRules::from_iana(
                        zone,
                        t - 183 * SECONDS_PER_DAY,
                        t + 183 * SECONDS_PER_DAY,
                    )
                    .unwrap();
                    if !year.transitions.is_empty() {
                        let i = pick.index(year.transitions.len());
                        let change = year.transitions[i];
                        let before = i
                            .checked_sub(1)
                            .map_or(year.initial_offset, |j| year.transitions[j].offset);
                        t = change.at + nudge * 60;
                        let [old, new] = [before, change.offset].map(|offset| {
                            ((change.at + i64::from(offset)).rem_euclid(SECONDS_PER_DAY) / 60)
                                as u16
                        });
                        for (k, w) in windows.iter_mut().enumerate() {
                            let (start, end) = match (snap >> (3 * k)) & 7 {
                                2 => (old, w.end_minute),
                                3 => (new, w.end_minute),
                                4 => (w.start_minute, old),
                                5 => (w.start_minute, new),
                                6 => (old, new),
                                7 => (new, old),
                                _ => (w.start_minute, w.end_minute),
                            };
                            let end = if end == 0 { 1440 } else { end };
                            if start != end {
                                (w.start_minute, w.end_minute) = (start, end);
                            }
                        }
                    }
                }
                Case {
                    zone,
                    schedule: Schedule {
                        windows,
                        not_before: nb.map(|m| t + m * 60),
                        not_after: na.map(|m| t + m * 60),
                    },
                    t,
                    rules_from: t - back * SECONDS_PER_DAY,
                    rules_to: t + HORIZON + forward * SECONDS_PER_DAY,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn evaluate_agrees_with_minute_stepping(case in case()) {
        let tz: Tz = case.zone.parse().unwrap();
        let rules = ZoneRules::from_iana(case.zone, case.rules_from, case.rules_to).unwrap();
        let got = evaluate(&case.schedule, &rules, case.t);
        let (want, ahead) = reference(&case.schedule, tz, case.t);
        if ahead == Ahead::Quiet {
            // The reference cannot see past its horizon: `evaluate` may name a later instant.
            let beyond = |at: Option<i64>| at.is_none_or(|at| at > case.t + HORIZON);
            match (got, want) {
                (Decision::Allowed { until }, Decision::Allowed { .. }) => prop_assert!(beyond(until), "{got:?}"),
                (Decision::OutOfSchedule { next_allowed }, Decision::OutOfSchedule { .. }) => {
                    prop_assert!(beyond(next_allowed), "{got:?}")
                }
                _ => prop_assert_eq!(got, want),
            }
        } else {
            prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn validate_and_evaluate_never_panic(
        raw in proptest::collection::vec((any::<u8>(), any::<u16>(), any::<u16>()), 0..6),
        not_before in proptest::option::of(any::<i64>()),
        not_after in proptest::option::of(any::<i64>()),
        offset in prop_oneof![any::<i32>(), -86_399i32..86_400],
        t in any::<i64>(),
    ) {
        let schedule = Schedule {
            windows: raw
                .iter()
                .map(|&(days, start_minute, end_minute)| Window { days: Weekdays(days), start_minute, end_minute })
                .collect(),
            not_before,
            not_after,
        };
        let verdict = schedule.validate();
        let first_bad = raw.iter().position(|&(days, start, end)| {
            days == 0 || days & 0x80 != 0 || start >= 1440 || end == 0 || end > 1440 || start == end
        });
        match first_bad {
            Some(index) => prop_assert!(matches!(
                verdict,
                Err(ScheduleError::StartOutOfRange { index: i }
                    | ScheduleError::EndOutOfRange { index: i }
                    | ScheduleError::EmptyWindow { index: i }
                    | ScheduleError::BadDays { index: i }) if i == index
            ), "{verdict:?}"),
            None => prop_assert_eq!(
                verdict.is_err(),
                matches!((not_before, not_after), (Some(from), Some(to)) if to <= from)
            ),
        }
        let zone = ZoneRules::fixed(offset);
        let decision = evaluate(&schedule, &zone, t);
        // Within any calendar and any real offset, the answer is the predicate's, and the next
        // change lies ahead.
        if let (Some(fixed), true) = (FixedOffset::east_opt(offset), t.unsigned_abs() < 1 << 40) {
            if schedule.not_before.is_none_or(|from| t >= from) && schedule.not_after.is_none_or(|at| t < at) {
                prop_assert_eq!(decision.is_allowed(), reference_open(&schedule, &fixed, t));
            }
            prop_assert!(decision.next_change().is_none_or(|at| at > t), "{decision:?}");
        }
    }
}
