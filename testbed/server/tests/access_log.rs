//! The resident's access log of a door (`GET /v1/me/doors/{door_id}/access-log`) over real
//! HTTP: who sees which entries (a property test against an oracle), paging, and its errors.

mod common;

use std::collections::BTreeMap;

use common::*;
use door_protocol::unlock::DenyReason;
use door_protocol::{AuditEpoch, AuditEvent, AuditRecord, Id, LockKey};
use door_server::access_log::{AccessLogEntry, AccessLogPage, AccessMethod, AccessOutcome};
use door_server::audit::AuditReceipt;
use door_server::model::*;
use door_server::units::UnitJson;
use proptest::prelude::*;
use serde_json::{json, Value};

const UNITS: [&str; 2] = ["A", "B"];

#[derive(Debug, Clone)]
struct DoorSpec {
    unit: Option<usize>,
}

#[derive(Debug, Clone)]
struct PersonSpec {
    unit: Option<usize>,
    guest: bool,
    /// Bit i: the person holds a key to door i.
    doors: u8,
}

/// What a lock records; person indices are taken modulo the number of people.
#[derive(Debug, Clone)]
enum Happening {
    Granted(usize),
    Denied(usize),
    DeniedUntrusted,
    Doorcode(usize, bool),
    WrongCode,
    /// A credential the server never issued.
    StrangeCredential,
    Sync,
    Clock,
    Dropped,
}

#[derive(Debug, Clone)]
struct Record {
    door: usize,
    /// Seconds after the start: equal times are common, and times need not follow seqs.
    offset: i64,
    /// The lock starts a new epoch (a wipe) before this record.
    new_epoch: bool,
    what: Happening,
}

#[derive(Debug, Clone)]
struct Case {
    doors: Vec<DoorSpec>,
    people: Vec<PersonSpec>,
    records: Vec<Record>,
    limits: Vec<u32>,
}

fn unit() -> impl Strategy<Value = Option<usize>> {
    proptest::option::of(0..UNITS.len())
}

fn happening() -> impl Strategy<Value = Happening> {
    prop_oneof![
        4 => (0..8usize).prop_map(Happening::Granted),
        2 => (0..8usize).prop_map(Happening::Denied),
        1 => Just(Happening::DeniedUntrusted),
        3 => (0..8usize, any::<bool>()).prop_map(|(p, g)| Happening::Doorcode(p, g)),
        1 => Just(Happening::WrongCode),
        1 => Just(Happening::StrangeCredential),
        1 => Just(Happening::Sync),
        1 => Just(Happening::Clock),
        1 => Just(Happening::Dropped),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (2..=4usize, 2..=4usize).prop_flat_map(|(doors, people)| {
        (
            proptest::collection::vec(unit().prop_map(|unit| DoorSpec { unit }), doors),
            proptest::collection::vec(
                (unit(), proptest::bool::weighted(0.25), 0u8..(1 << doors))
                    .prop_map(|(unit, guest, doors)| PersonSpec { unit, guest, doors }),
                people,
            ),
            proptest::collection::vec(
                (
                    0..doors,
                    0..12i64,
                    proptest::bool::weighted(0.1),
                    happening(),
                )
                    .prop_map(|(door, offset, new_epoch, what)| Record {
                        door,
                        offset,
                        new_epoch,
                        what,
                    }),
                0..40,
            ),
            proptest::collection::vec(1..=5u32, 16),
        )
            .prop_map(|(doors, people, records, limits)| Case {
                doors,
                people,
                records,
                limits,
            })
    })
}

/// An entry as the oracle expects it, in the log's order key.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Expected {
    at: i64,
    outcome: AccessOutcome,
    method: Option<AccessMethod>,
    person_id: Option<String>,
    deny_reason: Option<String>,
    lost: Option<u64>,
}

impl From<&AccessLogEntry> for Expected {
    fn from(e: &AccessLogEntry) -> Expected {
        Expected {
            at: e.at,
            outcome: e.outcome,
            method: e.method,
            person_id: e.person_id.clone(),
            deny_reason: e.deny_reason.clone(),
            lost: e.lost,
        }
    }
}

/// One lock's entries by their place in the log (at, epoch, seq), each with the index of the
/// person it names.
type Log = BTreeMap<(i64, [u8; 8], u64), (Option<usize>, Expected)>;

struct Person {
    json: PersonJson,
    phone: Phone,
    /// Absent for a person with no door: no credential was issued.
    credential: Option<Id>,
}

async fn run(case: Case) -> Result<(), TestCaseError> {
    let s = TestServer::start().await;
    let m = Manager::create(&s, "1800 Main St", "America/New_York").await;
    let t0 = s.now();
    let mut locks = Vec::new();
    let mut doors = Vec::new();
    for (i, spec) in case.doors.iter().enumerate() {
        let lock = LockKey::generate(&mut rand::rngs::OsRng);
        let door: DoorJson = s
            .ok(
                "POST",
                &m.path("/doors"),
                &m.key,
                Some(
                    &json!({"name": format!("Door {i}"), "online": false, "keypad": true,
                    "lock_public_key": b64(&lock.public().to_sec1_compressed())}),
                ),
                201,
            )
            .await;
        let unit = UnitJson {
            unit: spec.unit.map(|u| UNITS[u].to_owned()),
        };
        let path = m.path(&format!("/doors/{}/unit", door.id));
        let set: UnitJson = s.ok("PUT", &path, &m.key, Some(&unit), 200).await;
        prop_assert_eq!(set, unit);
        locks.push(lock);
        doors.push(door);
    }
    let mut people = Vec::new();
    for (i, spec) in case.people.iter().enumerate() {
        let role = if spec.guest { "guest" } else { "resident" };
        let email = format!("p{i}@example.com");
        let json = m
            .person(&s, &format!("Person {i}"), role, Some(&email))
            .await;
        let unit = UnitJson {
            unit: spec.unit.map(|u| UNITS[u].to_owned()),
        };
        let path = m.path(&format!("/people/{}/unit", json.id));
        let _: UnitJson = s.ok("PUT", &path, &m.key, Some(&unit), 200).await;
        let held: Vec<KeyDoorJson> = (0..doors.len())
            .filter(|d| spec.doors & (1 << d) != 0)
            .map(|d| door_entry(&doors[d], true, None))
            .collect();
        if !held.is_empty() {
            let key = m.key(&s, &format!("Key {i}"), held).await;
            m.assign(&s, &json, &key, false).await;
        }
        let phone = Phone::sign_in(&s, &email).await;
        let credential = phone
            .doors(&s)
            .await
            .credential_id
            .map(|c| Id::from_hex(&c).unwrap());
        people.push(Person {
            json,
            phone,
            credential,
        });
    }

    // The locks' logs, and what each record names (person index) for the oracle.
    let n = people.len();
    let mut epochs: Vec<AuditEpoch> = (0..doors.len())
        .map(|_| AuditEpoch::random(&mut rand::rngs::OsRng))
        .collect();
    let mut next_seq = vec![0u64; doors.len()];
    let mut signed: Vec<Vec<String>> = vec![Vec::new(); doors.len()];
    // Per door: the entries its records make.
    let mut held: Vec<Log> = vec![BTreeMap::new(); doors.len()];
    for r in &case.records {
        let d = r.door;
        if r.new_epoch {
            epochs[d] = AuditEpoch::random(&mut rand::rngs::OsRng);
            next_seq[d] = 0;
        }
        let seq = next_seq[d];
        next_seq[d] += 1;
        let door_id = Id::from_hex(&doors[d].id).unwrap();
        let credential_of = |p: usize| people[p % n].credential;
        let strange = Id([0xee; 16]);
        let (event, who, expected) = match r.what {
            Happening::Granted(p) => {
                let c = credential_of(p);
                (
                    AuditEvent::UnlockGranted {
                        credential_id: c.unwrap_or(strange),
                        door_id,
                    },
                    c.map(|_| p % n),
                    Some((AccessOutcome::Granted, Some(AccessMethod::Ble), None, None)),
                )
            }
            Happening::Denied(p) => {
                let c = credential_of(p);
                (
                    AuditEvent::UnlockDenied {
                        credential_id: Some(c.unwrap_or(strange)),
                        reason: DenyReason::Revoked,
                    },
                    c.map(|_| p % n),
                    Some((
                        AccessOutcome::Denied,
                        Some(AccessMethod::Ble),
                        Some("revoked"),
                        None,
                    )),
                )
            }
            Happening::DeniedUntrusted => (
                AuditEvent::UnlockDenied {
                    credential_id: None,
                    reason: DenyReason::ClockUntrusted,
                },
                None,
                Some((
                    AccessOutcome::Denied,
                    Some(AccessMethod::Ble),
                    Some("clock_untrusted"),
                    None,
                )),
            ),
            Happening::Doorcode(p, granted) => (
                AuditEvent::DoorcodeEntry {
                    person_id: Some(Id::from_hex(&people[p % n].json.id).unwrap()),
                    granted,
                },
                Some(p % n),
                Some(if granted {
                    (
                        AccessOutcome::Granted,
                        Some(AccessMethod::Doorcode),
                        None,
                        None,
                    )
                } else {
                    (
                        AccessOutcome::Denied,
                        Some(AccessMethod::Doorcode),
                        Some("doorcode_not_valid"),
                        None,
                    )
                }),
            ),
            Happening::WrongCode => (
                AuditEvent::DoorcodeEntry {
                    person_id: None,
                    granted: false,
                },
                None,
                Some((
                    AccessOutcome::Denied,
                    Some(AccessMethod::Doorcode),
                    Some("unknown_doorcode"),
                    None,
                )),
            ),
            Happening::StrangeCredential => (
                AuditEvent::UnlockGranted {
                    credential_id: strange,
                    door_id,
                },
                None,
                Some((AccessOutcome::Granted, Some(AccessMethod::Ble), None, None)),
            ),
            Happening::Sync => (AuditEvent::SyncApplied { iteration: seq + 1 }, None, None),
            Happening::Clock => (AuditEvent::ClockSet { step: -3 }, None, None),
            // A drop record names seqs below its own; at seq 0 there are none to name.
            Happening::Dropped if seq == 0 => {
                (AuditEvent::SyncApplied { iteration: 1 }, None, None)
            }
            Happening::Dropped => (
                AuditEvent::RecordsDropped {
                    count: 1,
                    through_seq: seq - 1,
                },
                None,
                Some((AccessOutcome::RecordsLost, None, None, Some(1))),
            ),
        };
        let at = t0 + r.offset;
        let record = AuditRecord {
            epoch: epochs[d],
            seq,
            at,
            event,
        };
        signed[d].push(b64(&record.sign(&locks[d])));
        if let Some((outcome, method, deny_reason, lost)) = expected {
            let entry = Expected {
                at,
                outcome,
                method,
                person_id: who.map(|p| people[p].json.id.clone()),
                deny_reason: deny_reason.map(Into::into),
                lost,
            };
            held[d].insert((at, epochs[d].0, seq), (who, entry));
        }
    }
    for (d, records) in signed.into_iter().enumerate() {
        if records.is_empty() {
            continue;
        }
        let count = records.len() as u32;
        let receipt: AuditReceipt = s
            .ok(
                "POST",
                &format!("/v1/locks/{}/audit", doors[d].lock_id),
                people[0].phone.token(),
                Some(&json!({ "records": records })),
                200,
            )
            .await;
        prop_assert_eq!(receipt.stored, count);
    }

    let mut limits = case.limits.iter().cycle();
    for (p, person) in people.iter().enumerate() {
        let spec = &case.people[p];
        for (d, door) in doors.iter().enumerate() {
            let door_unit = case.doors[d].unit;
            let own = !spec.guest && spec.unit.is_some() && spec.unit == door_unit;
            let holds = spec.doors & (1 << d) != 0;
            let path = format!("/v1/me/doors/{}/access-log", door.id);
            if !own && !holds {
                let (status, body) = s.call("GET", &path, person.phone.token(), None).await;
                prop_assert_eq!(status, 404, "person {} door {}: {}", p, d, body);
                continue;
            }
            // The oracle: newest first; everything at an own-unit door, else only their own.
            let expected: Vec<Expected> = held[d]
                .values()
                .rev()
                .filter(|(who, _)| own || *who == Some(p))
                .map(|(_, e)| e.clone())
                .collect();
            let limit = *limits.next().unwrap();
            let mut got: Vec<Expected> = Vec::new();
            let mut before: Option<String> = None;
            loop {
                let query = match &before {
                    Some(b) => format!("{path}?limit={limit}&before={b}"),
                    None => format!("{path}?limit={limit}"),
                };
                let page: AccessLogPage = s
                    .ok("GET", &query, person.phone.token(), None::<&()>, 200)
                    .await;
                prop_assert!(page.entries.len() <= limit as usize);
                for e in &page.entries {
                    if !own {
                        // The security property, said on its own.
                        prop_assert_eq!(
                            e.person_id.as_deref(),
                            Some(person.json.id.as_str()),
                            "person {} sees someone else's entry at shared door {}",
                            p,
                            d
                        );
                    }
                    if let Some(id) = &e.person_id {
                        let named = people.iter().find(|q| &q.json.id == id).unwrap();
                        prop_assert_eq!(e.person_name.as_deref(), Some(named.json.name.as_str()));
                    }
                }
                got.extend(page.entries.iter().map(Expected::from));
                match page.next {
                    Some(next) => {
                        prop_assert_eq!(page.entries.len(), limit as usize);
                        prop_assert_eq!(Some(&next), page.entries.last().map(|e| &e.cursor));
                        before = Some(next);
                    }
                    None => break,
                }
            }
            prop_assert_eq!(got, expected, "person {} door {} (own unit: {})", p, d, own);
        }
    }
    s.handle.stop().await;
    Ok(())
}

#[test]
fn the_access_log_shows_own_entries_everywhere_and_everything_only_at_own_unit_doors() {
    let cases = std::env::var("ACCESS_LOG_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16);
    let config = ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest::test_runner::TestRunner::new(config)
        .run(&case(), |case| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap()
                .block_on(run(case))
        })
        .unwrap_or_else(|e| panic!("{e}"));
}

/// Alice holds the Lobby and her unit's door; the Gym is someone else's.
async fn alice() -> (
    TestServer,
    Manager,
    PersonJson,
    Phone,
    Vec<DoorJson>,
    KeyJson,
) {
    let s = TestServer::start().await;
    let m = Manager::create(&s, "1800 Main St", "America/New_York").await;
    let lobby = m.door(&s, "Lobby", false).await;
    let home = m.door(&s, "Unit 101", false).await;
    let gym = m.door(&s, "Gym", false).await;
    let key = m
        .key(
            &s,
            "Unit 101",
            vec![
                door_entry(&lobby, true, None),
                door_entry(&home, true, None),
            ],
        )
        .await;
    let alice = m
        .person(&s, "Alice", "resident", Some("alice@example.com"))
        .await;
    m.assign(&s, &alice, &key, false).await;
    let phone = Phone::sign_in(&s, "alice@example.com").await;
    phone.doors(&s).await;
    (s, m, alice, phone, vec![lobby, home, gym], key)
}

#[tokio::test]
async fn a_door_never_had_is_not_found_and_bad_parameters_name_their_field() {
    let (s, m, alice, phone, doors, _) = alice().await;
    let log = |door: &str, query: &str| format!("/v1/me/doors/{door}/access-log{query}");
    let call = |path: String| {
        let s = &s;
        let token = phone.token().to_owned();
        async move { s.call("GET", &path, &token, None).await }
    };
    let page = |v: Value| serde_json::from_value::<AccessLogPage>(v).unwrap();
    let (status, body) = call(log(&doors[0].id, "")).await;
    assert_eq!(
        (status, page(body)),
        (
            200,
            AccessLogPage {
                entries: vec![],
                next: None
            }
        )
    );
    // The Gym exists but was never Alice's; the other id names no door: the same answer.
    for door in [doors[2].id.clone(), "00".repeat(16)] {
        let (status, body) = call(log(&door, "")).await;
        assert_eq!(
            (status, body["code"].as_str(), body["field"].as_str()),
            (404, Some("not_found"), Some("door_id"))
        );
    }
    // A door of another property is not found either.
    let other = Manager::create(&s, "Elsewhere", "America/New_York").await;
    let theirs = other.door(&s, "Lobby", false).await;
    assert_eq!(call(log(&theirs.id, "")).await.0, 404);
    for (door, query, field) in [
        ("xyz".to_owned(), "", "door_id"),
        (doors[0].id.clone(), "?limit=0", "limit"),
        (doors[0].id.clone(), "?limit=201", "limit"),
        (doors[0].id.clone(), "?limit=-1", "limit"),
        (doors[0].id.clone(), "?limit=ten", "limit"),
        (doors[0].id.clone(), "?before=yesterday", "before"),
        (doors[0].id.clone(), "?before=1:0102:3", "before"),
    ] {
        let (status, body) = call(log(&door, query)).await;
        assert_eq!(
            (status, body["field"].as_str()),
            (422, Some(field)),
            "{query}: {body}"
        );
    }
    // Units are the manager's to set, checked like any field.
    let unit = |path: String, unit: Value| {
        let s = &s;
        let key = m.key.clone();
        async move {
            s.call("PUT", &path, &key, Some(&json!({ "unit": unit })))
                .await
        }
    };
    let (status, body) = unit(m.path(&format!("/doors/{}/unit", doors[1].id)), json!("  ")).await;
    assert_eq!((status, body["field"].as_str()), (422, Some("unit")));
    let (status, _) = unit(m.path(&format!("/doors/{}/unit", theirs.id)), json!("101")).await;
    assert_eq!(status, 404, "another property's door");
    let (status, _) = unit(
        m.path(&format!("/people/{}/unit", "00".repeat(16))),
        json!("101"),
    )
    .await;
    assert_eq!(status, 404);
    let (status, body) = unit(
        m.path(&format!("/doors/{}/unit", doors[1].id)),
        json!(" 101 "),
    )
    .await;
    assert_eq!((status, body), (200, json!({"unit": "101"})));
    let read = |path: String| {
        let s = &s;
        let key = m.key.clone();
        async move { s.call("GET", &path, &key, None).await }
    };
    assert_eq!(
        read(m.path(&format!("/doors/{}/unit", doors[1].id))).await,
        (200, json!({"unit": "101"}))
    );
    assert_eq!(
        read(m.path(&format!("/people/{}/unit", alice.id))).await,
        (200, json!({"unit": null})),
        "no unit until the manager names one"
    );
    assert_eq!(
        read(m.path(&format!("/doors/{}/unit", theirs.id))).await.0,
        404
    );
}

#[tokio::test]
async fn a_person_whose_key_was_taken_still_sees_their_own_past_entries() {
    let (s, m, alice, phone, doors, key) = alice().await;
    let credential = Id::from_hex(&phone.doors(&s).await.credential_id.unwrap()).unwrap();
    let lock = LockKey::generate(&mut rand::rngs::OsRng);
    // A door whose lock key the test holds, in Alice's key.
    let gate: DoorJson = s
        .ok(
            "POST",
            &m.path("/doors"),
            &m.key,
            Some(&json!({"name": "Gate", "online": false,
                "lock_public_key": b64(&lock.public().to_sec1_compressed())})),
            201,
        )
        .await;
    let update = NewKey {
        name: "Unit 101".into(),
        doors: [&doors[0], &doors[1], &gate]
            .into_iter()
            .map(|d| door_entry(d, true, None))
            .collect(),
    };
    let _: KeyJson = s
        .ok(
            "PUT",
            &m.path(&format!("/keys/{}", key.id)),
            &m.key,
            Some(&update),
            200,
        )
        .await;
    let credential_now = phone.doors(&s).await.credential_id.unwrap();
    assert_ne!(
        credential_now,
        credential.to_string(),
        "a new document for the gate"
    );
    let epoch = AuditEpoch([7; 8]);
    let records: Vec<String> = (0..3u64)
        .map(|seq| {
            let event = AuditEvent::UnlockGranted {
                credential_id: Id::from_hex(&credential_now).unwrap(),
                door_id: Id::from_hex(&gate.id).unwrap(),
            };
            b64(&AuditRecord {
                epoch,
                seq,
                at: s.now() + seq as i64,
                event,
            }
            .sign(&lock))
        })
        .collect();
    let _: AuditReceipt = s
        .ok(
            "POST",
            &format!("/v1/locks/{}/audit", gate.lock_id),
            phone.token(),
            Some(&json!({ "records": records })),
            200,
        )
        .await;
    m.unassign(&s, &alice, &key).await;
    let page: AccessLogPage = s
        .ok(
            "GET",
            &format!("/v1/me/doors/{}/access-log", gate.id),
            phone.token(),
            None::<&()>,
            200,
        )
        .await;
    assert_eq!(
        page.entries
            .iter()
            .map(|e| (e.at, e.person_name.as_deref()))
            .collect::<Vec<_>>(),
        (0..3)
            .rev()
            .map(|i| (s.now() + i, Some("Alice")))
            .collect::<Vec<_>>(),
        "had access: her own entries stay hers to see"
    );
}

/// A page is read by scanning the lock's records newest first: at a busy shared door, a
/// resident whose own entries are old scans all the others' first. 10,000 records, the
/// person's 20 the oldest (stored straight into SQLite, as the upload would after verifying
/// them); the figure goes to docs/PERFORMANCE.md.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_at_a_busy_shared_door_scans_ten_thousand_records_in_well_under_a_second() {
    const RECORDS: u64 = 10_000;
    let (s, m, alice, phone, doors, _) = alice().await;
    let lobby = &doors[0];
    let credential = Id::from_hex(&phone.doors(&s).await.credential_id.unwrap()).unwrap();
    let lock = LockKey::generate(&mut rand::rngs::OsRng);
    let (epoch, door_id, t0) = (
        AuditEpoch([9; 8]),
        Id::from_hex(&lobby.id).unwrap(),
        s.now(),
    );
    let lock_id = Id::from_hex(&lobby.lock_id).unwrap();
    s.handle
        .state
        .db
        .write(|tx| {
            for seq in 0..RECORDS {
                let credential_id = match seq < 20 {
                    true => credential,
                    false => Id([(seq % 200) as u8; 16]),
                };
                let event = AuditEvent::UnlockGranted {
                    credential_id,
                    door_id,
                };
                let at = t0 + seq as i64;
                let record = AuditRecord {
                    epoch,
                    seq,
                    at,
                    event,
                }
                .sign(&lock);
                tx.execute(
                    "INSERT INTO audit_records (lock_id, epoch, seq, at, record, received_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?4)",
                    rusqlite::params![&lock_id.0[..], &epoch.0[..], seq as i64, at, record],
                )?;
            }
            Ok(())
        })
        .unwrap();
    let path = format!("/v1/me/doors/{}/access-log?limit=50", lobby.id);
    let timed = || async {
        let started = std::time::Instant::now();
        let page: AccessLogPage = s.ok("GET", &path, phone.token(), None::<&()>, 200).await;
        (page, started.elapsed())
    };
    let (page, shared) = timed().await;
    assert_eq!(
        page.entries.iter().map(|e| e.at).collect::<Vec<_>>(),
        (0..20).rev().map(|i| t0 + i).collect::<Vec<_>>()
    );
    assert!(page.next.is_none());
    // The same door as Alice's unit: the page stops after 51 records.
    for (path, id) in [("doors", &lobby.id), ("people", &alice.id)] {
        let unit = json!({"unit": "101"});
        let _: UnitJson = s
            .ok(
                "PUT",
                &m.path(&format!("/{path}/{id}/unit")),
                &m.key,
                Some(&unit),
                200,
            )
            .await;
    }
    let (page, own) = timed().await;
    assert_eq!(
        (page.entries.len(), page.entries[0].at),
        (50, t0 + RECORDS as i64 - 1)
    );
    eprintln!("access log page over {RECORDS} records: shared door (scans all) {shared:?}, own-unit door {own:?}");
    assert!(shared < std::time::Duration::from_secs(1), "{shared:?}");
}
