//! Who is calling: the server admin (creates properties), a property's manager (DOOR OS), or a
//! person (the resident app). Bearer tokens are random; only their SHA-256 is stored.

use std::sync::LazyLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use base64::Engine;
use door_protocol::Id;
use rand::RngCore;
use rusqlite::{OptionalExtension, Transaction};
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::AppState;

pub const ACCESS_TTL: i64 = 3600;
pub const REFRESH_TTL: i64 = 30 * 86_400;

pub fn random_token() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

pub fn hash_password(password: &str) -> Result<String, ApiError> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ApiError::internal(format!("password hashing: {e}")))
}

fn password_matches(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// The hash of a password no one has, made like every stored one (same algorithm and
/// parameters, so verifying against it costs the same).
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    hash_password(&random_token()).expect("Argon2 with its default parameters hashes")
});

/// Makes the dummy hash now, so that no sign-in pays for it.
pub fn prepare_dummy_hash() {
    LazyLock::force(&DUMMY_HASH);
}

/// Whether `password` is the one `stored` was made from. Without a stored hash (no such
/// email, or a person without a password) the password is checked against the dummy hash
/// all the same: an answer as fast as a lookup would tell which emails have accounts.
pub fn sign_in_matches(password: &str, stored: Option<&str>) -> bool {
    match stored {
        Some(stored) => password_matches(password, stored),
        None => {
            password_matches(password, &DUMMY_HASH);
            false
        }
    }
}

/// Why `person`'s tokens may no longer be used, if they may not: the person is revoked, or is
/// a guest whose invite has ended or was revoked, or whose host is revoked. Checked where
/// tokens are resolved (the `Person` extractor, the refresh), so a session ends with the grant
/// it rests on, without a per-endpoint check.
pub fn session_ended(
    tx: &Transaction<'_>,
    person: Id,
    now: i64,
) -> Result<Option<&'static str>, ApiError> {
    let revoked: bool = tx.query_row(
        "SELECT revoked FROM people WHERE id = ?1",
        [person.0.as_slice()],
        |r| r.get(0),
    )?;
    if revoked {
        return Ok(Some("this person's access has been revoked"));
    }
    let invite: Option<(i64, bool, bool)> = tx
        .query_row(
            "SELECT i.ends_at, i.revoked_at IS NOT NULL, h.revoked FROM invites i \
             JOIN people h ON h.id = i.inviter_id WHERE i.guest_id = ?1",
            [person.0.as_slice()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    Ok(match invite {
        Some((_, true, _)) => Some("this guest's invite has been revoked"),
        Some((_, _, true)) => Some("the person who invited this guest no longer has access"),
        Some((ends_at, _, _)) if ends_at <= now => Some("this guest's invite has ended"),
        _ => None,
    })
}

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| ApiError::unauthorized("missing bearer token"))
}

/// The server operator: may create properties.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts)?;
        if token_hash(token) == state.admin_token_hash {
            Ok(Admin)
        } else {
            Err(ApiError::unauthorized("not the server's admin token"))
        }
    }
}

/// A property's manager: everything under /v1/properties/{id}/.
pub struct Manager {
    pub property_id: Id,
}

impl Manager {
    /// Managers see their own property only; another property is "not found" to them.
    pub fn check(&self, property_id: &str) -> Result<Id, ApiError> {
        match Id::from_hex(property_id) {
            Some(id) if id == self.property_id => Ok(id),
            _ => Err(ApiError::not_found("property")),
        }
    }
}

impl FromRequestParts<AppState> for Manager {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let hash = token_hash(bearer(parts)?);
        let found: Option<Vec<u8>> = state.db.read(|tx| {
            Ok(tx
                .query_row(
                    "SELECT id FROM properties WHERE manager_key_hash = ?1",
                    [&hash],
                    |r| r.get(0),
                )
                .optional()?)
        })?;
        let id = found
            .and_then(|b| Id::from_slice(&b))
            .ok_or_else(|| ApiError::unauthorized("not a manager key"))?;
        Ok(Manager { property_id: id })
    }
}

/// A signed-in person (resident, staff, vendor or guest).
#[derive(Debug, Clone)]
pub struct Person {
    pub id: Id,
    pub property_id: Id,
    pub role: String,
    /// The session the access token belongs to (absent for sessions from before sessions had
    /// ids).
    pub session: Option<Id>,
    /// The device this session registered, if it did.
    pub device: Option<Id>,
}

impl FromRequestParts<AppState> for Person {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let hash = token_hash(bearer(parts)?);
        let now = state.now();
        let blob = |b: Vec<u8>| Id::from_slice(&b).ok_or_else(|| ApiError::internal("bad id"));
        state.db.read(|tx| {
            let row = tx
                .query_row(
                    "SELECT p.id, p.property_id, p.role, s.session_id, s.device_id FROM sessions s \
                     JOIN people p ON p.id = s.person_id \
                     WHERE s.token_hash = ?1 AND s.kind = 'access' AND s.expires_at > ?2",
                    rusqlite::params![hash, now],
                    |r| {
                        Ok((
                            r.get::<_, Vec<u8>>(0)?,
                            r.get::<_, Vec<u8>>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, Option<Vec<u8>>>(3)?,
                            r.get::<_, Option<Vec<u8>>>(4)?,
                        ))
                    },
                )
                .optional()?;
            let (id, property, role, session, device) = row
                .ok_or_else(|| ApiError::unauthorized("the access token is unknown or expired"))?;
            let id = blob(id)?;
            if let Some(why) = session_ended(tx, id, now)? {
                return Err(ApiError::unauthorized(why));
            }
            Ok(Person {
                id,
                property_id: blob(property)?,
                role,
                session: session.map(blob).transpose()?,
                device: device.map(blob).transpose()?,
            })
        })
    }
}
