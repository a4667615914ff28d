//! The phone's side of a Door Sync transfer, `SyncTransfer`, against the genuine lock over a
//! lossy link: chunks lost either way at the fuzzer's choice, reconnections, and forged
//! answers mixed in (raw chunks, messages of any type and body).
//!
//! Oracle: no panic; progress stays within the bundle; and while only the genuine lock has
//! spoken, progress never goes back (but to start over once the lock has given its verdict)
//! and `Applied { iteration }` means the lock is at `iteration`.
#![no_main]

use std::collections::VecDeque;

use arbitrary::{Result, Unstructured};
use door_protocol::sync::SyncEvent;
use door_protocol::{LockSession, LockState, Message, SyncOutcome, SyncTransfer};
use door_protocol_fuzz::{
    blob, deliver, prepare_unlock, FuzzRng, ACCESS, AFTER_FULL, BUNDLES, CONFIG, NOW,
};

const MTU: u16 = 247;
use libfuzzer_sys::fuzz_target;

const MAX_OPS: usize = 32;

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});

fn run(u: &mut Unstructured) -> Result<()> {
    // A fresh lock or one at iteration 7; the trusted full bundle, the delta, or the input's
    // bytes, with the iteration and base the phone claims for it.
    let mut state = match u.arbitrary()? {
        true => AFTER_FULL.clone(),
        false => LockState::default(),
    };
    let bundle = match u.arbitrary::<u8>()? % 3 {
        0 => BUNDLES[0].clone(),
        1 => BUNDLES[1].clone(),
        _ => blob(u)?.to_vec(),
    };
    let (iteration, base) = (u.arbitrary::<u8>()?, u.arbitrary::<u8>()?);
    let Ok(transfer) = SyncTransfer::new(bundle, iteration.into(), base.into()) else {
        return Ok(());
    };
    let flow = (u.arbitrary::<u16>()?, u.arbitrary::<u8>()?);
    let mut transfer = transfer.with_flow(flow.0.into(), flow.1.into());
    let total = transfer.progress().total;
    let mut session = LockSession::new();
    let mut rng = FuzzRng(3);
    // The lock's notifications on their way to the phone.
    let mut inbox = VecDeque::new();
    let mut forged = false;
    let mut done = 0;
    for _ in 0..MAX_OPS {
        if u.is_empty() {
            break;
        }
        let to_phone: Vec<Vec<u8>> = match u.arbitrary::<u8>()? % 5 {
            0 => {
                let (mtu, lost) = (u.arbitrary()?, u.arbitrary::<u32>()?);
                for (i, chunk) in transfer.next_fragments(mtu).iter().enumerate() {
                    if lost & (1 << (i % 32)) == 0 {
                        if let Some(reply) =
                            session.on_fragment(&CONFIG, &mut state, chunk, NOW, &mut rng)
                        {
                            inbox.extend(reply.message.fragments(mtu));
                        }
                    }
                }
                continue;
            }
            1 => {
                let (n, lost) = (u.arbitrary::<u8>()?, u.arbitrary::<u8>()?);
                let n = usize::from(n).min(inbox.len());
                (0..n)
                    .zip(inbox.drain(..n))
                    .filter(|(i, _)| lost & (1 << (i % 8)) == 0)
                    .map(|(_, chunk)| chunk)
                    .collect()
            }
            2 => {
                forged = true;
                vec![blob(u)?.to_vec()]
            }
            3 => {
                forged = true;
                let message = Message {
                    kind: u.arbitrary()?,
                    body: blob(u)?.to_vec(),
                };
                message.fragments(u.arbitrary()?)
            }
            _ => {
                // A new connection, on which the phone may prove its credential first (an
                // unlock). A proven phone resumes where the lock's kept transfer stands (which
                // may be behind what an unproven connection since got to); any other offer,
                // or a lock keeping none (it never got the offer, or gave a verdict the phone
                // missed), rightly starts over.
                transfer.reconnect();
                session = LockSession::new();
                inbox.clear();
                let proven = u.arbitrary::<bool>()?
                    && prepare_unlock(ACCESS.clone(), NOW, None, &mut rng).is_some_and(|phone| {
                        deliver(
                            &mut session,
                            &mut state,
                            &phone.request_fragments(MTU),
                            NOW,
                            &mut rng,
                        )
                        .iter()
                        .any(|r| r.decision.is_some_and(|d| d.holder.is_some()))
                    });
                done = match (&state.transfer, proven) {
                    (Some(kept), true) => kept.received().len() as u64,
                    _ => 0,
                };
                continue;
            }
        };
        for chunk in to_phone {
            let Ok(Some(event)) = transfer.on_fragment(&chunk) else {
                continue;
            };
            let progress = transfer.progress();
            assert!(progress.done <= progress.total && progress.total == total);
            if !forged {
                assert!(progress.done >= done, "went back to {progress:?}");
                if let SyncEvent::Finished(SyncOutcome::Applied { iteration }) = event {
                    assert_eq!(iteration, state.sync_iteration());
                }
            }
            done = progress.done;
        }
    }
    Ok(())
}
