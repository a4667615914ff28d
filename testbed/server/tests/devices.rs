//! Devices and sessions: the per-person device limit, listing and removing devices (by the
//! person and by a manager), a removed device's credential reaching the locks as a
//! revocation, and sessions that end with the grant they rest on (ex-guests).

mod common;

use common::*;
use door_lock::{Lock, LockClock};
use door_protocol::{open_bundle, Id, IssuerKeys, IssuerPublicKey, LockConfig, LockKey};
use door_server::model::*;
use p256::ecdsa::SigningKey;
use serde_json::{json, Value};
use tempfile::TempDir;

fn code(body: &Value) -> &str {
    body["code"].as_str().unwrap_or("")
}

fn new_key() -> SigningKey {
    SigningKey::random(&mut rand::rngs::OsRng)
}

/// One property, an offline Lobby, Alice (resident, may share) and Bob, both holding the
/// Lobby key; Alice signed in on one phone.
struct Site {
    s: TestServer,
    m: Manager,
    lobby: DoorJson,
    lock_key: LockKey,
    alice: PersonJson,
    bob: PersonJson,
    phone: Phone,
}

async fn site_with(options: door_server::Options) -> Site {
    let s = TestServer::start_with(options).await;
    let m = Manager::create(&s, "1800 Main St", "America/New_York").await;
    let lock_key = LockKey::generate(&mut rand::rngs::OsRng);
    let lobby: DoorJson = s
        .ok(
            "POST",
            &m.path("/doors"),
            &m.key,
            Some(&json!({"name": "Lobby", "online": false, "keypad": true,
                "lock_public_key": b64(&lock_key.public().to_sec1_compressed())})),
            201,
        )
        .await;
    let home = m
        .key(&s, "Lobby", vec![door_entry(&lobby, false, None)])
        .await;
    let alice = m
        .person(&s, "Alice", "resident", Some("alice@example.com"))
        .await;
    let bob = m
        .person(&s, "Bob", "resident", Some("bob@example.com"))
        .await;
    m.assign(&s, &alice, &home, true).await;
    m.assign(&s, &bob, &home, false).await;
    let phone = Phone::sign_in(&s, "alice@example.com").await;
    Site {
        s,
        m,
        lobby,
        lock_key,
        alice,
        bob,
        phone,
    }
}

async fn site() -> Site {
    site_with(door_server::Options::default()).await
}

async fn login(s: &TestServer, email: &str) -> Tokens {
    s.ok(
        "POST",
        "/v1/auth/login",
        "",
        Some(&json!({"email": email, "password": "correct horse battery"})),
        200,
    )
    .await
}

async fn my_devices(s: &TestServer, token: &str) -> Vec<RegisteredDevice> {
    s.ok("GET", "/v1/me/devices", token, None::<&()>, 200).await
}

async fn refresh(s: &TestServer, refresh_token: &str) -> (u16, Value) {
    s.call(
        "POST",
        "/v1/auth/refresh",
        "",
        Some(&json!({ "refresh_token": refresh_token })),
    )
    .await
}

#[tokio::test]
async fn sixty_devices_in_a_row_are_refused_after_the_limit() {
    // Sixty in a minute would also meet the registration rate limit first (auth.rs): this is
    // about the count.
    let site = site_with(door_server::Options {
        limits: unthrottled(),
        ..Default::default()
    })
    .await;
    let s = &site.s;
    let token = site.phone.token().to_owned();
    let limit = door_server::DEFAULT_DEVICE_LIMIT as usize;
    // Alice's phone is her first device.
    let mut keys = vec![site.phone.key.clone()];
    let mut refused = 0;
    for _ in 0..60 {
        let key = new_key();
        let (status, body) = register_device(s, &token, &key).await;
        if keys.len() < limit {
            assert_eq!(status, 201, "{body}");
            keys.push(key);
        } else {
            assert_eq!(
                (status, code(&body), body["field"].as_str()),
                (409, "device_limit", Some("public_key")),
                "{body}"
            );
            assert_eq!(body["limit"], json!(limit));
            assert!(
                body["message"]
                    .as_str()
                    .unwrap()
                    .contains(&limit.to_string()),
                "{body}"
            );
            refused += 1;
        }
    }
    assert_eq!(refused, 60 - (limit - 1));
    assert_eq!(my_devices(s, &token).await.len(), limit);

    // The same key again is the same device, even at the limit.
    let (status, body) = register_device(s, &token, &keys[2]).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(my_devices(s, &token).await.len(), limit);

    // Removed devices do not count. (Not the device this session registered last: removing
    // that one would end the session.)
    let listed = my_devices(s, &token).await;
    let other = listed.iter().find(|d| !d.current).unwrap();
    let (status, _) = s
        .call(
            "DELETE",
            &format!("/v1/me/devices/{}", other.id),
            &token,
            None,
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = register_device(s, &token, &new_key()).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = register_device(s, &token, &new_key()).await;
    assert_eq!((status, code(&body)), (409, "device_limit"));

    // Another person's limit is their own.
    let bob = Phone::sign_in(s, "bob@example.com").await;
    assert_eq!(my_devices(s, bob.token()).await.len(), 1);
}

#[tokio::test]
async fn the_device_limit_is_configurable() {
    let site = site_with(door_server::Options {
        device_limit: 2,
        ..Default::default()
    })
    .await;
    let s = &site.s;
    let (status, _) = register_device(s, site.phone.token(), &new_key()).await;
    assert_eq!(status, 201);
    let (status, body) = register_device(s, site.phone.token(), &new_key()).await;
    assert_eq!((status, body["limit"].as_u64()), (409, Some(2)), "{body}");
}

#[tokio::test]
async fn a_resident_lists_and_removes_their_own_devices_only() {
    let site = site().await;
    let s = &site.s;
    let phone = &site.phone;
    phone.doors(s).await;
    let tablet = Phone::sign_in(s, "alice@example.com").await;

    let listed = my_devices(s, phone.token()).await;
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].id, phone.device_id);
    assert!(listed[0].current && !listed[1].current);
    assert_eq!(listed[0].last_seen_at, Some(s.now()));
    assert_eq!(
        listed[1].last_seen_at, None,
        "the tablet never fetched its doors"
    );
    assert_eq!(listed[0].removed_at, None);
    assert!(my_devices(s, tablet.token()).await[1].current);

    // Bob cannot see or remove Alice's devices: they are not found.
    let bob = Phone::sign_in(s, "bob@example.com").await;
    let bobs = my_devices(s, bob.token()).await;
    assert_eq!(bobs.len(), 1);
    assert_eq!(bobs[0].id, bob.device_id);
    let (status, body) = s
        .call(
            "DELETE",
            &format!("/v1/me/devices/{}", tablet.device_id),
            bob.token(),
            None,
        )
        .await;
    assert_eq!((status, code(&body)), (404, "not_found"));
    let (status, body) = s
        .call("DELETE", "/v1/me/devices/not-hex", bob.token(), None)
        .await;
    assert_eq!((status, body["field"].as_str()), (422, Some("device_id")));
    let (status, _) = s.call("GET", "/v1/me/devices", "", None).await;
    assert_eq!(status, 401);

    // Alice removes the tablet from her phone.
    s.set_now(s.now() + 60);
    let removed: RegisteredDevice = s
        .ok(
            "DELETE",
            &format!("/v1/me/devices/{}", tablet.device_id),
            phone.token(),
            None::<&()>,
            200,
        )
        .await;
    assert_eq!(removed.removed_at, Some(s.now()));
    // Its session ended with it; the phone's did not.
    let (status, _) = s.call("GET", "/v1/me", tablet.token(), None).await;
    assert_eq!(status, 401);
    assert_eq!(refresh(s, &tablet.tokens.refresh_token).await.0, 401);
    let listed = my_devices(s, phone.token()).await;
    assert_eq!(listed.len(), 2, "removed devices stay listed");
    assert_eq!(listed[1].removed_at, Some(s.now()));
    // No documents for a removed device.
    let (status, body) = s
        .call(
            "GET",
            &format!("/v1/me/doors?device_id={}", tablet.device_id),
            phone.token(),
            None,
        )
        .await;
    assert_eq!((status, body["field"].as_str()), (422, Some("device_id")));
    // Removing it again changes nothing.
    s.set_now(s.now() + 60);
    let again: RegisteredDevice = s
        .ok(
            "DELETE",
            &format!("/v1/me/devices/{}", tablet.device_id),
            phone.token(),
            None::<&()>,
            200,
        )
        .await;
    assert_eq!(again, removed);

    // Removing the calling device signs this session out, and a refresh keeps that binding.
    let fresh: Tokens = s
        .ok(
            "POST",
            "/v1/auth/refresh",
            "",
            Some(&json!({ "refresh_token": phone.tokens.refresh_token })),
            200,
        )
        .await;
    let (status, _) = s
        .call(
            "DELETE",
            &format!("/v1/me/devices/{}", phone.device_id),
            &fresh.access_token,
            None,
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = s.call("GET", "/v1/me", &fresh.access_token, None).await;
    assert_eq!(status, 401);
    assert_eq!(refresh(s, &fresh.refresh_token).await.0, 401);

    // Signing in again with the removed phone's key brings that device back.
    let tokens = login(s, "alice@example.com").await;
    let (status, body) = register_device(s, &tokens.access_token, &phone.key).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["device_id"].as_str(), Some(phone.device_id.as_str()));
    let listed = my_devices(s, &tokens.access_token).await;
    assert!(listed[0].current && listed[0].removed_at.is_none());
}

#[tokio::test]
async fn a_manager_lists_and_removes_a_persons_devices() {
    let site = site().await;
    let s = &site.s;
    let m = &site.m;
    let alice_devices = m.path(&format!("/people/{}/devices", site.alice.id));
    let listed: Vec<RegisteredDevice> = s.ok("GET", &alice_devices, &m.key, None::<&()>, 200).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, site.phone.device_id);
    assert!(!listed[0].current, "the manager API has no calling device");

    // Bob's device is not Alice's: not found under her.
    let bob = Phone::sign_in(s, "bob@example.com").await;
    let (status, body) = s
        .call(
            "DELETE",
            &format!("{alice_devices}/{}", bob.device_id),
            &m.key,
            None,
        )
        .await;
    assert_eq!((status, code(&body)), (404, "not_found"));
    // Another property's manager finds nothing; a resident's token is no manager key.
    let other = Manager::create(s, "Elsewhere", "America/New_York").await;
    let (status, _) = s.call("GET", &alice_devices, &other.key, None).await;
    assert_eq!(status, 404);
    let (status, _) = s
        .call("GET", &alice_devices, site.phone.token(), None)
        .await;
    assert_eq!(status, 401);

    let removed: RegisteredDevice = s
        .ok(
            "DELETE",
            &format!("{alice_devices}/{}", site.phone.device_id),
            &m.key,
            None::<&()>,
            200,
        )
        .await;
    assert_eq!(removed.removed_at, Some(s.now()));
    // Alice's phone is signed out with its device.
    let (status, _) = s.call("GET", "/v1/me", site.phone.token(), None).await;
    assert_eq!(status, 401);
    let listed: Vec<RegisteredDevice> = s.ok("GET", &alice_devices, &m.key, None::<&()>, 200).await;
    assert_eq!(listed[0].removed_at, Some(s.now()));
    let bobs: Vec<RegisteredDevice> = s
        .ok(
            "GET",
            &m.path(&format!("/people/{}/devices", site.bob.id)),
            &m.key,
            None::<&()>,
            200,
        )
        .await;
    assert!(bobs[0].removed_at.is_none());
}

#[tokio::test]
async fn a_removed_devices_documents_are_voided_at_the_lock_by_its_persons_floor() {
    let site = site().await;
    let s = &site.s;
    let tablet = Phone::sign_in(s, "alice@example.com").await;
    let phone_credential = site.phone.doors(s).await.credential_id.unwrap();
    let tablet_credential = tablet.doors(s).await.credential_id.unwrap();

    let issuer = IssuerPublicKey::from_sec1(&unb64(&site.m.property.issuer_public_key)).unwrap();
    let config = LockConfig::new(
        Id::from_hex(&site.lobby.lock_id).unwrap(),
        Id::from_hex(&site.lobby.id).unwrap(),
        site.lock_key.clone(),
        IssuerKeys::single(issuer),
    );
    let dir = TempDir::new().unwrap();
    let lock = Lock::open(dir.path(), config, LockClock::fixed(s.now())).unwrap();
    let bundle = |b: SyncBundleJson| unb64(b.bundle.as_deref().expect("a bundle"));
    let path = format!("/v1/locks/{}/bundle?since=", site.lobby.lock_id);
    let first: SyncBundleJson = s
        .ok(
            "GET",
            &format!("{path}0"),
            site.phone.token(),
            None::<&()>,
            200,
        )
        .await;
    let at = first.iteration;
    lock.apply_bundle(&bundle(first)).unwrap();

    let _: RegisteredDevice = s
        .ok(
            "DELETE",
            &format!("/v1/me/devices/{}", tablet.device_id),
            site.phone.token(),
            None::<&()>,
            200,
        )
        .await;
    let delta: SyncBundleJson = s
        .ok(
            "GET",
            &format!("{path}{at}"),
            site.phone.token(),
            None::<&()>,
            200,
        )
        .await;
    assert!(!delta.up_to_date && delta.base_iteration == at);
    let signed = bundle(delta);
    let opened = open_bundle(&signed, lock.config()).unwrap();
    // One floor for Alice, above every document she holds (tablet and phone alike): the
    // revocation state is per person, not per device.
    let floors = &opened.bundle().floors;
    assert_eq!(floors.len(), 1, "one entry for the person");
    assert_eq!(floors[0].person_id.to_string(), site.alice.id);
    let applied = lock.apply_bundle(&signed).unwrap();
    assert!(!applied.full && applied.iteration == at + 1);
    // (tests/door_sync.rs unlocks with the removed phone at a reference lock, end to end.)
    // The phone fetches documents above the floor at its next refresh; the tablet gets none.
    let renewed = site.phone.doors(s).await.credential_id.unwrap();
    assert_ne!(renewed, phone_credential);
    assert_ne!(renewed, tablet_credential);
}

/// Alice invites a guest to the Lobby until `ends_at`; the guest redeems and registers.
async fn guest(site: &Site, ends_at: i64) -> (InvitedGuest, Phone) {
    let s = &site.s;
    let invited: InvitedGuest = s
        .ok(
            "POST",
            "/v1/me/guests",
            site.phone.token(),
            Some(
                &json!({"door_ids": [site.lobby.id], "contact": "+1 555 0100",
                "starts_at": s.now(), "ends_at": ends_at}),
            ),
            201,
        )
        .await;
    let tokens: Tokens = s
        .ok(
            "POST",
            "/v1/auth/invite",
            "",
            Some(&json!({ "invite_token": invited.invite_token })),
            200,
        )
        .await;
    let phone = Phone::with_tokens(s, tokens).await;
    phone.doors(s).await;
    (invited, phone)
}

/// The ex-guest's old tokens, both unexpired: the refresh token is refused, and so is the
/// access token on every operation a person may call, as 401.
async fn assert_session_over(s: &TestServer, guest: &Phone, why: &str) {
    let (status, body) = refresh(s, &guest.tokens.refresh_token).await;
    assert_eq!(
        (status, code(&body)),
        (401, "unauthorized"),
        "refresh {why}: {body}"
    );
    assert!(
        s.now() < guest.tokens.expires_at,
        "the access token is live"
    );
    assert_refused_everywhere(s, guest.token(), why).await;
}

#[tokio::test]
async fn a_guests_session_ends_when_the_invite_ends() {
    let site = site().await;
    let s = &site.s;
    let (_, guest) = guest(&site, s.now() + 600).await;
    let (status, _) = s.call("GET", "/v1/time", guest.token(), None).await;
    assert_eq!(status, 200);
    s.set_now(s.now() + 600);
    assert_session_over(s, &guest, "after the invite ended").await;
}

#[tokio::test]
async fn a_guests_session_ends_when_the_invite_is_revoked() {
    let site = site().await;
    let s = &site.s;
    let (invited, guest) = guest(&site, s.now() + 86_400).await;
    let _: GuestJson = s
        .ok(
            "DELETE",
            &format!("/v1/me/guests/{}", invited.guest.id),
            site.phone.token(),
            None::<&()>,
            200,
        )
        .await;
    assert_session_over(s, &guest, "after the invite was revoked").await;
}

#[tokio::test]
async fn a_guests_session_ends_when_the_host_is_revoked() {
    let site = site().await;
    let s = &site.s;
    let (invited, guest) = guest(&site, s.now() + 86_400).await;
    // A second invite, not yet redeemed when the host goes.
    let unused: InvitedGuest = s
        .ok(
            "POST",
            "/v1/me/guests",
            site.phone.token(),
            Some(
                &json!({"door_ids": [site.lobby.id], "contact": "+1 555 0101",
                "starts_at": s.now(), "ends_at": s.now() + 86_400}),
            ),
            201,
        )
        .await;
    let (status, _) = s
        .call(
            "POST",
            &site.m.path(&format!("/people/{}/revoke", site.alice.id)),
            &site.m.key,
            None,
        )
        .await;
    assert_eq!(status, 204);
    assert_session_over(s, &guest, "after the host was revoked").await;
    assert!(!invited.guest.revoked);
    let (status, body) = s
        .call(
            "POST",
            "/v1/auth/invite",
            "",
            Some(&json!({ "invite_token": unused.invite_token })),
        )
        .await;
    assert_eq!((status, code(&body)), (403, "revoked"), "{body}");
}

#[tokio::test]
async fn an_ended_or_revoked_invite_cannot_be_redeemed() {
    let site = site().await;
    let s = &site.s;
    let invite = |ends_at: i64| {
        let token = site.phone.token().to_owned();
        let lobby = site.lobby.id.clone();
        async move {
            let invited: InvitedGuest = s
                .ok(
                    "POST",
                    "/v1/me/guests",
                    &token,
                    Some(&json!({"door_ids": [lobby], "contact": "+1 555 0100",
                        "starts_at": s.now(), "ends_at": ends_at})),
                    201,
                )
                .await;
            invited
        }
    };
    let redeem = |token: String| async move {
        s.call(
            "POST",
            "/v1/auth/invite",
            "",
            Some(&json!({ "invite_token": token })),
        )
        .await
    };
    let short = invite(s.now() + 60).await;
    let revoked = invite(s.now() + 86_400).await;
    let _: GuestJson = s
        .ok(
            "DELETE",
            &format!("/v1/me/guests/{}", revoked.guest.id),
            site.phone.token(),
            None::<&()>,
            200,
        )
        .await;
    let (status, body) = redeem(revoked.invite_token).await;
    assert_eq!((status, code(&body)), (403, "revoked"));
    s.set_now(s.now() + 60);
    let (status, body) = redeem(short.invite_token).await;
    assert_eq!((status, code(&body)), (401, "unauthorized"), "{body}");
}
