//! What this machine is: its CPUs, memory and name, and the capacity it offers the region.

use feiyun_domain::host::Overcommit;
use feiyun_domain::Resources;

/// CPUs this process may use.
pub fn cpus() -> u32 {
    std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(1)
}

/// Physical memory in MiB (from /proc/meminfo).
pub fn memory_mib() -> u64 {
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

/// The address this machine's kernel would send from to reach `to`: the local address of a
/// connected UDP socket (connecting one sends nothing).
pub fn source_address(to: std::net::SocketAddr) -> std::io::Result<std::net::IpAddr> {
    let any: std::net::SocketAddr = if to.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = std::net::UdpSocket::bind(any)?;
    socket.connect(to)?;
    Ok(socket.local_addr()?.ip())
}

/// The machine's hostname.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "local".into())
}

/// Allocatable capacity: physical CPUs and memory (this machine's unless given) minus the
/// reserve, times the allocation ratios; GPUs and local disk as configured.
pub fn capacity(
    o: &Overcommit,
    cpus_: Option<u32>,
    memory_mib_: Option<u64>,
    gpus: u32,
    local_disk_gib: u64,
) -> Resources {
    let (vcpus, memory_mib) = o.allocatable(cpus_.unwrap_or_else(cpus), memory_mib_.unwrap_or_else(memory_mib));
    Resources { vcpus, memory_mib, gpus, local_disk_gib }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_source_towards_loopback_is_loopback() {
        let to = std::net::SocketAddr::from(([127, 0, 0, 1], 9));
        assert_eq!(source_address(to).expect("route"), std::net::IpAddr::from([127, 0, 0, 1]));
    }

    #[test]
    fn this_machine_offers_something() {
        assert!(cpus() >= 1);
        assert!(memory_mib() >= 64);
        assert!(!hostname().is_empty());
        let c = capacity(&Overcommit::default(), Some(2), Some(24 * 1024), 0, 0);
        assert_eq!(c.vcpus, 32);
    }
}
