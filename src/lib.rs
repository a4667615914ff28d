//! door-core: the resident's "phone as key" core that Android and iOS apps embed through UniFFI.
//!
//! Internal services hold the logic and speak door-protocol's types; `ffi` is the thin edge
//! that converts to the records, enums and the one error enum the apps see.

pub mod access;
pub mod access_log;
mod alarm;
#[cfg(all(feature = "radio", target_os = "android"))]
mod android;
pub mod api;
pub mod ble;
pub mod client;
pub mod device;
pub mod diagnostics;
pub mod doors;
pub mod error;
mod ffi;
mod hands_free;
pub mod keystore;
mod live;
pub mod proximity;
pub mod signer;
pub mod store;
pub mod sync;
pub mod unlock;
pub mod unlock_slot;

/// door-protocol's published test-vector inputs, for unit tests that need signed documents.
#[cfg(test)]
#[path = "../protocol/tests/common/mod.rs"]
mod fixtures;

pub use ffi::*;

uniffi::setup_scaffolding!();
