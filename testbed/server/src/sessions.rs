//! Sessions and their refresh-token families (OAuth 2.0 Security BCP, refresh token rotation).
//!
//! A session is an access and a refresh token issued together. Signing in or redeeming an
//! invite starts a family; each refresh spends its refresh token and issues the next session
//! of the same family. A spent refresh token is kept, marked, until it would have expired:
//! if it comes back, two holders are using one family (a stolen token and the real app, in
//! some order), and since the server cannot tell which is genuine the whole family ends, its
//! access tokens included, and the reuse is recorded in `refresh_reuses`.

use door_protocol::Id;
use rusqlite::{params, OptionalExtension, Transaction};

use crate::access::{blob_id, id_param, new_id};
use crate::auth::{random_token, token_hash, ACCESS_TTL, REFRESH_TTL};
use crate::error::{ApiError, ApiResult};
use crate::model::Tokens;

/// Starts a family for `person`: at sign-in and at invite redemption.
pub fn start(tx: &Transaction<'_>, person: Id, now: i64) -> ApiResult<Tokens> {
    issue(tx, person, None, new_id(), now)
}

/// Issues an access and a refresh token for `person` in `family`: one session, bound to
/// `device` once the phone has registered one (refreshing keeps the binding; removing the
/// device ends it).
fn issue(
    tx: &Transaction<'_>,
    person: Id,
    device: Option<Id>,
    family: Id,
    now: i64,
) -> ApiResult<Tokens> {
    let access = random_token();
    let refresh = random_token();
    let session = new_id();
    let device = device.map(|d| d.0.to_vec());
    for (token, kind, ttl) in [
        (&access, "access", ACCESS_TTL),
        (&refresh, "refresh", REFRESH_TTL),
    ] {
        tx.execute(
            "INSERT INTO sessions (token_hash, person_id, kind, expires_at, session_id, device_id, family_id) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                token_hash(token),
                id_param(&person),
                kind,
                now + ttl,
                id_param(&session),
                device,
                id_param(&family)
            ],
        )?;
    }
    Ok(Tokens {
        access_token: access,
        refresh_token: refresh,
        expires_at: now + ACCESS_TTL,
        person_id: person.to_string(),
    })
}

/// An unexpired refresh token, spent or not.
pub struct RefreshToken {
    hash: Vec<u8>,
    pub person: Id,
    device: Option<Id>,
    family: Id,
    spent: bool,
}

/// What presenting a refresh token came to.
pub enum Refreshed {
    /// The next session of the family; the token presented is spent.
    Rotated(Tokens),
    /// The token had been spent already: its family has ended.
    FamilyEnded,
}

/// The refresh token `token` names, or 401 when it is unknown or expired.
pub fn find_refresh(tx: &Transaction<'_>, token: &str, now: i64) -> ApiResult<RefreshToken> {
    let hash = token_hash(token);
    // person, device, family, spent
    type Row = (Vec<u8>, Option<Vec<u8>>, Vec<u8>, bool);
    let row: Option<Row> = tx
        .query_row(
            "SELECT person_id, device_id, family_id, spent_at IS NOT NULL FROM sessions \
             WHERE token_hash = ?1 AND kind = 'refresh' AND expires_at > ?2",
            params![hash, now],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    let (person, device, family, spent) =
        row.ok_or_else(|| ApiError::unauthorized("the refresh token is unknown or expired"))?;
    Ok(RefreshToken {
        hash,
        person: blob_id(person)?,
        device: device.map(blob_id).transpose()?,
        family: blob_id(family)?,
        spent,
    })
}

/// Spends `token` for the next session of its family; or, if it was spent before, ends the
/// family and records the reuse. `admit` runs only for a token not spent before: a reuse ends
/// the family whatever else would refuse the request.
pub fn refresh(
    tx: &Transaction<'_>,
    token: RefreshToken,
    now: i64,
    admit: impl FnOnce(&RefreshToken) -> ApiResult<()>,
) -> ApiResult<Refreshed> {
    if token.spent {
        end_family(tx, &token, now)?;
        return Ok(Refreshed::FamilyEnded);
    }
    admit(&token)?;
    tx.execute(
        "UPDATE sessions SET spent_at = ?1 WHERE token_hash = ?2",
        params![now, token.hash],
    )?;
    issue(tx, token.person, token.device, token.family, now).map(Refreshed::Rotated)
}

fn end_family(tx: &Transaction<'_>, token: &RefreshToken, now: i64) -> ApiResult<()> {
    tx.execute(
        "DELETE FROM sessions WHERE family_id = ?1",
        [id_param(&token.family)],
    )?;
    tx.execute(
        "INSERT INTO refresh_reuses (family_id, person_id, device_id, detected_at) \
         VALUES (?1, ?2, ?3, ?4)",
        params![
            id_param(&token.family),
            id_param(&token.person),
            token.device.as_ref().map(id_param),
            now
        ],
    )?;
    Ok(())
}
