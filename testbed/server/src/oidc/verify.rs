//! Checking an OpenID Connect ID token against one configured issuer: its signature under the
//! issuer's published key (jsonwebtoken does the JWS), then the claims this server relies on.
//! Pure: the key is passed in, the time too.

use std::fmt;

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

/// How far a token's times may be off this server's clock (OpenID Connect leaves the leeway
/// to the relying party; a minute covers phones' and IdPs' clocks without keeping tokens
/// alive for long).
pub const LEEWAY: i64 = 60;

/// The signature algorithms accepted: what OpenID providers publish keys for (RS256 is the
/// one every provider must support; ES256 is the common other). No `none`, no HMAC: a key
/// this server could read is no proof of the issuer.
pub const ALGORITHMS: [Algorithm; 2] = [Algorithm::RS256, Algorithm::ES256];

/// Why a token was refused. Logged by the server, never shown to the caller, who gets one
/// answer for all of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Not a JWT at all, or its header or claims are not JSON of the expected shape.
    Malformed(String),
    /// Signed with an algorithm not in `ALGORITHMS`.
    Algorithm(String),
    /// No `kid` in the header: with several keys published there is no telling which.
    NoKeyId,
    /// No property has the token's `iss` as its issuer.
    UnknownIssuer(String),
    /// The issuer publishes no key with this `kid` (after refetching, when allowed).
    UnknownKey(String),
    /// The issuer's keys could not be fetched.
    KeysUnavailable(String),
    /// The published key does not fit the header's algorithm.
    KeyMismatch(String),
    /// The signature, issuer or audience check of jsonwebtoken failed.
    Rejected(String),
    Expired {
        exp: i64,
        now: i64,
    },
    NotYetValid {
        nbf: i64,
        now: i64,
    },
    IssuedInTheFuture {
        iat: i64,
        now: i64,
    },
    /// The app named a nonce and the token carries another one, or none.
    Nonce,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Malformed(why) => write!(f, "not a well-formed JWT: {why}"),
            Refusal::Algorithm(alg) => write!(f, "algorithm {alg} is not accepted"),
            Refusal::NoKeyId => write!(f, "the header has no kid"),
            Refusal::UnknownIssuer(iss) => write!(f, "no property has issuer {iss:?}"),
            Refusal::UnknownKey(kid) => write!(f, "the issuer publishes no key {kid:?}"),
            Refusal::KeysUnavailable(why) => write!(f, "the issuer's keys are unavailable: {why}"),
            Refusal::KeyMismatch(why) => write!(f, "the published key does not fit: {why}"),
            Refusal::Rejected(why) => write!(f, "rejected: {why}"),
            Refusal::Expired { exp, now } => write!(f, "expired at {exp} (now {now})"),
            Refusal::NotYetValid { nbf, now } => write!(f, "not valid before {nbf} (now {now})"),
            Refusal::IssuedInTheFuture { iat, now } => write!(f, "issued at {iat} (now {now})"),
            Refusal::Nonce => write!(f, "the nonce does not match the one the app named"),
        }
    }
}

/// What is read from a token before any check, only to find the issuer's configuration and
/// key and to count the attempt against a budget: nothing here is trusted.
#[derive(Debug, Clone)]
pub struct Unverified {
    pub algorithm: Algorithm,
    pub key_id: String,
    pub issuer: String,
    pub subject: String,
}

#[derive(Deserialize)]
struct Routing {
    iss: String,
    #[serde(default)]
    sub: String,
}

impl Unverified {
    pub fn read(token: &str) -> Result<Unverified, Refusal> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| Refusal::Malformed(e.to_string()))?;
        if !ALGORITHMS.contains(&header.alg) {
            return Err(Refusal::Algorithm(format!("{:?}", header.alg)));
        }
        let key_id = header.kid.ok_or(Refusal::NoKeyId)?;
        // Read unverified on purpose: only to route the token to its issuer's keys, whose
        // signature check follows before any claim is believed.
        let routing = jsonwebtoken::dangerous::insecure_decode::<Routing>(token)
            .map_err(|e| Refusal::Malformed(e.to_string()))?
            .claims;
        Ok(Unverified {
            algorithm: header.alg,
            key_id,
            issuer: routing.iss,
            subject: routing.sub,
        })
    }
}

/// One property's issuer, as its manager configured it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerConfig {
    pub issuer: String,
    pub audience: String,
    pub jwks_url: String,
}

/// `email_verified` as providers send it: a boolean, or (some) the string "true".
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Flag {
    Bool(bool),
    Text(String),
}

#[derive(Debug, Clone, Deserialize)]
struct Claims {
    sub: String,
    exp: i64,
    #[serde(default)]
    nbf: Option<i64>,
    #[serde(default)]
    iat: Option<i64>,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    email_verified: Option<Flag>,
}

/// A token that passed every check: who the issuer says signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub issuer: String,
    pub subject: String,
    /// The email, only when the issuer says it verified it.
    pub verified_email: Option<String>,
}

/// Checks `token` (already read as `unverified`) against `config` with the issuer's `key`:
/// signature, `iss`, `aud`, `exp` and `nbf` (with `LEEWAY`), `iat` not in the future, and the
/// nonce when the app named one.
pub fn check(
    token: &str,
    unverified: &Unverified,
    config: &IssuerConfig,
    key: &Jwk,
    now: i64,
    nonce: Option<&str>,
) -> Result<Identity, Refusal> {
    fits(key, unverified.algorithm)?;
    let decoding = DecodingKey::from_jwk(key).map_err(|e| Refusal::KeyMismatch(e.to_string()))?;
    let mut validation = Validation::new(unverified.algorithm);
    validation.set_issuer(&[&config.issuer]);
    validation.set_audience(&[&config.audience]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    // Times are checked below on the server's clock (which tests move), not the system's.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    let claims = jsonwebtoken::decode::<Claims>(token, &decoding, &validation)
        .map_err(|e| Refusal::Rejected(e.to_string()))?
        .claims;
    if claims.exp + LEEWAY <= now {
        return Err(Refusal::Expired {
            exp: claims.exp,
            now,
        });
    }
    if let Some(nbf) = claims.nbf.filter(|nbf| *nbf > now + LEEWAY) {
        return Err(Refusal::NotYetValid { nbf, now });
    }
    if let Some(iat) = claims.iat.filter(|iat| *iat > now + LEEWAY) {
        return Err(Refusal::IssuedInTheFuture { iat, now });
    }
    if let Some(expected) = nonce {
        if claims.nonce.as_deref() != Some(expected) {
            return Err(Refusal::Nonce);
        }
    }
    let verified = match claims.email_verified {
        Some(Flag::Bool(b)) => b,
        Some(Flag::Text(t)) => t == "true",
        None => false,
    };
    Ok(Identity {
        issuer: config.issuer.clone(),
        subject: claims.sub,
        verified_email: claims.email.filter(|_| verified),
    })
}

/// A key used for the algorithm it was published for: an RSA key for RS256, a P-256 key for
/// ES256, and a key that names an algorithm names this one.
fn fits(key: &Jwk, algorithm: Algorithm) -> Result<(), Refusal> {
    if let Some(named) = key.common.key_algorithm {
        if format!("{named:?}") != format!("{algorithm:?}") {
            return Err(Refusal::KeyMismatch(format!(
                "the key is for {named:?}, the token says {algorithm:?}"
            )));
        }
    }
    let family_fits = match (&key.algorithm, algorithm) {
        (AlgorithmParameters::RSA(_), Algorithm::RS256) => true,
        (AlgorithmParameters::EllipticCurve(ec), Algorithm::ES256) => {
            ec.curve == jsonwebtoken::jwk::EllipticCurve::P256
        }
        _ => false,
    };
    if family_fits {
        Ok(())
    } else {
        Err(Refusal::KeyMismatch(format!(
            "the key's type does not sign {algorithm:?}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};
    use p256::pkcs8::EncodePrivateKey;
    use proptest::prelude::*;

    const NOW: i64 = 1_800_000_000;

    fn config() -> IssuerConfig {
        IssuerConfig {
            issuer: "https://idp.example".into(),
            audience: "app".into(),
            jwks_url: "https://idp.example/jwks".into(),
        }
    }

    /// A P-256 signing key (PKCS#8) and its published JWK under kid "k1".
    fn key() -> (Vec<u8>, Jwk) {
        let secret = p256::SecretKey::random(&mut rand::rngs::OsRng);
        let der = secret.to_pkcs8_der().unwrap().as_bytes().to_vec();
        let mut jwk =
            Jwk::from_encoding_key(&EncodingKey::from_ec_der(&der), Algorithm::ES256).unwrap();
        jwk.common.key_id = Some("k1".into());
        (der, jwk)
    }

    fn token(der: &[u8], exp: i64, iat: i64, nonce: Option<&str>) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some("k1".into());
        let claims = serde_json::json!({
            "iss": "https://idp.example", "aud": "app", "sub": "s", "exp": exp, "iat": iat,
            "nonce": nonce, "email": "a@example.com", "email_verified": "true",
        });
        jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ec_der(der)).unwrap()
    }

    proptest! {
        /// Accepted exactly when unexpired and not issued in the future (each within the
        /// leeway) and carrying the nonce the app named, if it named one.
        #[test]
        fn times_and_nonce_decide_exactly(
            exp_offset in -3 * LEEWAY..3 * LEEWAY,
            iat_offset in -3 * LEEWAY..3 * LEEWAY,
            token_nonce in proptest::option::of("[a-c]{1,2}"),
            asked_nonce in proptest::option::of("[a-c]{1,2}"),
        ) {
            let (der, jwk) = key();
            let jwt = token(&der, NOW + exp_offset, NOW + iat_offset, token_nonce.as_deref());
            let unverified = Unverified::read(&jwt).unwrap();
            let result = check(&jwt, &unverified, &config(), &jwk, NOW, asked_nonce.as_deref());
            let nonce_ok = asked_nonce.is_none() || asked_nonce == token_nonce;
            let expected = exp_offset + LEEWAY > 0 && iat_offset <= LEEWAY && nonce_ok;
            prop_assert_eq!(result.is_ok(), expected, "{:?}", result);
            if let Ok(identity) = result {
                prop_assert_eq!(identity.verified_email.as_deref(), Some("a@example.com"));
            }
        }
    }

    /// A 2048-bit RSA key (PKCS#1 DER, base64) made for this test alone and trusted nowhere:
    /// generating one in a debug build takes seconds.
    const TEST_RSA_KEY: &str = concat!(
        "MIIEpAIBAAKCAQEA3jVZ93i4poPrkakUBUSiZr3tPe19IOPc3eWDg6C4b7TAew2e5K8hZ/gSD23tIlqc1bkdUq4s",
        "oF7bM2tD9wE6WlihEqA+fcjYGJw+hHCv3ftKAaRXk6xBxRJDkLboLtB9z7dtnl58DgWSLrcCo4yCpsvly8qAK/Ok",
        "2YpYDv8fdH5O0NuHjrwP5YnglV1kb8Pi3aYFtXIaNyR7+xSR1kLkAiMhcBHFOYWzvtNnP3lkunZCyMW/e+jl7V0w",
        "DI59nvZl5zdd16Tb3GXQ8R7pD6XmlJ9pdbmggbJjOw8p6UK6y4oeOMhZCReB8NuQ0bLoFjegx5D7F+T5aIqslPf+",
        "zDO20wIDAQABAoIBABO0DcYwoWIig6dNPSxtnMWyqz0fUd9/Icm+dp4bu9iSSBihNijdxP7zGdoRMg9ZxlstKIYS",
        "uHvmU7y7eWTtnViYtnxwUrPUm1TGhffSBiyPNU2JkdQGWJtttlzR2ysYUakzGp7WwfYV7sbPQFMNCO8nvuvTIopc",
        "w44gNkhRVviwdpSdVeNfH8TjMKW3vy1PsFKC75WlgRCN2zBQXT8gYYFOZwg/Wrn4HFjtJzY4npDSGoCZebsWPEuR",
        "gqjiNW+cFTO+BxRBwkyjEXPiIlYO7jE9QQSCFurB70JGQxgTezvIZ8Knib1Q+MnkBWehvzbMe4EOpnddjzkK6GMI",
        "zf8T0AECgYEA9jFCDvLNqaxa+WH8HkowUJRplv9PY0Wp8dIozQP3V9hCntaVQEy7Yinqz0FZCkucYvRrzgyppSAs",
        "4iaXdTS7hXt3mTH39l56u3sKZJ3MeppEeKoluRsELc//TJFHDRD/rJGFNV5Pf1Cp/iyWjrFG9nw1cO7TQNPzbEVP",
        "UMoMWsMCgYEA5w9/WiDtIhl5y74BezXWfrxDq6esbYNt5icAmUjQUAlRMzkQZ+XCAVMUkexfJ9UGNCakn+T1M3iQ",
        "GbRpSrs4aL7rai9vkWdooWtZdZBiQa4CdBnR2ZWD5kpBP9A42rrxwl1Iy8U8Cnbjpd4Hd1OCL1YwElqDVXhfpXoJ",
        "wxan0rECgYApPEzlNhPuhHjkZl4VMLXw+TrKWM8SQJvbbij5Vd267/UQp75t+6wzH/Q9bKOeTtXN2USpSYOsrbv2",
        "0SHzNrbl/60jkrQGpwKFnnE6MxgJvQcU8uLIo1bK2ZjYWUj+TkeUvvcB3l8QYxFmCk/ZbKYHKPzGgqoNpLKUAvPr",
        "AzyYgwKBgQCnH3RzkiEyas7HaPTVU0mDfVRM0ghLZaaVs1whgqL5YOPUcs/E9k/ueVMFgLwKqW/FRLYJ2Kbpxagk",
        "j3Mg1G2mhYDs2saNmwf4yRZ5jCclbmDj7ND12cj/RnIPX+HfgxveA27lxBD7WKarj/5CdqpQ5rv6anFX3qr/m1d4",
        "PejA4QKBgQDur8+XsVDLzv8z0wERNSbZldTfVwbGZ7fstqW+PUkqiRVrPROoZAmzYRa1NkmXnmvQfVFRyVzQf0MS",
        "DIm8EGtuQ7tER1HUBOxRYqJ9pZMoY2QFkjvaXW/VJqNWujJ2GkiAVkyXAobuuPlXfpxuBNiUCJOoCFjlCK9/KOtQ",
        "hfCDJQ==",
    );

    #[test]
    fn an_rs256_token_verifies_under_its_rsa_jwk_and_not_under_another_key() {
        use base64::Engine;
        let der = base64::engine::general_purpose::STANDARD
            .decode(TEST_RSA_KEY)
            .unwrap();
        let signing = EncodingKey::from_rsa_der(&der);
        let mut jwk = Jwk::from_encoding_key(&signing, Algorithm::RS256).unwrap();
        jwk.common.key_id = Some("rsa".into());
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("rsa".into());
        let claims = serde_json::json!({
            "iss": "https://idp.example", "aud": ["app", "other"], "sub": "s", "exp": NOW + 60,
            "email": "a@example.com", "email_verified": false,
        });
        let jwt = jsonwebtoken::encode(&header, &claims, &signing).unwrap();
        let unverified = Unverified::read(&jwt).unwrap();
        let identity = check(&jwt, &unverified, &config(), &jwk, NOW, None).unwrap();
        assert_eq!(identity.subject, "s");
        assert_eq!(identity.verified_email, None, "the email is not verified");
        let (_, ec) = key();
        assert!(check(&jwt, &unverified, &config(), &ec, NOW, None).is_err());
    }

    #[test]
    fn a_key_is_used_only_for_the_algorithm_its_type_fits() {
        let (der, mut jwk) = key();
        assert!(fits(&jwk, Algorithm::ES256).is_ok());
        assert!(matches!(
            fits(&jwk, Algorithm::RS256),
            Err(Refusal::KeyMismatch(_))
        ));
        jwk.common.key_algorithm = Some(jsonwebtoken::jwk::KeyAlgorithm::ES384);
        assert!(matches!(
            fits(&jwk, Algorithm::ES256),
            Err(Refusal::KeyMismatch(_))
        ));
        let jwt = token(&der, NOW + 60, NOW, None);
        let unverified = Unverified::read(&jwt).unwrap();
        assert!(matches!(
            check(&jwt, &unverified, &config(), &jwk, NOW, None),
            Err(Refusal::KeyMismatch(_))
        ));
    }
}
