//! A lab for the agent's networking on one machine: each "host" is a network namespace made by
//! the test, in which a real agent runs (its threads join the namespace before its runtime
//! starts, so the namespace is the agent's own), driving real runc containers, against a fake
//! control plane (`FakeControl`) that serves hand-written intents and applies reports through
//! the domain's state machine. Two hosts are joined by an underlay veth (169.254.0.0/16); an
//! optional "internet" namespace hangs off the first host. Everything is removed when the lab
//! is dropped, also when a test fails.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use feiyun_agent::{Agent, AgentOptions};
use feiyun_domain::instance::{AgentEvent, InstanceStatus, PowerState, UserAction};
use feiyun_domain::Resources;
use feiyun_hostproto::net::*;
use feiyun_hostproto::{
    BlobInfo, BlobKind, BlobRef, ControlLink, Credential, DiskStatus, Heartbeat, HeartbeatAck, HostSpec, ImageRef,
    ImageSource, InstanceIntent, InstanceSpec, Intent, ProtoError, Registered, Report, TaskOutcome, TrafficCounters,
    PROTOCOL_VERSION,
};
use feiyun_net::{ns, HostNet, Netns};
use feiyun_runtime::images::{find_busybox, ImageStore, BUILTIN_IMAGE_ID};
use feiyun_runtime::runc::{find_runc, RuncRuntime};
use feiyun_runtime::{Observed, Runtime};

/// The cgroup a test host's instances go under: one per data directory, so that the host removes
/// it when it is cleaned up without racing another test's host (a shared parent could only be
/// removed by whoever is last, which no test can tell).
pub fn cgroup_parent(data: &Path) -> String {
    format!("feiyun-test-{}", data.file_name().map(|n| n.to_string_lossy()).unwrap_or_default())
}
pub const METADATA_PORT: u16 = 8775;
pub const INTERNET_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);

/// Why these tests cannot run here, if they cannot.
pub fn skip_reason() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status.lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|l| l.split_whitespace().nth(1));
    if euid != Some("0") {
        return Some("not root".into());
    }
    if find_runc().is_none() {
        return Some("runc is not installed".into());
    }
    if find_busybox().is_none() {
        return Some("busybox-static is not installed".into());
    }
    for tool in ["nft", "tc", "ip"] {
        if Command::new(tool).arg("-V").output().is_err() && Command::new(tool).arg("-v").output().is_err() {
            return Some(format!("{tool} is not installed"));
        }
    }
    None
}

#[allow(unused_macros)]
macro_rules! lab_or_skip {
    ($tag:expr, $hosts:expr, $internet:expr) => {
        match common::skip_reason() {
            Some(why) => {
                eprintln!("skipping a real-container networking test: {why}");
                return;
            }
            None => common::Lab::new($tag, $hosts, $internet),
        }
    };
}
#[allow(unused_imports)]
pub(crate) use lab_or_skip;

/// These tests share the machine's cgroups and runc; one at a time keeps them predictable.
pub static SERIAL: Mutex<()> = Mutex::new(());

pub fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

pub fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

// ---- the fake control plane ----

/// What the fake control plane holds and saw.
pub struct Ctl {
    pub intent: Intent,
    pub events: Vec<(String, AgentEvent)>,
    pub errors: Vec<(String, String)>,
    pub traffic: HashMap<String, TrafficCounters>,
    pub results: HashMap<String, TaskOutcome>,
    /// The latest state reported of each disk.
    pub disks: HashMap<String, DiskStatus>,
    /// Where uploaded blobs are kept (`None`: this control plane keeps none).
    pub blob_dir: Option<PathBuf>,
    pub blobs: HashMap<(BlobKind, String), BlobInfo>,
}

/// A control plane for one host: it serves one intent (bumping its revision on every change)
/// and applies reports to it as the real one does (the domain's transitions; a cleaned instance
/// is forgotten).
pub struct FakeControl {
    ctl: Mutex<Ctl>,
    rev: tokio::sync::watch::Sender<u64>,
}

impl FakeControl {
    pub fn new(intent: Intent) -> Arc<FakeControl> {
        let (rev, _) = tokio::sync::watch::channel(intent.revision);
        Arc::new(FakeControl {
            ctl: Mutex::new(Ctl {
                intent,
                events: Vec::new(),
                errors: Vec::new(),
                traffic: HashMap::new(),
                results: HashMap::new(),
                disks: HashMap::new(),
                blob_dir: None,
                blobs: HashMap::new(),
            }),
            rev,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ctl> {
        self.ctl.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn read<T>(&self, f: impl FnOnce(&Ctl) -> T) -> T {
        f(&self.lock())
    }

    /// Changes the intent and wakes the host's long-poll.
    pub fn change(&self, f: impl FnOnce(&mut Intent)) {
        let mut c = self.lock();
        f(&mut c.intent);
        c.intent.revision += 1;
        let _ = self.rev.send(c.intent.revision);
    }

    pub fn network(&self, f: impl FnOnce(&mut HostNetSpec)) {
        self.change(|i| f(i.network.as_mut().expect("the host has a network")));
    }

    pub fn user(&self, id: &str, action: UserAction) {
        self.change(|intent| {
            let i = intent.instances.iter_mut().find(|i| i.id == id).expect("instance");
            let t = i.status.apply(i.desired, action).expect("legal action");
            i.status = t.status;
            i.desired = t.desired;
        });
    }

    pub fn status(&self, id: &str) -> Option<(InstanceStatus, PowerState)> {
        self.read(|c| c.intent.instances.iter().find(|i| i.id == id).map(|i| (i.status, i.desired)))
    }

    pub fn wait_status(&self, id: &str, status: InstanceStatus) {
        wait_for(&format!("{id} to be {status:?}"), Duration::from_secs(90), || {
            self.status(id).map(|s| s.0) == Some(status)
        });
    }

    pub fn traffic(&self, id: &str) -> Option<TrafficCounters> {
        self.read(|c| c.traffic.get(id).cloned())
    }

    /// Keep uploaded blobs in `dir` (and serve them, image blobs as region images).
    pub fn keep_blobs(&self, dir: &Path) {
        std::fs::create_dir_all(dir).expect("blob dir");
        self.lock().blob_dir = Some(dir.to_path_buf());
    }

    fn blob_file(&self, kind: BlobKind, id: &str) -> Result<PathBuf, ProtoError> {
        let dir = self.lock().blob_dir.clone().ok_or_else(|| ProtoError::NotFound("no blobs here".into()))?;
        Ok(dir.join(format!("{}-{id}", kind.as_str())))
    }

    pub fn disk(&self, id: &str) -> Option<DiskStatus> {
        self.read(|c| c.disks.get(id).cloned())
    }

    /// Waits until the host reports `id` as `check` wants it.
    pub fn wait_disk(&self, id: &str, what: &str, check: impl Fn(&DiskStatus) -> bool) -> DiskStatus {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match self.disk(id) {
                Some(d) if check(&d) => return d,
                last => assert!(
                    Instant::now() < deadline,
                    "timed out waiting for disk {id}: {what}; last reported {last:?}"
                ),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Adds a task and waits for its outcome.
    pub fn run_task(&self, task: feiyun_hostproto::Task) -> TaskOutcome {
        let id = task.id().to_string();
        self.change(|i| i.tasks.push(task));
        wait_for(&format!("task {id}"), Duration::from_secs(120), || self.read(|c| c.results.contains_key(&id)));
        self.read(|c| c.results.get(&id).cloned()).expect("result")
    }
}

#[async_trait::async_trait]
impl ControlLink for FakeControl {
    async fn register(&self, _token: &str, _spec: HostSpec) -> Result<Registered, ProtoError> {
        let c = self.lock();
        Ok(Registered {
            host_id: c.intent.host_id.clone(),
            credential: Credential(format!("{}.secret", c.intent.host_id)),
            zone: "z".into(),
            epoch: c.intent.epoch,
            heartbeat_ms: 500,
            grace_ms: 10_000,
        })
    }

    async fn heartbeat(&self, _: &Credential, _: Heartbeat) -> Result<HeartbeatAck, ProtoError> {
        let c = self.lock();
        Ok(HeartbeatAck { epoch: c.intent.epoch, revision: c.intent.revision })
    }

    async fn intent(&self, _: &Credential, since: u64, wait: Duration) -> Result<Intent, ProtoError> {
        let mut rx = self.rev.subscribe();
        let _ = tokio::time::timeout(wait, rx.wait_for(|r| *r != since)).await;
        Ok(self.lock().intent.clone())
    }

    async fn report(&self, _: &Credential, report: Report) -> Result<(), ProtoError> {
        let mut c = self.lock();
        let mut bump = false;
        for e in report.events {
            if !c.intent.instances.iter().any(|i| i.id == e.instance_id) {
                return Err(ProtoError::Forbidden(format!("{} is not on this host", e.instance_id)));
            }
            if let Some(err) = e.error {
                c.errors.push((e.instance_id.clone(), err));
            }
            let Some(ev) = e.event else { continue };
            c.events.push((e.instance_id.clone(), ev));
            if ev == AgentEvent::Cleaned {
                c.intent.instances.retain(|i| i.id != e.instance_id);
                bump = true;
                continue;
            }
            if let Some(i) = c.intent.instances.iter_mut().find(|i| i.id == e.instance_id) {
                let t = i.status.observe(i.desired, ev);
                if (t.status, t.desired) != (i.status, i.desired) {
                    i.status = t.status;
                    i.desired = t.desired;
                    bump = true;
                }
            }
        }
        for t in report.traffic {
            c.traffic.insert(t.instance_id.clone(), t);
        }
        for d in report.disks {
            c.disks.insert(d.disk_id.clone(), d);
        }
        for r in report.results {
            // As the region does: a snapshot taken is listed in the intent that drops its task.
            let taken = c.intent.tasks.iter().find_map(|t| match (t, &r.outcome) {
                (feiyun_hostproto::Task::Snapshot(s), TaskOutcome::Snapshot { .. }) if t.id() == r.task_id => {
                    Some(s.snapshot_id.clone())
                }
                _ => None,
            });
            if let Some(s) = taken.filter(|s| !c.intent.snapshots.contains(s)) {
                c.intent.snapshots.push(s);
            }
            c.intent.tasks.retain(|t| t.id() != r.task_id);
            c.results.insert(r.task_id, r.outcome);
            bump = true;
        }
        if bump {
            c.intent.revision += 1;
            let _ = self.rev.send(c.intent.revision);
        }
        Ok(())
    }

    async fn fetch_image(&self, _: &Credential, id: &str, dest: &Path) -> Result<u64, ProtoError> {
        let src = self.blob_file(BlobKind::Image, id)?;
        std::fs::copy(&src, dest).map_err(|e| ProtoError::NotFound(format!("image {id}: {e}")))
    }

    async fn upload_blob(&self, _: &Credential, kind: BlobKind, id: &str, src: &Path) -> Result<BlobInfo, ProtoError> {
        let dest = self.blob_file(kind, id)?;
        std::fs::copy(src, &dest).map_err(|e| ProtoError::Internal(format!("{}: {e}", dest.display())))?;
        let sha256 = feiyun_runtime::images::sha256_file(&dest).map_err(|e| ProtoError::Internal(e.to_string()))?;
        let size_bytes = std::fs::metadata(&dest).map(|m| m.len()).unwrap_or(0);
        let info = BlobInfo { sha256, size_bytes };
        self.lock().blobs.insert((kind, id.to_string()), info.clone());
        Ok(info)
    }

    async fn fetch_blob(&self, _: &Credential, blob: &BlobRef, dest: &Path) -> Result<u64, ProtoError> {
        let src = self.blob_file(blob.kind, &blob.id)?;
        std::fs::copy(&src, dest).map_err(|e| ProtoError::NotFound(format!("{} {}: {e}", blob.kind.as_str(), blob.id)))
    }
}

// ---- intents ----

pub fn instance(id: &str, user_data: Option<&str>) -> InstanceIntent {
    InstanceIntent {
        id: id.into(),
        status: InstanceStatus::Pending,
        desired: PowerState::Running,
        stop_grace_ms: 0,
        spec: InstanceSpec {
            hostname: id.into(),
            vcpus: 1,
            memory_mib: 128,
            baseline_cpu_percent: 0,
            image: ImageRef { id: BUILTIN_IMAGE_ID.into(), source: ImageSource::Builtin, size_bytes: 0, sha256: None },
            user_data: user_data.map(|u| u.as_bytes().to_vec()),
            authorized_keys: Vec::new(),
        },
        metadata: [
            ("instance-id", id),
            ("hostname", id),
            ("region-id", "cn-local"),
            ("instance/instance-type", "ecs.t6-c1m1.large"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
        applied_seq: None,
    }
}

pub fn intent(host_id: &str, instances: Vec<InstanceIntent>, network: Option<HostNetSpec>) -> Intent {
    Intent {
        host_id: host_id.into(),
        epoch: 1,
        revision: 1,
        instances,
        tasks: vec![],
        disks: vec![],
        snapshots: vec![],
        network,
    }
}

/// A VPC 192.168.0.0/16 with vSwitch 192.168.1.0/24 (gateway .253).
pub fn vpc(id: &str, vni: u32) -> VpcSpec {
    VpcSpec {
        vpc_id: id.into(),
        vni,
        cidr: "192.168.0.0/16".parse().expect("cidr"),
        transit: TransitLink {
            host: Ipv4Addr::new(100, 127, 1, 1),
            router: Ipv4Addr::new(100, 127, 1, 2),
            prefix_len: 30,
        },
        vswitches: vec![VSwitchSpec {
            vswitch_id: "vsw-1".into(),
            cidr: "192.168.1.0/24".parse().expect("cidr"),
            gateway: Ipv4Addr::new(192, 168, 1, 253),
        }],
        ports: vec![],
        remote_ports: vec![],
        security_groups: vec![],
    }
}

pub fn private_ip(octet: u8) -> Ipv4Addr {
    Ipv4Addr::new(192, 168, 1, octet)
}

pub fn port(id: &str, octet: u8, group: &str) -> PortSpec {
    PortSpec {
        instance_id: id.into(),
        vswitch_id: "vsw-1".into(),
        mac: MacAddr([0x02, 0, 0, 0, 1, octet]),
        ip: private_ip(octet),
        security_group_ids: vec![group.into()],
        egress_mbps: None,
        eip: None,
    }
}

/// A basic group whose members do not reach each other by default; `rules` decide.
pub fn group(id: &str, members: &[u8], rules: Vec<SgRule>) -> SecurityGroupSpec {
    SecurityGroupSpec {
        id: id.into(),
        kind: GroupKind::Basic,
        inner_access: InnerAccessPolicy::Drop,
        members: members.iter().map(|o| private_ip(*o)).collect(),
        rules,
    }
}

pub fn allow_tcp_in(port: u16, cidr: &str) -> SgRule {
    SgRule {
        direction: Direction::Ingress,
        policy: Policy::Accept,
        priority: 1,
        protocol: Protocol::Tcp,
        ports: Some((port, port)),
        peer: Peer::Cidr(cidr.parse().expect("cidr")),
    }
}

// ---- hosts ----

/// One simulated host: its namespace, its data directory, its runtime.
pub struct LabHost {
    pub ns_name: String,
    pub prefix: String,
    pub underlay: Ipv4Addr,
    pub data: PathBuf,
    pub runtime: Arc<RuncRuntime>,
    pub images: Arc<ImageStore>,
}

impl LabHost {
    /// A host of a lab made by another process (a child agent's view of it).
    pub fn reopen(ns_name: String, prefix: String, underlay: Ipv4Addr, data: PathBuf) -> LabHost {
        let runc = find_runc().expect("runc");
        let images = Arc::new(ImageStore::new(data.join("images")));
        let runtime = Arc::new(RuncRuntime::new(runc, data.join("host"), &cgroup_parent(&data)).expect("runtime"));
        LabHost { ns_name, prefix, underlay, data, runtime, images }
    }

    pub fn ns_path(&self) -> PathBuf {
        ns::netns_path(&self.ns_name)
    }

    pub fn network_state(&self) -> PathBuf {
        self.data.join("host/network.json")
    }

    pub fn spec(&self, vpcs: Vec<VpcSpec>) -> HostNetSpec {
        HostNetSpec {
            prefix: self.prefix.clone(),
            underlay_ip: self.underlay,
            mtu: 1450,
            metadata: Some(MetadataTarget { port: METADATA_PORT }),
            vpcs,
        }
    }

    pub fn options(&self) -> AgentOptions {
        AgentOptions {
            host: HostSpec {
                name: self.ns_name.clone(),
                zone: Some("z".into()),
                capacity: Resources { vcpus: 16, memory_mib: 16 * 1024, gpus: 0, local_disk_gib: 0 },
                gpu_model: None,
                local_disk_category: None,
                simulated: false,
                protocol: PROTOCOL_VERSION,
                agent_version: "test".into(),
                underlay_ip: Some(self.underlay),
            },
            token: Some("token".into()),
            identity_file: None,
            busybox: find_busybox(),
            network_state: Some(self.network_state()),
        }
    }

    /// A real agent in this host's namespace, talking to `link`.
    pub fn start_agent(&self, link: Arc<dyn ControlLink>) -> RunningAgent {
        RunningAgent::start(&self.ns_path(), link, self.runtime.clone(), self.images.clone(), self.options())
    }

    /// A shell script inside a running instance: (exit code, output).
    pub fn sh(&self, id: &str, script: &str) -> (i64, String) {
        let out = self.runtime.exec(id, script.as_bytes(), "/", Duration::from_secs(20), 64 * 1024).expect("exec");
        (out.exit_code.unwrap_or(-1), String::from_utf8_lossy(&out.output).into_owned())
    }

    /// Output of a script that must succeed.
    pub fn ok(&self, id: &str, script: &str) -> String {
        let (code, out) = self.sh(id, script);
        assert_eq!(code, 0, "{script:?} in {id}: {out}");
        out
    }

    pub fn instance_netns(&self, id: &str) -> PathBuf {
        feiyun_net::instance_netns_path(&self.prefix, id)
    }

    /// Whether runc has a container of `id` (running or not).
    pub fn has_container(&self, id: &str) -> bool {
        let o = self.runtime.inspect(id).expect("inspect");
        o.state == Observed::Running || o.leftovers.container
    }

    /// How many times an instance has booted, from its console.
    pub fn boots(&self, id: &str) -> usize {
        let (bytes, _) = self.runtime.console(id, 1 << 20).expect("console");
        String::from_utf8_lossy(&bytes).matches("[feiyun-init] booting").count()
    }

    /// What of this host's prefix exists: named namespaces, host links, nftables table.
    pub fn network_leftovers(&self) -> Vec<String> {
        let p = &self.prefix;
        let mut left: Vec<String> =
            ns::list_named().unwrap_or_default().into_iter().filter(|n| n.starts_with(&format!("{p}-"))).collect();
        let links = Command::new("ip").args(["-n", &self.ns_name, "-o", "link", "show"]).output().expect("ip link");
        for line in String::from_utf8_lossy(&links.stdout).lines() {
            let name = line.split(':').nth(1).map(|n| n.trim().split('@').next().unwrap_or("")).unwrap_or("");
            if feiyun_net::names::parse_host_link(p, name).is_some() {
                left.push(format!("link {name}"));
            }
        }
        let tables =
            Command::new("ip").args(["netns", "exec", &self.ns_name, "nft", "list", "tables"]).output().expect("nft");
        if String::from_utf8_lossy(&tables.stdout).contains(&feiyun_net::names::host_table(p)) {
            left.push("host nftables table".into());
        }
        left
    }
}

/// Removes every instance a runtime root holds (an earlier run killed before it cleaned up left
/// them).
fn remove_instances(root: &Path) {
    let Some(runc) = find_runc() else { return };
    if !root.join("host").exists() {
        return;
    }
    if let Ok(rt) = RuncRuntime::new(runc, root.join("host"), &cgroup_parent(root)) {
        for id in rt.list().unwrap_or_default() {
            if let Err(e) = rt.destroy(&id) {
                eprintln!("cleaning up {id}: {e}");
            }
        }
        if let Err(e) = rt.remove_parent_cgroup() {
            eprintln!("removing the instances' parent cgroup: {e}");
        }
    }
}

fn mounted_under(dir: &Path) -> bool {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let d = dir.to_string_lossy();
    text.lines().filter_map(|l| l.split(' ').nth(4)).any(|m| m.starts_with(d.as_ref()))
}

/// Three characters of `[a-z0-9]` from the clock and the process id.
fn random_tail() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
    let mut n = h.finish();
    let alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..3)
        .map(|_| {
            let c = alphabet[(n % 36) as usize] as char;
            n /= 36;
            c
        })
        .collect()
}

pub struct Lab {
    pub tag: String,
    pub hosts: Vec<LabHost>,
    pub internet: Option<String>,
    _serial: std::sync::MutexGuard<'static, ()>,
}

impl Lab {
    /// `n` hosts with prefixes `y<tag>1`, `y<tag>2`, …, `tag` made unique by three random
    /// characters: labs of runs side by side on one machine never share a name, so no run
    /// removes what another made.
    pub fn new(tag: &str, n: usize, internet: bool) -> Lab {
        let serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        let tag = format!("{tag}{}", random_tail());
        let tag = tag.as_str();
        let mut lab = Lab { tag: tag.into(), hosts: Vec::new(), internet: None, _serial: serial };
        let runc = find_runc().expect("runc");
        let bb = find_busybox().expect("busybox");
        for i in 1..=n {
            let ns_name = format!("fyag-{tag}-h{i}");
            let prefix = format!("y{tag}{i}");
            ns::ensure_named(&ns_name).expect("host namespace");
            ip(&["-n", &ns_name, "link", "set", "lo", "up"]);
            let data = std::env::temp_dir().join(format!("feiyun-agentnet-{tag}{i}"));
            let images = Arc::new(ImageStore::new(data.join("images")));
            images.ensure_builtin(&bb, "now").expect("image");
            let runtime =
                Arc::new(RuncRuntime::new(runc.clone(), data.join("host"), &cgroup_parent(&data)).expect("runtime"));
            let underlay = Ipv4Addr::new(169, 254, 0, i as u8);
            lab.hosts.push(LabHost { ns_name, prefix, underlay, data, runtime, images });
        }
        if n >= 2 {
            let (a, b) = (&lab.hosts[0].ns_name, &lab.hosts[1].ns_name);
            ip(&["-n", a, "link", "add", "ul0", "type", "veth", "peer", "name", "ul0", "netns", b]);
            for h in lab.hosts.iter().take(2) {
                ip(&["-n", &h.ns_name, "addr", "add", &format!("{}/16", h.underlay), "dev", "ul0"]);
                ip(&["-n", &h.ns_name, "link", "set", "ul0", "up"]);
            }
        } else if n == 1 {
            let h = &lab.hosts[0];
            ip(&["-n", &h.ns_name, "addr", "add", &format!("{}/32", h.underlay), "dev", "lo"]);
        }
        if internet {
            let name = format!("fyag-{tag}-inet");
            ns::ensure_named(&name).expect("internet namespace");
            let h = &lab.hosts[0].ns_name;
            ip(&["-n", &name, "link", "set", "lo", "up"]);
            ip(&["-n", h, "link", "add", "wan0", "type", "veth", "peer", "name", "wan0", "netns", &name]);
            ip(&["-n", &name, "addr", "add", "198.18.0.1/24", "dev", "wan0"]);
            ip(&["-n", h, "addr", "add", "198.18.0.2/24", "dev", "wan0"]);
            ip(&["-n", &name, "link", "set", "wan0", "up"]);
            ip(&["-n", h, "link", "set", "wan0", "up"]);
            ip(&["-n", h, "route", "add", "default", "via", "198.18.0.1"]);
            lab.internet = Some(name);
        }
        lab
    }

    pub fn internet_path(&self) -> PathBuf {
        ns::netns_path(self.internet.as_deref().expect("the lab has an internet"))
    }

    /// Instances first (their containers), then the hosts' networks, then the namespaces.
    fn remove_everything(&self) {
        for i in 1..=2 {
            let data = std::env::temp_dir().join(format!("feiyun-agentnet-{}{i}", self.tag));
            remove_instances(&data);
            let host_ns = ns::netns_path(&format!("fyag-{}-h{i}", self.tag));
            let prefix = format!("y{}{i}", self.tag);
            if let Ok(net) = HostNet::at(&host_ns) {
                if let Err(e) = net.teardown(&prefix) {
                    eprintln!("tearing down {prefix}: {e}");
                }
            }
            // Without its host namespace a prefix's namespaces can only be unmounted.
            for name in ns::list_named().unwrap_or_default() {
                if name.starts_with(&format!("{prefix}-")) {
                    let _ = ns::delete_named(&name);
                }
            }
            if data.exists() && !mounted_under(&data) {
                let _ = std::fs::remove_dir_all(&data);
            }
        }
        for name in ns::list_named().unwrap_or_default() {
            if name.starts_with(&format!("fyag-{}-", self.tag)) {
                let _ = ns::delete_named(&name);
            }
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.remove_everything();
    }
}

// ---- agents ----

/// An agent running on a thread of its own inside a host namespace.
pub struct RunningAgent {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl RunningAgent {
    pub fn start(
        host_ns: &Path,
        link: Arc<dyn ControlLink>,
        runtime: Arc<RuncRuntime>,
        images: Arc<ImageStore>,
        opts: AgentOptions,
    ) -> RunningAgent {
        let ns = Netns::open(host_ns).expect("open host namespace");
        let (stop, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let ran = ns.run(move || {
                // Every thread of this runtime starts from this one: they all live in the host's
                // namespace, as an agent process would.
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("tokio runtime");
                let runtime: Arc<dyn Runtime> = runtime;
                rt.block_on(Agent::new(link, runtime, Some(images), opts).run(async move {
                    let _ = rx.await;
                }))
            });
            match ran {
                Ok(Ok(())) => {}
                Ok(Err(e)) => eprintln!("the agent stopped: {e}"),
                Err(e) => eprintln!("the agent's thread failed: {e}"),
            }
        });
        RunningAgent { stop: Some(stop), thread: Some(thread) }
    }

    /// Stops the agent and waits for it (instances keep running).
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for RunningAgent {
    fn drop(&mut self) {
        self.halt();
    }
}

// ---- servers and clients outside the instances ----

/// A TCP server in a namespace that writes `bytes` bytes to every connection and closes it.
pub struct Sender {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Sender {
    pub fn start(ns_path: &Path, bind: SocketAddr, bytes: usize) -> Sender {
        let listener = Netns::open(ns_path).expect("ns").run(|| TcpListener::bind(bind)).expect("enter").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut s, _)) => {
                        let _ = s.set_nonblocking(false);
                        let _ = s.write_all(&vec![b'x'; bytes]);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Sender { stop, thread: Some(thread) }
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A plain HTTP GET from inside a namespace: the status line, or `None` if nothing answered.
pub fn http_status(ns_path: &Path, to: SocketAddr, path: &str) -> Option<String> {
    let stream = Netns::open(ns_path)
        .expect("ns")
        .run(|| TcpStream::connect_timeout(&to, Duration::from_secs(2)))
        .expect("enter")
        .ok()?;
    let mut s = stream;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes()).ok()?;
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.lines().next().map(str::to_string)
}
