//! The one workload definition every system runs: senders send probe-
//! stamped bodies to their group (closed loop, or open loop on a fixed
//! schedule), receivers take them, time them and acknowledge them.
//!
//! It measures what `throughput` measures for the relay, for any
//! [`Peer`]: acknowledged sends per second, deliveries per second,
//! send→acknowledgement and send→delivery latency (HDR histograms; open
//! loop from the *scheduled* time, so no coordinated omission), the
//! server's CPU time, and whether every acknowledged message arrived at
//! every recipient exactly once.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use hdrhistogram::Histogram;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::peer::{Peer, PeerReceiver, PeerSender, Topology};
use super::server::ServerProbe;
use crate::fleet::run_bounded;
use crate::probe::{Clock, CounterSet, Probe, latency_histogram, nanos};
use crate::relay_process::ProcessSample;
use crate::report::DeliveryCheck;
use crate::workload::{Pacing, scheduled_at};

/// How often progress is printed during a run.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// How long a sender waits after a failed send before the next one.
const ERROR_BACKOFF: Duration = Duration::from_millis(10);

/// What to run.
#[derive(Clone, Debug)]
pub(crate) struct Scenario {
    /// Who sends to whom.
    pub(crate) topology: Topology,
    /// Body bytes per message.
    pub(crate) body_bytes: usize,
    /// Warm-up before the measured phase.
    pub(crate) warmup: Duration,
    /// The measured phase.
    pub(crate) duration: Duration,
    /// Closed or open loop (an open-loop rate counts messages, all senders
    /// together).
    pub(crate) pacing: Pacing,
    /// How long to wait after the last send for the last deliveries.
    pub(crate) drain_timeout: Duration,
    /// Connections set up at the same time.
    pub(crate) connect_concurrency: usize,
}

/// What a run measured.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// Seconds spent connecting the clients.
    pub(crate) setup_seconds: f64,
    /// Length of the measured phase in seconds.
    pub(crate) window_seconds: f64,
    /// Sends acknowledged during the measured phase.
    pub(crate) sent_in_window: u64,
    /// Deliveries (one per recipient) during the measured phase.
    pub(crate) delivered_in_window: u64,
    /// Send→acknowledgement latency of sends stamped in the window.
    pub(crate) send_latency: Histogram<u64>,
    /// Send→delivery latency of messages stamped in the window.
    pub(crate) delivery_latency: Histogram<u64>,
    /// Whether every acknowledged message reached every recipient once.
    pub(crate) check: DeliveryCheck,
    /// The server at the start of the measured phase.
    pub(crate) server_warm: ProcessSample,
    /// The server at its end.
    pub(crate) server_end: ProcessSample,
    /// The server after the last deliveries.
    pub(crate) server_drained: ProcessSample,
    /// The load generator itself at the start of the measured phase.
    pub(crate) bench_warm: ProcessSample,
    /// The load generator itself at its end.
    pub(crate) bench_end: ProcessSample,
    /// The first error a client met, if any.
    pub(crate) first_error: Option<String>,
}

/// Counters all clients update.
#[derive(Debug, Default)]
struct Tally {
    sent: AtomicU64,
    sent_in_window: AtomicU64,
    send_errors: AtomicU64,
    delivered: AtomicU64,
    delivered_in_window: AtomicU64,
}

/// Prepares `peer`, runs `scenario` on it and cleans up (also on error).
pub(crate) async fn run<P: Peer + 'static>(
    peer: &Arc<P>,
    scenario: &Scenario,
    server: &ServerProbe,
) -> anyhow::Result<Outcome> {
    peer.prepare(scenario.topology).await?;
    let outcome = run_prepared(peer, scenario, server).await;
    let cleaned = peer.cleanup().await;
    let outcome = outcome?;
    cleaned.context("cleaning up")?;
    Ok(outcome)
}

/// Runs `scenario` on a prepared `peer`.
async fn run_prepared<P: Peer + 'static>(
    peer: &Arc<P>,
    scenario: &Scenario,
    server: &ServerProbe,
) -> anyhow::Result<Outcome> {
    let topology = scenario.topology;
    let setup_started = Instant::now();
    eprintln!(
        "    connecting {} recipients and {} senders…",
        topology.mailboxes(),
        topology.groups
    );
    let receivers = connect_all(topology.mailboxes(), scenario.connect_concurrency, {
        let peer = Arc::clone(peer);
        move |mailbox| {
            let peer = Arc::clone(&peer);
            async move { peer.connect_receiver(mailbox).await }
        }
    })
    .await
    .context("connecting receivers")?;
    let senders = connect_all(topology.groups, scenario.connect_concurrency, {
        let peer = Arc::clone(peer);
        move |group| {
            let peer = Arc::clone(&peer);
            async move { peer.connect_sender(group).await }
        }
    })
    .await
    .context("connecting senders")?;

    let setup_seconds = setup_started.elapsed().as_secs_f64();
    let clock = Clock::start(scenario.warmup, scenario.duration);
    let tally = Arc::new(Tally::default());
    let (stop, stopped) = watch::channel(false);
    let mut receiving = JoinSet::new();
    let mut inboxes = Vec::new();
    for (mailbox, receiver) in receivers.into_iter().enumerate() {
        let inbox = Arc::new(Inbox::new(topology.group_of(mailbox), clock, &tally)?);
        inboxes.push(Arc::clone(&inbox));
        receiving.spawn(receive_loop(receiver, inbox, stopped.clone()));
    }
    let mut sending = JoinSet::new();
    let mut outboxes = Vec::new();
    for (group, sender) in senders.into_iter().enumerate() {
        let outbox = Arc::new(Outbox::new(
            group,
            sender,
            scenario.body_bytes,
            clock,
            &tally,
        )?);
        outboxes.push(Arc::clone(&outbox));
        sending.spawn(outbox.run(scenario.pacing, topology.groups));
    }

    sleep_until(&clock, clock.warm_at, &tally).await;
    let (server_warm, bench_warm) = (server.sample()?, ProcessSample::of_self()?);
    sleep_until(&clock, clock.end_at, &tally).await;
    let (server_end, bench_end) = (server.sample()?, ProcessSample::of_self()?);
    while sending.join_next().await.is_some() {}
    let expected = tally.sent.load(Relaxed) * topology.fanout as u64;
    wait_for_deliveries(&tally, expected, scenario.drain_timeout).await;
    let _ = stop.send(true);
    while receiving.join_next().await.is_some() {}
    let server_drained = server.sample()?;

    let Reconciled {
        check,
        send_latency,
        delivery_latency,
        first_error,
    } = reconcile(&outboxes, &inboxes, &tally)?;
    Ok(Outcome {
        setup_seconds,
        window_seconds: clock.window_seconds(),
        sent_in_window: tally.sent_in_window.load(Relaxed),
        delivered_in_window: tally.delivered_in_window.load(Relaxed),
        send_latency,
        delivery_latency,
        check,
        server_warm,
        server_end,
        server_drained,
        bench_warm,
        bench_end,
        first_error,
    })
}

/// Runs `connect(i)` for `i in 0..count`, `concurrency` at a time; fails
/// with the first error and how many failed.
pub(crate) async fn connect_all<T, F, Fut>(
    count: usize,
    concurrency: usize,
    connect: F,
) -> anyhow::Result<Vec<T>>
where
    T: Send + 'static,
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>> + Send + 'static,
{
    let results = run_bounded(count, concurrency, connect, |_| {}).await;
    let mut values = Vec::with_capacity(count);
    let mut failures = 0;
    let mut first = None;
    for result in results {
        match result {
            Ok(value) => values.push(value),
            Err(error) => {
                failures += 1;
                first.get_or_insert(error);
            }
        }
    }
    match first {
        None => Ok(values),
        Some(error) => Err(error.context(format!("{failures} of {count} failed"))),
    }
}

/// Sleeps until `at` on the run's clock, printing progress now and then.
async fn sleep_until(clock: &Clock, at: u64, tally: &Tally) {
    loop {
        let now = clock.now();
        if now >= at {
            return;
        }
        let next = (now + nanos(PROGRESS_EVERY)).min(at);
        tokio::time::sleep_until(clock.instant(next)).await;
        if next < at {
            eprintln!(
                "    t={:>5.1}s  sent {}  delivered {}  send errors {}",
                clock.now() as f64 / 1e9,
                tally.sent.load(Relaxed),
                tally.delivered.load(Relaxed),
                tally.send_errors.load(Relaxed),
            );
        }
    }
}

/// Waits until `expected` deliveries arrived, or `timeout`.
async fn wait_for_deliveries(tally: &Tally, expected: u64, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while tally.delivered.load(Relaxed) < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let delivered = tally.delivered.load(Relaxed);
    if delivered < expected {
        eprintln!("    gave up after {timeout:?}: {delivered} of {expected} deliveries arrived");
    }
}

/// What senders and recipients recorded, put together.
struct Reconciled {
    check: DeliveryCheck,
    send_latency: Histogram<u64>,
    delivery_latency: Histogram<u64>,
    first_error: Option<String>,
}

/// Checks what each group's sender had acknowledged against what each of
/// its recipients got, and merges the latency histograms.
fn reconcile<S: PeerSender>(
    outboxes: &[Arc<Outbox<S>>],
    inboxes: &[Arc<Inbox>],
    tally: &Tally,
) -> anyhow::Result<Reconciled> {
    let mut check = DeliveryCheck::default();
    let mut send_latency = latency_histogram()?;
    let mut delivery_latency = latency_histogram()?;
    let mut first_error = None;
    for outbox in outboxes {
        let sent = outbox.record.lock().unwrap_or_else(PoisonError::into_inner);
        check.sent += sent.stored.len();
        send_latency
            .add(&sent.latency)
            .context("merging histograms")?;
        first_error = first_error.or_else(|| sent.first_error.clone());
    }
    for inbox in inboxes {
        let got = inbox.record.lock().unwrap_or_else(PoisonError::into_inner);
        let sent = outboxes[inbox.group]
            .record
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        check.delivered += got.received.len();
        check.missing += sent.stored.count_missing_from(&got.received);
        check.unexpected += got.received.count_missing_from(&sent.stored);
        check.duplicates += got.duplicates;
        check.misrouted += got.misrouted;
        check.malformed += got.malformed;
        check.acked += got.acked;
        check.ack_errors += got.ack_errors;
        check.lost_connections += u64::from(got.lost);
        delivery_latency
            .add(&got.latency)
            .context("merging histograms")?;
        first_error = first_error.or_else(|| got.first_error.clone());
    }
    check.send_errors = tally.send_errors.load(Relaxed);
    check.settle();
    Ok(Reconciled {
        check,
        send_latency,
        delivery_latency,
        first_error,
    })
}

/// One sender and what it recorded.
struct Outbox<S> {
    group: u32,
    sender: S,
    padding: Bytes,
    clock: Clock,
    tally: Arc<Tally>,
    next_id: AtomicU64,
    record: Mutex<OutboxRecord>,
}

/// What a sender recorded.
struct OutboxRecord {
    stored: CounterSet,
    latency: Histogram<u64>,
    first_error: Option<String>,
}

impl<S: PeerSender + 'static> Outbox<S> {
    fn new(
        group: usize,
        sender: S,
        body_bytes: usize,
        clock: Clock,
        tally: &Arc<Tally>,
    ) -> anyhow::Result<Self> {
        let padding: Vec<u8> = (0..body_bytes).map(|_| rand::random()).collect();
        Ok(Self {
            group: u32::try_from(group).context("too many groups")?,
            sender,
            padding: padding.into(),
            clock,
            tally: Arc::clone(tally),
            next_id: AtomicU64::new(0),
            record: Mutex::new(OutboxRecord {
                stored: CounterSet::default(),
                latency: latency_histogram()?,
                first_error: None,
            }),
        })
    }

    /// Sends until the measured phase ends, as `pacing` says; `senders`
    /// share an open-loop rate.
    async fn run(self: Arc<Self>, pacing: Pacing, senders: usize) {
        match pacing {
            Pacing::Closed { in_flight } => {
                let mut workers = JoinSet::new();
                for _ in 0..in_flight.max(1) {
                    let outbox = Arc::clone(&self);
                    workers.spawn(async move {
                        loop {
                            let stamp = outbox.clock.now();
                            if stamp >= outbox.clock.end_at {
                                break;
                            }
                            outbox.send(stamp).await;
                        }
                    });
                }
                while workers.join_next().await.is_some() {}
            }
            Pacing::Open {
                rate,
                max_in_flight,
            } => self.run_open(rate, senders, max_in_flight).await,
        }
    }

    /// Open loop: send `k` is due at `offset + k × interval`, the senders'
    /// offsets spreading them evenly; at most `max_in_flight` outstanding.
    async fn run_open(self: Arc<Self>, rate: f64, senders: usize, max_in_flight: usize) {
        let interval = senders as f64 * 1e9 / rate;
        let offset = f64::from(self.group) * 1e9 / rate;
        let slots = Arc::new(Semaphore::new(max_in_flight.max(1)));
        for k in 0.. {
            let due = scheduled_at(offset, interval, k);
            if due >= self.clock.end_at {
                break;
            }
            tokio::time::sleep_until(self.clock.instant(due)).await;
            let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
                break;
            };
            let outbox = Arc::clone(&self);
            tokio::spawn(async move {
                outbox.send(due).await;
                drop(slot);
            });
        }
        let all = u32::try_from(max_in_flight.max(1)).unwrap_or(u32::MAX);
        let _ = slots.acquire_many(all).await;
    }

    /// Sends one message stamped `stamp`.
    async fn send(&self, stamp: u64) {
        let counter = self.next_id.fetch_add(1, Relaxed);
        let probe = Probe {
            sent_at: stamp,
            sender: self.group,
            counter,
        };
        let result = self.sender.send(counter, probe.encode(&self.padding)).await;
        let done = self.clock.now();
        let failed = {
            let mut record = self.record.lock().unwrap_or_else(PoisonError::into_inner);
            match result {
                Ok(()) => {
                    record.stored.insert(counter);
                    if self.clock.in_window(stamp) {
                        record.latency.saturating_record(done.saturating_sub(stamp));
                    }
                    self.tally.sent.fetch_add(1, Relaxed);
                    if self.clock.in_window(done) {
                        self.tally.sent_in_window.fetch_add(1, Relaxed);
                    }
                    false
                }
                Err(error) => {
                    self.tally.send_errors.fetch_add(1, Relaxed);
                    record
                        .first_error
                        .get_or_insert_with(|| format!("send: {error:#}"));
                    true
                }
            }
        };
        if failed {
            tokio::time::sleep(ERROR_BACKOFF).await;
        }
    }
}

/// One recipient's record.
struct Inbox {
    group: usize,
    clock: Clock,
    tally: Arc<Tally>,
    record: Mutex<InboxRecord>,
}

/// What a recipient recorded.
struct InboxRecord {
    received: CounterSet,
    latency: Histogram<u64>,
    duplicates: u64,
    misrouted: u64,
    malformed: u64,
    acked: u64,
    ack_errors: u64,
    lost: bool,
    first_error: Option<String>,
}

impl Inbox {
    fn new(group: usize, clock: Clock, tally: &Arc<Tally>) -> anyhow::Result<Self> {
        Ok(Self {
            group,
            clock,
            tally: Arc::clone(tally),
            record: Mutex::new(InboxRecord {
                received: CounterSet::default(),
                latency: latency_histogram()?,
                duplicates: 0,
                misrouted: 0,
                malformed: 0,
                acked: 0,
                ack_errors: 0,
                lost: false,
                first_error: None,
            }),
        })
    }

    /// Records `bodies`, received now.
    fn take(&self, bodies: &[Bytes]) {
        let now = self.clock.now();
        let mut record = self.record.lock().unwrap_or_else(PoisonError::into_inner);
        for body in bodies {
            match Probe::decode(body) {
                Some(probe) if probe.sender as usize == self.group => {
                    if !record.received.insert(probe.counter) {
                        record.duplicates += 1;
                        continue;
                    }
                    self.tally.delivered.fetch_add(1, Relaxed);
                    if self.clock.in_window(now) {
                        self.tally.delivered_in_window.fetch_add(1, Relaxed);
                    }
                    if self.clock.in_window(probe.sent_at) {
                        record
                            .latency
                            .saturating_record(now.saturating_sub(probe.sent_at));
                    }
                }
                Some(_) => record.misrouted += 1,
                None => record.malformed += 1,
            }
        }
    }

    /// Records the outcome of acknowledging `count` messages.
    fn note_ack(&self, count: usize, result: anyhow::Result<()>) {
        let mut record = self.record.lock().unwrap_or_else(PoisonError::into_inner);
        match result {
            Ok(()) => record.acked += count as u64,
            Err(error) => {
                record.ack_errors += 1;
                record
                    .first_error
                    .get_or_insert_with(|| format!("ack: {error:#}"));
            }
        }
    }

    /// Records a receive error or a lost connection.
    fn note_lost(&self, error: Option<anyhow::Error>) {
        let mut record = self.record.lock().unwrap_or_else(PoisonError::into_inner);
        record.lost = true;
        if let Some(error) = error {
            record
                .first_error
                .get_or_insert_with(|| format!("receive: {error:#}"));
        }
    }
}

/// Takes and acknowledges messages until `stop` turns true or the
/// connection is lost.
async fn receive_loop<R: PeerReceiver>(
    mut receiver: R,
    inbox: Arc<Inbox>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let batch = tokio::select! {
            biased;
            _ = stop.wait_for(|stop| *stop) => break,
            batch = receiver.receive() => batch,
        };
        match batch {
            Ok(Some(bodies)) => {
                inbox.take(&bodies);
                let acked = receiver.ack().await;
                inbox.note_ack(bodies.len(), acked);
            }
            Ok(None) => {
                inbox.note_lost(None);
                break;
            }
            Err(error) => {
                inbox.note_lost(Some(error));
                break;
            }
        }
    }
}
