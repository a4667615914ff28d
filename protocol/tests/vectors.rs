//! The "Test vectors" section of docs/PROTOCOL.md: regenerated from fixed keys and compared
//! byte for byte (`UPDATE_VECTORS=1` rewrites it), then checked with coset and p256 alone; the
//! unlock exchange is re-derived with p256, hkdf and aes-gcm from the specification.

mod common;

use std::fmt::Write as _;
use std::path::PathBuf;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::Aes256Gcm;
use ciborium::Value;
use common::*;
use coset::{iana, CborSerializable, TaggedCborSerializable};
use door_protocol::wire::MAX_ATT_MTU;
use door_protocol::{
    decode_access, open_bundle, verify_audit, verify_revocation, verify_signed_time, AuditEpoch,
    AuditEvent, AuditRecord, FirmwareVersion, IssuerKey, LockConfig, LockHealth, LockKey,
    LockSession, LockState, SignedTime, UnlockPreparation, UnlockTarget,
};
use hkdf::Hkdf;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::signature::Verifier;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use sha2::{Digest, Sha256};

const BEGIN: &str = "<!-- vectors:begin -->\n";
const END: &str = "<!-- vectors:end -->\n";

fn protocol_md() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/PROTOCOL.md")
}

/// Hex, 32 bytes to a line, in a fenced block.
fn hex_block(out: &mut String, label: &str, bytes: &[u8]) {
    writeln!(out, "{label} ({} bytes):\n\n```text", bytes.len()).unwrap();
    for line in bytes.chunks(32) {
        writeln!(out, "{}", hex::encode(line)).unwrap();
    }
    out.push_str("```\n\n");
}

/// RFC 8949 §8 diagnostic notation on one line.
fn inline(v: &Value) -> String {
    let join = |items: Vec<String>| items.join(", ");
    match v {
        Value::Integer(i) => i128::from(*i).to_string(),
        Value::Bytes(b) => format!("h'{}'", hex::encode(b)),
        Value::Text(t) => format!("{t:?}"),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".to_string(),
        Value::Tag(t, inner) => format!("{t}({})", inline(inner)),
        Value::Array(items) => format!("[{}]", join(items.iter().map(inline).collect())),
        Value::Map(entries) => format!(
            "{{{}}}",
            join(
                entries
                    .iter()
                    .map(|(k, v)| format!("{}: {}", inline(k), inline(v)))
                    .collect()
            )
        ),
        other => panic!("payloads hold no {other:?}"),
    }
}

/// Diagnostic notation, broken over lines where a container does not fit in 72 columns.
fn diagnostic(v: &Value, indent: usize) -> String {
    let one_line = inline(v);
    if indent * 2 + one_line.len() <= 72 {
        return one_line;
    }
    let pad = "  ".repeat(indent + 1);
    let (open, close, items): (&str, &str, Vec<String>) = match v {
        Value::Array(items) => (
            "[",
            "]",
            items
                .iter()
                .map(|item| diagnostic(item, indent + 1))
                .collect(),
        ),
        Value::Map(entries) => (
            "{",
            "}",
            entries
                .iter()
                .map(|(k, v)| format!("{}: {}", inline(k), diagnostic(v, indent + 1)))
                .collect(),
        ),
        _ => return one_line,
    };
    let body: Vec<String> = items.iter().map(|item| format!("{pad}{item}")).collect();
    format!(
        "{open}\n{}\n{}{close}",
        body.join(",\n"),
        "  ".repeat(indent)
    )
}

fn diagnostic_block(out: &mut String, label: &str, cbor: &[u8]) {
    let value: Value = ciborium::de::from_reader(cbor).unwrap();
    writeln!(
        out,
        "{label}:\n\n```cbor-diag\n{}\n```\n",
        diagnostic(&value, 0)
    )
    .unwrap();
}

fn document(out: &mut String, payload: &[u8], signed: &[u8]) {
    diagnostic_block(out, "Payload, diagnostic notation", payload);
    hex_block(out, "Payload", payload);
    let frame = coset::CoseSign1::from_tagged_slice(signed).unwrap();
    hex_block(
        out,
        "Protected header",
        frame.protected.original_data.as_ref().unwrap(),
    );
    hex_block(
        out,
        "Sig_structure, the signing input",
        &frame.tbs_data(&[]),
    );
    hex_block(out, "COSE_Sign1", signed);
}

/// The section between the markers, as the code produces it.
fn render() -> String {
    let issuer = issuer();
    let mut out = String::from("\n");
    out.push_str("### Issuer key\n\n");
    hex_block(&mut out, "Private scalar", &ISSUER_SCALAR);
    hex_block(
        &mut out,
        "Public key, SEC1 compressed",
        &issuer.verifying().to_sec1_compressed(),
    );
    out.push_str("The kid is the first 8 bytes of SHA-256 over the compressed public key.\n\n");
    hex_block(&mut out, "kid", &issuer.kid().0);
    out.push_str("### Access document\n\n");
    out.push_str(
        "Credential `c1…c1` of person `a1…a1`, device key from the scalar 0x21, 0x22, …, 0x40; \
         valid for 2026 in New York (2026-01-01T05:00Z to 2027-01-01T05:00Z); \
         lobby `d1…d1` around the clock with a doorcode, pool `d2…d2` Monday to Friday \
         09:00-17:00; zone EST (-18000 s), EDT (-14400 s) from 2026-03-08T07:00Z, EST again \
         from 2026-11-01T06:00Z; access iteration 3; may share.\n\n",
    );
    let access = sample_access();
    document(
        &mut out,
        &access.to_cbor().unwrap(),
        &access.sign(&issuer).unwrap(),
    );
    out.push_str("### Revocation document\n\n");
    out.push_str(
        "Iteration 7, update: credential `c1…c1` revoked until 2027-01-01T05:00Z, \
         credential `c2…c2` until overwritten.\n\n",
    );
    let revocation = sample_revocation();
    document(
        &mut out,
        &revocation.to_cbor().unwrap(),
        &revocation.sign(&issuer).unwrap(),
    );
    out.push_str("### BLE unlock\n\n");
    out.push_str(
        "Lock `10…10` of the lobby with the static key from the scalar 0x41, 0x42, …, 0x60. \
         The phone presents the access document above at 2026-06-15T12:00Z (t = 1781524800, \
         Monday 08:00 in New York) with the ephemeral scalar 0x61, 0x62, …, 0x80 and an \
         RFC 6979 device signature; the lock's clock reads the same, it draws the response \
         nonce `0e…0e` and grants (nothing revoked, no audit record pending before).\n\n",
    );
    let x = unlock_exchange();
    hex_block(&mut out, "Lock private scalar", &LOCK_SCALAR);
    hex_block(&mut out, "Lock public key, SEC1 compressed", &x.lock_public);
    hex_block(
        &mut out,
        "Ephemeral public key E, SEC1 compressed",
        &x.ephemeral,
    );
    hex_block(&mut out, "Z, the ECDH x-coordinate", &x.z);
    hex_block(&mut out, "request_key", &x.request_key);
    hex_block(&mut out, "response_key", &x.response_key);
    hex_block(&mut out, "Transcript", &x.transcript);
    hex_block(&mut out, "Device signature, r || s", &x.signature);
    diagnostic_block(
        &mut out,
        "Request payload, diagnostic notation (document elided)",
        &elide_document(&x.request_payload),
    );
    hex_block(&mut out, "Request payload", &x.request_payload);
    writeln!(
        out,
        "The plaintext is the request payload and {} zero bytes, so that the body is {} bytes.\n",
        x.request_padding,
        x.request_message.len() - 3
    )
    .unwrap();
    hex_block(
        &mut out,
        "Request message (type, length, body)",
        &x.request_message,
    );
    diagnostic_block(
        &mut out,
        "Response payload, diagnostic notation",
        &x.response_payload,
    );
    hex_block(&mut out, "Response payload", &x.response_payload);
    writeln!(
        out,
        "The plaintext is the response payload and {} zero bytes, so that the body is {} bytes.\n",
        x.response_padding,
        x.response_message.len() - 3
    )
    .unwrap();
    hex_block(
        &mut out,
        "Response message (type, length, body)",
        &x.response_message,
    );
    out.push_str("### Sync bundle\n\n");
    out.push_str(
        "A delta from iteration 7 to 8 for the lock above, issued at 2026-06-15T12:00Z: \
         person `a2…a2`'s documents below access iteration 4 void until 2027-01-01T05:00Z \
         (a floor), documents issued before 2025-12-31T12:00Z void (the issued floor); person \
         `a1…a1` gets doorcode 4821 under the lock's keypad schedule 0, person `a2…a2` loses \
         theirs; the server holds audit records 0-2 of the lock's \
         audit epoch `e0…e0`. The issuer seals the doorcodes with the \
         ephemeral scalar 0x81, 0x82, …, 0xa0.\n\n",
    );
    let v = sync_vector();
    hex_block(
        &mut out,
        "Sealing ephemeral public key E, SEC1 compressed",
        &v.ephemeral,
    );
    hex_block(&mut out, "Z, the ECDH x-coordinate with the lock key", &v.z);
    hex_block(&mut out, "Doorcode key", &v.key);
    hex_block(&mut out, "AAD (lock id, iteration, base iteration)", &v.aad);
    diagnostic_block(
        &mut out,
        "Doorcode changes, diagnostic notation",
        &v.plaintext,
    );
    hex_block(&mut out, "Doorcode changes", &v.plaintext);
    hex_block(
        &mut out,
        "Sealed doorcode changes (ciphertext and tag)",
        &v.ciphertext,
    );
    document(&mut out, &v.payload, &v.signed);
    out.push_str("### Signed time\n\n");
    out.push_str("2026-06-15T12:00Z for the lock above.\n\n");
    let time = sample_time();
    document(&mut out, &time.to_cbor(), &time.sign(&issuer));
    out.push_str("### Lock health record\n\n");
    out.push_str(
        "An audit record (event kind 6) of the lock above, signed with its key: seq 3 of audit \
         epoch `e0…e0` at 2026-06-15T12:00Z, battery 87 %, firmware `door-lock 0.1.0`, its \
         clock 42 s behind the last signed time it took, sync iteration 8.\n\n",
    );
    let health = sample_health();
    document(
        &mut out,
        &health.to_cbor(),
        &health.sign(&lock_config().key),
    );
    out
}

fn sample_health() -> AuditRecord {
    AuditRecord {
        epoch: AuditEpoch([0xe0; 8]),
        seq: 3,
        at: MONDAY_0800_NY,
        event: AuditEvent::Health(LockHealth {
            battery_percent: 87,
            firmware: FirmwareVersion::new("door-lock 0.1.0").unwrap(),
            clock_offset: Some(-42),
            iteration: 8,
        }),
    }
}

/// The health record checked with coset and p256 only, under the lock's key.
#[test]
fn the_committed_health_record_verifies_with_any_cose_library() {
    let (text, start, end) = committed();
    let section = &text[start..end];
    let heading = "### Lock health record";
    let signed = committed_hex(section, heading, "COSE_Sign1");
    let frame = coset::CoseSign1::from_tagged_slice(&signed).unwrap();
    let public = lock_config().key.public().to_sec1_compressed();
    assert_eq!(
        frame.protected.header.key_id,
        Sha256::digest(public)[..8].to_vec()
    );
    let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&public).unwrap();
    frame
        .verify_signature(&[], |sig, tbs| {
            key.verify(tbs, &p256::ecdsa::Signature::from_slice(sig)?)
        })
        .unwrap();
    let payload = frame.payload.unwrap();
    assert_eq!(payload, committed_hex(section, heading, "Payload"));
    assert_eq!(
        verify_audit(&signed, lock_config().key.public()),
        Ok(sample_health())
    );
}

fn sample_time() -> SignedTime {
    SignedTime {
        time: MONDAY_0800_NY,
        lock_id: Some(LOCK_ID),
        epoch: None,
    }
}

/// The sample delta sealed and signed with the fixed sealing scalar, and its doorcodes opened
/// again from the specification with generic crates (docs/PROTOCOL.md, "Sealed doorcodes").
struct SyncVector {
    signed: Vec<u8>,
    payload: Vec<u8>,
    ephemeral: Vec<u8>,
    z: Vec<u8>,
    key: [u8; 32],
    aad: Vec<u8>,
    plaintext: Vec<u8>,
    ciphertext: Vec<u8>,
}

fn sync_vector() -> SyncVector {
    let config = lock_config();
    let signed = sample_delta()
        .seal_and_sign(
            &issuer(),
            config.key.public(),
            &mut FixedRng(SEALING_SCALAR.to_vec()),
        )
        .unwrap();
    let payload = coset::CoseSign1::from_tagged_slice(&signed)
        .unwrap()
        .payload
        .unwrap();
    let value: Value = ciborium::de::from_reader(payload.as_slice()).unwrap();
    let sealed = value
        .as_map()
        .unwrap()
        .iter()
        .find(|(k, _)| *k == Value::Integer(6.into()))
        .map(|(_, v)| v.as_array().unwrap().clone())
        .unwrap();
    let [Value::Bytes(ephemeral), Value::Bytes(ciphertext)] = &sealed[..] else {
        panic!("key 6 is [E, ciphertext]")
    };

    let e_secret = p256::SecretKey::from_bytes(&SEALING_SCALAR.into()).unwrap();
    assert_eq!(
        e_secret.public_key().to_encoded_point(true).as_bytes(),
        ephemeral.as_slice()
    );
    let lock_secret = p256::SecretKey::from_bytes(&LOCK_SCALAR.into()).unwrap();
    let lock_public = lock_secret.public_key().to_encoded_point(true);
    let z = p256::ecdh::diffie_hellman(
        e_secret.to_nonzero_scalar(),
        lock_secret.public_key().as_affine(),
    )
    .raw_secret_bytes()
    .to_vec();
    let mut key = [0u8; 32];
    Hkdf::<Sha256>::new(Some(b"door-sync/v1"), &z)
        .expand(
            &[
                &LOCK_ID.0[..],
                ephemeral,
                lock_public.as_bytes(),
                b"doorcodes",
            ]
            .concat(),
            &mut key,
        )
        .unwrap();
    let aad = [&LOCK_ID.0[..], &8u64.to_be_bytes(), &7u64.to_be_bytes()].concat();
    let plaintext = Aes256Gcm::new(&key.into())
        .decrypt(
            &[0u8; 12].into(),
            Payload {
                msg: ciphertext,
                aad: &aad,
            },
        )
        .unwrap();
    SyncVector {
        signed,
        payload,
        ephemeral: ephemeral.clone(),
        z,
        key,
        aad,
        plaintext,
        ciphertext: ciphertext.clone(),
    }
}

#[test]
fn the_sync_bundle_follows_the_specification() {
    let v = sync_vector();
    // What the generic crates opened is what the lock reads.
    let opened = open_bundle(&v.signed, &lock_config()).unwrap();
    assert_eq!(*opened.bundle(), sample_delta());
    let value: Value = ciborium::de::from_reader(v.plaintext.as_slice()).unwrap();
    assert_eq!(
        value,
        Value::Map(vec![
            (
                0.into(),
                Value::Array(vec![Value::Array(vec![
                    Value::Bytes(PERSON.0.to_vec()),
                    Value::Text("4821".into()),
                    Value::Null,
                    Value::Array(vec![0.into()]),
                ])])
            ),
            (1.into(), Value::Array(vec![Value::Bytes(vec![0xa2; 16])])),
        ])
    );
    // Version 2; one floor (person, floor, expiry) under key 5; the issued floor under key 8.
    let payload: Value = ciborium::de::from_reader(v.payload.as_slice()).unwrap();
    let entries = payload.as_map().unwrap();
    let get = |key: u64| {
        entries
            .iter()
            .find(|(k, _)| *k == Value::Integer(key.into()))
            .map(|(_, v)| v.clone())
    };
    assert_eq!(get(0), Some(2.into()));
    assert_eq!(
        get(5),
        Some(Value::Array(vec![Value::Array(vec![
            Value::Bytes(vec![0xa2; 16]),
            4.into(),
            NOT_AFTER.into(),
        ])]))
    );
    assert_eq!(get(8), Some(ISSUED_AT.into()));
    assert_eq!(get(9), None, "a delta carries no keypad rules");
    assert_eq!(
        verify_signed_time(&sample_time().sign(&issuer()), &issuer_keys()),
        Ok(sample_time())
    );
}

/// The request payload with its document replaced by a short stand-in, for a readable
/// diagnostic rendering (the hex that follows has it whole).
fn elide_document(payload: &[u8]) -> Vec<u8> {
    let mut value: Value = ciborium::de::from_reader(payload).unwrap();
    if let Value::Map(entries) = &mut value {
        entries[0].1 = Value::Text("<the access document above, 308 bytes>".into());
    }
    let mut out = Vec::new();
    ciborium::ser::into_writer(&value, &mut out).unwrap();
    out
}

/// One unlock with the fixed inputs, run through door-protocol, and the intermediate values
/// re-derived independently from the specification (docs/PROTOCOL.md, "BLE unlock").
struct Exchange {
    lock_public: Vec<u8>,
    ephemeral: Vec<u8>,
    z: Vec<u8>,
    request_key: [u8; 32],
    response_key: [u8; 32],
    transcript: Vec<u8>,
    signature: Vec<u8>,
    /// The CBOR map, without the zeros that follow it in the plaintext.
    request_payload: Vec<u8>,
    request_padding: usize,
    request_message: Vec<u8>,
    response_payload: Vec<u8>,
    response_padding: usize,
    response_message: Vec<u8>,
}

/// Splits a plaintext into its CBOR item and the count of zeros after it.
fn unpad(plaintext: &[u8]) -> (Vec<u8>, usize) {
    let mut rest = plaintext;
    let _: Value = ciborium::de::from_reader(&mut rest).unwrap();
    assert!(rest.iter().all(|&b| b == 0), "padding is zeros");
    (
        plaintext[..plaintext.len() - rest.len()].to_vec(),
        rest.len(),
    )
}

fn unlock_exchange() -> Exchange {
    let config = LockConfig::new(
        LOCK_ID,
        LOBBY,
        LockKey::from_bytes(&LOCK_SCALAR).unwrap(),
        issuer_keys(),
    );
    let document = sample_access().sign(&issuer()).unwrap();
    let target = UnlockTarget {
        lock_id: LOCK_ID,
        lock_key: *config.key.public(),
        access_document: document.clone(),
    };
    let mut phone_rng = FixedRng(EPHEMERAL_SCALAR.to_vec());
    let (prep, transcript) =
        UnlockPreparation::new(target, MONDAY_0800_NY, &mut phone_rng).unwrap();
    let device = p256::ecdsa::SigningKey::from_bytes(&DEVICE_SCALAR.into()).unwrap();
    let signature: p256::ecdsa::Signature = device.sign(&transcript);
    let signature = signature
        .normalize_s()
        .unwrap_or(signature)
        .to_bytes()
        .to_vec();
    let mut phone = prep.signed(&signature).unwrap();
    // Each chunk's first byte is its header; the message is the rest, in order.
    let chunks = phone.request_fragments(MAX_ATT_MTU);
    let request_message: Vec<u8> = chunks.iter().flat_map(|c| c[1..].to_vec()).collect();
    let (mut session, mut state) = (LockSession::new(), LockState::default());
    let mut nonce_rng = FixedRng(RESPONSE_NONCE.to_vec());
    let reply = chunks
        .iter()
        .filter_map(|c| session.on_fragment(&config, &mut state, c, MONDAY_0800_NY, &mut nonce_rng))
        .last()
        .unwrap();
    let response_chunks = reply.message.fragments(MAX_ATT_MTU);
    let response_message = response_chunks[0][1..].to_vec();
    assert!(phone
        .on_fragment(&response_chunks[0])
        .unwrap()
        .unwrap()
        .result
        .is_granted());

    // The specification, with generic crates.
    let lock_secret = p256::SecretKey::from_bytes(&LOCK_SCALAR.into()).unwrap();
    let lock_public = lock_secret
        .public_key()
        .to_encoded_point(true)
        .as_bytes()
        .to_vec();
    let e_secret = p256::SecretKey::from_bytes(&EPHEMERAL_SCALAR.into()).unwrap();
    let ephemeral = e_secret
        .public_key()
        .to_encoded_point(true)
        .as_bytes()
        .to_vec();
    let z = p256::ecdh::diffie_hellman(
        e_secret.to_nonzero_scalar(),
        lock_secret.public_key().as_affine(),
    )
    .raw_secret_bytes()
    .to_vec();
    let info = [&LOCK_ID.0[..], &ephemeral, &lock_public].concat();
    let hk = Hkdf::<Sha256>::new(Some(b"door-unlock/v1"), &z);
    let (mut request_key, mut response_key) = ([0u8; 32], [0u8; 32]);
    hk.expand(&[&info[..], b"request"].concat(), &mut request_key)
        .unwrap();
    hk.expand(&[&info[..], b"response"].concat(), &mut response_key)
        .unwrap();
    let expected_transcript = [
        &b"door-unlock/v1\0"[..],
        &LOCK_ID.0,
        &ephemeral,
        &lock_public,
        &MONDAY_0800_NY.to_be_bytes(),
        &Sha256::digest(&document),
    ]
    .concat();
    assert_eq!(transcript, expected_transcript);

    // Request: type 0x01, length, then version || lock_id || E || ciphertext.
    assert_eq!(request_message[0], 0x01);
    let body = &request_message[3..];
    assert_eq!(
        usize::from(u16::from_be_bytes([request_message[1], request_message[2]])),
        body.len()
    );
    assert_eq!(
        body.len(),
        768,
        "the smallest body size holds the sample document"
    );
    assert_eq!(body[0], 2);
    assert_eq!(&body[1..17], &LOCK_ID.0);
    assert_eq!(&body[17..50], &ephemeral[..]);
    let request_plaintext = Aes256Gcm::new(&request_key.into())
        .decrypt(
            &[0u8; 12].into(),
            Payload {
                msg: &body[50..],
                aad: &[&[0x01], &body[..50]].concat(),
            },
        )
        .unwrap();
    // Response: type 0x81, length, then version || nonce || ciphertext.
    assert_eq!(response_message[0], 0x81);
    let body = &response_message[3..];
    assert_eq!(body.len(), 68, "every response body has one size");
    assert_eq!(body[0], 2);
    assert_eq!(&body[1..13], &RESPONSE_NONCE);
    let response_plaintext = Aes256Gcm::new(&response_key.into())
        .decrypt(
            body[1..13].into(),
            Payload {
                msg: &body[13..],
                aad: &[0x81, 0x02],
            },
        )
        .unwrap();
    let (request_payload, request_padding) = unpad(&request_plaintext);
    let (response_payload, response_padding) = unpad(&response_plaintext);
    Exchange {
        lock_public,
        ephemeral,
        z,
        request_key,
        response_key,
        transcript,
        signature,
        request_payload,
        request_padding,
        request_message,
        response_payload,
        response_padding,
        response_message,
    }
}

#[test]
fn the_unlock_exchange_follows_the_specification() {
    let x = unlock_exchange();
    // The request payload carries the document, the time and the signature, which verifies
    // over the transcript under the document's device key.
    let value: Value = ciborium::de::from_reader(x.request_payload.as_slice()).unwrap();
    let Value::Map(entries) = value else {
        panic!("request payload is a map")
    };
    assert_eq!(
        entries[0].1,
        Value::Bytes(sample_access().sign(&issuer()).unwrap())
    );
    assert_eq!(entries[1].1, Value::Integer(MONDAY_0800_NY.into()));
    assert_eq!(entries[2].1, Value::Bytes(x.signature.clone()));
    let device = p256::ecdsa::VerifyingKey::from_sec1_bytes(&device_key()).unwrap();
    device
        .verify(
            &x.transcript,
            &p256::ecdsa::Signature::from_slice(&x.signature).unwrap(),
        )
        .unwrap();
    // Granted, at the lock's clock, sync iteration 0, one record pending.
    let value: Value = ciborium::de::from_reader(x.response_payload.as_slice()).unwrap();
    assert_eq!(
        value,
        Value::Map(vec![
            (0.into(), 0.into()),
            (2.into(), MONDAY_0800_NY.into()),
            (3.into(), 0.into()),
            (4.into(), 1.into()),
        ])
    );
}

fn committed() -> (String, usize, usize) {
    let text = std::fs::read_to_string(protocol_md()).expect("docs/PROTOCOL.md is readable");
    let start = text.find(BEGIN).expect("vectors:begin marker") + BEGIN.len();
    let end = text[start..].find(END).expect("vectors:end marker") + start;
    (text, start, end)
}

#[test]
fn protocol_md_vectors_match_the_code() {
    let (text, start, end) = committed();
    let fresh = render();
    if std::env::var_os("UPDATE_VECTORS").is_some() {
        let updated = format!("{}{}{}", &text[..start], fresh, &text[end..]);
        std::fs::write(protocol_md(), updated).expect("docs/PROTOCOL.md is writable");
        return;
    }
    assert!(
        text[start..end] == fresh,
        "docs/PROTOCOL.md test vectors are stale: run UPDATE_VECTORS=1 cargo test -p door-protocol --test vectors"
    );
}

/// The hex block that follows the line starting with `label` in the committed section.
fn committed_hex(section: &str, heading: &str, label: &str) -> Vec<u8> {
    let from = section.find(heading).expect("heading in vectors");
    let at = section[from..]
        .find(&format!("{label} ("))
        .expect("label in vectors")
        + from;
    let block = &section[at..];
    let open = block.find("```text\n").unwrap() + "```text\n".len();
    let close = block[open..].find("```").unwrap() + open;
    hex::decode(block[open..close].split_whitespace().collect::<String>()).unwrap()
}

/// Checks the committed vectors with coset and p256 only, none of door-protocol's verifier:
/// what any COSE implementation would do.
#[test]
fn committed_vectors_verify_with_any_cose_library() {
    let (text, start, end) = committed();
    let section = &text[start..end];
    let public = committed_hex(section, "### Issuer key", "Public key, SEC1 compressed");
    let kid = committed_hex(section, "### Issuer key", "kid");
    assert_eq!(&Sha256::digest(&public)[..8], kid.as_slice());
    let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&public).unwrap();
    for heading in [
        "### Access document",
        "### Revocation document",
        "### Sync bundle",
        "### Signed time",
    ] {
        let signed = committed_hex(section, heading, "COSE_Sign1");
        let frame = coset::CoseSign1::from_tagged_slice(&signed).unwrap();
        assert_eq!(
            frame.protected.header.alg,
            Some(coset::RegisteredLabelWithPrivate::Assigned(
                iana::Algorithm::ES256
            ))
        );
        assert_eq!(frame.protected.header.key_id, kid);
        assert!(frame.unprotected.is_empty());
        frame
            .verify_signature(&[], |sig, tbs| {
                key.verify(tbs, &p256::ecdsa::Signature::from_slice(sig)?)
            })
            .unwrap();
        assert_eq!(
            frame.payload.unwrap(),
            committed_hex(section, heading, "Payload")
        );
    }
}

#[test]
fn payloads_are_canonical_for_a_generic_cbor_library() {
    // ciborium writes shortest heads and keeps map order: re-encoding what it decoded must
    // give the same bytes.
    let sync = sync_vector();
    for payload in [
        sample_access().to_cbor().unwrap(),
        sample_revocation().to_cbor().unwrap(),
        sync.payload,
        sync.plaintext,
        sample_time().to_cbor(),
        sample_health().to_cbor(),
    ] {
        let value: Value = ciborium::de::from_reader(payload.as_slice()).unwrap();
        let mut again = Vec::new();
        ciborium::ser::into_writer(&value, &mut again).unwrap();
        assert_eq!(again, payload);
    }
}

#[test]
fn vectors_verify_with_door_protocol() {
    let keys = issuer_keys();
    let access = sample_access().sign(&issuer()).unwrap();
    assert_eq!(
        *decode_access(&access, &keys).unwrap().document(),
        sample_access()
    );
    let revocation = sample_revocation().sign(&issuer()).unwrap();
    assert_eq!(
        *verify_revocation(&revocation, &keys).unwrap().document(),
        sample_revocation()
    );
    // The fixed scalars are what the fixtures say they are.
    assert_eq!(*issuer().to_bytes(), ISSUER_SCALAR);
    assert_eq!(
        IssuerKey::from_bytes(&DEVICE_SCALAR)
            .unwrap()
            .verifying()
            .to_sec1_compressed(),
        device_key()
    );
}

#[test]
fn protected_header_is_what_coset_writes() {
    let signed = sample_access().sign(&issuer()).unwrap();
    let frame = coset::CoseSign1::from_tagged_slice(&signed).unwrap();
    let rewritten = frame.protected.header.clone().to_vec().unwrap();
    assert_eq!(frame.protected.original_data.unwrap(), rewritten);
}

#[cfg(feature = "std")]
#[test]
fn zone_fixture_matches_the_iana_database() {
    let derived =
        door_protocol::ZoneRules::from_iana("America/New_York", NOT_BEFORE, NOT_AFTER).unwrap();
    assert_eq!(derived, new_york_2026());
}
