//! The chart of a replay, in three panels over the trace's time:
//!
//! 1. hosts in use by every policy replayed, the fluid lower bound, and a fixed fleet's size;
//! 2. each baseline's hosts minus the chosen policy's at the same moment, on a symmetric log
//!    scale, so that a gain of 20 hosts on 3,000 is as visible as one of 700 (left out when the
//!    chosen policy rejected requests on a fixed fleet: its hosts in use are then capped);
//! 3. when any policy rejected requests, how many each has rejected so far;
//! 4. CPU, memory (and GPU) utilization of the hosts the chosen policy uses.
//!
//! A fixed fleet's size is drawn as a line when some policy comes near it (otherwise it would
//! flatten everything else; the title says how many hosts there are).
//!
//! Every policy keeps its colour and dash pattern in all panels; counts are drawn as steps.

use crate::plot::{render, Chart, Panel, Scale, Series, Style};
use crate::replay::{PolicyRun, Replay, Sample};
use crate::summary::{thousands, TimeUnit};

/// How a policy is drawn, the same in every chart.
pub fn policy_style(policy: &str) -> Style {
    match policy {
        "feiyun" => Style::new("#1f77b4", "", 2.2),
        "first-fit" => Style::new("#ff7f0e", "9 4", 1.6),
        "best-fit" => Style::new("#d62728", "5 3", 1.8),
        "worst-fit" => Style::new("#2ca02c", "12 3 3 3", 1.6),
        "least-allocated" => Style::new("#9467bd", "2 3", 1.8),
        "nomad-binpack" => Style::new("#8c564b", "14 4 2 4 2 4", 1.6),
        _ => Style::new("#7f7f7f", "4 2", 1.6),
    }
}

fn lower_bound_style() -> Style {
    Style::new("#000000", "1 3", 1.6)
}

/// `a − b` at every moment either changes, as step points.
fn difference(a: &[Sample], b: &[Sample]) -> Vec<(u64, f64)> {
    let mut times: Vec<u64> = a.iter().chain(b).map(|s| s.at_ms).collect();
    times.sort_unstable();
    times.dedup();
    let (mut i, mut j) = (0usize, 0usize);
    let value = |tl: &[Sample], k: &mut usize, t: u64| {
        while *k + 1 < tl.len() && tl[*k + 1].at_ms <= t {
            *k += 1;
        }
        tl.get(*k).filter(|s| s.at_ms <= t).map_or(0.0, |s| s.hosts as f64)
    };
    times.into_iter().map(|t| (t, value(a, &mut i, t) - value(b, &mut j, t))).collect()
}

/// Requests rejected so far, as step points from the first arrival to the last.
fn rejected_so_far(run: &PolicyRun, start_ms: u64, end_ms: u64) -> Vec<(u64, f64)> {
    let mut points = vec![(start_ms, 0.0)];
    for (n, &t) in run.rejected_at_ms.iter().enumerate() {
        points.push((t, (n + 1) as f64));
    }
    points.push((end_ms, run.rejected_at_ms.len() as f64));
    points
}

/// The chart of a replay of the trace called `trace_name` (see the module doc).
pub fn chart(r: &Replay, trace_name: &str) -> String {
    let rep = &r.report;
    let unit = TimeUnit::for_span(r.trace.span_ms);
    let end_ms = r.start_ms + r.trace.span_ms;
    let x = |ms: u64| unit.of(ms.saturating_sub(r.start_ms));
    let steps = |name: String, points: Vec<(u64, f64)>, style: Style| {
        Series::new(name, points.into_iter().map(|(t, v)| (x(t), v)).collect()).steps().styled(style)
    };
    let hosts = |tl: &[Sample]| tl.iter().map(|s| (s.at_ms, s.hosts as f64)).collect::<Vec<_>>();

    let mut in_use: Vec<Series> = r
        .runs()
        .map(|run| {
            let name = format!("{}: peak {}", run.policy, thousands(run.peak_hosts));
            steps(name, hosts(&run.timeline), policy_style(&run.policy))
        })
        .collect();
    in_use.push(steps(
        format!("lower bound: {}", thousands(rep.lower_bound_hosts)),
        hosts(&r.lower_bound_timeline),
        lower_bound_style(),
    ));
    let busiest = r.runs().map(|run| run.peak_hosts).max().unwrap_or(0);
    let fleet_line = rep.fleet_hosts.filter(|&n| busiest * 2 >= n);
    if let Some(n) = fleet_line {
        in_use.push(
            Series::new(
                format!("fleet: {} hosts", thousands(n)),
                vec![(x(r.start_ms), n as f64), (x(end_ms), n as f64)],
            )
            .styled(Style::new("#7f7f7f", "", 1.0)),
        );
    }
    let mut hosts_panel = Panel::new("Hosts in use", "hosts", in_use, 300.0);
    if let Some(n) = fleet_line {
        // Room above the fleet's line, so that it does not hide in the frame.
        hosts_panel.y_include.push(n as f64 * 1.04);
    }
    let mut panels = vec![hosts_panel];

    let policy = &rep.policy;
    if !rep.baselines.is_empty() && rep.gap_percent.is_some() {
        let series = rep
            .baselines
            .iter()
            .map(|b| {
                let at_peak = b.peak_hosts as i64 - r.main.peak_hosts as i64;
                let name = format!("{}: {at_peak:+} at peak", b.policy);
                steps(name, difference(&b.timeline, &r.main.timeline), policy_style(&b.policy))
            })
            .collect();
        let mut panel = Panel::new(
            format!("Hosts each baseline uses minus {policy}'s, at the same moment (log scale; below 0: fewer)"),
            format!("hosts beyond {policy}"),
            series,
            200.0,
        );
        panel.scale = Scale::SymLog;
        panels.push(panel);
    }
    if r.any_rejected() {
        let series = r
            .runs()
            .map(|run| {
                let name = format!("{}: {}", run.policy, thousands(run.rejected));
                steps(name, rejected_so_far(run, r.start_ms, end_ms), policy_style(&run.policy))
            })
            .collect();
        let mut panel = Panel::new("Requests rejected so far", "requests rejected", series, 170.0);
        panel.whole_numbers = true;
        panels.push(panel);
    }

    let utilization = |name: &str, f: fn(&Sample) -> f64, style: Style| {
        let points = r.main.timeline.iter().map(|s| (s.at_ms, f(s))).collect();
        steps(name.to_string(), points, style)
    };
    let mut series = vec![
        utilization("CPU", |s| s.cpu_percent, Style::new("#17becf", "", 1.4)),
        utilization("memory", |s| s.memory_percent, Style::new("#e377c2", "6 3", 1.4)),
    ];
    if rep.utilization.gpu.peak_percent > 0.0 {
        series.push(utilization("GPU", |s| s.gpu_percent, Style::new("#bcbd22", "12 3 3 3", 1.4)));
    }
    let mut panel = Panel::new(format!("Utilization of the hosts {policy} uses"), "% of capacity", series, 130.0);
    panel.y_include = vec![0.0, 100.0];
    panels.push(panel);

    let mut chart = Chart::new(
        format!("{trace_name}: {} requests on {}", thousands(rep.requests), r.fleet_label),
        format!("{}s since the first arrival", unit.name),
        panels,
    );
    chart.subtitle = subtitle(r);
    render(&chart)
}

fn subtitle(r: &Replay) -> String {
    let rep = &r.report;
    let policy = &rep.policy;
    let rejected = match rep.rejected {
        0 => String::new(),
        n if rep.unlimited_fleet => format!(" {} requests fit no host and were rejected.", thousands(n)),
        n => format!(" {policy} rejected {} requests.", thousands(n)),
    };
    match rep.gap_percent {
        Some(g) => format!(
            "Fluid lower bound {} hosts ({}); {policy} peaks at {}, {g:.2}% above.{rejected}",
            thousands(rep.lower_bound_hosts),
            rep.lower_bound_dimension,
            thousands(rep.peak_hosts)
        ),
        None if rep.demand_exceeds_fleet => format!(
            "At its peak the {} demand needs more than the {} hosts even if instances could be split.{rejected}",
            rep.lower_bound_dimension,
            thousands(rep.fleet_hosts.unwrap_or(0))
        ),
        None => format!("{policy} peaks at {} hosts.{rejected}", thousands(rep.peak_hosts)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::FleetSpec;
    use crate::replay::{replay, ReplayOptions};
    use crate::trace::TraceRequest;
    use feiyun_scheduler::cluster::Policy;

    fn sample(at_ms: u64, hosts: u64) -> Sample {
        Sample { at_ms, hosts, cpu_percent: 0.0, memory_percent: 0.0, gpu_percent: 0.0 }
    }

    #[test]
    fn differences_are_taken_at_the_same_moment() {
        let a = [sample(0, 3), sample(10, 5), sample(30, 4)];
        let b = [sample(0, 3), sample(20, 4), sample(30, 4)];
        assert_eq!(difference(&a, &b), vec![(0, 0.0), (10, 2.0), (20, 1.0), (30, 0.0)]);
        assert_eq!(difference(&[sample(5, 2)], &[sample(0, 1)]), vec![(0, -1.0), (5, 1.0)]);
    }

    /// What the hosts panel shows is consistent: at every moment, on the day of the testdata
    /// trace (fractional seconds and all), no policy uses fewer hosts than the lower bound.
    #[test]
    fn the_lower_bound_line_never_rises_above_a_policy() {
        let requests = crate::trace::parse_csv(include_str!("testdata/day.csv")).expect("parses");
        let fleet = FleetSpec::parse("64c256g").expect("fleet");
        let opts = ReplayOptions { policy: Policy::Feiyun, baselines: Policy::ALL.to_vec(), timing: false };
        let r = replay(&requests, &fleet, "64c256g", &opts);
        for run in r.runs() {
            let below = difference(&run.timeline, &r.lower_bound_timeline).into_iter().find(|p| p.1 < 0.0);
            assert_eq!(below, None, "{} below the lower bound", run.policy);
        }
    }

    fn chart_of(spec: &str, requests: &[TraceRequest]) -> String {
        let fleet = FleetSpec::parse(spec).expect("fleet");
        let opts = ReplayOptions { policy: Policy::Feiyun, baselines: Policy::ALL.to_vec(), timing: false };
        chart(&replay(requests, &fleet, spec, &opts), "tiny")
    }

    fn requests() -> Vec<TraceRequest> {
        (0..300u64)
            .map(|i| {
                TraceRequest::new(i * 30_000, Some(600_000 + i % 7 * 60_000), (1 + i % 4) * 1000, (1 + i % 9) * 1024)
            })
            .collect()
    }

    #[test]
    fn every_policy_the_lower_bound_and_the_differences_are_drawn() {
        let svg = chart_of("8c32g", &requests());
        assert!(svg.contains("tiny: 300 requests on unlimited 8c32g hosts"), "readable title");
        for policy in ["feiyun", "first-fit", "best-fit", "worst-fit", "least-allocated", "nomad-binpack"] {
            assert!(svg.contains(&format!(">{policy}: peak ")), "{policy} in the legend");
            let style = policy_style(policy);
            assert!(svg.contains(&format!("stroke=\"{}\"", style.colour)), "{policy} drawn");
        }
        assert!(svg.contains(">lower bound: "), "lower bound in the legend");
        assert!(svg.contains("minus feiyun&apos;s") && svg.contains("at peak<"), "difference panel");
        assert!(svg.contains("Utilization of the hosts feiyun uses"));
        assert!(!svg.contains("rejected so far") && !svg.contains("fleet: "));
        // Steps, not ramps: no sloped segments in the hosts and difference lines.
        assert!(svg.lines().filter(|l| l.starts_with("<path") && l.contains(" H")).count() >= 12);
        assert!(!svg.lines().any(|l| l.starts_with("<path") && l.contains(" L")), "every line is a step line");
    }

    #[test]
    fn a_fixed_fleet_that_rejects_shows_rejections_over_time() {
        let svg = chart_of("3x8c32g", &requests());
        assert!(svg.contains("tiny: 300 requests on 3 fixed 8c32g hosts"));
        assert!(svg.contains("Requests rejected so far") && svg.contains(">fleet: 3 hosts<"));
        assert!(!svg.contains("at peak<"), "no difference panel when the rejections are the result");
        assert!(svg.contains("feiyun rejected "), "the subtitle says how many");
    }

    /// A big fixed fleet that a policy rarely fills: no fleet line to flatten the rest, the
    /// differences still drawn, and the few rejections beside them.
    #[test]
    fn a_large_fixed_fleet_keeps_the_differences() {
        let mut r = requests();
        r.push(TraceRequest::new(5_000_000, None, 9000, 1024));
        r.sort_by_key(|q| q.arrival_ms);
        let svg = chart_of("100x8c32g", &r);
        assert!(!svg.contains(">fleet: "), "the fleet line would flatten the hosts in use");
        assert!(!svg.contains(">120</text>"), "nor would the axis reach for the fleet's size");
        assert!(svg.contains("at peak<") && svg.contains("Requests rejected so far"));
    }
}
