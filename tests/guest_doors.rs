//! A resident revokes a guest's access to one door (OpenDOOR `revokeGuestAccess(guest, lock)`)
//! through the core, against door-server: the guest keeps the other door; the last door
//! revokes the guest. The core is used directly (`Core`), its FFI method not being there yet.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use door_core::client::{Config, Core};
use door_core::error::{CoreError, CoreResult};
use door_core::signer::Signer;
use door_core::DoorError;
use door_server::seed::PASSWORD;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};

/// A device key in memory.
struct MemoryKey(SigningKey);

impl Signer for MemoryKey {
    fn public_key(&self) -> CoreResult<Vec<u8>> {
        Ok(self
            .0
            .verifying_key()
            .to_encoded_point(true)
            .as_bytes()
            .to_vec())
    }

    fn sign(&self, message: &[u8]) -> CoreResult<Vec<u8>> {
        let sig: Signature = self.0.sign(message);
        Ok(sig.to_bytes().to_vec())
    }
}

#[tokio::test]
async fn a_resident_revokes_a_guest_from_one_door_through_the_core() {
    let mut w = World::start().await;
    let url = w.server.url();
    let dir = tempfile::tempdir().unwrap();
    let clock = w.clock.clone();
    let alice = Core::open(
        Config {
            server_url: url.clone(),
            data_dir: dir.path().to_path_buf(),
            request_timeout: Duration::from_secs(3),
        },
        Arc::new(MemoryKey(SigningKey::random(&mut rand_core::OsRng))),
        None,
        Box::new(|_| {}),
        Box::new(move || clock.now()),
    )
    .unwrap();
    alice
        .sign_in("alice@1800main.example", PASSWORD)
        .await
        .unwrap();
    alice.refresh().await.unwrap();
    let (lobby, unit) = (w.door_id("Lobby"), w.door_id("Unit 101"));
    let now = w.clock.now();
    let invite = alice
        .invite_guest(
            &[lobby.clone(), unit.clone()],
            "+1 555 0100",
            now,
            now + 2 * 24 * HOUR,
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
            alice.revoke_guest_door(g, d).await,
            Err(CoreError::InvalidInput { field: f, .. }) if f == field
        ));
    }

    // The lobby goes; the guest keeps the unit.
    let left = alice
        .revoke_guest_door(&invite.guest.id, &lobby)
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
        .revoke_guest_door(&invite.guest.id, &lobby)
        .await
        .is_err());

    // The last door revokes the guest; the guest's session ends.
    let gone = alice
        .revoke_guest_door(&invite.guest.id, &unit)
        .await
        .unwrap();
    assert!(gone.revoked);
    assert!(matches!(
        guest.refresh().await,
        Err(DoorError::SessionExpired)
    ));
}
