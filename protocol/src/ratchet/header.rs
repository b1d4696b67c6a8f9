//! The ratchet message header, `0x01 ‖ DHs_pub (32) ‖ PN (u32) ‖ N (u32)`
//! (41 bytes, big-endian), sent in the clear and authenticated as part of
//! the associated data.

use crate::keys::X25519PublicKey;

/// Why a header could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderError {
    /// The header is not 41 bytes long.
    #[error("ratchet header must be 41 bytes, got {0}")]
    Length(usize),
    /// The leading version byte is not `0x01`.
    #[error("unsupported ratchet header version {0}")]
    Version(u8),
}

/// A parsed ratchet header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The sender's current ratchet public key `DHs`.
    pub ratchet_key: X25519PublicKey,
    /// `PN`: number of messages in the sender's previous sending chain.
    pub pn: u32,
    /// `N`: this message's number in the current sending chain.
    pub n: u32,
}

impl Header {
    /// Length of the layout.
    pub const LEN: usize = 41;
    /// The version byte.
    pub const VERSION: u8 = 0x01;

    /// The 41-byte layout.
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[0] = Self::VERSION;
        out[1..33].copy_from_slice(self.ratchet_key.as_bytes());
        out[33..37].copy_from_slice(&self.pn.to_be_bytes());
        out[37..].copy_from_slice(&self.n.to_be_bytes());
        out
    }

    /// Parses the 41-byte layout; never panics.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, HeaderError> {
        let bytes: &[u8; Self::LEN] = bytes
            .try_into()
            .map_err(|_| HeaderError::Length(bytes.len()))?;
        if bytes[0] != Self::VERSION {
            return Err(HeaderError::Version(bytes[0]));
        }
        let mut key = [0u8; 32];
        key.copy_from_slice(&bytes[1..33]);
        Ok(Self {
            ratchet_key: X25519PublicKey::from_bytes(key),
            pn: u32::from_be_bytes([bytes[33], bytes[34], bytes[35], bytes[36]]),
            n: u32::from_be_bytes([bytes[37], bytes[38], bytes[39], bytes[40]]),
        })
    }
}

/// A ratchet message: the header and `ct` (ciphertext ‖ 16-byte tag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RatchetMessage {
    /// The header.
    pub header: Header,
    /// Ciphertext ‖ tag of the (padded) plaintext.
    pub ciphertext: Vec<u8>,
}

impl RatchetMessage {
    /// Builds a message from a received header layout and ciphertext.
    pub fn from_parts(header: &[u8], ciphertext: Vec<u8>) -> Result<Self, HeaderError> {
        Ok(Self {
            header: Header::from_bytes(header)?,
            ciphertext,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn layout_is_version_key_pn_n() {
        let header = Header {
            ratchet_key: X25519PublicKey::from_bytes([9; 32]),
            pn: 0x0102_0304,
            n: 5,
        };
        let bytes = header.to_bytes();
        assert_eq!(bytes[0], 0x01);
        assert_eq!(&bytes[1..33], &[9; 32]);
        assert_eq!(&bytes[33..], &[1, 2, 3, 4, 0, 0, 0, 5]);
        assert_eq!(Header::from_bytes(&bytes), Ok(header));
    }

    #[test]
    fn malformed_headers_are_errors() {
        let mut bytes = Header {
            ratchet_key: X25519PublicKey::from_bytes([9; 32]),
            pn: 0,
            n: 0,
        }
        .to_bytes();
        assert_eq!(
            Header::from_bytes(&bytes[..40]),
            Err(HeaderError::Length(40))
        );
        assert_eq!(Header::from_bytes(&[]), Err(HeaderError::Length(0)));
        bytes[0] = 2;
        assert_eq!(Header::from_bytes(&bytes), Err(HeaderError::Version(2)));
    }

    proptest! {
        #[test]
        fn header_round_trips(key in any::<[u8; 32]>(), pn in any::<u32>(), n in any::<u32>()) {
            let header = Header { ratchet_key: X25519PublicKey::from_bytes(key), pn, n };
            prop_assert_eq!(Header::from_bytes(&header.to_bytes()), Ok(header));
        }

        #[test]
        fn parsing_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Header::from_bytes(&bytes);
        }
    }
}
