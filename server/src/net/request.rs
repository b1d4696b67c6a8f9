//! One request: a bidirectional stream carrying one length-delimited
//! `Request` frame; the relay answers with one `Response` frame and finishes
//! (DESIGN.md section 3).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::SystemTime;

use bytes::Bytes;
use hearth_proto::relay::{self as pb, ErrorCode};
use hearth_protocol::frame::{self, FrameError};
use prost::Message as _;
use quinn::{Connection, RecvStream, SendStream};
use tokio::sync::Notify;
use tracing::{debug, warn};

use super::load::{Handled, handle_with_loads};
use super::{CLOSE_BAD_FRAMES, Shell};
use crate::core::{RegistrationMode, RelayCore, error};
use crate::ids::ConnId;
use crate::registration::{Refresh, RegistrationError};

/// Serves one request stream. `wake` is the connection's delivery wake-up.
pub(super) async fn serve(
    shell: Arc<Shell>,
    conn: ConnId,
    connection: Connection,
    wake: Arc<Notify>,
    (mut send, mut recv): (SendStream, RecvStream),
) {
    let _in_flight = shell.requests.enter();
    let read = tokio::select! {
        read = read_frame(&mut recv, shell.max_frame_bytes) => read,
        () = shell.stopped() => {
            let _ = recv.stop(super::CLOSE_SHUTTING_DOWN);
            respond(&mut send, &error(ErrorCode::ShuttingDown, "relay shutting down")).await;
            return;
        }
    };
    let response = match read {
        Ok(Ok(bytes)) => match decode_request(bytes, shell.max_frame_bytes) {
            Ok(request) => answer(&shell, conn, request).await,
            Err(bad) => return bad_frame(&shell, conn, &connection, &mut send, &bad).await,
        },
        Ok(Err(bad)) => {
            let _ = recv.stop(super::CLOSE_BAD_FRAMES);
            return bad_frame(&shell, conn, &connection, &mut send, &bad).await;
        }
        Err(failure) => {
            debug!(?conn, error = %failure, "request stream failed");
            return;
        }
    };
    respond(&mut send, &response).await;
    if matches!(
        response.kind,
        Some(pb::response::Kind::Authenticated(_) | pb::response::Kind::Registered(_))
    ) {
        // Envelopes may be waiting for the mailbox just authenticated.
        wake.notify_one();
    }
}

/// Runs a decoded request through the core (and the writer, if it changes
/// durable state) and returns its answer.
async fn answer(shell: &Arc<Shell>, conn: ConnId, request: pb::Request) -> pb::Response {
    if shell.registration == RegistrationMode::Token
        && RelayCore::is_registration(&request)
        && !refresh_registration_tokens(shell).await
    {
        return error(
            ErrorCode::Internal,
            "the relay could not read its registration tokens",
        );
    }
    // Loads what the core needs first; commits are queued under the lock,
    // so they reach the store in core order.
    let pending = match handle_with_loads(shell, conn, request).await {
        Handled::Reply(response) => return response,
        Handled::Queued(pending) => pending,
    };
    pending
        .answer()
        .await
        .unwrap_or_else(|failed| failed.response())
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

/// Answers a frame that did not decode, and closes the connection if the
/// peer keeps sending them.
async fn bad_frame(
    shell: &Shell,
    conn: ConnId,
    connection: &Connection,
    send: &mut SendStream,
    bad: &FrameError,
) {
    debug!(?conn, error = %bad, "malformed request frame");
    let verdict = shell.core().handle_bad_frame(conn, bad);
    respond(send, &verdict.response).await;
    if verdict.close {
        debug!(
            ?conn,
            "closing a connection that keeps sending malformed frames"
        );
        connection.close(CLOSE_BAD_FRAMES, b"too many malformed frames");
    }
}

/// Writes the response frame and finishes the stream.
async fn respond(send: &mut SendStream, response: &pb::Response) {
    let frame = Bytes::from(frame::encode_message(response));
    if let Err(failure) = send.write_chunk(frame).await {
        debug!(error = %failure, "could not send a response");
        return;
    }
    // Fails only if the peer already stopped the stream: nothing to do then.
    let _ = send.finish();
}

/// Reads one request frame. The outer error is the stream failing; the
/// inner one a frame that is malformed or too large, refused as soon as its
/// length prefix shows it (nothing more is buffered).
async fn read_frame(
    recv: &mut RecvStream,
    limit: usize,
) -> Result<Result<Vec<u8>, FrameError>, quinn::ReadError> {
    let mut frame = FrameBuffer::new(limit);
    while let Some(chunk) = recv.read_chunk(frame.room(), true).await? {
        if let Err(bad) = frame.push(&chunk.bytes) {
            return Ok(Err(bad));
        }
    }
    Ok(Ok(frame.bytes))
}

/// Decodes a whole request frame as [`frame::decode_message`] does, but
/// without copying: the request's bytes fields (bodies, sealed headers)
/// share the frame's buffer.
fn decode_request(frame: Vec<u8>, limit: usize) -> Result<pb::Request, FrameError> {
    let frame = Bytes::from(frame);
    let (len, prefix) = frame::decode_prefix(&frame, limit)?;
    let end = prefix.checked_add(len).ok_or(FrameError::BadLength)?;
    match end.cmp(&frame.len()) {
        std::cmp::Ordering::Greater => Err(FrameError::Truncated),
        std::cmp::Ordering::Less => Err(FrameError::TrailingBytes(frame.len() - end)),
        std::cmp::Ordering::Equal => {
            pb::Request::decode(frame.slice(prefix..end)).map_err(|_| FrameError::BadMessage)
        }
    }
}

/// Accumulates one frame's bytes, checking its length prefix as soon as it
/// has arrived.
#[derive(Debug)]
struct FrameBuffer {
    limit: usize,
    bytes: Vec<u8>,
    /// Prefix plus payload length, once the prefix is known.
    frame_len: Option<usize>,
}

impl FrameBuffer {
    fn new(limit: usize) -> Self {
        Self {
            limit,
            bytes: Vec::new(),
            frame_len: None,
        }
    }

    /// Most bytes worth reading next: one beyond the largest acceptable
    /// frame, so that trailing bytes are seen.
    fn room(&self) -> usize {
        let cap = self
            .frame_len
            .unwrap_or(self.limit.saturating_add(frame::MAX_PREFIX_LEN));
        cap.saturating_add(1)
            .saturating_sub(self.bytes.len())
            .max(1)
    }

    /// Appends a chunk; an error means the frame is refused.
    fn push(&mut self, chunk: &[u8]) -> Result<(), FrameError> {
        self.bytes.extend_from_slice(chunk);
        if self.frame_len.is_none() {
            match frame::decode_prefix(&self.bytes, self.limit) {
                Ok((len, prefix)) => self.frame_len = Some(len.saturating_add(prefix)),
                Err(FrameError::Truncated) => {}
                Err(bad) => return Err(bad),
            }
        }
        match self.frame_len {
            Some(len) if self.bytes.len() > len => {
                Err(FrameError::TrailingBytes(self.bytes.len() - len))
            }
            _ => Ok(()),
        }
    }
}

/// Counts request tasks, so that shutdown can wait for them.
#[derive(Debug, Default)]
pub(crate) struct RequestsInFlight {
    count: AtomicUsize,
    idle: Notify,
}

/// Held by a request task while it runs.
#[derive(Debug)]
pub(crate) struct InFlight<'a>(&'a RequestsInFlight);

impl RequestsInFlight {
    /// Counts a request task until the guard drops.
    pub(crate) fn enter(&self) -> InFlight<'_> {
        self.count.fetch_add(1, Ordering::SeqCst);
        InFlight(self)
    }

    /// Requests running now.
    pub(crate) fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// Waits until no request task runs.
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

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        frame::encode_into(payload, &mut out);
        out
    }

    #[test]
    fn frame_buffer_accepts_a_frame_in_pieces() {
        let bytes = framed(&[5; 300]);
        let mut buffer = FrameBuffer::new(1024);
        for piece in bytes.chunks(7) {
            assert!(piece.len() <= buffer.room());
            buffer.push(piece).unwrap();
        }
        assert_eq!(buffer.bytes, bytes);
        assert_eq!(
            buffer.room(),
            1,
            "only one more byte is read, to detect trailing bytes"
        );
    }

    #[test]
    fn frame_buffer_refuses_an_oversized_frame_from_its_prefix() {
        let mut prefix = Vec::new();
        prost::encoding::encode_varint(1 << 20, &mut prefix);
        let mut buffer = FrameBuffer::new(1024);
        assert_eq!(
            buffer.push(&prefix),
            Err(FrameError::TooLarge {
                declared: 1 << 20,
                limit: 1024
            })
        );
    }

    #[test]
    fn a_request_decodes_as_decode_message_does_and_shares_the_frame() {
        let request = pb::Request {
            kind: Some(pb::request::Kind::Send(pb::Send {
                body: Bytes::from(vec![7u8; 300]),
                ..Default::default()
            })),
            ..Default::default()
        };
        let encoded = frame::encode_message(&request);
        assert_eq!(
            decode_request(encoded.clone(), 1024),
            frame::decode_message::<pb::Request>(&encoded, 1024)
        );
        let range = encoded.as_ptr_range();
        let decoded = decode_request(encoded, 1024).unwrap();
        let Some(pb::request::Kind::Send(send)) = decoded.kind else {
            panic!("decoded another kind");
        };
        assert_eq!(send.body.as_ref(), &[7; 300]);
        assert!(
            range.contains(&send.body.as_ptr()),
            "the body is a view of the frame, not a copy"
        );
    }

    #[test]
    fn a_request_frame_that_is_cut_long_or_garbled_is_refused() {
        let encoded = frame::encode_message(&pb::Request::default());
        let mut long = encoded.clone();
        long.push(0);
        assert_eq!(
            decode_request(long, 1024),
            Err(FrameError::TrailingBytes(1))
        );
        assert_eq!(
            decode_request(vec![5, 1, 2], 1024),
            Err(FrameError::Truncated)
        );
        assert!(matches!(
            decode_request(vec![0x80, 0x80, 0x10], 1024),
            Err(FrameError::TooLarge { .. })
        ));
        assert_eq!(
            decode_request(vec![2, 0xff, 0xff], 1024),
            Err(FrameError::BadMessage)
        );
    }

    #[test]
    fn frame_buffer_refuses_bytes_after_the_frame() {
        let mut bytes = framed(b"hello");
        bytes.extend_from_slice(b"xx");
        let mut buffer = FrameBuffer::new(1024);
        assert_eq!(buffer.push(&bytes), Err(FrameError::TrailingBytes(2)));
    }

    #[test]
    fn frame_buffer_never_asks_for_more_than_limit_plus_prefix() {
        let buffer = FrameBuffer::new(256 * 1024);
        assert_eq!(buffer.room(), 256 * 1024 + frame::MAX_PREFIX_LEN + 1);
    }

    #[tokio::test]
    async fn idle_waits_for_every_request_to_finish() {
        let requests = Arc::new(RequestsInFlight::default());
        let (started, mut wait_started) = tokio::sync::mpsc::channel(1);
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let task = {
            let requests = Arc::clone(&requests);
            tokio::spawn(async move {
                let _guard = requests.enter();
                started.send(()).await.unwrap();
                released.await.unwrap();
            })
        };
        wait_started.recv().await.unwrap();
        assert_eq!(requests.count(), 1);
        let idle =
            tokio::time::timeout(std::time::Duration::from_millis(50), requests.idle()).await;
        assert!(idle.is_err(), "idle while a request runs");
        release.send(()).unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(5), requests.idle())
            .await
            .unwrap();
        task.await.unwrap();
        assert_eq!(requests.count(), 0);
    }
}
