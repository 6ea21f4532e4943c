//! The region's networks: VPCs, vSwitches, security groups, instances' interfaces and public
//! addresses, in memory beside the instances and written through with them.
//!
//! Allocation happens here, under the state lock, and is made final by the store's constraints
//! in the same transaction as the instance it is for: private addresses (lowest free of the
//! vSwitch, never a reserved one), MACs, VNIs (one per VPC), public addresses (lowest free of the
//! configured pool). Every change that alters what a host must have bumps that host's intent
//! revision, and only the hosts concerned: see [`State::bump_vpc`] and [`State::bump_group`].

mod attach;
mod eips;
mod groups;
mod spec;
mod traffic;
mod vpcs;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::time::Duration;

use feiyun_domain::net::cidr::{AddressRuns, Ipv4Net};
use feiyun_domain::net::{Nic, PublicIp, PublicIpKind, SecurityGroup, VSwitch, Vpc};
use feiyun_domain::usage::TrafficCounter;
use feiyun_store::{NetKey, NetLoaded, NetWrites};

pub use eips::EipFilter;
pub use groups::GroupFilter;
pub use vpcs::{VSwitchFilter, VpcFilter};

use crate::State;

/// The region's network configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkSetup {
    /// Where elastic IP addresses and instances' public addresses come from; `None`: the region
    /// gives none.
    pub eip_pool: Option<Ipv4Net>,
    /// Where the host ↔ VPC router links come from: a /30 per VPC, the same on every host,
    /// derived from the VPC's VNI. Must lie outside every VPC (VPCs may not use 100.64.0.0/10)
    /// and the EIP pool, and not hold 100.100.100.200.
    pub transit: Ipv4Net,
    /// The port of the metadata server on every host.
    pub metadata_port: u16,
    /// MTU of instance interfaces (underlay MTU minus VXLAN's 50 bytes).
    pub mtu: u32,
    /// How long a new VPC or vSwitch stays Pending.
    pub provisioning: Duration,
    /// How often, at most, a VPC's churn of members wakes the hosts of its other members (see
    /// `State::vpc_members_changed`); the first change in a quiet VPC reaches them at once.
    pub peer_update_period: Duration,
}

impl Default for NetworkSetup {
    fn default() -> Self {
        NetworkSetup {
            eip_pool: None,
            transit: Ipv4Net::new(Ipv4Addr::new(100, 64, 0, 0), 11).unwrap_or_default(),
            metadata_port: 8775,
            mtu: 1450,
            provisioning: Duration::from_secs(1),
            // As kube-proxy's default minimum sync period: rules follow endpoint churn at most
            // once a second.
            peer_update_period: Duration::from_secs(1),
        }
    }
}

/// 100.100.100.200: where instances ask for their metadata.
const METADATA_ADDRESS: Ipv4Addr = Ipv4Addr::new(100, 100, 100, 200);

impl NetworkSetup {
    /// What is wrong with the configuration, if anything.
    pub fn check(&self) -> Result<(), String> {
        if self.transit.prefix_len() > 24 {
            return Err(format!("the transit range {} is smaller than a /24", self.transit));
        }
        if self.transit.contains(&METADATA_ADDRESS) {
            return Err(format!("the transit range {} holds the metadata address {METADATA_ADDRESS}", self.transit));
        }
        if let Some(p) = &self.eip_pool {
            if feiyun_domain::net::cidr::overlaps(p, &self.transit) {
                return Err(format!("the EIP pool {p} overlaps the transit range {}", self.transit));
            }
            if p.prefix_len() > 30 {
                return Err(format!("the EIP pool {p} holds no usable address"));
            }
        }
        if !(576..=9000).contains(&self.mtu) {
            return Err(format!("MTU {} is out of range 576-9000", self.mtu));
        }
        if self.metadata_port == 0 {
            return Err("the metadata port must not be 0".into());
        }
        Ok(())
    }

    /// The largest VNI the transit range has a link for (and VXLAN a number for).
    pub fn max_vni(&self) -> u32 {
        let slots = 1u64 << (32 - self.transit.prefix_len() as u32 - 2);
        (slots - 1).min((1 << 24) - 1) as u32
    }

    /// The transit link of a VPC on any host: (host end, router end) of the VNI's /30.
    pub fn transit_of(&self, vni: u32) -> (Ipv4Addr, Ipv4Addr) {
        let base = u32::from(self.transit.network()) + 4 * vni;
        (Ipv4Addr::from(base + 1), Ipv4Addr::from(base + 2))
    }

    /// The usable addresses of the pool, lowest first.
    pub fn pool(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        self.eip_pool.iter().flat_map(|p| p.hosts())
    }
}

/// The networks in memory, with the indexes lookups need.
#[derive(Default)]
pub(crate) struct NetState {
    pub vpcs: BTreeMap<String, Vpc>,
    pub vswitches: BTreeMap<String, VSwitch>,
    pub groups: BTreeMap<String, SecurityGroup>,
    /// By instance id.
    pub nics: HashMap<String, Nic>,
    /// By allocation id.
    pub public_ips: BTreeMap<String, PublicIp>,
    /// Private addresses taken per VPC.
    used_ips: HashMap<String, AddressRuns>,
    /// Instances (with an interface) per VPC.
    vpc_members: HashMap<String, BTreeSet<String>>,
    /// Instances per security group.
    group_members: HashMap<String, BTreeSet<String>>,
    /// Public addresses held, of the pool or not (a pool shrunk by configuration).
    pool_used: BTreeSet<Ipv4Addr>,
    /// The public address (EIP or its own) associated with each instance, by allocation id.
    public_of: HashMap<String, String>,
    pub traffic: HashMap<String, TrafficCounter>,
    /// VPCs whose hosts were told of a change of members during the current peer-update
    /// period; `true`: changed again since, to be told at the period's end.
    peer_updates: HashMap<String, bool>,
}

impl NetState {
    pub fn from_loaded(l: NetLoaded) -> NetState {
        let mut s = NetState::default();
        for v in l.vpcs {
            s.vpcs.insert(v.id.clone(), v);
        }
        for v in l.vswitches {
            s.vswitches.insert(v.id.clone(), v);
        }
        for g in l.groups {
            s.groups.insert(g.id.clone(), g);
        }
        for n in l.nics {
            s.insert_nic(n);
        }
        for p in l.public_ips {
            s.put_public_ip(p);
        }
        for c in l.traffic_counters {
            s.traffic.insert(c.instance_id.clone(), c);
        }
        s
    }

    pub fn insert_nic(&mut self, n: Nic) {
        if let Some(old) = self.nics.get(&n.instance_id).cloned() {
            self.unindex_nic(&old);
        }
        self.used_ips.entry(n.vpc_id.clone()).or_default().insert(n.ip);
        self.vpc_members.entry(n.vpc_id.clone()).or_default().insert(n.instance_id.clone());
        for g in &n.security_group_ids {
            self.group_members.entry(g.clone()).or_default().insert(n.instance_id.clone());
        }
        self.nics.insert(n.instance_id.clone(), n);
    }

    fn unindex_nic(&mut self, n: &Nic) {
        if let Some(u) = self.used_ips.get_mut(&n.vpc_id) {
            u.remove(n.ip);
        }
        if let Some(m) = self.vpc_members.get_mut(&n.vpc_id) {
            m.remove(&n.instance_id);
        }
        for g in &n.security_group_ids {
            if let Some(m) = self.group_members.get_mut(g) {
                m.remove(&n.instance_id);
            }
        }
    }

    pub fn put_public_ip(&mut self, p: PublicIp) {
        if let Some(old) = self.public_ips.get(&p.allocation_id).cloned() {
            self.remove_public_ip(&old.allocation_id);
        }
        self.pool_used.insert(p.ip);
        if let Some(i) = &p.instance_id {
            self.public_of.insert(i.clone(), p.allocation_id.clone());
        }
        self.public_ips.insert(p.allocation_id.clone(), p);
    }

    pub fn remove_public_ip(&mut self, allocation_id: &str) {
        if let Some(p) = self.public_ips.remove(allocation_id) {
            self.pool_used.remove(&p.ip);
            if let Some(i) = &p.instance_id {
                if self.public_of.get(i).map(String::as_str) == Some(allocation_id) {
                    self.public_of.remove(i);
                }
            }
        }
    }

    /// Apply a committed write set.
    pub fn apply(&mut self, w: &NetWrites) {
        for k in &w.deleted {
            match k {
                NetKey::Nic(id) => {
                    if let Some(n) = self.nics.remove(id) {
                        self.unindex_nic(&n);
                    }
                }
                NetKey::PublicIp(id) => self.remove_public_ip(id),
                NetKey::SecurityGroup(id) => {
                    self.groups.remove(id);
                    self.group_members.remove(id);
                }
                NetKey::VSwitch(id) => {
                    self.vswitches.remove(id);
                }
                NetKey::Vpc(id) => {
                    self.vpcs.remove(id);
                    self.used_ips.remove(id);
                    self.vpc_members.remove(id);
                }
            }
        }
        for v in &w.vpcs {
            self.vpcs.insert(v.id.clone(), v.clone());
        }
        for v in &w.vswitches {
            self.vswitches.insert(v.id.clone(), v.clone());
        }
        for g in &w.groups {
            self.groups.insert(g.id.clone(), g.clone());
        }
        for p in &w.public_ips {
            self.put_public_ip(p.clone());
        }
        for n in &w.nics {
            self.insert_nic(n.clone());
        }
    }

    pub fn used_ips(&self, vpc_id: &str) -> Option<&AddressRuns> {
        self.used_ips.get(vpc_id)
    }

    pub fn vpc_members(&self, vpc_id: &str) -> impl Iterator<Item = &String> {
        self.vpc_members.get(vpc_id).into_iter().flatten()
    }

    pub fn group_members(&self, group_id: &str) -> impl Iterator<Item = &String> {
        self.group_members.get(group_id).into_iter().flatten()
    }

    pub fn group_member_count(&self, group_id: &str) -> usize {
        self.group_members.get(group_id).map(BTreeSet::len).unwrap_or(0)
    }

    pub fn pool_used(&self) -> &BTreeSet<Ipv4Addr> {
        &self.pool_used
    }

    /// The public address associated with an instance (an EIP or its own).
    pub fn public_of(&self, instance_id: &str) -> Option<&PublicIp> {
        self.public_of.get(instance_id).and_then(|a| self.public_ips.get(a))
    }

    /// Addresses of a vSwitch that instances hold.
    pub fn used_in(&self, vsw: &VSwitch) -> usize {
        self.used_ips.get(&vsw.vpc_id).map(|u| u.count_in(&vsw.cidr)).unwrap_or(0)
    }

    pub fn default_vpc(&self, account_id: &str) -> Option<&Vpc> {
        self.vpcs.values().find(|v| v.account_id == account_id && v.is_default)
    }

    /// What releasing these instances frees: their interfaces and own public addresses go, their
    /// EIPs stay allocated, unassociated.
    pub fn release_writes<'a>(&self, ids: impl Iterator<Item = &'a str>) -> NetWrites {
        let mut w = NetWrites::default();
        for id in ids {
            if self.nics.contains_key(id) {
                w.deleted.push(NetKey::Nic(id.to_string()));
            }
            if let Some(p) = self.public_of(id) {
                match p.kind {
                    PublicIpKind::Instance => w.deleted.push(NetKey::PublicIp(p.allocation_id.clone())),
                    PublicIpKind::Eip => w.public_ips.push(PublicIp { instance_id: None, ..p.clone() }),
                }
            }
        }
        w
    }
}

/// The network attachments of instances, lent with them (DescribeInstances).
pub struct InstanceNets<'a>(pub(crate) &'a NetState);

impl<'a> InstanceNets<'a> {
    /// An instance's interface and public address (`None` for one from before networks).
    pub fn of(&self, instance_id: &str) -> Option<(&'a Nic, Option<&'a PublicIp>)> {
        let nic = self.0.nics.get(instance_id)?;
        Some((nic, self.0.public_of(instance_id)))
    }
}

/// A host's network name prefix, `h` and five characters of its id, or another window of the id
/// (then a number) when a host has it already.
pub(crate) fn host_prefix(host_id: &str, taken: &BTreeSet<String>) -> String {
    let tail: Vec<char> =
        host_id.chars().skip_while(|c| *c != '-').skip(1).filter(|c| c.is_ascii_alphanumeric()).collect();
    let tail: Vec<char> = tail.into_iter().map(|c| c.to_ascii_lowercase()).collect();
    for start in 0..tail.len().saturating_sub(4) {
        let p: String = std::iter::once('h').chain(tail[start..start + 5].iter().copied()).collect();
        if !taken.contains(&p) {
            return p;
        }
    }
    (0u64..)
        .map(|n| format!("n{}", feiyun_domain::ids::base36(n)))
        .find(|p| !taken.contains(p) && p.len() <= 6)
        .unwrap_or_else(|| "n".to_string())
}

impl State {
    /// Bump the intent revision of every host with an instance of the VPC: the members of its
    /// groups changed.
    pub(crate) fn bump_vpc(&mut self, vpc_id: &str) {
        let hosts = self.hosts_running(self.net.vpc_members(vpc_id));
        self.bump_hosts(hosts);
    }

    /// The hosts running any of these instances whose intent carries their network. A
    /// simulated host's carries none (`ControlPlane::host_net_spec`): a change of a VPC's members
    /// or a group's rules leaves its intent as it was, and waking it would only make it fetch
    /// the same intent again (at 10,000 simulated hosts in one VPC, most of the intents served
    /// while it filled).
    fn hosts_running<'a>(&self, instances: impl Iterator<Item = &'a String>) -> BTreeSet<String> {
        instances
            .filter_map(|i| self.instances.get(i))
            .filter(|i| self.hosts.get(&i.host_id).is_some_and(|slot| !slot.host.simulated))
            .map(|i| i.host_id.clone())
            .collect()
    }

    fn bump_hosts(&mut self, hosts: BTreeSet<String>) {
        for h in hosts {
            self.bump_host(&h);
        }
    }

    /// A VPC's members changed (an instance appeared, moved or left): every host with an
    /// instance of it must learn its new remote ports and group members.
    ///
    /// Hosts are told at once when the VPC was quiet, and at most once per peer-update period
    /// while it churns ([`State::flush_peer_updates`] tells them at the period's end): each
    /// telling wakes every such host to fetch its intent, and a VPC that gains a thousand
    /// members a second across hundreds of hosts would otherwise make the control plane build
    /// and send hundreds of thousands of intents a second. The host an instance lands on is
    /// told at once in any case (its own instances changed).
    pub(crate) fn vpc_members_changed(&mut self, vpc_id: &str) {
        match self.net.peer_updates.get_mut(vpc_id) {
            Some(again) => *again = true,
            None => {
                self.net.peer_updates.insert(vpc_id.to_string(), false);
                self.bump_vpc(vpc_id);
            }
        }
    }

    /// The end of a peer-update period: tell the hosts of every VPC that changed during it, and
    /// forget the VPCs that did not (their next change is told at once).
    pub(crate) fn flush_peer_updates(&mut self) {
        let changed: Vec<String> =
            self.net.peer_updates.iter().filter(|(_, again)| **again).map(|(v, _)| v.clone()).collect();
        self.net.peer_updates.retain(|_, again| *again);
        for vpc in changed {
            self.net.peer_updates.insert(vpc.clone(), false);
            self.bump_vpc(&vpc);
        }
    }

    /// Bump the hosts with a member of the group: its rules or policy changed.
    pub(crate) fn bump_group(&mut self, group_id: &str) {
        let hosts = self.hosts_running(self.net.group_members(group_id));
        self.bump_hosts(hosts);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_come_from_the_host_id_and_stay_unique() {
        let mut taken = BTreeSet::new();
        let a = host_prefix("h-abcdefghijklmnop", &taken);
        assert_eq!(a, "habcde");
        taken.insert(a);
        assert_eq!(host_prefix("h-abcdeXyz", &taken), "hbcdex");
        taken.insert("hbcdex".into());
        taken.insert("hcdexy".into());
        taken.insert("hdexyz".into());
        assert_eq!(host_prefix("h-abcdexyz", &taken), "n0");
        assert_eq!(host_prefix("odd", &BTreeSet::new()), "n0");
    }

    #[test]
    fn transit_links_follow_the_vni() {
        let s = NetworkSetup::default();
        assert!(s.check().is_ok());
        assert_eq!(s.transit_of(1), (Ipv4Addr::new(100, 64, 0, 5), Ipv4Addr::new(100, 64, 0, 6)));
        assert_eq!(s.max_vni(), (1 << 19) - 1);
        let bad = NetworkSetup { transit: "100.96.0.0/11".parse().expect("net"), ..NetworkSetup::default() };
        assert!(bad.check().is_err(), "holds 100.100.100.200");
        let overlap = NetworkSetup { eip_pool: Some("100.64.0.0/28".parse().expect("net")), ..NetworkSetup::default() };
        assert!(overlap.check().is_err());
    }
}
