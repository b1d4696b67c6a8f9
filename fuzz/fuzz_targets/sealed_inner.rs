//! The inner message of a sealed body (sender certificate plus a prekey,
//! ratchet or circle message), and the body itself under a fixed key:
//! nothing panics, and what decodes re-encodes to an equal message.
#![no_main]

use hearth_protocol::sealed::{self, BodyKey};
use hearth_protocol::wire;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(inner) = wire::decode_sealed_inner(data) {
        let again = wire::decode_sealed_inner(&wire::encode_sealed_inner(&inner));
        assert_eq!(again.as_ref(), Ok(&inner));
    }
    let key = BodyKey::from_bytes([9; 32]);
    let _ = sealed::open_body(&key, &sealed::body_hash(data), data);
});
