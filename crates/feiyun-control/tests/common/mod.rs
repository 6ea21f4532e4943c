//! A control plane over a real store with a manual clock; the agent is played by hand.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, TimeZone, Utc};
use feiyun_control::{BillingSetup, Clock, ControlPlane, Parts, RegionSetup, Sealer};
use feiyun_domain::catalog::Catalog;
use feiyun_domain::host::{Host, HostState};
use feiyun_domain::ops::CreateInstances;
use feiyun_domain::region::{Region, Zone};
use feiyun_domain::Resources;
use feiyun_runtime::images::{ImageInfo, ImageStore};
use feiyun_runtime::{ExecOutcome, Observed, Runtime, RuntimeSpec};
use feiyun_scheduler::cluster::Policy;
use feiyun_store::SqliteStore;

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

/// The control plane never runs processes itself in these tests: the agent is played by hand.
pub struct NoRuntime;

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

pub fn control(dir: &std::path::Path, clock: Arc<ManualClock>) -> Arc<ControlPlane> {
    control_with(dir, clock, BillingSetup::default())
}

pub fn control_with(dir: &std::path::Path, clock: Arc<ManualClock>, billing: BillingSetup) -> Arc<ControlPlane> {
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
        billing,
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
