//! Security group rules on the wire: the deprecated single-rule parameters and `Permissions.N.*`
//! alike, refused with the codes AuthorizeSecurityGroup documents.

use feiyun_domain::net::cidr::Ipv4Net;
use feiyun_domain::net::{Direction, Peer, Policy, Protocol, RuleSpec, SgRule};
use feiyun_domain::ops::NewRule;

use crate::error::ApiError;
use crate::params::Params;

/// What every rule says besides its peer.
struct Common {
    protocol: Protocol,
    ports: Option<(u16, u16)>,
    policy: Policy,
    priority: u8,
    description: String,
}

fn rule_protocol(v: Option<&str>) -> Result<Protocol, ApiError> {
    let v = v.ok_or_else(|| ApiError::missing("IpProtocol"))?;
    match v.to_ascii_lowercase().as_str() {
        "tcp" => Ok(Protocol::Tcp),
        "udp" => Ok(Protocol::Udp),
        "icmp" => Ok(Protocol::Icmp),
        "all" => Ok(Protocol::All),
        _ => Err(ApiError::new(
            400,
            "InvalidIpProtocol.ValueNotSupported",
            "The parameter IpProtocol must be specified with case insensitive TCP, UDP, ICMP or All (GRE and protocol numbers are not supported here).",
        )),
    }
}

fn rule_ports(protocol: Protocol, v: Option<&str>) -> Result<Option<(u16, u16)>, ApiError> {
    let malformed =
        || ApiError::new(400, "InvalidIpProtocol.Malformed", "The specified parameter \"PortRange\" is not valid.");
    let v = v.ok_or_else(|| ApiError::missing("PortRange"))?;
    let (a, b) = v.split_once('/').ok_or_else(malformed)?;
    if !protocol.has_ports() {
        return if a == "-1" && b == "-1" {
            Ok(None)
        } else {
            Err(ApiError::new(
                400,
                "OperationDenied",
                "The specified IpProtocol does not exist or IpProtocol and PortRange do not match.",
            ))
        };
    }
    let port = |s: &str| s.parse::<u16>().ok().filter(|p| *p > 0 && s.bytes().all(|b| b.is_ascii_digit()));
    match (port(a), port(b)) {
        (Some(a), Some(b)) if a <= b => Ok(Some((a, b))),
        _ => Err(malformed()),
    }
}

fn rule_policy(v: Option<&str>) -> Result<Policy, ApiError> {
    match v.map(str::to_ascii_lowercase).as_deref() {
        None | Some("accept") => Ok(Policy::Accept),
        Some("drop") => Ok(Policy::Drop),
        Some(_) => {
            Err(ApiError::new(400, "InvalidPolicy.Malformed", "The specified parameter \"Policy\" is not valid."))
        }
    }
}

fn rule_priority(v: Option<&str>) -> Result<u8, ApiError> {
    let Some(v) = v else { return Ok(1) };
    let n: i64 = v
        .trim()
        .parse()
        .map_err(|_| ApiError::new(400, "InvalidPriority.Malformed", "The parameter Priority is invalid."))?;
    u8::try_from(n)
        .ok()
        .filter(|p| (1..=100).contains(p))
        .ok_or_else(|| ApiError::new(400, "InvalidPriority.ValueNotSupported", "The parameter Priority is invalid."))
}

fn rule_description(v: Option<&str>) -> Result<String, ApiError> {
    let v = v.unwrap_or_default();
    if v.chars().count() > 512 {
        return Err(ApiError::new(
            400,
            "InvalidSecurityGroupDiscription.Malformed",
            "The specified security group rule description is not valid.",
        ));
    }
    Ok(v.to_string())
}

fn rule_nic_type(v: Option<&str>) -> Result<(), ApiError> {
    match v {
        None | Some("intranet") => Ok(()),
        Some(_) => Err(ApiError::new(
            400,
            "InvalidNicType.ValueNotSupported",
            "The specified NicType is not valid: rules of VPC security groups are intranet.",
        )),
    }
}

/// A block or an address (a /32); host bits are cleared.
fn rule_block(name: &str, code: &str, v: &str) -> Result<Ipv4Net, ApiError> {
    let bad = || ApiError::new(400, code, format!("The specified parameter \"{name}\" is not valid."));
    let (addr, len) = match v.split_once('/') {
        Some((a, l)) if !l.is_empty() && l.len() <= 2 && l.bytes().all(|b| b.is_ascii_digit()) => {
            (a, l.parse::<u8>().map_err(|_| bad())?)
        }
        Some(_) => return Err(bad()),
        None => (v, 32),
    };
    let addr: std::net::Ipv4Addr = addr.parse().map_err(|_| bad())?;
    Ipv4Net::new(addr, len).map(|n| n.trunc()).map_err(|_| bad())
}

/// The peer of a rule: a block or a group, exactly one.
fn rule_peer(egress: bool, cidr: Option<&str>, group: Option<&str>) -> Result<Peer, ApiError> {
    let (cidr_name, group_name, code) = if egress {
        ("DestCidrIp", "DestGroupId", "InvalidDestCidrIp.Malformed")
    } else {
        ("SourceCidrIp", "SourceGroupId", "InvalidSourceCidrIp.Malformed")
    };
    match (cidr, group) {
        (Some(c), None) => Ok(Peer::Cidr(rule_block(cidr_name, code, c)?)),
        (None, Some(g)) => Ok(Peer::Group(g.to_string())),
        (None, None) => Err(ApiError::new(
            400,
            if egress { "MissingParameter.Dest" } else { "MissingParameter.Source" },
            format!("Either {cidr_name} or {group_name} must be specified."),
        )),
        (Some(_), Some(_)) => {
            Err(ApiError::invalid_because(cidr_name, &format!("give {cidr_name} or {group_name}, not both")))
        }
    }
}

/// Indexes of `Permissions.N.*` given, in order.
fn permission_indexes(p: &Params) -> Result<Vec<usize>, ApiError> {
    let mut out = Vec::new();
    for (k, _) in p.iter() {
        let Some(rest) = k.strip_prefix("Permissions.") else { continue };
        let n = rest.split('.').next().and_then(crate::api::canonical_index).filter(|n| *n <= 100);
        let n = n.ok_or_else(|| ApiError::invalid(k))?;
        if !out.contains(&n) {
            out.push(n);
        }
    }
    out.sort();
    Ok(out)
}

/// Whether the deprecated single-rule form is used.
fn single_rule_given(p: &Params) -> bool {
    ["IpProtocol", "PortRange"].iter().any(|k| p.iter().any(|(name, v)| name == k && !v.is_empty()))
}

/// Rule `n` of `Permissions`, or (`None`) the rule given by the single-rule parameters.
fn rule_common(p: &Params, n: Option<usize>) -> Result<Common, ApiError> {
    let (proto, range, pol, prio, desc, nic) = match n {
        None => (
            p.get("IpProtocol"),
            p.get("PortRange"),
            p.get("Policy"),
            p.get("Priority"),
            p.get("Description"),
            p.get("NicType"),
        ),
        Some(n) => (
            p.nth("Permissions.N.IpProtocol", n),
            p.nth("Permissions.N.PortRange", n),
            p.nth("Permissions.N.Policy", n),
            p.nth("Permissions.N.Priority", n),
            p.nth("Permissions.N.Description", n),
            p.nth("Permissions.N.NicType", n),
        ),
    };
    rule_nic_type(nic)?;
    let protocol = rule_protocol(proto)?;
    Ok(Common {
        ports: rule_ports(protocol, range)?,
        protocol,
        policy: rule_policy(pol)?,
        priority: rule_priority(prio)?,
        description: rule_description(desc)?,
    })
}

fn new_rule(direction: Direction, c: Common, peer: Peer) -> NewRule {
    NewRule {
        spec: RuleSpec {
            direction,
            policy: c.policy,
            priority: c.priority,
            protocol: c.protocol,
            ports: c.ports,
            peer,
        },
        description: c.description,
    }
}

/// The inbound rules of a call, in the order given (the single-rule form first).
pub(super) fn ingress_rules(p: &Params) -> Result<Vec<NewRule>, ApiError> {
    let mut out = Vec::new();
    if single_rule_given(p) {
        let c = rule_common(p, None)?;
        out.push(new_rule(Direction::Ingress, c, rule_peer(false, p.get("SourceCidrIp"), p.get("SourceGroupId"))?));
    }
    for n in permission_indexes(p)? {
        let c = rule_common(p, Some(n))?;
        let peer = rule_peer(false, p.nth("Permissions.N.SourceCidrIp", n), p.nth("Permissions.N.SourceGroupId", n))?;
        out.push(new_rule(Direction::Ingress, c, peer));
    }
    Ok(out)
}

/// The outbound rules of a call, in the order given (the single-rule form first).
pub(super) fn egress_rules(p: &Params) -> Result<Vec<NewRule>, ApiError> {
    let mut out = Vec::new();
    if single_rule_given(p) {
        let c = rule_common(p, None)?;
        out.push(new_rule(Direction::Egress, c, rule_peer(true, p.get("DestCidrIp"), p.get("DestGroupId"))?));
    }
    for n in permission_indexes(p)? {
        let c = rule_common(p, Some(n))?;
        let peer = rule_peer(true, p.nth("Permissions.N.DestCidrIp", n), p.nth("Permissions.N.DestGroupId", n))?;
        out.push(new_rule(Direction::Egress, c, peer));
    }
    Ok(out)
}

/// A rule as DescribeSecurityGroupAttribute lists it; `names` gives the names of the groups
/// rules name.
pub(super) fn wire_permission(r: &SgRule, names: &[(String, String)]) -> serde_json::Value {
    let s = &r.spec;
    let (cidr, group) = match &s.peer {
        Peer::Cidr(c) => (c.to_string(), String::new()),
        Peer::Group(g) => (String::new(), g.clone()),
    };
    let group_name = names.iter().find(|(id, _)| *id == group).map(|(_, n)| n.clone()).unwrap_or_default();
    let ingress = s.direction == Direction::Ingress;
    let pick = |mine: bool, v: &String| if mine { v.clone() } else { String::new() };
    serde_json::json!({
        "SecurityGroupRuleId": r.id,
        "Direction": if ingress { "ingress" } else { "egress" },
        "IpProtocol": match s.protocol {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Icmp => "ICMP",
            Protocol::All => "ALL",
        },
        "PortRange": s.ports.map(|(a, b)| format!("{a}/{b}")).unwrap_or_else(|| "-1/-1".into()),
        "SourceCidrIp": pick(ingress, &cidr),
        "SourceGroupId": pick(ingress, &group),
        "SourceGroupName": pick(ingress, &group_name),
        "SourceGroupOwnerAccount": "",
        "SourcePortRange": "",
        "SourcePrefixListId": "",
        "SourcePrefixListName": "",
        "DestCidrIp": pick(!ingress, &cidr),
        "DestGroupId": pick(!ingress, &group),
        "DestGroupName": pick(!ingress, &group_name),
        "DestGroupOwnerAccount": "",
        "DestPrefixListId": "",
        "DestPrefixListName": "",
        "Ipv6SourceCidrIp": "",
        "Ipv6DestCidrIp": "",
        "Policy": match s.policy {
            Policy::Accept => "Accept",
            Policy::Drop => "Drop",
        },
        "Priority": s.priority.to_string(),
        "NicType": "intranet",
        "Description": r.description,
        "PortRangeListId": "",
        "PortRangeListName": "",
        "CreateTime": r.created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    })
}
