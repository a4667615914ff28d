//! The P-256 operations an unlock is made of, each measured on its own after the phases, so
//! the report can say what dominates: ECDSA verification (the issuer's and the device's
//! signatures), ECDH (the session key) and ECDSA signing (the audit record). Same crate, same
//! build, same keys as the lock's.

use door_protocol::LockConfig;
use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{Signature, SigningKey};

use crate::report;

const MESSAGE: &[u8] = b"an unlock transcript's worth of bytes: lock id, keys, time, document";

pub fn measure(config: &LockConfig, first_phase: u32) {
    let signing = SigningKey::from_bytes(&(*config.key.to_bytes()).into()).expect("lock key");
    let verifying = config.key.public().verifying_key();
    let peer = config.issuer_keys.iter().next().expect("one issuer key");

    report::phase_start(first_phase, b"P-256 ECDSA sign (RFC 6979)");
    let signature: Signature = signing.sign(MESSAGE);
    report::phase_end(first_phase);
    report::phase_matched(first_phase, true);

    report::phase_start(first_phase + 1, b"P-256 ECDSA verify");
    let verified = verifying.verify(MESSAGE, &signature).is_ok();
    report::phase_end(first_phase + 1);
    report::phase_matched(first_phase + 1, verified);

    report::phase_start(first_phase + 2, b"P-256 ECDH");
    let shared = p256::ecdh::diffie_hellman(
        signing.as_nonzero_scalar(),
        peer.verifying_key().as_affine(),
    );
    report::phase_end(first_phase + 2);
    report::phase_matched(
        first_phase + 2,
        shared.raw_secret_bytes().iter().any(|&b| b != 0),
    );
}
