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

mod codec;
use codec::*;

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
