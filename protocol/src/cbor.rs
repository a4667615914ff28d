//! The deterministic CBOR subset our signed payloads use (RFC 8949 §4.2.1), and the typed
//! "malformed" error every decoder reports.
//!
//! A hand-written reader and writer rather than a generic `Value` tree: the schemas are small
//! and fixed, so the decoders read exactly the items they expect, in the order deterministic
//! encoding puts them, and refuse everything else on the spot. That gives three properties a
//! lock needs and a generic decoder does not give for free:
//!
//! - one byte string per document: non-shortest heads, indefinite lengths, unsorted or
//!   duplicate map keys are all refused while reading, not normalised away;
//! - bounded work: nesting is fixed by the schema (nothing recurses on input), and no length
//!   read from the input is trusted for an allocation before it is checked against the bytes
//!   that remain and against the field's cap;
//! - no panics: every read is bounds-checked and returns a [`Problem`].
//!
//! Only what the documents use is supported: unsigned and negative integers (as `u64`/`i64`),
//! byte and text strings, arrays, maps with unsigned integer keys, `true`/`false`/`null` and tags.

use alloc::vec::Vec;
use core::fmt;

/// What is wrong with an encoded document, and where.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Malformed {
    /// The field being read, as a path such as `"grants.schedule.windows"`.
    pub field: &'static str,
    pub problem: Problem,
}

impl Malformed {
    pub const fn new(field: &'static str, problem: Problem) -> Malformed {
        Malformed { field, problem }
    }
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.problem)
    }
}

impl core::error::Error for Malformed {}

/// The kinds of malformation a decoder reports.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Problem {
    /// The input ended inside an item.
    Truncated,
    /// Bytes follow the end of the item.
    TrailingBytes,
    /// Valid CBOR, but not the deterministic encoding: a longer-than-needed head, an
    /// indefinite length, or map keys out of order or repeated.
    NonCanonical,
    /// A CBOR item of another type than the field needs (or a reserved encoding).
    WrongType,
    /// A map key the schema does not define.
    UnknownKey { key: u64 },
    /// A required map key is absent.
    MissingKey { key: u64 },
    /// A value outside the range the field allows.
    OutOfRange,
    /// The whole document exceeds its size cap.
    TooLarge,
    /// A list exceeds its count cap.
    TooMany,
    /// A list that must not repeat a value repeats it.
    Duplicate,
    /// A list that must be sorted is not.
    Unordered,
    /// A version, algorithm or content type this implementation does not handle.
    Unsupported,
    /// Bytes that should be a P-256 public key are not a point on the curve.
    NotOnCurve,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Truncated => f.write_str("input ends inside an item"),
            Problem::TrailingBytes => f.write_str("bytes after the end of the item"),
            Problem::NonCanonical => f.write_str("not deterministic CBOR"),
            Problem::WrongType => f.write_str("wrong CBOR type"),
            Problem::UnknownKey { key } => write!(f, "unknown map key {key}"),
            Problem::MissingKey { key } => write!(f, "missing map key {key}"),
            Problem::OutOfRange => f.write_str("value out of range"),
            Problem::TooLarge => f.write_str("document too large"),
            Problem::TooMany => f.write_str("too many items"),
            Problem::Duplicate => f.write_str("duplicate item"),
            Problem::Unordered => f.write_str("items out of order"),
            Problem::Unsupported => f.write_str("unsupported value"),
            Problem::NotOnCurve => f.write_str("not a P-256 point"),
        }
    }
}

/// Attaches a field name to a low-level [`Problem`].
pub(crate) trait At<T> {
    fn at(self, field: &'static str) -> Result<T, Malformed>;
}

impl<T> At<T> for Result<T, Problem> {
    fn at(self, field: &'static str) -> Result<T, Malformed> {
        self.map_err(|problem| Malformed { field, problem })
    }
}

// Major types (RFC 8949 §3.1).
const UINT: u8 = 0;
const NINT: u8 = 1;
const BYTES: u8 = 2;
const TEXT: u8 = 3;
const ARRAY: u8 = 4;
const MAP: u8 = 5;
const TAG: u8 = 6;

// Simple values (major type 7) we use, as whole initial bytes.
const FALSE: u8 = 0xf4;
const TRUE: u8 = 0xf5;
const NULL: u8 = 0xf6;

/// Writes deterministic CBOR. The caller emits map entries in ascending key order (all our
/// keys are small unsigned integers, whose bytewise order is their numeric order).
#[derive(Default)]
pub(crate) struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn new() -> Writer {
        Writer::default()
    }

    pub(crate) fn into_vec(self) -> Vec<u8> {
        self.buf
    }

    /// The shortest head for `value` (RFC 8949 §4.2.1, "preferred serialization").
    fn head(&mut self, major: u8, value: u64) {
        let m = major << 5;
        if value < 24 {
            self.buf.push(m | value as u8);
        } else if value <= u8::MAX as u64 {
            self.buf.extend_from_slice(&[m | 24, value as u8]);
        } else if value <= u16::MAX as u64 {
            self.buf.push(m | 25);
            self.buf.extend_from_slice(&(value as u16).to_be_bytes());
        } else if value <= u32::MAX as u64 {
            self.buf.push(m | 26);
            self.buf.extend_from_slice(&(value as u32).to_be_bytes());
        } else {
            self.buf.push(m | 27);
            self.buf.extend_from_slice(&value.to_be_bytes());
        }
    }

    pub(crate) fn uint(&mut self, value: u64) {
        self.head(UINT, value);
    }

    pub(crate) fn int(&mut self, value: i64) {
        if value >= 0 {
            self.head(UINT, value as u64);
        } else {
            // -1 - value, computed without overflow for i64::MIN.
            self.head(NINT, !(value as u64));
        }
    }

    pub(crate) fn bytes(&mut self, value: &[u8]) {
        self.head(BYTES, value.len() as u64);
        self.buf.extend_from_slice(value);
    }

    pub(crate) fn text(&mut self, value: &str) {
        self.head(TEXT, value.len() as u64);
        self.buf.extend_from_slice(value.as_bytes());
    }

    pub(crate) fn array(&mut self, len: usize) {
        self.head(ARRAY, len as u64);
    }

    pub(crate) fn map(&mut self, len: usize) {
        self.head(MAP, len as u64);
    }

    pub(crate) fn bool(&mut self, value: bool) {
        self.buf.push(if value { TRUE } else { FALSE });
    }

    pub(crate) fn null(&mut self) {
        self.buf.push(NULL);
    }
}

/// Reads deterministic CBOR from a slice, refusing any other encoding.
pub(crate) struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Reader<'a> {
        Reader { data, pos: 0 }
    }

    /// Succeeds only if every byte has been read.
    pub(crate) fn finish(&self) -> Result<(), Problem> {
        if self.pos == self.data.len() {
            Ok(())
        } else {
            Err(Problem::TrailingBytes)
        }
    }

    /// Succeeds only if every byte left is zero: the padding a sealed payload may carry after
    /// its item, which must not become a channel for anything else.
    pub(crate) fn finish_padded(&self) -> Result<(), Problem> {
        if self.data[self.pos..].iter().all(|&b| b == 0) {
            Ok(())
        } else {
            Err(Problem::TrailingBytes)
        }
    }

    fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Problem> {
        if n > self.remaining() {
            return Err(Problem::Truncated);
        }
        let out = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn byte(&mut self) -> Result<u8, Problem> {
        Ok(self.take(1)?[0])
    }

    fn peek(&self) -> Result<u8, Problem> {
        self.data.get(self.pos).copied().ok_or(Problem::Truncated)
    }

    /// Reads a head of major type `major` and returns its argument, refusing a head that is
    /// longer than needed and indefinite lengths.
    fn head(&mut self, major: u8) -> Result<u64, Problem> {
        let initial = self.byte()?;
        if initial >> 5 != major {
            return Err(Problem::WrongType);
        }
        let info = initial & 0x1f;
        let (value, min) = match info {
            0..=23 => return Ok(info as u64),
            24 => (self.byte()? as u64, 24),
            25 => (u16::from_be_bytes(fixed(self.take(2)?)) as u64, 0x100),
            26 => (u32::from_be_bytes(fixed(self.take(4)?)) as u64, 0x1_0000),
            27 => (u64::from_be_bytes(fixed(self.take(8)?)), 0x1_0000_0000),
            31 => return Err(Problem::NonCanonical),
            _ => return Err(Problem::WrongType),
        };
        if value < min {
            return Err(Problem::NonCanonical);
        }
        Ok(value)
    }

    pub(crate) fn uint(&mut self) -> Result<u64, Problem> {
        self.head(UINT)
    }

    pub(crate) fn int(&mut self) -> Result<i64, Problem> {
        let major = self.peek()? >> 5;
        match major {
            UINT => i64::try_from(self.head(UINT)?).map_err(|_| Problem::OutOfRange),
            NINT => {
                let n = i64::try_from(self.head(NINT)?).map_err(|_| Problem::OutOfRange)?;
                Ok(-1 - n)
            }
            _ => Err(Problem::WrongType),
        }
    }

    /// A length argument, checked against the bytes that remain so that no caller sizes an
    /// allocation from a forged length.
    fn len(&mut self, major: u8) -> Result<usize, Problem> {
        let n = self.head(major)?;
        match usize::try_from(n) {
            Ok(n) if n <= self.remaining() => Ok(n),
            _ => Err(Problem::Truncated),
        }
    }

    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], Problem> {
        let n = self.len(BYTES)?;
        self.take(n)
    }

    /// A byte string of exactly `N` bytes.
    pub(crate) fn bytes_fixed<const N: usize>(&mut self) -> Result<[u8; N], Problem> {
        <[u8; N]>::try_from(self.bytes()?).map_err(|_| Problem::OutOfRange)
    }

    pub(crate) fn text(&mut self) -> Result<&'a str, Problem> {
        let n = self.len(TEXT)?;
        core::str::from_utf8(self.take(n)?).map_err(|_| Problem::WrongType)
    }

    /// An array head with at most `max` items. Each item takes at least one byte, so the count
    /// is also bounded by the input.
    pub(crate) fn array(&mut self, max: usize) -> Result<usize, Problem> {
        let n = self.len(ARRAY)?;
        if n > max {
            return Err(Problem::TooMany);
        }
        Ok(n)
    }

    /// A map head; the entries are read with [`Reader::key`].
    pub(crate) fn map(&mut self) -> Result<usize, Problem> {
        // Each entry takes at least two bytes; `len` has checked one per entry, enough to keep
        // the count honest.
        self.len(MAP)
    }

    /// The next map key: an unsigned integer strictly greater than the previous one (`prev`),
    /// which is what deterministic encoding requires of small integer keys.
    pub(crate) fn key(&mut self, prev: Option<u64>) -> Result<u64, Problem> {
        let key = self.uint()?;
        match prev {
            Some(p) if key <= p => Err(Problem::NonCanonical),
            _ => Ok(key),
        }
    }

    pub(crate) fn tag(&mut self) -> Result<u64, Problem> {
        self.head(TAG)
    }

    pub(crate) fn bool(&mut self) -> Result<bool, Problem> {
        match self.peek()? {
            FALSE => {
                self.pos += 1;
                Ok(false)
            }
            TRUE => {
                self.pos += 1;
                Ok(true)
            }
            _ => Err(Problem::WrongType),
        }
    }

    /// Consumes a `null` if one is next.
    pub(crate) fn null(&mut self) -> Result<bool, Problem> {
        if self.peek()? == NULL {
            self.pos += 1;
            Ok(true)
        } else {
            Ok(false)
        }
    }
}

fn fixed<const N: usize>(s: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(s);
    out
}

/// Tracks which keys of a map have been seen, so a decoder can report the first missing one.
pub(crate) struct Keys {
    seen: u64,
    prev: Option<u64>,
}

impl Keys {
    pub(crate) fn new() -> Keys {
        Keys {
            seen: 0,
            prev: None,
        }
    }

    /// Reads the next key, refusing keys out of order and keys at or above 64 (none of our
    /// schemas goes near that, so they are simply unknown).
    pub(crate) fn next(&mut self, r: &mut Reader<'_>) -> Result<u64, Problem> {
        let key = r.key(self.prev)?;
        self.prev = Some(key);
        if key >= 64 {
            return Err(Problem::UnknownKey { key });
        }
        self.seen |= 1 << key;
        Ok(key)
    }

    /// Fails with the first key of `required` that was not seen.
    pub(crate) fn require(&self, required: &[u64]) -> Result<(), Problem> {
        match required.iter().find(|&&k| self.seen & (1 << k) == 0) {
            Some(&key) => Err(Problem::MissingKey { key }),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(f: impl FnOnce(&mut Writer)) -> Vec<u8> {
        let mut w = Writer::new();
        f(&mut w);
        w.into_vec()
    }

    #[test]
    fn integers_use_the_shortest_head() {
        assert_eq!(enc(|w| w.uint(23)), [0x17]);
        assert_eq!(enc(|w| w.uint(24)), [0x18, 24]);
        assert_eq!(enc(|w| w.uint(256)), [0x19, 1, 0]);
        assert_eq!(enc(|w| w.uint(65536)), [0x1a, 0, 1, 0, 0]);
        assert_eq!(enc(|w| w.uint(1 << 32)), [0x1b, 0, 0, 0, 1, 0, 0, 0, 0]);
        assert_eq!(enc(|w| w.int(-1)), [0x20]);
        assert_eq!(enc(|w| w.int(-25)), [0x38, 24]);
        assert_eq!(
            enc(|w| w.int(i64::MIN)),
            [0x3b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]
        );
    }

    #[test]
    fn integers_round_trip_at_the_edges() {
        for v in [
            0,
            1,
            23,
            24,
            255,
            256,
            65535,
            65536,
            -1,
            -24,
            -25,
            -256,
            -257,
            i64::MAX,
            i64::MIN,
        ] {
            let b = enc(|w| w.int(v));
            let mut r = Reader::new(&b);
            assert_eq!(r.int(), Ok(v));
            assert_eq!(r.finish(), Ok(()));
        }
    }

    #[test]
    fn non_shortest_heads_and_indefinite_lengths_are_refused() {
        assert_eq!(Reader::new(&[0x18, 23]).uint(), Err(Problem::NonCanonical));
        assert_eq!(
            Reader::new(&[0x19, 0, 255]).uint(),
            Err(Problem::NonCanonical)
        );
        assert_eq!(
            Reader::new(&[0x1a, 0, 0, 255, 255]).uint(),
            Err(Problem::NonCanonical)
        );
        assert_eq!(
            Reader::new(&[0x1b, 0, 0, 0, 0, 255, 255, 255, 255]).uint(),
            Err(Problem::NonCanonical)
        );
        assert_eq!(
            Reader::new(&[0x5f, 0x41, 0, 0xff]).bytes(),
            Err(Problem::NonCanonical)
        );
        assert_eq!(
            Reader::new(&[0x9f, 0xff]).array(4),
            Err(Problem::NonCanonical)
        );
        assert_eq!(Reader::new(&[0x1c]).uint(), Err(Problem::WrongType));
    }

    #[test]
    fn integers_beyond_i64_are_out_of_range() {
        let max = [0x1b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(Reader::new(&max).int(), Err(Problem::OutOfRange));
        let min = [0x3b, 0x80, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(Reader::new(&min).int(), Err(Problem::OutOfRange));
    }

    #[test]
    fn forged_lengths_do_not_allocate() {
        // A byte string claiming 2^64-1 bytes and an array claiming as many items.
        let b = [0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(Reader::new(&b).bytes(), Err(Problem::Truncated));
        let a = [0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(Reader::new(&a).array(usize::MAX), Err(Problem::Truncated));
        assert_eq!(
            Reader::new(&[0x83, 1, 2, 3]).array(2),
            Err(Problem::TooMany)
        );
    }

    #[test]
    fn map_keys_must_ascend() {
        let mut r = Reader::new(&[0x02, 0x01]);
        let mut keys = Keys::new();
        assert_eq!(keys.next(&mut r), Ok(2));
        assert_eq!(keys.next(&mut r), Err(Problem::NonCanonical));
        let mut r = Reader::new(&[0x01, 0x01]);
        let mut keys = Keys::new();
        assert_eq!(keys.next(&mut r), Ok(1));
        assert_eq!(keys.next(&mut r), Err(Problem::NonCanonical));
        assert_eq!(keys.require(&[0, 1]), Err(Problem::MissingKey { key: 0 }));
    }

    #[test]
    fn text_must_be_utf8() {
        assert_eq!(
            Reader::new(&[0x62, 0xc3, 0x28]).text(),
            Err(Problem::WrongType)
        );
        assert_eq!(Reader::new(&[0x62, b'o', b'k']).text(), Ok("ok"));
    }
}
