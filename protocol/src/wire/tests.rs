//! Property tests: every message type round-trips, and no input makes any
//! decoder panic.

use ed25519_dalek::SigningKey;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

use super::*;
use crate::handshake::{KemCiphertext, SessionInit};
use crate::keys::{IdentityKeyPair, PqPreKey, PublicIdentity, SignedPreKey};
use crate::sender_key::VERSION;

fn public_identity() -> impl Strategy<Value = PublicIdentity> {
    any::<([u8; 32], [u8; 32])>()
        .prop_map(|(sig, dh)| *IdentityKeyPair::from_secrets(&sig, &dh).public())
}

fn signed_bundle() -> impl Strategy<Value = SignedBundle> {
    any::<([u8; 32], [u8; 32], u32, [u8; 32])>().prop_map(|(sig, dh, id, spk)| {
        let identity = IdentityKeyPair::from_secrets(&sig, &dh);
        SignedBundle::new(
            &identity,
            &SignedPreKey::from_private_bytes(id, &identity, &spk),
        )
    })
}

fn one_time_prekey() -> impl Strategy<Value = OneTimePreKeyPublic> {
    any::<(u32, [u8; 32])>().prop_map(|(id, key)| OneTimePreKeyPublic {
        id,
        key: X25519PublicKey::from_bytes(key),
    })
}

fn pq_prekey() -> impl Strategy<Value = PqPreKeyPublic> {
    any::<(u32, bool, [u8; 32], [u8; 32], [u8; 32])>().prop_map(|(id, last, sig, d, z)| {
        let identity = IdentityKeyPair::from_secrets(&sig, &[1; 32]);
        let seed: [u8; 64] = [d, z].concat().try_into().unwrap_or([0; 64]);
        PqPreKey::from_seed(id, last, &identity, &seed).public()
    })
}

/// Ciphertext ‖ tag of a padded plaintext in one of the smaller buckets.
fn ciphertext() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![Just(256usize), Just(512), Just(1024), Just(4096)]
        .prop_flat_map(|padded| vec(any::<u8>(), padded + TAG_LEN))
}

fn ratchet_message() -> impl Strategy<Value = RatchetMessage> {
    (any::<([u8; 32], u32, u32)>(), ciphertext()).prop_map(|((key, pn, n), ciphertext)| {
        RatchetMessage {
            header: Header {
                ratchet_key: X25519PublicKey::from_bytes(key),
                pn,
                n,
            },
            ciphertext,
        }
    })
}

fn prekey_message() -> impl Strategy<Value = PreKeyMessage> {
    let ids = any::<(u32, Option<u32>, u32)>();
    let kem = vec(any::<u8>(), KEM_CIPHERTEXT_LEN);
    (
        public_identity(),
        any::<[u8; 32]>(),
        ids,
        kem,
        ratchet_message(),
    )
        .prop_map(
            |(initiator, ephemeral, (spk, opk, pq), kem, message)| PreKeyMessage {
                init: SessionInit {
                    initiator,
                    ephemeral: X25519PublicKey::from_bytes(ephemeral),
                    signed_prekey_id: spk,
                    one_time_prekey_id: opk,
                    pq_prekey_id: pq,
                    kem_ciphertext: KemCiphertext::from_bytes(&kem)
                        .unwrap_or_else(|_| unreachable!()),
                },
                message,
            },
        )
}

/// `version ‖ circle_id ‖ epoch ‖ chain_id ‖ iteration`.
fn group_prefix(circle: [u8; 16], epoch: u64, chain_id: u32, iteration: u32) -> Vec<u8> {
    let mut out = vec![VERSION];
    out.extend_from_slice(&circle);
    out.extend_from_slice(&epoch.to_be_bytes());
    out.extend_from_slice(&(chain_id & 0x7FFF_FFFF).to_be_bytes());
    out.extend_from_slice(&iteration.to_be_bytes());
    out
}

fn sender_key_message() -> impl Strategy<Value = SenderKeyMessage> {
    let fields = any::<([u8; 16], u64, u32, u32, [u8; 32], [u8; 32])>();
    (fields, ciphertext()).prop_map(|((circle, epoch, chain, it, s1, s2), ct)| {
        let mut layout = group_prefix(circle, epoch, chain, it);
        layout.extend_from_slice(&ct);
        layout.extend_from_slice(&s1);
        layout.extend_from_slice(&s2);
        SenderKeyMessage::from_bytes(&layout).unwrap_or_else(|e| panic!("{e}"))
    })
}

fn distribution() -> impl Strategy<Value = SenderKeyDistribution> {
    any::<([u8; 16], u64, u32, u32, [u8; 32], [u8; 32])>().prop_map(
        |(circle, epoch, chain, it, ck, seed)| {
            let mut layout = group_prefix(circle, epoch, chain, it);
            layout.extend_from_slice(&ck);
            layout.extend_from_slice(SigningKey::from_bytes(&seed).verifying_key().as_bytes());
            SenderKeyDistribution::from_bytes(&layout).unwrap_or_else(|e| panic!("{e}"))
        },
    )
}

fn sealed_inner() -> impl Strategy<Value = SealedInner> {
    let other = (
        public_identity(),
        ratchet_message(),
        sender_key_message(),
        any::<bool>(),
    )
        .prop_map(|(identity, ratchet, group, pick)| SealedInner {
            sender: SenderCertificate::of(&identity),
            message: if pick {
                InnerMessage::Ratchet(ratchet)
            } else {
                InnerMessage::SenderKey(group)
            },
        });
    let first = prekey_message().prop_map(|prekey| SealedInner {
        sender: SenderCertificate::of(&prekey.init.initiator),
        message: InnerMessage::PreKey(prekey),
    });
    prop_oneof![other, first]
}

/// One value of `strategy`, the same on every run.
fn sample<S: Strategy>(strategy: S) -> S::Value {
    let mut runner = TestRunner::deterministic();
    strategy.new_tree(&mut runner).unwrap().current()
}

/// Runs every decoder on `input`; none may panic.
fn decode_everything(input: &[u8]) {
    let _ = decode_signed_bundle(input);
    let _ = decode_one_time_prekey(input);
    let _ = decode_pq_prekey(input);
    let _ = decode_prekey_bundle(input, Some(input), input);
    let _ = decode_ratchet_message(input);
    let _ = decode_prekey_message(input);
    let _ = decode_sender_key_message(input);
    let _ = decode_sender_key_distribution(input);
    let _ = decode_sealed_inner(input);
}

/// Applies `edits` (position, new byte) and cuts the result at `cut`.
fn mutate(mut bytes: Vec<u8>, edits: &[(usize, u8)], cut: usize) -> Vec<u8> {
    if !bytes.is_empty() {
        for &(at, byte) in edits {
            let at = at % bytes.len();
            bytes[at] = byte;
        }
    }
    bytes.truncate(cut);
    bytes
}

#[test]
fn the_inner_message_of_a_first_message_must_name_its_initiator() {
    let prekey = sample(prekey_message());
    let stranger = IdentityKeyPair::from_secrets(&[0x51; 32], &[0x52; 32]);
    let inner = SealedInner {
        sender: SenderCertificate::of(stranger.public()),
        message: InnerMessage::PreKey(prekey.clone()),
    };
    assert_eq!(
        decode_sealed_inner(&encode_sealed_inner(&inner)),
        Err(WireError::SenderMismatch)
    );
    let honest = SealedInner {
        sender: SenderCertificate::of(&prekey.init.initiator),
        ..inner
    };
    assert_eq!(
        decode_sealed_inner(&encode_sealed_inner(&honest)),
        Ok(honest)
    );
}

#[test]
fn the_largest_valid_messages_fit_their_limits() {
    let mut prekey = sample(prekey_message());
    prekey.init.signed_prekey_id = u32::MAX;
    prekey.init.one_time_prekey_id = Some(u32::MAX);
    prekey.init.pq_prekey_id = u32::MAX;
    prekey.message.header.pn = u32::MAX;
    prekey.message.header.n = u32::MAX;
    prekey.message.ciphertext = vec![0xFF; MAX_RATCHET_CIPHERTEXT_LEN];
    let inner = SealedInner {
        sender: SenderCertificate::of(&prekey.init.initiator),
        message: InnerMessage::PreKey(prekey.clone()),
    };
    let encoded = encode_sealed_inner(&inner);
    assert!(
        crate::sealed::seal_body_with_key(&crate::sealed::BodyKey::from_bytes([1; 32]), &encoded)
            .is_ok()
    );
    assert_eq!(decode_sealed_inner(&encoded), Ok(inner));
    assert_eq!(
        decode_prekey_message(&encode_prekey_message(&prekey)),
        Ok(prekey)
    );

    let mut layout = group_prefix([0xFF; 16], u64::MAX, u32::MAX, u32::MAX);
    layout.extend_from_slice(&vec![0xFF; crate::sender_key::MAX_PADDED_LEN + TAG_LEN]);
    layout.extend_from_slice(&[0xFF; 64]);
    let group = SenderKeyMessage::from_bytes(&layout).unwrap();
    assert_eq!(
        decode_sender_key_message(&encode_sender_key_message(&group)),
        Ok(group)
    );

    let mut pq = sample(pq_prekey());
    (pq.id, pq.last_resort) = (u32::MAX, true);
    assert_eq!(decode_pq_prekey(&encode_pq_prekey(&pq)), Ok(pq));
}

#[test]
fn a_declared_length_over_the_limit_is_refused_before_the_payload() {
    let mut over = Vec::new();
    prost::encoding::encode_varint((ONE_TIME_PREKEY_MAX_LEN + 1) as u64, &mut over);
    assert!(matches!(
        decode_one_time_prekey(&over),
        Err(WireError::Frame(FrameError::TooLarge { .. }))
    ));
}

#[test]
fn trailing_bytes_after_the_frame_are_refused() {
    let mut bytes = encode_one_time_prekey(&OneTimePreKeyPublic {
        id: 1,
        key: X25519PublicKey::from_bytes([1; 32]),
    });
    bytes.push(0);
    assert_eq!(
        decode_one_time_prekey(&bytes),
        Err(WireError::Frame(FrameError::TrailingBytes(1)))
    );
}

#[test]
fn errors_never_show_content() {
    let mut message = pb::PrekeyMessage::from(&sample(prekey_message()));
    message.kem_ciphertext = vec![0xEE; 17];
    let error = decode_prekey_message(&frame::encode_message(&message)).unwrap_err();
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains("ee") && !shown.contains("238"), "{shown}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn signed_bundles_round_trip(bundle in signed_bundle()) {
        prop_assert_eq!(decode_signed_bundle(&encode_signed_bundle(&bundle)), Ok(bundle));
    }

    #[test]
    fn one_time_prekeys_round_trip(prekey in one_time_prekey()) {
        prop_assert_eq!(decode_one_time_prekey(&encode_one_time_prekey(&prekey)), Ok(prekey));
    }

    #[test]
    fn pq_prekeys_round_trip(prekey in pq_prekey()) {
        prop_assert_eq!(decode_pq_prekey(&encode_pq_prekey(&prekey)), Ok(prekey));
    }

    #[test]
    fn ratchet_messages_round_trip(message in ratchet_message()) {
        prop_assert_eq!(decode_ratchet_message(&encode_ratchet_message(&message)), Ok(message));
    }

    #[test]
    fn prekey_messages_round_trip(message in prekey_message()) {
        prop_assert_eq!(decode_prekey_message(&encode_prekey_message(&message)), Ok(message));
    }

    #[test]
    fn sender_key_messages_round_trip(message in sender_key_message()) {
        let encoded = encode_sender_key_message(&message);
        prop_assert_eq!(decode_sender_key_message(&encoded), Ok(message));
    }

    #[test]
    fn distributions_round_trip(distribution in distribution()) {
        let decoded = decode_sender_key_distribution(&encode_sender_key_distribution(&distribution));
        prop_assert_eq!(decoded.map(|d| d.to_bytes()), Ok(distribution.to_bytes()));
    }

    #[test]
    fn sealed_inner_messages_round_trip(inner in sealed_inner()) {
        prop_assert_eq!(decode_sealed_inner(&encode_sealed_inner(&inner)), Ok(inner));
    }

}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic(input in vec(any::<u8>(), 0..2048)) {
        decode_everything(&input);
    }

    #[test]
    fn random_framed_payloads_never_panic(payload in vec(any::<u8>(), 0..2048)) {
        let mut input = Vec::new();
        frame::encode_into(&payload, &mut input);
        decode_everything(&input);
    }

    #[test]
    fn mutated_messages_never_panic(
        inner in sealed_inner(),
        bundle in signed_bundle(),
        edits in vec(any::<(usize, u8)>(), 1..8),
        cut in any::<usize>(),
    ) {
        for valid in [encode_sealed_inner(&inner), encode_signed_bundle(&bundle)] {
            let cut = cut % (valid.len() + 1);
            decode_everything(&mutate(valid, &edits, cut));
        }
    }
}
