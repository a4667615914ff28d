//! The JSON shapes of the lock's state: `state.json` (the part that changes only with bundles,
//! revocation documents and wipes, and every older format, which held everything) and the
//! decision state each journal frame carries (replay cache, clock, keypad).

use door_protocol::revocation::RevocationEntry;
use door_protocol::sync::{ClockState, HighWater, Keypad, KeypadRules, SyncState};
use door_protocol::unlock::{Fingerprint, ReplayCache};
use door_protocol::{
    AuditEpoch, Doorcode, Floor, Id, LockState, RevocationList, Schedule, UnixTime, ZoneRules,
};
use serde::{Deserialize, Serialize};

use crate::LockError;

/// Format 2 added sync state, the clock correction, the keypad and the replay floor; a format 1
/// file reads as having none of them. Format 3 (Door Sync v2 and audit epochs): floors and an
/// issued floor instead of per-credential revocations, doorcodes with schedules and the keypad
/// rules, and the audit epoch (an older file without audit records gets a new epoch when it is
/// opened; one with records cannot be read: its records are of audit version 1, with no epoch).
/// Format 4: the audit log and the decision state moved to the journal; this file keeps the
/// rest and the generation the journal's frames refer to.
pub(super) const FORMAT: u32 = 4;

#[derive(Serialize, Deserialize)]
pub(super) struct StateFile {
    pub(super) format: u32,
    /// Which lock the state belongs to, so a directory is never reused for another lock.
    pub(super) lock_id: String,
    /// Format 4: bumped by every write of this file. Journal frames of a later generation
    /// belong to a write of this file that never landed.
    #[serde(default)]
    pub(super) generation: u64,
    revocation_iteration: u64,
    revocations: Vec<Revoked>,
    #[serde(default)]
    sync: SyncFile,
    /// Formats 1-3 only, from here on: what the journal holds now.
    #[serde(flatten, skip_serializing)]
    pub(super) decision: DecisionFile,
    #[serde(default, skip_serializing)]
    audit_epoch: Option<String>,
    #[serde(default, skip_serializing)]
    next_seq: u64,
    #[serde(default, skip_serializing)]
    audit: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct Revoked {
    credential_id: String,
    expires_at: Option<UnixTime>,
}

#[derive(Serialize, Deserialize)]
struct Seen {
    fingerprint: String,
    expires_at: UnixTime,
}

#[derive(Default, Serialize, Deserialize)]
struct SyncFile {
    iteration: u64,
    /// Formats 1-2 only: per-credential revocations from bundles.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    revocations: Vec<Revoked>,
    #[serde(default)]
    floors: Vec<FloorFile>,
    #[serde(default)]
    issued_floor: Option<UnixTime>,
    /// In the clear: the lock's own storage, as a lock's flash would hold them.
    doorcodes: Vec<Code>,
    /// The keypad rules in their bundle encoding (hex).
    #[serde(default)]
    keypad: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct FloorFile {
    person_id: String,
    floor: u64,
    expires_at: UnixTime,
}

#[derive(Serialize, Deserialize)]
struct Code {
    person_id: String,
    code: String,
    expires_at: Option<UnixTime>,
    #[serde(default)]
    schedules: Vec<u8>,
}

#[derive(Default, Serialize, Deserialize)]
struct ClockFile {
    offset: i64,
    last_signed_time: Option<UnixTime>,
    /// Files written before the high-water mark: the clock when the last signed time was
    /// taken. Read to derive the mark, never written.
    #[serde(default, skip_serializing)]
    anchor: Option<UnixTime>,
    /// The high-water mark: the lock's clock when it was set, and the hardware clock then.
    #[serde(default)]
    high_water: Option<HighWaterFile>,
    /// Files written before health reports have none: unknown until the next signed time.
    #[serde(default)]
    last_skew: Option<i64>,
}

#[derive(Clone, Copy, Serialize, Deserialize)]
struct HighWaterFile {
    time: UnixTime,
    clock: UnixTime,
}

impl ClockFile {
    fn of(clock: &ClockState) -> ClockFile {
        ClockFile {
            offset: clock.offset,
            last_signed_time: clock.last_signed_time,
            anchor: None,
            high_water: clock.high_water.map(|h| HighWaterFile {
                time: h.time,
                clock: h.clock,
            }),
            last_skew: clock.last_skew,
        }
    }

    /// The clock state; a file from before the high-water mark gets one derived from what it
    /// holds. The offset has not changed since the anchor was set (every step sets it), so the
    /// hardware clock then was `anchor - offset`, and a mark set there reads the clock as it
    /// is now: the lock may step back no further from here than the old rule let it, counting
    /// drift from the same instant. No signed time taken: no trusted time, no mark.
    fn state(&self) -> ClockState {
        let high_water = match (self.high_water, self.last_signed_time) {
            (Some(h), _) => Some(HighWater {
                time: h.time,
                clock: h.clock,
            }),
            (None, None) => None,
            (None, Some(last)) => {
                let time = self.anchor.unwrap_or(last).max(last);
                Some(HighWater {
                    time,
                    clock: time.saturating_sub(self.offset),
                })
            }
        };
        ClockState {
            offset: self.offset,
            last_signed_time: self.last_signed_time,
            high_water,
            last_skew: self.last_skew,
        }
    }
}

#[derive(Default, Serialize, Deserialize)]
struct KeypadFile {
    /// The lock's times of the last wrong codes. Older files kept a count of consecutive
    /// failures instead, with no times: it is dropped, as a success would have dropped it.
    #[serde(default)]
    recent_failures: Vec<UnixTime>,
    locked_until: Option<UnixTime>,
}

/// What a decision changes besides the audit log: small and bounded (the replay cache holds at
/// most its capacity), so every journal frame carries all of it.
#[derive(Default, Serialize, Deserialize)]
pub(super) struct DecisionFile {
    #[serde(default)]
    replay: Vec<Seen>,
    #[serde(default)]
    replay_floor: Option<UnixTime>,
    #[serde(default)]
    clock: ClockFile,
    #[serde(default)]
    keypad: KeypadFile,
}

/// The replay cache, clock and keypad a frame restores.
pub(super) struct DecisionState {
    pub(super) replay: ReplayCache,
    pub(super) clock: ClockState,
    pub(super) keypad: Keypad,
}

impl DecisionFile {
    pub(super) fn of(state: &LockState) -> DecisionFile {
        DecisionFile {
            replay: seen(&state.replay),
            replay_floor: state.replay.floor(),
            clock: ClockFile::of(&state.clock),
            keypad: KeypadFile {
                recent_failures: state.keypad.recent_failures().to_vec(),
                locked_until: state.keypad.locked_until(),
            },
        }
    }

    pub(super) fn restore(&self) -> Result<DecisionState, LockError> {
        Ok(DecisionState {
            replay: replay_cache(&self.replay, self.replay_floor)?,
            clock: self.clock.state(),
            keypad: Keypad::restore(
                self.keypad.recent_failures.clone(),
                self.keypad.locked_until,
            ),
        })
    }
}

pub(super) fn corrupt(what: impl std::fmt::Display) -> LockError {
    LockError::Corrupt(what.to_string())
}

fn id(hex_str: &str) -> Result<Id, LockError> {
    Id::from_hex(hex_str).ok_or_else(|| corrupt(format!("bad id {hex_str:?}")))
}

fn revoked(list: &RevocationList) -> Vec<Revoked> {
    list.entries()
        .iter()
        .map(|e| Revoked {
            credential_id: e.credential_id.to_string(),
            expires_at: e.expires_at,
        })
        .collect()
}

fn entries(revoked: &[Revoked]) -> Result<Vec<RevocationEntry>, LockError> {
    revoked
        .iter()
        .map(|r| {
            Ok(RevocationEntry {
                credential_id: id(&r.credential_id)?,
                expires_at: r.expires_at,
            })
        })
        .collect()
}

fn seen(replay: &ReplayCache) -> Vec<Seen> {
    replay
        .entries()
        .iter()
        .map(|(fp, expires_at)| Seen {
            fingerprint: hex::encode(fp),
            expires_at: *expires_at,
        })
        .collect()
}

fn replay_cache(seen: &[Seen], floor: Option<UnixTime>) -> Result<ReplayCache, LockError> {
    let entries = seen
        .iter()
        .map(|s| {
            let fp: Fingerprint = hex::decode(&s.fingerprint)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| corrupt("bad replay fingerprint"))?;
            Ok((fp, s.expires_at))
        })
        .collect::<Result<Vec<_>, LockError>>()?;
    Ok(ReplayCache::restore(
        ReplayCache::DEFAULT_CAPACITY,
        entries,
        floor,
    ))
}

fn restore_sync(
    f: &SyncFile,
    legacy: bool,
    doorcodes: Vec<Doorcode>,
) -> Result<SyncState, LockError> {
    let floors = f
        .floors
        .iter()
        .map(|e| {
            Ok(Floor {
                person_id: id(&e.person_id)?,
                floor: e.floor,
                expires_at: e.expires_at,
            })
        })
        .collect::<Result<Vec<_>, LockError>>()?;
    let keypad = match (&f.keypad, legacy && !doorcodes.is_empty()) {
        (Some(hex_rules), _) => Some(
            KeypadRules::from_cbor(&hex::decode(hex_rules).map_err(corrupt)?).map_err(corrupt)?,
        ),
        (None, true) => Some(KeypadRules {
            zone: ZoneRules::fixed(0),
            schedules: vec![Schedule::always()],
        }),
        (None, false) => None,
    };
    let iteration = if legacy { 0 } else { f.iteration };
    SyncState::restore(iteration, floors, f.issued_floor, doorcodes, keypad).map_err(corrupt)
}

/// What a format 1-3 file held of the audit log.
pub(super) struct LegacyAudit {
    pub(super) epoch: Option<AuditEpoch>,
    pub(super) next_seq: u64,
    pub(super) records: Vec<Vec<u8>>,
}

impl StateFile {
    /// This file for `state` (format 4: no audit log, no decision state).
    pub(super) fn of(lock_id: Id, state: &LockState, generation: u64) -> StateFile {
        StateFile {
            format: FORMAT,
            lock_id: lock_id.to_string(),
            generation,
            revocation_iteration: state.revocations.iteration(),
            revocations: revoked(&state.revocations),
            sync: SyncFile {
                iteration: state.sync.iteration(),
                revocations: Vec::new(),
                floors: state
                    .sync
                    .floors()
                    .entries()
                    .iter()
                    .map(|e| FloorFile {
                        person_id: e.person_id.to_string(),
                        floor: e.floor,
                        expires_at: e.expires_at,
                    })
                    .collect(),
                issued_floor: state.sync.issued_floor(),
                keypad: state.sync.keypad().map(|k| hex::encode(k.to_cbor())),
                doorcodes: state
                    .sync
                    .doorcodes()
                    .iter()
                    .map(|c| Code {
                        person_id: c.person_id.to_string(),
                        code: c.code.clone(),
                        expires_at: c.expires_at,
                        schedules: c.schedules.clone(),
                    })
                    .collect(),
            },
            decision: DecisionFile::default(),
            audit_epoch: None,
            next_seq: 0,
            audit: Vec::new(),
        }
    }

    pub(super) fn parse(bytes: &[u8], lock_id: Id) -> Result<StateFile, LockError> {
        let f: StateFile = serde_json::from_slice(bytes).map_err(corrupt)?;
        if !(1..=FORMAT).contains(&f.format) {
            return Err(corrupt(format!("unknown format {}", f.format)));
        }
        let stored = id(&f.lock_id)?;
        if stored != lock_id {
            return Err(LockError::OtherLock { stored });
        }
        Ok(f)
    }

    /// The revocations and sync state: the whole of a format 4 file.
    pub(super) fn restore(&self) -> Result<(RevocationList, SyncState), LockError> {
        // Before format 3, bundles revoked by credential. Those entries move to the revocation
        // documents' list, which still works by credential, so nothing a lock was told is lost;
        // the sync iteration restarts at 0 so that the next bundle is a full one.
        let legacy = self.format < 3;
        let revoked = entries(&self.revocations)?
            .into_iter()
            .chain(entries(&self.sync.revocations)?);
        let revocations =
            RevocationList::restore(self.revocation_iteration, revoked).map_err(corrupt)?;
        let doorcodes = self
            .sync
            .doorcodes
            .iter()
            .map(|c| {
                Ok(Doorcode {
                    person_id: id(&c.person_id)?,
                    code: c.code.clone(),
                    expires_at: c.expires_at,
                    // Codes before format 3 had no schedule: they keep opening at every hour
                    // until the full bundle that replaces them.
                    schedules: if legacy { vec![0] } else { c.schedules.clone() },
                })
            })
            .collect::<Result<Vec<_>, LockError>>()?;
        Ok((revocations, restore_sync(&self.sync, legacy, doorcodes)?))
    }

    /// Formats 1-3: the audit log this file held.
    pub(super) fn legacy_audit(&self) -> Result<LegacyAudit, LockError> {
        let epoch = self
            .audit_epoch
            .as_deref()
            .map(|e| {
                AuditEpoch::from_hex(e).ok_or_else(|| corrupt(format!("bad audit epoch {e:?}")))
            })
            .transpose()?;
        let records = self
            .audit
            .iter()
            .map(|a| hex::decode(a).map_err(corrupt))
            .collect::<Result<Vec<_>, LockError>>()?;
        Ok(LegacyAudit {
            epoch,
            next_seq: self.next_seq,
            records,
        })
    }
}
