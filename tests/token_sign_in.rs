//! Token sign-in through `DoorClient` (OpenDOOR `setupWithToken`): the partner app hands the
//! core an ID token of its own OpenID Connect provider (door_server::test_issuer on loopback),
//! configured as the property's issuer; the resident gets the same doors as with a password.

mod common;

use common::*;
use door_core::DoorError;
use door_server::seed::PASSWORD;
use door_server::test_issuer::TestIssuer;

const AUDIENCE: &str = "partner-app";
const ALICE: &str = "alice@1800main.example";

async fn world_with_issuer() -> (World, TestIssuer) {
    let w = World::start().await;
    let issuer = TestIssuer::start().await.unwrap();
    issuer
        .configure(
            &w.server.url(),
            &w.seeded.manager_key,
            &w.seeded.property.id,
            AUDIENCE,
        )
        .await
        .unwrap();
    (w, issuer)
}

fn names(client: &door_core::DoorClient) -> Vec<String> {
    client
        .doors()
        .unwrap()
        .into_iter()
        .map(|d| d.name)
        .collect()
}

#[tokio::test]
async fn a_resident_signs_in_with_the_apps_id_token_and_gets_their_doors() {
    let (mut w, issuer) = world_with_issuer().await;
    let url = w.server.url();
    let (with_password, _, _) = w.client(&url);
    with_password
        .sign_in(ALICE.into(), PASSWORD.into())
        .await
        .unwrap();

    let (app, _, _) = w.client(&url);
    let mut claims = issuer.claims("alice-at-partner", AUDIENCE, w.clock.now());
    claims.email = Some(ALICE.into());
    claims.email_verified = Some(true);
    claims.nonce = Some("nonce-from-the-app".into());
    let person = app
        .sign_in_with_token(issuer.sign(&claims), Some("nonce-from-the-app".into()))
        .await
        .unwrap();
    assert_eq!(person.name, "Alice");
    assert!(app.is_signed_in());
    assert!(!names(&app).is_empty());
    assert_eq!(names(&app), names(&with_password));
    // The device was registered as at any sign-in: the doors come with documents for it.
    assert_eq!(app.devices().await.unwrap().len(), 2);
}

#[tokio::test]
async fn refused_tokens_come_back_as_typed_errors() {
    let (mut w, issuer) = world_with_issuer().await;
    let url = w.server.url();
    let (app, _, _) = w.client(&url);
    assert!(matches!(
        app.sign_in_with_token(" ".into(), None).await,
        Err(DoorError::InvalidInput { field, .. }) if field == "id_token"
    ));
    let forged = issuer.forge(&issuer.claims("alice-at-partner", AUDIENCE, w.clock.now()));
    assert!(matches!(
        app.sign_in_with_token(forged, None).await,
        Err(DoorError::InvalidInput { field, .. }) if field == "id_token"
    ));
    // Valid, but nobody of the property has this identity or email.
    let stranger = issuer.id_token("stranger", "stranger@example.com", AUDIENCE, w.clock.now());
    assert!(matches!(
        app.sign_in_with_token(stranger, None).await,
        Err(DoorError::NotPermitted { .. })
    ));
    let nonce_less = issuer.id_token("alice-at-partner", ALICE, AUDIENCE, w.clock.now());
    assert!(matches!(
        app.sign_in_with_token(nonce_less, Some("expected".into())).await,
        Err(DoorError::InvalidInput { field, .. }) if field == "id_token"
    ));
    assert!(!app.is_signed_in());
}
