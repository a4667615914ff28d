//! Access documents: signing (server side) and verification (what a lock does per unlock).

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;
use criterion::{criterion_group, criterion_main, Criterion};
use door_protocol::{
    decode_access, verify_access, verify_revocation, AccessDocument, RevocationList,
};
use std::hint::black_box;

fn documents(c: &mut Criterion) {
    let issuer = issuer();
    let keys = issuer_keys();
    let doc = sample_access();
    let signed = doc.sign(&issuer).unwrap();
    let payload = doc.to_cbor().unwrap();
    let revocation = sample_revocation().sign(&issuer).unwrap();
    let none_revoked = RevocationList::new();

    c.bench_function("access/sign", |b| {
        b.iter(|| black_box(&doc).sign(&issuer).unwrap())
    });
    c.bench_function("access/verify_access", |b| {
        b.iter(|| {
            verify_access(
                black_box(&signed),
                &keys,
                LOBBY,
                MONDAY_0800_NY,
                &none_revoked,
            )
            .unwrap()
        })
    });
    c.bench_function("access/decode_access", |b| {
        b.iter(|| decode_access(black_box(&signed), &keys).unwrap())
    });
    c.bench_function("access/payload_decode", |b| {
        b.iter(|| AccessDocument::from_cbor(black_box(&payload)).unwrap())
    });
    c.bench_function("revocation/verify", |b| {
        b.iter(|| verify_revocation(black_box(&revocation), &keys).unwrap())
    });
}

criterion_group!(benches, documents);
criterion_main!(benches);
