//! Where new instances go on the network: the checks of RunInstances' network parameters, and
//! the addresses, MACs, interfaces and public addresses of the instances about to be created —
//! with the account's default VPC, vSwitch of the zone and security group when it asked for none,
//! made on first need. Everything is planned under the state lock and written in the
//! instances' own transaction.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use feiyun_domain::net::address::instance_mac;
use feiyun_domain::net::cidr;
use feiyun_domain::net::vpc::DEFAULT_VSWITCH_PREFIX;
use feiyun_domain::net::{
    GroupKind, InternetCharge, NetError, Nic, Provisioning, PublicIp, PublicIpKind, SecurityGroup, VSwitch, Vpc,
};
use feiyun_domain::ops::{InstanceNetwork, NewSecurityGroup, NewVpc};
use feiyun_domain::{ids, DomainError, Instant};
use feiyun_store::NetWrites;
use rand::Rng;

use crate::{ControlPlane, State};

/// RunInstances' network parameters, checked against what the account has.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    vswitch: Option<VSwitch>,
    groups: Vec<String>,
    private_ip: Option<Ipv4Addr>,
    bandwidth_out_mbps: u32,
    internet_charge: InternetCharge,
}

impl Resolved {
    /// The zone the instances must go to, if the vSwitch decides it.
    pub fn zone(&self) -> Option<&str> {
        self.vswitch.as_ref().map(|s| s.zone_id.as_str())
    }
}

/// The network side of instances about to be created: written with them.
#[derive(Debug, Default)]
pub(crate) struct Attachments {
    /// New default VPC, vSwitches and group; then the interfaces and public addresses.
    pub writes: NetWrites,
}

impl ControlPlane {
    /// Check RunInstances' network parameters (before anything is placed).
    pub(crate) fn resolve_network(
        &self,
        state: &State,
        account_id: &str,
        net: &InstanceNetwork,
        zone: Option<&str>,
        amount: u32,
    ) -> Result<Resolved, DomainError> {
        if net.bandwidth_out_mbps > 0 && self.network.eip_pool.is_none() {
            return Err(NetError::NoPublicPool.into());
        }
        let vswitch = match &net.vswitch_id {
            None => None,
            Some(id) => {
                let s = state.owned_vswitch(account_id, id)?;
                if Provisioning::at(s.available_at, self.now()) != Provisioning::Available {
                    return Err(NetError::VSwitchNotAvailable(id.clone()).into());
                }
                if let Some(z) = zone.filter(|z| *z != s.zone_id) {
                    return Err(NetError::VSwitchZoneMismatch { vswitch: id.clone(), zone: z.to_string() }.into());
                }
                Some(s.clone())
            }
        };
        let mut groups: Vec<&SecurityGroup> = Vec::new();
        for id in &net.security_group_ids {
            let g = state.owned_group(account_id, id)?;
            if !groups.iter().any(|x| x.id == g.id) {
                groups.push(g);
            }
        }
        if groups.len() > feiyun_domain::net::security_group::MAX_GROUPS_PER_INSTANCE {
            return Err(NetError::TooManyGroups(feiyun_domain::net::security_group::MAX_GROUPS_PER_INSTANCE).into());
        }
        if groups.windows(2).any(|w| w[0].kind != w[1].kind) {
            return Err(NetError::GroupKindsMixed.into());
        }
        match &vswitch {
            Some(s) => {
                if let Some(g) = groups.iter().find(|g| g.vpc_id != s.vpc_id) {
                    return Err(NetError::GroupVpcMismatch(g.id.clone()).into());
                }
                if groups.is_empty() {
                    return Err(DomainError::missing("SecurityGroupId"));
                }
            }
            None => {
                let default = state.net.default_vpc(account_id).map(|v| v.id.as_str());
                if let Some(g) = groups.iter().find(|g| Some(g.vpc_id.as_str()) != default) {
                    return Err(NetError::GroupNotInDefaultVpc(g.id.clone()).into());
                }
            }
        }
        if let Some(ip) = net.private_ip {
            let s = vswitch.as_ref().ok_or(NetError::VSwitchNecessary)?;
            if amount > 1 {
                return Err(NetError::PrivateIpWithAmount.into());
            }
            if !cidr::usable(&s.cidr, ip) {
                return Err(NetError::PrivateIpOutside { ip: ip.to_string(), vswitch: s.id.clone() }.into());
            }
            if state.net.used_ips(&s.vpc_id).is_some_and(|u| u.contains(ip)) {
                return Err(NetError::PrivateIpTaken(ip.to_string()).into());
            }
        }
        Ok(Resolved {
            groups: groups.iter().map(|g| g.id.clone()).collect(),
            vswitch,
            private_ip: net.private_ip,
            bandwidth_out_mbps: net.bandwidth_out_mbps,
            internet_charge: net.internet_charge,
        })
    }

    /// The interfaces (and public addresses) of instances going to `zones` (one per instance), in
    /// order, for instances `ids`.
    pub(crate) fn plan_network(
        &self,
        state: &State,
        account_id: &str,
        r: &Resolved,
        zones: &[String],
        ids: &[String],
        now: Instant,
    ) -> Result<Attachments, DomainError> {
        let mut w = NetWrites::default();
        // The VPC, and per zone the vSwitch, the instances go to.
        let (vpc, groups): (Vpc, Vec<String>) = match &r.vswitch {
            Some(s) => (state.owned_vpc(account_id, &s.vpc_id)?.clone(), r.groups.clone()),
            None => {
                let vpc = match state.net.default_vpc(account_id) {
                    Some(v) => v.clone(),
                    None => {
                        let v = self.new_vpc(state, account_id, &NewVpc::default(), true, now)?;
                        w.vpcs.push(v.clone());
                        v
                    }
                };
                let groups = if r.groups.is_empty() {
                    let g = match state.net.groups.values().find(|g| g.vpc_id == vpc.id && g.is_default) {
                        Some(g) => g.clone(),
                        None => {
                            let spec = NewSecurityGroup {
                                vpc_id: None,
                                name: "default".into(),
                                description: "Made with the default VPC".into(),
                                kind: GroupKind::Basic,
                                client_token: None,
                            };
                            let g = self.new_group(account_id, &vpc, &spec, true, now);
                            w.groups.push(g.clone());
                            g
                        }
                    };
                    vec![g.id]
                } else {
                    r.groups.clone()
                };
                (vpc, groups)
            }
        };
        let mut by_zone: BTreeMap<String, VSwitch> = BTreeMap::new();
        for z in zones {
            if by_zone.contains_key(z) {
                continue;
            }
            let s = match &r.vswitch {
                Some(s) => s.clone(),
                None => {
                    match state.net.vswitches.values().find(|s| s.vpc_id == vpc.id && s.zone_id == *z && s.is_default) {
                        Some(s) => s.clone(),
                        None => {
                            let taken: Vec<cidr::Ipv4Net> = state
                                .net
                                .vswitches
                                .values()
                                .chain(w.vswitches.iter())
                                .filter(|s| s.vpc_id == vpc.id)
                                .map(|s| s.cidr)
                                .collect();
                            let prefix = DEFAULT_VSWITCH_PREFIX.max(vpc.cidr.prefix_len());
                            let block = cidr::first_free_block(&vpc.cidr, prefix, &taken)
                                .ok_or_else(|| NetError::IpNotEnough(format!("default vSwitch of {z}")))?;
                            let s = VSwitch {
                                id: self.with_rng(ids::vswitch_id),
                                account_id: account_id.to_string(),
                                vpc_id: vpc.id.clone(),
                                zone_id: z.clone(),
                                cidr: block,
                                name: String::new(),
                                description: "Default vSwitch of the zone".into(),
                                is_default: true,
                                created_at: now,
                                available_at: now,
                            };
                            w.vswitches.push(s.clone());
                            s
                        }
                    }
                }
            };
            by_zone.insert(z.clone(), s);
        }
        // The VPC's recorded addresses are looked at in place (a VPC may hold tens of thousands);
        // the ones this call gives out are kept beside them.
        let none = cidr::AddressRuns::default();
        let used = state.net.used_ips(&vpc.id).unwrap_or(&none);
        let mut picked: BTreeSet<Ipv4Addr> = BTreeSet::new();
        let mut public = BTreeSet::new();
        for (n, (zone, id)) in zones.iter().zip(ids).enumerate() {
            let s = &by_zone[zone];
            let ip = match r.private_ip.filter(|_| n == 0) {
                Some(ip) => ip,
                None => {
                    cidr::first_free_of(&s.cidr, used, &picked).ok_or_else(|| NetError::IpNotEnough(s.id.clone()))?
                }
            };
            picked.insert(ip);
            let tail: [u8; 3] = self.with_rng(|g| g.gen());
            w.nics.push(Nic {
                instance_id: id.clone(),
                account_id: account_id.to_string(),
                vpc_id: vpc.id.clone(),
                vswitch_id: s.id.clone(),
                ip,
                mac: instance_mac(tail),
                eni_id: self.with_rng(ids::eni_id),
                security_group_ids: groups.clone(),
                bandwidth_out_mbps: r.bandwidth_out_mbps,
                internet_charge: r.internet_charge,
            });
            if r.bandwidth_out_mbps > 0 {
                let addr = self.free_public_ip(state, &public, false)?;
                public.insert(addr);
                w.public_ips.push(PublicIp {
                    allocation_id: self.with_rng(ids::eip_id),
                    ip: addr,
                    account_id: account_id.to_string(),
                    kind: PublicIpKind::Instance,
                    instance_id: Some(id.clone()),
                    name: String::new(),
                    description: String::new(),
                    bandwidth_mbps: r.bandwidth_out_mbps,
                    charge: r.internet_charge,
                    created_at: now,
                });
            }
        }
        Ok(Attachments { writes: w })
    }
}
