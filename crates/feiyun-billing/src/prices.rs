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
    bandwidth_first_5_mbps_hour: String,
    bandwidth_above_5_mbps_hour: String,
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
    pub bandwidth_first_5: i128,
    pub bandwidth_above_5: i128,
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
            regions.insert(
                r.id,
                RegionPrices {
                    currency: r.currency,
                    default,
                    families,
                    disk_gib_hour: disks,
                    bandwidth_first_5: dec(&r.bandwidth_first_5_mbps_hour)?,
                    bandwidth_above_5: dec(&r.bandwidth_above_5_mbps_hour)?,
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

    /// Pay-by-bandwidth per hour: the first 5 Mbit/s at one rate, each Mbit/s above at another.
    pub fn bandwidth_hour(&self, mbps: u32) -> i128 {
        let first = mbps.min(5) as i128;
        let above = mbps.saturating_sub(5) as i128;
        first * self.bandwidth_first_5 + above * self.bandwidth_above_5
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
