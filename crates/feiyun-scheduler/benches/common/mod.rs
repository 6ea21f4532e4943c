//! A realistic mix for the scheduler benchmarks: hosts of 96 vCPUs / 384 GiB, and the g7, c7 and
//! r7 sizes from large to 8xlarge plus small burstable types, drawn with fixed weights from a
//! seeded generator.

use feiyun_scheduler::cluster::{Ask, Cluster, Demand, HostId, Policy, Shape};

pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

pub fn host_shape() -> Shape {
    Shape {
        capacity: Demand { cpu_milli: 96_000, mem_mib: 384 * 1024, gpu_milli: 0, disk_gib: 0 },
        zone: "z1".into(),
        gpu_model: None,
        disk_category: None,
    }
}

/// (vCPUs, GiB, weight)
const MIX: &[(u64, u64, u64)] = &[
    (1, 1, 10),
    (2, 2, 8),
    (2, 4, 10),
    (2, 8, 12),
    (2, 16, 5),
    (4, 8, 8),
    (4, 16, 12),
    (4, 32, 5),
    (8, 16, 5),
    (8, 32, 8),
    (8, 64, 3),
    (16, 32, 3),
    (16, 64, 4),
    (16, 128, 2),
    (32, 64, 1),
    (32, 128, 2),
    (32, 256, 1),
];

pub fn draw(rng: &mut Rng) -> Demand {
    let total: u64 = MIX.iter().map(|m| m.2).sum();
    let mut x = rng.below(total);
    for (c, g, w) in MIX {
        if x < *w {
            return Demand { cpu_milli: c * 1000, mem_mib: g * 1024, gpu_milli: 0, disk_gib: 0 };
        }
        x -= w;
    }
    Demand { cpu_milli: 1000, mem_mib: 1024, gpu_milli: 0, disk_gib: 0 }
}

/// A cluster of `hosts` hosts filled with random instances until `fill` of its vCPUs are used.
pub fn filled(hosts: usize, fill: f64, policy: Policy, rng: &mut Rng) -> (Cluster, Vec<(HostId, Demand)>) {
    let mut c = Cluster::new();
    for _ in 0..hosts {
        c.add_host(host_shape());
    }
    let target = (hosts as f64 * 96_000.0 * fill) as u64;
    let mut used = 0;
    let mut live = Vec::new();
    let mut misses = 0;
    while used < target && misses < 1000 {
        let d = draw(rng);
        match c.place(&Ask::new(d, policy), 1, 1) {
            Ok(h) => {
                used += d.cpu_milli;
                live.push((h[0], d));
            }
            Err(_) => misses += 1,
        }
    }
    (c, live)
}
