//! Durable storage behind the relay core.
//!
//! The core owns the relay's logic and keeps the metadata it needs in memory;
//! a [`MailboxStore`] is the durable record of it. At start-up the core is
//! rebuilt from [`MailboxStore::load`], which reads mailboxes, tokens, prekey
//! presence and registration uses, never envelopes: a start costs the same
//! with a million stored envelopes as with none. A mailbox's envelope index
//! is read by [`MailboxStore::load_mailbox`] when the core first needs it,
//! and a send record by [`MailboxStore::read_send_record`] when a marked
//! retry asks for it ([`MailboxStore::load_needed`] does both for the
//! core's `Outcome::Load`). Every change the core makes
//! reaches the store as a [`Batch`] of [`Mutation`]s, and the store commits
//! groups of batches atomically and durably. Envelope headers, bodies and
//! prekeys are only read back when they are delivered or fetched.
//!
//! Keys are big-endian `mailbox ‖ seq` so that a mailbox's envelopes are one
//! ordered range. A PostgreSQL backend implements the same trait with one
//! transaction per [`MailboxStore::commit`].

pub mod fjall;
#[cfg(any(test, feature = "test-hooks"))]
pub mod memory;

use bytes::Bytes;

use crate::ids::{BodyId, ClientMessageId, MailboxId, Millis, PrekeyKind, TokenHash};

/// Storage failed. After a failed commit the relay stops: whether the data
/// reached the disk is unknown, and restarting from the store is the only
/// state that is known to be true.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The underlying store reported an I/O or engine error.
    #[error("storage engine error: {0}")]
    Engine(String),
    /// A stored record could not be decoded (corruption or a newer format).
    #[error("stored record is corrupt or from an unknown format: {0}")]
    Corrupt(&'static str),
}

/// A registered mailbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailboxRecord {
    /// The owner's Ed25519 public key.
    pub key: [u8; 32],
    /// When the mailbox was registered.
    pub created_at: Millis,
    /// Every sequence number the mailbox ever assigned is below this. The
    /// core reserves sequence numbers in blocks and rewrites the record only
    /// when it reaches the end of a block, so a stored envelope does not
    /// rewrite its mailbox; after a restart the mailbox continues from here,
    /// so sequence numbers never go backwards (a few are skipped).
    pub reserved_seq: u64,
}

/// Where an envelope's body is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BodyRef {
    /// A body shared by the envelopes of a send stored for two or more
    /// recipients, kept once with a reference count.
    Shared(BodyId),
    /// The body is inside the envelope itself (a send stored for exactly one
    /// recipient). The envelope also holds the send's client message id, so
    /// that a retry is recognised after a restart without a send record.
    Inline(ClientMessageId),
}

/// Metadata of a stored envelope: what the core keeps in memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EnvelopeMeta {
    /// Where its body is.
    pub body: BodyRef,
    /// When the relay stored it.
    pub stored_at: Millis,
    /// When it expires unacknowledged.
    pub expires_at: Millis,
    /// Bytes it counts against the mailbox quota (body plus sealed header).
    pub size: u32,
}

/// A stored envelope as read back for delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvelopeRecord {
    /// Its metadata.
    pub meta: EnvelopeMeta,
    /// The per-recipient sealed header (opaque).
    pub sealed_header: Bytes,
    /// The body of an inline envelope ([`BodyRef::Inline`]); `None` for a
    /// shared body, which is read with [`MailboxStore::read_body`]. An inline
    /// envelope stored without one holds an empty body.
    pub body: Option<Bytes>,
}

/// What the relay remembers of a send, to answer a retry identically.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendRecord {
    /// When the record may be forgotten.
    pub expires_at: Millis,
    /// Per-recipient result codes (`hearth_proto::relay::ErrorCode` as i32).
    pub results: Vec<i32>,
}

/// One change to durable state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mutation {
    /// Create or update a mailbox.
    PutMailbox(MailboxId, MailboxRecord),
    /// Allow a send token for a mailbox.
    PutSendToken(MailboxId, TokenHash),
    /// Revoke a send token.
    DeleteSendToken(MailboxId, TokenHash),
    /// Store a body with its initial reference count.
    PutBody {
        /// Its id.
        id: BodyId,
        /// The opaque bytes.
        bytes: Bytes,
        /// How many envelopes refer to it.
        refs: u32,
    },
    /// Change a body's reference count (never to zero: see `DeleteBody`).
    SetBodyRefs(BodyId, u32),
    /// Delete a body and its reference count.
    DeleteBody(BodyId),
    /// Store an envelope.
    PutEnvelope {
        /// Its mailbox.
        mailbox: MailboxId,
        /// Its sequence number in the mailbox.
        seq: u64,
        /// The envelope.
        record: EnvelopeRecord,
    },
    /// Delete an envelope (acknowledged or expired).
    DeleteEnvelope(MailboxId, u64),
    /// Replace a mailbox's signed prekey bundle.
    PutSignedBundle(MailboxId, Bytes),
    /// Replace a mailbox's last-resort ML-KEM prekey.
    PutLastResort(MailboxId, Bytes),
    /// Add a one-time prekey at an index of its queue.
    PutPrekey(MailboxId, PrekeyKind, u64, Bytes),
    /// Remove a one-time prekey (fetched).
    DeletePrekey(MailboxId, PrekeyKind, u64),
    /// Remember a send's result for retries.
    PutSendRecord(ClientMessageId, SendRecord),
    /// Forget an expired send record.
    DeleteSendRecord(ClientMessageId),
    /// Record how many times a registration token has been used.
    PutRegistrationUses(TokenHash, u32),
}

/// Mutations that commit together, all or nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    /// The changes, applied in order.
    pub mutations: Vec<Mutation>,
}

impl Batch {
    /// True when there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.mutations.is_empty()
    }

    /// Appends a mutation.
    pub fn push(&mut self, mutation: Mutation) {
        self.mutations.push(mutation);
    }
}

/// What the core needs in memory from the start, read at start-up. Envelope
/// indexes and send records are not in it: they are read when needed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Registered mailboxes.
    pub mailboxes: Vec<(MailboxId, MailboxRecord)>,
    /// Allowed send tokens.
    pub send_tokens: Vec<(MailboxId, TokenHash)>,
    /// One more than the highest stored body id (0 if none): new shared
    /// bodies are numbered from here.
    pub next_body: u64,
    /// Mailboxes with a signed bundle.
    pub signed_bundles: Vec<MailboxId>,
    /// Mailboxes with a last-resort prekey.
    pub last_resorts: Vec<MailboxId>,
    /// One-time prekeys, in key order (mailbox, kind, index).
    pub prekeys: Vec<(MailboxId, PrekeyKind, u64)>,
    /// Registration token uses.
    pub registration_uses: Vec<(TokenHash, u32)>,
}

/// One mailbox's envelope index, read when the core first needs it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MailboxIndex {
    /// Its stored envelopes, by ascending seq.
    pub envelopes: Vec<(u64, EnvelopeMeta)>,
    /// The stored reference counts of the shared bodies they point at, by
    /// ascending id (a body whose count is missing is left out).
    pub body_refs: Vec<(BodyId, u32)>,
}

/// What [`MailboxStore::load_needed`] read for the core.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Loaded {
    /// The envelope indexes of the mailboxes asked for.
    pub mailboxes: Vec<(MailboxId, MailboxIndex)>,
    /// The send record asked for, and what the store holds of it.
    pub send_record: Option<(ClientMessageId, Option<SendRecord>)>,
}

/// Durable storage of relay state. Implementations are used from blocking
/// threads (never from async tasks directly).
pub trait MailboxStore: Send + Sync + 'static {
    /// Reads what the core keeps in memory from the start (no envelopes, no
    /// send records).
    fn load(&self) -> Result<Snapshot, StoreError>;

    /// Reads one mailbox's envelope index and the reference counts of the
    /// shared bodies it points at.
    fn load_mailbox(&self, mailbox: &MailboxId) -> Result<MailboxIndex, StoreError>;

    /// Reads one send record (a point read).
    fn read_send_record(&self, id: &ClientMessageId) -> Result<Option<SendRecord>, StoreError>;

    /// Up to `limit` stored send records that expired by `now`, in key
    /// order. Records are not loaded at start, so the core can't expire the
    /// ones written before it started: the shell asks for these now and then
    /// (a scan of every stored record) and hands them to the core's
    /// `handle_expired_send_records`.
    fn expired_send_records(
        &self,
        now: Millis,
        limit: usize,
    ) -> Result<Vec<ClientMessageId>, StoreError>;

    /// Reads what the core's `Outcome::Load` names: the envelope indexes of
    /// `mailboxes` and, if asked, one send record. Blocking: call it from a
    /// blocking thread, then hand the result to the core's `handle_loaded`.
    fn load_needed(
        &self,
        mailboxes: &[MailboxId],
        send_record: Option<ClientMessageId>,
    ) -> Result<Loaded, StoreError> {
        let mailboxes = mailboxes
            .iter()
            .map(|mailbox| Ok((*mailbox, self.load_mailbox(mailbox)?)))
            .collect::<Result<_, StoreError>>()?;
        let send_record = match send_record {
            Some(id) => Some((id, self.read_send_record(&id)?)),
            None => None,
        };
        Ok(Loaded {
            mailboxes,
            send_record,
        })
    }

    /// Writes what is only in memory tables and the journal to the store's
    /// tables, so that the next start replays little journal. Everything
    /// committed is durable already; call it once, at graceful shutdown,
    /// after the last commit.
    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Applies the batches in order as one atomic write and makes it durable
    /// (fdatasync or equivalent) before returning.
    fn commit(&self, batches: &[Batch]) -> Result<(), StoreError>;

    /// Reads one envelope for delivery.
    fn read_envelope(
        &self,
        mailbox: &MailboxId,
        seq: u64,
    ) -> Result<Option<EnvelopeRecord>, StoreError>;

    /// Reads a body for delivery.
    fn read_body(&self, id: BodyId) -> Result<Option<Bytes>, StoreError>;

    /// Reads a mailbox's signed prekey bundle.
    fn read_signed_bundle(&self, mailbox: &MailboxId) -> Result<Option<Bytes>, StoreError>;

    /// Reads a mailbox's last-resort ML-KEM prekey.
    fn read_last_resort(&self, mailbox: &MailboxId) -> Result<Option<Bytes>, StoreError>;

    /// Reads one one-time prekey.
    fn read_prekey(
        &self,
        mailbox: &MailboxId,
        kind: PrekeyKind,
        index: u64,
    ) -> Result<Option<Bytes>, StoreError>;
}

#[cfg(test)]
mod tests;
