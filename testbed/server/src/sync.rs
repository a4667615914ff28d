//! Door Sync, the server's side: per lock, numbered snapshots of what the lock should hold
//! (revocations, doorcodes, audit acknowledgement), turned into signed bundles that phones
//! carry, full or as a delta from the lock's iteration; and signed time for unlock requests.
//!
//! The phone is an untrusted courier, so any signed-in person of the property may fetch any of
//! its locks' bundles: the bundle is signed for one lock and its doorcodes are sealed to that
//! lock's key, so carrying it reveals and enables nothing.

use std::collections::BTreeMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::Json;
use door_protocol::sync::{Doorcode, DoorcodeChanges, SignedTime, SyncBundle};
use door_protocol::{AuditAck, AuditEpoch, Id, RevocationEntry};
use rand::rngs::OsRng;
use rusqlite::{params, OptionalExtension, Transaction};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::IntoParams;

use crate::access::{id_param, issuer};
use crate::audit::{audit_ack, lock_of};
use crate::auth::Person;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{id, to_b64};
use crate::model::{SignedTimeJson, SyncBundleJson};
use crate::AppState;

/// Snapshots kept per lock. A lock whose iteration is older (its phones have not synced it
/// through 32 changes) gets a full bundle, which is correct at any iteration, only larger.
pub const KEPT_SNAPSHOTS: u64 = 32;

/// A doorcode as a snapshot stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct StoredCode {
    code: String,
    expires_at: Option<i64>,
}

/// Everything one lock should hold from Door Sync. Keyed by hex ids in `BTreeMap`s so that one
/// state has one JSON text, and equal states equal digests.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct SyncState {
    /// Revoked credentials with a document for the lock's door -> when the entry may go (the
    /// credential's own expiry).
    revocations: BTreeMap<String, i64>,
    /// Person -> their code at the lock's door.
    doorcodes: BTreeMap<String, StoredCode>,
    /// The audit acknowledgement: the lock's latest epoch (hex) and how far the server holds
    /// it. Snapshots from before epochs had an integer `audit_ack`, ignored when read.
    #[serde(default)]
    audit: Option<(String, u64)>,
}

/// What the lock of `door` should hold at `now`.
fn desired_state(
    tx: &Transaction<'_>,
    property: Id,
    door: Id,
    lock: Id,
    now: i64,
) -> ApiResult<SyncState> {
    let mut state = SyncState {
        audit: audit_ack(tx, lock)?.map(|a| (a.epoch.to_string(), a.below)),
        ..SyncState::default()
    };
    // A lock only ever sees documents for its own door (one document per door), so only
    // credentials that had one need to reach it. Expired entries are left out: the credential
    // has expired too, and locks drop such entries themselves.
    let mut stmt = tx.prepare_cached(
        "SELECT r.credential_id, r.expires_at FROM revocations r \
         WHERE r.property_id = ?1 AND r.expires_at > ?2 AND EXISTS (\
           SELECT 1 FROM credential_documents d \
           WHERE d.credential_id = r.credential_id AND d.door_id = ?3)",
    )?;
    for row in stmt.query_map(params![id_param(&property), now, id_param(&door)], |r| {
        Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?))
    })? {
        let (credential, expires_at) = row?;
        state
            .revocations
            .insert(hex::encode(credential), expires_at);
    }
    // Manager keys' codes last until a bundle removes them. A guest's would end with the
    // invite (guest keys carry no doorcodes today; the lock should still not outlive the
    // invite if they ever do).
    let mut stmt = tx.prepare_cached(
        "SELECT c.person_id, c.code, (SELECT MAX(i.ends_at) FROM invites i WHERE i.guest_id = c.person_id) \
         FROM doorcodes c WHERE c.door_id = ?1",
    )?;
    for row in stmt.query_map([id_param(&door)], |r| {
        Ok((
            r.get::<_, Vec<u8>>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Option<i64>>(2)?,
        ))
    })? {
        let (person, code, expires_at) = row?;
        state
            .doorcodes
            .insert(hex::encode(person), StoredCode { code, expires_at });
    }
    Ok(state)
}

fn stored_id(hex_id: &str) -> ApiResult<Id> {
    Id::from_hex(hex_id).ok_or_else(|| ApiError::internal("stored sync state id"))
}

fn revocation(credential: &str, expires_at: i64) -> ApiResult<RevocationEntry> {
    Ok(RevocationEntry {
        credential_id: stored_id(credential)?,
        expires_at: Some(expires_at),
    })
}

fn doorcode(person: &str, c: &StoredCode) -> ApiResult<Doorcode> {
    Ok(Doorcode {
        person_id: stored_id(person)?,
        code: c.code.clone(),
        expires_at: c.expires_at,
    })
}

fn stored_ack(state: &SyncState) -> ApiResult<Option<AuditAck>> {
    state
        .audit
        .as_ref()
        .map(|(epoch, below)| {
            Ok(AuditAck {
                epoch: AuditEpoch::from_hex(epoch)
                    .ok_or_else(|| ApiError::internal("stored sync state epoch"))?,
                below: *below,
            })
        })
        .transpose()
}

type Contents = (Vec<RevocationEntry>, DoorcodeChanges);

/// A full bundle's contents: the whole state.
fn full(state: &SyncState) -> ApiResult<Contents> {
    let revocations = state
        .revocations
        .iter()
        .map(|(c, t)| revocation(c, *t))
        .collect::<ApiResult<_>>()?;
    let added = state
        .doorcodes
        .iter()
        .map(|(p, c)| doorcode(p, c))
        .collect::<ApiResult<_>>()?;
    Ok((
        revocations,
        DoorcodeChanges {
            added,
            removed: Vec::new(),
        },
    ))
}

/// The change from `base` to `latest` as a delta's contents, or `None` when a delta cannot say
/// it. A delta only adds revocations: one that left `latest` because it expired needs no word
/// (locks drop expired entries themselves), but one that left while still running can only
/// leave a lock through a full bundle, which replaces the list.
fn delta(base: &SyncState, latest: &SyncState, now: i64) -> ApiResult<Option<Contents>> {
    let lifted = base
        .revocations
        .iter()
        .any(|(c, t)| *t > now && !latest.revocations.contains_key(c));
    if lifted {
        return Ok(None);
    }
    let revocations = latest
        .revocations
        .iter()
        .filter(|(c, t)| base.revocations.get(*c) != Some(t))
        .map(|(c, t)| revocation(c, *t))
        .collect::<ApiResult<_>>()?;
    let added = latest
        .doorcodes
        .iter()
        .filter(|(p, c)| base.doorcodes.get(*p) != Some(c))
        .map(|(p, c)| doorcode(p, c))
        .collect::<ApiResult<_>>()?;
    let removed = base
        .doorcodes
        .keys()
        .filter(|p| !latest.doorcodes.contains_key(*p))
        .map(|p| stored_id(p))
        .collect::<ApiResult<_>>()?;
    Ok(Some((revocations, DoorcodeChanges { added, removed })))
}

/// Records the lock's desired state as a new iteration if it differs from the latest (or there
/// is none), prunes old snapshots, and returns the latest iteration.
fn record_state(tx: &Transaction<'_>, lock: Id, state: &SyncState, now: i64) -> ApiResult<u64> {
    let text =
        serde_json::to_string(state).map_err(|e| ApiError::internal(format!("sync state: {e}")))?;
    let digest = Sha256::digest(text.as_bytes()).to_vec();
    let latest: Option<(i64, Vec<u8>)> = tx
        .query_row(
            "SELECT iteration, digest FROM sync_snapshots WHERE lock_id = ?1 \
             ORDER BY iteration DESC LIMIT 1",
            [id_param(&lock)],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let next = match latest {
        Some((iteration, d)) if d == digest => return Ok(iteration as u64),
        Some((iteration, _)) => iteration + 1,
        None => 1,
    };
    tx.execute(
        "INSERT INTO sync_snapshots (lock_id, iteration, state, digest, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![id_param(&lock), next, text, digest, now],
    )?;
    tx.execute(
        "DELETE FROM sync_snapshots WHERE lock_id = ?1 AND iteration <= ?2",
        params![id_param(&lock), next - KEPT_SNAPSHOTS as i64],
    )?;
    Ok(next as u64)
}

fn snapshot(tx: &Transaction<'_>, lock: Id, iteration: u64) -> ApiResult<Option<SyncState>> {
    let Ok(iteration) = i64::try_from(iteration) else {
        return Ok(None);
    };
    let text: Option<String> = tx
        .query_row(
            "SELECT state FROM sync_snapshots WHERE lock_id = ?1 AND iteration = ?2",
            params![id_param(&lock), iteration],
            |r| r.get(0),
        )
        .optional()?;
    text.map(|t| {
        serde_json::from_str(&t).map_err(|e| ApiError::internal(format!("stored sync state: {e}")))
    })
    .transpose()
}

/// The bundle that brings `lock` (of `property`) from iteration `since` (0: unknown, or none)
/// to the server's latest, recording a new iteration first if the lock's desired state changed.
/// Run inside one write transaction: the snapshot and the bundle built from it agree.
pub fn bundle_for(
    tx: &Transaction<'_>,
    property: Id,
    lock: Id,
    since: u64,
    now: i64,
) -> ApiResult<SyncBundleJson> {
    let (door, lock_key) = lock_of(tx, lock, property)?;
    let desired = desired_state(tx, property, door, lock, now)?;
    let iteration = record_state(tx, lock, &desired, now)?;
    if since == iteration {
        return Ok(SyncBundleJson {
            lock_id: lock.to_string(),
            iteration,
            base_iteration: iteration,
            up_to_date: true,
            bundle: None,
            size: 0,
        });
    }
    if since > iteration {
        return Err(ApiError::invalid(
            "since",
            format!("is beyond this lock's latest sync iteration, {iteration}"),
        ));
    }
    let from = match since {
        0 => None,
        _ => snapshot(tx, lock, since)?,
    };
    let delta = match &from {
        Some(base) => delta(base, &desired, now)?,
        None => None,
    };
    let (base_iteration, (revocations, doorcodes)) = match delta {
        Some(contents) => (since, contents),
        None => (0, full(&desired)?),
    };
    // Signed afresh on every request, so `issued_at` is a fresh signed time for the lock: the
    // same iteration may go out several times with later `issued_at`s, which is fine (a lock
    // applies an iteration once; the others are stale to it).
    let bytes = SyncBundle {
        lock_id: lock,
        iteration,
        base_iteration,
        issued_at: now,
        revocations,
        doorcodes,
        audit_ack: stored_ack(&desired)?,
    }
    .seal_and_sign(&issuer(tx, property)?.key, &lock_key, &mut OsRng)
    // Only a state beyond the protocol's caps (over 1,024 revocations or doorcodes at one
    // lock) gets here; no bundle can carry it.
    .map_err(|e| ApiError::internal(format!("building the sync bundle: {e}")))?;
    Ok(SyncBundleJson {
        lock_id: lock.to_string(),
        iteration,
        base_iteration,
        up_to_date: false,
        size: u32::try_from(bytes.len()).map_err(|_| ApiError::internal("bundle size"))?,
        bundle: Some(to_b64(&bytes)),
    })
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BundleQuery {
    /// The sync iteration the lock is at, as the phone last learned it from the lock's unlock
    /// answers. 0 or absent: unknown, or never synced; the answer is a full bundle.
    pub since: Option<u64>,
}

/// The bundle for one lock of the caller's property: a delta from `since` when the server
/// still holds that iteration and a delta can express the change, else a full bundle.
#[utoipa::path(get, path = "/v1/locks/{lock_id}/bundle", tag = "resident",
    params(("lock_id" = String, Path), BundleQuery), security(("person" = [])),
    responses((status = 200, body = SyncBundleJson), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn bundle(
    State(state): State<AppState>,
    person: Person,
    Path(lock_id): Path<String>,
    query: Result<Query<BundleQuery>, QueryRejection>,
) -> ApiResult<Json<SyncBundleJson>> {
    let lock = id("lock_id", &lock_id)?;
    let Query(q) = query.map_err(|e| ApiError::invalid("since", e.body_text()))?;
    let now = state.now();
    Ok(Json(state.db.write(|tx| {
        bundle_for(tx, person.property_id, lock, q.since.unwrap_or(0), now)
    })?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TimeQuery {
    /// Bind the signed time to this lock (32 hex digits); absent: any lock of the property.
    pub lock_id: Option<String>,
}

/// The server's clock signed by the property's issuer key, for a phone to hand to a lock whose
/// clock has drifted (inside an unlock request).
#[utoipa::path(get, path = "/v1/time", tag = "resident", params(TimeQuery), security(("person" = [])),
    responses((status = 200, body = SignedTimeJson), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn signed_time(
    State(state): State<AppState>,
    person: Person,
    query: Result<Query<TimeQuery>, QueryRejection>,
) -> ApiResult<Json<SignedTimeJson>> {
    let Query(q) = query.map_err(|e| ApiError::invalid("lock_id", e.body_text()))?;
    let lock = q.lock_id.as_deref().map(|l| id("lock_id", l)).transpose()?;
    let now = state.now();
    let key = state.db.read(|tx| {
        if let Some(lock) = lock {
            // Another property's lock is "not found": the API does not confirm it exists.
            lock_of(tx, lock, person.property_id)?;
        }
        Ok(issuer(tx, person.property_id)?.key)
    })?;
    let signed = SignedTime {
        time: now,
        lock_id: lock,
    }
    .sign(&key);
    Ok(Json(SignedTimeJson {
        time: now,
        signed_time: to_b64(&signed),
    }))
}
