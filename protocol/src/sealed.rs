//! Sealed sender (DESIGN.md §5): one shared body, one small header per
//! recipient, and no sender identity outside the encryption.
//!
//! The body is ChaCha20-Poly1305 under a one-time key `k` (zero nonce,
//! `aad = "Hearth_v1_Body"`) of the inner message, which this module treats
//! as opaque bytes (sender certificate plus ratchet or sender-key message).
//! Each recipient's header is HPKE base mode to the recipient device's
//! `IK_dh`, `info = "Hearth_v1_SealedSender"`, `aad` = the recipient's
//! mailbox id, sealing `k ‖ SHA-256(body)`; the hash is over the body's
//! ciphertext ‖ tag. A header is `enc (32) ‖ header_ct (64 + 16)`.
//!
//! ```
//! use hearth_protocol::sealed;
//! use x25519_dalek::{PublicKey, StaticSecret};
//!
//! let mut rng = rand::rng();
//! let device = StaticSecret::random_from_rng(&mut rng);
//! let mailbox = [7u8; 32];
//!
//! let (k, body) = sealed::seal_body(b"inner message", &mut rng)?;
//! let hash = sealed::body_hash(&body);
//! let header = sealed::seal_header(&k, &hash, &PublicKey::from(&device), &mailbox, &mut rng)?;
//!
//! let (k, hash) = sealed::open_header(&device, &mailbox, header.as_bytes())?;
//! assert_eq!(sealed::open_body(&k, &hash, &body)?, b"inner message");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use rand_core::CryptoRng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::hpke::{self, ENC_LEN, HpkeError, TAG_LEN, chacha_open, chacha_seal};

/// HPKE `info` of every sealed-sender header.
pub const HEADER_INFO: &[u8] = b"Hearth_v1_SealedSender";
/// Associated data of the shared body.
pub const BODY_AAD: &[u8] = b"Hearth_v1_Body";
/// Length of a mailbox id.
pub const MAILBOX_ID_LEN: usize = 32;
/// Length of the body key `k`.
pub const BODY_KEY_LEN: usize = 32;
/// Length of a body hash (SHA-256).
pub const BODY_HASH_LEN: usize = 32;
/// Length of a sealed header: `enc ‖ Seal(k ‖ SHA-256(body))`.
pub const SEALED_HEADER_LEN: usize = ENC_LEN + BODY_KEY_LEN + BODY_HASH_LEN + TAG_LEN;
/// Largest inner message a body may carry.
pub const MAX_INNER_LEN: usize = 2 * 1024 * 1024;
/// Largest body (ciphertext ‖ tag) `open_body` accepts.
pub const MAX_BODY_LEN: usize = MAX_INNER_LEN + TAG_LEN;

/// A recipient's mailbox id.
pub type MailboxId = [u8; MAILBOX_ID_LEN];
/// SHA-256 of a body's ciphertext ‖ tag.
pub type BodyHash = [u8; BODY_HASH_LEN];

const BODY_NONCE: [u8; 12] = [0; 12];

/// Why sealing failed. Both variants are the caller's to handle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The inner message exceeds [`MAX_INNER_LEN`].
    #[error("inner message of {len} bytes exceeds the limit of {MAX_INNER_LEN} bytes")]
    InnerTooLong {
        /// Length of the inner message.
        len: usize,
    },
    /// The recipient's `IK_dh` has low order (the X25519 result is all
    /// zeros); the key should never have been accepted.
    #[error("recipient key gives a non-contributory X25519 result")]
    BadRecipientKey,
}

/// Why a sealed header could not be opened: the sender (or the relay)
/// delivered something that is not a header for this device and mailbox.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenHeaderError {
    /// The header is not exactly [`SEALED_HEADER_LEN`] bytes.
    #[error("sealed header has {len} bytes, expected {SEALED_HEADER_LEN}")]
    WrongLength {
        /// Length of the input.
        len: usize,
    },
    /// `enc` has low order (the X25519 result is all zeros).
    #[error("sealed header key is not contributory")]
    NonContributory,
    /// The header does not authenticate for this device and mailbox id.
    #[error("sealed header does not authenticate")]
    Decrypt,
}

/// Why a body could not be opened: the body does not belong to the header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenBodyError {
    /// The body is shorter than a tag or longer than [`MAX_BODY_LEN`].
    #[error("body of {len} bytes is outside the allowed sizes")]
    BadLength {
        /// Length of the body.
        len: usize,
    },
    /// SHA-256 of the body differs from the hash in the header.
    #[error("body hash does not match the header")]
    HashMismatch,
    /// The body does not authenticate under the header's key.
    #[error("body does not authenticate")]
    Decrypt,
}

/// The one-time key `k` of a shared body.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct BodyKey(Box<[u8; BODY_KEY_LEN]>);

impl BodyKey {
    /// A fresh random key.
    pub fn random(rng: &mut impl CryptoRng) -> Self {
        let mut key = Box::new([0u8; BODY_KEY_LEN]);
        rng.fill_bytes(key.as_mut());
        Self(key)
    }

    /// A key from given bytes (deterministic vectors).
    pub fn from_bytes(bytes: [u8; BODY_KEY_LEN]) -> Self {
        Self(Box::new(bytes))
    }

    /// The key bytes, for test vectors. Declassification: keep them secret.
    pub fn expose(&self) -> &[u8; BODY_KEY_LEN] {
        &self.0
    }
}

impl PartialEq for BodyKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(other.0.as_ref()).into()
    }
}

impl Eq for BodyKey {}

impl std::fmt::Debug for BodyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BodyKey(<redacted>)")
    }
}

/// A sealed header: `enc (32) ‖ header_ct (80)`.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedHeader([u8; SEALED_HEADER_LEN]);

impl SealedHeader {
    /// Parses a header, refusing any length but [`SEALED_HEADER_LEN`].
    pub fn from_slice(bytes: &[u8]) -> Result<Self, OpenHeaderError> {
        <[u8; SEALED_HEADER_LEN]>::try_from(bytes)
            .map(Self)
            .map_err(|_| OpenHeaderError::WrongLength { len: bytes.len() })
    }

    /// The wire bytes.
    pub fn as_bytes(&self) -> &[u8; SEALED_HEADER_LEN] {
        &self.0
    }

    /// The HPKE encapsulated key (the ephemeral X25519 public key).
    pub fn enc(&self) -> [u8; ENC_LEN] {
        let mut enc = [0u8; ENC_LEN];
        enc.copy_from_slice(&self.0[..ENC_LEN]);
        enc
    }

    /// The HPKE ciphertext ‖ tag of `k ‖ SHA-256(body)`.
    pub fn ciphertext(&self) -> &[u8] {
        &self.0[ENC_LEN..]
    }
}

impl std::fmt::Debug for SealedHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SealedHeader({} bytes)", self.0.len())
    }
}

/// SHA-256 of a body's ciphertext ‖ tag.
pub fn body_hash(body: &[u8]) -> BodyHash {
    Sha256::digest(body).into()
}

/// Encrypts `inner` under a fresh one-time key; returns the key and the
/// body (ciphertext ‖ tag).
pub fn seal_body(inner: &[u8], rng: &mut impl CryptoRng) -> Result<(BodyKey, Vec<u8>), SealError> {
    let key = BodyKey::random(rng);
    let body = seal_body_with_key(&key, inner)?;
    Ok((key, body))
}

/// Encrypts `inner` under the given one-time key (deterministic vectors).
/// Never use a key for two bodies: the nonce is always zero.
pub fn seal_body_with_key(key: &BodyKey, inner: &[u8]) -> Result<Vec<u8>, SealError> {
    if inner.len() > MAX_INNER_LEN {
        return Err(SealError::InnerTooLong { len: inner.len() });
    }
    chacha_seal(key.expose(), &BODY_NONCE, BODY_AAD, inner)
        .map_err(|_| SealError::InnerTooLong { len: inner.len() })
}

/// Seals `k ‖ body_hash` to one recipient device with a fresh ephemeral key.
pub fn seal_header(
    key: &BodyKey,
    body_hash: &BodyHash,
    recipient_ik_dh: &PublicKey,
    mailbox_id: &MailboxId,
    rng: &mut impl CryptoRng,
) -> Result<SealedHeader, SealError> {
    let ephemeral = StaticSecret::random_from_rng(rng);
    seal_header_with_ephemeral(key, body_hash, recipient_ik_dh, mailbox_id, &ephemeral)
}

/// Seals `k ‖ body_hash` with the given ephemeral private key
/// (deterministic vectors).
pub fn seal_header_with_ephemeral(
    key: &BodyKey,
    body_hash: &BodyHash,
    recipient_ik_dh: &PublicKey,
    mailbox_id: &MailboxId,
    ephemeral: &StaticSecret,
) -> Result<SealedHeader, SealError> {
    let mut plaintext = Zeroizing::new([0u8; BODY_KEY_LEN + BODY_HASH_LEN]);
    plaintext[..BODY_KEY_LEN].copy_from_slice(key.expose());
    plaintext[BODY_KEY_LEN..].copy_from_slice(body_hash);
    let (enc, ciphertext) = hpke::seal_base(
        recipient_ik_dh,
        ephemeral,
        HEADER_INFO,
        mailbox_id,
        plaintext.as_ref(),
    )
    .map_err(|_| SealError::BadRecipientKey)?;
    let mut header = [0u8; SEALED_HEADER_LEN];
    header[..ENC_LEN].copy_from_slice(&enc);
    header[ENC_LEN..].copy_from_slice(&ciphertext);
    Ok(SealedHeader(header))
}

/// Opens a header addressed to this device and mailbox: returns `k` and the
/// body hash it promises.
pub fn open_header(
    recipient_ik_dh: &StaticSecret,
    mailbox_id: &MailboxId,
    header: &[u8],
) -> Result<(BodyKey, BodyHash), OpenHeaderError> {
    let header = SealedHeader::from_slice(header)?;
    let plaintext = Zeroizing::new(
        hpke::open_base(
            &header.enc(),
            recipient_ik_dh,
            HEADER_INFO,
            mailbox_id,
            header.ciphertext(),
        )
        .map_err(|e| match e {
            HpkeError::NonContributory => OpenHeaderError::NonContributory,
            _ => OpenHeaderError::Decrypt,
        })?,
    );
    // HPKE authenticated exactly BODY_KEY_LEN + BODY_HASH_LEN bytes.
    let (key, hash) = plaintext.split_at(BODY_KEY_LEN);
    let key = <[u8; BODY_KEY_LEN]>::try_from(key).map_err(|_| OpenHeaderError::Decrypt)?;
    let hash = <[u8; BODY_HASH_LEN]>::try_from(hash).map_err(|_| OpenHeaderError::Decrypt)?;
    Ok((BodyKey::from_bytes(key), hash))
}

/// Checks the body against the header's hash, then decrypts it to the inner
/// message.
pub fn open_body(
    key: &BodyKey,
    expected_hash: &BodyHash,
    body: &[u8],
) -> Result<Vec<u8>, OpenBodyError> {
    if body.len() < TAG_LEN || body.len() > MAX_BODY_LEN {
        return Err(OpenBodyError::BadLength { len: body.len() });
    }
    if !bool::from(body_hash(body).ct_eq(expected_hash)) {
        return Err(OpenBodyError::HashMismatch);
    }
    chacha_open(key.expose(), &BODY_NONCE, BODY_AAD, body).map_err(|_| OpenBodyError::Decrypt)
}

#[cfg(test)]
mod tests;
