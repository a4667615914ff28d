//! The reference lock's simulated battery: a fixed charge that every operation draws from,
//! deterministically, so tests and demos see a lock's battery fall as it is used and a manager
//! see it in the lock's health reports.
//!
//! A full battery holds [`FULL_CHARGE`] units. A decided unlock request or a granted keypad
//! code draws [`UNLOCK_DRAW`] (the radio and the motor), a sync bundle applied draws
//! [`SYNC_DRAW`] (the radio stays up for the transfer, the flash is written). The percentage
//! reported is the charge left, rounded down: one unlock from full reads 99 %. That is about a
//! thousand unlocks per battery, far fewer than real locks manage, so the drain shows.

/// Units in a full battery.
pub const FULL_CHARGE: u32 = 10_000;
/// Units one decided unlock request, or one granted keypad code, draws.
pub const UNLOCK_DRAW: u32 = 10;
/// Units one applied sync bundle draws.
pub const SYNC_DRAW: u32 = 20;

/// Charge left, in units of [`FULL_CHARGE`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Battery {
    left: u32,
}

impl Default for Battery {
    fn default() -> Battery {
        Battery { left: FULL_CHARGE }
    }
}

impl Battery {
    /// A battery at `percent` (above 100 counts as 100).
    pub fn at_percent(percent: u8) -> Battery {
        Battery {
            left: FULL_CHARGE / 100 * u32::from(percent.min(100)),
        }
    }

    /// Charge left, 0 to 100, rounded down.
    pub fn percent(&self) -> u8 {
        // At most 100.
        (self.left * 100 / FULL_CHARGE) as u8
    }

    /// Takes `units`; an empty battery stays empty.
    pub fn draw(&mut self, units: u32) {
        self.left = self.left.saturating_sub(units);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_draws_and_the_percentage_never_rises() {
        let mut b = Battery::default();
        assert_eq!(b.percent(), 100);
        b.draw(UNLOCK_DRAW);
        assert_eq!(b.percent(), 99, "one unlock from full");
        let mut last = b.percent();
        for i in 0..2_000 {
            b.draw(if i % 3 == 0 { SYNC_DRAW } else { UNLOCK_DRAW });
            assert!(b.percent() <= last);
            last = b.percent();
        }
        assert_eq!(b.percent(), 0, "drained, and stays at empty");
        assert_eq!(Battery::at_percent(42).percent(), 42);
        assert_eq!(Battery::at_percent(200).percent(), 100);
    }
}
