//! The relay's deterministic state machine.
//!
//! `RelayCore` holds every piece of relay logic: mailboxes, authentication,
//! send tokens, quotas, rate limits, expiry, idempotent retries, the prekey
//! directory and delivery windows. It does no I/O and reads no clock: the
//! shell (`net`) passes time in and carries out what the core returns.
//!
//! Call order, per connection:
//! 1. [`RelayCore::handle_connect`] with the connection's challenge and its
//!    TLS exporter secret;
//! 2. [`RelayCore::handle_request`] for each decoded request (or
//!    [`RelayCore::handle_bad_frame`] for one that did not decode). An
//!    [`Outcome::Commit`] must be committed by the store *in the order the
//!    core returned it*, then reported with [`RelayCore::handle_committed`],
//!    and only then answered. An [`Outcome::Load`] asks the shell to read
//!    what it names from the store, hand it to [`RelayCore::handle_loaded`]
//!    and run the request again;
//! 3. after [`RelayCore::handle_committed`] returns a connection (or after
//!    authenticating), drain [`RelayCore::poll_delivery`] for it;
//! 4. [`RelayCore::handle_disconnect`] when it closes.
//!
//! Periodically, [`RelayCore::poll_expired`] yields expired envelopes and
//! send records to delete. At [`RelayCore::poll_timeout`] of a connection,
//! [`RelayCore::handle_timeout`] says whether to close it (a connection that
//! neither authenticated nor did anything useful in time).
//!
//! State changes become visible in two steps: the core reserves them at once
//! (so quotas and sequence numbers are exact) but delivers an envelope or
//! hands out a prekey only after the batch that stored it is durable.
//!
//! Lazy loading: the core starts from mailboxes, tokens and prekey presence
//! only. A mailbox's envelope index is loaded when the core first needs it:
//! its owner authenticates (or registers it again), or a send with a valid
//! token is addressed to it. Acks and expiry only touch loaded mailboxes
//! (an owner's mailbox is loaded before it subscribes). The expiry sweep
//! covers loaded mailboxes; an unloaded mailbox's expired envelopes are
//! deleted when it loads. Loaded mailboxes stay loaded.

mod config;
mod delivery;
mod mailbox;
mod outcome;
mod prekeys;
mod rate;
mod request;
mod send;
mod send_records;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap, HashSet};

use ed25519_dalek::{Signature, VerifyingKey};
use hearth_proto::relay::{self as pb, ErrorCode, response::Kind};
use hearth_protocol::frame::FrameError;

pub use config::{CoreConfig, RateLimit, RegistrationMode};
use delivery::Subscription;
use mailbox::{MAX_SEND_TOKENS, Mailbox, SEQ_BLOCK};
pub use outcome::{Commit, DeliveryPlan, Outcome, PrekeyPlan, Reply, Ticket, error, response};
use rate::Bucket;
use request::{Invalid, Request};
pub use request::{MAX_ACK_SEQS, PROTOCOL_VERSION};
pub use send_records::BUCKETS_PER_WINDOW;
use send_records::SendRecords;

use crate::ids::{BodyId, ClientMessageId, ConnId, MailboxId, Millis, PrekeyKind, TokenHash};
use crate::store::{Batch, Loaded, MailboxRecord, Mutation, Snapshot};

/// Domain separation label of the per-connection authentication proof.
pub const AUTH_LABEL: &[u8] = b"Hearth_v1_Auth";

/// Most mailboxes one connection may authenticate as.
pub const MAX_MAILBOXES_PER_CONNECTION: usize = 16;

/// The message a mailbox owner signs to authenticate on one connection:
/// `"Hearth_v1_Auth" ‖ challenge ‖ exporter`. The exporter secret is unique
/// to the TLS session, so a proof can't be replayed on another connection.
pub fn auth_message(challenge: &[u8; 32], exporter: &[u8; 32]) -> [u8; 78] {
    let mut message = [0u8; 78];
    message[..14].copy_from_slice(AUTH_LABEL);
    message[14..46].copy_from_slice(challenge);
    message[46..].copy_from_slice(exporter);
    message
}

/// An operator-issued registration token, as known to the core.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistrationToken {
    /// SHA-256 of the token.
    pub hash: TokenHash,
    /// How many mailboxes it may register.
    pub uses: u32,
    /// When it stops working, if ever.
    pub expires_at: Option<Millis>,
}

/// What to do with a frame that did not decode.
#[derive(Debug)]
pub struct BadFrame {
    /// The error to send on the stream.
    pub response: pb::Response,
    /// The peer keeps misbehaving: close the whole connection.
    pub close: bool,
}

/// Why the core asks the shell to close a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Close {
    /// The QUIC application close code (a relay.proto `ErrorCode`).
    pub code: ErrorCode,
    /// The close reason sent to the peer.
    pub reason: &'static str,
}

/// Counts for logs and benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CoreStats {
    /// Open connections.
    pub connections: usize,
    /// Registered mailboxes.
    pub mailboxes: usize,
    /// Envelopes waiting for acknowledgement in loaded mailboxes (an
    /// unloaded mailbox's stored envelopes are not counted).
    pub envelopes: usize,
    /// Distinct shared bodies the loaded mailboxes point at.
    pub bodies: usize,
}

/// One connection's state.
#[derive(Debug)]
struct Conn {
    challenge: [u8; 32],
    exporter: [u8; 32],
    rate: Bucket,
    bad_frames: u32,
    subscriptions: BTreeMap<MailboxId, Subscription>,
    in_flight: usize,
    in_flight_bytes: u64,
    /// When the connection opened or last made a useful request.
    useful_at: Millis,
    /// Requests that paid their rate token and were handed back for a load:
    /// running them again costs no second token.
    prepaid: u32,
}

/// Effects that apply once a batch is durable.
#[derive(Debug, Default)]
struct Pending {
    envelopes: Vec<(MailboxId, u64)>,
    prekeys: Vec<(MailboxId, PrekeyKind, u64)>,
    signed_bundles: Vec<MailboxId>,
    last_resorts: Vec<MailboxId>,
    wake: Vec<ConnId>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.envelopes.is_empty()
            && self.prekeys.is_empty()
            && self.signed_bundles.is_empty()
            && self.last_resorts.is_empty()
            && self.wake.is_empty()
    }
}

/// The relay's deterministic state machine. See the module documentation
/// for the call order.
#[derive(Debug)]
pub struct RelayCore {
    config: CoreConfig,
    mailboxes: HashMap<MailboxId, Mailbox>,
    body_refs: HashMap<BodyId, u32>,
    next_body: u64,
    send_records: SendRecords,
    registration_tokens: HashMap<TokenHash, RegistrationToken>,
    registration_uses: HashMap<TokenHash, u32>,
    conns: HashMap<ConnId, Conn>,
    next_conn: u64,
    next_ticket: u64,
    pending: HashMap<Ticket, Pending>,
    /// Marked retries whose send record the store did not hold: their next
    /// run does not ask for the point read again.
    looked_up: HashSet<ClientMessageId>,
}

/// Most entries of [`RelayCore`]'s `looked_up` (cleared beyond: it only
/// saves a point read).
const MAX_LOOKED_UP: usize = 4096;

impl RelayCore {
    /// Rebuilds the core from what the store holds. Everything in the
    /// snapshot is durable. Envelope indexes load later, when needed.
    pub fn new(config: CoreConfig, snapshot: Snapshot) -> Self {
        let mut mailboxes: HashMap<MailboxId, Mailbox> = snapshot
            .mailboxes
            .into_iter()
            .map(|(id, record)| (id, Mailbox::new(record)))
            .collect();
        for (id, hash) in snapshot.send_tokens {
            if let Some(m) = mailboxes.get_mut(&id) {
                m.tokens.insert(hash);
            }
        }
        for id in snapshot.signed_bundles {
            if let Some(m) = mailboxes.get_mut(&id) {
                m.prekeys.signed_bundle = Some(true);
            }
        }
        for id in snapshot.last_resorts {
            if let Some(m) = mailboxes.get_mut(&id) {
                m.prekeys.last_resort = Some(true);
            }
        }
        for (id, kind, index) in snapshot.prekeys {
            if let Some(m) = mailboxes.get_mut(&id) {
                m.prekeys.queue_mut(kind).push(index, true);
                m.prekeys.next_index = m.prekeys.next_index.max(index + 1);
            }
        }
        Self {
            mailboxes,
            body_refs: HashMap::new(),
            next_body: snapshot.next_body,
            send_records: SendRecords::new(
                config.send_records_per_mailbox,
                Millis::try_from(config.send_record_ttl.as_millis()).unwrap_or(Millis::MAX),
                Vec::new(),
            ),
            registration_tokens: HashMap::new(),
            registration_uses: snapshot.registration_uses.into_iter().collect(),
            conns: HashMap::new(),
            next_conn: 0,
            next_ticket: 0,
            pending: HashMap::new(),
            looked_up: HashSet::new(),
            config,
        }
    }

    /// The limits in force.
    pub fn config(&self) -> &CoreConfig {
        &self.config
    }

    /// Counts for logs and benchmarks.
    pub fn stats(&self) -> CoreStats {
        CoreStats {
            connections: self.conns.len(),
            mailboxes: self.mailboxes.len(),
            envelopes: self.mailboxes.values().map(|m| m.waiting.len()).sum(),
            bodies: self.body_refs.len(),
        }
    }

    /// A connection opened. `challenge` is fresh randomness; `exporter` is
    /// the connection's TLS keying material (label `EXPORTER-hearth-auth`).
    pub fn handle_connect(
        &mut self,
        challenge: [u8; 32],
        exporter: [u8; 32],
        now: Millis,
    ) -> ConnId {
        let id = ConnId(self.next_conn);
        self.next_conn += 1;
        self.conns.insert(
            id,
            Conn {
                challenge,
                exporter,
                rate: Bucket::full(self.config.rate_limit, now),
                bad_frames: 0,
                subscriptions: BTreeMap::new(),
                in_flight: 0,
                in_flight_bytes: 0,
                useful_at: now,
                prepaid: 0,
            },
        );
        id
    }

    /// A connection closed: its unacknowledged deliveries stay waiting and
    /// are delivered again on the next connection.
    pub fn handle_disconnect(&mut self, conn: ConnId) {
        let Some(state) = self.conns.remove(&conn) else {
            return;
        };
        for mailbox in state.subscriptions.keys() {
            if let Some(m) = self.mailboxes.get_mut(mailbox) {
                m.subscribers.retain(|c| *c != conn);
            }
        }
    }

    /// When `conn` must be checked with [`RelayCore::handle_timeout`]: the
    /// end of its time to authenticate or make a useful request. `None` once
    /// it authenticated as a mailbox owner (or when it is not known).
    pub fn poll_timeout(&self, conn: ConnId) -> Option<Millis> {
        let state = self.conns.get(&conn)?;
        if !state.subscriptions.is_empty() {
            return None;
        }
        let timeout = Millis::try_from(self.config.auth_timeout.as_millis()).unwrap_or(Millis::MAX);
        Some(state.useful_at.saturating_add(timeout))
    }

    /// Time passed for `conn`: whether to close it now, because it neither
    /// authenticated nor made a useful request (a stored send, a prekey
    /// fetch) for [`CoreConfig::auth_timeout`].
    pub fn handle_timeout(&self, conn: ConnId, now: Millis) -> Option<Close> {
        let due = self.poll_timeout(conn)?;
        (now >= due).then_some(Close {
            code: ErrorCode::Unauthorized,
            reason: "not authenticated in time: authenticate or send within the time limit",
        })
    }

    /// Replaces the known registration tokens (the shell reads them from the
    /// operator's token folder when it changed).
    pub fn handle_registration_tokens(&mut self, tokens: Vec<RegistrationToken>) {
        self.registration_tokens = tokens.into_iter().map(|t| (t.hash, t)).collect();
    }

    /// Whether `request` registers a mailbox (so the shell should refresh
    /// the registration tokens first).
    pub fn is_registration(request: &pb::Request) -> bool {
        matches!(request.kind, Some(pb::request::Kind::Register(_)))
    }

    /// A frame on one of `conn`'s streams did not decode.
    pub fn handle_bad_frame(&mut self, conn: ConnId, error: &FrameError) -> BadFrame {
        let close = match self.conns.get_mut(&conn) {
            Some(state) => {
                state.bad_frames += 1;
                state.bad_frames > self.config.max_bad_frames
            }
            None => true,
        };
        let code = match error {
            FrameError::TooLarge { .. } => ErrorCode::FrameTooLarge,
            _ => ErrorCode::BadFrame,
        };
        BadFrame {
            response: outcome::error(code, error.to_string()),
            close,
        }
    }

    /// Handles one decoded request from `conn`.
    pub fn handle_request(&mut self, conn: ConnId, request: pb::Request, now: Millis) -> Outcome {
        let Some(state) = self.conns.get_mut(&conn) else {
            return reply_error(ErrorCode::Internal, "connection is not known");
        };
        if state.prepaid > 0 {
            state.prepaid -= 1;
        } else if !state.rate.try_take(self.config.rate_limit, now) {
            return reply_error(ErrorCode::RateLimited, "too many requests; slow down");
        }
        if let Some((mailboxes, send_record)) = self.needs_load(conn, &request) {
            if let Some(state) = self.conns.get_mut(&conn) {
                state.prepaid += 1;
            }
            return Outcome::Load {
                mailboxes,
                send_record,
                request,
            };
        }
        let request = match Request::parse(request, &self.config) {
            Ok(request) => request,
            Err(Invalid { code, message }) => return reply_error(code, message),
        };
        // A sync changes nothing: it must not keep an unauthenticated
        // connection alive.
        let may_be_useful = !matches!(request, Request::Sync);
        let outcome = match request {
            Request::GetChallenge => {
                let challenge = self.conns.get(&conn).map(|c| c.challenge.to_vec());
                let challenge = challenge.unwrap_or_default().into();
                Outcome::Reply(response(Kind::Challenge(pb::Challenge { challenge })))
            }
            // An empty commit: the writer answers it once everything queued
            // before it is durable.
            Request::Sync => self.commit(Batch::default(), Pending::default(), done()),
            Request::Register {
                mailbox,
                key,
                signature,
                token,
            } => self.handle_register(conn, mailbox, key, &signature, token, now),
            Request::Authenticate { mailbox, signature } => {
                self.handle_authenticate(conn, mailbox, &signature)
            }
            Request::Send(send) => {
                self.looked_up.remove(&send.id);
                self.handle_send(send, now)
            }
            Request::Ack {
                mailbox,
                through,
                seqs,
            } => self.handle_ack(conn, mailbox, through, &seqs),
            Request::AddSendToken { mailbox, hash } => self.handle_add_token(conn, mailbox, hash),
            Request::RevokeSendToken { mailbox, hash } => {
                self.handle_revoke_token(conn, mailbox, hash)
            }
            Request::Publish(publish) => self.handle_publish(conn, publish),
            Request::Fetch { mailbox, token } => self.handle_fetch(mailbox, token, now),
            Request::PrekeyCounts { mailbox } => self.handle_prekey_counts(conn, mailbox),
        };
        // A request that changes durable state passed its checks (a send
        // stored, a prekey fetched, a mailbox registered): the connection
        // is of use, so its time to authenticate starts again.
        if may_be_useful
            && matches!(outcome, Outcome::Commit(_))
            && let Some(state) = self.conns.get_mut(&conn)
        {
            state.useful_at = now;
        }
        outcome
    }

    /// The batch of `ticket` is durable: what it stored becomes visible.
    /// Returns the connections that may now have deliveries to poll.
    pub fn handle_committed(&mut self, ticket: Ticket) -> Vec<ConnId> {
        let Some(pending) = self.pending.remove(&ticket) else {
            return Vec::new();
        };
        let mut wake = pending.wake;
        for (id, seq) in pending.envelopes {
            if let Some(m) = self.mailboxes.get_mut(&id) {
                if let Some(w) = m.waiting.get_mut(&seq) {
                    w.durable = true;
                }
                wake.extend(&m.subscribers);
            }
        }
        for (id, kind, index) in pending.prekeys {
            if let Some(m) = self.mailboxes.get_mut(&id) {
                m.prekeys.queue_mut(kind).mark_durable(index);
            }
        }
        for id in pending.signed_bundles {
            if let Some(m) = self.mailboxes.get_mut(&id) {
                m.prekeys.signed_bundle = Some(true);
            }
        }
        for id in pending.last_resorts {
            if let Some(m) = self.mailboxes.get_mut(&id) {
                m.prekeys.last_resort = Some(true);
            }
        }
        wake.sort_unstable();
        wake.dedup();
        wake
    }

    /// What the store returned for an [`Outcome::Load`]. Mailboxes already
    /// loaded ignore it (memory is at least as fresh), and body reference
    /// counts already in memory win over the stored ones. Expired envelopes
    /// of a mailbox are deleted as it loads: commit the returned batch like
    /// any other (nobody waits for its answer).
    pub fn handle_loaded(&mut self, loaded: Loaded, now: Millis) -> Option<Commit> {
        let mut expired = Vec::new();
        for (id, index) in loaded.mailboxes {
            let Some(m) = self.mailboxes.get_mut(&id) else {
                continue;
            };
            if m.loaded {
                continue;
            }
            m.loaded = true;
            for (body, refs) in index.body_refs {
                self.body_refs.entry(body).or_insert(refs);
            }
            for (seq, meta) in index.envelopes {
                m.next_seq = m.next_seq.max(seq.saturating_add(1));
                m.insert_waiting(seq, meta, true);
                if meta.expires_at <= now {
                    expired.push((id, seq));
                }
            }
        }
        match loaded.send_record {
            Some((id, Some(record))) => {
                // Read back from the store: it counts against no mailbox.
                let _ = self.send_records.insert(id, record, Vec::new(), true);
            }
            Some((id, None)) => {
                if self.looked_up.len() >= MAX_LOOKED_UP {
                    self.looked_up.clear();
                }
                self.looked_up.insert(id);
            }
            None => {}
        }
        let mut batch = Batch::default();
        for (mailbox, seq) in expired {
            self.delete_envelope(mailbox, seq, &mut batch);
        }
        if batch.is_empty() {
            return None;
        }
        match self.commit(batch, Pending::default(), done()) {
            Outcome::Commit(commit) => Some(commit),
            _ => None,
        }
    }

    /// What must be loaded before `request` can run: the envelope indexes
    /// of the mailboxes it touches that are not loaded, and for a marked
    /// retry of a send to several recipients that is not in memory, its
    /// stored send record. Checks that need no load come first, so that
    /// nobody makes the relay read a mailbox without being allowed to use it:
    /// a send needs a valid token, an authentication a valid proof.
    fn needs_load(
        &self,
        conn: ConnId,
        request: &pb::Request,
    ) -> Option<(Vec<MailboxId>, Option<ClientMessageId>)> {
        use pb::request::Kind as Req;
        if request.version != PROTOCOL_VERSION {
            return None;
        }
        let unloaded = |bytes: &[u8]| {
            let id = MailboxId::from_slice(bytes)?;
            let m = self.mailboxes.get(&id)?;
            (!m.loaded).then_some((id, m))
        };
        let (mailboxes, send_record) = match request.kind.as_ref()? {
            Req::Send(send) => {
                let mut mailboxes: Vec<MailboxId> = send
                    .recipients
                    .iter()
                    .filter_map(|r| {
                        let (id, m) = unloaded(&r.mailbox_id)?;
                        let token = &r.send_token;
                        let valid = !token.is_empty()
                            && token.len() <= request::MAX_SEND_TOKEN_BYTES
                            && m.tokens.contains(&TokenHash::of(token));
                        valid.then_some(id)
                    })
                    .collect();
                mailboxes.sort_unstable();
                mailboxes.dedup();
                let id = <[u8; 16]>::try_from(&send.client_message_id[..]).ok();
                let record = id.map(ClientMessageId).filter(|id| {
                    send.retry
                        && send.recipients.len() > 1
                        && self.send_records.get(id).is_none()
                        && !self.looked_up.contains(id)
                });
                (mailboxes, record)
            }
            Req::Authenticate(auth) => {
                let (id, m) = unloaded(&auth.mailbox_id)?;
                let signature = Signature::from_slice(&auth.signature).ok()?;
                if !self.verify_auth(conn, &m.record.key, &signature) {
                    return None;
                }
                (vec![id], None)
            }
            Req::Register(register) => {
                let (id, m) = unloaded(&register.mailbox_id)?;
                let signature = Signature::from_slice(&register.signature).ok()?;
                let key = m.record.key;
                if register.mailbox_key[..] != key[..] || !self.verify_auth(conn, &key, &signature)
                {
                    return None;
                }
                (vec![id], None)
            }
            _ => return None,
        };
        (!mailboxes.is_empty() || send_record.is_some()).then_some((mailboxes, send_record))
    }

    /// Wraps a batch and the effects that wait for it into a commit.
    fn commit(&mut self, batch: Batch, pending: Pending, reply: Reply) -> Outcome {
        let ticket = Ticket(self.next_ticket);
        self.next_ticket += 1;
        if !pending.is_empty() {
            self.pending.insert(ticket, pending);
        }
        Outcome::Commit(Commit {
            ticket,
            batch,
            reply,
        })
    }

    /// The mailbox if `conn` is authenticated as its owner.
    fn owned_mailbox(&mut self, conn: ConnId, mailbox: MailboxId) -> Option<&mut Mailbox> {
        let owns = self
            .conns
            .get(&conn)
            .is_some_and(|c| c.subscriptions.contains_key(&mailbox));
        self.mailboxes.get_mut(&mailbox).filter(|_| owns)
    }

    fn verify_auth(&self, conn: ConnId, key: &[u8; 32], signature: &Signature) -> bool {
        let Some(state) = self.conns.get(&conn) else {
            return false;
        };
        let Ok(key) = VerifyingKey::from_bytes(key) else {
            return false;
        };
        key.verify_strict(&auth_message(&state.challenge, &state.exporter), signature)
            .is_ok()
    }

    fn handle_register(
        &mut self,
        conn: ConnId,
        mailbox: MailboxId,
        key: [u8; 32],
        signature: &Signature,
        token: Option<TokenHash>,
        now: Millis,
    ) -> Outcome {
        if !self.verify_auth(conn, &key, signature) {
            return reply_error(
                ErrorCode::Unauthorized,
                "registration proof does not verify",
            );
        }
        if let Some(existing) = self.mailboxes.get(&mailbox) {
            if existing.record.key != key {
                return reply_error(ErrorCode::MailboxExists, "mailbox id is taken");
            }
            // A retried registration of the same key: nothing to write.
            return self.subscribe(conn, mailbox, Kind::Registered(pb::Registered {}));
        }
        // Refuse before anything is written: a registration the connection
        // can't take leaves no mailbox and spends no token.
        if !self.has_room_for(conn, mailbox) {
            return too_many_mailboxes();
        }
        let mut batch = Batch::default();
        if self.config.registration == RegistrationMode::Token {
            let Some(hash) = token else {
                return reply_error(
                    ErrorCode::RegistrationRequired,
                    "this relay is private: registering needs a token from its operator",
                );
            };
            let used = self.registration_uses.get(&hash).copied().unwrap_or(0);
            let valid = self
                .registration_tokens
                .get(&hash)
                .is_some_and(|t| used < t.uses && t.expires_at.is_none_or(|expires| now < expires));
            if !valid {
                return reply_error(
                    ErrorCode::Unauthorized,
                    "registration token is unknown, expired or used up",
                );
            }
            self.registration_uses.insert(hash, used + 1);
            batch.push(Mutation::PutRegistrationUses(hash, used + 1));
        }
        // The first block of sequence numbers is reserved with the mailbox.
        let record = MailboxRecord {
            key,
            created_at: now,
            reserved_seq: SEQ_BLOCK,
        };
        batch.push(Mutation::PutMailbox(mailbox, record.clone()));
        // Nothing is stored for a new mailbox: its (empty) index is loaded.
        let mut fresh = Mailbox::new(record);
        fresh.next_seq = 0;
        fresh.loaded = true;
        self.mailboxes.insert(mailbox, fresh);
        match self.subscribe(conn, mailbox, Kind::Registered(pb::Registered {})) {
            Outcome::Reply(reply) => self.commit(batch, Pending::default(), Reply::Ready(reply)),
            other => other,
        }
    }

    fn handle_authenticate(
        &mut self,
        conn: ConnId,
        mailbox: MailboxId,
        signature: &Signature,
    ) -> Outcome {
        let Some(key) = self.mailboxes.get(&mailbox).map(|m| m.record.key) else {
            return reply_error(ErrorCode::UnknownMailbox, "no such mailbox on this relay");
        };
        if !self.verify_auth(conn, &key, signature) {
            return reply_error(
                ErrorCode::Unauthorized,
                "authentication proof does not verify",
            );
        }
        self.subscribe(conn, mailbox, Kind::Authenticated(pb::Authenticated {}))
    }

    /// Whether `conn` may own `mailbox` too (it already does, or it is under
    /// [`MAX_MAILBOXES_PER_CONNECTION`]).
    fn has_room_for(&self, conn: ConnId, mailbox: MailboxId) -> bool {
        self.conns.get(&conn).is_some_and(|state| {
            state.subscriptions.contains_key(&mailbox)
                || state.subscriptions.len() < MAX_MAILBOXES_PER_CONNECTION
        })
    }

    /// Marks `conn` as the owner of `mailbox` and starts its deliveries from
    /// the oldest waiting envelope.
    fn subscribe(&mut self, conn: ConnId, mailbox: MailboxId, ok: Kind) -> Outcome {
        let Some(state) = self.conns.get_mut(&conn) else {
            return reply_error(ErrorCode::Internal, "connection is not known");
        };
        if !state.subscriptions.contains_key(&mailbox) {
            if state.subscriptions.len() >= MAX_MAILBOXES_PER_CONNECTION {
                return too_many_mailboxes();
            }
            state.subscriptions.insert(mailbox, Subscription::default());
            if let Some(m) = self.mailboxes.get_mut(&mailbox) {
                m.subscribers.push(conn);
            }
        }
        Outcome::Reply(response(ok))
    }

    fn handle_add_token(&mut self, conn: ConnId, mailbox: MailboxId, hash: TokenHash) -> Outcome {
        let Some(m) = self.owned_mailbox(conn, mailbox) else {
            return not_owner();
        };
        if !m.tokens.contains(&hash) && m.tokens.len() >= MAX_SEND_TOKENS {
            return reply_error(ErrorCode::BadRequest, "mailbox holds too many send tokens");
        }
        m.tokens.insert(hash);
        let batch = Batch {
            mutations: vec![Mutation::PutSendToken(mailbox, hash)],
        };
        self.commit(batch, Pending::default(), done())
    }

    fn handle_revoke_token(
        &mut self,
        conn: ConnId,
        mailbox: MailboxId,
        hash: TokenHash,
    ) -> Outcome {
        let Some(m) = self.owned_mailbox(conn, mailbox) else {
            return not_owner();
        };
        m.tokens.remove(&hash);
        let batch = Batch {
            mutations: vec![Mutation::DeleteSendToken(mailbox, hash)],
        };
        self.commit(batch, Pending::default(), done())
    }
}

fn reply_error(code: ErrorCode, message: &'static str) -> Outcome {
    Outcome::Reply(error(code, message))
}

fn too_many_mailboxes() -> Outcome {
    reply_error(
        ErrorCode::BadRequest,
        "too many mailboxes on one connection",
    )
}

fn not_owner() -> Outcome {
    reply_error(
        ErrorCode::Unauthorized,
        "authenticate as the mailbox owner on this connection first",
    )
}

fn done() -> Reply {
    Reply::Ready(response(Kind::Done(pb::Done {})))
}
