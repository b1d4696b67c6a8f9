//! Benchmark results: a human table on stdout and the same numbers as JSON.

use std::fmt;
use std::path::Path;

use anyhow::Context as _;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::compare::drive::Outcome;
use crate::relay_process::ProcessSample;
use crate::workload::{Pacing, ThroughputPlan};

/// Where the run happened: the relay binary and its data folder's disk.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct RunContext {
    /// Path of the relay binary.
    pub(crate) relay_binary: String,
    /// File system of the relay's data folder (fsync is free on tmpfs).
    pub(crate) data_dir_filesystem: Option<String>,
    /// The relay's settings changed for the benchmark (`HEARTH_*`).
    pub(crate) relay_env: Vec<String>,
}

/// Whether every envelope stored was delivered exactly once and deleted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DeliveryCheck {
    /// Sends the relay answered as durable.
    pub(crate) sent: u64,
    /// Sends that failed (the relay refused or did not answer).
    pub(crate) send_errors: u64,
    /// Distinct envelopes delivered.
    pub(crate) delivered: u64,
    /// Envelopes delivered more than once (extra copies).
    pub(crate) duplicates: u64,
    /// Durable envelopes never delivered.
    pub(crate) missing: u64,
    /// Envelopes delivered whose send had failed (stored after all).
    pub(crate) unexpected: u64,
    /// Envelopes delivered to the wrong mailbox.
    pub(crate) misrouted: u64,
    /// Bodies without a readable probe.
    pub(crate) malformed: u64,
    /// Envelopes the relay deleted on acknowledgement.
    pub(crate) acked: u64,
    /// Ack requests that failed.
    pub(crate) ack_errors: u64,
    /// Client connections lost during the run.
    pub(crate) lost_connections: u64,
    /// Every durable envelope delivered exactly once, none misrouted.
    pub(crate) exactly_once: bool,
    /// Every delivered envelope acknowledged and deleted.
    pub(crate) all_acked: bool,
}

impl DeliveryCheck {
    /// Computes the verdicts from the counts.
    pub(crate) fn settle(&mut self) {
        self.exactly_once =
            self.missing == 0 && self.duplicates == 0 && self.misrouted == 0 && self.malformed == 0;
        self.all_acked = self.ack_errors == 0 && self.acked == self.delivered + self.duplicates;
    }

    /// One line for the table.
    fn summary(&self) -> String {
        let verdict = if self.exactly_once {
            "OK: every durable envelope delivered exactly once"
        } else {
            "FAILED"
        };
        format!(
            "{verdict}; sent {} durable, delivered {}, acked {}; missing {}, duplicates {}, misrouted {}, \
             malformed {}, send errors {}, ack errors {}, lost connections {}",
            count(self.sent),
            count(self.delivered),
            count(self.acked),
            count(self.missing),
            count(self.duplicates),
            count(self.misrouted),
            count(self.malformed),
            count(self.send_errors),
            count(self.ack_errors),
            count(self.lost_connections),
        )
    }
}

/// Percentiles of a latency histogram, in milliseconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct LatencySummary {
    /// Samples recorded.
    pub(crate) count: u64,
    /// Mean.
    pub(crate) mean: f64,
    /// Median.
    pub(crate) p50: f64,
    /// 90th percentile.
    pub(crate) p90: f64,
    /// 99th percentile.
    pub(crate) p99: f64,
    /// 99.9th percentile.
    pub(crate) p99_9: f64,
    /// Largest.
    pub(crate) max: f64,
}

impl LatencySummary {
    /// Summarises a histogram of nanoseconds.
    pub(crate) fn of(histogram: &Histogram<u64>) -> Self {
        let ms = |nanos: u64| nanos as f64 / 1e6;
        Self {
            count: histogram.len(),
            mean: if histogram.is_empty() {
                0.0
            } else {
                histogram.mean() / 1e6
            },
            p50: ms(histogram.value_at_quantile(0.5)),
            p90: ms(histogram.value_at_quantile(0.9)),
            p99: ms(histogram.value_at_quantile(0.99)),
            p99_9: ms(histogram.value_at_quantile(0.999)),
            max: ms(histogram.max()),
        }
    }
}

impl fmt::Display for LatencySummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}  (mean {:.3}, n = {})",
            self.p50,
            self.p90,
            self.p99,
            self.p99_9,
            self.max,
            self.mean,
            count(self.count)
        )
    }
}

/// The relay's CPU and memory during the measured phase.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct RelayUsage {
    /// CPU seconds (user + system) used in the measured phase.
    pub(crate) cpu_seconds: f64,
    /// Average cores busy (1.0 = one core fully).
    pub(crate) cpu_utilisation: f64,
    /// CPU seconds per 1,000 envelopes sent, delivered and acknowledged.
    pub(crate) cpu_seconds_per_1000_envelopes: f64,
    /// Resident memory at the start of the measured phase.
    pub(crate) rss_bytes_start: u64,
    /// Resident memory at its end.
    pub(crate) rss_bytes_end: u64,
    /// Resident memory after the last deliveries.
    pub(crate) rss_bytes_after_drain: u64,
    /// Peak resident memory since the relay started.
    pub(crate) peak_rss_bytes: u64,
}

/// Everything the throughput benchmark measured.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct ThroughputReport {
    /// Always `"throughput"`.
    pub(crate) benchmark: &'static str,
    /// Where it ran.
    pub(crate) context: RunContext,
    /// Sender clients (and as many receivers).
    pub(crate) clients: usize,
    /// Body bytes per envelope.
    pub(crate) body_bytes: usize,
    /// Warm-up seconds.
    pub(crate) warmup_seconds: f64,
    /// Measured seconds.
    pub(crate) duration_seconds: f64,
    /// `"closed-loop"` or `"open-loop"`.
    pub(crate) pacing: &'static str,
    /// Closed loop: sends in flight per sender; open loop: the cap.
    pub(crate) in_flight_per_sender: usize,
    /// Open loop: the target rate (envelopes per second, all senders).
    pub(crate) target_rate_per_second: Option<f64>,
    /// Seconds to connect every client and open the mailboxes.
    pub(crate) setup_seconds: f64,
    /// Sends answered as durable per second.
    pub(crate) durable_sends_per_second: f64,
    /// Envelopes delivered per second.
    pub(crate) deliveries_per_second: f64,
    /// Send→delivery latency (open loop: from the scheduled send time).
    pub(crate) delivery_latency_ms: LatencySummary,
    /// Send→durable answer latency.
    pub(crate) send_latency_ms: LatencySummary,
    /// The relay's CPU and memory.
    pub(crate) relay: RelayUsage,
    /// The load generator's own CPU in the measured phase (cores); it
    /// shares the machine with the relay.
    pub(crate) load_generator_cpu_utilisation: f64,
    /// The load generator's resident memory at the end.
    pub(crate) load_generator_rss_bytes: u64,
    /// Whether every envelope arrived exactly once.
    pub(crate) check: DeliveryCheck,
    /// The first error a client met, if any.
    pub(crate) first_error: Option<String>,
}

impl ThroughputReport {
    /// The report of `plan`'s run.
    pub(crate) fn new(context: RunContext, plan: &ThroughputPlan, m: Outcome) -> Self {
        let (pacing, in_flight, rate) = match plan.pacing {
            Pacing::Closed { in_flight } => ("closed-loop", in_flight, None),
            Pacing::Open {
                rate,
                max_in_flight,
            } => ("open-loop", max_in_flight, Some(rate)),
        };
        let cpu_seconds = m.server_end.cpu_since(&m.server_warm);
        let wall = m.server_end.wall_since(&m.server_warm);
        let envelopes = m.sent_in_window.max(1) as f64;
        Self {
            benchmark: "throughput",
            context,
            clients: plan.clients,
            body_bytes: plan.body_bytes,
            warmup_seconds: plan.warmup.as_secs_f64(),
            duration_seconds: plan.duration.as_secs_f64(),
            pacing,
            in_flight_per_sender: in_flight,
            target_rate_per_second: rate,
            setup_seconds: m.setup_seconds,
            durable_sends_per_second: m.sent_in_window as f64 / m.window_seconds,
            deliveries_per_second: m.delivered_in_window as f64 / m.window_seconds,
            delivery_latency_ms: LatencySummary::of(&m.delivery_latency),
            send_latency_ms: LatencySummary::of(&m.send_latency),
            relay: RelayUsage {
                cpu_seconds,
                cpu_utilisation: ratio(cpu_seconds, wall),
                cpu_seconds_per_1000_envelopes: cpu_seconds * 1000.0 / envelopes,
                rss_bytes_start: m.server_warm.rss_bytes,
                rss_bytes_end: m.server_end.rss_bytes,
                rss_bytes_after_drain: m.server_drained.rss_bytes,
                peak_rss_bytes: m.server_drained.peak_rss_bytes,
            },
            load_generator_cpu_utilisation: ratio(
                m.bench_end.cpu_since(&m.bench_warm),
                m.bench_end.wall_since(&m.bench_warm),
            ),
            load_generator_rss_bytes: m.bench_end.rss_bytes,
            check: m.check,
            first_error: m.first_error,
        }
    }
}

impl fmt::Display for ThroughputReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pacing = match self.target_rate_per_second {
            Some(rate) => format!(
                "open loop at {} envelopes/s (≤ {} in flight per sender)",
                count(rate as u64),
                self.in_flight_per_sender
            ),
            None => format!(
                "closed loop, {} in flight per sender",
                self.in_flight_per_sender
            ),
        };
        writeln!(
            f,
            "Hearth relay throughput: {} senders → {} mailboxes, {}-byte bodies, {pacing}",
            self.clients, self.clients, self.body_bytes
        )?;
        writeln!(
            f,
            "measured {:.1} s after {:.1} s warm-up (setup {:.1} s); relay data on {}",
            self.duration_seconds,
            self.warmup_seconds,
            self.setup_seconds,
            self.context
                .data_dir_filesystem
                .as_deref()
                .unwrap_or("an unknown file system"),
        )?;
        let relay = &self.relay;
        row(
            f,
            "durable sends/s",
            format!("{:.1}", self.durable_sends_per_second),
        )?;
        row(
            f,
            "deliveries/s",
            format!("{:.1}", self.deliveries_per_second),
        )?;
        row(f, "send→deliver latency ms", &self.delivery_latency_ms)?;
        row(f, "send→durable latency ms", &self.send_latency_ms)?;
        row(
            f,
            "relay CPU",
            format!(
                "{:.2} s in {:.1} s = {:.2} cores; {:.4} CPU s per 1,000 envelopes",
                relay.cpu_seconds,
                self.duration_seconds,
                relay.cpu_utilisation,
                relay.cpu_seconds_per_1000_envelopes
            ),
        )?;
        row(
            f,
            "relay RSS",
            format!(
                "start {}, end {}, after drain {}, peak {}",
                mib(relay.rss_bytes_start),
                mib(relay.rss_bytes_end),
                mib(relay.rss_bytes_after_drain),
                mib(relay.peak_rss_bytes)
            ),
        )?;
        row(
            f,
            "load generator",
            format!(
                "{:.2} cores, RSS {} (same machine as the relay)",
                self.load_generator_cpu_utilisation,
                mib(self.load_generator_rss_bytes)
            ),
        )?;
        row(f, "delivery check", self.check.summary())?;
        if let Some(error) = &self.first_error {
            row(f, "first error", error)?;
        }
        Ok(())
    }
}

/// Everything the idle-connections benchmark measured.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct IdleReport {
    /// Always `"idle"`.
    pub(crate) benchmark: String,
    /// Where it ran.
    pub(crate) context: RunContext,
    /// Connections asked for.
    pub(crate) connections_requested: usize,
    /// Connections connected and authenticated.
    pub(crate) connections_open: usize,
    /// Connections that failed to open.
    pub(crate) connections_failed: usize,
    /// Client UDP sockets they shared.
    pub(crate) client_sockets: usize,
    /// Seconds to open them all.
    pub(crate) open_seconds: f64,
    /// Connections opened (connect + register) per second.
    pub(crate) connections_per_second: f64,
    /// Seconds they were held idle after all were up.
    pub(crate) hold_seconds: f64,
    /// Connections still open at the end of the hold.
    pub(crate) connections_alive_after_hold: usize,
    /// Relay resident memory before any connection.
    pub(crate) relay_rss_bytes_before: u64,
    /// Relay resident memory once all were open.
    pub(crate) relay_rss_bytes_open: u64,
    /// Relay resident memory after the hold.
    pub(crate) relay_rss_bytes_after: u64,
    /// Relay peak resident memory.
    pub(crate) relay_peak_rss_bytes: u64,
    /// (after − before) / open connections.
    pub(crate) relay_rss_bytes_per_connection: f64,
    /// Relay CPU seconds spent accepting and registering them.
    pub(crate) relay_cpu_seconds_opening: f64,
    /// Relay cores busy while they sat idle (keep-alives).
    pub(crate) relay_cpu_utilisation_idle: f64,
    /// The load generator's resident memory with them all open.
    pub(crate) load_generator_rss_bytes: u64,
    /// The first error, if any.
    pub(crate) first_error: Option<String>,
}

impl fmt::Display for IdleReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Hearth relay idle connections: {} requested over {} client sockets (each registers and authenticates a mailbox)",
            count(self.connections_requested as u64),
            self.client_sockets
        )?;
        row(
            f,
            "connections open",
            format!(
                "{} ({} failed) in {:.1} s = {:.0}/s",
                count(self.connections_open as u64),
                count(self.connections_failed as u64),
                self.open_seconds,
                self.connections_per_second
            ),
        )?;
        row(
            f,
            "after idle hold",
            format!(
                "{} of them still open after {:.1} s",
                count(self.connections_alive_after_hold as u64),
                self.hold_seconds
            ),
        )?;
        row(
            f,
            "relay RSS",
            format!(
                "before {}, all open {}, after hold {}, peak {}",
                mib(self.relay_rss_bytes_before),
                mib(self.relay_rss_bytes_open),
                mib(self.relay_rss_bytes_after),
                mib(self.relay_peak_rss_bytes)
            ),
        )?;
        row(
            f,
            "relay RSS per connection",
            format!("{:.1} KiB", self.relay_rss_bytes_per_connection / 1024.0),
        )?;
        row(
            f,
            "relay CPU",
            format!(
                "{:.2} s opening; {:.3} cores while idle",
                self.relay_cpu_seconds_opening, self.relay_cpu_utilisation_idle
            ),
        )?;
        row(f, "load generator RSS", mib(self.load_generator_rss_bytes))?;
        if let Some(error) = &self.first_error {
            row(f, "first error", error)?;
        }
        Ok(())
    }
}

impl IdleReport {
    /// Fills the memory and CPU fields from the relay's samples: before any
    /// connection, once all were open, and after the hold.
    pub(crate) fn set_relay_samples(
        &mut self,
        before: &ProcessSample,
        open: &ProcessSample,
        after: &ProcessSample,
    ) {
        self.relay_rss_bytes_before = before.rss_bytes;
        self.relay_rss_bytes_open = open.rss_bytes;
        self.relay_rss_bytes_after = after.rss_bytes;
        self.relay_peak_rss_bytes = after.peak_rss_bytes;
        let grown = after.rss_bytes.saturating_sub(before.rss_bytes) as f64;
        self.relay_rss_bytes_per_connection = ratio(grown, self.connections_open as f64);
        self.relay_cpu_seconds_opening = open.cpu_since(before);
        self.relay_cpu_utilisation_idle = ratio(after.cpu_since(open), after.wall_since(open));
    }
}

/// Writes `report` as pretty JSON to `path`.
pub(crate) fn write_json(path: &Path, report: &impl Serialize) -> anyhow::Result<()> {
    let mut text = serde_json::to_string_pretty(report).context("encoding the report")?;
    text.push('\n');
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// One table row: a label column and a value.
fn row(f: &mut fmt::Formatter<'_>, label: &str, value: impl fmt::Display) -> fmt::Result {
    writeln!(f, "  {label:<26}{value}")
}

/// `a / b`, or 0 when `b` is 0.
fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

/// A count with thousands separators: `12,345`.
pub(crate) fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// Bytes in MiB with one decimal.
fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_get_thousands_separators() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1_234_567), "1,234,567");
    }

    #[test]
    fn delivery_check_verdicts() {
        let mut check = DeliveryCheck {
            sent: 10,
            delivered: 10,
            acked: 10,
            ..DeliveryCheck::default()
        };
        check.settle();
        assert!(check.exactly_once && check.all_acked);
        assert!(check.summary().starts_with("OK"));
        check.missing = 1;
        check.settle();
        assert!(!check.exactly_once);
        assert!(check.summary().starts_with("FAILED"));
        let mut duplicated = DeliveryCheck {
            sent: 10,
            delivered: 10,
            duplicates: 1,
            acked: 10,
            ..DeliveryCheck::default()
        };
        duplicated.settle();
        assert!(!duplicated.exactly_once);
        assert!(!duplicated.all_acked, "the duplicate copy was not acked");
    }

    #[test]
    fn latency_summary_is_in_milliseconds() {
        let mut histogram = crate::probe::latency_histogram().unwrap();
        for ms in 1..=100u64 {
            histogram.saturating_record(ms * 1_000_000);
        }
        let summary = LatencySummary::of(&histogram);
        assert_eq!(summary.count, 100);
        assert!((summary.p50 - 50.0).abs() < 0.1, "{summary:?}");
        assert!((summary.p99 - 99.0).abs() < 0.1, "{summary:?}");
        assert!((summary.max - 100.0).abs() < 0.1, "{summary:?}");
        let empty = LatencySummary::of(&crate::probe::latency_histogram().unwrap());
        assert_eq!((empty.count, empty.mean, empty.max), (0, 0.0, 0.0));
    }

    #[test]
    fn json_report_has_the_table_numbers() {
        let mut check = DeliveryCheck {
            sent: 5,
            delivered: 5,
            acked: 5,
            ..DeliveryCheck::default()
        };
        check.settle();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("check.json");
        write_json(&path, &check).unwrap();
        let value: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(value["sent"], 5);
        assert_eq!(value["exactly_once"], true);
    }
}
