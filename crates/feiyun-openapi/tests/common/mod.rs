//! A region to call the wire layer against: a real control plane and store, one host, the
//! system clock, and no runtime (nothing is ever started).
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use feiyun_control::{BillingSetup, ControlPlane, HostsSetup, NetworkSetup, Parts, RegionSetup, Sealer, SystemClock};
use feiyun_domain::catalog::Catalog;
use feiyun_domain::image::{Image, ImageSource};
use feiyun_domain::ops::InstanceFilter;
use feiyun_domain::region::{Region, Zone};
use feiyun_domain::Resources;
use feiyun_openapi::params::form_decode;
use feiyun_openapi::{dispatch, route, ApiError, Ctx, Format, Params};
use feiyun_scheduler::cluster::Policy;
use feiyun_store::{SqliteStore, Store, WriteSet};
use serde_json::Value;

const PRICES: &str = include_str!("../../../../catalog/prices.toml");
const CATALOG: &str = include_str!("../../../../catalog/instance-types.toml");

pub const ECS: &str = "2014-05-26";
pub const VPC: &str = "2016-04-28";
pub const BSS: &str = "2017-12-14";

pub struct Region1 {
    pub cp: Arc<ControlPlane>,
    pub account: String,
    _dir: tempfile::TempDir,
}

/// Region `cn-local` with zone `cn-local-a`, one roomy host, image `img`, and one account with
/// 10,000.00 on its balance.
pub fn region() -> Region1 {
    region_with(NetworkSetup::default())
}

/// [`region`] with a network configuration.
pub fn region_with(network: NetworkSetup) -> Region1 {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(SqliteStore::open(&dir.path().join("db")).expect("store"));
    let image = Image {
        id: "img".into(),
        name: "test".into(),
        description: String::new(),
        owner_account_id: None,
        os_name: "linux".into(),
        os_type: "linux".into(),
        architecture: "x86_64".into(),
        size_bytes: 1 << 30,
        source: ImageSource::Region,
        sha256: None,
        created_at: chrono::Utc::now(),
    };
    store.commit(&WriteSet { images: std::slice::from_ref(&image), ..Default::default() }).expect("image");
    let setup = RegionSetup {
        region: Region {
            id: "cn-local".into(),
            local_name: "local".into(),
            zones: vec![Zone { id: "cn-local-a".into(), local_name: "a".into() }],
        },
        hosts: HostsSetup::default(),
        stop_grace: Duration::ZERO,
        policy: Policy::Feiyun,
        billing: BillingSetup::default(),
    };
    let cp = ControlPlane::with_network(
        Parts {
            store,
            catalog: Catalog::from_toml(CATALOG).expect("catalog"),
            setup,
            blob_dir: None,
            clock: Arc::new(SystemClock),
            sealer: Sealer::from_key([1; 32]),
            prices: feiyun_billing::prices::PriceBook::from_toml(PRICES).expect("prices"),
            seed: Some(7),
        },
        network,
    )
    .expect("control plane");
    let host = feiyun_hostproto::HostSpec {
        name: "h".into(),
        zone: Some("cn-local-a".into()),
        capacity: Resources { vcpus: 64, memory_mib: 256 * 1024, gpus: 0, local_disk_gib: 0 },
        gpu_model: None,
        local_disk_category: None,
        simulated: true,
        protocol: feiyun_hostproto::PROTOCOL_VERSION,
        agent_version: "test".into(),
        underlay_ip: None,
    };
    cp.register_host(&cp.process_join_token(), host).expect("host");
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
        let query = if (version == ECS || version == VPC) && !query.contains("RegionId=") {
            format!("RegionId=cn-local&{query}")
        } else {
            query.to_string()
        };
        let params = Params::from_pairs(form_decode(&query)?)?;
        let route = route(version, action)?;
        let ctx = Ctx {
            cp: &self.cp,
            account_id: &self.account,
            params: &params,
            endpoint: "localhost",
            request_id: "RID",
            format: Format::Json,
        };
        let body = dispatch(route, &ctx)?;
        Ok(serde_json::from_slice(&body).expect("JSON"))
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
