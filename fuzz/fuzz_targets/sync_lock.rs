//! The lock's side of Door Sync, `LockSession::on_message` and `on_fragment`, over a sequence
//! of operations on one lock's persistent state: offers (of the trusted bundles, a foreign and
//! a rogue one, or bytes from the input) with any claimed iteration, base, size; data blocks
//! at any offset; the rest of the bundle; audit pulls; raw chunks; and between them unlocks,
//! keypad codes, signed times, clock changes and reconnections.
//!
//! Oracle: no panic; the lock's sync iteration only ever becomes one a trusted bundle for it
//! carries; its keypad opens only for codes such a bundle gave; audit records go only to a
//! connection on which a phone proved a credential; `Done` names the iteration applied.
#![no_main]

use arbitrary::{Result, Unstructured};
use door_protocol::sync::messages::MAX_BLOCK;
use door_protocol::sync::time::{verify_signed_time, SignedTime};
use door_protocol::sync::{Offer, SyncMessage};
use door_protocol::unlock::LockReply;
use door_protocol::{
    AuditEpoch, DoorcodeResult, FirmwareVersion, HealthReadings, LockSession, LockState, Message,
    UnixTime,
};
use door_protocol_fuzz::{
    blob, deliver, prepare_unlock, signed_time, FuzzRng, ACCESS, BUNDLES, CONFIG, DOORCODES,
    ISSUER, LOCK_ID, NOW, OTHER_LOCK, ROGUE, TRUSTED_ITERATIONS,
};
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};

/// Bundles are verified and audit records signed as they go: a bound keeps every input fast.
const MAX_OPS: usize = 24;
/// A common negotiated ATT MTU; sync messages go whole through `on_message`.
const MTU: u16 = 247;

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});

struct Lock {
    session: LockSession,
    state: LockState,
    clock: UnixTime,
    rng: FuzzRng,
    /// Whether a phone proved a credential on this connection.
    proven: bool,
}

impl Lock {
    fn message(&mut self, message: &Message) {
        let kept = self.state.transfer.clone();
        let (state, clock) = (&mut self.state, self.clock);
        if let Some(reply) = self
            .session
            .on_message(&CONFIG, state, message, clock, &mut self.rng)
        {
            self.check(&reply);
        }
        // What a connection with no proven holder sends never touches the transfer a proven
        // holder left (a bundle it completes may only make that one stale and drop it).
        if !self.proven {
            assert!(
                self.state.transfer.is_none() || self.state.transfer == kept,
                "a stranger changed the kept transfer"
            );
        }
        if let Some(t) = &self.state.transfer {
            assert!(
                t.writer.is_some(),
                "a kept transfer without a proven writer"
            );
        }
    }

    fn chunks(&mut self, chunks: &[Vec<u8>]) {
        let (state, clock) = (&mut self.state, self.clock);
        for reply in deliver(&mut self.session, state, chunks, clock, &mut self.rng) {
            self.proven |= reply.decision.is_some_and(|d| d.holder.is_some());
            self.check(&reply);
        }
    }

    fn check(&self, reply: &LockReply) {
        let iteration = self.state.sync_iteration();
        assert!(TRUSTED_ITERATIONS.contains(&iteration), "at {iteration}");
        match SyncMessage::from_message(&reply.message) {
            Ok(SyncMessage::AuditBatch { .. }) => assert!(self.proven, "records to a stranger"),
            Ok(SyncMessage::Done { iteration: done }) => assert_eq!(done, iteration),
            _ => {}
        }
    }
}

/// A new connection to a lock whose hardware reports its health, so that proven audit pulls
/// record it.
fn session() -> LockSession {
    let mut session = LockSession::new();
    session.report_health(HealthReadings {
        battery_percent: 64,
        firmware: FirmwareVersion::new("fuzz 1.0").expect("short printable ASCII"),
    });
    session
}

fn run(u: &mut Unstructured) -> Result<()> {
    let mut lock = Lock {
        session: session(),
        state: LockState::default(),
        clock: NOW,
        rng: FuzzRng(4),
        proven: false,
    };
    // The bundle last offered: what data blocks are cut from.
    let mut offered = Vec::new();
    for _ in 0..MAX_OPS {
        if u.is_empty() {
            break;
        }
        match u.arbitrary::<u8>()? % 11 {
            0 => lock.chunks(&[blob(u)?.to_vec()]),
            1 => {
                offered = match usize::from(u.arbitrary::<u8>()? % 5) {
                    i @ 0..=3 => BUNDLES[i].clone(),
                    _ => blob(u)?.to_vec(),
                };
                // The offer is the phone's unauthenticated claim: small numbers hit the
                // lock's iterations, and the size may lie.
                let offer = Offer {
                    iteration: u64::from(u.arbitrary::<u8>()?),
                    base_iteration: u64::from(u.arbitrary::<u8>()?),
                    total_len: match u.arbitrary::<bool>()? {
                        true => u.arbitrary()?,
                        false => offered.len() as u32,
                    },
                    digest: Sha256::digest(&offered).into(),
                };
                lock.message(&SyncMessage::Offer(offer).to_message());
            }
            2 => {
                let (offset, len) = (u.arbitrary::<u32>()?, usize::from(u.arbitrary::<u16>()?));
                let start = (offset as usize).min(offered.len());
                let end = start.saturating_add(len.min(MAX_BLOCK)).min(offered.len());
                let bytes = match start < end {
                    true => offered[start..end].to_vec(),
                    false => vec![0],
                };
                lock.message(&SyncMessage::Data { offset, bytes }.to_message());
            }
            3 => {
                // The rest of the bundle from where the lock stands, as the phone sends it.
                let from = lock
                    .state
                    .transfer
                    .as_ref()
                    .map_or(0, |t| t.received().len());
                let rest = offered.get(from..).unwrap_or_default().to_vec();
                for (i, block) in rest.chunks(MAX_BLOCK).enumerate() {
                    let offset = (from + i * MAX_BLOCK) as u32;
                    let bytes = block.to_vec();
                    lock.message(&SyncMessage::Data { offset, bytes }.to_message());
                }
            }
            4 => {
                // The lock's own epoch, or another (a phone that last saw it before a wipe).
                let epoch = match u.arbitrary()? {
                    true => lock.state.audit.epoch(),
                    false => AuditEpoch([0x0e; 8]),
                };
                let from_seq = u.arbitrary()?;
                lock.message(&SyncMessage::AuditPull { epoch, from_seq }.to_message());
            }
            5 => {
                let now = lock.state.now(lock.clock);
                if let Some(phone) = prepare_unlock(ACCESS.clone(), now, None, &mut lock.rng) {
                    lock.chunks(&phone.request_fragments(MTU));
                }
            }
            6 => {
                let code = String::from_utf8_lossy(blob(u)?).into_owned();
                let result = lock.state.enter_doorcode(&CONFIG, &code, lock.clock);
                if let DoorcodeResult::Granted { .. } = result {
                    assert!(DOORCODES.contains(&code.as_str()), "opened for {code:?}");
                }
            }
            7 => {
                let time = lock.clock.saturating_add(i64::from(u.arbitrary::<i32>()?));
                let lock_id =
                    [None, Some(LOCK_ID), Some(OTHER_LOCK)][usize::from(u.arbitrary::<u8>()? % 3)];
                let key = if u.arbitrary()? { &ISSUER } else { &ROGUE };
                let phone_time = u.arbitrary()?;
                let bytes = signed_time(time, lock_id, key);
                let _ = lock
                    .state
                    .accept_signed_time(&CONFIG, &bytes, lock.clock, phone_time);
            }
            8 => lock.clock = lock.clock.saturating_add(i64::from(u.arbitrary::<i32>()?)),
            9 => {
                // ClockSet: a question, or a time for this lock or another, bound to this
                // installation or to another, signed by the issuer or a rogue key.
                let signed_time = match u.arbitrary::<u8>()? % 3 {
                    0 => Vec::new(),
                    1 => blob(u)?.to_vec(),
                    _ => {
                        let epoch = match u.arbitrary::<u8>()? % 3 {
                            0 => None,
                            1 => Some(lock.state.audit.epoch()),
                            _ => Some(AuditEpoch([0x0e; 8])),
                        };
                        let lock_id = [None, Some(LOCK_ID), Some(OTHER_LOCK)]
                            [usize::from(u.arbitrary::<u8>()? % 3)];
                        let key = if u.arbitrary()? { &ISSUER } else { &ROGUE };
                        SignedTime {
                            time: lock.clock.saturating_add(i64::from(u.arbitrary::<i32>()?)),
                            lock_id,
                            epoch,
                        }
                        .sign(key)
                    }
                };
                let bound = verify_signed_time(&signed_time, &CONFIG.issuer_keys).is_ok_and(|t| {
                    t.lock_id == Some(LOCK_ID) && t.epoch == Some(lock.state.audit.epoch())
                });
                let before = lock.state.clock;
                lock.message(&SyncMessage::ClockSet { signed_time }.to_message());
                // Commissioning: until it has trusted time, only a time bound to this
                // installation moves the clock; and a ClockSet never moves it back.
                if before.high_water.is_none() && !bound {
                    assert_eq!(
                        lock.state.clock, before,
                        "an unbound time commissioned the lock"
                    );
                }
                assert!(
                    lock.state.clock.offset >= before.offset,
                    "ClockSet set the clock back"
                );
            }
            _ => {
                lock.session = session();
                lock.proven = false;
            }
        }
    }
    Ok(())
}
