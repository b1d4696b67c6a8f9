//! Length-delimited framing: a protobuf varint length, then that many bytes.
//!
//! Every decoder takes a hard size limit and refuses a frame whose declared
//! length exceeds it before reading or allocating anything.

use prost::Message;

/// Why a frame could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The input ended before the frame did.
    #[error("frame is truncated")]
    Truncated,
    /// The length prefix is not a valid varint.
    #[error("frame length prefix is malformed")]
    BadLength,
    /// The declared length exceeds the limit.
    #[error("frame of {declared} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Length the frame declared.
        declared: u64,
        /// The limit in force.
        limit: usize,
    },
    /// Bytes follow the frame where none were expected.
    #[error("{0} unexpected bytes after the frame")]
    TrailingBytes(usize),
    /// The payload is not a valid protobuf message of the expected type.
    #[error("frame payload is not a valid message")]
    BadMessage,
}

/// Largest number of bytes a varint length prefix may take.
pub const MAX_PREFIX_LEN: usize = 10;

/// Appends `payload` to `out` as one frame.
pub fn encode_into(payload: &[u8], out: &mut Vec<u8>) {
    prost::encoding::encode_varint(payload.len() as u64, out);
    out.extend_from_slice(payload);
}

/// Encodes a protobuf message as one frame.
pub fn encode_message<M: Message>(message: &M) -> Vec<u8> {
    message.encode_length_delimited_to_vec()
}

/// Reads the length prefix at the start of `input`: returns the payload
/// length and the prefix length, or an error if the declared length exceeds
/// `limit`.
pub fn decode_prefix(input: &[u8], limit: usize) -> Result<(usize, usize), FrameError> {
    let mut declared: u64 = 0;
    for (i, byte) in input.iter().take(MAX_PREFIX_LEN).enumerate() {
        let bits = u64::from(byte & 0x7f);
        if i == MAX_PREFIX_LEN - 1 && *byte > 1 {
            return Err(FrameError::BadLength);
        }
        declared |= bits << (7 * i);
        if byte & 0x80 == 0 {
            if declared > limit as u64 {
                return Err(FrameError::TooLarge { declared, limit });
            }
            // `declared <= limit`, so it fits in usize.
            return Ok((declared as usize, i + 1));
        }
    }
    if input.len() >= MAX_PREFIX_LEN {
        Err(FrameError::BadLength)
    } else {
        Err(FrameError::Truncated)
    }
}

/// Decodes the frame at the start of `input`: returns its payload and the
/// number of bytes consumed.
pub fn decode(input: &[u8], limit: usize) -> Result<(&[u8], usize), FrameError> {
    let (len, prefix) = decode_prefix(input, limit)?;
    let end = prefix.checked_add(len).ok_or(FrameError::BadLength)?;
    let payload = input.get(prefix..end).ok_or(FrameError::Truncated)?;
    Ok((payload, end))
}

/// Decodes `input` as exactly one frame holding one protobuf message.
pub fn decode_message<M: Message + Default>(input: &[u8], limit: usize) -> Result<M, FrameError> {
    let (payload, used) = decode(input, limit)?;
    if used != input.len() {
        return Err(FrameError::TrailingBytes(input.len() - used));
    }
    M::decode(payload).map_err(|_| FrameError::BadMessage)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn refuses_declared_length_over_limit_without_payload() {
        let mut buf = Vec::new();
        prost::encoding::encode_varint(1 << 40, &mut buf);
        assert_eq!(
            decode(&buf, 1024),
            Err(FrameError::TooLarge {
                declared: 1 << 40,
                limit: 1024
            })
        );
    }

    #[test]
    fn truncated_and_malformed_prefixes() {
        assert_eq!(decode(&[], 10), Err(FrameError::Truncated));
        assert_eq!(decode(&[0x85], 10), Err(FrameError::Truncated));
        assert_eq!(decode(&[0x05, 1, 2], 10), Err(FrameError::Truncated));
        assert_eq!(decode(&[0xff; 11], usize::MAX), Err(FrameError::BadLength));
        let mut overlong = vec![0xff; 9];
        overlong.push(0x02);
        assert_eq!(decode(&overlong, usize::MAX), Err(FrameError::BadLength));
    }

    #[test]
    fn trailing_bytes_are_an_error() {
        let mut buf = Vec::new();
        encode_into(b"", &mut buf);
        buf.push(7);
        assert_eq!(
            decode_message::<()>(&buf, 16),
            Err(FrameError::TrailingBytes(1))
        );
    }

    proptest! {
        #[test]
        fn round_trip(payload in proptest::collection::vec(any::<u8>(), 0..4096), limit in 0usize..8192) {
            let mut buf = Vec::new();
            encode_into(&payload, &mut buf);
            match decode(&buf, limit) {
                Ok((decoded, used)) => {
                    prop_assert!(payload.len() <= limit);
                    prop_assert_eq!(decoded, &payload[..]);
                    prop_assert_eq!(used, buf.len());
                }
                Err(FrameError::TooLarge { declared, .. }) => {
                    prop_assert!(payload.len() > limit);
                    prop_assert_eq!(declared, payload.len() as u64);
                }
                Err(other) => prop_assert!(false, "unexpected {other:?}"),
            }
        }

        #[test]
        fn arbitrary_input_never_panics(input in proptest::collection::vec(any::<u8>(), 0..64), limit in 0usize..1024) {
            if let Ok((payload, used)) = decode(&input, limit) {
                prop_assert!(payload.len() <= limit);
                prop_assert!(used <= input.len());
            }
        }
    }
}
