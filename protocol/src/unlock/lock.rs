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
//! | 3 | Body holds a header and a tag; version is 2 ([`UNLOCK_VERSION`]) | error frame `Undecryptable`; `UnsupportedVersion` |
//! | 4 | Lock id is this lock's | error frame `WrongLock` |
//! | 5 | `E` is a point; the ciphertext opens under the session key | error frame `Undecryptable` |
//! | 6 | The payload is well formed, then only zeros up to one of [`crate::unlock::REQUEST_BODY_SIZES`] | `BadCredential` |
//! | - | A signed time in the request corrects the clock ([`crate::sync::time`]) | - |
//! | 7 | `|t - now| <= tolerance` | `ClockUntrusted` |
//! | 8 | `E` not in the replay cache, nor expiring by its floor | `Replayed` |
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
//!
//! Step 9's signature check is skipped for a document whose exact bytes the lock verified
//! before, in the same state, under an issuer key it still holds ([`VerifiedDocuments`]);
//! every other step runs on every request.
//!
//! `now` is the lock's hardware clock wherever it is an argument; the lock's time is that plus
//! the correction issuer-signed time made ([`LockState::now`]). A `LockSession` (`crate::session`) also takes
//! the Door Sync messages (bundle transfers, audit pulls) on the same connection, after an
//! unlock or without one (`crate::sync`).

use alloc::vec::Vec;

use p256::ecdsa::{Signature, VerifyingKey};
use p256::PublicKey;
use rand_core::CryptoRngCore;
use sha2::{Digest, Sha256};

use crate::access::{decode_access, decode_access_verified_before, AccessError, VerifiedAccess};
use crate::audit::{AuditEpoch, AuditEvent, AuditLog};
use crate::curve;
use crate::ids::Id;
use crate::keys::{IssuerKeys, LockKey};
use crate::revocation::RevocationList;
use crate::schedule::Decision;
use crate::sync::state::{Keypad, PartialTransfer, SyncState};
use crate::sync::time::{ClockState, TimeUpdate};
use crate::unlock::codec::{
    self, RequestHeader, RequestPayload, MIN_REQUEST_BODY, REQUEST_HEADER_LEN, RESPONSE_AAD,
};
use crate::unlock::keys::{SessionKeys, NONCE_LEN};
use crate::unlock::verified::{Stamp, VerifiedDocuments};
use crate::unlock::{transcript, DenyReason, UnlockOutcome, UnlockResult, UNLOCK_VERSION};
use crate::wire::{kind, ErrorCode, Message};
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
///
/// The cache also keeps a floor: the latest expiry it ever pruned. A request that would expire
/// by then is refused as a replay. While the clock only moves forward that never matters (such
/// a request is stale anyway), but once signed time steps a fast clock back, a request whose
/// entry was pruned before the step could be fresh again: the floor refuses it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplayCache {
    capacity: usize,
    entries: Vec<(Fingerprint, UnixTime)>,
    floor: Option<UnixTime>,
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
            floor: None,
        }
    }

    /// Rebuilds a cache from persisted entries and floor (what [`ReplayCache::entries`] and
    /// [`ReplayCache::floor`] returned). Entries beyond `capacity` are kept, not forgotten:
    /// the cache refuses new ones until enough have expired.
    pub fn restore(
        capacity: usize,
        entries: impl IntoIterator<Item = (Fingerprint, UnixTime)>,
        floor: Option<UnixTime>,
    ) -> ReplayCache {
        ReplayCache {
            capacity,
            entries: entries.into_iter().collect(),
            floor,
        }
    }

    /// The latest expiry pruned so far.
    pub fn floor(&self) -> Option<UnixTime> {
        self.floor
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

    /// Whether a request whose entry would expire at `expires_at` may be one already pruned:
    /// in the cache, or expiring no later than the floor.
    pub fn may_have_seen(&self, fingerprint: &Fingerprint, expires_at: UnixTime) -> bool {
        self.contains(fingerprint) || self.floor.is_some_and(|floor| expires_at <= floor)
    }

    /// Frees entries that expired before `now`, raising the floor to the latest of them.
    pub fn prune(&mut self, now: UnixTime) {
        let mut floor = self.floor;
        self.entries.retain(|&(_, expires_at)| {
            let live = now <= expires_at;
            if !live {
                floor = floor.max(Some(expires_at));
            }
            live
        });
        self.floor = floor;
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

/// What a lock keeps; the caller persists what each [`LockReply::persist`] names before it
/// sends the reply.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LockState {
    /// From revocation documents (`crate::revocation`): kept beside the bundles' list, and a
    /// credential on either is revoked.
    pub revocations: RevocationList,
    pub replay: ReplayCache,
    /// Signed audit records no server has acknowledged; every decision adds one.
    pub audit: AuditLog,
    /// What sync bundles gave the lock: its sync iteration, revocation floors and doorcodes.
    pub sync: SyncState,
    /// The correction issuer-signed time made to the hardware clock.
    pub clock: ClockState,
    pub keypad: Keypad,
    /// A bundle arriving over BLE, up to the last acknowledged byte. The reference lock keeps
    /// it in its own file: it changes with every block, the rest rarely.
    pub transfer: Option<PartialTransfer>,
    /// Access documents whose issuer signature verified: a cache, not persisted.
    pub verified: VerifiedDocuments,
}

impl LockState {
    /// A lock's state when it starts afresh (first boot, wipe, factory reset): nothing held,
    /// and an audit log of a new `epoch`, drawn at random by the caller
    /// ([`AuditEpoch::random`]). `Default` uses the all-zero epoch, for tests only.
    pub fn new(epoch: AuditEpoch) -> LockState {
        LockState {
            audit: AuditLog::new(epoch),
            ..LockState::default()
        }
    }

    /// What the cache of verified documents must find unchanged to use an entry.
    fn stamp(&self) -> Stamp {
        Stamp {
            revocations: self.revocations.iteration(),
            sync: self.sync.iteration(),
            clock_offset: self.clock.offset,
            last_signed_time: self.clock.last_signed_time,
            epoch: self.audit.epoch().0,
        }
    }
}

/// A decided request: what the lock concluded and the event it recorded.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct LockDecision {
    pub result: UnlockResult,
    pub event: AuditEvent,
    /// The person whose credential for this door the phone proved: the issuer's and the
    /// device's signatures verified (whatever the schedule said).
    pub holder: Option<Id>,
}

/// What the caller must persist before sending a reply: nothing sent may outrun what a restart
/// would remember.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct Persist {
    /// Everything in [`LockState`] but the transfer.
    pub state: bool,
    /// With `state`: only what a decision changes (an unlock or a keypad entry) changed: the
    /// audit log, the replay cache, the clock correction and the keypad. The revocations and
    /// what bundles gave (the larger part) are as they were, so a store may append the
    /// decision rather than rewrite the state.
    pub decision_only: bool,
    /// [`LockState::transfer`] (now `None` if the transfer ended).
    pub transfer: bool,
}

impl Persist {
    /// What an unlock decision or a keypad entry asks for.
    pub const DECISION: Persist = Persist {
        state: true,
        decision_only: true,
        transfer: false,
    };
}

/// What to send back, and the decision if there was one.
#[derive(Clone, Debug)]
pub struct LockReply {
    /// The answer: notify its [`Message::fragments`] in order.
    pub message: Message,
    /// For unlock requests: `None` when the request could not be opened (the answer is an
    /// error frame, and there is no credential to speak of); otherwise the lock opens the door
    /// if it is granted. `None` for every other message.
    pub decision: Option<LockDecision>,
    pub persist: Persist,
}

pub(crate) fn refuse(code: ErrorCode) -> LockReply {
    LockReply {
        message: code.message(),
        decision: None,
        persist: Persist::default(),
    }
}

/// Answers one whole unlock request (steps 2-13 of the module's table) and records the decision
/// in the state's audit log. `now` is the hardware clock; `rng` draws the response nonce.
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
    let shared = curve::ecdh(
        config.key.signing_key().as_nonzero_scalar(),
        e_pub.as_affine(),
    );
    let keys = SessionKeys::derive(&shared[..], config.lock_id, &ephemeral, &lock_pub);
    let Some(plaintext) = keys.open_request(&RequestHeader::aad(&header_bytes), ciphertext) else {
        return refuse(ErrorCode::Undecryptable);
    };

    let verdict = match RequestPayload::decode(&plaintext) {
        Ok(request) => decide_with_time(config, state, &request, &header, &lock_pub, now),
        Err(_) => Verdict {
            result: UnlockResult::Denied(DenyReason::BadCredential),
            credential: None,
            holder: None,
            now: state.now(now),
        },
    };
    let (result, credential_id, now) = (verdict.result, verdict.credential, verdict.now);
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
    state.audit.record(&config.key, now, event);
    let outcome = UnlockOutcome {
        result,
        lock_time: now,
        sync_iteration: state.sync_iteration(),
        pending_audit: state.audit.pending(),
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
        decision: Some(LockDecision {
            result,
            event,
            holder: verdict.holder,
        }),
        persist: Persist::DECISION,
    }
}

/// What steps 6-13 concluded.
struct Verdict {
    result: UnlockResult,
    /// The credential, once its document verified.
    credential: Option<Id>,
    holder: Option<Id>,
    /// The lock's time the decision was made at (after any correction).
    now: UnixTime,
}

/// Step 6a, then steps 7-13 by the corrected clock; `clock` is the hardware clock.
///
/// A signed time that does not verify, is for another lock or is not newer than the last one
/// changes nothing: it is optional, and the unlock is judged as if it were absent. A step
/// forward stands whatever the verdict (true time is at least the signed time). A step back
/// rests on the phone's clock `t` as well, which only the device signature (step 11) vouches
/// for: it is undone, and the verdict's time with it, unless the holder was proven.
fn decide_with_time(
    config: &LockConfig,
    state: &mut LockState,
    request: &RequestPayload<'_>,
    header: &RequestHeader,
    lock_pub: &[u8; 33],
    clock: UnixTime,
) -> Verdict {
    let before = state.clock;
    let step = match request
        .signed_time
        .map(|t| state.take_signed_time(config, t, clock, Some(request.time)))
    {
        Some(Ok(TimeUpdate::Taken { step })) => step,
        _ => 0,
    };
    let mut verdict = decide(config, state, request, header, lock_pub, clock);
    if step < 0 && verdict.holder.is_none() {
        state.clock = before;
        verdict.now = state.now(clock);
    } else if step != 0 {
        state
            .audit
            .record(&config.key, verdict.now, AuditEvent::ClockSet { step });
    }
    verdict
}

/// Steps 7-13; `clock` is the hardware clock.
fn decide(
    config: &LockConfig,
    state: &mut LockState,
    request: &RequestPayload<'_>,
    header: &RequestHeader,
    lock_pub: &[u8; 33],
    clock: UnixTime,
) -> Verdict {
    let now = state.now(clock);
    let verdict = |result, credential, holder| Verdict {
        result,
        credential,
        holder,
        now,
    };
    let deny = |reason| UnlockResult::Denied(reason);
    state.replay.prune(now);
    let tolerance = config.clock_tolerance;
    if request.time.abs_diff(now) > u64::from(tolerance) {
        return verdict(deny(DenyReason::ClockUntrusted), None, None);
    }
    let fingerprint = fingerprint(&header.ephemeral);
    let expires_at = request.time.saturating_add(i64::from(tolerance));
    if state.replay.may_have_seen(&fingerprint, expires_at) {
        return verdict(deny(DenyReason::Replayed), None, None);
    }
    let digest: [u8; 32] = Sha256::digest(request.document).into();
    let stamp = state.stamp();
    let decoded = match state.verified.lookup(&digest, &config.issuer_keys, stamp) {
        Some(kid) => decode_access_verified_before(request.document, kid),
        None => decode_access(request.document, &config.issuer_keys),
    };
    let access = match decoded {
        Ok(access) => access,
        Err(_) => return verdict(deny(DenyReason::BadCredential), None, None),
    };
    let credential = Some(access.document().credential_id);
    let checked = access
        .check(config.door_id, now, &state.revocations)
        .and_then(|()| {
            // Bundles' floors count as much as revocation documents'.
            match state.sync.voids(access.document(), now) {
                true => Err(AccessError::Revoked),
                false => Ok(()),
            }
        });
    if let Err(e) = checked {
        let reason = match e {
            AccessError::WrongDoor => DenyReason::WrongDoor,
            AccessError::NotYetValid { .. } => DenyReason::NotYetValid,
            AccessError::Expired { .. } => DenyReason::Expired,
            AccessError::Revoked => DenyReason::Revoked,
            // check() reports only the four above; anything else is no credential here.
            _ => DenyReason::BadCredential,
        };
        return verdict(deny(reason), credential, None);
    }
    if !device_signed(&access, header, lock_pub, request) {
        return verdict(deny(DenyReason::BadCredential), credential, None);
    }
    let holder = Some(access.document().person_id);
    state
        .verified
        .remember(digest, access.kid(), &config.issuer_keys, stamp);
    if !state.replay.insert(fingerprint, expires_at) {
        return verdict(deny(DenyReason::Busy), credential, holder);
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
    verdict(result, credential, holder)
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
    curve::verify(&device_key, &message, &signature)
}

fn fingerprint(ephemeral: &[u8; 33]) -> Fingerprint {
    let digest = Sha256::digest(ephemeral);
    let mut f = [0u8; 16];
    f.copy_from_slice(&digest[..16]);
    f
}
