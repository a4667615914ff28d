//! A small OpenID Connect issuer on loopback, for tests and `door testbed`: it publishes its
//! discovery document and its JWK set over HTTP and signs ID tokens (ES256) with keys the test
//! controls: rotating them, or signing with keys it does not publish. Real HTTP and real
//! signatures, so door-server checks its tokens exactly as it would a provider's.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::pkcs8::EncodePrivateKey;
use rand::RngCore;
use serde::Serialize;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// The claims of an ID token this issuer signs; a test changes any of them to make a bad one.
#[derive(Debug, Clone, Serialize)]
pub struct IdTokenClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
}

/// How long the tokens of `IdTokenClaims::new` last.
pub const TOKEN_LIFETIME: i64 = 600;

struct SigningKey {
    kid: String,
    der: Vec<u8>,
    jwk: Jwk,
}

impl SigningKey {
    fn new() -> SigningKey {
        let mut id = [0u8; 8];
        rand::rngs::OsRng.fill_bytes(&mut id);
        let kid = hex::encode(id);
        let secret = p256::SecretKey::random(&mut rand::rngs::OsRng);
        let der = secret
            .to_pkcs8_der()
            .expect("a P-256 key encodes as PKCS#8")
            .as_bytes()
            .to_vec();
        let mut jwk = Jwk::from_encoding_key(&EncodingKey::from_ec_der(&der), Algorithm::ES256)
            .expect("a P-256 key has a JWK");
        jwk.common.key_id = Some(kid.clone());
        SigningKey { kid, der, jwk }
    }

    fn sign(&self, kid: &str, claims: &IdTokenClaims) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_ec_der(&self.der))
            .expect("ES256 signing with a valid key")
    }
}

struct Shared {
    issuer: String,
    current: Mutex<SigningKey>,
    jwks_fetches: AtomicUsize,
}

pub struct TestIssuer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
}

impl TestIssuer {
    /// An issuer on 127.0.0.1 at a free port, with one signing key.
    pub async fn start() -> std::io::Result<TestIssuer> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            issuer: format!("http://{addr}"),
            current: Mutex::new(SigningKey::new()),
            jwks_fetches: AtomicUsize::new(0),
        });
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .with_state(shared.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(TestIssuer {
            shared,
            addr,
            stop: Some(stop),
        })
    }

    /// The issuer identifier (`iss`), its base URL.
    pub fn issuer(&self) -> String {
        self.shared.issuer.clone()
    }

    pub fn jwks_url(&self) -> String {
        format!("http://{}/jwks", self.addr)
    }

    /// The key id tokens are signed under now.
    pub fn kid(&self) -> String {
        self.shared.current.lock().unwrap().kid.clone()
    }

    /// How many times the JWK set was fetched.
    pub fn jwks_fetches(&self) -> usize {
        self.shared.jwks_fetches.load(Ordering::SeqCst)
    }

    /// Claims for `subject`, for `audience`, issued at `now`, lasting `TOKEN_LIFETIME`.
    pub fn claims(&self, subject: &str, audience: &str, now: i64) -> IdTokenClaims {
        IdTokenClaims {
            iss: self.issuer(),
            sub: subject.into(),
            aud: audience.into(),
            exp: now + TOKEN_LIFETIME,
            iat: now,
            nonce: None,
            email: None,
            email_verified: None,
        }
    }

    /// A ready ID token for `subject` whose `email` the issuer verified: what a person's
    /// first token sign-in links by.
    pub fn id_token(&self, subject: &str, email: &str, audience: &str, now: i64) -> String {
        let mut claims = self.claims(subject, audience, now);
        claims.email = Some(email.into());
        claims.email_verified = Some(true);
        self.sign(&claims)
    }

    /// Makes this the OpenID Connect issuer of `property_id` on the door-server at
    /// `server_url`, for tokens for `audience`, with the property's manager key.
    pub async fn configure(
        &self,
        server_url: &str,
        manager_key: &str,
        property_id: &str,
        audience: &str,
    ) -> Result<(), String> {
        // reqwest's TLS needs a process-wide crypto provider; a second install is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let response = reqwest::Client::new()
            .put(format!("{server_url}/v1/properties/{property_id}/oidc"))
            .bearer_auth(manager_key)
            .json(&json!({
                "issuer": self.issuer(),
                "audience": audience,
                "jwks_url": self.jwks_url(),
            }))
            .send()
            .await
            .map_err(|e| format!("PUT oidc: {e}"))?;
        match response.status().is_success() {
            true => Ok(()),
            false => Err(format!(
                "PUT oidc: {}: {}",
                response.status(),
                response.text().await.unwrap_or_default()
            )),
        }
    }

    /// An ID token with `claims`, signed with the published key.
    pub fn sign(&self, claims: &IdTokenClaims) -> String {
        let key = self.shared.current.lock().unwrap();
        key.sign(&key.kid, claims)
    }

    /// Replaces the signing key with a new one: the JWK set publishes only the new key from
    /// now on. The new key id.
    pub fn rotate(&self) -> String {
        let mut key = self.shared.current.lock().unwrap();
        *key = SigningKey::new();
        key.kid.clone()
    }

    /// Signed under the published key id, by a key that is not the published one.
    pub fn forge(&self, claims: &IdTokenClaims) -> String {
        SigningKey::new().sign(&self.kid(), claims)
    }

    /// Signed by a key the issuer never published, under its own key id.
    pub fn sign_unpublished(&self, claims: &IdTokenClaims) -> String {
        let key = SigningKey::new();
        key.sign(&key.kid, claims)
    }
}

impl Drop for TestIssuer {
    /// Stops serving.
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn discovery(State(shared): State<Arc<Shared>>) -> Json<Value> {
    Json(json!({
        "issuer": shared.issuer,
        "jwks_uri": format!("{}/jwks", shared.issuer),
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
    }))
}

async fn jwks(State(shared): State<Arc<Shared>>) -> Json<JwkSet> {
    shared.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    let key = shared.current.lock().unwrap();
    Json(JwkSet {
        keys: vec![key.jwk.clone()],
    })
}
