//! The hot cache: sealed headers and bodies of freshly committed envelopes,
//! so that delivering them right after their commit needs no store read.
//!
//! The writer thread fills it from each durable group
//! ([`HotEnvelopes::apply`]) before it reports the group to the core, so
//! every envelope the core plans for delivery was put here first (unless
//! evicted since). It holds
//! only copies of what is already on disk: `PutEnvelope` (its header, and
//! the body of an inline envelope) and `PutBody` add entries,
//! `DeleteEnvelope` and `DeleteBody` drop them, and beyond a byte
//! bound the oldest entries go first. A miss is never an error: the delivery
//! task then reads the store, which stays the source of truth. Envelope keys
//! and body ids are written once, so an entry never goes stale.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};

use bytes::Bytes;

use crate::ids::{BodyId, MailboxId};
use crate::store::{Batch, BodyRef, Mutation};

/// Default byte bound of the cache.
pub(crate) const HOT_CACHE_BYTES: usize = 64 * 1024 * 1024;

/// Bytes an entry costs beyond its payload (map slots, order index, `Bytes`
/// handle), so that many tiny entries are bounded too.
const ENTRY_OVERHEAD: usize = 128;

/// What an entry holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Key {
    /// An envelope's sealed header.
    Header(MailboxId, u64),
    /// The body inside an inline envelope.
    Inline(MailboxId, u64),
    /// A shared body.
    Body(BodyId),
}

/// A cached payload and its place in the eviction order.
#[derive(Debug)]
struct Entry {
    age: u64,
    bytes: Bytes,
}

/// Freshly committed sealed headers and bodies, bounded in bytes, oldest
/// evicted first. Shared by the writer thread and the delivery tasks.
#[derive(Debug)]
pub(crate) struct HotEnvelopes {
    limit: usize,
    state: Mutex<Hot>,
}

/// The cache's contents, behind its lock.
#[derive(Debug, Default)]
pub(crate) struct Hot {
    entries: HashMap<Key, Entry>,
    /// Eviction order: age → key. Ages grow with every insertion.
    order: BTreeMap<u64, Key>,
    next_age: u64,
    /// Payload plus overhead of every entry.
    bytes: usize,
}

impl HotEnvelopes {
    /// An empty cache holding at most about `limit` bytes.
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            limit,
            state: Mutex::new(Hot::default()),
        }
    }

    /// Records a group of batches that is now durable, in commit order.
    pub(crate) fn apply(&self, batches: &[Batch]) {
        let mut hot = self.lock();
        for mutation in batches.iter().flat_map(|batch| &batch.mutations) {
            match mutation {
                Mutation::PutEnvelope {
                    mailbox,
                    seq,
                    record,
                } => {
                    hot.insert(Key::Header(*mailbox, *seq), &record.sealed_header);
                    if let Some(body) = &record.body {
                        hot.insert(Key::Inline(*mailbox, *seq), body);
                    }
                }
                Mutation::PutBody { id, bytes, .. } => hot.insert(Key::Body(*id), bytes),
                Mutation::DeleteEnvelope(mailbox, seq) => {
                    hot.remove(Key::Header(*mailbox, *seq));
                    hot.remove(Key::Inline(*mailbox, *seq));
                }
                Mutation::DeleteBody(id) => hot.remove(Key::Body(*id)),
                _ => {}
            }
        }
        hot.evict_to(self.limit);
    }

    /// Locks the cache for a few lookups. Hold the guard briefly and never
    /// across an `.await`.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Hot> {
        // Every update keeps the maps consistent before it can panic (no
        // user code runs inside), so a poisoned lock holds usable contents.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Hot {
    /// The sealed header of an envelope, if hot.
    pub(crate) fn header(&self, mailbox: &MailboxId, seq: u64) -> Option<Bytes> {
        self.get(Key::Header(*mailbox, seq))
    }

    /// A shared body, if hot.
    pub(crate) fn body(&self, id: BodyId) -> Option<Bytes> {
        self.get(Key::Body(id))
    }

    /// The body of an envelope, if hot: inside the envelope or shared.
    pub(crate) fn envelope_body(
        &self,
        mailbox: &MailboxId,
        seq: u64,
        body: BodyRef,
    ) -> Option<Bytes> {
        match body {
            BodyRef::Inline(_) => self.get(Key::Inline(*mailbox, seq)),
            BodyRef::Shared(id) => self.body(id),
        }
    }

    /// Bytes accounted for (payloads plus per-entry overhead).
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    fn get(&self, key: Key) -> Option<Bytes> {
        self.entries.get(&key).map(|entry| entry.bytes.clone())
    }

    fn insert(&mut self, key: Key, bytes: &Bytes) {
        self.remove(key);
        let age = self.next_age;
        self.next_age += 1;
        self.bytes += cost(bytes);
        self.order.insert(age, key);
        self.entries.insert(
            key,
            Entry {
                age,
                bytes: bytes.clone(),
            },
        );
    }

    fn remove(&mut self, key: Key) {
        if let Some(entry) = self.entries.remove(&key) {
            self.order.remove(&entry.age);
            self.bytes -= cost(&entry.bytes);
        }
    }

    /// Drops the oldest entries until at most `limit` bytes are held.
    fn evict_to(&mut self, limit: usize) {
        while self.bytes > limit {
            let Some((_, key)) = self.order.pop_first() else {
                return;
            };
            if let Some(entry) = self.entries.remove(&key) {
                self.bytes -= cost(&entry.bytes);
            }
        }
    }
}

/// What an entry counts against the bound.
fn cost(bytes: &Bytes) -> usize {
    bytes.len() + ENTRY_OVERHEAD
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{EnvelopeMeta, EnvelopeRecord};

    const MAILBOX: MailboxId = MailboxId([9; 32]);

    fn put_envelope(seq: u64, body: u64, header: &'static [u8]) -> Mutation {
        Mutation::PutEnvelope {
            mailbox: MAILBOX,
            seq,
            record: EnvelopeRecord {
                meta: EnvelopeMeta {
                    body: BodyRef::Shared(BodyId(body)),
                    stored_at: 1,
                    expires_at: 2,
                    size: 3,
                },
                sealed_header: Bytes::from_static(header),
                body: None,
            },
        }
    }

    fn put_body(id: u64, len: usize) -> Mutation {
        Mutation::PutBody {
            id: BodyId(id),
            bytes: Bytes::from(vec![id as u8; len]),
            refs: 1,
        }
    }

    fn batch(mutations: Vec<Mutation>) -> Batch {
        Batch { mutations }
    }

    #[test]
    fn a_committed_group_fills_headers_and_bodies() {
        let hot = HotEnvelopes::new(HOT_CACHE_BYTES);
        hot.apply(&[
            batch(vec![put_body(10, 5), put_envelope(1, 10, b"h1")]),
            batch(vec![put_body(11, 7), put_envelope(2, 11, b"h2")]),
        ]);
        let hot = hot.lock();
        assert_eq!(hot.header(&MAILBOX, 1).unwrap().as_ref(), b"h1");
        assert_eq!(hot.header(&MAILBOX, 2).unwrap().as_ref(), b"h2");
        assert_eq!(hot.body(BodyId(10)).unwrap().as_ref(), &[10; 5]);
        assert_eq!(hot.body(BodyId(11)).unwrap().len(), 7);
        assert_eq!(hot.header(&MailboxId([1; 32]), 1), None, "other mailbox");
        assert_eq!(hot.bytes(), 2 + 2 + 5 + 7 + 4 * ENTRY_OVERHEAD);
    }

    #[test]
    fn deletes_evict_and_other_mutations_are_ignored() {
        let hot = HotEnvelopes::new(HOT_CACHE_BYTES);
        hot.apply(&[batch(vec![
            put_body(10, 5),
            put_envelope(1, 10, b"h1"),
            put_envelope(2, 10, b"h2"),
        ])]);
        hot.apply(&[batch(vec![
            Mutation::DeleteEnvelope(MAILBOX, 1),
            Mutation::SetBodyRefs(BodyId(10), 1),
        ])]);
        {
            let cache = hot.lock();
            assert_eq!(cache.header(&MAILBOX, 1), None, "acknowledged");
            assert!(cache.header(&MAILBOX, 2).is_some());
            assert!(cache.body(BodyId(10)).is_some(), "still referenced");
        }
        hot.apply(&[batch(vec![
            Mutation::DeleteEnvelope(MAILBOX, 2),
            Mutation::DeleteBody(BodyId(10)),
        ])]);
        let cache = hot.lock();
        assert_eq!(cache.body(BodyId(10)), None);
        assert_eq!(cache.bytes(), 0, "nothing left accounted");
        assert!(cache.order.is_empty(), "no leftover order entries");
    }

    #[test]
    fn the_byte_bound_evicts_the_oldest_first() {
        // Room for three 100-byte bodies, not four.
        let hot = HotEnvelopes::new(3 * (100 + ENTRY_OVERHEAD) + 50);
        for id in 1..=3 {
            hot.apply(&[batch(vec![put_body(id, 100)])]);
        }
        assert!(hot.lock().body(BodyId(1)).is_some());
        hot.apply(&[batch(vec![put_body(4, 100)])]);
        let cache = hot.lock();
        assert_eq!(cache.body(BodyId(1)), None, "the oldest went");
        for id in 2..=4 {
            assert!(cache.body(BodyId(id)).is_some(), "body {id} kept");
        }
        assert_eq!(cache.bytes(), 3 * (100 + ENTRY_OVERHEAD));
    }

    #[test]
    fn an_entry_larger_than_the_bound_is_not_kept() {
        let hot = HotEnvelopes::new(1000);
        hot.apply(&[batch(vec![put_body(1, 4000)])]);
        let cache = hot.lock();
        assert_eq!(cache.body(BodyId(1)), None);
        assert_eq!(cache.bytes(), 0);
    }

    #[test]
    fn an_inline_envelope_brings_its_body_and_takes_it_away() {
        let hot = HotEnvelopes::new(HOT_CACHE_BYTES);
        let inline = BodyRef::Inline(crate::ids::ClientMessageId([4; 16]));
        hot.apply(&[batch(vec![Mutation::PutEnvelope {
            mailbox: MAILBOX,
            seq: 3,
            record: EnvelopeRecord {
                meta: EnvelopeMeta {
                    body: inline,
                    stored_at: 1,
                    expires_at: 2,
                    size: 3,
                },
                sealed_header: Bytes::from_static(b"h"),
                body: Some(Bytes::from_static(b"inline body")),
            },
        }])]);
        {
            let cache = hot.lock();
            assert_eq!(cache.header(&MAILBOX, 3).unwrap().as_ref(), b"h");
            let body = cache.envelope_body(&MAILBOX, 3, inline).unwrap();
            assert_eq!(body.as_ref(), b"inline body");
            assert_eq!(cache.envelope_body(&MAILBOX, 4, inline), None);
        }
        hot.apply(&[batch(vec![Mutation::DeleteEnvelope(MAILBOX, 3)])]);
        let cache = hot.lock();
        assert_eq!(cache.envelope_body(&MAILBOX, 3, inline), None);
        assert_eq!(cache.bytes(), 0);
    }

    #[test]
    fn a_put_and_its_delete_in_one_group_leave_nothing() {
        let hot = HotEnvelopes::new(HOT_CACHE_BYTES);
        hot.apply(&[
            batch(vec![put_body(1, 10), put_envelope(5, 1, b"h")]),
            batch(vec![
                Mutation::DeleteEnvelope(MAILBOX, 5),
                Mutation::DeleteBody(BodyId(1)),
            ]),
        ]);
        let cache = hot.lock();
        assert_eq!(cache.header(&MAILBOX, 5), None);
        assert_eq!(cache.body(BodyId(1)), None);
        assert_eq!(cache.bytes(), 0);
    }
}
