//! Every lifecycle transition leaves one usage event, written with the transition; the bill
//! derived from the log is exact and a restart of the control plane does not change it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, TimeZone, Utc};
use feiyun_agent::HostControl;
use feiyun_billing::metering::{intervals, Item};
use feiyun_control::{Clock, ControlPlane, Parts, RegionSetup, Sealer};
use feiyun_domain::catalog::Catalog;
use feiyun_domain::host::{Host, HostState};
use feiyun_domain::instance::{AgentEvent, StoppedMode, UserAction};
use feiyun_domain::ops::{CreateInstances, StopOptions};
use feiyun_domain::region::{Region, Zone};
use feiyun_domain::usage::EventKind;
use feiyun_domain::Resources;
use feiyun_runtime::images::{ImageInfo, ImageStore};
use feiyun_runtime::{ExecOutcome, Observed, Runtime, RuntimeSpec};
use feiyun_scheduler::cluster::Policy;
use feiyun_store::SqliteStore;

const PRICES: &str = include_str!("../../../catalog/prices.toml");
const CATALOG: &str = include_str!("../../../catalog/instance-types.toml");

struct ManualClock(Mutex<DateTime<Utc>>);

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().expect("lock")
    }
}

impl ManualClock {
    fn set(&self, s: i64) {
        *self.0.lock().expect("lock") = Utc.timestamp_opt(1_800_000_000 + s, 0).single().expect("valid");
    }
}

/// The control plane never runs processes itself in these tests: the agent is played by hand.
struct NoRuntime;

impl Runtime for NoRuntime {
    fn prepare(&self, _: &RuntimeSpec) -> feiyun_runtime::Result<()> {
        Ok(())
    }
    fn start(&self, _: &RuntimeSpec) -> feiyun_runtime::Result<()> {
        Ok(())
    }
    fn stop(&self, _: &str, _: Duration) -> feiyun_runtime::Result<()> {
        Ok(())
    }
    fn observe(&self, _: &str) -> feiyun_runtime::Result<Observed> {
        Ok(Observed::Absent)
    }
    fn destroy(&self, _: &str) -> feiyun_runtime::Result<()> {
        Ok(())
    }
    fn exec(&self, _: &str, _: &[u8], _: &str, _: Duration, _: usize) -> feiyun_runtime::Result<ExecOutcome> {
        Err(feiyun_runtime::RuntimeError::NotRunning("test".into()))
    }
    fn console(&self, _: &str, _: usize) -> feiyun_runtime::Result<(Vec<u8>, Option<SystemTime>)> {
        Ok((Vec::new(), None))
    }
    fn list(&self) -> feiyun_runtime::Result<Vec<String>> {
        Ok(Vec::new())
    }
}

fn control(dir: &std::path::Path, clock: Arc<ManualClock>) -> Arc<ControlPlane> {
    let images = dir.join("images");
    std::fs::create_dir_all(images.join("img/rootfs")).expect("image dir");
    let info = ImageInfo {
        id: "img".into(),
        name: "test".into(),
        description: String::new(),
        os_name: "linux".into(),
        os_type: "linux".into(),
        architecture: "x86_64".into(),
        size_bytes: 3 * (1 << 30) / 2, // 1.5 GiB → a 2 GiB system disk
        created_at: "now".into(),
    };
    std::fs::write(images.join("img/image.json"), serde_json::to_vec(&info).expect("json")).expect("write");
    let catalog = Catalog::from_toml(CATALOG).expect("catalog");
    let setup = RegionSetup {
        region: Region {
            id: "r".into(),
            local_name: "r".into(),
            zones: vec![Zone { id: "z".into(), local_name: "z".into() }],
        },
        hosts: vec![Host {
            id: "h".into(),
            zone_id: "z".into(),
            capacity: Resources { vcpus: 64, memory_mib: 256 * 1024, gpus: 0, local_disk_gib: 0 },
            gpu_model: None,
            local_disk_category: None,
            state: HostState::Up,
        }],
        stop_grace: Duration::ZERO,
        policy: Policy::Feiyun,
    };
    ControlPlane::new(Parts {
        store: Arc::new(SqliteStore::open(&dir.join("db")).expect("store")),
        catalog,
        setup,
        images: Arc::new(ImageStore::new(images)),
        runtime: Arc::new(NoRuntime),
        clock,
        sealer: Sealer::from_key([1; 32]),
        prices: feiyun_billing::prices::PriceBook::from_toml(&PRICES.replace("cn-local", "r")).expect("prices"),
        seed: Some(7),
    })
    .expect("control plane")
}

#[tokio::test]
async fn lifecycle_usage_is_recorded_once_and_bills_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock(Mutex::new(Utc::now())));
    clock.set(0);
    let cp = control(dir.path(), clock.clone());
    let (account, _) = cp.create_account("alice").expect("account");
    let spec = CreateInstances {
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
    };
    let id = cp.create_instances(&account.id, &spec).expect("created").remove(0);
    clock.set(10);
    cp.report(&id, AgentEvent::Provisioned);
    cp.report(&id, AgentEvent::Booted);
    clock.set(3610);
    let stop = StopOptions { force: false, mode: StoppedMode::StopCharging };
    cp.act(&account.id, std::slice::from_ref(&id), UserAction::Stop, Some(stop), true, false).expect("stop");
    cp.report(&id, AgentEvent::Halted);
    clock.set(7210);
    cp.act(&account.id, std::slice::from_ref(&id), UserAction::Start, None, true, false).expect("start");
    cp.report(&id, AgentEvent::Booted);
    // Reports repeated after a crash or a resync change nothing.
    cp.report(&id, AgentEvent::Booted);
    clock.set(10810);
    cp.act(&account.id, std::slice::from_ref(&id), UserAction::Delete { force: true }, None, true, false)
        .expect("delete");

    let events = cp.usage_events(Some(&account.id), 0).expect("usage");
    let kinds: Vec<EventKind> = events.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        vec![EventKind::Create, EventKind::Start, EventKind::StopCharging, EventKind::Start, EventKind::Release]
    );
    assert!(events.iter().all(|e| e.disk_gib == 2 && e.instance_type == "ecs.g7.large"));

    let seconds = |evs: &[feiyun_domain::usage::UsageEvent], item: Item| -> i64 {
        intervals(evs, i64::MAX).iter().filter(|i| i.item == item).map(|i| i.seconds()).sum()
    };
    // Compute ran 10 → 3610 and 7210 → 10810 (economical stop in between); the disk all along.
    assert_eq!(seconds(&events, Item::Compute), 7200);
    assert_eq!(seconds(&events, Item::Disk), 10810);

    // A restart of the control plane over the same store changes nothing.
    drop(cp);
    let cp = control(dir.path(), clock.clone());
    let again = cp.usage_events(Some(&account.id), 0).expect("usage");
    assert_eq!(again, events);
}
