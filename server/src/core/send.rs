//! Sending, acknowledging and expiring envelopes.

use std::collections::HashSet;

use hearth_proto::relay::{self as pb, ErrorCode, response::Kind};

use super::request::Send;
use super::{Outcome, Pending, RelayCore, Reply, not_owner, response};
use crate::ids::{BodyId, ConnId, MailboxId, Millis};
use crate::store::{Batch, EnvelopeMeta, EnvelopeRecord, Mutation, SendRecord};

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
        let mut seen = HashSet::new();
        let results: Vec<i32> = send
            .recipients
            .iter()
            .map(|r| {
                let size = (send.body.len() + r.sealed_header.len()) as u32;
                let code = if !seen.insert(r.mailbox) {
                    ErrorCode::BadRequest
                } else {
                    self.admit(&r.mailbox, &r.token, size)
                };
                code as i32
            })
            .collect();
        let stored = results.iter().filter(|&&c| c == STORED).count() as u32;
        if stored == 0 {
            return Outcome::Reply(send_result(&results));
        }

        let body_id = BodyId(self.next_body);
        self.next_body += 1;
        self.body_refs.insert(body_id, stored);
        let mut batch = Batch::default();
        batch.push(Mutation::PutBody {
            id: body_id,
            bytes: send.body.clone(),
            refs: stored,
        });
        let mut pending = Pending::default();
        let mut stored_in = Vec::with_capacity(stored as usize);
        let expires_at = now.saturating_add(self.config.envelope_ttl.as_millis() as u64);
        for (recipient, _) in send
            .recipients
            .iter()
            .zip(&results)
            .filter(|(_, c)| **c == STORED)
        {
            let Some(m) = self.mailboxes.get_mut(&recipient.mailbox) else {
                continue;
            };
            let seq = m.record.next_seq;
            m.record.next_seq += 1;
            let size = (send.body.len() + recipient.sealed_header.len()) as u32;
            let meta = EnvelopeMeta {
                body_id,
                stored_at: now,
                expires_at,
                size,
            };
            m.insert_waiting(seq, meta, false);
            batch.push(Mutation::PutMailbox(recipient.mailbox, m.record.clone()));
            let record = EnvelopeRecord {
                meta,
                sealed_header: recipient.sealed_header.clone(),
            };
            batch.push(Mutation::PutEnvelope {
                mailbox: recipient.mailbox,
                seq,
                record,
            });
            pending.envelopes.push((recipient.mailbox, seq));
            stored_in.push(recipient.mailbox);
        }
        let record_expires = now.saturating_add(self.config.send_record_ttl.as_millis() as u64);
        let record = SendRecord {
            expires_at: record_expires,
            results: results.clone(),
        };
        for forgotten in self.send_records.insert(send.id, record.clone(), stored_in) {
            batch.push(Mutation::DeleteSendRecord(forgotten));
        }
        batch.push(Mutation::PutSendRecord(send.id, record));
        self.commit(batch, pending, Reply::Ready(send_result(&results)))
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
    fn delete_envelope(&mut self, mailbox: MailboxId, seq: u64, batch: &mut Batch) -> bool {
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
        match self.body_refs.get_mut(&meta.body_id) {
            Some(refs) if *refs > 1 => {
                *refs -= 1;
                batch.push(Mutation::SetBodyRefs(meta.body_id, *refs));
            }
            _ => {
                self.body_refs.remove(&meta.body_id);
                batch.push(Mutation::DeleteBody(meta.body_id));
            }
        }
        true
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
        for id in self.send_records.expire(now, MAX_EXPIRED_RECORDS) {
            batch.push(Mutation::DeleteSendRecord(id));
        }
        if batch.is_empty() {
            return None;
        }
        let reply = Reply::Ready(response(Kind::Done(pb::Done {})));
        match self.commit(batch, Pending::default(), reply) {
            Outcome::Commit(commit) => Some(commit),
            Outcome::Reply(_) => None,
        }
    }
}
