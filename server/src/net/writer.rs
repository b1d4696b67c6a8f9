//! The store's single writer: group commit (DESIGN.md section 4).
//!
//! One dedicated thread owns every write to the store. It blocks until a
//! commit is queued, then takes every other commit already waiting (there is
//! no timer, so a lone commit waits for nobody), writes them with one
//! [`MailboxStore::commit`] (one fdatasync), puts the envelopes it stored in
//! the hot cache (`net/hot.rs`), reports the group's tickets to the core in
//! queue order, and only then answers every waiter.
//!
//! Commits must reach the store in the order the core returned them, so the
//! shell queues a commit while it still holds the core's lock; the queue
//! never blocks. A prekey fetch reads the keys it hands out on this thread,
//! just before the group that deletes them is written: reading here keeps
//! both promises at once (read before delete, commit in core order).
//!
//! If the store fails to commit, whether the group reached the disk is
//! unknown and the core's view may no longer match it. The writer answers
//! every waiter of that group with [`CommitFailed::Store`], reports the
//! failure, and stops: the relay shuts down, and restarting from the store is
//! the only state known to be true. Commits queued after the failure are
//! answered with [`CommitFailed::Stopped`].

use std::sync::Arc;
use std::sync::mpsc;

use hearth_proto::relay::{self as pb, ErrorCode};
use tokio::sync::oneshot;
use tracing::{error, warn};

use super::hot::HotEnvelopes;
use crate::core::{Commit, PrekeyPlan, Reply, Ticket, error};
use crate::ids::PrekeyKind;
use crate::store::{Batch, MailboxStore, StoreError};

/// Why a queued commit was not answered with its response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CommitFailed {
    /// The store failed to commit the group this commit was in; the relay is
    /// stopping.
    #[error("the store failed to commit")]
    Store,
    /// The writer had stopped (shutdown, or an earlier store failure) before
    /// this commit was written.
    #[error("the writer has stopped")]
    Stopped,
}

impl CommitFailed {
    /// The error response a client gets instead of its answer.
    pub(crate) fn response(self) -> pb::Response {
        match self {
            Self::Store => error(ErrorCode::Internal, "the relay could not store the request"),
            Self::Stopped => error(ErrorCode::ShuttingDown, "relay shutting down"),
        }
    }
}

/// What a waiter receives: the response to send, or why there is none.
type Answer = Result<pb::Response, CommitFailed>;

/// One queued commit.
#[derive(Debug)]
struct CommitJob {
    ticket: Ticket,
    batch: Batch,
    reply: Reply,
    answer: oneshot::Sender<Answer>,
}

/// A message to the writer thread.
#[derive(Debug)]
enum Job {
    Commit(CommitJob),
    /// Finish everything queued before this, then exit.
    Stop,
}

/// Called on the writer thread with the tickets of a group, in queue order,
/// once the group is durable (the shell reports them to the core and wakes
/// deliveries).
pub(crate) type OnCommitted = Box<dyn FnMut(&[Ticket]) + Send>;

/// Called once on the writer thread when the store failed to commit.
pub(crate) type OnFailure = Box<dyn FnOnce() + Send>;

/// The queue to the writer thread. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct Writer {
    jobs: mpsc::Sender<Job>,
}

/// Resolves when the writer thread has exited (and dropped its store handle).
#[derive(Debug)]
pub(crate) struct WriterThread {
    finished: oneshot::Receiver<()>,
}

impl WriterThread {
    /// Waits until the thread has exited.
    pub(crate) async fn finished(self) {
        // The sender is never used: it is dropped when the thread exits.
        let _ = self.finished.await;
    }
}

/// A commit in the queue; [`PendingCommit::answer`] waits for its outcome.
#[derive(Debug)]
#[must_use]
pub(crate) struct PendingCommit(Result<oneshot::Receiver<Answer>, CommitFailed>);

impl PendingCommit {
    /// Waits until the commit is durable and returns its response.
    pub(crate) async fn answer(self) -> Answer {
        let receiver = self.0?;
        receiver.await.unwrap_or(Err(CommitFailed::Stopped))
    }
}

impl Writer {
    /// Starts the writer thread. Each durable group is recorded in `hot`
    /// before its tickets are reported.
    pub(crate) fn spawn(
        store: Arc<dyn MailboxStore>,
        hot: Arc<HotEnvelopes>,
        on_committed: OnCommitted,
        on_failure: OnFailure,
    ) -> std::io::Result<(Writer, WriterThread)> {
        let (jobs, queue) = mpsc::channel();
        let (finished_tx, finished) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("hearth-store-writer".to_owned())
            .spawn(move || {
                run(&queue, store.as_ref(), &hot, on_committed, on_failure);
                // Dropped last, after the store handle: shutdown waits for this.
                drop(finished_tx);
            })?;
        Ok((Writer { jobs }, WriterThread { finished }))
    }

    /// Queues a commit. Never blocks: call it while holding the core's lock,
    /// so that commits reach the store in the order the core made them.
    pub(crate) fn enqueue(&self, commit: Commit) -> PendingCommit {
        let (answer, receiver) = oneshot::channel();
        let Commit {
            ticket,
            batch,
            reply,
        } = commit;
        let job = Job::Commit(CommitJob {
            ticket,
            batch,
            reply,
            answer,
        });
        PendingCommit(
            self.jobs
                .send(job)
                .map(|()| receiver)
                .map_err(|_| CommitFailed::Stopped),
        )
    }

    /// Asks the writer to commit and answer everything queued so far, then
    /// exit. Later commits are answered with [`CommitFailed::Stopped`].
    pub(crate) fn stop(&self) {
        // An error means the writer already exited: nothing left to drain.
        let _ = self.jobs.send(Job::Stop);
    }
}

/// The writer thread's loop.
fn run(
    queue: &mpsc::Receiver<Job>,
    store: &dyn MailboxStore,
    hot: &HotEnvelopes,
    mut on_committed: OnCommitted,
    on_failure: OnFailure,
) {
    while let Ok(first) = queue.recv() {
        let (group, stop) = take_group(first, queue);
        if let Err(failure) = commit_group(store, hot, group, &mut on_committed) {
            error!(error = %failure, "store commit failed; stopping the relay");
            on_failure();
            return;
        }
        if stop {
            return;
        }
    }
}

/// The first job plus every commit already queued behind it, up to a stop.
fn take_group(first: Job, queue: &mpsc::Receiver<Job>) -> (Vec<CommitJob>, bool) {
    let mut group = Vec::new();
    let mut next = Some(first);
    while let Some(job) = next {
        match job {
            Job::Commit(commit) => group.push(commit),
            Job::Stop => return (group, true),
        }
        next = queue.try_recv().ok();
    }
    (group, false)
}

/// Writes one group durably, records it in the hot cache, reports its
/// tickets in order, answers its waiters.
fn commit_group(
    store: &dyn MailboxStore,
    hot: &HotEnvelopes,
    group: Vec<CommitJob>,
    on_committed: &mut OnCommitted,
) -> Result<(), StoreError> {
    let mut batches = Vec::with_capacity(group.len());
    let mut tickets = Vec::with_capacity(group.len());
    let mut waiters = Vec::with_capacity(group.len());
    for job in group {
        // A prekey fetch reads the keys its own batch is about to delete.
        let response = resolve_reply(store, job.reply);
        if !job.batch.is_empty() {
            batches.push(job.batch);
        }
        tickets.push(job.ticket);
        waiters.push((job.answer, response));
    }
    // Empty batches only wait for the commits queued before them, which are
    // durable by now: no write is needed when the whole group is empty.
    if !batches.is_empty()
        && let Err(failure) = store.commit(&batches)
    {
        for (answer, _) in waiters {
            let _ = answer.send(Err(CommitFailed::Store));
        }
        return Err(failure);
    }
    // Deliveries of this group's envelopes start once the core knows them
    // durable, and find them in the cache.
    hot.apply(&batches);
    on_committed(&tickets);
    for (answer, response) in waiters {
        // The requester may have gone away; its answer is then moot.
        let _ = answer.send(Ok(response));
    }
    Ok(())
}

/// The response a committed request gets.
fn resolve_reply(store: &dyn MailboxStore, reply: Reply) -> pb::Response {
    match reply {
        Reply::Ready(response) => response,
        Reply::Prekeys(plan) => prekey_response(store, &plan).unwrap_or_else(|failure| {
            warn!(error = %failure, "could not read prekeys for a fetch");
            error(
                ErrorCode::Internal,
                "the relay could not read the prekey bundle",
            )
        }),
    }
}

/// Reads what a prekey fetch hands out and builds its answer.
fn prekey_response(
    store: &dyn MailboxStore,
    plan: &PrekeyPlan,
) -> Result<pb::Response, StoreError> {
    let signed_bundle = store.read_signed_bundle(&plan.mailbox)?;
    let mut one_time = None;
    let mut pq = None;
    for (kind, index) in plan.reads() {
        let key = store.read_prekey(&plan.mailbox, kind, index)?;
        match kind {
            PrekeyKind::OneTimeX25519 => one_time = key,
            PrekeyKind::OneTimePq => pq = key,
        }
    }
    if plan.one_time_pq.is_none() {
        pq = store.read_last_resort(&plan.mailbox)?;
    }
    Ok(plan.response(signed_bundle, one_time, pq))
}

#[cfg(test)]
mod tests;
