//! Unlocking through DoorClient: the phone's instant schedule answer, then one exchange with
//! a reference lock over the in-memory link.

mod common;

use std::time::{Duration, UNIX_EPOCH};

use common::*;
use door_core::ble::memory::Faults;
use door_core::{Cancellation, DoorError, UnlockDenial, UnlockPhase, UnlockTrigger};
use door_server::seed::PASSWORD;

/// The unlock events seen, as (door, phase); every unlock here is explicit.
fn phases(events: &Recorder) -> Vec<(String, UnlockPhase)> {
    events
        .unlocks()
        .into_iter()
        .map(|(door_id, trigger, phase)| {
            assert_eq!(trigger, UnlockTrigger::Explicit);
            (door_id, phase)
        })
        .collect()
}

fn at(t: i64) -> std::time::SystemTime {
    UNIX_EPOCH + Duration::from_secs(t as u64)
}

async fn alice(
    w: &mut World,
) -> (
    std::sync::Arc<door_core::DoorClient>,
    std::sync::Arc<Recorder>,
) {
    let url = w.server.url();
    let (alice, events, _) = w.client(&url);
    alice
        .sign_in("alice@1800main.example".into(), PASSWORD.into())
        .await
        .unwrap();
    (alice, events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lobby_opens_in_one_exchange() {
    let mut w = World::start().await;
    let (alice, events) = alice(&mut w).await;
    let lobby = w.door_id("Lobby");
    let receipt = alice.unlock(lobby.clone(), 5000, None).await.unwrap();
    assert_eq!(receipt.attempts, 1);
    assert_eq!(receipt.lock_time, at(TUESDAY_10AM));
    assert_eq!(
        receipt.pending_audit, 1,
        "the lock keeps a signed record of the unlock"
    );
    assert_eq!(w.link.connection_count(), 1);
    assert_eq!(
        phases(&events),
        [
            UnlockPhase::Started,
            UnlockPhase::Connecting { attempt: 1 },
            UnlockPhase::Authorizing,
            UnlockPhase::Succeeded { receipt },
        ]
        .map(|phase| (lobby.clone(), phase))
    );
    assert_eq!(w.locks["Lobby"].pending_audit(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_schedule_is_answered_by_the_phone_without_radio_work() {
    let mut w = World::start().await;
    let (alice, _) = alice(&mut w).await;
    w.set_time(TUESDAY_10AM + 13 * HOUR);
    match alice.unlock(w.door_id("Pool"), 5000, None).await {
        Err(DoorError::OutOfSchedule { next_allowed }) => {
            assert_eq!(next_allowed, Some(at(TUESDAY_10AM + 23 * HOUR)))
        }
        other => panic!("expected OutOfSchedule, got {other:?}"),
    }
    assert_eq!(w.link.connection_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_unlock_at_a_time_and_every_unlock_reports_its_end() {
    let mut w = World::start().await;
    let (alice, events) = alice(&mut w).await;
    let (lobby, garage) = (w.door_id("Lobby"), w.door_id("Garage Gate"));
    // The Lobby's lock is out of reach, so its unlock runs until cancelled.
    w.link
        .set_in_range(&w.seeded.door("Lobby").door.lock_id, false);
    let cancellation = Cancellation::new();
    let running = {
        let (alice, lobby, cancellation) = (alice.clone(), lobby.clone(), cancellation.clone());
        tokio::spawn(async move { alice.unlock(lobby, 60_000, Some(cancellation)).await })
    };
    while !phases(&events).contains(&(lobby.clone(), UnlockPhase::Connecting { attempt: 1 })) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let started = std::time::Instant::now();
    assert_eq!(
        alice.unlock(garage.clone(), 5000, None).await.err(),
        Some(DoorError::UnlockInProgress {
            door_id: lobby.clone()
        }),
        "a second unlock fails at once, naming the one under way"
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    cancellation.cancel();
    assert_eq!(running.await.unwrap().err(), Some(DoorError::Cancelled));
    // The slot is free again.
    let receipt = alice.unlock(garage.clone(), 5000, None).await.unwrap();
    let ends: Vec<_> = phases(&events)
        .into_iter()
        .filter(|(_, p)| !matches!(p, UnlockPhase::Connecting { .. } | UnlockPhase::Authorizing))
        .collect();
    assert_eq!(
        ends,
        [
            (lobby.clone(), UnlockPhase::Started),
            (garage.clone(), UnlockPhase::Started),
            (
                garage.clone(),
                UnlockPhase::Failed {
                    error: DoorError::UnlockInProgress {
                        door_id: lobby.clone()
                    }
                }
            ),
            (lobby, UnlockPhase::Cancelled),
            (garage.clone(), UnlockPhase::Started),
            (garage, UnlockPhase::Succeeded { receipt }),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_schedule_is_reported_as_a_failed_unlock_even_while_another_runs() {
    let mut w = World::start().await;
    let (alice, events) = alice(&mut w).await;
    w.set_time(TUESDAY_10AM + 13 * HOUR);
    let pool = w.door_id("Pool");
    let error = alice.unlock(pool.clone(), 5000, None).await.unwrap_err();
    assert!(matches!(error, DoorError::OutOfSchedule { .. }));
    assert_eq!(
        phases(&events),
        [UnlockPhase::Started, UnlockPhase::Failed { error }].map(|p| (pool.clone(), p))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lock_decides_the_schedule_on_its_own_clock() {
    let mut w = World::start().await;
    let (alice, _) = alice(&mut w).await;
    // The phone thinks it is 16:59:30; the lock, a minute ahead (within its tolerance), has
    // closed the pool already.
    let phone = TUESDAY_10AM + 7 * HOUR - 30;
    w.clock.set(phone);
    w.lock_clock.set_time(phone + 60);
    match alice.unlock(w.door_id("Pool"), 5000, None).await {
        Err(DoorError::OutOfSchedule { next_allowed }) => {
            assert_eq!(next_allowed, Some(at(TUESDAY_10AM + 23 * HOUR)))
        }
        other => panic!("expected OutOfSchedule from the lock, got {other:?}"),
    }
    assert_eq!(w.link.connection_count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_lock_is_set_right_by_signed_time_and_a_fast_one_is_untrusted() {
    let mut w = World::start().await;
    let (alice, _) = alice(&mut w).await;
    // Ten minutes slow, and new: the lock takes no signed time until one bound to its
    // installation commissions it. The phone asks the lock for its epoch on the same
    // connection, the server signs a time for it, the lock takes it and the next request on
    // that connection goes through.
    w.lock_clock.set_drift(-10 * 60);
    let receipt = alice.unlock(w.door_id("Lobby"), 5000, None).await.unwrap();
    assert_eq!(w.link.connection_count(), 1);
    assert_eq!(
        receipt.lock_time,
        at(TUESDAY_10AM),
        "the lock's clock reads the signed time"
    );
    // Fast beyond the tolerance: a signed time never turns a clock back that far, so the
    // lock cannot trust the phone's freshness and refuses.
    w.lock_clock.set_drift(10 * 60);
    let e = alice
        .unlock(w.door_id("Lobby"), 5000, None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            DoorError::Denied {
                reason: UnlockDenial::ClockUntrusted
            }
        ),
        "{e:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_dropped_mid_exchange_is_retried_once() {
    let mut w = World::start().await;
    let (alice, _) = alice(&mut w).await;
    let lobby = w.seeded.door("Lobby").door.lock_id.clone();
    w.link.inject(
        &lobby,
        Faults {
            disconnect_before_notification: Some(0),
            ..Default::default()
        },
    );
    let receipt = alice.unlock(w.door_id("Lobby"), 5000, None).await.unwrap();
    assert_eq!(receipt.attempts, 2);
    assert_eq!(w.link.connection_count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_out_of_range_is_reported_at_the_deadline() {
    let mut w = World::start().await;
    let (alice, _) = alice(&mut w).await;
    w.link
        .set_in_range(&w.seeded.door("Lobby").door.lock_id, false);
    let started = std::time::Instant::now();
    assert!(matches!(
        alice.unlock(w.door_id("Lobby"), 300, None).await,
        Err(DoorError::LockNotInRange)
    ));
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancellation_ends_an_unlock_at_once() {
    let mut w = World::start().await;
    let (alice, _) = alice(&mut w).await;
    w.link
        .set_in_range(&w.seeded.door("Lobby").door.lock_id, false);
    let cancellation = Cancellation::new();
    let cancel = cancellation.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        cancel.cancel();
    });
    let started = std::time::Instant::now();
    let result = alice
        .unlock(w.door_id("Lobby"), 60_000, Some(cancellation.clone()))
        .await;
    assert!(matches!(result, Err(DoorError::Cancelled)), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // Cancelled is for good: a call handed a used Cancellation ends before it starts.
    assert!(matches!(
        alice
            .unlock(w.door_id("Lobby"), 60_000, Some(cancellation))
            .await,
        Err(DoorError::Cancelled)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_credential_is_refused_offline_before_any_radio_work() {
    let mut w = World::start().await;
    let (alice, _) = alice(&mut w).await;
    w.set_time(TUESDAY_10AM + 8 * 24 * HOUR);
    assert!(matches!(
        alice.unlock(w.door_id("Lobby"), 5000, None).await,
        Err(DoorError::Denied {
            reason: UnlockDenial::Expired
        })
    ));
    assert_eq!(w.link.connection_count(), 0);
    // A refresh brings a new credential, and the door opens again.
    alice.refresh().await.unwrap();
    alice.unlock(w.door_id("Lobby"), 5000, None).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doors_not_in_the_cache_and_missing_bluetooth_are_typed() {
    let mut w = World::start().await;
    let (alice, _) = alice(&mut w).await;
    assert!(
        matches!(alice.unlock("00".repeat(16), 5000, None).await, Err(DoorError::InvalidInput { field, .. }) if field == "door_id")
    );
    assert!(matches!(
        alice.unlock(w.door_id("Leasing Office"), 5000, None).await,
        Err(DoorError::InvalidInput { .. })
    ));
}
