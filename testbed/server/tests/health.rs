//! Lock health over real HTTP: a lock's signed health records, relayed by any resident's
//! upload, reach the manager's lock list; forged, altered and older records change nothing.

mod common;

use common::*;
use door_protocol::{AuditEpoch, AuditEvent, AuditLog, FirmwareVersion, LockHealth, LockKey};
use door_server::audit::{AuditReceipt, RecordStatus, RefusalReason};
use door_server::health::LockHealthJson;
use door_server::model::*;
use serde_json::json;

/// A property with two offline doors (the lock key of the Lobby's is the test's), its manager,
/// and a resident whose key opens only the Garage: a courier with nothing to do with the Lobby.
struct Site {
    s: TestServer,
    m: Manager,
    lobby: DoorJson,
    lock_key: LockKey,
    alice: PersonJson,
    lobby_key: KeyJson,
    courier: Phone,
}

async fn site() -> Site {
    let s = TestServer::start().await;
    let m = Manager::create(&s, "1800 Main St", "America/New_York").await;
    let lock_key = LockKey::generate(&mut rand::rngs::OsRng);
    let lobby: DoorJson = s
        .ok(
            "POST",
            &m.path("/doors"),
            &m.key,
            Some(&json!({"name": "Lobby", "online": false, "keypad": false,
                "lock_public_key": b64(&lock_key.public().to_sec1_compressed())})),
            201,
        )
        .await;
    let garage = m.door(&s, "Garage", false).await;
    let lobby_key = m
        .key(&s, "Lobby", vec![door_entry(&lobby, false, None)])
        .await;
    let garage_key = m
        .key(&s, "Garage", vec![door_entry(&garage, false, None)])
        .await;
    let alice = m
        .person(&s, "Alice", "resident", Some("alice@example.com"))
        .await;
    m.assign(&s, &alice, &lobby_key, false).await;
    let carol = m
        .person(&s, "Carol", "resident", Some("carol@example.com"))
        .await;
    m.assign(&s, &carol, &garage_key, false).await;
    let courier = Phone::sign_in(&s, "carol@example.com").await;
    Site {
        s,
        m,
        lobby,
        lock_key,
        alice,
        lobby_key,
        courier,
    }
}

fn health(battery_percent: u8, iteration: u64) -> AuditEvent {
    AuditEvent::Health(LockHealth {
        battery_percent,
        firmware: FirmwareVersion::new("door-lock 0.1.0").unwrap(),
        clock_offset: Some(-3),
        iteration,
    })
}

async fn upload(site: &Site, records: &[Vec<u8>]) -> AuditReceipt {
    site.s
        .ok(
            "POST",
            &format!("/v1/locks/{}/audit", site.lobby.lock_id),
            site.courier.token(),
            Some(&json!({"records": records.iter().map(|r| b64(r)).collect::<Vec<_>>()})),
            200,
        )
        .await
}

async fn locks(site: &Site) -> Vec<LockHealthJson> {
    site.s
        .ok("GET", &site.m.path("/locks"), &site.m.key, None::<&()>, 200)
        .await
}

async fn lobby(site: &Site) -> LockHealthJson {
    let all = locks(site).await;
    all.into_iter()
        .find(|l| l.door_id == site.lobby.id)
        .expect("the Lobby is listed")
}

#[tokio::test]
async fn a_health_record_relayed_by_an_unrelated_resident_reaches_the_managers_list() {
    let site = site().await;
    // Before any phone came: listed, no health, never reached.
    let listed = locks(&site).await;
    assert_eq!(
        listed
            .iter()
            .map(|l| l.door_name.as_str())
            .collect::<Vec<_>>(),
        ["Garage", "Lobby"]
    );
    let before = lobby(&site).await;
    assert_eq!((before.health, before.last_upload_at), (None, None));
    assert!(before.latest_iteration >= 1);
    let mut log = AuditLog::new(AuditEpoch([7; 8]));
    let at = site.s.now() - 30;
    log.record(&site.lock_key, at, health(62, 0));
    let records: Vec<Vec<u8>> = log.records().map(<[u8]>::to_vec).collect();
    let receipt = upload(&site, &records).await;
    assert_eq!(receipt.stored, 1);
    let now = lobby(&site).await;
    assert_eq!(now.last_upload_at, Some(site.s.now()));
    let reported = now.health.expect("health reported");
    assert_eq!(reported.reported_at, at);
    assert_eq!(reported.battery_percent, 62);
    assert_eq!(reported.firmware, "door-lock 0.1.0");
    assert_eq!(reported.clock_offset, Some(-3));
    assert_eq!(reported.applied_iteration, 0);
    assert!(
        !reported.up_to_date,
        "the lock lacks iteration {}",
        now.latest_iteration
    );
    // The record is in the audit trail too.
    let trail: Vec<door_server::audit::AuditEntry> = site
        .s
        .ok("GET", &site.m.path("/audit"), &site.m.key, None::<&()>, 200)
        .await;
    assert_eq!(trail.last().map(|e| e.kind.as_str()), Some("health"));
    // Once the lock reports the iteration it lacked, it is up to date, though the upload made
    // a newer iteration (it acknowledges the report itself).
    log.record(&site.lock_key, at + 1, health(61, now.latest_iteration));
    let records: Vec<Vec<u8>> = log.records().map(<[u8]>::to_vec).collect();
    upload(&site, &records).await;
    let after = lobby(&site).await;
    let reported = after.health.unwrap();
    assert_eq!((reported.battery_percent, reported.up_to_date), (61, true));
    assert!(after.latest_iteration > reported.applied_iteration);
    // A change of access at the door: Alice, whose phone holds a document for it, loses her
    // key. The lock lacks that until a phone brings it.
    let alice_phone = Phone::sign_in(&site.s, "alice@example.com").await;
    alice_phone.doors(&site.s).await;
    site.m.unassign(&site.s, &site.alice, &site.lobby_key).await;
    assert!(!lobby(&site).await.health.unwrap().up_to_date);
}

#[tokio::test]
async fn forged_and_altered_health_records_are_refused_and_change_nothing() {
    let site = site().await;
    let at = site.s.now() - 60;
    let mut log = AuditLog::new(AuditEpoch([7; 8]));
    log.record(&site.lock_key, at, health(80, 0));
    upload(
        &site,
        &log.records().map(<[u8]>::to_vec).collect::<Vec<_>>(),
    )
    .await;
    let kept = lobby(&site).await.health;

    // Another key claims the lock is full and current; the lock's own record, altered to say
    // 100 %, no longer verifies.
    let mut forged = AuditLog::new(AuditEpoch([7; 8]));
    forged.record(
        &LockKey::generate(&mut rand::rngs::OsRng),
        at + 10,
        health(100, 99),
    );
    let mut genuine = AuditLog::new(AuditEpoch([7; 8]));
    genuine.record(&site.lock_key, at + 10, health(50, 0));
    let mut altered = genuine.records().next().unwrap().to_vec();
    let payload_at = altered
        .windows(2)
        .position(|w| w == [0x18, 50])
        .expect("battery 50 in the payload");
    altered[payload_at + 1] = 100;
    let forged = forged.records().next().unwrap().to_vec();
    let receipt = upload(&site, &[forged, altered]).await;
    assert_eq!(receipt.refused, 2);
    for r in &receipt.results {
        assert_eq!(
            (r.status, r.reason),
            (RecordStatus::Refused, Some(RefusalReason::Signature))
        );
    }
    assert_eq!(lobby(&site).await.health, kept);
}

#[tokio::test]
async fn an_older_health_record_does_not_overwrite_a_newer_one() {
    let site = site().await;
    let t = site.s.now() - 3600;
    let mut log = AuditLog::new(AuditEpoch([7; 8]));
    let older = log.record(&site.lock_key, t, health(90, 0));
    let newer = log.record(&site.lock_key, t + 600, health(40, 0));
    let same_time_later_seq = log.record(&site.lock_key, t + 600, health(39, 0));
    let signed: Vec<Vec<u8>> = log.records().map(<[u8]>::to_vec).collect();
    assert_eq!((older.seq, newer.seq, same_time_later_seq.seq), (0, 1, 2));
    // Newest first (a phone that pulled late uploads first), then the older ones.
    upload(&site, &signed[2..]).await;
    upload(&site, &signed[..2]).await;
    let kept = lobby(&site).await.health.unwrap();
    assert_eq!((kept.battery_percent, kept.reported_at), (39, t + 600));
    // A newer one still replaces it.
    log.record(&site.lock_key, t + 700, health(38, 0));
    upload(
        &site,
        &log.records().map(<[u8]>::to_vec).collect::<Vec<_>>(),
    )
    .await;
    assert_eq!(lobby(&site).await.health.unwrap().battery_percent, 38);
}

#[tokio::test]
async fn only_the_propertys_manager_lists_its_locks() {
    let site = site().await;
    let (status, _) = site
        .s
        .call("GET", &site.m.path("/locks"), site.courier.token(), None)
        .await;
    assert_eq!(status, 401, "a resident's token is no manager's");
    let other = Manager::create(&site.s, "Elsewhere", "America/New_York").await;
    let (status, body) = site
        .s
        .call("GET", &site.m.path("/locks"), &other.key, None)
        .await;
    assert_eq!(status, 404, "{body}");
}
