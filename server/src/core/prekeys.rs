//! The prekey directory: owners publish, holders of a send token fetch.

use hearth_proto::relay::{self as pb, ErrorCode, response::Kind};

use super::rate::Bucket;
use super::request::Publish;
use super::{
    Outcome, Pending, PrekeyPlan, RelayCore, Reply, done, not_owner, reply_error, response,
};
use crate::ids::{ConnId, MailboxId, Millis, PrekeyKind, TokenHash};
use crate::store::{Batch, Mutation};

impl RelayCore {
    /// Publishes (or tops up) the prekey bundle of a mailbox `conn` owns.
    pub(super) fn handle_publish(&mut self, conn: ConnId, publish: Publish) -> Outcome {
        let max = self.config.max_prekeys_per_kind;
        let Some(m) = self.owned_mailbox(conn, publish.mailbox) else {
            return not_owner();
        };
        let prekeys = &mut m.prekeys;
        if prekeys.one_time.len() + publish.one_time.len() > max
            || prekeys.one_time_pq.len() + publish.one_time_pq.len() > max
        {
            return reply_error(
                ErrorCode::BadRequest,
                "too many one-time prekeys for one mailbox",
            );
        }
        if prekeys.signed_bundle.is_none() && publish.signed_bundle.is_none() {
            return reply_error(
                ErrorCode::BadRequest,
                "the first publish needs a signed bundle",
            );
        }
        let mailbox = publish.mailbox;
        let mut batch = Batch::default();
        let mut pending = Pending::default();
        if let Some(bundle) = publish.signed_bundle {
            prekeys.signed_bundle.get_or_insert(false);
            batch.push(Mutation::PutSignedBundle(mailbox, bundle));
            pending.signed_bundles.push(mailbox);
        }
        if let Some(key) = publish.last_resort {
            prekeys.last_resort.get_or_insert(false);
            batch.push(Mutation::PutLastResort(mailbox, key));
            pending.last_resorts.push(mailbox);
        }
        let queues = [
            (PrekeyKind::OneTimeX25519, publish.one_time),
            (PrekeyKind::OneTimePq, publish.one_time_pq),
        ];
        for (kind, keys) in queues {
            for key in keys {
                let index = prekeys.next_index;
                prekeys.next_index += 1;
                prekeys.queue_mut(kind).push(index, false);
                batch.push(Mutation::PutPrekey(mailbox, kind, index, key));
                pending.prekeys.push((mailbox, kind, index));
            }
        }
        self.commit(batch, pending, done())
    }

    /// Hands out the bundle with one one-time prekey of each kind (the
    /// last-resort ML-KEM prekey when none is left), consuming them.
    pub(super) fn handle_fetch(
        &mut self,
        mailbox: MailboxId,
        token: TokenHash,
        now: Millis,
    ) -> Outcome {
        let limit = self.config.prekey_fetch_limit;
        let Some(m) = self.mailboxes.get_mut(&mailbox) else {
            return reply_error(ErrorCode::UnknownMailbox, "no such mailbox on this relay");
        };
        if !m.tokens.contains(&token) {
            return reply_error(
                ErrorCode::Unauthorized,
                "send token is not valid for this mailbox",
            );
        }
        let prekeys = &mut m.prekeys;
        let pq_available = prekeys.one_time_pq.peek_durable() || prekeys.last_resort == Some(true);
        if prekeys.signed_bundle != Some(true) || !pq_available {
            return reply_error(
                ErrorCode::NoPrekeys,
                "the mailbox has not published prekeys",
            );
        }
        if !m
            .fetch_limit
            .get_or_insert_with(|| Bucket::full(limit, now))
            .try_take(limit, now)
        {
            return reply_error(
                ErrorCode::RateLimited,
                "too many prekey fetches for this mailbox",
            );
        }
        let prekeys = &mut m.prekeys;
        let plan = PrekeyPlan {
            mailbox,
            one_time: prekeys.one_time.take(),
            one_time_pq: prekeys.one_time_pq.take(),
        };
        let mut batch = Batch::default();
        for (kind, index) in plan.reads() {
            batch.push(Mutation::DeletePrekey(mailbox, kind, index));
        }
        self.commit(batch, Pending::default(), Reply::Prekeys(plan))
    }

    /// How many one-time prekeys a mailbox `conn` owns has left.
    pub(super) fn handle_prekey_counts(&mut self, conn: ConnId, mailbox: MailboxId) -> Outcome {
        let Some(m) = self.owned_mailbox(conn, mailbox) else {
            return not_owner();
        };
        let counts = pb::PrekeyCountsResult {
            one_time_prekeys: m.prekeys.one_time.len() as u32,
            one_time_pq_prekeys: m.prekeys.one_time_pq.len() as u32,
            has_last_resort: m.prekeys.last_resort.is_some(),
        };
        Outcome::Reply(response(Kind::PrekeyCounts(counts)))
    }
}
