//! The one error enum apps see. Each variant is something an app can act on, with a message
//! a person can read; rich internal errors are flattened into it here.

use std::time::SystemTime;

use crate::access::AccessError;
use crate::api::ApiError;
use crate::device::DeviceError;
use crate::error::CoreError;
use door_protocol::schedule::ScheduleError;

use super::client::UnlockDenial;
use super::time::from_unix;
use crate::ble::BleError;

#[derive(Debug, Clone, PartialEq, thiserror::Error, uniffi::Error)]
pub enum DoorError {
    /// A value the app passed is not acceptable; `field` names it (a path such as
    /// `windows[1].end_minute`), `reason` says why.
    #[error("{field} {reason}")]
    InvalidInput { field: String, reason: String },
    /// The device key could not be used or gave an unusable answer (a hardware keystore that
    /// refused, a user who cancelled, a signature that does not verify).
    #[error("the device key could not be used: {reason}")]
    DeviceKey { reason: String },
    /// "Out of Schedule": the door does not open to this person now; it opens next at
    /// `next_allowed` (never, when absent).
    #[error("Out of Schedule")]
    OutOfSchedule { next_allowed: Option<SystemTime> },
    /// The server refused: this person may not do that (a guest inviting, a revoked person).
    #[error("not permitted: {reason}")]
    NotPermitted { reason: String },
    /// Some of the doors of a guest invite may not be shared; `door_ids` names them.
    #[error("{} of these doors may not be shared with guests", door_ids.len())]
    NotShareable { door_ids: Vec<String> },
    /// A guest doorcode was asked for at doors where no key this person shares enables
    /// doorcodes; `door_ids` names them.
    #[error("{} of these doors give you no doorcode to share with a guest", door_ids.len())]
    DoorcodesNotShareable { door_ids: Vec<String> },
    /// The person already has as many devices as the property allows (`limit`): remove one
    /// (`devices`, `remove_device`), then `refresh` registers this one.
    #[error("this person already has {limit} devices, the most allowed; remove one first")]
    DeviceLimit { limit: u32 },
    /// The server cannot be reached; cached doors still work.
    #[error("offline: {reason}")]
    Offline { reason: String },
    /// The session ended; sign in again.
    #[error("the session has expired; please sign in again")]
    SessionExpired,
    /// Nobody is signed in on this client.
    #[error("nobody is signed in")]
    NotSignedIn,
    /// The server did not answer in time.
    #[error("the server did not answer in time")]
    Timeout,
    /// The server answered with an error the app cannot fix by itself, or with something
    /// the API does not allow (the cache is left untouched).
    #[error("server error {code}: {detail}")]
    Server { code: String, detail: String },
    /// The local store failed (disk full, damaged file).
    #[error("local storage failed: {reason}")]
    Storage { reason: String },
    /// The lock said no, for a reason other than the schedule.
    #[error("the lock refused: {reason:?}")]
    Denied { reason: UnlockDenial },
    /// The lock was not found before the deadline: walk closer.
    #[error("the lock is not in range")]
    LockNotInRange,
    /// Bluetooth is switched off: ask the person to turn it on.
    #[error("Bluetooth is off")]
    BluetoothOff,
    /// The app lacks the Bluetooth permission (Android: BLUETOOTH_SCAN and BLUETOOTH_CONNECT,
    /// or location before Android 12; iOS: Bluetooth in Settings): ask for it.
    #[error("the app may not use Bluetooth")]
    BluetoothPermissionMissing,
    /// This device has no Bluetooth LE, or the client has no way to reach it.
    #[error("Bluetooth is not available")]
    BluetoothUnavailable,
    /// The lock was found but the connection could not be set up or dropped: try again.
    #[error("the connection to the lock failed: {reason}")]
    LockConnectionFailed { reason: String },
    /// The lock stopped answering before the deadline: try again.
    #[error("the lock did not answer in time")]
    LockTimeout,
    /// Another unlock runs (on `door_id`); one at a time.
    #[error("an unlock is already under way")]
    UnlockInProgress { door_id: String },
    /// The lock could not prove it is the lock the property registered: do not trust it.
    #[error("the lock is not genuine")]
    LockNotGenuine,
    /// The exchange with the lock failed (a faulty lock or a broken link).
    #[error("the exchange with the lock failed: {reason}")]
    LockProtocol { reason: String },
    /// The app cancelled the call through its `Cancellation`.
    #[error("cancelled")]
    Cancelled,
}

impl DoorError {
    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> DoorError {
        DoorError::InvalidInput {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl From<AccessError> for DoorError {
    fn from(e: AccessError) -> DoorError {
        match e {
            AccessError::UnknownZone(zone) => DoorError::invalid(
                "time_zone",
                format!("is not a known IANA time zone: {zone:?}"),
            ),
            AccessError::Schedule(e) => schedule_error(e),
        }
    }
}

fn schedule_error(e: ScheduleError) -> DoorError {
    match e {
        ScheduleError::StartOutOfRange { index } => DoorError::invalid(
            format!("windows[{index}].start_minute"),
            "must be in 0..1440",
        ),
        ScheduleError::EndOutOfRange { index } => DoorError::invalid(
            format!("windows[{index}].end_minute"),
            "must be in 1..=1440",
        ),
        ScheduleError::EmptyWindow { index } => DoorError::invalid(
            format!("windows[{index}]"),
            "starts and ends at the same minute (a whole day is 0..1440)",
        ),
        ScheduleError::BadDays { index } => DoorError::invalid(
            format!("windows[{index}].days"),
            "must name at least one weekday",
        ),
        ScheduleError::EmptyRange => DoorError::invalid("not_after", "must be after not_before"),
    }
}

impl From<CoreError> for DoorError {
    fn from(e: CoreError) -> DoorError {
        match e {
            CoreError::Api(e) => e.into(),
            CoreError::Store(e) => DoorError::Storage {
                reason: e.to_string(),
            },
            CoreError::Keystore(e) => DoorError::DeviceKey {
                reason: e.to_string(),
            },
            CoreError::BadDoors(e) => DoorError::Server {
                code: "bad_document".into(),
                detail: e.to_string(),
            },
            CoreError::NotSignedIn => DoorError::NotSignedIn,
            CoreError::InvalidInput { field, reason } => DoorError::InvalidInput { field, reason },
            CoreError::OutOfSchedule { next_allowed } => DoorError::OutOfSchedule {
                next_allowed: next_allowed.map(from_unix),
            },
            CoreError::DeviceKey(reason) => DoorError::DeviceKey { reason },
            CoreError::Denied(reason) => DoorError::Denied {
                reason: reason.into(),
            },
            CoreError::Ble(e) => e.into(),
            CoreError::UnlockInProgress { door_id } => DoorError::UnlockInProgress { door_id },
            CoreError::Cancelled => DoorError::Cancelled,
            CoreError::NotGenuine => DoorError::LockNotGenuine,
            CoreError::Protocol(reason) => DoorError::LockProtocol { reason },
            CoreError::Cache(reason) => DoorError::Storage { reason },
        }
    }
}

impl From<BleError> for DoorError {
    fn from(e: BleError) -> DoorError {
        match e {
            BleError::NotInRange => DoorError::LockNotInRange,
            BleError::Off => DoorError::BluetoothOff,
            BleError::PermissionMissing => DoorError::BluetoothPermissionMissing,
            BleError::Unavailable | BleError::ScanUnsupported => DoorError::BluetoothUnavailable,
            BleError::Timeout => DoorError::LockTimeout,
            BleError::ConnectFailed(reason) => DoorError::LockConnectionFailed { reason },
            BleError::Disconnected => DoorError::LockConnectionFailed {
                reason: e.to_string(),
            },
            BleError::Other(reason) => DoorError::LockProtocol { reason },
        }
    }
}

impl From<ApiError> for DoorError {
    fn from(e: ApiError) -> DoorError {
        match e {
            ApiError::Offline(reason) => DoorError::Offline { reason },
            ApiError::Timeout => DoorError::Timeout,
            ApiError::SessionExpired => DoorError::SessionExpired,
            ApiError::Malformed(detail) => DoorError::Server {
                code: "malformed_response".into(),
                detail,
            },
            ApiError::Status { status, body } => match (status, body.code.as_str()) {
                (_, "not_shareable") => DoorError::NotShareable {
                    door_ids: body.door_ids.unwrap_or_default(),
                },
                (_, "doorcodes_disabled") => DoorError::DoorcodesNotShareable {
                    door_ids: body.door_ids.unwrap_or_default(),
                },
                (_, "device_limit") => DoorError::DeviceLimit {
                    limit: body.limit.unwrap_or_default(),
                },
                (422, _) | (409, _) | (404, _) => DoorError::InvalidInput {
                    field: body.field.unwrap_or_else(|| "request".into()),
                    reason: body.message,
                },
                (401, _) => DoorError::SessionExpired,
                (403, _) => DoorError::NotPermitted {
                    reason: body.message,
                },
                _ => DoorError::Server {
                    code: body.code,
                    detail: body.message,
                },
            },
        }
    }
}

impl From<DeviceError> for DoorError {
    fn from(e: DeviceError) -> DoorError {
        DoorError::DeviceKey {
            reason: e.to_string(),
        }
    }
}

// A foreign DeviceSigner that throws something undeclared still surfaces as a typed error.
impl From<uniffi::UnexpectedUniFFICallbackError> for DoorError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> DoorError {
        DoorError::DeviceKey { reason: e.reason }
    }
}
