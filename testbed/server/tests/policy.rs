//! Access ends when the manager says so, end to end: the real server over HTTP, a reference
//! lock applying the bundles it builds, and documents presented to that lock exactly as a
//! phone presents them. Each test is one way legal moves used to combine into access the
//! policy denies (issue "Access ends when the manager says so", points 1-5).

mod common;

use common::*;
use door_lock::{Lock, LockClock};
use door_protocol::sync::DoorcodeDenied;
use door_protocol::unlock::{DenyReason, UnlockResult};
use door_protocol::{
    inspect_bundle, DoorcodeResult, Id, IssuerKeys, IssuerPublicKey, LockConfig, LockKey,
};
use door_server::model::*;
use p256::ecdsa::SigningKey;
use serde_json::json;
use tempfile::TempDir;

const HOUR: i64 = 3600;
const DAY: i64 = 86_400;

/// One offline keypad door, its reference lock, and the manager.
struct Site {
    s: TestServer,
    m: Manager,
    door: DoorJson,
    lock: Lock,
    _dir: TempDir,
}

/// An offline door whose lock holds `lock_key`, with a keypad or not.
async fn offline_door(
    s: &TestServer,
    m: &Manager,
    name: &str,
    keypad: bool,
    lock_key: &LockKey,
) -> DoorJson {
    s.ok(
        "POST",
        &m.path("/doors"),
        &m.key,
        Some(&json!({"name": name, "online": false, "keypad": keypad,
            "lock_public_key": b64(&lock_key.public().to_sec1_compressed())})),
        201,
    )
    .await
}

async fn site() -> Site {
    let s = TestServer::start().await;
    let m = Manager::create(&s, "1800 Main St", "America/New_York").await;
    let lock_key = LockKey::generate(&mut rand::rngs::OsRng);
    let door = offline_door(&s, &m, "Pool", true, &lock_key).await;
    let issuer = IssuerPublicKey::from_sec1(&unb64(&m.property.issuer_public_key)).unwrap();
    let config = LockConfig::new(
        Id::from_hex(&door.lock_id).unwrap(),
        Id::from_hex(&door.id).unwrap(),
        lock_key,
        IssuerKeys::single(issuer),
    );
    let dir = TempDir::new().unwrap();
    let lock = Lock::open(dir.path(), config, LockClock::fixed(s.now())).unwrap();
    Site {
        s,
        m,
        door,
        lock,
        _dir: dir,
    }
}

impl Site {
    /// Moves the server's and the lock's clocks to `t`.
    fn at(&self, t: i64) {
        self.s.set_now(t);
        self.lock.clock().set_time(t);
    }

    /// A phone carries the newest bundle to the lock (full: the lock's iteration may be any).
    async fn sync(&self, courier: &Phone) {
        let b: SyncBundleJson = self
            .s
            .ok(
                "GET",
                &format!("/v1/locks/{}/bundle?since=0", self.door.lock_id),
                courier.token(),
                None::<&()>,
                200,
            )
            .await;
        if let Some(bytes) = b.bundle {
            self.lock.apply_bundle(&unb64(&bytes)).unwrap();
        }
    }

    /// The document `phone` holds for this door now (fetched as the app would).
    async fn document(&self, phone: &Phone) -> Option<Vec<u8>> {
        let doors = phone.doors(&self.s).await;
        doors
            .doors
            .iter()
            .find(|d| d.id == self.door.id)
            .map(|d| unb64(&d.access_document))
    }

    /// Presents `document` over the lock's BLE session, signed with `key`, at the lock's time.
    fn present(&self, key: &SigningKey, document: &[u8]) -> UnlockResult {
        present(&self.lock, key, document)
    }

    /// A resident holding a key to this door (with doorcodes or not) with May Share, signed
    /// in on a phone.
    async fn host(&self, name: &str, doorcodes: bool) -> (PersonJson, Phone) {
        let (s, m) = (&self.s, &self.m);
        let key = m
            .key(
                s,
                &format!("{name}'s key"),
                vec![key_door(&self.door, doorcodes, None)],
            )
            .await;
        let email = format!("{}@example.com", name.to_lowercase());
        let person = m.person(s, name, "resident", Some(&email)).await;
        m.assign(s, &person, &key, true).await;
        (person, Phone::sign_in(s, &email).await)
    }
}

/// The guest's phone, signed in with the invite's token.
async fn redeem(s: &TestServer, invite_token: String) -> Phone {
    let tokens: Tokens = s
        .ok(
            "POST",
            "/v1/auth/invite",
            "",
            Some(&json!({ "invite_token": invite_token })),
            200,
        )
        .await;
    Phone::with_tokens(s, tokens).await
}

fn key_door(door: &DoorJson, doorcodes: bool, schedule: Option<ScheduleJson>) -> KeyDoorJson {
    door_entry(door, doorcodes, schedule)
}

fn ranged(mut s: ScheduleJson, not_before: Option<i64>, not_after: Option<i64>) -> ScheduleJson {
    s.not_before = not_before;
    s.not_after = not_after;
    s
}

/// Point 1: a credential replaced by a widening was never revoked. Widen, then revoke: both
/// the superseded document and the current one are refused at the offline lock.
#[tokio::test]
async fn every_document_a_person_was_issued_dies_with_their_rights() {
    let site = site().await;
    let (s, m) = (&site.s, &site.m);
    let pool = m
        .key(s, "Pool", vec![key_door(&site.door, false, None)])
        .await;
    let gym_door = m.door(s, "Gym", false).await;
    let gym = m
        .key(s, "Gym", vec![key_door(&gym_door, false, None)])
        .await;
    let carol = m
        .person(s, "Carol", "resident", Some("carol@example.com"))
        .await;
    let alice = m
        .person(s, "Alice", "resident", Some("alice@example.com"))
        .await;
    m.assign(s, &carol, &pool, false).await;
    m.assign(s, &alice, &pool, false).await;
    let phone = Phone::sign_in(s, "carol@example.com").await;
    let courier = Phone::sign_in(s, "alice@example.com").await;
    let first = site.document(&phone).await.unwrap();
    m.assign(s, &carol, &gym, false).await; // widening: a new credential, nothing voided
    let second = site.document(&phone).await.unwrap();
    assert_ne!(first, second);
    site.sync(&courier).await;
    assert_eq!(site.present(&phone.key, &first), UnlockResult::Granted);
    assert_eq!(site.present(&phone.key, &second), UnlockResult::Granted);

    let _: serde_json::Value = s
        .call(
            "POST",
            &m.path(&format!("/people/{}/revoke", carol.id)),
            &m.key,
            None,
        )
        .await
        .1;
    site.sync(&courier).await;
    for doc in [&first, &second] {
        assert_eq!(
            site.present(&phone.key, doc),
            UnlockResult::Denied(DenyReason::Revoked)
        );
    }
}

/// Point 2: revocation state grew with devices and credentials. A person with several
/// devices, each with documents from several issuances, is revoked by one floor.
#[tokio::test]
async fn a_person_with_many_devices_and_credentials_is_revoked_by_one_entry() {
    let site = site().await;
    let (s, m) = (&site.s, &site.m);
    let pool = m
        .key(s, "Pool", vec![key_door(&site.door, false, None)])
        .await;
    let spa_door = m.door(s, "Spa", false).await;
    let spa = m
        .key(s, "Spa", vec![key_door(&spa_door, false, None)])
        .await;
    let dave = m
        .person(s, "Dave", "resident", Some("dave@example.com"))
        .await;
    let alice = m
        .person(s, "Alice", "resident", Some("alice@example.com"))
        .await;
    m.assign(s, &dave, &pool, false).await;
    m.assign(s, &alice, &pool, false).await;
    let courier = Phone::sign_in(s, "alice@example.com").await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let phone = Phone::sign_in(s, "dave@example.com").await;
        held.push((site.document(&phone).await.unwrap(), phone));
    }
    // A widening gives every device a second credential.
    m.assign(s, &dave, &spa, false).await;
    for i in 0..held.len() {
        let doc = site.document(&held[i].1).await.unwrap();
        let key = held[i].1.key.clone();
        held.push((
            doc,
            Phone {
                key,
                ..clone_phone(&held[i].1)
            },
        ));
    }
    assert_eq!(held.len(), 6);

    m.unassign(s, &dave, &pool).await;
    let b: SyncBundleJson = s
        .ok(
            "GET",
            &format!("/v1/locks/{}/bundle?since=0", site.door.lock_id),
            courier.token(),
            None::<&()>,
            200,
        )
        .await;
    let info = inspect_bundle(
        &unb64(b.bundle.as_deref().unwrap()),
        &site.lock.config().issuer_keys,
    )
    .unwrap();
    assert_eq!(
        info.floors, 1,
        "one entry for the person, not one per credential"
    );
    site.lock
        .apply_bundle(&unb64(b.bundle.as_deref().unwrap()))
        .unwrap();
    for (doc, phone) in &held {
        assert_eq!(
            site.present(&phone.key, doc),
            UnlockResult::Denied(DenyReason::Revoked)
        );
    }
}

/// The same phone after its access token expired: refreshed as the app does.
async fn refreshed(s: &TestServer, p: &Phone) -> Phone {
    let tokens: Tokens = s
        .ok(
            "POST",
            "/v1/auth/refresh",
            "",
            Some(&Refresh {
                refresh_token: p.tokens.refresh_token.clone(),
            }),
            200,
        )
        .await;
    Phone {
        tokens,
        ..clone_phone(p)
    }
}

fn clone_phone(p: &Phone) -> Phone {
    Phone {
        tokens: p.tokens.clone(),
        device_id: p.device_id.clone(),
        key: p.key.clone(),
    }
}

/// Point 3: guests outlived their host. A guest's rights follow the host's at every step:
/// narrowing the host's key narrows the guest; unassigning the host voids the guest's
/// documents at the lock and leaves the guest no door.
#[tokio::test]
async fn a_guest_never_outlives_or_outgrows_the_host() {
    let site = site().await;
    let (s, m) = (&site.s, &site.m);
    let t0 = s.now();
    let home = m
        .key(s, "Pool", vec![key_door(&site.door, false, None)])
        .await;
    let erin = m
        .person(s, "Erin", "resident", Some("erin@example.com"))
        .await;
    let alice = m
        .person(s, "Alice", "resident", Some("alice@example.com"))
        .await;
    m.assign(s, &erin, &home, true).await;
    m.assign(s, &alice, &home, false).await;
    let host = Phone::sign_in(s, "erin@example.com").await;
    let courier = Phone::sign_in(s, "alice@example.com").await;
    let (_, guest) = invite_and_redeem(
        s,
        &host,
        vec![site.door.id.clone()],
        "+1 555 0100",
        t0,
        t0 + 60 * DAY,
    )
    .await;
    let wide = site.document(&guest).await.unwrap();
    site.sync(&courier).await;
    assert_eq!(site.present(&guest.key, &wide), UnlockResult::Granted);

    // The manager narrows the host's key to weekday mornings: the guest's old document is
    // void, and the new one carries the host's schedule within the invite.
    let _: KeyJson = s
        .ok(
            "PUT",
            &m.path(&format!("/keys/{}", home.id)),
            &m.key,
            Some(&NewKey {
                name: "Pool".into(),
                doors: vec![key_door(
                    &site.door,
                    false,
                    Some(weekly(MON_FRI, "06:00", "09:00")),
                )],
            }),
            200,
        )
        .await;
    site.sync(&courier).await;
    assert_eq!(
        site.present(&guest.key, &wide),
        UnlockResult::Denied(DenyReason::Revoked)
    );
    let narrow = site.document(&guest).await.unwrap();
    // Tuesday 10:00: outside the host's new window, so outside the guest's too.
    assert!(matches!(
        site.present(&guest.key, &narrow),
        UnlockResult::Denied(DenyReason::OutOfSchedule { .. })
    ));

    // The host loses the key: the guest loses everything, at the server and at the lock.
    m.unassign(s, &erin, &home).await;
    assert!(guest.doors(s).await.doors.is_empty());
    site.at(t0 + DAY - 3 * HOUR); // Wednesday 07:00, inside the old window
    site.sync(&refreshed(s, &courier).await).await;
    assert_eq!(
        site.present(&guest.key, &narrow),
        UnlockResult::Denied(DenyReason::Revoked)
    );
}

/// Point 4: two keys for one door merged into more than either gives. A one-week 24/7 key
/// and an open-ended Monday 06:00-08:00 key: after the week, only Monday mornings. And May
/// Share is per key: a guest gets the shareable key's schedule only.
#[tokio::test]
async fn two_keys_for_one_door_give_what_each_gives_and_no_more() {
    let site = site().await;
    let (s, m) = (&site.s, &site.m);
    let t0 = s.now(); // Tuesday 10:00 New York
    let week = m
        .key(
            s,
            "Week pass",
            vec![key_door(
                &site.door,
                false,
                Some(ranged(
                    weekly(EVERY_DAY, "00:00", "24:00"),
                    None,
                    Some(t0 + 7 * DAY),
                )),
            )],
        )
        .await;
    let mondays = m
        .key(
            s,
            "Monday swim",
            vec![key_door(
                &site.door,
                false,
                Some(weekly(&["mon"], "06:00", "08:00")),
            )],
        )
        .await;
    let frank = m
        .person(s, "Frank", "resident", Some("frank@example.com"))
        .await;
    m.assign(s, &frank, &week, false).await;
    m.assign(s, &frank, &mondays, true).await;
    let phone = Phone::sign_in(s, "frank@example.com").await;
    let courier = Phone::sign_in(s, "frank@example.com").await;
    site.sync(&courier).await;
    let doc = site.document(&phone).await.unwrap();
    assert_eq!(site.present(&phone.key, &doc), UnlockResult::Granted);

    // Tuesday 10:00 a week and a day later: the week pass has ended; the Monday key does not
    // open on a Tuesday. (The document has expired by then too; a fresh one says the same.)
    site.at(t0 + 7 * DAY + DAY);
    let phone = refreshed(s, &phone).await;
    let later = site.document(&phone).await.unwrap();
    assert!(matches!(
        site.present(&phone.key, &later),
        UnlockResult::Denied(DenyReason::OutOfSchedule { .. })
    ));
    // Monday 07:00 (six days on): open by the Monday key.
    site.at(t0 + 7 * DAY + 6 * DAY - 3 * HOUR);
    assert_eq!(site.present(&phone.key, &later), UnlockResult::Granted);
    let phone = refreshed(s, &phone).await;

    // The guest gets the shareable (Monday) key's schedule, never the week pass's.
    let (_, guest) = invite_and_redeem(
        s,
        &phone,
        vec![site.door.id.clone()],
        "+1 555 0101",
        s.now() - DAY,
        s.now() + 30 * DAY,
    )
    .await;
    let doors = guest.doors(s).await;
    let pool = &doors.doors[0];
    assert_eq!(pool.schedules.len(), 1);
    assert_eq!(pool.schedules[0].windows[0].days, ["mon"]);
}

/// Point 5: doorcodes ignored schedules. A vendor's Monday-Friday 08:00-18:00 key with
/// doorcodes: the code opens on a weekday at 10:00 and not on Saturday.
#[tokio::test]
async fn a_doorcode_obeys_its_key_schedule_at_the_keypad() {
    let site = site().await;
    let (s, m) = (&site.s, &site.m);
    let t0 = s.now(); // Tuesday 10:00
    let vendors = m
        .key(
            s,
            "Vendors",
            vec![key_door(
                &site.door,
                true,
                Some(weekly(MON_FRI, "08:00", "18:00")),
            )],
        )
        .await;
    let vic = m.person(s, "Vic", "vendor", Some("vic@example.com")).await;
    m.assign(s, &vic, &vendors, false).await;
    let courier = Phone::sign_in(s, "vic@example.com").await;
    site.sync(&courier).await;
    let code = m.doorcodes(s, &vic).await[0].code.clone();
    let vic_id = Id::from_hex(&vic.id).unwrap();
    assert_eq!(
        site.lock.enter_doorcode(&code).unwrap(),
        DoorcodeResult::Granted { person_id: vic_id }
    );
    site.at(t0 + 4 * DAY); // Saturday 10:00
    assert!(matches!(
        site.lock.enter_doorcode(&code).unwrap(),
        DoorcodeResult::Denied(DoorcodeDenied::OutOfSchedule { person_id, next_allowed: Some(_) })
            if person_id == vic_id
    ));
    site.at(t0 + 6 * DAY - 2 * HOUR); // Monday 08:00
    assert_eq!(
        site.lock.enter_doorcode(&code).unwrap(),
        DoorcodeResult::Granted { person_id: vic_id }
    );
}

/// Turning May Share off ends the access of the guests invited through that key, at the
/// server and (after a sync) at the lock; the manager sees every guest and who invited them.
#[tokio::test]
async fn may_share_off_ends_the_guests_access_and_the_manager_sees_who_invited() {
    let site = site().await;
    let (s, m) = (&site.s, &site.m);
    let t0 = s.now();
    let home = m
        .key(s, "Pool", vec![key_door(&site.door, false, None)])
        .await;
    let gail = m
        .person(s, "Gail", "resident", Some("gail@example.com"))
        .await;
    m.assign(s, &gail, &home, true).await;
    let host = Phone::sign_in(s, "gail@example.com").await;
    let (invited, guest) = invite_and_redeem(
        s,
        &host,
        vec![site.door.id.clone()],
        "dog walker",
        t0,
        t0 + 7 * DAY,
    )
    .await;
    let doc = site.document(&guest).await.unwrap();
    site.sync(&host).await;
    assert_eq!(site.present(&guest.key, &doc), UnlockResult::Granted);

    let listed: Vec<PropertyGuestJson> = s
        .ok("GET", &m.path("/guests"), &m.key, None::<&()>, 200)
        .await;
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].inviter_id.as_str(), listed[0].guest.id.as_str()),
        (gail.id.as_str(), invited.id.as_str())
    );

    let patched: AssignmentJson = s
        .ok(
            "PATCH",
            &m.path(&format!("/people/{}/keys/{}", gail.id, home.id)),
            &m.key,
            Some(&AssignmentPatch { may_share: false }),
            200,
        )
        .await;
    assert!(!patched.may_share);
    assert!(guest.doors(s).await.doors.is_empty());
    site.sync(&host).await;
    assert_eq!(
        site.present(&guest.key, &doc),
        UnlockResult::Denied(DenyReason::Revoked)
    );
    // The host keeps the door, and the lock still opens for her.
    let own = site.document(&host).await.unwrap();
    assert_eq!(site.present(&host.key, &own), UnlockResult::Granted);
}

/// One more offline door of the site's property, with its own reference lock.
fn another_lock(site: &Site, door: &DoorJson, lock_key: LockKey) -> (Lock, TempDir) {
    let issuer = IssuerPublicKey::from_sec1(&unb64(&site.m.property.issuer_public_key)).unwrap();
    let config = LockConfig::new(
        Id::from_hex(&door.lock_id).unwrap(),
        Id::from_hex(&door.id).unwrap(),
        lock_key,
        IssuerKeys::single(issuer),
    );
    let dir = TempDir::new().unwrap();
    let lock = Lock::open(dir.path(), config, site.lock.clock().clone()).unwrap();
    (lock, dir)
}

/// Issue 19: a host revokes a guest's access to one door (OpenDOOR `revokeGuestAccess(guest,
/// lock)`); the guest keeps the other. At the offline locks, after a Door Sync, the revoked
/// door's old document is refused by its lock, while the guest's fresh document for the other
/// door (issued above the floor that voided all the old ones) still opens that lock.
#[tokio::test]
async fn revoking_a_guest_from_one_door_leaves_the_other_door_working_offline() {
    let site = site().await;
    let (s, m) = (&site.s, &site.m);
    let t0 = s.now();
    let gym_key = LockKey::generate(&mut rand::rngs::OsRng);
    let gym = offline_door(s, m, "Gym", false, &gym_key).await;
    let (gym_lock, _gym_dir) = another_lock(&site, &gym, gym_key);
    let home = m
        .key(
            s,
            "Amenities",
            vec![
                key_door(&site.door, false, None),
                key_door(&gym, false, None),
            ],
        )
        .await;
    let hana = m
        .person(s, "Hana", "resident", Some("hana@example.com"))
        .await;
    m.assign(s, &hana, &home, true).await;
    let host = Phone::sign_in(s, "hana@example.com").await;
    let (invited, guest) = invite_and_redeem(
        s,
        &host,
        vec![site.door.id.clone(), gym.id.clone()],
        "+1 555 0199",
        t0,
        t0 + 7 * DAY,
    )
    .await;
    let gym_doc = |doors: &MyDoors| {
        doors
            .doors
            .iter()
            .find(|d| d.id == gym.id)
            .map(|d| unb64(&d.access_document))
    };
    let old_pool = site.document(&guest).await.unwrap();
    let old_gym = gym_doc(&guest.doors(s).await).unwrap();
    let sync_gym = |bundle: SyncBundleJson| {
        if let Some(bytes) = bundle.bundle {
            gym_lock.apply_bundle(&unb64(&bytes)).unwrap();
        }
    };
    let gym_bundle = |p: &Phone| {
        let token = p.token().to_string();
        let path = format!("/v1/locks/{}/bundle?since=0", gym.lock_id);
        async move { s.ok("GET", &path, &token, None::<&()>, 200).await }
    };
    site.sync(&host).await;
    sync_gym(gym_bundle(&host).await);
    assert_eq!(site.present(&guest.key, &old_pool), UnlockResult::Granted);
    assert_eq!(
        present(&gym_lock, &guest.key, &old_gym),
        UnlockResult::Granted
    );

    // The host takes the pool away from the guest; the invite keeps the gym.
    let left: GuestJson = s
        .ok(
            "DELETE",
            &format!("/v1/me/guests/{}/doors/{}", invited.id, site.door.id),
            host.token(),
            None::<&()>,
            200,
        )
        .await;
    assert_eq!(left.door_ids, [gym.id.as_str()]);
    assert!(!left.revoked);
    let listed: Vec<GuestJson> = s
        .ok("GET", "/v1/me/guests", host.token(), None::<&()>, 200)
        .await;
    assert_eq!(listed, std::slice::from_ref(&left));
    let managed: Vec<PropertyGuestJson> = s
        .ok("GET", &m.path("/guests"), &m.key, None::<&()>, 200)
        .await;
    assert_eq!(managed[0].guest, left);

    // The guest's phone now gets the gym only, with a fresh document.
    let doors = guest.doors(s).await;
    assert_eq!(
        doors
            .doors
            .iter()
            .map(|d| d.id.as_str())
            .collect::<Vec<_>>(),
        [gym.id.as_str()]
    );
    let new_gym = gym_doc(&doors).unwrap();
    assert_ne!(new_gym, old_gym);

    // Both locks apply the newest bundle, carried by the host's phone.
    site.sync(&host).await;
    sync_gym(gym_bundle(&host).await);
    assert_eq!(
        site.present(&guest.key, &old_pool),
        UnlockResult::Denied(DenyReason::Revoked),
        "the revoked door's old document is refused by its offline lock"
    );
    assert_eq!(
        present(&gym_lock, &guest.key, &new_gym),
        UnlockResult::Granted,
        "the guest's fresh document still opens the other door"
    );
    // The floor voided every older document of the guest, the gym's too: only the fresh one works.
    assert_eq!(
        present(&gym_lock, &guest.key, &old_gym),
        UnlockResult::Denied(DenyReason::Revoked)
    );
    // The host is untouched.
    let own = site.document(&host).await.unwrap();
    assert_eq!(site.present(&host.key, &own), UnlockResult::Granted);
}

/// `host` invites a doorcode-only guest (no app) to `door` for `[starts_at, ends_at)`: the
/// invite as the host sees it and the code, shown this once.
async fn invite_with_doorcode(
    s: &TestServer,
    host: &Phone,
    door: &DoorJson,
    starts_at: i64,
    ends_at: i64,
) -> (GuestJson, String) {
    let invited: InvitedGuest = s
        .ok(
            "POST",
            "/v1/me/guests",
            host.token(),
            Some(
                &json!({"doorcode_door_ids": [door.id], "contact": "dog walker",
                "starts_at": starts_at, "ends_at": ends_at}),
            ),
            201,
        )
        .await;
    assert_eq!(invited.doorcodes.len(), 1);
    assert_eq!(invited.doorcodes[0].door_id, door.id);
    (invited.guest, invited.doorcodes[0].code.clone())
}

/// Issue 19, guest doorcodes: a dog walker without the app gets a temporary code. It opens the
/// offline keypad only inside the invite's window (and the host's key schedule), is never
/// shown again, and stops at revocation once a phone has carried the next bundle to the lock.
#[tokio::test]
async fn a_guests_doorcode_opens_the_keypad_only_inside_the_invite_and_stops_at_revocation() {
    let site = site().await;
    let (s, m) = (&site.s, &site.m);
    let t0 = s.now(); // Tuesday 10:00
    let (hana, host) = site.host("Hana", true).await;
    let hana_code = m.doorcodes(s, &hana).await[0].code.clone();
    let (guest, code) = invite_with_doorcode(s, &host, &site.door, t0 + DAY, t0 + 3 * DAY).await;
    assert_eq!(guest.doorcode_door_ids, [site.door.id.as_str()]);
    assert!(
        guest.door_ids.is_empty(),
        "a doorcode-only guest has no app door"
    );
    assert_ne!(code, hana_code);
    let listed = s
        .call("GET", "/v1/me/guests", host.token(), None)
        .await
        .1
        .to_string();
    assert!(!listed.contains(&code), "the guest list repeats the code");
    site.sync(&host).await;

    let hana_id = Id::from_hex(&hana.id).unwrap();
    let guest_in = |r: DoorcodeResult| matches!(r, DoorcodeResult::Granted { person_id } if person_id != hana_id);
    // Before the window: not yet; the keypad says when.
    assert!(matches!(
        site.lock.enter_doorcode(&code).unwrap(),
        DoorcodeResult::Denied(DoorcodeDenied::OutOfSchedule { next_allowed: Some(t), .. })
            if t == t0 + DAY
    ));
    site.at(t0 + DAY + HOUR);
    assert!(guest_in(site.lock.enter_doorcode(&code).unwrap()));
    // After the window: the lock refuses it on its own, with no sync.
    site.at(t0 + 3 * DAY + HOUR);
    assert!(!guest_in(site.lock.enter_doorcode(&code).unwrap()));
    assert_eq!(
        site.lock.enter_doorcode(&hana_code).unwrap(),
        DoorcodeResult::Granted { person_id: hana_id }
    );

    // A second invite, revoked inside its window.
    let host = refreshed(s, &host).await;
    let (second, code) =
        invite_with_doorcode(s, &host, &site.door, t0 + 3 * DAY, t0 + 9 * DAY).await;
    site.sync(&host).await;
    site.at(t0 + 4 * DAY);
    assert!(guest_in(site.lock.enter_doorcode(&code).unwrap()));
    let host = refreshed(s, &host).await;
    let _: GuestJson = s
        .ok(
            "DELETE",
            &format!("/v1/me/guests/{}", second.id),
            host.token(),
            None::<&()>,
            200,
        )
        .await;
    assert!(
        guest_in(site.lock.enter_doorcode(&code).unwrap()),
        "an offline lock knows of the revocation only from the next Door Sync"
    );
    site.sync(&host).await;
    assert_eq!(
        site.lock.enter_doorcode(&code).unwrap(),
        DoorcodeResult::Denied(DoorcodeDenied::Unknown),
        "after the sync the revoked guest's code is gone from the keypad"
    );
    assert_eq!(site.lock.doorcodes(), 1, "only the host's code is left");
}

/// A guest's doorcode needs a keypad and a key the host shares with doorcodes on ("Spaces
/// where doorcodes and access sharing are disabled ... prevent them from inviting guests or
/// receiving a doorcode"); turning doorcodes off on the host's key later takes the guest's
/// code away at the next sync while the guest's in-app access stays.
#[tokio::test]
async fn a_guest_doorcode_follows_the_hosts_doorcode_rights() {
    let site = site().await;
    let (s, m) = (&site.s, &site.m);
    let t0 = s.now();
    let gym_key = LockKey::generate(&mut rand::rngs::OsRng);
    let gym = offline_door(s, m, "Gym", false, &gym_key).await;
    let home = m
        .key(
            s,
            "Home",
            vec![
                key_door(&site.door, true, None),
                key_door(&gym, false, None),
            ],
        )
        .await;
    let plain = m
        .key(s, "Pool, no codes", vec![key_door(&site.door, false, None)])
        .await;
    let hana = m
        .person(s, "Hana", "resident", Some("hana@example.com"))
        .await;
    let ivan = m
        .person(s, "Ivan", "resident", Some("ivan@example.com"))
        .await;
    m.assign(s, &hana, &home, true).await;
    m.assign(s, &ivan, &plain, true).await;
    let host = Phone::sign_in(s, "hana@example.com").await;
    let ivan_phone = Phone::sign_in(s, "ivan@example.com").await;
    let invite = |doors: Vec<&str>, codes: Vec<&str>| {
        json!({"door_ids": doors, "doorcode_door_ids": codes, "contact": "cleaner",
            "starts_at": t0, "ends_at": t0 + 7 * DAY})
    };

    let (status, body) = s
        .call(
            "POST",
            "/v1/me/guests",
            host.token(),
            Some(&invite(vec![], vec![&gym.id])),
        )
        .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (422, Some("doorcode_door_ids[0]"))
    );
    assert!(
        body["message"].as_str().unwrap().contains("keypad"),
        "{body}"
    );
    let (status, body) = s
        .call(
            "POST",
            "/v1/me/guests",
            ivan_phone.token(),
            Some(&invite(vec![&site.door.id], vec![&site.door.id])),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("doorcodes_disabled")),
        "{body}"
    );
    assert_eq!(body["door_ids"], json!([site.door.id]));
    let (status, body) = s
        .call(
            "POST",
            "/v1/me/guests",
            host.token(),
            Some(&invite(vec![], vec![])),
        )
        .await;
    assert_eq!((status, body["field"].as_str()), (422, Some("door_ids")));

    // In-app and a doorcode at the pool: both.
    let invited: InvitedGuest = s
        .ok(
            "POST",
            "/v1/me/guests",
            host.token(),
            Some(&invite(vec![&site.door.id], vec![&site.door.id])),
            201,
        )
        .await;
    let code = invited.doorcodes[0].code.clone();
    let guest = redeem(s, invited.invite_token).await;
    let doors = guest.doors(s).await;
    assert_eq!(doors.doors[0].doorcode.as_deref(), Some(code.as_str()));
    site.sync(&host).await;
    assert!(matches!(
        site.lock.enter_doorcode(&code).unwrap(),
        DoorcodeResult::Granted { .. }
    ));

    // The manager turns doorcodes off on the host's key: the guest's code goes with the host's.
    let status = s
        .call(
            "POST",
            &m.path(&format!("/keys/{}/disable-doorcodes", home.id)),
            &m.key,
            None,
        )
        .await
        .0;
    assert_eq!(status, 200);
    site.sync(&host).await;
    assert_eq!(
        site.lock.enter_doorcode(&code).unwrap(),
        DoorcodeResult::Denied(DoorcodeDenied::Unknown)
    );
    assert_eq!(site.lock.doorcodes(), 0);
    let doors = guest.doors(s).await;
    assert_eq!(doors.doors[0].doorcode, None);
    let document = unb64(&doors.doors[0].access_document);
    assert_eq!(site.present(&guest.key, &document), UnlockResult::Granted);
}

/// A doorcode-only guest has nothing on a phone: no access document, no door in the app.
#[tokio::test]
async fn a_doorcode_only_guest_gets_no_access_document() {
    let site = site().await;
    let s = &site.s;
    let t0 = s.now();
    let (_, host) = site.host("Hana", true).await;
    let invited: InvitedGuest = s
        .ok(
            "POST",
            "/v1/me/guests",
            host.token(),
            Some(
                &json!({"doorcode_door_ids": [site.door.id], "contact": "walker",
                "starts_at": t0, "ends_at": t0 + DAY}),
            ),
            201,
        )
        .await;
    let guest = redeem(s, invited.invite_token).await;
    let doors = guest.doors(s).await;
    assert!(doors.doors.is_empty());
    assert_eq!(doors.credential_id, None);
}
