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
use crate::spec::{Direction, GroupKind, InnerAccessPolicy, Peer, Policy, Protocol, SecurityGroupSpec, SgRule, VpcSpec};

/// The nftables set holding a group's member IPs.
pub fn member_set(group_id: &str) -> String {
    format!("m_{}", short_hash(group_id, 12))
}

/// A regular (non-base) chain with its rules, each a list of nftables JSON expressions.
#[derive(Debug, Clone, PartialEq)]
pub struct Chain {
    pub name: String,
    pub rules: Vec<Vec<Value>>,
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

pub fn compile(vpc: &VpcSpec) -> Compiled {
    let groups: BTreeMap<&str, &SecurityGroupSpec> = vpc.security_groups.iter().map(|g| (g.id.as_str(), g)).collect();
    let mut out = Compiled::default();
    let mut chains = BTreeMap::new();
    let mut used_sets = BTreeSet::new();
    for port in &vpc.ports {
        let combo: BTreeSet<&str> = port.security_group_ids.iter().map(String::as_str).collect();
        let members: Vec<&SecurityGroupSpec> = combo.iter().filter_map(|id| groups.get(id).copied()).collect();
        let mut names = Vec::new();
        for dir in [Direction::Egress, Direction::Ingress] {
            let rules = chain_rules(&members, dir, &mut used_sets);
            let name = chain_name(&rules);
            chains.entry(name.clone()).or_insert(rules);
            names.push(name);
        }
        let ingress = names.pop().unwrap_or_default();
        let egress = names.pop().unwrap_or_default();
        out.dispatch.insert(crate::names::port_if(&port.instance_id), (egress, ingress));
    }
    out.chains = chains.into_iter().map(|(name, rules)| Chain { name, rules }).collect();
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

fn chain_name(rules: &[Vec<Value>]) -> String {
    let text = serde_json::to_string(rules).unwrap_or_default();
    format!("c_{}", short_hash(&text, 16))
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
            Peer::Cidr(net) => ip_match(
                peer_field,
                json!({"prefix": {"addr": net.network().to_string(), "len": net.prefix_len()}}),
            ),
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

    fn rule(dir: Direction, policy: Policy, priority: u8, proto: Protocol, ports: Option<(u16, u16)>, peer: Peer) -> SgRule {
        SgRule { direction: dir, policy, priority, protocol: proto, ports, peer }
    }

    fn group(id: &str, kind: GroupKind, inner: InnerAccessPolicy, rules: Vec<SgRule>) -> SecurityGroupSpec {
        SecurityGroupSpec { id: id.into(), kind, inner_access: inner, members: vec![], rules }
    }

    fn verdicts(rules: &[Vec<Value>]) -> Vec<String> {
        rules.iter().map(|r| r.last().and_then(|v| v.as_object()).and_then(|o| o.keys().next().cloned()).unwrap_or_default()).collect()
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
            vec![rule(Direction::Ingress, Policy::Drop, 1, Protocol::All, None, Peer::Cidr("10.0.0.0/8".parse().expect("cidr")))],
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
    fn equal_rule_sets_share_a_chain_and_names_follow_content() {
        let r1 = vec![vec![json!({"drop": null})]];
        let r2 = vec![vec![json!({"return": null})]];
        assert_eq!(chain_name(&r1), chain_name(&r1.clone()));
        assert_ne!(chain_name(&r1), chain_name(&r2));
    }
}
