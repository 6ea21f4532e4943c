//! Convergence: a failure after every single change of an apply, then a clean apply, gives a
//! working host; leftovers the desired state no longer names are removed; teardown leaves
//! nothing.

mod common;

use common::*;
use feiyun_net::*;

fn two_port_spec(h: &Host, other: &Host) -> HostNetSpec {
    let members = [ip4(192, 168, 1, 10), ip4(192, 168, 1, 11), ip4(192, 168, 1, 20)];
    let mut a = port("i-ca", 10, &["sg-1"]);
    a.eip = Some(ip4(198, 19, 0, 20));
    a.egress_mbps = Some(100);
    let mut v = vpc("vpc-c", 8001, 1);
    v.ports = vec![a, port("i-cb", 11, &["sg-1"])];
    v.remote_ports = vec![RemotePort { ip: members[2], underlay_ip: other.underlay }];
    v.security_groups = vec![basic_open("sg-1", &members)];
    host_spec(h, vec![v])
}

/// Traffic flows once an apply has returned. A link's carrier comes up a moment after it is set
/// up, and a first SYN lost to that is resent after a second: on a loaded machine, allow a few
/// tries before calling it broken.
fn works(h: &Host, step: usize) {
    let _s = Server::start(&inst(h, "i-cb"), sa(ip4(0, 0, 0, 0), 7000), "cb");
    let reached = (0..4).any(|_| reach(&inst(h, "i-ca"), sa(ip4(192, 168, 1, 11), 7000)).is_some());
    assert!(reached, "step {step}: ca reaches cb");
}

#[test]
fn a_crash_after_any_step_converges_on_the_next_apply() {
    let lab = lab_or_skip!("h", 2, false);
    let (h, other) = (&lab.hosts[0], &lab.hosts[1]);
    let spec = two_port_spec(h, other);
    // Counted from a torn-down host: host-wide settings (forwarding) stay after a teardown.
    h.apply(&spec);
    h.net.teardown(&h.prefix).expect("teardown");
    let total = h.apply(&spec).changes.len();
    assert!(total > 10, "a fresh apply makes many changes ({total})");
    for n in 1..=total {
        h.net.teardown(&h.prefix).expect("teardown");
        match h.net.apply_failing_after(&spec, n) {
            Err(NetError::Injected(k)) => assert_eq!(k, n),
            other => panic!("step {n}: expected the injected failure, got {other:?}"),
        }
        h.apply(&spec);
        let again = h.apply(&spec);
        assert!(again.changes.is_empty(), "step {n}: not converged, third apply changed {:?}", again.changes);
        works(h, n);
    }
    // The same from a converged host that is being changed: crash half-way through removing
    // a port and adding another.
    let mut next = spec.clone();
    next.vpcs[0].ports.remove(0);
    next.vpcs[0].ports.push(port("i-ca", 12, &["sg-1"]));
    next.vpcs[0].ports[1].eip = Some(ip4(198, 19, 0, 21));
    let steps = {
        h.apply(&spec);
        h.apply(&next).changes.len()
    };
    for n in 1..=steps {
        h.apply(&spec);
        assert!(matches!(h.net.apply_failing_after(&next, n), Err(NetError::Injected(_))));
        h.apply(&next);
        assert!(h.apply(&next).changes.is_empty(), "step {n} of the change did not converge");
    }
    lab.teardown_and_check();
}

#[test]
fn leftovers_of_this_prefix_are_removed_and_others_are_kept() {
    let lab = lab_or_skip!("k", 2, false);
    let (h, other) = (&lab.hosts[0], &lab.hosts[1]);
    let spec = two_port_spec(h, other);
    h.apply(&spec);
    // Things a previous life of this host left: an instance and a VPC it no longer has, a
    // half-made transit link, and a policy rule of a gone VPC.
    ns::ensure_named(&names::instance_ns(&h.prefix, "i-gone")).expect("ns");
    ns::ensure_named(&names::router_ns(&h.prefix, 4242)).expect("ns");
    let stale_link = names::host_link(&h.prefix, names::HostLink::Transit, 4242);
    let stale_peer = names::host_link(&h.prefix, names::HostLink::RouterEnd, 4242);
    ip(&["-n", &h.ns_name, "link", "add", &stale_link, "type", "veth", "peer", "name", &stale_peer]);
    let table = names::host_rule_table(4242).to_string();
    ip(&["-n", &h.ns_name, "rule", "add", "from", "100.127.9.1", "lookup", &table, "pref", "32000"]);
    // Another host's namespace that merely looks similar stays.
    let foreign = format!("{}x-r-4242", h.prefix);
    ns::ensure_named(&foreign).expect("ns");
    let report = h.apply(&spec);
    assert!(report.changes.iter().any(|c| c.contains("i-gone")), "{:?}", report.changes);
    let left = ns::list_named().expect("list");
    assert!(!left.contains(&names::instance_ns(&h.prefix, "i-gone")));
    assert!(!left.contains(&names::router_ns(&h.prefix, 4242)));
    assert!(left.contains(&foreign), "a namespace of another prefix was removed");
    ns::delete_named(&foreign).expect("cleanup");
    assert!(h.apply(&spec).changes.is_empty());
    works(h, 0);
    // Removing the whole VPC from the desired state removes all of it.
    h.apply(&host_spec(h, vec![]));
    let left = ns::list_named().expect("list");
    assert!(!left.iter().any(|n| n.starts_with(&format!("{}-", h.prefix))), "{left:?}");
    lab.teardown_and_check();
}

#[test]
fn invalid_states_are_refused_before_any_change() {
    let Some(host) = HostNet::current().ok() else { return };
    let mut spec = HostNetSpec {
        prefix: "Bad-Prefix".into(),
        underlay_ip: ip4(169, 254, 0, 1),
        mtu: 1450,
        metadata: None,
        vpcs: vec![],
    };
    assert!(matches!(host.apply(&spec), Err(NetError::Invalid(_))));
    spec.prefix = "zz9".into();
    let mut v = vpc("vpc-z", 1, 1);
    v.ports = vec![port("i-z", 10, &["sg-missing"])];
    spec.vpcs = vec![v];
    assert!(matches!(host.apply(&spec), Err(NetError::Invalid(_))));
    spec.vpcs[0].ports[0].security_group_ids.clear();
    spec.vpcs[0].ports[0].ip = ip4(192, 168, 1, 253);
    assert!(matches!(spec.validate(), Err(NetError::Invalid(_))), "the gateway is not an instance address");
    let json = serde_json::to_string(&spec).expect("serialize");
    let back: HostNetSpec = serde_json::from_str(&json).expect("deserialize");
    assert_eq!(back, spec);
}

/// A batch exactly like the last one this process sent is not sent again; `forget` makes the
/// next apply rewrite every table, which repairs one changed behind its back. A host without
/// VPCs keeps no table.
#[test]
fn unchanged_batches_are_not_sent_again_until_forgotten() {
    let lab = lab_or_skip!("m", 2, false);
    let (h, other) = (&lab.hosts[0], &lab.hosts[1]);
    let spec = two_port_spec(h, other);
    assert!(h.apply(&spec).firewall_commands > 0);
    let again = h.apply(&spec);
    assert_eq!((again.changes.len(), again.firewall_commands), (0, 0), "{:?}", again.changes);
    // A new port: one router batch, the host's table is unchanged.
    let mut more = spec.clone();
    more.vpcs[0].ports.push(port("i-cc", 12, &["sg-1"]));
    let added = h.apply(&more);
    assert!(added.firewall_commands > 0 && !added.changes.is_empty());
    assert_eq!(h.apply(&more).firewall_commands, 0);
    // Someone flushes the router's forward chain: unseen until forgotten.
    let router = names::router_ns(&h.prefix, 8001);
    ip(&["netns", "exec", &router, "nft", "flush", "chain", "ip", "fy", "forward"]);
    assert_eq!(h.apply(&more).firewall_commands, 0);
    h.net.forget();
    assert!(h.apply(&more).firewall_commands > 0);
    works(h, 0);
    // No VPC left: no table, no forwarding rules of ours.
    h.apply(&host_spec(h, vec![]));
    let tables = std::process::Command::new("ip")
        .args(["netns", "exec", &h.ns_name, "nft", "list", "tables"])
        .output()
        .expect("nft");
    assert!(!String::from_utf8_lossy(&tables.stdout).contains(&names::host_table(&h.prefix)));
    lab.teardown_and_check();
}
