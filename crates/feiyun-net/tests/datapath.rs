//! Connectivity with real namespaces: one host, two hosts over VXLAN, overlapping VPCs.

mod common;

use common::*;
use feiyun_net::*;

#[test]
fn instances_of_one_vpc_on_one_host_talk_tcp() {
    let lab = lab_or_skip!("a", 1, false);
    let h = &lab.hosts[0];
    let mut v = vpc("vpc-a", 1001, 1);
    v.ports = vec![port("i-a1", 10, &["sg-1"]), port("i-a2", 11, &["sg-1"])];
    v.security_groups = vec![basic_open("sg-1", &[ip4(192, 168, 1, 10), ip4(192, 168, 1, 11)])];
    let spec = host_spec(h, vec![v]);
    let first = h.apply(&spec);
    assert!(!first.changes.is_empty());
    let _s = Server::start(&inst(h, "i-a2"), sa(ip4(0, 0, 0, 0), 7000), "a2");
    let first = std::time::Instant::now();
    let answer = reach(&inst(h, "i-a1"), sa(ip4(192, 168, 1, 11), 7000)).expect("a1 reaches a2");
    // The server sees the client's private address, and listens on its own.
    assert_eq!(answer, "a2 192.168.1.10 192.168.1.11:7000");
    // The first packet to a neighbour needs an ARP answer from the router (proxy ARP): it comes
    // at once, not after the kernel's default random delay of up to 0.8 s.
    assert!(first.elapsed() < std::time::Duration::from_millis(300), "first contact took {:?}", first.elapsed());
    let router = names::router_ns(&h.prefix, 1001);
    for p in ["i-a1", "i-a2"] {
        let key = format!("/proc/sys/net/ipv4/neigh/{}/proxy_delay", names::port_if(p));
        let out = std::process::Command::new("ip").args(["netns", "exec", &router, "cat", &key]).output().expect("ip");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0", "{key}");
    }
    // A second apply on a converged host changes nothing.
    let again = h.apply(&spec);
    assert!(again.changes.is_empty(), "second apply changed {:?}", again.changes);
    lab.teardown_and_check();
}

#[test]
fn instances_of_one_vpc_on_two_hosts_talk_over_vxlan() {
    let lab = lab_or_skip!("b", 2, false);
    let (h1, h2) = (&lab.hosts[0], &lab.hosts[1]);
    let members = [ip4(192, 168, 1, 10), ip4(192, 168, 1, 20)];
    let mut v1 = vpc("vpc-b", 2001, 1);
    v1.ports = vec![port("i-b1", 10, &["sg-1"])];
    v1.remote_ports = vec![RemotePort { ip: members[1], underlay_ip: h2.underlay }];
    v1.security_groups = vec![basic_open("sg-1", &members)];
    let mut v2 = vpc("vpc-b", 2001, 1);
    v2.ports = vec![port("i-b2", 20, &["sg-1"])];
    v2.remote_ports = vec![RemotePort { ip: members[0], underlay_ip: h1.underlay }];
    v2.security_groups = vec![basic_open("sg-1", &members)];
    h1.apply(&host_spec(h1, vec![v1]));
    h2.apply(&host_spec(h2, vec![v2]));
    let _s1 = Server::start(&inst(h1, "i-b1"), sa(ip4(0, 0, 0, 0), 7000), "b1");
    let _s2 = Server::start(&inst(h2, "i-b2"), sa(ip4(0, 0, 0, 0), 7000), "b2");
    let there = reach(&inst(h1, "i-b1"), sa(members[1], 7000)).expect("b1 reaches b2 across hosts");
    assert_eq!(there, "b2 192.168.1.10 192.168.1.20:7000");
    let back = reach(&inst(h2, "i-b2"), sa(members[0], 7000)).expect("b2 reaches b1 across hosts");
    assert_eq!(back, "b1 192.168.1.20 192.168.1.10:7000");
    lab.teardown_and_check();
}

#[test]
fn vpcs_with_the_same_cidr_stay_apart_on_shared_hosts() {
    let lab = lab_or_skip!("c", 2, false);
    let (h1, h2) = (&lab.hosts[0], &lab.hosts[1]);
    let (x, y) = (ip4(192, 168, 1, 10), ip4(192, 168, 1, 11));
    // VPC 1: x on host 1, y on host 2. VPC 2: the same addresses the other way round.
    let build = |id: &str, vni: u32, octet: u8, local: (&str, u8), remote_ip, remote_host: &Host| {
        let mut v = vpc(id, vni, octet);
        v.ports = vec![port(local.0, local.1, &["sg-o"])];
        v.remote_ports = vec![RemotePort { ip: remote_ip, underlay_ip: remote_host.underlay }];
        v.security_groups = vec![basic_open("sg-o", &[x, y])];
        v
    };
    let spec1 =
        host_spec(h1, vec![build("vpc-1", 3001, 1, ("i-x1", 10), y, h2), build("vpc-2", 3002, 2, ("i-x2", 11), x, h2)]);
    let spec2 =
        host_spec(h2, vec![build("vpc-1", 3001, 1, ("i-y1", 11), x, h1), build("vpc-2", 3002, 2, ("i-y2", 10), y, h1)]);
    h1.apply(&spec1);
    h2.apply(&spec2);
    let servers = [
        Server::start(&inst(h1, "i-x1"), sa(ip4(0, 0, 0, 0), 7000), "x1"),
        Server::start(&inst(h1, "i-x2"), sa(ip4(0, 0, 0, 0), 7000), "x2"),
        Server::start(&inst(h2, "i-y1"), sa(ip4(0, 0, 0, 0), 7000), "y1"),
        Server::start(&inst(h2, "i-y2"), sa(ip4(0, 0, 0, 0), 7000), "y2"),
    ];
    // 192.168.1.11 is x2 on the same host, but from VPC 1 it is y1 across hosts.
    let a = reach(&inst(h1, "i-x1"), sa(y, 7000)).expect("x1 reaches its VPC's .11");
    assert!(a.starts_with("y1 "), "{a}");
    let b = reach(&inst(h1, "i-x2"), sa(x, 7000)).expect("x2 reaches its VPC's .10");
    assert!(b.starts_with("y2 "), "{b}");
    let c = reach(&inst(h2, "i-y1"), sa(x, 7000)).expect("y1 reaches its VPC's .10");
    assert!(c.starts_with("x1 "), "{c}");
    // Nothing outside a VPC's own addresses is routed inside it.
    assert!(blocked(&inst(h1, "i-x1"), sa(ip4(192, 168, 1, 12), 7000)));
    drop(servers);
    lab.teardown_and_check();
}
