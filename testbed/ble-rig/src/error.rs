//! The rig's own errors, and the `org.bluez.Error.*` replies the fake sends to clients.

/// Errors from starting or steering a [`crate::FakeBluez`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid fake BlueZ configuration: {0}")]
    InvalidConfig(String),
    #[error("dbus-daemon: {0}")]
    Daemon(String),
    #[error("a FakeBluez is already running on this thread; only one runs per process at a time")]
    AlreadyRunning,
    #[error("no peripheral with address {0}")]
    UnknownPeripheral(String),
    #[error("the fake BlueZ's runtime stopped: {0}")]
    Runtime(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    DBus(#[from] zbus::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

/// Error replies with the names real BlueZ uses, so clients take the same error paths.
#[derive(Debug, zbus::DBusError)]
#[zbus(prefix = "org.bluez.Error")]
pub(crate) enum BluezError {
    #[zbus(error)]
    ZBus(zbus::Error),
    Failed(String),
    InProgress(String),
    NotReady(String),
    NotPermitted(String),
    NotSupported(String),
    DoesNotExist(String),
    InvalidArguments(String),
}

/// Replies of the calls a missing permission can refuse: BlueZ's own errors, or the denial the
/// bus sends when its policy does not let the client talk to BlueZ.
#[derive(Debug)]
pub(crate) enum CallError {
    Bluez(BluezError),
    Denied(zbus::fdo::Error),
}

impl CallError {
    /// What dbus-daemon answers for a call its policy rejects.
    pub(crate) fn access_denied() -> Self {
        Self::Denied(zbus::fdo::Error::AccessDenied(
            "Rejected send message: the bus policy does not allow this client to call org.bluez"
                .into(),
        ))
    }
}

impl zbus::DBusError for CallError {
    fn create_reply(&self, call: &zbus::message::Header<'_>) -> zbus::Result<zbus::Message> {
        match self {
            Self::Bluez(e) => e.create_reply(call),
            Self::Denied(e) => e.create_reply(call),
        }
    }

    fn name(&self) -> zbus::names::ErrorName<'_> {
        match self {
            Self::Bluez(e) => e.name(),
            Self::Denied(e) => e.name(),
        }
    }

    fn description(&self) -> Option<&str> {
        match self {
            Self::Bluez(e) => e.description(),
            Self::Denied(e) => e.description(),
        }
    }
}

impl From<BluezError> for CallError {
    fn from(error: BluezError) -> Self {
        Self::Bluez(error)
    }
}

impl From<zbus::Error> for CallError {
    fn from(error: zbus::Error) -> Self {
        Self::Bluez(BluezError::ZBus(error))
    }
}
