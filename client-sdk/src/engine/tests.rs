//! The core without a relay: members hand each other their outboxes as a
//! relay would (FIFO, with sequence numbers), so invites, sessions, dedup,
//! replays and tampering are tested deterministically.

use bytes::Bytes;
use hearth_protocol::address::{Fingerprint, RelayAddress};
use hearth_protocol::keys::PreKeyBundle;
use hearth_protocol::wire;
use rand::SeedableRng as _;
use rand::rngs::StdRng;

use super::*;
use crate::content::Content;
use crate::device::Device;
use crate::events::{Event, RejectReason};
use crate::invite::Invite;
use crate::messages::{Direction, MessageStatus};
use crate::relay::DeliveredEnvelope;
use crate::store::{KdfParams, StorageKey};

pub(super) struct Member {
    _dir: tempfile::TempDir,
    pub(super) engine: Engine,
    pub(super) rng: StdRng,
    upload: PrekeyUpload,
    next_seq: u64,
}

pub(super) fn member(seed: u64, name: &str) -> Member {
    let dir = tempfile::tempdir().unwrap();
    let params = KdfParams {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };
    let store = Store::create(
        &dir.path().join("store"),
        &StorageKey::from_bytes([seed as u8; 32]).into(),
        params,
    )
    .unwrap();
    let mut rng = StdRng::seed_from_u64(seed);
    let relay = RelayAddress {
        fingerprint: Fingerprint([7; 32]),
        host: "127.0.0.1".into(),
        port: 4433,
    };
    let device = Device::generate(&mut rng, relay, name);
    let (engine, writes, upload) = Engine::create(store, device, &mut rng, 1_000);
    engine.store.commit(writes).unwrap();
    Member {
        _dir: dir,
        engine,
        rng,
        upload,
        next_seq: 0,
    }
}

impl Member {
    /// What the relay hands out: one one-time prekey of each kind.
    fn bundle(&mut self) -> PreKeyBundle {
        let opk = self.upload.one_time_prekeys.pop();
        let pq = self.upload.one_time_pq_prekeys.pop().unwrap();
        wire::decode_prekey_bundle(&self.upload.signed_bundle, opk.as_deref(), &pq).unwrap()
    }

    pub(super) fn invite(&mut self) -> Invite {
        let (invite, writes) = self.engine.new_invite(&mut self.rng, 2_000);
        self.engine.store.commit(writes).unwrap();
        invite
    }

    fn accept(&mut self, invite: &Invite, bundle: &PreKeyBundle) -> Contact {
        let (contact, writes) = self
            .engine
            .accept_invite(
                invite,
                bundle,
                b"token for the inviter",
                &mut self.rng,
                3_000,
            )
            .unwrap();
        self.engine.store.commit(writes).unwrap();
        contact
    }

    fn send(&mut self, to: MemberId, text: &str) -> MessageId {
        let (id, writes) = self
            .engine
            .queue_text(to, text, &mut self.rng, 4_000)
            .unwrap();
        self.engine.store.commit(writes).unwrap();
        id
    }

    /// Takes the outbox as the relay would, marking everything sent.
    pub(super) fn take_outbox(&mut self) -> Vec<(Bytes, Bytes)> {
        let items = self.engine.outbox().unwrap();
        items
            .into_iter()
            .map(|item| {
                let (writes, _) = self.engine.sent(&item).unwrap();
                self.engine.store.commit(writes).unwrap();
                (
                    item.record.sealed_header.clone().into(),
                    item.record.body.clone().into(),
                )
            })
            .collect()
    }

    /// Receives envelopes with fresh sequence numbers.
    pub(super) fn receive(&mut self, envelopes: &[(Bytes, Bytes)]) -> Vec<Event> {
        let mut events = Vec::new();
        for (header, body) in envelopes {
            let seq = self.next_seq;
            self.next_seq += 1;
            events.extend(self.receive_at(seq, header.clone(), body.clone()));
        }
        events
    }

    fn receive_at(&mut self, seq: u64, sealed_header: Bytes, body: Bytes) -> Vec<Event> {
        let envelope = DeliveredEnvelope {
            seq,
            sealed_header,
            body,
            stored_at_ms: 0,
        };
        match self
            .engine
            .receive(&envelope, &mut self.rng, 5_000)
            .unwrap()
        {
            Received::AlreadyProcessed => Vec::new(),
            Received::Processed { writes, events, .. } => {
                self.engine.store.commit(writes).unwrap();
                events
            }
        }
    }

    pub(super) fn id(&self) -> MemberId {
        self.engine.device.member_id
    }
}

/// Alice accepts Bob's invite and Bob processes the contact request.
pub(super) fn connected() -> (Member, Member) {
    let (mut alice, mut bob) = (member(1, "Alice"), member(2, "Bob"));
    let invite = bob.invite();
    let bundle = bob.bundle();
    let contact = alice.accept(&invite, &bundle);
    assert_eq!(contact.member_id, bob.id());
    assert_eq!(contact.display_name, "Bob");
    let events = bob.receive(&alice.take_outbox());
    match events.as_slice() {
        [Event::ContactAdded(added)] => {
            assert_eq!(added.member_id, alice.id());
            assert_eq!(added.display_name, "Alice");
            assert_eq!(added.safety_number, contact.safety_number);
        }
        other => panic!("expected ContactAdded, got {other:?}"),
    }
    (alice, bob)
}

fn texts(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Message(Message {
                content: Content::Text(text),
                ..
            }) => Some(text.clone()),
            _ => None,
        })
        .collect()
}

pub(super) fn rejections(events: &[Event]) -> Vec<RejectReason> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Rejected { reason } => Some(*reason),
            _ => None,
        })
        .collect()
}

#[test]
fn an_invite_connects_two_members_who_then_talk_both_ways() {
    let (mut alice, mut bob) = connected();
    alice.send(bob.id(), "one");
    alice.send(bob.id(), "two");
    assert_eq!(texts(&bob.receive(&alice.take_outbox())), ["one", "two"]);
    bob.send(alice.id(), "three");
    assert_eq!(texts(&alice.receive(&bob.take_outbox())), ["three"]);
    alice.send(bob.id(), "four");
    assert_eq!(texts(&bob.receive(&alice.take_outbox())), ["four"]);

    let history = bob.engine.history(alice.id()).unwrap();
    let shown: Vec<(Direction, Content)> = history
        .iter()
        .map(|m| (m.direction, m.content.clone()))
        .collect();
    assert_eq!(
        shown,
        [
            (Direction::Incoming, Content::Text("one".into())),
            (Direction::Incoming, Content::Text("two".into())),
            (Direction::Outgoing, Content::Text("three".into())),
            (Direction::Incoming, Content::Text("four".into())),
        ]
    );
    assert_eq!(history[2].status, MessageStatus::Sent);
}

#[test]
fn messages_sent_before_the_first_reply_still_carry_the_handshake() {
    let (mut alice, mut bob) = (member(1, "Alice"), member(2, "Bob"));
    let invite = bob.invite();
    let bundle = bob.bundle();
    alice.accept(&invite, &bundle);
    alice.send(bob.id(), "early");
    let envelopes = alice.take_outbox();
    assert_eq!(envelopes.len(), 2);
    let events = bob.receive(&envelopes);
    assert!(matches!(events[0], Event::ContactAdded(_)));
    assert_eq!(texts(&events), ["early"]);
}

#[test]
fn a_redelivered_envelope_is_acknowledged_without_a_second_event() {
    let (mut alice, mut bob) = connected();
    alice.send(bob.id(), "once");
    let envelopes = alice.take_outbox();
    let seq = bob.next_seq;
    let (header, body) = envelopes[0].clone();
    assert_eq!(
        texts(&bob.receive_at(seq, header.clone(), body.clone())),
        ["once"]
    );
    assert!(bob.receive_at(seq, header, body).is_empty());
    assert_eq!(bob.engine.history(alice.id()).unwrap().len(), 1);
}

#[test]
fn new_content_below_the_mark_is_kept_when_the_relay_numbering_went_back() {
    let (mut alice, mut bob) = connected();
    alice.send(bob.id(), "first");
    bob.receive(&alice.take_outbox());
    // E.g. the relay was restored from a backup and numbers from 0 again.
    alice.send(bob.id(), "after the restore");
    let (header, body) = alice.take_outbox().remove(0);
    assert_eq!(
        texts(&bob.receive_at(0, header.clone(), body.clone())),
        ["after the restore"]
    );
    assert!(
        bob.receive_at(0, header, body).is_empty(),
        "a redelivery stays silent"
    );
}

#[test]
fn a_replayed_envelope_is_rejected_and_the_conversation_goes_on() {
    let (mut alice, mut bob) = connected();
    alice.send(bob.id(), "hello");
    let envelopes = alice.take_outbox();
    assert_eq!(texts(&bob.receive(&envelopes)), ["hello"]);
    // The relay (or an attacker) stores the same envelope again.
    assert_eq!(
        rejections(&bob.receive(&envelopes)),
        [RejectReason::Replayed]
    );
    alice.send(bob.id(), "still here");
    assert_eq!(texts(&bob.receive(&alice.take_outbox())), ["still here"]);
    assert_eq!(bob.engine.history(alice.id()).unwrap().len(), 2);
}

#[test]
fn a_replayed_first_message_is_rejected() {
    let (mut alice, mut bob) = (member(1, "Alice"), member(2, "Bob"));
    let invite = bob.invite();
    let bundle = bob.bundle();
    alice.accept(&invite, &bundle);
    let first = alice.take_outbox();
    bob.receive(&first);
    assert_eq!(rejections(&bob.receive(&first)), [RejectReason::Replayed]);
}

#[test]
fn a_tampered_envelope_is_rejected_and_the_conversation_goes_on() {
    let (mut alice, mut bob) = connected();
    alice.send(bob.id(), "secret");
    let (header, body) = alice.take_outbox().remove(0);
    let mut bad_body = body.to_vec();
    bad_body[10] ^= 1;
    let events = bob.receive(&[(header.clone(), bad_body.into())]);
    assert_eq!(rejections(&events), [RejectReason::Undecryptable]);
    let mut bad_header = header.to_vec();
    bad_header[40] ^= 1;
    let events = bob.receive(&[(bad_header.into(), body.clone())]);
    assert_eq!(rejections(&events), [RejectReason::Undecryptable]);
    // The untouched envelope (e.g. redelivered by an honest relay) still reads.
    assert_eq!(texts(&bob.receive(&[(header, body)])), ["secret"]);
    alice.send(bob.id(), "more");
    assert_eq!(texts(&bob.receive(&alice.take_outbox())), ["more"]);
}

#[test]
fn an_unknown_invite_secret_and_a_stranger_are_rejected() {
    let (_alice, mut bob) = connected();
    let mut carol = member(3, "Carol");
    let mut forged = bob.invite();
    forged.secret = [0x55; 32];
    let bundle = bob.bundle();
    carol.accept(&forged, &bundle);
    let events = bob.receive(&carol.take_outbox());
    assert_eq!(rejections(&events), [RejectReason::UnknownInvite]);
    // Carol keeps writing as if she were a contact: still a stranger.
    carol.send(bob.id(), "let me in");
    let events = bob.receive(&carol.take_outbox());
    assert_eq!(rejections(&events), [RejectReason::UnknownSender]);
    assert_eq!(bob.engine.contacts().unwrap().len(), 1);
}

#[test]
fn an_invite_works_once() {
    let (mut alice, mut bob) = (member(1, "Alice"), member(2, "Bob"));
    let mut carol = member(3, "Carol");
    let invite = bob.invite();
    let bundle = bob.bundle();
    alice.accept(&invite, &bundle);
    let bundle = bob.bundle();
    carol.accept(&invite, &bundle);
    let events = bob.receive(&alice.take_outbox());
    assert!(matches!(events.as_slice(), [Event::ContactAdded(_)]));
    let events = bob.receive(&carol.take_outbox());
    assert_eq!(rejections(&events), [RejectReason::InviteAlreadyUsed]);
}

#[test]
fn the_same_message_id_is_shown_once() {
    let (mut alice, mut bob) = connected();
    let contact = alice.engine.contact_record(bob.id()).unwrap().unwrap();
    let id = MessageId::from_bytes([9; 16]);
    let bytes = crate::content::encode(id, 1, crate::content::text("dup"));
    for _ in 0..2 {
        let mut session = alice.engine.session_record(bob.id()).unwrap().unwrap();
        let mut writes = alice.engine.store.writes();
        alice
            .engine
            .queue(
                &contact,
                &mut session,
                id,
                &bytes,
                &mut writes,
                &mut alice.rng,
                1,
            )
            .unwrap();
        alice.engine.put_state(&mut writes);
        alice.engine.store.commit(writes).unwrap();
    }
    let events = bob.receive(&alice.take_outbox());
    assert_eq!(texts(&events), ["dup"]);
    assert_eq!(bob.engine.history(alice.id()).unwrap().len(), 1);
}

#[test]
fn invites_of_oneself_or_of_a_contact_are_refused() {
    let (mut alice, mut bob) = connected();
    let own = alice.invite();
    let bundle = alice.bundle();
    assert!(matches!(
        alice
            .engine
            .accept_invite(&own, &bundle, b"t", &mut alice.rng, 1),
        Err(Error::OwnInvite)
    ));
    let again = bob.invite();
    let bundle = bob.bundle();
    assert!(matches!(
        alice
            .engine
            .accept_invite(&again, &bundle, b"t", &mut alice.rng, 1),
        Err(Error::AlreadyContact)
    ));
}

#[test]
fn a_bundle_of_someone_else_is_refused() {
    let (mut alice, mut bob) = (member(1, "Alice"), member(2, "Bob"));
    let mut mallory = member(4, "Mallory");
    let invite = bob.invite();
    let substituted = mallory.bundle();
    assert!(matches!(
        alice
            .engine
            .accept_invite(&invite, &substituted, b"t", &mut alice.rng, 1),
        Err(Error::InviteKeysMismatch)
    ));
    assert!(alice.engine.contacts().unwrap().is_empty());
}

#[test]
fn verifying_needs_the_right_safety_number() {
    let (alice, bob) = connected();
    let contact = alice.engine.contacts().unwrap().remove(0);
    let wrong: SafetyNumber = "1".repeat(60).parse().unwrap();
    assert!(matches!(
        alice.engine.verify_contact(bob.id(), &wrong),
        Err(Error::SafetyNumberMismatch)
    ));
    let (verified, writes) = alice
        .engine
        .verify_contact(bob.id(), &contact.safety_number)
        .unwrap();
    alice.engine.store.commit(writes).unwrap();
    assert!(verified.verified);
    assert!(alice.engine.contacts().unwrap()[0].verified);
}

#[test]
fn contacts_are_found_by_member_id_or_name() {
    let (alice, bob) = connected();
    assert_eq!(
        alice
            .engine
            .find_contact(&bob.id().to_string())
            .unwrap()
            .member_id,
        bob.id()
    );
    assert_eq!(
        alice.engine.find_contact("bob").unwrap().member_id,
        bob.id()
    );
    assert!(matches!(
        alice.engine.find_contact("nobody"),
        Err(Error::UnknownContact)
    ));
}

#[test]
fn state_survives_a_reload() {
    let (mut alice, mut bob) = connected();
    alice.send(bob.id(), "before");
    bob.receive(&alice.take_outbox());
    let reloaded = Engine::load(bob.engine.store.clone()).unwrap();
    assert_eq!(reloaded.state, bob.engine.state);
    assert_eq!(reloaded.replay, bob.engine.replay);
    bob.engine = reloaded;
    alice.send(bob.id(), "after");
    assert_eq!(texts(&bob.receive(&alice.take_outbox())), ["after"]);
}
