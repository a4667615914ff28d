//! The issuers' published keys (JWK sets), fetched over HTTP and cached per JWKS URL. A token
//! naming a key the cache lacks makes the server fetch the set again, so a rotated-in key works
//! at once, but at most once per `REFETCH_INTERVAL` per URL: tokens with made-up key ids
//! cannot make this server hammer an identity provider.

use std::collections::HashMap;
use std::time::Duration;

use jsonwebtoken::jwk::{Jwk, JwkSet};
use serde::Deserialize;
use tokio::sync::Mutex;

use super::verify::Refusal;

/// Fetches of one URL are at least this far apart (server clock, seconds), whether a token
/// names an unknown key or the set went stale.
pub const REFETCH_INTERVAL: i64 = 60;
/// A set older than this is fetched again at its next use, so that a key the issuer removed
/// stops working even when no token names a new one.
pub const KEYS_TTL: i64 = 3600;
/// A JWK set is a few keys: anything much larger is not one.
const MAX_JWKS_BYTES: usize = 64 * 1024;
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

struct Fetched {
    /// The latest set fetched successfully (kept through a failed refetch: an IdP outage does
    /// not sign everyone out of token sign-in).
    keys: Option<JwkSet>,
    /// When the latest fetch was attempted.
    attempted_at: i64,
}

pub struct KeyCache {
    http: reqwest::Client,
    // One lock for all URLs: concurrent sign-ins that miss wait for one fetch, not one each.
    sets: Mutex<HashMap<String, Fetched>>,
}

impl Default for KeyCache {
    fn default() -> KeyCache {
        KeyCache::new()
    }
}

impl KeyCache {
    pub fn new() -> KeyCache {
        // reqwest's TLS needs a process-wide crypto provider; a second install is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        KeyCache {
            http: reqwest::Client::builder()
                .timeout(FETCH_TIMEOUT)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                // As reqwest::Client::new would: only a TLS backend that cannot start fails.
                .expect("reqwest builds a client with rustls and ring"),
            sets: Mutex::new(HashMap::new()),
        }
    }

    /// The key `kid` published at `url`, fetching the set when it is missing, stale, or lacks
    /// the key, within the refetch interval.
    pub async fn key(&self, url: &str, kid: &str, now: i64) -> Result<Jwk, Refusal> {
        let mut sets = self.sets.lock().await;
        if let Some(fetched) = sets.get(url) {
            let fresh = now - fetched.attempted_at < KEYS_TTL;
            if let (true, Some(key)) = (fresh, find(&fetched.keys, kid)) {
                return Ok(key);
            }
            if now - fetched.attempted_at < REFETCH_INTERVAL {
                return match &fetched.keys {
                    Some(_) => Err(Refusal::UnknownKey(kid.to_owned())),
                    None => Err(Refusal::KeysUnavailable(
                        "the latest fetch failed; not retried yet".into(),
                    )),
                };
            }
        }
        let result = self.fetch(url).await;
        let fetched = sets.entry(url.to_owned()).or_insert(Fetched {
            keys: None,
            attempted_at: now,
        });
        fetched.attempted_at = now;
        match result {
            Ok(keys) => fetched.keys = Some(keys),
            Err(why) => {
                eprintln!("door-server: fetching the JWK set at {url} failed: {why}");
                if fetched.keys.is_none() {
                    return Err(Refusal::KeysUnavailable(why));
                }
            }
        }
        find(&fetched.keys, kid).ok_or_else(|| Refusal::UnknownKey(kid.to_owned()))
    }

    async fn fetch(&self, url: &str) -> Result<JwkSet, String> {
        let mut response = self.http.get(url).send().await.map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("status {}", response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_JWKS_BYTES {
                return Err(format!("larger than {MAX_JWKS_BYTES} bytes"));
            }
        }
        parse_set(&body)
    }
}

fn find(keys: &Option<JwkSet>, kid: &str) -> Option<Jwk> {
    keys.as_ref().and_then(|set| set.find(kid)).cloned()
}

#[derive(Deserialize)]
struct RawSet {
    keys: Vec<serde_json::Value>,
}

/// The keys of a JWK set this server can read; others (key types it has no use for) are left
/// out rather than spoiling the whole set.
fn parse_set(body: &[u8]) -> Result<JwkSet, String> {
    let raw: RawSet = serde_json::from_slice(body).map_err(|e| format!("not a JWK set: {e}"))?;
    Ok(JwkSet {
        keys: raw
            .keys
            .into_iter()
            .filter_map(|k| serde_json::from_value(k).ok())
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_keeps_the_keys_it_can_read() {
        let set = parse_set(
            br#"{"keys":[{"kty":"EC","crv":"P-256","kid":"a","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
                         {"kty":"made-up","kid":"b"}]}"#,
        )
        .unwrap();
        assert!(set.find("a").is_some());
        assert!(set.find("b").is_none());
        assert!(parse_set(b"[]").is_err());
    }
}
