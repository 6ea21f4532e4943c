//! A region to call the wire layer against: a real control plane and store, one host, the
//! system clock, and no runtime (nothing is ever started).
#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use feiyun_control::{BillingSetup, ControlPlane, Parts, RegionSetup, Sealer, SystemClock};
use feiyun_domain::catalog::Catalog;
use feiyun_domain::host::{Host, HostState};
use feiyun_domain::ops::InstanceFilter;
use feiyun_domain::region::{Region, Zone};
use feiyun_domain::Resources;
use feiyun_openapi::params::form_decode;
use feiyun_openapi::{dispatch, route, ApiError, Ctx, Params};
use feiyun_runtime::images::{ImageInfo, ImageStore};
use feiyun_runtime::{ExecOutcome, Observed, Runtime, RuntimeSpec};
use feiyun_scheduler::cluster::Policy;
use feiyun_store::SqliteStore;
use serde_json::Value;

const PRICES: &str = include_str!("../../../../catalog/prices.toml");
const CATALOG: &str = include_str!("../../../../catalog/instance-types.toml");

pub const ECS: &str = "2014-05-26";
pub const BSS: &str = "2017-12-14";

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

pub struct Region1 {
    pub cp: Arc<ControlPlane>,
    pub account: String,
    _dir: tempfile::TempDir,
}

/// Region `cn-local` with zone `cn-local-a`, one roomy host, image `img`, and one account with
/// 10,000.00 on its balance.
pub fn region() -> Region1 {
    let dir = tempfile::tempdir().expect("temp dir");
    let images = dir.path().join("images");
    std::fs::create_dir_all(images.join("img/rootfs")).expect("image dir");
    let info = ImageInfo {
        id: "img".into(),
        name: "test".into(),
        description: String::new(),
        os_name: "linux".into(),
        os_type: "linux".into(),
        architecture: "x86_64".into(),
        size_bytes: 1 << 30,
        created_at: "now".into(),
    };
    std::fs::write(images.join("img/image.json"), serde_json::to_vec(&info).expect("json")).expect("write");
    let setup = RegionSetup {
        region: Region {
            id: "cn-local".into(),
            local_name: "local".into(),
            zones: vec![Zone { id: "cn-local-a".into(), local_name: "a".into() }],
        },
        hosts: vec![Host {
            id: "h".into(),
            zone_id: "cn-local-a".into(),
            capacity: Resources { vcpus: 64, memory_mib: 256 * 1024, gpus: 0, local_disk_gib: 0 },
            gpu_model: None,
            local_disk_category: None,
            state: HostState::Up,
        }],
        stop_grace: Duration::ZERO,
        policy: Policy::Feiyun,
        billing: BillingSetup::default(),
    };
    let cp = ControlPlane::new(Parts {
        store: Arc::new(SqliteStore::open(&dir.path().join("db")).expect("store")),
        catalog: Catalog::from_toml(CATALOG).expect("catalog"),
        setup,
        images: Arc::new(ImageStore::new(images)),
        runtime: Arc::new(NoRuntime),
        clock: Arc::new(SystemClock),
        sealer: Sealer::from_key([1; 32]),
        prices: feiyun_billing::prices::PriceBook::from_toml(PRICES).expect("prices"),
        seed: Some(7),
    })
    .expect("control plane");
    let (account, _) = cp.create_account("tester").expect("account");
    cp.top_up(&account.id, 1_000_000, "start").expect("top up");
    Region1 { cp, account: account.id, _dir: dir }
}

/// Everything a refused call must leave as it was: the instances and the ledger.
#[derive(Debug, PartialEq)]
pub struct Footprint {
    instances: Vec<(String, String)>,
    ledger: usize,
    balance: i64,
}

impl Region1 {
    /// Call `action` of the product `version` with form-encoded `query` (RegionId added for ECS).
    pub fn call_version(&self, version: &str, action: &str, query: &str) -> Result<Value, ApiError> {
        let query = if version == ECS && !query.contains("RegionId=") {
            format!("RegionId=cn-local&{query}")
        } else {
            query.to_string()
        };
        let params = Params::from_pairs(form_decode(&query)?)?;
        let route = route(version, action)?;
        let ctx = Ctx { cp: &self.cp, account_id: &self.account, params: &params, endpoint: "localhost" };
        let body = dispatch(route, &ctx)?;
        Ok(serde_json::from_str(&body).expect("JSON"))
    }

    pub fn call(&self, action: &str, query: &str) -> Result<Value, ApiError> {
        self.call_version(ECS, action, query)
    }

    pub fn footprint(&self) -> Footprint {
        let instances = self
            .cp
            .describe_instances(&self.account, &InstanceFilter::default())
            .into_iter()
            .map(|i| (i.id, format!("{:?} {:?}", i.status, i.charge_type)))
            .collect();
        Footprint {
            instances,
            ledger: self.cp.ledger(&self.account).expect("ledger").len(),
            balance: self.cp.balance_cents(&self.account).expect("balance"),
        }
    }

    /// One running pay-as-you-go instance (as far as the control plane knows).
    pub fn instance(&self) -> String {
        let v = self.call("RunInstances", "ImageId=img&InstanceType=ecs.g7.large").expect("RunInstances");
        v["InstanceIdSets"]["InstanceIdSet"][0].as_str().expect("id").to_string()
    }
}

impl Footprint {
    pub fn instances_len(&self) -> usize {
        self.instances.len()
    }
}
