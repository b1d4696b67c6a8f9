//! Talking to relays: reconnecting with backoff, receiving deliveries
//! (process durably, then acknowledge), sending the outbox, and keeping
//! prekeys topped up.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hearth_protocol::address::RelayAddress;
use tokio::time::Instant;

use super::connection::is_open;
use super::{Client, commit};
use crate::engine::{Outgoing, Received};
use crate::error::Error;
use crate::events::{ConnectionState, Event};
use crate::messages::FailureReason;
use crate::records::TaskKind;
use crate::relay::{
    ClientError, Delivery, OutgoingRecipient, OutgoingSend, PrekeyUpload, RelayClient,
};

/// What one [`Client::sync`] did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SyncReport {
    /// Every event emitted during the sync, in order (new messages, contacts,
    /// sends, failures, rejections, connection changes).
    pub events: Vec<Event>,
}

impl SyncReport {
    /// The messages received during the sync.
    pub fn messages(&self) -> impl Iterator<Item = &crate::Message> {
        self.events.iter().filter_map(|event| match event {
            Event::Message(message) => Some(message),
            _ => None,
        })
    }
}

impl Client {
    /// Connects to this device's relay (retrying with backoff until `wait`
    /// has passed), publishes prekeys if needed, sends the outbox, and
    /// processes every pending delivery: it returns once `wait` has passed
    /// and no delivery arrived for
    /// [`quiet_period`](super::ClientOptions::quiet_period). With a zero
    /// `wait` it makes one connection attempt and returns as soon as the
    /// mailbox is drained.
    ///
    /// While [`Client::run`] is active it only waits `wait` (the running
    /// loop handles deliveries) and reports the events meanwhile.
    pub async fn sync(&self, wait: Duration) -> Result<SyncReport, Error> {
        let mut events = self.events();
        let deadline = Instant::now() + wait;
        let result = match self.shared.pump.try_lock() {
            Ok(_pump) => self.sync_until(deadline).await,
            Err(_) => {
                tokio::time::sleep_until(deadline).await;
                Ok(())
            }
        };
        let mut report = SyncReport::default();
        while let Some(event) = events.try_recv() {
            report.events.push(event);
        }
        result.map(|()| report)
    }

    async fn sync_until(&self, deadline: Instant) -> Result<(), Error> {
        let quiet = self.shared.options.quiet_period;
        let mut relay = self.connect_until(Some(deadline)).await?;
        self.after_connect(&relay).await;
        let mut last = Instant::now();
        loop {
            let until = deadline.max(last + quiet);
            match tokio::time::timeout_at(until, relay.next_delivery()).await {
                Ok(Some(delivery)) => {
                    self.handle_delivery(&relay, delivery).await?;
                    last = Instant::now();
                }
                Ok(None) => {
                    self.lost(&relay).await;
                    if Instant::now() >= deadline {
                        return Err(Error::RelayUnreachable);
                    }
                    relay = self.connect_until(Some(deadline)).await?;
                    self.after_connect(&relay).await;
                    last = Instant::now();
                }
                Err(_) => break,
            }
        }
        // Anything the app queued meanwhile.
        self.flush().await
    }

    /// Keeps this device online until an error that retrying cannot fix
    /// (e.g. [`Error::FingerprintMismatch`] or a failing store): reconnects
    /// with backoff, processes deliveries as they arrive, and every
    /// [`maintenance_interval`](super::ClientOptions::maintenance_interval)
    /// retries the outbox and checks prekeys. Spawn it for a long-running
    /// app: `tokio::spawn(async move { client.run().await })`.
    pub async fn run(&self) -> Result<(), Error> {
        let _pump = self.shared.pump.lock().await;
        let interval = self.shared.options.maintenance_interval;
        loop {
            let relay = self.connect_until(None).await?;
            self.after_connect(&relay).await;
            let mut maintenance = tokio::time::interval_at(Instant::now() + interval, interval);
            loop {
                tokio::select! {
                    delivery = relay.next_delivery() => match delivery {
                        Some(delivery) => self.handle_delivery(&relay, delivery).await?,
                        None => break,
                    },
                    _ = maintenance.tick() => self.after_connect(&relay).await,
                }
            }
            self.lost(&relay).await;
        }
    }

    /// The authenticated connection to our relay, retrying transient
    /// failures with backoff until `deadline` (forever if `None`).
    async fn connect_until(&self, deadline: Option<Instant>) -> Result<Arc<RelayClient>, Error> {
        let mut attempt = 0u32;
        if !self.shared.connections.own_is_open().await {
            self.emit(Event::ConnectionState(ConnectionState::Connecting));
        }
        loop {
            match self.own_relay().await {
                Ok(relay) => return Ok(relay),
                Err(error) if error.is_transient() => {
                    let delay = {
                        let mut rng = self.rng();
                        self.shared.options.backoff.delay(attempt, &mut *rng)
                    };
                    attempt = attempt.saturating_add(1);
                    if deadline.is_some_and(|deadline| Instant::now() + delay > deadline) {
                        return Err(error);
                    }
                    self.emit(Event::ConnectionState(ConnectionState::Disconnected {
                        retry_in: delay,
                    }));
                    tokio::time::sleep(delay).await;
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// The authenticated connection to our relay, connecting once if needed.
    pub(super) async fn own_relay(&self) -> Result<Arc<RelayClient>, Error> {
        let shared = &self.shared;
        let (relay, fresh) = shared
            .connections
            .own(&shared.relay, shared.mailbox_id, &shared.mailbox_key)
            .await?;
        if fresh {
            self.emit(Event::ConnectionState(ConnectionState::Connected));
        }
        Ok(relay)
    }

    /// A connection to the relay at `address` (our own one if it is ours).
    pub(super) async fn relay_at(&self, address: &RelayAddress) -> Result<Arc<RelayClient>, Error> {
        if *address == self.shared.relay {
            self.own_relay().await
        } else {
            Ok(self.shared.connections.other(address).await?)
        }
    }

    /// Our connection went away.
    async fn lost(&self, relay: &Arc<RelayClient>) {
        self.shared.connections.forget(relay).await;
        self.emit(Event::ConnectionState(ConnectionState::Disconnected {
            retry_in: Duration::ZERO,
        }));
    }

    /// Prekeys, expired invite links and the outbox, whenever a connection
    /// is (re)made and every maintenance round. Failures are logged: the
    /// next round retries.
    async fn after_connect(&self, relay: &RelayClient) {
        if let Err(error) = self.maintain_prekeys(relay).await {
            tracing::warn!(%error, "prekey maintenance failed");
        }
        if let Err(error) = self.expire_invites().await {
            tracing::warn!(%error, "checking invite links failed");
        }
        // Also gives up envelopes held too long.
        if let Err(error) = self.retry_held().await {
            tracing::warn!(%error, "retrying held envelopes failed");
        }
        if let Err(error) = self.flush().await {
            tracing::warn!(%error, "sending the outbox failed");
        }
    }

    /// Processes a delivery envelope by envelope (each committed before the
    /// next), then acknowledges all of it.
    async fn handle_delivery(&self, relay: &RelayClient, delivery: Delivery) -> Result<(), Error> {
        if delivery.mailbox_id != self.shared.mailbox_id {
            return Ok(());
        }
        let mut seqs = Vec::with_capacity(delivery.envelopes.len());
        let mut unblocked = false;
        for envelope in &delivery.envelopes {
            let mut engine = self.shared.engine.lock().await;
            let received = {
                let mut rng = self.rng();
                engine.receive(envelope, &mut *rng, self.now())?
            };
            if let Received::Processed {
                writes,
                events,
                applied,
            } = received
            {
                unblocked |= applied;
                commit(&mut engine, writes).await?;
                drop(engine);
                for event in events {
                    self.emit(event);
                }
            }
            seqs.push(envelope.seq);
        }
        // Held envelopes wait for a key or a roster version: only an
        // applied envelope can bring one (junk that is held or refused
        // costs no retry of everything held).
        if unblocked {
            self.retry_held().await?;
        }
        #[cfg(feature = "test-hooks")]
        exit_before_ack_if_asked();
        // A failed acknowledgement only means a redelivery, which is
        // recognised as already processed.
        let acked = match seqs.last() {
            // Delivered in order on this connection: everything up to the
            // last one is processed.
            Some(&last) => relay.ack_through(self.shared.mailbox_id, last),
            None => Ok(()),
        };
        if let Err(error) = acked {
            tracing::debug!(%error, "acknowledgement failed; the relay will redeliver");
        }
        Ok(())
    }

    // ---- prekeys -----------------------------------------------------------

    async fn maintain_prekeys(&self, relay: &RelayClient) -> Result<(), Error> {
        let counts = relay.prekey_counts(self.shared.mailbox_id).await?;
        let upload = {
            let mut engine = self.shared.engine.lock().await;
            let plan = {
                let mut rng = self.rng();
                engine.maintain_prekeys(counts, &mut *rng, self.now())?
            };
            let Some((writes, upload)) = plan else {
                return Ok(());
            };
            commit(&mut engine, writes).await?;
            upload
        };
        self.publish(upload).await
    }

    /// Publishes prekeys whose private halves are already stored.
    pub(super) async fn publish(&self, upload: PrekeyUpload) -> Result<(), Error> {
        if crate::device::is_empty(&upload) {
            return Ok(());
        }
        let with_bundle = !upload.signed_bundle.is_empty();
        self.own_relay().await?.publish_prekeys(upload).await?;
        if with_bundle {
            let mut engine = self.shared.engine.lock().await;
            let writes = engine.bundle_published();
            commit(&mut engine, writes).await?;
        }
        Ok(())
    }

    // ---- the outbox --------------------------------------------------------

    /// Sends the outbox, logging (not returning) delivery problems.
    pub(super) async fn flush_quietly(&self) {
        if let Err(error) = self.flush().await {
            tracing::debug!(%error, "the outbox stays queued");
        }
    }

    /// Hands every queued envelope to its relay, in order. A recipient
    /// whose envelope is refused for now (mailbox full, rate limited) or a
    /// relay that cannot be reached is skipped for the rest of this round,
    /// so each conversation stays in order.
    pub(super) async fn flush(&self) -> Result<(), Error> {
        let _flush = self.shared.flush.lock().await;
        self.run_tasks().await?;
        let items = self.shared.engine.lock().await.outbox()?;
        let mut held_members = HashSet::new();
        let mut held_relays = HashSet::new();
        for item in items {
            if held_relays.contains(&item.record.relay) {
                continue;
            }
            if item.circle().is_some() {
                let members = circle_recipients(&item);
                if members.iter().any(|m| held_members.contains(m)) {
                    continue;
                }
                match self.send_circle(&item).await? {
                    CircleSent::Done(held) => held_members.extend(held),
                    CircleSent::HoldRelay => {
                        held_members.extend(members);
                        held_relays.insert(item.record.relay.clone());
                    }
                }
                continue;
            }
            let member = item.member()?;
            if held_members.contains(&member) {
                continue;
            }
            match self.send_one(&item).await? {
                Sent::Done => {}
                Sent::HoldMember => {
                    held_members.insert(member);
                }
                Sent::HoldRelay => {
                    held_members.insert(member);
                    held_relays.insert(item.record.relay.clone());
                }
            }
        }
        Ok(())
    }

    /// Whether `item` may have reached its relay before: sent earlier by
    /// this process, or queued before it started. Records it as sent.
    fn is_retry(&self, item: &Outgoing) -> bool {
        let id = &item.record.client_message_id;
        let mut sent = self
            .shared
            .sent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Bounded: forgetting only risks a copy the recipient drops.
        if sent.len() >= MAX_REMEMBERED_SENDS {
            sent.clear();
        }
        let sent_before = !sent.insert(id.clone());
        sent_before || item.record.queued_at_ms < self.shared.started_at_ms
    }

    /// Sends one circle message: one request, one body, every recipient.
    async fn send_circle(&self, item: &Outgoing) -> Result<CircleSent, Error> {
        let Ok(address) = item.record.relay.parse::<RelayAddress>() else {
            let failed: Vec<_> = circle_recipients(item)
                .into_iter()
                .map(|m| (m, FailureReason::UnknownMailbox))
                .collect();
            return self.circle_answered(item, &failed).await;
        };
        let relay = match self.relay_at(&address).await {
            Ok(relay) => relay,
            Err(error) => {
                tracing::debug!(%error, "a circle member's relay is unreachable");
                return Ok(CircleSent::HoldRelay);
            }
        };
        let send = outgoing_send(item, self.is_retry(item))?;
        let members = circle_recipients(item);
        match relay.send(send).await {
            Ok(results) => {
                let failed: Vec<_> = members
                    .iter()
                    .zip(results)
                    .filter_map(|(m, r)| r.err().map(|code| (*m, FailureReason::from_code(code))))
                    .collect();
                self.circle_answered(item, &failed).await
            }
            Err(ClientError::Relay { code, .. }) => {
                let reason = FailureReason::from_code(code);
                if reason.is_retryable() {
                    return Ok(CircleSent::HoldRelay);
                }
                let failed: Vec<_> = members.into_iter().map(|m| (m, reason)).collect();
                self.circle_answered(item, &failed).await
            }
            Err(error) => {
                self.send_failed(&relay, &error).await;
                Ok(CircleSent::HoldRelay)
            }
        }
    }

    async fn circle_answered(
        &self,
        item: &Outgoing,
        failed: &[(crate::MemberId, FailureReason)],
    ) -> Result<CircleSent, Error> {
        let id = item.message_id()?;
        let mut engine = self.shared.engine.lock().await;
        let writes = {
            let mut rng = self.rng();
            engine.circle_sent(item, failed, &mut *rng)?
        };
        commit(&mut engine, writes).await?;
        drop(engine);
        let mut held = Vec::new();
        for (to, reason) in failed {
            let will_retry = reason.is_retryable();
            if will_retry {
                held.push(*to);
            }
            if !(will_retry && item.record.failure_reported) {
                self.emit(Event::DeliveryFailed {
                    to: *to,
                    id,
                    reason: *reason,
                    will_retry,
                });
            }
        }
        Ok(CircleSent::Done(held))
    }

    /// Stages the revocation of invite links that expired (or whose circle
    /// we no longer facilitate); the relay chores of the next flush carry
    /// it out.
    async fn expire_invites(&self) -> Result<(), Error> {
        let mut engine = self.shared.engine.lock().await;
        if let Some(writes) = engine.expire_invites(self.now())? {
            commit(&mut engine, writes).await?;
        }
        Ok(())
    }

    /// Relay chores before the outbox: send tokens to add (before the
    /// messages that hand them out) or revoke, sessions to open with circle
    /// members. A token chore that fails for now stops the round and stays
    /// for the next one; a session that cannot be opened yet is tried
    /// again later (see [`Self::open_session`]).
    async fn run_tasks(&self) -> Result<(), Error> {
        // A chore may add chores (opening a session registers a token for
        // the peer): keep going until none is left.
        for _ in 0..MAX_TASK_ROUNDS {
            let tasks = self.shared.engine.lock().await.tasks()?;
            if tasks.is_empty() || !self.run_task_round(tasks).await? {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Runs `tasks` in order; `false` if none was done (one has to wait for
    /// a later round, or every session to open waits for its time).
    async fn run_task_round(
        &self,
        tasks: Vec<(u64, crate::records::TaskRecord)>,
    ) -> Result<bool, Error> {
        let mut progress = false;
        for (seq, task) in tasks {
            let done = match TaskKind::try_from(task.kind) {
                Ok(TaskKind::AddToken) => {
                    let relay = self.own_relay().await?;
                    relay
                        .add_send_token(self.shared.mailbox_id, &task.token)
                        .await
                        .is_ok()
                }
                Ok(TaskKind::RevokeToken) => {
                    let relay = self.own_relay().await?;
                    match relay
                        .revoke_send_token(self.shared.mailbox_id, &task.token)
                        .await
                    {
                        Ok(()) | Err(ClientError::Relay { .. }) => true,
                        Err(_) => false,
                    }
                }
                Ok(TaskKind::OpenSession) => {
                    if task.next_attempt_at_ms > self.now() {
                        continue;
                    }
                    if !self.open_session(&task).await? {
                        self.retry_task_later(seq, task).await?;
                        continue;
                    }
                    true
                }
                Err(_) => true,
            };
            if !done {
                return Ok(progress);
            }
            progress = true;
            let mut engine = self.shared.engine.lock().await;
            let writes = engine.task_done(seq);
            commit(&mut engine, writes).await?;
        }
        Ok(progress)
    }

    /// Keeps a session chore that could not be done now for a later
    /// attempt, after a growing delay ([`ClientOptions::backoff`](super::ClientOptions::backoff)).
    async fn retry_task_later(
        &self,
        seq: u64,
        task: crate::records::TaskRecord,
    ) -> Result<(), Error> {
        let delay = {
            let mut rng = self.rng();
            self.shared.options.backoff.delay(task.attempts, &mut *rng)
        };
        let delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        let mut engine = self.shared.engine.lock().await;
        let writes = engine.task_later(seq, task, self.now().saturating_add(delay_ms));
        commit(&mut engine, writes).await
    }

    /// Fetches a circle member's prekeys and opens the session a chore asks
    /// for; `false` if it should be tried again later. Every refusal of the
    /// fetch is worth another try: `RATE_LIMITED` and `NO_PREKEYS` pass, and
    /// a door token that no longer works is replaced by a newer card. The
    /// chore ends for good only when it has become moot (the member left,
    /// or a session exists) or the keys handed out are not the member's.
    async fn open_session(&self, task: &crate::records::TaskRecord) -> Result<bool, Error> {
        let Some(card) = self.shared.engine.lock().await.session_target(task)? else {
            return Ok(true);
        };
        let (Ok(address), Ok(mailbox)) = (
            card.relay.parse::<RelayAddress>(),
            <[u8; 32]>::try_from(card.mailbox_id.as_slice()),
        ) else {
            return Ok(true);
        };
        let Ok(relay) = self.relay_at(&address).await else {
            return Ok(false);
        };
        let fetched = match relay.fetch_prekeys(mailbox, &card.send_token).await {
            Ok(fetched) => fetched,
            Err(error) => {
                tracing::debug!(%error, "fetching a circle member's prekeys failed; will retry");
                return Ok(false);
            }
        };
        let Ok(bundle) = hearth_protocol::wire::decode_prekey_bundle(
            &fetched.signed_bundle,
            fetched.one_time_prekey.as_deref(),
            &fetched.pq_prekey,
        ) else {
            tracing::debug!("a circle member's relay handed out an invalid prekey bundle");
            return Ok(true);
        };
        let mut engine = self.shared.engine.lock().await;
        let opened = {
            let mut rng = self.rng();
            engine.open_circle_session(task, &card, &bundle, &mut *rng, self.now())
        };
        match opened {
            Ok(writes) => commit(&mut engine, writes).await?,
            Err(Error::Store(error)) => return Err(Error::Store(error)),
            Err(error) => tracing::debug!(%error, "not opening a circle session"),
        }
        Ok(true)
    }

    /// Tries held envelopes again (after something arrived that they may
    /// have waited for), committing each that moves.
    pub(super) async fn retry_held(&self) -> Result<(), Error> {
        loop {
            let mut engine = self.shared.engine.lock().await;
            let moved = {
                let mut rng = self.rng();
                engine.retry_held(&mut *rng, self.now())?
            };
            let Some((writes, events)) = moved else {
                return Ok(());
            };
            commit(&mut engine, writes).await?;
            drop(engine);
            for event in events {
                self.emit(event);
            }
        }
    }

    async fn send_one(&self, item: &Outgoing) -> Result<Sent, Error> {
        let Ok(address) = item.record.relay.parse::<RelayAddress>() else {
            return self.finish(item, Err(FailureReason::UnknownMailbox)).await;
        };
        let relay = match self.relay_at(&address).await {
            Ok(relay) => relay,
            Err(error) => {
                tracing::debug!(%error, "a recipient's relay is unreachable");
                return Ok(Sent::HoldRelay);
            }
        };
        let send = outgoing_send(item, self.is_retry(item))?;
        match relay.send(send).await {
            Ok(results) => match results.first() {
                Some(Ok(())) => self.finish(item, Ok(())).await,
                Some(Err(code)) => {
                    self.finish(item, Err(FailureReason::from_code(*code)))
                        .await
                }
                None => Ok(Sent::HoldRelay),
            },
            Err(ClientError::Relay { code, .. }) => {
                let reason = FailureReason::from_code(code);
                let sent = self.finish(item, Err(reason)).await?;
                Ok(if reason.is_retryable() {
                    Sent::HoldRelay
                } else {
                    sent
                })
            }
            Err(error) => {
                self.send_failed(&relay, &error).await;
                Ok(Sent::HoldRelay)
            }
        }
    }

    /// A send failed on the way (not refused by the relay): the entry stays
    /// queued, and a closed connection is dropped so the next try reconnects.
    async fn send_failed(&self, relay: &Arc<RelayClient>, error: &ClientError) {
        tracing::debug!(%error, "sending failed; will retry");
        if !is_open(relay) {
            self.shared.connections.forget(relay).await;
        }
    }

    /// Records a relay's answer for `item` and tells the app.
    async fn finish(
        &self,
        item: &Outgoing,
        answer: Result<(), FailureReason>,
    ) -> Result<Sent, Error> {
        let (to, id) = (item.member()?, item.message_id()?);
        let mut engine = self.shared.engine.lock().await;
        let (writes, shown) = match answer {
            Ok(()) => engine.sent(item)?,
            Err(reason) => engine.refused(item, reason)?,
        };
        commit(&mut engine, writes).await?;
        drop(engine);
        match answer {
            Ok(()) => {
                if shown {
                    self.emit(Event::MessageSent { to, id });
                }
                Ok(Sent::Done)
            }
            Err(reason) => {
                let will_retry = reason.is_retryable();
                if !(will_retry && item.record.failure_reported) {
                    self.emit(Event::DeliveryFailed {
                        to,
                        id,
                        reason,
                        will_retry,
                    });
                }
                Ok(if will_retry {
                    Sent::HoldMember
                } else {
                    Sent::Done
                })
            }
        }
    }
}

/// **Crash tests only**, and only with the `test-hooks` feature (a release
/// build neither has nor reads this variable). When this environment
/// variable is set to `1`, the process exits with status
/// [`TEST_EXIT_BEFORE_ACK_STATUS`] right after it durably stored a delivery
/// and before it acknowledges it: a crash at the worst moment, on demand.
/// The relay then delivers the envelopes again and the restarted client
/// must recognise them. Never set it otherwise.
#[cfg(feature = "test-hooks")]
pub const TEST_EXIT_BEFORE_ACK_VAR: &str = "HEARTH_TEST_EXIT_BEFORE_ACK";

/// The exit status of a process stopped by [`TEST_EXIT_BEFORE_ACK_VAR`].
#[cfg(feature = "test-hooks")]
pub const TEST_EXIT_BEFORE_ACK_STATUS: i32 = 86;

/// The crash-test hook of [`TEST_EXIT_BEFORE_ACK_VAR`].
#[cfg(feature = "test-hooks")]
fn exit_before_ack_if_asked() {
    if std::env::var_os(TEST_EXIT_BEFORE_ACK_VAR).is_some_and(|value| value == "1") {
        tracing::warn!("exiting before the acknowledgement ({TEST_EXIT_BEFORE_ACK_VAR} is set)");
        std::process::exit(TEST_EXIT_BEFORE_ACK_STATUS);
    }
}

/// Rounds of relay chores in one flush (each round may add chores).
const MAX_TASK_ROUNDS: usize = 4;

/// What to do with the rest of the outbox after one circle send.
enum CircleSent {
    /// Go on, skipping these members' later envelopes.
    Done(Vec<crate::MemberId>),
    /// Skip everything for this relay for now.
    HoldRelay,
}

/// The members a circle outbox entry goes to.
fn circle_recipients(item: &Outgoing) -> Vec<crate::MemberId> {
    item.record
        .recipients
        .iter()
        .filter_map(|r| <[u8; 16]>::try_from(r.member_id.as_slice()).ok())
        .map(crate::MemberId::from_bytes)
        .collect()
}

/// Most client message ids remembered as sent by this process.
const MAX_REMEMBERED_SENDS: usize = 4096;

/// What to do with the rest of the outbox after one send.
enum Sent {
    /// Go on.
    Done,
    /// Skip this recipient's later envelopes for now.
    HoldMember,
    /// Skip everything for this relay for now.
    HoldRelay,
}

fn outgoing_send(item: &Outgoing, retry: bool) -> Result<OutgoingSend, Error> {
    let corrupt = || Error::Store(crate::store::StoreError::Corrupt("outbox"));
    let record = &item.record;
    if !record.recipients.is_empty() {
        return Ok(OutgoingSend {
            client_message_id: record
                .client_message_id
                .as_slice()
                .try_into()
                .map_err(|_| corrupt())?,
            body: Bytes::copy_from_slice(&record.body),
            recipients: record
                .recipients
                .iter()
                .map(|r| {
                    Ok(OutgoingRecipient {
                        mailbox_id: r.mailbox_id.as_slice().try_into().map_err(|_| corrupt())?,
                        send_token: Bytes::copy_from_slice(&r.send_token),
                        sealed_header: Bytes::copy_from_slice(&r.sealed_header),
                    })
                })
                .collect::<Result<_, Error>>()?,
            retry,
        });
    }
    Ok(OutgoingSend {
        client_message_id: record
            .client_message_id
            .as_slice()
            .try_into()
            .map_err(|_| corrupt())?,
        body: Bytes::copy_from_slice(&record.body),
        recipients: vec![OutgoingRecipient {
            mailbox_id: record
                .mailbox_id
                .as_slice()
                .try_into()
                .map_err(|_| corrupt())?,
            send_token: Bytes::copy_from_slice(&record.send_token),
            sealed_header: Bytes::copy_from_slice(&record.sealed_header),
        }],
        retry,
    })
}
