//! The idle-connections workload: open N connected, authenticated clients
//! that then sit idle (only QUIC keep-alives), and measure what they cost
//! the relay in memory.
//!
//! Each connection registers its own mailbox, which authenticates it, so
//! the memory per connection includes one mailbox's state in the relay.
//! Connections share a few UDP sockets (QUIC needs no file descriptor per
//! connection on either side) and use the default keep-alive intervals.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use hearth_client::RelayClient;

use crate::fleet::{EndpointPool, Mailbox, connect, run_bounded};
use crate::relay_process::{ProcessSample, RelayProcess};
use crate::report::{IdleReport, RunContext};

/// Opening progress is printed every this many connections, or every
/// tenth of the run if that is more.
const PROGRESS_STEP: usize = 1000;

/// What to run.
#[derive(Clone, Debug)]
pub(crate) struct IdlePlan {
    /// Connections to open.
    pub(crate) connections: usize,
    /// Connections per client UDP socket.
    pub(crate) per_endpoint: usize,
    /// Connections being opened at the same time.
    pub(crate) concurrency: usize,
    /// How long to hold them idle once all are up.
    pub(crate) hold: Duration,
}

/// Runs the workload against `relay`.
pub(crate) async fn run(
    plan: &IdlePlan,
    relay: &RelayProcess,
    context: RunContext,
) -> anyhow::Result<IdleReport> {
    if plan.connections == 0 {
        bail!("--connections must be at least 1");
    }
    let pool = Arc::new(EndpointPool::new(plan.connections, plan.per_endpoint)?);
    let address = relay.address().clone();
    // Let the relay settle after start-up before the baseline.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = relay.sample()?;
    eprintln!(
        "opening {} connections over {} UDP sockets, {} at a time…",
        plan.connections,
        pool.len(),
        plan.concurrency
    );
    let started = Instant::now();
    let progress_step = PROGRESS_STEP.max(plan.connections / 10);
    let results = run_bounded(
        plan.connections,
        plan.concurrency,
        |index| {
            let (address, pool) = (address.clone(), Arc::clone(&pool));
            async move {
                let client = connect(&address, &pool, index).await?;
                Mailbox::random().register(&client).await?;
                Ok(client)
            }
        },
        |done| {
            if done % progress_step == 0 {
                eprintln!(
                    "  {done} done after {:.1} s",
                    started.elapsed().as_secs_f64()
                );
            }
        },
    )
    .await;
    let open_seconds = started.elapsed().as_secs_f64();
    let (clients, failed, first_error) = split(results);
    let open = relay.sample()?;
    eprintln!(
        "{} open ({failed} failed); holding them idle for {:?}…",
        clients.len(),
        plan.hold
    );
    tokio::time::sleep(plan.hold).await;
    let after = relay.sample()?;
    let alive = clients
        .iter()
        .filter(|c| c.quinn_connection().close_reason().is_none())
        .count();
    for (reason, count) in close_reasons(&clients) {
        eprintln!("  {count} closed during the run: {reason}");
    }
    let bench = ProcessSample::of_self()?;

    let mut report = IdleReport {
        benchmark: "idle".into(),
        context,
        connections_requested: plan.connections,
        connections_open: clients.len(),
        connections_failed: failed,
        client_sockets: pool.len(),
        open_seconds,
        connections_per_second: clients.len() as f64 / open_seconds.max(1e-9),
        hold_seconds: plan.hold.as_secs_f64(),
        connections_alive_after_hold: alive,
        relay_rss_bytes_before: 0,
        relay_rss_bytes_open: 0,
        relay_rss_bytes_after: 0,
        relay_peak_rss_bytes: 0,
        relay_rss_bytes_per_connection: 0.0,
        relay_cpu_seconds_opening: 0.0,
        relay_cpu_utilisation_idle: 0.0,
        load_generator_rss_bytes: bench.rss_bytes,
        first_error,
    };
    report.set_relay_samples(&before, &open, &after);
    drop(clients);
    pool.close(Duration::from_secs(3)).await;
    Ok(report)
}

/// Why connections closed, and how many for each reason, most common first.
fn close_reasons(clients: &[RelayClient]) -> Vec<(String, usize)> {
    let mut reasons = std::collections::HashMap::<String, usize>::new();
    for client in clients {
        if let Some(reason) = client.quinn_connection().close_reason() {
            *reasons.entry(reason.to_string()).or_default() += 1;
        }
    }
    let mut reasons: Vec<_> = reasons.into_iter().collect();
    reasons.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    reasons
}

/// The clients that opened, how many failed, and the first failure.
fn split(results: Vec<anyhow::Result<RelayClient>>) -> (Vec<RelayClient>, usize, Option<String>) {
    let mut clients = Vec::with_capacity(results.len());
    let mut failed = 0;
    let mut first_error = None;
    for result in results {
        match result {
            Ok(client) => clients.push(client),
            Err(error) => {
                failed += 1;
                first_error.get_or_insert_with(|| format!("{error:#}"));
            }
        }
    }
    (clients, failed, first_error)
}
