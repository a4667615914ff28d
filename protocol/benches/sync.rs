//! CPU of Door Sync for a 1,000-person property: a full bundle with 1,000 doorcodes and
//! 1,000 floors, as the server builds it (`build_sign`: validate, encode, seal the
//! doorcodes, ES256), as the lock opens it (`open_verify`: frame, signature, ECDH, AES-GCM,
//! parse) and applies it (`apply`: checks, merge, audit record). Also a one-floor delta
//! applied on a lock holding the full state (the common case), and the lock's whole share of a
//! BLE transfer of the full bundle (reassembly, flow control, digest, open, apply) without the
//! radio. The sizes are printed once at the start.

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use door_protocol::revocation::Floor;
use door_protocol::sync::SyncMessage;
use door_protocol::{open_bundle, LockSession, LockState, SyncBundle, SyncTransfer};
use rand_core::OsRng;
use std::hint::black_box;

const MTU: u16 = 247;

fn sync(c: &mut Criterion) {
    let config = lock_config();
    let full = full_bundle(1000, 1);
    let full_bytes = full
        .seal_and_sign(&issuer(), config.key.public(), &mut OsRng)
        .unwrap();
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
    let delta_bytes = delta
        .seal_and_sign(&issuer(), config.key.public(), &mut OsRng)
        .unwrap();
    println!(
        "sizes: full bundle (1000 doorcodes, 1000 floors) {} bytes; delta with one floor {} \
         bytes",
        full_bytes.len(),
        delta_bytes.len()
    );
    let mut holding_full = LockState::default();
    holding_full
        .apply_bundle(
            &config,
            &open_bundle(&full_bytes, &config).unwrap(),
            MONDAY_0800_NY,
        )
        .unwrap();

    c.bench_function("sync/full_1000/build_sign", |b| {
        b.iter(|| {
            black_box(&full)
                .seal_and_sign(&issuer(), config.key.public(), &mut OsRng)
                .unwrap()
        })
    });
    c.bench_function("sync/full_1000/open_verify", |b| {
        b.iter(|| open_bundle(black_box(&full_bytes), &config).unwrap())
    });
    let opened = open_bundle(&full_bytes, &config).unwrap();
    c.bench_function("sync/full_1000/apply", |b| {
        b.iter_batched(
            LockState::default,
            |mut state| {
                state
                    .apply_bundle(&config, &opened, MONDAY_0800_NY)
                    .unwrap()
            },
            BatchSize::SmallInput,
        )
    });
    let opened_delta = open_bundle(&delta_bytes, &config).unwrap();
    c.bench_function("sync/delta_1_revocation/open_verify_apply_on_full", |b| {
        b.iter_batched(
            || holding_full.clone(),
            |mut state| {
                let opened = open_bundle(black_box(&delta_bytes), &config).unwrap();
                state
                    .apply_bundle(&config, &opened, MONDAY_0800_NY)
                    .unwrap()
            },
            BatchSize::SmallInput,
        )
    });
    c.bench_function("sync/delta_1_revocation/apply_on_full", |b| {
        b.iter_batched(
            || holding_full.clone(),
            |mut state| {
                state
                    .apply_bundle(&config, &opened_delta, MONDAY_0800_NY)
                    .unwrap()
            },
            BatchSize::SmallInput,
        )
    });
    // The phone's side of the transfer, cut in advance: an offer and every block in order,
    // as the phone sends them on a clean link. Only the lock's work is timed.
    let offer = SyncTransfer::new(full_bytes.clone(), 1, 0).unwrap().offer();
    let mut wire = SyncMessage::Offer(offer).to_message().fragments(MTU);
    for (i, block) in full_bytes.chunks(SyncTransfer::DEFAULT_BLOCK).enumerate() {
        let data = SyncMessage::Data {
            offset: (i * SyncTransfer::DEFAULT_BLOCK) as u32,
            bytes: block.to_vec(),
        };
        wire.extend(data.to_message().fragments(MTU));
    }
    c.bench_function("sync/full_1000/transfer_lock_side", |b| {
        b.iter_batched(
            LockState::default,
            |mut state| {
                let mut session = LockSession::new();
                let mut last = None;
                for chunk in &wire {
                    let reply =
                        session.on_fragment(&config, &mut state, chunk, MONDAY_0800_NY, &mut OsRng);
                    last = reply.or(last);
                }
                let done = SyncMessage::from_message(&last.unwrap().message).unwrap();
                assert_eq!(done, SyncMessage::Done { iteration: 1 });
                state
            },
            BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, sync);
criterion_main!(benches);
