//! Talking to a Hearth relay (DESIGN.md sections 2 and 3).
//!
//! [`RelayClient`] holds one QUIC connection to a relay whose key is pinned
//! by its [`RelayAddress`](hearth_protocol::address::RelayAddress). Each
//! request runs on its own bidirectional stream; deliveries arrive on
//! relay-opened unidirectional streams and are read by a background task
//! (see [`RelayClient::next_delivery`]).

mod auth;
mod connection;
mod error;
mod exchange;
mod messages;
mod operations;
pub mod pinning;

#[cfg(test)]
mod tests;

pub use auth::{AUTH_CONTEXT, AUTH_MESSAGE_LEN, EXPORTER_LABEL, auth_message};
pub use connection::{ConnectOptions, RelayClient};
pub use error::{ClientError, RelayErrorCode};
pub use exchange::{OWN_STREAM_BODY_BYTES, PROTOCOL_VERSION};
pub use messages::{
    DeliveredEnvelope, Delivery, DeliveryError, FetchedPrekeys, MAILBOX_ID_LEN, OutgoingRecipient,
    OutgoingSend, PrekeyCounts, PrekeyUpload, send_token_hash,
};

/// The only ALPN protocol a relay speaks.
pub const ALPN: &[u8] = b"hearth/1";

/// The TLS server name the client sends. It is not checked: the pinned key
/// is what identifies the relay.
pub const SERVER_NAME: &str = "hearth-relay";

/// Most sequence numbers one `Ack` request may carry (the relay's limit);
/// [`RelayClient::ack`] splits longer lists.
pub const MAX_ACK_SEQS: usize = 4096;

/// Default limit on a frame from the relay (256 KiB).
pub const DEFAULT_FRAME_LIMIT: usize = 256 * 1024;
