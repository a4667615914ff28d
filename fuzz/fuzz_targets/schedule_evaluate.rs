//! Key Schedules and zone rules, as a lock evaluates a document's grant on every unlock:
//! `Schedule::validate`, `ZoneRules::validate`, `evaluate`, `ZoneRules::to_local` and
//! `local_to_utc` on any windows, offsets and instants (they promise not to panic even on
//! unvalidated rules), with rules from the bytes or from `ZoneRules::from_iana`.
//!
//! Oracle on valid inputs within ±2^40 s of the epoch: the next change lies ahead, and the
//! wall-clock minute at `t` is first reached no later than `t`.
#![no_main]

use arbitrary::{Result, Unstructured};
use door_protocol::{evaluate, Schedule, Transition, UnixTime, Weekdays, Window, ZoneRules};
use door_protocol_fuzz::blob;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let (Ok(t), Ok(schedule), Ok(zone)) = (
        u.arbitrary::<UnixTime>(),
        schedule(&mut u),
        zone_rules(&mut u),
    ) else {
        return;
    };
    let decision = evaluate(&schedule, &zone, t);
    let local = zone.to_local(t);
    assert!(local.weekday < 7 && local.second < 86_400);
    let first = zone.local_to_utc(local.day, local.minute());
    let valid = schedule.validate().is_ok() && zone.validate().is_ok();
    if valid && t.unsigned_abs() < 1 << 40 {
        assert!(
            decision.next_change().is_none_or(|at| at > t),
            "{decision:?} at {t}"
        );
        assert!(first <= t, "minute first shown at {first}, after {t}");
    }
});

fn schedule(u: &mut Unstructured) -> Result<Schedule> {
    let mut windows = Vec::new();
    for _ in 0..u.arbitrary::<u8>()? % 8 {
        windows.push(Window {
            days: Weekdays(u.arbitrary()?),
            start_minute: u.arbitrary()?,
            end_minute: u.arbitrary()?,
        });
    }
    Ok(Schedule {
        windows,
        not_before: u.arbitrary()?,
        not_after: u.arbitrary()?,
    })
}

/// Even selector: an initial offset and up to 7 transitions, each a positive step after the
/// one before (so that most rules are sorted, as valid ones must be). Odd: an IANA zone name
/// and a span of up to 65535 hours (seven years) from an instant: from_iana samples every six
/// hours, and a longer span only costs time.
fn zone_rules(u: &mut Unstructured) -> Result<ZoneRules> {
    if u.arbitrary::<u8>()? % 2 == 1 {
        let name = std::str::from_utf8(blob(u)?).unwrap_or_default();
        let from: UnixTime = u.arbitrary()?;
        let to = from.saturating_add(i64::from(u.arbitrary::<u16>()?) * 3600);
        return ZoneRules::from_iana(name, from, to).map_err(|_| arbitrary::Error::IncorrectFormat);
    }
    let initial_offset = u.arbitrary()?;
    let mut at: UnixTime = u.arbitrary()?;
    let mut transitions = Vec::new();
    for _ in 0..u.arbitrary::<u8>()? % 8 {
        at = at.saturating_add(i64::from(u.arbitrary::<u32>()?) + 1);
        transitions.push(Transition {
            at,
            offset: u.arbitrary()?,
        });
    }
    Ok(ZoneRules {
        initial_offset,
        transitions,
    })
}
