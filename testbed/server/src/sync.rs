//! Door Sync, the server's side: per lock, numbered snapshots of what the lock should hold
//! (revocations, doorcodes, audit acknowledgement), turned into signed bundles that phones
//! carry, full or as a delta from the lock's iteration; and signed time for unlock requests.
//!
//! The phone is an untrusted courier, so any signed-in person of the property may fetch any of
//! its locks' bundles: the bundle is signed for one lock and its doorcodes are sealed to that
//! lock's key, so carrying it reveals and enables nothing.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::State;
use axum::Json;
use door_protocol::sync::bundle::{MAX_CODE_SCHEDULES, MAX_KEYPAD_SCHEDULES};
use door_protocol::sync::{Doorcode, DoorcodeChanges, KeypadRules, SignedTime, SyncBundle};
use door_protocol::{
    AuditAck, AuditEpoch, Floor, FloorList, Id, IssuerKey, LockPublicKey, Schedule, ZoneRules,
};
use rand::rngs::OsRng;
use rusqlite::{params, OptionalExtension, Transaction};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::IntoParams;

use crate::access::{blob_id, id_param, issuer, stored_schedule};
use crate::audit::{audit_ack, lock_of};
use crate::auth::Person;
use crate::db::blocking;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{id, to_b64, Path, Query};
use crate::model::{ScheduleJson, SignedTimeJson, SyncBundleJson};
use crate::AppState;
use crate::{policy, schedule_json};

/// Snapshots kept per lock. A lock whose iteration is older (its phones have not synced it
/// through 32 changes) gets a full bundle, which is correct at any iteration, only larger.
pub const KEPT_SNAPSHOTS: u64 = 32;

/// A doorcode as a snapshot stores it: the code, when it ends, and its holder's schedules at
/// the door as indexes into the snapshot's keypad table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct StoredCode {
    code: String,
    expires_at: Option<i64>,
    #[serde(default)]
    schedules: Vec<u8>,
}

/// The snapshot format: 2 since revocation by floors. A lock at a snapshot of another format
/// gets a full bundle.
const STATE_FORMAT: u32 = 2;

/// What the keypad judges schedules with: the zone's rules over a span starting at
/// `span_from` (so the state changes only when the span moves) and the distinct schedules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct StoredKeypad {
    span_from: i64,
    schedules: Vec<ScheduleJson>,
}

/// Everything one lock should hold from Door Sync. Keyed by hex ids in `BTreeMap`s so that one
/// state has one JSON text, and equal states equal digests.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct SyncState {
    #[serde(default)]
    format: u32,
    /// Person -> (floor, expiry): people with a document for this lock's door that a floor
    /// voids.
    #[serde(default)]
    floors: Floors,
    #[serde(default)]
    issued_floor: Option<i64>,
    /// Person -> their code at the lock's door.
    doorcodes: BTreeMap<String, StoredCode>,
    #[serde(default)]
    keypad: Option<StoredKeypad>,
    /// The audit acknowledgement: the lock's latest epoch (hex) and how far the server holds
    /// it. Snapshots from before epochs had an integer `audit_ack`, ignored when read.
    #[serde(default)]
    audit: Option<(String, u64)>,
}

/// The keypad's zone rules are signed for this long from the start of their span; a span
/// starts every 30 days (a day early), so a lock synced at least monthly always has rules.
const KEYPAD_SPAN: i64 = 800 * 86_400;
const KEYPAD_SPAN_STEP: i64 = 30 * 86_400;

/// Person (hex) -> (floor, expiry).
type Floors = BTreeMap<String, (u64, i64)>;

/// The floors for the lock of `door`: people whose voided documents include one for this door
/// and are not all expired. When there are more than a lock holds, every document issued
/// before `now` is voided at this lock instead (recorded, so later states keep it), and only
/// the floors that still void something issued since remain.
fn floors_for(
    tx: &Transaction<'_>,
    property: Id,
    door: Id,
    lock: Id,
    now: i64,
) -> ApiResult<(Floors, Option<i64>)> {
    let mut issued_floor: Option<i64> = tx
        .query_row(
            "SELECT issued_floor FROM lock_issued_floors WHERE lock_id = ?1",
            [id_param(&lock)],
            |r| r.get(0),
        )
        .optional()?;
    let query = |issued_floor: Option<i64>| -> ApiResult<Floors> {
        let mut stmt = tx.prepare_cached(
            "SELECT f.person_id, f.floor, f.expires_at FROM person_floors f \
             WHERE f.property_id = ?1 AND f.expires_at > ?2 AND EXISTS (\
               SELECT 1 FROM credentials c JOIN credential_documents d ON d.credential_id = c.id \
               WHERE c.person_id = f.person_id AND d.door_id = ?3 AND c.access_iteration < f.floor \
               AND c.not_after > ?2 AND c.issued_at >= ?4)",
        )?;
        let rows = stmt.query_map(
            params![
                id_param(&property),
                now,
                id_param(&door),
                issued_floor.unwrap_or(i64::MIN)
            ],
            |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            },
        )?;
        let mut out = BTreeMap::new();
        for row in rows {
            let (person, floor, expires_at) = row?;
            out.insert(hex::encode(person), (floor as u64, expires_at));
        }
        Ok(out)
    };
    let mut floors = query(issued_floor)?;
    if floors.len() > FloorList::CAPACITY {
        issued_floor = Some(now);
        tx.execute(
            "INSERT INTO lock_issued_floors (lock_id, issued_floor) VALUES (?1, ?2) \
             ON CONFLICT (lock_id) DO UPDATE SET issued_floor = MAX(issued_floor, excluded.issued_floor)",
            params![id_param(&lock), now],
        )?;
        floors = query(issued_floor)?;
    }
    Ok((floors, issued_floor))
}

/// The doorcodes at `door` with their holders' schedules there (the keys that give the door
/// with doorcodes on), and the keypad table they index. A code whose schedules the table
/// cannot hold is left out (it cannot be judged, so it must not open); see docs/PROTOCOL.md.
fn doorcodes_for(
    tx: &Transaction<'_>,
    door: Id,
    time_zone_span: i64,
    now: i64,
) -> ApiResult<(BTreeMap<String, StoredCode>, Option<StoredKeypad>)> {
    // Holders of manager keys: their keys' schedules, read in one query (a lobby keypad may
    // hold hundreds of codes).
    let mut stmt = tx.prepare_cached(
        "SELECT c.person_id, c.code, kd.schedule \
         FROM doorcodes c JOIN assignments a ON a.person_id = c.person_id AND a.revoked_at IS NULL \
         JOIN key_doors kd ON kd.key_id = a.key_id AND kd.door_id = c.door_id AND kd.doorcodes = 1 \
         JOIN keys k ON k.id = a.key_id AND k.kind = 'manager' \
         JOIN people p ON p.id = c.person_id AND p.revoked = 0 \
         WHERE c.door_id = ?1",
    )?;
    let rows = stmt.query_map([id_param(&door)], |r| {
        Ok((
            r.get::<_, Vec<u8>>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    // Person -> (code, expiry, schedule keys); schedule key -> schedule.
    let mut codes: BTreeMap<String, (String, Option<i64>, BTreeSet<String>)> = BTreeMap::new();
    let mut distinct: BTreeMap<String, Schedule> = BTreeMap::new();
    let mut add = |person: &[u8], code: String, expires_at: Option<i64>, schedule: Schedule| {
        let key = policy::schedule_key(&schedule);
        distinct.entry(key.clone()).or_insert(schedule);
        codes
            .entry(hex::encode(person))
            .or_insert_with(|| (code, expires_at, BTreeSet::new()))
            .2
            .insert(key);
    };
    for row in rows {
        let (person, code, schedule) = row?;
        add(&person, code, None, stored_schedule(&schedule)?);
    }
    // Guests: derived now from their hosts (policy.rs), so a code whose invite ended, or whose
    // host lost the right to share it, is left out even before anything re-derived the guest.
    // The code ends with the invite.
    for (guest, code) in guest_codes(tx, door)? {
        let expires_at: Option<i64> = tx.query_row(
            "SELECT MAX(ends_at) FROM invites WHERE guest_id = ?1 AND revoked_at IS NULL",
            [id_param(&guest)],
            |r| r.get(0),
        )?;
        for g in policy::grants(tx, guest, now)? {
            if g.door_id == door && g.doorcodes {
                add(&guest.0, code.clone(), expires_at, g.schedule);
            }
        }
    }
    let table: Vec<String> = distinct
        .keys()
        .take(MAX_KEYPAD_SCHEDULES)
        .cloned()
        .collect();
    let mut out = BTreeMap::new();
    for (person, (code, expires_at, keys)) in codes {
        let indexes: Option<Vec<u8>> = keys
            .iter()
            .map(|k| {
                table
                    .iter()
                    .position(|t| t == k)
                    .and_then(|i| u8::try_from(i).ok())
            })
            .collect();
        match indexes {
            Some(schedules) if schedules.len() <= MAX_CODE_SCHEDULES => {
                out.insert(
                    person,
                    StoredCode {
                        code,
                        expires_at,
                        schedules,
                    },
                );
            }
            _ => log_left_out(&person),
        }
    }
    let keypad = (!out.is_empty()).then(|| StoredKeypad {
        span_from: time_zone_span,
        schedules: table
            .iter()
            .map(|k| schedule_json::to_json(&distinct[k]))
            .collect(),
    });
    Ok((out, keypad))
}

/// The guests holding a doorcode at `door`, with their codes.
fn guest_codes(tx: &Transaction<'_>, door: Id) -> ApiResult<Vec<(Id, String)>> {
    let mut stmt = tx.prepare_cached(
        "SELECT c.person_id, c.code FROM doorcodes c \
         JOIN people p ON p.id = c.person_id AND p.role = 'guest' AND p.revoked = 0 \
         WHERE c.door_id = ?1",
    )?;
    let rows = stmt.query_map([id_param(&door)], |r| {
        Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, String>(1)?))
    })?;
    rows.map(|row| {
        let (person, code) = row?;
        Ok((blob_id(person)?, code))
    })
    .collect()
}

/// A code left out of its lock's bundle: worth a line in the server's log.
fn log_left_out(person: &str) {
    eprintln!("door-server: doorcode of {person} has more schedules than a keypad holds; left out");
}

/// What the lock of `door` should hold at `now`.
fn desired_state(
    tx: &Transaction<'_>,
    property: Id,
    door: Id,
    lock: Id,
    now: i64,
) -> ApiResult<SyncState> {
    let (floors, issued_floor) = floors_for(tx, property, door, lock, now)?;
    let span_from = now - now.rem_euclid(KEYPAD_SPAN_STEP) - 86_400;
    let (doorcodes, keypad) = doorcodes_for(tx, door, span_from, now)?;
    Ok(SyncState {
        format: STATE_FORMAT,
        floors,
        issued_floor,
        doorcodes,
        keypad,
        audit: audit_ack(tx, lock)?.map(|a| (a.epoch.to_string(), a.below)),
    })
}

fn stored_id(hex_id: &str) -> ApiResult<Id> {
    Id::from_hex(hex_id).ok_or_else(|| ApiError::internal("stored sync state id"))
}

fn floor(person: &str, (floor, expires_at): (u64, i64)) -> ApiResult<Floor> {
    Ok(Floor {
        person_id: stored_id(person)?,
        floor,
        expires_at,
    })
}

fn doorcode(person: &str, c: &StoredCode) -> ApiResult<Doorcode> {
    Ok(Doorcode {
        person_id: stored_id(person)?,
        code: c.code.clone(),
        expires_at: c.expires_at,
        schedules: c.schedules.clone(),
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

fn keypad_rules(time_zone: &str, k: &StoredKeypad) -> ApiResult<KeypadRules> {
    let zone = ZoneRules::from_iana(time_zone, k.span_from, k.span_from + KEYPAD_SPAN)
        .map_err(|e| ApiError::internal(format!("zone rules: {e:?}")))?;
    let schedules = k
        .schedules
        .iter()
        .map(|s| schedule_json::parse(s, "schedule"))
        .collect::<ApiResult<_>>()?;
    Ok(KeypadRules { zone, schedules })
}

/// A bundle's contents: floors, doorcodes, and for a full bundle the keypad rules.
struct Contents {
    floors: Vec<Floor>,
    doorcodes: DoorcodeChanges,
    keypad: bool,
}

/// A full bundle's contents: the whole state.
fn full(state: &SyncState) -> ApiResult<Contents> {
    let floors = state
        .floors
        .iter()
        .map(|(p, f)| floor(p, *f))
        .collect::<ApiResult<_>>()?;
    let added = state
        .doorcodes
        .iter()
        .map(|(p, c)| doorcode(p, c))
        .collect::<ApiResult<_>>()?;
    Ok(Contents {
        floors,
        doorcodes: DoorcodeChanges {
            added,
            removed: Vec::new(),
        },
        keypad: state.keypad.is_some(),
    })
}

/// The change from `base` to `latest` as a delta's contents, or `None` when a delta cannot say
/// it: another snapshot format, other keypad rules, a new issued floor (floors were compacted),
/// or more floors than the lock could then hold. A delta raises floors; one that left `latest`
/// (expired, or compacted) needs no word, locks drop expired ones themselves.
fn delta(base: &SyncState, latest: &SyncState) -> ApiResult<Option<Contents>> {
    if base.format != latest.format
        || base.keypad != latest.keypad
        || base.issued_floor != latest.issued_floor
    {
        return Ok(None);
    }
    let raised: Vec<Floor> = latest
        .floors
        .iter()
        .filter(|(p, f)| base.floors.get(*p) != Some(f))
        .map(|(p, f)| floor(p, *f))
        .collect::<ApiResult<_>>()?;
    if base.floors.len() + raised.len() > FloorList::CAPACITY {
        return Ok(None);
    }
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
    Ok(Some(Contents {
        floors: raised,
        doorcodes: DoorcodeChanges { added, removed },
        keypad: false,
    }))
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
    prepare_bundle(tx, property, lock, since, now)?.seal()
}

/// A bundle's contents, decided in the transaction that recorded its iteration, still to be
/// sealed and signed: that needs nothing more from the database, so it happens after the
/// commit, without holding the writer.
pub enum Prepared {
    UpToDate(SyncBundleJson),
    ToSeal(Box<Unsealed>),
}

pub struct Unsealed {
    bundle: SyncBundle,
    issuer: IssuerKey,
    lock_key: LockPublicKey,
}

impl Prepared {
    pub fn seal(self) -> ApiResult<SyncBundleJson> {
        let (bundle, issuer, lock_key) = match self {
            Prepared::UpToDate(json) => return Ok(json),
            Prepared::ToSeal(u) => (u.bundle, u.issuer, u.lock_key),
        };
        let bytes = bundle
            .seal_and_sign(&issuer, &lock_key, &mut OsRng)
            // Floors are compacted and doorcodes capped on the way in, so no state gets here.
            .map_err(|e| ApiError::internal(format!("building the sync bundle: {e}")))?;
        Ok(SyncBundleJson {
            lock_id: bundle.lock_id.to_string(),
            iteration: bundle.iteration,
            base_iteration: bundle.base_iteration,
            up_to_date: false,
            size: u32::try_from(bytes.len()).map_err(|_| ApiError::internal("bundle size"))?,
            bundle: Some(to_b64(&bytes)),
        })
    }
}

/// The first half of `bundle_for`: everything that reads or writes the database.
pub fn prepare_bundle(
    tx: &Transaction<'_>,
    property: Id,
    lock: Id,
    since: u64,
    now: i64,
) -> ApiResult<Prepared> {
    let (door, lock_key) = lock_of(tx, lock, property)?;
    let desired = desired_state(tx, property, door, lock, now)?;
    let iteration = record_state(tx, lock, &desired, now)?;
    if since == iteration {
        return Ok(Prepared::UpToDate(SyncBundleJson {
            lock_id: lock.to_string(),
            iteration,
            base_iteration: iteration,
            up_to_date: true,
            bundle: None,
            size: 0,
        }));
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
        Some(base) => delta(base, &desired)?,
        None => None,
    };
    let (base_iteration, contents) = match delta {
        Some(contents) => (since, contents),
        None => (0, full(&desired)?),
    };
    let issuer = issuer(tx, property)?;
    let keypad = match (&desired.keypad, contents.keypad) {
        (Some(k), true) => Some(keypad_rules(&issuer.time_zone, k)?),
        _ => None,
    };
    // Signed afresh on every request, so `issued_at` is a fresh signed time for the lock: the
    // same iteration may go out several times with later `issued_at`s, which is fine (a lock
    // applies an iteration once; the others are stale to it).
    Ok(Prepared::ToSeal(Box::new(Unsealed {
        bundle: SyncBundle {
            lock_id: lock,
            iteration,
            base_iteration,
            issued_at: now,
            floors: contents.floors,
            issued_floor: desired.issued_floor,
            doorcodes: contents.doorcodes,
            keypad,
            audit_ack: stored_ack(&desired)?,
        },
        issuer: issuer.key,
        lock_key,
    })))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BundleQuery {
    /// The sync iteration the lock is at, as the phone last learned it from the lock's unlock
    /// answers. 0 or absent: unknown, or never synced; the answer is a full bundle.
    #[serde(default, deserialize_with = "crate::extract::query_integer_opt")]
    pub since: Option<u64>,
}

/// The bundle for one lock of the caller's property: a delta from `since` when the server
/// still holds that iteration and a delta can express the change, else a full bundle.
#[utoipa::path(get, path = "/v1/locks/{lock_id}/bundle", tag = "resident",
    params(("lock_id" = String, Path), BundleQuery), security(("person" = [])),
    responses((status = 200, body = SyncBundleJson), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody),
              (status = 422, description = "`invalid_input`: malformed, or `since` is beyond the lock's latest iteration", body = ErrorBody)))]
pub async fn bundle(
    State(state): State<AppState>,
    person: Person,
    Path(lock_id): Path<String>,
    Query(q): Query<BundleQuery>,
) -> ApiResult<Json<SyncBundleJson>> {
    let lock = id("lock_id", &lock_id)?;
    let now = state.now();
    let db = state.db.clone();
    Ok(Json(
        blocking(move || {
            let since = q.since.unwrap_or(0);
            db.write(|tx| prepare_bundle(tx, person.property_id, lock, since, now))?
                .seal()
        })
        .await?,
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TimeQuery {
    /// Bind the signed time to this lock (32 hex digits); absent: any lock of the property.
    pub lock_id: Option<String>,
    /// Bind it to that lock's installation too: the lock's audit epoch (16 hex digits), which
    /// the lock tells in its ClockState answer. A new or wiped lock takes its first trusted
    /// time only from such a time (commissioning). Only with `lock_id`.
    pub epoch: Option<String>,
}

/// The server's clock signed by the property's issuer key, for a phone to hand to a lock whose
/// clock has drifted (inside an unlock request).
#[utoipa::path(get, path = "/v1/time", tag = "resident", params(TimeQuery), security(("person" = [])),
    responses((status = 200, body = SignedTimeJson), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn signed_time(
    State(state): State<AppState>,
    person: Person,
    Query(q): Query<TimeQuery>,
) -> ApiResult<Json<SignedTimeJson>> {
    let lock = q.lock_id.as_deref().map(|l| id("lock_id", l)).transpose()?;
    let epoch = q
        .epoch
        .as_deref()
        .map(|e| {
            AuditEpoch::from_hex(e)
                .ok_or_else(|| ApiError::invalid("epoch", "must be 16 hex digits"))
        })
        .transpose()?;
    if epoch.is_some() && lock.is_none() {
        return Err(ApiError::invalid("epoch", "needs lock_id"));
    }
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
        epoch,
    }
    .sign(&key);
    Ok(Json(SignedTimeJson {
        time: now,
        signed_time: to_b64(&signed),
    }))
}
