//! A person's devices through door-core: listing and removing them, a removed phone refused at
//! an offline lock once a Door Sync carried the news, the device limit as a typed error an app
//! can act on, and removing this phone's own device.

mod common;

use std::time::Duration;

use common::*;
use door_core::{DoorError, DoorEvent, UnlockDenial};
use door_server::seed::PASSWORD;

const ALICE: &str = "alice@1800main.example";

/// Waits (bounded) until the recorder saw a DoorSynced event for `door_id`.
async fn synced(events: &Recorder, door_id: &str) {
    for _ in 0..200 {
        if events
            .0
            .lock()
            .unwrap()
            .iter()
            .any(|e| matches!(e, DoorEvent::DoorSynced { door_id: d, .. } if d == door_id))
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no DoorSynced event for {door_id}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_phone_is_refused_at_an_offline_lock_after_a_door_sync() {
    let mut w = World::start().await;
    let url = w.server.url();
    let lobby = w.door_id("Lobby");
    let (phone, _, _) = w.client(&url);
    let (old_phone, old_events, _) = w.client(&url);
    phone.sign_in(ALICE.into(), PASSWORD.into()).await.unwrap();
    old_phone
        .sign_in(ALICE.into(), PASSWORD.into())
        .await
        .unwrap();
    old_phone.unlock(lobby.clone(), 5000, None).await.unwrap();
    synced(&old_events, &lobby).await;

    let devices = phone.devices().await.unwrap();
    assert_eq!(devices.len(), 2);
    assert_eq!(devices.iter().filter(|d| d.this_device).count(), 1);
    let old = devices.iter().find(|d| !d.this_device).unwrap();
    assert!(old.last_seen.is_some(), "the old phone fetched its doors");
    phone.remove_device(old.id.clone()).await.unwrap();
    assert_eq!(phone.devices().await.unwrap().len(), 1);
    assert!(phone.is_signed_in());

    // The old phone, offline with its document, still opens the lobby: the lock has not heard.
    old_phone.unlock(lobby.clone(), 5000, None).await.unwrap();
    synced(&old_events, &lobby).await;

    // Bob's unlock carries the newest bundle to the lobby's lock.
    let (bob, bob_events, _) = w.client(&url);
    bob.sign_in("bob@1800main.example".into(), PASSWORD.into())
        .await
        .unwrap();
    bob.unlock(lobby.clone(), 5000, None).await.unwrap();
    synced(&bob_events, &lobby).await;

    let e = old_phone
        .unlock(lobby.clone(), 5000, None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            DoorError::Denied {
                reason: UnlockDenial::Revoked
            }
        ),
        "{e:?}"
    );
    // Its session ended with the device; Alice's phone still opens the lobby.
    assert!(matches!(
        old_phone.refresh().await,
        Err(DoorError::SessionExpired)
    ));
    phone.refresh().await.unwrap();
    phone.unlock(lobby, 5000, None).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_past_the_device_limit_says_so_and_a_removal_makes_room() {
    // Six sign-ins (each a challenge and a device registration) of one person within seconds
    // would meet the per-person rate limits before the device limit.
    let mut options = door_server::Options::default();
    for budget in [
        &mut options.limits.sign_in,
        &mut options.limits.challenge,
        &mut options.limits.device,
    ] {
        budget.account = "60/min".parse().unwrap();
    }
    let mut w = World::start_with(options).await;
    let url = w.server.url();
    let limit = door_server::DEFAULT_DEVICE_LIMIT;
    let mut phones = Vec::new();
    for _ in 0..limit {
        let (phone, _, _) = w.client(&url);
        phone.sign_in(ALICE.into(), PASSWORD.into()).await.unwrap();
        phones.push(phone);
    }
    let (extra, _, _) = w.client(&url);
    let e = extra
        .sign_in(ALICE.into(), PASSWORD.into())
        .await
        .unwrap_err();
    assert!(
        matches!(e, DoorError::DeviceLimit { limit: l } if l == limit),
        "{e:?}"
    );
    // Signed in without a device: the app lists the others and removes one.
    assert!(extra.is_signed_in());
    assert!(extra.doors().unwrap().is_empty());
    let devices = extra.devices().await.unwrap();
    assert_eq!(devices.len() as u32, limit);
    assert!(devices.iter().all(|d| !d.this_device));
    extra.remove_device(devices[0].id.clone()).await.unwrap();
    let doors = extra.refresh().await.unwrap();
    assert!(!doors.is_empty());
    let devices = extra.devices().await.unwrap();
    assert_eq!(devices.len() as u32, limit);
    assert_eq!(devices.iter().filter(|d| d.this_device).count(), 1);
    // Someone else's device, or no device at all, is an input error naming the field.
    let e = extra
        .remove_device("00112233445566778899aabbccddeeff".into())
        .await
        .unwrap_err();
    assert!(
        matches!(&e, DoorError::InvalidInput { field, .. } if field == "device_id"),
        "{e:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_this_phones_own_device_signs_it_out() {
    let mut w = World::start().await;
    let url = w.server.url();
    let (phone, events, _) = w.client(&url);
    phone.sign_in(ALICE.into(), PASSWORD.into()).await.unwrap();
    let mine = phone.devices().await.unwrap();
    assert_eq!(mine.len(), 1);
    assert!(mine[0].this_device);
    phone.remove_device(mine[0].id.clone()).await.unwrap();
    assert!(!phone.is_signed_in());
    assert!(phone.doors().unwrap().is_empty());
    assert!(events.saw(&DoorEvent::DoorsChanged));
    assert!(matches!(
        phone.devices().await,
        Err(DoorError::SessionExpired)
    ));
    // Signing in again registers the phone anew.
    phone.sign_in(ALICE.into(), PASSWORD.into()).await.unwrap();
    assert!(!phone.doors().unwrap().is_empty());
    assert!(phone.devices().await.unwrap()[0].this_device);
}
