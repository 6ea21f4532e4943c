//! Self-contained SVG line charts: one or more panels stacked over a shared x axis (e.g. time),
//! each with its own title, legend, y axis and scale.
//!
//! Every series has its own colour *and* dash pattern (given, or taken in turn from a palette),
//! so lines stay apart where they overlap and in grey print. Series of counts sampled at events
//! are drawn as steps: a value holds until the next point, so a quiet stretch is flat, not a
//! ramp. Series longer than the plot is wide are thinned per pixel column, keeping each column's
//! lowest, highest and last point, so peaks and troughs survive. A panel may use a symmetric log
//! scale, to show small and large differences (and their sign) together with honest tick labels.
//! The output is a pure function of the input (fixed layout, fixed number formatting), so charts
//! can be diffed. The first series of a panel is drawn on top.

use std::fmt::Write as _;

const WIDTH: f64 = 960.0;
const MARGIN_LEFT: f64 = 80.0;
const MARGIN_RIGHT: f64 = 30.0;
const TITLE_BASELINE: f64 = 28.0;
const SUBTITLE_BASELINE: f64 = 48.0;
const LEGEND_ROW: f64 = 18.0;
/// Rough width of one character of 12px sans-serif, for laying out legends and notes.
const CHAR_WIDTH: f64 = 7.0;
const GRID: &str = "#e0e0e0";
/// Colours and dash patterns taken in turn by series that bring no style of their own.
const PALETTE: [(&str, &str); 8] = [
    ("#1f77b4", ""),
    ("#d62728", "7 3"),
    ("#2ca02c", "12 3 3 3"),
    ("#ff7f0e", "3 3"),
    ("#9467bd", "14 4 2 4 2 4"),
    ("#8c564b", "9 5"),
    ("#e377c2", "2 2"),
    ("#17becf", "10 2 2 2"),
];

/// How a line is drawn.
#[derive(Debug, Clone, PartialEq)]
pub struct Style {
    /// An SVG colour, e.g. `#1f77b4`.
    pub colour: String,
    /// An SVG `stroke-dasharray`, e.g. `6 3`; empty for a solid line.
    pub dash: String,
    pub width: f64,
}

impl Style {
    pub fn new(colour: &str, dash: &str, width: f64) -> Style {
        Style { colour: colour.to_string(), dash: dash.to_string(), width }
    }
}

/// One named line: `(x, y)` points, in any order (they are drawn sorted by x).
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    /// Each value holds until the next point (counts sampled at events).
    pub step: bool,
    /// `None`: the next colour and dash of the palette, 1.5 px wide.
    pub style: Option<Style>,
}

impl Series {
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Series {
        Series { name: name.into(), points, step: false, style: None }
    }

    /// Drawn as steps.
    pub fn steps(mut self) -> Series {
        self.step = true;
        self
    }

    pub fn styled(mut self, style: Style) -> Series {
        self.style = Some(style);
        self
    }
}

/// How a panel maps values to heights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    Linear,
    /// Linear between −1 and 1, logarithmic beyond (`sign(v) × (1 + log10 |v|)`): 0, ±1, ±10,
    /// ±100… are evenly spaced, and ticks are labelled with the values themselves.
    SymLog,
}

/// A labelled vertical bracket from `y0` to `y1` at `x`, its text to the right (e.g. a drop that
/// needs a name).
#[derive(Debug, Clone, PartialEq)]
pub struct Bracket {
    pub x: f64,
    pub y0: f64,
    pub y1: f64,
    /// One line of text each.
    pub lines: Vec<String>,
}

/// One panel: a title, a legend, the series against one y axis, and brackets.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    /// Above the legend; may be empty.
    pub title: String,
    pub y_label: String,
    pub series: Vec<Series>,
    pub scale: Scale,
    /// Values the y axis must include besides the data (e.g. 0 and 100 for percentages).
    pub y_include: Vec<f64>,
    pub brackets: Vec<Bracket>,
    /// Height of the plotting area, pixels.
    pub height: f64,
    /// The values are counts: no tick between whole numbers.
    pub whole_numbers: bool,
}

impl Panel {
    pub fn new(title: impl Into<String>, y_label: impl Into<String>, series: Vec<Series>, height: f64) -> Panel {
        Panel {
            title: title.into(),
            y_label: y_label.into(),
            series,
            scale: Scale::Linear,
            y_include: vec![0.0],
            brackets: Vec::new(),
            height,
            whole_numbers: false,
        }
    }
}

/// A whole chart: panels stacked top to bottom over one x axis.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    pub title: String,
    /// A line under the title; may be empty.
    pub subtitle: String,
    pub x_label: String,
    pub panels: Vec<Panel>,
    /// Pixels right of the plotting area, for bracket labels.
    pub right_margin: f64,
}

impl Chart {
    pub fn new(title: impl Into<String>, x_label: impl Into<String>, panels: Vec<Panel>) -> Chart {
        Chart {
            title: title.into(),
            subtitle: String::new(),
            x_label: x_label.into(),
            panels,
            right_margin: MARGIN_RIGHT,
        }
    }
}

/// A series ready to draw: thinned, with its style settled.
struct Line<'a> {
    name: &'a str,
    points: Vec<(f64, f64)>,
    step: bool,
    style: Style,
}

/// The chart as an SVG document. Non-finite points are ignored.
pub fn render(chart: &Chart) -> String {
    let plot_left = MARGIN_LEFT;
    let plot_right = WIDTH - chart.right_margin.max(MARGIN_RIGHT);
    let columns = (plot_right - plot_left).max(1.0) as usize;
    let mut next_style = 0usize;
    let panels: Vec<Vec<Line>> = chart
        .panels
        .iter()
        .map(|p| {
            p.series
                .iter()
                .map(|s| {
                    let style = s.style.clone().unwrap_or_else(|| {
                        let (colour, dash) = PALETTE[next_style % PALETTE.len()];
                        next_style += 1;
                        Style::new(colour, dash, 1.5)
                    });
                    Line { name: &s.name, points: finite_sorted(&s.points), step: s.step, style }
                })
                .collect()
        })
        .collect();
    let (x_min, x_max) =
        bounds(panels.iter().flatten().flat_map(|l| l.points.iter().map(|p| p.0))).unwrap_or((0.0, 1.0));
    let x_axis = Axis::linear(x_min, x_max);

    let mut body = String::new();
    let mut y = if chart.subtitle.is_empty() { TITLE_BASELINE + 14.0 } else { SUBTITLE_BASELINE + 14.0 };
    for (i, (panel, lines)) in chart.panels.iter().zip(&panels).enumerate() {
        if i > 0 {
            y += 8.0;
        }
        if !panel.title.is_empty() {
            y += 14.0;
            let _ = writeln!(
                body,
                r#"<text x="{}" y="{}" font-size="13" font-weight="bold">{}</text>"#,
                num(plot_left),
                num(y),
                escape(&panel.title)
            );
            y += 6.0;
        }
        y = legend(&mut body, lines, plot_left, plot_right, y + LEGEND_ROW - 4.0);
        let plot = Plot { left: plot_left, right: plot_right, top: y, bottom: y + panel.height };
        draw_panel(&mut body, panel, lines, &plot, &x_axis, columns);
        y = plot.bottom + 20.0;
    }
    let _ = writeln!(
        body,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
        num((plot_left + plot_right) / 2.0),
        num(y + 18.0),
        escape(&chart.x_label)
    );
    let height = (y + 32.0).ceil();

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#,
        w = num(WIDTH),
        h = num(height)
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle" font-size="16" font-weight="bold">{}</text>"#,
        num(WIDTH / 2.0),
        num(TITLE_BASELINE),
        escape(&chart.title)
    );
    if !chart.subtitle.is_empty() {
        let _ = writeln!(
            svg,
            r##"<text x="{}" y="{}" text-anchor="middle" fill="#444">{}</text>"##,
            num(WIDTH / 2.0),
            num(SUBTITLE_BASELINE),
            escape(&chart.subtitle)
        );
    }
    svg.push_str(&body);
    svg.push_str("</svg>\n");
    svg
}

/// Legend entries in rows from `baseline`; returns where the plotting area may start.
fn legend(svg: &mut String, lines: &[Line], left: f64, right: f64, baseline: f64) -> f64 {
    if lines.is_empty() {
        return baseline - LEGEND_ROW + 10.0;
    }
    let (mut lx, mut ly) = (left, baseline);
    for line in lines {
        let width = 40.0 + CHAR_WIDTH * line.name.chars().count() as f64 + 18.0;
        if lx > left && lx + width > right {
            lx = left;
            ly += LEGEND_ROW;
        }
        let _ = writeln!(
            svg,
            r#"<line x1="{}" y1="{}" x2="{}" y2="{}"{}/><text x="{}" y="{}">{}</text>"#,
            num(lx),
            num(ly - 4.0),
            num(lx + 34.0),
            num(ly - 4.0),
            stroke(&line.style, 0.3),
            num(lx + 40.0),
            num(ly),
            escape(line.name)
        );
        lx += width;
    }
    ly + 10.0
}

/// `stroke`, `stroke-width` and `stroke-dasharray` attributes; `extra` widens (for legends).
fn stroke(style: &Style, extra: f64) -> String {
    let dash = if style.dash.is_empty() { String::new() } else { format!(r#" stroke-dasharray="{}""#, style.dash) };
    format!(r#" stroke="{}" stroke-width="{}"{dash}"#, style.colour, num(style.width + extra))
}

fn draw_panel(svg: &mut String, panel: &Panel, lines: &[Line], plot: &Plot, x_axis: &Axis, columns: usize) {
    let ys = lines.iter().flat_map(|l| l.points.iter().map(|p| p.1));
    let ys = ys.chain(panel.y_include.iter().copied()).chain(panel.brackets.iter().flat_map(|b| [b.y0, b.y1]));
    let (lo, hi) = bounds(ys.filter(|v| v.is_finite())).unwrap_or((0.0, 1.0));
    let axis = match panel.scale {
        Scale::Linear if panel.whole_numbers => Axis::whole(lo, hi),
        Scale::Linear => Axis::linear(lo, hi),
        Scale::SymLog => Axis::symlog(lo, hi),
    };

    for tick in axis.ticks() {
        let y = plot.y(&axis, tick);
        let colour = if tick == 0.0 && axis.lo < 0.0 { "#888" } else { GRID };
        let _ = writeln!(
            svg,
            r#"<line x1="{}" y1="{y}" x2="{}" y2="{y}" stroke="{colour}"/><line x1="{}" y1="{y}" x2="{}" y2="{y}" stroke="black"/><text x="{}" y="{}" text-anchor="end">{}</text>"#,
            num(plot.left),
            num(plot.right),
            num(plot.left),
            num(plot.left - 6.0),
            num(plot.left - 9.0),
            num(y + 4.0),
            axis.label(tick),
            y = num(y)
        );
    }
    for tick in x_axis.ticks() {
        let x = plot.x(x_axis, tick);
        let _ = writeln!(
            svg,
            r#"<line x1="{x}" y1="{b}" x2="{x}" y2="{b6}" stroke="black"/><text x="{x}" y="{t}" text-anchor="middle">{}</text>"#,
            x_axis.label(tick),
            x = num(x),
            b = num(plot.bottom),
            b6 = num(plot.bottom + 6.0),
            t = num(plot.bottom + 18.0)
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
    let (lx, ly) = (20.0, (plot.top + plot.bottom) / 2.0);
    let _ = writeln!(
        svg,
        r#"<text x="{x}" y="{y}" text-anchor="middle" transform="rotate(-90 {x} {y})">{}</text>"#,
        escape(&panel.y_label),
        x = num(lx),
        y = num(ly)
    );

    // The first series is drawn last, on top of the others (it is the one the chart is about).
    for line in lines.iter().rev() {
        let points = thin(&line.points, x_axis, columns);
        if points.is_empty() {
            continue;
        }
        let mut d = String::with_capacity(points.len() * 16);
        for (i, &(px, py)) in points.iter().enumerate() {
            let (x, y) = (num(plot.x(x_axis, px)), num(plot.y(&axis, py)));
            if i == 0 {
                let _ = write!(d, "M{x} {y}");
            } else if line.step {
                let _ = write!(d, " H{x} V{y}");
            } else {
                let _ = write!(d, " L{x} {y}");
            }
        }
        let _ = writeln!(svg, r#"<path fill="none"{} stroke-linejoin="round" d="{d}"/>"#, stroke(&line.style, 0.0));
    }

    for b in &panel.brackets {
        let x = plot.x(x_axis, b.x) + 8.0;
        let (y0, y1) = (plot.y(&axis, b.y0), plot.y(&axis, b.y1));
        let _ = writeln!(
            svg,
            r#"<path fill="none" stroke="black" d="M{} {} H{x} V{} H{}"/>"#,
            num(x - 4.0),
            num(y0),
            num(y1),
            num(x - 4.0),
            x = num(x)
        );
        let mid = (y0 + y1) / 2.0 - (b.lines.len() as f64 - 1.0) * 7.0 + 4.0;
        for (i, text) in b.lines.iter().enumerate() {
            let _ = writeln!(
                svg,
                r#"<text x="{}" y="{}">{}</text>"#,
                num(x + 6.0),
                num(mid + i as f64 * 14.0),
                escape(text)
            );
        }
    }
}

/// The drawing area of one panel, in pixels.
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

/// An axis with "nice" bounds: on a linear scale multiples of a step of 1, 2 or 5 × 10^k; on a
/// symmetric log scale powers of ten.
struct Axis {
    lo: f64,
    hi: f64,
    step: f64,
    symlog: bool,
}

fn symlog(v: f64) -> f64 {
    if v.abs() <= 1.0 {
        v
    } else {
        v.signum() * (1.0 + v.abs().log10())
    }
}

impl Axis {
    fn linear(lo: f64, hi: f64) -> Axis {
        let (lo, hi) = if hi > lo { (lo, hi) } else { (lo - 1.0, lo + 1.0) };
        let rough = (hi - lo) / 8.0;
        let magnitude = 10f64.powf(rough.log10().floor());
        let step = [1.0, 2.0, 5.0, 10.0].into_iter().map(|m| m * magnitude).find(|&s| s >= rough).unwrap_or(rough);
        Axis { lo: (lo / step).floor() * step, hi: (hi / step).ceil() * step, step, symlog: false }
    }

    /// A linear axis for counts: steps of at least 1.
    fn whole(lo: f64, hi: f64) -> Axis {
        let a = Axis::linear(lo, hi);
        if a.step >= 1.0 {
            return a;
        }
        Axis { lo: lo.floor(), hi: hi.ceil().max(lo.floor() + 1.0), step: 1.0, symlog: false }
    }

    /// From the power of ten at or beyond `lo` to the one at or beyond `hi` (0 included).
    fn symlog(lo: f64, hi: f64) -> Axis {
        let reach = |v: f64| {
            let a = v.abs();
            if a == 0.0 {
                0.0
            } else if a <= 1.0 {
                v.signum()
            } else {
                v.signum() * 10f64.powf(a.log10().ceil())
            }
        };
        let (lo, hi) = (reach(lo.min(0.0)), reach(hi.max(0.0)));
        // Room above 0 even when nothing is: ten when everything is 0, one when all is below.
        let hi = match (lo == 0.0, hi == 0.0) {
            (true, true) => 10.0,
            (false, true) => 1.0,
            _ => hi,
        };
        Axis { lo, hi, step: 1.0, symlog: true }
    }

    fn fraction(&self, v: f64) -> f64 {
        if self.symlog {
            (symlog(v) - symlog(self.lo)) / (symlog(self.hi) - symlog(self.lo))
        } else {
            (v - self.lo) / (self.hi - self.lo)
        }
    }

    fn ticks(&self) -> Vec<f64> {
        if self.symlog {
            let mut ticks = vec![0.0];
            let mut p = 1.0;
            while p <= self.hi.max(-self.lo) {
                if p <= self.hi {
                    ticks.push(p);
                }
                if -p >= self.lo {
                    ticks.insert(0, -p);
                }
                p *= 10.0;
            }
            return ticks;
        }
        let n = ((self.hi - self.lo) / self.step).round() as i64;
        (0..=n).map(|i| self.lo + i as f64 * self.step).collect()
    }

    /// A tick value with as many decimals as the step needs, thousands separated.
    fn label(&self, v: f64) -> String {
        let decimals = if self.symlog { 0 } else { (-self.step.log10().floor()).max(0.0) as usize };
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

fn finite_sorted(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut points: Vec<(f64, f64)> = points.iter().copied().filter(|p| p.0.is_finite() && p.1.is_finite()).collect();
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    points
}

/// At most three points per pixel column: the lowest, the highest (in x order) and the last, so
/// that extremes survive and the value carried into the next column is the true one.
fn thin(points: &[(f64, f64)], axis: &Axis, columns: usize) -> Vec<(f64, f64)> {
    if points.len() <= columns * 3 {
        return points.to_vec();
    }
    let column = |x: f64| ((axis.fraction(x) * columns as f64).floor().max(0.0) as usize).min(columns);
    let mut out = Vec::with_capacity(columns * 3);
    let mut i = 0;
    while i < points.len() {
        let c = column(points[i].0);
        let mut j = i;
        let (mut low, mut high) = (i, i);
        while j < points.len() && column(points[j].0) == c {
            if points[j].1 < points[low].1 {
                low = j;
            }
            if points[j].1 > points[high].1 {
                high = j;
            }
            j += 1;
        }
        let last = j - 1;
        let mut keep = [low, high, last];
        keep.sort_unstable();
        for (k, &idx) in keep.iter().enumerate() {
            if k == 0 || idx != keep[k - 1] {
                out.push(points[idx]);
            }
        }
        i = j;
    }
    out
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

    fn tiny() -> String {
        let hosts = Panel::new(
            "Hosts & more",
            "hosts",
            vec![
                Series::new("hosts in use", vec![(0.0, 2.0), (1.0, 5.0), (2.0, 4.0)]).steps(),
                Series::new("hosts <open>", vec![(0.0, 3.0), (2.0, 6.0)]),
            ],
            200.0,
        );
        let mut diff = Panel::new(
            "",
            "difference",
            vec![Series::new("a − b", vec![(0.0, -3.0), (1.0, 40.0), (2.0, f64::NAN), (2.0, 700.0)])
                .styled(Style::new("#000", "1 2", 1.0))],
            120.0,
        );
        diff.scale = Scale::SymLog;
        diff.brackets.push(Bracket { x: 2.0, y0: 700.0, y1: 40.0, lines: vec!["drop".into(), "−660".into()] });
        let mut chart = Chart::new("Tiny", "time (h)", vec![hosts, diff]);
        chart.subtitle = "a subtitle".into();
        chart.right_margin = 120.0;
        render(&chart)
    }

    #[test]
    fn is_an_svg_document_naming_every_series() {
        let svg = tiny();
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.trim_end().ends_with("</svg>"));
        for needle in ["hosts in use", "hosts &lt;open&gt;", "a − b", "Hosts &amp; more", "a subtitle", "drop"] {
            assert!(svg.contains(needle), "{needle}");
        }
        assert_eq!(svg.matches("<path fill=\"none\" stroke=\"#").count(), 3, "one path per series");
        // Every series has a dash pattern or is the first, solid one; legends repeat the pattern.
        assert!(svg.contains(r#"stroke-dasharray="7 3""#) && svg.contains(r#"stroke-dasharray="1 2""#));
        assert_eq!(svg.matches("<text").count(), svg.matches("</text>").count());
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
    }

    #[test]
    fn steps_hold_each_value_until_the_next_point() {
        let svg = tiny();
        // 2 at x=0 held to x=1, then 5: a horizontal then a vertical move, never a slope.
        let path = svg.lines().find(|l| l.contains("#1f77b4") && l.starts_with("<path")).expect("step path");
        assert!(path.contains(" H") && path.contains(" V") && !path.contains(" L"), "{path}");
        let line = svg.lines().find(|l| l.contains("#d62728") && l.starts_with("<path")).expect("line path");
        assert!(line.contains(" L") && !line.contains(" H"), "{line}");
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
        let empty = render(&Chart::new("empty", "x", vec![Panel::new("", "y", vec![], 100.0)]));
        assert!(empty.starts_with("<svg") && !empty.contains("<path"));
        let flat = render(&Chart::new(
            "flat",
            "x",
            vec![Panel::new("", "n", vec![Series::new("one", vec![(5.0, 5.0)])], 90.0)],
        ));
        assert!(flat.contains("one") && !flat.contains("NaN"));
    }

    #[test]
    fn thinning_keeps_extremes_and_the_last_value_of_each_column() {
        let mut points: Vec<(f64, f64)> = (0..100_000).map(|i| (f64::from(i), 10.0)).collect();
        points[54_321].1 = 99.0;
        points[12_345].1 = -5.0;
        points[99_999].1 = 7.0;
        let axis = Axis::linear(0.0, 100_000.0);
        let thinned = thin(&points, &axis, 800);
        assert!(thinned.len() <= 3 * 801);
        assert!(thinned.contains(&(54_321.0, 99.0)) && thinned.contains(&(12_345.0, -5.0)));
        assert_eq!(thinned.last(), Some(&(99_999.0, 7.0)));
        assert!(thinned.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(finite_sorted(&[(2.0, 1.0), (1.0, 3.0), (0.0, f64::NAN)]), vec![(1.0, 3.0), (2.0, 1.0)]);
    }

    #[test]
    fn axes_are_nice() {
        let a = Axis::linear(0.0, 100.0);
        assert_eq!((a.lo, a.hi, a.step), (0.0, 100.0, 20.0));
        assert_eq!(a.ticks(), vec![0.0, 20.0, 40.0, 60.0, 80.0, 100.0]);
        let b = Axis::linear(0.0, 12_345.0);
        assert_eq!((b.lo, b.hi, b.step), (0.0, 14_000.0, 2000.0));
        assert_eq!(b.label(12_000.0), "12,000");
        assert_eq!(Axis::linear(0.0, 0.7).label(0.2), "0.2");
        assert_eq!(Axis::linear(-3.0, 3.0).label(-2.0), "-2");
        let counts = Axis::whole(0.0, 3.0);
        assert_eq!((counts.ticks(), counts.label(2.0)), (vec![0.0, 1.0, 2.0, 3.0], "2".to_string()));
        assert_eq!(Axis::whole(0.0, 0.0).ticks(), vec![0.0, 1.0]);
        assert_eq!(Axis::whole(0.0, 11_215.0).step, 2000.0);
    }

    /// 0, ±1, ±10, ±100 are evenly spaced; 20 and 700 both get a readable height.
    #[test]
    fn symmetric_log_axis() {
        let s = Axis::symlog(-3.0, 734.0);
        assert_eq!((s.lo, s.hi), (-10.0, 1000.0));
        assert_eq!(s.ticks(), vec![-10.0, -1.0, 0.0, 1.0, 10.0, 100.0, 1000.0]);
        assert_eq!(s.label(1000.0), "1,000");
        let f = |v| s.fraction(v);
        assert!((f(10.0) - f(1.0) - (f(100.0) - f(10.0))).abs() < 0.01);
        assert!(f(20.0) > 0.45 && f(734.0) > 0.95 && f(0.0) > 0.2);
        assert_eq!(Axis::symlog(0.0, 0.0).ticks(), vec![0.0, 1.0, 10.0]);
        assert_eq!(Axis::symlog(0.0, 5.0).ticks(), vec![0.0, 1.0, 10.0]);
        assert_eq!(Axis::symlog(-0.5, 0.0).ticks(), vec![-1.0, 0.0, 1.0]);
    }
}
