//! Door Sync as a state machine: random sequences of full and delta bundles carrying floors and
//! issued floors against a model of what the lock must hold, and doorcodes with schedules at the
//! keypad against `evaluate` on each schedule.

mod common;

use std::collections::BTreeMap;

use common::*;
use door_protocol::revocation::Floor;
use door_protocol::sync::bundle::KeypadRules;
use door_protocol::sync::DoorcodeDenied;
use door_protocol::{
    evaluate, open_bundle, AccessDocument, Doorcode, DoorcodeChanges, DoorcodeResult, Id,
    LockState, Schedule, SyncBundle, SyncError, Weekdays, Window, ZoneRules,
};
use proptest::prelude::*;
use rand_core::OsRng;

const NOW: i64 = MONDAY_0800_NY;
const PEOPLE: u8 = 5;

fn person(i: u8) -> Id {
    Id([0xb0 + i; 16])
}

fn apply(state: &mut LockState, bundle: &SyncBundle, clock: i64) -> Result<(), SyncError> {
    let config = lock_config();
    let bytes = bundle
        .seal_and_sign(&issuer(), config.key.public(), &mut OsRng)
        .unwrap();
    state
        .apply_bundle(&config, &open_bundle(&bytes, &config).unwrap(), clock)
        .map(|_| ())
}

/// One step: a bundle built against the lock's iteration, after the clock moved on.
#[derive(Clone, Debug)]
struct Step {
    /// Seconds the clock moves before the bundle arrives.
    wait: i64,
    /// Full, a delta from the lock's iteration, a delta from another base, or stale.
    kind: Kind,
    /// (person, floor, expiry in seconds from the bundle's arrival).
    floors: Vec<(u8, u64, i64)>,
    /// Seconds from `NOW`.
    issued_floor: Option<i64>,
    /// (person, access_iteration, issued_at from `NOW`, seconds after the arrival).
    probes: Vec<(u8, u64, i64, i64)>,
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Full,
    Delta,
    WrongBase,
    Stale,
}

fn step() -> impl Strategy<Value = Step> {
    (
        0..3_000i64,
        prop_oneof![
            2 => Just(Kind::Full),
            4 => Just(Kind::Delta),
            1 => Just(Kind::WrongBase),
            1 => Just(Kind::Stale),
        ],
        prop::collection::btree_map(0..PEOPLE, (0..6u64, -500..5_000i64), 0..=4),
        prop::option::of(-2_000..2_000i64),
        prop::collection::vec((0..PEOPLE, 0..7u64, -2_500..2_500i64, 0..6_000i64), 1..12),
    )
        .prop_map(|(wait, kind, floors, issued_floor, probes)| Step {
            wait,
            kind,
            floors: floors.into_iter().map(|(p, (f, e))| (p, f, e)).collect(),
            issued_floor,
            probes,
        })
}

/// What the lock must hold: per person the highest floor and the latest expiry since the last
/// full bundle (dropped once expired when a bundle applies), and the highest issued floor ever.
#[derive(Clone, Default, Debug)]
struct Model {
    iteration: u64,
    floors: BTreeMap<u8, (u64, i64)>,
    issued_floor: Option<i64>,
}

impl Model {
    fn voids(&self, person: u8, access_iteration: u64, issued_at: i64, now: i64) -> bool {
        let by_floor = self
            .floors
            .get(&person)
            .is_some_and(|&(floor, expires)| access_iteration < floor && now < expires);
        by_floor || self.issued_floor.is_some_and(|f| issued_at < f)
    }
}

fn document(person_index: u8, access_iteration: u64, issued_at: i64) -> AccessDocument {
    AccessDocument {
        person_id: person(person_index),
        access_iteration,
        issued_at,
        ..sample_access()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn floors_and_the_issued_floor_follow_the_model(steps in prop::collection::vec(step(), 1..8)) {
        let mut state = LockState::default();
        let mut model = Model::default();
        let mut clock = NOW;
        for step in steps {
            clock += step.wait;
            let (iteration, base) = match step.kind {
                Kind::Full => (model.iteration + 1, 0),
                Kind::Delta => (model.iteration + 1, model.iteration),
                Kind::WrongBase => (model.iteration + 2, model.iteration + 1),
                Kind::Stale => (model.iteration.max(1), 0),
            };
            let bundle = SyncBundle {
                lock_id: LOCK_ID,
                iteration,
                base_iteration: base,
                issued_at: clock,
                floors: step
                    .floors
                    .iter()
                    .map(|&(p, floor, expires)| Floor {
                        person_id: person(p),
                        floor,
                        expires_at: clock + expires,
                    })
                    .collect(),
                issued_floor: step.issued_floor.map(|f| NOW + f),
                doorcodes: DoorcodeChanges::default(),
                keypad: None,
                audit_ack: None,
            };
            let before = state.clone();
            let applies = match step.kind {
                Kind::Full | Kind::Delta => true,
                Kind::WrongBase => false,
                // Before any bundle, "stale" is a full bundle at iteration 1.
                Kind::Stale => model.iteration == 0,
            };
            let result = apply(&mut state, &bundle, clock);
            prop_assert_eq!(result.is_ok(), applies, "{:?}: {:?}", step.kind, result);
            if !applies {
                prop_assert_eq!(&state, &before, "a refused bundle changed the state");
            } else {
                if base == 0 {
                    model.floors.clear();
                }
                for &(p, floor, expires) in &step.floors {
                    let e = model.floors.entry(p).or_insert((floor, clock + expires));
                    e.0 = e.0.max(floor);
                    e.1 = e.1.max(clock + expires);
                }
                model.floors.retain(|_, &mut (_, expires)| clock < expires);
                model.issued_floor = model.issued_floor.max(step.issued_floor.map(|f| NOW + f));
                model.iteration = iteration;
                prop_assert_eq!(state.sync_iteration(), model.iteration);
                prop_assert_eq!(state.sync.floors().len(), model.floors.len());
                prop_assert_eq!(state.sync.issued_floor(), model.issued_floor);
            }
            for &(p, access_iteration, issued_at, after) in &step.probes {
                let doc = document(p, access_iteration, NOW + issued_at);
                let now = clock + after;
                let expected = model.voids(p, access_iteration, NOW + issued_at, now);
                prop_assert_eq!(state.sync.voids(&doc, now), expected, "{:?} at {}", doc.person_id, now);
                prop_assert_eq!(state.is_revoked(&doc, now), expected);
            }
        }
    }
}

// --- Doorcodes with schedules ---

/// Hour edges, every weekday or a few.
fn window() -> impl Strategy<Value = Window> {
    (1u8..=0x7f, 0u16..24, 1u16..=24)
        .prop_filter("not empty", |(_, s, e)| s != e)
        .prop_map(|(days, s, e)| Window {
            days: Weekdays(days),
            start_minute: s * 60,
            end_minute: e * 60,
        })
}

/// 0-3 windows and an optional validity range within the fortnight probed.
fn schedule() -> impl Strategy<Value = Schedule> {
    (
        prop::collection::vec(window(), 0..=3),
        prop::option::of(-2..10i64),
        prop::option::of(1..10i64),
    )
        .prop_map(|(windows, from, days)| {
            let not_before = from.map(|d| NOW + d * 86_400);
            let not_after = days.map(|d| not_before.unwrap_or(NOW) + d * 86_400);
            Schedule {
                windows,
                not_before,
                not_after,
            }
        })
}

/// Ascending distinct indexes into a table of `n`, 1 to 3 of them.
fn indexes(n: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::btree_set(0..n as u8, 1..=3.min(n)).prop_map(|s| s.into_iter().collect())
}

fn keypad_case() -> impl Strategy<Value = (bool, Vec<Schedule>, Vec<u8>, Vec<u8>, Vec<i64>)> {
    (any::<bool>(), prop::collection::vec(schedule(), 1..=4)).prop_flat_map(|(ny, table)| {
        let n = table.len();
        (
            Just(ny),
            Just(table),
            indexes(n),
            indexes(n),
            prop::collection::vec(0..14 * 86_400i64, 1..16),
        )
    })
}

fn check_code(
    state: &mut LockState,
    rules: &KeypadRules,
    selected: &[u8],
    probes: &[i64],
) -> Result<(), TestCaseError> {
    let who = person(0);
    for &after in probes {
        let t = NOW + after;
        let opens = selected
            .iter()
            .any(|&i| evaluate(&rules.schedules[usize::from(i)], &rules.zone, t).is_allowed());
        let result = state.enter_doorcode(&lock_config(), "135790", t);
        if opens {
            prop_assert_eq!(result, DoorcodeResult::Granted { person_id: who });
        } else {
            prop_assert!(
                matches!(
                    result,
                    DoorcodeResult::Denied(DoorcodeDenied::OutOfSchedule { person_id, .. })
                        if person_id == who
                ),
                "{:?} at {}",
                result,
                t
            );
        }
    }
    // Out-of-schedule entries never count towards the lockout.
    prop_assert!(state.keypad.recent_failures().is_empty());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn a_code_opens_exactly_when_one_of_its_schedules_allows(
        (ny, table, first, second, probes) in keypad_case()
    ) {
        let rules = KeypadRules {
            zone: if ny { new_york_2026() } else { ZoneRules::fixed(0) },
            schedules: table,
        };
        let code = |schedules: Vec<u8>| Doorcode {
            person_id: person(0),
            code: "135790".into(),
            expires_at: None,
            schedules,
        };
        let mut state = LockState::default();
        apply(
            &mut state,
            &SyncBundle {
                lock_id: LOCK_ID,
                iteration: 1,
                base_iteration: 0,
                issued_at: NOW,
                floors: Vec::new(),
                issued_floor: None,
                doorcodes: DoorcodeChanges {
                    added: vec![code(first.clone())],
                    removed: Vec::new(),
                },
                keypad: Some(rules.clone()),
                audit_ack: None,
            },
            NOW,
        )
        .unwrap();
        check_code(&mut state, &rules, &first, &probes)?;
        // A delta upserts the code with other indexes into the table the lock holds.
        apply(
            &mut state,
            &SyncBundle {
                lock_id: LOCK_ID,
                iteration: 2,
                base_iteration: 1,
                issued_at: NOW,
                floors: Vec::new(),
                issued_floor: None,
                doorcodes: DoorcodeChanges {
                    added: vec![code(second.clone())],
                    removed: Vec::new(),
                },
                keypad: None,
                audit_ack: None,
            },
            NOW,
        )
        .unwrap();
        prop_assert_eq!(state.sync.keypad(), Some(&rules));
        check_code(&mut state, &rules, &second, &probes)?;
        // An index beyond the table is refused, and changes nothing.
        let before = state.clone();
        let beyond = u8::try_from(rules.schedules.len()).unwrap();
        let refused = apply(
            &mut state,
            &SyncBundle {
                lock_id: LOCK_ID,
                iteration: 3,
                base_iteration: 2,
                issued_at: NOW,
                floors: Vec::new(),
                issued_floor: None,
                doorcodes: DoorcodeChanges {
                    added: vec![code(vec![beyond])],
                    removed: Vec::new(),
                },
                keypad: None,
                audit_ack: None,
            },
            NOW,
        );
        prop_assert!(refused.is_err());
        prop_assert_eq!(state, before);
    }
}
