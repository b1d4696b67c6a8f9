//! Identity keys and prekeys: the pieces of a prekey bundle.

use super::{SIG_LEN, WireError, ed25519_key, exact, pb, required, x25519_key};
use crate::keys::{
    IdentityKeyPair, MlKemPublicKey, OneTimePreKeyPublic, PqPreKeyPublic, PreKeyBundle,
    PublicIdentity, Signature, SignedPreKey, SignedPreKeyPublic,
};

/// The signed part of a prekey bundle, which the relay stores as one opaque
/// `signed_bundle`: the identity keys and the signed prekey.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedBundle {
    /// The device's identity keys and the signature over `IK_dh`.
    pub identity: PublicIdentity,
    /// `SPK` with its id and signature.
    pub signed_prekey: SignedPreKeyPublic,
}

impl SignedBundle {
    /// The signed bundle a device publishes for `signed_prekey`.
    pub fn new(identity: &IdentityKeyPair, signed_prekey: &SignedPreKey) -> Self {
        Self {
            identity: *identity.public(),
            signed_prekey: signed_prekey.public(),
        }
    }

    /// The full bundle with the prekeys fetched beside it. Call
    /// [`PreKeyBundle::validate`] before use (as
    /// [`decode_prekey_bundle`](super::decode_prekey_bundle) does).
    pub fn into_bundle(
        self,
        one_time_prekey: Option<OneTimePreKeyPublic>,
        pq_prekey: PqPreKeyPublic,
    ) -> PreKeyBundle {
        PreKeyBundle {
            identity: self.identity,
            signed_prekey: self.signed_prekey,
            one_time_prekey,
            pq_prekey,
        }
    }
}

fn signature(bytes: &[u8], field: &'static str) -> Result<Signature, WireError> {
    exact::<SIG_LEN>(bytes, field).map(Signature::from_bytes)
}

impl TryFrom<pb::PublicIdentity> for PublicIdentity {
    type Error = WireError;

    fn try_from(message: pb::PublicIdentity) -> Result<Self, WireError> {
        Ok(Self {
            sig_key: ed25519_key(&message.ik_sig, "ik_sig")?,
            dh_key: x25519_key(&message.ik_dh, "ik_dh")?,
            dh_signature: signature(&message.ik_dh_signature, "ik_dh_signature")?,
        })
    }
}

impl From<&PublicIdentity> for pb::PublicIdentity {
    fn from(identity: &PublicIdentity) -> Self {
        Self {
            ik_sig: identity.sig_key.as_bytes().to_vec(),
            ik_dh: identity.dh_key.as_bytes().to_vec(),
            ik_dh_signature: identity.dh_signature.as_bytes().to_vec(),
        }
    }
}

impl TryFrom<pb::SignedPrekey> for SignedPreKeyPublic {
    type Error = WireError;

    fn try_from(message: pb::SignedPrekey) -> Result<Self, WireError> {
        Ok(Self {
            id: message.id,
            key: x25519_key(&message.key, "signed_prekey.key")?,
            signature: signature(&message.signature, "signed_prekey.signature")?,
        })
    }
}

impl From<&SignedPreKeyPublic> for pb::SignedPrekey {
    fn from(prekey: &SignedPreKeyPublic) -> Self {
        Self {
            id: prekey.id,
            key: prekey.key.as_bytes().to_vec(),
            signature: prekey.signature.as_bytes().to_vec(),
        }
    }
}

impl TryFrom<pb::SignedBundle> for SignedBundle {
    type Error = WireError;

    fn try_from(message: pb::SignedBundle) -> Result<Self, WireError> {
        Ok(Self {
            identity: required(message.identity, "identity")?.try_into()?,
            signed_prekey: required(message.signed_prekey, "signed_prekey")?.try_into()?,
        })
    }
}

impl From<&SignedBundle> for pb::SignedBundle {
    fn from(bundle: &SignedBundle) -> Self {
        Self {
            identity: Some((&bundle.identity).into()),
            signed_prekey: Some((&bundle.signed_prekey).into()),
        }
    }
}

impl TryFrom<pb::OneTimePrekey> for OneTimePreKeyPublic {
    type Error = WireError;

    fn try_from(message: pb::OneTimePrekey) -> Result<Self, WireError> {
        Ok(Self {
            id: message.id,
            key: x25519_key(&message.key, "one_time_prekey.key")?,
        })
    }
}

impl From<&OneTimePreKeyPublic> for pb::OneTimePrekey {
    fn from(prekey: &OneTimePreKeyPublic) -> Self {
        Self {
            id: prekey.id,
            key: prekey.key.as_bytes().to_vec(),
        }
    }
}

impl TryFrom<pb::PqPrekey> for PqPreKeyPublic {
    type Error = WireError;

    fn try_from(message: pb::PqPrekey) -> Result<Self, WireError> {
        let key = MlKemPublicKey::from_bytes(&message.key).map_err(|_| {
            if message.key.len() == crate::encode::ML_KEM_768_KEY_LEN {
                WireError::InvalidKey("pq_prekey.key")
            } else {
                WireError::FieldLength {
                    field: "pq_prekey.key",
                    len: message.key.len(),
                    expected: crate::encode::ML_KEM_768_KEY_LEN,
                }
            }
        })?;
        Ok(Self {
            id: message.id,
            key,
            signature: signature(&message.signature, "pq_prekey.signature")?,
            last_resort: message.last_resort,
        })
    }
}

impl From<&PqPreKeyPublic> for pb::PqPrekey {
    fn from(prekey: &PqPreKeyPublic) -> Self {
        Self {
            id: prekey.id,
            key: prekey.key.as_bytes().to_vec(),
            signature: prekey.signature.as_bytes().to_vec(),
            last_resort: prekey.last_resort,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame;
    use crate::keys::BundleError;
    use crate::keys::{OneTimePreKey, PqPreKey};
    use crate::wire::{
        decode_one_time_prekey, decode_pq_prekey, decode_prekey_bundle, decode_signed_bundle,
        encode_one_time_prekey, encode_pq_prekey, encode_signed_bundle,
    };

    fn bob() -> IdentityKeyPair {
        IdentityKeyPair::from_secrets(&[0xB0; 32], &[0xB1; 32])
    }

    fn pieces() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        let id = bob();
        let spk = SignedPreKey::from_private_bytes(11, &id, &[0xB2; 32]);
        let opk = OneTimePreKey::from_private_bytes(22, &[0xB3; 32]);
        let pq = PqPreKey::from_seed(33, false, &id, &[0xB4; 64]);
        (
            encode_signed_bundle(&SignedBundle::new(&id, &spk)),
            encode_one_time_prekey(&opk.public()),
            encode_pq_prekey(&pq.public()),
        )
    }

    #[test]
    fn published_pieces_decode_into_a_valid_bundle() {
        let (signed, opk, pq) = pieces();
        let bundle = decode_prekey_bundle(&signed, Some(&opk), &pq).unwrap();
        assert_eq!(bundle.identity, *bob().public());
        assert_eq!(bundle.signed_prekey.id, 11);
        assert_eq!(bundle.one_time_prekey.map(|k| k.id), Some(22));
        assert_eq!(
            (bundle.pq_prekey.id, bundle.pq_prekey.last_resort),
            (33, false)
        );
        let without = decode_prekey_bundle(&signed, None, &pq).unwrap();
        assert_eq!(without.one_time_prekey, None);
    }

    #[test]
    fn a_pq_prekey_of_another_identity_fails_validation() {
        let (signed, _, _) = pieces();
        let other = IdentityKeyPair::from_secrets(&[0xC0; 32], &[0xC1; 32]);
        let pq = encode_pq_prekey(&PqPreKey::from_seed(33, false, &other, &[0xB4; 64]).public());
        assert_eq!(
            decode_prekey_bundle(&signed, None, &pq),
            Err(WireError::Bundle(BundleError::PqPreKeySignature))
        );
    }

    #[test]
    fn wrong_lengths_are_named() {
        let mut message = pb::SignedBundle::from(&SignedBundle::new(
            &bob(),
            &SignedPreKey::from_private_bytes(1, &bob(), &[3; 32]),
        ));
        if let Some(spk) = message.signed_prekey.as_mut() {
            spk.signature.pop();
        }
        assert_eq!(
            decode_signed_bundle(&frame::encode_message(&message)),
            Err(WireError::FieldLength {
                field: "signed_prekey.signature",
                len: 63,
                expected: 64
            })
        );
        let short_key = pb::OneTimePrekey {
            id: 1,
            key: vec![1; 31],
        };
        assert_eq!(
            decode_one_time_prekey(&frame::encode_message(&short_key)),
            Err(WireError::FieldLength {
                field: "one_time_prekey.key",
                len: 31,
                expected: 32
            })
        );
    }

    #[test]
    fn missing_sub_messages_are_errors() {
        let message = pb::SignedBundle {
            identity: None,
            signed_prekey: Some(pb::SignedPrekey::default()),
        };
        assert_eq!(
            decode_signed_bundle(&frame::encode_message(&message)),
            Err(WireError::MissingField("identity"))
        );
    }

    #[test]
    fn invalid_keys_are_refused() {
        let mut identity = pb::PublicIdentity::from(bob().public());
        // The identity point: a valid encoding of small order.
        identity.ik_sig = [1].into_iter().chain([0; 31]).collect();
        assert_eq!(
            PublicIdentity::try_from(identity.clone()),
            Err(WireError::InvalidKey("ik_sig"))
        );
        // Not a point at all: about half of all y coordinates have no x.
        let not_a_point = (2..=u8::MAX)
            .map(|y| [y].into_iter().chain([0; 31]).collect::<Vec<u8>>())
            .find(|bytes| {
                let array: [u8; 32] = bytes.as_slice().try_into().unwrap();
                ed25519_dalek::VerifyingKey::from_bytes(&array).is_err()
            })
            .unwrap();
        identity.ik_sig = not_a_point;
        assert_eq!(
            PublicIdentity::try_from(identity.clone()),
            Err(WireError::InvalidKey("ik_sig"))
        );
        let pq = pb::PqPrekey {
            id: 1,
            key: vec![0xFF; 1184],
            signature: vec![0; 64],
            last_resort: true,
        };
        assert_eq!(
            decode_pq_prekey(&frame::encode_message(&pq)),
            Err(WireError::InvalidKey("pq_prekey.key"))
        );
        let pq = pb::PqPrekey {
            key: vec![0; 1183],
            ..pq
        };
        assert_eq!(
            PqPreKeyPublic::try_from(pq),
            Err(WireError::FieldLength {
                field: "pq_prekey.key",
                len: 1183,
                expected: 1184
            })
        );
    }
}
