//! The keypad against a patient guesser: wrong codes counted in a sliding day that no success
//! clears, lockouts that double, and the guessing rate that leaves, checked on generated
//! sequences of entries against a model of the rule.

mod common;

use common::*;
use door_protocol::sync::state::{
    KEYPAD_LOCKOUT, KEYPAD_LOCKOUT_MAX, KEYPAD_MAX_FAILURES, KEYPAD_WINDOW,
};
use door_protocol::sync::DoorcodeDenied;
use door_protocol::{
    evaluate, open_bundle, Doorcode, DoorcodeChanges, DoorcodeResult, Id, LockState, SyncBundle,
};
use proptest::prelude::*;
use rand_core::OsRng;

const NOW: i64 = MONDAY_0800_NY;
const OWN: &str = "111111";
/// Schedule 1 of the sample keypad: Monday to Friday, 09:00-17:00.
const OFFICE_HOURS: &str = "222222";
const EXPIRING: &str = "333333";
/// Expires two days in.
const EXPIRES: i64 = NOW + 2 * 86_400;

/// The most wrong codes a keypad reads in any day, worked out from the rule: the first
/// `KEYPAD_MAX_FAILURES` at once; then one after each lockout while they double from 60 s to
/// 1,920 s (six more, the last at 3,780 s, which starts the first hour-long lockout); then one
/// an hour for the rest of the day (22 more). docs/SECURITY.md quotes it.
const MOST_IN_A_DAY: usize = KEYPAD_MAX_FAILURES + 6 + 22;
/// Once the longest lockout is reached, one wrong code an hour.
const SUSTAINED_PER_DAY: usize = (86_400 / KEYPAD_LOCKOUT_MAX) as usize;

fn person(tag: u8) -> Id {
    Id([tag; 16])
}

/// A lock with three codes: one around the clock, one in office hours, one that expires.
fn lock() -> LockState {
    let code = |tag, code: &str, expires_at, schedule| Doorcode {
        person_id: person(tag),
        code: code.into(),
        expires_at,
        schedules: vec![schedule],
    };
    let bundle = SyncBundle {
        doorcodes: DoorcodeChanges {
            added: vec![
                code(0xa1, OWN, None, 0),
                code(0xa2, OFFICE_HOURS, None, 1),
                code(0xa3, EXPIRING, Some(EXPIRES), 0),
            ],
            removed: Vec::new(),
        },
        ..full_bundle(0, 1)
    };
    let config = lock_config();
    let bytes = bundle
        .seal_and_sign(&issuer(), config.key.public(), &mut OsRng)
        .unwrap();
    let mut state = LockState::default();
    state
        .apply_bundle(&config, &open_bundle(&bytes, &config).unwrap(), NOW)
        .unwrap();
    state
}

fn enter(state: &mut LockState, code: &str, t: i64) -> DoorcodeResult {
    state.enter_doorcode(&lock_config(), code, t)
}

#[test]
fn four_guesses_then_the_own_code_do_not_reset_the_lockout() {
    let mut state = lock();
    let mut t = NOW;
    let mut guesses = 0;
    'rounds: loop {
        assert!(guesses < 100, "the own code keeps resetting the count");
        for _ in 0..4 {
            t += 5;
            assert_eq!(
                enter(&mut state, "000000", t),
                DoorcodeResult::Denied(DoorcodeDenied::Unknown)
            );
            guesses += 1;
            if until_of(&state, t).is_some() {
                break 'rounds;
            }
        }
        t += 5;
        assert_eq!(
            enter(&mut state, OWN, t),
            DoorcodeResult::Granted {
                person_id: person(0xa1)
            }
        );
    }
    assert_eq!(guesses, KEYPAD_MAX_FAILURES);
    let until = t + KEYPAD_LOCKOUT;
    assert_eq!(until_of(&state, t), Some(until));
    assert_eq!(
        enter(&mut state, OWN, t + 1),
        DoorcodeResult::Denied(DoorcodeDenied::LockedOut { until }),
        "a lockout refuses even the right code"
    );
}

/// The lockout in force at `t`, read through the keypad without typing.
fn until_of(state: &LockState, t: i64) -> Option<i64> {
    state.keypad.lockout(t)
}

/// Guesses a wrong code the moment the keypad reads one, for `days`; the wrong codes read each
/// day.
fn greedy(days: i64) -> Vec<usize> {
    let mut state = lock();
    let mut per_day = vec![0; days as usize];
    let mut t = NOW;
    while t < NOW + days * 86_400 {
        match enter(&mut state, "000000", t) {
            DoorcodeResult::Denied(DoorcodeDenied::Unknown) => {
                per_day[((t - NOW) / 86_400) as usize] += 1;
            }
            DoorcodeResult::Denied(DoorcodeDenied::LockedOut { until }) => t = until,
            other => panic!("{other:?}"),
        }
    }
    per_day
}

#[test]
fn a_greedy_guesser_gets_most_in_a_day_on_the_first_then_one_an_hour() {
    let per_day = greedy(7);
    assert_eq!(per_day[0], MOST_IN_A_DAY);
    for &day in &per_day[1..] {
        assert!(
            (SUSTAINED_PER_DAY..=SUSTAINED_PER_DAY + 1).contains(&day),
            "{per_day:?}"
        );
    }
}

/// What one entry is.
#[derive(Clone, Copy, Debug)]
enum Entry {
    Wrong,
    Own,
    OfficeHours,
    Expiring,
}

fn entry() -> impl Strategy<Value = Entry> {
    prop_oneof![
        6 => Just(Entry::Wrong),
        2 => Just(Entry::Own),
        1 => Just(Entry::OfficeHours),
        1 => Just(Entry::Expiring),
    ]
}

/// Seconds before the next entry: bursts, pauses, days; now and then the clock set back a
/// little (as signed time may, within the tolerance).
fn wait() -> impl Strategy<Value = i64> {
    prop_oneof![
        6 => 0..30i64,
        3 => 30..4_000i64,
        1 => 4_000..2 * 86_400i64,
        1 => -120..0i64,
    ]
}

/// The rule as docs/SECURITY.md states it, with every wrong code remembered.
#[derive(Default)]
struct Model {
    failures: Vec<i64>,
    locked_until: Option<i64>,
}

impl Model {
    fn locked(&self, t: i64) -> Option<i64> {
        self.locked_until.filter(|&u| t < u)
    }

    fn failed(&mut self, t: i64) {
        self.failures.push(t);
        // The window ends at the latest wrong code (now, unless the clock was set back).
        let horizon = *self.failures.iter().max().unwrap();
        let in_window = self
            .failures
            .iter()
            .filter(|&&f| f > horizon - KEYPAD_WINDOW)
            .count();
        if in_window >= KEYPAD_MAX_FAILURES {
            let doublings = (in_window - KEYPAD_MAX_FAILURES).min(32) as u32;
            let lockout = (KEYPAD_LOCKOUT << doublings).min(KEYPAD_LOCKOUT_MAX);
            self.locked_until = Some(t + lockout);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// For any sequence of entries: every answer is the model's, a success never shortens a
    /// lockout, and no span of a day reads more than `MOST_IN_A_DAY` wrong codes.
    #[test]
    fn the_keypad_follows_the_rule_and_caps_the_guesses(
        entries in prop::collection::vec((wait(), entry()), 1..300)
    ) {
        let mut state = lock();
        let mut model = Model::default();
        let rules = state.sync.keypad().unwrap().clone();
        let mut t = NOW;
        let mut read_wrong = Vec::new();
        for (wait, entry) in entries {
            t += wait;
            let code = match entry {
                Entry::Wrong => "000000",
                Entry::Own => OWN,
                Entry::OfficeHours => OFFICE_HOURS,
                Entry::Expiring => EXPIRING,
            };
            let result = enter(&mut state, code, t);
            if let Some(until) = model.locked(t) {
                prop_assert_eq!(result, DoorcodeResult::Denied(DoorcodeDenied::LockedOut { until }));
                continue;
            }
            match entry {
                Entry::Wrong => {
                    prop_assert_eq!(result, DoorcodeResult::Denied(DoorcodeDenied::Unknown));
                    model.failed(t);
                    read_wrong.push(t);
                }
                Entry::Expiring if t >= EXPIRES => {
                    prop_assert_eq!(
                        result,
                        DoorcodeResult::Denied(DoorcodeDenied::Expired { person_id: person(0xa3) })
                    );
                    model.failed(t);
                }
                Entry::OfficeHours if !evaluate(&rules.schedules[1], &rules.zone, t).is_allowed() => {
                    prop_assert!(
                        matches!(result, DoorcodeResult::Denied(DoorcodeDenied::OutOfSchedule { .. })),
                        "{:?}", result
                    );
                }
                _ => prop_assert!(matches!(result, DoorcodeResult::Granted { .. }), "{:?}", result),
            }
            prop_assert_eq!(state.keypad.lockout(t), model.locked(t));
        }
        // Entries come in time order but for small steps back: sort before counting spans.
        read_wrong.sort_unstable();
        for (i, &from) in read_wrong.iter().enumerate() {
            let in_day = read_wrong[i..].iter().take_while(|&&w| w < from + 86_400).count();
            prop_assert!(in_day <= MOST_IN_A_DAY, "{} wrong codes read in a day", in_day);
        }
    }
}
