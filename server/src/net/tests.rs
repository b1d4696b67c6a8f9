//! The shell over real sockets on 127.0.0.1, with a minimal pinning client:
//! request streams, bad frames, deliveries, durability across a restart,
//! registration tokens issued and revoked while running, the connection
//! caps (total and per address), the deadline to authenticate, graceful
//! shutdown.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ed25519_dalek::{Signer as _, SigningKey};
use hearth_proto::relay::{self as pb, ErrorCode, request::Kind as Req, response::Kind as Resp};
use hearth_protocol::address::{Fingerprint, RelayAddress};
use hearth_protocol::frame;
use prost::Message as _;
use quinn::crypto::rustls::QuicClientConfig;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use super::*;
use crate::core::{RegistrationMode, auth_message};
use crate::ids::TokenHash;

const LIMIT: usize = 1 << 20;
const WAIT: Duration = Duration::from_secs(10);

fn config(dir: &Path, mode: RegistrationMode) -> Config {
    Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        data_dir: dir.to_path_buf(),
        udp_buffer_bytes: 256 * 1024,
        ..Config::default()
    }
    .with_registration(mode)
}

/// Pins the relay's SPKI fingerprint, as real clients do.
#[derive(Debug)]
struct Pinned(Fingerprint);

fn provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let (_, cert) = x509_parser::parse_x509_certificate(end_entity).unwrap();
        if Fingerprint::of_spki(cert.public_key().raw) == self.0 {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General("fingerprint mismatch".into()))
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("TLS 1.2 is not offered".into()))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = provider().signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, &algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

async fn try_connect(
    relay: &RelayAddress,
    at: SocketAddr,
) -> Result<quinn::Connection, quinn::ConnectionError> {
    let mut crypto = rustls::ClientConfig::builder_with_provider(Arc::new(provider()))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Pinned(relay.fingerprint)))
        .with_no_client_auth();
    crypto.alpn_protocols = vec![b"hearth/1".to_vec()];
    let client = quinn::ClientConfig::new(Arc::new(QuicClientConfig::try_from(crypto).unwrap()));
    let endpoint = quinn::Endpoint::client(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
    endpoint
        .connect_with(client, at, "hearth-relay")
        .unwrap()
        .await
}

async fn connect(relay: &RunningRelay) -> quinn::Connection {
    tokio::time::timeout(WAIT, try_connect(&relay.address(), relay.local_addr()))
        .await
        .unwrap()
        .unwrap()
}

async fn raw_request(connection: &quinn::Connection, bytes: &[u8]) -> pb::Response {
    let (mut send, mut recv) = connection.open_bi().await.unwrap();
    send.write_all(bytes).await.unwrap();
    send.finish().unwrap();
    let answer = tokio::time::timeout(WAIT, recv.read_to_end(LIMIT))
        .await
        .unwrap()
        .unwrap();
    frame::decode_message(&answer, LIMIT).unwrap()
}

async fn request(connection: &quinn::Connection, kind: Req) -> Resp {
    let request = pb::Request {
        version: 1,
        id: 0,
        kind: Some(kind),
    };
    raw_request(connection, &frame::encode_message(&request))
        .await
        .kind
        .unwrap()
}

fn error_code(response: Resp) -> ErrorCode {
    match response {
        Resp::Error(error) => ErrorCode::try_from(error.code).unwrap(),
        other => panic!("expected an error, got {other:?}"),
    }
}

/// The proof of owning `key` on this connection.
async fn proof(connection: &quinn::Connection, key: &SigningKey) -> Bytes {
    let Resp::Challenge(challenge) =
        request(connection, Req::GetChallenge(pb::GetChallenge {})).await
    else {
        panic!("expected a challenge");
    };
    let mut exporter = [0u8; 32];
    connection
        .export_keying_material(&mut exporter, EXPORTER_LABEL, b"")
        .unwrap();
    let challenge: [u8; 32] = challenge.challenge.as_ref().try_into().unwrap();
    Bytes::copy_from_slice(&key.sign(&auth_message(&challenge, &exporter)).to_bytes())
}

async fn register(
    connection: &quinn::Connection,
    key: &SigningKey,
    mailbox: [u8; 32],
    token: &str,
) -> Resp {
    let register = pb::Register {
        mailbox_id: Bytes::copy_from_slice(&mailbox),
        mailbox_key: Bytes::copy_from_slice(key.verifying_key().as_bytes()),
        signature: proof(connection, key).await,
        registration_token: token.to_owned(),
    };
    request(connection, Req::Register(register)).await
}

/// The first frame on the connection's delivery stream.
async fn next_delivery(connection: &quinn::Connection) -> pb::Delivery {
    let mut stream = tokio::time::timeout(WAIT, connection.accept_uni())
        .await
        .unwrap()
        .unwrap();
    pb::Delivery::decode(Frames::new(&mut stream).next().await).unwrap()
}

/// The frames of one stream, in order.
struct Frames<'a> {
    stream: &'a mut quinn::RecvStream,
    splitter: frame::FrameSplitter,
}

impl<'a> Frames<'a> {
    fn new(stream: &'a mut quinn::RecvStream) -> Self {
        Self {
            stream,
            splitter: frame::FrameSplitter::new(LIMIT),
        }
    }

    /// The next whole frame.
    async fn next(&mut self) -> Bytes {
        loop {
            if let Some(frame) = self.splitter.next_frame().unwrap() {
                return frame;
            }
            let chunk = tokio::time::timeout(WAIT, self.stream.read_chunk(LIMIT, true))
                .await
                .unwrap()
                .unwrap()
                .expect("the stream ended before a whole frame");
            self.splitter.push(&chunk.bytes);
        }
    }

    /// The next frame as a response.
    async fn response(&mut self) -> pb::Response {
        pb::Response::decode(self.next().await).unwrap()
    }
}

/// One frame of request `id`.
fn framed(id: u64, kind: Req) -> Vec<u8> {
    frame::encode_message(&pb::Request {
        version: 1,
        id,
        kind: Some(kind),
    })
}

#[tokio::test]
async fn pipelined_requests_on_one_stream_are_answered_by_id_and_survive_a_bad_frame() {
    let dir = tempfile::tempdir().unwrap();
    let relay = RunningRelay::start(config(dir.path(), RegistrationMode::Open))
        .await
        .unwrap();
    let connection = connect(&relay).await;
    let (mut send, mut recv) = connection.open_bi().await.unwrap();
    let challenge = || Req::GetChallenge(pb::GetChallenge {});
    // Three frames in one write: good, garbled (its id still readable), good.
    let mut bytes = framed(1, challenge());
    let mut garbled = Vec::new();
    prost::encoding::encode_key(2, prost::encoding::WireType::Varint, &mut garbled);
    prost::encoding::encode_varint(7, &mut garbled);
    garbled.extend_from_slice(&[0x52, 0x01, 0xff]);
    frame::encode_into(&garbled, &mut bytes);
    bytes.extend(framed(3, challenge()));
    send.write_all(&bytes).await.unwrap();
    let mut responses = Frames::new(&mut recv);
    let mut answers = Vec::new();
    for _ in 0..3 {
        answers.push(responses.response().await);
    }
    answers.sort_by_key(|answer| answer.id);
    assert_eq!(answers.iter().map(|a| a.id).collect::<Vec<_>>(), [1, 3, 7]);
    assert!(matches!(answers[0].kind, Some(Resp::Challenge(_))));
    assert!(matches!(answers[1].kind, Some(Resp::Challenge(_))));
    assert_eq!(
        error_code(answers[2].kind.clone().unwrap()),
        ErrorCode::BadFrame
    );
    // The stream goes on after the bad frame.
    send.write_all(&framed(4, challenge())).await.unwrap();
    let answer = responses.response().await;
    assert_eq!(answer.id, 4);
    // A broken length prefix ends the stream (id 0), not the connection.
    send.write_all(&[0xff; 11]).await.unwrap();
    let answer = responses.response().await;
    assert_eq!(
        (answer.id, error_code(answer.kind.unwrap())),
        (0, ErrorCode::BadFrame)
    );
    let rest = tokio::time::timeout(WAIT, recv.read_to_end(LIMIT))
        .await
        .unwrap();
    assert_eq!(rest.unwrap(), b"", "the relay finished the stream");
    assert!(matches!(
        request(&connection, challenge()).await,
        Resp::Challenge(_)
    ));
    relay.shutdown().await.unwrap();
}

#[tokio::test]
async fn requests_are_answered_and_bad_frames_refused_on_their_stream() {
    let dir = tempfile::tempdir().unwrap();
    let relay = RunningRelay::start(config(dir.path(), RegistrationMode::Open))
        .await
        .unwrap();
    assert_eq!(relay.address().port, relay.local_addr().port());
    let connection = connect(&relay).await;

    let Resp::Challenge(challenge) =
        request(&connection, Req::GetChallenge(pb::GetChallenge {})).await
    else {
        panic!("expected a challenge");
    };
    assert_eq!(challenge.challenge.len(), 32);
    assert_eq!(
        error_code(raw_request(&connection, &[0xff; 11]).await.kind.unwrap()),
        ErrorCode::BadFrame
    );
    let mut oversized = Vec::new();
    prost::encoding::encode_varint(1 << 30, &mut oversized);
    assert_eq!(
        error_code(raw_request(&connection, &oversized).await.kind.unwrap()),
        ErrorCode::FrameTooLarge
    );
    // The connection survives bad frames.
    assert!(matches!(
        request(&connection, Req::GetChallenge(pb::GetChallenge {})).await,
        Resp::Challenge(_)
    ));
    assert_eq!(relay.stats().connections, 1);

    relay.shutdown().await.unwrap();
    match tokio::time::timeout(WAIT, connection.closed())
        .await
        .unwrap()
    {
        quinn::ConnectionError::ApplicationClosed(close) => {
            assert_eq!(close.error_code, CLOSE_SHUTTING_DOWN);
            assert_eq!(close.reason.as_ref(), b"relay shutting down");
        }
        other => panic!("expected an application close, got {other:?}"),
    }
}

#[tokio::test]
async fn an_unacknowledged_envelope_survives_a_restart_and_is_delivered_again() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::from_bytes(&[7; 32]);
    let mailbox = [9u8; 32];
    let relay = RunningRelay::start(config(dir.path(), RegistrationMode::Open))
        .await
        .unwrap();
    let owner = connect(&relay).await;
    assert!(matches!(
        register(&owner, &key, mailbox, "").await,
        Resp::Registered(_)
    ));
    let add = pb::AddSendToken {
        mailbox_id: Bytes::copy_from_slice(&mailbox),
        token_hash: Bytes::copy_from_slice(&TokenHash::of(b"send token").0),
    };
    assert!(matches!(
        request(&owner, Req::AddSendToken(add)).await,
        Resp::Done(_)
    ));

    let sender = connect(&relay).await;
    let send = pb::Send {
        client_message_id: Bytes::from_static(&[1; 16]),
        body: Bytes::from_static(b"sealed body"),
        recipients: vec![pb::Recipient {
            mailbox_id: Bytes::copy_from_slice(&mailbox),
            send_token: Bytes::from_static(b"send token"),
            sealed_header: Bytes::from_static(b"sealed header"),
        }],
        retry: false,
    };
    let Resp::SendResult(result) = request(&sender, Req::Send(send)).await else {
        panic!("expected a send result")
    };
    assert_eq!(result.results[0].code, i32::from(ErrorCode::Unspecified));
    let delivery = next_delivery(&owner).await;
    assert_eq!(delivery.mailbox_id.as_ref(), &mailbox);
    assert_eq!(delivery.envelopes[0].body.as_ref(), b"sealed body");
    let seq = delivery.envelopes[0].seq;
    relay.shutdown().await.unwrap();

    // Same data folder: the store must have been closed by shutdown.
    let relay = RunningRelay::start(config(dir.path(), RegistrationMode::Open))
        .await
        .unwrap();
    // Lazy start: the envelope index loads when its owner authenticates.
    assert_eq!(relay.stats().envelopes, 0);
    assert_eq!(relay.stats().mailboxes, 1);
    let owner = connect(&relay).await;
    let authenticate = pb::Authenticate {
        mailbox_id: Bytes::copy_from_slice(&mailbox),
        signature: proof(&owner, &key).await,
    };
    assert!(matches!(
        request(&owner, Req::Authenticate(authenticate)).await,
        Resp::Authenticated(_)
    ));
    assert_eq!(relay.stats().envelopes, 1);
    let again = next_delivery(&owner).await;
    assert_eq!(again.envelopes[0].seq, seq);
    assert_eq!(again.envelopes[0].sealed_header.as_ref(), b"sealed header");
    // A cumulative ack, not answered; a request behind it on the same
    // stream is, and by then the ack was handled.
    let ack = pb::Ack {
        mailbox_id: Bytes::copy_from_slice(&mailbox),
        seqs: Vec::new(),
        through: Some(seq),
    };
    let mut bytes = framed(1, Req::Ack(ack));
    bytes.extend(framed(2, Req::GetChallenge(pb::GetChallenge {})));
    let answer = raw_request(&owner, &bytes).await;
    assert!(
        matches!(answer.kind, Some(Resp::Challenge(_))),
        "{answer:?}"
    );
    assert_eq!(answer.id, 2);
    assert_eq!(relay.stats().envelopes, 0);
    relay.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_registration_token_issued_while_running_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let relay = RunningRelay::start(config(dir.path(), RegistrationMode::Token))
        .await
        .unwrap();
    let connection = connect(&relay).await;
    let key = SigningKey::from_bytes(&[5; 32]);
    let refused = register(&connection, &key, [1; 32], "hrt_not_issued").await;
    assert!(matches!(refused, Resp::Error(_)), "{refused:?}");

    let token =
        crate::registration::create(dir.path(), 1, None, None, now_ms(), &mut rand::rng()).unwrap();
    assert!(matches!(
        register(&connection, &key, [1; 32], &token).await,
        Resp::Registered(_)
    ));
    relay.shutdown().await.unwrap();
}

#[tokio::test]
async fn connections_beyond_the_cap_are_refused_until_a_slot_frees() {
    let dir = tempfile::tempdir().unwrap();
    let relay = RunningRelay::start(Config {
        max_connections: 1,
        ..config(dir.path(), RegistrationMode::Open)
    })
    .await
    .unwrap();
    let first = connect(&relay).await;
    assert!(matches!(
        request(&first, Req::GetChallenge(pb::GetChallenge {})).await,
        Resp::Challenge(_)
    ));
    let refused = tokio::time::timeout(WAIT, try_connect(&relay.address(), relay.local_addr()))
        .await
        .unwrap();
    assert!(refused.is_err(), "a second connection is over the cap");

    first.close(VarInt::from_u32(0), b"bye");
    let mut admitted = None;
    for _ in 0..50 {
        if let Ok(connection) = try_connect(&relay.address(), relay.local_addr()).await {
            admitted = Some(connection);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let admitted = admitted.expect("a slot frees once the first connection closes");
    assert!(matches!(
        request(&admitted, Req::GetChallenge(pb::GetChallenge {})).await,
        Resp::Challenge(_)
    ));
    relay.shutdown().await.unwrap();
}

/// How a connection the relay closed was closed (also when the close came
/// before the handshake finished on this side).
async fn relay_close(
    connection: Result<quinn::Connection, quinn::ConnectionError>,
) -> quinn::ApplicationClose {
    let reason = match connection {
        Ok(connection) => tokio::time::timeout(WAIT, connection.closed())
            .await
            .expect("the relay closes the connection"),
        Err(reason) => reason,
    };
    match reason {
        quinn::ConnectionError::ApplicationClosed(close) => close,
        other => panic!("expected an application close, got {other:?}"),
    }
}

/// Whether `connection` answers a challenge request (false if the relay
/// closed it instead).
async fn answers_challenge(connection: &quinn::Connection) -> bool {
    let attempt = async {
        let (mut send, mut recv) = connection.open_bi().await.ok()?;
        let request = pb::Request {
            version: 1,
            id: 0,
            kind: Some(Req::GetChallenge(pb::GetChallenge {})),
        };
        send.write_all(&frame::encode_message(&request))
            .await
            .ok()?;
        send.finish().ok()?;
        let answer = recv.read_to_end(LIMIT).await.ok()?;
        frame::decode_message::<pb::Response>(&answer, LIMIT).ok()
    };
    matches!(
        tokio::time::timeout(WAIT, attempt).await,
        Ok(Some(pb::Response {
            kind: Some(Resp::Challenge(_)),
            ..
        }))
    )
}

#[tokio::test]
async fn an_idle_unauthenticated_connection_is_closed_after_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path(), RegistrationMode::Open);
    config.core.auth_timeout = Duration::from_millis(300);
    let relay = RunningRelay::start(config).await.unwrap();
    let idle = connect(&relay).await;
    let owner = connect(&relay).await;
    let key = SigningKey::from_bytes(&[3; 32]);
    assert!(matches!(
        register(&owner, &key, [3; 32], "").await,
        Resp::Registered(_)
    ));

    let close = relay_close(Ok(idle)).await;
    assert_eq!(close.error_code, close_code(ErrorCode::Unauthorized));
    let reason = String::from_utf8_lossy(&close.reason);
    assert!(reason.contains("not authenticated in time"), "{reason}");

    // The owner's connection outlives the deadline and still works.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(matches!(
        request(&owner, Req::GetChallenge(pb::GetChallenge {})).await,
        Resp::Challenge(_)
    ));
    assert_eq!(relay.stats().connections, 1);
    relay.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_connection_over_the_per_address_cap_is_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let relay = RunningRelay::start(Config {
        max_connections_per_ip: 2,
        ..config(dir.path(), RegistrationMode::Open)
    })
    .await
    .unwrap();
    let first = connect(&relay).await;
    let second = connect(&relay).await;
    for connection in [&first, &second] {
        assert!(matches!(
            request(connection, Req::GetChallenge(pb::GetChallenge {})).await,
            Resp::Challenge(_)
        ));
    }
    let third = tokio::time::timeout(WAIT, try_connect(&relay.address(), relay.local_addr()))
        .await
        .unwrap();
    let close = relay_close(third).await;
    assert_eq!(close.error_code, CLOSE_TOO_MANY);
    assert_eq!(
        close.reason.as_ref(),
        b"too many connections from your address"
    );
    // The two under the cap are unaffected.
    assert!(matches!(
        request(&second, Req::GetChallenge(pb::GetChallenge {})).await,
        Resp::Challenge(_)
    ));

    first.close(VarInt::from_u32(0), b"bye");
    let mut admitted = None;
    for _ in 0..50 {
        let connection = connect(&relay).await;
        if answers_challenge(&connection).await {
            admitted = Some(connection);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let admitted = admitted.expect("a slot frees once a connection closes");
    assert!(matches!(
        request(&admitted, Req::GetChallenge(pb::GetChallenge {})).await,
        Resp::Challenge(_)
    ));
    relay.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_registration_token_revoked_while_running_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let relay = RunningRelay::start(config(dir.path(), RegistrationMode::Token))
        .await
        .unwrap();
    let connection = connect(&relay).await;
    let token =
        crate::registration::create(dir.path(), 5, None, None, now_ms(), &mut rand::rng()).unwrap();
    let key = SigningKey::from_bytes(&[5; 32]);
    assert!(matches!(
        register(&connection, &key, [1; 32], &token).await,
        Resp::Registered(_)
    ));
    crate::registration::revoke(dir.path(), &token).unwrap();
    let refused = register(&connection, &key, [2; 32], &token).await;
    assert_eq!(error_code(refused), ErrorCode::Unauthorized);
    relay.shutdown().await.unwrap();
}
