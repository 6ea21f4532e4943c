//! Resource vectors: what an instance needs and what a host offers.

use serde::{Deserialize, Serialize};

/// An amount of every schedulable resource dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Resources {
    /// Virtual CPUs.
    pub vcpus: u32,
    /// Memory in MiB.
    pub memory_mib: u64,
    /// Whole GPUs.
    pub gpus: u32,
    /// Local (instance-store) disk capacity in GiB.
    pub local_disk_gib: u64,
}

impl Resources {
    pub const ZERO: Resources = Resources { vcpus: 0, memory_mib: 0, gpus: 0, local_disk_gib: 0 };

    pub fn fits_in(&self, free: &Resources) -> bool {
        self.vcpus <= free.vcpus
            && self.memory_mib <= free.memory_mib
            && self.gpus <= free.gpus
            && self.local_disk_gib <= free.local_disk_gib
    }

    pub fn saturating_sub(&self, o: &Resources) -> Resources {
        Resources {
            vcpus: self.vcpus.saturating_sub(o.vcpus),
            memory_mib: self.memory_mib.saturating_sub(o.memory_mib),
            gpus: self.gpus.saturating_sub(o.gpus),
            local_disk_gib: self.local_disk_gib.saturating_sub(o.local_disk_gib),
        }
    }

    pub fn add(&self, o: &Resources) -> Resources {
        Resources {
            vcpus: self.vcpus + o.vcpus,
            memory_mib: self.memory_mib + o.memory_mib,
            gpus: self.gpus + o.gpus,
            local_disk_gib: self.local_disk_gib + o.local_disk_gib,
        }
    }

    pub fn times(&self, n: u32) -> Resources {
        Resources {
            vcpus: self.vcpus * n,
            memory_mib: self.memory_mib * n as u64,
            gpus: self.gpus * n,
            local_disk_gib: self.local_disk_gib * n as u64,
        }
    }
}
