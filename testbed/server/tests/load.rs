//! A short run of the load bench (benches/load.rs) in the test suite: a few seconds of
//! concurrent residents, no request may fail and every audit record is stored exactly once.

#[path = "../benches/support/load.rs"]
mod load;

use std::time::Duration;

#[test]
fn concurrent_residents_get_answers_and_audit_records_are_stored_exactly_once() {
    let report = load::run(&load::Config {
        residents: 24,
        locks: 6,
        concurrency: 12,
        duration: Duration::from_secs(3),
        server_threads: 2,
        client_threads: 2,
    });
    print!("{report}");
    let problems = report.problems();
    assert!(problems.is_empty(), "{}", problems.join("; "));
}
