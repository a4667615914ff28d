//! The audit journal's frames: `length (4, big-endian) ‖ check (8) ‖ JSON payload`, where the
//! check is the first 8 bytes of SHA-256 over the payload. Appending one frame is one write, so
//! a crash can tear only the last frame, and the check tells a torn frame from a whole one.

use std::ops::Range;

use door_protocol::{AuditEpoch, AuditLog, AuditRecord, LockState};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::files::{corrupt, DecisionFile};
use crate::LockError;

const LEN: usize = 4;
const CHECK: usize = 8;
const HEAD: usize = LEN + CHECK;

/// One append: what a persist changed of the audit log, and the decision state after it.
#[derive(Serialize, Deserialize)]
pub(super) struct Frame {
    /// The state.json generation this frame belongs to. A frame of a later generation than
    /// state.json's was appended for a write of state.json that never landed: it is void.
    pub(super) generation: u64,
    /// Present when a log starts here (a new lock, a wipe, a compaction): the records before
    /// are not this log's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    epoch: Option<String>,
    /// Records appended, oldest first (signed, hex).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    records: Vec<String>,
    /// The log holds no record below this any more (acknowledged or dropped).
    first_seq: u64,
    next_seq: u64,
    pub(super) decision: DecisionFile,
}

impl Frame {
    /// The frame taking the journal from a log of `epoch` whose records below `next_seq` it
    /// holds to `state`: only what is new, or the whole log if its epoch changed (a wipe).
    pub(super) fn after(
        generation: u64,
        epoch: AuditEpoch,
        next_seq: u64,
        state: &LockState,
    ) -> Frame {
        let audit = &state.audit;
        if audit.epoch() != epoch {
            return Frame::whole(generation, state);
        }
        Frame {
            generation,
            epoch: None,
            records: audit
                .batch(next_seq, usize::MAX)
                .0
                .into_iter()
                .map(hex::encode)
                .collect(),
            first_seq: audit.first_seq(),
            next_seq: audit.next_seq(),
            decision: DecisionFile::of(state),
        }
    }

    /// The whole log in one frame: what starts a journal.
    pub(super) fn whole(generation: u64, state: &LockState) -> Frame {
        let audit = &state.audit;
        Frame {
            generation,
            epoch: Some(audit.epoch().to_string()),
            records: audit.records().map(hex::encode).collect(),
            first_seq: audit.first_seq(),
            next_seq: audit.next_seq(),
            decision: DecisionFile::of(state),
        }
    }

    pub(super) fn encode(&self) -> Vec<u8> {
        // Plain strings and integers: serialising cannot fail.
        let payload = serde_json::to_vec(self).expect("frame serialises");
        let mut out = Vec::with_capacity(HEAD + payload.len());
        let len = u32::try_from(payload.len()).expect("a frame is far below 4 GiB");
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&Sha256::digest(&payload)[..CHECK]);
        out.extend_from_slice(&payload);
        out
    }
}

/// A journal read back: its frames up to the first that does not count, and where they end.
pub(super) struct Read {
    pub(super) frames: Vec<Frame>,
    /// The bytes that count; whatever follows is a torn or void tail, to be cut off.
    pub(super) valid: usize,
}

/// Reads `bytes`, stopping at a torn last frame (cut short, or whole but failing its check) or
/// at the first frame of a generation above `generation`. A frame that fails its check with
/// more bytes after it was not torn by a crash: the journal is corrupt.
pub(super) fn read(bytes: &[u8], generation: u64) -> Result<Read, LockError> {
    let mut frames = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let Some(range) = frame_at(bytes, at) else {
            break;
        };
        let payload = &bytes[range.clone()];
        if Sha256::digest(payload)[..CHECK] != bytes[at + LEN..at + HEAD] {
            if range.end < bytes.len() {
                return Err(corrupt(format!(
                    "journal frame at byte {at} fails its check"
                )));
            }
            break;
        }
        let frame: Frame = serde_json::from_slice(payload).map_err(corrupt)?;
        if frame.generation > generation {
            break;
        }
        frames.push(frame);
        at = range.end;
    }
    Ok(Read { frames, valid: at })
}

/// The payload of the frame at `at`, if the bytes hold all of it.
fn frame_at(bytes: &[u8], at: usize) -> Option<Range<usize>> {
    let head = bytes.get(at..at + HEAD)?;
    let len = u32::from_be_bytes(head[..LEN].try_into().expect("4 bytes")) as usize;
    let end = (at + HEAD)
        .checked_add(len)
        .filter(|&end| end <= bytes.len())?;
    Some(at + HEAD..end)
}

/// The audit log the frames build.
pub(super) fn replay(frames: &[Frame], capacity: usize) -> Result<AuditLog, LockError> {
    let last = frames
        .last()
        .ok_or_else(|| corrupt("empty audit journal"))?;
    let mut epoch = None;
    let mut held: Vec<(u64, Vec<u8>)> = Vec::new();
    for frame in frames {
        if let Some(e) = &frame.epoch {
            epoch = Some(
                AuditEpoch::from_hex(e).ok_or_else(|| corrupt(format!("bad audit epoch {e:?}")))?,
            );
            held.clear();
        }
        for record in &frame.records {
            let bytes = hex::decode(record).map_err(corrupt)?;
            let seq = AuditRecord::read_own(&bytes).map_err(corrupt)?.seq;
            held.push((seq, bytes));
        }
        let gone = held.partition_point(|&(seq, _)| seq < frame.first_seq);
        held.drain(..gone);
    }
    let epoch = epoch.ok_or_else(|| corrupt("audit journal without an epoch"))?;
    Ok(
        AuditLog::restore(epoch, last.next_seq, held.into_iter().map(|(_, r)| r))
            .map_err(corrupt)?
            .with_capacity(capacity),
    )
}
