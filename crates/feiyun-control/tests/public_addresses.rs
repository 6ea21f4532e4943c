//! Public addresses and public traffic: EIPs allocated from the region's pool, associated,
//! unassociated and released; an instance's own public address with `InternetMaxBandwidthOut`;
//! what the hosts' networks and the metadata say; metering of the hosts' counters and its bill.

mod common;

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use common::{region_with, spec, FakeHost, ManualClock};
use feiyun_control::{BillingSetup, ControlPlane, EipFilter, HostsSetup, NetworkSetup};
use feiyun_domain::instance::UserAction;
use feiyun_domain::net::{InternetCharge, NetError};
use feiyun_domain::ops::{InstanceNetwork, NewEip, Purchase};
use feiyun_domain::usage::LedgerKind;
use feiyun_hostproto::{Report, TrafficCounters};

fn clock() -> Arc<ManualClock> {
    let c = Arc::new(ManualClock(std::sync::Mutex::new(chrono::Utc::now())));
    c.set(0);
    c
}

fn region(dir: &std::path::Path, clock: &Arc<ManualClock>, pool: Option<&str>) -> Arc<ControlPlane> {
    let net = NetworkSetup {
        eip_pool: pool.map(|p| p.parse().expect("pool")),
        provisioning: Duration::ZERO,
        ..NetworkSetup::default()
    };
    region_with(dir, clock.clone(), BillingSetup::default(), HostsSetup::default(), &[("s", "z1", 0)], net)
}

/// The manual clock's zero, an hour boundary.
const T0: i64 = 1_800_000_000;

fn ip(s: &str) -> Ipv4Addr {
    s.parse().expect("address")
}

fn eip(bandwidth: u32) -> NewEip {
    NewEip {
        bandwidth_mbps: bandwidth,
        charge: InternetCharge::PayByTraffic,
        name: String::new(),
        description: String::new(),
        client_token: None,
    }
}

fn run(cp: &ControlPlane, acct: &str, bandwidth: u32) -> Result<String, feiyun_domain::DomainError> {
    let net = InstanceNetwork { bandwidth_out_mbps: bandwidth, ..Default::default() };
    cp.create_instances_in(acct, &spec(Purchase::default()), &net).map(|c| c.ids[0].clone())
}

#[test]
fn eips_come_from_the_pool_and_reach_the_instance_s_host() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = clock();
    // A /29: .1 to .6 are usable.
    let cp = region(dir.path(), &clock, Some("203.0.113.0/29"));
    let mut h = FakeHost::join_net(&cp, "n1", "z1", 64, None);
    let (acct, _) = cp.create_account("alice").expect("account");
    let e1 = cp.allocate_eip(&acct.id, &eip(20)).expect("allocate");
    assert_eq!(e1.ip, ip("203.0.113.1"));
    let i1 = run(&cp, &acct.id, 10).expect("with a public address");
    let (_, public) = cp.instance_network(&i1).expect("nic");
    assert_eq!(public.expect("its own").ip, ip("203.0.113.2"));
    let port = |h: &FakeHost, id: &str| {
        let n = h.network();
        n.vpcs.iter().flat_map(|v| v.ports.iter()).find(|p| p.instance_id == id).cloned().expect("port")
    };
    let p = port(&h, &i1);
    assert_eq!((p.eip, p.egress_mbps), (Some(ip("203.0.113.2")), Some(10)));
    assert_eq!(
        cp.associate_eip(&acct.id, &e1.allocation_id, &i1),
        Err(NetError::InstanceHasPublicAddress(i1.clone()).into())
    );
    let i2 = run(&cp, &acct.id, 0).expect("private only");
    assert_eq!(port(&h, &i2).eip, None);
    let before = h.intent().expect("intent").revision;
    cp.associate_eip(&acct.id, &e1.allocation_id, &i2).expect("associate");
    assert!(h.intent().expect("intent").revision > before, "the host is told");
    let p = port(&h, &i2);
    assert_eq!((p.eip, p.egress_mbps), (Some(e1.ip), Some(20)));
    let md = h.intent().expect("intent").instances.into_iter().find(|i| i.id == i2).expect("i2").metadata;
    assert_eq!(md.get("eipv4").map(String::as_str), Some("203.0.113.1"));
    assert_eq!(
        cp.associate_eip(&acct.id, &e1.allocation_id, &i1),
        Err(NetError::EipInUse(e1.allocation_id.clone()).into())
    );
    assert_eq!(cp.release_eip(&acct.id, &e1.allocation_id), Err(NetError::EipInUse(e1.allocation_id.clone()).into()));
    assert_eq!(
        cp.unassociate_eip(&acct.id, &e1.allocation_id, &i1),
        Err(NetError::EipNotInUse(e1.allocation_id.clone()).into())
    );
    let used = cp.describe_eips(&acct.id, &EipFilter { in_use: Some(true), ..Default::default() });
    assert_eq!(used.len(), 1);
    cp.unassociate_eip(&acct.id, &e1.allocation_id, &i2).expect("unassociate");
    assert_eq!(port(&h, &i2).eip, None);
    // Another tenant cannot see or use it.
    let (bob, _) = cp.create_account("bob").expect("account");
    assert_eq!(cp.release_eip(&bob.id, &e1.allocation_id), Err(NetError::EipNotFound(e1.allocation_id.clone()).into()));
    assert!(cp.describe_eips(&bob.id, &EipFilter::default()).is_empty());
    // Releasing an instance unassociates its EIP and gives its own address back.
    cp.associate_eip(&acct.id, &e1.allocation_id, &i2).expect("associate");
    h.settle();
    cp.act(&acct.id, &[i1.clone(), i2.clone()], UserAction::Delete { force: true }, None, true, false).expect("delete");
    let all = cp.describe_eips(&acct.id, &EipFilter::default());
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].instance_id, None, "unassociated, still allocated");
    let e2 = cp.allocate_eip(&acct.id, &eip(1)).expect("allocate");
    assert_eq!(e2.ip, ip("203.0.113.2"), "the released instance's address is free again");
    cp.release_eip(&acct.id, &e1.allocation_id).expect("release");
    assert_eq!(cp.describe_eips(&acct.id, &EipFilter::default()).len(), 1);
}

#[test]
fn an_exhausted_pool_or_none_is_refused_and_nothing_is_made() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = clock();
    let cp = region(dir.path(), &clock, Some("203.0.113.0/30"));
    let _h = FakeHost::join_net(&cp, "n1", "z1", 64, None);
    let (acct, _) = cp.create_account("alice").expect("account");
    cp.allocate_eip(&acct.id, &eip(1)).expect(".1");
    cp.allocate_eip(&acct.id, &eip(1)).expect(".2");
    assert_eq!(cp.allocate_eip(&acct.id, &eip(1)), Err(NetError::PublicPoolExhausted { eip: true }.into()));
    assert_eq!(run(&cp, &acct.id, 5), Err(NetError::PublicPoolExhausted { eip: false }.into()));
    assert!(cp.describe_instances(&acct.id, &Default::default()).is_empty());
    let dir2 = tempfile::tempdir().expect("tempdir");
    let none = region(dir2.path(), &clock, None);
    let _h = FakeHost::join_net(&none, "n1", "z1", 64, None);
    let (acct, _) = none.create_account("alice").expect("account");
    assert_eq!(none.allocate_eip(&acct.id, &eip(1)), Err(NetError::NoPublicPool.into()));
    assert_eq!(run(&none, &acct.id, 5), Err(NetError::NoPublicPool.into()));
}

fn report(h: &FakeHost, id: &str, in_bytes: u64, out_bytes: u64) {
    let r = Report {
        epoch: h.epoch,
        traffic: vec![TrafficCounters { instance_id: id.into(), in_bytes, out_bytes }],
        ..Default::default()
    };
    h.cp.host_report(&h.reg.credential, r).expect("report");
}

#[test]
fn public_traffic_is_metered_once_and_billed_at_the_bandwidth_tiers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = clock();
    let cp = region(dir.path(), &clock, Some("203.0.113.0/28"));
    let mut h = FakeHost::join_net(&cp, "n1", "z1", 64, None);
    let (talker, _) = cp.create_account("talker").expect("account");
    let (quiet, _) = cp.create_account("quiet").expect("account");
    for a in [&talker.id, &quiet.id] {
        cp.top_up(a, 100_000, "start").expect("top up");
    }
    let t = run(&cp, &talker.id, 10).expect("run");
    let _q = run(&cp, &quiet.id, 10).expect("run");
    h.settle();
    // 4.5 GB out within the first hour: 10 Mbit/s on average.
    clock.set(60);
    report(&h, &t, 1_000, 2_000_000_000);
    report(&h, &t, 1_000, 2_000_000_000);
    clock.set(120);
    report(&h, &t, 2_000, 4_000_000_000);
    // The host rebuilt its counters: the next reading counts from zero.
    clock.set(180);
    report(&h, &t, 10, 500_000_000);
    let used = cp.traffic_usage(&talker.id, T0 + 3600).expect("usage");
    assert_eq!(used.iter().map(|u| u.out_bytes).collect::<Vec<_>>(), [2_000_000_000, 2_000_000_000, 500_000_000]);
    assert_eq!(used.iter().map(|u| u.in_bytes).sum::<u64>(), 2_010);
    // Readings of an instance the host does not have are ignored.
    report(&h, "i-nothere", 1, 1);
    let prices = cp.prices().expect("prices");
    let charge = feiyun_billing::traffic::charge(&used, prices);
    assert_eq!(charge, feiyun_billing::money::Money::from_micros(prices.bandwidth_hour(10)));
    clock.set(3600);
    cp.billing_tick().expect("tick");
    cp.billing_tick().expect("a second tick changes nothing");
    let settled = |a: &str| -> i64 {
        cp.ledger(a).expect("ledger").iter().filter(|e| e.kind == LedgerKind::PayAsYouGo).map(|e| -e.amount_cents).sum()
    };
    let (with, without) = (settled(&talker.id), settled(&quiet.id));
    // 5 × 0.063 + 5 × 0.25 = 1.565 for the hour; both instances' compute and disk are the same.
    let diff = with - without;
    assert!((156..=157).contains(&diff), "traffic added {diff} cents");
    // The bill shows it as a line of the talker's instance: its bytes, what settlement charged.
    let bills = cp.account_bills(&talker.id).expect("bills");
    let lines = cp.usage_lines(&bills, T0, T0 + 3600).expect("lines");
    let line = lines.iter().find(|l| l.item == feiyun_billing::metering::Item::Traffic).expect("a traffic line");
    assert_eq!((line.instance_id.as_str(), line.out_bytes), (t.as_str(), 4_500_000_000));
    assert_eq!(line.amount, charge);
    let bills = cp.account_bills(&quiet.id).expect("bills");
    let lines = cp.usage_lines(&bills, T0, T0 + 3600).expect("lines");
    assert!(lines.iter().all(|l| l.item != feiyun_billing::metering::Item::Traffic), "no traffic, no line");
    // Restarted, the control plane keeps the last readings: the same reading meters nothing.
    let reg = h.reg.clone();
    drop(h);
    drop(cp);
    let cp = region(dir.path(), &clock, Some("203.0.113.0/28"));
    let h = FakeHost::with(&cp, reg);
    clock.set(3700);
    report(&h, &t, 10, 500_000_000);
    assert_eq!(cp.traffic_usage(&talker.id, T0 + 4000).expect("usage").len(), 3);
    report(&h, &t, 10, 500_000_100);
    assert_eq!(cp.traffic_usage(&talker.id, T0 + 4000).expect("usage").len(), 4);
}
