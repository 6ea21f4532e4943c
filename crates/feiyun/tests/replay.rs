//! `feiyun trace convert` and `feiyun replay` as a user runs them: same input and seed, same
//! report byte for byte; the documented keys are there; bad input is a clear error.

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
fn fixed_fleets_report_rejections() {
    let dir = tempfile::tempdir().expect("tempdir");
    let trace = write_trace(dir.path());
    let o = feiyun(&["replay", "--trace", &trace, "--hosts", "2x32c128g", "--no-timing", "--baselines", "none"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert!(r["rejected"].as_u64().expect("rejected") > 0);
    assert_eq!(r["placed"].as_u64().expect("placed") + r["rejected"].as_u64().expect("rejected"), 2000);
    assert!(r["peak_hosts"].as_u64().expect("peak") <= 2);
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
