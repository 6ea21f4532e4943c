//! Exact decimal ↔ fixed-point conversion (no floats, so no float noise in files).
//!
//! `parse_scaled("1.75", 1024)` is 1792 (GiB → MiB); `parse_scaled("0.5", 1000)` is 500
//! (vCPUs → milli-CPUs). `format_scaled` is the inverse for units whose fractions terminate in
//! decimal (1000 and 1024 do), so writing and reading again gives the same integer.

/// Most fractional digits accepted; more than enough for GiB with MiB precision (10 digits).
const MAX_FRACTION_DIGITS: u32 = 18;

/// `round(text × unit)`, halves rounded up. Accepts `12`, `12.5`, `.5`, `12.`; rejects signs,
/// exponents, empty text and values that do not fit in a `u64`.
pub(crate) fn parse_scaled(text: &str, unit: u64) -> Result<u64, String> {
    let text = text.trim();
    let (int_part, frac_part) = text.split_once('.').unwrap_or((text, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (int_part.is_empty() && frac_part.is_empty()) || !all_digits(int_part) || !all_digits(frac_part) {
        return Err(format!("{text:?} is not a non-negative decimal number"));
    }
    let frac_digits = u32::try_from(frac_part.len()).unwrap_or(u32::MAX);
    if frac_digits > MAX_FRACTION_DIGITS {
        return Err(format!("{text:?} has more than {MAX_FRACTION_DIGITS} decimal places"));
    }
    let too_large = || format!("{text:?} is too large");
    let int: u128 = if int_part.is_empty() { 0 } else { int_part.parse().map_err(|_| too_large())? };
    let frac: u128 = if frac_part.is_empty() { 0 } else { frac_part.parse().map_err(|_| too_large())? };
    let denominator = 10u128.pow(frac_digits);
    let numerator = int
        .checked_mul(denominator)
        .and_then(|n| n.checked_add(frac))
        .and_then(|n| n.checked_mul(u128::from(unit)))
        .and_then(|n| n.checked_add(denominator / 2))
        .ok_or_else(too_large)?;
    u64::try_from(numerator / denominator).map_err(|_| too_large())
}

/// `value / unit` as the shortest exact decimal (`1792, 1024` → `1.75`; `500, 1000` → `0.5`).
pub(crate) fn format_scaled(value: u64, unit: u64) -> String {
    let unit = unit.max(1);
    let mut out = (value / unit).to_string();
    let mut rem = value % unit;
    if rem != 0 {
        out.push('.');
        // 1/1024 needs 10 digits; stop at 20 for units that never terminate.
        for _ in 0..20 {
            if rem == 0 {
                break;
            }
            let scaled = u128::from(rem) * 10;
            let digit = scaled / u128::from(unit);
            out.push(char::from(b'0' + u8::try_from(digit).unwrap_or(0)));
            rem = u64::try_from(scaled % u128::from(unit)).unwrap_or(0);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exactly() {
        assert_eq!(parse_scaled("0.5", 1000), Ok(500));
        assert_eq!(parse_scaled("1.75", 1024), Ok(1792));
        assert_eq!(parse_scaled("0.46", 1000), Ok(460));
        assert_eq!(parse_scaled("14.0", 1024), Ok(14336));
        assert_eq!(parse_scaled("32", 1000), Ok(32000));
        assert_eq!(parse_scaled(".25", 1000), Ok(250));
        assert_eq!(parse_scaled("3.", 1000), Ok(3000));
        assert_eq!(parse_scaled(" 2 ", 1000), Ok(2000));
    }

    #[test]
    fn rounds_half_up_to_the_unit() {
        assert_eq!(parse_scaled("0.0005", 1000), Ok(1));
        assert_eq!(parse_scaled("0.0004999", 1000), Ok(0));
        // 0.001 GiB = 1.024 MiB → 1 MiB
        assert_eq!(parse_scaled("0.001", 1024), Ok(1));
    }

    #[test]
    fn rejects_what_is_not_a_plain_decimal() {
        for bad in ["", ".", "-1", "+1", "1e3", "1.2.3", "abc", "1,5", "nan"] {
            assert!(parse_scaled(bad, 1000).is_err(), "{bad:?}");
        }
        assert!(parse_scaled("99999999999999999999", 1000).is_err());
        assert!(parse_scaled("1.0000000000000000000", 1000).is_err());
    }

    #[test]
    fn formats_shortest_exact() {
        assert_eq!(format_scaled(500, 1000), "0.5");
        assert_eq!(format_scaled(1792, 1024), "1.75");
        assert_eq!(format_scaled(15258, 1024), "14.900390625");
        assert_eq!(format_scaled(32000, 1000), "32");
        assert_eq!(format_scaled(0, 1000), "0");
        assert_eq!(format_scaled(1, 1024), "0.0009765625");
    }

    #[test]
    fn format_then_parse_is_identity() {
        for unit in [1000u64, 1024] {
            for v in (0..5000u64).chain([u64::MAX / 2048, 123_456_789]) {
                assert_eq!(parse_scaled(&format_scaled(v, unit), unit), Ok(v), "{v} / {unit}");
            }
        }
    }
}
