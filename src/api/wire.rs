//! The JSON of the DOOR OS resident API (docs/openapi.json), as the core sends and reads it.
//! Only what the core uses is here; unknown fields in responses are ignored so a backend may
//! add to the contract without breaking older apps.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct WindowJson {
    pub days: Vec<String>,
    pub start: String,
    pub end: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ScheduleJson {
    pub windows: Vec<WindowJson>,
    #[serde(default)]
    pub not_before: Option<i64>,
    #[serde(default)]
    pub not_after: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Login<'a> {
    pub email: &'a str,
    pub password: &'a str,
}

/// An ID token of the property's OpenID Connect issuer (`POST /v1/auth/token`).
#[derive(Debug, Clone, Serialize)]
pub struct TokenSignIn<'a> {
    pub id_token: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<&'a str>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Refresh<'a> {
    pub refresh_token: &'a str,
}

#[derive(Debug, Clone, Serialize)]
pub struct RedeemInvite<'a> {
    pub invite_token: &'a str,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_at: i64,
    pub person_id: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PropertyJson {
    pub id: String,
    pub name: String,
    pub time_zone: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MeJson {
    pub person_id: String,
    pub name: String,
    pub role: String,
    pub property: PropertyJson,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Challenge {
    pub challenge: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct NewDevice {
    pub public_key: String,
    pub challenge: String,
    pub signature: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DeviceJson {
    pub device_id: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct RegisteredDevice {
    pub id: String,
    pub created_at: i64,
    #[serde(default)]
    pub last_seen_at: Option<i64>,
    #[serde(default)]
    pub removed_at: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MyDoor {
    pub id: String,
    pub name: String,
    pub online: bool,
    pub keypad: bool,
    pub lock_id: String,
    pub lock_public_key: String,
    /// One per key that gives the door (a summary: the access document is what counts).
    #[serde(default)]
    pub schedules: Vec<ScheduleJson>,
    #[serde(default)]
    pub doorcode: Option<String>,
    pub may_share: bool,
    pub access_document: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MyDoors {
    pub person_id: String,
    pub time_zone: String,
    pub issuer_kid: String,
    pub issuer_public_key: String,
    #[serde(default)]
    pub credential_id: Option<String>,
    pub doors: Vec<MyDoor>,
    pub issued_at: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct NewGuest<'a> {
    pub door_ids: &'a [String],
    pub doorcode_door_ids: &'a [String],
    pub contact: &'a str,
    pub starts_at: i64,
    pub ends_at: i64,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct GuestJson {
    pub id: String,
    pub contact: String,
    pub door_ids: Vec<String>,
    #[serde(default)]
    pub doorcode_door_ids: Vec<String>,
    pub starts_at: i64,
    pub ends_at: i64,
    pub redeemed: bool,
    pub revoked: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct InvitedGuest {
    pub guest: GuestJson,
    pub invite_token: String,
    /// The guest's temporary doorcodes: in this answer only.
    #[serde(default)]
    pub doorcodes: Vec<DoorcodeJson>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DoorcodeJson {
    pub door_id: String,
    pub code: String,
}

/// The body of every error response.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
    #[serde(default)]
    pub field: Option<String>,
    #[serde(default)]
    pub door_ids: Option<Vec<String>>,
    /// `device_limit` only.
    #[serde(default)]
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct SyncBundleJson {
    pub lock_id: String,
    pub iteration: u64,
    pub base_iteration: u64,
    pub up_to_date: bool,
    #[serde(default)]
    pub bundle: Option<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct SignedTimeJson {
    pub time: i64,
    pub signed_time: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct AuditUpload {
    pub records: Vec<String>,
}

/// The server's answer to an audit upload: one result per record sent, in order.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct AuditReceipt {
    pub results: Vec<AuditRecordResult>,
    pub stored: u32,
    pub duplicates: u32,
    #[serde(default)]
    pub refused: u32,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct AuditRecordResult {
    /// stored, duplicate or refused.
    pub status: String,
    /// For refused: signature, conflict or malformed.
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub detail: Option<String>,
}

/// One entry of a door's access log (`GET /v1/me/doors/{door_id}/access-log`).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct AccessLogEntry {
    pub at: i64,
    /// granted, denied or records_lost.
    pub outcome: String,
    /// ble or doorcode; absent for records_lost.
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub person_id: Option<String>,
    #[serde(default)]
    pub person_name: Option<String>,
    #[serde(default)]
    pub deny_reason: Option<String>,
    #[serde(default)]
    pub lost: Option<u64>,
    pub cursor: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct AccessLogPage {
    pub entries: Vec<AccessLogEntry>,
    #[serde(default)]
    pub next: Option<String>,
}
