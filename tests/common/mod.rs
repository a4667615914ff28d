//! A simulated day: one clock shared by door-server and the clients, a seeded "1800 Main St",
//! and clients the way an app makes them.

#![allow(dead_code)] // each test binary uses its own part of this

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine;
use door_core::ble::memory::{LinkModel, MemoryTransport, Peripheral};
use door_core::ble::Transport;
use door_core::{ClientConfig, DoorClient, DoorEvent, EventListener, UnlockPhase, UnlockTrigger};
use door_lock::{Lock, LockClock};
use door_protocol::{Id, IssuerKeys, IssuerPublicKey, LockConfig, LockKey};
use door_server::seed::{self, Scale, Seeded};
use door_server::ServerHandle;

pub const ADMIN: &str = "test-admin-token";
/// Tuesday 2026-11-24 10:00 in New York.
pub const TUESDAY_10AM: i64 = 1_795_532_400;
pub const HOUR: i64 = 3600;

#[derive(Clone)]
pub struct SimClock(pub Arc<AtomicI64>);

impl SimClock {
    pub fn new(t: i64) -> SimClock {
        SimClock(Arc::new(AtomicI64::new(t)))
    }
    pub fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
    pub fn set(&self, t: i64) {
        self.0.store(t, Ordering::SeqCst)
    }
    pub fn f(&self) -> Arc<dyn Fn() -> i64 + Send + Sync> {
        let c = self.0.clone();
        Arc::new(move || c.load(Ordering::SeqCst))
    }
}

pub struct World {
    pub clock: SimClock,
    pub server: ServerHandle,
    pub seeded: Seeded,
    pub dirs: Vec<tempfile::TempDir>,
    /// One reference lock per door, on the in-memory link, all on `lock_clock`.
    pub locks: std::collections::HashMap<String, Lock>,
    pub lock_clock: LockClock,
    pub link: MemoryTransport,
}

/// A reference lock's connection as the in-memory link's peripheral.
pub struct LockPeripheral(pub door_lock::Connection);

impl Peripheral for LockPeripheral {
    fn on_write(&mut self, fragment: &[u8], mtu: usize) -> Vec<Vec<u8>> {
        // A lock that cannot persist its state answers nothing; the phone then times out.
        self.0.on_write(fragment, mtu as u16).unwrap_or_default()
    }
}

#[derive(Default)]
pub struct Recorder(pub Mutex<Vec<DoorEvent>>);

impl EventListener for Recorder {
    fn on_event(&self, event: DoorEvent) {
        self.0.lock().unwrap().push(event);
    }
}

impl Recorder {
    pub fn saw(&self, e: &DoorEvent) -> bool {
        self.0.lock().unwrap().contains(e)
    }

    /// The unlock events so far, as (door, trigger, phase).
    pub fn unlocks(&self) -> Vec<(String, UnlockTrigger, UnlockPhase)> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                DoorEvent::Unlock {
                    door_id,
                    trigger,
                    phase,
                } => Some((door_id.clone(), *trigger, phase.clone())),
                _ => None,
            })
            .collect()
    }
}

impl World {
    pub async fn start() -> World {
        World::start_with(door_server::Options::default()).await
    }

    /// A world whose server runs with `options` (device limit, rate limits).
    pub async fn start_with(options: door_server::Options) -> World {
        let clock = SimClock::new(TUESDAY_10AM);
        let c = clock.0.clone();
        let server = door_server::start_with(
            "127.0.0.1:0".parse().unwrap(),
            None,
            ADMIN,
            Arc::new(move || c.load(Ordering::SeqCst)),
            options,
        )
        .await
        .unwrap();
        let seeded = seed::main_st(&server.url(), ADMIN, Scale::SMALL)
            .await
            .unwrap();
        let issuer = base64::engine::general_purpose::STANDARD
            .decode(&seeded.property.issuer_public_key)
            .unwrap();
        let issuer = IssuerKeys::single(IssuerPublicKey::from_sec1(&issuer).unwrap());
        let lock_clock = LockClock::fixed(TUESDAY_10AM);
        let link = MemoryTransport::new(LinkModel::FAST);
        let mut locks = std::collections::HashMap::new();
        let mut dirs = Vec::new();
        for d in &seeded.doors {
            let dir = tempfile::tempdir().unwrap();
            let config = LockConfig::new(
                Id::from_hex(&d.door.lock_id).unwrap(),
                Id::from_hex(&d.door.id).unwrap(),
                LockKey::from_bytes(&d.lock_secret).unwrap(),
                issuer.clone(),
            );
            let lock = Lock::open(dir.path(), config, lock_clock.clone()).unwrap();
            let l = lock.clone();
            link.add_lock(
                &d.door.lock_id,
                Arc::new(move || Box::new(LockPeripheral(l.connect())) as Box<dyn Peripheral>),
            );
            locks.insert(d.door.name.clone(), lock);
            dirs.push(dir);
        }
        World {
            clock,
            server,
            seeded,
            dirs,
            locks,
            lock_clock,
            link,
        }
    }

    /// Moves the whole world (server, phones, locks) to `t`.
    pub fn set_time(&self, t: i64) {
        self.clock.set(t);
        self.lock_clock.set_time(t);
    }

    /// A fresh app install: its own data directory and an in-memory device key.
    pub fn client(&mut self, server_url: &str) -> (Arc<DoorClient>, Arc<Recorder>, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_string_lossy().into_owned();
        self.dirs.push(dir);
        let recorder = Arc::new(Recorder::default());
        let client = self.client_in(server_url, &path, recorder.clone());
        (client, recorder, path)
    }

    /// A fresh app install whose radio is `transport` (btleplug over the fake BlueZ).
    pub fn client_over(
        &mut self,
        transport: Arc<dyn Transport>,
        recorder: Arc<Recorder>,
    ) -> Arc<DoorClient> {
        let dir = tempfile::tempdir().unwrap();
        let client = DoorClient::with_clock(
            ClientConfig {
                server_url: self.server.url(),
                data_dir: dir.path().to_string_lossy().into_owned(),
                request_timeout_ms: 3000,
            },
            Some(door_core::ephemeral_device_signer()),
            Some(recorder),
            Some(transport),
            self.clock.f(),
        )
        .unwrap();
        self.dirs.push(dir);
        client
    }

    pub fn client_in(
        &self,
        server_url: &str,
        data_dir: &str,
        recorder: Arc<Recorder>,
    ) -> Arc<DoorClient> {
        DoorClient::with_clock(
            ClientConfig {
                server_url: server_url.into(),
                data_dir: data_dir.into(),
                request_timeout_ms: 3000,
            },
            Some(door_core::ephemeral_device_signer()),
            Some(recorder),
            Some(Arc::new(self.link.clone()) as Arc<dyn Transport>),
            self.clock.f(),
        )
        .unwrap()
    }

    pub fn door_id(&self, name: &str) -> String {
        self.seeded.door(name).door.id.clone()
    }
}
