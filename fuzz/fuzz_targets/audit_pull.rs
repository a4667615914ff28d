//! The phone's side of an audit pull, `AuditPuller::on_fragment`: batches of genuine records,
//! records signed by another lock and bytes from the input, in any order, with raw chunks and
//! messages of any type and body in between.
//!
//! Oracle: no panic; every record handed out is one the lock signed (its signature cannot be
//! forged), seqs ascend, and the next pull starts after the last record handed out.
#![no_main]

use std::sync::LazyLock;

use arbitrary::{Result, Unstructured};
use door_protocol::sync::SyncMessage;
use door_protocol::{AuditEpoch, AuditEvent, AuditPuller, AuditRecord, LockKey, Message};
use door_protocol_fuzz::{blob, AUDIT_EPOCH, AUDIT_RECORDS, CONFIG, NOW, ROGUE_SCALAR};
use libfuzzer_sys::fuzz_target;

const MAX_OPS: usize = 16;

/// A record signed by a lock other than the one pulled from.
static FOREIGN_RECORD: LazyLock<Vec<u8>> = LazyLock::new(|| {
    let key = LockKey::from_bytes(&ROGUE_SCALAR).expect("fixed scalar is valid");
    let event = AuditEvent::SyncApplied { iteration: 9 };
    AuditRecord {
        epoch: AUDIT_EPOCH,
        seq: 4,
        at: NOW,
        event,
    }
    .sign(&key)
});

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});

fn run(u: &mut Unstructured) -> Result<()> {
    // From seq: the low 7 bits; the high bit: the phone knew another epoch than the lock's.
    let from = u.arbitrary::<u8>()?;
    let epoch = match from & 0x80 {
        0 => AUDIT_EPOCH,
        _ => AuditEpoch([0x0e; 8]),
    };
    let mut puller = AuditPuller::new(*CONFIG.key.public(), epoch, (from & 0x7f).into());
    for _ in 0..MAX_OPS {
        if u.is_empty() {
            break;
        }
        let chunks = match u.arbitrary::<u8>()? % 3 {
            0 => {
                let more = u.arbitrary()?;
                let mut records = Vec::new();
                for _ in 0..u.arbitrary::<u8>()? % 8 {
                    records.push(match usize::from(u.arbitrary::<u8>()? % 6) {
                        i @ 0..=3 => AUDIT_RECORDS[i].clone(),
                        4 => FOREIGN_RECORD.clone(),
                        _ => blob(u)?.to_vec(),
                    });
                }
                let batch = SyncMessage::AuditBatch { records, more }.to_message();
                batch.fragments(u.arbitrary()?)
            }
            1 => {
                let message = Message {
                    kind: u.arbitrary()?,
                    body: blob(u)?.to_vec(),
                };
                message.fragments(u.arbitrary()?)
            }
            _ => vec![blob(u)?.to_vec()],
        };
        for chunk in chunks {
            let (from_epoch, from) = (puller.epoch(), puller.next_seq());
            let Ok(Some(batch)) = puller.on_fragment(&chunk) else {
                continue;
            };
            // A batch of another epoch than the phone knew starts the count afresh.
            let epoch = batch.records.first().map_or(from_epoch, |r| r.record.epoch);
            let mut next = if epoch == from_epoch { from } else { 0 };
            for r in &batch.records {
                assert!(
                    AUDIT_RECORDS.contains(&r.bytes),
                    "a record the lock never signed"
                );
                assert_eq!(r.record.epoch, epoch, "one epoch per batch");
                assert!(r.record.seq >= next);
                next = r.record.seq + 1;
            }
            assert_eq!((puller.epoch(), puller.next_seq()), (epoch, next));
            assert_eq!(
                puller.request(),
                SyncMessage::AuditPull {
                    epoch,
                    from_seq: next
                }
                .to_message()
            );
        }
    }
    Ok(())
}
