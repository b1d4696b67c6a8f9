//! Double Ratchet tests: the spec's derivations, ordering, limits, the
//! no-change-on-failure rule, stored state, forward secrecy and recovery.

mod interleavings;

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{ChaCha20Poly1305, KeyInit};
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::*;
use crate::handshake::{AssociatedData, SessionKey};
use crate::kdf::{hkdf_sha256, hmac_sha256};
use crate::keys::{IdentityKeyPair, X25519KeyPair, X25519PublicKey};
use crate::stored::StoredStateError;

const SK: [u8; 32] = [0x5C; 32];
const BOB_SPK: [u8; 32] = [0xB2; 32];
const ALICE_RATCHET: [u8; 32] = [0xA5; 32];

fn ad() -> AssociatedData {
    let alice = IdentityKeyPair::from_secrets(&[1; 32], &[2; 32]);
    let bob = IdentityKeyPair::from_secrets(&[3; 32], &[4; 32]);
    AssociatedData::new(alice.public(), bob.public())
}

fn pair() -> (RatchetSession, RatchetSession) {
    let spk = X25519KeyPair::from_private_bytes(&BOB_SPK);
    let sk = SessionKey::from_bytes(&SK);
    let alice_key = X25519KeyPair::from_private_bytes(&ALICE_RATCHET);
    let alice =
        RatchetSession::init_alice_with_key(&sk, ad(), *spk.public_key(), alice_key).unwrap();
    (alice, RatchetSession::init_bob(&sk, ad(), &spk))
}

fn rng() -> StdRng {
    StdRng::seed_from_u64(7)
}

fn pt(i: usize) -> Vec<u8> {
    format!("message {i}").into_bytes()
}

/// Sends `count` messages from `from`.
fn send(from: &mut RatchetSession, count: usize) -> Vec<RatchetMessage> {
    (0..count).map(|i| from.encrypt(&pt(i)).unwrap()).collect()
}

/// Asserts that `decrypt` fails with `expected` and changes nothing.
fn assert_rejected(session: &mut RatchetSession, message: &RatchetMessage, expected: DecryptError) {
    let before = session.to_bytes();
    let mut keys = FixedRatchetKeys::new([&[0x77; 32]]);
    assert_eq!(session.decrypt(message, &mut keys).err(), Some(expected));
    assert_eq!(session.to_bytes(), before, "state changed on {expected:?}");
    assert_eq!(
        keys.remaining(),
        1,
        "a failed decryption drew a ratchet key"
    );
}

fn tampered(message: &RatchetMessage) -> RatchetMessage {
    let mut bad = message.clone();
    if let Some(last) = bad.ciphertext.last_mut() {
        *last ^= 1;
    }
    bad
}

/// Recomputes Alice's first message from the primitives, as DESIGN.md §5 writes it.
#[test]
fn first_message_follows_the_spec_formulas() {
    let (mut alice, _) = pair();
    let (message, trace) = alice.encrypt_traced(b"hello").unwrap();

    let alice_pub = X25519KeyPair::from_private_bytes(&ALICE_RATCHET)
        .public_key()
        .to_owned();
    let spk_pub = *X25519KeyPair::from_private_bytes(&BOB_SPK).public_key();
    let dh = x25519_dalek::StaticSecret::from(ALICE_RATCHET)
        .diffie_hellman(&x25519_dalek::PublicKey::from(*spk_pub.as_bytes()));
    let okm = hkdf_sha256::<64>(&SK, dh.as_bytes(), b"Hearth_v1_Ratchet");
    let mk = hmac_sha256(&okm[32..], &[0x01]);
    let keys = hkdf_sha256::<44>(&[0; 32], &*mk, b"Hearth_v1_MessageKeys");

    let mut header = vec![0x01];
    header.extend_from_slice(alice_pub.as_bytes());
    header.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(message.header.to_bytes().as_slice(), header.as_slice());
    assert_eq!(*trace.mk, *mk);
    assert_eq!(trace.key[..], keys[..32]);
    assert_eq!(trace.nonce[..], keys[32..]);

    let aad = [ad().as_bytes().as_slice(), &header].concat();
    let key: [u8; 32] = keys[..32].try_into().unwrap();
    let nonce: [u8; 12] = keys[32..].try_into().unwrap();
    let ct = ChaCha20Poly1305::new(&key.into())
        .encrypt(
            &nonce.into(),
            Payload {
                msg: b"hello",
                aad: &aad,
            },
        )
        .unwrap();
    assert_eq!(message.ciphertext, ct);

    // The second message uses the next chain key, HMAC(ck, 0x02).
    let (second, trace2) = alice.encrypt_traced(b"again").unwrap();
    assert_eq!(second.header.n, 1);
    assert_eq!(
        *trace2.mk,
        *hmac_sha256(&*hmac_sha256(&okm[32..], &[0x02]), &[0x01])
    );
}

#[test]
fn round_trips_across_several_dh_steps() {
    let (mut alice, mut bob) = pair();
    let mut rng = rng();
    for round in 0..5 {
        for (i, m) in send(&mut alice, 3).iter().enumerate() {
            assert_eq!(m.header.n as usize, i);
            assert_eq!(*bob.decrypt(m, &mut rng).unwrap(), pt(i));
        }
        let replies = send(&mut bob, 2);
        assert_eq!(replies[0].header.pn, if round == 0 { 0 } else { 2 });
        for (i, m) in replies.iter().enumerate() {
            assert_eq!(*alice.decrypt(m, &mut rng).unwrap(), pt(i));
        }
    }
}

#[test]
fn ratchet_keys_are_drawn_in_order_only_at_dh_steps() {
    let (mut alice, mut bob) = pair();
    let mut alice_keys = FixedRatchetKeys::new([&[0xA6; 32], &[0xA7; 32]]);
    let mut bob_keys = FixedRatchetKeys::new([&[0xB6; 32], &[0xB7; 32]]);
    for m in send(&mut alice, 2) {
        bob.decrypt(&m, &mut bob_keys).unwrap();
    }
    assert_eq!(
        bob_keys.remaining(),
        1,
        "Bob draws once, at his first DH step"
    );
    let reply = bob.encrypt(b"r").unwrap();
    let bob_first = X25519KeyPair::from_private_bytes(&[0xB6; 32]);
    assert_eq!(&reply.header.ratchet_key, bob_first.public_key());
    alice.decrypt(&reply, &mut alice_keys).unwrap();
    assert_eq!(alice_keys.remaining(), 1);
    let next = alice.encrypt(b"x").unwrap();
    let alice_second = X25519KeyPair::from_private_bytes(&[0xA6; 32]);
    assert_eq!(&next.header.ratchet_key, alice_second.public_key());
}

#[test]
fn bob_cannot_send_before_receiving() {
    let (_, mut bob) = pair();
    assert!(!bob.can_send());
    assert_eq!(bob.encrypt(b"x").err(), Some(EncryptError::NoSendingChain));
}

#[test]
fn out_of_order_messages_decrypt_within_max_skip() {
    let (mut alice, mut bob) = pair();
    let mut rng = rng();
    let messages = send(&mut alice, 10);
    for i in [9, 0, 5, 1, 8, 2, 3, 7, 4, 6] {
        assert_eq!(*bob.decrypt(&messages[i], &mut rng).unwrap(), pt(i));
    }
    assert_eq!(bob.skipped.len(), 0);
}

#[test]
fn skipping_exactly_max_skip_is_allowed_and_one_more_is_not() {
    let mut rng = rng();
    // First message of a chain (DH step path): until = N.
    let (mut alice, mut bob) = pair();
    let messages = send(&mut alice, 1002);
    assert_rejected(&mut bob, &messages[1001], DecryptError::TooManySkipped);
    assert_eq!(*bob.decrypt(&messages[1000], &mut rng).unwrap(), pt(1000));
    assert_eq!(bob.skipped.len(), 1000);
    assert_eq!(*bob.decrypt(&messages[0], &mut rng).unwrap(), pt(0));

    // Current chain: Nr = 1 after message 0, so N = 1001 skips exactly 1000.
    let (mut alice, mut bob) = pair();
    let messages = send(&mut alice, 1003);
    bob.decrypt(&messages[0], &mut rng).unwrap();
    assert_rejected(&mut bob, &messages[1002], DecryptError::TooManySkipped);
    assert_eq!(*bob.decrypt(&messages[1001], &mut rng).unwrap(), pt(1001));
}

#[test]
fn max_skip_applies_to_the_previous_chain_length() {
    let mut rng = rng();
    for (sent, expect_ok) in [(1001, true), (1002, false)] {
        let (mut alice, mut bob) = pair();
        let first_chain = send(&mut alice, sent);
        bob.decrypt(&first_chain[0], &mut rng).unwrap();
        let reply = bob.encrypt(b"r").unwrap();
        alice.decrypt(&reply, &mut rng).unwrap();
        let next = alice.encrypt(b"next").unwrap();
        assert_eq!(next.header.pn as usize, sent);
        if expect_ok {
            assert_eq!(&**bob.decrypt(&next, &mut rng).unwrap(), b"next");
            assert_eq!(bob.skipped.len(), 1000);
        } else {
            assert_rejected(&mut bob, &next, DecryptError::TooManySkipped);
        }
    }
}

#[test]
fn oldest_skipped_keys_are_dropped_beyond_the_limit() {
    let mut rng = rng();
    let (mut alice, mut bob) = pair();
    let mut chains = Vec::new();
    for _ in 0..3 {
        let chain = send(&mut alice, 1001);
        bob.decrypt(&chain[1000], &mut rng).unwrap();
        let reply = bob.encrypt(b"r").unwrap();
        alice.decrypt(&reply, &mut rng).unwrap();
        chains.push(chain);
    }
    assert_eq!(bob.skipped.len(), MAX_SKIPPED_KEYS);
    // The first chain's keys were the oldest: gone.
    assert_rejected(&mut bob, &chains[0][5], DecryptError::Duplicate);
    assert_eq!(*bob.decrypt(&chains[1][5], &mut rng).unwrap(), pt(5));
    assert_eq!(*bob.decrypt(&chains[2][999], &mut rng).unwrap(), pt(999));
}

#[test]
fn duplicates_are_explicit_errors_in_every_chain() {
    let mut rng = rng();
    let (mut alice, mut bob) = pair();
    let first = send(&mut alice, 3);
    bob.decrypt(&first[0], &mut rng).unwrap();
    assert_rejected(&mut bob, &first[0], DecryptError::Duplicate);
    // Decrypted from a skipped key, then again.
    bob.decrypt(&first[2], &mut rng).unwrap();
    bob.decrypt(&first[1], &mut rng).unwrap();
    assert_rejected(&mut bob, &first[1], DecryptError::Duplicate);
    // A message of an earlier chain, after a DH round trip.
    let reply = bob.encrypt(b"r").unwrap();
    alice.decrypt(&reply, &mut rng).unwrap();
    bob.decrypt(&alice.encrypt(b"second chain").unwrap(), &mut rng)
        .unwrap();
    assert_rejected(&mut bob, &first[2], DecryptError::Duplicate);
    assert_rejected(&mut alice, &reply, DecryptError::Duplicate);
}

#[test]
fn tampering_fails_without_changing_state_on_every_path() {
    let mut rng = rng();
    let (mut alice, mut bob) = pair();
    let messages = send(&mut alice, 4);
    // DH step path (Bob's first message): no key drawn, nothing changed.
    assert_rejected(&mut bob, &tampered(&messages[1]), DecryptError::AuthFail);
    bob.decrypt(&messages[1], &mut rng).unwrap();
    // Skipped-key path and current-chain path.
    assert_rejected(&mut bob, &tampered(&messages[0]), DecryptError::AuthFail);
    assert_rejected(&mut bob, &tampered(&messages[3]), DecryptError::AuthFail);
    // A tampered header changes the associated data.
    let mut bad_header = messages[2].clone();
    bad_header.header.pn ^= 1;
    assert_rejected(&mut bob, &bad_header, DecryptError::AuthFail);
    for i in [0, 2, 3] {
        assert_eq!(*bob.decrypt(&messages[i], &mut rng).unwrap(), pt(i));
    }
}

#[test]
fn other_bad_inputs_fail_without_changing_state() {
    let (mut alice, mut bob) = pair();
    let message = alice.encrypt(b"x").unwrap();
    let mut low_order = message.clone();
    low_order.header.ratchet_key = X25519PublicKey::from_bytes([0; 32]);
    assert_rejected(&mut bob, &low_order, DecryptError::NonContributory);
    let mut overflow = message.clone();
    overflow.header.n = u32::MAX;
    assert_rejected(&mut bob, &overflow, DecryptError::CounterOverflow);
    let mut other_ad = RatchetSession::from_bytes(&bob.to_bytes()).unwrap();
    other_ad.ad = AssociatedData::from_bytes([0; AssociatedData::LEN]);
    assert_rejected(&mut other_ad, &message, DecryptError::AuthFail);
    // Alice's DHr starts as SPK_B, which has no receiving chain.
    let mut spoofed = message.clone();
    spoofed.header.ratchet_key = *X25519KeyPair::from_private_bytes(&BOB_SPK).public_key();
    assert_rejected(&mut alice, &spoofed, DecryptError::AuthFail);
}

#[test]
fn exhausted_key_source_is_an_error_that_changes_nothing() {
    let (mut alice, mut bob) = pair();
    let message = alice.encrypt(b"x").unwrap();
    let before = bob.to_bytes();
    let mut none = FixedRatchetKeys::new([]);
    assert_eq!(
        bob.decrypt(&message, &mut none).err(),
        Some(DecryptError::NoRatchetKey)
    );
    assert_eq!(bob.to_bytes(), before);
}

#[test]
fn forward_secrecy_used_keys_are_gone() {
    let mut rng = rng();
    let (mut alice, mut bob) = pair();
    let (message, trace) = alice.encrypt_traced(b"secret").unwrap();
    let (later, later_trace) = alice.encrypt_traced(b"later").unwrap();
    bob.decrypt(&message, &mut rng).unwrap();
    assert_rejected(&mut bob, &message, DecryptError::Duplicate);
    let stored = bob.to_bytes();
    assert!(!stored.windows(32).any(|w| w == trace.mk.as_slice()));
    // The sender's state no longer holds the keys either.
    let sender = alice.to_bytes();
    assert!(!sender.windows(32).any(|w| w == later_trace.mk.as_slice()));
    assert_eq!(&**bob.decrypt(&later, &mut rng).unwrap(), b"later");
}

#[test]
fn old_state_cannot_read_after_one_dh_round_trip() {
    let mut rng = rng();
    let (mut alice, mut bob) = pair();
    bob.decrypt(&alice.encrypt(b"a0").unwrap(), &mut rng)
        .unwrap();
    alice
        .decrypt(&bob.encrypt(b"b0").unwrap(), &mut rng)
        .unwrap();
    let stolen = bob.to_bytes();

    // Alice → Bob: Bob installs a fresh ratchet key the thief does not know.
    let to_bob = alice.encrypt(b"a1").unwrap();
    bob.decrypt(&to_bob, &mut rng).unwrap();
    let mut thief = RatchetSession::from_bytes(&stolen).unwrap();
    let mut thief_rng = StdRng::seed_from_u64(99);
    assert_eq!(
        &**thief.decrypt(&to_bob, &mut thief_rng).unwrap(),
        b"a1",
        "compromise is real"
    );

    // Bob → Alice → Bob completes the round trip.
    alice
        .decrypt(&bob.encrypt(b"b1").unwrap(), &mut rng)
        .unwrap();
    let after = alice.encrypt(b"a2").unwrap();
    let mut thief = RatchetSession::from_bytes(&stolen).unwrap();
    assert!(thief.decrypt(&after, &mut thief_rng).is_err());
    assert_eq!(&**bob.decrypt(&after, &mut rng).unwrap(), b"a2");
}

#[test]
fn stored_session_continues_identically() {
    let mut rng = rng();
    let (mut alice, mut bob) = pair();
    let messages = send(&mut alice, 5);
    bob.decrypt(&messages[3], &mut rng).unwrap();
    let restored_bytes = bob.to_bytes();
    let mut restored = RatchetSession::from_bytes(&restored_bytes).unwrap();
    assert_eq!(restored.to_bytes(), restored_bytes);
    assert_eq!(restored.encrypt(b"r").unwrap(), bob.encrypt(b"r").unwrap());
    assert_eq!(*restored.decrypt(&messages[1], &mut rng).unwrap(), pt(1));
    let fresh_bob = pair().1;
    assert_eq!(
        RatchetSession::from_bytes(&fresh_bob.to_bytes())
            .unwrap()
            .to_bytes(),
        fresh_bob.to_bytes()
    );
}

#[test]
fn stored_session_rejects_bad_input() {
    let (mut alice, mut bob) = pair();
    bob.decrypt(&send(&mut alice, 3)[2], &mut rng()).unwrap();
    let bytes = bob.to_bytes();
    let err = |b: &[u8]| RatchetSession::from_bytes(b).err();
    assert_eq!(
        err(&bytes[..bytes.len() - 1]),
        Some(StoredStateError::Truncated)
    );
    assert_eq!(
        err(&[bytes.as_slice(), &[0]].concat()),
        Some(StoredStateError::TrailingBytes)
    );
    let mut bad = bytes.to_vec();
    bad[0] = 9;
    assert_eq!(err(&bad), Some(StoredStateError::UnsupportedVersion(9)));
    let mut bad = bytes.to_vec();
    bad[1 + 141 + 64] = 2;
    assert_eq!(
        err(&bad),
        Some(StoredStateError::InvalidField("DHr presence"))
    );
    let huge = vec![1; RatchetSession::MAX_STORED_LEN + 1];
    assert!(matches!(
        err(&huge),
        Some(StoredStateError::TooLarge { .. })
    ));
    // Skipped-key count above the limit.
    let count_at = bytes.len() - 2 * 68 - 2;
    let mut bad = bytes.to_vec();
    bad[count_at..count_at + 2].copy_from_slice(&2001u16.to_be_bytes());
    assert_eq!(
        err(&bad),
        Some(StoredStateError::InvalidField("skipped key count"))
    );
}

#[test]
fn debug_redacts_session_secrets() {
    let (alice, _) = pair();
    let shown = format!("{alice:?}");
    let root = hex::encode(alice.root.expose());
    assert!(
        shown.contains("[redacted]") && !shown.contains(&root[..8]),
        "{shown}"
    );
}

#[test]
fn sessions_from_a_real_handshake_talk() {
    use crate::handshake::{ReplayCache, ResponderPreKeys, initiate, respond};
    use crate::keys::{PqPreKey, PreKeyBundle, SignedPreKey};
    let mut rng = rng();
    let alice_id = IdentityKeyPair::generate(&mut rng);
    let bob_id = IdentityKeyPair::generate(&mut rng);
    let spk = SignedPreKey::generate(1, &bob_id, &mut rng);
    let pq = PqPreKey::generate(2, true, &bob_id, &mut rng);
    let bundle = PreKeyBundle {
        identity: *bob_id.public(),
        signed_prekey: spk.public(),
        one_time_prekey: None,
        pq_prekey: pq.public(),
    };
    let started = initiate(&alice_id, &bundle, &mut rng).unwrap();
    let mut alice =
        RatchetSession::init_alice(&started.key, started.ad, bundle.signed_prekey.key, &mut rng)
            .unwrap();
    let first = alice.encrypt(b"hi bob").unwrap();
    let prekeys = ResponderPreKeys {
        signed_prekey: &spk,
        one_time_prekey: None,
        pq_prekey: &pq,
    };
    let accepted = respond(&bob_id, prekeys, &started.init, &ReplayCache::new()).unwrap();
    let mut bob = RatchetSession::init_bob(&accepted.key, accepted.ad, spk.key_pair());
    assert_eq!(&**bob.decrypt(&first, &mut rng).unwrap(), b"hi bob");
    assert_eq!(
        &**alice
            .decrypt(&bob.encrypt(b"hi alice").unwrap(), &mut rng)
            .unwrap(),
        b"hi alice"
    );
}
