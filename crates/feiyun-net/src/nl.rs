//! Small typed wrappers over rtnetlink: dumps that return what `apply` compares, and idempotent
//! changes (replace rather than add, "already gone" is success).

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;

use futures::TryStreamExt;
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::packet_route::link::{InfoData, InfoVeth, InfoVxlan, LinkAttribute, LinkFlags, LinkInfo, LinkMessage};
use rtnetlink::packet_route::neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage};
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute, RouteMessage, RouteScope, RouteType};
use rtnetlink::packet_route::rule::{RuleAction, RuleAttribute, RuleMessage};
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::{Handle, IpVersion, LinkUnspec, LinkVeth, LinkVxlan, RouteMessageBuilder};

use crate::error::{nl, Result};
use crate::ns::Netns;

/// What `apply` needs to know of a link.
#[derive(Debug, Clone)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub up: bool,
    pub mac: Vec<u8>,
    pub mtu: u32,
    pub vxlan_local: Option<Ipv4Addr>,
    pub alias: Option<String>,
}

fn is_gone(e: &rtnetlink::Error) -> bool {
    // ENODEV, ENOENT, ESRCH, EADDRNOTAVAIL: the thing to delete is already gone.
    matches!(e, rtnetlink::Error::NetlinkError(m) if matches!(m.raw_code().abs(), 19 | 2 | 3 | 99))
}

pub async fn links(h: &Handle) -> Result<Vec<Link>> {
    let msgs: Vec<LinkMessage> = h.link().get().execute().try_collect().await.map_err(nl("dump links"))?;
    Ok(msgs.into_iter().map(link_of).collect())
}

fn link_of(m: LinkMessage) -> Link {
    let mut link = Link {
        index: m.header.index,
        name: String::new(),
        up: m.header.flags.contains(LinkFlags::Up),
        mac: Vec::new(),
        mtu: 0,
        vxlan_local: None,
        alias: None,
    };
    for a in m.attributes {
        match a {
            LinkAttribute::IfName(n) => link.name = n,
            LinkAttribute::Address(mac) => link.mac = mac,
            LinkAttribute::Mtu(mtu) => link.mtu = mtu,
            LinkAttribute::IfAlias(a) => link.alias = Some(a),
            LinkAttribute::LinkInfo(infos) => {
                for info in infos {
                    if let LinkInfo::Data(InfoData::Vxlan(vx)) = info {
                        for v in vx {
                            if let InfoVxlan::Local(ip) = v {
                                link.vxlan_local = Some(ip);
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    link
}

pub fn find<'a>(links: &'a [Link], name: &str) -> Option<&'a Link> {
    links.iter().find(|l| l.name == name)
}

pub async fn link_index(h: &Handle, name: &str) -> Result<Option<u32>> {
    Ok(find(&links(h).await?, name).map(|l| l.index))
}

pub async fn del_link(h: &Handle, index: u32) -> Result<()> {
    match h.link().del(index).execute().await {
        Ok(()) => Ok(()),
        Err(e) if is_gone(&e) => Ok(()),
        Err(e) => Err(nl(format!("delete link {index}"))(e)),
    }
}

/// A veth pair `name` (with `mac`, if given) ↔ `peer`, the peer created directly in `peer_ns`:
/// no device ever moves between namespaces, which costs an RCU grace period (~20 ms) per move.
pub async fn add_veth_into(
    h: &Handle,
    name: &str,
    mac: Option<[u8; 6]>,
    peer: &str,
    peer_ns: &Netns,
    mtu: u32,
) -> Result<()> {
    let far = LinkUnspec::new_with_name(peer).setns_by_fd(peer_ns.file().as_raw_fd()).mtu(mtu).build();
    let mut b = LinkVeth::new(name, peer).mtu(mtu).set_info_data(InfoData::Veth(InfoVeth::Peer(far)));
    if let Some(mac) = mac {
        b = b.address(mac.to_vec());
    }
    h.link().add(b.build()).execute().await.map_err(nl(format!("create veth {name}")))
}

/// A VXLAN device created by a handle of the host namespace directly in `ns`: its UDP socket
/// stays in the host namespace (on the underlay), the device lives in `ns`.
pub async fn add_vxlan_into(
    h: &Handle,
    name: &str,
    vni: u32,
    local: Ipv4Addr,
    mac: [u8; 6],
    mtu: u32,
    ns: &Netns,
) -> Result<()> {
    let msg = LinkVxlan::new(name, vni)
        .local(local)
        .port(4789)
        .learning(false)
        .mtu(mtu)
        .address(mac.to_vec())
        .setns_by_fd(ns.file().as_raw_fd())
        .build();
    h.link().add(msg).execute().await.map_err(nl(format!("create vxlan {name} in {}", ns.label())))
}

pub async fn set_up(h: &Handle, index: u32, mtu: Option<u32>) -> Result<()> {
    let mut b = LinkUnspec::new_with_index(index).up();
    if let Some(mtu) = mtu {
        b = b.mtu(mtu);
    }
    h.link().set(b.build()).execute().await.map_err(nl(format!("bring link {index} up")))
}

/// Labels a link (its `ifalias`).
pub async fn set_alias(h: &Handle, index: u32, alias: &str) -> Result<()> {
    let msg = LinkUnspec::new_with_index(index).alias(alias).build();
    h.link().set(msg).execute().await.map_err(nl(format!("label link {index}")))
}

/// IPv4 addresses: (interface index, address, prefix length).
pub async fn addrs(h: &Handle) -> Result<Vec<(u32, Ipv4Addr, u8)>> {
    let msgs: Vec<_> = h.address().get().execute().try_collect().await.map_err(nl("dump addresses"))?;
    let mut out = Vec::new();
    for m in msgs {
        for a in &m.attributes {
            if let AddressAttribute::Local(IpAddr::V4(ip)) = a {
                out.push((m.header.index, *ip, m.header.prefix_len));
            }
        }
    }
    Ok(out)
}

pub async fn add_addr(h: &Handle, index: u32, ip: Ipv4Addr, len: u8) -> Result<()> {
    h.address().add(index, IpAddr::V4(ip), len).replace().execute().await.map_err(nl(format!("add address {ip}/{len}")))
}

pub async fn del_addr(h: &Handle, index: u32, ip: Ipv4Addr, len: u8) -> Result<()> {
    let msgs: Vec<_> =
        h.address().get().set_link_index_filter(index).execute().try_collect().await.map_err(nl("dump addresses"))?;
    for m in msgs {
        let hit = m.header.prefix_len == len
            && m.attributes.iter().any(|a| matches!(a, AddressAttribute::Local(IpAddr::V4(x)) if *x == ip));
        if hit {
            match h.address().del(m).execute().await {
                Ok(()) => {}
                Err(e) if is_gone(&e) => {}
                Err(e) => return Err(nl(format!("delete address {ip}/{len}"))(e)),
            }
        }
    }
    Ok(())
}

/// IPv4 routes of one table.
pub async fn routes(h: &Handle, table: u32) -> Result<Vec<RouteMessage>> {
    let filter = RouteMessageBuilder::<Ipv4Addr>::new().table_id(table).build();
    let msgs: Vec<RouteMessage> = h.route().get(filter).execute().try_collect().await.map_err(nl("dump routes"))?;
    Ok(msgs.into_iter().filter(|r| route_table(r) == table).collect())
}

pub fn route_table(r: &RouteMessage) -> u32 {
    r.attributes
        .iter()
        .find_map(|a| if let RouteAttribute::Table(t) = a { Some(*t) } else { None })
        .unwrap_or(u32::from(r.header.table))
}

pub fn route_dst(r: &RouteMessage) -> Option<(Ipv4Addr, u8)> {
    let len = r.header.destination_prefix_length;
    let dst = r.attributes.iter().find_map(|a| match a {
        RouteAttribute::Destination(RouteAddress::Inet(ip)) => Some(*ip),
        _ => None,
    });
    match dst {
        Some(ip) => Some((ip, len)),
        None if len == 0 => Some((Ipv4Addr::UNSPECIFIED, 0)),
        None => None,
    }
}

pub fn route_gateway(r: &RouteMessage) -> Option<Ipv4Addr> {
    r.attributes.iter().find_map(|a| match a {
        RouteAttribute::Gateway(RouteAddress::Inet(ip)) => Some(*ip),
        _ => None,
    })
}

pub fn route_oif(r: &RouteMessage) -> Option<u32> {
    r.attributes.iter().find_map(|a| if let RouteAttribute::Oif(i) = a { Some(*i) } else { None })
}

/// A route out of `dev` (directly, or via `gateway`), in `table`.
pub fn unicast(dst: Ipv4Addr, len: u8, dev: u32, gateway: Option<Ipv4Addr>, table: u32) -> RouteMessage {
    let mut b =
        RouteMessageBuilder::<Ipv4Addr>::new().destination_prefix(dst, len).output_interface(dev).table_id(table);
    b = match gateway {
        Some(gw) => b.gateway(gw),
        None => b.scope(RouteScope::Link),
    };
    b.build()
}

pub fn unreachable(dst: Ipv4Addr, len: u8) -> RouteMessage {
    RouteMessageBuilder::<Ipv4Addr>::new().destination_prefix(dst, len).kind(RouteType::Unreachable).build()
}

pub async fn replace_route(h: &Handle, r: RouteMessage) -> Result<()> {
    let what = format!("{:?}", route_dst(&r));
    h.route().add(r).replace().execute().await.map_err(nl(format!("replace route {what}")))
}

pub async fn del_route(h: &Handle, r: RouteMessage) -> Result<()> {
    match h.route().del(r).execute().await {
        Ok(()) => Ok(()),
        Err(e) if is_gone(&e) => Ok(()),
        Err(e) => Err(nl("delete route")(e)),
    }
}

/// Neighbours (IPv4) or FDB entries (bridge family) of one device.
pub async fn neighbours(h: &Handle, index: u32, family: AddressFamily) -> Result<Vec<NeighbourMessage>> {
    let msgs: Vec<NeighbourMessage> =
        h.neighbours().get().set_address_family(family).execute().try_collect().await.map_err(nl("dump neighbours"))?;
    Ok(msgs.into_iter().filter(|m| m.header.ifindex == index && m.header.family == family).collect())
}

/// The IPv4 destination of a neighbour, or of a VXLAN FDB entry (whose family is bridge, so the
/// address comes as raw bytes).
pub fn neigh_dst(m: &NeighbourMessage) -> Option<Ipv4Addr> {
    m.attributes.iter().find_map(|a| match a {
        NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)) => Some(*ip),
        NeighbourAttribute::Destination(NeighbourAddress::Other(b)) => {
            <[u8; 4]>::try_from(b.as_slice()).ok().map(Ipv4Addr::from)
        }
        _ => None,
    })
}

pub fn neigh_lladdr(m: &NeighbourMessage) -> Option<&[u8]> {
    m.attributes.iter().find_map(|a| match a {
        NeighbourAttribute::LinkLayerAddress(l) => Some(l.as_slice()),
        _ => None,
    })
}

pub async fn replace_neigh(h: &Handle, index: u32, ip: Ipv4Addr, mac: [u8; 6]) -> Result<()> {
    h.neighbours()
        .add(index, IpAddr::V4(ip))
        .link_layer_address(&mac)
        .replace()
        .execute()
        .await
        .map_err(nl(format!("replace neighbour {ip}")))
}

/// A static VXLAN forwarding entry: frames for `mac` go to `dst`.
pub async fn replace_fdb(h: &Handle, index: u32, mac: [u8; 6], dst: Ipv4Addr) -> Result<()> {
    let mut req = h.neighbours().add_bridge(index, &mac).flags(NeighbourFlags::Own).replace();
    req.message_mut().attributes.push(NeighbourAttribute::Destination(NeighbourAddress::Inet(dst)));
    req.execute().await.map_err(nl(format!("replace fdb entry to {dst}")))
}

pub async fn del_neigh(h: &Handle, m: NeighbourMessage) -> Result<()> {
    match h.neighbours().del(m).execute().await {
        Ok(()) => Ok(()),
        Err(e) if is_gone(&e) => Ok(()),
        Err(e) => Err(nl("delete neighbour")(e)),
    }
}

pub async fn rules(h: &Handle) -> Result<Vec<RuleMessage>> {
    h.rule().get(IpVersion::V4).execute().try_collect().await.map_err(nl("dump rules"))
}

pub fn rule_table(r: &RuleMessage) -> u32 {
    r.attributes
        .iter()
        .find_map(|a| if let RuleAttribute::Table(t) = a { Some(*t) } else { None })
        .unwrap_or(u32::from(r.header.table))
}

pub fn rule_priority(r: &RuleMessage) -> Option<u32> {
    r.attributes.iter().find_map(|a| if let RuleAttribute::Priority(p) = a { Some(*p) } else { None })
}

pub fn rule_source(r: &RuleMessage) -> Option<Ipv4Addr> {
    r.attributes.iter().find_map(|a| match a {
        RuleAttribute::Source(IpAddr::V4(ip)) => Some(*ip),
        _ => None,
    })
}

pub async fn add_rule(h: &Handle, from: Ipv4Addr, table: u32, priority: u32) -> Result<()> {
    h.rule()
        .add()
        .v4()
        .source_prefix(from, 32)
        .table_id(table)
        .action(RuleAction::ToTable)
        .priority(priority)
        .execute()
        .await
        .map_err(nl(format!("add rule from {from}")))
}

pub async fn del_rule(h: &Handle, r: RuleMessage) -> Result<()> {
    match h.rule().del(r).execute().await {
        Ok(()) => Ok(()),
        Err(e) if is_gone(&e) => Ok(()),
        Err(e) => Err(nl("delete rule")(e)),
    }
}
