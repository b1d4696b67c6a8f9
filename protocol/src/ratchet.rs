//! The Double Ratchet (DESIGN.md §5, the Signal specification without header
//! encryption) over the `SK` and `AD` of a [handshake](crate::handshake).
//!
//! Alice starts with [`RatchetSession::init_alice`] (`RatchetInitAlice(SK,
//! SPK_B)`), Bob with [`RatchetSession::init_bob`] (`RatchetInitBob(SK, SPK_B
//! key pair)`); Bob can send once Alice's first message decrypted.
//!
//! The session encrypts exactly the bytes it is given: the caller pads the
//! plaintext first (the `padding` module) and unpads after decrypting.
//! The caller also persists the session atomically *before* a ciphertext
//! leaves the device and after every successful decryption, and never
//! restores one from a backup.
//!
//! Limits and failure rules (the vectors pin them down):
//! - at most [`MAX_SKIP`] keys are skipped per chain (`Nr + MAX_SKIP < until`
//!   is an error, for the previous chain's `PN` and for `N`), and at most
//!   [`MAX_SKIPPED_KEYS`] skipped keys are kept, the oldest dropped first;
//! - a message whose key was already used is [`DecryptError::Duplicate`];
//! - every failed decryption leaves the session byte-for-byte unchanged, and a
//!   DH ratchet step draws its new key pair only after the incoming message
//!   authenticated.
//!
//! ```
//! use hearth_protocol::handshake::{AssociatedData, SessionKey};
//! use hearth_protocol::keys::{IdentityKeyPair, SignedPreKey};
//! use hearth_protocol::ratchet::RatchetSession;
//!
//! let mut rng = rand::rng();
//! # let bob_id = IdentityKeyPair::generate(&mut rng);
//! # let ad = AssociatedData::new(bob_id.public(), bob_id.public());
//! # let sk = SessionKey::from_bytes(&[7; 32]);
//! let spk = SignedPreKey::generate(1, &bob_id, &mut rng);
//! let mut alice = RatchetSession::init_alice(&sk, ad, spk.public().key, &mut rng).unwrap();
//! let mut bob = RatchetSession::init_bob(&sk, ad, spk.key_pair());
//!
//! let message = alice.encrypt(b"(padded) hello").unwrap();
//! assert_eq!(&**bob.decrypt(&message, &mut rng).unwrap(), b"(padded) hello");
//! let reply = bob.encrypt(b"(padded) hi").unwrap();
//! assert_eq!(&**alice.decrypt(&reply, &mut rng).unwrap(), b"(padded) hi");
//! ```

mod chain;
mod header;
mod key_source;
mod persist;
mod receive;
mod skipped;
mod state;
#[cfg(test)]
mod tests;

pub use chain::{MESSAGE_KEYS_INFO, RATCHET_INFO};
pub use header::{Header, HeaderError, RatchetMessage};
pub use key_source::{FixedRatchetKeys, RatchetKeySource};
pub use skipped::MAX_SKIPPED_KEYS;
#[cfg(any(test, feature = "test-hooks"))]
pub use state::MessageKeyTrace;
pub use state::RatchetSession;

/// Most message keys skipped in one chain by one incoming message.
pub const MAX_SKIP: u32 = 1000;

/// Why [`RatchetSession::encrypt`] failed. The session is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncryptError {
    /// Caller misuse: Bob cannot send before Alice's first message decrypted.
    #[error("no sending chain yet: decrypt the peer's first message first")]
    NoSendingChain,
    /// The sending chain reached `u32::MAX` messages; the peer must reply
    /// (starting a new chain) before more can be sent.
    #[error("sending chain exhausted")]
    ChainExhausted,
}

/// Why [`RatchetSession::decrypt`] failed. The session is unchanged in every
/// case, byte for byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecryptError {
    /// The message does not authenticate: tampered, forged, or not for this
    /// session.
    #[error("message failed to authenticate")]
    AuthFail,
    /// The message's key was already used (or, rarely, dropped to respect the
    /// skipped-key limit): it was decrypted before.
    #[error("message already decrypted")]
    Duplicate,
    /// Decrypting would skip more than [`MAX_SKIP`] messages of one chain.
    #[error("too many skipped messages")]
    TooManySkipped,
    /// The header's ratchet key has low order (all-zero DH output).
    #[error("peer ratchet key is not contributory")]
    NonContributory,
    /// The header's message number is `u32::MAX`, which no sender produces.
    #[error("message number out of range")]
    CounterOverflow,
    /// Caller misuse: the [`RatchetKeySource`] had no key left for the DH
    /// ratchet step this message needs.
    #[error("ratchet key source exhausted")]
    NoRatchetKey,
}
