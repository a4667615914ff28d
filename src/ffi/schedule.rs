//! Key Schedules across the boundary: the schedule record, the decision enum, and the
//! `DoorSchedule` object that answers "open now? until when? opens next when?".

use std::sync::Arc;
use std::time::SystemTime;

use door_protocol::{Decision, Schedule, Weekdays, Window};

use super::cancel::{until_cancelled, Cancellation};
use super::time::{from_unix, now, to_unix};
use super::DoorError;
use crate::access::ZonedSchedule;
use crate::live::LiveToken;

#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Weekday {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

impl Weekday {
    pub const ALL: [Weekday; 7] = [
        Weekday::Monday,
        Weekday::Tuesday,
        Weekday::Wednesday,
        Weekday::Thursday,
        Weekday::Friday,
        Weekday::Saturday,
        Weekday::Sunday,
    ];
}

/// One weekly window in the property's local time. `end_minute <= start_minute` crosses
/// midnight ("22:00-02:00" is 1320..120, and `days` names the day it starts on).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ScheduleWindow {
    pub days: Vec<Weekday>,
    /// Minutes after local midnight, 0..1440.
    pub start_minute: u16,
    /// Minutes after local midnight, 1..=1440.
    pub end_minute: u16,
}

/// A door's Key Schedule. No windows: the door never opens under it. 24/7 is one window of
/// every day from 0 to 1440.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct KeySchedule {
    pub windows: Vec<ScheduleWindow>,
    pub not_before: Option<SystemTime>,
    pub not_after: Option<SystemTime>,
}

/// Whether a door opens at an instant, and when that changes.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum AccessDecision {
    /// Open; closes at `until` (never, if absent).
    Allowed { until: Option<SystemTime> },
    /// "Out of Schedule": opens next at `next_allowed` (never again, if absent).
    OutOfSchedule { next_allowed: Option<SystemTime> },
    /// The grant starts at `from`.
    NotYetValid { from: SystemTime },
    /// The grant ended at `at`.
    Expired { at: SystemTime },
}

impl From<Decision> for AccessDecision {
    fn from(d: Decision) -> AccessDecision {
        match d {
            Decision::Allowed { until } => AccessDecision::Allowed {
                until: until.map(from_unix),
            },
            Decision::OutOfSchedule { next_allowed } => AccessDecision::OutOfSchedule {
                next_allowed: next_allowed.map(from_unix),
            },
            Decision::NotYetValid { from } => AccessDecision::NotYetValid {
                from: from_unix(from),
            },
            Decision::Expired { at } => AccessDecision::Expired { at: from_unix(at) },
        }
    }
}

impl KeySchedule {
    pub(crate) fn to_protocol(&self) -> Result<Schedule, DoorError> {
        let windows = self
            .windows
            .iter()
            .map(|w| Window {
                days: Weekdays(w.days.iter().fold(0u8, |bits, d| bits | 1 << (*d as u8))),
                start_minute: w.start_minute,
                end_minute: w.end_minute,
            })
            .collect();
        Ok(Schedule {
            windows,
            not_before: self
                .not_before
                .map(|t| to_unix(t, "not_before"))
                .transpose()?,
            not_after: self
                .not_after
                .map(|t| to_unix(t, "not_after"))
                .transpose()?,
        })
    }
}

/// A Key Schedule bound to its property's IANA time zone, ready to answer quickly.
#[derive(uniffi::Object)]
pub struct DoorSchedule {
    inner: ZonedSchedule,
    _live: LiveToken,
}

#[uniffi::export(async_runtime = "tokio")]
impl DoorSchedule {
    /// Fails with `InvalidInput` naming the field for a malformed window or range, or an
    /// unknown time zone.
    #[uniffi::constructor]
    pub fn new(schedule: KeySchedule, time_zone: String) -> Result<Arc<DoorSchedule>, DoorError> {
        let inner = ZonedSchedule::new(schedule.to_protocol()?, &time_zone, now())?;
        Ok(Arc::new(DoorSchedule {
            inner,
            _live: LiveToken::new(),
        }))
    }

    pub fn time_zone(&self) -> String {
        self.inner.zone().to_owned()
    }

    pub fn decision_now(&self) -> AccessDecision {
        self.inner.decision_at(now()).into()
    }

    pub fn decision_at(&self, at: SystemTime) -> Result<AccessDecision, DoorError> {
        Ok(self.inner.decision_at(to_unix(at, "at")?).into())
    }

    /// Resolves with the new decision once the current one changes (a window opens or
    /// closes, the grant starts or ends), or with the current decision after `max_wait_ms`.
    /// Cancelling the caller's coroutine cancels the wait; from Swift, pass a
    /// `cancellation`, which makes the wait resolve at once with the decision now.
    #[uniffi::method(default(cancellation = None))]
    pub async fn wait_for_change(
        &self,
        max_wait_ms: u64,
        cancellation: Option<Arc<Cancellation>>,
    ) -> AccessDecision {
        let start = now();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(max_wait_ms);
        let wake = match self.inner.decision_at(start).next_change() {
            Some(at) => {
                let secs = u64::try_from(at - start).unwrap_or(0);
                deadline.min(tokio::time::Instant::now() + std::time::Duration::from_secs(secs))
            }
            None => deadline,
        };
        until_cancelled(cancellation, tokio::time::sleep_until(wake), || ()).await;
        self.decision_now()
    }
}
