//! The demo is the project's first command: it must run to success, every time.

mod common;

use common::*;

#[test]
fn the_demo_runs_to_success() {
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let ran = run(door(dir.path()).arg("demo"));
    assert_eq!(
        ran.code,
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        ran.stdout,
        ran.stderr
    );
    let out = &ran.stdout;
    for expected in [
        "224 doors (200 apartments, 20 amenities), 8 keys, 5 people",
        "23 doors, sorted by name, no key name anywhere",
        "granted by the lock at 10:00:00",
        "Out of Schedule, opens Wed 09:00: answered by the phone",
        "(0 connections)",
        "Lobby keypad code ",
        "the server made 2 guest keys, one per door",
        "the Lobby opens for the guest",
        "SessionExpired",
        "hands the lock the newest bundle",
        "is refused by the Lobby's lock: Revoked",
        "lock-signed records of the Lobby",
        "the Lobby's lock-signed health came home with Bob's audit upload",
        "Lobby        battery 99 %, door-lock ",
        "All 17 steps behaved as expected",
    ] {
        assert!(out.contains(expected), "no {expected:?} in\n{out}");
    }
    assert_eq!(
        out.lines()
            .filter(|l| l.trim_start().starts_with('✓'))
            .count(),
        17
    );
    assert!(
        !out.contains('\x1b'),
        "no colour when stdout is not a terminal"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "the demo took {:?}",
        started.elapsed()
    );
}
