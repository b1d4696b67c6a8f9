//! Circle sender keys (DESIGN.md §5, "Circles (Sender Keys)").
//!
//! Per (circle, sender device, epoch) the sender draws a `chain_id` (random
//! u32 with the top bit clear), `CK_0` (32 random bytes) and a fresh Ed25519
//! signing key, and hands them to every other member device over the
//! pairwise sessions as a [`SenderKeyDistribution`]. Iteration `i`:
//!
//! - `seed_i = HMAC(CK_i, 0x01)`, `CK_{i+1} = HMAC(CK_i, 0x02)`;
//! - `key ‖ nonce = HKDF(salt = 32×0x00, ikm = seed_i,
//!   info = "Hearth_v1_GroupMessageKeys", L = 44)`;
//! - `AD = "Hearth_v1_Group" ‖ circle_id ‖ epoch ‖ Encode(IK_sig) ‖ chain_id
//!   ‖ iteration`;
//! - `ct = ChaCha20-Poly1305(key, nonce, padded pt, aad = AD)`,
//!   `sig = Ed25519(signing key, AD ‖ ct)`.
//!
//! Receivers verify the signature (`verify_strict`) before decrypting, accept
//! a forward jump of at most [`MAX_FORWARD_JUMP`] iterations, keep at most
//! [`MAX_SKIPPED_KEYS`] skipped seeds for late messages, report a duplicate
//! as an error, and change no state on any failure. A newcomer given `CK_i`
//! cannot read iterations before `i`.
//!
//! ```
//! use ed25519_dalek::SigningKey;
//! use hearth_protocol::sender_key::{RemoteSenderKey, SenderKeyState};
//!
//! let mut rng = rand::rng();
//! let sender_ik_sig = SigningKey::from_bytes(&[1; 32]).verifying_key();
//! let mut own = SenderKeyState::new([9; 16], 0, sender_ik_sig, 1_700_000_000_000, &mut rng);
//! let mut remote = RemoteSenderKey::new(&own.distribution(), sender_ik_sig);
//!
//! let message = own.encrypt(b"checking in: 7/10")?;
//! assert_eq!(remote.decrypt(&message)?, b"checking in: 7/10");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod chain;
mod codec;
mod message;
mod own;
mod remote;

pub use chain::{MessageKeys, associated_data};
pub use message::{SenderKeyDistribution, SenderKeyMessage};
pub use own::SenderKeyState;
pub use remote::RemoteSenderKey;

/// A circle id.
pub type CircleId = [u8; 16];

/// HKDF info of the per-message key and nonce.
pub const MESSAGE_KEYS_INFO: &[u8] = b"Hearth_v1_GroupMessageKeys";
/// First field of the associated data.
pub const AD_LABEL: &[u8] = b"Hearth_v1_Group";
/// Length of the associated data: label, circle id, epoch, `Encode(IK_sig)`,
/// chain id and iteration.
pub const AD_LEN: usize = 15 + 16 + 8 + 33 + 4 + 4;
/// The most iterations a receiver skips ahead for one message.
pub const MAX_FORWARD_JUMP: u32 = 2_000;
/// The most skipped seeds a receiver keeps; the oldest are dropped first.
pub const MAX_SKIPPED_KEYS: usize = 2_000;
/// A sender key is rotated after this many messages.
pub const ROTATE_AFTER_MESSAGES: u32 = 1_000;
/// A sender key is rotated after this long (7 days), in milliseconds.
pub const ROTATE_AFTER_MS: u64 = 7 * 24 * 60 * 60 * 1000;
/// Largest padded plaintext of a circle message.
pub const MAX_PADDED_LEN: usize = 1024 * 1024;
/// Largest plaintext of a circle message (it pads to at most
/// [`MAX_PADDED_LEN`]).
pub const MAX_PLAINTEXT_LEN: usize = MAX_PADDED_LEN - 1;
/// Version byte that leads every encoding of this module.
pub const VERSION: u8 = 0x01;

/// `chain_id` must have its top bit clear.
const CHAIN_ID_TOP_BIT: u32 = 0x8000_0000;

/// The caller passed a `chain_id` with its top bit set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("chain id {0:#010x} has its top bit set")]
pub struct InvalidChainId(pub u32);

/// Why encrypting a circle message failed (caller's side).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncryptError {
    /// The plaintext exceeds [`MAX_PLAINTEXT_LEN`].
    #[error("plaintext of {len} bytes exceeds the limit of {MAX_PLAINTEXT_LEN} bytes")]
    PlaintextTooLong {
        /// Length of the plaintext.
        len: usize,
    },
    /// The chain has used every iteration; start a new epoch.
    #[error("sender key chain is exhausted")]
    ChainExhausted,
}

/// Why a circle message could not be decrypted. No variant changes the
/// receiver's state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecryptError {
    /// The message names another circle, epoch or chain than this key
    /// (the caller picked the wrong key, or the sender moved on).
    #[error("message belongs to another circle, epoch or chain")]
    ChainMismatch,
    /// The iteration precedes the chain key this receiver was given: a
    /// newcomer cannot read earlier messages.
    #[error("iteration {iteration} precedes the first known iteration {first}")]
    BeforeFirstIteration {
        /// Iteration of the message.
        iteration: u32,
        /// First iteration this receiver can read.
        first: u32,
    },
    /// This iteration was already decrypted (or its skipped key was
    /// dropped after more than [`MAX_SKIPPED_KEYS`] were stored).
    #[error("iteration {iteration} was already decrypted")]
    Duplicate {
        /// Iteration of the message.
        iteration: u32,
    },
    /// The message jumps more than [`MAX_FORWARD_JUMP`] iterations ahead.
    #[error("iteration {iteration} is too far ahead of {next}")]
    TooFarAhead {
        /// Iteration of the message.
        iteration: u32,
        /// Next iteration this receiver expects.
        next: u32,
    },
    /// The Ed25519 signature does not verify (strictly): not from the
    /// sender, or altered.
    #[error("sender key signature does not verify")]
    BadSignature,
    /// The ciphertext does not authenticate under the derived key (a
    /// signed message with a wrong key: the sender misbehaved).
    #[error("sender key ciphertext does not authenticate")]
    Decrypt,
    /// The decrypted plaintext is not correctly padded.
    #[error("decrypted plaintext has bad padding")]
    BadPadding,
}

/// Why a message or distribution could not be decoded: the peer sent
/// something malformed. (Stored state reports
/// [`StoredStateError`](crate::stored::StoredStateError).)
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The leading version byte is not [`VERSION`] (or the input is empty).
    #[error("unsupported version")]
    UnsupportedVersion,
    /// The input has the wrong length for its kind.
    #[error("input of {len} bytes has the wrong length")]
    WrongLength {
        /// Length of the input.
        len: usize,
    },
    /// The chain id has its top bit set.
    #[error("chain id has its top bit set")]
    BadChainId,
    /// A public key is not a valid, non-weak Ed25519 point.
    #[error("invalid Ed25519 public key")]
    BadKey,
    /// The ciphertext is not a padded plaintext plus tag.
    #[error("ciphertext of {len} bytes has an impossible length")]
    BadCiphertextLength {
        /// Length of the ciphertext.
        len: usize,
    },
}

fn check_chain_id(chain_id: u32) -> Result<u32, InvalidChainId> {
    if chain_id & CHAIN_ID_TOP_BIT == 0 {
        Ok(chain_id)
    } else {
        Err(InvalidChainId(chain_id))
    }
}

#[cfg(test)]
mod tests;
