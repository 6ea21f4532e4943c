//! Networks in the store: everything round-trips, an address is held once per VPC whatever the
//! writer believed, removals free what they name, and metered traffic is keyed.

use std::net::Ipv4Addr;

use chrono::{TimeZone, Utc};
use feiyun_domain::account::Account;
use feiyun_domain::instance::{ChargeType, Instance, InstanceStatus, PowerState};
use feiyun_domain::net::cidr::parse_cidr;
use feiyun_domain::net::{
    Direction, GroupKind, InnerAccess, InternetCharge, Nic, Peer, Policy, Protocol, PublicIp, PublicIpKind, RuleSpec,
    SecurityGroup, SgRule, VSwitch, Vpc,
};
use feiyun_domain::usage::{TrafficCounter, TrafficUsage};
use feiyun_store::{NetKey, NetWrites, SqliteStore, Store, StoreError, StoredKey, WriteSet};

fn now() -> chrono::DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000, 0).single().expect("valid")
}

fn store() -> SqliteStore {
    let s = SqliteStore::in_memory().expect("store");
    let a = Account { id: "a".into(), name: "alice".into(), created_at: now() };
    let k = StoredKey { id: "k".into(), account_id: "a".into(), sealed_secret: vec![1], enabled: true };
    s.create_account(&a, &k).expect("account");
    s
}

fn instance(id: &str) -> Instance {
    Instance {
        id: id.into(),
        account_id: "a".into(),
        name: id.into(),
        hostname: id.into(),
        description: String::new(),
        region_id: "r".into(),
        zone_id: "z".into(),
        host_id: "h".into(),
        instance_type: "ecs.g7.large".into(),
        image_id: "img".into(),
        status: InstanceStatus::Pending,
        desired: PowerState::Running,
        stopped_mode: None,
        charge_type: ChargeType::PostPaid,
        billing: Default::default(),
        user_data: None,
        tags: Vec::new(),
        deployment_set_id: None,
        key_pair_name: None,
        created_at: now(),
        started_at: None,
        updated_at: now(),
        revision: 1,
    }
}

fn network() -> NetWrites {
    let vpc = Vpc {
        id: "vpc-1".into(),
        account_id: "a".into(),
        name: "v".into(),
        description: String::new(),
        cidr: parse_cidr("192.168.0.0/16").expect("cidr"),
        vni: 7,
        is_default: true,
        created_at: now(),
        available_at: now(),
    };
    let vsw = VSwitch {
        id: "vsw-1".into(),
        account_id: "a".into(),
        vpc_id: "vpc-1".into(),
        zone_id: "z".into(),
        cidr: parse_cidr("192.168.1.0/24").expect("cidr"),
        name: String::new(),
        description: String::new(),
        is_default: true,
        created_at: now(),
        available_at: now(),
    };
    let rule = |id: &str, peer: Peer| SgRule {
        id: id.into(),
        spec: RuleSpec {
            direction: Direction::Ingress,
            policy: Policy::Accept,
            priority: 1,
            protocol: Protocol::Tcp,
            ports: Some((22, 22)),
            peer,
        },
        description: "ssh".into(),
        created_at: now(),
    };
    let group = SecurityGroup {
        id: "sg-1".into(),
        account_id: "a".into(),
        vpc_id: "vpc-1".into(),
        name: "web".into(),
        description: String::new(),
        kind: GroupKind::Basic,
        inner_access: InnerAccess::Accept,
        is_default: false,
        created_at: now(),
        rules: vec![
            rule("sgr-2", Peer::Cidr(parse_cidr("10.0.0.0/8").expect("cidr"))),
            rule("sgr-1", Peer::Group("sg-1".into())),
        ],
    };
    NetWrites { vpcs: vec![vpc], vswitches: vec![vsw], groups: vec![group], ..Default::default() }
}

fn nic(instance: &str, ip: [u8; 4]) -> Nic {
    Nic {
        instance_id: instance.into(),
        account_id: "a".into(),
        vpc_id: "vpc-1".into(),
        vswitch_id: "vsw-1".into(),
        ip: Ipv4Addr::from(ip),
        mac: [0, 0x16, 0x3e, 1, 2, ip[3]],
        eni_id: format!("eni-{instance}"),
        security_group_ids: vec!["sg-1".into()],
        bandwidth_out_mbps: 5,
        internet_charge: InternetCharge::PayByTraffic,
    }
}

#[test]
fn networks_round_trip_and_addresses_are_held_once() {
    let s = store();
    s.commit(&WriteSet { net: Some(&network()), ..Default::default() }).expect("network");
    let a = [instance("i-1")];
    let pip = PublicIp {
        allocation_id: "eip-1".into(),
        ip: Ipv4Addr::new(203, 0, 113, 1),
        account_id: "a".into(),
        kind: PublicIpKind::Instance,
        instance_id: Some("i-1".into()),
        name: String::new(),
        description: String::new(),
        bandwidth_mbps: 5,
        charge: InternetCharge::PayByTraffic,
        created_at: now(),
    };
    let w = NetWrites { nics: vec![nic("i-1", [192, 168, 1, 1])], public_ips: vec![pip.clone()], ..Default::default() };
    s.commit(&WriteSet { instances: &a, net: Some(&w), ..Default::default() }).expect("instance with its nic");

    // Another writer that believed 192.168.1.1 free is refused, and its instance is not written.
    let b = [instance("i-2")];
    let clash = NetWrites { nics: vec![nic("i-2", [192, 168, 1, 1])], ..Default::default() };
    let e = s.commit(&WriteSet { instances: &b, net: Some(&clash), ..Default::default() });
    assert!(matches!(e, Err(StoreError::Backend(_))), "{e:?}");

    let loaded = s.load().expect("load");
    assert_eq!(loaded.instances.len(), 1, "the refused instance was rolled back");
    let net = loaded.net;
    assert_eq!(net.vpcs, network().vpcs);
    assert_eq!(net.vswitches, network().vswitches);
    assert_eq!(net.groups, network().groups, "rules keep their order");
    assert_eq!(net.nics, vec![nic("i-1", [192, 168, 1, 1])]);
    assert_eq!(net.public_ips, vec![pip]);

    // Releasing frees the address and the membership; the group can then go.
    let gone = NetWrites {
        deleted: vec![
            NetKey::Nic("i-1".into()),
            NetKey::PublicIp("eip-1".into()),
            NetKey::SecurityGroup("sg-1".into()),
        ],
        ..Default::default()
    };
    s.commit(&WriteSet { net: Some(&gone), ..Default::default() }).expect("release");
    let net = s.load().expect("load").net;
    assert!(net.nics.is_empty() && net.public_ips.is_empty() && net.groups.is_empty());
    s.commit(&WriteSet { instances: &b, net: Some(&clash), ..Default::default() })
        .expect_err("the group i-2 names is gone");
}

#[test]
fn the_same_address_in_two_vpcs_is_fine() {
    let s = store();
    let mut two = network();
    let mut other = two.vpcs[0].clone();
    other.id = "vpc-2".into();
    other.vni = 8;
    other.is_default = false;
    let mut vsw = two.vswitches[0].clone();
    vsw.id = "vsw-2".into();
    vsw.vpc_id = "vpc-2".into();
    vsw.is_default = false;
    two.vpcs.push(other);
    two.vswitches.push(vsw);
    s.commit(&WriteSet { net: Some(&two), ..Default::default() }).expect("two VPCs, same block");
    let mut n2 = nic("i-2", [192, 168, 1, 1]);
    n2.vpc_id = "vpc-2".into();
    n2.vswitch_id = "vsw-2".into();
    n2.security_group_ids.clear();
    let w = NetWrites { nics: vec![nic("i-1", [192, 168, 1, 1]), n2], ..Default::default() };
    s.commit(&WriteSet { instances: &[instance("i-1"), instance("i-2")], net: Some(&w), ..Default::default() })
        .expect("one address in two VPCs");
    let mut dup = network().vpcs[0].clone();
    dup.id = "vpc-3".into();
    dup.is_default = false;
    let e =
        s.commit(&WriteSet { net: Some(&NetWrites { vpcs: vec![dup], ..Default::default() }), ..Default::default() });
    assert!(e.is_err(), "a VNI is held by one VPC");
}

#[test]
fn metered_traffic_is_keyed() {
    let s = store();
    let u = TrafficUsage {
        key: "i-1:1".into(),
        instance_id: "i-1".into(),
        account_id: "a".into(),
        at_s: 100,
        in_bytes: 10,
        out_bytes: 20,
    };
    let c = TrafficCounter { instance_id: "i-1".into(), host_id: "h".into(), in_bytes: 10, out_bytes: 20, seq: 1 };
    for _ in 0..2 {
        s.commit(&WriteSet {
            traffic: std::slice::from_ref(&u),
            traffic_counters: std::slice::from_ref(&c),
            ..Default::default()
        })
        .expect("traffic");
    }
    assert_eq!(s.traffic_usage(Some("a"), 101).expect("usage"), vec![u]);
    assert!(s.traffic_usage(Some("a"), 100).expect("usage").is_empty(), "before 100 only");
    assert_eq!(s.load().expect("load").net.traffic_counters, vec![c]);
}
