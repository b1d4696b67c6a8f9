//! The Hearth relay: durable store-and-forward of opaque encrypted envelopes
//! over QUIC (DESIGN.md sections 2–4).
//!
//! - [`core`]: the deterministic relay state machine (`handle_*` inputs,
//!   `poll_*` outputs, time passed in);
//! - [`store`]: the [`store::MailboxStore`] trait and its fjall
//!   implementation (the in-memory one, `store::memory`, is for tests: the
//!   crate's own, and others' with the `test-hooks` feature, which no
//!   release build enables);
//! - [`net`]: the quinn endpoint and tokio tasks that move bytes between
//!   clients, the core and the store;
//! - [`tls`], [`config`], [`registration`]: the relay's identity, settings and
//!   operator-issued registration tokens.
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod config;
pub mod core;
pub mod ids;
pub mod net;
pub mod registration;
pub mod store;
pub mod tls;
