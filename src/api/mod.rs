//! A typed client for the DOOR OS resident API: timeouts, retries with backoff on network
//! errors and 5xx, and 401 -> token refresh -> one retry -> `SessionExpired`.

pub mod wire;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;

use wire::{ErrorBody, Tokens};

use crate::diagnostics::redact_path;

/// Attempts for a request that failed on the network or with a 5xx, first try included.
const ATTEMPTS: u32 = 3;
const BACKOFF_START: Duration = Duration::from_millis(150);

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ApiError {
    #[error("the server cannot be reached: {0}")]
    Offline(String),
    #[error("the server did not answer in time")]
    Timeout,
    #[error("the session has expired; sign in again")]
    SessionExpired,
    #[error("the server answered {status}: {}", body.message)]
    Status { status: u16, body: ErrorBody },
    #[error("the server's answer is not what the API promises: {0}")]
    Malformed(String),
}

/// Tells the owner when tokens change, so they survive a restart.
pub trait TokenSink: Send + Sync {
    fn tokens_changed(&self, tokens: Option<&Tokens>);
}

pub struct ApiClient {
    http: reqwest::Client,
    base: String,
    tokens: Mutex<Option<Tokens>>,
    sink: Box<dyn TokenSink>,
}

impl ApiClient {
    pub fn new(
        base: &str,
        timeout: Duration,
        tokens: Option<Tokens>,
        sink: Box<dyn TokenSink>,
    ) -> Result<ApiClient, ApiError> {
        // One process-wide provider; a second install by another client is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .timeout(timeout)
            .user_agent(concat!("door-core/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ApiError::Offline(format!("HTTP client: {e}")))?;
        Ok(ApiClient {
            http,
            base: base.trim_end_matches('/').to_owned(),
            tokens: Mutex::new(tokens),
            sink,
        })
    }

    pub fn tokens(&self) -> Option<Tokens> {
        self.tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn set_tokens(&self, tokens: Option<Tokens>) {
        self.sink.tokens_changed(tokens.as_ref());
        *self.tokens.lock().unwrap_or_else(|p| p.into_inner()) = tokens;
    }

    /// A request without a session (sign-in).
    pub async fn anonymous<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ApiError> {
        let resp = self.send(method, path, body, None).await?;
        read(resp).await
    }

    /// A request with the session's access token; refreshes once on 401.
    pub async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ApiError> {
        let token = self
            .tokens()
            .map(|t| t.access_token)
            .ok_or(ApiError::SessionExpired)?;
        let resp = self.send(method.clone(), path, body, Some(&token)).await?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return read(resp).await;
        }
        tracing::debug!("the access token was refused; refreshing the session");
        self.refresh().await?;
        let token = self
            .tokens()
            .map(|t| t.access_token)
            .ok_or(ApiError::SessionExpired)?;
        let resp = self.send(method, path, body, Some(&token)).await?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            tracing::warn!("the refreshed session was refused too: signed out");
            self.set_tokens(None);
            return Err(ApiError::SessionExpired);
        }
        read(resp).await
    }

    async fn refresh(&self) -> Result<(), ApiError> {
        let refresh_token = self
            .tokens()
            .map(|t| t.refresh_token)
            .ok_or(ApiError::SessionExpired)?;
        let body = wire::Refresh {
            refresh_token: &refresh_token,
        };
        match self
            .anonymous::<_, Tokens>(Method::POST, "/v1/auth/refresh", Some(&body))
            .await
        {
            Ok(tokens) => {
                tracing::debug!("session refreshed");
                self.set_tokens(Some(tokens));
                Ok(())
            }
            Err(ApiError::Status {
                status: 401 | 403, ..
            }) => {
                tracing::warn!("the session could not be refreshed: signed out");
                self.set_tokens(None);
                Err(ApiError::SessionExpired)
            }
            Err(e) => Err(e),
        }
    }

    /// Sends with retries: a failed connection always (the request never left), timeouts,
    /// other network failures and 5xx only for idempotent methods (a POST whose answer was
    /// lost may have done its work, and repeating it could do the work twice).
    async fn send<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        token: Option<&str>,
    ) -> Result<reqwest::Response, ApiError> {
        let idempotent = matches!(method, Method::GET | Method::DELETE | Method::PUT);
        let mut delay = BACKOFF_START;
        let mut attempt = 1;
        loop {
            let mut req = self
                .http
                .request(method.clone(), format!("{}{path}", self.base));
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            if let Some(b) = body {
                req = req.json(b);
            }
            let started = Instant::now();
            let outcome = req.send().await;
            let retry = match &outcome {
                Err(e) => e.is_connect() || (idempotent && (e.is_timeout() || e.is_request())),
                Ok(resp) => idempotent && resp.status().is_server_error(),
            };
            log_attempt(&method, path, attempt, started, &outcome);
            if !retry || attempt == ATTEMPTS {
                return outcome.map_err(network_error);
            }
            tokio::time::sleep(delay).await;
            delay *= 2;
            attempt += 1;
        }
    }
}

/// One line per attempt: method, path (redacted), status or failure, duration. Never headers
/// or bodies: they carry the tokens, passwords and documents.
fn log_attempt(
    method: &Method,
    path: &str,
    attempt: u32,
    started: Instant,
    outcome: &Result<reqwest::Response, reqwest::Error>,
) {
    let path = redact_path(path);
    let ms = started.elapsed().as_millis() as u64;
    match outcome {
        Ok(resp) if resp.status().is_server_error() => {
            tracing::warn!(%method, path, status = resp.status().as_u16(), ms, attempt, "HTTP")
        }
        Ok(resp) => {
            tracing::debug!(%method, path, status = resp.status().as_u16(), ms, attempt, "HTTP")
        }
        Err(e) => {
            let failure = match (e.is_timeout(), e.is_connect()) {
                (true, _) => "timeout",
                (_, true) => "no connection",
                _ => "network",
            };
            tracing::warn!(%method, path, failure, ms, attempt, "HTTP")
        }
    }
}

fn network_error(e: reqwest::Error) -> ApiError {
    if e.is_timeout() {
        ApiError::Timeout
    } else {
        // Without the URL: its query carries ids, and apps show or log this message.
        ApiError::Offline(e.without_url().to_string())
    }
}

async fn read<T: DeserializeOwned>(resp: reqwest::Response) -> Result<T, ApiError> {
    let status = resp.status();
    let bytes = resp.bytes().await.map_err(|e| match e.is_timeout() {
        true => ApiError::Timeout,
        false => ApiError::Malformed(format!("the body was cut short: {e}")),
    })?;
    if status.is_success() {
        let bytes = if bytes.is_empty() {
            &b"null"[..]
        } else {
            &bytes[..]
        };
        // Where and what kind, not serde's message: it may quote a value of the answer (a
        // token, a document), and this error is logged.
        return serde_json::from_slice(bytes).map_err(|e| {
            ApiError::Malformed(format!(
                "{:?} error at line {} column {}",
                e.classify(),
                e.line(),
                e.column()
            ))
        });
    }
    let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| ErrorBody {
        code: "http".into(),
        message: String::from_utf8_lossy(&bytes).chars().take(200).collect(),
        field: None,
        door_ids: None,
        limit: None,
    });
    Err(ApiError::Status {
        status: status.as_u16(),
        body,
    })
}
