//! Every frame decoder the relay and its clients run on untrusted bytes.
#![no_main]

use hearth_proto::relay as pb;
use hearth_protocol::frame;
use libfuzzer_sys::fuzz_target;

const LIMIT: usize = 256 * 1024;

fuzz_target!(|data: &[u8]| {
    if let Ok((payload, used)) = frame::decode(data, LIMIT) {
        assert!(payload.len() <= LIMIT && used <= data.len());
    }
    let _ = frame::decode_message::<pb::Request>(data, LIMIT);
    let _ = frame::decode_message::<pb::Response>(data, LIMIT);
    let _ = frame::decode_message::<pb::Delivery>(data, LIMIT);
    // A tiny limit must never let a larger payload through.
    if let Ok((payload, _)) = frame::decode(data, 16) {
        assert!(payload.len() <= 16);
    }
});
