//! Guests: a resident invites a guest to some of their shareable doors for a time range. The
//! server makes one key per door for the guest (invisible to the resident) and an invite
//! token the guest signs in with. The guest key holds the door and the invite's range only: what
//! the guest may open is derived from the host's current shareable grants (policy.rs), so a
//! guest never outlives or outgrows the host.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use door_protocol::{Id, Schedule};
use rusqlite::{params, OptionalExtension, Transaction};

use crate::access::{blob_id, id_param, new_id};
use crate::auth::{random_token, token_hash, Person};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{id, Body, Path};
use crate::manager::{check_person, insert_key, insert_person};
use crate::model::*;
use crate::policy::{self, rights_changed, Grant};
use crate::AppState;

/// The longest a guest invite may run.
pub const MAX_GUEST_SPAN: i64 = 90 * 86_400;

pub(crate) fn guest_json(tx: &Transaction<'_>, invite: &[u8]) -> ApiResult<GuestJson> {
    let (id, contact, starts_at, ends_at, redeemed, revoked): (Vec<u8>, String, i64, i64, Option<i64>, Option<i64>) =
        tx.query_row(
            "SELECT id, contact, starts_at, ends_at, redeemed_at, revoked_at FROM invites WHERE id = ?1",
            [invite],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
        )?;
    let mut stmt =
        tx.prepare_cached(
        "SELECT door_id, app, doorcode FROM invite_keys WHERE invite_id = ?1 AND removed_at IS NULL ORDER BY door_id",
    )?;
    let (mut door_ids, mut doorcode_door_ids) = (Vec::new(), Vec::new());
    for row in stmt.query_map([invite], |r| {
        Ok((
            r.get::<_, Vec<u8>>(0)?,
            r.get::<_, bool>(1)?,
            r.get::<_, bool>(2)?,
        ))
    })? {
        let (door, app, doorcode) = row?;
        if app {
            door_ids.push(hex::encode(&door));
        }
        if doorcode {
            doorcode_door_ids.push(hex::encode(&door));
        }
    }
    Ok(GuestJson {
        id: hex::encode(id),
        contact,
        door_ids,
        doorcode_door_ids,
        starts_at,
        ends_at,
        redeemed: redeemed.is_some(),
        revoked: revoked.is_some(),
    })
}

/// A guest key's own restriction: the invite's range, every hour of it. The host's shareable
/// grants at the door narrow it further (policy.rs).
fn invite_range(starts_at: i64, ends_at: i64) -> Schedule {
    Schedule {
        not_before: Some(starts_at),
        not_after: Some(ends_at),
        ..Schedule::always()
    }
}

#[utoipa::path(post, path = "/v1/me/guests", tag = "resident", request_body = NewGuest, security(("person" = [])),
    responses((status = 201, body = InvitedGuest),
        (status = 403, description = "`forbidden`: guests cannot invite guests; `not_shareable`: some doors may not be shared (`door_ids`); `doorcodes_disabled`: no key the host shares enables doorcodes at some doorcode doors (`door_ids`)", body = ErrorBody),
        (status = 409, description = "`conflict`: a door's keypad already holds as many doorcodes as it can (`field`: `doorcodes`)", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn invite_guest(
    State(state): State<AppState>,
    person: Person,
    Body(req): Body<NewGuest>,
) -> ApiResult<(StatusCode, Json<InvitedGuest>)> {
    if person.role == "guest" {
        return Err(ApiError::forbidden("guests cannot invite guests"));
    }
    let now = state.now();
    if req.contact.trim().is_empty() || req.contact.chars().count() > 200 {
        return Err(ApiError::invalid(
            "contact",
            "must be 1 to 200 characters, not all blank",
        ));
    }
    if req.door_ids.is_empty() && req.doorcode_door_ids.is_empty() {
        return Err(ApiError::invalid(
            "door_ids",
            "name at least one door (in door_ids or doorcode_door_ids)",
        ));
    }
    if req.ends_at <= req.starts_at {
        return Err(ApiError::invalid("ends_at", "must be after starts_at"));
    }
    if req.ends_at <= now {
        return Err(ApiError::invalid("ends_at", "is in the past"));
    }
    if req.ends_at - req.starts_at.max(now) > MAX_GUEST_SPAN {
        return Err(ApiError::invalid(
            "ends_at",
            "is more than 90 days after the start",
        ));
    }
    let in_app = door_list("door_ids", &req.door_ids)?;
    let with_code = door_list("doorcode_door_ids", &req.doorcode_door_ids)?;
    // Every door of the invite, each with (in-app, doorcode), and the field that named it.
    let mut wanted: BTreeMap<Id, (bool, bool, String)> = BTreeMap::new();
    for (door, field) in &in_app {
        wanted.insert(*door, (true, false, field.clone()));
    }
    for (door, field) in &with_code {
        wanted
            .entry(*door)
            .or_insert((false, false, field.clone()))
            .1 = true;
    }
    let token = random_token();
    let invited = state.db.write(|tx| {
        let mine: BTreeMap<Id, Vec<Grant>> = policy::by_door(policy::grants(tx, person.id, now)?);
        for (door, (_, _, field)) in &wanted {
            if !mine.contains_key(door) {
                return Err(ApiError::invalid(field.clone(), "is not one of your doors"));
            }
        }
        // May Share is per key: a door is shareable through the keys held with it, and the
        // guest gets only those keys' schedules.
        let refused: Vec<String> =
            wanted.keys().filter(|d| !mine[d].iter().any(|g| g.may_share)).map(|d| d.to_string()).collect();
        if !refused.is_empty() {
            return Err(ApiError::not_shareable(refused));
        }
        for (door, field) in &with_code {
            let keypad: bool =
                tx.query_row("SELECT keypad FROM doors WHERE id = ?1", [id_param(door)], |r| r.get(0))?;
            if !keypad {
                return Err(ApiError::invalid(field.clone(), "has no keypad"));
            }
        }
        // "Spaces where doorcodes and access sharing are disabled ... prevent them from
        // inviting guests or receiving a doorcode": a guest's code needs a key the host holds
        // with both May Share and doorcodes at that door.
        let no_code: Vec<String> = with_code
            .iter()
            .filter(|(d, _)| !mine[d].iter().any(|g| g.may_share && g.doorcodes))
            .map(|(d, _)| d.to_string())
            .collect();
        if !no_code.is_empty() {
            return Err(ApiError::doorcodes_disabled(no_code));
        }
        let guest = NewPerson { name: req.contact.clone(), email: None, role: "guest".into(), password: None };
        let password = check_person(&guest)?;
        let guest = insert_person(tx, person.property_id, &guest, password)?;
        let guest = id("guest", &guest.id)?;
        let invite = new_id();
        tx.execute(
            "INSERT INTO invites (id, property_id, inviter_id, guest_id, contact, token_hash, starts_at, ends_at, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                id_param(&invite),
                id_param(&person.property_id),
                id_param(&person.id),
                id_param(&guest),
                req.contact,
                token_hash(&token),
                req.starts_at,
                req.ends_at,
                now
            ],
        )?;
        for (door, (app, doorcode, _)) in &wanted {
            let schedule = crate::schedule_json::to_json(&invite_range(req.starts_at, req.ends_at));
            let stored = serde_json::to_string(&Some(schedule)).map_err(|e| ApiError::internal(e.to_string()))?;
            let key = insert_key(tx, person.property_id, &format!("guest {invite} {door}"), "guest", &[(*door, *doorcode, stored)])?;
            tx.execute(
                "INSERT INTO invite_keys (invite_id, key_id, door_id, app, doorcode) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id_param(&invite), id_param(&key), id_param(door), app, doorcode],
            )?;
            tx.execute(
                "INSERT INTO assignments (id, key_id, person_id, may_share, created_at) VALUES (?1, ?2, ?3, 0, ?4)",
                params![id_param(&new_id()), id_param(&key), id_param(&guest), now],
            )?;
        }
        rights_changed(tx, guest, now)?;
        Ok((guest_json(tx, &invite.0)?, crate::manager::doorcodes_of(tx, guest)?))
    })?;
    Ok((
        StatusCode::CREATED,
        Json(InvitedGuest {
            guest: invited.0,
            invite_token: token,
            doorcodes: invited.1,
        }),
    ))
}

/// The ids of one of `NewGuest`'s door lists, each with its field name; a bad or repeated id
/// is refused at its index.
fn door_list(field: &str, ids: &[String]) -> ApiResult<Vec<(Id, String)>> {
    let mut out: Vec<(Id, String)> = Vec::with_capacity(ids.len());
    for (i, d) in ids.iter().enumerate() {
        let at = format!("{field}[{i}]");
        let door = id(&at, d)?;
        if out.iter().any(|(seen, _)| *seen == door) {
            return Err(ApiError::invalid(at, "is listed twice"));
        }
        out.push((door, at));
    }
    Ok(out)
}

#[utoipa::path(get, path = "/v1/me/guests", tag = "resident", security(("person" = [])),
    responses((status = 200, body = Vec<GuestJson>)))]
pub async fn list_guests(
    State(state): State<AppState>,
    person: Person,
) -> ApiResult<Json<Vec<GuestJson>>> {
    Ok(Json(state.db.read(|tx| {
        let mut stmt =
            tx.prepare("SELECT id FROM invites WHERE inviter_id = ?1 ORDER BY created_at, id")?;
        let ids = stmt
            .query_map([id_param(&person.id)], |r| r.get::<_, Vec<u8>>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        ids.iter().map(|i| guest_json(tx, i)).collect()
    })?))
}

/// The guest of `invite` if `host` invited them; another person's guest is "not found": the
/// API does not confirm it exists.
fn guest_of(tx: &Transaction<'_>, host: Id, invite: Id) -> ApiResult<Id> {
    let guest: Option<Vec<u8>> = tx
        .query_row(
            "SELECT guest_id FROM invites WHERE id = ?1 AND inviter_id = ?2",
            params![id_param(&invite), id_param(&host)],
            |r| r.get(0),
        )
        .optional()?;
    blob_id(guest.ok_or_else(|| ApiError::not_found_at("guest_id", "guest"))?)
}

/// Ends the invite and the guest: their keys and sessions; `rights_changed` voids their
/// documents at offline locks from the next Door Sync.
fn revoke_invite(tx: &Transaction<'_>, invite: Id, guest: Id, now: i64) -> ApiResult<()> {
    tx.execute(
        "UPDATE invites SET revoked_at = COALESCE(revoked_at, ?1) WHERE id = ?2",
        params![now, id_param(&invite)],
    )?;
    tx.execute(
        "UPDATE people SET revoked = 1 WHERE id = ?1",
        [id_param(&guest)],
    )?;
    tx.execute(
        "UPDATE assignments SET revoked_at = ?1 WHERE person_id = ?2 AND revoked_at IS NULL",
        params![now, id_param(&guest)],
    )?;
    tx.execute(
        "DELETE FROM sessions WHERE person_id = ?1",
        [id_param(&guest)],
    )?;
    rights_changed(tx, guest, now)
}

/// Revokes a guest: the invite, the guest's keys and sessions; the guest's documents go on
/// the revocation list that Door Sync carries to offline locks.
#[utoipa::path(delete, path = "/v1/me/guests/{guest_id}", tag = "resident",
    params(("guest_id" = String, Path)), security(("person" = [])),
    responses((status = 200, body = GuestJson),
        (status = 404, description = "`not_found` (`field`: `guest_id`): not a guest the caller invited", body = ErrorBody)))]
pub async fn revoke_guest(
    State(state): State<AppState>,
    person: Person,
    Path(guest_id): Path<String>,
) -> ApiResult<Json<GuestJson>> {
    let invite = id("guest_id", &guest_id)?;
    let now = state.now();
    Ok(Json(state.db.write(|tx| {
        let guest = guest_of(tx, person.id, invite)?;
        revoke_invite(tx, invite, guest, now)?;
        guest_json(tx, &invite.0)
    })?))
}

/// Revokes a guest's access to one door of the invite (OpenDOOR `revokeGuestAccess(guest,
/// lock)`); the guest keeps the others. The guest's documents are voided by a floor, so the
/// revoked door's document is refused at its offline lock after the next Door Sync, and the
/// guest's next fetch gets fresh documents, above the floor, for the doors left. Removing the
/// last door revokes the guest, as `DELETE /v1/me/guests/{guest_id}` does.
#[utoipa::path(delete, path = "/v1/me/guests/{guest_id}/doors/{door_id}", tag = "resident",
    params(("guest_id" = String, Path), ("door_id" = String, Path)), security(("person" = [])),
    responses((status = 200, description = "The guest with the doors left (`revoked` once none is)", body = GuestJson),
        (status = 404, description = "`not_found`: not a guest the caller invited (`field`: `guest_id`), or a door not in the invite (`field`: `door_id`)", body = ErrorBody)))]
pub async fn revoke_guest_door(
    State(state): State<AppState>,
    person: Person,
    Path((guest_id, door_id)): Path<(String, String)>,
) -> ApiResult<Json<GuestJson>> {
    let invite = id("guest_id", &guest_id)?;
    let door = id("door_id", &door_id)?;
    let now = state.now();
    Ok(Json(state.db.write(|tx| {
        let guest = guest_of(tx, person.id, invite)?;
        let keys: Vec<Vec<u8>> = {
            let mut stmt = tx.prepare_cached(
                "SELECT door_id FROM invite_keys WHERE invite_id = ?1 AND removed_at IS NULL",
            )?;
            let rows = stmt.query_map([id_param(&invite)], |r| r.get(0))?;
            rows.collect::<Result<_, _>>()?
        };
        if !keys.iter().any(|d| d.as_slice() == id_param(&door)) {
            return Err(ApiError::not_found_at("door_id", "door in this invite"));
        }
        if keys.len() == 1 {
            // The last door: nothing is left to invite to, so the guest goes.
            revoke_invite(tx, invite, guest, now)?;
            return guest_json(tx, &invite.0);
        }
        tx.execute(
            "UPDATE invite_keys SET removed_at = ?1 WHERE invite_id = ?2 AND door_id = ?3 AND removed_at IS NULL",
            params![now, id_param(&invite), id_param(&door)],
        )?;
        tx.execute(
            "UPDATE assignments SET revoked_at = ?1 WHERE person_id = ?2 AND revoked_at IS NULL \
             AND key_id IN (SELECT key_id FROM invite_keys WHERE invite_id = ?3 AND door_id = ?4)",
            params![now, id_param(&guest), id_param(&invite), id_param(&door)],
        )?;
        rights_changed(tx, guest, now)?;
        guest_json(tx, &invite.0)
    })?))
}
