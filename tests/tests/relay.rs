//! End-to-end behaviour of the relay: real QUIC on loopback, real files and,
//! where restarts matter, the real `hearth-relay` binary.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use ed25519_dalek::Signer as _;
use hearth_client::relay::auth_message;
use hearth_client::{ClientError, OutgoingSend, RelayClient, RelayErrorCode};
use hearth_proto::relay as pb;
use hearth_protocol::frame;
use hearth_tests::{
    Owner, RelayProcess, TestRelay, assert_refused, client_message_id, connect, drain,
    drain_and_ack, drain_until_quiet, stored_counts, within,
};
use prost::Message as _;

/// How long "nothing more arrives" is watched for.
const QUIET: Duration = Duration::from_millis(800);
/// Upper bound for receiving an expected batch of deliveries.
const DRAIN: Duration = Duration::from_secs(15);

fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// Sends `body` to one recipient; panics unless the relay stored it.
async fn send_ok(client: &RelayClient, to: &Owner, body: impl Into<Bytes>) {
    let sent = within(
        "send",
        client.send_one(client_message_id(), to.recipient(), body.into()),
    )
    .await;
    if let Err(error) = sent {
        panic!("send failed: {error}");
    }
}

fn bodies(envelopes: &[hearth_client::DeliveredEnvelope]) -> Vec<Bytes> {
    envelopes.iter().map(|e| e.body.clone()).collect()
}

fn seqs(envelopes: &[hearth_client::DeliveredEnvelope]) -> Vec<u64> {
    envelopes.iter().map(|e| e.seq).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn envelope_for_an_offline_mailbox_survives_a_restart_and_ack_deletes_it() {
    let dir = temp_dir();
    let mut relay = RelayProcess::start(dir.path()).await;
    let bob = Owner::random();
    bob.register(relay.address()).await.close();

    let sender = connect(relay.address()).await;
    let sent: Vec<Bytes> = (0..3)
        .map(|i| Bytes::from(format!("for offline bob #{i}")))
        .collect();
    for body in &sent {
        send_ok(&sender, &bob, body.clone()).await;
    }
    drop(sender);

    relay.restart().await;
    let client = bob.connect(relay.address()).await;
    let delivered = drain(&client, 3, DRAIN).await;
    assert_eq!(
        bodies(&delivered),
        sent,
        "bob gets every envelope, in order"
    );
    client.ack(bob.mailbox_id, &seqs(&delivered)).unwrap();
    within("flush", client.flush()).await.unwrap();
    drop(client);

    relay.restart().await;
    let client = bob.connect(relay.address()).await;
    let again = drain_until_quiet(&client, QUIET).await;
    assert!(
        again.is_empty(),
        "acknowledged envelopes came back: {again:?}"
    );
    drop(client);

    assert!(relay.terminate().await.success());
    assert_eq!(
        stored_counts(dir.path()),
        (0, 0),
        "acknowledged envelopes and their bodies are deleted"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unacknowledged_envelopes_come_back_after_reconnect_in_fifo_order() {
    let relay = TestRelay::start().await;
    let bob = Owner::random();
    bob.register(relay.address()).await.close();
    let sender = connect(relay.address()).await;
    let sent: Vec<Bytes> = (0..100)
        .map(|i| Bytes::from(format!("message {i:03}")))
        .collect();
    for body in &sent {
        send_ok(&sender, &bob, body.clone()).await;
    }

    let first = bob.connect(relay.address()).await;
    let delivered = drain(&first, 100, DRAIN).await;
    assert_eq!(bodies(&delivered), sent, "delivery is FIFO");
    assert!(
        seqs(&delivered).windows(2).all(|w| w[0] < w[1]),
        "sequence numbers ascend"
    );
    first.close();
    drop(first);

    let second = bob.connect(relay.address()).await;
    let redelivered = drain(&second, 100, DRAIN).await;
    assert_eq!(
        bodies(&redelivered),
        sent,
        "unacknowledged envelopes are redelivered in order"
    );
    assert_eq!(seqs(&redelivered), seqs(&delivered));
    // Cumulative: everything delivered on this connection up to the 50th.
    second
        .ack_through(bob.mailbox_id, seqs(&redelivered)[49])
        .unwrap();
    within("flush", second.flush()).await.unwrap();
    second.close();
    drop(second);

    let third = bob.connect(relay.address()).await;
    let rest = drain(&third, 50, DRAIN).await;
    assert_eq!(
        bodies(&rest),
        sent[50..],
        "only the unacknowledged half comes back"
    );
    assert!(drain_until_quiet(&third, QUIET).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn one_send_reaches_thirty_recipients_and_stores_the_body_once() {
    let mut relay = TestRelay::start().await;
    let owners: Vec<Owner> = (0..30).map(|_| Owner::random()).collect();
    let mut clients = Vec::new();
    for owner in &owners {
        clients.push(owner.register(relay.address()).await);
    }
    let sender = connect(relay.address()).await;
    let body = Bytes::from(vec![0x5a; 2000]);
    let recipients: Vec<_> = owners.iter().map(Owner::recipient).collect();
    let headers: Vec<Bytes> = recipients.iter().map(|r| r.sealed_header.clone()).collect();
    let send = OutgoingSend {
        client_message_id: client_message_id(),
        body: body.clone(),
        recipients,
        retry: false,
    };
    let results = within("send to 30", sender.send(send)).await.unwrap();
    assert_eq!(
        results,
        vec![Ok(()); 30],
        "every recipient's envelope is stored"
    );
    let stats = relay.relay().stats();
    assert_eq!((stats.bodies, stats.envelopes), (1, 30));

    for (client, header) in clients.iter().zip(&headers) {
        let delivered = drain(client, 1, DRAIN).await;
        assert_eq!(delivered.len(), 1);
        assert_eq!(delivered[0].body, body);
        assert_eq!(
            &delivered[0].sealed_header, header,
            "each recipient gets its own sealed header"
        );
    }
    drop((clients, sender));
    relay.shutdown().await;
    assert_eq!(
        stored_counts(relay.data_dir()),
        (1, 30),
        "one body, thirty envelopes on disk"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_and_revoked_send_tokens_are_unauthorized_and_store_nothing() {
    let mut relay = TestRelay::start().await;
    let bob = Owner::random();
    let owner_client = bob.register(relay.address()).await;
    let sender = connect(relay.address()).await;

    let wrong = bob.recipient_with_token(Bytes::from_static(b"not bob's token"));
    let result = within(
        "send",
        sender.send_one(client_message_id(), wrong, Bytes::from_static(b"x")),
    )
    .await;
    assert_refused(result, RelayErrorCode::Unauthorized);

    within(
        "revoke",
        owner_client.revoke_send_token(bob.mailbox_id, &bob.send_token),
    )
    .await
    .unwrap();
    let revoked = bob.recipient();
    let result = within(
        "send",
        sender.send_one(client_message_id(), revoked, Bytes::from_static(b"y")),
    )
    .await;
    assert_refused(result, RelayErrorCode::Unauthorized);
    assert_eq!(relay.relay().stats().envelopes, 0);

    // The mailbox still works with a token its owner still accepts.
    let fresh = Bytes::from_static(b"a fresh token");
    within("add", owner_client.add_send_token(bob.mailbox_id, &fresh))
        .await
        .unwrap();
    let recipient = bob.recipient_with_token(fresh);
    within(
        "send",
        sender.send_one(client_message_id(), recipient, Bytes::from_static(b"z")),
    )
    .await
    .unwrap();
    let delivered = drain(&owner_client, 1, DRAIN).await;
    assert_eq!(
        bodies(&delivered),
        [Bytes::from_static(b"z")],
        "only the authorized envelope arrives"
    );
    assert!(drain_until_quiet(&owner_client, QUIET).await.is_empty());

    drop((owner_client, sender));
    relay.shutdown().await;
    assert_eq!(
        stored_counts(relay.data_dir()),
        (0, 1),
        "refused sends stored nothing (a 1:1 body is inside its envelope)"
    );
}

/// Signs the auth message for `challenge` and `exporter` with `owner`'s key.
fn proof(owner: &Owner, challenge: &[u8; 32], exporter: &[u8; 32]) -> Bytes {
    Bytes::copy_from_slice(
        &owner
            .key
            .sign(&auth_message(challenge, exporter))
            .to_bytes(),
    )
}

async fn challenge_of(client: &RelayClient) -> [u8; 32] {
    let request = pb::Request {
        version: 1,
        id: 0,
        kind: Some(pb::request::Kind::GetChallenge(pb::GetChallenge {})),
    };
    match within("challenge", client.request(request))
        .await
        .unwrap()
        .kind
    {
        Some(pb::response::Kind::Challenge(c)) => c.challenge[..].try_into().unwrap(),
        other => panic!("expected a challenge, got {other:?}"),
    }
}

fn exporter_of(client: &RelayClient) -> [u8; 32] {
    let mut exporter = [0u8; 32];
    client
        .quinn_connection()
        .export_keying_material(&mut exporter, b"EXPORTER-hearth-auth", b"")
        .unwrap();
    exporter
}

async fn authenticate_with(
    client: &RelayClient,
    owner: &Owner,
    signature: Bytes,
) -> Result<pb::Response, ClientError> {
    let authenticate = pb::Authenticate {
        mailbox_id: Bytes::copy_from_slice(&owner.mailbox_id),
        signature,
    };
    let request = pb::Request {
        version: 1,
        id: 0,
        kind: Some(pb::request::Kind::Authenticate(authenticate)),
    };
    within("authenticate", client.request(request)).await
}

#[tokio::test(flavor = "multi_thread")]
async fn auth_proof_replayed_on_another_connection_is_unauthorized() {
    let relay = TestRelay::start().await;
    let bob = Owner::random();
    let first = bob.register(relay.address()).await;
    let second = connect(relay.address()).await;

    // The very signature that worked on the first connection.
    let replayed = Bytes::copy_from_slice(&first.auth_proof(&bob.key));
    assert_refused(
        authenticate_with(&second, &bob, replayed).await,
        RelayErrorCode::Unauthorized,
    );
    // Even over the second connection's own challenge, the first
    // connection's TLS exporter gives the proof away as foreign.
    let challenge = challenge_of(&second).await;
    let foreign = proof(&bob, &challenge, &exporter_of(&first));
    assert_refused(
        authenticate_with(&second, &bob, foreign).await,
        RelayErrorCode::Unauthorized,
    );
    // Nothing was authenticated: owner-only requests stay refused.
    assert_refused(
        within("prekey counts", second.prekey_counts(bob.mailbox_id)).await,
        RelayErrorCode::Unauthorized,
    );

    // The same construction with this connection's own exporter works.
    let own = proof(&bob, &challenge, &exporter_of(&second));
    let response = authenticate_with(&second, &bob, own).await.unwrap();
    assert!(matches!(
        response.kind,
        Some(pb::response::Kind::Authenticated(_))
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn client_refuses_a_relay_whose_key_does_not_match_the_pin() {
    let relay = TestRelay::start().await;
    let mut impostor_pin = relay.address().clone();
    impostor_pin.fingerprint.0[0] ^= 0x01;

    let result = within(
        "connect",
        RelayClient::connect_with(&impostor_pin, hearth_tests::fast_options()),
    )
    .await;
    match result {
        Err(ClientError::FingerprintMismatch {
            expected,
            presented,
        }) => {
            assert_eq!(expected, impostor_pin.fingerprint);
            assert_eq!(presented, relay.address().fingerprint);
        }
        other => panic!("expected a fingerprint mismatch, got {other:?}"),
    }
    // The handshake never completed: the relay saw no connection, so no request.
    assert_eq!(relay.relay().stats().connections, 0);

    let client = connect(relay.address()).await;
    assert_eq!(
        relay.relay().stats().connections,
        1,
        "the right pin connects"
    );
    drop(client);
}

/// A request frame (`version = 1`) carrying a field number the relay does not
/// know, as a newer client might send.
fn unknown_request_frame() -> Vec<u8> {
    let mut payload = Vec::new();
    prost::encoding::uint32::encode(1, &1, &mut payload);
    prost::encoding::bytes::encode(99, &b"from the future".to_vec(), &mut payload);
    let mut out = Vec::new();
    frame::encode_into(&payload, &mut out);
    out
}

/// A well-formed send request whose frame is 300 KiB.
fn oversize_send_frame(bob: &Owner) -> Vec<u8> {
    let send = pb::Send {
        client_message_id: Bytes::copy_from_slice(&client_message_id()),
        body: Bytes::from(vec![7u8; 300 * 1024]),
        recipients: vec![pb::Recipient {
            mailbox_id: Bytes::copy_from_slice(&bob.mailbox_id),
            send_token: bob.send_token.clone(),
            sealed_header: Bytes::from_static(b"h"),
        }],
        retry: false,
    };
    let request = pb::Request {
        version: 1,
        id: 0,
        kind: Some(pb::request::Kind::Send(send)),
    };
    assert!(request.encoded_len() > 256 * 1024);
    frame::encode_message(&request)
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_oversize_and_unknown_frames_get_typed_errors_and_serving_goes_on() {
    let relay = TestRelay::start().await;
    let bob = Owner::random();
    let bob_client = bob.register(relay.address()).await;
    let client = connect(relay.address()).await;

    let mut declared_too_large = Vec::new();
    prost::encoding::encode_varint(300 * 1024, &mut declared_too_large);
    declared_too_large.extend_from_slice(b"just a little");
    let cases: [(&str, Vec<u8>, RelayErrorCode); 5] = [
        (
            "garbage",
            vec![0x05, 0xff, 0xff, 0xff, 0xff, 0xff],
            RelayErrorCode::BadFrame,
        ),
        (
            "truncated",
            vec![0x40, 0x08, 0x01],
            RelayErrorCode::BadFrame,
        ),
        (
            "declared > 256 KiB",
            declared_too_large,
            RelayErrorCode::FrameTooLarge,
        ),
        (
            "300 KiB of data",
            oversize_send_frame(&bob),
            RelayErrorCode::FrameTooLarge,
        ),
        (
            "unknown request type",
            unknown_request_frame(),
            RelayErrorCode::BadRequest,
        ),
    ];
    let mut expected = Vec::new();
    for (i, (what, bytes, code)) in cases.into_iter().enumerate() {
        let result = within(what, client.request_raw(&bytes)).await;
        match result {
            Err(ClientError::Relay { code: got, .. }) => assert_eq!(got, code, "{what}"),
            other => panic!("{what}: expected {code}, got {other:?}"),
        }
        // The same connection keeps working after each bad frame...
        let body = Bytes::from(format!("after {what}"));
        send_ok(&client, &bob, body.clone()).await;
        expected.push(body);
        // ...and so do other clients.
        let other = connect(relay.address()).await;
        let body = Bytes::from(format!("other client {i}"));
        send_ok(&other, &bob, body.clone()).await;
        expected.push(body);
    }
    let delivered = drain(&bob_client, expected.len(), DRAIN).await;
    assert_eq!(bodies(&delivered), expected);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_frames_on_the_control_stream_cost_the_sender_a_request_or_a_stream_never_the_relay() {
    let relay = TestRelay::start().await;
    let bob = Owner::random();
    let bob_client = bob.register(relay.address()).await;
    let client = connect(relay.address()).await;

    // An intact prefix around a broken message (field 10 holding a broken
    // nested message): answered BAD_FRAME, and the stream goes on.
    client.control_raw(&[0x03, 0x52, 0x01, 0xff]);
    send_ok(&client, &bob, Bytes::from_static(b"after a bad frame")).await;

    // A broken length prefix: the relay stops reading that control stream,
    // so the request queued behind it fails...
    client.control_raw(&[0xff; 11]);
    let lost = within(
        "counts",
        client.send_one(
            client_message_id(),
            bob.recipient(),
            Bytes::from_static(b"lost"),
        ),
    )
    .await;
    assert!(
        matches!(lost, Err(ClientError::BadResponse(_))),
        "the request behind a broken frame fails: {lost:?}"
    );
    // ...and the next request opens a new control stream on the same
    // connection.
    send_ok(
        &client,
        &bob,
        Bytes::from_static(b"on a new control stream"),
    )
    .await;
    // Other clients never noticed.
    let other = connect(relay.address()).await;
    send_ok(&other, &bob, Bytes::from_static(b"another client")).await;
    let delivered = drain(&bob_client, 3, DRAIN).await;
    assert_eq!(
        bodies(&delivered),
        [
            Bytes::from_static(b"after a bad frame"),
            Bytes::from_static(b"on a new control stream"),
            Bytes::from_static(b"another client"),
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_mailbox_answers_mailbox_full_never_a_silent_drop() {
    let relay = TestRelay::start_with(|config| {
        config.core.mailbox_max_envelopes = 3;
        config.core.mailbox_max_bytes = 3000;
    })
    .await;
    let (counted, sized) = (Owner::random(), Owner::random());
    let counted_client = counted.register(relay.address()).await;
    let _sized_client = sized.register(relay.address()).await;
    let sender = connect(relay.address()).await;

    for i in 0..3 {
        send_ok(&sender, &counted, format!("small {i}")).await;
    }
    let result = within(
        "send",
        sender.send_one(
            client_message_id(),
            counted.recipient(),
            "one too many".into(),
        ),
    )
    .await;
    assert_refused(result, RelayErrorCode::MailboxFull);

    let big = || Bytes::from(vec![1u8; 1400]);
    send_ok(&sender, &sized, big()).await;
    send_ok(&sender, &sized, big()).await;
    // A two-recipient send: one full (bytes) mailbox, one with room again
    // after acknowledging. Each recipient gets its own verdict.
    let delivered = drain(&counted_client, 3, DRAIN).await;
    counted_client
        .ack(counted.mailbox_id, &seqs(&delivered[..1]))
        .unwrap();
    within("flush", counted_client.flush()).await.unwrap();
    let send = OutgoingSend {
        client_message_id: client_message_id(),
        body: big(),
        recipients: vec![sized.recipient(), counted.recipient()],
        retry: false,
    };
    let results = within("send", sender.send(send)).await.unwrap();
    assert_eq!(results, [Err(RelayErrorCode::MailboxFull), Ok(())]);
    assert_eq!(relay.relay().stats().envelopes, 2 + 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_answers_in_flight_sends_durably_and_exits_zero() {
    let dir = temp_dir();
    let mut relay = RelayProcess::start(dir.path()).await;
    let bob = Arc::new(Owner::random());
    bob.register(relay.address()).await.close();

    let stored = Arc::new(Mutex::new(BTreeSet::new()));
    let mut senders = Vec::new();
    for sender_id in 0..4 {
        let (address, bob, stored) = (
            relay.address().clone(),
            Arc::clone(&bob),
            Arc::clone(&stored),
        );
        senders.push(tokio::spawn(async move {
            let client = connect(&address).await;
            for n in 0u32.. {
                let body = Bytes::from(format!("sender {sender_id} message {n}"));
                match client
                    .send_one(client_message_id(), bob.recipient(), body.clone())
                    .await
                {
                    Ok(()) => stored.lock().unwrap().insert(body),
                    Err(_) => return n,
                };
            }
            unreachable!()
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    let status = relay.terminate().await;
    assert!(status.success(), "the relay exited with {status}");
    for sender in senders {
        within("sender to stop", sender).await.unwrap();
    }

    let stored = std::mem::take(&mut *stored.lock().unwrap());
    assert!(
        stored.len() >= 4,
        "too few sends were answered before shutdown to judge ({})",
        stored.len()
    );
    relay.restart().await;
    let client = bob.connect(relay.address()).await;
    let delivered = drain_and_ack(&client, bob.mailbox_id, QUIET).await;
    let delivered: BTreeSet<Bytes> = delivered.into_iter().map(|e| e.body).collect();
    let missing: Vec<_> = stored.difference(&delivered).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged sends were lost: {missing:?}",
        missing.len()
    );
}
