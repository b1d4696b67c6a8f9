//! A backlog, for any [`Peer`]: every mailbox is created (its owner
//! connects once and leaves), senders store `envelopes` spread evenly over
//! them, and later every owner connects at once and takes what waited.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tokio::task::JoinSet;

use super::drive::connect_all;
use super::peer::{Peer, PeerReceiver, PeerSender, Topology};
use crate::fleet::run_bounded;
use crate::probe::{CounterSet, Probe};

/// Sends each sender keeps in flight while filling.
const FILL_IN_FLIGHT: usize = 8;

/// How big a backlog, and how to build and drain it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BacklogPlan {
    /// Mailboxes holding it.
    pub(crate) mailboxes: usize,
    /// Envelopes per mailbox.
    pub(crate) per_mailbox: u64,
    /// Body bytes per envelope.
    pub(crate) body_bytes: usize,
    /// Connections opened (and senders sending) at the same time.
    pub(crate) concurrency: usize,
    /// How long the drain may take.
    pub(crate) drain_timeout: Duration,
}

impl BacklogPlan {
    /// The topology: one sender per mailbox.
    pub(crate) fn topology(&self) -> Topology {
        Topology {
            groups: self.mailboxes,
            fanout: 1,
        }
    }

    /// Envelopes in all.
    pub(crate) fn envelopes(&self) -> u64 {
        self.mailboxes as u64 * self.per_mailbox
    }
}

/// Creates every mailbox on a prepared `peer`: each owner connects once
/// and leaves.
pub(crate) async fn create_mailboxes<P: Peer + 'static>(
    peer: &Arc<P>,
    plan: &BacklogPlan,
) -> anyhow::Result<()> {
    let peer = Arc::clone(peer);
    connect_all(plan.mailboxes, plan.concurrency, move |mailbox| {
        let peer = Arc::clone(&peer);
        async move { peer.connect_receiver(mailbox).await.map(drop) }
    })
    .await
    .context("creating mailboxes")?;
    Ok(())
}

/// Stores the backlog: `per_mailbox` envelopes to each mailbox, each
/// acknowledged as usual. Returns the seconds it took.
pub(crate) async fn fill<P: Peer + 'static>(
    peer: &Arc<P>,
    plan: &BacklogPlan,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let stored = Arc::new(AtomicU64::new(0));
    let padding: Arc<[u8]> = (0..plan.body_bytes).map(|_| rand::random()).collect();
    let total = plan.envelopes();
    let step = (plan.mailboxes / 10).max(1);
    let results = run_bounded(
        plan.mailboxes,
        plan.concurrency,
        |group| {
            let (peer, stored, padding) =
                (Arc::clone(peer), Arc::clone(&stored), Arc::clone(&padding));
            let per_mailbox = plan.per_mailbox;
            async move {
                let sender = Arc::new(peer.connect_sender(group).await?);
                let next = Arc::new(AtomicU64::new(0));
                let mut workers = JoinSet::new();
                for _ in 0..FILL_IN_FLIGHT {
                    let (sender, next, stored, padding) = (
                        Arc::clone(&sender),
                        Arc::clone(&next),
                        Arc::clone(&stored),
                        Arc::clone(&padding),
                    );
                    workers.spawn(async move {
                        loop {
                            let counter = next.fetch_add(1, Relaxed);
                            if counter >= per_mailbox {
                                return anyhow::Ok(());
                            }
                            let probe = Probe {
                                sent_at: 0,
                                sender: u32::try_from(group)?,
                                counter,
                            };
                            sender.send(counter, probe.encode(&padding)).await?;
                            stored.fetch_add(1, Relaxed);
                        }
                    });
                }
                while let Some(done) = workers.join_next().await {
                    done.context("a sending task failed")??;
                }
                Ok(())
            }
        },
        |done| {
            if done % step == 0 {
                eprintln!(
                    "    stored {} of {total} after {:.1} s",
                    stored.load(Relaxed),
                    started.elapsed().as_secs_f64()
                );
            }
        },
    )
    .await;
    if let Some(error) = results.into_iter().find_map(Result::err) {
        return Err(error.context("filling the backlog"));
    }
    Ok(started.elapsed().as_secs_f64())
}

/// What a drain measured.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Drained {
    /// Seconds from the first connection attempt to the last delivery.
    pub(crate) seconds: f64,
    /// Distinct envelopes delivered.
    pub(crate) delivered: u64,
    /// Envelopes never delivered.
    pub(crate) missing: u64,
}

/// An owner already connected, and what it took so far.
pub(crate) struct Connected<R> {
    /// Its mailbox.
    pub(crate) mailbox: usize,
    /// Its connection.
    pub(crate) receiver: R,
    /// The envelopes it took.
    pub(crate) seen: CounterSet,
}

/// Connects every owner at once and waits until each took its
/// `per_mailbox` envelopes; `connected` owners take part too.
pub(crate) async fn drain<P: Peer + 'static>(
    peer: &Arc<P>,
    plan: &BacklogPlan,
    connected: Vec<Connected<P::Receiver>>,
) -> anyhow::Result<Drained> {
    let started = Instant::now();
    let delivered = Arc::new(AtomicU64::new(0));
    let mut draining = JoinSet::new();
    let already: Vec<usize> = connected.iter().map(|c| c.mailbox).collect();
    for owner in connected {
        delivered.fetch_add(owner.seen.len(), Relaxed);
        draining.spawn(take_all(
            owner.receiver,
            owner.mailbox,
            plan.per_mailbox,
            owner.seen,
            Arc::clone(&delivered),
        ));
    }
    let rest: Vec<usize> = (0..plan.mailboxes)
        .filter(|m| !already.contains(m))
        .collect();
    let per_mailbox = plan.per_mailbox;
    let results = {
        let (peer, delivered, rest) = (Arc::clone(peer), Arc::clone(&delivered), Arc::new(rest));
        run_bounded(
            rest.len(),
            plan.concurrency,
            move |i| {
                let (peer, delivered, mailbox) =
                    (Arc::clone(&peer), Arc::clone(&delivered), rest[i]);
                async move {
                    let receiver = peer.connect_receiver(mailbox).await?;
                    let seen = CounterSet::default();
                    Ok(tokio::spawn(take_all(
                        receiver,
                        mailbox,
                        per_mailbox,
                        seen,
                        delivered,
                    )))
                }
            },
            |_| {},
        )
    };
    let joined = tokio::time::timeout(plan.drain_timeout, async {
        let mut handles = Vec::new();
        for result in results.await {
            handles.push(result?);
        }
        let mut missing = 0;
        for handle in handles {
            missing += handle.await.context("a drain task failed")??;
        }
        while let Some(done) = draining.join_next().await {
            missing += done.context("a drain task failed")??;
        }
        anyhow::Ok(missing)
    })
    .await;
    let seconds = started.elapsed().as_secs_f64();
    let Ok(missing) = joined else {
        bail!(
            "the drain did not finish within {:?}: {} of {} delivered",
            plan.drain_timeout,
            delivered.load(Relaxed),
            plan.envelopes()
        );
    };
    Ok(Drained {
        seconds,
        delivered: delivered.load(Relaxed),
        missing: missing?,
    })
}

/// Takes and acknowledges `expected` distinct envelopes; returns how many
/// of them never came (0 unless the connection was lost).
async fn take_all<R: PeerReceiver>(
    mut receiver: R,
    mailbox: usize,
    expected: u64,
    mut seen: CounterSet,
    delivered: Arc<AtomicU64>,
) -> anyhow::Result<u64> {
    while seen.len() < expected {
        if !take_batch(&mut receiver, mailbox, &mut seen, &delivered).await? {
            break;
        }
    }
    Ok(expected.saturating_sub(seen.len()))
}

/// Takes one batch of `mailbox`'s envelopes into `seen` and acknowledges
/// it; `false` once the connection is gone.
pub(crate) async fn take_batch<R: PeerReceiver>(
    receiver: &mut R,
    mailbox: usize,
    seen: &mut CounterSet,
    delivered: &AtomicU64,
) -> anyhow::Result<bool> {
    let Some(bodies) = receiver.receive().await? else {
        return Ok(false);
    };
    for body in &bodies {
        match Probe::decode(body) {
            Some(probe) if probe.sender as usize == mailbox => {
                if seen.insert(probe.counter) {
                    delivered.fetch_add(1, Relaxed);
                }
            }
            _ => bail!("mailbox {mailbox} got an envelope that is not its own"),
        }
    }
    receiver.ack().await?;
    Ok(true)
}
