//! The host namespace's part, and the removal of whatever carries this host's prefix but is not
//! desired (or, on teardown, everything that carries it).

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use rtnetlink::packet_route::route::RouteProtocol;
use rtnetlink::Handle;

use crate::error::Result;
use crate::names::{self, HostLink, OwnedNs, ROUTER_UPLINK, ROUTER_VXLAN, RULE_PRIORITY};
use crate::nl::{self, find};
use crate::ns::{self, write_sysctl, Netns};
use crate::spec::HostNetSpec;
use crate::steps::Steps;

const MAIN_TABLE: u32 = 254;

/// Deletes a router namespace the way that leaves nothing behind at once: the links whose
/// removal the kernel would otherwise finish later (the host end of the transit link, the VXLAN
/// device holding a UDP socket in the host namespace) go first, synchronously.
pub(crate) fn delete_router(host: &Netns, prefix: &str, vni: u32, steps: &Steps) -> Result<()> {
    let name = names::router_ns(prefix, vni);
    if ns::is_mounted_ns(&ns::netns_path(&name))? {
        let router = Netns::open_named(&name)?;
        router.netlink(|h| async move {
            for dev in [ROUTER_VXLAN, ROUTER_UPLINK] {
                if let Some(i) = nl::link_index(&h, dev).await? {
                    nl::del_link(&h, i).await?;
                    steps.done(format!("delete {dev} of {name}"))?;
                }
            }
            Ok(())
        })?;
    }
    host.netlink(|h| async move {
        let links = nl::links(&h).await?;
        for kind in [HostLink::Transit, HostLink::RouterEnd, HostLink::Vxlan] {
            let n = names::host_link(prefix, kind, vni);
            if let Some(l) = find(&links, &n) {
                nl::del_link(&h, l.index).await?;
                steps.done(format!("delete link {n}"))?;
            }
        }
        Ok(())
    })?;
    let name = names::router_ns(prefix, vni);
    if ns::netns_path(&name).exists() {
        ns::delete_named(&name)?;
        steps.done(format!("delete namespace {name}"))?;
    }
    Ok(())
}

/// Removes namespaces, host links and rules of `prefix` that `keep` does not name (all of them
/// when `keep` is `None`).
pub(crate) fn sweep(host: &Netns, prefix: &str, keep: Option<&HostNetSpec>, steps: &Steps) -> Result<()> {
    let vnis: BTreeSet<u32> = keep.map(|s| s.vpcs.iter().map(|v| v.vni).collect()).unwrap_or_default();
    let instances: BTreeSet<&str> = keep
        .map(|s| s.vpcs.iter().flat_map(|v| v.ports.iter().map(|p| p.instance_id.as_str())).collect())
        .unwrap_or_default();
    for name in ns::list_named()? {
        match names::parse_ns(prefix, &name) {
            Some(OwnedNs::Router(vni)) if !vnis.contains(&vni) => delete_router(host, prefix, vni, steps)?,
            Some(OwnedNs::Instance(id)) if !instances.contains(id.as_str()) => {
                ns::delete_named(&name)?;
                steps.done(format!("delete namespace {name}"))?;
            }
            _ => {}
        }
    }
    host.netlink(|h| async move {
        for l in nl::links(&h).await? {
            if let Some((_, vni)) = names::parse_host_link(prefix, &l.name) {
                if !vnis.contains(&vni) {
                    nl::del_link(&h, l.index).await?;
                    steps.done(format!("delete link {}", l.name))?;
                }
            }
        }
        for r in nl::rules(&h).await? {
            let Some(vni) = names::vni_of_rule_table(nl::rule_table(&r)) else { continue };
            if nl::rule_priority(&r) == Some(RULE_PRIORITY) && !vnis.contains(&vni) {
                nl::del_rule(&h, r).await?;
                steps.done(format!("delete rule of VNI {vni}"))?;
            }
        }
        Ok(())
    })?;
    if keep.is_none() {
        let table = names::host_table(prefix);
        host.run(|| -> Result<()> {
            let tables = crate::nft::names_of(&crate::nft::list(&["tables", "ip"])?, "table", "ip", None);
            if tables.contains(&table) {
                let mut b = crate::nft::Batch::default();
                b.push(format!("delete table ip {table}"));
                crate::nft::run(&b)?;
                steps.done(format!("delete table {table}"))?;
            }
            Ok(())
        })??;
    }
    Ok(())
}

/// Forwarding, EIP routes, the per-VPC tables and rules that send metadata replies back to the
/// right router, and the host's nftables table.
///
/// `sent` is the host table's batch this process applied last (`None`: unknown); the same batch
/// again is not sent.
pub(crate) fn apply_host(
    host: &Netns,
    spec: &HostNetSpec,
    steps: &Steps,
    sent: &std::sync::Mutex<Option<String>>,
) -> Result<usize> {
    host.netlink(|h| async move {
        if !spec.vpcs.is_empty() && write_sysctl("net/ipv4/ip_forward", "1")? {
            steps.done("enable forwarding")?;
        }
        routes_and_rules(&h, spec, steps).await
    })?;
    let batch = crate::nft::host_batch(spec);
    let text = batch.text();
    let mut last = sent.lock().unwrap_or_else(|p| p.into_inner());
    if last.as_deref() == Some(text.as_str()) {
        return Ok(0);
    }
    *last = None;
    host.run(|| crate::nft::run(&batch))??;
    *last = Some(text);
    Ok(batch.len())
}

async fn routes_and_rules(h: &Handle, spec: &HostNetSpec, steps: &Steps) -> Result<()> {
    let links = nl::links(h).await?;
    let mut transit_index = BTreeMap::new();
    for vpc in &spec.vpcs {
        if let Some(l) = find(&links, &names::host_link(&spec.prefix, HostLink::Transit, vpc.vni)) {
            transit_index.insert(vpc.vni, l.index);
        }
    }
    // (table, dst) → (dev, gateway)
    let mut want: BTreeMap<(u32, Ipv4Addr, u8), (u32, Ipv4Addr)> = BTreeMap::new();
    for vpc in &spec.vpcs {
        let Some(&dev) = transit_index.get(&vpc.vni) else { continue };
        for p in &vpc.ports {
            if let Some(eip) = p.eip {
                want.insert((MAIN_TABLE, eip, 32), (dev, vpc.transit.router));
            }
        }
        let table = names::host_rule_table(vpc.vni);
        want.insert((table, vpc.cidr.network(), vpc.cidr.prefix_len()), (dev, vpc.transit.router));
    }
    let ours: BTreeSet<u32> = transit_index.values().copied().collect();
    let mut tables: BTreeSet<u32> = spec.vpcs.iter().map(|v| names::host_rule_table(v.vni)).collect();
    tables.insert(MAIN_TABLE);
    let mut have = BTreeSet::new();
    for table in tables {
        for r in nl::routes(h, table).await? {
            if r.header.protocol == RouteProtocol::Kernel {
                continue;
            }
            let (Some(dst), Some(oif)) = (nl::route_dst(&r), nl::route_oif(&r)) else { continue };
            if table == MAIN_TABLE && !ours.contains(&oif) {
                continue; // not ours
            }
            let key = (table, dst.0, dst.1);
            if want.get(&key) == Some(&(oif, nl::route_gateway(&r).unwrap_or(Ipv4Addr::UNSPECIFIED))) {
                have.insert(key);
            } else {
                nl::del_route(h, r).await?;
                steps.done(format!("delete host route {}/{}", dst.0, dst.1))?;
            }
        }
    }
    for (key, (dev, gw)) in &want {
        if !have.contains(key) {
            nl::replace_route(h, nl::unicast(key.1, key.2, *dev, Some(*gw), key.0)).await?;
            steps.done(format!("host route {}/{} table {}", key.1, key.2, key.0))?;
        }
    }
    let want_rules: BTreeMap<u32, Ipv4Addr> =
        spec.vpcs.iter().map(|v| (names::host_rule_table(v.vni), v.transit.host)).collect();
    let mut have_rules = BTreeSet::new();
    for r in nl::rules(h).await? {
        let table = nl::rule_table(&r);
        if names::vni_of_rule_table(table).is_none() || nl::rule_priority(&r) != Some(RULE_PRIORITY) {
            continue;
        }
        if want_rules.get(&table) == nl::rule_source(&r).as_ref() && !have_rules.contains(&table) {
            have_rules.insert(table);
        } else {
            nl::del_rule(h, r).await?;
            steps.done(format!("delete rule for table {table:#x}"))?;
        }
    }
    for (table, from) in &want_rules {
        if !have_rules.contains(table) {
            nl::add_rule(h, *from, *table, RULE_PRIORITY).await?;
            steps.done(format!("rule from {from} to table {table:#x}"))?;
        }
    }
    Ok(())
}
