//! `feiyun trace convert` and `feiyun replay` as a user runs them: a summary to read on stdout,
//! the JSON report with `--json` or `--out`; same input and seed, same report byte for byte; the
//! documented keys are there; a fixed fleet reports when it rejected; the chart draws every
//! policy; bad input is a clear error.

use std::path::Path;
use std::process::Command;

fn feiyun(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_feiyun")).args(args).output().expect("runs")
}

fn write_trace(dir: &Path) -> String {
    let mut csv = String::from("arrival_s,lifetime_s,vcpus,memory_gib,tenant\n");
    for i in 0..2000u64 {
        let life = if i % 10 == 0 { String::new() } else { (300 + i * 7 % 3600).to_string() };
        csv.push_str(&format!("{},{},{},{},t{}\n", i * 3, life, 1 + i % 8, 1.75 * (1 + i % 8) as f64, i % 13));
    }
    let p = dir.join("trace.csv");
    std::fs::write(&p, csv).expect("write");
    p.display().to_string()
}

#[test]
fn replay_reports_are_reproducible_and_complete() {
    let dir = tempfile::tempdir().expect("tempdir");
    let trace = write_trace(dir.path());
    let out1 = dir.path().join("a.json");
    let out2 = dir.path().join("b.json");
    for out in [&out1, &out2] {
        let o = feiyun(&[
            "replay",
            "--trace",
            &trace,
            "--hosts",
            "32c128g",
            "--no-timing",
            "--out",
            out.to_str().expect("utf8"),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let a = std::fs::read(&out1).expect("report");
    assert_eq!(a, std::fs::read(&out2).expect("report"), "same input, same report");
    let svg = std::fs::read_to_string(out1.with_extension("svg")).expect("chart");
    assert!(svg.starts_with("<svg") || svg.starts_with("<?xml"));
    let r: serde_json::Value = serde_json::from_slice(&a).expect("json");
    for k in [
        "requests",
        "placed",
        "rejected",
        "peak_hosts",
        "lower_bound_hosts",
        "gap_percent",
        "placements_per_second",
        "policy",
    ] {
        assert!(r.get(k).is_some(), "missing {k}");
    }
    for k in ["p50", "p99", "max"] {
        assert!(r["decision_latency_us"].get(k).is_some(), "missing decision_latency_us.{k}");
    }
    assert_eq!(r["requests"], 2000);
    assert_eq!(r["policy"], "feiyun");
    let lb = r["lower_bound_hosts"].as_u64().expect("lb");
    let peak = r["peak_hosts"].as_u64().expect("peak");
    assert!(peak >= lb && lb > 0, "peak {peak} below the lower bound {lb}");
    // Feiyun is at least as good as every baseline here.
    for b in r["baselines"].as_array().expect("baselines") {
        assert!(peak <= b["peak_hosts"].as_u64().expect("peak"), "{} beat feiyun", b["policy"]);
    }
}

#[test]
fn the_summary_is_on_stdout_with_or_without_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let trace = write_trace(dir.path());
    let out = dir.path().join("r.json");
    let plain = feiyun(&["replay", "--trace", &trace, "--hosts", "32c128g", "--no-timing"]);
    let with_out = feiyun(&[
        "replay",
        "--trace",
        &trace,
        "--hosts",
        "32c128g",
        "--no-timing",
        "--out",
        out.to_str().expect("utf8"),
    ]);
    for o in [&plain, &with_out] {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let summary = String::from_utf8(plain.stdout).expect("utf-8");
    assert_eq!(summary, String::from_utf8(with_out.stdout).expect("utf-8"), "the same summary either way");
    assert!(summary.starts_with("trace: 2,000 requests over "), "the trace's name, not its path:\n{summary}");
    assert!(summary.contains("Fleet: unlimited 32c128g hosts"), "{summary}");
    let header = summary.lines().find(|l| l.starts_with("policy")).expect("table header");
    for column in ["placed", "rejected", "peak hosts", "lower bound", "gap", "stranded"] {
        assert!(header.contains(column), "{column}: {header}");
    }
    for policy in ["feiyun", "first-fit", "best-fit", "worst-fit", "least-allocated", "nomad-binpack"] {
        assert!(summary.lines().any(|l| l.starts_with(policy)), "{policy} row:\n{summary}");
    }
    assert!(summary.lines().count() <= 24, "one screen:\n{summary}");
    assert!(!summary.contains('{'), "no JSON in the summary");
    // The JSON went to the file, and --json prints it instead of the summary.
    let file: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).expect("report")).expect("json");
    let o = feiyun(&["replay", "--trace", &trace, "--hosts", "32c128g", "--no-timing", "--json"]);
    let printed: serde_json::Value = serde_json::from_slice(&o.stdout).expect("--json prints the report");
    assert_eq!(file, printed);
}

#[test]
fn fixed_fleets_report_when_they_rejected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let trace = write_trace(dir.path());
    let out = dir.path().join("fixed.json");
    let o = feiyun(&[
        "replay",
        "--trace",
        &trace,
        "--hosts",
        "2x32c128g",
        "--no-timing",
        "--out",
        out.to_str().expect("utf8"),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).expect("report")).expect("json");
    let rejected = r["rejected"].as_u64().expect("rejected");
    assert!(rejected > 0);
    assert_eq!(r["placed"].as_u64().expect("placed") + rejected, 2000);
    assert!(r["peak_hosts"].as_u64().expect("peak") <= 2);
    assert_eq!((r["fleet_hosts"].as_u64(), r["demand_exceeds_fleet"].as_bool()), (Some(2), Some(true)));
    // No meaningless gap: the rejections, and when they happened, are the result.
    for run in std::iter::once(&r).chain(r["baselines"].as_array().expect("baselines")) {
        assert!(run["gap_percent"].is_null(), "{}", run["policy"]);
        let when = &run["rejections"];
        let first = when["first_at_s"].as_u64().expect("first_at_s");
        assert!(first <= when["last_at_s"].as_u64().expect("last_at_s"));
        let buckets = when["by_bucket"].as_array().expect("by_bucket");
        let counted: u64 = buckets.iter().map(|b| b["rejected"].as_u64().expect("rejected")).sum();
        assert_eq!(counted, run["rejected"].as_u64().expect("rejected"), "{}", run["policy"]);
    }
    let summary = String::from_utf8(o.stdout).expect("utf-8");
    let row = summary.lines().find(|l| l.starts_with("feiyun")).expect("row");
    let grouped =
        if rejected >= 1000 { format!("{},{:03}", rejected / 1000, rejected % 1000) } else { rejected.to_string() };
    assert!(row.split_whitespace().any(|cell| cell == grouped), "{grouped} rejected: {row}");
    assert!(row.contains("hour ") && row.contains('—'), "first rejection and no gap: {row}");
    let svg = std::fs::read_to_string(out.with_extension("svg")).expect("chart");
    assert!(svg.contains("Requests rejected so far") && svg.contains(">fleet: 2 hosts<"));
}

#[test]
fn the_chart_draws_every_policy_the_lower_bound_and_the_gain() {
    let dir = tempfile::tempdir().expect("tempdir");
    let trace = write_trace(dir.path());
    let out = dir.path().join("c.json");
    let o = feiyun(&[
        "replay",
        "--trace",
        &trace,
        "--hosts",
        "32c128g",
        "--no-timing",
        "--out",
        out.to_str().expect("utf8"),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let svg = std::fs::read_to_string(out.with_extension("svg")).expect("chart");
    assert!(svg.contains(">trace: 2,000 requests on unlimited 32c128g hosts<"), "a title, not a path");
    assert!(!svg.contains(dir.path().to_str().expect("utf8")), "no path in the chart");
    let mut dashes = std::collections::HashSet::new();
    for policy in ["feiyun", "first-fit", "best-fit", "worst-fit", "least-allocated", "nomad-binpack"] {
        let legend = svg.lines().find(|l| l.contains(&format!(">{policy}: peak "))).expect("in the legend");
        dashes.insert(legend.split("stroke-dasharray").nth(1).unwrap_or("solid").to_string());
    }
    assert_eq!(dashes.len(), 6, "every policy has its own dash pattern");
    assert!(svg.contains(">lower bound: "), "the lower bound is drawn");
    assert!(svg.contains("Hosts each baseline uses minus feiyun"), "the gain is drawn on its own panel");
}

#[test]
fn fractional_seconds_replay_byte_for_byte() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut csv = String::from("arrival_s,lifetime_s,vcpus,memory_gib\n");
    for i in 0..500u64 {
        csv.push_str(&format!("{}.{:03},{}.5,{},{}\n", i * 2, i * 37 % 1000, 60 + i % 90, 1 + i % 4, 2 + i % 8));
    }
    let trace = dir.path().join("frac.csv");
    std::fs::write(&trace, csv).expect("write");
    let reports: Vec<Vec<u8>> = (0..2)
        .map(|_| {
            let o = feiyun(&[
                "replay",
                "--trace",
                trace.to_str().expect("utf8"),
                "--hosts",
                "8c32g",
                "--no-timing",
                "--json",
            ]);
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            o.stdout
        })
        .collect();
    assert_eq!(reports[0], reports[1]);
    let r: serde_json::Value = serde_json::from_slice(&reports[0]).expect("json");
    assert_eq!(r["placed"], 500);

    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "arrival_s,lifetime_s,vcpus,memory_gib\n0.5,10,1,1\n1,2.5.1,1,1\n").expect("write");
    let o = feiyun(&["replay", "--trace", bad.to_str().expect("utf8"), "--hosts", "8c32g"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("Line 3") && err.contains("lifetime_s") && err.contains("2.5.1"), "{err}");
}

#[test]
fn bad_input_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let trace = write_trace(dir.path());
    let o = feiyun(&["replay", "--trace", &trace, "--hosts", "32cores"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("32cores"));
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "arrival_s,lifetime_s,vcpus,memory_gib\n0,10,x,1\n").expect("write");
    let o = feiyun(&["replay", "--trace", bad.to_str().expect("utf8"), "--hosts", "32c128g"]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).to_lowercase().contains("line 2"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = feiyun(&["replay", "--trace", &trace, "--hosts", "32c128g", "--policy", "magic"]);
    assert!(!o.status.success());
}
