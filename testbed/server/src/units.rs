//! Units: the manager says which unit (apartment) a door belongs to and which unit a person
//! lives in. A door without a unit is shared (lobby, garage, amenities). The access log
//! (access_log.rs) shows a person every entry at the doors of their own unit, and only their
//! own entries elsewhere.

use axum::extract::State;
use axum::Json;
use door_protocol::Id;
use rusqlite::{params, OptionalExtension, Transaction};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::access::id_param;
use crate::auth::Manager;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{id, Body, Path};
use crate::AppState;

/// The unit a door or a person belongs to.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct UnitJson {
    /// The unit's name, as the property names its apartments ("Unit 101"); null: none (a
    /// shared door; a person who lives in no unit of the property, e.g. staff).
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub unit: Option<String>,
}

/// A unit name as stored: trimmed, non-empty, at most 200 characters; `None` stays `None`.
fn unit_name(unit: Option<&str>) -> ApiResult<Option<String>> {
    let Some(unit) = unit else { return Ok(None) };
    let unit = unit.trim();
    if unit.is_empty() {
        Err(ApiError::invalid(
            "unit",
            "must not be empty (null for none)",
        ))
    } else if unit.chars().count() > 200 {
        Err(ApiError::invalid("unit", "is longer than 200 characters"))
    } else {
        Ok(Some(unit.to_owned()))
    }
}

/// Sets the unit of `table`'s row `row` of `property`; `what` names it in a 404.
fn set_unit(
    tx: &Transaction<'_>,
    table: &str,
    row: Id,
    property: Id,
    unit: Option<&str>,
    what: &str,
) -> ApiResult<UnitJson> {
    let changed = tx.execute(
        &format!("UPDATE {table} SET unit = ?1 WHERE id = ?2 AND property_id = ?3"),
        params![unit, id_param(&row), id_param(&property)],
    )?;
    if changed == 0 {
        return Err(ApiError::not_found(what));
    }
    Ok(UnitJson {
        unit: unit.map(Into::into),
    })
}

/// The unit of `table`'s row `row` of `property`; `what` names it in a 404.
fn unit_of(
    tx: &Transaction<'_>,
    table: &str,
    row: Id,
    property: Id,
    what: &str,
) -> ApiResult<UnitJson> {
    let unit: Option<Option<String>> = tx
        .query_row(
            &format!("SELECT unit FROM {table} WHERE id = ?1 AND property_id = ?2"),
            params![id_param(&row), id_param(&property)],
            |r| r.get(0),
        )
        .optional()?;
    Ok(UnitJson {
        unit: unit.ok_or_else(|| ApiError::not_found(what))?,
    })
}

#[utoipa::path(get, path = "/v1/properties/{property_id}/doors/{door_id}/unit", tag = "manager",
    params(("property_id" = String, Path), ("door_id" = String, Path)), security(("manager" = [])),
    responses((status = 200, body = UnitJson), (status = 404, body = ErrorBody)))]
pub async fn door_unit(
    State(state): State<AppState>,
    manager: Manager,
    Path((pid, door)): Path<(String, String)>,
) -> ApiResult<Json<UnitJson>> {
    let property = manager.check(&pid)?;
    let door = id("door_id", &door)?;
    Ok(Json(
        state
            .db
            .read(|tx| unit_of(tx, "doors", door, property, "door"))?,
    ))
}

#[utoipa::path(get, path = "/v1/properties/{property_id}/people/{person_id}/unit", tag = "manager",
    params(("property_id" = String, Path), ("person_id" = String, Path)), security(("manager" = [])),
    responses((status = 200, body = UnitJson), (status = 404, body = ErrorBody)))]
pub async fn person_unit(
    State(state): State<AppState>,
    manager: Manager,
    Path((pid, person)): Path<(String, String)>,
) -> ApiResult<Json<UnitJson>> {
    let property = manager.check(&pid)?;
    let person = id("person_id", &person)?;
    Ok(Json(state.db.read(|tx| {
        unit_of(tx, "people", person, property, "person")
    })?))
}

/// Puts a door in a unit (or, with null, makes it shared). Residents of the unit then see
/// every entry of the door's access log; anyone else only their own.
#[utoipa::path(put, path = "/v1/properties/{property_id}/doors/{door_id}/unit", tag = "manager",
    params(("property_id" = String, Path), ("door_id" = String, Path)), request_body = UnitJson,
    security(("manager" = [])),
    responses((status = 200, body = UnitJson), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set_door_unit(
    State(state): State<AppState>,
    manager: Manager,
    Path((pid, door)): Path<(String, String)>,
    Body(req): Body<UnitJson>,
) -> ApiResult<Json<UnitJson>> {
    let property = manager.check(&pid)?;
    let door = id("door_id", &door)?;
    let unit = unit_name(req.unit.as_deref())?;
    Ok(Json(state.db.write(|tx| {
        set_unit(tx, "doors", door, property, unit.as_deref(), "door")
    })?))
}

/// Says which unit a person lives in (null: none). A guest's unit is never used: a guest
/// sees only their own entries.
#[utoipa::path(put, path = "/v1/properties/{property_id}/people/{person_id}/unit", tag = "manager",
    params(("property_id" = String, Path), ("person_id" = String, Path)), request_body = UnitJson,
    security(("manager" = [])),
    responses((status = 200, body = UnitJson), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set_person_unit(
    State(state): State<AppState>,
    manager: Manager,
    Path((pid, person)): Path<(String, String)>,
    Body(req): Body<UnitJson>,
) -> ApiResult<Json<UnitJson>> {
    let property = manager.check(&pid)?;
    let person = id("person_id", &person)?;
    let unit = unit_name(req.unit.as_deref())?;
    Ok(Json(state.db.write(|tx| {
        set_unit(tx, "people", person, property, unit.as_deref(), "person")
    })?))
}
