//! Replaying a trace through the scheduler, on simulated hosts.
//!
//! Clearly a simulation: no agents, no containers. Requests arrive in trace order; departures
//! due at or before an arrival's millisecond are released first. The same
//! [`feiyun_scheduler::cluster`] index the server uses decides every placement. Everything in the
//! report is a function of the input, except the two timing fields (`placements_per_second`,
//! `decision_latency_us`), which are measured unless timing is turned off.
//!
//! Besides the report, a replay keeps what its chart and summary need: each policy's hosts in use
//! and utilization over time, when it rejected requests, and the fluid lower bound over time.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::Instant;

use feiyun_scheduler::cluster::{Ask, Cluster, Demand, HostId, Policy, Shape};
use serde::Serialize;

use crate::fleet::{FleetSpec, HostShape};
use crate::trace::{serialize_ms_as_s, TraceRequest, TraceSummary};

pub use crate::lower_bound::{lower_bound, LowerBound};

/// Zone name of hosts whose group names none.
pub const DEFAULT_ZONE: &str = "default";

/// Timelines keep at most about one point per this many milliseconds (plus every rise).
pub const SAMPLE_MS: u64 = 60_000;

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

/// The state of a replay at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Trace milliseconds.
    pub at_ms: u64,
    /// Hosts in use (or, in the lower bound's timeline, the hosts the demand needs at least).
    pub hosts: u64,
    /// Demand over the capacity of the hosts in use, percent.
    pub cpu_percent: f64,
    pub memory_percent: f64,
    pub gpu_percent: f64,
}

impl Sample {
    pub(crate) fn hosts(at_ms: u64, hosts: u64) -> Sample {
        Sample { at_ms, hosts, cpu_percent: 0.0, memory_percent: 0.0, gpu_percent: 0.0 }
    }
}

/// Keeps a timeline short without changing its shape at a glance: the first point at least
/// [`SAMPLE_MS`] after the last one kept, every rise above the last one kept (so peaks survive),
/// and the last state before each kept point (so a fall is drawn when it happened, not at the
/// next busy moment).
#[derive(Debug, Default)]
pub(crate) struct Timeline {
    kept: Vec<Sample>,
    pending: Option<Sample>,
}

impl Timeline {
    pub(crate) fn note(&mut self, s: Sample) {
        if let Some(last) = self.kept.last() {
            if s.at_ms < last.at_ms.saturating_add(SAMPLE_MS) && s.hosts <= last.hosts {
                self.pending = Some(s);
                return;
            }
        }
        if let Some(p) = self.pending.take().filter(|p| p.at_ms < s.at_ms) {
            self.kept.push(p);
        }
        self.kept.push(s);
    }

    pub(crate) fn finish(mut self) -> Vec<Sample> {
        self.kept.extend(self.pending.take());
        self.kept
    }
}

/// Rejections counted in buckets of [`Rejections::bucket_s`] seconds of the trace clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RejectionBucket {
    /// Start of the bucket, trace seconds.
    #[serde(rename = "from_s", serialize_with = "serialize_ms_as_s")]
    pub from_ms: u64,
    pub rejected: u64,
}

/// When a policy rejected requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejections {
    /// The first and the last rejection, trace seconds.
    #[serde(rename = "first_at_s", serialize_with = "serialize_ms_as_s")]
    pub first_at_ms: u64,
    #[serde(rename = "last_at_s", serialize_with = "serialize_ms_as_s")]
    pub last_at_ms: u64,
    /// Width of the buckets: the shortest of a minute, 5 and 15 minutes, an hour, 6 hours, a day,
    /// a week and 30 days that cuts the trace into at most [`MAX_BUCKETS`] of them.
    pub bucket_s: u64,
    /// Buckets with at least one rejection, in time order.
    pub by_bucket: Vec<RejectionBucket>,
}

/// Most rejection buckets over a trace.
pub const MAX_BUCKETS: u64 = 250;

impl Rejections {
    /// `at_ms`: when each rejection happened, in order; `span_ms`: first to last arrival.
    fn of(at_ms: &[u64], span_ms: u64) -> Option<Rejections> {
        let (&first, &last) = (at_ms.first()?, at_ms.last()?);
        let bucket_s = [60u64, 300, 900, 3600, 21_600, 86_400, 604_800, 2_592_000]
            .into_iter()
            .find(|b| span_ms.div_ceil(b * 1000) <= MAX_BUCKETS)
            .unwrap_or(2_592_000);
        let width = bucket_s * 1000;
        let mut by_bucket: Vec<RejectionBucket> = Vec::new();
        for &t in at_ms {
            let from_ms = t / width * width;
            match by_bucket.last_mut() {
                Some(b) if b.from_ms == from_ms => b.rejected += 1,
                _ => by_bucket.push(RejectionBucket { from_ms, rejected: 1 }),
            }
        }
        Some(Rejections { first_at_ms: first, last_at_ms: last, bucket_s, by_bucket })
    }
}

/// The result of replaying one policy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyRun {
    pub policy: String,
    pub placed: u64,
    pub rejected: u64,
    /// When requests were rejected; `null` when none was.
    pub rejections: Option<Rejections>,
    pub peak_hosts: u64,
    /// (peak − lower bound) / lower bound × 100. `null` on a fixed fleet that rejected requests
    /// with every host in use, or whose demand exceeds it at the peak: hosts in use are then capped
    /// by the fleet, and the rejections are the result.
    pub gap_percent: Option<f64>,
    pub utilization: UtilizationByDimension,
    pub stranded: Stranded,
    pub placements_per_second: f64,
    pub decision_latency_us: Latency,
    /// Hosts in use and utilization over time (see [`SAMPLE_MS`]).
    #[serde(skip)]
    pub timeline: Vec<Sample>,
    /// When each rejected request arrived, trace milliseconds, in order.
    #[serde(skip)]
    pub rejected_at_ms: Vec<u64>,
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
    pub rejections: Option<Rejections>,
    pub peak_hosts: u64,
    pub lower_bound_hosts: u64,
    pub gap_percent: Option<f64>,
    pub placements_per_second: f64,
    pub decision_latency_us: Latency,
    pub policy: String,
    pub fleet: String,
    pub unlimited_fleet: bool,
    /// Hosts in a fixed fleet; `null` when some group is unlimited.
    pub fleet_hosts: Option<u64>,
    /// At its peak the demand needs more than the fixed fleet holds even if instances could be
    /// split: every policy must reject requests.
    pub demand_exceeds_fleet: bool,
    pub utilization: UtilizationByDimension,
    pub stranded: Stranded,
    /// Which dimension sets the lower bound, and when (trace milliseconds; seconds in JSON).
    pub lower_bound_dimension: String,
    #[serde(rename = "lower_bound_at_s", serialize_with = "serialize_ms_as_s")]
    pub lower_bound_at_ms: u64,
    pub baselines: Vec<PolicyRun>,
}

/// Demand and capacity of the hosts in use, kept as the replay goes.
#[derive(Debug, Default, Clone, Copy)]
struct Usage {
    used: [u64; 3],
    capacity: [u64; 3],
}

impl Usage {
    /// Demand over capacity of the hosts in use, per dimension (0 with no host in use).
    fn fraction(&self) -> [f64; 3] {
        [0, 1, 2].map(|k| if self.capacity[k] > 0 { self.used[k] as f64 / self.capacity[k] as f64 } else { 0.0 })
    }

    fn percent(&self) -> [f64; 3] {
        [0, 1, 2].map(
            |k| {
                if self.capacity[k] > 0 {
                    self.used[k] as f64 * 100.0 / self.capacity[k] as f64
                } else {
                    0.0
                }
            },
        )
    }

    /// Adds or removes a host's capacity when it starts or stops being in use.
    fn note_host(&mut self, cluster: &Cluster, h: HostId, in_use: &mut Vec<bool>) {
        let used = cluster.instances(h) > 0;
        if in_use.len() <= h as usize {
            in_use.resize(h as usize + 1, false);
        }
        if used != in_use[h as usize] {
            let cap = cluster.shape(h).capacity;
            for (k, c) in [cap.cpu_milli, cap.mem_mib, cap.gpu_milli].into_iter().enumerate() {
                if used {
                    self.capacity[k] += c;
                } else {
                    self.capacity[k] -= c;
                }
            }
            in_use[h as usize] = used;
        }
    }
}

/// Replay one policy; `lb` is the lower bound its gap is measured against.
pub fn run_policy(requests: &[TraceRequest], fleet: &FleetSpec, policy: Policy, timing: bool, lb: u64) -> PolicyRun {
    let mut cluster = build_cluster(fleet);
    let min_mem = requests.iter().map(|r| r.memory_mib).filter(|m| *m > 0).min().unwrap_or(1);
    let min_cpu = requests.iter().map(|r| r.cpu_milli).filter(|c| *c > 0).min().unwrap_or(1);
    let mut departures: BinaryHeap<Reverse<(u64, usize, HostId)>> = BinaryHeap::new();
    let (mut placed, mut rejected_at_ms) = (0u64, Vec::new());
    let mut lat: Vec<u32> = if timing { Vec::with_capacity(requests.len()) } else { Vec::new() };
    let mut decide_ns: u128 = 0;
    let mut usage = Usage::default();
    let mut in_use: Vec<bool> = Vec::new();
    let mut peak = 0u64;
    let mut stranded = Stranded {
        vcpus_on_memory_full_hosts: 0.0,
        memory_gib_on_cpu_full_hosts: 0.0,
        cpu_percent: 0.0,
        memory_percent: 0.0,
    };
    let mut timeline = Timeline::default();
    let mut util_acc = [0.0f64; 3];
    let mut util_peak = [0.0f64; 3];
    let mut last_t: Option<u64> = None;
    let first_t = requests.first().map(|r| r.arrival_ms).unwrap_or(0);
    let mut asks: HashMap<(Demand, Option<String>, Option<String>), Ask> = HashMap::new();

    // Time-weighted utilization over the interval since the last event.
    let sample = |t: u64, last_t: &mut Option<u64>, acc: &mut [f64; 3], usage: &Usage| {
        if let Some(lt) = *last_t {
            let dt = (t - lt) as f64;
            for (a, f) in acc.iter_mut().zip(usage.fraction()) {
                *a += dt * f;
            }
        }
        *last_t = Some(t);
    };
    let state = |t: u64, cluster: &Cluster, usage: &Usage| {
        let [cpu, memory, gpu] = usage.percent();
        Sample { at_ms: t, hosts: cluster.used_hosts(), cpu_percent: cpu, memory_percent: memory, gpu_percent: gpu }
    };

    for (i, r) in requests.iter().enumerate() {
        while let Some(Reverse((t, j, h))) = departures.peek().copied() {
            if t > r.arrival_ms {
                break;
            }
            departures.pop();
            sample(t, &mut last_t, &mut util_acc, &usage);
            let d = &requests[j];
            cluster.release(h, &demand_of(d), d.deployment_set.as_deref());
            usage.used[0] -= d.cpu_milli;
            usage.used[1] -= d.memory_mib;
            usage.used[2] -= d.gpu_milli;
            usage.note_host(&cluster, h, &mut in_use);
            timeline.note(state(t, &cluster, &usage));
        }
        sample(r.arrival_ms, &mut last_t, &mut util_acc, &usage);
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
                usage.used[0] += r.cpu_milli;
                usage.used[1] += r.memory_mib;
                usage.used[2] += r.gpu_milli;
                usage.note_host(&cluster, h, &mut in_use);
                if let Some(end) = r.departure_ms() {
                    departures.push(Reverse((end, i, h)));
                }
            }
            Err(_) => rejected_at_ms.push(r.arrival_ms),
        }
        let now = state(r.arrival_ms, &cluster, &usage);
        for (p, v) in util_peak.iter_mut().zip([now.cpu_percent, now.memory_percent, now.gpu_percent]) {
            *p = p.max(v);
        }
        if now.hosts > peak {
            peak = now.hosts;
            stranded = measure_stranded(&cluster, min_cpu, min_mem, usage.capacity[0], usage.capacity[1]);
        }
        timeline.note(now);
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
    let rejected = rejected_at_ms.len() as u64;
    let capped = fleet.host_count().is_some_and(|n| rejected > 0 && (peak >= n || lb >= n));
    let utilization =
        |k: usize| Utilization { average_percent: round2(avg(util_acc[k])), peak_percent: round2(util_peak[k]) };
    let last_arrival = requests.last().map_or(first_t, |r| r.arrival_ms);
    PolicyRun {
        policy: policy.name().to_string(),
        placed,
        rejected,
        rejections: Rejections::of(&rejected_at_ms, last_arrival - first_t),
        peak_hosts: peak,
        gap_percent: match lb {
            _ if capped => None,
            0 => Some(0.0),
            lb => Some(round2((peak as f64 - lb as f64) * 100.0 / lb as f64)),
        },
        utilization: UtilizationByDimension { cpu: utilization(0), memory: utilization(1), gpu: utilization(2) },
        stranded,
        placements_per_second: if timing && decide_ns > 0 {
            (requests.len() as f64 / (decide_ns as f64 / 1e9)).round()
        } else {
            0.0
        },
        decision_latency_us: Latency { p50: pick(0.5), p99: pick(0.99), max: pick(1.0) },
        timeline: timeline.finish(),
        rejected_at_ms,
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

/// A replay: the report, and what its chart and summary draw on.
#[derive(Debug, Clone)]
pub struct Replay {
    pub report: Report,
    /// The chosen policy's run (the report holds its numbers; this holds its timelines too).
    pub main: PolicyRun,
    /// Hosts the demand needs at least, over time.
    pub lower_bound_timeline: Vec<Sample>,
    pub trace: TraceSummary,
    /// The first arrival, trace milliseconds: charts and the summary count time from it.
    pub start_ms: u64,
    /// The fleet in words, for titles: `unlimited 32c128g hosts`, `3,000 fixed 32c128g hosts`.
    pub fleet_label: String,
}

impl Replay {
    /// The chosen policy first, then the baselines.
    pub fn runs(&self) -> impl Iterator<Item = &PolicyRun> {
        std::iter::once(&self.main).chain(&self.report.baselines)
    }

    /// Any policy rejected anything.
    pub fn any_rejected(&self) -> bool {
        self.runs().any(|r| r.rejected > 0)
    }
}

/// Replay the chosen policy and the baselines; the report's top level is the chosen policy.
pub fn replay(requests: &[TraceRequest], fleet: &FleetSpec, fleet_text: &str, opts: &ReplayOptions) -> Replay {
    let lb = lower_bound(requests, fleet);
    let main = run_policy(requests, fleet, opts.policy, opts.timing, lb.hosts);
    let baselines: Vec<PolicyRun> = opts
        .baselines
        .iter()
        .filter(|p| **p != opts.policy)
        .map(|p| run_policy(requests, fleet, *p, opts.timing, lb.hosts))
        .collect();
    let report = Report {
        requests: requests.len() as u64,
        placed: main.placed,
        rejected: main.rejected,
        rejections: main.rejections.clone(),
        peak_hosts: main.peak_hosts,
        lower_bound_hosts: lb.hosts,
        gap_percent: main.gap_percent,
        placements_per_second: main.placements_per_second,
        decision_latency_us: main.decision_latency_us,
        policy: main.policy.clone(),
        fleet: fleet_text.to_string(),
        unlimited_fleet: fleet.is_unlimited(),
        fleet_hosts: fleet.host_count(),
        demand_exceeds_fleet: lb.exceeds_fleet,
        utilization: main.utilization.clone(),
        stranded: main.stranded.clone(),
        lower_bound_dimension: lb.dimension.to_string(),
        lower_bound_at_ms: lb.at_ms,
        baselines,
    };
    Replay {
        report,
        main,
        lower_bound_timeline: lb.timeline,
        trace: TraceSummary::of(requests),
        start_ms: requests.iter().map(|r| r.arrival_ms).min().unwrap_or(0),
        fleet_label: crate::fleet::label(fleet_text, fleet),
    }
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
    fn unlimited_fleet_counts_peak_hosts_and_reuses_freed_ones() {
        let r = vec![req(0, Some(10), 16, 1), req(5, Some(10), 16, 1), req(20, None, 16, 1)];
        let run = run_policy(&r, &fleet("16c64g"), Policy::Feiyun, false, 2);
        assert_eq!((run.placed, run.rejected, run.peak_hosts, run.gap_percent), (3, 0, 2, Some(0.0)));
        assert_eq!(run.rejections, None);
    }

    /// On a fixed fleet the rejections are the result: counted, dated and bucketed, and no gap
    /// is claimed (hosts in use are capped by the fleet).
    #[test]
    fn fixed_fleet_reports_when_it_rejected() {
        let r = vec![req(0, None, 16, 1), req(1, None, 16, 1), req(2, Some(5), 1, 1), req(7200, None, 16, 1)];
        let run = run_policy(&r, &fleet("1x16c64g"), Policy::BestFit, false, 1);
        assert_eq!((run.placed, run.rejected, run.gap_percent), (1, 3, None));
        assert_eq!(run.rejected_at_ms, vec![1000, 2000, 7_200_000]);
        let when = run.rejections.expect("rejections");
        // Two hours of trace: one-minute buckets (120 of them; at most 250).
        assert_eq!((when.first_at_ms, when.last_at_ms, when.bucket_s), (1000, 7_200_000, 60));
        let buckets: Vec<(u64, u64)> = when.by_bucket.iter().map(|b| (b.from_ms, b.rejected)).collect();
        assert_eq!(buckets, vec![(0, 2), (7_200_000, 1)]);
        let json = serde_json::to_string(&when).expect("json");
        assert_eq!(
            json,
            r#"{"first_at_s":1,"last_at_s":7200,"bucket_s":60,"by_bucket":[{"from_s":0,"rejected":2},{"from_s":7200,"rejected":1}]}"#
        );
        // Without rejections a fixed fleet's gap is meaningful; so it is when a request fits no
        // host of a fleet far from full.
        let run = run_policy(&r[..1], &fleet("2x16c64g"), Policy::BestFit, false, 1);
        assert_eq!(run.gap_percent, Some(0.0));
        let run = run_policy(&[req(0, None, 8, 1), req(1, None, 32, 1)], &fleet("4x16c64g"), Policy::BestFit, false, 1);
        assert_eq!((run.rejected, run.gap_percent), (1, Some(0.0)));
    }

    #[test]
    fn rejection_buckets_widen_with_the_trace() {
        let day = 86_400_000;
        let r = Rejections::of(&[0, day, 9 * day], 9 * day).expect("some");
        assert_eq!(r.bucket_s, 3600);
        let r = Rejections::of(&[0, 100 * day], 150 * day).expect("some");
        assert_eq!(r.bucket_s, 86_400);
        assert_eq!(Rejections::of(&[], day), None);
    }

    /// A departure in a quiet stretch is drawn when it happens, not at the next arrival; a busy
    /// minute keeps its peak and its last state.
    #[test]
    fn timelines_follow_departures_and_keep_peaks() {
        let r = vec![req(0, Some(3600), 16, 1), req(1, Some(30), 16, 1), req(7200, None, 16, 1)];
        let run = run_policy(&r, &fleet("16c64g"), Policy::Feiyun, false, 2);
        let points: Vec<(u64, u64)> = run.timeline.iter().map(|s| (s.at_ms, s.hosts)).collect();
        assert_eq!(points, vec![(0, 1), (1000, 2), (31_000, 1), (3_600_000, 0), (7_200_000, 1)]);
        assert!((run.timeline[1].cpu_percent - 100.0).abs() < 1e-9);

        let mut t = Timeline::default();
        for (at, hosts) in [(0, 5), (10, 7), (20, 3), (30, 4), (70_000, 4)] {
            t.note(Sample::hosts(at, hosts));
        }
        let kept: Vec<(u64, u64)> = t.finish().iter().map(|s| (s.at_ms, s.hosts)).collect();
        assert_eq!(kept, vec![(0, 5), (10, 7), (30, 4), (70_000, 4)]);
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
        let report = replay(&requests, &fleet, &spec, &opts).report;
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
        let a = serde_json::to_string(&replay(&r, &fleet("8c32g"), "8c32g", &opts).report).expect("json");
        let b = serde_json::to_string(&replay(&r, &fleet("8c32g"), "8c32g", &opts).report).expect("json");
        assert_eq!(a, b);
        assert!(a.contains("\"lower_bound_hosts\""));
    }

    /// Fractional seconds replay exactly: the same text gives the same report, and departures
    /// at a millisecond free room for an arrival at that millisecond.
    #[test]
    fn fractional_seconds_replay_deterministically() {
        let text = "arrival_s,lifetime_s,vcpus,memory_gib\n0.25,1.5,16,1\n1.75,10,16,1\n1.7504,10,16,1\n";
        let requests = crate::trace::parse_csv(text).expect("parses");
        let opts = ReplayOptions { policy: Policy::Feiyun, baselines: Policy::ALL.to_vec(), timing: false };
        let a = replay(&requests, &fleet("16c64g"), "16c64g", &opts);
        // 0.25 + 1.5 = 1.75: the first leaves as the second arrives; the third (1.750 s) joins.
        assert_eq!((a.report.peak_hosts, a.report.lower_bound_hosts), (2, 2));
        let json = |r: &Replay| serde_json::to_string(&r.report).expect("json");
        assert_eq!(json(&a), json(&replay(&requests, &fleet("16c64g"), "16c64g", &opts)));
        assert!(json(&a).contains("\"lower_bound_at_s\":1.75"), "{}", json(&a));
    }
}
