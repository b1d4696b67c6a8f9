//! Moving frames over one QUIC connection (DESIGN.md section 3): pipelined
//! requests on one long-lived control stream, large sends on streams of
//! their own, deliveries on the relay's long-lived delivery stream.
//!
//! One control task per connection owns the control stream. Callers queue a
//! request's frame and wait for the response that carries its id; the task
//! writes everything queued since its last write in one go, and hands each
//! response it reads to whoever waits for its id. Acknowledgements are
//! coalesced per mailbox (a cumulative bound plus any single sequence
//! numbers) and written with the next write; the relay does not answer them.
//!
//! If the control stream fails (the relay stopped reading it after a broken
//! frame, say) while the connection lives, the requests written on it fail
//! and the next request opens a new control stream.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use hearth_proto::relay as pb;
use hearth_protocol::frame::{self, FrameSplitter, MAX_PREFIX_LEN};
use prost::Message as _;
use tokio::sync::{Notify, mpsc, oneshot};

use super::MAX_ACK_SEQS;
use super::error::{ClientError, RelayErrorCode};
use super::messages::Delivery;

/// The protocol version this client speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// Bodies larger than this go on a stream of their own, so that a large
/// upload never delays the requests behind it on the control stream.
pub const OWN_STREAM_BODY_BYTES: usize = 16 * 1024;

/// A request of this protocol version.
pub(crate) fn request(kind: pb::request::Kind) -> pb::Request {
    pb::Request {
        version: PROTOCOL_VERSION,
        id: 0,
        kind: Some(kind),
    }
}

/// What a waiting caller receives.
type Answer = Result<pb::Response, ClientError>;

/// A caller waiting for its response, and the control stream its request
/// went out on (0 while still queued).
#[derive(Debug)]
struct Waiting {
    answer: oneshot::Sender<Answer>,
    stream: u64,
}

/// Acknowledgements not yet written for one mailbox.
#[derive(Debug, Default)]
struct PendingAck {
    through: Option<u64>,
    seqs: BTreeSet<u64>,
}

/// What the callers and the control task share.
#[derive(Debug, Default)]
struct ControlState {
    /// Frames queued since the last write, and their request ids.
    queued: Vec<u8>,
    queued_ids: Vec<u64>,
    acks: HashMap<[u8; 32], PendingAck>,
    waiting: HashMap<u64, Waiting>,
    /// Set once the connection is gone: new requests fail at once.
    closed: Option<quinn::ConnectionError>,
}

#[derive(Debug)]
struct Control {
    state: Mutex<ControlState>,
    /// Poked when something is queued.
    queued: Notify,
    next_id: AtomicU64,
}

impl Control {
    fn lock(&self) -> std::sync::MutexGuard<'_, ControlState> {
        // No invariant spans a panic point inside the lock.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The request side of a connection: frame limit and timeout included.
#[derive(Debug, Clone)]
pub(crate) struct Exchange {
    pub(crate) connection: quinn::Connection,
    pub(crate) frame_limit: usize,
    pub(crate) request_timeout: Duration,
    control: Arc<Control>,
}

impl Exchange {
    /// Starts the control task of `connection`; it ends with the connection.
    pub(crate) fn start(
        connection: quinn::Connection,
        frame_limit: usize,
        request_timeout: Duration,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let control = Arc::new(Control {
            state: Mutex::new(ControlState::default()),
            queued: Notify::new(),
            next_id: AtomicU64::new(1),
        });
        let task = tokio::spawn(run_control(
            connection.clone(),
            Arc::clone(&control),
            frame_limit,
        ));
        let exchange = Self {
            connection,
            frame_limit,
            request_timeout,
            control,
        };
        (exchange, task)
    }

    /// Sends `request` (its id is set here) and returns the relay's answer;
    /// an `Error` answer becomes [`ClientError::Relay`]. A send with a body
    /// over [`OWN_STREAM_BODY_BYTES`] goes on a stream of its own.
    pub(crate) async fn round_trip(
        &self,
        mut request: pb::Request,
    ) -> Result<pb::Response, ClientError> {
        request.id = self.control.next_id.fetch_add(1, Ordering::Relaxed);
        let own_stream = matches!(
            &request.kind,
            Some(pb::request::Kind::Send(send)) if send.body.len() > OWN_STREAM_BODY_BYTES
        );
        let answer = if own_stream {
            let frame = frame::encode_message(&request);
            tokio::time::timeout(self.request_timeout, self.own_stream(&frame))
                .await
                .map_err(|_| ClientError::Timeout)?
        } else {
            self.on_control_stream(&request).await
        };
        check(answer?)
    }

    /// Writes `bytes` verbatim as a stream of its own and returns the first
    /// response (for tests of how the relay handles malformed frames).
    #[cfg(any(test, feature = "test-hooks"))]
    pub(crate) async fn raw_own_stream(&self, bytes: &[u8]) -> Result<pb::Response, ClientError> {
        let answer = tokio::time::timeout(self.request_timeout, self.own_stream(bytes))
            .await
            .map_err(|_| ClientError::Timeout)?;
        check(answer?)
    }

    /// Queues `bytes` verbatim on the control stream, as if they were
    /// request frames (for tests of how the relay handles malformed frames;
    /// nobody waits for an answer).
    #[cfg(any(test, feature = "test-hooks"))]
    pub(crate) fn queue_raw(&self, bytes: &[u8]) {
        self.control.lock().queued.extend_from_slice(bytes);
        self.control.queued.notify_one();
    }

    /// Queues an acknowledgement; it goes out with the next write, merged
    /// with the others of its mailbox.
    pub(crate) fn queue_ack(
        &self,
        mailbox: [u8; 32],
        through: Option<u64>,
        seqs: &[u64],
    ) -> Result<(), ClientError> {
        {
            let mut state = self.control.lock();
            if let Some(closed) = &state.closed {
                return Err(ClientError::ConnectionLost(closed.clone()));
            }
            let pending = state.acks.entry(mailbox).or_default();
            if let Some(through) = through {
                pending.through = Some(pending.through.map_or(through, |t| t.max(through)));
            }
            pending.seqs.extend(seqs);
        }
        self.control.queued.notify_one();
        Ok(())
    }

    async fn on_control_stream(&self, request: &pb::Request) -> Answer {
        let (answer, receiver) = oneshot::channel();
        let id = request.id;
        {
            let mut state = self.control.lock();
            if let Some(closed) = &state.closed {
                return Err(ClientError::ConnectionLost(closed.clone()));
            }
            request
                .encode_length_delimited(&mut state.queued)
                .unwrap_or_else(|_| unreachable!("a Vec grows as needed"));
            state.queued_ids.push(id);
            state.waiting.insert(id, Waiting { answer, stream: 0 });
        }
        self.control.queued.notify_one();
        match tokio::time::timeout(self.request_timeout, receiver).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(ClientError::BadResponse("the control stream ended".into())),
            Err(_) => {
                self.control.lock().waiting.remove(&id);
                Err(ClientError::Timeout)
            }
        }
    }

    /// One request on a stream of its own: write it, finish, read one
    /// response.
    async fn own_stream(&self, frame: &[u8]) -> Answer {
        let (mut send, mut recv) = self
            .connection
            .open_bi()
            .await
            .map_err(ClientError::ConnectionLost)?;
        match send.write_all(frame).await {
            // The relay may stop reading an oversized or bad frame and still
            // answer it, so read the answer either way.
            Ok(()) => {
                let _ = send.finish();
            }
            Err(quinn::WriteError::Stopped(_)) => {}
            Err(quinn::WriteError::ConnectionLost(e)) => {
                return Err(ClientError::ConnectionLost(e));
            }
            Err(e) => {
                return Err(ClientError::BadResponse(format!(
                    "request stream failed: {e}"
                )));
            }
        }
        let mut splitter = FrameSplitter::new(self.frame_limit);
        loop {
            if let Some(frame) = splitter.next_frame().map_err(undecodable)? {
                return pb::Response::decode(frame).map_err(|_| {
                    ClientError::BadResponse("undecodable response: not a Response".into())
                });
            }
            match recv.read_chunk(splitter.room(), true).await {
                Ok(Some(chunk)) => splitter.push(&chunk.bytes),
                Ok(None) => return Err(ClientError::BadResponse("empty response".into())),
                Err(quinn::ReadError::ConnectionLost(e)) => {
                    return Err(ClientError::ConnectionLost(e));
                }
                Err(e) => {
                    return Err(ClientError::BadResponse(format!(
                        "response stream failed: {e}"
                    )));
                }
            }
        }
    }
}

fn undecodable(error: frame::FrameError) -> ClientError {
    ClientError::BadResponse(format!("undecodable response: {error}"))
}

/// An `Error` answer becomes [`ClientError::Relay`].
fn check(response: pb::Response) -> Result<pb::Response, ClientError> {
    match response.kind {
        Some(pb::response::Kind::Error(error)) => Err(ClientError::Relay {
            code: RelayErrorCode::from_wire(error.code),
            message: error.message,
        }),
        None => Err(ClientError::BadResponse("empty response".into())),
        Some(_) => Ok(response),
    }
}

/// The control task: writes what is queued, reads responses, reopens the
/// control stream after a failure, and fails everything once the
/// connection is gone.
async fn run_control(connection: quinn::Connection, control: Arc<Control>, frame_limit: usize) {
    let mut generation = 0u64;
    let lost = loop {
        // Opened when there is something to send.
        tokio::select! {
            () = control.queued.notified() => {}
            lost = connection.closed() => break lost,
        }
        let (send, recv) = match connection.open_bi().await {
            Ok(streams) => streams,
            Err(lost) => break lost,
        };
        generation += 1;
        let failure = serve_stream(&control, generation, send, recv, frame_limit).await;
        tracing::debug!(%failure, "control stream ended");
        fail_written(&control, generation, &failure);
        if let Some(lost) = connection.close_reason() {
            break lost;
        }
        // Something may have been queued while the stream failed.
        if has_queued(&control) {
            control.queued.notify_one();
        }
    };
    let mut state = control.lock();
    state.closed = Some(lost.clone());
    for (_, waiting) in state.waiting.drain() {
        let _ = waiting
            .answer
            .send(Err(ClientError::ConnectionLost(lost.clone())));
    }
}

fn has_queued(control: &Control) -> bool {
    let state = control.lock();
    !state.queued.is_empty() || !state.acks.is_empty()
}

/// Drives one control stream until it fails; returns why.
async fn serve_stream(
    control: &Control,
    generation: u64,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    frame_limit: usize,
) -> String {
    let mut splitter = FrameSplitter::new(frame_limit);
    loop {
        let out = take_queued(control, generation);
        if !out.is_empty()
            && let Err(failure) = send.write_chunk(Bytes::from(out)).await
        {
            return format!("writing failed: {failure}");
        }
        tokio::select! {
            () = control.queued.notified() => {}
            read = recv.read_chunk(splitter.room(), true) => match read {
                Ok(Some(chunk)) => {
                    splitter.push(&chunk.bytes);
                    loop {
                        match splitter.next_frame() {
                            Ok(Some(frame)) => dispatch(control, frame),
                            Ok(None) => break,
                            Err(bad) => return format!("broken response frame: {bad}"),
                        }
                    }
                }
                // The relay finished its side (it is stopping): nothing more
                // will be answered here.
                Ok(None) => return "the relay finished the control stream".into(),
                Err(failure) => return format!("reading failed: {failure}"),
            },
        }
    }
}

/// Everything queued, as one buffer to write; the requests in it are marked
/// as sent on `generation`.
fn take_queued(control: &Control, generation: u64) -> Vec<u8> {
    let mut state = control.lock();
    let mut out = std::mem::take(&mut state.queued);
    let ids = std::mem::take(&mut state.queued_ids);
    for id in ids {
        if let Some(waiting) = state.waiting.get_mut(&id) {
            waiting.stream = generation;
        }
    }
    for (mailbox, pending) in state.acks.drain() {
        let seqs: Vec<u64> = pending.seqs.into_iter().collect();
        // At least one frame (it may carry only `through`); the bound goes
        // in the first, the seqs in pieces the relay accepts.
        let mut through = pending.through;
        let mut pieces: Vec<&[u64]> = seqs.chunks(MAX_ACK_SEQS).collect();
        if pieces.is_empty() {
            pieces.push(&[]);
        }
        for piece in pieces {
            let ack = request(pb::request::Kind::Ack(pb::Ack {
                mailbox_id: Bytes::copy_from_slice(&mailbox),
                seqs: piece.to_vec(),
                through: through.take(),
            }));
            ack.encode_length_delimited(&mut out)
                .unwrap_or_else(|_| unreachable!("a Vec grows as needed"));
        }
    }
    out
}

/// Hands a response to whoever waits for its id. A response nobody waits
/// for (an answer after a timeout, or a failed acknowledgement) is dropped.
fn dispatch(control: &Control, frame: Bytes) {
    let response = match pb::Response::decode(frame) {
        Ok(response) => response,
        Err(_) => {
            tracing::debug!("skipping an undecodable response");
            return;
        }
    };
    let waiting = control.lock().waiting.remove(&response.id);
    match waiting {
        Some(waiting) => {
            let _ = waiting.answer.send(Ok(response));
        }
        None => {
            if let Some(pb::response::Kind::Error(error)) = &response.kind {
                tracing::debug!(
                    code = ?RelayErrorCode::from_wire(error.code),
                    "the relay refused a request nobody waits for (an acknowledgement?)"
                );
            }
        }
    }
}

/// Fails the requests written on a control stream that failed.
fn fail_written(control: &Control, generation: u64, failure: &str) {
    let mut state = control.lock();
    let failed: Vec<u64> = state
        .waiting
        .iter()
        .filter(|(_, waiting)| waiting.stream == generation)
        .map(|(&id, _)| id)
        .collect();
    for id in failed {
        if let Some(waiting) = state.waiting.remove(&id) {
            let _ = waiting.answer.send(Err(ClientError::BadResponse(format!(
                "the control stream failed: {failure}"
            ))));
        }
    }
}

/// Reads deliveries from the relay's delivery stream (a new one if the
/// relay opens another), in order, until the connection closes or nobody
/// listens any more. Unusable frames are logged (without content) and
/// skipped; a broken stream is abandoned.
pub(crate) async fn receive_deliveries(
    connection: quinn::Connection,
    deliveries: mpsc::UnboundedSender<Delivery>,
    frame_limit: usize,
) {
    loop {
        let mut stream = match connection.accept_uni().await {
            Ok(stream) => stream,
            Err(e) => {
                tracing::debug!(reason = %e, "delivery streams ended");
                return;
            }
        };
        let mut splitter = FrameSplitter::new(frame_limit);
        loop {
            match splitter.next_frame() {
                Ok(Some(frame)) => {
                    match pb::Delivery::decode(frame)
                        .map_err(|e| e.to_string())
                        .and_then(|d| Delivery::try_from(d).map_err(|e| e.to_string()))
                    {
                        Ok(delivery) => {
                            if deliveries.send(delivery).is_err() {
                                return;
                            }
                        }
                        Err(reason) => {
                            tracing::debug!(%reason, "skipping an unusable delivery frame");
                        }
                    }
                    continue;
                }
                Ok(None) => {}
                Err(bad) => {
                    tracing::debug!(reason = %bad, "abandoning a broken delivery stream");
                    let _ = stream.stop(quinn::VarInt::from_u32(0));
                    break;
                }
            }
            match stream
                .read_chunk(splitter.room().max(MAX_PREFIX_LEN), true)
                .await
            {
                Ok(Some(chunk)) => splitter.push(&chunk.bytes),
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(reason = %e, "delivery stream ended");
                    break;
                }
            }
        }
    }
}

/// The name of a response kind, for error messages.
pub(crate) fn kind_name(kind: &pb::response::Kind) -> &'static str {
    use pb::response::Kind;
    match kind {
        Kind::Error(_) => "Error",
        Kind::Challenge(_) => "Challenge",
        Kind::Registered(_) => "Registered",
        Kind::Authenticated(_) => "Authenticated",
        Kind::SendResult(_) => "SendResult",
        Kind::Done(_) => "Done",
        Kind::PrekeyBundle(_) => "PrekeyBundle",
        Kind::PrekeyCounts(_) => "PrekeyCounts",
    }
}

/// A [`ClientError::BadResponse`] for a response of the wrong kind.
pub(crate) fn unexpected(expected: &str, got: Option<&pb::response::Kind>) -> ClientError {
    let got = got.map_or("nothing", kind_name);
    ClientError::BadResponse(format!("expected {expected}, got {got}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn control() -> Control {
        Control {
            state: Mutex::new(ControlState::default()),
            queued: Notify::new(),
            next_id: AtomicU64::new(1),
        }
    }

    fn decoded(bytes: &[u8]) -> Vec<pb::Request> {
        let mut splitter = FrameSplitter::new(1 << 20);
        splitter.push(bytes);
        std::iter::from_fn(|| splitter.next_frame().unwrap())
            .map(|frame| pb::Request::decode(frame).unwrap())
            .collect()
    }

    #[test]
    fn acks_of_a_mailbox_merge_into_one_cumulative_frame() {
        let control = control();
        {
            let mut state = control.lock();
            let pending = state.acks.entry([1; 32]).or_default();
            pending.through = Some(9);
            pending.seqs.extend([12, 3, 12]);
        }
        let requests = decoded(&take_queued(&control, 1));
        assert_eq!(requests.len(), 1);
        let Some(pb::request::Kind::Ack(ack)) = &requests[0].kind else {
            panic!("not an ack");
        };
        assert_eq!((ack.through, ack.seqs.as_slice()), (Some(9), &[3, 12][..]));
        assert_eq!(requests[0].version, PROTOCOL_VERSION);
        assert!(take_queued(&control, 1).is_empty(), "written once");
    }

    #[test]
    fn a_long_ack_is_cut_at_the_relays_limit() {
        let control = control();
        control
            .lock()
            .acks
            .entry([1; 32])
            .or_default()
            .seqs
            .extend(0..MAX_ACK_SEQS as u64 + 5);
        let sizes: Vec<usize> = decoded(&take_queued(&control, 1))
            .iter()
            .map(|r| match &r.kind {
                Some(pb::request::Kind::Ack(ack)) => ack.seqs.len(),
                _ => panic!("not an ack"),
            })
            .collect();
        assert_eq!(sizes, [MAX_ACK_SEQS, 5]);
    }

    #[test]
    fn a_failed_stream_fails_only_what_was_written_on_it() {
        let control = control();
        let (written, mut written_rx) = oneshot::channel();
        let (queued, mut queued_rx) = oneshot::channel();
        {
            let mut state = control.lock();
            state.waiting.insert(
                1,
                Waiting {
                    answer: written,
                    stream: 0,
                },
            );
            state.queued_ids.push(1);
        }
        let _ = take_queued(&control, 7);
        control.lock().waiting.insert(
            2,
            Waiting {
                answer: queued,
                stream: 0,
            },
        );
        fail_written(&control, 7, "test");
        assert!(matches!(
            written_rx.try_recv(),
            Ok(Err(ClientError::BadResponse(_)))
        ));
        assert!(queued_rx.try_recv().is_err(), "still waiting");
        assert!(control.lock().waiting.contains_key(&2));
    }

    #[test]
    fn responses_reach_the_caller_with_their_id() {
        let control = control();
        let (answer, mut receiver) = oneshot::channel();
        control
            .lock()
            .waiting
            .insert(5, Waiting { answer, stream: 1 });
        let response = pb::Response {
            id: 5,
            kind: Some(pb::response::Kind::Done(pb::Done {})),
        };
        dispatch(&control, Bytes::from(response.encode_to_vec()));
        assert_eq!(receiver.try_recv().unwrap().unwrap(), response);
        // Unknown ids and garbage are dropped quietly.
        dispatch(&control, Bytes::from_static(&[0xff]));
        assert!(control.lock().waiting.is_empty());
    }

    #[test]
    fn unexpected_kind_names_both_sides() {
        let got = pb::response::Kind::Done(pb::Done {});
        let err = unexpected("SendResult", Some(&got));
        assert_eq!(
            err.to_string(),
            "unusable response from the relay: expected SendResult, got Done"
        );
    }
}
