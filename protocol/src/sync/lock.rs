//! The lock's side of Door Sync messages: `LockSession` (`crate::session`) hands them here.
//!
//! - **Offer.** Refused at once when the lock does not need it (`Decline` for an iteration at
//!   or below its own, `Failed(WrongBase)` for a delta from another iteration) or cannot take
//!   it (`Failed(TooLarge)`). Otherwise `Accept { resume_from }`. Where the bytes go depends on
//!   who is offering:
//!   - on a connection where a phone proved a credential (its unlock request's device signature
//!     verified), into the lock's one kept transfer: resumed from where it stopped if the same
//!     person wrote it and the digest and length match, else replaced by a new one from 0;
//!   - on any other connection, into a transfer of this connection alone, from 0: never
//!     persisted, never resumed, and the kept transfer is left alone.
//!
//!   So bytes someone else wrote are never resumed onto: an eavesdropper who re-offers a
//!   digest seen in the clear and writes junk changes nothing, and a credential holder who
//!   does the same only makes the next holder start afresh (from their own proven session,
//!   which names them in the lock's audit log).
//! - **Data.** The block at the next offset is appended and acknowledged (`Ack`); for the
//!   kept transfer the caller persists it before the ack leaves, so a disconnect resumes from
//!   the last ack. A duplicate (everything before the next offset) is ignored silently; a block
//!   beyond the next offset (a gap: reordered or lost) is dropped and answered once, per gap,
//!   with an `Ack` of the next offset, so the phone rewinds. The last block completes the
//!   transfer: [`open_bundle`], [`LockState::apply_bundle`], then `Done` or `Failed` (the
//!   digest is checked only on a refusal, to report a transfer that went wrong as such). A
//!   bundle applied drops a kept transfer it makes stale.
//! - **Clock set.** A signed time, taken forward only (`crate::sync::time`; this is how a new
//!   lock gets its first trusted time from a time bound to its epoch), or a question; the
//!   answer is the lock's epoch, whether it has trusted time, and its clock.
//! - **Audit pull.** A batch of records from the asked seq on, only on a connection where a
//!   phone has proven a credential (its unlock request's device signature verified): the
//!   records are signed, not secret, and name who came and went. The first such pull on a
//!   connection first records the lock's health (`crate::health`), if the caller gave the
//!   session readings, so the batch carries it home.

use sha2::{Digest, Sha256};

use crate::audit::AuditEvent;
use crate::health::{HealthReadings, LockHealth};
use crate::ids::Id;
use crate::sync::bundle::open_bundle;
use crate::sync::messages::{acceptable_len, FailReason, Offer, SyncMessage, AUDIT_BATCH_BYTES};
use crate::sync::state::PartialTransfer;
use crate::sync::time::TimeUpdate;
use crate::unlock::lock::{refuse, LockConfig, LockReply, LockState, Persist};
use crate::wire::{ErrorCode, Message};
use crate::UnixTime;

/// What one connection knows about sync.
#[derive(Default)]
pub(crate) struct SyncSession {
    /// The digest of the offer accepted on this connection: data is taken only for it.
    accepted: Option<[u8; 32]>,
    /// The next offset last sent as a rewind, so a burst of out-of-order blocks gets one.
    rewound_at: Option<usize>,
    /// The person whose credential a phone proved on this connection: audit pulls need one,
    /// and only they resume the transfer they wrote.
    pub(crate) holder: Option<Id>,
    /// A transfer offered before any credential was proven on this connection.
    unproven: Option<PartialTransfer>,
    /// What the lock's hardware last reported: recorded at the first proven audit pull.
    pub(crate) readings: Option<HealthReadings>,
    /// Whether this connection has recorded the lock's health: once per connection.
    health_recorded: bool,
}

/// The transfer a connection's data goes to: its own (`unproven`), or the lock's `kept` one if
/// the connection's holder wrote it; only for the offer the connection accepted.
fn transfer_for<'a>(
    accepted: Option<[u8; 32]>,
    holder: Option<Id>,
    unproven: &'a mut Option<PartialTransfer>,
    kept: &'a mut Option<PartialTransfer>,
) -> Option<&'a mut PartialTransfer> {
    let transfer = match unproven {
        Some(own) => own,
        None => kept
            .as_mut()
            .filter(|t| t.writer.is_some() && t.writer == holder)?,
    };
    (Some(transfer.digest) == accepted).then_some(transfer)
}

fn reply(message: SyncMessage, persist: Persist) -> LockReply {
    LockReply {
        message: message.to_message(),
        decision: None,
        persist,
    }
}

/// One complete sync message; `None`: nothing to answer (a duplicate block, a repeated gap).
pub(crate) fn handle(
    session: &mut SyncSession,
    config: &LockConfig,
    state: &mut LockState,
    message: &Message,
    clock: UnixTime,
) -> Option<LockReply> {
    let Ok(message) = SyncMessage::from_message(message) else {
        return Some(refuse(ErrorCode::Malformed));
    };
    match message {
        SyncMessage::Offer(offer) => Some(on_offer(session, state, offer)),
        SyncMessage::Data { offset, bytes } => {
            on_data(session, config, state, offset, &bytes, clock)
        }
        SyncMessage::AuditPull { epoch, from_seq } => Some(if session.holder.is_some() {
            let persist = record_health(session, config, state, clock);
            // A phone that names another epoch holds nothing of this log: all of it is due.
            let from_seq = if epoch == state.audit.epoch() {
                from_seq
            } else {
                0
            };
            let (records, more) = state.audit.batch(from_seq, AUDIT_BATCH_BYTES);
            let records = records.into_iter().map(<[u8]>::to_vec).collect();
            reply(SyncMessage::AuditBatch { records, more }, persist)
        } else {
            refuse(ErrorCode::Forbidden)
        }),
        SyncMessage::ClockSet { signed_time } => {
            Some(on_clock_set(config, state, &signed_time, clock))
        }
        // The lock's own messages, sent back to it.
        _ => Some(refuse(ErrorCode::UnknownMessage)),
    }
}

/// Records the lock's health once per connection, if the hardware gave readings: the audit
/// record is what a decision changes, so it is persisted as one before the batch leaves.
fn record_health(
    session: &mut SyncSession,
    config: &LockConfig,
    state: &mut LockState,
    clock: UnixTime,
) -> Persist {
    let Some(readings) = session.readings.filter(|_| !session.health_recorded) else {
        return Persist::default();
    };
    session.health_recorded = true;
    let health = LockHealth {
        battery_percent: readings.battery_percent,
        firmware: readings.firmware,
        clock_offset: state.clock.last_skew,
        iteration: state.sync_iteration(),
    };
    let now = state.now(clock);
    state
        .audit
        .record(&config.key, now, AuditEvent::Health(health));
    Persist::DECISION
}

/// Takes the signed time, if any, forward only (no phone vouches for a step back here), and
/// says where the clock stands. A time that does not verify or is not for this lock is ignored
/// like a stale one: the answer shows whether anything changed.
fn on_clock_set(
    config: &LockConfig,
    state: &mut LockState,
    signed_time: &[u8],
    clock: UnixTime,
) -> LockReply {
    let moved = !signed_time.is_empty()
        && matches!(
            state.accept_signed_time(config, signed_time, clock, None),
            Ok(TimeUpdate::Taken { .. })
        );
    reply(
        SyncMessage::ClockState {
            epoch: state.audit.epoch(),
            trusted: state.clock.high_water.is_some(),
            lock_time: state.now(clock),
        },
        // A step moves the clock and adds a ClockSet record: what a decision changes.
        if moved {
            Persist::DECISION
        } else {
            Persist::default()
        },
    )
}

fn on_offer(session: &mut SyncSession, state: &mut LockState, offer: Offer) -> LockReply {
    let current_iteration = state.sync_iteration();
    let failed = |reason| {
        reply(
            SyncMessage::Failed {
                reason,
                current_iteration,
            },
            Persist::default(),
        )
    };
    if !acceptable_len(offer.total_len) {
        return failed(FailReason::TooLarge);
    }
    if offer.iteration <= current_iteration {
        return reply(
            SyncMessage::Decline { current_iteration },
            Persist::default(),
        );
    }
    if offer.base_iteration != 0 && offer.base_iteration != current_iteration {
        return failed(FailReason::WrongBase);
    }
    let fresh = |writer| {
        PartialTransfer::new(
            offer.iteration,
            offer.base_iteration,
            offer.total_len,
            offer.digest,
            writer,
        )
    };
    let resume_from = match session.holder {
        None => {
            session.unproven = Some(fresh(None));
            0
        }
        Some(holder) => {
            session.unproven = None;
            match &state.transfer {
                Some(t)
                    if t.writer == Some(holder)
                        && t.digest == offer.digest
                        && t.total_len == offer.total_len =>
                {
                    t.received().len()
                }
                // Another transfer is dropped in memory only: until the first ack persists this
                // one, a restart finds the old one, which is as harmless.
                _ => {
                    state.transfer = Some(fresh(Some(holder)));
                    0
                }
            }
        }
    };
    session.accepted = Some(offer.digest);
    session.rewound_at = None;
    reply(
        SyncMessage::Accept {
            // Below total_len, which is a u32.
            resume_from: resume_from as u32,
        },
        Persist::default(),
    )
}

fn on_data(
    session: &mut SyncSession,
    config: &LockConfig,
    state: &mut LockState,
    offset: u32,
    bytes: &[u8],
    clock: UnixTime,
) -> Option<LockReply> {
    let current_iteration = state.sync_iteration();
    let kept = session.unproven.is_none();
    let Some(transfer) = transfer_for(
        session.accepted,
        session.holder,
        &mut session.unproven,
        &mut state.transfer,
    ) else {
        return Some(reply(
            SyncMessage::Failed {
                reason: FailReason::NoTransfer,
                current_iteration,
            },
            Persist::default(),
        ));
    };
    let total = transfer.total_len as usize;
    let offset = offset as usize;
    let end = offset.saturating_add(bytes.len());
    if end > total {
        return Some(refuse(ErrorCode::Malformed));
    }
    let next = transfer.received().len();
    if offset > next {
        if session.rewound_at == Some(next) {
            return None;
        }
        session.rewound_at = Some(next);
        return Some(reply(
            SyncMessage::Ack {
                next_offset: next as u32,
            },
            Persist::default(),
        ));
    }
    if end <= next {
        return None;
    }
    transfer
        .received_mut()
        .extend_from_slice(&bytes[next - offset..]);
    session.rewound_at = None;
    if end < total {
        return Some(reply(
            SyncMessage::Ack {
                next_offset: end as u32,
            },
            Persist {
                state: false,
                decision_only: false,
                transfer: kept,
            },
        ));
    }

    // The last byte: the transfer ends here whatever the verdict.
    let digest = transfer.digest;
    let finished = match kept {
        true => state.transfer.take(),
        false => session.unproven.take(),
    };
    let bundle = finished
        .map(PartialTransfer::into_received)
        .unwrap_or_default();
    session.accepted = None;
    let mut persist = Persist {
        state: false,
        decision_only: false,
        transfer: kept,
    };
    // The issuer's signature covers every byte, so a bundle that opens needs no digest check
    // (one SHA-256 pass over up to 64 KiB saved on every sync); only a refusal pays for it, to
    // tell a transfer that went wrong from a bundle that is wrong.
    let message =
        match open_bundle(&bundle, config).and_then(|b| state.apply_bundle(config, &b, clock)) {
            Ok(applied) => {
                persist.state = true;
                // A kept transfer of this iteration or an older one can never apply now.
                if state
                    .transfer
                    .as_ref()
                    .is_some_and(|t| t.iteration <= applied.iteration)
                {
                    state.transfer = None;
                    persist.transfer = true;
                }
                SyncMessage::Done {
                    iteration: applied.iteration,
                }
            }
            Err(_) if <[u8; 32]>::from(Sha256::digest(&bundle)) != digest => SyncMessage::Failed {
                reason: FailReason::DigestMismatch,
                current_iteration,
            },
            Err(e) => SyncMessage::Failed {
                reason: e.into(),
                current_iteration,
            },
        };
    Some(reply(message, persist))
}
