//! The phone's side of BLE unlock: `UnlockPreparation::new` on any cached document, `signed`
//! on any keystore signature (raw or DER), then `PreparedUnlock::on_fragment` on whatever the
//! "lock" notifies: the genuine lock's answer (sometimes with a byte flipped on the way), raw
//! chunks, or messages of any type and body.
//!
//! Oracle: no panic; an answer is accepted only as the genuine lock sent it, and then it is
//! the lock's decision; after an answer or an error, the unlock stays finished.
#![no_main]

use arbitrary::{Result, Unstructured};
use door_protocol::{LockSession, LockState, Message, PhoneError, UnlockPreparation, UnlockTarget};
use door_protocol_fuzz::{blob, deliver, device_sign, flip, FuzzRng, ACCESS, CONFIG, LOCK_ID, NOW};
use libfuzzer_sys::fuzz_target;

const MAX_OPS: usize = 16;

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});

/// The setup byte's bits: document from the input (else the valid one), signature from the
/// input (else the device's), DER (else `r || s`), a signed time from the input.
const OWN_DOCUMENT: u8 = 1;
const OWN_SIGNATURE: u8 = 2;
const DER: u8 = 4;
const SIGNED_TIME: u8 = 8;

fn run(u: &mut Unstructured) -> Result<()> {
    let setup = u.arbitrary::<u8>()?;
    let mut rng = FuzzRng(2);
    let target = UnlockTarget {
        lock_id: LOCK_ID,
        lock_key: *CONFIG.key.public(),
        access_document: match setup & OWN_DOCUMENT {
            0 => ACCESS.clone(),
            _ => blob(u)?.to_vec(),
        },
    };
    let Ok((prep, to_sign)) = UnlockPreparation::new(target, NOW, &mut rng) else {
        return Ok(());
    };
    let prep = match setup & SIGNED_TIME {
        0 => prep,
        _ => prep.with_signed_time(blob(u)?.to_vec()),
    };
    let signature = match (setup & OWN_SIGNATURE, setup & DER) {
        (0, 0) => device_sign(&to_sign).to_bytes().to_vec(),
        (0, _) => device_sign(&to_sign).to_der().as_bytes().to_vec(),
        _ => blob(u)?.to_vec(),
    };
    let Ok(mut phone) = prep.signed(&signature) else {
        return Ok(());
    };

    // The genuine lock's answer, at a lock clock some minutes off the phone's.
    let mut state = LockState::default();
    let clock = NOW + i64::from(u.arbitrary::<i8>()?) * 2;
    let chunks = phone.request_fragments(u.arbitrary()?);
    let replies = deliver(
        &mut LockSession::new(),
        &mut state,
        &chunks,
        clock,
        &mut rng,
    );
    let answer = replies.last().expect("a whole request gets an answer");

    let mut finished = false;
    for _ in 0..MAX_OPS {
        if u.is_empty() {
            break;
        }
        let (chunks, genuine) = match u.arbitrary::<u8>()? % 3 {
            0 => {
                let mut chunks = answer.message.fragments(u.arbitrary()?);
                let (at, mask) = (usize::from(u.arbitrary::<u16>()?), u.arbitrary::<u8>()?);
                flip(&mut chunks, at, mask);
                (chunks, mask == 0)
            }
            1 => (vec![blob(u)?.to_vec()], false),
            _ => {
                let message = Message {
                    kind: u.arbitrary()?,
                    body: blob(u)?.to_vec(),
                };
                (message.fragments(u.arbitrary()?), false)
            }
        };
        for chunk in chunks {
            let read = phone.on_fragment(&chunk);
            if finished {
                assert_eq!(read, Err(PhoneError::Finished));
                continue;
            }
            match read {
                Ok(None) => {}
                Ok(Some(outcome)) => {
                    assert!(genuine, "accepted an answer the lock did not send");
                    let decision = answer.decision.expect("an answer the phone opens decides");
                    assert_eq!(outcome.result, decision.result);
                    finished = true;
                }
                Err(_) => finished = true,
            }
        }
    }
    Ok(())
}
