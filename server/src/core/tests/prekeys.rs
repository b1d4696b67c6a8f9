//! The prekey directory: publish, fetch, rate limits, durability.

use super::*;

fn publish(
    h: &mut Harness,
    client: &Client,
    owner: &Owner,
    one_time: usize,
    pq: usize,
) -> pb::Response {
    let p = pb::PublishPrekeys {
        mailbox_id: owner.mailbox.0.to_vec().into(),
        signed_bundle: Bytes::from_static(b"signed"),
        one_time_prekeys: (0..one_time)
            .map(|i| Bytes::from(vec![b'o', i as u8]))
            .collect(),
        one_time_pq_prekeys: (0..pq).map(|i| Bytes::from(vec![b'q', i as u8])).collect(),
        last_resort_pq_prekey: Bytes::from_static(b"last"),
    };
    h.call(client, Req::PublishPrekeys(p))
}

fn fetch(h: &mut Harness, client: &Client, owner: &Owner, token: &[u8]) -> pb::Response {
    let f = pb::FetchPrekeys {
        mailbox_id: owner.mailbox.0.to_vec().into(),
        send_token: token.to_vec().into(),
    };
    h.call(client, Req::FetchPrekeys(f))
}

#[test]
fn prekey_fetches_consume_one_of_each_kind_then_fall_back_to_last_resort() {
    let mut h = Harness::new(open_config());
    let bob = Owner::new(2);
    let owner = h.owner_online(&bob);
    let alice = h.connect();
    assert_eq!(
        code_of(&fetch(&mut h, &alice, &bob, &bob.token)),
        Some(ErrorCode::NoPrekeys)
    );
    assert!(matches!(
        publish(&mut h, &owner, &bob, 2, 1).kind,
        Some(Resp::Done(_))
    ));
    assert_eq!(
        code_of(&fetch(&mut h, &alice, &bob, b"nope")),
        Some(ErrorCode::Unauthorized)
    );

    let bundle = |r: pb::Response| match r.kind {
        Some(Resp::PrekeyBundle(b)) => b,
        other => panic!("unexpected {other:?}"),
    };
    let first = bundle(fetch(&mut h, &alice, &bob, &bob.token));
    assert_eq!(
        (
            &first.signed_bundle[..],
            &first.one_time_prekey[..],
            &first.pq_prekey[..]
        ),
        (&b"signed"[..], &[b'o', 0][..], &[b'q', 0][..])
    );
    assert!(!first.pq_is_last_resort);
    h.restart();
    let alice = h.connect();
    let second = bundle(fetch(&mut h, &alice, &bob, &bob.token));
    assert_eq!(
        (&second.one_time_prekey[..], &second.pq_prekey[..]),
        (&[b'o', 1][..], &b"last"[..])
    );
    assert!(second.pq_is_last_resort);
    let third = bundle(fetch(&mut h, &alice, &bob, &bob.token));
    assert!(third.one_time_prekey.is_empty());

    let owner = h.connect();
    h.authenticate(&owner, &bob);
    let counts = pb::PrekeyCounts {
        mailbox_id: bob.mailbox.0.to_vec().into(),
    };
    let r = h.call(&owner, Req::PrekeyCounts(counts));
    assert_eq!(
        r.kind,
        Some(Resp::PrekeyCounts(pb::PrekeyCountsResult {
            one_time_prekeys: 0,
            one_time_pq_prekeys: 0,
            has_last_resort: true
        }))
    );
}

#[test]
fn prekey_fetches_are_rate_limited_per_mailbox() {
    let config = CoreConfig {
        prekey_fetch_limit: RateLimit {
            per_second: 1.0,
            burst: 2.0,
        },
        ..open_config()
    };
    let mut h = Harness::new(config);
    let bob = Owner::new(2);
    let owner = h.owner_online(&bob);
    publish(&mut h, &owner, &bob, 10, 10);
    let (a, b) = (h.connect(), h.connect());
    assert_eq!(code_of(&fetch(&mut h, &a, &bob, &bob.token)), None);
    assert_eq!(code_of(&fetch(&mut h, &b, &bob, &bob.token)), None);
    assert_eq!(
        code_of(&fetch(&mut h, &a, &bob, &bob.token)),
        Some(ErrorCode::RateLimited),
        "limit is per target mailbox, not per connection"
    );
    h.advance(Duration::from_secs(1));
    assert_eq!(code_of(&fetch(&mut h, &b, &bob, &bob.token)), None);
}

#[test]
fn unpublished_prekeys_are_not_handed_out_before_they_are_durable() {
    let mut h = Harness::new(open_config());
    let bob = Owner::new(2);
    let owner = h.owner_online(&bob);
    let p = pb::PublishPrekeys {
        mailbox_id: bob.mailbox.0.to_vec().into(),
        signed_bundle: Bytes::from_static(b"signed"),
        one_time_prekeys: vec![Bytes::from_static(b"o")],
        one_time_pq_prekeys: vec![],
        last_resort_pq_prekey: Bytes::from_static(b"last"),
    };
    let Outcome::Commit(commit) =
        h.core
            .handle_request(owner.conn, request(Req::PublishPrekeys(p)), h.now)
    else {
        panic!("publish commits");
    };
    let alice = h.connect();
    assert_eq!(
        code_of(&fetch(&mut h, &alice, &bob, &bob.token)),
        Some(ErrorCode::NoPrekeys)
    );
    h.finish(Outcome::Commit(commit));
    assert_eq!(code_of(&fetch(&mut h, &alice, &bob, &bob.token)), None);
}
