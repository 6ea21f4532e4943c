//! Security groups and their rules, with Alibaba Cloud's semantics: a basic group lets its
//! members reach each other (unless its inner access policy is Drop) and allows all egress; an
//! enterprise group denies everything it does not allow. Rules are ordered by priority (1
//! first); at equal priority a drop wins. A rule identical to an existing one adds nothing.

use ipnet::Ipv4Net;

use super::NetError;
use crate::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum GroupKind {
    /// `normal` on the wire.
    #[default]
    Basic,
    Enterprise,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InnerAccess {
    Accept,
    Drop,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    Ingress,
    Egress,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Policy {
    Drop,
    Accept,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
    Icmp,
    All,
}

impl Protocol {
    /// Whether rules of the protocol name destination ports.
    pub fn has_ports(&self) -> bool {
        matches!(self, Protocol::Tcp | Protocol::Udp)
    }
}

/// The other end of a rule: the source of ingress traffic, the destination of egress traffic.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Peer {
    Cidr(Ipv4Net),
    /// Every member of a group of the same VPC (this group included).
    Group(String),
}

/// What a rule says, without its identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RuleSpec {
    pub direction: Direction,
    pub policy: Policy,
    /// 1 (first) to 100 (last).
    pub priority: u8,
    pub protocol: Protocol,
    /// Destination ports, inclusive: required for TCP and UDP, absent for ICMP and all.
    pub ports: Option<(u16, u16)>,
    pub peer: Peer,
}

impl RuleSpec {
    /// Checks what Alibaba Cloud checks of a rule.
    pub fn check(&self) -> Result<(), NetError> {
        if !(1..=100).contains(&self.priority) {
            return Err(NetError::RulePriority);
        }
        match (self.protocol.has_ports(), self.ports) {
            (true, Some((a, b))) if a == 0 || a > b => Err(NetError::RulePorts),
            (true, None) | (false, Some(_)) => Err(NetError::RuleProtocolPorts),
            _ => Ok(()),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SgRule {
    /// `sgr-...`.
    pub id: String,
    pub spec: RuleSpec,
    pub description: String,
    pub created_at: Instant,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SecurityGroup {
    pub id: String,
    pub account_id: String,
    pub vpc_id: String,
    pub name: String,
    pub description: String,
    pub kind: GroupKind,
    pub inner_access: InnerAccess,
    /// The default group of the account's default VPC.
    pub is_default: bool,
    pub created_at: Instant,
    /// In the order they were added.
    pub rules: Vec<SgRule>,
}

impl SecurityGroup {
    /// The groups this group's rules name.
    pub fn referenced(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().filter_map(|r| match &r.spec.peer {
            Peer::Group(g) => Some(g.as_str()),
            Peer::Cidr(_) => None,
        })
    }

    pub fn has_rule(&self, spec: &RuleSpec) -> bool {
        self.rules.iter().any(|r| &r.spec == spec)
    }
}

/// The rules of the default group: SSH (22), RDP (3389) and ICMP from anywhere, at the lowest
/// priority, as the group Alibaba Cloud makes with a default VPC.
pub fn default_rules() -> Vec<RuleSpec> {
    let anywhere = Peer::Cidr(Ipv4Net::default());
    let tcp = |p: u16| RuleSpec {
        direction: Direction::Ingress,
        policy: Policy::Accept,
        priority: 100,
        protocol: Protocol::Tcp,
        ports: Some((p, p)),
        peer: anywhere.clone(),
    };
    vec![
        tcp(22),
        tcp(3389),
        RuleSpec {
            direction: Direction::Ingress,
            policy: Policy::Accept,
            priority: 100,
            protocol: Protocol::Icmp,
            ports: None,
            peer: anywhere.clone(),
        },
    ]
}

/// An instance belongs to at most this many groups.
pub const MAX_GROUPS_PER_INSTANCE: usize = 5;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_checked_as_alibaba_checks_them() {
        let mut r = default_rules().remove(0);
        assert!(r.check().is_ok());
        for p in [0u8, 101] {
            r.priority = p;
            assert_eq!(r.check(), Err(NetError::RulePriority));
        }
        r.priority = 1;
        for ports in [Some((0, 10)), Some((20, 10))] {
            r.ports = ports;
            assert_eq!(r.check(), Err(NetError::RulePorts), "{ports:?}");
        }
        r.ports = None;
        assert_eq!(r.check(), Err(NetError::RuleProtocolPorts), "TCP needs ports");
        r.protocol = Protocol::Icmp;
        r.ports = Some((1, 1));
        assert_eq!(r.check(), Err(NetError::RuleProtocolPorts));
        r.ports = None;
        assert!(r.check().is_ok());
    }
}
