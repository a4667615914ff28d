//! Access documents: one device's rights (doors, schedules, validity, iteration), signed by
//! the property's issuer key, checked offline by a lock and cached by the phone.
//!
//! The property's zone rules travel signed inside the document, so a lock evaluates
//! schedules on its own clock without an IANA database. The encoding (CDDL) and the
//! verification steps are specified in docs/PROTOCOL.md.

use alloc::vec::Vec;
use core::fmt;

use crate::cbor::{At, Keys, Malformed, Problem, Reader, Writer};
use crate::cose::{self, OpenError};
use crate::ids::Id;
use crate::keys::{IssuerKey, IssuerKeys, KeyId};
use crate::revocation::RevocationList;
use crate::schedule::{self, Decision, Schedule, ScheduleError, Weekdays, Window};
use crate::zone::{Transition, ZoneError, ZoneRules};
use crate::UnixTime;

/// COSE content type of access documents (protected header label 3).
pub const ACCESS_CONTENT_TYPE: &str = "application/door-access+cbor";
/// The payload version this implementation reads and writes.
pub const ACCESS_VERSION: u64 = 1;
/// Most door grants in one document (a guest gets one per door; a resident rarely has more
/// than a dozen doors).
pub const MAX_GRANTS: usize = 64;
/// Most weekly windows in one grant's schedule.
pub const MAX_WINDOWS: usize = 32;
/// Most zone transitions in one document: the zone module's own cap. The document size cap
/// binds first (about 1,500 transitions would not fit in 16 KiB).
pub const MAX_TRANSITIONS: usize = ZoneRules::MAX_TRANSITIONS;

/// One device's access rights, as the issuer signs them.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct AccessDocument {
    /// Always [`ACCESS_VERSION`].
    pub version: u64,
    /// Names this credential; what revocation documents list.
    pub credential_id: Id,
    pub person_id: Id,
    /// The device's P-256 public key, SEC1 compressed: the key the phone proves it holds.
    pub device_key: [u8; 33],
    pub grants: Vec<DoorGrant>,
    /// First instant the document is valid (inclusive).
    pub not_before: UnixTime,
    /// First instant the document is no longer valid (exclusive).
    pub not_after: UnixTime,
    pub issued_at: UnixTime,
    /// Grows each time the issuer re-issues this person's rights; lets a verifier prefer the
    /// newest document it holds.
    pub access_iteration: u64,
    /// Whether the holder may invite guests to these doors.
    pub may_share: bool,
    /// The property's UTC offsets over the validity period.
    pub zone: ZoneRules,
}

/// The right to open one door, on a schedule.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct DoorGrant {
    pub door_id: Id,
    pub schedule: Schedule,
    /// Whether the holder has a doorcode for this door.
    pub doorcode: bool,
}

/// Why an access document does not let its holder through this door now.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum AccessError {
    /// The signature does not verify under the issuer key its kid names.
    BadSignature,
    /// The kid names no issuer key this verifier trusts.
    UnknownIssuerKey { kid: KeyId },
    /// The document grants nothing for this door.
    WrongDoor,
    /// The document is not valid before `from`.
    NotYetValid { from: UnixTime },
    /// The document stopped being valid at `at`.
    Expired { at: UnixTime },
    /// The credential is on the revocation list.
    Revoked,
    /// The bytes are not a well-formed access document.
    Malformed(Malformed),
}

impl From<OpenError> for AccessError {
    fn from(e: OpenError) -> AccessError {
        match e {
            OpenError::BadSignature => AccessError::BadSignature,
            OpenError::UnknownIssuerKey { kid } => AccessError::UnknownIssuerKey { kid },
            OpenError::Malformed(m) => AccessError::Malformed(m),
        }
    }
}

impl From<Malformed> for AccessError {
    fn from(m: Malformed) -> AccessError {
        AccessError::Malformed(m)
    }
}

impl fmt::Display for AccessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccessError::BadSignature => f.write_str("access document signature does not verify"),
            AccessError::UnknownIssuerKey { kid } => write!(f, "unknown issuer key {kid}"),
            AccessError::WrongDoor => f.write_str("access document does not grant this door"),
            AccessError::NotYetValid { from } => write!(f, "access document valid from {from}"),
            AccessError::Expired { at } => write!(f, "access document expired at {at}"),
            AccessError::Revoked => f.write_str("credential revoked"),
            AccessError::Malformed(m) => write!(f, "malformed access document: {m}"),
        }
    }
}

impl core::error::Error for AccessError {}

// Map keys (docs/PROTOCOL.md has the CDDL).
mod key {
    pub const VERSION: u64 = 0;
    pub const CREDENTIAL_ID: u64 = 1;
    pub const PERSON_ID: u64 = 2;
    pub const DEVICE_KEY: u64 = 3;
    pub const GRANTS: u64 = 4;
    pub const NOT_BEFORE: u64 = 5;
    pub const NOT_AFTER: u64 = 6;
    pub const ISSUED_AT: u64 = 7;
    pub const ACCESS_ITERATION: u64 = 8;
    pub const MAY_SHARE: u64 = 9;
    pub const ZONE: u64 = 10;

    pub const GRANT_DOOR_ID: u64 = 0;
    pub const GRANT_SCHEDULE: u64 = 1;
    pub const GRANT_DOORCODE: u64 = 2;

    pub const SCHEDULE_WINDOWS: u64 = 0;
    pub const SCHEDULE_NOT_BEFORE: u64 = 1;
    pub const SCHEDULE_NOT_AFTER: u64 = 2;

    pub const ZONE_INITIAL_OFFSET: u64 = 0;
    pub const ZONE_TRANSITIONS: u64 = 1;
}

impl AccessDocument {
    /// The grants for `door_id`: one per key that gives the door, each with its own schedule.
    pub fn grants_for(&self, door_id: Id) -> impl Iterator<Item = &DoorGrant> {
        self.grants.iter().filter(move |g| g.door_id == door_id)
    }

    /// Whether the document grants `door_id` at all.
    pub fn has_door(&self, door_id: Id) -> bool {
        self.grants_for(door_id).next().is_some()
    }

    /// Checks every rule a verifier applies to a decoded document: version, limits, schedule and zone invariants, a non-empty validity period and a device key
    /// that is a point on P-256.
    pub fn validate(&self) -> Result<(), Malformed> {
        if self.version != ACCESS_VERSION {
            return Err(Malformed::new("version", Problem::Unsupported));
        }
        if self.grants.len() > MAX_GRANTS {
            return Err(Malformed::new("grants", Problem::TooMany));
        }
        for g in &self.grants {
            if g.schedule.windows.len() > MAX_WINDOWS {
                return Err(Malformed::new("grants.schedule.windows", Problem::TooMany));
            }
            g.schedule.validate().map_err(schedule_malformed)?;
        }
        if self.not_after <= self.not_before {
            return Err(Malformed::new("not_after", Problem::OutOfRange));
        }
        self.zone.validate().map_err(zone_malformed)?;
        if p256::PublicKey::from_sec1_bytes(&self.device_key).is_err() {
            return Err(Malformed::new("device_key", Problem::NotOnCurve));
        }
        Ok(())
    }

    /// The deterministic CBOR payload, after [`AccessDocument::validate`].
    pub fn to_cbor(&self) -> Result<Vec<u8>, Malformed> {
        self.validate()?;
        Ok(self.encode())
    }

    fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.map(11);
        w.uint(key::VERSION);
        w.uint(self.version);
        w.uint(key::CREDENTIAL_ID);
        w.bytes(&self.credential_id.0);
        w.uint(key::PERSON_ID);
        w.bytes(&self.person_id.0);
        w.uint(key::DEVICE_KEY);
        w.bytes(&self.device_key);
        w.uint(key::GRANTS);
        w.array(self.grants.len());
        for g in &self.grants {
            encode_grant(&mut w, g);
        }
        w.uint(key::NOT_BEFORE);
        w.int(self.not_before);
        w.uint(key::NOT_AFTER);
        w.int(self.not_after);
        w.uint(key::ISSUED_AT);
        w.int(self.issued_at);
        w.uint(key::ACCESS_ITERATION);
        w.uint(self.access_iteration);
        w.uint(key::MAY_SHARE);
        w.bool(self.may_share);
        w.uint(key::ZONE);
        encode_zone(&mut w, &self.zone);
        w.into_vec()
    }

    /// Parses a payload: deterministic CBOR only, every key known, every rule of
    /// [`AccessDocument::validate`] met.
    pub fn from_cbor(bytes: &[u8]) -> Result<AccessDocument, Malformed> {
        let mut r = Reader::new(bytes);
        let doc = decode_document(&mut r)?;
        r.finish().at("payload")?;
        doc.validate()?;
        // The reader already refuses every non-deterministic form it meets; comparing with a
        // fresh encoding makes "one document, one byte string" hold even if a future field
        // slipped past it.
        if doc.encode() != bytes {
            return Err(Malformed::new("payload", Problem::NonCanonical));
        }
        Ok(doc)
    }

    /// Signs the document: the tagged COSE_Sign1 bytes (see [`crate::cose`]).
    pub fn sign(&self, key: &IssuerKey) -> Result<Vec<u8>, Malformed> {
        cose::sign1(key, ACCESS_CONTENT_TYPE, self.to_cbor()?)
    }
}

fn schedule_malformed(e: ScheduleError) -> Malformed {
    let (field, problem) = match e {
        ScheduleError::StartOutOfRange { .. } => {
            ("grants.schedule.windows.start_minute", Problem::OutOfRange)
        }
        ScheduleError::EndOutOfRange { .. } => {
            ("grants.schedule.windows.end_minute", Problem::OutOfRange)
        }
        ScheduleError::EmptyWindow { .. } => ("grants.schedule.windows", Problem::OutOfRange),
        ScheduleError::BadDays { .. } => ("grants.schedule.windows.days", Problem::OutOfRange),
        ScheduleError::EmptyRange => ("grants.schedule.not_after", Problem::OutOfRange),
    };
    Malformed::new(field, problem)
}

fn zone_malformed(e: ZoneError) -> Malformed {
    match e {
        ZoneError::TooManyTransitions => Malformed::new("zone.transitions", Problem::TooMany),
        ZoneError::Unsorted { .. } => Malformed::new("zone.transitions.at", Problem::Unordered),
        ZoneError::OffsetOutOfRange { index: None } => {
            Malformed::new("zone.initial_offset", Problem::OutOfRange)
        }
        ZoneError::OffsetOutOfRange { index: Some(_) } => {
            Malformed::new("zone.transitions.offset", Problem::OutOfRange)
        }
        // Only deriving rules from the IANA database reports these.
        ZoneError::UnknownZone | ZoneError::BadSpan => Malformed::new("zone", Problem::OutOfRange),
    }
}

fn encode_grant(w: &mut Writer, g: &DoorGrant) {
    w.map(3);
    w.uint(key::GRANT_DOOR_ID);
    w.bytes(&g.door_id.0);
    w.uint(key::GRANT_SCHEDULE);
    encode_schedule(w, &g.schedule);
    w.uint(key::GRANT_DOORCODE);
    w.bool(g.doorcode);
}

pub(crate) fn encode_schedule(w: &mut Writer, s: &Schedule) {
    w.map(1 + usize::from(s.not_before.is_some()) + usize::from(s.not_after.is_some()));
    w.uint(key::SCHEDULE_WINDOWS);
    w.array(s.windows.len());
    for win in &s.windows {
        w.array(3);
        w.uint(u64::from(win.days.0));
        w.uint(u64::from(win.start_minute));
        w.uint(u64::from(win.end_minute));
    }
    if let Some(t) = s.not_before {
        w.uint(key::SCHEDULE_NOT_BEFORE);
        w.int(t);
    }
    if let Some(t) = s.not_after {
        w.uint(key::SCHEDULE_NOT_AFTER);
        w.int(t);
    }
}

pub(crate) fn encode_zone(w: &mut Writer, z: &ZoneRules) {
    w.map(2);
    w.uint(key::ZONE_INITIAL_OFFSET);
    w.int(i64::from(z.initial_offset));
    w.uint(key::ZONE_TRANSITIONS);
    w.array(z.transitions.len());
    for t in &z.transitions {
        w.array(2);
        w.int(t.at);
        w.int(i64::from(t.offset));
    }
}

fn decode_document(r: &mut Reader<'_>) -> Result<AccessDocument, Malformed> {
    let n = r.map().at("payload")?;
    let mut keys = Keys::new();
    let mut doc = AccessDocument {
        version: 0,
        credential_id: Id::default(),
        person_id: Id::default(),
        device_key: [0; 33],
        grants: Vec::new(),
        not_before: 0,
        not_after: 0,
        issued_at: 0,
        access_iteration: 0,
        may_share: false,
        zone: ZoneRules::fixed(0),
    };
    for _ in 0..n {
        match keys.next(r).at("payload")? {
            key::VERSION => doc.version = r.uint().at("version")?,
            key::CREDENTIAL_ID => doc.credential_id = Id(r.bytes_fixed().at("credential_id")?),
            key::PERSON_ID => doc.person_id = Id(r.bytes_fixed().at("person_id")?),
            key::DEVICE_KEY => doc.device_key = r.bytes_fixed().at("device_key")?,
            key::GRANTS => {
                let count = r.array(MAX_GRANTS).at("grants")?;
                doc.grants.reserve_exact(count);
                for _ in 0..count {
                    doc.grants.push(decode_grant(r)?);
                }
            }
            key::NOT_BEFORE => doc.not_before = r.int().at("not_before")?,
            key::NOT_AFTER => doc.not_after = r.int().at("not_after")?,
            key::ISSUED_AT => doc.issued_at = r.int().at("issued_at")?,
            key::ACCESS_ITERATION => doc.access_iteration = r.uint().at("access_iteration")?,
            key::MAY_SHARE => doc.may_share = r.bool().at("may_share")?,
            key::ZONE => doc.zone = decode_zone(r)?,
            key => return Err(Malformed::new("payload", Problem::UnknownKey { key })),
        }
    }
    keys.require(&[
        key::VERSION,
        key::CREDENTIAL_ID,
        key::PERSON_ID,
        key::DEVICE_KEY,
        key::GRANTS,
        key::NOT_BEFORE,
        key::NOT_AFTER,
        key::ISSUED_AT,
        key::ACCESS_ITERATION,
        key::MAY_SHARE,
        key::ZONE,
    ])
    .at("payload")?;
    Ok(doc)
}

fn decode_grant(r: &mut Reader<'_>) -> Result<DoorGrant, Malformed> {
    let n = r.map().at("grants")?;
    let mut keys = Keys::new();
    let mut grant = DoorGrant {
        door_id: Id::default(),
        schedule: Schedule {
            windows: Vec::new(),
            not_before: None,
            not_after: None,
        },
        doorcode: false,
    };
    for _ in 0..n {
        match keys.next(r).at("grants")? {
            key::GRANT_DOOR_ID => grant.door_id = Id(r.bytes_fixed().at("grants.door_id")?),
            key::GRANT_SCHEDULE => grant.schedule = decode_schedule(r)?,
            key::GRANT_DOORCODE => grant.doorcode = r.bool().at("grants.doorcode")?,
            key => return Err(Malformed::new("grants", Problem::UnknownKey { key })),
        }
    }
    keys.require(&[key::GRANT_DOOR_ID, key::GRANT_SCHEDULE, key::GRANT_DOORCODE])
        .at("grants")?;
    Ok(grant)
}

pub(crate) fn decode_schedule(r: &mut Reader<'_>) -> Result<Schedule, Malformed> {
    let n = r.map().at("grants.schedule")?;
    let mut keys = Keys::new();
    let mut s = Schedule {
        windows: Vec::new(),
        not_before: None,
        not_after: None,
    };
    for _ in 0..n {
        match keys.next(r).at("grants.schedule")? {
            key::SCHEDULE_WINDOWS => {
                let count = r.array(MAX_WINDOWS).at("grants.schedule.windows")?;
                s.windows.reserve_exact(count);
                for _ in 0..count {
                    s.windows.push(decode_window(r)?);
                }
            }
            key::SCHEDULE_NOT_BEFORE => {
                s.not_before = Some(r.int().at("grants.schedule.not_before")?)
            }
            key::SCHEDULE_NOT_AFTER => s.not_after = Some(r.int().at("grants.schedule.not_after")?),
            key => {
                return Err(Malformed::new(
                    "grants.schedule",
                    Problem::UnknownKey { key },
                ))
            }
        }
    }
    keys.require(&[key::SCHEDULE_WINDOWS])
        .at("grants.schedule")?;
    Ok(s)
}

fn decode_window(r: &mut Reader<'_>) -> Result<Window, Malformed> {
    if r.array(3).at("grants.schedule.windows")? != 3 {
        return Err(Malformed::new(
            "grants.schedule.windows",
            Problem::WrongType,
        ));
    }
    // Narrowing first; the ranges within the narrowed types are checked by Schedule::validate.
    let days = u8::try_from(r.uint().at("grants.schedule.windows.days")?)
        .map_err(|_| Malformed::new("grants.schedule.windows.days", Problem::OutOfRange))?;
    let start_minute = u16::try_from(r.uint().at("grants.schedule.windows.start_minute")?)
        .map_err(|_| Malformed::new("grants.schedule.windows.start_minute", Problem::OutOfRange))?;
    let end_minute = u16::try_from(r.uint().at("grants.schedule.windows.end_minute")?)
        .map_err(|_| Malformed::new("grants.schedule.windows.end_minute", Problem::OutOfRange))?;
    Ok(Window {
        days: Weekdays(days),
        start_minute,
        end_minute,
    })
}

pub(crate) fn decode_zone(r: &mut Reader<'_>) -> Result<ZoneRules, Malformed> {
    let n = r.map().at("zone")?;
    let mut keys = Keys::new();
    let mut z = ZoneRules::fixed(0);
    for _ in 0..n {
        match keys.next(r).at("zone")? {
            key::ZONE_INITIAL_OFFSET => z.initial_offset = offset(r, "zone.initial_offset")?,
            key::ZONE_TRANSITIONS => {
                let count = r.array(MAX_TRANSITIONS).at("zone.transitions")?;
                z.transitions.reserve_exact(count);
                for _ in 0..count {
                    if r.array(2).at("zone.transitions")? != 2 {
                        return Err(Malformed::new("zone.transitions", Problem::WrongType));
                    }
                    let at = r.int().at("zone.transitions.at")?;
                    let offset = offset(r, "zone.transitions.offset")?;
                    z.transitions.push(Transition { at, offset });
                }
            }
            key => return Err(Malformed::new("zone", Problem::UnknownKey { key })),
        }
    }
    keys.require(&[key::ZONE_INITIAL_OFFSET, key::ZONE_TRANSITIONS])
        .at("zone")?;
    Ok(z)
}

fn offset(r: &mut Reader<'_>, field: &'static str) -> Result<i32, Malformed> {
    i32::try_from(r.int().at(field)?).map_err(|_| Malformed::new(field, Problem::OutOfRange))
}

/// An access document whose signature and structure have been checked.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct VerifiedAccess {
    document: AccessDocument,
    kid: KeyId,
}

impl VerifiedAccess {
    pub fn document(&self) -> &AccessDocument {
        &self.document
    }

    pub fn into_document(self) -> AccessDocument {
        self.document
    }

    /// The issuer key that signed it.
    pub fn kid(&self) -> KeyId {
        self.kid
    }

    /// The checks [`verify_access`] runs after [`decode_access`]: the door
    /// ([`AccessError::WrongDoor`]), the validity period ([`AccessError::NotYetValid`],
    /// [`AccessError::Expired`]) and the revocation list ([`AccessError::Revoked`]), in that
    /// order. Separate so that a lock which must name the credential in its audit record even
    /// when refusing it decodes once.
    pub fn check(
        &self,
        door_id: Id,
        now: UnixTime,
        revocations: &RevocationList,
    ) -> Result<(), AccessError> {
        let doc = &self.document;
        if !doc.has_door(door_id) {
            return Err(AccessError::WrongDoor);
        }
        if now < doc.not_before {
            return Err(AccessError::NotYetValid {
                from: doc.not_before,
            });
        }
        if now >= doc.not_after {
            return Err(AccessError::Expired { at: doc.not_after });
        }
        if revocations.is_revoked(doc.credential_id, now) {
            return Err(AccessError::Revoked);
        }
        Ok(())
    }

    /// May the holder open `door_id` at `now`, and when does that change? `None` when the
    /// document has no grant for the door.
    ///
    /// Each grant's schedule is evaluated with the document's zone rules and with its validity
    /// range narrowed to the document's own (both apply: before the document's `not_before`
    /// the answer is `NotYetValid`, from its `not_after` on `Expired`, and an opening at or
    /// after the document's end is reported as never). Several grants for the door (one per
    /// key) open it whenever one of them does ([`schedule::evaluate_any`]).
    pub fn decision(&self, door_id: Id, now: UnixTime) -> Option<Decision> {
        let doc = &self.document;
        let narrowed: Vec<Schedule> = doc
            .grants_for(door_id)
            .map(|grant| Schedule {
                windows: grant.schedule.windows.clone(),
                not_before: Some(
                    grant
                        .schedule
                        .not_before
                        .map_or(doc.not_before, |t| t.max(doc.not_before)),
                ),
                not_after: Some(
                    grant
                        .schedule
                        .not_after
                        .map_or(doc.not_after, |t| t.min(doc.not_after)),
                ),
            })
            .collect();
        if narrowed.is_empty() {
            return None;
        }
        Some(schedule::evaluate_any(&narrowed, &doc.zone, now))
    }
}

/// Checks an access document's signature and structure, without a door or a time: what the
/// phone does before caching a document it was given.
///
/// Steps: size and COSE frame, then the kid, then the signature (see [`cose::open1`]), then
/// the payload ([`AccessDocument::from_cbor`]).
pub fn decode_access(bytes: &[u8], keys: &IssuerKeys) -> Result<VerifiedAccess, AccessError> {
    let opened = cose::open1(bytes, ACCESS_CONTENT_TYPE, keys)?;
    let document = AccessDocument::from_cbor(opened.payload)?;
    Ok(VerifiedAccess {
        document,
        kid: opened.kid,
    })
}

/// [`decode_access`] of bytes whose signature by issuer key `kid` the caller verified before
/// (the lock's cache of verified documents, `crate::unlock::verified`, which names them by their
/// SHA-256): the frame and the document are checked again, the signature is not.
pub(crate) fn decode_access_verified_before(
    bytes: &[u8],
    kid: KeyId,
) -> Result<VerifiedAccess, AccessError> {
    let payload = cose::payload_unverified(bytes, ACCESS_CONTENT_TYPE)?;
    Ok(VerifiedAccess {
        document: AccessDocument::from_cbor(payload)?,
        kid,
    })
}

/// What a lock runs on a presented access document: [`decode_access`], then the door
/// ([`AccessError::WrongDoor`]), the validity period ([`AccessError::NotYetValid`],
/// [`AccessError::Expired`]) and the revocation list ([`AccessError::Revoked`]), in that order.
///
/// The schedule is a separate question ([`VerifiedAccess::decision`]), so that a lock can tell
/// "not yours" from "not now".
pub fn verify_access(
    bytes: &[u8],
    keys: &IssuerKeys,
    door_id: Id,
    now: UnixTime,
    revocations: &RevocationList,
) -> Result<VerifiedAccess, AccessError> {
    let verified = decode_access(bytes, keys)?;
    verified.check(door_id, now, revocations)?;
    Ok(verified)
}
