//! The plan: what to compare, as TOML. Every money amount and rate is a decimal string (or a
//! whole number), never a float; unknown fields are errors. `docs/tco.md` describes each field
//! and `docs/tco-example.toml` is a complete plan.

use serde::{Deserialize, Serialize};

use crate::calc::{Decimal, MICRO};
use crate::terms::SubscriptionTerms;
use crate::TcoError;

/// Years a plan may cover.
pub const YEARS: std::ops::RangeInclusive<u32> = 3..=5;
/// Most instances one `[[workload]]` entry may ask for.
pub const MAX_COUNT: u64 = 1_000_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// Length of the comparison, 3 to 5 years.
    pub years: u32,
    /// Must be the price book's currency.
    pub currency: String,
    /// Yearly discount rate for present values (0.08 = 8 %).
    pub cost_of_capital: Decimal,
    /// Yearly growth of the workload, compounded (0.10 = 10 % more each year); it buys more
    /// servers and rents more instances.
    #[serde(default)]
    pub growth: Decimal,
    /// Steady workload; alternatively a trace is given beside the plan.
    #[serde(default)]
    pub workload: Vec<SteadyWorkload>,
    pub own: Own,
    #[serde(default)]
    pub rent: Rent,
}

/// `count` instances of one type, running `hours_per_day` hours every day (from midnight).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SteadyWorkload {
    pub instance_type: String,
    pub count: u64,
    #[serde(default = "full_day")]
    pub hours_per_day: u32,
}

fn full_day() -> u32 {
    24
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Own {
    pub servers: Servers,
    #[serde(default)]
    pub storage: Option<Storage>,
    #[serde(default)]
    pub switches: Option<Switches>,
    #[serde(default)]
    pub racks: Option<Racks>,
    pub power: Power,
    #[serde(default)]
    pub bandwidth: Option<Bandwidth>,
    #[serde(default)]
    pub staff: Option<Staff>,
    #[serde(default)]
    pub licences: Option<Licences>,
    #[serde(default)]
    pub dr: Option<DisasterRecovery>,
    /// One-time cost of moving in, paid at the start of year 1.
    #[serde(default)]
    pub migration: Decimal,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Servers {
    /// Servers in year 1 (grown each year); omitted: sized from the workload by the scheduler.
    #[serde(default)]
    pub count: Option<u64>,
    /// What one server offers to instances.
    pub vcpus: u32,
    pub memory_gib: u64,
    #[serde(default)]
    pub gpus: u32,
    /// Extra servers kept for failures (N + spares), never grown.
    #[serde(default)]
    pub spares: u64,
    /// Purchase price of one server.
    pub price: Decimal,
    /// Straight-line depreciation; a server is sold at its residual value at the end of it.
    pub depreciation_years: u32,
    /// What one server is worth at the end of its depreciation.
    #[serde(default)]
    pub residual_value: Decimal,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Storage {
    pub tib: u64,
    pub price_per_tib: Decimal,
    #[serde(default)]
    pub depreciation_years: Option<u32>,
    /// Per TiB, at the end of the depreciation.
    #[serde(default)]
    pub residual_value: Decimal,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Switches {
    /// A fixed number of switches, or
    #[serde(default)]
    pub count: Option<u64>,
    /// one switch per this many servers (rounded up).
    #[serde(default)]
    pub servers_per_switch: Option<u64>,
    pub price: Decimal,
    #[serde(default)]
    pub depreciation_years: Option<u32>,
    #[serde(default)]
    pub residual_value: Decimal,
    /// Average power draw of one switch.
    #[serde(default)]
    pub watts: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Racks {
    /// A fixed number of racks, or
    #[serde(default)]
    pub count: Option<u64>,
    /// one rack per this many servers (rounded up; switches ride in the server racks).
    #[serde(default)]
    pub servers_per_rack: Option<u64>,
    /// Purchase price of one rack (0 when the racks are rented).
    #[serde(default)]
    pub price: Decimal,
    #[serde(default)]
    pub depreciation_years: Option<u32>,
    #[serde(default)]
    pub residual_value: Decimal,
    /// Colocation rent (space, cooling, security) per rack per month.
    #[serde(default)]
    pub monthly_rent: Decimal,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Power {
    /// Average draw of one server, in watts.
    pub watts_per_server: u32,
    /// Power usage effectiveness of the site (1.5 = 50 % on top for cooling and losses).
    pub pue: Decimal,
    pub price_per_kwh: Decimal,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bandwidth {
    pub mbps: u32,
    pub price_per_mbps_month: Decimal,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Staff {
    /// Full-time equivalents running the own site, whatever its size.
    #[serde(default)]
    pub fte: Decimal,
    /// One more FTE per this many servers in service (spares included), on top of `fte`; omitted:
    /// the staff does not grow with the fleet.
    #[serde(default)]
    pub servers_per_fte: Option<u64>,
    /// Yearly cost of one FTE (salary and overhead); renting's staff costs the same per FTE.
    pub cost_per_fte: Decimal,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Licences {
    /// Per server in service, per year (virtualization, OS, monitoring).
    #[serde(default)]
    pub per_server_year: Decimal,
    /// Per year regardless of size.
    #[serde(default)]
    pub fixed_year: Decimal,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisasterRecovery {
    /// The DR site as a fraction of the primary's hardware and running costs (staff and migration
    /// excepted): 0.5 = a half-size site.
    #[serde(default)]
    pub fraction: Decimal,
    /// Explicit one-time cost, at the start of year 1.
    #[serde(default)]
    pub capex: Decimal,
    /// Explicit cost per year.
    #[serde(default)]
    pub yearly: Decimal,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rent {
    /// One-time cost of moving onto Feiyun, at the start of year 1.
    #[serde(default)]
    pub migration: Decimal,
    /// Staff still needed when renting, at `own.staff.cost_per_fte`.
    #[serde(default)]
    pub staff_fte: Decimal,
    /// Internet bandwidth, priced by the price book; defaults to `own.bandwidth.mbps`.
    #[serde(default)]
    pub bandwidth_mbps: Option<u32>,
    /// Cloud disks, priced by the price book.
    #[serde(default)]
    pub disk: Option<RentDisk>,
    /// Overrides the price book's subscription terms.
    #[serde(default)]
    pub subscription: Option<SubscriptionTerms>,
    /// Trace requests are rented as the cheapest type of these families (default: every family
    /// whose vCPUs are whole, i.e. not burstable).
    #[serde(default)]
    pub families: Option<Vec<String>>,
    /// The length of the period a trace describes (it repeats all year); default: until the last
    /// request ends.
    #[serde(default)]
    pub trace_period_hours: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RentDisk {
    pub category: String,
    pub gib: u64,
}

fn range(field: &str, v: Decimal, lo: i128, hi: i128, what: &str) -> Result<(), TcoError> {
    if v.0 < lo || v.0 > hi {
        return Err(TcoError::invalid(field, format!("must be {what} (got {v})")));
    }
    Ok(())
}

fn money(field: &str, v: Decimal) -> Result<(), TcoError> {
    range(field, v, 0, i128::MAX, "an amount of at least 0")
}

fn count(field: &str, v: u64, lo: u64, hi: u64) -> Result<(), TcoError> {
    if !(lo..=hi).contains(&v) {
        return Err(TcoError::invalid(field, format!("must be {lo} to {hi} (got {v})")));
    }
    Ok(())
}

/// Price, depreciation and residual value of an asset class; depreciation is required once the
/// asset costs anything.
fn asset(field: &str, price_name: &str, price: Decimal, years: Option<u32>, residual: Decimal) -> Result<(), TcoError> {
    money(&format!("{field}.{price_name}"), price)?;
    money(&format!("{field}.residual_value"), residual)?;
    if residual > price {
        return Err(TcoError::invalid(format!("{field}.residual_value"), "must not exceed the price"));
    }
    match years {
        Some(y) => count(&format!("{field}.depreciation_years"), u64::from(y), 1, 50),
        None if price.0 > 0 => {
            Err(TcoError::invalid(format!("{field}.depreciation_years"), "is required when the price is above 0"))
        }
        None => Ok(()),
    }
}

fn one_of(field: &str, a: (&str, Option<u64>), b: (&str, Option<u64>)) -> Result<(), TcoError> {
    match (a.1, b.1) {
        (Some(_), Some(_)) | (None, None) => {
            Err(TcoError::invalid(field, format!("give exactly one of {} and {}", a.0, b.0)))
        }
        (Some(v), None) => count(&format!("{field}.{}", a.0), v, 0, MAX_COUNT),
        (None, Some(v)) => count(&format!("{field}.{}", b.0), v, 1, MAX_COUNT),
    }
}

impl Plan {
    /// Parses and validates a plan (catalog names are checked later, against the catalog).
    pub fn from_toml(text: &str) -> Result<Plan, TcoError> {
        let plan: Plan = toml::from_str(text).map_err(|e| TcoError::Parse(e.to_string()))?;
        plan.validate()?;
        Ok(plan)
    }

    /// Checks every range that does not need the catalog or the price book.
    pub fn validate(&self) -> Result<(), TcoError> {
        if !YEARS.contains(&self.years) {
            return Err(TcoError::invalid("years", format!("must be 3 to 5 (got {})", self.years)));
        }
        if self.currency.trim().is_empty() {
            return Err(TcoError::invalid("currency", "must not be empty"));
        }
        range("cost_of_capital", self.cost_of_capital, 0, MICRO, "from 0 to 1")?;
        range("growth", self.growth, -MICRO + 1, 10 * MICRO, "above -1 and at most 10")?;
        for (i, w) in self.workload.iter().enumerate() {
            let f = format!("workload[{i}]");
            if w.instance_type.trim().is_empty() {
                return Err(TcoError::invalid(format!("{f}.instance_type"), "must not be empty"));
            }
            count(&format!("{f}.count"), w.count, 1, MAX_COUNT)?;
            count(&format!("{f}.hours_per_day"), u64::from(w.hours_per_day), 1, 24)?;
        }

        let s = &self.own.servers;
        if let Some(c) = s.count {
            count("own.servers.count", c, 1, MAX_COUNT)?;
        }
        count("own.servers.vcpus", u64::from(s.vcpus), 1, 100_000)?;
        count("own.servers.memory_gib", s.memory_gib, 1, 1 << 30)?;
        count("own.servers.gpus", u64::from(s.gpus), 0, 1024)?;
        count("own.servers.spares", s.spares, 0, MAX_COUNT)?;
        asset("own.servers", "price", s.price, Some(s.depreciation_years), s.residual_value)?;
        if let Some(st) = &self.own.storage {
            count("own.storage.tib", st.tib, 0, 1 << 40)?;
            asset("own.storage", "price_per_tib", st.price_per_tib, st.depreciation_years, st.residual_value)?;
        }
        if let Some(sw) = &self.own.switches {
            one_of("own.switches", ("count", sw.count), ("servers_per_switch", sw.servers_per_switch))?;
            asset("own.switches", "price", sw.price, sw.depreciation_years, sw.residual_value)?;
            count("own.switches.watts", u64::from(sw.watts), 0, 1_000_000)?;
        }
        if let Some(r) = &self.own.racks {
            one_of("own.racks", ("count", r.count), ("servers_per_rack", r.servers_per_rack))?;
            asset("own.racks", "price", r.price, r.depreciation_years, r.residual_value)?;
            money("own.racks.monthly_rent", r.monthly_rent)?;
        }
        let p = &self.own.power;
        count("own.power.watts_per_server", u64::from(p.watts_per_server), 0, 1_000_000)?;
        range("own.power.pue", p.pue, MICRO, 10 * MICRO, "from 1 to 10")?;
        money("own.power.price_per_kwh", p.price_per_kwh)?;
        if let Some(b) = &self.own.bandwidth {
            count("own.bandwidth.mbps", u64::from(b.mbps), 0, 100_000_000)?;
            money("own.bandwidth.price_per_mbps_month", b.price_per_mbps_month)?;
        }
        if let Some(st) = &self.own.staff {
            range("own.staff.fte", st.fte, 0, MAX_COUNT as i128 * MICRO, "from 0 to 1000000")?;
            if let Some(n) = st.servers_per_fte {
                count("own.staff.servers_per_fte", n, 1, MAX_COUNT)?;
            }
            money("own.staff.cost_per_fte", st.cost_per_fte)?;
        }
        if let Some(l) = &self.own.licences {
            money("own.licences.per_server_year", l.per_server_year)?;
            money("own.licences.fixed_year", l.fixed_year)?;
        }
        if let Some(dr) = &self.own.dr {
            range("own.dr.fraction", dr.fraction, 0, 2 * MICRO, "from 0 to 2")?;
            money("own.dr.capex", dr.capex)?;
            money("own.dr.yearly", dr.yearly)?;
        }
        money("own.migration", self.own.migration)?;

        let r = &self.rent;
        money("rent.migration", r.migration)?;
        range("rent.staff_fte", r.staff_fte, 0, MAX_COUNT as i128 * MICRO, "from 0 to 1000000")?;
        if r.staff_fte.0 > 0 && self.own.staff.is_none() {
            return Err(TcoError::invalid("rent.staff_fte", "needs own.staff.cost_per_fte to be priced"));
        }
        if let Some(m) = r.bandwidth_mbps {
            count("rent.bandwidth_mbps", u64::from(m), 0, 100_000_000)?;
        }
        if let Some(d) = &r.disk {
            count("rent.disk.gib", d.gib, 0, 1 << 40)?;
        }
        if let Some(t) = &r.subscription {
            t.validate("rent.subscription")?;
        }
        if let Some(h) = r.trace_period_hours {
            count("rent.trace_period_hours", h, 1, 24 * 366 * 10)?;
        }
        Ok(())
    }

    /// Bandwidth rented: `rent.bandwidth_mbps`, or the own site's.
    pub fn rent_bandwidth_mbps(&self) -> u32 {
        self.rent.bandwidth_mbps.or(self.own.bandwidth.as_ref().map(|b| b.mbps)).unwrap_or(0)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The smallest valid plan.
    pub(crate) const MINIMAL: &str = r#"
years = 3
currency = "CNY"
cost_of_capital = "0"

[[workload]]
instance_type = "ecs.g7.large"
count = 10

[own.servers]
vcpus = 32
memory_gib = 128
price = "40000"
depreciation_years = 5

[own.power]
watts_per_server = 400
pue = "1.5"
price_per_kwh = "0.8"
"#;

    #[test]
    fn minimal_plan_has_defaults() {
        let p = Plan::from_toml(MINIMAL).expect("valid");
        assert_eq!(p.workload[0].hours_per_day, 24);
        assert_eq!(p.growth, Decimal::ZERO);
        assert_eq!(p.rent.subscription, None);
        assert_eq!(p.rent_bandwidth_mbps(), 0);
    }

    /// Each bad input names its field.
    #[test]
    fn errors_name_the_field() {
        let cases: &[(&str, &str, &str)] = &[
            ("years = 3", "years = 6", "years: must be 3 to 5 (got 6)"),
            ("years = 3", "years = 2", "years"),
            ("cost_of_capital = \"0\"", "cost_of_capital = \"0.0x\"", "not a decimal"),
            ("cost_of_capital = \"0\"", "cost_of_capital = 0.08", "write decimals as strings"),
            ("cost_of_capital = \"0\"", "cost_of_capital = \"1.5\"", "cost_of_capital: must be from 0 to 1"),
            ("count = 10", "count = 0", "workload[0].count"),
            ("count = 10", "count = 10\nhours_per_day = 25", "workload[0].hours_per_day"),
            ("count = 10", "count = 10\ncolour = \"red\"", "unknown field `colour`"),
            ("pue = \"1.5\"", "pue = \"0.9\"", "own.power.pue: must be from 1 to 10"),
            ("price = \"40000\"", "price = \"-1\"", "own.servers.price"),
            ("price = \"40000\"", "price = \"40000\"\nresidual_value = \"50000\"", "own.servers.residual_value"),
            ("depreciation_years = 5", "depreciation_years = 0", "own.servers.depreciation_years"),
            ("[own.power]", "[own.cooling]\nx = 1\n[own.power]", "unknown field `cooling`"),
            ("[own.servers]\n", "[own.servers]\nvcpu = 3\n", "unknown field `vcpu`"),
            ("years = 3\n", "years = 3\ngrowth = \"-1\"\n", "growth"),
            ("[own.power]", "[rent]\nstaff_fte = \"1\"\n[own.power]", "rent.staff_fte: needs own.staff"),
            (
                "[own.power]",
                "[rent.subscription]\nyear_discount = \"1\"\n[own.power]",
                "rent.subscription.year_discount",
            ),
            ("[own.power]", "[own.switches]\nprice = \"1\"\ndepreciation_years = 5\n[own.power]", "exactly one of"),
            ("[own.power]", "[own.racks]\ncount = 1\nprice = \"5000\"\n[own.power]", "own.racks.depreciation_years"),
            ("[own.power]", "[own.storage]\ntib = 1\nprice_per_tib = \"-2\"\n[own.power]", "own.storage.price_per_tib"),
            ("[own.power]", "[own.dr]\nfraction = \"3\"\n[own.power]", "own.dr.fraction"),
        ];
        for (from, to, needle) in cases {
            assert!(MINIMAL.contains(from), "{from}");
            let text = MINIMAL.replacen(from, to, 1);
            let e = Plan::from_toml(&text).expect_err(to).to_string();
            assert!(e.contains(needle), "{to}: {e}");
        }
        let e = Plan::from_toml(&MINIMAL.replace("[own.power]", "[x]")).expect_err("no power").to_string();
        assert!(e.contains("missing field `power`"), "{e}");
    }
}
