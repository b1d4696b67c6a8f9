//! Padding (DESIGN.md §5): plaintext ‖ `0x80` ‖ `0x00`… up to the smallest
//! allowed size that holds `len + 1` bytes.
//!
//! The allowed sizes are 256 B, then the powers of two up to 64 KiB, then the
//! multiples of 64 KiB. So 255 B pads to 256 and 256 B pads to 512: an
//! observer of the ciphertext learns only the bucket.

/// The smallest padded size.
pub const MIN_PADDED_LEN: usize = 256;

/// Above this size, padded sizes are multiples of it instead of powers of two.
pub const BLOCK_LEN: usize = 64 * 1024;

/// The byte that marks the end of the plaintext.
pub const MARKER: u8 = 0x80;

/// Why a padded buffer could not be unpadded. Both variants mean the sender
/// produced a malformed plaintext.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PaddingError {
    /// The buffer's length is not one of the allowed padded sizes.
    #[error("{len} bytes is not an allowed padded size")]
    InvalidLength {
        /// Length of the buffer.
        len: usize,
    },
    /// The last non-zero byte is not the `0x80` marker (or there is none).
    #[error("padding marker is missing")]
    MissingMarker,
}

/// The padded size of a plaintext of `len` bytes: the smallest allowed size
/// that holds `len + 1` bytes.
///
/// Saturates at `usize::MAX` for lengths no buffer can have.
pub fn padded_len(len: usize) -> usize {
    let need = len.saturating_add(1);
    if need <= MIN_PADDED_LEN {
        MIN_PADDED_LEN
    } else if need <= BLOCK_LEN {
        need.next_power_of_two()
    } else {
        need.div_ceil(BLOCK_LEN).saturating_mul(BLOCK_LEN)
    }
}

/// Whether `len` is one of the allowed padded sizes.
pub fn is_padded_len(len: usize) -> bool {
    if len <= BLOCK_LEN {
        len >= MIN_PADDED_LEN && len.is_power_of_two()
    } else {
        len.is_multiple_of(BLOCK_LEN)
    }
}

/// Pads `plaintext` to [`padded_len`]`(plaintext.len())` bytes.
pub fn pad(plaintext: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(padded_len(plaintext.len()));
    out.extend_from_slice(plaintext);
    out.push(MARKER);
    out.resize(padded_len(plaintext.len()), 0);
    out
}

/// Strips the padding from `padded`: the plaintext is everything before the
/// last `0x80` that only zeros follow.
pub fn unpad(padded: &[u8]) -> Result<&[u8], PaddingError> {
    if !is_padded_len(padded.len()) {
        return Err(PaddingError::InvalidLength { len: padded.len() });
    }
    let marker_at = padded
        .iter()
        .rposition(|&b| b != 0)
        .ok_or(PaddingError::MissingMarker)?;
    if padded[marker_at] != MARKER {
        return Err(PaddingError::MissingMarker);
    }
    Ok(&padded[..marker_at])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn design_examples() {
        assert_eq!(padded_len(0), 256);
        assert_eq!(padded_len(255), 256);
        assert_eq!(padded_len(256), 512);
        assert_eq!(padded_len(511), 512);
        assert_eq!(padded_len(512), 1024);
        assert_eq!(padded_len(65_535), 65_536);
        assert_eq!(padded_len(65_536), 131_072);
        assert_eq!(padded_len(131_071), 131_072);
        assert_eq!(padded_len(131_072), 196_608);
    }

    #[test]
    fn pad_layout_is_plaintext_marker_zeros() {
        let padded = pad(b"hi");
        assert_eq!(padded.len(), 256);
        assert_eq!(&padded[..3], &[b'h', b'i', 0x80]);
        assert!(padded[3..].iter().all(|&b| b == 0));
    }

    #[test]
    fn unpad_keeps_trailing_marker_bytes_of_the_plaintext() {
        let pt = [0x80, 0x00, 0x80, 0x00];
        assert_eq!(unpad(&pad(&pt)).unwrap(), &pt);
    }

    #[test]
    fn unpad_rejects_bad_sizes() {
        for len in [0, 1, 255, 257, 300, 65_537, 98_304] {
            let mut buf = vec![0u8; len];
            if let Some(first) = buf.first_mut() {
                *first = MARKER;
            }
            assert_eq!(unpad(&buf), Err(PaddingError::InvalidLength { len }));
        }
    }

    #[test]
    fn unpad_rejects_a_missing_marker() {
        assert_eq!(unpad(&[0u8; 256]), Err(PaddingError::MissingMarker));
        let mut buf = [0u8; 256];
        buf[10] = 0x81;
        assert_eq!(unpad(&buf), Err(PaddingError::MissingMarker));
        buf[10] = 0x01;
        assert_eq!(unpad(&buf), Err(PaddingError::MissingMarker));
    }

    #[test]
    fn the_saturating_tail_does_not_panic() {
        assert_eq!(padded_len(usize::MAX), usize::MAX);
        assert!(!is_padded_len(usize::MAX));
    }

    proptest! {
        #[test]
        fn round_trip(pt in proptest::collection::vec(any::<u8>(), 0..70_000)) {
            let padded = pad(&pt);
            prop_assert_eq!(padded.len(), padded_len(pt.len()));
            prop_assert_eq!(unpad(&padded).unwrap(), &pt[..]);
        }

        #[test]
        fn sizes_are_monotonic(a in 0usize..2_000_000, b in 0usize..2_000_000) {
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            prop_assert!(padded_len(lo) <= padded_len(hi));
        }

        #[test]
        fn the_padded_size_is_the_smallest_allowed_bucket(len in 0usize..2_000_000) {
            let size = padded_len(len);
            prop_assert!(is_padded_len(size));
            prop_assert!(size > len);
            // No smaller allowed size holds len + 1 bytes.
            let smaller = (len + 1..size).find(|&s| is_padded_len(s));
            prop_assert_eq!(smaller, None);
        }

        #[test]
        fn lengths_in_one_bucket_are_indistinguishable(len in 0usize..2_000_000, pick in any::<u64>()) {
            // A bucket is every length from the previous allowed size up to
            // one below its own size: all of them pad alike, so the padded
            // size reveals only the bucket.
            let size = padded_len(len);
            let previous = if size == MIN_PADDED_LEN {
                0
            } else if size <= BLOCK_LEN {
                size / 2
            } else {
                size - BLOCK_LEN
            };
            let other = previous + (pick % (size - previous) as u64) as usize;
            prop_assert_eq!(padded_len(other), size);
            prop_assert_eq!(padded_len(previous), size);
            prop_assert_eq!(padded_len(size - 1), size);
            prop_assert!(padded_len(size) > size);
            if previous > 0 {
                prop_assert_eq!(padded_len(previous - 1), previous);
            }
        }
    }
}
