//! One VPC on one host: its router namespace, the transit link to the host, the VXLAN device and
//! its static forwarding entries, the instance ports, the router's routes, firewall and shaping.
//! Each piece is checked first and changed only when it differs, so running it again on a
//! converged host changes nothing, and running it after a crash at any point finishes the job.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::sync::Mutex;

use rtnetlink::packet_route::route::{RouteProtocol, RouteType};
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::Handle;

use crate::error::Result;
use crate::names::{self, HostLink, INSTANCE_IF, ROUTER_UPLINK, ROUTER_VXLAN};
use crate::nl::{self, find, Link};
use crate::ns::{self, write_sysctl, Netns};
use crate::spec::{HostNetSpec, PortSpec, VpcSpec};
use crate::steps::Steps;
use crate::{nft, sg, tc};

const MAIN_TABLE: u32 = 254;

pub(crate) struct Vpc<'a> {
    pub host_ns: &'a Netns,
    pub spec: &'a HostNetSpec,
    pub vpc: &'a VpcSpec,
    pub steps: &'a Steps,
    /// What this process last wrote into each router's table (by router namespace name).
    pub known: &'a Mutex<BTreeMap<String, nft::Existing>>,
}

impl Vpc<'_> {
    fn name(&self, kind: HostLink) -> String {
        names::host_link(&self.spec.prefix, kind, self.vpc.vni)
    }

    /// Converges everything of this VPC on this host; returns the nftables commands sent.
    pub fn apply(&self) -> Result<usize> {
        let rname = names::router_ns(&self.spec.prefix, self.vpc.vni);
        let created = ns::ensure_named(&rname)?;
        if created {
            self.steps.done(format!("create namespace {rname}"))?;
        }
        let router = Netns::open_named(&rname)?;
        router.run(|| -> Result<()> {
            for (key, value) in [
                ("net/ipv4/ip_forward", "1"),
                ("net/ipv4/conf/all/proxy_arp", "1"),
                ("net/ipv4/conf/all/rp_filter", "0"),
                ("net/ipv4/conf/default/rp_filter", "0"),
                ("net/ipv6/conf/all/disable_ipv6", "1"),
                ("net/ipv6/conf/default/disable_ipv6", "1"),
            ] {
                if write_sysctl(key, value)? {
                    self.steps.done(format!("{rname}: sysctl {key}={value}"))?;
                }
            }
            Ok(())
        })??;
        // One look at the router's and the host's links tells what is complete; only the rest
        // is (re)built.
        let rlinks = router.netlink(|h| async move { nl::links(&h).await })?;
        let hlinks = self.host_ns.netlink(|h| async move { nl::links(&h).await })?;
        self.transit(&router, &rlinks, &hlinks)?;
        self.vxlan(&router, &rlinks, &hlinks)?;
        for port in &self.vpc.ports {
            self.port(&router, port, &rlinks)?;
        }
        router.netlink(|h| async move { self.router_state(&h).await })?;
        let compiled = sg::compile(self.vpc);
        let cached = if created { None } else { self.known.lock().ok().and_then(|k| k.get(&rname).cloned()) };
        let sent = router.run(|| -> Result<usize> {
            // What this process last wrote is trusted; if the kernel disagrees the batch fails
            // atomically and is rebuilt from a fresh listing.
            if let Some(existing) = &cached {
                let batch = nft::router_batch(self.spec, self.vpc, &compiled, existing);
                if batch.text() == existing.batch {
                    // The very batch that would follow the last one this process sent:
                    // nothing changed since.
                    return Ok(0);
                }
                if nft::run(&batch).is_ok() {
                    return Ok(batch.len());
                }
            }
            let existing = nft::existing_router()?;
            let batch = nft::router_batch(self.spec, self.vpc, &compiled, &existing);
            nft::run(&batch)?;
            Ok(batch.len())
        })?;
        if let Ok(mut known) = self.known.lock() {
            match &sent {
                Ok(_) => {
                    let mut after = nft::after(&compiled, self.vpc);
                    after.batch = nft::router_batch(self.spec, self.vpc, &compiled, &after).text();
                    known.insert(rname.clone(), after)
                }
                Err(_) => known.remove(&rname),
            };
        }
        let sent = sent?;
        let shaping: Vec<(u16, u32)> = self
            .vpc
            .ports
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.egress_mbps.map(|m| (nft::shape_class(i), m)))
            .collect();
        for change in tc::converge(&router, ROUTER_UPLINK, &shaping)? {
            self.steps.done(format!("{rname}: {change}"))?;
        }
        Ok(sent)
    }

    /// The veth pair host `<p>t<vni>` ↔ router `up0`, created with its second end in the router
    /// (nothing moves). `<p>u<vni>` is the temporary name older versions gave that end before
    /// moving it: one left behind means an unfinished link.
    fn transit(&self, router: &Netns, rlinks: &[Link], hlinks: &[Link]) -> Result<()> {
        let (t, u) = (self.name(HostLink::Transit), self.name(HostLink::RouterEnd));
        let steps = self.steps;
        let intact = find(rlinks, ROUTER_UPLINK).is_some() && find(hlinks, &t).is_some() && find(hlinks, &u).is_none();
        if !intact {
            let (t, u) = (&t, &u);
            self.host_ns.netlink(|h| async move {
                for name in [t, u] {
                    if let Some(l) = find(hlinks, name) {
                        nl::del_link(&h, l.index).await?;
                        steps.done(format!("delete link {name}"))?;
                    }
                }
                Ok(())
            })?;
            if let Some(l) = find(rlinks, ROUTER_UPLINK) {
                let index = l.index;
                router.netlink(|h| async move {
                    nl::del_link(&h, index).await?;
                    steps.done("delete router uplink")
                })?;
            }
            self.host_ns.netlink(|h| async move {
                nl::add_veth_into(&h, t, None, ROUTER_UPLINK, router, 1500).await?;
                steps.done(format!("create veth {t} to {ROUTER_UPLINK}"))
            })?;
        }
        let tr = self.vpc.transit;
        let t = self.name(HostLink::Transit);
        self.host_ns.netlink(|h| async move { ensure_addr_up(&h, &t, tr.host, tr.prefix_len, None, steps).await })?;
        router
            .netlink(|h| async move { ensure_addr_up(&h, ROUTER_UPLINK, tr.router, tr.prefix_len, None, steps).await })
    }

    /// `vx0`: created by the host namespace (so its UDP socket stays on the underlay) directly in
    /// the router. `<p>x<vni>` is the temporary name older versions gave it before moving it.
    fn vxlan(&self, router: &Netns, rlinks: &[Link], hlinks: &[Link]) -> Result<()> {
        let x = self.name(HostLink::Vxlan);
        let mac = names::vtep_mac(self.spec.underlay_ip);
        let (underlay, vni, mtu, steps) = (self.spec.underlay_ip, self.vpc.vni, self.spec.mtu, self.steps);
        let current = find(rlinks, ROUTER_VXLAN).filter(|l| l.mac == mac && l.vxlan_local == Some(underlay));
        if current.is_some_and(|l| l.up && l.mtu == mtu) {
            return Ok(());
        }
        if current.is_none() {
            let stale: Vec<(String, u32)> = [ROUTER_VXLAN, x.as_str()]
                .into_iter()
                .filter_map(|n| find(rlinks, n).map(|l| (n.to_string(), l.index)))
                .collect();
            if !stale.is_empty() {
                let stale = &stale;
                router.netlink(|h| async move {
                    for (name, index) in stale {
                        nl::del_link(&h, *index).await?;
                        steps.done(format!("delete stale vxlan device {name}"))?;
                    }
                    Ok(())
                })?;
            }
            let left = find(hlinks, &x).map(|l| l.index);
            self.host_ns.netlink(|h| async move {
                if let Some(i) = left {
                    nl::del_link(&h, i).await?;
                    steps.done(format!("delete link {x}"))?;
                }
                nl::add_vxlan_into(&h, ROUTER_VXLAN, vni, underlay, mac, mtu, router).await?;
                steps.done(format!("create vxlan {ROUTER_VXLAN} of VNI {vni}"))
            })?;
        }
        router.netlink(|h| async move {
            if let Some(i) = nl::link_index(&h, ROUTER_VXLAN).await? {
                nl::set_up(&h, i, Some(mtu)).await?;
                steps.done("bring vxlan device up")?;
            }
            Ok(())
        })
    }

    /// One instance port: its namespace, the veth `eth0` (instance, created there with the
    /// instance's MAC) ↔ `i<hash>` (router), the instance's address and default route. The
    /// router end is brought up last and labelled with what the instance end was given, so a
    /// port whose router end is up with the right label is complete; anything else of it is
    /// deleted and built again. `j<hash>` is the temporary name older versions gave the
    /// instance end before moving it.
    fn port(&self, router: &Netns, port: &PortSpec, seen: &[Link]) -> Result<()> {
        let iname = names::instance_ns(&self.spec.prefix, &port.instance_id);
        if ns::ensure_named(&iname)? {
            self.steps.done(format!("create namespace {iname}"))?;
        }
        let Some(vs) = self.vpc.vswitches.iter().find(|v| v.vswitch_id == port.vswitch_id) else {
            return Ok(()); // validate() rejects this
        };
        let (pif, peer) = (names::port_if(&port.instance_id), names::port_peer_tmp(&port.instance_id));
        let label =
            format!("{} {}/{} gw {} mtu {}", port.mac, port.ip, vs.cidr.prefix_len(), vs.gateway, self.spec.mtu);
        let (steps, mtu) = (self.steps, self.spec.mtu);
        let complete = find(seen, &pif).is_some_and(|l| l.up && l.alias.as_deref() == Some(label.as_str()))
            && find(seen, &peer).is_none();
        if complete {
            return Ok(());
        }
        let stale: Vec<(String, u32)> =
            [&pif, &peer].into_iter().filter_map(|n| find(seen, n).map(|l| (n.clone(), l.index))).collect();
        if !stale.is_empty() {
            let stale = &stale;
            router.netlink(|h| async move {
                for (name, index) in stale {
                    nl::del_link(&h, *index).await?;
                    steps.done(format!("delete link {name}"))?;
                }
                Ok(())
            })?;
        }
        let inst = &Netns::open_named(&iname)?;
        let (ip, len, gw, mac) = (port.ip, vs.cidr.prefix_len(), vs.gateway, port.mac.0);
        let pif_ref = &pif;
        inst.netlink(|h| async move {
            let links = nl::links(&h).await?;
            if let Some(old) = find(&links, INSTANCE_IF) {
                nl::del_link(&h, old.index).await?;
                steps.done("delete stale eth0")?;
            }
            nl::add_veth_into(&h, INSTANCE_IF, Some(mac), pif_ref, router, mtu).await?;
            steps.done(format!("create veth {INSTANCE_IF} to {pif_ref}"))?;
            let Some(eth0) = nl::link_index(&h, INSTANCE_IF).await? else { return Ok(()) };
            nl::add_addr(&h, eth0, ip, len).await?;
            nl::set_up(&h, eth0, Some(mtu)).await?;
            if let Some(lo) = find(&links, "lo") {
                if !lo.up {
                    nl::set_up(&h, lo.index, None).await?;
                }
            }
            nl::replace_route(&h, nl::unicast(Ipv4Addr::UNSPECIFIED, 0, eth0, Some(gw), MAIN_TABLE)).await?;
            steps.done(format!("configure eth0 of {}", port.instance_id))
        })?;
        router.netlink(|h| async move {
            let Some(i) = nl::link_index(&h, &pif).await? else { return Ok(()) };
            nl::add_addr(&h, i, gw, 32).await?;
            nl::set_alias(&h, i, &label).await?;
            no_proxy_delay(&pif)?;
            nl::set_up(&h, i, Some(mtu)).await?;
            steps.done(format!("bring {pif} up"))
        })
    }

    /// Removes ports no longer desired, then makes routes, neighbours and FDB entries match.
    async fn router_state(&self, h: &Handle) -> Result<()> {
        let steps = self.steps;
        // Ports made before their proxy delay was set (by older versions) get it now.
        for port in &self.vpc.ports {
            let pif = names::port_if(&port.instance_id);
            if no_proxy_delay(&pif)? {
                steps.done(format!("proxy_delay of {pif}"))?;
            }
        }
        let links = nl::links(h).await?;
        let wanted: BTreeSet<String> = self
            .vpc
            .ports
            .iter()
            .flat_map(|p| [names::port_if(&p.instance_id), names::port_peer_tmp(&p.instance_id)])
            .collect();
        for l in &links {
            let ours = l.name.starts_with('i') || l.name.starts_with('j');
            if ours && l.name.len() == 11 && !wanted.contains(&l.name) {
                nl::del_link(h, l.index).await?;
                steps.done(format!("delete port link {}", l.name))?;
            }
        }
        let links = nl::links(h).await?;
        let idx = |name: &str| find(&links, name).map(|l: &Link| l.index);
        let (Some(up), Some(vx)) = (idx(ROUTER_UPLINK), idx(ROUTER_VXLAN)) else { return Ok(()) };
        // Routes: (dst, len) → (device, gateway, unreachable).
        let mut want: BTreeMap<(Ipv4Addr, u8), (u32, Option<Ipv4Addr>, bool)> = BTreeMap::new();
        want.insert((Ipv4Addr::UNSPECIFIED, 0), (up, Some(self.vpc.transit.host), false));
        want.insert((self.vpc.cidr.network(), self.vpc.cidr.prefix_len()), (0, None, true));
        for p in &self.vpc.ports {
            if let Some(i) = idx(&names::port_if(&p.instance_id)) {
                want.insert((p.ip, 32), (i, None, false));
            }
        }
        for r in &self.vpc.remote_ports {
            want.insert((r.ip, 32), (vx, None, false));
        }
        let mut have = BTreeMap::new();
        for r in nl::routes(h, MAIN_TABLE).await? {
            if r.header.protocol == RouteProtocol::Kernel {
                continue;
            }
            let Some(dst) = nl::route_dst(&r) else { continue };
            let unreach = r.header.kind == RouteType::Unreachable;
            let gw = nl::route_gateway(&r);
            let cur = (nl::route_oif(&r).unwrap_or(0), gw, unreach);
            if want.get(&dst) == Some(&cur) {
                have.insert(dst, cur);
            } else {
                nl::del_route(h, r).await?;
                steps.done(format!("delete route {}/{}", dst.0, dst.1))?;
            }
        }
        for (dst, spec) in &want {
            if have.contains_key(dst) {
                continue;
            }
            let msg = match spec {
                (_, _, true) => nl::unreachable(dst.0, dst.1),
                (dev, gw, false) => nl::unicast(dst.0, dst.1, *dev, *gw, MAIN_TABLE),
            };
            nl::replace_route(h, msg).await?;
            steps.done(format!("route {}/{}", dst.0, dst.1))?;
        }
        // Static neighbours and FDB entries on vx0: no learning, no flooding.
        let want_neigh: BTreeMap<Ipv4Addr, [u8; 6]> =
            self.vpc.remote_ports.iter().map(|r| (r.ip, names::vtep_mac(r.underlay_ip))).collect();
        for m in nl::neighbours(h, vx, AddressFamily::Inet).await? {
            let ok =
                nl::neigh_dst(&m).is_some_and(|ip| want_neigh.get(&ip).map(|m| m.as_slice()) == nl::neigh_lladdr(&m));
            if ok {
                continue;
            }
            nl::del_neigh(h, m).await?;
            steps.done("delete stale neighbour")?;
        }
        let have_neigh: BTreeSet<Ipv4Addr> =
            nl::neighbours(h, vx, AddressFamily::Inet).await?.iter().filter_map(nl::neigh_dst).collect();
        for (ip, mac) in &want_neigh {
            if !have_neigh.contains(ip) {
                nl::replace_neigh(h, vx, *ip, *mac).await?;
                steps.done(format!("neighbour {ip}"))?;
            }
        }
        let want_fdb: BTreeMap<[u8; 6], Ipv4Addr> =
            self.vpc.remote_ports.iter().map(|r| (names::vtep_mac(r.underlay_ip), r.underlay_ip)).collect();
        let mut have_fdb = BTreeSet::new();
        for m in nl::neighbours(h, vx, AddressFamily::Bridge).await? {
            let Some(mac) = nl::neigh_lladdr(&m).and_then(|l| <[u8; 6]>::try_from(l).ok()) else { continue };
            if mac[..2] != [0x02, 0xfe] {
                continue;
            }
            if want_fdb.get(&mac).is_some_and(|dst| nl::neigh_dst(&m) == Some(*dst)) {
                have_fdb.insert(mac);
            } else {
                nl::del_neigh(h, m).await?;
                steps.done("delete stale fdb entry")?;
            }
        }
        for (mac, dst) in &want_fdb {
            if !have_fdb.contains(mac) {
                nl::replace_fdb(h, vx, *mac, *dst).await?;
                steps.done(format!("fdb entry to {dst}"))?;
            }
        }
        Ok(())
    }
}

/// Makes a port answer the ARP requests it proxies at once; whether that changed anything. The
/// kernel answers a proxied broadcast request after a random delay of up to the device's
/// `proxy_delay` (0.8 s by default; a namespace has no default of its own to change): a guest's
/// first packet to a neighbour in its vSwitch, or to an instance on another host, would wait
/// that long. Runs on a thread inside the router's namespace (`/proc/sys/net` follows it).
fn no_proxy_delay(port_if: &str) -> Result<bool> {
    let key = format!("net/ipv4/neigh/{port_if}/proxy_delay");
    if !std::path::Path::new("/proc/sys").join(&key).exists() {
        return Ok(false);
    }
    write_sysctl(&key, "0")
}

/// Gives `name` the address (replacing any other IPv4 address) and brings it up.
async fn ensure_addr_up(h: &Handle, name: &str, ip: Ipv4Addr, len: u8, mtu: Option<u32>, steps: &Steps) -> Result<()> {
    let links = nl::links(h).await?;
    let Some(l) = find(&links, name) else { return Ok(()) };
    let addrs = nl::addrs(h).await?;
    let mine: Vec<_> = addrs.iter().filter(|a| a.0 == l.index).collect();
    for a in &mine {
        if (a.1, a.2) != (ip, len) {
            nl::del_addr(h, a.0, a.1, a.2).await?;
            steps.done(format!("delete address {}/{} of {name}", a.1, a.2))?;
        }
    }
    if !mine.iter().any(|a| (a.1, a.2) == (ip, len)) {
        nl::add_addr(h, l.index, ip, len).await?;
        steps.done(format!("address {ip}/{len} on {name}"))?;
    }
    if !l.up {
        nl::set_up(h, l.index, mtu).await?;
        steps.done(format!("bring {name} up"))?;
    }
    Ok(())
}
