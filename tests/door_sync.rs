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
