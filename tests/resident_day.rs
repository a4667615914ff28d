//! A resident's day through DoorClient, against door-server over real HTTP.

mod common;

use std::time::{Duration, UNIX_EPOCH};

use common::*;
use door_core::{AccessDecision, DoorError, DoorEvent};
use door_server::seed::PASSWORD;

fn at(t: i64) -> std::time::SystemTime {
    UNIX_EPOCH + Duration::from_secs(t as u64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_residents_day() {
    let mut w = World::start().await;
    let url = w.server.url();
    let (alice, events, _) = w.client(&url);
    assert!(!alice.is_signed_in());
    assert!(
        matches!(alice.doors(), Ok(d) if d.is_empty())
            || matches!(alice.doors(), Err(DoorError::NotSignedIn))
    );

    // Sign in: the device registers and the doors arrive, sorted, without key names.
    let me = alice
        .sign_in("alice@1800main.example".into(), PASSWORD.into())
        .await
        .unwrap();
    assert_eq!(
        (
            me.name.as_str(),
            me.role.as_str(),
            me.property_name.as_str()
        ),
        ("Alice", "resident", "1800 Main St")
    );
    assert!(events.saw(&DoorEvent::DoorsChanged));
    let doors = alice.doors().unwrap();
    let names: Vec<&str> = doors.iter().map(|d| d.name.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    assert!(
        names.contains(&"Lobby") && names.contains(&"Pool") && names.contains(&"Unit 101"),
        "{names:?}"
    );
    assert!(!names.contains(&"Leasing Office"));

    // The lobby is open 24/7; the pool on weekdays 9 to 5.
    let lobby = w.door_id("Lobby");
    let pool = w.door_id("Pool");
    assert_eq!(
        alice.access_now(lobby.clone()).unwrap(),
        AccessDecision::Allowed { until: None }
    );
    assert_eq!(
        alice.access_now(pool.clone()).unwrap(),
        AccessDecision::Allowed {
            until: Some(at(TUESDAY_10AM + 7 * HOUR))
        }
    );
    // At night the pool is Out of Schedule, opening Wednesday at 9, answered from the cache.
    w.clock.set(TUESDAY_10AM + 13 * HOUR + 30 * 60);
    assert_eq!(
        alice.access_now(pool.clone()).unwrap(),
        AccessDecision::OutOfSchedule {
            next_allowed: Some(at(TUESDAY_10AM + 23 * HOUR))
        }
    );
    let pool_door = alice.door(pool.clone()).unwrap();
    assert_eq!(pool_door.next_change, Some(at(TUESDAY_10AM + 23 * HOUR)));
    assert!(!pool_door.may_share && !pool_door.has_doorcode);

    // Doorcodes where a key enables them, and only there.
    assert_eq!(
        alice.doorcode(lobby.clone()).unwrap().map(|c| c.len()),
        Some(6)
    );
    assert_eq!(alice.doorcode(pool.clone()).unwrap(), None);
    assert!(
        matches!(alice.doorcode("00".repeat(16)), Err(DoorError::InvalidInput { field, .. }) if field == "door_id")
    );

    // A guest for two doors: the backend makes two keys.
    let unit = w.door_id("Unit 101");
    let now = w.clock.now();
    let invite = alice
        .invite_guest(
            vec![lobby.clone(), unit.clone()],
            "+1 555 0100".into(),
            at(now),
            at(now + 2 * 24 * HOUR),
            vec![],
        )
        .await
        .unwrap();
    let guest_keys: u32 = w
        .server
        .state
        .db
        .read(|tx| {
            Ok(
                tx.query_row("SELECT COUNT(*) FROM keys WHERE kind = 'guest'", [], |r| {
                    r.get(0)
                })?,
            )
        })
        .unwrap();
    assert_eq!(guest_keys, 2);

    // The guest redeems on their own phone and gets exactly those doors.
    let (guest, guest_events, _) = w.client(&url);
    let who = guest
        .redeem_invite(invite.invite_token.clone())
        .await
        .unwrap();
    assert_eq!(who.role, "guest");
    let guest_doors: Vec<String> = guest.doors().unwrap().into_iter().map(|d| d.name).collect();
    assert_eq!(guest_doors, ["Lobby", "Unit 101"]);
    assert!(matches!(
        guest.access_now(lobby.clone()).unwrap(),
        AccessDecision::Allowed { .. }
    ));

    // The resident sees and revokes the guest; the guest's session ends.
    let guests = alice.guests().await.unwrap();
    assert_eq!(guests.len(), 1);
    assert!(guests[0].redeemed && !guests[0].revoked);
    let revoked = alice.revoke_guest(invite.guest.id.clone()).await.unwrap();
    assert!(revoked.revoked);
    assert!(matches!(
        guest.refresh().await,
        Err(DoorError::SessionExpired)
    ));
    assert!(guest_events.saw(&DoorEvent::SessionExpired));
    assert!(!guest.is_signed_in());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_guest_requests_name_the_field_or_the_doors() {
    let mut w = World::start().await;
    let url = w.server.url();
    let (alice, _, _) = w.client(&url);
    alice
        .sign_in("alice@1800main.example".into(), PASSWORD.into())
        .await
        .unwrap();
    let (lobby, pool) = (w.door_id("Lobby"), w.door_id("Pool"));
    let now = w.clock.now();
    let field_of = |e: DoorError| match e {
        DoorError::InvalidInput { field, .. } => field,
        other => panic!("expected InvalidInput, got {other:?}"),
    };
    let e = alice
        .invite_guest(vec![], "C".into(), at(now), at(now + 60), vec![])
        .await
        .unwrap_err();
    assert_eq!(field_of(e), "door_ids");
    let e = alice
        .invite_guest(
            vec![lobby.clone()],
            "C".into(),
            at(now + 60),
            at(now),
            vec![],
        )
        .await
        .unwrap_err();
    assert_eq!(field_of(e), "until");
    let e = alice
        .invite_guest(
            vec!["ab".repeat(16)],
            "C".into(),
            at(now),
            at(now + 60),
            vec![],
        )
        .await
        .unwrap_err();
    assert_eq!(field_of(e), "door_ids[0]");
    let e = alice
        .invite_guest(
            vec![lobby.clone()],
            "C".into(),
            at(now - 7200),
            at(now - 3600),
            vec![],
        )
        .await
        .unwrap_err();
    assert_eq!(field_of(e), "ends_at");
    match alice
        .invite_guest(
            vec![lobby.clone(), pool.clone()],
            "C".into(),
            at(now),
            at(now + 60),
            vec![],
        )
        .await
    {
        Err(DoorError::NotShareable { door_ids }) => {
            assert_eq!(door_ids, std::slice::from_ref(&pool))
        }
        other => panic!("expected NotShareable, got {other:?}"),
    }
    assert!(alice.guests().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn airplane_mode_keeps_the_doors_and_decisions() {
    let mut w = World::start().await;
    let url = w.server.url();
    let (alice, _, dir) = w.client(&url);
    alice
        .sign_in("alice@1800main.example".into(), PASSWORD.into())
        .await
        .unwrap();
    let before = alice.doors().unwrap();
    let pool = w.door_id("Pool");

    // The server goes away (its port closes: nothing answers at `url`); the app restarts in
    // airplane mode.
    let elsewhere = door_server::start("127.0.0.1:0".parse().unwrap(), None, ADMIN, w.clock.f())
        .await
        .unwrap();
    std::mem::replace(&mut w.server, elsewhere).stop().await;
    drop(alice);
    let alice = w.client_in(&url, &dir, Default::default());
    assert!(alice.is_signed_in());
    assert_eq!(alice.doors().unwrap(), before);
    w.clock.set(TUESDAY_10AM + 13 * HOUR);
    assert!(matches!(
        alice.access_now(pool).unwrap(),
        AccessDecision::OutOfSchedule {
            next_allowed: Some(_)
        }
    ));
    assert!(matches!(
        alice.refresh().await,
        Err(DoorError::Offline { .. })
    ));
    assert_eq!(
        alice.doors().unwrap().len(),
        before.len(),
        "a failed refresh leaves the cache"
    );
}

/// Answers every request with 200 and a body cut short.
async fn truncating_server() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let body = r#"{"person_id":"x","time_zone":"America/New_York","doors":[{"id":"#;
                let resp = format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_server_json_is_a_server_error_and_the_cache_stays() {
    let mut w = World::start().await;
    let url = w.server.url();
    let (alice, _, dir) = w.client(&url);
    alice
        .sign_in("alice@1800main.example".into(), PASSWORD.into())
        .await
        .unwrap();
    let before = alice.doors().unwrap();
    drop(alice);
    let bad = truncating_server().await;
    let alice = w.client_in(&bad, &dir, Default::default());
    match alice.refresh().await {
        Err(DoorError::Server { code, .. }) => assert_eq!(code, "malformed_response"),
        other => panic!("expected Server, got {other:?}"),
    }
    assert_eq!(alice.doors().unwrap(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_configuration_and_sign_in_are_typed() {
    let mut w = World::start().await;
    let url = w.server.url();
    let (alice, _, _) = w.client(&url);
    match alice
        .sign_in("alice@1800main.example".into(), "wrong".into())
        .await
    {
        Err(DoorError::InvalidInput { field, reason }) => assert_eq!(
            (field.as_str(), reason.as_str()),
            ("password", "wrong email or password")
        ),
        other => panic!("expected InvalidInput, got {other:?}"),
    }
    assert!(
        matches!(alice.redeem_invite("nope".into()).await, Err(DoorError::InvalidInput { field, .. }) if field == "invite_token")
    );
    assert!(
        matches!(alice.sign_in("".into(), "x".into()).await, Err(DoorError::InvalidInput { field, .. }) if field == "email")
    );
    let bad = door_core::DoorClient::new(
        door_core::ClientConfig {
            server_url: "ftp://x".into(),
            data_dir: w.dirs[0].path().to_string_lossy().into(),
            request_timeout_ms: 0,
        },
        Some(door_core::ephemeral_device_signer()),
        None,
        None,
    );
    assert!(matches!(bad, Err(DoorError::InvalidInput { field, .. }) if field == "server_url"));
    // Nobody listening: Offline, not a hang.
    let (lost, _, _) = w.client("http://127.0.0.1:9");
    assert!(matches!(
        lost.sign_in("a@b.c".into(), "x".into()).await,
        Err(DoorError::Offline { .. })
    ));
}
