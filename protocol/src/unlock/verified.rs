//! The lock's cache of verified access documents, so a document presented again skips the
//! issuer's signature check (step 9), a third of a repeat unlock's work on a Cortex-M4
//! (docs/PERFORMANCE.md, "The lock on a Cortex-M4").
//!
//! What an entry remembers is only that these exact bytes (by SHA-256) carry a valid
//! signature by this issuer key. Everything whose answer can change is decided afresh on
//! every presentation: the document is decoded again, and the door, validity period,
//! revocation lists, bundle floors, device signature, replay cache and schedule are checked
//! as for a document never seen. Entries are also dropped when anything they were made beside
//! changes (the revocations' iteration, the sync iteration, a clock correction, the audit
//! epoch) or when their issuer key is no longer the lock's, so no cached verdict outlives the
//! state it was made in.
//!
//! Fixed size ([`VERIFIED_CAPACITY`] entries, no allocation); the least recently used entry
//! makes room. An entry is added only once the device signature verified, so filling the
//! cache takes devices holding documents, not just documents.

use crate::keys::{IssuerKeys, KeyId};
use crate::UnixTime;

/// Entries a lock keeps: the residents who come through one door again and again.
pub const VERIFIED_CAPACITY: usize = 16;

/// SHA-256 of an access document's bytes as presented (the COSE frame, signature included:
/// low S only, so one byte string per document).
pub type DocumentDigest = [u8; 32];

/// What the lock's state was when an entry was made; an entry counts only while it is the same.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Stamp {
    pub revocations: u64,
    pub sync: u64,
    pub clock_offset: i64,
    pub last_signed_time: Option<UnixTime>,
    pub epoch: [u8; 8],
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    digest: DocumentDigest,
    kid: KeyId,
    /// The issuer key, SEC1 compressed: an entry counts only while `kid` names this key.
    issuer: [u8; 33],
    stamp: Stamp,
    last_used: u64,
}

/// Documents whose issuer signature the lock verified, by digest. Not persisted: after a
/// restart the first presentation of each document is checked in full again.
///
/// Two lock states that differ only in what they have cached are the same lock (`PartialEq`
/// ignores the cache), so a state restored from storage equals the one that was saved.
#[derive(Clone, Debug)]
pub struct VerifiedDocuments {
    entries: [Option<Entry>; VERIFIED_CAPACITY],
    /// How many entries may be used; 0 turns caching off (a lock that wants every presentation
    /// verified in full, and the tests' oracle).
    limit: usize,
    uses: u64,
}

impl Default for VerifiedDocuments {
    fn default() -> VerifiedDocuments {
        VerifiedDocuments::with_limit(VERIFIED_CAPACITY)
    }
}

impl PartialEq for VerifiedDocuments {
    fn eq(&self, _: &VerifiedDocuments) -> bool {
        true
    }
}

impl Eq for VerifiedDocuments {}

impl VerifiedDocuments {
    /// A cache of at most `limit` entries (at most [`VERIFIED_CAPACITY`]); 0: no caching.
    pub fn with_limit(limit: usize) -> VerifiedDocuments {
        VerifiedDocuments {
            entries: [None; VERIFIED_CAPACITY],
            limit: limit.min(VERIFIED_CAPACITY),
            uses: 0,
        }
    }

    /// Entries held, current or not.
    pub fn len(&self) -> usize {
        self.entries.iter().flatten().count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The issuer key id of a document with this digest verified under the same state and the
    /// same issuer key the lock still holds; `None` otherwise (and a stale entry is dropped).
    pub(crate) fn lookup(
        &mut self,
        digest: &DocumentDigest,
        keys: &IssuerKeys,
        stamp: Stamp,
    ) -> Option<KeyId> {
        let slot = self
            .entries
            .iter_mut()
            .find(|e| e.is_some_and(|e| e.digest == *digest))?;
        let entry = slot.as_mut()?;
        let issuer = keys.get(entry.kid).map(|k| k.to_sec1_compressed());
        if entry.stamp != stamp || issuer != Some(entry.issuer) {
            *slot = None;
            return None;
        }
        self.uses += 1;
        entry.last_used = self.uses;
        Some(entry.kid)
    }

    /// Records that the document with `digest` verified under issuer key `kid` (one of
    /// `keys`) in the state `stamp` describes.
    pub(crate) fn remember(
        &mut self,
        digest: DocumentDigest,
        kid: KeyId,
        keys: &IssuerKeys,
        stamp: Stamp,
    ) {
        let Some(issuer) = keys.get(kid).map(|k| k.to_sec1_compressed()) else {
            return;
        };
        let Some(index) = self.slot_for(&digest) else {
            return;
        };
        self.uses += 1;
        self.entries[index] = Some(Entry {
            digest,
            kid,
            issuer,
            stamp,
            last_used: self.uses,
        });
    }

    /// The entry for `digest` if there is one, else a free slot, else the least recently used;
    /// `None` when caching is off.
    fn slot_for(&self, digest: &DocumentDigest) -> Option<usize> {
        let usable = &self.entries[..self.limit];
        usable
            .iter()
            .position(|e| e.is_some_and(|e| e.digest == *digest))
            .or_else(|| usable.iter().position(Option::is_none))
            .or_else(|| (0..usable.len()).min_by_key(|&i| usable[i].map_or(0, |e| e.last_used)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::IssuerKey;

    fn keys() -> IssuerKeys {
        IssuerKeys::single(*IssuerKey::from_bytes(&[0x11; 32]).unwrap().verifying())
    }

    fn stamp(revocations: u64) -> Stamp {
        Stamp {
            revocations,
            sync: 1,
            clock_offset: 0,
            last_signed_time: None,
            epoch: [0; 8],
        }
    }

    #[test]
    fn an_entry_counts_only_in_the_state_it_was_made_in() {
        let keys = keys();
        let kid = keys.iter().next().unwrap().kid();
        let mut cache = VerifiedDocuments::default();
        cache.remember([1; 32], kid, &keys, stamp(1));
        assert_eq!(cache.lookup(&[1; 32], &keys, stamp(1)), Some(kid));
        assert_eq!(cache.lookup(&[2; 32], &keys, stamp(1)), None);
        assert_eq!(cache.lookup(&[1; 32], &keys, stamp(2)), None);
        // Dropped, not just passed over: the old state does not bring it back.
        assert_eq!(cache.lookup(&[1; 32], &keys, stamp(1)), None);
        assert!(cache.is_empty());
    }

    #[test]
    fn a_full_cache_forgets_the_least_recently_used() {
        let keys = keys();
        let kid = keys.iter().next().unwrap().kid();
        let mut cache = VerifiedDocuments::default();
        for i in 0..VERIFIED_CAPACITY as u8 {
            cache.remember([i; 32], kid, &keys, stamp(1));
        }
        // Document 0 used again: document 1 is now the least recently used.
        assert!(cache.lookup(&[0; 32], &keys, stamp(1)).is_some());
        cache.remember([0xff; 32], kid, &keys, stamp(1));
        assert_eq!(cache.len(), VERIFIED_CAPACITY);
        assert!(cache.lookup(&[0; 32], &keys, stamp(1)).is_some());
        assert!(cache.lookup(&[1; 32], &keys, stamp(1)).is_none());
        assert!(cache.lookup(&[0xff; 32], &keys, stamp(1)).is_some());
    }
}
