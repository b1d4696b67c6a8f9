//! 1:1 messages: the ratchet message and Alice's first (prekey) message.

use super::{MAX_PADDED_LEN, WireError, check_ciphertext, pb, required, x25519_key};
use crate::handshake::{KEM_CIPHERTEXT_LEN, KemCiphertext, SessionInit};
use crate::ratchet::RatchetMessage;

/// Alice's first message: the handshake fields and the first ratchet
/// message, which Bob decrypts with the session
/// [`respond`](crate::handshake::respond) gives him.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreKeyMessage {
    /// The handshake fields.
    pub init: SessionInit,
    /// The first ratchet message.
    pub message: RatchetMessage,
}

impl TryFrom<pb::RatchetMessage> for RatchetMessage {
    type Error = WireError;

    fn try_from(message: pb::RatchetMessage) -> Result<Self, WireError> {
        check_ciphertext(&message.ciphertext, MAX_PADDED_LEN, "ciphertext")?;
        Ok(Self::from_parts(&message.header, message.ciphertext)?)
    }
}

impl From<&RatchetMessage> for pb::RatchetMessage {
    fn from(message: &RatchetMessage) -> Self {
        Self {
            header: message.header.to_bytes().to_vec(),
            ciphertext: message.ciphertext.clone(),
        }
    }
}

impl TryFrom<pb::PrekeyMessage> for PreKeyMessage {
    type Error = WireError;

    fn try_from(message: pb::PrekeyMessage) -> Result<Self, WireError> {
        let kem_ciphertext = KemCiphertext::from_bytes(&message.kem_ciphertext).map_err(|_| {
            WireError::FieldLength {
                field: "kem_ciphertext",
                len: message.kem_ciphertext.len(),
                expected: KEM_CIPHERTEXT_LEN,
            }
        })?;
        let init = SessionInit {
            initiator: required(message.initiator, "initiator")?.try_into()?,
            ephemeral: x25519_key(&message.ephemeral, "ephemeral")?,
            signed_prekey_id: message.signed_prekey_id,
            one_time_prekey_id: message.one_time_prekey_id,
            pq_prekey_id: message.pq_prekey_id,
            kem_ciphertext,
        };
        Ok(Self {
            init,
            message: required(message.message, "message")?.try_into()?,
        })
    }
}

impl From<&PreKeyMessage> for pb::PrekeyMessage {
    fn from(message: &PreKeyMessage) -> Self {
        let init = &message.init;
        Self {
            initiator: Some((&init.initiator).into()),
            ephemeral: init.ephemeral.as_bytes().to_vec(),
            signed_prekey_id: init.signed_prekey_id,
            one_time_prekey_id: init.one_time_prekey_id,
            pq_prekey_id: init.pq_prekey_id,
            kem_ciphertext: init.kem_ciphertext.as_bytes().to_vec(),
            message: Some((&message.message).into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;
    use crate::frame::{self, FrameError};
    use crate::handshake::{ReplayCache, ResponderPreKeys, initiate, respond};
    use crate::keys::{IdentityKeyPair, OneTimePreKey, PqPreKey, SignedPreKey};
    use crate::padding::{pad, unpad};
    use crate::ratchet::{HeaderError, RatchetSession};
    use crate::wire::{
        MAX_RATCHET_CIPHERTEXT_LEN, RATCHET_MESSAGE_MAX_LEN, SignedBundle, decode_prekey_bundle,
        decode_prekey_message, decode_ratchet_message, encode_one_time_prekey, encode_pq_prekey,
        encode_prekey_message, encode_ratchet_message, encode_signed_bundle,
    };

    fn message_with(header: Vec<u8>, ciphertext: Vec<u8>) -> Vec<u8> {
        frame::encode_message(&pb::RatchetMessage { header, ciphertext })
    }

    fn header() -> Vec<u8> {
        let mut header = vec![0x01];
        header.extend_from_slice(&[9; 40]);
        header
    }

    /// The whole path: Bob publishes, Alice fetches and sends a first
    /// message through the wire, Bob decodes and decrypts it.
    #[test]
    fn a_first_message_crosses_the_wire() {
        let mut rng = StdRng::seed_from_u64(3);
        let bob = IdentityKeyPair::generate(&mut rng);
        let spk = SignedPreKey::generate(1, &bob, &mut rng);
        let opk = OneTimePreKey::generate(2, &mut rng);
        let pq = PqPreKey::generate(3, false, &bob, &mut rng);
        let bundle = decode_prekey_bundle(
            &encode_signed_bundle(&SignedBundle::new(&bob, &spk)),
            Some(&encode_one_time_prekey(&opk.public())),
            &encode_pq_prekey(&pq.public()),
        )
        .unwrap();

        let alice = IdentityKeyPair::generate(&mut rng);
        let started = initiate(&alice, &bundle, &mut rng).unwrap();
        let mut session = RatchetSession::init_alice(
            &started.key,
            started.ad,
            bundle.signed_prekey.key,
            &mut rng,
        )
        .unwrap();
        let first = PreKeyMessage {
            init: started.init,
            message: session.encrypt(&pad(b"hello Bob")).unwrap(),
        };
        let received = decode_prekey_message(&encode_prekey_message(&first)).unwrap();
        assert_eq!(received, first);

        let prekeys = ResponderPreKeys {
            signed_prekey: &spk,
            one_time_prekey: Some(&opk),
            pq_prekey: &pq,
        };
        let accepted = respond(&bob, prekeys, &received.init, &ReplayCache::new()).unwrap();
        let mut bob_session = RatchetSession::init_bob(&accepted.key, accepted.ad, spk.key_pair());
        let padded = bob_session.decrypt(&received.message, &mut rng).unwrap();
        assert_eq!(unpad(&padded).unwrap(), b"hello Bob");

        let reply = bob_session.encrypt(&pad(b"hi Alice")).unwrap();
        let reply = decode_ratchet_message(&encode_ratchet_message(&reply)).unwrap();
        assert_eq!(
            unpad(&session.decrypt(&reply, &mut rng).unwrap()).unwrap(),
            b"hi Alice"
        );
    }

    #[test]
    fn ciphertexts_must_be_padded_plaintexts_plus_tag() {
        for len in [0, 15, 16, 17, 255 + 16, 257 + 16, 300] {
            assert_eq!(
                decode_ratchet_message(&message_with(header(), vec![0; len])),
                Err(WireError::CiphertextLength {
                    field: "ciphertext",
                    len
                }),
                "{len}"
            );
        }
        for len in [256 + 16, 512 + 16, 65_536 + 16] {
            assert!(decode_ratchet_message(&message_with(header(), vec![0; len])).is_ok());
        }
    }

    #[test]
    fn the_largest_ratchet_message_fits_its_limit_and_one_more_bucket_does_not() {
        let largest = message_with(header(), vec![0; MAX_RATCHET_CIPHERTEXT_LEN]);
        assert!(largest.len() <= RATCHET_MESSAGE_MAX_LEN + frame::MAX_PREFIX_LEN);
        assert!(decode_ratchet_message(&largest).is_ok());
        // The next bucket (1 MiB + 64 KiB) is over the frame limit.
        let next = message_with(header(), vec![0; MAX_RATCHET_CIPHERTEXT_LEN + 65_536]);
        assert!(matches!(
            decode_ratchet_message(&next),
            Err(WireError::Frame(FrameError::TooLarge { .. }))
        ));
    }

    #[test]
    fn bad_headers_are_refused() {
        let mut bad = header();
        bad[0] = 2;
        assert_eq!(
            decode_ratchet_message(&message_with(bad, vec![0; 272])),
            Err(WireError::Header(HeaderError::Version(2)))
        );
        assert_eq!(
            decode_ratchet_message(&message_with(vec![1; 40], vec![0; 272])),
            Err(WireError::Header(HeaderError::Length(40)))
        );
    }

    #[test]
    fn prekey_message_fields_are_checked() {
        let base = pb::PrekeyMessage {
            initiator: Some((IdentityKeyPair::from_secrets(&[1; 32], &[2; 32]).public()).into()),
            ephemeral: vec![5; 32],
            signed_prekey_id: 1,
            one_time_prekey_id: None,
            pq_prekey_id: 2,
            kem_ciphertext: vec![7; KEM_CIPHERTEXT_LEN],
            message: Some(pb::RatchetMessage {
                header: header(),
                ciphertext: vec![0; 272],
            }),
        };
        let decoded = decode_prekey_message(&frame::encode_message(&base)).unwrap();
        assert_eq!(decoded.init.one_time_prekey_id, None);
        let cases = [
            (
                pb::PrekeyMessage {
                    kem_ciphertext: vec![7; 1087],
                    ..base.clone()
                },
                WireError::FieldLength {
                    field: "kem_ciphertext",
                    len: 1087,
                    expected: KEM_CIPHERTEXT_LEN,
                },
            ),
            (
                pb::PrekeyMessage {
                    ephemeral: vec![5; 33],
                    ..base.clone()
                },
                WireError::FieldLength {
                    field: "ephemeral",
                    len: 33,
                    expected: 32,
                },
            ),
            (
                pb::PrekeyMessage {
                    initiator: None,
                    ..base.clone()
                },
                WireError::MissingField("initiator"),
            ),
            (
                pb::PrekeyMessage {
                    message: None,
                    ..base.clone()
                },
                WireError::MissingField("message"),
            ),
        ];
        for (message, expected) in cases {
            assert_eq!(
                decode_prekey_message(&frame::encode_message(&message)),
                Err(expected)
            );
        }
    }
}
