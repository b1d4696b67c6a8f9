//! The end-to-end wire messages (`proto/e2e.proto`): protobuf as the
//! transport encoding, validated into domain types.
//!
//! Every generated type `pb::X` converts into its domain type with
//! `TryFrom<pb::X>`, which checks every field (lengths, key validity, chain
//! ids, ciphertext sizes), and back with `From<&Domain> for pb::X`. Nothing
//! hashed, signed or used as associated data is a protobuf encoding: the
//! domain types rebuild the fixed layouts of DESIGN.md §5 from the validated
//! fields.
//!
//! On the wire each message is one length-delimited frame ([`crate::frame`]).
//! The `decode_*` functions take exactly one frame and refuse a declared
//! length over the message type's limit before allocating anything:
//!
//! | message | limit (payload bytes) | bound |
//! |---|---|---|
//! | [`SignedBundle`] | [`SIGNED_BUNDLE_MAX_LEN`] | fixed-size fields |
//! | [`OneTimePreKeyPublic`] | [`ONE_TIME_PREKEY_MAX_LEN`] | fixed-size fields |
//! | [`PqPreKeyPublic`] | [`PQ_PREKEY_MAX_LEN`] | ML-KEM-768 key + signature |
//! | [`RatchetMessage`] | [`RATCHET_MESSAGE_MAX_LEN`] | header + [`MAX_PADDED_LEN`] + tag |
//! | [`PreKeyMessage`] | [`PREKEY_MESSAGE_MAX_LEN`] | identity, ML-KEM ciphertext + a ratchet message |
//! | [`SenderKeyMessage`] | [`SENDER_KEY_MESSAGE_MAX_LEN`] | circle fields + 1 MiB padded + tag + signature |
//! | [`SenderKeyDistribution`] | [`SENDER_KEY_DISTRIBUTION_MAX_LEN`] | fixed-size fields |
//! | [`SealedInner`] | [`SEALED_INNER_MAX_LEN`] | certificate + the largest of the above |
//!
//! Each limit is the sum of the largest valid field values plus the
//! protobuf tag and length prefix of every field, so a valid message always
//! fits; anything larger is [`FrameError::TooLarge`]. Ciphertexts must have
//! the length of a [padded](crate::padding) plaintext plus the 16-byte tag:
//! encrypt `padding::pad(pt)`, or the receiver refuses the message.
//!
//! ```
//! use hearth_protocol::keys::{IdentityKeyPair, PqPreKey, SignedPreKey};
//! use hearth_protocol::wire::{self, SignedBundle};
//!
//! let mut rng = rand::rng();
//! let bob = IdentityKeyPair::generate(&mut rng);
//! let spk = SignedPreKey::generate(1, &bob, &mut rng);
//! let pq = PqPreKey::generate(2, true, &bob, &mut rng);
//!
//! // Bob publishes the pieces; the relay stores them as opaque bytes.
//! let signed = wire::encode_signed_bundle(&SignedBundle::new(&bob, &spk));
//! let pq_piece = wire::encode_pq_prekey(&pq.public());
//!
//! // Alice fetches them and gets a bundle whose signatures verified.
//! let bundle = wire::decode_prekey_bundle(&signed, None, &pq_piece)?;
//! assert_eq!(bundle.identity, *bob.public());
//! # Ok::<(), wire::WireError>(())
//! ```

mod group;
mod identity;
mod inner;
mod session;
#[cfg(test)]
mod tests;

use ed25519_dalek::VerifyingKey;
use hearth_proto::e2e as pb;
use prost::Message;
use zeroize::{Zeroize, Zeroizing};

use crate::frame::{self, FrameError};
use crate::handshake::KEM_CIPHERTEXT_LEN;
use crate::hpke::TAG_LEN;
use crate::keys::{
    BundleError, Ed25519PublicKey, OneTimePreKeyPublic, PqPreKeyPublic, PreKeyBundle,
    X25519PublicKey,
};
use crate::padding::is_padded_len;
use crate::ratchet::{Header, HeaderError, RatchetMessage};
use crate::sender_key::{SenderKeyDistribution, SenderKeyMessage};

pub use identity::SignedBundle;
pub use inner::{InnerMessage, SealedInner, SenderCertificate};
pub use session::PreKeyMessage;

/// Why a wire message was refused. Every variant means the peer (or whoever
/// relayed the bytes) sent something no correct sender produces; none
/// carries any of the message's content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The input is not exactly one frame within the message type's limit,
    /// or its payload is not a protobuf message of the expected type.
    #[error("bad frame: {0}")]
    Frame(#[from] FrameError),
    /// A required field (a sub-message or the inner message's `oneof`) is
    /// absent.
    #[error("required field {0} is missing")]
    MissingField(&'static str),
    /// A fixed-size field has the wrong length.
    #[error("field {field} has {len} bytes, expected {expected}")]
    FieldLength {
        /// Name of the field.
        field: &'static str,
        /// Length received.
        len: usize,
        /// Length required.
        expected: usize,
    },
    /// A public key is not a valid key of its kind: an Ed25519 key that is
    /// not a point or has small order, or an ML-KEM-768 key that fails the
    /// FIPS 203 modulus check.
    #[error("field {0} is not a valid public key")]
    InvalidKey(&'static str),
    /// The ratchet header is not the 41-byte layout of version `0x01`.
    #[error("bad ratchet header: {0}")]
    Header(#[from] HeaderError),
    /// A ciphertext is not a padded plaintext plus the 16-byte tag, or its
    /// plaintext would exceed [`MAX_PADDED_LEN`].
    #[error("field {field}: a ciphertext of {len} bytes has an impossible length")]
    CiphertextLength {
        /// Name of the field.
        field: &'static str,
        /// Length of the ciphertext.
        len: usize,
    },
    /// A field holds a value no sender writes (a chain id with its top bit
    /// set).
    #[error("field {0} holds an invalid value")]
    InvalidValue(&'static str),
    /// The sender certificate of a sealed prekey message names other
    /// identity keys than the message's initiator.
    #[error("sender certificate does not match the prekey message's initiator")]
    SenderMismatch,
    /// A signature in a fetched prekey bundle does not verify.
    #[error("prekey bundle does not verify: {0}")]
    Bundle(#[from] BundleError),
}

/// Largest padded plaintext of a 1:1 (ratchet) message: 1 MiB, the same as
/// a circle message ([`crate::sender_key::MAX_PADDED_LEN`]).
pub const MAX_PADDED_LEN: usize = crate::sender_key::MAX_PADDED_LEN;

/// Largest ratchet ciphertext: [`MAX_PADDED_LEN`] plus the tag.
pub const MAX_RATCHET_CIPHERTEXT_LEN: usize = MAX_PADDED_LEN + TAG_LEN;

/// Protobuf overhead of a length-delimited field: a one-byte tag (field
/// numbers below 16) and a length varint of at most 5 bytes.
const LEN_FIELD_OVERHEAD: usize = 1 + 5;
/// Largest varint field: a one-byte tag and a 10-byte varint.
const VARINT_FIELD_LEN: usize = 1 + 10;

/// Largest encoding of a length-delimited field of `len` bytes.
const fn len_field(len: usize) -> usize {
    len + LEN_FIELD_OVERHEAD
}

const fn max(a: usize, b: usize) -> usize {
    if a > b { a } else { b }
}

const SIG_LEN: usize = 64;
const KEY_LEN: usize = 32;
const ML_KEM_KEY_LEN: usize = crate::encode::ML_KEM_768_KEY_LEN;
const CIRCLE_ID_LEN: usize = 16;

/// Largest `PublicIdentity`: `IK_sig`, `IK_dh` and a signature.
const PUBLIC_IDENTITY_MAX_LEN: usize = len_field(KEY_LEN) + len_field(KEY_LEN) + len_field(SIG_LEN);
/// Largest `SignedPrekey`: id, key and signature.
const SIGNED_PREKEY_MAX_LEN: usize = VARINT_FIELD_LEN + len_field(KEY_LEN) + len_field(SIG_LEN);

/// Limit of a [`SignedBundle`] frame.
pub const SIGNED_BUNDLE_MAX_LEN: usize =
    len_field(PUBLIC_IDENTITY_MAX_LEN) + len_field(SIGNED_PREKEY_MAX_LEN);
/// Limit of a one-time prekey frame.
pub const ONE_TIME_PREKEY_MAX_LEN: usize = VARINT_FIELD_LEN + len_field(KEY_LEN);
/// Limit of an ML-KEM prekey frame.
pub const PQ_PREKEY_MAX_LEN: usize =
    VARINT_FIELD_LEN + len_field(ML_KEM_KEY_LEN) + len_field(SIG_LEN) + VARINT_FIELD_LEN;
/// Limit of a [`RatchetMessage`] frame.
pub const RATCHET_MESSAGE_MAX_LEN: usize =
    len_field(Header::LEN) + len_field(MAX_RATCHET_CIPHERTEXT_LEN);
/// Limit of a [`PreKeyMessage`] frame: the ML-KEM ciphertext and the
/// initiator's keys on top of a ratchet message.
pub const PREKEY_MESSAGE_MAX_LEN: usize = len_field(PUBLIC_IDENTITY_MAX_LEN)
    + len_field(KEY_LEN)
    + 3 * VARINT_FIELD_LEN
    + len_field(KEM_CIPHERTEXT_LEN)
    + len_field(RATCHET_MESSAGE_MAX_LEN);
/// Limit of a [`SenderKeyMessage`] frame.
pub const SENDER_KEY_MESSAGE_MAX_LEN: usize = len_field(CIRCLE_ID_LEN)
    + 3 * VARINT_FIELD_LEN
    + len_field(crate::sender_key::MAX_PADDED_LEN + TAG_LEN)
    + len_field(SIG_LEN);
/// Limit of a [`SenderKeyDistribution`] frame.
pub const SENDER_KEY_DISTRIBUTION_MAX_LEN: usize =
    len_field(CIRCLE_ID_LEN) + 3 * VARINT_FIELD_LEN + len_field(KEY_LEN) + len_field(KEY_LEN);
/// Largest `SenderCertificate`.
const SENDER_CERTIFICATE_MAX_LEN: usize = len_field(KEY_LEN) + len_field(KEY_LEN);
/// Limit of a [`SealedInner`] frame.
pub const SEALED_INNER_MAX_LEN: usize = len_field(SENDER_CERTIFICATE_MAX_LEN)
    + len_field(max(
        PREKEY_MESSAGE_MAX_LEN,
        max(RATCHET_MESSAGE_MAX_LEN, SENDER_KEY_MESSAGE_MAX_LEN),
    ));

// The largest inner message, framed, must fit a sealed body.
const _: () = assert!(SEALED_INNER_MAX_LEN + frame::MAX_PREFIX_LEN <= crate::sealed::MAX_INNER_LEN);

/// Decodes exactly one frame of `P` within `limit` and validates it.
fn decode<P, D>(input: &[u8], limit: usize) -> Result<D, WireError>
where
    P: Message + Default,
    D: TryFrom<P, Error = WireError>,
{
    D::try_from(frame::decode_message::<P>(input, limit)?)
}

/// Encodes the signed part of a prekey bundle, as the relay stores it.
pub fn encode_signed_bundle(bundle: &SignedBundle) -> Vec<u8> {
    frame::encode_message(&pb::SignedBundle::from(bundle))
}

/// Decodes a signed bundle (fields only: [`decode_prekey_bundle`] also
/// checks the signatures).
pub fn decode_signed_bundle(input: &[u8]) -> Result<SignedBundle, WireError> {
    decode::<pb::SignedBundle, _>(input, SIGNED_BUNDLE_MAX_LEN)
}

/// Encodes a one-time prekey, as the relay stores it.
pub fn encode_one_time_prekey(prekey: &OneTimePreKeyPublic) -> Vec<u8> {
    frame::encode_message(&pb::OneTimePrekey::from(prekey))
}

/// Decodes a one-time prekey.
pub fn decode_one_time_prekey(input: &[u8]) -> Result<OneTimePreKeyPublic, WireError> {
    decode::<pb::OneTimePrekey, _>(input, ONE_TIME_PREKEY_MAX_LEN)
}

/// Encodes an ML-KEM prekey, as the relay stores it.
pub fn encode_pq_prekey(prekey: &PqPreKeyPublic) -> Vec<u8> {
    frame::encode_message(&pb::PqPrekey::from(prekey))
}

/// Decodes an ML-KEM prekey (fields only: the signature is checked by
/// [`decode_prekey_bundle`]).
pub fn decode_pq_prekey(input: &[u8]) -> Result<PqPreKeyPublic, WireError> {
    decode::<pb::PqPrekey, _>(input, PQ_PREKEY_MAX_LEN)
}

/// Decodes the pieces of a fetched bundle (the relay's `signed_bundle`,
/// `one_time_prekey` when it had one, and `pq_prekey`) and verifies every
/// signature with [`PreKeyBundle::validate`].
pub fn decode_prekey_bundle(
    signed_bundle: &[u8],
    one_time_prekey: Option<&[u8]>,
    pq_prekey: &[u8],
) -> Result<PreKeyBundle, WireError> {
    let signed = decode_signed_bundle(signed_bundle)?;
    let one_time = one_time_prekey.map(decode_one_time_prekey).transpose()?;
    let bundle = signed.into_bundle(one_time, decode_pq_prekey(pq_prekey)?);
    bundle.validate()?;
    Ok(bundle)
}

/// Encodes a ratchet message. Its ciphertext must be of a padded plaintext
/// of at most [`MAX_PADDED_LEN`] bytes, or the receiver refuses it.
pub fn encode_ratchet_message(message: &RatchetMessage) -> Vec<u8> {
    frame::encode_message(&pb::RatchetMessage::from(message))
}

/// Decodes a ratchet message.
pub fn decode_ratchet_message(input: &[u8]) -> Result<RatchetMessage, WireError> {
    decode::<pb::RatchetMessage, _>(input, RATCHET_MESSAGE_MAX_LEN)
}

/// Encodes a first message.
pub fn encode_prekey_message(message: &PreKeyMessage) -> Vec<u8> {
    frame::encode_message(&pb::PrekeyMessage::from(message))
}

/// Decodes a first message (fields only: [`crate::handshake::respond`]
/// checks the initiator's signature).
pub fn decode_prekey_message(input: &[u8]) -> Result<PreKeyMessage, WireError> {
    decode::<pb::PrekeyMessage, _>(input, PREKEY_MESSAGE_MAX_LEN)
}

/// Encodes a circle message.
pub fn encode_sender_key_message(message: &SenderKeyMessage) -> Vec<u8> {
    frame::encode_message(&pb::SenderKeyMessage::from(message))
}

/// Decodes a circle message (its signature is checked on decryption).
pub fn decode_sender_key_message(input: &[u8]) -> Result<SenderKeyMessage, WireError> {
    decode::<pb::SenderKeyMessage, _>(input, SENDER_KEY_MESSAGE_MAX_LEN)
}

/// Encodes a sender-key distribution. The result carries a chain key: send
/// it only through a pairwise session.
pub fn encode_sender_key_distribution(distribution: &SenderKeyDistribution) -> Zeroizing<Vec<u8>> {
    let mut message = pb::SenderKeyDistribution::from(distribution);
    let encoded = Zeroizing::new(frame::encode_message(&message));
    message.chain_key.zeroize();
    encoded
}

/// Decodes a sender-key distribution.
pub fn decode_sender_key_distribution(input: &[u8]) -> Result<SenderKeyDistribution, WireError> {
    decode::<pb::SenderKeyDistribution, _>(input, SENDER_KEY_DISTRIBUTION_MAX_LEN)
}

/// Encodes the inner message of a sealed-sender body (the plaintext for
/// [`crate::sealed::seal_body`]).
pub fn encode_sealed_inner(inner: &SealedInner) -> Vec<u8> {
    frame::encode_message(&pb::SealedInner::from(inner))
}

/// Decodes the inner message of an opened sealed-sender body.
pub fn decode_sealed_inner(input: &[u8]) -> Result<SealedInner, WireError> {
    decode::<pb::SealedInner, _>(input, SEALED_INNER_MAX_LEN)
}

/// A required sub-message.
fn required<T>(field: Option<T>, name: &'static str) -> Result<T, WireError> {
    field.ok_or(WireError::MissingField(name))
}

/// A field of exactly `N` bytes.
fn exact<const N: usize>(bytes: &[u8], field: &'static str) -> Result<[u8; N], WireError> {
    bytes.try_into().map_err(|_| WireError::FieldLength {
        field,
        len: bytes.len(),
        expected: N,
    })
}

/// An X25519 public key. Any 32 bytes are accepted here; a low-order key is
/// refused by the contributory check of the Diffie-Hellman that uses it.
fn x25519_key(bytes: &[u8], field: &'static str) -> Result<X25519PublicKey, WireError> {
    exact::<KEY_LEN>(bytes, field).map(X25519PublicKey::from_bytes)
}

/// An Ed25519 public key that is a valid point and not of small order.
fn ed25519_key(bytes: &[u8], field: &'static str) -> Result<Ed25519PublicKey, WireError> {
    let bytes = exact::<KEY_LEN>(bytes, field)?;
    match VerifyingKey::from_bytes(&bytes) {
        Ok(key) if !key.is_weak() => Ok(Ed25519PublicKey::from_bytes(bytes)),
        _ => Err(WireError::InvalidKey(field)),
    }
}

/// Checks that a ciphertext holds a padded plaintext of at most
/// `max_padded` bytes plus the tag.
fn check_ciphertext(
    ciphertext: &[u8],
    max_padded: usize,
    field: &'static str,
) -> Result<(), WireError> {
    let padded = ciphertext.len().checked_sub(TAG_LEN);
    if padded.is_some_and(|len| is_padded_len(len) && len <= max_padded) {
        Ok(())
    } else {
        Err(WireError::CiphertextLength {
            field,
            len: ciphertext.len(),
        })
    }
}
