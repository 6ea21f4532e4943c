//! Self-contained SVG line charts of a replay: counts on the left axis (e.g. hosts in use),
//! percentages on the right (e.g. utilisation), one shared x axis (e.g. time).
//!
//! Left-axis series are solid lines, right-axis series dashed, each in its own colour, named in
//! a legend under the title. Series longer than [`MAX_POINTS`] are thinned by keeping, from each
//! run of consecutive points, the one with the largest value, so peaks survive. The output is a
//! pure function of the input (fixed layout, fixed number formatting), so charts can be diffed.

use std::fmt::Write as _;

/// Most points drawn per series.
pub const MAX_POINTS: usize = 2000;

const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 540.0;
const MARGIN_LEFT: f64 = 80.0;
const MARGIN_RIGHT: f64 = 80.0;
const MARGIN_BOTTOM: f64 = 60.0;
const TITLE_BASELINE: f64 = 28.0;
const LEGEND_TOP: f64 = 44.0;
const LEGEND_ROW: f64 = 18.0;
/// Rough width of one character of 12px sans-serif, for laying out the legend.
const CHAR_WIDTH: f64 = 7.0;
const PALETTE: [&str; 10] =
    ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"];

/// One named line: `(x, y)` points, in any order (they are drawn sorted by x).
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// An SVG chart of `left` series against the left axis and `right` series against the right
/// axis (which always spans at least 0–100, for percentages). Non-finite points are ignored.
pub fn svg_chart(
    title: &str,
    x_label: &str,
    left: &[Series],
    left_label: &str,
    right: &[Series],
    right_label: &str,
) -> String {
    let left: Vec<(&str, Vec<(f64, f64)>)> = left.iter().map(|s| (s.name.as_str(), downsample(&s.points))).collect();
    let right: Vec<(&str, Vec<(f64, f64)>)> = right.iter().map(|s| (s.name.as_str(), downsample(&s.points))).collect();
    let all = || left.iter().chain(&right).flat_map(|(_, p)| p.iter());

    let (x_min, x_max) = bounds(all().map(|p| p.0)).unwrap_or((0.0, 1.0));
    let x_axis = Axis::new(x_min, x_max);
    let left_axis = bounds(left.iter().flat_map(|(_, p)| p.iter().map(|p| p.1)))
        .map_or(Axis::new(0.0, 1.0), |(lo, hi)| Axis::new(lo.min(0.0), hi));
    let right_axis = bounds(right.iter().flat_map(|(_, p)| p.iter().map(|p| p.1)))
        .map_or(Axis::new(0.0, 100.0), |(lo, hi)| Axis::new(lo.min(0.0), hi.max(100.0)));

    // Legend entries: (name, colour, dashed), laid out in rows under the title.
    let entries: Vec<(&str, &str, bool)> = left
        .iter()
        .map(|(n, _)| (*n, false))
        .chain(right.iter().map(|(n, _)| (*n, true)))
        .enumerate()
        .map(|(i, (name, dashed))| (name, PALETTE[i % PALETTE.len()], dashed))
        .collect();
    let mut legend = String::new();
    let (mut lx, mut ly) = (MARGIN_LEFT, LEGEND_TOP);
    for (name, colour, dashed) in &entries {
        let width = 34.0 + CHAR_WIDTH * name.chars().count() as f64 + 16.0;
        if lx > MARGIN_LEFT && lx + width > WIDTH - MARGIN_RIGHT {
            lx = MARGIN_LEFT;
            ly += LEGEND_ROW;
        }
        let dash = if *dashed { r#" stroke-dasharray="6 3""# } else { "" };
        let _ = writeln!(
            legend,
            r#"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{colour}" stroke-width="2"{dash}/><text x="{}" y="{}">{}</text>"#,
            num(lx),
            num(ly),
            num(lx + 28.0),
            num(ly),
            num(lx + 34.0),
            num(ly + 4.0),
            escape(name)
        );
        lx += width;
    }
    let top = if entries.is_empty() { LEGEND_TOP } else { ly + LEGEND_ROW };

    let plot = Plot { left: MARGIN_LEFT, right: WIDTH - MARGIN_RIGHT, top, bottom: HEIGHT - MARGIN_BOTTOM };
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#,
        w = num(WIDTH),
        h = num(HEIGHT)
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle" font-size="16" font-weight="bold">{}</text>"#,
        num(WIDTH / 2.0),
        num(TITLE_BASELINE),
        escape(title)
    );
    svg.push_str(&legend);

    // Grid lines follow the left axis, or the right one when there is no left series.
    let grid_axis = if left.is_empty() && !right.is_empty() { &right_axis } else { &left_axis };
    for tick in grid_axis.ticks() {
        let y = plot.y(grid_axis, tick);
        let _ = writeln!(
            svg,
            r##"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#e0e0e0"/>"##,
            num(plot.left),
            num(y),
            num(plot.right),
            num(y)
        );
    }
    let _ = writeln!(
        svg,
        r#"<rect x="{}" y="{}" width="{}" height="{}" fill="none" stroke="black"/>"#,
        num(plot.left),
        num(plot.top),
        num(plot.right - plot.left),
        num(plot.bottom - plot.top)
    );

    // X axis.
    for tick in x_axis.ticks() {
        let x = plot.x(&x_axis, tick);
        let _ = writeln!(
            svg,
            r#"<line x1="{x}" y1="{b}" x2="{x}" y2="{b6}" stroke="black"/><text x="{x}" y="{t}" text-anchor="middle">{}</text>"#,
            x_axis.label(tick),
            x = num(x),
            b = num(plot.bottom),
            b6 = num(plot.bottom + 6.0),
            t = num(plot.bottom + 20.0)
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
        num((plot.left + plot.right) / 2.0),
        num(HEIGHT - 16.0),
        escape(x_label)
    );

    // Y axes: ticks, tick labels and the rotated axis label.
    let sides = [
        (&left_axis, !left.is_empty(), left_label, plot.left, -1.0),
        (&right_axis, !right.is_empty(), right_label, plot.right, 1.0),
    ];
    for (axis, present, label, x, dir) in sides {
        if !present {
            continue;
        }
        let anchor = if dir < 0.0 { "end" } else { "start" };
        for tick in axis.ticks() {
            let y = plot.y(axis, tick);
            let _ = writeln!(
                svg,
                r#"<line x1="{}" y1="{y}" x2="{}" y2="{y}" stroke="black"/><text x="{}" y="{}" text-anchor="{anchor}">{}</text>"#,
                num(x),
                num(x + dir * 6.0),
                num(x + dir * 9.0),
                num(y + 4.0),
                axis.label(tick),
                y = num(y)
            );
        }
        let (lx, ly, angle) = (if dir < 0.0 { 20.0 } else { WIDTH - 20.0 }, (plot.top + plot.bottom) / 2.0, dir * 90.0);
        let _ = writeln!(
            svg,
            r#"<text x="{x}" y="{y}" text-anchor="middle" transform="rotate({} {x} {y})">{}</text>"#,
            num(angle),
            escape(label),
            x = num(lx),
            y = num(ly)
        );
    }

    // The lines themselves.
    let lines = left.iter().map(|s| (s, &left_axis)).chain(right.iter().map(|s| (s, &right_axis)));
    for (((_, points), axis), (_, colour, dashed)) in lines.zip(&entries) {
        if points.is_empty() {
            continue;
        }
        let mut coords = String::with_capacity(points.len() * 14);
        for (i, &(px, py)) in points.iter().enumerate() {
            if i > 0 {
                coords.push(' ');
            }
            let _ = write!(coords, "{},{}", num(plot.x(&x_axis, px)), num(plot.y(axis, py)));
        }
        let dash = if *dashed { r#" stroke-dasharray="6 3""# } else { "" };
        let _ = writeln!(
            svg,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="1.5" stroke-linejoin="round"{dash} points="{coords}"/>"#
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// The drawing area in pixels.
struct Plot {
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
}

impl Plot {
    fn x(&self, axis: &Axis, v: f64) -> f64 {
        self.left + axis.fraction(v) * (self.right - self.left)
    }

    fn y(&self, axis: &Axis, v: f64) -> f64 {
        self.bottom - axis.fraction(v) * (self.bottom - self.top)
    }
}

/// A linear axis with "nice" bounds: multiples of a step of 1, 2 or 5 × 10^k.
struct Axis {
    lo: f64,
    hi: f64,
    step: f64,
}

impl Axis {
    fn new(lo: f64, hi: f64) -> Axis {
        let (lo, hi) = if hi > lo { (lo, hi) } else { (lo - 1.0, lo + 1.0) };
        let rough = (hi - lo) / 8.0;
        let magnitude = 10f64.powf(rough.log10().floor());
        let step = [1.0, 2.0, 5.0, 10.0].into_iter().map(|m| m * magnitude).find(|&s| s >= rough).unwrap_or(rough);
        Axis { lo: (lo / step).floor() * step, hi: (hi / step).ceil() * step, step }
    }

    fn fraction(&self, v: f64) -> f64 {
        (v - self.lo) / (self.hi - self.lo)
    }

    fn ticks(&self) -> Vec<f64> {
        let n = ((self.hi - self.lo) / self.step).round() as i64;
        (0..=n).map(|i| self.lo + i as f64 * self.step).collect()
    }

    /// A tick value with as many decimals as the step needs, thousands separated.
    fn label(&self, v: f64) -> String {
        let decimals = (-self.step.log10().floor()).max(0.0) as usize;
        let text = format!("{:.*}", decimals, v);
        let (sign, text) = match text.strip_prefix('-') {
            Some(rest) if rest.bytes().any(|b| matches!(b, b'1'..=b'9')) => ("-", rest),
            Some(rest) => ("", rest),
            None => ("", text.as_str()),
        };
        let (int, frac) = text.split_once('.').map_or((text, None), |(i, f)| (i, Some(f)));
        let mut grouped = String::new();
        for (i, c) in int.chars().enumerate() {
            if i > 0 && (int.len() - i) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(c);
        }
        match frac {
            Some(frac) => format!("{sign}{grouped}.{frac}"),
            None => format!("{sign}{grouped}"),
        }
    }
}

/// Finite points sorted by x, thinned to at most [`MAX_POINTS`] by keeping the highest point of
/// each run of `ceil(n / MAX_POINTS)` consecutive points (the first of equals).
fn downsample(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut points: Vec<(f64, f64)> = points.iter().copied().filter(|p| p.0.is_finite() && p.1.is_finite()).collect();
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    if points.len() <= MAX_POINTS {
        return points;
    }
    let chunk = points.len().div_ceil(MAX_POINTS);
    points
        .chunks(chunk)
        .filter_map(|c| c.iter().copied().reduce(|best, p| if p.1 > best.1 { p } else { best }))
        .collect()
}

fn bounds(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values.fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
    })
}

/// A coordinate with at most one decimal, no trailing `.0`, never `-0`.
fn num(v: f64) -> String {
    let rounded = (v * 10.0).round() / 10.0;
    let text = format!("{:.1}", if rounded == 0.0 { 0.0 } else { rounded });
    text.strip_suffix(".0").map(str::to_string).unwrap_or(text)
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(name: &str, points: &[(f64, f64)]) -> Series {
        Series { name: name.to_string(), points: points.to_vec() }
    }

    fn tiny() -> String {
        svg_chart(
            "Hosts & utilisation",
            "time (h)",
            &[
                series("hosts in use", &[(0.0, 2.0), (1.0, 5.0), (2.0, 4.0)]),
                series("hosts <open>", &[(0.0, 3.0), (2.0, 6.0)]),
            ],
            "hosts",
            &[series("cpu %", &[(0.0, 40.0), (1.0, 85.5), (2.0, f64::NAN), (2.0, 70.0)])],
            "utilisation (%)",
        )
    }

    #[test]
    fn is_an_svg_document_naming_every_series() {
        let svg = tiny();
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.trim_end().ends_with("</svg>"));
        for needle in ["hosts in use", "hosts &lt;open&gt;", "cpu %", "Hosts &amp; utilisation", "utilisation (%)"] {
            assert!(svg.contains(needle), "{needle}");
        }
        assert_eq!(svg.matches("<polyline").count(), 3);
        assert_eq!(svg.matches("stroke-dasharray").count(), 2, "right series and its legend entry are dashed");
        // Every element opened is closed (all elements here are self-closing or closed on their line).
        assert_eq!(svg.matches("<text").count(), svg.matches("</text>").count());
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
    }

    #[test]
    fn matches_the_snapshot() {
        let svg = tiny();
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/testdata/tiny_chart.svg");
        if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
            std::fs::write(&path, &svg).expect("write snapshot");
        }
        let want = std::fs::read_to_string(&path).expect("snapshot exists (run with UPDATE_SNAPSHOTS=1)");
        assert_eq!(svg, want, "chart changed; if intended, rerun with UPDATE_SNAPSHOTS=1 and review the SVG");
    }

    #[test]
    fn is_deterministic_and_handles_empty_input() {
        assert_eq!(tiny(), tiny());
        let empty = svg_chart("empty", "x", &[], "left", &[], "right");
        assert!(empty.starts_with("<svg") && !empty.contains("<polyline"));
        let flat = svg_chart("flat", "x", &[series("one point", &[(5.0, 5.0)])], "n", &[], "");
        assert!(flat.contains("one point") && !flat.contains("NaN"));
    }

    #[test]
    fn downsampling_keeps_peaks_and_bounds_points() {
        let mut points: Vec<(f64, f64)> = (0..100_000).map(|i| (f64::from(i), 1.0)).collect();
        points[54_321].1 = 99.0;
        let thinned = downsample(&points);
        assert!(thinned.len() <= MAX_POINTS);
        assert!(thinned.contains(&(54_321.0, 99.0)));
        assert!(thinned.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(downsample(&[(2.0, 1.0), (1.0, 3.0)]), vec![(1.0, 3.0), (2.0, 1.0)]);
    }

    #[test]
    fn axes_are_nice() {
        let a = Axis::new(0.0, 100.0);
        assert_eq!((a.lo, a.hi, a.step), (0.0, 100.0, 20.0));
        assert_eq!(a.ticks(), vec![0.0, 20.0, 40.0, 60.0, 80.0, 100.0]);
        let b = Axis::new(0.0, 12_345.0);
        assert_eq!((b.lo, b.hi, b.step), (0.0, 14_000.0, 2000.0));
        assert_eq!(b.label(12_000.0), "12,000");
        let c = Axis::new(0.0, 0.7);
        assert_eq!(c.label(0.2), "0.2");
        assert_eq!(Axis::new(-3.0, 3.0).label(-2.0), "-2");
    }
}
