//! Public traffic, priced with the price book's bandwidth tiers: the bytes an instance sent out
//! in a clock hour are that hour's average bandwidth (bytes × 8 / 3600 s), charged at
//! `bandwidth_first_5_mbps_hour` per Mbit/s up to 5 Mbit/s and `bandwidth_above_5_mbps_hour`
//! above. One Mbit/s for an hour is 450 MB. Inbound traffic is free, as on Alibaba Cloud.
//!
//! Exact: an hour's charge is a whole number of bytes × 8 × a rate in micro-units, over 10⁶;
//! the sum over every hour is divided once, rounded half up to 1/3600 of a micro-unit (money's
//! unit), so the order of the log and replays change nothing.

use std::collections::{BTreeMap, HashSet};

pub use feiyun_domain::usage::TrafficUsage;

use crate::money::Money;
use crate::prices::RegionPrices;

/// Bytes that are 5 Mbit/s for an hour.
pub const FIVE_MBPS_HOUR_BYTES: u128 = 5 * 1_000_000 / 8 * 3600;

/// Outbound bytes per (instance, hour starting at), replays (same key) counted once.
pub fn hourly_out(usage: &[TrafficUsage]) -> BTreeMap<(String, i64), u128> {
    let mut seen = HashSet::new();
    let mut out: BTreeMap<(String, i64), u128> = BTreeMap::new();
    for u in usage {
        if !seen.insert(u.key.as_str()) {
            continue;
        }
        let hour = u.at_s - u.at_s.rem_euclid(3600);
        *out.entry((u.instance_id.clone(), hour)).or_default() += u.out_bytes as u128;
    }
    out
}

/// What the traffic of a log costs.
pub fn charge(usage: &[TrafficUsage], prices: &RegionPrices) -> Money {
    let (first, above) = (prices.bandwidth_first_5.max(0) as u128, prices.bandwidth_above_5.max(0) as u128);
    let numerator: u128 = hourly_out(usage)
        .values()
        .map(|b| {
            let low = (*b).min(FIVE_MBPS_HOUR_BYTES);
            let high = b.saturating_sub(FIVE_MBPS_HOUR_BYTES);
            8 * (low * first + high * above)
        })
        .sum();
    Money(((numerator + 500_000) / 1_000_000) as i128)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prices::PriceBook;

    fn u(key: &str, instance: &str, at_s: i64, out: u64) -> TrafficUsage {
        TrafficUsage {
            key: key.into(),
            instance_id: instance.into(),
            account_id: "a".into(),
            at_s,
            in_bytes: 999,
            out_bytes: out,
        }
    }

    fn prices() -> RegionPrices {
        PriceBook::from_toml(crate::prices::tests::BOOK).expect("book").region("r1").expect("region").clone()
    }

    #[test]
    fn an_hour_at_one_mbps_costs_the_first_tier_rate() {
        let p = prices();
        // 450 MB in one hour = 1 Mbit/s on average.
        let m = charge(&[u("k1", "i-1", 3600, 450_000_000)], &p);
        assert_eq!(m, Money::per_second(p.bandwidth_first_5, 3600));
        // Split over two readings of the same hour: the same.
        let m2 = charge(&[u("k1", "i-1", 3600, 200_000_000), u("k2", "i-1", 7199, 250_000_000)], &p);
        assert_eq!(m2, m);
        // A replayed reading counts once.
        let m3 = charge(&[u("k1", "i-1", 3600, 450_000_000), u("k1", "i-1", 3600, 450_000_000)], &p);
        assert_eq!(m3, m);
    }

    #[test]
    fn above_five_mbps_in_an_hour_the_second_tier_applies() {
        let p = prices();
        // 7 Mbit/s for an hour.
        let m = charge(&[u("k", "i-1", 0, 7 * 450_000_000)], &p);
        assert_eq!(m, Money::from_micros(p.bandwidth_hour(7)));
        // The same bytes over two hours are 3.5 Mbit/s each: all first tier.
        let two = charge(&[u("a", "i-1", 0, 7 * 225_000_000), u("b", "i-1", 3600, 7 * 225_000_000)], &p);
        assert_eq!(two, Money::per_second(p.bandwidth_first_5 * 7, 3600));
        assert!(two < m);
    }
}
