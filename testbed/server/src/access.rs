//! What a person may open, derived from the keys they hold; their doorcodes; and the signed
//! access documents that carry those rights to their devices.

use std::collections::BTreeSet;

use door_protocol::access::{AccessDocument, DoorGrant, ACCESS_VERSION, MAX_GRANTS};
use door_protocol::keys::IssuerKey;
use door_protocol::sync::MAX_DOORCODES;
use door_protocol::{Id, Schedule, ZoneRules};
use rand::Rng;
use rusqlite::{params, OptionalExtension, Transaction};

use crate::db::Db;
use crate::error::ApiError;
use crate::policy::{self, Grant};
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

pub fn stored_schedule(json: &str) -> Result<Schedule, ApiError> {
    let parsed: Option<crate::model::ScheduleJson> = serde_json::from_str(json)
        .map_err(|e| ApiError::internal(format!("stored schedule: {e}")))?;
    match parsed {
        None => Ok(Schedule::always()),
        Some(s) => schedule_json::parse(&s, "schedule"),
    }
}

/// Makes `person`'s doorcodes match their grants: a code for every door that some key they
/// hold gives with doorcodes on (for a guest: a doorcode door of a live invite whose host's
/// shared key enables doorcodes); no code elsewhere. Existing codes are kept, so giving key B
/// before revoking key A (same doors) keeps the codes, as the seeds ask. A door's keypad holds
/// at most `MAX_DOORCODES` codes: one more is refused (409), never left out of its bundle.
pub fn sync_doorcodes(
    tx: &Transaction<'_>,
    person: Id,
    grants: &[Grant],
    now: i64,
) -> Result<(), ApiError> {
    let wanted: BTreeSet<Id> = grants
        .iter()
        .filter(|g| g.doorcodes)
        .map(|g| g.door_id)
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
        prune_ended_guest_codes(tx, *door, now)?;
        let held: usize = tx.query_row(
            "SELECT COUNT(*) FROM doorcodes WHERE door_id = ?1",
            [id_param(door)],
            |r| r.get(0),
        )?;
        if held >= MAX_DOORCODES {
            return Err(ApiError::conflict(
                "doorcodes",
                format!("the keypad of door {door} holds at most {MAX_DOORCODES} doorcodes"),
            ));
        }
        new_doorcode(tx, person, *door)?;
    }
    Ok(())
}

/// Deletes the codes at `door` of guests with no live invite left. Nothing re-derives a guest
/// when an invite simply runs out, so their code would stay and count against the keypad's
/// capacity; the lock stopped accepting it at the invite's end, and Door Sync stopped carrying
/// it (`sync::doorcodes_for` derives guests' codes at the time of the bundle).
fn prune_ended_guest_codes(tx: &Transaction<'_>, door: Id, now: i64) -> Result<(), ApiError> {
    tx.execute(
        "DELETE FROM doorcodes WHERE door_id = ?1 \
         AND person_id IN (SELECT id FROM people WHERE role = 'guest') \
         AND NOT EXISTS (SELECT 1 FROM invites i WHERE i.guest_id = doorcodes.person_id \
                         AND i.revoked_at IS NULL AND i.ends_at > ?2)",
        params![id_param(&door), now],
    )?;
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

/// One door's signed access document.
#[derive(Debug, Clone)]
pub struct DoorDocument {
    pub door_id: Id,
    pub document: Vec<u8>,
}

/// What a new credential's documents are made of. Documents signed from a read snapshot are
/// the right ones to store only if all of it is unchanged in the write transaction.
#[derive(PartialEq)]
struct Inputs {
    grants: Vec<Grant>,
    device_key: [u8; 33],
    iteration: i64,
    time_zone: String,
}

/// A new credential's documents, signed before the write transaction that may store them.
pub struct Presigned {
    inputs: Inputs,
    credential_id: Id,
    documents: Vec<DoorDocument>,
}

/// Signs, from a read snapshot and without holding the writer, the documents `documents_for`
/// would issue; `None` when it would issue none (a fresh credential is cached, or no door).
pub fn presign(
    db: &Db,
    person: Id,
    property: Id,
    device: Id,
    now: i64,
) -> Result<Option<Presigned>, ApiError> {
    let read = db.read(|tx| {
        if cached(tx, person, device, now)?.is_some() {
            return Ok(None);
        }
        inputs(tx, person, property, device, now)
    })?;
    let Some((inputs, key)) = read else {
        return Ok(None);
    };
    let (credential_id, documents) = sign(&inputs, &key, person, now)?;
    Ok(Some(Presigned {
        inputs,
        credential_id,
        documents,
    }))
}

/// The current credential of `person` for `device`, with one signed document per door: the
/// cached one while it is fresh, else a newly issued one, `presigned` if it was signed from
/// what the database still holds. `None` when the person has no door.
pub fn documents_for(
    tx: &Transaction<'_>,
    person: Id,
    property: Id,
    device: Id,
    now: i64,
    presigned: Option<Presigned>,
) -> Result<Option<(Id, Vec<DoorDocument>)>, ApiError> {
    if let Some(found) = cached(tx, person, device, now)? {
        return Ok(Some(found));
    }
    let Some((inputs, key)) = inputs(tx, person, property, device, now)? else {
        return Ok(None);
    };
    let (credential_id, documents) = match presigned {
        Some(p) if p.inputs == inputs => (p.credential_id, p.documents),
        // Rights, device or iteration changed since the snapshot (or nothing was signed
        // before): signing here, under the writer, is rare and never stores stale documents.
        _ => sign(&inputs, &key, person, now)?,
    };
    tx.execute(
        "INSERT INTO credentials (id, person_id, device_id, access_iteration, issued_at, not_after, grants) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            id_param(&credential_id),
            id_param(&person),
            id_param(&device),
            inputs.iteration,
            now,
            now + DOCUMENT_TTL,
            policy::grants_text(&inputs.grants)
        ],
    )?;
    for doc in &documents {
        tx.execute(
            "INSERT INTO credential_documents (credential_id, door_id, document) VALUES (?1, ?2, ?3)",
            params![id_param(&credential_id), id_param(&doc.door_id), doc.document],
        )?;
    }
    Ok(Some((credential_id, documents)))
}

fn cached(
    tx: &Transaction<'_>,
    person: Id,
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
    let Some(id) = cached else {
        return Ok(None);
    };
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
    Ok(Some((blob_id(id)?, docs)))
}

fn inputs(
    tx: &Transaction<'_>,
    person: Id,
    property: Id,
    device: Id,
    now: i64,
) -> Result<Option<(Inputs, IssuerKey)>, ApiError> {
    let grants: Vec<Grant> = policy::grants(tx, person, now)?
        .into_iter()
        .filter(|g| g.app)
        .collect();
    if grants.is_empty() {
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
        "SELECT MAX(COALESCE((SELECT MAX(access_iteration) FROM credentials WHERE person_id = ?1), 0),                 COALESCE((SELECT floor - 1 FROM person_floors WHERE person_id = ?1), 0)) + 1",
        [id_param(&person)],
        |r| r.get(0),
    )?;
    let issuer = issuer(tx, property)?;
    let inputs = Inputs {
        grants,
        device_key,
        iteration,
        time_zone: issuer.time_zone,
    };
    Ok(Some((inputs, issuer.key)))
}

/// One P-256 signature per door: the costly part of issuing, and it needs no database.
fn sign(
    inputs: &Inputs,
    key: &IssuerKey,
    person: Id,
    now: i64,
) -> Result<(Id, Vec<DoorDocument>), ApiError> {
    let (not_before, not_after) = (now - CLOCK_SKEW, now + DOCUMENT_TTL);
    let zone = ZoneRules::from_iana(&inputs.time_zone, not_before, not_after)
        .map_err(|e| ApiError::internal(format!("zone rules: {e:?}")))?;
    let credential_id = new_id();
    let mut out = Vec::new();
    for (door_id, door_grants) in policy::by_door(inputs.grants.clone()) {
        // One grant per key that gives the door (a person rarely holds more than a few).
        let door_grants = &door_grants[..door_grants.len().min(MAX_GRANTS)];
        let document = AccessDocument {
            version: ACCESS_VERSION,
            credential_id,
            person_id: person,
            device_key: inputs.device_key,
            grants: door_grants
                .iter()
                .map(|g| DoorGrant {
                    door_id,
                    schedule: g.schedule.clone(),
                    doorcode: g.doorcodes,
                })
                .collect(),
            not_before,
            not_after,
            issued_at: now,
            access_iteration: inputs.iteration as u64,
            may_share: door_grants.iter().any(|g| g.may_share),
            zone: zone.clone(),
        }
        .sign(key)
        .map_err(|e| ApiError::internal(format!("signing the access document: {e:?}")))?;
        out.push(DoorDocument { door_id, document });
    }
    Ok((credential_id, out))
}
