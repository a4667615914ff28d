//! Key Schedules: weekly wall-clock windows in the property's time zone, and the decision
//! "may this credential open this door at this instant, and if not, when next?".
//!
//! # Semantics
//!
//! A schedule is open at instant `t` when the zone's wall clock at `t` (local weekday `d`,
//! local second of the day `s`, see [`ZoneRules::to_local`]) lies in one of its windows `w`:
//!
//! - `w` does not cross midnight (`end > start`): `d ∈ w.days` and `start·60 <= s < end·60`;
//! - `w` crosses midnight (`end <= start`): `d ∈ w.days` and `s >= start·60`, or
//!   `d - 1 (mod 7) ∈ w.days` and `s < end·60`.
//!
//! Windows that touch or overlap merge: "Monday all day" plus "Tuesday all day" is one open
//! period ending Wednesday 00:00. Because the rule only looks at the wall clock, a window that
//! starts in a spring-forward gap opens at the transition, and a fall-back repeats the wall times
//! of its overlap, open both times (the rule is spelled out in [`crate::zone`]).
//!
//! [`evaluate`] answers with the true first instant after `t` at which the answer changes. It
//! allocates nothing and walks at most eight local days per zone offset period, so a lock can
//! afford it on every unlock.

use alloc::vec::Vec;
use core::fmt;

use crate::civil::{self, SECONDS_PER_DAY};
use crate::zone::ZoneRules;
use crate::UnixTime;

/// A set of weekdays as a bitmask: bit 0 is Monday, bit 6 is Sunday. Bit 7 must be clear.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash, Default)]
pub struct Weekdays(pub u8);

impl Weekdays {
    pub const MONDAY: u8 = 1 << 0;
    pub const ALL: Weekdays = Weekdays(0x7f);
    pub const MON_FRI: Weekdays = Weekdays(0x1f);
    pub const SAT_SUN: Weekdays = Weekdays(0x60);

    /// `day` counts from Monday = 0 to Sunday = 6.
    pub fn contains(self, day: u8) -> bool {
        day < 7 && self.0 & (1 << day) != 0
    }
}

/// One weekly window, in minutes of the local day.
///
/// `start_minute` is in `0..1440`, `end_minute` in `1..=1440`. When `end_minute <= start_minute`
/// the window crosses midnight: "Mon 22:00-02:00" is open from Monday 22:00 to Tuesday 02:00,
/// and `days` names the day the window starts on. `end_minute == start_minute` is refused by
/// [`Schedule::validate`]; a whole day is `0..1440`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub struct Window {
    pub days: Weekdays,
    pub start_minute: u16,
    pub end_minute: u16,
}

/// A door's Key Schedule: weekly windows plus an optional validity range.
///
/// No windows means the door never opens under this grant; [`Schedule::always`] is 24/7.
#[derive(Clone, PartialEq, Eq, Debug, Hash)]
pub struct Schedule {
    pub windows: Vec<Window>,
    /// First instant at which the grant is valid (inclusive).
    pub not_before: Option<UnixTime>,
    /// First instant at which the grant is no longer valid (exclusive end).
    pub not_after: Option<UnixTime>,
}

/// The answer to "may this door open now?".
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum Decision {
    /// Open now; `until` is the first instant it closes again (`None`: never closes).
    Allowed { until: Option<UnixTime> },
    /// Closed by the weekly windows; `next_allowed` is the first instant it opens again
    /// (`None`: it never will under this grant).
    OutOfSchedule { next_allowed: Option<UnixTime> },
    /// Before `not_before`.
    NotYetValid { from: UnixTime },
    /// At or after `not_after`.
    Expired { at: UnixTime },
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allowed { .. })
    }

    /// The first instant at which the decision will be different, `None` if it never changes.
    /// An app re-evaluates (or refreshes its "opens at" label) then, instead of polling.
    pub fn next_change(&self) -> Option<UnixTime> {
        match *self {
            Decision::Allowed { until } => until,
            Decision::OutOfSchedule { next_allowed } => next_allowed,
            Decision::NotYetValid { from } => Some(from),
            Decision::Expired { .. } => None,
        }
    }
}

/// Why a schedule is not acceptable.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ScheduleError {
    /// Window `index` has a start outside `0..1440`.
    StartOutOfRange { index: usize },
    /// Window `index` has an end outside `1..=1440`.
    EndOutOfRange { index: usize },
    /// Window `index` starts and ends at the same minute (use 0..1440 for a whole day).
    EmptyWindow { index: usize },
    /// Window `index` names no weekday, or sets bit 7.
    BadDays { index: usize },
    /// `not_after` is not after `not_before`.
    EmptyRange,
}

impl fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScheduleError::StartOutOfRange { index } => {
                write!(f, "schedule window {index} starts outside the day")
            }
            ScheduleError::EndOutOfRange { index } => {
                write!(f, "schedule window {index} ends outside the day")
            }
            ScheduleError::EmptyWindow { index } => {
                write!(
                    f,
                    "schedule window {index} starts and ends at the same minute"
                )
            }
            ScheduleError::BadDays { index } => {
                write!(f, "schedule window {index} names no valid weekday")
            }
            ScheduleError::EmptyRange => f.write_str("schedule validity range is empty"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ScheduleError {}

impl Schedule {
    /// Open every minute of every day, with no validity range.
    pub fn always() -> Schedule {
        Schedule {
            windows: alloc::vec![Window {
                days: Weekdays::ALL,
                start_minute: 0,
                end_minute: 1440
            }],
            not_before: None,
            not_after: None,
        }
    }

    /// Checks the ranges [`Window`] and [`Schedule`] document. [`evaluate`] gives the defined
    /// answer (the predicate of the module docs) for unchecked schedules too; checking catches
    /// an issuer's mistakes before they become silent "never open" windows.
    pub fn validate(&self) -> Result<(), ScheduleError> {
        for (index, w) in self.windows.iter().enumerate() {
            if w.start_minute >= 1440 {
                return Err(ScheduleError::StartOutOfRange { index });
            }
            if !(1..=1440).contains(&w.end_minute) {
                return Err(ScheduleError::EndOutOfRange { index });
            }
            if w.start_minute == w.end_minute {
                return Err(ScheduleError::EmptyWindow { index });
            }
            if w.days.0 == 0 || w.days.0 & 0x80 != 0 {
                return Err(ScheduleError::BadDays { index });
            }
        }
        match (self.not_before, self.not_after) {
            (Some(from), Some(to)) if to <= from => Err(ScheduleError::EmptyRange),
            _ => Ok(()),
        }
    }
}

/// Decides for a holder with several grants for one door (one per key that gives it): open
/// whenever any one of them is open, never wider than the grants one by one.
///
/// - Some grant is open: [`Decision::Allowed`], `until` the first instant at which none is
///   (grants that take over from one another are followed; `None` if that never comes).
/// - Else, when no grant is merely out of its windows and some are not yet valid:
///   [`Decision::NotYetValid`] from the earliest `not_before` (as [`evaluate`] says for one).
/// - Else some grant opens later: [`Decision::OutOfSchedule`] with the earliest opening among
///   them (a grant not yet valid opens at its first window from its `not_before` on).
/// - Else every grant is expired ([`Decision::Expired`] at the latest end) or none ever opens
///   again ([`Decision::OutOfSchedule`] with `next_allowed: None`).
///
/// With no grants at all the door never opens: `OutOfSchedule { next_allowed: None }`.
pub fn evaluate_any(schedules: &[Schedule], zone: &ZoneRules, t: UnixTime) -> Decision {
    // The answer for one grant is the common case: it must stay exactly `evaluate`'s.
    if let [only] = schedules {
        return evaluate(only, zone, t);
    }
    let mut open = false;
    let mut next_open: Option<UnixTime> = None;
    let mut not_yet: Option<UnixTime> = None;
    let mut out_of_schedule = false;
    let mut expired: Option<UnixTime> = None;
    let mut all_expired = !schedules.is_empty();
    for s in schedules {
        let d = evaluate(s, zone, t);
        all_expired &= matches!(d, Decision::Expired { .. });
        match d {
            Decision::Allowed { .. } => open = true,
            Decision::OutOfSchedule { next_allowed } => {
                out_of_schedule = true;
                next_open = earliest(next_open, next_allowed);
            }
            Decision::NotYetValid { from } => {
                not_yet = earliest(not_yet, Some(from));
                let opens = match evaluate(s, zone, from) {
                    Decision::Allowed { .. } => Some(from),
                    Decision::OutOfSchedule { next_allowed } => next_allowed,
                    _ => None,
                };
                next_open = earliest(next_open, opens);
            }
            Decision::Expired { at } => expired = expired.max(Some(at)),
        }
    }
    if open {
        return Decision::Allowed {
            until: union_until(schedules, zone, t),
        };
    }
    match (not_yet, next_open) {
        (Some(from), _) if !out_of_schedule => Decision::NotYetValid { from },
        (_, Some(next)) => Decision::OutOfSchedule {
            next_allowed: Some(next),
        },
        _ => match expired {
            Some(at) if all_expired => Decision::Expired { at },
            _ => Decision::OutOfSchedule { next_allowed: None },
        },
    }
}

fn earliest(a: Option<UnixTime>, b: Option<UnixTime>) -> Option<UnixTime> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The first instant from `t` (at which some grant is open) at which none is; `None` if that
/// never comes.
///
/// Between two consecutive validity bounds (`not_before`s and `not_after`s) the same grants are
/// valid, and they are open together exactly when their windows taken as one schedule are:
/// [`evaluate`] on that schedule, ending at the next bound, gives the exact close within the
/// stretch, however often the grants take over from one another (even forever, which stepping
/// from grant to grant could never tell). At a bound the walk goes on if the door is still open.
/// So at most one evaluation per bound, plus one.
fn union_until(schedules: &[Schedule], zone: &ZoneRules, t: UnixTime) -> Option<UnixTime> {
    let valid = |s: &Schedule, at: UnixTime| {
        s.not_before.is_none_or(|b| b <= at) && s.not_after.is_none_or(|a| at < a)
    };
    let mut at = t;
    loop {
        let bound = schedules
            .iter()
            .flat_map(|s| [s.not_before, s.not_after])
            .flatten()
            .filter(|&b| b > at)
            .min();
        let together = Schedule {
            windows: schedules
                .iter()
                .filter(|s| valid(s, at))
                .flat_map(|s| s.windows.iter().copied())
                .collect(),
            not_before: None,
            not_after: bound,
        };
        match evaluate(&together, zone, at) {
            Decision::Allowed { until: None } => return None,
            Decision::Allowed { until: Some(close) } if Some(close) == bound => {
                let still_open = schedules
                    .iter()
                    .any(|s| evaluate(s, zone, close).is_allowed());
                if !still_open {
                    return Some(close);
                }
                at = close;
            }
            Decision::Allowed { until: Some(close) } => return Some(close),
            // Not reached: a grant open at `at` is valid there and one of its windows holds.
            _ => return Some(at),
        }
    }
}

/// Decides whether `schedule` lets its holder in at `t`, with the zone's wall clock given by
/// `zone`, and when that answer next changes (see the module docs for the exact rule).
///
/// Validity comes first: before `not_before` the answer is [`Decision::NotYetValid`], from
/// `not_after` on [`Decision::Expired`]. `until` is capped at `not_after`, and an opening at or
/// after `not_after` is reported as `next_allowed: None`.
pub fn evaluate(schedule: &Schedule, zone: &ZoneRules, t: UnixTime) -> Decision {
    if let Some(from) = schedule.not_before {
        if t < from {
            return Decision::NotYetValid { from };
        }
    }
    let limit = match schedule.not_after {
        Some(at) if t >= at => return Decision::Expired { at },
        Some(at) => at,
        None => UnixTime::MAX,
    };
    let walk = Walk {
        windows: &schedule.windows,
        zone,
        period: zone.period(t),
        now: t,
        local: t.saturating_add(i64::from(zone.offset_at(t))),
        limit,
    };
    match run_end(walk.windows, walk.local) {
        Run::Closed => Decision::OutOfSchedule {
            next_allowed: walk.next_opening(),
        },
        Run::Until(end) => Decision::Allowed {
            until: walk.closing(end).or(schedule.not_after),
        },
        Run::Forever => Decision::Allowed {
            until: schedule.not_after,
        },
    }
}

/// A position in time during evaluation: the instant `now`, which lies in the zone's offset
/// period `period`, and the wall clock `local` at `now`, in seconds since local 1970-01-01.
struct Walk<'a> {
    windows: &'a [Window],
    zone: &'a ZoneRules,
    period: usize,
    now: UnixTime,
    local: i64,
    /// `not_after`, or `UnixTime::MAX` without one.
    limit: UnixTime,
}

impl Walk<'_> {
    /// Moves to the zone's next transition if it comes no later than `target` (an instant
    /// computed with the current offset), returning whether it moved.
    fn cross_transition_before(&mut self, target: UnixTime) -> bool {
        match self.zone.transitions.get(self.period) {
            Some(tr) if tr.at <= target => {
                self.period += 1;
                self.now = tr.at;
                self.local = tr.at.saturating_add(i64::from(tr.offset));
                true
            }
            _ => false,
        }
    }

    /// The instant at which an open run closes, given `end`, the wall-clock end of the run
    /// containing `local`. A transition inside the run moves the wall clock, so the run is
    /// re-examined from each transition until it closes within one offset period. Capped at the
    /// limit; `None` if it never closes.
    fn closing(mut self, mut end: i64) -> Option<UnixTime> {
        loop {
            let close = self.now.saturating_add(end.saturating_sub(self.local));
            if !self.cross_transition_before(close) {
                return Some(close.min(self.limit));
            }
            if self.now >= self.limit {
                return Some(self.limit);
            }
            match run_end(self.windows, self.local) {
                Run::Closed => return Some(self.now),
                Run::Until(e) => end = e,
                Run::Forever => return None,
            }
        }
    }

    /// The first instant after `now` (which is closed) at which the schedule opens, if before
    /// the limit. Like [`Walk::closing`], re-examined from each transition on the way.
    fn next_opening(mut self) -> Option<UnixTime> {
        loop {
            let start = next_start(self.windows, self.local)?;
            let open = self.now.saturating_add(start.saturating_sub(self.local));
            if !self.cross_transition_before(open) {
                return Some(open).filter(|&o| o < self.limit);
            }
            if self.now >= self.limit {
                return None;
            }
            if run_end(self.windows, self.local) != Run::Closed {
                return Some(self.now);
            }
        }
    }
}

const DAY: u32 = SECONDS_PER_DAY as u32;
/// Seven days ahead of the partial first day cover every weekday once more, so a weekly pattern
/// that has not changed state within this many local days never will.
const DAYS_TO_SCAN: usize = 8;

/// The wall-clock run of open time containing a local instant.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Run {
    /// The instant is not inside any window.
    Closed,
    /// Open until this local instant (exclusive).
    Until(i64),
    /// Open at every wall-clock time of the week.
    Forever,
}

fn previous_weekday(weekday: u8) -> u8 {
    if weekday == 0 {
        6
    } else {
        weekday - 1
    }
}

/// The parts of `w` on a local day with weekday `weekday`, as half-open second ranges of that
/// day; a range with `start >= end` is empty. Clamping minutes to the day keeps the predicate of
/// the module docs exact for unvalidated windows too.
#[inline(always)]
fn day_ranges(w: &Window, weekday: u8) -> [(u32, u32); 2] {
    const NONE: (u32, u32) = (0, 0);
    let start = (u32::from(w.start_minute) * 60).min(DAY);
    let end = (u32::from(w.end_minute) * 60).min(DAY);
    let on = |day: u8, range| if w.days.contains(day) { range } else { NONE };
    if w.end_minute > w.start_minute {
        [on(weekday, (start, end)), NONE]
    } else {
        [
            on(weekday, (start, DAY)),
            on(previous_weekday(weekday), (0, end)),
        ]
    }
}

/// The first second at or after `second` of a day with weekday `weekday` that no window covers
/// (`DAY` if the windows cover the rest of the day), following overlapping and touching ranges.
fn covered_until(windows: &[Window], weekday: u8, mut second: u32) -> u32 {
    loop {
        let mut reach = second;
        for w in windows {
            for (start, end) in day_ranges(w, weekday) {
                if start <= second && second < end && end > reach {
                    reach = end;
                }
            }
        }
        if reach == second {
            return second;
        }
        second = reach;
    }
}

/// The earliest start at or after `second` of a non-empty range on a day with weekday `weekday`.
fn first_start_from(windows: &[Window], weekday: u8, second: u32) -> Option<u32> {
    let mut first = None;
    for w in windows {
        for (start, end) in day_ranges(w, weekday) {
            if start < end && start >= second && first.is_none_or(|f| start < f) {
                first = Some(start);
            }
        }
    }
    first
}

/// Where the open run containing the local instant `local` ends, walking whole days forward.
fn run_end(windows: &[Window], local: i64) -> Run {
    let mut day = local.div_euclid(SECONDS_PER_DAY);
    let mut weekday = civil::weekday(day);
    let mut second = local.rem_euclid(SECONDS_PER_DAY) as u32;
    for scanned in 0..DAYS_TO_SCAN {
        let end = covered_until(windows, weekday, second);
        if end < DAY {
            return if scanned == 0 && end == second {
                Run::Closed
            } else {
                Run::Until(
                    day.saturating_mul(SECONDS_PER_DAY)
                        .saturating_add(i64::from(end)),
                )
            };
        }
        day = day.saturating_add(1);
        weekday = (weekday + 1) % 7;
        second = 0;
    }
    Run::Forever
}

/// The first local instant after `local` (which is closed) at which a window opens; `None` if no
/// window ever opens.
fn next_start(windows: &[Window], local: i64) -> Option<i64> {
    let mut day = local.div_euclid(SECONDS_PER_DAY);
    let mut weekday = civil::weekday(day);
    let mut from = local.rem_euclid(SECONDS_PER_DAY) as u32 + 1;
    for _ in 0..DAYS_TO_SCAN {
        if let Some(start) = first_start_from(windows, weekday, from) {
            return Some(
                day.saturating_mul(SECONDS_PER_DAY)
                    .saturating_add(i64::from(start)),
            );
        }
        day = day.saturating_add(1);
        weekday = (weekday + 1) % 7;
        from = 0;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::civil::days_from_civil;
    use alloc::vec;

    /// Pacific time without DST: the examples below are about windows, not transitions.
    const OFFSET: i32 = -8 * 3600;

    /// The instant at which the zone's wall clock reads `y-mo-d h:mi`.
    fn at(y: i32, mo: u8, d: u8, h: i64, mi: i64) -> UnixTime {
        days_from_civil(y, mo, d) * SECONDS_PER_DAY + h * 3600 + mi * 60 - i64::from(OFFSET)
    }

    fn weekly(windows: &[(u8, u16, u16)]) -> Schedule {
        Schedule {
            windows: windows
                .iter()
                .map(|&(days, start_minute, end_minute)| Window {
                    days: Weekdays(days),
                    start_minute,
                    end_minute,
                })
                .collect(),
            not_before: None,
            not_after: None,
        }
    }

    fn eval(s: &Schedule, t: UnixTime) -> Decision {
        evaluate(s, &ZoneRules::fixed(OFFSET), t)
    }

    fn allowed(until: UnixTime) -> Decision {
        Decision::Allowed { until: Some(until) }
    }

    fn closed(next: UnixTime) -> Decision {
        Decision::OutOfSchedule {
            next_allowed: Some(next),
        }
    }

    // 2025-06-09 is a Monday.

    #[test]
    fn gym_weekdays_6am_to_10pm() {
        let gym = weekly(&[(Weekdays::MON_FRI.0, 6 * 60, 22 * 60)]);
        assert_eq!(gym.validate(), Ok(()));
        assert_eq!(
            eval(&gym, at(2025, 6, 9, 5, 59)),
            closed(at(2025, 6, 9, 6, 0))
        );
        assert_eq!(
            eval(&gym, at(2025, 6, 9, 6, 0)),
            allowed(at(2025, 6, 9, 22, 0))
        );
        assert_eq!(
            eval(&gym, at(2025, 6, 9, 21, 59)),
            allowed(at(2025, 6, 9, 22, 0))
        );
        assert_eq!(
            eval(&gym, at(2025, 6, 9, 22, 0)),
            closed(at(2025, 6, 10, 6, 0))
        );
        // Friday night and the weekend wait for Monday morning.
        assert_eq!(
            eval(&gym, at(2025, 6, 13, 22, 0)),
            closed(at(2025, 6, 16, 6, 0))
        );
        assert_eq!(
            eval(&gym, at(2025, 6, 15, 12, 0)),
            closed(at(2025, 6, 16, 6, 0))
        );
    }

    #[test]
    fn pool_weekdays_9am_to_5pm() {
        let pool = weekly(&[(Weekdays::MON_FRI.0, 9 * 60, 17 * 60)]);
        assert_eq!(
            eval(&pool, at(2025, 6, 11, 8, 30)),
            closed(at(2025, 6, 11, 9, 0))
        );
        assert_eq!(
            eval(&pool, at(2025, 6, 11, 16, 59) + 59),
            allowed(at(2025, 6, 11, 17, 0))
        );
        assert_eq!(
            eval(&pool, at(2025, 6, 14, 10, 0)),
            closed(at(2025, 6, 16, 9, 0))
        );
    }

    #[test]
    fn business_hours_every_day() {
        let hours = weekly(&[(Weekdays::ALL.0, 8 * 60, 18 * 60)]);
        assert_eq!(
            eval(&hours, at(2025, 6, 14, 7, 0)),
            closed(at(2025, 6, 14, 8, 0))
        );
        assert_eq!(
            eval(&hours, at(2025, 6, 15, 8, 0)),
            allowed(at(2025, 6, 15, 18, 0))
        );
        assert_eq!(
            eval(&hours, at(2025, 6, 15, 18, 0)),
            closed(at(2025, 6, 16, 8, 0))
        );
    }

    #[test]
    fn window_crossing_midnight_belongs_to_its_start_day() {
        // Monday 22:00 to Tuesday 02:00 only.
        let late = weekly(&[(Weekdays::MONDAY, 22 * 60, 2 * 60)]);
        assert_eq!(late.validate(), Ok(()));
        assert_eq!(
            eval(&late, at(2025, 6, 9, 23, 0)),
            allowed(at(2025, 6, 10, 2, 0))
        );
        assert_eq!(
            eval(&late, at(2025, 6, 10, 1, 0)),
            allowed(at(2025, 6, 10, 2, 0))
        );
        assert_eq!(
            eval(&late, at(2025, 6, 10, 2, 0)),
            closed(at(2025, 6, 16, 22, 0))
        );
        // Monday 01:00 is the tail of Sunday's window, which does not exist.
        assert_eq!(
            eval(&late, at(2025, 6, 9, 1, 0)),
            closed(at(2025, 6, 9, 22, 0))
        );
        assert_eq!(
            eval(&late, at(2025, 6, 8, 23, 0)),
            closed(at(2025, 6, 9, 22, 0))
        );
        // Every night: closes at 02:00 and opens again at 22:00.
        let nightly = weekly(&[(Weekdays::ALL.0, 22 * 60, 2 * 60)]);
        assert_eq!(
            eval(&nightly, at(2025, 6, 15, 23, 0)),
            allowed(at(2025, 6, 16, 2, 0))
        );
        assert_eq!(
            eval(&nightly, at(2025, 6, 16, 3, 0)),
            closed(at(2025, 6, 16, 22, 0))
        );
        // 22:00-22:00 would be empty; 22:00-21:59 is all but one minute of the week.
        let almost = weekly(&[(Weekdays::ALL.0, 22 * 60, 22 * 60 - 1)]);
        assert_eq!(
            eval(&almost, at(2025, 6, 16, 21, 59)),
            closed(at(2025, 6, 16, 22, 0))
        );
        assert_eq!(
            eval(&almost, at(2025, 6, 16, 22, 0)),
            allowed(at(2025, 6, 17, 21, 59))
        );
    }

    #[test]
    fn always_open_never_closes() {
        let always = Schedule::always();
        assert_eq!(always.validate(), Ok(()));
        for t in [i64::MIN, -1, 0, at(2025, 6, 9, 12, 0), i64::MAX] {
            assert_eq!(eval(&always, t), Decision::Allowed { until: None });
        }
        // Covering the week with separate windows is the same thing.
        let pieces = weekly(&[(0x7f, 0, 720), (0x55, 720, 1440), (0x2a, 720, 0)]);
        assert_eq!(
            eval(&pieces, at(2025, 6, 10, 13, 0)),
            Decision::Allowed { until: None }
        );
        // ... and one missing minute makes it close.
        let gap = weekly(&[(0x7f, 0, 720), (0x55, 720, 1440), (0x2a, 721, 0)]);
        assert_eq!(
            eval(&gap, at(2025, 6, 9, 13, 0)),
            allowed(at(2025, 6, 10, 12, 0))
        );
    }

    #[test]
    fn several_windows_per_day_merge_when_they_touch() {
        let s = weekly(&[
            (Weekdays::ALL.0, 7 * 60, 9 * 60),
            (Weekdays::ALL.0, 12 * 60, 13 * 60),
            (Weekdays::ALL.0, 17 * 60, 20 * 60),
            (Weekdays::ALL.0, 18 * 60, 21 * 60),
            (Weekdays::ALL.0, 9 * 60, 10 * 60),
        ]);
        assert_eq!(eval(&s, at(2025, 6, 9, 6, 0)), closed(at(2025, 6, 9, 7, 0)));
        assert_eq!(
            eval(&s, at(2025, 6, 9, 8, 0)),
            allowed(at(2025, 6, 9, 10, 0))
        );
        assert_eq!(
            eval(&s, at(2025, 6, 9, 10, 0)),
            closed(at(2025, 6, 9, 12, 0))
        );
        assert_eq!(
            eval(&s, at(2025, 6, 9, 13, 0)),
            closed(at(2025, 6, 9, 17, 0))
        );
        assert_eq!(
            eval(&s, at(2025, 6, 9, 17, 30)),
            allowed(at(2025, 6, 9, 21, 0))
        );
        assert_eq!(
            eval(&s, at(2025, 6, 9, 21, 0)),
            closed(at(2025, 6, 10, 7, 0))
        );
        // Whole Monday and whole Tuesday: one run until Wednesday midnight.
        let two_days = weekly(&[
            (Weekdays::MONDAY, 0, 1440),
            (Weekdays::MONDAY << 1, 0, 1440),
        ]);
        assert_eq!(
            eval(&two_days, at(2025, 6, 9, 12, 0)),
            allowed(at(2025, 6, 11, 0, 0))
        );
        assert_eq!(
            eval(&two_days, at(2025, 6, 11, 0, 0)),
            closed(at(2025, 6, 16, 0, 0))
        );
        // A crossing window chained into the next day's window.
        let chained = weekly(&[
            (Weekdays::ALL.0, 20 * 60, 6 * 60),
            (Weekdays::ALL.0, 6 * 60, 8 * 60),
        ]);
        assert_eq!(
            eval(&chained, at(2025, 6, 9, 21, 0)),
            allowed(at(2025, 6, 10, 8, 0))
        );
    }

    #[test]
    fn validity_range_bounds_the_schedule() {
        let mut s = weekly(&[(Weekdays::ALL.0, 8 * 60, 18 * 60)]);
        let from = at(2025, 6, 10, 12, 0);
        let to = at(2025, 6, 12, 9, 0);
        s.not_before = Some(from);
        s.not_after = Some(to);
        assert_eq!(s.validate(), Ok(()));
        assert_eq!(eval(&s, from - 1), Decision::NotYetValid { from });
        assert_eq!(eval(&s, from), allowed(at(2025, 6, 10, 18, 0)));
        assert_eq!(
            eval(&s, at(2025, 6, 11, 20, 0)),
            closed(at(2025, 6, 12, 8, 0))
        );
        assert_eq!(eval(&s, at(2025, 6, 12, 8, 30)), allowed(to));
        assert_eq!(eval(&s, to), Decision::Expired { at: to });
        // The next opening would be at or after the end: never again.
        s.not_after = Some(at(2025, 6, 12, 8, 0));
        assert_eq!(
            eval(&s, at(2025, 6, 11, 20, 0)),
            Decision::OutOfSchedule { next_allowed: None }
        );
        let mut always = Schedule::always();
        always.not_after = Some(to);
        assert_eq!(eval(&always, from), allowed(to));
    }

    #[test]
    fn no_windows_never_opens() {
        let never = weekly(&[]);
        assert_eq!(never.validate(), Ok(()));
        assert_eq!(
            eval(&never, 0),
            Decision::OutOfSchedule { next_allowed: None }
        );
    }

    #[test]
    fn next_change_names_the_next_instant_the_answer_differs() {
        assert_eq!(allowed(5).next_change(), Some(5));
        assert_eq!(Decision::Allowed { until: None }.next_change(), None);
        assert_eq!(closed(7).next_change(), Some(7));
        assert_eq!(
            Decision::OutOfSchedule { next_allowed: None }.next_change(),
            None
        );
        assert_eq!(Decision::NotYetValid { from: 9 }.next_change(), Some(9));
        assert_eq!(Decision::Expired { at: 9 }.next_change(), None);
    }

    #[test]
    fn validate_names_the_broken_window() {
        let ok = Window {
            days: Weekdays::ALL,
            start_minute: 0,
            end_minute: 1440,
        };
        let check = |w: Window| {
            Schedule {
                windows: vec![ok, w],
                not_before: None,
                not_after: None,
            }
            .validate()
        };
        let index = 1;
        assert_eq!(
            check(Window {
                start_minute: 1440,
                ..ok
            }),
            Err(ScheduleError::StartOutOfRange { index })
        );
        assert_eq!(
            check(Window {
                end_minute: 0,
                ..ok
            }),
            Err(ScheduleError::EndOutOfRange { index })
        );
        assert_eq!(
            check(Window {
                end_minute: 1441,
                ..ok
            }),
            Err(ScheduleError::EndOutOfRange { index })
        );
        assert_eq!(
            check(Window {
                start_minute: 600,
                end_minute: 600,
                ..ok
            }),
            Err(ScheduleError::EmptyWindow { index })
        );
        assert_eq!(
            check(Window {
                days: Weekdays(0),
                ..ok
            }),
            Err(ScheduleError::BadDays { index })
        );
        assert_eq!(
            check(Window {
                days: Weekdays(0xff),
                ..ok
            }),
            Err(ScheduleError::BadDays { index })
        );
        let range = |from, to| {
            Schedule {
                windows: vec![],
                not_before: Some(from),
                not_after: Some(to),
            }
            .validate()
        };
        assert_eq!(range(5, 5), Err(ScheduleError::EmptyRange));
        assert_eq!(range(5, 6), Ok(()));
    }

    #[test]
    fn unvalidated_windows_follow_the_predicate() {
        // Minutes past the end of the day clamp: a start of 2000 never opens, an end of 2000
        // means the end of the day.
        let s = weekly(&[(Weekdays::ALL.0, 2000, 2100), (Weekdays::MONDAY, 600, 2000)]);
        assert_eq!(
            eval(&s, at(2025, 6, 9, 12, 0)),
            allowed(at(2025, 6, 10, 0, 0))
        );
        assert_eq!(
            eval(&s, at(2025, 6, 10, 12, 0)),
            closed(at(2025, 6, 16, 10, 0))
        );
        let empty_days = weekly(&[(0, 0, 1440), (0x80, 0, 1440)]);
        assert_eq!(
            eval(&empty_days, 0),
            Decision::OutOfSchedule { next_allowed: None }
        );
        let zero = weekly(&[(Weekdays::ALL.0, 600, 600)]);
        assert_eq!(
            eval(&zero, at(2025, 6, 9, 12, 0)),
            Decision::Allowed { until: None }
        );
    }
}
