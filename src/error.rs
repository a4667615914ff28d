//! The core's own error, rich enough for logs and tests; the FFI edge flattens it into
//! `DoorError`.

use door_protocol::UnixTime;

use door_protocol::unlock::DenyReason;

use crate::api::ApiError;
use crate::ble::BleError;
use crate::doors::DoorsError;
use crate::keystore::KeystoreError;
use crate::store::StoreError;

#[derive(Debug, Clone, thiserror::Error)]
pub enum CoreError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Store(StoreError),
    #[error(transparent)]
    Keystore(#[from] KeystoreError),
    #[error("the server sent doors that do not check out: {0}")]
    BadDoors(#[from] DoorsError),
    #[error("nobody is signed in")]
    NotSignedIn,
    #[error("{field} {reason}")]
    InvalidInput { field: String, reason: String },
    #[error("out of schedule")]
    OutOfSchedule { next_allowed: Option<UnixTime> },
    #[error("the device key could not be used: {0}")]
    DeviceKey(String),
    #[error("the lock refused: {0}")]
    Denied(DenyReason),
    #[error(transparent)]
    Ble(#[from] BleError),
    #[error("the lock did not prove it is the lock the server named")]
    NotGenuine,
    #[error("the exchange with the lock failed: {0}")]
    Protocol(String),
    #[error("the cached door is damaged: {0}")]
    Cache(String),
    /// An unlock runs already (on `door_id`); one at a time per client.
    #[error("an unlock of door {door_id} is under way")]
    UnlockInProgress { door_id: String },
    /// Stopped before the end: the app cancelled, or an explicit unlock took the radio from
    /// a hands-free one.
    #[error("cancelled")]
    Cancelled,
}

/// Every store failure the core meets passes here, so it is logged once, where it happens.
/// Its message names tables and columns, never stored values.
impl From<StoreError> for CoreError {
    fn from(e: StoreError) -> CoreError {
        tracing::error!(error = %e, "local store failed");
        CoreError::Store(e)
    }
}

impl CoreError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> CoreError {
        CoreError::InvalidInput {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

pub type CoreResult<T> = Result<T, CoreError>;
