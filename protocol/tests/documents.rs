//! Access and revocation documents: round trips, every verification error, tamper evidence and
//! the revocation list's iteration rules.

mod common;

use ciborium::Value;
use common::*;
use door_protocol::cose::{self, OpenError};
use door_protocol::revocation::MAX_REVOCATION_ENTRIES;
use door_protocol::{
    decode_access, verify_access, verify_revocation, AccessError, Decision, Id, IssuerKey,
    IssuerKeys, Malformed, Problem, RevocationDocument, RevocationEntry, RevocationError,
    RevocationList, RevocationMode, Schedule,
};
use door_protocol::{DoorGrant, Weekdays, Window};

const MID_YEAR: i64 = MONDAY_0800_NY;

fn signed_access() -> Vec<u8> {
    sample_access().sign(&issuer()).unwrap()
}

fn verify_at(bytes: &[u8], door: Id, now: i64) -> Result<(), AccessError> {
    verify_access(bytes, &issuer_keys(), door, now, &RevocationList::new()).map(|_| ())
}

/// Decodes the sample payload with a generic CBOR library, lets `edit` change its top-level
/// map, and signs the result as an access document: how the tests build payloads that our
/// own encoder refuses to produce.
fn signed_access_with(edit: impl FnOnce(&mut Vec<(Value, Value)>)) -> Vec<u8> {
    let payload = sample_access().to_cbor().unwrap();
    let mut value: Value = ciborium::de::from_reader(payload.as_slice()).unwrap();
    edit(value.as_map_mut().unwrap());
    let mut bytes = Vec::new();
    ciborium::ser::into_writer(&value, &mut bytes).unwrap();
    cose::sign1(&issuer(), door_protocol::access::ACCESS_CONTENT_TYPE, bytes).unwrap()
}

fn malformed(field: &'static str, problem: Problem) -> AccessError {
    AccessError::Malformed(Malformed::new(field, problem))
}

fn entry_mut(map: &mut [(Value, Value)], key: u64) -> &mut Value {
    &mut map
        .iter_mut()
        .find(|(k, _)| *k == Value::from(key))
        .unwrap()
        .1
}

#[test]
fn access_document_round_trips() {
    let bytes = signed_access();
    let verified = decode_access(&bytes, &issuer_keys()).unwrap();
    assert_eq!(*verified.document(), sample_access());
    assert_eq!(verified.kid(), issuer().kid());
    // Signing is deterministic (RFC 6979): the same document gives the same bytes.
    assert_eq!(signed_access(), bytes);
}

#[test]
fn verify_access_accepts_a_granted_door_within_validity() {
    let bytes = signed_access();
    assert_eq!(verify_at(&bytes, LOBBY, NOT_BEFORE), Ok(()));
    assert_eq!(verify_at(&bytes, POOL, NOT_AFTER - 1), Ok(()));
}

#[test]
fn bad_signature_when_the_signature_is_altered() {
    let mut bytes = signed_access();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    assert_eq!(
        verify_at(&bytes, LOBBY, MID_YEAR),
        Err(AccessError::BadSignature)
    );
}

#[test]
fn bad_signature_when_the_payload_is_swapped() {
    // Another valid payload in the frame of the first: same length, other credential.
    let bytes = signed_access();
    let mut other = sample_access();
    other.credential_id = Id([0xee; 16]);
    let other_payload = other.to_cbor().unwrap();
    let payload = sample_access().to_cbor().unwrap();
    let at = bytes
        .windows(payload.len())
        .position(|w| w == payload.as_slice())
        .unwrap();
    let mut forged = bytes.clone();
    forged[at..at + payload.len()].copy_from_slice(&other_payload);
    assert_eq!(
        verify_at(&forged, LOBBY, MID_YEAR),
        Err(AccessError::BadSignature)
    );
}

#[test]
fn bad_signature_when_signed_by_another_key_with_the_same_kid() {
    // A signature from a key the verifier does not know, framed with the trusted kid.
    let impostor = IssuerKey::from_bytes(&[0x55; 32]).unwrap();
    let forged_frame = sample_access().sign(&impostor).unwrap();
    let genuine = signed_access();
    let kid_at = genuine
        .windows(8)
        .position(|w| w == issuer().kid().0)
        .unwrap();
    let mut forged = forged_frame.clone();
    forged[kid_at..kid_at + 8].copy_from_slice(&issuer().kid().0);
    assert_eq!(
        verify_at(&forged, LOBBY, MID_YEAR),
        Err(AccessError::BadSignature)
    );
}

#[test]
fn unknown_issuer_key() {
    let other = IssuerKey::from_bytes(&[0x66; 32]).unwrap();
    let keys = IssuerKeys::single(*other.verifying());
    let err = verify_access(
        &signed_access(),
        &keys,
        LOBBY,
        MID_YEAR,
        &RevocationList::new(),
    );
    assert_eq!(
        err.unwrap_err(),
        AccessError::UnknownIssuerKey {
            kid: issuer().kid()
        }
    );
}

#[test]
fn rotated_keys_both_verify() {
    let old = issuer();
    let new = IssuerKey::from_bytes(&[0x77; 32]).unwrap();
    let mut keys = IssuerKeys::single(*old.verifying());
    keys.insert(*new.verifying()).unwrap();
    for key in [&old, &new] {
        let bytes = sample_access().sign(key).unwrap();
        assert_eq!(decode_access(&bytes, &keys).unwrap().kid(), key.kid());
    }
}

#[test]
fn wrong_door() {
    assert_eq!(
        verify_at(&signed_access(), GARAGE, MID_YEAR),
        Err(AccessError::WrongDoor)
    );
}

#[test]
fn not_yet_valid() {
    assert_eq!(
        verify_at(&signed_access(), LOBBY, NOT_BEFORE - 1),
        Err(AccessError::NotYetValid { from: NOT_BEFORE })
    );
}

#[test]
fn expired() {
    assert_eq!(
        verify_at(&signed_access(), LOBBY, NOT_AFTER),
        Err(AccessError::Expired { at: NOT_AFTER })
    );
}

#[test]
fn revoked_until_the_entry_expires() {
    let until = MID_YEAR + 3600;
    let doc = RevocationDocument {
        version: 1,
        iteration: 1,
        mode: RevocationMode::Overwrite,
        entries: vec![RevocationEntry {
            credential_id: CREDENTIAL,
            expires_at: Some(until),
        }],
        issued_at: MID_YEAR,
    };
    let mut list = RevocationList::new();
    list.apply(&verify_revocation(&doc.sign(&issuer()).unwrap(), &issuer_keys()).unwrap())
        .unwrap();
    let bytes = signed_access();
    let at = |now| verify_access(&bytes, &issuer_keys(), LOBBY, now, &list).map(|_| ());
    assert_eq!(at(MID_YEAR), Err(AccessError::Revoked));
    assert_eq!(at(until - 1), Err(AccessError::Revoked));
    assert_eq!(at(until), Ok(()));
}

#[test]
fn malformed_frames() {
    let bytes = signed_access();
    let keys = issuer_keys();
    let err = |b: &[u8]| decode_access(b, &keys).unwrap_err();
    assert_eq!(err(&[]), malformed("cose.tag", Problem::Truncated));
    assert_eq!(
        err(&bytes[..bytes.len() - 1]),
        malformed("cose.signature", Problem::Truncated)
    );
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert_eq!(err(&trailing), malformed("cose", Problem::TrailingBytes));
    // Untagged: the frame must carry tag 18.
    assert_eq!(err(&bytes[1..]), malformed("cose.tag", Problem::WrongType));
    // A revocation document is not an access document, whatever its signature.
    let revocation = sample_revocation().sign(&issuer()).unwrap();
    assert_eq!(
        err(&revocation),
        malformed("protected.content_type", Problem::Unsupported)
    );
    assert_eq!(
        err(&vec![0; cose::MAX_DOCUMENT_SIZE + 1]),
        malformed("document", Problem::TooLarge)
    );
}

#[test]
fn malformed_payloads_name_the_field() {
    let keys = issuer_keys();
    let err = |b: Vec<u8>| decode_access(&b, &keys).unwrap_err();

    let version = signed_access_with(|m| *entry_mut(m, 0) = Value::from(2));
    assert_eq!(err(version), malformed("version", Problem::Unsupported));

    let unknown = signed_access_with(|m| m.push((Value::from(11), Value::from(0))));
    assert_eq!(
        err(unknown),
        malformed("payload", Problem::UnknownKey { key: 11 })
    );

    let missing = signed_access_with(|m| m.retain(|(k, _)| *k != Value::from(10)));
    assert_eq!(
        err(missing),
        malformed("payload", Problem::MissingKey { key: 10 })
    );

    let unsorted = signed_access_with(|m| m.swap(0, 1));
    assert_eq!(err(unsorted), malformed("payload", Problem::NonCanonical));

    let wrong_type = signed_access_with(|m| *entry_mut(m, 9) = Value::from(1));
    assert_eq!(err(wrong_type), malformed("may_share", Problem::WrongType));

    let short_id = signed_access_with(|m| *entry_mut(m, 1) = Value::Bytes(vec![1; 15]));
    assert_eq!(
        err(short_id),
        malformed("credential_id", Problem::OutOfRange)
    );

    let mut bad_point = [0xff; 33];
    bad_point[0] = 2;
    let device = signed_access_with(|m| *entry_mut(m, 3) = Value::Bytes(bad_point.to_vec()));
    assert_eq!(err(device), malformed("device_key", Problem::NotOnCurve));

    let empty_validity = signed_access_with(|m| *entry_mut(m, 6) = Value::from(NOT_BEFORE));
    assert_eq!(
        err(empty_validity),
        malformed("not_after", Problem::OutOfRange)
    );

    // A second grant for a door is no error (one per key that gives it): see
    // several_grants_for_one_door_are_decided_together.
    let second_grant = signed_access_with(|m| {
        let grants = entry_mut(m, 4).as_array_mut().unwrap();
        let first = grants[0].clone();
        grants.push(first);
    });
    let verified = decode_access(&second_grant, &keys).unwrap();
    assert_eq!(verified.document().grants_for(LOBBY).count(), 2);

    let bad_window = signed_access_with(|m| {
        let grant = &mut entry_mut(m, 4).as_array_mut().unwrap()[1];
        let schedule = entry_mut(grant.as_map_mut().unwrap(), 1);
        let window = &mut entry_mut(schedule.as_map_mut().unwrap(), 0)
            .as_array_mut()
            .unwrap()[0];
        window.as_array_mut().unwrap()[1] = Value::from(1440);
    });
    assert_eq!(
        err(bad_window),
        malformed("grants.schedule.windows.start_minute", Problem::OutOfRange)
    );

    let unsorted_zone = signed_access_with(|m| {
        let zone = entry_mut(m, 10).as_map_mut().unwrap();
        entry_mut(zone, 1).as_array_mut().unwrap().reverse();
    });
    assert_eq!(
        err(unsorted_zone),
        malformed("zone.transitions.at", Problem::Unordered)
    );
}

#[test]
fn non_canonical_integers_are_refused_even_when_signed() {
    // Version 1 written as 0x18 0x01 instead of 0x01.
    let mut payload = sample_access().to_cbor().unwrap();
    assert_eq!(&payload[..3], [0xab, 0x00, 0x01]);
    payload.splice(2..3, [0x18, 0x01]);
    let bytes = cose::sign1(
        &issuer(),
        door_protocol::access::ACCESS_CONTENT_TYPE,
        payload,
    )
    .unwrap();
    assert_eq!(
        decode_access(&bytes, &issuer_keys()).unwrap_err(),
        malformed("version", Problem::NonCanonical)
    );
}

#[test]
fn signing_refuses_documents_verifiers_would_refuse() {
    let mut doc = sample_access();
    doc.grants = (0..65u8)
        .map(|i| door_protocol::DoorGrant {
            door_id: Id([i; 16]),
            schedule: Schedule::always(),
            doorcode: false,
        })
        .collect();
    assert_eq!(
        doc.sign(&issuer()).unwrap_err(),
        Malformed::new("grants", Problem::TooMany)
    );
    let mut doc = sample_access();
    doc.not_after = doc.not_before;
    assert_eq!(
        doc.sign(&issuer()).unwrap_err(),
        Malformed::new("not_after", Problem::OutOfRange)
    );
}

#[test]
fn a_flipped_byte_anywhere_never_verifies() {
    let bytes = signed_access();
    let keys = issuer_keys();
    for i in 0..bytes.len() {
        for mask in [0x01, 0x80] {
            let mut b = bytes.clone();
            b[i] ^= mask;
            assert!(
                decode_access(&b, &keys).is_err(),
                "byte {i} ^ {mask:#x} still verifies"
            );
        }
    }
}

#[test]
fn decision_combines_schedule_zone_and_validity() {
    let verified = decode_access(&signed_access(), &issuer_keys()).unwrap();
    // Lobby is 24/7: open until the document ends.
    assert_eq!(
        verified.decision(LOBBY, MID_YEAR),
        Some(Decision::Allowed {
            until: Some(NOT_AFTER)
        })
    );
    // Pool at Monday 08:00 New York (EDT): opens at 09:00, closes at 17:00.
    assert_eq!(
        verified.decision(POOL, MONDAY_0800_NY),
        Some(Decision::OutOfSchedule {
            next_allowed: Some(MONDAY_0800_NY + 3600)
        })
    );
    assert_eq!(
        verified.decision(POOL, MONDAY_0800_NY + 3600),
        Some(Decision::Allowed {
            until: Some(MONDAY_0800_NY + 9 * 3600)
        })
    );
    // After the fall-back, 09:00 New York is 14:00Z: Monday 2026-11-02.
    let monday_after_dst = 1_793_973_600; // 2026-11-02T14:00Z
    assert_eq!(
        verified.decision(POOL, monday_after_dst - 1),
        Some(Decision::OutOfSchedule {
            next_allowed: Some(monday_after_dst)
        })
    );
    assert_eq!(
        verified.decision(LOBBY, NOT_BEFORE - 1),
        Some(Decision::NotYetValid { from: NOT_BEFORE })
    );
    assert_eq!(
        verified.decision(LOBBY, NOT_AFTER),
        Some(Decision::Expired { at: NOT_AFTER })
    );
    assert_eq!(verified.decision(GARAGE, MID_YEAR), None);
}

#[test]
fn decision_narrows_a_grant_to_the_document_validity() {
    let mut doc = sample_access();
    doc.grants[0].schedule.not_before = Some(NOT_BEFORE - 86_400);
    doc.grants[0].schedule.not_after = Some(NOT_AFTER + 86_400);
    doc.grants[1].schedule.not_after = Some(MID_YEAR);
    let verified = decode_access(&doc.sign(&issuer()).unwrap(), &issuer_keys()).unwrap();
    assert_eq!(
        verified.decision(LOBBY, NOT_BEFORE - 1),
        Some(Decision::NotYetValid { from: NOT_BEFORE })
    );
    assert_eq!(
        verified.decision(LOBBY, MID_YEAR),
        Some(Decision::Allowed {
            until: Some(NOT_AFTER)
        })
    );
    // The pool grant ends before the document does.
    assert_eq!(
        verified.decision(POOL, MID_YEAR),
        Some(Decision::Expired { at: MID_YEAR })
    );
}

#[test]
fn several_grants_for_one_door_are_decided_together() {
    // Two keys give the pool: weekdays 09:00-17:00 and weekdays 16:00-20:00 (New York).
    let mut doc = sample_access();
    doc.grants.push(DoorGrant {
        door_id: POOL,
        schedule: Schedule {
            windows: vec![Window {
                days: Weekdays::MON_FRI,
                start_minute: 16 * 60,
                end_minute: 20 * 60,
            }],
            not_before: None,
            not_after: None,
        },
        doorcode: false,
    });
    let verified = decode_access(&doc.sign(&issuer()).unwrap(), &issuer_keys()).unwrap();
    let document = verified.document();
    assert_eq!(document.grants_for(POOL).count(), 2);
    assert!(document.has_door(POOL) && document.has_door(LOBBY) && !document.has_door(GARAGE));
    assert_eq!(
        verify_at(&doc.sign(&issuer()).unwrap(), POOL, MID_YEAR),
        Ok(())
    );
    // Monday 08:00: the earliest opening of the two.
    assert_eq!(
        verified.decision(POOL, MONDAY_0800_NY),
        Some(Decision::OutOfSchedule {
            next_allowed: Some(MONDAY_0800_NY + 3600)
        })
    );
    // Open from 09:00 until the second key's window ends: 20:00, one run.
    for t in [MONDAY_0800_NY + 3600, MONDAY_0800_NY + 8 * 3600 + 1800] {
        assert_eq!(
            verified.decision(POOL, t),
            Some(Decision::Allowed {
                until: Some(MONDAY_0800_NY + 12 * 3600)
            })
        );
    }
    // And never wider than the two: closed at 20:00 until Tuesday 09:00.
    assert_eq!(
        verified.decision(POOL, MONDAY_0800_NY + 12 * 3600),
        Some(Decision::OutOfSchedule {
            next_allowed: Some(MONDAY_0800_NY + 25 * 3600)
        })
    );
    // The lobby keeps its single grant's answer.
    assert_eq!(
        verified.decision(LOBBY, MID_YEAR),
        Some(Decision::Allowed {
            until: Some(NOT_AFTER)
        })
    );
}

fn revocation(iteration: u64, mode: RevocationMode, entries: Vec<RevocationEntry>) -> Vec<u8> {
    RevocationDocument {
        version: 1,
        iteration,
        mode,
        entries,
        issued_at: ISSUED_AT,
    }
    .sign(&issuer())
    .unwrap()
}

fn apply(list: &mut RevocationList, bytes: &[u8]) -> Result<(), RevocationError> {
    list.apply(&verify_revocation(bytes, &issuer_keys())?)
}

fn revoked(id: u8, expires_at: Option<i64>) -> RevocationEntry {
    RevocationEntry {
        credential_id: Id([id; 16]),
        expires_at,
    }
}

#[test]
fn revocation_document_round_trips() {
    let bytes = sample_revocation().sign(&issuer()).unwrap();
    let verified = verify_revocation(&bytes, &issuer_keys()).unwrap();
    assert_eq!(*verified.document(), sample_revocation());
    assert_eq!(verified.kid(), issuer().kid());
}

#[test]
fn revocation_verification_errors() {
    let bytes = sample_revocation().sign(&issuer()).unwrap();
    let other = IssuerKeys::single(*IssuerKey::from_bytes(&[0x66; 32]).unwrap().verifying());
    assert_eq!(
        verify_revocation(&bytes, &other).unwrap_err(),
        RevocationError::UnknownIssuerKey {
            kid: issuer().kid()
        }
    );
    let mut flipped = bytes.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    assert_eq!(
        verify_revocation(&flipped, &issuer_keys()).unwrap_err(),
        RevocationError::BadSignature
    );
    let access = signed_access();
    assert_eq!(
        verify_revocation(&access, &issuer_keys()).unwrap_err(),
        RevocationError::Malformed(Malformed::new(
            "protected.content_type",
            Problem::Unsupported
        ))
    );
    // Mode 2 does not exist.
    let mut payload = sample_revocation().to_cbor().unwrap();
    assert_eq!(&payload[..7], [0xa5, 0x00, 0x01, 0x01, 0x07, 0x02, 0x01]);
    payload[6] = 0x02;
    let bytes = cose::sign1(
        &issuer(),
        door_protocol::revocation::REVOCATION_CONTENT_TYPE,
        payload,
    )
    .unwrap();
    assert_eq!(
        verify_revocation(&bytes, &issuer_keys()).unwrap_err(),
        RevocationError::Malformed(Malformed::new("mode", Problem::OutOfRange))
    );
}

#[test]
fn revocation_documents_refuse_duplicates_and_overflow() {
    let mut doc = sample_revocation();
    doc.entries.push(doc.entries[0]);
    assert_eq!(
        doc.sign(&issuer()).unwrap_err(),
        Malformed::new("entries.credential_id", Problem::Duplicate)
    );
    let mut doc = sample_revocation();
    doc.entries = (0..=MAX_REVOCATION_ENTRIES as u32)
        .map(|i| {
            let mut id = [0u8; 16];
            id[..4].copy_from_slice(&i.to_be_bytes());
            RevocationEntry {
                credential_id: Id(id),
                expires_at: Some(NOT_AFTER),
            }
        })
        .collect();
    assert_eq!(
        doc.sign(&issuer()).unwrap_err(),
        Malformed::new("entries", Problem::TooMany)
    );
    // The largest document fits the size cap.
    doc.entries.pop();
    for e in &mut doc.entries {
        e.expires_at = Some(i64::MIN);
    }
    doc.iteration = u64::MAX;
    assert!(doc.sign(&issuer()).unwrap().len() <= cose::MAX_DOCUMENT_SIZE);
}

#[test]
fn stale_iterations_are_refused() {
    let mut list = RevocationList::new();
    assert_eq!(
        apply(&mut list, &revocation(0, RevocationMode::Update, vec![])),
        Err(RevocationError::Stale { have: 0, got: 0 })
    );
    apply(
        &mut list,
        &revocation(7, RevocationMode::Update, vec![revoked(1, None)]),
    )
    .unwrap();
    assert_eq!(list.iteration(), 7);
    for got in [7, 6] {
        assert_eq!(
            apply(
                &mut list,
                &revocation(got, RevocationMode::Overwrite, vec![])
            ),
            Err(RevocationError::Stale { have: 7, got })
        );
    }
    // A refused document changes nothing.
    assert!(list.is_revoked(Id([1; 16]), 0));
    assert_eq!(list.iteration(), 7);
}

#[test]
fn overwrite_replaces_and_update_adds() {
    let mut list = RevocationList::new();
    apply(
        &mut list,
        &revocation(
            1,
            RevocationMode::Update,
            vec![revoked(1, None), revoked(2, None)],
        ),
    )
    .unwrap();
    apply(
        &mut list,
        &revocation(
            2,
            RevocationMode::Update,
            vec![revoked(3, None), revoked(2, Some(100))],
        ),
    )
    .unwrap();
    assert_eq!(list.len(), 3);
    assert!(list.is_revoked(Id([2; 16]), 99));
    assert!(
        !list.is_revoked(Id([2; 16]), 100),
        "an update replaces the entry's expiry"
    );
    apply(
        &mut list,
        &revocation(5, RevocationMode::Overwrite, vec![revoked(4, None)]),
    )
    .unwrap();
    assert_eq!(list.entries(), [revoked(4, None)]);
    assert!(!list.is_revoked(Id([1; 16]), 0));
    assert!(list.is_revoked(Id([4; 16]), i64::MAX));
}

#[test]
fn expired_entries_stop_counting_and_prune_drops_them() {
    let mut list = RevocationList::new();
    apply(
        &mut list,
        &revocation(
            1,
            RevocationMode::Overwrite,
            vec![revoked(1, Some(1000)), revoked(2, None)],
        ),
    )
    .unwrap();
    assert!(list.is_revoked(Id([1; 16]), 999));
    assert!(!list.is_revoked(Id([1; 16]), 1000));
    list.prune(999);
    assert_eq!(list.len(), 2);
    list.prune(1000);
    assert_eq!(list.entries(), [revoked(2, None)]);
}

#[test]
fn the_list_is_bounded_and_a_refused_update_changes_nothing() {
    let batch = |iteration: u64, first: u32, n: u32| {
        let entries = (first..first + n)
            .map(|i| {
                let mut id = [0u8; 16];
                id[..4].copy_from_slice(&i.to_be_bytes());
                RevocationEntry {
                    credential_id: Id(id),
                    expires_at: Some(1000),
                }
            })
            .collect();
        revocation(iteration, RevocationMode::Update, entries)
    };
    let mut list = RevocationList::new();
    apply(&mut list, &batch(1, 0, 512)).unwrap();
    apply(&mut list, &batch(2, 512, 512)).unwrap();
    assert_eq!(list.len(), RevocationList::CAPACITY);
    let before = list.clone();
    assert_eq!(
        apply(&mut list, &batch(3, 1024, 1)),
        Err(RevocationError::Full {
            capacity: RevocationList::CAPACITY
        })
    );
    assert_eq!(list, before);
    // Re-listing credentials already present needs no room.
    apply(&mut list, &batch(3, 0, 2)).unwrap();
    // Pruning makes room.
    list.prune(1000);
    apply(&mut list, &batch(4, 1024, 1)).unwrap();
    assert_eq!(list.len(), 1);
}

#[test]
fn restore_rebuilds_persisted_state() {
    let mut list = RevocationList::new();
    apply(&mut list, &sample_revocation().sign(&issuer()).unwrap()).unwrap();
    let restored = RevocationList::restore(list.iteration(), list.entries().to_vec()).unwrap();
    assert_eq!(restored, list);
}

#[test]
fn open_errors_convert_to_document_errors() {
    let e = OpenError::UnknownIssuerKey {
        kid: issuer().kid(),
    };
    assert_eq!(
        AccessError::from(e),
        AccessError::UnknownIssuerKey {
            kid: issuer().kid()
        }
    );
    assert_eq!(
        RevocationError::from(e),
        RevocationError::UnknownIssuerKey {
            kid: issuer().kid()
        }
    );
}
