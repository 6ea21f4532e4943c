//! The desired network state of one host: plain data, serializable so that it can travel in the
//! host protocol as JSON. The control plane derives it from the region's VPCs, vSwitches, security
//! groups and EIPs; this crate only makes the kernel match it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::error::{NetError, Result};

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
    type Err = NetError;
    fn from_str(s: &str) -> Result<MacAddr> {
        let bad = || NetError::Invalid(format!("MAC address {s:?} is not six hex octets"));
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

fn invalid(msg: String) -> NetError {
    NetError::Invalid(msg)
}

/// Ids become parts of file and object names: keep them to a safe alphabet.
fn check_id(what: &str, id: &str) -> Result<()> {
    let ok =
        !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(invalid(format!("{what} {id:?} must be 1-64 characters of [A-Za-z0-9_-]")))
    }
}

impl HostNetSpec {
    /// Checks everything `apply` relies on, so that a bad desired state fails before any change.
    pub fn validate(&self) -> Result<()> {
        crate::names::check_prefix(&self.prefix)?;
        if !(576..=9000).contains(&self.mtu) {
            return Err(invalid(format!("MTU {} is out of range 576-9000", self.mtu)));
        }
        let mut vnis = BTreeSet::new();
        let mut transit_addrs = BTreeSet::new();
        let mut instances = BTreeSet::new();
        let mut eips = BTreeSet::new();
        for vpc in &self.vpcs {
            check_id("VPC id", &vpc.vpc_id)?;
            if vpc.vni == 0 || vpc.vni >= 1 << 24 {
                return Err(invalid(format!("VNI {} of {} is out of range", vpc.vni, vpc.vpc_id)));
            }
            if !vnis.insert(vpc.vni) {
                return Err(invalid(format!("VNI {} is used twice", vpc.vni)));
            }
            let t = vpc.transit;
            let net = Ipv4Net::new(t.host, t.prefix_len)
                .map_err(|_| invalid(format!("bad transit prefix of {}", vpc.vpc_id)))?;
            if t.prefix_len < 24 || !net.contains(&t.router) || t.host == t.router {
                return Err(invalid(format!("transit link of {} must be two addresses of one /24../31", vpc.vpc_id)));
            }
            for a in [t.host, t.router] {
                if !transit_addrs.insert(a) {
                    return Err(invalid(format!("transit address {a} is used twice")));
                }
            }
            vpc.validate(&mut instances, &mut eips)?;
        }
        Ok(())
    }

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

impl VpcSpec {
    fn validate(&self, instances: &mut BTreeSet<String>, eips: &mut BTreeSet<Ipv4Addr>) -> Result<()> {
        let id = &self.vpc_id;
        let mut vswitches = BTreeMap::new();
        for vs in &self.vswitches {
            check_id("vSwitch id", &vs.vswitch_id)?;
            if !contains_net(&self.cidr, &vs.cidr) {
                return Err(invalid(format!("vSwitch {} is outside VPC {id}", vs.vswitch_id)));
            }
            if !usable(&vs.cidr, vs.gateway) {
                return Err(invalid(format!("gateway of vSwitch {} is not a host address of it", vs.vswitch_id)));
            }
            vswitches.insert(vs.vswitch_id.as_str(), vs);
        }
        let groups: BTreeMap<&str, &SecurityGroupSpec> =
            self.security_groups.iter().map(|g| (g.id.as_str(), g)).collect();
        for g in &self.security_groups {
            check_id("security group id", &g.id)?;
            for r in &g.rules {
                r.validate(&g.id)?;
                if let Peer::Group(other) = &r.peer {
                    if !groups.contains_key(other.as_str()) {
                        return Err(invalid(format!("rule of {} references unknown group {other}", g.id)));
                    }
                }
            }
        }
        let mut ips = BTreeSet::new();
        let mut names = BTreeSet::new();
        for p in &self.ports {
            check_id("instance id", &p.instance_id)?;
            if !instances.insert(p.instance_id.clone()) {
                return Err(invalid(format!("instance {} has two ports", p.instance_id)));
            }
            if !names.insert(crate::names::port_if(&p.instance_id)) {
                return Err(invalid(format!("instance {} collides with another's interface name", p.instance_id)));
            }
            let vs = vswitches
                .get(p.vswitch_id.as_str())
                .ok_or_else(|| invalid(format!("port {} names unknown vSwitch {}", p.instance_id, p.vswitch_id)))?;
            if !usable(&vs.cidr, p.ip) || p.ip == vs.gateway {
                return Err(invalid(format!(
                    "IP {} of {} is not usable in vSwitch {}",
                    p.ip, p.instance_id, vs.vswitch_id
                )));
            }
            if !ips.insert(p.ip) {
                return Err(invalid(format!("IP {} is used twice in VPC {id}", p.ip)));
            }
            if p.mac.0[0] & 1 == 1 {
                return Err(invalid(format!("MAC {} of {} is multicast", p.mac, p.instance_id)));
            }
            if p.egress_mbps == Some(0) {
                return Err(invalid(format!("egress cap of {} is zero", p.instance_id)));
            }
            if let Some(eip) = p.eip {
                if !eips.insert(eip) {
                    return Err(invalid(format!("EIP {eip} is bound twice")));
                }
            }
            let mut kinds = BTreeSet::new();
            for gid in &p.security_group_ids {
                let g = groups
                    .get(gid.as_str())
                    .ok_or_else(|| invalid(format!("port {} names unknown group {gid}", p.instance_id)))?;
                kinds.insert(g.kind);
            }
            if kinds.len() > 1 {
                return Err(invalid(format!("{} mixes basic and enterprise groups", p.instance_id)));
            }
        }
        for r in &self.remote_ports {
            if !self.cidr.contains(&r.ip) {
                return Err(invalid(format!("remote port {} is outside VPC {id}", r.ip)));
            }
            if !ips.insert(r.ip) {
                return Err(invalid(format!("IP {} is used twice in VPC {id}", r.ip)));
            }
        }
        Ok(())
    }
}

impl SgRule {
    fn validate(&self, group: &str) -> Result<()> {
        if !(1..=100).contains(&self.priority) {
            return Err(invalid(format!("rule priority {} in {group} is outside 1-100", self.priority)));
        }
        match (self.protocol, self.ports) {
            (Protocol::Tcp | Protocol::Udp, Some((a, b))) if a == 0 || a > b => {
                Err(invalid(format!("port range {a}/{b} in {group} is empty")))
            }
            (Protocol::Icmp | Protocol::All, Some(_)) => {
                Err(invalid(format!("a port range in {group} needs tcp or udp")))
            }
            _ => Ok(()),
        }
    }
}

fn contains_net(outer: &Ipv4Net, inner: &Ipv4Net) -> bool {
    outer.contains(&inner.network()) && inner.prefix_len() >= outer.prefix_len()
}

/// An address instances or gateways may use: not the network or broadcast address.
fn usable(net: &Ipv4Net, ip: Ipv4Addr) -> bool {
    net.contains(&ip) && (net.prefix_len() >= 31 || (ip != net.network() && ip != net.broadcast()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_round_trips_and_rejects_garbage() {
        let m: MacAddr = "02:0a:ff:00:01:9c".parse().expect("valid");
        assert_eq!(m.to_string(), "02:0a:ff:00:01:9c");
        for bad in ["", "02:0a", "02:0a:ff:00:01:9c:00", "zz:0a:ff:00:01:9c", "2:0a:ff:00:01:9c"] {
            assert!(bad.parse::<MacAddr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn policy_order_puts_drop_first() {
        assert!(Policy::Drop < Policy::Accept);
    }
}
