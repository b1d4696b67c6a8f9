//! The comparison's results: one row per system, workload and run, the
//! medians with min–max over runs, and the JSON file that holds them all.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::drive::Outcome;
use super::peer::{Durability, Transport};
use crate::report::{DeliveryCheck, IdleReport, LatencySummary};

/// Quantiles at which a latency CDF is sampled: every 5 % up to 90 %,
/// then ever more nines, then the maximum.
const CDF_QUANTILES: [f64; 25] = [
    0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8,
    0.85, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9999, 1.0,
];

/// One point of a latency CDF.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct CdfPoint {
    /// The fraction of messages at or below `ms` (0–1).
    pub(crate) quantile: f64,
    /// Latency in milliseconds.
    pub(crate) ms: f64,
}

/// A latency histogram (nanoseconds) as CDF points in milliseconds.
pub(crate) fn cdf(histogram: &Histogram<u64>) -> Vec<CdfPoint> {
    if histogram.is_empty() {
        return Vec::new();
    }
    CDF_QUANTILES
        .iter()
        .map(|&quantile| CdfPoint {
            quantile,
            ms: histogram.value_at_quantile(quantile) as f64 / 1e6,
        })
        .collect()
}

/// One system running one workload once.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Row {
    /// The system, e.g. `Hearth` or `Redis (appendfsync always)`.
    pub(crate) system: String,
    /// The workload, e.g. `1:1 max rate`.
    pub(crate) workload: String,
    /// Which run (1-based).
    pub(crate) run: usize,
    /// What an acknowledgement meant.
    pub(crate) durability: Durability,
    /// How the clients reached the server (encrypted or not).
    #[serde(default)]
    pub(crate) transport: Transport,
    /// Open loop: the target rate in messages per second.
    pub(crate) target_rate: Option<f64>,
    /// Messages acknowledged per second (a circle message counts once).
    pub(crate) messages_per_second: f64,
    /// Deliveries per second (a circle message counts once per recipient).
    pub(crate) deliveries_per_second: f64,
    /// Send→acknowledgement latency.
    pub(crate) send_latency_ms: LatencySummary,
    /// Send→delivery latency (open loop: from the scheduled time).
    pub(crate) delivery_latency_ms: LatencySummary,
    /// Send→delivery latency as a CDF.
    pub(crate) delivery_cdf: Vec<CdfPoint>,
    /// The server's CPU time per acknowledged message, in milliseconds.
    pub(crate) server_cpu_ms_per_message: f64,
    /// The server's cores busy in the measured phase.
    pub(crate) server_cores: f64,
    /// The server's resident memory at the end of the measured phase.
    pub(crate) server_rss_bytes: u64,
    /// The load generator's cores busy in the measured phase.
    pub(crate) load_generator_cores: f64,
    /// The load generator's own CPU time (this process: every client,
    /// their TLS or QUIC included) per acknowledged message, in
    /// milliseconds, over the same window as the server's.
    #[serde(default)]
    pub(crate) load_generator_cpu_ms_per_message: f64,
    /// The machine's 1-minute load average when the row started.
    pub(crate) load_average: f64,
    /// Whether every acknowledged message reached every recipient once.
    pub(crate) check: DeliveryCheck,
    /// The first error a client met, if any.
    pub(crate) first_error: Option<String>,
}

/// What identifies a row apart from its run.
#[derive(Clone, Debug)]
pub(crate) struct RowLabel {
    /// The system.
    pub(crate) system: String,
    /// The workload.
    pub(crate) workload: String,
    /// The run (1-based).
    pub(crate) run: usize,
    /// What an acknowledgement meant.
    pub(crate) durability: Durability,
    /// Open loop: the target rate.
    pub(crate) target_rate: Option<f64>,
    /// The 1-minute load average when the row started.
    pub(crate) load_average: f64,
}

impl Row {
    /// The row of one measured run over `transport`.
    pub(crate) fn new(label: RowLabel, transport: Transport, outcome: Outcome) -> Self {
        let window = outcome.window_seconds.max(1e-9);
        let messages = outcome.sent_in_window.max(1) as f64;
        let server_cpu_seconds = outcome.server_end.cpu_since(&outcome.server_warm);
        let bench = &outcome.bench_end;
        let bench_cpu_seconds = bench.cpu_since(&outcome.bench_warm);
        Self {
            system: label.system,
            workload: label.workload,
            run: label.run,
            durability: label.durability,
            transport,
            target_rate: label.target_rate,
            messages_per_second: outcome.sent_in_window as f64 / window,
            deliveries_per_second: outcome.delivered_in_window as f64 / window,
            send_latency_ms: LatencySummary::of(&outcome.send_latency),
            delivery_latency_ms: LatencySummary::of(&outcome.delivery_latency),
            delivery_cdf: cdf(&outcome.delivery_latency),
            server_cpu_ms_per_message: server_cpu_seconds * 1e3 / messages,
            server_cores: server_cpu_seconds / window,
            server_rss_bytes: outcome.server_end.rss_bytes,
            load_generator_cores: bench_cpu_seconds
                / bench.wall_since(&outcome.bench_warm).max(1e-9),
            load_generator_cpu_ms_per_message: bench_cpu_seconds * 1e3 / messages,
            load_average: label.load_average,
            check: outcome.check,
            first_error: outcome.first_error,
        }
    }

    /// Whether the run is clean: every acknowledged message delivered
    /// exactly once and no send failed.
    pub(crate) fn ok(&self) -> bool {
        self.check.exactly_once && self.check.send_errors == 0
    }
}

/// The median of some runs with their smallest and largest value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Spread {
    /// The median (the mean of the middle two for an even count).
    pub(crate) median: f64,
    /// The smallest.
    pub(crate) min: f64,
    /// The largest.
    pub(crate) max: f64,
}

impl Spread {
    /// The spread of `values`; `None` when there are none.
    pub(crate) fn of(values: impl IntoIterator<Item = f64>) -> Option<Self> {
        let mut values: Vec<f64> = values.into_iter().filter(|v| v.is_finite()).collect();
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let n = values.len();
        let median = if n % 2 == 1 {
            values[n / 2]
        } else {
            (values[n / 2 - 1] + values[n / 2]) / 2.0
        };
        Some(Self {
            median,
            min: values[0],
            max: values[n - 1],
        })
    }
}

/// One system and workload over all runs.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Summary {
    /// The system.
    pub(crate) system: String,
    /// The workload.
    pub(crate) workload: String,
    /// What an acknowledgement meant.
    pub(crate) durability: Durability,
    /// How the clients reached the server.
    #[serde(default)]
    pub(crate) transport: Transport,
    /// Runs summarised.
    pub(crate) runs: usize,
    /// Runs whose delivery check failed.
    pub(crate) failed_checks: usize,
    /// Failed sends over all runs.
    #[serde(default)]
    pub(crate) send_errors: u64,
    /// Runs with at least one failed send.
    #[serde(default)]
    pub(crate) runs_with_send_errors: usize,
    /// Messages acknowledged per second.
    pub(crate) messages_per_second: Spread,
    /// Deliveries per second.
    pub(crate) deliveries_per_second: Spread,
    /// Median send→delivery latency, ms.
    pub(crate) p50_ms: Spread,
    /// 99th percentile send→delivery latency, ms.
    pub(crate) p99_ms: Spread,
    /// 99.9th percentile send→delivery latency, ms.
    pub(crate) p99_9_ms: Spread,
    /// Server CPU time per message, ms.
    pub(crate) server_cpu_ms_per_message: Spread,
    /// Load-generator CPU time per message, ms.
    #[serde(default)]
    pub(crate) load_generator_cpu_ms_per_message: Spread,
    /// The run whose p99 is the median one (its CDF is charted).
    pub(crate) median_run: usize,
}

/// Summaries of `rows`, in the order systems and workloads first appear.
pub(crate) fn summarise(rows: &[Row]) -> Vec<Summary> {
    let mut order = Vec::new();
    let mut groups: BTreeMap<(String, String), Vec<&Row>> = BTreeMap::new();
    for row in rows {
        let key = (row.system.clone(), row.workload.clone());
        if !groups.contains_key(&key) {
            order.push(key.clone());
        }
        groups.entry(key).or_default().push(row);
    }
    order
        .into_iter()
        .filter_map(|key| {
            let rows = groups.get(&key)?;
            let spread = |f: fn(&Row) -> f64| Spread::of(rows.iter().map(|r| f(r)));
            let mut by_p99: Vec<&&Row> = rows.iter().collect();
            by_p99.sort_by(|a, b| {
                a.delivery_latency_ms
                    .p99
                    .total_cmp(&b.delivery_latency_ms.p99)
            });
            Some(Summary {
                system: key.0,
                workload: key.1,
                durability: rows[0].durability.clone(),
                transport: rows[0].transport.clone(),
                runs: rows.len(),
                failed_checks: rows.iter().filter(|r| !r.check.exactly_once).count(),
                send_errors: rows.iter().map(|r| r.check.send_errors).sum(),
                runs_with_send_errors: rows.iter().filter(|r| r.check.send_errors > 0).count(),
                messages_per_second: spread(|r| r.messages_per_second)?,
                deliveries_per_second: spread(|r| r.deliveries_per_second)?,
                p50_ms: spread(|r| r.delivery_latency_ms.p50)?,
                p99_ms: spread(|r| r.delivery_latency_ms.p99)?,
                p99_9_ms: spread(|r| r.delivery_latency_ms.p99_9)?,
                server_cpu_ms_per_message: spread(|r| r.server_cpu_ms_per_message)?,
                load_generator_cpu_ms_per_message: spread(|r| r.load_generator_cpu_ms_per_message)?,
                median_run: by_p99[by_p99.len() / 2].run,
            })
        })
        .collect()
}

/// A system the tool could not reach, and why.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Skipped {
    /// The system.
    pub(crate) system: String,
    /// Why it was skipped.
    pub(crate) reason: String,
}

/// Workloads 3 and 5 on the relay: a backlog, a restart, a drain.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct BacklogRun {
    /// Which run (1-based).
    pub(crate) run: usize,
    /// Mailboxes holding the backlog.
    pub(crate) mailboxes: usize,
    /// Envelopes stored before the restart.
    pub(crate) envelopes: u64,
    /// Seconds to store them (durably, as in normal sends).
    pub(crate) fill_seconds: f64,
    /// Seconds from starting the relay process to its `listening` line.
    pub(crate) restart_listening_seconds: f64,
    /// Seconds from starting the relay process to the first delivery.
    pub(crate) restart_first_delivery_seconds: f64,
    /// Relay RSS right after the first delivery, bytes.
    pub(crate) rss_bytes_after_restart: u64,
    /// Seconds from connecting every recipient to the last delivery.
    pub(crate) drain_seconds: f64,
    /// Envelopes delivered and acknowledged per second while draining.
    pub(crate) drain_per_second: f64,
    /// Distinct envelopes delivered.
    pub(crate) delivered: u64,
    /// Stored envelopes never delivered.
    pub(crate) missing: u64,
    /// Relay CPU time per drained envelope, ms.
    pub(crate) relay_cpu_ms_per_envelope: f64,
    /// Relay peak RSS, bytes.
    pub(crate) relay_peak_rss_bytes: u64,
    /// The first error, if any.
    pub(crate) first_error: Option<String>,
}

/// Everything one `compare` invocation measured.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Results {
    /// What ran, and on what.
    pub(crate) setting: Setting,
    /// Systems that were skipped.
    pub(crate) skipped: Vec<Skipped>,
    /// Every row of every run.
    pub(crate) rows: Vec<Row>,
    /// Medians with min–max per system and workload.
    pub(crate) summary: Vec<Summary>,
    /// Backlog, restart and drain on the relay.
    pub(crate) backlog: Vec<BacklogRun>,
    /// Idle connections on the relay.
    pub(crate) idle: Vec<IdleReport>,
}

/// The run's parameters and machine.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Setting {
    /// The command line.
    pub(crate) command: String,
    /// Logical CPUs.
    pub(crate) cpus: usize,
    /// 1-, 5- and 15-minute load averages at the start.
    pub(crate) load_average_start: String,
    /// The same at the end.
    pub(crate) load_average_end: String,
    /// Runs of each workload.
    pub(crate) runs: usize,
}

/// The 1-minute load average, or 0 if unknown.
pub(crate) fn load_average() -> f64 {
    load_averages()
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// `/proc/loadavg`'s first three fields.
pub(crate) fn load_averages() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::latency_histogram;

    #[test]
    fn spread_is_median_with_extremes() {
        let odd = Spread::of([3.0, 1.0, 2.0]).unwrap();
        assert_eq!((odd.median, odd.min, odd.max), (2.0, 1.0, 3.0));
        let even = Spread::of([4.0, 1.0, 3.0, 2.0]).unwrap();
        assert_eq!(even.median, 2.5);
        assert_eq!(Spread::of([]), None);
        assert_eq!(Spread::of([f64::NAN, 5.0]).unwrap().median, 5.0);
    }

    #[test]
    fn cdf_rises_to_the_maximum() {
        let mut histogram = latency_histogram().unwrap();
        for ms in 1..=1000u64 {
            histogram.saturating_record(ms * 1_000_000);
        }
        let points = cdf(&histogram);
        assert_eq!(points.len(), CDF_QUANTILES.len());
        assert!(points.windows(2).all(|w| w[0].ms <= w[1].ms));
        let p99 = points.iter().find(|p| p.quantile == 0.99).unwrap();
        assert!((p99.ms - 990.0).abs() < 1.0, "{p99:?}");
        assert!((points.last().unwrap().ms - 1000.0).abs() < 1.0);
        assert!(cdf(&latency_histogram().unwrap()).is_empty());
    }

    fn row(system: &str, run: usize, rate: f64, p99: f64) -> Row {
        let latency = LatencySummary {
            count: 1,
            mean: p99,
            p50: p99 / 2.0,
            p90: p99,
            p99,
            p99_9: p99,
            max: p99,
        };
        Row {
            system: system.into(),
            workload: "1:1 max rate".into(),
            run,
            durability: Durability {
                fsynced_before_ack: true,
                note: "x".into(),
            },
            transport: Transport::plaintext(),
            target_rate: None,
            messages_per_second: rate,
            deliveries_per_second: rate,
            send_latency_ms: latency.clone(),
            delivery_latency_ms: latency,
            delivery_cdf: vec![],
            server_cpu_ms_per_message: 0.05,
            server_cores: 1.0,
            server_rss_bytes: 1,
            load_generator_cores: 0.5,
            load_generator_cpu_ms_per_message: 0.02,
            load_average: 1.0,
            check: DeliveryCheck {
                exactly_once: true,
                ..DeliveryCheck::default()
            },
            first_error: None,
        }
    }

    #[test]
    fn summary_groups_runs_and_keeps_first_seen_order() {
        let rows = vec![
            row("Redis", 1, 100.0, 9.0),
            row("Hearth", 1, 300.0, 3.0),
            row("Redis", 2, 200.0, 7.0),
            row("Hearth", 2, 100.0, 1.0),
            row("Hearth", 3, 200.0, 2.0),
        ];
        let summary = summarise(&rows);
        assert_eq!(summary.len(), 2);
        assert_eq!(summary[0].system, "Redis");
        let hearth = &summary[1];
        assert_eq!(hearth.runs, 3);
        assert_eq!(hearth.messages_per_second.median, 200.0);
        assert_eq!(hearth.p99_ms.min, 1.0);
        assert_eq!(hearth.median_run, 3, "p99 2.0 is the middle one");
        assert_eq!(hearth.load_generator_cpu_ms_per_message.median, 0.02);
        assert_eq!((hearth.send_errors, hearth.runs_with_send_errors), (0, 0));
    }

    #[test]
    fn send_errors_are_summed_and_make_a_row_not_ok() {
        let mut failing = row("NATS", 2, 100.0, 5.0);
        failing.check.send_errors = 7;
        assert!(failing.check.exactly_once && !failing.ok());
        assert!(row("NATS", 1, 100.0, 5.0).ok());
        let rows = vec![row("NATS", 1, 100.0, 5.0), failing, {
            let mut r = row("NATS", 3, 100.0, 5.0);
            r.check.send_errors = 2;
            r
        }];
        let summary = &summarise(&rows)[0];
        assert_eq!(summary.send_errors, 9);
        assert_eq!(summary.runs_with_send_errors, 2);
        assert_eq!(summary.failed_checks, 0);
    }

    #[test]
    fn results_written_before_transports_and_load_generator_cpu_still_load() {
        let mut value = serde_json::to_value(row("Hearth", 1, 10.0, 1.0)).unwrap();
        let object = value.as_object_mut().unwrap();
        object.remove("transport");
        object.remove("load_generator_cpu_ms_per_message");
        let old: Row = serde_json::from_value(value).unwrap();
        assert_eq!(old.transport, Transport::default());
        assert_eq!(old.load_generator_cpu_ms_per_message, 0.0);
    }

    #[test]
    fn rows_serialise_with_their_durability() {
        let value = serde_json::to_value(row("Hearth", 1, 10.0, 1.0)).unwrap();
        assert_eq!(value["system"], "Hearth");
        assert_eq!(value["durability"]["fsynced_before_ack"], true);
        assert_eq!(value["transport"]["encrypted"], false);
        assert_eq!(value["load_generator_cpu_ms_per_message"], 0.02);
        assert_eq!(value["delivery_latency_ms"]["p99"], 1.0);
        assert!(value["target_rate"].is_null());
    }
}
