//! The local store: fjall, with every value encrypted (DESIGN.md §7).
//!
//! Layout: one fjall database in `<home>/store`, with one keyspace per kind
//! of record (`Space`) and a `meta` keyspace holding, in the clear, the
//! format version, the salt and the key-derivation parameters (see [`key`]),
//! plus an encrypted check value.
//!
//! **Values** are sealed with XChaCha20-Poly1305 (ChaCha20-Poly1305 with a
//! 24-byte nonce, so random nonces never repeat in practice, however often
//! the ratchet state is rewritten):
//!
//! ```text
//! value = 0x01 ‖ nonce (24) ‖ ciphertext ‖ tag
//! aad   = "Hearth_v1_Store" ‖ len(keyspace) (u8) ‖ keyspace ‖ key
//! ```
//!
//! The associated data binds each value to its keyspace and key, so values
//! cannot be swapped or moved. **Keys** that would reveal who one talks to
//! (member ids, message ids, invite secrets) are blinded with a keyed hash
//! (`Store::blind`).
//!
//! **Wrong key.** Opening decrypts the check value first: a wrong key or
//! passphrase fails with [`StoreError::WrongKey`] before any record is read
//! or written.
//!
//! **Atomicity.** Every logical operation is one write set, committed as
//! one fjall write batch persisted with `SyncData` (an fdatasync of the
//! journal) before the commit returns: after a crash it is entirely
//! there or entirely absent.

pub mod key;
#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use hearth_protocol::kdf::hmac_sha256;
use rand::RngExt as _;
use zeroize::Zeroizing;

pub use key::{KdfParams, StorageKey, StoreSecret};
use key::{SALT_LEN, StoreKeys};

/// Why the store could not be used. No variant carries keys or content.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// There is no store at this path (the device was never set up here).
    #[error("no store found at this location")]
    NotFound,
    /// A store already exists at this path.
    #[error("a store already exists at this location")]
    AlreadyExists,
    /// The storage key or passphrase does not open this store. Nothing was
    /// read or changed.
    #[error("wrong storage key or passphrase")]
    WrongKey,
    /// A stored value failed to authenticate or to decode: the store was
    /// tampered with or damaged. Names the kind of record only.
    #[error("stored {0} is corrupt or was tampered with")]
    Corrupt(&'static str),
    /// Another process (or another client in this process) has the store
    /// open.
    #[error("the store is in use by another process")]
    Locked,
    /// The storage engine failed (disk full, I/O error...).
    #[error("storage engine error: {0}")]
    Engine(String),
    /// Creating the store's folder failed.
    #[error("cannot create the store folder")]
    Io(#[from] std::io::Error),
}

/// The keyspaces of encrypted records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Space {
    /// The device: identity, mailbox, counters, replay cache.
    Device,
    /// Private halves of prekeys: kind (u8) ‖ id (u32).
    Prekeys,
    /// Contacts by blinded member id.
    Contacts,
    /// Ratchet sessions by blinded member id.
    Sessions,
    /// Invites by blinded one-time secret.
    Invites,
    /// Messages: blinded member id ‖ local sequence (u64).
    Messages,
    /// Message index and dedup marks: blinded (direction, member, message id).
    MessageIds,
    /// Outgoing envelopes: outbox sequence (u64).
    Outbox,
    /// Circles by blinded circle id.
    Circles,
    /// Other members' sender keys: blinded (circle id, member id).
    SenderKeys,
    /// Envelopes that arrived before what they need (a roster version, a
    /// sender key): held sequence (u64).
    Held,
    /// Relay chores (send tokens to add or revoke, sessions to open): task
    /// sequence (u64).
    Tasks,
}

impl Space {
    const ALL: [Space; 12] = [
        Space::Device,
        Space::Prekeys,
        Space::Contacts,
        Space::Sessions,
        Space::Invites,
        Space::Messages,
        Space::MessageIds,
        Space::Outbox,
        Space::Circles,
        Space::SenderKeys,
        Space::Held,
        Space::Tasks,
    ];

    /// The fjall keyspace name (also bound into each value's AAD).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Space::Device => "device",
            Space::Prekeys => "prekeys",
            Space::Contacts => "contacts",
            Space::Sessions => "sessions",
            Space::Invites => "invites",
            Space::Messages => "messages",
            Space::MessageIds => "message_ids",
            Space::Outbox => "outbox",
            Space::Circles => "circles",
            Space::SenderKeys => "sender_keys",
            Space::Held => "held",
            Space::Tasks => "tasks",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

const META: &str = "meta";
const META_FORMAT: &[u8] = b"format";
const META_SALT: &[u8] = b"salt";
const META_KDF: &[u8] = b"kdf";
const META_CHECK: &[u8] = b"check";
const FORMAT_V1: u8 = 1;
const CHECK_PLAINTEXT: &[u8] = b"Hearth_v1_StoreCheck";
const VALUE_VERSION: u8 = 1;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const AAD_LABEL: &[u8] = b"Hearth_v1_Store";

/// A stored key and its decrypted value.
pub(crate) type Entry = (Vec<u8>, Zeroizing<Vec<u8>>);

/// Length of a blinded key (`Store::blind`).
pub(crate) const BLIND_LEN: usize = 16;

/// An encrypted fjall store. Cheap to clone (handles are shared).
#[derive(Clone)]
pub(crate) struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    spaces: Vec<Keyspace>,
    keys: StoreKeys,
    path: PathBuf,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Creates a new store in the folder `path` (which must not hold one).
    pub(crate) fn create(
        path: &Path,
        secret: &StoreSecret,
        params: KdfParams,
    ) -> Result<Self, StoreError> {
        std::fs::create_dir_all(path)?;
        let db = open_database(path)?;
        let meta = db
            .keyspace(META, KeyspaceCreateOptions::default)
            .map_err(engine)?;
        if meta.get(META_CHECK).map_err(engine)?.is_some() {
            return Err(StoreError::AlreadyExists);
        }
        let salt: [u8; SALT_LEN] = rand::rng().random();
        let keys = StoreKeys::derive(secret, &salt, params)?;
        let check = seal(&keys, META, META_CHECK, CHECK_PLAINTEXT);
        let mut batch = db.batch().durability(Some(PersistMode::SyncData));
        batch.insert(&meta, META_FORMAT, [FORMAT_V1]);
        batch.insert(&meta, META_SALT, salt);
        batch.insert(&meta, META_KDF, params.to_bytes());
        batch.insert(&meta, META_CHECK, check);
        batch.commit().map_err(engine)?;
        Self::assemble(db, keys, path)
    }

    /// Opens the store in `path` with `secret`; a wrong secret is
    /// [`StoreError::WrongKey`] and changes nothing.
    pub(crate) fn open(path: &Path, secret: &StoreSecret) -> Result<Self, StoreError> {
        if !path.exists() {
            return Err(StoreError::NotFound);
        }
        let db = open_database(path)?;
        if !db.keyspace_exists(META) {
            return Err(StoreError::NotFound);
        }
        let meta = db
            .keyspace(META, KeyspaceCreateOptions::default)
            .map_err(engine)?;
        let read = |key: &[u8]| -> Result<Option<Vec<u8>>, StoreError> {
            Ok(meta.get(key).map_err(engine)?.map(|v| v.to_vec()))
        };
        let (Some(format), Some(salt), Some(kdf), Some(check)) = (
            read(META_FORMAT)?,
            read(META_SALT)?,
            read(META_KDF)?,
            read(META_CHECK)?,
        ) else {
            return Err(StoreError::NotFound);
        };
        if format != [FORMAT_V1] {
            return Err(StoreError::Corrupt("store format"));
        }
        let salt: [u8; SALT_LEN] = salt
            .try_into()
            .map_err(|_| StoreError::Corrupt("store salt"))?;
        let params = KdfParams::from_bytes(&kdf).ok_or(StoreError::Corrupt("store parameters"))?;
        let keys = StoreKeys::derive(secret, &salt, params)?;
        match open(&keys, META, META_CHECK, &check) {
            Some(plain) if plain.as_slice() == CHECK_PLAINTEXT => Self::assemble(db, keys, path),
            _ => Err(StoreError::WrongKey),
        }
    }

    fn assemble(db: Database, keys: StoreKeys, path: &Path) -> Result<Self, StoreError> {
        let spaces = Space::ALL
            .iter()
            .map(|space| {
                db.keyspace(space.name(), KeyspaceCreateOptions::default)
                    .map_err(engine)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                spaces,
                keys,
                path: path.to_path_buf(),
            }),
        })
    }

    fn keyspace(&self, space: Space) -> &Keyspace {
        &self.inner.spaces[space.index()]
    }

    /// Reads and decrypts one value.
    pub(crate) fn get(
        &self,
        space: Space,
        key: &[u8],
    ) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        let Some(sealed) = self.keyspace(space).get(key).map_err(engine)? else {
            return Ok(None);
        };
        self.decrypt(space, key, &sealed).map(Some)
    }

    /// Reads and decrypts every value whose key starts with `prefix`, in key
    /// order.
    pub(crate) fn scan(&self, space: Space, prefix: &[u8]) -> Result<Vec<Entry>, StoreError> {
        let mut out = Vec::new();
        for guard in self.keyspace(space).prefix(prefix) {
            let (key, sealed) = guard.into_inner().map_err(engine)?;
            let value = self.decrypt(space, &key, &sealed)?;
            out.push((key.to_vec(), value));
        }
        Ok(out)
    }

    /// Every key that starts with `prefix`, in order, without reading or
    /// decrypting the values (keys are not secret: they are blinded where
    /// they would say something).
    pub(crate) fn keys(&self, space: Space, prefix: &[u8]) -> Result<Vec<Vec<u8>>, StoreError> {
        self.keyspace(space)
            .prefix(prefix)
            .map(|guard| guard.key().map(|key| key.to_vec()).map_err(engine))
            .collect()
    }

    /// Starts an atomic set of writes.
    pub(crate) fn writes(&self) -> WriteSet {
        WriteSet {
            store: self.clone(),
            ops: Vec::new(),
        }
    }

    /// Applies `writes` atomically and durably (fdatasync) before returning.
    pub(crate) fn commit(&self, writes: WriteSet) -> Result<(), StoreError> {
        if writes.ops.is_empty() {
            return Ok(());
        }
        let mut batch = self
            .inner
            .db
            .batch()
            .durability(Some(PersistMode::SyncData));
        for (space, key, value) in writes.ops {
            let keyspace = self.keyspace(space);
            match value {
                Some(sealed) => batch.insert(keyspace, key, sealed),
                None => batch.remove(keyspace, key),
            }
        }
        batch.commit().map_err(engine)
    }

    /// A keyed hash of `parts` under `label`, used as a lookup key so the
    /// store's keys do not reveal member ids, message ids or secrets:
    /// `HMAC-SHA-256(index key, len(label) ‖ label ‖ parts…)[0..16]`.
    pub(crate) fn blind(&self, label: &str, parts: &[&[u8]]) -> [u8; BLIND_LEN] {
        let mut data = Vec::with_capacity(64);
        data.push(u8::try_from(label.len()).unwrap_or(u8::MAX));
        data.extend_from_slice(label.as_bytes());
        for part in parts {
            data.extend_from_slice(part);
        }
        let mac = hmac_sha256(self.inner.keys.index.as_ref(), &data);
        let mut out = [0u8; BLIND_LEN];
        out.copy_from_slice(&mac[..BLIND_LEN]);
        out
    }

    fn decrypt(
        &self,
        space: Space,
        key: &[u8],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        open(&self.inner.keys, space.name(), key, sealed).ok_or(StoreError::Corrupt(space.name()))
    }

    fn encrypt(&self, space: Space, key: &[u8], value: &[u8]) -> Vec<u8> {
        seal(&self.inner.keys, space.name(), key, value)
    }

    /// The raw (encrypted) keyspace, for tamper tests.
    #[cfg(test)]
    pub(crate) fn raw(&self, space: Space) -> &Keyspace {
        self.keyspace(space)
    }
}

/// Writes that commit together ([`Store::commit`]). Values are encrypted as
/// they are added; nothing reaches the disk until the commit.
pub(crate) struct WriteSet {
    store: Store,
    ops: Vec<(Space, Vec<u8>, Option<Vec<u8>>)>,
}

impl WriteSet {
    /// Sets `key` to `value`.
    pub(crate) fn put(&mut self, space: Space, key: &[u8], value: &[u8]) -> &mut Self {
        let sealed = self.store.encrypt(space, key, value);
        self.ops.push((space, key.to_vec(), Some(sealed)));
        self
    }

    /// Removes `key`.
    pub(crate) fn delete(&mut self, space: Space, key: &[u8]) -> &mut Self {
        self.ops.push((space, key.to_vec(), None));
        self
    }

    /// Whether nothing was added.
    pub(crate) fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Reads `key` as it will be after the commit: the last staged write
    /// if there is one, else the store.
    pub(crate) fn read(
        &self,
        space: Space,
        key: &[u8],
    ) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        let staged = self
            .ops
            .iter()
            .rev()
            .find(|(s, k, _)| *s == space && k.as_slice() == key);
        match staged {
            Some((_, _, Some(sealed))) => self.store.decrypt(space, key, sealed).map(Some),
            Some((_, _, None)) => Ok(None),
            None => self.store.get(space, key),
        }
    }
}

impl fmt::Debug for WriteSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteSet")
            .field("ops", &self.ops.len())
            .finish()
    }
}

/// Opens the fjall database, waiting briefly if a previous handle in this
/// process is still releasing its lock.
fn open_database(path: &Path) -> Result<Database, StoreError> {
    let mut attempts = 0;
    loop {
        match Database::builder(path).manual_journal_persist(true).open() {
            Ok(db) => return Ok(db),
            Err(fjall::Error::Locked) if attempts < 20 => {
                attempts += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(fjall::Error::Locked) => return Err(StoreError::Locked),
            Err(e) => return Err(engine(e)),
        }
    }
}

fn engine(error: fjall::Error) -> StoreError {
    StoreError::Engine(error.to_string())
}

fn aad(keyspace: &str, key: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(AAD_LABEL.len() + 1 + keyspace.len() + key.len());
    aad.extend_from_slice(AAD_LABEL);
    aad.push(u8::try_from(keyspace.len()).unwrap_or(u8::MAX));
    aad.extend_from_slice(keyspace.as_bytes());
    aad.extend_from_slice(key);
    aad
}

fn seal(keys: &StoreKeys, keyspace: &str, key: &[u8], value: &[u8]) -> Vec<u8> {
    let nonce: [u8; NONCE_LEN] = rand::rng().random();
    let cipher = XChaCha20Poly1305::new((&*keys.values).into());
    let payload = Payload {
        msg: value,
        aad: &aad(keyspace, key),
    };
    // Encryption only fails for inputs beyond 256 GiB.
    let ciphertext = cipher.encrypt((&nonce).into(), payload).unwrap_or_default();
    let mut out = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
    out.push(VALUE_VERSION);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ciphertext);
    out
}

fn open(keys: &StoreKeys, keyspace: &str, key: &[u8], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let (&version, rest) = sealed.split_first()?;
    if version != VALUE_VERSION || rest.len() < NONCE_LEN + TAG_LEN {
        return None;
    }
    let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
    let nonce: &[u8; NONCE_LEN] = nonce.try_into().ok()?;
    let cipher = XChaCha20Poly1305::new((&*keys.values).into());
    let payload = Payload {
        msg: ciphertext,
        aad: &aad(keyspace, key),
    };
    cipher
        .decrypt(nonce.into(), payload)
        .ok()
        .map(Zeroizing::new)
}
