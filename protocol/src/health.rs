//! Lock health: what a lock says of itself (battery, firmware, clock, sync iteration) so that a
//! manager can see which offline lock needs a visit. It travels as an audit event
//! ([`crate::audit::AuditEvent::Health`]): signed by the lock's key, numbered in its audit
//! log's chain, carried home by whichever phone next pulls the lock's records, and kept by the
//! lock until the server acknowledges it, like every other record.
//!
//! ```text
//! event = [6, battery: uint .le 100, firmware: tstr .size (1..32),
//!          clock_offset: int / null, iteration: uint]
//! ```
//!
//! A lock records one at the first audit pull of each connection on which a phone proved a
//! credential (`crate::sync::lock`), when its hardware has given it readings
//! ([`HealthReadings`], through `LockSession::report_health`): so every phone that syncs the
//! lock carries a fresh one home, and a lock nobody visits costs no record.

use core::fmt;

use crate::cbor::{At, Malformed, Problem, Reader, Writer};

/// The longest firmware version string, in bytes.
pub const MAX_FIRMWARE_LEN: usize = 32;

/// A firmware version: 1 to [`MAX_FIRMWARE_LEN`] printable ASCII characters. Held inline so
/// that audit events stay `Copy` and need no allocation on the lock.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct FirmwareVersion {
    len: u8,
    bytes: [u8; MAX_FIRMWARE_LEN],
}

impl FirmwareVersion {
    /// `None` for an empty string, one over [`MAX_FIRMWARE_LEN`] bytes, or one with a
    /// character outside printable ASCII (space to `~`).
    pub fn new(s: &str) -> Option<FirmwareVersion> {
        let b = s.as_bytes();
        if b.is_empty() || b.len() > MAX_FIRMWARE_LEN || !b.iter().all(|c| (0x20..0x7f).contains(c))
        {
            return None;
        }
        let mut bytes = [0u8; MAX_FIRMWARE_LEN];
        bytes[..b.len()].copy_from_slice(b);
        Some(FirmwareVersion {
            len: b.len() as u8,
            bytes,
        })
    }

    pub fn as_str(&self) -> &str {
        // Only printable ASCII gets in.
        core::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

impl fmt::Display for FirmwareVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for FirmwareVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FirmwareVersion({:?})", self.as_str())
    }
}

/// What the lock's hardware reports: the caller measures it, the lock's logic signs it.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub struct HealthReadings {
    /// Battery charge left, 0 to 100.
    pub battery_percent: u8,
    pub firmware: FirmwareVersion,
}

/// A lock's health as its audit record states it.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub struct LockHealth {
    /// Battery charge left, 0 to 100.
    pub battery_percent: u8,
    pub firmware: FirmwareVersion,
    /// Seconds the lock's clock read ahead of the last issuer-signed time it took, at the
    /// moment it took it (negative: it was behind, and stepped forward). `None`: it has taken
    /// none. A signed time is a lower bound that phones may carry for a while, so small
    /// positive values are its age; a large negative one is a slow clock.
    pub clock_offset: Option<i64>,
    /// The sync bundle iteration the lock has applied (0: none).
    pub iteration: u64,
}

impl LockHealth {
    /// Writes the event's fields after its kind: 4 items.
    pub(crate) fn write_fields(&self, w: &mut Writer) {
        w.uint(u64::from(self.battery_percent));
        w.text(self.firmware.as_str());
        match self.clock_offset {
            Some(offset) => w.int(offset),
            None => w.null(),
        }
        w.uint(self.iteration);
    }

    /// Reads the event's fields after its kind.
    pub(crate) fn read_fields(r: &mut Reader<'_>) -> Result<LockHealth, Malformed> {
        let battery = r.uint().at("event.battery")?;
        let battery_percent = u8::try_from(battery)
            .ok()
            .filter(|&b| b <= 100)
            .ok_or_else(|| Malformed::new("event.battery", Problem::OutOfRange))?;
        let firmware = FirmwareVersion::new(r.text().at("event.firmware")?)
            .ok_or_else(|| Malformed::new("event.firmware", Problem::OutOfRange))?;
        let clock_offset = match r.null().at("event.clock_offset")? {
            true => None,
            false => Some(r.int().at("event.clock_offset")?),
        };
        Ok(LockHealth {
            battery_percent,
            firmware,
            clock_offset,
            iteration: r.uint().at("event.iteration")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn firmware_versions_are_short_printable_ascii() {
        let v = FirmwareVersion::new("door-lock 0.1.0").unwrap();
        assert_eq!(v.as_str(), "door-lock 0.1.0");
        assert_eq!(v.to_string(), "door-lock 0.1.0");
        assert!(FirmwareVersion::new("").is_none());
        assert!(FirmwareVersion::new(&"x".repeat(MAX_FIRMWARE_LEN)).is_some());
        assert!(FirmwareVersion::new(&"x".repeat(MAX_FIRMWARE_LEN + 1)).is_none());
        assert!(FirmwareVersion::new("v1\n").is_none());
        assert!(FirmwareVersion::new("v1é").is_none());
    }
}
