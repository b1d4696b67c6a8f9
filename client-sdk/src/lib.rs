//! Hearth's client SDK: what apps embed to talk to a Hearth relay.
//!
//! So far it holds the relay client ([`relay`]): a QUIC connection pinned to
//! the relay's key, mailbox registration and authentication, sealed-sender
//! sends, deliveries and acknowledgements, send tokens and the prekey
//! directory. Identities, sessions and circles build on it.
//!
//! ```no_run
//! use bytes::Bytes;
//! use ed25519_dalek::SigningKey;
//! use hearth_client::{OutgoingRecipient, RelayAddress, RelayClient};
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let address: RelayAddress =
//!     "hearth://q1n8ZkJmE0Gv5nF4lZq3E0D2wQ0ZK2hJtYgV8mX5b3c@relay.example.org:4433".parse()?;
//! let relay = RelayClient::connect(&address).await?;
//!
//! // Register a fresh mailbox (ids and keys come from a CSPRNG in real use).
//! let mailbox_id = [7u8; 32];
//! let mailbox_key = SigningKey::from_bytes(&[9u8; 32]);
//! relay.register(mailbox_id, &mailbox_key, Some("operator-issued-token")).await?;
//! relay.add_send_token(mailbox_id, b"token handed to my contacts").await?;
//!
//! // Send an (already encrypted) envelope to a contact's mailbox.
//! let recipient = OutgoingRecipient {
//!     mailbox_id: [8u8; 32],
//!     send_token: Bytes::from_static(b"their send token"),
//!     sealed_header: Bytes::from_static(b"sealed header"),
//! };
//! relay.send_one([1u8; 16], recipient, Bytes::from_static(b"ciphertext")).await?;
//!
//! // Receive, process durably, then acknowledge.
//! while let Some(delivery) = relay.next_delivery().await {
//!     let seqs: Vec<u64> = delivery.envelopes.iter().map(|e| e.seq).collect();
//!     relay.ack(delivery.mailbox_id, &seqs).await?;
//! }
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
#![warn(missing_docs)]

pub mod relay;

pub use hearth_protocol::address::{Fingerprint, RelayAddress};
pub use relay::{
    ClientError, ConnectOptions, DeliveredEnvelope, Delivery, FetchedPrekeys, OutgoingRecipient,
    OutgoingSend, PrekeyCounts, PrekeyUpload, RelayClient, RelayErrorCode,
};
