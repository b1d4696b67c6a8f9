//! The client against a small scripted relay on `127.0.0.1`: real QUIC, real
//! TLS with a pinned rcgen certificate, a fake protocol handler. The real
//! relay is exercised by the end-to-end tests in `tests/`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
use hearth_proto::relay::{self as pb, request::Kind as Req, response::Kind as Resp};
use hearth_protocol::address::{Fingerprint, RelayAddress};
use hearth_protocol::frame;
use rcgen::PublicKeyData as _;

use super::*;

const CHALLENGE: [u8; 32] = [0xc4; 32];
/// Requests for this mailbox are never answered.
const STALLED: [u8; 32] = [0xee; 32];
const GOOD_TOKEN: &[u8] = b"good token";

/// What the fake relay remembers across connections.
#[derive(Default)]
struct RelayState {
    owners: HashMap<[u8; 32], VerifyingKey>,
    token_hashes: Vec<Vec<u8>>,
    requests: Vec<pb::Request>,
    /// Request streams the clients opened.
    streams: usize,
}

struct FakeRelay {
    address: RelayAddress,
    state: Arc<Mutex<RelayState>>,
    _endpoint: quinn::Endpoint,
}

/// Frames the fake relay sends on uni streams after `Authenticate`.
type Script = Vec<Vec<u8>>;

fn start_relay(alpn: &[u8], deliveries: Script) -> FakeRelay {
    let certified =
        rcgen::generate_simple_self_signed(vec!["not-the-sni.example".to_string()]).unwrap();
    let fingerprint = Fingerprint::of_spki(&certified.signing_key.subject_public_key_info());
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)
        .unwrap();
    tls.alpn_protocols = vec![alpn.to_vec()];
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls).unwrap();
    let config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    let endpoint = quinn::Endpoint::server(config, "127.0.0.1:0".parse().unwrap()).unwrap();
    let port = endpoint.local_addr().unwrap().port();
    let state = Arc::new(Mutex::new(RelayState::default()));
    tokio::spawn(accept_loop(
        endpoint.clone(),
        Arc::clone(&state),
        Arc::new(deliveries),
    ));
    let address = RelayAddress {
        fingerprint,
        host: "127.0.0.1".into(),
        port,
    };
    FakeRelay {
        address,
        state,
        _endpoint: endpoint,
    }
}

async fn accept_loop(
    endpoint: quinn::Endpoint,
    state: Arc<Mutex<RelayState>>,
    script: Arc<Script>,
) {
    while let Some(incoming) = endpoint.accept().await {
        let (state, script) = (Arc::clone(&state), Arc::clone(&script));
        tokio::spawn(async move {
            if let Ok(connection) = incoming.await {
                serve(connection, state, script).await;
            }
        });
    }
}

async fn serve(connection: quinn::Connection, state: Arc<Mutex<RelayState>>, script: Arc<Script>) {
    let mut exporter = [0; 32];
    connection
        .export_keying_material(&mut exporter, b"EXPORTER-hearth-auth", b"")
        .unwrap();
    while let Ok((send, recv)) = connection.accept_bi().await {
        state.lock().unwrap().streams += 1;
        tokio::spawn(serve_stream(
            connection.clone(),
            (send, recv),
            exporter,
            Arc::clone(&state),
            Arc::clone(&script),
        ));
    }
}

/// One request stream: every frame answered with its id, except acks and
/// requests for [`STALLED`]; a broken frame ends the stream.
async fn serve_stream(
    connection: quinn::Connection,
    (mut send, mut recv): (quinn::SendStream, quinn::RecvStream),
    exporter: [u8; 32],
    state: Arc<Mutex<RelayState>>,
    script: Arc<Script>,
) {
    let mut splitter = frame::FrameSplitter::new(1 << 16);
    loop {
        loop {
            let frame = match splitter.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(_) => return,
            };
            let request = <pb::Request as prost::Message>::decode(frame)
                .map_err(|_| frame::FrameError::BadMessage);
            if let Ok(request) = &request {
                state.lock().unwrap().requests.push(request.clone());
            }
            let id = request.as_ref().map_or(0, |r| r.id);
            let Some(mut response) = answer(request, &exporter, &state) else {
                continue;
            };
            response.id = id;
            if send
                .write_all(&frame::encode_message(&response))
                .await
                .is_err()
            {
                return;
            }
            if matches!(response.kind, Some(Resp::Authenticated(_))) {
                let mut uni = connection.open_uni().await.unwrap();
                for delivery in script.iter() {
                    uni.write_all(delivery).await.unwrap();
                }
                uni.finish().unwrap();
            }
        }
        match recv.read_chunk(splitter.room(), true).await {
            Ok(Some(chunk)) => splitter.push(&chunk.bytes),
            _ => break,
        }
    }
    if splitter.buffered() > 0 {
        let cut = error(pb::ErrorCode::BadFrame, "stream ended inside a frame");
        let _ = send.write_all(&frame::encode_message(&cut)).await;
    }
    let _ = send.finish();
}

fn error(code: pb::ErrorCode, message: &str) -> pb::Response {
    let error = pb::Error {
        code: code.into(),
        message: message.into(),
    };
    pb::Response {
        id: 0,
        kind: Some(Resp::Error(error)),
    }
}

fn verify_proof(key: &VerifyingKey, signature: &[u8], exporter: &[u8; 32]) -> bool {
    let Ok(signature) = Signature::from_slice(signature) else {
        return false;
    };
    key.verify_strict(&auth_message(&CHALLENGE, exporter), &signature)
        .is_ok()
}

/// The fake relay's protocol: just enough to check what the client sends.
fn answer(
    request: Result<pb::Request, frame::FrameError>,
    exporter: &[u8; 32],
    state: &Mutex<RelayState>,
) -> Option<pb::Response> {
    let Ok(request) = request else {
        return Some(error(pb::ErrorCode::BadFrame, "bad frame"));
    };
    if request.version != 1 {
        return Some(error(pb::ErrorCode::UnsupportedVersion, "version 1 only"));
    }
    let mut state = state.lock().unwrap();
    let kind = match request.kind? {
        Req::GetChallenge(_) => Resp::Challenge(pb::Challenge {
            challenge: Bytes::copy_from_slice(&CHALLENGE),
        }),
        Req::Register(register) => {
            let key = VerifyingKey::from_bytes(&register.mailbox_key[..].try_into().ok()?).ok()?;
            if register.registration_token != "letmein" {
                return Some(error(pb::ErrorCode::RegistrationRequired, "token needed"));
            }
            if !verify_proof(&key, &register.signature, exporter) {
                return Some(error(pb::ErrorCode::Unauthorized, "bad proof"));
            }
            state
                .owners
                .insert(register.mailbox_id[..].try_into().ok()?, key);
            Resp::Registered(pb::Registered {})
        }
        Req::Authenticate(auth) => {
            let id: [u8; 32] = auth.mailbox_id[..].try_into().ok()?;
            match state.owners.get(&id) {
                Some(key) if verify_proof(key, &auth.signature, exporter) => {
                    Resp::Authenticated(pb::Authenticated {})
                }
                _ => return Some(error(pb::ErrorCode::Unauthorized, "bad proof")),
            }
        }
        Req::Send(send) => {
            let results = send.recipients.iter().map(|r| pb::RecipientResult {
                code: if r.send_token == GOOD_TOKEN {
                    0
                } else {
                    pb::ErrorCode::Unauthorized.into()
                },
            });
            Resp::SendResult(pb::SendResult {
                results: results.collect(),
            })
        }
        // Acknowledgements are never answered.
        Req::Ack(_) => return None,
        Req::AddSendToken(add) => {
            state.token_hashes.push(add.token_hash.to_vec());
            Resp::Done(pb::Done {})
        }
        Req::RevokeSendToken(_) | Req::PublishPrekeys(_) | Req::Sync(_) => Resp::Done(pb::Done {}),
        Req::FetchPrekeys(_) => Resp::PrekeyBundle(pb::PrekeyBundle {
            signed_bundle: Bytes::from_static(b"bundle"),
            one_time_prekey: Bytes::from_static(b"otk"),
            pq_prekey: Bytes::from_static(b"pq"),
            pq_is_last_resort: false,
        }),
        Req::PrekeyCounts(counts) if counts.mailbox_id == STALLED[..] => return None,
        Req::PrekeyCounts(_) => Resp::PrekeyCounts(pb::PrekeyCountsResult {
            one_time_prekeys: 3,
            one_time_pq_prekeys: 2,
            has_last_resort: true,
        }),
    };
    Some(pb::Response {
        id: 0,
        kind: Some(kind),
    })
}

fn delivery_frame(mailbox_id: [u8; 32], seqs: &[u64]) -> Vec<u8> {
    let envelopes = seqs
        .iter()
        .map(|&seq| pb::Envelope {
            seq,
            sealed_header: Bytes::from(format!("header {seq}")),
            body: Bytes::from(format!("body {seq}")),
            stored_at_ms: 1_000 + seq,
        })
        .collect();
    frame::encode_message(&pb::Delivery {
        mailbox_id: Bytes::copy_from_slice(&mailbox_id),
        envelopes,
    })
}

fn recipient(mailbox: u8, token: &'static [u8]) -> OutgoingRecipient {
    OutgoingRecipient {
        mailbox_id: [mailbox; 32],
        send_token: Bytes::from_static(token),
        sealed_header: Bytes::from_static(b"sealed"),
    }
}

#[tokio::test]
async fn register_proof_binds_the_relay_challenge_and_this_tls_session() {
    let relay = start_relay(ALPN, vec![]);
    let client = RelayClient::connect(&relay.address).await.unwrap();
    let key = SigningKey::from_bytes(&[5; 32]);
    client
        .register([1; 32], &key, Some("letmein"))
        .await
        .unwrap();
    assert!(relay.state.lock().unwrap().owners.contains_key(&[1; 32]));

    // The same proof replayed on another connection is refused.
    let other = RelayClient::connect(&relay.address).await.unwrap();
    let replay = pb::Authenticate {
        mailbox_id: Bytes::copy_from_slice(&[1; 32]),
        signature: Bytes::copy_from_slice(&client.auth_proof(&key)),
    };
    let request = pb::Request {
        version: PROTOCOL_VERSION,
        id: 0,
        kind: Some(Req::Authenticate(replay)),
    };
    match other.request(request).await {
        Err(ClientError::Relay {
            code: RelayErrorCode::Unauthorized,
            ..
        }) => {}
        other => panic!("replayed proof: {other:?}"),
    }
    other.authenticate([1; 32], &key).await.unwrap();
}

#[tokio::test]
async fn relay_errors_carry_code_and_message() {
    let relay = start_relay(ALPN, vec![]);
    let client = RelayClient::connect(&relay.address).await.unwrap();
    let err = client
        .register([1; 32], &SigningKey::from_bytes(&[5; 32]), None)
        .await
        .unwrap_err();
    match err {
        ClientError::Relay { code, message } => {
            assert_eq!(code, RelayErrorCode::RegistrationRequired);
            assert_eq!(message, "token needed");
        }
        other => panic!("{other:?}"),
    }
    let err = client
        .request(pb::Request {
            version: 2,
            id: 0,
            kind: None,
        })
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Relay {
                code: RelayErrorCode::UnsupportedVersion,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn malformed_raw_frames_get_bad_frame_and_the_connection_survives() {
    let relay = start_relay(ALPN, vec![]);
    let client = RelayClient::connect(&relay.address).await.unwrap();
    let err = client.request_raw(&[0x05, 0xff, 0xff]).await.unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Relay {
                code: RelayErrorCode::BadFrame,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        client
            .prekey_counts([2; 32])
            .await
            .unwrap()
            .one_time_prekeys,
        3
    );
}

#[tokio::test]
async fn send_reports_each_recipient_and_send_one_turns_refusal_into_an_error() {
    let relay = start_relay(ALPN, vec![]);
    let client = RelayClient::connect(&relay.address).await.unwrap();
    let send = OutgoingSend {
        client_message_id: [9; 16],
        body: Bytes::from_static(b"ciphertext"),
        recipients: vec![
            recipient(1, GOOD_TOKEN),
            recipient(2, b"stale"),
            recipient(3, GOOD_TOKEN),
        ],
        retry: false,
    };
    let results = client.send(send).await.unwrap();
    assert_eq!(
        results,
        vec![Ok(()), Err(RelayErrorCode::Unauthorized), Ok(())]
    );

    let body = Bytes::from_static(b"ciphertext");
    client
        .send_one([8; 16], recipient(1, GOOD_TOKEN), body.clone())
        .await
        .unwrap();
    let err = client
        .send_one([7; 16], recipient(2, b"stale"), body)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Relay {
                code: RelayErrorCode::Unauthorized,
                ..
            }
        ),
        "{err:?}"
    );

    let state = relay.state.lock().unwrap();
    let Some(Req::Send(wire)) = &state.requests.last().unwrap().kind else {
        panic!("not a send")
    };
    assert_eq!(&wire.client_message_id[..], &[7; 16]);
    assert!(state.requests.iter().all(|r| r.version == PROTOCOL_VERSION));
}

#[tokio::test]
async fn send_tokens_leave_the_device_only_as_hashes() {
    let relay = start_relay(ALPN, vec![]);
    let client = RelayClient::connect(&relay.address).await.unwrap();
    client.add_send_token([1; 32], b"my token").await.unwrap();
    client
        .revoke_send_token([1; 32], b"my token")
        .await
        .unwrap();
    assert_eq!(
        relay.state.lock().unwrap().token_hashes,
        vec![send_token_hash(b"my token").to_vec()]
    );
}

#[tokio::test]
async fn prekey_and_ack_requests_map_their_answers() {
    let relay = start_relay(ALPN, vec![]);
    let client = RelayClient::connect(&relay.address).await.unwrap();
    let upload = PrekeyUpload {
        mailbox_id: [1; 32],
        signed_bundle: Bytes::from_static(b"bundle"),
        one_time_prekeys: vec![Bytes::from_static(b"otk")],
        one_time_pq_prekeys: vec![],
        last_resort_pq_prekey: Bytes::from_static(b"lr"),
    };
    client.publish_prekeys(upload).await.unwrap();
    let fetched = client.fetch_prekeys([1; 32], GOOD_TOKEN).await.unwrap();
    assert_eq!(fetched.one_time_prekey.as_deref(), Some(&b"otk"[..]));
    assert!(!fetched.pq_is_last_resort);
    let counts = client.prekey_counts([1; 32]).await.unwrap();
    assert_eq!(
        counts,
        PrekeyCounts {
            one_time_prekeys: 3,
            one_time_pq_prekeys: 2,
            has_last_resort: true
        }
    );
    // Acks are queued, merged per mailbox, and not answered; a flush
    // waits until the relay has read them.
    client.ack([1; 32], &[4, 5]).unwrap();
    client.ack_through([1; 32], 3).unwrap();
    client.ack([1; 32], &[6, 5]).unwrap();
    client.flush().await.unwrap();
    let many: Vec<u64> = (0..MAX_ACK_SEQS as u64 + 5).collect();
    client.ack([2; 32], &many).unwrap();
    client.flush().await.unwrap();
    let state = relay.state.lock().unwrap();
    let acks: Vec<(Option<u64>, usize)> = state
        .requests
        .iter()
        .filter_map(|r| match &r.kind {
            Some(Req::Ack(ack)) => Some((ack.through, ack.seqs.len())),
            _ => None,
        })
        .collect();
    assert_eq!(acks, [(Some(3), 3), (None, MAX_ACK_SEQS), (None, 5)]);
}

#[tokio::test]
async fn pipelined_requests_share_the_control_stream_and_large_bodies_get_their_own() {
    let relay = start_relay(ALPN, vec![]);
    let client = RelayClient::connect(&relay.address).await.unwrap();
    let small = |id: u8| OutgoingSend {
        client_message_id: [id; 16],
        body: Bytes::from(vec![id; 100]),
        recipients: vec![recipient(1, GOOD_TOKEN)],
        retry: false,
    };
    let (a, b, c) = tokio::join!(
        client.send(small(1)),
        client.send(small(2)),
        client.prekey_counts([1; 32])
    );
    assert_eq!(a.unwrap(), [Ok(())]);
    assert_eq!(b.unwrap(), [Ok(())]);
    assert_eq!(c.unwrap().one_time_prekeys, 3);
    let large = OutgoingSend {
        body: Bytes::from(vec![7; OWN_STREAM_BODY_BYTES + 1]),
        ..small(3)
    };
    assert_eq!(client.send(large).await.unwrap(), [Ok(())]);
    let streams = relay.state.lock().unwrap().streams;
    assert_eq!(streams, 2, "the control stream plus one for the large body");
    let ids: Vec<u64> = relay
        .state
        .lock()
        .unwrap()
        .requests
        .iter()
        .map(|r| r.id)
        .collect();
    let mut unique = ids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "every request has its own id");
}

#[tokio::test]
async fn deliveries_arrive_in_order_skipping_bad_frames_then_end_on_close() {
    let mailbox = [1; 32];
    let script = vec![
        delivery_frame(mailbox, &[1]),
        vec![0x03, 0xff, 0xff, 0xff],
        delivery_frame(mailbox, &[2, 3]),
    ];
    let relay = start_relay(ALPN, script);
    let client = RelayClient::connect(&relay.address).await.unwrap();
    let key = SigningKey::from_bytes(&[5; 32]);
    client
        .register(mailbox, &key, Some("letmein"))
        .await
        .unwrap();
    client.authenticate(mailbox, &key).await.unwrap();

    let first = client.next_delivery().await.unwrap();
    assert_eq!(first.mailbox_id, mailbox);
    assert_eq!(first.envelopes.len(), 1);
    assert_eq!(&first.envelopes[0].body[..], b"body 1");
    assert_eq!(first.envelopes[0].stored_at_ms, 1_001);
    let second = client.next_delivery().await.unwrap();
    let seqs: Vec<u64> = second.envelopes.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [2, 3]);

    client.close();
    assert!(client.next_delivery().await.is_none());
    let err = client.prekey_counts(mailbox).await.unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::ConnectionLost(quinn::ConnectionError::LocallyClosed)
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn wrong_pin_is_a_fingerprint_mismatch_naming_the_presented_key() {
    let relay = start_relay(ALPN, vec![]);
    let mut address = relay.address.clone();
    address.fingerprint = Fingerprint([0; 32]);
    match RelayClient::connect(&address).await {
        Err(ClientError::FingerprintMismatch {
            expected,
            presented,
        }) => {
            assert_eq!(expected, Fingerprint([0; 32]));
            assert_eq!(presented, relay.address.fingerprint);
        }
        other => panic!("{other:?}"),
    }
    assert!(relay.state.lock().unwrap().requests.is_empty());
}

#[tokio::test]
async fn a_relay_without_hearth_alpn_is_refused() {
    let relay = start_relay(b"hearth/2", vec![]);
    let err = RelayClient::connect(&relay.address).await.unwrap_err();
    assert!(matches!(err, ClientError::Connect(_)), "{err:?}");
}

#[tokio::test]
async fn unanswered_requests_and_silent_relays_time_out() {
    let relay = start_relay(ALPN, vec![]);
    let options = ConnectOptions {
        request_timeout: Duration::from_millis(200),
        ..ConnectOptions::default()
    };
    let client = RelayClient::connect_with(&relay.address, options)
        .await
        .unwrap();
    assert!(matches!(
        client.prekey_counts(STALLED).await,
        Err(ClientError::Timeout)
    ));
    // The connection is still usable.
    assert!(client.prekey_counts([1; 32]).await.is_ok());

    // Nobody listens on this socket's port once it is dropped.
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let silent = RelayAddress {
        port,
        ..relay.address.clone()
    };
    let options = ConnectOptions {
        connect_timeout: Duration::from_millis(300),
        ..ConnectOptions::default()
    };
    let err = RelayClient::connect_with(&silent, options)
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Timeout), "{err:?}");
}

#[tokio::test]
async fn many_connections_can_share_one_endpoint() {
    let relay = start_relay(ALPN, vec![]);
    let endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    let options = ConnectOptions {
        endpoint: Some(endpoint.clone()),
        ..ConnectOptions::default()
    };
    let mut clients = Vec::new();
    for i in 0..4u8 {
        let client = RelayClient::connect_with(&relay.address, options.clone())
            .await
            .unwrap();
        client
            .register([i; 32], &SigningKey::from_bytes(&[i; 32]), Some("letmein"))
            .await
            .unwrap();
        clients.push(client);
    }
    assert_eq!(relay.state.lock().unwrap().owners.len(), 4);
    assert_eq!(endpoint.open_connections(), 4);
    drop(clients);
}
