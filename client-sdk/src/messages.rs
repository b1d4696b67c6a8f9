//! Messages as the app sees them: history entries and their delivery status.

use crate::content::{self, Content};
use crate::ids::{MEMBER_ID_LEN, MESSAGE_ID_LEN, MemberId, MessageId};
use crate::records::{MessageRecord, StoredStatus};
use crate::relay::RelayErrorCode;
use crate::store::StoreError;

/// Longest text message, in UTF-8 bytes. It pads to 32 KiB, so the sealed
/// envelope stays under a relay's default 64 KiB limit.
pub const MAX_TEXT_BYTES: usize = 16 * 1024;

/// One message of a conversation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The message id (the sender's).
    pub id: MessageId,
    /// The other member of the conversation.
    pub member: MemberId,
    /// Whether we sent or received it.
    pub direction: Direction,
    /// When the sender wrote it (milliseconds since the Unix epoch, the
    /// sender's clock).
    pub sent_at_ms: u64,
    /// When this device stored it.
    pub stored_at_ms: u64,
    /// What it says.
    pub content: Content,
    /// Where it stands.
    pub status: MessageStatus,
}

/// Who sent a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the contact to us.
    Incoming,
    /// From us to the contact.
    Outgoing,
}

/// Where a message stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MessageStatus {
    /// Received from the contact.
    Received,
    /// Waiting to be handed to the recipient's relay.
    Queued,
    /// Stored by the recipient's relay.
    Sent,
    /// The recipient reported it arrived.
    Delivered,
    /// The recipient reported reading it.
    Read,
    /// Will not be delivered.
    Failed(FailureReason),
}

/// Why a message was not delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureReason {
    /// The recipient's mailbox is full (retried later).
    MailboxFull,
    /// The recipient's relay is rate limiting us (retried later).
    RateLimited,
    /// The recipient no longer accepts our messages (revoked our send token).
    Unauthorized,
    /// The recipient's mailbox no longer exists.
    UnknownMailbox,
    /// The envelope is larger than the recipient's relay accepts.
    TooLarge,
    /// The relay refused it for another reason.
    Refused(RelayErrorCode),
}

impl FailureReason {
    /// The reason for a relay's refusal.
    pub fn from_code(code: RelayErrorCode) -> Self {
        match code {
            RelayErrorCode::MailboxFull => Self::MailboxFull,
            RelayErrorCode::RateLimited => Self::RateLimited,
            RelayErrorCode::Unauthorized => Self::Unauthorized,
            RelayErrorCode::UnknownMailbox => Self::UnknownMailbox,
            RelayErrorCode::EnvelopeTooLarge | RelayErrorCode::FrameTooLarge => Self::TooLarge,
            other => Self::Refused(other),
        }
    }

    /// Whether the message stays queued and is retried.
    pub fn is_retryable(self) -> bool {
        matches!(self, Self::MailboxFull | Self::RateLimited)
    }

    /// The relay error code name, as stored.
    pub(crate) fn code_name(self) -> String {
        match self {
            Self::MailboxFull => RelayErrorCode::MailboxFull.to_string(),
            Self::RateLimited => RelayErrorCode::RateLimited.to_string(),
            Self::Unauthorized => RelayErrorCode::Unauthorized.to_string(),
            Self::UnknownMailbox => RelayErrorCode::UnknownMailbox.to_string(),
            Self::TooLarge => RelayErrorCode::EnvelopeTooLarge.to_string(),
            Self::Refused(code) => code.to_wire().to_string(),
        }
    }

    /// Reads [`FailureReason::code_name`].
    pub(crate) fn from_code_name(name: &str) -> Self {
        let code = [
            RelayErrorCode::MailboxFull,
            RelayErrorCode::RateLimited,
            RelayErrorCode::Unauthorized,
            RelayErrorCode::UnknownMailbox,
            RelayErrorCode::EnvelopeTooLarge,
        ]
        .into_iter()
        .find(|code| code.to_string() == name)
        .unwrap_or_else(|| RelayErrorCode::from_wire(name.parse().unwrap_or(0)));
        Self::from_code(code)
    }
}

impl TryFrom<&MessageRecord> for Message {
    type Error = StoreError;

    fn try_from(record: &MessageRecord) -> Result<Self, StoreError> {
        let corrupt = || StoreError::Corrupt("message");
        let id: [u8; MESSAGE_ID_LEN] = record
            .message_id
            .as_slice()
            .try_into()
            .map_err(|_| corrupt())?;
        let member: [u8; MEMBER_ID_LEN] = record
            .member_id
            .as_slice()
            .try_into()
            .map_err(|_| corrupt())?;
        let content = match content::decode(&record.content).map(|e| e.kind) {
            Ok(content::Kind::Shown(content)) => content,
            _ => Content::Unsupported,
        };
        let status = match StoredStatus::try_from(record.status).map_err(|_| corrupt())? {
            StoredStatus::Received => MessageStatus::Received,
            StoredStatus::Queued => MessageStatus::Queued,
            StoredStatus::Sent => MessageStatus::Sent,
            StoredStatus::Delivered => MessageStatus::Delivered,
            StoredStatus::Read => MessageStatus::Read,
            StoredStatus::Failed => {
                MessageStatus::Failed(FailureReason::from_code_name(&record.failure))
            }
        };
        Ok(Self {
            id: MessageId::from_bytes(id),
            member: MemberId::from_bytes(member),
            direction: if record.outgoing {
                Direction::Outgoing
            } else {
                Direction::Incoming
            },
            sent_at_ms: record.sent_at_ms,
            stored_at_ms: record.stored_at_ms,
            content,
            status,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_reasons_survive_storage() {
        for reason in [
            FailureReason::MailboxFull,
            FailureReason::RateLimited,
            FailureReason::Unauthorized,
            FailureReason::UnknownMailbox,
            FailureReason::TooLarge,
            FailureReason::Refused(RelayErrorCode::BadRequest),
        ] {
            assert_eq!(FailureReason::from_code_name(&reason.code_name()), reason);
        }
        assert!(FailureReason::MailboxFull.is_retryable());
        assert!(!FailureReason::Unauthorized.is_retryable());
    }

    #[test]
    fn a_stored_record_becomes_a_message() {
        let record = MessageRecord {
            message_id: vec![1; 16],
            member_id: vec![2; 16],
            outgoing: true,
            sent_at_ms: 3,
            stored_at_ms: 4,
            content: content::encode(MessageId::from_bytes([1; 16]), 3, content::text("hi")),
            status: StoredStatus::Failed as i32,
            failure: FailureReason::Unauthorized.code_name(),
            circle_id: Vec::new(),
        };
        let message = Message::try_from(&record).unwrap();
        assert_eq!(message.direction, Direction::Outgoing);
        assert_eq!(message.content, Content::Text("hi".into()));
        assert_eq!(
            message.status,
            MessageStatus::Failed(FailureReason::Unauthorized)
        );
    }
}
