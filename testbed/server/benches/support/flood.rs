//! An ordinary request during a flood of expensive ones: `bundle_clients` tasks fetch full Door
//! Sync bundles (`since=0`: each is built, sealed and signed afresh) and `sign_in_clients` tasks
//! try wrong passwords (an Argon2 verification each), closed loop, while one phone asks
//! `GET /v1/me` every few milliseconds. What that phone waits is what the flood costs everyone
//! else. The sign-in budgets are raised so the flood reaches Argon2 instead of being refused
//! with 429; a 429 would still be counted.

use std::fmt;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::{Client, StatusCode};

use crate::load::{self, ms, percentile, Phone};
use door_server::limits::{Per, Rate};

/// The prober's pause between two requests: it stands for a person using the app, not a load.
const PROBE_PAUSE: Duration = Duration::from_millis(5);

#[derive(Debug, Clone)]
pub struct Config {
    pub bundle_clients: usize,
    pub sign_in_clients: usize,
    pub residents: usize,
    pub locks: usize,
    pub duration: Duration,
    pub server_threads: usize,
    pub client_threads: usize,
}

pub struct Report {
    pub config: Config,
    /// `GET /v1/me`, sorted.
    pub me: Vec<Duration>,
    pub me_errors: u64,
    pub bundles: u64,
    pub sign_ins: u64,
    pub throttled: u64,
    /// Flood answers other than 200 (bundles), 401 (wrong passwords) or 429.
    pub unexpected: u64,
}

fn options() -> door_server::Options {
    let mut options = load::options();
    options.limits.sign_in.account = Rate::new(1_000_000, Per::Second);
    options
}

pub fn run(config: &Config) -> Report {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server_rt = load::runtime(config.server_threads, "server");
    let handle = server_rt
        .block_on(door_server::start_with(
            "127.0.0.1:0".parse().expect("an address"),
            Some(&dir.path().join("flood.sqlite")),
            load::ADMIN,
            door_server::system_clock(),
            options(),
        ))
        .expect("the server starts");
    let client_rt = load::runtime(config.client_threads, "client");
    let report = client_rt.block_on(flood(handle.url(), config));
    drop(client_rt);
    server_rt.block_on(handle.stop());
    report
}

async fn flood(base: String, config: &Config) -> Report {
    let site = load::seed(
        &base,
        &load::Config {
            residents: config.residents,
            locks: config.locks,
            concurrency: 1,
            duration: config.duration,
            server_threads: config.server_threads,
            client_threads: config.client_threads,
        },
    )
    .await;
    let lock_ids: Vec<String> = site.locks.iter().map(|l| l.lock_id.clone()).collect();
    let mut phones = site.phones.into_iter();
    let prober = phones.next().expect("a resident");
    let phones: Vec<Phone> = phones.collect();
    let deadline = Instant::now() + config.duration;
    let mut flooders = tokio::task::JoinSet::new();
    for n in 0..config.bundle_clients {
        let phone = &phones[n % phones.len()];
        let (token, base) = (phone.token.clone(), base.clone());
        let urls: Vec<String> = phone
            .doors
            .iter()
            .map(|&d| format!("{base}/v1/locks/{}/bundle?since=0", lock_ids[d]))
            .collect();
        flooders.spawn(async move {
            let http = load::client();
            let mut tally = Tally::default();
            for turn in 0.. {
                if Instant::now() >= deadline {
                    break;
                }
                let url = &urls[turn % urls.len()];
                let status = send(http.get(url).bearer_auth(&token)).await;
                tally.count(status, StatusCode::OK);
                tally.bundles += 1;
            }
            tally
        });
    }
    for n in 0..config.sign_in_clients {
        let (base, residents) = (base.clone(), config.residents);
        flooders.spawn(async move {
            let http = load::client();
            let mut rng = StdRng::seed_from_u64(n as u64);
            let mut tally = Tally::default();
            while Instant::now() < deadline {
                let body = serde_json::json!({
                    "email": format!("resident{}@load.example", rng.gen_range(0..residents)),
                    "password": "not the password",
                });
                let req = http.post(format!("{base}/v1/auth/login")).json(&body);
                tally.count(send(req).await, StatusCode::UNAUTHORIZED);
                tally.sign_ins += 1;
            }
            tally
        });
    }
    let (me, me_errors) = probe(&base, &prober, deadline).await;
    let mut tally = Tally::default();
    while let Some(t) = flooders.join_next().await {
        let t = t.expect("a flood task");
        tally.bundles += t.bundles;
        tally.sign_ins += t.sign_ins;
        tally.throttled += t.throttled;
        tally.unexpected += t.unexpected;
    }
    Report {
        config: config.clone(),
        me,
        me_errors,
        bundles: tally.bundles,
        sign_ins: tally.sign_ins,
        throttled: tally.throttled,
        unexpected: tally.unexpected,
    }
}

async fn probe(base: &str, phone: &Phone, deadline: Instant) -> (Vec<Duration>, u64) {
    let http: Client = load::client();
    let url = format!("{base}/v1/me");
    let (mut latencies, mut errors) = (Vec::new(), 0);
    while Instant::now() < deadline {
        let started = Instant::now();
        let status = send(http.get(&url).bearer_auth(&phone.token)).await;
        latencies.push(started.elapsed());
        if status != Some(StatusCode::OK) {
            errors += 1;
        }
        tokio::time::sleep(PROBE_PAUSE).await;
    }
    latencies.sort_unstable();
    (latencies, errors)
}

/// The answer's status once its body has arrived; `None` for a transport failure.
async fn send(req: reqwest::RequestBuilder) -> Option<StatusCode> {
    let resp = req.send().await.ok()?;
    let status = resp.status();
    resp.bytes().await.ok()?;
    Some(status)
}

#[derive(Default)]
struct Tally {
    bundles: u64,
    sign_ins: u64,
    throttled: u64,
    unexpected: u64,
}

impl Tally {
    fn count(&mut self, status: Option<StatusCode>, expected: StatusCode) {
        match status {
            Some(s) if s == expected => {}
            Some(StatusCode::TOO_MANY_REQUESTS) => self.throttled += 1,
            _ => self.unexpected += 1,
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        let secs = c.duration.as_secs_f64();
        writeln!(
            f,
            "flood for {secs:.0} s: {} clients fetching full bundles ({:.0}/s), {} trying wrong \
             passwords ({:.0}/s); {} throttled, {} unexpected answers; runtime threads: server \
             {}, client {}",
            c.bundle_clients,
            self.bundles as f64 / secs,
            c.sign_in_clients,
            self.sign_ins as f64 / secs,
            self.throttled,
            self.unexpected,
            c.server_threads,
            c.client_threads,
        )?;
        let [p50, p90, p99] = [50, 90, 99].map(|p| ms(percentile(&self.me, p)));
        let max = ms(self.me.last().copied().unwrap_or_default());
        writeln!(
            f,
            "GET /v1/me meanwhile: {} requests, {} errors; p50 {p50} ms, p90 {p90} ms, \
             p99 {p99} ms, max {max} ms",
            self.me.len(),
            self.me_errors
        )
    }
}
