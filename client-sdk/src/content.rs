//! Message content (`proto/content.proto`, DESIGN.md §6): what travels,
//! padded and encrypted, inside every message, validated into domain types.
//!
//! Every content message carries a message id (receivers deduplicate by
//! it), the sender's time, the sender's view of the circle epoch (0 in 1:1
//! conversations) and one kind:
//!
//! - kinds people see ([`Content`]): text, check-ins, resources,
//!   gatherings and their RSVPs, goals and their progress, support requests
//!   and reactions;
//! - control kinds the app never sees as messages: contact requests,
//!   receipts and circle control ([`CircleControl`]).
//!
//! **Validation** is the same both ways: [`to_kind`] refuses what the app
//! asks to send, and [`decode`] refuses what a peer sent, with
//! [`ContentError::Invalid`] naming the field (the limits are documented
//! on each kind and kept in `validate`). Nothing a peer sends makes
//! decoding panic.
//!
//! **Newer clients.** A kind this version does not know decodes as
//! [`Content::Unsupported`] and is kept, never dropped. So does a known
//! kind carrying an enum value this version does not know (a new gathering
//! kind, RSVP answer or goal cadence). Zero ("unspecified") where the kind
//! requires a value is invalid.

mod kinds;
mod validate;

#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;

use hearth_proto::content as pb;
use prost::Message as _;

use crate::ids::{MESSAGE_ID_LEN, MessageId};

pub use kinds::{
    Cadence, CheckIn, Gathering, GatheringKind, Goal, GoalProgress, Reaction, Resource, Rsvp,
    RsvpAnswer,
};

/// What a message says, as the app shows it: in a 1:1 conversation or a
/// circle feed.
///
/// Build one and hand it to the client to send; it is validated first
/// (the limits are documented on each kind).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Content {
    /// A text message (at most [`MAX_TEXT_BYTES`](crate::MAX_TEXT_BYTES)).
    Text(String),
    /// How someone is doing.
    CheckIn(CheckIn),
    /// An article, video or hotline worth sharing.
    Resource(Resource),
    /// A proposal to meet. Its id is the id of the message carrying it.
    Gathering(Gathering),
    /// An answer to a gathering.
    Rsvp(Rsvp),
    /// A goal the circle holds its author accountable to. Its id is the id
    /// of the message carrying it.
    Goal(Goal),
    /// Progress on one of the sender's own goals.
    GoalProgress(GoalProgress),
    /// "I need support now": shown urgent to the circle's facilitators.
    SupportRequest {
        /// What the member wants to say (may be empty; at most 4 KiB).
        note: String,
    },
    /// A reaction to a message of the same conversation or circle.
    Reaction(Reaction),
    /// A kind of content this version does not know (sent by a newer
    /// client). It is kept, so an update can show it later. It cannot be
    /// sent.
    Unsupported,
}

/// A decoded `Content` message: id, time, epoch and kind.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Envelope {
    /// The sender's message id.
    pub(crate) message_id: MessageId,
    /// The sender's time.
    pub(crate) sent_at_ms: u64,
    /// The sender's view of the circle epoch (0 in 1:1 conversations).
    pub(crate) epoch: u64,
    /// The kind.
    pub(crate) kind: Kind,
}

/// Every kind this version knows, including control messages the app never
/// sees as messages.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Kind {
    /// Shown in history or a circle feed (validated).
    Shown(Content),
    /// The first message through an invite link.
    ContactRequest(pb::ContactRequest),
    /// Delivery or read receipts.
    Receipt(pb::Receipt),
    /// Circle control, over pairwise sessions only (not validated here:
    /// the circle engine checks it against the roster).
    Circle(CircleControl),
}

/// Circle control messages, as they arrived.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum CircleControl {
    /// A joiner asks the facilitator whose invite it holds.
    JoinRequest(pb::CircleJoinRequest),
    /// A facilitator refuses a join request.
    JoinRefused(pb::CircleJoinRefused),
    /// A facilitator welcomes a joiner.
    Welcome(pb::CircleWelcome),
    /// A new signed roster version.
    RosterUpdate(pb::CircleRosterUpdate),
    /// A member's sender key for one epoch.
    Keys(pb::CircleKeys),
}

/// Content that no correct client sends, or that the app may not send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ContentError {
    /// Not a protobuf `Content`.
    #[error("content does not decode")]
    Undecodable,
    /// The message id is not 16 bytes.
    #[error("content message id has the wrong length")]
    MessageId,
    /// A field is out of range, too long or malformed; names the field
    /// (e.g. `"check-in mood"`). Also: `"kind"` for
    /// [`Content::Unsupported`], which cannot be sent.
    #[error("invalid content: {0}")]
    Invalid(&'static str),
}

/// Decodes content bytes (the unpadded plaintext of a message) and
/// validates the kinds people see.
pub(crate) fn decode(bytes: &[u8]) -> Result<Envelope, ContentError> {
    let content = pb::Content::decode(bytes).map_err(|_| ContentError::Undecodable)?;
    let id: [u8; MESSAGE_ID_LEN] = content
        .message_id
        .as_slice()
        .try_into()
        .map_err(|_| ContentError::MessageId)?;
    let kind = match content.kind {
        None => Kind::Shown(Content::Unsupported),
        Some(kind) => from_kind(kind)?,
    };
    Ok(Envelope {
        message_id: MessageId::from_bytes(id),
        sent_at_ms: content.sent_at_ms,
        epoch: content.epoch,
        kind,
    })
}

/// Sorts a wire kind into shown content (validated) or control.
fn from_kind(kind: pb::content::Kind) -> Result<Kind, ContentError> {
    use pb::content::Kind as K;
    let shown = match kind {
        K::ContactRequest(request) => return Ok(Kind::ContactRequest(request)),
        K::Receipt(receipt) => return Ok(Kind::Receipt(receipt)),
        K::CircleJoinRequest(m) => return Ok(Kind::Circle(CircleControl::JoinRequest(m))),
        K::CircleJoinRefused(m) => return Ok(Kind::Circle(CircleControl::JoinRefused(m))),
        K::CircleWelcome(m) => return Ok(Kind::Circle(CircleControl::Welcome(m))),
        K::CircleRosterUpdate(m) => return Ok(Kind::Circle(CircleControl::RosterUpdate(m))),
        K::CircleKeys(m) => return Ok(Kind::Circle(CircleControl::Keys(m))),
        K::Text(text) => Content::Text(text.text),
        K::CheckIn(m) => Content::CheckIn(CheckIn::from_pb(m)?),
        K::Resource(m) => Content::Resource(Resource::from_pb(m)),
        K::Gathering(m) => Gathering::from_pb(m)?.map_or(Content::Unsupported, Content::Gathering),
        K::Rsvp(m) => Rsvp::from_pb(m)?.map_or(Content::Unsupported, Content::Rsvp),
        K::Goal(m) => Goal::from_pb(m)?.map_or(Content::Unsupported, Content::Goal),
        K::GoalProgress(m) => Content::GoalProgress(GoalProgress::from_pb(m)?),
        K::SupportRequest(m) => Content::SupportRequest { note: m.note },
        K::Reaction(m) => Content::Reaction(Reaction::from_pb(m)?),
    };
    validate::content(&shown)?;
    Ok(Kind::Shown(shown))
}

/// Validates content the app wants to send and turns it into its wire
/// kind. [`Content::Unsupported`] cannot be sent (`Invalid("kind")`).
pub(crate) fn to_kind(content: &Content) -> Result<pb::content::Kind, ContentError> {
    use pb::content::Kind as K;
    validate::content(content)?;
    Ok(match content {
        Content::Text(text) => self::text(text),
        Content::CheckIn(check_in) => K::CheckIn(check_in.to_pb()),
        Content::Resource(resource) => K::Resource(resource.to_pb()),
        Content::Gathering(gathering) => K::Gathering(gathering.to_pb()),
        Content::Rsvp(rsvp) => K::Rsvp(rsvp.to_pb()),
        Content::Goal(goal) => K::Goal(goal.to_pb()),
        Content::GoalProgress(progress) => K::GoalProgress(progress.to_pb()),
        Content::SupportRequest { note } => {
            K::SupportRequest(pb::SupportRequest { note: note.clone() })
        }
        Content::Reaction(reaction) => K::Reaction(reaction.to_pb()),
        Content::Unsupported => return Err(ContentError::Invalid("kind")),
    })
}

/// Encodes a content message outside any circle (epoch 0).
pub(crate) fn encode(message_id: MessageId, sent_at_ms: u64, kind: pb::content::Kind) -> Vec<u8> {
    encode_in_epoch(message_id, sent_at_ms, 0, kind)
}

/// Encodes a content message with the sender's view of the circle epoch.
pub(crate) fn encode_in_epoch(
    message_id: MessageId,
    sent_at_ms: u64,
    epoch: u64,
    kind: pb::content::Kind,
) -> Vec<u8> {
    pb::Content {
        message_id: message_id.as_bytes().to_vec(),
        sent_at_ms,
        epoch,
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

/// For the fuzz target (`fuzz/fuzz_targets/content.rs`): decodes untrusted
/// bytes and checks that what decodes as shown content encodes again to
/// the same content. `false` means a bug: validation is not symmetric.
#[cfg(any(test, feature = "test-hooks"))]
pub(crate) fn decodes_consistently(bytes: &[u8]) -> bool {
    let Ok(envelope) = decode(bytes) else {
        return true;
    };
    let Kind::Shown(content) = envelope.kind else {
        return true;
    };
    if content == Content::Unsupported {
        return to_kind(&content) == Err(ContentError::Invalid("kind"));
    }
    let Ok(kind) = to_kind(&content) else {
        return false;
    };
    let again = encode_in_epoch(
        envelope.message_id,
        envelope.sent_at_ms,
        envelope.epoch,
        kind,
    );
    matches!(decode(&again), Ok(Envelope { kind: Kind::Shown(shown), .. }) if shown == content)
}
