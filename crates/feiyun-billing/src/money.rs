//! Exact money.

use std::fmt;

/// Micro-units (10^-6) of a currency per unit.
pub const MICROS: i128 = 1_000_000;

/// Seconds per hour: the denominator that keeps per-second charges of hourly prices exact.
pub const PER_HOUR: i128 = 3600;

/// An amount of money in 1/3600 of a micro-unit of currency. Sums and per-second products of
/// hourly prices are exact in this unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Money(pub i128);

impl Money {
    pub const ZERO: Money = Money(0);

    /// From a price in micro-units (e.g. an hourly price).
    pub fn from_micros(m: i128) -> Money {
        Money(m * PER_HOUR)
    }

    /// An hourly price charged for `seconds`: exact.
    pub fn per_second(hourly_micros: i128, seconds: i128) -> Money {
        Money(hourly_micros * seconds)
    }

    pub fn plus(self, o: Money) -> Money {
        Money(self.0 + o.0)
    }

    /// Round to whole cents (0.01), half away from zero. This is the only place money rounds.
    pub fn settle_cents(self) -> i128 {
        let unit = PER_HOUR * MICROS / 100; // one cent in our unit
        let q = self.0 / unit;
        let r = self.0 % unit;
        if r.abs() * 2 >= unit {
            q + self.0.signum()
        } else {
            q
        }
    }

    /// Parse a decimal such as `"0.1764"` or `"12"` (at most six decimals) as micro-units.
    pub fn parse_micros(s: &str) -> Option<i128> {
        let s = s.trim();
        let (neg, s) = match s.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, s),
        };
        let (int, frac) = s.split_once('.').unwrap_or((s, ""));
        if int.is_empty()
            || frac.len() > 6
            || !int.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let mut v: i128 = int.parse().ok()?;
        v = v.checked_mul(MICROS)?;
        let mut f: i128 = if frac.is_empty() { 0 } else { frac.parse().ok()? };
        for _ in frac.len()..6 {
            f *= 10;
        }
        let v = v + f;
        Some(if neg { -v } else { v })
    }
}

/// Cents as a decimal string: `1234` → `"12.34"`.
pub fn format_cents(cents: i128) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let c = cents.abs();
    format!("{sign}{}.{:02}", c / 100, c % 100)
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_cents(self.settle_cents()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_decimals_exactly() {
        assert_eq!(Money::parse_micros("0.1764"), Some(176_400));
        assert_eq!(Money::parse_micros("12"), Some(12_000_000));
        assert_eq!(Money::parse_micros("-0.5"), Some(-500_000));
        assert_eq!(Money::parse_micros("0.0000001"), None, "more than six decimals");
        assert_eq!(Money::parse_micros("1e3"), None);
        assert_eq!(Money::parse_micros(".5"), None);
    }

    /// Rounding edges, by hand: one cent is 10,000 micro-units.
    #[test]
    fn settles_half_away_from_zero() {
        let table: &[(i128, i128)] = &[
            (0, 0),
            (4_999, 0),       // 0.004999 → 0.00
            (5_000, 1),       // 0.005    → 0.01
            (14_999, 1),      // 0.014999 → 0.01
            (15_000, 2),      // 0.015    → 0.02
            (-5_000, -1),     // refunds round the same way
            (1_234_567, 123), // 1.234567 → 1.23
        ];
        for (micros, cents) in table {
            assert_eq!(Money::from_micros(*micros).settle_cents(), *cents, "{micros} micro-units");
        }
        assert_eq!(format_cents(123), "1.23");
        assert_eq!(format_cents(-7), "-0.07");
        assert_eq!(Money::from_micros(1_005_000).to_string(), "1.01");
    }

    /// An hourly price of 0.529 for one second is 0.000146944…: exact in our unit, not in cents.
    #[test]
    fn per_second_charges_are_exact() {
        let hourly = Money::parse_micros("0.529").expect("valid");
        let one = Money::per_second(hourly, 1);
        let hour = (0..3600).fold(Money::ZERO, |a, _| a.plus(one));
        assert_eq!(hour, Money::from_micros(hourly));
    }
}
