//! Writes the inputs of the Cortex-M measurement (mcu/, scripts/bench-mcu): a lock's
//! installed values and the BLE chunks a phone would write, in phases, each with the reply the
//! lock gave on this host. The emulated lock replays the phases and checks it answers byte for
//! byte the same, so what is timed there is the work that produced these real, signed replies.
//!
//!   cargo run -p door-protocol --example mcu_inputs -- OUT
//!
//! Phases, on one lock: a full sync of a 1,000-person property, a first unlock, a repeat
//! unlock of the same document, a one-revocation delta sync that revokes that document's
//! holder, the same document once more (refused), and it with a bit of the issuer's signature
//! flipped (refused as a bad credential). Last, a digest of the lock's signed
//! audit records.
//!
//! The format (little-endian) is mcu/src/inputs.rs's to read; both sides change together.

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;
use door_protocol::revocation::Floor;
use door_protocol::sync::SyncMessage;
use door_protocol::{
    LockConfig, LockSession, LockState, Message, SyncBundle, SyncTransfer, UnlockPreparation,
    UnlockResult, UnlockTarget,
};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use sha2::{Digest, Sha256};

const MTU: u16 = 247;

/// The harness's randomness: SHA-256 of a seed and a counter, the same in mcu/src/rng.rs, so
/// the emulated lock draws the nonces this host drew and its sealed answers match byte for
/// byte. Reproducible inputs, not secrets.
struct CounterRng {
    seed: [u8; 32],
    counter: u64,
}

impl rand_core::RngCore for CounterRng {
    fn next_u32(&mut self) -> u32 {
        rand_core::impls::next_u32_via_fill(self)
    }
    fn next_u64(&mut self) -> u64 {
        rand_core::impls::next_u64_via_fill(self)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(32) {
            let block = Sha256::new()
                .chain_update(self.seed)
                .chain_update(self.counter.to_le_bytes())
                .finalize();
            self.counter += 1;
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl rand_core::CryptoRng for CounterRng {}

struct Phase {
    name: &'static str,
    now: i64,
    fragments: Vec<Vec<u8>>,
}

/// A request presenting the sample document; `tamper` flips a bit in the last byte of its
/// issuer signature (the phone still reads it, and the device still signs it).
fn unlock_request(
    config: &LockConfig,
    now: i64,
    rng: &mut CounterRng,
    tamper: bool,
) -> Vec<Vec<u8>> {
    let device = SigningKey::from_bytes(&DEVICE_SCALAR.into()).expect("fixed scalar");
    let mut access_document = sample_access().sign(&issuer()).expect("sample document");
    if tamper {
        *access_document.last_mut().expect("a signed document") ^= 1;
    }
    let target = UnlockTarget {
        lock_id: config.lock_id,
        lock_key: *config.key.public(),
        access_document,
    };
    let (prep, to_sign) = UnlockPreparation::new(target, now, rng).expect("preparation");
    let signature: Signature = device.sign(&to_sign);
    prep.signed(&signature.to_bytes())
        .expect("device signature")
        .request_fragments(MTU)
}

fn transfer(bundle: &SyncBundle, config: &LockConfig, rng: &mut CounterRng) -> Vec<Vec<u8>> {
    let bytes = bundle
        .seal_and_sign(&issuer(), config.key.public(), rng)
        .expect("bundle");
    let offer = SyncTransfer::new(bytes.clone(), bundle.iteration, 0)
        .expect("transfer")
        .offer();
    let mut wire = SyncMessage::Offer(offer).to_message().fragments(MTU);
    for (i, block) in bytes.chunks(SyncTransfer::DEFAULT_BLOCK).enumerate() {
        let data = SyncMessage::Data {
            offset: (i * SyncTransfer::DEFAULT_BLOCK) as u32,
            bytes: block.to_vec(),
        };
        wire.extend(data.to_message().fragments(MTU));
    }
    wire
}

/// SHA-256 over the lock's signed audit records, each after its length (u32, little-endian):
/// mcu/src/main.rs computes the same.
fn audit_digest(state: &LockState) -> [u8; 32] {
    let mut hash = Sha256::new();
    for record in state.audit.records() {
        hash.update((record.len() as u32).to_le_bytes());
        hash.update(record);
    }
    hash.finalize().into()
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

fn main() {
    let path = std::env::args().nth(1).expect("usage: mcu_inputs OUT");
    let config = lock_config();
    let mut phone_rng = CounterRng {
        seed: [0x50; 32],
        counter: 0,
    };
    let lock_seed = [0x4c; 32];
    let delta = SyncBundle {
        base_iteration: 1,
        floors: vec![Floor {
            person_id: PERSON,
            floor: 4,
            expires_at: NOT_AFTER,
        }],
        keypad: None,
        ..full_bundle(0, 2)
    };
    let phases = [
        Phase {
            name: "full sync, 1,000 credentials",
            now: MONDAY_0800_NY,
            fragments: transfer(&full_bundle(1000, 1), &config, &mut phone_rng),
        },
        Phase {
            name: "first unlock",
            now: MONDAY_0800_NY + 10,
            fragments: unlock_request(&config, MONDAY_0800_NY + 10, &mut phone_rng, false),
        },
        Phase {
            name: "repeat unlock, same document",
            now: MONDAY_0800_NY + 20,
            fragments: unlock_request(&config, MONDAY_0800_NY + 20, &mut phone_rng, false),
        },
        Phase {
            name: "delta sync, one revocation",
            now: MONDAY_0800_NY + 30,
            fragments: transfer(&delta, &config, &mut phone_rng),
        },
        Phase {
            name: "unlock after the revocation",
            now: MONDAY_0800_NY + 40,
            fragments: unlock_request(&config, MONDAY_0800_NY + 40, &mut phone_rng, false),
        },
        Phase {
            name: "unlock with the issuer's signature altered",
            now: MONDAY_0800_NY + 50,
            fragments: unlock_request(&config, MONDAY_0800_NY + 50, &mut phone_rng, true),
        },
    ];

    let mut out = Vec::new();
    out.extend_from_slice(b"DMCU");
    out.extend_from_slice(&*config.key.to_bytes());
    out.extend_from_slice(&config.lock_id.0);
    out.extend_from_slice(&config.door_id.0);
    out.extend_from_slice(&issuer().verifying().to_sec1_compressed());
    out.extend_from_slice(&config.clock_tolerance.to_le_bytes());
    out.extend_from_slice(&lock_seed);
    out.extend_from_slice(&(phases.len() as u32).to_le_bytes());

    let mut state = LockState::default();
    let mut lock_rng = CounterRng {
        seed: lock_seed,
        counter: 0,
    };
    for phase in &phases {
        let mut session = LockSession::new();
        let mut last: Option<(u8, Message)> = None;
        for fragment in &phase.fragments {
            if let Some(reply) =
                session.on_fragment(&config, &mut state, fragment, phase.now, &mut lock_rng)
            {
                let decision = match reply.decision.map(|d| d.result) {
                    None => 0,
                    Some(UnlockResult::Granted) => 1,
                    Some(UnlockResult::Denied(_)) => 2,
                };
                last = Some((decision, reply.message));
            }
        }
        let (decision, message) = last.expect("every phase ends with a reply");
        eprintln!(
            "{}: {} chunks, {} bytes in; answer kind {:#04x}, decision {decision}",
            phase.name,
            phase.fragments.len(),
            phase.fragments.iter().map(Vec::len).sum::<usize>(),
            message.kind
        );
        put_bytes(&mut out, phase.name.as_bytes());
        out.extend_from_slice(&phase.now.to_le_bytes());
        out.push(decision);
        out.push(message.kind);
        put_bytes(&mut out, &message.body);
        out.extend_from_slice(&(phase.fragments.len() as u32).to_le_bytes());
        for fragment in &phase.fragments {
            put_bytes(&mut out, fragment);
        }
    }
    // The lock's audit records as this host signed them (RFC 6979: deterministic), so the
    // emulated lock's signatures are checked too, whichever P-256 it was built with.
    out.extend_from_slice(&audit_digest(&state));
    std::fs::write(&path, &out).expect("write the inputs");
    eprintln!("{path}: {} bytes", out.len());
}
