//! Lazy loading: running a request through the core when the core first
//! needs something read from the store (DESIGN.md section 4).
//!
//! The core keeps only mailboxes, tokens and prekey presence in memory from
//! the start. When a request needs a mailbox's envelope index (its owner
//! authenticates, a send is addressed to it) or a send record (a marked
//! retry), [`crate::core::RelayCore::handle_request`] returns
//! [`Outcome::Load`] with the request. [`handle_with_loads`] reads what it
//! names on a blocking thread, hands it to
//! [`crate::core::RelayCore::handle_loaded`], and runs the request again,
//! until the core answers or asks for a commit.

use std::sync::Arc;

use hearth_proto::relay::{self as pb, ErrorCode};
use tracing::warn;

use super::writer::PendingCommit;
use super::{Shell, now_ms};
use crate::core::{Outcome, error};
use crate::ids::ConnId;

/// Most loads one request may need. The core asks once per request in
/// practice (a load it was given is never asked for again); the bound only
/// stops a bug from looping.
const MAX_LOADS: usize = 4;

/// What became of a request.
#[derive(Debug)]
#[must_use]
pub(super) enum Handled {
    /// Answer with this now.
    Reply(pb::Response),
    /// Queued for the writer (in core order): answer with
    /// [`PendingCommit::answer`].
    Queued(PendingCommit),
}

/// Runs `request` from `conn` through the core, first loading from the store
/// whatever the core asks for. A commit is queued while the core's lock is
/// held, so commits still reach the store in core order. Expired envelopes
/// a load finds are deleted by a commit of their own, queued the same way
/// and not waited for.
pub(super) async fn handle_with_loads(
    shell: &Arc<Shell>,
    conn: ConnId,
    request: pb::Request,
) -> Handled {
    let mut request = request;
    for _ in 0..MAX_LOADS {
        let (mailboxes, send_record, again) = {
            let mut core = shell.core();
            match core.handle_request(conn, request, now_ms()) {
                Outcome::Reply(response) => return Handled::Reply(response),
                Outcome::Commit(commit) => return Handled::Queued(shell.writer.enqueue(commit)),
                Outcome::Load {
                    mailboxes,
                    send_record,
                    request,
                } => (mailboxes, send_record, request),
            }
        };
        let store = Arc::clone(&shell.store);
        let read =
            tokio::task::spawn_blocking(move || store.load_needed(&mailboxes, send_record)).await;
        let loaded = match read {
            Ok(Ok(loaded)) => loaded,
            Ok(Err(failure)) => {
                warn!(error = %failure, "could not load a mailbox from the store");
                return Handled::Reply(load_failed());
            }
            Err(failure) => {
                warn!(error = %failure, "the mailbox loader task failed");
                return Handled::Reply(load_failed());
            }
        };
        {
            let mut core = shell.core();
            if let Some(commit) = core.handle_loaded(loaded, now_ms()) {
                // Deleting expired envelopes needs no answer; a failure
                // stops the relay through the writer.
                drop(shell.writer.enqueue(commit));
            }
        }
        request = again;
    }
    warn!("a request kept asking for loads; answering with an error");
    Handled::Reply(load_failed())
}

/// Most expired stored send records one store scan hands over.
const RECORDS_PER_SCAN: usize = 4096;

/// Deletes the stored send records that expired and that the core does not
/// know (written before this start: records are not loaded at start). A
/// scan of every stored record: the sweep calls it about once an hour.
pub(super) async fn sweep_stored_send_records(shell: &Arc<Shell>) {
    loop {
        let store = Arc::clone(&shell.store);
        let now = now_ms();
        let scan = move || store.expired_send_records(now, RECORDS_PER_SCAN);
        let ids = match tokio::task::spawn_blocking(scan).await {
            Ok(Ok(ids)) => ids,
            Ok(Err(failure)) => {
                warn!(error = %failure, "could not scan stored send records");
                return;
            }
            Err(failure) => {
                warn!(error = %failure, "the send record scan failed");
                return;
            }
        };
        let full = ids.len() >= RECORDS_PER_SCAN;
        let pending = {
            let mut core = shell.core();
            core.handle_expired_send_records(ids)
                .map(|commit| shell.writer.enqueue(commit))
        };
        let Some(pending) = pending else { return };
        if let Err(failed) = pending.answer().await {
            warn!(error = %failed, "expired send records were not deleted");
            return;
        }
        if !full || shell.is_stopping() {
            return;
        }
    }
}

/// The answer when the store could not be read.
fn load_failed() -> pb::Response {
    error(
        ErrorCode::Internal,
        "the relay could not read the mailbox from its store",
    )
}
