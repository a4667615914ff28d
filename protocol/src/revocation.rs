//! Revocation documents, in the manner of Aliro's: issuer-signed lists of revoked credentials
//! carrying a monotonic iteration, which any phone may carry to any lock; and the revocation
//! state a lock or phone keeps.
//!
//! An `Overwrite` document states the whole list; an `Update` document adds to (or changes
//! the expiry of entries in) the list the holder already has. Either is applied only if its
//! iteration is above every iteration applied before, so a courier can neither replay an
//! old list over a newer one nor reorder updates.

use alloc::vec::Vec;
use core::fmt;

use crate::cbor::{At, Keys, Malformed, Problem, Reader, Writer};
use crate::cose::{self, OpenError};
use crate::ids::Id;
use crate::keys::{IssuerKey, IssuerKeys, KeyId};
use crate::UnixTime;

/// COSE content type of revocation documents (protected header label 3).
pub const REVOCATION_CONTENT_TYPE: &str = "application/door-revocation+cbor";
/// The payload version this implementation reads and writes.
pub const REVOCATION_VERSION: u64 = 1;
/// Most entries in one revocation document; 512 entries of the largest encoding take about
/// 14 KiB, inside the 16 KiB document cap.
pub const MAX_REVOCATION_ENTRIES: usize = 512;

/// How a revocation document combines with the list its holder has.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum RevocationMode {
    /// The document's entries become the whole list.
    Overwrite,
    /// The document's entries are added; an entry for a credential already listed replaces
    /// its expiry.
    Update,
}

/// One revoked credential. `expires_at` is when the entry stops mattering (normally the
/// credential's own `not_after`): from then on it no longer counts and may be pruned. `None`
/// keeps it until an `Overwrite` drops it.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub struct RevocationEntry {
    pub credential_id: Id,
    pub expires_at: Option<UnixTime>,
}

/// A revocation document as the issuer signs it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct RevocationDocument {
    /// Always [`REVOCATION_VERSION`].
    pub version: u64,
    /// Strictly increasing across every revocation document the issuer signs.
    pub iteration: u64,
    pub mode: RevocationMode,
    /// At most [`MAX_REVOCATION_ENTRIES`], no credential twice.
    pub entries: Vec<RevocationEntry>,
    pub issued_at: UnixTime,
}

/// Why a revocation document was refused, or could not be applied.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RevocationError {
    BadSignature,
    UnknownIssuerKey {
        kid: KeyId,
    },
    Malformed(Malformed),
    /// The document's iteration `got` is not above the iteration `have` already applied.
    Stale {
        have: u64,
        got: u64,
    },
    /// Applying it would list more than `capacity` credentials; nothing was changed. Pruning
    /// expired entries, or an `Overwrite` document from the issuer, makes room.
    Full {
        capacity: usize,
    },
}

impl From<OpenError> for RevocationError {
    fn from(e: OpenError) -> RevocationError {
        match e {
            OpenError::BadSignature => RevocationError::BadSignature,
            OpenError::UnknownIssuerKey { kid } => RevocationError::UnknownIssuerKey { kid },
            OpenError::Malformed(m) => RevocationError::Malformed(m),
        }
    }
}

impl From<Malformed> for RevocationError {
    fn from(m: Malformed) -> RevocationError {
        RevocationError::Malformed(m)
    }
}

impl fmt::Display for RevocationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RevocationError::BadSignature => {
                f.write_str("revocation document signature does not verify")
            }
            RevocationError::UnknownIssuerKey { kid } => write!(f, "unknown issuer key {kid}"),
            RevocationError::Malformed(m) => write!(f, "malformed revocation document: {m}"),
            RevocationError::Stale { have, got } => {
                write!(f, "revocation iteration {got} is not newer than {have}")
            }
            RevocationError::Full { capacity } => {
                write!(f, "revocation list would exceed {capacity} entries")
            }
        }
    }
}

impl core::error::Error for RevocationError {}

mod key {
    pub const VERSION: u64 = 0;
    pub const ITERATION: u64 = 1;
    pub const MODE: u64 = 2;
    pub const ENTRIES: u64 = 3;
    pub const ISSUED_AT: u64 = 4;
}

const MODE_OVERWRITE: u64 = 0;
const MODE_UPDATE: u64 = 1;

impl RevocationDocument {
    /// Checks the version, the entry cap and that no credential is listed twice.
    pub fn validate(&self) -> Result<(), Malformed> {
        if self.version != REVOCATION_VERSION {
            return Err(Malformed::new("version", Problem::Unsupported));
        }
        if self.entries.len() > MAX_REVOCATION_ENTRIES {
            return Err(Malformed::new("entries", Problem::TooMany));
        }
        let mut ids: Vec<Id> = self.entries.iter().map(|e| e.credential_id).collect();
        ids.sort_unstable();
        if ids.windows(2).any(|w| w[0] == w[1]) {
            return Err(Malformed::new("entries.credential_id", Problem::Duplicate));
        }
        Ok(())
    }

    /// The deterministic CBOR payload, after [`RevocationDocument::validate`].
    pub fn to_cbor(&self) -> Result<Vec<u8>, Malformed> {
        self.validate()?;
        Ok(self.encode())
    }

    fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.map(5);
        w.uint(key::VERSION);
        w.uint(self.version);
        w.uint(key::ITERATION);
        w.uint(self.iteration);
        w.uint(key::MODE);
        w.uint(match self.mode {
            RevocationMode::Overwrite => MODE_OVERWRITE,
            RevocationMode::Update => MODE_UPDATE,
        });
        w.uint(key::ENTRIES);
        w.array(self.entries.len());
        for e in &self.entries {
            w.array(2);
            w.bytes(&e.credential_id.0);
            match e.expires_at {
                Some(t) => w.int(t),
                None => w.null(),
            }
        }
        w.uint(key::ISSUED_AT);
        w.int(self.issued_at);
        w.into_vec()
    }

    /// Parses a payload: deterministic CBOR only, every key known, every rule of
    /// [`RevocationDocument::validate`] met.
    pub fn from_cbor(bytes: &[u8]) -> Result<RevocationDocument, Malformed> {
        let mut r = Reader::new(bytes);
        let doc = decode_document(&mut r)?;
        r.finish().at("payload")?;
        doc.validate()?;
        // As for access documents: one document, one byte string.
        if doc.encode() != bytes {
            return Err(Malformed::new("payload", Problem::NonCanonical));
        }
        Ok(doc)
    }

    /// Signs the document: the tagged COSE_Sign1 bytes (see [`crate::cose`]).
    pub fn sign(&self, key: &IssuerKey) -> Result<Vec<u8>, Malformed> {
        cose::sign1(key, REVOCATION_CONTENT_TYPE, self.to_cbor()?)
    }
}

fn decode_document(r: &mut Reader<'_>) -> Result<RevocationDocument, Malformed> {
    let n = r.map().at("payload")?;
    let mut keys = Keys::new();
    let mut doc = RevocationDocument {
        version: 0,
        iteration: 0,
        mode: RevocationMode::Overwrite,
        entries: Vec::new(),
        issued_at: 0,
    };
    for _ in 0..n {
        match keys.next(r).at("payload")? {
            key::VERSION => doc.version = r.uint().at("version")?,
            key::ITERATION => doc.iteration = r.uint().at("iteration")?,
            key::MODE => {
                doc.mode = match r.uint().at("mode")? {
                    MODE_OVERWRITE => RevocationMode::Overwrite,
                    MODE_UPDATE => RevocationMode::Update,
                    _ => return Err(Malformed::new("mode", Problem::OutOfRange)),
                }
            }
            key::ENTRIES => {
                let count = r.array(MAX_REVOCATION_ENTRIES).at("entries")?;
                doc.entries.reserve_exact(count);
                for _ in 0..count {
                    if r.array(2).at("entries")? != 2 {
                        return Err(Malformed::new("entries", Problem::WrongType));
                    }
                    let credential_id = Id(r.bytes_fixed().at("entries.credential_id")?);
                    let expires_at = if r.null().at("entries.expires_at")? {
                        None
                    } else {
                        Some(r.int().at("entries.expires_at")?)
                    };
                    doc.entries.push(RevocationEntry {
                        credential_id,
                        expires_at,
                    });
                }
            }
            key::ISSUED_AT => doc.issued_at = r.int().at("issued_at")?,
            key => return Err(Malformed::new("payload", Problem::UnknownKey { key })),
        }
    }
    keys.require(&[
        key::VERSION,
        key::ITERATION,
        key::MODE,
        key::ENTRIES,
        key::ISSUED_AT,
    ])
    .at("payload")?;
    Ok(doc)
}

/// A revocation document whose signature and structure have been checked; the only thing
/// [`RevocationList::apply`] accepts.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct VerifiedRevocation {
    document: RevocationDocument,
    kid: KeyId,
}

impl VerifiedRevocation {
    pub fn document(&self) -> &RevocationDocument {
        &self.document
    }

    /// The issuer key that signed it.
    pub fn kid(&self) -> KeyId {
        self.kid
    }
}

/// Checks a revocation document's frame, key id, signature and payload, in that order.
pub fn verify_revocation(
    bytes: &[u8],
    keys: &IssuerKeys,
) -> Result<VerifiedRevocation, RevocationError> {
    let opened = cose::open1(bytes, REVOCATION_CONTENT_TYPE, keys)?;
    let document = RevocationDocument::from_cbor(opened.payload)?;
    Ok(VerifiedRevocation {
        document,
        kid: opened.kid,
    })
}

/// The revocation state a lock or phone keeps: the highest iteration applied and the revoked
/// credentials, sorted by id for lookup by binary search.
#[derive(Clone, Default, PartialEq, Eq, Debug)]
pub struct RevocationList {
    iteration: u64,
    entries: Vec<RevocationEntry>,
}

impl RevocationList {
    /// Most credentials a list holds, so a lock can bound the memory it gives to revocations
    /// (32 KiB at 32 bytes an entry).
    pub const CAPACITY: usize = 1024;

    /// An empty list at iteration 0: any document with iteration 1 or more applies.
    pub fn new() -> RevocationList {
        RevocationList::default()
    }

    /// Rebuilds a list from persisted state (what [`RevocationList::iteration`] and
    /// [`RevocationList::entries`] returned). A credential listed twice keeps its last entry.
    pub fn restore(
        iteration: u64,
        entries: impl IntoIterator<Item = RevocationEntry>,
    ) -> Result<RevocationList, RevocationError> {
        let mut list = RevocationList {
            iteration,
            entries: Vec::new(),
        };
        for e in entries {
            list.upsert(e);
            if list.entries.len() > Self::CAPACITY {
                return Err(RevocationError::Full {
                    capacity: Self::CAPACITY,
                });
            }
        }
        Ok(list)
    }

    /// The highest iteration applied; 0 before any.
    pub fn iteration(&self) -> u64 {
        self.iteration
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries, sorted by credential id.
    pub fn entries(&self) -> &[RevocationEntry] {
        &self.entries
    }

    /// Applies a verified document whose iteration is above the current one. On any error the
    /// list is unchanged.
    pub fn apply(&mut self, doc: &VerifiedRevocation) -> Result<(), RevocationError> {
        let doc = &doc.document;
        if doc.iteration <= self.iteration {
            return Err(RevocationError::Stale {
                have: self.iteration,
                got: doc.iteration,
            });
        }
        match doc.mode {
            RevocationMode::Overwrite => {
                // validate() capped the document below CAPACITY and refused duplicates.
                let mut entries = doc.entries.clone();
                entries.sort_unstable_by_key(|e| e.credential_id);
                self.entries = entries;
            }
            RevocationMode::Update => {
                let added = doc
                    .entries
                    .iter()
                    .filter(|e| self.find(e.credential_id).is_err())
                    .count();
                if self.entries.len() + added > Self::CAPACITY {
                    return Err(RevocationError::Full {
                        capacity: Self::CAPACITY,
                    });
                }
                for e in &doc.entries {
                    self.upsert(*e);
                }
            }
        }
        self.iteration = doc.iteration;
        Ok(())
    }

    /// Whether `credential_id` is revoked at `now`: listed, with no expiry or one after `now`.
    pub fn is_revoked(&self, credential_id: Id, now: UnixTime) -> bool {
        match self.find(credential_id) {
            Ok(i) => self.entries[i].expires_at.is_none_or(|t| now < t),
            Err(_) => false,
        }
    }

    /// Drops the entries that no longer count at `now`.
    pub fn prune(&mut self, now: UnixTime) {
        self.entries
            .retain(|e| e.expires_at.is_none_or(|t| now < t));
    }

    fn find(&self, credential_id: Id) -> Result<usize, usize> {
        self.entries
            .binary_search_by_key(&credential_id, |e| e.credential_id)
    }

    fn upsert(&mut self, entry: RevocationEntry) {
        match self.find(entry.credential_id) {
            Ok(i) => self.entries[i] = entry,
            Err(i) => self.entries.insert(i, entry),
        }
    }
}

/// A person's access-iteration floor: every access document of `person_id` whose
/// `access_iteration` is below `floor` is void, until `expires_at`, by when every such document
/// has expired anyway. What sync bundles carry instead of one entry per credential: a person's
/// every device, and every document they were ever issued, die with one entry.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub struct Floor {
    pub person_id: Id,
    pub floor: u64,
    pub expires_at: UnixTime,
}

impl Floor {
    /// Whether this floor voids a document of its person with `access_iteration` at `now`.
    pub fn voids(&self, access_iteration: u64, now: UnixTime) -> bool {
        access_iteration < self.floor && now < self.expires_at
    }
}

/// The floors a lock holds, one per person, sorted by person id for lookup by binary search.
#[derive(Clone, Default, PartialEq, Eq, Debug)]
pub struct FloorList {
    entries: Vec<Floor>,
}

impl FloorList {
    /// Most people with a floor at one lock (32 KiB at 32 bytes an entry). The issuer never
    /// needs more: when more people's rights narrowed within a document lifetime, it voids
    /// every document issued before an instant instead (a bundle's `issued_floor`).
    pub const CAPACITY: usize = 1024;

    /// A list from entries in any order; a person listed twice keeps the higher floor (and the
    /// later expiry). `None` above [`FloorList::CAPACITY`] people.
    pub fn from_entries(entries: impl IntoIterator<Item = Floor>) -> Option<FloorList> {
        let mut list = FloorList::default();
        for e in entries {
            list.raise(e);
            if list.entries.len() > Self::CAPACITY {
                return None;
            }
        }
        Some(list)
    }

    /// The entries, sorted by person id.
    pub fn entries(&self) -> &[Floor] {
        &self.entries
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The list with room for `additional` more people without growing (at most up to
    /// [`FloorList::CAPACITY`]): a lock's heap is small, and a `Vec` that doubles to add one
    /// floor to a thousand holds 32 KiB it never uses.
    pub fn with_room(mut self, additional: usize) -> FloorList {
        let room = additional.min(Self::CAPACITY.saturating_sub(self.entries.len()) + 1);
        self.entries.reserve_exact(room);
        self
    }

    /// Whether a document of `person_id` at `access_iteration` is void at `now`.
    pub fn voids(&self, person_id: Id, access_iteration: u64, now: UnixTime) -> bool {
        self.find(person_id)
            .is_ok_and(|i| self.entries[i].voids(access_iteration, now))
    }

    /// Adds a floor, or raises a person's: floors and expiries only ever go up, so a courier
    /// that replays an older entry (inside a delta the lock applies) lowers nothing.
    pub fn raise(&mut self, entry: Floor) {
        match self.find(entry.person_id) {
            Ok(i) => {
                let e = &mut self.entries[i];
                e.floor = e.floor.max(entry.floor);
                e.expires_at = e.expires_at.max(entry.expires_at);
            }
            Err(i) => self.entries.insert(i, entry),
        }
    }

    /// Drops the floors that no longer void anything at `now`.
    pub fn prune(&mut self, now: UnixTime) {
        self.entries.retain(|e| now < e.expires_at);
    }

    fn find(&self, person_id: Id) -> Result<usize, usize> {
        self.entries
            .binary_search_by_key(&person_id, |e| e.person_id)
    }
}
