//! Token sign-in: a partner app's residents sign in with the ID token of the app's own
//! OpenID Connect provider instead of a second password. A property's manager names the
//! issuer (its URL, the audience its tokens are for, where it publishes its keys); the app
//! hands this server an ID token; the server checks it (verify.rs) under the issuer's keys
//! (keys.rs) and finds the person it names (link.rs).
//!
//! Every refused token gets one answer, 401 "the identity token was not accepted", whichever
//! check failed; the server's log says which. A valid token naming nobody of the property is
//! 403 `forbidden`; a revoked person is 403 `revoked`, as at password sign-in.

pub mod keys;
pub mod link;
pub mod verify;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use door_protocol::Id;
use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use self::verify::{IssuerConfig, Refusal, Unverified};
use crate::access::{blob_id, id_param};
use crate::auth::{session_ended, Manager};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::Body;
use crate::limits::ClientAddr;
use crate::model::Tokens;
use crate::openapi::RateLimited;
use crate::{sessions, AppState};

/// A property's OpenID Connect issuer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct OidcIssuerJson {
    /// The issuer identifier, exactly as in its tokens' `iss` (https; http only on loopback).
    pub issuer: String,
    /// The client id the partner app has at the issuer: tokens must name it in `aud`.
    pub audience: String,
    /// Where the issuer publishes its signing keys (its discovery document's `jwks_uri`).
    pub jwks_url: String,
}

/// An ID token from the property's issuer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenSignIn {
    /// The ID token (a signed JWT, RS256 or ES256).
    pub id_token: String,
    /// The nonce the app sent in its authentication request: when given, the token must
    /// carry exactly this one.
    #[serde(default)]
    pub nonce: Option<String>,
}

/// Longest ID token accepted: real ones are one or two kilobytes.
const MAX_TOKEN_BYTES: usize = 16 * 1024;
const MAX_URL_BYTES: usize = 2048;

fn url_field(field: &str, value: &str) -> ApiResult<()> {
    if value.len() > MAX_URL_BYTES {
        return Err(ApiError::invalid(field, "is longer than 2048 bytes"));
    }
    let url = reqwest::Url::parse(value)
        .map_err(|e| ApiError::invalid(field, format!("is not a URL: {e}")))?;
    let host = url.host_str().unwrap_or_default();
    let loopback = host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match url.scheme() {
        "https" if url.host().is_some() => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(ApiError::invalid(
            field,
            "must be an https URL (http only on loopback, for tests)",
        )),
    }
}

impl OidcIssuerJson {
    fn validate(&self) -> ApiResult<()> {
        url_field("issuer", &self.issuer)?;
        url_field("jwks_url", &self.jwks_url)?;
        if self.audience.trim().is_empty() {
            return Err(ApiError::invalid("audience", "must not be empty"));
        }
        if self.audience.len() > 200 {
            return Err(ApiError::invalid("audience", "is longer than 200 bytes"));
        }
        Ok(())
    }
}

/// Sets the issuer whose ID tokens sign this property's people in (`POST /v1/auth/token`).
/// Changing the issuer forgets the identities linked under the previous one: people link
/// again, by verified email, at their next token sign-in.
#[utoipa::path(put, path = "/v1/properties/{property_id}/oidc", tag = "manager",
    params(("property_id" = String, Path)), request_body = OidcIssuerJson, security(("manager" = [])),
    responses((status = 200, body = OidcIssuerJson), (status = 422, body = ErrorBody)))]
pub async fn set_issuer(
    State(state): State<AppState>,
    manager: Manager,
    Path(pid): Path<String>,
    Body(req): Body<OidcIssuerJson>,
) -> ApiResult<Json<OidcIssuerJson>> {
    let property = manager.check(&pid)?;
    req.validate()?;
    let now = state.now();
    state.db.write(|tx| {
        tx.execute(
            "DELETE FROM person_identities WHERE property_id = ?1 AND issuer != ?2",
            params![id_param(&property), req.issuer],
        )?;
        tx.execute(
            "INSERT INTO property_oidc (property_id, issuer, audience, jwks_url, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (property_id) DO UPDATE SET \
             issuer = excluded.issuer, audience = excluded.audience, \
             jwks_url = excluded.jwks_url, updated_at = excluded.updated_at",
            params![
                id_param(&property),
                req.issuer,
                req.audience,
                req.jwks_url,
                now
            ],
        )?;
        Ok(())
    })?;
    Ok(Json(req))
}

#[utoipa::path(get, path = "/v1/properties/{property_id}/oidc", tag = "manager",
    params(("property_id" = String, Path)), security(("manager" = [])),
    responses((status = 200, body = OidcIssuerJson),
        (status = 404, description = "no issuer is set: token sign-in is off", body = ErrorBody)))]
pub async fn get_issuer(
    State(state): State<AppState>,
    manager: Manager,
    Path(pid): Path<String>,
) -> ApiResult<Json<OidcIssuerJson>> {
    let property = manager.check(&pid)?;
    let found = state.db.read(|tx| {
        Ok(tx
            .query_row(
                "SELECT issuer, audience, jwks_url FROM property_oidc WHERE property_id = ?1",
                [id_param(&property)],
                |r| {
                    Ok(OidcIssuerJson {
                        issuer: r.get(0)?,
                        audience: r.get(1)?,
                        jwks_url: r.get(2)?,
                    })
                },
            )
            .optional()?)
    })?;
    found
        .map(Json)
        .ok_or_else(|| ApiError::not_found("OpenID Connect issuer"))
}

/// Turns token sign-in off for this property; sessions already started go on.
#[utoipa::path(delete, path = "/v1/properties/{property_id}/oidc", tag = "manager",
    params(("property_id" = String, Path)), security(("manager" = [])),
    responses((status = 204)))]
pub async fn delete_issuer(
    State(state): State<AppState>,
    manager: Manager,
    Path(pid): Path<String>,
) -> ApiResult<StatusCode> {
    let property = manager.check(&pid)?;
    state.db.write(|tx| {
        tx.execute(
            "DELETE FROM property_oidc WHERE property_id = ?1",
            [id_param(&property)],
        )?;
        Ok(())
    })?;
    Ok(StatusCode::NO_CONTENT)
}

fn refused(why: Refusal) -> ApiError {
    eprintln!("door-server: token sign-in refused: {why}");
    ApiError::unauthorized("the identity token was not accepted")
}

/// Signs a person in with an ID token of their property's OpenID Connect issuer, starting a
/// refresh-token family as `/v1/auth/login` does. Rate limited with password sign-in's
/// budgets (per client address, and per issuer and subject).
#[utoipa::path(post, path = "/v1/auth/token", tag = "resident", request_body = TokenSignIn,
    responses((status = 200, body = Tokens),
        (status = 401, description = "the token was not accepted (whatever check failed)", body = ErrorBody),
        (status = 403, description = "`forbidden`: no person of the property is known by this identity; `revoked`: the person's access was revoked", body = ErrorBody),
        (status = 409, description = "the identity is linked to people of several properties sharing the issuer", body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, response = RateLimited)))]
pub async fn sign_in(
    State(state): State<AppState>,
    client: ClientAddr,
    Body(req): Body<TokenSignIn>,
) -> ApiResult<Json<Tokens>> {
    state.limiters.sign_in.address(client)?;
    if req.id_token.len() > MAX_TOKEN_BYTES {
        return Err(ApiError::invalid("id_token", "is longer than 16 KiB"));
    }
    let unverified = Unverified::read(&req.id_token).map_err(refused)?;
    let account = format!("oidc\0{}\0{}", unverified.issuer, unverified.subject);
    state.limiters.sign_in.account(account.as_bytes())?;
    let now = state.now();
    let configs: Vec<(Id, IssuerConfig)> = state.db.read(|tx| {
        let mut stmt = tx.prepare(
            "SELECT property_id, audience, jwks_url FROM property_oidc WHERE issuer = ?1",
        )?;
        let rows = stmt.query_map([&unverified.issuer], |r| {
            Ok((r.get::<_, Vec<u8>>(0)?, r.get(1)?, r.get(2)?))
        })?;
        let mut configs = Vec::new();
        for row in rows {
            let (property, audience, jwks_url) = row?;
            let config = IssuerConfig {
                issuer: unverified.issuer.clone(),
                audience,
                jwks_url,
            };
            configs.push((blob_id(property)?, config));
        }
        Ok(configs)
    })?;
    if configs.is_empty() {
        return Err(refused(Refusal::UnknownIssuer(unverified.issuer)));
    }
    let mut identity = None;
    let mut properties = Vec::new();
    let mut last_refusal = None;
    for (property, config) in &configs {
        let checked = match state
            .oidc_keys
            .key(&config.jwks_url, &unverified.key_id, now)
            .await
        {
            Ok(key) => verify::check(
                &req.id_token,
                &unverified,
                config,
                &key,
                now,
                req.nonce.as_deref(),
            ),
            Err(why) => Err(why),
        };
        match checked {
            Ok(id) => {
                identity = Some(id);
                properties.push(*property);
            }
            Err(why) => last_refusal = Some(why),
        }
    }
    let Some(identity) = identity else {
        return Err(refused(
            last_refusal.unwrap_or(Refusal::UnknownIssuer(unverified.issuer)),
        ));
    };
    Ok(Json(state.db.write(|tx| {
        let person = link::person_for(tx, &identity, &properties, now)?
            .ok_or_else(|| link::unknown(&identity))?;
        if let Some(why) = session_ended(tx, person, now)? {
            return Err(ApiError::revoked(why));
        }
        sessions::start(tx, person, now)
    })?))
}
