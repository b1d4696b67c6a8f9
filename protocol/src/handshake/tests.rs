//! Handshake tests: both sides agree, and every rejection rule holds.

use super::*;
use crate::keys::{OneTimePreKey, PqPreKey, Signature, SignedPreKey, SignedPreKeyPublic};

struct Bob {
    identity: IdentityKeyPair,
    spk: SignedPreKey,
    opk: OneTimePreKey,
    pq: PqPreKey,
}

fn bob(last_resort: bool) -> Bob {
    let identity = IdentityKeyPair::from_secrets(&[0xB0; 32], &[0xB1; 32]);
    let spk = SignedPreKey::from_private_bytes(11, &identity, &[0xB2; 32]);
    let opk = OneTimePreKey::from_private_bytes(22, &[0xB3; 32]);
    let pq = PqPreKey::from_seed(33, last_resort, &identity, &[0xB4; 64]);
    Bob {
        identity,
        spk,
        opk,
        pq,
    }
}

fn alice() -> IdentityKeyPair {
    IdentityKeyPair::from_secrets(&[0xA0; 32], &[0xA1; 32])
}

impl Bob {
    fn bundle(&self, with_opk: bool) -> PreKeyBundle {
        PreKeyBundle {
            identity: *self.identity.public(),
            signed_prekey: self.spk.public(),
            one_time_prekey: with_opk.then(|| self.opk.public()),
            pq_prekey: self.pq.public(),
        }
    }

    fn prekeys(&self, with_opk: bool) -> ResponderPreKeys<'_> {
        ResponderPreKeys {
            signed_prekey: &self.spk,
            one_time_prekey: with_opk.then_some(&self.opk),
            pq_prekey: &self.pq,
        }
    }

    fn respond(
        &self,
        init: &SessionInit,
        replay: &ReplayCache,
    ) -> Result<Accepted, HandshakeError> {
        respond(
            &self.identity,
            self.prekeys(init.one_time_prekey_id.is_some()),
            init,
            replay,
        )
    }
}

fn deterministic(bob: &Bob, with_opk: bool) -> (SessionInit, HandshakeTranscript) {
    let ek = X25519KeyPair::from_private_bytes(&[0xA2; 32]);
    initiate_deterministic(&alice(), &bob.bundle(with_opk), &ek, &[0xA3; 32]).unwrap()
}

#[test]
fn both_sides_derive_the_same_key_and_ad_with_and_without_opk() {
    let bob = bob(false);
    for with_opk in [true, false] {
        let (init, transcript) = deterministic(&bob, with_opk);
        assert_eq!(transcript.dh.len(), if with_opk { 4 } else { 3 });
        assert_eq!(transcript.ikm.len(), 32 * (2 + transcript.dh.len()));
        assert_eq!(&transcript.ikm[..32], &[0xFF; 32]);
        assert_eq!(
            &transcript.ikm[transcript.ikm.len() - 32..],
            transcript.kem_ss.as_slice()
        );
        let accepted = bob.respond(&init, &ReplayCache::new()).unwrap();
        assert_eq!(accepted.key, transcript.key);
        assert_eq!(accepted.ad, transcript.ad);
        assert_eq!(
            accepted.ad,
            AssociatedData::new(alice().public(), bob.identity.public())
        );
        let expected = ConsumedPreKeys {
            one_time_prekey: with_opk.then_some(22),
            pq_prekey: Some(33),
        };
        assert_eq!(accepted.consumed, expected);
    }
}

#[test]
fn opk_changes_the_key() {
    let bob = bob(false);
    assert_ne!(
        deterministic(&bob, true).1.key,
        deterministic(&bob, false).1.key
    );
}

#[test]
fn sk_is_hkdf_of_the_ikm() {
    let (_, transcript) = deterministic(&bob(false), true);
    let sk = hkdf_sha256::<32>(
        &[0; 32],
        &transcript.ikm,
        b"Hearth_v1_X25519_SHA-256_ML-KEM-768",
    );
    assert_eq!(transcript.key.expose_bytes(), &*sk);
}

#[test]
fn random_initiation_agrees_with_bob_and_keeps_last_resort_pq_key() {
    let bob = bob(true);
    let mut rng = rand::rng();
    let started = initiate(&alice(), &bob.bundle(true), &mut rng).unwrap();
    let accepted = bob.respond(&started.init, &ReplayCache::new()).unwrap();
    assert_eq!(accepted.key, started.key);
    assert_eq!(accepted.consumed.pq_prekey, None);
    let again = initiate(&alice(), &bob.bundle(true), &mut rng).unwrap();
    assert_ne!(again.key, started.key);
}

#[test]
fn replayed_first_message_is_rejected_once_recorded() {
    let bob = bob(true);
    let (init, _) = deterministic(&bob, false);
    let mut replay = ReplayCache::new();
    let accepted = bob.respond(&init, &replay).unwrap();
    // respond itself records nothing.
    assert!(replay.is_empty());
    replay.record(accepted.replay_tag).unwrap();
    assert_eq!(
        bob.respond(&init, &replay).err(),
        Some(HandshakeError::Replayed)
    );
    // The same EK with another signed prekey id is not the same first message.
    let mut other = init.clone();
    other.signed_prekey_id = 12;
    assert!(!replay.contains(&other.replay_tag()));
}

#[test]
fn bad_bundle_signature_is_rejected() {
    let bob = bob(false);
    let mut bundle = bob.bundle(true);
    let mut sig = *bundle.signed_prekey.signature.as_bytes();
    sig[10] ^= 0x40;
    bundle.signed_prekey.signature = Signature::from_bytes(sig);
    let ek = X25519KeyPair::from_private_bytes(&[0xA2; 32]);
    let result = initiate_deterministic(&alice(), &bundle, &ek, &[0xA3; 32]);
    assert_eq!(
        result.err(),
        Some(HandshakeError::Bundle(BundleError::SignedPreKeySignature))
    );
}

#[test]
fn bad_initiator_signature_is_rejected() {
    let bob = bob(false);
    let (mut init, _) = deterministic(&bob, true);
    init.initiator.dh_key = X25519PublicKey::from_bytes([0x09; 32]);
    assert_eq!(
        bob.respond(&init, &ReplayCache::new()).err(),
        Some(HandshakeError::InitiatorSignature)
    );
}

#[test]
fn all_zero_dh_output_is_rejected_on_both_sides() {
    let bob = bob(false);
    // Alice: a correctly signed but low-order signed prekey.
    let zero = X25519PublicKey::from_bytes([0; 32]);
    let mut bundle = bob.bundle(false);
    let signature = bob.identity.sign_prekey(&zero.encode());
    bundle.signed_prekey = SignedPreKeyPublic {
        id: 11,
        key: zero,
        signature,
    };
    assert_eq!(bundle.validate(), Ok(()));
    let ek = X25519KeyPair::from_private_bytes(&[0xA2; 32]);
    let result = initiate_deterministic(&alice(), &bundle, &ek, &[0xA3; 32]);
    assert_eq!(result.err(), Some(HandshakeError::NonContributory));
    // Bob: a low-order ephemeral key.
    let (mut init, _) = deterministic(&bob, true);
    init.ephemeral = zero;
    assert_eq!(
        bob.respond(&init, &ReplayCache::new()).err(),
        Some(HandshakeError::NonContributory)
    );
}

#[test]
fn prekeys_not_matching_the_message_are_caller_misuse() {
    let bob = bob(false);
    let (init, _) = deterministic(&bob, true);
    let replay = ReplayCache::new();
    let missing_opk = respond(&bob.identity, bob.prekeys(false), &init, &replay);
    assert_eq!(missing_opk.err(), Some(HandshakeError::PreKeyMismatch));
    let other_spk = SignedPreKey::from_private_bytes(99, &bob.identity, &[0xB2; 32]);
    let prekeys = ResponderPreKeys {
        signed_prekey: &other_spk,
        ..bob.prekeys(true)
    };
    let result = respond(&bob.identity, prekeys, &init, &replay);
    assert_eq!(result.err(), Some(HandshakeError::PreKeyMismatch));
}

#[test]
fn forged_kem_ciphertext_gives_a_different_key() {
    let bob = bob(false);
    let (mut init, transcript) = deterministic(&bob, true);
    let mut ct = *init.kem_ciphertext.as_bytes();
    ct[0] ^= 1;
    init.kem_ciphertext = KemCiphertext::from_bytes(&ct).unwrap();
    let accepted = bob.respond(&init, &ReplayCache::new()).unwrap();
    assert_ne!(accepted.key, transcript.key);
    assert_eq!(
        KemCiphertext::from_bytes(&ct[1..]).err(),
        Some(InvalidKemCiphertext)
    );
}

#[test]
fn transcript_debug_is_redacted() {
    let (_, transcript) = deterministic(&bob(false), true);
    let shown = format!("{transcript:?}");
    assert!(shown.contains("[redacted]") && !shown.contains(&hex::encode(&transcript.ikm[32..40])));
}
