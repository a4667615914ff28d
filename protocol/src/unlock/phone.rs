//! The phone's side of an unlock, sans-I/O, in three steps around the two things it does not
//! own:
//!
//! 1. [`UnlockPreparation::new`] (while scanning): draws the ephemeral key, runs ECDH with the
//!    lock's cached static key and derives the session keys, and returns the transcript for
//!    the device key to sign.
//! 2. The app's keystore signs the transcript (an async foreign call: hardware keys never
//!    leave it); [`UnlockPreparation::signed`] checks that signature against the device key in
//!    the access document, so a wrong signer is caught before any radio work, and seals the
//!    request.
//! 3. Once connected: [`PreparedUnlock::request_fragments`] for the link's MTU, then each
//!    notified chunk into [`PreparedUnlock::on_fragment`] until it yields the lock's answer.

use alloc::vec::Vec;
use core::fmt;

use p256::ecdh::EphemeralSecret;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use crate::access::{AccessDocument, ACCESS_CONTENT_TYPE};
use crate::cbor::{Malformed, Problem};
use crate::cose;
use crate::ids::Id;
use crate::keys::LockPublicKey;
use crate::sync::time::MAX_SIGNED_TIME_SIZE;
use crate::unlock::codec::{
    self, RequestHeader, RequestPayload, RESPONSE_AAD, RESPONSE_HEADER_LEN,
};
use crate::unlock::keys::{SessionKeys, NONCE_LEN};
use crate::unlock::{transcript, UnlockOutcome, UNLOCK_VERSION};
use crate::wire::{kind, ErrorCode, Message, Reassembler, WireError};
use crate::UnixTime;

/// The lock to open and the credential to present, all from the phone's cache.
#[derive(Clone, Debug)]
pub struct UnlockTarget {
    pub lock_id: Id,
    /// The lock's static key, which the phone's cache holds for each lock it can open.
    pub lock_key: LockPublicKey,
    /// The signed access document (COSE_Sign1 bytes) that grants the lock's door.
    pub access_document: Vec<u8>,
}

/// Why the phone could not prepare an unlock or read the lock's answer.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PhoneError {
    /// The cached access document is not a well-formed document (its device key is unreadable).
    Document(Malformed),
    /// The request would exceed the largest message a lock accepts.
    TooLarge,
    /// The keystore's signature is neither 64-byte `r || s` nor DER.
    SignatureEncoding,
    /// The signature does not verify under the device key the document names: the keystore
    /// signed with another key, so the lock would refuse the request.
    WrongSigner,
    /// The lock's chunks did not reassemble.
    Wire(WireError),
    /// The lock could not open the request and said why, in the clear. Unauthenticated: a
    /// hint (refresh the lock's key, retry), never proof of anything.
    Refused(ErrorCode),
    /// The response did not authenticate under this session's key: the lock is not the one
    /// whose key the phone holds, or the response was altered on the way.
    NotGenuine,
    /// A message type the phone does not expect here.
    UnexpectedMessage { kind: u8 },
    /// An authentic response whose contents are malformed (a faulty lock).
    Malformed(Malformed),
    /// The answer has already been read: this unlock is over.
    Finished,
}

impl fmt::Display for PhoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PhoneError::Document(m) => write!(f, "cached access document unusable: {m}"),
            PhoneError::TooLarge => f.write_str("unlock request too large"),
            PhoneError::SignatureEncoding => f.write_str("device signature is not r||s or DER"),
            PhoneError::WrongSigner => {
                f.write_str("device signature does not match the document's device key")
            }
            PhoneError::Wire(e) => write!(f, "response framing: {e}"),
            PhoneError::Refused(c) => write!(f, "lock refused the request: {c}"),
            PhoneError::NotGenuine => {
                f.write_str("response not authentic: not the expected lock, or altered")
            }
            PhoneError::UnexpectedMessage { kind } => write!(f, "unexpected message type {kind}"),
            PhoneError::Malformed(m) => write!(f, "malformed response: {m}"),
            PhoneError::Finished => f.write_str("unlock already finished"),
        }
    }
}

impl core::error::Error for PhoneError {}

/// An unlock prepared up to the device signature.
pub struct UnlockPreparation {
    header: [u8; codec::REQUEST_HEADER_LEN],
    keys: SessionKeys,
    document: Vec<u8>,
    time: UnixTime,
    device_key: VerifyingKey,
    transcript: Vec<u8>,
    signed_time: Option<Vec<u8>>,
}

impl UnlockPreparation {
    /// Everything that needs no lock input: the ephemeral key, ECDH with the lock's static
    /// key, the session keys and the transcript. Returns the preparation and the message the
    /// device key must sign (ECDSA P-256 with SHA-256 over it, as Android's `SHA256withECDSA`
    /// and iOS's `ecdsaSignatureMessageX962SHA256` do). `now` is the phone's clock; the lock
    /// accepts it within its tolerance (two minutes by default), which leaves ample time to
    /// connect.
    pub fn new(
        target: UnlockTarget,
        now: UnixTime,
        rng: &mut impl CryptoRngCore,
    ) -> Result<(UnlockPreparation, Vec<u8>), PhoneError> {
        // The phone vetted the document when it cached it; here it only reads the device key.
        let payload = cose::payload_unverified(&target.access_document, ACCESS_CONTENT_TYPE)
            .map_err(PhoneError::Document)?;
        let document = AccessDocument::from_cbor(payload).map_err(PhoneError::Document)?;
        let device_key = VerifyingKey::from_sec1_bytes(&document.device_key)
            .map_err(|_| PhoneError::Document(Malformed::new("device_key", Problem::NotOnCurve)))?;

        let secret = EphemeralSecret::random(rng);
        let mut ephemeral = [0u8; 33];
        ephemeral.copy_from_slice(secret.public_key().to_encoded_point(true).as_bytes());
        let lock_key = target.lock_key.to_sec1_compressed();
        let shared = secret.diffie_hellman(&(*target.lock_key.verifying_key()).into());
        let keys = SessionKeys::derive(
            shared.raw_secret_bytes(),
            target.lock_id,
            &ephemeral,
            &lock_key,
        );
        let transcript = transcript(
            target.lock_id,
            &ephemeral,
            &lock_key,
            now,
            &target.access_document,
        );
        let header = RequestHeader {
            lock_id: target.lock_id,
            ephemeral,
        }
        .encode();
        let to_sign = transcript.clone();
        Ok((
            UnlockPreparation {
                header,
                keys,
                document: target.access_document,
                time: now,
                device_key,
                transcript,
                signed_time: None,
            },
            to_sign,
        ))
    }

    /// Brings an issuer-signed time (the COSE bytes the server signed) in the request, so a
    /// lock whose clock drifted corrects it before judging this unlock (docs/PROTOCOL.md,
    /// "Signed time"). The request is sealed, and the time is the issuer's word, so it is not
    /// part of the transcript the device key signs.
    pub fn with_signed_time(mut self, signed_time: Vec<u8>) -> UnlockPreparation {
        self.signed_time = Some(signed_time);
        self
    }

    /// Takes the keystore's signature over the transcript (64-byte `r || s` or DER), checks it
    /// against the document's device key, and seals the request. Keystores return either S;
    /// the request carries the low-S form, the only one locks accept. A signed time above
    /// 256 bytes (no genuine one is) makes the request [`PhoneError::TooLarge`].
    pub fn signed(self, signature: &[u8]) -> Result<PreparedUnlock, PhoneError> {
        if self
            .signed_time
            .as_ref()
            .is_some_and(|t| t.len() > MAX_SIGNED_TIME_SIZE)
        {
            return Err(PhoneError::TooLarge);
        }
        let signature = if signature.len() == 64 {
            Signature::from_slice(signature)
        } else {
            Signature::from_der(signature)
        }
        .map_err(|_| PhoneError::SignatureEncoding)?;
        let signature = signature.normalize_s().unwrap_or(signature);
        self.device_key
            .verify(&self.transcript, &signature)
            .map_err(|_| PhoneError::WrongSigner)?;
        self.seal(signature)
    }

    /// Seals the request around any signature: `signed` checks it first; the attack tests
    /// below do not, as a tampered phone would not.
    fn seal(self, signature: Signature) -> Result<PreparedUnlock, PhoneError> {
        let payload = RequestPayload {
            document: &self.document,
            time: self.time,
            signature: signature.to_bytes().into(),
            signed_time: self.signed_time.as_deref(),
        }
        .encode()
        .ok_or(PhoneError::TooLarge)?;
        self.seal_payload(&Zeroizing::new(payload))
    }

    /// Seals a padded payload; the attack tests below hand it badly padded ones.
    fn seal_payload(self, payload: &[u8]) -> Result<PreparedUnlock, PhoneError> {
        let ciphertext = self
            .keys
            .seal_request(&RequestHeader::aad(&self.header), payload);
        let mut body = Vec::with_capacity(self.header.len() + ciphertext.len());
        body.extend_from_slice(&self.header);
        body.extend_from_slice(&ciphertext);
        let request = Message::new(kind::UNLOCK_REQUEST, body).map_err(|_| PhoneError::TooLarge)?;
        Ok(PreparedUnlock {
            request,
            keys: self.keys,
            rx: Reassembler::new(),
            finished: false,
        })
    }
}

/// A sealed request, ready to send as soon as a connection is up, and the key to read the
/// answer.
pub struct PreparedUnlock {
    request: Message,
    keys: SessionKeys,
    rx: Reassembler,
    finished: bool,
}

impl PreparedUnlock {
    /// The request cut for a link with this ATT MTU: write them in order.
    pub fn request_fragments(&self, mtu: u16) -> Vec<Vec<u8>> {
        self.request.fragments(mtu)
    }

    /// One notified chunk from the lock. `Ok(None)`: more chunks are due. `Ok(Some)`: the
    /// lock's authenticated answer. After an answer or an error this unlock is over.
    pub fn on_fragment(&mut self, fragment: &[u8]) -> Result<Option<UnlockOutcome>, PhoneError> {
        if self.finished {
            return Err(PhoneError::Finished);
        }
        let result = self.take(fragment);
        if !matches!(result, Ok(None)) {
            self.finished = true;
        }
        result
    }

    fn take(&mut self, fragment: &[u8]) -> Result<Option<UnlockOutcome>, PhoneError> {
        let Some(message) = self.rx.push(fragment).map_err(PhoneError::Wire)? else {
            return Ok(None);
        };
        match message.kind {
            kind::UNLOCK_RESPONSE => self.open(&message.body).map(Some),
            kind::ERROR => match message.body[..] {
                [code] => Err(ErrorCode::from_u8(code).map(PhoneError::Refused).unwrap_or(
                    PhoneError::Malformed(Malformed::new("error", Problem::OutOfRange)),
                )),
                _ => Err(PhoneError::Malformed(Malformed::new(
                    "error",
                    Problem::WrongType,
                ))),
            },
            kind => Err(PhoneError::UnexpectedMessage { kind }),
        }
    }

    fn open(&self, body: &[u8]) -> Result<UnlockOutcome, PhoneError> {
        // Anything that does not open under the session key, version byte and nonce included
        // (both are authenticated), is the same failure: not this lock's answer.
        let (header, ciphertext) = body
            .split_first_chunk::<RESPONSE_HEADER_LEN>()
            .ok_or(PhoneError::NotGenuine)?;
        if header[0] != UNLOCK_VERSION {
            return Err(PhoneError::NotGenuine);
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&header[1..]);
        let plaintext = self
            .keys
            .open_response(&nonce, &RESPONSE_AAD, ciphertext)
            .ok_or(PhoneError::NotGenuine)?;
        codec::decode_outcome(&plaintext).map_err(PhoneError::Malformed)
    }
}

/// Attacks that need a phone which skips its own checks (a tampered app): the lock must
/// stand on its own.
#[cfg(test)]
mod attacks {
    use super::*;
    use crate::access::{DoorGrant, ACCESS_VERSION};
    use crate::keys::{IssuerKey, IssuerKeys, LockKey};
    use crate::schedule::Schedule;
    use crate::session::LockSession;
    use crate::unlock::lock::{LockConfig, LockState};
    use crate::unlock::{DenyReason, UnlockResult};
    use crate::zone::ZoneRules;
    use p256::ecdsa::signature::Signer;
    use p256::ecdsa::SigningKey;
    use rand_core::OsRng;

    const NOW: UnixTime = 1_795_532_400;
    const DOOR: Id = Id([7; 16]);

    fn document_for(issuer: &IssuerKey, device: &SigningKey) -> Vec<u8> {
        let mut device_key = [0u8; 33];
        device_key.copy_from_slice(device.verifying_key().to_encoded_point(true).as_bytes());
        AccessDocument {
            version: ACCESS_VERSION,
            credential_id: Id([1; 16]),
            person_id: Id([2; 16]),
            device_key,
            grants: alloc::vec![DoorGrant {
                door_id: DOOR,
                schedule: Schedule::always(),
                doorcode: false,
            }],
            not_before: NOW - 300,
            not_after: NOW + 86_400,
            issued_at: NOW - 300,
            access_iteration: 1,
            may_share: false,
            zone: ZoneRules::fixed(0),
        }
        .sign(issuer)
        .unwrap()
    }

    /// A lock, and an unlock for it prepared up to the device signature with a genuine
    /// document that names `holder`'s key.
    fn lock_and_preparation(holder: &SigningKey) -> (LockConfig, UnlockPreparation, Vec<u8>) {
        let issuer = IssuerKey::generate(&mut OsRng);
        let config = LockConfig::new(
            Id([9; 16]),
            DOOR,
            LockKey::generate(&mut OsRng),
            IssuerKeys::single(*issuer.verifying()),
        );
        let target = UnlockTarget {
            lock_id: config.lock_id,
            lock_key: *config.key.public(),
            access_document: document_for(&issuer, holder),
        };
        let (prep, to_sign) = UnlockPreparation::new(target, NOW, &mut OsRng).unwrap();
        (config, prep, to_sign)
    }

    fn low_s(signer: &SigningKey, message: &[u8]) -> Signature {
        let signature: Signature = signer.sign(message);
        signature.normalize_s().unwrap_or(signature)
    }

    fn decision(config: &LockConfig, request: PreparedUnlock) -> UnlockResult {
        let mut session = LockSession::new();
        let mut state = LockState::default();
        let mut reply = None;
        for chunk in request.request_fragments(247) {
            reply = session.on_fragment(config, &mut state, &chunk, NOW, &mut OsRng);
        }
        reply.unwrap().decision.unwrap().result
    }

    /// The lock's decision on a request carrying a genuine document that names `holder`'s
    /// key, signed by `signer`, sealed without the phone's own signature check.
    fn lock_decides(holder: &SigningKey, signer: &SigningKey) -> UnlockResult {
        let (config, prep, to_sign) = lock_and_preparation(holder);
        let request = prep.seal(low_s(signer, &to_sign)).unwrap();
        decision(&config, request)
    }

    #[test]
    fn a_stolen_access_document_without_the_device_key_never_opens() {
        // The thief holds a genuine document (copied from the phone's storage or the
        // server's answer) but not the key it names, and signs with a key of their own.
        let resident = SigningKey::random(&mut OsRng);
        let thief = SigningKey::random(&mut OsRng);
        assert_eq!(lock_decides(&resident, &resident), UnlockResult::Granted);
        assert_eq!(
            lock_decides(&resident, &thief),
            UnlockResult::Denied(DenyReason::BadCredential)
        );
    }

    #[test]
    fn padding_other_than_zeros_up_to_a_listed_size_is_a_bad_credential() {
        let device = SigningKey::random(&mut OsRng);
        let decide_padded = |pad: &dyn Fn(&mut Vec<u8>)| {
            let (config, prep, to_sign) = lock_and_preparation(&device);
            let mut payload = RequestPayload {
                document: &prep.document,
                time: prep.time,
                signature: low_s(&device, &to_sign).to_bytes().into(),
                signed_time: None,
            }
            .encode()
            .unwrap();
            pad(&mut payload);
            decision(&config, prep.seal_payload(&payload).unwrap())
        };
        let bad = UnlockResult::Denied(DenyReason::BadCredential);
        assert_eq!(decide_padded(&|_| {}), UnlockResult::Granted);
        assert_eq!(decide_padded(&|p| *p.last_mut().unwrap() = 1), bad);
        assert_eq!(decide_padded(&|p| p.push(0)), bad);
        assert_eq!(decide_padded(&|p| p.truncate(p.len() - 1)), bad);
        // Unpadded, as version 1 sent it.
        let unpadded = |p: &mut Vec<u8>| {
            while p.last() == Some(&0) {
                p.pop();
            }
        };
        assert_eq!(decide_padded(&unpadded), bad);
    }
}
