//! Sending, acknowledging and expiring envelopes.

use std::collections::HashSet;

use hearth_proto::relay::{self as pb, ErrorCode, response::Kind};

use super::request::{Recipient, Send};
use super::{Outcome, Pending, RelayCore, Reply, not_owner, response};
use crate::ids::{BodyId, ConnId, MailboxId, Millis};
use crate::store::{Batch, BodyRef, EnvelopeMeta, EnvelopeRecord, Mutation, SendRecord};

const STORED: i32 = ErrorCode::Unspecified as i32;

/// Most send records one [`RelayCore::poll_expired`] forgets, so that one
/// call holds the core briefly; the shell calls again while there is more.
pub(super) const MAX_EXPIRED_RECORDS: usize = 4096;

fn send_result(results: &[i32]) -> pb::Response {
    let results = results
        .iter()
        .map(|&code| pb::RecipientResult { code })
        .collect();
    response(Kind::SendResult(pb::SendResult { results }))
}

impl RelayCore {
    /// Stores one body for every recipient whose token, quota and mailbox
    /// allow it; answers a result per recipient. A retried send (same client
    /// message id) stores nothing new and gets the original answer.
    pub(super) fn handle_send(&mut self, send: Send, now: Millis) -> Outcome {
        if let Some(record) = self.send_records.get(&send.id) {
            // Answer only once the original is durable: an empty commit is
            // ordered after it.
            let reply = Reply::Ready(send_result(&record.results));
            return self.commit(Batch::default(), Pending::default(), reply);
        }
        // A marked retry the relay no longer remembers may still wait in
        // one recipient's mailbox as an inline envelope (whose send record
        // lived in memory only): that recipient has it already.
        let already = if send.retry {
            self.find_inline(&send)
        } else {
            None
        };
        let mut seen = HashSet::new();
        let results: Vec<i32> = send
            .recipients
            .iter()
            .map(|r| {
                let size = (send.body.len() + r.sealed_header.len()) as u32;
                let code = if !seen.insert(r.mailbox) {
                    ErrorCode::BadRequest
                } else if Some(r.mailbox) == already {
                    ErrorCode::Unspecified
                } else {
                    self.admit(&r.mailbox, &r.token, size)
                };
                code as i32
            })
            .collect();
        let is_new = |(r, c): &(&Recipient, &i32)| **c == STORED && Some(r.mailbox) != already;
        let stored = send.recipients.iter().zip(&results).filter(is_new).count() as u32;
        if stored == 0 {
            let Some(found) = already else {
                return Outcome::Reply(send_result(&results));
            };
            let record = self.send_record(&results, now);
            self.send_records
                .insert(send.id, record, vec![found], false);
            // Answered after the original is durable, if it is not yet.
            let reply = Reply::Ready(send_result(&results));
            return self.commit(Batch::default(), Pending::default(), reply);
        }

        // A send stored once keeps its body inside the envelope: one key,
        // no reference count. Two or more share one counted body.
        let mut batch = Batch::default();
        let (body, inline_body) = if stored == 1 {
            (BodyRef::Inline(send.id), Some(send.body.clone()))
        } else {
            let body_id = BodyId(self.next_body);
            self.next_body += 1;
            self.body_refs.insert(body_id, stored);
            batch.push(Mutation::PutBody {
                id: body_id,
                bytes: send.body.clone(),
                refs: stored,
            });
            (BodyRef::Shared(body_id), None)
        };
        let mut pending = Pending::default();
        let mut stored_in = Vec::with_capacity(stored as usize + 1);
        stored_in.extend(already);
        let expires_at = now.saturating_add(self.config.envelope_ttl.as_millis() as u64);
        for (recipient, _) in send.recipients.iter().zip(&results).filter(is_new) {
            let Some(m) = self.mailboxes.get_mut(&recipient.mailbox) else {
                continue;
            };
            let (seq, reserved) = m.assign_seq();
            if let Some(record) = reserved {
                batch.push(Mutation::PutMailbox(recipient.mailbox, record));
            }
            let size = (send.body.len() + recipient.sealed_header.len()) as u32;
            let meta = EnvelopeMeta {
                body,
                stored_at: now,
                expires_at,
                size,
            };
            m.insert_waiting(seq, meta, false);
            let record = EnvelopeRecord {
                meta,
                sealed_header: recipient.sealed_header.clone(),
                body: inline_body.clone(),
            };
            batch.push(Mutation::PutEnvelope {
                mailbox: recipient.mailbox,
                seq,
                record,
            });
            pending.envelopes.push((recipient.mailbox, seq));
            stored_in.push(recipient.mailbox);
        }
        // Only a send stored for two or more writes its record: a send
        // stored once is found by its envelope (see `find_inline`).
        let durable = stored > 1;
        let record = self.send_record(&results, now);
        let forgotten = self
            .send_records
            .insert(send.id, record.clone(), stored_in, durable);
        for id in forgotten {
            batch.push(Mutation::DeleteSendRecord(id));
        }
        if durable {
            batch.push(Mutation::PutSendRecord(send.id, record));
        }
        self.commit(batch, pending, Reply::Ready(send_result(&results)))
    }

    /// The record of a send answered with `results` now.
    fn send_record(&self, results: &[i32], now: Millis) -> SendRecord {
        let ttl = self.config.send_record_ttl.as_millis() as u64;
        SendRecord {
            expires_at: now.saturating_add(ttl),
            results: results.to_vec(),
        }
    }

    /// The recipient whose mailbox holds an inline envelope of this send,
    /// if any: a scan of the recipients' envelope indexes, made only for a
    /// send marked as a retry whose record is not in memory.
    fn find_inline(&self, send: &Send) -> Option<MailboxId> {
        let inline = BodyRef::Inline(send.id);
        send.recipients.iter().map(|r| r.mailbox).find(|mailbox| {
            self.mailboxes
                .get(mailbox)
                .is_some_and(|m| m.waiting.values().any(|w| w.meta.body == inline))
        })
    }

    /// Whether one recipient can take an envelope of `size` bytes.
    fn admit(&self, mailbox: &MailboxId, token: &crate::ids::TokenHash, size: u32) -> ErrorCode {
        let Some(m) = self.mailboxes.get(mailbox) else {
            return ErrorCode::UnknownMailbox;
        };
        if !m.tokens.contains(token) {
            return ErrorCode::Unauthorized;
        }
        if m.is_full(
            size,
            self.config.mailbox_max_envelopes,
            self.config.mailbox_max_bytes,
        ) {
            return ErrorCode::MailboxFull;
        }
        ErrorCode::Unspecified
    }

    /// Deletes acknowledged envelopes of a mailbox `conn` owns: every one
    /// in flight on `conn` up to `through`, and each of `seqs`. Its answer
    /// (`Done`) is for the shell's bookkeeping: acks go unanswered on the
    /// wire unless they fail.
    pub(super) fn handle_ack(
        &mut self,
        conn: ConnId,
        mailbox: MailboxId,
        through: Option<u64>,
        seqs: &[u64],
    ) -> Outcome {
        if self.owned_mailbox(conn, mailbox).is_none() {
            return not_owner();
        }
        let mut acked: Vec<u64> = match through {
            Some(through) => self
                .conns
                .get(&conn)
                .and_then(|state| state.subscriptions.get(&mailbox))
                .map(|sub| {
                    sub.in_flight
                        .range(..=through)
                        .map(|(&seq, _)| seq)
                        .collect()
                })
                .unwrap_or_default(),
            None => Vec::new(),
        };
        acked.extend_from_slice(seqs);
        let mut batch = Batch::default();
        for seq in acked {
            self.delete_envelope(mailbox, seq, &mut batch);
        }
        let pending = Pending {
            wake: vec![conn],
            ..Pending::default()
        };
        self.commit(
            batch,
            pending,
            Reply::Ready(response(Kind::Done(pb::Done {}))),
        )
    }

    /// Removes a durable envelope everywhere in memory and records the
    /// deletes (and the body's new reference count) in `batch`.
    pub(super) fn delete_envelope(
        &mut self,
        mailbox: MailboxId,
        seq: u64,
        batch: &mut Batch,
    ) -> bool {
        let Some(m) = self.mailboxes.get_mut(&mailbox) else {
            return false;
        };
        let Some(meta) = m.remove_durable(seq) else {
            return false;
        };
        for conn in &m.subscribers {
            let Some(state) = self.conns.get_mut(conn) else {
                continue;
            };
            let sub = state.subscriptions.get_mut(&mailbox);
            if let Some(size) = sub.and_then(|sub| sub.in_flight.remove(&seq)) {
                state.in_flight -= 1;
                state.in_flight_bytes -= u64::from(size);
            }
        }
        batch.push(Mutation::DeleteEnvelope(mailbox, seq));
        // An inline body goes with its envelope.
        let BodyRef::Shared(body_id) = meta.body else {
            return true;
        };
        match self.body_refs.get_mut(&body_id) {
            Some(refs) if *refs > 1 => {
                *refs -= 1;
                batch.push(Mutation::SetBodyRefs(body_id, *refs));
            }
            _ => {
                self.body_refs.remove(&body_id);
                batch.push(Mutation::DeleteBody(body_id));
            }
        }
        true
    }

    /// Stored send records that expired (from
    /// `MailboxStore::expired_send_records`): the ones not in memory, which
    /// were written before this start, are deleted; the core expires the
    /// others itself. Commit the result like any other (nobody waits).
    pub fn handle_expired_send_records(
        &mut self,
        ids: Vec<crate::ids::ClientMessageId>,
    ) -> Option<super::Commit> {
        let mut batch = Batch::default();
        for id in ids {
            if self.send_records.get(&id).is_none() {
                batch.push(Mutation::DeleteSendRecord(id));
            }
        }
        if batch.is_empty() {
            return None;
        }
        let reply = Reply::Ready(response(Kind::Done(pb::Done {})));
        match self.commit(batch, Pending::default(), reply) {
            Outcome::Commit(commit) => Some(commit),
            _ => None,
        }
    }

    /// Expired envelopes and send records to delete, if any. Send records
    /// leave by whole expired buckets, a bounded number (4,096) per
    /// call: call again until it returns `None`.
    pub fn poll_expired(&mut self, now: Millis) -> Option<super::Commit> {
        let mut batch = Batch::default();
        let expired: Vec<(MailboxId, u64)> = self
            .mailboxes
            .iter()
            .flat_map(|(id, m)| {
                m.waiting
                    .iter()
                    .take_while(move |(_, w)| w.durable && w.meta.expires_at <= now)
                    .map(move |(seq, _)| (*id, *seq))
            })
            .collect();
        for (mailbox, seq) in expired {
            self.delete_envelope(mailbox, seq, &mut batch);
        }
        let records = self.send_records.expire(now, MAX_EXPIRED_RECORDS);
        for id in records.durable {
            batch.push(Mutation::DeleteSendRecord(id));
        }
        // Records kept in memory only leave without a write; an empty commit
        // still tells the shell to call again.
        if batch.is_empty() && records.forgotten == 0 {
            return None;
        }
        let reply = Reply::Ready(response(Kind::Done(pb::Done {})));
        match self.commit(batch, Pending::default(), reply) {
            Outcome::Commit(commit) => Some(commit),
            _ => None,
        }
    }
}
