//! Checking a host's desired network state before anything changes. The types themselves are
//! the host protocol's (`feiyun_hostproto::net`): they travel in the host's intent.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

pub use feiyun_hostproto::net::*;

use crate::error::{NetError, Result};

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

/// Checking a desired state: everything `apply` relies on.
pub trait Validate {
    fn validate(&self) -> Result<()>;
}

impl Validate for HostNetSpec {
    /// Checks everything `apply` relies on, so that a bad desired state fails before any change.
    fn validate(&self) -> Result<()> {
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
            validate_vpc(vpc, &mut instances, &mut eips)?;
        }
        Ok(())
    }
}

fn validate_vpc(vpc: &VpcSpec, instances: &mut BTreeSet<String>, eips: &mut BTreeSet<Ipv4Addr>) -> Result<()> {
    let this = vpc;
    {
        let id = &this.vpc_id;
        let mut vswitches = BTreeMap::new();
        for vs in &this.vswitches {
            check_id("vSwitch id", &vs.vswitch_id)?;
            if !contains_net(&this.cidr, &vs.cidr) {
                return Err(invalid(format!("vSwitch {} is outside VPC {id}", vs.vswitch_id)));
            }
            if !usable(&vs.cidr, vs.gateway) {
                return Err(invalid(format!("gateway of vSwitch {} is not a host address of it", vs.vswitch_id)));
            }
            vswitches.insert(vs.vswitch_id.as_str(), vs);
        }
        let groups: BTreeMap<&str, &SecurityGroupSpec> =
            this.security_groups.iter().map(|g| (g.id.as_str(), g)).collect();
        for g in &this.security_groups {
            check_id("security group id", &g.id)?;
            for r in &g.rules {
                validate_rule(r, &g.id)?;
                if let Peer::Group(other) = &r.peer {
                    if !groups.contains_key(other.as_str()) {
                        return Err(invalid(format!("rule of {} references unknown group {other}", g.id)));
                    }
                }
            }
        }
        let mut ips = BTreeSet::new();
        let mut names = BTreeSet::new();
        for p in &this.ports {
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
        for r in &this.remote_ports {
            if !this.cidr.contains(&r.ip) {
                return Err(invalid(format!("remote port {} is outside VPC {id}", r.ip)));
            }
            if !ips.insert(r.ip) {
                return Err(invalid(format!("IP {} is used twice in VPC {id}", r.ip)));
            }
        }
        Ok(())
    }
}

fn validate_rule(rule: &SgRule, group: &str) -> Result<()> {
    let this = rule;
    {
        if !(1..=100).contains(&this.priority) {
            return Err(invalid(format!("rule priority {} in {group} is outside 1-100", this.priority)));
        }
        match (this.protocol, this.ports) {
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
