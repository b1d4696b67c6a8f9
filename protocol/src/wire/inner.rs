//! The inner message of a sealed-sender body: who sent it and the message.

use super::{PreKeyMessage, WireError, ed25519_key, pb, required, x25519_key};
use crate::keys::{Ed25519PublicKey, PublicIdentity, X25519PublicKey};
use crate::ratchet::RatchetMessage;
use crate::sender_key::SenderKeyMessage;

/// The sender device's identity public keys, carried only inside the sealed
/// body. It is a claim, not a proof: it names the pairwise session (or,
/// for a circle message, the sender key) that must then authenticate the
/// message. No device id or mailbox is included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderCertificate {
    /// The sender's `IK_sig`.
    pub sig_key: Ed25519PublicKey,
    /// The sender's `IK_dh`.
    pub dh_key: X25519PublicKey,
}

impl SenderCertificate {
    /// The certificate of a device with this public identity.
    pub fn of(identity: &PublicIdentity) -> Self {
        Self {
            sig_key: identity.sig_key,
            dh_key: identity.dh_key,
        }
    }

    /// Whether this certificate names `identity`'s keys.
    pub fn names(&self, identity: &PublicIdentity) -> bool {
        *self == Self::of(identity)
    }
}

/// The message a sealed body carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InnerMessage {
    /// A first message, starting a pairwise session.
    PreKey(PreKeyMessage),
    /// A message of an established pairwise session.
    Ratchet(RatchetMessage),
    /// A circle message.
    SenderKey(SenderKeyMessage),
}

/// The plaintext of a sealed-sender body: the sender certificate and the
/// message. For a [`InnerMessage::PreKey`], decoding checks that the
/// certificate names the message's initiator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedInner {
    /// Who claims to have sent the message.
    pub sender: SenderCertificate,
    /// The message.
    pub message: InnerMessage,
}

impl TryFrom<pb::SenderCertificate> for SenderCertificate {
    type Error = WireError;

    fn try_from(message: pb::SenderCertificate) -> Result<Self, WireError> {
        Ok(Self {
            sig_key: ed25519_key(&message.ik_sig, "sender.ik_sig")?,
            dh_key: x25519_key(&message.ik_dh, "sender.ik_dh")?,
        })
    }
}

impl From<&SenderCertificate> for pb::SenderCertificate {
    fn from(certificate: &SenderCertificate) -> Self {
        Self {
            ik_sig: certificate.sig_key.as_bytes().to_vec(),
            ik_dh: certificate.dh_key.as_bytes().to_vec(),
        }
    }
}

impl TryFrom<pb::sealed_inner::Message> for InnerMessage {
    type Error = WireError;

    fn try_from(message: pb::sealed_inner::Message) -> Result<Self, WireError> {
        use pb::sealed_inner::Message;
        Ok(match message {
            Message::Prekey(m) => Self::PreKey(m.try_into()?),
            Message::Ratchet(m) => Self::Ratchet(m.try_into()?),
            Message::SenderKey(m) => Self::SenderKey(m.try_into()?),
        })
    }
}

impl From<&InnerMessage> for pb::sealed_inner::Message {
    fn from(message: &InnerMessage) -> Self {
        match message {
            InnerMessage::PreKey(m) => Self::Prekey(m.into()),
            InnerMessage::Ratchet(m) => Self::Ratchet(m.into()),
            InnerMessage::SenderKey(m) => Self::SenderKey(m.into()),
        }
    }
}

impl TryFrom<pb::SealedInner> for SealedInner {
    type Error = WireError;

    fn try_from(message: pb::SealedInner) -> Result<Self, WireError> {
        let sender: SenderCertificate = required(message.sender, "sender")?.try_into()?;
        let message: InnerMessage = required(message.message, "message")?.try_into()?;
        if let InnerMessage::PreKey(prekey) = &message
            && !sender.names(&prekey.init.initiator)
        {
            return Err(WireError::SenderMismatch);
        }
        Ok(Self { sender, message })
    }
}

impl From<&SealedInner> for pb::SealedInner {
    fn from(inner: &SealedInner) -> Self {
        Self {
            sender: Some((&inner.sender).into()),
            message: Some((&inner.message).into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use x25519_dalek::{PublicKey, StaticSecret};

    use super::*;
    use crate::frame;
    use crate::keys::IdentityKeyPair;
    use crate::ratchet::Header;
    use crate::sealed;
    use crate::wire::{decode_sealed_inner, encode_sealed_inner};

    fn ratchet_message() -> RatchetMessage {
        RatchetMessage {
            header: Header {
                ratchet_key: X25519PublicKey::from_bytes([3; 32]),
                pn: 1,
                n: 2,
            },
            ciphertext: vec![0xAB; 256 + 16],
        }
    }

    fn sender() -> SenderCertificate {
        SenderCertificate::of(IdentityKeyPair::from_secrets(&[1; 32], &[2; 32]).public())
    }

    #[test]
    fn an_inner_message_crosses_a_sealed_body() {
        let mut rng = StdRng::seed_from_u64(5);
        let device = StaticSecret::random_from_rng(&mut rng);
        let mailbox = [6; 32];
        let inner = SealedInner {
            sender: sender(),
            message: InnerMessage::Ratchet(ratchet_message()),
        };
        let (key, body) = sealed::seal_body(&encode_sealed_inner(&inner), &mut rng).unwrap();
        let hash = sealed::body_hash(&body);
        let header =
            sealed::seal_header(&key, &hash, &PublicKey::from(&device), &mailbox, &mut rng)
                .unwrap();
        let (key, hash) = sealed::open_header(&device, &mailbox, header.as_bytes()).unwrap();
        let opened = sealed::open_body(&key, &hash, &body).unwrap();
        assert_eq!(decode_sealed_inner(&opened).unwrap(), inner);
    }

    #[test]
    fn an_empty_oneof_or_missing_sender_is_refused() {
        let mut message = pb::SealedInner::from(&SealedInner {
            sender: sender(),
            message: InnerMessage::Ratchet(ratchet_message()),
        });
        message.message = None;
        assert_eq!(
            decode_sealed_inner(&frame::encode_message(&message)),
            Err(WireError::MissingField("message"))
        );
        message.sender = None;
        assert_eq!(
            decode_sealed_inner(&frame::encode_message(&message)),
            Err(WireError::MissingField("sender"))
        );
    }

    #[test]
    fn a_weak_sender_key_is_refused() {
        let mut certificate = pb::SenderCertificate::from(&sender());
        certificate.ik_sig = [1].into_iter().chain([0; 31]).collect();
        assert_eq!(
            SenderCertificate::try_from(certificate),
            Err(WireError::InvalidKey("sender.ik_sig"))
        );
    }
}
