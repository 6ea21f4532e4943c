//! Subscription terms: how a subscription price derives from the pay-as-you-go hourly price.
//!
//! Read from the region's price book unless the plan gives its own. A month of subscription is
//! `hours_per_month` hours at the hourly price, less the discount of the term; one instance held
//! for a whole year costs the cheaper of twelve monthly terms and one yearly term.

use feiyun_billing::prices;
use serde::{Deserialize, Serialize};

use crate::calc::{cents, Amount, Decimal, MICRO};
use crate::TcoError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SubscriptionTerms {
    /// Hours a month of subscription is priced at (730 = 8760 / 12; some price lists use 720).
    pub hours_per_month: u32,
    /// Discount of a one-month term, as a fraction (0 = none).
    pub month_discount: Decimal,
    /// Discount of a one-year term, as a fraction (0.15 = 15 %).
    pub year_discount: Decimal,
}

impl Default for SubscriptionTerms {
    fn default() -> SubscriptionTerms {
        SubscriptionTerms { hours_per_month: 730, month_discount: Decimal::ZERO, year_discount: Decimal(150_000) }
    }
}

impl SubscriptionTerms {
    /// The terms of a price book: its hours per month, and for one month and for one year the
    /// discount of the longest listed term not longer than that (none listed: no discount).
    /// Terms longer than a year are not used.
    pub fn from_book(book: &prices::SubscriptionTerms) -> SubscriptionTerms {
        let off = |months: u32| Decimal(book.discount_millionths.range(..=months).next_back().map_or(0, |(_, d)| *d));
        SubscriptionTerms { hours_per_month: book.hours_per_month, month_discount: off(1), year_discount: off(12) }
    }

    /// Checks the ranges; `field` prefixes the names in errors.
    pub fn validate(&self, field: &str) -> Result<(), TcoError> {
        if !(1..=744).contains(&self.hours_per_month) {
            return Err(TcoError::invalid(format!("{field}.hours_per_month"), "must be 1 to 744"));
        }
        for (name, d) in [("month_discount", self.month_discount), ("year_discount", self.year_discount)] {
            if d.0 < 0 || d.0 >= MICRO {
                return Err(TcoError::invalid(
                    format!("{field}.{name}"),
                    format!("must be at least 0 and below 1 (got {d})"),
                ));
            }
        }
        Ok(())
    }

    /// The discount that holds an instance for a whole year most cheaply: twelve one-month terms
    /// or one one-year term cost `12 × hours_per_month × hourly × (1 − discount)`, so the larger
    /// discount wins.
    pub fn year_discount_used(&self) -> Decimal {
        self.month_discount.max(self.year_discount)
    }

    /// Subscription hours of a whole year after the discount: `12 × hours_per_month × (1 − d)`,
    /// in micro-hours (exact). A level of concurrency in use for more hours than this a year is
    /// cheaper on subscription.
    pub fn year_hours_micros(&self) -> i128 {
        12 * i128::from(self.hours_per_month) * (MICRO - self.year_discount_used().0)
    }

    /// `instances` held on subscription for a year at `hourly` micro-units an hour, to the cent:
    /// `instances × hourly × 12 × hours_per_month × (1 − d)`.
    pub fn year_price(&self, instances: u64, hourly: i128) -> Result<Amount, TcoError> {
        cents(&[i128::from(instances), hourly, self.year_hours_micros()], MICRO)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ecs.g7.large at 0.5296 an hour: 0.5296 × 730 × 12 × 0.85 = 3,943.4016 a year; ten of them
    /// 39,434.016 → 39,434.02. With 720 hours and no discount: 0.5296 × 8640 = 4,575.744 → 4,575.74.
    #[test]
    fn year_prices_by_hand() {
        let t = SubscriptionTerms::default();
        assert_eq!(t.year_hours_micros(), 7446 * MICRO);
        assert_eq!(t.year_price(1, 529_600).expect("fits").to_string(), "3943.40");
        assert_eq!(t.year_price(10, 529_600).expect("fits").to_string(), "39434.02");
        let flat = SubscriptionTerms { hours_per_month: 720, year_discount: Decimal::ZERO, ..t };
        assert_eq!(flat.year_price(1, 529_600).expect("fits").to_string(), "4575.74");
        // A month term discounted more than the year term is what a year is bought with.
        let months = SubscriptionTerms { month_discount: Decimal(200_000), ..t };
        assert_eq!(months.year_discount_used(), Decimal(200_000));
        assert_eq!(months.year_hours_micros(), 7008 * MICRO);
    }

    /// The shipped book: 730 hours a month, nothing off a month, 15 % off from 12 months (24 and
    /// 36 months are listed too, but a year is what the comparison buys).
    #[test]
    fn terms_from_the_price_book() {
        let book = prices::PriceBook::from_toml(include_str!("../../../catalog/prices.toml")).expect("prices");
        let region = book.region("cn-local").expect("region");
        assert_eq!(SubscriptionTerms::from_book(&region.subscription), SubscriptionTerms::default());
        let odd = prices::SubscriptionTerms {
            hours_per_month: 720,
            discount_millionths: [(1, 20_000), (6, 100_000), (36, 400_000)].into_iter().collect(),
        };
        let t = SubscriptionTerms::from_book(&odd);
        assert_eq!((t.hours_per_month, t.month_discount, t.year_discount), (720, Decimal(20_000), Decimal(100_000)));
    }

    #[test]
    fn rejects_out_of_range_terms() {
        let t = SubscriptionTerms::default();
        assert!(SubscriptionTerms { hours_per_month: 0, ..t }.validate("rent.subscription").is_err());
        let e = SubscriptionTerms { year_discount: Decimal(MICRO), ..t }.validate("rent.subscription");
        assert!(e.expect_err("100 % off").to_string().contains("rent.subscription.year_discount"));
        assert!(SubscriptionTerms { month_discount: Decimal(-1), ..t }.validate("x").is_err());
    }
}
