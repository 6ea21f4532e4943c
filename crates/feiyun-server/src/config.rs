//! The region configuration file (TOML). Every field has a default: with no file, the region is
//! one zone with this machine as its only host.

use std::path::Path;

use feiyun_domain::host::Overcommit;
use feiyun_domain::region::{Region, Zone};
use feiyun_domain::Resources;
use feiyun_scheduler::cluster::Policy;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub region: RegionConfig,
    pub host: HostConfig,
    pub hosts: HostsConfig,
    pub api: ApiConfig,
    pub instances: InstanceConfig,
    pub scheduler: SchedulerConfig,
    pub billing: BillingConfig,
    pub network: NetworkConfig,
    pub images: ImagesConfig,
    /// Path of an instance-type catalog replacing the built-in one.
    pub catalog: Option<String>,
    /// Path of a price book replacing the built-in one (catalog/prices.toml).
    pub prices: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegionConfig {
    pub id: String,
    pub name: String,
    pub zones: Vec<ZoneConfig>,
}

impl Default for RegionConfig {
    fn default() -> Self {
        RegionConfig {
            id: "cn-local".into(),
            name: "Feiyun local region".into(),
            zones: vec![ZoneConfig { id: "cn-local-a".into(), name: "Local zone A".into() }],
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneConfig {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HostConfig {
    /// Host id; defaults to `host-<machine hostname>`.
    pub id: Option<String>,
    /// Zone of this host; defaults to the region's first zone.
    pub zone: Option<String>,
    /// Physical CPUs; defaults to what this machine has.
    pub cpus: Option<u32>,
    /// Physical memory in MiB; defaults to what this machine has.
    pub memory_mib: Option<u64>,
    pub reserved_cpus: u32,
    pub reserved_memory_mib: u64,
    pub cpu_allocation_ratio: f64,
    pub memory_allocation_ratio: f64,
    pub gpus: u32,
    pub gpu_model: Option<String>,
    pub local_disk_category: Option<String>,
    pub local_disk_gib: u64,
}

impl Default for HostConfig {
    fn default() -> Self {
        let o = Overcommit::default();
        HostConfig {
            id: None,
            zone: None,
            cpus: None,
            memory_mib: None,
            reserved_cpus: o.reserved_vcpus,
            reserved_memory_mib: o.reserved_memory_mib,
            cpu_allocation_ratio: o.cpu_allocation_ratio,
            memory_allocation_ratio: o.memory_allocation_ratio,
            gpus: 0,
            gpu_model: None,
            local_disk_category: None,
            local_disk_gib: 0,
        }
    }
}

/// How the region watches its hosts, in seconds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HostsConfig {
    /// How often hosts heartbeat.
    pub heartbeat_seconds: u64,
    /// Silence after which a host is unreachable (40, as Kubernetes' node lease).
    pub grace_seconds: u64,
    /// Evacuate a host automatically once it has been unreachable this long; unset (the default)
    /// leaves evacuation to the operator (`feiyun host evacuate`).
    pub evacuate_after_seconds: Option<u64>,
    /// Instances re-created per second while evacuating.
    pub evacuate_per_second: usize,
}

impl Default for HostsConfig {
    fn default() -> Self {
        let d = feiyun_control::HostsSetup::default();
        HostsConfig {
            heartbeat_seconds: d.heartbeat.as_secs(),
            grace_seconds: d.grace.as_secs(),
            evacuate_after_seconds: None,
            evacuate_per_second: d.evacuation.per_tick,
        }
    }
}

/// The host of a one-machine region (`feiyun up` without `--no-local-host`), as it registers.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalHost {
    pub name: String,
    pub zone: String,
    pub capacity: Resources,
    pub gpu_model: Option<String>,
    pub local_disk_category: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Sustained requests per second allowed per access key.
    pub requests_per_second: f64,
    /// Burst size of the per-key token bucket.
    pub burst: f64,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig { requests_per_second: 5000.0, burst: 10000.0, max_body_bytes: 512 * 1024 }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InstanceConfig {
    /// Seconds a polite stop may take before the instance is killed.
    pub stop_grace_seconds: u64,
}

impl Default for InstanceConfig {
    fn default() -> Self {
        InstanceConfig { stop_grace_seconds: 5 }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchedulerConfig {
    /// `pack` (Feiyun's default: fewest hosts), `spread` (emptiest host first), or a named policy:
    /// first-fit, best-fit, worst-fit, least-allocated, nomad-binpack.
    pub policy: String,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig { policy: "pack".into() }
    }
}

/// Settlement, arrears, expiry and spot market timings, in seconds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BillingConfig {
    /// Pay-as-you-go usage is settled against balances every this many seconds (an hour).
    pub settle_every_seconds: u64,
    /// An account in arrears this long has its pay-as-you-go and spot instances stopped.
    pub arrears_stop_after_seconds: u64,
    /// Stopped for arrears this long: released.
    pub arrears_release_after_seconds: u64,
    /// An expired, unrenewed subscription is released this long after expiry.
    pub expired_release_after_seconds: u64,
    /// The spot market is repriced this often.
    pub market_every_seconds: u64,
    /// Notice a reclaimed spot instance gets before it goes.
    pub spot_notice_seconds: u64,
}

impl Default for BillingConfig {
    fn default() -> Self {
        let d = feiyun_control::BillingSetup::default();
        BillingConfig {
            settle_every_seconds: d.settle_every.as_secs(),
            arrears_stop_after_seconds: d.arrears_stop_after.as_secs(),
            arrears_release_after_seconds: d.arrears_release_after.as_secs(),
            expired_release_after_seconds: d.expired_release_after.as_secs(),
            market_every_seconds: d.market_every.as_secs(),
            spot_notice_seconds: d.spot_notice.as_secs(),
        }
    }
}

impl BillingConfig {
    pub fn setup(&self) -> feiyun_control::BillingSetup {
        use std::time::Duration;
        feiyun_control::BillingSetup {
            settle_every: Duration::from_secs(self.settle_every_seconds),
            arrears_stop_after: Duration::from_secs(self.arrears_stop_after_seconds),
            arrears_release_after: Duration::from_secs(self.arrears_release_after_seconds),
            expired_release_after: Duration::from_secs(self.expired_release_after_seconds),
            market_every: Duration::from_secs(self.market_every_seconds),
            spot_notice: Duration::from_secs(self.spot_notice_seconds),
        }
    }

    /// How often the billing loop runs: often enough for the shortest timing.
    pub fn tick(&self) -> std::time::Duration {
        let shortest = [self.settle_every_seconds, self.market_every_seconds, self.spot_notice_seconds, 5]
            .into_iter()
            .min()
            .unwrap_or(5)
            .max(1);
        std::time::Duration::from_secs(shortest)
    }
}

/// The region's networks (see docs/networking.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkConfig {
    /// Where elastic IP addresses and instances' public addresses come from, e.g.
    /// `"203.0.113.0/28"`; unset: the region gives none.
    pub eip_pool: Option<String>,
    /// The host ↔ VPC router links: a /30 per VPC, derived from its VNI; also bounds the number
    /// of VPCs (a /11 holds 524,287).
    pub transit: String,
    /// The port of the metadata server on every host.
    pub metadata_port: u16,
    /// MTU of instance interfaces: the underlay's minus VXLAN's 50 bytes.
    pub mtu: u32,
    /// Seconds a new VPC or vSwitch stays Pending.
    pub provisioning_seconds: u64,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        let d = feiyun_control::NetworkSetup::default();
        NetworkConfig {
            eip_pool: None,
            transit: d.transit.to_string(),
            metadata_port: d.metadata_port,
            mtu: d.mtu,
            provisioning_seconds: d.provisioning.as_secs(),
        }
    }
}

impl NetworkConfig {
    pub fn setup(&self) -> Result<feiyun_control::NetworkSetup, String> {
        let block = |what: &str, v: &str| {
            feiyun_domain::net::cidr::parse_cidr(v).ok_or_else(|| format!("network.{what} {v:?} is not a CIDR block"))
        };
        let s = feiyun_control::NetworkSetup {
            eip_pool: self.eip_pool.as_deref().map(|p| block("eip_pool", p)).transpose()?,
            transit: block("transit", &self.transit)?,
            metadata_port: self.metadata_port,
            mtu: self.mtu,
            provisioning: std::time::Duration::from_secs(self.provisioning_seconds),
            ..feiyun_control::NetworkSetup::default()
        };
        s.check().map_err(|e| format!("network: {e}"))?;
        Ok(s)
    }
}

/// Images accounts bring (see docs/storage.md).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ImagesConfig {
    /// The directory ImportImage takes files from (`DiskDeviceMapping.1.OSSObject` names a file
    /// inside it, `DiskDeviceMapping.1.OSSBucket` a directory of it); unset: no imports.
    pub import_dir: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("Cannot read {0}: {1}")]
    Read(String, std::io::Error),
    #[error("Configuration {0} is invalid: {1}")]
    Invalid(String, String),
}

impl Config {
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let Some(path) = path else {
            return Ok(Config::default());
        };
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read(name.clone(), e))?;
        let c: Config = toml::from_str(&text).map_err(|e| ConfigError::Invalid(name.clone(), e.to_string()))?;
        c.validate().map_err(|e| ConfigError::Invalid(name, e))?;
        Ok(c)
    }

    fn validate(&self) -> Result<(), String> {
        if self.region.id.is_empty() || self.region.zones.is_empty() {
            return Err("a region needs an id and at least one zone".into());
        }
        if let Some(z) = &self.host.zone {
            if !self.region.zones.iter().any(|x| &x.id == z) {
                return Err(format!("host zone {z} is not a zone of the region"));
            }
        }
        if self.host.cpu_allocation_ratio <= 0.0 || self.host.memory_allocation_ratio <= 0.0 {
            return Err("allocation ratios must be positive".into());
        }
        if self.host.gpus > 0 && self.host.gpu_model.is_none() {
            return Err("a host with GPUs needs gpu_model".into());
        }
        if Policy::parse(&self.scheduler.policy).is_none() {
            return Err(format!("unknown scheduler policy {:?}", self.scheduler.policy));
        }
        if self.billing.settle_every_seconds == 0 || self.billing.market_every_seconds == 0 {
            return Err("billing.settle_every_seconds and billing.market_every_seconds must be positive".into());
        }
        if self.hosts.heartbeat_seconds == 0 || self.hosts.grace_seconds <= self.hosts.heartbeat_seconds {
            return Err("hosts.grace_seconds must be longer than hosts.heartbeat_seconds (and both positive)".into());
        }
        if self.hosts.evacuate_per_second == 0 {
            return Err("hosts.evacuate_per_second must be positive".into());
        }
        if self.api.requests_per_second <= 0.0 || self.api.burst < 1.0 {
            return Err("api rate limits must be positive".into());
        }
        self.network.setup()?;
        if let Some(d) = &self.images.import_dir {
            if d.is_empty() || !Path::new(d).is_absolute() {
                return Err(format!("images.import_dir {d:?} must be an absolute path"));
            }
        }
        Ok(())
    }

    pub fn scheduler_policy(&self) -> Result<Policy, ConfigError> {
        Policy::parse(&self.scheduler.policy)
            .ok_or_else(|| ConfigError::Invalid("scheduler.policy".into(), self.scheduler.policy.clone()))
    }

    pub fn hosts_setup(&self) -> feiyun_control::HostsSetup {
        use std::time::Duration;
        feiyun_control::HostsSetup {
            heartbeat: Duration::from_secs(self.hosts.heartbeat_seconds),
            grace: Duration::from_secs(self.hosts.grace_seconds),
            evacuation: feiyun_control::EvacuationPolicy {
                automatic_after: self.hosts.evacuate_after_seconds.map(Duration::from_secs),
                per_tick: self.hosts.evacuate_per_second,
            },
        }
    }

    pub fn region(&self) -> Region {
        Region {
            id: self.region.id.clone(),
            local_name: self.region.name.clone(),
            zones: self.region.zones.iter().map(|z| Zone { id: z.id.clone(), local_name: z.name.clone() }).collect(),
        }
    }

    /// This machine as a host, its capacity derived from its real size unless configured.
    pub fn local_host(&self) -> LocalHost {
        let h = &self.host;
        let cpus = h.cpus.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(1));
        let mem = h.memory_mib.unwrap_or_else(physical_memory_mib);
        let o = Overcommit {
            reserved_vcpus: h.reserved_cpus,
            reserved_memory_mib: h.reserved_memory_mib,
            cpu_allocation_ratio: h.cpu_allocation_ratio,
            memory_allocation_ratio: h.memory_allocation_ratio,
        };
        let (vcpus, memory_mib) = o.allocatable(cpus, mem);
        let machine = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_else(|_| "local".into());
        LocalHost {
            name: h.id.clone().unwrap_or_else(|| format!("host-{}", machine.trim())),
            zone: h.zone.clone().unwrap_or_else(|| self.region.zones[0].id.clone()),
            capacity: Resources { vcpus, memory_mib, gpus: h.gpus, local_disk_gib: h.local_disk_gib },
            gpu_model: h.gpu_model.clone(),
            local_disk_category: h.local_disk_category.clone(),
        }
    }
}

fn physical_memory_mib() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| kb / 1024)
        .unwrap_or(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_describe_this_machine() {
        let c = Config::default();
        let h = c.local_host();
        assert_eq!(h.zone, "cn-local-a");
        assert!(h.capacity.vcpus >= 16);
    }

    #[test]
    fn rejects_bad_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "[host]\nzone = \"nowhere\"\n").expect("write");
        assert!(matches!(Config::load(Some(&p)), Err(ConfigError::Invalid(..))));
        std::fs::write(&p, "[host]\nunknown = 1\n").expect("write");
        assert!(matches!(Config::load(Some(&p)), Err(ConfigError::Invalid(..))));
        std::fs::write(&p, "[host]\ncpus = 4\ncpu_allocation_ratio = 2.0\n").expect("write");
        assert_eq!(Config::load(Some(&p)).expect("valid").local_host().capacity.vcpus, 8);
    }

    #[test]
    fn images_section() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "[images]\nimport_dir = \"/srv/imports\"\n").expect("write");
        assert_eq!(Config::load(Some(&p)).expect("valid").images.import_dir.as_deref(), Some("/srv/imports"));
        std::fs::write(&p, "[images]\nimport_dir = \"imports\"\n").expect("write");
        assert!(matches!(Config::load(Some(&p)), Err(ConfigError::Invalid(..))), "relative");
        assert_eq!(Config::default().images.import_dir, None);
    }

    #[test]
    fn network_section() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "[network]\neip_pool = \"203.0.113.0/28\"\nmetadata_port = 9000\n").expect("write");
        let n = Config::load(Some(&p)).expect("valid").network.setup().expect("setup");
        assert_eq!(n.eip_pool.map(|e| e.to_string()).as_deref(), Some("203.0.113.0/28"));
        assert_eq!(n.metadata_port, 9000);
        assert_eq!(n.transit.to_string(), "100.64.0.0/11");
        for bad in [
            "eip_pool = \"203.0.113.1/28\"",
            "eip_pool = \"100.64.0.0/28\"",
            "transit = \"100.96.0.0/11\"",
            "mtu = 100",
        ] {
            std::fs::write(&p, format!("[network]\n{bad}\n")).expect("write");
            assert!(matches!(Config::load(Some(&p)), Err(ConfigError::Invalid(..))), "{bad}");
        }
    }
}
