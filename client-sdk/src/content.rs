//! Message content (`proto/content.proto`): what travels, padded and
//! encrypted, inside every message, validated into domain types.

use hearth_proto::content as pb;
use prost::Message as _;

use crate::ids::{MESSAGE_ID_LEN, MessageId};

/// What a message says, as the app shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Content {
    /// A text message.
    Text(String),
    /// A kind of content this version does not know (sent by a newer
    /// client). It is kept, so an update can show it later.
    Unsupported,
}

/// A decoded `Content` message: id, time and kind.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Envelope {
    /// The sender's message id.
    pub(crate) message_id: MessageId,
    /// The sender's time.
    pub(crate) sent_at_ms: u64,
    /// The kind.
    pub(crate) kind: Kind,
}

/// Every kind this version knows, including control messages the app never
/// sees as messages.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Kind {
    /// Shown in history.
    Shown(Content),
    /// The first message through an invite link.
    ContactRequest(pb::ContactRequest),
    /// Delivery or read receipts.
    Receipt(pb::Receipt),
}

/// Content that no correct client sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ContentError {
    /// Not a protobuf `Content`.
    #[error("content does not decode")]
    Undecodable,
    /// The message id is not 16 bytes.
    #[error("content message id has the wrong length")]
    MessageId,
}

/// Decodes content bytes (the unpadded plaintext of a message).
pub(crate) fn decode(bytes: &[u8]) -> Result<Envelope, ContentError> {
    let content = pb::Content::decode(bytes).map_err(|_| ContentError::Undecodable)?;
    let id: [u8; MESSAGE_ID_LEN] = content
        .message_id
        .as_slice()
        .try_into()
        .map_err(|_| ContentError::MessageId)?;
    let kind = match content.kind {
        Some(pb::content::Kind::Text(text)) => Kind::Shown(Content::Text(text.text)),
        Some(pb::content::Kind::ContactRequest(request)) => Kind::ContactRequest(request),
        Some(pb::content::Kind::Receipt(receipt)) => Kind::Receipt(receipt),
        None => Kind::Shown(Content::Unsupported),
    };
    Ok(Envelope {
        message_id: MessageId::from_bytes(id),
        sent_at_ms: content.sent_at_ms,
        kind,
    })
}

/// Encodes a content message.
pub(crate) fn encode(message_id: MessageId, sent_at_ms: u64, kind: pb::content::Kind) -> Vec<u8> {
    pb::Content {
        message_id: message_id.as_bytes().to_vec(),
        sent_at_ms,
        kind: Some(kind),
    }
    .encode_to_vec()
}

/// A text kind.
pub(crate) fn text(text: &str) -> pb::content::Kind {
    pb::content::Kind::Text(pb::Text {
        text: text.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trips() {
        let id = MessageId::from_bytes([3; 16]);
        let bytes = encode(id, 42, text("hello"));
        let envelope = decode(&bytes).unwrap();
        assert_eq!(envelope.message_id, id);
        assert_eq!(envelope.sent_at_ms, 42);
        assert_eq!(envelope.kind, Kind::Shown(Content::Text("hello".into())));
    }

    #[test]
    fn an_unknown_kind_from_a_newer_client_is_unsupported_not_an_error() {
        // Field 99 (a kind this version does not know), length-delimited.
        let mut bytes = pb::Content {
            message_id: vec![1; 16],
            sent_at_ms: 7,
            kind: None,
        }
        .encode_to_vec();
        bytes.extend_from_slice(&[0x9a, 0x06, 0x02, 0x08, 0x01]);
        let envelope = decode(&bytes).unwrap();
        assert_eq!(envelope.kind, Kind::Shown(Content::Unsupported));
        assert_eq!(envelope.sent_at_ms, 7);
    }

    #[test]
    fn malformed_content_is_an_error() {
        assert_eq!(decode(&[0xff]), Err(ContentError::Undecodable));
        let short_id = pb::Content {
            message_id: vec![1; 15],
            ..Default::default()
        }
        .encode_to_vec();
        assert_eq!(decode(&short_id), Err(ContentError::MessageId));
    }
}
