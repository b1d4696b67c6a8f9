//! Circle messages and sender-key distributions, both as protobuf frames
//! and as their fixed layouts: decoding never panics, fixed layouts are
//! canonical, and a fixed receiver refuses forgeries without changing.
#![no_main]

use ed25519_dalek::SigningKey;
use hearth_protocol::sender_key::{
    RemoteSenderKey, SenderKeyDistribution, SenderKeyMessage, SenderKeyState,
};
use hearth_protocol::wire;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = wire::decode_sender_key_message(data) {
        let again = wire::decode_sender_key_message(&wire::encode_sender_key_message(&message));
        assert_eq!(again.as_ref(), Ok(&message));
        check_receiver(&message);
    }
    if let Ok(message) = SenderKeyMessage::from_bytes(data) {
        assert_eq!(message.to_bytes(), data);
        check_receiver(&message);
    }
    if let Ok(distribution) = wire::decode_sender_key_distribution(data) {
        let encoded = wire::encode_sender_key_distribution(&distribution);
        let again = wire::decode_sender_key_distribution(&encoded).expect("re-encoded decodes");
        assert_eq!(again.to_bytes(), distribution.to_bytes());
    }
    if let Ok(distribution) = SenderKeyDistribution::from_bytes(data) {
        assert_eq!(&distribution.to_bytes()[..], data);
    }
});

/// A receiver of a fixed chain: whatever arrives, a failure changes nothing.
fn check_receiver(message: &SenderKeyMessage) {
    let ik_sig = SigningKey::from_bytes(&[1; 32]).verifying_key();
    let own = SenderKeyState::from_parts(
        *message.circle_id(),
        message.epoch(),
        ik_sig,
        message.chain_id(),
        &[2; 32],
        &[3; 32],
        0,
    )
    .expect("decoded chain ids are valid");
    let mut remote = RemoteSenderKey::new(&own.distribution(), ik_sig);
    let before = remote.to_bytes();
    if remote.decrypt(message).is_err() {
        assert_eq!(
            remote.to_bytes(),
            before,
            "a failed decryption changed the receiver"
        );
    }
}
