//! Replaying a trace through the scheduler, on simulated hosts.
//!
//! Clearly a simulation: no agents, no containers. Requests arrive in trace order; departures
//! due at or before an arrival's millisecond are released first. The same [`feiyun_scheduler::cluster`]
//! index the server uses decides every placement. Everything in the report is a function of the
//! input and the seed, except the two timing fields (`placements_per_second`,
//! `decision_latency_us`), which are measured unless timing is turned off.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use feiyun_scheduler::cluster::{Ask, Cluster, Demand, HostId, Policy, Shape};
use serde::Serialize;

use crate::fleet::{FleetSpec, HostShape};
use crate::plot::Series;
use crate::trace::TraceRequest;

/// Zone name of hosts whose group names none.
pub const DEFAULT_ZONE: &str = "default";

fn shape_of(h: &HostShape) -> Shape {
    Shape {
        capacity: Demand {
            cpu_milli: h.cpu_milli,
            mem_mib: h.memory_mib,
            gpu_milli: h.gpus as u64 * 1000,
            disk_gib: 0,
        },
        zone: h.zone.clone().unwrap_or_else(|| DEFAULT_ZONE.to_string()),
        gpu_model: h.gpu_model.clone(),
        disk_category: None,
    }
}

fn demand_of(r: &TraceRequest) -> Demand {
    Demand { cpu_milli: r.cpu_milli, mem_mib: r.memory_mib, gpu_milli: r.gpu_milli, disk_gib: 0 }
}

/// Build the simulated cluster for a fleet.
pub fn build_cluster(fleet: &FleetSpec) -> Cluster {
    let mut c = Cluster::new();
    for g in &fleet.groups {
        let shape = shape_of(&g.shape);
        match g.count {
            Some(n) => {
                for _ in 0..n {
                    c.add_host(shape.clone());
                }
            }
            None => c.allow_unlimited(shape),
        }
    }
    c
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Utilization {
    /// Time-weighted mean over the replay of (demand in use / capacity of hosts in use), percent.
    pub average_percent: f64,
    pub peak_percent: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UtilizationByDimension {
    pub cpu: Utilization,
    pub memory: Utilization,
    pub gpu: Utilization,
}

/// Capacity nobody can use, at the moment the peak host count was first reached.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stranded {
    /// Free vCPUs on hosts whose free memory is below the smallest memory request of the trace.
    pub vcpus_on_memory_full_hosts: f64,
    /// Free GiB on hosts whose free vCPUs are below the smallest vCPU request of the trace.
    pub memory_gib_on_cpu_full_hosts: f64,
    /// Both, as a percentage of the capacity of the hosts in use.
    pub cpu_percent: f64,
    pub memory_percent: f64,
}

/// The result of replaying one policy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyRun {
    pub policy: String,
    pub placed: u64,
    pub rejected: u64,
    pub peak_hosts: u64,
    pub gap_percent: f64,
    pub utilization: UtilizationByDimension,
    pub stranded: Stranded,
    pub placements_per_second: f64,
    pub decision_latency_us: Latency,
    #[serde(skip)]
    pub timeline: Vec<(f64, f64, f64, f64)>,
}

/// Replay options.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    pub policy: Policy,
    /// Other policies replayed on the same input, for comparison.
    pub baselines: Vec<Policy>,
    /// Measure wall-clock decision time (otherwise the timing fields are zero, and the whole
    /// report is identical byte for byte between runs of the same input).
    pub timing: bool,
}

/// The report of a replay: the chosen policy's results at the top level, baselines beside them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub requests: u64,
    pub placed: u64,
    pub rejected: u64,
    pub peak_hosts: u64,
    pub lower_bound_hosts: u64,
    pub gap_percent: f64,
    pub placements_per_second: f64,
    pub decision_latency_us: Latency,
    pub policy: String,
    pub fleet: String,
    pub unlimited_fleet: bool,
    pub utilization: UtilizationByDimension,
    pub stranded: Stranded,
    /// Which dimension sets the lower bound, and when (trace milliseconds; seconds in JSON).
    pub lower_bound_dimension: String,
    #[serde(rename = "lower_bound_at_s", serialize_with = "crate::trace::serialize_ms_as_s")]
    pub lower_bound_at_ms: u64,
    pub baselines: Vec<PolicyRun>,
}

/// The fluid lower bound: at the busiest moment, total demand over host capacity, per dimension,
/// rounded up; the largest over dimensions. In a fleet of mixed hosts, the fewest hosts whose
/// capacities add up to the demand (largest first); an unlimited group covers what the fixed
/// hosts do not. Returns (hosts, dimension, trace millisecond of that dimension's peak).
pub fn lower_bound(requests: &[TraceRequest], fleet: &FleetSpec) -> (u64, String, u64) {
    // Sweep over arrivals and departures for each dimension's peak.
    let mut events: Vec<(u64, u8, usize)> = Vec::with_capacity(requests.len() * 2);
    for (i, r) in requests.iter().enumerate() {
        events.push((r.arrival_ms, 1, i));
        if let (Some(l), Some(end)) = (r.lifetime_ms, r.departure_ms()) {
            // Departures come before arrivals of the same millisecond, as in the replay, except
            // that a zero-length request leaves after it arrived.
            events.push((end, if l == 0 { 2 } else { 0 }, i));
        }
    }
    events.sort_unstable();
    let mut total = [0u64; 3];
    let mut peak = [(0u64, 0u64); 3];
    for (t, kind, i) in events {
        let r = &requests[i];
        let d = [r.cpu_milli, r.memory_mib, r.gpu_milli];
        for k in 0..3 {
            if kind == 1 {
                total[k] += d[k];
            } else {
                total[k] -= d[k];
            }
            if total[k] > peak[k].0 {
                peak[k] = (total[k], t);
            }
        }
    }
    let caps = |s: &HostShape| [s.cpu_milli, s.memory_mib, s.gpus as u64 * 1000];
    let unlimited = fleet.groups.iter().find(|g| g.count.is_none()).map(|g| caps(&g.shape));
    let mut best = (0u64, String::from("cpu"), 0u64);
    for (k, name) in ["cpu", "memory", "gpu"].iter().enumerate() {
        let need = peak[k].0;
        if need == 0 {
            continue;
        }
        let mut fixed: Vec<(u64, u64)> = fleet
            .groups
            .iter()
            .filter_map(|g| g.count.map(|n| (caps(&g.shape)[k], n)))
            .filter(|(c, _)| *c > 0)
            .collect();
        fixed.sort_unstable_by_key(|f| std::cmp::Reverse(f.0));
        let (mut left, mut hosts) = (need, 0u64);
        for (cap, n) in fixed {
            if left == 0 {
                break;
            }
            let take = left.div_ceil(cap).min(n);
            hosts += take;
            left = left.saturating_sub(take * cap);
        }
        if left > 0 {
            match unlimited.map(|c| c[k]).filter(|c| *c > 0) {
                Some(c) => hosts += left.div_ceil(c),
                // The fleet cannot hold it at all; every host is needed (and some is rejected).
                None => hosts = fleet.host_count().unwrap_or(hosts),
            }
        }
        if hosts > best.0 {
            best = (hosts, name.to_string(), peak[k].1);
        }
    }
    best
}

/// Replay one policy.
pub fn run_policy(requests: &[TraceRequest], fleet: &FleetSpec, policy: Policy, timing: bool, lb: u64) -> PolicyRun {
    let mut cluster = build_cluster(fleet);
    let min_mem = requests.iter().map(|r| r.memory_mib).filter(|m| *m > 0).min().unwrap_or(1);
    let min_cpu = requests.iter().map(|r| r.cpu_milli).filter(|c| *c > 0).min().unwrap_or(1);
    let mut departures: BinaryHeap<Reverse<(u64, usize, HostId)>> = BinaryHeap::new();
    let (mut placed, mut rejected) = (0u64, 0u64);
    let mut lat: Vec<u32> = if timing { Vec::with_capacity(requests.len()) } else { Vec::new() };
    let mut decide_ns: u128 = 0;
    let (mut use_cpu, mut use_mem, mut use_gpu) = (0u64, 0u64, 0u64);
    let (mut cap_cpu, mut cap_mem, mut cap_gpu) = (0u64, 0u64, 0u64);
    let mut host_caps: Vec<bool> = Vec::new();
    let mut peak = 0u64;
    let mut stranded = Stranded {
        vcpus_on_memory_full_hosts: 0.0,
        memory_gib_on_cpu_full_hosts: 0.0,
        cpu_percent: 0.0,
        memory_percent: 0.0,
    };
    let mut timeline: Vec<(f64, f64, f64, f64)> = Vec::new();
    let mut util_acc = [0.0f64; 3];
    let mut util_peak = [0.0f64; 3];
    let mut last_t: Option<u64> = None;
    let first_t = requests.first().map(|r| r.arrival_ms).unwrap_or(0);
    let mut asks: std::collections::HashMap<(Demand, Option<String>, Option<String>), Ask> = Default::default();

    // Capacity of the hosts in use, kept incrementally.
    let note_host = |cluster: &Cluster, h: HostId, caps: &mut (u64, u64, u64), host_caps: &mut Vec<bool>| {
        let used = cluster.instances(h) > 0;
        if host_caps.len() <= h as usize {
            host_caps.resize(h as usize + 1, false);
        }
        if used != host_caps[h as usize] {
            let cap = cluster.shape(h).capacity;
            if used {
                caps.0 += cap.cpu_milli;
                caps.1 += cap.mem_mib;
                caps.2 += cap.gpu_milli;
            } else {
                caps.0 -= cap.cpu_milli;
                caps.1 -= cap.mem_mib;
                caps.2 -= cap.gpu_milli;
            }
            host_caps[h as usize] = used;
        }
    };

    for (i, r) in requests.iter().enumerate() {
        // Time-weighted utilization over the interval since the last event.
        let sample =
            |t: u64, last_t: &mut Option<u64>, acc: &mut [f64; 3], caps: (u64, u64, u64), uses: (u64, u64, u64)| {
                if let Some(lt) = *last_t {
                    let dt = (t - lt) as f64;
                    let u = |a: u64, c: u64| if c > 0 { a as f64 / c as f64 } else { 0.0 };
                    acc[0] += dt * u(uses.0, caps.0);
                    acc[1] += dt * u(uses.1, caps.1);
                    acc[2] += dt * u(uses.2, caps.2);
                }
                *last_t = Some(t);
            };
        while let Some(Reverse((t, j, h))) = departures.peek().copied() {
            if t > r.arrival_ms {
                break;
            }
            departures.pop();
            sample(t, &mut last_t, &mut util_acc, (cap_cpu, cap_mem, cap_gpu), (use_cpu, use_mem, use_gpu));
            let d = &requests[j];
            cluster.release(h, &demand_of(d), d.deployment_set.as_deref());
            use_cpu -= d.cpu_milli;
            use_mem -= d.memory_mib;
            use_gpu -= d.gpu_milli;
            let mut caps = (cap_cpu, cap_mem, cap_gpu);
            note_host(&cluster, h, &mut caps, &mut host_caps);
            (cap_cpu, cap_mem, cap_gpu) = caps;
        }
        sample(r.arrival_ms, &mut last_t, &mut util_acc, (cap_cpu, cap_mem, cap_gpu), (use_cpu, use_mem, use_gpu));
        let demand = demand_of(r);
        let key = (demand, r.zone.clone(), r.deployment_set.clone());
        let ask = asks
            .entry(key)
            .or_insert_with(|| {
                let mut a = Ask::new(demand, policy);
                a.zone = r.zone.clone();
                // Trace requests name no GPU model: any host with enough GPU capacity will do.
                a.gpu_model = None;
                a.deployment_set = r.deployment_set.clone();
                a
            })
            .clone();
        let t0 = timing.then(Instant::now);
        let res = cluster.place(&ask, 1, 1);
        if let Some(t0) = t0 {
            let ns = t0.elapsed().as_nanos();
            decide_ns += ns;
            lat.push(ns.min(u32::MAX as u128) as u32);
        }
        match res {
            Ok(hosts) => {
                placed += 1;
                let h = hosts[0];
                use_cpu += r.cpu_milli;
                use_mem += r.memory_mib;
                use_gpu += r.gpu_milli;
                let mut caps = (cap_cpu, cap_mem, cap_gpu);
                note_host(&cluster, h, &mut caps, &mut host_caps);
                (cap_cpu, cap_mem, cap_gpu) = caps;
                if let Some(end) = r.departure_ms() {
                    departures.push(Reverse((end, i, h)));
                }
            }
            Err(_) => rejected += 1,
        }
        let used = cluster.used_hosts();
        let u = |a: u64, c: u64| if c > 0 { a as f64 * 100.0 / c as f64 } else { 0.0 };
        let now_util = [u(use_cpu, cap_cpu), u(use_mem, cap_mem), u(use_gpu, cap_gpu)];
        for d in 0..3 {
            util_peak[d] = util_peak[d].max(now_util[d]);
        }
        if used > peak {
            peak = used;
            stranded = measure_stranded(&cluster, min_cpu, min_mem, cap_cpu, cap_mem);
        }
        let t = (r.arrival_ms - first_t) as f64 / 3_600_000.0;
        if timeline.last().map(|p: &(f64, f64, f64, f64)| t - p.0 >= 1.0 / 60.0 || used as f64 > p.1).unwrap_or(true) {
            timeline.push((t, used as f64, now_util[0], now_util[1]));
        }
    }
    let span = last_t.map(|lt| (lt - first_t) as f64).unwrap_or(0.0);
    let avg = |a: f64| if span > 0.0 { a * 100.0 / span } else { 0.0 };
    let round2 = |x: f64| (x * 100.0).round() / 100.0;
    lat.sort_unstable();
    let pick = |p: f64| -> f64 {
        if lat.is_empty() {
            0.0
        } else {
            round2(lat[((lat.len() - 1) as f64 * p).round() as usize] as f64 / 1000.0)
        }
    };
    PolicyRun {
        policy: policy.name().to_string(),
        placed,
        rejected,
        peak_hosts: peak,
        gap_percent: if lb > 0 { round2((peak as f64 - lb as f64) * 100.0 / lb as f64) } else { 0.0 },
        utilization: UtilizationByDimension {
            cpu: Utilization { average_percent: round2(avg(util_acc[0])), peak_percent: round2(util_peak[0]) },
            memory: Utilization { average_percent: round2(avg(util_acc[1])), peak_percent: round2(util_peak[1]) },
            gpu: Utilization { average_percent: round2(avg(util_acc[2])), peak_percent: round2(util_peak[2]) },
        },
        stranded,
        placements_per_second: if timing && decide_ns > 0 {
            (requests.len() as f64 / (decide_ns as f64 / 1e9)).round()
        } else {
            0.0
        },
        decision_latency_us: Latency { p50: pick(0.5), p99: pick(0.99), max: pick(1.0) },
        timeline,
    }
}

fn measure_stranded(c: &Cluster, min_cpu: u64, min_mem: u64, cap_cpu: u64, cap_mem: u64) -> Stranded {
    let (mut cpu, mut mem) = (0u64, 0u64);
    for (_, _, free, n) in c.hosts() {
        if n == 0 {
            continue;
        }
        if free.mem_mib < min_mem {
            cpu += free.cpu_milli;
        }
        if free.cpu_milli < min_cpu {
            mem += free.mem_mib;
        }
    }
    let round2 = |x: f64| (x * 100.0).round() / 100.0;
    Stranded {
        vcpus_on_memory_full_hosts: round2(cpu as f64 / 1000.0),
        memory_gib_on_cpu_full_hosts: round2(mem as f64 / 1024.0),
        cpu_percent: if cap_cpu > 0 { round2(cpu as f64 * 100.0 / cap_cpu as f64) } else { 0.0 },
        memory_percent: if cap_mem > 0 { round2(mem as f64 * 100.0 / cap_mem as f64) } else { 0.0 },
    }
}

/// Replay the chosen policy and the baselines; the report's top level is the chosen policy.
pub fn replay(
    requests: &[TraceRequest],
    fleet: &FleetSpec,
    fleet_text: &str,
    opts: &ReplayOptions,
) -> (Report, PolicyRun) {
    let (lb, dim, at) = lower_bound(requests, fleet);
    let main = run_policy(requests, fleet, opts.policy, opts.timing, lb);
    let baselines: Vec<PolicyRun> = opts
        .baselines
        .iter()
        .filter(|p| **p != opts.policy)
        .map(|p| run_policy(requests, fleet, *p, opts.timing, lb))
        .collect();
    let report = Report {
        requests: requests.len() as u64,
        placed: main.placed,
        rejected: main.rejected,
        peak_hosts: main.peak_hosts,
        lower_bound_hosts: lb,
        gap_percent: main.gap_percent,
        placements_per_second: main.placements_per_second,
        decision_latency_us: main.decision_latency_us,
        policy: main.policy.clone(),
        fleet: fleet_text.to_string(),
        unlimited_fleet: fleet.is_unlimited(),
        utilization: main.utilization.clone(),
        stranded: main.stranded.clone(),
        lower_bound_dimension: dim,
        lower_bound_at_ms: at,
        baselines,
    };
    (report, main)
}

/// The chart people look at: hosts in use, and CPU and memory utilization, over time.
pub fn chart(run: &PolicyRun, baselines: &[PolicyRun], title: &str) -> String {
    let mut left = vec![Series {
        name: format!("hosts in use ({})", run.policy),
        points: run.timeline.iter().map(|p| (p.0, p.1)).collect(),
    }];
    for b in baselines.iter().filter(|b| b.policy == "best-fit") {
        left.push(Series {
            name: format!("hosts in use ({})", b.policy),
            points: b.timeline.iter().map(|p| (p.0, p.1)).collect(),
        });
    }
    let right = vec![
        Series { name: "CPU utilization %".into(), points: run.timeline.iter().map(|p| (p.0, p.2)).collect() },
        Series { name: "memory utilization %".into(), points: run.timeline.iter().map(|p| (p.0, p.3)).collect() },
    ];
    crate::plot::svg_chart(
        title,
        "hours since the first arrival",
        &left,
        "hosts in use",
        &right,
        "utilization of hosts in use (%)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request with times in whole seconds.
    fn req(arrival: u64, life: Option<u64>, cpus: u64, gib: u64) -> TraceRequest {
        TraceRequest::new(arrival * 1000, life.map(|l| l * 1000), cpus * 1000, gib * 1024)
    }

    fn fleet(s: &str) -> FleetSpec {
        FleetSpec::parse(s).expect("valid fleet")
    }

    #[test]
    fn lower_bound_is_the_busiest_moment() {
        // Two overlapping 16-vCPU requests need 2 hosts of 16 vCPUs; a later one alone needs 1.
        let r = vec![req(0, Some(10), 16, 1), req(5, Some(10), 16, 1), req(100, None, 8, 1)];
        let (lb, dim, at) = lower_bound(&r, &fleet("16c64g"));
        assert_eq!((lb, dim.as_str(), at), (2, "cpu", 5000));
        // Departure at 10 frees room before the arrival at 10.
        let r = vec![req(0, Some(10), 16, 1), req(10, None, 16, 1)];
        assert_eq!(lower_bound(&r, &fleet("16c64g")).0, 1);
    }

    #[test]
    fn lower_bound_of_a_mixed_fleet_takes_the_largest_hosts_first() {
        // 40 vCPUs at once: one 32-core host plus one 8-core host cover it.
        let r = vec![req(0, None, 20, 1), req(0, None, 20, 1)];
        assert_eq!(lower_bound(&r, &fleet("4x8c32g,1x32c128g")).0, 2);
        // With an unlimited group, the fixed hosts go first and the rest is opened on demand.
        assert_eq!(lower_bound(&r, &fleet("1x8c32g,16c64g")).0, 1 + 2);
    }

    #[test]
    fn unlimited_fleet_counts_peak_hosts_and_reuses_freed_ones() {
        let r = vec![req(0, Some(10), 16, 1), req(5, Some(10), 16, 1), req(20, None, 16, 1)];
        let run = run_policy(&r, &fleet("16c64g"), Policy::Feiyun, false, 2);
        assert_eq!((run.placed, run.rejected, run.peak_hosts, run.gap_percent), (3, 0, 2, 0.0));
    }

    #[test]
    fn fixed_fleet_rejects_what_does_not_fit() {
        let r = vec![req(0, None, 16, 1), req(1, None, 16, 1), req(2, Some(5), 1, 1)];
        let run = run_policy(&r, &fleet("1x16c64g"), Policy::BestFit, false, 1);
        assert_eq!((run.placed, run.rejected), (1, 2));
    }

    /// The real GPU trace on its real node list: Feiyun needs no more hosts than any baseline.
    #[test]
    fn feiyun_beats_the_baselines_on_the_real_gpu_trace() {
        let pods = crate::convert::tests::shared_trace("alibaba-gpu-2023/openb_pod_list_default.csv");
        let nodes = crate::convert::tests::shared_trace("alibaba-gpu-2023/openb_node_list_all_node.csv");
        let requests = crate::convert::alibaba_gpu_2023(&pods).expect("converts");
        let spec = format!("alibaba-nodes:{}", nodes.display());
        let fleet = FleetSpec::parse(&spec).expect("fleet");
        let opts = ReplayOptions { policy: Policy::Feiyun, baselines: Policy::ALL.to_vec(), timing: false };
        let (report, _) = replay(&requests, &fleet, &spec, &opts);
        assert_eq!(report.rejected, 0);
        assert!(report.peak_hosts >= report.lower_bound_hosts);
        for b in &report.baselines {
            assert!(
                report.peak_hosts <= b.peak_hosts,
                "{} needs {} hosts, feiyun {}",
                b.policy,
                b.peak_hosts,
                report.peak_hosts
            );
        }
    }

    #[test]
    fn without_timing_the_report_is_reproducible() {
        let r: Vec<TraceRequest> = (0..200).map(|i| req(i, Some(50 + i % 7 * 10), 1 + i % 4, 1 + i % 9)).collect();
        let opts = ReplayOptions { policy: Policy::Feiyun, baselines: Policy::ALL.to_vec(), timing: false };
        let a = serde_json::to_string(&replay(&r, &fleet("8c32g"), "8c32g", &opts).0).expect("json");
        let b = serde_json::to_string(&replay(&r, &fleet("8c32g"), "8c32g", &opts).0).expect("json");
        assert_eq!(a, b);
        assert!(a.contains("\"lower_bound_hosts\""));
    }
}
