//! Message keys of skipped messages, kept so that late messages still
//! decrypt: at most [`MAX_SKIPPED_KEYS`], the oldest dropped first.

use std::collections::VecDeque;

use super::chain::MessageKey;
use crate::keys::X25519PublicKey;

/// Most skipped message keys a session keeps.
pub const MAX_SKIPPED_KEYS: usize = 2000;

/// The key of message `n` of the chain of the peer's ratchet key `ratchet_key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SkippedKey {
    pub(crate) ratchet_key: X25519PublicKey,
    pub(crate) n: u32,
    pub(crate) key: MessageKey,
}

/// Skipped keys in the order they were stored, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SkippedKeys {
    entries: VecDeque<SkippedKey>,
}

impl SkippedKeys {
    /// Position of the key of message `n` under `ratchet_key`, if stored.
    pub(crate) fn find(&self, ratchet_key: &X25519PublicKey, n: u32) -> Option<usize> {
        self.entries
            .iter()
            .position(|entry| entry.n == n && entry.ratchet_key == *ratchet_key)
    }

    /// The key at `index` (from [`SkippedKeys::find`]).
    pub(crate) fn get(&self, index: usize) -> Option<&MessageKey> {
        self.entries.get(index).map(|entry| &entry.key)
    }

    /// Removes (and wipes) the key at `index`.
    pub(crate) fn remove(&mut self, index: usize) {
        self.entries.remove(index);
    }

    /// Appends newly skipped keys, then drops the oldest beyond the limit.
    pub(crate) fn extend(&mut self, keys: impl IntoIterator<Item = SkippedKey>) {
        self.entries.extend(keys);
        let excess = self.entries.len().saturating_sub(MAX_SKIPPED_KEYS);
        self.entries.drain(..excess);
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &SkippedKey> {
        self.entries.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8, n: u32) -> SkippedKey {
        SkippedKey {
            ratchet_key: X25519PublicKey::from_bytes([byte; 32]),
            n,
            key: MessageKey::new(&[byte; 32]),
        }
    }

    #[test]
    fn find_matches_key_and_number() {
        let mut keys = SkippedKeys::default();
        keys.extend([key(1, 0), key(2, 0), key(1, 1)]);
        assert_eq!(keys.find(&X25519PublicKey::from_bytes([1; 32]), 1), Some(2));
        assert_eq!(keys.find(&X25519PublicKey::from_bytes([2; 32]), 1), None);
        keys.remove(0);
        assert_eq!(keys.find(&X25519PublicKey::from_bytes([1; 32]), 0), None);
        assert_eq!(keys.len(), 2);
    }

    #[test]
    fn oldest_are_dropped_beyond_the_limit() {
        let mut keys = SkippedKeys::default();
        keys.extend((0..1500).map(|n| key(1, n)));
        keys.extend((0..600).map(|n| key(2, n)));
        assert_eq!(keys.len(), MAX_SKIPPED_KEYS);
        assert_eq!(keys.find(&X25519PublicKey::from_bytes([1; 32]), 99), None);
        assert_eq!(
            keys.find(&X25519PublicKey::from_bytes([1; 32]), 100),
            Some(0)
        );
        assert!(
            keys.find(&X25519PublicKey::from_bytes([2; 32]), 599)
                .is_some()
        );
    }
}
