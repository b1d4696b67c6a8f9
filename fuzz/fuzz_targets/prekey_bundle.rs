//! Fetched prekey bundles: the input is read as up to three frames (signed
//! bundle, then an optional one-time prekey, then the ML-KEM prekey), each
//! decoded alone and together with signature validation. Nothing panics,
//! and what decodes re-encodes to an equal value.
#![no_main]

use hearth_protocol::{frame, wire};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let pieces = split_frames(data);
    for piece in &pieces {
        if let Ok(signed) = wire::decode_signed_bundle(piece) {
            let again = wire::decode_signed_bundle(&wire::encode_signed_bundle(&signed));
            assert_eq!(again, Ok(signed));
        }
        if let Ok(opk) = wire::decode_one_time_prekey(piece) {
            let again = wire::decode_one_time_prekey(&wire::encode_one_time_prekey(&opk));
            assert_eq!(again, Ok(opk));
        }
        if let Ok(pq) = wire::decode_pq_prekey(piece) {
            let again = wire::decode_pq_prekey(&wire::encode_pq_prekey(&pq));
            assert_eq!(again.as_ref(), Ok(&pq));
        }
    }
    let bundle = match pieces.as_slice() {
        [signed, pq] => wire::decode_prekey_bundle(signed, None, pq),
        [signed, opk, pq] => wire::decode_prekey_bundle(signed, Some(opk), pq),
        _ => return,
    };
    if let Ok(bundle) = bundle {
        assert!(bundle.validate().is_ok());
    }
});

/// Up to three consecutive frames (prefix included), as the relay returns
/// the pieces.
fn split_frames(mut data: &[u8]) -> Vec<&[u8]> {
    let mut pieces = Vec::new();
    while pieces.len() < 3 {
        let Ok((_, used)) = frame::decode(data, 4096) else {
            break;
        };
        let (piece, rest) = data.split_at(used);
        pieces.push(piece);
        data = rest;
    }
    pieces
}
