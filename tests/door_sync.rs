//! Door Sync through the phones: a revocation reaches an offline lock through an unrelated
//! resident's unlock, audit records travel home, and a manual sync works.

mod common;

use std::time::{Duration, UNIX_EPOCH};

use common::*;
use door_core::{DoorError, DoorEvent, UnlockDenial};
use door_server::seed::PASSWORD;

fn at(t: i64) -> std::time::SystemTime {
    UNIX_EPOCH + Duration::from_secs(t as u64)
}

/// Waits (bounded) until the recorder saw a DoorSynced event for `door_id`.
async fn synced(events: &Recorder, door_id: &str) -> DoorEvent {
    for _ in 0..200 {
        if let Some(e) = events
            .0
            .lock()
            .unwrap()
            .iter()
            .find(|e| matches!(e, DoorEvent::DoorSynced { door_id: d, .. } if d == door_id))
        {
            return e.clone();
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no DoorSynced event for {door_id}");
}

fn audit_count(w: &World) -> u32 {
    w.server
        .state
        .db
        .read(|tx| Ok(tx.query_row("SELECT COUNT(*) FROM audit_records", [], |r| r.get(0))?))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_reaches_an_offline_lock_through_another_residents_unlock() {
    let mut w = World::start().await;
    let url = w.server.url();
    let lobby = w.door_id("Lobby");
    let (alice, _, _) = w.client(&url);
    alice
        .sign_in("alice@1800main.example".into(), PASSWORD.into())
        .await
        .unwrap();

    // A guest for the lobby opens it once.
    let now = w.clock.now();
    let invite = alice
        .invite_guest(
            vec![lobby.clone()],
            "Gus".into(),
            at(now),
            at(now + 2 * 24 * HOUR),
            vec![],
        )
        .await
        .unwrap();
    let (guest, guest_events, _) = w.client(&url);
    guest.redeem_invite(invite.invite_token).await.unwrap();
    guest.unlock(lobby.clone(), 5000, None).await.unwrap();
    synced(&guest_events, &lobby).await;

    // Alice revokes the guest. The guest's phone stays offline, its document still valid.
    alice.revoke_guest(invite.guest.id).await.unwrap();
    assert!(
        guest.unlock(lobby.clone(), 5000, None).await.is_ok(),
        "the lock has not heard yet"
    );

    // Bob, unrelated to the guest, comes home: his phone carries the lobby's newest bundle
    // and hands it over after his own unlock.
    let (bob, bob_events, _) = w.client(&url);
    bob.sign_in("bob@1800main.example".into(), PASSWORD.into())
        .await
        .unwrap();
    assert!(bob.door(lobby.clone()).unwrap().sync_pending);
    let before = w.locks["Lobby"].sync_iteration();
    bob.unlock(lobby.clone(), 5000, None).await.unwrap();
    match synced(&bob_events, &lobby).await {
        DoorEvent::DoorSynced {
            applied,
            lock_iteration,
            audit_records,
            ..
        } => {
            assert!(applied, "Bob's phone brought a newer bundle");
            assert!(lock_iteration > Some(before));
            assert!(
                audit_records >= 3,
                "the guest's two unlocks and Bob's came home: {audit_records}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(bob_events
        .0
        .lock()
        .unwrap()
        .iter()
        .any(|e| matches!(e, DoorEvent::SyncProgress { .. })));

    // The revoked guest is refused at the offline lock now.
    let e = guest.unlock(lobby.clone(), 5000, None).await.unwrap_err();
    assert!(
        matches!(
            e,
            DoorError::Denied {
                reason: UnlockDenial::Revoked
            }
        ),
        "{e:?}"
    );

    // The audit records reached the server (uploaded by Bob's phone right after the sync).
    assert!(audit_count(&w) >= 3);
    assert_eq!(bob.pending_audit_records().unwrap(), 0);
    assert_eq!(bob.recent_activity(10).unwrap()[0].outcome, "granted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_ack_frees_the_locks_records_on_a_later_visit() {
    let mut w = World::start().await;
    let url = w.server.url();
    let lobby = w.door_id("Lobby");
    let (alice, events, _) = w.client(&url);
    alice
        .sign_in("alice@1800main.example".into(), PASSWORD.into())
        .await
        .unwrap();
    alice.unlock(lobby.clone(), 5000, None).await.unwrap();
    synced(&events, &lobby).await;
    assert!(audit_count(&w) >= 1);
    let held = w.locks["Lobby"].pending_audit();
    assert!(
        held >= 1,
        "the lock keeps its records until the server's ack comes back"
    );

    // Next visit: the refreshed bundle carries the server's ack; the lock frees the records.
    events.0.lock().unwrap().clear();
    alice.refresh().await.unwrap();
    alice.unlock(lobby.clone(), 5000, None).await.unwrap();
    synced(&events, &lobby).await;
    assert!(
        w.locks["Lobby"].pending_audit() < held + 1,
        "records acknowledged by the server were freed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_this_door_carries_the_bundle_without_opening() {
    let mut w = World::start().await;
    let url = w.server.url();
    let pool = w.door_id("Pool");
    let (alice, events, _) = w.client(&url);
    alice
        .sign_in("alice@1800main.example".into(), PASSWORD.into())
        .await
        .unwrap();
    assert_eq!(w.locks["Pool"].sync_iteration(), 0);
    // At night too: syncing does not open the door.
    w.set_time(TUESDAY_10AM + 13 * HOUR);
    alice.sync_door(pool.clone(), 5000, None).await.unwrap();
    assert!(w.locks["Pool"].sync_iteration() >= 1);
    assert!(matches!(
        synced(&events, &pool).await,
        DoorEvent::DoorSynced { applied: true, .. }
    ));
    assert_eq!(
        w.locks["Pool"].pending_audit(),
        1,
        "only the sync itself is on record: nothing opened"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_locks_refused_record_or_failed_upload_does_not_block_the_others() {
    let mut w = World::start().await;
    let url = w.server.url();
    let (alice, _, dir) = w.client(&url);
    alice
        .sign_in("alice@1800main.example".into(), PASSWORD.into())
        .await
        .unwrap();
    // Two locks, two records each, as a phone would have pulled them; the lobby's come after
    // a record the server will refuse, and a lock the server does not know sorts first.
    let pulled = |name: &str| {
        let lock = &w.locks[name];
        lock.enter_doorcode("0000").unwrap();
        lock.enter_doorcode("0001").unwrap();
        let epoch = lock.audit_epoch().to_string();
        let records: Vec<(u64, Vec<u8>)> = lock
            .audit_records()
            .into_iter()
            .enumerate()
            .map(|(i, r)| (i as u64, r))
            .collect();
        (lock.config().lock_id.to_string(), epoch, records)
    };
    let (lobby, lobby_epoch, lobby_records) = pulled("Lobby");
    let (pool, pool_epoch, pool_records) = pulled("Pool");
    let unknown = "00".repeat(16);
    {
        let store = door_core::store::Store::open(std::path::Path::new(&dir)).unwrap();
        store
            .add_outbox(&unknown, &"aa".repeat(8), 1, &[(0, b"whatever".to_vec())])
            .unwrap();
        store
            .add_outbox(&lobby, "", 1, &[(0, b"not a record".to_vec())])
            .unwrap();
        store
            .add_outbox(&lobby, &lobby_epoch, 2, &lobby_records)
            .unwrap();
        store
            .add_outbox(&pool, &pool_epoch, 2, &pool_records)
            .unwrap();
    }
    assert_eq!(alice.pending_audit_records().unwrap(), 6);
    // A refresh uploads the outbox (the unknown lock's 404 does not stop it).
    alice.refresh().await.unwrap();
    assert_eq!(
        audit_count(&w),
        4,
        "both locks' good records reached the server"
    );
    assert_eq!(
        alice.pending_audit_records().unwrap(),
        1,
        "only the unknown lock's record still waits"
    );
    let store = door_core::store::Store::open(std::path::Path::new(&dir)).unwrap();
    let refused = store.refused_audit_records().unwrap();
    assert_eq!(
        refused
            .iter()
            .map(|r| (
                r.lock_id.as_str(),
                r.epoch.as_str(),
                r.seq,
                r.reason.as_str()
            ))
            .collect::<Vec<_>>(),
        [(lobby.as_str(), "", 0, "malformed")],
        "the refused record is kept aside, with the reason"
    );
    assert_eq!(refused[0].bytes, b"not a record");
    // Set aside, it is not sent again.
    alice.refresh().await.unwrap();
    assert_eq!(store.refused_audit_records().unwrap().len(), 1);
    assert_eq!(audit_count(&w), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_locks_new_records_come_home_through_the_phone() {
    let mut w = World::start().await;
    let url = w.server.url();
    let lobby = w.door_id("Lobby");
    let (alice, events, _) = w.client(&url);
    alice
        .sign_in("alice@1800main.example".into(), PASSWORD.into())
        .await
        .unwrap();
    // Three visits: the phone pulls (and uploads) the lock's records up to seq 3 or more.
    for _ in 0..3 {
        events.0.lock().unwrap().clear();
        alice.unlock(lobby.clone(), 5000, None).await.unwrap();
        synced(&events, &lobby).await;
    }
    let lock = &w.locks["Lobby"];
    let old = lock.audit_epoch();
    let before = audit_count(&w);
    assert!(before >= 3);
    // The lock is wiped: its new log starts at 0, below where the phone last pulled.
    lock.wipe().unwrap();
    events.0.lock().unwrap().clear();
    alice.unlock(lobby.clone(), 5000, None).await.unwrap();
    synced(&events, &lobby).await;
    let new = lock.audit_epoch();
    assert_ne!(new, old);
    let epochs: Vec<(Vec<u8>, i64)> = w
        .server
        .state
        .db
        .read(|tx| {
            let mut q = tx.prepare("SELECT epoch, seq FROM audit_records WHERE epoch = ?1")?;
            let rows = q.query_map([&new.0[..]], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .unwrap();
    assert!(
        epochs.iter().any(|(_, seq)| *seq == 0),
        "the new log's first record reached the server: {epochs:?}"
    );
    assert_eq!(alice.pending_audit_records().unwrap(), 0);
}
