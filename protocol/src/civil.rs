//! Proleptic Gregorian calendar arithmetic on day numbers, in integers only.
//!
//! Locks run this on every unlock, so it must not pull a calendar library into firmware. The
//! algorithms are Howard Hinnant's `days_from_civil` / `civil_from_days`
//! (<https://howardhinnant.github.io/date_algorithms.html>), exact for every representable date.

/// Seconds in a civil day (zone offsets absorb leap seconds, as Unix time does).
pub const SECONDS_PER_DAY: i64 = 86_400;

/// Days since 1970-01-01 of the date `year`-`month`-`day` (`month` 1..=12, `day` 1..=31).
///
/// Out-of-range months or days are not rejected: they count on past the end of the month the
/// way the formula does (2024-02-30 is 2024-03-01), which callers should not rely on.
pub fn days_from_civil(year: i32, month: u8, day: u8) -> i64 {
    let m = i64::from(month);
    let y = i64::from(year) - i64::from(m <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date `(year, month, day)` of `days` since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u8, u8) {
    // Saturating keeps absurd inputs (beyond ±2^63 - 719468 days) from panicking in debug builds.
    let z = days.saturating_add(719_468);
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// Weekday of `days` since 1970-01-01, Monday = 0 through Sunday = 6.
pub fn weekday(days: i64) -> u8 {
    // 1970-01-01 was a Thursday (3); rem_euclid of a shifted value avoids overflow at i64::MAX.
    ((days.rem_euclid(7) + 3) % 7) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        assert_eq!(days_from_civil(2024, 2, 29), 19_782);
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(civil_from_days(-719_468), (0, 3, 1));
        assert_eq!(weekday(0), 3);
        assert_eq!(weekday(-1), 2);
        // 2024-03-11 was a Monday.
        assert_eq!(weekday(days_from_civil(2024, 3, 11)), 0);
    }

    #[test]
    fn round_trip_over_four_centuries_and_extremes() {
        for days in (-146_097 * 2..146_097 * 2)
            .step_by(7)
            .chain([i64::MIN, i64::MAX])
        {
            let (y, m, d) = civil_from_days(days);
            if let Ok(y) = i32::try_from(y) {
                assert_eq!(days_from_civil(y, m, d), days);
            }
            assert!(weekday(days) < 7);
        }
    }
}
