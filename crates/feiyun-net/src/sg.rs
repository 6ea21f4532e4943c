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
//!
//! Consecutive rules of the sorted list with the same verdict are one nftables rule over a set
//! of `protocol . address . port range` elements (`protocol . address` for rules without ports):
//! within such a run the order does not matter, since any of them matching gives the same
//! verdict, and a packet matching none goes on to the next run as it would have gone on to the
//! next rule. A run is cut where a rule names a group (its addresses are a named set, not an
//! element) and where a rule's element would overlap one already in the run (the kernel's
//! interval sets refuse overlapping elements). A thousand rules of a few alternating verdicts
//! become a few dozen nftables rules, which `nft` reads several times faster, and a new
//! connection is checked against a few set lookups instead of a thousand rules.

use std::collections::{BTreeMap, BTreeSet};

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
const SCHEME: &str = "v2";

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

/// The rules of a chain, as nftables rule bodies (what follows `add rule ip <table> <chain>`).
pub fn render(vpc: &VpcSpec, chain: &Chain) -> Vec<String> {
    let members: Vec<&SecurityGroupSpec> =
        chain.groups.iter().filter_map(|id| vpc.security_groups.iter().find(|g| &g.id == id)).collect();
    chain_rules(&members, chain.direction, &mut BTreeSet::new())
}

/// One step of a chain: what it matches and what it decides.
#[derive(Debug, Clone, PartialEq)]
pub enum Step<'a> {
    /// The peer is a member of this basic group with inner access Accept: go on.
    Inner(&'a str),
    /// Any of these rules (all of one verdict) matching decides.
    Rules(Policy, Vec<&'a SgRule>),
    /// Nothing matched: drop.
    Drop,
}

/// The steps of one direction of a chain for a port in `groups`, in order: inner access first,
/// then the merged and sorted rules in runs, then the default.
pub fn steps<'a>(groups: &[&'a SecurityGroupSpec], dir: Direction) -> Vec<Step<'a>> {
    let mut out = Vec::new();
    for g in groups {
        if g.kind == GroupKind::Basic && g.inner_access == InnerAccessPolicy::Accept {
            out.push(Step::Inner(g.id.as_str()));
        }
    }
    let mut rules: Vec<(usize, &SgRule)> =
        groups.iter().flat_map(|g| g.rules.iter()).filter(|r| r.direction == dir).enumerate().collect();
    // Stable: priority, then drop before accept, then the order given.
    rules.sort_by_key(|(i, r)| (r.priority, r.policy, *i));
    for (_, r) in rules {
        if let Some(Step::Rules(policy, run)) = out.last_mut() {
            if *policy == r.policy && joins(run, r) {
                if !run.iter().any(|o| element(o) == element(r)) {
                    run.push(r);
                }
                continue;
            }
        }
        out.push(Step::Rules(r.policy, vec![r]));
    }
    let default_allows = dir == Direction::Egress && groups.iter().all(|g| g.kind == GroupKind::Basic);
    // No group at all: nothing is allowed in, everything out (like a basic group without rules).
    if !default_allows {
        out.push(Step::Drop);
    }
    out
}

/// What a rule matches when it is an element of a run's set: protocol numbers, an address
/// block, and a port range (`None` for rules that match any port).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Element {
    protocols: (u8, u8),
    block: (u32, u32),
    ports: Option<(u16, u16)>,
}

fn element(r: &SgRule) -> Option<Element> {
    let Peer::Cidr(net) = &r.peer else { return None };
    let protocols = match r.protocol {
        Protocol::Tcp => (6, 6),
        Protocol::Udp => (17, 17),
        Protocol::Icmp => (1, 1),
        Protocol::All => (0, 255),
    };
    let block = (u32::from(net.network()), u32::from(net.broadcast()));
    Some(Element { protocols, block, ports: port_range(r) })
}

/// The ports a rule is limited to; `None` when it matches any (no ports, or 1-65535).
fn port_range(r: &SgRule) -> Option<(u16, u16)> {
    match (r.protocol, r.ports) {
        (Protocol::Tcp | Protocol::Udp, Some(p)) if p != (1, 65535) => Some(p),
        _ => None,
    }
}

fn overlap(a: (u32, u32), b: (u32, u32)) -> bool {
    a.0 <= b.1 && b.0 <= a.1
}

impl Element {
    fn overlaps(&self, o: &Element) -> bool {
        let wide = |p: (u8, u8)| (u32::from(p.0), u32::from(p.1));
        let ports = |p: (u16, u16)| (u32::from(p.0), u32::from(p.1));
        overlap(wide(self.protocols), wide(o.protocols))
            && overlap(self.block, o.block)
            && match (self.ports, o.ports) {
                (Some(a), Some(b)) => overlap(ports(a), ports(b)),
                _ => true,
            }
    }
}

/// Whether `r` may join `run` as one more element of its set: both are blocks (not groups), of
/// the same shape (with ports or without), and `r` overlaps no element of the run but an equal
/// one (which it then simply repeats).
fn joins(run: &[&SgRule], r: &SgRule) -> bool {
    let Some(e) = element(r) else { return false };
    run.iter().all(|o| match element(o) {
        Some(x) => x.ports.is_some() == e.ports.is_some() && (x == e || !x.overlaps(&e)),
        None => false,
    })
}

/// The merged, ordered rules of one direction for a port in `groups`, as nftables rule bodies.
pub fn chain_rules(groups: &[&SecurityGroupSpec], dir: Direction, used_sets: &mut BTreeSet<String>) -> Vec<String> {
    let field = match dir {
        Direction::Ingress => "saddr",
        Direction::Egress => "daddr",
    };
    let mut out = Vec::new();
    for step in steps(groups, dir) {
        match step {
            Step::Inner(id) => {
                used_sets.insert(id.to_string());
                out.push(format!("ip {field} @{} return", member_set(id)));
            }
            Step::Drop => out.push("drop".to_string()),
            Step::Rules(policy, run) => {
                let verdict = match policy {
                    Policy::Accept => "return",
                    Policy::Drop => "drop",
                };
                if let [r] = run.as_slice() {
                    let mut parts = proto_match(r);
                    match &r.peer {
                        Peer::Cidr(net) if net.prefix_len() == 0 => {}
                        Peer::Cidr(net) => parts.push(format!("ip {field} {}", block(net))),
                        Peer::Group(id) => {
                            used_sets.insert(id.clone());
                            parts.push(format!("ip {field} @{}", member_set(id)));
                        }
                    }
                    parts.push(verdict.to_string());
                    out.push(parts.join(" "));
                    continue;
                }
                let ported = run.first().and_then(|r| port_range(r)).is_some();
                let key = if ported {
                    format!("meta l4proto . ip {field} . th dport")
                } else {
                    format!("meta l4proto . ip {field}")
                };
                let elements: Vec<String> = run
                    .iter()
                    .filter_map(|r| {
                        let Peer::Cidr(net) = &r.peer else { return None };
                        let proto = match r.protocol {
                            Protocol::Tcp => "tcp",
                            Protocol::Udp => "udp",
                            Protocol::Icmp => "icmp",
                            Protocol::All => "0-255",
                        };
                        Some(match port_range(r) {
                            Some((a, b)) if a == b => format!("{proto} . {} . {a}", block(net)),
                            Some((a, b)) => format!("{proto} . {} . {a}-{b}", block(net)),
                            None => format!("{proto} . {}", block(net)),
                        })
                    })
                    .collect();
                out.push(format!("{key} {{ {} }} {verdict}", elements.join(", ")));
            }
        }
    }
    out
}

fn block(net: &ipnet::Ipv4Net) -> String {
    if net.prefix_len() == 32 {
        net.addr().to_string()
    } else {
        format!("{}/{}", net.network(), net.prefix_len())
    }
}

fn proto_match(r: &SgRule) -> Vec<String> {
    let name = match r.protocol {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
        Protocol::Icmp => "icmp",
        Protocol::All => return Vec::new(),
    };
    match port_range(r) {
        Some((a, b)) if a == b => vec![format!("{name} dport {a}")],
        Some((a, b)) => vec![format!("{name} dport {a}-{b}")],
        None => vec![format!("meta l4proto {name}")],
    }
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

    fn verdicts(rules: &[String]) -> Vec<String> {
        rules.iter().map(|r| r.rsplit(' ').next().unwrap_or_default().to_string()).collect()
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
        assert_eq!(rules[1], "tcp dport 20-30 drop");
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
        assert_eq!(rules[0], format!("ip saddr @{} return", member_set("sg-a")));
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

    /// A small deterministic generator (xorshift): no dependency, the same cases every run.
    struct Gen(u64);
    impl Gen {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn random_rule(g: &mut Gen) -> SgRule {
        let protocol = [Protocol::Tcp, Protocol::Udp, Protocol::Icmp, Protocol::All][g.below(4) as usize];
        let ports = match protocol {
            Protocol::Tcp | Protocol::Udp => {
                let a = 20 + g.below(20) as u16;
                Some(if g.below(5) == 0 { (1, 65535) } else { (a, a + g.below(4) as u16) })
            }
            _ => None,
        };
        let len = [0u8, 8, 16, 24, 32][g.below(5) as usize];
        let addr = std::net::Ipv4Addr::new(10, g.below(2) as u8, g.below(3) as u8, g.below(4) as u8);
        let peer = if g.below(8) == 0 {
            Peer::Group("sg-peers".into())
        } else {
            Peer::Cidr(ipnet::Ipv4Net::new(addr, len).expect("prefix").trunc())
        };
        SgRule {
            direction: Direction::Ingress,
            policy: if g.below(2) == 0 { Policy::Drop } else { Policy::Accept },
            priority: 1 + g.below(6) as u8,
            protocol,
            ports,
            peer,
        }
    }

    fn matches(r: &SgRule, proto: u8, addr: std::net::Ipv4Addr, port: u16, peers: &[std::net::Ipv4Addr]) -> bool {
        let proto_ok = match r.protocol {
            Protocol::Tcp => proto == 6,
            Protocol::Udp => proto == 17,
            Protocol::Icmp => proto == 1,
            Protocol::All => true,
        };
        let port_ok = match (r.protocol, r.ports) {
            (Protocol::Tcp | Protocol::Udp, Some((a, b))) => (a..=b).contains(&port),
            _ => true,
        };
        let peer_ok = match &r.peer {
            Peer::Cidr(net) => net.contains(&addr),
            Peer::Group(_) => peers.contains(&addr),
        };
        proto_ok && port_ok && peer_ok
    }

    /// Runs decide exactly what the sorted rules decide, first match by first match, and the
    /// elements of one run never overlap (the kernel refuses overlapping interval elements).
    #[test]
    fn runs_of_rules_decide_as_the_rules_one_by_one() {
        let mut g = Gen(0x9e37_79b9_7f4a_7c15);
        let peers = [std::net::Ipv4Addr::new(10, 0, 1, 1), std::net::Ipv4Addr::new(10, 1, 2, 3)];
        let mut merged_runs = 0;
        for case in 0..300 {
            let rules: Vec<SgRule> = (0..1 + g.below(40)).map(|_| random_rule(&mut g)).collect();
            let group = SecurityGroupSpec {
                id: "sg-x".into(),
                kind: GroupKind::Basic,
                inner_access: InnerAccessPolicy::Drop,
                members: vec![],
                rules,
            };
            let mut sorted: Vec<(usize, &SgRule)> = group.rules.iter().enumerate().collect();
            sorted.sort_by_key(|(i, r)| (r.priority, r.policy, *i));
            let plan = steps(&[&group], Direction::Ingress);
            for step in &plan {
                if let Step::Rules(_, run) = step {
                    merged_runs += usize::from(run.len() > 1);
                    for (i, a) in run.iter().enumerate() {
                        for b in &run[i + 1..] {
                            let (ea, eb) = (element(a).expect("block"), element(b).expect("block"));
                            assert!(!ea.overlaps(&eb), "case {case}: {a:?} overlaps {b:?}");
                        }
                    }
                }
            }
            for _ in 0..200 {
                let proto = [6u8, 17, 1, 47][g.below(4) as usize];
                let addr = std::net::Ipv4Addr::new(10, g.below(2) as u8, g.below(3) as u8, g.below(4) as u8);
                let port = 18 + g.below(30) as u16;
                let one_by_one =
                    sorted.iter().find(|(_, r)| matches(r, proto, addr, port, &peers)).map(|(_, r)| r.policy);
                let by_runs = plan.iter().find_map(|s| match s {
                    Step::Rules(policy, run) => {
                        run.iter().any(|r| matches(r, proto, addr, port, &peers)).then_some(*policy)
                    }
                    _ => None,
                });
                assert_eq!(one_by_one, by_runs, "case {case}: proto {proto} from {addr} to port {port}");
            }
            // The rendering has one nftables rule per run (plus the default drop).
            let runs = plan.iter().filter(|s| matches!(s, Step::Rules(..))).count();
            assert_eq!(chain_rules(&[&group], Direction::Ingress, &mut BTreeSet::new()).len(), runs + 1);
        }
        assert!(merged_runs > 100, "the cases merge rules: {merged_runs}");
    }

    #[test]
    fn a_thousand_accepts_are_one_rule() {
        let rules: Vec<SgRule> = (0..1000u16)
            .map(|i| SgRule {
                direction: Direction::Ingress,
                policy: Policy::Accept,
                priority: (i % 100 + 1) as u8,
                protocol: if i % 2 == 0 { Protocol::Tcp } else { Protocol::Udp },
                ports: Some((1000 + i, 1000 + i)),
                peer: Peer::Cidr(format!("10.{}.{}.0/24", i / 256, i % 256).parse().expect("cidr")),
            })
            .collect();
        let g = group("sg-big", GroupKind::Basic, InnerAccessPolicy::Drop, rules);
        let out = chain_rules(&[&g], Direction::Ingress, &mut BTreeSet::new());
        assert_eq!(out.len(), 2, "one set rule and the default drop");
        assert!(out[0].starts_with("meta l4proto . ip saddr . th dport { tcp . 10.0.0.0/24 . 1000, "), "{}", out[0]);
        assert!(out[0].ends_with(" } return"));
        assert_eq!(out[1], "drop");
    }
}
