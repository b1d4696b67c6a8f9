//! What can go wrong when talking to a relay.

use std::fmt;

use hearth_proto::relay::ErrorCode;
use hearth_protocol::address::Fingerprint;

/// Why a relay operation failed.
///
/// The variants keep apart a relay that refused a request
/// ([`ClientError::Relay`]), a relay or network that misbehaved
/// ([`ClientError::BadResponse`], [`ClientError::FingerprintMismatch`]),
/// local I/O and connectivity, and bugs ([`ClientError::Internal`]).
/// No variant carries tokens, keys or message content.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The relay presented a certificate whose public key does not match the
    /// fingerprint pinned in its address: it is not the relay the address
    /// names (or the address is wrong). Never retry this silently.
    #[error("the relay's key {presented} does not match the pinned fingerprint {expected}")]
    FingerprintMismatch {
        /// The fingerprint from the relay address.
        expected: Fingerprint,
        /// The fingerprint of the key the relay presented.
        presented: Fingerprint,
    },
    /// The QUIC/TLS handshake with the relay failed (refused, unreachable,
    /// no common ALPN, ...).
    #[error("could not connect to the relay")]
    Connect(#[source] quinn::ConnectionError),
    /// The local endpoint could not start a connection (it is shutting
    /// down, or the resolved address does not fit its socket).
    #[error("could not start a connection to the relay")]
    Endpoint(#[source] quinn::ConnectError),
    /// An established connection was closed or lost (including after
    /// [`RelayClient::close`](super::RelayClient::close)).
    #[error("the connection to the relay was lost")]
    ConnectionLost(#[source] quinn::ConnectionError),
    /// The relay refused the request with an error code and a human-readable
    /// message.
    #[error("the relay refused the request ({code}): {message}")]
    Relay {
        /// What went wrong, as a typed code.
        code: RelayErrorCode,
        /// The relay's explanation (never contains content, tokens or keys).
        message: String,
    },
    /// The relay answered with something this client cannot use: an
    /// undecodable or oversized frame, a reset stream, or a response of the
    /// wrong kind.
    #[error("unusable response from the relay: {0}")]
    BadResponse(String),
    /// The relay did not answer (or the connection was not set up) in time.
    #[error("the relay did not answer in time")]
    Timeout,
    /// Resolving the relay's host or binding a local socket failed.
    #[error("I/O error while reaching the relay")]
    Io(#[from] std::io::Error),
    /// A bug in this crate or a dependency (e.g. the TLS configuration could
    /// not be built).
    #[error("internal error: {0}")]
    Internal(String),
}

/// A relay error code: the typed mirror of the wire's `ErrorCode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RelayErrorCode {
    /// The request frame did not decode.
    BadFrame,
    /// The request frame exceeds the relay's frame limit.
    FrameTooLarge,
    /// The relay does not speak the request's protocol version.
    UnsupportedVersion,
    /// The connection has not proved ownership of the mailbox, the proof
    /// is wrong, or the send token is not valid for the recipient.
    Unauthorized,
    /// No such mailbox on this relay.
    UnknownMailbox,
    /// The recipient's mailbox is over its count or byte quota.
    MailboxFull,
    /// Too many requests of this kind; retry later.
    RateLimited,
    /// This relay only registers mailboxes with a valid registration token.
    RegistrationRequired,
    /// A mailbox with this id already exists.
    MailboxExists,
    /// The mailbox has published no prekey bundle.
    NoPrekeys,
    /// The request is well-formed protobuf but invalid (e.g. wrong lengths).
    BadRequest,
    /// The envelope exceeds the relay's envelope size limit.
    EnvelopeTooLarge,
    /// The relay failed internally (e.g. its store).
    Internal,
    /// The relay is shutting down; reconnect later.
    ShuttingDown,
    /// A code this client does not know (from a newer relay), or
    /// `ERROR_CODE_UNSPECIFIED` where an error was expected.
    Unknown(i32),
}

impl RelayErrorCode {
    /// Maps a wire code; unknown values and `UNSPECIFIED` become
    /// [`RelayErrorCode::Unknown`].
    pub fn from_wire(code: i32) -> Self {
        match ErrorCode::try_from(code) {
            Ok(known) => Self::from_known(known).unwrap_or(Self::Unknown(code)),
            Err(_) => Self::Unknown(code),
        }
    }

    /// A per-recipient result from the wire: `UNSPECIFIED` (0) means
    /// success, anything else is the error.
    pub fn check_result(code: i32) -> Result<(), Self> {
        if code == ErrorCode::Unspecified as i32 {
            Ok(())
        } else {
            Err(Self::from_wire(code))
        }
    }

    /// The value on the wire.
    pub fn to_wire(self) -> i32 {
        match self {
            Self::Unknown(code) => code,
            known => known.as_known() as i32,
        }
    }

    fn from_known(code: ErrorCode) -> Option<Self> {
        Some(match code {
            ErrorCode::Unspecified => return None,
            ErrorCode::BadFrame => Self::BadFrame,
            ErrorCode::FrameTooLarge => Self::FrameTooLarge,
            ErrorCode::UnsupportedVersion => Self::UnsupportedVersion,
            ErrorCode::Unauthorized => Self::Unauthorized,
            ErrorCode::UnknownMailbox => Self::UnknownMailbox,
            ErrorCode::MailboxFull => Self::MailboxFull,
            ErrorCode::RateLimited => Self::RateLimited,
            ErrorCode::RegistrationRequired => Self::RegistrationRequired,
            ErrorCode::MailboxExists => Self::MailboxExists,
            ErrorCode::NoPrekeys => Self::NoPrekeys,
            ErrorCode::BadRequest => Self::BadRequest,
            ErrorCode::EnvelopeTooLarge => Self::EnvelopeTooLarge,
            ErrorCode::Internal => Self::Internal,
            ErrorCode::ShuttingDown => Self::ShuttingDown,
        })
    }

    /// The wire enum; [`RelayErrorCode::Unknown`] maps to `Unspecified`.
    fn as_known(self) -> ErrorCode {
        match self {
            Self::BadFrame => ErrorCode::BadFrame,
            Self::FrameTooLarge => ErrorCode::FrameTooLarge,
            Self::UnsupportedVersion => ErrorCode::UnsupportedVersion,
            Self::Unauthorized => ErrorCode::Unauthorized,
            Self::UnknownMailbox => ErrorCode::UnknownMailbox,
            Self::MailboxFull => ErrorCode::MailboxFull,
            Self::RateLimited => ErrorCode::RateLimited,
            Self::RegistrationRequired => ErrorCode::RegistrationRequired,
            Self::MailboxExists => ErrorCode::MailboxExists,
            Self::NoPrekeys => ErrorCode::NoPrekeys,
            Self::BadRequest => ErrorCode::BadRequest,
            Self::EnvelopeTooLarge => ErrorCode::EnvelopeTooLarge,
            Self::Internal => ErrorCode::Internal,
            Self::ShuttingDown => ErrorCode::ShuttingDown,
            Self::Unknown(_) => ErrorCode::Unspecified,
        }
    }
}

impl From<ErrorCode> for RelayErrorCode {
    fn from(code: ErrorCode) -> Self {
        Self::from_known(code).unwrap_or(Self::Unknown(code as i32))
    }
}

impl fmt::Display for RelayErrorCode {
    /// The protobuf name, e.g. `MAILBOX_FULL`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unknown(code) => write!(f, "UNKNOWN({code})"),
            known => f.write_str(known.as_known().as_str_name()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_wire_code_has_a_typed_mirror_and_round_trips() {
        for value in 1..64 {
            let code = RelayErrorCode::from_wire(value);
            match ErrorCode::try_from(value) {
                Ok(wire) => {
                    assert_ne!(
                        code,
                        RelayErrorCode::Unknown(value),
                        "{value} is not mirrored"
                    );
                    assert_eq!(code.to_string(), wire.as_str_name());
                }
                Err(_) => assert_eq!(code, RelayErrorCode::Unknown(value)),
            }
            assert_eq!(code.to_wire(), value);
        }
    }

    #[test]
    fn unspecified_is_success_in_results_and_unknown_in_errors() {
        assert_eq!(RelayErrorCode::check_result(0), Ok(()));
        assert_eq!(
            RelayErrorCode::check_result(6),
            Err(RelayErrorCode::MailboxFull)
        );
        assert_eq!(RelayErrorCode::from_wire(0), RelayErrorCode::Unknown(0));
        assert_eq!(
            RelayErrorCode::from(ErrorCode::RateLimited),
            RelayErrorCode::RateLimited
        );
        assert_eq!(RelayErrorCode::Unknown(99).to_string(), "UNKNOWN(99)");
    }
}
