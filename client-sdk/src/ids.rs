//! Printable identifiers: member ids and message ids.
//!
//! A **member id** names a person's device to the app and the CLI. It is
//! derived from the identity, so nobody can claim someone else's id:
//!
//! ```text
//! member id = SHA-256("Hearth_v1_MemberId" ‖ Encode(IK_sig))[0..16]
//! ```
//!
//! printed as 26 characters of unpadded lowercase base32 (RFC 4648
//! alphabet `a–z2–7`). Parsing ignores case. A member id never leaves the
//! device in the clear: the relay only sees mailbox ids.

use std::fmt;
use std::str::FromStr;

use hearth_protocol::keys::Ed25519PublicKey;
use sha2::{Digest as _, Sha256};

/// Domain separation prefix of the member id hash.
pub const MEMBER_ID_LABEL: &[u8] = b"Hearth_v1_MemberId";

/// Length of a member id in bytes.
pub const MEMBER_ID_LEN: usize = 16;

/// A stable, printable id of a member's device, derived from its identity
/// key (see the [module docs](self)).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MemberId([u8; MEMBER_ID_LEN]);

impl MemberId {
    /// The member id of the device whose `IK_sig` is `sig_key`.
    pub fn of(sig_key: &Ed25519PublicKey) -> Self {
        let digest = Sha256::new()
            .chain_update(MEMBER_ID_LABEL)
            .chain_update(sig_key.encode())
            .finalize();
        let mut id = [0u8; MEMBER_ID_LEN];
        id.copy_from_slice(&digest[..MEMBER_ID_LEN]);
        Self(id)
    }

    /// Wraps raw bytes (as stored or carried in an invite link).
    pub const fn from_bytes(bytes: [u8; MEMBER_ID_LEN]) -> Self {
        Self(bytes)
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; MEMBER_ID_LEN] {
        &self.0
    }
}

impl fmt::Display for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&base32_encode(&self.0))
    }
}

impl fmt::Debug for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MemberId({self})")
    }
}

/// A string that is not a member id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a member id (26 base32 characters expected)")]
pub struct InvalidMemberId;

impl FromStr for MemberId {
    type Err = InvalidMemberId;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bytes = base32_decode(text.trim()).ok_or(InvalidMemberId)?;
        bytes.try_into().map(Self).map_err(|_| InvalidMemberId)
    }
}

/// Length of a message id in bytes.
pub const MESSAGE_ID_LEN: usize = 16;

/// The id of one message: 16 random bytes chosen by its sender, carried
/// inside the encryption. Receivers show each message id once.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId([u8; MESSAGE_ID_LEN]);

impl MessageId {
    /// Draws a fresh id.
    pub fn random<R: rand::CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut id = [0u8; MESSAGE_ID_LEN];
        rng.fill_bytes(&mut id);
        Self(id)
    }

    /// Wraps raw bytes.
    pub const fn from_bytes(bytes: [u8; MESSAGE_ID_LEN]) -> Self {
        Self(bytes)
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; MESSAGE_ID_LEN] {
        &self.0
    }
}

impl fmt::Display for MessageId {
    /// 32 lowercase hex digits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in &self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageId({self})")
    }
}

/// A string that is not a message id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a message id (32 hex digits expected)")]
pub struct InvalidMessageId;

impl FromStr for MessageId {
    type Err = InvalidMessageId;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim().as_bytes();
        if text.len() != 2 * MESSAGE_ID_LEN {
            return Err(InvalidMessageId);
        }
        let mut id = [0u8; MESSAGE_ID_LEN];
        for (byte, pair) in id.iter_mut().zip(text.chunks_exact(2)) {
            let pair = std::str::from_utf8(pair).map_err(|_| InvalidMessageId)?;
            *byte = u8::from_str_radix(pair, 16).map_err(|_| InvalidMessageId)?;
        }
        Ok(Self(id))
    }
}

const BASE32_ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// Unpadded lowercase RFC 4648 base32.
pub(crate) fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(
                BASE32_ALPHABET[((buffer >> bits) & 31) as usize],
            ));
        }
    }
    if bits > 0 {
        out.push(char::from(
            BASE32_ALPHABET[((buffer << (5 - bits)) & 31) as usize],
        ));
    }
    out
}

/// Decodes unpadded base32 (any case); `None` on a bad character or
/// non-zero trailing bits.
pub(crate) fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let value = BASE32_ALPHABET
            .iter()
            .position(|&a| a == c.to_ascii_lowercase())?;
        buffer = (buffer << 5) | value as u32;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(((buffer >> bits) & 0xFF) as u8);
        }
    }
    (bits < 5 && buffer & ((1 << bits) - 1) == 0).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_matches_rfc4648_vectors() {
        // RFC 4648 §10, lowercased and without padding.
        for (plain, encoded) in [
            ("", ""),
            ("f", "my"),
            ("fo", "mzxq"),
            ("foo", "mzxw6"),
            ("foob", "mzxw6yq"),
            ("fooba", "mzxw6ytb"),
            ("foobar", "mzxw6ytboi"),
        ] {
            assert_eq!(base32_encode(plain.as_bytes()), encoded);
            assert_eq!(base32_decode(encoded).unwrap(), plain.as_bytes());
            assert_eq!(
                base32_decode(&encoded.to_uppercase()).unwrap(),
                plain.as_bytes()
            );
        }
        assert_eq!(base32_decode("my1"), None);
        assert_eq!(base32_decode("mz"), None, "non-zero trailing bits");
    }

    #[test]
    fn member_id_is_26_chars_and_round_trips() {
        let key = Ed25519PublicKey::from_bytes([7; 32]);
        let id = MemberId::of(&key);
        let text = id.to_string();
        assert_eq!(text.len(), 26);
        assert_eq!(text.parse::<MemberId>(), Ok(id));
        assert_eq!(text.to_uppercase().parse::<MemberId>(), Ok(id));
        assert_ne!(MemberId::of(&Ed25519PublicKey::from_bytes([8; 32])), id);
        assert_eq!("abc".parse::<MemberId>(), Err(InvalidMemberId));
    }

    #[test]
    fn member_id_is_the_labelled_hash_of_the_encoded_key() {
        let key = Ed25519PublicKey::from_bytes([7; 32]);
        let digest = Sha256::digest([MEMBER_ID_LABEL, &key.encode()].concat());
        assert_eq!(MemberId::of(&key).as_bytes(), &digest[..16]);
    }

    #[test]
    fn message_id_prints_as_hex_and_parses_back() {
        let id = MessageId::from_bytes([0xab; 16]);
        assert_eq!(id.to_string(), "ab".repeat(16));
        assert_eq!(id.to_string().parse::<MessageId>(), Ok(id));
        assert_eq!("zz".repeat(16).parse::<MessageId>(), Err(InvalidMessageId));
    }
}
