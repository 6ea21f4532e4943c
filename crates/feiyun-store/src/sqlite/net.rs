//! VPCs, vSwitches, security groups, interfaces, public addresses and metered traffic.

use super::Exec;
use std::collections::HashMap;

use feiyun_domain::net::address::{mac_string, parse_mac};
use feiyun_domain::net::cidr::Ipv4Net;
use feiyun_domain::net::{
    Direction, GroupKind, InnerAccess, InternetCharge, Nic, Peer, Policy, Protocol, PublicIp, PublicIpKind, RuleSpec,
    SecurityGroup, SgRule, VSwitch, Vpc,
};
use feiyun_domain::usage::{TrafficCounter, TrafficUsage};
use rusqlite::{params, Connection, Row};

use super::{parse_ts, ts};
use crate::{NetKey, NetLoaded, NetWrites, StoreError};

fn corrupt(id: &str, what: impl Into<String>) -> StoreError {
    StoreError::Corrupt(id.to_string(), what.into())
}

fn cidr(id: &str, s: &str) -> Result<Ipv4Net, StoreError> {
    s.parse().map_err(|_| corrupt(id, format!("CIDR block {s}")))
}

fn ip(id: &str, s: &str) -> Result<std::net::Ipv4Addr, StoreError> {
    s.parse().map_err(|_| corrupt(id, format!("address {s}")))
}

fn kind_str(k: GroupKind) -> &'static str {
    match k {
        GroupKind::Basic => "Basic",
        GroupKind::Enterprise => "Enterprise",
    }
}

fn inner_str(a: InnerAccess) -> &'static str {
    match a {
        InnerAccess::Accept => "Accept",
        InnerAccess::Drop => "Drop",
    }
}

fn direction_str(d: Direction) -> &'static str {
    match d {
        Direction::Ingress => "Ingress",
        Direction::Egress => "Egress",
    }
}

fn policy_str(p: Policy) -> &'static str {
    match p {
        Policy::Accept => "Accept",
        Policy::Drop => "Drop",
    }
}

fn protocol_str(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "Tcp",
        Protocol::Udp => "Udp",
        Protocol::Icmp => "Icmp",
        Protocol::All => "All",
    }
}

fn vpc_from_row(r: &Row<'_>) -> Result<Vpc, StoreError> {
    let id: String = r.get(0)?;
    let block: String = r.get(4)?;
    let created: String = r.get(7)?;
    let available: String = r.get(8)?;
    Ok(Vpc {
        account_id: r.get(1)?,
        name: r.get(2)?,
        description: r.get(3)?,
        cidr: cidr(&id, &block)?,
        vni: u32::try_from(r.get::<_, i64>(5)?).map_err(|_| corrupt(&id, "VNI"))?,
        is_default: r.get(6)?,
        created_at: parse_ts(&id, &created)?,
        available_at: parse_ts(&id, &available)?,
        id,
    })
}

fn vswitch_from_row(r: &Row<'_>) -> Result<VSwitch, StoreError> {
    let id: String = r.get(0)?;
    let block: String = r.get(4)?;
    let created: String = r.get(8)?;
    let available: String = r.get(9)?;
    Ok(VSwitch {
        account_id: r.get(1)?,
        vpc_id: r.get(2)?,
        zone_id: r.get(3)?,
        cidr: cidr(&id, &block)?,
        name: r.get(5)?,
        description: r.get(6)?,
        is_default: r.get(7)?,
        created_at: parse_ts(&id, &created)?,
        available_at: parse_ts(&id, &available)?,
        id,
    })
}

fn rule_from_row(r: &Row<'_>) -> Result<(String, SgRule), StoreError> {
    let id: String = r.get(0)?;
    let group: String = r.get(1)?;
    let direction: String = r.get(2)?;
    let policy: String = r.get(3)?;
    let protocol: String = r.get(5)?;
    let from: Option<i64> = r.get(6)?;
    let to: Option<i64> = r.get(7)?;
    let peer_cidr: Option<String> = r.get(8)?;
    let peer_group: Option<String> = r.get(9)?;
    let created: String = r.get(11)?;
    let port = |p: i64| u16::try_from(p).map_err(|_| corrupt(&id, "port"));
    let spec = RuleSpec {
        direction: match direction.as_str() {
            "Ingress" => Direction::Ingress,
            "Egress" => Direction::Egress,
            _ => return Err(corrupt(&id, "direction")),
        },
        policy: match policy.as_str() {
            "Accept" => Policy::Accept,
            "Drop" => Policy::Drop,
            _ => return Err(corrupt(&id, "policy")),
        },
        priority: u8::try_from(r.get::<_, i64>(4)?).map_err(|_| corrupt(&id, "priority"))?,
        protocol: match protocol.as_str() {
            "Tcp" => Protocol::Tcp,
            "Udp" => Protocol::Udp,
            "Icmp" => Protocol::Icmp,
            "All" => Protocol::All,
            _ => return Err(corrupt(&id, "protocol")),
        },
        ports: match (from, to) {
            (Some(a), Some(b)) => Some((port(a)?, port(b)?)),
            _ => None,
        },
        peer: match (peer_cidr, peer_group) {
            (Some(c), None) => Peer::Cidr(cidr(&id, &c)?),
            (None, Some(g)) => Peer::Group(g),
            _ => return Err(corrupt(&id, "peer")),
        },
    };
    Ok((group, SgRule { spec, description: r.get(10)?, created_at: parse_ts(&id, &created)?, id }))
}

fn public_ip_from_row(r: &Row<'_>) -> Result<PublicIp, StoreError> {
    let id: String = r.get(0)?;
    let addr: String = r.get(1)?;
    let kind: String = r.get(3)?;
    let charge: String = r.get(8)?;
    let created: String = r.get(9)?;
    Ok(PublicIp {
        ip: ip(&id, &addr)?,
        account_id: r.get(2)?,
        kind: PublicIpKind::parse(&kind).ok_or_else(|| corrupt(&id, "kind"))?,
        instance_id: r.get(4)?,
        name: r.get(5)?,
        description: r.get(6)?,
        bandwidth_mbps: u32::try_from(r.get::<_, i64>(7)?).map_err(|_| corrupt(&id, "bandwidth"))?,
        charge: InternetCharge::parse(&charge).ok_or_else(|| corrupt(&id, "charge"))?,
        created_at: parse_ts(&id, &created)?,
        allocation_id: id,
    })
}

fn collect<T>(
    conn: &Connection,
    sql: &str,
    f: impl Fn(&Row<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut st = conn.prepare(sql)?;
    let mut rows = st.query([])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(f(r)?);
    }
    Ok(out)
}

pub(super) fn load(conn: &Connection) -> Result<NetLoaded, StoreError> {
    let vpcs = collect(
        conn,
        "SELECT id, account_id, name, description, cidr, vni, is_default, created_at, available_at FROM vpcs ORDER BY id",
        vpc_from_row,
    )?;
    let vswitches = collect(
        conn,
        "SELECT id, account_id, vpc_id, zone_id, cidr, name, description, is_default, created_at, available_at \
         FROM vswitches ORDER BY id",
        vswitch_from_row,
    )?;
    let mut groups = collect(
        conn,
        "SELECT id, account_id, vpc_id, name, description, kind, inner_access, is_default, created_at \
         FROM security_groups ORDER BY id",
        |r| {
            let id: String = r.get(0)?;
            let kind: String = r.get(5)?;
            let inner: String = r.get(6)?;
            let created: String = r.get(8)?;
            Ok(SecurityGroup {
                account_id: r.get(1)?,
                vpc_id: r.get(2)?,
                name: r.get(3)?,
                description: r.get(4)?,
                kind: match kind.as_str() {
                    "Basic" => GroupKind::Basic,
                    "Enterprise" => GroupKind::Enterprise,
                    _ => return Err(corrupt(&id, "group kind")),
                },
                inner_access: match inner.as_str() {
                    "Accept" => InnerAccess::Accept,
                    "Drop" => InnerAccess::Drop,
                    _ => return Err(corrupt(&id, "inner access policy")),
                },
                is_default: r.get(7)?,
                created_at: parse_ts(&id, &created)?,
                rules: Vec::new(),
                id,
            })
        },
    )?;
    let index: HashMap<String, usize> = groups.iter().enumerate().map(|(i, g)| (g.id.clone(), i)).collect();
    let rules = collect(
        conn,
        "SELECT id, group_id, direction, policy, priority, protocol, port_from, port_to, peer_cidr, peer_group, \
         description, created_at FROM security_group_rules ORDER BY group_id, position",
        rule_from_row,
    )?;
    for (group, rule) in rules {
        if let Some(&i) = index.get(&group) {
            groups[i].rules.push(rule);
        }
    }
    let mut nics = collect(
        conn,
        "SELECT instance_id, account_id, vpc_id, vswitch_id, private_ip, mac, eni_id, bandwidth_out, internet_charge \
         FROM instance_nics ORDER BY instance_id",
        |r| {
            let id: String = r.get(0)?;
            let addr: String = r.get(4)?;
            let mac: String = r.get(5)?;
            let charge: String = r.get(8)?;
            Ok(Nic {
                account_id: r.get(1)?,
                vpc_id: r.get(2)?,
                vswitch_id: r.get(3)?,
                ip: ip(&id, &addr)?,
                mac: parse_mac(&mac).ok_or_else(|| corrupt(&id, "MAC"))?,
                eni_id: r.get(6)?,
                security_group_ids: Vec::new(),
                bandwidth_out_mbps: u32::try_from(r.get::<_, i64>(7)?).map_err(|_| corrupt(&id, "bandwidth"))?,
                internet_charge: InternetCharge::parse(&charge).ok_or_else(|| corrupt(&id, "charge"))?,
                instance_id: id,
            })
        },
    )?;
    let index: HashMap<String, usize> = nics.iter().enumerate().map(|(i, n)| (n.instance_id.clone(), i)).collect();
    let members = collect(
        conn,
        "SELECT instance_id, group_id FROM security_group_members ORDER BY instance_id, position",
        |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
    )?;
    for (instance, group) in members {
        if let Some(&i) = index.get(&instance) {
            nics[i].security_group_ids.push(group);
        }
    }
    let public_ips = collect(
        conn,
        "SELECT allocation_id, ip, account_id, kind, instance_id, name, description, bandwidth, internet_charge, \
         created_at FROM public_ips ORDER BY allocation_id",
        public_ip_from_row,
    )?;
    let traffic_counters = collect(
        conn,
        "SELECT instance_id, host_id, in_bytes, out_bytes, seq FROM traffic_counters ORDER BY instance_id",
        |r| {
            Ok(TrafficCounter {
                instance_id: r.get(0)?,
                host_id: r.get(1)?,
                in_bytes: r.get::<_, i64>(2)? as u64,
                out_bytes: r.get::<_, i64>(3)? as u64,
                seq: r.get::<_, i64>(4)? as u64,
            })
        },
    )?;
    Ok(NetLoaded { vpcs, vswitches, groups, nics, public_ips, traffic_counters })
}

pub(super) fn write(tx: &Connection, w: &NetWrites) -> Result<(), StoreError> {
    for k in &w.deleted {
        match k {
            NetKey::Nic(id) => {
                tx.exec("DELETE FROM security_group_members WHERE instance_id = ?1", [id])?;
                tx.exec("DELETE FROM instance_nics WHERE instance_id = ?1", [id])?;
            }
            NetKey::PublicIp(id) => {
                tx.exec("DELETE FROM public_ips WHERE allocation_id = ?1", [id])?;
            }
            NetKey::SecurityGroup(id) => {
                tx.exec("DELETE FROM security_group_rules WHERE group_id = ?1", [id])?;
                tx.exec("DELETE FROM security_groups WHERE id = ?1", [id])?;
            }
            NetKey::VSwitch(id) => {
                tx.exec("DELETE FROM vswitches WHERE id = ?1", [id])?;
            }
            NetKey::Vpc(id) => {
                tx.exec("DELETE FROM vpcs WHERE id = ?1", [id])?;
            }
        }
    }
    for v in &w.vpcs {
        tx.exec(
            "INSERT INTO vpcs (id, account_id, name, description, cidr, vni, is_default, created_at, available_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT(id) DO UPDATE SET name = excluded.name, \
             description = excluded.description",
            params![
                v.id,
                v.account_id,
                v.name,
                v.description,
                v.cidr.to_string(),
                v.vni as i64,
                v.is_default,
                ts(&v.created_at),
                ts(&v.available_at)
            ],
        )?;
    }
    for s in &w.vswitches {
        tx.exec(
            "INSERT INTO vswitches (id, account_id, vpc_id, zone_id, cidr, name, description, is_default, created_at, \
             available_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT(id) DO UPDATE SET \
             name = excluded.name, description = excluded.description",
            params![
                s.id,
                s.account_id,
                s.vpc_id,
                s.zone_id,
                s.cidr.to_string(),
                s.name,
                s.description,
                s.is_default,
                ts(&s.created_at),
                ts(&s.available_at)
            ],
        )?;
    }
    for g in &w.groups {
        write_group(tx, g)?;
    }
    for p in &w.public_ips {
        tx.exec(
            "INSERT INTO public_ips (allocation_id, ip, account_id, kind, instance_id, name, description, bandwidth, \
             internet_charge, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
             ON CONFLICT(allocation_id) DO UPDATE SET instance_id = excluded.instance_id, name = excluded.name, \
             description = excluded.description, bandwidth = excluded.bandwidth, \
             internet_charge = excluded.internet_charge",
            params![
                p.allocation_id,
                p.ip.to_string(),
                p.account_id,
                p.kind.as_str(),
                p.instance_id,
                p.name,
                p.description,
                p.bandwidth_mbps as i64,
                p.charge.as_str(),
                ts(&p.created_at)
            ],
        )?;
    }
    for n in &w.nics {
        write_nic(tx, n)?;
    }
    Ok(())
}

fn write_group(tx: &Connection, g: &SecurityGroup) -> Result<(), StoreError> {
    tx.exec(
        "INSERT INTO security_groups (id, account_id, vpc_id, name, description, kind, inner_access, is_default, \
         created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT(id) DO UPDATE SET name = excluded.name, \
         description = excluded.description, inner_access = excluded.inner_access",
        params![
            g.id,
            g.account_id,
            g.vpc_id,
            g.name,
            g.description,
            kind_str(g.kind),
            inner_str(g.inner_access),
            g.is_default,
            ts(&g.created_at)
        ],
    )?;
    tx.exec("DELETE FROM security_group_rules WHERE group_id = ?1", [&g.id])?;
    let mut st = tx.prepare_cached(
        "INSERT INTO security_group_rules (id, group_id, position, direction, policy, priority, protocol, port_from, \
         port_to, peer_cidr, peer_group, description, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?;
    for (n, r) in g.rules.iter().enumerate() {
        let (peer_cidr, peer_group) = match &r.spec.peer {
            Peer::Cidr(c) => (Some(c.to_string()), None),
            Peer::Group(id) => (None, Some(id.clone())),
        };
        st.execute(params![
            r.id,
            g.id,
            n as i64,
            direction_str(r.spec.direction),
            policy_str(r.spec.policy),
            r.spec.priority as i64,
            protocol_str(r.spec.protocol),
            r.spec.ports.map(|p| p.0 as i64),
            r.spec.ports.map(|p| p.1 as i64),
            peer_cidr,
            peer_group,
            r.description,
            ts(&r.created_at)
        ])?;
    }
    Ok(())
}

fn write_nic(tx: &Connection, n: &Nic) -> Result<(), StoreError> {
    tx.exec(
        "INSERT INTO instance_nics (instance_id, account_id, vpc_id, vswitch_id, private_ip, mac, eni_id, \
         bandwidth_out, internet_charge) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT(instance_id) DO \
         UPDATE SET bandwidth_out = excluded.bandwidth_out, internet_charge = excluded.internet_charge",
        params![
            n.instance_id,
            n.account_id,
            n.vpc_id,
            n.vswitch_id,
            n.ip.to_string(),
            mac_string(&n.mac),
            n.eni_id,
            n.bandwidth_out_mbps as i64,
            n.internet_charge.as_str()
        ],
    )?;
    tx.exec("DELETE FROM security_group_members WHERE instance_id = ?1", [&n.instance_id])?;
    let mut st =
        tx.prepare_cached("INSERT INTO security_group_members (instance_id, group_id, position) VALUES (?1, ?2, ?3)")?;
    for (i, g) in n.security_group_ids.iter().enumerate() {
        st.execute(params![n.instance_id, g, i as i64])?;
    }
    Ok(())
}

pub(super) fn write_traffic(
    tx: &Connection,
    usage: &[TrafficUsage],
    counters: &[TrafficCounter],
) -> Result<(), StoreError> {
    for u in usage {
        tx.exec(
            "INSERT INTO traffic_usage (key, instance_id, account_id, at_s, in_bytes, out_bytes) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(key) DO NOTHING",
            params![u.key, u.instance_id, u.account_id, u.at_s, u.in_bytes as i64, u.out_bytes as i64],
        )?;
    }
    for c in counters {
        tx.exec(
            "INSERT INTO traffic_counters (instance_id, host_id, in_bytes, out_bytes, seq) VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT(instance_id) DO UPDATE SET host_id = excluded.host_id, in_bytes = excluded.in_bytes, \
             out_bytes = excluded.out_bytes, seq = excluded.seq",
            params![c.instance_id, c.host_id, c.in_bytes as i64, c.out_bytes as i64, c.seq as i64],
        )?;
    }
    Ok(())
}

pub(super) fn traffic_usage(
    conn: &Connection,
    account_id: Option<&str>,
    before_s: i64,
) -> Result<Vec<TrafficUsage>, StoreError> {
    let mut st = conn.prepare_cached(
        "SELECT key, instance_id, account_id, at_s, in_bytes, out_bytes FROM traffic_usage \
         WHERE (?1 IS NULL OR account_id = ?1) AND at_s < ?2 ORDER BY at_s, key",
    )?;
    let rows = st.query_map(params![account_id, before_s], |r| {
        Ok(TrafficUsage {
            key: r.get(0)?,
            instance_id: r.get(1)?,
            account_id: r.get(2)?,
            at_s: r.get(3)?,
            in_bytes: r.get::<_, i64>(4)? as u64,
            out_bytes: r.get::<_, i64>(5)? as u64,
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}
