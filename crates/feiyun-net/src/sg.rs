//! Security groups compiled to nftables chains (pure: no IO).
//!
//! Alibaba's semantics: the rules of all groups of an instance are merged and sorted by priority
//! (1 first); at equal priority drop comes before accept; the first match decides. A basic group
//! with `InnerAccessPolicy=Accept` lets its members reach each other before any rule is looked
//! at; without a matching rule, a basic group lets traffic out and nothing in, an enterprise
//! group neither.
//!
//! Ports with the same set of groups share one chain per direction. A chain's name is a hash of
//! its rules, so a chain that exists already has the right content: `apply` only creates chains
//! that are new, repoints the per-port dispatch maps and deletes chains nobody uses, all in one
//! nftables transaction. Within a chain "allow" is `return` (the packet goes on to the other
//! direction's check, then is accepted) and "deny" is `drop`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use crate::names::short_hash;
use crate::spec::{
    Direction, GroupKind, InnerAccessPolicy, Peer, Policy, Protocol, SecurityGroupSpec, SgRule, VpcSpec,
};

/// The nftables set holding a group's member IPs.
pub fn member_set(group_id: &str) -> String {
    format!("m_{}", short_hash(group_id, 12))
}

/// A security-group chain: its content-derived name and what it is made of. Its rules are
/// rendered only when the chain does not exist yet ([`render`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Chain {
    pub name: String,
    pub direction: Direction,
    pub groups: Vec<String>,
}

/// What the firewall of one VPC's router needs from its security groups.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Compiled {
    /// Port interface → (egress chain, ingress chain).
    pub dispatch: BTreeMap<String, (String, String)>,
    pub chains: Vec<Chain>,
    /// Member sets to keep: set name → member IPs.
    pub sets: BTreeMap<String, Vec<std::net::Ipv4Addr>>,
}

/// Bumped whenever the rendering of rules changes, so old chains are replaced.
const SCHEME: &str = "v1";

pub fn compile(vpc: &VpcSpec) -> Compiled {
    let groups: BTreeMap<&str, &SecurityGroupSpec> = vpc.security_groups.iter().map(|g| (g.id.as_str(), g)).collect();
    let mut out = Compiled::default();
    let mut chains: BTreeMap<String, Chain> = BTreeMap::new();
    let mut used_sets = BTreeSet::new();
    // Ports with the same groups share their chains: name each set of groups once. The name
    // hashes the typed inputs (cheap), not the rendered rules.
    let mut by_combo: BTreeMap<BTreeSet<&str>, (String, String)> = BTreeMap::new();
    for port in &vpc.ports {
        let combo: BTreeSet<&str> = port.security_group_ids.iter().map(String::as_str).collect();
        if let Some(pair) = by_combo.get(&combo) {
            out.dispatch.insert(crate::names::port_if(&port.instance_id), pair.clone());
            continue;
        }
        let members: Vec<&SecurityGroupSpec> = combo.iter().filter_map(|id| groups.get(id).copied()).collect();
        for g in &members {
            if g.kind == GroupKind::Basic && g.inner_access == InnerAccessPolicy::Accept {
                used_sets.insert(g.id.clone());
            }
            for r in &g.rules {
                if let Peer::Group(id) = &r.peer {
                    used_sets.insert(id.clone());
                }
            }
        }
        let mut names = Vec::new();
        for dir in [Direction::Egress, Direction::Ingress] {
            let key: Vec<_> = members.iter().map(|g| (&g.id, g.kind, g.inner_access, &g.rules)).collect();
            let text = format!("{SCHEME} {dir:?} {}", serde_json::to_string(&key).unwrap_or_default());
            let name = format!("c_{}", short_hash(&text, 16));
            chains.entry(name.clone()).or_insert_with(|| Chain {
                name: name.clone(),
                direction: dir,
                groups: members.iter().map(|g| g.id.clone()).collect(),
            });
            names.push(name);
        }
        let ingress = names.pop().unwrap_or_default();
        let egress = names.pop().unwrap_or_default();
        by_combo.insert(combo, (egress.clone(), ingress.clone()));
        out.dispatch.insert(crate::names::port_if(&port.instance_id), (egress, ingress));
    }
    out.chains = chains.into_values().collect();
    for id in used_sets {
        if let Some(g) = groups.get(id.as_str()) {
            let mut ips = g.members.clone();
            ips.sort();
            ips.dedup();
            out.sets.insert(member_set(&g.id), ips);
        }
    }
    out
}

/// The rules of a chain, as nftables JSON expressions.
pub fn render(vpc: &VpcSpec, chain: &Chain) -> Vec<Vec<Value>> {
    let members: Vec<&SecurityGroupSpec> =
        chain.groups.iter().filter_map(|id| vpc.security_groups.iter().find(|g| &g.id == id)).collect();
    chain_rules(&members, chain.direction, &mut BTreeSet::new())
}

/// The merged, ordered rules of one direction for a port in `groups`.
pub fn chain_rules(groups: &[&SecurityGroupSpec], dir: Direction, used_sets: &mut BTreeSet<String>) -> Vec<Vec<Value>> {
    let peer_field = match dir {
        Direction::Ingress => "saddr",
        Direction::Egress => "daddr",
    };
    let mut out = Vec::new();
    // Inner access Accept comes before every rule.
    for g in groups {
        if g.kind == GroupKind::Basic && g.inner_access == InnerAccessPolicy::Accept {
            used_sets.insert(g.id.clone());
            out.push(vec![ip_match(peer_field, json!(format!("@{}", member_set(&g.id)))), json!({"return": null})]);
        }
    }
    let mut rules: Vec<(usize, &SgRule)> =
        groups.iter().flat_map(|g| g.rules.iter()).filter(|r| r.direction == dir).enumerate().collect();
    // Stable: priority, then drop before accept, then the order given.
    rules.sort_by_key(|(i, r)| (r.priority, r.policy, *i));
    for (_, r) in rules {
        let mut exprs = proto_match(r);
        exprs.push(match &r.peer {
            Peer::Cidr(net) if net.prefix_len() == 32 => ip_match(peer_field, json!(net.addr().to_string())),
            Peer::Cidr(net) if net.prefix_len() == 0 => Value::Null,
            Peer::Cidr(net) => {
                ip_match(peer_field, json!({"prefix": {"addr": net.network().to_string(), "len": net.prefix_len()}}))
            }
            Peer::Group(id) => {
                used_sets.insert(id.clone());
                ip_match(peer_field, json!(format!("@{}", member_set(id))))
            }
        });
        exprs.retain(|e| !e.is_null());
        exprs.push(match r.policy {
            Policy::Accept => json!({"return": null}),
            Policy::Drop => json!({"drop": null}),
        });
        out.push(exprs);
    }
    let default_allows = dir == Direction::Egress && groups.iter().all(|g| g.kind == GroupKind::Basic);
    // No group at all: nothing is allowed in, everything out (like a basic group without rules).
    if !default_allows {
        out.push(vec![json!({"drop": null})]);
    }
    out
}

fn ip_match(field: &str, right: Value) -> Value {
    json!({"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": field}}, "right": right}})
}

fn proto_match(r: &SgRule) -> Vec<Value> {
    let name = match r.protocol {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
        Protocol::Icmp => "icmp",
        Protocol::All => return Vec::new(),
    };
    let mut out = vec![json!({"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": name}})];
    if let (Protocol::Tcp | Protocol::Udp, Some((a, b))) = (r.protocol, r.ports) {
        if (a, b) != (1, 65535) {
            let right = if a == b { json!(a) } else { json!({"range": [a, b]}) };
            out.push(json!({"match": {"op": "==", "left": {"payload": {"protocol": name, "field": "dport"}}, "right": right}}));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::*;

    fn rule(
        dir: Direction,
        policy: Policy,
        priority: u8,
        proto: Protocol,
        ports: Option<(u16, u16)>,
        peer: Peer,
    ) -> SgRule {
        SgRule { direction: dir, policy, priority, protocol: proto, ports, peer }
    }

    fn group(id: &str, kind: GroupKind, inner: InnerAccessPolicy, rules: Vec<SgRule>) -> SecurityGroupSpec {
        SecurityGroupSpec { id: id.into(), kind, inner_access: inner, members: vec![], rules }
    }

    fn verdicts(rules: &[Vec<Value>]) -> Vec<String> {
        rules
            .iter()
            .map(|r| r.last().and_then(|v| v.as_object()).and_then(|o| o.keys().next().cloned()).unwrap_or_default())
            .collect()
    }

    #[test]
    fn merged_rules_sort_by_priority_with_drop_first_on_ties() {
        let any: Peer = Peer::Cidr("0.0.0.0/0".parse().expect("cidr"));
        let a = group(
            "sg-a",
            GroupKind::Basic,
            InnerAccessPolicy::Drop,
            vec![
                rule(Direction::Ingress, Policy::Accept, 5, Protocol::Tcp, Some((22, 22)), any.clone()),
                rule(Direction::Ingress, Policy::Accept, 1, Protocol::Icmp, None, any.clone()),
            ],
        );
        let b = group(
            "sg-b",
            GroupKind::Basic,
            InnerAccessPolicy::Drop,
            vec![rule(Direction::Ingress, Policy::Drop, 5, Protocol::Tcp, Some((20, 30)), any.clone())],
        );
        let mut sets = BTreeSet::new();
        let rules = chain_rules(&[&a, &b], Direction::Ingress, &mut sets);
        assert_eq!(verdicts(&rules), ["return", "drop", "return", "drop"]);
        // The priority-5 drop (from sg-b) precedes the priority-5 accept (from sg-a).
        assert!(rules[1].iter().any(|e| e.to_string().contains("[20,30]")));
        let egress = chain_rules(&[&a, &b], Direction::Egress, &mut sets);
        assert!(egress.is_empty(), "basic groups let everything out by default");
    }

    #[test]
    fn inner_accept_comes_first_and_enterprise_denies_both_ways() {
        let g = group(
            "sg-a",
            GroupKind::Basic,
            InnerAccessPolicy::Accept,
            vec![rule(
                Direction::Ingress,
                Policy::Drop,
                1,
                Protocol::All,
                None,
                Peer::Cidr("10.0.0.0/8".parse().expect("cidr")),
            )],
        );
        let mut sets = BTreeSet::new();
        let rules = chain_rules(&[&g], Direction::Ingress, &mut sets);
        assert!(rules[0][0].to_string().contains(&member_set("sg-a")));
        assert_eq!(verdicts(&rules), ["return", "drop", "drop"]);
        let e = group("sg-e", GroupKind::Enterprise, InnerAccessPolicy::Drop, vec![]);
        assert_eq!(verdicts(&chain_rules(&[&e], Direction::Egress, &mut sets)), ["drop"]);
        assert_eq!(verdicts(&chain_rules(&[&e], Direction::Ingress, &mut sets)), ["drop"]);
    }

    #[test]
    fn ports_with_the_same_groups_share_chains_and_names_follow_content() {
        let g = group("sg-a", GroupKind::Basic, InnerAccessPolicy::Accept, vec![]);
        let port = |id: &str| PortSpec {
            instance_id: id.into(),
            vswitch_id: "vsw".into(),
            mac: MacAddr([2, 0, 0, 0, 0, 1]),
            ip: "192.168.1.10".parse().expect("ip"),
            security_group_ids: vec!["sg-a".into()],
            egress_mbps: None,
            eip: None,
        };
        let mut vpc = VpcSpec {
            vpc_id: "vpc".into(),
            vni: 1,
            cidr: "192.168.0.0/16".parse().expect("cidr"),
            transit: TransitLink {
                host: "100.127.0.1".parse().expect("ip"),
                router: "100.127.0.2".parse().expect("ip"),
                prefix_len: 30,
            },
            vswitches: vec![],
            ports: vec![port("i-1"), port("i-2")],
            remote_ports: vec![],
            security_groups: vec![g],
        };
        let a = compile(&vpc);
        assert_eq!(a.chains.len(), 2);
        assert_eq!(a.dispatch.values().collect::<BTreeSet<_>>().len(), 1);
        vpc.security_groups[0].inner_access = InnerAccessPolicy::Drop;
        let b = compile(&vpc);
        assert!(a.chains.iter().all(|c| !b.chains.iter().any(|d| d.name == c.name)));
    }
}
