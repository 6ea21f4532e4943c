//! Security groups on running "instances": allow, deny, priority, drop winning ties, source
//! groups, basic vs enterprise, inner access policy, and changes taking effect at once.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::*;
use feiyun_net::*;

fn rule(
    dir: Direction,
    policy: Policy,
    priority: u8,
    protocol: Protocol,
    ports: Option<(u16, u16)>,
    peer: Peer,
) -> SgRule {
    SgRule { direction: dir, policy, priority, protocol, ports, peer }
}

fn cidr(s: &str) -> Peer {
    Peer::Cidr(s.parse().expect("cidr"))
}

#[test]
fn rules_priorities_groups_and_live_changes() {
    let lab = lab_or_skip!("d", 1, false);
    let h = &lab.hosts[0];
    let (srv, c1, c2) = (ip4(192, 168, 1, 10), ip4(192, 168, 1, 11), ip4(192, 168, 1, 12));
    let tcp = |ports| Some((ports, ports));
    let server_rules = vec![
        rule(Direction::Ingress, Policy::Accept, 10, Protocol::Tcp, tcp(7080), cidr("192.168.1.0/24")),
        // 7082: accept at priority 1 beats a drop at priority 2.
        rule(Direction::Ingress, Policy::Drop, 2, Protocol::Tcp, tcp(7082), cidr("192.168.1.0/24")),
        rule(Direction::Ingress, Policy::Accept, 1, Protocol::Tcp, tcp(7082), cidr("192.168.1.0/24")),
        // 7083: equal priority, the drop wins.
        rule(Direction::Ingress, Policy::Accept, 5, Protocol::Tcp, tcp(7083), cidr("192.168.1.0/24")),
        rule(Direction::Ingress, Policy::Drop, 5, Protocol::Tcp, tcp(7083), cidr("192.168.1.0/24")),
        // 7084: only members of the "clients" group.
        rule(Direction::Ingress, Policy::Accept, 10, Protocol::Tcp, tcp(7084), Peer::Group("sg-clients".into())),
        // 7085-7086: a port range from one address only.
        rule(Direction::Ingress, Policy::Accept, 10, Protocol::Tcp, Some((7085, 7086)), cidr("192.168.1.12/32")),
    ];
    let server_group = SecurityGroupSpec {
        id: "sg-server".into(),
        kind: GroupKind::Basic,
        inner_access: InnerAccessPolicy::Drop,
        members: vec![srv],
        rules: server_rules,
    };
    let clients = SecurityGroupSpec {
        id: "sg-clients".into(),
        kind: GroupKind::Basic,
        inner_access: InnerAccessPolicy::Accept,
        members: vec![c1],
        rules: vec![],
    };
    let other = SecurityGroupSpec {
        id: "sg-other".into(),
        kind: GroupKind::Basic,
        inner_access: InnerAccessPolicy::Accept,
        members: vec![c2],
        rules: vec![],
    };
    let mut v = vpc("vpc-d", 4001, 1);
    v.ports =
        vec![port("i-srv", 10, &["sg-server"]), port("i-c1", 11, &["sg-clients"]), port("i-c2", 12, &["sg-other"])];
    v.security_groups = vec![server_group, clients, other];
    let mut spec = host_spec(h, vec![v]);
    h.apply(&spec);
    let servers: Vec<Server> =
        (7080..=7086).map(|p| Server::start(&inst(h, "i-srv"), sa(ip4(0, 0, 0, 0), p), "srv")).collect();
    let from = |who: &str, port: u16| reach(&inst(h, who), sa(srv, port)).is_some();
    assert!(from("i-c1", 7080), "allowed by CIDR");
    assert!(!from("i-c1", 7081), "no rule: ingress is denied by default");
    assert!(from("i-c1", 7082), "higher priority accept wins");
    assert!(!from("i-c1", 7083), "drop wins a tie");
    assert!(from("i-c1", 7084), "source group member");
    assert!(!from("i-c2", 7084), "not a member of the source group");
    assert!(from("i-c2", 7085) && from("i-c2", 7086), "port range from its one address");
    assert!(!from("i-c1", 7085), "port range, other address");

    // A connection open before a change survives it (stateful); new ones follow the change.
    let mut open = Netns::open(&inst(h, "i-c1"))
        .expect("ns")
        .run(|| TcpStream::connect_timeout(&SocketAddr::V4(sa(srv, 7080)), Duration::from_secs(1)))
        .expect("enter")
        .expect("connect before the change");
    spec.vpcs[0].security_groups[0]
        .rules
        .insert(0, rule(Direction::Ingress, Policy::Drop, 1, Protocol::Tcp, tcp(7080), cidr("0.0.0.0/0")));
    let report = h.apply(&spec);
    assert!(report.changes.is_empty(), "a rule change is only a firewall batch: {:?}", report.changes);
    assert!(!from("i-c1", 7080), "the new drop applies at once");
    open.write_all(b"x").expect("write on the established connection");
    let mut buf = String::new();
    open.set_read_timeout(Some(Duration::from_secs(2))).expect("timeout");
    open.read_to_string(&mut buf).expect("read on the established connection");
    assert!(buf.starts_with("srv "), "{buf}");

    // Membership changes too: c2 joins the clients group.
    spec.vpcs[0].security_groups[1].members.push(c2);
    h.apply(&spec);
    assert!(from("i-c2", 7084), "new member of the source group");
    drop(servers);
    lab.teardown_and_check();
}

#[test]
fn basic_groups_talk_inside_enterprise_groups_do_not() {
    let lab = lab_or_skip!("e", 1, false);
    let h = &lab.hosts[0];
    let (a, b, c, d) = (ip4(192, 168, 1, 10), ip4(192, 168, 1, 11), ip4(192, 168, 1, 20), ip4(192, 168, 1, 21));
    let basic = SecurityGroupSpec {
        id: "sg-basic".into(),
        kind: GroupKind::Basic,
        inner_access: InnerAccessPolicy::Accept,
        members: vec![a, b],
        rules: vec![],
    };
    let enterprise = SecurityGroupSpec {
        id: "sg-ent".into(),
        kind: GroupKind::Enterprise,
        inner_access: InnerAccessPolicy::Drop,
        members: vec![c, d],
        rules: vec![],
    };
    let mut v = vpc("vpc-e", 5001, 1);
    v.ports = vec![
        port("i-a", 10, &["sg-basic"]),
        port("i-b", 11, &["sg-basic"]),
        port("i-c", 20, &["sg-ent"]),
        port("i-d", 21, &["sg-ent"]),
    ];
    v.security_groups = vec![basic, enterprise];
    let mut spec = host_spec(h, vec![v]);
    h.apply(&spec);
    let _servers = [
        Server::start(&inst(h, "i-b"), sa(ip4(0, 0, 0, 0), 7000), "b"),
        Server::start(&inst(h, "i-d"), sa(ip4(0, 0, 0, 0), 7000), "d"),
    ];
    assert!(reach(&inst(h, "i-a"), sa(b, 7000)).is_some(), "basic: members reach each other");
    assert!(blocked(&inst(h, "i-c"), sa(d, 7000)), "enterprise: no traffic between members by default");
    assert!(blocked(&inst(h, "i-a"), sa(d, 7000)), "nothing reaches the enterprise group");
    // Enterprise groups need both an ingress and an egress rule.
    spec.vpcs[0].security_groups[1].rules = vec![allow_in(1, Protocol::Tcp, Some((7000, 7000)), "192.168.1.0/24")];
    h.apply(&spec);
    assert!(blocked(&inst(h, "i-c"), sa(d, 7000)), "enterprise egress is still denied");
    spec.vpcs[0].security_groups[1].rules.push(rule(
        Direction::Egress,
        Policy::Accept,
        1,
        Protocol::Tcp,
        Some((7000, 7000)),
        cidr("192.168.1.0/24"),
    ));
    h.apply(&spec);
    assert!(reach(&inst(h, "i-c"), sa(d, 7000)).is_some(), "enterprise with both rules");
    // Inner access Drop on a basic group: members are isolated unless a rule allows it.
    spec.vpcs[0].security_groups[0].inner_access = InnerAccessPolicy::Drop;
    h.apply(&spec);
    assert!(blocked(&inst(h, "i-a"), sa(b, 7000)), "basic with InnerAccessPolicy=Drop");
    // An egress drop rule on a basic group.
    spec.vpcs[0].security_groups[0].inner_access = InnerAccessPolicy::Accept;
    spec.vpcs[0].security_groups[0].rules =
        vec![rule(Direction::Egress, Policy::Drop, 1, Protocol::Tcp, Some((7000, 7000)), cidr("192.168.1.21/32"))];
    spec.vpcs[0].security_groups[1].rules.push(allow_in(1, Protocol::All, None, "0.0.0.0/0"));
    h.apply(&spec);
    assert!(reach(&inst(h, "i-a"), sa(b, 7000)).is_some(), "inner accept still lets members talk");
    assert!(blocked(&inst(h, "i-a"), sa(d, 7000)), "egress drop");
    lab.teardown_and_check();
}

/// Rules merged into runs (one nftables rule over a set per run of one verdict) decide as the
/// rules one by one: a drop run between two accept runs still wins over the later accepts, and
/// a run without ports (all protocols from one address) sits beside runs with ports.
#[test]
fn runs_of_rules_keep_the_first_match_order() {
    let lab = lab_or_skip!("r", 1, false);
    let h = &lab.hosts[0];
    let (srv, c1, c2) = (ip4(192, 168, 1, 10), ip4(192, 168, 1, 11), ip4(192, 168, 1, 12));
    let tcp = |a, b| Some((a, b));
    let rules = vec![
        rule(Direction::Ingress, Policy::Accept, 1, Protocol::Tcp, tcp(7090, 7090), cidr("192.168.1.11/32")),
        rule(Direction::Ingress, Policy::Accept, 1, Protocol::All, None, cidr("192.168.1.12/32")),
        rule(Direction::Ingress, Policy::Drop, 2, Protocol::Tcp, tcp(7090, 7091), cidr("192.168.1.0/24")),
        rule(Direction::Ingress, Policy::Drop, 2, Protocol::Tcp, tcp(7092, 7092), cidr("192.168.1.0/24")),
        rule(Direction::Ingress, Policy::Accept, 3, Protocol::Tcp, tcp(7091, 7091), cidr("192.168.1.11/32")),
        rule(Direction::Ingress, Policy::Accept, 3, Protocol::Tcp, tcp(7093, 7093), cidr("0.0.0.0/0")),
    ];
    let server = SecurityGroupSpec {
        id: "sg-server".into(),
        kind: GroupKind::Basic,
        inner_access: InnerAccessPolicy::Drop,
        members: vec![srv],
        rules,
    };
    let clients = SecurityGroupSpec {
        id: "sg-clients".into(),
        kind: GroupKind::Basic,
        inner_access: InnerAccessPolicy::Drop,
        members: vec![c1, c2],
        rules: vec![],
    };
    let mut v = vpc("vpc-r", 6001, 1);
    v.ports =
        vec![port("i-srv", 10, &["sg-server"]), port("i-c1", 11, &["sg-clients"]), port("i-c2", 12, &["sg-clients"])];
    v.security_groups = vec![server, clients];
    let spec = host_spec(h, vec![v]);
    h.apply(&spec);
    // The server's ingress chain is four rules and the default: two runs have two elements.
    let router = names::router_ns(&h.prefix, 6001);
    let listing = std::process::Command::new("ip")
        .args(["netns", "exec", &router, "nft", "list", "table", "ip", "fy"])
        .output()
        .expect("nft");
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(listing.contains("tcp . 192.168.1.0/24 . 7090-7091, tcp . 192.168.1.0/24 . 7092 } drop"), "{listing}");
    let servers: Vec<Server> =
        (7090..=7093).map(|p| Server::start(&inst(h, "i-srv"), sa(ip4(0, 0, 0, 0), p), "srv")).collect();
    let from = |who: &str, port: u16| reach(&inst(h, who), sa(srv, port)).is_some();
    assert!(from("i-c1", 7090), "accepted at priority 1");
    assert!(!from("i-c1", 7091), "the drop at priority 2 comes before the accept at priority 3");
    assert!(!from("i-c1", 7092), "dropped by the second element of the drop run");
    assert!(from("i-c1", 7093), "accepted by the last run");
    for p in 7090..=7093 {
        assert!(from("i-c2", p), "all protocols from c2 at priority 1 ({p})");
    }
    drop(servers);
    lab.teardown_and_check();
}
