//! Errors of the SDK's API: each variant is something an app can act on, and
//! none carries a key, a token, a secret or message content.
//!
//! Sends are queued, so problems delivering a message (the recipient's
//! mailbox is full, the recipient revoked our send token...) are not errors
//! of [`Client::send_text`](crate::Client::send_text): they arrive as
//! [`Event::DeliveryFailed`](crate::Event::DeliveryFailed) with a
//! [`FailureReason`](crate::FailureReason) and show in the message's
//! [`MessageStatus`](crate::MessageStatus).

use crate::invite::InvalidInvite;
use crate::relay::{ClientError, RelayErrorCode};
use crate::store::StoreError;

/// Why an SDK call failed.
///
/// Variants group into: the network or relay ([`Error::RelayUnreachable`],
/// [`Error::FingerprintMismatch`], [`Error::RateLimited`],
/// [`Error::Relay`]...), the caller's input ([`Error::UnknownContact`],
/// [`Error::InvalidInvite`]...), the peer ([`Error::InviteKeysMismatch`]),
/// and local storage ([`Error::WrongStorageKey`], [`Error::Store`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The relay could not be reached (no network, relay down, timeout).
    /// Sends stay queued; try again later.
    #[error("the relay is unreachable")]
    RelayUnreachable,
    /// The relay presented a key that does not match the fingerprint in its
    /// address: it is not the relay the address names. Do not retry
    /// silently; check the address.
    #[error("the relay's key does not match the fingerprint in its address")]
    FingerprintMismatch,
    /// The relay is private and registering needs a token from its operator.
    #[error("this relay needs a registration token")]
    RegistrationRequired,
    /// The relay refused the registration token (unknown, expired or used up).
    #[error("the relay refused the registration token")]
    RegistrationTokenRejected,
    /// The relay asks this device to slow down; retry later.
    #[error("the relay is rate limiting this device; retry later")]
    RateLimited,
    /// The relay refused a request for another reason.
    #[error("the relay refused the request ({0})")]
    Relay(RelayErrorCode),
    /// No contact matches this member id or name.
    #[error("no such contact")]
    UnknownContact,
    /// Several contacts have this name; use the member id.
    #[error("several contacts have this name; use the member id")]
    AmbiguousContact,
    /// This member is already a contact.
    #[error("already a contact")]
    AlreadyContact,
    /// The invite link is one's own.
    #[error("this is your own invite link")]
    OwnInvite,
    /// The invite link is malformed.
    #[error("invalid invite link: {0}")]
    InvalidInvite(#[from] InvalidInvite),
    /// The inviter's relay no longer accepts the link (its send token was
    /// revoked, or the mailbox is gone).
    #[error("the invite link is no longer valid")]
    InviteExpired,
    /// The keys the inviter's relay handed out are not the inviter's (they
    /// do not match the member id in the link, or their signatures fail): a
    /// relay or network in the middle, or a damaged link.
    #[error("the invite's keys do not match the inviter")]
    InviteKeysMismatch,
    /// No circle has the id or name given.
    #[error("no such circle")]
    UnknownCircle,
    /// Several circles have the name given.
    #[error("several circles have this name; use the circle id")]
    AmbiguousCircle,
    /// Only a facilitator of the circle may do this.
    #[error("only a facilitator of the circle can do this")]
    NotAFacilitator,
    /// The member is not in the circle.
    #[error("that member is not in the circle")]
    NotACircleMember,
    /// This device is not (or no longer) an active member of the circle.
    #[error("you are not an active member of this circle")]
    NotInCircle,
    /// This device is already in (or joining) the circle.
    #[error("you are already in this circle (or asked to join it)")]
    AlreadyInCircle,
    /// The change would leave the circle without a facilitator.
    #[error("a circle needs at least one facilitator; promote someone first")]
    LastFacilitator,
    /// Content the app built is out of range (the field is named).
    #[error("invalid content: {0}")]
    InvalidContent(&'static str),
    /// The safety number given does not match this contact's.
    #[error("the safety number does not match")]
    SafetyNumberMismatch,
    /// The text is not a safety number (60 digits).
    #[error("not a safety number (60 digits expected)")]
    InvalidSafetyNumber,
    /// A message is larger than [`MAX_TEXT_BYTES`](crate::MAX_TEXT_BYTES).
    #[error("the message is too long")]
    MessageTooLong,
    /// The storage key or passphrase does not open this device's store.
    /// Nothing was read or changed.
    #[error("wrong storage key or passphrase")]
    WrongStorageKey,
    /// No device is set up in this folder (use [`Client::create`](crate::Client::create)).
    #[error("no device is set up here")]
    NotSetUp,
    /// A device is already set up in this folder (use [`Client::open`](crate::Client::open)).
    #[error("a device is already set up here")]
    AlreadySetUp,
    /// Another process uses this device's store.
    #[error("the device's store is in use by another process")]
    StoreLocked,
    /// The local store failed or is damaged.
    #[error("local storage failed: {0}")]
    Store(StoreError),
    /// A bug (an invariant of this crate does not hold).
    #[error("internal error: {0}")]
    Internal(&'static str),
}

impl From<StoreError> for Error {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::WrongKey => Self::WrongStorageKey,
            StoreError::NotFound => Self::NotSetUp,
            StoreError::AlreadyExists => Self::AlreadySetUp,
            StoreError::Locked => Self::StoreLocked,
            other => Self::Store(other),
        }
    }
}

impl From<ClientError> for Error {
    fn from(error: ClientError) -> Self {
        match error {
            ClientError::FingerprintMismatch { .. } => Self::FingerprintMismatch,
            ClientError::Relay { code, .. } => Self::from(code),
            ClientError::Internal(_) => Self::Internal("relay client"),
            _ => Self::RelayUnreachable,
        }
    }
}

impl From<RelayErrorCode> for Error {
    fn from(code: RelayErrorCode) -> Self {
        match code {
            RelayErrorCode::RateLimited => Self::RateLimited,
            RelayErrorCode::RegistrationRequired => Self::RegistrationRequired,
            RelayErrorCode::ShuttingDown => Self::RelayUnreachable,
            other => Self::Relay(other),
        }
    }
}

impl Error {
    /// Whether retrying later may succeed without any change by the user.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::RelayUnreachable | Self::RateLimited | Self::StoreLocked
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_refusals_map_to_actionable_variants() {
        let refused = |code| ClientError::Relay {
            code,
            message: "the relay's words".into(),
        };
        assert!(matches!(
            Error::from(refused(RelayErrorCode::RateLimited)),
            Error::RateLimited
        ));
        assert!(matches!(
            Error::from(refused(RelayErrorCode::RegistrationRequired)),
            Error::RegistrationRequired
        ));
        assert!(matches!(
            Error::from(ClientError::Timeout),
            Error::RelayUnreachable
        ));
        assert!(matches!(
            Error::from(StoreError::WrongKey),
            Error::WrongStorageKey
        ));
        assert!(Error::RelayUnreachable.is_transient());
        assert!(!Error::WrongStorageKey.is_transient());
    }
}
