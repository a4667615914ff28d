//! The person's doors as the phone caches them: what the server said, checked against the
//! signed access documents, which are the facts the lock will decide from.

use base64::Engine;
use door_protocol::access::decode_access;
use door_protocol::keys::{IssuerKeys, IssuerPublicKey};
use door_protocol::schedule::evaluate_any;
use door_protocol::{Decision, Id, Schedule, Transition, UnixTime, Weekdays, Window, ZoneRules};
use serde::{Deserialize, Serialize};

use crate::api::wire::{MyDoor, MyDoors};

/// One door in the cache. The schedule and validity are the ones signed in the access
/// document, not the server's JSON summary of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedDoor {
    /// Door, lock and credential ids as 32 hex digits.
    pub id: String,
    pub name: String,
    pub online: bool,
    pub keypad: bool,
    pub lock_id: String,
    pub lock_public_key: Vec<u8>,
    pub doorcode: Option<String>,
    pub may_share: bool,
    pub credential_id: String,
    /// Kept in a column of its own by the store.
    #[serde(skip)]
    pub document: Vec<u8>,
    pub document_not_before: UnixTime,
    pub document_not_after: UnixTime,
    /// (weekday bits, start minute, end minute) per window.
    pub windows: Vec<(u8, u16, u16)>,
    pub schedule_not_before: Option<UnixTime>,
    pub schedule_not_after: Option<UnixTime>,
    /// The schedules of the door's other grants (one per further key that gives it), in the
    /// document's order; the door opens when any grant's schedule allows. Absent in caches
    /// written before documents could hold several grants per door.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub more_schedules: Vec<CachedSchedule>,
    /// The property zone's offsets as the issuer signed them into the document: the lock
    /// decides from these, so the phone does too.
    pub zone_initial_offset: i32,
    /// (instant, offset from then on) per transition.
    pub zone_transitions: Vec<(UnixTime, i32)>,
}

/// One grant's schedule as the cache keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedSchedule {
    pub windows: Vec<(u8, u16, u16)>,
    pub not_before: Option<UnixTime>,
    pub not_after: Option<UnixTime>,
}

impl CachedSchedule {
    fn of(s: &Schedule) -> CachedSchedule {
        CachedSchedule {
            windows: s
                .windows
                .iter()
                .map(|w| (w.days.0, w.start_minute, w.end_minute))
                .collect(),
            not_before: s.not_before,
            not_after: s.not_after,
        }
    }

    fn schedule(&self) -> Schedule {
        Schedule {
            windows: self
                .windows
                .iter()
                .map(|&(days, start_minute, end_minute)| Window {
                    days: Weekdays(days),
                    start_minute,
                    end_minute,
                })
                .collect(),
            not_before: self.not_before,
            not_after: self.not_after,
        }
    }
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum DoorsError {
    #[error("door {door}: {problem}")]
    Door { door: String, problem: String },
    #[error("issuer key: {0}")]
    Issuer(String),
}

fn b64(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}

/// Checks every door's document (issuer signature, the door, our device key) before any of
/// it may replace the cache.
pub fn verify(doors: &MyDoors, device_key: &[u8]) -> Result<Vec<CachedDoor>, DoorsError> {
    let keys = issuer_keys(&doors.issuer_public_key)?;
    doors
        .doors
        .iter()
        .map(|d| verify_door(d, &keys, device_key))
        .collect()
}

/// The issuer key the server names, base64 SEC1, as the one key documents may be signed with.
pub fn issuer_keys(issuer_public_key: &str) -> Result<IssuerKeys, DoorsError> {
    let issuer = b64(issuer_public_key)
        .and_then(|k| IssuerPublicKey::from_sec1(&k).ok())
        .ok_or_else(|| DoorsError::Issuer("not a P-256 SEC1 key".into()))?;
    Ok(IssuerKeys::single(issuer))
}

fn verify_door(d: &MyDoor, keys: &IssuerKeys, device_key: &[u8]) -> Result<CachedDoor, DoorsError> {
    let bad = |problem: &str| DoorsError::Door {
        door: d.id.clone(),
        problem: problem.to_owned(),
    };
    let id = Id::from_hex(&d.id).ok_or_else(|| bad("id is not 32 hex digits"))?;
    Id::from_hex(&d.lock_id).ok_or_else(|| bad("lock_id is not 32 hex digits"))?;
    let lock_public_key = b64(&d.lock_public_key)
        .filter(|k| p256::PublicKey::from_sec1_bytes(k).is_ok())
        .ok_or_else(|| bad("lock_public_key is not a P-256 key"))?;
    let document = b64(&d.access_document).ok_or_else(|| bad("access_document is not base64"))?;
    let verified =
        decode_access(&document, keys).map_err(|e| bad(&format!("access document: {e}")))?;
    let doc = verified.document();
    if doc.device_key.as_slice() != device_key {
        return Err(bad("the access document is for another device"));
    }
    let mut grants = doc.grants_for(id).map(|g| CachedSchedule::of(&g.schedule));
    let first = grants
        .next()
        .ok_or_else(|| bad("the access document does not grant this door"))?;
    Ok(CachedDoor {
        id: d.id.clone(),
        name: d.name.clone(),
        online: d.online,
        keypad: d.keypad,
        lock_id: d.lock_id.clone(),
        lock_public_key,
        doorcode: d.doorcode.clone(),
        may_share: d.may_share,
        credential_id: doc.credential_id.to_string(),
        document_not_before: doc.not_before,
        document_not_after: doc.not_after,
        windows: first.windows,
        schedule_not_before: first.not_before,
        schedule_not_after: first.not_after,
        more_schedules: grants.collect(),
        zone_initial_offset: doc.zone.initial_offset,
        zone_transitions: doc
            .zone
            .transitions
            .iter()
            .map(|t| (t.at, t.offset))
            .collect(),
        document,
    })
}

impl CachedDoor {
    /// One schedule per grant (key) for this door, as signed in the document.
    pub fn schedules(&self) -> Vec<Schedule> {
        let first = CachedSchedule {
            windows: self.windows.clone(),
            not_before: self.schedule_not_before,
            not_after: self.schedule_not_after,
        };
        std::iter::once(&first)
            .chain(&self.more_schedules)
            .map(CachedSchedule::schedule)
            .collect()
    }

    pub fn zone(&self) -> ZoneRules {
        ZoneRules {
            initial_offset: self.zone_initial_offset,
            transitions: self
                .zone_transitions
                .iter()
                .map(|&(at, offset)| Transition { at, offset })
                .collect(),
        }
    }

    /// Whether the lock opens at `t`, from the same signed facts it decides from: the
    /// document's validity, then the grant's schedule in the document's zone rules. Unlike the
    /// lock's own answer, "until" and "next allowed" are not cut at the document's end: the
    /// phone renews its document long before then, so a 24/7 door shows no end.
    pub fn decide(&self, t: UnixTime) -> Decision {
        if t < self.document_not_before {
            return Decision::NotYetValid {
                from: self.document_not_before,
            };
        }
        if t >= self.document_not_after {
            return Decision::Expired {
                at: self.document_not_after,
            };
        }
        evaluate_any(&self.schedules(), &self.zone(), t)
    }
}
