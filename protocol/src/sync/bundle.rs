//! Sync bundles: everything one offline lock should know, signed by the issuer for that lock.
//!
//! ```text
//! sync-bundle = {
//!   0 => 1,                              ; version
//!   1 => id,                             ; lock_id: the one lock that may apply it
//!   2 => uint,                           ; iteration: >= 1, strictly increasing per lock
//!   3 => uint,                           ; base_iteration: 0 full, else < iteration
//!   4 => unix-time,                      ; issued_at: also a signed time
//!   ? 5 => [+ floor],                    ; ascending person ids
//!   ? 6 => [E: bstr .size 33, ciphertext: bstr],   ; doorcode changes sealed to the lock
//!   7 => audit-ack / null,               ; null: the server holds no record of this lock
//!   ? 8 => unix-time,                    ; issued_floor: documents issued before it are void
//!   ? 9 => keypad-rules,                 ; full bundles only: what doorcodes' schedules mean
//! }
//! floor = [person_id: id, floor: uint, expires_at: unix-time]
//! keypad-rules = { 0 => zone, 1 => [+ schedule] }   ; zone and schedule as in access documents
//! audit-ack = [epoch: bstr .size 8, seq: uint]  ; the server holds every record of the
//!                                               ; lock's audit epoch `epoch` below `seq`
//! ```
//!
//! Revocation is by **floors**, bounded by people: a floor voids every access document of its
//! person whose `access_iteration` is below it, whichever device or credential it names, until
//! `expires_at` (when every such document has expired). A lock keeps one floor per person
//! (at most [`FloorList::CAPACITY`]); a delta raises floors, never lowers them. `issued_floor`
//! voids every document issued before it: what the issuer sends instead of more floors than a
//! lock holds (everyone's phone then fetches new documents). A lock never lowers it.
//!
//! A **full** bundle (`base_iteration` 0)
//! states the lock's whole sync state: its floors, doorcodes and keypad rules replace the lock's. A
//! **delta** applies only on a lock whose sync iteration is exactly `base_iteration`: its
//! floors are raised (or added), its doorcodes are upserted and removed. An absent
//! key 5 or 6 means none (full) or no change (delta), so a delta carrying one floor is
//! under 200 bytes.
//!
//! Doorcodes are the one secret: their changes are deterministic CBOR sealed to the lock's
//! static key (`super::seal`), so only that lock reads them, however many phones carry them.
//!
//! ```text
//! doorcode-changes = { ? 0 => [+ doorcode], ? 1 => [+ id] }  ; added; removed (delta only)
//! doorcode = [person_id: id, code: tstr, expires_at: unix-time / null, schedules: [+ uint]]
//! ```
//!
//! A code is 4 to 10 ASCII digits. `schedules` indexes the keypad rules' schedule table (at
//! most [`MAX_CODE_SCHEDULES`], ascending): the code opens when one of them allows, in the
//! rules' zone, exactly as the holder's access document would over BLE. The table and zone come
//! only in full bundles; a delta's codes index the table the lock already holds.

use alloc::string::String;
use alloc::vec::Vec;

use p256::PublicKey;
use rand_core::CryptoRngCore;
use sha2::{Digest, Sha256};

use crate::access::{decode_schedule, decode_zone, encode_schedule, encode_zone};
use crate::audit::{AuditAck, AuditEpoch};
use crate::cbor::{At, Keys, Malformed, Problem, Reader, Writer};
use crate::cose;
use crate::ids::Id;
use crate::keys::{IssuerKey, IssuerKeys, KeyId, LockPublicKey};
use crate::revocation::{Floor, FloorList};
use crate::schedule::Schedule;
use crate::sync::seal::{self, Binding, TAG_LEN};
use crate::sync::{SyncError, MAX_BUNDLE_SIZE, MAX_DOORCODES};
use crate::unlock::LockConfig;
use crate::zone::ZoneRules;
use crate::UnixTime;

/// COSE content type of sync bundles (protected header label 3).
pub const SYNC_CONTENT_TYPE: &str = "application/door-sync+cbor";
/// The payload version this implementation reads and writes. Version 2: revocation by
/// per-person floors, doorcodes with schedules.
pub const SYNC_VERSION: u64 = 2;
/// Most schedules in a bundle's keypad table (one per distinct key schedule at the door).
pub const MAX_KEYPAD_SCHEDULES: usize = 64;
/// Most schedules one doorcode refers to (one per key that gives its holder the door).
pub const MAX_CODE_SCHEDULES: usize = 8;

/// One person's keypad code at one lock.
#[derive(Clone, PartialEq, Eq, Debug, Hash)]
pub struct Doorcode {
    pub person_id: Id,
    /// 4 to 10 ASCII digits.
    pub code: String,
    /// The code stops working from here (normally the holder's access ends); `None`: until a
    /// bundle removes it.
    pub expires_at: Option<UnixTime>,
    /// Indexes into the keypad rules' schedules, ascending: the code opens when one allows.
    pub schedules: Vec<u8>,
}

/// What the keypad needs to judge doorcodes' schedules on the lock's clock: the property's
/// zone rules and the distinct schedules doorcodes refer to.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct KeypadRules {
    pub zone: ZoneRules,
    pub schedules: Vec<Schedule>,
}

impl KeypadRules {
    /// The rules alone, in the bundle's encoding: how a lock persists them.
    pub fn to_cbor(&self) -> Vec<u8> {
        let mut w = Writer::new();
        encode_keypad(&mut w, self);
        w.into_vec()
    }

    /// Reads what [`KeypadRules::to_cbor`] wrote.
    pub fn from_cbor(bytes: &[u8]) -> Result<KeypadRules, Malformed> {
        let mut r = Reader::new(bytes);
        let rules = decode_keypad(&mut r)?;
        r.finish().at("keypad")?;
        Ok(rules)
    }
}

fn encode_keypad(w: &mut Writer, k: &KeypadRules) {
    w.map(2);
    w.uint(key::KEYPAD_ZONE);
    encode_zone(w, &k.zone);
    w.uint(key::KEYPAD_SCHEDULES);
    w.array(k.schedules.len());
    for sch in &k.schedules {
        encode_schedule(w, sch);
    }
}

impl Doorcode {
    /// Whether `code` has the shape of a doorcode: 4 to 10 ASCII digits.
    pub fn is_valid_code(code: &str) -> bool {
        (4..=10).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_digit())
    }

    /// Whether the code still works at `now`.
    pub fn is_live(&self, now: UnixTime) -> bool {
        self.expires_at.is_none_or(|t| now < t)
    }
}

/// A bundle's doorcode changes. Full bundle: `added` is the lock's whole list and `removed` is
/// empty. Delta: `added` are new or changed codes (one per person), `removed` names people
/// whose codes go.
#[derive(Clone, Default, PartialEq, Eq, Debug)]
pub struct DoorcodeChanges {
    pub added: Vec<Doorcode>,
    pub removed: Vec<Id>,
}

impl DoorcodeChanges {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty()
    }
}

/// A sync bundle as the issuer builds it, and as a lock reads it once opened.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SyncBundle {
    pub lock_id: Id,
    /// Per lock, strictly increasing, at least 1.
    pub iteration: u64,
    /// 0: a full bundle. Otherwise a delta that applies only on a lock at this iteration;
    /// below `iteration`.
    pub base_iteration: u64,
    /// When the issuer built it; the lock takes it as a signed time.
    pub issued_at: UnixTime,
    /// Full: every person's floor. Delta: floors raised (or added). Any order; the encoding
    /// sorts them by person id.
    pub floors: Vec<Floor>,
    /// Every access document issued before this is void (the lock keeps the highest it saw).
    pub issued_floor: Option<UnixTime>,
    pub doorcodes: DoorcodeChanges,
    /// Full bundles with doorcodes: the zone and schedules the codes refer to. Never in a delta.
    pub keypad: Option<KeypadRules>,
    /// The server holds every audit record of this lock's epoch `epoch` with a seq below
    /// `below` (the latest epoch the server has seen); `None` before it holds any record.
    pub audit_ack: Option<AuditAck>,
}

mod key {
    pub const VERSION: u64 = 0;
    pub const LOCK_ID: u64 = 1;
    pub const ITERATION: u64 = 2;
    pub const BASE_ITERATION: u64 = 3;
    pub const ISSUED_AT: u64 = 4;
    pub const FLOORS: u64 = 5;
    pub const DOORCODES: u64 = 6;
    pub const AUDIT_ACK: u64 = 7;
    pub const ISSUED_FLOOR: u64 = 8;
    pub const KEYPAD: u64 = 9;

    pub const KEYPAD_ZONE: u64 = 0;
    pub const KEYPAD_SCHEDULES: u64 = 1;

    pub const ADDED: u64 = 0;
    pub const REMOVED: u64 = 1;
}

/// The doorcode changes as they travel: E and the ciphertext.
struct Sealed<'a> {
    ephemeral: [u8; 33],
    ciphertext: &'a [u8],
}

impl SyncBundle {
    /// A full bundle replaces the lock's whole sync state.
    pub fn is_full(&self) -> bool {
        self.base_iteration == 0
    }

    fn binding(&self) -> Binding {
        Binding {
            lock_id: self.lock_id,
            iteration: self.iteration,
            base_iteration: self.base_iteration,
        }
    }

    /// Everything a verifier checks without the doorcodes: iterations, floor cap and distinct
    /// people, keypad rules only in full bundles and within their caps.
    fn validate_header(&self) -> Result<(), Malformed> {
        if self.iteration == 0 {
            return Err(Malformed::new("iteration", Problem::OutOfRange));
        }
        if self.base_iteration >= self.iteration {
            return Err(Malformed::new("base_iteration", Problem::OutOfRange));
        }
        if self.floors.len() > FloorList::CAPACITY {
            return Err(Malformed::new("floors", Problem::TooMany));
        }
        distinct(self.floors.iter().map(|e| e.person_id), "floors.person_id")?;
        if let Some(k) = &self.keypad {
            if !self.is_full() {
                return Err(Malformed::new("keypad", Problem::Unsupported));
            }
            if k.schedules.is_empty() || k.schedules.len() > MAX_KEYPAD_SCHEDULES {
                return Err(Malformed::new("keypad.schedules", Problem::TooMany));
            }
            for sch in &k.schedules {
                if sch.windows.len() > crate::access::MAX_WINDOWS {
                    return Err(Malformed::new("keypad.schedules.windows", Problem::TooMany));
                }
                sch.validate()
                    .map_err(|_| Malformed::new("keypad.schedules", Problem::OutOfRange))?;
            }
            k.zone
                .validate()
                .map_err(|_| Malformed::new("keypad.zone", Problem::OutOfRange))?;
        }
        Ok(())
    }

    /// The doorcode rules: caps, code shape, one code per person and one person per code, no
    /// removals in a full bundle, nobody both added and removed.
    fn validate_doorcodes(&self) -> Result<(), Malformed> {
        let d = &self.doorcodes;
        if d.added.len() > MAX_DOORCODES {
            return Err(Malformed::new("doorcodes.added", Problem::TooMany));
        }
        if d.removed.len() > MAX_DOORCODES {
            return Err(Malformed::new("doorcodes.removed", Problem::TooMany));
        }
        if self.is_full() && !d.removed.is_empty() {
            return Err(Malformed::new("doorcodes.removed", Problem::Unsupported));
        }
        if !d.added.iter().all(|c| Doorcode::is_valid_code(&c.code)) {
            return Err(Malformed::new("doorcodes.code", Problem::OutOfRange));
        }
        for c in &d.added {
            if c.schedules.is_empty() || c.schedules.len() > MAX_CODE_SCHEDULES {
                return Err(Malformed::new("doorcodes.schedules", Problem::TooMany));
            }
            if c.schedules.windows(2).any(|w| w[0] >= w[1]) {
                return Err(Malformed::new("doorcodes.schedules", Problem::Unordered));
            }
        }
        // A full bundle's codes must name schedules it carries; a delta's are checked against
        // the lock's table when it applies.
        if self.is_full() && !d.added.is_empty() {
            let table = self.keypad.as_ref().map_or(0, |k| k.schedules.len());
            if d.added
                .iter()
                .any(|c| c.schedules.iter().any(|&i| usize::from(i) >= table))
            {
                return Err(Malformed::new("doorcodes.schedules", Problem::OutOfRange));
            }
        }
        distinct(
            d.added
                .iter()
                .map(|c| c.person_id)
                .chain(d.removed.iter().copied()),
            "doorcodes.person_id",
        )?;
        distinct(d.added.iter().map(|c| c.code.as_str()), "doorcodes.code")
    }

    /// Checks every rule a lock will check, so the issuer never signs a bundle locks refuse.
    pub fn validate(&self) -> Result<(), Malformed> {
        self.validate_header()?;
        self.validate_doorcodes()
    }

    /// Seals the doorcodes to `lock_key` (a fresh ephemeral key from `rng`) and signs the
    /// bundle: the tagged COSE_Sign1 bytes to hand to phones. Fails when a rule of
    /// [`SyncBundle::validate`] is broken or the result would exceed
    /// [`MAX_BUNDLE_SIZE`](crate::sync::MAX_BUNDLE_SIZE).
    pub fn seal_and_sign(
        &self,
        issuer: &IssuerKey,
        lock_key: &LockPublicKey,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Vec<u8>, Malformed> {
        self.validate()?;
        let sealed = (!self.doorcodes.is_empty()).then(|| {
            let plaintext = zeroize::Zeroizing::new(encode_doorcodes(&self.doorcodes));
            seal::seal(lock_key, self.binding(), &plaintext, rng)
        });
        let payload = self.encode(sealed.as_ref().map(|(e, ct)| Sealed {
            ephemeral: *e,
            ciphertext: ct,
        }));
        cose::sign1_with(
            issuer.signing_key(),
            issuer.kid(),
            SYNC_CONTENT_TYPE,
            payload,
            MAX_BUNDLE_SIZE,
        )
    }

    fn encode(&self, sealed: Option<Sealed<'_>>) -> Vec<u8> {
        let mut floors = self.floors.clone();
        floors.sort_unstable_by_key(|e| e.person_id);
        let mut w = Writer::new();
        w.map(
            6 + usize::from(!floors.is_empty())
                + usize::from(sealed.is_some())
                + usize::from(self.issued_floor.is_some())
                + usize::from(self.keypad.is_some()),
        );
        w.uint(key::VERSION);
        w.uint(SYNC_VERSION);
        w.uint(key::LOCK_ID);
        w.bytes(&self.lock_id.0);
        w.uint(key::ITERATION);
        w.uint(self.iteration);
        w.uint(key::BASE_ITERATION);
        w.uint(self.base_iteration);
        w.uint(key::ISSUED_AT);
        w.int(self.issued_at);
        if !floors.is_empty() {
            w.uint(key::FLOORS);
            w.array(floors.len());
            for e in &floors {
                w.array(3);
                w.bytes(&e.person_id.0);
                w.uint(e.floor);
                w.int(e.expires_at);
            }
        }
        if let Some(s) = sealed {
            w.uint(key::DOORCODES);
            w.array(2);
            w.bytes(&s.ephemeral);
            w.bytes(s.ciphertext);
        }
        w.uint(key::AUDIT_ACK);
        match self.audit_ack {
            Some(ack) => {
                w.array(2);
                w.bytes(&ack.epoch.0);
                w.uint(ack.below);
            }
            None => w.null(),
        }
        if let Some(t) = self.issued_floor {
            w.uint(key::ISSUED_FLOOR);
            w.int(t);
        }
        if let Some(k) = &self.keypad {
            w.uint(key::KEYPAD);
            encode_keypad(&mut w, k);
        }
        w.into_vec()
    }
}

/// Fails with `Duplicate` at `field` if `items` repeats a value.
fn distinct<T: Ord>(items: impl Iterator<Item = T>, field: &'static str) -> Result<(), Malformed> {
    let mut all: Vec<T> = items.collect();
    all.sort_unstable();
    if all.windows(2).any(|w| w[0] == w[1]) {
        return Err(Malformed::new(field, Problem::Duplicate));
    }
    Ok(())
}

/// Items must ascend strictly: equal neighbours are duplicates, others out of order. This
/// keeps one encoding per set.
fn ascending<T: Ord>(prev: Option<&T>, next: &T, field: &'static str) -> Result<(), Malformed> {
    match prev.map(|p| p.cmp(next)) {
        Some(core::cmp::Ordering::Equal) => Err(Malformed::new(field, Problem::Duplicate)),
        Some(core::cmp::Ordering::Greater) => Err(Malformed::new(field, Problem::Unordered)),
        _ => Ok(()),
    }
}

fn encode_doorcodes(d: &DoorcodeChanges) -> Vec<u8> {
    let mut added = d.added.clone();
    added.sort_unstable_by_key(|c| c.person_id);
    let mut removed = d.removed.clone();
    removed.sort_unstable();
    let mut w = Writer::new();
    w.map(usize::from(!added.is_empty()) + usize::from(!removed.is_empty()));
    if !added.is_empty() {
        w.uint(key::ADDED);
        w.array(added.len());
        for c in &added {
            w.array(4);
            w.bytes(&c.person_id.0);
            w.text(&c.code);
            match c.expires_at {
                Some(t) => w.int(t),
                None => w.null(),
            }
            w.array(c.schedules.len());
            for &i in &c.schedules {
                w.uint(u64::from(i));
            }
        }
    }
    if !removed.is_empty() {
        w.uint(key::REMOVED);
        w.array(removed.len());
        for id in &removed {
            w.bytes(&id.0);
        }
    }
    w.into_vec()
}

fn decode_doorcodes(bytes: &[u8]) -> Result<DoorcodeChanges, Malformed> {
    let mut r = Reader::new(bytes);
    let n = r.map().at("doorcodes")?;
    let mut keys = Keys::new();
    let mut d = DoorcodeChanges::default();
    for _ in 0..n {
        match keys.next(&mut r).at("doorcodes")? {
            key::ADDED => {
                let count = r.array(MAX_DOORCODES).at("doorcodes.added")?;
                if count == 0 {
                    return Err(Malformed::new("doorcodes.added", Problem::NonCanonical));
                }
                d.added.reserve_exact(count);
                for _ in 0..count {
                    if r.array(4).at("doorcodes.added")? != 4 {
                        return Err(Malformed::new("doorcodes.added", Problem::WrongType));
                    }
                    let person_id = Id(r.bytes_fixed().at("doorcodes.person_id")?);
                    ascending(
                        d.added.last().map(|c| &c.person_id),
                        &person_id,
                        "doorcodes.person_id",
                    )?;
                    let code = r.text().at("doorcodes.code")?;
                    let expires_at = if r.null().at("doorcodes.expires_at")? {
                        None
                    } else {
                        Some(r.int().at("doorcodes.expires_at")?)
                    };
                    let n = r.array(MAX_CODE_SCHEDULES).at("doorcodes.schedules")?;
                    let mut schedules = Vec::with_capacity(n);
                    for _ in 0..n {
                        let i = r.uint().at("doorcodes.schedules")?;
                        schedules.push(u8::try_from(i).map_err(|_| {
                            Malformed::new("doorcodes.schedules", Problem::OutOfRange)
                        })?);
                    }
                    d.added.push(Doorcode {
                        person_id,
                        code: String::from(code),
                        expires_at,
                        schedules,
                    });
                }
            }
            key::REMOVED => {
                let count = r.array(MAX_DOORCODES).at("doorcodes.removed")?;
                if count == 0 {
                    return Err(Malformed::new("doorcodes.removed", Problem::NonCanonical));
                }
                d.removed.reserve_exact(count);
                for _ in 0..count {
                    let id = Id(r.bytes_fixed().at("doorcodes.removed")?);
                    ascending(d.removed.last(), &id, "doorcodes.removed")?;
                    d.removed.push(id);
                }
            }
            key => return Err(Malformed::new("doorcodes", Problem::UnknownKey { key })),
        }
    }
    r.finish().at("doorcodes")?;
    if d.is_empty() {
        // No changes travel as no sealed blob at all: one encoding per bundle.
        return Err(Malformed::new("doorcodes", Problem::NonCanonical));
    }
    Ok(d)
}

/// Parses a payload up to the sealed doorcodes, which it returns unopened.
fn decode_payload(bytes: &[u8]) -> Result<(SyncBundle, Option<Sealed<'_>>), Malformed> {
    let mut r = Reader::new(bytes);
    let n = r.map().at("payload")?;
    let mut keys = Keys::new();
    let mut b = SyncBundle {
        lock_id: Id::default(),
        iteration: 0,
        base_iteration: 0,
        issued_at: 0,
        floors: Vec::new(),
        issued_floor: None,
        doorcodes: DoorcodeChanges::default(),
        keypad: None,
        audit_ack: None,
    };
    let mut sealed = None;
    for _ in 0..n {
        match keys.next(&mut r).at("payload")? {
            key::VERSION => {
                if r.uint().at("version")? != SYNC_VERSION {
                    return Err(Malformed::new("version", Problem::Unsupported));
                }
            }
            key::LOCK_ID => b.lock_id = Id(r.bytes_fixed().at("lock_id")?),
            key::ITERATION => b.iteration = r.uint().at("iteration")?,
            key::BASE_ITERATION => b.base_iteration = r.uint().at("base_iteration")?,
            key::ISSUED_AT => b.issued_at = r.int().at("issued_at")?,
            key::FLOORS => {
                let count = r.array(FloorList::CAPACITY).at("floors")?;
                if count == 0 {
                    return Err(Malformed::new("floors", Problem::NonCanonical));
                }
                b.floors.reserve_exact(count);
                for _ in 0..count {
                    if r.array(3).at("floors")? != 3 {
                        return Err(Malformed::new("floors", Problem::WrongType));
                    }
                    let person_id = Id(r.bytes_fixed().at("floors.person_id")?);
                    ascending(
                        b.floors.last().map(|e| &e.person_id),
                        &person_id,
                        "floors.person_id",
                    )?;
                    let floor = r.uint().at("floors.floor")?;
                    let expires_at = r.int().at("floors.expires_at")?;
                    b.floors.push(Floor {
                        person_id,
                        floor,
                        expires_at,
                    });
                }
            }
            key::DOORCODES => {
                if r.array(2).at("doorcodes")? != 2 {
                    return Err(Malformed::new("doorcodes", Problem::WrongType));
                }
                let ephemeral = r.bytes_fixed::<33>().at("doorcodes.ephemeral")?;
                // On the curve and compressed: one encoding of E, checked before any ECDH.
                if !matches!(ephemeral[0], 2 | 3) || PublicKey::from_sec1_bytes(&ephemeral).is_err()
                {
                    return Err(Malformed::new("doorcodes.ephemeral", Problem::NotOnCurve));
                }
                let ciphertext = r.bytes().at("doorcodes.ciphertext")?;
                if ciphertext.len() <= TAG_LEN {
                    return Err(Malformed::new("doorcodes.ciphertext", Problem::OutOfRange));
                }
                sealed = Some(Sealed {
                    ephemeral,
                    ciphertext,
                });
            }
            key::AUDIT_ACK => b.audit_ack = decode_audit_ack(&mut r)?,
            key::ISSUED_FLOOR => b.issued_floor = Some(r.int().at("issued_floor")?),
            key::KEYPAD => b.keypad = Some(decode_keypad(&mut r)?),
            key => return Err(Malformed::new("payload", Problem::UnknownKey { key })),
        }
    }
    keys.require(&[
        key::VERSION,
        key::LOCK_ID,
        key::ITERATION,
        key::BASE_ITERATION,
        key::ISSUED_AT,
        key::AUDIT_ACK,
    ])
    .at("payload")?;
    r.finish().at("payload")?;
    b.validate_header()?;
    Ok((b, sealed))
}

fn decode_keypad(r: &mut Reader<'_>) -> Result<KeypadRules, Malformed> {
    let n = r.map().at("keypad")?;
    let mut keys = Keys::new();
    let mut rules = KeypadRules {
        zone: ZoneRules::fixed(0),
        schedules: Vec::new(),
    };
    for _ in 0..n {
        match keys.next(r).at("keypad")? {
            key::KEYPAD_ZONE => rules.zone = decode_zone(r)?,
            key::KEYPAD_SCHEDULES => {
                let count = r.array(MAX_KEYPAD_SCHEDULES).at("keypad.schedules")?;
                rules.schedules.reserve_exact(count);
                for _ in 0..count {
                    rules.schedules.push(decode_schedule(r)?);
                }
            }
            key => return Err(Malformed::new("keypad", Problem::UnknownKey { key })),
        }
    }
    keys.require(&[key::KEYPAD_ZONE, key::KEYPAD_SCHEDULES])
        .at("keypad")?;
    Ok(rules)
}

fn decode_audit_ack(r: &mut Reader<'_>) -> Result<Option<AuditAck>, Malformed> {
    if r.null().at("audit_ack")? {
        return Ok(None);
    }
    if r.array(2).at("audit_ack")? != 2 {
        return Err(Malformed::new("audit_ack", Problem::WrongType));
    }
    Ok(Some(AuditAck {
        epoch: AuditEpoch(r.bytes_fixed().at("audit_ack.epoch")?),
        below: r.uint().at("audit_ack.seq")?,
    }))
}

/// What anyone holding the issuer's public key can learn from a bundle without the lock's key:
/// enough for a phone to decide whether to carry it and to offer it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct BundleInfo {
    pub lock_id: Id,
    pub iteration: u64,
    pub base_iteration: u64,
    pub issued_at: UnixTime,
    pub audit_ack: Option<AuditAck>,
    /// Floors it carries.
    pub floors: usize,
    /// Whether it carries sealed doorcode changes.
    pub doorcodes: bool,
    /// SHA-256 of the signed bytes: what a transfer offers.
    pub digest: [u8; 32],
}

/// Checks a bundle's signature and everything but the sealed doorcodes (a phone caching it,
/// the server checking what it built).
pub fn inspect_bundle(bytes: &[u8], issuer_keys: &IssuerKeys) -> Result<BundleInfo, SyncError> {
    let opened = open_frame(bytes, issuer_keys)?;
    let (b, sealed) = decode_payload(opened.payload)?;
    Ok(BundleInfo {
        lock_id: b.lock_id,
        iteration: b.iteration,
        base_iteration: b.base_iteration,
        issued_at: b.issued_at,
        audit_ack: b.audit_ack,
        floors: b.floors.len(),
        doorcodes: sealed.is_some(),
        digest: Sha256::digest(bytes).into(),
    })
}

fn open_frame<'a>(
    bytes: &'a [u8],
    issuer_keys: &IssuerKeys,
) -> Result<cose::Opened<'a>, SyncError> {
    Ok(cose::open1_with(
        bytes,
        SYNC_CONTENT_TYPE,
        MAX_BUNDLE_SIZE,
        |kid| issuer_keys.get(kid).map(|k| *k.verifying_key()),
    )?)
}

/// A bundle whose signature, lock and sealed doorcodes have been checked: the only thing
/// [`LockState::apply_bundle`](crate::unlock::LockState::apply_bundle) takes.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct OpenedBundle {
    bundle: SyncBundle,
    kid: KeyId,
}

impl OpenedBundle {
    /// The bundle, doorcodes in the clear.
    pub fn bundle(&self) -> &SyncBundle {
        &self.bundle
    }

    /// The issuer key that signed it.
    pub fn kid(&self) -> KeyId {
        self.kid
    }
}

/// The lock's check of a bundle, in order: size and frame, issuer key, signature
/// ([`SyncError::Malformed`], [`SyncError::UnknownIssuerKey`], [`SyncError::BadSignature`]);
/// payload ([`SyncError::Malformed`]); lock id ([`SyncError::Foreign`]); doorcodes open with
/// the lock's key ([`SyncError::Undecryptable`]) and are well formed. Whether it applies
/// (iteration, base) is [`LockState::apply_bundle`](crate::unlock::LockState::apply_bundle)'s
/// question.
pub fn open_bundle(bytes: &[u8], config: &LockConfig) -> Result<OpenedBundle, SyncError> {
    let opened = open_frame(bytes, &config.issuer_keys)?;
    let (mut bundle, sealed) = decode_payload(opened.payload)?;
    if bundle.lock_id != config.lock_id {
        return Err(SyncError::Foreign {
            lock_id: bundle.lock_id,
        });
    }
    if let Some(s) = sealed {
        let plaintext = seal::open(&config.key, bundle.binding(), &s.ephemeral, s.ciphertext)
            .ok_or(SyncError::Undecryptable)?;
        bundle.doorcodes = decode_doorcodes(&plaintext)?;
        bundle.validate_doorcodes()?;
        // As for every signed payload: one value, one encoding.
        if encode_doorcodes(&bundle.doorcodes) != *plaintext {
            return Err(SyncError::Malformed(Malformed::new(
                "doorcodes",
                Problem::NonCanonical,
            )));
        }
    }
    Ok(OpenedBundle {
        bundle,
        kid: opened.kid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle() -> SyncBundle {
        SyncBundle {
            lock_id: Id([0x10; 16]),
            iteration: 3,
            base_iteration: 2,
            issued_at: 1_781_524_800,
            floors: alloc::vec![
                Floor {
                    person_id: Id([9; 16]),
                    floor: 3,
                    expires_at: 9,
                },
                Floor {
                    person_id: Id([8; 16]),
                    floor: 1,
                    expires_at: 5,
                },
            ],
            issued_floor: Some(1_781_000_000),
            doorcodes: DoorcodeChanges {
                added: alloc::vec![Doorcode {
                    person_id: Id([7; 16]),
                    code: "2468".into(),
                    expires_at: None,
                    schedules: alloc::vec![0, 2],
                }],
                removed: alloc::vec![Id([6; 16])],
            },
            keypad: None,
            audit_ack: Some(AuditAck {
                epoch: AuditEpoch([0xe0; 8]),
                below: 4,
            }),
        }
    }

    #[test]
    fn payload_and_doorcodes_round_trip_in_canonical_order() {
        let b = bundle();
        let payload = b.encode(None);
        let (back, sealed) = decode_payload(&payload).unwrap();
        assert!(sealed.is_none());
        let mut sorted = b.floors.clone();
        sorted.sort_unstable_by_key(|e| e.person_id);
        assert_eq!(back.floors, sorted);
        assert_eq!(back.encode(None), payload);
        let d = encode_doorcodes(&b.doorcodes);
        assert_eq!(decode_doorcodes(&d).unwrap(), b.doorcodes);
    }

    #[test]
    fn issuers_cannot_mint_what_locks_refuse() {
        type Edit = fn(&mut SyncBundle);
        let cases: [(Edit, &str); 10] = [
            (|b| b.iteration = 0, "iteration"),
            (|b| b.base_iteration = 3, "base_iteration"),
            (|b| b.floors[1].person_id = Id([9; 16]), "floors.person_id"),
            (
                |b| b.doorcodes.added[0].schedules = alloc::vec![2, 0],
                "doorcodes.schedules",
            ),
            (
                |b| b.doorcodes.added[0].schedules.clear(),
                "doorcodes.schedules",
            ),
            (
                |b| {
                    b.keypad = Some(KeypadRules {
                        zone: ZoneRules::fixed(0),
                        schedules: alloc::vec![Schedule::always()],
                    })
                },
                "keypad",
            ),
            (
                |b| b.doorcodes.added[0].code = "12a4".into(),
                "doorcodes.code",
            ),
            (
                |b| b.doorcodes.removed[0] = Id([7; 16]),
                "doorcodes.person_id",
            ),
            (
                |b| {
                    b.base_iteration = 0;
                },
                "doorcodes.removed",
            ),
            (
                // A full bundle's codes must index the table it carries.
                |b| {
                    b.base_iteration = 0;
                    b.doorcodes.removed.clear();
                },
                "doorcodes.schedules",
            ),
        ];
        for (edit, field) in cases {
            let mut b = bundle();
            edit(&mut b);
            assert_eq!(b.validate().unwrap_err().field, field);
        }
        let mut b = bundle();
        b.doorcodes.added.push(Doorcode {
            person_id: Id([5; 16]),
            code: "2468".into(),
            expires_at: None,
            schedules: alloc::vec![1],
        });
        assert_eq!(
            b.validate(),
            Err(Malformed::new("doorcodes.code", Problem::Duplicate))
        );
    }

    #[test]
    fn codes_are_four_to_ten_digits() {
        for ok in ["0000", "1234567890"] {
            assert!(Doorcode::is_valid_code(ok));
        }
        for bad in ["123", "12345678901", "12 34", "١٢٣٤", ""] {
            assert!(!Doorcode::is_valid_code(bad), "{bad}");
        }
    }
}
