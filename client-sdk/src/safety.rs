//! Safety numbers: a short, comparable fingerprint of two identities that two
//! members compare out of band (read aloud, or side by side) to rule out a
//! relay or network in the middle.
//!
//! Built like Signal's numeric fingerprints. Each side's half is 30 digits:
//!
//! ```text
//! h_0     = SHA-512(0x00 0x00 ‖ Encode(IK_sig) ‖ member id)
//! h_{i+1} = SHA-512(h_i ‖ Encode(IK_sig))            (5,200 iterations)
//! half    = six groups of 5 digits: the big-endian u40 of h[5k..5k+5] mod 100,000
//! ```
//!
//! The safety number is the two halves in ascending order (so both sides see
//! the same 60 digits), shown as 12 groups of 5 digits. The iterations make
//! finding a key whose half collides with a given one about 2^12 times
//! costlier than 100 bits of brute force alone.

use std::fmt;
use std::str::FromStr;

use hearth_protocol::keys::Ed25519PublicKey;
use sha2::{Digest as _, Sha512};

use crate::ids::MemberId;

/// Iterations of the hash per half.
pub const ITERATIONS: usize = 5200;

/// Digits in a safety number.
pub const DIGITS: usize = 60;

/// The safety number of a conversation between two identities.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SafetyNumber([u8; DIGITS]);

impl SafetyNumber {
    /// The safety number of `a` and `b` (the same for either order).
    pub fn of(a: &Ed25519PublicKey, b: &Ed25519PublicKey) -> Self {
        let (mut first, mut second) = (half(a), half(b));
        if second < first {
            std::mem::swap(&mut first, &mut second);
        }
        let mut digits = [0u8; DIGITS];
        digits[..30].copy_from_slice(&first);
        digits[30..].copy_from_slice(&second);
        Self(digits)
    }

    /// The 60 digits without separators.
    pub fn digits(&self) -> String {
        self.0.iter().map(|d| char::from(b'0' + d)).collect()
    }
}

/// 30 digits for one identity.
fn half(key: &Ed25519PublicKey) -> [u8; 30] {
    let encoded = key.encode();
    let member = MemberId::of(key);
    let mut hash = Sha512::new()
        .chain_update([0u8, 0u8])
        .chain_update(encoded)
        .chain_update(member.as_bytes())
        .finalize();
    for _ in 0..ITERATIONS {
        hash = Sha512::new()
            .chain_update(hash)
            .chain_update(encoded)
            .finalize();
    }
    let mut digits = [0u8; 30];
    for (group, chunk) in digits.chunks_exact_mut(5).zip(hash.chunks_exact(5)) {
        let mut value = chunk.iter().fold(0u64, |v, &b| (v << 8) | u64::from(b)) % 100_000;
        for digit in group.iter_mut().rev() {
            *digit = (value % 10) as u8;
            value /= 10;
        }
    }
    digits
}

impl fmt::Display for SafetyNumber {
    /// Twelve groups of five digits separated by spaces.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, group) in self.0.chunks_exact(5).enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            for d in group {
                write!(f, "{d}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for SafetyNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SafetyNumber({self})")
    }
}

/// A string that is not 60 digits (spaces, dashes and line breaks between
/// them are ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a safety number is 60 digits")]
pub struct InvalidSafetyNumber;

impl FromStr for SafetyNumber {
    type Err = InvalidSafetyNumber;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut digits = [0u8; DIGITS];
        let mut count = 0;
        for c in text.chars() {
            if c.is_whitespace() || c == '-' {
                continue;
            }
            let digit = c.to_digit(10).ok_or(InvalidSafetyNumber)?;
            *digits.get_mut(count).ok_or(InvalidSafetyNumber)? = digit as u8;
            count += 1;
        }
        if count == DIGITS {
            Ok(Self(digits))
        } else {
            Err(InvalidSafetyNumber)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> Ed25519PublicKey {
        Ed25519PublicKey::from_bytes([byte; 32])
    }

    #[test]
    fn both_sides_compute_the_same_number() {
        assert_eq!(
            SafetyNumber::of(&key(1), &key(2)),
            SafetyNumber::of(&key(2), &key(1))
        );
    }

    #[test]
    fn another_identity_changes_the_number() {
        let ab = SafetyNumber::of(&key(1), &key(2));
        assert_ne!(ab, SafetyNumber::of(&key(1), &key(3)));
        assert_ne!(ab, SafetyNumber::of(&key(3), &key(2)));
    }

    #[test]
    fn shows_twelve_groups_of_five_and_parses_back() {
        let number = SafetyNumber::of(&key(1), &key(2));
        let shown = number.to_string();
        let groups: Vec<&str> = shown.split(' ').collect();
        assert_eq!(groups.len(), 12);
        assert!(
            groups
                .iter()
                .all(|g| g.len() == 5 && g.bytes().all(|b| b.is_ascii_digit()))
        );
        assert_eq!(shown.parse::<SafetyNumber>(), Ok(number.clone()));
        assert_eq!(number.digits().parse::<SafetyNumber>(), Ok(number));
        assert_eq!("123".parse::<SafetyNumber>(), Err(InvalidSafetyNumber));
        assert_eq!(
            format!("{}x", "1".repeat(59)).parse::<SafetyNumber>(),
            Err(InvalidSafetyNumber)
        );
        assert_eq!(
            "1".repeat(61).parse::<SafetyNumber>(),
            Err(InvalidSafetyNumber)
        );
    }
}
