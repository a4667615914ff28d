//! What the fuzz targets and the seed generator (examples/seeds.rs) share: the fixtures of
//! protocol/tests/common (issuer, device and lock keys, the lobby's lock, signed documents),
//! built once per process because signing dominates a run; deterministic randomness; the
//! input conventions beyond plain integers ([`document`], [`blob`]); the phone's moves.

use std::borrow::Cow;
use std::sync::LazyLock;

use arbitrary::{Result, Unstructured};
use door_protocol::sync::SignedTime;
use door_protocol::unlock::LockReply;
use door_protocol::{
    cose, open_bundle, AccessDocument, AuditEvent, AuditRecord, DenyReason, DoorGrant, Doorcode,
    DoorcodeChanges, Id, IssuerKey, IssuerKeys, LockConfig, LockKey, LockSession, LockState,
    PreparedUnlock, RevocationDocument, RevocationEntry, RevocationMode, Schedule, SyncBundle,
    Transition, UnixTime, UnlockPreparation, UnlockTarget, Weekdays, Window, ZoneRules,
};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use rand_core::{CryptoRng, RngCore};

/// 32 bytes counting up from `first`: the fixed scalars of the test vectors.
const fn counting(first: u8) -> [u8; 32] {
    let mut s = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        s[i] = first + i as u8;
        i += 1;
    }
    s
}

const ISSUER_SCALAR: [u8; 32] = counting(0x01);
const DEVICE_SCALAR: [u8; 32] = counting(0x21);
pub const LOCK_SCALAR: [u8; 32] = counting(0x41);
pub const ROGUE_SCALAR: [u8; 32] = counting(0xa1);

pub const LOCK_ID: Id = Id([0x10; 16]);
pub const OTHER_LOCK: Id = Id([0x11; 16]);
/// The door the lock opens; the sample document grants it around the clock.
const LOBBY: Id = Id([0xd1; 16]);
const POOL: Id = Id([0xd2; 16]);
const CREDENTIAL: Id = Id([0xc1; 16]);
const PERSON: Id = Id([0xa1; 16]);
const OTHER_PERSON: Id = Id([0xa2; 16]);
/// Monday 2026-06-15T12:00Z, 08:00 in New York: inside every sample's validity.
pub const NOW: UnixTime = 1_781_524_800;
/// 2026-01-01 and 2027-01-01 in New York: the sample document's validity.
pub const NOT_BEFORE: UnixTime = 1_767_243_600;
const NOT_AFTER: UnixTime = 1_798_779_600;

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

/// America/New_York over 2026.
fn new_york_2026() -> ZoneRules {
    ZoneRules {
        initial_offset: -5 * 3600,
        transitions: vec![
            Transition {
                at: 1_772_953_200,
                offset: -4 * 3600,
            },
            Transition {
                at: 1_793_512_800,
                offset: -5 * 3600,
            },
        ],
    }
}

/// The lobby around the clock, the pool on weekdays 09:00-17:00, for the sample device key.
pub fn sample_access() -> AccessDocument {
    let device_key = IssuerKey::from_bytes(&DEVICE_SCALAR)
        .expect("fixed scalar is valid")
        .verifying()
        .to_sec1_compressed();
    AccessDocument {
        version: 1,
        credential_id: CREDENTIAL,
        person_id: PERSON,
        device_key,
        grants: vec![
            DoorGrant {
                door_id: LOBBY,
                schedule: Schedule::always(),
                doorcode: true,
            },
            DoorGrant {
                door_id: POOL,
                schedule: Schedule {
                    windows: vec![Window {
                        days: Weekdays::MON_FRI,
                        start_minute: 9 * 60,
                        end_minute: 17 * 60,
                    }],
                    not_before: None,
                    not_after: None,
                },
                doorcode: false,
            },
        ],
        not_before: NOT_BEFORE,
        not_after: NOT_AFTER,
        issued_at: NOT_BEFORE - 3600,
        access_iteration: 3,
        may_share: true,
        zone: new_york_2026(),
    }
}

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
    SignedTime { time, lock_id }.sign(key)
}

/// Records as the lock signs them, seq 0 to 3.
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
    ];
    let key = lock_key();
    (0u64..)
        .zip(events)
        .map(|(seq, event)| {
            AuditRecord {
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
        revocations: vec![RevocationEntry {
            credential_id: Id([0xc2; 16]),
            expires_at: None,
        }],
        doorcodes: DoorcodeChanges {
            added: vec![
                Doorcode {
                    person_id: PERSON,
                    code: DOORCODES[0].into(),
                    expires_at: None,
                },
                Doorcode {
                    person_id: OTHER_PERSON,
                    code: DOORCODES[1].into(),
                    expires_at: Some(NOT_AFTER),
                },
            ],
            removed: Vec::new(),
        },
        audit_ack: 0,
    }
}

/// The delta from the full bundle's iteration 7 to 8: revokes the sample credential, takes
/// the other person's code away.
pub fn sample_delta() -> SyncBundle {
    SyncBundle {
        lock_id: LOCK_ID,
        iteration: 8,
        base_iteration: 7,
        issued_at: NOW + 60,
        revocations: vec![RevocationEntry {
            credential_id: CREDENTIAL,
            expires_at: Some(NOT_AFTER),
        }],
        doorcodes: DoorcodeChanges {
            added: Vec::new(),
            removed: vec![OTHER_PERSON],
        },
        audit_ack: 2,
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
