//! Load on door-server over loopback: many residents refreshing, fetching Door Sync data and
//! uploading lock-signed audit records at once for a bounded time (see support/load.rs for the
//! shape). Prints requests, errors and latency per endpoint, and checks that every audit
//! record the locks signed is stored exactly once; exits non-zero otherwise. Then, on a fresh
//! server, `GET /v1/me` during a flood of full bundles and sign-in attempts (support/flood.rs).
//!
//! cargo bench -p door-server --bench load
//! LOAD_SECONDS, LOAD_CONCURRENCY, LOAD_RESIDENTS, LOAD_LOCKS, LOAD_SERVER_THREADS and
//! LOAD_CLIENT_THREADS override the defaults below; FLOOD_SECONDS, FLOOD_BUNDLE_CLIENTS and
//! FLOOD_SIGN_IN_CLIENTS those of the flood. A count of 0 seconds skips that part.

#[path = "support/flood.rs"]
mod flood;
#[path = "support/load.rs"]
mod load;

use std::time::Duration;

fn env_or(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a count")),
        Err(_) => default,
    }
}

fn main() {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let config = load::Config {
        residents: env_or("LOAD_RESIDENTS", 200),
        locks: env_or("LOAD_LOCKS", 20),
        concurrency: env_or("LOAD_CONCURRENCY", 64),
        duration: Duration::from_secs(env_or("LOAD_SECONDS", 20) as u64),
        server_threads: env_or("LOAD_SERVER_THREADS", cores),
        client_threads: env_or("LOAD_CLIENT_THREADS", cores),
    };
    if !config.duration.is_zero() {
        let report = load::run(&config);
        print!("{report}");
        let problems = report.problems();
        if !problems.is_empty() {
            eprintln!("FAILED: {}", problems.join("; "));
            std::process::exit(1);
        }
    }
    let flood = flood::Config {
        bundle_clients: env_or("FLOOD_BUNDLE_CLIENTS", 16),
        sign_in_clients: env_or("FLOOD_SIGN_IN_CLIENTS", 4),
        residents: 20,
        locks: 6,
        duration: Duration::from_secs(env_or("FLOOD_SECONDS", 10) as u64),
        server_threads: config.server_threads,
        client_threads: config.client_threads,
    };
    if !flood.duration.is_zero() {
        print!("{}", flood::run(&flood));
    }
}
