//! The throughput workload: N sender clients each send to one of N
//! receiver clients (one mailbox each) over real QUIC connections. Every
//! envelope is sent (the relay answers after fdatasync), delivered and
//! acknowledged (which deletes it); receivers time send→delivery.
//!
//! Closed loop: each sender keeps up to K sends in flight and stamps each
//! body with the time it actually sent it. Open loop (`--rate`): each
//! sender follows a fixed schedule and stamps the *scheduled* time, so a
//! slow relay shows up as latency instead of a slower schedule (no
//! coordinated omission).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use hdrhistogram::Histogram;
use hearth_client::{ClientError, Delivery, OutgoingRecipient, RelayAddress, RelayClient};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::fleet::{EndpointPool, Mailbox, connect, run_bounded};
use crate::probe::{Clock, CounterSet, Probe, latency_histogram};
use crate::relay_process::{ProcessSample, RelayProcess};
use crate::report::DeliveryCheck;

/// How often progress is printed during a run.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// How long a sender waits after a failed send before the next one.
const ERROR_BACKOFF: Duration = Duration::from_millis(10);

/// Ack requests a receiver keeps in flight before waiting for one.
const ACKS_IN_FLIGHT: usize = 16;

/// How senders pace their sends.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Pacing {
    /// Each sender keeps up to `in_flight` sends outstanding.
    Closed {
        /// Sends outstanding per sender.
        in_flight: usize,
    },
    /// All senders together send `rate` envelopes per second on a fixed
    /// schedule; each keeps at most `max_in_flight` outstanding (later
    /// sends wait, and their wait counts as latency).
    Open {
        /// Envelopes per second, all senders together.
        rate: f64,
        /// Sends outstanding per sender at most.
        max_in_flight: usize,
    },
}

/// What to run.
#[derive(Clone, Debug)]
pub(crate) struct ThroughputPlan {
    /// Sender clients (and as many receiver clients).
    pub(crate) clients: usize,
    /// Body size of each envelope in bytes.
    pub(crate) body_bytes: usize,
    /// Warm-up before the measured phase.
    pub(crate) warmup: Duration,
    /// The measured phase.
    pub(crate) duration: Duration,
    /// Closed or open loop.
    pub(crate) pacing: Pacing,
    /// How long to wait after the last send for the last deliveries.
    pub(crate) drain_timeout: Duration,
    /// Connections per client UDP socket.
    pub(crate) per_endpoint: usize,
    /// Connections set up at the same time.
    pub(crate) connect_concurrency: usize,
}

/// What a run measured.
#[derive(Debug)]
pub(crate) struct Measurements {
    /// Seconds spent connecting clients and registering mailboxes.
    pub(crate) setup_seconds: f64,
    /// Length of the measured phase in seconds.
    pub(crate) window_seconds: f64,
    /// Sends answered (durable) during the measured phase.
    pub(crate) sent_in_window: u64,
    /// Envelopes acknowledged (deleted) during the measured phase.
    pub(crate) acked_in_window: u64,
    /// Send→durable-answer latency of sends stamped in the measured phase.
    pub(crate) send_latency: Histogram<u64>,
    /// Send→delivery latency of envelopes stamped in the measured phase.
    pub(crate) delivery_latency: Histogram<u64>,
    /// Whether every envelope arrived exactly once.
    pub(crate) check: DeliveryCheck,
    /// The relay at the start of the measured phase.
    pub(crate) relay_warm: ProcessSample,
    /// The relay at its end.
    pub(crate) relay_end: ProcessSample,
    /// The relay after the last deliveries.
    pub(crate) relay_drained: ProcessSample,
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
    acked: AtomicU64,
    acked_in_window: AtomicU64,
}

/// Runs the workload against `relay`.
pub(crate) async fn run(
    plan: &ThroughputPlan,
    relay: &RelayProcess,
) -> anyhow::Result<Measurements> {
    let setup_started = Instant::now();
    let pool = EndpointPool::new(plan.clients * 2, plan.per_endpoint)?;
    let address = relay.address().clone();
    eprintln!(
        "opening {} receivers and {} senders over {} UDP sockets…",
        plan.clients,
        plan.clients,
        pool.len()
    );
    let pool = Arc::new(pool);
    let receivers = open_receivers(plan, &address, &pool).await?;
    let senders = connect_senders(plan, &address, &pool).await?;
    let setup_seconds = setup_started.elapsed().as_secs_f64();

    let clock = Clock::start(plan.warmup, plan.duration);
    let tally = Arc::new(Tally::default());
    let run_id: u32 = rand::random();
    let (stop, stopped) = watch::channel(false);
    let mut receiving = JoinSet::new();
    let mut receiver_handles = Vec::new();
    for (index, (client, mailbox)) in receivers.into_iter().enumerate() {
        let receiver = Arc::new(Receiver::new(
            index,
            client,
            mailbox,
            clock,
            Arc::clone(&tally),
        )?);
        receiver_handles.push(Arc::clone(&receiver));
        receiving.spawn(receiver.run(stopped.clone()));
    }
    let mut sending = JoinSet::new();
    let mut sender_handles = Vec::new();
    for (index, (client, recipient)) in senders
        .into_iter()
        .zip(receiver_recipients(&receiver_handles))
        .enumerate()
    {
        let sender = Arc::new(Sender::new(
            index,
            run_id,
            client,
            recipient,
            plan.body_bytes,
            clock,
            &tally,
        )?);
        sender_handles.push(Arc::clone(&sender));
        sending.spawn(sender.run(plan.pacing, plan.clients));
    }

    eprintln!(
        "warming up for {:?}, then measuring for {:?}…",
        plan.warmup, plan.duration
    );
    wait_until(&clock, clock.warm_at, &tally).await;
    let (relay_warm, bench_warm) = (relay.sample()?, ProcessSample::of_self()?);
    wait_until(&clock, clock.end_at, &tally).await;
    let (relay_end, bench_end) = (relay.sample()?, ProcessSample::of_self()?);
    while sending.join_next().await.is_some() {}
    let sent = tally.sent.load(Relaxed);
    drain(&tally, sent, plan.drain_timeout).await;
    let _ = stop.send(true);
    while receiving.join_next().await.is_some() {}
    let relay_drained = relay.sample()?;

    let Reconciled {
        check,
        send_latency,
        delivery_latency,
        first_error,
    } = reconcile(&sender_handles, &receiver_handles, &tally)?;
    drop((sender_handles, receiver_handles));
    pool.close(Duration::from_secs(2)).await;
    Ok(Measurements {
        setup_seconds,
        window_seconds: clock.window_seconds(),
        sent_in_window: tally.sent_in_window.load(Relaxed),
        acked_in_window: tally.acked_in_window.load(Relaxed),
        send_latency,
        delivery_latency,
        check,
        relay_warm,
        relay_end,
        relay_drained,
        bench_warm,
        bench_end,
        first_error,
    })
}

/// Connects one receiver per client and opens its mailbox.
async fn open_receivers(
    plan: &ThroughputPlan,
    address: &RelayAddress,
    pool: &Arc<EndpointPool>,
) -> anyhow::Result<Vec<(RelayClient, Mailbox)>> {
    let results = run_bounded(
        plan.clients,
        plan.connect_concurrency,
        |index| {
            let (address, pool) = (address.clone(), Arc::clone(pool));
            async move {
                let client = connect(&address, &pool, index).await?;
                let mailbox = Mailbox::random();
                mailbox.open(&client).await?;
                Ok((client, mailbox))
            }
        },
        |_| {},
    )
    .await;
    all_or_first_error(results, "receivers")
}

/// Connects one sender per client (senders need no mailbox).
async fn connect_senders(
    plan: &ThroughputPlan,
    address: &RelayAddress,
    pool: &Arc<EndpointPool>,
) -> anyhow::Result<Vec<RelayClient>> {
    let results = run_bounded(
        plan.clients,
        plan.connect_concurrency,
        |index| {
            let (address, pool) = (address.clone(), Arc::clone(pool));
            // Senders take the slots after the receivers', so the two
            // sides of a pair tend to use different sockets.
            let slot = plan.clients + index;
            async move { connect(&address, &pool, slot).await }
        },
        |_| {},
    )
    .await;
    all_or_first_error(results, "senders")
}

/// Every result, or an error naming how many failed and the first reason.
fn all_or_first_error<T>(results: Vec<anyhow::Result<T>>, what: &str) -> anyhow::Result<Vec<T>> {
    let total = results.len();
    let mut values = Vec::with_capacity(total);
    let mut failures = Vec::new();
    for result in results {
        match result {
            Ok(value) => values.push(value),
            Err(error) => failures.push(error),
        }
    }
    match failures.into_iter().next() {
        None => Ok(values),
        Some(first) => {
            let failed = total - values.len();
            Err(first.context(format!("{failed} of {total} {what} could not be set up")))
        }
    }
}

/// How each sender addresses its receiver.
fn receiver_recipients(receivers: &[Arc<Receiver>]) -> Vec<OutgoingRecipient> {
    receivers.iter().map(|r| r.mailbox.recipient()).collect()
}

/// Sleeps until `at` on the run's clock, printing progress now and then.
async fn wait_until(clock: &Clock, at: u64, tally: &Tally) {
    loop {
        let now = clock.now();
        if now >= at {
            return;
        }
        let next = (now + crate::probe::nanos(PROGRESS_EVERY)).min(at);
        tokio::time::sleep_until(clock.instant(next)).await;
        if next < at {
            eprintln!(
                "  t={:>5.1}s  sent {}  delivered {}  acked {}  send errors {}",
                clock.now() as f64 / 1e9,
                tally.sent.load(Relaxed),
                tally.delivered.load(Relaxed),
                tally.acked.load(Relaxed),
                tally.send_errors.load(Relaxed),
            );
        }
    }
}

/// Waits until `sent` envelopes were delivered, or `timeout`.
async fn drain(tally: &Tally, sent: u64, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while tally.delivered.load(Relaxed) < sent && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let delivered = tally.delivered.load(Relaxed);
    if delivered < sent {
        eprintln!("gave up waiting after {timeout:?}: {delivered} of {sent} envelopes delivered");
    }
}

/// What senders and receivers recorded, put together.
struct Reconciled {
    check: DeliveryCheck,
    send_latency: Histogram<u64>,
    delivery_latency: Histogram<u64>,
    first_error: Option<String>,
}

/// Compares what each sender had stored with what its receiver got, and
/// merges the latency histograms.
fn reconcile(
    senders: &[Arc<Sender>],
    receivers: &[Arc<Receiver>],
    tally: &Tally,
) -> anyhow::Result<Reconciled> {
    let mut check = DeliveryCheck::default();
    let mut send_latency = latency_histogram()?;
    let mut delivery_latency = latency_histogram()?;
    let mut first_error = None;
    for (sender, receiver) in senders.iter().zip(receivers) {
        let sent = sender.record.lock().unwrap_or_else(PoisonError::into_inner);
        let got = receiver
            .record
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        check.sent += sent.stored.len();
        check.delivered += got.received.len();
        check.missing += sent.stored.count_missing_from(&got.received);
        check.unexpected += got.received.count_missing_from(&sent.stored);
        check.duplicates += got.duplicates;
        check.misrouted += got.misrouted;
        check.malformed += got.malformed;
        check.ack_errors += got.ack_errors;
        check.lost_connections += u64::from(got.lost) + u64::from(sent.lost);
        send_latency
            .add(&sent.latency)
            .context("merging histograms")?;
        delivery_latency
            .add(&got.latency)
            .context("merging histograms")?;
        first_error = first_error
            .or_else(|| sent.first_error.clone())
            .or_else(|| got.first_error.clone());
    }
    check.send_errors = tally.send_errors.load(Relaxed);
    check.acked = tally.acked.load(Relaxed);
    check.settle();
    Ok(Reconciled {
        check,
        send_latency,
        delivery_latency,
        first_error,
    })
}

/// One sender client and what it recorded.
struct Sender {
    index: u32,
    run_id: u32,
    client: RelayClient,
    recipient: OutgoingRecipient,
    padding: Bytes,
    clock: Clock,
    tally: Arc<Tally>,
    next_counter: AtomicU64,
    record: Mutex<SenderRecord>,
}

/// What a sender recorded.
struct SenderRecord {
    /// Counters the relay stored durably.
    stored: CounterSet,
    /// Send→answer latency of sends stamped in the measured phase.
    latency: Histogram<u64>,
    /// The first send error.
    first_error: Option<String>,
    /// Whether its connection was lost.
    lost: bool,
}

impl Sender {
    fn new(
        index: usize,
        run_id: u32,
        client: RelayClient,
        recipient: OutgoingRecipient,
        body_bytes: usize,
        clock: Clock,
        tally: &Arc<Tally>,
    ) -> anyhow::Result<Self> {
        let padding: Vec<u8> = (0..body_bytes).map(|_| rand::random()).collect();
        let record = SenderRecord {
            stored: CounterSet::default(),
            latency: latency_histogram()?,
            first_error: None,
            lost: false,
        };
        Ok(Self {
            index: u32::try_from(index).context("too many clients")?,
            run_id,
            client,
            recipient,
            padding: padding.into(),
            clock,
            tally: Arc::clone(tally),
            next_counter: AtomicU64::new(0),
            record: Mutex::new(record),
        })
    }

    /// Sends until the measured phase ends, as `pacing` says; `senders` is
    /// the number of senders sharing an open-loop rate.
    async fn run(self: Arc<Self>, pacing: Pacing, senders: usize) {
        match pacing {
            Pacing::Closed { in_flight } => self.run_closed(in_flight).await,
            Pacing::Open {
                rate,
                max_in_flight,
            } => self.run_open(rate, senders, max_in_flight).await,
        }
    }

    /// Closed loop: `in_flight` workers, each sending back to back.
    async fn run_closed(self: Arc<Self>, in_flight: usize) {
        let mut workers = JoinSet::new();
        for _ in 0..in_flight.max(1) {
            let sender = Arc::clone(&self);
            workers.spawn(async move {
                loop {
                    let stamp = sender.clock.now();
                    if stamp >= sender.clock.end_at || !sender.send(stamp).await {
                        break;
                    }
                }
            });
        }
        while workers.join_next().await.is_some() {}
    }

    /// Open loop: send number `k` is due at `offset + k × interval`, where
    /// all senders' offsets spread them evenly.
    async fn run_open(self: Arc<Self>, rate: f64, senders: usize, max_in_flight: usize) {
        let interval = senders as f64 * 1e9 / rate;
        let offset = f64::from(self.index) * 1e9 / rate;
        let max_in_flight = max_in_flight.max(1);
        let slots = Arc::new(Semaphore::new(max_in_flight));
        let mut due_count = 0u64;
        loop {
            let due = scheduled_at(offset, interval, due_count);
            if due >= self.clock.end_at || self.is_lost() {
                break;
            }
            tokio::time::sleep_until(self.clock.instant(due)).await;
            let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
                break;
            };
            let sender = Arc::clone(&self);
            tokio::spawn(async move {
                sender.send(due).await;
                drop(slot);
            });
            due_count += 1;
        }
        // Every slot back means every send answered.
        let _ = slots
            .acquire_many(u32::try_from(max_in_flight).unwrap_or(u32::MAX))
            .await;
    }

    /// Sends one envelope stamped `stamp`; returns `false` once the
    /// connection is lost.
    async fn send(&self, stamp: u64) -> bool {
        let counter = self.next_counter.fetch_add(1, Relaxed);
        let probe = Probe {
            sent_at: stamp,
            sender: self.index,
            counter,
        };
        let body = probe.encode(&self.padding);
        let id = probe.client_message_id(self.run_id);
        let result = self.client.send_one(id, self.recipient.clone(), body).await;
        let done = self.clock.now();
        match result {
            Ok(()) => {
                self.note_stored(counter, stamp, done);
                true
            }
            Err(error) => {
                let lost = self.note_error(&error);
                if !lost {
                    tokio::time::sleep(ERROR_BACKOFF).await;
                }
                !lost
            }
        }
    }

    /// Records that the relay stored envelope `counter` stamped `stamp`,
    /// answering at `done`.
    fn note_stored(&self, counter: u64, stamp: u64, done: u64) {
        let mut record = self.record.lock().unwrap_or_else(PoisonError::into_inner);
        record.stored.insert(counter);
        if self.clock.in_window(stamp) {
            record.latency.saturating_record(done.saturating_sub(stamp));
        }
        self.tally.sent.fetch_add(1, Relaxed);
        if self.clock.in_window(done) {
            self.tally.sent_in_window.fetch_add(1, Relaxed);
        }
    }

    /// Records a failed send; returns whether the connection is lost.
    fn note_error(&self, error: &ClientError) -> bool {
        self.tally.send_errors.fetch_add(1, Relaxed);
        let lost = matches!(error, ClientError::ConnectionLost(_)) || self.is_lost();
        let mut record = self.record.lock().unwrap_or_else(PoisonError::into_inner);
        record
            .first_error
            .get_or_insert_with(|| format!("send: {error}"));
        record.lost |= lost;
        lost
    }

    fn is_lost(&self) -> bool {
        self.client.quinn_connection().close_reason().is_some()
    }
}

/// When send number `k` is due: `offset + k × interval` nanoseconds.
fn scheduled_at(offset: f64, interval: f64, k: u64) -> u64 {
    (offset + k as f64 * interval) as u64
}

/// One receiver client (one mailbox) and what it recorded.
struct Receiver {
    index: u32,
    client: RelayClient,
    mailbox: Mailbox,
    clock: Clock,
    tally: Arc<Tally>,
    record: Mutex<ReceiverRecord>,
}

/// What a receiver recorded.
struct ReceiverRecord {
    received: CounterSet,
    latency: Histogram<u64>,
    duplicates: u64,
    misrouted: u64,
    malformed: u64,
    ack_errors: u64,
    lost: bool,
    first_error: Option<String>,
}

impl Receiver {
    fn new(
        index: usize,
        client: RelayClient,
        mailbox: Mailbox,
        clock: Clock,
        tally: Arc<Tally>,
    ) -> anyhow::Result<Self> {
        let record = ReceiverRecord {
            received: CounterSet::default(),
            latency: latency_histogram()?,
            duplicates: 0,
            misrouted: 0,
            malformed: 0,
            ack_errors: 0,
            lost: false,
            first_error: None,
        };
        let index = u32::try_from(index).context("too many clients")?;
        Ok(Self {
            index,
            client,
            mailbox,
            clock,
            tally,
            record: Mutex::new(record),
        })
    }

    /// Takes deliveries and acknowledges each frame's envelopes at once,
    /// until `stop` turns true or the connection is lost.
    async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut acks = JoinSet::new();
        loop {
            let delivery = tokio::select! {
                biased;
                _ = stop.wait_for(|stop| *stop) => break,
                delivery = self.client.next_delivery() => delivery,
            };
            let Some(delivery) = delivery else {
                self.record
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .lost = true;
                break;
            };
            let seqs = self.take(&delivery);
            let receiver = Arc::clone(&self);
            acks.spawn(async move { receiver.ack(&seqs).await });
            while acks.len() > ACKS_IN_FLIGHT {
                acks.join_next().await;
            }
        }
        while acks.join_next().await.is_some() {}
    }

    /// Records a delivery's envelopes; returns their sequence numbers.
    fn take(&self, delivery: &Delivery) -> Vec<u64> {
        let now = self.clock.now();
        let mut record = self.record.lock().unwrap_or_else(PoisonError::into_inner);
        for envelope in &delivery.envelopes {
            match Probe::decode(&envelope.body) {
                Some(probe) if probe.sender == self.index => {
                    if !record.received.insert(probe.counter) {
                        record.duplicates += 1;
                        continue;
                    }
                    self.tally.delivered.fetch_add(1, Relaxed);
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
        delivery.envelopes.iter().map(|e| e.seq).collect()
    }

    /// Acknowledges (deletes) `seqs`.
    async fn ack(&self, seqs: &[u64]) {
        match self.client.ack(self.mailbox.id, seqs).await {
            Ok(deleted) => {
                self.tally.acked.fetch_add(u64::from(deleted), Relaxed);
                if self.clock.in_window(self.clock.now()) {
                    self.tally
                        .acked_in_window
                        .fetch_add(u64::from(deleted), Relaxed);
                }
            }
            Err(error) => {
                let mut record = self.record.lock().unwrap_or_else(PoisonError::into_inner);
                record.ack_errors += 1;
                record
                    .first_error
                    .get_or_insert_with(|| format!("ack: {error}"));
            }
        }
    }
}

/// Checks a plan before running it.
pub(crate) fn validate(plan: &ThroughputPlan) -> anyhow::Result<()> {
    if plan.clients == 0 {
        bail!("--clients must be at least 1");
    }
    if plan.duration.is_zero() {
        bail!("--duration must be longer than zero");
    }
    if let Pacing::Open { rate, .. } = plan.pacing
        && !(rate.is_finite() && rate > 0.0)
    {
        bail!("--rate must be a positive number of envelopes per second");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_loop_schedule_spreads_senders_evenly() {
        // 4 senders at 1,000/s in total: each sends every 4 ms, offset by 1 ms.
        let (rate, senders) = (1000.0, 4usize);
        let interval = senders as f64 * 1e9 / rate;
        let mut due: Vec<u64> = (0..senders as u32)
            .flat_map(|i| {
                let offset = f64::from(i) * 1e9 / rate;
                (0..3).map(move |k| scheduled_at(offset, interval, k))
            })
            .collect();
        due.sort_unstable();
        let expected: Vec<u64> = (0..12).map(|n| n * 1_000_000).collect();
        assert_eq!(due, expected);
    }

    #[test]
    fn validation_refuses_empty_or_endless_plans() {
        let plan = ThroughputPlan {
            clients: 1,
            body_bytes: 1024,
            warmup: Duration::ZERO,
            duration: Duration::from_secs(1),
            pacing: Pacing::Closed { in_flight: 8 },
            drain_timeout: Duration::from_secs(1),
            per_endpoint: 100,
            connect_concurrency: 10,
        };
        assert!(validate(&plan).is_ok());
        assert!(
            validate(&ThroughputPlan {
                clients: 0,
                ..plan.clone()
            })
            .is_err()
        );
        assert!(
            validate(&ThroughputPlan {
                duration: Duration::ZERO,
                ..plan.clone()
            })
            .is_err()
        );
        let nan = Pacing::Open {
            rate: f64::NAN,
            max_in_flight: 1,
        };
        assert!(
            validate(&ThroughputPlan {
                pacing: nan,
                ..plan.clone()
            })
            .is_err()
        );
        let open = Pacing::Open {
            rate: 100.0,
            max_in_flight: 1,
        };
        assert!(
            validate(&ThroughputPlan {
                pacing: open,
                ..plan
            })
            .is_ok()
        );
    }

    #[test]
    fn setup_failures_are_counted_and_the_first_reason_kept() {
        let results: Vec<anyhow::Result<u8>> = vec![
            Ok(1),
            Err(anyhow::anyhow!("refused")),
            Err(anyhow::anyhow!("x")),
        ];
        let error = all_or_first_error(results, "receivers").unwrap_err();
        let text = format!("{error:#}");
        assert!(text.contains("2 of 3 receivers"), "{text}");
        assert!(text.contains("refused"), "{text}");
        assert_eq!(
            all_or_first_error(vec![Ok(1u8), Ok(2)], "x").unwrap(),
            vec![1, 2]
        );
    }
}
