//! The "Test vectors" section of docs/PROTOCOL.md: regenerated from fixed keys and compared
//! byte for byte (`UPDATE_VECTORS=1` rewrites it), then checked with coset and p256 alone.

mod common;

use std::fmt::Write as _;
use std::path::PathBuf;

use ciborium::Value;
use common::*;
use coset::{iana, CborSerializable, TaggedCborSerializable};
use door_protocol::{decode_access, verify_revocation, IssuerKey};
use p256::ecdsa::signature::Verifier;
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
    out
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
    for heading in ["### Access document", "### Revocation document"] {
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
    for payload in [
        sample_access().to_cbor().unwrap(),
        sample_revocation().to_cbor().unwrap(),
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
