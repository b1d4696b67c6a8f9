//! Workloads 3–5 on the relay alone: a backlog of envelopes in many
//! mailboxes, a restart with it stored (time to the first delivery), the
//! drain when every recipient connects, and idle connections (the `idle`
//! benchmark's machinery).
//!
//! The peers are not run here: a backlog in 10,000 mailboxes needs 10,000
//! recipient connections, beyond this PostgreSQL's 100 and Redis's 10,000
//! (`maxclients`), and Mosquitto keeps at most 1,000 queued messages per
//! offline client by default.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use super::backlog::{self, BacklogPlan, Connected};
use super::hearth::HearthPeer;
use super::peer::Peer as _;
use super::results::{BacklogRun, Results};
use super::{CompareArgs, Workload};
use crate::idle::{self, IdlePlan};
use crate::probe::CounterSet;
use crate::report::IdleReport;
use crate::{THROUGHPUT_LIMITS, relay_env, start_relay};

/// Longest a backlog run may take.
const BACKLOG_BUDGET: Duration = Duration::from_secs(30 * 60);

/// Runs the relay-only workloads asked for, adding their results.
pub(super) async fn run(args: &CompareArgs, run: usize, results: &mut Results) {
    if args.workloads.contains(&Workload::Backlog) {
        eprintln!(
            "  backlog of {} envelopes in {} mailboxes, restart, drain: Hearth relay…",
            args.backlog, args.mailboxes
        );
        let outcome = tokio::time::timeout(BACKLOG_BUDGET, backlog_run(args, run)).await;
        let row = match outcome {
            Ok(Ok(row)) => row,
            Ok(Err(error)) => failed(run, format!("{error:#}")),
            Err(_) => failed(run, format!("did not finish within {BACKLOG_BUDGET:?}")),
        };
        eprintln!(
            "    filled in {:.1} s; restart: listening after {:.2} s, first delivery after {:.2} s; \
             drained {} in {:.1} s = {:.0}/s{}",
            row.fill_seconds,
            row.restart_listening_seconds,
            row.restart_first_delivery_seconds,
            row.delivered,
            row.drain_seconds,
            row.drain_per_second,
            row.first_error
                .as_deref()
                .map(|e| format!("; error: {e}"))
                .unwrap_or_default()
        );
        results.backlog.push(row);
    }
    if args.workloads.contains(&Workload::Idle) {
        eprintln!(
            "  {} idle connections: Hearth relay…",
            args.idle_connections
        );
        match idle_run(args).await {
            Ok(report) => {
                eprintln!(
                    "    {:.1} KiB per connection",
                    report.relay_rss_bytes_per_connection / 1024.0
                );
                results.idle.push(report);
            }
            Err(error) => eprintln!("    failed: {error:#}"),
        }
    }
}

/// A backlog row that only carries an error.
fn failed(run: usize, error: String) -> BacklogRun {
    BacklogRun {
        run,
        first_error: Some(error),
        ..BacklogRun::default()
    }
}

/// Fills, restarts and drains a fresh relay.
async fn backlog_run(args: &CompareArgs, run: usize) -> anyhow::Result<BacklogRun> {
    let mailboxes = args.mailboxes.max(1);
    let plan = BacklogPlan {
        mailboxes,
        per_mailbox: (args.backlog / mailboxes as u64).max(1),
        body_bytes: args.size,
        concurrency: 200,
        drain_timeout: Duration::from_secs(15 * 60),
    };
    let env = relay_env(
        &args.common,
        mailboxes + plan.concurrency,
        &THROUGHPUT_LIMITS,
    );
    let (_, relay) = start_relay(&args.common, env).await?;
    let peer = Arc::new(HearthPeer::new(
        relay.address().clone(),
        args.connect.per_socket,
    ));
    peer.prepare(plan.topology()).await?;
    backlog::create_mailboxes(&peer, &plan).await?;
    let fill_seconds = backlog::fill(&peer, &plan).await?;

    eprintln!(
        "    restarting the relay with {} envelopes stored…",
        plan.envelopes()
    );
    let (relay, started) = relay.restart().await?;
    let listening = started.elapsed().as_secs_f64();
    let mut first = peer.connect_receiver(0).await?;
    let mut seen = CounterSet::default();
    backlog::take_batch(&mut first, 0, &mut seen, &AtomicU64::new(0)).await?;
    let first_delivery = started.elapsed().as_secs_f64();
    let after_restart = relay.sample()?;

    let connected = vec![Connected {
        mailbox: 0,
        receiver: first,
        seen,
    }];
    let drained = backlog::drain(&peer, &plan, connected).await;
    let after_drain = relay.sample()?;
    peer.cleanup().await?;
    let stopped = relay.stop().await;
    let drained = drained?;
    stopped?;
    Ok(BacklogRun {
        run,
        mailboxes,
        envelopes: plan.envelopes(),
        fill_seconds,
        restart_listening_seconds: listening,
        restart_first_delivery_seconds: first_delivery,
        rss_bytes_after_restart: after_restart.rss_bytes,
        drain_seconds: drained.seconds,
        drain_per_second: drained.delivered as f64 / drained.seconds.max(1e-9),
        delivered: drained.delivered,
        missing: drained.missing,
        relay_cpu_ms_per_envelope: after_drain.cpu_since(&after_restart) * 1e3
            / drained.delivered.max(1) as f64,
        relay_peak_rss_bytes: after_drain.peak_rss_bytes,
        first_error: None,
    })
}

/// Opens the idle connections on a fresh relay.
async fn idle_run(args: &CompareArgs) -> anyhow::Result<IdleReport> {
    let plan = IdlePlan {
        connections: args.idle_connections,
        per_endpoint: 1000,
        concurrency: 200,
        hold: Duration::from_secs(15),
    };
    let env = relay_env(&args.common, plan.connections, &[]);
    let (context, relay) = start_relay(&args.common, env).await?;
    let report = idle::run(&plan, &relay, context).await;
    let stopped = relay.stop().await;
    let report = report?;
    stopped?;
    Ok(report)
}
