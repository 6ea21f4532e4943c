//! The price book: what things cost per hour, by region. Loaded from TOML; every price is a
//! decimal string so no float ever touches money.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::money::{Money, MICROS};

#[derive(Debug, thiserror::Error)]
pub enum PriceError {
    #[error("Price book is not valid TOML: {0}")]
    Parse(String),
    #[error("Price {0:?} is not a decimal with at most six places")]
    Decimal(String),
    #[error("Region {0} has no prices")]
    NoRegion(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    region: Vec<RegionFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegionFile {
    id: String,
    currency: String,
    vcpu_hour: String,
    gib_hour: String,
    gpu_hour: String,
    #[serde(default)]
    family: Vec<FamilyFile>,
    #[serde(default)]
    disk_gib_hour: BTreeMap<String, String>,
    /// Snapshots, per GiB-hour of the space they take (absent: snapshots are not charged).
    #[serde(default)]
    snapshot_gib_hour: Option<String>,
    bandwidth_first_5_mbps_hour: String,
    bandwidth_above_5_mbps_hour: String,
    #[serde(default)]
    subscription: Option<SubscriptionFile>,
    #[serde(default)]
    spot: Option<SpotFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SubscriptionFile {
    hours_per_month: u32,
    /// Months of term → fraction off the list price, e.g. `{ "12" = "0.15" }`.
    discount: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SpotFile {
    /// Spot price in an idle zone, as a fraction of pay-as-you-go.
    floor: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FamilyFile {
    id: String,
    vcpu_hour: Option<String>,
    gib_hour: Option<String>,
    gpu_hour: Option<String>,
}

/// Per-hour rates in micro-units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rates {
    pub vcpu: i128,
    pub gib: i128,
    pub gpu: i128,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RegionPrices {
    pub currency: String,
    pub default: Rates,
    pub families: BTreeMap<String, Rates>,
    pub disk_gib_hour: BTreeMap<String, i128>,
    /// Snapshots per GiB-hour, micro-units.
    pub snapshot_gib_hour: i128,
    pub bandwidth_first_5: i128,
    pub bandwidth_above_5: i128,
    pub subscription: SubscriptionTerms,
    /// Spot price in an idle zone, in percent of pay-as-you-go.
    pub spot_floor_percent: u32,
}

/// How subscriptions are priced: a month is `hours_per_month` hours of the pay-as-you-go price,
/// and a term of at least `m` months gets the discount listed for the largest such `m`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionTerms {
    pub hours_per_month: u32,
    /// Months → fraction off, in millionths (150_000 = 15%).
    pub discount_millionths: BTreeMap<u32, i128>,
}

impl Default for SubscriptionTerms {
    /// 730 hours a month; a year or more 15% off.
    fn default() -> Self {
        SubscriptionTerms { hours_per_month: 730, discount_millionths: BTreeMap::from([(12, 150_000)]) }
    }
}

/// A subscription quote, in micro-units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    pub original: i128,
    pub discount: i128,
    pub trade: i128,
    /// The term (months) whose discount applied and the fraction off in millionths.
    pub rule: Option<(u32, i128)>,
}

/// `a × b / d` rounded half away from zero (amounts here are never negative).
fn mul_div_round(a: i128, b: i128, d: i128) -> i128 {
    (a * b * 2 + d) / (2 * d)
}

/// The size of an instance type, as far as price is concerned.
#[derive(Debug, Clone, PartialEq)]
pub struct TypeSize {
    pub family: String,
    pub vcpus: u32,
    pub memory_mib: u64,
    pub gpus: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PriceBook {
    regions: BTreeMap<String, RegionPrices>,
}

fn dec(s: &str) -> Result<i128, PriceError> {
    Money::parse_micros(s).filter(|v| *v >= 0).ok_or_else(|| PriceError::Decimal(s.to_string()))
}

impl PriceBook {
    pub fn from_toml(text: &str) -> Result<PriceBook, PriceError> {
        let f: File = toml::from_str(text).map_err(|e| PriceError::Parse(e.to_string()))?;
        let mut regions = BTreeMap::new();
        for r in f.region {
            let default = Rates { vcpu: dec(&r.vcpu_hour)?, gib: dec(&r.gib_hour)?, gpu: dec(&r.gpu_hour)? };
            let mut families = BTreeMap::new();
            for fam in r.family {
                let pick = |v: &Option<String>, d: i128| v.as_deref().map(dec).transpose().map(|x| x.unwrap_or(d));
                families.insert(
                    fam.id.clone(),
                    Rates {
                        vcpu: pick(&fam.vcpu_hour, default.vcpu)?,
                        gib: pick(&fam.gib_hour, default.gib)?,
                        gpu: pick(&fam.gpu_hour, default.gpu)?,
                    },
                );
            }
            let mut disks = BTreeMap::new();
            for (k, v) in &r.disk_gib_hour {
                disks.insert(k.clone(), dec(v)?);
            }
            let subscription = match &r.subscription {
                None => SubscriptionTerms::default(),
                Some(sf) => {
                    let mut d = BTreeMap::new();
                    for (months, frac) in &sf.discount {
                        let m: u32 = months
                            .parse()
                            .ok()
                            .filter(|m| *m > 0)
                            .ok_or_else(|| PriceError::Decimal(format!("subscription term {months}")))?;
                        let f = dec(frac)?;
                        if f >= MICROS {
                            return Err(PriceError::Decimal(format!("discount {frac} (must be below 1)")));
                        }
                        d.insert(m, f);
                    }
                    if sf.hours_per_month == 0 {
                        return Err(PriceError::Decimal("hours_per_month 0".into()));
                    }
                    SubscriptionTerms { hours_per_month: sf.hours_per_month, discount_millionths: d }
                }
            };
            let spot_floor_percent = match &r.spot {
                None => 10,
                Some(sp) => {
                    let f = dec(&sp.floor)?;
                    if f > MICROS || f % 10_000 != 0 {
                        return Err(PriceError::Decimal(format!(
                            "spot floor {} (a whole percent, at most 1)",
                            sp.floor
                        )));
                    }
                    (f / 10_000) as u32
                }
            };
            regions.insert(
                r.id,
                RegionPrices {
                    currency: r.currency,
                    default,
                    families,
                    disk_gib_hour: disks,
                    snapshot_gib_hour: r.snapshot_gib_hour.as_deref().map(dec).transpose()?.unwrap_or(0),
                    bandwidth_first_5: dec(&r.bandwidth_first_5_mbps_hour)?,
                    bandwidth_above_5: dec(&r.bandwidth_above_5_mbps_hour)?,
                    subscription,
                    spot_floor_percent,
                },
            );
        }
        Ok(PriceBook { regions })
    }

    pub fn region(&self, id: &str) -> Result<&RegionPrices, PriceError> {
        self.regions.get(id).ok_or_else(|| PriceError::NoRegion(id.to_string()))
    }
}

impl RegionPrices {
    /// Pay-as-you-go price of an instance type per hour, in micro-units: vCPUs, GiB and GPUs at the
    /// family's rates, rounded half up to a whole micro-unit (the one rounding of a list price).
    pub fn instance_hour(&self, t: &TypeSize) -> i128 {
        let r = self.families.get(&t.family).copied().unwrap_or(self.default);
        // Memory in MiB: rate per GiB × MiB / 1024, rounded half up.
        let mem = (r.gib * t.memory_mib as i128 * 2 + 1024) / 2048;
        r.vcpu * t.vcpus as i128 + mem + r.gpu * t.gpus as i128
    }

    /// Disk price per hour for `gib` of a category, in micro-units; unknown categories are free
    /// only if the operator priced none (an error otherwise would lose the charge silently).
    pub fn disk_hour(&self, category: &str, gib: u64) -> Option<i128> {
        self.disk_gib_hour.get(category).map(|p| p * gib as i128)
    }

    /// Snapshot price per hour for `gib` of snapshot space, in micro-units.
    pub fn snapshot_hour(&self, gib: u64) -> i128 {
        self.snapshot_gib_hour * gib as i128
    }

    /// Pay-by-bandwidth per hour: the first 5 Mbit/s at one rate, each Mbit/s above at another.
    pub fn bandwidth_hour(&self, mbps: u32) -> i128 {
        let first = mbps.min(5) as i128;
        let above = mbps.saturating_sub(5) as i128;
        first * self.bandwidth_first_5 + above * self.bandwidth_above_5
    }
}

impl RegionPrices {
    /// The price of `months` of something whose pay-as-you-go price is `hourly` micro-units:
    /// list = hourly × hours per month × months; the discount of the longest listed term not
    /// longer than `months` comes off, rounded half up to a micro-unit.
    pub fn subscription(&self, hourly: i128, months: u32) -> Quote {
        let original = hourly * self.subscription.hours_per_month as i128 * months as i128;
        let rule = self.subscription.discount_millionths.range(..=months).next_back().map(|(m, f)| (*m, *f));
        let discount = rule.map(|(_, f)| mul_div_round(original, f, MICROS)).unwrap_or(0);
        Quote { original, discount, trade: original - discount, rule }
    }

    /// Spot price as a percentage of pay-as-you-go for a zone whose scarcest resource is
    /// `used_permille` / 1000 allocated: `floor + (100 − floor) × u²`, rounded up to a whole
    /// percent, so it rises slowly while the zone is mostly free and reaches the pay-as-you-go
    /// price when it is full. Never above 100.
    pub fn spot_percent(&self, used_permille: u32) -> u32 {
        let u = used_permille.min(1000) as u64;
        let floor = self.spot_floor_percent.min(100) as u64;
        let rise = ((100 - floor) * u * u).div_ceil(1_000_000);
        (floor + rise).min(100) as u32
    }

    /// An hourly price at `percent` of itself, rounded half up to a micro-unit.
    pub fn at_percent(hourly: i128, percent: u32) -> i128 {
        mul_div_round(hourly, percent as i128, 100)
    }
}

/// One currency unit in micro-units, for tests and display.
pub const UNIT: i128 = MICROS;

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The price book the unit tests compute by hand against.
    pub(crate) const BOOK: &str = r#"
[[region]]
id = "r1"
currency = "CNY"
vcpu_hour = "0.1764"
gib_hour = "0.0221"
gpu_hour = "7"
bandwidth_first_5_mbps_hour = "0.063"
bandwidth_above_5_mbps_hour = "0.25"
disk_gib_hour = { cloud_essd = "0.001", local = "0.0005" }
snapshot_gib_hour = "0.0002"

[[region.family]]
id = "ecs.c7"
gib_hour = "0.02"
"#;

    fn t(family: &str, vcpus: u32, gib: u64, gpus: u32) -> TypeSize {
        TypeSize { family: family.into(), vcpus, memory_mib: gib * 1024, gpus }
    }

    /// Hand-computed: g7.large = 2 × 0.1764 + 8 × 0.0221 = 0.5296; c7.large = 2 × 0.1764 + 4 × 0.02 = 0.4328;
    /// gn6i-c4g1.xlarge = 4 × 0.1764 + 15 × 0.0221 + 7 = 8.0371.
    #[test]
    fn instance_prices_by_hand() {
        let b = PriceBook::from_toml(BOOK).expect("valid");
        let r = b.region("r1").expect("region");
        assert_eq!(r.instance_hour(&t("ecs.g7", 2, 8, 0)), 529_600);
        assert_eq!(r.instance_hour(&t("ecs.c7", 2, 4, 0)), 432_800);
        assert_eq!(r.instance_hour(&t("ecs.gn6i", 4, 15, 1)), 8_037_100);
        // 0.5 GiB at 0.0221 = 0.01105.
        assert_eq!(
            r.instance_hour(&TypeSize { family: "ecs.t5".into(), vcpus: 1, memory_mib: 512, gpus: 0 }),
            176_400 + 11_050
        );
    }

    /// The 5 Mbit/s tier boundary: 5 → 5 × 0.063 = 0.315; 6 → 0.315 + 0.25 = 0.565; 0 → 0.
    #[test]
    fn bandwidth_tiers() {
        let b = PriceBook::from_toml(BOOK).expect("valid");
        let r = b.region("r1").expect("region");
        assert_eq!(r.bandwidth_hour(0), 0);
        assert_eq!(r.bandwidth_hour(2), 126_000);
        assert_eq!(r.bandwidth_hour(5), 315_000);
        assert_eq!(r.bandwidth_hour(6), 565_000);
        assert_eq!(r.bandwidth_hour(7), 815_000);
    }

    /// The price book shipped in the repository parses and prices a GPU type by its family.
    #[test]
    fn shipped_price_book() {
        let b = PriceBook::from_toml(include_str!("../../../catalog/prices.toml")).expect("valid");
        let r = b.region("cn-local").expect("region");
        assert_eq!(r.currency, "CNY");
        // gn6i-c4g1.xlarge: 4 × 0.1764 + 15 × 0.0221 + 6.5 = 7.5371
        assert_eq!(r.instance_hour(&t("ecs.gn6i", 4, 15, 1)), 7_537_100);
        // Every disk category the API sells is priced, and snapshots.
        for c in ["cloud", "cloud_efficiency", "cloud_ssd", "cloud_essd"] {
            assert!(r.disk_hour(c, 1).is_some_and(|p| p > 0), "{c}");
        }
        assert!(r.snapshot_hour(1) > 0);
    }

    /// By hand: g7.large 0.5296/h × 730 h = 386.608 a month. 1 month: no discount. 12 months:
    /// 4639.296, 15% off = 695.8944 → trade 3943.4016. 6 months: still list (no 6-month rule).
    #[test]
    fn subscription_terms() {
        let b = PriceBook::from_toml(BOOK).expect("valid");
        let r = b.region("r1").expect("region");
        let one = r.subscription(529_600, 1);
        assert_eq!((one.original, one.discount, one.trade, one.rule), (386_608_000, 0, 386_608_000, None));
        let year = r.subscription(529_600, 12);
        assert_eq!((year.original, year.discount, year.trade), (4_639_296_000, 695_894_400, 3_943_401_600));
        assert_eq!(year.rule, Some((12, 150_000)));
        assert_eq!(r.subscription(529_600, 6).discount, 0);
        assert_eq!(r.subscription(529_600, 36).rule, Some((12, 150_000)));
        // Configured terms: 3 months 5% off, 2 years 30% off; half a micro-unit rounds up.
        let custom = BOOK.replace(
            "[[region.family]]",
            "[region.subscription]\nhours_per_month = 720\ndiscount = { \"3\" = \"0.05\", \"24\" = \"0.3\" }\n\n[[region.family]]",
        );
        let b = PriceBook::from_toml(&custom).expect("valid");
        let r = b.region("r1").expect("region");
        assert_eq!(r.subscription(1, 3), Quote { original: 2160, discount: 108, trade: 2052, rule: Some((3, 50_000)) });
        assert_eq!(r.subscription(529_600, 24).rule, Some((24, 300_000)));
        assert_eq!(r.subscription(529_600, 12).rule, Some((3, 50_000)));
        assert!(PriceBook::from_toml(&custom.replace("\"0.3\"", "\"1\"")).is_err(), "100% off is refused");
        assert!(PriceBook::from_toml(&custom.replace("\"24\"", "\"0\"")).is_err(), "a zero-month term is refused");
    }

    /// Spot curve with the default 10% floor: idle 10%, half full 10 + 90 × 0.25 = 32.5 → 33%,
    /// 90% full 10 + 90 × 0.81 = 82.9 → 83%, full 100%; never above pay-as-you-go.
    #[test]
    fn spot_curve() {
        let b = PriceBook::from_toml(BOOK).expect("valid");
        let r = b.region("r1").expect("region");
        let table = [(0, 10), (1, 11), (500, 33), (900, 83), (1000, 100), (5000, 100)];
        for (used, pct) in table {
            assert_eq!(r.spot_percent(used), pct, "{used}‰ used");
        }
        // 33% of 0.5296 = 0.174768; 11% of 0.000005 = 0.00000055 → 0.000001 (half up).
        assert_eq!(RegionPrices::at_percent(529_600, 33), 174_768);
        assert_eq!(RegionPrices::at_percent(5, 11), 1);
        let with_floor = BOOK.replace("[[region.family]]", "[region.spot]\nfloor = \"0.25\"\n\n[[region.family]]");
        let b = PriceBook::from_toml(&with_floor).expect("valid");
        assert_eq!(b.region("r1").expect("region").spot_percent(0), 25);
        assert!(PriceBook::from_toml(&with_floor.replace("0.25", "0.255")).is_err(), "whole percents only");
    }

    #[test]
    fn disks_and_errors() {
        let b = PriceBook::from_toml(BOOK).expect("valid");
        let r = b.region("r1").expect("region");
        assert_eq!(r.disk_hour("cloud_essd", 40), Some(40_000));
        assert_eq!(r.disk_hour("nope", 40), None);
        assert!(matches!(b.region("r2"), Err(PriceError::NoRegion(_))));
        assert!(matches!(
            PriceBook::from_toml(&BOOK.replace("\"0.1764\"", "\"0.1764x\"")),
            Err(PriceError::Decimal(_))
        ));
        assert!(matches!(PriceBook::from_toml(&BOOK.replace("\"0.1764\"", "0.1764")), Err(PriceError::Parse(_))));
    }
}
