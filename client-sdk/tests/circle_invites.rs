//! Invites, held messages and sessions between members, tried as an
//! attacker would, against real relays in this process: a used or expired
//! link gives nothing (no contact, no session, no working send token); a
//! newcomer still reaches a member whose prekeys ran out and whose relay
//! rate-limits fetches; a flood of junk cannot push a held post out; and a
//! sub-circle may only narrow its parent.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hearth_client::{
    CircleId, CircleInvite, CircleState, Client, ClientError, ClientOptions, Clock, Content, Error,
    Event, FailureReason, Invite, JoinRefusal, MemberId, OutgoingRecipient, RejectReason,
    RelayAddress, RelayClient, RelayErrorCode, SystemClock,
};
use hearth_relay::core::RegistrationMode;

mod common;

use common::circles::{feed_texts, settle};
use common::*;

async fn person(relay: &RelayAddress, byte: u8, name: &str) -> (tempfile::TempDir, Client) {
    let home = tempfile::tempdir().unwrap();
    let client = create(home.path(), key(byte), relay, name).await;
    (home, client)
}

/// `joiners` join `facilitator`'s new circle one by one.
async fn form(name: &str, facilitator: &Client, joiners: &[&Client]) -> CircleId {
    let id = facilitator.create_circle(name).await.unwrap().id;
    let mut everyone = vec![facilitator];
    for joiner in joiners {
        let link = facilitator
            .circle_invite(id, Duration::from_secs(3600))
            .await
            .unwrap();
        joiner.join_circle(&link).await.unwrap();
        everyone.push(joiner);
        settle(&everyone).await;
        let view = joiner.find_circle(&id.to_string()).await.unwrap();
        assert_eq!(view.state, CircleState::Active, "{view:?}");
    }
    id
}

fn texts(events: &[Event]) -> Vec<(MemberId, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Message(m) => match &m.content {
                Content::Text(text) => Some((m.member, text.clone())),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

fn refusals(events: &[Event]) -> Vec<JoinRefusal> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::CircleJoinRefused { reason, .. } => Some(*reason),
            _ => None,
        })
        .collect()
}

fn rejected(events: &[Event], reason: RejectReason) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, Event::Rejected { reason: r } if *r == reason))
        .count()
}

fn unauthorized(code: &Result<impl Sized, ClientError>) -> bool {
    matches!(
        code,
        Err(ClientError::Relay {
            code: RelayErrorCode::Unauthorized,
            ..
        })
    )
}

/// Whoever holds the link tries its token on the facilitator's mailbox
/// directly: a raw envelope and a prekey fetch, both refused.
async fn assert_the_link_opens_nothing(relay: &RelayAddress, invite: &CircleInvite) {
    let holder = RelayClient::connect(relay).await.unwrap();
    let recipient = OutgoingRecipient {
        mailbox_id: invite.mailbox_id,
        send_token: Bytes::copy_from_slice(&invite.send_token),
        sealed_header: Bytes::from(vec![7u8; 112]),
    };
    let sent = holder
        .send_one([7; 16], recipient, Bytes::from(vec![7u8; 300]))
        .await;
    assert!(unauthorized(&sent), "the link's token still delivers");
    let fetched = holder
        .fetch_prekeys(invite.mailbox_id, &invite.send_token)
        .await;
    assert!(
        unauthorized(&fetched),
        "the link's token still fetches keys"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_used_link_gives_a_second_holder_no_contact_no_session_and_no_token() {
    let relay = Relay::start(RegistrationMode::Open).await;
    let address = relay.address();
    let (_f, fran) = person(&address, 1, "Fran").await;
    let (_a, ana) = person(&address, 2, "Ana").await;
    let (_b, ben) = person(&address, 3, "Ben").await;
    let id = fran.create_circle("Small").await.unwrap().id;
    let link = fran
        .circle_invite(id, Duration::from_secs(3600))
        .await
        .unwrap();
    let invite: CircleInvite = link.parse().unwrap();
    ana.join_circle(&link).await.unwrap();
    // Ben got hold of the same link and uses it too.
    ben.join_circle(&link).await.unwrap();
    let events = settle(&[&fran, &ana, &ben]).await;
    assert_eq!(refusals(&events[2]), [JoinRefusal::AlreadyUsed]);
    assert!(refusals(&events[1]).is_empty(), "{:?}", events[1]);

    // Fran's device kept nothing of Ben: no contact, no session...
    let kept = fran.history(ben.member_id()).await;
    assert!(matches!(kept, Err(Error::UnknownContact)), "{kept:?}");
    // ...and the link's token no longer opens her mailbox.
    assert_the_link_opens_nothing(&address, &invite).await;
    let mut seen = ben.events();
    ben.send_text(fran.member_id(), "let me in anyway")
        .await
        .unwrap();
    let mut refused = false;
    while let Some(event) = seen.try_recv() {
        refused |= matches!(
            event,
            Event::DeliveryFailed {
                reason: FailureReason::Unauthorized,
                ..
            }
        );
    }
    assert!(refused, "Ben's message over the refused join reached Fran");
    let events = settle(&[&fran]).await;
    assert!(texts(&events[0]).is_empty(), "{:?}", events[0]);

    // Ana, admitted by the same link, reaches Fran and back by the tokens
    // that replaced it.
    ana.send_text(fran.member_id(), "hello Fran").await.unwrap();
    fran.send_text(ana.member_id(), "hello Ana").await.unwrap();
    let events = settle(&[&fran, &ana]).await;
    assert_eq!(texts(&events[0]), [(ana.member_id(), "hello Fran".into())]);
    assert_eq!(texts(&events[1]), [(fran.member_id(), "hello Ana".into())]);
    ana.post(id, Content::Text("first".into())).await.unwrap();
    fran.post(id, Content::Text("welcome".into()))
        .await
        .unwrap();
    settle(&[&fran, &ana]).await;
    for client in [&fran, &ana] {
        assert_eq!(feed_texts(client, id).await.len(), 2);
    }
}

/// A clock that runs behind the real one by the given time.
#[derive(Debug)]
struct Behind(Duration);

impl Clock for Behind {
    fn now_ms(&self) -> u64 {
        let behind = u64::try_from(self.0.as_millis()).unwrap();
        SystemClock.now_ms() - behind
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_link_gives_nothing_even_to_a_joiner_whose_clock_is_behind() {
    let relay = Relay::start(RegistrationMode::Open).await;
    let address = relay.address();
    let (_f, fran) = person(&address, 1, "Fran").await;
    let home = tempfile::tempdir().unwrap();
    let options = ClientOptions {
        clock: Arc::new(Behind(Duration::from_secs(7200))),
        ..options()
    };
    let ben = Client::create_with(home.path(), key(3), &address, None, "Ben", options)
        .await
        .unwrap();
    let id = fran.create_circle("Evening").await.unwrap().id;
    let link = fran
        .circle_invite(id, Duration::from_secs(1))
        .await
        .unwrap();
    let invite: CircleInvite = link.parse().unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // By Ben's clock the link still works: his device sends the request.
    ben.join_circle(&link).await.unwrap();
    let events = settle(&[&fran, &ben]).await;
    assert_eq!(refusals(&events[1]), [JoinRefusal::Expired]);
    let view = ben.find_circle(&id.to_string()).await.unwrap();
    assert_eq!(view.state, CircleState::Left);
    let kept = fran.history(ben.member_id()).await;
    assert!(matches!(kept, Err(Error::UnknownContact)), "{kept:?}");
    assert_the_link_opens_nothing(&address, &invite).await;
    let members = fran.find_circle(&id.to_string()).await.unwrap().members;
    assert_eq!(members.len(), 1, "{members:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_link_nobody_used_is_revoked_on_the_next_sync() {
    let relay = Relay::start(RegistrationMode::Open).await;
    let address = relay.address();
    let (_f, fran) = person(&address, 1, "Fran").await;
    let id = fran.create_circle("Evening").await.unwrap().id;
    let link = fran
        .circle_invite(id, Duration::from_secs(1))
        .await
        .unwrap();
    let invite: CircleInvite = link.parse().unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    sync(&fran).await;
    assert_the_link_opens_nothing(&address, &invite).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_newcomer_reaches_a_member_whose_prekeys_ran_out_behind_a_rate_limit() {
    // One fetch every 5 s per mailbox once a burst of 150 is spent.
    let relay = Relay::start_with(RegistrationMode::Open, |config| {
        config.core.prekey_fetch_limit.per_second = 0.2;
        config.core.prekey_fetch_limit.burst = 150.0;
    })
    .await;
    let address = relay.address();
    let (_f, fran) = person(&address, 1, "Fran").await;
    let (_a, ana) = person(&address, 2, "Ana").await;
    let (_d, dee) = person(&address, 4, "Dee").await;
    let id = form("Tuesday", &fran, &[&ana]).await;
    let link = fran
        .circle_invite(id, Duration::from_secs(3600))
        .await
        .unwrap();
    dee.join_circle(&link).await.unwrap();
    sync(&fran).await;

    // Someone holding Ana's personal link drains her one-time prekeys and
    // the relay's fetch allowance for her mailbox.
    let ana_link: Invite = ana.invite_link().await.unwrap().parse().unwrap();
    let drainer = RelayClient::connect(&address).await.unwrap();
    let mut last = None;
    loop {
        match drainer
            .fetch_prekeys(ana_link.mailbox_id, &ana_link.send_token)
            .await
        {
            Ok(fetched) => last = Some(fetched),
            Err(ClientError::Relay {
                code: RelayErrorCode::RateLimited,
                ..
            }) => break,
            Err(error) => panic!("{error}"),
        }
    }
    let last = last.expect("some fetches went through");
    assert!(last.one_time_prekey.is_none() && last.pq_is_last_resort);

    // Dee is welcomed; her fetch of Ana's prekeys is refused for now.
    sync(&dee).await;
    assert_eq!(
        dee.find_circle(&id.to_string()).await.unwrap().state,
        CircleState::Active
    );
    // Once the relay allows another fetch, Dee's device tries again and
    // gets Ana's signed prekey with the last-resort ML-KEM key.
    tokio::time::sleep(Duration::from_millis(5500)).await;
    sync(&dee).await;
    settle(&[&fran, &ana, &dee]).await;
    ana.post(id, Content::Text("hi Dee".into())).await.unwrap();
    dee.post(id, Content::Text("hi all".into())).await.unwrap();
    settle(&[&fran, &ana, &dee]).await;
    assert!(
        feed_texts(&dee, id)
            .await
            .contains(&(ana.member_id(), "hi Dee".into())),
        "Dee cannot read Ana"
    );
    assert!(
        feed_texts(&ana, id)
            .await
            .contains(&(dee.member_id(), "hi all".into())),
        "Ana cannot read Dee"
    );
}

mod junk {
    //! Well-formed circle messages from a made-up member: the receiving
    //! device can only hold them for a sender key that never comes.

    use bytes::Bytes;
    use hearth_client::{CircleId, Invite, OutgoingRecipient, RelayClient};
    use hearth_protocol::keys::IdentityKeyPair;
    use hearth_protocol::sealed::{body_hash, seal_body, seal_header};
    use hearth_protocol::sender_key::SenderKeyState;
    use hearth_protocol::wire::{self, InnerMessage, SealedInner, SenderCertificate};

    /// Sends `count` of them to the mailbox `link` opens, naming `circle`.
    pub(super) async fn flood(relay: &RelayClient, link: &Invite, circle: CircleId, count: usize) {
        let mut rng: rand::rngs::StdRng = rand::make_rng();
        let fetched = relay
            .fetch_prekeys(link.mailbox_id, &link.send_token)
            .await
            .unwrap();
        let target = wire::decode_signed_bundle(&fetched.signed_bundle)
            .unwrap()
            .identity
            .dh_key;
        let stranger = IdentityKeyPair::generate(&mut rng);
        let sig =
            ed25519_dalek::VerifyingKey::from_bytes(stranger.public().sig_key.as_bytes()).unwrap();
        let mut key = SenderKeyState::new(*circle.as_bytes(), 99, sig, 0, &mut rng);
        for n in 0..count {
            let inner = SealedInner {
                sender: SenderCertificate::of(stranger.public()),
                message: InnerMessage::SenderKey(key.encrypt(b"junk").unwrap()),
            };
            let (body_key, body) = seal_body(&wire::encode_sealed_inner(&inner), &mut rng).unwrap();
            let header = seal_header(
                &body_key,
                &body_hash(&body),
                &x25519_dalek::PublicKey::from(*target.as_bytes()),
                &link.mailbox_id,
                &mut rng,
            )
            .unwrap();
            let recipient = OutgoingRecipient {
                mailbox_id: link.mailbox_id,
                send_token: Bytes::copy_from_slice(&link.send_token),
                sealed_header: Bytes::copy_from_slice(header.as_bytes()),
            };
            let mut id = [0u8; 16];
            id[..8].copy_from_slice(&(n as u64).to_be_bytes());
            relay
                .send_one(id, recipient, Bytes::from(body))
                .await
                .unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_junk_cannot_push_out_a_held_post() {
    let one = Relay::start(RegistrationMode::Open).await;
    let mut two = Relay::start(RegistrationMode::Open).await;
    let (_f, fran) = person(&one.address(), 1, "Fran").await;
    let (_a, ana) = person(&one.address(), 2, "Ana").await;
    let (_c, cy) = person(&one.address(), 3, "Cy").await;
    let (_b, ben) = person(&two.address(), 4, "Ben").await;
    let id = form("Across relays", &fran, &[&ana, &ben, &cy]).await;

    // While Ben's relay is down, Fran removes Cy (her roster update for Ben
    // waits in her outbox), and Ana posts in the new epoch.
    let port = two.stop().await;
    fran.remove_member(id, cy.member_id()).await.unwrap();
    sync(&ana).await;
    ana.post(id, Content::Text("for Ben".into())).await.unwrap();
    two.restart_on(port).await;
    for _ in 0..5 {
        sync(&ana).await;
        if ana.queued().await.unwrap() == 0 {
            break;
        }
    }
    assert_eq!(ana.queued().await.unwrap(), 0, "Ana's post did not leave");
    // Ana's new key and post reach Ben before the roster version they need:
    // Ben's device holds them.
    sync(&ben).await;
    assert!(
        !feed_texts(&ben, id)
            .await
            .iter()
            .any(|(_, t)| t == "for Ben")
    );

    // Someone holding Ben's personal link floods his mailbox with circle
    // messages no key will ever open.
    let link: Invite = ben.invite_link().await.unwrap().parse().unwrap();
    let attacker = RelayClient::connect(&two.address()).await.unwrap();
    junk::flood(&attacker, &link, id, 1_000).await;
    let events = sync(&ben).await;
    // One sender may have 100 envelopes waiting; the rest are refused, and
    // said so, rather than pushing anything out.
    assert_eq!(rejected(&events, RejectReason::TooManyHeld), 900);

    // Fran's roster update arrives at last: Ana's post is read.
    for _ in 0..5 {
        sync(&fran).await;
        if fran.queued().await.unwrap() == 0 {
            break;
        }
    }
    let events = sync(&ben).await;
    assert!(
        feed_texts(&ben, id)
            .await
            .contains(&(ana.member_id(), "for Ben".into())),
        "the held post was lost: {events:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sub_circle_with_a_removed_member_is_refused_by_the_others() {
    let relay = Relay::start(RegistrationMode::Open).await;
    let address = relay.address();
    let (_f, fran) = person(&address, 1, "Fran").await;
    let (_a, ana) = person(&address, 2, "Ana").await;
    let (_b, ben) = person(&address, 3, "Ben").await;
    let (_c, cy) = person(&address, 4, "Cy").await;
    let id = form("Big group", &fran, &[&ana, &ben, &cy]).await;
    fran.remove_member(id, cy.member_id()).await.unwrap();
    settle(&[&fran, &ben, &cy]).await;
    // Ana has not synced since: her device pulls Cy into a "sub-circle".
    let sub = ana
        .create_sub_circle(id, "Side room", &[ben.member_id(), cy.member_id()])
        .await
        .unwrap();
    let events = settle(&[&ben, &cy]).await;
    assert_eq!(
        rejected(&events[0], RejectReason::Forged),
        1,
        "{:?}",
        events[0]
    );
    for client in [&ben, &cy] {
        let circles = client.circles().await.unwrap();
        assert!(circles.iter().all(|c| c.id != sub.id), "{circles:?}");
    }
}
