//! The lock's persistent state in two files, each replaced atomically (written to a temporary
//! file, flushed to disk, renamed over the old one, and the directory flushed), so a crash
//! leaves either the old file or the new one, never a mix:
//!
//! - `state.json`: everything but a bundle in transit, in one write (a bundle applies
//!   atomically because its every effect lands in this one file);
//! - `transfer.bin`: the bundle arriving over BLE, up to the last acknowledged byte. It changes
//!   with every block, so it lives apart from the state rather than rewriting all of it.
//!
//! When a transfer completes, `state.json` is written before `transfer.bin` is removed: a crash
//! in between leaves a partial transfer of a bundle already applied, which the next offer of a
//! newer bundle replaces and an offer of the same one declines.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use door_protocol::revocation::RevocationEntry;
use door_protocol::sync::{ClockState, HighWater, Keypad, KeypadRules, PartialTransfer, SyncState};
use door_protocol::unlock::{Fingerprint, ReplayCache};
use door_protocol::{
    AuditEpoch, AuditLog, Doorcode, Floor, Id, LockState, RevocationList, Schedule, UnixTime,
    ZoneRules,
};
use serde::{Deserialize, Serialize};

use crate::LockError;

const FILE: &str = "state.json";
const TEMP: &str = "state.json.tmp";
const TRANSFER: &str = "transfer.bin";
const TRANSFER_TEMP: &str = "transfer.bin.tmp";
/// Format 2 added sync state, the clock correction, the keypad and the replay floor; a format 1
/// file reads as having none of them. Format 3 (Door Sync v2 and audit epochs): floors and an
/// issued floor instead of per-credential revocations, doorcodes with schedules and the keypad
/// rules, and the audit epoch (an older file without audit records gets a new epoch when it is
/// opened; one with records cannot be read: its records are of audit version 1, with no epoch).
const FORMAT: u32 = 3;
/// `DST2` added the writer; a `DST1` file, which has none, no one could resume, so it reads as
/// no transfer.
const TRANSFER_MAGIC: &[u8; 4] = b"DST2";
const TRANSFER_MAGIC_1: &[u8; 4] = b"DST1";
/// Magic, iteration, base iteration, total length, digest, writer.
const TRANSFER_HEAD: usize = 4 + 8 + 8 + 4 + 32 + 16;

#[derive(Serialize, Deserialize)]
struct StateFile {
    format: u32,
    /// Which lock the state belongs to, so a directory is never reused for another lock.
    lock_id: String,
    revocation_iteration: u64,
    revocations: Vec<Revoked>,
    replay: Vec<Seen>,
    #[serde(default)]
    replay_floor: Option<UnixTime>,
    /// The audit log's epoch (16 hex digits); drawn anew at a wipe.
    #[serde(default)]
    audit_epoch: Option<String>,
    next_seq: u64,
    audit: Vec<String>,
    #[serde(default)]
    sync: SyncFile,
    #[serde(default)]
    clock: ClockFile,
    #[serde(default)]
    keypad: KeypadFile,
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
}

#[derive(Clone, Copy, Serialize, Deserialize)]
struct HighWaterFile {
    time: UnixTime,
    clock: UnixTime,
}

impl ClockFile {
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

fn corrupt(what: impl std::fmt::Display) -> LockError {
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

pub(crate) struct Store {
    dir: PathBuf,
}

impl Store {
    pub(crate) fn new(dir: &Path) -> Result<Store, LockError> {
        fs::create_dir_all(dir)?;
        Ok(Store {
            dir: dir.to_path_buf(),
        })
    }

    /// The stored state, transfer included; `None` for a new lock. A file from before audit
    /// epochs (format 2 or older, no records held) gets `fresh_epoch()`, and the flag says the
    /// caller should write it at once.
    pub(crate) fn load(
        &self,
        lock_id: Id,
        fresh_epoch: impl FnOnce() -> AuditEpoch,
    ) -> Result<Option<(LockState, bool)>, LockError> {
        let bytes = match fs::read(self.dir.join(FILE)) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let f: StateFile = serde_json::from_slice(&bytes).map_err(corrupt)?;
        if !(1..=FORMAT).contains(&f.format) {
            return Err(corrupt(format!("unknown format {}", f.format)));
        }
        let stored = id(&f.lock_id)?;
        if stored != lock_id {
            return Err(LockError::OtherLock { stored });
        }
        // Before format 3, bundles revoked by credential. Those entries move to the revocation
        // documents' list, which still works by credential, so nothing a lock was told is lost;
        // the sync iteration restarts at 0 so that the next bundle is a full one.
        let legacy = f.format < 3;
        let revoked = entries(&f.revocations)?
            .into_iter()
            .chain(entries(&f.sync.revocations)?);
        let revocations =
            RevocationList::restore(f.revocation_iteration, revoked).map_err(corrupt)?;
        let seen = f
            .replay
            .iter()
            .map(|s| {
                let fp: Fingerprint = hex::decode(&s.fingerprint)
                    .ok()
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| corrupt("bad replay fingerprint"))?;
                Ok((fp, s.expires_at))
            })
            .collect::<Result<Vec<_>, LockError>>()?;
        let audit = f
            .audit
            .iter()
            .map(|a| hex::decode(a).map_err(corrupt))
            .collect::<Result<Vec<_>, LockError>>()?;
        let doorcodes = f
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
        let (epoch, upgraded) = match &f.audit_epoch {
            Some(e) => (
                AuditEpoch::from_hex(e).ok_or_else(|| corrupt(format!("bad audit epoch {e:?}")))?,
                false,
            ),
            None if audit.is_empty() => (fresh_epoch(), true),
            None => {
                return Err(corrupt(
                    "audit records from before audit epochs (format < 3)",
                ))
            }
        };
        let state = LockState {
            revocations,
            replay: ReplayCache::restore(ReplayCache::DEFAULT_CAPACITY, seen, f.replay_floor),
            audit: AuditLog::restore(epoch, f.next_seq, audit).map_err(corrupt)?,
            sync: restore_sync(&f.sync, legacy, doorcodes)?,
            clock: f.clock.state(),
            keypad: Keypad::restore(f.keypad.recent_failures.clone(), f.keypad.locked_until),
            transfer: self.load_transfer()?,
        };
        Ok(Some((state, upgraded)))
    }

    fn load_transfer(&self) -> Result<Option<PartialTransfer>, LockError> {
        let bytes = match fs::read(self.dir.join(TRANSFER)) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        if bytes.starts_with(TRANSFER_MAGIC_1) {
            return Ok(None);
        }
        let (head, received) = bytes
            .split_first_chunk::<TRANSFER_HEAD>()
            .filter(|(head, _)| head.starts_with(TRANSFER_MAGIC))
            .ok_or_else(|| corrupt("bad transfer file"))?;
        let u64_at = |at: usize| u64::from_be_bytes(head[at..at + 8].try_into().expect("8 bytes"));
        let total = u32::from_be_bytes(head[20..24].try_into().expect("4 bytes"));
        let digest: [u8; 32] = head[24..56].try_into().expect("32 bytes");
        let writer = Id::from_slice(&head[56..]);
        PartialTransfer::restore(
            u64_at(4),
            u64_at(12),
            total,
            digest,
            writer,
            received.to_vec(),
        )
        .map(Some)
        .ok_or_else(|| corrupt("transfer file sizes"))
    }

    /// Writes everything but the transfer.
    pub(crate) fn save(&self, lock_id: Id, state: &LockState) -> Result<(), LockError> {
        let f = StateFile {
            format: FORMAT,
            lock_id: lock_id.to_string(),
            revocation_iteration: state.revocations.iteration(),
            revocations: revoked(&state.revocations),
            replay: state
                .replay
                .entries()
                .iter()
                .map(|(fp, expires_at)| Seen {
                    fingerprint: hex::encode(fp),
                    expires_at: *expires_at,
                })
                .collect(),
            replay_floor: state.replay.floor(),
            audit_epoch: Some(state.audit.epoch().to_string()),
            next_seq: state.audit.next_seq(),
            audit: state.audit.records().map(hex::encode).collect(),
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
            clock: ClockFile {
                offset: state.clock.offset,
                last_signed_time: state.clock.last_signed_time,
                anchor: None,
                high_water: state.clock.high_water.map(|h| HighWaterFile {
                    time: h.time,
                    clock: h.clock,
                }),
            },
            keypad: KeypadFile {
                recent_failures: state.keypad.recent_failures().to_vec(),
                locked_until: state.keypad.locked_until(),
            },
        };
        // Serialising plain strings and integers cannot fail.
        let json = serde_json::to_vec_pretty(&f).expect("state serialises");
        self.replace(TEMP, FILE, &json)
    }

    /// Writes the transfer in progress, or removes the file when there is none (or none that
    /// anyone could resume: a transfer without a proven writer).
    pub(crate) fn save_transfer(
        &self,
        transfer: Option<&PartialTransfer>,
    ) -> Result<(), LockError> {
        let Some((t, writer)) = transfer.and_then(|t| Some((t, t.writer?))) else {
            match fs::remove_file(self.dir.join(TRANSFER)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(e.into()),
            }
            File::open(&self.dir)?.sync_all()?;
            return Ok(());
        };
        let mut bytes = Vec::with_capacity(TRANSFER_HEAD + t.received().len());
        bytes.extend_from_slice(TRANSFER_MAGIC);
        bytes.extend_from_slice(&t.iteration.to_be_bytes());
        bytes.extend_from_slice(&t.base_iteration.to_be_bytes());
        bytes.extend_from_slice(&t.total_len.to_be_bytes());
        bytes.extend_from_slice(&t.digest);
        bytes.extend_from_slice(&writer.0);
        bytes.extend_from_slice(t.received());
        self.replace(TRANSFER_TEMP, TRANSFER, &bytes)
    }

    fn replace(&self, temp: &str, name: &str, bytes: &[u8]) -> Result<(), LockError> {
        let temp = self.dir.join(temp);
        let mut file = File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&temp, self.dir.join(name))?;
        // The rename itself is durable only once the directory is.
        File::open(&self.dir)?.sync_all()?;
        Ok(())
    }
}
