//! The unlock and Door Sync hot paths, a fixed number of times, for a profiler. callgrind
//! counts instructions, which do not depend on the machine's load, so a change's effect is
//! exact (docs/PERFORMANCE.md, "Profiles"):
//!
//! cargo build --release -p door-protocol --example hot_paths
//! valgrind --tool=callgrind target/release/examples/hot_paths unlock   # or: sync
//! callgrind_annotate --inclusive=yes callgrind.out.<pid> | head -40

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;
use door_protocol::sync::SyncMessage;
use door_protocol::{LockSession, LockState, SyncTransfer, UnlockPreparation, UnlockTarget};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use rand_core::OsRng;

const MTU: u16 = 247;
const UNLOCKS: usize = 20;
const SYNCS: usize = 3;

fn main() {
    match std::env::args().nth(1).as_deref() {
        Some("unlock") => unlock(),
        Some("sync") => sync(),
        _ => eprintln!("usage: hot_paths unlock|sync"),
    }
}

/// The phone prepares and seals (software key), the lock answers, the phone reads the answer.
fn unlock() {
    let config = lock_config();
    let device = SigningKey::from_bytes(&DEVICE_SCALAR.into()).unwrap();
    let target = UnlockTarget {
        lock_id: config.lock_id,
        lock_key: *config.key.public(),
        access_document: sample_access().sign(&issuer()).unwrap(),
    };
    let mut state = LockState::default();
    for _ in 0..UNLOCKS {
        let (prep, to_sign) =
            UnlockPreparation::new(target.clone(), MONDAY_0800_NY, &mut OsRng).unwrap();
        let signature: Signature = device.sign(&to_sign);
        let mut phone = prep.signed(&signature.to_bytes()).unwrap();
        let mut session = LockSession::new();
        let mut reply = None;
        for chunk in phone.request_fragments(MTU) {
            reply = session.on_fragment(&config, &mut state, &chunk, MONDAY_0800_NY, &mut OsRng);
        }
        let mut outcome = None;
        for chunk in reply.unwrap().message.fragments(MTU) {
            outcome = phone.on_fragment(&chunk).unwrap();
        }
        assert!(outcome.unwrap().result.is_granted());
    }
}

/// The lock's side of a full 1,000-credential bundle's transfer: reassembly, flow control,
/// digest, verify, open, apply.
fn sync() {
    let config = lock_config();
    let bundle = full_bundle(1000, 1)
        .seal_and_sign(&issuer(), config.key.public(), &mut OsRng)
        .unwrap();
    let offer = SyncTransfer::new(bundle.clone(), 1, 0).unwrap().offer();
    let mut wire = SyncMessage::Offer(offer).to_message().fragments(MTU);
    for (i, block) in bundle.chunks(SyncTransfer::DEFAULT_BLOCK).enumerate() {
        let data = SyncMessage::Data {
            offset: (i * SyncTransfer::DEFAULT_BLOCK) as u32,
            bytes: block.to_vec(),
        };
        wire.extend(data.to_message().fragments(MTU));
    }
    for _ in 0..SYNCS {
        let mut state = LockState::default();
        let mut session = LockSession::new();
        let mut last = None;
        for chunk in &wire {
            last = session
                .on_fragment(&config, &mut state, chunk, MONDAY_0800_NY, &mut OsRng)
                .or(last);
        }
        let done = SyncMessage::from_message(&last.unwrap().message).unwrap();
        assert_eq!(done, SyncMessage::Done { iteration: 1 });
    }
}
