//! The report: every year's owning and renting costs, nominal and present value, their
//! cumulative sums, month by month, and the break-even point.
//!
//! Timing within a year: purchases, sales, migrations and yearly subscriptions are paid at its
//! start; running costs and pay-as-you-go evenly through it. A year's amounts are what is paid
//! in it. The terminal value (what owning still holds at the end, at book value) is credited once,
//! at the end of the last year, in the horizon's totals and in the last month — never in a year's
//! cost, where it would make the last year negative. Present values discount each at the cost of capital `r`: the start
//! of year `y` by `1 / (1 + r)^(y−1)`, its end by `1 / (1 + r)^y`, and what is spread through it by
//! the mean of the two (the trapezoid rule).

use serde::Serialize;

use crate::calc::{div_round, factor, format_factor, Amount, Decimal, CENT, MICRO};
use crate::own::OwnYear;
use crate::rent::{RentExtras, TypeYear};
use crate::terms::SubscriptionTerms;
use crate::workload::TraceInfo;
use crate::TcoError;

/// Money paid at the three moments of a year.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flows {
    pub start: Amount,
    pub spread: Amount,
    pub end: Amount,
}

impl Flows {
    pub fn total(&self) -> Amount {
        self.start + self.spread + self.end
    }

    fn present_value(&self, f: &Factors) -> Result<Flows, TcoError> {
        Ok(Flows {
            start: self.start.times_factor(f.start)?,
            spread: self.spread.times_factor(f.spread)?,
            end: self.end.times_factor(f.end)?,
        })
    }
}

/// Discount factors of one year, × 10^18.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Factors {
    pub start: i128,
    pub spread: i128,
    pub end: i128,
}

impl Factors {
    /// With `R = 1 + r`: start `1 / R^(y−1)`, end `1 / R^y`, spread `(start + end) / 2`
    /// `= (2 + r) / (2 R^y)`, each one exact fraction rounded to 18 decimals.
    pub fn of(rate_micros: i128, year: u32) -> Factors {
        let k = year.saturating_sub(1);
        let r = MICRO + rate_micros;
        Factors {
            start: factor(MICRO.pow(k), r.pow(k)),
            spread: factor(MICRO.pow(k) * (2 * MICRO + rate_micros), 2 * r.pow(k + 1)),
            end: factor(MICRO.pow(k + 1), r.pow(k + 1)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FactorsOut {
    pub start: String,
    pub spread: String,
    pub end: String,
}

/// One way of renting in one year.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Scenario {
    /// Instances on subscription (paid at the start of the year).
    pub compute_subscription: Amount,
    /// Instances by the second (paid as the year goes).
    pub compute_payg: Amount,
    /// Bandwidth, disks, staff and migration.
    pub extras: Amount,
    pub total: Amount,
    pub present_value: Amount,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RentYear {
    pub by_type: Vec<TypeYear>,
    pub extras: RentExtras,
    pub payg: Scenario,
    pub subscription: Scenario,
    pub mix: Scenario,
}

/// The four columns everything is compared in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Columns {
    pub own: Amount,
    pub payg: Amount,
    pub subscription: Amount,
    pub mix: Amount,
}

impl Columns {
    fn plus(self, o: Columns) -> Columns {
        Columns {
            own: self.own + o.own,
            payg: self.payg + o.payg,
            subscription: self.subscription + o.subscription,
            mix: self.mix + o.mix,
        }
    }

    fn rent(&self, which: Renting) -> Amount {
        match which {
            Renting::Payg => self.payg,
            Renting::Subscription => self.subscription,
            Renting::Mix => self.mix,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OwnYearOut {
    #[serde(flatten)]
    pub year: OwnYear,
    pub present_value: Amount,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct YearRow {
    pub year: u32,
    pub discount_factors: FactorsOut,
    pub own: OwnYearOut,
    pub rent: RentYear,
    /// Nominal totals of this year.
    pub total: Columns,
    pub present_value: Columns,
    pub cumulative: Columns,
    pub cumulative_present_value: Columns,
}

/// A way of renting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Renting {
    Payg,
    Subscription,
    Mix,
}

impl Renting {
    pub const ALL: [Renting; 3] = [Renting::Mix, Renting::Subscription, Renting::Payg];

    pub fn name(self) -> &'static str {
        match self {
            Renting::Payg => "pay-as-you-go",
            Renting::Subscription => "subscription",
            Renting::Mix => "mix",
        }
    }
}

/// When cumulative owning first costs less than the cheapest way of renting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BreakEven {
    /// The way of renting with the lowest total over the horizon (ties: mix, subscription, pay-as-you-go).
    pub against: Renting,
    /// Months from the start (1-based), or none.
    pub month: Option<u32>,
    pub year: Option<u32>,
    pub month_of_year: Option<u32>,
    /// Owning total minus renting total over the horizon (negative: owning is cheaper).
    pub difference: Amount,
    pub summary: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BreakEvens {
    pub nominal: BreakEven,
    pub present_value: BreakEven,
}

/// Cumulative nominal amounts at the end of a month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MonthRow {
    pub month: u32,
    #[serde(flatten)]
    pub cumulative: Columns,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerSizing {
    pub vcpus: u32,
    pub memory_gib: u64,
    pub gpus: u32,
    pub spares: u64,
    /// `plan` (own.servers.count) or `scheduler`.
    pub sized_by: &'static str,
    /// Servers the workload needs each year by the scheduler, before spares.
    pub scheduler: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TypeSummary {
    pub instance_type: String,
    pub vcpus: u32,
    pub memory_gib: String,
    pub gpus: u32,
    pub hourly_price: String,
    /// Year-1 subscription of one instance for a whole year, to a micro-unit.
    pub year_subscription_price: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkloadSummary {
    /// `steady` or `trace`.
    pub source: &'static str,
    /// The period that repeats all year.
    pub period_hours: String,
    pub trace: Option<TraceInfo>,
    pub instance_types: Vec<TypeSummary>,
}

/// What owning still holds at the end of the horizon, at book value (DR share included).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TerminalValue {
    /// The credit (negative or zero), at the end of the last year.
    pub amount: Amount,
    /// Discounted with the last year's end factor.
    pub present_value: Amount,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub currency: String,
    pub region: String,
    pub years: u32,
    pub cost_of_capital: Decimal,
    pub growth: Decimal,
    pub subscription_terms: SubscriptionTerms,
    /// `price book` or `plan`.
    pub subscription_terms_from: &'static str,
    /// A concurrency level in use more hours a year than this is on subscription in the mix.
    pub subscribe_above_hours: String,
    pub workload: WorkloadSummary,
    pub servers: ServerSizing,
    pub by_year: Vec<YearRow>,
    /// Credited in `total.own` and `total_present_value.own`, not in any year.
    pub terminal_value: TerminalValue,
    /// Over the horizon: the years' totals, and owning's terminal value.
    pub total: Columns,
    pub total_present_value: Columns,
    pub break_even: BreakEvens,
    pub monthly: Vec<MonthRow>,
}

/// One year as flows, before present values.
pub struct YearFlows {
    pub own: OwnYear,
    pub by_type: Vec<TypeYear>,
    pub extras: RentExtras,
}

impl YearFlows {
    fn flows(&self) -> [Flows; 4] {
        let sum = |f: fn(&TypeYear) -> Amount| self.by_type.iter().map(f).sum::<Amount>();
        let extras = Flows { start: self.extras.migration, spread: self.extras.spread(), end: Amount::ZERO };
        let own = Flows { start: self.own.upfront(), spread: self.own.opex.total, end: Amount::ZERO };
        let payg = Flows { start: extras.start, spread: extras.spread + sum(|t| t.payg), end: Amount::ZERO };
        let sub = Flows { start: extras.start + sum(|t| t.subscription), spread: extras.spread, end: Amount::ZERO };
        let mix = Flows {
            start: extras.start + sum(|t| t.mix_subscription),
            spread: extras.spread + sum(|t| t.mix_payg),
            end: Amount::ZERO,
        };
        [own, payg, sub, mix]
    }
}

fn columns(f: &[Flows; 4]) -> Columns {
    Columns { own: f[0].total(), payg: f[1].total(), subscription: f[2].total(), mix: f[3].total() }
}

/// Cumulative amounts at the end of each month: the start of a year's flows in its first month,
/// what is spread in twelve parts (`round(spread × m / 12) − round(spread × (m − 1) / 12)` cents, so
/// the year adds up exactly), the end in its last month.
pub fn monthly(years: &[[Flows; 4]]) -> Vec<Columns> {
    let mut out = Vec::with_capacity(years.len() * 12);
    let mut cum = Columns::default();
    for y in years {
        for m in 1..=12i128 {
            let part = |f: &Flows| {
                let spread = f.spread.cents();
                let mut a = Amount((div_round(spread * m, 12) - div_round(spread * (m - 1), 12)) * CENT);
                if m == 1 {
                    a += f.start;
                }
                if m == 12 {
                    a += f.end;
                }
                a
            };
            cum =
                cum.plus(Columns { own: part(&y[0]), payg: part(&y[1]), subscription: part(&y[2]), mix: part(&y[3]) });
            out.push(cum);
        }
    }
    out
}

/// The first month whose cumulative owning is below the cheapest way of renting's.
pub fn break_even(months: &[Columns], years: u32) -> BreakEven {
    let last = months.last().copied().unwrap_or_default();
    let against = Renting::ALL.into_iter().min_by_key(|r| last.rent(*r)).unwrap_or(Renting::Mix);
    let month = months.iter().position(|c| c.own < c.rent(against)).map(|i| i as u32 + 1);
    let (year, month_of_year) = match month {
        Some(m) => (Some((m - 1) / 12 + 1), Some((m - 1) % 12 + 1)),
        None => (None, None),
    };
    let summary = match (year, month_of_year) {
        (Some(1), Some(1)) => "owning is cheaper from the start".to_string(),
        (Some(y), Some(m)) => format!("year {y}, month {m}"),
        _ => format!("never within {years} years"),
    };
    BreakEven { against, month, year, month_of_year, difference: last.own - last.rent(against), summary }
}

/// Assembles the years into rows with present values and cumulative sums, and the break-evens.
pub struct Assembled {
    pub rows: Vec<YearRow>,
    pub terminal_value: TerminalValue,
    pub total: Columns,
    pub total_present_value: Columns,
    pub break_even: BreakEvens,
    pub monthly: Vec<MonthRow>,
}

/// `terminal_value` is owning's credit at the end of the last year.
pub fn assemble(years: Vec<YearFlows>, terminal_value: Amount, rate_micros: i128) -> Result<Assembled, TcoError> {
    let n = years.len() as u32;
    let mut rows = Vec::with_capacity(years.len());
    let (mut nominal, mut pv_flows) = (Vec::new(), Vec::new());
    let (mut cum, mut cum_pv) = (Columns::default(), Columns::default());
    for (i, y) in years.into_iter().enumerate() {
        let year = i as u32 + 1;
        let f = Factors::of(rate_micros, year);
        let flows = y.flows();
        let pv: [Flows; 4] = [
            flows[0].present_value(&f)?,
            flows[1].present_value(&f)?,
            flows[2].present_value(&f)?,
            flows[3].present_value(&f)?,
        ];
        let (total, present_value) = (columns(&flows), columns(&pv));
        cum = cum.plus(total);
        cum_pv = cum_pv.plus(present_value);
        let scenario = |k: usize, f: &Flows| Scenario {
            compute_subscription: f.start - y.extras.migration,
            compute_payg: f.spread - y.extras.spread(),
            extras: y.extras.spread() + y.extras.migration,
            total: f.total(),
            present_value: pv[k].total(),
        };
        let rent = RentYear {
            payg: scenario(1, &flows[1]),
            subscription: scenario(2, &flows[2]),
            mix: scenario(3, &flows[3]),
            by_type: y.by_type,
            extras: y.extras,
        };
        rows.push(YearRow {
            year,
            discount_factors: FactorsOut {
                start: format_factor(f.start),
                spread: format_factor(f.spread),
                end: format_factor(f.end),
            },
            own: OwnYearOut { year: y.own, present_value: present_value.own },
            rent,
            total,
            present_value,
            cumulative: cum,
            cumulative_present_value: cum_pv,
        });
        nominal.push(flows);
        pv_flows.push(pv);
    }
    let terminal = TerminalValue {
        amount: terminal_value,
        present_value: terminal_value.times_factor(Factors::of(rate_micros, n.max(1)).end)?,
    };
    // The credit falls at the end of the last month, after the last year's own flows.
    if let (Some(last), Some(last_pv)) = (nominal.last_mut(), pv_flows.last_mut()) {
        last[0].end = terminal.amount;
        last_pv[0].end = terminal.present_value;
    }
    let months = monthly(&nominal);
    let break_even = BreakEvens { nominal: break_even(&months, n), present_value: break_even(&monthly(&pv_flows), n) };
    Ok(Assembled {
        rows,
        terminal_value: terminal,
        total: Columns { own: cum.own + terminal.amount, ..cum },
        total_present_value: Columns { own: cum_pv.own + terminal.present_value, ..cum_pv },
        break_even,
        monthly: months.into_iter().enumerate().map(|(i, c)| MonthRow { month: i as u32 + 1, cumulative: c }).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// At 8 %: 1, 1/1.08, 1/1.08² at the starts; spread factors are the means of start and end.
    #[test]
    fn discount_factors_by_hand() {
        let f = |y| {
            let f = Factors::of(80_000, y);
            [format_factor(f.start), format_factor(f.spread), format_factor(f.end)]
        };
        assert_eq!(f(1), ["1.000000000000000000", "0.962962962962962963", "0.925925925925925926"]);
        // 1/1.08² = 0.857338820301783264…; spread = (0.925925… + 0.857338…) / 2 = 0.891632373113854595…
        assert_eq!(f(2), ["0.925925925925925926", "0.891632373113854595", "0.857338820301783265"]);
        let zero = Factors::of(0, 4);
        assert_eq!(
            (zero.start, zero.spread, zero.end),
            (crate::calc::FACTOR_ONE, crate::calc::FACTOR_ONE, crate::calc::FACTOR_ONE)
        );
    }

    fn flows(start: i128, spread: i128, end: i128) -> Flows {
        Flows { start: Amount(start * CENT), spread: Amount(spread * CENT), end: Amount(end * CENT) }
    }

    /// 100.00 spread over 12 months: 8.33, 8.34, 8.33, … adding up to exactly 100.00.
    #[test]
    fn months_split_a_year_exactly() {
        let y = [flows(500, 10_000, -100), flows(0, 0, 0), flows(0, 0, 0), flows(0, 0, 0)];
        let m = monthly(&[y]);
        let own: Vec<i128> = m.iter().map(|c| c.own.cents()).collect();
        assert_eq!(own[0], 500 + 833);
        assert_eq!(own[1], 500 + 1667);
        assert_eq!(own[11], 500 + 10_000 - 100);
    }

    #[test]
    fn break_even_cases() {
        let col = |own: i128, rent: i128| Columns {
            own: Amount(own),
            payg: Amount(rent + 5),
            subscription: Amount(rent + 1),
            mix: Amount(rent),
        };
        let months: Vec<Columns> = (1..=36).map(|m| col(1000 + 10 * m, 40 * m)).collect();
        // 1000 + 10m < 40m from m = 34 (1340 < 1360); m = 33: 1330 < 1320 is false... 1330 vs 1320.
        let b = break_even(&months, 3);
        assert_eq!((b.against, b.month, b.year, b.month_of_year), (Renting::Mix, Some(34), Some(3), Some(10)));
        assert_eq!(b.summary, "year 3, month 10");
        let never: Vec<Columns> = (1..=36).map(|m| col(1000 + 10 * m, 20 * m)).collect();
        assert_eq!(break_even(&never, 3).summary, "never within 3 years");
        let start: Vec<Columns> = (1..=36).map(|m| col(m, 20 * m)).collect();
        assert_eq!(break_even(&start, 3).summary, "owning is cheaper from the start");
    }
}
