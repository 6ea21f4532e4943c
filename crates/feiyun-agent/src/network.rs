//! The host's network, converged on a worker thread of its own.
//!
//! `feiyun-net` calls block and must not overlap for one host prefix, so one thread owns them:
//! it applies the newest desired state it was handed (a newer one supersedes one not yet
//! applied), retries with backoff when an apply fails, reads the public traffic counters, and
//! tears the host's network down when the host no longer has one. The intent loop only hands
//! specs over ([`NetWorker::submit`]) and reads what the worker published ([`NetOutput`]); it
//! never waits for the kernel.
//!
//! What the worker applies is the desired state plus the ports of instances whose containers
//! still exist on the host ([`plan`]): a port leaves the kernel only after its container is
//! gone, so a container never loses its namespace while it runs. The last state handed to
//! `apply` is kept in a file before the kernel is touched, so a restarted agent converges to it
//! before its first intent, and `feiyun teardown` knows the host's prefix.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use feiyun_hostproto::net::{HostNetSpec, VpcSpec};
use feiyun_net::{HostNet, PublicCounters, Validate};
use feiyun_runtime::{Observed, Runtime};

/// The state file's name in a host's data directory (`<data-dir>/host/`).
pub const STATE_FILE: &str = "network.json";

/// How often public traffic counters are read while nothing else happens.
pub const COUNTERS_EVERY: Duration = Duration::from_secs(10);
/// How often the current state is applied again although nothing changed, to repair drift
/// (a link or a rule removed by hand).
pub const REFRESH_EVERY: Duration = Duration::from_secs(300);
const FIRST_RETRY: Duration = Duration::from_millis(500);
const MAX_RETRY: Duration = Duration::from_secs(30);

/// The file holding the last network state handed to `apply`.
#[derive(Debug, thiserror::Error)]
pub enum StateFileError {
    #[error("Cannot read {0}: {1}")]
    Read(String, std::io::Error),
    #[error("Cannot parse {0}: {1}")]
    Parse(String, serde_json::Error),
    #[error("Cannot write {0}: {1}")]
    Write(String, std::io::Error),
}

/// The last network state the agent of a data directory handed to `apply` (`None`: it has none,
/// or it was torn down).
pub fn load_state(path: &Path) -> Result<Option<HostNetSpec>, StateFileError> {
    match std::fs::read(path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes).map(Some).map_err(|e| StateFileError::Parse(path.display().to_string(), e))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StateFileError::Read(path.display().to_string(), e)),
    }
}

fn store_state(path: &Path, spec: Option<&HostNetSpec>) -> Result<(), StateFileError> {
    let err = |e| StateFileError::Write(path.display().to_string(), e);
    match spec {
        Some(s) => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(err)?;
            }
            let text = serde_json::to_vec_pretty(s)
                .map_err(|e| err(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
            crate::write_private(path, &text).map_err(err)
        }
        None => match std::fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(err(e)),
        },
    }
}

/// What the control plane wants of the host's network.
#[derive(Debug, Clone, PartialEq)]
pub enum Desired {
    /// No intent has arrived yet (the agent just started): keep what was last applied.
    Unknown,
    /// The latest intent's network (`None`: the host has no network).
    Known(Option<HostNetSpec>),
}

/// What the worker does next: tear a prefix down, then apply a state.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    pub teardown: Option<String>,
    pub apply: Option<HostNetSpec>,
}

/// The next step from the desired state, the last state handed to `apply`, and whether an
/// instance still has its container on the host (`holds`).
///
/// A port that left the desired state stays while its instance's container exists — the
/// namespace goes only after the container. With nothing desired and nothing held, the prefix
/// is torn down. A changed prefix tears the old one down first.
pub fn plan(desired: &Desired, last: Option<&HostNetSpec>, holds: &dyn Fn(&str) -> bool) -> Plan {
    match (desired, last) {
        (Desired::Unknown, l) => Plan { teardown: None, apply: l.cloned() },
        (Desired::Known(None), None) => Plan::default(),
        (Desired::Known(None), Some(l)) => match held_only(l, holds) {
            Some(kept) => Plan { teardown: None, apply: Some(kept) },
            None => Plan { teardown: Some(l.prefix.clone()), apply: None },
        },
        (Desired::Known(Some(d)), None) => Plan { teardown: None, apply: Some(d.clone()) },
        (Desired::Known(Some(d)), Some(l)) if l.prefix != d.prefix => {
            Plan { teardown: Some(l.prefix.clone()), apply: Some(d.clone()) }
        }
        (Desired::Known(Some(d)), Some(l)) => Plan { teardown: None, apply: Some(with_held(d, l, holds)) },
    }
}

/// `last` reduced to the ports still held, or `None` if no port is.
fn held_only(last: &HostNetSpec, holds: &dyn Fn(&str) -> bool) -> Option<HostNetSpec> {
    let mut kept = last.clone();
    for v in &mut kept.vpcs {
        v.ports.retain(|p| holds(&p.instance_id));
    }
    kept.vpcs.retain(|v| !v.ports.is_empty());
    (!kept.vpcs.is_empty()).then_some(kept)
}

/// `desired` plus the ports of `last` it dropped whose containers are still on the host. If
/// keeping them contradicts the desired state (an address handed to someone else), the desired
/// state wins.
fn with_held(desired: &HostNetSpec, last: &HostNetSpec, holds: &dyn Fn(&str) -> bool) -> HostNetSpec {
    let wanted: BTreeSet<&str> =
        desired.vpcs.iter().flat_map(|v| v.ports.iter().map(|p| p.instance_id.as_str())).collect();
    let mut merged = desired.clone();
    for lv in &last.vpcs {
        for p in lv.ports.iter().filter(|p| !wanted.contains(p.instance_id.as_str())) {
            if !holds(&p.instance_id) {
                continue;
            }
            let i = match merged.vpcs.iter().position(|v| v.vpc_id == lv.vpc_id) {
                Some(i) => i,
                None => {
                    merged.vpcs.push(VpcSpec { ports: Vec::new(), remote_ports: Vec::new(), ..lv.clone() });
                    merged.vpcs.len() - 1
                }
            };
            let mv = &mut merged.vpcs[i];
            let mut p = p.clone();
            p.security_group_ids.retain(|g| mv.security_groups.iter().any(|s| &s.id == g));
            mv.ports.push(p);
        }
    }
    if merged != *desired && merged.validate().is_err() {
        return desired.clone();
    }
    merged
}

/// Whether an instance still has a container (or anything a boot set up) on the host. When the
/// runtime cannot tell, it has.
fn holds(runtime: &dyn Runtime, id: &str) -> bool {
    match runtime.inspect(id) {
        Ok(o) => o.state == Observed::Running || o.leftovers.any(),
        Err(e) => {
            tracing::warn!(instance = %id, error = %e, "cannot inspect an instance; keeping its network");
            true
        }
    }
}

/// What the worker publishes for the agent's loop.
#[derive(Default)]
pub struct NetOutput {
    /// The state the kernel matches (applied by this process without error since the last
    /// failure); `None` while an apply has failed or none has finished.
    applied: Mutex<Option<Arc<HostNetSpec>>>,
    /// The latest counters read, not yet taken.
    traffic: Mutex<Option<Vec<PublicCounters>>>,
    /// The error of the last attempt, if it failed.
    error: Mutex<Option<String>>,
    /// Signalled whenever any of the above changes.
    pub changed: tokio::sync::Notify,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl NetOutput {
    /// Whether the kernel has `instance_id`'s port under `prefix`: its namespace exists.
    pub fn has_port(&self, prefix: &str, instance_id: &str) -> bool {
        lock(&self.applied).as_ref().is_some_and(|s| s.prefix == prefix && s.vpc_of_instance(instance_id).is_some())
    }
    pub fn take_traffic(&self) -> Option<Vec<PublicCounters>> {
        lock(&self.traffic).take()
    }
    pub fn error(&self) -> Option<String> {
        lock(&self.error).clone()
    }
}

struct State {
    desired: Desired,
    /// Bumped by every submit.
    generation: u64,
    /// Look at held ports again (an instance's container may be gone).
    kicked: bool,
    stop: bool,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    out: Arc<NetOutput>,
}

/// The thread that owns the host's network.
pub struct NetWorker {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl NetWorker {
    /// Starts the worker. It acts on the network namespace of the calling thread (the agent's
    /// own) and begins by applying the state last handed to `apply`, if `state_file` holds one.
    pub fn start(runtime: Arc<dyn Runtime>, state_file: Option<PathBuf>, out: Arc<NetOutput>) -> NetWorker {
        let shared = Arc::new(Shared {
            state: Mutex::new(State { desired: Desired::Unknown, generation: 0, kicked: false, stop: false }),
            wake: Condvar::new(),
            out,
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("feiyun-net".into())
            .spawn(move || Worker::new(s, runtime, state_file).run());
        let thread = match thread {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::error!(error = %e, "cannot start the network worker");
                *lock(&shared.out.error) = Some(format!("Cannot start the network worker: {e}"));
                None
            }
        };
        NetWorker { shared, thread: Mutex::new(thread) }
    }

    /// Hands over the latest intent's network; a state not yet applied is superseded.
    pub fn submit(&self, desired: Option<HostNetSpec>) {
        let mut st = lock(&self.shared.state);
        let desired = Desired::Known(desired);
        if st.desired != desired {
            st.desired = desired;
            st.generation += 1;
            self.shared.wake.notify_all();
        }
    }

    /// Something on the host changed (an instance was stopped or removed): a port kept for its
    /// container may go now.
    pub fn kick(&self) {
        lock(&self.shared.state).kicked = true;
        self.shared.wake.notify_all();
    }

    /// Stops the worker and waits for it (an apply in progress finishes first), so that another
    /// agent on the same host never overlaps with it.
    pub fn stop(&self) {
        lock(&self.shared.state).stop = true;
        self.shared.wake.notify_all();
        if let Some(t) = lock(&self.thread).take() {
            if t.join().is_err() {
                tracing::error!("the network worker panicked");
            }
        }
    }
}

impl Drop for NetWorker {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Worker {
    shared: Arc<Shared>,
    runtime: Arc<dyn Runtime>,
    state_file: Option<PathBuf>,
    host: Option<HostNet>,
    /// The last state handed to `apply` (what the kernel may hold).
    last: Option<HostNetSpec>,
    /// What this process applied without error, and whether a teardown is still owed.
    applied: Option<Plan>,
    failures: u32,
    retry_at: Option<Instant>,
    counters_at: Instant,
    refresh_at: Instant,
    done_generation: Option<u64>,
}

impl Worker {
    fn new(shared: Arc<Shared>, runtime: Arc<dyn Runtime>, state_file: Option<PathBuf>) -> Worker {
        let last = match state_file.as_deref().map(load_state).transpose() {
            Ok(s) => s.flatten(),
            Err(e) => {
                tracing::error!(error = %e, "ignoring the saved network state");
                None
            }
        };
        let now = Instant::now();
        Worker {
            shared,
            runtime,
            state_file,
            host: None,
            last,
            applied: None,
            failures: 0,
            retry_at: None,
            counters_at: now + COUNTERS_EVERY,
            refresh_at: now + REFRESH_EVERY,
            done_generation: None,
        }
    }

    fn out(&self) -> &NetOutput {
        &self.shared.out
    }

    fn run(mut self) {
        loop {
            let (desired, generation, kicked) = {
                let mut st = lock(&self.shared.state);
                loop {
                    if st.stop {
                        return;
                    }
                    let now = Instant::now();
                    let due = self.done_generation != Some(st.generation)
                        || st.kicked
                        || self.retry_at.is_some_and(|t| now >= t)
                        || now >= self.counters_at
                        || now >= self.refresh_at;
                    if due {
                        break;
                    }
                    let until = [Some(self.counters_at), Some(self.refresh_at), self.retry_at]
                        .into_iter()
                        .flatten()
                        .min()
                        .unwrap_or(now + COUNTERS_EVERY);
                    st = match self.shared.wake.wait_timeout(st, until.saturating_duration_since(now)) {
                        Ok((g, _)) => g,
                        Err(p) => p.into_inner().0,
                    };
                }
                let kicked = std::mem::take(&mut st.kicked);
                (st.desired.clone(), st.generation, kicked)
            };
            let now = Instant::now();
            let new = self.done_generation != Some(generation);
            let retry = self.retry_at.is_some_and(|t| now >= t);
            let refresh = now >= self.refresh_at;
            if new || kicked || retry || refresh {
                self.converge(&desired, retry || refresh);
                self.done_generation = Some(generation);
            }
            if Instant::now() >= self.counters_at {
                self.read_counters();
            }
        }
    }

    /// Plans and, if the plan differs from what is applied (or `force`), carries it out.
    fn converge(&mut self, desired: &Desired, force: bool) {
        let runtime = self.runtime.clone();
        let plan = plan(desired, self.last.as_ref(), &|id| holds(runtime.as_ref(), id));
        let now = Instant::now();
        self.refresh_at = now + REFRESH_EVERY;
        if !force && self.applied.as_ref() == Some(&plan) {
            return;
        }
        if force {
            // A retry or the periodic repair: look at the kernel again rather than trust what
            // this process wrote into nftables last.
            if let Some(h) = &self.host {
                h.forget();
            }
        }
        let started = Instant::now();
        match self.execute(&plan) {
            Ok(()) => {
                if self.failures > 0 || plan.teardown.is_some() || self.applied.as_ref() != Some(&plan) {
                    tracing::info!(
                        prefix = plan.apply.as_ref().map(|s| s.prefix.as_str()).unwrap_or("-"),
                        teardown = plan.teardown.as_deref().unwrap_or("-"),
                        ms = started.elapsed().as_millis() as u64,
                        "host network converged"
                    );
                }
                self.failures = 0;
                self.retry_at = None;
                *lock(&self.out().applied) = plan.apply.clone().map(Arc::new);
                *lock(&self.out().error) = None;
                self.applied = Some(plan);
                // Counters restart with a rebuilt router: read them now.
                self.read_counters();
            }
            Err(e) => {
                self.failures += 1;
                let wait = FIRST_RETRY.saturating_mul(1 << self.failures.min(8).saturating_sub(1)).min(MAX_RETRY);
                tracing::warn!(error = %e, attempt = self.failures, retry_in_ms = wait.as_millis() as u64, "applying the host network failed");
                self.retry_at = Some(Instant::now() + wait);
                *lock(&self.out().applied) = None;
                *lock(&self.out().error) = Some(e);
                self.applied = None;
            }
        }
        self.out().changed.notify_one();
    }

    fn host(&mut self) -> Result<&HostNet, String> {
        if self.host.is_none() {
            self.host = Some(HostNet::current().map_err(|e| e.to_string())?);
        }
        self.host.as_ref().ok_or_else(|| "no host network".to_string())
    }

    fn persist(&self, spec: Option<&HostNetSpec>) -> Result<(), String> {
        match &self.state_file {
            Some(f) => store_state(f, spec).map_err(|e| e.to_string()),
            None => Ok(()),
        }
    }

    fn execute(&mut self, plan: &Plan) -> Result<(), String> {
        if let Some(prefix) = &plan.teardown {
            self.host()?.teardown(prefix).map_err(|e| format!("Tearing down network {prefix}: {e}"))?;
            tracing::info!(prefix = %prefix, "host network torn down");
            self.last = None;
            self.persist(None)?;
        }
        if let Some(spec) = &plan.apply {
            // Written before the kernel is touched: whatever a crash leaves can be found again.
            self.persist(Some(spec))?;
            self.last = Some(spec.clone());
            let report = self.host()?.apply(spec).map_err(|e| e.to_string())?;
            if !report.changes.is_empty() {
                tracing::debug!(
                    changes = report.changes.len(),
                    ms = report.elapsed.as_millis() as u64,
                    "host network applied"
                );
            }
        }
        Ok(())
    }

    fn read_counters(&mut self) {
        self.counters_at = Instant::now() + COUNTERS_EVERY;
        let Some(spec) = self.applied.as_ref().and_then(|p| p.apply.clone()) else { return };
        let Ok(host) = self.host() else { return };
        match host.counters(&spec) {
            Ok(c) => {
                *lock(&self.out().traffic) = Some(c);
                self.out().changed.notify_one();
            }
            Err(e) => tracing::debug!(error = %e, "cannot read traffic counters"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use feiyun_hostproto::net::*;
    use std::net::Ipv4Addr;

    fn spec(prefix: &str, ports: &[(&str, u8)]) -> HostNetSpec {
        HostNetSpec {
            prefix: prefix.into(),
            underlay_ip: Ipv4Addr::LOCALHOST,
            mtu: 1450,
            metadata: None,
            vpcs: vec![VpcSpec {
                vpc_id: "vpc-1".into(),
                vni: 7,
                cidr: "192.168.0.0/16".parse().expect("cidr"),
                transit: TransitLink {
                    host: Ipv4Addr::new(100, 127, 0, 1),
                    router: Ipv4Addr::new(100, 127, 0, 2),
                    prefix_len: 30,
                },
                vswitches: vec![VSwitchSpec {
                    vswitch_id: "vsw-1".into(),
                    cidr: "192.168.1.0/24".parse().expect("cidr"),
                    gateway: Ipv4Addr::new(192, 168, 1, 253),
                }],
                ports: ports
                    .iter()
                    .map(|(id, octet)| PortSpec {
                        instance_id: id.to_string(),
                        vswitch_id: "vsw-1".into(),
                        mac: MacAddr([2, 0, 0, 0, 1, *octet]),
                        ip: Ipv4Addr::new(192, 168, 1, *octet),
                        security_group_ids: vec!["sg-1".into()],
                        egress_mbps: None,
                        eip: None,
                    })
                    .collect(),
                remote_ports: vec![],
                security_groups: vec![SecurityGroupSpec {
                    id: "sg-1".into(),
                    kind: GroupKind::Basic,
                    inner_access: InnerAccessPolicy::Accept,
                    members: vec![],
                    rules: vec![],
                }],
            }],
        }
    }

    fn ports(s: &HostNetSpec) -> Vec<String> {
        s.vpcs.iter().flat_map(|v| v.ports.iter().map(|p| p.instance_id.clone())).collect()
    }

    #[test]
    fn a_port_stays_while_its_container_exists() {
        let last = spec("h1", &[("i-a", 10), ("i-b", 11)]);
        let desired = Desired::Known(Some(spec("h1", &[("i-a", 10)])));
        let held = plan(&desired, Some(&last), &|id| id == "i-b");
        assert_eq!(held.teardown, None);
        assert_eq!(ports(held.apply.as_ref().expect("apply")), ["i-a", "i-b"]);
        let gone = plan(&desired, Some(&last), &|_| false);
        assert_eq!(ports(gone.apply.as_ref().expect("apply")), ["i-a"]);
    }

    #[test]
    fn the_desired_state_wins_over_a_held_port() {
        // i-b's address went to i-c: i-b's port cannot stay.
        let last = spec("h1", &[("i-b", 11)]);
        let desired = spec("h1", &[("i-c", 11)]);
        let p = plan(&Desired::Known(Some(desired.clone())), Some(&last), &|_| true);
        assert_eq!(p.apply, Some(desired));
    }

    #[test]
    fn a_host_without_network_tears_down_once_nothing_holds_it() {
        let last = spec("h1", &[("i-a", 10)]);
        let held = plan(&Desired::Known(None), Some(&last), &|_| true);
        assert_eq!(held, Plan { teardown: None, apply: Some(last.clone()) });
        let free = plan(&Desired::Known(None), Some(&last), &|_| false);
        assert_eq!(free, Plan { teardown: Some("h1".into()), apply: None });
        assert_eq!(plan(&Desired::Known(None), None, &|_| true), Plan::default());
    }

    #[test]
    fn before_the_first_intent_the_last_state_is_applied_again() {
        let last = spec("h1", &[("i-a", 10)]);
        assert_eq!(plan(&Desired::Unknown, Some(&last), &|_| false).apply, Some(last));
        assert_eq!(plan(&Desired::Unknown, None, &|_| false), Plan::default());
    }

    #[test]
    fn a_new_prefix_tears_the_old_one_down_first() {
        let last = spec("h1", &[("i-a", 10)]);
        let next = spec("h2", &[("i-a", 10)]);
        let p = plan(&Desired::Known(Some(next.clone())), Some(&last), &|_| true);
        assert_eq!(p, Plan { teardown: Some("h1".into()), apply: Some(next) });
    }

    #[test]
    fn the_state_file_round_trips_and_goes_away() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("host/network.json");
        assert_eq!(load_state(&f).expect("missing is none"), None);
        let s = spec("h1", &[("i-a", 10)]);
        store_state(&f, Some(&s)).expect("store");
        assert_eq!(load_state(&f).expect("load"), Some(s));
        store_state(&f, None).expect("remove");
        assert_eq!(load_state(&f).expect("gone"), None);
        std::fs::write(&f, b"{not json").expect("write");
        assert!(load_state(&f).is_err());
    }
}
