//! Sign-in, refresh, invites and device registration against hostile clients, over HTTP:
//! rate limits per account and per client address (429 with `Retry-After`), refresh-token
//! families that end when a spent token comes back, and sign-in that costs the same whether
//! or not the email has an account.

mod common;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use common::*;
use door_server::limits::{Limits, Per, Rate};
use door_server::model::*;
use serde_json::{json, Value};

/// A server with `limits`, a property, and Alice (resident) with a password.
async fn server(limits: Limits) -> (TestServer, Manager) {
    let s = TestServer::start_with(door_server::Options {
        limits,
        ..Default::default()
    })
    .await;
    let m = Manager::create(&s, "1800 Main St", "America/New_York").await;
    m.person(&s, "Alice", "resident", Some("alice@example.com"))
        .await;
    (s, m)
}

/// A client at another address than the test server's own client (127.0.0.1): any 127.x.y.z
/// reaches the loopback server.
fn elsewhere() -> reqwest::Client {
    reqwest::Client::builder()
        .local_address("127.0.0.2".parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
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

const PASSWORD: &str = "correct horse battery";

/// A 429 as the API gives it: `rate_limited`, with the wait in the header and the body alike,
/// at most `most` seconds.
fn assert_throttled((status, retry_after, body): &(u16, Option<u64>, Value), most: u64) {
    assert_eq!(*status, 429, "{body}");
    assert_eq!(body["code"], "rate_limited", "{body}");
    let wait = retry_after.expect("a Retry-After header");
    assert!((1..=most).contains(&wait), "Retry-After: {wait}");
    assert_eq!(body["retry_after"], wait, "{body}");
}

#[tokio::test]
async fn wrong_passwords_for_one_account_are_throttled_then_let_in_again() {
    // Three at once, then one every 20 s: slow enough that no budget refills while a loaded
    // machine hashes the guesses (one a second did, and the fourth guess got through).
    let limits = Limits {
        sign_in: door_server::limits::Budget {
            account: "3/min:3".parse().unwrap(),
            ..unthrottled().sign_in
        },
        ..unthrottled()
    };
    let (s, _) = server(limits).await;
    for _ in 0..3 {
        let (status, _, body) = sign_in(&s, &s.http, "alice@example.com", "guess").await;
        assert_eq!(status, 401, "{body}");
    }
    // Neither a guess nor the right password, from here or elsewhere, until the wait is over.
    let refused = sign_in(&s, &s.http, "alice@example.com", "guess").await;
    assert_throttled(&refused, 20);
    assert_throttled(
        &sign_in(&s, &elsewhere(), "alice@example.com", PASSWORD).await,
        20,
    );
    // Another account is not held back by Alice's budget.
    let (status, _, _) = sign_in(&s, &s.http, "bob@example.com", "guess").await;
    assert_eq!(status, 401);
    tokio::time::sleep(Duration::from_secs(refused.1.unwrap())).await;
    let (status, _, body) = sign_in(&s, &s.http, "alice@example.com", PASSWORD).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn one_address_spraying_many_accounts_is_throttled_and_others_are_not() {
    let limits = Limits {
        sign_in: door_server::limits::Budget {
            address: Rate::new(4, Per::Minute),
            ..unthrottled().sign_in
        },
        ..unthrottled()
    };
    let (s, _) = server(limits).await;
    for n in 0..4 {
        let (status, _, _) = sign_in(&s, &s.http, &format!("user{n}@example.com"), "guess").await;
        assert_eq!(status, 401);
    }
    assert_throttled(
        &sign_in(&s, &s.http, "user9@example.com", "guess").await,
        15,
    );
    assert_throttled(
        &sign_in(&s, &s.http, "alice@example.com", PASSWORD).await,
        15,
    );
    let (status, _, body) = sign_in(&s, &elsewhere(), "alice@example.com", PASSWORD).await;
    assert_eq!(status, 200, "another address has its own budget: {body}");
}

#[tokio::test]
async fn refreshes_are_throttled_per_person_without_spending_the_token() {
    let limits = Limits {
        // One every 20 s after the first two, so none refills while a loaded machine works.
        refresh: door_server::limits::Budget {
            account: "3/min:2".parse().unwrap(),
            ..unthrottled().refresh
        },
        ..unthrottled()
    };
    let (s, _) = server(limits).await;
    let (_, _, tokens) = sign_in(&s, &s.http, "alice@example.com", PASSWORD).await;
    let refresh = |token: &Value| {
        let body = json!({ "refresh_token": token });
        send(&s, &s.http, "POST", "/v1/auth/refresh", "", Some(body))
    };
    let mut token = tokens["refresh_token"].clone();
    for _ in 0..2 {
        let (status, _, next) = refresh(&token).await;
        assert_eq!(status, 200, "{next}");
        token = next["refresh_token"].clone();
    }
    let refused = refresh(&token).await;
    assert_throttled(&refused, 20);
    // The refused refresh did not spend the token (which would end the family at its next use).
    tokio::time::sleep(Duration::from_secs(refused.1.unwrap())).await;
    let (status, _, body) = refresh(&token).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn invite_codes_are_throttled_per_code_and_per_address() {
    let limits = Limits {
        invite: door_server::limits::Budget {
            account: Rate::new(2, Per::Minute),
            address: Rate::new(5, Per::Minute),
        },
        ..unthrottled()
    };
    let (s, _) = server(limits).await;
    let (here, elsewhere) = (&s.http, &elsewhere());
    let redeem = |http, code: &str| {
        let body = json!({ "invite_token": code });
        send(&s, http, "POST", "/v1/auth/invite", "", Some(body))
    };
    for _ in 0..2 {
        assert_eq!(redeem(here, "guessed-code").await.0, 401);
    }
    assert_throttled(&redeem(elsewhere, "guessed-code").await, 30);
    for n in 0..3 {
        assert_eq!(redeem(here, &format!("code-{n}")).await.0, 401);
    }
    assert_throttled(&redeem(here, "code-9").await, 12);
    assert_eq!(redeem(elsewhere, "code-9").await.0, 401);
}

#[tokio::test]
async fn challenges_and_device_registrations_are_throttled_per_person() {
    let limits = Limits {
        challenge: door_server::limits::Budget {
            account: Rate::new(3, Per::Minute),
            ..unthrottled().challenge
        },
        device: door_server::limits::Budget {
            account: Rate::new(1, Per::Minute),
            ..unthrottled().device
        },
        ..unthrottled()
    };
    let (s, m) = server(limits).await;
    m.person(&s, "Bob", "resident", Some("bob@example.com"))
        .await;
    // Alice registers her phone: one challenge, her one registration this minute.
    let alice = Phone::sign_in(&s, "alice@example.com").await;
    let tablet = p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
    let (status, body) = register_device(&s, alice.token(), &tablet).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["code"], "rate_limited");
    // That took her second challenge; the third is hers, the fourth is refused.
    let challenge = || {
        send(
            &s,
            &s.http,
            "POST",
            "/v1/me/devices/challenge",
            alice.token(),
            None,
        )
    };
    assert_eq!(challenge().await.0, 200);
    assert_throttled(&challenge().await, 20);
    // Bob, from the same address, is not held back by Alice's budgets.
    Phone::sign_in(&s, "bob@example.com").await;
}

#[tokio::test]
async fn the_default_limits_leave_a_phones_sign_in_alone_and_stop_a_guesser() {
    let (s, _) = server(Limits::default()).await;
    let phone = Phone::sign_in(&s, "alice@example.com").await;
    phone.doors(&s).await;
    let mut refused = None;
    for n in 1..=40 {
        let (status, retry_after, body) = sign_in(&s, &s.http, "alice@example.com", "guess").await;
        if status == 429 {
            refused = Some((n, (status, retry_after, body)));
            break;
        }
        assert_eq!(status, 401);
    }
    let (n, answer) = refused.expect("40 wrong passwords in a row are throttled");
    // The phone's own sign-in spent one of Alice's five.
    assert_eq!(n, 5, "the fifth guess is refused");
    assert_throttled(&answer, 12);
}

#[tokio::test]
async fn an_anonymous_client_gets_401_from_every_operation_that_takes_a_token() {
    let (s, _) = server(unthrottled()).await;
    for scheme in ["person", "manager", "admin"] {
        for token in ["", "not-a-token"] {
            assert_refused_on(&s, scheme, token, "without a valid token").await;
        }
    }
}

#[tokio::test]
async fn a_reused_refresh_token_ends_its_whole_family_and_is_recorded() {
    let (server, _) = server(unthrottled()).await;
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
    let (server, _) = server(unthrottled()).await;
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
