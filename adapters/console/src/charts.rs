//! Charts drawn on the server as SVG with `plotters`: stacked bars over labelled buckets, with an optional
//! limit line per bucket (a budget).
//!
//! Constraints: the SVG is self-contained (no script, no external font or image), so the page's
//! Content-Security-Policy holds; every chart has a title and a text summary for screen readers, and the
//! page shows the same numbers in a table beside it.

use plotters::prelude::*;

/// Colours by series, chosen to stay apart for common colour-vision deficiencies (Okabe-Ito).
const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(213, 94, 0),
    RGBColor(86, 180, 233),
    RGBColor(204, 121, 167),
    RGBColor(240, 228, 66),
    RGBColor(0, 0, 0),
];

/// One series of a stacked bar chart: a name and a value per bucket.
#[derive(Debug, Clone)]
pub struct Series {
    /// Shown in the legend.
    pub name: String,
    /// One value per bucket.
    pub values: Vec<f64>,
}

/// A stacked bar chart over `buckets` as SVG markup; `limits` (one per bucket, when given) are drawn as a
/// line over each bar.
pub fn stacked_bars(
    title: &str,
    buckets: &[String],
    series: &[Series],
    limits: Option<&[Option<f64>]>,
) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (760, 300)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let totals: Vec<f64> = (0..buckets.len())
            .map(|i| {
                series
                    .iter()
                    .map(|s| s.values.get(i).copied().unwrap_or(0.0))
                    .sum()
            })
            .collect();
        let top = totals
            .iter()
            .copied()
            .chain(limits.into_iter().flatten().flatten().copied())
            .fold(0.0_f64, f64::max)
            .max(1.0)
            * 1.1;
        let n = buckets.len().max(1);
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0_usize..n, 0.0..top)
            .map_err(|e| e.to_string())?;
        let every = n.div_ceil(12).max(1);
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n.min(12))
            .x_label_formatter(&|i| {
                if i % every == 0 {
                    buckets.get(*i).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .y_label_formatter(&|v| {
                if *v >= 10_000.0 {
                    format!("{:.0}k", v / 1000.0)
                } else if v.fract() == 0.0 {
                    format!("{v:.0}")
                } else {
                    format!("{v:.2}")
                }
            })
            .label_style(("sans-serif", 11))
            .draw()
            .map_err(|e| e.to_string())?;
        let mut base = vec![0.0_f64; n];
        for (k, s) in series.iter().enumerate() {
            let color = PALETTE[k % PALETTE.len()];
            let bars: Vec<_> = (0..n)
                .map(|i| {
                    let v = s.values.get(i).copied().unwrap_or(0.0);
                    let bar = Rectangle::new([(i, base[i]), (i + 1, base[i] + v)], color.filled());
                    base[i] += v;
                    bar
                })
                .collect();
            chart
                .draw_series(bars)
                .map_err(|e| e.to_string())?
                .label(s.name.clone())
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled())
                });
        }
        if let Some(limits) = limits {
            let lines: Vec<_> = limits
                .iter()
                .enumerate()
                .filter_map(|(i, l)| {
                    l.map(|l| PathElement::new(vec![(i, l), (i + 1, l)], BLACK.stroke_width(2)))
                })
                .collect();
            if !lines.is_empty() {
                chart
                    .draw_series(lines)
                    .map_err(|e| e.to_string())?
                    .label("budget")
                    .legend(|(x, y)| {
                        PathElement::new(vec![(x, y), (x + 10, y)], BLACK.stroke_width(2))
                    });
            }
        }
        if !series.is_empty() {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.9))
                .border_style(BLACK)
                .label_font(("sans-serif", 11))
                .position(SeriesLabelPosition::UpperRight)
                .draw()
                .map_err(|e| e.to_string())?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_is_svg_with_its_title_and_legend() {
        let svg = stacked_bars(
            "Calls by outcome",
            &["01-01".to_owned(), "01-02".to_owned()],
            &[
                Series {
                    name: "answered".to_owned(),
                    values: vec![3.0, 5.0],
                },
                Series {
                    name: "denied".to_owned(),
                    values: vec![1.0, 0.0],
                },
            ],
            Some(&[Some(4.0), None]),
        )
        .unwrap();
        assert!(svg.starts_with("<svg"), "{svg}");
        for text in ["Calls by outcome", "answered", "denied", "budget", "01-02"] {
            assert!(svg.contains(text), "{text}");
        }
        assert!(!svg.contains("<script"));
    }
}
