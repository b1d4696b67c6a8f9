//! Send records: what the relay remembers of each send so that a retry
//! (same client message id) is answered identically and stored only once.
//!
//! Two bounds keep them from growing without limit:
//!
//! - **Per mailbox.** A record counts against every mailbox the send was
//!   stored in. When a mailbox would hold more than its cap, its oldest
//!   record is forgotten (for every recipient of that send). A retry of a
//!   forgotten send is stored again: the recipients' clients recognise the
//!   copy by its message id and drop it, so nothing is lost or shown twice;
//!   the copy only costs quota and bandwidth.
//! - **By age.** Records are grouped in buckets by when they expire (the
//!   window divided in [`BUCKETS_PER_WINDOW`], an hour for the default 7
//!   days). Expiry takes whole buckets whose every record has expired, so
//!   its cost is the number of records it forgets, never a sweep of all of
//!   them. A record is forgotten between its expiry and one bucket later.
//!
//! Only sends stored for two or more recipients write their record to the
//! store ("durable" records). A send stored once needs none: its envelope
//! holds its client message id, so after a restart a retry finds it in the
//! recipient's envelope index. Its record lives in memory only, and
//! forgetting it writes nothing.
//!
//! Which mailboxes a send went to is known only in memory: the store keeps
//! records by client message id alone, so that it never shows who shares a
//! circle. Records read back from the store therefore count against no
//! mailbox; they leave by age.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::ids::{ClientMessageId, MailboxId, Millis};
use crate::store::SendRecord;

/// How many buckets one send-record window is cut into.
pub const BUCKETS_PER_WINDOW: u64 = 168;

/// One remembered send.
#[derive(Debug)]
struct Entry {
    record: SendRecord,
    /// Creation order, so a mailbox can find its oldest record.
    serial: u64,
    /// The mailboxes whose cap it counts against.
    mailboxes: Box<[MailboxId]>,
    /// Whether the store holds it (and must forget it too).
    durable: bool,
}

/// What one [`SendRecords::expire`] call forgot.
#[derive(Debug, Default)]
pub(super) struct Expired {
    /// How many records it forgot, durable or not.
    pub(super) forgotten: usize,
    /// The durable ones, which the store must forget too.
    pub(super) durable: Vec<ClientMessageId>,
}

/// Every send record the relay remembers, indexed by id, by expiry bucket
/// and by mailbox.
#[derive(Debug)]
pub(super) struct SendRecords {
    per_mailbox: usize,
    bucket_ms: Millis,
    records: HashMap<ClientMessageId, Entry>,
    /// Expiry bucket → the records expiring in it.
    buckets: BTreeMap<u64, HashSet<ClientMessageId>>,
    /// Mailbox → its records, oldest first.
    by_mailbox: HashMap<MailboxId, BTreeMap<u64, ClientMessageId>>,
    next_serial: u64,
}

impl SendRecords {
    /// Records kept for `window_ms`, at most `per_mailbox` per mailbox
    /// (at least one), starting from what the store held.
    pub(super) fn new(
        per_mailbox: usize,
        window_ms: Millis,
        stored: Vec<(ClientMessageId, SendRecord)>,
    ) -> Self {
        let mut records = Self {
            per_mailbox: per_mailbox.max(1),
            bucket_ms: (window_ms / BUCKETS_PER_WINDOW).max(1),
            records: HashMap::with_capacity(stored.len()),
            buckets: BTreeMap::new(),
            by_mailbox: HashMap::new(),
            next_serial: 0,
        };
        for (id, record) in stored {
            records.insert(id, record, Vec::new(), true);
        }
        records
    }

    /// The record of a send, if it is remembered.
    pub(super) fn get(&self, id: &ClientMessageId) -> Option<&SendRecord> {
        self.records.get(id).map(|entry| &entry.record)
    }

    /// How many records are remembered.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.records.len()
    }

    /// How many records count against `mailbox`.
    #[cfg(test)]
    pub(super) fn count_for(&self, mailbox: &MailboxId) -> usize {
        self.by_mailbox.get(mailbox).map_or(0, BTreeMap::len)
    }

    /// Remembers a send stored in `mailboxes`; `durable` when the store
    /// holds its record too. Returns the durable records it pushed out of a
    /// full mailbox, which the store must forget too.
    pub(super) fn insert(
        &mut self,
        id: ClientMessageId,
        record: SendRecord,
        mailboxes: Vec<MailboxId>,
        durable: bool,
    ) -> Vec<ClientMessageId> {
        self.remove(&id);
        let serial = self.next_serial;
        self.next_serial += 1;
        self.buckets
            .entry(self.bucket_of(record.expires_at))
            .or_default()
            .insert(id);
        let mut evicted = Vec::new();
        for mailbox in &mailboxes {
            self.by_mailbox
                .entry(*mailbox)
                .or_default()
                .insert(serial, id);
            // The newest record (this one) is never the oldest: the cap is
            // at least one.
            while let Some(oldest) = self.pop_over_cap(mailbox) {
                if self.remove(&oldest) {
                    evicted.push(oldest);
                }
            }
        }
        self.records.insert(
            id,
            Entry {
                record,
                serial,
                mailboxes: mailboxes.into_boxed_slice(),
                durable,
            },
        );
        evicted
    }

    /// Forgets the records of every bucket that has wholly expired by
    /// `now`, at most `limit` of them (the rest on the next call). Touches
    /// only those buckets.
    pub(super) fn expire(&mut self, now: Millis, limit: usize) -> Expired {
        let mut expired = Expired::default();
        while expired.forgotten < limit {
            let Some((bucket, ids)) = self.buckets.first_key_value() else {
                break;
            };
            let bucket = *bucket;
            if bucket.saturating_add(1).saturating_mul(self.bucket_ms) > now {
                break;
            }
            let room = limit - expired.forgotten;
            let ids: Vec<ClientMessageId> = ids.iter().take(room).copied().collect();
            for id in &ids {
                if self.remove(id) {
                    expired.durable.push(*id);
                }
            }
            self.forget_in_bucket(bucket, &ids);
            expired.forgotten += ids.len();
        }
        expired
    }

    /// Takes the oldest record of `mailbox` out of its index if the
    /// mailbox holds more than its cap.
    fn pop_over_cap(&mut self, mailbox: &MailboxId) -> Option<ClientMessageId> {
        let held = self.by_mailbox.get_mut(mailbox)?;
        if held.len() <= self.per_mailbox {
            return None;
        }
        held.pop_first().map(|(_, oldest)| oldest)
    }

    fn bucket_of(&self, expires_at: Millis) -> u64 {
        expires_at / self.bucket_ms
    }

    /// Takes `ids` out of a bucket, and the bucket out once it is empty.
    fn forget_in_bucket(&mut self, bucket: u64, ids: &[ClientMessageId]) {
        let Some(held) = self.buckets.get_mut(&bucket) else {
            return;
        };
        for id in ids {
            held.remove(id);
        }
        if held.is_empty() {
            self.buckets.remove(&bucket);
        }
    }

    /// Forgets one record everywhere it is indexed. True if it was durable.
    fn remove(&mut self, id: &ClientMessageId) -> bool {
        let Some(entry) = self.records.remove(id) else {
            return false;
        };
        self.forget_in_bucket(self.bucket_of(entry.record.expires_at), &[*id]);
        for mailbox in &entry.mailboxes {
            if let Some(held) = self.by_mailbox.get_mut(mailbox) {
                held.remove(&entry.serial);
                if held.is_empty() {
                    self.by_mailbox.remove(mailbox);
                }
            }
        }
        entry.durable
    }
}
