//! Audit records carried home by phones: lock-signed, stored once per (lock, sequence) however
//! often they arrive, and acknowledged up to the first gap so the lock can free them.

use axum::extract::{Path, Query, State};
use axum::Json;
use door_protocol::{verify_audit, AuditEvent, Id, LockPublicKey};
use rusqlite::{params, OptionalExtension, Transaction};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::access::{blob_id, id_param};
use crate::auth::{Manager, Person};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{b64, id, Body};
use crate::AppState;

/// Most records one upload may carry.
const MAX_RECORDS: usize = 512;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditUpload {
    /// Lock-signed audit records (COSE_Sign1, base64), in any order, duplicates allowed.
    pub records: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct AuditReceipt {
    /// Records new to the server in this upload.
    pub stored: u32,
    /// Records the server already had (a retried upload).
    pub duplicates: u32,
    /// The server holds every record of this lock with a lower sequence number: what the
    /// lock's next sync bundle acknowledges.
    pub acknowledged_below: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    pub lock_id: String,
    pub door_id: String,
    pub seq: u64,
    /// The lock's clock when it happened.
    pub at: i64,
    /// unlock_granted, unlock_denied, doorcode_entry, sync_applied, clock_set.
    pub kind: String,
    /// The credential, or for doorcodes the person, the record names (if any).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The reason of a refusal, the iteration of a sync, the step of a clock change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The door and key of `lock`, which must belong to `property` (else "not found").
pub(crate) fn lock_of(
    tx: &Transaction<'_>,
    lock: Id,
    property: Id,
) -> ApiResult<(Id, LockPublicKey)> {
    let row: Option<(Vec<u8>, Vec<u8>)> = tx
        .query_row(
            "SELECT id, lock_public_key FROM doors WHERE lock_id = ?1 AND property_id = ?2",
            params![id_param(&lock), id_param(&property)],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let (door, key) = row.ok_or_else(|| ApiError::not_found("lock"))?;
    let key = LockPublicKey::from_sec1(&key).map_err(|_| ApiError::internal("stored lock key"))?;
    Ok((blob_id(door)?, key))
}

/// The first sequence number the server does not hold.
pub fn acknowledged_below(tx: &Transaction<'_>, lock: Id) -> ApiResult<u64> {
    let mut stmt =
        tx.prepare_cached("SELECT seq FROM audit_records WHERE lock_id = ?1 ORDER BY seq")?;
    let mut next = 0u64;
    for seq in stmt.query_map([id_param(&lock)], |r| r.get::<_, i64>(0))? {
        match u64::try_from(seq?) {
            Ok(s) if s == next => next += 1,
            Ok(s) if s < next => {}
            _ => break,
        }
    }
    Ok(next)
}

/// Any signed-in person of the property may carry a lock's records: the records prove
/// themselves with the lock's signature, so the courier need not be trusted.
#[utoipa::path(post, path = "/v1/locks/{lock_id}/audit", tag = "resident", request_body = AuditUpload,
    params(("lock_id" = String, Path)), security(("person" = [])),
    responses((status = 200, body = AuditReceipt), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn upload(
    State(state): State<AppState>,
    person: Person,
    Path(lock_id): Path<String>,
    Body(req): Body<AuditUpload>,
) -> ApiResult<Json<AuditReceipt>> {
    let lock = id("lock_id", &lock_id)?;
    if req.records.len() > MAX_RECORDS {
        return Err(ApiError::invalid(
            "records",
            format!("at most {MAX_RECORDS} records per upload"),
        ));
    }
    let now = state.now();
    let (_, key) = state.db.read(|tx| lock_of(tx, lock, person.property_id))?;
    // The signatures are checked off the async workers and outside the database lock: they
    // are most of an upload's work, and every other request would queue behind them.
    let records = tokio::task::spawn_blocking(move || verify_all(&req.records, &key))
        .await
        .map_err(|_| ApiError::internal("audit verification"))??;
    Ok(Json(state.db.write(|tx| {
        // The lock's key was read above; a door that changed hands meanwhile is not ours.
        let (_, current) = lock_of(tx, lock, person.property_id)?;
        if current != key {
            return Err(ApiError::conflict("lock_id", "the lock's key changed during the upload"));
        }
        let (mut stored, mut duplicates) = (0, 0);
        for (field, seq, bytes) in records {
            let existing: Option<Vec<u8>> = tx
                .query_row(
                    "SELECT record FROM audit_records WHERE lock_id = ?1 AND seq = ?2",
                    params![id_param(&lock), seq],
                    |r| r.get(0),
                )
                .optional()?;
            match existing {
                Some(b) if b == bytes => duplicates += 1,
                // Two different signed records under one sequence: the lock is faulty or
                // its key is compromised. Keep the first; refuse to guess.
                Some(_) => return Err(ApiError::conflict(field, "the lock signed a different record with this sequence")),
                None => {
                    tx.execute(
                        "INSERT INTO audit_records (lock_id, seq, record, received_at) VALUES (?1, ?2, ?3, ?4)",
                        params![id_param(&lock), seq, bytes, now],
                    )?;
                    stored += 1;
                }
            }
        }
        Ok(AuditReceipt { stored, duplicates, acknowledged_below: acknowledged_below(tx, lock)? })
    })?))
}

/// Each record decoded and checked against the lock's key: (field name, seq, bytes), or the
/// first record that is not this lock's, named.
fn verify_all(records: &[String], key: &LockPublicKey) -> ApiResult<Vec<(String, i64, Vec<u8>)>> {
    records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let field = format!("records[{i}]");
            let bytes = b64(&field, r)?;
            let record = verify_audit(&bytes, key).map_err(|e| {
                ApiError::invalid(&field, format!("not a record signed by this lock: {e}"))
            })?;
            let seq = i64::try_from(record.seq)
                .map_err(|_| ApiError::invalid(&field, "sequence out of range"))?;
            Ok((field, seq, bytes))
        })
        .collect()
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only this lock's records.
    pub lock_id: Option<String>,
}

fn entry(lock: Id, door: Id, record: door_protocol::AuditRecord) -> AuditEntry {
    let (kind, subject, detail) = match record.event {
        AuditEvent::UnlockGranted { credential_id, .. } => {
            ("unlock_granted", Some(credential_id.to_string()), None)
        }
        AuditEvent::UnlockDenied {
            credential_id,
            reason,
        } => (
            "unlock_denied",
            credential_id.map(|c| c.to_string()),
            Some(reason.to_string()),
        ),
        AuditEvent::DoorcodeEntry { person_id, granted } => (
            "doorcode_entry",
            person_id.map(|p| p.to_string()),
            Some(if granted { "granted" } else { "denied" }.into()),
        ),
        AuditEvent::SyncApplied { iteration } => {
            ("sync_applied", None, Some(format!("iteration {iteration}")))
        }
        AuditEvent::ClockSet { step } => ("clock_set", None, Some(format!("{step:+} s"))),
    };
    AuditEntry {
        lock_id: lock.to_string(),
        door_id: door.to_string(),
        seq: record.seq,
        at: record.at,
        kind: kind.into(),
        subject,
        detail,
    }
}

/// The property's audit trail, by lock and sequence.
#[utoipa::path(get, path = "/v1/properties/{property_id}/audit", tag = "manager",
    params(("property_id" = String, Path), AuditQuery), security(("manager" = [])),
    responses((status = 200, body = Vec<AuditEntry>), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    manager: Manager,
    Path(pid): Path<String>,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Json<Vec<AuditEntry>>> {
    let property = manager.check(&pid)?;
    let only = q.lock_id.as_deref().map(|l| id("lock_id", l)).transpose()?;
    Ok(Json(state.db.read(|tx| {
        let mut stmt = tx.prepare(
            "SELECT a.lock_id, d.id, d.lock_public_key, a.record FROM audit_records a \
             JOIN doors d ON d.lock_id = a.lock_id WHERE d.property_id = ?1 ORDER BY a.lock_id, a.seq",
        )?;
        let rows = stmt.query_map([id_param(&property)], |r| {
            Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?, r.get::<_, Vec<u8>>(2)?, r.get::<_, Vec<u8>>(3)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (lock, door, key, bytes) = row?;
            let lock = blob_id(lock)?;
            if only.is_some_and(|o| o != lock) {
                continue;
            }
            let key = LockPublicKey::from_sec1(&key).map_err(|_| ApiError::internal("stored lock key"))?;
            let record = verify_audit(&bytes, &key).map_err(|e| ApiError::internal(format!("stored record: {e}")))?;
            out.push(entry(lock, blob_id(door)?, record));
        }
        Ok(out)
    })?))
}
