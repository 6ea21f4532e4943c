//! Placement of instances onto hosts.
//!
//! A pure function of a [`Snapshot`] (hosts, their capacity and what is already allocated) and a
//! [`Request`]: filters first (each rejection has a reason), then a bin-packing score, ties broken
//! by host id so the answer is deterministic. The caller commits the returned plan.
//!
//! Must not: read the clock, draw random numbers, touch the store or any host, or allocate
//! anything itself.
#![forbid(unsafe_code)]

pub mod cluster;

use std::collections::BTreeMap;

use feiyun_domain::host::HostState;
use feiyun_domain::Resources;

/// One host as the scheduler sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct HostView {
    pub id: String,
    pub zone_id: String,
    pub state: HostState,
    pub capacity: Resources,
    pub allocated: Resources,
    pub gpu_model: Option<String>,
    pub local_disk_category: Option<String>,
}

impl HostView {
    pub fn free(&self) -> Resources {
        self.capacity.saturating_sub(&self.allocated)
    }
}

/// A read-only view of the region's hosts.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub hosts: Vec<HostView>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Policy {
    /// Fill the fullest host that fits (fewest hosts in use).
    #[default]
    Pack,
    /// Prefer the emptiest host.
    Spread,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// What one instance needs.
    pub resources: Resources,
    pub zone_id: Option<String>,
    pub gpu_model: Option<String>,
    pub local_disk_category: Option<String>,
    /// How many instances to place.
    pub count: u32,
    /// Place as many as fit if at least this many do (all-or-nothing when equal to `count`).
    pub min_count: u32,
    pub policy: Policy,
}

/// Why a host cannot take the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rejection {
    WrongZone,
    NotAccepting,
    NoGpuOfModel,
    NoLocalDisk,
    InsufficientCpu,
    InsufficientMemory,
    InsufficientGpu,
    InsufficientLocalDisk,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("No host can take the request ({placed} of {wanted} placed)")]
pub struct Unschedulable {
    pub wanted: u32,
    pub placed: u32,
    /// How many hosts were rejected for each reason (at the first instance that did not fit).
    pub reasons: BTreeMap<Rejection, u32>,
}

/// Check one host against a request, returning the first reason it cannot take one instance.
pub fn feasible(host: &HostView, req: &Request, free: &Resources) -> Result<(), Rejection> {
    if let Some(z) = &req.zone_id {
        if &host.zone_id != z {
            return Err(Rejection::WrongZone);
        }
    }
    if host.state != HostState::Up {
        return Err(Rejection::NotAccepting);
    }
    if let Some(model) = &req.gpu_model {
        if host.gpu_model.as_deref() != Some(model.as_str()) {
            return Err(Rejection::NoGpuOfModel);
        }
    }
    if let Some(cat) = &req.local_disk_category {
        if host.local_disk_category.as_deref() != Some(cat.as_str()) {
            return Err(Rejection::NoLocalDisk);
        }
    }
    let r = &req.resources;
    if r.vcpus > free.vcpus {
        return Err(Rejection::InsufficientCpu);
    }
    if r.memory_mib > free.memory_mib {
        return Err(Rejection::InsufficientMemory);
    }
    if r.gpus > free.gpus {
        return Err(Rejection::InsufficientGpu);
    }
    if r.local_disk_gib > free.local_disk_gib {
        return Err(Rejection::InsufficientLocalDisk);
    }
    Ok(())
}

/// Fraction of a host left free after placing `r`, averaged over the dimensions the host has.
fn leftover(capacity: &Resources, free_after: &Resources) -> f64 {
    let mut sum = 0.0;
    let mut n = 0.0;
    let mut dim = |cap: f64, free: f64| {
        if cap > 0.0 {
            sum += free / cap;
            n += 1.0;
        }
    };
    dim(capacity.vcpus as f64, free_after.vcpus as f64);
    dim(capacity.memory_mib as f64, free_after.memory_mib as f64);
    dim(capacity.gpus as f64, free_after.gpus as f64);
    dim(capacity.local_disk_gib as f64, free_after.local_disk_gib as f64);
    if n == 0.0 {
        0.0
    } else {
        sum / n
    }
}

/// Place `req.count` instances. Returns one host id per placed instance, in order.
pub fn place(snapshot: &Snapshot, req: &Request) -> Result<Vec<String>, Unschedulable> {
    let mut free: Vec<Resources> = snapshot.hosts.iter().map(HostView::free).collect();
    let mut out = Vec::with_capacity(req.count as usize);
    let mut reasons = BTreeMap::new();
    for _ in 0..req.count {
        let mut best: Option<(u64, &str, usize)> = None;
        reasons.clear();
        for (i, h) in snapshot.hosts.iter().enumerate() {
            match feasible(h, req, &free[i]) {
                Err(why) => *reasons.entry(why).or_insert(0) += 1,
                Ok(()) => {
                    let after = free[i].saturating_sub(&req.resources);
                    let left = leftover(&h.capacity, &after);
                    // Integer key so ordering is total; lower is better.
                    let score = match req.policy {
                        Policy::Pack => (left * 1e9) as u64,
                        Policy::Spread => ((1.0 - left) * 1e9) as u64,
                    };
                    let better = match best {
                        None => true,
                        Some((s, id, _)) => (score, h.id.as_str()) < (s, id),
                    };
                    if better {
                        best = Some((score, h.id.as_str(), i));
                    }
                }
            }
        }
        match best {
            Some((_, id, i)) => {
                free[i] = free[i].saturating_sub(&req.resources);
                out.push(id.to_string());
            }
            None => break,
        }
    }
    if out.len() as u32 >= req.min_count.max(1).min(req.count) && !out.is_empty() {
        Ok(out)
    } else {
        Err(Unschedulable { wanted: req.count, placed: out.len() as u32, reasons })
    }
}

/// How many more instances of `resources` each host could take, for capacity reporting.
pub fn remaining_slots(snapshot: &Snapshot, req: &Request) -> u64 {
    snapshot
        .hosts
        .iter()
        .filter(|h| {
            let probe = Request { resources: Resources::ZERO, ..req.clone() };
            feasible(h, &probe, &h.free()).is_ok()
        })
        .map(|h| {
            let f = h.free();
            let r = &req.resources;
            let mut n = u64::MAX;
            let mut lim = |need: u64, have: u64| {
                if let Some(k) = have.checked_div(need) {
                    n = n.min(k);
                }
            };
            lim(r.vcpus as u64, f.vcpus as u64);
            lim(r.memory_mib, f.memory_mib);
            lim(r.gpus as u64, f.gpus as u64);
            lim(r.local_disk_gib, f.local_disk_gib);
            if n == u64::MAX {
                0
            } else {
                n
            }
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn host(id: &str, zone: &str, vcpus: u32, mem: u64) -> HostView {
        HostView {
            id: id.into(),
            zone_id: zone.into(),
            state: HostState::Up,
            capacity: Resources { vcpus, memory_mib: mem, gpus: 0, local_disk_gib: 0 },
            allocated: Resources::ZERO,
            gpu_model: None,
            local_disk_category: None,
        }
    }

    fn req(vcpus: u32, mem: u64, count: u32) -> Request {
        Request {
            resources: Resources { vcpus, memory_mib: mem, gpus: 0, local_disk_gib: 0 },
            zone_id: None,
            gpu_model: None,
            local_disk_category: None,
            count,
            min_count: count,
            policy: Policy::Pack,
        }
    }

    #[test]
    fn packs_onto_the_fullest_host() {
        let mut a = host("a", "z", 8, 8192);
        a.allocated = Resources { vcpus: 6, memory_mib: 6144, gpus: 0, local_disk_gib: 0 };
        let b = host("b", "z", 8, 8192);
        let s = Snapshot { hosts: vec![b, a] };
        assert_eq!(place(&s, &req(2, 2048, 1)).expect("fits"), vec!["a"]);
        let mut r = req(2, 2048, 1);
        r.policy = Policy::Spread;
        assert_eq!(place(&s, &r).expect("fits"), vec!["b"]);
    }

    #[test]
    fn batch_accounts_for_its_own_placements() {
        let s = Snapshot { hosts: vec![host("a", "z", 4, 4096), host("b", "z", 4, 4096)] };
        let got = place(&s, &req(2, 1024, 4)).expect("fits");
        assert_eq!(got.iter().filter(|h| *h == "a").count(), 2);
        assert_eq!(got.iter().filter(|h| *h == "b").count(), 2);
        let err = place(&s, &req(2, 1024, 5)).expect_err("one too many");
        assert_eq!(err.placed, 4);
        assert_eq!(err.reasons.get(&Rejection::InsufficientCpu), Some(&2));
    }

    #[test]
    fn min_count_allows_partial() {
        let s = Snapshot { hosts: vec![host("a", "z", 4, 4096)] };
        let mut r = req(2, 1024, 5);
        r.min_count = 2;
        assert_eq!(place(&s, &r).expect("partial").len(), 2);
    }

    #[test]
    fn zone_gpu_and_disk_constraints() {
        let mut g = host("g", "z1", 16, 65536);
        g.capacity.gpus = 1;
        g.gpu_model = Some("NVIDIA T4".into());
        let plain = host("p", "z2", 64, 262144);
        let s = Snapshot { hosts: vec![g, plain] };
        let mut r = req(4, 15 * 1024, 1);
        r.resources.gpus = 1;
        r.gpu_model = Some("NVIDIA T4".into());
        assert_eq!(place(&s, &r).expect("gpu host"), vec!["g"]);
        r.gpu_model = Some("NVIDIA A100".into());
        assert!(place(&s, &r).is_err());
        let mut z = req(1, 1024, 1);
        z.zone_id = Some("z2".into());
        assert_eq!(place(&s, &z).expect("zone"), vec!["p"]);
        let mut d = req(1, 1024, 1);
        d.local_disk_category = Some("local_ssd_pro".into());
        d.resources.local_disk_gib = 894;
        let err = place(&s, &d).expect_err("no local disk host");
        assert_eq!(err.reasons.get(&Rejection::NoLocalDisk), Some(&2));
    }

    #[test]
    fn disabled_hosts_get_nothing() {
        let mut h = host("a", "z", 8, 8192);
        h.state = HostState::Disabled;
        assert!(place(&Snapshot { hosts: vec![h] }, &req(1, 512, 1)).is_err());
    }

    #[test]
    fn remaining_slots_counts_whole_instances() {
        let s = Snapshot { hosts: vec![host("a", "z", 5, 4096), host("b", "z", 3, 8192)] };
        assert_eq!(remaining_slots(&s, &req(2, 1024, 1)), 2 + 1);
    }

    proptest! {
        /// No host ever ends up over its capacity in any dimension.
        #[test]
        fn never_overcommits(
            caps in prop::collection::vec((1u32..64, 1u64..65536), 1..8),
            reqs in prop::collection::vec((1u32..16, 1u64..16384, 1u32..6), 1..20),
        ) {
            let mut s = Snapshot {
                hosts: caps.iter().enumerate().map(|(i, (c, m))| host(&format!("h{i}"), "z", *c, *m)).collect(),
            };
            for (c, m, n) in reqs {
                let r = req(c, m, n);
                if let Ok(placed) = place(&s, &r) {
                    prop_assert_eq!(placed.len() as u32, n);
                    for id in placed {
                        let h = s.hosts.iter_mut().find(|h| h.id == id).expect("known host");
                        h.allocated = h.allocated.add(&r.resources);
                    }
                }
                for h in &s.hosts {
                    prop_assert!(h.allocated.fits_in(&h.capacity), "{:?}", h);
                }
            }
        }
    }
}
