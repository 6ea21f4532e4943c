//! Renting the workload on Feiyun for one year, three ways: pay-as-you-go, subscription, and the
//! cheapest mix of the two, from each instance type's concurrency curve.
//!
//! A period of `P` milliseconds repeats all year (8,760 hours). In year `y` every concurrency level
//! `c` of the curve becomes `ceil(c × (1 + growth)^(y−1))`. Then, per instance type at hourly
//! price `h`:
//!
//! - pay-as-you-go = `h × S × 8760 / P`, where `S` is the instance-milliseconds of the period;
//! - subscription = the peak level held all year: `peak × h × 12 × hours_per_month × (1 − d)`;
//! - mix: level `k` (the k-th instance running at once) is on subscription when it is in use
//!   more than `12 × hours_per_month × (1 − d)` hours a year (there its pay-as-you-go cost would be
//!   higher), else pay-as-you-go. Levels in use longer are lower, so the subscribed levels are
//!   `1..=K` and the rest, `S_K = Σ time × max(0, level − K)`, is paid by the second.

use feiyun_billing::prices::RegionPrices;
use serde::Serialize;

use crate::calc::{cents, div_round, product, Amount, MICRO};
use crate::terms::SubscriptionTerms;
use crate::workload::Usage;
use crate::TcoError;

/// Hours in a year (365 days).
pub const HOURS_PER_YEAR: i128 = 8760;

/// The workload multiplier of a year, `(1 + growth)^(year − 1)`, as an exact fraction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Growth {
    pub num: i128,
    pub den: i128,
}

impl Growth {
    pub fn of(growth_micros: i128, year: u32) -> Growth {
        let k = year.saturating_sub(1);
        Growth { num: (MICRO + growth_micros).pow(k), den: MICRO.pow(k) }
    }

    /// `ceil(n × (1 + growth)^(year − 1))`: instances are whole.
    pub fn scale(&self, n: u64) -> Result<u64, TcoError> {
        let v = i128::from(n).checked_mul(self.num).ok_or(TcoError::TooLarge)?;
        u64::try_from((v + self.den - 1) / self.den).map_err(|_| TcoError::TooLarge)
    }
}

/// One instance type in one year.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TypeYear {
    pub instance_type: String,
    /// Most instances running at once.
    pub peak: u64,
    /// Instance-hours in the year, to 0.01 hour.
    pub instance_hours: String,
    /// Levels the mix holds on subscription (`K`).
    pub subscribed: u64,
    pub payg: Amount,
    pub subscription: Amount,
    pub mix_subscription: Amount,
    pub mix_payg: Amount,
}

/// Prices one type for one year.
pub fn type_year(u: &Usage, period_ms: u64, g: Growth, terms: &SubscriptionTerms) -> Result<TypeYear, TcoError> {
    let mut levels: Vec<(u64, u64)> =
        u.ms_at.iter().map(|(c, s)| Ok((g.scale(*c)?, *s))).collect::<Result<_, TcoError>>()?;
    levels.sort_unstable_by(|a, b| b.cmp(a));
    let peak = levels.first().map_or(0, |l| l.0);
    let inst_s: i128 = levels.iter().map(|(c, s)| i128::from(*c) * i128::from(*s)).sum();
    let p = i128::from(period_ms);

    // K: the highest level whose time in use (at it or above) exceeds the threshold:
    // time × 8760 / P hours > year_hours  ⇔  time × 8760 × 10^6 > year_hours_micros × P.
    let threshold = product(&[terms.year_hours_micros(), p])?;
    let mut subscribed = 0u64;
    let mut above = 0i128;
    for &(c, s) in &levels {
        above += i128::from(s);
        if product(&[above, HOURS_PER_YEAR, MICRO])? > threshold {
            subscribed = c;
            break;
        }
    }
    let mix_payg_s: i128 = levels.iter().map(|(c, s)| i128::from(c.saturating_sub(subscribed)) * i128::from(*s)).sum();

    Ok(TypeYear {
        instance_type: u.instance_type.clone(),
        peak,
        instance_hours: feiyun_billing::money::format_cents(div_round(product(&[inst_s, HOURS_PER_YEAR, 100])?, p)),
        subscribed,
        payg: cents(&[u.hourly, inst_s, HOURS_PER_YEAR], p)?,
        subscription: terms.year_price(peak, u.hourly)?,
        mix_subscription: terms.year_price(subscribed, u.hourly)?,
        mix_payg: cents(&[u.hourly, mix_payg_s, HOURS_PER_YEAR], p)?,
    })
}

/// What renting costs beside the instances, the same in all three ways.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct RentExtras {
    /// Pay-by-bandwidth from the price book, all year.
    pub bandwidth: Amount,
    /// Cloud disks from the price book, all year.
    pub disk: Amount,
    pub staff: Amount,
    /// Year 1 only.
    pub migration: Amount,
}

impl RentExtras {
    /// Paid as the year goes.
    pub fn spread(&self) -> Amount {
        self.bandwidth + self.disk + self.staff
    }
}

/// Extras of one year: bandwidth `bandwidth_hour(mbps) × 8760`, disk `disk_hour(category, gib) ×
/// 8760`, staff `fte × cost_per_fte`, and the migration in year 1.
pub fn extras(plan: &crate::plan::Plan, prices: &RegionPrices, year: u32) -> Result<RentExtras, TcoError> {
    let r = &plan.rent;
    let bandwidth = cents(&[prices.bandwidth_hour(plan.rent_bandwidth_mbps()), HOURS_PER_YEAR], 1)?;
    let disk = match &r.disk {
        Some(d) => {
            let hourly = prices.disk_hour(&d.category, d.gib).ok_or_else(|| {
                TcoError::invalid("rent.disk.category", format!("the price book has no disk category {:?}", d.category))
            })?;
            cents(&[hourly, HOURS_PER_YEAR], 1)?
        }
        None => Amount::ZERO,
    };
    let cost_per_fte = plan.own.staff.as_ref().map_or(0, |s| s.cost_per_fte.0);
    let staff = cents(&[r.staff_fte.0, cost_per_fte], MICRO)?;
    let migration = if year == 1 { cents(&[r.migration.0], 1)? } else { Amount::ZERO };
    Ok(RentExtras { bandwidth, disk, staff, migration })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn usage(ms_at: &[(u64, u64)]) -> Usage {
        Usage {
            instance_type: "ecs.g7.large".into(),
            hourly: 529_600,
            vcpus: 2,
            memory_mib: 8192,
            gpus: 0,
            ms_at: ms_at.iter().copied().collect::<BTreeMap<_, _>>(),
        }
    }

    #[test]
    fn growth_rounds_instances_up() {
        let g = |rate: i128, year: u32, n: u64| Growth::of(rate, year).scale(n).expect("fits");
        let table: &[(i128, u32, u64, u64)] = &[
            (100_000, 1, 14, 14),  // year 1 is the plan itself
            (100_000, 2, 14, 16),  // 15.4 → 16
            (100_000, 3, 14, 17),  // 16.94 → 17
            (100_000, 2, 10, 11),  // 11 exactly
            (100_000, 3, 10, 13),  // 12.1 → 13
            (0, 5, 7, 7),          // no growth
            (-500_000, 2, 7, 4),   // 3.5 → 4
            (1_000_000, 5, 3, 48), // doubling each year: 3 × 16
        ];
        for &(rate, year, n, want) in table {
            assert_eq!(g(rate, year, n), want, "{n} at {rate} in year {year}");
        }
    }

    /// Hand-computed at 0.5296 an hour, 730 hours a month, 15 % off a year (3,943.4016 a year;
    /// a level pays off on subscription above 7,446 hours a year).
    #[test]
    fn three_ways_by_hand() {
        let terms = SubscriptionTerms::default();
        let one = Growth::of(0, 1);
        // 10 all day: 87,600 instance-hours; PAYG 46,392.96; subscription 39,434.02; the mix
        // subscribes all ten levels (8,760 h > 7,446 h).
        let t = type_year(&usage(&[(10, 86_400)]), 86_400, one, &terms).expect("prices");
        assert_eq!((t.peak, t.instance_hours.as_str(), t.subscribed), (10, "87600.00", 10),);
        assert_eq!(
            [t.payg, t.subscription, t.mix_subscription, t.mix_payg].map(|a| a.to_string()),
            ["46392.96", "39434.02", "39434.02", "0.00"]
        );
        // 14 for 12 h, 10 for 12 h: levels 11–14 run 4,380 h a year and stay pay-as-you-go.
        // PAYG = 0.5296 × (14 + 10) × 12 × 365 = 55,671.552 → 55,671.55; subscription = 14 × 3,943.4016
        // = 55,207.6224 → 55,207.62; mix = 39,434.02 + 0.5296 × 4 × 4,380 = 9,278.592 → 9,278.59.
        let t = type_year(&usage(&[(14, 43_200), (10, 43_200)]), 86_400, one, &terms).expect("prices");
        assert_eq!((t.peak, t.subscribed, t.instance_hours.as_str()), (14, 10, "105120.00"));
        assert_eq!(
            [t.payg, t.subscription, t.mix_subscription, t.mix_payg].map(|a| a.to_string()),
            ["55671.55", "55207.62", "39434.02", "9278.59"]
        );
        // One instance for 2 hours of a day: 730 h a year, PAYG 386.61 (0.5296 × 730 = 386.608);
        // the mix never subscribes it.
        let t = type_year(&usage(&[(1, 7200)]), 86_400, one, &terms).expect("prices");
        assert_eq!((t.subscribed, t.payg.to_string(), t.mix_payg.to_string()), (0, "386.61".into(), "386.61".into()));
        assert_eq!(t.subscription.to_string(), "3943.40");
    }

    /// The threshold is strict: a level in use exactly 7,446 hours a year stays pay-as-you-go.
    #[test]
    fn a_level_at_the_threshold_stays_pay_as_you_go() {
        let terms = SubscriptionTerms::default();
        // 7,446 h of 8,760 h: in a period of 8,760 s, 7,446 s.
        let t = type_year(&usage(&[(1, 7446)]), 8760, Growth::of(0, 1), &terms).expect("prices");
        assert_eq!(t.subscribed, 0);
        assert_eq!(t.mix_payg, t.payg);
        let t = type_year(&usage(&[(1, 7447)]), 8760, Growth::of(0, 1), &terms).expect("prices");
        assert_eq!(t.subscribed, 1);
    }

    proptest::proptest! {
        /// Level by level the mix takes the cheaper way, so it never costs more than either pure
        /// way (each is rounded to a cent separately, hence one cent of slack).
        #[test]
        fn the_mix_is_never_dearer(
            levels in proptest::collection::btree_map(1u64..500, 1u64..86_400, 1..8),
            hourly in 1i128..50_000_000,
            growth in -500_000i128..2_000_000,
            year in 1u32..=5,
        ) {
            let mut u = usage(&[]);
            u.hourly = hourly;
            u.ms_at = levels;
            let period = u.ms_at.values().sum::<u64>().max(86_400);
            let t = type_year(&u, period, Growth::of(growth, year), &SubscriptionTerms::default()).expect("fits");
            let mix = t.mix_subscription + t.mix_payg;
            proptest::prop_assert!(mix <= t.payg + Amount(crate::calc::CENT), "{t:?}");
            proptest::prop_assert!(mix <= t.subscription + Amount(crate::calc::CENT), "{t:?}");
            proptest::prop_assert!(t.subscribed <= t.peak);
        }
    }
}
