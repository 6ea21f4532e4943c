//! Total cost of ownership: an own data center against renting the same workload on Feiyun.
//!
//! Owns the plan format ([`plan::Plan`]), the subscription terms ([`terms::SubscriptionTerms`]),
//! the workload as concurrency curves per instance type ([`workload`]), the three ways of renting
//! priced from the region's price book ([`rent`]), owning with servers sized by the real
//! scheduler ([`own`]), present values and the break-even point ([`report`]), and a table and an
//! SVG chart of the result ([`render`]). `docs/tco.md` states every formula.
//!
//! Money is never a float: amounts are integer micro-units, decimals in the plan are strings, and
//! every division rounds half away from zero at a documented place ([`calc`]). The only float is
//! a chart's pixel coordinates.
//!
//! Must not: read the clock, files or the network, or draw randomness — a plan, a price book, a
//! catalog and an optional trace go in, a [`Report`] comes out, the same every time.
#![forbid(unsafe_code)]

pub mod calc;
pub mod own;
pub mod plan;
pub mod render;
pub mod rent;
pub mod report;
pub mod terms;
pub mod workload;

pub use feiyun_billing::prices::PriceBook;
use feiyun_billing::prices::PriceError;
use feiyun_domain::catalog::Catalog;
use feiyun_sim::TraceRequest;

use calc::{div_round, format_micros, MICRO};
pub use plan::Plan;
pub use render::{chart, table};
pub use report::Report;
use report::{ServerSizing, TypeSummary, WorkloadSummary, YearFlows};
pub use terms::SubscriptionTerms;

#[derive(Debug, thiserror::Error)]
pub enum TcoError {
    #[error("Plan is not valid: {0}")]
    Parse(String),
    #[error("Plan field {field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error(transparent)]
    Prices(#[from] PriceError),
    #[error("No workload: add [[workload]] entries to the plan or give a trace")]
    NoWorkload,
    #[error("The plan has [[workload]] entries and a trace was given; use one or the other")]
    TwoWorkloads,
    #[error("Trace: {0}")]
    Trace(String),
    #[error("Amounts or counts too large to compute exactly")]
    TooLarge,
}

impl TcoError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> TcoError {
        TcoError::Invalid { field: field.into(), reason: reason.into() }
    }
}

/// Parses `plan_text` and compares owning with renting in `region` of `prices`. The workload is
/// the plan's `[[workload]]` entries or, instead, `trace`.
pub fn evaluate(
    plan_text: &str,
    prices: &PriceBook,
    region: &str,
    catalog: &Catalog,
    trace: Option<&[TraceRequest]>,
) -> Result<Report, TcoError> {
    evaluate_plan(&Plan::from_toml(plan_text)?, prices, region, catalog, trace)
}

/// [`evaluate`] for a plan already parsed.
pub fn evaluate_plan(
    plan: &Plan,
    prices: &PriceBook,
    region: &str,
    catalog: &Catalog,
    trace: Option<&[TraceRequest]>,
) -> Result<Report, TcoError> {
    plan.validate()?;
    let book = prices.region(region)?;
    if book.currency != plan.currency {
        return Err(TcoError::invalid(
            "currency",
            format!("the price book of {region} is in {}, the plan in {}", book.currency, plan.currency),
        ));
    }
    let workload = match (plan.workload.is_empty(), trace) {
        (false, Some(_)) => return Err(TcoError::TwoWorkloads),
        (true, None) => return Err(TcoError::NoWorkload),
        (false, None) => workload::steady(plan, catalog, book)?,
        (true, Some(t)) => workload::from_trace(plan, catalog, book, t)?,
    };

    let growth = |year| rent::Growth::of(plan.growth.0, year);
    let scheduler = own::size(plan, &workload)?;
    let servers = &plan.own.servers;
    let needed: Vec<u64> = match servers.count {
        Some(c) => (1..=plan.years).map(|y| growth(y).scale(c)).collect::<Result<_, _>>()?,
        None => scheduler.clone(),
    };
    let needed: Vec<u64> = needed.iter().map(|n| n.saturating_add(servers.spares)).collect();
    let own_years = own::years(plan, &needed)?;

    let (terms, terms_from) = match &plan.rent.subscription {
        Some(t) => (*t, "plan"),
        None => (SubscriptionTerms::from_book(&book.subscription), "price book"),
    };
    terms.validate("the price book's subscription terms")?;
    let terms = &terms;
    let mut years = Vec::with_capacity(own_years.years.len());
    for (i, own) in own_years.years.into_iter().enumerate() {
        let year = i as u32 + 1;
        let by_type = workload
            .usages
            .iter()
            .map(|u| rent::type_year(u, workload.period_ms, growth(year), terms))
            .collect::<Result<Vec<_>, _>>()?;
        years.push(YearFlows { own, by_type, extras: rent::extras(plan, book, year)? });
    }
    let assembled = report::assemble(years, own_years.terminal_value, plan.cost_of_capital.0)?;

    let instance_types = workload
        .usages
        .iter()
        .map(|u| TypeSummary {
            instance_type: u.instance_type.clone(),
            vcpus: u.vcpus,
            memory_gib: format_micros(div_round(i128::from(u.memory_mib) * MICRO, 1024)),
            gpus: u.gpus,
            hourly_price: format_micros(u.hourly),
            year_subscription_price: format_micros(div_round(u.hourly * terms.year_hours_micros(), MICRO)),
        })
        .collect();
    Ok(Report {
        currency: plan.currency.clone(),
        region: region.to_string(),
        years: plan.years,
        cost_of_capital: plan.cost_of_capital,
        growth: plan.growth,
        subscription_terms: *terms,
        subscription_terms_from: terms_from,
        subscribe_above_hours: format_micros(terms.year_hours_micros()),
        workload: WorkloadSummary {
            source: if workload.trace.is_some() { "trace" } else { "steady" },
            period_hours: format_micros(div_round(i128::from(workload.period_ms) * MICRO, 3_600_000)),
            trace: workload.trace.clone(),
            instance_types,
        },
        servers: ServerSizing {
            vcpus: servers.vcpus,
            memory_gib: servers.memory_gib,
            gpus: servers.gpus,
            spares: servers.spares,
            sized_by: if servers.count.is_some() { "plan" } else { "scheduler" },
            scheduler,
        },
        by_year: assembled.rows,
        terminal_value: assembled.terminal_value,
        total: assembled.total,
        total_present_value: assembled.total_present_value,
        break_even: assembled.break_even,
        monthly: assembled.monthly,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calc::Amount;
    use crate::plan::tests::MINIMAL;

    fn shipped() -> (Catalog, PriceBook) {
        let catalog = Catalog::from_toml(include_str!("../../../catalog/instance-types.toml")).expect("catalog");
        let prices = PriceBook::from_toml(include_str!("../../../catalog/prices.toml")).expect("prices");
        (catalog, prices)
    }

    fn without_workload() -> String {
        MINIMAL.replace("[[workload]]\ninstance_type = \"ecs.g7.large\"\ncount = 10\n", "")
    }

    /// `n` ecs.g7.large requests from `from` to `to` seconds of the day.
    fn requests(n: usize, from: u64, to: u64) -> Vec<TraceRequest> {
        let mut r = TraceRequest::new(from * 1000, Some((to - from) * 1000), 2000, 8192);
        r.instance_type = Some("ecs.g7.large".into());
        vec![r; n]
    }

    fn compute(report: &Report) -> [String; 4] {
        let t = &report.by_year[0].rent.by_type[0];
        [t.payg, t.subscription, t.mix_subscription, t.mix_payg].map(|a| a.to_string())
    }

    /// The same peak of 8 instances, flat all day or 2 running all day with 6 more for 2 hours:
    /// owning needs the same one server either way, but renting prices the idle time.
    ///
    /// Flat: 8 × 8,760 h × 0.5296 = 37,114.368 → 37,114.37 by the second; 8 × 3,943.4016 = 31,547.21 on
    /// subscription; the mix subscribes all 8 levels. Peaky: (8 × 2 + 2 × 22) × 365 = 21,900 h →
    /// 11,598.24 by the second, still 31,547.21 on subscription; the mix subscribes the 2 levels
    /// running all day (7,886.80) and pays 6 × 730 h × 0.5296 = 2,319.65 by the second.
    #[test]
    fn a_trace_prices_peaks_and_idle_time() {
        let (catalog, prices) = shipped();
        let plan = Plan::from_toml(&without_workload()).expect("plan");
        let flat = requests(8, 0, 86_400);
        let mut peaky = requests(2, 0, 86_400);
        peaky.extend(requests(6, 9 * 3600, 11 * 3600));

        let f = evaluate_plan(&plan, &prices, "cn-local", &catalog, Some(&flat)).expect("flat");
        assert_eq!(compute(&f), ["37114.37", "31547.21", "31547.21", "0.00"]);
        let p = evaluate_plan(&plan, &prices, "cn-local", &catalog, Some(&peaky)).expect("peaky");
        assert_eq!(compute(&p), ["11598.24", "31547.21", "7886.80", "2319.65"]);
        assert_eq!(p.by_year[0].rent.by_type[0].subscribed, 2);
        assert_eq!(p.workload.source, "trace");
        assert_eq!(p.workload.period_hours, "24");

        // Flat: subscription is the cheapest pure way; peaky: pay-as-you-go is, and the mix beats both.
        let (fy, py) = (&f.by_year[0].total, &p.by_year[0].total);
        assert!(fy.subscription < fy.payg && fy.mix == fy.subscription);
        assert!(py.payg < py.subscription && py.mix < py.payg);
        // Owning does not care: one 32-vCPU server holds the peak of 16 vCPUs either way.
        assert_eq!(f.servers.scheduler, vec![1, 1, 1]);
        assert_eq!(p.servers.scheduler, vec![1, 1, 1]);
        assert_eq!(f.by_year[0].total.own, p.by_year[0].total.own);
    }

    #[test]
    fn workload_errors() {
        let (catalog, prices) = shipped();
        let steady = Plan::from_toml(MINIMAL).expect("plan");
        let empty = Plan::from_toml(&without_workload()).expect("plan");
        let trace = requests(1, 0, 3600);
        let eval = |p: &Plan, region: &str, t: Option<&[TraceRequest]>| {
            evaluate_plan(p, &prices, region, &catalog, t).expect_err("fails").to_string()
        };
        assert!(eval(&steady, "cn-local", Some(&trace)).contains("use one or the other"));
        assert!(eval(&empty, "cn-local", None).contains("No workload"));
        assert!(eval(&steady, "cn-nowhere", None).contains("cn-nowhere"));
        let mut usd = steady.clone();
        usd.currency = "USD".into();
        assert!(eval(&usd, "cn-local", None).contains("Plan field currency"));
        let mut small = steady.clone();
        small.own.servers.vcpus = 1;
        let e = eval(&small, "cn-local", None);
        assert!(e.contains("own.servers") && e.contains("do not fit on one server"), "{e}");
        let mut disk = steady.clone();
        disk.rent.disk = Some(plan::RentDisk { category: "floppy".into(), gib: 1 });
        assert!(eval(&disk, "cn-local", None).contains("rent.disk.category"));
        let e = evaluate(&MINIMAL.replace("ecs.g7.large", "ecs.nope"), &prices, "cn-local", &catalog, None)
            .expect_err("unknown type")
            .to_string();
        assert_eq!(e, "Plan field workload[0].instance_type: unknown instance type \"ecs.nope\"");
    }

    /// 3,000 g7.large bought in year 1 on 5-year servers: at the end of year 3 they are worth far
    /// more than a year of running them. That value is credited once, against the horizon, and
    /// never turns the last year negative.
    #[test]
    fn the_terminal_value_is_credited_once_not_as_a_negative_year() {
        let (catalog, prices) = shipped();
        let r = evaluate(&MINIMAL.replace("count = 10", "count = 3000"), &prices, "cn-local", &catalog, None)
            .expect("report");
        let last = &r.by_year[2];
        assert!(-r.terminal_value.amount > last.own.year.total, "the case this guards against");
        for y in &r.by_year {
            assert!(y.total.own > Amount::ZERO && y.present_value.own > Amount::ZERO, "year {}", y.year);
        }
        let paid: Amount = r.by_year.iter().map(|y| y.total.own).sum();
        assert_eq!(last.cumulative.own, paid);
        assert_eq!(r.total.own, paid + r.terminal_value.amount);
        let paid_pv: Amount = r.by_year.iter().map(|y| y.present_value.own).sum();
        assert_eq!(r.total_present_value.own, paid_pv + r.terminal_value.present_value);
        assert_eq!(r.monthly.last().map(|m| m.cumulative.own), Some(r.total.own));
    }

    /// Staff that grows with the fleet: 1 FTE plus one per 3 servers in service, 4 servers:
    /// (1 + 4 / 3) × 100,000 = 233,333.33, rounded once.
    #[test]
    fn staff_can_grow_with_the_fleet() {
        let (catalog, prices) = shipped();
        let text = MINIMAL.replace("vcpus = 32", "count = 3\nspares = 1\nvcpus = 32")
            + "\n[own.staff]\nfte = \"1\"\nservers_per_fte = 3\ncost_per_fte = \"100000\"\n";
        let r = evaluate(&text, &prices, "cn-local", &catalog, None).expect("report");
        assert_eq!(r.by_year[0].own.year.servers_in_service, 4);
        assert_eq!(r.by_year[0].own.year.opex.staff.to_string(), "233333.33");
        let fixed = text.replace("servers_per_fte = 3\n", "");
        let r = evaluate(&fixed, &prices, "cn-local", &catalog, None).expect("report");
        assert_eq!(r.by_year[0].own.year.opex.staff.to_string(), "100000.00");
        let e =
            evaluate(&text.replace("servers_per_fte = 3", "servers_per_fte = 0"), &prices, "cn-local", &catalog, None)
                .expect_err("zero")
                .to_string();
        assert!(e.contains("own.staff.servers_per_fte"), "{e}");
    }

    /// Explicit server counts are grown like the workload; spares are added on top.
    #[test]
    fn planned_servers_grow_and_spares_are_added() {
        let (catalog, prices) = shipped();
        let text = MINIMAL
            .replace("vcpus = 32", "count = 3\nspares = 1\nvcpus = 32")
            .replace("cost_of_capital = \"0\"", "cost_of_capital = \"0\"\ngrowth = \"0.5\"");
        let r = evaluate(&text, &prices, "cn-local", &catalog, None).expect("report");
        let needed: Vec<u64> = r.by_year.iter().map(|y| y.own.year.servers_needed).collect();
        // 3, 4.5 → 5, 6.75 → 7; plus one spare.
        assert_eq!(needed, vec![4, 6, 8]);
        assert_eq!(r.servers.sized_by, "plan");
        // The scheduler's view is still reported: 10, 15, 23 g7.large on 32-vCPU servers.
        assert_eq!(r.servers.scheduler, vec![1, 1, 2]);
    }
}

/// docs/tco.md works `docs/tco-example.toml` through by hand; this keeps the two in step.
#[cfg(test)]
mod worked_example {
    use super::*;
    use crate::calc::Amount;

    const DOC: &str = include_str!("../../../docs/tco.md");
    const PLAN: &str = include_str!("../../../docs/tco-example.toml");

    fn report() -> Report {
        let catalog = Catalog::from_toml(include_str!("../../../catalog/instance-types.toml")).expect("catalog");
        let prices = PriceBook::from_toml(include_str!("../../../catalog/prices.toml")).expect("prices");
        evaluate(PLAN, &prices, "cn-local", &catalog, None).expect("the example evaluates")
    }

    /// `got` is the hand-computed `want` (written as in the doc: thousands separated, whole
    /// amounts without cents), and the doc states `want`.
    fn check(what: &str, got: impl ToString, want: &str) {
        let plain = want.replace(',', "");
        let got = got.to_string();
        let got = if plain.contains('.') { got.as_str() } else { got.trim_end_matches(".00") };
        assert_eq!(got, plain, "{what}");
        assert!(DOC.contains(want), "docs/tco.md does not state {what} = {want}");
    }

    fn a(x: Amount) -> String {
        x.to_string()
    }

    #[test]
    fn the_doc_prints_what_the_command_prints() {
        let marker = "<!-- tco-example-output -->\n```text\n";
        let start = DOC.find(marker).expect("marker in docs/tco.md") + marker.len();
        let end = start + DOC[start..].find("```\n").expect("end of block");
        assert_eq!(&DOC[start..end], table(&report()), "rerun `feiyun tco --input docs/tco-example.toml` into the doc");
    }

    #[test]
    fn every_number_of_the_worked_example() {
        let r = report();
        let ty = &r.workload.instance_types[0];
        check("hourly price", &ty.hourly_price, "0.5296");
        check("yearly subscription of one instance", &ty.year_subscription_price, "3,943.4016");
        check("subscription hours a year", &r.subscribe_above_hours, "7,446");

        let hours = ["1,051,200", "1,156,320", "1,274,580"];
        let peaks = [140, 154, 170];
        let subscribed = [100, 110, 121];
        let payg = ["556,715.52", "612,387.07", "675,017.57"];
        let sub = ["552,076.22", "607,283.85", "670,378.27"];
        let mix_sub = ["394,340.16", "433,774.18", "477,151.59"];
        let mix_payg = ["92,785.92", "102,064.51", "113,662.75"];
        for (i, y) in r.by_year.iter().enumerate() {
            let t = &y.rent.by_type[0];
            check("instance-hours", &t.instance_hours, hours[i]);
            assert_eq!((t.peak, t.subscribed), (peaks[i], subscribed[i]), "year {}", i + 1);
            check("pay-as-you-go", a(t.payg), payg[i]);
            check("subscription", a(t.subscription), sub[i]);
            check("mix, subscribed", a(t.mix_subscription), mix_sub[i]);
            check("mix, by the second", a(t.mix_payg), mix_payg[i]);
            let e = &y.rent.extras;
            check("rent bandwidth", a(e.bandwidth), "101,309.40");
            check("rent disk", a(e.disk), "124,686.34");
            check("rent staff", a(e.staff), "30,000.00");
            check("rent spread extras", a(e.spread()), "255,995.74");
        }
        let rent_totals = [
            ["822,711.26", "818,071.96", "753,121.82"],
            ["868,382.81", "863,279.59", "791,834.43"],
            ["931,013.31", "926,374.01", "846,810.08"],
        ];
        for (y, want) in r.by_year.iter().zip(rent_totals) {
            check("rent pay-as-you-go", a(y.total.payg), want[0]);
            check("rent subscription", a(y.total.subscription), want[1]);
            check("rent mix", a(y.total.mix), want[2]);
        }

        assert_eq!(r.servers.scheduler, vec![5, 5, 6]);
        let own: Vec<&own::OwnYear> = r.by_year.iter().map(|y| &y.own.year).collect();
        assert_eq!(
            own.iter().map(|o| (o.servers_in_service, o.servers_bought)).collect::<Vec<_>>(),
            [(6, 6), (6, 0), (7, 1)]
        );
        assert!(own.iter().all(|o| o.switches_in_service == 2 && o.racks_in_service == 1));
        let c = &own[0].capex;
        check("servers", a(c.servers), "360,000");
        check("storage", a(c.storage), "60,000");
        check("switches", a(c.switches), "30,000");
        check("DR capex", a(c.dr), "45,000");
        check("capex", a(c.total), "495,000");
        check("year-3 capex", a(own[2].capex.total), "66,000");
        assert!(own.iter().all(|o| o.resale == Amount::ZERO));
        for (o, power, licences, dr, total) in [
            (own[0], "34,689.60", "17,000.00", "21,968.96", "331,658.56"),
            (own[2], "39,945.60", "19,000.00", "22,694.56", "339,640.16"),
        ] {
            check("power", a(o.opex.power), power);
            check("colocation", a(o.opex.colocation), "48,000.00");
            check("bandwidth", a(o.opex.bandwidth), "60,000.00");
            check("staff", a(o.opex.staff), "150,000.00");
            check("licences", a(o.opex.licences), licences);
            check("DR running", a(o.opex.dr), dr);
            check("running costs", a(o.opex.total), total);
        }
        check("migration", a(own[0].migration), "30,000");
        for (o, want) in own.iter().zip(["856,658.56", "331,658.56", "405,640.16"]) {
            check("owning total", a(o.total), want);
        }
        check("paid over the horizon", a(r.by_year[2].cumulative.own), "1,593,957.28");
        check("terminal value", a(r.terminal_value.amount), "-275,880.00");
        check("terminal value, present value", a(r.terminal_value.present_value), "-219,002.44");

        let pv = |y: usize| &r.by_year[y].present_value;
        check("own PV year 1", a(pv(0).own), "844,374.91");
        check("own PV year 3", a(pv(2).own), "336,986.36");
        check("mix PV year 2", a(pv(1).mix), "720,900.87");
        let f = &r.by_year[2].discount_factors;
        check("start factor year 3", &f.start, "0.857338820301783265");
        check("spread factor year 3", &f.spread, "0.825585530660976477");
        check("end factor year 3", &f.end, "0.793832241020169690");

        for (got, want) in [
            (r.total.own, "1,318,077.28"),
            (r.total.payg, "2,622,107.38"),
            (r.total.subscription, "2,607,725.56"),
            (r.total.mix, "2,391,766.33"),
            (r.total_present_value.own, "1,258,076.34"),
            (r.total_present_value.payg, "2,335,520.19"),
            (r.total_present_value.subscription, "2,385,232.29"),
            (r.total_present_value.mix, "2,175,370.13"),
        ] {
            check("total", a(got), want);
        }

        let m = |i: usize| &r.monthly[i].cumulative;
        check("own after month 12", a(m(11).own), "856,658.56");
        check("mix after month 12", a(m(11).mix), "753,121.82");
        check("own after month 13", a(m(12).own), "884,296.77");
        check("mix after month 13", a(m(12).mix), "1,216,734.35");
        assert_eq!(r.monthly.len(), 36);
        assert_eq!(m(35), &r.total, "the months add up to the years");
        for b in [&r.break_even.nominal, &r.break_even.present_value] {
            assert_eq!((b.against, b.year, b.month_of_year), (report::Renting::Mix, Some(2), Some(1)));
        }
        assert_eq!(r.break_even.nominal.summary, "year 2, month 1");
        assert!(DOC.contains("break-even is year 2, month 1"));
        check("saving", a(-r.break_even.nominal.difference), "1,073,689.05");
        check("saving in present value", a(-r.break_even.present_value.difference), "917,293.79");
    }
}
