//! VPCs through the control plane and the host protocol: address allocation (reserved addresses,
//! exhaustion, a given address), the default VPC, isolation of overlapping VPCs, the lifecycle
//! of VPCs and vSwitches, and what each host's intent says of its network.

mod common;

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use common::{region_with, spec, FakeHost, ManualClock};
use feiyun_control::{BillingSetup, ControlPlane, HostsSetup, NetworkSetup, VSwitchFilter, VpcFilter};
use feiyun_domain::instance::UserAction;
use feiyun_domain::net::cidr::parse_cidr;
use feiyun_domain::net::{NetError, Provisioning};
use feiyun_domain::ops::{InstanceNetwork, NewSecurityGroup, NewVSwitch, NewVpc, Purchase};
use feiyun_domain::DomainError;

pub fn clock() -> Arc<ManualClock> {
    let c = Arc::new(ManualClock(std::sync::Mutex::new(chrono::Utc::now())));
    c.set(0);
    c
}

fn setup() -> NetworkSetup {
    NetworkSetup {
        eip_pool: Some("203.0.113.0/29".parse().expect("pool")),
        provisioning: Duration::ZERO,
        ..NetworkSetup::default()
    }
}

/// A region with zones z1..z3 and no host yet.
fn empty(dir: &std::path::Path, clock: &Arc<ManualClock>, net: NetworkSetup) -> Arc<ControlPlane> {
    let zones = [("s1", "z1", 0), ("s2", "z2", 0), ("s3", "z3", 0)];
    region_with(dir, clock.clone(), BillingSetup::default(), HostsSetup::default(), &zones, net)
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().expect("address")
}

/// A VPC with one vSwitch per `(zone, block)` and a basic group: (vpc, vswitches, group).
fn vpc(cp: &ControlPlane, acct: &str, block: &str, vsws: &[(&str, &str)]) -> (String, Vec<String>, String) {
    let v = cp.create_vpc(acct, &NewVpc { cidr: parse_cidr(block), ..Default::default() }, false).expect("vpc");
    let s = vsws
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
    let g = NewSecurityGroup {
        vpc_id: Some(v.id.clone()),
        name: "sg".into(),
        description: String::new(),
        kind: feiyun_domain::net::GroupKind::Basic,
        client_token: None,
    };
    let g = cp.create_security_group(acct, &g).expect("group").id;
    (v.id, s, g)
}

fn run_in(cp: &ControlPlane, acct: &str, vsw: &str, sg: &str, amount: u32) -> Result<Vec<String>, DomainError> {
    let mut s = spec(Purchase::default());
    s.amount = amount;
    let net =
        InstanceNetwork { vswitch_id: Some(vsw.into()), security_group_ids: vec![sg.into()], ..Default::default() };
    cp.create_instances_in(acct, &s, &net).map(|c| c.ids)
}

fn private_ip(cp: &ControlPlane, id: &str) -> Ipv4Addr {
    cp.instance_network(id).expect("networked").0.ip
}

#[test]
fn addresses_skip_the_reserved_ones_and_run_out_with_the_documented_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = clock();
    let cp = empty(dir.path(), &clock, setup());
    let mut h = FakeHost::join_net(&cp, "n1", "z1", 64, None);
    let (acct, _) = cp.create_account("alice").expect("account");
    // A /29 has 8 addresses: .0 and .5, .6, .7 are reserved (.5 is the gateway).
    let (_, vsw, sg) = vpc(&cp, &acct.id, "192.168.0.0/16", &[("z1", "192.168.1.0/29")]);
    let ids = run_in(&cp, &acct.id, &vsw[0], &sg, 4).expect("four fit");
    let got: Vec<Ipv4Addr> = ids.iter().map(|i| private_ip(&cp, i)).collect();
    assert_eq!(got, ["192.168.1.1", "192.168.1.2", "192.168.1.3", "192.168.1.4"].map(ip));
    let before = cp.describe_instances(&acct.id, &Default::default()).len();
    let e = run_in(&cp, &acct.id, &vsw[0], &sg, 1).expect_err("full");
    assert_eq!(e, DomainError::Net(NetError::IpNotEnough(vsw[0].clone())));
    assert_eq!(cp.describe_instances(&acct.id, &Default::default()).len(), before, "nothing was created");
    assert_eq!(cp.vswitch(&acct.id, &vsw[0]).expect("vsw").1, 0, "no address left");
    // Releasing one frees its address for the next instance.
    h.settle();
    cp.act(&acct.id, &ids[1..2], UserAction::Delete { force: true }, None, true, false).expect("delete");
    assert_eq!(cp.vswitch(&acct.id, &vsw[0]).expect("vsw").1, 1);
    let again = run_in(&cp, &acct.id, &vsw[0], &sg, 1).expect("room again");
    assert_eq!(private_ip(&cp, &again[0]), ip("192.168.1.2"));
}

#[test]
fn a_given_private_address_must_be_usable_and_free() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = clock();
    let cp = empty(dir.path(), &clock, setup());
    let _h = FakeHost::join_net(&cp, "n1", "z1", 64, None);
    let (acct, _) = cp.create_account("alice").expect("account");
    let (_, vsw, sg) = vpc(&cp, &acct.id, "10.0.0.0/16", &[("z1", "10.0.1.0/24")]);
    let with = |ip: &str, amount: u32| {
        let mut s = spec(Purchase::default());
        s.amount = amount;
        let net = InstanceNetwork {
            vswitch_id: Some(vsw[0].clone()),
            security_group_ids: vec![sg.clone()],
            private_ip: Some(ip.parse().expect("ip")),
            ..Default::default()
        };
        cp.create_instances_in(&acct.id, &s, &net).map(|c| c.ids)
    };
    let first = with("10.0.1.10", 1).expect("free");
    assert_eq!(private_ip(&cp, &first[0]), ip("10.0.1.10"));
    assert_eq!(with("10.0.1.10", 1), Err(NetError::PrivateIpTaken("10.0.1.10".into()).into()));
    for reserved in ["10.0.1.0", "10.0.1.253", "10.0.1.254", "10.0.1.255", "10.0.2.1"] {
        assert!(matches!(with(reserved, 1), Err(DomainError::Net(NetError::PrivateIpOutside { .. }))), "{reserved}");
    }
    assert_eq!(with("10.0.1.11", 2), Err(NetError::PrivateIpWithAmount.into()));
    // Without a vSwitch an address means nothing.
    let net = InstanceNetwork { private_ip: Some(ip("10.0.1.12")), ..Default::default() };
    let e = cp.create_instances_in(&acct.id, &spec(Purchase::default()), &net).expect_err("no vSwitch");
    assert_eq!(e, NetError::VSwitchNecessary.into());
    // Lowest-free allocation goes around the given address.
    let next = run_in(&cp, &acct.id, &vsw[0], &sg, 1).expect("run");
    assert_eq!(private_ip(&cp, &next[0]), ip("10.0.1.1"));
    assert_eq!(cp.describe_instances(&acct.id, &Default::default()).len(), 2, "refusals created nothing");
}

#[test]
fn an_account_without_a_vpc_gets_a_default_one_per_region_and_a_vswitch_per_zone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = clock();
    let cp = empty(dir.path(), &clock, setup());
    let h1 = FakeHost::join_net(&cp, "n1", "z1", 64, None);
    let _h2 = FakeHost::join_net(&cp, "n2", "z2", 64, None);
    let (acct, _) = cp.create_account("alice").expect("account");
    let mut s = spec(Purchase::default());
    s.zone_id = Some("z1".into());
    let a = cp.create_instances(&acct.id, &s).expect("run").ids;
    let b = cp.create_instances(&acct.id, &s).expect("run").ids;
    s.zone_id = Some("z2".into());
    let c = cp.create_instances(&acct.id, &s).expect("run").ids;
    let vpcs = cp.describe_vpcs(&acct.id, &VpcFilter::default());
    assert_eq!(vpcs.len(), 1, "one default VPC");
    let (v, vsws) = &vpcs[0];
    assert!(v.is_default);
    assert_eq!(v.cidr.to_string(), "172.16.0.0/12");
    assert_eq!(vsws.len(), 2);
    assert_eq!(cp.provisioning_at(v.available_at), Provisioning::Available, "usable at once");
    let vs = cp.describe_vswitches(&acct.id, &VSwitchFilter { vpc_id: Some(v.id.clone()), ..Default::default() });
    let mut blocks: Vec<(String, String)> = vs.iter().map(|(s, _)| (s.zone_id.clone(), s.cidr.to_string())).collect();
    blocks.sort();
    assert_eq!(blocks, [("z1".to_string(), "172.16.0.0/20".to_string()), ("z2".into(), "172.16.16.0/20".into())]);
    assert_eq!(private_ip(&cp, &a[0]), ip("172.16.0.1"));
    assert_eq!(private_ip(&cp, &b[0]), ip("172.16.0.2"));
    assert_eq!(private_ip(&cp, &c[0]), ip("172.16.16.1"));
    let groups = cp.describe_security_groups(&acct.id, &Default::default());
    assert_eq!(groups.len(), 1);
    assert!(groups[0].0.is_default);
    assert_eq!(groups[0].1, 3, "every instance is in it");
    assert_eq!(groups[0].0.rules.len(), 3, "SSH, RDP and ICMP in");
    // The instance's metadata tells it where it is.
    let intent = h1.intent().expect("intent");
    let md = &intent.instances.iter().find(|i| i.id == a[0]).expect("instance").metadata;
    assert_eq!(md.get("private-ipv4").map(String::as_str), Some("172.16.0.1"));
    assert_eq!(md.get("vpc-id"), Some(&v.id));
    assert_eq!(md.get("network-type").map(String::as_str), Some("vpc"));
    let mac = md.get("mac").expect("mac");
    assert!(mac.starts_with("00:16:3e:"), "{mac}");
    let gw = format!("network/interfaces/macs/{mac}/gateway");
    assert_eq!(md.get(&gw).map(String::as_str), Some("172.16.15.253"));
    // A group the account made in the default VPC may be asked for without a vSwitch.
    let g = cp
        .create_security_group(
            &acct.id,
            &NewSecurityGroup {
                vpc_id: None,
                name: "web".into(),
                description: String::new(),
                kind: Default::default(),
                client_token: None,
            },
        )
        .expect("group in the default VPC");
    assert_eq!(g.vpc_id, v.id);
    let net = InstanceNetwork { security_group_ids: vec![g.id.clone()], ..Default::default() };
    let d = cp.create_instances_in(&acct.id, &spec(Purchase::default()), &net).expect("run").ids;
    assert_eq!(cp.instance_network(&d[0]).expect("nic").0.security_group_ids, vec![g.id]);
}

#[test]
fn overlapping_vpcs_of_two_accounts_stay_apart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = clock();
    let cp = empty(dir.path(), &clock, setup());
    let h = FakeHost::join_net(&cp, "n1", "z1", 64, Some(ip("192.0.2.1")));
    let (alice, _) = cp.create_account("alice").expect("account");
    let (bob, _) = cp.create_account("bob").expect("account");
    let (va, sa, ga) = vpc(&cp, &alice.id, "10.0.0.0/16", &[("z1", "10.0.1.0/24")]);
    let (vb, sb, gb) = vpc(&cp, &bob.id, "10.0.0.0/16", &[("z1", "10.0.1.0/24")]);
    let a = run_in(&cp, &alice.id, &sa[0], &ga, 1).expect("alice");
    let b = run_in(&cp, &bob.id, &sb[0], &gb, 1).expect("bob");
    assert_eq!(private_ip(&cp, &a[0]), private_ip(&cp, &b[0]), "the same address in two VPCs");
    let net = h.network();
    assert_eq!(net.vpcs.len(), 2);
    assert_ne!(net.vpcs[0].vni, net.vpcs[1].vni);
    assert_ne!(net.vpcs[0].transit.host, net.vpcs[1].transit.host);
    for v in &net.vpcs {
        assert_eq!(v.ports.len(), 1, "each VPC sees only its own instance");
        assert!(v.remote_ports.is_empty());
    }
    let ids: Vec<&str> = net.vpcs.iter().map(|v| v.vpc_id.as_str()).collect();
    assert!(ids.contains(&va.as_str()) && ids.contains(&vb.as_str()));
    // Another tenant's vSwitch or group is as missing as one that does not exist.
    assert_eq!(run_in(&cp, &alice.id, &sb[0], &ga, 1), Err(NetError::VSwitchNotFound(sb[0].clone()).into()));
    assert_eq!(run_in(&cp, &alice.id, &sa[0], &gb, 1), Err(NetError::SecurityGroupNotFound(gb.clone()).into()));
    assert!(cp.vpc(&alice.id, &vb).is_err());
    // A group of another VPC of the same account is refused too.
    let (_, _, other) = vpc(&cp, &alice.id, "10.1.0.0/16", &[]);
    assert_eq!(run_in(&cp, &alice.id, &sa[0], &other, 1), Err(NetError::GroupVpcMismatch(other.clone()).into()));
}

#[test]
fn remote_ports_are_the_vpc_s_instances_on_other_hosts_that_have_an_underlay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = clock();
    let cp = empty(dir.path(), &clock, setup());
    let h1 = FakeHost::join_net(&cp, "n1", "z1", 64, Some(ip("192.0.2.1")));
    let mut h2 = FakeHost::join_net(&cp, "n2", "z2", 64, Some(ip("192.0.2.2")));
    let h3 = FakeHost::join_net(&cp, "n3", "z3", 64, None);
    let hollow = FakeHost::join(&cp, "hollow", "z1", 64);
    let (acct, _) = cp.create_account("alice").expect("account");
    let (_, s, g) =
        vpc(&cp, &acct.id, "10.0.0.0/16", &[("z1", "10.0.1.0/24"), ("z2", "10.0.2.0/24"), ("z3", "10.0.3.0/24")]);
    let rev = |h: &FakeHost| h.intent().expect("intent").revision;
    let r1 = rev(&h1);
    let a = run_in(&cp, &acct.id, &s[0], &g, 1).expect("on n1");
    let b = run_in(&cp, &acct.id, &s[1], &g, 1).expect("on n2");
    assert!(rev(&h1) > r1, "a new instance of the VPC elsewhere changes n1's network");
    let c = run_in(&cp, &acct.id, &s[2], &g, 1).expect("on n3");
    let spec1 = h1.network();
    let v = &spec1.vpcs[0];
    assert_eq!(v.ports.iter().map(|p| p.instance_id.clone()).collect::<Vec<_>>(), a);
    assert_eq!(v.remote_ports.len(), 1, "n3 carries no traffic between hosts");
    assert_eq!((v.remote_ports[0].ip, v.remote_ports[0].underlay_ip), (ip("10.0.2.1"), ip("192.0.2.2")));
    assert_eq!(v.vswitches.len(), 1, "only the vSwitches of local ports");
    assert_eq!(v.vswitches[0].gateway, ip("10.0.1.253"));
    assert_eq!(spec1.underlay_ip, ip("192.0.2.1"));
    let spec2 = h2.network();
    assert_eq!(spec2.vpcs[0].remote_ports[0].ip, private_ip(&cp, &a[0]));
    assert_eq!(spec2.vpcs[0].ports[0].instance_id, b[0]);
    let spec3 = h3.network();
    assert_eq!(spec3.underlay_ip, Ipv4Addr::UNSPECIFIED);
    assert!(spec3.vpcs[0].remote_ports.is_empty());
    assert_eq!(spec3.vpcs[0].ports[0].instance_id, c[0]);
    assert_eq!(spec1.vpcs[0].transit, spec3.vpcs[0].transit, "a VPC's transit link is the same on every host");
    assert!(hollow.intent().expect("intent").network.is_none(), "hollow hosts get no network");
    // Every host has its own prefix.
    let prefixes = [&spec1.prefix, &spec2.prefix, &spec3.prefix];
    for p in prefixes {
        assert!(p.len() <= 6 && p.starts_with(|c: char| c.is_ascii_lowercase()), "{p}");
    }
    assert!(prefixes[0] != prefixes[1] && prefixes[1] != prefixes[2] && prefixes[0] != prefixes[2]);
    // Releasing b takes it out of n1's network.
    h2.settle();
    cp.act(&acct.id, &b, UserAction::Delete { force: true }, None, true, false).expect("delete");
    assert!(h1.network().vpcs[0].remote_ports.is_empty());
    assert!(h2.network().vpcs.is_empty(), "b's port is gone");
}

#[test]
fn vpcs_and_vswitches_are_pending_first_and_refuse_deletion_while_used() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = clock();
    let net = NetworkSetup { provisioning: Duration::from_secs(2), ..setup() };
    let cp = empty(dir.path(), &clock, net);
    let mut h = FakeHost::join_net(&cp, "n1", "z1", 64, None);
    let (acct, _) = cp.create_account("alice").expect("account");
    let v =
        cp.create_vpc(&acct.id, &NewVpc { cidr: parse_cidr("10.0.0.0/16"), ..Default::default() }, false).expect("vpc");
    assert_eq!(cp.provisioning_at(v.available_at), Provisioning::Pending);
    let vsw = |block: &str| NewVSwitch {
        vpc_id: v.id.clone(),
        zone_id: "z1".into(),
        cidr: parse_cidr(block).expect("block"),
        name: String::new(),
        description: String::new(),
        client_token: None,
    };
    assert_eq!(
        cp.create_vswitch(&acct.id, &vsw("10.0.1.0/24"), false),
        Err(NetError::VpcNotAvailable(v.id.clone()).into())
    );
    assert_eq!(cp.delete_vpc(&acct.id, &v.id, false), Err(NetError::VpcNotAvailable(v.id.clone()).into()));
    clock.set(2);
    assert_eq!(cp.provisioning_at(v.available_at), Provisioning::Available);
    let s = cp.create_vswitch(&acct.id, &vsw("10.0.1.0/24"), false).expect("vswitch");
    for (block, want) in [
        ("10.0.1.128/25", NetError::CidrOverlapped("10.0.1.128/25".into())),
        ("10.0.0.0/16", NetError::CidrOverlapped("10.0.0.0/16".into())),
        ("10.1.0.0/24", NetError::CidrOutsideVpc("10.1.0.0/24".into())),
        ("10.0.2.0/30", NetError::CidrMalformed("10.0.2.0/30".into())),
        ("10.0.0.0/15", NetError::CidrMalformed("10.0.0.0/15".into())),
    ] {
        assert_eq!(cp.create_vswitch(&acct.id, &vsw(block), false), Err(want.into()), "{block}");
    }
    assert_eq!(cp.describe_vswitches(&acct.id, &VSwitchFilter::default()).len(), 1, "refusals made nothing");
    let g = cp
        .create_security_group(
            &acct.id,
            &NewSecurityGroup {
                vpc_id: Some(v.id.clone()),
                name: "g".into(),
                description: String::new(),
                kind: Default::default(),
                client_token: None,
            },
        )
        .expect("group");
    clock.set(4);
    let i = run_in(&cp, &acct.id, &s.id, &g.id, 1).expect("run");
    assert_eq!(cp.delete_vpc(&acct.id, &v.id, false), Err(NetError::VpcHasVSwitches(v.id.clone()).into()));
    assert_eq!(cp.delete_vswitch(&acct.id, &s.id, false), Err(NetError::VSwitchInUse(s.id.clone()).into()));
    assert_eq!(cp.delete_security_group(&acct.id, &g.id), Err(NetError::GroupInUse(g.id.clone()).into()));
    h.settle();
    cp.act(&acct.id, &i, UserAction::Delete { force: true }, None, true, false).expect("delete");
    cp.delete_vswitch(&acct.id, &s.id, false).expect("empty vSwitch");
    assert_eq!(cp.delete_vpc(&acct.id, &v.id, false), Err(NetError::VpcHasGroups(v.id.clone()).into()));
    cp.delete_security_group(&acct.id, &g.id).expect("unused group");
    cp.delete_vpc(&acct.id, &v.id, false).expect("empty VPC");
    assert!(cp.describe_vpcs(&acct.id, &VpcFilter::default()).is_empty());
    for bad in ["100.100.0.0/16", "10.0.0.0/29", "224.0.0.0/8"] {
        let e = cp.create_vpc(&acct.id, &NewVpc { cidr: parse_cidr(bad), ..Default::default() }, false);
        assert_eq!(e, Err(NetError::CidrMalformed(bad.into()).into()), "{bad}");
    }
}

#[test]
fn networks_and_prefixes_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = clock();
    let (acct, ids, prefix, vni) = {
        let cp = empty(dir.path(), &clock, setup());
        let h = FakeHost::join_net(&cp, "n1", "z1", 64, Some(ip("192.0.2.1")));
        let (acct, _) = cp.create_account("alice").expect("account");
        let (_, s, g) = vpc(&cp, &acct.id, "10.0.0.0/16", &[("z1", "10.0.1.0/24")]);
        let mut s1 = spec(Purchase::default());
        s1.amount = 2;
        let net = InstanceNetwork {
            vswitch_id: Some(s[0].clone()),
            security_group_ids: vec![g],
            bandwidth_out_mbps: 5,
            ..Default::default()
        };
        let ids = cp.create_instances_in(&acct.id, &s1, &net).expect("run").ids;
        let n = h.network();
        (acct, ids, n.prefix, n.vpcs[0].vni)
    };
    let cp = empty(dir.path(), &clock, setup());
    let (nic, public) = cp.instance_network(&ids[1]).expect("kept");
    assert_eq!(nic.ip, ip("10.0.1.2"));
    assert_eq!(public.expect("public address").ip, ip("203.0.113.2"));
    let hosts = cp.list_hosts();
    assert_eq!(hosts[0].host.net_prefix, prefix);
    assert_eq!(hosts[0].host.underlay_ip, Some(ip("192.0.2.1")));
    let v = cp.describe_vpcs(&acct.id, &VpcFilter::default());
    assert_eq!(v[0].0.vni, vni);
}

/// A create retried with its `ClientToken` answers what the first made, also after a restart;
/// the same token with other parameters is refused and nothing is made.
#[test]
fn creates_retried_with_their_client_token_make_nothing_twice() {
    use feiyun_control::{EipFilter, GroupFilter};
    use feiyun_domain::ops::{ClientToken, NewEip};
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = clock();
    let ct =
        |token: &str, fingerprint: &str| Some(ClientToken { token: token.into(), fingerprint: fingerprint.into() });
    let (acct, vpc_id, vsw_id, group_id, eip_id) = {
        let cp = empty(dir.path(), &clock, setup());
        let (acct, _) = cp.create_account("alice").expect("account");
        cp.create_account("bob").expect("account");
        let new_vpc = NewVpc { cidr: parse_cidr("10.0.0.0/16"), client_token: ct("t-vpc", "a"), ..Default::default() };
        let v = cp.create_vpc(&acct.id, &new_vpc, false).expect("vpc");
        assert_eq!(cp.create_vpc(&acct.id, &new_vpc, false).expect("retried").id, v.id);
        let other = NewVpc { client_token: ct("t-vpc", "b"), ..new_vpc.clone() };
        assert_eq!(cp.create_vpc(&acct.id, &other, false), Err(DomainError::IdempotentParameterMismatch));
        assert_eq!(cp.describe_vpcs(&acct.id, &VpcFilter::default()).len(), 1);

        let new_vsw = NewVSwitch {
            vpc_id: v.id.clone(),
            zone_id: "z1".into(),
            cidr: parse_cidr("10.0.1.0/24").expect("block"),
            name: String::new(),
            description: String::new(),
            client_token: ct("t-vsw", "a"),
        };
        let s = cp.create_vswitch(&acct.id, &new_vsw, false).expect("vswitch");
        assert_eq!(cp.create_vswitch(&acct.id, &new_vsw, false).expect("retried").id, s.id);

        let new_group = NewSecurityGroup {
            vpc_id: Some(v.id.clone()),
            name: "web".into(),
            description: String::new(),
            kind: Default::default(),
            client_token: ct("t-sg", "a"),
        };
        let g = cp.create_security_group(&acct.id, &new_group).expect("group");
        assert_eq!(cp.create_security_group(&acct.id, &new_group).expect("retried").id, g.id);

        let new_eip = NewEip {
            bandwidth_mbps: 5,
            charge: Default::default(),
            name: String::new(),
            description: String::new(),
            client_token: ct("t-eip", "a"),
        };
        let e = cp.allocate_eip(&acct.id, &new_eip).expect("eip");
        assert_eq!(cp.allocate_eip(&acct.id, &new_eip).expect("retried").allocation_id, e.allocation_id);
        (acct, v.id, s.id, g.id, e.allocation_id)
    };
    // After a restart the tokens are still known; another account's same token is its own.
    let cp = empty(dir.path(), &clock, setup());
    let new_vpc = NewVpc { cidr: parse_cidr("10.0.0.0/16"), client_token: ct("t-vpc", "a"), ..Default::default() };
    assert_eq!(cp.create_vpc(&acct.id, &new_vpc, false).expect("retried after restart").id, vpc_id);
    let bob = cp.account_by_name("bob").expect("read").expect("bob");
    assert_ne!(cp.create_vpc(&bob.id, &new_vpc, false).expect("bob's vpc").id, vpc_id);
    assert_eq!(cp.describe_vpcs(&acct.id, &VpcFilter::default()).len(), 1);
    assert_eq!(cp.describe_vswitches(&acct.id, &VSwitchFilter::default()).len(), 1);
    assert_eq!(cp.describe_vswitches(&acct.id, &VSwitchFilter::default())[0].0.id, vsw_id);
    let groups = cp.describe_security_groups(&acct.id, &GroupFilter::default());
    assert_eq!(groups.iter().map(|(g, _)| g.id.clone()).collect::<Vec<_>>(), vec![group_id]);
    let eips = cp.describe_eips(&acct.id, &EipFilter::default());
    assert_eq!(eips.len(), 1);
    assert_eq!(eips[0].allocation_id, eip_id);
}
