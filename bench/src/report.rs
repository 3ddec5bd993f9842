//! Turns a run into the markdown table and the SVG chart, with every figure also given as a ratio to the bare
//! pass-through, which is what carries from one machine to another.

use std::fmt::Write as _;

use crate::run::{RunResult, SystemId, SystemResult};

/// Derived figures of one system.
#[derive(Debug, Clone)]
pub struct Row {
    /// Which system.
    pub system: SystemId,
    /// Its label.
    pub label: String,
    /// Added latency at concurrency 1, p50 and p99, ms.
    pub added_p50: Option<f64>,
    /// p99.
    pub added_p99: Option<f64>,
    /// Highest rate with p99 under 5 ms.
    pub rate_5: Option<f64>,
    /// Highest rate with p99 under 50 ms.
    pub rate_50: Option<f64>,
    /// Requests per second at concurrency 64, slow mock.
    pub c64_rps: Option<f64>,
    /// Time to first token, p50 and p99, ms.
    pub ttft_p50: Option<f64>,
    /// p99.
    pub ttft_p99: Option<f64>,
    /// Added time to first token over the direct stream, p50, ms.
    pub ttft_added_p50: Option<f64>,
    /// Peak memory, MiB.
    pub rss: Option<f64>,
    /// CPU seconds per 1000 requests.
    pub cpu: Option<f64>,
    /// Load average before and after.
    pub load: (f64, f64),
}

fn baseline(run: &RunResult, system: SystemId) -> Option<&SystemResult> {
    let bedrock = system == SystemId::HubBedrock;
    run.systems
        .iter()
        .find(|s| s.system == SystemId::Direct && s.label.contains("Bedrock") == bedrock)
}

/// The rows, direct baselines included.
pub fn rows(run: &RunResult) -> Vec<Row> {
    run.systems
        .iter()
        .map(|s| {
            let base = baseline(run, s.system);
            let diff = |a: Option<f64>, b: Option<f64>| Some(a? - b?);
            let c1 = |r: &SystemResult, p99: bool| {
                r.c1.as_ref().map(|c| if p99 { c.p99_ms } else { c.p50_ms })
            };
            let ttft = |r: &SystemResult| r.ttft.as_ref().map(|t| t.p50_ms);
            Row {
                system: s.system,
                label: s.label.clone(),
                added_p50: diff(c1(s, false), base.and_then(|b| c1(b, false))),
                added_p99: diff(c1(s, true), base.and_then(|b| c1(b, true))),
                rate_5: s.max_rate_p99_5ms.map(f64::from),
                rate_50: s.max_rate_p99_50ms.map(f64::from),
                c64_rps: s.c64.as_ref().map(|c| c.rps),
                ttft_p50: ttft(s),
                ttft_p99: s.ttft.as_ref().map(|t| t.p99_ms),
                ttft_added_p50: diff(ttft(s), base.and_then(ttft)),
                rss: s.peak_rss_mib,
                cpu: s.cpu_s_per_1k,
                load: (s.load_before, s.load_after),
            }
        })
        .collect()
}

fn num(v: Option<f64>, decimals: usize) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{v:.decimals$}"),
        _ => "–".to_owned(),
    }
}

fn ratio(v: Option<f64>, base: Option<f64>) -> String {
    match (v, base) {
        (Some(v), Some(b)) if v.is_finite() && b.is_finite() && b.abs() > f64::EPSILON => {
            let r = v / b;
            if r >= 10.0 {
                format!(" ({r:.0}×)")
            } else if r >= 0.1 {
                format!(" ({r:.2}×)")
            } else {
                format!(" ({r:.3}×)")
            }
        }
        _ => String::new(),
    }
}

/// The markdown table (figures, then the ratio to the pass-through in parentheses).
pub fn markdown(run: &RunResult) -> String {
    let rows = rows(run);
    let pass = rows.iter().find(|r| r.system == SystemId::Passthrough);
    let p = |f: fn(&Row) -> Option<f64>| pass.and_then(f);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| system | added latency c=1, p50 / p99 (ms) | max req/s, p99 < 5 ms | max req/s, p99 < 50 ms | req/s at c=64, 20 ms mock | streaming TTFT p50 / p99 (ms), 20 ms mock | peak memory (MiB) | CPU-s per 1000 req | load avg before → after |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        let direct = r.system == SystemId::Direct;
        let added = if direct {
            "baseline".to_owned()
        } else {
            format!(
                "{}{} / {}{}",
                num(r.added_p50, 3),
                ratio(r.added_p50, p(|r| r.added_p50)),
                num(r.added_p99, 3),
                ratio(r.added_p99, p(|r| r.added_p99)),
            )
        };
        let _ = writeln!(
            out,
            "| {} | {} | {}{} | {}{} | {}{} | {} / {}{} | {}{} | {}{} | {:.2} → {:.2} |",
            r.label,
            added,
            num(r.rate_5, 0),
            ratio(r.rate_5, p(|r| r.rate_5)),
            num(r.rate_50, 0),
            ratio(r.rate_50, p(|r| r.rate_50)),
            num(r.c64_rps, 0),
            ratio(r.c64_rps, p(|r| r.c64_rps)),
            num(r.ttft_p50, 2),
            num(r.ttft_p99, 2),
            if direct {
                String::new()
            } else {
                format!(" (+{} over direct)", num(r.ttft_added_p50, 2))
            },
            if direct {
                "–".to_owned()
            } else {
                num(r.rss, 1)
            },
            if direct {
                String::new()
            } else {
                ratio(r.rss, p(|r| r.rss))
            },
            if direct {
                "–".to_owned()
            } else {
                num(r.cpu, 3)
            },
            if direct {
                String::new()
            } else {
                ratio(r.cpu, p(|r| r.cpu))
            },
            r.load.0,
            r.load.1,
        );
    }
    out
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The chart: one panel per headline figure, a bar per system, each labelled with its value and its ratio
/// to the pass-through.
pub fn svg(run: &RunResult) -> String {
    let rows: Vec<Row> = rows(run)
        .into_iter()
        .filter(|r| r.system != SystemId::Direct)
        .collect();
    let pass = rows
        .iter()
        .find(|r| r.system == SystemId::Passthrough)
        .cloned();
    type Pick = fn(&Row) -> Option<f64>;
    let panels: [(&str, Pick, bool); 4] = [
        (
            "Added latency at concurrency 1, p50 (ms) — lower is better",
            |r| r.added_p50,
            false,
        ),
        (
            "Highest rate with p99 under 50 ms (req/s) — higher is better",
            |r| r.rate_50,
            true,
        ),
        (
            "Requests per second at concurrency 64, 20 ms mock — higher is better",
            |r| r.c64_rps,
            true,
        ),
        (
            "CPU-seconds per 1000 requests (one core) — lower is better",
            |r| r.cpu,
            false,
        ),
    ];
    let width = 960.0;
    let label_w = 250.0;
    let bar_h = 18.0;
    let gap = 6.0;
    let panel_h = 34.0 + rows.len() as f64 * (bar_h + gap) + 10.0;
    let height = 40.0 + panels.len() as f64 * panel_h;
    let colours = [
        "#7f8c8d", "#1f6feb", "#4f9bff", "#d9822b", "#8e44ad", "#2e9e5b",
    ];
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="DejaVu Sans, Arial, sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        out,
        r#"<text x="10" y="24" font-size="15" font-weight="bold">Side by side: the hub against other gateways (ratios to the bare pass-through in parentheses)</text>"#
    );
    for (i, (title, pick, _higher)) in panels.iter().enumerate() {
        let top = 40.0 + i as f64 * panel_h;
        let _ = writeln!(
            out,
            r#"<text x="10" y="{:.1}" font-weight="bold">{}</text>"#,
            top + 18.0,
            escape(title)
        );
        let max = rows
            .iter()
            .filter_map(pick)
            .filter(|v| v.is_finite())
            .fold(0.0_f64, f64::max)
            .max(f64::EPSILON);
        let span = width - label_w - 190.0;
        for (j, r) in rows.iter().enumerate() {
            let y = top + 30.0 + j as f64 * (bar_h + gap);
            let _ = writeln!(
                out,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
                label_w - 8.0,
                y + bar_h - 5.0,
                escape(&r.label)
            );
            let value = pick(r).filter(|v| v.is_finite());
            let w = value.map_or(0.0, |v| (v.max(0.0) / max * span).max(1.0));
            let colour = colours[(r.system as usize) % colours.len()];
            let _ = writeln!(
                out,
                r#"<rect x="{label_w:.1}" y="{y:.1}" width="{w:.1}" height="{bar_h:.1}" fill="{colour}"/>"#
            );
            let text = match value {
                Some(v) => format!(
                    "{}{}",
                    if v >= 10.0 {
                        format!("{v:.0}")
                    } else {
                        format!("{v:.3}")
                    },
                    ratio(Some(v), pass.as_ref().and_then(pick))
                ),
                None => "not measured".to_owned(),
            };
            let _ = writeln!(
                out,
                r#"<text x="{:.1}" y="{:.1}">{}</text>"#,
                label_w + w + 6.0,
                y + bar_h - 5.0,
                escape(&text)
            );
        }
    }
    let _ = writeln!(out, "</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_are_relative_to_the_base_and_absent_without_one() {
        assert_eq!(ratio(Some(3.0), Some(1.5)), " (2.00×)");
        assert_eq!(ratio(Some(30.0), Some(1.5)), " (20×)");
        assert_eq!(ratio(Some(3.0), None), "");
        assert_eq!(ratio(Some(3.0), Some(0.0)), "");
    }

    #[test]
    fn svg_text_is_escaped() {
        assert_eq!(escape("a < b & c"), "a &lt; b &amp; c");
    }
}
