//! What a lock keeps from Door Sync, and the rules for changing it: a bundle applies atomically
//! (every check before the first change), signed time per [`super::time`], and the keypad.
//!
//! Apply rules ([`LockState::apply_bundle`]), in order; the first that fails refuses the whole
//! bundle and changes nothing:
//!
//! | # | Check | Error |
//! |---|---|---|
//! | 1 | iteration above the lock's sync iteration | `Stale` |
//! | 2 | full, or a delta whose base is the lock's sync iteration | `WrongBase` |
//! | 3 | for this lock | `Foreign` |
//! | 4 | the resulting floors fit (1024 people) | `Full` |
//! | 5 | the resulting doorcodes fit (1024), one person per code, every schedule index within the keypad table | `Full`, `Malformed` |
//!
//! Then, all at once: floors, doorcodes and keypad rules replaced (full) or updated (delta:
//! floors only ever raised, doorcodes upserted and removed), the issued floor raised, expired
//! entries dropped, sync iteration set, `issued_at` taken as a signed time, audit records below
//! `audit_ack` freed if it names the lock's current audit epoch (else none), and a
//! `SyncApplied` record (after a `ClockSet` record if the clock moved) appended. A caller that persists state persists all of it in one write.

use alloc::vec::Vec;

use crate::access::AccessDocument;
use crate::audit::AuditEvent;
use crate::cbor::{Malformed, Problem};
use crate::ids::Id;
use crate::revocation::{Floor, FloorList};
use crate::schedule::{evaluate_any, Decision, Schedule};
use crate::sync::bundle::{Doorcode, KeypadRules, OpenedBundle};
use crate::sync::messages::acceptable_len;
use crate::sync::time::{verify_signed_time, TimeUpdate};
use crate::sync::{SyncError, MAX_DOORCODES};
use crate::unlock::{LockConfig, LockState};
use crate::UnixTime;

/// Wrong codes within [`KEYPAD_WINDOW`] at which the keypad locks: a busy shared keypad sees a
/// few typos a day, and they should not lock it.
pub const KEYPAD_MAX_FAILURES: usize = 10;
/// The sliding window wrong codes are counted over, in seconds. A day, so that guessing just
/// below the threshold buys no more than [`KEYPAD_MAX_FAILURES`] a day, and a success clears
/// nothing: the codes a holder types are not evidence that their other tries were typos.
pub const KEYPAD_WINDOW: i64 = 86_400;
/// The first lockout, in seconds; each further wrong code in the window doubles it, up to
/// [`KEYPAD_LOCKOUT_MAX`].
pub const KEYPAD_LOCKOUT: i64 = 60;
/// The longest lockout, in seconds. It sets the sustained guessing rate (one guess per
/// lockout, about 24 a day) and how long a prankster can keep the keypad shut per wrong code.
pub const KEYPAD_LOCKOUT_MAX: i64 = 3_600;
/// Wrong codes the keypad remembers: enough to reach the longest lockout (60 s doubled six
/// times is more than an hour), so forgetting older ones never shortens a lockout.
pub const KEYPAD_MEMORY: usize = KEYPAD_MAX_FAILURES + 7;

/// The sync data a lock holds: the iteration of the last bundle applied, the revocation floors,
/// the doorcodes and the keypad rules bundles gave it.
#[derive(Clone, Default, PartialEq, Eq, Debug)]
pub struct SyncState {
    iteration: u64,
    floors: FloorList,
    issued_floor: Option<UnixTime>,
    /// Sorted by person id.
    doorcodes: Vec<Doorcode>,
    keypad: Option<KeypadRules>,
}

impl SyncState {
    /// Rebuilds the state from what the accessors returned.
    pub fn restore(
        iteration: u64,
        floors: impl IntoIterator<Item = Floor>,
        issued_floor: Option<UnixTime>,
        doorcodes: impl IntoIterator<Item = Doorcode>,
        keypad: Option<KeypadRules>,
    ) -> Result<SyncState, SyncError> {
        let floors = FloorList::from_entries(floors).ok_or(SyncError::Full {
            capacity: FloorList::CAPACITY,
        })?;
        let doorcodes = checked_doorcodes(doorcodes.into_iter().collect(), keypad.as_ref())?;
        Ok(SyncState {
            iteration,
            floors,
            issued_floor,
            doorcodes,
            keypad,
        })
    }

    /// The iteration of the last bundle applied; 0 before any. What unlock answers report.
    pub fn iteration(&self) -> u64 {
        self.iteration
    }

    /// The people whose older documents are void.
    pub fn floors(&self) -> &FloorList {
        &self.floors
    }

    /// Documents issued before this are void.
    pub fn issued_floor(&self) -> Option<UnixTime> {
        self.issued_floor
    }

    /// The doorcodes, sorted by person id.
    pub fn doorcodes(&self) -> &[Doorcode] {
        &self.doorcodes
    }

    /// The zone and schedules doorcodes refer to.
    pub fn keypad(&self) -> Option<&KeypadRules> {
        self.keypad.as_ref()
    }

    /// Whether a bundle voided this document at `now` (a floor of its person above its
    /// iteration, or an issued floor after its issue).
    pub fn voids(&self, doc: &AccessDocument, now: UnixTime) -> bool {
        self.floors.voids(doc.person_id, doc.access_iteration, now)
            || self.issued_floor.is_some_and(|f| doc.issued_at < f)
    }

    /// Whether `code` opens at `now` by its schedules.
    fn code_decision(&self, code: &Doorcode, now: UnixTime) -> Decision {
        let Some(rules) = &self.keypad else {
            return Decision::OutOfSchedule { next_allowed: None };
        };
        let schedules: Vec<Schedule> = code
            .schedules
            .iter()
            .filter_map(|&i| rules.schedules.get(usize::from(i)).cloned())
            .collect();
        evaluate_any(&schedules, &rules.zone, now)
    }
}

/// Sorts by person and checks the caps, that no person or code is there twice and that every
/// schedule a code names is in the keypad table.
fn checked_doorcodes(
    mut doorcodes: Vec<Doorcode>,
    keypad: Option<&KeypadRules>,
) -> Result<Vec<Doorcode>, SyncError> {
    if doorcodes.len() > MAX_DOORCODES {
        return Err(SyncError::Full {
            capacity: MAX_DOORCODES,
        });
    }
    let table = keypad.map_or(0, |k| k.schedules.len());
    if doorcodes
        .iter()
        .any(|c| c.schedules.iter().any(|&i| usize::from(i) >= table))
    {
        return Err(Malformed::new("doorcodes.schedules", Problem::OutOfRange).into());
    }
    doorcodes.sort_unstable_by_key(|c| c.person_id);
    if doorcodes
        .windows(2)
        .any(|w| w[0].person_id == w[1].person_id)
    {
        return Err(Malformed::new("doorcodes.person_id", Problem::Duplicate).into());
    }
    let mut codes: Vec<&str> = doorcodes.iter().map(|c| c.code.as_str()).collect();
    codes.sort_unstable();
    if codes.windows(2).any(|w| w[0] == w[1]) {
        return Err(Malformed::new("doorcodes.code", Problem::Duplicate).into());
    }
    Ok(doorcodes)
}

/// The keypad's guard against guessing: when the last wrong codes came, and a lockout.
///
/// The rule: a wrong code (an unknown or expired one) read at `now` is remembered; once
/// [`KEYPAD_MAX_FAILURES`] or more are remembered within the [`KEYPAD_WINDOW`] before `now`
/// (or before the last wrong code, if the clock was since set back before it),
/// the keypad locks for [`KEYPAD_LOCKOUT`] doubled once for each wrong code beyond the
/// threshold, at most [`KEYPAD_LOCKOUT_MAX`]. While locked, codes are refused unread. Nothing
/// else changes the count: not a granted code, not a right code at the wrong hour, not a sync.
#[derive(Clone, Default, PartialEq, Eq, Debug)]
pub struct Keypad {
    /// The lock's times of the last wrong codes, oldest first, at most [`KEYPAD_MEMORY`].
    recent_failures: Vec<UnixTime>,
    /// While the lock's clock is before this, every code is refused unread.
    locked_until: Option<UnixTime>,
}

impl Keypad {
    /// Rebuilds the keypad from what the accessors returned; keeps the newest
    /// [`KEYPAD_MEMORY`] failures, in order.
    pub fn restore(mut recent_failures: Vec<UnixTime>, locked_until: Option<UnixTime>) -> Keypad {
        recent_failures.sort_unstable();
        let excess = recent_failures.len().saturating_sub(KEYPAD_MEMORY);
        recent_failures.drain(..excess);
        Keypad {
            recent_failures,
            locked_until,
        }
    }

    pub fn recent_failures(&self) -> &[UnixTime] {
        &self.recent_failures
    }

    pub fn locked_until(&self) -> Option<UnixTime> {
        self.locked_until
    }

    /// The lockout in force at `now`, if any.
    pub fn lockout(&self, now: UnixTime) -> Option<UnixTime> {
        self.locked_until.filter(|&until| now < until)
    }

    /// A wrong code read at `now`.
    fn failed(&mut self, now: UnixTime) {
        // The window ends at the latest of now and the last wrong code, so that it only ever
        // moves forward: a clock set back neither brings forgotten failures back into it nor
        // drops failures "after" now.
        let horizon = self
            .recent_failures
            .last()
            .map_or(now, |&last| last.max(now));
        let since = horizon.saturating_sub(KEYPAD_WINDOW);
        self.recent_failures.retain(|&t| t > since);
        // Kept in time order, so that forgetting drops the oldest even after the clock was set
        // back: whatever is forgotten, the newest KEYPAD_MEMORY alone reach the longest lockout.
        let at = self.recent_failures.partition_point(|&t| t <= now);
        self.recent_failures.insert(at, now);
        if self.recent_failures.len() > KEYPAD_MEMORY {
            self.recent_failures.remove(0);
        }
        // At most KEYPAD_MEMORY, a small number.
        let remembered = self.recent_failures.len() as u32;
        if let Some(beyond) = remembered.checked_sub(KEYPAD_MAX_FAILURES as u32) {
            let lockout = KEYPAD_LOCKOUT
                .checked_shl(beyond)
                .filter(|&l| l <= KEYPAD_LOCKOUT_MAX)
                .unwrap_or(KEYPAD_LOCKOUT_MAX);
            self.locked_until = Some(now.saturating_add(lockout));
        }
    }
}

/// A bundle as it arrives over BLE, up to the last byte the lock acknowledged. The lock keeps
/// one that a proven credential holder is bringing, `writer`, and the caller persists it (with
/// its received bytes) whenever the lock acknowledges, so that the same holder resumes it after
/// a disconnect or a restart; no one else does (`crate::sync::lock`).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PartialTransfer {
    pub iteration: u64,
    pub base_iteration: u64,
    pub total_len: u32,
    pub digest: [u8; 32],
    /// The person whose proven session wrote the bytes; `None` on a connection where no
    /// credential was proven (such a transfer is never persisted or resumed).
    pub writer: Option<Id>,
    received: Vec<u8>,
}

impl PartialTransfer {
    pub(crate) fn new(
        iteration: u64,
        base_iteration: u64,
        total_len: u32,
        digest: [u8; 32],
        writer: Option<Id>,
    ) -> PartialTransfer {
        PartialTransfer {
            iteration,
            base_iteration,
            total_len,
            digest,
            writer,
            received: Vec::new(),
        }
    }

    /// Rebuilds a persisted transfer; `None` if the sizes cannot be a transfer in progress or
    /// no proven holder wrote it (nothing could resume it).
    pub fn restore(
        iteration: u64,
        base_iteration: u64,
        total_len: u32,
        digest: [u8; 32],
        writer: Option<Id>,
        received: Vec<u8>,
    ) -> Option<PartialTransfer> {
        let in_progress = acceptable_len(total_len)
            && usize::try_from(total_len).is_ok_and(|total| received.len() < total);
        (in_progress && writer.is_some()).then_some(PartialTransfer {
            iteration,
            base_iteration,
            total_len,
            digest,
            writer,
            received,
        })
    }

    /// The bytes received so far, from offset 0.
    pub fn received(&self) -> &[u8] {
        &self.received
    }

    pub(crate) fn received_mut(&mut self) -> &mut Vec<u8> {
        &mut self.received
    }

    pub(crate) fn into_received(self) -> Vec<u8> {
        self.received
    }
}

/// What applying a bundle did.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Applied {
    /// The lock's sync iteration now.
    pub iteration: u64,
    pub full: bool,
    /// Audit records freed by the bundle's acknowledgement.
    pub freed: usize,
    /// How far the bundle's signed time moved the clock (0: not at all).
    pub clock_step: i64,
}

/// What the keypad did with a code.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum DoorcodeResult {
    Granted { person_id: Id },
    Denied(DoorcodeDenied),
}

/// Why a code did not open.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum DoorcodeDenied {
    /// No doorcode at this lock is that code.
    Unknown,
    /// The code was `person_id`'s, and has expired.
    Expired { person_id: Id },
    /// The code is `person_id`'s, but their schedule does not open the door now; it opens
    /// next at `next_allowed` (`None`: never again).
    OutOfSchedule {
        person_id: Id,
        next_allowed: Option<UnixTime>,
    },
    /// Too many wrong codes: the keypad refuses everything until then (not recorded, so a
    /// prankster cannot flood the audit log).
    LockedOut { until: UnixTime },
}

impl LockState {
    /// The lock's time: its hardware clock plus the correction signed time made.
    pub fn now(&self, clock: UnixTime) -> UnixTime {
        self.clock.now(clock)
    }

    /// The sync iteration unlock answers report: the last bundle applied.
    pub fn sync_iteration(&self) -> u64 {
        self.sync.iteration
    }

    /// Whether `doc` is revoked at `now`: its credential by a revocation document, or its
    /// person's older documents by a bundle's floor, or every document of its age by a bundle's
    /// issued floor.
    pub fn is_revoked(&self, doc: &AccessDocument, now: UnixTime) -> bool {
        self.revocations.is_revoked(doc.credential_id, now) || self.sync.voids(doc, now)
    }

    /// Applies an opened bundle atomically (the module's table); `clock` is the hardware
    /// clock. On success every change is made; on any error none is.
    pub fn apply_bundle(
        &mut self,
        config: &LockConfig,
        opened: &OpenedBundle,
        clock: UnixTime,
    ) -> Result<Applied, SyncError> {
        let b = opened.bundle();
        let have = self.sync.iteration;
        if b.iteration <= have {
            return Err(SyncError::Stale {
                have,
                got: b.iteration,
            });
        }
        if !b.is_full() && b.base_iteration != have {
            return Err(SyncError::WrongBase {
                have,
                base: b.base_iteration,
            });
        }
        if b.lock_id != config.lock_id {
            return Err(SyncError::Foreign { lock_id: b.lock_id });
        }
        let mut floors = if b.is_full() {
            FloorList::default()
        } else {
            self.sync.floors.clone()
        }
        .with_room(b.floors.len());
        for f in &b.floors {
            floors.raise(*f);
        }
        if floors.len() > FloorList::CAPACITY {
            return Err(SyncError::Full {
                capacity: FloorList::CAPACITY,
            });
        }
        let keypad = if b.is_full() {
            b.keypad.clone()
        } else {
            self.sync.keypad.clone()
        };
        let doorcodes = if b.is_full() {
            b.doorcodes.added.clone()
        } else {
            let changed = |id: &Id| {
                b.doorcodes.removed.contains(id)
                    || b.doorcodes.added.iter().any(|c| c.person_id == *id)
            };
            let mut merged: Vec<Doorcode> = self
                .sync
                .doorcodes
                .iter()
                .filter(|c| !changed(&c.person_id))
                .cloned()
                .collect();
            merged.extend(b.doorcodes.added.iter().cloned());
            merged
        };
        let mut doorcodes = checked_doorcodes(doorcodes, keypad.as_ref())?;

        // Every check passed: from here on nothing fails.
        let mut time = self.clock;
        // An acknowledgement of this log's epoch: the server had this installation's records,
        // so the bundle was issued after the lock was installed (commissioning).
        let bound = b.audit_ack.is_some_and(|a| a.epoch == self.audit.epoch());
        let step = match time.accept(b.issued_at, clock, None, bound, config.clock_tolerance) {
            TimeUpdate::Taken { step } => step,
            TimeUpdate::Stale { .. } | TimeUpdate::Unbound => 0,
        };
        let now = time.now(clock);
        floors.prune(now);
        doorcodes.retain(|c| c.is_live(now));
        self.sync = SyncState {
            iteration: b.iteration,
            floors,
            issued_floor: self.sync.issued_floor.max(b.issued_floor),
            doorcodes,
            keypad,
        };
        self.clock = time;
        // An acknowledgement of another epoch (the log before a wipe) frees nothing.
        let freed = b.audit_ack.map_or(0, |ack| self.audit.acknowledge(ack));
        if step != 0 {
            self.audit
                .record(&config.key, now, AuditEvent::ClockSet { step });
        }
        self.audit.record(
            &config.key,
            now,
            AuditEvent::SyncApplied {
                iteration: b.iteration,
            },
        );
        Ok(Applied {
            iteration: b.iteration,
            full: b.is_full(),
            freed,
            clock_step: step,
        })
    }

    /// Takes a signed time (COSE bytes) read when the hardware clock shows `clock`, per
    /// [`super::time`]'s rules, and records a `ClockSet` event if the clock moved.
    /// `phone_time` is a phone clock that a proven credential holder vouches for (the unlock
    /// path passes the request's `t`, and undoes a step back if the device signature then
    /// fails); `None` allows forward steps only.
    pub fn accept_signed_time(
        &mut self,
        config: &LockConfig,
        signed_time: &[u8],
        clock: UnixTime,
        phone_time: Option<UnixTime>,
    ) -> Result<TimeUpdate, SyncError> {
        let update = self.take_signed_time(config, signed_time, clock, phone_time)?;
        if let TimeUpdate::Taken { step } = update {
            if step != 0 {
                let now = self.clock.now(clock);
                self.audit
                    .record(&config.key, now, AuditEvent::ClockSet { step });
            }
        }
        Ok(update)
    }

    /// [`LockState::accept_signed_time`] without the audit record, which the unlock path writes
    /// once it knows the step stands.
    pub(crate) fn take_signed_time(
        &mut self,
        config: &LockConfig,
        signed_time: &[u8],
        clock: UnixTime,
        phone_time: Option<UnixTime>,
    ) -> Result<TimeUpdate, SyncError> {
        let signed = verify_signed_time(signed_time, &config.issuer_keys)?;
        if let Some(lock_id) = signed.lock_id.filter(|&id| id != config.lock_id) {
            return Err(SyncError::Foreign { lock_id });
        }
        let bound =
            signed.lock_id == Some(config.lock_id) && signed.epoch == Some(self.audit.epoch());
        Ok(self.clock.accept(
            signed.time,
            clock,
            phone_time,
            bound,
            config.clock_tolerance,
        ))
    }

    /// A code typed on the keypad at hardware clock `clock`: opens if it is a live doorcode of
    /// this lock. Every try outside a lockout is recorded; wrong ones lock the keypad by
    /// [`Keypad`]'s rule.
    pub fn enter_doorcode(
        &mut self,
        config: &LockConfig,
        code: &str,
        clock: UnixTime,
    ) -> DoorcodeResult {
        let now = self.clock.now(clock);
        if let Some(until) = self.keypad.lockout(now) {
            return DoorcodeResult::Denied(DoorcodeDenied::LockedOut { until });
        }
        // Compares every entry, matched or not, so the time taken does not depend on which
        // doorcode (if any) matched.
        let found = self
            .sync
            .doorcodes
            .iter()
            .fold(None, |found, c| found.or((c.code == code).then_some(c)));
        let result = match found {
            Some(c) if c.is_live(now) => match self.sync.code_decision(c, now) {
                Decision::Allowed { .. } => DoorcodeResult::Granted {
                    person_id: c.person_id,
                },
                other => DoorcodeResult::Denied(DoorcodeDenied::OutOfSchedule {
                    person_id: c.person_id,
                    next_allowed: match other {
                        Decision::OutOfSchedule { next_allowed } => next_allowed,
                        Decision::NotYetValid { from } => Some(from),
                        _ => None,
                    },
                }),
            },
            Some(c) => DoorcodeResult::Denied(DoorcodeDenied::Expired {
                person_id: c.person_id,
            }),
            None => DoorcodeResult::Denied(DoorcodeDenied::Unknown),
        };
        let event = match result {
            // A right code clears nothing: typing one's own code between guesses must not buy
            // more guesses.
            DoorcodeResult::Granted { person_id } => AuditEvent::DoorcodeEntry {
                person_id: Some(person_id),
                granted: true,
            },
            // The holder's own code at the wrong hour is no guess: it neither counts towards
            // the lockout nor clears it.
            DoorcodeResult::Denied(DoorcodeDenied::OutOfSchedule { person_id, .. }) => {
                AuditEvent::DoorcodeEntry {
                    person_id: Some(person_id),
                    granted: false,
                }
            }
            DoorcodeResult::Denied(denied) => {
                self.keypad.failed(now);
                AuditEvent::DoorcodeEntry {
                    person_id: match denied {
                        DoorcodeDenied::Expired { person_id } => Some(person_id),
                        _ => None,
                    },
                    granted: false,
                }
            }
        };
        self.audit.record(&config.key, now, event);
        result
    }
}
