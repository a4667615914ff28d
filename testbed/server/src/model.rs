//! The JSON the API speaks. Ids are 32 lowercase hex digits; binary values (keys, documents,
//! signatures, challenges) are standard base64; instants are Unix seconds (UTC).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A weekly window in the property's local time. `end` may be "24:00"; an `end` at or before
/// `start` crosses midnight ("22:00"-"02:00"), and `days` names the day it starts on.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct WindowJson {
    /// Three-letter lowercase weekdays: mon tue wed thu fri sat sun.
    #[schema(value_type = Vec<Day>, min_items = 1)]
    pub days: Vec<String>,
    /// "HH:MM", 00:00 to 23:59.
    pub start: String,
    /// "HH:MM", 00:01 to 24:00.
    pub end: String,
}

/// A Key Schedule. Omitted on a key's door, the door is open 24/7 to the key's holders.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct ScheduleJson {
    pub windows: Vec<WindowJson>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::extract::integer_opt"
    )]
    pub not_before: Option<i64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::extract::integer_opt"
    )]
    pub not_after: Option<i64>,
}

// ---- manager side -------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NewProperty {
    pub name: String,
    /// IANA time zone, e.g. "America/New_York".
    pub time_zone: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PropertyJson {
    pub id: String,
    pub name: String,
    pub time_zone: String,
    /// Key id of the issuer key that signs this property's documents (hex, 8 bytes).
    pub issuer_kid: String,
    /// SEC1 compressed issuer public key (base64).
    pub issuer_public_key: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedProperty {
    pub property: PropertyJson,
    /// The bearer token for this property's manager API. Shown once.
    pub manager_key: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NewDoor {
    pub name: String,
    /// Online doors reach the server themselves; offline doors need Door Sync through phones.
    pub online: bool,
    /// The lock's id (hex), as installed; generated when omitted.
    #[serde(default)]
    pub lock_id: Option<String>,
    /// The lock's P-256 public key, SEC1 (base64).
    pub lock_public_key: String,
    #[serde(default)]
    pub keypad: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct DoorJson {
    pub id: String,
    pub name: String,
    pub online: bool,
    pub lock_id: String,
    pub lock_public_key: String,
    pub keypad: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct KeyDoorJson {
    pub door_id: String,
    /// Each holder gets a unique doorcode for this door.
    #[serde(default)]
    pub doorcodes: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<ScheduleJson>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NewKey {
    /// For managers only: residents never see key names.
    pub name: String,
    pub doors: Vec<KeyDoorJson>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct KeyJson {
    pub id: String,
    pub name: String,
    pub doors: Vec<KeyDoorJson>,
    /// How many people hold it now.
    pub holders: u32,
}

/// A person's role (the schema of `NewPerson.role`; the server checks the string).
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum Role {
    Resident,
    Staff,
    Vendor,
    Guest,
}

/// A weekday as schedules name it (the schema of `WindowJson.days`).
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum Day {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NewPerson {
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
    /// resident, staff, vendor or guest.
    #[schema(value_type = Role)]
    pub role: String,
    /// Lets the person sign in to the resident app with email and password.
    #[serde(default)]
    pub password: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PersonJson {
    pub id: String,
    pub name: String,
    pub email: Option<String>,
    pub role: String,
    pub revoked: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NewAssignment {
    pub key_id: String,
    /// May the person invite guests to this key's doors?
    #[serde(default)]
    pub may_share: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AssignmentJson {
    pub id: String,
    pub key_id: String,
    pub person_id: String,
    pub may_share: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AssignmentPatch {
    /// May the person invite guests to this key's doors?
    pub may_share: bool,
}

/// A guest as the manager sees it: the invite, who made it and the guest's person id.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct PropertyGuestJson {
    pub guest: GuestJson,
    pub inviter_id: String,
    pub guest_person_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct DoorcodeJson {
    pub door_id: String,
    pub code: String,
}

// ---- resident side ------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Login {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Refresh {
    pub refresh_token: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RedeemInvite {
    pub invite_token: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: String,
    /// When the access token stops working (Unix seconds); refresh before then.
    pub expires_at: i64,
    pub person_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MeJson {
    pub person_id: String,
    pub name: String,
    pub role: String,
    pub property: PropertyJson,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Challenge {
    /// Random bytes to sign (base64); valid for five minutes, once.
    pub challenge: String,
    pub expires_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NewDevice {
    /// SEC1 P-256 public key (base64), compressed or uncompressed.
    pub public_key: String,
    pub challenge: String,
    /// ECDSA P-256/SHA-256 over "door-core/device-possession/v1\0" || challenge,
    /// raw r||s or DER (base64).
    pub signature: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeviceJson {
    pub device_id: String,
}

/// A device registered to a person, as the person and the property's managers see it.
/// Removed devices stay listed, for history; they get no documents and do not count against
/// the device limit.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct RegisteredDevice {
    pub id: String,
    /// When the device was first registered.
    pub created_at: i64,
    /// When the device last fetched its doors and access documents; absent: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen_at: Option<i64>,
    /// When the device was removed; absent while it is in use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed_at: Option<i64>,
    /// The device the calling session registered (the resident API); always false in the
    /// manager API.
    pub current: bool,
}

/// One door as the resident sees it: never a key name.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct MyDoor {
    pub id: String,
    pub name: String,
    pub online: bool,
    pub keypad: bool,
    pub lock_id: String,
    pub lock_public_key: String,
    /// One schedule per key that gives this door: it opens whenever one of them allows (two
    /// keys never merge into more than either gives). The access document signs the same.
    pub schedules: Vec<ScheduleJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doorcode: Option<String>,
    /// May this person invite guests to this door?
    pub may_share: bool,
    /// The signed access document for this door and the requesting device (COSE_Sign1,
    /// base64): what the phone presents to the lock.
    pub access_document: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MyDoors {
    pub person_id: String,
    pub time_zone: String,
    pub issuer_kid: String,
    pub issuer_public_key: String,
    /// The credential every door's access document belongs to (what revocations name);
    /// absent when the person has no door.
    pub credential_id: Option<String>,
    pub doors: Vec<MyDoor>,
    pub issued_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NewGuest {
    /// Doors the guest opens with the app (an access document for their phone).
    #[serde(default)]
    pub door_ids: Vec<String>,
    /// Doors the guest opens with a temporary doorcode at the keypad, for a guest without the
    /// app (a door in both lists gets both). Only keypad doors where a key the host shares
    /// enables doorcodes.
    #[serde(default)]
    pub doorcode_door_ids: Vec<String>,
    /// How the resident reaches the guest (phone or email); shown in the guest list.
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub contact: String,
    #[serde(deserialize_with = "crate::extract::integer")]
    pub starts_at: i64,
    #[serde(deserialize_with = "crate::extract::integer")]
    pub ends_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct GuestJson {
    pub id: String,
    pub contact: String,
    /// Doors the guest opens with the app.
    pub door_ids: Vec<String>,
    /// Doors the guest opens with a temporary doorcode (the codes are shown once, at the invite).
    #[serde(default)]
    pub doorcode_door_ids: Vec<String>,
    pub starts_at: i64,
    pub ends_at: i64,
    pub redeemed: bool,
    pub revoked: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InvitedGuest {
    pub guest: GuestJson,
    /// The one-time token the guest signs in with. Shown once.
    pub invite_token: String,
    /// The guest's temporary doorcodes, one per doorcode door, for the host to pass on. Shown
    /// once: the guest list never repeats them.
    #[serde(default)]
    pub doorcodes: Vec<DoorcodeJson>,
}

// ---- Door Sync ----------------------------------------------------------------------------

/// What a phone carries to one offline lock: a signed sync bundle, or word that the lock is up
/// to date.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct SyncBundleJson {
    /// 32 hex digits, as in `MyDoor.lock_id`.
    pub lock_id: String,
    /// The server's latest sync iteration for this lock: what the bundle brings it to.
    pub iteration: u64,
    /// 0: a full bundle (replaces the lock's sync state). Otherwise a delta that applies only
    /// on a lock at exactly this iteration. Equal to `iteration` when `up_to_date`.
    pub base_iteration: u64,
    /// The lock is already at `iteration`: there is nothing to carry.
    pub up_to_date: bool,
    /// The signed bundle (COSE_Sign1, base64); null when `up_to_date`. Its doorcodes are
    /// sealed to the lock's key. Each answer is signed afresh (its `issued_at` is a signed time),
    /// so two answers for the same iteration may differ in bytes.
    pub bundle: Option<String>,
    /// Length of the signed bundle in bytes (0 when `up_to_date`).
    pub size: u32,
}

/// An issuer-signed statement of the server's clock, for a phone to put in its unlock requests.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct SignedTimeJson {
    /// The server's clock when it signed (Unix seconds).
    pub time: i64,
    /// The signed time (COSE_Sign1, base64), bound to the requested lock if one was named.
    pub signed_time: String,
}
