//! Opaque 16-byte identifiers for people, credentials, doors and locks.

use core::fmt;

/// A 16-byte random identifier (the server draws them). Shown as 32 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Id(pub [u8; 16]);

impl Id {
    pub const LEN: usize = 16;

    /// Parses 32 hex digits (either case). Returns `None` for anything else.
    pub fn from_hex(s: &str) -> Option<Id> {
        let b = s.as_bytes();
        if b.len() != 32 {
            return None;
        }
        let mut out = [0u8; 16];
        for (i, pair) in b.chunks_exact(2).enumerate() {
            let hi = (pair[0] as char).to_digit(16)?;
            let lo = (pair[1] as char).to_digit(16)?;
            out[i] = (hi * 16 + lo) as u8;
        }
        Some(Id(out))
    }

    pub fn from_slice(s: &[u8]) -> Option<Id> {
        <[u8; 16]>::try_from(s).ok().map(Id)
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Id({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn hex_round_trip() {
        let id = Id([0xab; 16]);
        assert_eq!(Id::from_hex(&id.to_string()), Some(id));
        assert_eq!(Id::from_hex("zz"), None);
        assert_eq!(Id::from_hex(&"g".repeat(32)), None);
    }
}
