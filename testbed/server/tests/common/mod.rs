//! A door-server on 127.0.0.1:0 with a clock the test controls, and a small typed client.

#![allow(dead_code)] // each test binary uses its own part of this

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use base64::Engine;
use door_protocol::access::decode_access;
use door_protocol::keys::{IssuerKeys, IssuerPublicKey};
use door_protocol::{Decision, Id};
use door_server::model::*;
use door_server::ServerHandle;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

pub const ADMIN: &str = "admin-token-for-tests";

pub struct TestServer {
    pub handle: ServerHandle,
    pub clock: Arc<AtomicI64>,
    pub http: reqwest::Client,
}

/// 2026-11-24 (a Tuesday) 10:00 in New York.
pub const TUESDAY_10AM_NY: i64 = 1_795_532_400;

pub fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

pub fn unb64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

impl TestServer {
    pub async fn start() -> TestServer {
        TestServer::start_with(door_server::Options::default()).await
    }

    pub async fn start_with(options: door_server::Options) -> TestServer {
        let clock = Arc::new(AtomicI64::new(TUESDAY_10AM_NY));
        let c = clock.clone();
        let handle = door_server::start_with(
            "127.0.0.1:0".parse().unwrap(),
            None,
            ADMIN,
            Arc::new(move || c.load(Ordering::SeqCst)),
            options,
        )
        .await
        .unwrap();
        TestServer {
            handle,
            clock,
            http: {
                // reqwest's TLS wants a process-wide crypto provider (feature unification
                // brings TLS in); a second install is harmless.
                let _ = rustls::crypto::ring::default_provider().install_default();
                reqwest::Client::new()
            },
        }
    }

    pub fn set_now(&self, t: i64) {
        self.clock.store(t, Ordering::SeqCst);
    }

    pub fn now(&self) -> i64 {
        self.clock.load(Ordering::SeqCst)
    }

    /// Sends a request; returns the status and the JSON body (Null when empty).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let url = format!("{}{}", self.handle.url(), path);
        let mut req = self
            .http
            .request(method.parse().unwrap(), url)
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let json = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, json)
    }

    /// A call that must succeed with `status`, decoded as `T`.
    pub async fn ok<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<&impl Serialize>,
        status: u16,
    ) -> T {
        let body = body.map(|b| serde_json::to_value(b).unwrap());
        let (got, json) = self.call(method, path, token, body.as_ref()).await;
        assert_eq!(got, status, "{method} {path}: {json}");
        serde_json::from_value(json).unwrap()
    }
}

/// Rate limits no test reaches, for the budgets a test does not look at (tests/auth.rs shows
/// the limits themselves).
pub fn unthrottled() -> door_server::limits::Limits {
    use door_server::limits::{Per, Rate};
    let mut limits = door_server::limits::Limits::default();
    let roomy = Rate::new(10_000, Per::Second);
    for budget in limits.budgets_mut() {
        budget.account = roomy;
        budget.address = roomy;
    }
    limits
}

/// A manager's handle on one property.
pub struct Manager {
    pub property: PropertyJson,
    pub key: String,
}

impl Manager {
    pub async fn create(s: &TestServer, name: &str, zone: &str) -> Manager {
        let created: CreatedProperty = s
            .ok(
                "POST",
                "/v1/properties",
                ADMIN,
                Some(&NewProperty {
                    name: name.into(),
                    time_zone: zone.into(),
                }),
                201,
            )
            .await;
        Manager {
            property: created.property,
            key: created.manager_key,
        }
    }

    pub fn path(&self, rest: &str) -> String {
        format!("/v1/properties/{}{rest}", self.property.id)
    }

    pub async fn door(&self, s: &TestServer, name: &str, online: bool) -> DoorJson {
        let lock = SigningKey::random(&mut rand::rngs::OsRng);
        let req = NewDoor {
            name: name.into(),
            online,
            lock_id: None,
            lock_public_key: b64(lock.verifying_key().to_encoded_point(true).as_bytes()),
            keypad: true,
        };
        s.ok("POST", &self.path("/doors"), &self.key, Some(&req), 201)
            .await
    }

    pub async fn key(&self, s: &TestServer, name: &str, doors: Vec<KeyDoorJson>) -> KeyJson {
        s.ok(
            "POST",
            &self.path("/keys"),
            &self.key,
            Some(&NewKey {
                name: name.into(),
                doors,
            }),
            201,
        )
        .await
    }

    pub async fn person(
        &self,
        s: &TestServer,
        name: &str,
        role: &str,
        email: Option<&str>,
    ) -> PersonJson {
        let req = NewPerson {
            name: name.into(),
            email: email.map(Into::into),
            role: role.into(),
            password: email.map(|_| "correct horse battery".to_owned()),
        };
        s.ok("POST", &self.path("/people"), &self.key, Some(&req), 201)
            .await
    }

    pub async fn assign(
        &self,
        s: &TestServer,
        person: &PersonJson,
        key: &KeyJson,
        may_share: bool,
    ) {
        let req = NewAssignment {
            key_id: key.id.clone(),
            may_share,
        };
        let _: AssignmentJson = s
            .ok(
                "POST",
                &self.path(&format!("/people/{}/keys", person.id)),
                &self.key,
                Some(&req),
                201,
            )
            .await;
    }

    pub async fn unassign(&self, s: &TestServer, person: &PersonJson, key: &KeyJson) {
        let (status, body) = s
            .call(
                "DELETE",
                &self.path(&format!("/people/{}/keys/{}", person.id, key.id)),
                &self.key,
                None,
            )
            .await;
        assert_eq!(status, 204, "{body}");
    }

    pub async fn doorcodes(&self, s: &TestServer, person: &PersonJson) -> Vec<DoorcodeJson> {
        s.ok(
            "GET",
            &self.path(&format!("/people/{}/doorcodes", person.id)),
            &self.key,
            None::<&()>,
            200,
        )
        .await
    }
}

pub fn door_entry(door: &DoorJson, doorcodes: bool, schedule: Option<ScheduleJson>) -> KeyDoorJson {
    KeyDoorJson {
        door_id: door.id.clone(),
        doorcodes,
        schedule,
    }
}

pub fn weekly(days: &[&str], start: &str, end: &str) -> ScheduleJson {
    ScheduleJson {
        windows: vec![WindowJson {
            days: days.iter().map(|d| d.to_string()).collect(),
            start: start.into(),
            end: end.into(),
        }],
        not_before: None,
        not_after: None,
    }
}

pub const MON_FRI: &[&str] = &["mon", "tue", "wed", "thu", "fri"];
pub const EVERY_DAY: &[&str] = &["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Registers `key` as a device with proof of possession; the status and the body.
pub async fn register_device(s: &TestServer, token: &str, key: &SigningKey) -> (u16, Value) {
    let challenge: Challenge = s
        .ok("POST", "/v1/me/devices/challenge", token, None::<&()>, 200)
        .await;
    let message = [
        b"door-core/device-possession/v1\0".as_slice(),
        &unb64(&challenge.challenge),
    ]
    .concat();
    let sig: Signature = key.sign(&message);
    let req = NewDevice {
        public_key: b64(key.verifying_key().to_encoded_point(false).as_bytes()),
        challenge: challenge.challenge,
        signature: b64(sig.to_der().as_bytes()),
    };
    s.call(
        "POST",
        "/v1/me/devices",
        token,
        Some(&serde_json::to_value(&req).unwrap()),
    )
    .await
}

/// A signed-in person with a registered device: what door-core will be.
pub struct Phone {
    pub tokens: Tokens,
    pub device_id: String,
    pub key: SigningKey,
}

impl Phone {
    pub async fn sign_in(s: &TestServer, email: &str) -> Phone {
        let tokens: Tokens = s
            .ok(
                "POST",
                "/v1/auth/login",
                "",
                Some(&Login {
                    email: email.into(),
                    password: "correct horse battery".into(),
                }),
                200,
            )
            .await;
        Phone::with_tokens(s, tokens).await
    }

    pub async fn with_tokens(s: &TestServer, tokens: Tokens) -> Phone {
        let key = SigningKey::random(&mut rand::rngs::OsRng);
        let (status, body) = register_device(s, &tokens.access_token, &key).await;
        assert_eq!(status, 201, "POST /v1/me/devices: {body}");
        let device: DeviceJson = serde_json::from_value(body).unwrap();
        Phone {
            tokens,
            device_id: device.device_id,
            key,
        }
    }

    pub fn token(&self) -> &str {
        &self.tokens.access_token
    }

    pub async fn doors(&self, s: &TestServer) -> MyDoors {
        s.ok(
            "GET",
            &format!("/v1/me/doors?device_id={}", self.device_id),
            self.token(),
            None::<&()>,
            200,
        )
        .await
    }

    /// What a lock would decide for `door` at `t` from the phone's document for it.
    pub fn decide(doors: &MyDoors, door: &str, t: i64) -> Option<Decision> {
        let door_json = doors.doors.iter().find(|d| d.name == door)?;
        let issuer = IssuerPublicKey::from_sec1(&unb64(&doors.issuer_public_key)).unwrap();
        let verified = decode_access(
            &unb64(&door_json.access_document),
            &IssuerKeys::single(issuer),
        )
        .unwrap();
        verified.decision(Id::from_hex(&door_json.id).unwrap(), t)
    }
}

/// Presents `document`, signed with the device key `key`, to `lock` over a BLE session at the
/// lock's time, as a phone does: the lock's answer.
pub fn present(
    lock: &door_lock::Lock,
    key: &SigningKey,
    document: &[u8],
) -> door_protocol::unlock::UnlockResult {
    use door_protocol::unlock::{UnlockPreparation, UnlockTarget};
    const MTU: u16 = 247;
    let config = lock.config();
    let target = UnlockTarget {
        lock_id: config.lock_id,
        lock_key: *config.key.public(),
        access_document: document.to_vec(),
    };
    let (prep, to_sign) =
        UnlockPreparation::new(target, lock.now(), &mut rand::rngs::OsRng).unwrap();
    let signature: Signature = key.sign(&to_sign);
    let mut phone = prep.signed(&signature.to_bytes()).unwrap();
    let mut conn = lock.connect();
    let mut notified = Vec::new();
    for c in phone.request_fragments(MTU) {
        notified = conn.on_write(&c, MTU).unwrap();
    }
    let mut outcome = None;
    for n in &notified {
        outcome = phone.on_fragment(n).unwrap();
    }
    outcome.unwrap().result
}

/// `host` invites a guest to `door_ids` for `[starts_at, ends_at)`; the guest redeems the
/// invite on a new phone. The invite as the host sees it, and the guest's phone.
pub async fn invite_and_redeem(
    s: &TestServer,
    host: &Phone,
    door_ids: Vec<String>,
    contact: &str,
    starts_at: i64,
    ends_at: i64,
) -> (GuestJson, Phone) {
    let invited: InvitedGuest = s
        .ok(
            "POST",
            "/v1/me/guests",
            host.token(),
            Some(&NewGuest {
                door_ids,
                doorcode_door_ids: Vec::new(),
                contact: contact.into(),
                starts_at,
                ends_at,
            }),
            201,
        )
        .await;
    let tokens: Tokens = s
        .ok(
            "POST",
            "/v1/auth/invite",
            "",
            Some(&RedeemInvite {
                invite_token: invited.invite_token,
            }),
            200,
        )
        .await;
    (invited.guest, Phone::with_tokens(s, tokens).await)
}

/// Every operation the OpenAPI document says the security `scheme` (`person`, `manager`,
/// `admin`) opens, as (method, path) with each path parameter filled with some id: the whole
/// surface, including endpoints added after this was written.
pub async fn operations_for(s: &TestServer, scheme: &str) -> Vec<(String, String)> {
    let (status, doc) = s.call("GET", "/openapi.json", "", None).await;
    assert_eq!(status, 200);
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let opened = op["security"]
                .as_array()
                .is_some_and(|s| s.iter().any(|req| req.get(scheme).is_some()));
            if opened {
                let filled = path
                    .split('/')
                    .map(|seg| match seg.starts_with('{') {
                        true => "00112233445566778899aabbccddeeff",
                        false => seg,
                    })
                    .collect::<Vec<_>>()
                    .join("/");
                ops.push((method.to_uppercase(), filled));
            }
        }
    }
    assert!(!ops.is_empty(), "no operation for {scheme}");
    ops
}

/// `token` is refused with 401 on every operation a person's token opens.
pub async fn assert_refused_everywhere(s: &TestServer, token: &str, why: &str) {
    assert_refused_on(s, "person", token, why).await;
}

/// `token` is refused with 401 on every operation `scheme` opens.
pub async fn assert_refused_on(s: &TestServer, scheme: &str, token: &str, why: &str) {
    for (method, path) in operations_for(s, scheme).await {
        let body = matches!(method.as_str(), "POST" | "PUT" | "PATCH").then(|| json!({}));
        let (status, answer) = s.call(&method, &path, token, body.as_ref()).await;
        assert_eq!(status, 401, "{method} {path} {why}: {answer}");
        assert_eq!(answer["code"], "unauthorized", "{method} {path} {why}");
    }
}
