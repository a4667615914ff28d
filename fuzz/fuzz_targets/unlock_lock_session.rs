//! The lock's side of BLE unlock, `LockSession::on_fragment` (and through it `respond`), over
//! a sequence of operations on one lock: requests built by the genuine phone code (for the
//! valid document, for one signed by an untrusted issuer, or for a payload the trusted issuer
//! signs) with any clock skew and signed time, sometimes with a byte flipped on the way;
//! replays of the last request; raw chunks; clock changes; reconnections.
//!
//! Oracle: no panic; a grant only for an unaltered request whose document the lock's issuer
//! keys verify and that grants the lock's door, and never twice for the same request; the
//! phone reads exactly the lock's decision from an unaltered answer.
#![no_main]

use arbitrary::{Result, Unstructured};
use door_protocol::access::ACCESS_CONTENT_TYPE;
use door_protocol::unlock::LockReply;
use door_protocol::wire::MAX_ATT_MTU;
use door_protocol::{cose, decode_access, LockSession, LockState, PreparedUnlock, UnixTime};
use door_protocol_fuzz::{
    blob, deliver, flip, prepare_unlock, signed_time, FuzzRng, ACCESS, CONFIG, ISSUER, LOCK_ID,
    NOW, OTHER_LOCK, ROGUE, ROGUE_ACCESS,
};
use libfuzzer_sys::fuzz_target;

/// Each unlock costs a dozen P-256 operations: a bound keeps every input fast.
const MAX_OPS: usize = 12;

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});

/// A request as the phone wrote it.
struct Request {
    chunks: Vec<Vec<u8>>,
    /// The chunks at the largest MTU: one name for the request whatever the link.
    id: Vec<Vec<u8>>,
    /// Whether its document is one the lock may grant.
    grantable: bool,
}

struct Lock {
    session: LockSession,
    state: LockState,
    clock: UnixTime,
    rng: FuzzRng,
    /// Requests granted so far.
    granted: Vec<Vec<Vec<u8>>>,
}

impl Lock {
    /// Writes chunks and checks every decision: a grant only for `may_grant`, once. Returns
    /// the last reply.
    fn send(&mut self, chunks: &[Vec<u8>], may_grant: Option<&Vec<Vec<u8>>>) -> Option<LockReply> {
        let (state, clock) = (&mut self.state, self.clock);
        let replies = deliver(&mut self.session, state, chunks, clock, &mut self.rng);
        for d in replies.iter().filter_map(|r| r.decision) {
            if d.result.is_granted() {
                let id = may_grant.expect("granted an altered request or an invalid document");
                assert!(!self.granted.contains(id), "granted a replay");
                self.granted.push(id.clone());
            }
        }
        replies.into_iter().last()
    }
}

fn run(u: &mut Unstructured) -> Result<()> {
    let mut lock = Lock {
        session: LockSession::new(),
        state: LockState::default(),
        clock: NOW,
        rng: FuzzRng(1),
        granted: Vec::new(),
    };
    let mut last: Option<Request> = None;
    for _ in 0..MAX_OPS {
        if u.is_empty() {
            break;
        }
        match u.arbitrary::<u8>()? % 5 {
            0 => {
                lock.send(&[blob(u)?.to_vec()], None);
            }
            1 => {
                if let Some((phone, request)) = build(u, &mut lock)? {
                    unlock(u, &mut lock, phone, &request)?;
                    last = Some(request);
                }
            }
            2 => {
                if let Some(r) = &last {
                    lock.send(&r.chunks, r.grantable.then_some(&r.id));
                }
            }
            3 => lock.clock = lock.clock.saturating_add(i64::from(u.arbitrary::<i32>()?)),
            _ => lock.session = LockSession::new(),
        }
    }
    Ok(())
}

/// A phone's request from the input's choice of document, clock skew, signed time and MTU.
fn build(u: &mut Unstructured, lock: &mut Lock) -> Result<Option<(PreparedUnlock, Request)>> {
    let document = match u.arbitrary::<u8>()? % 3 {
        0 => ACCESS.clone(),
        1 => ROGUE_ACCESS.clone(),
        _ => match cose::sign1(&ISSUER, ACCESS_CONTENT_TYPE, blob(u)?.to_vec()) {
            Ok(d) => d,
            Err(_) => return Ok(None),
        },
    };
    let grantable = decode_access(&document, &CONFIG.issuer_keys)
        .is_ok_and(|a| a.document().has_door(CONFIG.door_id));
    let now = lock.state.now(lock.clock);
    // Within a few minutes either way: about half inside the lock's tolerance.
    let phone_time = now + i64::from(u.arbitrary::<i8>()?) * 2;
    let signed = match u.arbitrary::<u8>()? % 4 {
        0 => None,
        sel @ (1 | 2) => {
            let time = now.saturating_add(i64::from(u.arbitrary::<i32>()?));
            let lock_id =
                [None, Some(LOCK_ID), Some(OTHER_LOCK)][usize::from(u.arbitrary::<u8>()? % 3)];
            let key = if sel == 1 { &ISSUER } else { &ROGUE };
            Some(signed_time(time, lock_id, key))
        }
        _ => Some(blob(u)?.to_vec()),
    };
    let Some(phone) = prepare_unlock(document, phone_time, signed, &mut lock.rng) else {
        return Ok(None);
    };
    let request = Request {
        chunks: phone.request_fragments(u.arbitrary()?),
        id: phone.request_fragments(MAX_ATT_MTU),
        grantable,
    };
    Ok(Some((phone, request)))
}

/// Sends the request, maybe with one byte flipped, and has the phone read an unaltered answer.
fn unlock(
    u: &mut Unstructured,
    lock: &mut Lock,
    mut phone: PreparedUnlock,
    request: &Request,
) -> Result<()> {
    let (at, mask) = (usize::from(u.arbitrary::<u16>()?), u.arbitrary::<u8>()?);
    let mut chunks = request.chunks.clone();
    let tampered = mask != 0;
    if tampered {
        flip(&mut chunks, at, mask);
    }
    let may_grant = (request.grantable && !tampered).then_some(&request.id);
    let Some(reply) = lock.send(&chunks, may_grant) else {
        return Ok(());
    };
    if tampered {
        return Ok(());
    }
    let mut read = None;
    for chunk in reply.message.fragments(u.arbitrary()?) {
        read = Some(phone.on_fragment(&chunk));
    }
    match (
        reply.decision,
        read.expect("a message is at least one chunk"),
    ) {
        (Some(d), Ok(Some(outcome))) => {
            assert_eq!(outcome.result, d.result);
            assert_eq!(outcome.sync_iteration, lock.state.sync_iteration());
            assert_eq!(outcome.pending_audit, lock.state.audit.pending());
        }
        (None, Err(_)) => {}
        (d, read) => panic!("the lock decided {d:?}, the phone read {read:?}"),
    }
    Ok(())
}
