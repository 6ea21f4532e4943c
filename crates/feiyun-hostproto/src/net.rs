//! The desired network state of one host: plain data that travels in the host's intent. The
//! control plane derives it from the region's VPCs, vSwitches, security groups and EIPs; the
//! host's network layer (`feiyun-net`) makes the kernel match it and checks it first.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

/// A MAC address that is not six hex octets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("MAC address {0:?} is not six hex octets")]
pub struct BadMac(pub String);

/// Everything one host must have. `apply` converges the kernel to it from any state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostNetSpec {
    /// Short per-host name prefix carried by every namespace, host-side link and nftables table
    /// this crate creates: 1-6 characters, `[a-z][a-z0-9]*`, unique among the hosts (agents)
    /// sharing one machine.
    pub prefix: String,
    /// This host's address on the underlay network: the VXLAN source address.
    pub underlay_ip: Ipv4Addr,
    /// MTU of instance interfaces and VXLAN devices (underlay MTU minus 50 bytes of VXLAN
    /// overhead at most).
    #[serde(default = "default_mtu")]
    pub mtu: u32,
    /// Where instance metadata requests go; `None` leaves 100.100.100.200 unplumbed.
    #[serde(default)]
    pub metadata: Option<MetadataTarget>,
    #[serde(default)]
    pub vpcs: Vec<VpcSpec>,
}

fn default_mtu() -> u32 {
    1450
}

/// The metadata server the agent runs in the host namespace. It must accept connections on
/// `port` at every VPC's transit host address (binding 0.0.0.0 does). The local address of an
/// accepted connection names the VPC; its peer address is the instance's private IP: see
/// [`HostNetSpec::metadata_caller`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataTarget {
    pub port: u16,
}

/// One VPC's presence on this host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VpcSpec {
    pub vpc_id: String,
    /// VXLAN network identifier, unique in the region (1..2^24).
    pub vni: u32,
    pub cidr: Ipv4Net,
    /// The point-to-point link between this host and the VPC's router namespace.
    pub transit: TransitLink,
    pub vswitches: Vec<VSwitchSpec>,
    /// Instances of this VPC on this host.
    #[serde(default)]
    pub ports: Vec<PortSpec>,
    /// Instances of this VPC on other hosts.
    #[serde(default)]
    pub remote_ports: Vec<RemotePort>,
    /// Every group a local port belongs to or a rule references.
    #[serde(default)]
    pub security_groups: Vec<SecurityGroupSpec>,
}

/// Addresses of the host ↔ router link, unique per VPC on this host (a /30 or /31 out of a
/// range the instances never use, such as 100.64.0.0/10). The host end doubles as the VPC's
/// metadata address; the router end is the source of SNAT for instances without an EIP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransitLink {
    pub host: Ipv4Addr,
    pub router: Ipv4Addr,
    pub prefix_len: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VSwitchSpec {
    pub vswitch_id: String,
    pub cidr: Ipv4Net,
    /// The default gateway instances see; by convention the third-to-last address of the CIDR
    /// (one of the three Alibaba reserves at the top of every vSwitch).
    pub gateway: Ipv4Addr,
}

/// An instance interface on this host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortSpec {
    pub instance_id: String,
    pub vswitch_id: String,
    pub mac: MacAddr,
    pub ip: Ipv4Addr,
    pub security_group_ids: Vec<String>,
    /// `InternetMaxBandwidthOut` in Mbit/s: a cap on traffic leaving for the outside.
    #[serde(default)]
    pub egress_mbps: Option<u32>,
    #[serde(default)]
    pub eip: Option<Ipv4Addr>,
}

/// An instance of the same VPC on another host, reached through VXLAN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemotePort {
    pub ip: Ipv4Addr,
    pub underlay_ip: Ipv4Addr,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityGroupSpec {
    pub id: String,
    pub kind: GroupKind,
    pub inner_access: InnerAccessPolicy,
    /// Private IPs of every member instance, on any host.
    #[serde(default)]
    pub members: Vec<Ipv4Addr>,
    #[serde(default)]
    pub rules: Vec<SgRule>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum GroupKind {
    Basic,
    Enterprise,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum InnerAccessPolicy {
    Accept,
    Drop,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SgRule {
    pub direction: Direction,
    pub policy: Policy,
    /// 1 (first) to 100 (last).
    pub priority: u8,
    pub protocol: Protocol,
    /// Destination ports, inclusive; `None` means all (and is required for icmp and all).
    #[serde(default)]
    pub ports: Option<(u16, u16)>,
    /// The source of ingress traffic or the destination of egress traffic.
    pub peer: Peer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Direction {
    Ingress,
    Egress,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Policy {
    /// Listed first so that, sorted, drop wins ties at equal priority.
    Drop,
    Accept,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Protocol {
    Tcp,
    Udp,
    Icmp,
    All,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Peer {
    Cidr(Ipv4Net),
    /// Members of another (or the same) security group.
    Group(String),
}

/// A MAC address, written `02:00:00:aa:bb:cc` on the wire.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(f, "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3], b[4], b[5])
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for MacAddr {
    type Err = BadMac;
    fn from_str(s: &str) -> Result<MacAddr, BadMac> {
        let bad = || BadMac(s.to_string());
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for byte in out.iter_mut() {
            let part = parts.next().ok_or_else(bad)?;
            if part.len() != 2 {
                return Err(bad());
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| bad())?;
        }
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(MacAddr(out))
    }
}

impl Serialize for MacAddr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MacAddr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<MacAddr, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl HostNetSpec {
    /// Which instance asked the metadata server: the connection's local address (a VPC's transit
    /// host address) and its peer address (the instance's private IP) → (VPC id, instance id).
    pub fn metadata_caller(&self, local: Ipv4Addr, peer: Ipv4Addr) -> Option<(&str, &str)> {
        let vpc = self.vpcs.iter().find(|v| v.transit.host == local)?;
        let port = vpc.ports.iter().find(|p| p.ip == peer)?;
        Some((&vpc.vpc_id, &port.instance_id))
    }

    pub fn vpc_of_instance(&self, instance_id: &str) -> Option<(&VpcSpec, &PortSpec)> {
        self.vpcs.iter().find_map(|v| v.ports.iter().find(|p| p.instance_id == instance_id).map(|p| (v, p)))
    }
}
