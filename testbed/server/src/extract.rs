//! A JSON body extractor whose failures are the API's own errors, naming the field at fault.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Largest request body accepted; the largest real one (a key with every door) is far below.
const MAX_BODY: usize = 1 << 20;

pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let is_json = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if !is_json {
            return Err(ApiError::invalid(
                "content-type",
                "must be application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::invalid("body", e.body_text()))?;
        if bytes.len() > MAX_BODY {
            return Err(ApiError::invalid("body", "is larger than 1 MiB"));
        }
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        serde_path_to_error::deserialize(&mut de)
            .map(Body)
            .map_err(|e| {
                let path = e.path().to_string();
                let field = if path == "." { "body".to_owned() } else { path };
                ApiError::invalid(field, e.inner().to_string())
            })
    }
}

pub fn id(field: &str, s: &str) -> Result<door_protocol::Id, ApiError> {
    door_protocol::Id::from_hex(s).ok_or_else(|| ApiError::invalid(field, "must be 32 hex digits"))
}

pub fn b64(field: &str, s: &str) -> Result<Vec<u8>, ApiError> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|_| ApiError::invalid(field, "must be standard base64"))
}

pub fn to_b64(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}
