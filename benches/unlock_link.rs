//! Unlock over the link model: time from connected to result, in connection events, at
//! MTU 247 / 30 ms and MTU 23 / 7.5 ms. Link time runs on tokio's paused clock, so the
//! figures are exact for the model and independent of this machine's load; CPU per unlock
//! is measured separately (benches/unlock.rs in door-protocol).
//!
//! cargo bench -p door-core --bench unlock_link

use std::sync::Arc;
use std::time::Duration;

use door_core::ble::memory::{LinkModel, MemoryTransport, Peripheral};
use door_core::client::Signer;
use door_core::doors::CachedDoor;
use door_core::error::CoreResult;
use door_core::unlock::Unlocker;
use door_lock::{Lock, LockClock};
use door_protocol::access::{AccessDocument, DoorGrant, ACCESS_VERSION};
use door_protocol::{Id, IssuerKey, IssuerKeys, LockConfig, LockKey, Schedule, ZoneRules};
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};

const NOW: i64 = 1_795_532_400;

struct Key(SigningKey);

impl Signer for Key {
    fn public_key(&self) -> CoreResult<Vec<u8>> {
        Ok(self
            .0
            .verifying_key()
            .to_encoded_point(true)
            .as_bytes()
            .to_vec())
    }
    fn sign(&self, message: &[u8]) -> CoreResult<Vec<u8>> {
        let s: Signature = self.0.sign(message);
        Ok(s.to_bytes().to_vec())
    }
}

struct LockPeripheral(door_lock::Connection);

impl Peripheral for LockPeripheral {
    fn on_write(&mut self, fragment: &[u8], mtu: usize) -> Vec<Vec<u8>> {
        self.0.on_write(fragment, mtu as u16).unwrap_or_default()
    }
}

fn main() {
    let rng = &mut rand_core::OsRng;
    let issuer = IssuerKey::generate(rng);
    let device = SigningKey::random(rng);
    let door_id = Id([7; 16]);
    let lock_key = LockKey::generate(rng);
    let lock_id = Id([9; 16]);
    let mut device_key = [0u8; 33];
    device_key.copy_from_slice(device.verifying_key().to_encoded_point(true).as_bytes());
    let document = AccessDocument {
        version: ACCESS_VERSION,
        credential_id: Id([1; 16]),
        person_id: Id([2; 16]),
        device_key,
        grants: vec![DoorGrant {
            door_id,
            schedule: Schedule::always(),
            doorcode: true,
        }],
        not_before: NOW - 300,
        not_after: NOW + 7 * 86_400,
        issued_at: NOW,
        access_iteration: 1,
        may_share: true,
        zone: ZoneRules::from_iana("America/New_York", NOW - 300, NOW + 7 * 86_400).unwrap(),
    }
    .sign(&issuer)
    .unwrap();
    let door = CachedDoor {
        id: door_id.to_string(),
        name: "Lobby".into(),
        online: false,
        keypad: true,
        lock_id: lock_id.to_string(),
        lock_public_key: lock_key.public().to_sec1_compressed().to_vec(),
        doorcode: None,
        may_share: true,
        credential_id: Id([1; 16]).to_string(),
        document: document.clone(),
        document_not_before: NOW - 300,
        document_not_after: NOW + 7 * 86_400,
        windows: vec![(0x7f, 0, 1440)],
        schedule_not_before: None,
        schedule_not_after: None,
    };
    let signer: Arc<dyn Signer> = Arc::new(Key(device));

    println!(
        "unlock over the link model (connection set-up excluded; access document {} bytes)",
        document.len()
    );
    println!(
        "{:<26} {:>12} {:>18} {:>12}",
        "link", "connected→result", "connection events", "round trips"
    );
    for (name, model) in [
        ("MTU 247, 30 ms interval", LinkModel::FAST),
        ("MTU 23, 7.5 ms interval", LinkModel::MINIMAL),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let config = LockConfig::new(
            lock_id,
            door_id,
            LockKey::from_bytes(&lock_key.to_bytes()).unwrap(),
            IssuerKeys::single(*issuer.verifying()),
        );
        let lock = Lock::open(dir.path(), config, LockClock::fixed(NOW)).unwrap();
        let link = MemoryTransport::new(model);
        let l = lock.clone();
        link.add_lock(
            &lock_id.to_string(),
            Arc::new(move || Box::new(LockPeripheral(l.connect())) as Box<dyn Peripheral>),
        );
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        let elapsed = runtime.block_on(async {
            let progress = |_| {};
            let unlocker = Unlocker {
                transport: &link,
                signer: signer.clone(),
                now: NOW,
                signed_time: None,
                progress: &progress,
            };
            let start = tokio::time::Instant::now();
            let (_, mut connection) = unlocker
                .unlock(&door, Duration::from_secs(10))
                .await
                .expect("granted");
            let elapsed = start.elapsed();
            connection.close().await;
            elapsed
        });
        let events = elapsed.as_secs_f64() / model.connection_interval.as_secs_f64();
        println!(
            "{name:<26} {:>12.1} ms {:>18.1} {:>12}",
            elapsed.as_secs_f64() * 1e3,
            events,
            1
        );
    }
}
