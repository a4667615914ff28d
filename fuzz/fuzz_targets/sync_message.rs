//! Door Sync message bodies: `SyncMessage::from_message` for any type and body; whatever it
//! reads must encode back to the same message.
//!
//! Input: the message type byte, then the body.
#![no_main]

use door_protocol::sync::{FailReason, SyncMessage};
use door_protocol::Message;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&kind, body)) = data.split_first() else {
        return;
    };
    let message = Message {
        kind,
        body: body.to_vec(),
    };
    if let Ok(parsed) = SyncMessage::from_message(&message) {
        assert!(SyncMessage::is_sync_kind(kind));
        assert_eq!(parsed.to_message(), message);
    }
    if let Some(reason) = body.first().and_then(|&b| FailReason::from_u8(b)) {
        assert_eq!(reason as u8, body[0]);
    }
});
