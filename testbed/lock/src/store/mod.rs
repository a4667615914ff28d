//! The lock's persistent state, in a directory:
//!
//! - `state.json`: the revocations and what bundles gave (doorcodes, floors, keypad rules): the
//!   larger part, which changes only with a bundle, a revocation document or a wipe, and a
//!   generation number. Replaced atomically (written to a temporary file, flushed, renamed over
//!   the old one, and the directory flushed), so a crash leaves the old file or the new one.
//! - `audit.journal`: the audit log and the decision state (replay cache, clock correction,
//!   keypad), as frames appended and flushed one per persist (`journal`). A decision appends
//!   its new records and the decision state (bounded: the replay cache has a capacity), so its
//!   cost does not grow with the log or with the doorcodes; nothing is rewritten.
//! - `transfer.bin`: the bundle arriving over BLE, up to the last acknowledged byte, replaced
//!   atomically with every block.
//!
//! **Why a journal and not SQLite.** The journal needs what this lock does and nothing more:
//! one append and one flush per decision, the same on a lock's flash as on a disk, and no
//! dependency a firmware port would have to replace; rusqlite in WAL mode would also append
//! per decision, but it would bring a SQL engine for one table and a key-value row.
//!
//! **What a crash leaves.** A frame counts once it is whole on disk; the answer is released only
//! after its flush, so a frame a crash tore (cut short, or failing its check: the journal's
//! last frame only) was never answered: it is cut off at the next open, and with it records no
//! phone ever saw. Every record a phone has pulled, and every answer sent, is in a whole frame.
//! A change of `state.json` (a bundle, a revocation document, a wipe) appends its frame tagged
//! with the next generation first, then replaces `state.json` with that generation: the
//! rename is the one commit point. A crash in between leaves a frame newer than `state.json`,
//! which the next open cuts off, so a bundle's records (its `sync-applied`, the
//! acknowledgement's freeing) never outlive a bundle that did not apply.
//!
//! **Compaction.** Freed records and superseded decision states stay in the journal until it
//! is more than twice the size it had when last written whole (and at least
//! [`COMPACT_MIN`]); it is then written whole again (one frame, replaced atomically like
//! `state.json`), and after a wipe. Each compaction writes at most what was appended since the
//! last, so its cost per decision is constant on average.
//!
//! When a transfer completes, `state.json` is written before `transfer.bin` is removed: a crash
//! in between leaves a partial transfer of a bundle already applied, which the next offer of a
//! newer bundle replaces and an offer of the same one declines.
//!
//! **Older files.** A `state.json` of format 1-3 held everything, audit log included; opening it
//! writes the journal and then `state.json` in format 4. A crash in between leaves the old file,
//! which the next open migrates again (a journal without a format-4 `state.json` is ignored).

mod files;
mod journal;
#[cfg(test)]
mod tests;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use door_protocol::sync::PartialTransfer;
use door_protocol::unlock::VerifiedDocuments;
use door_protocol::{AuditEpoch, AuditLog, Id, LockState};

use crate::LockError;
use files::{corrupt, StateFile};
use journal::Frame;

const FILE: &str = "state.json";
const TEMP: &str = "state.json.tmp";
const JOURNAL: &str = "audit.journal";
const JOURNAL_TEMP: &str = "audit.journal.tmp";
const TRANSFER: &str = "transfer.bin";
const TRANSFER_TEMP: &str = "transfer.bin.tmp";
/// `DST2` added the writer; a `DST1` file, which has none, no one could resume, so it reads as
/// no transfer.
const TRANSFER_MAGIC: &[u8; 4] = b"DST2";
const TRANSFER_MAGIC_1: &[u8; 4] = b"DST1";
/// Magic, iteration, base iteration, total length, digest, writer.
const TRANSFER_HEAD: usize = 4 + 8 + 8 + 4 + 32 + 16;
/// Journals smaller than this are never compacted: a few hundred decisions' worth.
const COMPACT_MIN: u64 = 256 * 1024;

/// What changed, for [`Store::save`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Change {
    /// The audit log, replay cache, clock or keypad: one journal frame.
    Decision,
    /// Anything: a journal frame and `state.json`.
    All,
}

pub(crate) struct Store {
    dir: PathBuf,
    audit_capacity: usize,
    /// What the disk holds, as far as the next write needs it.
    generation: u64,
    epoch: AuditEpoch,
    next_seq: u64,
    journal_len: u64,
    compact_at: u64,
    /// [`COMPACT_MIN`]; smaller in tests, which compact without writing 256 KiB.
    compact_min: u64,
    /// A write failed after its journal frame may have (partly) landed: the next write cuts
    /// the journal back to `journal_len` first, so no void frame stays before a valid one.
    stale_tail: bool,
}

impl Store {
    pub(crate) fn new(dir: &Path, audit_capacity: usize) -> Result<Store, LockError> {
        fs::create_dir_all(dir)?;
        Ok(Store {
            dir: dir.to_path_buf(),
            audit_capacity,
            generation: 0,
            epoch: AuditEpoch::default(),
            next_seq: 0,
            journal_len: 0,
            compact_at: COMPACT_MIN,
            compact_min: COMPACT_MIN,
            stale_tail: false,
        })
    }

    /// The stored state, transfer included; `None` for a new lock. `true` with it: the files
    /// are of an older format (a format 2 or older without records gets `fresh_epoch()`), and
    /// the caller should [`Store::create`] them anew at once.
    pub(crate) fn load(
        &mut self,
        lock_id: Id,
        fresh_epoch: impl FnOnce() -> AuditEpoch,
    ) -> Result<Option<(LockState, bool)>, LockError> {
        let Some(bytes) = read_if_present(&self.dir.join(FILE))? else {
            return Ok(None);
        };
        let f = StateFile::parse(&bytes, lock_id)?;
        let (revocations, sync) = f.restore()?;
        let old = f.format < files::FORMAT;
        let (audit, decision) = match old {
            true => (self.legacy_audit(&f, fresh_epoch)?, f.decision.restore()?),
            false => {
                let (audit, decision) = self.load_journal(f.generation)?;
                (audit, decision.restore()?)
            }
        };
        let state = LockState {
            revocations,
            replay: decision.replay,
            audit,
            sync,
            clock: decision.clock,
            keypad: decision.keypad,
            transfer: self.load_transfer()?,
            // A cache of checked signatures: a restart checks each document in full again.
            verified: VerifiedDocuments::default(),
        };
        Ok(Some((state, old)))
    }

    fn legacy_audit(
        &self,
        f: &StateFile,
        fresh_epoch: impl FnOnce() -> AuditEpoch,
    ) -> Result<AuditLog, LockError> {
        let legacy = f.legacy_audit()?;
        let epoch = match legacy.epoch {
            Some(epoch) => epoch,
            None if legacy.records.is_empty() => fresh_epoch(),
            None => {
                return Err(corrupt(
                    "audit records from before audit epochs (format < 3)",
                ))
            }
        };
        Ok(AuditLog::restore(epoch, legacy.next_seq, legacy.records)
            .map_err(corrupt)?
            .with_capacity(self.audit_capacity))
    }

    /// Reads the journal of `state.json`'s `generation`, cuts off a torn or void tail, and
    /// takes note of where the disk stands.
    fn load_journal(
        &mut self,
        generation: u64,
    ) -> Result<(AuditLog, files::DecisionFile), LockError> {
        let path = self.dir.join(JOURNAL);
        let bytes = read_if_present(&path)?.ok_or_else(|| corrupt("audit journal missing"))?;
        let mut read = journal::read(&bytes, generation)?;
        if read.valid < bytes.len() {
            let file = OpenOptions::new().write(true).open(&path)?;
            file.set_len(read.valid as u64)?;
            file.sync_all()?;
        }
        let audit = journal::replay(&read.frames, self.audit_capacity)?;
        let decision = read
            .frames
            .pop()
            .map(|frame| frame.decision)
            .ok_or_else(|| corrupt("empty audit journal"))?;
        self.generation = generation;
        self.epoch = audit.epoch();
        self.next_seq = audit.next_seq();
        self.journal_len = read.valid as u64;
        self.compact_at = self.compact_min.max(2 * self.journal_len);
        self.stale_tail = false;
        Ok((audit, decision))
    }

    fn load_transfer(&self) -> Result<Option<PartialTransfer>, LockError> {
        let Some(bytes) = read_if_present(&self.dir.join(TRANSFER))? else {
            return Ok(None);
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

    /// Writes everything (but the transfer) afresh: a new lock, or files of an older format. The
    /// journal goes first; until `state.json` names its generation it is not read.
    pub(crate) fn create(&mut self, lock_id: Id, state: &LockState) -> Result<(), LockError> {
        let generation = self.generation + 1;
        self.write_journal(generation, state)?;
        self.write_state(lock_id, state, generation)
    }

    /// Persists `state` (but the transfer): a journal frame with what `change` names, and
    /// `state.json` too for [`Change::All`]. On an error the disk holds what it held before
    /// (a frame written in vain is void and cut off).
    pub(crate) fn save(
        &mut self,
        lock_id: Id,
        state: &LockState,
        change: Change,
    ) -> Result<(), LockError> {
        let generation = match change {
            Change::Decision => self.generation,
            Change::All => self.generation + 1,
        };
        let frame = Frame::after(generation, self.epoch, self.next_seq, state).encode();
        let written = self.append(&frame).and_then(|()| match change {
            Change::Decision => Ok(()),
            Change::All => self.write_state(lock_id, state, generation),
        });
        if written.is_err() {
            self.stale_tail = true;
            return written;
        }
        let restarted = state.audit.epoch() != self.epoch;
        self.epoch = state.audit.epoch();
        self.next_seq = state.audit.next_seq();
        self.journal_len += frame.len() as u64;
        if restarted || self.journal_len > self.compact_at {
            self.write_journal(self.generation, state)?;
        }
        Ok(())
    }

    fn append(&mut self, frame: &[u8]) -> Result<(), LockError> {
        let mut file = OpenOptions::new()
            .write(true)
            .open(self.dir.join(JOURNAL))?;
        if self.stale_tail {
            file.set_len(self.journal_len)?;
            self.stale_tail = false;
        }
        // At the end the disk holds, not the end the file may have beyond it.
        io::Seek::seek(&mut file, io::SeekFrom::Start(self.journal_len))?;
        file.write_all(frame)?;
        file.sync_data()?;
        Ok(())
    }

    /// The journal as one frame of `generation`, replaced atomically: a compaction, or the
    /// first journal.
    fn write_journal(&mut self, generation: u64, state: &LockState) -> Result<(), LockError> {
        let frame = Frame::whole(generation, state).encode();
        self.replace(JOURNAL_TEMP, JOURNAL, &frame)?;
        self.epoch = state.audit.epoch();
        self.next_seq = state.audit.next_seq();
        self.journal_len = frame.len() as u64;
        self.compact_at = self.compact_min.max(2 * self.journal_len);
        self.stale_tail = false;
        Ok(())
    }

    fn write_state(
        &mut self,
        lock_id: Id,
        state: &LockState,
        generation: u64,
    ) -> Result<(), LockError> {
        let f = StateFile::of(lock_id, state, generation);
        // Serialising plain strings and integers cannot fail.
        let json = serde_json::to_vec_pretty(&f).expect("state serialises");
        self.replace(TEMP, FILE, &json)?;
        self.generation = generation;
        Ok(())
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

fn read_if_present(path: &Path) -> Result<Option<Vec<u8>>, LockError> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}
