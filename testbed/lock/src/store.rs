//! The lock's persistent state as one JSON file, replaced atomically: written to a temporary
//! file, flushed to disk, renamed over the old one, and the directory flushed, so a crash
//! leaves either the old state or the new one, never a mix.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use door_protocol::revocation::RevocationEntry;
use door_protocol::unlock::{Fingerprint, ReplayCache};
use door_protocol::{Id, RevocationList, UnixTime};
use serde::{Deserialize, Serialize};

use crate::LockError;

const FILE: &str = "state.json";
const TEMP: &str = "state.json.tmp";
const FORMAT: u32 = 1;

/// What survives a restart.
pub(crate) struct Persistent {
    pub(crate) revocations: RevocationList,
    pub(crate) replay: ReplayCache,
    /// Signed audit records (COSE_Sign1), oldest first.
    pub(crate) audit: Vec<Vec<u8>>,
    pub(crate) next_seq: u64,
}

#[derive(Serialize, Deserialize)]
struct File1 {
    format: u32,
    /// Which lock the state belongs to, so a directory is never reused for another lock.
    lock_id: String,
    revocation_iteration: u64,
    revocations: Vec<Revoked>,
    replay: Vec<Seen>,
    next_seq: u64,
    audit: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct Revoked {
    credential_id: String,
    expires_at: Option<UnixTime>,
}

#[derive(Serialize, Deserialize)]
struct Seen {
    fingerprint: String,
    expires_at: UnixTime,
}

fn corrupt(what: impl std::fmt::Display) -> LockError {
    LockError::Corrupt(what.to_string())
}

fn id(hex_str: &str) -> Result<Id, LockError> {
    Id::from_hex(hex_str).ok_or_else(|| corrupt(format!("bad id {hex_str:?}")))
}

pub(crate) struct Store {
    dir: PathBuf,
}

impl Store {
    pub(crate) fn new(dir: &Path) -> Result<Store, LockError> {
        fs::create_dir_all(dir)?;
        Ok(Store {
            dir: dir.to_path_buf(),
        })
    }

    /// The stored state, `None` for a new lock.
    pub(crate) fn load(&self, lock_id: Id) -> Result<Option<Persistent>, LockError> {
        let bytes = match fs::read(self.dir.join(FILE)) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let f: File1 = serde_json::from_slice(&bytes).map_err(corrupt)?;
        if f.format != FORMAT {
            return Err(corrupt(format!("unknown format {}", f.format)));
        }
        let stored = id(&f.lock_id)?;
        if stored != lock_id {
            return Err(LockError::OtherLock { stored });
        }
        let entries = f
            .revocations
            .iter()
            .map(|r| {
                Ok(RevocationEntry {
                    credential_id: id(&r.credential_id)?,
                    expires_at: r.expires_at,
                })
            })
            .collect::<Result<Vec<_>, LockError>>()?;
        let revocations =
            RevocationList::restore(f.revocation_iteration, entries).map_err(corrupt)?;
        let seen = f
            .replay
            .iter()
            .map(|s| {
                let fp: Fingerprint = hex::decode(&s.fingerprint)
                    .ok()
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| corrupt("bad replay fingerprint"))?;
                Ok((fp, s.expires_at))
            })
            .collect::<Result<Vec<_>, LockError>>()?;
        let audit = f
            .audit
            .iter()
            .map(|a| hex::decode(a).map_err(corrupt))
            .collect::<Result<Vec<_>, LockError>>()?;
        Ok(Some(Persistent {
            revocations,
            replay: ReplayCache::restore(ReplayCache::DEFAULT_CAPACITY, seen),
            audit,
            next_seq: f.next_seq,
        }))
    }

    pub(crate) fn save(&self, lock_id: Id, p: &Persistent) -> Result<(), LockError> {
        let f = File1 {
            format: FORMAT,
            lock_id: lock_id.to_string(),
            revocation_iteration: p.revocations.iteration(),
            revocations: p
                .revocations
                .entries()
                .iter()
                .map(|e| Revoked {
                    credential_id: e.credential_id.to_string(),
                    expires_at: e.expires_at,
                })
                .collect(),
            replay: p
                .replay
                .entries()
                .iter()
                .map(|(fp, expires_at)| Seen {
                    fingerprint: hex::encode(fp),
                    expires_at: *expires_at,
                })
                .collect(),
            next_seq: p.next_seq,
            audit: p.audit.iter().map(hex::encode).collect(),
        };
        // Serialising plain strings and integers cannot fail.
        let json = serde_json::to_vec_pretty(&f).expect("state serialises");
        let temp = self.dir.join(TEMP);
        let mut file = File::create(&temp)?;
        file.write_all(&json)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&temp, self.dir.join(FILE))?;
        // The rename itself is durable only once the directory is.
        File::open(&self.dir)?.sync_all()?;
        Ok(())
    }
}
