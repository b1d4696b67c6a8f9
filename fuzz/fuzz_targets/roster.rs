//! Roster decoding: `SignedRoster::from_bytes` and `RosterChain::from_bytes`
//! never panic. The input is also signed with a fixed key, so the field
//! parser behind the signature check sees it too. Whatever parses encodes
//! back to the same bytes and survives a round trip as a stored chain.
#![no_main]

use ed25519_dalek::{Signer, SigningKey};
use hearth_client::circles::roster::{RosterChain, SignedRoster};
use libfuzzer_sys::fuzz_target;

fn check(bytes: &[u8]) {
    if let Ok(version) = SignedRoster::from_bytes(bytes) {
        assert_eq!(version.to_bytes(), bytes);
        let chain = RosterChain::new(version);
        let stored = RosterChain::from_bytes(&chain.to_bytes()).expect("a stored chain reads back");
        assert_eq!(stored, chain);
    }
    let _ = RosterChain::from_bytes(bytes);
}

fuzz_target!(|data: &[u8]| {
    check(data);
    // `data ‖ Encode(key) ‖ signature`: a layout with a valid signature.
    let key = SigningKey::from_bytes(&[7; 32]);
    let mut signed = data.to_vec();
    signed.push(0x02);
    signed.extend_from_slice(key.verifying_key().as_bytes());
    let signature = key.sign(&signed);
    signed.extend_from_slice(&signature.to_bytes());
    check(&signed);
});
