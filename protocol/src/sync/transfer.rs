//! The phone's side of Door Sync over BLE, sans-I/O: [`SyncTransfer`] carries one bundle to a
//! lock, [`AuditPuller`] brings the lock's audit records home.
//!
//! A transfer, after the unlock answer (or on a connection made only to sync):
//!
//! 1. `SyncOffer { iteration, base_iteration, total_len, digest }`; the lock answers `Accept
//!    { resume_from }`, or `Decline` / `Failed` at once when it does not need the bundle.
//! 2. `SyncData { offset, bytes }` blocks ([`SyncTransfer::DEFAULT_BLOCK`] bytes each, one wire
//!    message apiece), at most [`SyncTransfer::DEFAULT_WINDOW`] blocks beyond the last
//!    acknowledged byte. Each `Ack { next_offset }` that advances slides the window; one that
//!    does not (the lock saw a gap) rewinds the phone to it.
//! 3. The lock verifies and applies the bundle after the last block: `Done` or `Failed`.
//!
//! After a disconnect, [`SyncTransfer::reconnect`] on the next connection offers again and the
//! lock resumes from what it persisted. The lock's sync answers are not authenticated (there is
//! no session key): `Done` is a progress hint. The proof that a lock applied a bundle is its
//! signed `SyncApplied` audit record, and the sync iteration in its sealed unlock answers.

use alloc::vec::Vec;
use core::fmt;

use sha2::{Digest, Sha256};

use crate::audit::{verify_audit, AuditEpoch, AuditError, AuditRecord};
use crate::cbor::Malformed;
use crate::keys::LockPublicKey;
use crate::sync::messages::{acceptable_len, FailReason, Offer, SyncMessage, MAX_BLOCK};
use crate::wire::{kind, ErrorCode, Message, Reassembler, WireError};

/// Bytes of the bundle the lock has acknowledged, of the total.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub struct Progress {
    pub done: u64,
    pub total: u64,
}

/// How a transfer ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum SyncOutcome {
    /// The lock verified and applied it; its sync iteration is now `iteration`.
    Applied { iteration: u64 },
    /// The lock already holds this iteration or a newer one.
    Declined { current_iteration: u64 },
    /// The lock refused it. With [`FailReason::WrongBase`] the phone should bring a full
    /// bundle (or a delta from `current_iteration`).
    Failed {
        reason: FailReason,
        current_iteration: u64,
    },
}

/// What a lock's message did to the transfer.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum SyncEvent {
    Progress(Progress),
    Finished(SyncOutcome),
}

/// Why the phone could not go on with a transfer or a pull on this connection. After one, the
/// phone drops the connection; a transfer resumes with [`SyncTransfer::reconnect`] on the
/// next.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TransferError {
    /// The bundle is empty or larger than any lock takes.
    TooLarge,
    /// The lock's chunks did not reassemble.
    Wire(WireError),
    /// The lock answered with an error frame (unauthenticated).
    Refused(ErrorCode),
    /// A message type that has no place here.
    UnexpectedMessage { kind: u8 },
    /// A message whose body is not its layout.
    Malformed(Malformed),
    /// The lock's numbers do not add up (an acknowledgement beyond the bundle or going back,
    /// audit records out of order): a faulty lock or a tampering relay.
    Protocol,
    /// An audit record that does not verify under the lock's key.
    BadRecord(AuditError),
    /// The transfer has finished, or is waiting for [`SyncTransfer::reconnect`].
    Finished,
}

impl fmt::Display for TransferError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransferError::TooLarge => f.write_str("bundle size out of range"),
            TransferError::Wire(e) => write!(f, "lock's framing: {e}"),
            TransferError::Refused(c) => write!(f, "lock refused: {c}"),
            TransferError::UnexpectedMessage { kind } => {
                write!(f, "unexpected message type {kind}")
            }
            TransferError::Malformed(m) => write!(f, "malformed message: {m}"),
            TransferError::Protocol => f.write_str("lock's acknowledgements do not add up"),
            TransferError::BadRecord(e) => write!(f, "audit record refused: {e}"),
            TransferError::Finished => f.write_str("transfer not in progress"),
        }
    }
}

impl core::error::Error for TransferError {}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    /// The offer is due.
    Offer,
    AwaitAccept,
    Sending,
    /// An error ended this connection's part: waiting for `reconnect`.
    Broken,
    Finished,
}

/// One bundle on its way to one lock.
pub struct SyncTransfer {
    bundle: Vec<u8>,
    offer: Offer,
    block: usize,
    window: usize,
    phase: Phase,
    /// Bytes the lock acknowledged.
    acked: usize,
    /// Bytes sent on this connection (from `acked` on).
    cursor: usize,
    rx: Reassembler,
}

impl SyncTransfer {
    /// Bytes per data message: 18 notifications' worth at MTU 247, and a resume loses at most
    /// a few of them.
    pub const DEFAULT_BLOCK: usize = 4096;
    /// Blocks in flight beyond the last acknowledged byte: enough to keep the link busy while
    /// the lock persists and acknowledges the previous one.
    pub const DEFAULT_WINDOW: usize = 4;

    /// A transfer of the signed bundle `bundle`, whose signed iteration and base the phone
    /// knows (from the server, or [`inspect_bundle`](crate::sync::inspect_bundle)).
    pub fn new(
        bundle: Vec<u8>,
        iteration: u64,
        base_iteration: u64,
    ) -> Result<SyncTransfer, TransferError> {
        let total_len = u32::try_from(bundle.len())
            .ok()
            .filter(|&n| acceptable_len(n))
            .ok_or(TransferError::TooLarge)?;
        let offer = Offer {
            iteration,
            base_iteration,
            total_len,
            digest: Sha256::digest(&bundle).into(),
        };
        Ok(SyncTransfer {
            bundle,
            offer,
            block: Self::DEFAULT_BLOCK,
            window: Self::DEFAULT_WINDOW,
            phase: Phase::Offer,
            acked: 0,
            cursor: 0,
            rx: Reassembler::new(),
        })
    }

    /// Another block size (1 to 8192 bytes) and window (at least 1 block).
    pub fn with_flow(mut self, block: usize, window: usize) -> SyncTransfer {
        self.block = block.clamp(1, MAX_BLOCK);
        self.window = window.max(1);
        self
    }

    /// What the offer says: iteration, base, size and digest.
    pub fn offer(&self) -> Offer {
        self.offer
    }

    pub fn progress(&self) -> Progress {
        Progress {
            done: self.acked as u64,
            total: self.bundle.len() as u64,
        }
    }

    pub fn is_finished(&self) -> bool {
        self.phase == Phase::Finished
    }

    /// A new connection to the lock (after a disconnect or an error): the next messages offer
    /// the bundle again, and the lock says where to resume.
    pub fn reconnect(&mut self) {
        if self.phase != Phase::Finished {
            self.phase = Phase::Offer;
            self.cursor = self.acked;
            self.rx = Reassembler::new();
        }
    }

    /// The messages to send now, in order: the offer, or the data blocks the window allows.
    /// Empty while waiting for the lock.
    pub fn next_messages(&mut self) -> Vec<Message> {
        let mut out = Vec::new();
        match self.phase {
            Phase::Offer => {
                self.phase = Phase::AwaitAccept;
                out.push(SyncMessage::Offer(self.offer).to_message());
            }
            Phase::Sending => {
                let limit = self
                    .acked
                    .saturating_add(self.window.saturating_mul(self.block))
                    .min(self.bundle.len());
                while self.cursor < limit {
                    let end = (self.cursor + self.block).min(self.bundle.len());
                    out.push(
                        SyncMessage::Data {
                            // Below total_len, a u32.
                            offset: self.cursor as u32,
                            bytes: self.bundle[self.cursor..end].to_vec(),
                        }
                        .to_message(),
                    );
                    self.cursor = end;
                }
            }
            Phase::AwaitAccept | Phase::Broken | Phase::Finished => {}
        }
        out
    }

    /// [`SyncTransfer::next_messages`] cut into chunks for a link with this ATT MTU.
    pub fn next_fragments(&mut self, mtu: u16) -> Vec<Vec<u8>> {
        self.next_messages()
            .iter()
            .flat_map(|m| m.fragments(mtu))
            .collect()
    }

    /// One notified chunk from the lock; `Ok(None)` while a message is incomplete.
    pub fn on_fragment(&mut self, fragment: &[u8]) -> Result<Option<SyncEvent>, TransferError> {
        if matches!(self.phase, Phase::Finished | Phase::Broken) {
            return Err(TransferError::Finished);
        }
        match self.rx.push(fragment) {
            Ok(Some(message)) => self.on_message(&message).map(Some),
            Ok(None) => Ok(None),
            Err(e) => Err(self.broken(TransferError::Wire(e))),
        }
    }

    /// One whole message from the lock.
    pub fn on_message(&mut self, message: &Message) -> Result<SyncEvent, TransferError> {
        if matches!(self.phase, Phase::Finished | Phase::Broken) {
            return Err(TransferError::Finished);
        }
        if message.kind == kind::ERROR {
            return match message.body[..] {
                // A garbled chunk cost the lock one message: send again from the last ack.
                [code] if code == ErrorCode::Framing as u8 && self.phase == Phase::Sending => {
                    self.cursor = self.acked;
                    Ok(SyncEvent::Progress(self.progress()))
                }
                [code] => Err(self.broken(match ErrorCode::from_u8(code) {
                    Some(c) => TransferError::Refused(c),
                    None => TransferError::Protocol,
                })),
                _ => Err(self.broken(TransferError::Protocol)),
            };
        }
        if !SyncMessage::is_sync_kind(message.kind) {
            return Err(self.broken(TransferError::UnexpectedMessage { kind: message.kind }));
        }
        let parsed = match SyncMessage::from_message(message) {
            Ok(m) => m,
            Err(m) => return Err(self.broken(TransferError::Malformed(m))),
        };
        let total = self.bundle.len();
        match (self.phase, parsed) {
            (Phase::AwaitAccept, SyncMessage::Accept { resume_from }) => {
                let from = resume_from as usize;
                if from >= total {
                    return Err(self.broken(TransferError::Protocol));
                }
                self.acked = from;
                self.cursor = from;
                self.phase = Phase::Sending;
                Ok(SyncEvent::Progress(self.progress()))
            }
            // An accept while sending answers a duplicated offer: it says what an ack says.
            (
                Phase::Sending,
                SyncMessage::Ack { next_offset: n } | SyncMessage::Accept { resume_from: n },
            ) => {
                let n = n as usize;
                if n > total || n < self.acked {
                    return Err(self.broken(TransferError::Protocol));
                }
                if n == self.acked {
                    // No progress: the lock saw a gap here. Rewind.
                    self.cursor = n;
                } else {
                    self.acked = n;
                    // Another phone's transfer of the same bytes may have got further.
                    self.cursor = self.cursor.max(n);
                }
                Ok(SyncEvent::Progress(self.progress()))
            }
            (Phase::Sending, SyncMessage::Done { iteration }) => {
                self.acked = total;
                Ok(self.finish(SyncOutcome::Applied { iteration }))
            }
            (Phase::AwaitAccept | Phase::Sending, SyncMessage::Decline { current_iteration }) => {
                Ok(self.finish(SyncOutcome::Declined { current_iteration }))
            }
            (
                Phase::AwaitAccept | Phase::Sending,
                SyncMessage::Failed {
                    reason,
                    current_iteration,
                },
            ) => Ok(self.finish(SyncOutcome::Failed {
                reason,
                current_iteration,
            })),
            _ => Err(self.broken(TransferError::UnexpectedMessage { kind: message.kind })),
        }
    }

    fn finish(&mut self, outcome: SyncOutcome) -> SyncEvent {
        self.phase = Phase::Finished;
        SyncEvent::Finished(outcome)
    }

    fn broken(&mut self, e: TransferError) -> TransferError {
        self.phase = Phase::Broken;
        e
    }
}

/// A record pulled from a lock, verified under its key: keep `bytes` (what the server checks),
/// read `record`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PulledRecord {
    pub record: AuditRecord,
    pub bytes: Vec<u8>,
}

/// One batch from a lock. Store the records durably before asking for the next batch; the
/// lock keeps them until a bundle carries the server's acknowledgement.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct AuditBatch {
    pub records: Vec<PulledRecord>,
    /// The lock holds records after these: pull again.
    pub more: bool,
}

/// Brings a lock's audit records home, batch by batch, each record checked against the lock's
/// key (so a relay can drop records but not forge or alter them).
pub struct AuditPuller {
    lock_key: LockPublicKey,
    epoch: AuditEpoch,
    next_seq: u64,
    rx: Reassembler,
}

impl AuditPuller {
    /// Pulls records of the lock's audit epoch `epoch` from `from_seq` on (one past the last
    /// stored). A lock whose epoch is another (wiped since, or never pulled: any epoch and 0)
    /// answers with all it holds, and the puller follows its epoch from then on.
    pub fn new(lock_key: LockPublicKey, epoch: AuditEpoch, from_seq: u64) -> AuditPuller {
        AuditPuller {
            lock_key,
            epoch,
            next_seq: from_seq,
            rx: Reassembler::new(),
        }
    }

    /// The epoch the next request names: the lock's, once a record has come back.
    pub fn epoch(&self) -> AuditEpoch {
        self.epoch
    }

    /// The seq the next request starts from.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The pull request for the next batch.
    pub fn request(&self) -> Message {
        SyncMessage::AuditPull {
            epoch: self.epoch,
            from_seq: self.next_seq,
        }
        .to_message()
    }

    /// [`AuditPuller::request`] cut for a link with this ATT MTU.
    pub fn request_fragments(&self, mtu: u16) -> Vec<Vec<u8>> {
        self.request().fragments(mtu)
    }

    /// One notified chunk; `Ok(None)` while the answer is incomplete.
    pub fn on_fragment(&mut self, fragment: &[u8]) -> Result<Option<AuditBatch>, TransferError> {
        match self.rx.push(fragment) {
            Ok(Some(message)) => self.on_message(&message).map(Some),
            Ok(None) => Ok(None),
            Err(e) => Err(TransferError::Wire(e)),
        }
    }

    /// The lock's answer: its records, verified and in order.
    pub fn on_message(&mut self, message: &Message) -> Result<AuditBatch, TransferError> {
        if message.kind == kind::ERROR {
            return Err(match message.body[..] {
                [code] => ErrorCode::from_u8(code)
                    .map(TransferError::Refused)
                    .unwrap_or(TransferError::Protocol),
                _ => TransferError::Protocol,
            });
        }
        if message.kind != kind::AUDIT_BATCH {
            return Err(TransferError::UnexpectedMessage { kind: message.kind });
        }
        let SyncMessage::AuditBatch { records, more } =
            SyncMessage::from_message(message).map_err(TransferError::Malformed)?
        else {
            return Err(TransferError::UnexpectedMessage { kind: message.kind });
        };
        if more && records.is_empty() {
            return Err(TransferError::Protocol);
        }
        let (mut epoch, mut next) = (self.epoch, self.next_seq);
        let mut out = Vec::with_capacity(records.len());
        for bytes in records {
            let record = verify_audit(&bytes, &self.lock_key).map_err(TransferError::BadRecord)?;
            if record.epoch != epoch {
                // The lock holds one log: its epoch may differ from what the phone knew (it
                // answers from its oldest record then), but not within a batch.
                if !out.is_empty() {
                    return Err(TransferError::Protocol);
                }
                (epoch, next) = (record.epoch, 0);
            }
            if record.seq < next {
                return Err(TransferError::Protocol);
            }
            next = record.seq.saturating_add(1);
            out.push(PulledRecord { record, bytes });
        }
        (self.epoch, self.next_seq) = (epoch, next);
        Ok(AuditBatch { records: out, more })
    }
}
