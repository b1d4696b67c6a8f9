//! Alice's first message as Bob receives it: decoding never panics, and what
//! decodes re-encodes to an equal message.
#![no_main]

use hearth_protocol::wire;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = wire::decode_prekey_message(data) {
        let again = wire::decode_prekey_message(&wire::encode_prekey_message(&message));
        assert_eq!(again.as_ref(), Ok(&message));
    }
});
