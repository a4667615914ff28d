//! A time zone's UTC offsets over a span of time, as the issuer signs them for a lock that
//! cannot carry the IANA database.
//!
//! # Wall clock and the two awkward local times
//!
//! A zone's *wall clock* at instant `t` reads `t + offset_at(t)`. Schedules are defined on the
//! wall clock alone: a window is open whenever the wall clock shows a time inside it (see
//! [`crate::schedule`]). Everything else follows from that one rule:
//!
//! - A local time in a spring-forward gap is never shown. A window that starts inside the gap
//!   opens at the transition, the first instant the clock shows a time inside the window.
//! - A local time in a fall-back overlap is shown twice, and a window containing it is open both
//!   times. "Until" and "next allowed" instants are the true first instants, after the instant
//!   asked about, at which the wall-clock predicate changes.
//!
//! [`ZoneRules::local_to_utc`] applies the same rule to a single local time: it returns the first
//! instant at which the wall clock reads that time *or later*. A skipped time therefore maps to
//! the transition that skips it, and a repeated time to its first occurrence.

use alloc::vec::Vec;
use core::fmt;

use crate::civil::{self, SECONDS_PER_DAY};
use crate::UnixTime;

/// From `at` on (inclusive), the zone's offset from UTC is `offset` seconds (east positive).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub struct Transition {
    pub at: UnixTime,
    pub offset: i32,
}

/// The offsets of one zone: `initial_offset` before the first transition, then each
/// transition's offset from its instant on. Transitions are sorted by `at`, strictly ascending.
///
/// The last offset holds forever: rules cover the span the issuer derived them for, and a lock
/// keeps using the newest offset when it outlives that span.
#[derive(Clone, PartialEq, Eq, Debug, Hash)]
pub struct ZoneRules {
    pub initial_offset: i32,
    pub transitions: Vec<Transition>,
}

/// Why zone rules are not acceptable, or could not be derived.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ZoneError {
    /// More than [`ZoneRules::MAX_TRANSITIONS`] transitions.
    TooManyTransitions,
    /// Transition `index` is not strictly after the one before it.
    Unsorted { index: usize },
    /// An offset beyond ±[`ZoneRules::MAX_OFFSET`]; `index` is `None` for the initial offset.
    OffsetOutOfRange { index: Option<usize> },
    /// [`ZoneRules::from_iana`]: no zone of that name in the IANA database.
    UnknownZone,
    /// [`ZoneRules::from_iana`]: `from` is after `to`, or outside the years jiff represents.
    BadSpan,
}

impl fmt::Display for ZoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ZoneError::TooManyTransitions => {
                write!(
                    f,
                    "more than {} zone transitions",
                    ZoneRules::MAX_TRANSITIONS
                )
            }
            ZoneError::Unsorted { index } => {
                write!(f, "zone transition {index} is not after the one before it")
            }
            ZoneError::OffsetOutOfRange { index: None } => {
                f.write_str("initial zone offset is beyond ±26 hours")
            }
            ZoneError::OffsetOutOfRange { index: Some(index) } => {
                write!(f, "offset of zone transition {index} is beyond ±26 hours")
            }
            ZoneError::UnknownZone => f.write_str("unknown IANA time zone"),
            ZoneError::BadSpan => f.write_str("time span is empty or out of range"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ZoneError {}

/// An instant as the zone's wall clock shows it.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub struct LocalTime {
    /// The local date, as days since 1970-01-01.
    pub day: i64,
    /// Monday = 0 through Sunday = 6.
    pub weekday: u8,
    /// Second of the local day, `0..86400`.
    pub second: u32,
}

impl LocalTime {
    /// The wall-clock reading `local` seconds after local midnight of 1970-01-01.
    pub fn from_local_seconds(local: i64) -> LocalTime {
        let day = local.div_euclid(SECONDS_PER_DAY);
        LocalTime {
            day,
            weekday: civil::weekday(day),
            second: local.rem_euclid(SECONDS_PER_DAY) as u32,
        }
    }

    /// Minute of the local day, `0..1440`.
    pub fn minute(&self) -> u16 {
        (self.second / 60) as u16
    }

    /// The local date as `(year, month, day)`.
    pub fn date(&self) -> (i64, u8, u8) {
        civil::civil_from_days(self.day)
    }
}

impl ZoneRules {
    /// Most transitions accepted: a century of twice-yearly DST changes fits with room to spare,
    /// and a lock can bound the memory it gives to signed rules.
    pub const MAX_TRANSITIONS: usize = 1024;
    /// Largest offset accepted, in seconds. Real zones stay within -12h..+14h; the margin allows
    /// historical local mean times without admitting nonsense.
    pub const MAX_OFFSET: i32 = 26 * 3600;

    /// A zone that is always `offset` seconds east of UTC.
    pub fn fixed(offset: i32) -> ZoneRules {
        ZoneRules {
            initial_offset: offset,
            transitions: Vec::new(),
        }
    }

    /// Checks the invariants the type documents. Rules from the network are checked before use;
    /// [`ZoneRules::offset_at`] and schedule evaluation never panic on unchecked rules, but their
    /// answers for unsorted transitions mean nothing.
    pub fn validate(&self) -> Result<(), ZoneError> {
        if self.transitions.len() > Self::MAX_TRANSITIONS {
            return Err(ZoneError::TooManyTransitions);
        }
        if !Self::offset_ok(self.initial_offset) {
            return Err(ZoneError::OffsetOutOfRange { index: None });
        }
        let mut previous = None;
        for (index, tr) in self.transitions.iter().enumerate() {
            if previous.is_some_and(|p| tr.at <= p) {
                return Err(ZoneError::Unsorted { index });
            }
            if !Self::offset_ok(tr.offset) {
                return Err(ZoneError::OffsetOutOfRange { index: Some(index) });
            }
            previous = Some(tr.at);
        }
        Ok(())
    }

    fn offset_ok(offset: i32) -> bool {
        (-Self::MAX_OFFSET..=Self::MAX_OFFSET).contains(&offset)
    }

    /// Index of the offset period containing `t`: 0 before the first transition, `i + 1` from
    /// transition `i` on.
    pub(crate) fn period(&self, t: UnixTime) -> usize {
        self.transitions.partition_point(|tr| tr.at <= t)
    }

    /// The offset of period `period` (as returned by [`ZoneRules::period`]).
    pub(crate) fn period_offset(&self, period: usize) -> i32 {
        match period.checked_sub(1) {
            Some(i) => self.transitions[i].offset,
            None => self.initial_offset,
        }
    }

    /// The offset from UTC, in seconds east, in force at `t`.
    pub fn offset_at(&self, t: UnixTime) -> i32 {
        self.period_offset(self.period(t))
    }

    /// What the wall clock shows at `t`.
    pub fn to_local(&self, t: UnixTime) -> LocalTime {
        LocalTime::from_local_seconds(t.saturating_add(i64::from(self.offset_at(t))))
    }

    /// The first instant at which the wall clock reads minute `minute` (`0..=1440`) of the local
    /// date `day` (days since 1970-01-01), or a later time: a time skipped by a spring-forward
    /// gap maps to the transition, a time repeated by a fall-back to its first occurrence.
    ///
    /// Exact for rules that pass [`ZoneRules::validate`].
    pub fn local_to_utc(&self, day: i64, minute: u16) -> UnixTime {
        let local = day
            .saturating_mul(SECONDS_PER_DAY)
            .saturating_add(i64::from(minute) * 60);
        // Periods ending before `local - MAX_OFFSET` show only earlier wall times; skip them.
        let mut period = self.period(local.saturating_sub(i64::from(Self::MAX_OFFSET)));
        loop {
            let offset = i64::from(self.period_offset(period));
            let start = period.checked_sub(1).map(|i| self.transitions[i].at);
            match self.transitions.get(period) {
                // This period ends before its wall clock reaches `local`.
                Some(end) if end.at.saturating_add(offset) <= local => period += 1,
                _ => {
                    let reached = local.saturating_sub(offset);
                    return start.map_or(reached, |s| s.max(reached));
                }
            }
        }
    }
}

#[cfg(feature = "std")]
impl ZoneRules {
    /// Derives the rules of the IANA zone `name` (for example `"America/New_York"`) in force
    /// from `from` to `to`: `initial_offset` is the offset at `from`, and the transitions are
    /// the offset changes in `(from, to]`, each at its exact second, read from the TZif data
    /// jiff bundles. Transitions that change only a zone's abbreviation or DST flag are left
    /// out: a schedule sees the wall clock alone.
    pub fn from_iana(name: &str, from: UnixTime, to: UnixTime) -> Result<ZoneRules, ZoneError> {
        use jiff::Timestamp;

        let tz = jiff::tz::TimeZone::get(name).map_err(|_| ZoneError::UnknownZone)?;
        let start = Timestamp::from_second(from).map_err(|_| ZoneError::BadSpan)?;
        Timestamp::from_second(to).map_err(|_| ZoneError::BadSpan)?;
        if from > to {
            return Err(ZoneError::BadSpan);
        }
        let initial_offset = tz.to_offset(start).seconds();
        let mut transitions: Vec<Transition> = Vec::new();
        let mut current = initial_offset;
        for change in tz.following(start) {
            let at = change.timestamp().as_second();
            if at > to {
                break;
            }
            let offset = change.offset().seconds();
            if offset == current {
                continue;
            }
            if transitions.len() == Self::MAX_TRANSITIONS {
                return Err(ZoneError::TooManyTransitions);
            }
            transitions.push(Transition { at, offset });
            current = offset;
        }
        let rules = ZoneRules {
            initial_offset,
            transitions,
        };
        rules.validate()?;
        Ok(rules)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::civil::days_from_civil;
    use alloc::vec;

    const H: i32 = 3600;

    fn utc(y: i32, mo: u8, d: u8, h: i64, mi: i64) -> UnixTime {
        days_from_civil(y, mo, d) * SECONDS_PER_DAY + h * 3600 + mi * 60
    }

    /// New York 2024: EDT from 2024-03-10T07:00Z, EST from 2024-11-03T06:00Z.
    fn new_york_2024() -> ZoneRules {
        ZoneRules {
            initial_offset: -5 * H,
            transitions: vec![
                Transition {
                    at: utc(2024, 3, 10, 7, 0),
                    offset: -4 * H,
                },
                Transition {
                    at: utc(2024, 11, 3, 6, 0),
                    offset: -5 * H,
                },
            ],
        }
    }

    #[test]
    fn validate_rejects_each_broken_invariant() {
        assert_eq!(new_york_2024().validate(), Ok(()));
        assert_eq!(ZoneRules::fixed(14 * H).validate(), Ok(()));
        assert_eq!(
            ZoneRules::fixed(27 * H).validate(),
            Err(ZoneError::OffsetOutOfRange { index: None })
        );
        let mut z = new_york_2024();
        z.transitions[1].offset = -27 * H;
        assert_eq!(
            z.validate(),
            Err(ZoneError::OffsetOutOfRange { index: Some(1) })
        );
        let mut z = new_york_2024();
        z.transitions[1].at = z.transitions[0].at;
        assert_eq!(z.validate(), Err(ZoneError::Unsorted { index: 1 }));
        let z = ZoneRules {
            initial_offset: 0,
            transitions: (0..1025).map(|i| Transition { at: i, offset: 0 }).collect(),
        };
        assert_eq!(z.validate(), Err(ZoneError::TooManyTransitions));
    }

    #[test]
    fn offset_at_switches_exactly_at_transitions() {
        let z = new_york_2024();
        let spring = utc(2024, 3, 10, 7, 0);
        let fall = utc(2024, 11, 3, 6, 0);
        assert_eq!(z.offset_at(spring - 1), -5 * H);
        assert_eq!(z.offset_at(spring), -4 * H);
        assert_eq!(z.offset_at(fall - 1), -4 * H);
        assert_eq!(z.offset_at(fall), -5 * H);
        assert_eq!(z.offset_at(i64::MIN), -5 * H);
        assert_eq!(z.offset_at(i64::MAX), -5 * H);
        assert_eq!(ZoneRules::fixed(19_800).offset_at(0), 19_800);
    }

    #[test]
    fn to_local_gives_date_weekday_and_second() {
        let z = new_york_2024();
        // 2024-03-10T06:59:59Z is 01:59:59 EST, a Sunday; one second later it is 03:00 EDT.
        let spring = utc(2024, 3, 10, 7, 0);
        let before = z.to_local(spring - 1);
        assert_eq!(before.date(), (2024, 3, 10));
        assert_eq!((before.weekday, before.second), (6, 3600 + 3599));
        let after = z.to_local(spring);
        assert_eq!(
            (after.weekday, after.second, after.minute()),
            (6, 3 * 3600, 180)
        );
        // Just before midnight UTC on a Monday is Monday evening in New York.
        let l = z.to_local(utc(2024, 1, 1, 23, 59));
        assert_eq!(
            (l.date(), l.weekday, l.minute()),
            ((2024, 1, 1), 0, 18 * 60 + 59)
        );
        let l = ZoneRules::fixed(0).to_local(-1);
        assert_eq!((l.date(), l.weekday, l.second), ((1969, 12, 31), 2, 86_399));
    }

    #[test]
    fn local_to_utc_maps_gaps_forward_and_overlaps_to_first_occurrence() {
        let z = new_york_2024();
        let march10 = days_from_civil(2024, 3, 10);
        let nov3 = days_from_civil(2024, 11, 3);
        // Ordinary times.
        assert_eq!(z.local_to_utc(march10, 60), utc(2024, 3, 10, 6, 0));
        assert_eq!(z.local_to_utc(march10, 180), utc(2024, 3, 10, 7, 0));
        assert_eq!(z.local_to_utc(march10, 240), utc(2024, 3, 10, 8, 0));
        // 02:00-02:59 do not exist: they map to the transition.
        assert_eq!(z.local_to_utc(march10, 120), utc(2024, 3, 10, 7, 0));
        assert_eq!(z.local_to_utc(march10, 150), utc(2024, 3, 10, 7, 0));
        // 01:00-01:59 happen twice: first occurrence (EDT).
        assert_eq!(z.local_to_utc(nov3, 60), utc(2024, 11, 3, 5, 0));
        assert_eq!(z.local_to_utc(nov3, 90), utc(2024, 11, 3, 5, 30));
        assert_eq!(z.local_to_utc(nov3, 120), utc(2024, 11, 3, 7, 0));
        // Minute 1440 is the next midnight.
        assert_eq!(z.local_to_utc(nov3, 1440), z.local_to_utc(nov3 + 1, 0));
        assert_eq!(ZoneRules::fixed(0).local_to_utc(0, 0), 0);
        assert_eq!(ZoneRules::fixed(-5 * H).local_to_utc(i64::MAX, 0), i64::MAX);
    }

    #[cfg(feature = "std")]
    #[test]
    fn from_iana_finds_exact_transitions() {
        let z = ZoneRules::from_iana(
            "America/New_York",
            utc(2024, 1, 1, 0, 0),
            utc(2025, 1, 1, 0, 0),
        )
        .unwrap();
        assert_eq!(z, new_york_2024());

        // Lord Howe Island: +11 (DST) to +10:30 at 02:00 local, 2024-04-07.
        let z = ZoneRules::from_iana(
            "Australia/Lord_Howe",
            utc(2024, 1, 1, 0, 0),
            utc(2024, 12, 31, 0, 0),
        )
        .unwrap();
        assert_eq!(z.initial_offset, 11 * H);
        assert_eq!(
            z.transitions,
            [
                Transition {
                    at: utc(2024, 4, 6, 15, 0),
                    offset: 10 * H + 1800
                },
                Transition {
                    at: utc(2024, 10, 5, 15, 30),
                    offset: 11 * H
                },
            ]
        );

        // Samoa skipped Friday 2011-12-30: Thursday 23:59:59 (-10, DST) was followed by
        // Saturday 00:00 (+14, DST).
        let z = ZoneRules::from_iana(
            "Pacific/Apia",
            utc(2011, 12, 1, 0, 0),
            utc(2012, 1, 31, 0, 0),
        )
        .unwrap();
        assert_eq!(z.initial_offset, -10 * H);
        assert_eq!(
            z.transitions,
            [Transition {
                at: utc(2011, 12, 30, 10, 0),
                offset: 14 * H
            }]
        );
        assert_eq!(
            z.to_local(utc(2011, 12, 30, 10, 0) - 1).date(),
            (2011, 12, 29)
        );
        assert_eq!(z.to_local(utc(2011, 12, 30, 10, 0)).date(), (2011, 12, 31));

        let z = ZoneRules::from_iana("Asia/Kolkata", 0, utc(2030, 1, 1, 0, 0)).unwrap();
        assert_eq!(z, ZoneRules::fixed(5 * H + 1800));
    }

    #[cfg(feature = "std")]
    #[test]
    fn from_iana_span_edges_and_errors() {
        let spring = utc(2024, 3, 10, 7, 0);
        // `from` exactly at a transition: it is the initial offset, not a transition.
        let z = ZoneRules::from_iana("America/New_York", spring, spring + 3600).unwrap();
        assert_eq!(z, ZoneRules::fixed(-4 * H));
        // `to` exactly at a transition: included.
        let z = ZoneRules::from_iana("America/New_York", spring - 3600, spring).unwrap();
        assert_eq!(
            z.transitions,
            [Transition {
                at: spring,
                offset: -4 * H
            }]
        );
        let z = ZoneRules::from_iana("UTC", 5, 5).unwrap();
        assert_eq!(z, ZoneRules::fixed(0));
        assert_eq!(
            ZoneRules::from_iana("Mars/Olympus_Mons", 0, 1),
            Err(ZoneError::UnknownZone)
        );
        assert_eq!(ZoneRules::from_iana("UTC", 1, 0), Err(ZoneError::BadSpan));
        assert_eq!(
            ZoneRules::from_iana("UTC", 0, i64::MAX),
            Err(ZoneError::BadSpan)
        );
    }
}
