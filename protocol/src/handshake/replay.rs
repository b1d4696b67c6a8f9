//! Bob's record of accepted first messages: a repeated `(EK_A, SPK id)` is a
//! replay. The caller persists the cache with the rest of its state.

use std::collections::BTreeSet;

use zeroize::Zeroizing;

use crate::keys::X25519PublicKey;
use crate::stored::{Reader, StoredStateError, Writer};

/// Identifies one first message: the signed prekey id it used and Alice's
/// ephemeral key `EK_A`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReplayTag {
    /// The id of the signed prekey the message used.
    pub signed_prekey_id: u32,
    /// `EK_A`.
    pub ephemeral: X25519PublicKey,
}

/// Why a tag could not be recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayCacheError {
    /// The tag is already recorded: this first message was accepted before.
    #[error("first message already accepted")]
    AlreadyRecorded,
    /// The cache holds [`ReplayCache::MAX_ENTRIES`] tags; rotate the signed
    /// prekey and [`ReplayCache::forget_signed_prekey`] the old one.
    #[error("replay cache is full")]
    Full,
}

/// The set of accepted `(SPK id, EK_A)` pairs.
///
/// [`respond`](super::respond) only reads it. The state change is the
/// caller's explicit [`ReplayCache::record`] once the session is established
/// (its first message decrypted), in the same atomic write that stores the
/// session and deletes the consumed one-time prekeys. Entries of a signed
/// prekey can be dropped once that prekey is deleted, since no first message
/// can use it any more.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayCache {
    tags: BTreeSet<ReplayTag>,
}

impl ReplayCache {
    /// Most tags held at once (36 bytes each when stored).
    pub const MAX_ENTRIES: usize = 100_000;

    const ENTRY_LEN: usize = 4 + 32;

    /// Largest valid stored layout.
    pub const MAX_STORED_LEN: usize = 1 + 4 + Self::MAX_ENTRIES * Self::ENTRY_LEN;

    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `tag` was recorded.
    pub fn contains(&self, tag: &ReplayTag) -> bool {
        self.tags.contains(tag)
    }

    /// Records an accepted first message.
    pub fn record(&mut self, tag: ReplayTag) -> Result<(), ReplayCacheError> {
        if self.tags.contains(&tag) {
            return Err(ReplayCacheError::AlreadyRecorded);
        }
        if self.tags.len() >= Self::MAX_ENTRIES {
            return Err(ReplayCacheError::Full);
        }
        self.tags.insert(tag);
        Ok(())
    }

    /// Drops every tag of a deleted signed prekey.
    pub fn forget_signed_prekey(&mut self, signed_prekey_id: u32) {
        self.tags
            .retain(|tag| tag.signed_prekey_id != signed_prekey_id);
    }

    /// Number of recorded tags.
    pub fn len(&self) -> usize {
        self.tags.len()
    }

    /// Whether no tag is recorded.
    pub fn is_empty(&self) -> bool {
        self.tags.is_empty()
    }

    /// Stored layout: `version ‖ count (u32) ‖ (SPK id (u32) ‖ EK_A (32))*`,
    /// sorted.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::new(5 + self.tags.len() * Self::ENTRY_LEN);
        // len() ≤ MAX_ENTRIES, which fits a u32.
        w.u32(u32::try_from(self.tags.len()).unwrap_or(u32::MAX));
        for tag in &self.tags {
            w.u32(tag.signed_prekey_id).bytes(tag.ephemeral.as_bytes());
        }
        w.finish()
    }

    /// Reads [`ReplayCache::to_bytes`]; never panics.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, StoredStateError> {
        let mut r = Reader::new(bytes, Self::MAX_STORED_LEN)?;
        let count =
            usize::try_from(r.u32()?).map_err(|_| StoredStateError::InvalidField("count"))?;
        if count > Self::MAX_ENTRIES {
            return Err(StoredStateError::InvalidField("count"));
        }
        let mut tags = BTreeSet::new();
        for _ in 0..count {
            let signed_prekey_id = r.u32()?;
            let ephemeral = X25519PublicKey::from_bytes(r.array()?);
            if !tags.insert(ReplayTag {
                signed_prekey_id,
                ephemeral,
            }) {
                return Err(StoredStateError::InvalidField("duplicate entry"));
            }
        }
        r.finish()?;
        Ok(Self { tags })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(id: u32, byte: u8) -> ReplayTag {
        ReplayTag {
            signed_prekey_id: id,
            ephemeral: X25519PublicKey::from_bytes([byte; 32]),
        }
    }

    #[test]
    fn record_rejects_a_repeat_and_forget_drops_by_prekey() {
        let mut cache = ReplayCache::new();
        cache.record(tag(1, 1)).unwrap();
        cache.record(tag(2, 1)).unwrap();
        assert_eq!(
            cache.record(tag(1, 1)),
            Err(ReplayCacheError::AlreadyRecorded)
        );
        cache.forget_signed_prekey(1);
        assert!(!cache.contains(&tag(1, 1)) && cache.contains(&tag(2, 1)));
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn stored_cache_round_trips_and_rejects_bad_input() {
        let mut cache = ReplayCache::new();
        cache.record(tag(1, 1)).unwrap();
        cache.record(tag(7, 9)).unwrap();
        let bytes = cache.to_bytes();
        assert_eq!(ReplayCache::from_bytes(&bytes).unwrap(), cache);
        assert_eq!(
            ReplayCache::from_bytes(&bytes[..bytes.len() - 1]),
            Err(StoredStateError::Truncated)
        );
        let mut dup = bytes.to_vec();
        dup.truncate(5 + 36);
        dup.extend_from_slice(&bytes[5..5 + 36]);
        assert_eq!(
            ReplayCache::from_bytes(&dup),
            Err(StoredStateError::InvalidField("duplicate entry"))
        );
        let huge = [1, 0xFF, 0xFF, 0xFF, 0xFF];
        assert_eq!(
            ReplayCache::from_bytes(&huge),
            Err(StoredStateError::InvalidField("count"))
        );
    }
}
