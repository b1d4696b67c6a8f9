//! What the core asks its shell to do after an input.

use hearth_proto::relay::{self as pb, ErrorCode};

use crate::ids::{ClientMessageId, MailboxId, PrekeyKind};
use crate::store::{Batch, EnvelopeMeta};

/// Identifies a batch handed to the shell for commit; the shell reports it
/// back through [`super::RelayCore::handle_committed`] once durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ticket(pub u64);

/// The result of [`super::RelayCore::handle_request`].
#[derive(Debug)]
#[must_use]
pub enum Outcome {
    /// Answer at once; nothing changed durably.
    Reply(pb::Response),
    /// Commit the batch durably, report the ticket, then answer.
    Commit(Commit),
    /// Read these from the store first (`MailboxStore::load_needed`, on a
    /// blocking thread), hand the result to
    /// [`super::RelayCore::handle_loaded`], then call
    /// [`super::RelayCore::handle_request`] again with `request`. Nothing
    /// changed yet.
    Load {
        /// Mailboxes whose envelope index must be loaded.
        mailboxes: Vec<MailboxId>,
        /// A send record to look up by a point read.
        send_record: Option<ClientMessageId>,
        /// The request, to run again once loaded.
        request: pb::Request,
    },
}

/// A change to commit before answering.
#[derive(Debug)]
#[must_use]
pub struct Commit {
    /// Report this to `handle_committed` after the batch is durable.
    pub ticket: Ticket,
    /// What to write (may be empty: then the answer still waits for the
    /// commits queued before it, e.g. a retried send waits for the original).
    pub batch: Batch,
    /// What to answer once the batch is durable.
    pub reply: Reply,
}

/// The answer to a committed request.
#[derive(Debug)]
pub enum Reply {
    /// A finished response.
    Ready(pb::Response),
    /// A prekey fetch: read these from the store (before committing the
    /// batch that deletes the one-time prekeys), then answer with
    /// [`PrekeyPlan::response`].
    Prekeys(PrekeyPlan),
}

/// Which stored prekeys a fetch hands out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrekeyPlan {
    /// The mailbox whose bundle is fetched.
    pub mailbox: MailboxId,
    /// The one-time X25519 prekey taken, if any were left.
    pub one_time: Option<u64>,
    /// The one-time ML-KEM prekey taken; `None` means the last-resort one.
    pub one_time_pq: Option<u64>,
}

impl PrekeyPlan {
    /// The stored keys this plan needs, for the shell to read.
    pub fn reads(&self) -> impl Iterator<Item = (PrekeyKind, u64)> + use<> {
        let otk = self.one_time.map(|i| (PrekeyKind::OneTimeX25519, i));
        let pq = self.one_time_pq.map(|i| (PrekeyKind::OneTimePq, i));
        otk.into_iter().chain(pq)
    }

    /// Builds the answer from what the shell read. Missing pieces (which
    /// would mean the store lost data) are an `INTERNAL` error.
    pub fn response(
        &self,
        signed_bundle: Option<bytes::Bytes>,
        one_time: Option<bytes::Bytes>,
        pq: Option<bytes::Bytes>,
    ) -> pb::Response {
        let (Some(signed_bundle), Some(pq_prekey)) = (signed_bundle, pq) else {
            return error(ErrorCode::Internal, "stored prekey bundle is incomplete");
        };
        if self.one_time.is_some() && one_time.is_none() {
            return error(ErrorCode::Internal, "stored one-time prekey is missing");
        }
        response(pb::response::Kind::PrekeyBundle(pb::PrekeyBundle {
            signed_bundle,
            one_time_prekey: one_time.unwrap_or_default(),
            pq_prekey,
            pq_is_last_resort: self.one_time_pq.is_none(),
        }))
    }
}

/// Envelopes to deliver on one connection, in FIFO order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryPlan {
    /// Their mailbox.
    pub mailbox: MailboxId,
    /// Sequence numbers and metadata, ascending.
    pub envelopes: Vec<(u64, EnvelopeMeta)>,
}

/// A response carrying `kind`. Its request id is the shell's to set: the
/// core never sees ids.
pub fn response(kind: pb::response::Kind) -> pb::Response {
    pb::Response {
        id: 0,
        kind: Some(kind),
    }
}

/// An error response. `message` must never hold content, tokens or keys.
pub fn error(code: ErrorCode, message: impl Into<String>) -> pb::Response {
    response(pb::response::Kind::Error(pb::Error {
        code: code.into(),
        message: message.into(),
    }))
}
