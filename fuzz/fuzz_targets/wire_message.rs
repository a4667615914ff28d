//! The chunk framing both sides reassemble with: `Reassembler::push` over a sequence of
//! chunks; every message it completes must survive `Message::fragments` and reassembly again.
//!
//! Input: the ATT MTU (u16), then length-prefixed chunks (see `blob`).
#![no_main]

use arbitrary::Unstructured;
use door_protocol::wire::{
    ErrorCode, Message, Reassembler, ATT_HEADER, MAX_ATT_MTU, MAX_BODY, MIN_ATT_MTU,
};
use door_protocol_fuzz::blob;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(mtu) = u.arbitrary::<u16>() else {
        return;
    };
    let mut rx = Reassembler::new();
    while !u.is_empty() {
        let Ok(chunk) = blob(&mut u) else {
            break;
        };
        let Ok(Some(message)) = rx.push(chunk) else {
            continue;
        };
        assert!(!rx.in_progress());
        assert!(message.body.len() <= MAX_BODY);
        round_trip(&message, mtu);
        if let Some(code) = message.body.first().and_then(|&b| ErrorCode::from_u8(b)) {
            assert_eq!(code.message().body, [code as u8]);
        }
    }
});

fn round_trip(message: &Message, mtu: u16) {
    let again = Message::new(message.kind, message.body.clone()).expect("reassembled bodies fit");
    let chunks = again.fragments(mtu);
    let max = usize::from(mtu.clamp(MIN_ATT_MTU, MAX_ATT_MTU)) - ATT_HEADER;
    let mut rx = Reassembler::new();
    let (last, init) = chunks
        .split_last()
        .expect("a message is at least one chunk");
    for c in init {
        assert!(c.len() <= max);
        assert_eq!(rx.push(c), Ok(None));
    }
    assert!(last.len() <= max);
    assert_eq!(rx.push(last), Ok(Some(message.clone())));
}
