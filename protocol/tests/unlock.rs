//! The BLE unlock exchange end to end, phone side against lock side, over the chunk framing:
//! every decision the lock can reach, tampering in either direction, replays, clock drift and
//! framing faults.

mod common;

use common::*;
use door_protocol::unlock::{
    respond, ReplayCache, DEFAULT_CLOCK_TOLERANCE, RESPONSE_BODY_SIZE, UNLOCK_VERSION,
};
use door_protocol::wire::{kind, MAX_BODY};
use door_protocol::{
    verify_revocation, AccessDocument, AuditEvent, DenyReason, ErrorCode, Id, IssuerKey,
    LockConfig, LockKey, LockReply, LockSession, LockState, Message, PhoneError, PreparedUnlock,
    UnlockOutcome, UnlockPreparation, UnlockResult, UnlockTarget,
};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use proptest::prelude::*;
use rand_core::OsRng;

const NOW: i64 = MONDAY_0800_NY;

fn device() -> SigningKey {
    SigningKey::from_bytes(&DEVICE_SCALAR.into()).unwrap()
}

fn lock_config(door: Id) -> LockConfig {
    LockConfig {
        lock_id: LOCK_ID,
        door_id: door,
        key: LockKey::from_bytes(&[0x77; 32]).unwrap(),
        issuer_keys: issuer_keys(),
        clock_tolerance: DEFAULT_CLOCK_TOLERANCE,
    }
}

fn signed_doc(doc: &AccessDocument) -> Vec<u8> {
    doc.sign(&issuer()).unwrap()
}

fn target(config: &LockConfig, document: Vec<u8>) -> UnlockTarget {
    UnlockTarget {
        lock_id: config.lock_id,
        lock_key: *config.key.public(),
        access_document: document,
    }
}

/// What the phone does before connecting, with a software device key.
fn prepare_for(target: UnlockTarget, phone_time: i64) -> PreparedUnlock {
    let (prep, to_sign) = UnlockPreparation::new(target, phone_time, &mut OsRng).unwrap();
    let signature: Signature = device().sign(&to_sign);
    prep.signed(&signature.to_bytes()).unwrap()
}

fn prepare(config: &LockConfig, phone_time: i64) -> PreparedUnlock {
    prepare_for(target(config, signed_doc(&sample_access())), phone_time)
}

/// Writes every chunk into the session; the reply to the last one (earlier ones need none).
fn deliver(
    session: &mut LockSession,
    config: &LockConfig,
    state: &mut LockState,
    chunks: &[Vec<u8>],
    lock_time: i64,
) -> Option<LockReply> {
    let mut reply = None;
    for (i, c) in chunks.iter().enumerate() {
        reply = session.on_fragment(config, state, c, lock_time, &mut OsRng);
        if i + 1 < chunks.len() {
            assert!(reply.is_none(), "the lock answered before the last chunk");
        }
    }
    // Whatever it decided, the answer has one length (tests/lengths.rs).
    if let Some(r) = reply.as_ref().filter(|r| r.decision.is_some()) {
        assert_eq!(r.message.body.len(), RESPONSE_BODY_SIZE);
    }
    reply
}

/// Feeds the lock's reply to the phone, chunk by chunk.
fn read(
    phone: &mut PreparedUnlock,
    reply: &LockReply,
    mtu: u16,
) -> Result<Option<UnlockOutcome>, PhoneError> {
    let mut out = Ok(None);
    for c in reply.message.fragments(mtu) {
        out = phone.on_fragment(&c);
        if out.is_err() {
            break;
        }
    }
    out
}

/// One whole unlock at one MTU: the phone's outcome and the lock's decision.
fn unlock(
    config: &LockConfig,
    state: &mut LockState,
    phone_time: i64,
    lock_time: i64,
    mtu: u16,
) -> (UnlockOutcome, UnlockResult, AuditEvent) {
    let mut phone = prepare(config, phone_time);
    let reply = deliver(
        &mut LockSession::new(),
        config,
        state,
        &phone.request_fragments(mtu),
        lock_time,
    )
    .expect("the lock answers a complete request");
    let decision = reply.decision.expect("a sealed request is decided");
    let outcome = read(&mut phone, &reply, mtu).unwrap().unwrap();
    assert_eq!(outcome.result, decision.result);
    (outcome, decision.result, decision.event)
}

fn result_at(door: Id, state: &mut LockState, phone_time: i64, lock_time: i64) -> UnlockResult {
    unlock(&lock_config(door), state, phone_time, lock_time, 247).1
}

#[test]
fn granted_at_mtu_23_and_247() {
    let config = lock_config(LOBBY);
    let mut state = LockState::default();
    for (i, mtu) in [23u16, 247].into_iter().enumerate() {
        let phone = prepare(&config, NOW);
        let chunks = phone.request_fragments(mtu);
        assert!(chunks.iter().all(|c| c.len() <= usize::from(mtu) - 3));
        if mtu == 23 {
            assert!(chunks.len() > 20);
        }
        let (outcome, _, event) = unlock(&config, &mut state, NOW, NOW + 5, mtu);
        assert_eq!(
            outcome,
            UnlockOutcome {
                result: UnlockResult::Granted,
                lock_time: NOW + 5,
                sync_iteration: 0,
                pending_audit: i as u32 + 1,
            }
        );
        assert_eq!(
            event,
            AuditEvent::UnlockGranted {
                credential_id: CREDENTIAL,
                door_id: LOBBY
            }
        );
    }
}

#[test]
fn out_of_schedule_at_the_lock_names_the_next_opening() {
    // Monday 08:00 in New York; the pool opens at 09:00. The phone sends regardless.
    let mut state = LockState::default();
    let (outcome, _, event) = unlock(&lock_config(POOL), &mut state, NOW, NOW, 247);
    let reason = DenyReason::OutOfSchedule {
        next_allowed: Some(NOW + 3600),
    };
    assert_eq!(outcome.result, UnlockResult::Denied(reason));
    assert_eq!(
        event,
        AuditEvent::UnlockDenied {
            credential_id: Some(CREDENTIAL),
            reason
        }
    );
    assert_eq!(
        result_at(POOL, &mut state, NOW + 3600, NOW + 3600),
        UnlockResult::Granted
    );
}

#[test]
fn expired_and_not_yet_valid() {
    let mut state = LockState::default();
    assert_eq!(
        result_at(LOBBY, &mut state, NOT_AFTER, NOT_AFTER),
        UnlockResult::Denied(DenyReason::Expired)
    );
    assert_eq!(
        result_at(LOBBY, &mut state, NOT_BEFORE - 1, NOT_BEFORE - 1),
        UnlockResult::Denied(DenyReason::NotYetValid)
    );
    assert_eq!(
        result_at(LOBBY, &mut state, NOT_BEFORE, NOT_BEFORE),
        UnlockResult::Granted
    );
}

#[test]
fn revoked_once_the_lock_applied_the_revocation() {
    let mut state = LockState::default();
    assert_eq!(
        result_at(LOBBY, &mut state, NOW, NOW),
        UnlockResult::Granted
    );
    let revocation = verify_revocation(
        &sample_revocation().sign(&issuer()).unwrap(),
        &issuer_keys(),
    )
    .unwrap();
    state.revocations.apply(&revocation).unwrap();
    let (outcome, _, event) = unlock(&lock_config(LOBBY), &mut state, NOW, NOW, 247);
    assert_eq!(outcome.result, UnlockResult::Denied(DenyReason::Revoked));
    // The sync iteration is the bundles' (none applied), not the revocation document's.
    assert_eq!(outcome.sync_iteration, 0);
    assert_eq!(
        event,
        AuditEvent::UnlockDenied {
            credential_id: Some(CREDENTIAL),
            reason: DenyReason::Revoked
        }
    );
}

#[test]
fn wrong_door() {
    assert_eq!(
        result_at(GARAGE, &mut LockState::default(), NOW, NOW),
        UnlockResult::Denied(DenyReason::WrongDoor)
    );
}

#[test]
fn a_document_from_an_unknown_issuer_is_a_bad_credential() {
    let config = lock_config(LOBBY);
    let rogue = IssuerKey::from_bytes(&[0x55; 32]).unwrap();
    let mut phone = prepare_for(target(&config, sample_access().sign(&rogue).unwrap()), NOW);
    let reply = deliver(
        &mut LockSession::new(),
        &config,
        &mut LockState::default(),
        &phone.request_fragments(247),
        NOW,
    )
    .unwrap();
    assert_eq!(
        read(&mut phone, &reply, 247).unwrap().unwrap().result,
        UnlockResult::Denied(DenyReason::BadCredential)
    );
    assert_eq!(
        reply.decision.unwrap().event,
        AuditEvent::UnlockDenied {
            credential_id: None,
            reason: DenyReason::BadCredential
        }
    );
}

#[test]
fn a_replayed_request_is_refused_on_the_same_and_a_new_connection() {
    let config = lock_config(LOBBY);
    let mut state = LockState::default();
    let mut phone = prepare(&config, NOW);
    let chunks = phone.request_fragments(23);
    let mut session = LockSession::new();
    let first = deliver(&mut session, &config, &mut state, &chunks, NOW).unwrap();
    assert_eq!(
        read(&mut phone, &first, 23).unwrap().unwrap().result,
        UnlockResult::Granted
    );
    let again = deliver(&mut session, &config, &mut state, &chunks, NOW + 1).unwrap();
    let elsewhere = deliver(
        &mut LockSession::new(),
        &config,
        &mut state,
        &chunks,
        NOW + 60,
    )
    .unwrap();
    for reply in [again, elsewhere] {
        let decision = reply.decision.unwrap();
        assert_eq!(decision.result, UnlockResult::Denied(DenyReason::Replayed));
        assert_eq!(
            decision.event,
            AuditEvent::UnlockDenied {
                credential_id: None,
                reason: DenyReason::Replayed
            }
        );
    }
    // Once stale, the same request is refused for its time instead.
    let late = deliver(
        &mut LockSession::new(),
        &config,
        &mut state,
        &chunks,
        NOW + 121,
    )
    .unwrap();
    assert_eq!(
        late.decision.unwrap().result,
        UnlockResult::Denied(DenyReason::ClockUntrusted)
    );
    assert!(state.replay.is_empty(), "stale entries are pruned");
}

#[test]
fn each_answer_to_a_replay_is_sealed_under_a_fresh_nonce() {
    let config = lock_config(LOBBY);
    let mut state = LockState::default();
    let phone = prepare(&config, NOW);
    let chunks = phone.request_fragments(247);
    let a = deliver(&mut LockSession::new(), &config, &mut state, &chunks, NOW).unwrap();
    let b = deliver(&mut LockSession::new(), &config, &mut state, &chunks, NOW).unwrap();
    // version (1) || nonce (12) || ciphertext
    assert_ne!(a.message.body[1..13], b.message.body[1..13]);
}

#[test]
fn a_full_replay_cache_refuses_rather_than_forgets() {
    let config = lock_config(LOBBY);
    let mut state = LockState {
        replay: ReplayCache::with_capacity(1),
        ..LockState::default()
    };
    assert_eq!(
        result_at(LOBBY, &mut state, NOW, NOW),
        UnlockResult::Granted
    );
    assert_eq!(
        result_at(LOBBY, &mut state, NOW, NOW),
        UnlockResult::Denied(DenyReason::Busy)
    );
    // The entry lives until the first request's time plus the tolerance.
    let later = NOW + i64::from(config.clock_tolerance) + 1;
    assert_eq!(
        result_at(LOBBY, &mut state, later, later),
        UnlockResult::Granted
    );
}

#[test]
fn a_flipped_byte_anywhere_in_the_request_never_grants() {
    let config = lock_config(LOBBY);
    let phone = prepare(&config, NOW);
    for mtu in [23u16, 247] {
        let chunks = phone.request_fragments(mtu);
        for (ci, chunk) in chunks.iter().enumerate() {
            for bi in 0..chunk.len() {
                for mask in [0x01u8, 0x80] {
                    let mut tampered = chunks.clone();
                    tampered[ci][bi] ^= mask;
                    let mut state = LockState::default();
                    let mut session = LockSession::new();
                    for c in &tampered {
                        if let Some(reply) =
                            session.on_fragment(&config, &mut state, c, NOW, &mut OsRng)
                        {
                            assert!(
                                !reply.decision.is_some_and(|d| d.result.is_granted()),
                                "mtu {mtu} chunk {ci} byte {bi} mask {mask:#x} granted"
                            );
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn a_flipped_byte_anywhere_in_the_response_is_caught_by_the_phone() {
    let config = lock_config(LOBBY);
    let mut state = LockState::default();
    // A phone's unlock ends with its first error, so each position gets its own exchange.
    let exchange = |state: &mut LockState| {
        let phone = prepare(&config, NOW);
        let reply = deliver(
            &mut LockSession::new(),
            &config,
            state,
            &phone.request_fragments(23),
            NOW,
        )
        .unwrap();
        (phone, reply.message.fragments(23))
    };
    let (_, chunks) = exchange(&mut state);
    for ci in 0..chunks.len() {
        for bi in 0..chunks[ci].len() {
            let (mut phone, mut tampered) = exchange(&mut state);
            tampered[ci][bi] ^= 0x01;
            let mut last = Ok(None);
            for c in &tampered {
                last = phone.on_fragment(c);
                if last.is_err() {
                    break;
                }
            }
            assert!(
                !matches!(last, Ok(Some(_))),
                "chunk {ci} byte {bi}: tampered response accepted"
            );
        }
    }
}

#[test]
fn the_phone_refuses_a_lock_with_another_static_key() {
    let genuine = lock_config(LOBBY);
    let impostor = LockConfig {
        key: LockKey::from_bytes(&[0x78; 32]).unwrap(),
        ..genuine.clone()
    };
    // The impostor cannot open the request at all.
    let mut phone = prepare(&genuine, NOW);
    let reply = deliver(
        &mut LockSession::new(),
        &impostor,
        &mut LockState::default(),
        &phone.request_fragments(247),
        NOW,
    )
    .unwrap();
    assert!(reply.decision.is_none());
    assert_eq!(
        read(&mut phone, &reply, 247),
        Err(PhoneError::Refused(ErrorCode::Undecryptable))
    );
    // Nor can it pass off a genuine answer it obtained in another session (its own "granted").
    let mut phone = prepare(&genuine, NOW);
    let own = prepare(&impostor, NOW);
    let granted = deliver(
        &mut LockSession::new(),
        &impostor,
        &mut LockState::default(),
        &own.request_fragments(247),
        NOW,
    )
    .unwrap();
    assert!(granted.decision.unwrap().result.is_granted());
    assert_eq!(read(&mut phone, &granted, 247), Err(PhoneError::NotGenuine));
}

#[test]
fn a_request_for_another_lock_id_is_refused_in_the_clear() {
    let config = lock_config(LOBBY);
    let other = LockConfig {
        lock_id: Id([0x11; 16]),
        ..config.clone()
    };
    let mut phone = prepare(&other, NOW);
    let reply = deliver(
        &mut LockSession::new(),
        &config,
        &mut LockState::default(),
        &phone.request_fragments(247),
        NOW,
    )
    .unwrap();
    assert_eq!(
        read(&mut phone, &reply, 247),
        Err(PhoneError::Refused(ErrorCode::WrongLock))
    );
}

#[test]
fn a_drifted_lock_clock_is_untrusted_beyond_the_tolerance() {
    let mut state = LockState::default();
    for (drift, expected) in [
        (121, UnlockResult::Denied(DenyReason::ClockUntrusted)),
        (-121, UnlockResult::Denied(DenyReason::ClockUntrusted)),
        (120, UnlockResult::Granted),
        (-119, UnlockResult::Granted),
    ] {
        let (outcome, _, _) = unlock(&lock_config(LOBBY), &mut state, NOW, NOW + drift, 247);
        assert_eq!(outcome.result, expected, "drift {drift}");
        assert_eq!(outcome.lock_time, NOW + drift);
    }
}

#[test]
fn the_phone_catches_a_wrong_signer_before_any_radio_work() {
    let config = lock_config(LOBBY);
    let t = || target(&config, signed_doc(&sample_access()));
    let (prep, to_sign) = UnlockPreparation::new(t(), NOW, &mut OsRng).unwrap();
    let stranger = SigningKey::from_bytes(&[0x66; 32].into()).unwrap();
    let signature: Signature = stranger.sign(&to_sign);
    assert!(matches!(
        prep.signed(&signature.to_bytes()),
        Err(PhoneError::WrongSigner)
    ));
    let (prep, _) = UnlockPreparation::new(t(), NOW, &mut OsRng).unwrap();
    assert!(matches!(
        prep.signed(&[1, 2, 3]),
        Err(PhoneError::SignatureEncoding)
    ));
    let mut bad_doc = signed_doc(&sample_access());
    bad_doc.truncate(10);
    assert!(matches!(
        UnlockPreparation::new(target(&config, bad_doc), NOW, &mut OsRng),
        Err(PhoneError::Document(_))
    ));
}

#[test]
fn keystore_signatures_in_der_and_high_s_are_accepted() {
    let config = lock_config(LOBBY);
    let mut state = LockState::default();
    for high_s in [false, true] {
        let (prep, to_sign) = UnlockPreparation::new(
            target(&config, signed_doc(&sample_access())),
            NOW,
            &mut OsRng,
        )
        .unwrap();
        let low: Signature = device().sign(&to_sign);
        let sig = if high_s {
            Signature::from_scalars(low.r().to_bytes(), (-*low.s()).to_bytes()).unwrap()
        } else {
            low
        };
        let mut phone = prep.signed(sig.to_der().as_bytes()).unwrap();
        let reply = deliver(
            &mut LockSession::new(),
            &config,
            &mut state,
            &phone.request_fragments(185),
            NOW,
        )
        .unwrap();
        assert!(read(&mut phone, &reply, 185)
            .unwrap()
            .unwrap()
            .result
            .is_granted());
    }
}

#[test]
fn framing_faults_get_an_error_frame_and_the_session_recovers() {
    let config = lock_config(LOBBY);
    let mut state = LockState::default();
    let mut phone = prepare(&config, NOW);
    let chunks = phone.request_fragments(23);
    let mut session = LockSession::new();
    let mut rng = OsRng;
    assert!(session
        .on_fragment(&config, &mut state, &chunks[0], NOW, &mut rng)
        .is_none());
    // A missing chunk (1) shows as chunk 2 out of sequence.
    let reply = session
        .on_fragment(&config, &mut state, &chunks[2], NOW, &mut rng)
        .unwrap();
    assert_eq!(reply.message, ErrorCode::Framing.message());
    assert!(reply.decision.is_none());
    // The next complete request on the same connection is served.
    let reply = deliver(&mut session, &config, &mut state, &chunks, NOW).unwrap();
    assert!(read(&mut phone, &reply, 23)
        .unwrap()
        .unwrap()
        .result
        .is_granted());
    // A message of another type.
    let other = Message::new(0x42, vec![0; 10]).unwrap();
    assert_eq!(
        respond(&config, &mut state, &other, NOW, &mut rng).message,
        ErrorCode::UnknownMessage.message()
    );
}

#[test]
fn oversized_frames_and_chunk_floods_are_refused() {
    let config = lock_config(LOBBY);
    let mut state = LockState::default();
    let mut session = LockSession::new();
    let mut rng = OsRng;
    let len = MAX_BODY + 1;
    let first = [0x80, kind::UNLOCK_REQUEST, (len >> 8) as u8, len as u8];
    let reply = session
        .on_fragment(&config, &mut state, &first, NOW, &mut rng)
        .unwrap();
    assert_eq!(reply.message, ErrorCode::Framing.message());
    // A message announcing the largest body, then far more chunks than it can hold: the
    // session takes the announced bytes and refuses the rest.
    let first = [
        0x80,
        kind::UNLOCK_REQUEST,
        (MAX_BODY >> 8) as u8,
        MAX_BODY as u8,
    ];
    assert!(session
        .on_fragment(&config, &mut state, &first, NOW, &mut rng)
        .is_none());
    let mut answered = 0;
    for i in 1..2000u32 {
        let mut chunk = vec![(i % 128) as u8];
        chunk.extend_from_slice(&[0xee; 19]);
        if let Some(reply) = session.on_fragment(&config, &mut state, &chunk, NOW, &mut rng) {
            assert!(reply.decision.is_none());
            answered += 1;
        }
    }
    // The full body opens as nothing; everything after it is a framing error.
    assert!(answered > 1000);
}

#[test]
fn pending_audit_counts_every_decision() {
    let config = lock_config(LOBBY);
    let mut state = LockState::default();
    for _ in 0..10 {
        state
            .audit
            .record(&config.key, NOW, AuditEvent::SyncApplied { iteration: 1 });
    }
    let (outcome, _, event) = unlock(&config, &mut state, NOW, NOW + 500, 247);
    assert_eq!(
        outcome.result,
        UnlockResult::Denied(DenyReason::ClockUntrusted)
    );
    assert_eq!(outcome.pending_audit, 11);
    assert_eq!(state.audit.pending(), 11);
    // The decision's record is the newest, signed by the lock, at the lock's time.
    let last = state.audit.records().last().unwrap().to_vec();
    let record = door_protocol::verify_audit(&last, config.key.public()).unwrap();
    assert_eq!(
        (record.seq, record.at, record.event),
        (10, NOW + 500, event)
    );
}

#[test]
fn a_prepared_unlock_reads_one_answer() {
    let config = lock_config(LOBBY);
    let mut phone = prepare(&config, NOW);
    let reply = deliver(
        &mut LockSession::new(),
        &config,
        &mut LockState::default(),
        &phone.request_fragments(247),
        NOW,
    )
    .unwrap();
    assert!(read(&mut phone, &reply, 247).unwrap().is_some());
    assert_eq!(read(&mut phone, &reply, 247), Err(PhoneError::Finished));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_chunks_never_panic_the_lock(chunks in prop::collection::vec(
        prop::collection::vec(any::<u8>(), 0..300), 0..20)) {
        let config = lock_config(LOBBY);
        let mut state = LockState::default();
        let mut session = LockSession::new();
        for c in &chunks {
            if let Some(reply) = session.on_fragment(&config, &mut state, c, NOW, &mut OsRng) {
                prop_assert!(!reply.decision.is_some_and(|d| d.result.is_granted()));
            }
        }
    }

    #[test]
    fn random_well_framed_requests_never_panic_the_lock(body in prop::collection::vec(any::<u8>(), 0..600)) {
        let config = lock_config(LOBBY);
        let mut state = LockState::default();
        let mut body = body;
        // Half the time, with this lock's header, so the ECDH and AEAD paths run too.
        if body.len() > 60 && body[0] & 1 == 0 {
            body[0] = UNLOCK_VERSION;
            body[1..17].copy_from_slice(&LOCK_ID.0);
            body[17] = 2 + (body[18] & 1);
        }
        let message = Message::new(kind::UNLOCK_REQUEST, body).unwrap();
        let reply = respond(&config, &mut state, &message, NOW, &mut OsRng);
        prop_assert!(reply.decision.is_none());
    }

    #[test]
    fn random_chunks_never_panic_the_phone(chunks in prop::collection::vec(
        prop::collection::vec(any::<u8>(), 0..300), 0..20)) {
        let mut phone = prepare(&lock_config(LOBBY), NOW);
        for c in &chunks {
            if let Ok(Some(_)) = phone.on_fragment(c) {
                prop_assert!(false, "random bytes authenticated");
            }
        }
    }
}
