//! Door Sync over real HTTP: bundles for one lock (full, deltas, up to date), applied by the
//! reference lock; audit acknowledgements; signed time; and what is refused.

mod common;

use common::*;
use door_lock::{Lock, LockClock};
use door_protocol::sync::DoorcodeDenied;
use door_protocol::{
    inspect_bundle, open_bundle, verify_signed_time, AuditAck, AuditEvent, AuditRecord,
    DoorcodeResult, Id, IssuerKeys, IssuerPublicKey, LockConfig, LockKey, SyncError,
};
use door_server::audit::{AuditAckJson, AuditReceipt};
use door_server::model::*;
use door_server::sync::KEPT_SNAPSHOTS;
use serde_json::json;
use tempfile::TempDir;

/// One property with one offline keypad door whose lock key the test holds, a lock applying
/// its bundles, and two residents with doorcodes there.
struct Site {
    s: TestServer,
    m: Manager,
    door: DoorJson,
    home: KeyJson,
    issuer_keys: IssuerKeys,
    lock: Lock,
    _lock_dir: TempDir,
    alice: PersonJson,
    phone: Phone,
    bob: PersonJson,
    bob_phone: Phone,
}

async fn site() -> Site {
    let s = TestServer::start().await;
    let m = Manager::create(&s, "1800 Main St", "America/New_York").await;
    let lock_key = LockKey::generate(&mut rand::rngs::OsRng);
    let door: DoorJson = s
        .ok(
            "POST",
            &m.path("/doors"),
            &m.key,
            Some(&json!({"name": "Lobby", "online": false, "keypad": true,
                "lock_public_key": b64(&lock_key.public().to_sec1_compressed())})),
            201,
        )
        .await;
    let home = m
        .key(&s, "Lobby", vec![door_entry(&door, true, None)])
        .await;
    let alice = m
        .person(&s, "Alice", "resident", Some("alice@example.com"))
        .await;
    let bob = m
        .person(&s, "Bob", "resident", Some("bob@example.com"))
        .await;
    m.assign(&s, &alice, &home, true).await;
    m.assign(&s, &bob, &home, false).await;
    let phone = Phone::sign_in(&s, "alice@example.com").await;
    let bob_phone = Phone::sign_in(&s, "bob@example.com").await;
    // Bob's phone holds a document for the door, so revoking Bob must reach the lock.
    bob_phone.doors(&s).await;
    let issuer =
        IssuerPublicKey::from_sec1(&unb64(&m.property.issuer_public_key)).expect("issuer key");
    let issuer_keys = IssuerKeys::single(issuer);
    let config = LockConfig::new(
        lock_id(&door),
        Id::from_hex(&door.id).unwrap(),
        lock_key,
        issuer_keys.clone(),
    );
    let lock_dir = TempDir::new().unwrap();
    let lock = Lock::open(lock_dir.path(), config, LockClock::fixed(s.now())).unwrap();
    Site {
        s,
        m,
        door,
        home,
        issuer_keys,
        lock,
        _lock_dir: lock_dir,
        alice,
        phone,
        bob,
        bob_phone,
    }
}

fn lock_id(door: &DoorJson) -> Id {
    Id::from_hex(&door.lock_id).unwrap()
}

async fn fetch(s: &TestServer, token: &str, lock: &str, since: u64) -> SyncBundleJson {
    s.ok(
        "GET",
        &format!("/v1/locks/{lock}/bundle?since={since}"),
        token,
        None::<&()>,
        200,
    )
    .await
}

fn bytes(b: &SyncBundleJson) -> Vec<u8> {
    let bytes = unb64(b.bundle.as_deref().expect("a bundle"));
    assert_eq!(bytes.len(), b.size as usize);
    bytes
}

async fn doorcode(site: &Site, person: &PersonJson) -> String {
    let codes = site.m.doorcodes(&site.s, person).await;
    let at_door = codes.iter().find(|c| c.door_id == site.door.id).unwrap();
    at_door.code.clone()
}

#[tokio::test]
async fn the_first_fetch_is_a_full_bundle_only_the_lock_can_open() {
    let site = site().await;
    let s = &site.s;
    let first = fetch(s, site.phone.token(), &site.door.lock_id, 0).await;
    assert_eq!(
        (
            first.lock_id.as_str(),
            first.iteration,
            first.base_iteration,
            first.up_to_date
        ),
        (site.door.lock_id.as_str(), 1, 0, false)
    );
    let signed = bytes(&first);
    let info = inspect_bundle(&signed, &site.issuer_keys).unwrap();
    assert_eq!(
        (
            info.lock_id,
            info.iteration,
            info.base_iteration,
            info.issued_at
        ),
        (lock_id(&site.door), 1, 0, s.now())
    );
    assert!(info.doorcodes && info.floors == 0);

    // The doorcodes are sealed: a key other than the lock's does not open them.
    let impostor = LockConfig::new(
        lock_id(&site.door),
        Id::from_hex(&site.door.id).unwrap(),
        LockKey::generate(&mut rand::rngs::OsRng),
        site.issuer_keys.clone(),
    );
    assert_eq!(
        open_bundle(&signed, &impostor).unwrap_err(),
        SyncError::Undecryptable
    );
    let opened = open_bundle(&signed, site.lock.config()).unwrap();
    let mut people: Vec<Id> = opened
        .bundle()
        .doorcodes
        .added
        .iter()
        .map(|c| c.person_id)
        .collect();
    people.sort();
    let mut expected = [&site.alice, &site.bob].map(|p| Id::from_hex(&p.id).unwrap());
    expected.sort();
    assert_eq!(people, expected);
    assert!(opened
        .bundle()
        .doorcodes
        .added
        .iter()
        .all(|c| c.expires_at.is_none()));

    // The lock applies it and opens for Alice's code.
    let applied = site.lock.apply_bundle(&signed).unwrap();
    assert!(applied.full && applied.iteration == 1);
    assert_eq!(site.lock.doorcodes(), 2);
    assert_eq!(
        site.lock
            .enter_doorcode(&doorcode(&site, &site.alice).await)
            .unwrap(),
        DoorcodeResult::Granted {
            person_id: Id::from_hex(&site.alice.id).unwrap()
        }
    );

    // Nothing changed: the lock is up to date, whoever asks.
    let again = fetch(s, site.bob_phone.token(), &site.door.lock_id, 1).await;
    assert_eq!(
        again,
        SyncBundleJson {
            lock_id: site.door.lock_id.clone(),
            iteration: 1,
            base_iteration: 1,
            up_to_date: true,
            bundle: None,
            size: 0,
        }
    );
}

#[tokio::test]
async fn revoking_a_guest_is_a_small_delta_the_lock_applies() {
    let site = site().await;
    let s = &site.s;
    let full = fetch(s, site.phone.token(), &site.door.lock_id, 0).await;
    site.lock.apply_bundle(&bytes(&full)).unwrap();

    // Alice invites a guest, whose phone picks up a document for the door; inviting changes
    // nothing the lock holds (guests get no doorcode, and nothing is revoked).
    let now = s.now();
    let invited: InvitedGuest = s
        .ok(
            "POST",
            "/v1/me/guests",
            site.phone.token(),
            Some(
                &json!({"door_ids": [site.door.id], "contact": "+1 555 0100",
                "starts_at": now, "ends_at": now + 86_400}),
            ),
            201,
        )
        .await;
    let tokens: Tokens = s
        .ok(
            "POST",
            "/v1/auth/invite",
            "",
            Some(&RedeemInvite {
                invite_token: invited.invite_token,
            }),
            200,
        )
        .await;
    let guest = Phone::with_tokens(s, tokens).await;
    let credential = guest.doors(s).await.person_id;
    assert!(
        fetch(s, site.phone.token(), &site.door.lock_id, 1)
            .await
            .up_to_date
    );

    let _: GuestJson = s
        .ok(
            "DELETE",
            &format!("/v1/me/guests/{}", invited.guest.id),
            site.phone.token(),
            None::<&()>,
            200,
        )
        .await;
    let delta = fetch(s, site.phone.token(), &site.door.lock_id, 1).await;
    assert_eq!(
        (delta.iteration, delta.base_iteration, delta.up_to_date),
        (2, 1, false)
    );
    assert!(
        delta.size < 300,
        "a one-revocation delta is {} bytes",
        delta.size
    );
    let signed = bytes(&delta);
    let opened = open_bundle(&signed, site.lock.config()).unwrap();
    let revoked: Vec<String> = opened
        .bundle()
        .floors
        .iter()
        .map(|r| r.person_id.to_string())
        .collect();
    assert_eq!(revoked, [credential]);
    assert!(opened.bundle().doorcodes.is_empty());
    let applied = site.lock.apply_bundle(&signed).unwrap();
    assert!(!applied.full && applied.iteration == 2);
    assert_eq!(
        site.lock.doorcodes(),
        2,
        "a delta keeps what it does not touch"
    );

    // A lock that lost its state, or a phone that does not know, gets the whole of iteration 2.
    let again = fetch(s, site.phone.token(), &site.door.lock_id, 0).await;
    assert_eq!((again.iteration, again.base_iteration), (2, 0));
    let info = inspect_bundle(&bytes(&again), &site.issuer_keys).unwrap();
    assert_eq!((info.floors, info.doorcodes), (1, true));
    // The lock cannot be ahead of the server.
    let (status, err) = s
        .call(
            "GET",
            &format!("/v1/locks/{}/bundle?since=3", site.door.lock_id),
            site.phone.token(),
            None,
        )
        .await;
    assert_eq!((status, err["field"].as_str()), (422, Some("since")));
}

#[tokio::test]
async fn unassigning_a_key_revokes_and_removes_the_doorcode_in_a_delta() {
    let site = site().await;
    let s = &site.s;
    site.lock
        .apply_bundle(&bytes(
            &fetch(s, site.phone.token(), &site.door.lock_id, 0).await,
        ))
        .unwrap();
    let bob_code = doorcode(&site, &site.bob).await;
    let bob_credential = site.bob_phone.doors(s).await.person_id;

    site.m.unassign(s, &site.bob, &site.home).await;
    let delta = fetch(s, site.phone.token(), &site.door.lock_id, 1).await;
    assert_eq!((delta.iteration, delta.base_iteration), (2, 1));
    let signed = bytes(&delta);
    let opened = open_bundle(&signed, site.lock.config()).unwrap();
    let b = opened.bundle();
    assert_eq!(b.floors.len(), 1);
    assert_eq!(b.floors[0].person_id.to_string(), bob_credential);
    assert!(b.floors[0].expires_at > s.now());
    assert!(b.doorcodes.added.is_empty());
    assert_eq!(b.doorcodes.removed, [Id::from_hex(&site.bob.id).unwrap()]);
    site.lock.apply_bundle(&signed).unwrap();
    assert_eq!(site.lock.doorcodes(), 1);
    assert_eq!(
        site.lock.enter_doorcode(&bob_code).unwrap(),
        DoorcodeResult::Denied(DoorcodeDenied::Unknown)
    );
}

#[tokio::test]
async fn a_floor_expires_with_the_documents_it_voids_and_a_new_narrowing_raises_it_by_delta() {
    let site = site().await;
    let s = &site.s;
    site.m.unassign(s, &site.bob, &site.home).await;
    let first = fetch(s, site.phone.token(), &site.door.lock_id, 0).await;
    site.lock.apply_bundle(&bytes(&first)).unwrap();
    let revoked = inspect_bundle(&bytes(&first), &site.issuer_keys).unwrap();
    assert_eq!(revoked.floors, 1);

    // The floor expires with Bob's last document: the lock drops it by itself, so a delta
    // (with nothing in it) says enough.
    let documents_end: i64 = s
        .handle
        .state
        .db
        .read(|tx| {
            Ok(
                tx.query_row("SELECT MAX(expires_at) FROM person_floors", [], |r| {
                    r.get(0)
                })?,
            )
        })
        .unwrap();
    s.set_now(documents_end);
    let tokens: Tokens = s
        .ok(
            "POST",
            "/v1/auth/login",
            "",
            Some(&Login {
                email: "alice@example.com".into(),
                password: "correct horse battery".into(),
            }),
            200,
        )
        .await;
    let expired = fetch(s, &tokens.access_token, &site.door.lock_id, 1).await;
    assert_eq!((expired.iteration, expired.base_iteration), (2, 1));
    let info = inspect_bundle(&bytes(&expired), &site.issuer_keys).unwrap();
    assert_eq!((info.floors, info.doorcodes), (0, false));

    // Bob gets the key back, fetches new documents, loses it again: his floor rises above
    // the new documents, and a delta says so (floors only ever rise).
    site.m.assign(s, &site.bob, &site.home, false).await;
    let relogin = Phone::sign_in(s, "bob@example.com").await;
    relogin.doors(s).await;
    site.m.unassign(s, &site.bob, &site.home).await;
    let raised = fetch(s, &tokens.access_token, &site.door.lock_id, 2).await;
    assert_eq!((raised.iteration, raised.base_iteration), (3, 2));
    let opened = open_bundle(&bytes(&raised), site.lock.config()).unwrap();
    let floors = &opened.bundle().floors;
    assert_eq!(floors.len(), 1);
    assert_eq!(floors[0].person_id.to_string(), site.bob.id);
    assert!(floors[0].floor > revoked_floor(&site, &site.bob.id));
}

/// The highest access iteration the server ever issued `person`.
fn revoked_floor(site: &Site, person: &str) -> u64 {
    site.s
        .handle
        .state
        .db
        .read(|tx| {
            Ok(tx.query_row(
                "SELECT MAX(access_iteration) FROM credentials WHERE person_id = ?1",
                [hex::decode(person).unwrap()],
                |r| r.get::<_, i64>(0),
            )? as u64)
        })
        .unwrap()
}

async fn upload(site: &Site, records: &[Vec<u8>]) -> AuditReceipt {
    site.s
        .ok(
            "POST",
            &format!("/v1/locks/{}/audit", site.door.lock_id),
            site.phone.token(),
            Some(&json!({"records": records.iter().map(|r| b64(r)).collect::<Vec<_>>()})),
            200,
        )
        .await
}

#[tokio::test]
async fn a_wiped_locks_new_records_reach_the_server_and_the_old_epochs_ack_frees_none() {
    let site = site().await;
    let s = &site.s;
    let token = site.phone.token();
    let lock_id = &site.door.lock_id;
    // The lock's first log: a sync record and two wrong codes, seqs 0-2.
    let full = fetch(s, token, lock_id, 0).await;
    site.lock.apply_bundle(&bytes(&full)).unwrap();
    site.lock.enter_doorcode("0000").unwrap();
    site.lock.enter_doorcode("0001").unwrap();
    let old = site.lock.audit_epoch();
    let old_records = site.lock.audit_records();
    assert_eq!(old_records.len(), 3);
    // Records 0 and 1 reach the server; a phone keeps record 2 in its pocket.
    let receipt = upload(&site, &old_records[..2]).await;
    assert_eq!((receipt.stored, receipt.refused), (2, 0));

    // A minute later the lock is wiped: a new epoch, numbered from 0 again.
    site.lock.clock().advance(60);
    site.lock.wipe().unwrap();
    let new = site.lock.audit_epoch();
    assert_ne!(new, old);
    site.lock.enter_doorcode("0002").unwrap();
    // The server has seen nothing of the new log: its bundle acknowledges the old one up to 2,
    // which must not free the new record 0 the server never received.
    let bundle = fetch(s, token, lock_id, 0).await;
    let info = inspect_bundle(&bytes(&bundle), &site.issuer_keys).unwrap();
    assert_eq!(
        info.audit_ack,
        Some(AuditAck {
            epoch: old,
            below: 2
        })
    );
    let applied = site.lock.apply_bundle(&bytes(&bundle)).unwrap();
    assert_eq!(applied.freed, 0);
    assert_eq!(
        site.lock.pending_audit(),
        2,
        "the wrong code and the sync record"
    );

    // The new records (seqs 0 and 1 again) are stored beside the old ones, not refused.
    let receipt = upload(&site, &site.lock.audit_records()).await;
    assert_eq!(
        (receipt.stored, receipt.duplicates, receipt.refused),
        (2, 0, 0),
        "{receipt:?}"
    );
    let new_ack = Some(AuditAckJson {
        epoch: new.to_string(),
        below: 2,
    });
    assert_eq!(receipt.acknowledged, new_ack);
    // The old log's last record arrives late: stored, and the acknowledgement stays on the
    // new epoch (its records are newer by the lock's signed clock).
    let late = upload(&site, &old_records[2..]).await;
    assert_eq!((late.stored, late.acknowledged), (1, new_ack));

    let delta = fetch(s, token, lock_id, bundle.iteration).await;
    let info = inspect_bundle(&bytes(&delta), &site.issuer_keys).unwrap();
    assert_eq!(
        info.audit_ack,
        Some(AuditAck {
            epoch: new,
            below: 2
        })
    );
    let applied = site.lock.apply_bundle(&bytes(&delta)).unwrap();
    assert_eq!(applied.freed, 2, "now the new records leave the lock");

    // The manager's trail shows both logs, each under its epoch, the old one first.
    let trail: Vec<door_server::audit::AuditEntry> = s
        .ok("GET", &site.m.path("/audit"), &site.m.key, None::<&()>, 200)
        .await;
    assert_eq!(
        trail
            .iter()
            .map(|e| (e.epoch.clone(), e.seq))
            .collect::<Vec<_>>(),
        [
            (old.to_string(), 0),
            (old.to_string(), 1),
            (old.to_string(), 2),
            (new.to_string(), 0),
            (new.to_string(), 1),
        ]
    );
}

#[tokio::test]
async fn uploaded_audit_records_are_acknowledged_in_the_next_iteration() {
    let site = site().await;
    let s = &site.s;
    let full = fetch(s, site.phone.token(), &site.door.lock_id, 0).await;
    site.lock.apply_bundle(&bytes(&full)).unwrap();
    // Applying recorded a sync-applied record; the phone pulls it and uploads it.
    let records = site.lock.audit_records();
    assert_eq!(records.len(), 1);
    let receipt: door_server::audit::AuditReceipt = s
        .ok(
            "POST",
            &format!("/v1/locks/{}/audit", site.door.lock_id),
            site.phone.token(),
            Some(&json!({"records": records.iter().map(|r| b64(r)).collect::<Vec<_>>()})),
            200,
        )
        .await;
    let epoch = site.lock.audit_epoch();
    assert_eq!(
        receipt.acknowledged,
        Some(AuditAckJson {
            epoch: epoch.to_string(),
            below: 1
        })
    );

    let delta = fetch(s, site.phone.token(), &site.door.lock_id, 1).await;
    assert_eq!((delta.iteration, delta.base_iteration), (2, 1));
    let info = inspect_bundle(&bytes(&delta), &site.issuer_keys).unwrap();
    assert_eq!(
        (info.audit_ack, info.floors, info.doorcodes),
        (Some(AuditAck { epoch, below: 1 }), 0, false)
    );
    let applied = site.lock.apply_bundle(&bytes(&delta)).unwrap();
    assert_eq!(applied.freed, 1, "the acknowledged record leaves the lock");
}

#[tokio::test]
async fn a_lock_older_than_the_kept_snapshots_gets_a_full_bundle() {
    let site = site().await;
    let s = &site.s;
    let token = site.phone.token();
    fetch(s, token, &site.door.lock_id, 0).await;
    // Each upload acknowledges one more record: one more iteration each.
    let key = site.lock.config().key.clone();
    for seq in 0..KEPT_SNAPSHOTS {
        let record = AuditRecord {
            epoch: site.lock.audit_epoch(),
            seq,
            at: s.now(),
            event: AuditEvent::SyncApplied { iteration: 1 },
        }
        .sign(&key);
        let (status, body) = s
            .call(
                "POST",
                &format!("/v1/locks/{}/audit", site.door.lock_id),
                token,
                Some(&json!({"records": [b64(&record)]})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert!(
            !fetch(s, token, &site.door.lock_id, seq + 1)
                .await
                .up_to_date
        );
    }
    let latest = KEPT_SNAPSHOTS + 1;
    let oldest_kept = latest - KEPT_SNAPSHOTS + 1;
    let pruned = fetch(s, token, &site.door.lock_id, oldest_kept - 1).await;
    assert_eq!((pruned.iteration, pruned.base_iteration), (latest, 0));
    let kept = fetch(s, token, &site.door.lock_id, oldest_kept).await;
    assert_eq!((kept.iteration, kept.base_iteration), (latest, oldest_kept));
}

#[tokio::test]
async fn signed_time_verifies_under_the_issuer_key_and_names_the_lock() {
    let site = site().await;
    let s = &site.s;
    let for_lock: SignedTimeJson = s
        .ok(
            "GET",
            &format!("/v1/time?lock_id={}", site.door.lock_id),
            site.phone.token(),
            None::<&()>,
            200,
        )
        .await;
    assert_eq!(for_lock.time, s.now());
    let verified = verify_signed_time(&unb64(&for_lock.signed_time), &site.issuer_keys).unwrap();
    assert_eq!(
        (verified.time, verified.lock_id),
        (s.now(), Some(lock_id(&site.door)))
    );
    let any: SignedTimeJson = s
        .ok("GET", "/v1/time", site.phone.token(), None::<&()>, 200)
        .await;
    let verified = verify_signed_time(&unb64(&any.signed_time), &site.issuer_keys).unwrap();
    assert_eq!(verified.lock_id, None);
    // Bound to the lock's installation: what commissions a new lock.
    let epoch = site.lock.audit_epoch();
    let bound: SignedTimeJson = s
        .ok(
            "GET",
            &format!("/v1/time?lock_id={}&epoch={epoch}", site.door.lock_id),
            site.phone.token(),
            None::<&()>,
            200,
        )
        .await;
    let verified = verify_signed_time(&unb64(&bound.signed_time), &site.issuer_keys).unwrap();
    assert_eq!(
        (verified.lock_id, verified.epoch),
        (Some(lock_id(&site.door)), Some(epoch))
    );
}

#[tokio::test]
async fn strangers_other_properties_and_bad_input_are_refused() {
    let site = site().await;
    let s = &site.s;
    let token = site.phone.token();
    let lock = &site.door.lock_id;
    let other = Manager::create(s, "Elsewhere", "America/New_York").await;
    let foreign = other.door(s, "Their Lobby", false).await;
    let cases = [
        (format!("/v1/locks/{lock}/bundle?since=0"), "", 401, None),
        (format!("/v1/locks/{lock}/bundle"), "not a token", 401, None),
        (
            format!("/v1/locks/{}/bundle", foreign.lock_id),
            token,
            404,
            None,
        ),
        (
            "/v1/locks/not-hex/bundle".to_owned(),
            token,
            422,
            Some("lock_id"),
        ),
        (
            format!("/v1/locks/{lock}/bundle?since=-1"),
            token,
            422,
            Some("since"),
        ),
        (
            format!("/v1/locks/{lock}/bundle?since=99"),
            token,
            422,
            Some("since"),
        ),
        ("/v1/time".to_owned(), "", 401, None),
        (
            format!("/v1/time?lock_id={}", foreign.lock_id),
            token,
            404,
            None,
        ),
        (
            "/v1/time?lock_id=zz".to_owned(),
            token,
            422,
            Some("lock_id"),
        ),
        (
            "/v1/time?epoch=0011223344556677".to_owned(),
            token,
            422,
            Some("epoch"),
        ),
        (
            format!("/v1/time?lock_id={lock}&epoch=nothex"),
            token,
            422,
            Some("epoch"),
        ),
    ];
    for (path, token, status, field) in cases {
        let (got, err) = s.call("GET", &path, token, None).await;
        assert_eq!(
            (got, err["field"].as_str()),
            (status, field),
            "{path}: {err}"
        );
    }
    // Without a bundle fetched, since=0 works from any person of the property, even one
    // whose doors do not include this lock: the bundle is for the lock, not for the courier.
    let carol = site
        .m
        .person(s, "Carol", "staff", Some("carol@example.com"))
        .await;
    let carol_phone = Phone::sign_in(s, "carol@example.com").await;
    let bundle = fetch(s, carol_phone.token(), lock, 0).await;
    assert_eq!(bundle.iteration, 1);
    // A revoked person may no longer fetch: revoking ends their sessions.
    let (status, _) = s
        .call(
            "POST",
            &site.m.path(&format!("/people/{}/revoke", carol.id)),
            &site.m.key,
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, err) = s
        .call(
            "GET",
            &format!("/v1/locks/{lock}/bundle"),
            carol_phone.token(),
            None,
        )
        .await;
    assert_eq!((status, err["code"].as_str()), (401, Some("unauthorized")));
}
