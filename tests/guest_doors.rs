//! A resident revokes a guest's access to one door (OpenDOOR `revokeGuestAccess(guest, lock)`)
//! through `DoorClient`, against door-server: the guest keeps the other door; the last door
//! revokes the guest. Invite types: a guest with a doorcode at a keypad door.

mod common;

use std::time::{Duration, UNIX_EPOCH};

use common::*;
use door_core::DoorError;
use door_server::seed::PASSWORD;

#[tokio::test]
async fn a_resident_revokes_a_guest_from_one_door_through_the_core() {
    let mut w = World::start().await;
    let url = w.server.url();
    let (alice, _, _) = w.client(&url);
    alice
        .sign_in("alice@1800main.example".into(), PASSWORD.into())
        .await
        .unwrap();
    let (lobby, unit) = (w.door_id("Lobby"), w.door_id("Unit 101"));
    let now = UNIX_EPOCH + Duration::from_secs(w.clock.now() as u64);
    let invite = alice
        .invite_guest(
            vec![lobby.clone(), unit.clone()],
            "+1 555 0100".into(),
            now,
            now + Duration::from_secs(2 * 24 * HOUR as u64),
            vec![],
        )
        .await
        .unwrap();
    let (guest, _, _) = w.client(&url);
    guest
        .redeem_invite(invite.invite_token.clone())
        .await
        .unwrap();
    let names = |g: &door_core::DoorClient| -> Vec<String> {
        g.doors().unwrap().into_iter().map(|d| d.name).collect()
    };
    assert_eq!(names(&guest), ["Lobby", "Unit 101"]);

    // Checked before any request, naming the field at fault.
    for (g, d, field) in [
        ("nope", lobby.as_str(), "guest_id"),
        (invite.guest.id.as_str(), "", "door_id"),
    ] {
        assert!(matches!(
            alice.revoke_guest_door(g.into(), d.into()).await,
            Err(DoorError::InvalidInput { field: f, .. }) if f == field
        ));
    }

    // The lobby goes; the guest keeps the unit.
    let left = alice
        .revoke_guest_door(invite.guest.id.clone(), lobby.clone())
        .await
        .unwrap();
    assert_eq!(
        (left.door_ids.clone(), left.revoked),
        (vec![unit.clone()], false)
    );
    guest.refresh().await.unwrap();
    assert_eq!(names(&guest), ["Unit 101"]);
    assert_eq!(alice.guests().await.unwrap(), [left]);

    // The lobby again: no longer in the invite.
    assert!(alice
        .revoke_guest_door(invite.guest.id.clone(), lobby.clone())
        .await
        .is_err());

    // The last door revokes the guest; the guest's session ends.
    let gone = alice
        .revoke_guest_door(invite.guest.id.clone(), unit.clone())
        .await
        .unwrap();
    assert!(gone.revoked);
    assert!(matches!(
        guest.refresh().await,
        Err(DoorError::SessionExpired)
    ));
}

/// Invite types through `DoorClient`: a dog walker without the app gets a doorcode for the
/// Lobby's keypad, the code is in the invite's answer only, the offline Lobby lets it in once
/// the host's phone has synced it, and revoking the guest takes it out at the next sync.
#[tokio::test]
async fn a_guest_with_a_doorcode_gets_in_at_the_keypad_until_revoked() {
    let mut w = World::start().await;
    let url = w.server.url();
    let (alice, _, _) = w.client(&url);
    alice
        .sign_in("alice@1800main.example".into(), PASSWORD.into())
        .await
        .unwrap();
    let (lobby, unit) = (w.door_id("Lobby"), w.door_id("Unit 101"));
    let now = UNIX_EPOCH + Duration::from_secs(w.clock.now() as u64);
    let until = now + Duration::from_secs(2 * 24 * HOUR as u64);
    // Offline checks name the field: a door not hers.
    assert!(matches!(
        alice
            .invite_guest(vec![], "walker".into(), now, until, vec!["ab".repeat(16)])
            .await,
        Err(DoorError::InvalidInput { field, .. }) if field == "doorcode_door_ids[0]"
    ));
    let invite = alice
        .invite_guest(
            vec![unit.clone()],
            "dog walker".into(),
            now,
            until,
            vec![lobby.clone()],
        )
        .await
        .unwrap();
    assert_eq!(invite.guest.door_ids, std::slice::from_ref(&unit));
    assert_eq!(invite.guest.doorcode_door_ids, std::slice::from_ref(&lobby));
    let [code] = &invite.doorcodes[..] else {
        panic!("one doorcode: {:?}", invite.doorcodes)
    };
    assert_eq!(code.door_id, lobby);
    let own = alice.doorcode(lobby.clone()).unwrap().unwrap();
    assert_ne!(code.code, own);
    let listed = alice.guests().await.unwrap();
    assert_eq!(listed, std::slice::from_ref(&invite.guest));

    let keypad = &w.locks["Lobby"];
    assert!(matches!(
        keypad.enter_doorcode(&code.code).unwrap(),
        door_protocol::DoorcodeResult::Denied(_)
    ));
    alice.sync_door(lobby.clone(), 5000, None).await.unwrap();
    assert!(matches!(
        keypad.enter_doorcode(&code.code).unwrap(),
        door_protocol::DoorcodeResult::Granted { .. }
    ));

    alice.revoke_guest(invite.guest.id.clone()).await.unwrap();
    alice.sync_door(lobby.clone(), 5000, None).await.unwrap();
    assert_eq!(
        keypad.enter_doorcode(&code.code).unwrap(),
        door_protocol::DoorcodeResult::Denied(door_protocol::sync::DoorcodeDenied::Unknown)
    );
}
