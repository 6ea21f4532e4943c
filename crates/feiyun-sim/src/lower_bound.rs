//! The fluid lower bound of a trace on a fleet: the fewest hosts that could hold the demand if
//! instances could be split, at its busiest moment and at every moment.

use std::cmp::Reverse;

use crate::fleet::{FleetSpec, HostShape};
use crate::replay::{Sample, Timeline};
use crate::trace::TraceRequest;

/// The fluid lower bound of a trace on a fleet.
#[derive(Debug, Clone, PartialEq)]
pub struct LowerBound {
    /// The most hosts the demand needs at once.
    pub hosts: u64,
    /// The dimension that needs them (`cpu`, `memory` or `gpu`) and when its demand peaked.
    pub dimension: &'static str,
    pub at_ms: u64,
    /// A fixed fleet cannot hold the demand at its peak.
    pub exceeds_fleet: bool,
    /// Hosts the demand needs over time, from the first arrival to the last.
    pub timeline: Vec<Sample>,
}

const DIMENSIONS: [&str; 3] = ["cpu", "memory", "gpu"];

/// How many hosts of a fleet cover a demand, per dimension: the fixed hosts largest first, then
/// the unlimited group.
struct Cover {
    /// Per dimension: (capacity, hosts) of the fixed groups, largest first.
    fixed: [Vec<(u64, u64)>; 3],
    unlimited: Option<[u64; 3]>,
    fleet_hosts: Option<u64>,
}

impl Cover {
    fn new(fleet: &FleetSpec) -> Cover {
        let caps = |s: &HostShape| [s.cpu_milli, s.memory_mib, s.gpus as u64 * 1000];
        let fixed = [0, 1, 2].map(|k| {
            let mut f: Vec<(u64, u64)> = fleet
                .groups
                .iter()
                .filter_map(|g| g.count.map(|n| (caps(&g.shape)[k], n)))
                .filter(|(c, _)| *c > 0)
                .collect();
            f.sort_unstable_by_key(|f| Reverse(f.0));
            f
        });
        let unlimited = fleet.groups.iter().find(|g| g.count.is_none()).map(|g| caps(&g.shape));
        Cover { fixed, unlimited, fleet_hosts: fleet.host_count() }
    }

    /// (hosts, whether the fleet cannot hold `need` of dimension `k`).
    fn hosts(&self, k: usize, need: u64) -> (u64, bool) {
        let (mut left, mut hosts) = (need, 0u64);
        for &(cap, n) in &self.fixed[k] {
            if left == 0 {
                break;
            }
            let take = left.div_ceil(cap).min(n);
            hosts += take;
            left = left.saturating_sub(take * cap);
        }
        if left == 0 {
            return (hosts, false);
        }
        match self.unlimited.map(|c| c[k]).filter(|c| *c > 0) {
            Some(c) => (hosts + left.div_ceil(c), false),
            // The fleet cannot hold it at all; every host is needed (and some is rejected).
            None => (self.fleet_hosts.unwrap_or(hosts), true),
        }
    }
}

/// The fluid lower bound: at the busiest moment, total demand over host capacity, per dimension,
/// rounded up; the largest over dimensions. In a fleet of mixed hosts, the fewest hosts whose
/// capacities add up to the demand (largest first); an unlimited group covers what the fixed
/// hosts do not. Also the same bound at every moment, as a timeline.
pub fn lower_bound(requests: &[TraceRequest], fleet: &FleetSpec) -> LowerBound {
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
    let cover = Cover::new(fleet);
    let first = requests.iter().map(|r| r.arrival_ms).min().unwrap_or(0);
    let last = requests.iter().map(|r| r.arrival_ms).max().unwrap_or(0);
    let mut total = [0u64; 3];
    let mut peak = [(0u64, 0u64); 3];
    let mut timeline = Timeline::default();
    for (n, &(t, kind, i)) in events.iter().enumerate() {
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
        let last_of_instant = events.get(n + 1).is_none_or(|next| next.0 != t);
        if last_of_instant && (first..=last).contains(&t) {
            let hosts = (0..3).map(|k| cover.hosts(k, total[k]).0).max().unwrap_or(0);
            timeline.note(Sample::hosts(t, hosts));
        }
    }
    let mut best =
        LowerBound { hosts: 0, dimension: DIMENSIONS[0], at_ms: 0, exceeds_fleet: false, timeline: timeline.finish() };
    for (k, name) in DIMENSIONS.iter().enumerate() {
        let need = peak[k].0;
        if need == 0 {
            continue;
        }
        let (hosts, exceeds) = cover.hosts(k, need);
        best.exceeds_fleet |= exceeds;
        if hosts > best.hosts {
            (best.hosts, best.dimension, best.at_ms) = (hosts, name, peak[k].1);
        }
    }
    best
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
        let lb = lower_bound(&r, &fleet("16c64g"));
        assert_eq!((lb.hosts, lb.dimension, lb.at_ms, lb.exceeds_fleet), (2, "cpu", 5000, false));
        // Departure at 10 frees room before the arrival at 10.
        let r = vec![req(0, Some(10), 16, 1), req(10, None, 16, 1)];
        assert_eq!(lower_bound(&r, &fleet("16c64g")).hosts, 1);
    }

    /// The bound over time follows the demand, departures included, from the first arrival to
    /// the last; its peak is the bound itself.
    #[test]
    fn lower_bound_over_time() {
        let r = vec![req(0, Some(10), 16, 1), req(5, Some(10), 16, 1), req(600, None, 8, 1)];
        let lb = lower_bound(&r, &fleet("16c64g"));
        let points: Vec<(u64, u64)> = lb.timeline.iter().map(|s| (s.at_ms, s.hosts)).collect();
        assert_eq!(points, vec![(0, 1), (5000, 2), (15_000, 0), (600_000, 1)]);
        assert_eq!(lb.timeline.iter().map(|s| s.hosts).max(), Some(lb.hosts));
    }

    #[test]
    fn lower_bound_of_a_mixed_fleet_takes_the_largest_hosts_first() {
        // 40 vCPUs at once: one 32-core host plus one 8-core host cover it.
        let r = vec![req(0, None, 20, 1), req(0, None, 20, 1)];
        assert_eq!(lower_bound(&r, &fleet("4x8c32g,1x32c128g")).hosts, 2);
        // With an unlimited group, the fixed hosts go first and the rest is opened on demand.
        assert_eq!(lower_bound(&r, &fleet("1x8c32g,16c64g")).hosts, 1 + 2);
        // A fixed fleet too small for the demand: every host, and the report says so.
        let lb = lower_bound(&r, &fleet("1x32c128g"));
        assert_eq!((lb.hosts, lb.exceeds_fleet), (1, true));
    }
}
