//! The storage key and what is derived from it.
//!
//! The app supplies either 32 random bytes ([`StorageKey`], e.g. kept in the
//! platform keychain) or a passphrase. A passphrase is stretched with
//! **Argon2id** (RFC 9106, version 0x13) using the parameters of RFC 9106's
//! second recommended option, [`KdfParams::DEFAULT`]: 64 MiB of memory,
//! 3 passes, 4 lanes, a 16-byte random salt, 32-byte output. The salt and
//! the parameters are stored in the clear in the store's `meta` keyspace, so
//! stronger parameters can be chosen later without breaking old stores.
//!
//! From the 32-byte master key (the app's key, or Argon2id's output) HKDF
//! (SHA-256, salt = the store's salt) derives two independent keys:
//! `Hearth_v1_StoreValues` encrypts values, `Hearth_v1_StoreIndex` blinds
//! lookup keys (a keyed hash, so store keys do not reveal who one talks to).

use std::fmt;

use hearth_protocol::kdf::hkdf_sha256;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::StoreError;

/// HKDF info of the value encryption key.
const VALUES_INFO: &[u8] = b"Hearth_v1_StoreValues";
/// HKDF info of the key-blinding key.
const INDEX_INFO: &[u8] = b"Hearth_v1_StoreIndex";

/// Length of the store's salt.
pub(crate) const SALT_LEN: usize = 16;

/// A 32-byte key that encrypts the local store. Zeroized on drop, never
/// printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct StorageKey(Box<[u8; 32]>);

impl StorageKey {
    /// Wraps 32 bytes the app generated and keeps (e.g. in a keychain).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Box::new(bytes))
    }

    /// Draws a fresh random key.
    pub fn generate<R: rand::CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut key = Box::new([0u8; 32]);
        rng.fill_bytes(key.as_mut_slice());
        Self(key)
    }

    /// Declassifies the key bytes, e.g. to write a key file.
    pub fn expose_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for StorageKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StorageKey([redacted])")
    }
}

/// What unlocks a store: a key, or a passphrase stretched with Argon2id.
#[derive(Clone)]
pub enum StoreSecret {
    /// A 32-byte key supplied by the app.
    Key(StorageKey),
    /// A passphrase; the key is derived with Argon2id ([`KdfParams`]).
    Passphrase(Zeroizing<String>),
}

impl StoreSecret {
    /// A passphrase secret.
    pub fn passphrase(passphrase: &str) -> Self {
        Self::Passphrase(Zeroizing::new(passphrase.to_owned()))
    }
}

impl From<StorageKey> for StoreSecret {
    fn from(key: StorageKey) -> Self {
        Self::Key(key)
    }
}

impl fmt::Debug for StoreSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Key(_) => f.write_str("StoreSecret::Key([redacted])"),
            Self::Passphrase(_) => f.write_str("StoreSecret::Passphrase([redacted])"),
        }
    }
}

/// Argon2id cost parameters, stored beside the salt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes over the memory.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl KdfParams {
    /// RFC 9106 §4, second recommended option: 64 MiB, 3 passes, 4 lanes.
    pub const DEFAULT: Self = Self {
        memory_kib: 64 * 1024,
        iterations: 3,
        parallelism: 4,
    };

    /// Stored layout: three big-endian u32.
    pub(crate) fn to_bytes(self) -> [u8; 12] {
        let mut out = [0u8; 12];
        out[..4].copy_from_slice(&self.memory_kib.to_be_bytes());
        out[4..8].copy_from_slice(&self.iterations.to_be_bytes());
        out[8..].copy_from_slice(&self.parallelism.to_be_bytes());
        out
    }

    /// Reads [`KdfParams::to_bytes`].
    pub(crate) fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let bytes: &[u8; 12] = bytes.try_into().ok()?;
        let word =
            |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        Some(Self {
            memory_kib: word(0),
            iterations: word(4),
            parallelism: word(8),
        })
    }
}

impl Default for KdfParams {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The keys a store works with, derived from its secret.
pub(crate) struct StoreKeys {
    /// Encrypts values (XChaCha20-Poly1305).
    pub(crate) values: Zeroizing<[u8; 32]>,
    /// Blinds lookup keys (HMAC-SHA-256).
    pub(crate) index: Zeroizing<[u8; 32]>,
}

impl StoreKeys {
    /// Derives the store's keys from `secret` with the store's salt and
    /// parameters.
    pub(crate) fn derive(
        secret: &StoreSecret,
        salt: &[u8; SALT_LEN],
        params: KdfParams,
    ) -> Result<Self, StoreError> {
        let master = match secret {
            StoreSecret::Key(key) => Zeroizing::new(*key.expose_bytes()),
            StoreSecret::Passphrase(passphrase) => stretch(passphrase.as_bytes(), salt, params)?,
        };
        Ok(Self {
            values: hkdf_sha256::<32>(salt, master.as_ref(), VALUES_INFO),
            index: hkdf_sha256::<32>(salt, master.as_ref(), INDEX_INFO),
        })
    }
}

impl fmt::Debug for StoreKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StoreKeys([redacted])")
    }
}

/// Argon2id over the passphrase.
fn stretch(
    passphrase: &[u8],
    salt: &[u8; SALT_LEN],
    params: KdfParams,
) -> Result<Zeroizing<[u8; 32]>, StoreError> {
    use argon2::{Algorithm, Argon2, Params, Version};
    let params = Params::new(
        params.memory_kib,
        params.iterations,
        params.parallelism,
        Some(32),
    )
    .map_err(|_| StoreError::Corrupt("key derivation parameters"))?;
    let mut out = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase, salt, out.as_mut())
        .map_err(|_| StoreError::Corrupt("key derivation parameters"))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHEAP: KdfParams = KdfParams {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };

    #[test]
    fn params_round_trip() {
        let bytes = KdfParams::DEFAULT.to_bytes();
        assert_eq!(KdfParams::from_bytes(&bytes), Some(KdfParams::DEFAULT));
        assert_eq!(KdfParams::from_bytes(&bytes[..11]), None);
    }

    #[test]
    fn passphrase_and_salt_both_change_the_keys() {
        let salt = [1u8; SALT_LEN];
        let a = StoreKeys::derive(&StoreSecret::passphrase("one"), &salt, CHEAP).unwrap();
        let b = StoreKeys::derive(&StoreSecret::passphrase("two"), &salt, CHEAP).unwrap();
        let c = StoreKeys::derive(&StoreSecret::passphrase("one"), &[2; SALT_LEN], CHEAP).unwrap();
        let again = StoreKeys::derive(&StoreSecret::passphrase("one"), &salt, CHEAP).unwrap();
        assert_ne!(*a.values, *b.values);
        assert_ne!(*a.values, *c.values);
        assert_eq!(*a.values, *again.values);
        assert_ne!(*a.values, *a.index, "independent sub-keys");
    }

    #[test]
    fn argon2id_is_deterministic_in_its_inputs() {
        let out = stretch(b"password", &[0x02; SALT_LEN], CHEAP).unwrap();
        assert_eq!(out, stretch(b"password", &[0x02; SALT_LEN], CHEAP).unwrap());
        assert_ne!(*out, [0u8; 32]);
    }

    #[test]
    fn debug_never_shows_secrets() {
        let key = StorageKey::from_bytes([0x41; 32]);
        assert_eq!(format!("{key:?}"), "StorageKey([redacted])");
        let secret = StoreSecret::passphrase("hunter2");
        assert!(!format!("{secret:?}").contains("hunter2"));
    }
}
