//! Door Sync transfers against third parties: generated interleavings of an honest phone
//! carrying a bundle over connections that drop, a stranger in radio range and a neighbour who
//! holds a credential, both re-offering what they saw in the clear and writing junk.
//!
//! Invariants after every step: the transfer the lock keeps for the honest person holds only
//! bytes of the honest bundle; nothing a stranger sends changes the kept transfer; the lock
//! applies nothing but the genuine bundle. At the end, one undisturbed visit of the honest
//! phone applies the bundle.

mod common;

use common::*;
use door_protocol::sync::messages::{Offer, SyncMessage};
use door_protocol::sync::{FailReason, SyncEvent};
use door_protocol::{
    AccessDocument, Id, LockSession, LockState, SyncOutcome, SyncTransfer, UnlockPreparation,
    UnlockResult, UnlockTarget,
};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use proptest::prelude::*;
use rand_core::OsRng;

const NOW: i64 = MONDAY_0800_NY;
const MTU: u16 = 247;
const BLOCK: usize = 512;
const ITERATION: u64 = 3;

fn neighbour() -> AccessDocument {
    AccessDocument {
        person_id: Id([0xa9; 16]),
        credential_id: Id([0xc9; 16]),
        ..sample_access()
    }
}

/// Unlocks on `session` with `doc`: the phone proves that credential on the connection.
fn prove(session: &mut LockSession, state: &mut LockState, doc: &AccessDocument) {
    let config = lock_config();
    let target = UnlockTarget {
        lock_id: config.lock_id,
        lock_key: *config.key.public(),
        access_document: doc.sign(&issuer()).unwrap(),
    };
    let (prep, to_sign) = UnlockPreparation::new(target, NOW, &mut OsRng).unwrap();
    let device = SigningKey::from_bytes(&DEVICE_SCALAR.into()).unwrap();
    let signature: Signature = device.sign(&to_sign);
    let mut phone = prep.signed(&signature.to_bytes()).unwrap();
    let mut reply = None;
    for c in phone.request_fragments(MTU) {
        reply = session.on_fragment(&config, state, &c, NOW, &mut OsRng);
    }
    let mut outcome = None;
    for c in reply.unwrap().message.fragments(MTU) {
        outcome = phone.on_fragment(&c).unwrap();
    }
    assert_eq!(outcome.unwrap().result, UnlockResult::Granted);
}

#[derive(Clone, Debug)]
enum Step {
    /// The honest phone sends up to `messages` of what its window allows on its connection
    /// (connecting and unlocking first if it has none), and reads the answers.
    Honest { messages: usize },
    /// The honest phone's connection drops.
    Drop,
    /// Someone on a connection of their own offers what the honest phone offered, then writes
    /// `blocks` junk blocks from `resume_from + skew` on.
    Junk {
        proves: bool,
        blocks: u32,
        skew: u32,
    },
    /// A stranger writes a junk block with no offer, at an offset of their choice.
    BareData { offset: u32 },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        5 => (1..6usize).prop_map(|messages| Step::Honest { messages }),
        2 => Just(Step::Drop),
        2 => (any::<bool>(), 0..4u32, 0..3u32).prop_map(|(proves, blocks, skew)| Step::Junk {
            proves,
            blocks,
            skew: skew * BLOCK as u32,
        }),
        1 => (0..40_000u32).prop_map(|offset| Step::BareData { offset }),
    ]
}

struct World {
    bundle: Vec<u8>,
    state: LockState,
    phone: SyncTransfer,
    /// The honest phone's connection, if it has one.
    link: Option<LockSession>,
    outcome: Option<SyncOutcome>,
}

impl World {
    fn new() -> World {
        let bundle = {
            let config = lock_config();
            full_bundle(150, ITERATION)
                .seal_and_sign(&issuer(), config.key.public(), &mut OsRng)
                .unwrap()
        };
        let phone = SyncTransfer::new(bundle.clone(), ITERATION, 0)
            .unwrap()
            .with_flow(BLOCK, 3);
        World {
            bundle,
            state: LockState::default(),
            phone,
            link: None,
            outcome: None,
        }
    }

    fn honest(&mut self, messages: usize) {
        if self.outcome.is_some() {
            return;
        }
        let session = self.link.get_or_insert_with(|| {
            let mut session = LockSession::new();
            prove(&mut session, &mut self.state, &sample_access());
            self.phone.reconnect();
            session
        });
        let sent = self.phone.next_messages();
        if sent.is_empty() {
            // Waiting for acknowledgements lost with the messages: the phone times out.
            self.link = None;
            return;
        }
        let config = lock_config();
        // Messages beyond `messages` are lost on the air.
        for m in sent.into_iter().take(messages) {
            let Some(reply) = session.on_message(&config, &mut self.state, &m, NOW, &mut OsRng)
            else {
                continue;
            };
            match self.phone.on_message(&reply.message) {
                // The lock no longer holds this phone's transfer (a neighbour's replaced it
                // while this connection was open): the next visit starts a new one.
                Ok(SyncEvent::Finished(SyncOutcome::Failed {
                    reason: FailReason::NoTransfer,
                    ..
                })) => {
                    self.phone = SyncTransfer::new(self.bundle.clone(), ITERATION, 0)
                        .unwrap()
                        .with_flow(BLOCK, 3);
                    self.link = None;
                    return;
                }
                Ok(SyncEvent::Finished(o)) => {
                    self.outcome = Some(o);
                    return;
                }
                Ok(SyncEvent::Progress(_)) => {}
                Err(_) => {
                    self.link = None;
                    return;
                }
            }
        }
    }

    fn junk(&mut self, proves: bool, blocks: u32, skew: u32) {
        let config = lock_config();
        let mut session = LockSession::new();
        if proves {
            prove(&mut session, &mut self.state, &neighbour());
        }
        let offer: Offer = self.phone.offer();
        let accept = session.on_message(
            &config,
            &mut self.state,
            &SyncMessage::Offer(offer).to_message(),
            NOW,
            &mut OsRng,
        );
        let resume_from = match accept.map(|r| SyncMessage::from_message(&r.message)) {
            Some(Ok(SyncMessage::Accept { resume_from })) => resume_from,
            _ => return,
        };
        for i in 0..blocks {
            let offset = resume_from + skew + i * BLOCK as u32;
            let len = (offer.total_len.saturating_sub(offset) as usize).min(BLOCK);
            if len == 0 {
                break;
            }
            session.on_message(
                &config,
                &mut self.state,
                &SyncMessage::Data {
                    offset,
                    bytes: vec![0xee; len],
                }
                .to_message(),
                NOW,
                &mut OsRng,
            );
        }
    }

    fn bare_data(&mut self, offset: u32) {
        LockSession::new().on_message(
            &lock_config(),
            &mut self.state,
            &SyncMessage::Data {
                offset,
                bytes: vec![0xee; BLOCK],
            }
            .to_message(),
            NOW,
            &mut OsRng,
        );
    }

    /// The honest person's kept transfer holds only the honest bundle's bytes, and the lock is
    /// at no iteration but 0 and the genuine one.
    fn check(&self) -> Result<(), TestCaseError> {
        if let Some(t) = &self.state.transfer {
            prop_assert!(t.writer.is_some(), "a kept transfer with no proven writer");
            if t.writer == Some(sample_access().person_id) {
                prop_assert!(
                    self.bundle.starts_with(t.received()),
                    "junk in the honest person's transfer at {}",
                    t.received().len()
                );
            }
        }
        prop_assert!([0, ITERATION].contains(&self.state.sync_iteration()));
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn no_third_party_moves_the_honest_transfer_off_its_bytes(
        steps in prop::collection::vec(step(), 1..40)
    ) {
        let mut world = World::new();
        for step in steps {
            let kept = world.state.transfer.clone();
            let stranger = matches!(step, Step::Junk { proves: false, .. } | Step::BareData { .. });
            match step {
                Step::Honest { messages } => world.honest(messages),
                Step::Drop => world.link = None,
                Step::Junk { proves, blocks, skew } => world.junk(proves, blocks, skew),
                Step::BareData { offset } => world.bare_data(offset),
            }
            if stranger {
                prop_assert_eq!(&world.state.transfer, &kept, "a stranger changed the kept transfer");
            }
            world.check()?;
        }
        // One undisturbed visit finishes the job.
        world.link = None;
        for _ in 0..200 {
            if world.outcome.is_some() {
                break;
            }
            world.honest(usize::MAX);
        }
        prop_assert_eq!(world.outcome, Some(SyncOutcome::Applied { iteration: ITERATION }));
        prop_assert_eq!(world.state.sync_iteration(), ITERATION);
    }
}
