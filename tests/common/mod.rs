//! A simulated day: one clock shared by door-server and the clients, a seeded "1800 Main St",
//! and clients the way an app makes them.

#![allow(dead_code)] // each test binary uses its own part of this

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use door_core::{ClientConfig, DoorClient, DoorEvent, EventListener};
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
}

impl World {
    pub async fn start() -> World {
        let clock = SimClock::new(TUESDAY_10AM);
        let c = clock.0.clone();
        let server = door_server::start(
            "127.0.0.1:0".parse().unwrap(),
            None,
            ADMIN,
            Arc::new(move || c.load(Ordering::SeqCst)),
        )
        .await
        .unwrap();
        let seeded = seed::main_st(&server.url(), ADMIN, Scale::SMALL)
            .await
            .unwrap();
        World {
            clock,
            server,
            seeded,
            dirs: Vec::new(),
        }
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
            self.clock.f(),
        )
        .unwrap()
    }

    pub fn door_id(&self, name: &str) -> String {
        self.seeded.door(name).door.id.clone()
    }
}
