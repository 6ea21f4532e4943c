//! Security groups through the control plane: rules as Alibaba Cloud checks them, a duplicate
//! rule is a no-op, what the hosts' networks say of groups, membership, and which hosts' intent a
//! change reaches.

mod common;

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use common::{region_with, spec, FakeHost, ManualClock};
use feiyun_control::{BillingSetup, ControlPlane, HostsSetup, NetworkSetup};
use feiyun_domain::net::cidr::parse_cidr;
use feiyun_domain::net::{Direction, GroupKind, InnerAccess, NetError, Peer, Policy, Protocol, RuleSpec};
use feiyun_domain::ops::{InstanceNetwork, NewRule, NewSecurityGroup, NewVSwitch, NewVpc, Purchase};
use feiyun_domain::DomainError;
use feiyun_hostproto::net as hp;

fn clock() -> Arc<ManualClock> {
    let c = Arc::new(ManualClock(std::sync::Mutex::new(chrono::Utc::now())));
    c.set(0);
    c
}

fn empty(dir: &std::path::Path, clock: &Arc<ManualClock>) -> Arc<ControlPlane> {
    let zones = [("s1", "z1", 0), ("s2", "z2", 0), ("s3", "z3", 0)];
    let net = NetworkSetup { provisioning: Duration::ZERO, ..NetworkSetup::default() };
    region_with(dir, clock.clone(), BillingSetup::default(), HostsSetup::default(), &zones, net)
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().expect("address")
}

/// A VPC with a /24 vSwitch per zone: (vpc, vswitches).
fn vpc(cp: &ControlPlane, acct: &str, block: &str, zones: &[(&str, &str)]) -> (String, Vec<String>) {
    let v = cp.create_vpc(acct, &NewVpc { cidr: parse_cidr(block), ..Default::default() }, false).expect("vpc");
    let s = zones
        .iter()
        .map(|(z, b)| {
            let n = NewVSwitch {
                vpc_id: v.id.clone(),
                zone_id: z.to_string(),
                cidr: parse_cidr(b).expect("block"),
                name: String::new(),
                description: String::new(),
                client_token: None,
            };
            cp.create_vswitch(acct, &n, false).expect("vswitch").id
        })
        .collect();
    (v.id, s)
}

fn group(cp: &ControlPlane, acct: &str, vpc: &str, kind: GroupKind) -> String {
    let g = NewSecurityGroup {
        vpc_id: Some(vpc.into()),
        name: "g".into(),
        description: String::new(),
        kind,
        client_token: None,
    };
    cp.create_security_group(acct, &g).expect("group").id
}

fn run(cp: &ControlPlane, acct: &str, vsw: &str, groups: &[&str]) -> String {
    let net = InstanceNetwork {
        vswitch_id: Some(vsw.into()),
        security_group_ids: groups.iter().map(|g| g.to_string()).collect(),
        ..Default::default()
    };
    cp.create_instances_in(acct, &spec(Purchase::default()), &net).expect("run").ids.remove(0)
}

fn rule(
    direction: Direction,
    policy: Policy,
    priority: u8,
    protocol: Protocol,
    ports: Option<(u16, u16)>,
    peer: Peer,
) -> NewRule {
    NewRule { spec: RuleSpec { direction, policy, priority, protocol, ports, peer }, description: String::new() }
}

fn cidr(s: &str) -> Peer {
    Peer::Cidr(parse_cidr(s).expect("block"))
}

fn spec_of(h: &FakeHost) -> hp::HostNetSpec {
    h.network()
}

fn rev(h: &FakeHost) -> u64 {
    h.intent().expect("intent").revision
}

#[test]
fn rules_reach_the_hosts_in_order_with_the_groups_they_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = clock();
    let cp = empty(dir.path(), &clock);
    let h = FakeHost::join_net(&cp, "n1", "z1", 64, Some(ip("192.0.2.1")));
    let (acct, _) = cp.create_account("alice").expect("account");
    let (v, s) = vpc(&cp, &acct.id, "10.0.0.0/16", &[("z1", "10.0.1.0/24")]);
    let web = group(&cp, &acct.id, &v, GroupKind::Basic);
    let db = group(&cp, &acct.id, &v, GroupKind::Basic);
    let admins = group(&cp, &acct.id, &v, GroupKind::Basic);
    let i1 = run(&cp, &acct.id, &s[0], &[&web]);
    let i2 = run(&cp, &acct.id, &s[0], &[&db]);
    let rules = [
        rule(Direction::Ingress, Policy::Accept, 1, Protocol::Tcp, Some((80, 80)), cidr("0.0.0.0/0")),
        rule(Direction::Ingress, Policy::Drop, 5, Protocol::Tcp, Some((22, 22)), cidr("10.0.0.0/8")),
        rule(Direction::Ingress, Policy::Accept, 10, Protocol::Tcp, Some((22, 22)), Peer::Group(admins.clone())),
        rule(Direction::Egress, Policy::Drop, 1, Protocol::Udp, Some((53, 53)), cidr("8.8.8.8/32")),
        rule(Direction::Egress, Policy::Accept, 100, Protocol::All, None, Peer::Group(db.clone())),
    ];
    assert_eq!(cp.authorize(&acct.id, &web, &rules).expect("authorize"), 5);
    let n = spec_of(&h);
    let groups = &n.vpcs[0].security_groups;
    let find = |id: &str| groups.iter().find(|g| g.id == id).unwrap_or_else(|| panic!("{id} in the spec"));
    let w = find(&web);
    assert_eq!(w.rules.len(), 5);
    assert_eq!(w.rules[1].policy, hp::Policy::Drop);
    assert_eq!(w.rules[2].peer, hp::Peer::Group(admins.clone()));
    assert_eq!(w.rules[3].direction, hp::Direction::Egress);
    assert_eq!(w.members, vec![cp.instance_network(&i1).expect("nic").0.ip]);
    assert_eq!(find(&db).members, vec![cp.instance_network(&i2).expect("nic").0.ip]);
    let a = find(&admins);
    assert!(a.members.is_empty() && a.rules.is_empty(), "named only: members, no rules");
    assert_eq!(w.inner_access, hp::InnerAccessPolicy::Accept);
    // A duplicate is a no-op: nothing added, no host told.
    let before = rev(&h);
    assert_eq!(cp.authorize(&acct.id, &web, &rules[..2]).expect("again"), 0);
    assert_eq!(rev(&h), before);
    assert_eq!(cp.security_group(&acct.id, &web).expect("group").0.rules.len(), 5);
    // A revoke of a rule the group has removes it; of one it has not, nothing.
    assert_eq!(cp.revoke(&acct.id, &web, &rules[..1], &[]).expect("revoke"), 1);
    assert_eq!(cp.revoke(&acct.id, &web, &rules[..1], &[]).expect("revoke"), 0);
    assert_eq!(find_rules(&spec_of(&h), &web), 4);
    let id = cp.security_group(&acct.id, &web).expect("group").0.rules[0].id.clone();
    assert_eq!(cp.revoke(&acct.id, &web, &[], &[id]).expect("by id"), 1);
    assert_eq!(find_rules(&spec_of(&h), &web), 3);
    cp.set_inner_access(&acct.id, &web, InnerAccess::Drop).expect("policy");
    let n = spec_of(&h);
    let w = n.vpcs[0].security_groups.iter().find(|g| g.id == web).expect("web");
    assert_eq!(w.inner_access, hp::InnerAccessPolicy::Drop);
}

fn find_rules(n: &hp::HostNetSpec, id: &str) -> usize {
    n.vpcs[0].security_groups.iter().find(|g| g.id == id).map(|g| g.rules.len()).unwrap_or(0)
}

#[test]
fn bad_rules_and_foreign_groups_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = clock();
    let cp = empty(dir.path(), &clock);
    let (acct, _) = cp.create_account("alice").expect("account");
    let (bob, _) = cp.create_account("bob").expect("account");
    let (v1, _) = vpc(&cp, &acct.id, "10.0.0.0/16", &[]);
    let (v2, _) = vpc(&cp, &acct.id, "10.1.0.0/16", &[]);
    let (vb, _) = vpc(&cp, &bob.id, "10.0.0.0/16", &[]);
    let g = group(&cp, &acct.id, &v1, GroupKind::Basic);
    let other_vpc = group(&cp, &acct.id, &v2, GroupKind::Basic);
    let bobs = group(&cp, &bob.id, &vb, GroupKind::Basic);
    let ok = rule(Direction::Ingress, Policy::Accept, 1, Protocol::Tcp, Some((1, 65535)), cidr("0.0.0.0/0"));
    let bad = |r: NewRule| cp.authorize(&acct.id, &g, &[ok.clone(), r]).map(|_| ());
    let with = |f: &dyn Fn(&mut RuleSpec)| {
        let mut r = ok.clone();
        f(&mut r.spec);
        r
    };
    assert_eq!(bad(with(&|r| r.priority = 0)), Err(NetError::RulePriority.into()));
    assert_eq!(bad(with(&|r| r.priority = 101)), Err(NetError::RulePriority.into()));
    assert_eq!(bad(with(&|r| r.ports = Some((10, 1)))), Err(NetError::RulePorts.into()));
    assert_eq!(bad(with(&|r| r.ports = None)), Err(NetError::RuleProtocolPorts.into()));
    assert_eq!(bad(with(&|r| r.protocol = Protocol::Icmp)), Err(NetError::RuleProtocolPorts.into()));
    assert_eq!(
        bad(with(&|r| r.peer = Peer::Group(other_vpc.clone()))),
        Err(NetError::PeerGroupVpcMismatch(other_vpc.clone()).into())
    );
    assert_eq!(
        bad(with(&|r| r.peer = Peer::Group(bobs.clone()))),
        Err(NetError::PeerGroupNotFound { id: bobs.clone(), egress: false }.into())
    );
    assert!(cp.security_group(&acct.id, &g).expect("group").0.rules.is_empty(), "all or nothing");
    assert_eq!(
        cp.authorize(&acct.id, &bobs, std::slice::from_ref(&ok)),
        Err(NetError::SecurityGroupNotFound(bobs.clone()).into())
    );
    let ent = group(&cp, &acct.id, &v1, GroupKind::Enterprise);
    assert_eq!(cp.set_inner_access(&acct.id, &ent, InnerAccess::Drop), Err(NetError::EnterpriseInnerAccess.into()));
    // A group another group's rule names stays.
    cp.authorize(&acct.id, &ent, &[with(&|r| r.peer = Peer::Group(g.clone()))]).expect("authorize");
    assert_eq!(cp.delete_security_group(&acct.id, &g), Err(NetError::GroupReferenced(g.clone()).into()));
    let many: Vec<NewRule> = (1..=201u16).map(|p| with(&|r| r.ports = Some((p, p)))).collect();
    assert_eq!(cp.authorize(&acct.id, &g, &many), Err(NetError::TooManyRules(200).into()));
}

#[test]
fn membership_follows_alibaba_s_limits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = clock();
    let cp = empty(dir.path(), &clock);
    let h = FakeHost::join_net(&cp, "n1", "z1", 64, None);
    let (acct, _) = cp.create_account("alice").expect("account");
    let (v, s) = vpc(&cp, &acct.id, "10.0.0.0/16", &[("z1", "10.0.1.0/24")]);
    let (v2, _) = vpc(&cp, &acct.id, "10.1.0.0/16", &[]);
    let basic: Vec<String> = (0..6).map(|_| group(&cp, &acct.id, &v, GroupKind::Basic)).collect();
    let ent = group(&cp, &acct.id, &v, GroupKind::Enterprise);
    let elsewhere = group(&cp, &acct.id, &v2, GroupKind::Basic);
    let i = run(&cp, &acct.id, &s[0], &[&basic[0]]);
    let join = |g: &str| cp.set_membership(&acct.id, &i, g, true);
    assert_eq!(join(&ent), Err(NetError::GroupKindsMixed.into()));
    assert_eq!(join(&elsewhere), Err(NetError::GroupVpcMismatch(elsewhere.clone()).into()));
    for g in &basic[1..5] {
        join(g).expect("join");
    }
    join(&basic[1]).expect("joining again is a no-op");
    assert_eq!(join(&basic[5]), Err(NetError::TooManyGroups(5).into()));
    let port = spec_of(&h).vpcs[0].ports[0].clone();
    assert_eq!(port.security_group_ids, basic[..5].to_vec());
    for g in &basic[1..5] {
        cp.set_membership(&acct.id, &i, g, false).expect("leave");
    }
    cp.set_membership(&acct.id, &i, &basic[5], false).expect("leaving a group one is not in changes nothing");
    assert_eq!(cp.set_membership(&acct.id, &i, &basic[0], false), Err(NetError::LastGroup(basic[0].clone()).into()));
    let mixed = InstanceNetwork {
        vswitch_id: Some(s[0].clone()),
        security_group_ids: vec![basic[0].clone(), ent.clone()],
        ..Default::default()
    };
    let e = cp.create_instances_in(&acct.id, &spec(Purchase::default()), &mixed).expect_err("mixed");
    assert_eq!(e, DomainError::Net(NetError::GroupKindsMixed));
}

#[test]
fn a_change_reaches_only_the_hosts_it_concerns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = clock();
    let cp = empty(dir.path(), &clock);
    let h1 = FakeHost::join_net(&cp, "n1", "z1", 64, Some(ip("192.0.2.1")));
    let h2 = FakeHost::join_net(&cp, "n2", "z2", 64, Some(ip("192.0.2.2")));
    let h3 = FakeHost::join_net(&cp, "n3", "z3", 64, Some(ip("192.0.2.3")));
    let (acct, _) = cp.create_account("alice").expect("account");
    let (v1, s1) = vpc(&cp, &acct.id, "10.0.0.0/16", &[("z1", "10.0.1.0/24"), ("z2", "10.0.2.0/24")]);
    let (v2, s2) = vpc(&cp, &acct.id, "10.0.0.0/16", &[("z3", "10.0.3.0/24")]);
    let a = group(&cp, &acct.id, &v1, GroupKind::Basic);
    let b = group(&cp, &acct.id, &v1, GroupKind::Basic);
    let c = group(&cp, &acct.id, &v2, GroupKind::Basic);
    let _i1 = run(&cp, &acct.id, &s1[0], &[&a]);
    let i2 = run(&cp, &acct.id, &s1[1], &[&b]);
    let _i3 = run(&cp, &acct.id, &s2[0], &[&c]);
    let revs = || [rev(&h1), rev(&h2), rev(&h3)];
    let moved = |before: [u64; 3]| -> [bool; 3] {
        let now = revs();
        [now[0] != before[0], now[1] != before[1], now[2] != before[2]]
    };
    let r = revs();
    let ssh = rule(Direction::Ingress, Policy::Accept, 1, Protocol::Tcp, Some((22, 22)), cidr("0.0.0.0/0"));
    cp.authorize(&acct.id, &a, std::slice::from_ref(&ssh)).expect("authorize");
    assert_eq!(moved(r), [true, false, false], "a rule of A: the host of A's member");
    let r = revs();
    cp.set_inner_access(&acct.id, &b, InnerAccess::Drop).expect("policy");
    assert_eq!(moved(r), [false, true, false], "B's policy: the host of B's member");
    let r = revs();
    cp.set_membership(&acct.id, &i2, &a, true).expect("join");
    assert_eq!(moved(r), [true, true, false], "A's members: every host of A's VPC");
    let r = revs();
    cp.authorize(&acct.id, &c, std::slice::from_ref(&ssh)).expect("authorize");
    assert_eq!(moved(r), [false, false, true]);
    let r = revs();
    cp.revoke(&acct.id, &c, std::slice::from_ref(&ssh), &[]).expect("revoke");
    assert_eq!(moved(r), [false, false, true]);
    let r = revs();
    let unused = group(&cp, &acct.id, &v1, GroupKind::Basic);
    cp.authorize(&acct.id, &unused, &[ssh]).expect("authorize");
    assert_eq!(moved(r), [false, false, false], "a group without members concerns no host");
}

#[test]
fn a_churning_vpc_reaches_the_other_hosts_at_most_once_per_period() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = clock();
    let cp = empty(dir.path(), &clock);
    let h1 = FakeHost::join_net(&cp, "n1", "z1", 64, Some(ip("192.0.2.1")));
    let h2 = FakeHost::join_net(&cp, "n2", "z2", 64, Some(ip("192.0.2.2")));
    let (acct, _) = cp.create_account("alice").expect("account");
    let (v, s) = vpc(&cp, &acct.id, "10.0.0.0/16", &[("z1", "10.0.1.0/24"), ("z2", "10.0.2.0/24")]);
    let g = group(&cp, &acct.id, &v, GroupKind::Basic);
    let ports = |h: &FakeHost| spec_of(h).vpcs.iter().map(|v| v.remote_ports.len()).sum::<usize>();
    let _first = run(&cp, &acct.id, &s[0], &[&g]);
    // Quiet VPC: the first change reaches the other host at once (there is nobody yet).
    cp.flush_peer_updates().expect("flush");
    cp.flush_peer_updates().expect("flush: the VPC is quiet again");
    let before = rev(&h1);
    let second = run(&cp, &acct.id, &s[1], &[&g]);
    assert_ne!(rev(&h1), before, "a change in a quiet VPC reaches the other hosts at once");
    let before = (rev(&h1), rev(&h2));
    let third = run(&cp, &acct.id, &s[1], &[&g]);
    assert_ne!(rev(&h2), before.1, "the host the instance lands on hears at once");
    assert_eq!(rev(&h1), before.0, "within the period, the other hosts are not woken again");
    // Its intent, fetched for any other reason, is current all the same.
    assert_eq!(ports(&h1), 2, "h1 knows both remote ports of n2: {second} and {third}");
    cp.flush_peer_updates().expect("flush");
    assert_ne!(rev(&h1), before.0, "at the period's end the other hosts hear of the churn");
    let after = rev(&h1);
    cp.flush_peer_updates().expect("flush");
    assert_eq!(rev(&h1), after, "a period without change wakes nobody");
}

#[test]
fn a_simulated_host_is_not_woken_for_its_peers() {
    // A simulated host's intent carries no network: the VPC's new members and its groups' rules
    // change nothing in it, so they do not wake it (a host with a network is woken).
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = clock();
    let cp = empty(dir.path(), &clock);
    let real = FakeHost::join_net(&cp, "n1", "z1", 64, Some(ip("192.0.2.1")));
    let hollow = FakeHost::join(&cp, "n2", "z2", 64);
    assert!(hollow.intent().expect("intent").network.is_none());
    let (acct, _) = cp.create_account("alice").expect("account");
    let (v, s) = vpc(&cp, &acct.id, "10.0.0.0/16", &[("z1", "10.0.1.0/24"), ("z2", "10.0.2.0/24")]);
    let g = group(&cp, &acct.id, &v, GroupKind::Basic);
    let _on_hollow = run(&cp, &acct.id, &s[1], &[&g]);
    let _on_real = run(&cp, &acct.id, &s[0], &[&g]);
    cp.flush_peer_updates().expect("flush");
    cp.flush_peer_updates().expect("flush: the VPC is quiet again");
    let before = (rev(&real), rev(&hollow));
    let _another = run(&cp, &acct.id, &s[0], &[&g]);
    let ssh = rule(Direction::Ingress, Policy::Accept, 1, Protocol::Tcp, Some((22, 22)), cidr("0.0.0.0/0"));
    cp.authorize(&acct.id, &g, &[ssh]).expect("authorize");
    cp.flush_peer_updates().expect("flush");
    assert_ne!(rev(&real), before.0, "the host with a network hears of the new member and the rule");
    assert_eq!(rev(&hollow), before.1, "the simulated host is left alone");
}
