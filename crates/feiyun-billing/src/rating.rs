//! Rating: intervals × prices = charges, exact to 1/3600 of a micro-unit.

use std::collections::{BTreeMap, HashMap};

use feiyun_domain::usage::{Charge, SpotMarketPoint};

use crate::metering::{Interval, Item};
use crate::money::Money;
use crate::prices::{RegionPrices, TypeSize};

/// Spot market history per zone: from each point on, spot compute costs `percent` of
/// pay-as-you-go. Before a zone's first point, and in a zone with no history, the spot price is
/// the pay-as-you-go price (never a free ride). Of several points of a zone at the same second,
/// the last one given is in force (as the store keeps the last one recorded).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Market {
    zones: HashMap<String, Vec<(i64, u32)>>,
}

impl Market {
    pub fn from_points(points: &[SpotMarketPoint]) -> Market {
        let mut zones: HashMap<String, Vec<(i64, u32)>> = HashMap::new();
        for p in points {
            zones.entry(p.zone_id.clone()).or_default().push((p.at_s, p.percent.min(100)));
        }
        for v in zones.values_mut() {
            // Stable: points of one second stay in the order given, and the last one wins.
            v.sort_by_key(|p| p.0);
            v.reverse();
            v.dedup_by_key(|p| p.0);
            v.reverse();
        }
        Market { zones }
    }

    /// The percentage in force in `zone` at second `t`.
    pub fn percent_at(&self, zone: &str, t: i64) -> u32 {
        let Some(v) = self.zones.get(zone) else { return 100 };
        match v.partition_point(|p| p.0 <= t) {
            0 => 100,
            n => v[n - 1].1,
        }
    }

    /// [start, end) cut where the zone's price changes, with the percentage of each piece.
    pub fn pieces(&self, zone: &str, start: i64, end: i64) -> Vec<(i64, i64, u32)> {
        let mut out = Vec::new();
        let mut s = start;
        let points = self.zones.get(zone).map(Vec::as_slice).unwrap_or(&[]);
        let mut k = points.partition_point(|p| p.0 <= start);
        while s < end {
            let next = points.get(k).map(|p| p.0.min(end)).unwrap_or(end);
            out.push((s, next, self.percent_at(zone, s)));
            s = next;
            k += 1;
        }
        out
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RatingError {
    #[error("Instance type {0} has no size in the catalog")]
    UnknownType(String),
    #[error("Disk category {0} has no price")]
    UnpricedDisk(String),
}

/// The charge of one interval.
pub fn charge(
    i: &Interval,
    prices: &RegionPrices,
    size: &dyn Fn(&str) -> Option<TypeSize>,
    market: &Market,
) -> Result<Money, RatingError> {
    if i.charge == Charge::Subscription {
        // Paid up front with the order (instance and its system disk).
        return Ok(Money::ZERO);
    }
    let hourly = match i.item {
        Item::Compute => {
            let t = size(&i.instance_type).ok_or_else(|| RatingError::UnknownType(i.instance_type.clone()))?;
            prices.instance_hour(&t)
        }
        Item::Disk | Item::DataDisk => prices
            .disk_hour(&i.disk_category, i.disk_gib)
            .ok_or_else(|| RatingError::UnpricedDisk(i.disk_category.clone()))?,
        Item::Snapshot => prices.snapshot_hour(i.disk_gib),
        // Traffic is rated by `traffic::charge` from its bytes; no interval carries it.
        Item::Traffic => 0,
    };
    if i.charge == Charge::Spot && i.item == Item::Compute {
        let mut m = Money::ZERO;
        for (s, e, pct) in market.pieces(&i.zone_id, i.start_s, i.end_s) {
            m = m.plus(Money::per_second(RegionPrices::at_percent(hourly, pct), (e - s) as i128));
        }
        return Ok(m);
    }
    Ok(Money::per_second(hourly, i.seconds() as i128))
}

/// Billed seconds and amount per (account, instance, item).
pub type Bill = BTreeMap<(String, String, Item), (i64, Money)>;

/// Totals per (account, instance, item) over a set of intervals.
pub fn bill(
    intervals: &[Interval],
    prices: &RegionPrices,
    size: &dyn Fn(&str) -> Option<TypeSize>,
    market: &Market,
) -> Result<Bill, RatingError> {
    let mut out = Bill::new();
    for i in intervals {
        let m = charge(i, prices, size, market)?;
        let e = out.entry((i.account_id.clone(), i.instance_id.clone(), i.item)).or_insert((0, Money::ZERO));
        e.0 += i.seconds();
        e.1 = e.1.plus(m);
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::metering::{intervals, EventKind, UsageEvent};
    use crate::prices::PriceBook;
    use proptest::prelude::*;

    use crate::prices::tests::BOOK;

    /// The one type the hand-computed tests price: ecs.g7.large, 2 vCPUs, 8 GiB.
    pub(crate) fn size(t: &str) -> Option<TypeSize> {
        (t == "ecs.g7.large").then(|| TypeSize { family: "ecs.g7".into(), vcpus: 2, memory_mib: 8192, gpus: 0 })
    }

    /// A pay-as-you-go event of instance i-1 (account a, g7.large, 40 GiB ESSD, zone z), not yet
    /// numbered (see [`numbered`]).
    pub(crate) fn ev(key: &str, at: i64, kind: EventKind) -> UsageEvent {
        UsageEvent {
            key: key.into(),
            instance_id: "i-1".into(),
            account_id: "a".into(),
            instance_type: "ecs.g7.large".into(),
            disk_category: "cloud_essd".into(),
            disk_gib: 40,
            zone_id: "z".into(),
            charge: Charge::PayAsYouGo,
            at_s: at,
            kind,
            seq: 0,
        }
    }

    /// A log numbered in the order given, as the control plane numbers an instance's transitions.
    pub(crate) fn numbered(log: Vec<UsageEvent>) -> Vec<UsageEvent> {
        log.into_iter().zip(1..).map(|(e, seq)| UsageEvent { seq, ..e }).collect()
    }

    fn totals(events: &[UsageEvent], until: i64) -> (i128, i128, i64, i64) {
        let book = PriceBook::from_toml(BOOK).expect("valid");
        let p = book.region("r1").expect("region");
        let b = bill(&intervals(events, until), p, &size, &Market::default()).expect("rates");
        let get = |item| b.get(&("a".to_string(), "i-1".to_string(), item)).copied().unwrap_or((0, Money::ZERO));
        let (cs, cm) = get(Item::Compute);
        let (ds, dm) = get(Item::Disk);
        (cm.settle_cents(), dm.settle_cents(), cs, ds)
    }

    /// By hand: g7.large costs 0.5296/h, 40 GiB of ESSD 0.04/h.
    /// Run 2 h, stop 1 h, start, run 1 h, release: compute 3 h (KeepCharging: 4 h), disk 4 h.
    #[test]
    fn stop_and_start_in_both_modes() {
        let run = |mode| {
            numbered(vec![
                ev("c", 0, EventKind::Create),
                ev("s1", 0, EventKind::Start),
                ev("p", 7200, mode),
                ev("s2", 10800, EventKind::Start),
                ev("r", 14400, EventKind::Release),
            ])
        };
        // StopCharging: compute 3 h × 0.5296 = 1.5888 → 1.59; disk 4 h × 0.04 = 0.16.
        assert_eq!(totals(&run(EventKind::StopCharging), 99_999), (159, 16, 10800, 14400));
        // KeepCharging: compute 4 h × 0.5296 = 2.1184 → 2.12.
        assert_eq!(totals(&run(EventKind::StopKeepCharging), 99_999), (212, 16, 14400, 14400));
    }

    /// One second of g7.large is 0.000147…: rounds to 0.00 on its own; 34 s = 0.0050 → 0.01.
    #[test]
    fn rounding_edges() {
        let base = numbered(vec![ev("c", 0, EventKind::Create), ev("s", 0, EventKind::Start)]);
        let with_release = |t| {
            let mut v = base.to_vec();
            v.push(ev("r", t, EventKind::Release));
            numbered(v)
        };
        assert_eq!(totals(&with_release(1), 10).0, 0);
        assert_eq!(totals(&with_release(33), 100).0, 0); // 0.0048551 → 0.00
        assert_eq!(totals(&with_release(34), 100).0, 1); // 0.0050018 → 0.01
                                                         // Still running: charged up to `until`.
        assert_eq!(totals(&base, 3600).0, 53);
    }

    /// Spot by hand: g7.large 0.5296/h; the zone is at 100% (no history) until t = 1800, then 25%
    /// (0.1324/h) until 5400, then 50% (0.2648/h). Running 0..7200: 0.5296/2 + 0.1324 + 0.2648/2 =
    /// 0.2648 + 0.1324 + 0.1324 = 0.5296. Subscription usage is charged nothing per second (paid with the order).
    #[test]
    fn spot_follows_the_market_and_subscriptions_are_prepaid() {
        let book = PriceBook::from_toml(BOOK).expect("valid");
        let p = book.region("r1").expect("region");
        let market = Market::from_points(&[
            SpotMarketPoint { zone_id: "z".into(), at_s: 5400, percent: 50 },
            SpotMarketPoint { zone_id: "z".into(), at_s: 1800, percent: 25 },
            SpotMarketPoint { zone_id: "other".into(), at_s: 0, percent: 10 },
        ]);
        let run = |charge| {
            let log: Vec<UsageEvent> = numbered(vec![ev("c", 0, EventKind::Create), ev("s", 0, EventKind::Start)])
                .into_iter()
                .map(|e| UsageEvent { charge, ..e })
                .collect();
            let b = bill(&intervals(&log, 7200), p, &size, &market).expect("rates");
            let get = |item| b.get(&("a".to_string(), "i-1".to_string(), item)).map(|x| x.1).unwrap_or(Money::ZERO);
            (get(Item::Compute), get(Item::Disk))
        };
        let (compute, disk) = run(Charge::Spot);
        assert_eq!(compute, Money::from_micros(529_600));
        assert_eq!(disk, Money::from_micros(80_000), "disks of spot instances pay the list price: 2 h × 0.04");
        assert_eq!(run(Charge::Subscription), (Money::ZERO, Money::ZERO));
        assert_eq!(run(Charge::PayAsYouGo).0, Money::from_micros(1_059_200));
        assert_eq!(market.percent_at("nowhere", 10), 100);
        // Repriced twice within a second: the later price is in force, whatever its value.
        let p = |percent| SpotMarketPoint { zone_id: "z".into(), at_s: 5, percent };
        assert_eq!(Market::from_points(&[p(80), p(20)]).percent_at("z", 5), 20);
        assert_eq!(Market::from_points(&[p(20), p(80)]).percent_at("z", 5), 80);
        assert_eq!(market.percent_at("z", 1799), 100);
        assert_eq!(market.percent_at("z", 1800), 25);
    }

    /// A subscription converted to pay-as-you-go at 3600 and released at 7200: the first hour was
    /// prepaid, the second is charged 0.5296 (compute) + 0.04 (40 GiB disk).
    #[test]
    fn conversion_changes_the_charge_from_then_on() {
        let sub = |e: UsageEvent| UsageEvent { charge: Charge::Subscription, ..e };
        let log = numbered(vec![
            sub(ev("c", 0, EventKind::Create)),
            sub(ev("s", 0, EventKind::Start)),
            ev("v", 3600, EventKind::Convert),
            ev("r", 7200, EventKind::Release),
        ]);
        assert_eq!(totals(&log, 99_999), (53, 4, 7200, 7200));
        let iv = intervals(&log, 99_999);
        assert_eq!(iv.iter().filter(|i| i.charge == Charge::Subscription).map(|i| i.seconds()).sum::<i64>(), 7200);
    }

    #[test]
    fn replayed_events_change_nothing() {
        let log = numbered(vec![
            ev("c", 0, EventKind::Create),
            ev("s1", 0, EventKind::Start),
            ev("p", 5000, EventKind::StopCharging),
            ev("r", 9000, EventKind::Release),
        ]);
        let mut twice = log.clone();
        twice.extend(log.clone());
        assert_eq!(totals(&log, 20000), totals(&twice, 20000));
        // Nothing charges after release, even with a stray event.
        let mut late = log.clone();
        late.push(ev("s9", 9500, EventKind::Start));
        assert_eq!(totals(&log, 20000), totals(&numbered(late), 20000));
    }

    #[test]
    fn unknown_types_and_disks_are_errors_not_free() {
        let book = PriceBook::from_toml(BOOK).expect("valid");
        let p = book.region("r1").expect("region");
        let mut e = ev("s", 0, EventKind::Start);
        e.instance_type = "ecs.zz".into();
        assert_eq!(
            bill(&intervals(&[e], 10), p, &size, &Market::default()).err(),
            Some(RatingError::UnknownType("ecs.zz".into()))
        );
    }

    proptest! {
        /// The sum over any split of a usage interval equals the whole, exactly.
        #[test]
        fn splits_sum_to_the_whole(len in 1i64..10_000_000, cuts in prop::collection::vec(0i64..10_000_000, 0..20), spot: bool) {
            let book = PriceBook::from_toml(BOOK).expect("valid");
            let p = book.region("r1").expect("region");
            let whole = Interval {
                account_id: "a".into(), instance_id: "i".into(), item: Item::Compute,
                instance_type: "ecs.g7.large".into(), disk_category: String::new(), disk_gib: 0,
                zone_id: "z".into(), charge: if spot { Charge::Spot } else { Charge::PayAsYouGo },
                start_s: 0, end_s: len,
            };
            let market = Market::from_points(&[
                SpotMarketPoint { zone_id: "z".into(), at_s: 1000, percent: 17 },
                SpotMarketPoint { zone_id: "z".into(), at_s: 900_000, percent: 64 },
            ]);
            let mut points: Vec<i64> = cuts.into_iter().map(|c| c % len).collect();
            points.push(0);
            points.push(len);
            points.sort_unstable();
            points.dedup();
            let mut sum = Money::ZERO;
            for w in points.windows(2) {
                let piece = Interval { start_s: w[0], end_s: w[1], ..whole.clone() };
                sum = sum.plus(charge(&piece, p, &size, &market).expect("rates"));
            }
            prop_assert_eq!(sum, charge(&whole, p, &size, &market).expect("rates"));
        }

        /// Replaying the event log twice, in any order, gives the same bill.
        #[test]
        fn replaying_the_log_gives_the_same_bill(times in prop::collection::vec(0i64..100_000, 1..30), seed in 0u64..1000) {
            let kinds = [EventKind::Start, EventKind::StopCharging, EventKind::StopKeepCharging, EventKind::Start];
            let mut times = times;
            times.sort_unstable();
            let log: Vec<UsageEvent> = numbered(times.iter().enumerate()
                .map(|(n, t)| ev(&format!("k{n}"), *t, kinds[(n as u64 + seed) as usize % kinds.len()]))
                .collect());
            let mut shuffled: Vec<UsageEvent> = log.iter().rev().cloned().collect();
            shuffled.extend(log.iter().cloned());
            prop_assert_eq!(totals(&log, 200_000), totals(&shuffled, 200_000));
        }
    }
}
