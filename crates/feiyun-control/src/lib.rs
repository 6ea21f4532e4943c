//! The control plane.
//!
//! Owns the region's authoritative state in memory (loaded from the store at start, written
//! through to it before any change is acknowledged), and executes the typed commands of
//! [`feiyun_domain::ops`] — instances, the networks they are in (VPCs, vSwitches, security
//! groups, addresses; each host's desired network is computed here and sent in its intent) and
//! their storage (disks and where their data lives, snapshots, the images accounts make, import
//! and share, key pairs; storage work is sent to hosts as tasks): it validates them against the catalog, asks the scheduler for a
//! placement, applies the domain's lifecycle rules, persists, and bumps the intent revision of
//! the hosts concerned. Hosts reach it only through the host protocol: it implements
//! [`feiyun_hostproto::ControlLink`] (registration with join tokens, heartbeats, long-polled
//! intent, reports, image fetches), tracks host liveness, drains, evacuates and fences hosts. It
//! also authenticates access keys and keeps the anti-replay nonce cache.
//!
//! Must not: parse or render wire formats (that is `feiyun-openapi`), speak HTTP, link the agent
//! or the runtime, run processes, or read the wall clock other than through its [`Clock`].

mod accounts;
mod assistant;
mod billing;
mod deployment;
mod hosts;
mod images;
mod instances;
mod link;
mod money_rules;
mod net;
pub mod secrets;
mod storage;
mod tasks;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use feiyun_domain::account::AccessKey;
use feiyun_domain::assistant::{Command, Invocation};
use feiyun_domain::catalog::Catalog;
use feiyun_domain::image::Image;
use feiyun_domain::instance::Instance;
use feiyun_domain::region::Region;
use feiyun_domain::{DomainError, Instant};
use feiyun_store::{Store, StoreError, TokenRecord};
use rand::rngs::StdRng;
use rand::SeedableRng;

pub use accounts::{create_account, open_key, NonceCheck, NONCE_WINDOW};
pub use assistant::InvocationFilter;
pub use billing::{invoice_from_store, top_up_entry, AccountBills, SpotQuote};
pub use hosts::{EvacuationPolicy, HostInfo, HostsSetup};
pub use instances::{AvailableType, Created};
pub use link::SYSTEM_DISK_CATEGORY;
pub use net::{EipFilter, GroupFilter, InstanceNets, NetworkSetup, VSwitchFilter, VpcFilter};
pub use secrets::Sealer;
pub use storage::{
    data_disk_gib, fingerprint, system_disk_gib, CreatedKeyPair, ImageImporter, ImageView, ImportedImage,
    DEFAULT_DATA_CATEGORY, DEFAULT_DISK_CATEGORY, DEFAULT_SYSTEM_CATEGORY,
};

/// The administrator's account: created at the region's first start, the only one that may
/// operate hosts.
pub const ADMIN_ACCOUNT: &str = "admin";

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
    /// Heartbeats, liveness and evacuation of the hosts that join.
    pub hosts: HostsSetup,
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
    /// Registered hosts by id, with what the control plane tracks of each.
    hosts: HashMap<String, hosts::HostSlot>,
    /// Host id of each host in the scheduler's index, by its index id.
    cluster_hosts: Vec<String>,
    /// Host ids by host name, and the network name prefixes hosts have (hosts are never
    /// removed, so neither are these).
    host_names: HashMap<String, String>,
    net_prefixes: std::collections::BTreeSet<String>,
    join_tokens: HashMap<String, feiyun_domain::host::JoinToken>,
    /// Every instance not yet cleaned from its host (released ones have status Deleted).
    instances: BTreeMap<String, Instance>,
    /// The same instances per account, oldest first ((created, id): the order listings use).
    by_account: HashMap<String, std::collections::BTreeSet<(Instant, String)>>,
    tokens: HashMap<(String, String, String), TokenRecord>,
    commands: BTreeMap<String, Command>,
    invocations: BTreeMap<String, Invocation>,
    deployment_sets: BTreeMap<String, feiyun_domain::deployment::DeploymentSet>,
    /// System events still executing, by instance.
    open_events: HashMap<String, feiyun_domain::event::SystemEvent>,
    /// Last runtime error per instance, shown in logs and kept for diagnosis.
    errors: HashMap<String, String>,
    /// VPCs, vSwitches, security groups, interfaces and public addresses.
    net: net::NetState,
    /// Disks, snapshots, key pairs and the images accounts made.
    storage: storage::StorageState,
}

pub struct ControlPlane {
    state: RwLock<State>,
    store: Arc<dyn Store>,
    catalog: Catalog,
    setup: RegionSetup,
    network: NetworkSetup,
    /// The image catalog. Lock order: the state, then the images.
    images: RwLock<BTreeMap<String, Image>>,
    /// Where the region's blobs are kept (`<kind>/<id>`: image archives, snapshots, disks in
    /// transit), for hosts to upload and fetch.
    blob_dir: Option<PathBuf>,
    clock: Arc<dyn Clock>,
    rng: Mutex<StdRng>,
    sealer: Sealer,
    prices: feiyun_billing::prices::PriceBook,
    keys: RwLock<HashMap<String, AccessKey>>,
    nonces: Mutex<accounts::NonceCache>,
    started_at: Instant,
    /// Join tokens that live only as long as this process (the embedded host's).
    process_tokens: Mutex<Vec<String>>,
    /// Serializes billing ticks, and remembers what they last did.
    billing: Mutex<billing::Ticker>,
    /// The spot percentage in force per zone (the last point recorded).
    spot_market: Mutex<HashMap<String, u32>>,
    /// Where ImportImage takes files from and what makes them images (`None`: no imports).
    importing: RwLock<Option<storage::import::Importing>>,
}

/// The record of a create made with a `ClientToken`: the token, the call's fingerprint and what
/// it made (`made`), kept in the same transaction as what it made.
pub(crate) fn token_record(
    account_id: &str,
    scope: &str,
    ct: Option<&feiyun_domain::ops::ClientToken>,
    made: &str,
) -> Option<TokenRecord> {
    ct.map(|ct| TokenRecord {
        account_id: account_id.to_string(),
        scope: scope.to_string(),
        token: ct.token.clone(),
        fingerprint: ct.fingerprint.clone(),
        result: made.to_string(),
    })
}

impl State {
    /// A create retried with the same `ClientToken` (same account and scope): what the first
    /// request made. The same token with other parameters is refused.
    pub(crate) fn replayed(
        &self,
        account_id: &str,
        scope: &str,
        ct: Option<&feiyun_domain::ops::ClientToken>,
    ) -> Result<Option<String>, DomainError> {
        let Some(ct) = ct else { return Ok(None) };
        match self.tokens.get(&(account_id.to_string(), scope.to_string(), ct.token.clone())) {
            None => Ok(None),
            Some(rec) if rec.fingerprint != ct.fingerprint => Err(DomainError::IdempotentParameterMismatch),
            Some(rec) => Ok(Some(rec.result.clone())),
        }
    }

    /// A token written with what it made, from now on answered by [`State::replayed`].
    pub(crate) fn remember(&mut self, t: TokenRecord) {
        self.tokens.insert((t.account_id.clone(), t.scope.clone(), t.token.clone()), t);
    }

    /// A live instance of the account; another tenant's instance is as missing as a released one.
    pub(crate) fn owned(&self, account_id: &str, id: &str) -> Result<&Instance, DomainError> {
        self.instances
            .get(id)
            .filter(|i| i.account_id == account_id && i.status != feiyun_domain::instance::InstanceStatus::Deleted)
            .ok_or_else(|| DomainError::InstanceNotFound(id.to_string()))
    }

    /// Record an instance as persisted, and tell the hosts it concerns (its host, and the one it
    /// left if it moved) that their intent changed. An instance that appears, moves or is
    /// released changes the network of every host with an instance of its VPC; a released one
    /// gives its interface and public address back (its write set had them removed, see
    /// [`net::NetState::release_writes`]).
    pub(crate) fn put(&mut self, i: Instance) {
        self.put_observed(i, true)
    }

    /// [`State::put`]; `wake_host`: false when the instance's host already has the change (it
    /// reported it and applied it to its own copy of the intent), so its intent revision stays.
    pub(crate) fn put_observed(&mut self, i: Instance, wake_host: bool) {
        let old = self.instances.get(&i.id);
        let released = i.status == feiyun_domain::instance::InstanceStatus::Deleted
            && old.is_some_and(|o| o.status != feiyun_domain::instance::InstanceStatus::Deleted);
        let reaches_vpc = old.is_none_or(|o| o.host_id != i.host_id) || released;
        let old_host = old.map(|o| o.host_id.clone()).filter(|h| *h != i.host_id);
        if let Some(h) = old_host {
            if let Some(slot) = self.hosts.get_mut(&h) {
                slot.remove_instance(&i.id);
                slot.bump();
            }
        }
        if let Some(slot) = self.hosts.get_mut(&i.host_id) {
            // A new, moved or released instance always wakes its host.
            if slot.instances.insert(i.id.clone()) || wake_host || released {
                slot.bump();
            }
        }
        let id = i.id.clone();
        if i.status == feiyun_domain::instance::InstanceStatus::Deleted {
            self.unindex(&i);
        } else if old.is_none() {
            self.index(&i);
        }
        self.instances.insert(i.id.clone(), i);
        if reaches_vpc {
            if let Some(vpc) = self.net.nics.get(&id).map(|n| n.vpc_id.clone()) {
                self.vpc_members_changed(&vpc);
            }
        }
        if released {
            let w = self.net.release_writes(std::iter::once(id.as_str()));
            self.net.apply(&w);
        }
    }

    /// Enter a live instance in its account's listing order (its creation time and id never
    /// change).
    fn index(&mut self, i: &Instance) {
        self.by_account.entry(i.account_id.clone()).or_default().insert((i.created_at, i.id.clone()));
    }

    /// Take a released instance out of its account's listing.
    fn unindex(&mut self, i: &Instance) {
        if let Some(listed) = self.by_account.get_mut(&i.account_id) {
            listed.remove(&(i.created_at, i.id.clone()));
            if listed.is_empty() {
                self.by_account.remove(&i.account_id);
            }
        }
    }

    /// How many live instances an account has.
    pub(crate) fn count_of_account(&self, account_id: &str) -> usize {
        self.by_account.get(account_id).map(|l| l.len()).unwrap_or(0)
    }

    /// An account's live instances, oldest first.
    pub(crate) fn of_account<'s>(&'s self, account_id: &str) -> impl Iterator<Item = &'s Instance> + 's {
        self.page_of_account(account_id, 0, usize::MAX)
    }

    /// `size` of an account's live instances from the `offset`-th, oldest first. The listing is
    /// skipped in the index itself: a late page looks up only its own instances (skipping after
    /// the lookup made each page cost as many lookups as instances came before it; at 10,000
    /// instances that was most of DescribeInstances' time).
    pub(crate) fn page_of_account<'s>(
        &'s self,
        account_id: &str,
        offset: usize,
        size: usize,
    ) -> impl Iterator<Item = &'s Instance> + 's {
        let listed = self.by_account.get(account_id).into_iter().flatten();
        listed.skip(offset).take(size).filter_map(|(_, id)| self.instances.get(id))
    }

    /// Forget a cleaned instance.
    pub(crate) fn forget(&mut self, id: &str) {
        if let Some(i) = self.instances.remove(id) {
            self.unindex(&i);
            if let Some(slot) = self.hosts.get_mut(&i.host_id) {
                slot.remove_instance(id);
                slot.bump();
            }
        }
        self.errors.remove(id);
    }
}

pub(crate) fn store_err(e: StoreError) -> DomainError {
    DomainError::Internal(e.to_string())
}

pub struct Parts {
    pub store: Arc<dyn Store>,
    pub catalog: Catalog,
    pub setup: RegionSetup,
    /// Where the region's blobs are kept (`<kind>/<id>`: image archives, snapshots, disks in
    /// transit); `None` for a region that holds none (only the built-in image, no transfers).
    pub blob_dir: Option<PathBuf>,
    pub clock: Arc<dyn Clock>,
    pub sealer: Sealer,
    /// What the region charges.
    pub prices: feiyun_billing::prices::PriceBook,
    /// Seed for identifiers; `None` draws one from the operating system.
    pub seed: Option<u64>,
}

impl ControlPlane {
    /// Load state from the store; the region's networks as [`NetworkSetup::default`] says.
    pub fn new(parts: Parts) -> Result<Arc<ControlPlane>, DomainError> {
        Self::with_network(parts, NetworkSetup::default())
    }

    /// Load state from the store, with the region's network configuration.
    pub fn with_network(parts: Parts, network: NetworkSetup) -> Result<Arc<ControlPlane>, DomainError> {
        network.check().map_err(|e| DomainError::Internal(format!("network configuration: {e}")))?;
        let loaded = parts.store.load().map_err(store_err)?;
        let now = parts.clock.now();
        let mut state = State {
            cluster: feiyun_scheduler::cluster::Cluster::new(),
            hosts: HashMap::new(),
            cluster_hosts: Vec::new(),
            host_names: HashMap::new(),
            net_prefixes: std::collections::BTreeSet::new(),
            join_tokens: loaded.join_tokens.into_iter().map(|t| (t.id.clone(), t)).collect(),
            instances: BTreeMap::new(),
            by_account: HashMap::new(),
            tokens: HashMap::new(),
            commands: BTreeMap::new(),
            invocations: BTreeMap::new(),
            deployment_sets: loaded.deployment_sets.into_iter().map(|d| (d.id.clone(), d)).collect(),
            open_events: loaded.open_events.into_iter().map(|e| (e.instance_id.clone(), e)).collect(),
            errors: HashMap::new(),
            net: net::NetState::from_loaded(loaded.net),
            storage: storage::StorageState::from_loaded(loaded.storage),
        };
        let mut images: BTreeMap<String, Image> = loaded.images.into_iter().map(|i| (i.id.clone(), i)).collect();
        if !images.contains_key(feiyun_domain::image::BUILTIN_IMAGE_ID) {
            let builtin = Image::builtin(now);
            parts
                .store
                .commit(&feiyun_store::WriteSet { images: std::slice::from_ref(&builtin), ..Default::default() })
                .map_err(store_err)?;
            images.insert(builtin.id.clone(), builtin);
        }
        for i in loaded.instances {
            if i.status != feiyun_domain::instance::InstanceStatus::Deleted {
                state.index(&i);
            }
            state.instances.insert(i.id.clone(), i);
        }
        let mut placed: HashMap<String, std::collections::BTreeSet<String>> = HashMap::new();
        for i in state.instances.values() {
            placed.entry(i.host_id.clone()).or_default().insert(i.id.clone());
        }
        let mut prefixes: std::collections::BTreeSet<String> =
            loaded.hosts.iter().map(|h| h.net_prefix.clone()).filter(|p| !p.is_empty()).collect();
        let mut named = Vec::new();
        for h in loaded.hosts.iter().filter(|h| h.net_prefix.is_empty()) {
            let p = net::host_prefix(&h.id, &prefixes);
            prefixes.insert(p.clone());
            named.push(feiyun_domain::host::Host { net_prefix: p, ..h.clone() });
        }
        if !named.is_empty() {
            // Hosts recorded before networks: their prefix is given once, and kept.
            parts.store.commit(&feiyun_store::WriteSet { hosts: &named, ..Default::default() }).map_err(store_err)?;
        }
        let hosts: Vec<feiyun_domain::host::Host> =
            loaded.hosts.into_iter().map(|h| named.iter().find(|n| n.id == h.id).cloned().unwrap_or(h)).collect();
        for h in hosts {
            // Every host counts as seen now: it gets the grace to come back after a restart.
            let on_it = placed.remove(&h.id).unwrap_or_default();
            hosts::admit(&mut state, &parts.catalog, h, on_it, now);
        }
        for (host, ids) in placed {
            tracing::warn!(host = %host, instances = ids.len(), "instances on a host the region does not know");
        }
        for t in loaded.tokens {
            state.remember(t);
        }
        for c in loaded.commands {
            state.commands.insert(c.id.clone(), c);
        }
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
        let cp = Arc::new(ControlPlane {
            state: RwLock::new(state),
            store: parts.store,
            catalog: parts.catalog,
            setup: parts.setup,
            network,
            images: RwLock::new(images),
            blob_dir: parts.blob_dir,
            started_at: now,
            clock: parts.clock,
            rng: Mutex::new(rng),
            sealer: parts.sealer,
            prices: parts.prices,
            keys: RwLock::new(HashMap::new()),
            nonces: Mutex::new(accounts::NonceCache::default()),
            process_tokens: Mutex::new(Vec::new()),
            billing: Mutex::new(billing::Ticker::default()),
            spot_market: Mutex::new(HashMap::new()),
            importing: RwLock::new(None),
        });
        cp.resume_storage()?;
        Ok(cp)
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub fn region(&self) -> &Region {
        &self.setup.region
    }

    /// The whole price book loaded at start.
    pub fn price_book(&self) -> &feiyun_billing::prices::PriceBook {
        &self.prices
    }

    pub fn network_setup(&self) -> &NetworkSetup {
        &self.network
    }

    pub fn billing_setup(&self) -> &BillingSetup {
        &self.setup.billing
    }

    /// The region's prices (the price book loaded at start).
    pub fn prices(&self) -> Result<&feiyun_billing::prices::RegionPrices, DomainError> {
        self.prices.region(&self.setup.region.id).map_err(|e| DomainError::Internal(e.to_string()))
    }

    pub fn now(&self) -> Instant {
        self.clock.now()
    }

    pub fn started_at(&self) -> Instant {
        self.started_at
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The end of a peer-update period (`NetworkSetup::peer_update_period`; the server calls
    /// this on that period): the hosts of VPCs whose members changed during it learn of it.
    pub fn flush_peer_updates(&self) -> Result<(), DomainError> {
        self.write().flush_peer_updates();
        Ok(())
    }

    /// Return once the store's commits up to `pos` are durable. Callers commit with
    /// `commit_ordered` under the state lock and wait here after releasing it, so one sync of
    /// the store serves every change made meanwhile (group commit). A failed sync, or a change
    /// handed over that cannot be written, is final: the store refuses every change after it,
    /// and the region must be restarted.
    fn durable(&self, pos: feiyun_store::CommitPos) -> Result<(), DomainError> {
        self.store.wait_durable(pos).map_err(|e| {
            tracing::error!(error = %e, "changes could not be made durable; restart the region");
            store_err(e)
        })
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
