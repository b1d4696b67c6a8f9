//! Versioned binary layouts of the state a client stores: identity keys,
//! prekeys, replay caches and ratchet sessions.
//!
//! Every layout starts with a version byte ([`VERSION`]), then fixed-size
//! fields; integers are big-endian, optional fields carry a `0x00`/`0x01`
//! presence byte, lists a big-endian count. Decoders check the total size
//! against a limit first, never panic, and reject trailing bytes. These bytes
//! hold secrets: store them encrypted (the client SDK does) and never log them.

use zeroize::Zeroizing;

/// The only layout version so far.
pub const VERSION: u8 = 1;

/// Why stored state could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoredStateError {
    /// The input is larger than any valid encoding of this type.
    #[error("stored state is too large ({len} bytes, limit {limit})")]
    TooLarge {
        /// Length of the input.
        len: usize,
        /// Largest valid encoding.
        limit: usize,
    },
    /// The input ends before the layout does.
    #[error("stored state is truncated")]
    Truncated,
    /// The leading version byte is not one this code reads.
    #[error("unsupported stored state version {0}")]
    UnsupportedVersion(u8),
    /// Bytes are left over after the layout ended.
    #[error("stored state has trailing bytes")]
    TrailingBytes,
    /// A field holds a value that no encoder writes.
    #[error("stored state has an invalid {0}")]
    InvalidField(&'static str),
}

/// Builds a layout. The buffer is zeroized on drop because layouts hold secrets.
pub(crate) struct Writer {
    buf: Zeroizing<Vec<u8>>,
}

impl Writer {
    /// Starts a layout with the version byte.
    pub(crate) fn new(capacity: usize) -> Self {
        let mut buf = Zeroizing::new(Vec::with_capacity(capacity));
        buf.push(VERSION);
        Self { buf }
    }

    pub(crate) fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(bytes);
        self
    }

    pub(crate) fn u8(&mut self, value: u8) -> &mut Self {
        self.buf.push(value);
        self
    }

    pub(crate) fn u16(&mut self, value: u16) -> &mut Self {
        self.bytes(&value.to_be_bytes())
    }

    pub(crate) fn u32(&mut self, value: u32) -> &mut Self {
        self.bytes(&value.to_be_bytes())
    }

    pub(crate) fn bool(&mut self, value: bool) -> &mut Self {
        self.u8(u8::from(value))
    }

    /// Presence byte, then the bytes when present.
    pub(crate) fn option(&mut self, value: Option<&[u8]>) -> &mut Self {
        match value {
            Some(bytes) => self.u8(1).bytes(bytes),
            None => self.u8(0),
        }
    }

    pub(crate) fn finish(self) -> Zeroizing<Vec<u8>> {
        self.buf
    }
}

/// Reads a layout written by [`Writer`].
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Checks the size limit and the version byte.
    pub(crate) fn new(input: &'a [u8], limit: usize) -> Result<Self, StoredStateError> {
        if input.len() > limit {
            return Err(StoredStateError::TooLarge {
                len: input.len(),
                limit,
            });
        }
        let (&version, rest) = input.split_first().ok_or(StoredStateError::Truncated)?;
        if version != VERSION {
            return Err(StoredStateError::UnsupportedVersion(version));
        }
        Ok(Self { rest })
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], StoredStateError> {
        let (head, rest) = self
            .rest
            .split_first_chunk::<N>()
            .ok_or(StoredStateError::Truncated)?;
        self.rest = rest;
        Ok(*head)
    }

    /// Reads a secret array straight into a zeroizing box.
    pub(crate) fn secret<const N: usize>(
        &mut self,
    ) -> Result<Zeroizing<[u8; N]>, StoredStateError> {
        let (head, rest) = self
            .rest
            .split_first_chunk::<N>()
            .ok_or(StoredStateError::Truncated)?;
        self.rest = rest;
        let mut out = Zeroizing::new([0u8; N]);
        out.copy_from_slice(head);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, StoredStateError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, StoredStateError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, StoredStateError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn bool(&mut self, field: &'static str) -> Result<bool, StoredStateError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(StoredStateError::InvalidField(field)),
        }
    }

    /// Reads a presence byte; the caller reads the value when it is `true`.
    pub(crate) fn present(&mut self, field: &'static str) -> Result<bool, StoredStateError> {
        self.bool(field)
    }

    /// Ends the layout: no bytes may be left.
    pub(crate) fn finish(self) -> Result<(), StoredStateError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(StoredStateError::TrailingBytes)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_of_every_field_kind() {
        let mut w = Writer::new(16);
        w.u8(7)
            .u16(0x0102)
            .u32(0x0304_0506)
            .bool(true)
            .option(Some(&[9, 9]))
            .option(None);
        let bytes = w.finish();
        let mut r = Reader::new(&bytes, 64).unwrap();
        assert_eq!(r.u8().unwrap(), 7);
        assert_eq!(r.u16().unwrap(), 0x0102);
        assert_eq!(r.u32().unwrap(), 0x0304_0506);
        assert!(r.bool("b").unwrap());
        assert!(r.present("o").unwrap());
        assert_eq!(r.array::<2>().unwrap(), [9, 9]);
        assert!(!r.present("o").unwrap());
        r.finish().unwrap();
    }

    #[test]
    fn bad_inputs_are_errors() {
        assert_eq!(Reader::new(&[], 8).err(), Some(StoredStateError::Truncated));
        assert_eq!(
            Reader::new(&[2], 8).err(),
            Some(StoredStateError::UnsupportedVersion(2))
        );
        assert_eq!(
            Reader::new(&[1; 9], 8).err(),
            Some(StoredStateError::TooLarge { len: 9, limit: 8 })
        );
        let mut r = Reader::new(&[1, 2], 8).unwrap();
        assert_eq!(r.bool("flag"), Err(StoredStateError::InvalidField("flag")));
        let mut r = Reader::new(&[1, 0], 8).unwrap();
        assert_eq!(r.u32(), Err(StoredStateError::Truncated));
        let r = Reader::new(&[1, 0], 8).unwrap();
        assert_eq!(r.finish(), Err(StoredStateError::TrailingBytes));
    }
}
