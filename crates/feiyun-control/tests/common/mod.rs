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
    ConsoleOutput, ExecOutcome, Heartbeat, HostSpec, InstanceEvent, Intent, ProtoError, Registered, Report, Task,
    TaskOutcome, TaskResult, PROTOCOL_VERSION,
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
                events.push(InstanceEvent { instance_id: i.id.clone(), event: Some(ev), error: None });
            }
        }
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
                _ => TaskOutcome::Done,
            };
            results.push(TaskResult { task_id: t.id().to_string(), outcome });
        }
        let any = !events.is_empty() || !results.is_empty();
        if any {
            self.cp.host_report(
                &self.reg.credential,
                Report { epoch: self.epoch, events, results, ..Report::default() },
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
