//! An in-memory [`MailboxStore`] for unit tests: the same semantics as the
//! fjall store, with nothing durable. It also counts commits and bodies so
//! tests can assert group commit ("one commit for three sends") and shared
//! bodies ("stored once").
//!
//! Compiled for the crate's own tests and, for other crates (the fuzz
//! targets), only with the `test-hooks` feature: no release build has it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};

use bytes::Bytes;

use super::{
    Batch, BodyRef, EnvelopeMeta, EnvelopeRecord, MailboxIndex, MailboxRecord, MailboxStore,
    Mutation, SendRecord, Snapshot, StoreError,
};
use crate::ids::{BodyId, ClientMessageId, MailboxId, Millis, PrekeyKind, TokenHash};

/// The in-memory [`MailboxStore`]. Not durable: for tests only.
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

/// Everything stored, keyed and ordered like the fjall keyspaces.
#[derive(Default)]
struct State {
    mailboxes: BTreeMap<MailboxId, MailboxRecord>,
    send_tokens: BTreeSet<(MailboxId, TokenHash)>,
    envelopes: BTreeMap<(MailboxId, u64), EnvelopeRecord>,
    bodies: BTreeMap<BodyId, Bytes>,
    body_refs: BTreeMap<BodyId, u32>,
    signed_bundles: BTreeMap<MailboxId, Bytes>,
    last_resorts: BTreeMap<MailboxId, Bytes>,
    prekeys: BTreeMap<(MailboxId, PrekeyKind, u64), Bytes>,
    send_records: BTreeMap<ClientMessageId, SendRecord>,
    registration_uses: BTreeMap<TokenHash, u32>,
    /// Commits that wrote something.
    commits: usize,
    /// When set, commits fail without writing.
    failing: bool,
}

impl fmt::Debug for MemoryStore {
    /// Shows counts only: stored bytes are never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state();
        f.debug_struct("MemoryStore")
            .field("mailboxes", &state.mailboxes.len())
            .field("envelopes", &state.envelopes.len())
            .field("bodies", &state.bodies.len())
            .field("commits", &state.commits)
            .finish_non_exhaustive()
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many commits wrote something. Commits of nothing (no batches, or
    /// only empty ones) are not counted, as the fjall store does not sync
    /// for them: this is the number of fdatasyncs a durable store would make.
    pub fn commits(&self) -> usize {
        self.state().commits
    }

    /// How many bodies are stored.
    pub fn body_count(&self) -> usize {
        self.state().bodies.len()
    }

    /// How many envelopes are stored.
    pub fn envelope_count(&self) -> usize {
        self.state().envelopes.len()
    }

    /// How many send records are stored.
    pub fn send_record_count(&self) -> usize {
        self.state().send_records.len()
    }

    /// The ids of the stored send records, in key order (for tests: the
    /// relay itself only reads them one by one).
    pub fn send_record_ids(&self) -> Vec<ClientMessageId> {
        self.state().send_records.keys().copied().collect()
    }

    /// Makes every following commit fail with [`StoreError::Engine`] without
    /// writing anything (or succeed again with `false`), to test how callers
    /// handle a failing disk.
    pub fn set_failing(&self, failing: bool) {
        self.state().failing = failing;
    }

    /// Locks the state. Applying a batch cannot panic half-way, so a poisoned
    /// lock (a panicking test thread) still guards consistent data.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    fn apply(&mut self, mutation: &Mutation) {
        match mutation {
            Mutation::PutMailbox(mailbox, record) => {
                self.mailboxes.insert(*mailbox, record.clone());
            }
            Mutation::PutSendToken(mailbox, hash) => {
                self.send_tokens.insert((*mailbox, *hash));
            }
            Mutation::DeleteSendToken(mailbox, hash) => {
                self.send_tokens.remove(&(*mailbox, *hash));
            }
            Mutation::PutBody { id, bytes, refs } => {
                self.bodies.insert(*id, bytes.clone());
                self.body_refs.insert(*id, *refs);
            }
            Mutation::SetBodyRefs(id, refs) => {
                self.body_refs.insert(*id, *refs);
            }
            Mutation::DeleteBody(id) => {
                self.bodies.remove(id);
                self.body_refs.remove(id);
            }
            Mutation::PutEnvelope {
                mailbox,
                seq,
                record,
            } => {
                self.envelopes.insert((*mailbox, *seq), record.clone());
            }
            Mutation::DeleteEnvelope(mailbox, seq) => {
                self.envelopes.remove(&(*mailbox, *seq));
            }
            Mutation::PutSignedBundle(mailbox, bytes) => {
                self.signed_bundles.insert(*mailbox, bytes.clone());
            }
            Mutation::PutLastResort(mailbox, bytes) => {
                self.last_resorts.insert(*mailbox, bytes.clone());
            }
            Mutation::PutPrekey(mailbox, kind, index, bytes) => {
                self.prekeys
                    .insert((*mailbox, *kind, *index), bytes.clone());
            }
            Mutation::DeletePrekey(mailbox, kind, index) => {
                self.prekeys.remove(&(*mailbox, *kind, *index));
            }
            Mutation::PutSendRecord(id, record) => {
                self.send_records.insert(*id, record.clone());
            }
            Mutation::DeleteSendRecord(id) => {
                self.send_records.remove(id);
            }
            Mutation::PutRegistrationUses(hash, uses) => {
                self.registration_uses.insert(*hash, *uses);
            }
        }
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            mailboxes: clone_pairs(&self.mailboxes),
            send_tokens: self.send_tokens.iter().copied().collect(),
            next_body: self
                .body_refs
                .keys()
                .next_back()
                .map_or(0, |id| id.0.saturating_add(1)),
            signed_bundles: self.signed_bundles.keys().copied().collect(),
            last_resorts: self.last_resorts.keys().copied().collect(),
            prekeys: self.prekeys.keys().copied().collect(),
            registration_uses: clone_pairs(&self.registration_uses),
        }
    }

    fn mailbox_index(&self, mailbox: &MailboxId) -> MailboxIndex {
        let envelopes: Vec<(u64, EnvelopeMeta)> = self
            .envelopes
            .range((*mailbox, 0)..=(*mailbox, u64::MAX))
            .map(|(&(_, seq), record)| (seq, record.meta))
            .collect();
        let bodies: BTreeSet<BodyId> = envelopes
            .iter()
            .filter_map(|(_, meta)| match meta.body {
                BodyRef::Shared(id) => Some(id),
                BodyRef::Inline(_) => None,
            })
            .collect();
        let body_refs = bodies
            .into_iter()
            .filter_map(|id| Some((id, *self.body_refs.get(&id)?)))
            .collect();
        MailboxIndex {
            envelopes,
            body_refs,
        }
    }
}

fn clone_pairs<K: Clone, V: Clone>(map: &BTreeMap<K, V>) -> Vec<(K, V)> {
    map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

impl MailboxStore for MemoryStore {
    fn load(&self) -> Result<Snapshot, StoreError> {
        Ok(self.state().snapshot())
    }

    fn load_mailbox(&self, mailbox: &MailboxId) -> Result<MailboxIndex, StoreError> {
        Ok(self.state().mailbox_index(mailbox))
    }

    fn read_send_record(&self, id: &ClientMessageId) -> Result<Option<SendRecord>, StoreError> {
        Ok(self.state().send_records.get(id).cloned())
    }

    fn expired_send_records(
        &self,
        now: Millis,
        limit: usize,
    ) -> Result<Vec<ClientMessageId>, StoreError> {
        let state = self.state();
        let expired = state.send_records.iter();
        Ok(expired
            .filter(|(_, record)| record.expires_at <= now)
            .map(|(id, _)| *id)
            .take(limit)
            .collect())
    }

    fn commit(&self, batches: &[Batch]) -> Result<(), StoreError> {
        let mut state = self.state();
        if batches.iter().all(Batch::is_empty) {
            return Ok(());
        }
        if state.failing {
            return Err(StoreError::Engine("injected commit failure".to_owned()));
        }
        // Under one lock: all batches become visible together.
        for mutation in batches.iter().flat_map(|batch| &batch.mutations) {
            state.apply(mutation);
        }
        state.commits += 1;
        Ok(())
    }

    fn read_envelope(
        &self,
        mailbox: &MailboxId,
        seq: u64,
    ) -> Result<Option<EnvelopeRecord>, StoreError> {
        Ok(self.state().envelopes.get(&(*mailbox, seq)).cloned())
    }

    fn read_body(&self, id: BodyId) -> Result<Option<Bytes>, StoreError> {
        Ok(self.state().bodies.get(&id).cloned())
    }

    fn read_signed_bundle(&self, mailbox: &MailboxId) -> Result<Option<Bytes>, StoreError> {
        Ok(self.state().signed_bundles.get(mailbox).cloned())
    }

    fn read_last_resort(&self, mailbox: &MailboxId) -> Result<Option<Bytes>, StoreError> {
        Ok(self.state().last_resorts.get(mailbox).cloned())
    }

    fn read_prekey(
        &self,
        mailbox: &MailboxId,
        kind: PrekeyKind,
        index: u64,
    ) -> Result<Option<Bytes>, StoreError> {
        Ok(self.state().prekeys.get(&(*mailbox, kind, index)).cloned())
    }
}
