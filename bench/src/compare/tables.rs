//! The comparison's results as Markdown tables (`summary.md`), ready to
//! paste into `docs/BENCHMARKS.md`.

use std::fmt::Write as _;

use super::results::{Results, Spread, Summary};
use crate::report::count;

/// Every table: per workload, the circle cost ratio, backlog, idle, and
/// the systems skipped.
pub(crate) fn markdown(results: &Results) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Medians over {} run(s), min–max in brackets. {} CPUs; load average {} at the start, {} at the end.\n",
        results.setting.runs,
        results.setting.cpus,
        results.setting.load_average_start,
        if results.setting.load_average_end.is_empty() {
            "–"
        } else {
            &results.setting.load_average_end
        }
    );
    let mut workloads: Vec<&str> = Vec::new();
    for summary in &results.summary {
        if !workloads.contains(&summary.workload.as_str()) {
            workloads.push(&summary.workload);
        }
    }
    for workload in workloads {
        let _ = writeln!(out, "#### {workload}\n");
        out.push_str(
            "| system | encrypted | fsynced before ack | messages/s | deliveries/s | p50 ms | p99 ms | p99.9 ms | server CPU ms per message | load generator CPU ms per message | send errors | delivery check |\n\
             |---|---|---|---|---|---|---|---|---|---|---|---|\n",
        );
        for s in results.summary.iter().filter(|s| s.workload == workload) {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                s.system,
                s.transport.cell(),
                if s.durability.fsynced_before_ack {
                    "yes"
                } else {
                    "**no**"
                },
                spread(s.messages_per_second, 0),
                spread(s.deliveries_per_second, 0),
                spread(s.p50_ms, 2),
                spread(s.p99_ms, 2),
                spread(s.p99_9_ms, 2),
                spread(s.server_cpu_ms_per_message, 4),
                spread(s.load_generator_cpu_ms_per_message, 4),
                send_errors(s),
                check(s),
            );
        }
        out.push('\n');
    }
    circle_costs(&mut out, results);
    backlog(&mut out, results);
    idle(&mut out, results);
    durability(&mut out, results);
    for skipped in &results.skipped {
        let _ = writeln!(
            out,
            "Not measured: **{}**: {}\n",
            skipped.system, skipped.reason
        );
    }
    out
}

/// `median (min–max)` with `decimals` decimals and thousands separators.
pub(crate) fn spread(s: Spread, decimals: usize) -> String {
    if s.min == s.max {
        return number(s.median, decimals);
    }
    format!(
        "{} ({}–{})",
        number(s.median, decimals),
        number(s.min, decimals),
        number(s.max, decimals)
    )
}

/// A number with `decimals` decimals; whole numbers get separators.
fn number(value: f64, decimals: usize) -> String {
    if decimals == 0 {
        count(value.max(0.0).round() as u64)
    } else {
        format!("{value:.decimals$}")
    }
}

/// Failed sends over all runs, bold when there are any.
fn send_errors(summary: &Summary) -> String {
    if summary.send_errors == 0 {
        "0".into()
    } else {
        format!("**{}**", count(summary.send_errors))
    }
}

/// `OK` only when every run delivered every acknowledged message exactly
/// once and no send failed.
fn check(summary: &Summary) -> String {
    let mut problems = Vec::new();
    if summary.failed_checks > 0 {
        problems.push(format!(
            "**{} of {} runs failed**",
            summary.failed_checks, summary.runs
        ));
    }
    if summary.runs_with_send_errors > 0 {
        problems.push(format!(
            "**send errors in {} of {} runs**",
            summary.runs_with_send_errors, summary.runs
        ));
    }
    if problems.is_empty() {
        "OK".into()
    } else {
        problems.join("; ")
    }
}

/// A circle message's server CPU over a 1:1 message's, per system.
pub(crate) fn circle_ratios(results: &Results) -> Vec<(String, f64)> {
    let find = |system: &str, prefix: &str| {
        results
            .summary
            .iter()
            .find(|s| s.system == system && s.workload.starts_with(prefix))
            .map(|s| s.server_cpu_ms_per_message.median)
    };
    let mut ratios = Vec::new();
    for summary in &results.summary {
        if !summary.workload.starts_with("circle 1→") {
            continue;
        }
        if let (Some(circle), Some(single)) = (
            find(&summary.system, "circle 1→"),
            find(&summary.system, "circle baseline"),
        ) && single > 0.0
        {
            ratios.push((summary.system.clone(), circle / single));
        }
    }
    ratios
}

fn circle_costs(out: &mut String, results: &Results) {
    let ratios = circle_ratios(results);
    if ratios.is_empty() {
        return;
    }
    out.push_str(
        "#### Server CPU of one circle message ÷ one 1:1 message (same sender, same pacing)\n\n\
         | system | ratio of medians |\n|---|---|\n",
    );
    for (system, ratio) in ratios {
        let _ = writeln!(out, "| {system} | {ratio:.2}× |");
    }
    out.push('\n');
}

fn backlog(out: &mut String, results: &Results) {
    if results.backlog.is_empty() {
        return;
    }
    out.push_str(
        "#### Hearth relay: backlog, restart, drain\n\n\
         | run | envelopes / mailboxes | fill s | restart → listening s | restart → first delivery s | RSS after restart MiB | drain s | drained/s | relay CPU ms per envelope | missing | error |\n\
         |---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for b in &results.backlog {
        let _ = writeln!(
            out,
            "| {} | {} / {} | {:.1} | {:.2} | {:.2} | {:.0} | {:.1} | {} | {:.4} | {} | {} |",
            b.run,
            count(b.envelopes),
            count(b.mailboxes as u64),
            b.fill_seconds,
            b.restart_listening_seconds,
            b.restart_first_delivery_seconds,
            b.rss_bytes_after_restart as f64 / 1048576.0,
            b.drain_seconds,
            count(b.drain_per_second.round() as u64),
            b.relay_cpu_ms_per_envelope,
            count(b.missing),
            b.first_error.as_deref().unwrap_or("–"),
        );
    }
    out.push('\n');
}

fn idle(out: &mut String, results: &Results) {
    if results.idle.is_empty() {
        return;
    }
    out.push_str(
        "#### Hearth relay: idle connections\n\n\
         | connections open (failed) | alive after hold | relay RSS before / all open / after hold MiB | per connection KiB |\n\
         |---|---|---|---|\n",
    );
    for i in &results.idle {
        let mib = |b: u64| b as f64 / 1048576.0;
        let _ = writeln!(
            out,
            "| {} ({}) | {} | {:.1} / {:.1} / {:.1} | {:.1} |",
            count(i.connections_open as u64),
            count(i.connections_failed as u64),
            count(i.connections_alive_after_hold as u64),
            mib(i.relay_rss_bytes_before),
            mib(i.relay_rss_bytes_open),
            mib(i.relay_rss_bytes_after),
            i.relay_rss_bytes_per_connection / 1024.0,
        );
    }
    out.push('\n');
}

fn durability(out: &mut String, results: &Results) {
    let mut seen: Vec<&str> = Vec::new();
    out.push_str("#### What an acknowledgement means\n\n");
    for s in &results.summary {
        if seen.contains(&s.system.as_str()) {
            continue;
        }
        seen.push(&s.system);
        let _ = writeln!(
            out,
            "- **{}**: {} — {}",
            s.system,
            if s.durability.fsynced_before_ack {
                "fsynced before the ack"
            } else {
                "**not** fsynced before the ack"
            },
            s.durability.note
        );
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::peer::{Durability, Transport};
    use crate::compare::results::Setting;

    fn flat(value: f64) -> Spread {
        Spread {
            median: value,
            min: value,
            max: value,
        }
    }

    fn summary(system: &str, transport: Transport, send_errors: u64) -> Summary {
        Summary {
            system: system.into(),
            workload: "1:1 max rate".into(),
            durability: Durability {
                fsynced_before_ack: true,
                note: "n".into(),
            },
            transport,
            runs: 3,
            failed_checks: 0,
            send_errors,
            runs_with_send_errors: usize::from(send_errors > 0),
            messages_per_second: flat(1000.0),
            deliveries_per_second: flat(1000.0),
            p50_ms: flat(1.0),
            p99_ms: flat(2.0),
            p99_9_ms: flat(3.0),
            server_cpu_ms_per_message: flat(0.0123),
            load_generator_cpu_ms_per_message: flat(0.0456),
            median_run: 1,
        }
    }

    fn results(summary: Vec<Summary>) -> Results {
        Results {
            setting: Setting {
                command: "x".into(),
                cpus: 2,
                load_average_start: "0.1 0.1 0.1".into(),
                load_average_end: String::new(),
                runs: 3,
            },
            skipped: Vec::new(),
            rows: Vec::new(),
            summary,
            backlog: Vec::new(),
            idle: Vec::new(),
        }
    }

    /// The cells of the table row that starts with `system`.
    fn cells(markdown: &str, system: &str) -> Vec<String> {
        let line = markdown
            .lines()
            .find(|l| l.starts_with(&format!("| {system} |")))
            .unwrap();
        line.trim_matches('|')
            .split(" | ")
            .map(|c| c.trim().to_owned())
            .collect()
    }

    #[test]
    fn rows_say_encryption_load_generator_cpu_and_send_errors() {
        let markdown = markdown(&results(vec![
            summary("Hearth relay", Transport::quic(), 0),
            summary("NATS JetStream", Transport::plaintext(), 0),
            summary("NATS JetStream (TLS)", Transport::tls("TLS 1.3"), 12),
        ]));
        let header = markdown
            .lines()
            .find(|l| l.starts_with("| system"))
            .unwrap();
        assert!(header.contains("| encrypted |"));
        assert!(header.contains("| load generator CPU ms per message |"));
        assert!(header.contains("| send errors | delivery check |"));
        let columns = header.matches('|').count();
        for system in ["Hearth relay", "NATS JetStream", "NATS JetStream (TLS)"] {
            let line = markdown
                .lines()
                .find(|l| l.starts_with(&format!("| {system} |")))
                .unwrap();
            assert_eq!(line.matches('|').count(), columns, "{line}");
        }
        let hearth = cells(&markdown, "Hearth relay");
        assert_eq!(hearth[1], "yes (QUIC, TLS 1.3)");
        assert_eq!(hearth[8], "0.0123");
        assert_eq!(hearth[9], "0.0456");
        assert_eq!((hearth[10].as_str(), hearth[11].as_str()), ("0", "OK"));
        assert_eq!(cells(&markdown, "NATS JetStream")[1], "no");
        let tls = cells(&markdown, "NATS JetStream (TLS)");
        assert_eq!(tls[1], "yes (TLS 1.3 over TCP)");
        assert_eq!(tls[10], "**12**");
        assert_eq!(tls[11], "**send errors in 1 of 3 runs**");
    }

    #[test]
    fn failed_checks_and_send_errors_are_both_named() {
        let mut both = summary("Redis", Transport::plaintext(), 3);
        both.failed_checks = 2;
        assert_eq!(
            check(&both),
            "**2 of 3 runs failed**; **send errors in 1 of 3 runs**"
        );
        assert_eq!(check(&summary("Redis", Transport::plaintext(), 0)), "OK");
    }

    #[test]
    fn spreads_collapse_when_all_runs_agree() {
        let s = Spread {
            median: 1234.4,
            min: 1000.0,
            max: 2000.0,
        };
        assert_eq!(spread(s, 0), "1,234 (1,000–2,000)");
        let same = Spread {
            median: 1.5,
            min: 1.5,
            max: 1.5,
        };
        assert_eq!(spread(same, 2), "1.50");
    }
}
