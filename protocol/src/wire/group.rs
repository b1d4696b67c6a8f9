//! Circle messages and sender-key distributions.
//!
//! The domain types keep their own fixed layouts (`to_bytes` / `from_bytes`
//! in [`crate::sender_key`]); these conversions check the protobuf fields'
//! sizes, then rebuild that layout and let its decoder check the rest (chain
//! id, ciphertext length, signing key), so both paths accept exactly the
//! same messages.

use zeroize::{Zeroize, Zeroizing};

use super::{CIRCLE_ID_LEN, KEY_LEN, SIG_LEN, WireError, exact, pb};
use crate::sender_key::{DecodeError, SenderKeyDistribution, SenderKeyMessage, VERSION};

/// `version ‖ circle_id ‖ epoch ‖ chain_id ‖ iteration`, the common prefix
/// of both layouts.
fn layout_prefix(
    out: &mut Vec<u8>,
    circle_id: &[u8; CIRCLE_ID_LEN],
    epoch: u64,
    chain_id: u32,
    iteration: u32,
) {
    out.push(VERSION);
    out.extend_from_slice(circle_id);
    out.extend_from_slice(&epoch.to_be_bytes());
    out.extend_from_slice(&chain_id.to_be_bytes());
    out.extend_from_slice(&iteration.to_be_bytes());
}

/// Maps a layout error to the field it concerns. The fields' sizes were
/// checked first, so only value errors remain.
fn layout_error(error: DecodeError, ciphertext_len: usize) -> WireError {
    match error {
        DecodeError::BadChainId => WireError::InvalidValue("chain_id"),
        DecodeError::BadKey => WireError::InvalidKey("signing_key"),
        _ => WireError::CiphertextLength {
            field: "ciphertext",
            len: ciphertext_len,
        },
    }
}

impl TryFrom<pb::SenderKeyMessage> for SenderKeyMessage {
    type Error = WireError;

    fn try_from(message: pb::SenderKeyMessage) -> Result<Self, WireError> {
        let circle_id = exact::<CIRCLE_ID_LEN>(&message.circle_id, "circle_id")?;
        let signature = exact::<SIG_LEN>(&message.signature, "signature")?;
        let ct_len = message.ciphertext.len();
        let mut layout = Vec::with_capacity(1 + 32 + ct_len + SIG_LEN);
        let (epoch, chain_id, iteration) = (message.epoch, message.chain_id, message.iteration);
        layout_prefix(&mut layout, &circle_id, epoch, chain_id, iteration);
        layout.extend_from_slice(&message.ciphertext);
        layout.extend_from_slice(&signature);
        Self::from_bytes(&layout).map_err(|e| layout_error(e, ct_len))
    }
}

impl From<&SenderKeyMessage> for pb::SenderKeyMessage {
    fn from(message: &SenderKeyMessage) -> Self {
        Self {
            circle_id: message.circle_id().to_vec(),
            epoch: message.epoch(),
            chain_id: message.chain_id(),
            iteration: message.iteration(),
            ciphertext: message.ciphertext().to_vec(),
            signature: message.signature().to_vec(),
        }
    }
}

/// Wipes the chain key from the generated message, which does not zeroize
/// itself.
impl TryFrom<pb::SenderKeyDistribution> for SenderKeyDistribution {
    type Error = WireError;

    fn try_from(mut message: pb::SenderKeyDistribution) -> Result<Self, WireError> {
        let result = distribution_from(&message);
        message.chain_key.zeroize();
        result
    }
}

fn distribution_from(
    message: &pb::SenderKeyDistribution,
) -> Result<SenderKeyDistribution, WireError> {
    let circle_id = exact::<CIRCLE_ID_LEN>(&message.circle_id, "circle_id")?;
    let chain_key = Zeroizing::new(exact::<KEY_LEN>(&message.chain_key, "chain_key")?);
    let signing_key = exact::<KEY_LEN>(&message.signing_key, "signing_key")?;
    let mut layout = Zeroizing::new(Vec::with_capacity(SenderKeyDistribution::LEN));
    let (epoch, chain_id, iteration) = (message.epoch, message.chain_id, message.iteration);
    layout_prefix(&mut layout, &circle_id, epoch, chain_id, iteration);
    layout.extend_from_slice(chain_key.as_ref());
    layout.extend_from_slice(&signing_key);
    SenderKeyDistribution::from_bytes(&layout).map_err(|e| layout_error(e, 0))
}

/// The result holds the chain key in a plain `Vec`: prefer
/// [`encode_sender_key_distribution`](super::encode_sender_key_distribution),
/// which wipes it.
impl From<&SenderKeyDistribution> for pb::SenderKeyDistribution {
    fn from(distribution: &SenderKeyDistribution) -> Self {
        Self {
            circle_id: distribution.circle_id().to_vec(),
            epoch: distribution.epoch(),
            chain_id: distribution.chain_id(),
            iteration: distribution.iteration(),
            chain_key: distribution.expose_chain_key().to_vec(),
            signing_key: distribution.signing_key().to_bytes().to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame;
    use crate::sender_key::{RemoteSenderKey, SenderKeyState};
    use crate::wire::{
        decode_sender_key_distribution, decode_sender_key_message, encode_sender_key_distribution,
        encode_sender_key_message,
    };
    use ed25519_dalek::SigningKey;

    fn own() -> SenderKeyState {
        let ik = SigningKey::from_bytes(&[1; 32]).verifying_key();
        SenderKeyState::from_parts([4; 16], 9, ik, 0x0123_4567, &[7; 32], &[8; 32], 0).unwrap()
    }

    #[test]
    fn a_circle_message_crosses_the_wire() {
        let mut own = own();
        let distribution = own.distribution();
        let encoded = encode_sender_key_distribution(&distribution);
        let received = decode_sender_key_distribution(&encoded).unwrap();
        assert_eq!(received.to_bytes(), distribution.to_bytes());
        let mut remote = RemoteSenderKey::new(&received, *own.sender_ik_sig());

        let message = own.encrypt(b"7/10 today").unwrap();
        let decoded = decode_sender_key_message(&encode_sender_key_message(&message)).unwrap();
        assert_eq!(decoded, message);
        assert_eq!(remote.decrypt(&decoded).unwrap(), b"7/10 today");
    }

    #[test]
    fn field_values_are_checked() {
        let message = own().encrypt(b"x").unwrap();
        let base = pb::SenderKeyMessage::from(&message);
        let cases = [
            (
                pb::SenderKeyMessage {
                    chain_id: 0x8000_0000,
                    ..base.clone()
                },
                WireError::InvalidValue("chain_id"),
            ),
            (
                pb::SenderKeyMessage {
                    circle_id: vec![4; 17],
                    ..base.clone()
                },
                WireError::FieldLength {
                    field: "circle_id",
                    len: 17,
                    expected: 16,
                },
            ),
            (
                pb::SenderKeyMessage {
                    signature: vec![0; 65],
                    ..base.clone()
                },
                WireError::FieldLength {
                    field: "signature",
                    len: 65,
                    expected: 64,
                },
            ),
            (
                pb::SenderKeyMessage {
                    ciphertext: vec![0; 300],
                    ..base.clone()
                },
                WireError::CiphertextLength {
                    field: "ciphertext",
                    len: 300,
                },
            ),
        ];
        for (message, expected) in cases {
            assert_eq!(
                decode_sender_key_message(&frame::encode_message(&message)),
                Err(expected)
            );
        }
    }

    #[test]
    fn weak_signing_keys_and_bad_chain_keys_are_refused() {
        let mut message = pb::SenderKeyDistribution::from(&own().distribution());
        message.signing_key = [1].into_iter().chain([0; 31]).collect();
        assert_eq!(
            decode_sender_key_distribution(&frame::encode_message(&message)).err(),
            Some(WireError::InvalidKey("signing_key"))
        );
        message.chain_key = vec![0; 31];
        assert_eq!(
            SenderKeyDistribution::try_from(message).err(),
            Some(WireError::FieldLength {
                field: "chain_key",
                len: 31,
                expected: 32
            })
        );
    }
}
