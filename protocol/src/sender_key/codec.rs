//! Fixed wire layouts: a bounds-checked reader and key parsing.

use ed25519_dalek::VerifyingKey;

use super::{DecodeError, VERSION, check_chain_id};
use crate::stored::{self, StoredStateError};

/// A valid, non-weak Ed25519 public key.
fn parse_verifying_key(bytes: &[u8; 32]) -> Option<VerifyingKey> {
    VerifyingKey::from_bytes(bytes)
        .ok()
        .filter(|key| !key.is_weak())
}

/// Reads a public key of stored state.
pub(super) fn stored_verifying_key(
    r: &mut stored::Reader<'_>,
    field: &'static str,
) -> Result<VerifyingKey, StoredStateError> {
    parse_verifying_key(&r.array()?).ok_or(StoredStateError::InvalidField(field))
}

/// Reads fields of a wire layout.
pub(super) struct Reader<'a> {
    bytes: &'a [u8],
    len: usize,
}

impl<'a> Reader<'a> {
    /// Starts after the version byte, which must be [`VERSION`].
    pub(super) fn versioned(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        match bytes.split_first() {
            Some((&VERSION, rest)) => Ok(Self {
                bytes: rest,
                len: bytes.len(),
            }),
            _ => Err(DecodeError::UnsupportedVersion),
        }
    }

    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.bytes.len() < n {
            return Err(DecodeError::WrongLength { len: self.len });
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    pub(super) fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(super) fn u32(&mut self) -> Result<u32, DecodeError> {
        self.array().map(u32::from_be_bytes)
    }

    pub(super) fn u64(&mut self) -> Result<u64, DecodeError> {
        self.array().map(u64::from_be_bytes)
    }

    pub(super) fn chain_id(&mut self) -> Result<u32, DecodeError> {
        check_chain_id(self.u32()?).map_err(|_| DecodeError::BadChainId)
    }

    /// An Ed25519 public key that is a valid point and not of small order.
    pub(super) fn verifying_key(&mut self) -> Result<VerifyingKey, DecodeError> {
        parse_verifying_key(&self.array()?).ok_or(DecodeError::BadKey)
    }

    /// What is left, consuming the reader.
    pub(super) fn rest(self) -> &'a [u8] {
        self.bytes
    }

    /// Fails unless every byte was read.
    pub(super) fn finish(self) -> Result<(), DecodeError> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::WrongLength { len: self.len })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_checks_version_bounds_and_trailing_bytes() {
        assert!(matches!(
            Reader::versioned(&[]),
            Err(DecodeError::UnsupportedVersion)
        ));
        assert!(matches!(
            Reader::versioned(&[2, 0]),
            Err(DecodeError::UnsupportedVersion)
        ));
        let mut r = Reader::versioned(&[1, 0, 7, 9]).unwrap();
        assert_eq!(r.array::<2>().unwrap(), [0, 7]);
        assert_eq!(r.u32(), Err(DecodeError::WrongLength { len: 4 }));
        assert_eq!(r.finish(), Err(DecodeError::WrongLength { len: 4 }));
    }

    #[test]
    fn chain_ids_with_the_top_bit_are_refused() {
        let mut r = Reader::versioned(&[1, 0x80, 0, 0, 0]).unwrap();
        assert_eq!(r.chain_id(), Err(DecodeError::BadChainId));
    }

    #[test]
    fn weak_signing_keys_are_refused() {
        // The identity point (order 1) is a valid encoding but weak.
        let mut bytes = vec![1, 1];
        bytes.extend_from_slice(&[0; 31]);
        let mut r = Reader::versioned(&bytes).unwrap();
        assert_eq!(r.verifying_key(), Err(DecodeError::BadKey));
    }
}
