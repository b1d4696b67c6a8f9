//! The core driven by a deterministic harness: simulated time, an in-memory
//! store, and commits applied exactly as the network shell applies them.

use std::time::Duration;

use bytes::Bytes;
use ed25519_dalek::{Signer, SigningKey};
use hearth_proto::relay::{self as pb, ErrorCode, request::Kind as Req, response::Kind as Resp};
use hearth_protocol::frame::FrameError;

use super::*;
use crate::ids::ClientMessageId;
use crate::store::memory::MemoryStore;
use crate::store::{BodyRef, MailboxStore};

const T0: Millis = 1_700_000_000_000;

struct Harness {
    core: RelayCore,
    store: MemoryStore,
    config: CoreConfig,
    now: Millis,
    next_challenge: u8,
    /// Every load the core asked for: (mailboxes, send record).
    loads: Vec<(Vec<MailboxId>, Option<ClientMessageId>)>,
}

/// A client's view of one connection.
#[derive(Clone, Copy)]
struct Client {
    conn: ConnId,
    challenge: [u8; 32],
    exporter: [u8; 32],
}

struct Owner {
    key: SigningKey,
    mailbox: MailboxId,
    token: Vec<u8>,
}

impl Owner {
    fn new(n: u8) -> Self {
        Self {
            key: SigningKey::from_bytes(&[n; 32]),
            mailbox: MailboxId([n; 32]),
            token: vec![n, 0xAA, n],
        }
    }

    fn proof(&self, client: &Client) -> Bytes {
        let message = auth_message(&client.challenge, &client.exporter);
        self.key.sign(&message).to_bytes().to_vec().into()
    }
}

fn request(kind: Req) -> pb::Request {
    pb::Request {
        id: 0,
        version: PROTOCOL_VERSION,
        kind: Some(kind),
    }
}

/// Each owner as a recipient with its own token and a 48-byte header of
/// `header` bytes.
fn recipients_of(to: &[&Owner], header: u8) -> Vec<pb::Recipient> {
    to.iter()
        .map(|owner| pb::Recipient {
            mailbox_id: owner.mailbox.0.to_vec().into(),
            send_token: owner.token.clone().into(),
            sealed_header: vec![header; 48].into(),
        })
        .collect()
}

/// A first attempt at sending `body` to `owner` alone, with header `h`.
fn one_to_one(owner: &Owner, id: u8, body: &'static [u8]) -> pb::Send {
    pb::Send {
        client_message_id: vec![id; 16].into(),
        body: Bytes::from_static(body),
        recipients: vec![pb::Recipient {
            mailbox_id: owner.mailbox.0.to_vec().into(),
            send_token: owner.token.clone().into(),
            sealed_header: Bytes::from_static(b"h"),
        }],
        retry: false,
    }
}

fn code_of(response: &pb::Response) -> Option<ErrorCode> {
    match &response.kind {
        Some(Resp::Error(e)) => Some(e.code()),
        _ => None,
    }
}

fn open_config() -> CoreConfig {
    CoreConfig {
        registration: RegistrationMode::Open,
        ..CoreConfig::default()
    }
}

impl Harness {
    fn new(config: CoreConfig) -> Self {
        let core = RelayCore::new(config.clone(), Snapshot::default());
        Self {
            core,
            store: MemoryStore::default(),
            config,
            now: T0,
            next_challenge: 0,
            loads: Vec::new(),
        }
    }

    /// Rebuilds the core from the store, as a relay restart does.
    fn restart(&mut self) {
        let snapshot = self.store.load().unwrap();
        self.core = RelayCore::new(self.config.clone(), snapshot);
    }

    fn advance(&mut self, by: Duration) {
        self.now += by.as_millis() as u64;
    }

    fn connect(&mut self) -> Client {
        self.next_challenge += 1;
        let challenge = [self.next_challenge; 32];
        let exporter = [self.next_challenge ^ 0xFF; 32];
        let conn = self.core.handle_connect(challenge, exporter, self.now);
        Client {
            conn,
            challenge,
            exporter,
        }
    }

    /// Runs one request through the core and, like the shell, commits what
    /// it asks for before answering.
    fn call(&mut self, client: &Client, kind: Req) -> pb::Response {
        let outcome = self
            .core
            .handle_request(client.conn, request(kind), self.now);
        self.run(client.conn, outcome)
    }

    /// Like the shell: loads what the core asks for (committing any expired
    /// envelopes it drops), runs the request again, then finishes it.
    fn run(&mut self, conn: ConnId, outcome: Outcome) -> pb::Response {
        let mut outcome = outcome;
        loop {
            let Outcome::Load {
                mailboxes,
                send_record,
                request,
            } = outcome
            else {
                return self.finish(outcome);
            };
            let loaded = self.store.load_needed(&mailboxes, send_record).unwrap();
            self.loads.push((mailboxes, send_record));
            assert!(self.loads.len() < 1000, "a request keeps asking for loads");
            if let Some(commit) = self.core.handle_loaded(loaded, self.now) {
                self.finish(Outcome::Commit(commit));
            }
            outcome = self.core.handle_request(conn, request, self.now);
        }
    }

    fn finish(&mut self, outcome: Outcome) -> pb::Response {
        match outcome {
            Outcome::Load { .. } => panic!("loads go through Harness::run"),
            Outcome::Reply(response) => response,
            Outcome::Commit(commit) => {
                let response = match &commit.reply {
                    Reply::Ready(response) => response.clone(),
                    Reply::Prekeys(plan) => self.read_prekeys(plan),
                };
                self.store
                    .commit(std::slice::from_ref(&commit.batch))
                    .unwrap();
                self.core.handle_committed(commit.ticket);
                response
            }
        }
    }

    fn read_prekeys(&self, plan: &PrekeyPlan) -> pb::Response {
        let store = &self.store;
        let signed = store.read_signed_bundle(&plan.mailbox).unwrap();
        let one_time = plan.one_time.map(|i| {
            store
                .read_prekey(&plan.mailbox, PrekeyKind::OneTimeX25519, i)
                .unwrap()
        });
        let pq = match plan.one_time_pq {
            Some(i) => store
                .read_prekey(&plan.mailbox, PrekeyKind::OneTimePq, i)
                .unwrap(),
            None => store.read_last_resort(&plan.mailbox).unwrap(),
        };
        plan.response(signed, one_time.flatten(), pq)
    }

    fn register(&mut self, client: &Client, owner: &Owner, token: &str) -> pb::Response {
        let register = pb::Register {
            mailbox_id: owner.mailbox.0.to_vec().into(),
            mailbox_key: owner.key.verifying_key().to_bytes().to_vec().into(),
            signature: owner.proof(client),
            registration_token: token.into(),
        };
        self.call(client, Req::Register(register))
    }

    /// Registers `owner` on a new connection and allows its send token.
    fn owner_online(&mut self, owner: &Owner) -> Client {
        let client = self.connect();
        let r = self.register(&client, owner, "");
        assert!(matches!(r.kind, Some(Resp::Registered(_))), "{r:?}");
        let add = pb::AddSendToken {
            mailbox_id: owner.mailbox.0.to_vec().into(),
            token_hash: TokenHash::of(&owner.token).0.to_vec().into(),
        };
        assert!(matches!(
            self.call(&client, Req::AddSendToken(add)).kind,
            Some(Resp::Done(_))
        ));
        client
    }

    fn authenticate(&mut self, client: &Client, owner: &Owner) -> pb::Response {
        let auth = pb::Authenticate {
            mailbox_id: owner.mailbox.0.to_vec().into(),
            signature: owner.proof(client),
        };
        self.call(client, Req::Authenticate(auth))
    }

    fn send(
        &mut self,
        client: &Client,
        id: u8,
        body: &[u8],
        to: &[(&Owner, &[u8])],
    ) -> Vec<ErrorCode> {
        let recipients = to
            .iter()
            .map(|(owner, token)| pb::Recipient {
                mailbox_id: owner.mailbox.0.to_vec().into(),
                send_token: token.to_vec().into(),
                sealed_header: vec![id; 48].into(),
            })
            .collect();
        let send = pb::Send {
            client_message_id: vec![id; 16].into(),
            body: body.to_vec().into(),
            recipients,
            retry: false,
        };
        self.send_request(client, send)
    }

    /// Sends `send` as given; the per-recipient results.
    fn send_request(&mut self, client: &Client, send: pb::Send) -> Vec<ErrorCode> {
        match self.call(client, Req::Send(send)).kind {
            Some(Resp::SendResult(r)) => r.results.iter().map(|r| r.code()).collect(),
            other => panic!("unexpected {other:?}"),
        }
    }

    fn ack(&mut self, client: &Client, owner: &Owner, seqs: &[u64]) -> pb::Response {
        let ack = pb::Ack {
            mailbox_id: owner.mailbox.0.to_vec().into(),
            seqs: seqs.to_vec(),
            through: None,
        };
        self.call(client, Req::Ack(ack))
    }

    /// A cumulative ack: everything in flight on `client` up to `through`.
    fn ack_through(&mut self, client: &Client, owner: &Owner, through: u64) -> pb::Response {
        let ack = pb::Ack {
            mailbox_id: owner.mailbox.0.to_vec().into(),
            seqs: Vec::new(),
            through: Some(through),
        };
        self.call(client, Req::Ack(ack))
    }

    /// Drains every delivery the core has for `client`: (seq, body id).
    fn deliveries(&mut self, client: &Client) -> Vec<u64> {
        let mut seqs = Vec::new();
        while let Some(plan) = self.core.poll_delivery(client.conn) {
            seqs.extend(plan.envelopes.iter().map(|(seq, _)| *seq));
        }
        seqs
    }
}

const OK: ErrorCode = ErrorCode::Unspecified;

#[test]
fn authentication_is_bound_to_the_connection() {
    let mut h = Harness::new(open_config());
    let alice = Owner::new(1);
    let first = h.owner_online(&alice);
    let second = h.connect();

    // A proof made for the first connection does not verify on the second.
    let replayed = pb::Authenticate {
        mailbox_id: alice.mailbox.0.to_vec().into(),
        signature: alice.proof(&first),
    };
    let r = h.call(&second, Req::Authenticate(replayed));
    assert_eq!(code_of(&r), Some(ErrorCode::Unauthorized));

    // Someone else's key does not verify either.
    let mallory = Owner {
        key: SigningKey::from_bytes(&[9; 32]),
        ..Owner::new(1)
    };
    assert_eq!(
        code_of(&h.authenticate(&second, &mallory)),
        Some(ErrorCode::Unauthorized)
    );
    assert_eq!(
        code_of(&h.authenticate(&second, &Owner::new(7))),
        Some(ErrorCode::UnknownMailbox)
    );

    assert!(matches!(
        h.authenticate(&second, &alice).kind,
        Some(Resp::Authenticated(_))
    ));
}

#[test]
fn owner_only_requests_need_authentication() {
    let mut h = Harness::new(open_config());
    let alice = Owner::new(1);
    h.owner_online(&alice);
    let stranger = h.connect();
    assert_eq!(
        code_of(&h.ack(&stranger, &alice, &[0])),
        Some(ErrorCode::Unauthorized)
    );
    let add = pb::AddSendToken {
        mailbox_id: alice.mailbox.0.to_vec().into(),
        token_hash: vec![0; 32].into(),
    };
    assert_eq!(
        code_of(&h.call(&stranger, Req::AddSendToken(add))),
        Some(ErrorCode::Unauthorized)
    );
    let counts = pb::PrekeyCounts {
        mailbox_id: alice.mailbox.0.to_vec().into(),
    };
    assert_eq!(
        code_of(&h.call(&stranger, Req::PrekeyCounts(counts))),
        Some(ErrorCode::Unauthorized)
    );
}

#[test]
fn private_relay_registration_needs_a_valid_token() {
    let mut h = Harness::new(CoreConfig::default());
    let hash = TokenHash::of(b"invite-1");
    let expiring = TokenHash::of(b"invite-2");
    h.core.handle_registration_tokens(vec![
        RegistrationToken {
            hash,
            uses: 1,
            expires_at: None,
        },
        RegistrationToken {
            hash: expiring,
            uses: 5,
            expires_at: Some(T0 + 1_000),
        },
    ]);
    let c = h.connect();
    let (a, b, d) = (Owner::new(1), Owner::new(2), Owner::new(3));
    assert_eq!(
        code_of(&h.register(&c, &a, "")),
        Some(ErrorCode::RegistrationRequired)
    );
    assert_eq!(
        code_of(&h.register(&c, &a, "guess")),
        Some(ErrorCode::Unauthorized)
    );
    assert!(matches!(
        h.register(&c, &a, "invite-1").kind,
        Some(Resp::Registered(_))
    ));
    // Retrying the same registration is fine and uses nothing.
    assert!(matches!(
        h.register(&c, &a, "invite-1").kind,
        Some(Resp::Registered(_))
    ));
    // The single use is spent, also after a restart.
    h.restart();
    h.core.handle_registration_tokens(vec![RegistrationToken {
        hash,
        uses: 1,
        expires_at: None,
    }]);
    let c = h.connect();
    assert_eq!(
        code_of(&h.register(&c, &b, "invite-1")),
        Some(ErrorCode::Unauthorized)
    );
    // An expired token is refused.
    h.core.handle_registration_tokens(vec![RegistrationToken {
        hash: expiring,
        uses: 5,
        expires_at: Some(T0 + 1_000),
    }]);
    h.advance(Duration::from_secs(2));
    assert_eq!(
        code_of(&h.register(&c, &d, "invite-2")),
        Some(ErrorCode::Unauthorized)
    );
    assert_eq!(h.core.stats().mailboxes, 1);
}

#[test]
fn a_taken_mailbox_id_is_refused() {
    let mut h = Harness::new(open_config());
    let alice = Owner::new(1);
    h.owner_online(&alice);
    let thief = Owner {
        key: SigningKey::from_bytes(&[8; 32]),
        ..Owner::new(1)
    };
    let c = h.connect();
    assert_eq!(
        code_of(&h.register(&c, &thief, "")),
        Some(ErrorCode::MailboxExists)
    );
}

#[test]
fn wrong_or_revoked_send_tokens_store_nothing() {
    let mut h = Harness::new(open_config());
    let alice = Owner::new(1);
    let owner = h.owner_online(&alice);
    let sender = h.connect();
    assert_eq!(
        h.send(&sender, 1, b"hi", &[(&alice, b"wrong")]),
        [ErrorCode::Unauthorized]
    );
    assert_eq!(h.store.body_count(), 0);

    let revoke = pb::RevokeSendToken {
        mailbox_id: alice.mailbox.0.to_vec().into(),
        token_hash: TokenHash::of(&alice.token).0.to_vec().into(),
    };
    assert!(matches!(
        h.call(&owner, Req::RevokeSendToken(revoke)).kind,
        Some(Resp::Done(_))
    ));
    assert_eq!(
        h.send(&sender, 2, b"hi", &[(&alice, &alice.token)]),
        [ErrorCode::Unauthorized]
    );
    h.restart();
    let sender = h.connect();
    assert_eq!(
        h.send(&sender, 3, b"hi", &[(&alice, &alice.token)]),
        [ErrorCode::Unauthorized]
    );
    assert_eq!((h.store.body_count(), h.core.stats().envelopes), (0, 0));
}

#[test]
fn a_circle_send_stores_one_body_for_all_recipients() {
    let mut h = Harness::new(open_config());
    let members: Vec<Owner> = (1..=30).map(Owner::new).collect();
    let clients: Vec<Client> = members.iter().map(|m| h.owner_online(m)).collect();
    let sender = h.connect();
    let to: Vec<(&Owner, &[u8])> = members.iter().map(|m| (m, &m.token[..])).collect();
    let results = h.send(&sender, 1, &[7; 1000], &to);
    assert!(results.iter().all(|c| *c == OK));
    assert_eq!(h.store.body_count(), 1);
    assert_eq!(
        h.store.commits(),
        30 * 2 + 1,
        "registrations, tokens, one send"
    );
    for (member, client) in members.iter().zip(&clients) {
        assert_eq!(h.deliveries(client), [0]);
        h.ack(client, member, &[0]);
    }
    assert_eq!(h.store.body_count(), 0, "the body goes with the last ack");
}

#[test]
fn per_recipient_failures_do_not_block_the_others() {
    let mut h = Harness::new(open_config());
    let (a, b) = (Owner::new(1), Owner::new(2));
    h.owner_online(&a);
    h.owner_online(&b);
    let sender = h.connect();
    let nobody = Owner::new(3);
    let results = h.send(
        &sender,
        1,
        b"x",
        &[
            (&a, &a.token),
            (&b, b"bad"),
            (&nobody, b"t"),
            (&a, &a.token),
        ],
    );
    assert_eq!(
        results,
        [
            OK,
            ErrorCode::Unauthorized,
            ErrorCode::UnknownMailbox,
            ErrorCode::BadRequest
        ]
    );
    assert_eq!(h.core.stats().envelopes, 1);
}

#[test]
fn a_retried_send_is_stored_once_even_across_restarts() {
    let mut h = Harness::new(open_config());
    let alice = Owner::new(1);
    let owner = h.owner_online(&alice);
    let sender = h.connect();
    assert_eq!(h.send(&sender, 1, b"x", &[(&alice, &alice.token)]), [OK]);
    assert_eq!(h.send(&sender, 1, b"x", &[(&alice, &alice.token)]), [OK]);
    h.restart();
    let sender = h.connect();
    // After a restart the client marks its resend as a retry.
    let retry = pb::Send {
        client_message_id: vec![1; 16].into(),
        body: Bytes::from_static(b"x"),
        recipients: vec![pb::Recipient {
            mailbox_id: alice.mailbox.0.to_vec().into(),
            send_token: alice.token.clone().into(),
            sealed_header: vec![1; 48].into(),
        }],
        retry: true,
    };
    let r = h.call(&sender, Req::Send(retry));
    assert!(matches!(r.kind, Some(Resp::SendResult(_))), "{r:?}");
    assert_eq!(h.core.stats().envelopes, 1);
    assert_eq!(h.store.envelope_count(), 1);
    let _ = owner;
    // The record is forgotten after its TTL (within one expiry bucket),
    // with the expiry sweep.
    let bucket = h.config.send_record_ttl / BUCKETS_PER_WINDOW as u32;
    h.advance(h.config.send_record_ttl + bucket);
    let commit = h.core.poll_expired(h.now).expect("expired records");
    h.finish(Outcome::Commit(commit));
    assert_eq!(h.store.send_record_count(), 0);
}

#[test]
fn full_mailboxes_say_so_and_recover_after_acks() {
    let config = CoreConfig {
        mailbox_max_envelopes: 2,
        mailbox_max_bytes: 10_000,
        ..open_config()
    };
    let mut h = Harness::new(config);
    let alice = Owner::new(1);
    let owner = h.owner_online(&alice);
    let sender = h.connect();
    assert_eq!(h.send(&sender, 1, b"x", &[(&alice, &alice.token)]), [OK]);
    assert_eq!(h.send(&sender, 2, b"x", &[(&alice, &alice.token)]), [OK]);
    assert_eq!(
        h.send(&sender, 3, b"x", &[(&alice, &alice.token)]),
        [ErrorCode::MailboxFull]
    );
    h.deliveries(&owner);
    h.ack(&owner, &alice, &[0, 1]);
    assert_eq!(h.send(&sender, 4, b"x", &[(&alice, &alice.token)]), [OK]);
    // The byte quota counts the body plus the sealed header.
    assert_eq!(
        h.send(&sender, 5, &[0; 9_960], &[(&alice, &alice.token)]),
        [ErrorCode::MailboxFull]
    );
    assert_eq!(
        h.send(&sender, 6, &[0; 9_000], &[(&alice, &alice.token)]),
        [OK]
    );
}

#[test]
fn size_and_shape_limits_are_typed_errors() {
    let mut h = Harness::new(open_config());
    let alice = Owner::new(1);
    h.owner_online(&alice);
    let c = h.connect();
    let recipient = pb::Recipient {
        mailbox_id: alice.mailbox.0.to_vec().into(),
        send_token: alice.token.clone().into(),
        sealed_header: Bytes::new(),
    };
    let send = |body: usize, header: usize, recipients: usize| pb::Send {
        client_message_id: vec![1; 16].into(),
        body: vec![0; body].into(),
        recipients: vec![
            pb::Recipient {
                sealed_header: vec![0; header].into(),
                ..recipient.clone()
            };
            recipients
        ],
        retry: false,
    };
    let cases = [
        (send(64 * 1024 + 1, 0, 1), ErrorCode::EnvelopeTooLarge),
        (send(1, 1025, 1), ErrorCode::EnvelopeTooLarge),
        (send(1, 0, 0), ErrorCode::BadRequest),
        (send(1, 0, 1001), ErrorCode::BadRequest),
        (
            pb::Send {
                retry: false,
                client_message_id: vec![1; 3].into(),
                ..send(1, 0, 1)
            },
            ErrorCode::BadRequest,
        ),
    ];
    for (s, want) in cases {
        assert_eq!(code_of(&h.call(&c, Req::Send(s))), Some(want));
    }
    let old = pb::Request {
        id: 0,
        version: 0,
        kind: Some(Req::GetChallenge(pb::GetChallenge {})),
    };
    let outcome = h.core.handle_request(c.conn, old, h.now);
    let r = h.finish(outcome);
    assert_eq!(code_of(&r), Some(ErrorCode::UnsupportedVersion));
    let unknown = pb::Request {
        id: 0,
        version: PROTOCOL_VERSION,
        kind: None,
    };
    let outcome = h.core.handle_request(c.conn, unknown, h.now);
    let r = h.finish(outcome);
    assert_eq!(code_of(&r), Some(ErrorCode::BadRequest));
    assert_eq!(h.core.stats().envelopes, 0);
}

#[test]
fn repeated_bad_frames_close_the_connection() {
    let mut h = Harness::new(open_config());
    let c = h.connect();
    let too_large = FrameError::TooLarge {
        declared: 1 << 20,
        limit: 1 << 18,
    };
    let first = h.core.handle_bad_frame(c.conn, &too_large);
    assert_eq!(code_of(&first.response), Some(ErrorCode::FrameTooLarge));
    assert!(!first.close);
    for _ in 1..16 {
        assert!(
            !h.core
                .handle_bad_frame(c.conn, &FrameError::BadMessage)
                .close
        );
    }
    let last = h.core.handle_bad_frame(c.conn, &FrameError::BadMessage);
    assert_eq!(code_of(&last.response), Some(ErrorCode::BadFrame));
    assert!(last.close);
}

#[test]
fn request_rate_is_limited_per_connection() {
    let config = CoreConfig {
        rate_limit: RateLimit {
            per_second: 10.0,
            burst: 5.0,
        },
        ..open_config()
    };
    let mut h = Harness::new(config);
    let (c, other) = (h.connect(), h.connect());
    let challenge = || Req::GetChallenge(pb::GetChallenge {});
    for _ in 0..5 {
        assert_eq!(code_of(&h.call(&c, challenge())), None);
    }
    assert_eq!(
        code_of(&h.call(&c, challenge())),
        Some(ErrorCode::RateLimited)
    );
    assert_eq!(
        code_of(&h.call(&other, challenge())),
        None,
        "other connections are unaffected"
    );
    h.advance(Duration::from_millis(100));
    assert_eq!(code_of(&h.call(&c, challenge())), None);
}

#[test]
fn envelopes_expire_after_the_ttl() {
    let mut h = Harness::new(open_config());
    let alice = Owner::new(1);
    h.owner_online(&alice);
    let sender = h.connect();
    h.send(&sender, 1, b"old", &[(&alice, &alice.token)]);
    h.advance(Duration::from_secs(29 * 24 * 3600));
    h.send(&sender, 2, b"new", &[(&alice, &alice.token)]);
    let sweep = h.core.poll_expired(h.now);
    assert!(sweep.is_none_or(|c| {
        !c.batch
            .mutations
            .iter()
            .any(|m| matches!(m, Mutation::DeleteEnvelope(..)))
    }));
    h.advance(Duration::from_secs(2 * 24 * 3600));
    let commit = h
        .core
        .poll_expired(h.now)
        .expect("the old envelope expired");
    h.finish(Outcome::Commit(commit));
    assert_eq!(h.core.stats().envelopes, 1);
    assert_eq!(h.store.envelope_count(), 1);
    let c = h.connect();
    h.authenticate(&c, &alice);
    assert_eq!(h.deliveries(&c), [1]);
}

#[test]
fn the_delivery_window_bounds_unacknowledged_envelopes() {
    let config = CoreConfig {
        delivery_window: 3,
        delivery_batch: 2,
        ..open_config()
    };
    let mut h = Harness::new(config);
    let alice = Owner::new(1);
    let owner = h.owner_online(&alice);
    let sender = h.connect();
    for id in 1..=5 {
        h.send(&sender, id, b"x", &[(&alice, &alice.token)]);
    }
    let first = h.core.poll_delivery(owner.conn).unwrap();
    assert_eq!(
        first.envelopes.len(),
        2,
        "batches hold at most delivery_batch"
    );
    assert_eq!(h.deliveries(&owner), [2], "then the window of 3 is full");
    h.ack(&owner, &alice, &[0, 1]);
    assert_eq!(h.deliveries(&owner), [3, 4]);
}

mod connections;
mod delivery;
mod lazy;
mod prekeys;
mod send_records;
