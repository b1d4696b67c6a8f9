//! One mailbox as the core sees it: owner key, send tokens, the index of
//! waiting envelopes, and its prekey queues.

use std::collections::{BTreeMap, HashSet, VecDeque};

use super::rate::Bucket;
use crate::ids::{ConnId, PrekeyKind, TokenHash};
use crate::store::{EnvelopeMeta, MailboxRecord};

/// Most send tokens one mailbox may hold.
pub(crate) const MAX_SEND_TOKENS: usize = 4096;

/// A waiting envelope; `durable` once the batch that stored it committed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Waiting {
    pub(crate) meta: EnvelopeMeta,
    pub(crate) durable: bool,
}

/// One queue of one-time prekeys: `(index, durable)`, oldest first.
#[derive(Debug, Default)]
pub(crate) struct PrekeyQueue {
    entries: VecDeque<(u64, bool)>,
}

impl PrekeyQueue {
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn push(&mut self, index: u64, durable: bool) {
        self.entries.push_back((index, durable));
    }

    /// Whether the oldest prekey is durable (so `take` would succeed).
    pub(crate) fn peek_durable(&self) -> bool {
        matches!(self.entries.front(), Some((_, true)))
    }

    /// Takes the oldest durable prekey.
    pub(crate) fn take(&mut self) -> Option<u64> {
        match self.entries.front() {
            Some((index, true)) => {
                let index = *index;
                self.entries.pop_front();
                Some(index)
            }
            _ => None,
        }
    }

    pub(crate) fn mark_durable(&mut self, index: u64) {
        if let Some(entry) = self.entries.iter_mut().find(|(i, _)| *i == index) {
            entry.1 = true;
        }
    }
}

/// The prekey directory entry of a mailbox. The pieces are opaque to the
/// relay; only their presence is tracked here.
#[derive(Debug, Default)]
pub(crate) struct Prekeys {
    /// `Some(durable)` once a signed bundle was published.
    pub(crate) signed_bundle: Option<bool>,
    /// `Some(durable)` once a last-resort ML-KEM prekey was published.
    pub(crate) last_resort: Option<bool>,
    pub(crate) one_time: PrekeyQueue,
    pub(crate) one_time_pq: PrekeyQueue,
    pub(crate) next_index: u64,
}

impl Prekeys {
    pub(crate) fn queue_mut(&mut self, kind: PrekeyKind) -> &mut PrekeyQueue {
        match kind {
            PrekeyKind::OneTimeX25519 => &mut self.one_time,
            PrekeyKind::OneTimePq => &mut self.one_time_pq,
        }
    }
}

/// How many sequence numbers one rewrite of a mailbox record reserves.
pub(crate) const SEQ_BLOCK: u64 = 4096;

#[derive(Debug)]
pub(crate) struct Mailbox {
    /// As stored; `reserved_seq` is the end of the current block.
    pub(crate) record: MailboxRecord,
    /// The next sequence number to assign (below `record.reserved_seq`
    /// once assigned: see [`Mailbox::assign_seq`]).
    pub(crate) next_seq: u64,
    pub(crate) tokens: HashSet<TokenHash>,
    pub(crate) waiting: BTreeMap<u64, Waiting>,
    /// Bytes of all waiting envelopes (quota).
    pub(crate) bytes: u64,
    /// Connections authenticated as this mailbox's owner.
    pub(crate) subscribers: Vec<ConnId>,
    pub(crate) prekeys: Prekeys,
    /// Limits bundle fetches, which consume one-time prekeys.
    pub(crate) fetch_limit: Option<Bucket>,
    /// Whether `waiting` holds the stored envelopes (the index was loaded,
    /// or the mailbox was registered in this run). Until then it is empty
    /// and the quota can't be checked.
    pub(crate) loaded: bool,
}

impl Mailbox {
    /// A mailbox as loaded: it continues after its last reserved block.
    pub(crate) fn new(record: MailboxRecord) -> Self {
        Self {
            next_seq: record.reserved_seq,
            record,
            tokens: HashSet::new(),
            waiting: BTreeMap::new(),
            bytes: 0,
            subscribers: Vec::new(),
            prekeys: Prekeys::default(),
            fetch_limit: None,
            loaded: false,
        }
    }

    /// Assigns the next sequence number. Returns the record to store with
    /// the envelope when it starts a new block, so that no assigned number
    /// is at or above the stored `reserved_seq`.
    pub(crate) fn assign_seq(&mut self) -> (u64, Option<MailboxRecord>) {
        let seq = self.next_seq;
        self.next_seq += 1;
        if seq < self.record.reserved_seq {
            return (seq, None);
        }
        self.record.reserved_seq = seq.saturating_add(SEQ_BLOCK);
        (seq, Some(self.record.clone()))
    }

    pub(crate) fn insert_waiting(&mut self, seq: u64, meta: EnvelopeMeta, durable: bool) {
        self.bytes += u64::from(meta.size);
        if let Some(old) = self.waiting.insert(seq, Waiting { meta, durable }) {
            self.bytes -= u64::from(old.meta.size);
        }
    }

    /// Removes a durable waiting envelope; a not yet durable one stays (no
    /// client can have seen it).
    pub(crate) fn remove_durable(&mut self, seq: u64) -> Option<EnvelopeMeta> {
        match self.waiting.get(&seq) {
            Some(w) if w.durable => {
                let meta = w.meta;
                self.waiting.remove(&seq);
                self.bytes -= u64::from(meta.size);
                Some(meta)
            }
            _ => None,
        }
    }

    /// Would one more envelope of `size` bytes exceed the quotas?
    pub(crate) fn is_full(&self, size: u32, max_envelopes: u32, max_bytes: u64) -> bool {
        self.waiting.len() >= max_envelopes as usize || self.bytes + u64::from(size) > max_bytes
    }
}
