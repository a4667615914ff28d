//! The lock's audit log as a state machine: random sequences of records, acknowledgements and
//! batches against a model of what it must hold, and of how every seq that left it is
//! accounted for.

use std::collections::BTreeMap;

use door_protocol::{verify_audit, AuditAck, AuditEpoch, AuditEvent, AuditLog, LockKey};
use proptest::prelude::*;

const EPOCH: AuditEpoch = AuditEpoch([0xa5; 8]);

fn key() -> LockKey {
    LockKey::from_bytes(&[0x42; 32]).unwrap()
}

#[derive(Clone, Debug)]
enum Op {
    Record,
    /// Below `next_seq + delta - 2`: sometimes under what the log holds, sometimes past it.
    Acknowledge {
        delta: u8,
    },
    /// The acknowledgement of another epoch (the log before a wipe).
    AcknowledgeOther {
        below: u64,
    },
    Batch {
        back: u8,
        max_bytes: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => Just(Op::Record),
        1 => (0u8..6).prop_map(|delta| Op::Acknowledge { delta }),
        1 => (0u64..50).prop_map(|below| Op::AcknowledgeOther { below }),
        1 => (0u8..20, 0usize..600).prop_map(|(back, max_bytes)| Op::Batch { back, max_bytes }),
    ]
}

/// What the log must hold: `(seq, event)`, oldest first.
#[derive(Default)]
struct Model {
    held: Vec<(u64, AuditEvent)>,
    next_seq: u64,
    /// The server's word: it holds every seq below this.
    acknowledged: u64,
    /// Every drop record the log ever wrote: seq -> the seqs it names.
    drops: BTreeMap<u64, (u64, u64)>,
}

impl Model {
    fn covers_from(&(seq, event): &(u64, AuditEvent)) -> u64 {
        event.dropped_seqs().map_or(seq, |r| *r.start())
    }

    fn push(&mut self, event: AuditEvent) {
        self.held.push((self.next_seq, event));
        if let Some(r) = event.dropped_seqs() {
            self.drops.insert(self.next_seq, (*r.start(), *r.end()));
        }
        self.next_seq += 1;
    }

    /// The documented rule: a full log drops the oldest, at least an eighth of its capacity,
    /// and accounts for them (and for whatever a dropped drop record accounted for).
    fn record(&mut self, capacity: usize, event: AuditEvent) {
        if self.held.len() >= capacity {
            let n = (self.held.len() + 2 - capacity)
                .max(capacity / 8)
                .min(self.held.len());
            let from = Model::covers_from(&self.held[0]);
            let through_seq = self.held[n - 1].0;
            self.held.drain(..n);
            self.push(AuditEvent::RecordsDropped {
                count: through_seq - from + 1,
                through_seq,
            });
        }
        self.push(event);
    }

    /// Whether every seq the log ever numbered is held, acknowledged, or named by a drop record
    /// that is itself accounted for.
    fn all_accounted_for(&self) -> bool {
        let mut accounted = vec![false; self.next_seq as usize];
        for seq in (0..self.next_seq).rev() {
            let held = self.held.iter().any(|&(s, _)| s == seq);
            let named = self.drops.iter().any(|(&d, &(from, through))| {
                (from..=through).contains(&seq) && accounted[d as usize]
            });
            accounted[seq as usize] = held || seq < self.acknowledged || named;
        }
        accounted.into_iter().all(|a| a)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn the_log_stays_bounded_and_accounts_for_every_seq(
        capacity in 2usize..24,
        ops in prop::collection::vec(op(), 1..80),
    ) {
        let k = key();
        let mut log = AuditLog::new(EPOCH).with_capacity(capacity);
        let mut model = Model::default();
        for (i, op) in ops.into_iter().enumerate() {
            match op {
                Op::Record => {
                    let event = AuditEvent::SyncApplied { iteration: i as u64 };
                    let record = log.record(&k, i as i64, event);
                    prop_assert_eq!(record.event, event);
                    model.record(capacity, event);
                }
                Op::Acknowledge { delta } => {
                    let below = (model.next_seq + u64::from(delta)).saturating_sub(2);
                    let freed = log.acknowledge(AuditAck { epoch: EPOCH, below });
                    let before = model.held.len();
                    model.held.retain(|&(seq, _)| seq >= below);
                    prop_assert_eq!(freed, before - model.held.len());
                    model.next_seq = model.next_seq.max(below);
                    model.acknowledged = model.acknowledged.max(below);
                }
                Op::AcknowledgeOther { below } => {
                    let other = AuditAck { epoch: AuditEpoch([1; 8]), below };
                    prop_assert_eq!(log.acknowledge(other), 0);
                }
                Op::Batch { back, max_bytes } => {
                    let from_seq = model.next_seq.saturating_sub(u64::from(back));
                    let (batch, more) = log.batch(from_seq, max_bytes);
                    let due: Vec<u64> = model.held.iter().map(|&(s, _)| s).filter(|&s| s >= from_seq).collect();
                    let got: Vec<u64> = batch
                        .iter()
                        .map(|r| verify_audit(r, k.public()).unwrap().seq)
                        .collect();
                    prop_assert_eq!(&got[..], &due[..got.len()], "in order, from the first due");
                    prop_assert_eq!(got.is_empty(), due.is_empty(), "at least one when any is due");
                    prop_assert_eq!(more, got.len() < due.len());
                    let bytes: usize = batch.iter().map(|r| r.len()).sum();
                    prop_assert!(batch.len() == 1 || bytes <= max_bytes);
                }
            }
            prop_assert!(log.len() <= capacity);
            let held: Vec<(u64, AuditEvent)> = log
                .records()
                .map(|r| verify_audit(r, k.public()).unwrap())
                .map(|r| (r.seq, r.event))
                .collect();
            prop_assert!(held.windows(2).all(|w| w[0].0 < w[1].0), "seqs strictly increase");
            prop_assert_eq!(&held, &model.held);
            prop_assert_eq!(log.next_seq(), model.next_seq);
            prop_assert!(model.all_accounted_for());
        }
    }
}

fn any_health() -> impl Strategy<Value = door_protocol::LockHealth> {
    (
        0u8..=100,
        "[ -~]{1,32}",
        proptest::option::of(any::<i64>()),
        any::<u64>(),
    )
        .prop_map(|(battery_percent, firmware, clock_offset, iteration)| {
            door_protocol::LockHealth {
                battery_percent,
                firmware: door_protocol::FirmwareVersion::new(&firmware).unwrap(),
                clock_offset,
                iteration,
            }
        })
}

proptest! {
    /// Any health a lock can state is signed into its log and read back as it was, and no
    /// flipped byte of the signed record passes as another one.
    #[test]
    fn health_records_round_trip_and_resist_tampering(
        health in any_health(),
        at in any::<i64>(),
        flip in any::<prop::sample::Index>(),
    ) {
        let mut log = AuditLog::new(EPOCH);
        let record = log.record(&key(), at, AuditEvent::Health(health));
        let signed = log.records().next().unwrap().to_vec();
        prop_assert_eq!(verify_audit(&signed, key().public()), Ok(record));
        let mut altered = signed.clone();
        altered[flip.index(signed.len())] ^= 0x01;
        prop_assert!(verify_audit(&altered, key().public()).is_err());
    }
}
