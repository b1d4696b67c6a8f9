//! Lazy start: envelope indexes load when first needed, retries after a
//! restart, body counts across mailboxes loaded at different times.

use super::*;
use crate::store::Loaded;

fn circle_send(
    h: &mut Harness,
    client: &Client,
    id: u8,
    to: &[&Owner],
    retry: bool,
) -> Vec<ErrorCode> {
    let send = pb::Send {
        client_message_id: vec![id; 16].into(),
        body: Bytes::from_static(b"sealed body"),
        recipients: recipients_of(to, id),
        retry,
    };
    h.send_request(client, send)
}

#[test]
fn a_restart_loads_no_envelope_until_its_mailbox_is_needed() {
    let mut h = Harness::new(open_config());
    let (alice, bob) = (Owner::new(1), Owner::new(2));
    h.owner_online(&alice);
    h.owner_online(&bob);
    let sender = h.connect();
    for id in 1..=3 {
        circle_send(&mut h, &sender, id, &[&alice], false);
    }
    circle_send(&mut h, &sender, 4, &[&bob], false);
    h.restart();
    assert_eq!(h.core.stats().envelopes, 0, "nothing loaded at start");
    assert_eq!(h.core.stats().mailboxes, 2);

    // A wrong proof or a wrong token loads nothing.
    let stranger = h.connect();
    let auth = pb::Authenticate {
        mailbox_id: alice.mailbox.0.to_vec().into(),
        signature: bob.proof(&stranger),
    };
    assert_eq!(
        code_of(&h.call(&stranger, Req::Authenticate(auth))),
        Some(ErrorCode::Unauthorized)
    );
    let bad = [(&alice, &b"wrong"[..])];
    assert_eq!(h.send(&stranger, 9, b"x", &bad), [ErrorCode::Unauthorized]);
    assert!(h.loads.is_empty());

    // The owner's authentication loads alice's index, once.
    let owner = h.connect();
    assert!(matches!(
        h.authenticate(&owner, &alice).kind,
        Some(Resp::Authenticated(_))
    ));
    assert_eq!(h.loads, [(vec![alice.mailbox], None)]);
    assert_eq!(h.core.stats().envelopes, 3);
    assert_eq!(h.deliveries(&owner), [0, 1, 2]);
    let again = h.connect();
    h.authenticate(&again, &alice);
    assert_eq!(h.loads.len(), 1, "a loaded mailbox is not loaded again");

    // A send to bob loads bob's, and the new envelope follows the old one.
    let sender = h.connect();
    assert_eq!(circle_send(&mut h, &sender, 5, &[&bob], false), [OK]);
    assert_eq!(h.loads[1], (vec![bob.mailbox], None));
    let bobs = h.connect();
    h.authenticate(&bobs, &bob);
    assert_eq!(h.deliveries(&bobs), [0, SEQ_BLOCK]);
}

#[test]
fn a_second_load_of_a_loaded_mailbox_is_ignored() {
    let mut h = Harness::new(open_config());
    let alice = Owner::new(1);
    let owner = h.owner_online(&alice);
    let sender = h.connect();
    circle_send(&mut h, &sender, 1, &[&alice], false);
    // A stale read of the store, from before the send.
    let stale = Loaded {
        mailboxes: vec![(alice.mailbox, crate::store::MailboxIndex::default())],
        send_record: None,
    };
    assert!(h.core.handle_loaded(stale, h.now).is_none());
    assert_eq!(h.core.stats().envelopes, 1);
    assert_eq!(h.deliveries(&owner), [0]);
}

#[test]
fn a_marked_retry_after_a_restart_is_found_and_stored_once() {
    let mut h = Harness::new(open_config());
    let (alice, bob) = (Owner::new(1), Owner::new(2));
    h.owner_online(&alice);
    h.owner_online(&bob);
    let sender = h.connect();
    assert_eq!(circle_send(&mut h, &sender, 1, &[&alice], false), [OK]);
    assert_eq!(
        circle_send(&mut h, &sender, 2, &[&alice, &bob], false),
        [OK, OK]
    );
    assert_eq!(
        h.store.send_record_count(),
        1,
        "only the circle send's record"
    );
    h.restart();
    let sender = h.connect();

    // 1:1: found through alice's envelope index (loaded for the send).
    assert_eq!(circle_send(&mut h, &sender, 1, &[&alice], true), [OK]);
    assert_eq!(h.loads, [(vec![alice.mailbox], None)]);
    assert_eq!(h.store.envelope_count(), 3, "not stored again");
    // Remembered now: a second retry needs no search.
    assert_eq!(circle_send(&mut h, &sender, 1, &[&alice], true), [OK]);
    assert_eq!(h.store.envelope_count(), 3);

    // Circle: its record is read by a point read, with bob's index.
    let results = circle_send(&mut h, &sender, 2, &[&alice, &bob], true);
    assert_eq!(results, [OK, OK]);
    assert_eq!(
        h.loads[1],
        (vec![bob.mailbox], Some(ClientMessageId([2; 16])))
    );
    assert_eq!(h.store.envelope_count(), 3, "not stored again");
    assert_eq!(h.store.body_count(), 1);

    // Unmarked, a forgotten send is a new one (clients drop the copy).
    h.restart();
    let sender = h.connect();
    assert_eq!(
        circle_send(&mut h, &sender, 2, &[&alice, &bob], false),
        [OK, OK]
    );
    assert_eq!(h.store.envelope_count(), 5);
    // Marked but never stored: looked up once, then stored.
    let results = circle_send(&mut h, &sender, 3, &[&alice, &bob], true);
    assert_eq!(results, [OK, OK]);
    assert_eq!(h.store.envelope_count(), 7);
    let lookups = h
        .loads
        .iter()
        .filter(|(_, record)| record.is_some())
        .count();
    assert_eq!(lookups, 2);
}

#[test]
fn a_shared_body_goes_when_its_last_recipient_acks_across_lazy_loads() {
    let mut h = Harness::new(open_config());
    let (alice, bob, carol) = (Owner::new(1), Owner::new(2), Owner::new(3));
    for owner in [&alice, &bob, &carol] {
        h.owner_online(owner);
    }
    let sender = h.connect();
    circle_send(&mut h, &sender, 1, &[&alice, &bob, &carol], false);
    assert_eq!(h.store.body_count(), 1);
    h.restart();

    // Alice loads and acks: two recipients still hold the body.
    let a = h.connect();
    h.authenticate(&a, &alice);
    assert_eq!(h.deliveries(&a), [0]);
    h.ack(&a, &alice, &[0]);
    assert_eq!(h.store.body_count(), 1);

    // Bob loads later (his stored count is stale: memory's wins) and acks.
    let b = h.connect();
    h.authenticate(&b, &bob);
    assert_eq!(h.deliveries(&b), [0]);
    h.ack(&b, &bob, &[0]);
    assert_eq!(h.store.body_count(), 1, "carol still has it");

    // After another restart carol's load reads the stored count (1).
    h.restart();
    let c = h.connect();
    h.authenticate(&c, &carol);
    assert_eq!(h.deliveries(&c), [0]);
    h.ack(&c, &carol, &[0]);
    assert_eq!(h.store.body_count(), 0, "gone with the last ack");
    assert_eq!(h.store.envelope_count(), 0);
}

#[test]
fn quotas_of_a_lazily_loaded_mailbox_count_its_stored_envelopes() {
    let config = CoreConfig {
        mailbox_max_envelopes: 2,
        ..open_config()
    };
    let mut h = Harness::new(config);
    let alice = Owner::new(1);
    h.owner_online(&alice);
    let sender = h.connect();
    circle_send(&mut h, &sender, 1, &[&alice], false);
    circle_send(&mut h, &sender, 2, &[&alice], false);
    h.restart();
    let sender = h.connect();
    assert_eq!(
        circle_send(&mut h, &sender, 3, &[&alice], false),
        [ErrorCode::MailboxFull]
    );
}

#[test]
fn expired_envelopes_go_when_their_mailbox_loads() {
    let mut h = Harness::new(open_config());
    let (alice, bob) = (Owner::new(1), Owner::new(2));
    h.owner_online(&alice);
    h.owner_online(&bob);
    let sender = h.connect();
    circle_send(&mut h, &sender, 1, &[&alice, &bob], false);
    h.advance(Duration::from_secs(29 * 24 * 3600));
    circle_send(&mut h, &sender, 2, &[&alice], false);
    h.restart();
    h.advance(Duration::from_secs(2 * 24 * 3600));
    // The sweep covers loaded mailboxes only: nothing is loaded.
    assert!(h.core.poll_expired(h.now).is_none());
    let owner = h.connect();
    h.authenticate(&owner, &alice);
    assert_eq!(
        h.deliveries(&owner),
        [1],
        "the expired one is not delivered"
    );
    assert_eq!(h.store.envelope_count(), 2, "bob's copy waits for bob");
    assert_eq!(h.store.body_count(), 1);
    let b = h.connect();
    h.authenticate(&b, &bob);
    assert!(h.deliveries(&b).is_empty());
    assert_eq!((h.store.envelope_count(), h.store.body_count()), (1, 0));
}

/// Runs a request through `core` against any store, as the shell does.
fn drive(
    core: &mut RelayCore,
    store: &dyn MailboxStore,
    conn: ConnId,
    kind: Req,
    now: Millis,
) -> pb::Response {
    let mut outcome = core.handle_request(conn, request(kind), now);
    loop {
        match outcome {
            Outcome::Reply(response) => return response,
            Outcome::Commit(commit) => {
                let Reply::Ready(response) = commit.reply else {
                    panic!("no prekey fetch here");
                };
                store.commit(std::slice::from_ref(&commit.batch)).unwrap();
                core.handle_committed(commit.ticket);
                return response;
            }
            Outcome::Load {
                mailboxes,
                send_record,
                request,
            } => {
                let loaded = store.load_needed(&mailboxes, send_record).unwrap();
                if let Some(commit) = core.handle_loaded(loaded, now) {
                    store.commit(std::slice::from_ref(&commit.batch)).unwrap();
                    core.handle_committed(commit.ticket);
                }
                outcome = core.handle_request(conn, request, now);
            }
        }
    }
}

#[test]
fn sequence_numbers_continue_after_a_fjall_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let config = open_config();
    let alice = Owner::new(1);
    let mut delivered = Vec::new();
    for round in 0..3u8 {
        let store = crate::store::fjall::FjallStore::open(dir.path()).unwrap();
        let mut core = RelayCore::new(config.clone(), store.load().unwrap());
        let challenge = [round; 32];
        let exporter = [round ^ 0xFF; 32];
        let conn = core.handle_connect(challenge, exporter, T0);
        let client = Client {
            conn,
            challenge,
            exporter,
        };
        let proof = alice.proof(&client);
        let mailbox_id: Bytes = alice.mailbox.0.to_vec().into();
        let r = if round == 0 {
            let register = pb::Register {
                mailbox_id: mailbox_id.clone(),
                mailbox_key: alice.key.verifying_key().to_bytes().to_vec().into(),
                signature: proof,
                registration_token: String::new(),
            };
            let r = drive(&mut core, &store, conn, Req::Register(register), T0);
            let add = pb::AddSendToken {
                mailbox_id: mailbox_id.clone(),
                token_hash: TokenHash::of(&alice.token).0.to_vec().into(),
            };
            drive(&mut core, &store, conn, Req::AddSendToken(add), T0);
            r
        } else {
            let auth = pb::Authenticate {
                mailbox_id: mailbox_id.clone(),
                signature: proof,
            };
            drive(&mut core, &store, conn, Req::Authenticate(auth), T0)
        };
        assert!(r.kind.is_some() && code_of(&r).is_none(), "{r:?}");
        for n in 0..3u8 {
            let send = pb::Send {
                client_message_id: vec![round * 10 + n; 16].into(),
                body: Bytes::from_static(b"x"),
                recipients: vec![pb::Recipient {
                    mailbox_id: mailbox_id.clone(),
                    send_token: alice.token.clone().into(),
                    sealed_header: Bytes::from_static(b"h"),
                }],
                retry: false,
            };
            drive(&mut core, &store, conn, Req::Send(send), T0);
        }
        while let Some(plan) = core.poll_delivery(conn) {
            delivered.extend(plan.envelopes.iter().map(|(seq, _)| *seq));
        }
        // Dropped without any shutdown step, like a crash after the commits.
    }
    // Every round sees the earlier rounds' envelopes again (never acked),
    // and its own numbers continue after the last reserved block.
    let mut last_round: Vec<u64> = delivered.clone();
    last_round.sort_unstable();
    last_round.dedup();
    assert_eq!(
        last_round,
        [
            0,
            1,
            2,
            SEQ_BLOCK,
            SEQ_BLOCK + 1,
            SEQ_BLOCK + 2,
            2 * SEQ_BLOCK,
            2 * SEQ_BLOCK + 1,
            2 * SEQ_BLOCK + 2
        ]
    );
}
