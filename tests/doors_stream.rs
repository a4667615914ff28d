//! The doors stream (OpenDOOR `listenForLocks()`) through `DoorClient.watch_doors`: the cached
//! doors at once, then the doors again after each change, in order, until cancelled.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use common::*;
use door_core::{Door, DoorsListener};
use door_server::seed::PASSWORD;

/// Every list a listener got, as door names.
#[derive(Default)]
struct Lists(Mutex<Vec<Vec<String>>>);

impl DoorsListener for Lists {
    fn on_doors(&self, doors: Vec<Door>) {
        self.0
            .lock()
            .unwrap()
            .push(doors.into_iter().map(|d| d.name).collect());
    }
}

impl Lists {
    fn got(&self) -> Vec<Vec<String>> {
        self.0.lock().unwrap().clone()
    }
}

#[tokio::test]
async fn the_doors_stream_gives_the_cached_doors_then_each_change_until_cancelled() {
    let mut w = World::start().await;
    let url = w.server.url();
    let (alice, _, _) = w.client(&url);
    let (guest, _, _) = w.client(&url);

    // Before anyone signs in: the (empty) cache, at once.
    let alices = Arc::new(Lists::default());
    let alice_watch = alice.watch_doors(alices.clone()).unwrap();
    assert_eq!(alices.got(), [Vec::<String>::new()]);
    alice
        .sign_in("alice@1800main.example".into(), PASSWORD.into())
        .await
        .unwrap();
    let signed_in = alices.got();
    assert!(signed_in.len() >= 2, "{signed_in:?}");
    assert!(signed_in.last().unwrap().contains(&"Lobby".to_owned()));

    let (lobby, unit) = (w.door_id("Lobby"), w.door_id("Unit 101"));
    let now = UNIX_EPOCH + Duration::from_secs(w.clock.now() as u64);
    let invite = alice
        .invite_guest(
            vec![lobby.clone(), unit.clone()],
            "+1 555 0100".into(),
            now,
            now + Duration::from_secs(2 * 24 * HOUR as u64),
            vec![],
        )
        .await
        .unwrap();
    guest.redeem_invite(invite.invite_token).await.unwrap();

    // The guest's cached doors at once, before the call returns and without the network.
    let first = Arc::new(Lists::default());
    let watch = guest.watch_doors(first.clone()).unwrap();
    let both = vec!["Lobby".to_owned(), "Unit 101".to_owned()];
    assert_eq!(first.got(), std::slice::from_ref(&both));

    // The host takes the Lobby back; the guest's refresh brings the fresh list.
    alice
        .revoke_guest_door(invite.guest.id.clone(), lobby.clone())
        .await
        .unwrap();
    guest.refresh().await.unwrap();
    let unit_only = vec!["Unit 101".to_owned()];
    assert_eq!(first.got(), [both.clone(), unit_only.clone()]);

    // A second listener starts from the cache as it is now.
    let second = Arc::new(Lists::default());
    let second_watch = guest.watch_doors(second.clone()).unwrap();
    assert_eq!(second.got(), std::slice::from_ref(&unit_only));

    // Cancelled: no more lists; the other listener goes on.
    watch.cancel();
    guest.refresh().await.unwrap();
    assert_eq!(first.got().len(), 2);
    assert_eq!(second.got(), [unit_only.clone(), unit_only.clone()]);

    // Dropping the watch cancels it too; signing out empties the other client's list.
    drop(second_watch);
    guest.sign_out().await.unwrap();
    assert_eq!(second.got().len(), 2);
    alice.sign_out().await.unwrap();
    assert_eq!(alices.got().last().unwrap(), &Vec::<String>::new());
    drop(alice_watch);
}

/// The stream follows the time too: at 17:00 the Pool closes (Mon-Fri 09:00-17:00) and a
/// listener gets the doors again, with nothing else happening.
#[tokio::test]
async fn the_doors_stream_gives_the_doors_again_when_a_decision_changes_with_the_hour() {
    let mut w = World::start().await;
    let url = w.server.url();
    let (alice, _, _) = w.client(&url);
    alice
        .sign_in("alice@1800main.example".into(), PASSWORD.into())
        .await
        .unwrap();
    w.set_time(TUESDAY_10AM + 7 * HOUR - 1); // Tuesday 16:59:59
    let pool_open = |doors: &[Door]| {
        let pool = doors.iter().find(|d| d.name == "Pool").unwrap();
        matches!(pool.access, door_core::AccessDecision::Allowed { .. })
    };
    #[derive(Default)]
    struct Pool(Mutex<Vec<Vec<Door>>>);
    impl DoorsListener for Pool {
        fn on_doors(&self, doors: Vec<Door>) {
            self.0.lock().unwrap().push(doors);
        }
    }
    let got = Arc::new(Pool::default());
    let watch = alice.watch_doors(got.clone()).unwrap();
    assert!(pool_open(&got.0.lock().unwrap()[0]));
    // The next change is a second away; the clock passes it while the stream waits.
    w.set_time(TUESDAY_10AM + 7 * HOUR + 1);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while got.0.lock().unwrap().len() < 2 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let lists = got.0.lock().unwrap().clone();
    assert_eq!(lists.len(), 2, "no delivery when the Pool closed");
    assert!(!pool_open(&lists[1]), "the Pool still open at 17:00:01");
    drop(watch);
}
