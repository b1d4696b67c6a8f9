//! Hearth's end-to-end protocol (DESIGN.md section 5): pure code with no I/O.
//! Time and randomness are passed in by the caller.
//!
//! So far this crate holds the length-delimited framing shared by the relay
//! and its clients:
//!
//! ```
//! use hearth_protocol::frame;
//!
//! let mut buf = Vec::new();
//! frame::encode_into(b"hello", &mut buf);
//! let (payload, used) = frame::decode(&buf, 1024).unwrap();
//! assert_eq!(payload, b"hello");
//! assert_eq!(used, buf.len());
//! ```
//!
//! The `test-hooks` feature (off by default; for the test vectors and fuzz
//! targets, never for a release build) adds deterministic variants that
//! expose intermediate secrets: `handshake::initiate_deterministic` and
//! `RatchetSession::encrypt_traced` with their trace types.
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
#![warn(missing_docs)]

pub mod address;
pub mod encode;
pub mod frame;
pub mod handshake;
pub mod hpke;
pub mod kdf;
pub mod keys;
pub mod padding;
pub mod ratchet;
pub mod sealed;
pub mod sender_key;
pub mod stored;
pub mod wire;
