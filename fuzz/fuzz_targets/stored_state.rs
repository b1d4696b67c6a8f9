//! Every stored-state decoder: the first byte picks the type, the rest is
//! the stored layout. Nothing panics, and whatever decodes re-encodes to a
//! layout that decodes to the same layout again.
#![no_main]

use hearth_protocol::handshake::ReplayCache;
use hearth_protocol::keys::{IdentityKeyPair, OneTimePreKey, PqPreKey, SignedPreKey};
use hearth_protocol::ratchet::RatchetSession;
use hearth_protocol::sender_key::{RemoteSenderKey, SenderKeyState};
use hearth_protocol::stored::StoredStateError;
use libfuzzer_sys::fuzz_target;
use zeroize::Zeroizing;

/// Decodes `data`, and if that worked checks that re-encoding is stable.
fn check<T>(
    data: &[u8],
    from_bytes: impl Fn(&[u8]) -> Result<T, StoredStateError>,
    to_bytes: impl Fn(&T) -> Zeroizing<Vec<u8>>,
) {
    if let Ok(value) = from_bytes(data) {
        let encoded = to_bytes(&value);
        let again = from_bytes(&encoded).expect("a re-encoded state decodes");
        assert_eq!(to_bytes(&again), encoded);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, data)) = data.split_first() else {
        return;
    };
    match selector % 8 {
        0 => check(data, IdentityKeyPair::from_bytes, IdentityKeyPair::to_bytes),
        1 => check(data, SignedPreKey::from_bytes, SignedPreKey::to_bytes),
        2 => check(data, OneTimePreKey::from_bytes, OneTimePreKey::to_bytes),
        3 => check(data, PqPreKey::from_bytes, PqPreKey::to_bytes),
        4 => check(data, ReplayCache::from_bytes, ReplayCache::to_bytes),
        5 => check(data, RatchetSession::from_bytes, RatchetSession::to_bytes),
        6 => check(data, SenderKeyState::from_bytes, SenderKeyState::to_bytes),
        _ => check(data, RemoteSenderKey::from_bytes, RemoteSenderKey::to_bytes),
    }
});
