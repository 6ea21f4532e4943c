//! A control plane over a real store with a manual clock, and hosts played by the test through
//! the host protocol ([`FakeHost`]) or by hand ([`ControlPlane::record_event`]).
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use feiyun_control::{BillingSetup, Clock, ControlPlane, HostsSetup, NetworkSetup, Parts, RegionSetup, Sealer};
use feiyun_domain::catalog::Catalog;
use feiyun_domain::image::{Image, ImageSource};
use feiyun_domain::instance::{AgentEvent, InstanceStatus, PowerState};
use feiyun_domain::ops::CreateInstances;
use feiyun_domain::region::{Region, Zone};
use feiyun_domain::Resources;
use feiyun_hostproto::{
    BlobInfo, BlobKind, ConsoleOutput, DiskSource, DiskStatus, ExecOutcome, Heartbeat, HostSpec, InstanceEvent, Intent,
    ProtoError, Registered, Report, Task, TaskOutcome, TaskResult, PROTOCOL_VERSION,
};
use feiyun_scheduler::cluster::Policy;
use feiyun_store::{SqliteStore, Store, WriteSet};

pub const PRICES: &str = include_str!("../../../../catalog/prices.toml");
pub const CATALOG: &str = include_str!("../../../../catalog/instance-types.toml");

pub struct ManualClock(pub Mutex<DateTime<Utc>>);

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().expect("lock")
    }
}

impl ManualClock {
    pub fn now_s(&self) -> i64 {
        self.0.lock().expect("lock").timestamp()
    }

    /// Seconds after 2027-01-15T08:00:00Z.
    pub fn set(&self, s: i64) {
        *self.0.lock().expect("lock") = Utc.timestamp_opt(1_800_000_000 + s, 0).single().expect("valid");
    }
}

pub fn control(dir: &std::path::Path, clock: Arc<ManualClock>) -> Arc<ControlPlane> {
    control_with(dir, clock, BillingSetup::default())
}

/// A region over a store in `dir` (reopening it re-reads what is there), with the test image
/// `img` (1.5 GiB: a 2 GiB system disk) and one registered host `h` in zone `z`.
pub fn control_with(dir: &std::path::Path, clock: Arc<ManualClock>, billing: BillingSetup) -> Arc<ControlPlane> {
    region(dir, clock, billing, HostsSetup::default(), &[("h", "z", 64)])
}

/// A region with hosts `(name, zone, vcpus)` registered through the host protocol.
pub fn region(
    dir: &std::path::Path,
    clock: Arc<ManualClock>,
    billing: BillingSetup,
    hosts: HostsSetup,
    host_list: &[(&str, &str, u32)],
) -> Arc<ControlPlane> {
    region_with(dir, clock, billing, hosts, host_list, NetworkSetup::default())
}

/// [`region`] with a network configuration.
pub fn region_with(
    dir: &std::path::Path,
    clock: Arc<ManualClock>,
    billing: BillingSetup,
    hosts: HostsSetup,
    host_list: &[(&str, &str, u32)],
    network: NetworkSetup,
) -> Arc<ControlPlane> {
    let store = Arc::new(SqliteStore::open(&dir.join("db")).expect("store"));
    let image = Image {
        id: "img".into(),
        name: "test".into(),
        description: String::new(),
        owner_account_id: None,
        os_name: "linux".into(),
        os_type: "linux".into(),
        architecture: "x86_64".into(),
        size_bytes: 3 * (1 << 30) / 2, // 1.5 GiB → a 2 GiB system disk
        source: ImageSource::Region,
        sha256: Some("00".into()),
        created_at: clock.now(),
    };
    store.commit(&WriteSet { images: std::slice::from_ref(&image), ..Default::default() }).expect("image");
    let catalog = Catalog::from_toml(CATALOG).expect("catalog");
    let mut zones: Vec<&str> = host_list.iter().map(|(_, z, _)| *z).collect();
    zones.dedup();
    let setup = RegionSetup {
        region: Region {
            id: "r".into(),
            local_name: "r".into(),
            zones: zones.iter().map(|z| Zone { id: z.to_string(), local_name: z.to_string() }).collect(),
        },
        hosts,
        stop_grace: Duration::ZERO,
        policy: Policy::Feiyun,
        billing,
    };
    let parts = Parts {
        store,
        catalog,
        setup,
        blob_dir: Some(dir.join("images")),
        clock,
        sealer: Sealer::from_key([1; 32]),
        prices: feiyun_billing::prices::PriceBook::from_toml(&PRICES.replace("cn-local", "r")).expect("prices"),
        seed: Some(7),
    };
    let cp = ControlPlane::with_network(parts, network).expect("control plane");
    let token = cp.process_join_token();
    for (name, zone, vcpus) in host_list {
        // A host without capacity only names a zone of the region.
        if *vcpus == 0 || cp.list_hosts().iter().any(|h| h.host.name == *name) {
            continue;
        }
        cp.register_host(&token, host_spec(name, zone, *vcpus)).expect("register");
    }
    cp
}

pub fn host_spec(name: &str, zone: &str, vcpus: u32) -> HostSpec {
    HostSpec {
        name: name.into(),
        zone: Some(zone.into()),
        capacity: Resources { vcpus, memory_mib: vcpus as u64 * 4 * 1024, gpus: 0, local_disk_gib: 0 },
        gpu_model: None,
        local_disk_category: None,
        simulated: true,
        protocol: PROTOCOL_VERSION,
        agent_version: "test".into(),
        underlay_ip: None,
    }
}

/// A real (not hollow) host that carries VPC traffic on `underlay`, if given.
pub fn net_host_spec(name: &str, zone: &str, vcpus: u32, underlay: Option<std::net::Ipv4Addr>) -> HostSpec {
    HostSpec { simulated: false, underlay_ip: underlay, ..host_spec(name, zone, vcpus) }
}

/// How a fake host answers a script: (exit code, output).
pub type ExecFn = Box<dyn Fn(&[u8]) -> (i64, Vec<u8>) + Send>;

/// A host played by the test through the host protocol: it answers its intent the way a host
/// whose every step succeeds at once would, and runs Cloud Assistant scripts with `exec`.
pub struct FakeHost {
    pub cp: Arc<ControlPlane>,
    pub reg: Registered,
    pub epoch: u64,
    /// What runs on the host (instance id → running?).
    pub instances: std::collections::BTreeMap<String, bool>,
    /// The answer to an exec task: (exit code, output).
    pub exec: ExecFn,
    pub console: Vec<u8>,
    /// The disks the host keeps: id → what it made it from, its size, the instance it is
    /// mounted in.
    pub disks: std::collections::BTreeMap<String, FakeDisk>,
    /// Snapshot files the host keeps.
    pub snapshots: std::collections::BTreeSet<String>,
    /// Storage tasks fail with this message, when set.
    pub storage_failure: Option<String>,
    /// Storage tasks are left unanswered (still pending) while set.
    pub hold_storage: bool,
}

/// A disk as a fake host keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeDisk {
    pub source: DiskSource,
    pub size_gib: u64,
    pub attached_to: Option<String>,
    /// The snapshots it was reset to, in order.
    pub resets: Vec<String>,
}

impl FakeHost {
    pub fn join(cp: &Arc<ControlPlane>, name: &str, zone: &str, vcpus: u32) -> FakeHost {
        let reg = cp.register_host(&cp.process_join_token(), host_spec(name, zone, vcpus)).expect("register");
        FakeHost::with(cp, reg)
    }

    /// A real host (its intent carries its network) with an underlay address, if given.
    pub fn join_net(
        cp: &Arc<ControlPlane>,
        name: &str,
        zone: &str,
        vcpus: u32,
        underlay: Option<std::net::Ipv4Addr>,
    ) -> FakeHost {
        let reg =
            cp.register_host(&cp.process_join_token(), net_host_spec(name, zone, vcpus, underlay)).expect("register");
        FakeHost::with(cp, reg)
    }

    pub fn with(cp: &Arc<ControlPlane>, reg: Registered) -> FakeHost {
        FakeHost {
            cp: cp.clone(),
            epoch: reg.epoch,
            reg,
            instances: Default::default(),
            exec: Box::new(|s| (0, s.to_vec())),
            console: b"[feiyun-init] ready\n".to_vec(),
            disks: Default::default(),
            snapshots: Default::default(),
            storage_failure: None,
            hold_storage: false,
        }
    }

    /// Upload `bytes` as a blob the way an agent does (only a blob a task of this host asks for
    /// is accepted), returning what the region recorded.
    pub fn upload(&self, kind: BlobKind, id: &str, bytes: &[u8]) -> Result<BlobInfo, ProtoError> {
        use sha2::Digest;
        let dest = self.cp.host_upload_target(&self.reg.credential, kind, id)?;
        std::fs::write(&dest, bytes).map_err(|e| ProtoError::Internal(e.to_string()))?;
        Ok(BlobInfo { sha256: hex::encode(sha2::Sha256::digest(bytes)), size_bytes: bytes.len() as u64 })
    }

    /// Make the host's disks what the intent says (as an agent that succeeds at once would),
    /// returning the reports of what changed.
    fn reconcile_disks(&mut self, intent: &Intent) -> Vec<DiskStatus> {
        let mut reports = Vec::new();
        let wanted: std::collections::BTreeSet<&str> = intent.disks.iter().map(|d| d.disk_id.as_str()).collect();
        self.disks.retain(|id, _| wanted.contains(id.as_str()));
        for d in &intent.disks {
            // Attached only to an instance whose root filesystem exists here.
            let attach =
                d.attachment.as_ref().map(|a| a.instance_id.clone()).filter(|i| self.instances.contains_key(i));
            let entry = self.disks.entry(d.disk_id.clone());
            let changed = match entry {
                std::collections::btree_map::Entry::Vacant(v) => {
                    v.insert(FakeDisk {
                        source: d.source.clone(),
                        size_gib: d.size_gib,
                        attached_to: attach.clone(),
                        resets: Vec::new(),
                    });
                    true
                }
                std::collections::btree_map::Entry::Occupied(mut o) => {
                    let f = o.get_mut();
                    let changed = f.attached_to != attach || f.size_gib < d.size_gib;
                    f.attached_to = attach.clone();
                    f.size_gib = f.size_gib.max(d.size_gib);
                    changed
                }
            };
            if changed {
                let f = &self.disks[&d.disk_id];
                reports.push(DiskStatus {
                    disk_id: d.disk_id.clone(),
                    size_gib: f.size_gib,
                    attached_to: f.attached_to.clone(),
                    error: None,
                });
            }
        }
        let keep: std::collections::BTreeSet<&str> = intent.snapshots.iter().map(String::as_str).collect();
        self.snapshots.retain(|s| keep.contains(s.as_str()));
        reports
    }

    fn storage_task(&mut self, t: &Task) -> TaskOutcome {
        if let Some(e) = &self.storage_failure {
            return TaskOutcome::Failed(e.clone());
        }
        match t {
            Task::Snapshot(s) => {
                if !self.disks.contains_key(&s.disk_id) && !self.snapshots.contains(&s.snapshot_id) {
                    return TaskOutcome::Failed(format!("no disk {}", s.disk_id));
                }
                self.snapshots.insert(s.snapshot_id.clone());
                let blob = if s.upload {
                    match self.upload(BlobKind::Snapshot, &s.snapshot_id, s.snapshot_id.as_bytes()) {
                        Ok(b) => Some(b),
                        Err(e) => return TaskOutcome::Failed(e.to_string()),
                    }
                } else {
                    None
                };
                // 1.5 GiB on the host: billed as 2 GiB.
                TaskOutcome::Snapshot { size_bytes: 3 << 29, blob }
            }
            Task::ResetDisk(r) => match self.disks.get_mut(&r.disk_id) {
                Some(d) if self.snapshots.contains(&r.snapshot_id) => {
                    d.resets.push(r.snapshot_id.clone());
                    TaskOutcome::Done
                }
                _ => TaskOutcome::Failed("no such disk or snapshot".into()),
            },
            Task::CaptureImage(c) => match self.upload(BlobKind::Image, &c.image_id, b"image archive") {
                Ok(b) => TaskOutcome::Uploaded(b),
                Err(e) => TaskOutcome::Failed(e.to_string()),
            },
            Task::UploadDisk(u) => {
                if !self.disks.contains_key(&u.disk_id) {
                    return TaskOutcome::Failed(format!("no disk {}", u.disk_id));
                }
                match self.upload(BlobKind::Disk, &u.blob_id, u.disk_id.as_bytes()) {
                    Ok(b) => TaskOutcome::Uploaded(b),
                    Err(e) => TaskOutcome::Failed(e.to_string()),
                }
            }
            _ => TaskOutcome::Done,
        }
    }

    /// The host's network as its intent has it, checked the way the host's network layer checks
    /// it before applying.
    pub fn network(&self) -> feiyun_hostproto::net::HostNetSpec {
        let n = self.intent().expect("intent").network.expect("a real host has a network");
        feiyun_net::Validate::validate(&n).unwrap_or_else(|e| panic!("the host would refuse its network: {e}\n{n:#?}"));
        n
    }

    pub fn intent(&self) -> Result<Intent, ProtoError> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(self.cp.host_intent(&self.reg.credential, 0, Duration::ZERO))
    }

    /// One round: read the intent, take one step per instance and answer every task; returns
    /// whether anything was reported.
    pub fn step(&mut self) -> Result<bool, ProtoError> {
        let intent = self.intent()?;
        if intent.epoch != self.epoch {
            // Fenced: drop everything the new intent does not name.
            let keep: Vec<&str> = intent.instances.iter().map(|i| i.id.as_str()).collect();
            self.instances.retain(|id, _| keep.contains(&id.as_str()));
            self.epoch = intent.epoch;
        }
        let mut events = Vec::new();
        for i in &intent.instances {
            let running = self.instances.get(&i.id).copied();
            let ev = match (i.desired, running, i.status) {
                (PowerState::Released, Some(_), _) | (PowerState::Released, None, _) => {
                    self.instances.remove(&i.id);
                    Some(AgentEvent::Cleaned)
                }
                (_, None, InstanceStatus::Pending) => {
                    self.instances.insert(i.id.clone(), false);
                    Some(AgentEvent::Provisioned)
                }
                (PowerState::Running, Some(false), _) => {
                    self.instances.insert(i.id.clone(), true);
                    Some(AgentEvent::Booted)
                }
                (PowerState::Running, Some(true), s)
                    if s != InstanceStatus::Running && s != InstanceStatus::Stopping =>
                {
                    Some(AgentEvent::Booted)
                }
                (PowerState::Running, Some(true), InstanceStatus::Stopping) => {
                    self.instances.insert(i.id.clone(), false);
                    Some(AgentEvent::Halted)
                }
                (PowerState::Stopped, Some(true), _) => {
                    self.instances.insert(i.id.clone(), false);
                    Some(AgentEvent::Halted)
                }
                (PowerState::Stopped, Some(false), s) if s != InstanceStatus::Stopped => Some(AgentEvent::Halted),
                _ => None,
            };
            if let Some(ev) = ev {
                events.push(InstanceEvent {
                    instance_id: i.id.clone(),
                    event: Some(ev),
                    error: None,
                    status_after: None,
                    seq: None,
                });
            }
        }
        let disks = self.reconcile_disks(&intent);
        let mut results = Vec::new();
        for t in &intent.tasks {
            let running = t.instance_id().and_then(|i| self.instances.get(i)).copied() == Some(true);
            let outcome = match t {
                Task::Exec(_) | Task::Console(_) if !running => TaskOutcome::NotRunning,
                Task::Exec(e) => {
                    let (code, output) = (self.exec)(&e.script);
                    TaskOutcome::Exec(ExecOutcome { exit_code: Some(code), output, dropped: 0, timed_out: false })
                }
                Task::Console(_) => TaskOutcome::Console(ConsoleOutput { bytes: self.console.clone(), modified: None }),
                _ if self.hold_storage => continue,
                storage => self.storage_task(storage),
            };
            results.push(TaskResult { task_id: t.id().to_string(), outcome });
        }
        let any = !events.is_empty() || !results.is_empty() || !disks.is_empty();
        if any {
            self.cp.host_report(
                &self.reg.credential,
                Report { epoch: self.epoch, events, results, disks, ..Report::default() },
            )?;
        }
        Ok(any)
    }

    /// Step until nothing changes.
    pub fn settle(&mut self) {
        for _ in 0..20 {
            if !self.step().expect("host step") {
                return;
            }
        }
        panic!("the host did not settle");
    }

    pub fn heartbeat(&self) -> Result<feiyun_hostproto::HeartbeatAck, ProtoError> {
        self.cp.host_heartbeat(&self.reg.credential, &Heartbeat { epoch: self.epoch, instances: 0 })
    }
}

/// One g7.large from the test image, started, paid as `purchase` says.
pub fn spec(purchase: feiyun_domain::ops::Purchase) -> CreateInstances {
    CreateInstances {
        zone_id: None,
        instance_type: "ecs.g7.large".into(),
        image_id: "img".into(),
        amount: 1,
        min_amount: None,
        name: None,
        hostname: None,
        unique_suffix: false,
        description: String::new(),
        user_data: None,
        tags: Vec::new(),
        deployment_set_id: None,
        client_token: None,
        dry_run: false,
        auto_start: true,
        purchase,
    }
}
