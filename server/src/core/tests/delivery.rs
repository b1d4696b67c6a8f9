//! Deliveries and acknowledgements: delivery after durability, cumulative
//! and single acks, the one-key 1:1 envelope, and sequence numbers that never
//! go backwards.

use super::*;

/// Alice online with envelopes 0, 1 and 2 delivered (not acknowledged) on
/// her connection, and the sender's connection.
fn three_delivered() -> (Harness, Owner, Client, Client) {
    let mut h = Harness::new(open_config());
    let alice = Owner::new(1);
    let owner = h.owner_online(&alice);
    let sender = h.connect();
    for id in 1..=3 {
        h.send(&sender, id, b"x", &[(&alice, &alice.token)]);
    }
    assert_eq!(h.deliveries(&owner), [0, 1, 2]);
    (h, alice, owner, sender)
}

#[test]
fn deliveries_wait_for_durability_and_come_in_order() {
    let mut h = Harness::new(open_config());
    let alice = Owner::new(1);
    let owner = h.owner_online(&alice);
    let sender = h.connect();
    let send = one_to_one(&alice, 1, b"body");
    let Outcome::Commit(commit) =
        h.core
            .handle_request(sender.conn, request(Req::Send(send)), h.now)
    else {
        panic!("a send commits");
    };
    assert_eq!(h.core.poll_delivery(owner.conn), None, "not durable yet");
    h.store.commit(std::slice::from_ref(&commit.batch)).unwrap();
    assert_eq!(h.core.handle_committed(commit.ticket), vec![owner.conn]);
    for id in 2..=5 {
        assert_eq!(h.send(&sender, id, b"x", &[(&alice, &alice.token)]), [OK]);
    }
    assert_eq!(h.deliveries(&owner), [0, 1, 2, 3, 4]);
}

#[test]
fn a_cumulative_ack_deletes_what_this_connection_was_delivered_up_to_its_bound() {
    let (mut h, alice, owner, sender) = three_delivered();
    // Stored after the delivery: not in flight, so `through` can't reach it.
    h.send(&sender, 4, b"x", &[(&alice, &alice.token)]);
    let r = h.ack_through(&owner, &alice, 1);
    assert_eq!(code_of(&r), None);
    assert_eq!(h.core.stats().envelopes, 2, "seqs 0 and 1 deleted");
    let r = h.ack_through(&owner, &alice, 99);
    assert_eq!(code_of(&r), None);
    assert_eq!(
        h.core.stats().envelopes,
        1,
        "seq 2 deleted; seq 3 was never delivered"
    );
    assert_eq!(h.deliveries(&owner), [3]);
    // Another connection of the same owner saw nothing: its bound covers nothing.
    let second = h.connect();
    h.authenticate(&second, &alice);
    assert_eq!(code_of(&h.ack_through(&second, &alice, 99)), None);
    assert_eq!(h.core.stats().envelopes, 1);
    h.ack_through(&owner, &alice, 3);
    assert_eq!((h.core.stats().envelopes, h.store.body_count()), (0, 0));
    // Not the owner: refused, nothing deleted.
    let stranger = h.connect();
    assert_eq!(
        code_of(&h.ack_through(&stranger, &alice, 99)),
        Some(ErrorCode::Unauthorized)
    );
}

#[test]
fn acks_delete_and_unacked_envelopes_come_back_after_reconnect() {
    let (mut h, alice, owner, _sender) = three_delivered();
    let r = h.ack(&owner, &alice, &[0, 1, 99]);
    assert_eq!(code_of(&r), None, "an unknown seq is no error");
    assert_eq!(
        (h.store.body_count(), h.store.envelope_count()),
        (0, 1),
        "a 1:1 body is inside its envelope"
    );
    h.core.handle_disconnect(owner.conn);

    h.restart();
    let again = h.connect();
    h.authenticate(&again, &alice);
    assert_eq!(h.deliveries(&again), [2], "only the unacknowledged one");
    h.ack(&again, &alice, &[2]);
    assert_eq!((h.store.body_count(), h.core.stats().envelopes), (0, 0));
    // Sequence numbers are never reused, even after everything was acked.
    h.restart();
    let again = h.connect();
    h.authenticate(&again, &alice);
    let sender = h.connect();
    h.send(&sender, 9, b"x", &[(&alice, &alice.token)]);
    assert_eq!(
        h.deliveries(&again),
        [SEQ_BLOCK],
        "a restart continues after the reserved block"
    );
}

#[test]
fn a_one_to_one_send_is_one_key_and_its_ack_one_delete() {
    let mut h = Harness::new(open_config());
    let alice = Owner::new(1);
    let owner = h.owner_online(&alice);
    let sender = h.connect();
    let send = one_to_one(&alice, 3, b"the body");
    let outcome = h
        .core
        .handle_request(sender.conn, request(Req::Send(send)), h.now);
    let Outcome::Commit(commit) = &outcome else {
        panic!("a send commits");
    };
    match &commit.batch.mutations[..] {
        [Mutation::PutEnvelope { record, .. }] => {
            assert_eq!(record.meta.body, BodyRef::Inline(ClientMessageId([3; 16])));
            assert_eq!(record.body.as_deref(), Some(&b"the body"[..]));
        }
        other => panic!("expected one envelope write, got {other:?}"),
    }
    h.finish(outcome);
    assert_eq!(h.deliveries(&owner), [0]);
    let ack = pb::Ack {
        mailbox_id: alice.mailbox.0.to_vec().into(),
        seqs: vec![0],
        through: None,
    };
    let Outcome::Commit(commit) = h
        .core
        .handle_request(owner.conn, request(Req::Ack(ack)), h.now)
    else {
        panic!("an ack commits");
    };
    assert_eq!(
        commit.batch.mutations,
        [Mutation::DeleteEnvelope(alice.mailbox, 0)]
    );
}

#[test]
fn sequence_numbers_never_go_backwards_and_rewrite_the_mailbox_once_per_block() {
    let mut h = Harness::new(open_config());
    let alice = Owner::new(1);
    let owner = h.owner_online(&alice);
    let sender = h.connect();
    let mailbox_writes = |commit: &Commit| {
        commit
            .batch
            .mutations
            .iter()
            .filter(|m| matches!(m, Mutation::PutMailbox(..)))
            .count()
    };
    let mut rewrites = 0;
    let mut last = None;
    // Past the end of the first block, then across a restart.
    for n in 0..SEQ_BLOCK + 2 {
        h.advance(Duration::from_millis(1));
        let send = pb::Send {
            client_message_id: {
                let mut id = [0xD0; 16];
                id[..8].copy_from_slice(&n.to_be_bytes());
                id.to_vec().into()
            },
            body: Bytes::from_static(b"x"),
            recipients: vec![pb::Recipient {
                mailbox_id: alice.mailbox.0.to_vec().into(),
                send_token: alice.token.clone().into(),
                sealed_header: Bytes::from_static(b"h"),
            }],
            retry: false,
        };
        let Outcome::Commit(commit) =
            h.core
                .handle_request(sender.conn, request(Req::Send(send)), h.now)
        else {
            panic!("a send commits");
        };
        rewrites += mailbox_writes(&commit);
        h.finish(Outcome::Commit(commit));
        for seq in h.deliveries(&owner) {
            assert!(last.is_none_or(|last| seq > last));
            last = Some(seq);
            h.ack(&owner, &alice, &[seq]);
        }
    }
    assert_eq!(last, Some(SEQ_BLOCK + 1));
    assert_eq!(rewrites, 1, "one rewrite for the second block");
    h.restart();
    let owner = h.connect();
    h.authenticate(&owner, &alice);
    let sender = h.connect();
    h.send(&sender, 7, b"x", &[(&alice, &alice.token)]);
    assert_eq!(h.deliveries(&owner), [2 * SEQ_BLOCK]);
}
