//! Instants cross the boundary as `SystemTime` (java.time.Instant in Kotlin, Date in Swift)
//! and are whole Unix seconds inside.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use door_protocol::UnixTime;

use super::DoorError;

pub(crate) fn to_unix(t: SystemTime, field: &str) -> Result<UnixTime, DoorError> {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map_err(|_| DoorError::invalid(field, "is before 1970-01-01T00:00:00Z"))?
        .as_secs();
    UnixTime::try_from(secs).map_err(|_| DoorError::invalid(field, "is too far in the future"))
}

pub(crate) fn from_unix(t: UnixTime) -> SystemTime {
    match u64::try_from(t) {
        Ok(secs) => UNIX_EPOCH + Duration::from_secs(secs),
        Err(_) => UNIX_EPOCH - Duration::from_secs(t.unsigned_abs()),
    }
}

pub(crate) fn now() -> UnixTime {
    // The clock before 1970 would be a broken device; treating it as the epoch keeps every
    // decision well-defined (and conservative: schedules show as not yet valid).
    to_unix(SystemTime::now(), "now").unwrap_or(0)
}
