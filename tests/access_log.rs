//! A door's access log through DoorClient: real unlocks at reference locks, their signed
//! records carried home by the phones, then each person's view of the log.

mod common;

use std::time::{Duration, UNIX_EPOCH};

use common::*;
use door_core::{AccessLogEntry, AccessMethod, AccessOutcome, DoorClient, DoorError, DoorEvent};
use door_server::seed::PASSWORD;

fn at(t: i64) -> std::time::SystemTime {
    UNIX_EPOCH + Duration::from_secs(t as u64)
}

/// Waits (bounded) until the recorder saw `n` DoorSynced events for `door_id`: the phone has
/// pulled the lock's records and uploaded them.
async fn synced(events: &Recorder, door_id: &str, n: usize) {
    for _ in 0..200 {
        let seen = events
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|e| matches!(e, DoorEvent::DoorSynced { door_id: d, .. } if d == door_id))
            .count();
        if seen >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("fewer than {n} DoorSynced events for {door_id}");
}

/// Every entry of the door's log, page by page.
async fn whole_log(client: &DoorClient, door_id: &str, limit: u32) -> Vec<AccessLogEntry> {
    let mut entries = Vec::new();
    let mut before = None;
    loop {
        let page = client
            .access_log(door_id.into(), before, limit)
            .await
            .unwrap();
        assert!(page.entries.len() <= limit as usize);
        entries.extend(page.entries);
        match page.next_cursor {
            Some(next) => before = Some(next),
            None => return entries,
        }
    }
}

fn who(entries: &[AccessLogEntry]) -> Vec<(Option<&str>, AccessOutcome, Option<AccessMethod>)> {
    entries
        .iter()
        .map(|e| (e.person_name.as_deref(), e.outcome, e.method))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn residents_see_their_own_entries_at_shared_doors_and_everyone_at_their_unit() {
    let mut w = World::start().await;
    let url = w.server.url();
    let (lobby, unit) = (w.door_id("Lobby"), w.door_id("Unit 101"));
    let (alice, alice_events, _) = w.client(&url);
    alice
        .sign_in("alice@1800main.example".into(), PASSWORD.into())
        .await
        .unwrap();
    let (bob, bob_events, _) = w.client(&url);
    bob.sign_in("bob@1800main.example".into(), PASSWORD.into())
        .await
        .unwrap();

    // Alice lets a guest into her apartment.
    let now = w.clock.now();
    let invite = alice
        .invite_guest(
            vec![unit.clone()],
            "Gus".into(),
            at(now),
            at(now + 24 * HOUR),
            vec![],
        )
        .await
        .unwrap();
    let (guest, guest_events, _) = w.client(&url);
    guest.redeem_invite(invite.invite_token).await.unwrap();

    // Real unlocks; after each, the phone pulls the lock's records and uploads them.
    alice.unlock(lobby.clone(), 5000, None).await.unwrap();
    synced(&alice_events, &lobby, 1).await;
    // The sync gave the Lobby's keypad its doorcodes: Alice types hers. Bob's phone carries
    // that record home with his own.
    let code = alice.doorcode(lobby.clone()).unwrap().unwrap();
    let typed = w.locks["Lobby"].enter_doorcode(&code).unwrap();
    assert!(
        matches!(typed, door_protocol::DoorcodeResult::Granted { .. }),
        "{typed:?}"
    );
    bob.unlock(lobby.clone(), 5000, None).await.unwrap();
    synced(&bob_events, &lobby, 1).await;
    bob.unlock(lobby.clone(), 5000, None).await.unwrap();
    synced(&bob_events, &lobby, 2).await;
    alice.unlock(unit.clone(), 5000, None).await.unwrap();
    synced(&alice_events, &unit, 1).await;
    guest.unlock(unit.clone(), 5000, None).await.unwrap();
    synced(&guest_events, &unit, 1).await;
    for phone in [&alice, &bob, &guest] {
        assert_eq!(phone.pending_audit_records().unwrap(), 0, "all uploaded");
    }

    // The Lobby is shared: each sees only their own entries there, however it is paged, and
    // carrying someone's record shows the courier nothing.
    let granted = |name| (Some(name), AccessOutcome::Granted, Some(AccessMethod::Ble));
    assert_eq!(
        who(&whole_log(&alice, &lobby, 50).await),
        [
            (
                Some("Alice"),
                AccessOutcome::Granted,
                Some(AccessMethod::Doorcode)
            ),
            granted("Alice")
        ]
    );
    assert_eq!(
        who(&whole_log(&bob, &lobby, 1).await),
        [granted("Bob"), granted("Bob")]
    );
    // Unit 101 is Alice's unit: she sees her guest come in, newest first; the guest sees only
    // their own entry, and Bob, who never had the door, is told there is no such door.
    assert_eq!(
        who(&whole_log(&alice, &unit, 1).await),
        [granted("Gus"), granted("Alice")]
    );
    let first = alice.access_log(unit.clone(), None, 1).await.unwrap();
    assert!(first.next_cursor.is_some());
    assert_eq!(who(&whole_log(&guest, &unit, 50).await), [granted("Gus")]);
    let e = bob.access_log(unit.clone(), None, 50).await.unwrap_err();
    assert!(
        matches!(&e, DoorError::InvalidInput { field, .. } if field == "door_id"),
        "{e:?}"
    );
    // Bad requests are refused before they leave, naming the field.
    for (door, before, limit, field) in [
        ("nope".to_owned(), None, 5, "door_id"),
        (lobby.clone(), None, 0, "limit"),
        (lobby.clone(), None, 201, "limit"),
        (lobby.clone(), Some("a&b".to_owned()), 5, "before"),
    ] {
        let e = alice.access_log(door, before, limit).await.unwrap_err();
        assert!(
            matches!(&e, DoorError::InvalidInput { field: f, .. } if f == field),
            "{field}: {e:?}"
        );
    }
}
