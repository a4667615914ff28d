//! The phone and a reference lock over the link model, at MTU 247 / 30 ms and MTU 23 / 7.5 ms:
//! an unlock (time from connected to result, in connection events) and a Door Sync of a
//! 1,000-credential property's full bundle (transfer time, and throughput as a share of the
//! link's capacity: the bundle's bytes over what the phone-to-lock direction can carry in
//! the same time). Link time runs on tokio's paused clock, so the figures are exact for the
//! model and independent of this machine's load; CPU is measured separately (door-protocol's
//! benches/unlock.rs and benches/sync.rs).
//!
//! cargo bench -p door-core --bench link_model

use std::sync::Arc;
use std::time::Duration;

use door_core::ble::memory::{LinkModel, MemoryTransport, Peripheral};
use door_core::ble::{LockTarget, Transport};
use door_core::doors::CachedDoor;
use door_core::error::CoreResult;
use door_core::signer::Signer;
use door_core::store::Store;
use door_core::unlock::Unlocker;
use door_lock::{Lock, LockClock};
use door_protocol::access::{AccessDocument, DoorGrant, ACCESS_VERSION};
use door_protocol::sync::bundle::{Doorcode, DoorcodeChanges, KeypadRules};
use door_protocol::{
    Floor, Id, IssuerKey, IssuerKeys, LockConfig, LockKey, Schedule, SyncBundle, ZoneRules,
};
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
    let zone = ZoneRules::from_iana("America/New_York", NOW - 300, NOW + 7 * 86_400).unwrap();
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
        zone: zone.clone(),
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
        more_schedules: Vec::new(),
        zone_initial_offset: zone.initial_offset,
        zone_transitions: zone.transitions.iter().map(|t| (t.at, t.offset)).collect(),
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
    let links = [
        ("MTU 247, 30 ms interval", LinkModel::FAST),
        ("MTU 23, 7.5 ms interval", LinkModel::MINIMAL),
    ];
    let lock_on = |model: LinkModel, dir: &std::path::Path| {
        let config = LockConfig::new(
            lock_id,
            door_id,
            LockKey::from_bytes(&lock_key.to_bytes()).unwrap(),
            IssuerKeys::single(*issuer.verifying()),
        );
        let lock = Lock::open(dir, config, LockClock::fixed(NOW)).unwrap();
        let link = MemoryTransport::new(model);
        link.add_lock(
            &lock_id.to_string(),
            Arc::new(move || Box::new(LockPeripheral(lock.connect())) as Box<dyn Peripheral>),
        );
        link
    };
    for (name, model) in links {
        let dir = tempfile::tempdir().unwrap();
        let link = lock_on(model, dir.path());
        let elapsed = paused().block_on(async {
            let progress = |_| {};
            // The lock's clock is right: nothing to commission.
            let bound_time = |_, _| Box::pin(async { None }) as _;
            let unlocker = Unlocker {
                transport: &link,
                signer: signer.clone(),
                now: NOW,
                signed_time: None,
                bound_time: &bound_time,
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

    let bundle = full_bundle(lock_id, 1000)
        .seal_and_sign(&issuer, lock_key.public(), rng)
        .unwrap();
    println!();
    println!(
        "Door Sync of a full bundle over the link model (1,000 doorcodes + 1,000 revocations, \
         {} bytes; connection set-up excluded)",
        bundle.len()
    );
    println!(
        "{:<26} {:>12} {:>14} {:>14} {:>10}",
        "link", "transfer", "throughput", "capacity", "share"
    );
    for (name, model) in links {
        let dir = tempfile::tempdir().unwrap();
        let link = lock_on(model, dir.path());
        let phone = tempfile::tempdir().unwrap();
        let store = Store::open(phone.path()).unwrap();
        store
            .set_bundle(&lock_id.to_string(), 1, 0, &bundle)
            .unwrap();
        let elapsed = paused().block_on(async {
            let target = LockTarget {
                lock_id: lock_id.to_string(),
            };
            let mut connection = link
                .connect(&target, Duration::from_secs(10))
                .await
                .unwrap();
            let start = tokio::time::Instant::now();
            let after = door_core::sync::transfer_bundle(
                &store,
                connection.as_mut(),
                &lock_id.to_string(),
                None,
                &|_, _| {},
                start + Duration::from_secs(600),
            )
            .await
            .unwrap();
            assert_eq!(after, Some(1), "the lock applied the bundle");
            let elapsed = start.elapsed();
            connection.close().await;
            elapsed
        });
        // What the phone-to-lock direction carries at most: full packets in every event.
        let capacity = ((model.mtu - 3) * model.packets_per_event) as f64
            / model.connection_interval.as_secs_f64();
        let throughput = bundle.len() as f64 / elapsed.as_secs_f64();
        println!(
            "{name:<26} {:>10.2} s {:>9.1} KB/s {:>9.1} KB/s {:>9.1}%",
            elapsed.as_secs_f64(),
            throughput / 1e3,
            capacity / 1e3,
            100.0 * throughput / capacity
        );
    }
}

/// Link time on tokio's paused clock: sleeps advance it at once.
fn paused() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
}

/// The full bundle a lock of a 1,000-credential property gets at installation: `n` 6-digit
/// doorcodes and `n` revocations, each expiring within the week.
fn full_bundle(lock_id: Id, n: u32) -> SyncBundle {
    let id = |tag: u8, i: u32| {
        let mut id = [tag; 16];
        id[12..].copy_from_slice(&i.to_be_bytes());
        Id(id)
    };
    SyncBundle {
        lock_id,
        iteration: 1,
        base_iteration: 0,
        issued_at: NOW,
        floors: (0..n)
            .map(|i| Floor {
                person_id: id(0xc0, i),
                floor: 2,
                expires_at: NOW + 7 * 86_400,
            })
            .collect(),
        issued_floor: None,
        doorcodes: DoorcodeChanges {
            added: (0..n)
                .map(|i| Doorcode {
                    person_id: id(0xa0, i),
                    code: format!("{:06}", 100_000 + i * 7),
                    expires_at: Some(NOW + 7 * 86_400),
                    schedules: vec![0],
                })
                .collect(),
            removed: Vec::new(),
        },
        keypad: Some(KeypadRules {
            zone: ZoneRules::fixed(0),
            schedules: vec![Schedule::always()],
        }),
        audit_ack: None,
    }
}
