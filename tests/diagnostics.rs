//! The core's logs over a whole resident's day at Debug level: they tell the day's story
//! (sign-in, refresh, unlock, Door Sync, HTTP) and contain none of the secrets it used.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use base64::Engine;
use common::*;
use door_core::store::Store;
use door_core::{collected_logs, set_log_level, set_log_listener, DoorEvent};
use door_core::{LogLevel, LogListener, LogRecord};
use door_server::seed::PASSWORD;

fn at(t: i64) -> std::time::SystemTime {
    UNIX_EPOCH + Duration::from_secs(t as u64)
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Everything forwarded, unbounded (the ring buffer keeps only the newest records).
#[derive(Default)]
struct Heard(Mutex<Vec<LogRecord>>);

impl LogListener for Heard {
    fn on_log(&self, record: LogRecord) {
        self.0.lock().unwrap().push(record);
    }
}

/// The tokens, device key and access documents a client's store holds right now.
fn stored_secrets(data_dir: &str) -> Vec<String> {
    let store = Store::open(std::path::Path::new(data_dir)).unwrap();
    let tokens = store.tokens().unwrap().expect("signed in");
    let mut secrets = vec![tokens.access_token, tokens.refresh_token];
    secrets.push(store.meta("device_key").unwrap().expect("a device key"));
    for door in store.doors().unwrap() {
        assert!(!door.document.is_empty());
        secrets.push(b64(&door.document));
        secrets.push(hex(&door.document));
        secrets.extend(door.doorcode);
    }
    secrets
}

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
async fn a_residents_day_logs_no_secret() {
    set_log_level(LogLevel::Debug);
    let heard = Arc::new(Heard::default());
    set_log_listener(Some(heard.clone()));

    let mut w = World::start().await;
    let url = w.server.url();
    let (alice, events, alice_dir) = w.client(&url);
    alice
        .sign_in("alice@1800main.example".into(), PASSWORD.into())
        .await
        .unwrap();
    alice.refresh().await.unwrap();
    let lobby = w.door_id("Lobby");
    let pool = w.door_id("Pool");
    let unit = w.door_id("Unit 101");
    alice.unlock(lobby.clone(), 5000, None).await.unwrap();
    synced(&events, &lobby).await;
    let doorcode = alice.doorcode(lobby.clone()).unwrap().expect("a doorcode");
    let now = w.clock.now();
    let invite = alice
        .invite_guest(
            vec![lobby.clone(), unit.clone()],
            "+1 555 0100".into(),
            at(now),
            at(now + 2 * 24 * HOUR),
            vec![lobby.clone()],
        )
        .await
        .unwrap();
    let (guest, _, guest_dir) = w.client(&url);
    guest
        .redeem_invite(invite.invite_token.clone())
        .await
        .unwrap();
    alice.sync_door(pool.clone(), 5000, None).await.unwrap();
    // Out of schedule at night: an outcome without the radio.
    w.set_time(TUESDAY_10AM + 13 * HOUR);
    assert!(alice.unlock(pool.clone(), 5000, None).await.is_err());
    // A failure on the network: a warning, the password still not in it.
    let (lost, _, _) = w.client("http://127.0.0.1:9");
    assert!(lost
        .sign_in("alice@1800main.example".into(), PASSWORD.into())
        .await
        .is_err());

    let mut secrets = vec![
        PASSWORD.to_owned(),
        invite.invite_token.clone(),
        doorcode,
        invite.doorcodes[0].code.clone(),
        // Full ids never appear: logs shorten them.
        lobby.clone(),
        pool.clone(),
        unit.clone(),
    ];
    secrets.extend(stored_secrets(&alice_dir));
    secrets.extend(stored_secrets(&guest_dir));
    for d in &w.seeded.doors {
        secrets.push(b64(&d.lock_secret));
        secrets.push(hex(&d.lock_secret));
    }
    assert!(secrets.iter().all(|s| s.len() >= 6), "{secrets:?}");
    alice.sign_out().await.unwrap();

    let collected = collected_logs();
    let heard = heard.0.lock().unwrap().clone();
    set_log_listener(None);
    assert!(!collected.is_empty());
    assert!(heard.len() >= collected.len());
    let text = |records: &[LogRecord]| {
        records
            .iter()
            .map(|r| format!("{:?} {} {}", r.level, r.target, r.message))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let (collected, heard) = (text(&collected), text(&heard));
    for secret in &secrets {
        assert!(
            !heard.contains(secret.as_str()),
            "{secret} in the logs:\n{heard}"
        );
        assert!(!collected.contains(secret.as_str()), "{secret} in the logs");
    }
    let short = |id: &str| id[..8].to_owned();
    for marker in [
        "sign_in: refresh: done".to_owned(),
        "sign_in: done".to_owned(),
        "redeem_invite: done".to_owned(),
        "refresh: doors refreshed doors=".to_owned(),
        format!(
            "unlock{{door={} trigger=Explicit}}: granted attempts=1",
            short(&lobby)
        ),
        format!(
            "unlock{{door={} trigger=Explicit}}: out of schedule",
            short(&pool)
        ),
        "Door Sync after the unlock".to_owned(),
        format!("door_sync{{door={}}}: Door Sync asked for", short(&pool)),
        "guest invited".to_owned(),
        "HTTP method=GET path=/v1/me/doors?device_id status=200".to_owned(),
        "sign_in: HTTP method=POST path=/v1/auth/login failure=no connection".to_owned(),
        "sign_in: failed error=the server cannot be reached".to_owned(),
        "doorcode read".to_owned(),
        "signed out".to_owned(),
    ] {
        assert!(heard.contains(&marker), "no {marker:?} in:\n{heard}");
    }
    assert!(
        heard.contains("Debug door_core::"),
        "debug records are kept"
    );
}
