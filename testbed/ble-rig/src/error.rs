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
