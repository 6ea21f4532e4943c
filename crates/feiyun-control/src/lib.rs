//! The control plane.
//!
//! Owns the region's authoritative state in memory (loaded from the store at start, written
//! through to it before any change is acknowledged), and executes the typed commands of
//! [`feiyun_domain::ops`]: it validates them against the catalog, asks the scheduler for a
//! placement, applies the domain's lifecycle rules, persists, and wakes the host agent. It also
//! implements the agent's [`feiyun_agent::HostControl`] side, authenticates access keys and keeps
//! the anti-replay nonce cache.
//!
//! Must not: parse or render wire formats (that is `feiyun-openapi`), speak HTTP, run processes
//! itself (the runtime does, driven by the agent), or read the wall clock other than through its
//! [`Clock`].

mod accounts;
mod assistant;
mod billing;
mod deployment;
mod hostctl;
mod instances;
mod money_rules;
pub mod secrets;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use feiyun_domain::account::AccessKey;
use feiyun_domain::assistant::{Command, Invocation};
use feiyun_domain::catalog::Catalog;
use feiyun_domain::host::Host;
use feiyun_domain::instance::Instance;
use feiyun_domain::region::Region;
use feiyun_domain::{DomainError, Instant};
use feiyun_runtime::images::ImageStore;
use feiyun_runtime::Runtime;
use feiyun_store::{Store, StoreError, TokenRecord};
use rand::rngs::StdRng;
use rand::SeedableRng;
use tokio::sync::Notify;

pub use accounts::{create_account, open_key, NonceCheck, NONCE_WINDOW};
pub use assistant::InvocationFilter;
pub use billing::{invoice_from_store, top_up_entry, AccountBills, SpotQuote};
pub use hostctl::SYSTEM_DISK_CATEGORY;
pub use instances::AvailableType;
pub use secrets::Sealer;

/// The control plane's only source of time.
pub trait Clock: Send + Sync {
    fn now(&self) -> Instant;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        chrono::Utc::now()
    }
}

/// Static description of the region this control plane runs.
#[derive(Debug, Clone)]
pub struct RegionSetup {
    pub region: Region,
    pub hosts: Vec<Host>,
    /// How long a polite stop may take before the instance is killed.
    pub stop_grace: Duration,
    /// How the scheduler chooses among hosts that fit.
    pub policy: feiyun_scheduler::cluster::Policy,
    pub billing: BillingSetup,
}

/// Timings of settlement, arrears, expiry and the spot market.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BillingSetup {
    /// Pay-as-you-go usage is settled against balances at every multiple of this (an hour).
    pub settle_every: Duration,
    /// In arrears this long: pay-as-you-go and spot instances are stopped.
    pub arrears_stop_after: Duration,
    /// Stopped for arrears this long: they are released.
    pub arrears_release_after: Duration,
    /// Expired (not renewed) subscriptions are released after this.
    pub expired_release_after: Duration,
    /// The spot market is repriced, and outbid spot instances found, this often.
    pub market_every: Duration,
    /// Notice given to a reclaimed spot instance before it is released.
    pub spot_notice: Duration,
}

impl Default for BillingSetup {
    /// Hourly settlement; 15 days of arrears before stopping and 15 more before releasing (as on
    /// Alibaba Cloud); expired subscriptions released after 15 days; market every 5 minutes with
    /// 5 minutes' notice.
    fn default() -> Self {
        let day = Duration::from_secs(86_400);
        BillingSetup {
            settle_every: Duration::from_secs(3600),
            arrears_stop_after: 15 * day,
            arrears_release_after: 15 * day,
            expired_release_after: 15 * day,
            market_every: Duration::from_secs(300),
            spot_notice: Duration::from_secs(300),
        }
    }
}

struct State {
    /// The scheduler's capacity index over the region's hosts.
    cluster: feiyun_scheduler::cluster::Cluster,
    host_names: Vec<String>,
    host_index: HashMap<String, feiyun_scheduler::cluster::HostId>,
    /// Every instance not yet cleaned from its host (released ones have status Deleted).
    instances: BTreeMap<String, Instance>,
    tokens: HashMap<(String, String, String), TokenRecord>,
    commands: BTreeMap<String, Command>,
    invocations: BTreeMap<String, Invocation>,
    deployment_sets: BTreeMap<String, feiyun_domain::deployment::DeploymentSet>,
    /// Last runtime error per instance, shown in logs and kept for diagnosis.
    errors: HashMap<String, String>,
}

pub struct ControlPlane {
    state: RwLock<State>,
    store: Arc<dyn Store>,
    catalog: Catalog,
    setup: RegionSetup,
    images: Arc<ImageStore>,
    runtime: Arc<dyn Runtime>,
    clock: Arc<dyn Clock>,
    rng: Mutex<StdRng>,
    sealer: Sealer,
    prices: feiyun_billing::prices::PriceBook,
    agent_wake: Arc<Notify>,
    keys: RwLock<HashMap<String, AccessKey>>,
    nonces: Mutex<accounts::NonceCache>,
    started_at: Instant,
    /// Handle to spawn Cloud Assistant runs on.
    tokio: tokio::runtime::Handle,
    /// Serializes billing ticks, and remembers what they last did.
    billing: Mutex<billing::Ticker>,
    /// The spot percentage in force per zone (the last point recorded).
    spot_market: Mutex<HashMap<String, u32>>,
}

impl State {
    /// A live instance of the account; another tenant's instance is as missing as a released one.
    pub(crate) fn owned(&self, account_id: &str, id: &str) -> Result<&Instance, DomainError> {
        self.instances
            .get(id)
            .filter(|i| i.account_id == account_id && i.status != feiyun_domain::instance::InstanceStatus::Deleted)
            .ok_or_else(|| DomainError::InstanceNotFound(id.to_string()))
    }
}

pub(crate) fn store_err(e: StoreError) -> DomainError {
    DomainError::Internal(e.to_string())
}

pub struct Parts {
    pub store: Arc<dyn Store>,
    pub catalog: Catalog,
    pub setup: RegionSetup,
    pub images: Arc<ImageStore>,
    pub runtime: Arc<dyn Runtime>,
    pub clock: Arc<dyn Clock>,
    pub sealer: Sealer,
    /// What the region charges.
    pub prices: feiyun_billing::prices::PriceBook,
    /// Seed for identifiers; `None` draws one from the operating system.
    pub seed: Option<u64>,
}

impl ControlPlane {
    /// Load state from the store. Must be called inside a tokio runtime.
    pub fn new(parts: Parts) -> Result<Arc<ControlPlane>, DomainError> {
        let loaded = parts.store.load().map_err(store_err)?;
        let mut state = State {
            cluster: feiyun_scheduler::cluster::Cluster::new(),
            host_names: Vec::new(),
            host_index: HashMap::new(),
            instances: BTreeMap::new(),
            tokens: HashMap::new(),
            commands: BTreeMap::new(),
            invocations: BTreeMap::new(),
            deployment_sets: loaded.deployment_sets.into_iter().map(|d| (d.id.clone(), d)).collect(),
            errors: HashMap::new(),
        };
        for h in &parts.setup.hosts {
            let shape = feiyun_scheduler::cluster::Shape {
                capacity: feiyun_scheduler::cluster::Demand {
                    cpu_milli: h.capacity.vcpus as u64 * 1000,
                    mem_mib: h.capacity.memory_mib,
                    gpu_milli: h.capacity.gpus as u64 * 1000,
                    disk_gib: h.capacity.local_disk_gib,
                },
                zone: h.zone_id.clone(),
                gpu_model: h.gpu_model.clone(),
                disk_category: h.local_disk_category.clone(),
            };
            let id = state.cluster.add_host(shape);
            if h.state != feiyun_domain::host::HostState::Up {
                state.cluster.set_enabled(id, false);
            }
            state.host_names.push(h.id.clone());
            state.host_index.insert(h.id.clone(), id);
        }
        for i in loaded.instances {
            if i.holds_capacity() {
                let t = parts.catalog.instance_type(&i.instance_type);
                match (t, state.host_index.get(&i.host_id)) {
                    (Some(t), Some(h)) => {
                        let h = *h;
                        if !state.cluster.assign(h, &instances::demand_of(t), i.deployment_set_id.as_deref()) {
                            // The host's configured capacity shrank below what runs on it: take
                            // nothing new there rather than overcommit it.
                            tracing::warn!(instance = %i.id, host = %i.host_id, "instances exceed the host's configured capacity; host closed to new placements");
                            state.cluster.set_enabled(h, false);
                        }
                    }
                    _ => {
                        tracing::warn!(instance = %i.id, host = %i.host_id, "instance on an unknown host or of an unknown type")
                    }
                }
            }
            state.instances.insert(i.id.clone(), i);
        }
        for t in loaded.tokens {
            state.tokens.insert((t.account_id.clone(), t.scope.clone(), t.token.clone()), t);
        }
        for c in loaded.commands {
            state.commands.insert(c.id.clone(), c);
        }
        let now = parts.clock.now();
        let mut interrupted = Vec::new();
        for mut v in loaded.invocations {
            if assistant::interrupt_unfinished(&mut v, now) {
                interrupted.push(v.clone());
            }
            state.invocations.insert(v.id.clone(), v);
        }
        for v in &interrupted {
            parts.store.put_invocation(v).map_err(store_err)?;
        }
        let rng = match parts.seed {
            Some(s) => StdRng::seed_from_u64(s),
            None => StdRng::from_entropy(),
        };
        Ok(Arc::new(ControlPlane {
            state: RwLock::new(state),
            store: parts.store,
            catalog: parts.catalog,
            setup: parts.setup,
            images: parts.images,
            runtime: parts.runtime,
            started_at: parts.clock.now(),
            clock: parts.clock,
            rng: Mutex::new(rng),
            sealer: parts.sealer,
            prices: parts.prices,
            agent_wake: Arc::new(Notify::new()),
            keys: RwLock::new(HashMap::new()),
            nonces: Mutex::new(accounts::NonceCache::default()),
            tokio: tokio::runtime::Handle::current(),
            billing: Mutex::new(billing::Ticker::default()),
            spot_market: Mutex::new(HashMap::new()),
        }))
    }

    pub fn agent_wake(&self) -> Arc<Notify> {
        self.agent_wake.clone()
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub fn region(&self) -> &Region {
        &self.setup.region
    }

    pub fn hosts(&self) -> &[Host] {
        &self.setup.hosts
    }

    /// The whole price book loaded at start.
    pub fn price_book(&self) -> &feiyun_billing::prices::PriceBook {
        &self.prices
    }

    pub fn billing_setup(&self) -> &BillingSetup {
        &self.setup.billing
    }

    /// The region's prices (the price book loaded at start).
    pub fn prices(&self) -> Result<&feiyun_billing::prices::RegionPrices, DomainError> {
        self.prices.region(&self.setup.region.id).map_err(|e| DomainError::Internal(e.to_string()))
    }

    pub fn images(&self) -> &ImageStore {
        &self.images
    }

    pub fn now(&self) -> Instant {
        self.clock.now()
    }

    pub fn started_at(&self) -> Instant {
        self.started_at
    }

    pub fn image_rootfs(&self, image_id: &str) -> PathBuf {
        self.images.rootfs(image_id)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    fn with_rng<T>(&self, f: impl FnOnce(&mut StdRng) -> T) -> T {
        f(&mut self.rng.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The usage log (append-only) of an account, or of every account, from `since_s` on.
    pub fn usage_events(
        &self,
        account_id: Option<&str>,
        since_s: i64,
    ) -> Result<Vec<feiyun_domain::usage::UsageEvent>, DomainError> {
        self.store.usage_events(account_id, since_s).map_err(store_err)
    }

    /// Check the region id a request names.
    pub fn check_region(&self, region_id: &str) -> Result<(), DomainError> {
        if region_id == self.setup.region.id {
            Ok(())
        } else {
            Err(DomainError::RegionNotFound(region_id.to_string()))
        }
    }
}

/// Randomness for callers outside the control plane (the command line).
pub mod rng {
    pub use rand::Rng;

    pub fn from_entropy() -> rand::rngs::StdRng {
        rand::SeedableRng::from_entropy()
    }
}
