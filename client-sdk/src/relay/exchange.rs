//! Moving frames over one QUIC connection: one request per bidirectional
//! stream, deliveries on relay-opened unidirectional streams.

use std::time::Duration;

use hearth_proto::relay as pb;
use hearth_protocol::frame::{self, MAX_PREFIX_LEN};
use tokio::sync::mpsc;

use super::error::{ClientError, RelayErrorCode};
use super::messages::Delivery;

/// The protocol version this client speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// Encodes a request of this protocol version as one length-delimited frame.
pub(crate) fn encode_request(kind: pb::request::Kind) -> Vec<u8> {
    frame::encode_message(&pb::Request {
        version: PROTOCOL_VERSION,
        kind: Some(kind),
    })
}

/// The request side of a connection: frame limit and timeout included.
#[derive(Debug, Clone)]
pub(crate) struct Exchange {
    pub(crate) connection: quinn::Connection,
    pub(crate) frame_limit: usize,
    pub(crate) request_timeout: Duration,
}

impl Exchange {
    /// Sends `frame` on a new bidirectional stream and returns the relay's
    /// answer; an `Error` answer becomes [`ClientError::Relay`].
    pub(crate) async fn round_trip(&self, frame: &[u8]) -> Result<pb::Response, ClientError> {
        let answer = tokio::time::timeout(self.request_timeout, self.send_and_read(frame))
            .await
            .map_err(|_| ClientError::Timeout)??;
        let response: pb::Response = frame::decode_message(&answer, self.frame_limit)
            .map_err(|e| ClientError::BadResponse(format!("undecodable response: {e}")))?;
        match response.kind {
            Some(pb::response::Kind::Error(error)) => Err(ClientError::Relay {
                code: RelayErrorCode::from_wire(error.code),
                message: error.message,
            }),
            None => Err(ClientError::BadResponse("empty response".into())),
            Some(_) => Ok(response),
        }
    }

    async fn send_and_read(&self, frame: &[u8]) -> Result<Vec<u8>, ClientError> {
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
        recv.read_to_end(self.frame_limit.saturating_add(MAX_PREFIX_LEN))
            .await
            .map_err(read_error)
    }
}

fn read_error(error: quinn::ReadToEndError) -> ClientError {
    match error {
        quinn::ReadToEndError::TooLong => {
            ClientError::BadResponse("response exceeds the frame limit".into())
        }
        quinn::ReadToEndError::Read(quinn::ReadError::ConnectionLost(e)) => {
            ClientError::ConnectionLost(e)
        }
        quinn::ReadToEndError::Read(e) => {
            ClientError::BadResponse(format!("response stream failed: {e}"))
        }
    }
}

/// Reads deliveries from relay-opened streams, in the order the relay
/// opened them, until the connection closes or nobody listens any more.
/// Unusable frames are logged (without content) and skipped.
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
        match read_delivery(&mut stream, frame_limit).await {
            Ok(delivery) => {
                if deliveries.send(delivery).is_err() {
                    return;
                }
            }
            Err(reason) => tracing::debug!(%reason, "skipping an unusable delivery frame"),
        }
    }
}

async fn read_delivery(
    stream: &mut quinn::RecvStream,
    frame_limit: usize,
) -> Result<Delivery, String> {
    let bytes = stream
        .read_to_end(frame_limit.saturating_add(MAX_PREFIX_LEN))
        .await
        .map_err(|e| e.to_string())?;
    let delivery: pb::Delivery =
        frame::decode_message(&bytes, frame_limit).map_err(|e| e.to_string())?;
    Delivery::try_from(delivery).map_err(|e| e.to_string())
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
        Kind::Acked(_) => "Acked",
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
    use bytes::Bytes;
    use prost::Message as _;

    #[test]
    fn requests_are_one_frame_of_version_one() {
        let kind = pb::request::Kind::Ack(pb::Ack {
            mailbox_id: Bytes::from(vec![3; 32]),
            seqs: vec![1, 2],
        });
        let bytes = encode_request(kind.clone());
        let decoded: pb::Request = frame::decode_message(&bytes, 1024).unwrap();
        assert_eq!(decoded.version, 1);
        assert_eq!(decoded.kind, Some(kind));
        let (payload, used) = frame::decode(&bytes, 1024).unwrap();
        assert_eq!(used, bytes.len());
        assert_eq!(payload.len(), decoded.encoded_len());
    }

    #[test]
    fn unexpected_kind_names_both_sides() {
        let got = pb::response::Kind::Done(pb::Done {});
        let err = unexpected("Acked", Some(&got));
        assert_eq!(
            err.to_string(),
            "unusable response from the relay: expected Acked, got Done"
        );
    }
}
