//! Rating 10 million usage events and producing a month of bills for 100,000 instances.
//!
//! `cargo bench -p feiyun-billing --bench rating`
//!
//! Each instance is created and started at a random second of the month, then goes through random
//! stop (both modes) / start cycles, 100 events per instance on average; a third are released
//! before the month ends. Prints wall time per phase and the peak resident memory.

use std::time::Instant;

use feiyun_billing::metering::{intervals, Charge, EventKind, UsageEvent};
use feiyun_billing::prices::{PriceBook, TypeSize};
use feiyun_billing::rating::{bill, Market};

/// The price book shipped with Feiyun.
const BOOK: &str = include_str!("../../../catalog/prices.toml");

const TYPES: &[(&str, u32, u64)] =
    &[("ecs.g7.large", 2, 8), ("ecs.c7.xlarge", 4, 8), ("ecs.r7.2xlarge", 8, 64), ("ecs.t5-lc2m1.nano", 1, 1)];

struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let month: i64 = 30 * 86_400;
    let instances = 100_000u64;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let t0 = Instant::now();
    let mut events = Vec::with_capacity(10_100_000);
    for i in 0..instances {
        let id = format!("i-{i:08}");
        let (ty, _, _) = TYPES[(i % TYPES.len() as u64) as usize];
        let mut t = rng.below(month as u64 / 10) as i64;
        let mk = |n: usize, t: i64, kind| UsageEvent {
            key: format!("{id}:{n}"),
            instance_id: id.clone(),
            account_id: format!("acct-{}", i % 1000),
            instance_type: ty.to_string(),
            disk_category: "cloud_essd".into(),
            disk_gib: 40,
            zone_id: "cn-local-a".into(),
            charge: if i % 10 == 0 { Charge::Spot } else { Charge::PayAsYouGo },
            at_s: t,
            kind,
            seq: n as u64 + 1,
        };
        events.push(mk(0, t, EventKind::Create));
        events.push(mk(1, t, EventKind::Start));
        let n = 98;
        for k in 0..n / 2 {
            t += 1 + rng.below(12_000) as i64;
            let stop = if rng.below(2) == 0 { EventKind::StopCharging } else { EventKind::StopKeepCharging };
            events.push(mk(2 + 2 * k, t, stop));
            t += 1 + rng.below(12_000) as i64;
            events.push(mk(3 + 2 * k, t, EventKind::Start));
        }
        if i % 3 == 0 {
            events.push(mk(2 + n, t + 60, EventKind::Release));
        }
    }
    let generated = t0.elapsed();
    let book = PriceBook::from_toml(BOOK).expect("valid");
    let prices = book.region("cn-local").expect("region");
    let size = |t: &str| {
        TYPES.iter().find(|x| x.0 == t).map(|(id, v, g)| TypeSize {
            family: id.rsplit_once('.').map(|x| x.0.to_string()).unwrap_or_default(),
            vcpus: *v,
            memory_mib: g * 1024,
            gpus: 0,
        })
    };
    let t1 = Instant::now();
    let iv = intervals(&events, month);
    let derived = t1.elapsed();
    let t2 = Instant::now();
    // A market that moves every five minutes all month (8,640 points), so spot rating is real work.
    let points: Vec<_> = (0..month / 300)
        .map(|k| feiyun_domain::usage::SpotMarketPoint {
            zone_id: "cn-local-a".into(),
            at_s: k * 300,
            percent: 10 + (k as u32 * 7) % 91,
        })
        .collect();
    let market = Market::from_points(&points);
    let bills = bill(&iv, prices, &size, &market).expect("rates");
    let rated = t2.elapsed();
    let total: i128 = bills.values().map(|(_, m)| m.settle_cents()).sum();
    println!(
        "events={} instances={} intervals={} bill_lines={} generate={:.2}s derive_intervals={:.2}s rate_and_bill={:.2}s total_cents={} peak_rss={} MiB",
        events.len(),
        instances,
        iv.len(),
        bills.len(),
        generated.as_secs_f64(),
        derived.as_secs_f64(),
        rated.as_secs_f64(),
        total,
        peak_rss_kib() / 1024
    );
}
