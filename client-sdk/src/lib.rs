//! Hearth's client SDK: what apps embed so that members of peer-support
//! circles can talk end to end encrypted through a Hearth relay.
//!
//! A member never sees keys, mailboxes or retries: a [`Client`] owns the
//! device's identity, contacts, sessions, history and outbox in a local
//! store encrypted under a key the app supplies ([`StorageKey`]) or derives
//! from a passphrase ([`StoreSecret::passphrase`], Argon2id). Messages
//! arrive once, in order, even after weeks offline or a crash:
//!
//! - **Sending** pads, ratchet-encrypts and seals each message (sealed
//!   sender: the relay learns neither the sender nor the content), stores
//!   it in the outbox together with the advanced ratchet state, and only
//!   then hands it to the relay, retrying with the same client message id
//!   until the relay answers.
//! - **Receiving** opens, decrypts and deduplicates each envelope, stores
//!   the message, the session and the dedup mark in one durable write, and
//!   only then acknowledges it. Bad envelopes become [`Event::Rejected`] and
//!   are acknowledged too, so they never block the mailbox.
//! - **Contacts** come from personal invite links (`hearth://contact/...`,
//!   see [`invite`]); each contact has a [`SafetyNumber`] to compare out of
//!   band.
//! - **Events** ([`Client::events`], a `Stream`) tell the app about new
//!   messages, contacts, sends, delivery failures and the connection.
//!
//! Short-lived tools call [`Client::sync`] (connect, send, receive until
//! idle); long-running apps spawn [`Client::run`], which reconnects with
//! exponential backoff and jitter.
//!
//! ```no_run
//! use std::time::Duration;
//! use hearth_client::{Client, Content, Event, RelayAddress, StorageKey};
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let relay: RelayAddress =
//!     "hearth://q1n8ZkJmE0Gv5nF4lZq3E0D2wQ0ZK2hJtYgV8mX5b3c@relay.example.org:4433".parse()?;
//!
//! // Each member's device (the app keeps the storage key in its keychain).
//! let dana = Client::create("dana-home", StorageKey::from_bytes([1; 32]), &relay, None, "Dana").await?;
//! let sam = Client::create("sam-home", StorageKey::from_bytes([2; 32]), &relay, None, "Sam").await?;
//!
//! // Dana hands Sam her link (a QR code, a message...); Sam accepts it.
//! let link = dana.invite_link().await?;
//! let contact = sam.accept_invite(&link).await?;
//! println!("compare with Dana: {}", contact.safety_number);
//!
//! sam.send_text(dana.member_id(), "Hi Dana, it's Sam").await?;
//!
//! // Dana comes online, learns about Sam and reads the message.
//! for event in dana.sync(Duration::from_secs(2)).await?.events {
//!     match event {
//!         Event::ContactAdded(contact) => println!("new contact: {}", contact.label()),
//!         Event::Message(message) => {
//!             if let Content::Text(text) = message.content {
//!                 println!("{}: {text}", message.member);
//!             }
//!         }
//!         _ => {}
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! `examples/two_members.rs` runs the same conversation against a real
//! relay: `cargo run -p hearth-client --example two_members -- <relay address>`.
//!
//! ## The `hearth` CLI
//!
//! This crate also builds `hearth` (`src/bin/hearth/`), a thin,
//! non-interactive layer over [`Client`] for terminals and scripts:
//! `hearth init`, `whoami`, `contact invite | accept | list | verify`, `dm`,
//! `sync` and `history`; for circles `circle create | invite | join | list |
//! members | remove | leave | promote | demote | rename | rules | sub`,
//! `say`, `checkin`, `share`, `gather`, `rsvp`, `goal add | progress`,
//! `support`, `react`, `feed` and `due`; with `--json` output (one object per
//! line). The repository's README walks through it (section "Using the
//! hearth CLI").
//!
//! ## Circles
//!
//! [`Client::create_circle`], [`Client::circle_invite`] and
//! [`Client::join_circle`] form a circle; [`Client::post`] sends any
//! [`Content`] to it in one multi-recipient send; [`Client::feed`],
//! [`gatherings`], [`goals`] and [`Client::due`] read it back. The
//! [`circles`] module and `docs/CIRCLES.md` explain rosters, epochs and what
//! the relay learns.
//!
//! ## Test hooks
//!
//! The cargo feature `test-hooks` (off by default; no release build
//! enables it) adds what only tests and fuzz targets may use:
//! `ClientOptions::rng_seed` (deterministic keys), the crash switch
//! `TEST_EXIT_BEFORE_ACK_VAR` (`HEARTH_TEST_EXIT_BEFORE_ACK=1` makes a
//! process exit right after it durably stored a delivery and before it
//! acknowledges it), the misbehaving-member calls
//! `Client::send_unauthorized_removal` and `Client::post_with_bad_signature`,
//! `relay::RelayClient::request_raw` (malformed frames), and the fuzz entry
//! `circles::feed::fuzz_content_decode`.
//!
//! ## The relay client
//!
//! Underneath, [`relay`] holds the relay protocol client: a QUIC connection
//! pinned to the relay's key, mailbox registration and authentication,
//! sealed-sender sends, deliveries and acknowledgements, send tokens and the
//! prekey directory.
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
//! // Receive, process durably, then acknowledge: cumulatively, queued and
//! // coalesced, never answered.
//! while let Some(delivery) = relay.next_delivery().await {
//!     if let Some(last) = delivery.envelopes.last() {
//!         relay.ack_through(delivery.mailbox_id, last.seq)?;
//!     }
//! }
//! // Before closing: the relay has handled and stored every ack.
//! relay.flush().await?;
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
#![warn(missing_docs)]

pub mod circles;
mod client;
mod contacts;
mod content;
pub mod device;
mod engine;
mod error;
mod events;
pub mod ids;
pub mod invite;
mod messages;
mod records;
pub mod relay;
pub mod safety;
pub mod store;

pub use circles::feed::{
    CircleMessage, DueStatus, GatheringView, GoalView, ProgressEntry, gatherings, goals, reactions,
};
pub use circles::{Circle, CircleId, CircleMember, CircleState, JoinRefusal, Role};
pub use client::{Backoff, Client, ClientOptions, Clock, STORE_DIR, SyncReport, SystemClock};
#[cfg(feature = "test-hooks")]
pub use client::{TEST_EXIT_BEFORE_ACK_STATUS, TEST_EXIT_BEFORE_ACK_VAR};
pub use contacts::Contact;
pub use content::{
    Cadence, CheckIn, Content, Gathering, GatheringKind, Goal, GoalProgress, Reaction, Resource,
    Rsvp, RsvpAnswer,
};
pub use error::Error;
pub use events::{ConnectionState, Event, EventStream, RejectReason};
pub use hearth_protocol::address::{Fingerprint, RelayAddress};
pub use ids::{MemberId, MessageId};
pub use invite::{CircleInvite, InvalidInvite, Invite};
pub use messages::{Direction, FailureReason, MAX_TEXT_BYTES, Message, MessageStatus};
pub use relay::{
    ClientError, ConnectOptions, DeliveredEnvelope, Delivery, FetchedPrekeys, OutgoingRecipient,
    OutgoingSend, PrekeyCounts, PrekeyUpload, RelayClient, RelayErrorCode,
};
pub use safety::SafetyNumber;
pub use store::{KdfParams, StorageKey, StoreError, StoreSecret};
