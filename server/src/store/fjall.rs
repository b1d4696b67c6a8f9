//! The embedded durable store: fjall, an LSM tree with a write-ahead journal.
//!
//! Every record type lives in its own keyspace, so that start-up scans read
//! only what the core keeps in memory from the start and point reads stay
//! short. Keys are fixed-layout big-endian byte strings, so each keyspace
//! iterates in the order the [`Snapshot`] promises, and one mailbox's
//! envelopes are one key range (mailbox, then seq).
//!
//! What reads which keyspace:
//! - start-up ([`MailboxStore::load`]) scans `mailboxes` and
//!   `registration_uses`, the keys of `send_tokens`, `prekeys` and `bundles`,
//!   and seeks the last key of `body_refs`. It never reads `envelopes`,
//!   `bodies` or `send_records`, so it costs the same with a million stored
//!   envelopes as with none;
//! - [`MailboxStore::load_mailbox`] reads one mailbox's range of `envelopes`
//!   (values decoded in place, headers and bodies not copied) and point-reads
//!   the `body_refs` of the shared bodies it points at;
//! - [`MailboxStore::read_send_record`] is one point read of `send_records`;
//!   [`MailboxStore::expired_send_records`] scans it (about hourly);
//! - deliveries and prekey fetches point-read `envelopes`, `bodies`,
//!   `prekeys` and `bundles`.
//!
//! | keyspace            | key                                   | value                                                        |
//! |---------------------|---------------------------------------|--------------------------------------------------------------|
//! | `mailboxes`         | mailbox (32)                          | v ‖ owner key (32) ‖ created_at (u64) ‖ reserved_seq (u64)   |
//! | `send_tokens`       | mailbox (32) ‖ token hash (32)        | v                                                            |
//! | `envelopes`         | mailbox (32) ‖ seq (u64)              | shared body: 1 ‖ body (u64) ‖ stored_at ‖ expires_at (u64) ‖ size (u32) ‖ sealed header; inline body: 2 ‖ stored_at ‖ expires_at (u64) ‖ size (u32) ‖ client message id (16) ‖ header length (u32) ‖ sealed header ‖ body |
//! | `bodies`            | body (u64)                            | v ‖ body bytes                                               |
//! | `body_refs`         | body (u64)                            | v ‖ refs (u32)                                               |
//! | `prekeys`           | mailbox (32) ‖ kind (1) ‖ index (u64) | v ‖ prekey bytes                                             |
//! | `bundles`           | mailbox (32) ‖ slot (1)               | v ‖ bundle bytes                                             |
//! | `send_records`      | client message id (16)                | v ‖ expires_at (u64) ‖ n (u32) ‖ n × result (i32)            |
//! | `registration_uses` | token hash (32)                       | v ‖ uses (u32)                                               |
//!
//! `v` is the format version byte (1). An envelope of a send stored for one
//! recipient holds its body and its send's client message id (format 2): one
//! key per message, nothing else to write or delete. A send stored for two or
//! more keeps one `bodies` entry with a `body_refs` count, and its envelopes
//! point at it (format 1, also how every envelope was stored before format 2).
//! A mailbox record is rewritten once per block of 4,096 sequence numbers
//! (`reserved_seq`: every assigned seq is below it; stores written before
//! blocks held the next seq there, which means the same). Only sends stored
//! for two or more recipients write a `send_records` entry. Integers are
//! big-endian.
//! Decoding never trusts the disk: a value of the wrong length or version is
//! [`StoreError::Corrupt`], never a panic.

use std::fmt;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use fjall::config::CompressionPolicy;
use fjall::{
    CompressionType, Database, Keyspace, KeyspaceCreateOptions, KvSeparationOptions,
    OwnedWriteBatch, PersistMode, Readable as _,
};

use super::{
    Batch, BodyRef, EnvelopeMeta, EnvelopeRecord, MailboxIndex, MailboxRecord, MailboxStore,
    Mutation, SendRecord, Snapshot, StoreError,
};
use crate::ids::{BodyId, ClientMessageId, MailboxId, Millis, PrekeyKind, TokenHash};

/// The value format of every record but inline envelopes; the first byte of
/// every stored value.
const FORMAT_V1: u8 = 1;
/// The value format of an inline envelope (body and client message id inside).
const FORMAT_V2: u8 = 2;

// Keyspace names. `pub(super)` so the conformance suite can corrupt records
// through fjall directly.
pub(super) const MAILBOXES: &str = "mailboxes";
pub(super) const SEND_TOKENS: &str = "send_tokens";
pub(super) const ENVELOPES: &str = "envelopes";
pub(super) const BODIES: &str = "bodies";
pub(super) const BODY_REFS: &str = "body_refs";
pub(super) const PREKEYS: &str = "prekeys";
pub(super) const BUNDLES: &str = "bundles";
pub(super) const SEND_RECORDS: &str = "send_records";
pub(super) const REGISTRATION_USES: &str = "registration_uses";

/// Key byte of one-time X25519 prekeys (orders before PQ, as `PrekeyKind` does).
const KIND_X25519: u8 = 1;
/// Key byte of one-time ML-KEM prekeys.
const KIND_PQ: u8 = 2;
/// Bundle slot of the signed prekey bundle.
const SLOT_SIGNED_BUNDLE: u8 = 1;
/// Bundle slot of the last-resort ML-KEM prekey.
const SLOT_LAST_RESORT: u8 = 2;

// Tuning for a write-heavy, group-committed workload.
//
// Block cache: reads are deliveries of recent envelopes (mostly still in the
// memtables) and backlog redelivery after a reconnect. 64 MiB keeps index and
// filter blocks plus a useful slice of backlog hot without hoarding memory.
const CACHE_BYTES: u64 = 64 * 1024 * 1024;
// Journal cap: fjall flushes the memtables that pin the oldest journal once
// all journals together exceed this. It must be well above the sum of the
// memtables, or flushes would be forced early; smaller than the 512 MiB
// default so that replaying the journal after a crash stays quick.
const MAX_JOURNALING_BYTES: u64 = 256 * 1024 * 1024;
// Memtable sizes bound commit stalls. After a flush, fjall frees the old
// memtable (one allocation per entry) while it holds that keyspace's version
// lock, and every commit writing the keyspace waits for it. With 64 MiB
// memtables for envelopes and bodies and 8 MiB for the rest, those stalls
// reached 100–400 ms and made the send→deliver p99 350–460 ms at 7,500
// envelopes/s on two cores; with 8 MiB and 2 MiB it was about 30 ms (16 MiB
// and 4 MiB: about 70–120 ms), at the same CPU cost. 8 MiB still holds a
// second or more of full-load traffic, so an envelope acknowledged soon after
// delivery usually dies in memory and only a tombstone reaches a disk table.
//
// Memtables of envelopes and bodies.
const BULK_MEMTABLE_BYTES: u64 = 8 * 1024 * 1024;
// Memtables of the small metadata keyspaces (mailboxes, tokens, records).
const SMALL_MEMTABLE_BYTES: u64 = 2 * 1024 * 1024;
// Bodies at least this large go to blob files (key-value separation), so
// compaction rewrites 8-byte pointers rather than up to 64 KiB of ciphertext.
// Small check-ins (padded to 256 B or 512 B) stay inline.
const BODY_SEPARATION_BYTES: u32 = 1024;

/// How long [`MailboxStore::flush`] waits for fjall's flush workers.
const FLUSH_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// The fjall-backed [`MailboxStore`]: the relay's embedded default.
pub struct FjallStore {
    db: Database,
    path: PathBuf,
    mailboxes: Keyspace,
    send_tokens: Keyspace,
    envelopes: Keyspace,
    bodies: Keyspace,
    body_refs: Keyspace,
    prekeys: Keyspace,
    bundles: Keyspace,
    send_records: Keyspace,
    registration_uses: Keyspace,
}

impl fmt::Debug for FjallStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FjallStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl FjallStore {
    /// Opens (or creates) the store in the directory `path`.
    ///
    /// Fails with [`StoreError::Engine`] when the directory cannot be used,
    /// for example because another process holds the store open.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = Database::builder(path)
            .cache_size(CACHE_BYTES)
            // Values are ciphertext: compressing them would burn CPU for nothing.
            .journal_compression(CompressionType::None)
            // Every commit chooses its own durability (SyncData); no implicit flushes.
            .manual_journal_persist(true)
            .max_journaling_size(MAX_JOURNALING_BYTES)
            .open()
            .map_err(engine)?;
        let open = |name: &str, options: fn() -> KeyspaceCreateOptions| {
            db.keyspace(name, options).map_err(engine)
        };
        let mailboxes = open(MAILBOXES, small_options)?;
        let send_tokens = open(SEND_TOKENS, small_options)?;
        let envelopes = open(ENVELOPES, envelope_options)?;
        let bodies = open(BODIES, body_options)?;
        let body_refs = open(BODY_REFS, small_options)?;
        let prekeys = open(PREKEYS, small_options)?;
        let bundles = open(BUNDLES, small_options)?;
        let send_records = open(SEND_RECORDS, small_options)?;
        let registration_uses = open(REGISTRATION_USES, small_options)?;
        Ok(Self {
            db,
            path: path.to_path_buf(),
            mailboxes,
            send_tokens,
            envelopes,
            bodies,
            body_refs,
            prekeys,
            bundles,
            send_records,
            registration_uses,
        })
    }

    /// Number of stored bodies (a full scan of their keys; for tests and stats).
    pub fn body_count(&self) -> Result<usize, StoreError> {
        self.bodies.len().map_err(engine)
    }

    /// Number of stored envelopes (a full scan of their keys; for tests and stats).
    pub fn envelope_count(&self) -> Result<usize, StoreError> {
        self.envelopes.len().map_err(engine)
    }

    /// Seals every keyspace's memtable and waits, up to `wait`, until fjall
    /// has written them to disk tables, so that the next open replays little
    /// journal. Nothing here affects durability: every commit is in the
    /// synced journal already.
    fn flush_memtables(&self, wait: std::time::Duration) -> Result<(), StoreError> {
        for keyspace in self.keyspaces() {
            // Sealed memtables are queued for the flush workers.
            keyspace.rotate_memtable().map_err(engine)?;
        }
        let deadline = std::time::Instant::now() + wait;
        let sealed = || {
            self.keyspaces()
                .iter()
                .any(|k| k.sealed_memtable_count() > 0)
        };
        while sealed() {
            if std::time::Instant::now() >= deadline {
                return Err(StoreError::Engine(
                    "memtable flushes did not finish in time".to_owned(),
                ));
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        Ok(())
    }

    /// Disk tables of all keyspaces, and memtables not yet written to one
    /// (for tests of [`MailboxStore::flush`]).
    #[cfg(test)]
    pub(super) fn table_counts(&self) -> (usize, usize) {
        let keyspaces = self.keyspaces();
        let tables = keyspaces.iter().map(|k| k.table_count()).sum();
        let sealed = keyspaces.iter().map(|k| k.sealed_memtable_count()).sum();
        (tables, sealed)
    }

    /// Every keyspace of the store.
    fn keyspaces(&self) -> [&Keyspace; 9] {
        [
            &self.mailboxes,
            &self.send_tokens,
            &self.envelopes,
            &self.bodies,
            &self.body_refs,
            &self.prekeys,
            &self.bundles,
            &self.send_records,
            &self.registration_uses,
        ]
    }

    /// Adds one mutation to the write batch.
    fn stage(&self, batch: &mut OwnedWriteBatch, mutation: &Mutation) {
        match mutation {
            Mutation::PutMailbox(mailbox, record) => {
                batch.insert(&self.mailboxes, mailbox.0, encode_mailbox(record));
            }
            Mutation::PutSendToken(mailbox, hash) => {
                batch.insert(&self.send_tokens, token_key(mailbox, hash), [FORMAT_V1]);
            }
            Mutation::DeleteSendToken(mailbox, hash) => {
                batch.remove(&self.send_tokens, token_key(mailbox, hash));
            }
            Mutation::PutBody { id, bytes, refs } => {
                batch.insert(&self.bodies, id.0.to_be_bytes(), versioned(bytes));
                batch.insert(&self.body_refs, id.0.to_be_bytes(), encode_u32(*refs));
            }
            Mutation::SetBodyRefs(id, refs) => {
                batch.insert(&self.body_refs, id.0.to_be_bytes(), encode_u32(*refs));
            }
            Mutation::DeleteBody(id) => {
                batch.remove(&self.bodies, id.0.to_be_bytes());
                batch.remove(&self.body_refs, id.0.to_be_bytes());
            }
            Mutation::PutEnvelope {
                mailbox,
                seq,
                record,
            } => {
                let key = envelope_key(mailbox, *seq);
                batch.insert(&self.envelopes, key, encode_envelope(record));
            }
            Mutation::DeleteEnvelope(mailbox, seq) => {
                batch.remove(&self.envelopes, envelope_key(mailbox, *seq));
            }
            Mutation::PutSignedBundle(mailbox, bytes) => {
                let key = bundle_key(mailbox, SLOT_SIGNED_BUNDLE);
                batch.insert(&self.bundles, key, versioned(bytes));
            }
            Mutation::PutLastResort(mailbox, bytes) => {
                let key = bundle_key(mailbox, SLOT_LAST_RESORT);
                batch.insert(&self.bundles, key, versioned(bytes));
            }
            Mutation::PutPrekey(mailbox, kind, index, bytes) => {
                let key = prekey_key(mailbox, *kind, *index);
                batch.insert(&self.prekeys, key, versioned(bytes));
            }
            Mutation::DeletePrekey(mailbox, kind, index) => {
                batch.remove(&self.prekeys, prekey_key(mailbox, *kind, *index));
            }
            Mutation::PutSendRecord(id, record) => {
                batch.insert(&self.send_records, id.0, encode_send_record(record));
            }
            Mutation::DeleteSendRecord(id) => {
                batch.remove(&self.send_records, id.0);
            }
            Mutation::PutRegistrationUses(hash, uses) => {
                batch.insert(&self.registration_uses, hash.0, encode_u32(*uses));
            }
        }
    }

    /// Reads a versioned opaque value (body, bundle, prekey).
    fn read_opaque(
        keyspace: &Keyspace,
        key: &[u8],
        what: &'static str,
    ) -> Result<Option<Bytes>, StoreError> {
        let Some(value) = keyspace.get(key).map_err(engine)? else {
            return Ok(None);
        };
        let reader = Reader::open(&value, what)?;
        Ok(Some(Bytes::copy_from_slice(reader.rest())))
    }
}

impl MailboxStore for FjallStore {
    fn load(&self) -> Result<Snapshot, StoreError> {
        // One snapshot for all keyspaces: a consistent cut even if a commit
        // were to run concurrently.
        let view = self.db.snapshot();
        let (signed_bundles, last_resorts) = load_bundles(&view, &self.bundles)?;
        // The highest body id is the last key: one seek, not a scan.
        let next_body = match view.last_key_value(&self.body_refs) {
            // Saturates: 2^64 bodies are never stored.
            Some(guard) => {
                decode_u64_key(&guard.key().map_err(engine)?, "body refs key")?.saturating_add(1)
            }
            None => 0,
        };
        Ok(Snapshot {
            mailboxes: scan(&view, &self.mailboxes, decode_mailbox_pair)?,
            send_tokens: scan_keys(&view, &self.send_tokens, decode_token_key)?,
            next_body,
            signed_bundles,
            last_resorts,
            prekeys: scan_keys(&view, &self.prekeys, decode_prekey_key)?,
            registration_uses: scan(&view, &self.registration_uses, decode_uses_pair)?,
        })
    }

    fn load_mailbox(&self, mailbox: &MailboxId) -> Result<MailboxIndex, StoreError> {
        // One snapshot: the counts match the envelopes that were read.
        let view = self.db.snapshot();
        let mut envelopes = Vec::new();
        for guard in view.prefix(&self.envelopes, mailbox.0) {
            let (key, value) = guard.into_inner().map_err(engine)?;
            let (found, seq, meta) = decode_envelope_pair(&key, &value)?;
            if found != *mailbox {
                return Err(StoreError::Corrupt("envelope key"));
            }
            envelopes.push((seq, meta));
        }
        let bodies: std::collections::BTreeSet<BodyId> = envelopes
            .iter()
            .filter_map(|(_, meta)| match meta.body {
                BodyRef::Shared(id) => Some(id),
                BodyRef::Inline(_) => None,
            })
            .collect();
        let mut body_refs = Vec::with_capacity(bodies.len());
        for id in bodies {
            if let Some(value) = view
                .get(&self.body_refs, id.0.to_be_bytes())
                .map_err(engine)?
            {
                body_refs.push((id, decode_u32(&value, "body refs")?));
            }
        }
        Ok(MailboxIndex {
            envelopes,
            body_refs,
        })
    }

    fn read_send_record(&self, id: &ClientMessageId) -> Result<Option<SendRecord>, StoreError> {
        match self.send_records.get(id.0).map_err(engine)? {
            Some(value) => decode_send_record(&value).map(Some),
            None => Ok(None),
        }
    }

    fn expired_send_records(
        &self,
        now: Millis,
        limit: usize,
    ) -> Result<Vec<ClientMessageId>, StoreError> {
        let mut expired = Vec::new();
        for guard in self.send_records.iter() {
            if expired.len() >= limit {
                break;
            }
            let (key, value) = guard.into_inner().map_err(engine)?;
            let (id, record) = decode_send_record_pair(&key, &value)?;
            if record.expires_at <= now {
                expired.push(id);
            }
        }
        Ok(expired)
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.flush_memtables(FLUSH_WAIT)
    }

    fn commit(&self, batches: &[Batch]) -> Result<(), StoreError> {
        if batches.iter().all(Batch::is_empty) {
            return Ok(());
        }
        // One fjall write batch for all of them: atomic across keyspaces, and
        // applied in order, so a put followed by a delete of the same key
        // leaves nothing. `durability(SyncData)` makes the commit call
        // `persist(SyncData)` (one fdatasync of the journal) while it still
        // holds the journal lock and before the batch reaches the memtables:
        // nothing is readable before it is durable, and a failed sync poisons
        // the database instead of leaving readable but unsynced state.
        let mut batch = self.db.batch().durability(Some(PersistMode::SyncData));
        for mutation in batches.iter().flat_map(|batch| &batch.mutations) {
            self.stage(&mut batch, mutation);
        }
        batch.commit().map_err(engine)
    }

    fn read_envelope(
        &self,
        mailbox: &MailboxId,
        seq: u64,
    ) -> Result<Option<EnvelopeRecord>, StoreError> {
        let Some(value) = self
            .envelopes
            .get(envelope_key(mailbox, seq))
            .map_err(engine)?
        else {
            return Ok(None);
        };
        let (meta, header, body) = decode_envelope(&value)?;
        Ok(Some(EnvelopeRecord {
            meta,
            sealed_header: Bytes::copy_from_slice(header),
            body: body.map(Bytes::copy_from_slice),
        }))
    }

    fn read_body(&self, id: BodyId) -> Result<Option<Bytes>, StoreError> {
        Self::read_opaque(&self.bodies, &id.0.to_be_bytes(), "body")
    }

    fn read_signed_bundle(&self, mailbox: &MailboxId) -> Result<Option<Bytes>, StoreError> {
        let key = bundle_key(mailbox, SLOT_SIGNED_BUNDLE);
        Self::read_opaque(&self.bundles, &key, "signed bundle")
    }

    fn read_last_resort(&self, mailbox: &MailboxId) -> Result<Option<Bytes>, StoreError> {
        let key = bundle_key(mailbox, SLOT_LAST_RESORT);
        Self::read_opaque(&self.bundles, &key, "last-resort prekey")
    }

    fn read_prekey(
        &self,
        mailbox: &MailboxId,
        kind: PrekeyKind,
        index: u64,
    ) -> Result<Option<Bytes>, StoreError> {
        let key = prekey_key(mailbox, kind, index);
        Self::read_opaque(&self.prekeys, &key, "prekey")
    }
}

/// Keyspace options of the small metadata keyspaces.
fn small_options() -> KeyspaceCreateOptions {
    KeyspaceCreateOptions::default().max_memtable_size(SMALL_MEMTABLE_BYTES)
}

/// Envelopes: sealed headers are ciphertext, so block compression is off;
/// reads are for envelopes the core knows exist, so the last level needs no
/// bloom filters.
fn envelope_options() -> KeyspaceCreateOptions {
    KeyspaceCreateOptions::default()
        .max_memtable_size(BULK_MEMTABLE_BYTES)
        .data_block_compression_policy(CompressionPolicy::disabled())
        .expect_point_read_hits(true)
}

/// Bodies: like envelopes, plus key-value separation for large bodies.
fn body_options() -> KeyspaceCreateOptions {
    let separation = KvSeparationOptions::default()
        .compression(CompressionType::None)
        .separation_threshold(BODY_SEPARATION_BYTES);
    envelope_options().with_kv_separation(Some(separation))
}

/// Maps an engine error; its text names no key or value.
fn engine(error: fjall::Error) -> StoreError {
    StoreError::Engine(error.to_string())
}

/// Iterates a keyspace in key order and decodes each pair.
fn scan<T>(
    view: &fjall::Snapshot,
    keyspace: &Keyspace,
    decode: impl Fn(&[u8], &[u8]) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut out = Vec::new();
    for guard in view.iter(keyspace) {
        let (key, value) = guard.into_inner().map_err(engine)?;
        out.push(decode(&key, &value)?);
    }
    Ok(out)
}

/// Iterates the keys of a keyspace in order and decodes them; values are
/// not needed at start-up (bundles and prekeys are read when fetched).
fn scan_keys<T>(
    view: &fjall::Snapshot,
    keyspace: &Keyspace,
    decode: impl Fn(&[u8]) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut out = Vec::new();
    for guard in view.iter(keyspace) {
        out.push(decode(&guard.key().map_err(engine)?)?);
    }
    Ok(out)
}

/// Mailboxes with a signed bundle, and mailboxes with a last-resort prekey.
fn load_bundles(
    view: &fjall::Snapshot,
    keyspace: &Keyspace,
) -> Result<(Vec<MailboxId>, Vec<MailboxId>), StoreError> {
    let (mut signed_bundles, mut last_resorts) = (Vec::new(), Vec::new());
    for (mailbox, slot) in scan_keys(view, keyspace, decode_bundle_key)? {
        if slot == SLOT_SIGNED_BUNDLE {
            signed_bundles.push(mailbox);
        } else {
            last_resorts.push(mailbox);
        }
    }
    Ok((signed_bundles, last_resorts))
}

// ---- keys -------------------------------------------------------------

fn token_key(mailbox: &MailboxId, hash: &TokenHash) -> [u8; 64] {
    let mut key = [0; 64];
    key[..32].copy_from_slice(&mailbox.0);
    key[32..].copy_from_slice(&hash.0);
    key
}

fn envelope_key(mailbox: &MailboxId, seq: u64) -> [u8; 40] {
    let mut key = [0; 40];
    key[..32].copy_from_slice(&mailbox.0);
    key[32..].copy_from_slice(&seq.to_be_bytes());
    key
}

fn prekey_key(mailbox: &MailboxId, kind: PrekeyKind, index: u64) -> [u8; 41] {
    let mut key = [0; 41];
    key[..32].copy_from_slice(&mailbox.0);
    key[32] = match kind {
        PrekeyKind::OneTimeX25519 => KIND_X25519,
        PrekeyKind::OneTimePq => KIND_PQ,
    };
    key[33..].copy_from_slice(&index.to_be_bytes());
    key
}

fn bundle_key(mailbox: &MailboxId, slot: u8) -> [u8; 33] {
    let mut key = [0; 33];
    key[..32].copy_from_slice(&mailbox.0);
    key[32] = slot;
    key
}

fn decode_u64_key(key: &[u8], what: &'static str) -> Result<u64, StoreError> {
    let bytes = key.try_into().map_err(|_| StoreError::Corrupt(what))?;
    Ok(u64::from_be_bytes(bytes))
}

fn decode_token_key(key: &[u8]) -> Result<(MailboxId, TokenHash), StoreError> {
    let (mailbox, hash) = key
        .split_first_chunk::<32>()
        .filter(|(_, hash)| hash.len() == 32)
        .ok_or(StoreError::Corrupt("send token key"))?;
    let hash = TokenHash::from_slice(hash).ok_or(StoreError::Corrupt("send token key"))?;
    Ok((MailboxId(*mailbox), hash))
}

fn decode_envelope_key(key: &[u8]) -> Result<(MailboxId, u64), StoreError> {
    let (mailbox, seq) = key
        .split_first_chunk::<32>()
        .ok_or(StoreError::Corrupt("envelope key"))?;
    Ok((MailboxId(*mailbox), decode_u64_key(seq, "envelope key")?))
}

fn decode_prekey_key(key: &[u8]) -> Result<(MailboxId, PrekeyKind, u64), StoreError> {
    const WHAT: &str = "prekey key";
    let (mailbox, rest) = key
        .split_first_chunk::<32>()
        .ok_or(StoreError::Corrupt(WHAT))?;
    let (kind, index) = rest.split_first().ok_or(StoreError::Corrupt(WHAT))?;
    let kind = match *kind {
        KIND_X25519 => PrekeyKind::OneTimeX25519,
        KIND_PQ => PrekeyKind::OneTimePq,
        _ => return Err(StoreError::Corrupt(WHAT)),
    };
    Ok((MailboxId(*mailbox), kind, decode_u64_key(index, WHAT)?))
}

fn decode_bundle_key(key: &[u8]) -> Result<(MailboxId, u8), StoreError> {
    match key.split_first_chunk::<32>() {
        Some((mailbox, &[slot @ (SLOT_SIGNED_BUNDLE | SLOT_LAST_RESORT)])) => {
            Ok((MailboxId(*mailbox), slot))
        }
        _ => Err(StoreError::Corrupt("bundle key")),
    }
}

// ---- values -----------------------------------------------------------

/// Reads a value: checks the version byte, then hands out fixed-size fields.
struct Reader<'a> {
    bytes: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// Starts reading a value of record type `what` (named in errors).
    fn open(value: &'a [u8], what: &'static str) -> Result<Self, StoreError> {
        match value.split_first() {
            Some((&FORMAT_V1, bytes)) => Ok(Self { bytes, what }),
            _ => Err(StoreError::Corrupt(what)),
        }
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], StoreError> {
        let (head, rest) = self
            .bytes
            .split_first_chunk::<N>()
            .ok_or(StoreError::Corrupt(self.what))?;
        self.bytes = rest;
        Ok(*head)
    }

    fn u32(&mut self) -> Result<u32, StoreError> {
        self.array().map(u32::from_be_bytes)
    }

    fn u64(&mut self) -> Result<u64, StoreError> {
        self.array().map(u64::from_be_bytes)
    }

    /// The next `len` bytes.
    fn take(&mut self, len: usize) -> Result<&'a [u8], StoreError> {
        if len > self.bytes.len() {
            return Err(StoreError::Corrupt(self.what));
        }
        let (head, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        Ok(head)
    }

    /// The remaining bytes (an opaque tail).
    fn rest(self) -> &'a [u8] {
        self.bytes
    }

    /// Requires that nothing is left.
    fn finish(self) -> Result<(), StoreError> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(StoreError::Corrupt(self.what))
        }
    }
}

/// The version byte followed by opaque bytes.
fn versioned(bytes: &[u8]) -> Vec<u8> {
    let mut value = Vec::with_capacity(1 + bytes.len());
    value.push(FORMAT_V1);
    value.extend_from_slice(bytes);
    value
}

fn encode_u32(n: u32) -> [u8; 5] {
    let mut value = [FORMAT_V1; 5];
    value[1..].copy_from_slice(&n.to_be_bytes());
    value
}

fn decode_u32(value: &[u8], what: &'static str) -> Result<u32, StoreError> {
    let mut reader = Reader::open(value, what)?;
    let n = reader.u32()?;
    reader.finish()?;
    Ok(n)
}

fn encode_mailbox(record: &MailboxRecord) -> Vec<u8> {
    let mut value = Vec::with_capacity(49);
    value.push(FORMAT_V1);
    value.extend_from_slice(&record.key);
    value.extend_from_slice(&record.created_at.to_be_bytes());
    value.extend_from_slice(&record.reserved_seq.to_be_bytes());
    value
}

fn decode_mailbox(value: &[u8]) -> Result<MailboxRecord, StoreError> {
    let mut reader = Reader::open(value, "mailbox")?;
    let record = MailboxRecord {
        key: reader.array()?,
        created_at: reader.u64()?,
        reserved_seq: reader.u64()?,
    };
    reader.finish()?;
    Ok(record)
}

/// Encodes an envelope: a shared-body envelope in format 1
/// (`1 ‖ body id ‖ stored_at ‖ expires_at ‖ size ‖ sealed header`), an inline
/// one in format 2 (`2 ‖ stored_at ‖ expires_at ‖ size ‖ client message id ‖
/// header length (u32) ‖ sealed header ‖ body`).
fn encode_envelope(record: &EnvelopeRecord) -> Vec<u8> {
    let meta = &record.meta;
    let header = &record.sealed_header;
    match meta.body {
        BodyRef::Shared(id) => {
            let mut value = Vec::with_capacity(29 + header.len());
            value.push(FORMAT_V1);
            value.extend_from_slice(&id.0.to_be_bytes());
            push_times(&mut value, meta);
            value.extend_from_slice(header);
            value
        }
        BodyRef::Inline(message_id) => {
            let body = record.body.as_deref().unwrap_or_default();
            let mut value = Vec::with_capacity(41 + header.len() + body.len());
            value.push(FORMAT_V2);
            push_times(&mut value, meta);
            value.extend_from_slice(&message_id.0);
            // The frame limit bounds headers far below 4 GiB.
            let header_len = u32::try_from(header.len()).unwrap_or(u32::MAX);
            value.extend_from_slice(&header_len.to_be_bytes());
            value.extend_from_slice(header);
            value.extend_from_slice(body);
            value
        }
    }
}

/// `stored_at ‖ expires_at ‖ size`, common to both envelope formats.
fn push_times(value: &mut Vec<u8>, meta: &EnvelopeMeta) {
    value.extend_from_slice(&meta.stored_at.to_be_bytes());
    value.extend_from_slice(&meta.expires_at.to_be_bytes());
    value.extend_from_slice(&meta.size.to_be_bytes());
}

/// An envelope value's metadata, sealed header and (inline envelopes only)
/// body, as views of the value.
type EnvelopeView<'a> = (EnvelopeMeta, &'a [u8], Option<&'a [u8]>);

/// Decodes an envelope value of either format.
fn decode_envelope(value: &[u8]) -> Result<EnvelopeView<'_>, StoreError> {
    const WHAT: &str = "envelope";
    let (&version, bytes) = value.split_first().ok_or(StoreError::Corrupt(WHAT))?;
    let mut reader = Reader { bytes, what: WHAT };
    match version {
        FORMAT_V1 => {
            let body = BodyRef::Shared(BodyId(reader.u64()?));
            let meta = EnvelopeMeta {
                body,
                stored_at: reader.u64()?,
                expires_at: reader.u64()?,
                size: reader.u32()?,
            };
            Ok((meta, reader.rest(), None))
        }
        FORMAT_V2 => {
            let (stored_at, expires_at, size) = (reader.u64()?, reader.u64()?, reader.u32()?);
            let message_id = ClientMessageId(reader.array()?);
            let header_len =
                usize::try_from(reader.u32()?).map_err(|_| StoreError::Corrupt(WHAT))?;
            let header = reader.take(header_len)?;
            let meta = EnvelopeMeta {
                body: BodyRef::Inline(message_id),
                stored_at,
                expires_at,
                size,
            };
            Ok((meta, header, Some(reader.rest())))
        }
        _ => Err(StoreError::Corrupt(WHAT)),
    }
}

fn encode_send_record(record: &SendRecord) -> Vec<u8> {
    let mut value = Vec::with_capacity(13 + 4 * record.results.len());
    value.push(FORMAT_V1);
    value.extend_from_slice(&record.expires_at.to_be_bytes());
    // A send has at most a few hundred recipients (the frame limit bounds it).
    let count = u32::try_from(record.results.len()).unwrap_or(u32::MAX);
    value.extend_from_slice(&count.to_be_bytes());
    for result in &record.results {
        value.extend_from_slice(&result.to_be_bytes());
    }
    value
}

fn decode_send_record(value: &[u8]) -> Result<SendRecord, StoreError> {
    const WHAT: &str = "send record";
    let mut reader = Reader::open(value, WHAT)?;
    let expires_at = reader.u64()?;
    let count = usize::try_from(reader.u32()?).map_err(|_| StoreError::Corrupt(WHAT))?;
    let tail = reader.rest();
    if Some(tail.len()) != count.checked_mul(4) {
        return Err(StoreError::Corrupt(WHAT));
    }
    let results = tail
        .chunks_exact(4)
        .map(|chunk| {
            let bytes = chunk.try_into().map_err(|_| StoreError::Corrupt(WHAT))?;
            Ok(i32::from_be_bytes(bytes))
        })
        .collect::<Result<_, StoreError>>()?;
    Ok(SendRecord {
        expires_at,
        results,
    })
}

// ---- records (key and value) -----------------------------------------

fn decode_mailbox_pair(key: &[u8], value: &[u8]) -> Result<(MailboxId, MailboxRecord), StoreError> {
    let mailbox = MailboxId::from_slice(key).ok_or(StoreError::Corrupt("mailbox key"))?;
    Ok((mailbox, decode_mailbox(value)?))
}

/// An envelope's key and metadata; the sealed header and body are skipped,
/// not copied.
fn decode_envelope_pair(
    key: &[u8],
    value: &[u8],
) -> Result<(MailboxId, u64, EnvelopeMeta), StoreError> {
    let (mailbox, seq) = decode_envelope_key(key)?;
    let (meta, _, _) = decode_envelope(value)?;
    Ok((mailbox, seq, meta))
}

fn decode_send_record_pair(
    key: &[u8],
    value: &[u8],
) -> Result<(ClientMessageId, SendRecord), StoreError> {
    let id = key
        .try_into()
        .map_err(|_| StoreError::Corrupt("send record key"))?;
    Ok((ClientMessageId(id), decode_send_record(value)?))
}

fn decode_uses_pair(key: &[u8], value: &[u8]) -> Result<(TokenHash, u32), StoreError> {
    let hash = TokenHash::from_slice(key).ok_or(StoreError::Corrupt("registration key"))?;
    Ok((hash, decode_u32(value, "registration uses")?))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn body_ref() -> impl Strategy<Value = BodyRef> {
        prop_oneof![
            any::<u64>().prop_map(|id| BodyRef::Shared(BodyId(id))),
            any::<[u8; 16]>().prop_map(|id| BodyRef::Inline(ClientMessageId(id))),
        ]
    }

    fn meta() -> impl Strategy<Value = EnvelopeMeta> {
        (body_ref(), any::<u64>(), any::<u64>(), any::<u32>()).prop_map(
            |(body, stored_at, expires_at, size)| EnvelopeMeta {
                body,
                stored_at,
                expires_at,
                size,
            },
        )
    }

    proptest! {
        #[test]
        fn envelope_value_round_trips(
            meta in meta(),
            header in prop::collection::vec(any::<u8>(), 0..300),
            body in prop::collection::vec(any::<u8>(), 0..300),
        ) {
            let inline = matches!(meta.body, BodyRef::Inline(_));
            let body = inline.then(|| Bytes::from(body));
            let record = EnvelopeRecord { meta, sealed_header: Bytes::from(header), body };
            let value = encode_envelope(&record);
            prop_assert_eq!(value[0], if inline { FORMAT_V2 } else { FORMAT_V1 });
            let (decoded, header, body) = decode_envelope(&value).unwrap();
            prop_assert_eq!(decoded, meta);
            prop_assert_eq!(header, &record.sealed_header[..]);
            prop_assert_eq!(body, record.body.as_deref());
        }

        #[test]
        fn mailbox_value_round_trips(key in any::<[u8; 32]>(), created_at in any::<u64>(), reserved_seq in any::<u64>()) {
            let record = MailboxRecord { key, created_at, reserved_seq };
            prop_assert_eq!(decode_mailbox(&encode_mailbox(&record)).unwrap(), record);
        }

        #[test]
        fn send_record_value_round_trips(expires_at in any::<u64>(), results in prop::collection::vec(any::<i32>(), 0..40)) {
            let record = SendRecord { expires_at, results };
            prop_assert_eq!(decode_send_record(&encode_send_record(&record)).unwrap(), record);
        }

        #[test]
        fn prekey_key_round_trips(mailbox in any::<[u8; 32]>(), pq in any::<bool>(), index in any::<u64>()) {
            let kind = if pq { PrekeyKind::OneTimePq } else { PrekeyKind::OneTimeX25519 };
            let key = prekey_key(&MailboxId(mailbox), kind, index);
            prop_assert_eq!(decode_prekey_key(&key).unwrap(), (MailboxId(mailbox), kind, index));
        }

        /// Arbitrary bytes never panic a decoder: they decode or are `Corrupt`.
        #[test]
        fn garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..80)) {
            let corrupt = |r: Result<(), StoreError>| matches!(r, Ok(()) | Err(StoreError::Corrupt(_)));
            prop_assert!(corrupt(decode_mailbox(&bytes).map(drop)));
            prop_assert!(corrupt(decode_send_record(&bytes).map(drop)));
            prop_assert!(corrupt(decode_u32(&bytes, "u32").map(drop)));
            prop_assert!(corrupt(decode_token_key(&bytes).map(drop)));
            prop_assert!(corrupt(decode_envelope_key(&bytes).map(drop)));
            prop_assert!(corrupt(decode_prekey_key(&bytes).map(drop)));
            prop_assert!(corrupt(decode_bundle_key(&bytes).map(drop)));
            prop_assert!(corrupt(decode_envelope(&bytes).map(drop)));
        }
    }

    #[test]
    fn a_hand_written_v1_envelope_is_read() {
        // 1 ‖ body 7 ‖ stored_at 100 ‖ expires_at 200 ‖ size 300 ‖ header "hdr"
        let mut value = vec![1];
        value.extend_from_slice(&7u64.to_be_bytes());
        value.extend_from_slice(&100u64.to_be_bytes());
        value.extend_from_slice(&200u64.to_be_bytes());
        value.extend_from_slice(&300u32.to_be_bytes());
        value.extend_from_slice(b"hdr");
        let (meta, header, body) = decode_envelope(&value).unwrap();
        let expected = EnvelopeMeta {
            body: BodyRef::Shared(BodyId(7)),
            stored_at: 100,
            expires_at: 200,
            size: 300,
        };
        assert_eq!((meta, header, body), (expected, &b"hdr"[..], None));
    }

    #[test]
    fn an_inline_envelope_whose_header_length_lies_is_corrupt() {
        let record = EnvelopeRecord {
            meta: EnvelopeMeta {
                body: BodyRef::Inline(ClientMessageId([3; 16])),
                stored_at: 1,
                expires_at: 2,
                size: 3,
            },
            sealed_header: Bytes::from_static(b"header"),
            body: Some(Bytes::from_static(b"body")),
        };
        let mut value = encode_envelope(&record);
        // The header length sits after version, times, size and id.
        value[37..41].copy_from_slice(&11u32.to_be_bytes());
        assert!(matches!(
            decode_envelope(&value),
            Err(StoreError::Corrupt("envelope"))
        ));
        value[37..41].copy_from_slice(&10u32.to_be_bytes());
        let (_, header, body) = decode_envelope(&value).unwrap();
        assert_eq!((header, body), (&b"headerbody"[..], Some(&b""[..])));
    }

    #[test]
    fn truncated_or_padded_values_are_corrupt() {
        let record = MailboxRecord {
            key: [7; 32],
            created_at: 1,
            reserved_seq: 2,
        };
        let value = encode_mailbox(&record);
        assert!(matches!(
            decode_mailbox(&value[..48]),
            Err(StoreError::Corrupt("mailbox"))
        ));
        let mut padded = value.clone();
        padded.push(0);
        assert!(matches!(
            decode_mailbox(&padded),
            Err(StoreError::Corrupt("mailbox"))
        ));
        let mut future = value;
        future[0] = 2;
        assert!(matches!(
            decode_mailbox(&future),
            Err(StoreError::Corrupt("mailbox"))
        ));
        // A count that claims more results than the value holds.
        let mut lying = encode_send_record(&SendRecord {
            expires_at: 5,
            results: vec![1, 2],
        });
        lying[9..13].copy_from_slice(&3u32.to_be_bytes());
        assert!(matches!(
            decode_send_record(&lying),
            Err(StoreError::Corrupt("send record"))
        ));
    }
}
