//! Schedule decisions for the resident: "is this door open to me now, and when does that change?".
//!
//! Zone rules are derived once from the IANA database for a span around the present, so a
//! decision is a plain evaluation; an instant outside that span gets rules of its own.

use door_protocol::schedule::{evaluate, ScheduleError};
use door_protocol::zone::ZoneError;
use door_protocol::{Decision, Schedule, UnixTime, ZoneRules};

/// How far back and ahead of its creation a [`ZonedSchedule`] keeps ready-made zone rules.
const COVER_BEFORE: i64 = 2 * 86_400;
const COVER_AFTER: i64 = 2 * 366 * 86_400;
/// A schedule repeats weekly in local time, so a decision never needs rules further ahead.
const SEARCH_SPAN: i64 = 9 * 86_400;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AccessError {
    #[error("invalid schedule: {0:?}")]
    Schedule(ScheduleError),
    #[error("unknown time zone {0:?}")]
    UnknownZone(String),
}

/// A Key Schedule bound to the property's IANA time zone.
#[derive(Debug, Clone)]
pub struct ZonedSchedule {
    schedule: Schedule,
    zone: String,
    rules: ZoneRules,
    covered: (UnixTime, UnixTime),
}

impl ZonedSchedule {
    pub fn new(schedule: Schedule, zone: &str, now: UnixTime) -> Result<Self, AccessError> {
        schedule.validate().map_err(AccessError::Schedule)?;
        let covered = (now - COVER_BEFORE, now + COVER_AFTER);
        let rules = rules_for(zone, covered.0, covered.1)?;
        Ok(ZonedSchedule {
            schedule,
            zone: zone.to_owned(),
            rules,
            covered,
        })
    }

    pub fn zone(&self) -> &str {
        &self.zone
    }

    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    pub fn decision_at(&self, t: UnixTime) -> Decision {
        if t >= self.covered.0 && t + SEARCH_SPAN <= self.covered.1 {
            return evaluate(&self.schedule, &self.rules, t);
        }
        // The zone name was accepted at construction, so deriving rules again cannot fail;
        // should it ever, the rules already held are the best answer left.
        match rules_for(&self.zone, t - COVER_BEFORE, t + SEARCH_SPAN) {
            Ok(rules) => evaluate(&self.schedule, &rules, t),
            Err(_) => evaluate(&self.schedule, &self.rules, t),
        }
    }
}

fn rules_for(zone: &str, from: UnixTime, to: UnixTime) -> Result<ZoneRules, AccessError> {
    ZoneRules::from_iana(zone, from, to).map_err(|e| match e {
        ZoneError::UnknownZone => AccessError::UnknownZone(zone.to_owned()),
        other => AccessError::UnknownZone(format!("{zone} ({other:?})")),
    })
}
