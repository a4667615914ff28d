//! What a person may open, derived from the keys they hold; their doorcodes; and the signed
//! access documents that carry those rights to their devices.

use std::collections::{BTreeMap, BTreeSet};

use door_protocol::access::{decode_access, AccessDocument, DoorGrant, ACCESS_VERSION};
use door_protocol::keys::{IssuerKey, IssuerKeys};
use door_protocol::{Id, Schedule, ZoneRules};
use rand::Rng;
use rusqlite::{params, OptionalExtension, Transaction};

use crate::error::ApiError;
use crate::schedule_json;

/// How long an access document is valid. Short enough that a phone that was never told of a
/// revocation stops working soon anyway; long enough for a phone offline for days.
pub const DOCUMENT_TTL: i64 = 7 * 86_400;
/// Documents start a little in the past so a lock whose clock is slightly behind accepts them.
pub const CLOCK_SKEW: i64 = 300;
/// A cached document this close to expiry is replaced on the next fetch.
const RENEW_BEFORE: i64 = 2 * 86_400;

pub fn id_param(id: &Id) -> &[u8] {
    id.0.as_slice()
}

pub fn new_id() -> Id {
    Id(rand::thread_rng().gen())
}

pub fn blob_id(b: Vec<u8>) -> Result<Id, ApiError> {
    Id::from_slice(&b).ok_or_else(|| ApiError::internal("stored id is not 16 bytes"))
}

/// One door a person may open, merged over every key they hold that has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonDoor {
    pub door_id: Id,
    pub schedule: Schedule,
    pub doorcodes: bool,
    pub may_share: bool,
}

/// The doors of every key `person` holds now.
pub fn person_doors(tx: &Transaction<'_>, person: Id) -> Result<Vec<PersonDoor>, ApiError> {
    let mut stmt = tx.prepare_cached(
        "SELECT kd.door_id, kd.schedule, kd.doorcodes, a.may_share FROM assignments a \
         JOIN key_doors kd ON kd.key_id = a.key_id \
         WHERE a.person_id = ?1 AND a.revoked_at IS NULL",
    )?;
    let rows = stmt.query_map([id_param(&person)], |r| {
        Ok((
            r.get::<_, Vec<u8>>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, bool>(2)?,
            r.get::<_, bool>(3)?,
        ))
    })?;
    let mut by_door: BTreeMap<Id, (Vec<Schedule>, bool, bool)> = BTreeMap::new();
    for row in rows {
        let (door, schedule, doorcodes, may_share) = row?;
        let entry = by_door.entry(blob_id(door)?).or_default();
        entry.0.push(stored_schedule(&schedule)?);
        entry.1 |= doorcodes;
        entry.2 |= may_share;
    }
    Ok(by_door
        .into_iter()
        .map(|(door_id, (schedules, doorcodes, may_share))| PersonDoor {
            door_id,
            schedule: schedule_json::union(&schedules),
            doorcodes,
            may_share,
        })
        .collect())
}

pub fn stored_schedule(json: &str) -> Result<Schedule, ApiError> {
    let parsed: Option<crate::model::ScheduleJson> = serde_json::from_str(json)
        .map_err(|e| ApiError::internal(format!("stored schedule: {e}")))?;
    match parsed {
        None => Ok(Schedule::always()),
        Some(s) => schedule_json::parse(&s, "schedule"),
    }
}

/// Makes `person`'s doorcodes match their keys: a code for every door that some key they
/// hold gives with doorcodes on; no code elsewhere. Existing codes are kept, so giving key B
/// before revoking key A (same doors) keeps the codes, as the seeds ask.
pub fn sync_doorcodes(tx: &Transaction<'_>, person: Id) -> Result<(), ApiError> {
    let wanted: BTreeSet<Id> = person_doors(tx, person)?
        .into_iter()
        .filter(|d| d.doorcodes)
        .map(|d| d.door_id)
        .collect();
    let mut have = BTreeSet::new();
    {
        let mut stmt = tx.prepare_cached("SELECT door_id FROM doorcodes WHERE person_id = ?1")?;
        for door in stmt.query_map([id_param(&person)], |r| r.get::<_, Vec<u8>>(0))? {
            have.insert(blob_id(door?)?);
        }
    }
    for door in have.difference(&wanted) {
        tx.execute(
            "DELETE FROM doorcodes WHERE person_id = ?1 AND door_id = ?2",
            params![id_param(&person), id_param(door)],
        )?;
    }
    for door in wanted.difference(&have) {
        new_doorcode(tx, person, *door)?;
    }
    Ok(())
}

/// A random six-digit code, unique at its door.
fn new_doorcode(tx: &Transaction<'_>, person: Id, door: Id) -> Result<(), ApiError> {
    for _ in 0..64 {
        let code = format!("{:06}", rand::thread_rng().gen_range(0..1_000_000));
        let inserted = tx.execute(
            "INSERT OR IGNORE INTO doorcodes (person_id, door_id, code) VALUES (?1, ?2, ?3)",
            params![id_param(&person), id_param(&door), code],
        )?;
        if inserted == 1 {
            return Ok(());
        }
    }
    Err(ApiError::internal("no free doorcode left at this door"))
}

pub struct Issuer {
    pub key: IssuerKey,
    pub time_zone: String,
}

pub fn issuer(tx: &Transaction<'_>, property: Id) -> Result<Issuer, ApiError> {
    let (secret, time_zone): (Vec<u8>, String) = tx.query_row(
        "SELECT issuer_secret, time_zone FROM properties WHERE id = ?1",
        [id_param(&property)],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let scalar: [u8; 32] = secret
        .try_into()
        .map_err(|_| ApiError::internal("issuer key size"))?;
    let key = IssuerKey::from_bytes(&scalar)
        .map_err(|e| ApiError::internal(format!("issuer key: {e:?}")))?;
    Ok(Issuer { key, time_zone })
}

/// The person's rights changed: their current documents are superseded (the next fetch
/// issues new ones), and any document that granted more than the person now has is revoked,
/// so offline locks learn of it at their next Door Sync. Widened rights revoke nothing: the
/// old document stays good until the phone picks up the new one.
pub fn rights_changed(tx: &Transaction<'_>, person: Id, now: i64) -> Result<(), ApiError> {
    sync_doorcodes(tx, person)?;
    let property: Vec<u8> = tx.query_row(
        "SELECT property_id FROM people WHERE id = ?1",
        [id_param(&person)],
        |r| r.get(0),
    )?;
    let property = blob_id(property)?;
    let revoked: bool = tx.query_row(
        "SELECT revoked FROM people WHERE id = ?1",
        [id_param(&person)],
        |r| r.get(0),
    )?;
    let now_doors: BTreeMap<Id, PersonDoor> = if revoked {
        BTreeMap::new()
    } else {
        person_doors(tx, person)?
            .into_iter()
            .map(|d| (d.door_id, d))
            .collect()
    };
    let keys = IssuerKeys::single(*issuer(tx, property)?.key.verifying());
    let mut live: BTreeMap<Vec<u8>, i64> = BTreeMap::new();
    let mut documents = Vec::new();
    {
        let mut stmt = tx.prepare_cached(
            "SELECT c.id, c.not_after, d.document FROM credentials c \
             JOIN credential_documents d ON d.credential_id = c.id \
             WHERE c.person_id = ?1 AND c.superseded = 0",
        )?;
        for row in stmt.query_map([id_param(&person)], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Vec<u8>>(2)?,
            ))
        })? {
            let (id, not_after, document) = row?;
            live.insert(id.clone(), not_after);
            documents.push((id, document));
        }
    }
    let mut narrowed_ids = BTreeSet::new();
    for (id, document) in documents {
        let doc = decode_access(&document, &keys)
            .map_err(|e| ApiError::internal(format!("stored document: {e}")))?;
        let narrowed = doc
            .document()
            .grants
            .iter()
            .any(|g| match now_doors.get(&g.door_id) {
                None => true,
                Some(d) => d.schedule != g.schedule || (g.doorcode && !d.doorcodes),
            });
        if narrowed {
            narrowed_ids.insert(id);
        }
    }
    let mut to_revoke = Vec::new();
    for (id, not_after) in live {
        if narrowed_ids.contains(&id) && not_after > now {
            to_revoke.push((blob_id(id.clone())?, not_after));
        }
        tx.execute("UPDATE credentials SET superseded = 1 WHERE id = ?1", [&id])?;
    }
    if !to_revoke.is_empty() {
        let iteration: i64 = tx.query_row(
            "UPDATE properties SET revocation_iteration = revocation_iteration + 1 WHERE id = ?1 \
             RETURNING revocation_iteration",
            [id_param(&property)],
            |r| r.get(0),
        )?;
        for (credential, expires_at) in to_revoke {
            tx.execute(
                "INSERT OR REPLACE INTO revocations (property_id, credential_id, iteration, expires_at) \
                 VALUES (?1, ?2, ?3, ?4)",
                params![id_param(&property), id_param(&credential), iteration, expires_at],
            )?;
        }
    }
    Ok(())
}

/// One door's signed access document.
#[derive(Debug, Clone)]
pub struct DoorDocument {
    pub door_id: Id,
    pub document: Vec<u8>,
}

/// The current credential of `person` for `device`, with one signed document per door: the
/// cached one while it is fresh, else a newly issued one. `None` when the person has no door.
pub fn documents_for(
    tx: &Transaction<'_>,
    person: Id,
    property: Id,
    device: Id,
    now: i64,
) -> Result<Option<(Id, Vec<DoorDocument>)>, ApiError> {
    let cached: Option<Vec<u8>> = tx
        .query_row(
            "SELECT id FROM credentials WHERE person_id = ?1 AND device_id = ?2 \
             AND superseded = 0 AND not_after > ?3 ORDER BY access_iteration DESC LIMIT 1",
            params![id_param(&person), id_param(&device), now + RENEW_BEFORE],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(id) = cached {
        let mut stmt = tx.prepare_cached(
            "SELECT door_id, document FROM credential_documents WHERE credential_id = ?1",
        )?;
        let docs = stmt
            .query_map([&id], |r| {
                Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?))
            })?
            .map(|row| {
                let (door, document) = row?;
                Ok(DoorDocument {
                    door_id: blob_id(door)?,
                    document,
                })
            })
            .collect::<Result<Vec<_>, ApiError>>()?;
        return Ok(Some((blob_id(id)?, docs)));
    }
    let doors = person_doors(tx, person)?;
    if doors.is_empty() {
        return Ok(None);
    }
    let device_key: Vec<u8> = tx.query_row(
        "SELECT public_key FROM devices WHERE id = ?1",
        [id_param(&device)],
        |r| r.get(0),
    )?;
    let device_key: [u8; 33] = device_key
        .try_into()
        .map_err(|_| ApiError::internal("stored device key is not compressed SEC1"))?;
    let iteration: i64 = tx.query_row(
        "SELECT COALESCE(MAX(access_iteration), 0) + 1 FROM credentials WHERE person_id = ?1",
        [id_param(&person)],
        |r| r.get(0),
    )?;
    let issuer = issuer(tx, property)?;
    let (not_before, not_after) = (now - CLOCK_SKEW, now + DOCUMENT_TTL);
    let zone = ZoneRules::from_iana(&issuer.time_zone, not_before, not_after)
        .map_err(|e| ApiError::internal(format!("zone rules: {e:?}")))?;
    let credential_id = new_id();
    tx.execute(
        "INSERT INTO credentials (id, person_id, device_id, access_iteration, issued_at, not_after) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![id_param(&credential_id), id_param(&person), id_param(&device), iteration, now, not_after],
    )?;
    let mut out = Vec::with_capacity(doors.len());
    for d in &doors {
        let document = AccessDocument {
            version: ACCESS_VERSION,
            credential_id,
            person_id: person,
            device_key,
            grants: vec![DoorGrant {
                door_id: d.door_id,
                schedule: d.schedule.clone(),
                doorcode: d.doorcodes,
            }],
            not_before,
            not_after,
            issued_at: now,
            access_iteration: iteration as u64,
            may_share: d.may_share,
            zone: zone.clone(),
        }
        .sign(&issuer.key)
        .map_err(|e| ApiError::internal(format!("signing the access document: {e:?}")))?;
        tx.execute(
            "INSERT INTO credential_documents (credential_id, door_id, document) VALUES (?1, ?2, ?3)",
            params![id_param(&credential_id), id_param(&d.door_id), document],
        )?;
        out.push(DoorDocument {
            door_id: d.door_id,
            document,
        });
    }
    Ok(Some((credential_id, out)))
}
