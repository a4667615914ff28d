//! Schedule evaluation cost: the check every unlock makes, on the phone and on the lock.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use door_protocol::civil::{days_from_civil, SECONDS_PER_DAY};
use door_protocol::{evaluate, Schedule, Weekdays, Window, ZoneRules};

fn utc(y: i32, mo: u8, d: u8, h: i64) -> i64 {
    days_from_civil(y, mo, d) * SECONDS_PER_DAY + h * 3600
}

fn bench_evaluate(c: &mut Criterion) {
    // A decade of New York rules: 20 transitions, as a lock would hold them.
    let zone = ZoneRules::from_iana("America/New_York", utc(2020, 1, 1, 0), utc(2030, 1, 1, 0))
        .expect("New York rules");
    // A gym: weekdays 06:00-22:00, weekends 08:00-12:00 and 14:00-20:00.
    let schedule = Schedule {
        windows: vec![
            Window {
                days: Weekdays::MON_FRI,
                start_minute: 360,
                end_minute: 1320,
            },
            Window {
                days: Weekdays::SAT_SUN,
                start_minute: 480,
                end_minute: 720,
            },
            Window {
                days: Weekdays::SAT_SUN,
                start_minute: 840,
                end_minute: 1200,
            },
        ],
        not_before: None,
        not_after: None,
    };
    // Wednesday 2025-06-11 12:00 EDT, open until 22:00.
    let open = utc(2025, 6, 11, 16);
    // Friday 2025-06-13 23:00 EDT, closed until Saturday 08:00.
    let closed = utc(2025, 6, 14, 3);
    assert!(evaluate(&schedule, &zone, open).is_allowed());
    assert!(!evaluate(&schedule, &zone, closed).is_allowed());

    let mut group = c.benchmark_group("evaluate");
    group.bench_function("allowed", |b| {
        b.iter(|| evaluate(black_box(&schedule), black_box(&zone), black_box(open)))
    });
    group.bench_function("out_of_schedule", |b| {
        b.iter(|| evaluate(black_box(&schedule), black_box(&zone), black_box(closed)))
    });
    // The slow path: a single weekly window, asked about just after it closed, scans a week.
    let weekly = Schedule {
        windows: vec![Window {
            days: Weekdays(Weekdays::MONDAY),
            start_minute: 1320,
            end_minute: 120,
        }],
        not_before: None,
        not_after: None,
    };
    // Tuesday 2025-06-10 03:00 EDT, closed until Monday 22:00.
    let week_ahead = utc(2025, 6, 10, 7);
    assert!(!evaluate(&weekly, &zone, week_ahead).is_allowed());
    group.bench_function("out_of_schedule_week_ahead", |b| {
        b.iter(|| evaluate(black_box(&weekly), black_box(&zone), black_box(week_ahead)))
    });
    group.finish();
}

criterion_group!(benches, bench_evaluate);
criterion_main!(benches);
