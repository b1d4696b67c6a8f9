use ed25519_dalek::{SigningKey, VerifyingKey};
use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::*;
use crate::hpke::chacha_open;
use crate::padding::unpad;
use crate::stored::StoredStateError;

const CIRCLE: CircleId = [0x42; 16];
const NOW: u64 = 1_700_000_000_000;

fn sender_ik() -> VerifyingKey {
    SigningKey::from_bytes(&[1; 32]).verifying_key()
}

fn pair() -> (SenderKeyState, RemoteSenderKey) {
    let own =
        SenderKeyState::from_parts(CIRCLE, 3, sender_ik(), 0x1234_5678, &[7; 32], &[8; 32], NOW)
            .unwrap();
    let remote = RemoteSenderKey::new(&own.distribution(), sender_ik());
    (own, remote)
}

fn send_n(own: &mut SenderKeyState, n: u32) -> Vec<SenderKeyMessage> {
    (0..n)
        .map(|i| own.encrypt(format!("message {i}").as_bytes()).unwrap())
        .collect()
}

fn text(i: u32) -> Vec<u8> {
    format!("message {i}").into_bytes()
}

#[test]
fn messages_round_trip_in_order() {
    let (mut own, mut remote) = pair();
    for (i, message) in send_n(&mut own, 5).iter().enumerate() {
        let i = u32::try_from(i).unwrap();
        assert_eq!(message.iteration(), i);
        assert_eq!(remote.decrypt(message).unwrap(), text(i));
    }
    assert_eq!(remote.next_iteration(), 5);
    assert_eq!(remote.skipped_count(), 0);
}

#[test]
fn the_message_matches_the_design_formulas() {
    let (mut own, _) = pair();
    let keys = own.next_message_keys();
    let ad = own.associated_data(0);
    let message = own.encrypt(b"hello circle").unwrap();
    let expected_seed = crate::kdf::hmac_sha256(&[7; 32], &[0x01]);
    assert_eq!(keys.expose_seed(), &*expected_seed);
    let padded = chacha_open(keys.expose_key(), keys.nonce(), &ad, message.ciphertext()).unwrap();
    assert_eq!(padded.len(), 256);
    assert_eq!(unpad(&padded).unwrap(), b"hello circle");
    let mut signed = ad.to_vec();
    signed.extend_from_slice(message.ciphertext());
    let signature = ed25519_dalek::Signature::from_bytes(message.signature());
    let signing = SigningKey::from_bytes(&[8; 32]).verifying_key();
    signing.verify_strict(&signed, &signature).unwrap();
    // The second message uses CK_1 = HMAC(CK_0, 0x02).
    let ck1 = crate::kdf::hmac_sha256(&[7; 32], &[0x02]);
    assert_eq!(
        own.next_message_keys().expose_seed(),
        &*crate::kdf::hmac_sha256(&*ck1, &[0x01])
    );
}

#[test]
fn out_of_order_messages_all_decrypt_once() {
    let (mut own, mut remote) = pair();
    let messages = send_n(&mut own, 10);
    for i in [3u32, 0, 9, 1, 2, 8, 4, 7, 6, 5] {
        assert_eq!(
            remote.decrypt(&messages[i as usize]).unwrap(),
            text(i),
            "iteration {i}"
        );
    }
    assert_eq!(remote.skipped_count(), 0);
    for message in &messages {
        assert_eq!(
            remote.decrypt(message),
            Err(DecryptError::Duplicate {
                iteration: message.iteration()
            })
        );
    }
}

#[test]
fn a_duplicate_is_an_explicit_error_and_changes_nothing() {
    let (mut own, mut remote) = pair();
    let messages = send_n(&mut own, 3);
    remote.decrypt(&messages[2]).unwrap();
    let before = remote.to_bytes();
    assert_eq!(
        remote.decrypt(&messages[2]),
        Err(DecryptError::Duplicate { iteration: 2 })
    );
    assert_eq!(remote.to_bytes(), before);
    // The skipped ones still decrypt.
    assert_eq!(remote.decrypt(&messages[0]).unwrap(), text(0));
    assert_eq!(
        remote.decrypt(&messages[0]),
        Err(DecryptError::Duplicate { iteration: 0 })
    );
}

#[test]
fn a_jump_of_exactly_the_limit_is_allowed_and_one_more_is_not() {
    let (mut own, mut remote) = pair();
    let messages = send_n(&mut own, MAX_FORWARD_JUMP + 2);
    let too_far = &messages[(MAX_FORWARD_JUMP + 1) as usize];
    let before = remote.to_bytes();
    assert_eq!(
        remote.decrypt(too_far),
        Err(DecryptError::TooFarAhead {
            iteration: MAX_FORWARD_JUMP + 1,
            next: 0
        })
    );
    assert_eq!(remote.to_bytes(), before);
    let at_limit = &messages[MAX_FORWARD_JUMP as usize];
    assert_eq!(remote.decrypt(at_limit).unwrap(), text(MAX_FORWARD_JUMP));
    assert_eq!(remote.skipped_count(), MAX_FORWARD_JUMP as usize);
    assert_eq!(remote.decrypt(&messages[17]).unwrap(), text(17));
}

#[test]
fn the_oldest_skipped_seeds_are_dropped_beyond_the_bound() {
    let (mut own, mut remote) = pair();
    let messages = send_n(&mut own, 2 * MAX_FORWARD_JUMP + 2);
    remote
        .decrypt(&messages[MAX_FORWARD_JUMP as usize])
        .unwrap();
    remote
        .decrypt(&messages[(2 * MAX_FORWARD_JUMP + 1) as usize])
        .unwrap();
    assert_eq!(remote.skipped_count(), MAX_SKIPPED_KEYS);
    assert!(remote.decrypt(&messages[0]).is_err());
    assert_eq!(
        remote
            .decrypt(&messages[2 * MAX_FORWARD_JUMP as usize])
            .unwrap(),
        text(2 * MAX_FORWARD_JUMP)
    );
}

#[test]
fn a_bad_signature_is_rejected_with_the_state_unchanged() {
    let (mut own, mut remote) = pair();
    let messages = send_n(&mut own, 3);
    let before = remote.to_bytes();
    let mut forged = messages[2].clone();
    forged.signature[0] ^= 1;
    assert_eq!(remote.decrypt(&forged), Err(DecryptError::BadSignature));
    let mut altered = messages[2].clone();
    altered.ciphertext[0] ^= 1;
    assert_eq!(remote.decrypt(&altered), Err(DecryptError::BadSignature));
    assert_eq!(remote.to_bytes(), before);
    // A message signed by another key (say, a former member) is refused.
    let mut impostor =
        SenderKeyState::from_parts(CIRCLE, 3, sender_ik(), 0x1234_5678, &[7; 32], &[9; 32], NOW)
            .unwrap();
    assert_eq!(
        remote.decrypt(&impostor.encrypt(b"x").unwrap()),
        Err(DecryptError::BadSignature)
    );
    assert_eq!(remote.to_bytes(), before);
    assert_eq!(remote.decrypt(&messages[2]).unwrap(), text(2));
}

#[test]
fn the_sender_identity_is_bound_by_the_associated_data() {
    let (mut own, _) = pair();
    let other_ik = SigningKey::from_bytes(&[2; 32]).verifying_key();
    let mut remote = RemoteSenderKey::new(&own.distribution(), other_ik);
    let before = remote.to_bytes();
    assert_eq!(
        remote.decrypt(&own.encrypt(b"x").unwrap()),
        Err(DecryptError::BadSignature)
    );
    assert_eq!(remote.to_bytes(), before);
}

#[test]
fn a_signed_message_that_fails_decryption_changes_nothing() {
    // The signing key holder encrypts under a wrong chain key: the signature
    // verifies, the AEAD does not.
    let (_, mut remote) = pair();
    let mut liar =
        SenderKeyState::from_parts(CIRCLE, 3, sender_ik(), 0x1234_5678, &[6; 32], &[8; 32], NOW)
            .unwrap();
    let before = remote.to_bytes();
    liar.encrypt(b"a").unwrap();
    assert_eq!(
        remote.decrypt(&liar.encrypt(b"b").unwrap()),
        Err(DecryptError::Decrypt)
    );
    assert_eq!(remote.to_bytes(), before);
}

#[test]
fn messages_of_another_circle_epoch_or_chain_are_refused() {
    let (mut own, mut remote) = pair();
    let message = own.encrypt(b"x").unwrap();
    for change in 0..3 {
        let mut other = message.clone();
        match change {
            0 => other.circle_id[0] ^= 1,
            1 => other.epoch += 1,
            _ => other.chain_id ^= 1,
        }
        assert_eq!(remote.decrypt(&other), Err(DecryptError::ChainMismatch));
    }
}

#[test]
fn a_newcomer_cannot_read_earlier_messages() {
    let (mut own, _) = pair();
    let early = send_n(&mut own, 5);
    let mut newcomer = RemoteSenderKey::new(&own.distribution(), sender_ik());
    assert_eq!(newcomer.first_iteration(), 5);
    for message in &early {
        assert_eq!(
            newcomer.decrypt(message),
            Err(DecryptError::BeforeFirstIteration {
                iteration: message.iteration(),
                first: 5
            })
        );
    }
    // Even with the check bypassed, CK_5 derives nothing earlier: the
    // chain only runs forward.
    let ck5 = *newcomer.chain_key.expose();
    let mut ck = chain::ChainKey::from_bytes(&ck5);
    for _ in 0..20 {
        for message in &early {
            let keys = chain::MessageKeys::from_chain_seed(&ck.seed());
            let ad = own.associated_data(message.iteration());
            assert!(
                chacha_open(keys.expose_key(), keys.nonce(), &ad, message.ciphertext()).is_err()
            );
        }
        ck = ck.next();
    }
    let later = own.encrypt(b"welcome").unwrap();
    assert_eq!(newcomer.decrypt(&later).unwrap(), b"welcome");
}

#[test]
fn rotation_is_due_after_a_thousand_messages_or_seven_days() {
    let (mut own, _) = pair();
    assert!(!own.needs_rotation(NOW));
    assert!(!own.needs_rotation(NOW + ROTATE_AFTER_MS - 1));
    assert!(own.needs_rotation(NOW + ROTATE_AFTER_MS));
    assert!(
        !own.needs_rotation(NOW - 1),
        "a clock going back never forces rotation"
    );
    send_n(&mut own, ROTATE_AFTER_MESSAGES - 1);
    assert!(!own.needs_rotation(NOW));
    own.encrypt(b"x").unwrap();
    assert_eq!(own.messages_sent(), 1000);
    assert!(own.needs_rotation(NOW));
}

#[test]
fn fresh_keys_have_a_clear_top_bit_and_differ() {
    let mut rng = StdRng::seed_from_u64(5);
    for _ in 0..64 {
        let a = SenderKeyState::new(CIRCLE, 0, sender_ik(), NOW, &mut rng);
        assert_eq!(a.chain_id() & 0x8000_0000, 0);
    }
    let a = SenderKeyState::new(CIRCLE, 0, sender_ik(), NOW, &mut rng);
    let b = SenderKeyState::new(CIRCLE, 0, sender_ik(), NOW, &mut rng);
    assert_ne!(a.to_bytes(), b.to_bytes());
    assert_ne!(a.signing_public_key(), b.signing_public_key());
}

#[test]
fn a_chain_id_with_the_top_bit_is_caller_misuse() {
    let result =
        SenderKeyState::from_parts(CIRCLE, 0, sender_ik(), 0x8000_0001, &[0; 32], &[0; 32], NOW);
    assert_eq!(result.unwrap_err(), InvalidChainId(0x8000_0001));
}

#[test]
fn an_exhausted_chain_refuses_to_encrypt() {
    let (mut own, _) = pair();
    own.iteration = u32::MAX;
    assert_eq!(own.encrypt(b"x"), Err(EncryptError::ChainExhausted));
    assert_eq!(own.iteration(), u32::MAX);
    let (_, mut remote) = pair();
    let mut message = pair().0.encrypt(b"x").unwrap();
    message.iteration = u32::MAX;
    assert!(matches!(
        remote.decrypt(&message),
        Err(DecryptError::TooFarAhead { .. })
    ));
}

#[test]
fn oversized_plaintexts_are_refused() {
    let (mut own, _) = pair();
    let big = vec![0u8; MAX_PLAINTEXT_LEN + 1];
    assert_eq!(
        own.encrypt(&big),
        Err(EncryptError::PlaintextTooLong {
            len: MAX_PLAINTEXT_LEN + 1
        })
    );
    assert_eq!(own.iteration(), 0);
}

#[test]
fn states_survive_serialization() {
    let (mut own, mut remote) = pair();
    let messages = send_n(&mut own, 6);
    remote.decrypt(&messages[4]).unwrap();
    let own2 = SenderKeyState::from_bytes(&own.to_bytes()).unwrap();
    assert_eq!(own2.to_bytes(), own.to_bytes());
    let mut remote2 = RemoteSenderKey::from_bytes(&remote.to_bytes()).unwrap();
    assert_eq!(remote2.to_bytes(), remote.to_bytes());
    assert_eq!(remote2.decrypt(&messages[1]).unwrap(), text(1));
    let mut own2 = own2;
    assert_eq!(
        remote2
            .decrypt(&own2.encrypt(b"after reload").unwrap())
            .unwrap(),
        b"after reload"
    );
    let distribution = SenderKeyDistribution::from_bytes(&own.distribution().to_bytes()).unwrap();
    assert_eq!(distribution.to_bytes(), own.distribution().to_bytes());
    for message in &messages {
        assert_eq!(
            &SenderKeyMessage::from_bytes(&message.to_bytes()).unwrap(),
            message
        );
    }
}

fn with_version_2(bytes: &[u8]) -> Vec<u8> {
    let mut bytes = bytes.to_vec();
    bytes[0] = 2;
    bytes
}

fn decrypted_remote() -> (SenderKeyState, RemoteSenderKey, Vec<SenderKeyMessage>) {
    let (mut own, mut remote) = pair();
    let messages = send_n(&mut own, 3);
    remote.decrypt(&messages[2]).unwrap();
    (own, remote, messages)
}

#[test]
fn stored_state_decoders_refuse_bad_input() {
    let (own, remote, _) = decrypted_remote();
    let own_bytes = own.to_bytes();
    let remote_bytes = remote.to_bytes();
    assert_eq!(
        SenderKeyState::from_bytes(&with_version_2(&own_bytes)).err(),
        Some(StoredStateError::UnsupportedVersion(2))
    );
    assert_eq!(
        RemoteSenderKey::from_bytes(&with_version_2(&remote_bytes)).err(),
        Some(StoredStateError::UnsupportedVersion(2))
    );
    for bytes in [&own_bytes[..], &remote_bytes[..]] {
        for len in [0, 1, bytes.len() - 1] {
            assert!(SenderKeyState::from_bytes(&bytes[..len]).is_err());
            assert!(RemoteSenderKey::from_bytes(&bytes[..len]).is_err());
        }
    }
    let mut long = remote_bytes.to_vec();
    long.push(0);
    assert_eq!(
        RemoteSenderKey::from_bytes(&long).err(),
        Some(StoredStateError::TrailingBytes)
    );
    let huge = vec![1u8; RemoteSenderKey::MAX_ENCODED_LEN + 1];
    assert!(matches!(
        RemoteSenderKey::from_bytes(&huge),
        Err(StoredStateError::TooLarge { .. })
    ));
    // Chain id with its top bit set (offset: version, circle id, epoch, IK_sig).
    let mut bad = own_bytes.to_vec();
    bad[57] |= 0x80;
    assert_eq!(
        SenderKeyState::from_bytes(&bad).err(),
        Some(StoredStateError::InvalidField("chain_id"))
    );
    // A skipped iteration outside first..next is inconsistent.
    let mut bad = remote_bytes.to_vec();
    let entry = bad.len() - 36;
    bad[entry..entry + 4].copy_from_slice(&7u32.to_be_bytes());
    assert_eq!(
        RemoteSenderKey::from_bytes(&bad).err(),
        Some(StoredStateError::InvalidField("skipped"))
    );
}

#[test]
fn wire_decoders_refuse_bad_input() {
    let (own, _, messages) = decrypted_remote();
    let message_bytes = messages[0].to_bytes();
    let distribution = own.distribution().to_bytes();
    assert_eq!(
        SenderKeyMessage::from_bytes(&with_version_2(&message_bytes)).err(),
        Some(DecodeError::UnsupportedVersion)
    );
    assert_eq!(
        SenderKeyDistribution::from_bytes(&with_version_2(&distribution)).err(),
        Some(DecodeError::UnsupportedVersion)
    );
    for bytes in [&message_bytes[..], &distribution[..]] {
        for len in [0, 1, bytes.len() - 1] {
            assert!(SenderKeyMessage::from_bytes(&bytes[..len]).is_err());
            assert!(SenderKeyDistribution::from_bytes(&bytes[..len]).is_err());
        }
    }
    let huge = vec![1u8; SenderKeyMessage::MAX_LEN + 1];
    assert!(matches!(
        SenderKeyMessage::from_bytes(&huge),
        Err(DecodeError::WrongLength { .. })
    ));
    // A ciphertext of an impossible length.
    let mut short = message_bytes.clone();
    short.remove(40);
    assert!(matches!(
        SenderKeyMessage::from_bytes(&short),
        Err(DecodeError::BadCiphertextLength { .. })
    ));
    // A distribution with the identity point as signing key.
    let mut weak = distribution.to_vec();
    weak[65..].fill(0);
    weak[65] = 1;
    assert_eq!(
        SenderKeyDistribution::from_bytes(&weak).err(),
        Some(DecodeError::BadKey)
    );
}

#[test]
fn debug_never_prints_chain_keys() {
    let (own, remote) = pair();
    let shown = format!("{own:?} {remote:?} {:?}", own.distribution());
    assert!(shown.contains("<redacted>"));
    assert!(!shown.contains("[7, 7"), "{shown}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = SenderKeyState::from_bytes(&bytes);
        let _ = RemoteSenderKey::from_bytes(&bytes);
        let _ = SenderKeyMessage::from_bytes(&bytes);
        let _ = SenderKeyDistribution::from_bytes(&bytes);
    }

    #[test]
    fn any_delivery_order_decrypts_each_message_once(order in Just((0u32..12).collect::<Vec<_>>()).prop_shuffle()) {
        let (mut own, mut remote) = pair();
        let messages = send_n(&mut own, 12);
        for &i in &order {
            prop_assert_eq!(remote.decrypt(&messages[i as usize]).unwrap(), text(i));
        }
        for &i in &order {
            prop_assert_eq!(remote.decrypt(&messages[i as usize]), Err(DecryptError::Duplicate { iteration: i }));
        }
    }
}
