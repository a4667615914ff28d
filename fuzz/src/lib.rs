//! What the fuzz targets and the seed generator (examples/seeds.rs) share: the fixtures of
//! protocol/tests/common (issuer, device and lock keys, the lobby's lock, signed documents),
//! built once per process because signing dominates a run; deterministic randomness; the
//! input conventions beyond plain integers ([`document`], [`blob`]); the phone's moves.

use std::borrow::Cow;
use std::sync::LazyLock;

use arbitrary::{Result, Unstructured};
use door_protocol::revocation::Floor;
use door_protocol::sync::SignedTime;
use door_protocol::unlock::LockReply;
use door_protocol::{
    cose, open_bundle, AuditAck, AuditEpoch, AuditEvent, AuditRecord, DenyReason, Doorcode,
    DoorcodeChanges, FirmwareVersion, Id, IssuerKey, IssuerKeys, LockConfig, LockHealth, LockKey,
    LockSession, LockState, PreparedUnlock, RevocationDocument, RevocationEntry, RevocationMode,
    SyncBundle, UnixTime, UnlockPreparation, UnlockTarget,
};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use rand_core::{CryptoRng, RngCore};

// The published test vectors' fixtures (keys, ids, validity, the sample access document),
// shared with door-protocol's tests and benches.
#[path = "../../protocol/tests/common/mod.rs"]
mod fixtures;

/// The lobby around the clock, the pool on weekdays 09:00-17:00, for the sample device key.
pub use fixtures::sample_access;
use fixtures::{
    sample_keypad, CREDENTIAL, DEVICE_SCALAR, ISSUED_AT, ISSUER_SCALAR, LOBBY, NOT_AFTER, PERSON,
};
pub use fixtures::{LOCK_ID, LOCK_SCALAR, NOT_BEFORE};

/// An issuer scalar no lock here trusts: 0xa1 ... 0xc0.
pub const ROGUE_SCALAR: [u8; 32] = {
    let mut s = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        s[i] = i as u8 + 0xa1;
        i += 1;
    }
    s
};

pub const OTHER_LOCK: Id = Id([0x11; 16]);
const OTHER_PERSON: Id = Id([0xa2; 16]);
/// Monday 2026-06-15T12:00Z, 08:00 in New York: inside every sample's validity.
pub const NOW: UnixTime = fixtures::MONDAY_0800_NY;

/// The doorcodes the trusted bundles give out: the only codes a keypad may accept.
pub const DOORCODES: [&str; 2] = ["4821", "1234"];

/// The property's issuer, the one the lock trusts.
pub static ISSUER: LazyLock<IssuerKey> =
    LazyLock::new(|| IssuerKey::from_bytes(&ISSUER_SCALAR).expect("fixed scalar is valid"));
/// An issuer no lock here trusts: whatever it signs must be refused.
pub static ROGUE: LazyLock<IssuerKey> =
    LazyLock::new(|| IssuerKey::from_bytes(&ROGUE_SCALAR).expect("fixed scalar is valid"));

pub fn lock_key() -> LockKey {
    LockKey::from_bytes(&LOCK_SCALAR).expect("fixed scalar is valid")
}

/// The lobby's lock, trusting only [`ISSUER`].
pub static CONFIG: LazyLock<LockConfig> = LazyLock::new(|| {
    let issuer_keys = IssuerKeys::single(*ISSUER.verifying());
    LockConfig::new(LOCK_ID, LOBBY, lock_key(), issuer_keys)
});

static DEVICE: LazyLock<SigningKey> =
    LazyLock::new(|| SigningKey::from_bytes(&DEVICE_SCALAR.into()).expect("fixed scalar is valid"));

pub static ACCESS: LazyLock<Vec<u8>> =
    LazyLock::new(|| sample_access().sign(&ISSUER).expect("sample fits"));
pub static ROGUE_ACCESS: LazyLock<Vec<u8>> =
    LazyLock::new(|| sample_access().sign(&ROGUE).expect("sample fits"));

pub fn sample_revocation() -> RevocationDocument {
    RevocationDocument {
        version: 1,
        iteration: 7,
        mode: RevocationMode::Update,
        entries: vec![
            RevocationEntry {
                credential_id: CREDENTIAL,
                expires_at: Some(NOT_AFTER),
            },
            RevocationEntry {
                credential_id: Id([0xc2; 16]),
                expires_at: None,
            },
        ],
        issued_at: NOW,
    }
}

pub fn signed_time(time: UnixTime, lock_id: Option<Id>, key: &IssuerKey) -> Vec<u8> {
    SignedTime {
        time,
        lock_id,
        epoch: None,
    }
    .sign(key)
}

/// Records as the lock signs them, seq 0 to 5.
/// The audit epoch of the sample lock's records.
pub const AUDIT_EPOCH: AuditEpoch = AuditEpoch([0xe0; 8]);

pub static AUDIT_RECORDS: LazyLock<Vec<Vec<u8>>> = LazyLock::new(|| {
    let events = [
        AuditEvent::UnlockGranted {
            credential_id: CREDENTIAL,
            door_id: LOBBY,
        },
        AuditEvent::UnlockDenied {
            credential_id: Some(CREDENTIAL),
            reason: DenyReason::OutOfSchedule {
                next_allowed: Some(NOW + 3600),
            },
        },
        AuditEvent::DoorcodeEntry {
            person_id: None,
            granted: false,
        },
        AuditEvent::ClockSet { step: -90 },
        AuditEvent::RecordsDropped {
            count: 2,
            through_seq: 1,
        },
        AuditEvent::Health(LockHealth {
            battery_percent: 87,
            firmware: FirmwareVersion::new("door-lock 0.1.0").expect("short printable ASCII"),
            clock_offset: Some(-42),
            iteration: 3,
        }),
    ];
    let key = lock_key();
    (0u64..)
        .zip(events)
        .map(|(seq, event)| {
            AuditRecord {
                epoch: AUDIT_EPOCH,
                seq,
                at: NOW + seq as i64,
                event,
            }
            .sign(&key)
        })
        .collect()
});

fn full_bundle(lock_id: Id, iteration: u64) -> SyncBundle {
    SyncBundle {
        lock_id,
        iteration,
        base_iteration: 0,
        issued_at: NOW,
        floors: vec![Floor {
            person_id: Id([0xb2; 16]),
            floor: 1,
            expires_at: NOT_AFTER,
        }],
        issued_floor: None,
        doorcodes: DoorcodeChanges {
            added: vec![
                Doorcode {
                    person_id: PERSON,
                    code: DOORCODES[0].into(),
                    expires_at: None,
                    schedules: vec![0],
                },
                Doorcode {
                    person_id: OTHER_PERSON,
                    code: DOORCODES[1].into(),
                    expires_at: Some(NOT_AFTER),
                    schedules: vec![0, 1],
                },
            ],
            removed: Vec::new(),
        },
        // The lobby around the clock (0) and the pool's weekday hours (1), in New York.
        keypad: Some(sample_keypad()),
        audit_ack: None,
    }
}

/// The delta from the full bundle's iteration 7 to 8: voids the sample person's documents
/// below iteration 4 (the sample access document is iteration 3) and every document issued
/// before the sample's, takes the other person's code away.
pub fn sample_delta() -> SyncBundle {
    SyncBundle {
        lock_id: LOCK_ID,
        iteration: 8,
        base_iteration: 7,
        issued_at: NOW + 60,
        floors: vec![Floor {
            person_id: PERSON,
            floor: 4,
            expires_at: NOT_AFTER,
        }],
        issued_floor: Some(ISSUED_AT),
        doorcodes: DoorcodeChanges {
            added: Vec::new(),
            removed: vec![OTHER_PERSON],
        },
        keypad: None,
        audit_ack: Some(AuditAck {
            epoch: AUDIT_EPOCH,
            below: 2,
        }),
    }
}

/// The lock's iterations the trusted bundles below lead to: any other is a forgery applied.
pub const TRUSTED_ITERATIONS: [u64; 3] = [0, 7, 8];

/// Signed bundles: full (iteration 7) and delta (7 to 8) for the lock, then a full one for
/// another lock and one by the rogue issuer, which the lock must refuse.
pub static BUNDLES: LazyLock<[Vec<u8>; 4]> = LazyLock::new(|| {
    let lock = *CONFIG.key.public();
    let mut rng = FuzzRng(7);
    let mut seal = |b: SyncBundle, key: &IssuerKey| {
        b.seal_and_sign(key, &lock, &mut rng)
            .expect("samples are valid")
    };
    [
        seal(full_bundle(LOCK_ID, 7), &ISSUER),
        seal(sample_delta(), &ISSUER),
        seal(full_bundle(OTHER_LOCK, 9), &ISSUER),
        seal(full_bundle(LOCK_ID, 10), &ROGUE),
    ]
});

/// The lock after the trusted full bundle (iteration 7), for deltas to apply to.
pub static AFTER_FULL: LazyLock<LockState> = LazyLock::new(|| {
    let mut state = LockState::default();
    let full = open_bundle(&BUNDLES[0], &CONFIG).expect("sample opens");
    state
        .apply_bundle(&CONFIG, &full, NOW)
        .expect("sample applies");
    state
});

/// Deterministic "randomness" (SplitMix64), so that every input replays exactly. The protocol
/// takes its randomness as an argument, and nothing fuzzed here needs it to be secret.
pub struct FuzzRng(pub u64);

impl RngCore for FuzzRng {
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        rand_core::impls::fill_bytes_via_next(self, dest)
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoRng for FuzzRng {}

/// What a document target verifies, chosen by its mode byte (see [`document`]).
pub struct Document<'a> {
    pub bytes: Cow<'a, [u8]>,
    /// The payload, when the harness signed it.
    pub payload: Option<&'a [u8]>,
}

/// The document a document target fuzzes: `rest` itself (even `mode`), or `rest` as a
/// payload that `key` signs here under `content_type` (odd), because the fuzzer cannot forge a
/// signature and the payload decoders sit behind one. `None` when it is too large to sign.
pub fn document<'a>(
    mode: u8,
    rest: &'a [u8],
    key: &IssuerKey,
    content_type: &str,
) -> Option<Document<'a>> {
    if mode.is_multiple_of(2) {
        return Some(Document {
            bytes: Cow::Borrowed(rest),
            payload: None,
        });
    }
    let signed = cose::sign1(key, content_type, rest.to_vec()).ok()?;
    Some(Document {
        bytes: Cow::Owned(signed),
        payload: Some(rest),
    })
}

/// A length-prefixed byte string: a `u16` length (little-endian, as `Unstructured` reads every
/// integer), then that many bytes, or as many as remain.
pub fn blob<'a>(u: &mut Unstructured<'a>) -> Result<&'a [u8]> {
    let len = usize::from(u.arbitrary::<u16>()?);
    u.bytes(len.min(u.len()))
}

/// The phone's side of an unlock up to the sealed request, signed by the sample device key.
/// `None` when the phone refuses: a document it cannot read, or one naming another device key.
pub fn prepare_unlock(
    document: Vec<u8>,
    phone_time: UnixTime,
    signed_time: Option<Vec<u8>>,
    rng: &mut FuzzRng,
) -> Option<PreparedUnlock> {
    let target = UnlockTarget {
        lock_id: LOCK_ID,
        lock_key: *CONFIG.key.public(),
        access_document: document,
    };
    let (prep, to_sign) = UnlockPreparation::new(target, phone_time, rng).ok()?;
    let prep = match signed_time {
        Some(t) => prep.with_signed_time(t),
        None => prep,
    };
    prep.signed(&device_sign(&to_sign).to_bytes()).ok()
}

/// Writes chunks into the lock, as a phone does; every reply it gives, in order.
pub fn deliver(
    session: &mut LockSession,
    state: &mut LockState,
    chunks: &[Vec<u8>],
    clock: UnixTime,
    rng: &mut FuzzRng,
) -> Vec<LockReply> {
    chunks
        .iter()
        .filter_map(|c| session.on_fragment(&CONFIG, state, c, clock, rng))
        .collect()
}

/// What the phone's keystore returns for the sample device key.
pub fn device_sign(message: &[u8]) -> Signature {
    DEVICE.sign(message)
}

/// XORs `mask` into the byte at `at` (modulo their length) of the chunks laid end to end: a
/// relay altering one byte on the way.
pub fn flip(chunks: &mut [Vec<u8>], at: usize, mask: u8) {
    let mut at = at % chunks.iter().map(Vec::len).sum::<usize>().max(1);
    for c in chunks {
        if at < c.len() {
            c[at] ^= mask;
            return;
        }
        at -= c.len();
    }
}
