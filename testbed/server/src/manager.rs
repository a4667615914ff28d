//! DOOR OS, the manager side: properties, doors, keys, people, key assignments, doorcodes.
//! Managers assign keys, never single doors.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use door_protocol::keys::IssuerKey;
use door_protocol::{Id, ZoneRules};
use rusqlite::{params, OptionalExtension, Transaction};

use crate::access::{blob_id, id_param, new_id};
use crate::auth::{hash_password, random_token, token_hash, Admin, Manager};
use crate::db::blocking;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{b64, id, to_b64, Body, Path};
use crate::model::*;
use crate::policy::rights_changed;
use crate::{schedule_json, AppState};

const ROLES: [&str; 4] = ["resident", "staff", "vendor", "guest"];

fn nonempty(field: &str, s: &str) -> ApiResult<()> {
    if s.trim().is_empty() {
        Err(ApiError::invalid(field, "must not be empty"))
    } else if s.len() > 200 {
        Err(ApiError::invalid(field, "is longer than 200 bytes"))
    } else {
        Ok(())
    }
}

pub fn property_json(tx: &Transaction<'_>, property: Id) -> ApiResult<PropertyJson> {
    let (name, time_zone): (String, String) = tx.query_row(
        "SELECT name, time_zone FROM properties WHERE id = ?1",
        [id_param(&property)],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let issuer = crate::access::issuer(tx, property)?;
    Ok(PropertyJson {
        id: property.to_string(),
        name,
        time_zone,
        issuer_kid: issuer.key.kid().to_string(),
        issuer_public_key: to_b64(&issuer.key.verifying().to_sec1_compressed()),
    })
}

#[utoipa::path(post, path = "/v1/properties", tag = "manager", request_body = NewProperty,
    security(("admin" = [])),
    responses((status = 201, body = CreatedProperty), (status = 422, body = ErrorBody)))]
pub async fn create_property(
    State(state): State<AppState>,
    _: Admin,
    Body(req): Body<NewProperty>,
) -> ApiResult<(StatusCode, Json<CreatedProperty>)> {
    nonempty("name", &req.name)?;
    let now = state.now();
    ZoneRules::from_iana(&req.time_zone, now, now + 86_400)
        .map_err(|_| ApiError::invalid("time_zone", "is not a known IANA time zone"))?;
    let key = IssuerKey::generate(&mut rand::rngs::OsRng);
    let manager_key = random_token();
    let id = new_id();
    let property = state.db.write(|tx| {
        tx.execute(
            "INSERT INTO properties (id, name, time_zone, issuer_secret, issuer_kid, manager_key_hash, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                id_param(&id),
                req.name,
                req.time_zone,
                key.to_bytes().as_slice(),
                key.kid().0.as_slice(),
                token_hash(&manager_key),
                now
            ],
        )?;
        property_json(tx, id)
    })?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedProperty {
            property,
            manager_key,
        }),
    ))
}

#[utoipa::path(get, path = "/v1/properties/{property_id}", tag = "manager",
    params(("property_id" = String, Path)), security(("manager" = [])),
    responses((status = 200, body = PropertyJson), (status = 404, body = ErrorBody)))]
pub async fn get_property(
    State(state): State<AppState>,
    manager: Manager,
    Path(pid): Path<String>,
) -> ApiResult<Json<PropertyJson>> {
    let property = manager.check(&pid)?;
    Ok(Json(state.db.read(|tx| property_json(tx, property))?))
}

fn door_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DoorJson> {
    Ok(DoorJson {
        id: hex::encode(r.get::<_, Vec<u8>>(0)?),
        name: r.get(1)?,
        online: r.get(2)?,
        lock_id: hex::encode(r.get::<_, Vec<u8>>(3)?),
        lock_public_key: to_b64(&r.get::<_, Vec<u8>>(4)?),
        keypad: r.get(5)?,
    })
}

const DOOR_COLUMNS: &str = "id, name, online, lock_id, lock_public_key, keypad";

#[utoipa::path(post, path = "/v1/properties/{property_id}/doors", tag = "manager",
    params(("property_id" = String, Path)), request_body = NewDoor, security(("manager" = [])),
    responses((status = 201, body = DoorJson), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_door(
    State(state): State<AppState>,
    manager: Manager,
    Path(pid): Path<String>,
    Body(req): Body<NewDoor>,
) -> ApiResult<(StatusCode, Json<DoorJson>)> {
    let property = manager.check(&pid)?;
    nonempty("name", &req.name)?;
    let lock_key = b64("lock_public_key", &req.lock_public_key)?;
    p256::PublicKey::from_sec1_bytes(&lock_key)
        .map_err(|_| ApiError::invalid("lock_public_key", "is not a P-256 SEC1 point"))?;
    let lock_id = match &req.lock_id {
        Some(s) => id("lock_id", s)?,
        None => new_id(),
    };
    let door = new_id();
    let json = state.db.write(|tx| {
        let taken: bool = tx.query_row("SELECT EXISTS(SELECT 1 FROM doors WHERE lock_id = ?1)", [id_param(&lock_id)], |r| r.get(0))?;
        if taken {
            return Err(ApiError::conflict("lock_id", "another door has this lock"));
        }
        tx.execute(
            "INSERT INTO doors (id, property_id, name, online, lock_id, lock_public_key, keypad) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![id_param(&door), id_param(&property), req.name, req.online, id_param(&lock_id), lock_key, req.keypad],
        )?;
        Ok(tx.query_row(&format!("SELECT {DOOR_COLUMNS} FROM doors WHERE id = ?1"), [id_param(&door)], door_row)?)
    })?;
    Ok((StatusCode::CREATED, Json(json)))
}

#[utoipa::path(get, path = "/v1/properties/{property_id}/doors", tag = "manager",
    params(("property_id" = String, Path)), security(("manager" = [])),
    responses((status = 200, body = Vec<DoorJson>)))]
pub async fn list_doors(
    State(state): State<AppState>,
    manager: Manager,
    Path(pid): Path<String>,
) -> ApiResult<Json<Vec<DoorJson>>> {
    let property = manager.check(&pid)?;
    let doors = state.db.read(|tx| {
        let mut stmt = tx.prepare(&format!(
            "SELECT {DOOR_COLUMNS} FROM doors WHERE property_id = ?1 ORDER BY name"
        ))?;
        let rows = stmt.query_map([id_param(&property)], door_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    })?;
    Ok(Json(doors))
}

/// Checks a key's door list and returns it with ids parsed and schedules as stored.
fn key_doors(
    tx: &Transaction<'_>,
    property: Id,
    doors: &[KeyDoorJson],
) -> ApiResult<Vec<(Id, bool, String)>> {
    if doors.is_empty() {
        return Err(ApiError::invalid("doors", "a key needs at least one door"));
    }
    let mut out: Vec<(Id, bool, String)> = Vec::with_capacity(doors.len());
    for (i, d) in doors.iter().enumerate() {
        let door = id(&format!("doors[{i}].door_id"), &d.door_id)?;
        let ours: bool = tx.query_row(
            "SELECT EXISTS(SELECT 1 FROM doors WHERE id = ?1 AND property_id = ?2)",
            params![id_param(&door), id_param(&property)],
            |r| r.get(0),
        )?;
        if !ours {
            return Err(ApiError::invalid(
                format!("doors[{i}].door_id"),
                "is not a door of this property",
            ));
        }
        if out.iter().any(|(o, _, _)| *o == door) {
            return Err(ApiError::invalid(
                format!("doors[{i}].door_id"),
                "is listed twice",
            ));
        }
        if let Some(s) = &d.schedule {
            schedule_json::parse(s, &format!("doors[{i}].schedule"))?;
        }
        let stored =
            serde_json::to_string(&d.schedule).map_err(|e| ApiError::internal(e.to_string()))?;
        out.push((door, d.doorcodes, stored));
    }
    Ok(out)
}

pub fn insert_key(
    tx: &Transaction<'_>,
    property: Id,
    name: &str,
    kind: &str,
    doors: &[(Id, bool, String)],
) -> ApiResult<Id> {
    let key = new_id();
    tx.execute(
        "INSERT INTO keys (id, property_id, name, kind) VALUES (?1, ?2, ?3, ?4)",
        params![id_param(&key), id_param(&property), name, kind],
    )?;
    insert_key_doors(tx, key, doors)?;
    Ok(key)
}

fn insert_key_doors(tx: &Transaction<'_>, key: Id, doors: &[(Id, bool, String)]) -> ApiResult<()> {
    for (door, doorcodes, schedule) in doors {
        tx.execute(
            "INSERT INTO key_doors (key_id, door_id, doorcodes, schedule) VALUES (?1, ?2, ?3, ?4)",
            params![id_param(&key), id_param(door), doorcodes, schedule],
        )?;
    }
    Ok(())
}

fn key_json(tx: &Transaction<'_>, property: Id, key: Id) -> ApiResult<KeyJson> {
    let name: Option<String> = tx
        .query_row(
            "SELECT name FROM keys WHERE id = ?1 AND property_id = ?2 AND kind = 'manager'",
            params![id_param(&key), id_param(&property)],
            |r| r.get(0),
        )
        .optional()?;
    let name = name.ok_or_else(|| ApiError::not_found("key"))?;
    let mut stmt = tx.prepare_cached(
        "SELECT door_id, doorcodes, schedule FROM key_doors WHERE key_id = ?1 ORDER BY door_id",
    )?;
    let doors = stmt
        .query_map([id_param(&key)], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, bool>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?
        .map(|row| {
            let (door, doorcodes, schedule) = row?;
            Ok(KeyDoorJson {
                door_id: hex::encode(door),
                doorcodes,
                schedule: serde_json::from_str(&schedule)
                    .map_err(|e| ApiError::internal(e.to_string()))?,
            })
        })
        .collect::<ApiResult<Vec<_>>>()?;
    let holders: u32 = tx.query_row(
        "SELECT COUNT(*) FROM assignments WHERE key_id = ?1 AND revoked_at IS NULL",
        [id_param(&key)],
        |r| r.get(0),
    )?;
    Ok(KeyJson {
        id: key.to_string(),
        name,
        doors,
        holders,
    })
}

#[utoipa::path(post, path = "/v1/properties/{property_id}/keys", tag = "manager",
    params(("property_id" = String, Path)), request_body = NewKey, security(("manager" = [])),
    responses((status = 201, body = KeyJson), (status = 422, body = ErrorBody)))]
pub async fn create_key(
    State(state): State<AppState>,
    manager: Manager,
    Path(pid): Path<String>,
    Body(req): Body<NewKey>,
) -> ApiResult<(StatusCode, Json<KeyJson>)> {
    let property = manager.check(&pid)?;
    nonempty("name", &req.name)?;
    let json = state.db.write(|tx| {
        let doors = key_doors(tx, property, &req.doors)?;
        let key = insert_key(tx, property, &req.name, "manager", &doors)?;
        key_json(tx, property, key)
    })?;
    Ok((StatusCode::CREATED, Json(json)))
}

#[utoipa::path(get, path = "/v1/properties/{property_id}/keys", tag = "manager",
    params(("property_id" = String, Path)), security(("manager" = [])),
    responses((status = 200, body = Vec<KeyJson>)))]
pub async fn list_keys(
    State(state): State<AppState>,
    manager: Manager,
    Path(pid): Path<String>,
) -> ApiResult<Json<Vec<KeyJson>>> {
    let property = manager.check(&pid)?;
    let keys = state.db.read(|tx| {
        let mut stmt = tx.prepare(
            "SELECT id FROM keys WHERE property_id = ?1 AND kind = 'manager' ORDER BY name",
        )?;
        let ids = stmt
            .query_map([id_param(&property)], |r| r.get::<_, Vec<u8>>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        ids.into_iter()
            .map(|k| key_json(tx, property, blob_id(k)?))
            .collect()
    })?;
    Ok(Json(keys))
}

#[utoipa::path(get, path = "/v1/properties/{property_id}/keys/{key_id}", tag = "manager",
    params(("property_id" = String, Path), ("key_id" = String, Path)), security(("manager" = [])),
    responses((status = 200, body = KeyJson), (status = 404, body = ErrorBody)))]
pub async fn get_key(
    State(state): State<AppState>,
    manager: Manager,
    Path((pid, kid)): Path<(String, String)>,
) -> ApiResult<Json<KeyJson>> {
    let property = manager.check(&pid)?;
    let key = id("key_id", &kid)?;
    Ok(Json(state.db.read(|tx| key_json(tx, property, key))?))
}

fn key_holders(tx: &Transaction<'_>, key: Id) -> ApiResult<Vec<Id>> {
    let mut stmt = tx.prepare_cached(
        "SELECT person_id FROM assignments WHERE key_id = ?1 AND revoked_at IS NULL",
    )?;
    let rows = stmt.query_map([id_param(&key)], |r| r.get::<_, Vec<u8>>(0))?;
    rows.map(|r| blob_id(r?)).collect()
}

/// Replaces a key's name and doors. Applies to every holder at once: doorcodes follow, their
/// documents are reissued, and narrowed rights are revoked for the offline locks.
#[utoipa::path(put, path = "/v1/properties/{property_id}/keys/{key_id}", tag = "manager",
    params(("property_id" = String, Path), ("key_id" = String, Path)), request_body = NewKey,
    security(("manager" = [])),
    responses((status = 200, body = KeyJson), (status = 404, body = ErrorBody),
        (status = 409, description = "`conflict`: a door's keypad already holds as many doorcodes as it can (`field`: `doorcodes`)", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn update_key(
    State(state): State<AppState>,
    manager: Manager,
    Path((pid, kid)): Path<(String, String)>,
    Body(req): Body<NewKey>,
) -> ApiResult<Json<KeyJson>> {
    let property = manager.check(&pid)?;
    let key = id("key_id", &kid)?;
    nonempty("name", &req.name)?;
    let now = state.now();
    Ok(Json(state.db.write(|tx| {
        key_json(tx, property, key)?; // exists and is a manager key of this property
        let doors = key_doors(tx, property, &req.doors)?;
        tx.execute(
            "UPDATE keys SET name = ?1 WHERE id = ?2",
            params![req.name, id_param(&key)],
        )?;
        tx.execute("DELETE FROM key_doors WHERE key_id = ?1", [id_param(&key)])?;
        insert_key_doors(tx, key, &doors)?;
        for person in key_holders(tx, key)? {
            rights_changed(tx, person, now)?;
        }
        key_json(tx, property, key)
    })?))
}

/// "Disable All Doorcodes" on a key.
#[utoipa::path(post, path = "/v1/properties/{property_id}/keys/{key_id}/disable-doorcodes", tag = "manager",
    params(("property_id" = String, Path), ("key_id" = String, Path)), security(("manager" = [])),
    responses((status = 200, body = KeyJson), (status = 404, body = ErrorBody)))]
pub async fn disable_doorcodes(
    State(state): State<AppState>,
    manager: Manager,
    Path((pid, kid)): Path<(String, String)>,
) -> ApiResult<Json<KeyJson>> {
    let property = manager.check(&pid)?;
    let key = id("key_id", &kid)?;
    let now = state.now();
    Ok(Json(state.db.write(|tx| {
        key_json(tx, property, key)?;
        tx.execute(
            "UPDATE key_doors SET doorcodes = 0 WHERE key_id = ?1",
            [id_param(&key)],
        )?;
        for person in key_holders(tx, key)? {
            rights_changed(tx, person, now)?;
        }
        key_json(tx, property, key)
    })?))
}

fn person_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<PersonJson> {
    Ok(PersonJson {
        id: hex::encode(r.get::<_, Vec<u8>>(0)?),
        name: r.get(1)?,
        email: r.get(2)?,
        role: r.get(3)?,
        revoked: r.get(4)?,
    })
}

/// Checks a new person and hashes their password, before any transaction: Argon2 is slow on
/// purpose, and the writer would wait for it.
pub fn check_person(req: &NewPerson) -> ApiResult<Option<String>> {
    nonempty("name", &req.name)?;
    if !ROLES.contains(&req.role.as_str()) {
        return Err(ApiError::invalid(
            "role",
            format!("must be one of {ROLES:?}"),
        ));
    }
    if let Some(email) = &req.email {
        if !email.contains('@') || email.len() > 200 {
            return Err(ApiError::invalid("email", "is not an email address"));
        }
    }
    let password = match &req.password {
        Some(p) if p.len() < 8 => {
            return Err(ApiError::invalid("password", "needs at least 8 characters"))
        }
        Some(_) if req.email.is_none() => {
            return Err(ApiError::invalid(
                "email",
                "is needed to sign in with a password",
            ))
        }
        Some(p) => Some(hash_password(p)?),
        None => None,
    };
    Ok(password)
}

/// Inserts a person that `check_person` accepted, with the hash it made.
pub fn insert_person(
    tx: &Transaction<'_>,
    property: Id,
    req: &NewPerson,
    password: Option<String>,
) -> ApiResult<PersonJson> {
    let person = new_id();
    let inserted = tx.execute(
        "INSERT INTO people (id, property_id, name, email, role, password_hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![id_param(&person), id_param(&property), req.name, req.email, req.role, password],
    );
    match inserted {
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            return Err(ApiError::conflict("email", "another person has this email"))
        }
        other => other?,
    };
    Ok(tx.query_row(
        "SELECT id, name, email, role, revoked FROM people WHERE id = ?1",
        [id_param(&person)],
        person_row,
    )?)
}

#[utoipa::path(post, path = "/v1/properties/{property_id}/people", tag = "manager",
    params(("property_id" = String, Path)), request_body = NewPerson, security(("manager" = [])),
    responses((status = 201, body = PersonJson), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_person(
    State(state): State<AppState>,
    manager: Manager,
    Path(pid): Path<String>,
    Body(req): Body<NewPerson>,
) -> ApiResult<(StatusCode, Json<PersonJson>)> {
    let property = manager.check(&pid)?;
    let db = state.db.clone();
    let json = blocking(move || {
        let password = check_person(&req)?;
        db.write(|tx| insert_person(tx, property, &req, password))
    })
    .await?;
    Ok((StatusCode::CREATED, Json(json)))
}

#[utoipa::path(get, path = "/v1/properties/{property_id}/people", tag = "manager",
    params(("property_id" = String, Path)), security(("manager" = [])),
    responses((status = 200, body = Vec<PersonJson>)))]
pub async fn list_people(
    State(state): State<AppState>,
    manager: Manager,
    Path(pid): Path<String>,
) -> ApiResult<Json<Vec<PersonJson>>> {
    let property = manager.check(&pid)?;
    Ok(Json(state.db.read(|tx| {
        let mut stmt = tx.prepare("SELECT id, name, email, role, revoked FROM people WHERE property_id = ?1 ORDER BY name")?;
        let rows = stmt.query_map([id_param(&property)], person_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    })?))
}

pub(crate) fn person_of(tx: &Transaction<'_>, property: Id, person: &str) -> ApiResult<Id> {
    let person = id("person_id", person)?;
    let ours: bool = tx.query_row(
        "SELECT EXISTS(SELECT 1 FROM people WHERE id = ?1 AND property_id = ?2)",
        params![id_param(&person), id_param(&property)],
        |r| r.get(0),
    )?;
    if ours {
        Ok(person)
    } else {
        Err(ApiError::not_found("person"))
    }
}

/// Revokes a person entirely: sessions end, every key is taken back, documents are revoked.
#[utoipa::path(post, path = "/v1/properties/{property_id}/people/{person_id}/revoke", tag = "manager",
    params(("property_id" = String, Path), ("person_id" = String, Path)), security(("manager" = [])),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn revoke_person(
    State(state): State<AppState>,
    manager: Manager,
    Path((pid, person)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let property = manager.check(&pid)?;
    let now = state.now();
    state.db.write(|tx| {
        let person = person_of(tx, property, &person)?;
        tx.execute(
            "UPDATE people SET revoked = 1 WHERE id = ?1",
            [id_param(&person)],
        )?;
        tx.execute(
            "UPDATE assignments SET revoked_at = ?1 WHERE person_id = ?2 AND revoked_at IS NULL",
            params![now, id_param(&person)],
        )?;
        tx.execute(
            "DELETE FROM sessions WHERE person_id = ?1",
            [id_param(&person)],
        )?;
        rights_changed(tx, person, now)
    })?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/v1/properties/{property_id}/people/{person_id}/keys", tag = "manager",
    params(("property_id" = String, Path), ("person_id" = String, Path)), request_body = NewAssignment,
    security(("manager" = [])),
    responses((status = 201, body = AssignmentJson),
        (status = 403, description = "`revoked`: the person's access has been revoked", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "`conflict`: the person already holds the key (`field`: `key_id`), or a door's keypad holds as many doorcodes as it can (`doorcodes`)", body = ErrorBody),
        (status = 422, description = "`invalid_input`: malformed, or `key_id` is not a key of this property", body = ErrorBody)))]
pub async fn assign_key(
    State(state): State<AppState>,
    manager: Manager,
    Path((pid, person)): Path<(String, String)>,
    Body(req): Body<NewAssignment>,
) -> ApiResult<(StatusCode, Json<AssignmentJson>)> {
    let property = manager.check(&pid)?;
    let key = id("key_id", &req.key_id)?;
    let now = state.now();
    let json = state.db.write(|tx| {
        let person = person_of(tx, property, &person)?;
        key_json(tx, property, key).map_err(|_| ApiError::invalid("key_id", "is not a key of this property"))?;
        let revoked: bool = tx.query_row("SELECT revoked FROM people WHERE id = ?1", [id_param(&person)], |r| r.get(0))?;
        if revoked {
            return Err(ApiError::revoked("this person's access has been revoked"));
        }
        let assignment = new_id();
        let inserted = tx.execute(
            "INSERT INTO assignments (id, key_id, person_id, may_share, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![id_param(&assignment), id_param(&key), id_param(&person), req.may_share, now],
        );
        match inserted {
            Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
                return Err(ApiError::conflict("key_id", "the person already holds this key"))
            }
            other => other?,
        };
        rights_changed(tx, person, now)?;
        Ok(AssignmentJson { id: assignment.to_string(), key_id: key.to_string(), person_id: person.to_string(), may_share: req.may_share })
    })?;
    Ok((StatusCode::CREATED, Json(json)))
}

/// Takes a key back. Doorcodes of doors no other held key gives are deleted for good.
#[utoipa::path(delete, path = "/v1/properties/{property_id}/people/{person_id}/keys/{key_id}", tag = "manager",
    params(("property_id" = String, Path), ("person_id" = String, Path), ("key_id" = String, Path)),
    security(("manager" = [])),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn unassign_key(
    State(state): State<AppState>,
    manager: Manager,
    Path((pid, person, kid)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    let property = manager.check(&pid)?;
    let key = id("key_id", &kid)?;
    let now = state.now();
    state.db.write(|tx| {
        let person = person_of(tx, property, &person)?;
        let n = tx.execute(
            "UPDATE assignments SET revoked_at = ?1 WHERE key_id = ?2 AND person_id = ?3 AND revoked_at IS NULL",
            params![now, id_param(&key), id_param(&person)],
        )?;
        if n == 0 {
            return Err(ApiError::not_found("assignment"));
        }
        rights_changed(tx, person, now)
    })?;
    Ok(StatusCode::NO_CONTENT)
}

/// Turns May Share on or off for one key a person holds. Turning it off narrows (or ends) the
/// guests the person invited to that key's doors, in the same transaction.
#[utoipa::path(patch, path = "/v1/properties/{property_id}/people/{person_id}/keys/{key_id}", tag = "manager",
    params(("property_id" = String, Path), ("person_id" = String, Path), ("key_id" = String, Path)),
    request_body = AssignmentPatch, security(("manager" = [])),
    responses((status = 200, body = AssignmentJson), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, description = "`conflict`: a door's keypad already holds as many doorcodes as it can (`field`: `doorcodes`)", body = ErrorBody),
              (status = 422, body = ErrorBody)))]
pub async fn update_assignment(
    State(state): State<AppState>,
    manager: Manager,
    Path((pid, person, kid)): Path<(String, String, String)>,
    Body(req): Body<AssignmentPatch>,
) -> ApiResult<Json<AssignmentJson>> {
    let property = manager.check(&pid)?;
    let key = id("key_id", &kid)?;
    let now = state.now();
    Ok(Json(state.db.write(|tx| {
        let person = person_of(tx, property, &person)?;
        let assignment: Option<Vec<u8>> = tx
            .query_row(
                "UPDATE assignments SET may_share = ?1 WHERE key_id = ?2 AND person_id = ?3 \
                 AND revoked_at IS NULL RETURNING id",
                params![req.may_share, id_param(&key), id_param(&person)],
                |r| r.get(0),
            )
            .optional()?;
        let assignment = assignment.ok_or_else(|| ApiError::not_found("assignment"))?;
        rights_changed(tx, person, now)?;
        Ok(AssignmentJson {
            id: blob_id(assignment)?.to_string(),
            key_id: key.to_string(),
            person_id: person.to_string(),
            may_share: req.may_share,
        })
    })?))
}

/// Every guest invited at the property, with who invited them: guests' keys are made per door
/// for the invite and are not in the key list, so this is where a manager sees them.
#[utoipa::path(get, path = "/v1/properties/{property_id}/guests", tag = "manager",
    params(("property_id" = String, Path)), security(("manager" = [])),
    responses((status = 200, body = Vec<PropertyGuestJson>), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub async fn list_guests(
    State(state): State<AppState>,
    manager: Manager,
    Path(pid): Path<String>,
) -> ApiResult<Json<Vec<PropertyGuestJson>>> {
    let property = manager.check(&pid)?;
    Ok(Json(state.db.read(|tx| {
        let mut stmt = tx.prepare(
            "SELECT id, inviter_id, guest_id FROM invites WHERE property_id = ?1 ORDER BY created_at, id",
        )?;
        let rows = stmt
            .query_map([id_param(&property)], |r| {
                Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?, r.get::<_, Vec<u8>>(2)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(invite, inviter, guest)| {
                Ok(PropertyGuestJson {
                    guest: crate::guests::guest_json(tx, &invite)?,
                    inviter_id: hex::encode(inviter),
                    guest_person_id: hex::encode(guest),
                })
            })
            .collect()
    })?))
}

#[utoipa::path(get, path = "/v1/properties/{property_id}/people/{person_id}/doorcodes", tag = "manager",
    params(("property_id" = String, Path), ("person_id" = String, Path)), security(("manager" = [])),
    responses((status = 200, body = Vec<DoorcodeJson>), (status = 404, body = ErrorBody)))]
pub async fn person_doorcodes(
    State(state): State<AppState>,
    manager: Manager,
    Path((pid, person)): Path<(String, String)>,
) -> ApiResult<Json<Vec<DoorcodeJson>>> {
    let property = manager.check(&pid)?;
    Ok(Json(state.db.read(|tx| {
        let person = person_of(tx, property, &person)?;
        doorcodes_of(tx, person)
    })?))
}

pub fn doorcodes_of(tx: &Transaction<'_>, person: Id) -> ApiResult<Vec<DoorcodeJson>> {
    let mut stmt = tx.prepare_cached(
        "SELECT door_id, code FROM doorcodes WHERE person_id = ?1 ORDER BY door_id",
    )?;
    let rows = stmt.query_map([id_param(&person)], |r| {
        Ok(DoorcodeJson {
            door_id: hex::encode(r.get::<_, Vec<u8>>(0)?),
            code: r.get(1)?,
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}
