//! The SDK against a real relay running in this process: contacts through
//! invite links, messages both ways, restarts, wrong keys, private relays.

use std::time::Duration;

use hearth_client::{
    Client, ClientOptions, Content, Direction, Error, Event, MemberId, MessageStatus, StoreSecret,
};
use hearth_relay::core::RegistrationMode;

mod common;

use common::*;

fn texts(events: &[Event]) -> Vec<(MemberId, String)> {
    events
        .iter()
        .filter_map(|event| match event {
            Event::Message(message) => match &message.content {
                Content::Text(text) => Some((message.member, text.clone())),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// Alice accepts Bob's link; Bob learns about Alice on his next sync.
async fn introduce(alice: &Client, bob: &Client) {
    let link = within("invite", bob.invite_link()).await.unwrap();
    assert!(link.starts_with("hearth://contact/"));
    let contact = within("accept", alice.accept_invite(&link)).await.unwrap();
    assert_eq!(contact.member_id, bob.member_id());
    assert_eq!(contact.display_name, "Bob");
    let events = sync(bob).await;
    let added: Vec<&hearth_client::Contact> = events
        .iter()
        .filter_map(|e| match e {
            Event::ContactAdded(contact) => Some(contact),
            _ => None,
        })
        .collect();
    assert_eq!(added.len(), 1, "{events:?}");
    assert_eq!(added[0].member_id, alice.member_id());
    assert_eq!(added[0].display_name, "Alice");
    assert_eq!(added[0].safety_number, contact.safety_number);
}

#[tokio::test]
async fn two_members_connect_through_a_link_and_talk_both_ways() {
    let relay = Relay::start(RegistrationMode::Open).await;
    let homes = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let alice = create(homes.0.path(), key(1), &relay.address(), "Alice").await;
    let bob = create(homes.1.path(), key(2), &relay.address(), "Bob").await;
    let mut alice_events = alice.events();
    let shown = format!("{alice:?}");
    assert!(shown.contains(&alice.member_id().to_string()), "{shown}");
    assert!(!shown.contains("rng") && !shown.contains("key"), "{shown}");
    introduce(&alice, &bob).await;

    let first = within("send", alice.send_text(bob.member_id(), "hi Bob"))
        .await
        .unwrap();
    alice
        .send_text(bob.member_id(), "are you there?")
        .await
        .unwrap();
    let got = texts(&sync(&bob).await);
    assert_eq!(
        got,
        [
            (alice.member_id(), "hi Bob".to_owned()),
            (alice.member_id(), "are you there?".to_owned())
        ]
    );
    bob.send_text(alice.member_id(), "hi Alice").await.unwrap();
    assert_eq!(
        texts(&sync(&alice).await),
        [(bob.member_id(), "hi Alice".to_owned())]
    );

    // Alice's stream saw her contact, her sends and Bob's reply.
    let mut seen = Vec::new();
    while let Some(event) = alice_events.try_recv() {
        seen.push(event);
    }
    assert!(
        seen.iter()
            .any(|e| matches!(e, Event::ContactAdded(c) if c.member_id == bob.member_id()))
    );
    assert!(
        seen.iter()
            .any(|e| matches!(e, Event::MessageSent { id, .. } if *id == first))
    );
    assert_eq!(texts(&seen), [(bob.member_id(), "hi Alice".to_owned())]);

    let history = alice.history(bob.member_id()).await.unwrap();
    let lines: Vec<(Direction, Content, MessageStatus)> = history
        .iter()
        .map(|m| (m.direction, m.content.clone(), m.status))
        .collect();
    assert_eq!(
        lines,
        [
            (
                Direction::Outgoing,
                Content::Text("hi Bob".into()),
                MessageStatus::Sent
            ),
            (
                Direction::Outgoing,
                Content::Text("are you there?".into()),
                MessageStatus::Sent
            ),
            (
                Direction::Incoming,
                Content::Text("hi Alice".into()),
                MessageStatus::Received
            ),
        ]
    );
    let alice_view = alice.contacts().await.unwrap();
    let bob_view = bob.contacts().await.unwrap();
    assert_eq!(alice_view[0].safety_number, bob_view[0].safety_number);
    let number = bob_view[0].safety_number.to_string();
    let verified = alice
        .verify_contact(bob.member_id(), &number)
        .await
        .unwrap();
    assert!(verified.verified);
    assert!(matches!(
        bob.verify_contact(alice.member_id(), &"0".repeat(60)).await,
        Err(Error::SafetyNumberMismatch)
    ));
}

#[tokio::test]
async fn a_restarted_client_keeps_its_history_and_shows_nothing_twice() {
    let relay = Relay::start(RegistrationMode::Open).await;
    let homes = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let alice = create(homes.0.path(), key(1), &relay.address(), "Alice").await;
    let bob = create(
        homes.1.path(),
        StoreSecret::passphrase("bob's passphrase"),
        &relay.address(),
        "Bob",
    )
    .await;
    introduce(&alice, &bob).await;
    for text in ["one", "two", "three"] {
        alice.send_text(bob.member_id(), text).await.unwrap();
    }
    assert_eq!(texts(&sync(&bob).await).len(), 3);
    let bob_id = bob.member_id();
    bob.close().await;
    drop(bob);

    let bob = within(
        "reopen",
        Client::open_with(
            homes.1.path(),
            StoreSecret::passphrase("bob's passphrase"),
            options(),
        ),
    )
    .await
    .unwrap();
    assert_eq!(bob.member_id(), bob_id);
    assert_eq!(bob.display_name(), "Bob");
    let history = bob.history(alice.member_id()).await.unwrap();
    assert_eq!(history.len(), 3);
    assert!(
        texts(&sync(&bob).await).is_empty(),
        "nothing is shown twice"
    );

    alice.send_text(bob.member_id(), "four").await.unwrap();
    assert_eq!(
        texts(&sync(&bob).await),
        [(alice.member_id(), "four".to_owned())]
    );
    let history: Vec<Content> = bob
        .history(alice.member_id())
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.content)
        .collect();
    assert_eq!(
        history,
        ["one", "two", "three", "four"].map(|t| Content::Text(t.into()))
    );
    // Bob can still answer after the restart.
    bob.send_text(alice.member_id(), "back").await.unwrap();
    assert_eq!(
        texts(&sync(&alice).await),
        [(bob.member_id(), "back".to_owned())]
    );
}

#[tokio::test]
async fn messages_queued_while_the_relay_is_down_are_sent_when_it_returns() {
    let mut relay = Relay::start(RegistrationMode::Open).await;
    let homes = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let alice = create(homes.0.path(), key(1), &relay.address(), "Alice").await;
    let bob = create(homes.1.path(), key(2), &relay.address(), "Bob").await;
    introduce(&alice, &bob).await;

    let port = relay.stop().await;
    let id = within(
        "send offline",
        alice.send_text(bob.member_id(), "while you were away"),
    )
    .await
    .unwrap();
    assert_eq!(alice.queued().await.unwrap(), 1);
    let history = alice.history(bob.member_id()).await.unwrap();
    assert_eq!(history[0].status, MessageStatus::Queued);
    assert!(matches!(
        within("sync offline", alice.sync(Duration::ZERO)).await,
        Err(Error::RelayUnreachable)
    ));

    relay.restart_on(port).await;
    let events = sync(&alice).await;
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::MessageSent { id: sent, .. } if *sent == id)),
        "{events:?}"
    );
    assert_eq!(alice.queued().await.unwrap(), 0);
    assert_eq!(
        texts(&sync(&bob).await),
        [(alice.member_id(), "while you were away".to_owned())]
    );
}

#[tokio::test]
async fn a_wrong_storage_key_is_refused_and_changes_nothing() {
    let relay = Relay::start(RegistrationMode::Open).await;
    let home = tempfile::tempdir().unwrap();
    let alice = create(home.path(), key(1), &relay.address(), "Alice").await;
    let id = alice.member_id();
    alice.close().await;
    drop(alice);
    assert!(matches!(
        Client::open_with(home.path(), key(9), options()).await,
        Err(Error::WrongStorageKey)
    ));
    let again = Client::open_with(home.path(), key(1), options())
        .await
        .unwrap();
    assert_eq!(again.member_id(), id);
    assert!(matches!(
        Client::create_with(home.path(), key(1), &relay.address(), None, "x", options()).await,
        Err(Error::AlreadySetUp)
    ));
    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(
        Client::open_with(empty.path(), key(1), options()).await,
        Err(Error::NotSetUp)
    ));
}

#[tokio::test]
async fn a_private_relay_needs_a_registration_token() {
    let relay = Relay::start(RegistrationMode::Token).await;
    let home = tempfile::tempdir().unwrap();
    let result =
        Client::create_with(home.path(), key(1), &relay.address(), None, "A", options()).await;
    assert!(
        matches!(result, Err(Error::RegistrationRequired)),
        "{result:?}"
    );
    let result = Client::create_with(
        home.path(),
        key(1),
        &relay.address(),
        Some("made-up"),
        "A",
        options(),
    )
    .await;
    assert!(
        matches!(result, Err(Error::RegistrationTokenRejected)),
        "{result:?}"
    );
    // Nothing is left behind: the same folder can be set up later.
    assert!(!home.path().join(hearth_client::STORE_DIR).exists());
}

#[tokio::test]
async fn a_link_works_once_and_a_bad_link_is_a_clear_error() {
    let relay = Relay::start(RegistrationMode::Open).await;
    let homes = [(); 3].map(|_| tempfile::tempdir().unwrap());
    let alice = create(homes[0].path(), key(1), &relay.address(), "Alice").await;
    let bob = create(homes[1].path(), key(2), &relay.address(), "Bob").await;
    let carol = create(homes[2].path(), key(3), &relay.address(), "Carol").await;
    let link = bob.invite_link().await.unwrap();
    alice.accept_invite(&link).await.unwrap();
    carol.accept_invite(&link).await.unwrap();
    let events = sync(&bob).await;
    let added = events
        .iter()
        .filter(|e| matches!(e, Event::ContactAdded(_)))
        .count();
    let reused = events
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::Rejected {
                    reason: hearth_client::RejectReason::InviteAlreadyUsed
                }
            )
        })
        .count();
    assert_eq!((added, reused), (1, 1), "{events:?}");
    assert_eq!(bob.contacts().await.unwrap().len(), 1);
    assert!(matches!(
        alice.accept_invite("hearth://contact/%%%").await,
        Err(Error::InvalidInvite(_))
    ));
    assert!(matches!(
        alice.accept_invite(&link).await,
        Err(Error::AlreadyContact)
    ));
    let own = alice.invite_link().await.unwrap();
    assert!(matches!(
        alice.accept_invite(&own).await,
        Err(Error::OwnInvite)
    ));
}

#[tokio::test]
async fn garbage_from_a_stranger_is_rejected_acknowledged_and_the_mailbox_keeps_flowing() {
    use bytes::Bytes;
    use hearth_client::{Invite, OutgoingRecipient, RejectReason, RelayClient};

    let relay = Relay::start(RegistrationMode::Open).await;
    let homes = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let alice = create(homes.0.path(), key(1), &relay.address(), "Alice").await;
    let bob = create(homes.1.path(), key(2), &relay.address(), "Bob").await;
    introduce(&alice, &bob).await;

    // Anyone holding one of Bob's links can drop envelopes in his mailbox.
    let link: Invite = bob.invite_link().await.unwrap().parse().unwrap();
    let stranger = RelayClient::connect(&relay.address()).await.unwrap();
    for (n, header_len) in [(1u8, 112), (2, 5)] {
        let recipient = OutgoingRecipient {
            mailbox_id: link.mailbox_id,
            send_token: Bytes::copy_from_slice(&link.send_token),
            sealed_header: Bytes::from(vec![n; header_len]),
        };
        stranger
            .send_one([n; 16], recipient, Bytes::from(vec![n; 300]))
            .await
            .unwrap();
    }
    alice
        .send_text(bob.member_id(), "still works")
        .await
        .unwrap();

    let events = sync(&bob).await;
    let rejected: Vec<RejectReason> = events
        .iter()
        .filter_map(|e| match e {
            Event::Rejected { reason } => Some(*reason),
            _ => None,
        })
        .collect();
    assert_eq!(
        rejected,
        [RejectReason::Undecryptable, RejectReason::Undecryptable]
    );
    assert_eq!(
        texts(&events),
        [(alice.member_id(), "still works".to_owned())]
    );
    // Everything was acknowledged: nothing comes back.
    bob.close().await;
    let again = sync(&bob).await;
    assert!(
        again.iter().all(|e| matches!(e, Event::ConnectionState(_))),
        "{again:?}"
    );
    assert_eq!(relay.relay.as_ref().unwrap().stats().envelopes, 0);
}

#[tokio::test]
async fn a_running_client_receives_live_and_reconnects_after_the_relay_restarts() {
    let mut relay = Relay::start(RegistrationMode::Open).await;
    let homes = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let alice = create(homes.0.path(), key(1), &relay.address(), "Alice").await;
    let bob = create(homes.1.path(), key(2), &relay.address(), "Bob").await;
    introduce(&alice, &bob).await;

    let mut bob_events = bob.events();
    let running = tokio::spawn({
        let bob = bob.clone();
        async move { bob.run().await }
    });
    alice.send_text(bob.member_id(), "live").await.unwrap();
    let content = within("live message", next_message(&mut bob_events)).await;
    assert_eq!(content, Content::Text("live".into()));

    let port = relay.stop().await;
    relay.restart_on(port).await;
    alice.close().await;
    alice
        .send_text(bob.member_id(), "after the restart")
        .await
        .unwrap();
    let content = within("message after reconnect", next_message(&mut bob_events)).await;
    assert_eq!(content, Content::Text("after the restart".into()));
    assert!(!running.is_finished());
    running.abort();
}

/// The content of the next message event.
async fn next_message(events: &mut hearth_client::EventStream) -> Content {
    loop {
        match events.recv().await {
            Some(Event::Message(message)) => return message.content,
            Some(_) => continue,
            None => panic!("event stream ended"),
        }
    }
}

#[tokio::test]
async fn a_full_mailbox_holds_the_conversation_in_order_until_there_is_room() {
    let relay = Relay::start_with(RegistrationMode::Open, |config| {
        config.core.mailbox_max_envelopes = 1;
    })
    .await;
    let homes = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let alice = create(homes.0.path(), key(1), &relay.address(), "Alice").await;
    let bob = create(homes.1.path(), key(2), &relay.address(), "Bob").await;
    introduce(&alice, &bob).await;

    let mut alice_events = alice.events();
    alice.send_text(bob.member_id(), "first").await.unwrap();
    let second = alice.send_text(bob.member_id(), "second").await.unwrap();
    alice.send_text(bob.member_id(), "third").await.unwrap();
    let mut failures = Vec::new();
    while let Some(event) = alice_events.try_recv() {
        if let Event::DeliveryFailed {
            id,
            reason,
            will_retry,
            ..
        } = event
        {
            failures.push((id, reason, will_retry));
        }
    }
    assert_eq!(
        failures,
        [(second, hearth_client::FailureReason::MailboxFull, true)]
    );
    assert_eq!(
        alice.queued().await.unwrap(),
        2,
        "the third waits behind the second"
    );

    // Bob drains his mailbox; Alice's next syncs deliver the rest, in order.
    let mut received = texts(&sync(&bob).await);
    for _ in 0..2 {
        sync(&alice).await;
        received.extend(texts(&sync(&bob).await));
    }
    let received: Vec<String> = received.into_iter().map(|(_, text)| text).collect();
    assert_eq!(received, ["first", "second", "third"]);
    assert_eq!(alice.queued().await.unwrap(), 0);
}

#[tokio::test]
async fn members_on_different_relays_talk() {
    let (relay_a, relay_b) = (
        Relay::start(RegistrationMode::Open).await,
        Relay::start(RegistrationMode::Open).await,
    );
    let homes = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let alice = create(homes.0.path(), key(1), &relay_a.address(), "Alice").await;
    let bob = create(homes.1.path(), key(2), &relay_b.address(), "Bob").await;
    introduce(&alice, &bob).await;
    alice
        .send_text(bob.member_id(), "across relays")
        .await
        .unwrap();
    assert_eq!(
        texts(&sync(&bob).await),
        [(alice.member_id(), "across relays".to_owned())]
    );
    bob.send_text(alice.member_id(), "and back").await.unwrap();
    assert_eq!(
        texts(&sync(&alice).await),
        [(bob.member_id(), "and back".to_owned())]
    );
}

#[tokio::test]
async fn sync_tops_up_one_time_prekeys_and_rotates_the_signed_prekey() {
    use hearth_client::{Clock, Invite, RelayClient};
    use hearth_protocol::wire;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[derive(Debug)]
    struct TestClock(AtomicU64);
    impl Clock for TestClock {
        fn now_ms(&self) -> u64 {
            self.0.load(Ordering::SeqCst)
        }
    }

    let relay = Relay::start_with(RegistrationMode::Open, |config| {
        config.core.prekey_fetch_limit.burst = 1000.0;
    })
    .await;
    let home = tempfile::tempdir().unwrap();
    let clock = Arc::new(TestClock(AtomicU64::new(1_700_000_000_000)));
    let options = ClientOptions {
        clock: clock.clone(),
        ..options()
    };
    let bob = Client::create_with(home.path(), key(2), &relay.address(), None, "Bob", options)
        .await
        .unwrap();
    let link: Invite = bob.invite_link().await.unwrap().parse().unwrap();
    let stranger = RelayClient::connect(&relay.address()).await.unwrap();
    let fetch = || stranger.fetch_prekeys(link.mailbox_id, &link.send_token);
    for _ in 0..80 {
        assert!(fetch().await.unwrap().one_time_prekey.is_some());
    }
    let before = wire::decode_signed_bundle(&fetch().await.unwrap().signed_bundle).unwrap();
    assert_eq!(before.signed_prekey.id, 1);

    // Eight days later Bob comes online: 81 fetched of 100 leaves 19, below
    // the threshold of 25, and the signed prekey is due.
    clock.0.fetch_add(8 * 24 * 3600 * 1000, Ordering::SeqCst);
    sync(&bob).await;
    for n in 0..99 {
        let fetched = fetch().await.unwrap();
        assert!(fetched.one_time_prekey.is_some(), "topped up to 100");
        // One-time ML-KEM prekeys ran out at the 21st fetch; 20 new ones.
        assert_eq!(fetched.pq_is_last_resort, n >= 20, "fetch {n}");
        let bundle = wire::decode_signed_bundle(&fetched.signed_bundle).unwrap();
        assert_eq!(bundle.signed_prekey.id, 2, "rotated");
        assert_eq!(bundle.identity, before.identity);
    }
}
