//! Decisions for schedules an app builds itself (`DoorSchedule`) in a named IANA zone. The
//! person's own doors decide from the zone rules signed into their documents (`doors`).
//!
//! Zone rules are derived from the IANA database once per zone for a span around the present,
//! so a decision is a plain evaluation; an instant outside that span gets rules of its own.

use door_protocol::schedule::{evaluate, ScheduleError};
use door_protocol::{Decision, Schedule, UnixTime, ZoneRules};

/// How far back and ahead of its creation a [`Zone`] keeps ready-made rules.
const COVER_BEFORE: i64 = 2 * 86_400;
const COVER_AFTER: i64 = 2 * 366 * 86_400;
/// A schedule repeats weekly in local time, so a decision never needs rules further ahead.
const SEARCH_SPAN: i64 = 9 * 86_400;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AccessError {
    #[error("invalid schedule: {0}")]
    Schedule(ScheduleError),
    #[error("unknown time zone {0:?}")]
    UnknownZone(String),
}

/// A property's IANA time zone with its offsets ready for a span around the present.
#[derive(Debug, Clone)]
pub struct Zone {
    name: String,
    rules: ZoneRules,
    covered: (UnixTime, UnixTime),
}

impl Zone {
    pub fn new(name: &str, now: UnixTime) -> Result<Zone, AccessError> {
        let covered = (now - COVER_BEFORE, now + COVER_AFTER);
        let rules = rules_for(name, covered.0, covered.1)?;
        Ok(Zone {
            name: name.to_owned(),
            rules,
            covered,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn decide(&self, schedule: &Schedule, t: UnixTime) -> Decision {
        if t >= self.covered.0 && t + SEARCH_SPAN <= self.covered.1 {
            return evaluate(schedule, &self.rules, t);
        }
        // The name was accepted at construction, so deriving rules again cannot fail; should
        // it ever, the rules already held are the best answer left.
        match rules_for(&self.name, t - COVER_BEFORE, t + SEARCH_SPAN) {
            Ok(rules) => evaluate(schedule, &rules, t),
            Err(_) => evaluate(schedule, &self.rules, t),
        }
    }
}

/// A Key Schedule bound to the property's zone.
#[derive(Debug, Clone)]
pub struct ZonedSchedule {
    schedule: Schedule,
    zone: Zone,
}

impl ZonedSchedule {
    pub fn new(schedule: Schedule, zone: &str, now: UnixTime) -> Result<Self, AccessError> {
        schedule.validate().map_err(AccessError::Schedule)?;
        Ok(ZonedSchedule {
            schedule,
            zone: Zone::new(zone, now)?,
        })
    }

    pub fn zone(&self) -> &str {
        self.zone.name()
    }

    pub fn decision_at(&self, t: UnixTime) -> Decision {
        self.zone.decide(&self.schedule, t)
    }
}

fn rules_for(zone: &str, from: UnixTime, to: UnixTime) -> Result<ZoneRules, AccessError> {
    ZoneRules::from_iana(zone, from, to).map_err(|_| AccessError::UnknownZone(zone.to_owned()))
}
