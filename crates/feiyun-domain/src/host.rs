//! Hosts: the machines instances run on, and what they can offer.

use serde::{Deserialize, Serialize};

use crate::resources::Resources;

/// What the region can expect of a host right now (derived, never stored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HostState {
    /// Heartbeating and accepting new instances.
    Up,
    /// Heartbeating; the operator asked for no new instances on it.
    Draining,
    /// Missed its heartbeats for longer than the grace: no new instances; what it ran is
    /// reported impaired until it returns or is evacuated.
    Unreachable,
}

impl HostState {
    pub fn as_str(&self) -> &'static str {
        match self {
            HostState::Up => "Up",
            HostState::Draining => "Draining",
            HostState::Unreachable => "Unreachable",
        }
    }
}

/// A host as the region records it: registered by its agent with a join token.
#[derive(Debug, Clone, PartialEq)]
pub struct Host {
    pub id: String,
    /// Unique in the region (the machine's hostname by default).
    pub name: String,
    pub zone_id: String,
    /// Allocatable capacity (physical minus reserve, times the allocation ratios).
    pub capacity: Resources,
    /// GPU model the host carries, if any (e.g. "NVIDIA T4").
    pub gpu_model: Option<String>,
    /// Local disk category the host offers to instance-store types, if any.
    pub local_disk_category: Option<String>,
    /// A hollow host: it speaks the host protocol but runs nothing.
    pub simulated: bool,
    /// Bumped when the host is fenced (its instances evacuated to other hosts); work the host
    /// does under an older epoch is refused.
    pub epoch: u64,
    /// The operator asked for no new placements on it.
    pub draining: bool,
    /// SHA-256 (hex) of the host's credential secret.
    pub credential_hash: String,
    pub registered_at: crate::Instant,
    /// The short name every network object of the host carries (`[a-z][a-z0-9]{0,5}`), unique
    /// in the region; empty until one is given.
    pub net_prefix: String,
    /// Where other hosts send VPC traffic for its instances (VXLAN); `None`: the host carries
    /// no traffic to or from other hosts.
    pub underlay_ip: Option<std::net::Ipv4Addr>,
}

/// A join token: lets an agent register a host (in a zone, if it names one).
#[derive(Debug, Clone, PartialEq)]
pub struct JoinToken {
    pub id: String,
    /// SHA-256 (hex) of the token's secret.
    pub secret_hash: String,
    pub zone_id: Option<String>,
    pub created_at: crate::Instant,
    pub revoked_at: Option<crate::Instant>,
}

/// How a host's allocatable capacity is derived from its physical size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Overcommit {
    pub reserved_vcpus: u32,
    pub reserved_memory_mib: u64,
    pub cpu_allocation_ratio: f64,
    pub memory_allocation_ratio: f64,
}

impl Default for Overcommit {
    /// OpenStack Nova's defaults: 16:1 CPU, 1.5:1 memory, 512 MiB reserved for the host.
    fn default() -> Self {
        Overcommit {
            reserved_vcpus: 0,
            reserved_memory_mib: 512,
            cpu_allocation_ratio: 16.0,
            memory_allocation_ratio: 1.5,
        }
    }
}

impl Overcommit {
    pub fn allocatable(&self, physical_cpus: u32, physical_memory_mib: u64) -> (u32, u64) {
        let cpus = physical_cpus.saturating_sub(self.reserved_vcpus) as f64 * self.cpu_allocation_ratio;
        let mem = physical_memory_mib.saturating_sub(self.reserved_memory_mib) as f64 * self.memory_allocation_ratio;
        (cpus.floor() as u32, mem.floor() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nova_defaults() {
        let (c, m) = Overcommit::default().allocatable(2, 24 * 1024);
        assert_eq!(c, 32);
        assert_eq!(m, ((24 * 1024 - 512) as f64 * 1.5) as u64);
    }
}
