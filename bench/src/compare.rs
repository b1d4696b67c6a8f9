//! `hearth-bench compare`: the same workloads against the Hearth relay
//! and against the local Mosquitto, NATS JetStream, Redis Streams and
//! PostgreSQL, in one run, each row stating whether an acknowledged
//! message had been fsynced and whether its transport is encrypted. Every
//! peer that speaks TLS also gets a TLS row, run on a private instance
//! this tool starts with a certificate it makes ([`private`]). Systems
//! that cannot be reached (or whose server binary is missing) are skipped
//! with the reason. Results go to `results.json`, `summary.md` and SVG
//! charts in the output folder.

mod backlog;
mod charts;
pub(crate) mod drive;
pub(crate) mod hearth;
mod mqtt;
mod nats;
pub(crate) mod peer;
mod postgres;
mod private;
mod redis;
mod relay_only;
mod results;
pub(crate) mod server;
mod tables;
mod tls;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, ValueEnum};

use self::drive::{Outcome, Scenario};
use self::hearth::HearthPeer;
use self::mqtt::{Broker, MqttPeer};
use self::nats::NatsPeer;
use self::peer::{Durability, Peer, Topology, Transport};
use self::postgres::{Database, PostgresPeer};
use self::private::{Instance, Kind};
use self::redis::{Fsync, RedisPeer};
use self::results::{Results, Row, RowLabel, Setting, Skipped};
use self::server::ServerProbe;
use self::tls::PostgresTls;
use crate::workload::Pacing;
use crate::{ClientArgs, CommonArgs, THROUGHPUT_LIMITS, relay_env, start_relay};

/// Longest a single row may take beyond its phases.
const ROW_BUDGET: Duration = Duration::from_secs(5 * 60);

/// Options of `compare`.
#[derive(Debug, Args)]
pub(crate) struct CompareArgs {
    /// Folder for `results.json`, `summary.md` and the charts.
    #[arg(long, value_name = "DIR", default_value = "docs/bench")]
    out: PathBuf,
    /// A short smoke run: 1 run, 3 s phases, small backlog and idle counts.
    #[arg(long)]
    quick: bool,
    /// Measure nothing: rewrite `summary.md` and the charts from the
    /// `results.json` already in `--out`.
    #[arg(long)]
    render_only: bool,
    /// Runs of every workload (medians with min–max are reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Systems to compare.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = System::ALL)]
    systems: Vec<System>,
    /// Workloads to run.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = Workload::ALL)]
    workloads: Vec<Workload>,
    /// 1:1 check-ins: senders, each to its own recipient.
    #[arg(long, default_value_t = 100)]
    senders: usize,
    /// Body bytes per message.
    #[arg(long, default_value_t = 1024)]
    size: usize,
    /// Measured phase of each row.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Warm-up before it.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// Closed loop: sends each sender keeps in flight.
    #[arg(long, default_value_t = 8)]
    in_flight: usize,
    /// Open-loop rates (messages per second, all senders together).
    #[arg(long, value_delimiter = ',', default_values_t = [1000.0, 5000.0])]
    rates: Vec<f64>,
    /// Circle fan-out: members per circle.
    #[arg(long, default_value_t = 30)]
    members: usize,
    /// Circle fan-out: sends the one sender keeps in flight.
    #[arg(long, default_value_t = 16)]
    circle_in_flight: usize,
    /// Backlog: envelopes waiting in all.
    #[arg(long, default_value_t = 1_000_000)]
    backlog: u64,
    /// Backlog: mailboxes they wait in.
    #[arg(long, default_value_t = 10_000)]
    mailboxes: usize,
    /// Idle: connected clients.
    #[arg(long, default_value_t = 10_000)]
    idle_connections: usize,
    #[command(flatten)]
    connect: ClientArgs,
    #[command(flatten)]
    common: CommonArgs,
}

impl CompareArgs {
    /// Applies `--quick`.
    fn settle(mut self) -> Self {
        if self.quick {
            self.runs = 1;
            self.duration = Duration::from_secs(3);
            self.warmup = Duration::from_secs(1);
            self.rates = vec![1000.0];
            self.backlog = 20_000;
            self.mailboxes = 200;
            self.idle_connections = 500;
        }
        self
    }
}

/// A system under comparison. The `-tls` rows run on a private instance
/// of the server, started by this tool for the row with a certificate it
/// makes; their clients pin that certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum System {
    /// The Hearth relay (started by this tool; QUIC, TLS 1.3).
    Hearth,
    /// Mosquitto, MQTT QoS 1, persistent sessions (the local broker,
    /// plaintext TCP).
    Mqtt,
    /// Mosquitto as `mqtt`, on a private broker's TLS listener.
    #[value(alias = "mosquitto-tls")]
    MqttTls,
    /// NATS JetStream, file storage (the local server, plaintext TCP).
    Nats,
    /// NATS JetStream as `nats`, on a private server requiring TLS.
    NatsTls,
    /// Redis Streams, AOF with `appendfsync always` (the local server,
    /// plaintext TCP).
    RedisAlways,
    /// Redis Streams as `redis-always`, on a private server's `tls-port`.
    RedisAlwaysTls,
    /// Redis Streams, AOF with `appendfsync everysec` (the local server,
    /// plaintext TCP).
    RedisEverysec,
    /// PostgreSQL queue table, `synchronous_commit = on` (the local
    /// server, plaintext TCP).
    Postgres,
    /// PostgreSQL as `postgres`, on a private cluster with
    /// `sslmode=require`.
    PostgresTls,
}

impl System {
    /// Every system, Hearth first, each TLS row after its plaintext twin.
    const ALL: [Self; 10] = [
        Self::Hearth,
        Self::Mqtt,
        Self::MqttTls,
        Self::Nats,
        Self::NatsTls,
        Self::RedisAlways,
        Self::RedisAlwaysTls,
        Self::RedisEverysec,
        Self::Postgres,
        Self::PostgresTls,
    ];

    /// The name in tables and charts.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Hearth => "Hearth relay",
            Self::Mqtt => "Mosquitto (MQTT QoS 1)",
            Self::MqttTls => "Mosquitto (MQTT QoS 1, TLS)",
            Self::Nats => "NATS JetStream",
            Self::NatsTls => "NATS JetStream (TLS)",
            Self::RedisAlways => "Redis Streams (fsync always)",
            Self::RedisAlwaysTls => "Redis Streams (fsync always, TLS)",
            Self::RedisEverysec => "Redis Streams (fsync everysec)",
            Self::Postgres => "PostgreSQL (queue table)",
            Self::PostgresTls => "PostgreSQL (queue table, TLS)",
        }
    }

    fn durability(self) -> Durability {
        match self {
            Self::Hearth => hearth::durability(),
            Self::Mqtt | Self::MqttTls => mqtt::durability(),
            Self::Nats | Self::NatsTls => nats::durability(),
            Self::RedisAlways | Self::RedisAlwaysTls => Fsync::Always.durability(),
            Self::RedisEverysec => Fsync::EverySec.durability(),
            Self::Postgres | Self::PostgresTls => postgres::durability(),
        }
    }

    /// The private server a TLS row starts; `None` for the others.
    fn private_kind(self) -> Option<Kind> {
        match self {
            Self::MqttTls => Some(Kind::Mosquitto),
            Self::NatsTls => Some(Kind::Nats),
            Self::RedisAlwaysTls => Some(Kind::Redis),
            Self::PostgresTls => Some(Kind::Postgres),
            Self::Hearth
            | Self::Mqtt
            | Self::Nats
            | Self::RedisAlways
            | Self::RedisEverysec
            | Self::Postgres => None,
        }
    }

    /// Whether the local service answers (Hearth is started per row); for
    /// a TLS row, whether its server binary is installed (the instance is
    /// started per row).
    async fn reachable(self) -> anyhow::Result<()> {
        let check = async {
            if let Some(kind) = self.private_kind() {
                return kind.binaries().map(drop);
            }
            match self {
                Self::Mqtt => MqttPeer::reachable(&Broker::local()).await,
                Self::Nats => NatsPeer::reachable(&nats::Server::local()).await,
                Self::RedisAlways | Self::RedisEverysec => {
                    RedisPeer::reachable(&redis::local()?).await
                }
                Self::Postgres => PostgresPeer::reachable(&Database::local()).await,
                _ => Ok(()),
            }
        };
        tokio::time::timeout(Duration::from_secs(15), check)
            .await
            .context("no answer within 15 s")?
    }
}

/// The workloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Workload {
    /// 1:1 check-ins at maximum rate and at the open-loop `--rates`.
    CheckIns,
    /// One sender to a circle of `--members`, beside the same sender 1:1.
    Circle,
    /// Hearth: a backlog in many mailboxes, a restart, then every
    /// recipient connects.
    Backlog,
    /// Hearth: idle connected clients, relay memory per connection.
    Idle,
}

impl Workload {
    /// Every workload.
    const ALL: [Self; 4] = [Self::CheckIns, Self::Circle, Self::Backlog, Self::Idle];
}

/// Runs `compare`.
pub(crate) async fn run(args: CompareArgs) -> anyhow::Result<()> {
    let args = args.settle();
    if args.render_only {
        let path = args.out.join("results.json");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let mut results: Results =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        return write(&args, &mut results);
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let load_average_start = results::load_averages();
    let (systems, skipped) = reachable_systems(&args.systems).await;
    let mut results = Results {
        setting: Setting {
            command: std::env::args().collect::<Vec<_>>().join(" "),
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            load_average_start,
            load_average_end: String::new(),
            runs: args.runs,
        },
        skipped,
        rows: Vec::new(),
        summary: Vec::new(),
        backlog: Vec::new(),
        idle: Vec::new(),
    };
    for run in 1..=args.runs {
        eprintln!("=== run {run} of {} ===", args.runs);
        // Rotate the order so no system always runs first or last.
        let mut order = systems.clone();
        let systems_count = order.len().max(1);
        order.rotate_left((run - 1) % systems_count);
        for (workload, scenario) in scenarios(&args) {
            for &system in &order {
                match measure(&args, system, run, &workload, &scenario).await {
                    Ok(row) => results.rows.push(row),
                    Err(reason) => results.skipped.push(Skipped {
                        system: format!("{} / {workload} / run {run}", system.name()),
                        reason,
                    }),
                }
            }
        }
        relay_only::run(&args, run, &mut results).await;
        write(&args, &mut results)?;
    }
    results.setting.load_average_end = results::load_averages();
    write(&args, &mut results)?;
    println!("{}", tables::markdown(&results));
    Ok(())
}

/// The systems that answer, and the others with the reason.
async fn reachable_systems(wanted: &[System]) -> (Vec<System>, Vec<Skipped>) {
    let mut systems = Vec::new();
    let mut skipped = Vec::new();
    for &system in wanted {
        match system.reachable().await {
            Ok(()) => systems.push(system),
            Err(error) => {
                eprintln!("skipping {}: {error:#}", system.name());
                skipped.push(Skipped {
                    system: system.name().into(),
                    reason: format!("{error:#}"),
                });
            }
        }
    }
    (systems, skipped)
}

/// The rows of one run of workloads 1 and 2, named.
fn scenarios(args: &CompareArgs) -> Vec<(String, Scenario)> {
    let base = |topology, pacing| Scenario {
        topology,
        body_bytes: args.size,
        warmup: args.warmup,
        duration: args.duration,
        pacing,
        drain_timeout: args.connect.drain_timeout,
        connect_concurrency: 50,
    };
    let mut list = Vec::new();
    if args.workloads.contains(&Workload::CheckIns) {
        let one_to_one = Topology {
            groups: args.senders,
            fanout: 1,
        };
        let closed = Pacing::Closed {
            in_flight: args.in_flight,
        };
        list.push(("1:1 max rate".to_owned(), base(one_to_one, closed)));
        for &rate in &args.rates {
            let open = Pacing::Open {
                rate,
                max_in_flight: 128,
            };
            list.push((format!("1:1 at {rate:.0}/s"), base(one_to_one, open)));
        }
    }
    if args.workloads.contains(&Workload::Circle) {
        let closed = Pacing::Closed {
            in_flight: args.circle_in_flight,
        };
        let circle = Topology {
            groups: 1,
            fanout: args.members,
        };
        let single = Topology {
            groups: 1,
            fanout: 1,
        };
        list.push((format!("circle 1→{}", args.members), base(circle, closed)));
        list.push(("circle baseline 1→1".to_owned(), base(single, closed)));
    }
    list
}

/// Runs one row; a failure yields its reason.
async fn measure(
    args: &CompareArgs,
    system: System,
    run: usize,
    workload: &str,
    scenario: &Scenario,
) -> Result<Row, String> {
    eprintln!("  {workload}: {}…", system.name());
    let label = RowLabel {
        system: system.name().into(),
        workload: workload.into(),
        run,
        durability: system.durability(),
        target_rate: match scenario.pacing {
            Pacing::Open { rate, .. } => Some(rate),
            Pacing::Closed { .. } => None,
        },
        load_average: results::load_average(),
    };
    let budget = scenario.warmup + scenario.duration + scenario.drain_timeout + ROW_BUDGET;
    let outcome = tokio::time::timeout(budget, run_on(args, system, scenario)).await;
    match outcome {
        Ok(Ok((outcome, transport))) => {
            let row = Row::new(label, transport, outcome);
            eprintln!(
                "    {:.0} msg/s, {:.0} deliveries/s, p50 {:.2} ms, p99 {:.2} ms, CPU ms/msg server {:.4} load generator {:.4}, send errors {}, check {}",
                row.messages_per_second,
                row.deliveries_per_second,
                row.delivery_latency_ms.p50,
                row.delivery_latency_ms.p99,
                row.server_cpu_ms_per_message,
                row.load_generator_cpu_ms_per_message,
                row.check.send_errors,
                match (row.check.exactly_once, row.ok()) {
                    (true, true) => "OK",
                    (true, false) => "SEND ERRORS",
                    (false, _) => "FAILED",
                }
            );
            Ok(row)
        }
        Ok(Err(error)) => {
            eprintln!("    failed: {error:#}");
            Err(format!("{error:#}"))
        }
        Err(_) => {
            eprintln!("    did not finish within {budget:?}");
            Err(format!("did not finish within {budget:?}"))
        }
    }
}

/// Runs `scenario` on `system`; what it measured and over what.
async fn run_on(
    args: &CompareArgs,
    system: System,
    scenario: &Scenario,
) -> anyhow::Result<(Outcome, Transport)> {
    if let Some(kind) = system.private_kind() {
        return on_private(args, system, kind, scenario).await;
    }
    let outcome = match system {
        System::Hearth => {
            let connections = scenario.topology.mailboxes() + scenario.topology.groups;
            let env = relay_env(&args.common, connections, &THROUGHPUT_LIMITS);
            let (_, relay) = start_relay(&args.common, env).await?;
            let peer = Arc::new(HearthPeer::new(
                relay.address().clone(),
                args.connect.per_socket,
            ));
            let outcome = drive::run(&peer, scenario, &ServerProbe::Pid(relay.pid())).await;
            let stopped = relay.stop().await;
            let outcome = outcome?;
            stopped.context("stopping the relay")?;
            return Ok((outcome, Transport::quic()));
        }
        System::Mqtt => on(MqttPeer::new(Broker::local()), scenario, &["mosquitto"]).await,
        System::Nats => {
            on(
                NatsPeer::new(nats::Server::local()),
                scenario,
                &["nats-server"],
            )
            .await
        }
        System::RedisAlways => {
            let peer = RedisPeer::new(Fsync::Always, redis::local()?);
            on(peer, scenario, &["redis-server"]).await
        }
        System::RedisEverysec => {
            let peer = RedisPeer::new(Fsync::EverySec, redis::local()?);
            on(peer, scenario, &["redis-server"]).await
        }
        System::Postgres => {
            on(
                PostgresPeer::new(Database::local()),
                scenario,
                &["postgres"],
            )
            .await
        }
        System::MqttTls | System::NatsTls | System::RedisAlwaysTls | System::PostgresTls => {
            anyhow::bail!("{} needs a private instance", system.name())
        }
    };
    Ok((outcome?, Transport::plaintext()))
}

/// Runs `scenario` on a local service whose processes are `names`.
async fn on<P: Peer + 'static>(
    peer: P,
    scenario: &Scenario,
    names: &'static [&'static str],
) -> anyhow::Result<Outcome> {
    drive::run(&Arc::new(peer), scenario, &ServerProbe::Named(names)).await
}

/// Runs `scenario` on a private `kind` instance started for this row, and
/// stops and removes it afterwards (also after an error; a cancelled row
/// drops it, which kills it and removes its folder).
async fn on_private(
    args: &CompareArgs,
    system: System,
    kind: Kind,
    scenario: &Scenario,
) -> anyhow::Result<(Outcome, Transport)> {
    let instance = Instance::start(kind, args.common.data_parent.as_deref()).await?;
    let transport = Transport::tls(instance.tls_version());
    let outcome = run_private(system, &instance, scenario).await;
    let stopped = instance.stop().await;
    let outcome = outcome?;
    stopped.context("stopping the private instance")?;
    Ok((outcome, transport))
}

/// Runs `scenario` with `system`'s clients on `instance`.
async fn run_private(
    system: System,
    instance: &Instance,
    scenario: &Scenario,
) -> anyhow::Result<Outcome> {
    let probe = instance.server_probe();
    let root = instance.certificate().cert_pem();
    match system {
        System::MqttTls => {
            let peer = MqttPeer::new(Broker::tls(instance.port(), root));
            drive::run(&Arc::new(peer), scenario, &probe).await
        }
        System::NatsTls => {
            let server = nats::Server::tls(instance.port(), instance.client_config());
            drive::run(&Arc::new(NatsPeer::new(server)), scenario, &probe).await
        }
        System::RedisAlwaysTls => {
            let client = redis::tls(instance.port(), root)?;
            let peer = RedisPeer::new(Fsync::Always, client);
            drive::run(&Arc::new(peer), scenario, &probe).await
        }
        System::PostgresTls => {
            let database = Database::tls(
                instance.postgres_config(),
                PostgresTls::new(instance.client_config()),
            );
            drive::run(&Arc::new(PostgresPeer::new(database)), scenario, &probe).await
        }
        _ => anyhow::bail!("{} has no private instance", system.name()),
    }
}

/// Writes `results.json`, `summary.md` and the charts.
fn write(args: &CompareArgs, results: &mut Results) -> anyhow::Result<()> {
    results.summary = results::summarise(&results.rows);
    crate::report::write_json(&args.out.join("results.json"), results)?;
    std::fs::write(args.out.join("summary.md"), tables::markdown(results))
        .context("writing summary.md")?;
    charts::render_all(&args.out, results)?;
    eprintln!("wrote {}", args.out.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        compare: CompareArgs,
    }

    #[test]
    fn defaults_reproduce_the_issue_and_quick_shrinks_them() {
        let args = Cli::try_parse_from(["x"]).unwrap().compare;
        assert_eq!(args.systems, System::ALL);
        for tls in [
            System::MqttTls,
            System::NatsTls,
            System::RedisAlwaysTls,
            System::PostgresTls,
        ] {
            assert!(args.systems.contains(&tls), "{tls:?} is a default");
        }
        assert_eq!((args.senders, args.members), (100, 30));
        assert_eq!((args.backlog, args.mailboxes), (1_000_000, 10_000));
        assert_eq!(args.idle_connections, 10_000);
        assert_eq!(args.runs, 3);
        let quick = Cli::try_parse_from(["x", "--quick"])
            .unwrap()
            .compare
            .settle();
        assert_eq!(
            (quick.runs, quick.backlog, quick.mailboxes),
            (1, 20_000, 200)
        );
    }

    #[test]
    fn lists_are_comma_separated() {
        let args = Cli::try_parse_from([
            "x",
            "--systems",
            "hearth,redis-always",
            "--rates",
            "500,2500",
            "--workloads",
            "circle",
        ])
        .unwrap()
        .compare;
        assert_eq!(args.systems, [System::Hearth, System::RedisAlways]);
        assert_eq!(args.rates, [500.0, 2500.0]);
        let names: Vec<String> = scenarios(&args).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["circle 1→30", "circle baseline 1→1"]);
    }

    #[test]
    fn tls_rows_are_named_on_the_command_line_and_pair_with_their_twins() {
        let args = Cli::try_parse_from([
            "x",
            "--systems",
            "redis-always-tls,mosquitto-tls,mqtt-tls,nats-tls,postgres-tls",
        ])
        .unwrap()
        .compare;
        assert_eq!(
            args.systems,
            [
                System::RedisAlwaysTls,
                System::MqttTls,
                System::MqttTls,
                System::NatsTls,
                System::PostgresTls
            ]
        );
        for system in System::ALL {
            let tls = system.private_kind().is_some();
            assert_eq!(system.name().contains("TLS"), tls, "{system:?}");
            if tls {
                let twin = System::ALL
                    .into_iter()
                    .find(|t| {
                        t.private_kind().is_none()
                            && system.name().replace(", TLS)", ")").replace(" (TLS)", "")
                                == t.name()
                    })
                    .unwrap();
                assert_eq!(system.durability(), twin.durability(), "{system:?}");
            }
        }
    }

    #[test]
    fn check_ins_make_one_closed_and_one_open_row_per_rate() {
        let args = Cli::try_parse_from(["x", "--workloads", "check-ins", "--rates", "100"])
            .unwrap()
            .compare;
        let rows = scenarios(&args);
        assert_eq!(rows.len(), 2);
        assert!(matches!(rows[0].1.pacing, Pacing::Closed { in_flight: 8 }));
        assert_eq!(rows[1].0, "1:1 at 100/s");
        assert_eq!(rows[1].1.topology.groups, 100);
    }
}
