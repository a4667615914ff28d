//! Extractors whose failures are the API's own errors (422 `invalid_input` with the JSON error
//! body, naming the field at fault) rather than axum's plain-text 400s: the JSON body, the path
//! and the query string.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use std::marker::PhantomData;

use serde::de::{self, DeserializeOwned, Deserializer};

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

/// `axum::extract::Path`, refusing with 422 (a segment that is not UTF-8 once decoded).
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(t)| Path(t))
            .map_err(|e| ApiError::invalid("path", e.body_text()))
    }
}

/// `axum::extract::Query`, refusing with 422 (a missing or malformed parameter).
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(Query)
            .map_err(|e| {
                let path = e.path().to_string();
                let field = if path == "." {
                    "query".to_owned()
                } else {
                    path
                };
                ApiError::invalid(field, e.inner().to_string())
            })
    }
}

/// Integers as JSON Schema counts them: `-84145.0` is the integer -84145 (a number "with a
/// zero fractional part"), so a field declared `"type": "integer"` accepts it. Use with
/// `#[serde(deserialize_with = "crate::extract::integer")]`; `Option` fields take
/// `integer_opt` (with `default`), query parameters (text) `query_integer_opt`.
pub fn integer<'de, D: Deserializer<'de>, T: TryFrom<i64> + TryFrom<u64>>(
    d: D,
) -> Result<T, D::Error> {
    d.deserialize_any(Integer::<T>(false, PhantomData))
}

/// `integer` for an optional field; `null` is `None`.
pub fn integer_opt<'de, D: Deserializer<'de>, T: TryFrom<i64> + TryFrom<u64>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    d.deserialize_option(Optional::<T>(false, PhantomData))
}

/// `integer_opt` for a query parameter, whose value is text ("12", "-84145.0").
pub fn query_integer_opt<'de, D: Deserializer<'de>, T: TryFrom<i64> + TryFrom<u64>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    d.deserialize_option(Optional::<T>(true, PhantomData))
}

/// The visitor behind `integer`; `.0`: the value may be text.
struct Integer<T>(bool, PhantomData<T>);

impl<T: TryFrom<i64> + TryFrom<u64>> de::Visitor<'_> for Integer<T> {
    type Value = T;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a 64-bit integer")
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        T::try_from(v).map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        T::try_from(v).map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
        // -2^63 is exact as a float; i64::MAX is not (it rounds up to 2^63, out of range).
        if v.fract() == 0.0 && v >= i64::MIN as f64 && v < i64::MAX as f64 {
            self.visit_i64(v as i64)
        } else if v.fract() == 0.0 && v >= 0.0 && v < u64::MAX as f64 {
            self.visit_u64(v as u64)
        } else {
            Err(E::invalid_value(de::Unexpected::Float(v), &self))
        }
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        if !self.0 {
            return Err(E::invalid_type(de::Unexpected::Str(v), &self));
        }
        if let Ok(i) = v.parse::<i64>() {
            self.visit_i64(i)
        } else if let Ok(u) = v.parse::<u64>() {
            self.visit_u64(u)
        } else {
            match v.parse::<f64>() {
                Ok(f) if f.is_finite() => self.visit_f64(f),
                _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
            }
        }
    }
}

struct Optional<T>(bool, PhantomData<T>);

impl<'de, T: TryFrom<i64> + TryFrom<u64>> de::Visitor<'de> for Optional<T> {
    type Value = Option<T>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a 64-bit integer or null")
    }
    fn visit_none<E: de::Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<T>, D::Error> {
        d.deserialize_any(Integer::<T>(self.0, PhantomData))
            .map(Some)
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

#[cfg(test)]
mod tests {
    use crate::model::{NewGuest, ScheduleJson};

    #[test]
    fn integer_fields_take_integral_floats_and_nothing_else() {
        let s: ScheduleJson =
            serde_json::from_str(r#"{"windows": [], "not_before": -84145.0, "not_after": null}"#)
                .unwrap();
        assert_eq!((s.not_before, s.not_after), (Some(-84145), None));
        let g: NewGuest = serde_json::from_str(
            r#"{"door_ids": [], "contact": "x", "starts_at": 1e3, "ends_at": 9007199254740992}"#,
        )
        .unwrap();
        assert_eq!((g.starts_at, g.ends_at), (1000, 9_007_199_254_740_992));
        for bad in [r#"1.5"#, r#""5""#, "1e19", "true"] {
            let json = format!(r#"{{"windows": [], "not_before": {bad}}}"#);
            assert!(
                serde_json::from_str::<ScheduleJson>(&json).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn query_integers_take_integral_floats_in_range() {
        #[derive(serde::Deserialize)]
        struct Q {
            #[serde(default, deserialize_with = "super::query_integer_opt")]
            since: Option<u64>,
        }
        let since = |q: &str| serde_urlencoded::from_str::<Q>(q).map(|q| q.since).ok();
        assert_eq!(since("since=7"), Some(Some(7)));
        assert_eq!(since("since=7.0"), Some(Some(7)));
        assert_eq!(since(""), Some(None));
        assert_eq!(since("since=-1"), None);
        assert_eq!(since("since=7.5"), None);
        assert_eq!(since("since=x"), None);
    }
}
