//! Sync bundles: everything one offline lock should know, signed by the issuer for that lock.
//!
//! ```text
//! sync-bundle = {
//!   0 => 1,                              ; version
//!   1 => id,                             ; lock_id: the one lock that may apply it
//!   2 => uint,                           ; iteration: >= 1, strictly increasing per lock
//!   3 => uint,                           ; base_iteration: 0 full, else < iteration
//!   4 => unix-time,                      ; issued_at: also a signed time
//!   ? 5 => [+ revocation-entry],         ; ascending credential ids
//!   ? 6 => [E: bstr .size 33, ciphertext: bstr],   ; doorcode changes sealed to the lock
//!   7 => audit-ack / null,               ; null: the server holds no record of this lock
//! }
//! audit-ack = [epoch: bstr .size 8, seq: uint]  ; the server holds every record of the
//!                                               ; lock's audit epoch `epoch` below `seq`
//! ```
//!
//! A **full** bundle (`base_iteration` 0)
//! states the lock's whole sync state: its revocations and doorcodes replace the lock's. A
//! **delta** applies only on a lock whose sync iteration is exactly `base_iteration`: its
//! revocations are added (or change expiry), its doorcodes are upserted and removed. An absent
//! key 5 or 6 means none (full) or no change (delta), so a delta carrying one revocation is
//! under 200 bytes.
//!
//! Doorcodes are the one secret: their changes are deterministic CBOR sealed to the lock's
//! static key (`super::seal`), so only that lock reads them, however many phones carry them.
//!
//! ```text
//! doorcode-changes = { ? 0 => [+ doorcode], ? 1 => [+ id] }  ; added; removed (delta only)
//! doorcode = [person_id: id, code: tstr, expires_at: unix-time / null]  ; 4-10 ASCII digits
//! ```

use alloc::string::String;
use alloc::vec::Vec;

use p256::PublicKey;
use rand_core::CryptoRngCore;
use sha2::{Digest, Sha256};

use crate::audit::{AuditAck, AuditEpoch};
use crate::cbor::{At, Keys, Malformed, Problem, Reader, Writer};
use crate::cose;
use crate::ids::Id;
use crate::keys::{IssuerKey, IssuerKeys, KeyId, LockPublicKey};
use crate::revocation::RevocationEntry;
use crate::sync::seal::{self, Binding, TAG_LEN};
use crate::sync::{SyncError, MAX_BUNDLE_REVOCATIONS, MAX_BUNDLE_SIZE, MAX_DOORCODES};
use crate::unlock::LockConfig;
use crate::UnixTime;

/// COSE content type of sync bundles (protected header label 3).
pub const SYNC_CONTENT_TYPE: &str = "application/door-sync+cbor";
/// The payload version this implementation reads and writes.
pub const SYNC_VERSION: u64 = 1;

/// One person's keypad code at one lock.
#[derive(Clone, PartialEq, Eq, Debug, Hash)]
pub struct Doorcode {
    pub person_id: Id,
    /// 4 to 10 ASCII digits.
    pub code: String,
    /// The code stops working from here (normally the holder's access ends); `None`: until a
    /// bundle removes it.
    pub expires_at: Option<UnixTime>,
}

impl Doorcode {
    /// Whether `code` has the shape of a doorcode: 4 to 10 ASCII digits.
    pub fn is_valid_code(code: &str) -> bool {
        (4..=10).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_digit())
    }

    /// Whether the code still works at `now`.
    pub fn is_live(&self, now: UnixTime) -> bool {
        self.expires_at.is_none_or(|t| now < t)
    }
}

/// A bundle's doorcode changes. Full bundle: `added` is the lock's whole list and `removed` is
/// empty. Delta: `added` are new or changed codes (one per person), `removed` names people
/// whose codes go.
#[derive(Clone, Default, PartialEq, Eq, Debug)]
pub struct DoorcodeChanges {
    pub added: Vec<Doorcode>,
    pub removed: Vec<Id>,
}

impl DoorcodeChanges {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty()
    }
}

/// A sync bundle as the issuer builds it, and as a lock reads it once opened.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SyncBundle {
    pub lock_id: Id,
    /// Per lock, strictly increasing, at least 1.
    pub iteration: u64,
    /// 0: a full bundle. Otherwise a delta that applies only on a lock at this iteration;
    /// below `iteration`.
    pub base_iteration: u64,
    /// When the issuer built it; the lock takes it as a signed time.
    pub issued_at: UnixTime,
    /// Full: the whole list. Delta: entries added (or whose expiry changes). Any order; the
    /// encoding sorts them by credential id.
    pub revocations: Vec<RevocationEntry>,
    pub doorcodes: DoorcodeChanges,
    /// The server holds every audit record of this lock's epoch `epoch` with a seq below
    /// `below` (the latest epoch the server has seen); `None` before it holds any record.
    pub audit_ack: Option<AuditAck>,
}

mod key {
    pub const VERSION: u64 = 0;
    pub const LOCK_ID: u64 = 1;
    pub const ITERATION: u64 = 2;
    pub const BASE_ITERATION: u64 = 3;
    pub const ISSUED_AT: u64 = 4;
    pub const REVOCATIONS: u64 = 5;
    pub const DOORCODES: u64 = 6;
    pub const AUDIT_ACK: u64 = 7;

    pub const ADDED: u64 = 0;
    pub const REMOVED: u64 = 1;
}

/// The doorcode changes as they travel: E and the ciphertext.
struct Sealed<'a> {
    ephemeral: [u8; 33],
    ciphertext: &'a [u8],
}

impl SyncBundle {
    /// A full bundle replaces the lock's whole sync state.
    pub fn is_full(&self) -> bool {
        self.base_iteration == 0
    }

    fn binding(&self) -> Binding {
        Binding {
            lock_id: self.lock_id,
            iteration: self.iteration,
            base_iteration: self.base_iteration,
        }
    }

    /// Everything a verifier checks without the doorcodes: iterations, revocation cap and
    /// distinct credentials.
    fn validate_header(&self) -> Result<(), Malformed> {
        if self.iteration == 0 {
            return Err(Malformed::new("iteration", Problem::OutOfRange));
        }
        if self.base_iteration >= self.iteration {
            return Err(Malformed::new("base_iteration", Problem::OutOfRange));
        }
        if self.revocations.len() > MAX_BUNDLE_REVOCATIONS {
            return Err(Malformed::new("revocations", Problem::TooMany));
        }
        distinct(
            self.revocations.iter().map(|e| e.credential_id),
            "revocations.credential_id",
        )
    }

    /// The doorcode rules: caps, code shape, one code per person and one person per code, no
    /// removals in a full bundle, nobody both added and removed.
    fn validate_doorcodes(&self) -> Result<(), Malformed> {
        let d = &self.doorcodes;
        if d.added.len() > MAX_DOORCODES {
            return Err(Malformed::new("doorcodes.added", Problem::TooMany));
        }
        if d.removed.len() > MAX_DOORCODES {
            return Err(Malformed::new("doorcodes.removed", Problem::TooMany));
        }
        if self.is_full() && !d.removed.is_empty() {
            return Err(Malformed::new("doorcodes.removed", Problem::Unsupported));
        }
        if !d.added.iter().all(|c| Doorcode::is_valid_code(&c.code)) {
            return Err(Malformed::new("doorcodes.code", Problem::OutOfRange));
        }
        distinct(
            d.added
                .iter()
                .map(|c| c.person_id)
                .chain(d.removed.iter().copied()),
            "doorcodes.person_id",
        )?;
        distinct(d.added.iter().map(|c| c.code.as_str()), "doorcodes.code")
    }

    /// Checks every rule a lock will check, so the issuer never signs a bundle locks refuse.
    pub fn validate(&self) -> Result<(), Malformed> {
        self.validate_header()?;
        self.validate_doorcodes()
    }

    /// Seals the doorcodes to `lock_key` (a fresh ephemeral key from `rng`) and signs the
    /// bundle: the tagged COSE_Sign1 bytes to hand to phones. Fails when a rule of
    /// [`SyncBundle::validate`] is broken or the result would exceed
    /// [`MAX_BUNDLE_SIZE`](crate::sync::MAX_BUNDLE_SIZE).
    pub fn seal_and_sign(
        &self,
        issuer: &IssuerKey,
        lock_key: &LockPublicKey,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Vec<u8>, Malformed> {
        self.validate()?;
        let sealed = (!self.doorcodes.is_empty()).then(|| {
            let plaintext = zeroize::Zeroizing::new(encode_doorcodes(&self.doorcodes));
            seal::seal(lock_key, self.binding(), &plaintext, rng)
        });
        let payload = self.encode(sealed.as_ref().map(|(e, ct)| Sealed {
            ephemeral: *e,
            ciphertext: ct,
        }));
        cose::sign1_with(
            issuer.signing_key(),
            issuer.kid(),
            SYNC_CONTENT_TYPE,
            payload,
            MAX_BUNDLE_SIZE,
        )
    }

    fn encode(&self, sealed: Option<Sealed<'_>>) -> Vec<u8> {
        let mut revocations = self.revocations.clone();
        revocations.sort_unstable_by_key(|e| e.credential_id);
        let mut w = Writer::new();
        w.map(6 + usize::from(!revocations.is_empty()) + usize::from(sealed.is_some()));
        w.uint(key::VERSION);
        w.uint(SYNC_VERSION);
        w.uint(key::LOCK_ID);
        w.bytes(&self.lock_id.0);
        w.uint(key::ITERATION);
        w.uint(self.iteration);
        w.uint(key::BASE_ITERATION);
        w.uint(self.base_iteration);
        w.uint(key::ISSUED_AT);
        w.int(self.issued_at);
        if !revocations.is_empty() {
            w.uint(key::REVOCATIONS);
            w.array(revocations.len());
            for e in &revocations {
                w.array(2);
                w.bytes(&e.credential_id.0);
                match e.expires_at {
                    Some(t) => w.int(t),
                    None => w.null(),
                }
            }
        }
        if let Some(s) = sealed {
            w.uint(key::DOORCODES);
            w.array(2);
            w.bytes(&s.ephemeral);
            w.bytes(s.ciphertext);
        }
        w.uint(key::AUDIT_ACK);
        match self.audit_ack {
            Some(ack) => {
                w.array(2);
                w.bytes(&ack.epoch.0);
                w.uint(ack.below);
            }
            None => w.null(),
        }
        w.into_vec()
    }
}

/// Fails with `Duplicate` at `field` if `items` repeats a value.
fn distinct<T: Ord>(items: impl Iterator<Item = T>, field: &'static str) -> Result<(), Malformed> {
    let mut all: Vec<T> = items.collect();
    all.sort_unstable();
    if all.windows(2).any(|w| w[0] == w[1]) {
        return Err(Malformed::new(field, Problem::Duplicate));
    }
    Ok(())
}

/// Items must ascend strictly: equal neighbours are duplicates, others out of order. This
/// keeps one encoding per set.
fn ascending<T: Ord>(prev: Option<&T>, next: &T, field: &'static str) -> Result<(), Malformed> {
    match prev.map(|p| p.cmp(next)) {
        Some(core::cmp::Ordering::Equal) => Err(Malformed::new(field, Problem::Duplicate)),
        Some(core::cmp::Ordering::Greater) => Err(Malformed::new(field, Problem::Unordered)),
        _ => Ok(()),
    }
}

fn encode_doorcodes(d: &DoorcodeChanges) -> Vec<u8> {
    let mut added = d.added.clone();
    added.sort_unstable_by_key(|c| c.person_id);
    let mut removed = d.removed.clone();
    removed.sort_unstable();
    let mut w = Writer::new();
    w.map(usize::from(!added.is_empty()) + usize::from(!removed.is_empty()));
    if !added.is_empty() {
        w.uint(key::ADDED);
        w.array(added.len());
        for c in &added {
            w.array(3);
            w.bytes(&c.person_id.0);
            w.text(&c.code);
            match c.expires_at {
                Some(t) => w.int(t),
                None => w.null(),
            }
        }
    }
    if !removed.is_empty() {
        w.uint(key::REMOVED);
        w.array(removed.len());
        for id in &removed {
            w.bytes(&id.0);
        }
    }
    w.into_vec()
}

fn decode_doorcodes(bytes: &[u8]) -> Result<DoorcodeChanges, Malformed> {
    let mut r = Reader::new(bytes);
    let n = r.map().at("doorcodes")?;
    let mut keys = Keys::new();
    let mut d = DoorcodeChanges::default();
    for _ in 0..n {
        match keys.next(&mut r).at("doorcodes")? {
            key::ADDED => {
                let count = r.array(MAX_DOORCODES).at("doorcodes.added")?;
                if count == 0 {
                    return Err(Malformed::new("doorcodes.added", Problem::NonCanonical));
                }
                d.added.reserve_exact(count);
                for _ in 0..count {
                    if r.array(3).at("doorcodes.added")? != 3 {
                        return Err(Malformed::new("doorcodes.added", Problem::WrongType));
                    }
                    let person_id = Id(r.bytes_fixed().at("doorcodes.person_id")?);
                    ascending(
                        d.added.last().map(|c| &c.person_id),
                        &person_id,
                        "doorcodes.person_id",
                    )?;
                    let code = r.text().at("doorcodes.code")?;
                    let expires_at = if r.null().at("doorcodes.expires_at")? {
                        None
                    } else {
                        Some(r.int().at("doorcodes.expires_at")?)
                    };
                    d.added.push(Doorcode {
                        person_id,
                        code: String::from(code),
                        expires_at,
                    });
                }
            }
            key::REMOVED => {
                let count = r.array(MAX_DOORCODES).at("doorcodes.removed")?;
                if count == 0 {
                    return Err(Malformed::new("doorcodes.removed", Problem::NonCanonical));
                }
                d.removed.reserve_exact(count);
                for _ in 0..count {
                    let id = Id(r.bytes_fixed().at("doorcodes.removed")?);
                    ascending(d.removed.last(), &id, "doorcodes.removed")?;
                    d.removed.push(id);
                }
            }
            key => return Err(Malformed::new("doorcodes", Problem::UnknownKey { key })),
        }
    }
    r.finish().at("doorcodes")?;
    if d.is_empty() {
        // No changes travel as no sealed blob at all: one encoding per bundle.
        return Err(Malformed::new("doorcodes", Problem::NonCanonical));
    }
    Ok(d)
}

/// Parses a payload up to the sealed doorcodes, which it returns unopened.
fn decode_payload(bytes: &[u8]) -> Result<(SyncBundle, Option<Sealed<'_>>), Malformed> {
    let mut r = Reader::new(bytes);
    let n = r.map().at("payload")?;
    let mut keys = Keys::new();
    let mut b = SyncBundle {
        lock_id: Id::default(),
        iteration: 0,
        base_iteration: 0,
        issued_at: 0,
        revocations: Vec::new(),
        doorcodes: DoorcodeChanges::default(),
        audit_ack: None,
    };
    let mut sealed = None;
    for _ in 0..n {
        match keys.next(&mut r).at("payload")? {
            key::VERSION => {
                if r.uint().at("version")? != SYNC_VERSION {
                    return Err(Malformed::new("version", Problem::Unsupported));
                }
            }
            key::LOCK_ID => b.lock_id = Id(r.bytes_fixed().at("lock_id")?),
            key::ITERATION => b.iteration = r.uint().at("iteration")?,
            key::BASE_ITERATION => b.base_iteration = r.uint().at("base_iteration")?,
            key::ISSUED_AT => b.issued_at = r.int().at("issued_at")?,
            key::REVOCATIONS => {
                let count = r.array(MAX_BUNDLE_REVOCATIONS).at("revocations")?;
                if count == 0 {
                    return Err(Malformed::new("revocations", Problem::NonCanonical));
                }
                b.revocations.reserve_exact(count);
                for _ in 0..count {
                    if r.array(2).at("revocations")? != 2 {
                        return Err(Malformed::new("revocations", Problem::WrongType));
                    }
                    let credential_id = Id(r.bytes_fixed().at("revocations.credential_id")?);
                    ascending(
                        b.revocations.last().map(|e| &e.credential_id),
                        &credential_id,
                        "revocations.credential_id",
                    )?;
                    let expires_at = if r.null().at("revocations.expires_at")? {
                        None
                    } else {
                        Some(r.int().at("revocations.expires_at")?)
                    };
                    b.revocations.push(RevocationEntry {
                        credential_id,
                        expires_at,
                    });
                }
            }
            key::DOORCODES => {
                if r.array(2).at("doorcodes")? != 2 {
                    return Err(Malformed::new("doorcodes", Problem::WrongType));
                }
                let ephemeral = r.bytes_fixed::<33>().at("doorcodes.ephemeral")?;
                // On the curve and compressed: one encoding of E, checked before any ECDH.
                if !matches!(ephemeral[0], 2 | 3) || PublicKey::from_sec1_bytes(&ephemeral).is_err()
                {
                    return Err(Malformed::new("doorcodes.ephemeral", Problem::NotOnCurve));
                }
                let ciphertext = r.bytes().at("doorcodes.ciphertext")?;
                if ciphertext.len() <= TAG_LEN {
                    return Err(Malformed::new("doorcodes.ciphertext", Problem::OutOfRange));
                }
                sealed = Some(Sealed {
                    ephemeral,
                    ciphertext,
                });
            }
            key::AUDIT_ACK => b.audit_ack = decode_audit_ack(&mut r)?,
            key => return Err(Malformed::new("payload", Problem::UnknownKey { key })),
        }
    }
    keys.require(&[
        key::VERSION,
        key::LOCK_ID,
        key::ITERATION,
        key::BASE_ITERATION,
        key::ISSUED_AT,
        key::AUDIT_ACK,
    ])
    .at("payload")?;
    r.finish().at("payload")?;
    b.validate_header()?;
    Ok((b, sealed))
}

fn decode_audit_ack(r: &mut Reader<'_>) -> Result<Option<AuditAck>, Malformed> {
    if r.null().at("audit_ack")? {
        return Ok(None);
    }
    if r.array(2).at("audit_ack")? != 2 {
        return Err(Malformed::new("audit_ack", Problem::WrongType));
    }
    Ok(Some(AuditAck {
        epoch: AuditEpoch(r.bytes_fixed().at("audit_ack.epoch")?),
        below: r.uint().at("audit_ack.seq")?,
    }))
}

/// What anyone holding the issuer's public key can learn from a bundle without the lock's key:
/// enough for a phone to decide whether to carry it and to offer it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct BundleInfo {
    pub lock_id: Id,
    pub iteration: u64,
    pub base_iteration: u64,
    pub issued_at: UnixTime,
    pub audit_ack: Option<AuditAck>,
    /// Revocation entries it carries.
    pub revocations: usize,
    /// Whether it carries sealed doorcode changes.
    pub doorcodes: bool,
    /// SHA-256 of the signed bytes: what a transfer offers.
    pub digest: [u8; 32],
}

/// Checks a bundle's signature and everything but the sealed doorcodes (a phone caching it,
/// the server checking what it built).
pub fn inspect_bundle(bytes: &[u8], issuer_keys: &IssuerKeys) -> Result<BundleInfo, SyncError> {
    let opened = open_frame(bytes, issuer_keys)?;
    let (b, sealed) = decode_payload(opened.payload)?;
    Ok(BundleInfo {
        lock_id: b.lock_id,
        iteration: b.iteration,
        base_iteration: b.base_iteration,
        issued_at: b.issued_at,
        audit_ack: b.audit_ack,
        revocations: b.revocations.len(),
        doorcodes: sealed.is_some(),
        digest: Sha256::digest(bytes).into(),
    })
}

fn open_frame<'a>(
    bytes: &'a [u8],
    issuer_keys: &IssuerKeys,
) -> Result<cose::Opened<'a>, SyncError> {
    Ok(cose::open1_with(
        bytes,
        SYNC_CONTENT_TYPE,
        MAX_BUNDLE_SIZE,
        |kid| issuer_keys.get(kid).map(|k| *k.verifying_key()),
    )?)
}

/// A bundle whose signature, lock and sealed doorcodes have been checked: the only thing
/// [`LockState::apply_bundle`](crate::unlock::LockState::apply_bundle) takes.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct OpenedBundle {
    bundle: SyncBundle,
    kid: KeyId,
}

impl OpenedBundle {
    /// The bundle, doorcodes in the clear.
    pub fn bundle(&self) -> &SyncBundle {
        &self.bundle
    }

    /// The issuer key that signed it.
    pub fn kid(&self) -> KeyId {
        self.kid
    }
}

/// The lock's check of a bundle, in order: size and frame, issuer key, signature
/// ([`SyncError::Malformed`], [`SyncError::UnknownIssuerKey`], [`SyncError::BadSignature`]);
/// payload ([`SyncError::Malformed`]); lock id ([`SyncError::Foreign`]); doorcodes open with
/// the lock's key ([`SyncError::Undecryptable`]) and are well formed. Whether it applies
/// (iteration, base) is [`LockState::apply_bundle`](crate::unlock::LockState::apply_bundle)'s
/// question.
pub fn open_bundle(bytes: &[u8], config: &LockConfig) -> Result<OpenedBundle, SyncError> {
    let opened = open_frame(bytes, &config.issuer_keys)?;
    let (mut bundle, sealed) = decode_payload(opened.payload)?;
    if bundle.lock_id != config.lock_id {
        return Err(SyncError::Foreign {
            lock_id: bundle.lock_id,
        });
    }
    if let Some(s) = sealed {
        let plaintext = seal::open(&config.key, bundle.binding(), &s.ephemeral, s.ciphertext)
            .ok_or(SyncError::Undecryptable)?;
        bundle.doorcodes = decode_doorcodes(&plaintext)?;
        bundle.validate_doorcodes()?;
        // As for every signed payload: one value, one encoding.
        if encode_doorcodes(&bundle.doorcodes) != *plaintext {
            return Err(SyncError::Malformed(Malformed::new(
                "doorcodes",
                Problem::NonCanonical,
            )));
        }
    }
    Ok(OpenedBundle {
        bundle,
        kid: opened.kid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle() -> SyncBundle {
        SyncBundle {
            lock_id: Id([0x10; 16]),
            iteration: 3,
            base_iteration: 2,
            issued_at: 1_781_524_800,
            revocations: alloc::vec![
                RevocationEntry {
                    credential_id: Id([9; 16]),
                    expires_at: None,
                },
                RevocationEntry {
                    credential_id: Id([8; 16]),
                    expires_at: Some(5),
                },
            ],
            doorcodes: DoorcodeChanges {
                added: alloc::vec![Doorcode {
                    person_id: Id([7; 16]),
                    code: "2468".into(),
                    expires_at: None,
                }],
                removed: alloc::vec![Id([6; 16])],
            },
            audit_ack: Some(AuditAck {
                epoch: AuditEpoch([0xe0; 8]),
                below: 4,
            }),
        }
    }

    #[test]
    fn payload_and_doorcodes_round_trip_in_canonical_order() {
        let b = bundle();
        let payload = b.encode(None);
        let (back, sealed) = decode_payload(&payload).unwrap();
        assert!(sealed.is_none());
        let mut sorted = b.revocations.clone();
        sorted.sort_unstable_by_key(|e| e.credential_id);
        assert_eq!(back.revocations, sorted);
        assert_eq!(back.encode(None), payload);
        let d = encode_doorcodes(&b.doorcodes);
        assert_eq!(decode_doorcodes(&d).unwrap(), b.doorcodes);
    }

    #[test]
    fn issuers_cannot_mint_what_locks_refuse() {
        type Edit = fn(&mut SyncBundle);
        let cases: [(Edit, &str); 6] = [
            (|b| b.iteration = 0, "iteration"),
            (|b| b.base_iteration = 3, "base_iteration"),
            (
                |b| b.revocations[1].credential_id = Id([9; 16]),
                "revocations.credential_id",
            ),
            (
                |b| b.doorcodes.added[0].code = "12a4".into(),
                "doorcodes.code",
            ),
            (
                |b| b.doorcodes.removed[0] = Id([7; 16]),
                "doorcodes.person_id",
            ),
            (
                |b| {
                    b.base_iteration = 0;
                },
                "doorcodes.removed",
            ),
        ];
        for (edit, field) in cases {
            let mut b = bundle();
            edit(&mut b);
            assert_eq!(b.validate().unwrap_err().field, field);
        }
        let mut b = bundle();
        b.doorcodes.added.push(Doorcode {
            person_id: Id([5; 16]),
            code: "2468".into(),
            expires_at: None,
        });
        assert_eq!(
            b.validate(),
            Err(Malformed::new("doorcodes.code", Problem::Duplicate))
        );
    }

    #[test]
    fn codes_are_four_to_ten_digits() {
        for ok in ["0000", "1234567890"] {
            assert!(Doorcode::is_valid_code(ok));
        }
        for bad in ["123", "12345678901", "12 34", "١٢٣٤", ""] {
            assert!(!Doorcode::is_valid_code(bad), "{bad}");
        }
    }
}
