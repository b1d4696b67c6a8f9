//! Members talking through real relay processes with the SDK: contacts
//! through links, messages both ways, a member back after weeks offline, a
//! relay SIGKILLed mid-conversation, what the relay keeps on disk and in its
//! logs, and envelopes an attacker tampered with, replayed or made up.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use hearth_client::{
    Backoff, Client, ClientOptions, Clock, ConnectOptions, ConnectionState, Content, Direction,
    Event, EventStream, Invite, KdfParams, MemberId, MessageStatus, RejectReason, RelayAddress,
    StorageKey, SystemClock,
};
use hearth_tests::attacker::{Needles, last_waiting_envelope, replay_and_tamper};
use hearth_tests::{RelayProcess, within, within_for};
use rand::RngExt as _;
use tokio::time::Instant;

/// A member's device, in its own temporary folder.
struct Member {
    client: Client,
    home: tempfile::TempDir,
    key: [u8; 32],
}

impl Member {
    /// Sets up a device on `relay`.
    async fn create(relay: &RelayAddress, name: &str) -> Self {
        let home = tempfile::tempdir().unwrap();
        let key: [u8; 32] = rand::random();
        let created = within(
            "create a member",
            Client::create_with(
                home.path(),
                StorageKey::from_bytes(key),
                relay,
                None,
                name,
                options(),
            ),
        )
        .await;
        let client = created.unwrap_or_else(|e| panic!("creating {name} failed: {e}"));
        Self { client, home, key }
    }

    fn id(&self) -> MemberId {
        self.client.member_id()
    }

    /// Closes the device and opens it again from disk with `options`.
    async fn reopen(self, options: ClientOptions) -> Self {
        let Self { client, home, key } = self;
        client.close().await;
        drop(client);
        let opened = Client::open_with(home.path(), StorageKey::from_bytes(key), options);
        let client = within("reopen a member", opened).await.unwrap();
        Self { client, home, key }
    }

    /// One sync: everything pending, then the events.
    async fn sync(&self) -> Vec<Event> {
        let report = within("sync", self.client.sync(Duration::ZERO)).await;
        report.unwrap_or_else(|e| panic!("sync failed: {e}")).events
    }

    /// Texts of the conversation with `other`, oldest first.
    async fn history(&self, other: MemberId) -> Vec<(Direction, String)> {
        let history = self.client.history(other).await.unwrap();
        history
            .into_iter()
            .map(|m| (m.direction, text_of(&m.content)))
            .collect()
    }
}

/// Connection settings that notice a dead relay quickly.
fn connect_options() -> ConnectOptions {
    ConnectOptions {
        keep_alive_interval: Some(Duration::from_millis(300)),
        idle_timeout: Duration::from_secs(2),
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(3),
        ..ConnectOptions::default()
    }
}

fn options() -> ClientOptions {
    ClientOptions {
        connect: connect_options(),
        backoff: Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
        },
        quiet_period: Duration::from_millis(300),
        kdf: KdfParams {
            memory_kib: 256,
            iterations: 1,
            parallelism: 1,
        },
        ..ClientOptions::default()
    }
}

/// The system clock moved `0` ahead: a device that was away that long.
#[derive(Debug)]
struct Later(Duration);

impl Clock for Later {
    fn now_ms(&self) -> u64 {
        SystemClock.now_ms() + self.0.as_millis() as u64
    }
}

fn text_of(content: &Content) -> String {
    match content {
        Content::Text(text) => text.clone(),
        other => panic!("unexpected content {other:?}"),
    }
}

/// `(sender, text)` of every message event.
fn texts(events: &[Event]) -> Vec<(MemberId, String)> {
    events
        .iter()
        .filter_map(|event| match event {
            Event::Message(message) => Some((message.member, text_of(&message.content))),
            _ => None,
        })
        .collect()
}

fn rejections(events: &[Event]) -> Vec<RejectReason> {
    events
        .iter()
        .filter_map(|event| match event {
            Event::Rejected { reason } => Some(*reason),
            _ => None,
        })
        .collect()
}

/// `acceptor` accepts `inviter`'s link; the inviter learns of it on its
/// next sync. Returns the link.
async fn introduce(inviter: &Member, acceptor: &Member) -> String {
    let link = within("invite", inviter.client.invite_link())
        .await
        .unwrap();
    let contact = within("accept", acceptor.client.accept_invite(&link))
        .await
        .unwrap();
    assert_eq!(contact.member_id, inviter.id());
    let events = inviter.sync().await;
    let added: Vec<MemberId> = events
        .iter()
        .filter_map(|e| match e {
            Event::ContactAdded(c) => Some(c.member_id),
            _ => None,
        })
        .collect();
    assert_eq!(added, [acceptor.id()], "{events:?}");
    link
}

/// Everything buffered in `stream`.
fn drain(stream: &mut EventStream) -> Vec<Event> {
    std::iter::from_fn(|| stream.try_recv()).collect()
}

/// Syncs until `member` received `count` messages in all (or `limit`
/// passed), tolerating a relay that is down for a while; then one more sync
/// that must bring nothing. Returns every message received, in order.
///
/// Messages are read from an event subscription, as an app does: a sync
/// that fails (the relay went away) still stored and announced what it
/// received before.
async fn receive(member: &Member, count: usize, limit: Duration) -> Vec<(MemberId, String)> {
    let mut stream = member.client.events();
    let deadline = Instant::now() + limit;
    let mut events = Vec::new();
    while texts(&events).len() < count {
        assert!(
            Instant::now() < deadline,
            "received {} of {count} messages within {limit:?}",
            texts(&events).len()
        );
        if within("sync", member.client.sync(Duration::ZERO))
            .await
            .is_err()
        {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        events.extend(drain(&mut stream));
    }
    within("sync", member.client.sync(Duration::ZERO))
        .await
        .unwrap_or_else(|e| panic!("the last sync failed: {e}"));
    events.extend(drain(&mut stream));
    assert_eq!(rejections(&events), [], "nothing is refused");
    texts(&events)
}

/// Syncs until `member`'s outbox is empty.
async fn flush(member: &Member, limit: Duration) {
    let deadline = Instant::now() + limit;
    while member.client.queued().await.unwrap() > 0 {
        assert!(
            Instant::now() < deadline,
            "the outbox did not empty within {limit:?}"
        );
        if member.client.sync(Duration::ZERO).await.is_err() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn numbered(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|i| format!("{prefix}-{i:03}")).collect()
}

fn from(member: MemberId, texts: &[String]) -> Vec<(MemberId, String)> {
    texts.iter().map(|t| (member, t.clone())).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn two_members_talk_both_ways_and_a_third_back_after_weeks_gets_everything_in_order() {
    const EACH: usize = 60;
    let dir = tempfile::tempdir().unwrap();
    let mut relay = RelayProcess::start(dir.path()).await;
    let address = relay.address().clone();
    let alice = Member::create(&address, "Alice").await;
    let bob = Member::create(&address, "Bob").await;
    let carol = Member::create(&address, "Carol").await;
    introduce(&bob, &alice).await;
    introduce(&alice, &carol).await;
    introduce(&bob, &carol).await;

    // Alice and Bob talk, both ways.
    for text in ["hi Bob", "how was the session?"] {
        alice.client.send_text(bob.id(), text).await.unwrap();
    }
    let got = receive(&bob, 2, Duration::from_secs(20)).await;
    assert_eq!(
        got,
        from(
            alice.id(),
            &["hi Bob".into(), "how was the session?".into()]
        )
    );
    bob.client
        .send_text(alice.id(), "good, thanks")
        .await
        .unwrap();
    let got = receive(&alice, 1, Duration::from_secs(20)).await;
    assert_eq!(got, from(bob.id(), &["good, thanks".into()]));

    // Carol is away; both keep writing to her, and the relay restarts.
    carol.client.close().await;
    let (for_carol_a, for_carol_b) = (numbered("alice", EACH), numbered("bob", EACH));
    for (a, b) in for_carol_a.iter().zip(&for_carol_b) {
        alice.client.send_text(carol.id(), a).await.unwrap();
        bob.client.send_text(carol.id(), b).await.unwrap();
    }
    flush(&alice, Duration::from_secs(20)).await;
    flush(&bob, Duration::from_secs(20)).await;
    assert!(relay.terminate().await.success());
    relay.restart().await;

    // Three weeks later (by Carol's clock: her signed prekey is due for
    // rotation), Carol comes back and gets everything, in order.
    let mut back = options();
    back.clock = Arc::new(Later(Duration::from_secs(21 * 24 * 3600)));
    let carol = carol.reopen(back).await;
    let got = receive(&carol, 2 * EACH, Duration::from_secs(40)).await;
    let of = |member: MemberId| -> Vec<String> {
        got.iter()
            .filter(|(m, _)| *m == member)
            .map(|(_, t)| t.clone())
            .collect()
    };
    assert_eq!(
        of(alice.id()),
        for_carol_a,
        "Alice's messages, once each, in order"
    );
    assert_eq!(
        of(bob.id()),
        for_carol_b,
        "Bob's messages, once each, in order"
    );
    let history = carol.history(alice.id()).await;
    let incoming: Vec<String> = history.iter().map(|(_, t)| t.clone()).collect();
    assert_eq!(incoming, for_carol_a);

    // Her replies arrive.
    carol.client.send_text(alice.id(), "back!").await.unwrap();
    carol.client.send_text(bob.id(), "back too").await.unwrap();
    assert_eq!(
        receive(&alice, 1, Duration::from_secs(20)).await,
        from(carol.id(), &["back!".into()])
    );
    assert_eq!(
        receive(&bob, 1, Duration::from_secs(20)).await,
        from(carol.id(), &["back too".into()])
    );
    assert!(relay.terminate().await.success());
}

/// Sends `texts` to `to`, pausing a little between them.
fn send_all(client: Client, to: MemberId, texts: Vec<String>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        for text in texts {
            client.send_text(to, &text).await.unwrap();
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
    })
}

/// What a member syncing over and over saw.
struct Synced {
    /// The messages that arrived.
    got: Vec<(MemberId, String)>,
    /// Syncs that failed or lost the connection.
    interrupted: usize,
}

/// Syncs `client` over and over until `stop`, reading what arrives from an
/// event subscription.
fn keep_syncing(client: Client, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<Synced> {
    tokio::spawn(async move {
        let mut stream = client.events();
        let mut failed = 0;
        while !stop.load(Ordering::SeqCst) {
            if client.sync(Duration::ZERO).await.is_err() {
                failed += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        let events = drain(&mut stream);
        assert_eq!(rejections(&events), [], "nothing is refused");
        // A connection made during the loop replaced one the kills broke.
        let lost = events
            .iter()
            .filter(|e| {
                matches!(
                    e,
                    Event::ConnectionState(
                        ConnectionState::Disconnected { .. } | ConnectionState::Connected
                    )
                )
            })
            .count();
        Synced {
            got: texts(&events),
            interrupted: failed + lost,
        }
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_relay_sigkilled_mid_conversation_loses_nothing_and_shows_nothing_twice() {
    const EACH: usize = 25;
    let dir = tempfile::tempdir().unwrap();
    let mut relay = RelayProcess::start(dir.path()).await;
    let alice = Member::create(relay.address(), "Alice").await;
    let bob = Member::create(relay.address(), "Bob").await;
    introduce(&bob, &alice).await;

    let (to_bob, to_alice) = (numbered("to bob", EACH), numbered("to alice", EACH));
    let stop = Arc::new(AtomicBool::new(false));
    let receivers = (
        keep_syncing(alice.client.clone(), Arc::clone(&stop)),
        keep_syncing(bob.client.clone(), Arc::clone(&stop)),
    );
    let senders = (
        send_all(alice.client.clone(), bob.id(), to_bob.clone()),
        send_all(bob.client.clone(), alice.id(), to_alice.clone()),
    );
    for _ in 0..2 {
        let pause = rand::rng().random_range(300..700);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        relay.kill().await;
        let down = rand::rng().random_range(50..300);
        tokio::time::sleep(Duration::from_millis(down)).await;
        relay.restart().await;
    }
    within_for(Duration::from_secs(40), "alice's sends", senders.0)
        .await
        .unwrap();
    within_for(Duration::from_secs(40), "bob's sends", senders.1)
        .await
        .unwrap();
    stop.store(true, Ordering::SeqCst);
    let alice_synced = within("alice's syncs", receivers.0).await.unwrap();
    let bob_synced = within("bob's syncs", receivers.1).await.unwrap();
    assert!(
        alice_synced.interrupted + bob_synced.interrupted > 0,
        "the kills interrupted nobody, so nothing was tested"
    );
    let (mut alice_got, mut bob_got) = (alice_synced.got, bob_synced.got);

    flush(&alice, Duration::from_secs(20)).await;
    flush(&bob, Duration::from_secs(20)).await;
    let left = EACH.saturating_sub(bob_got.len());
    bob_got.extend(receive(&bob, left, Duration::from_secs(20)).await);
    let left = EACH.saturating_sub(alice_got.len());
    alice_got.extend(receive(&alice, left, Duration::from_secs(20)).await);
    assert_eq!(bob_got, from(alice.id(), &to_bob), "once each, in order");
    assert_eq!(alice_got, from(bob.id(), &to_alice), "once each, in order");

    // Both histories hold each message once, in order; all were sent.
    let history = alice.client.history(bob.id()).await.unwrap();
    let sent: Vec<String> = history
        .iter()
        .filter(|m| m.direction == Direction::Outgoing)
        .map(|m| text_of(&m.content))
        .collect();
    assert_eq!(sent, to_bob);
    assert!(
        history
            .iter()
            .filter(|m| m.direction == Direction::Outgoing)
            .all(|m| m.status != MessageStatus::Queued),
        "everything left the outbox"
    );
    let received: Vec<String> = bob
        .history(alice.id())
        .await
        .into_iter()
        .filter(|(d, _)| *d == Direction::Incoming)
        .map(|(_, t)| t)
        .collect();
    assert_eq!(received, to_bob);
    assert_eq!(relay.starts(), 3);
    assert!(relay.terminate().await.success());
}

// ---- what the relay keeps ------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn the_relay_keeps_no_plaintext_names_or_member_ids_on_disk_or_in_its_logs() {
    let dir = tempfile::tempdir().unwrap();
    let mut relay = RelayProcess::start_with_debug_logs(dir.path()).await;
    let tag = || hex::encode(rand::random::<[u8; 6]>());
    let (alice_name, bob_name) = (format!("Alice {}", tag()), format!("Bob {}", tag()));
    let alice = Member::create(relay.address(), &alice_name).await;
    let bob = Member::create(relay.address(), &bob_name).await;
    introduce(&bob, &alice).await;
    let long = format!("a long story {} ", tag()).repeat(100);
    let to_bob = vec![
        format!("I had a hard day {}", tag()),
        format!("can we talk tonight {}", tag()),
        long.clone(),
    ];
    let to_alice = vec![format!("of course, call me {}", tag())];
    for text in &to_bob {
        alice.client.send_text(bob.id(), text).await.unwrap();
    }
    receive(&bob, to_bob.len(), Duration::from_secs(20)).await;
    bob.client
        .send_text(alice.id(), &to_alice[0])
        .await
        .unwrap();
    receive(&alice, 1, Duration::from_secs(20)).await;
    // Left unread: still in the relay's store at the end.
    let unread = format!("are you still up {}", tag());
    alice.client.send_text(bob.id(), &unread).await.unwrap();
    assert_eq!(alice.client.queued().await.unwrap(), 0);
    alice.client.close().await;
    bob.client.close().await;
    assert!(relay.terminate().await.success());

    let mut needles: Vec<(String, Vec<u8>)> = vec![
        ("alice's name".into(), alice_name.clone().into_bytes()),
        ("bob's name".into(), bob_name.clone().into_bytes()),
        ("the unread message".into(), unread.into_bytes()),
        ("the long message".into(), long.as_bytes()[..64].to_vec()),
    ];
    for (i, text) in to_bob[..2].iter().chain(&to_alice).enumerate() {
        needles.push((format!("message {i}"), text.clone().into_bytes()));
    }
    for (who, member) in [("alice", alice.id()), ("bob", bob.id())] {
        needles.push((format!("{who}'s member id"), member.as_bytes().to_vec()));
        let printed = member.to_string();
        needles.push((
            format!("{who}'s printed member id"),
            printed.clone().into_bytes(),
        ));
        needles.push((
            format!("{who}'s printed member id"),
            printed.to_uppercase().into_bytes(),
        ));
    }
    let search = Needles::new(&needles);

    // The search works: it finds a needle hidden the ways it looks for.
    let hidden = [
        b"xx".as_slice(),
        STANDARD_NO_PAD
            .encode(
                b"?".iter()
                    .chain(alice_name.as_bytes())
                    .copied()
                    .collect::<Vec<u8>>(),
            )
            .as_bytes(),
        URL_SAFE_NO_PAD.encode(bob.id().as_bytes()).as_bytes(),
    ]
    .concat();
    assert_eq!(
        search.found_in(&hidden),
        HashSet::from(["alice's name".to_owned(), "bob's member id".to_owned()])
    );

    let output = relay.output();
    assert!(
        output.contains("listening on"),
        "the relay's log was captured"
    );
    search.assert_absent(dir.path(), 3, &output);
}

// ---- envelopes an attacker sends -----------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn tampered_replayed_and_unknown_sender_envelopes_are_rejected_and_the_talk_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut relay = RelayProcess::start(dir.path()).await;
    let address = relay.address().clone();
    let alice = Member::create(&address, "Alice").await;
    let bob = Member::create(&address, "Bob").await;
    let link = introduce(&bob, &alice).await;
    let invite: Invite = link.parse().unwrap();

    alice.client.send_text(bob.id(), "first").await.unwrap();
    alice.client.send_text(bob.id(), "second").await.unwrap();
    // The relay is stopped while "second" waits; its disk gives away the
    // envelope (ciphertext only).
    assert!(relay.terminate().await.success());
    let waiting = last_waiting_envelope(dir.path(), invite.mailbox_id);
    relay.restart().await;
    let got = receive(&bob, 2, Duration::from_secs(20)).await;
    assert_eq!(got, from(alice.id(), &["first".into(), "second".into()]));

    // Replayed, and tampered in the body and in the header.
    replay_and_tamper(&address, &invite, &waiting).await;
    let events = bob.sync().await;
    assert_eq!(texts(&events), [], "nothing crafted shows as a message");
    assert_eq!(
        rejections(&events),
        [
            RejectReason::Replayed,
            RejectReason::Undecryptable,
            RejectReason::Undecryptable
        ]
    );

    // A stranger with a copy of Bob's link whose secret was guessed: the
    // contact request and the message after it are refused.
    let carol = Member::create(&address, "Carol").await;
    let mut forged = invite.clone();
    forged.secret = rand::random();
    carol.client.accept_invite(&forged.to_link()).await.unwrap();
    carol.client.send_text(bob.id(), "let me in").await.unwrap();
    assert_eq!(
        carol.client.queued().await.unwrap(),
        0,
        "the relay took both"
    );
    let events = bob.sync().await;
    assert_eq!(texts(&events), []);
    assert_eq!(
        rejections(&events),
        [RejectReason::UnknownInvite, RejectReason::UnknownSender]
    );
    let contacts: Vec<MemberId> = bob
        .client
        .contacts()
        .await
        .unwrap()
        .iter()
        .map(|c| c.member_id)
        .collect();
    assert_eq!(contacts, [alice.id()], "the stranger is no contact");

    // The conversation goes on, both ways.
    alice.client.send_text(bob.id(), "third").await.unwrap();
    let got = receive(&bob, 1, Duration::from_secs(20)).await;
    assert_eq!(got, from(alice.id(), &["third".into()]));
    bob.client.send_text(alice.id(), "all good").await.unwrap();
    let got = receive(&alice, 1, Duration::from_secs(20)).await;
    assert_eq!(got, from(bob.id(), &["all good".into()]));
    let history: Vec<String> = bob
        .history(alice.id())
        .await
        .into_iter()
        .map(|(_, t)| t)
        .collect();
    assert_eq!(history, ["first", "second", "third", "all good"]);
    assert!(relay.terminate().await.success());
}
