//! The kinds people see, as domain types, and their wire form.
//!
//! `from_pb` only converts shapes (a message id of the wrong length, a
//! number that does not fit, zero where a value is required: `Invalid`;
//! an enum value from a newer client: `Ok(None)`, shown as unsupported).
//! Limits are checked by `validate`, the same for sending and receiving.

use std::fmt;

use hearth_proto::content as pb;

use super::ContentError;
use crate::ids::{MESSAGE_ID_LEN, MessageId};

/// How someone is doing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckIn {
    /// 1 (worst) to 10 (best).
    pub mood: u8,
    /// 1 to 10, if given.
    pub energy: Option<u8>,
    /// Free text, at most 4 KiB (UTF-8 bytes); may be empty.
    pub note: String,
    /// Up to 16 tags (e.g. "sleep", "work"), each 1 to 32 characters.
    pub tags: Vec<String>,
}

/// An article, video or hotline worth sharing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resource {
    /// An `http://` or `https://` address with a host and no user name,
    /// spaces or control characters; at most 2 KiB.
    pub url: String,
    /// At most 200 characters; may be empty.
    pub title: String,
    /// At most 4 KiB; may be empty.
    pub note: String,
}

/// What kind of gathering is proposed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GatheringKind {
    /// Meeting in person.
    CoffeeChat,
    /// A video call.
    VideoCall,
}

impl GatheringKind {
    /// `coffee-chat` or `video-call`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CoffeeChat => "coffee-chat",
            Self::VideoCall => "video-call",
        }
    }
}

impl fmt::Display for GatheringKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A proposal to meet. Its id is the id of the message that carries it;
/// RSVPs refer to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gathering {
    /// Coffee chat or video call.
    pub kind: GatheringKind,
    /// When it starts (milliseconds since the Unix epoch, UTC); after the
    /// epoch and at most the end of year 9999.
    pub starts_at_ms: u64,
    /// The IANA time zone the proposer meant (e.g. `Europe/Berlin`, `UTC`):
    /// 1 to 64 characters of `A-Z a-z 0-9 _ + - /`.
    pub time_zone: String,
    /// 1 to 1440 minutes (a day).
    pub duration_minutes: u32,
    /// A video call link or a place; may be empty; at most 2 KiB.
    pub link: String,
    /// At most 4 KiB; may be empty.
    pub note: String,
}

/// An answer to a gathering.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RsvpAnswer {
    /// Coming.
    Yes,
    /// Not coming.
    No,
    /// Not sure yet.
    Maybe,
}

impl RsvpAnswer {
    /// `yes`, `no` or `maybe`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Yes => "yes",
            Self::No => "no",
            Self::Maybe => "maybe",
        }
    }
}

impl fmt::Display for RsvpAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A member's answer to a gathering; a later answer replaces an earlier one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rsvp {
    /// The id of the message that proposed the gathering.
    pub gathering: MessageId,
    /// The answer.
    pub answer: RsvpAnswer,
}

/// How often a goal expects progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cadence {
    /// Once, by the goal's due date if it has one.
    Once,
    /// Every day (24 hours).
    Daily,
    /// Every week (7 days).
    Weekly,
}

impl Cadence {
    /// `once`, `daily` or `weekly`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Once => "once",
            Self::Daily => "daily",
            Self::Weekly => "weekly",
        }
    }

    /// The time between two check-ins of a recurring goal; `None` for
    /// [`Cadence::Once`].
    pub fn period_ms(self) -> Option<u64> {
        const DAY_MS: u64 = 24 * 60 * 60 * 1000;
        match self {
            Self::Once => None,
            Self::Daily => Some(DAY_MS),
            Self::Weekly => Some(7 * DAY_MS),
        }
    }
}

impl fmt::Display for Cadence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A personal goal the circle holds its author accountable to. Its id is
/// the id of the message that carries it; progress refers to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Goal {
    /// What the member wants to do: not blank, at most 1 KiB.
    pub text: String,
    /// How often progress is expected.
    pub cadence: Cadence,
    /// For a [`Cadence::Once`] goal, when it is due (milliseconds since the
    /// Unix epoch; after the epoch and at most the end of year 9999).
    /// Recurring goals ignore it.
    pub due_at_ms: Option<u64>,
}

/// Progress on one of the sender's own goals (progress on someone else's
/// goal is ignored by the feed views).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoalProgress {
    /// The id of the message that set the goal.
    pub goal: MessageId,
    /// At most 4 KiB; may be empty.
    pub note: String,
    /// The goal is reached: no more check-ins are due.
    pub done: bool,
}

/// A reaction to a message of the same conversation or circle; a member's
/// later reaction to the same message replaces the earlier one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reaction {
    /// The id of the message reacted to.
    pub target: MessageId,
    /// One emoji: at most 16 bytes, no spaces or control characters.
    /// Empty removes the member's reaction.
    pub emoji: String,
}

/// A message id field of 16 bytes.
fn message_id(bytes: &[u8], field: &'static str) -> Result<MessageId, ContentError> {
    let id: [u8; MESSAGE_ID_LEN] = bytes.try_into().map_err(|_| ContentError::Invalid(field))?;
    Ok(MessageId::from_bytes(id))
}

/// A number that must fit a byte.
fn small(value: u32, field: &'static str) -> Result<u8, ContentError> {
    u8::try_from(value).map_err(|_| ContentError::Invalid(field))
}

impl CheckIn {
    pub(super) fn from_pb(m: pb::CheckIn) -> Result<Self, ContentError> {
        Ok(Self {
            mood: small(m.mood, "check-in mood")?,
            energy: m
                .energy
                .map(|energy| small(energy, "check-in energy"))
                .transpose()?,
            note: m.note,
            tags: m.tags,
        })
    }

    pub(super) fn to_pb(&self) -> pb::CheckIn {
        pb::CheckIn {
            mood: self.mood.into(),
            energy: self.energy.map(u32::from),
            note: self.note.clone(),
            tags: self.tags.clone(),
        }
    }
}

impl Resource {
    pub(super) fn from_pb(m: pb::Resource) -> Self {
        Self {
            url: m.url,
            title: m.title,
            note: m.note,
        }
    }

    pub(super) fn to_pb(&self) -> pb::Resource {
        pb::Resource {
            url: self.url.clone(),
            title: self.title.clone(),
            note: self.note.clone(),
        }
    }
}

impl Gathering {
    /// `None`: a gathering kind from a newer client.
    pub(super) fn from_pb(m: pb::Gathering) -> Result<Option<Self>, ContentError> {
        use pb::gathering::Kind as K;
        let kind = match K::try_from(m.kind) {
            Ok(K::Unspecified) => return Err(ContentError::Invalid("gathering kind")),
            Ok(K::CoffeeChat) => GatheringKind::CoffeeChat,
            Ok(K::VideoCall) => GatheringKind::VideoCall,
            Err(_) => return Ok(None),
        };
        Ok(Some(Self {
            kind,
            starts_at_ms: m.starts_at_ms,
            time_zone: m.time_zone,
            duration_minutes: m.duration_minutes,
            link: m.link,
            note: m.note,
        }))
    }

    pub(super) fn to_pb(&self) -> pb::Gathering {
        let kind = match self.kind {
            GatheringKind::CoffeeChat => pb::gathering::Kind::CoffeeChat,
            GatheringKind::VideoCall => pb::gathering::Kind::VideoCall,
        };
        pb::Gathering {
            kind: kind.into(),
            starts_at_ms: self.starts_at_ms,
            time_zone: self.time_zone.clone(),
            duration_minutes: self.duration_minutes,
            link: self.link.clone(),
            note: self.note.clone(),
        }
    }
}

impl Rsvp {
    /// `None`: an answer from a newer client.
    pub(super) fn from_pb(m: pb::Rsvp) -> Result<Option<Self>, ContentError> {
        use pb::rsvp::Answer as A;
        let gathering = message_id(&m.gathering_id, "rsvp gathering id")?;
        let answer = match A::try_from(m.answer) {
            Ok(A::Unspecified) => return Err(ContentError::Invalid("rsvp answer")),
            Ok(A::Yes) => RsvpAnswer::Yes,
            Ok(A::No) => RsvpAnswer::No,
            Ok(A::Maybe) => RsvpAnswer::Maybe,
            Err(_) => return Ok(None),
        };
        Ok(Some(Self { gathering, answer }))
    }

    pub(super) fn to_pb(&self) -> pb::Rsvp {
        let answer = match self.answer {
            RsvpAnswer::Yes => pb::rsvp::Answer::Yes,
            RsvpAnswer::No => pb::rsvp::Answer::No,
            RsvpAnswer::Maybe => pb::rsvp::Answer::Maybe,
        };
        pb::Rsvp {
            gathering_id: self.gathering.as_bytes().to_vec(),
            answer: answer.into(),
        }
    }
}

impl Goal {
    /// `None`: a cadence from a newer client.
    pub(super) fn from_pb(m: pb::Goal) -> Result<Option<Self>, ContentError> {
        use pb::goal::Cadence as C;
        let cadence = match C::try_from(m.cadence) {
            Ok(C::Unspecified) => Cadence::Once,
            Ok(C::Daily) => Cadence::Daily,
            Ok(C::Weekly) => Cadence::Weekly,
            Err(_) => return Ok(None),
        };
        Ok(Some(Self {
            text: m.text,
            cadence,
            due_at_ms: (m.due_at_ms != 0).then_some(m.due_at_ms),
        }))
    }

    pub(super) fn to_pb(&self) -> pb::Goal {
        let cadence = match self.cadence {
            Cadence::Once => pb::goal::Cadence::Unspecified,
            Cadence::Daily => pb::goal::Cadence::Daily,
            Cadence::Weekly => pb::goal::Cadence::Weekly,
        };
        pb::Goal {
            text: self.text.clone(),
            cadence: cadence.into(),
            due_at_ms: self.due_at_ms.unwrap_or(0),
        }
    }
}

impl GoalProgress {
    pub(super) fn from_pb(m: pb::GoalProgress) -> Result<Self, ContentError> {
        Ok(Self {
            goal: message_id(&m.goal_id, "progress goal id")?,
            note: m.note,
            done: m.done,
        })
    }

    pub(super) fn to_pb(&self) -> pb::GoalProgress {
        pb::GoalProgress {
            goal_id: self.goal.as_bytes().to_vec(),
            note: self.note.clone(),
            done: self.done,
        }
    }
}

impl Reaction {
    pub(super) fn from_pb(m: pb::Reaction) -> Result<Self, ContentError> {
        Ok(Self {
            target: message_id(&m.target_id, "reaction target id")?,
            emoji: m.emoji,
        })
    }

    pub(super) fn to_pb(&self) -> pb::Reaction {
        pb::Reaction {
            target_id: self.target.as_bytes().to_vec(),
            emoji: self.emoji.clone(),
        }
    }
}
