//! The lock clock rule (issue 16) as a property: random sequences of genuine signed times (at
//! any past or future instant), phone clocks and hardware clock advances, applied through the
//! real lock paths (unlock requests with a valid credential over a `LockSession`, and bundles'
//! `issued_at` through `apply_bundle`), checked after every step.
//!
//! The lock's hardware clock is accurate: it runs at true rate and reads at or ahead of true
//! time. Then after every step:
//!
//! - the lock's clock is never below its floor (the high-water mark less the tolerance and
//!   200 ppm of the hardware time since the mark was set), and so never reads more than the
//!   tolerance plus that drift allowance behind true time (with no trusted time yet, never
//!   behind at all);
//! - a granted request was judged at a lock time inside the credential's schedule (Monday to
//!   Friday 09:00-17:00 in New York, by an oracle written here) and no further behind true time
//!   than that bound: no step sequence turns the clock back into an earlier window.

mod common;

use common::*;
use door_protocol::sync::time::MAX_DRIFT_PPM;
use door_protocol::{
    open_bundle, LockConfig, LockSession, LockState, PreparedUnlock, SignedTime, SyncBundle,
    UnlockPreparation, UnlockResult, UnlockTarget,
};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use proptest::prelude::*;
use rand_core::OsRng;

const START: i64 = MONDAY_0800_NY;
const DAY: i64 = 86_400;
const HOUR: i64 = 3600;

fn pool_lock() -> LockConfig {
    LockConfig {
        door_id: POOL,
        ..lock_config()
    }
}

/// The oracle: the pool is open Monday to Friday 09:00-17:00, New York summer time (the runs
/// stay within June and July 2026, all EDT).
fn pool_open(t: i64) -> bool {
    let local = t - 4 * HOUR;
    let day = local.div_euclid(DAY);
    let weekday = (day + 3).rem_euclid(7); // 1970-01-01 was a Thursday; 0 is Monday.
    let minute = local.rem_euclid(DAY) / 60;
    weekday < 5 && (9 * 60..17 * 60).contains(&minute)
}

fn prepare(phone_time: i64, signed_time: Option<Vec<u8>>) -> PreparedUnlock {
    let config = pool_lock();
    let target = UnlockTarget {
        lock_id: config.lock_id,
        lock_key: *config.key.public(),
        access_document: sample_access().sign(&issuer()).unwrap(),
    };
    let (mut prep, to_sign) = UnlockPreparation::new(target, phone_time, &mut OsRng).unwrap();
    if let Some(t) = signed_time {
        prep = prep.with_signed_time(t);
    }
    let device = SigningKey::from_bytes(&DEVICE_SCALAR.into()).unwrap();
    let signature: Signature = device.sign(&to_sign);
    prep.signed(&signature.to_bytes()).unwrap()
}

#[derive(Clone, Debug)]
enum Phone {
    /// This many seconds off the lock's clock (the interesting band around the tolerance).
    NearLock(i64),
    /// This many seconds off true time.
    NearTruth(i64),
}

#[derive(Clone, Debug)]
enum Step {
    /// The hardware clock (and true time) move on.
    Advance(i64),
    /// An unlock with the valid credential, a phone clock and maybe a signed time issued this
    /// many seconds after true time (negative: collected earlier).
    Unlock { signed: Option<i64>, phone: Phone },
    /// A full bundle issued this many seconds after true time.
    Bundle(i64),
}

fn signed_offset() -> impl Strategy<Value = i64> {
    prop_oneof![
        2 => -30 * DAY..=0,
        4 => -2 * HOUR..=0,
        1 => 0i64..=600, // a server clock ahead: still genuine, still signed
    ]
}

fn step() -> impl Strategy<Value = Step> {
    let phone = prop_oneof![
        6 => (-300i64..=300).prop_map(Phone::NearLock),
        1 => (-300i64..=300).prop_map(Phone::NearTruth),
        1 => (-30 * DAY..=HOUR).prop_map(Phone::NearTruth),
    ];
    prop_oneof![
        2 => prop_oneof![0i64..=120, 0..=HOUR, 0..=2 * DAY].prop_map(Step::Advance),
        5 => (proptest::option::weighted(0.9, signed_offset()), phone)
            .prop_map(|(signed, phone)| Step::Unlock { signed, phone }),
        1 => signed_offset().prop_map(Step::Bundle),
    ]
}

/// How far behind true time the lock's clock may read: the tolerance plus 200 ppm of the
/// hardware time since the mark was set; nothing without trusted time.
fn allowance(state: &LockState, clock: i64, tolerance: u32) -> i64 {
    match state.clock.high_water {
        None => 0,
        Some(h) => i64::from(tolerance) + (clock - h.clock).max(0) * MAX_DRIFT_PPM / 1_000_000,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn no_step_sequence_turns_the_clock_back_or_grants_out_of_schedule(
        ahead in prop_oneof![Just(0i64), 0i64..=120, 0..=HOUR],
        // (how far the hardware clock reads ahead of true time)
        start_in_day in 0i64..DAY,
        steps in proptest::collection::vec(step(), 1..=24),
    ) {
        let config = pool_lock();
        let tolerance = config.clock_tolerance;
        let mut state = LockState::default();
        let mut truth = START + start_in_day;
        let mut iteration = 0;
        for (i, step) in steps.iter().enumerate() {
            let clock = truth + ahead;
            match step {
                Step::Advance(s) => truth += s,
                Step::Unlock { signed, phone } => {
                    let t = match phone {
                        Phone::NearLock(d) => state.now(clock) + d,
                        Phone::NearTruth(d) => truth + d,
                    };
                    let signed = signed.map(|s| {
                        SignedTime { time: truth + s, lock_id: None, epoch: None }.sign(&issuer())
                    });
                    let mut phone = prepare(t, signed);
                    let mut session = LockSession::new();
                    let mut reply = None;
                    for c in phone.request_fragments(247) {
                        reply = session.on_fragment(&config, &mut state, &c, clock, &mut OsRng);
                    }
                    let reply = reply.unwrap();
                    let mut outcome = None;
                    for c in reply.message.fragments(247) {
                        outcome = phone.on_fragment(&c).unwrap();
                    }
                    let outcome = outcome.unwrap();
                    if outcome.result == UnlockResult::Granted {
                        let at = outcome.lock_time;
                        prop_assert!(pool_open(at), "step {}: granted at {} (closed)", i, at);
                        prop_assert!(
                            at >= truth - allowance(&state, clock, tolerance),
                            "step {}: granted {} s behind true time", i, truth - at
                        );
                    }
                }
                Step::Bundle(s) => {
                    iteration += 1;
                    let bundle = SyncBundle {
                        issued_at: truth + s,
                        ..full_bundle(0, iteration)
                    };
                    let bytes = bundle
                        .seal_and_sign(&issuer(), config.key.public(), &mut OsRng)
                        .unwrap();
                    let opened = open_bundle(&bytes, &config).unwrap();
                    state.apply_bundle(&config, &opened, clock).unwrap();
                }
            }
            let clock = truth + ahead;
            let now = state.now(clock);
            if let Some(floor) = state.clock.floor(clock, tolerance) {
                prop_assert!(now >= floor, "step {}: {} s below the floor", i, floor - now);
            }
            prop_assert!(
                now >= truth - allowance(&state, clock, tolerance),
                "step {}: {} s behind true time (allowance {})",
                i, truth - now, allowance(&state, clock, tolerance)
            );
        }
    }
}
