//! Sealed-sender headers: parsing and opening with a fixed device key never
//! panic, and a parsed header keeps its bytes.
#![no_main]

use hearth_protocol::sealed::{self, SealedHeader};
use libfuzzer_sys::fuzz_target;
use x25519_dalek::StaticSecret;

fuzz_target!(|data: &[u8]| {
    if let Ok(header) = SealedHeader::from_slice(data) {
        assert_eq!(&header.as_bytes()[..], data);
    }
    let device = StaticSecret::from([0x42; 32]);
    if let Ok((key, hash)) = sealed::open_header(&device, &[7; 32], data) {
        // Only a header sealed to this device and mailbox opens.
        let _ = sealed::open_body(&key, &hash, data);
    }
});
