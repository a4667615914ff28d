//! Audit records: what a lock decided, signed by the lock's own key so that the phones that
//! carry them to the server can neither forge nor alter them (as Tedee's lock-signed activity
//! logs). Same COSE_Sign1 profile as the issuer's documents, with the lock key's kid and
//! content type `application/door-audit+cbor`.
//!
//! ```text
//! audit-record = {
//!   0 => 2,                     ; version (2: the epoch was added)
//!   1 => uint,                  ; seq: the lock's counter, +1 per record, from 0 per epoch
//!   2 => unix-time,             ; at: the lock's clock
//!   3 => event,
//!   4 => bstr .size 8,          ; epoch: drawn when the lock's audit log started
//! }
//! event = [0, credential_id: id, door_id: id]                  ; unlock granted
//!       / [1, credential_id: id / null, result: 1..9, next_allowed: unix-time / null]
//!                                                              ; unlock denied
//!       / [2, person_id: id / null, granted: bool]             ; doorcode entered
//!       / [3, iteration: uint]                                 ; sync bundle applied
//!       / [4, step: int]                                       ; clock set by signed time
//!       / [5, count: uint, through_seq: uint]                  ; records dropped unacknowledged
//!       / [6, battery: uint, firmware: tstr, clock_offset: int / null, iteration: uint]
//!                                                              ; lock health (crate::health)
//! ```
//!
//! [`AuditLog`] is the lock's side: it numbers, signs and keeps records until the server's
//! acknowledgement comes back in a sync bundle, or until it is full ([`AUDIT_CAPACITY`]) and
//! must drop the oldest, which a signed `RecordsDropped` record then accounts for.
//!
//! A record is named by (lock, epoch, seq). The **epoch** is 8 random bytes a lock draws when
//! its audit log starts (a new lock, a wipe, a factory reset): its counter restarts at 0 then,
//! and the epoch keeps the new records apart from the old ones at the server, and keeps an
//! acknowledgement of the old log ([`AuditAck`]) from freeing records of the new one.

use alloc::vec::Vec;
use core::fmt;

use crate::cbor::{At, Keys, Malformed, Problem, Reader, Writer};
use crate::cose::{self, OpenError};
use crate::health::LockHealth;
use crate::ids::Id;
use crate::keys::{KeyId, LockKey, LockPublicKey};
use crate::unlock::codec::{result_code, result_from_code};
use crate::unlock::{DenyReason, UnlockResult};
use crate::UnixTime;

/// COSE content type of audit records (protected header label 3).
pub const AUDIT_CONTENT_TYPE: &str = "application/door-audit+cbor";
/// The payload version this implementation reads and writes. Version 1 had no epoch.
pub const AUDIT_VERSION: u64 = 2;

const EVENT_UNLOCK_GRANTED: u64 = 0;
const EVENT_UNLOCK_DENIED: u64 = 1;
const EVENT_DOORCODE: u64 = 2;
const EVENT_SYNC_APPLIED: u64 = 3;
const EVENT_CLOCK_SET: u64 = 4;
const EVENT_RECORDS_DROPPED: u64 = 5;
const EVENT_HEALTH: u64 = 6;

/// How many records a lock's audit log holds at most. A signed record is 140 to 180 bytes, so
/// this is about 700 KiB of storage: a week and more of a busy entrance (300 to 500 decisions
/// a day) with no acknowledgement coming back, while every phone that syncs the door brings one
/// within a bundle or two. A lock with less storage sets its own ([`AuditLog::with_capacity`]).
pub const AUDIT_CAPACITY: usize = 4096;
/// The smallest capacity a log takes: room for a `RecordsDropped` record and the record that
/// made the log drop.
pub const MIN_AUDIT_CAPACITY: usize = 2;

/// A lock's audit epoch: 8 random bytes drawn when its audit log starts (a new lock, a wipe).
/// The caller draws them (this crate has no RNG of its own). Shown as 16 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct AuditEpoch(pub [u8; 8]);

impl AuditEpoch {
    pub const LEN: usize = 8;

    /// A fresh epoch from the caller's randomness.
    pub fn random(rng: &mut impl rand_core::CryptoRngCore) -> AuditEpoch {
        let mut b = [0u8; 8];
        rng.fill_bytes(&mut b);
        AuditEpoch(b)
    }

    /// Parses 16 hex digits (either case). Returns `None` for anything else.
    pub fn from_hex(s: &str) -> Option<AuditEpoch> {
        let b = s.as_bytes();
        if b.len() != 16 {
            return None;
        }
        let mut out = [0u8; 8];
        for (i, pair) in b.chunks_exact(2).enumerate() {
            let hi = (pair[0] as char).to_digit(16)?;
            let lo = (pair[1] as char).to_digit(16)?;
            out[i] = (hi * 16 + lo) as u8;
        }
        Some(AuditEpoch(out))
    }
}

impl fmt::Display for AuditEpoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for AuditEpoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AuditEpoch({self})")
    }
}

/// The server's acknowledgement, as a sync bundle carries it: it holds every record of the
/// lock's epoch `epoch` with a seq below `below`. A lock frees records only for an
/// acknowledgement of its current epoch.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub struct AuditAck {
    pub epoch: AuditEpoch,
    pub below: u64,
}

/// Something a lock records.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum AuditEvent {
    UnlockGranted {
        credential_id: Id,
        door_id: Id,
    },
    /// `credential_id` is `None` when the lock refused before it could trust the document
    /// that names it (a bad document, an untrusted clock, a replay).
    UnlockDenied {
        credential_id: Option<Id>,
        reason: DenyReason,
    },
    /// A code was entered on the keypad. `person_id` names the doorcode's holder when the code
    /// matched one; a match that is not `granted` had expired. `None`: no doorcode matched
    /// (or the keypad was locked out after repeated wrong codes).
    DoorcodeEntry {
        person_id: Option<Id>,
        granted: bool,
    },
    /// A sync bundle was applied; the lock's sync iteration is now `iteration`.
    SyncApplied {
        iteration: u64,
    },
    /// An issuer-signed time moved the lock's clock by `step` seconds (negative: back). The
    /// record's `at` is the clock after the step.
    ClockSet {
        step: i64,
    },
    /// The log was full: the `count` records with seqs `through_seq + 1 - count` to
    /// `through_seq` left it before the server acknowledged them. A phone may have carried some
    /// home; whatever the server lacks of them is lost, and this record is the lock's word for
    /// it. Always recorded just before the record that made room necessary, so its seq is
    /// above `through_seq`; `count` is at least 1.
    RecordsDropped {
        count: u64,
        through_seq: u64,
    },
    /// The lock's battery, firmware, clock and sync iteration, recorded when a phone that
    /// proved a credential pulls the log (`crate::health`).
    Health(LockHealth),
}

impl AuditEvent {
    /// For a `RecordsDropped` event, the seqs it accounts for.
    pub fn dropped_seqs(&self) -> Option<core::ops::RangeInclusive<u64>> {
        match *self {
            // Saturating only for events built by hand with a count the decoder refuses.
            AuditEvent::RecordsDropped { count, through_seq } => {
                Some(through_seq.saturating_sub(count.saturating_sub(1))..=through_seq)
            }
            _ => None,
        }
    }
}

/// One record of a lock's audit log.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub struct AuditRecord {
    /// The lock's audit log this record belongs to.
    pub epoch: AuditEpoch,
    /// Grows by one per record within an epoch, so the server sees gaps.
    pub seq: u64,
    /// The lock's clock when it happened.
    pub at: UnixTime,
    pub event: AuditEvent,
}

/// Why an audit record was refused.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum AuditError {
    /// The signature does not verify under the lock's key.
    BadSignature,
    /// The record names another key than the lock's.
    WrongKey {
        kid: KeyId,
    },
    Malformed(Malformed),
}

impl From<OpenError> for AuditError {
    fn from(e: OpenError) -> AuditError {
        match e {
            OpenError::BadSignature => AuditError::BadSignature,
            OpenError::UnknownIssuerKey { kid } => AuditError::WrongKey { kid },
            OpenError::Malformed(m) => AuditError::Malformed(m),
        }
    }
}

impl fmt::Display for AuditError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuditError::BadSignature => f.write_str("audit record signature does not verify"),
            AuditError::WrongKey { kid } => write!(f, "audit record signed by another key {kid}"),
            AuditError::Malformed(m) => write!(f, "malformed audit record: {m}"),
        }
    }
}

impl core::error::Error for AuditError {}

mod key {
    pub const VERSION: u64 = 0;
    pub const SEQ: u64 = 1;
    pub const AT: u64 = 2;
    pub const EVENT: u64 = 3;
    pub const EPOCH: u64 = 4;
}

impl AuditRecord {
    /// The deterministic CBOR payload.
    pub fn to_cbor(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.map(5);
        w.uint(key::VERSION);
        w.uint(AUDIT_VERSION);
        w.uint(key::SEQ);
        w.uint(self.seq);
        w.uint(key::AT);
        w.int(self.at);
        w.uint(key::EVENT);
        match self.event {
            AuditEvent::UnlockGranted {
                credential_id,
                door_id,
            } => {
                w.array(3);
                w.uint(EVENT_UNLOCK_GRANTED);
                w.bytes(&credential_id.0);
                w.bytes(&door_id.0);
            }
            AuditEvent::UnlockDenied {
                credential_id,
                reason,
            } => {
                w.array(4);
                w.uint(EVENT_UNLOCK_DENIED);
                match credential_id {
                    Some(id) => w.bytes(&id.0),
                    None => w.null(),
                }
                let (code, next_allowed) = result_code(&UnlockResult::Denied(reason));
                w.uint(code);
                match next_allowed {
                    Some(t) => w.int(t),
                    None => w.null(),
                }
            }
            AuditEvent::DoorcodeEntry { person_id, granted } => {
                w.array(3);
                w.uint(EVENT_DOORCODE);
                match person_id {
                    Some(id) => w.bytes(&id.0),
                    None => w.null(),
                }
                w.bool(granted);
            }
            AuditEvent::SyncApplied { iteration } => {
                w.array(2);
                w.uint(EVENT_SYNC_APPLIED);
                w.uint(iteration);
            }
            AuditEvent::ClockSet { step } => {
                w.array(2);
                w.uint(EVENT_CLOCK_SET);
                w.int(step);
            }
            AuditEvent::RecordsDropped { count, through_seq } => {
                w.array(3);
                w.uint(EVENT_RECORDS_DROPPED);
                w.uint(count);
                w.uint(through_seq);
            }
            AuditEvent::Health(health) => {
                w.array(5);
                w.uint(EVENT_HEALTH);
                health.write_fields(&mut w);
            }
        }
        w.uint(key::EPOCH);
        w.bytes(&self.epoch.0);
        w.into_vec()
    }

    /// Parses a payload: deterministic CBOR only, every key and event kind known.
    pub fn from_cbor(bytes: &[u8]) -> Result<AuditRecord, Malformed> {
        let mut r = Reader::new(bytes);
        let n = r.map().at("payload")?;
        let mut keys = Keys::new();
        let mut record = AuditRecord {
            epoch: AuditEpoch::default(),
            seq: 0,
            at: 0,
            event: AuditEvent::UnlockDenied {
                credential_id: None,
                reason: DenyReason::BadCredential,
            },
        };
        for _ in 0..n {
            match keys.next(&mut r).at("payload")? {
                key::VERSION => {
                    if r.uint().at("version")? != AUDIT_VERSION {
                        return Err(Malformed::new("version", Problem::Unsupported));
                    }
                }
                key::SEQ => record.seq = r.uint().at("seq")?,
                key::AT => record.at = r.int().at("at")?,
                key::EVENT => record.event = decode_event(&mut r)?,
                key::EPOCH => record.epoch = AuditEpoch(r.bytes_fixed().at("epoch")?),
                key => return Err(Malformed::new("payload", Problem::UnknownKey { key })),
            }
        }
        keys.require(&[key::VERSION, key::SEQ, key::AT, key::EVENT, key::EPOCH])
            .at("payload")?;
        r.finish().at("payload")?;
        // A drop record accounts for records before it, never for itself or later ones.
        if let AuditEvent::RecordsDropped { through_seq, .. } = record.event {
            if through_seq >= record.seq {
                return Err(Malformed::new("event.through_seq", Problem::OutOfRange));
            }
        }
        Ok(record)
    }

    /// Reads a signed record's payload without checking the signature: for the lock reloading
    /// the records it signed itself, never for a verifier.
    pub fn read_own(signed: &[u8]) -> Result<AuditRecord, Malformed> {
        AuditRecord::from_cbor(cose::payload_unverified(signed, AUDIT_CONTENT_TYPE)?)
    }

    /// Signs the record with the lock's key: the tagged COSE_Sign1 bytes.
    pub fn sign(&self, key: &LockKey) -> Vec<u8> {
        cose::sign1_with(
            key.signing_key(),
            key.public().kid(),
            AUDIT_CONTENT_TYPE,
            self.to_cbor(),
            cose::MAX_DOCUMENT_SIZE,
        )
        // A record is under 100 bytes, far below the document cap.
        .expect("an audit record fits the document size cap")
    }
}

fn decode_event(r: &mut Reader<'_>) -> Result<AuditEvent, Malformed> {
    let n = r.array(5).at("event")?;
    let kind = if n > 0 { r.uint().at("event.kind")? } else { 0 };
    match (kind, n) {
        (EVENT_UNLOCK_GRANTED, 3) => Ok(AuditEvent::UnlockGranted {
            credential_id: Id(r.bytes_fixed().at("event.credential_id")?),
            door_id: Id(r.bytes_fixed().at("event.door_id")?),
        }),
        (EVENT_UNLOCK_DENIED, 4) => {
            let credential_id = if r.null().at("event.credential_id")? {
                None
            } else {
                Some(Id(r.bytes_fixed().at("event.credential_id")?))
            };
            let code = r.uint().at("event.result")?;
            let next_allowed = if r.null().at("event.next_allowed")? {
                None
            } else {
                Some(r.int().at("event.next_allowed")?)
            };
            match result_from_code(code, next_allowed).at("event.result")? {
                UnlockResult::Denied(reason) => Ok(AuditEvent::UnlockDenied {
                    credential_id,
                    reason,
                }),
                UnlockResult::Granted => Err(Malformed::new("event.result", Problem::OutOfRange)),
            }
        }
        (EVENT_DOORCODE, 3) => {
            let person_id = if r.null().at("event.person_id")? {
                None
            } else {
                Some(Id(r.bytes_fixed().at("event.person_id")?))
            };
            let granted = r.bool().at("event.granted")?;
            // A granted entry always names whose code it was.
            if granted && person_id.is_none() {
                return Err(Malformed::new("event.person_id", Problem::OutOfRange));
            }
            Ok(AuditEvent::DoorcodeEntry { person_id, granted })
        }
        (EVENT_SYNC_APPLIED, 2) => Ok(AuditEvent::SyncApplied {
            iteration: r.uint().at("event.iteration")?,
        }),
        (EVENT_CLOCK_SET, 2) => Ok(AuditEvent::ClockSet {
            step: r.int().at("event.step")?,
        }),
        (EVENT_RECORDS_DROPPED, 3) => {
            let count = r.uint().at("event.count")?;
            let through_seq = r.uint().at("event.through_seq")?;
            // At least one record, and none before seq 0.
            if count == 0 || count - 1 > through_seq {
                return Err(Malformed::new("event.count", Problem::OutOfRange));
            }
            Ok(AuditEvent::RecordsDropped { count, through_seq })
        }
        (EVENT_HEALTH, 5) => Ok(AuditEvent::Health(LockHealth::read_fields(r)?)),
        (
            EVENT_UNLOCK_GRANTED
            | EVENT_UNLOCK_DENIED
            | EVENT_DOORCODE
            | EVENT_SYNC_APPLIED
            | EVENT_CLOCK_SET
            | EVENT_RECORDS_DROPPED
            | EVENT_HEALTH,
            _,
        ) => Err(Malformed::new("event", Problem::WrongType)),
        _ => Err(Malformed::new("event.kind", Problem::Unsupported)),
    }
}

/// Checks an audit record against the lock's public key: frame, kid (must be the lock key's),
/// signature, then payload.
pub fn verify_audit(bytes: &[u8], lock_key: &LockPublicKey) -> Result<AuditRecord, AuditError> {
    let opened = cose::open1_with(bytes, AUDIT_CONTENT_TYPE, cose::MAX_DOCUMENT_SIZE, |kid| {
        (kid == lock_key.kid()).then_some(*lock_key.verifying_key())
    })?;
    AuditRecord::from_cbor(opened.payload).map_err(AuditError::Malformed)
}

/// The lock's audit log: signed records, oldest first, kept until the server acknowledges
/// them, and never more than its capacity ([`AUDIT_CAPACITY`] unless
/// [`AuditLog::with_capacity`] says otherwise). Sequence numbers grow by one per record and are
/// never reused within the log's epoch, so the server can deduplicate by (lock, epoch, seq) and
/// see gaps.
///
/// Records leave the log through [`AuditLog::acknowledge`], which a lock calls with the
/// `audit_ack` of an applied sync bundle (the server's word that it holds every record of this
/// epoch below it), never because a phone pulled them: a phone may lose what it carries.
///
/// The one other way out is a full log. A record that finds no room first drops the oldest
/// records, at least an eighth of the capacity at once, and records
/// [`AuditEvent::RecordsDropped`] naming them, then itself; a log that stays full thus spends
/// one record in hundreds on the account, not every other one, and still holds seven eighths of
/// its capacity. When a drop record is itself among the dropped, the new one's range reaches
/// back over the range it gave: every seq that left unacknowledged stays accounted for by a
/// signed record the lock still holds or has sent out, and seqs keep growing, so the server sees
/// exactly the gap that record explains. Whatever the capacity, a log takes at least
/// [`MIN_AUDIT_CAPACITY`].
///
/// A lock starts a log with [`AuditLog::new`] and a fresh random epoch whenever it starts
/// afresh (first boot, wipe, factory reset). `Default` is the all-zero epoch, for tests only:
/// a lock that reused one epoch across wipes would have its new records taken for old ones.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct AuditLog {
    epoch: AuditEpoch,
    /// Ascending by seq.
    records: Vec<Held>,
    next_seq: u64,
    capacity: usize,
}

/// One record the log holds.
#[derive(Clone, PartialEq, Eq, Debug)]
struct Held {
    seq: u64,
    /// The lowest seq this record accounts for: its own, or for a drop record the first it
    /// names, so that a later drop covering it can reach back over its range.
    covers_from: u64,
    signed: Vec<u8>,
}

impl Default for AuditLog {
    fn default() -> AuditLog {
        AuditLog::new(AuditEpoch::default())
    }
}

impl AuditLog {
    /// An empty log of a new epoch (draw it at random: [`AuditEpoch::random`]) holding up to
    /// [`AUDIT_CAPACITY`] records.
    pub fn new(epoch: AuditEpoch) -> AuditLog {
        AuditLog {
            epoch,
            records: Vec::new(),
            next_seq: 0,
            capacity: AUDIT_CAPACITY,
        }
    }

    /// The same log holding up to `capacity` records (at least [`MIN_AUDIT_CAPACITY`]). A log
    /// that already holds more keeps them until its next record, which drops down to fit.
    pub fn with_capacity(mut self, capacity: usize) -> AuditLog {
        self.capacity = capacity.max(MIN_AUDIT_CAPACITY);
        self
    }

    /// Rebuilds a log from persisted state (what [`AuditLog::epoch`], [`AuditLog::next_seq`]
    /// and [`AuditLog::records`] returned), with the default capacity. Each record's epoch and
    /// seq are read back from its payload; the epochs must be `epoch`, the seqs must ascend and
    /// stay below `next_seq`. More records than the capacity are kept, not forgotten: the next
    /// record drops down to fit, and says so.
    pub fn restore(
        epoch: AuditEpoch,
        next_seq: u64,
        records: impl IntoIterator<Item = Vec<u8>>,
    ) -> Result<AuditLog, Malformed> {
        let mut log = AuditLog {
            next_seq,
            ..AuditLog::new(epoch)
        };
        for signed in records {
            let record = AuditRecord::read_own(&signed)?;
            if record.epoch != epoch {
                return Err(Malformed::new("audit.epoch", Problem::OutOfRange));
            }
            let seq = record.seq;
            let ascending = log.records.last().is_none_or(|prev| prev.seq < seq);
            if !ascending || seq >= next_seq {
                return Err(Malformed::new("audit.seq", Problem::Unordered));
            }
            let covers_from = record.event.dropped_seqs().map_or(seq, |r| *r.start());
            log.records.push(Held {
                seq,
                covers_from,
                signed,
            });
        }
        Ok(log)
    }

    /// The epoch of this log: every record it writes carries it.
    pub fn epoch(&self) -> AuditEpoch {
        self.epoch
    }

    /// The seq the next record gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The most records the log holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Records held, as the unlock answer reports them.
    pub fn pending(&self) -> u32 {
        u32::try_from(self.records.len()).unwrap_or(u32::MAX)
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The signed records, oldest first.
    pub fn records(&self) -> impl Iterator<Item = &[u8]> {
        self.records.iter().map(|h| h.signed.as_slice())
    }

    /// The lowest seq the log holds, or the next seq when it holds none: every seq below it has
    /// been acknowledged or dropped.
    pub fn first_seq(&self) -> u64 {
        self.records.first().map_or(self.next_seq, |h| h.seq)
    }

    /// Numbers, signs and appends a record of `event` at `at` (the lock's clock). A full log
    /// first drops its oldest records and records which (the type's documentation); the record
    /// returned is `event`'s.
    pub fn record(&mut self, key: &LockKey, at: UnixTime, event: AuditEvent) -> AuditRecord {
        if self.records.len() >= self.capacity {
            self.drop_oldest(key, at);
        }
        self.push(key, at, event)
    }

    fn drop_oldest(&mut self, key: &LockKey, at: UnixTime) {
        let held = self.records.len();
        let n = (held + 2 - self.capacity).max(self.capacity / 8).min(held);
        let covers_from = self.records[0].covers_from;
        let through_seq = self.records[n - 1].seq;
        self.records.drain(..n);
        self.push(
            key,
            at,
            AuditEvent::RecordsDropped {
                count: through_seq - covers_from + 1,
                through_seq,
            },
        );
    }

    fn push(&mut self, key: &LockKey, at: UnixTime, event: AuditEvent) -> AuditRecord {
        let record = AuditRecord {
            epoch: self.epoch,
            seq: self.next_seq,
            at,
            event,
        };
        self.records.push(Held {
            seq: record.seq,
            covers_from: event.dropped_seqs().map_or(record.seq, |r| *r.start()),
            signed: record.sign(key),
        });
        self.next_seq = self.next_seq.saturating_add(1);
        record
    }

    /// The server holds every record of `ack.epoch` with seq below `ack.below`: if that is this
    /// log's epoch, frees them, and returns how many. An acknowledgement of another epoch (the
    /// log this lock kept before a wipe, or a phone's confusion) frees nothing.
    ///
    /// Within the epoch, an `ack` beyond the next seq means the server holds records this log
    /// does not remember writing (a state restored from an old copy without a new epoch): the
    /// count then jumps past them, so that no seq the server holds is signed twice.
    pub fn acknowledge(&mut self, ack: AuditAck) -> usize {
        if ack.epoch != self.epoch {
            return 0;
        }
        let freed = self.records.partition_point(|h| h.seq < ack.below);
        self.records.drain(..freed);
        self.next_seq = self.next_seq.max(ack.below);
        freed
    }

    /// Records with seq at least `from_seq`, oldest first, as many as fit in `max_bytes`
    /// (at least one if any is due), and whether more remain after them.
    pub fn batch(&self, from_seq: u64, max_bytes: usize) -> (Vec<&[u8]>, bool) {
        let start = self.records.partition_point(|h| h.seq < from_seq);
        let mut out = Vec::new();
        let mut used = 0;
        for held in &self.records[start..] {
            let record = held.signed.as_slice();
            if !out.is_empty() && used + record.len() > max_bytes {
                return (out, true);
            }
            used += record.len();
            out.push(record);
        }
        (out, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EPOCH: AuditEpoch = AuditEpoch([0xe0, 1, 2, 3, 4, 5, 6, 7]);

    fn key() -> LockKey {
        LockKey::from_bytes(&[0x42; 32]).unwrap()
    }

    fn records() -> Vec<AuditRecord> {
        alloc::vec![
            AuditRecord {
                epoch: EPOCH,
                seq: 0,
                at: 1_781_524_800,
                event: AuditEvent::UnlockGranted {
                    credential_id: Id([1; 16]),
                    door_id: Id([2; 16]),
                },
            },
            AuditRecord {
                epoch: EPOCH,
                seq: 1,
                at: -1,
                event: AuditEvent::UnlockDenied {
                    credential_id: None,
                    reason: DenyReason::Replayed,
                },
            },
            AuditRecord {
                epoch: EPOCH,
                seq: u64::MAX,
                at: 5,
                event: AuditEvent::UnlockDenied {
                    credential_id: Some(Id([3; 16])),
                    reason: DenyReason::OutOfSchedule {
                        next_allowed: Some(99),
                    },
                },
            },
            AuditRecord {
                epoch: EPOCH,
                seq: 3,
                at: 6,
                event: AuditEvent::DoorcodeEntry {
                    person_id: Some(Id([4; 16])),
                    granted: true,
                },
            },
            AuditRecord {
                epoch: EPOCH,
                seq: 4,
                at: 7,
                event: AuditEvent::DoorcodeEntry {
                    person_id: None,
                    granted: false,
                },
            },
            AuditRecord {
                epoch: EPOCH,
                seq: 5,
                at: 8,
                event: AuditEvent::SyncApplied { iteration: 1 << 40 },
            },
            AuditRecord {
                epoch: EPOCH,
                seq: 6,
                at: 9,
                event: AuditEvent::ClockSet { step: -3600 },
            },
            AuditRecord {
                epoch: EPOCH,
                seq: 7,
                at: 10,
                event: AuditEvent::RecordsDropped {
                    count: 6,
                    through_seq: 5,
                },
            },
            AuditRecord {
                epoch: EPOCH,
                seq: 8,
                at: 11,
                event: AuditEvent::Health(health(Some(-42))),
            },
            AuditRecord {
                epoch: EPOCH,
                seq: 9,
                at: 12,
                event: AuditEvent::Health(health(None)),
            },
        ]
    }

    fn health(clock_offset: Option<i64>) -> LockHealth {
        LockHealth {
            battery_percent: 87,
            firmware: crate::health::FirmwareVersion::new("door-lock 0.1.0").unwrap(),
            clock_offset,
            iteration: 3,
        }
    }

    fn health_payload(battery: u64, firmware: &str) -> Vec<u8> {
        let mut w = Writer::new();
        w.map(5);
        for (k, v) in [(0u64, AUDIT_VERSION), (1, 0), (2, 0)] {
            w.uint(k);
            w.uint(v);
        }
        w.uint(3);
        w.array(5);
        w.uint(EVENT_HEALTH);
        w.uint(battery);
        w.text(firmware);
        w.null();
        w.uint(1);
        w.uint(4);
        w.bytes(&EPOCH.0);
        w.into_vec()
    }

    #[test]
    fn a_health_event_holds_a_percentage_and_a_printable_firmware() {
        assert!(AuditRecord::from_cbor(&health_payload(100, "v1")).is_ok());
        assert_eq!(
            AuditRecord::from_cbor(&health_payload(101, "v1")),
            Err(Malformed::new("event.battery", Problem::OutOfRange))
        );
        for firmware in ["", "v1\u{7}", &"9".repeat(33)] {
            assert_eq!(
                AuditRecord::from_cbor(&health_payload(50, firmware)),
                Err(Malformed::new("event.firmware", Problem::OutOfRange)),
                "{firmware:?}"
            );
        }
    }

    #[test]
    fn sign_then_verify_round_trips() {
        let k = key();
        for record in records() {
            let signed = record.sign(&k);
            assert_eq!(verify_audit(&signed, k.public()), Ok(record));
        }
    }

    #[test]
    fn another_lock_key_is_refused_and_tampering_detected() {
        let signed = records()[0].sign(&key());
        let other = LockKey::from_bytes(&[0x43; 32]).unwrap();
        assert_eq!(
            verify_audit(&signed, other.public()),
            Err(AuditError::WrongKey {
                kid: key().public().kid()
            })
        );
        for i in 0..signed.len() {
            let mut t = signed.clone();
            t[i] ^= 1;
            assert!(verify_audit(&t, key().public()).is_err(), "byte {i}");
        }
    }

    #[test]
    fn coset_reads_the_frame() {
        use coset::TaggedCborSerializable;
        let signed = records()[2].sign(&key());
        let parsed = coset::CoseSign1::from_tagged_slice(&signed).unwrap();
        assert_eq!(
            parsed.protected.header.content_type,
            Some(coset::ContentType::Text(AUDIT_CONTENT_TYPE.into()))
        );
        assert_eq!(
            parsed.protected.header.key_id,
            key().public().kid().0.to_vec()
        );
    }

    #[test]
    fn strict_payloads() {
        let good = records()[1].to_cbor();
        assert_eq!(AuditRecord::from_cbor(&good), Ok(records()[1]));
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(AuditRecord::from_cbor(&trailing).is_err());
        // A denied event claiming "granted", and next_allowed with a reason other than
        // out-of-schedule, are refused.
        let mut w = Writer::new();
        w.map(5);
        for (k, v) in [(0u64, AUDIT_VERSION), (1, 0), (2, 0)] {
            w.uint(k);
            w.uint(v);
        }
        w.uint(3);
        w.array(4);
        w.uint(EVENT_UNLOCK_DENIED);
        w.null();
        w.uint(2);
        w.int(7);
        w.uint(4);
        w.bytes(&EPOCH.0);
        assert!(AuditRecord::from_cbor(&w.into_vec()).is_err());
    }

    #[test]
    fn a_granted_doorcode_entry_names_its_holder() {
        let mut w = Writer::new();
        w.map(5);
        for (k, v) in [(0u64, AUDIT_VERSION), (1, 0), (2, 0)] {
            w.uint(k);
            w.uint(v);
        }
        w.uint(3);
        w.array(3);
        w.uint(EVENT_DOORCODE);
        w.null();
        w.bool(true);
        w.uint(4);
        w.bytes(&EPOCH.0);
        assert_eq!(
            AuditRecord::from_cbor(&w.into_vec()),
            Err(Malformed::new("event.person_id", Problem::OutOfRange))
        );
    }

    #[test]
    fn the_epoch_is_signed_in_and_required() {
        let good = records()[0].to_cbor();
        // Version 1 (no epoch) is refused, as is a record without key 4 or a short epoch.
        let mut w = Writer::new();
        w.map(4);
        for (k, v) in [(0u64, 1u64), (1, 0), (2, 0)] {
            w.uint(k);
            w.uint(v);
        }
        w.uint(3);
        w.array(2);
        w.uint(EVENT_SYNC_APPLIED);
        w.uint(1);
        assert_eq!(
            AuditRecord::from_cbor(&w.into_vec()),
            Err(Malformed::new("version", Problem::Unsupported))
        );
        let without = &good[..good.len() - 10];
        let mut without = without.to_vec();
        without[0] = 0xa4; // a map of 4: everything but the epoch
        assert_eq!(
            AuditRecord::from_cbor(&without).map_err(|e| e.field),
            Err("payload")
        );
        let mut short = good[..good.len() - 9].to_vec();
        short.extend_from_slice(&[0x47, 1, 2, 3, 4, 5, 6, 7]);
        assert!(AuditRecord::from_cbor(&short).is_err());
        // Another epoch, same seq: another record, and another signature.
        let mut other = records()[0];
        other.epoch = AuditEpoch([9; 8]);
        assert_ne!(other.sign(&key()), records()[0].sign(&key()));
        assert_eq!(AuditEpoch::from_hex(&EPOCH.to_string()), Some(EPOCH));
        assert_eq!(AuditEpoch::from_hex("e0010203040506"), None);
    }

    #[test]
    fn the_log_frees_only_acknowledged_records_and_restores() {
        let k = key();
        let mut log = AuditLog::new(EPOCH);
        for i in 0..5 {
            let r = log.record(&k, i, AuditEvent::SyncApplied { iteration: 1 });
            assert_eq!(r.epoch, EPOCH);
        }
        let (batch, more) = log.batch(1, 0);
        assert_eq!(
            (batch.len(), more),
            (1, true),
            "at least one record per batch"
        );
        let (batch, more) = log.batch(3, usize::MAX);
        assert_eq!((batch.len(), more), (2, false));
        let ack = |below| AuditAck {
            epoch: EPOCH,
            below,
        };
        assert_eq!(log.acknowledge(ack(2)), 2);
        assert_eq!(log.acknowledge(ack(2)), 0);
        assert_eq!(log.pending(), 3);
        let again =
            AuditLog::restore(EPOCH, log.next_seq(), log.records().map(<[u8]>::to_vec)).unwrap();
        assert_eq!(again, log);
        assert!(AuditLog::restore(EPOCH, 2, log.records().map(<[u8]>::to_vec)).is_err());
        assert_eq!(
            AuditLog::restore(AuditEpoch([1; 8]), 5, log.records().map(<[u8]>::to_vec)),
            Err(Malformed::new("audit.epoch", Problem::OutOfRange)),
            "records of another epoch are not this log's"
        );
        // An acknowledgement of another epoch frees nothing and moves nothing.
        assert_eq!(
            log.acknowledge(AuditAck {
                epoch: AuditEpoch([1; 8]),
                below: 100
            }),
            0
        );
        assert_eq!((log.pending(), log.next_seq()), (3, 5));
        // Within the epoch, an acknowledgement beyond the count moves the count past it.
        assert_eq!(log.acknowledge(ack(100)), 3);
        assert_eq!(log.record(&k, 0, AuditEvent::ClockSet { step: 1 }).seq, 100);
    }

    #[test]
    fn a_new_epoch_starts_at_zero_and_ignores_the_old_acknowledgement() {
        let k = key();
        let mut old = AuditLog::new(EPOCH);
        for i in 0..3 {
            old.record(&k, i, AuditEvent::SyncApplied { iteration: 1 });
        }
        // Wiped: a new log, a new epoch.
        let mut new = AuditLog::new(AuditEpoch([0x5a; 8]));
        let first = new.record(&k, 10, AuditEvent::SyncApplied { iteration: 1 });
        assert_eq!((first.epoch, first.seq), (AuditEpoch([0x5a; 8]), 0));
        assert_eq!(
            new.acknowledge(AuditAck {
                epoch: EPOCH,
                below: old.next_seq()
            }),
            0,
            "the old log's acknowledgement does not free the new log's records"
        );
        assert_eq!(new.pending(), 1);
    }

    fn drop_record(seq: u64, count: u64, through_seq: u64) -> Vec<u8> {
        let mut w = Writer::new();
        w.map(5);
        for (k, v) in [(0u64, AUDIT_VERSION), (1, seq), (2, 0)] {
            w.uint(k);
            w.uint(v);
        }
        w.uint(3);
        w.array(3);
        w.uint(EVENT_RECORDS_DROPPED);
        w.uint(count);
        w.uint(through_seq);
        w.uint(4);
        w.bytes(&EPOCH.0);
        w.into_vec()
    }

    #[test]
    fn a_drop_record_names_at_least_one_seq_before_its_own() {
        assert!(AuditRecord::from_cbor(&drop_record(9, 3, 4)).is_ok());
        assert!(AuditRecord::from_cbor(&drop_record(1, 1, 0)).is_ok());
        assert_eq!(
            AuditRecord::from_cbor(&drop_record(9, 0, 4)),
            Err(Malformed::new("event.count", Problem::OutOfRange))
        );
        assert_eq!(
            AuditRecord::from_cbor(&drop_record(9, 6, 4)),
            Err(Malformed::new("event.count", Problem::OutOfRange)),
            "no seq below 0"
        );
        assert_eq!(
            AuditRecord::from_cbor(&drop_record(4, 1, 4)),
            Err(Malformed::new("event.through_seq", Problem::OutOfRange)),
            "a drop record does not account for itself"
        );
    }

    fn events(log: &AuditLog) -> Vec<(u64, AuditEvent)> {
        log.records()
            .map(|r| verify_audit(r, key().public()).unwrap())
            .map(|r| (r.seq, r.event))
            .collect()
    }

    #[test]
    fn a_full_log_drops_the_oldest_and_says_which() {
        let k = key();
        let mut log = AuditLog::new(EPOCH).with_capacity(8);
        let sync = AuditEvent::SyncApplied { iteration: 1 };
        for i in 0..8 {
            log.record(&k, i, sync);
        }
        assert_eq!(log.len(), 8);
        let clock = AuditEvent::ClockSet { step: 1 };
        let r = log.record(&k, 100, clock);
        assert_eq!(
            (r.seq, r.event),
            (9, clock),
            "the caller gets its own record"
        );
        let held = events(&log);
        assert_eq!(log.len(), 8);
        assert_eq!(held.first().map(|&(seq, _)| seq), Some(2));
        assert_eq!(
            held[6..],
            [
                (
                    8,
                    AuditEvent::RecordsDropped {
                        count: 2,
                        through_seq: 1
                    }
                ),
                (9, clock)
            ]
        );
        assert_eq!(log.first_seq(), 2);
        // Acknowledged records leave as before, and the room they free is used first.
        assert_eq!(
            log.acknowledge(AuditAck {
                epoch: EPOCH,
                below: 5
            }),
            3
        );
        log.record(&k, 101, sync);
        assert_eq!((log.len(), log.next_seq()), (6, 11));
    }

    #[test]
    fn a_drop_that_takes_a_drop_record_reaches_back_over_its_range() {
        let k = key();
        let mut log = AuditLog::new(EPOCH).with_capacity(0);
        assert_eq!(log.capacity(), MIN_AUDIT_CAPACITY);
        let sync = AuditEvent::SyncApplied { iteration: 1 };
        for i in 0..4 {
            log.record(&k, i, sync);
        }
        // [0, 1] full; 2 drops 0-1; 4 drops the drop record 2 and 3, so it names 0-3.
        assert_eq!(
            events(&log),
            [
                (
                    4,
                    AuditEvent::RecordsDropped {
                        count: 4,
                        through_seq: 3
                    }
                ),
                (5, sync)
            ]
        );
        let again = AuditLog::restore(EPOCH, log.next_seq(), log.records().map(<[u8]>::to_vec))
            .unwrap()
            .with_capacity(2);
        assert_eq!(again, log, "the drop's reach is read back from the record");
    }

    #[test]
    fn a_restored_log_over_its_capacity_drops_down_at_its_next_record() {
        let k = key();
        let mut big = AuditLog::new(EPOCH);
        for i in 0..10 {
            big.record(&k, i, AuditEvent::SyncApplied { iteration: 1 });
        }
        let mut log = AuditLog::restore(EPOCH, 10, big.records().map(<[u8]>::to_vec))
            .unwrap()
            .with_capacity(4);
        assert_eq!(log.len(), 10);
        log.record(&k, 10, AuditEvent::ClockSet { step: 1 });
        assert_eq!(log.len(), 4);
        assert_eq!(
            events(&log)[2].1,
            AuditEvent::RecordsDropped {
                count: 8,
                through_seq: 7
            }
        );
    }
}
