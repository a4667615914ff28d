//! Log forwarding across the boundary, in the manner of application-services'
//! rust-log-forwarder: the app sets a level, may install a listener that hands each record to
//! Logcat or os_log, and can read the newest records back (for "send logs to support").
//! The records never carry secrets (diagnostics.rs).

use std::sync::Arc;
use std::time::SystemTime;

use tracing::Level;

use crate::diagnostics::{self, Record};

#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

/// One record of the core's log.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct LogRecord {
    pub at: SystemTime,
    pub level: LogLevel,
    /// The core's module that logged, e.g. "door_core::client".
    pub target: String,
    /// The message, then its fields as ` name=value`, after the spans it happened in.
    pub message: String,
}

/// Receives each record at or above the level, on the thread that logged it: hand it on
/// (Logcat, os_log) and return quickly.
#[uniffi::export(foreign)]
pub trait LogListener: Send + Sync {
    fn on_log(&self, record: LogRecord);
}

/// Records below `level` are neither collected nor forwarded. Info until set.
#[uniffi::export]
pub fn set_log_level(level: LogLevel) {
    diagnostics::install().set_level(match level {
        LogLevel::Error => Level::ERROR,
        LogLevel::Warn => Level::WARN,
        LogLevel::Info => Level::INFO,
        LogLevel::Debug => Level::DEBUG,
        LogLevel::Trace => Level::TRACE,
    });
}

/// Installs the listener that receives every record from now on; `None` removes it.
#[uniffi::export]
pub fn set_log_listener(listener: Option<Arc<dyn LogListener>>) {
    diagnostics::install().set_listener(
        listener.map(|l| {
            Arc::new(move |r: &Record| l.on_log(r.clone().into())) as diagnostics::Listener
        }),
    );
}

/// The newest records (up to 512), oldest first.
#[uniffi::export]
pub fn collected_logs() -> Vec<LogRecord> {
    diagnostics::install()
        .records()
        .into_iter()
        .map(LogRecord::from)
        .collect()
}

impl From<Record> for LogRecord {
    fn from(r: Record) -> LogRecord {
        LogRecord {
            at: r.at,
            level: match r.level {
                Level::ERROR => LogLevel::Error,
                Level::WARN => LogLevel::Warn,
                Level::INFO => LogLevel::Info,
                Level::DEBUG => LogLevel::Debug,
                _ => LogLevel::Trace,
            },
            target: r.target,
            message: r.message,
        }
    }
}
