//! Each host's desired network ([`HostNetSpec`]), computed from the region's state when the host
//! reads its intent, and what the metadata service answers an instance about its network.
//!
//! Per VPC with an instance on the host: its VNI and block, the transit link of its VNI, the
//! vSwitches its local instances use (with their gateway), a port per local instance (MAC,
//! address, groups, EIP or own public address, egress cap), a remote port per instance of the VPC
//! on another host that has an underlay address (when this host has one too), and the groups the
//! ports use with their rules and members — plus, with their members only, the groups those
//! rules name.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use feiyun_domain::instance::{Instance, InstanceStatus};
use feiyun_domain::net::address::mac_string;
use feiyun_domain::net::{self as dn, Nic, SecurityGroup};
use feiyun_hostproto::net::{
    Direction, GroupKind, HostNetSpec, InnerAccessPolicy, MacAddr, MetadataTarget, Peer, Policy, PortSpec, Protocol,
    RemotePort, SecurityGroupSpec, SgRule, TransitLink, VSwitchSpec, VpcSpec,
};

use crate::{ControlPlane, State};

fn rule(r: &dn::SgRule) -> SgRule {
    let s = &r.spec;
    SgRule {
        direction: match s.direction {
            dn::Direction::Ingress => Direction::Ingress,
            dn::Direction::Egress => Direction::Egress,
        },
        policy: match s.policy {
            dn::Policy::Accept => Policy::Accept,
            dn::Policy::Drop => Policy::Drop,
        },
        priority: s.priority,
        protocol: match s.protocol {
            dn::Protocol::Tcp => Protocol::Tcp,
            dn::Protocol::Udp => Protocol::Udp,
            dn::Protocol::Icmp => Protocol::Icmp,
            dn::Protocol::All => Protocol::All,
        },
        ports: s.ports,
        peer: match &s.peer {
            dn::Peer::Cidr(c) => Peer::Cidr(*c),
            dn::Peer::Group(g) => Peer::Group(g.clone()),
        },
    }
}

fn group(state: &State, g: &SecurityGroup, with_rules: bool) -> SecurityGroupSpec {
    let mut members: Vec<Ipv4Addr> =
        state.net.group_members(&g.id).filter_map(|i| state.net.nics.get(i)).map(|n| n.ip).collect();
    members.sort();
    SecurityGroupSpec {
        id: g.id.clone(),
        kind: match g.kind {
            dn::GroupKind::Basic => GroupKind::Basic,
            dn::GroupKind::Enterprise => GroupKind::Enterprise,
        },
        inner_access: match g.inner_access {
            dn::InnerAccess::Accept => InnerAccessPolicy::Accept,
            dn::InnerAccess::Drop => InnerAccessPolicy::Drop,
        },
        members,
        rules: if with_rules { g.rules.iter().map(rule).collect() } else { Vec::new() },
    }
}

/// Whether an instance is on the network: everything but a released one.
fn networked(i: &Instance) -> bool {
    i.status != InstanceStatus::Deleted
}

impl ControlPlane {
    /// The network a host must have; `None` for a hollow host.
    pub(crate) fn host_net_spec(&self, state: &State, host_id: &str) -> Option<HostNetSpec> {
        let slot = state.hosts.get(host_id)?;
        if slot.host.simulated {
            return None;
        }
        let underlay = slot.host.underlay_ip;
        let mut by_vpc: BTreeMap<&str, Vec<(&Instance, &Nic)>> = BTreeMap::new();
        for id in &slot.instances {
            let Some(i) = state.instances.get(id).filter(|i| networked(i)) else { continue };
            let Some(n) = state.net.nics.get(id) else { continue };
            by_vpc.entry(n.vpc_id.as_str()).or_default().push((i, n));
        }
        let mut vpcs = Vec::new();
        for (vpc_id, local) in by_vpc {
            let Some(vpc) = state.net.vpcs.get(vpc_id) else { continue };
            let (host, router) = self.network.transit_of(vpc.vni);
            let vswitches: BTreeSet<&str> = local.iter().map(|(_, n)| n.vswitch_id.as_str()).collect();
            let ports: Vec<PortSpec> = local
                .iter()
                .map(|(i, n)| {
                    let public = state.net.public_of(&i.id);
                    PortSpec {
                        instance_id: i.id.clone(),
                        vswitch_id: n.vswitch_id.clone(),
                        mac: MacAddr(n.mac),
                        ip: n.ip,
                        security_group_ids: n.security_group_ids.clone(),
                        egress_mbps: public.map(|p| p.bandwidth_mbps).filter(|b| *b > 0),
                        eip: public.map(|p| p.ip),
                    }
                })
                .collect();
            let mut remote_ports = Vec::new();
            if underlay.is_some() {
                for id in state.net.vpc_members(vpc_id) {
                    let Some(i) = state.instances.get(id).filter(|i| networked(i) && i.host_id != host_id) else {
                        continue;
                    };
                    let far = state.hosts.get(&i.host_id).and_then(|h| h.host.underlay_ip);
                    if let (Some(underlay_ip), Some(n)) = (far, state.net.nics.get(id)) {
                        remote_ports.push(RemotePort { ip: n.ip, underlay_ip });
                    }
                }
                remote_ports.sort_by_key(|r| r.ip);
            }
            let used: BTreeSet<&str> =
                local.iter().flat_map(|(_, n)| n.security_group_ids.iter().map(String::as_str)).collect();
            let named: BTreeSet<&str> = used
                .iter()
                .filter_map(|g| state.net.groups.get(*g))
                .flat_map(|g| g.referenced())
                .filter(|g| !used.contains(g))
                .collect();
            let security_groups = used
                .iter()
                .filter_map(|g| state.net.groups.get(*g))
                .map(|g| group(state, g, true))
                .chain(named.iter().filter_map(|g| state.net.groups.get(*g)).map(|g| group(state, g, false)))
                .collect();
            vpcs.push(VpcSpec {
                vpc_id: vpc.id.clone(),
                vni: vpc.vni,
                cidr: vpc.cidr,
                transit: TransitLink { host, router, prefix_len: 30 },
                vswitches: vswitches
                    .iter()
                    .filter_map(|s| state.net.vswitches.get(*s))
                    .map(|s| VSwitchSpec { vswitch_id: s.id.clone(), cidr: s.cidr, gateway: s.gateway() })
                    .collect(),
                ports,
                remote_ports,
                security_groups,
            });
        }
        Some(HostNetSpec {
            prefix: slot.host.net_prefix.clone(),
            underlay_ip: underlay.unwrap_or(Ipv4Addr::UNSPECIFIED),
            mtu: self.network.mtu,
            metadata: Some(MetadataTarget { port: self.network.metadata_port }),
            vpcs,
        })
    }

    /// What the metadata service says of an instance's network, under Alibaba Cloud's names.
    pub(crate) fn network_metadata(&self, state: &State, i: &Instance) -> Vec<(String, String)> {
        let Some(n) = state.net.nics.get(&i.id) else { return Vec::new() };
        let vpc = state.net.vpcs.get(&n.vpc_id);
        let vsw = state.net.vswitches.get(&n.vswitch_id);
        let mac = mac_string(&n.mac);
        let vpc_block = vpc.map(|v| v.cidr.to_string()).unwrap_or_default();
        let vsw_block = vsw.map(|v| v.cidr.to_string()).unwrap_or_default();
        let gateway = vsw.map(|v| v.gateway().to_string()).unwrap_or_default();
        let netmask = vsw.map(|v| v.cidr.netmask().to_string()).unwrap_or_default();
        let mut out = vec![
            ("network-type".to_string(), "vpc".to_string()),
            ("private-ipv4".into(), n.ip.to_string()),
            ("mac".into(), mac.clone()),
            ("vpc-id".into(), n.vpc_id.clone()),
            ("vpc-cidr-block".into(), vpc_block.clone()),
            ("vswitch-id".into(), n.vswitch_id.clone()),
            ("vswitch-cidr-block".into(), vsw_block.clone()),
        ];
        let nic = format!("network/interfaces/macs/{mac}");
        for (k, v) in [
            ("network-interface-id", n.eni_id.clone()),
            ("primary-ip-address", n.ip.to_string()),
            ("private-ipv4s", format!("[\"{}\"]", n.ip)),
            ("netmask", netmask),
            ("gateway", gateway),
            ("vpc-id", n.vpc_id.clone()),
            ("vpc-cidr-block", vpc_block),
            ("vswitch-id", n.vswitch_id.clone()),
            ("vswitch-cidr-block", vsw_block),
        ] {
            out.push((format!("{nic}/{k}"), v));
        }
        if let Some(p) = state.net.public_of(&i.id) {
            let key = match p.kind {
                dn::PublicIpKind::Eip => "eipv4",
                dn::PublicIpKind::Instance => "public-ipv4",
            };
            out.push((key.to_string(), p.ip.to_string()));
        }
        out
    }
}
