//! Owning: how many servers the workload needs (the real scheduler packs it), what is bought
//! and sold when, and every running cost, year by year.
//!
//! Assets (servers, storage, switches, racks) are bought at the start of the year they are first
//! needed, kept for their depreciation years, then sold at their residual value at the start of
//! the year after and replaced if still needed. Nothing is sold early when the need shrinks. At
//! the end of the last year what is still held counts at its book value (straight line from the
//! price to the residual value), as a credit against the horizon — not as a cost of the last
//! year, which would make that year negative whenever the hardware still owned is worth more
//! than a year of running it (any fleet bought in year 1 and depreciated over more years than
//! the horizon).

use feiyun_scheduler::cluster::Policy;
use feiyun_sim::fleet::{FleetGroup, FleetSpec, HostShape};
use feiyun_sim::replay::run_policy;
use feiyun_sim::TraceRequest;
use serde::Serialize;

use crate::calc::{cents, div_round, product, Amount, MICRO};
use crate::plan::Plan;
use crate::rent::{Growth, HOURS_PER_YEAR};
use crate::workload::{OwnDemand, Workload};
use crate::TcoError;

/// Most instances packed onto servers in one sizing (steady counts after growth).
pub const MAX_PACKED: u64 = 1_000_000;

/// An unlimited fleet of the plan's server shape.
fn fleet(plan: &Plan) -> FleetSpec {
    let s = &plan.own.servers;
    FleetSpec {
        groups: vec![FleetGroup {
            shape: HostShape {
                cpu_milli: u64::from(s.vcpus) * 1000,
                memory_mib: s.memory_gib * 1024,
                gpus: s.gpus,
                gpu_model: None,
                zone: None,
            },
            count: None,
        }],
    }
}

fn pack(plan: &Plan, requests: &[TraceRequest]) -> Result<u64, TcoError> {
    let run = run_policy(requests, &fleet(plan), Policy::Feiyun, false, 0);
    if run.rejected > 0 {
        let s = &plan.own.servers;
        return Err(TcoError::invalid(
            "own.servers",
            format!(
                "{} of the workload's instances do not fit on one server of {} vCPUs, {} GiB and {} GPUs",
                run.rejected, s.vcpus, s.memory_gib, s.gpus
            ),
        ));
    }
    Ok(run.peak_hosts)
}

/// Servers the workload needs each year, before spares: the peak hosts of the scheduler's default
/// policy on an unlimited fleet of the server shape.
///
/// Steady counts: every year's peak instances (after growth) are packed at once, largest first.
/// Trace: the period is replayed once; later years scale that peak, `ceil(peak × (1 + growth)^(y−1))`.
pub fn size(plan: &Plan, w: &Workload) -> Result<Vec<u64>, TcoError> {
    let mut out = Vec::new();
    match &w.own {
        OwnDemand::Steady => {
            let mut usages: Vec<_> = w.usages.iter().collect();
            usages.sort_by_key(|u| std::cmp::Reverse((u.gpus, u.vcpus, u.memory_mib)));
            for year in 1..=plan.years {
                let g = Growth::of(plan.growth.0, year);
                let mut requests = Vec::new();
                for u in &usages {
                    let n = g.scale(u.peak())?;
                    if requests.len() as u64 + n > MAX_PACKED {
                        return Err(TcoError::invalid(
                            "workload",
                            format!("more than {MAX_PACKED} instances to place on servers in year {year}"),
                        ));
                    }
                    let mut r = TraceRequest::new(0, None, u64::from(u.vcpus) * 1000, u.memory_mib);
                    r.gpu_milli = u64::from(u.gpus) * 1000;
                    requests.extend(std::iter::repeat_n(r, n as usize));
                }
                out.push(pack(plan, &requests)?);
            }
        }
        OwnDemand::Trace(requests) => {
            let peak = pack(plan, requests)?;
            for year in 1..=plan.years {
                out.push(Growth::of(plan.growth.0, year).scale(peak)?);
            }
        }
    }
    Ok(out)
}

/// Price, life and residual value of one unit of an asset class, micro-units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AssetTerms {
    pub price: i128,
    pub life_years: u32,
    pub residual: i128,
}

impl AssetTerms {
    /// Book value of one unit `age` years after purchase (age ≤ life), to a micro-unit:
    /// `price − (price − residual) × age / life`.
    pub fn book_value(&self, age: u32) -> i128 {
        self.price - div_round((self.price - self.residual) * i128::from(age), i128::from(self.life_years.max(1)))
    }
}

/// One asset class over the years.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AssetYears {
    pub in_service: Vec<u64>,
    pub bought: Vec<u64>,
    /// Purchases, micro-units (exact).
    pub capex: Vec<i128>,
    /// Units sold at the residual value at the start of each year, micro-units (exact).
    pub resale: Vec<i128>,
    /// Book value of what is held at the end of the last year, micro-units.
    pub terminal: i128,
}

/// Buys, retires and values one asset class for the needs of each year.
pub fn run_asset(need: &[u64], t: &AssetTerms) -> Result<AssetYears, TcoError> {
    let years = need.len() as u32;
    let mut cohorts: Vec<(u32, u64)> = Vec::new();
    let mut out = AssetYears::default();
    for (i, &n) in need.iter().enumerate() {
        let year = i as u32 + 1;
        let retired: u64 = cohorts.iter().filter(|c| c.0 + t.life_years == year).map(|c| c.1).sum();
        cohorts.retain(|c| c.0 + t.life_years != year);
        let held: u64 = cohorts.iter().map(|c| c.1).sum();
        let buy = n.saturating_sub(held);
        if buy > 0 {
            cohorts.push((year, buy));
        }
        out.in_service.push(held + buy);
        out.bought.push(buy);
        out.capex.push(product(&[i128::from(buy), t.price])?);
        out.resale.push(product(&[i128::from(retired), t.residual])?);
    }
    for (bought, units) in cohorts {
        out.terminal += product(&[i128::from(units), t.book_value(years - bought + 1)])?;
    }
    Ok(out)
}

/// Capital spent at the start of a year.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Capex {
    pub servers: Amount,
    pub storage: Amount,
    pub switches: Amount,
    pub racks: Amount,
    /// `dr.fraction` × the four above, plus `dr.capex` in year 1.
    pub dr: Amount,
    pub total: Amount,
}

/// Running costs, paid as the year goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Opex {
    pub power: Amount,
    pub colocation: Amount,
    pub bandwidth: Amount,
    pub staff: Amount,
    pub licences: Amount,
    /// `dr.fraction` × (power + colocation + bandwidth + licences), plus `dr.yearly`.
    pub dr: Amount,
    pub total: Amount,
}

/// Owning in one year.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OwnYear {
    /// Servers the workload needs (sized or planned, grown) plus spares.
    pub servers_needed: u64,
    pub servers_in_service: u64,
    pub servers_bought: u64,
    pub switches_in_service: u64,
    pub racks_in_service: u64,
    pub capex: Capex,
    /// Assets sold at the end of their depreciation (a credit, so negative), DR share included.
    pub resale: Amount,
    pub opex: Opex,
    pub migration: Amount,
    /// What is paid in the year: capex + resale + opex + migration.
    pub total: Amount,
}

impl OwnYear {
    /// Paid at the start of the year.
    pub fn upfront(&self) -> Amount {
        self.capex.total + self.resale + self.migration
    }
}

/// Owning over the horizon: what each year costs, and what is still owned at the end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnYears {
    pub years: Vec<OwnYear>,
    /// Book value of everything held at the end of the last year, DR share included; a credit, so
    /// negative (or zero).
    pub terminal_value: Amount,
}

/// All owning years, given the servers needed each year (spares included).
pub fn years(plan: &Plan, servers_needed: &[u64]) -> Result<OwnYears, TcoError> {
    let own = &plan.own;
    let n = servers_needed.len();
    let zero = AssetTerms { price: 0, life_years: 1, residual: 0 };
    let s = &own.servers;
    let servers = run_asset(
        servers_needed,
        &AssetTerms { price: s.price.0, life_years: s.depreciation_years, residual: s.residual_value.0 },
    )?;
    let terms =
        |price: i128, life: Option<u32>, residual: i128| AssetTerms { price, life_years: life.unwrap_or(1), residual };
    let storage = match &own.storage {
        Some(st) => {
            run_asset(&vec![st.tib; n], &terms(st.price_per_tib.0, st.depreciation_years, st.residual_value.0))?
        }
        None => run_asset(&vec![0; n], &zero)?,
    };
    let per = |fixed: Option<u64>, per: Option<u64>| -> Vec<u64> {
        servers.in_service.iter().map(|&sv| fixed.unwrap_or_else(|| sv.div_ceil(per.unwrap_or(1).max(1)))).collect()
    };
    let (switches, switch_watts) = match &own.switches {
        Some(sw) => (
            run_asset(
                &per(sw.count, sw.servers_per_switch),
                &terms(sw.price.0, sw.depreciation_years, sw.residual_value.0),
            )?,
            sw.watts,
        ),
        None => (run_asset(&vec![0; n], &zero)?, 0),
    };
    let racks = match &own.racks {
        Some(r) => {
            run_asset(&per(r.count, r.servers_per_rack), &terms(r.price.0, r.depreciation_years, r.residual_value.0))?
        }
        None => run_asset(&vec![0; n], &zero)?,
    };
    let dr_fraction = own.dr.as_ref().map_or(0, |d| d.fraction.0);

    let mut out = Vec::with_capacity(n);
    for (i, &needed) in servers_needed.iter().enumerate() {
        let year = i as u32 + 1;
        let sv = servers.in_service[i];
        let c = |a: &AssetYears| cents(&[a.capex[i]], 1);
        let mut capex = Capex {
            servers: c(&servers)?,
            storage: c(&storage)?,
            switches: c(&switches)?,
            racks: c(&racks)?,
            ..Capex::default()
        };
        let hardware = capex.servers + capex.storage + capex.switches + capex.racks;
        let dr_capex = match (&own.dr, year) {
            (Some(d), 1) => d.capex.0,
            _ => 0,
        };
        capex.dr = cents(&[dr_fraction, hardware.0], MICRO)? + cents(&[dr_capex], 1)?;
        capex.total = hardware + capex.dr;

        let sold = servers.resale[i] + storage.resale[i] + switches.resale[i] + racks.resale[i];
        let resale = -cents(&[sold, MICRO + dr_fraction], MICRO)?;

        // Power: watts × 8760 h / 1000 = kWh, × PUE, × price per kWh.
        let watts = product(&[i128::from(sv), i128::from(own.power.watts_per_server)])?
            + product(&[i128::from(switches.in_service[i]), i128::from(switch_watts)])?;
        let mut opex = Opex {
            power: cents(&[watts, HOURS_PER_YEAR, own.power.pue.0, own.power.price_per_kwh.0], 1000 * MICRO)?,
            colocation: match &own.racks {
                Some(r) => cents(&[i128::from(racks.in_service[i]), r.monthly_rent.0, 12], 1)?,
                None => Amount::ZERO,
            },
            bandwidth: match &own.bandwidth {
                Some(b) => cents(&[i128::from(b.mbps), b.price_per_mbps_month.0, 12], 1)?,
                None => Amount::ZERO,
            },
            // (fte + servers / servers_per_fte) × cost_per_fte, as one fraction.
            staff: match (&own.staff, own.staff.as_ref().and_then(|st| st.servers_per_fte)) {
                (Some(st), Some(per)) => {
                    let per = i128::from(per);
                    let fte = product(&[st.fte.0, per])? + product(&[i128::from(sv), MICRO])?;
                    cents(&[fte, st.cost_per_fte.0], MICRO * per)?
                }
                (Some(st), None) => cents(&[st.fte.0, st.cost_per_fte.0], MICRO)?,
                (None, _) => Amount::ZERO,
            },
            licences: match &own.licences {
                Some(l) => cents(&[product(&[i128::from(sv), l.per_server_year.0])? + l.fixed_year.0], 1)?,
                None => Amount::ZERO,
            },
            ..Opex::default()
        };
        let running = opex.power + opex.colocation + opex.bandwidth + opex.licences;
        let dr_yearly = own.dr.as_ref().map_or(0, |d| d.yearly.0);
        opex.dr = cents(&[dr_fraction, running.0], MICRO)? + cents(&[dr_yearly], 1)?;
        opex.total = running + opex.staff + opex.dr;

        let migration = if year == 1 { cents(&[own.migration.0], 1)? } else { Amount::ZERO };
        out.push(OwnYear {
            servers_needed: needed,
            servers_in_service: sv,
            servers_bought: servers.bought[i],
            switches_in_service: switches.in_service[i],
            racks_in_service: racks.in_service[i],
            capex,
            resale,
            opex,
            migration,
            total: capex.total + resale + opex.total + migration,
        });
    }
    let held = servers.terminal + storage.terminal + switches.terminal + racks.terminal;
    let terminal_value = -cents(&[held, MICRO + dr_fraction], MICRO)?;
    Ok(OwnYears { years: out, terminal_value })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVER: AssetTerms = AssetTerms { price: 40_000 * MICRO, life_years: 5, residual: 4_000 * MICRO };

    /// Straight line from 40,000 to 4,000 over 5 years: 7,200 a year.
    #[test]
    fn book_values_by_hand() {
        let table: &[(u32, i128)] = &[(0, 40_000), (1, 32_800), (3, 18_400), (5, 4_000)];
        for &(age, want) in table {
            assert_eq!(SERVER.book_value(age), want * MICRO, "age {age}");
        }
        // 1,000 over 3 years after 1 year: 666.666666… → 666.666667 (to a micro-unit).
        let t = AssetTerms { price: 1_000 * MICRO, life_years: 3, residual: 0 };
        assert_eq!(t.book_value(1), 666_666_667);
    }

    /// Need 2, 2, 3 over three years: buy 2, then 1 in year 3; at the end, 2 at age 3 (18,400
    /// each) and 1 at age 1 (32,800).
    #[test]
    fn expansion_buys_more_and_values_what_is_held() {
        let a = run_asset(&[2, 2, 3], &SERVER).expect("fits");
        assert_eq!(a.bought, vec![2, 0, 1]);
        assert_eq!(a.in_service, vec![2, 2, 3]);
        assert_eq!(a.capex, vec![80_000 * MICRO, 0, 40_000 * MICRO]);
        assert_eq!(a.resale, vec![0, 0, 0]);
        assert_eq!(a.terminal, (2 * 18_400 + 32_800) * MICRO);
    }

    /// A 2-year life over 5 years: sold at the residual value and bought again in years 3 and 5;
    /// a shrinking need sells nothing early.
    #[test]
    fn assets_are_replaced_at_the_end_of_their_life() {
        let t = AssetTerms { price: 1_000 * MICRO, life_years: 2, residual: 100 * MICRO };
        let a = run_asset(&[4, 4, 4, 1, 1], &t).expect("fits");
        assert_eq!(a.bought, vec![4, 0, 4, 0, 1]);
        assert_eq!(a.in_service, vec![4, 4, 4, 4, 1]);
        assert_eq!(a.resale, vec![0, 0, 400 * MICRO, 0, 400 * MICRO]);
        // The one bought in year 5 is one year old: 1,000 − 900 / 2 = 550.
        assert_eq!(a.terminal, 550 * MICRO);
    }
}
