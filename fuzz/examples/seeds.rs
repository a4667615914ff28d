//! Writes the seed inputs of every fuzz target into fuzz/corpus/<target>/seed-*: valid
//! encodings of each message, and for the targets that read operations, scripts of the
//! exchanges that succeed (a granted unlock, a whole bundle transfer, an audit pull). Signing
//! and sealing are deterministic here, so rerunning writes the same files:
//!
//!     cd fuzz && cargo run --example seeds
//!
//! The committed corpus is these seeds plus what fuzzing found, minimized (fuzz/README.md).

use std::fs;
use std::path::Path;

use door_protocol::sync::messages::FailReason;
use door_protocol::sync::{Offer, SignedTime, SyncMessage, SYNC_CONTENT_TYPE};
use door_protocol::wire::kind;
use door_protocol::{cose, AuditRecord, ErrorCode, IssuerKeys, SyncBundle};
use door_protocol_fuzz::{
    prepare_unlock, sample_access, sample_delta, sample_revocation, signed_time, FuzzRng, ACCESS,
    AUDIT_EPOCH, AUDIT_RECORDS, BUNDLES, CONFIG, ISSUER, LOCK_ID, NOT_BEFORE, NOW, ROGUE_ACCESS,
};

/// An input for the targets that read it through `Unstructured`: integers little-endian, byte
/// strings as `door_protocol_fuzz::blob` reads them.
#[derive(Default)]
struct Script(Vec<u8>);

impl Script {
    fn u8(mut self, v: u8) -> Script {
        self.0.push(v);
        self
    }

    fn u16(mut self, v: u16) -> Script {
        self.0.extend(v.to_le_bytes());
        self
    }

    fn u32(mut self, v: u32) -> Script {
        self.0.extend(v.to_le_bytes());
        self
    }

    fn i32(mut self, v: i32) -> Script {
        self.0.extend(v.to_le_bytes());
        self
    }

    fn i64(mut self, v: i64) -> Script {
        self.0.extend(v.to_le_bytes());
        self
    }

    fn u64(mut self, v: u64) -> Script {
        self.0.extend(v.to_le_bytes());
        self
    }

    /// `Option<i64>` as `arbitrary` reads it: a bool byte, then the value if set.
    fn opt_i64(self, v: Option<i64>) -> Script {
        match v {
            Some(v) => self.u8(1).i64(v),
            None => self.u8(0),
        }
    }

    fn blob(self, b: &[u8]) -> Script {
        let mut s = self.u16(u16::try_from(b.len()).expect("seeds are small"));
        s.0.extend_from_slice(b);
        s
    }

    fn raw(mut self, b: &[u8]) -> Script {
        self.0.extend_from_slice(b);
        self
    }
}

/// A mode byte, then the bytes.
fn mode(m: u8, bytes: &[u8]) -> Vec<u8> {
    Script::default().u8(m).raw(bytes).0
}

fn payload(signed: &[u8], content_type: &str, keys: &IssuerKeys) -> Vec<u8> {
    cose::open1(signed, content_type, keys)
        .expect("samples open")
        .payload
        .to_vec()
}

fn main() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let write = |target: &str, seeds: Vec<Vec<u8>>| {
        let dir = corpus.join(target);
        fs::create_dir_all(&dir).expect("corpus directory");
        for (i, seed) in seeds.iter().enumerate() {
            fs::write(dir.join(format!("seed-{i}")), seed).expect("seed written");
        }
    };
    let keys = &CONFIG.issuer_keys;
    let access_payload = sample_access().to_cbor().expect("sample encodes");
    let revocation = sample_revocation().sign(&ISSUER).expect("sample signs");
    let revocation_payload = sample_revocation().to_cbor().expect("sample encodes");
    let time = signed_time(NOW + 60, Some(LOCK_ID), &ISSUER);
    let time_payload = SignedTime {
        time: NOW + 60,
        lock_id: Some(LOCK_ID),
        epoch: None,
    }
    .to_cbor();
    let audit_payloads: Vec<Vec<u8>> = AUDIT_RECORDS
        .iter()
        .map(|r| AuditRecord::read_own(r).expect("sample reads").to_cbor())
        .collect();

    write(
        "decode_access",
        vec![
            mode(0, &ACCESS),
            mode(0, &ROGUE_ACCESS),
            mode(1, &access_payload),
        ],
    );
    write(
        "verify_revocation",
        vec![mode(0, &revocation), mode(1, &revocation_payload)],
    );
    write(
        "verify_audit",
        (AUDIT_RECORDS.iter().map(|r| mode(0, r)))
            .chain(audit_payloads.iter().map(|p| mode(1, p)))
            .collect(),
    );
    write(
        "open_bundle",
        (BUNDLES.iter().map(|b| mode(0, b)))
            .chain([mode(1, &payload(&BUNDLES[1], SYNC_CONTENT_TYPE, keys))])
            .chain([bundle_script(&sample_delta())])
            .collect(),
    );
    let signed_time_seed = |m: u8, bytes: &[u8]| {
        Script::default()
            .u8(m)
            .i64(NOW)
            .opt_i64(Some(NOW))
            .raw(bytes)
            .0
    };
    write(
        "verify_signed_time",
        vec![
            signed_time_seed(0, &time),
            signed_time_seed(1, &time_payload),
        ],
    );
    write(
        "cose_open1",
        vec![
            mode(0, &ACCESS),
            mode(1, &revocation),
            mode(2, &BUNDLES[0]),
            mode(3, &time),
            mode(4, &AUDIT_RECORDS[0]),
        ],
    );
    write(
        "cbor",
        [access_payload.clone(), revocation_payload, time_payload]
            .into_iter()
            .chain(audit_payloads)
            .collect(),
    );
    write("sync_message", sync_messages());
    write("wire_message", wire_messages());
    write("schedule_evaluate", schedules());
    let issuer_key = ISSUER.verifying().to_sec1_compressed();
    write(
        "keys_ids",
        vec![
            issuer_key.to_vec(),
            CONFIG.key.public().to_sec1_compressed().to_vec(),
            LOCK_ID.0.to_vec(),
            LOCK_ID.to_string().into_bytes(),
        ],
    );
    write("unlock_lock_session", unlock_lock_session(&access_payload));
    write("unlock_phone", unlock_phone(&time));
    write("sync_lock", sync_lock());
    write("sync_transfer", sync_transfer());
    write("audit_pull", audit_pull());
}

/// open_bundle's mode 2: a bundle for the lock as its `sync_bundle` reads it.
fn bundle_script(b: &SyncBundle) -> Vec<u8> {
    assert_eq!(b.lock_id, LOCK_ID);
    let mut s = Script::default()
        .u8(2)
        .u8(1)
        .u64(b.iteration)
        .u64(b.base_iteration)
        .i64(b.issued_at)
        .u8(b.floors.len() as u8);
    for f in &b.floors {
        s = s.raw(&f.person_id.0).u64(f.floor).i64(f.expires_at);
    }
    s = s.opt_i64(b.issued_floor).u8(b.doorcodes.added.len() as u8);
    for c in &b.doorcodes.added {
        s = s.u8(c.code.len() as u8);
        for d in c.code.bytes() {
            s = s.u8(d - b'0');
        }
        s = s.raw(&c.person_id.0).opt_i64(c.expires_at);
        s = s.u8(c.schedules.len() as u8);
        for &i in &c.schedules {
            s = s.u8(i);
        }
    }
    s = s.u8(b.doorcodes.removed.len() as u8);
    for id in &b.doorcodes.removed {
        s = s.raw(&id.0);
    }
    match &b.keypad {
        // The target's keypad rules have a fixed zone.
        Some(k) if k.zone.transitions.is_empty() => {
            s = s
                .u8(1)
                .i32(k.zone.initial_offset)
                .u8(k.schedules.len() as u8);
            for sch in &k.schedules {
                s = s.u8(sch.windows.len() as u8);
                for w in &sch.windows {
                    s = s.u8(w.days.0).u16(w.start_minute).u16(w.end_minute);
                }
                s = s.opt_i64(sch.not_before).opt_i64(sch.not_after);
            }
        }
        Some(_) => panic!("bundle_script writes fixed zones only"),
        None => s = s.u8(0),
    }
    match b.audit_ack {
        None => s.u8(0).0,
        Some(ack) => s.u8(1).raw(&ack.epoch.0).u64(ack.below).0,
    }
}

fn sync_messages() -> Vec<Vec<u8>> {
    let messages = [
        SyncMessage::Offer(Offer {
            iteration: 8,
            base_iteration: 7,
            total_len: 700,
            digest: [0x5a; 32],
        }),
        SyncMessage::Data {
            offset: 4096,
            bytes: vec![0xd2; 16],
        },
        SyncMessage::AuditPull {
            epoch: AUDIT_EPOCH,
            from_seq: 3,
        },
        SyncMessage::Accept { resume_from: 4096 },
        SyncMessage::Decline {
            current_iteration: 8,
        },
        SyncMessage::Ack { next_offset: 8192 },
        SyncMessage::Done { iteration: 8 },
        SyncMessage::Failed {
            reason: FailReason::WrongBase,
            current_iteration: 7,
        },
        SyncMessage::AuditBatch {
            records: AUDIT_RECORDS[..2].to_vec(),
            more: true,
        },
    ];
    messages
        .iter()
        .map(|m| {
            let m = m.to_message();
            Script::default().u8(m.kind).raw(&m.body).0
        })
        .collect()
}

fn wire_messages() -> Vec<Vec<u8>> {
    let phone = prepare_unlock(ACCESS.clone(), NOW, None, &mut FuzzRng(0)).expect("sample");
    let pull = SyncMessage::AuditPull {
        epoch: AUDIT_EPOCH,
        from_seq: 0,
    }
    .to_message();
    let error = ErrorCode::Framing.message();
    [
        (23, phone.request_fragments(23)),
        (247, phone.request_fragments(247)),
        (23, [pull.fragments(23), error.fragments(23)].concat()),
    ]
    .into_iter()
    .map(|(mtu, chunks)| {
        let s = Script::default().u16(mtu);
        chunks.iter().fold(s, |s, c| s.blob(c)).0
    })
    .collect()
}

fn schedules() -> Vec<Vec<u8>> {
    // Weekdays 09:00-17:00, in New York's 2026 rules as transitions and as an IANA name.
    let schedule = |s: Script| s.u8(1).u8(0x1f).u16(540).u16(1020).u8(0).u8(0);
    let (dst_start, dst_end) = (1_772_953_200, 1_793_512_800);
    let rules = schedule(Script::default().i64(NOW))
        .u8(0)
        .i32(-5 * 3600)
        .i64(dst_start - 1)
        .u8(2)
        .u32(0)
        .i32(-4 * 3600)
        .u32((dst_end - dst_start - 1) as u32)
        .i32(-5 * 3600);
    let iana = schedule(Script::default().i64(dst_start))
        .u8(1)
        .blob(b"America/New_York")
        .i64(NOT_BEFORE)
        .u16(366 * 24);
    vec![rules.0, iana.0]
}

/// Ops: 0 raw chunk, 1 unlock, 2 replay, 3 clock, 4 reconnect. An unlock reads: document
/// (0 valid, 1 rogue, 2 payload blob), skew (i8), signed time (0 none, 1 trusted, 2 rogue:
/// i32 delta and lock choice; 3 blob), MTU, flip offset and mask, answer MTU.
fn unlock_lock_session(access_payload: &[u8]) -> Vec<Vec<u8>> {
    let granted_then_replayed = Script::default()
        .u8(1)
        .u8(0)
        .u8(0)
        .u8(0)
        .u16(247)
        .u16(0)
        .u8(0)
        .u16(247)
        .u8(2);
    let with_signed_time = Script::default()
        .u8(1)
        .u8(2)
        .blob(access_payload)
        .u8(3)
        .u8(1)
        .i32(300)
        .u8(1)
        .u16(23)
        .u16(0)
        .u8(0)
        .u16(23);
    let rogue_then_tampered = Script::default()
        .u8(1)
        .u8(1)
        .u8(0)
        .u8(0)
        .u16(64)
        .u16(0)
        .u8(0)
        .u16(64)
        .u8(1)
        .u8(0)
        .u8(0)
        .u8(0)
        .u16(64)
        .u16(100)
        .u8(1);
    let raw_clock_reconnect = Script::default()
        .u8(0)
        .blob(&[0x80, kind::UNLOCK_REQUEST, 0, 1])
        .u8(3)
        .i32(-3600)
        .u8(4)
        .u8(1)
        .u8(0)
        .u8(0)
        .u8(0)
        .u16(23)
        .u16(0)
        .u8(0)
        .u16(23);
    [
        granted_then_replayed,
        with_signed_time,
        rogue_then_tampered,
        raw_clock_reconnect,
    ]
    .into_iter()
    .map(|s| s.0)
    .collect()
}

/// Setup bits (1 own document, 2 own signature, 4 DER, 8 signed time), lock clock skew and
/// request MTU; ops: 0 the genuine answer (MTU, flip offset and mask), 1 raw chunk, 2 message.
fn unlock_phone(time: &[u8]) -> Vec<Vec<u8>> {
    let genuine = |s: Script| s.u8(0).u16(247).u16(0).u8(0);
    vec![
        genuine(Script::default().u8(0).u8(0).u16(247)).0,
        genuine(Script::default().u8(4 | 8).blob(time).u8(0).u16(23)).0,
        genuine(Script::default().u8(1).blob(&ACCESS).u8(100).u16(64)).0,
        Script::default()
            .u8(0)
            .u8(0)
            .u16(247)
            .u8(0)
            .u16(23)
            .u16(40)
            .u8(0x10)
            .u8(2)
            .u8(kind::ERROR)
            .blob(&[ErrorCode::WrongLock as u8])
            .u16(23)
            .0,
    ]
}

/// Ops: 0 raw chunk, 1 offer (bundle 0-3 or 4 blob, iteration, base, size lie?), 2 data
/// (offset, length), 3 the rest, 4 audit pull, 5 unlock, 6 keypad, 7 signed time, 8 clock,
/// 9 reconnect.
fn sync_lock() -> Vec<Vec<u8>> {
    let offer = |s: Script, bundle: u8, iteration: u8, base: u8| {
        s.u8(1).u8(bundle).u8(iteration).u8(base).u8(0)
    };
    // An unlock proves the holder before the delta revokes the credential.
    let full_then_delta = offer(Script::default(), 0, 7, 0)
        .u8(3)
        .u8(5)
        .u8(4)
        .u8(1)
        .u64(0)
        .u8(6)
        .blob(b"1234");
    let full_then_delta = offer(full_then_delta, 1, 8, 7).u8(3).u8(6).blob(b"4821");
    let resumed = offer(Script::default(), 0, 7, 0)
        .u8(2)
        .u32(0)
        .u16(100)
        .u8(9)
        .u8(8)
        .i32(60);
    let resumed = offer(resumed, 0, 7, 0).u8(3);
    let foreign_rogue_raw = offer(offer(Script::default(), 2, 9, 0).u8(3), 3, 10, 0)
        .u8(3)
        .u8(1)
        .u8(4)
        .blob(&BUNDLES[0])
        .u8(7)
        .u8(0)
        .u8(0)
        .u8(3);
    let time_and_keypad = Script::default()
        .u8(7)
        .i32(600)
        .u8(1)
        .u8(1)
        .opt_i64(None)
        .u8(6)
        .blob(b"0000")
        .u8(4)
        .u8(0)
        .u64(0);
    [full_then_delta, resumed, foreign_rogue_raw, time_and_keypad]
        .into_iter()
        .map(|s| s.0)
        .collect()
}

/// Lock at 7 or fresh, bundle (0 full, 1 delta, 2 blob), iteration, base, block (u16) and
/// window (u8); ops: 0 phone writes (MTU, lost-chunk mask), 1 lock's chunks arrive (count,
/// lost mask), 2 raw chunk, 3 message, 4 reconnect.
fn sync_transfer() -> Vec<Vec<u8>> {
    let rounds = |mut s: Script, lost: u32| {
        for _ in 0..6 {
            s = s.u8(0).u16(247).u32(lost).u8(1).u8(255).u8(0);
        }
        s
    };
    let full = Script::default().u8(0).u8(0).u8(7).u8(0).u16(256).u8(2);
    let delta = Script::default().u8(1).u8(1).u8(8).u8(7).u16(4096).u8(4);
    let lossy = Script::default()
        .u8(0)
        .u8(2)
        .blob(&BUNDLES[0])
        .u8(7)
        .u8(0)
        .u16(128)
        .u8(1);
    let lossy = rounds(rounds(lossy, 0b10).u8(4), 0);
    let forged = Script::default()
        .u8(0)
        .u8(0)
        .u8(7)
        .u8(0)
        .u16(512)
        .u8(1)
        .u8(0)
        .u16(23)
        .u32(0)
        .u8(3)
        .u8(kind::SYNC_ACK)
        .blob(&512u32.to_be_bytes())
        .u16(23)
        .u8(2)
        .blob(&[0x80, kind::SYNC_DONE, 0, 8, 0, 0, 0, 0, 0, 0, 0, 7]);
    vec![rounds(full, 0).0, rounds(delta, 0).0, lossy.0, forged.0]
}

/// From seq (low 7 bits; the high bit: the phone knew another epoch); ops: 0 batch (more, count, picks: 0-3 genuine, 4 foreign, 5 blob; MTU), 1
/// message (kind, body, MTU), 2 raw chunk.
fn audit_pull() -> Vec<Vec<u8>> {
    let all = Script::default()
        .u8(0)
        .u8(0)
        .u8(1)
        .u8(2)
        .u8(0)
        .u8(1)
        .u16(64)
        .u8(0)
        .u8(0)
        .u8(2)
        .u8(2)
        .u8(3)
        .u16(247);
    let forged = Script::default()
        .u8(1)
        .u8(0)
        .u8(0)
        .u8(3)
        .u8(4)
        .u8(5)
        .blob(&AUDIT_RECORDS[0])
        .u8(1)
        .u16(247)
        .u8(1)
        .u8(kind::ERROR)
        .blob(&[ErrorCode::Forbidden as u8])
        .u16(23)
        .u8(2)
        .blob(&[0x80, kind::AUDIT_BATCH, 0, 1, 0]);
    vec![all.0, forged.0]
}
