//! Exact arithmetic for money and rates: integers only, every rounding explicit.
//!
//! Amounts are micro-units (10^-6 of the currency) in an `i128`; rates and other decimals from the
//! plan are micro-units too (`0.15` is 150,000). A formula is evaluated as one exact product of
//! integers divided once, and that division rounds half away from zero — to a cent for every
//! amount in a report, to a micro-unit for a book value, to 18 decimal places for a discount
//! factor. Products are checked: an input too large to compute exactly is an error, not a wrap.

use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Neg, Sub};

use feiyun_billing::money::{format_cents, Money};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::TcoError;

/// Micro-units per unit.
pub const MICRO: i128 = 1_000_000;
/// Micro-units per cent: every amount in a report is a whole number of these.
pub const CENT: i128 = 10_000;
/// Discount factors are fixed-point numbers with 18 decimal places.
pub const FACTOR_ONE: i128 = 1_000_000_000_000_000_000;
/// Largest amount a report holds (10^24 currency units), so that sums of lines cannot overflow.
const MAX_AMOUNT: i128 = 1_000_000_000_000_000_000_000_000 * MICRO;

/// `n / d` rounded half away from zero; `d` must be positive.
pub fn div_round(n: i128, d: i128) -> i128 {
    let (q, r) = (n / d, n % d);
    if r.abs() >= d - r.abs() {
        q + n.signum()
    } else {
        q
    }
}

/// The exact product of `parts`, or an error if it does not fit.
pub fn product(parts: &[i128]) -> Result<i128, TcoError> {
    parts.iter().try_fold(1i128, |acc, p| acc.checked_mul(*p)).ok_or(TcoError::TooLarge)
}

/// `product(parts) / den` rounded half away from zero to a whole cent.
pub fn cents(parts: &[i128], den: i128) -> Result<Amount, TcoError> {
    let den = den.checked_mul(CENT).ok_or(TcoError::TooLarge)?;
    let v = div_round(product(parts)?, den).checked_mul(CENT).ok_or(TcoError::TooLarge)?;
    if v.abs() > MAX_AMOUNT {
        return Err(TcoError::TooLarge);
    }
    Ok(Amount(v))
}

/// `num / den` as a fixed-point factor with 18 decimals (× [`FACTOR_ONE`]), rounded half away
/// from zero. Exact long division, so `num` and `den` may be as large as `i128::MAX / 10`.
pub fn factor(num: i128, den: i128) -> i128 {
    let mut q = num / den;
    let mut r = num % den;
    for _ in 0..18 {
        r *= 10;
        q = q * 10 + r / den;
        r %= den;
    }
    if r >= den - r {
        q + 1
    } else {
        q
    }
}

/// An amount of money in micro-units. Every amount in a report is a whole number of cents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Amount(pub i128);

impl Amount {
    pub const ZERO: Amount = Amount(0);

    /// Whole cents (the amount is already rounded to a cent).
    pub fn cents(self) -> i128 {
        self.0 / CENT
    }

    /// `amount × factor`, the factor from [`factor`], rounded to a cent.
    pub fn times_factor(self, f: i128) -> Result<Amount, TcoError> {
        cents(&[self.0, f], FACTOR_ONE)
    }

    /// With thousands separators, for tables: `1,234,567.89`.
    pub fn grouped(self) -> String {
        let text = format_cents(self.cents());
        let (sign, digits) = match text.strip_prefix('-') {
            Some(rest) => ("-", rest),
            None => ("", text.as_str()),
        };
        let (int, frac) = digits.split_once('.').unwrap_or((digits, "00"));
        let mut out = String::from(sign);
        for (i, c) in int.chars().enumerate() {
            if i > 0 && (int.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        format!("{out}.{frac}")
    }

    /// A float for drawing a chart; never used for arithmetic.
    pub fn to_f64_for_chart(self) -> f64 {
        self.cents() as f64 / 100.0
    }
}

impl Add for Amount {
    type Output = Amount;
    fn add(self, o: Amount) -> Amount {
        Amount(self.0 + o.0)
    }
}

impl AddAssign for Amount {
    fn add_assign(&mut self, o: Amount) {
        self.0 += o.0;
    }
}

impl Sub for Amount {
    type Output = Amount;
    fn sub(self, o: Amount) -> Amount {
        Amount(self.0 - o.0)
    }
}

impl Neg for Amount {
    type Output = Amount;
    fn neg(self) -> Amount {
        Amount(-self.0)
    }
}

impl Sum for Amount {
    fn sum<I: Iterator<Item = Amount>>(iter: I) -> Amount {
        iter.fold(Amount::ZERO, Add::add)
    }
}

/// Settled to cents, e.g. `46392.96` (always two decimals).
impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_cents(div_round(self.0, CENT)))
    }
}

/// A report amount is a decimal string with two places, so that no JSON reader turns it into a float.
impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Micro-units as the shortest exact decimal: `529600` → `0.5296`, `12000000` → `12`.
pub fn format_micros(m: i128) -> String {
    let sign = if m < 0 { "-" } else { "" };
    let a = m.unsigned_abs();
    let (int, frac) = (a / MICRO as u128, a % MICRO as u128);
    if frac == 0 {
        return format!("{sign}{int}");
    }
    let frac = format!("{frac:06}");
    format!("{sign}{int}.{}", frac.trim_end_matches('0'))
}

/// A discount factor with all 18 decimals: `0.925925925925925926`.
pub fn format_factor(f: i128) -> String {
    format!("{}.{:018}", f / FACTOR_ONE, f % FACTOR_ONE)
}

/// A decimal from the plan: a string such as `"0.15"` or `"40000"` (at most six decimal places),
/// or a whole TOML integer; kept as micro-units. TOML floats are refused: they are not exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Decimal(pub i128);

impl Decimal {
    pub const ZERO: Decimal = Decimal(0);
    pub const ONE: Decimal = Decimal(MICRO);

    pub fn parse(s: &str) -> Option<Decimal> {
        Money::parse_micros(s).map(Decimal)
    }

    pub fn micros(self) -> i128 {
        self.0
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_micros(self.0))
    }
}

impl Serialize for Decimal {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Decimal {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Decimal;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a decimal as a string, e.g. \"0.15\"")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Decimal, E> {
                Decimal::parse(s)
                    .ok_or_else(|| E::custom(format!("{s:?} is not a decimal with at most six decimal places")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Decimal, E> {
                i128::from(v).checked_mul(MICRO).map(Decimal).ok_or_else(|| E::custom("number too large"))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Decimal, E> {
                i128::from(v).checked_mul(MICRO).map(Decimal).ok_or_else(|| E::custom("number too large"))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Decimal, E> {
                Err(E::custom(format!("write decimals as strings, e.g. \"{v}\": a float is not exact")))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_half_away_from_zero() {
        let table: &[(i128, i128, i128)] =
            &[(5, 2, 3), (-5, 2, -3), (4, 3, 1), (5, 3, 2), (-4, 3, -1), (7, 7, 1), (0, 9, 0), (14_999, 10_000, 1)];
        for &(n, d, want) in table {
            assert_eq!(div_round(n, d), want, "{n} / {d}");
        }
    }

    #[test]
    fn cents_round_once() {
        // 0.5296 × 8760 × 10 = 46,392.96 exactly.
        assert_eq!(cents(&[529_600, 8760, 10], 1).expect("fits"), Amount(46_392_960_000));
        // 3943.4016 × 10 = 39,434.016 → 39,434.02.
        assert_eq!(cents(&[3_943_401_600, 10], 1).expect("fits").to_string(), "39434.02");
        // -0.005 → -0.01.
        assert_eq!(cents(&[-5_000], 1).expect("fits").to_string(), "-0.01");
        assert!(matches!(cents(&[i128::MAX, 2], 1), Err(TcoError::TooLarge)));
    }

    #[test]
    fn factors_have_18_decimals() {
        // 1 / 1.08 = 25/27 = 0.925925925925925925925… → …926.
        assert_eq!(format_factor(factor(1_000_000, 1_080_000)), "0.925925925925925926");
        assert_eq!(format_factor(factor(1, 1)), "1.000000000000000000");
        assert_eq!(format_factor(factor(1, 3)), "0.333333333333333333");
        assert_eq!(format_factor(factor(2, 3)), "0.666666666666666667");
    }

    #[test]
    fn formats() {
        assert_eq!(format_micros(529_600), "0.5296");
        assert_eq!(format_micros(12_000_000), "12");
        assert_eq!(format_micros(-500_000), "-0.5");
        assert_eq!(Amount(1_234_567_890_000).grouped(), "1,234,567.89");
        assert_eq!(Amount(-1_000_000_000).grouped(), "-1,000.00");
        assert_eq!(Amount(10_000).grouped(), "0.01");
        assert_eq!(Amount(123_450_000).to_string(), "123.45");
    }

    #[derive(Debug, Deserialize)]
    struct One {
        v: Decimal,
    }

    #[test]
    fn decimals_from_toml() {
        let ok: &[(&str, i128)] =
            &[("v = \"0.15\"", 150_000), ("v = 40000", 40_000_000_000), ("v = \"-0.5\"", -500_000)];
        for (text, want) in ok {
            assert_eq!(toml::from_str::<One>(text).expect(text).v, Decimal(*want), "{text}");
        }
        for (text, needle) in [
            ("v = 1.5", "write decimals as strings"),
            ("v = \"1e3\"", "not a decimal"),
            ("v = \"0.1234567\"", "six decimal places"),
            ("v = true", "a decimal as a string"),
        ] {
            let e = toml::from_str::<One>(text).expect_err(text).to_string();
            assert!(e.contains(needle), "{text}: {e}");
        }
    }
}
