//! Load on door-server over loopback, shared by `benches/load.rs` (the full run) and
//! `tests/load.rs` (a short one in the test suite). Benches and tests are separate crates, so
//! both include this file with `#[path]`: the server library and its binary carry no load code.
//!
//! One property seeded through the manager API: offline locks whose keys the run holds, one
//! key per lock covering it and the next two locks (doorcodes on), residents each holding one
//! such key with a registered device. Then, for a bounded time, `concurrency` tasks each play
//! a share of the residents in turn, closed loop (no think time), the way the app does:
//! refresh (`GET /v1/me/doors`); every other round a Door Sync bundle for one door (a delta from
//! the iteration the phone last fetched) and signed time; then a visit to one of its locks,
//! which signs new audit records and hands over everything the server has not acknowledged,
//! uploaded as `POST /v1/locks/{id}/audit`. Phones visiting one lock close together carry the
//! same records, and one upload in eight is sent twice (a retry after a lost answer), so the
//! server sees duplicates, some of them concurrent.
//!
//! The server runs on its own runtime so client tasks never sit in its run queue; on a small
//! machine both still share the cores, and the client's work (signing records, JSON) is part of
//! what the numbers measure.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use door_protocol::{AuditEpoch, AuditEvent, AuditRecord, Id, LockKey};
use door_server::audit::{AuditReceipt, AuditUpload};
use door_server::limits::{Per, Rate};
use door_server::model::*;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use rand::rngs::{OsRng, StdRng};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use reqwest::{Client, Method};
use serde::de::DeserializeOwned;
use serde::Serialize;

pub(crate) const ADMIN: &str = "load-admin-token";
pub(crate) const PASSWORD: &str = "correct horse battery";
/// Each key covers its lock and the next ones, so every lock is shared by several residents.
const DOORS_PER_KEY: usize = 3;
/// Sign-ins hash passwords (Argon2): a few at a time keeps seeding quick without thrashing.
const SEED_WORKERS: usize = 4;
/// Unlocks per lock visit, drawn uniformly from 1 to this.
const MAX_UNLOCKS: usize = 8;
const ERROR_SAMPLES: usize = 3;
const ENDPOINTS: [&str; 4] = [
    "GET /v1/me/doors",
    "GET /v1/locks/{id}/bundle",
    "GET /v1/time",
    "POST /v1/locks/{id}/audit",
];
const DOORS: usize = 0;
const BUNDLE: usize = 1;
const TIME: usize = 2;
const AUDIT: usize = 3;

#[derive(Debug, Clone)]
pub struct Config {
    pub residents: usize,
    pub locks: usize,
    pub concurrency: usize,
    pub duration: Duration,
    pub server_threads: usize,
    pub client_threads: usize,
}

/// Seeds a server on 127.0.0.1:0 over a fresh SQLite file, loads it, and checks the audit trail.
pub fn run(config: &Config) -> Report {
    assert!(
        config.residents > 0 && config.locks > 0,
        "the load needs residents and locks"
    );
    // A task plays its own residents, so more tasks than residents cannot run.
    let config = &Config {
        concurrency: config.concurrency.clamp(1, config.residents),
        ..config.clone()
    };
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server_rt = runtime(config.server_threads, "server");
    let handle = server_rt
        .block_on(door_server::start_with(
            "127.0.0.1:0".parse().expect("an address"),
            Some(&dir.path().join("load.sqlite")),
            ADMIN,
            door_server::system_clock(),
            options(),
        ))
        .expect("the server starts");
    let client_rt = runtime(config.client_threads, "client");
    let (setup, load) = client_rt.block_on(async {
        let started = Instant::now();
        let site = seed(&handle.url(), config).await;
        let setup = started.elapsed();
        (setup, drive(site, config).await)
    });
    // Dropping the client runtime closes its connections, which graceful shutdown waits for.
    drop(client_rt);
    let audit = check_audit(&handle.state.db, &load);
    server_rt.block_on(handle.stop());
    Report::new(config.clone(), setup, load, audit)
}

/// The deployed options, except that every simulated phone comes from 127.0.0.1: budgets per
/// client address, meant for one client, would count them all as one. The budgets per
/// account stay as deployed, and no well-behaved phone reaches them.
pub(crate) fn options() -> door_server::Options {
    let mut options = door_server::Options::default();
    let one_address_for_all = Rate::new(1_000_000, Per::Second);
    let limits = &mut options.limits;
    for budget in [
        &mut limits.sign_in,
        &mut limits.refresh,
        &mut limits.invite,
        &mut limits.device,
        &mut limits.challenge,
    ] {
        budget.address = one_address_for_all;
    }
    options
}

pub(crate) fn runtime(threads: usize, name: &str) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .thread_name(format!("load-{name}"))
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

pub(crate) fn client() -> Client {
    // reqwest's TLS wants a process-wide crypto provider even for plain HTTP; a second
    // install is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("an HTTP client")
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// One request; any transport failure, non-2xx answer or undecodable body is an error.
async fn call<T: DeserializeOwned>(
    http: &Client,
    method: Method,
    url: &str,
    token: &str,
    body: Option<&impl Serialize>,
) -> Result<T, String> {
    let mut req = http.request(method, url).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(b);
    }
    let resp = req.send().await.map_err(|e| format!("transport: {e}"))?;
    let status = resp.status();
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| format!("{status}, body: {e}"))?;
    if !status.is_success() {
        let text: String = String::from_utf8_lossy(&bytes).chars().take(160).collect();
        return Err(format!("{status}: {text}"));
    }
    serde_json::from_slice(&bytes).map_err(|e| format!("{status}, undecodable: {e}"))
}

/// A seeding step must work: the load is meaningless without its site.
async fn must<T: DeserializeOwned>(
    http: &Client,
    method: Method,
    url: String,
    token: &str,
    body: Option<&impl Serialize>,
) -> T {
    call(http, method.clone(), &url, token, body)
        .await
        .unwrap_or_else(|e| panic!("seeding, {method} {url}: {e}"))
}

/// An offline lock as the phones meet it: it signs a record per unlock and hands every record
/// the server has not acknowledged to each phone that connects.
pub(crate) struct SimLock {
    pub(crate) lock_id: String,
    door_id: Id,
    key: LockKey,
    log: Mutex<LockLog>,
}

#[derive(Default)]
struct LockLog {
    /// Every record the lock signed, by sequence number.
    signed: Vec<Vec<u8>>,
    acknowledged: usize,
}

impl SimLock {
    fn visit(&self, credential: Id, unlocks: usize) -> Vec<String> {
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        for _ in 0..unlocks {
            let record = AuditRecord {
                // One epoch per lock: no lock of the load is wiped.
                epoch: AuditEpoch::default(),
                seq: log.signed.len() as u64,
                at: unix_now(),
                event: AuditEvent::UnlockGranted {
                    credential_id: credential,
                    door_id: self.door_id,
                },
            };
            log.signed.push(record.sign(&self.key));
        }
        log.signed[log.acknowledged..]
            .iter()
            .map(|r| b64(r))
            .collect()
    }

    /// A real lock learns the acknowledgement from its next bundle; learning it at once only
    /// keeps what phones carry smaller.
    fn acknowledge(&self, below: u64) {
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        let below = usize::try_from(below).unwrap_or(usize::MAX);
        log.acknowledged = log.acknowledged.max(below.min(log.signed.len()));
    }
}

/// A signed-in resident with a registered device, as the app holds them.
pub(crate) struct Phone {
    pub(crate) token: String,
    device_id: String,
    /// Indices into the site's locks.
    pub(crate) doors: Vec<usize>,
    credential: Id,
    /// The bundle iteration last fetched, per entry of `doors`.
    since: Vec<u64>,
}

pub(crate) struct Site {
    base: String,
    pub(crate) locks: Arc<Vec<SimLock>>,
    pub(crate) phones: Vec<Phone>,
}

pub(crate) async fn seed(base: &str, config: &Config) -> Site {
    let http = client();
    let created: CreatedProperty = must(
        &http,
        Method::POST,
        format!("{base}/v1/properties"),
        ADMIN,
        Some(&NewProperty {
            name: "Load Test Towers".into(),
            time_zone: "America/New_York".into(),
        }),
    )
    .await;
    let manager = Arc::new((
        format!("{base}/v1/properties/{}", created.property.id),
        created.manager_key,
    ));
    let mut locks = Vec::new();
    for n in 0..config.locks {
        locks.push(add_lock(&http, &manager, n).await);
    }
    let mut keys = Vec::new();
    for n in 0..locks.len() {
        keys.push(add_key(&http, &manager, &locks, n).await);
    }
    let keys = Arc::new(keys);
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..SEED_WORKERS {
        let (base, manager, keys) = (base.to_owned(), manager.clone(), keys.clone());
        let residents = (w..config.residents).step_by(SEED_WORKERS);
        workers.spawn(async move {
            let http = client();
            let mut phones = Vec::new();
            for n in residents {
                phones.push(add_resident(&http, &base, &manager, &keys, n).await);
            }
            phones
        });
    }
    let mut phones = Vec::new();
    while let Some(batch) = workers.join_next().await {
        phones.extend(batch.expect("a seeding worker"));
    }
    Site {
        base: base.to_owned(),
        locks: Arc::new(locks),
        phones,
    }
}

async fn add_lock(http: &Client, manager: &(String, String), n: usize) -> SimLock {
    let key = LockKey::generate(&mut OsRng);
    let door: DoorJson = must(
        http,
        Method::POST,
        format!("{}/doors", manager.0),
        &manager.1,
        Some(&NewDoor {
            name: format!("Door {n:03}"),
            online: false,
            lock_id: None,
            lock_public_key: b64(&key.public().to_sec1_compressed()),
            keypad: true,
        }),
    )
    .await;
    SimLock {
        lock_id: door.lock_id,
        door_id: Id::from_hex(&door.id).expect("a door id"),
        key,
        log: Mutex::default(),
    }
}

/// The locks key `n` opens.
fn key_doors(n: usize, locks: usize) -> Vec<usize> {
    (0..DOORS_PER_KEY.min(locks))
        .map(|j| (n + j) % locks)
        .collect()
}

async fn add_key(
    http: &Client,
    manager: &(String, String),
    locks: &[SimLock],
    n: usize,
) -> KeyJson {
    let doors = key_doors(n, locks.len())
        .into_iter()
        .map(|l| KeyDoorJson {
            door_id: locks[l].door_id.to_string(),
            doorcodes: true,
            schedule: None,
        })
        .collect();
    must(
        http,
        Method::POST,
        format!("{}/keys", manager.0),
        &manager.1,
        Some(&NewKey {
            name: format!("Key {n:03}"),
            doors,
        }),
    )
    .await
}

/// Created by the manager, then signed in with a registered device and a first refresh, as
/// the app's sign-in does.
async fn add_resident(
    http: &Client,
    base: &str,
    manager: &(String, String),
    keys: &[KeyJson],
    n: usize,
) -> Phone {
    let email = format!("resident{n}@load.example");
    let person: PersonJson = must(
        http,
        Method::POST,
        format!("{}/people", manager.0),
        &manager.1,
        Some(&NewPerson {
            name: format!("Resident {n}"),
            email: Some(email.clone()),
            role: "resident".into(),
            password: Some(PASSWORD.into()),
        }),
    )
    .await;
    let key = n % keys.len();
    let _: AssignmentJson = must(
        http,
        Method::POST,
        format!("{}/people/{}/keys", manager.0, person.id),
        &manager.1,
        Some(&NewAssignment {
            key_id: keys[key].id.clone(),
            may_share: false,
        }),
    )
    .await;
    let login = Login {
        email,
        password: PASSWORD.into(),
    };
    let tokens: Tokens = must(
        http,
        Method::POST,
        format!("{base}/v1/auth/login"),
        "",
        Some(&login),
    )
    .await;
    let device_id = register_device(http, base, &tokens.access_token).await;
    let doors = key_doors(key, keys.len());
    let mut phone = Phone {
        token: tokens.access_token,
        device_id,
        since: vec![0; doors.len()],
        doors,
        credential: Id([0; 16]),
    };
    let url = format!("{base}/v1/me/doors?device_id={}", phone.device_id);
    let mine: MyDoors = must(http, Method::GET, url, &phone.token, None::<&()>).await;
    phone.credential = credential(&mine, phone.doors.len()).expect("a first refresh");
    phone
}

/// Proof of possession: the device signs the server's challenge.
async fn register_device(http: &Client, base: &str, token: &str) -> String {
    let url = format!("{base}/v1/me/devices/challenge");
    let challenge: Challenge = must(http, Method::POST, url, token, None::<&()>).await;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(&challenge.challenge)
        .expect("a base64 challenge");
    let key = SigningKey::random(&mut OsRng);
    let signature: Signature = key.sign(&door_protocol::device::possession_message(&raw));
    let req = NewDevice {
        public_key: b64(key.verifying_key().to_encoded_point(true).as_bytes()),
        challenge: challenge.challenge,
        signature: b64(signature.to_der().as_bytes()),
    };
    let url = format!("{base}/v1/me/devices");
    let device: DeviceJson = must(http, Method::POST, url, token, Some(&req)).await;
    device.device_id
}

/// The credential of a refresh that lists every door the phone's key opens.
fn credential(mine: &MyDoors, doors: usize) -> Result<Id, String> {
    if mine.doors.len() != doors {
        return Err(format!("{} doors, expected {doors}", mine.doors.len()));
    }
    mine.credential_id
        .as_deref()
        .and_then(Id::from_hex)
        .ok_or_else(|| "no credential".to_owned())
}

/// What one task saw; merged at the end so the hot path shares nothing.
#[derive(Default)]
struct Tally {
    latencies: [Vec<Duration>; 4],
    errors: [u64; 4],
    messages: [Vec<String>; 4],
    /// Records in uploads the server answered.
    sent: u64,
    stored: u64,
    duplicates: u64,
}

impl Tally {
    fn record<T>(&mut self, endpoint: usize, started: Instant, outcome: &Result<T, String>) {
        self.latencies[endpoint].push(started.elapsed());
        if let Err(e) = outcome {
            self.errors[endpoint] += 1;
            if self.messages[endpoint].len() < ERROR_SAMPLES {
                self.messages[endpoint].push(e.clone());
            }
        }
    }

    fn merge(&mut self, other: Tally) {
        for e in 0..ENDPOINTS.len() {
            self.latencies[e].extend_from_slice(&other.latencies[e]);
            self.errors[e] += other.errors[e];
            let room = ERROR_SAMPLES.saturating_sub(self.messages[e].len());
            self.messages[e].extend(other.messages[e].iter().take(room).cloned());
        }
        self.sent += other.sent;
        self.stored += other.stored;
        self.duplicates += other.duplicates;
    }
}

/// The load phase's outcome, with the locks to check the server's trail against.
struct Load {
    elapsed: Duration,
    tally: Tally,
    locks: Arc<Vec<SimLock>>,
}

async fn drive(site: Site, config: &Config) -> Load {
    let tasks = config.concurrency;
    let mut shares: Vec<Vec<Phone>> = (0..tasks).map(|_| Vec::new()).collect();
    for (n, phone) in site.phones.into_iter().enumerate() {
        shares[n % tasks].push(phone);
    }
    let started = Instant::now();
    let deadline = started + config.duration;
    let mut running = tokio::task::JoinSet::new();
    for (n, mut phones) in shares.into_iter().enumerate() {
        let mut resident = Resident {
            http: client(),
            base: site.base.clone(),
            locks: site.locks.clone(),
            rng: StdRng::seed_from_u64(n as u64),
            tally: Tally::default(),
        };
        running.spawn(async move {
            for turn in 0.. {
                if Instant::now() >= deadline {
                    break;
                }
                let n = turn % phones.len();
                resident.round(&mut phones[n]).await;
            }
            resident.tally
        });
    }
    let mut tally = Tally::default();
    while let Some(t) = running.join_next().await {
        tally.merge(t.expect("a load task"));
    }
    Load {
        elapsed: started.elapsed(),
        tally,
        locks: site.locks,
    }
}

/// One load task: plays its phones in turn.
struct Resident {
    http: Client,
    base: String,
    locks: Arc<Vec<SimLock>>,
    rng: StdRng,
    tally: Tally,
}

impl Resident {
    async fn round(&mut self, phone: &mut Phone) {
        self.refresh(phone).await;
        if self.rng.gen_bool(0.5) {
            let door = self.rng.gen_range(0..phone.doors.len());
            self.bundle(phone, door).await;
            self.signed_time(phone).await;
        }
        let &lock = phone.doors.choose(&mut self.rng).expect("a door");
        self.upload(phone, lock).await;
    }

    async fn refresh(&mut self, phone: &mut Phone) {
        let url = format!("{}/v1/me/doors?device_id={}", self.base, phone.device_id);
        let started = Instant::now();
        let outcome = call::<MyDoors>(&self.http, Method::GET, &url, &phone.token, None::<&()>)
            .await
            .and_then(|mine| credential(&mine, phone.doors.len()));
        self.tally.record(DOORS, started, &outcome);
        if let Ok(c) = outcome {
            phone.credential = c;
        }
    }

    async fn bundle(&mut self, phone: &mut Phone, door: usize) {
        let lock = &self.locks[phone.doors[door]].lock_id;
        let url = format!(
            "{}/v1/locks/{lock}/bundle?since={}",
            self.base, phone.since[door]
        );
        let started = Instant::now();
        let outcome: Result<SyncBundleJson, _> =
            call(&self.http, Method::GET, &url, &phone.token, None::<&()>).await;
        self.tally.record(BUNDLE, started, &outcome);
        if let Ok(b) = outcome {
            phone.since[door] = b.iteration;
        }
    }

    async fn signed_time(&mut self, phone: &Phone) {
        let url = format!("{}/v1/time", self.base);
        let started = Instant::now();
        let outcome: Result<SignedTimeJson, _> =
            call(&self.http, Method::GET, &url, &phone.token, None::<&()>).await;
        self.tally.record(TIME, started, &outcome);
    }

    async fn upload(&mut self, phone: &Phone, lock: usize) {
        let lock = &self.locks[lock];
        let unlocks = self.rng.gen_range(1..=MAX_UNLOCKS);
        let body = AuditUpload {
            records: lock.visit(phone.credential, unlocks),
        };
        let url = format!("{}/v1/locks/{}/audit", self.base, lock.lock_id);
        let sends = if self.rng.gen_ratio(1, 8) { 2 } else { 1 };
        for _ in 0..sends {
            let started = Instant::now();
            let outcome: Result<AuditReceipt, _> =
                call(&self.http, Method::POST, &url, &phone.token, Some(&body)).await;
            self.tally.record(AUDIT, started, &outcome);
            if let Ok(receipt) = outcome {
                self.tally.sent += body.records.len() as u64;
                self.tally.stored += u64::from(receipt.stored);
                self.tally.duplicates += u64::from(receipt.duplicates);
                lock.acknowledge(receipt.acknowledged.map_or(0, |a| a.below));
            }
        }
    }
}

/// The server's audit trail against what the locks signed.
#[derive(Debug, Default)]
pub struct AuditCheck {
    /// Distinct records the locks signed (and phones carried).
    pub signed: u64,
    /// Records in answered uploads, re-sends included.
    pub sent: u64,
    /// What the receipts said.
    pub stored: u64,
    pub duplicates: u64,
    /// Rows in the database.
    pub rows: u64,
    pub missing: u64,
    pub altered: u64,
    /// Rows no lock signed.
    pub unknown: u64,
}

fn check_audit(db: &door_server::Db, load: &Load) -> AuditCheck {
    let rows: Vec<(Vec<u8>, i64, Vec<u8>)> = db
        .read(|tx| {
            let mut stmt = tx.prepare("SELECT lock_id, seq, record FROM audit_records")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .expect("the audit trail");
    let mut check = AuditCheck {
        sent: load.tally.sent,
        stored: load.tally.stored,
        duplicates: load.tally.duplicates,
        rows: rows.len() as u64,
        ..AuditCheck::default()
    };
    let mut held: HashMap<(String, i64), Vec<u8>> = rows
        .into_iter()
        .map(|(lock, seq, record)| ((hex::encode(lock), seq), record))
        .collect();
    for lock in load.locks.iter() {
        let log = lock.log.lock().unwrap_or_else(|p| p.into_inner());
        for (seq, record) in log.signed.iter().enumerate() {
            check.signed += 1;
            match held.remove(&(lock.lock_id.clone(), seq as i64)) {
                Some(r) if r == *record => {}
                Some(_) => check.altered += 1,
                None => check.missing += 1,
            }
        }
    }
    check.unknown = held.len() as u64;
    check
}

impl AuditCheck {
    fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.missing + self.altered + self.unknown > 0 || self.rows != self.signed {
            out.push(format!(
                "audit trail: {} rows for {} signed records ({} missing, {} altered, {} unknown)",
                self.rows, self.signed, self.missing, self.altered, self.unknown
            ));
        }
        if self.stored != self.signed {
            out.push(format!(
                "receipts counted {} stored for {} distinct records",
                self.stored, self.signed
            ));
        }
        if self.stored + self.duplicates != self.sent {
            out.push(format!(
                "receipts counted {} stored + {} duplicates for {} records sent",
                self.stored, self.duplicates, self.sent
            ));
        }
        out
    }
}

pub struct EndpointStats {
    pub name: &'static str,
    pub requests: usize,
    pub errors: u64,
    pub messages: Vec<String>,
    /// p50, p90, p99, max.
    pub latency: [Duration; 4],
}

/// Nearest rank: the smallest sample with at least `pct` percent of them at or below it.
pub(crate) fn percentile(sorted: &[Duration], pct: usize) -> Duration {
    let rank = (sorted.len() * pct).div_ceil(100).max(1);
    sorted.get(rank - 1).copied().unwrap_or_default()
}

fn stats(
    name: &'static str,
    mut samples: Vec<Duration>,
    errors: u64,
    messages: Vec<String>,
) -> EndpointStats {
    samples.sort_unstable();
    EndpointStats {
        name,
        requests: samples.len(),
        errors,
        messages,
        latency: [
            percentile(&samples, 50),
            percentile(&samples, 90),
            percentile(&samples, 99),
            samples.last().copied().unwrap_or_default(),
        ],
    }
}

pub struct Report {
    pub config: Config,
    pub setup: Duration,
    pub elapsed: Duration,
    pub endpoints: Vec<EndpointStats>,
    pub audit: AuditCheck,
}

impl Report {
    fn new(config: Config, setup: Duration, load: Load, audit: AuditCheck) -> Report {
        let Tally {
            latencies,
            errors,
            messages,
            ..
        } = load.tally;
        let endpoints = latencies
            .into_iter()
            .zip(errors)
            .zip(messages)
            .zip(ENDPOINTS)
            .map(|(((samples, errors), messages), name)| stats(name, samples, errors, messages))
            .collect();
        Report {
            config,
            setup,
            elapsed: load.elapsed,
            endpoints,
            audit,
        }
    }

    pub fn requests(&self) -> usize {
        self.endpoints.iter().map(|e| e.requests).sum()
    }

    pub fn errors(&self) -> u64 {
        self.endpoints.iter().map(|e| e.errors).sum()
    }

    /// Everything that makes the run a failure; empty when it passed.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.errors() > 0 {
            out.push(format!("{} requests failed", self.errors()));
        }
        if self.endpoints.iter().any(|e| e.requests == 0) {
            out.push("an endpoint was never exercised".to_owned());
        }
        out.extend(self.audit.problems());
        out
    }
}

pub(crate) fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        writeln!(
            f,
            "{} residents, {} offline locks, {} concurrent for {:.1} s (setup {:.1} s); \
             runtime threads: server {}, client {}",
            c.residents,
            c.locks,
            c.concurrency,
            self.elapsed.as_secs_f64(),
            self.setup.as_secs_f64(),
            c.server_threads,
            c.client_threads
        )?;
        writeln!(
            f,
            "{:<27} {:>8} {:>6} {:>8} {:>8} {:>8} {:>8}",
            "endpoint", "requests", "errors", "p50 ms", "p90 ms", "p99 ms", "max ms"
        )?;
        for e in &self.endpoints {
            let [p50, p90, p99, max] = e.latency.map(ms);
            writeln!(
                f,
                "{:<27} {:>8} {:>6} {p50:>8} {p90:>8} {p99:>8} {max:>8}",
                e.name, e.requests, e.errors
            )?;
            for m in &e.messages {
                writeln!(f, "    {m}")?;
            }
        }
        writeln!(
            f,
            "{:<27} {:>8} {:>6} {:.0} requests/s",
            "total",
            self.requests(),
            self.errors(),
            self.requests() as f64 / self.elapsed.as_secs_f64()
        )?;
        let a = &self.audit;
        writeln!(
            f,
            "audit: {} records signed, {} sent; receipts: {} stored, {} duplicates; \
             database: {} rows, {} missing, {} altered, {} unknown",
            a.signed, a.sent, a.stored, a.duplicates, a.rows, a.missing, a.altered, a.unknown
        )
    }
}
