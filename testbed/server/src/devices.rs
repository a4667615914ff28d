//! A person's devices: the per-person limit, listing, and removal by the person or by a
//! manager. A removed device keeps its row (audit, history), gets no more documents, ends the
//! sessions bound to it, and has its credentials voided at offline locks (`device_removed`).

use axum::extract::State;
use axum::Json;
use door_protocol::Id;
use rusqlite::{params, OptionalExtension, Transaction};

use crate::access::id_param;
use crate::auth::{Manager, Person};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{id, Path};
use crate::manager::person_of;
use crate::model::RegisteredDevice;
use crate::AppState;

/// Refuses one more device when `person` already has `limit` devices in use.
pub fn check_limit(tx: &Transaction<'_>, person: Id, limit: u32) -> ApiResult<()> {
    let live: u32 = tx.query_row(
        "SELECT COUNT(*) FROM devices WHERE person_id = ?1 AND removed_at IS NULL",
        [id_param(&person)],
        |r| r.get(0),
    )?;
    if live >= limit {
        return Err(ApiError::device_limit(limit));
    }
    Ok(())
}

/// The device `device` of `person` was removed: it must open nothing any more. Its documents
/// are voided at offline locks by raising the person's floor (one entry per person, however
/// many devices): the person's other devices fetch documents above it at their next refresh.
/// Its credentials are superseded, so none of them is handed out again.
pub fn device_removed(
    tx: &Transaction<'_>,
    person: Id,
    device: Id,
    now: i64,
) -> Result<(), ApiError> {
    let live: bool = tx.query_row(
        "SELECT EXISTS(SELECT 1 FROM credentials WHERE person_id = ?1 AND device_id = ?2 \
         AND not_after > ?3)",
        params![id_param(&person), id_param(&device), now],
        |r| r.get(0),
    )?;
    if live {
        crate::policy::raise_floor(tx, person, now)?;
    }
    tx.execute(
        "UPDATE credentials SET superseded = 1 WHERE person_id = ?1 AND device_id = ?2",
        params![id_param(&person), id_param(&device)],
    )?;
    Ok(())
}

const COLUMNS: &str = "id, created_at, last_seen_at, removed_at";

fn device_row(
    current: Option<Id>,
) -> impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<RegisteredDevice> {
    move |r| {
        let id: Vec<u8> = r.get(0)?;
        Ok(RegisteredDevice {
            current: current.is_some_and(|c| c.0.as_slice() == id.as_slice()),
            id: hex::encode(id),
            created_at: r.get(1)?,
            last_seen_at: r.get(2)?,
            removed_at: r.get(3)?,
        })
    }
}

/// Every device of `person`, removed ones too, oldest first.
fn list(tx: &Transaction<'_>, person: Id, current: Option<Id>) -> ApiResult<Vec<RegisteredDevice>> {
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM devices WHERE person_id = ?1 ORDER BY created_at, rowid"
    ))?;
    let rows = stmt.query_map([id_param(&person)], device_row(current))?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Removes `device` of `person` (once: removing it again changes nothing). Another person's
/// device is "not found": the API does not confirm it exists.
fn remove(
    tx: &Transaction<'_>,
    person: Id,
    device: Id,
    now: i64,
    current: Option<Id>,
) -> ApiResult<RegisteredDevice> {
    let removed: Option<bool> = tx
        .query_row(
            "SELECT removed_at IS NOT NULL FROM devices WHERE id = ?1 AND person_id = ?2",
            params![id_param(&device), id_param(&person)],
            |r| r.get(0),
        )
        .optional()?;
    match removed {
        None => return Err(ApiError::not_found("device")),
        Some(true) => {}
        Some(false) => {
            tx.execute(
                "UPDATE devices SET removed_at = ?1 WHERE id = ?2",
                params![now, id_param(&device)],
            )?;
            // The phone holding the device is signed out with it.
            tx.execute(
                "DELETE FROM sessions WHERE device_id = ?1",
                [id_param(&device)],
            )?;
            device_removed(tx, person, device, now)?;
        }
    }
    Ok(tx.query_row(
        &format!("SELECT {COLUMNS} FROM devices WHERE id = ?1"),
        [id_param(&device)],
        device_row(current),
    )?)
}

/// This person's devices, removed ones too (with `removed_at`), oldest first; `current`
/// marks the one this session registered.
#[utoipa::path(get, path = "/v1/me/devices", tag = "resident", security(("person" = [])),
    responses((status = 200, body = Vec<RegisteredDevice>), (status = 401, body = ErrorBody)))]
pub async fn my_devices(
    State(state): State<AppState>,
    person: Person,
) -> ApiResult<Json<Vec<RegisteredDevice>>> {
    Ok(Json(
        state.db.read(|tx| list(tx, person.id, person.device))?,
    ))
}

/// Removes one of this person's devices: it gets no more documents, its credentials are
/// revoked at offline locks from their next Door Sync, and the sessions bound to it end
/// (removing the calling device signs this session out). Removing it again changes nothing.
#[utoipa::path(delete, path = "/v1/me/devices/{device_id}", tag = "resident",
    params(("device_id" = String, Path)), security(("person" = [])),
    responses((status = 200, body = RegisteredDevice), (status = 401, body = ErrorBody),
        (status = 404, description = "no such device of this person", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn remove_my_device(
    State(state): State<AppState>,
    person: Person,
    Path(device_id): Path<String>,
) -> ApiResult<Json<RegisteredDevice>> {
    let device = id("device_id", &device_id)?;
    let now = state.now();
    Ok(Json(state.db.write(|tx| {
        remove(tx, person.id, device, now, person.device)
    })?))
}

/// A person's devices, removed ones too, oldest first.
#[utoipa::path(get, path = "/v1/properties/{property_id}/people/{person_id}/devices", tag = "manager",
    params(("property_id" = String, Path), ("person_id" = String, Path)), security(("manager" = [])),
    responses((status = 200, body = Vec<RegisteredDevice>), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn person_devices(
    State(state): State<AppState>,
    manager: Manager,
    Path((pid, person)): Path<(String, String)>,
) -> ApiResult<Json<Vec<RegisteredDevice>>> {
    let property = manager.check(&pid)?;
    Ok(Json(state.db.read(|tx| {
        let person = person_of(tx, property, &person)?;
        list(tx, person, None)
    })?))
}

/// Removes a person's device (a lost or replaced phone): as the person's own removal.
#[utoipa::path(delete, path = "/v1/properties/{property_id}/people/{person_id}/devices/{device_id}", tag = "manager",
    params(("property_id" = String, Path), ("person_id" = String, Path), ("device_id" = String, Path)),
    security(("manager" = [])),
    responses((status = 200, body = RegisteredDevice), (status = 401, body = ErrorBody),
        (status = 404, description = "no such person, or no such device of the person", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn remove_person_device(
    State(state): State<AppState>,
    manager: Manager,
    Path((pid, person, device_id)): Path<(String, String, String)>,
) -> ApiResult<Json<RegisteredDevice>> {
    let property = manager.check(&pid)?;
    let device = id("device_id", &device_id)?;
    let now = state.now();
    Ok(Json(state.db.write(|tx| {
        let person = person_of(tx, property, &person)?;
        remove(tx, person, device, now, None)
    })?))
}
