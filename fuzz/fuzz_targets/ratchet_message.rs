//! Ratchet messages: decoding never panics, and decrypting whatever decodes
//! with a fixed session either fails without changing the session or (only
//! for a genuine message) succeeds.
#![no_main]

use hearth_protocol::handshake::{AssociatedData, SessionKey};
use hearth_protocol::keys::{IdentityKeyPair, X25519KeyPair};
use hearth_protocol::ratchet::{FixedRatchetKeys, RatchetSession};
use hearth_protocol::wire;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(message) = wire::decode_ratchet_message(data) else {
        return;
    };
    let again = wire::decode_ratchet_message(&wire::encode_ratchet_message(&message));
    assert_eq!(again.as_ref(), Ok(&message));

    let alice = IdentityKeyPair::from_secrets(&[1; 32], &[2; 32]);
    let bob = IdentityKeyPair::from_secrets(&[3; 32], &[4; 32]);
    let ad = AssociatedData::new(alice.public(), bob.public());
    let spk = X25519KeyPair::from_private_bytes(&[5; 32]);
    let mut session = RatchetSession::init_bob(&SessionKey::from_bytes(&[6; 32]), ad, &spk);
    let before = session.to_bytes();
    let mut keys = FixedRatchetKeys::new([&[7; 32]]);
    if session.decrypt(&message, &mut keys).is_err() {
        assert_eq!(
            session.to_bytes(),
            before,
            "a failed decryption changed the session"
        );
    }
});
