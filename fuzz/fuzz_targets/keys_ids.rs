//! The small parsers: issuer and lock public keys from SEC1 bytes, ids from bytes and from
//! hex. A key that parses has one compressed form, which parses back to the same key.
#![no_main]

use door_protocol::{Id, IssuerKeys, IssuerPublicKey, LockPublicKey};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(key) = IssuerPublicKey::from_sec1(data) {
        let again = IssuerPublicKey::from_sec1(&key.to_sec1_compressed());
        assert_eq!(again, Ok(key));
        let mut keys = IssuerKeys::single(key);
        assert_eq!(keys.insert(key), Ok(()));
        assert_eq!(keys.len(), 1);
    }
    if let Ok(key) = LockPublicKey::from_sec1(data) {
        let again = LockPublicKey::from_sec1(&key.to_sec1_compressed());
        assert_eq!(again, Ok(key));
    }
    assert_eq!(Id::from_slice(data).is_some(), data.len() == Id::LEN);
    if let Some(id) = std::str::from_utf8(data).ok().and_then(Id::from_hex) {
        assert!(id
            .to_string()
            .eq_ignore_ascii_case(std::str::from_utf8(data).unwrap()));
    }
});
