//! The P-256 operations an unlock is made of, each measured on its own after the phases, so
//! the report can say what dominates: ECDSA verification (the issuer's and the device's
//! signatures), ECDH (the session key) and ECDSA signing (the audit record). Same crate, same
//! build, same keys as the lock's.
//!
//! With the feature `compare-p256-cortex-m4`, the same three operations by p256-cortex-m4 (the
//! hand-optimised P256-Cortex-M4 library) follow, each checked against RustCrypto's result:
//! its signature verifies under RustCrypto, RustCrypto's under it, and the shared secrets are
//! equal.

use door_protocol::LockConfig;
use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{Signature, SigningKey};

use crate::report;

const MESSAGE: &[u8] = b"an unlock transcript's worth of bytes: lock id, keys, time, document";

pub fn measure(config: &LockConfig, first_phase: u32) {
    let signing = SigningKey::from_bytes(&(*config.key.to_bytes()).into()).expect("lock key");
    let verifying = config.key.public().verifying_key();
    let peer = config.issuer_keys.iter().next().expect("one issuer key");

    report::phase_start(first_phase, b"RustCrypto p256 ECDSA sign (RFC 6979)");
    let signature: Signature = signing.sign(MESSAGE);
    report::phase_end(first_phase);
    report::phase_matched(first_phase, true);

    report::phase_start(first_phase + 1, b"RustCrypto p256 ECDSA verify");
    let verified = verifying.verify(MESSAGE, &signature).is_ok();
    report::phase_end(first_phase + 1);
    report::phase_matched(first_phase + 1, verified);

    report::phase_start(first_phase + 2, b"RustCrypto p256 ECDH");
    let shared = p256::ecdh::diffie_hellman(
        signing.as_nonzero_scalar(),
        peer.verifying_key().as_affine(),
    );
    report::phase_end(first_phase + 2);
    report::phase_matched(
        first_phase + 2,
        shared.raw_secret_bytes().iter().any(|&b| b != 0),
    );

    #[cfg(feature = "compare-p256-cortex-m4")]
    cortex_m4::measure(
        first_phase + 3,
        &config.key.to_bytes(),
        verifying,
        &signature,
        peer.verifying_key(),
        shared.raw_secret_bytes().as_slice(),
    );
}

#[cfg(feature = "compare-p256-cortex-m4")]
mod cortex_m4 {
    use p256::ecdsa::signature::Verifier;
    use p256::ecdsa::{Signature, VerifyingKey};
    use p256_cortex_m4::{PublicKey, SecretKey, Signature as M4Signature};
    use sha2::{Digest, Sha256};

    use super::MESSAGE;
    use crate::report;

    pub fn measure(
        first_phase: u32,
        scalar: &[u8; 32],
        verifying: &VerifyingKey,
        signature: &Signature,
        peer: &VerifyingKey,
        shared: &[u8],
    ) {
        let secret = SecretKey::from_bytes(scalar).expect("the lock's scalar");
        let public = PublicKey::from_sec1_bytes(verifying.to_encoded_point(false).as_bytes())
            .expect("the lock's public key");
        let peer = PublicKey::from_sec1_bytes(peer.to_encoded_point(false).as_bytes())
            .expect("the issuer's public key");
        let digest = Sha256::digest(MESSAGE);
        let mut rng = crate::rng::CounterRng::new([0x34; 32]);

        report::phase_start(first_phase, b"p256-cortex-m4 ECDSA sign");
        let theirs = secret.sign_prehashed(&digest, &mut rng);
        report::phase_end(first_phase);
        let theirs = Signature::from_slice(&theirs.to_untagged_bytes()).expect("r, s in range");
        report::phase_matched(first_phase, verifying.verify(MESSAGE, &theirs).is_ok());

        let ours = M4Signature::from_untagged_bytes(&signature.to_bytes()).expect("r, s in range");
        report::phase_start(first_phase + 1, b"p256-cortex-m4 ECDSA verify");
        let verified = public.verify_prehashed(&digest, &ours);
        report::phase_end(first_phase + 1);
        report::phase_matched(first_phase + 1, verified);

        report::phase_start(first_phase + 2, b"p256-cortex-m4 ECDH");
        let agreed = secret.agree(&peer);
        report::phase_end(first_phase + 2);
        report::phase_matched(first_phase + 2, agreed.as_bytes().as_slice() == shared);
    }
}
