//! The API over real HTTP: authorization, guests, doorcodes (the Tracy example), validation,
//! transactions, and key edits reaching every holder.

mod common;

use common::*;
use door_server::model::*;
use serde_json::json;

struct Property {
    s: TestServer,
    m: Manager,
    lobby: DoorJson,
    unit: DoorJson,
    pool: DoorJson,
    home: KeyJson,
    amenities: KeyJson,
}

/// Alice holds an apartment key (Lobby + her unit, May Share on, doorcodes) and the
/// Amenities key (Pool, May Share off).
async fn property() -> (Property, PersonJson, Phone) {
    let s = TestServer::start().await;
    let m = Manager::create(&s, "1800 Main St", "America/New_York").await;
    let lobby = m.door(&s, "Lobby", false).await;
    let unit = m.door(&s, "Unit 205C", false).await;
    let pool = m.door(&s, "Pool", false).await;
    let home = m
        .key(
            &s,
            "Unit 205C",
            vec![
                door_entry(&lobby, true, None),
                door_entry(&unit, true, None),
            ],
        )
        .await;
    let amenities = m
        .key(
            &s,
            "Amenities",
            vec![door_entry(
                &pool,
                false,
                Some(weekly(MON_FRI, "09:00", "17:00")),
            )],
        )
        .await;
    let alice = m
        .person(&s, "Alice", "resident", Some("alice@example.com"))
        .await;
    m.assign(&s, &alice, &home, true).await;
    m.assign(&s, &alice, &amenities, false).await;
    let phone = Phone::sign_in(&s, "alice@example.com").await;
    (
        Property {
            s,
            m,
            lobby,
            unit,
            pool,
            home,
            amenities,
        },
        alice,
        phone,
    )
}

fn code(body: &serde_json::Value) -> &str {
    body["code"].as_str().unwrap_or("")
}

#[tokio::test]
async fn guests_get_one_key_per_door_and_lose_them_when_revoked() {
    let (p, _alice, phone) = property().await;
    let s = &p.s;
    let now = s.now();
    let invite = json!({"door_ids": [p.lobby.id, p.unit.id], "contact": "+1 555 0100", "starts_at": now, "ends_at": now + 86_400});
    let (status, body) = s
        .call("POST", "/v1/me/guests", phone.token(), Some(&invite))
        .await;
    assert_eq!(status, 201, "{body}");
    let invited: InvitedGuest = serde_json::from_value(body).unwrap();
    assert_eq!(invited.guest.door_ids.len(), 2);
    // Two per-door keys exist on the server, invisible to the manager's key list.
    let guest_keys: u32 =
        p.s.handle
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
    let keys: Vec<KeyJson> = s
        .ok("GET", &p.m.path("/keys"), &p.m.key, None::<&()>, 200)
        .await;
    assert_eq!(keys.len(), 2);

    // The guest redeems once, registers a device and gets both doors, within the range.
    let tokens: Tokens = s
        .ok(
            "POST",
            "/v1/auth/invite",
            "",
            Some(&RedeemInvite {
                invite_token: invited.invite_token.clone(),
            }),
            200,
        )
        .await;
    let (status, body) = s
        .call(
            "POST",
            "/v1/auth/invite",
            "",
            Some(&json!({"invite_token": invited.invite_token})),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (401, "unauthorized"),
        "an invite is used once"
    );
    let guest = Phone::with_tokens(s, tokens).await;
    let doors = guest.doors(s).await;
    assert_eq!(doors.doors.len(), 2);
    assert!(doors
        .doors
        .iter()
        .all(|d| !d.may_share && d.doorcode.is_none()));
    assert!(matches!(
        Phone::decide(&doors, "Lobby", now + 60),
        Some(door_protocol::Decision::Allowed { .. })
    ));
    assert_eq!(
        Phone::decide(&doors, "Lobby", now + 86_400),
        Some(door_protocol::Decision::Expired { at: now + 86_400 })
    );

    // A guest cannot invite.
    let (status, body) = s
        .call("POST", "/v1/me/guests", guest.token(), Some(&invite))
        .await;
    assert_eq!((status, code(&body)), (403, "forbidden"));

    // The resident lists and revokes; the guest is refused and their credential is revoked.
    let guests: Vec<GuestJson> = s
        .ok("GET", "/v1/me/guests", phone.token(), None::<&()>, 200)
        .await;
    assert_eq!(guests.len(), 1);
    assert!(guests[0].redeemed && !guests[0].revoked);
    let revoked: GuestJson = s
        .ok(
            "DELETE",
            &format!("/v1/me/guests/{}", invited.guest.id),
            phone.token(),
            None::<&()>,
            200,
        )
        .await;
    assert!(revoked.revoked);
    let (status, body) = s
        .call(
            "GET",
            &format!("/v1/me/doors?device_id={}", guest.device_id),
            guest.token(),
            None,
        )
        .await;
    assert_eq!(status, 401, "sessions end with the revocation: {body}");
    // Every document the guest holds is void at offline locks: a floor above its iteration.
    let (floor, iteration): (i64, i64) = s
        .handle
        .state
        .db
        .read(|tx| {
            Ok(tx.query_row(
                "SELECT f.floor, c.access_iteration FROM person_floors f \
                 JOIN credentials c ON c.person_id = f.person_id WHERE c.id = ?1",
                [hex::decode(doors.credential_id.as_ref().unwrap()).unwrap()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?)
        })
        .unwrap();
    assert!(iteration < floor);
}

/// Issue 19: a host removes one door from a guest's invite; the guest keeps the others, at the
/// server (their doors, the listings). Another person's guest, or a door not in the invite, is
/// not found; removing the last door revokes the guest as `DELETE /v1/me/guests/{id}` does.
#[tokio::test]
async fn a_guest_loses_one_door_and_keeps_the_others() {
    let (p, _alice, phone) = property().await;
    let s = &p.s;
    let now = s.now();
    let (invited, guest) = invite_and_redeem(
        s,
        &phone,
        vec![p.lobby.id.clone(), p.unit.id.clone()],
        "+1 555 0100",
        now,
        now + 86_400,
    )
    .await;
    assert_eq!(guest.doors(s).await.doors.len(), 2);
    let door_path = |guest: &str, door: &str| format!("/v1/me/guests/{guest}/doors/{door}");

    // Another resident's guest is not found, whatever the door; so is a door not invited to.
    let bob =
        p.m.person(s, "Bob", "resident", Some("bob@example.com"))
            .await;
    p.m.assign(s, &bob, &p.home, true).await;
    let bob_phone = Phone::sign_in(s, "bob@example.com").await;
    let (status, body) = s
        .call(
            "DELETE",
            &door_path(&invited.id, &p.lobby.id),
            bob_phone.token(),
            None,
        )
        .await;
    assert_eq!((status, code(&body)), (404, "not_found"), "{body}");
    assert_eq!(body["field"], "guest_id");
    let (status, body) = s
        .call(
            "DELETE",
            &door_path(&invited.id, &p.pool.id),
            phone.token(),
            None,
        )
        .await;
    assert_eq!((status, code(&body)), (404, "not_found"), "{body}");
    assert_eq!(body["field"], "door_id");
    let (status, body) = s
        .call(
            "DELETE",
            &door_path(&invited.id, "nope"),
            phone.token(),
            None,
        )
        .await;
    assert_eq!((status, code(&body)), (422, "invalid_input"), "{body}");
    assert_eq!(body["field"], "door_id");
    // A guest cannot remove doors from their own invite (it is not theirs).
    let (status, _) = s
        .call(
            "DELETE",
            &door_path(&invited.id, &p.lobby.id),
            guest.token(),
            None,
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(guest.doors(s).await.doors.len(), 2, "nothing changed");

    // The lobby goes; the unit stays, for the guest and in both listings.
    let left: GuestJson = s
        .ok(
            "DELETE",
            &door_path(&invited.id, &p.lobby.id),
            phone.token(),
            None::<&()>,
            200,
        )
        .await;
    assert_eq!(
        (left.door_ids.clone(), left.revoked),
        (vec![p.unit.id.clone()], false)
    );
    let doors = guest.doors(s).await;
    assert_eq!(
        doors
            .doors
            .iter()
            .map(|d| d.name.as_str())
            .collect::<Vec<_>>(),
        ["Unit 205C"]
    );
    assert!(matches!(
        Phone::decide(&doors, "Unit 205C", now + 60),
        Some(door_protocol::Decision::Allowed { .. })
    ));
    let mine: Vec<GuestJson> = s
        .ok("GET", "/v1/me/guests", phone.token(), None::<&()>, 200)
        .await;
    assert_eq!(mine, std::slice::from_ref(&left));
    let managed: Vec<PropertyGuestJson> = s
        .ok("GET", &p.m.path("/guests"), &p.m.key, None::<&()>, 200)
        .await;
    assert_eq!(managed[0].guest, left);
    // Removed already: not in the invite any more.
    let (status, body) = s
        .call(
            "DELETE",
            &door_path(&invited.id, &p.lobby.id),
            phone.token(),
            None,
        )
        .await;
    assert_eq!((status, body["field"].as_str()), (404, Some("door_id")));

    // The last door: the guest is revoked, sessions and all.
    let gone: GuestJson = s
        .ok(
            "DELETE",
            &door_path(&invited.id, &p.unit.id),
            phone.token(),
            None::<&()>,
            200,
        )
        .await;
    assert!(gone.revoked);
    assert_eq!(gone.door_ids, [p.unit.id.as_str()]);
    let (status, _) = s
        .call(
            "GET",
            &format!("/v1/me/doors?device_id={}", guest.device_id),
            guest.token(),
            None,
        )
        .await;
    assert_eq!(status, 401, "the guest's sessions end with the last door");
    let again: GuestJson = s
        .ok(
            "DELETE",
            &format!("/v1/me/guests/{}", invited.id),
            phone.token(),
            None::<&()>,
            200,
        )
        .await;
    assert_eq!(again, gone, "the same as revoking the guest");
}

#[tokio::test]
async fn guest_invites_are_checked() {
    let (p, _alice, phone) = property().await;
    let s = &p.s;
    let now = s.now();
    let invite = |doors: Vec<&str>, from: i64, to: i64| json!({"door_ids": doors, "contact": "Bob", "starts_at": from, "ends_at": to});

    let (status, body) = s
        .call(
            "POST",
            "/v1/me/guests",
            phone.token(),
            Some(&invite(vec![&p.lobby.id, &p.pool.id], now, now + 3600)),
        )
        .await;
    assert_eq!((status, code(&body)), (403, "not_shareable"));
    assert_eq!(
        body["door_ids"],
        json!([p.pool.id]),
        "names the doors that may not be shared"
    );

    let cases = [
        (invite(vec![], now, now + 3600), "door_ids"),
        (invite(vec![&p.lobby.id], now, now - 10), "ends_at"),
        (invite(vec![&p.lobby.id], now - 7200, now - 3600), "ends_at"),
        (invite(vec![&p.lobby.id], now, now + 91 * 86_400), "ends_at"),
        (
            invite(vec!["00000000000000000000000000000000"], now, now + 3600),
            "door_ids[0]",
        ),
        (invite(vec!["nope"], now, now + 3600), "door_ids[0]"),
        (
            invite(vec![&p.lobby.id, &p.lobby.id], now, now + 3600),
            "door_ids[1]",
        ),
        (
            json!({"door_ids": [p.lobby.id], "contact": "", "starts_at": now, "ends_at": now + 60}),
            "contact",
        ),
        (
            json!({"door_ids": [p.lobby.id], "starts_at": now, "ends_at": now + 60}),
            "body",
        ),
    ];
    for (body, field) in cases {
        let (status, err) = s
            .call("POST", "/v1/me/guests", phone.token(), Some(&body))
            .await;
        assert_eq!(status, 422, "{body} -> {err}");
        assert_eq!(code(&err), "invalid_input");
        assert_eq!(err["field"].as_str(), Some(field), "{body} -> {err}");
    }
    let guests: Vec<GuestJson> = s
        .ok("GET", "/v1/me/guests", phone.token(), None::<&()>, 200)
        .await;
    assert!(
        guests.is_empty(),
        "nothing half-written by the refused invites"
    );
}

#[tokio::test]
async fn nobody_sees_another_persons_doors_codes_or_guests() {
    let (p, _alice, alice) = property().await;
    let s = &p.s;
    let bob_person =
        p.m.person(s, "Bob", "resident", Some("bob@example.com"))
            .await;
    p.m.assign(s, &bob_person, &p.amenities, false).await;
    let bob = Phone::sign_in(s, "bob@example.com").await;

    // Bob cannot fetch documents for Alice's device.
    let (status, body) = s
        .call(
            "GET",
            &format!("/v1/me/doors?device_id={}", alice.device_id),
            bob.token(),
            None,
        )
        .await;
    assert_eq!((status, body["field"].as_str()), (422, Some("device_id")));
    // Bob sees his own doors only, without Alice's codes.
    let doors = bob.doors(s).await;
    assert_eq!(
        doors
            .doors
            .iter()
            .map(|d| d.name.as_str())
            .collect::<Vec<_>>(),
        ["Pool"]
    );
    // Bob cannot see or revoke Alice's guests.
    let now = s.now();
    let invited: InvitedGuest = s
        .ok("POST", "/v1/me/guests", alice.token(), Some(&json!({"door_ids": [p.unit.id], "contact": "C", "starts_at": now, "ends_at": now + 60})), 201)
        .await;
    let listed: Vec<GuestJson> = s
        .ok("GET", "/v1/me/guests", bob.token(), None::<&()>, 200)
        .await;
    assert!(listed.is_empty());
    let (status, _) = s
        .call(
            "DELETE",
            &format!("/v1/me/guests/{}", invited.guest.id),
            bob.token(),
            None,
        )
        .await;
    assert_eq!(status, 404);
    // A manager of another property sees nothing of this one.
    let other = Manager::create(s, "Elsewhere", "Europe/London").await;
    let (status, _) = s.call("GET", &p.m.path("/people"), &other.key, None).await;
    assert_eq!(status, 404);
    let (status, _) = s
        .call("GET", &p.m.path("/doors"), "not-a-token", None)
        .await;
    assert_eq!(status, 401);
    // A person token is not a manager key, and vice versa.
    let (status, _) = s
        .call("GET", &p.m.path("/doors"), alice.token(), None)
        .await;
    assert_eq!(status, 401);
    let (status, _) = s.call("GET", "/v1/me", &p.m.key, None).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn a_revoked_person_is_refused() {
    let (p, alice, phone) = property().await;
    let s = &p.s;
    let (status, _) = s
        .call(
            "POST",
            &p.m.path(&format!("/people/{}/revoke", alice.id)),
            &p.m.key,
            None,
        )
        .await;
    assert_eq!(status, 204);
    assert_refused_everywhere(s, phone.token(), "after the person was revoked").await;
    let (status, body) = s
        .call(
            "POST",
            "/v1/auth/login",
            "",
            Some(&json!({"email": "alice@example.com", "password": "correct horse battery"})),
        )
        .await;
    assert_eq!((status, code(&body)), (403, "revoked"));
    let (status, body) = s
        .call(
            "POST",
            "/v1/auth/refresh",
            "",
            Some(&json!({"refresh_token": phone.tokens.refresh_token})),
        )
        .await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = s
        .call(
            "POST",
            &p.m.path(&format!("/people/{}/keys", alice.id)),
            &p.m.key,
            Some(&json!({"key_id": p.home.id})),
        )
        .await;
    assert_eq!((status, code(&body)), (403, "revoked"));
}

#[tokio::test]
async fn tracy_keeps_her_doorcodes_when_key_b_comes_before_key_a_goes() {
    let (p, _alice, _phone) = property().await;
    let s = &p.s;
    let m = &p.m;
    let door1 = m.door(s, "Door 1", false).await;
    let door2 = m.door(s, "Door 2", false).await;
    let key_a = m
        .key(
            s,
            "Key A",
            vec![
                door_entry(&door1, true, None),
                door_entry(&door2, true, None),
            ],
        )
        .await;
    let key_b = m
        .key(
            s,
            "Key B",
            vec![
                door_entry(&door1, true, None),
                door_entry(&door2, true, None),
            ],
        )
        .await;

    let tracy = m.person(s, "Tracy", "resident", None).await;
    m.assign(s, &tracy, &key_a, false).await;
    let before = m.doorcodes(s, &tracy).await;
    assert_eq!(before.len(), 2);
    m.assign(s, &tracy, &key_b, false).await;
    m.unassign(s, &tracy, &key_a).await;
    assert_eq!(
        m.doorcodes(s, &tracy).await,
        before,
        "B first, then revoke A: codes unchanged"
    );

    // The opposite order deletes the codes for good; key B then makes new ones.
    let tom = m.person(s, "Tom", "resident", None).await;
    m.assign(s, &tom, &key_a, false).await;
    let before = m.doorcodes(s, &tom).await;
    m.unassign(s, &tom, &key_a).await;
    assert!(
        m.doorcodes(s, &tom).await.is_empty(),
        "revoking A first deletes the codes"
    );
    m.assign(s, &tom, &key_b, false).await;
    let after = m.doorcodes(s, &tom).await;
    assert_eq!(after.len(), 2);
    assert_ne!(
        after, before,
        "new codes (a chance of 1 in 10^12 of a false failure)"
    );
    // Codes are unique per door.
    let mut door1_codes: Vec<String> = [&tracy, &tom].iter().map(|_| String::new()).collect();
    door1_codes.clear();
    for person in [&tracy, &tom] {
        for c in m.doorcodes(s, person).await {
            if c.door_id == door1.id {
                door1_codes.push(c.code);
            }
        }
    }
    assert_eq!(door1_codes.len(), 2);
    assert_ne!(door1_codes[0], door1_codes[1]);
}

#[tokio::test]
async fn key_edits_apply_to_every_holder_and_revoke_only_what_narrows() {
    let (p, _alice, phone) = property().await;
    let s = &p.s;
    let first = phone.doors(s).await;
    let person = hex::decode(&first.person_id).unwrap();
    // The floor that voids Alice's documents below it at offline locks, and her credentials'
    // access iterations (first, second, ...).
    let floor = |s: &TestServer| -> Option<i64> {
        s.handle
            .state
            .db
            .read(|tx| {
                Ok(tx
                    .query_row(
                        "SELECT floor FROM person_floors WHERE person_id = ?1",
                        [&person],
                        |r| r.get(0),
                    )
                    .ok())
            })
            .unwrap()
    };
    let iterations = |s: &TestServer| -> Vec<i64> {
        s.handle
            .state
            .db
            .read(|tx| {
                let mut stmt = tx.prepare(
                    "SELECT access_iteration FROM credentials WHERE person_id = ?1 ORDER BY issued_at, access_iteration",
                )?;
                let rows = stmt.query_map([&person], |r| r.get(0))?;
                Ok(rows.collect::<Result<Vec<i64>, _>>()?)
            })
            .unwrap()
    };

    // Widening (a new door) reissues but revokes nothing.
    let gym = p.m.door(s, "Gym", false).await;
    let widened = NewKey {
        name: "Amenities".into(),
        doors: vec![
            door_entry(&p.pool, false, Some(weekly(MON_FRI, "09:00", "17:00"))),
            door_entry(&gym, false, None),
        ],
    };
    let _: KeyJson = s
        .ok(
            "PUT",
            &p.m.path(&format!("/keys/{}", p.amenities.id)),
            &p.m.key,
            Some(&widened),
            200,
        )
        .await;
    let second = phone.doors(s).await;
    assert_eq!(second.doors.len(), first.doors.len() + 1);
    assert_ne!(second.credential_id, first.credential_id);
    assert_eq!(floor(s), None, "widening voids nothing");

    // Narrowing (a shorter schedule) revokes the old credential for the offline locks.
    let narrowed = NewKey {
        name: "Amenities".into(),
        doors: vec![
            door_entry(&p.pool, false, Some(weekly(MON_FRI, "10:00", "12:00"))),
            door_entry(&gym, false, None),
        ],
    };
    let _: KeyJson = s
        .ok(
            "PUT",
            &p.m.path(&format!("/keys/{}", p.amenities.id)),
            &p.m.key,
            Some(&narrowed),
            200,
        )
        .await;
    // Both earlier credentials die: the one the widening superseded (still valid at offline
    // locks until it expires) as well as the current one. The floor covers every iteration
    // issued so far; the new credential is above it.
    let voided = iterations(s);
    assert_eq!(voided.len(), 2);
    let floor_now = floor(s).expect("narrowing raises a floor");
    assert!(
        voided.iter().all(|&i| i < floor_now),
        "{voided:?} below {floor_now}"
    );
    let third = phone.doors(s).await;
    assert!(*iterations(s).last().unwrap() >= floor_now);
    let pool = third.doors.iter().find(|d| d.name == "Pool").unwrap();
    assert_eq!(pool.schedules[0].windows[0].start, "10:00");

    // "Disable All Doorcodes" on the home key removes Alice's codes.
    assert!(third.doors.iter().any(|d| d.doorcode.is_some()));
    let _: KeyJson = s
        .ok(
            "POST",
            &p.m.path(&format!("/keys/{}/disable-doorcodes", p.home.id)),
            &p.m.key,
            None::<&()>,
            200,
        )
        .await;
    assert!(phone
        .doors(s)
        .await
        .doors
        .iter()
        .all(|d| d.doorcode.is_none()));
}

#[tokio::test]
async fn bad_input_is_a_422_naming_the_field_and_writes_nothing() {
    let (p, _alice, _phone) = property().await;
    let s = &p.s;
    let keys_before: Vec<KeyJson> = s
        .ok("GET", &p.m.path("/keys"), &p.m.key, None::<&()>, 200)
        .await;
    let cases = [
        (
            p.m.path("/keys"),
            json!({"name": "K", "doors": [{"door_id": p.lobby.id}, {"door_id": "zz"}]}),
            "doors[1].door_id",
        ),
        (
            p.m.path("/keys"),
            json!({"name": "K", "doors": [{"door_id": p.lobby.id, "schedule": {"windows": [{"days": ["mon"], "start": "25:00", "end": "26:00"}]}}]}),
            "doors[0].schedule.windows[0].start",
        ),
        (
            p.m.path("/keys"),
            json!({"name": "K", "doors": []}),
            "doors",
        ),
        (
            p.m.path("/keys"),
            json!({"name": "K", "doors": [{"door_id": 5}]}),
            "doors[0].door_id",
        ),
        (
            p.m.path("/keys"),
            json!({"name": "", "doors": [{"door_id": p.lobby.id}]}),
            "name",
        ),
        (
            p.m.path("/people"),
            json!({"name": "X", "role": "landlord"}),
            "role",
        ),
        (
            p.m.path("/people"),
            json!({"name": "X", "role": "resident", "email": "x@example.com", "password": "short"}),
            "password",
        ),
        (
            p.m.path("/doors"),
            json!({"name": "D", "online": false, "lock_public_key": "AAAA"}),
            "lock_public_key",
        ),
        (
            "/v1/properties".into(),
            json!({"name": "P", "time_zone": "Mars/Base"}),
            "time_zone",
        ),
    ];
    for (path, body, field) in cases {
        let token = if path == "/v1/properties" {
            ADMIN.to_owned()
        } else {
            p.m.key.clone()
        };
        let (status, err) = s.call("POST", &path, &token, Some(&body)).await;
        assert_eq!(status, 422, "{path} {body} -> {err}");
        assert_eq!(err["field"].as_str(), Some(field), "{path} {body} -> {err}");
        assert!(!err["message"].as_str().unwrap().is_empty());
    }
    // Not JSON at all.
    let resp = s
        .http
        .post(format!("{}{}", s.handle.url(), p.m.path("/keys")))
        .bearer_auth(&p.m.key)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 422);
    let keys_after: Vec<KeyJson> = s
        .ok("GET", &p.m.path("/keys"), &p.m.key, None::<&()>, 200)
        .await;
    assert_eq!(keys_after.len(), keys_before.len(), "no key half-made");
    // Unknown endpoints and duplicate emails.
    let (status, body) = s.call("GET", "/v1/nothing", "", None).await;
    assert_eq!((status, code(&body)), (404, "not_found"));
    let (status, body) = s
        .call(
            "POST",
            &p.m.path("/people"),
            &p.m.key,
            Some(&json!({"name": "A2", "role": "resident", "email": "alice@example.com"})),
        )
        .await;
    assert_eq!((status, body["field"].as_str()), (409, Some("email")));
}

#[tokio::test]
async fn tokens_refresh_and_rotate() {
    let (p, _alice, phone) = property().await;
    let s = &p.s;
    let fresh: Tokens = s
        .ok(
            "POST",
            "/v1/auth/refresh",
            "",
            Some(&Refresh {
                refresh_token: phone.tokens.refresh_token.clone(),
            }),
            200,
        )
        .await;
    // (A spent refresh token used again ends its whole family: auth.rs.)
    // Access tokens expire.
    s.set_now(s.now() + door_server::auth::ACCESS_TTL + 1);
    let (status, _) = s.call("GET", "/v1/me", &fresh.access_token, None).await;
    assert_eq!(status, 401);
    let again: Tokens = s
        .ok(
            "POST",
            "/v1/auth/refresh",
            "",
            Some(&Refresh {
                refresh_token: fresh.refresh_token,
            }),
            200,
        )
        .await;
    let me: MeJson = s
        .ok("GET", "/v1/me", &again.access_token, None::<&()>, 200)
        .await;
    assert_eq!(me.name, "Alice");
    let (status, body) = s
        .call(
            "POST",
            "/v1/auth/login",
            "",
            Some(&json!({"email": "alice@example.com", "password": "wrong password"})),
        )
        .await;
    assert_eq!((status, code(&body)), (401, "unauthorized"));
}

#[tokio::test]
async fn device_registration_needs_proof_of_possession() {
    use p256::ecdsa::signature::Signer;
    let (p, _alice, phone) = property().await;
    let s = &p.s;
    let challenge: Challenge = s
        .ok(
            "POST",
            "/v1/me/devices/challenge",
            phone.token(),
            None::<&()>,
            200,
        )
        .await;
    let key = p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
    // Signing the bare challenge (no context) is not a proof.
    let sig: p256::ecdsa::Signature = key.sign(&unb64(&challenge.challenge));
    let body = json!({"public_key": b64(key.verifying_key().to_encoded_point(true).as_bytes()), "challenge": challenge.challenge, "signature": b64(&sig.to_bytes())});
    let (status, err) = s
        .call("POST", "/v1/me/devices", phone.token(), Some(&body))
        .await;
    assert_eq!((status, err["field"].as_str()), (422, Some("signature")));
    // A challenge never issued is refused.
    let message = [b"door-core/device-possession/v1\0".as_slice(), b"made up"].concat();
    let sig: p256::ecdsa::Signature = key.sign(&message);
    let body = json!({"public_key": b64(key.verifying_key().to_encoded_point(true).as_bytes()), "challenge": b64(b"made up"), "signature": b64(&sig.to_bytes())});
    let (status, err) = s
        .call("POST", "/v1/me/devices", phone.token(), Some(&body))
        .await;
    assert_eq!((status, err["field"].as_str()), (422, Some("challenge")));
}

#[tokio::test]
async fn openapi_document_is_served_and_committed() {
    let s = TestServer::start().await;
    let (status, served) = s.call("GET", "/openapi.json", "", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        served["openapi"].as_str().map(|v| v.starts_with("3.1")),
        Some(true)
    );
    let generated = door_server::openapi::document();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/openapi.json is stale: run UPDATE_OPENAPI=1 cargo test -p door-server --test api"
    );
}

#[tokio::test]
async fn audit_records_are_stored_once_and_acknowledged_up_to_the_first_gap() {
    use door_protocol::{AuditEpoch, AuditEvent, AuditRecord, Id, LockKey};
    use door_server::audit::{
        AuditAckJson, AuditReceipt, RecordResult, RecordStatus, RefusalReason,
    };
    let (p, _alice, phone) = property().await;
    let s = &p.s;
    let lock = LockKey::generate(&mut rand::rngs::OsRng);
    let door: DoorJson = s
        .ok(
            "POST",
            &p.m.path("/doors"),
            &p.m.key,
            Some(&json!({"name": "Gym", "online": false, "lock_public_key": b64(&lock.public().to_sec1_compressed())})),
            201,
        )
        .await;
    let epoch = AuditEpoch([0x3c; 8]);
    let record_of = |seq: u64, credential: u8| {
        AuditRecord {
            epoch,
            seq,
            at: s.now() + seq as i64,
            event: AuditEvent::UnlockGranted {
                credential_id: Id([credential; 16]),
                door_id: Id::from_hex(&door.id).unwrap(),
            },
        }
        .sign(&lock)
    };
    let record = |seq: u64| record_of(seq, 1);
    let upload = |seqs: &[u64]| json!({"records": seqs.iter().map(|q| b64(&record(*q))).collect::<Vec<_>>()});
    let path = format!("/v1/locks/{}/audit", door.lock_id);
    let ack = |below| {
        Some(AuditAckJson {
            epoch: epoch.to_string(),
            below,
        })
    };
    let first: AuditReceipt = s
        .ok("POST", &path, phone.token(), Some(&upload(&[0, 1, 3])), 200)
        .await;
    assert_eq!(
        (first.stored, first.duplicates, first.acknowledged),
        (3, 0, ack(2)),
        "record 2 is missing"
    );
    assert_eq!(
        first
            .results
            .iter()
            .map(|r| (r.status, r.seq))
            .collect::<Vec<_>>(),
        [
            (RecordStatus::Stored, Some(0)),
            (RecordStatus::Stored, Some(1)),
            (RecordStatus::Stored, Some(3))
        ]
    );
    // The phone retries after a lost answer, and brings the missing record: nothing twice.
    let again: AuditReceipt = s
        .ok(
            "POST",
            &path,
            phone.token(),
            Some(&upload(&[0, 1, 2, 3])),
            200,
        )
        .await;
    assert_eq!(
        (again.stored, again.duplicates, again.acknowledged),
        (1, 3, ack(4))
    );
    let count = || -> u32 {
        s.handle
            .state
            .db
            .read(|tx| Ok(tx.query_row("SELECT COUNT(*) FROM audit_records", [], |r| r.get(0))?))
            .unwrap()
    };
    assert_eq!(count(), 4);

    // One upload with a forged record, garbage, a conflicting record and good ones: each is
    // judged alone. (This was one 422 or 409 for the whole upload, which kept the good records
    // out with the bad one.)
    let forged = AuditRecord {
        epoch,
        seq: 9,
        at: 0,
        event: AuditEvent::SyncApplied { iteration: 1 },
    }
    .sign(&LockKey::generate(&mut rand::rngs::OsRng));
    let mixed: AuditReceipt = s
        .ok(
            "POST",
            &path,
            phone.token(),
            Some(&json!({"records": [
                b64(&record(4)),
                b64(&forged),
                "!!",
                b64(&record_of(0, 2)),
                b64(b"not cbor"),
                b64(&record(5)),
            ]})),
            200,
        )
        .await;
    let outcome = |r: &RecordResult| (r.status, r.reason, r.seq);
    assert_eq!(
        mixed.results.iter().map(outcome).collect::<Vec<_>>(),
        [
            (RecordStatus::Stored, None, Some(4)),
            (RecordStatus::Refused, Some(RefusalReason::Signature), None),
            (RecordStatus::Refused, Some(RefusalReason::Malformed), None),
            (
                RecordStatus::Refused,
                Some(RefusalReason::Conflict),
                Some(0)
            ),
            (RecordStatus::Refused, Some(RefusalReason::Malformed), None),
            (RecordStatus::Stored, None, Some(5)),
        ]
    );
    assert_eq!(
        (
            mixed.stored,
            mixed.duplicates,
            mixed.refused,
            mixed.acknowledged
        ),
        (2, 0, 4, ack(6))
    );
    assert!(mixed.results[3].detail.is_some());
    assert_eq!(count(), 6, "the good records are in; the bad ones are not");
    // The conflicting record did not overwrite the first one.
    let held: Vec<u8> = s
        .handle
        .state
        .db
        .read(|tx| {
            Ok(
                tx.query_row("SELECT record FROM audit_records WHERE seq = 0", [], |r| {
                    r.get(0)
                })?,
            )
        })
        .unwrap();
    assert_eq!(held, record(0));
    // A request that is itself malformed is still refused whole.
    let (status, err) = s
        .call("POST", &path, phone.token(), Some(&json!({"records": "x"})))
        .await;
    assert_eq!(status, 422, "{err}");

    // The manager sees the trail; a lock of another property is not found.
    let trail: Vec<door_server::audit::AuditEntry> = s
        .ok("GET", &p.m.path("/audit"), &p.m.key, None::<&()>, 200)
        .await;
    assert_eq!(
        trail.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [0, 1, 2, 3, 4, 5]
    );
    assert!(trail.iter().all(|e| e.epoch == epoch.to_string()));
    assert!(trail
        .iter()
        .all(|e| e.kind == "unlock_granted" && e.door_id == door.id));
    let (status, _) = s
        .call(
            "POST",
            &format!("/v1/locks/{}/audit", "00".repeat(16)),
            phone.token(),
            Some(&upload(&[0])),
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_gap_the_lock_signed_a_drop_record_for_does_not_hold_the_acknowledgement_back() {
    use door_protocol::{AuditEpoch, AuditEvent, AuditRecord, LockKey};
    use door_server::audit::{AuditAckJson, AuditEntry, AuditReceipt};
    let (p, _alice, phone) = property().await;
    let s = &p.s;
    let lock = LockKey::generate(&mut rand::rngs::OsRng);
    let door: DoorJson = s
        .ok(
            "POST",
            &p.m.path("/doors"),
            &p.m.key,
            Some(&json!({"name": "Gym", "online": false, "lock_public_key": b64(&lock.public().to_sec1_compressed())})),
            201,
        )
        .await;
    let epoch = AuditEpoch([0x4d; 8]);
    let record = |seq: u64, event| {
        b64(&AuditRecord {
            epoch,
            seq,
            at: s.now() + seq as i64,
            event,
        }
        .sign(&lock))
    };
    let sync = AuditEvent::SyncApplied { iteration: 1 };
    let path = format!("/v1/locks/{}/audit", door.lock_id);
    let ack = |below| {
        Some(AuditAckJson {
            epoch: epoch.to_string(),
            below,
        })
    };
    // The server got 0 and 1; the lock filled up and dropped 0 to 3 (2 and 3 never pulled),
    // then recorded 4 (the drop record) and 5.
    let first: AuditReceipt = s
        .ok(
            "POST",
            &path,
            phone.token(),
            Some(&json!({"records": [record(0, sync), record(1, sync), record(5, sync)]})),
            200,
        )
        .await;
    assert_eq!(first.acknowledged, ack(2), "an unexplained gap stops it");
    let dropped = AuditEvent::RecordsDropped {
        count: 4,
        through_seq: 3,
    };
    let second: AuditReceipt = s
        .ok(
            "POST",
            &path,
            phone.token(),
            Some(&json!({"records": [record(4, dropped)]})),
            200,
        )
        .await;
    assert_eq!(
        second.acknowledged,
        ack(6),
        "the drop record explains 2 and 3"
    );
    let trail: Vec<AuditEntry> = s
        .ok("GET", &p.m.path("/audit"), &p.m.key, None::<&()>, 200)
        .await;
    let drop = trail.iter().find(|e| e.seq == 4).unwrap();
    assert_eq!(
        (drop.kind.as_str(), drop.detail.as_deref()),
        (
            "records_dropped",
            Some("4 unacknowledged records dropped: seq 0 to 3")
        )
    );
}
