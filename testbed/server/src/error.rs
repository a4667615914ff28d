//! Every failure answers with an HTTP status and a JSON body `{code, message, field?}`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The body of every error response.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct ErrorBody {
    /// Stable, machine-readable: `invalid_input`, `unauthorized`, `forbidden`, `not_found`,
    /// `not_shareable`, `conflict`, `device_limit`, `revoked`, `rate_limited`, `internal`.
    pub code: String,
    /// For people.
    pub message: String,
    /// The request field at fault, as a path (`doors[2].schedule.windows[0].start`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Door ids a guest invite may not include (`not_shareable` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub door_ids: Option<Vec<String>>,
    /// How many devices a person may have (`device_limit` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// Seconds to wait before trying again, as in the `Retry-After` header (`rate_limited`
    /// only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u32>,
}

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
}

impl ApiError {
    fn new(status: StatusCode, code: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            body: ErrorBody {
                code: code.into(),
                message: message.into(),
                field: None,
                door_ids: None,
                limit: None,
                retry_after: None,
            },
        }
    }

    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        let mut e = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_input", message);
        e.body.field = Some(field.into());
        e
    }

    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn revoked(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "revoked", message)
    }

    pub fn not_found(what: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no such {what}"),
        )
    }

    /// Not found, naming the path parameter at fault (`guest_id`, `door_id`).
    pub fn not_found_at(field: &str, what: &str) -> ApiError {
        let mut e = ApiError::not_found(what);
        e.body.field = Some(field.into());
        e
    }

    pub fn conflict(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        let mut e = ApiError::new(StatusCode::CONFLICT, "conflict", message);
        e.body.field = Some(field.into());
        e
    }

    /// A guest doorcode asked for at doors where no key the host shares enables doorcodes.
    pub fn doorcodes_disabled(door_ids: Vec<String>) -> ApiError {
        let mut e = ApiError::new(
            StatusCode::FORBIDDEN,
            "doorcodes_disabled",
            format!(
                "{} of these doors give you no doorcode to share with a guest",
                door_ids.len()
            ),
        );
        e.body.field = Some("doorcode_door_ids".into());
        e.body.door_ids = Some(door_ids);
        e
    }

    pub fn not_shareable(door_ids: Vec<String>) -> ApiError {
        let mut e = ApiError::new(
            StatusCode::FORBIDDEN,
            "not_shareable",
            format!(
                "{} of these doors may not be shared with guests",
                door_ids.len()
            ),
        );
        e.body.field = Some("door_ids".into());
        e.body.door_ids = Some(door_ids);
        e
    }

    /// Registering one more device would pass the person's limit.
    pub fn device_limit(limit: u32) -> ApiError {
        let mut e = ApiError::new(
            StatusCode::CONFLICT,
            "device_limit",
            format!("this person already has {limit} devices, the most allowed: remove one first"),
        );
        e.body.field = Some("public_key".into());
        e.body.limit = Some(limit);
        e
    }

    /// Too many requests of one kind from one client or for one account; `wait` until the
    /// next is allowed.
    pub fn rate_limited(wait: std::time::Duration) -> ApiError {
        // Whole seconds, rounded up: a client that waits exactly this long is let in.
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        let seconds = u32::try_from(seconds).unwrap_or(u32::MAX).max(1);
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("too many requests: try again in {seconds} s"),
        );
        e.body.retry_after = Some(seconds);
        e
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl From<rusqlite::Error> for ApiError {
    fn from(e: rusqlite::Error) -> ApiError {
        ApiError::internal(format!("storage: {e}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry_after = self.body.retry_after;
        let mut response = (self.status, Json(self.body)).into_response();
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
