//! CPU per BLE unlock, phone and lock, without the radio. The phone's share is split the way
//! the app spends it: `prepare` (ephemeral key, ECDH, HKDF, transcript: while scanning), `sign`
//! (a software P-256 signature; a hardware keystore does this off the CPU), `seal` (checking
//! the keystore's signature and sealing the request) and `response` (reassembling and opening
//! the answer). The lock's share is one whole request: reassembly, ECDH, AEAD, issuer and
//! device signatures, replay cache, schedule, the signed audit record and the sealed answer;
//! signing the audit record is also measured on its own.

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use door_protocol::unlock::{ReplayCache, DEFAULT_CLOCK_TOLERANCE};
use door_protocol::{
    AuditLog, AuditRecord, Id, LockConfig, LockKey, LockSession, LockState, UnlockPreparation,
    UnlockTarget,
};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use rand_core::OsRng;
use std::hint::black_box;

const MTU: u16 = 247;

fn unlock(c: &mut Criterion) {
    let config = LockConfig {
        lock_id: Id([0x10; 16]),
        door_id: LOBBY,
        key: LockKey::from_bytes(&[0x77; 32]).unwrap(),
        issuer_keys: issuer_keys(),
        clock_tolerance: DEFAULT_CLOCK_TOLERANCE,
    };
    let device = SigningKey::from_bytes(&DEVICE_SCALAR.into()).unwrap();
    let target = UnlockTarget {
        lock_id: config.lock_id,
        lock_key: *config.key.public(),
        access_document: sample_access().sign(&issuer()).unwrap(),
    };
    let prepared = || {
        let (prep, to_sign) =
            UnlockPreparation::new(target.clone(), MONDAY_0800_NY, &mut OsRng).unwrap();
        let sig: Signature = device.sign(&to_sign);
        prep.signed(&sig.to_bytes()).unwrap()
    };
    // Each lock iteration gets a fresh request, so none is refused as a replay.
    let lock_answer = |state: &mut LockState, chunks: &[Vec<u8>]| {
        let mut session = LockSession::new();
        let mut reply = None;
        for c in chunks {
            reply = session.on_fragment(&config, state, c, MONDAY_0800_NY, &mut OsRng);
        }
        reply.unwrap()
    };

    c.bench_function("unlock/phone/prepare", |b| {
        b.iter(|| {
            UnlockPreparation::new(black_box(target.clone()), MONDAY_0800_NY, &mut OsRng).unwrap()
        })
    });
    c.bench_function("unlock/phone/sign_software", |b| {
        let (_, to_sign) =
            UnlockPreparation::new(target.clone(), MONDAY_0800_NY, &mut OsRng).unwrap();
        b.iter(|| -> Signature { device.sign(black_box(&to_sign)) })
    });
    c.bench_function("unlock/phone/seal", |b| {
        b.iter_batched(
            || {
                let (prep, to_sign) =
                    UnlockPreparation::new(target.clone(), MONDAY_0800_NY, &mut OsRng).unwrap();
                let sig: Signature = device.sign(&to_sign);
                (prep, sig.to_bytes())
            },
            |(prep, sig)| prep.signed(&sig).unwrap().request_fragments(MTU),
            BatchSize::SmallInput,
        )
    });
    c.bench_function("unlock/phone/response", |b| {
        let mut state = LockState::default();
        b.iter_batched(
            || {
                let phone = prepared();
                let reply = lock_answer(&mut state, &phone.request_fragments(MTU));
                state = LockState::default();
                (phone, reply.message.fragments(MTU))
            },
            |(mut phone, chunks)| {
                let mut out = None;
                for c in &chunks {
                    out = phone.on_fragment(c).unwrap();
                }
                out.unwrap()
            },
            BatchSize::SmallInput,
        )
    });
    c.bench_function("unlock/lock/request", |b| {
        let mut state = LockState::default();
        b.iter_batched(
            || prepared().request_fragments(MTU),
            |chunks| {
                let reply = lock_answer(&mut state, &chunks);
                // All requests share one instant: forget the replay entry and the audit record
                // (a few nanoseconds) so the cache never fills and the log never grows. Pruning
                // instead would raise the cache's floor and refuse the next request.
                state.replay = ReplayCache::default();
                state.audit = AuditLog::default();
                assert!(reply.decision.unwrap().result.is_granted());
            },
            BatchSize::SmallInput,
        )
    });
    c.bench_function("unlock/lock/audit_sign", |b| {
        let record = AuditRecord {
            epoch: door_protocol::AuditEpoch([7; 8]),
            seq: 1,
            at: MONDAY_0800_NY,
            event: door_protocol::AuditEvent::UnlockGranted {
                credential_id: CREDENTIAL,
                door_id: LOBBY,
            },
        };
        b.iter(|| black_box(&record).sign(&config.key))
    });
}

criterion_group!(benches, unlock);
criterion_main!(benches);
