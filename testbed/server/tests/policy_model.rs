//! The model-based system test of the access policy: random sequences of manager operations
//! (edit keys' doors, schedules and doorcodes, assign and unassign, May Share on and off,
//! Disable All Doorcodes, revoke people), resident operations (invite guests with the app, a
//! temporary doorcode or both, per door; revoke guests; register devices, fetch documents), time passing, and Door Syncs carried by random phones,
//! run against the real door-server over HTTP and two reference locks (door-lock) with their
//! own clocks. An adversary controls every phone: it keeps every access document and doorcode
//! any of them was ever given, and presents all of them at a lock, by BLE and at the keypad.
//!
//! The oracle is this file's own small model of the manager's policy, written from the seeds
//! (Keys, Key Schedules, May Share Key, doorcodes, guests) and evaluated with chrono-tz, not
//! with the server's policy code or door-protocol's schedules. Invariants, after every attack:
//!
//! 1. A lock that applied a bundle issued after the last policy change grants, by BLE or at
//!    the keypad, nothing the policy denies at that instant.
//! 2. Before that, it grants by BLE only what some policy in force since the document was
//!    issued grants now, and at the keypad only what the policy of its last bundle grants now.
//! 3. (No over-revocation.) At such a synced lock, a phone that fetches its documents now is
//!    let in whenever the policy allows it.
//!
//! Counterexamples shrink to a minimal operation list. `POLICY_MODEL_CASES` and
//! `POLICY_MODEL_OPS` set the number of cases and the operations per case (CI: 24 x 40).

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{Datelike, TimeZone, Timelike};
use common::*;
use door_lock::{Lock, LockClock};
use door_protocol::access::decode_access;
use door_protocol::unlock::{DenyReason, UnlockResult};
use door_protocol::{DoorcodeResult, Id, IssuerKeys, IssuerPublicKey, LockConfig, LockKey};
use door_server::model::*;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use proptest::prelude::*;
use serde_json::{json, Value};
use tempfile::TempDir;

/// What the runs exercised, printed at the end so a green run shows it had teeth.
static OPS: AtomicU64 = AtomicU64::new(0);
static BLE_GRANTED: AtomicU64 = AtomicU64::new(0);
static BLE_REFUSED: AtomicU64 = AtomicU64::new(0);
static CODES_GRANTED: AtomicU64 = AtomicU64::new(0);
static GUEST_CODES_GRANTED: AtomicU64 = AtomicU64::new(0);
static STRICT_ATTACKS: AtomicU64 = AtomicU64::new(0);
static FRESH_GRANTED: AtomicU64 = AtomicU64::new(0);

fn count(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

const DOORS: usize = 2;
const KEYS: usize = 3;
const PEOPLE: usize = 3;
const DAY: i64 = 86_400;

/// The schedules keys choose from: 24/7; weekdays 08:00-18:00; Mon and Wed 06:00-09:00;
/// 24/7 until three days after the start.
const PALETTE: usize = 4;

/// One operation; indexes are taken modulo what exists when it runs.
#[derive(Clone, Debug)]
enum Op {
    EditKey {
        key: usize,
        doors: [Option<(usize, bool)>; DOORS],
    },
    Assign {
        person: usize,
        key: usize,
        share: bool,
    },
    Unassign {
        person: usize,
        key: usize,
    },
    SetShare {
        person: usize,
        key: usize,
        share: bool,
    },
    DisableCodes {
        key: usize,
    },
    Revoke {
        person: usize,
    },
    /// `doors`: opened with the app; `codes`: with a temporary doorcode.
    Invite {
        host: usize,
        doors: [bool; DOORS],
        codes: [bool; DOORS],
        hours: i64,
    },
    RevokeGuest {
        invite: usize,
    },
    NewDevice {
        person: usize,
    },
    Fetch {
        phone: usize,
    },
    /// Every phone fetches its doors.
    FetchAll,
    Advance {
        minutes: i64,
    },
    Sync {
        lock: usize,
        phone: usize,
    },
    Attack {
        lock: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let door = proptest::option::of((0..PALETTE, any::<bool>()));
    prop_oneof![
        2 => (0..KEYS, [door.clone(), door]).prop_map(|(key, doors)| Op::EditKey { key, doors }),
        3 => (0..PEOPLE, 0..KEYS, any::<bool>())
            .prop_map(|(person, key, share)| Op::Assign { person, key, share }),
        1 => (0..PEOPLE, 0..KEYS).prop_map(|(person, key)| Op::Unassign { person, key }),
        1 => (0..PEOPLE, 0..KEYS, any::<bool>())
            .prop_map(|(person, key, share)| Op::SetShare { person, key, share }),
        1 => (0..KEYS).prop_map(|key| Op::DisableCodes { key }),
        1 => (0..PEOPLE).prop_map(|person| Op::Revoke { person }),
        // P0 starts with the one May Share key (with doorcodes): half the invites are theirs.
        3 => (prop_oneof![Just(0), 0..PEOPLE], [any::<bool>(), any::<bool>()], [any::<bool>(), any::<bool>()], 1..96i64)
            .prop_map(|(host, doors, codes, hours)| Op::Invite { host, doors, codes, hours }),
        1 => (0..8usize).prop_map(|invite| Op::RevokeGuest { invite }),
        1 => (0..PEOPLE).prop_map(|person| Op::NewDevice { person }),
        4 => (0..16usize).prop_map(|phone| Op::Fetch { phone }),
        2 => Just(Op::FetchAll),
        2 => prop_oneof![1..120i64, 120..(3 * 24 * 60i64)].prop_map(|minutes| Op::Advance { minutes }),
        3 => (0..DOORS, 0..16usize).prop_map(|(lock, phone)| Op::Sync { lock, phone }),
        3 => (0..DOORS).prop_map(|lock| Op::Attack { lock }),
    ]
}

// ---- the oracle -------------------------------------------------------------------------------

/// The manager's policy as the seeds describe it.
#[derive(Clone, Debug, Default)]
struct Policy {
    /// Per key, per door: (palette schedule, doorcodes on), or not in the key.
    keys: [[Option<(usize, bool)>; DOORS]; KEYS],
    /// (person, key) -> May Share.
    holds: BTreeMap<(usize, usize), bool>,
    revoked: [bool; PEOPLE],
    invites: Vec<Invite>,
}

#[derive(Clone, Debug)]
struct Invite {
    host: usize,
    doors: [bool; DOORS],
    codes: [bool; DOORS],
    starts_at: i64,
    ends_at: i64,
    revoked: bool,
}

/// Who a phone or a document belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Holder {
    Resident(usize),
    Guest(usize),
}

/// Whether palette schedule `i` lets its holder in at `t`, read on New York's wall clock.
fn palette_allows(i: usize, t: i64, t0: i64) -> bool {
    let local = chrono_tz::America::New_York.timestamp_opt(t, 0).unwrap();
    let minute = local.hour() * 60 + local.minute();
    let weekday = local.weekday().num_days_from_monday(); // 0 = Monday
    match i {
        0 => true,
        1 => weekday < 5 && (8 * 60..18 * 60).contains(&minute),
        2 => (weekday == 0 || weekday == 2) && (6 * 60..9 * 60).contains(&minute),
        _ => t < t0 + 3 * DAY,
    }
}

impl Policy {
    /// May `holder` open `door` at `t` (by app)? Residents: some key they hold gives the door
    /// and its schedule allows. Guests: the invite runs and is not revoked, the host is not
    /// revoked, and some key the host holds with May Share gives the door and allows.
    fn allows(&self, holder: Holder, door: usize, t: i64, t0: i64) -> bool {
        match holder {
            Holder::Resident(p) => self.key_allows(p, door, t, t0, |_| true),
            Holder::Guest(i) => {
                // A policy from before the invite knows nothing of the guest.
                let Some(inv) = self.invites.get(i) else {
                    return false;
                };
                !inv.revoked
                    && inv.doors[door]
                    && inv.starts_at <= t
                    && t < inv.ends_at
                    && self.key_allows(inv.host, door, t, t0, |share| share)
            }
        }
    }

    fn key_allows(
        &self,
        person: usize,
        door: usize,
        t: i64,
        t0: i64,
        share: impl Fn(bool) -> bool,
    ) -> bool {
        !self.revoked[person]
            && self.holds.iter().any(|(&(p, k), &s)| {
                p == person
                    && share(s)
                    && self.keys[k][door].is_some_and(|(sch, _)| palette_allows(sch, t, t0))
            })
    }

    /// May `holder` open `door` at `t` with a doorcode? Residents: some key they hold gives
    /// the door with doorcodes on, and its schedule allows. Guests: the invite gives a code
    /// there, runs and is not revoked, and some key the host holds with May Share gives the
    /// door with doorcodes on and allows.
    fn code_allows(&self, holder: Holder, door: usize, t: i64, t0: i64) -> bool {
        match holder {
            Holder::Resident(p) => self.key_code_allows(p, door, t, t0, |_| true),
            Holder::Guest(i) => self.invites.get(i).is_some_and(|inv| {
                !inv.revoked
                    && inv.codes[door]
                    && inv.starts_at <= t
                    && t < inv.ends_at
                    && self.key_code_allows(inv.host, door, t, t0, |share| share)
            }),
        }
    }

    fn key_code_allows(
        &self,
        person: usize,
        door: usize,
        t: i64,
        t0: i64,
        share: impl Fn(bool) -> bool,
    ) -> bool {
        !self.revoked[person]
            && self.holds.iter().any(|(&(p, k), &s)| {
                p == person
                    && share(s)
                    && self.keys[k][door]
                        .is_some_and(|(sch, codes)| codes && palette_allows(sch, t, t0))
            })
    }
}

// ---- the world --------------------------------------------------------------------------------

struct ModelPhone {
    holder: Holder,
    phone: Phone,
    /// Refused by the server (revoked, ended): the phone stays with the adversary.
    dead: bool,
}

struct HeldDocument {
    door: usize,
    bytes: Vec<u8>,
    key: SigningKey,
    holder: Holder,
    issued_at: i64,
}

struct World {
    s: TestServer,
    m: Manager,
    t0: i64,
    doors: Vec<DoorJson>,
    locks: Vec<Lock>,
    _dirs: Vec<TempDir>,
    key_ids: Vec<KeyJson>,
    people: Vec<PersonJson>,
    issuer_keys: IssuerKeys,
    policy: Policy,
    /// (time it took effect, the policy from then on), oldest first.
    history: Vec<(i64, Policy)>,
    /// Per lock: the policy version (index into `history`) its last bundle was built from.
    synced_at: Vec<Option<usize>>,
    phones: Vec<ModelPhone>,
    /// Every document any phone was ever given.
    documents: Vec<HeldDocument>,
    /// Every doorcode any phone was ever shown: (door, code), newest last.
    codes: Vec<(usize, String)>,
    /// Guest invites: the invite's id at the server.
    invite_ids: Vec<String>,
    /// The guests' person ids, by invite (what the keypad's audit names).
    guest_people: Vec<String>,
}

fn palette_json(i: usize, t0: i64) -> Option<ScheduleJson> {
    match i {
        0 => None,
        1 => Some(weekly(MON_FRI, "08:00", "18:00")),
        2 => Some(weekly(&["mon", "wed"], "06:00", "09:00")),
        _ => Some(ScheduleJson {
            not_after: Some(t0 + 3 * DAY),
            ..weekly(EVERY_DAY, "00:00", "24:00")
        }),
    }
}

impl World {
    async fn new() -> World {
        let s = TestServer::start().await;
        let t0 = s.now();
        let m = Manager::create(&s, "1800 Main St", "America/New_York").await;
        let issuer = IssuerPublicKey::from_sec1(&unb64(&m.property.issuer_public_key)).unwrap();
        let issuer_keys = IssuerKeys::single(issuer);
        let (mut doors, mut locks, mut dirs) = (Vec::new(), Vec::new(), Vec::new());
        for name in ["Lobby", "Pool"] {
            let lock_key = LockKey::generate(&mut rand::rngs::OsRng);
            let door: DoorJson = s
                .ok(
                    "POST",
                    &m.path("/doors"),
                    &m.key,
                    Some(&json!({"name": name, "online": false, "keypad": true,
                        "lock_public_key": b64(&lock_key.public().to_sec1_compressed())})),
                    201,
                )
                .await;
            let config = LockConfig::new(
                Id::from_hex(&door.lock_id).unwrap(),
                Id::from_hex(&door.id).unwrap(),
                lock_key,
                issuer_keys.clone(),
            );
            // tmpfs when there is one: the reference lock syncs its state file on every decision.
            let dir = match std::path::Path::new("/dev/shm").is_dir() {
                true => tempfile::Builder::new().tempdir_in("/dev/shm").unwrap(),
                false => TempDir::new().unwrap(),
            };
            locks.push(Lock::open(dir.path(), config, LockClock::fixed(t0)).unwrap());
            doors.push(door);
            dirs.push(dir);
        }
        let mut policy = Policy::default();
        let mut key_ids = Vec::new();
        for k in 0..KEYS {
            // Key k starts with door k % 2, 24/7, doorcodes on for key 0.
            let door = k % DOORS;
            policy.keys[k][door] = Some((0, k == 0));
            key_ids.push(
                m.key(
                    &s,
                    &format!("Key {k}"),
                    vec![door_entry(&doors[door], k == 0, None)],
                )
                .await,
            );
        }
        let mut people = Vec::new();
        for p in 0..PEOPLE {
            people.push(
                m.person(
                    &s,
                    &format!("P{p}"),
                    "resident",
                    Some(&format!("p{p}@example.com")),
                )
                .await,
            );
        }
        let mut world = World {
            s,
            m,
            t0,
            doors,
            locks,
            _dirs: dirs,
            key_ids,
            people,
            issuer_keys,
            history: Vec::new(),
            policy,
            synced_at: vec![None; DOORS],
            phones: Vec::new(),
            documents: Vec::new(),
            codes: Vec::new(),
            invite_ids: Vec::new(),
            guest_people: Vec::new(),
        };
        // Every resident starts with key p (May Share for the first) and one phone.
        for p in 0..PEOPLE {
            world
                .m
                .assign(&world.s, &world.people[p], &world.key_ids[p], p == 0)
                .await;
            world.policy.holds.insert((p, p), p == 0);
            let tokens = world.login(p).await.expect("residents sign in");
            world.new_phone(Holder::Resident(p), tokens).await;
        }
        world.history.push((t0, world.policy.clone()));
        world
    }

    fn now(&self) -> i64 {
        self.s.now()
    }

    /// The policy changed now.
    fn changed(&mut self) {
        let now = self.now();
        self.history.push((now, self.policy.clone()));
    }

    /// The index of the policy in force now: operations run one after another, so versions
    /// order changes made within one second too.
    fn version(&self) -> usize {
        self.history.len() - 1
    }

    async fn manager(&self, method: &str, path: &str, body: Option<Value>) -> u16 {
        self.s
            .call(method, &self.m.path(path), &self.m.key, body.as_ref())
            .await
            .0
    }

    /// A usable access token for phone `i`, refreshing it as the app does; `None` (and the
    /// phone marked dead) once the server refuses it.
    async fn token(&mut self, i: usize) -> Option<String> {
        let now = self.now();
        let p = &mut self.phones[i];
        if p.dead {
            return None;
        }
        if now + 60 >= p.phone.tokens.expires_at {
            let (status, body) = self
                .s
                .call(
                    "POST",
                    "/v1/auth/refresh",
                    "",
                    Some(&json!({"refresh_token": p.phone.tokens.refresh_token})),
                )
                .await;
            if status != 200 {
                p.dead = true;
                return None;
            }
            p.phone.tokens = serde_json::from_value(body).unwrap();
        }
        Some(p.phone.tokens.access_token.clone())
    }

    async fn new_phone(&mut self, holder: Holder, tokens: Tokens) {
        let phone = Phone::with_tokens(&self.s, tokens).await;
        self.phones.push(ModelPhone {
            holder,
            phone,
            dead: false,
        });
    }

    async fn login(&self, person: usize) -> Option<Tokens> {
        let (status, body) = self
            .s
            .call(
                "POST",
                "/v1/auth/login",
                "",
                Some(&json!({"email": format!("p{person}@example.com"),
                    "password": "correct horse battery"})),
            )
            .await;
        (status == 200).then(|| serde_json::from_value(body).unwrap())
    }

    /// Phone `i` fetches its doors; the adversary keeps every document and code. Returns the
    /// documents by door index.
    async fn fetch(&mut self, i: usize) -> BTreeMap<usize, Vec<u8>> {
        let mut out = BTreeMap::new();
        let Some(token) = self.token(i).await else {
            return out;
        };
        let device = self.phones[i].phone.device_id.clone();
        let (status, body) = self
            .s
            .call(
                "GET",
                &format!("/v1/me/doors?device_id={device}"),
                &token,
                None,
            )
            .await;
        if status == 401 {
            self.phones[i].dead = true;
            return out;
        }
        assert_eq!(status, 200, "my doors: {body}");
        let doors: MyDoors = serde_json::from_value(body).unwrap();
        for d in &doors.doors {
            let Some(door) = self.doors.iter().position(|x| x.id == d.id) else {
                continue;
            };
            let bytes = unb64(&d.access_document);
            let issued_at = decode_access(&bytes, &self.issuer_keys)
                .unwrap()
                .document()
                .issued_at;
            if !self.documents.iter().any(|h| h.bytes == bytes) {
                self.documents.push(HeldDocument {
                    door,
                    bytes: bytes.clone(),
                    key: self.phones[i].phone.key.clone(),
                    holder: self.phones[i].holder,
                    issued_at,
                });
            }
            if let Some(code) = &d.doorcode {
                if !self.codes.contains(&(door, code.clone())) {
                    self.codes.push((door, code.clone()));
                }
            }
            out.insert(door, bytes);
        }
        out
    }

    fn present(&self, lock: usize, key: &SigningKey, document: &[u8]) -> UnlockResult {
        present(&self.locks[lock], key, document)
    }

    fn set_time(&self, t: i64) {
        self.s.set_now(t);
        for l in &self.locks {
            l.clock().set_time(t);
        }
    }

    async fn run(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match *op {
            Op::EditKey { key, doors } => {
                if doors.iter().all(Option::is_none) {
                    return Ok(());
                }
                let entries: Vec<KeyDoorJson> = doors
                    .iter()
                    .enumerate()
                    .filter_map(|(d, e)| {
                        e.map(|(sch, codes)| {
                            door_entry(&self.doors[d], codes, palette_json(sch, self.t0))
                        })
                    })
                    .collect();
                let body = json!({"name": format!("Key {key}"), "doors": entries});
                let id = self.key_ids[key].id.clone();
                let status = self
                    .manager("PUT", &format!("/keys/{id}"), Some(body))
                    .await;
                prop_assert_eq!(status, 200);
                self.policy.keys[key] = doors;
                self.changed();
            }
            Op::Assign { person, key, share } => {
                let (pid, kid) = (self.people[person].id.clone(), self.key_ids[key].id.clone());
                let body = json!({"key_id": kid, "may_share": share});
                let status = self
                    .manager("POST", &format!("/people/{pid}/keys"), Some(body))
                    .await;
                let expected = if self.policy.revoked[person] {
                    403
                } else if self.policy.holds.contains_key(&(person, key)) {
                    409
                } else {
                    201
                };
                // A revoked person's assignment is refused whatever its exact status.
                if expected == 403 {
                    prop_assert!(status >= 400, "assigning a revoked person: {}", status);
                    return Ok(());
                }
                prop_assert_eq!(status, expected);
                if status == 201 {
                    self.policy.holds.insert((person, key), share);
                    self.changed();
                }
            }
            Op::Unassign { person, key } => {
                let (pid, kid) = (self.people[person].id.clone(), self.key_ids[key].id.clone());
                let status = self
                    .manager("DELETE", &format!("/people/{pid}/keys/{kid}"), None)
                    .await;
                let held = self.policy.holds.remove(&(person, key)).is_some();
                prop_assert_eq!(status, if held { 204 } else { 404 });
                if held {
                    self.changed();
                }
            }
            Op::SetShare { person, key, share } => {
                let (pid, kid) = (self.people[person].id.clone(), self.key_ids[key].id.clone());
                let status = self
                    .manager(
                        "PATCH",
                        &format!("/people/{pid}/keys/{kid}"),
                        Some(json!({"may_share": share})),
                    )
                    .await;
                match self.policy.holds.get_mut(&(person, key)) {
                    Some(s) => {
                        prop_assert_eq!(status, 200);
                        *s = share;
                        self.changed();
                    }
                    None => prop_assert_eq!(status, 404),
                }
            }
            Op::DisableCodes { key } => {
                let kid = self.key_ids[key].id.clone();
                let status = self
                    .manager("POST", &format!("/keys/{kid}/disable-doorcodes"), None)
                    .await;
                prop_assert_eq!(status, 200);
                for d in self.policy.keys[key].iter_mut().flatten() {
                    d.1 = false;
                }
                self.changed();
            }
            Op::Revoke { person } => {
                let pid = self.people[person].id.clone();
                let status = self
                    .manager("POST", &format!("/people/{pid}/revoke"), None)
                    .await;
                prop_assert_eq!(status, 204);
                self.policy.revoked[person] = true;
                self.policy.holds.retain(|&(p, _), _| p != person);
                self.changed();
            }
            Op::Invite {
                host,
                doors,
                codes,
                hours,
            } => {
                let Some(i) = self
                    .phones
                    .iter()
                    .position(|p| p.holder == Holder::Resident(host) && !p.dead)
                else {
                    return Ok(());
                };
                let ids = |on: [bool; DOORS]| -> Vec<String> {
                    (0..DOORS)
                        .filter(|&d| on[d])
                        .map(|d| self.doors[d].id.clone())
                        .collect()
                };
                let (door_ids, code_door_ids) = (ids(doors), ids(codes));
                if door_ids.is_empty() && code_door_ids.is_empty() {
                    return Ok(());
                }
                let Some(token) = self.token(i).await else {
                    return Ok(());
                };
                let now = self.now();
                let (starts_at, ends_at) = (now, now + hours * 3600);
                let body = json!({"door_ids": door_ids, "doorcode_door_ids": code_door_ids,
                    "contact": "guest", "starts_at": starts_at, "ends_at": ends_at});
                let (status, answer) = self
                    .s
                    .call("POST", "/v1/me/guests", &token, Some(&body))
                    .await;
                if status == 401 {
                    self.phones[i].dead = true;
                    return Ok(());
                }
                // The server lets a host share exactly the doors some May Share key gives now,
                // and a doorcode where such a key also enables doorcodes.
                let shared = |d: usize, code: bool| {
                    self.policy.holds.iter().any(|(&(p, k), &s)| {
                        p == host
                            && s
                            && self.policy.keys[k][d].is_some_and(|(_, codes)| codes || !code)
                    })
                };
                let shareable = (0..DOORS)
                    .all(|d| (!doors[d] || shared(d, false)) && (!codes[d] || shared(d, true)));
                prop_assert_eq!(
                    status == 201,
                    shareable,
                    "invite answered {}: {}",
                    status,
                    answer
                );
                if status != 201 {
                    return Ok(());
                }
                let invited: InvitedGuest = serde_json::from_value(answer).unwrap();
                let (status, tokens) = self
                    .s
                    .call(
                        "POST",
                        "/v1/auth/invite",
                        "",
                        Some(&json!({"invite_token": invited.invite_token})),
                    )
                    .await;
                prop_assert_eq!(status, 200);
                let index = self.policy.invites.len();
                for c in &invited.doorcodes {
                    let door = self.doors.iter().position(|x| x.id == c.door_id).unwrap();
                    prop_assert!(codes[door], "a doorcode for a door not asked for");
                    self.codes.push((door, c.code.clone()));
                }
                prop_assert_eq!(
                    invited.doorcodes.len(),
                    codes.iter().filter(|&&c| c).count()
                );
                self.policy.invites.push(Invite {
                    host,
                    doors,
                    codes,
                    starts_at,
                    ends_at,
                    revoked: false,
                });
                self.invite_ids.push(invited.guest.id);
                self.changed();
                let tokens: Tokens = serde_json::from_value(tokens).unwrap();
                self.guest_people.push(tokens.person_id.clone());
                self.new_phone(Holder::Guest(index), tokens).await;
            }
            Op::RevokeGuest { invite } => {
                if self.invite_ids.is_empty() {
                    return Ok(());
                }
                let invite = invite % self.invite_ids.len();
                let host = self.policy.invites[invite].host;
                let Some(i) = self
                    .phones
                    .iter()
                    .position(|p| p.holder == Holder::Resident(host) && !p.dead)
                else {
                    return Ok(());
                };
                let Some(token) = self.token(i).await else {
                    return Ok(());
                };
                let path = format!("/v1/me/guests/{}", self.invite_ids[invite]);
                let status = self.s.call("DELETE", &path, &token, None).await.0;
                if status == 401 {
                    // The host's session ended (revoked): the phone stays with the adversary.
                    self.phones[i].dead = true;
                    return Ok(());
                }
                prop_assert_eq!(status, 200);
                self.policy.invites[invite].revoked = true;
                self.changed();
            }
            Op::NewDevice { person } => {
                if let Some(tokens) = self.login(person).await {
                    let (status, _) = self
                        .s
                        .call(
                            "POST",
                            "/v1/me/devices/challenge",
                            &tokens.access_token,
                            None,
                        )
                        .await;
                    // A device limit may refuse it: then there is simply no new phone.
                    if status == 200 && self.phones.len() < 16 {
                        let phone = try_phone(&self.s, tokens).await;
                        if let Some(phone) = phone {
                            self.phones.push(ModelPhone {
                                holder: Holder::Resident(person),
                                phone,
                                dead: false,
                            });
                        }
                    }
                }
            }
            Op::Fetch { phone } => {
                if !self.phones.is_empty() {
                    self.fetch(phone % self.phones.len()).await;
                }
            }
            Op::FetchAll => {
                for i in 0..self.phones.len() {
                    self.fetch(i).await;
                }
            }
            Op::Advance { minutes } => self.set_time(self.now() + minutes * 60),
            Op::Sync { lock, phone } => {
                if self.phones.is_empty() {
                    return Ok(());
                }
                let i = phone % self.phones.len();
                let Some(token) = self.token(i).await else {
                    return Ok(());
                };
                // The phone brings the lock's audit records home first (so the lock can free
                // them), then the bundle the lock lacks.
                let lock_id = self.doors[lock].lock_id.clone();
                let records: Vec<String> = self.locks[lock]
                    .audit_records()
                    .iter()
                    .map(|r| b64(r))
                    .collect();
                if !records.is_empty() {
                    let body = json!({"records": records});
                    let status = self
                        .s
                        .call(
                            "POST",
                            &format!("/v1/locks/{lock_id}/audit"),
                            &token,
                            Some(&body),
                        )
                        .await
                        .0;
                    if status == 401 {
                        self.phones[i].dead = true;
                        return Ok(());
                    }
                    prop_assert_eq!(status, 200);
                }
                let since = self.locks[lock].sync_iteration();
                let (status, body) = self
                    .s
                    .call(
                        "GET",
                        &format!("/v1/locks/{lock_id}/bundle?since={since}"),
                        &token,
                        None,
                    )
                    .await;
                if status == 401 {
                    // The courier's session ended (revoked, or a guest whose grant ended).
                    self.phones[i].dead = true;
                    return Ok(());
                }
                prop_assert_eq!(status, 200, "bundle: {}", body);
                let bundle: SyncBundleJson = serde_json::from_value(body).unwrap();
                if let Some(bytes) = bundle.bundle {
                    let applied = self.locks[lock].apply_bundle(&unb64(&bytes));
                    prop_assert!(
                        applied.is_ok(),
                        "the lock refused its bundle: {:?}",
                        applied
                    );
                }
                self.synced_at[lock] = Some(self.version());
            }
            Op::Attack { lock } => self.attack(lock).await?,
        }
        Ok(())
    }

    /// The adversary presents everything it ever held at `lock`, and honest phones their
    /// fresh documents; the invariants of the module docs are checked on every answer.
    async fn attack(&mut self, lock: usize) -> Result<(), TestCaseError> {
        // Five minutes on: earlier requests leave the replay cache, a keypad lockout ends.
        self.set_time(self.now() + 301);
        let now = self.now();
        let synced = self.synced_at[lock] == Some(self.version());
        for h in self.documents.iter().filter(|h| h.door == lock) {
            let result = self.present(lock, &h.key, &h.bytes);
            if result != UnlockResult::Granted {
                count(&BLE_REFUSED);
                continue;
            }
            count(&BLE_GRANTED);
            if synced {
                prop_assert!(
                    self.policy.allows(h.holder, lock, now, self.t0),
                    "a synced lock let {:?} in by BLE at {} against the policy",
                    h.holder,
                    now
                );
            } else {
                // Times have one-second steps: a policy replaced in the second the document
                // was issued counts as in force then.
                let earlier = self.history.iter().enumerate().any(|(i, (_, p))| {
                    let until = self.history.get(i + 1).map_or(i64::MAX, |(t, _)| *t);
                    until >= h.issued_at && p.allows(h.holder, lock, now, self.t0)
                });
                prop_assert!(
                    earlier,
                    "a lock let {:?} in by BLE at {} that no policy since its document granted",
                    h.holder,
                    now
                );
            }
        }
        let bundle_policy = self.synced_at[lock].map(|v| self.history[v].1.clone());
        for (door, code) in self.codes.iter().rev() {
            if *door != lock {
                continue;
            }
            let result = self.locks[lock].enter_doorcode(code).unwrap();
            let DoorcodeResult::Granted { person_id } = result else {
                continue;
            };
            count(&CODES_GRANTED);
            let is = |id: &String| Id::from_hex(id).unwrap() == person_id;
            let holder = match self.people.iter().position(|p| is(&p.id)) {
                Some(p) => Holder::Resident(p),
                None => match self.guest_people.iter().position(is) {
                    Some(g) => Holder::Guest(g),
                    None => {
                        prop_assert!(false, "the keypad let in someone no one invited");
                        unreachable!()
                    }
                },
            };
            let policy = if synced {
                Some(&self.policy)
            } else {
                bundle_policy.as_ref()
            };
            prop_assert!(
                policy.is_some_and(|p| p.code_allows(holder, lock, now, self.t0)),
                "the keypad let {:?} in at {} against the policy of its last bundle",
                holder,
                now
            );
            if matches!(holder, Holder::Guest(_)) {
                count(&GUEST_CODES_GRANTED);
            }
        }
        if synced {
            count(&STRICT_ATTACKS);
            // No over-revocation: fresh documents of live phones open whenever the policy says.
            for i in 0..self.phones.len() {
                let holder = self.phones[i].holder;
                let allowed = self.policy.allows(holder, lock, now, self.t0);
                let docs = self.fetch(i).await;
                let (Some(doc), true) = (docs.get(&lock), allowed) else {
                    prop_assert!(
                        !allowed || self.phones[i].dead && matches!(holder, Holder::Guest(_)),
                        "{:?} may open door {} at {} but was given no document",
                        holder,
                        lock,
                        now
                    );
                    continue;
                };
                let key = self.phones[i].phone.key.clone();
                let result = self.present(lock, &key, doc);
                if result == UnlockResult::Granted {
                    count(&FRESH_GRANTED);
                }
                prop_assert!(
                    result == UnlockResult::Granted
                        || result == UnlockResult::Denied(DenyReason::Busy),
                    "{:?} may open door {} at {} but the synced lock said {:?}",
                    holder,
                    lock,
                    now,
                    result
                );
            }
        }
        Ok(())
    }
}

/// A phone for `tokens`, or `None` when the server refuses the device (its limit).
async fn try_phone(s: &TestServer, tokens: Tokens) -> Option<Phone> {
    let key = SigningKey::random(&mut rand::rngs::OsRng);
    let (status, challenge) = s
        .call(
            "POST",
            "/v1/me/devices/challenge",
            &tokens.access_token,
            None,
        )
        .await;
    if status != 200 {
        return None;
    }
    let challenge: Challenge = serde_json::from_value(challenge).unwrap();
    let message = [
        b"door-core/device-possession/v1\0".as_slice(),
        &unb64(&challenge.challenge),
    ]
    .concat();
    let sig: Signature = key.sign(&message);
    let body = json!({
        "public_key": b64(key.verifying_key().to_encoded_point(false).as_bytes()),
        "challenge": challenge.challenge,
        "signature": b64(sig.to_der().as_bytes()),
    });
    let (status, device) = s
        .call("POST", "/v1/me/devices", &tokens.access_token, Some(&body))
        .await;
    if status != 201 {
        return None;
    }
    let device: DeviceJson = serde_json::from_value(device).unwrap();
    Some(Phone {
        tokens,
        device_id: device.device_id,
        key,
    })
}

fn env_or(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn run_case(ops: &[Op]) -> Result<(), TestCaseError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut world = World::new().await;
        for op in ops {
            count(&OPS);
            world.run(op).await?;
        }
        // Every run ends with each lock synced and attacked: the strict invariants always
        // get their say.
        for lock in 0..DOORS {
            if let Some(phone) = (0..world.phones.len()).find(|&i| !world.phones[i].dead) {
                world.run(&Op::Sync { lock, phone }).await?;
            }
            world.attack(lock).await?;
        }
        Ok(())
    })
}

#[test]
fn no_lock_grants_what_the_policy_denies() {
    let config = ProptestConfig {
        cases: env_or("POLICY_MODEL_CASES", 24),
        max_shrink_iters: 2000,
        // Counterexamples are printed, shrunk; the sequence is the regression test to add.
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let max = env_or("POLICY_MODEL_OPS", 40) as usize;
    let ops = proptest::collection::vec(op(), 1..=max);
    let result = proptest::test_runner::TestRunner::new(config).run(&ops, |ops| run_case(&ops));
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    eprintln!(
        "policy model: {} operations; BLE presentations granted {} refused {}; doorcodes \
         granted {} (to guests {}); attacks on fully synced locks {}; fresh documents let in {}",
        get(&OPS),
        get(&BLE_GRANTED),
        get(&BLE_REFUSED),
        get(&CODES_GRANTED),
        get(&GUEST_CODES_GRANTED),
        get(&STRICT_ATTACKS),
        get(&FRESH_GRANTED)
    );
    if let Err(e) = result {
        panic!("{e}");
    }
}
