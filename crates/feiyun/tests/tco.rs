//! `feiyun tco` as a user runs it: the shipped example plan gives a table, a JSON report with the
//! documented keys and a chart; a trace works in place of the steady workload; bad input is a
//! clear error and a failing exit status, never a panic.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn feiyun(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_feiyun")).args(args).output().expect("runs")
}

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/tco-example.toml")
}

fn text(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn the_example_plan_gives_a_table_a_report_and_a_chart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("tco.json");
    let o = feiyun(&["tco", "--input", text(&example()), "--out", text(&out)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let table = String::from_utf8(o.stdout).expect("utf-8");
    assert!(table.contains("Year 3") && table.contains("Break-even (nominal"), "{table}");

    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).expect("report")).expect("json");
    for k in [
        "currency",
        "region",
        "years",
        "cost_of_capital",
        "growth",
        "subscription_terms",
        "subscribe_above_hours",
        "workload",
        "servers",
        "by_year",
        "terminal_value",
        "total",
        "total_present_value",
        "break_even",
        "monthly",
    ] {
        assert!(r.get(k).is_some(), "missing {k}");
    }
    assert_eq!(r["years"], 3);
    let years = r["by_year"].as_array().expect("by_year");
    assert_eq!(years.len(), 3);
    for y in years {
        for k in ["discount_factors", "own", "rent", "total", "present_value", "cumulative", "cumulative_present_value"]
        {
            assert!(y.get(k).is_some(), "missing by_year[].{k}");
        }
        for k in ["capex", "opex", "resale", "migration", "total", "present_value"] {
            assert!(y["own"].get(k).is_some(), "missing by_year[].own.{k}");
        }
        for k in ["by_type", "extras", "payg", "subscription", "mix"] {
            assert!(y["rent"].get(k).is_some(), "missing by_year[].rent.{k}");
        }
    }
    // Amounts are exact decimal strings, never JSON floats.
    assert_eq!(r["total"]["own"], "1318077.28");
    // The terminal value is credited once, against the horizon, not as a cost of year 3.
    assert_eq!(r["terminal_value"]["amount"], "-275880.00");
    assert_eq!(years[2]["own"]["total"], "405640.16");
    assert_eq!(r["break_even"]["nominal"]["summary"], "year 2, month 1");
    assert_eq!(r["monthly"].as_array().expect("monthly").len(), 36);

    let svg = std::fs::read_to_string(out.with_extension("svg")).expect("chart beside the report");
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert!(svg.contains("rent, mix") && svg.contains("own"));
}

#[test]
fn a_trace_replaces_the_steady_workload() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = std::fs::read_to_string(example()).expect("example");
    let cut = plan.find("[[workload]]").expect("workload");
    let rest = plan[cut..].find("[own.servers]").expect("servers") + cut;
    let plan_path = dir.path().join("plan.toml");
    std::fs::write(&plan_path, format!("{}{}", &plan[..cut], &plan[rest..])).expect("write plan");
    let trace = dir.path().join("trace.csv");
    let mut csv = String::from("arrival_s,lifetime_s,vcpus,memory_gib\n");
    for i in 0..20 {
        csv.push_str(&format!("0,86400,2,8\n{},{},4,16\n", 3600 * (i % 12), 7200 + 600 * i));
    }
    std::fs::write(&trace, csv).expect("write trace");
    let out = dir.path().join("t.json");
    let o = feiyun(&["tco", "--input", text(&plan_path), "--trace", text(&trace), "--out", text(&out)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).expect("report")).expect("json");
    assert_eq!(r["workload"]["source"], "trace");
    assert_eq!(r["workload"]["trace"]["requests"], 40);
    assert_eq!(r["workload"]["period_hours"], "24");

    // The example plan has its own workload: a trace as well is ambiguous.
    let o = feiyun(&["tco", "--input", text(&example()), "--trace", text(&trace)]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("use one or the other"));
}

/// The shipped plan for a trace, with the small trace in the repository: it runs, the own side
/// is never negative in any year, and its numbers are those of the fleet the trace implies.
#[test]
fn the_trace_example_plan_runs_on_the_testdata_trace() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let plan = root.join("docs/tco-trace-example.toml");
    let trace = root.join("crates/feiyun-sim/src/testdata/day.csv");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("trace.json");
    let o = feiyun(&["tco", "--input", text(&plan), "--trace", text(&trace), "--out", text(&out)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let table = String::from_utf8(o.stdout).expect("utf-8");
    assert!(table.contains("Workload: trace (24 h period"), "{table}");

    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).expect("report")).expect("json");
    let money = |v: &serde_json::Value| -> f64 { v.as_str().expect("a decimal string").parse().expect("a number") };
    assert_eq!(r["workload"]["trace"]["requests"], 920);
    assert_eq!(r["workload"]["trace"]["after_period"], 0);
    let scheduler: Vec<u64> =
        r["servers"]["scheduler"].as_array().expect("scheduler").iter().map(|n| n.as_u64().expect("n")).collect();
    // 23 servers of 64 vCPUs hold the day's peak (the fluid bound is 23 too); growth 10 % a year.
    assert_eq!(scheduler, [23, 26, 28]);

    let mut paid = 0.0;
    for (i, y) in r["by_year"].as_array().expect("years").iter().enumerate() {
        let own = &y["own"];
        let total = money(&own["total"]);
        assert!(total > 0.0 && money(&y["present_value"]["own"]) > 0.0, "year {}: own {total}", i + 1);
        assert!(money(&own["opex"]["total"]) > 0.0 && money(&own["capex"]["total"]) >= 0.0);
        paid += total;
        // The fleet the trace implies, and what is sized per server.
        let servers = own["servers_in_service"].as_u64().expect("servers");
        assert_eq!(servers, scheduler[i] + 1, "one spare");
        assert_eq!(own["racks_in_service"].as_u64(), Some(servers.div_ceil(16)));
        assert_eq!(own["switches_in_service"].as_u64(), Some(servers.div_ceil(8)));
        let staff = money(&own["opex"]["staff"]);
        assert!((staff - (1.0 + servers as f64 / 100.0) * 300_000.0).abs() < 0.01, "staff {staff}");
        let power = money(&own["opex"]["power"]);
        assert!((4_000.0..7_000.0).contains(&(power / servers as f64)), "power per server {power}");
    }
    // What is still owned at the end is worth less than what was bought, and it is credited once.
    let terminal = money(&r["terminal_value"]["amount"]);
    let capex: f64 = r["by_year"].as_array().expect("years").iter().map(|y| money(&y["own"]["capex"]["total"])).sum();
    assert!(terminal < 0.0 && -terminal < capex, "terminal {terminal}, capex {capex}");
    let net = money(&r["total"]["own"]);
    assert!((net - (paid + terminal)).abs() < 0.01);
    // All in, a server costs what a rented rack slot, its share of the staff and its power cost:
    // tens of thousands a year, not hundreds or millions.
    let server_years: u64 = r["by_year"]
        .as_array()
        .expect("years")
        .iter()
        .map(|y| y["own"]["servers_in_service"].as_u64().expect("n"))
        .sum();
    let per_server_year = net / server_years as f64;
    assert!((20_000.0..80_000.0).contains(&per_server_year), "{per_server_year} a server-year");
    assert!(money(&r["total"]["mix"]) > 0.0);
    let svg = std::fs::read_to_string(out.with_extension("svg")).expect("chart");
    assert!(svg.contains(">terminal value<"));
}

#[test]
fn bad_input_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = std::fs::read_to_string(example()).expect("example");
    let cases = [
        (plan.replace("years = 3 ", "years = 7 "), "Plan field years: must be 3 to 5 (got 7)"),
        (plan.replace("\"ecs.g7.large\"", "\"ecs.g7.enormous\""), "unknown instance type \\\"ecs.g7.enormous\\\""),
        (plan.replace("pue = \"1.5\"", "pue = 1.5"), "write decimals as strings"),
        (plan.replace("pue = \"1.5\"", "pue = \"1,5\""), "is not a decimal"),
        (plan.replace("watts = 150", "watt = 150"), "unknown field `watt`"),
    ];
    for (i, (text_, needle)) in cases.iter().enumerate() {
        assert_ne!(text_, &plan, "case {i} changed nothing");
        let path = dir.path().join(format!("bad{i}.toml"));
        std::fs::write(&path, text_).expect("write");
        let o = feiyun(&["tco", "--input", text(&path)]);
        assert_eq!(o.status.code(), Some(2), "case {i}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(needle), "case {i}: {err}");
        assert!(!err.contains("panicked"), "case {i}: {err}");
    }
    let o = feiyun(&["tco", "--input", text(&example()), "--region", "cn-nowhere"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("cn-nowhere"));
    let o = feiyun(&["tco", "--input", text(&dir.path().join("missing.toml"))]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot read"));
}
