//! SVG charts of the comparison (plotters' SVG backend, which needs no
//! system fonts): throughput per system, latency CDFs, the circle cost
//! ratio and the relay's memory per idle connection.

use std::path::Path;

use plotters::prelude::*;

use super::results::{CdfPoint, Results, Summary};
use super::tables::circle_ratios;

/// Chart size in pixels.
const SIZE: (u32, u32) = (960, 520);
/// Bars of systems whose acknowledgement means fsynced.
const FSYNCED: RGBColor = RGBColor(0x2b, 0x6c, 0xb0);
/// Bars of the others.
const NOT_FSYNCED: RGBColor = RGBColor(0xa0, 0xa8, 0xb0);
/// Goal lines.
const GOAL: RGBColor = RGBColor(0xc0, 0x30, 0x30);
/// Relay RSS goal for 10,000 idle clients: 1 GiB, per connection.
const IDLE_GOAL_KIB_PER_CONNECTION: f64 = 1024.0 * 1024.0 / 10_000.0;

/// One bar: a median with its min–max.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Bar {
    /// Label under the bar.
    pub(crate) label: String,
    /// Height (the median).
    pub(crate) value: f64,
    /// Lower end of the whisker.
    pub(crate) low: f64,
    /// Upper end of the whisker.
    pub(crate) high: f64,
    /// Whether the system fsyncs before acknowledging.
    pub(crate) fsynced: bool,
}

/// Renders every chart the results allow into `out`.
pub(crate) fn render_all(out: &Path, results: &Results) -> anyhow::Result<()> {
    let throughput = throughput_bars(&results.summary, "1:1 max rate");
    if !throughput.is_empty() {
        bar_chart(
            &out.join("throughput.svg"),
            "1:1 check-ins, 1 KiB, 100 → 100, max rate (grey: acked before fsync)",
            "messages per second",
            &throughput,
            None,
        )?;
    }
    let mut workloads: Vec<&str> = Vec::new();
    for summary in &results.summary {
        if summary.workload.starts_with("1:1") && !workloads.contains(&summary.workload.as_str()) {
            workloads.push(&summary.workload);
        }
    }
    for workload in workloads {
        let lines = cdf_lines(results, workload);
        let file = format!("latency-cdf-{}.svg", slug(workload));
        cdf_chart(&out.join(file), workload, &lines)?;
    }
    let ratios: Vec<Bar> = circle_ratios(results)
        .into_iter()
        .map(|(system, ratio)| Bar {
            fsynced: fsynced(&results.summary, &system),
            label: short(&system),
            value: ratio,
            low: ratio,
            high: ratio,
        })
        .collect();
    if !ratios.is_empty() {
        bar_chart(
            &out.join("circle-cost.svg"),
            "Server CPU of a message to 30 ÷ a 1:1 message (goal for Hearth: ≤ 3×)",
            "ratio",
            &ratios,
            Some(3.0),
        )?;
    }
    let idle: Vec<Bar> = results
        .idle
        .iter()
        .enumerate()
        .map(|(i, report)| {
            let kib = report.relay_rss_bytes_per_connection / 1024.0;
            Bar {
                label: format!("run {}", i + 1),
                value: kib,
                low: kib,
                high: kib,
                fsynced: true,
            }
        })
        .collect();
    if !idle.is_empty() {
        bar_chart(
            &out.join("memory-per-connection.svg"),
            "Hearth relay RSS per idle connection (goal: 10,000 clients ≤ 1 GiB)",
            "KiB per connection",
            &idle,
            Some(IDLE_GOAL_KIB_PER_CONNECTION),
        )?;
    }
    Ok(())
}

/// The bars of `workload`'s messages per second, one per system.
pub(crate) fn throughput_bars(summary: &[Summary], workload: &str) -> Vec<Bar> {
    summary
        .iter()
        .filter(|s| s.workload == workload)
        .map(|s| Bar {
            label: short(&s.system),
            value: s.messages_per_second.median,
            low: s.messages_per_second.min,
            high: s.messages_per_second.max,
            fsynced: s.durability.fsynced_before_ack,
        })
        .collect()
}

/// Whether `system` fsyncs before acknowledging.
fn fsynced(summary: &[Summary], system: &str) -> bool {
    summary
        .iter()
        .any(|s| s.system == system && s.durability.fsynced_before_ack)
}

/// A short label: `Redis Streams (fsync always)` → `Redis always`,
/// `Mosquitto (MQTT QoS 1)` → `Mosquitto`, `Hearth relay` → `Hearth`; a
/// TLS row keeps `TLS`: `NATS JetStream (TLS)` → `NATS JetStream TLS`.
pub(crate) fn short(system: &str) -> String {
    for marker in [", TLS)", " (TLS)"] {
        if let Some(at) = system.find(marker) {
            let close = if marker.starts_with(',') { ")" } else { "" };
            let plain = format!("{}{close}{}", &system[..at], &system[at + marker.len()..]);
            return format!("{} TLS", short(&plain));
        }
    }
    if let Some(policy) = system
        .strip_prefix("Redis")
        .and_then(|rest| rest.split("fsync ").nth(1))
    {
        return format!("Redis {}", policy.trim_end_matches(')'));
    }
    let name = system.split(" (").next().unwrap_or(system);
    name.trim_end_matches(" relay").to_owned()
}

/// A file-name-safe form of a workload name.
fn slug(workload: &str) -> String {
    let mut slug = String::new();
    for c in workload.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    slug.trim_matches('-').to_owned()
}

/// A quantile on the "nines" axis: 0.9 → 1, 0.99 → 2, 0.999 → 3;
/// `None` for the maximum.
pub(crate) fn nines(quantile: f64) -> Option<f64> {
    (quantile < 1.0).then(|| -(1.0 - quantile).log10())
}

/// Each system's CDF of `workload` from its median run.
fn cdf_lines(results: &Results, workload: &str) -> Vec<(String, Vec<CdfPoint>)> {
    results
        .summary
        .iter()
        .filter(|s| s.workload == workload)
        .filter_map(|s| {
            let row = results.rows.iter().find(|r| {
                r.system == s.system && r.workload == workload && r.run == s.median_run
            })?;
            Some((short(&s.system), row.delivery_cdf.clone()))
        })
        .collect()
}

/// A bar chart with min–max whiskers and an optional goal line.
fn bar_chart(
    path: &Path,
    title: &str,
    y_label: &str,
    bars: &[Bar],
    goal: Option<f64>,
) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(chart_error)?;
    let top = bars
        .iter()
        .map(|b| b.high)
        .chain(goal)
        .fold(0.0_f64, f64::max)
        * 1.15;
    let count = bars.len();
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(90)
        // A segmented range of `0..n` has a slot for `n` too.
        .build_cartesian_2d(
            (0..count.saturating_sub(1)).into_segmented(),
            0.0..top.max(1e-9),
        )
        .map_err(chart_error)?;
    let formatter = |x: &SegmentValue<usize>| match x {
        SegmentValue::CenterOf(i) => bars.get(*i).map(|b| b.label.clone()).unwrap_or_default(),
        _ => String::new(),
    };
    let decimals = if top > 100.0 { 0 } else { 1 };
    let y_formatter = |y: &f64| format!("{y:.decimals$}");
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(count)
        .x_label_formatter(&formatter)
        .y_label_formatter(&y_formatter)
        .y_desc(y_label)
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(chart_error)?;
    chart
        .draw_series(bars.iter().enumerate().map(|(i, bar)| {
            let colour = if bar.fsynced { FSYNCED } else { NOT_FSYNCED };
            let end = if i + 1 == count {
                SegmentValue::Last
            } else {
                SegmentValue::Exact(i + 1)
            };
            let mut rectangle = Rectangle::new(
                [(SegmentValue::Exact(i), 0.0), (end, bar.value)],
                colour.filled(),
            );
            rectangle.set_margin(0, 0, 18, 18);
            rectangle
        }))
        .map_err(chart_error)?;
    chart
        .draw_series(
            bars.iter()
                .enumerate()
                .filter(|(_, b)| b.low < b.high)
                .map(|(i, bar)| {
                    ErrorBar::new_vertical(
                        SegmentValue::CenterOf(i),
                        bar.low,
                        bar.value,
                        bar.high,
                        BLACK.stroke_width(2),
                        12,
                    )
                }),
        )
        .map_err(chart_error)?;
    if let Some(goal) = goal {
        chart
            .draw_series(LineSeries::new(
                [(SegmentValue::Exact(0), goal), (SegmentValue::Last, goal)],
                GOAL.stroke_width(2),
            ))
            .map_err(chart_error)?;
    }
    root.present().map_err(chart_error)?;
    Ok(())
}

/// Latency CDFs: the nines on x, milliseconds (log) on y.
fn cdf_chart(path: &Path, workload: &str, lines: &[(String, Vec<CdfPoint>)]) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(chart_error)?;
    let points = |cdf: &[CdfPoint]| -> Vec<(f64, f64)> {
        cdf.iter()
            .filter_map(|p| Some((nines(p.quantile)?, p.ms.max(0.01))))
            .collect()
    };
    let top = lines
        .iter()
        .flat_map(|(_, cdf)| points(cdf))
        .map(|(_, ms)| ms)
        .fold(1.0_f64, f64::max)
        * 1.5;
    let bottom = lines
        .iter()
        .flat_map(|(_, cdf)| points(cdf))
        .map(|(_, ms)| ms)
        .fold(top, f64::min)
        / 1.5;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("Send → delivery latency, {workload} (median run of each)"),
            ("sans-serif", 18),
        )
        .margin(12)
        .margin_right(40)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..4.0_f64, (bottom..top).log_scale())
        .map_err(chart_error)?;
    let percent = |x: &f64| format!("{}%", 100.0 - 100.0 * 10f64.powf(-*x));
    chart
        .configure_mesh()
        .x_labels(5)
        .x_label_formatter(&percent)
        .x_desc("percentile")
        .y_desc("milliseconds")
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(chart_error)?;
    for (i, (system, cdf)) in lines.iter().enumerate() {
        let colour = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(points(cdf), colour.stroke_width(2)))
            .map_err(chart_error)?
            .label(system.clone())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(chart_error)?;
    root.present().map_err(chart_error)?;
    Ok(())
}

/// plotters' errors borrow the backend; keep only their text.
fn chart_error(error: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("drawing a chart: {error}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_short() {
        assert_eq!(short("Hearth relay"), "Hearth");
        assert_eq!(short("Mosquitto (MQTT QoS 1)"), "Mosquitto");
        assert_eq!(short("Redis Streams (fsync always)"), "Redis always");
        assert_eq!(short("Redis Streams (fsync everysec)"), "Redis everysec");
        assert_eq!(short("PostgreSQL (queue table)"), "PostgreSQL");
        assert_eq!(short("NATS JetStream"), "NATS JetStream");
        assert_eq!(short("NATS JetStream (TLS)"), "NATS JetStream TLS");
        assert_eq!(
            short("Redis Streams (fsync always, TLS)"),
            "Redis always TLS"
        );
        assert_eq!(short("Mosquitto (MQTT QoS 1, TLS)"), "Mosquitto TLS");
        assert_eq!(short("PostgreSQL (queue table, TLS)"), "PostgreSQL TLS");
        assert_eq!(slug("1:1 at 5000/s"), "1-1-at-5000-s");
    }

    #[test]
    fn throughput_bars_take_one_workload_with_its_spread() {
        use crate::compare::peer::Durability;
        use crate::compare::results::Spread;
        let spread = |median: f64| Spread {
            median,
            min: median - 1.0,
            max: median + 1.0,
        };
        let summary = |system: &str, workload: &str, fsynced: bool| Summary {
            system: system.into(),
            workload: workload.into(),
            durability: Durability {
                fsynced_before_ack: fsynced,
                note: String::new(),
            },
            transport: Default::default(),
            runs: 3,
            failed_checks: 0,
            send_errors: 0,
            runs_with_send_errors: 0,
            messages_per_second: spread(100.0),
            deliveries_per_second: spread(100.0),
            p50_ms: spread(2.0),
            p99_ms: spread(9.0),
            p99_9_ms: spread(10.0),
            server_cpu_ms_per_message: spread(0.05),
            load_generator_cpu_ms_per_message: spread(0.02),
            median_run: 2,
        };
        let all = [
            summary("Hearth relay", "1:1 max rate", true),
            summary("Redis Streams (fsync everysec)", "1:1 max rate", false),
            summary("Hearth relay", "circle 1→30", true),
        ];
        let bars = throughput_bars(&all, "1:1 max rate");
        assert_eq!(bars.len(), 2);
        assert_eq!(bars[0].label, "Hearth");
        assert_eq!(
            (bars[0].low, bars[0].value, bars[0].high),
            (99.0, 100.0, 101.0)
        );
        assert!(bars[0].fsynced && !bars[1].fsynced);
        assert_eq!(bars[1].label, "Redis everysec");
    }

    #[test]
    fn nines_axis() {
        assert_eq!(nines(0.0), Some(0.0));
        assert!((nines(0.99).unwrap() - 2.0).abs() < 1e-9);
        assert!((nines(0.999).unwrap() - 3.0).abs() < 1e-9);
        assert_eq!(nines(1.0), None);
    }

    #[test]
    fn bar_chart_renders_svg_without_fonts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bars.svg");
        let bars = vec![
            Bar {
                label: "Hearth".into(),
                value: 10.0,
                low: 8.0,
                high: 12.0,
                fsynced: true,
            },
            Bar {
                label: "Redis".into(),
                value: 5.0,
                low: 5.0,
                high: 5.0,
                fsynced: false,
            },
        ];
        bar_chart(&path, "title", "y", &bars, Some(7.0)).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..40.min(svg.len())]);
        assert!(svg.contains("Hearth") && svg.contains("Redis"));
    }
}
