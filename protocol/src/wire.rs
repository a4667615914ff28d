//! Messages over one GATT characteristic: a type byte, a length and a body, cut into chunks
//! that each fit one ATT write or notification (ATT MTU minus 3 bytes of ATT header).
//!
//! ```text
//! message      = type (1) || body length (2, big-endian) || body
//! first chunk  = 0x80 | 0 (1) || first bytes of the message (type and length included)
//! next chunks  = seq (1)      || following bytes of the message
//! ```
//!
//! The chunk header is one byte: bit 7 marks the first chunk of a message, bits 0-6 count the
//! chunks of the message modulo 128 (the first chunk is 0). The message's own length, in the
//! first chunk, tells the receiver when the message is complete, so there is no "last" flag and
//! no per-chunk length. A receiver ([`Reassembler`]) refuses a chunk out of sequence (lost,
//! duplicated or reordered), a first chunk in the middle of a message, bytes past the announced
//! length, and any length above [`MAX_BODY`] before it buffers anything: what a flood of chunks
//! can make it hold is bounded by one message. Integrity is not the framing's job (the unlock
//! messages are AEAD-sealed), only orderly reassembly and bounded memory.
//!
//! Door Sync's messages ride the same framing (`crate::sync::messages`); a sync bundle larger
//! than [`MAX_BODY`] travels as a flow-controlled series of blocks, one message each.

use alloc::vec::Vec;
use core::fmt;

use crate::cose::MAX_DOCUMENT_SIZE;

/// Bytes of ATT header in every write and notification: a chunk is at most MTU minus this.
pub const ATT_HEADER: usize = 3;
/// The smallest ATT MTU (Bluetooth Core, Vol 3, Part F, 3.2.8); every link supports it.
pub const MIN_ATT_MTU: u16 = 23;
/// The MTU whose chunks are the largest attribute value ATT allows (512 bytes).
pub const MAX_ATT_MTU: u16 = 515;
/// The largest message body: any signed document (16 KiB) plus room for the unlock request's
/// header, signature and AEAD tag, so no document the issuer may sign is too large to present.
pub const MAX_BODY: usize = MAX_DOCUMENT_SIZE + 1024;

/// Bytes before the body in a message: type and length.
const MESSAGE_HEAD: usize = 3;
const FIRST: u8 = 0x80;
const SEQ_MASK: u8 = 0x7f;

/// Message types. Requests have the high bit clear, answers set.
pub mod kind {
    /// Phone to lock: an unlock request (docs/PROTOCOL.md, "BLE unlock").
    pub const UNLOCK_REQUEST: u8 = 0x01;
    /// Phone to lock: a sync bundle is on offer (docs/PROTOCOL.md, "Door Sync").
    pub const SYNC_OFFER: u8 = 0x02;
    /// Phone to lock: one block of the offered bundle.
    pub const SYNC_DATA: u8 = 0x03;
    /// Phone to lock: send audit records from a sequence number on.
    pub const AUDIT_PULL: u8 = 0x04;
    /// Phone to lock: a signed time for the lock's clock, or nothing (a question).
    pub const CLOCK_SET: u8 = 0x05;
    /// Lock to phone: the sealed answer to an unlock request.
    pub const UNLOCK_RESPONSE: u8 = 0x81;
    /// Lock to phone: send the offered bundle from this offset.
    pub const SYNC_ACCEPT: u8 = 0x82;
    /// Lock to phone: the lock holds this bundle's data or newer; stop.
    pub const SYNC_DECLINE: u8 = 0x83;
    /// Lock to phone: every byte before this offset is stored.
    pub const SYNC_ACK: u8 = 0x84;
    /// Lock to phone: the bundle was verified and applied.
    pub const SYNC_DONE: u8 = 0x85;
    /// Lock to phone: the bundle was refused, and why.
    pub const SYNC_FAILED: u8 = 0x86;
    /// Lock to phone: signed audit records.
    pub const AUDIT_BATCH: u8 = 0x87;
    /// Lock to phone: its audit epoch, whether it has trusted time, and its clock.
    pub const CLOCK_STATE: u8 = 0x88;
    /// Lock to phone: a request could not be read or opened; unauthenticated, one code byte.
    pub const ERROR: u8 = 0xff;
}

/// Why a lock could not even open a request: the body of a [`kind::ERROR`] message. Sent in
/// the clear because without a session key there is nothing to seal it with, so a phone
/// treats it as a hint, never as the lock's authenticated word.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
#[repr(u8)]
pub enum ErrorCode {
    /// The chunks did not reassemble ([`WireError`]).
    Framing = 1,
    /// A message type the lock does not handle.
    UnknownMessage = 2,
    /// A protocol version the lock does not speak.
    UnsupportedVersion = 3,
    /// The request names another lock id: the phone's cache is out of date.
    WrongLock = 4,
    /// The request does not open with this lock's key: sealed for another key, or altered.
    Undecryptable = 5,
    /// A sync or audit message whose body the lock could not read.
    Malformed = 6,
    /// An audit pull on a connection where no phone has yet proven it holds a credential for
    /// this door.
    Forbidden = 7,
}

impl ErrorCode {
    pub fn from_u8(code: u8) -> Option<ErrorCode> {
        Some(match code {
            1 => ErrorCode::Framing,
            2 => ErrorCode::UnknownMessage,
            3 => ErrorCode::UnsupportedVersion,
            4 => ErrorCode::WrongLock,
            5 => ErrorCode::Undecryptable,
            6 => ErrorCode::Malformed,
            7 => ErrorCode::Forbidden,
            _ => return None,
        })
    }

    /// The [`kind::ERROR`] message carrying this code.
    pub fn message(self) -> Message {
        Message {
            kind: kind::ERROR,
            body: alloc::vec![self as u8],
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorCode::Framing => "the message's chunks did not reassemble",
            ErrorCode::UnknownMessage => "unknown message type",
            ErrorCode::UnsupportedVersion => "unsupported protocol version",
            ErrorCode::WrongLock => "the request is for another lock",
            ErrorCode::Undecryptable => "the request does not open with this lock's key",
            ErrorCode::Malformed => "the message's body could not be read",
            ErrorCode::Forbidden => "audit records go only to a phone that proved a credential",
        })
    }
}

/// Why chunks were refused. The reassembler drops the partial message with any of them.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum WireError {
    /// A chunk with no header byte.
    EmptyChunk,
    /// A first chunk too short to hold the message type and length.
    ShortFirstChunk,
    /// The announced body length exceeds [`MAX_BODY`].
    TooLarge { len: usize },
    /// A continuation chunk with no message in progress (a duplicate of a last chunk, or a
    /// message whose first chunk was lost).
    NoMessageInProgress,
    /// A first chunk while a message is still incomplete (its tail was lost).
    Interrupted,
    /// A chunk whose sequence number is not the next one: lost, duplicated or reordered.
    OutOfSequence { expected: u8, got: u8 },
    /// A chunk carries bytes past the announced length.
    Overrun,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::EmptyChunk => f.write_str("empty chunk"),
            WireError::ShortFirstChunk => f.write_str("first chunk shorter than a message head"),
            WireError::TooLarge { len } => {
                write!(f, "message body of {len} bytes exceeds {MAX_BODY}")
            }
            WireError::NoMessageInProgress => f.write_str("continuation chunk with no message"),
            WireError::Interrupted => f.write_str("new message before the last one completed"),
            WireError::OutOfSequence { expected, got } => {
                write!(f, "chunk {got} where chunk {expected} was due")
            }
            WireError::Overrun => f.write_str("chunk runs past the message length"),
        }
    }
}

impl core::error::Error for WireError {}

/// One message: its type and body.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Message {
    pub kind: u8,
    pub body: Vec<u8>,
}

impl Message {
    /// Refuses bodies above [`MAX_BODY`], which no receiver would accept.
    pub fn new(kind: u8, body: Vec<u8>) -> Result<Message, WireError> {
        if body.len() > MAX_BODY {
            return Err(WireError::TooLarge { len: body.len() });
        }
        Ok(Message { kind, body })
    }

    /// The chunks to write (or notify) in order, each at most `mtu - 3` bytes. `mtu` is
    /// clamped to [`MIN_ATT_MTU`]..=[`MAX_ATT_MTU`]: no link has a smaller MTU, and ATT carries
    /// no attribute value above 512 bytes.
    pub fn fragments(&self, mtu: u16) -> Vec<Vec<u8>> {
        let chunk = usize::from(mtu.clamp(MIN_ATT_MTU, MAX_ATT_MTU)) - ATT_HEADER;
        // Message::new capped the body, so the length fits in two bytes.
        let len = self.body.len() as u16;
        let head = [self.kind, (len >> 8) as u8, len as u8];
        let mut bytes = head.iter().chain(self.body.iter()).copied();
        let total = MESSAGE_HEAD + self.body.len();
        let per = chunk - 1;
        let count = total.div_ceil(per);
        let mut out = Vec::with_capacity(count);
        for i in 0..count {
            let n = per.min(total - i * per);
            let mut c = Vec::with_capacity(1 + n);
            let seq = (i % 128) as u8;
            c.push(if i == 0 { FIRST | seq } else { seq });
            c.extend(bytes.by_ref().take(n));
            out.push(c);
        }
        out
    }
}

/// A message being reassembled.
struct Partial {
    kind: u8,
    len: usize,
    body: Vec<u8>,
    next_seq: u8,
}

/// Puts chunks back together into messages, one message at a time; used by both sides.
#[derive(Default)]
pub struct Reassembler {
    partial: Option<Partial>,
}

impl Reassembler {
    pub fn new() -> Reassembler {
        Reassembler::default()
    }

    /// Whether a message has begun and not yet completed.
    pub fn in_progress(&self) -> bool {
        self.partial.is_some()
    }

    /// Takes the next chunk: `Ok(Some)` when it completes a message, `Ok(None)` when more are
    /// due. On an error the partial message is dropped and the next chunk must start a new one.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Option<Message>, WireError> {
        let result = self.take(chunk);
        if result.is_err() {
            self.partial = None;
        }
        result
    }

    fn take(&mut self, chunk: &[u8]) -> Result<Option<Message>, WireError> {
        let (&header, data) = chunk.split_first().ok_or(WireError::EmptyChunk)?;
        let seq = header & SEQ_MASK;
        if header & FIRST != 0 {
            if self.partial.is_some() {
                return Err(WireError::Interrupted);
            }
            if seq != 0 {
                return Err(WireError::OutOfSequence {
                    expected: 0,
                    got: seq,
                });
            }
            let (head, data) = data
                .split_first_chunk::<MESSAGE_HEAD>()
                .ok_or(WireError::ShortFirstChunk)?;
            let len = usize::from(u16::from_be_bytes([head[1], head[2]]));
            if len > MAX_BODY {
                return Err(WireError::TooLarge { len });
            }
            if data.len() > len {
                return Err(WireError::Overrun);
            }
            // Bounded by MAX_BODY, checked above.
            let mut body = Vec::with_capacity(len);
            body.extend_from_slice(data);
            let partial = Partial {
                kind: head[0],
                len,
                body,
                next_seq: 1,
            };
            return Ok(self.complete_or_keep(partial));
        }
        let mut partial = self.partial.take().ok_or(WireError::NoMessageInProgress)?;
        if seq != partial.next_seq {
            return Err(WireError::OutOfSequence {
                expected: partial.next_seq,
                got: seq,
            });
        }
        if data.len() > partial.len - partial.body.len() {
            return Err(WireError::Overrun);
        }
        partial.body.extend_from_slice(data);
        partial.next_seq = (partial.next_seq + 1) & SEQ_MASK;
        Ok(self.complete_or_keep(partial))
    }

    fn complete_or_keep(&mut self, partial: Partial) -> Option<Message> {
        if partial.body.len() == partial.len {
            Some(Message {
                kind: partial.kind,
                body: partial.body,
            })
        } else {
            self.partial = Some(partial);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn reassemble(chunks: &[Vec<u8>]) -> Result<Option<Message>, WireError> {
        let mut r = Reassembler::new();
        let mut out = None;
        for c in chunks {
            out = r.push(c)?;
        }
        Ok(out)
    }

    #[test]
    fn round_trips_at_every_size_around_chunk_edges() {
        for mtu in [MIN_ATT_MTU, 24, 100, 247, MAX_ATT_MTU] {
            for len in (0..300).chain([MAX_BODY - 1, MAX_BODY]) {
                let m = Message::new(7, (0..len).map(|i| i as u8).collect()).unwrap();
                let chunks = m.fragments(mtu);
                assert!(chunks
                    .iter()
                    .all(|c| c.len() <= usize::from(mtu) - ATT_HEADER));
                assert_eq!(
                    reassemble(&chunks),
                    Ok(Some(m.clone())),
                    "mtu {mtu} len {len}"
                );
            }
        }
    }

    #[test]
    fn mtu_is_clamped_to_what_att_allows() {
        let m = Message::new(1, vec![0; 2000]).unwrap();
        assert_eq!(m.fragments(0), m.fragments(MIN_ATT_MTU));
        assert_eq!(m.fragments(u16::MAX), m.fragments(MAX_ATT_MTU));
        assert!(m.fragments(MAX_ATT_MTU).iter().all(|c| c.len() <= 512));
    }

    #[test]
    fn sequence_wraps_after_128_chunks() {
        let m = Message::new(1, vec![9; 19 * 300]).unwrap();
        let chunks = m.fragments(MIN_ATT_MTU);
        assert!(chunks.len() > 256);
        assert_eq!(chunks[128][0], 0);
        assert_eq!(chunks[129][0], 1);
        assert_eq!(reassemble(&chunks), Ok(Some(m)));
    }

    #[test]
    fn lost_duplicated_and_reordered_chunks_are_refused() {
        let m = Message::new(1, vec![5; 100]).unwrap();
        let chunks = m.fragments(MIN_ATT_MTU);
        let mut lost = chunks.clone();
        lost.remove(2);
        assert_eq!(
            reassemble(&lost),
            Err(WireError::OutOfSequence {
                expected: 2,
                got: 3
            })
        );
        let mut dup = chunks.clone();
        dup.insert(2, chunks[1].clone());
        assert_eq!(
            reassemble(&dup),
            Err(WireError::OutOfSequence {
                expected: 2,
                got: 1
            })
        );
        let mut swapped = chunks.clone();
        swapped.swap(1, 2);
        assert!(matches!(
            reassemble(&swapped),
            Err(WireError::OutOfSequence { .. })
        ));
        let mut last_twice = chunks.clone();
        last_twice.push(chunks.last().unwrap().clone());
        assert_eq!(reassemble(&last_twice), Err(WireError::NoMessageInProgress));
        let mut restarted = chunks[..2].to_vec();
        restarted.extend(chunks.iter().cloned());
        assert_eq!(reassemble(&restarted), Err(WireError::Interrupted));
        // Without its last chunk the message is simply incomplete.
        assert_eq!(reassemble(&chunks[..chunks.len() - 1]), Ok(None));
    }

    #[test]
    fn after_an_error_the_next_message_reassembles() {
        let m = Message::new(1, vec![5; 100]).unwrap();
        let chunks = m.fragments(MIN_ATT_MTU);
        let mut r = Reassembler::new();
        r.push(&chunks[0]).unwrap();
        assert!(r.push(&chunks[2]).is_err());
        assert!(!r.in_progress());
        let mut out = None;
        for c in &chunks {
            out = r.push(c).unwrap();
        }
        assert_eq!(out, Some(m));
    }

    #[test]
    fn oversized_and_overrunning_messages_are_refused_before_buffering() {
        let len = MAX_BODY + 1;
        let first = [FIRST, 1, (len >> 8) as u8, len as u8];
        assert_eq!(
            reassemble(&[first.to_vec()]),
            Err(WireError::TooLarge { len })
        );
        assert_eq!(
            Message::new(1, vec![0; MAX_BODY + 1]),
            Err(WireError::TooLarge { len })
        );
        assert_eq!(
            reassemble(&[vec![FIRST, 1, 0, 1, 0xaa, 0xbb]]),
            Err(WireError::Overrun)
        );
        assert_eq!(
            reassemble(&[vec![FIRST, 1, 0, 2, 0xaa], vec![1, 0xbb, 0xcc]]),
            Err(WireError::Overrun)
        );
        assert_eq!(
            reassemble(&[vec![FIRST, 1, 0]]),
            Err(WireError::ShortFirstChunk)
        );
        assert_eq!(reassemble(&[vec![]]), Err(WireError::EmptyChunk));
        assert_eq!(
            reassemble(&[vec![FIRST | 3, 1, 0, 0]]),
            Err(WireError::OutOfSequence {
                expected: 0,
                got: 3
            })
        );
    }

    #[test]
    fn error_codes_round_trip() {
        for code in 0..=u8::MAX {
            if let Some(c) = ErrorCode::from_u8(code) {
                assert_eq!(c as u8, code);
                assert_eq!(c.message().body, [code]);
            }
        }
    }
}
