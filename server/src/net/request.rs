//! Request streams (DESIGN.md section 3): a bidirectional stream carries
//! pipelined, length-delimited `Request` frames, each answered by a
//! `Response` frame with the request's id, in any order.
//!
//! A client keeps one such stream open for the life of its connection (its
//! control stream), and sends a large body on a stream of its own; the relay
//! serves both the same way, one task per stream:
//!
//! - frames are read as they arrive ([`FrameSplitter`]) and handed to the
//!   core one by one, in stream order, so commits reach the store in the
//!   order the client sent them;
//! - an answer that is ready at once (a refusal, a challenge) is queued
//!   right away; one that waits for the writer's fdatasync is awaited among
//!   the stream's other pending answers, so a request that waits for the
//!   disk never holds up the ones behind it;
//! - whatever answers are ready are written together, in one chunk;
//! - an `Ack` is not answered unless it fails.
//!
//! A frame whose length prefix is intact but whose content does not decode
//! is answered with `BAD_FRAME` (for its id when that can be read) and the
//! stream goes on; a broken or oversized prefix loses the stream's framing,
//! so the relay answers it with id 0 and stops reading that stream. Either
//! counts against the connection's bad frames, and a peer that keeps sending
//! them is disconnected.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::SystemTime;

use bytes::Bytes;
use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use hearth_proto::relay::{self as pb, ErrorCode};
use hearth_protocol::frame::{FrameError, FrameSplitter};
use prost::Message as _;
use quinn::{Connection, RecvStream, SendStream};
use tokio::sync::Notify;
use tracing::{debug, warn};

use super::load::{Handled, handle_with_loads};
use super::{CLOSE_BAD_FRAMES, CLOSE_SHUTTING_DOWN, Shell};
use crate::core::{RegistrationMode, RelayCore, error};
use crate::ids::ConnId;
use crate::registration::{Refresh, RegistrationError};

/// Most requests of one stream waiting for their answers; beyond it the
/// relay stops reading the stream until answers go out (back-pressure).
const MAX_PENDING_PER_STREAM: usize = 256;

/// An answer still waiting for the writer: the request id and the response.
type PendingAnswer = Pin<Box<dyn Future<Output = (u64, pb::Response)> + Send>>;

/// What one bidirectional stream's task needs from its connection.
#[derive(Clone)]
pub(super) struct StreamContext {
    pub(super) shell: Arc<Shell>,
    pub(super) conn: ConnId,
    pub(super) connection: Connection,
    /// The connection's delivery wake-up.
    pub(super) wake: Arc<Notify>,
}

/// Serves one bidirectional stream until the client finishes it (and every
/// answer is written), the stream fails, or the relay stops.
pub(super) async fn serve(context: StreamContext, (mut send, mut recv): (SendStream, RecvStream)) {
    let shell = Arc::clone(&context.shell);
    let mut splitter = FrameSplitter::new(shell.max_frame_bytes);
    let mut pending: FuturesUnordered<PendingAnswer> = FuturesUnordered::new();
    let mut out = Vec::new();
    let mut reading = true;
    let mut woken = false;
    loop {
        tokio::select! {
            biased;
            Some((id, response)) = pending.next(), if !pending.is_empty() => {
                queue(&mut out, id, response, &mut woken);
            }
            read = recv.read_chunk(splitter.room(), true),
                if reading && pending.len() < MAX_PENDING_PER_STREAM =>
            {
                match read {
                    Ok(Some(chunk)) => {
                        splitter.push(&chunk.bytes);
                        reading = take_frames(&context, &mut splitter, &mut pending, &mut out, &mut woken).await;
                        if !reading {
                            let _ = recv.stop(CLOSE_BAD_FRAMES);
                        }
                    }
                    Ok(None) => {
                        reading = false;
                        if splitter.buffered() > 0 {
                            debug!(conn = ?context.conn, "request stream ended inside a frame");
                            bad_frame(&context, 0, &FrameError::Truncated, &mut out);
                        }
                    }
                    Err(failure) => {
                        debug!(conn = ?context.conn, error = %failure, "request stream failed");
                        return;
                    }
                }
            }
            () = shell.stopped(), if reading => {
                reading = false;
                let _ = recv.stop(CLOSE_SHUTTING_DOWN);
            }
        }
        // Everything else already answered goes out in the same write.
        while let Some(Some((id, response))) = futures_util::FutureExt::now_or_never(pending.next())
        {
            queue(&mut out, id, response, &mut woken);
        }
        if !out.is_empty() {
            let chunk = Bytes::from(std::mem::take(&mut out));
            if let Err(failure) = send.write_chunk(chunk).await {
                debug!(conn = ?context.conn, error = %failure, "could not send responses");
                return;
            }
        }
        if woken {
            // Envelopes may be waiting for the mailbox just authenticated.
            context.wake.notify_one();
            woken = false;
        }
        if !reading && pending.is_empty() {
            // Fails only if the peer already stopped the stream.
            let _ = send.finish();
            return;
        }
    }
}

/// Handles every whole frame the splitter holds. False once the stream's
/// framing is lost (the caller stops reading it).
async fn take_frames(
    context: &StreamContext,
    splitter: &mut FrameSplitter,
    pending: &mut FuturesUnordered<PendingAnswer>,
    out: &mut Vec<u8>,
    woken: &mut bool,
) -> bool {
    loop {
        match splitter.next_frame() {
            Ok(Some(frame)) => match decode_request(frame) {
                Ok(request) => handle(context, request, pending, out, woken).await,
                Err((id, bad)) => bad_frame(context, id, &bad, out),
            },
            Ok(None) => return true,
            Err(bad) => {
                debug!(conn = ?context.conn, error = %bad, "request stream framing lost");
                bad_frame(context, 0, &bad, out);
                return false;
            }
        }
    }
}

/// Runs one decoded request through the core: its answer is queued at
/// once or joins the pending ones.
async fn handle(
    context: &StreamContext,
    request: pb::Request,
    pending: &mut FuturesUnordered<PendingAnswer>,
    out: &mut Vec<u8>,
    woken: &mut bool,
) {
    let shell = &context.shell;
    let id = request.id;
    let is_ack = matches!(request.kind, Some(pb::request::Kind::Ack(_)));
    if shell.registration == RegistrationMode::Token
        && RelayCore::is_registration(&request)
        && !refresh_registration_tokens(shell).await
    {
        let refused = error(
            ErrorCode::Internal,
            "the relay could not read its registration tokens",
        );
        queue(out, id, refused, woken);
        return;
    }
    // Loads what the core needs first; commits are queued under the lock,
    // so they reach the store in core order.
    let commit = match handle_with_loads(shell, context.conn, request).await {
        Handled::Reply(response) => Err(response),
        Handled::Queued(pending) => Ok(pending),
    };
    match commit {
        Err(response) => queue(out, id, response, woken),
        // Deleting acknowledged envelopes needs no answer; a failed commit
        // stops the relay, and the envelopes come again after a restart.
        Ok(_) if is_ack => {}
        Ok(commit) => {
            let in_flight = shell.requests.enter();
            pending.push(Box::pin(async move {
                let _in_flight = in_flight;
                let response = commit
                    .answer()
                    .await
                    .unwrap_or_else(|failed| failed.response());
                (id, response)
            }));
        }
    }
}

/// Appends `response`, answering request `id`, to the bytes to write.
fn queue(out: &mut Vec<u8>, id: u64, mut response: pb::Response, woken: &mut bool) {
    if matches!(
        response.kind,
        Some(pb::response::Kind::Authenticated(_) | pb::response::Kind::Registered(_))
    ) {
        *woken = true;
    }
    response.id = id;
    response
        .encode_length_delimited(out)
        .unwrap_or_else(|_| unreachable!("a Vec grows as needed"));
}

/// Answers a frame that did not decode, and closes the connection if the
/// peer keeps sending them.
fn bad_frame(context: &StreamContext, id: u64, bad: &FrameError, out: &mut Vec<u8>) {
    debug!(conn = ?context.conn, error = %bad, "malformed request frame");
    let verdict = context.shell.core().handle_bad_frame(context.conn, bad);
    queue(out, id, verdict.response, &mut false);
    if verdict.close {
        debug!(conn = ?context.conn, "closing a connection that keeps sending malformed frames");
        context
            .connection
            .close(CLOSE_BAD_FRAMES, b"too many malformed frames");
    }
}

/// Just a request's id, read from a frame whose other fields may be
/// garbled (unknown fields are skipped).
#[derive(Clone, PartialEq, prost::Message)]
struct RequestId {
    #[prost(uint64, tag = "2")]
    id: u64,
}

/// Decodes one frame's payload without copying (bodies and sealed headers
/// share the frame's buffer). On failure, the request's id if it could be
/// read (else 0) and why.
fn decode_request(payload: Bytes) -> Result<pb::Request, (u64, FrameError)> {
    pb::Request::decode(payload.clone()).map_err(|_| {
        let id = RequestId::decode(payload).map_or(0, |header| header.id);
        (id, FrameError::BadMessage)
    })
}

/// Brings the core's registration tokens up to date with the operator's
/// token folder (tokens may have been issued or revoked since the last
/// registration), reading the folder only if it changed. False if it could
/// not be read.
async fn refresh_registration_tokens(shell: &Arc<Shell>) -> bool {
    let shell = Arc::clone(shell);
    let refreshed = tokio::task::spawn_blocking(move || {
        // Held until the core has the tokens, so that a concurrent
        // registration that finds the folder unchanged sees them too.
        let mut folder = shell
            .token_folder
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let refresh = folder.refresh(SystemTime::now())?;
        if let Refresh::Read(tokens) = refresh {
            shell.core().handle_registration_tokens(tokens);
        }
        Ok::<(), RegistrationError>(())
    })
    .await;
    match refreshed {
        Ok(Ok(())) => true,
        Ok(Err(failure)) => {
            warn!(error = %failure, "could not read registration tokens");
            false
        }
        Err(failure) => {
            warn!(error = %failure, "registration token reader failed");
            false
        }
    }
}

/// Counts requests waiting for their answers, so that shutdown can wait for
/// them.
#[derive(Debug, Default)]
pub(crate) struct RequestsInFlight {
    count: Arc<AtomicUsize>,
    idle: Arc<Notify>,
}

/// Held while a request waits for its answer.
#[derive(Debug)]
pub(crate) struct InFlight {
    count: Arc<AtomicUsize>,
    idle: Arc<Notify>,
}

impl RequestsInFlight {
    /// Counts a request until the guard drops.
    pub(crate) fn enter(&self) -> InFlight {
        self.count.fetch_add(1, Ordering::SeqCst);
        InFlight {
            count: Arc::clone(&self.count),
            idle: Arc::clone(&self.idle),
        }
    }

    /// Requests waiting now.
    pub(crate) fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// Waits until no request waits.
    pub(crate) async fn idle(&self) {
        loop {
            let notified = self.idle.notified();
            let mut notified = std::pin::pin!(notified);
            // Registered before the check, so a wake-up in between is kept.
            notified.as_mut().enable();
            if self.count() == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.idle.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_decodes_without_copying_its_body() {
        let request = pb::Request {
            id: 7,
            kind: Some(pb::request::Kind::Send(pb::Send {
                body: Bytes::from(vec![7u8; 300]),
                ..Default::default()
            })),
            ..Default::default()
        };
        let payload = Bytes::from(request.encode_to_vec());
        let range = payload.as_ptr_range();
        let decoded = decode_request(payload).unwrap();
        assert_eq!(decoded, request);
        let Some(pb::request::Kind::Send(send)) = decoded.kind else {
            panic!("decoded another kind");
        };
        assert!(
            range.contains(&send.body.as_ptr()),
            "the body is a view of the frame, not a copy"
        );
    }

    #[test]
    fn a_garbled_request_is_refused_with_its_id_when_readable() {
        // Field 2 (the id) intact, then field 10 holding a broken message.
        let mut garbled = RequestId { id: 42 }.encode_to_vec();
        garbled.extend_from_slice(&[0x52, 0x01, 0xff]);
        assert_eq!(
            decode_request(Bytes::from(garbled)),
            Err((42, FrameError::BadMessage))
        );
        assert_eq!(
            decode_request(Bytes::from_static(&[0xff, 0xff])),
            Err((0, FrameError::BadMessage))
        );
    }

    #[test]
    fn responses_carry_their_request_id_and_frame_back_to_back() {
        let mut out = Vec::new();
        let mut woken = false;
        queue(&mut out, 3, error(ErrorCode::BadRequest, "no"), &mut woken);
        assert!(!woken);
        let authenticated =
            crate::core::response(pb::response::Kind::Authenticated(pb::Authenticated {}));
        queue(&mut out, 4, authenticated, &mut woken);
        assert!(woken, "an authentication wakes the delivery task");
        let mut splitter = FrameSplitter::new(1024);
        splitter.push(&out);
        let ids: Vec<u64> = std::iter::from_fn(|| splitter.next_frame().unwrap())
            .map(|frame| pb::Response::decode(frame).unwrap().id)
            .collect();
        assert_eq!(ids, [3, 4]);
    }

    #[tokio::test]
    async fn idle_waits_for_every_request_to_finish() {
        let requests = Arc::new(RequestsInFlight::default());
        let guard = requests.enter();
        assert_eq!(requests.count(), 1);
        let idle =
            tokio::time::timeout(std::time::Duration::from_millis(50), requests.idle()).await;
        assert!(idle.is_err(), "idle while a request waits");
        let waiter = {
            let requests = Arc::clone(&requests);
            tokio::spawn(async move { requests.idle().await })
        };
        drop(guard);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(requests.count(), 0);
    }
}
