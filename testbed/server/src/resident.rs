//! The resident side, what door-core calls: sign in, devices, my doors with their documents.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use door_protocol::Id;
use rand::RngCore;
use rusqlite::{params, OptionalExtension, Transaction};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::access::{blob_id, documents_for, id_param, new_id, presign, Presigned};
use crate::auth::{session_ended, sign_in_matches, token_hash, Person};
use crate::db::blocking;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{b64, id, to_b64, Body, Query};
use crate::limits::ClientAddr;
use crate::manager::property_json;
use crate::model::*;
use crate::openapi::RateLimited;
use crate::policy;
use crate::sessions::{self, Refreshed};
use crate::{schedule_json, AppState};

const CHALLENGE_TTL: i64 = 300;

/// Signs a person in with their email and password, starting a refresh-token family. An
/// unknown email and a wrong password get the same answer, after the same work.
#[utoipa::path(post, path = "/v1/auth/login", tag = "resident", request_body = Login,
    responses((status = 200, body = Tokens), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 429, response = RateLimited)))]
pub async fn login(
    State(state): State<AppState>,
    client: ClientAddr,
    Body(req): Body<Login>,
) -> ApiResult<Json<Tokens>> {
    state.limiters.sign_in.address(client)?;
    state.limiters.sign_in.account(req.email.as_bytes())?;
    let now = state.now();
    let row: Option<(Vec<u8>, Option<String>, bool)> = state.db.read(|tx| {
        Ok(tx
            .query_row(
                "SELECT id, password_hash, revoked FROM people WHERE email = ?1",
                [&req.email],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?)
    })?;
    let stored = row.as_ref().and_then(|(_, hash, _)| hash.clone());
    let matches = blocking(move || Ok(sign_in_matches(&req.password, stored.as_deref()))).await?;
    let (person, _, revoked) = match row {
        Some(row) if matches => row,
        _ => return Err(ApiError::unauthorized("wrong email or password")),
    };
    if revoked {
        return Err(ApiError::revoked("this person's access has been revoked"));
    }
    let person = blob_id(person)?;
    Ok(Json(state.db.write(|tx| sessions::start(tx, person, now))?))
}

/// A new access and refresh token for the refresh token, which is spent. Presenting a spent
/// one ends its whole family: every session that descends from the same sign-in. Refused with
/// 401 once the session's grant is gone: the person revoked, or a guest whose invite ended or
/// was revoked, or whose host was revoked.
#[utoipa::path(post, path = "/v1/auth/refresh", tag = "resident", request_body = Refresh,
    responses((status = 200, body = Tokens),
        (status = 401, description = "unknown, expired or already used (which ends the token's family), or the grant has ended", body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, response = RateLimited)))]
pub async fn refresh(
    State(state): State<AppState>,
    client: ClientAddr,
    Body(req): Body<Refresh>,
) -> ApiResult<Json<Tokens>> {
    state.limiters.refresh.address(client)?;
    let now = state.now();
    let refreshed = state.db.write(|tx| {
        let token = sessions::find_refresh(tx, &req.refresh_token, now)?;
        sessions::refresh(tx, token, now, |token| {
            state.limiters.refresh.account(&token.person.0)?;
            match session_ended(tx, token.person, now)? {
                Some(why) => Err(ApiError::unauthorized(why)),
                None => Ok(()),
            }
        })
    })?;
    match refreshed {
        Refreshed::Rotated(tokens) => Ok(Json(tokens)),
        Refreshed::FamilyEnded => Err(ApiError::unauthorized(
            "this refresh token was already used: every session from the same sign-in has ended",
        )),
    }
}

struct Invite {
    id: Vec<u8>,
    guest: Vec<u8>,
    ends_at: i64,
    redeemed: bool,
    revoked: bool,
    host_revoked: bool,
}

/// Signs a guest in with their invite, once. Refused when the invite has ended or was revoked,
/// or its host has been revoked.
#[utoipa::path(post, path = "/v1/auth/invite", tag = "resident", request_body = RedeemInvite,
    responses((status = 200, body = Tokens), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, response = RateLimited)))]
pub async fn redeem_invite(
    State(state): State<AppState>,
    client: ClientAddr,
    Body(req): Body<RedeemInvite>,
) -> ApiResult<Json<Tokens>> {
    state.limiters.invite.address(client)?;
    state.limiters.invite.account(req.invite_token.as_bytes())?;
    let now = state.now();
    Ok(Json(state.db.write(|tx| {
        let invite = tx
            .query_row(
                "SELECT i.id, i.guest_id, i.ends_at, i.redeemed_at, i.revoked_at, h.revoked FROM invites i \
                 JOIN people h ON h.id = i.inviter_id WHERE i.token_hash = ?1",
                [token_hash(&req.invite_token)],
                |r| {
                    Ok(Invite {
                        id: r.get(0)?,
                        guest: r.get(1)?,
                        ends_at: r.get(2)?,
                        redeemed: r.get::<_, Option<i64>>(3)?.is_some(),
                        revoked: r.get::<_, Option<i64>>(4)?.is_some(),
                        host_revoked: r.get(5)?,
                    })
                },
            )
            .optional()?
            .ok_or_else(|| ApiError::unauthorized("unknown invite token"))?;
        let Invite { id: invite, guest, ends_at, redeemed, revoked, host_revoked } = invite;
        if revoked {
            return Err(ApiError::revoked("this invite has been revoked"));
        }
        if host_revoked {
            return Err(ApiError::revoked("the person who sent this invite no longer has access"));
        }
        if redeemed {
            return Err(ApiError::unauthorized("this invite has already been used"));
        }
        if ends_at <= now {
            return Err(ApiError::unauthorized("this invite has expired"));
        }
        tx.execute("UPDATE invites SET redeemed_at = ?1 WHERE id = ?2", params![now, invite])?;
        sessions::start(tx, blob_id(guest)?, now)
    })?))
}

#[utoipa::path(post, path = "/v1/auth/logout", tag = "resident", security(("person" = [])),
    responses((status = 204)))]
pub async fn logout(State(state): State<AppState>, person: Person) -> ApiResult<StatusCode> {
    state.db.write(|tx| {
        Ok(tx.execute(
            "DELETE FROM sessions WHERE person_id = ?1",
            [id_param(&person.id)],
        )?)
    })?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1/me", tag = "resident", security(("person" = [])),
    responses((status = 200, body = MeJson), (status = 401, body = ErrorBody)))]
pub async fn me(State(state): State<AppState>, person: Person) -> ApiResult<Json<MeJson>> {
    Ok(Json(state.db.read(|tx| {
        let name: String = tx.query_row(
            "SELECT name FROM people WHERE id = ?1",
            [id_param(&person.id)],
            |r| r.get(0),
        )?;
        Ok(MeJson {
            person_id: person.id.to_string(),
            name,
            role: person.role.clone(),
            property: property_json(tx, person.property_id)?,
        })
    })?))
}

#[utoipa::path(post, path = "/v1/me/devices/challenge", tag = "resident", security(("person" = [])),
    responses((status = 200, body = Challenge), (status = 429, response = RateLimited)))]
pub async fn device_challenge(
    State(state): State<AppState>,
    client: ClientAddr,
    person: Person,
) -> ApiResult<Json<Challenge>> {
    state.limiters.challenge.address(client)?;
    state.limiters.challenge.account(&person.id.0)?;
    let now = state.now();
    let mut challenge = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut challenge);
    state.db.write(|tx| {
        tx.execute("DELETE FROM challenges WHERE expires_at <= ?1", [now])?;
        Ok(tx.execute(
            "INSERT INTO challenges (challenge, person_id, expires_at) VALUES (?1, ?2, ?3)",
            params![
                challenge.as_slice(),
                id_param(&person.id),
                now + CHALLENGE_TTL
            ],
        )?)
    })?;
    Ok(Json(Challenge {
        challenge: to_b64(&challenge),
        expires_at: now + CHALLENGE_TTL,
    }))
}

/// Registers the device's P-256 key; the device proves it holds the key by signing the
/// challenge. Registering the same key again returns the same device (a removed one comes
/// back, within the limit). The calling session is bound to the device: removing the device
/// ends it. A person may have a limited number of devices (5 unless the server is configured
/// otherwise): one more is refused with 409 `device_limit`, naming the limit.
#[utoipa::path(post, path = "/v1/me/devices", tag = "resident", request_body = NewDevice, security(("person" = [])),
    responses((status = 201, body = DeviceJson), (status = 401, body = ErrorBody),
        (status = 409, description = "`device_limit`: the person has as many devices as allowed (`limit`); `conflict`: the key is another person's", body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, response = RateLimited)))]
pub async fn register_device(
    State(state): State<AppState>,
    client: ClientAddr,
    person: Person,
    Body(req): Body<NewDevice>,
) -> ApiResult<(StatusCode, Json<DeviceJson>)> {
    use p256::ecdsa::signature::Verifier;
    state.limiters.device.address(client)?;
    state.limiters.device.account(&person.id.0)?;
    let now = state.now();
    let key_bytes = b64("public_key", &req.public_key)?;
    let challenge = b64("challenge", &req.challenge)?;
    let signature = b64("signature", &req.signature)?;
    let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&key_bytes)
        .map_err(|_| ApiError::invalid("public_key", "is not a P-256 SEC1 point"))?;
    let sig = if signature.len() == 64 {
        p256::ecdsa::Signature::from_slice(&signature)
    } else {
        p256::ecdsa::Signature::from_der(&signature)
    }
    .map_err(|_| ApiError::invalid("signature", "is neither raw r||s nor DER"))?;
    key.verify(&door_protocol::device::possession_message(&challenge), &sig)
        .map_err(|_| ApiError::invalid("signature", "does not verify under public_key"))?;
    let compressed = key.to_encoded_point(true).as_bytes().to_vec();
    let device = state.db.write(|tx| {
        let spent = tx.execute(
            "DELETE FROM challenges WHERE challenge = ?1 AND person_id = ?2 AND expires_at > ?3",
            params![challenge, id_param(&person.id), now],
        )?;
        if spent == 0 {
            return Err(ApiError::invalid("challenge", "is unknown, expired or already used"));
        }
        let existing: Option<(Vec<u8>, Vec<u8>, bool)> = tx
            .query_row(
                "SELECT id, person_id, removed_at IS NOT NULL FROM devices WHERE public_key = ?1",
                [&compressed],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let device = match existing {
            Some((_, owner, _)) if owner != person.id.0 => {
                return Err(ApiError::conflict("public_key", "this key belongs to another person"))
            }
            Some((device, _, false)) => blob_id(device)?,
            Some((device, _, true)) => {
                crate::devices::check_limit(tx, person.id, state.options.device_limit)?;
                tx.execute("UPDATE devices SET removed_at = NULL WHERE id = ?1", [&device])?;
                blob_id(device)?
            }
            None => {
                crate::devices::check_limit(tx, person.id, state.options.device_limit)?;
                let device = new_id();
                tx.execute(
                    "INSERT INTO devices (id, person_id, public_key, created_at) VALUES (?1, ?2, ?3, ?4)",
                    params![id_param(&device), id_param(&person.id), compressed, now],
                )?;
                device
            }
        };
        if let Some(session) = person.session {
            tx.execute(
                "UPDATE sessions SET device_id = ?1 WHERE session_id = ?2",
                params![id_param(&device), id_param(&session)],
            )?;
        }
        Ok(device)
    })?;
    Ok((
        StatusCode::CREATED,
        Json(DeviceJson {
            device_id: device.to_string(),
        }),
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DoorsQuery {
    /// The registered device the access documents are for.
    pub device_id: String,
}

/// The doors this person may open, each with its access document for the device.
#[utoipa::path(get, path = "/v1/me/doors", tag = "resident", params(DoorsQuery), security(("person" = [])),
    responses((status = 200, body = MyDoors), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn my_doors(
    State(state): State<AppState>,
    person: Person,
    Query(q): Query<DoorsQuery>,
) -> ApiResult<Json<MyDoors>> {
    let device = id("device_id", &q.device_id)?;
    let now = state.now();
    let db = state.db.clone();
    Ok(Json(
        blocking(move || {
            // Signing ahead is only a saving: when it cannot (a device that is not this
            // person's, or none at all), the transaction's own checks answer.
            let presigned = presign(&db, person.id, person.property_id, device, now)
                .ok()
                .flatten();
            db.write(|tx| my_doors_in(tx, &person, device, now, presigned))
        })
        .await?,
    ))
}

/// `my_doors`' transaction: the device's checks, the credential (issued with `presigned` when
/// still right) and the doors it opens, in one snapshot.
fn my_doors_in(
    tx: &Transaction<'_>,
    person: &Person,
    device: Id,
    now: i64,
    presigned: Option<Presigned>,
) -> ApiResult<MyDoors> {
    {
        let owner: Option<(Vec<u8>, bool)> = tx
            .query_row(
                "SELECT person_id, removed_at IS NOT NULL FROM devices WHERE id = ?1",
                [id_param(&device)],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        match owner {
            Some((owner, _)) if owner != person.id.0 => {
                return Err(ApiError::invalid(
                    "device_id",
                    "is not a device registered to this person",
                ))
            }
            None => {
                return Err(ApiError::invalid(
                    "device_id",
                    "is not a device registered to this person",
                ))
            }
            // A removed device gets no documents; its credentials are revoked.
            Some((_, true)) => return Err(ApiError::invalid("device_id", "has been removed")),
            Some((_, false)) => {}
        }
        tx.execute(
            "UPDATE devices SET last_seen_at = ?1 WHERE id = ?2",
            params![now, id_param(&device)],
        )?;
        let property = property_json(tx, person.property_id)?;
        let credential = documents_for(tx, person.id, person.property_id, device, now, presigned)?;
        let mut doors = Vec::new();
        // The doors opened with the app; a guest's doorcode-only door has no document.
        let in_app = policy::grants(tx, person.id, now)?
            .into_iter()
            .filter(|g| g.app);
        for (door_id, grants) in policy::by_door(in_app.collect()) {
            let (name, online, keypad, lock_id, lock_key): (String, bool, bool, Vec<u8>, Vec<u8>) = tx.query_row(
                "SELECT name, online, keypad, lock_id, lock_public_key FROM doors WHERE id = ?1",
                [id_param(&door_id)],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )?;
            let doorcode: Option<String> = tx
                .query_row(
                    "SELECT code FROM doorcodes WHERE person_id = ?1 AND door_id = ?2",
                    params![id_param(&person.id), id_param(&door_id)],
                    |r| r.get(0),
                )
                .optional()?;
            let document = credential
                .as_ref()
                .and_then(|(_, docs)| docs.iter().find(|doc| doc.door_id == door_id))
                .ok_or_else(|| ApiError::internal("no document for a door the person has"))?;
            doors.push(MyDoor {
                id: door_id.to_string(),
                name,
                online,
                keypad,
                lock_id: hex::encode(lock_id),
                lock_public_key: to_b64(&lock_key),
                schedules: grants
                    .iter()
                    .map(|g| schedule_json::to_json(&g.schedule))
                    .collect(),
                doorcode,
                may_share: grants.iter().any(|g| g.may_share),
                access_document: to_b64(&document.document),
            });
        }
        doors.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        Ok(MyDoors {
            person_id: person.id.to_string(),
            time_zone: property.time_zone,
            issuer_kid: property.issuer_kid,
            issuer_public_key: property.issuer_public_key,
            credential_id: credential.map(|(c, _)| c.to_string()),
            doors,
            issued_at: now,
        })
    }
}
