//! The host side of VPC networking.
//!
//! Owns making one host's kernel match a desired network state ([`HostNetSpec`]): a router
//! network namespace per VPC (no VRF needed), a named network namespace per instance with its
//! `eth0`, a transit link from each router to the host, VXLAN between hosts with forwarding
//! entries pushed from the desired state (no learning, no flooding), security groups, EIP 1:1
//! NAT and SNAT in nftables (one transaction per VPC per change), egress caps with tc, public
//! traffic counters and the plumbing that brings `100.100.100.200` to the agent's metadata
//! server. [`HostNet::apply`] converges from any state, including a crash half-way through an
//! earlier apply; [`HostNet::teardown`] removes everything of a host prefix.
//!
//! Must not: know accounts, the API or the store, or decide what should exist — the control
//! plane does, and the agent hands the result over. See `docs/networking.md`.
#![forbid(unsafe_code)]

pub mod error;
mod host;
pub mod names;
pub mod nft;
pub mod nl;
pub mod ns;
mod router;
pub mod sg;
pub mod spec;
mod steps;
mod tc;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

pub use error::{NetError, Result};
pub use ns::Netns;
pub use spec::*;
pub use steps::ApplyReport;

use steps::Steps;

/// Path of an instance's network namespace: what the runtime joins
/// (`feiyun_runtime::RuntimeSpec::netns`).
pub fn instance_netns_path(prefix: &str, instance_id: &str) -> PathBuf {
    ns::netns_path(&names::instance_ns(prefix, instance_id))
}

/// Public traffic of one instance, counted at its router since the router's table was created
/// (a teardown starts from zero again: read it as an absolute counter that may reset).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicCounters {
    pub vpc_id: String,
    pub instance_id: String,
    pub eip: Option<Ipv4Addr>,
    pub in_packets: u64,
    pub in_bytes: u64,
    pub out_packets: u64,
    pub out_bytes: u64,
}

/// The networking of one host, acting on a given "host" network namespace (where the underlay
/// address lives and EIPs are routed). Calls block; run them off an async executor. Calls for
/// one prefix must not overlap: the agent serializes them.
#[derive(Debug)]
pub struct HostNet {
    host: Netns,
    /// What this process last wrote into each router's table (by router namespace name).
    known: Mutex<BTreeMap<String, nft::Existing>>,
    /// The host table's batch this process applied last.
    host_batch: Mutex<Option<String>>,
}

impl HostNet {
    /// Acts on the calling thread's network namespace.
    pub fn current() -> Result<HostNet> {
        Ok(HostNet { host: Netns::current()?, known: Mutex::default(), host_batch: Mutex::default() })
    }

    /// Acts on the namespace at `path` (tests run several hosts on one machine this way).
    pub fn at(path: &Path) -> Result<HostNet> {
        Ok(HostNet { host: Netns::open(path)?, known: Mutex::default(), host_batch: Mutex::default() })
    }

    /// Makes the kernel match `spec`, removing whatever carries its prefix and is not in it.
    pub fn apply(&self, spec: &HostNetSpec) -> Result<ApplyReport> {
        self.apply_inner(spec, None)
    }

    /// [`HostNet::apply`] that stops with [`NetError::Injected`] right after its `n`th change,
    /// leaving the host as a crash at that point would. For tests of convergence.
    #[doc(hidden)]
    pub fn apply_failing_after(&self, spec: &HostNetSpec, n: usize) -> Result<ApplyReport> {
        self.apply_inner(spec, Some(n))
    }

    fn apply_inner(&self, spec: &HostNetSpec, fail_after: Option<usize>) -> Result<ApplyReport> {
        let start = Instant::now();
        spec.validate()?;
        let steps = Steps::new(fail_after);
        let swept = host::sweep(&self.host, &spec.prefix, Some(spec), &steps);
        if swept.is_err() || !steps.changes().is_empty() {
            // A router namespace may have gone: forget what was written into any.
            if let Ok(mut known) = self.known.lock() {
                known.clear();
            }
        }
        swept?;
        let mut firewall_commands = 0;
        for vpc in &spec.vpcs {
            let v = router::Vpc { host_ns: &self.host, spec, vpc, steps: &steps, known: &self.known };
            firewall_commands += v.apply()?;
        }
        firewall_commands += host::apply_host(&self.host, spec, &steps, &self.host_batch)?;
        Ok(ApplyReport { changes: steps.changes(), firewall_commands, elapsed: start.elapsed() })
    }

    /// Forgets what this process wrote into nftables, so that the next `apply` looks at the
    /// kernel again and rewrites every table. Without it, a table whose batch would be exactly
    /// the one this process sent last is not sent again; a table changed by someone else since
    /// is then only repaired after `forget` (the agent calls it before each periodic refresh).
    pub fn forget(&self) {
        if let Ok(mut known) = self.known.lock() {
            known.clear();
        }
        if let Ok(mut sent) = self.host_batch.lock() {
            *sent = None;
        }
    }

    /// Removes every namespace, link, rule, route, nftables table and qdisc of `prefix`.
    pub fn teardown(&self, prefix: &str) -> Result<()> {
        names::check_prefix(prefix)?;
        self.forget();
        host::sweep(&self.host, prefix, None, &Steps::new(None))
    }

    /// Public traffic counters of every instance port in `spec`.
    pub fn counters(&self, spec: &HostNetSpec) -> Result<Vec<PublicCounters>> {
        let mut out = Vec::new();
        for vpc in &spec.vpcs {
            let router = Netns::open_named(&names::router_ns(&spec.prefix, vpc.vni))?;
            let all = router.run(|| nft::counters(names::ROUTER_TABLE))??;
            for p in &vpc.ports {
                let (cin, cout) = nft::counter_names(&names::port_if(&p.instance_id));
                let (in_packets, in_bytes) = all.get(&cin).copied().unwrap_or_default();
                let (out_packets, out_bytes) = all.get(&cout).copied().unwrap_or_default();
                out.push(PublicCounters {
                    vpc_id: vpc.vpc_id.clone(),
                    instance_id: p.instance_id.clone(),
                    eip: p.eip,
                    in_packets,
                    in_bytes,
                    out_packets,
                    out_bytes,
                });
            }
        }
        Ok(out)
    }

    pub fn host_netns(&self) -> &Netns {
        &self.host
    }
}
