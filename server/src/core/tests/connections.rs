//! Connections: the deadline to authenticate or be of use, and the
//! per-connection mailbox cap that must refuse a registration before
//! anything is written.

use super::*;

fn challenge() -> Req {
    Req::GetChallenge(pb::GetChallenge {})
}

fn auth_timeout(h: &Harness) -> Millis {
    h.config.auth_timeout.as_millis() as Millis
}

#[test]
fn an_idle_unauthenticated_connection_is_closed_at_its_deadline() {
    let mut h = Harness::new(open_config());
    let idle = h.connect();
    let deadline = h.now + auth_timeout(&h);
    assert_eq!(h.core.poll_timeout(idle.conn), Some(deadline));
    // Asking for challenges is no use: it does not move the deadline.
    h.advance(Duration::from_secs(5));
    assert!(matches!(
        h.call(&idle, challenge()).kind,
        Some(Resp::Challenge(_))
    ));
    assert_eq!(h.core.poll_timeout(idle.conn), Some(deadline));
    // Nor are syncs, though they go through the writer.
    assert!(matches!(
        h.call(&idle, Req::Sync(pb::Sync {})).kind,
        Some(Resp::Done(_))
    ));
    assert_eq!(h.core.poll_timeout(idle.conn), Some(deadline));
    assert_eq!(h.core.handle_timeout(idle.conn, deadline - 1), None);
    let close = h.core.handle_timeout(idle.conn, deadline).expect("closed");
    assert_eq!(close.code, ErrorCode::Unauthorized);
    assert!(
        close.reason.contains("not authenticated in time"),
        "{close:?}"
    );
}

#[test]
fn an_authenticated_connection_has_no_deadline() {
    let mut h = Harness::new(open_config());
    let alice = Owner::new(1);
    let owner = h.owner_online(&alice);
    assert_eq!(h.core.poll_timeout(owner.conn), None);
    h.advance(Duration::from_secs(3600));
    assert_eq!(h.core.handle_timeout(owner.conn, h.now), None);

    let again = h.connect();
    assert!(h.core.poll_timeout(again.conn).is_some());
    assert!(matches!(
        h.authenticate(&again, &alice).kind,
        Some(Resp::Authenticated(_))
    ));
    assert_eq!(h.core.poll_timeout(again.conn), None);
}

#[test]
fn a_stored_send_moves_the_deadline_and_a_refused_one_does_not() {
    let mut h = Harness::new(open_config());
    let alice = Owner::new(1);
    h.owner_online(&alice);
    let sender = h.connect();
    let first_deadline = h.now + auth_timeout(&h);
    h.advance(Duration::from_secs(10));
    let refused = h.send(&sender, 1, b"x", &[(&alice, b"not the token")]);
    assert_eq!(refused, [ErrorCode::Unauthorized]);
    assert_eq!(h.core.poll_timeout(sender.conn), Some(first_deadline));
    assert_eq!(h.send(&sender, 2, b"x", &[(&alice, &alice.token)]), [OK]);
    let moved = h.now + auth_timeout(&h);
    assert_eq!(h.core.poll_timeout(sender.conn), Some(moved));
    assert_eq!(h.core.handle_timeout(sender.conn, first_deadline), None);
    assert!(h.core.handle_timeout(sender.conn, moved).is_some());
}

#[test]
fn a_registration_over_the_connection_cap_leaves_nothing_behind() {
    let mut h = Harness::new(open_config());
    let c = h.connect();
    for n in 0..MAX_MAILBOXES_PER_CONNECTION as u8 {
        let owner = Owner::new(n + 1);
        assert!(matches!(
            h.register(&c, &owner, "").kind,
            Some(Resp::Registered(_))
        ));
    }
    let one_too_many = Owner::new(100);
    assert_eq!(
        code_of(&h.register(&c, &one_too_many, "")),
        Some(ErrorCode::BadRequest)
    );
    assert_eq!(
        h.store.load().unwrap().mailboxes.len(),
        MAX_MAILBOXES_PER_CONNECTION
    );
    assert_eq!(h.core.stats().mailboxes, MAX_MAILBOXES_PER_CONNECTION);
    // Not even in memory: the id is free for anyone, with another key.
    let other = h.connect();
    let squatter = Owner {
        key: SigningKey::from_bytes(&[200; 32]),
        ..Owner::new(100)
    };
    assert!(matches!(
        h.register(&other, &squatter, "").kind,
        Some(Resp::Registered(_))
    ));
}

#[test]
fn a_refused_registration_spends_no_token_use() {
    let mut h = Harness::new(CoreConfig::default());
    let hash = TokenHash::of(b"invite");
    let uses = MAX_MAILBOXES_PER_CONNECTION as u32 + 1;
    h.core.handle_registration_tokens(vec![RegistrationToken {
        hash,
        uses,
        expires_at: None,
    }]);
    let c = h.connect();
    for n in 0..MAX_MAILBOXES_PER_CONNECTION as u8 {
        let r = h.register(&c, &Owner::new(n + 1), "invite");
        assert!(matches!(r.kind, Some(Resp::Registered(_))), "{r:?}");
    }
    assert_eq!(
        code_of(&h.register(&c, &Owner::new(100), "invite")),
        Some(ErrorCode::BadRequest)
    );
    let spent = h.store.load().unwrap().registration_uses;
    assert_eq!(spent, [(hash, MAX_MAILBOXES_PER_CONNECTION as u32)]);
    // The use left registers someone else.
    let other = h.connect();
    assert!(matches!(
        h.register(&other, &Owner::new(100), "invite").kind,
        Some(Resp::Registered(_))
    ));
}
