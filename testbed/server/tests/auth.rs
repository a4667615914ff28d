//! Sign-in and refresh against hostile clients, over HTTP: refresh-token families that end
//! when a spent token comes back, and sign-in that costs the same whether or not the email
//! has an account.

mod common;

use std::time::{Duration, Instant};

use common::*;
use door_server::model::*;
use serde_json::{json, Value};

/// A server, a property, and Alice (resident) with a password.
async fn server() -> (TestServer, Manager) {
    let s = TestServer::start().await;
    let m = Manager::create(&s, "1800 Main St", "America/New_York").await;
    m.person(&s, "Alice", "resident", Some("alice@example.com"))
        .await;
    (s, m)
}

/// What `http` gets: the status, the `Retry-After` header, the body.
async fn send(
    s: &TestServer,
    http: &reqwest::Client,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Option<u64>, Value) {
    let mut req = http
        .request(method.parse().unwrap(), format!("{}{path}", s.handle.url()))
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    let text = resp.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    (status, retry_after, body)
}

async fn sign_in(
    s: &TestServer,
    http: &reqwest::Client,
    email: &str,
    password: &str,
) -> (u16, Option<u64>, Value) {
    let body = json!({"email": email, "password": password});
    send(s, http, "POST", "/v1/auth/login", "", Some(body)).await
}

#[tokio::test]
async fn a_reused_refresh_token_ends_its_whole_family_and_is_recorded() {
    let (server, _) = server().await;
    let s = &server;
    let phone = Phone::sign_in(s, "alice@example.com").await;
    let other = Phone::sign_in(s, "alice@example.com").await;
    let refresh = |token: &str| {
        let body = json!({ "refresh_token": token });
        async move { s.call("POST", "/v1/auth/refresh", "", Some(&body)).await }
    };
    let (status, body) = refresh(&phone.tokens.refresh_token).await;
    assert_eq!(status, 200, "{body}");
    let newer: Tokens = serde_json::from_value(body).unwrap();
    // The spent token again: a thief and the app both hold the family.
    let (status, body) = refresh(&phone.tokens.refresh_token).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("unauthorized")),
        "{body}"
    );
    // Everything issued in the family is over: the newer refresh token, and the access tokens
    // from before and after the rotation.
    let (status, body) = refresh(&newer.refresh_token).await;
    assert_eq!(status, 401, "the newer refresh token: {body}");
    for token in [&newer.access_token, &phone.tokens.access_token] {
        let (status, _) = s.call("GET", "/v1/me", token, None).await;
        assert_eq!(status, 401);
    }
    // Alice's other sign-in is another family, untouched.
    let (status, _) = s.call("GET", "/v1/me", other.token(), None).await;
    assert_eq!(status, 200);
    let (status, _) = refresh(&other.tokens.refresh_token).await;
    assert_eq!(status, 200);
    // The reuse is on record for the manager, with the person and the device.
    let recorded: Vec<(String, Option<String>)> = s
        .handle
        .state
        .db
        .read(|tx| {
            let mut stmt =
                tx.prepare("SELECT hex(person_id), hex(device_id) FROM refresh_reuses")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .unwrap();
    let alice = phone.tokens.person_id.to_uppercase();
    assert_eq!(
        recorded,
        vec![(alice, Some(phone.device_id.to_uppercase()))]
    );
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

const KNOWN: &str = "alice@example.com";
const UNKNOWN: &str = "nobody@example.com";

/// The median time of a sign-in with a wrong password and of one with an unknown email, over
/// `rounds` of each, interleaved and alternating which goes first, so that drift on a busy
/// machine hits both alike. Every answer must be the same.
async fn sign_in_medians(s: &TestServer, rounds: usize) -> (Duration, Duration) {
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let order = match round % 2 {
            0 => [KNOWN, UNKNOWN],
            _ => [UNKNOWN, KNOWN],
        };
        for email in order {
            let started = Instant::now();
            let (status, _, body) = sign_in(s, &s.http, email, "guess").await;
            let took = started.elapsed();
            assert_eq!(status, 401);
            assert_eq!(
                body,
                json!({"code": "unauthorized", "message": "wrong email or password"})
            );
            match email {
                KNOWN => known.push(took),
                _ => unknown.push(took),
            }
        }
    }
    (median(known), median(unknown))
}

#[tokio::test]
async fn an_unknown_email_costs_as_much_as_a_wrong_password_and_reads_the_same() {
    let (server, _) = server().await;
    let s = &server;
    // Warm: the connection, the database's pages, the allocator.
    sign_in_medians(s, 1).await;
    // A leak shows in every measurement (without the dummy hash: about 1 ms against 60 ms);
    // a machine busy with other builds can skew one, so three tries are allowed.
    let mut seen = Vec::new();
    for _ in 0..3 {
        let (known, unknown) = sign_in_medians(s, 11).await;
        println!("sign-in medians: wrong password {known:?}, unknown email {unknown:?}");
        let (low, high) = (known.min(unknown), known.max(unknown));
        if high.as_secs_f64() <= low.as_secs_f64() * 1.2 {
            return;
        }
        seen.push((known, unknown));
    }
    panic!("wrong password against unknown email, more than 20% apart each time: {seen:?}");
}
