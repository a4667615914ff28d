//! Token sign-in (`POST /v1/auth/token`) with the ID tokens of a loopback OpenID Connect
//! issuer (door_server::test_issuer): real HTTP for the JWK set, real ES256 signatures.

mod common;

use common::*;
use door_server::model::*;
use door_server::oidc::keys::REFETCH_INTERVAL;
use door_server::oidc::verify::LEEWAY;
use door_server::test_issuer::{IdTokenClaims, TestIssuer};
use serde_json::{json, Value};

const AUDIENCE: &str = "partner-app";
const ALICE: &str = "alice@example.com";

struct Setup {
    s: TestServer,
    m: Manager,
    issuer: TestIssuer,
    alice: PersonJson,
}

/// A property whose issuer is a fresh test issuer, with Alice (resident) holding a key to the
/// Lobby.
async fn setup_with(limits: door_server::limits::Limits) -> Setup {
    let s = TestServer::start_with(door_server::Options {
        limits,
        ..Default::default()
    })
    .await;
    let m = Manager::create(&s, "1800 Main St", "America/New_York").await;
    let lobby = m.door(&s, "Lobby", true).await;
    let key = m
        .key(&s, "Residents", vec![door_entry(&lobby, false, None)])
        .await;
    let alice = m.person(&s, "Alice", "resident", Some(ALICE)).await;
    m.assign(&s, &alice, &key, false).await;
    let issuer = TestIssuer::start().await.unwrap();
    configure(&s, &m, &issuer).await;
    Setup {
        s,
        m,
        issuer,
        alice,
    }
}

async fn setup() -> Setup {
    setup_with(unthrottled()).await
}

async fn configure(s: &TestServer, m: &Manager, issuer: &TestIssuer) {
    let config =
        json!({"issuer": issuer.issuer(), "audience": AUDIENCE, "jwks_url": issuer.jwks_url()});
    let (status, body) = s.call("PUT", &m.path("/oidc"), &m.key, Some(&config)).await;
    assert_eq!(status, 200, "{body}");
}

impl Setup {
    /// Claims for Alice's first sign-in: her verified email.
    fn alice_claims(&self) -> IdTokenClaims {
        let mut claims = self.issuer.claims("alice-sub", AUDIENCE, self.s.now());
        claims.email = Some(ALICE.into());
        claims.email_verified = Some(true);
        claims
    }

    async fn sign_in(&self, token: &str, nonce: Option<&str>) -> (u16, Value) {
        let body = json!({"id_token": token, "nonce": nonce});
        self.s.call("POST", "/v1/auth/token", "", Some(&body)).await
    }

    /// Refused with the one answer every failing token gets.
    async fn assert_refused(&self, token: &str, nonce: Option<&str>, why: &str) {
        let (status, body) = self.sign_in(token, nonce).await;
        assert_eq!(status, 401, "{why}: {body}");
        assert_eq!(
            body,
            json!({"code": "unauthorized", "message": "the identity token was not accepted"}),
            "{why}: the answer does not say which check failed"
        );
    }

    async fn assert_signs_in(&self, token: &str, nonce: Option<&str>) -> Tokens {
        let (status, body) = self.sign_in(token, nonce).await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_value(body).unwrap()
    }
}

#[tokio::test]
async fn a_good_token_signs_the_person_in_and_they_get_their_doors() {
    let t = setup().await;
    let tokens = t
        .assert_signs_in(&t.issuer.sign(&t.alice_claims()), None)
        .await;
    assert_eq!(tokens.person_id, t.alice.id);
    let phone = Phone::with_tokens(&t.s, tokens).await;
    let doors = phone.doors(&t.s).await;
    assert_eq!(
        doors
            .doors
            .iter()
            .map(|d| d.name.as_str())
            .collect::<Vec<_>>(),
        ["Lobby"]
    );
    // Linked: the subject alone signs her in from now on, without an email.
    let claims = t.issuer.claims("alice-sub", AUDIENCE, t.s.now());
    let again = t.assert_signs_in(&t.issuer.sign(&claims), None).await;
    assert_eq!(again.person_id, t.alice.id);
}

#[tokio::test]
async fn tokens_for_another_audience_or_from_another_issuer_are_refused() {
    let t = setup().await;
    let mut claims = t.alice_claims();
    claims.aud = "some-other-app".into();
    t.assert_refused(&t.issuer.sign(&claims), None, "wrong audience")
        .await;

    // An issuer no property names, even with Alice's verified email.
    let stranger = TestIssuer::start().await.unwrap();
    let mut claims = stranger.claims("alice-sub", AUDIENCE, t.s.now());
    claims.email = Some(ALICE.into());
    claims.email_verified = Some(true);
    t.assert_refused(&stranger.sign(&claims), None, "unknown issuer")
        .await;

    // The configured issuer's name on a token the stranger signed.
    let mut claims = t.alice_claims();
    claims.iss = stranger.issuer();
    t.assert_refused(&t.issuer.sign(&claims), None, "iss of another issuer")
        .await;
    let mut claims = stranger.claims("alice-sub", AUDIENCE, t.s.now());
    claims.iss = t.issuer.issuer();
    t.assert_refused(&stranger.sign(&claims), None, "signed by another issuer")
        .await;
}

#[tokio::test]
async fn expired_and_future_tokens_are_refused_within_a_small_leeway() {
    let t = setup().await;
    let now = t.s.now();
    let mut claims = t.alice_claims();
    claims.iat = now - 3600;
    claims.exp = now - LEEWAY - 1;
    t.assert_refused(&t.issuer.sign(&claims), None, "expired")
        .await;
    claims.iat = now + LEEWAY + 60;
    claims.exp = now + 3600;
    t.assert_refused(&t.issuer.sign(&claims), None, "issued in the future")
        .await;
    // A clock a little behind the issuer's is no reason to refuse.
    claims.iat = now - 3600;
    claims.exp = now - LEEWAY + 5;
    t.assert_signs_in(&t.issuer.sign(&claims), None).await;
}

#[tokio::test]
async fn a_bad_signature_or_an_unpublished_key_is_refused() {
    let t = setup().await;
    t.assert_refused(&t.issuer.forge(&t.alice_claims()), None, "forged")
        .await;
    let mut token = t.issuer.sign(&t.alice_claims());
    // One bit of the signature changed.
    let last = token.pop().unwrap();
    token.push(if last == 'A' { 'B' } else { 'A' });
    t.assert_refused(&token, None, "tampered signature").await;
    // A tampered claim under the original signature.
    let good = t.issuer.sign(&t.alice_claims());
    let parts: Vec<&str> = good.split('.').collect();
    let mut claims = t.alice_claims();
    claims.sub = "mallory".into();
    let forged_payload = t.issuer.sign(&claims);
    let payload = forged_payload.split('.').nth(1).unwrap();
    let spliced = format!("{}.{}.{}", parts[0], payload, parts[2]);
    t.assert_refused(&spliced, None, "spliced claims").await;
    t.assert_refused("not-a-jwt", None, "not a JWT").await;
}

#[tokio::test]
async fn tokens_without_a_signature_with_hmac_or_a_mismatched_algorithm_are_refused() {
    use base64::Engine;
    let t = setup().await;
    let b64 = |v: &Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
    };
    let payload = b64(&serde_json::to_value(t.alice_claims()).unwrap());
    let kid = t.issuer.kid();
    let none = format!("{}.{payload}.", b64(&json!({"alg": "none", "kid": kid})));
    t.assert_refused(&none, None, "alg none").await;
    // HMAC keyed with the published public key (the classic key confusion).
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(kid.clone());
    let hs256 = jsonwebtoken::encode(
        &header,
        &t.alice_claims(),
        &jsonwebtoken::EncodingKey::from_secret(t.issuer.jwks_url().as_bytes()),
    )
    .unwrap();
    t.assert_refused(&hs256, None, "HS256").await;
    // RS256 claimed under the issuer's P-256 key, with the ES256 signature.
    let good = t.issuer.sign(&t.alice_claims());
    let signature = good.rsplit('.').next().unwrap();
    let rs256 = format!(
        "{}.{payload}.{signature}",
        b64(&json!({"alg": "RS256", "typ": "JWT", "kid": kid}))
    );
    t.assert_refused(&rs256, None, "RS256 under an EC key")
        .await;
}

#[tokio::test]
async fn unknown_key_ids_refetch_the_keys_at_most_once_per_interval() {
    let t = setup().await;
    t.assert_signs_in(&t.issuer.sign(&t.alice_claims()), None)
        .await;
    assert_eq!(t.issuer.jwks_fetches(), 1);
    for _ in 0..5 {
        t.assert_refused(
            &t.issuer.sign_unpublished(&t.alice_claims()),
            None,
            "unknown kid",
        )
        .await;
    }
    assert_eq!(t.issuer.jwks_fetches(), 1, "no refetch within the interval");
    t.s.set_now(t.s.now() + REFETCH_INTERVAL);
    for _ in 0..5 {
        t.assert_refused(
            &t.issuer.sign_unpublished(&t.alice_claims()),
            None,
            "unknown kid",
        )
        .await;
    }
    assert_eq!(t.issuer.jwks_fetches(), 2, "one refetch per interval");
}

#[tokio::test]
async fn a_rotated_key_works_after_the_refetch_and_the_removed_one_stops() {
    let t = setup().await;
    let old = t.issuer.sign(&t.alice_claims());
    t.assert_signs_in(&old, None).await;
    t.issuer.rotate();
    let new = t.issuer.sign(&t.alice_claims());
    t.s.set_now(t.s.now() + REFETCH_INTERVAL);
    let mut claims = t.alice_claims();
    claims.iat = t.s.now();
    let new_later = t.issuer.sign(&claims);
    t.assert_signs_in(&new_later, None).await;
    assert_eq!(t.issuer.jwks_fetches(), 2);
    t.assert_signs_in(&new, None).await;
    t.assert_refused(&old, None, "a token under the removed key")
        .await;
}

#[tokio::test]
async fn the_nonce_the_app_names_must_be_the_tokens() {
    let t = setup().await;
    let mut claims = t.alice_claims();
    claims.nonce = Some("n-0S6_WzA2Mj".into());
    let token = t.issuer.sign(&claims);
    t.assert_refused(&token, Some("another-nonce"), "nonce mismatch")
        .await;
    let without = t.issuer.sign(&t.alice_claims());
    t.assert_refused(&without, Some("n-0S6_WzA2Mj"), "no nonce in the token")
        .await;
    t.assert_signs_in(&token, Some("n-0S6_WzA2Mj")).await;
}

#[tokio::test]
async fn an_unverified_email_links_no_one_and_tokens_create_no_people() {
    let t = setup().await;
    let mut claims = t.alice_claims();
    claims.email_verified = Some(false);
    let (status, body) = t.sign_in(&t.issuer.sign(&claims), None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("forbidden")),
        "{body}"
    );
    claims.email_verified = None;
    let (status, _) = t.sign_in(&t.issuer.sign(&claims), None).await;
    assert_eq!(status, 403);
    let mut claims = t.issuer.claims("newcomer", AUDIENCE, t.s.now());
    claims.email = Some("newcomer@example.com".into());
    claims.email_verified = Some(true);
    let (status, _) = t.sign_in(&t.issuer.sign(&claims), None).await;
    assert_eq!(status, 403, "an unknown email creates no one");
    let people: Vec<PersonJson> =
        t.s.ok("GET", &t.m.path("/people"), &t.m.key, None::<&()>, 200)
            .await;
    assert_eq!(people.len(), 1);
    // Once Alice is linked, another subject with her verified email does not take her over.
    t.assert_signs_in(&t.issuer.sign(&t.alice_claims()), None)
        .await;
    let mut claims = t.alice_claims();
    claims.sub = "someone-else".into();
    let (status, _) = t.sign_in(&t.issuer.sign(&claims), None).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn a_person_of_another_property_is_refused() {
    let t = setup().await;
    let other = Manager::create(&t.s, "9 Elm St", "America/New_York").await;
    other
        .person(&t.s, "Bob", "resident", Some("bob@example.com"))
        .await;
    let mut claims = t.issuer.claims("bob-sub", AUDIENCE, t.s.now());
    claims.email = Some("bob@example.com".into());
    claims.email_verified = Some(true);
    let (status, body) = t.sign_in(&t.issuer.sign(&claims), None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("forbidden")),
        "{body}"
    );
}

#[tokio::test]
async fn a_revoked_person_is_refused() {
    let t = setup().await;
    t.assert_signs_in(&t.issuer.sign(&t.alice_claims()), None)
        .await;
    let path = t.m.path(&format!("/people/{}/revoke", t.alice.id));
    let (status, body) = t.s.call("POST", &path, &t.m.key, None).await;
    assert!(status < 300, "{body}");
    let (status, body) = t.sign_in(&t.issuer.sign(&t.alice_claims()), None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("revoked")),
        "{body}"
    );
}

#[tokio::test]
async fn token_sign_in_is_rate_limited_like_password_sign_in() {
    let t = setup_with(door_server::limits::Limits::default()).await;
    let token = t.issuer.forge(&t.alice_claims());
    for _ in 0..5 {
        t.assert_refused(&token, None, "forged").await;
    }
    let (status, body) = t.sign_in(&token, None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (429, Some("rate_limited")),
        "{body}"
    );
    // The budget is the identity's, whatever the token: a good one waits too.
    let (status, _) = t.sign_in(&t.issuer.sign(&t.alice_claims()), None).await;
    assert_eq!(status, 429);
}

#[tokio::test]
async fn managers_set_their_own_propertys_issuer_with_checked_urls() {
    let t = setup().await;
    let config: Value =
        t.s.ok("GET", &t.m.path("/oidc"), &t.m.key, None::<&()>, 200)
            .await;
    assert_eq!(config["audience"], AUDIENCE);
    for (field, config) in [
        (
            "jwks_url",
            json!({"issuer": t.issuer.issuer(), "audience": AUDIENCE, "jwks_url": "http://idp.example.com/jwks"}),
        ),
        (
            "issuer",
            json!({"issuer": "not a url", "audience": AUDIENCE, "jwks_url": t.issuer.jwks_url()}),
        ),
        (
            "audience",
            json!({"issuer": t.issuer.issuer(), "audience": " ", "jwks_url": t.issuer.jwks_url()}),
        ),
    ] {
        let (status, body) =
            t.s.call("PUT", &t.m.path("/oidc"), &t.m.key, Some(&config))
                .await;
        assert_eq!(
            (status, body["field"].as_str()),
            (422, Some(field)),
            "{body}"
        );
    }
    let other = Manager::create(&t.s, "9 Elm St", "America/New_York").await;
    let (status, _) = t.s.call("GET", &t.m.path("/oidc"), &other.key, None).await;
    assert_eq!(status, 404, "another property's manager sees nothing");
    // Turned off: tokens are refused like any unknown issuer's.
    let (status, _) = t.s.call("DELETE", &t.m.path("/oidc"), &t.m.key, None).await;
    assert_eq!(status, 204);
    t.assert_refused(&t.issuer.sign(&t.alice_claims()), None, "token sign-in off")
        .await;
}

#[tokio::test]
async fn a_new_issuer_replaces_the_old_one_and_its_links() {
    let t = setup().await;
    t.assert_signs_in(&t.issuer.sign(&t.alice_claims()), None)
        .await;
    let successor = TestIssuer::start().await.unwrap();
    configure(&t.s, &t.m, &successor).await;
    t.assert_refused(&t.issuer.sign(&t.alice_claims()), None, "the old issuer")
        .await;
    // Alice links again, by her verified email, under her subject at the new issuer.
    let mut claims = successor.claims("alice-at-successor", AUDIENCE, t.s.now());
    claims.email = Some(ALICE.into());
    claims.email_verified = Some(true);
    let tokens = t.assert_signs_in(&successor.sign(&claims), None).await;
    assert_eq!(tokens.person_id, t.alice.id);
}
