//! The incremental capacity index.
//!
//! Hosts that have the same shape (capacity, zone, GPU model, local disk) and the same free
//! vector are interchangeable: they form a *host class*. Requests that ask for the same demand
//! under the same constraints and policy are the same question: they form a *request class*.
//! For every request class in use, the index keeps its feasible, non-empty host classes ordered
//! by score, and updates those orders as hosts move between classes. A placement is then a lookup
//! of the first entry (plus a skip over hosts excluded by a deployment set), not a scan of hosts.
//!
//! Scores are functions of (host capacity, free vector after placement) only, which is what makes
//! them cacheable per host class. Ties break on the class key and then the lowest host id, so the
//! result is deterministic.

// Loops over the four dimensions index several parallel arrays at once.
#![allow(clippy::needless_range_loop)]

use std::collections::{BTreeSet, HashMap, HashSet};

/// An amount of every schedulable dimension, in integer units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Demand {
    pub cpu_milli: u64,
    pub mem_mib: u64,
    /// 1000 = one whole GPU.
    pub gpu_milli: u64,
    pub disk_gib: u64,
}

impl Demand {
    pub const ZERO: Demand = Demand { cpu_milli: 0, mem_mib: 0, gpu_milli: 0, disk_gib: 0 };

    pub fn fits_in(&self, free: &Demand) -> bool {
        self.cpu_milli <= free.cpu_milli
            && self.mem_mib <= free.mem_mib
            && self.gpu_milli <= free.gpu_milli
            && self.disk_gib <= free.disk_gib
    }

    pub fn minus(&self, o: &Demand) -> Demand {
        Demand {
            cpu_milli: self.cpu_milli - o.cpu_milli,
            mem_mib: self.mem_mib - o.mem_mib,
            gpu_milli: self.gpu_milli - o.gpu_milli,
            disk_gib: self.disk_gib - o.disk_gib,
        }
    }

    pub fn plus(&self, o: &Demand) -> Demand {
        Demand {
            cpu_milli: self.cpu_milli + o.cpu_milli,
            mem_mib: self.mem_mib + o.mem_mib,
            gpu_milli: self.gpu_milli + o.gpu_milli,
            disk_gib: self.disk_gib + o.disk_gib,
        }
    }

    fn dims(&self) -> [u64; 4] {
        [self.cpu_milli, self.mem_mib, self.gpu_milli, self.disk_gib]
    }
}

/// What a host is, apart from how full it is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Shape {
    pub capacity: Demand,
    pub zone: String,
    pub gpu_model: Option<String>,
    pub disk_category: Option<String>,
}

pub type HostId = u32;

/// How to choose among hosts that fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Policy {
    /// Feiyun's default packing policy (see [`score`]).
    Feiyun,
    /// The host with the lowest id that fits.
    FirstFit,
    /// The host left with the least free capacity (sum over dimensions of the free fraction).
    BestFit,
    /// The host left with the most free capacity.
    WorstFit,
    /// Kubernetes' LeastAllocated: the highest mean free fraction of CPU and memory (spread).
    LeastAllocated,
    /// Nomad's bin-pack score: 20 − (10^freeCpu + 10^freeMem), clamped to [0, 18], highest wins.
    NomadBinpack,
}

impl Policy {
    pub const ALL: [Policy; 6] = [
        Policy::Feiyun,
        Policy::FirstFit,
        Policy::BestFit,
        Policy::WorstFit,
        Policy::LeastAllocated,
        Policy::NomadBinpack,
    ];

    pub fn name(&self) -> &'static str {
        match self {
            Policy::Feiyun => "feiyun",
            Policy::FirstFit => "first-fit",
            Policy::BestFit => "best-fit",
            Policy::WorstFit => "worst-fit",
            Policy::LeastAllocated => "least-allocated",
            Policy::NomadBinpack => "nomad-binpack",
        }
    }

    /// Also accepts `pack` (Feiyun's default) and `spread` (LeastAllocated).
    pub fn parse(s: &str) -> Option<Policy> {
        match s {
            "pack" => Some(Policy::Feiyun),
            "spread" => Some(Policy::LeastAllocated),
            _ => Policy::ALL.into_iter().find(|p| p.name() == s),
        }
    }
}

/// Free fraction of each dimension the host has, after placing.
fn free_fractions(cap: &Demand, free_after: &Demand) -> ([f64; 4], [bool; 4]) {
    let c = cap.dims();
    let f = free_after.dims();
    let mut out = [0.0; 4];
    let mut has = [false; 4];
    for d in 0..4 {
        if c[d] > 0 {
            out[d] = f[d] as f64 / c[d] as f64;
            has[d] = true;
        }
    }
    (out, has)
}

/// Weight of the balance term in Feiyun's score.
pub const FEIYUN_BALANCE_WEIGHT: f64 = 0.1;

/// Score of opening an empty host: above any host in use.
const EMPTY_HOST_COST: f64 = 1_000.0;

/// How much each dimension counts in Feiyun's best fit, in tenths: the scarcest dimension of the
/// hosts in use counts fully, the others by how close they are to being scarce (see
/// [`Cluster::reweigh`]). Defaults to all dimensions alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Weights(pub [u16; 4]);

impl Default for Weights {
    fn default() -> Self {
        Weights([10; 4])
    }
}

/// Score of placing `demand` on a host of capacity `cap` that would be left with `free_after`;
/// lower is better. Integer so that ordering is total and exact.
pub fn score(policy: Policy, cap: &Demand, free_after: &Demand, demand: &Demand, w: &Weights) -> i64 {
    let (ff, has) = free_fractions(cap, free_after);
    let leftover: f64 = (0..4).filter(|d| has[*d]).map(|d| ff[d]).sum();
    let s = match policy {
        Policy::FirstFit => 0.0,
        Policy::BestFit => leftover,
        Policy::WorstFit => -leftover,
        Policy::LeastAllocated => -(ff[0] + ff[1]) / 2.0,
        Policy::NomadBinpack => -(20.0 - (10f64.powf(ff[0]) + 10f64.powf(ff[1]))).clamp(0.0, 18.0),
        Policy::Feiyun => {
            // Best fit where the scarce dimension counts most: leftover of a plentiful dimension
            // costs little, leftover of the one that runs out first is what opens new hosts.
            let weighted: f64 = (0..4).filter(|d| has[*d]).map(|d| w.0[d] as f64 / 10.0 * ff[d]).sum();
            // Leaving a host lopsided strands capacity nobody can use.
            let imbalance = if has[0] && has[1] { (ff[0] - ff[1]).abs() } else { 0.0 };
            // GPUs are only for GPU work: CPU-only work on a GPU host pays for the GPUs it strands.
            let gpu_waste = if demand.gpu_milli == 0 && has[2] { ff[2] * 4.0 } else { 0.0 };
            if free_after.plus(demand) == *cap {
                // An empty host is opened only when no host in use fits; then the one that can
                // take the most requests like this one (the largest, for its profile).
                let copies = (0..4)
                    .filter(|d| demand.dims()[*d] > 0)
                    .map(|d| cap.dims()[d] as f64 / demand.dims()[d] as f64)
                    .fold(f64::MAX, f64::min)
                    .min(999.0);
                EMPTY_HOST_COST - copies + gpu_waste
            } else {
                weighted + FEIYUN_BALANCE_WEIGHT * imbalance + gpu_waste
            }
        }
    };
    (s * 1e9).round() as i64
}

/// One placement question.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Ask {
    pub demand: Demand,
    pub zone: Option<String>,
    pub gpu_model: Option<String>,
    pub disk_category: Option<String>,
    pub policy: Policy,
    /// Instances of one deployment set go to distinct hosts.
    pub deployment_set: Option<String>,
}

impl Ask {
    pub fn new(demand: Demand, policy: Policy) -> Ask {
        Ask { demand, zone: None, gpu_model: None, disk_category: None, policy, deployment_set: None }
    }

    fn shape_ok(&self, s: &Shape) -> bool {
        self.zone.as_ref().map(|z| z == &s.zone).unwrap_or(true)
            && match &self.gpu_model {
                Some(m) => s.gpu_model.as_ref() == Some(m),
                None => true,
            }
            && match &self.disk_category {
                Some(d) => s.disk_category.as_ref() == Some(d),
                None => true,
            }
            && self.demand.fits_in(&s.capacity)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ReqKey {
    demand: Demand,
    zone: Option<String>,
    gpu_model: Option<String>,
    disk_category: Option<String>,
    policy: Policy,
}

impl From<&Ask> for ReqKey {
    fn from(a: &Ask) -> ReqKey {
        ReqKey {
            demand: a.demand,
            zone: a.zone.clone(),
            gpu_model: a.gpu_model.clone(),
            disk_category: a.disk_category.clone(),
            policy: a.policy,
        }
    }
}

type ClassKey = (u32, Demand);

struct Cache {
    order: BTreeSet<(i64, ClassKey)>,
    shape_ok: Vec<bool>,
    last_used: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct HostRec {
    shape: u32,
    free: Demand,
    instances: u32,
    enabled: bool,
}

/// Per-dimension maxima of free capacity over ranges of host ids, so that first fit finds the
/// lowest-numbered host that fits without scanning every host.
#[derive(Default)]
struct MaxTree {
    size: usize,
    nodes: Vec<[u64; 4]>,
}

impl MaxTree {
    fn set(&mut self, i: usize, v: [u64; 4]) {
        if i >= self.size {
            let mut size = self.size.max(1);
            while size <= i {
                size *= 2;
            }
            let mut nodes = vec![[0u64; 4]; 2 * size];
            for j in 0..self.size {
                nodes[size + j] = self.nodes[self.size + j];
            }
            for k in (1..size).rev() {
                nodes[k] = max4(&nodes[2 * k], &nodes[2 * k + 1]);
            }
            self.size = size;
            self.nodes = nodes;
        }
        let mut k = self.size + i;
        self.nodes[k] = v;
        while k > 1 {
            k /= 2;
            self.nodes[k] = max4(&self.nodes[2 * k], &self.nodes[2 * k + 1]);
        }
    }

    /// The lowest index whose value covers `need` and that `accept` takes.
    fn first(&self, need: &[u64; 4], accept: &dyn Fn(usize) -> bool) -> Option<usize> {
        if self.size == 0 {
            return None;
        }
        let covers = |v: &[u64; 4]| (0..4).all(|d| v[d] >= need[d]);
        let mut stack = vec![1usize];
        while let Some(k) = stack.pop() {
            if !covers(&self.nodes[k]) {
                continue;
            }
            if k >= self.size {
                if accept(k - self.size) {
                    return Some(k - self.size);
                }
                continue;
            }
            stack.push(2 * k + 1);
            stack.push(2 * k);
        }
        None
    }
}

fn max4(a: &[u64; 4], b: &[u64; 4]) -> [u64; 4] {
    [a[0].max(b[0]), a[1].max(b[1]), a[2].max(b[2]), a[3].max(b[3])]
}

/// Why nothing fit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("No host can take the request ({placed} of {wanted} placed)")]
pub struct NoFit {
    pub wanted: u32,
    pub placed: u32,
}

/// Why a request cannot be placed, telling apart what waiting can fix from what it cannot (as
/// Kubernetes tells "unschedulable" from "unschedulable and unresolvable").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unplaceable {
    /// No host of the fleet, full or empty, enabled or not, could ever run it: no host in the
    /// zone, of the GPU model or disk category, or large enough.
    #[error("No host can ever run the request")]
    NoSuitableHost,
    /// Hosts that could run it are full, closed, or already hold a member of its deployment set.
    #[error("No capacity for the request now ({placed} of {wanted} fit)")]
    NoCapacity { wanted: u32, placed: u32 },
}

/// Where each instance of a request goes. Nothing is taken until [`Cluster::commit`], so a caller
/// can make the decision durable first and has nothing to undo if that fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub hosts: Vec<HostId>,
}

/// How many request classes keep a cached order at once.
const MAX_CACHES: usize = 256;

/// Hosts, what is free on them, and the indexes that answer placement questions.
pub struct Cluster {
    shapes: Vec<Shape>,
    shape_ids: HashMap<Shape, u32>,
    hosts: Vec<HostRec>,
    classes: HashMap<ClassKey, BTreeSet<HostId>>,
    caches: HashMap<ReqKey, Cache>,
    clock: u64,
    /// Shapes of which new hosts can be opened when nothing fits (an unlimited fleet).
    unlimited: Vec<u32>,
    used_hosts: u64,
    sets: HashMap<String, HashSet<HostId>>,
    /// Free capacity by host id, for first fit (disabled hosts count as full).
    by_id: MaxTree,
    weights: Weights,
    /// What instances hold, and the capacity of the hosts in use, per dimension.
    allocated: [u64; 4],
    in_use_capacity: [u64; 4],
    placements_since_reweigh: u32,
}

impl Default for Cluster {
    fn default() -> Self {
        Cluster::new()
    }
}

impl Cluster {
    pub fn new() -> Cluster {
        Cluster {
            shapes: Vec::new(),
            shape_ids: HashMap::new(),
            hosts: Vec::new(),
            classes: HashMap::new(),
            caches: HashMap::new(),
            clock: 0,
            unlimited: Vec::new(),
            used_hosts: 0,
            sets: HashMap::new(),
            by_id: MaxTree::default(),
            weights: Weights::default(),
            allocated: [0; 4],
            in_use_capacity: [0; 4],
            placements_since_reweigh: 0,
        }
    }

    pub fn weights(&self) -> Weights {
        self.weights
    }

    /// Recompute Feiyun's dimension weights from the hosts in use: each dimension's utilization
    /// relative to the most utilized one, to the fourth power, in tenths. When they change, the
    /// cached orders are dropped and rebuilt on demand. Called every few hundred placements, so
    /// weights follow the workload without churning the caches.
    pub fn reweigh(&mut self) {
        let mut util = [0.0f64; 4];
        for d in 0..4 {
            if self.in_use_capacity[d] > 0 {
                util[d] = self.allocated[d] as f64 / self.in_use_capacity[d] as f64;
            }
        }
        let top = util.iter().cloned().fold(0.0, f64::max);
        let new = if top <= 0.0 {
            Weights::default()
        } else {
            let mut w = [0u16; 4];
            for d in 0..4 {
                w[d] = ((util[d] / top).powi(4) * 10.0).round().clamp(1.0, 10.0) as u16;
            }
            Weights(w)
        };
        if new != self.weights {
            self.weights = new;
            self.caches.clear();
        }
    }

    fn shape_id(&mut self, shape: Shape) -> u32 {
        if let Some(id) = self.shape_ids.get(&shape) {
            return *id;
        }
        let id = self.shapes.len() as u32;
        for c in self.caches.values_mut() {
            c.shape_ok.push(false);
        }
        // Existing caches learn whether the new shape suits them.
        let keys: Vec<ReqKey> = self.caches.keys().cloned().collect();
        for k in keys {
            let ask = Ask {
                demand: k.demand,
                zone: k.zone.clone(),
                gpu_model: k.gpu_model.clone(),
                disk_category: k.disk_category.clone(),
                policy: k.policy,
                deployment_set: None,
            };
            let ok = ask.shape_ok(&shape);
            if let Some(c) = self.caches.get_mut(&k) {
                c.shape_ok[id as usize] = ok;
            }
        }
        self.shapes.push(shape.clone());
        self.shape_ids.insert(shape, id);
        id
    }

    /// Add an (empty) host; returns its id. Ids are dense, in order of addition.
    pub fn add_host(&mut self, shape: Shape) -> HostId {
        let s = self.shape_id(shape);
        let id = self.hosts.len() as HostId;
        let free = self.shapes[s as usize].capacity;
        self.hosts.push(HostRec { shape: s, free, instances: 0, enabled: true });
        self.enter_class(id, (s, free));
        id
    }

    /// Allow hosts of this shape to be opened on demand when nothing fits.
    pub fn allow_unlimited(&mut self, shape: Shape) {
        let s = self.shape_id(shape);
        if !self.unlimited.contains(&s) {
            self.unlimited.push(s);
        }
    }

    pub fn host_count(&self) -> usize {
        self.hosts.len()
    }

    /// Hosts with at least one instance.
    pub fn used_hosts(&self) -> u64 {
        self.used_hosts
    }

    pub fn free(&self, host: HostId) -> Demand {
        self.hosts[host as usize].free
    }

    pub fn shape(&self, host: HostId) -> &Shape {
        &self.shapes[self.hosts[host as usize].shape as usize]
    }

    pub fn instances(&self, host: HostId) -> u32 {
        self.hosts[host as usize].instances
    }

    /// Ids of every host, with their shape and free capacity.
    pub fn hosts(&self) -> impl Iterator<Item = (HostId, &Shape, Demand, u32)> {
        self.hosts.iter().enumerate().map(|(i, h)| (i as HostId, &self.shapes[h.shape as usize], h.free, h.instances))
    }

    /// Stop (or resume) placing on a host. Its instances stay.
    pub fn set_enabled(&mut self, host: HostId, enabled: bool) {
        let h = &self.hosts[host as usize];
        if h.enabled == enabled {
            return;
        }
        let key = (h.shape, h.free);
        if enabled {
            self.hosts[host as usize].enabled = true;
            self.enter_class(host, key);
        } else {
            self.leave_class(host, key);
            self.hosts[host as usize].enabled = false;
        }
    }

    fn enter_class(&mut self, host: HostId, key: ClassKey) {
        self.by_id.set(host as usize, key.1.dims());
        let set = self.classes.entry(key).or_default();
        let was_empty = set.is_empty();
        set.insert(host);
        if was_empty {
            let w = self.weights;
            let cap = self.shapes[key.0 as usize].capacity;
            for (rk, c) in self.caches.iter_mut() {
                if c.shape_ok[key.0 as usize] && rk.demand.fits_in(&key.1) {
                    c.order.insert((score(rk.policy, &cap, &key.1.minus(&rk.demand), &rk.demand, &w), key));
                }
            }
        }
    }

    fn leave_class(&mut self, host: HostId, key: ClassKey) {
        self.by_id.set(host as usize, [0; 4]);
        let Some(set) = self.classes.get_mut(&key) else { return };
        set.remove(&host);
        if set.is_empty() {
            self.classes.remove(&key);
            let w = self.weights;
            let cap = self.shapes[key.0 as usize].capacity;
            for (rk, c) in self.caches.iter_mut() {
                if c.shape_ok[key.0 as usize] && rk.demand.fits_in(&key.1) {
                    c.order.remove(&(score(rk.policy, &cap, &key.1.minus(&rk.demand), &rk.demand, &w), key));
                }
            }
        }
    }

    /// Make sure a cache exists for the request class and mark it used.
    fn ensure_cache(&mut self, rk: &ReqKey, ask: &Ask) {
        self.clock += 1;
        if !self.caches.contains_key(rk) {
            if self.caches.len() >= MAX_CACHES {
                if let Some(old) = self.caches.iter().min_by_key(|(_, c)| c.last_used).map(|(k, _)| k.clone()) {
                    self.caches.remove(&old);
                }
            }
            let shape_ok: Vec<bool> = self.shapes.iter().map(|s| ask.shape_ok(s)).collect();
            let w = self.weights;
            let mut order = BTreeSet::new();
            for key in self.classes.keys() {
                if shape_ok[key.0 as usize] && rk.demand.fits_in(&key.1) {
                    let cap = self.shapes[key.0 as usize].capacity;
                    order.insert((score(rk.policy, &cap, &key.1.minus(&rk.demand), &rk.demand, &w), *key));
                }
            }
            self.caches.insert(rk.clone(), Cache { order, shape_ok, last_used: 0 });
        }
        let clock = self.clock;
        if let Some(c) = self.caches.get_mut(rk) {
            c.last_used = clock;
        }
    }

    /// The host the next instance of `ask` would go to, without placing it.
    pub fn choose(&mut self, ask: &Ask) -> Option<HostId> {
        let rk = ReqKey::from(ask);
        let excluded = ask.deployment_set.as_ref().and_then(|s| self.sets.get(s)).cloned();
        if ask.policy == Policy::FirstFit {
            let accept = |i: usize| {
                let h = &self.hosts[i];
                h.enabled
                    && ask.shape_ok(&self.shapes[h.shape as usize])
                    && ask.demand.fits_in(&h.free)
                    && excluded.as_ref().map(|e| !e.contains(&(i as HostId))).unwrap_or(true)
            };
            return self.by_id.first(&ask.demand.dims(), &accept).map(|i| i as HostId);
        }
        self.ensure_cache(&rk, ask);
        let cache = self.caches.get(&rk)?;
        for (_, key) in cache.order.iter() {
            let Some(hosts) = self.classes.get(key) else { continue };
            let pick = match &excluded {
                None => hosts.iter().next().copied(),
                Some(ex) => hosts.iter().find(|h| !ex.contains(h)).copied(),
            };
            if pick.is_some() {
                return pick;
            }
        }
        None
    }

    /// Place one instance on a specific host (it must fit). Used when re-building the index from
    /// existing instances, and by [`Cluster::place`].
    pub fn assign(&mut self, host: HostId, demand: &Demand, deployment_set: Option<&str>) -> bool {
        let h = &self.hosts[host as usize];
        if !demand.fits_in(&h.free) {
            return false;
        }
        let (shape, old, enabled) = (h.shape, h.free, h.enabled);
        let new = old.minus(demand);
        if enabled {
            self.leave_class(host, (shape, old));
        }
        let cap = self.shapes[shape as usize].capacity.dims();
        let h = &mut self.hosts[host as usize];
        h.free = new;
        h.instances += 1;
        if h.instances == 1 {
            self.used_hosts += 1;
            for d in 0..4 {
                self.in_use_capacity[d] += cap[d];
            }
        }
        let dd = demand.dims();
        for d in 0..4 {
            self.allocated[d] += dd[d];
        }
        if enabled {
            self.enter_class(host, (shape, new));
        }
        if let Some(s) = deployment_set {
            self.sets.entry(s.to_string()).or_default().insert(host);
        }
        true
    }

    /// Give back what an instance held.
    pub fn release(&mut self, host: HostId, demand: &Demand, deployment_set: Option<&str>) {
        let h = &self.hosts[host as usize];
        let (shape, old, enabled) = (h.shape, h.free, h.enabled);
        let cap = self.shapes[shape as usize].capacity;
        let new = old.plus(demand);
        debug_assert!(new.fits_in(&cap), "released more than was placed");
        if enabled {
            self.leave_class(host, (shape, old));
        }
        let h = &mut self.hosts[host as usize];
        h.free = Demand {
            cpu_milli: new.cpu_milli.min(cap.cpu_milli),
            mem_mib: new.mem_mib.min(cap.mem_mib),
            gpu_milli: new.gpu_milli.min(cap.gpu_milli),
            disk_gib: new.disk_gib.min(cap.disk_gib),
        };
        h.instances = h.instances.saturating_sub(1);
        if h.instances == 0 {
            self.used_hosts -= 1;
            let c = cap.dims();
            for d in 0..4 {
                self.in_use_capacity[d] -= c[d];
            }
        }
        let dd = demand.dims();
        for d in 0..4 {
            self.allocated[d] = self.allocated[d].saturating_sub(dd[d]);
        }
        let free = h.free;
        if enabled {
            self.enter_class(host, (shape, free));
        }
        if let Some(s) = deployment_set {
            if let Some(set) = self.sets.get_mut(s) {
                set.remove(&host);
                if set.is_empty() {
                    self.sets.remove(s);
                }
            }
        }
    }

    /// Open a new host of an unlimited shape that can take `ask`, if any.
    fn open_for(&mut self, ask: &Ask) -> Option<HostId> {
        let s = *self.unlimited.iter().find(|s| ask.shape_ok(&self.shapes[**s as usize]))?;
        Some(self.add_host(self.shapes[s as usize].clone()))
    }

    /// Place `count` instances of `ask`, at least `min_count` of them or none.
    pub fn place(&mut self, ask: &Ask, count: u32, min_count: u32) -> Result<Vec<HostId>, NoFit> {
        self.placements_since_reweigh += count;
        if self.placements_since_reweigh >= 256 {
            self.placements_since_reweigh = 0;
            self.reweigh();
        }
        let mut placed = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let host = match self.choose(ask) {
                Some(h) => Some(h),
                None => self.open_for(ask),
            };
            match host {
                Some(h) if self.assign(h, &ask.demand, ask.deployment_set.as_deref()) => placed.push(h),
                _ => break,
            }
        }
        if placed.len() as u32 >= min_count.clamp(1, count.max(1)) {
            Ok(placed)
        } else {
            let n = placed.len() as u32;
            for h in placed.into_iter().rev() {
                self.release(h, &ask.demand, ask.deployment_set.as_deref());
            }
            Err(NoFit { wanted: count, placed: n })
        }
    }

    /// Decide where `count` instances of `ask` go (at least `min_count` of them, or none) without
    /// taking anything: the answer is a plan to [`Cluster::commit`], or why nothing fits.
    pub fn plan(&mut self, ask: &Ask, count: u32, min_count: u32) -> Result<Plan, Unplaceable> {
        match self.place(ask, count, min_count) {
            Ok(hosts) => {
                for h in hosts.iter().rev() {
                    self.release(*h, &ask.demand, ask.deployment_set.as_deref());
                }
                Ok(Plan { hosts })
            }
            Err(_) if !self.could_ever_run(ask) => Err(Unplaceable::NoSuitableHost),
            Err(NoFit { wanted, placed }) => Err(Unplaceable::NoCapacity { wanted, placed }),
        }
    }

    /// Take what a plan places. A plan made under the same exclusive access always applies; if
    /// the cluster changed since (a host filled up), nothing is taken and `false` is returned.
    pub fn commit(&mut self, ask: &Ask, plan: &Plan) -> bool {
        for (n, h) in plan.hosts.iter().enumerate() {
            if !self.hosts[*h as usize].enabled || !self.assign(*h, &ask.demand, ask.deployment_set.as_deref()) {
                for done in plan.hosts[..n].iter().rev() {
                    self.release(*done, &ask.demand, ask.deployment_set.as_deref());
                }
                return false;
            }
        }
        true
    }

    /// Whether any host, whatever it holds now, could run one instance of `ask`.
    pub fn could_ever_run(&self, ask: &Ask) -> bool {
        let fits = |s: &Shape| ask.shape_ok(s) && ask.demand.fits_in(&s.capacity);
        self.hosts.iter().any(|h| fits(&self.shapes[h.shape as usize]))
            || self.unlimited.iter().any(|s| fits(&self.shapes[*s as usize]))
    }

    /// How many more instances of `ask` fit on existing hosts right now.
    pub fn slots(&mut self, ask: &Ask) -> u64 {
        let rk = ReqKey::from(ask);
        let d = ask.demand;
        self.ensure_cache(&rk, ask);
        let keys: Vec<ClassKey> =
            self.caches.get(&rk).map(|c| c.order.iter().map(|(_, k)| *k).collect()).unwrap_or_default();
        let mut n = 0;
        for key in keys {
            let hosts = self.classes.get(&key).map(|s| s.len() as u64).unwrap_or(0);
            let f = key.1;
            let per = [
                (d.cpu_milli, f.cpu_milli),
                (d.mem_mib, f.mem_mib),
                (d.gpu_milli, f.gpu_milli),
                (d.disk_gib, f.disk_gib),
            ]
            .iter()
            .filter_map(|(need, have)| have.checked_div(*need))
            .min()
            .unwrap_or(0);
            n += per * hosts;
        }
        n
    }

    /// Check every internal invariant (for tests): classes and caches agree with the hosts.
    pub fn check(&self) -> Result<(), String> {
        let mut used = 0;
        for (i, h) in self.hosts.iter().enumerate() {
            let cap = self.shapes[h.shape as usize].capacity;
            if !h.free.fits_in(&cap) {
                return Err(format!("host {i} has more free than capacity"));
            }
            if h.instances > 0 {
                used += 1;
            }
            let in_class = self.classes.get(&(h.shape, h.free)).map(|s| s.contains(&(i as HostId))).unwrap_or(false);
            if in_class != h.enabled {
                return Err(format!("host {i} class membership is wrong"));
            }
        }
        for (i, h) in self.hosts.iter().enumerate() {
            let want = if h.enabled { h.free.dims() } else { [0; 4] };
            if self.by_id.nodes.get(self.by_id.size + i) != Some(&want) {
                return Err(format!("first-fit tree is wrong for host {i}"));
            }
        }
        let (mut cap_used, mut alloc) = ([0u64; 4], [0u64; 4]);
        for h in &self.hosts {
            let cap = self.shapes[h.shape as usize].capacity.dims();
            let free = h.free.dims();
            for d in 0..4 {
                alloc[d] += cap[d] - free[d];
                if h.instances > 0 {
                    cap_used[d] += cap[d];
                }
            }
        }
        if cap_used != self.in_use_capacity || alloc != self.allocated {
            return Err("utilization totals are wrong".into());
        }
        if used != self.used_hosts {
            return Err("used host count is wrong".into());
        }
        let w = self.weights;
        for (rk, c) in &self.caches {
            let mut expected = 0;
            for key in self.classes.keys() {
                if c.shape_ok[key.0 as usize] && rk.demand.fits_in(&key.1) {
                    let cap = self.shapes[key.0 as usize].capacity;
                    let entry = (score(rk.policy, &cap, &key.1.minus(&rk.demand), &rk.demand, &w), *key);
                    if !c.order.contains(&entry) {
                        return Err(format!("cache for {:?} misses class {:?}", rk.demand, key));
                    }
                    expected += 1;
                }
            }
            if c.order.len() != expected {
                return Err(format!("cache for {:?} holds classes it should not", rk.demand));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
