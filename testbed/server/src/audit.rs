//! Audit records carried home by phones: lock-signed, stored once per (lock, epoch, sequence)
//! however often they arrive, and acknowledged per epoch up to the first gap that no
//! records-dropped record of the lock explains, so the lock can free them. An upload is judged record by record: what verifies is stored, what does not is
//! refused and named, and one bad record never keeps the others out.

use axum::extract::State;
use axum::Json;
use door_protocol::{
    verify_audit, AuditAck, AuditEpoch, AuditError, AuditEvent, Id, LockHealth, LockPublicKey,
};
use rusqlite::{params, OptionalExtension, Transaction};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::access::{blob_id, id_param};
use crate::auth::{Manager, Person};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{b64, id, Body, Path, Query};
use crate::AppState;

/// Most records one upload may carry.
const MAX_RECORDS: usize = 512;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditUpload {
    /// Lock-signed audit records (COSE_Sign1, base64), in any order, duplicates allowed.
    pub records: Vec<String>,
}

/// What became of one submitted record.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RecordStatus {
    /// New to the server, now held.
    Stored,
    /// The server already held these exact bytes (a retried upload).
    Duplicate,
    /// Not stored; `reason` says why. Sending it again gets the same answer.
    Refused,
}

/// Why a record was refused.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RefusalReason {
    /// Not signed by this lock's key, or the signature does not verify.
    Signature,
    /// The server holds a different record under the same (lock, epoch, seq): the lock is
    /// faulty or its key leaked. The first one stays; this one is kept out.
    Conflict,
    /// Not base64, not an audit record, or a version or field this server does not read.
    Malformed,
}

/// The answer for one submitted record, in the order they were submitted.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct RecordResult {
    pub status: RecordStatus,
    /// Only for `refused`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<RefusalReason>,
    /// The record's audit epoch (16 hex digits), when its signature verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<String>,
    /// The record's sequence number, when its signature verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// For people: what was wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The server holds every record of the lock's audit epoch `epoch` with a sequence number
/// below `below`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct AuditAckJson {
    /// 16 hex digits.
    pub epoch: String,
    pub below: u64,
}

impl From<AuditAck> for AuditAckJson {
    fn from(a: AuditAck) -> AuditAckJson {
        AuditAckJson {
            epoch: a.epoch.to_string(),
            below: a.below,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct AuditReceipt {
    /// One per submitted record, in order.
    pub results: Vec<RecordResult>,
    /// Records new to the server in this upload.
    pub stored: u32,
    /// Records the server already had (a retried upload).
    pub duplicates: u32,
    /// Records refused (see `results`).
    pub refused: u32,
    /// What the lock's next sync bundle acknowledges: its latest audit epoch the server holds
    /// records of (by the records' signed time) and how far it holds them without a gap (a gap
    /// the lock's records-dropped record names does not count). Null
    /// while the server holds no record of this lock.
    pub acknowledged: Option<AuditAckJson>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    pub lock_id: String,
    pub door_id: String,
    /// The lock's audit epoch (16 hex digits): a new one after each wipe or replacement.
    pub epoch: String,
    pub seq: u64,
    /// The lock's clock when it happened.
    pub at: i64,
    /// unlock_granted, unlock_denied, doorcode_entry, sync_applied, clock_set, records_dropped,
    /// health.
    pub kind: String,
    /// The credential, or for doorcodes the person, the record names (if any).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The reason of a refusal, the iteration of a sync, the step of a clock change, the seqs
    /// a full log dropped, the lock's battery, firmware, clock and iteration.
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

/// The first sequence number of `epoch` the server neither holds for `lock` nor knows the lock
/// dropped (a records-dropped record it holds names it): what the lock may free below.
pub fn acknowledged_below(tx: &Transaction<'_>, lock: Id, epoch: AuditEpoch) -> ApiResult<u64> {
    let key = params![id_param(&lock), &epoch.0[..]];
    let mut drops = tx.prepare_cached(
        "SELECT dropped_from, dropped_through FROM audit_records \
         WHERE lock_id = ?1 AND epoch = ?2 AND dropped_from IS NOT NULL",
    )?;
    let drops = drops
        .query_map(key, |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    // Past the end of a dropped range that holds `next`, if one does.
    let past_drop = |next: u64| {
        drops
            .iter()
            .filter_map(|&(from, through)| {
                Some((u64::try_from(from).ok()?, u64::try_from(through).ok()?))
            })
            .filter(|&(from, through)| from <= next && next <= through)
            .map(|(_, through)| through + 1)
            .max()
    };
    let mut stmt = tx.prepare_cached(
        "SELECT seq FROM audit_records WHERE lock_id = ?1 AND epoch = ?2 ORDER BY seq",
    )?;
    let mut next = 0u64;
    for seq in stmt.query_map(key, |r| r.get::<_, i64>(0))? {
        let Ok(seq) = u64::try_from(seq?) else { break };
        // A drop record comes after the seqs it names, so every gap it explains is passed
        // before the walk reaches it.
        while seq > next {
            match past_drop(next) {
                Some(past) => next = past,
                None => return Ok(next),
            }
        }
        if seq == next {
            next += 1;
        }
    }
    Ok(next)
}

/// What a sync bundle for `lock` acknowledges: its latest audit epoch the server holds
/// records of, and how far. Latest by the records' own signed time (the epoch whose newest
/// record is newest; ties to the epoch first received later), not by arrival: the old log's
/// records may reach the server after the new one's (a phone that pulled them before a wipe
/// uploads late), and an acknowledgement stuck on the old epoch would never let the wiped
/// lock free a record. `None` while the server holds none.
pub fn audit_ack(tx: &Transaction<'_>, lock: Id) -> ApiResult<Option<AuditAck>> {
    let epoch: Option<Vec<u8>> = tx
        .query_row(
            "SELECT epoch FROM audit_records WHERE lock_id = ?1 GROUP BY epoch \
             ORDER BY MAX(at) DESC, MIN(rowid) DESC LIMIT 1",
            [id_param(&lock)],
            |r| r.get(0),
        )
        .optional()?;
    let Some(epoch) = epoch else {
        return Ok(None);
    };
    let epoch = <[u8; 8]>::try_from(epoch.as_slice())
        .map(AuditEpoch)
        .map_err(|_| ApiError::internal("stored audit epoch"))?;
    Ok(Some(AuditAck {
        epoch,
        below: acknowledged_below(tx, lock, epoch)?,
    }))
}

/// Any signed-in person of the property may carry a lock's records: the records prove
/// themselves with the lock's signature, so the courier need not be trusted.
///
/// Each record is judged alone: the answer lists, in order, which were stored, which the
/// server already had and which it refused (and why). A well-formed request gets 200 even if
/// every record in it is refused; a refused record is never stored and never overwrites one.
#[utoipa::path(post, path = "/v1/locks/{lock_id}/audit", tag = "resident", request_body = AuditUpload,
    params(("lock_id" = String, Path)), security(("person" = [])),
    responses((status = 200, body = AuditReceipt), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
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
    let checked = tokio::task::spawn_blocking(move || check_all(&req.records, &key))
        .await
        .map_err(|_| ApiError::internal("audit verification"))?;
    Ok(Json(state.db.write(|tx| {
        // The lock's key was read above; a door that changed hands meanwhile is not ours.
        let (_, current) = lock_of(tx, lock, person.property_id)?;
        if current != key {
            return Err(ApiError::conflict("lock_id", "the lock's key changed during the upload"));
        }
        let mut receipt = AuditReceipt {
            results: Vec::with_capacity(checked.len()),
            stored: 0,
            duplicates: 0,
            refused: 0,
            acknowledged: None,
        };
        for check in checked {
            let result = match check {
                Err((reason, detail)) => refused(reason, None, detail),
                Ok(r) => {
                    let existing: Option<Vec<u8>> = tx
                        .query_row(
                            "SELECT record FROM audit_records WHERE lock_id = ?1 AND epoch = ?2 AND seq = ?3",
                            params![id_param(&lock), &r.epoch.0[..], r.seq],
                            |row| row.get(0),
                        )
                        .optional()?;
                    let named = |status| RecordResult {
                        status,
                        reason: None,
                        epoch: Some(r.epoch.to_string()),
                        seq: Some(r.seq as u64),
                        detail: None,
                    };
                    match existing {
                        Some(b) if b == r.bytes => named(RecordStatus::Duplicate),
                        // Two different signed records under one (epoch, seq): the lock is
                        // faulty or its key is compromised. Keep the first; refuse to guess.
                        Some(_) => refused(
                            RefusalReason::Conflict,
                            Some(&r),
                            "the lock signed a different record with this epoch and sequence",
                        ),
                        None => {
                            tx.execute(
                                "INSERT INTO audit_records \
                                 (lock_id, epoch, seq, at, record, received_at, dropped_from, dropped_through) \
                                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                                params![
                                    id_param(&lock), &r.epoch.0[..], r.seq, r.at, r.bytes, now,
                                    r.dropped.map(|d| d.0), r.dropped.map(|d| d.1)
                                ],
                            )?;
                            if let Some(health) = r.health {
                                let reported = crate::health::Reported {
                                    epoch: r.epoch,
                                    seq: r.seq,
                                    at: r.at,
                                    health,
                                };
                                crate::health::keep(tx, lock, &reported, now)?;
                            }
                            named(RecordStatus::Stored)
                        }
                    }
                }
            };
            match result.status {
                RecordStatus::Stored => receipt.stored += 1,
                RecordStatus::Duplicate => receipt.duplicates += 1,
                RecordStatus::Refused => receipt.refused += 1,
            }
            receipt.results.push(result);
        }
        receipt.acknowledged = audit_ack(tx, lock)?.map(AuditAckJson::from);
        Ok(receipt)
    })?))
}

/// A record whose signature verified.
struct Checked {
    epoch: AuditEpoch,
    seq: i64,
    at: i64,
    /// For a records-dropped record, the first and last seq it names.
    dropped: Option<(i64, i64)>,
    /// For a health record, what it says.
    health: Option<LockHealth>,
    bytes: Vec<u8>,
}

fn refused(
    reason: RefusalReason,
    record: Option<&Checked>,
    detail: impl Into<String>,
) -> RecordResult {
    RecordResult {
        status: RecordStatus::Refused,
        reason: Some(reason),
        epoch: record.map(|r| r.epoch.to_string()),
        seq: record.map(|r| r.seq as u64),
        detail: Some(detail.into()),
    }
}

/// Each record decoded and checked against the lock's key, or why not.
fn check_all(
    records: &[String],
    key: &LockPublicKey,
) -> Vec<Result<Checked, (RefusalReason, String)>> {
    records
        .iter()
        .map(|r| {
            let bytes = b64("record", r)
                .map_err(|_| (RefusalReason::Malformed, "not standard base64".to_string()))?;
            let record = verify_audit(&bytes, key).map_err(|e| {
                let reason = match e {
                    AuditError::BadSignature | AuditError::WrongKey { .. } => {
                        RefusalReason::Signature
                    }
                    AuditError::Malformed(_) => RefusalReason::Malformed,
                };
                (reason, format!("not a record signed by this lock: {e}"))
            })?;
            let seq = i64::try_from(record.seq).map_err(|_| {
                (
                    RefusalReason::Malformed,
                    "sequence out of range".to_string(),
                )
            })?;
            // Below the record's own seq, which fits.
            let dropped = record
                .event
                .dropped_seqs()
                .map(|r| (*r.start() as i64, *r.end() as i64));
            let health = match record.event {
                AuditEvent::Health(h) => Some(h),
                _ => None,
            };
            Ok(Checked {
                epoch: record.epoch,
                seq,
                at: record.at,
                dropped,
                health,
                bytes,
            })
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
        AuditEvent::RecordsDropped { count, through_seq } => {
            // A verified record names at least one seq, none below 0.
            let from = through_seq + 1 - count;
            let detail =
                format!("{count} unacknowledged records dropped: seq {from} to {through_seq}");
            ("records_dropped", None, Some(detail))
        }
        AuditEvent::Health(h) => {
            let clock = h
                .clock_offset
                .map_or("no signed time yet".to_string(), |o| {
                    format!("clock {o:+} s")
                });
            let detail = format!(
                "battery {} %, firmware {}, {clock}, iteration {}",
                h.battery_percent, h.firmware, h.iteration
            );
            ("health", None, Some(detail))
        }
    };
    AuditEntry {
        lock_id: lock.to_string(),
        door_id: door.to_string(),
        epoch: record.epoch.to_string(),
        seq: record.seq,
        at: record.at,
        kind: kind.into(),
        subject,
        detail,
    }
}

/// The property's audit trail: by lock, then by epoch in the order the server first received
/// each (a lock's log before and after a wipe), then by sequence.
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
             JOIN doors d ON d.lock_id = a.lock_id WHERE d.property_id = ?1 \
             ORDER BY a.lock_id, (SELECT MIN(b.rowid) FROM audit_records b \
               WHERE b.lock_id = a.lock_id AND b.epoch = a.epoch), a.seq",
        )?;
        let rows = stmt.query_map([id_param(&property)], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, Vec<u8>>(2)?,
                r.get::<_, Vec<u8>>(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (lock, door, key, bytes) = row?;
            let lock = blob_id(lock)?;
            if only.is_some_and(|o| o != lock) {
                continue;
            }
            let key = LockPublicKey::from_sec1(&key)
                .map_err(|_| ApiError::internal("stored lock key"))?;
            let record = verify_audit(&bytes, &key)
                .map_err(|e| ApiError::internal(format!("stored record: {e}")))?;
            out.push(entry(lock, blob_id(door)?, record));
        }
        Ok(out)
    })?))
}
