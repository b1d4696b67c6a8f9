//! Length-delimited framing: a protobuf varint length, then that many bytes.
//!
//! Every decoder takes a hard size limit and refuses a frame whose declared
//! length exceeds it before reading or allocating anything.

use bytes::{Buf as _, Bytes, BytesMut};
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

/// Splits a byte stream into frames as its bytes arrive: the reader of a
/// long-lived stream pushes each chunk it reads and pops every whole frame.
///
/// A frame's declared length is checked against the limit as soon as its
/// prefix has arrived, so an oversized frame is refused before its payload
/// is buffered: at most one frame (plus the start of the next) is ever held.
/// After an error the stream's framing is lost; the splitter refuses
/// everything that follows.
#[derive(Debug)]
pub struct FrameSplitter {
    limit: usize,
    buffer: BytesMut,
    broken: Option<FrameError>,
}

impl FrameSplitter {
    /// A splitter refusing frames whose payload exceeds `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            buffer: BytesMut::new(),
            broken: None,
        }
    }

    /// Appends bytes read from the stream.
    pub fn push(&mut self, chunk: &[u8]) {
        if self.broken.is_none() {
            self.buffer.extend_from_slice(chunk);
        }
    }

    /// The next whole frame's payload, `Ok(None)` if more bytes are needed,
    /// or an error if the length prefix is broken or over the limit (then
    /// again on every later call). Payloads share the buffer: no copy.
    pub fn next_frame(&mut self) -> Result<Option<Bytes>, FrameError> {
        if let Some(broken) = &self.broken {
            return Err(broken.clone());
        }
        let (len, prefix) = match decode_prefix(&self.buffer, self.limit) {
            Ok(found) => found,
            Err(FrameError::Truncated) => return Ok(None),
            Err(bad) => {
                self.buffer = BytesMut::new();
                self.broken = Some(bad.clone());
                return Err(bad);
            }
        };
        if self.buffer.len() < prefix + len {
            // Room for the rest of this frame, so it arrives without regrowing.
            self.buffer.reserve(prefix + len - self.buffer.len());
            return Ok(None);
        }
        self.buffer.advance(prefix);
        Ok(Some(self.buffer.split_to(len).freeze()))
    }

    /// Bytes buffered that do not yet make a whole frame.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// Most bytes worth reading next without buffering beyond the current
    /// frame and the prefix of the one after.
    pub fn room(&self) -> usize {
        let wanted = match decode_prefix(&self.buffer, self.limit) {
            Ok((len, prefix)) => prefix + len + MAX_PREFIX_LEN,
            Err(_) => self.limit.saturating_add(2 * MAX_PREFIX_LEN),
        };
        wanted.saturating_sub(self.buffer.len()).max(MAX_PREFIX_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn framed(payloads: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for payload in payloads {
            encode_into(payload, &mut out);
        }
        out
    }

    #[test]
    fn splitter_yields_frames_however_the_bytes_are_cut() {
        let big = vec![9u8; 300];
        let bytes = framed(&[b"one", b"", &big, b"four"]);
        for piece in [1, 2, 7, 64, bytes.len()] {
            let mut splitter = FrameSplitter::new(1024);
            let mut frames = Vec::new();
            for chunk in bytes.chunks(piece) {
                splitter.push(chunk);
                while let Some(frame) = splitter.next_frame().unwrap() {
                    frames.push(frame);
                }
            }
            assert_eq!(frames.len(), 4, "pieces of {piece}");
            assert_eq!(frames[0].as_ref(), b"one");
            assert!(frames[1].is_empty());
            assert_eq!(frames[2].as_ref(), big.as_slice());
            assert_eq!(frames[3].as_ref(), b"four");
            assert_eq!(splitter.buffered(), 0);
        }
    }

    #[test]
    fn splitter_refuses_an_oversized_frame_from_its_prefix_and_stays_broken() {
        let mut splitter = FrameSplitter::new(16);
        let mut prefix = Vec::new();
        prost::encoding::encode_varint(1 << 20, &mut prefix);
        splitter.push(&prefix);
        let refused = FrameError::TooLarge {
            declared: 1 << 20,
            limit: 16,
        };
        assert_eq!(splitter.next_frame(), Err(refused.clone()));
        splitter.push(&framed(&[b"ok"]));
        assert_eq!(splitter.next_frame(), Err(refused), "framing is lost");
        assert_eq!(splitter.buffered(), 0, "nothing more is buffered");
    }

    #[test]
    fn splitter_room_never_asks_for_much_more_than_one_frame() {
        let mut splitter = FrameSplitter::new(256 * 1024);
        assert_eq!(splitter.room(), 256 * 1024 + 2 * MAX_PREFIX_LEN);
        splitter.push(&framed(&[b"abc"])[..2]);
        assert_eq!(splitter.room(), 1 + 3 + MAX_PREFIX_LEN - 2);
    }

    proptest! {
        #[test]
        fn splitter_matches_decode_on_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..200), cut in 1usize..20) {
            let mut splitter = FrameSplitter::new(32);
            let mut got = Vec::new();
            let mut failed = false;
            for chunk in bytes.chunks(cut) {
                splitter.push(chunk);
                loop {
                    match splitter.next_frame() {
                        Ok(Some(frame)) => got.push(frame.to_vec()),
                        Ok(None) => break,
                        Err(_) => { failed = true; break; }
                    }
                }
                if failed { break; }
            }
            // The same frames as decoding the whole input one frame at a time.
            let mut expected = Vec::new();
            let mut rest = bytes.as_slice();
            while let Ok((payload, used)) = decode(rest, 32) {
                expected.push(payload.to_vec());
                rest = &rest[used..];
            }
            prop_assert_eq!(got, expected);
        }
    }

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
