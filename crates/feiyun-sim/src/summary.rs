//! What a person reads after a replay: one screen with every policy's numbers.
//!
//! ```text
//! azure: 669,435 requests over 9.2 days (37,628 still running at the end)
//! Fleet: unlimited 32c128g hosts
//! Lower bound: 3,273 hosts (cpu, at hour 210.4), if instances could be split
//!
//! policy              placed  rejected  peak hosts  lower bound      gap  stranded cpu / memory
//! feiyun             669,435         0       3,285        3,273    0.37%          0.35% / 33.32%
//! ...
//! ```

use std::fmt::Write as _;

use crate::replay::{PolicyRun, Replay};

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The unit a trace's times read best in: hours up to two weeks, days beyond.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeUnit {
    pub ms: u64,
    /// `hour` or `day`.
    pub name: &'static str,
}

impl TimeUnit {
    pub fn for_span(span_ms: u64) -> TimeUnit {
        if span_ms > 14 * 86_400_000 {
            TimeUnit { ms: 86_400_000, name: "day" }
        } else {
            TimeUnit { ms: 3_600_000, name: "hour" }
        }
    }

    /// Milliseconds as this unit, for a chart axis.
    pub fn of(&self, ms: u64) -> f64 {
        ms as f64 / self.ms as f64
    }

    /// `hour 118.2`: the moment `ms` counted from `start_ms`, one decimal.
    pub fn at(&self, ms: u64, start_ms: u64) -> String {
        format!("{} {:.1}", self.name, self.of(ms.saturating_sub(start_ms)))
    }
}

/// `9.2 days`, `36.0 hours`, `39.0 minutes`: a span in words.
fn span(ms: u64) -> String {
    if ms >= 2 * 86_400_000 {
        format!("{:.1} days", ms as f64 / 86_400_000.0)
    } else if ms >= 2 * 3_600_000 {
        format!("{:.1} hours", ms as f64 / 3_600_000.0)
    } else {
        format!("{:.1} minutes", ms as f64 / 60_000.0)
    }
}

fn gap(run: &PolicyRun) -> String {
    run.gap_percent.map_or("—".to_string(), |g| format!("{g:.2}%"))
}

/// Columns as wide as their widest cell, two spaces apart; the first left-aligned, the rest right.
fn table(out: &mut String, rows: &[Vec<String>]) {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().filter_map(|r| r.get(c)).map(|t| t.chars().count()).max().unwrap_or(0))
        .collect();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            let pad = " ".repeat(widths[c] - cell.chars().count());
            match c {
                0 => line.push_str(&format!("{cell}{pad}")),
                _ => line.push_str(&format!("  {pad}{cell}")),
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
}

/// The one-screen summary of a replay of the trace called `trace_name`.
pub fn summary(r: &Replay, trace_name: &str) -> String {
    let rep = &r.report;
    let unit = TimeUnit::for_span(r.trace.span_ms);
    let mut out = String::new();
    let still = match r.trace.still_running {
        0 => String::new(),
        n => format!(" ({} still running at the end)", thousands(n)),
    };
    let _ = writeln!(out, "{trace_name}: {} requests over {}{still}", thousands(rep.requests), span(r.trace.span_ms));
    let _ = writeln!(out, "Fleet: {}", r.fleet_label);
    let peak_at = unit.at(rep.lower_bound_at_ms, r.start_ms);
    if rep.demand_exceeds_fleet {
        let _ = writeln!(
            out,
            "Lower bound: all {} hosts. At its peak ({peak_at}) the {} demand exceeds the fleet",
            thousands(rep.lower_bound_hosts),
            rep.lower_bound_dimension
        );
        let _ = writeln!(out, "even if instances could be split: every policy must reject requests.");
    } else {
        let _ = writeln!(
            out,
            "Lower bound: {} hosts ({}, at {peak_at}), if instances could be split",
            thousands(rep.lower_bound_hosts),
            rep.lower_bound_dimension
        );
    }
    let _ = writeln!(out);

    let rejections = r.any_rejected();
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut header = vec!["policy", "placed", "rejected"];
    if rejections {
        header.push("first at");
    }
    header.extend(["peak hosts", "lower bound", "gap", "stranded cpu / memory"]);
    rows.push(header.into_iter().map(String::from).collect());
    for run in r.runs() {
        let mut row = vec![run.policy.clone(), thousands(run.placed), thousands(run.rejected)];
        if rejections {
            row.push(run.rejections.as_ref().map_or("—".to_string(), |w| unit.at(w.first_at_ms, r.start_ms)));
        }
        row.extend([
            thousands(run.peak_hosts),
            thousands(rep.lower_bound_hosts),
            gap(run),
            format!("{:.2}% / {:.2}%", run.stranded.cpu_percent, run.stranded.memory_percent),
        ]);
        rows.push(row);
    }
    table(&mut out, &rows);
    let _ = writeln!(out);
    let _ = writeln!(out, "gap: peak hosts over the lower bound. stranded, when the peak was first reached: free");
    let _ = writeln!(out, "vCPUs on hosts whose memory is full / free memory on hosts whose vCPUs are full, as a");
    let _ = writeln!(out, "share of the capacity in use.");
    if rejections {
        let _ = writeln!(out, "rejected: requests no host could take; first at: counted from the first arrival (the");
        let _ = writeln!(out, "report and the chart say when the rest happened).");
    }
    if r.runs().any(|run| run.gap_percent.is_none()) {
        let _ = writeln!(out, "A policy that rejects requests once a fixed fleet is full has no gap (—): its hosts in");
        let _ = writeln!(out, "use are capped by the fleet, and the rejections are its result.");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::FleetSpec;
    use crate::replay::{replay, ReplayOptions};
    use crate::trace::TraceRequest;
    use feiyun_scheduler::cluster::Policy;

    fn run(spec: &str, requests: &[TraceRequest]) -> String {
        let fleet = FleetSpec::parse(spec).expect("fleet");
        let opts = ReplayOptions { policy: Policy::Feiyun, baselines: vec![Policy::BestFit], timing: false };
        summary(&replay(requests, &fleet, spec, &opts), "tiny")
    }

    fn req(arrival_s: u64, life_s: Option<u64>, cpus: u64) -> TraceRequest {
        TraceRequest::new(arrival_s * 1000, life_s.map(|l| l * 1000), cpus * 1000, cpus * 2048)
    }

    #[test]
    fn numbers_in_words() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(669_435), "669,435");
        assert_eq!(span(791_374_000), "9.2 days");
        assert_eq!(TimeUnit::for_span(791_374_000).at(3_600_000 * 5 + 360_000, 0), "hour 5.1");
        assert_eq!(TimeUnit::for_span(12_901_761_000).name, "day");
    }

    #[test]
    fn an_unlimited_fleet_shows_peaks_lower_bound_and_gap() {
        let requests: Vec<TraceRequest> = (0..40).map(|i| req(i * 60, Some(600), 1 + i % 5)).collect();
        let text = run("16c64g", &requests);
        assert!(text.starts_with("tiny: 40 requests over 39.0 minutes\n"), "{text}");
        assert!(text.contains("Fleet: unlimited 16c64g hosts"), "{text}");
        let rows: Vec<&str> = text.lines().filter(|l| l.starts_with("feiyun") || l.starts_with("best-fit")).collect();
        assert_eq!(rows.len(), 2, "{text}");
        assert!(rows.iter().all(|r| r.contains('%') && !r.contains('—')), "{text}");
        assert!(!text.contains("first at"), "{text}");
        assert!(text.lines().count() <= 24, "one screen:\n{text}");
    }

    #[test]
    fn a_fixed_fleet_marks_rejections_instead_of_a_gap() {
        let requests: Vec<TraceRequest> = (0..10).map(|i| req(i * 3600, None, 8)).collect();
        let text = run("2x16c64g", &requests);
        let feiyun = text.lines().find(|l| l.starts_with("feiyun")).expect("row");
        assert!(feiyun.contains("hour 4.0") && feiyun.contains('—'), "{text}");
        // 4 placed, 6 rejected, and the fleet was too small at the peak for any policy.
        assert!(feiyun.split_whitespace().take(3).eq(["feiyun", "4", "6"]), "{feiyun}");
        assert!(text.contains("every policy must reject requests"), "{text}");
        assert!(text.contains("the rejections are its result"), "{text}");
    }
}
