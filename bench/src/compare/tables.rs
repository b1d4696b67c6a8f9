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
            "| system | fsynced before ack | messages/s | deliveries/s | p50 ms | p99 ms | p99.9 ms | server CPU ms per message | delivery check |\n\
             |---|---|---|---|---|---|---|---|---|\n",
        );
        for s in results.summary.iter().filter(|s| s.workload == workload) {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                s.system,
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

fn check(summary: &Summary) -> String {
    if summary.failed_checks == 0 {
        "OK".into()
    } else {
        format!(
            "**{} of {} runs failed**",
            summary.failed_checks, summary.runs
        )
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
