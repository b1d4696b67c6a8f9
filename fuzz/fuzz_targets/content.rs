//! Message content (`content.proto`) as a receiver decodes it: nothing
//! panics, and whatever decodes as content people see encodes back to
//! the same content (sending and receiving validate alike).
#![no_main]

use hearth_client::circles::feed::fuzz_content_decode;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    assert!(fuzz_content_decode(data));
});
