//! Attacks on circles in the core, without a relay: a parent member who
//! signs a "sub-circle" with someone the parent roster does not have (or
//! has with other keys or another name) is refused; expired links are
//! revoked once; strangers flooding the held queue share one allowance and
//! never crowd out a contact.

use bytes::Bytes;
use hearth_proto::content as pb;
use hearth_protocol::keys::IdentityKeyPair;
use hearth_protocol::sealed::{body_hash, seal_body, seal_header};
use hearth_protocol::sender_key::SenderKeyState;
use hearth_protocol::wire::{self, InnerMessage, SealedInner, SenderCertificate};

use super::tests::{Member, connected, member, rejections};
use crate::circles::roster::{PublicIdentityKeys, Roster, RosterMember};
use crate::circles::{CircleId, Role};
use crate::events::{Event, RejectReason};
use crate::records::TaskKind;

fn keys_of(member: &Member) -> PublicIdentityKeys {
    let public = member.engine.device.identity.public();
    PublicIdentityKeys {
        sig_key: public.sig_key,
        dh_key: public.dh_key,
    }
}

fn entry(keys: PublicIdentityKeys, name: &str) -> RosterMember {
    RosterMember {
        identity: keys,
        display_name: name.into(),
        role: Role::Member,
        added_in: 1,
    }
}

/// Bob facilitates a parent circle whose roster has Alice ("Alice") and
/// himself ("Bob"); Alice and Bob share a session.
fn parent_circle() -> (Member, Member, CircleId) {
    let (alice, mut bob) = connected();
    let (circle, writes) = bob
        .engine
        .create_circle("Parent", None, &mut bob.rng, 5_000)
        .unwrap();
    bob.engine.store.commit(writes).unwrap();
    let writes = bob.engine.store.writes();
    let (mut record, mut chain) = bob.engine.active_circle(&writes, circle.id).unwrap();
    let head = chain.head();
    let mut next = head.roster().next(head.hash());
    next.members.push(RosterMember {
        added_in: next.version,
        ..entry(keys_of(&alice), "Alice")
    });
    chain
        .add(next.sign(&bob.engine.device.identity).unwrap())
        .unwrap();
    record.chain = chain.to_bytes();
    let mut writes = bob.engine.store.writes();
    bob.engine.put_circle(&mut writes, &record);
    bob.engine.store.commit(writes).unwrap();
    (alice, bob, circle.id)
}

/// Alice signs a sub-circle of `parent` as herself (`as_name`) with
/// `others`, welcomes Bob to it, and Bob processes the welcome.
fn welcome_bob(
    alice: &mut Member,
    bob: &mut Member,
    parent: CircleId,
    as_name: &str,
    others: Vec<RosterMember>,
) -> (CircleId, Vec<Event>) {
    let sub = CircleId::random(&mut alice.rng);
    let mut roster = Roster::genesis(sub, "Night owls", keys_of(alice), as_name, Some(parent));
    roster.members.extend(others);
    let signed = roster.sign(&alice.engine.device.identity).unwrap();
    let welcome = pb::CircleWelcome {
        roster: signed.to_bytes(),
        cards: vec![alice.engine.my_card(b"alice's door")],
        parent_circle_id: parent.as_bytes().to_vec(),
        history: Vec::new(),
    };
    let mut writes = alice.engine.store.writes();
    let kind = pb::content::Kind::CircleWelcome(welcome);
    alice
        .engine
        .queue_control(&mut writes, bob.id(), kind, &mut alice.rng, 6_000)
        .unwrap();
    alice.engine.put_state(&mut writes);
    alice.engine.store.commit(writes).unwrap();
    let events = bob.receive(&alice.take_outbox());
    (sub, events)
}

fn knows_circle(member: &Member, circle: CircleId) -> bool {
    member
        .engine
        .circles()
        .unwrap()
        .iter()
        .any(|c| c.id == circle)
}

#[test]
fn a_sub_circle_with_anyone_the_parent_roster_lacks_or_has_otherwise_is_refused() {
    let (mut alice, mut bob, parent) = parent_circle();
    let carol = member(3, "Carol");
    let bob_as_in_parent = entry(keys_of(&bob), "Bob");
    let swapped = PublicIdentityKeys {
        sig_key: keys_of(&bob).sig_key,
        dh_key: keys_of(&carol).dh_key,
    };
    let forgeries = [
        // An outsider slipped in beside a real member.
        (
            "Alice",
            vec![bob_as_in_parent.clone(), entry(keys_of(&carol), "Carol")],
        ),
        // Bob under another name, and Bob with someone else's key.
        ("Alice", vec![entry(keys_of(&bob), "Bob (facilitator)")]),
        ("Alice", vec![entry(swapped, "Bob")]),
        // Alice herself under a name the parent does not give her.
        ("Fran, your facilitator", vec![bob_as_in_parent.clone()]),
    ];
    for (as_name, others) in forgeries {
        let (sub, events) = welcome_bob(&mut alice, &mut bob, parent, as_name, others);
        assert_eq!(rejections(&events), [RejectReason::Forged], "{events:?}");
        assert!(!knows_circle(&bob, sub), "a forged sub-circle appeared");
    }
    // The same welcome with everyone as the parent has them is accepted.
    let (sub, events) = welcome_bob(
        &mut alice,
        &mut bob,
        parent,
        "Alice",
        vec![bob_as_in_parent],
    );
    assert!(rejections(&events).is_empty(), "{events:?}");
    assert!(knows_circle(&bob, sub));
}

#[test]
fn expired_circle_links_are_revoked_once_and_personal_links_never_expire() {
    let mut fran = member(1, "Fran");
    let (circle, writes) = fran
        .engine
        .create_circle("Tuesday", None, &mut fran.rng, 1_000)
        .unwrap();
    fran.engine.store.commit(writes).unwrap();
    let (link, writes) = fran
        .engine
        .new_circle_invite(circle.id, 10_000, &mut fran.rng, 2_000)
        .unwrap();
    fran.engine.store.commit(writes).unwrap();
    let personal = fran.invite();
    let revoked = |fran: &Member| -> Vec<Vec<u8>> {
        fran.engine
            .tasks()
            .unwrap()
            .into_iter()
            .filter(|(_, t)| t.kind == TaskKind::RevokeToken as i32)
            .map(|(_, t)| t.token.clone())
            .collect()
    };
    assert!(fran.engine.expire_invites(9_999).unwrap().is_none());
    let writes = fran
        .engine
        .expire_invites(10_000)
        .unwrap()
        .expect("expired");
    fran.engine.store.commit(writes).unwrap();
    assert_eq!(revoked(&fran), [link.send_token.to_vec()]);
    assert!(!revoked(&fran).contains(&personal.send_token.to_vec()));
    assert!(fran.engine.expire_invites(u64::MAX).unwrap().is_none());
}

/// A well-formed circle message for `circle` to `to`, from `from` (whose
/// certificate it carries), under a sender key nobody was given.
fn unreadable_post(from: &IdentityKeyPair, to: &mut Member, circle: CircleId) -> (Bytes, Bytes) {
    let sig = ed25519_dalek::VerifyingKey::from_bytes(from.public().sig_key.as_bytes()).unwrap();
    let mut key = SenderKeyState::new(*circle.as_bytes(), 1, sig, 0, &mut to.rng);
    let inner = SealedInner {
        sender: SenderCertificate::of(from.public()),
        message: InnerMessage::SenderKey(key.encrypt(b"unreadable").unwrap()),
    };
    let (body_key, body) = seal_body(&wire::encode_sealed_inner(&inner), &mut to.rng).unwrap();
    let their_dh = *to.engine.device.identity.public().dh_key.as_bytes();
    let header = seal_header(
        &body_key,
        &body_hash(&body),
        &x25519_dalek::PublicKey::from(their_dh),
        &to.engine.device.mailbox_id,
        &mut to.rng,
    )
    .unwrap();
    (Bytes::copy_from_slice(header.as_bytes()), Bytes::from(body))
}

#[test]
fn strangers_share_one_held_allowance_and_never_crowd_out_a_contact() {
    let (alice, mut bob) = connected();
    let (circle, writes) = bob
        .engine
        .create_circle("Held", None, &mut bob.rng, 5_000)
        .unwrap();
    bob.engine.store.commit(writes).unwrap();
    // 250 made-up members each send a post no key will open: 200 are held
    // (a newcomer's roster version may be on its way), the rest refused.
    let mut refused = 0;
    for _ in 0..250 {
        let stranger = IdentityKeyPair::generate(&mut bob.rng);
        let post = unreadable_post(&stranger, &mut bob, circle.id);
        let events = bob.receive(&[post]);
        refused += rejections(&events)
            .iter()
            .filter(|r| **r == RejectReason::TooManyHeld)
            .count();
    }
    assert_eq!(refused, 50);
    // Alice, a contact, still has an allowance of her own.
    let post = unreadable_post(&alice.engine.device.identity, &mut bob, circle.id);
    assert!(rejections(&bob.receive(&[post])).is_empty());
    assert_eq!(
        bob.engine
            .store
            .keys(crate::store::Space::Held, &[])
            .unwrap()
            .len(),
        201
    );
}
