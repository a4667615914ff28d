//! The bodies of the Door Sync messages (types in [`crate::wire::kind`]): fixed big-endian
//! layouts, each refused unless exactly the right length.
//!
//! ```text
//! phone to lock
//!   0x02 sync offer   = iteration (8) || base_iteration (8) || total_len (4) || SHA-256 (32)
//!   0x03 sync data    = offset (4) || 1..=8192 bytes of the bundle
//!   0x04 audit pull   = epoch (8) || from_seq (8)
//!   0x05 clock set    = 0..=256 bytes: a signed time (COSE), or none (a question)
//! lock to phone
//!   0x82 sync accept  = resume_from (4)
//!   0x83 sync decline = current_iteration (8)
//!   0x84 sync ack     = next_offset (4)
//!   0x85 sync done    = iteration (8)
//!   0x86 sync failed  = reason (1) || current_iteration (8)
//!   0x87 audit batch  = more (1: 0 or 1) || *(length (2) || signed audit record)
//!   0x88 clock state  = epoch (8) || trusted (1: 0 or 1) || lock_time (8, two's complement)
//! ```

use alloc::vec::Vec;
use core::fmt;

use crate::audit::AuditEpoch;
use crate::cbor::{Malformed, Problem};
use crate::cose::MAX_DOCUMENT_SIZE;
use crate::sync::time::MAX_SIGNED_TIME_SIZE;
use crate::sync::{SyncError, MAX_BUNDLE_SIZE};
use crate::wire::{kind, Message};
use crate::UnixTime;

/// The largest block of a bundle one data message carries.
pub const MAX_BLOCK: usize = 8192;
/// The most record bytes one audit batch carries (about 25 records), so a batch stays a
/// modest message even at the smallest MTU.
pub const AUDIT_BATCH_BYTES: usize = 4096;

/// A phone's offer of a bundle. The numbers are the phone's claim, unauthenticated: the lock
/// uses them only to skip what it does not need, and judges the bundle by its signed contents.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub struct Offer {
    pub iteration: u64,
    pub base_iteration: u64,
    pub total_len: u32,
    /// SHA-256 of the whole signed bundle: names it, so a transfer resumes only with the same
    /// bytes.
    pub digest: [u8; 32],
}

/// Why a lock refused a bundle (`SyncFailed`).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
#[repr(u8)]
pub enum FailReason {
    /// The bundle, or its doorcodes, are not well formed.
    Malformed = 1,
    /// Signed by a key the lock does not trust.
    UnknownIssuerKey = 2,
    /// The signature does not verify.
    BadSignature = 3,
    /// Signed for another lock.
    Foreign = 4,
    /// The doorcodes were sealed to another key than the lock's.
    Undecryptable = 5,
    /// Not newer than what the lock holds.
    Stale = 6,
    /// A delta from another iteration than the lock's: bring a full bundle.
    WrongBase = 7,
    /// The lock cannot hold what the delta adds.
    Full = 8,
    /// The bytes received do not match the offered digest.
    DigestMismatch = 9,
    /// The offer is empty or above the bundle size cap.
    TooLarge = 10,
    /// Data arrived with no offer accepted on this connection (or another connection's
    /// transfer replaced it): offer again.
    NoTransfer = 11,
}

impl FailReason {
    pub fn from_u8(code: u8) -> Option<FailReason> {
        Some(match code {
            1 => FailReason::Malformed,
            2 => FailReason::UnknownIssuerKey,
            3 => FailReason::BadSignature,
            4 => FailReason::Foreign,
            5 => FailReason::Undecryptable,
            6 => FailReason::Stale,
            7 => FailReason::WrongBase,
            8 => FailReason::Full,
            9 => FailReason::DigestMismatch,
            10 => FailReason::TooLarge,
            11 => FailReason::NoTransfer,
            _ => return None,
        })
    }
}

impl From<SyncError> for FailReason {
    fn from(e: SyncError) -> FailReason {
        match e {
            SyncError::Malformed(_) => FailReason::Malformed,
            SyncError::UnknownIssuerKey { .. } => FailReason::UnknownIssuerKey,
            SyncError::BadSignature => FailReason::BadSignature,
            SyncError::Foreign { .. } => FailReason::Foreign,
            SyncError::Undecryptable => FailReason::Undecryptable,
            SyncError::Stale { .. } => FailReason::Stale,
            SyncError::WrongBase { .. } => FailReason::WrongBase,
            SyncError::Full { .. } => FailReason::Full,
        }
    }
}

impl fmt::Display for FailReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FailReason::Malformed => "bundle not well formed",
            FailReason::UnknownIssuerKey => "bundle signed by an unknown key",
            FailReason::BadSignature => "bundle signature does not verify",
            FailReason::Foreign => "bundle is for another lock",
            FailReason::Undecryptable => "doorcodes sealed to another key",
            FailReason::Stale => "bundle not newer than the lock's",
            FailReason::WrongBase => "delta from another iteration than the lock's",
            FailReason::Full => "lock cannot hold what the bundle adds",
            FailReason::DigestMismatch => "received bytes do not match the offer",
            FailReason::TooLarge => "bundle size out of range",
            FailReason::NoTransfer => "no transfer in progress",
        })
    }
}

/// One Door Sync message, either direction.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum SyncMessage {
    Offer(Offer),
    Data {
        offset: u32,
        bytes: Vec<u8>,
    },
    /// Records of `epoch` from `from_seq` on; a lock whose audit epoch is another (it was
    /// wiped since the phone last pulled, or the phone never pulled) answers from its oldest.
    AuditPull {
        epoch: AuditEpoch,
        from_seq: u64,
    },
    Accept {
        resume_from: u32,
    },
    Decline {
        current_iteration: u64,
    },
    Ack {
        next_offset: u32,
    },
    Done {
        iteration: u64,
    },
    Failed {
        reason: FailReason,
        current_iteration: u64,
    },
    AuditBatch {
        records: Vec<Vec<u8>>,
        more: bool,
    },
    /// A signed time for the lock's clock (the rules of [`crate::sync::time`]: forward only
    /// here), or, empty, a question; either way the lock answers [`SyncMessage::ClockState`].
    /// How a lock is commissioned: a time bound to its epoch.
    ClockSet {
        signed_time: Vec<u8>,
    },
    /// The lock's audit epoch (what a commissioning time must name), whether it has trusted
    /// time, and its clock. Unauthenticated, like every sync answer: a lie costs only the
    /// round trip, since the lock takes only a time signed for its real epoch.
    ClockState {
        epoch: AuditEpoch,
        trusted: bool,
        lock_time: UnixTime,
    },
}

/// Reads a body of fixed layout.
struct Body<'a>(&'a [u8]);

impl<'a> Body<'a> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], Malformed> {
        let (head, rest) = self
            .0
            .split_first_chunk::<N>()
            .ok_or(Malformed::new("body", Problem::Truncated))?;
        self.0 = rest;
        Ok(*head)
    }

    fn u64(&mut self) -> Result<u64, Malformed> {
        self.take().map(u64::from_be_bytes)
    }

    fn u32(&mut self) -> Result<u32, Malformed> {
        self.take().map(u32::from_be_bytes)
    }

    fn finish<T>(self, value: T) -> Result<T, Malformed> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(Malformed::new("body", Problem::TrailingBytes))
        }
    }
}

impl SyncMessage {
    /// Whether `kind` is a Door Sync message type.
    pub fn is_sync_kind(kind: u8) -> bool {
        matches!(
            kind,
            kind::SYNC_OFFER
                | kind::SYNC_DATA
                | kind::AUDIT_PULL
                | kind::SYNC_ACCEPT
                | kind::SYNC_DECLINE
                | kind::SYNC_ACK
                | kind::SYNC_DONE
                | kind::SYNC_FAILED
                | kind::AUDIT_BATCH
                | kind::CLOCK_SET
                | kind::CLOCK_STATE
        )
    }

    /// The wire message. Bodies stay far below [`crate::wire::MAX_BODY`]: blocks are capped at
    /// [`MAX_BLOCK`], batches at [`AUDIT_BATCH_BYTES`] plus one record.
    pub fn to_message(&self) -> Message {
        let mut b = Vec::new();
        let kind = match self {
            SyncMessage::Offer(o) => {
                b.extend_from_slice(&o.iteration.to_be_bytes());
                b.extend_from_slice(&o.base_iteration.to_be_bytes());
                b.extend_from_slice(&o.total_len.to_be_bytes());
                b.extend_from_slice(&o.digest);
                kind::SYNC_OFFER
            }
            SyncMessage::Data { offset, bytes } => {
                b.reserve_exact(4 + bytes.len());
                b.extend_from_slice(&offset.to_be_bytes());
                b.extend_from_slice(bytes);
                kind::SYNC_DATA
            }
            SyncMessage::AuditPull { epoch, from_seq } => {
                b.extend_from_slice(&epoch.0);
                b.extend_from_slice(&from_seq.to_be_bytes());
                kind::AUDIT_PULL
            }
            SyncMessage::Accept { resume_from } => {
                b.extend_from_slice(&resume_from.to_be_bytes());
                kind::SYNC_ACCEPT
            }
            SyncMessage::Decline { current_iteration } => {
                b.extend_from_slice(&current_iteration.to_be_bytes());
                kind::SYNC_DECLINE
            }
            SyncMessage::Ack { next_offset } => {
                b.extend_from_slice(&next_offset.to_be_bytes());
                kind::SYNC_ACK
            }
            SyncMessage::Done { iteration } => {
                b.extend_from_slice(&iteration.to_be_bytes());
                kind::SYNC_DONE
            }
            SyncMessage::Failed {
                reason,
                current_iteration,
            } => {
                b.push(*reason as u8);
                b.extend_from_slice(&current_iteration.to_be_bytes());
                kind::SYNC_FAILED
            }
            SyncMessage::AuditBatch { records, more } => {
                b.push(u8::from(*more));
                for r in records {
                    // Records are signed documents, capped at 16 KiB: the length fits.
                    b.extend_from_slice(&(r.len() as u16).to_be_bytes());
                    b.extend_from_slice(r);
                }
                kind::AUDIT_BATCH
            }
            SyncMessage::ClockSet { signed_time } => {
                b.extend_from_slice(signed_time);
                kind::CLOCK_SET
            }
            SyncMessage::ClockState {
                epoch,
                trusted,
                lock_time,
            } => {
                b.extend_from_slice(&epoch.0);
                b.push(u8::from(*trusted));
                b.extend_from_slice(&lock_time.to_be_bytes());
                kind::CLOCK_STATE
            }
        };
        Message { kind, body: b }
    }

    /// Reads a message of a sync type; any other type, and any body not exactly of its
    /// layout, is [`Malformed`].
    pub fn from_message(message: &Message) -> Result<SyncMessage, Malformed> {
        let mut body = Body(&message.body);
        match message.kind {
            kind::SYNC_OFFER => {
                let iteration = body.u64()?;
                let base_iteration = body.u64()?;
                let total_len = body.u32()?;
                let digest = body.take::<32>()?;
                body.finish(SyncMessage::Offer(Offer {
                    iteration,
                    base_iteration,
                    total_len,
                    digest,
                }))
            }
            kind::SYNC_DATA => {
                let offset = body.u32()?;
                let bytes = body.0;
                if bytes.is_empty() || bytes.len() > MAX_BLOCK {
                    return Err(Malformed::new("sync_data", Problem::OutOfRange));
                }
                Ok(SyncMessage::Data {
                    offset,
                    bytes: bytes.to_vec(),
                })
            }
            kind::AUDIT_PULL => {
                let epoch = AuditEpoch(body.u64()?.to_be_bytes());
                let from_seq = body.u64()?;
                body.finish(SyncMessage::AuditPull { epoch, from_seq })
            }
            kind::CLOCK_SET => {
                if body.0.len() > MAX_SIGNED_TIME_SIZE {
                    return Err(Malformed::new("clock_set", Problem::TooLarge));
                }
                Ok(SyncMessage::ClockSet {
                    signed_time: body.0.to_vec(),
                })
            }
            kind::CLOCK_STATE => {
                let epoch = AuditEpoch(body.take::<8>()?);
                let trusted = match body.take::<1>()? {
                    [0] => false,
                    [1] => true,
                    _ => return Err(Malformed::new("clock_state.trusted", Problem::OutOfRange)),
                };
                let lock_time = UnixTime::from_be_bytes(body.take::<8>()?);
                body.finish(SyncMessage::ClockState {
                    epoch,
                    trusted,
                    lock_time,
                })
            }
            kind::SYNC_ACCEPT => {
                let resume_from = body.u32()?;
                body.finish(SyncMessage::Accept { resume_from })
            }
            kind::SYNC_DECLINE => {
                let current_iteration = body.u64()?;
                body.finish(SyncMessage::Decline { current_iteration })
            }
            kind::SYNC_ACK => {
                let next_offset = body.u32()?;
                body.finish(SyncMessage::Ack { next_offset })
            }
            kind::SYNC_DONE => {
                let iteration = body.u64()?;
                body.finish(SyncMessage::Done { iteration })
            }
            kind::SYNC_FAILED => {
                let [code] = body.take::<1>()?;
                let reason = FailReason::from_u8(code)
                    .ok_or(Malformed::new("sync_failed.reason", Problem::OutOfRange))?;
                let current_iteration = body.u64()?;
                body.finish(SyncMessage::Failed {
                    reason,
                    current_iteration,
                })
            }
            kind::AUDIT_BATCH => {
                let more = match body.take::<1>()? {
                    [0] => false,
                    [1] => true,
                    _ => return Err(Malformed::new("audit_batch.more", Problem::OutOfRange)),
                };
                let mut records = Vec::new();
                while !body.0.is_empty() {
                    let len = usize::from(u16::from_be_bytes(body.take::<2>()?));
                    if len == 0 || len > MAX_DOCUMENT_SIZE || len > body.0.len() {
                        return Err(Malformed::new("audit_batch.record", Problem::OutOfRange));
                    }
                    let (record, rest) = body.0.split_at(len);
                    records.push(record.to_vec());
                    body.0 = rest;
                }
                Ok(SyncMessage::AuditBatch { records, more })
            }
            _ => Err(Malformed::new("kind", Problem::Unsupported)),
        }
    }
}

/// Whether an offered size can be a bundle.
pub(crate) fn acceptable_len(total_len: u32) -> bool {
    total_len > 0 && usize::try_from(total_len).is_ok_and(|n| n <= MAX_BUNDLE_SIZE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_round_trips_and_trailing_bytes_are_refused() {
        let all = [
            SyncMessage::Offer(Offer {
                iteration: 9,
                base_iteration: 8,
                total_len: 70_000,
                digest: [7; 32],
            }),
            SyncMessage::Data {
                offset: 4096,
                bytes: alloc::vec![1; 100],
            },
            SyncMessage::AuditPull {
                epoch: AuditEpoch([5; 8]),
                from_seq: 3,
            },
            SyncMessage::Accept { resume_from: 8192 },
            SyncMessage::Decline {
                current_iteration: 12,
            },
            SyncMessage::Ack { next_offset: 1 },
            SyncMessage::Done { iteration: 9 },
            SyncMessage::Failed {
                reason: FailReason::WrongBase,
                current_iteration: 4,
            },
            SyncMessage::AuditBatch {
                records: alloc::vec![alloc::vec![1, 2], alloc::vec![3]],
                more: true,
            },
            SyncMessage::AuditBatch {
                records: Vec::new(),
                more: false,
            },
        ];
        for m in all {
            let wire = m.to_message();
            assert!(SyncMessage::is_sync_kind(wire.kind));
            assert_eq!(SyncMessage::from_message(&wire), Ok(m.clone()));
            let mut longer = wire.clone();
            longer.body.push(0);
            let mut shorter = wire.clone();
            shorter.body.pop();
            match m {
                // Data's block and a batch's records have no fixed length.
                SyncMessage::Data { .. } | SyncMessage::AuditBatch { .. } => {}
                _ => {
                    assert!(SyncMessage::from_message(&longer).is_err());
                    assert!(SyncMessage::from_message(&shorter).is_err());
                }
            }
        }
    }

    #[test]
    fn reasons_round_trip() {
        for code in 0..=u8::MAX {
            if let Some(r) = FailReason::from_u8(code) {
                assert_eq!(r as u8, code);
            }
        }
        assert!(!acceptable_len(0));
        assert!(acceptable_len(MAX_BUNDLE_SIZE as u32));
        assert!(!acceptable_len(MAX_BUNDLE_SIZE as u32 + 1));
    }
}
