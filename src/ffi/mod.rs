//! The UniFFI edge: records, enums, the one error enum, objects and foreign traits.
//! Nothing here decides anything; it converts and delegates to the services.

mod ble;
mod cancel;
mod client;
mod door;
mod doors_watch;
mod error;
mod logs;
mod schedule;
mod signer;
mod time;

pub use ble::{lock_characteristic_uuid, lock_service_uuid, BleFailure, BleTransport};
pub use cancel::Cancellation;
pub use client::{
    Activity, ClientConfig, DoorClient, DoorEvent, EventListener, Guest, GuestDoorcode,
    GuestInvite, Person, ProximitySettings, RegisteredDevice, UnlockDenial, UnlockPhase,
    UnlockReceipt, UnlockTrigger,
};
pub use door::Door;
pub use doors_watch::{DoorsListener, DoorsWatch};
pub use error::DoorError;
pub use logs::{collected_logs, set_log_level, set_log_listener, LogLevel, LogListener, LogRecord};
pub use schedule::{AccessDecision, DoorSchedule, KeySchedule, ScheduleWindow, Weekday};
pub use signer::{ephemeral_device_signer, prove_device_possession, DeviceProof, DeviceSigner};

/// How many of the core's objects foreign code holds right now (leak checks in the
/// Kotlin and Swift suites compare it before and after).
#[uniffi::export]
pub fn live_objects() -> u64 {
    crate::live::live_objects()
}
