//! Issuer-signed time, and how a lock corrects its clock with it.
//!
//! ```text
//! signed-time = {
//!   0 => 1,                              ; version
//!   1 => unix-time,                      ; the server's clock when it signed
//!   ? 2 => id,                           ; the one lock it is for; absent: any lock
//!   ? 3 => bstr .size 8,                 ; that lock's audit epoch: signed after it was
//!                                        ; installed (only with 2)
//! }
//! ```
//!
//! The server signs one on demand; a phone carries it inside its unlock request, and every sync
//! bundle's `issued_at` is one too. A signed time says only that true time is **at least**
//! this: phones carry them offline for a while, so one may be old when it arrives.
//!
//! # The invariant
//!
//! The lock keeps a **high-water mark** ([`HighWater`]): the latest time its clock ever showed
//! since it first had trusted time, advancing with the hardware clock. Then:
//!
//! > No sequence of messages moves the lock's clock more than the tolerance plus
//! > [`MAX_DRIFT_PPM`] of the hardware time since the mark was set behind the mark.
//! > A lock with no trusted time yet never steps back at all.
//!
//! Steps back do not lower the mark, so they do not add up: a credential holder who sends
//! step after step (issue 16: eleven requests, each with a fresh key, an older signed time
//! and a phone clock 240 s behind) gets the clock to the floor once and no further. With an
//! accurate hardware clock that reads at or ahead of true time, the mark never reads behind
//! true time, so the clock never reads more than the tolerance (plus that drift allowance)
//! behind true time: it cannot be turned back into an earlier schedule window. The replay
//! cache prunes by the clock, so it too never sees more than that step back.
//!
//! # The rules ([`ClockState::accept`])
//!
//! 1. A signed time is taken only if it is newer than the last one the lock took
//!    (`last_signed_time`); older ones change nothing, so a courier cannot replay them.
//! 2. If it is ahead of the lock's clock, the lock is slow: the clock steps forward to it.
//!    That is always safe (true time is at least that). Forward steps are as they always were.
//! 3. Stepping **back** needs more than a lower bound: only in an unlock, only when the phone's
//!    own clock (the request's `t`) is also more than the tolerance behind the lock, only if
//!    that phone then proves it holds a credential for the door (its device signature over
//!    `t` verifies; the step is undone otherwise), and only when the lock has trusted time (a
//!    mark). The clock then reads the latest of the signed time, the phone's time and the
//!    floor ([`HighWater::floor`]: the mark less the tolerance and the drift allowance), and
//!    never later than it read before.
//! 4. The clock never goes behind `last_signed_time` (each step lands at or after the signed
//!    time just taken).
//! 5. The mark: the first signed time taken sets it where the clock then reads (after any
//!    forward step). Afterwards a signed time no more than the tolerance behind the mark
//!    (or ahead of it) sets it again, at the later of the mark and the clock, on the current
//!    hardware clock: the mark never goes back, and drift is counted afresh from there. A
//!    step back leaves it alone.
//!
//! # Why drift correction stays, and why it is bounded so
//!
//! A crystal that runs fast carries the mark ahead of true time with it (the mark is the
//! lock's own reading). Without a drift allowance such a lock could never be set back more
//! than the tolerance from its mark: after a few weeks at 20 ppm it would answer every phone
//! "clock untrusted" for good, the very complaint ("false Out of Schedule after the lock's
//! clock drifts") the signed time exists to cure. The allowance is [`MAX_DRIFT_PPM`] (200 ppm,
//! 17 s a day) of hardware time since the mark was set: that is how far a crystal within
//! specification can have run ahead since then, so a drifted lock can always be set right,
//! and an attacker gains no more than it. It is counted from the mark, not from the last step,
//! so steps back cannot renew it; and a fresh signed time near the mark (rule 5) counts it
//! afresh, so a lock that sees fresh signed times (every sync bundle's `issued_at`, every
//! resident's unlock) keeps it to seconds. A lock that has seen none for a month allows about
//! nine minutes on top of the tolerance.
//!
//! # Commissioning
//!
//! A new or wiped lock has no trusted time and no mark: it never steps back on a phone's
//! say-so, and its first trusted time must be **bound to its installation**: a signed time
//! naming the lock and its current audit epoch (drawn at random when the lock was installed
//! or wiped, so nothing signed before then can name it), or a bundle whose audit
//! acknowledgement names that epoch (the server had records of this installation when it
//! issued it). Any other signed time changes nothing until then, so an old signed time cannot
//! carry a new lock into an era of the attacker's choosing. A lock learns of such a time from
//! the first bundle after its records reached the server, or at once from an installer's
//! (or any resident's) phone: `ClockSet` with an empty body asks the lock for its epoch and
//! whether it has trusted time (`ClockState`), the phone asks the server for a signed time
//! bound to that epoch (`GET /v1/time?lock_id=&epoch=`) and sends it in `ClockSet`. The first
//! bound time is taken forward only, like any other: a lock installed with a **slow** clock is
//! set right by it; one installed with a **fast** clock stays fast (the mark starts at its fast
//! reading), bar the drift allowance of 17 s a day: phones then get "clock untrusted" until it
//! is wiped and its hardware clock set right. Installers must set the clock at or just behind
//! true time (a slow clock is harmless).
//!
//! A step happens before the unlock's freshness check, so the unlock that brings the time is
//! judged by the corrected clock. The lock's replay cache stays safe when the clock steps back:
//! it remembers the newest expiry it ever pruned and refuses requests that would expire by then
//! (`ReplayCache::floor`).

use alloc::vec::Vec;

use crate::audit::AuditEpoch;
use crate::cbor::{At, Keys, Malformed, Problem, Reader, Writer};
use crate::cose;
use crate::ids::Id;
use crate::keys::{IssuerKey, IssuerKeys};
use crate::sync::SyncError;
use crate::UnixTime;

/// COSE content type of signed times (protected header label 3).
pub const TIME_CONTENT_TYPE: &str = "application/door-time+cbor";
/// The payload version this implementation reads and writes.
pub const TIME_VERSION: u64 = 1;
/// The largest signed time a lock reads from an unlock request (one is about 140 bytes).
pub const MAX_SIGNED_TIME_SIZE: usize = 256;
/// How fast a lock's clock may drift, in parts per million, for the backward-step bound
/// (counted over the hardware time since the high-water mark was set): 200 ppm is 17 s a day,
/// ten times an ordinary watch crystal's tolerance.
pub const MAX_DRIFT_PPM: i64 = 200;

/// An issuer-signed statement of the time.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub struct SignedTime {
    pub time: UnixTime,
    /// The one lock it is for; `None`: any lock of the property.
    pub lock_id: Option<Id>,
    /// That lock's audit epoch: the time was signed after the lock was installed or last wiped
    /// (commissioning). Only with `lock_id`.
    pub epoch: Option<AuditEpoch>,
}

mod key {
    pub const VERSION: u64 = 0;
    pub const TIME: u64 = 1;
    pub const LOCK_ID: u64 = 2;
    pub const EPOCH: u64 = 3;
}

impl SignedTime {
    /// The deterministic CBOR payload.
    pub fn to_cbor(&self) -> Vec<u8> {
        let mut w = Writer::new();
        // An epoch means nothing without the lock it belongs to.
        let epoch = self.epoch.filter(|_| self.lock_id.is_some());
        w.map(2 + usize::from(self.lock_id.is_some()) + usize::from(epoch.is_some()));
        w.uint(key::VERSION);
        w.uint(TIME_VERSION);
        w.uint(key::TIME);
        w.int(self.time);
        if let Some(id) = self.lock_id {
            w.uint(key::LOCK_ID);
            w.bytes(&id.0);
        }
        if let Some(epoch) = epoch {
            w.uint(key::EPOCH);
            w.bytes(&epoch.0);
        }
        w.into_vec()
    }

    /// Parses a payload: deterministic CBOR only, every key known.
    pub fn from_cbor(bytes: &[u8]) -> Result<SignedTime, Malformed> {
        let mut r = Reader::new(bytes);
        let n = r.map().at("payload")?;
        let mut keys = Keys::new();
        let mut t = SignedTime {
            time: 0,
            lock_id: None,
            epoch: None,
        };
        for _ in 0..n {
            match keys.next(&mut r).at("payload")? {
                key::VERSION => {
                    if r.uint().at("version")? != TIME_VERSION {
                        return Err(Malformed::new("version", Problem::Unsupported));
                    }
                }
                key::TIME => t.time = r.int().at("time")?,
                key::LOCK_ID => t.lock_id = Some(Id(r.bytes_fixed().at("lock_id")?)),
                key::EPOCH => t.epoch = Some(AuditEpoch(r.bytes_fixed().at("epoch")?)),
                key => return Err(Malformed::new("payload", Problem::UnknownKey { key })),
            }
        }
        keys.require(&[key::VERSION, key::TIME]).at("payload")?;
        r.finish().at("payload")?;
        if t.epoch.is_some() && t.lock_id.is_none() {
            return Err(Malformed::new("epoch", Problem::OutOfRange));
        }
        Ok(t)
    }

    /// Signs it: the tagged COSE_Sign1 bytes a phone puts in its unlock request.
    pub fn sign(&self, key: &IssuerKey) -> Vec<u8> {
        cose::sign1(key, TIME_CONTENT_TYPE, self.to_cbor())
            // About 140 bytes, far below the document cap.
            .expect("a signed time fits the document size cap")
    }
}

/// Checks a signed time's frame, issuer key, signature and payload. Whether it is for this
/// lock, and newer than what the lock has, is the lock's question.
pub fn verify_signed_time(bytes: &[u8], keys: &IssuerKeys) -> Result<SignedTime, SyncError> {
    if bytes.len() > MAX_SIGNED_TIME_SIZE {
        return Err(SyncError::Malformed(Malformed::new(
            "document",
            Problem::TooLarge,
        )));
    }
    let opened = cose::open1(bytes, TIME_CONTENT_TYPE, keys)?;
    Ok(SignedTime::from_cbor(opened.payload)?)
}

/// The latest time a lock's clock ever showed, kept as that reading and the hardware clock at
/// the moment the mark was set: at hardware clock `c` the mark reads `time + (c - clock)` (it
/// advances with the hardware clock, and never goes back, even if the hardware clock does).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct HighWater {
    /// The lock's (corrected) clock when the mark was set.
    pub time: UnixTime,
    /// The hardware clock then: drift is counted from here.
    pub clock: UnixTime,
}

impl HighWater {
    /// The mark at hardware clock `clock`.
    pub fn at(&self, clock: UnixTime) -> UnixTime {
        self.time
            .saturating_add(clock.saturating_sub(self.clock).max(0))
    }

    /// The earliest the lock's clock may be stepped back to at hardware clock `clock`: the mark
    /// less the tolerance and [`MAX_DRIFT_PPM`] of the hardware time since the mark was set.
    pub fn floor(&self, clock: UnixTime, tolerance: u32) -> UnixTime {
        let elapsed = clock.saturating_sub(self.clock).max(0);
        let drift = elapsed.saturating_mul(MAX_DRIFT_PPM) / 1_000_000;
        self.at(clock)
            .saturating_sub(i64::from(tolerance))
            .saturating_sub(drift)
    }
}

/// What a lock keeps about its clock: the correction it adds to its hardware clock, the signed
/// times it has taken and its high-water mark. Persisted with the lock's state, so a
/// correction survives a restart.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct ClockState {
    /// Seconds added to the hardware clock.
    pub offset: i64,
    /// The newest signed time taken; a signed time must be newer to count.
    pub last_signed_time: Option<UnixTime>,
    /// The lock's clock minus that signed time, read as it was taken (before any step it
    /// made): what the lock knows of its own drift, for its health reports
    /// (`crate::health::LockHealth::clock_offset`).
    pub last_skew: Option<i64>,
    /// The latest time the clock ever showed since the lock first had trusted time; `None`
    /// until then (no trusted time: the clock never steps back).
    pub high_water: Option<HighWater>,
}

/// What a signed time did.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TimeUpdate {
    /// Not newer than `last`, the newest taken: nothing changed.
    Stale { last: UnixTime },
    /// Taken; the clock moved by `step` seconds (0: it was right, or could not be proven wrong).
    Taken { step: i64 },
    /// The lock has no trusted time yet and this time is not bound to its installation
    /// (commissioning): nothing changed.
    Unbound,
}

impl ClockState {
    /// The lock's time: the hardware clock `clock` plus the correction.
    pub fn now(&self, clock: UnixTime) -> UnixTime {
        clock.saturating_add(self.offset)
    }

    /// The earliest the clock may be stepped back to at hardware clock `clock`
    /// ([`HighWater::floor`]); `None` before the first trusted time, when it never steps back.
    pub fn floor(&self, clock: UnixTime, tolerance: u32) -> Option<UnixTime> {
        self.high_water.map(|h| h.floor(clock, tolerance))
    }

    /// Applies the module's rules to a signed time `signed` (already verified and meant for
    /// this lock) read when the hardware clock shows `clock`. `phone_time` is the unlock
    /// request's device-signed `t` (`None` for a bundle's time); `bound`, whether it is bound to
    /// the lock's installation (commissioning); `tolerance` the lock's clock tolerance in
    /// seconds.
    pub fn accept(
        &mut self,
        signed: UnixTime,
        clock: UnixTime,
        phone_time: Option<UnixTime>,
        bound: bool,
        tolerance: u32,
    ) -> TimeUpdate {
        if self.high_water.is_none() && !bound {
            return TimeUpdate::Unbound;
        }
        if let Some(last) = self.last_signed_time.filter(|&last| signed <= last) {
            return TimeUpdate::Stale { last };
        }
        let now = self.now(clock);
        let behind = |t: UnixTime| now.saturating_sub(t) > i64::from(tolerance);
        let target = if signed > now {
            signed
        } else {
            match (phone_time, self.floor(clock, tolerance)) {
                (Some(t), Some(floor)) if behind(signed) && behind(t) => {
                    signed.max(t).max(floor).min(now)
                }
                _ => now,
            }
        };
        let step = target.saturating_sub(now);
        self.offset = self.offset.saturating_add(step);
        self.last_signed_time = Some(signed);
        self.last_skew = Some(now.saturating_sub(signed));
        self.high_water = Some(match self.high_water {
            // The first trusted time: the mark starts at the clock it set.
            None => HighWater {
                time: target,
                clock,
            },
            Some(h) => {
                let mark = h.at(clock);
                // Raised by a step forward past it, or confirmed by a signed time within the
                // tolerance of it: drift is counted afresh. A step back leaves it alone.
                if signed.saturating_add(i64::from(tolerance)) >= mark {
                    HighWater {
                        time: mark.max(target),
                        clock,
                    }
                } else {
                    h
                }
            }
        });
        TimeUpdate::Taken { step }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: UnixTime = 1_781_524_800;
    const DAY: i64 = 86_400;

    #[test]
    fn payload_round_trips_and_is_strict() {
        for t in [
            SignedTime {
                time: T,
                lock_id: None,
                epoch: None,
            },
            SignedTime {
                time: -1,
                lock_id: Some(Id([3; 16])),
                epoch: None,
            },
        ] {
            assert_eq!(SignedTime::from_cbor(&t.to_cbor()), Ok(t));
        }
        let mut trailing = SignedTime {
            time: T,
            lock_id: None,
            epoch: None,
        }
        .to_cbor();
        trailing.push(0);
        assert!(SignedTime::from_cbor(&trailing).is_err());
    }

    #[test]
    fn a_slow_clock_steps_forward_to_any_newer_signed_time() {
        let mut c = ClockState::default();
        assert_eq!(
            c.accept(T, T - 600, None, true, 120),
            TimeUpdate::Taken { step: 600 }
        );
        assert_eq!(c.now(T - 600), T);
        assert_eq!(
            c.last_skew,
            Some(-600),
            "it was 600 s behind when it took the time"
        );
        assert_eq!(
            c.accept(T, T, None, true, 120),
            TimeUpdate::Stale { last: T }
        );
        assert_eq!(c.last_skew, Some(-600), "a stale time measures nothing");
        // A few seconds slow is still slow: true time is at least the signed time.
        assert_eq!(
            c.accept(T + 10, T - 600 + 5, None, true, 120),
            TimeUpdate::Taken { step: 5 }
        );
    }

    #[test]
    fn an_old_signed_time_does_not_turn_a_right_clock_back() {
        let mut c = ClockState::default();
        // An hour-old signed time, the phone's clock agreeing with the lock's.
        assert_eq!(
            c.accept(T - 3600, T, Some(T), true, 120),
            TimeUpdate::Taken { step: 0 }
        );
        // Without a phone clock (a bundle's time), never back.
        assert_eq!(
            c.accept(T - 1800, T, None, true, 120),
            TimeUpdate::Taken { step: 0 }
        );
        assert_eq!(c.now(T), T);
        assert_eq!(
            c.last_skew,
            Some(1800),
            "the lock read ahead of the old time"
        );
    }

    #[test]
    fn stepping_back_is_bounded_by_drift_since_the_high_water_mark() {
        let mut c = ClockState::default();
        c.accept(T, T, None, true, 120);
        // Forty days later the lock runs 600 s fast: 200 ppm of 40 days is 691 s, enough.
        let clock = T + 40 * DAY + 600;
        let truth = T + 40 * DAY;
        assert_eq!(
            c.accept(truth, clock, Some(truth), true, 120),
            TimeUpdate::Taken { step: -600 }
        );
        assert_eq!(c.now(clock), truth);
        // The mark stays where the clock was: the step back does not lower it.
        assert_eq!(c.high_water.unwrap().at(clock), clock);
        // One day later a replayed old time and a phone claiming an hour ago: at most the
        // tolerance plus 200 ppm of the 41 days since the mark was set (708 s) behind the mark,
        // which still reads 600 s ahead of the clock.
        let clock = clock + DAY;
        let now = c.now(clock);
        assert_eq!(
            c.accept(truth + 1, clock, Some(now - 3600), true, 120),
            TimeUpdate::Taken {
                step: -(120 + 708 - 600)
            }
        );
        assert_eq!(c.now(clock), c.high_water.unwrap().at(clock) - 120 - 708);
    }

    #[test]
    fn steps_back_do_not_add_up() {
        // Issue 16: a right clock, then many holder-proven steps back, each with a newer but
        // old signed time and a phone clock 240 s behind the lock.
        let mut c = ClockState::default();
        c.accept(T, T, None, true, 120);
        let mut clock = T;
        for i in 1..=50 {
            clock += 30;
            let now = c.now(clock);
            c.accept(T + i, clock, Some(now - 240), true, 120);
            assert!(
                c.now(clock) >= clock - 120,
                "step {i}: {}",
                clock - c.now(clock)
            );
        }
        assert_eq!(c.now(clock), clock - 120);
    }

    #[test]
    fn without_trusted_time_the_clock_never_steps_back() {
        // A new or wiped lock: an old signed time and a matching phone time change nothing.
        let mut c = ClockState::default();
        assert_eq!(
            c.accept(T - 30 * DAY, T, Some(T - 30 * DAY), true, 120),
            TimeUpdate::Taken { step: 0 }
        );
        assert_eq!(c.now(T), T);
        // That first time sets the mark where the clock is, and from there the usual bound.
        assert_eq!(c.high_water, Some(HighWater { time: T, clock: T }));
        assert_eq!(
            c.accept(T - 29 * DAY, T + 10, Some(T - 29 * DAY), true, 120),
            TimeUpdate::Taken { step: -120 }
        );
        // Forward from no trusted time: the mark starts at the signed time.
        let mut c = ClockState::default();
        assert_eq!(
            c.accept(T + 600, T, Some(T + 600), true, 120),
            TimeUpdate::Taken { step: 600 }
        );
        assert_eq!(
            c.high_water,
            Some(HighWater {
                time: T + 600,
                clock: T
            })
        );
    }

    #[test]
    fn a_fresh_signed_time_near_the_mark_counts_drift_afresh() {
        let mut c = ClockState::default();
        c.accept(T, T, None, true, 120);
        let clock = T + 10 * DAY;
        c.accept(clock - 60, clock, None, true, 120);
        assert_eq!(c.high_water, Some(HighWater { time: clock, clock }));
        // An old one far behind it leaves the mark alone.
        c.accept(clock - 3600, clock + 5, None, true, 120);
        assert_eq!(c.high_water, Some(HighWater { time: clock, clock }));
    }
}
