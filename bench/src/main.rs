//! `hearth-bench`: a load generator for the Hearth relay.
//!
//! It starts the real `hearth-relay` binary on a loopback port with a fresh
//! data folder, drives it with real QUIC clients (the `hearth-client`
//! SDK), samples the relay process's CPU time and memory from `/proc`, and
//! prints a table (and, with `--json FILE`, the same numbers as JSON).
//!
//! ```text
//! cargo build --release -p hearth-relay -p hearth-bench
//! target/release/hearth-bench throughput --clients 100 --size 1024 --duration 20s --warmup 5s
//! target/release/hearth-bench throughput --clients 100 --rate 5000 --json open-loop.json
//! target/release/hearth-bench idle --connections 10000
//! target/release/hearth-bench compare --out docs/bench
//! ```
//!
//! `compare` runs the same workloads against the relay and against the
//! local Mosquitto, NATS JetStream, Redis and PostgreSQL (see
//! `docs/BENCHMARKS.md`).
//!
//! All traffic goes to 127.0.0.1 and every phase is bounded in time.
#![forbid(unsafe_code)]

mod compare;
mod fleet;
mod idle;
mod probe;
mod relay_process;
mod report;
mod workload;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Args, Parser, Subcommand};

use crate::relay_process::{RelayProcess, RelaySettings, default_relay_binary, filesystem_type};
use crate::report::{RunContext, ThroughputReport, write_json};
use crate::workload::{Pacing, ThroughputPlan};

/// The relay refuses connections beyond this by default (`max_connections`).
const RELAY_DEFAULT_MAX_CONNECTIONS: usize = 20_000;

/// The relay refuses connections from one address beyond this by default
/// (`max_connections_per_ip`); every benchmark client comes from 127.0.0.1.
const RELAY_DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 256;

/// Extra time allowed beyond a run's phases for setting up and tearing
/// down; past it the benchmark gives up.
const SETUP_BUDGET: Duration = Duration::from_secs(15 * 60);

/// Load generator for the Hearth relay.
#[derive(Debug, Parser)]
#[command(name = "hearth-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    benchmark: Benchmark,
}

/// The benchmarks.
#[derive(Debug, Subcommand)]
enum Benchmark {
    /// Sustained send → fsync → deliver → ack throughput and latency.
    Throughput(ThroughputArgs),
    /// Memory cost of many idle, authenticated connections.
    Idle(IdleArgs),
    /// The relay beside Mosquitto, NATS JetStream, Redis and PostgreSQL:
    /// the same workloads, in one run; writes JSON, tables and charts.
    Compare(Box<compare::CompareArgs>),
}

/// Options every benchmark shares.
#[derive(Debug, Args)]
struct CommonArgs {
    /// The relay binary [default: `hearth-relay` beside this executable].
    #[arg(long, value_name = "PATH")]
    relay_bin: Option<PathBuf>,
    /// Folder for the relay's temporary data folder [default: the system's
    /// temporary folder]. Put it on the disk you want to measure: fsync is
    /// free on tmpfs.
    #[arg(long, value_name = "DIR")]
    data_parent: Option<PathBuf>,
    /// The relay's log filter.
    #[arg(long, value_name = "FILTER", default_value = "warn")]
    relay_log: String,
    /// Extra relay setting as `HEARTH_<KEY>=VALUE` (repeatable; overrides
    /// the benchmark's own).
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_env_pair)]
    relay_env: Vec<(String, String)>,
    /// Also write the results as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

/// Options of `throughput`.
#[derive(Debug, Args)]
struct ThroughputArgs {
    /// Sender clients; as many receiver clients each own one mailbox.
    #[arg(long, default_value_t = 100)]
    clients: usize,
    /// Body size of each envelope in bytes (at least 20).
    #[arg(long, default_value_t = 1024)]
    size: usize,
    /// Length of the measured phase.
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Warm-up before it (sent and delivered, not counted).
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// Open loop: envelopes per second, all senders together, on a fixed
    /// schedule (latency counted from the scheduled time). Closed loop
    /// when absent.
    #[arg(long, value_name = "N")]
    rate: Option<f64>,
    /// Closed loop: sends each sender keeps in flight. Open loop: the most
    /// it may have in flight (later sends wait, and the wait is latency).
    #[arg(long, value_name = "K")]
    in_flight: Option<usize>,
    #[command(flatten)]
    connect: ClientArgs,
    #[command(flatten)]
    common: CommonArgs,
}

/// How the load generator's clients connect and wait, shared by
/// `throughput` and `compare`.
#[derive(Debug, Args)]
struct ClientArgs {
    /// How long to wait after the last send for the last deliveries.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    drain_timeout: Duration,
    /// Hearth client connections per UDP socket.
    #[arg(long, default_value_t = 100)]
    per_socket: usize,
}

/// Options of `idle`.
#[derive(Debug, Args)]
struct IdleArgs {
    /// Connections to open (each registers and authenticates a mailbox).
    #[arg(long, default_value_t = 10_000)]
    connections: usize,
    /// Client connections per UDP socket.
    #[arg(long, default_value_t = 1000)]
    per_socket: usize,
    /// Connections being opened at the same time.
    #[arg(long, default_value_t = 200)]
    concurrency: usize,
    /// How long to hold them idle once all are up (the relay's keep-alive
    /// is 12 s, the client's 10 s).
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    hold: Duration,
    #[command(flatten)]
    common: CommonArgs,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.benchmark {
        Benchmark::Throughput(args) => throughput(args).await,
        Benchmark::Idle(args) => idle(args).await,
        Benchmark::Compare(args) => compare::run(*args).await.map(|()| ExitCode::SUCCESS),
    };
    outcome.unwrap_or_else(|error| {
        eprintln!("hearth-bench: {error:#}");
        ExitCode::FAILURE
    })
}

/// Runs `throughput`; fails (exit 1) if the delivery check fails.
async fn throughput(args: ThroughputArgs) -> anyhow::Result<ExitCode> {
    if args.size < probe::PROBE_LEN {
        bail!(
            "--size must be at least {} bytes (the probe)",
            probe::PROBE_LEN
        );
    }
    let pacing = match args.rate {
        None => Pacing::Closed {
            in_flight: args.in_flight.unwrap_or(8),
        },
        Some(rate) => Pacing::Open {
            rate,
            max_in_flight: args.in_flight.unwrap_or(128),
        },
    };
    let plan = ThroughputPlan {
        clients: args.clients,
        body_bytes: args.size,
        warmup: args.warmup,
        duration: args.duration,
        pacing,
        drain_timeout: args.connect.drain_timeout,
        per_endpoint: args.connect.per_socket,
        connect_concurrency: 50,
    };
    workload::validate(&plan)?;
    let env = relay_env(&args.common, args.clients * 2, &THROUGHPUT_LIMITS);
    let budget = args.warmup + args.duration + args.connect.drain_timeout + SETUP_BUDGET;
    let (context, relay) = start_relay(&args.common, env).await?;
    let outcome = tokio::time::timeout(budget, workload::run(&plan, &relay)).await;
    let stopped = relay.stop().await;
    let measurements = outcome
        .map_err(|_| anyhow::anyhow!("the benchmark did not finish within {budget:?}"))??;
    let report = ThroughputReport::new(context, &plan, measurements);
    println!("{report}");
    finish(&args.common, &report, stopped)?;
    let passed = report.check.exactly_once && report.check.all_acked;
    Ok(if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Runs `idle`; fails (exit 1) if any connection failed to open.
async fn idle(args: IdleArgs) -> anyhow::Result<ExitCode> {
    let plan = idle::IdlePlan {
        connections: args.connections,
        per_endpoint: args.per_socket,
        concurrency: args.concurrency,
        hold: args.hold,
    };
    let env = relay_env(&args.common, args.connections, &[]);
    let budget = args.hold + SETUP_BUDGET;
    let (context, relay) = start_relay(&args.common, env).await?;
    let outcome = tokio::time::timeout(budget, idle::run(&plan, &relay, context)).await;
    let stopped = relay.stop().await;
    let report = outcome
        .map_err(|_| anyhow::anyhow!("the benchmark did not finish within {budget:?}"))??;
    println!("{report}");
    finish(&args.common, &report, stopped)?;
    let passed = report.connections_failed == 0
        && report.connections_alive_after_hold == report.connections_open;
    Ok(if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Limits raised for throughput runs, so the relay's per-connection rate
/// limit and mailbox quotas do not throttle the load.
const THROUGHPUT_LIMITS: [(&str, &str); 4] = [
    ("HEARTH_LIMITS_RATE_LIMIT", "1000000/s"),
    ("HEARTH_LIMITS_RATE_LIMIT_BURST", "1000000"),
    ("HEARTH_LIMITS_MAILBOX_MAX_ENVELOPES", "4000000000"),
    ("HEARTH_LIMITS_MAILBOX_MAX_BYTES", "1099511627776"),
];

/// The relay's `HEARTH_*` settings: the log filter, the benchmark's limits,
/// connection caps (total and per address) above `connections` where the
/// defaults are too low, then the user's `--relay-env` pairs.
fn relay_env(
    common: &CommonArgs,
    connections: usize,
    limits: &[(&str, &str)],
) -> Vec<(String, String)> {
    let mut env = vec![("HEARTH_LOG".to_owned(), common.relay_log.clone())];
    env.extend(
        limits
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    // Leave room for a few connections of others (e.g. an operator's).
    let needed = connections + 100;
    if needed > RELAY_DEFAULT_MAX_CONNECTIONS {
        env.push(("HEARTH_MAX_CONNECTIONS".to_owned(), needed.to_string()));
    }
    if needed > RELAY_DEFAULT_MAX_CONNECTIONS_PER_IP {
        env.push((
            "HEARTH_MAX_CONNECTIONS_PER_IP".to_owned(),
            needed.to_string(),
        ));
    }
    env.extend(common.relay_env.iter().cloned());
    env
}

/// Starts the relay and describes the run's setting.
async fn start_relay(
    common: &CommonArgs,
    env: Vec<(String, String)>,
) -> anyhow::Result<(RunContext, RelayProcess)> {
    let binary = common
        .relay_bin
        .clone()
        .unwrap_or_else(default_relay_binary);
    let settings = RelaySettings {
        binary: binary.clone(),
        data_parent: common.data_parent.clone(),
        env,
    };
    eprintln!("starting {}…", binary.display());
    let relay = RelayProcess::start(&settings).await?;
    let context = RunContext {
        relay_binary: binary.display().to_string(),
        data_dir_filesystem: filesystem_type(relay.data_dir()),
        relay_env: settings
            .env
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect(),
    };
    eprintln!(
        "relay listening on {} (data on {})",
        relay.address(),
        context.data_dir_filesystem.as_deref().unwrap_or("?")
    );
    if context.data_dir_filesystem.as_deref() == Some("tmpfs") {
        eprintln!(
            "warning: the relay's data is on tmpfs, where fsync costs nothing; use --data-parent"
        );
    }
    Ok((context, relay))
}

/// Writes the JSON file if asked, and reports a relay that did not stop
/// cleanly (after the results, which stand).
fn finish(
    common: &CommonArgs,
    report: &impl serde::Serialize,
    stopped: anyhow::Result<()>,
) -> anyhow::Result<()> {
    if let Some(path) = &common.json {
        write_json(path, report)?;
        eprintln!("wrote {}", path.display());
    }
    stopped.context("stopping the relay")
}

/// Parses `KEY=VALUE`.
fn parse_env_pair(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if key.starts_with("HEARTH_") => Ok((key.to_owned(), value.to_owned())),
        _ => Err("expected HEARTH_<KEY>=VALUE".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn common(relay_env: Vec<(String, String)>) -> CommonArgs {
        CommonArgs {
            relay_bin: None,
            data_parent: None,
            relay_log: "warn".into(),
            relay_env,
            json: None,
        }
    }

    #[test]
    fn relay_env_raises_the_connection_cap_only_when_needed() {
        let few = relay_env(&common(vec![]), 500, &[]);
        assert!(!few.iter().any(|(k, _)| k == "HEARTH_MAX_CONNECTIONS"));
        let many = relay_env(&common(vec![]), 30_000, &[]);
        assert!(many.contains(&("HEARTH_MAX_CONNECTIONS".into(), "30100".into())));
    }

    #[test]
    fn relay_env_raises_the_per_address_cap_for_more_than_it_allows() {
        let key = "HEARTH_MAX_CONNECTIONS_PER_IP";
        let few = relay_env(&common(vec![]), 100, &[]);
        assert!(!few.iter().any(|(k, _)| k == key));
        let many = relay_env(&common(vec![]), 100_000, &[]);
        assert!(many.contains(&(key.into(), "100100".into())));
        assert!(many.contains(&("HEARTH_MAX_CONNECTIONS".into(), "100100".into())));
    }

    #[test]
    fn user_settings_come_last_so_they_win() {
        let user = vec![("HEARTH_LIMITS_RATE_LIMIT".to_owned(), "10/s".to_owned())];
        let env = relay_env(&common(user), 10, &THROUGHPUT_LIMITS);
        let last = env
            .iter()
            .rev()
            .find(|(k, _)| k == "HEARTH_LIMITS_RATE_LIMIT")
            .unwrap();
        assert_eq!(last.1, "10/s");
        assert_eq!(env[0], ("HEARTH_LOG".into(), "warn".into()));
    }

    #[test]
    fn env_pairs_must_be_hearth_settings() {
        assert_eq!(
            parse_env_pair("HEARTH_GSO=off"),
            Ok(("HEARTH_GSO".into(), "off".into()))
        );
        assert!(parse_env_pair("PATH=/bin").is_err());
        assert!(parse_env_pair("HEARTH_GSO").is_err());
    }

    #[test]
    fn cli_parses_both_benchmarks() {
        let cli = Cli::try_parse_from([
            "hearth-bench",
            "throughput",
            "--clients",
            "10",
            "--duration",
            "3s",
            "--rate",
            "500",
        ])
        .unwrap();
        let Benchmark::Throughput(args) = cli.benchmark else {
            panic!("not throughput")
        };
        assert_eq!(
            (args.clients, args.duration, args.rate),
            (10, Duration::from_secs(3), Some(500.0))
        );
        assert_eq!(args.warmup, Duration::from_secs(5));
        let cli = Cli::try_parse_from([
            "hearth-bench",
            "idle",
            "--connections",
            "500",
            "--json",
            "x.json",
        ])
        .unwrap();
        let Benchmark::Idle(args) = cli.benchmark else {
            panic!("not idle")
        };
        assert_eq!(args.connections, 500);
        assert_eq!(args.common.json, Some(PathBuf::from("x.json")));
    }
}
