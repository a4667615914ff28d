//! The one error enum apps see. Each variant is something an app can act on, with a message
//! a person can read; rich internal errors are flattened into it here.

use crate::access::AccessError;
use crate::device::DeviceError;
use door_protocol::schedule::ScheduleError;

#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum DoorError {
    /// A value the app passed is not acceptable; `field` names it (a path such as
    /// `windows[1].end_minute`), `reason` says why.
    #[error("{field} {reason}")]
    InvalidInput { field: String, reason: String },
    /// The device key could not be used or gave an unusable answer (a hardware keystore that
    /// refused, a user who cancelled, a signature that does not verify).
    #[error("the device key could not be used: {reason}")]
    DeviceKey { reason: String },
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
