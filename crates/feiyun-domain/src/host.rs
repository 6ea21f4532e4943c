//! Hosts: the machines instances run on, and what they can offer.

use serde::{Deserialize, Serialize};

use crate::resources::Resources;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HostState {
    /// Accepting new instances.
    Up,
    /// Running what it has, accepting nothing new.
    Disabled,
    /// Not reachable.
    Down,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Host {
    pub id: String,
    pub zone_id: String,
    /// Allocatable capacity (physical minus reserve, times the allocation ratios).
    pub capacity: Resources,
    /// GPU model the host carries, if any (e.g. "NVIDIA T4").
    pub gpu_model: Option<String>,
    /// Local disk category the host offers to instance-store types, if any.
    pub local_disk_category: Option<String>,
    pub state: HostState,
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
