//! Fixtures shared by the document tests, the vectors test and the bench: the published test
//! vectors' inputs (docs/PROTOCOL.md, "Test vectors").
// Each test crate that includes this module uses a different subset of it.
#![allow(dead_code)]

use door_protocol::revocation::Floor;
use door_protocol::sync::bundle::KeypadRules;
use door_protocol::{
    AccessDocument, AuditAck, AuditEpoch, DoorGrant, Doorcode, DoorcodeChanges, Id, IssuerKey,
    IssuerKeys, LockConfig, LockKey, RevocationDocument, RevocationEntry, RevocationMode, Schedule,
    SyncBundle, Transition, Weekdays, Window, ZoneRules,
};

/// The issuer's private scalar: 0x01, 0x02, ... 0x20.
pub const ISSUER_SCALAR: [u8; 32] = {
    let mut s = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        s[i] = i as u8 + 1;
        i += 1;
    }
    s
};

/// The device's private scalar (only its public key appears in documents): 0x21 ... 0x40.
pub const DEVICE_SCALAR: [u8; 32] = {
    let mut s = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        s[i] = i as u8 + 0x21;
        i += 1;
    }
    s
};

pub const CREDENTIAL: Id = Id([0xc1; 16]);
pub const PERSON: Id = Id([0xa1; 16]);
pub const LOBBY: Id = Id([0xd1; 16]);
pub const POOL: Id = Id([0xd2; 16]);
/// A door no sample document grants.
pub const GARAGE: Id = Id([0xd3; 16]);

/// 2026-01-01T00:00 in New York (05:00Z).
pub const NOT_BEFORE: i64 = 1_767_243_600;
/// 2027-01-01T00:00 in New York (05:00Z).
pub const NOT_AFTER: i64 = 1_798_779_600;
/// 2025-12-31T12:00Z.
pub const ISSUED_AT: i64 = 1_767_182_400;
/// 2026-03-08T07:00Z: 02:00 EST becomes 03:00 EDT.
pub const DST_START: i64 = 1_772_953_200;
/// 2026-11-01T06:00Z: 02:00 EDT becomes 01:00 EST.
pub const DST_END: i64 = 1_793_512_800;
/// Monday 2026-06-15T12:00Z, 08:00 in New York.
pub const MONDAY_0800_NY: i64 = 1_781_524_800;

pub fn issuer() -> IssuerKey {
    IssuerKey::from_bytes(&ISSUER_SCALAR).expect("fixed scalar is valid")
}

pub fn issuer_keys() -> IssuerKeys {
    IssuerKeys::single(*issuer().verifying())
}

pub fn device_key() -> [u8; 33] {
    IssuerKey::from_bytes(&DEVICE_SCALAR)
        .expect("fixed scalar is valid")
        .verifying()
        .to_sec1_compressed()
}

/// America/New_York over 2026: EST, EDT from 8 March, EST again from 1 November.
pub fn new_york_2026() -> ZoneRules {
    ZoneRules {
        initial_offset: -5 * 3600,
        transitions: vec![
            Transition {
                at: DST_START,
                offset: -4 * 3600,
            },
            Transition {
                at: DST_END,
                offset: -5 * 3600,
            },
        ],
    }
}

/// Lobby around the clock with a doorcode; pool Monday to Friday 09:00-17:00.
pub fn sample_access() -> AccessDocument {
    AccessDocument {
        version: 1,
        credential_id: CREDENTIAL,
        person_id: PERSON,
        device_key: device_key(),
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
        issued_at: ISSUED_AT,
        access_iteration: 3,
        may_share: true,
        zone: new_york_2026(),
    }
}

/// Iteration 7, an update: the sample credential revoked until it expires, another one for good.
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
        issued_at: ISSUED_AT + 86_400,
    }
}

/// Fills 32 bytes from `first`, counting up: the vectors' fixed scalars.
const fn counting(first: u8) -> [u8; 32] {
    let mut s = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        s[i] = first + i as u8;
        i += 1;
    }
    s
}

/// The unlock vectors' lock: static key scalar 0x41 ... 0x60, lock id `10…10`.
pub const LOCK_SCALAR: [u8; 32] = counting(0x41);
pub const LOCK_ID: Id = Id([0x10; 16]);
/// The phone's ephemeral scalar in the unlock vectors: 0x61 ... 0x80.
pub const EPHEMERAL_SCALAR: [u8; 32] = counting(0x61);
/// The lock's response nonce in the unlock vectors.
pub const RESPONSE_NONCE: [u8; 12] = [0x0e; 12];

/// A "random" source that hands out fixed bytes, so the unlock vectors are reproducible: p256
/// draws a scalar as 32 bytes from one `fill_bytes` call, the lock its nonce as 12.
pub struct FixedRng(pub Vec<u8>);

impl rand_core::RngCore for FixedRng {
    fn next_u32(&mut self) -> u32 {
        rand_core::impls::next_u32_via_fill(self)
    }
    fn next_u64(&mut self) -> u64 {
        rand_core::impls::next_u64_via_fill(self)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        assert!(self.0.len() >= dest.len(), "fixed randomness exhausted");
        let rest = self.0.split_off(dest.len());
        dest.copy_from_slice(&self.0);
        self.0 = rest;
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

// Only for reproducible test vectors: the bytes are public.
impl rand_core::CryptoRng for FixedRng {}

/// The unlock vectors' lock, for the lobby.
pub fn lock_config() -> LockConfig {
    LockConfig::new(
        LOCK_ID,
        LOBBY,
        LockKey::from_bytes(&LOCK_SCALAR).expect("fixed scalar is valid"),
        issuer_keys(),
    )
}

/// The issuer's ephemeral scalar sealing the sync vector's doorcodes: 0x81 ... 0xa0.
pub const SEALING_SCALAR: [u8; 32] = counting(0x81);

/// The sync vector: a delta from iteration 7 to 8 for lock `10…10`, issued at the unlock
/// vectors' time: person `a2…a2`'s documents below iteration 4 void until the sample document
/// expires, documents issued before the sample's issue void, person `a1…a1` gets doorcode 4821
/// under the lock's keypad schedule 0, person `a2…a2` loses theirs; the server holds audit
/// records below 3 of epoch `e0…e0`.
pub fn sample_delta() -> SyncBundle {
    SyncBundle {
        lock_id: LOCK_ID,
        iteration: 8,
        base_iteration: 7,
        issued_at: MONDAY_0800_NY,
        floors: vec![Floor {
            person_id: Id([0xa2; 16]),
            floor: 4,
            expires_at: NOT_AFTER,
        }],
        issued_floor: Some(ISSUED_AT),
        doorcodes: DoorcodeChanges {
            added: vec![Doorcode {
                person_id: PERSON,
                code: "4821".into(),
                expires_at: None,
                schedules: vec![0],
            }],
            removed: vec![Id([0xa2; 16])],
        },
        keypad: None,
        audit_ack: Some(AuditAck {
            epoch: SAMPLE_EPOCH,
            below: 3,
        }),
    }
}

/// The keypad rules of [`full_bundle`]: New York's zone; schedule 0 around the clock, schedule 1
/// Monday to Friday 09:00-17:00 (the sample document's two grants).
pub fn sample_keypad() -> KeypadRules {
    let doc = sample_access();
    KeypadRules {
        zone: doc.zone,
        schedules: doc.grants.into_iter().map(|g| g.schedule).collect(),
    }
}

/// The audit epoch of the sync vector's acknowledgement.
pub const SAMPLE_EPOCH: AuditEpoch = AuditEpoch([0xe0; 8]);

/// An acknowledgement of records below `below` of the epoch `LockState::default()` holds.
pub fn ack(below: u64) -> Option<AuditAck> {
    Some(AuditAck {
        epoch: AuditEpoch::default(),
        below,
    })
}

/// An id whose 16 bytes spell `tag` and `n`, so generated lists are distinct and sortable.
pub fn numbered(tag: u8, n: usize) -> Id {
    let mut id = [tag; 16];
    id[12..].copy_from_slice(&(n as u32).to_be_bytes());
    Id(id)
}

/// A full bundle for a property of `n` people: `n` floors (expiring with the documents they
/// void) and `n` 6-digit doorcodes (around the clock), with [`sample_keypad`], as the server
/// would send a lock at installation.
pub fn full_bundle(n: usize, iteration: u64) -> SyncBundle {
    SyncBundle {
        lock_id: LOCK_ID,
        iteration,
        base_iteration: 0,
        issued_at: MONDAY_0800_NY,
        floors: (0..n)
            .map(|i| Floor {
                person_id: numbered(0xc0, i),
                floor: 2,
                expires_at: NOT_AFTER,
            })
            .collect(),
        issued_floor: None,
        doorcodes: DoorcodeChanges {
            added: (0..n)
                .map(|i| Doorcode {
                    person_id: numbered(0xa0, i),
                    code: format!("{:06}", 100_000 + i * 7),
                    expires_at: Some(NOT_AFTER),
                    schedules: vec![0],
                })
                .collect(),
            removed: Vec::new(),
        },
        keypad: Some(sample_keypad()),
        audit_ack: None,
    }
}
