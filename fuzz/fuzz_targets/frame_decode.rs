//! Every frame decoder the relay and its clients run on untrusted bytes: one
//! frame at a time, and a long-lived stream (control or delivery stream) split
//! into frames as its bytes arrive in arbitrary pieces.
#![no_main]

use hearth_proto::relay as pb;
use hearth_protocol::frame::{self, FrameSplitter};
use libfuzzer_sys::fuzz_target;
use prost::Message as _;

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
    // The stream split in pieces whose sizes the input's first byte picks:
    // the same frames as decoding them one after another.
    let Some((&cut, stream)) = data.split_first() else {
        return;
    };
    let cut = usize::from(cut % 64) + 1;
    let mut splitter = FrameSplitter::new(64);
    let mut split = Vec::new();
    'pieces: for piece in stream.chunks(cut) {
        splitter.push(piece);
        loop {
            match splitter.next_frame() {
                Ok(Some(frame)) => {
                    assert!(frame.len() <= 64);
                    let _ = pb::Request::decode(frame.clone());
                    let _ = pb::Delivery::decode(frame.clone());
                    split.push(frame);
                }
                Ok(None) => break,
                Err(_) => break 'pieces,
            }
        }
        assert!(splitter.buffered() <= 64 + 2 * frame::MAX_PREFIX_LEN + cut);
    }
    let mut rest = stream;
    let mut whole = Vec::new();
    while let Ok((payload, used)) = frame::decode(rest, 64) {
        whole.push(payload);
        rest = &rest[used..];
    }
    assert_eq!(split.len(), whole.len());
    assert!(split.iter().zip(&whole).all(|(a, b)| a.as_ref() == *b));
});
