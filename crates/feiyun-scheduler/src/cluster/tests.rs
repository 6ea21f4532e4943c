//! Tests of `cluster`.

use super::*;
use proptest::prelude::*;

fn shape(cpus: u64, gib: u64) -> Shape {
    Shape {
        capacity: Demand { cpu_milli: cpus * 1000, mem_mib: gib * 1024, gpu_milli: 0, disk_gib: 0 },
        zone: "z".into(),
        gpu_model: None,
        disk_category: None,
    }
}

fn d(cpus: u64, gib: u64) -> Demand {
    Demand { cpu_milli: cpus * 1000, mem_mib: gib * 1024, gpu_milli: 0, disk_gib: 0 }
}

#[test]
fn plans_take_nothing_until_committed_and_say_why_not() {
    let mut c = Cluster::new();
    let shape = |zone: &str| Shape { capacity: d(4, 8), zone: zone.into(), gpu_model: None, disk_category: None };
    let a = c.add_host(shape("a"));
    c.add_host(shape("a"));
    let ask = Ask { zone: Some("a".into()), ..Ask::new(d(4, 8), Policy::Feiyun) };
    let p = c.plan(&ask, 2, 2).expect("two hosts fit");
    assert_eq!(c.free(a), d(4, 8), "planning takes nothing");
    c.check().expect("consistent");
    assert!(c.commit(&ask, &p));
    assert_eq!(c.plan(&ask, 1, 1), Err(Unplaceable::NoCapacity { wanted: 1, placed: 0 }));
    let elsewhere = Ask { zone: Some("b".into()), ..ask.clone() };
    assert_eq!(c.plan(&elsewhere, 1, 1), Err(Unplaceable::NoSuitableHost));
    let huge = Ask::new(d(5, 8), Policy::Feiyun);
    assert_eq!(c.plan(&huge, 1, 1), Err(Unplaceable::NoSuitableHost));
    // A plan that no longer fits takes nothing.
    c.release(a, &ask.demand, None);
    let p = c.plan(&ask, 1, 1).expect("room on a");
    assert!(c.assign(a, &ask.demand, None));
    assert!(!c.commit(&ask, &p));
    c.check().expect("consistent");
}

#[test]
fn best_fit_prefers_the_fullest_host_and_spread_the_emptiest() {
    let mut c = Cluster::new();
    let a = c.add_host(shape(8, 32));
    let b = c.add_host(shape(8, 32));
    assert!(c.assign(a, &d(4, 16), None));
    for p in [Policy::Feiyun, Policy::BestFit, Policy::NomadBinpack] {
        assert_eq!(c.choose(&Ask::new(d(2, 8), p)), Some(a), "{p:?}");
    }
    for p in [Policy::WorstFit, Policy::LeastAllocated] {
        assert_eq!(c.choose(&Ask::new(d(2, 8), p)), Some(b), "{p:?}");
    }
    assert_eq!(c.choose(&Ask::new(d(2, 8), Policy::FirstFit)), Some(a));
    c.check().expect("consistent");
}

#[test]
fn batches_roll_back_when_short_of_min_count() {
    let mut c = Cluster::new();
    c.add_host(shape(4, 16));
    let ask = Ask::new(d(2, 4), Policy::Feiyun);
    let err = c.place(&ask, 3, 3).expect_err("only two fit");
    assert_eq!(err.placed, 2);
    assert_eq!(c.used_hosts(), 0, "rolled back");
    assert_eq!(c.place(&ask, 3, 2).expect("partial").len(), 2);
    c.check().expect("consistent");
}

#[test]
fn unlimited_fleet_opens_hosts_only_when_nothing_fits() {
    let mut c = Cluster::new();
    c.allow_unlimited(shape(4, 16));
    let ask = Ask::new(d(1, 4), Policy::Feiyun);
    let hosts = c.place(&ask, 9, 9).expect("opens hosts");
    assert_eq!(c.host_count(), 3);
    assert_eq!(hosts, vec![0, 0, 0, 0, 1, 1, 1, 1, 2]);
    assert!(c.place(&Ask::new(d(8, 1), Policy::Feiyun), 1, 1).is_err(), "no shape can take it");
    c.check().expect("consistent");
}

#[test]
fn deployment_sets_spread_across_hosts() {
    let mut c = Cluster::new();
    for _ in 0..3 {
        c.add_host(shape(16, 64));
    }
    let mut ask = Ask::new(d(1, 1), Policy::Feiyun);
    ask.deployment_set = Some("ds-1".into());
    let hosts = c.place(&ask, 3, 3).expect("three hosts");
    let distinct: HashSet<_> = hosts.iter().collect();
    assert_eq!(distinct.len(), 3);
    assert!(c.place(&ask, 1, 1).is_err(), "a fourth member has no host of its own");
    c.release(hosts[0], &ask.demand, Some("ds-1"));
    assert_eq!(c.place(&ask, 1, 1).expect("room again"), vec![hosts[0]]);
    c.check().expect("consistent");
}

#[test]
fn constraints_zone_gpu_disk() {
    let mut c = Cluster::new();
    let mut g = shape(16, 64);
    g.capacity.gpu_milli = 1000;
    g.gpu_model = Some("T4".into());
    g.zone = "z1".into();
    let gpu_host = c.add_host(g);
    let mut local = shape(16, 64);
    local.capacity.disk_gib = 1788;
    local.disk_category = Some("local_ssd_pro".into());
    local.zone = "z2".into();
    let disk_host = c.add_host(local);
    let mut ask = Ask::new(Demand { gpu_milli: 1000, ..d(4, 15) }, Policy::Feiyun);
    ask.gpu_model = Some("T4".into());
    assert_eq!(c.choose(&ask), Some(gpu_host));
    ask.gpu_model = Some("A100".into());
    assert_eq!(c.choose(&ask), None);
    let mut ask = Ask::new(Demand { disk_gib: 894, ..d(4, 32) }, Policy::Feiyun);
    ask.disk_category = Some("local_ssd_pro".into());
    assert_eq!(c.choose(&ask), Some(disk_host));
    let mut z = Ask::new(d(1, 1), Policy::Feiyun);
    z.zone = Some("z2".into());
    assert_eq!(c.choose(&z), Some(disk_host));
    // CPU-only work avoids stranding GPUs.
    assert_eq!(c.choose(&Ask::new(d(1, 1), Policy::Feiyun)), Some(disk_host));
}

#[test]
fn disabled_hosts_take_nothing_but_keep_their_instances() {
    let mut c = Cluster::new();
    let h = c.add_host(shape(4, 4));
    assert!(c.assign(h, &d(1, 1), None));
    c.set_enabled(h, false);
    assert_eq!(c.choose(&Ask::new(d(1, 1), Policy::Feiyun)), None);
    c.release(h, &d(1, 1), None);
    c.set_enabled(h, true);
    assert_eq!(c.choose(&Ask::new(d(1, 1), Policy::Feiyun)), Some(h));
    c.check().expect("consistent");
}

#[test]
fn slots_count_whole_instances() {
    let mut c = Cluster::new();
    c.add_host(shape(5, 64));
    c.add_host(shape(3, 64));
    assert_eq!(c.slots(&Ask::new(d(2, 1), Policy::Feiyun)), 2 + 1);
}

proptest! {
    /// Whatever the sequence of placements and releases, no host is ever over capacity and
    /// the indexes agree with the hosts, for every policy.
    #[test]
    fn never_overcommits_and_indexes_stay_consistent(
        hosts in prop::collection::vec((1u64..32, 1u64..128), 1..12),
        ops in prop::collection::vec((0u8..4, 1u64..12, 1u64..48, 1u32..4, 0usize..6), 1..80),
    ) {
        let mut c = Cluster::new();
        for (cpu, mem) in &hosts {
            c.add_host(shape(*cpu, *mem));
        }
        let mut live: Vec<(HostId, Demand)> = Vec::new();
        for (op, cpu, mem, n, p) in ops {
            if op == 0 && !live.is_empty() {
                let (h, dm) = live.remove((cpu as usize) % live.len());
                c.release(h, &dm, None);
            } else {
                let ask = Ask::new(d(cpu, mem), Policy::ALL[p]);
                if let Ok(placed) = c.place(&ask, n, n) {
                    prop_assert_eq!(placed.len() as u32, n);
                    live.extend(placed.into_iter().map(|h| (h, ask.demand)));
                }
            }
            prop_assert!(c.check().is_ok(), "{:?}", c.check());
        }
        for (h, _, free, _) in c.hosts() {
            let used: Demand = live.iter().filter(|(x, _)| *x == h).fold(Demand::ZERO, |a, (_, dm)| a.plus(dm));
            prop_assert_eq!(free.plus(&used), c.shape(h).capacity);
        }
    }
}
