//! The lock's side of an unlock, sans-I/O: chunks, the lock's clock reading and randomness in;
//! the answer and an audit event out. The lock's persistent state ([`LockState`]) is the
//! caller's to store; firmware and the reference lock (door-lock) run this same code.
//!
//! Steps, in order; the first that fails decides (docs/PROTOCOL.md, "Lock verification"):
//!
//! | # | Check | Answer |
//! |---|---|---|
//! | 1 | Chunks reassemble | error frame `Framing` |
//! | 2 | Message type is an unlock request | error frame `UnknownMessage` |
//! | 3 | Body holds a header and a tag; version is 1 | error frame `Undecryptable`; `UnsupportedVersion` |
//! | 4 | Lock id is this lock's | error frame `WrongLock` |
//! | 5 | `E` is a point; the ciphertext opens under the session key | error frame `Undecryptable` |
//! | 6 | The payload is well formed | `BadCredential` |
//! | 7 | `|t - now| <= tolerance` | `ClockUntrusted` |
//! | 8 | `E` not in the replay cache | `Replayed` |
//! | 9 | Issuer signature and document ([`decode_access`]) | `BadCredential` |
//! | 10 | Door, validity, revocation ([`VerifiedAccess::check`]) | `WrongDoor`, `NotYetValid`, `Expired`, `Revoked` |
//! | 11 | Device signature over the transcript, low S | `BadCredential` |
//! | 12 | Room in the replay cache for `E` | `Busy` |
//! | 13 | Schedule on the lock's clock ([`VerifiedAccess::decision`]) | `OutOfSchedule`, `NotYetValid`, `Expired` |
//! | - | All passed | `Granted` |
//!
//! Replay-cache lookups come before the signature checks, so a replay costs no ECDSA; entries
//! are added only once the device signature verified, so filling the cache takes a valid
//! credential, not just the lock's public key.

use alloc::vec::Vec;

use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::PublicKey;
use rand_core::CryptoRngCore;
use sha2::{Digest, Sha256};

use crate::access::{decode_access, AccessError, VerifiedAccess};
use crate::audit::AuditEvent;
use crate::ids::Id;
use crate::keys::{IssuerKeys, LockKey};
use crate::revocation::RevocationList;
use crate::schedule::Decision;
use crate::unlock::codec::{
    self, RequestHeader, RequestPayload, MIN_REQUEST_BODY, REQUEST_HEADER_LEN, RESPONSE_AAD,
};
use crate::unlock::keys::{SessionKeys, NONCE_LEN};
use crate::unlock::{transcript, DenyReason, UnlockOutcome, UnlockResult, UNLOCK_VERSION};
use crate::wire::{kind, ErrorCode, Message, Reassembler};
use crate::UnixTime;

/// How far the phone's clock and the lock's may differ before the lock refuses to judge.
pub const DEFAULT_CLOCK_TOLERANCE: u32 = 120;

/// What a lock is: fixed at installation.
#[derive(Clone, Debug)]
pub struct LockConfig {
    pub lock_id: Id,
    /// The door this lock opens: what access documents must grant.
    pub door_id: Id,
    pub key: LockKey,
    /// The issuer keys whose access and revocation documents the lock accepts.
    pub issuer_keys: IssuerKeys,
    /// Seconds; see [`DEFAULT_CLOCK_TOLERANCE`].
    pub clock_tolerance: u32,
}

impl LockConfig {
    /// A lock from its installed values, with the default clock tolerance.
    pub fn new(lock_id: Id, door_id: Id, key: LockKey, issuer_keys: IssuerKeys) -> LockConfig {
        LockConfig {
            lock_id,
            door_id,
            key,
            issuer_keys,
            clock_tolerance: DEFAULT_CLOCK_TOLERANCE,
        }
    }

    /// A new lock for `door_id`: a random lock id and a fresh static key (tests, testbeds).
    pub fn generate(
        door_id: Id,
        issuer_keys: IssuerKeys,
        rng: &mut impl CryptoRngCore,
    ) -> LockConfig {
        let mut lock_id = Id::default();
        rng.fill_bytes(&mut lock_id.0);
        LockConfig::new(lock_id, door_id, LockKey::generate(rng), issuer_keys)
    }
}

/// A fingerprint of an ephemeral key: the first 16 bytes of SHA-256 over its SEC1 compressed
/// form. Ephemeral keys are random, so 128 bits name them without collisions and halve the
/// cache's memory.
pub type Fingerprint = [u8; 16];

/// The ephemeral keys a lock has accepted, each kept until a request carrying it would be
/// refused as stale anyway (`t + tolerance` by the lock's clock).
///
/// Bounded: when every slot holds a live entry, new requests are refused
/// ([`DenyReason::Busy`]) rather than an entry evicted, since an evicted entry could be
/// replayed. The default capacity (512) covers one accepted unlock every half second for the
/// longest an entry lives (twice the tolerance).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplayCache {
    capacity: usize,
    entries: Vec<(Fingerprint, UnixTime)>,
}

impl Default for ReplayCache {
    fn default() -> ReplayCache {
        ReplayCache::with_capacity(ReplayCache::DEFAULT_CAPACITY)
    }
}

impl ReplayCache {
    pub const DEFAULT_CAPACITY: usize = 512;

    pub fn with_capacity(capacity: usize) -> ReplayCache {
        ReplayCache {
            capacity,
            entries: Vec::new(),
        }
    }

    /// Rebuilds a cache from persisted entries (what [`ReplayCache::entries`] returned).
    /// Entries beyond `capacity` are kept, not forgotten: the cache refuses new ones until
    /// enough have expired.
    pub fn restore(
        capacity: usize,
        entries: impl IntoIterator<Item = (Fingerprint, UnixTime)>,
    ) -> ReplayCache {
        ReplayCache {
            capacity,
            entries: entries.into_iter().collect(),
        }
    }

    /// `(fingerprint, expires_at)` pairs: an entry stops mattering once `now > expires_at`.
    pub fn entries(&self) -> &[(Fingerprint, UnixTime)] {
        &self.entries
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn contains(&self, fingerprint: &Fingerprint) -> bool {
        self.entries.iter().any(|(f, _)| f == fingerprint)
    }

    /// Frees entries that expired before `now`.
    pub fn prune(&mut self, now: UnixTime) {
        self.entries.retain(|&(_, expires_at)| now <= expires_at);
    }

    /// Adds an entry; `false` (and nothing added) when the cache is full.
    pub fn insert(&mut self, fingerprint: Fingerprint, expires_at: UnixTime) -> bool {
        if self.entries.len() >= self.capacity {
            return false;
        }
        self.entries.push((fingerprint, expires_at));
        true
    }
}

/// What a lock keeps between unlocks; the caller persists it after every decision.
#[derive(Clone, Debug, Default)]
pub struct LockState {
    pub revocations: RevocationList,
    pub replay: ReplayCache,
    /// Audit records the lock holds that no server has acknowledged. The caller sets it from
    /// its audit log; each decision counts the record it yields, so the answer reports the
    /// number the phone will find after this unlock.
    pub pending_audit: u32,
}

/// A decided request: what the lock concluded and the event it must record.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct LockDecision {
    pub result: UnlockResult,
    pub event: AuditEvent,
}

/// What to send back, and the decision if there was one.
#[derive(Clone, Debug)]
pub struct LockReply {
    /// The answer: notify its [`Message::fragments`] in order.
    pub message: Message,
    /// `None` when the request could not be opened (the answer is an error frame, and there
    /// is no credential to speak of); otherwise the lock opens the door if it is granted, and
    /// records the event.
    pub decision: Option<LockDecision>,
}

/// One BLE connection's receiving side.
#[derive(Default)]
pub struct LockSession {
    rx: Reassembler,
}

impl LockSession {
    pub fn new() -> LockSession {
        LockSession::default()
    }

    /// One written chunk. `None`: more chunks are due. A reassembly failure answers with an
    /// error frame and drops the partial message.
    pub fn on_fragment(
        &mut self,
        config: &LockConfig,
        state: &mut LockState,
        fragment: &[u8],
        now: UnixTime,
        rng: &mut impl CryptoRngCore,
    ) -> Option<LockReply> {
        match self.rx.push(fragment) {
            Ok(None) => None,
            Ok(Some(message)) => Some(respond(config, state, &message, now, rng)),
            Err(_) => Some(refuse(ErrorCode::Framing)),
        }
    }
}

fn refuse(code: ErrorCode) -> LockReply {
    LockReply {
        message: code.message(),
        decision: None,
    }
}

/// Answers one whole message (steps 2-13 of the module's table). `now` is the lock's own
/// clock; `rng` draws the response nonce.
pub fn respond(
    config: &LockConfig,
    state: &mut LockState,
    message: &Message,
    now: UnixTime,
    rng: &mut impl CryptoRngCore,
) -> LockReply {
    if message.kind != kind::UNLOCK_REQUEST {
        return refuse(ErrorCode::UnknownMessage);
    }
    let body = &message.body;
    if body.len() < MIN_REQUEST_BODY {
        return refuse(ErrorCode::Undecryptable);
    }
    let (header, ciphertext) = body.split_at(REQUEST_HEADER_LEN);
    if header[0] != UNLOCK_VERSION {
        return refuse(ErrorCode::UnsupportedVersion);
    }
    let mut header_bytes = [0u8; REQUEST_HEADER_LEN];
    header_bytes.copy_from_slice(header);
    let mut ephemeral = [0u8; 33];
    ephemeral.copy_from_slice(&header[17..]);
    let header = RequestHeader {
        lock_id: Id::from_slice(&header[1..17]).unwrap_or_default(),
        ephemeral,
    };
    if header.lock_id != config.lock_id {
        return refuse(ErrorCode::WrongLock);
    }
    // Compressed form only: the transcript and key schedule bind these exact 33 bytes.
    let Ok(e_pub) = PublicKey::from_sec1_bytes(&ephemeral) else {
        return refuse(ErrorCode::Undecryptable);
    };
    let lock_pub = config.key.public().to_sec1_compressed();
    let shared = p256::ecdh::diffie_hellman(
        config.key.signing_key().as_nonzero_scalar(),
        e_pub.as_affine(),
    );
    let keys = SessionKeys::derive(
        shared.raw_secret_bytes(),
        config.lock_id,
        &ephemeral,
        &lock_pub,
    );
    let Some(plaintext) = keys.open_request(&RequestHeader::aad(&header_bytes), ciphertext) else {
        return refuse(ErrorCode::Undecryptable);
    };

    state.replay.prune(now);
    let (result, credential_id) = decide(config, state, &plaintext, &header, &lock_pub, now);
    let event = match result {
        UnlockResult::Granted => AuditEvent::UnlockGranted {
            // decide() grants only with a verified credential.
            credential_id: credential_id.unwrap_or_default(),
            door_id: config.door_id,
        },
        UnlockResult::Denied(reason) => AuditEvent::UnlockDenied {
            credential_id,
            reason,
        },
    };
    state.pending_audit = state.pending_audit.saturating_add(1);
    let outcome = UnlockOutcome {
        result,
        lock_time: now,
        sync_iteration: state.revocations.iteration(),
        pending_audit: state.pending_audit,
    };
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    let sealed = keys.seal_response(&nonce, &RESPONSE_AAD, &codec::encode_outcome(&outcome));
    let mut body = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
    body.push(UNLOCK_VERSION);
    body.extend_from_slice(&nonce);
    body.extend_from_slice(&sealed);
    LockReply {
        message: Message {
            kind: kind::UNLOCK_RESPONSE,
            body,
        },
        decision: Some(LockDecision { result, event }),
    }
}

/// Steps 6-13: the result, and the credential once its document verified.
fn decide(
    config: &LockConfig,
    state: &mut LockState,
    plaintext: &[u8],
    header: &RequestHeader,
    lock_pub: &[u8; 33],
    now: UnixTime,
) -> (UnlockResult, Option<Id>) {
    let deny = |reason, credential| (UnlockResult::Denied(reason), credential);
    let Ok(request) = RequestPayload::decode(plaintext) else {
        return deny(DenyReason::BadCredential, None);
    };
    let tolerance = config.clock_tolerance;
    if request.time.abs_diff(now) > u64::from(tolerance) {
        return deny(DenyReason::ClockUntrusted, None);
    }
    let fingerprint = fingerprint(&header.ephemeral);
    if state.replay.contains(&fingerprint) {
        return deny(DenyReason::Replayed, None);
    }
    let access = match decode_access(request.document, &config.issuer_keys) {
        Ok(access) => access,
        Err(_) => return deny(DenyReason::BadCredential, None),
    };
    let credential = Some(access.document().credential_id);
    if let Err(e) = access.check(config.door_id, now, &state.revocations) {
        let reason = match e {
            AccessError::WrongDoor => DenyReason::WrongDoor,
            AccessError::NotYetValid { .. } => DenyReason::NotYetValid,
            AccessError::Expired { .. } => DenyReason::Expired,
            AccessError::Revoked => DenyReason::Revoked,
            // check() reports only the four above; anything else is no credential here.
            _ => DenyReason::BadCredential,
        };
        return deny(reason, credential);
    }
    if !device_signed(&access, header, lock_pub, &request) {
        return deny(DenyReason::BadCredential, credential);
    }
    if !state.replay.insert(
        fingerprint,
        request.time.saturating_add(i64::from(tolerance)),
    ) {
        return deny(DenyReason::Busy, credential);
    }
    let result = match access.decision(config.door_id, now) {
        Some(Decision::Allowed { .. }) => UnlockResult::Granted,
        Some(Decision::OutOfSchedule { next_allowed }) => {
            UnlockResult::Denied(DenyReason::OutOfSchedule { next_allowed })
        }
        Some(Decision::NotYetValid { .. }) => UnlockResult::Denied(DenyReason::NotYetValid),
        Some(Decision::Expired { .. }) => UnlockResult::Denied(DenyReason::Expired),
        // check() found the grant, so this cannot happen; refusing is the safe reading.
        None => UnlockResult::Denied(DenyReason::WrongDoor),
    };
    (result, credential)
}

fn device_signed(
    access: &VerifiedAccess,
    header: &RequestHeader,
    lock_pub: &[u8; 33],
    request: &RequestPayload<'_>,
) -> bool {
    // decode_access checked the device key is on the curve.
    let Ok(device_key) = VerifyingKey::from_sec1_bytes(&access.document().device_key) else {
        return false;
    };
    let Ok(signature) = Signature::from_slice(&request.signature) else {
        return false;
    };
    // Phones send low S; refusing the twin keeps one valid request per signature.
    if signature.normalize_s().is_some() {
        return false;
    }
    let message = transcript(
        header.lock_id,
        &header.ephemeral,
        lock_pub,
        request.time,
        request.document,
    );
    device_key.verify(&message, &signature).is_ok()
}

fn fingerprint(ephemeral: &[u8; 33]) -> Fingerprint {
    let digest = Sha256::digest(ephemeral);
    let mut f = [0u8; 16];
    f.copy_from_slice(&digest[..16]);
    f
}
