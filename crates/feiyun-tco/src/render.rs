//! A report for people: a plain-text table, year by year, and an SVG chart of cumulative costs.

use std::fmt::Write as _;

use feiyun_sim::plot::{render, Bracket, Chart, Panel, Series, Style};

use crate::calc::{format_micros, Amount};
use crate::report::{BreakEven, Columns, Report, YearRow};

const LABEL: usize = 34;
const CELL: usize = 16;

fn percent(d: crate::calc::Decimal) -> String {
    format!("{}%", format_micros(d.0 * 100))
}

struct Table<'a> {
    out: String,
    rows: &'a [YearRow],
}

impl Table<'_> {
    fn heading(&mut self, text: &str) {
        let _ = writeln!(self.out, "{text}");
    }

    fn counts(&mut self, label: &str, f: impl Fn(&YearRow) -> u64) {
        let _ = write!(self.out, "  {label:<LABEL$}");
        for r in self.rows {
            let _ = write!(self.out, "{:>CELL$}", f(r));
        }
        let _ = writeln!(self.out);
    }

    /// A line of amounts and their total; all-zero lines are left out unless `always`.
    fn money(&mut self, label: &str, always: bool, total: bool, f: impl Fn(&YearRow) -> Amount) {
        let values: Vec<Amount> = self.rows.iter().map(&f).collect();
        if !always && values.iter().all(|v| *v == Amount::ZERO) {
            return;
        }
        let _ = write!(self.out, "  {label:<LABEL$}");
        for v in &values {
            let _ = write!(self.out, "{:>CELL$}", v.grouped());
        }
        if total {
            let _ = write!(self.out, "{:>CELL$}", values.iter().copied().sum::<Amount>().grouped());
        }
        let _ = writeln!(self.out);
    }

    /// A line with the Total column only: something of the horizon, not of any one year.
    fn horizon(&mut self, label: &str, amount: Amount) {
        let _ = write!(self.out, "  {label:<LABEL$}{:>w$}", "", w = CELL * self.rows.len());
        let _ = writeln!(self.out, "{:>CELL$}", amount.grouped());
    }

    /// The four cumulative columns as lines (no total: it would be meaningless).
    fn cumulative(&mut self, title: &str, f: impl Fn(&YearRow) -> Columns) {
        self.heading(title);
        self.money("own (paid)", true, false, |r| f(r).own);
        self.money("rent, pay-as-you-go", true, false, |r| f(r).payg);
        self.money("rent, subscription", true, false, |r| f(r).subscription);
        self.money("rent, mix", true, false, |r| f(r).mix);
    }
}

fn break_even_line(label: &str, b: &BreakEven) -> String {
    let diff = if b.difference < Amount::ZERO {
        format!("owning saves {} over the horizon", (-b.difference).grouped())
    } else {
        format!("owning costs {} more over the horizon", b.difference.grouped())
    };
    format!("Break-even ({label}, against renting as {}): {}; {diff}", b.against.name(), b.summary)
}

/// The report as a fixed-width table (amounts with thousands separators, two decimals).
pub fn table(r: &Report) -> String {
    let mut t = Table { out: String::new(), rows: &r.by_year };
    let _ = writeln!(
        t.out,
        "Own data center vs renting on Feiyun, {} years, {} (region {})",
        r.years, r.currency, r.region
    );
    let _ = writeln!(
        t.out,
        "Workload: {} ({} h period, repeated all year); growth {} a year; cost of capital {}",
        r.workload.source,
        r.workload.period_hours,
        percent(r.growth),
        percent(r.cost_of_capital)
    );
    let s = &r.servers;
    let packed = s.scheduler.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(", ");
    let used = if s.sized_by == "plan" { "; the plan's own.servers.count is used instead" } else { "" };
    let _ = writeln!(
        t.out,
        "Servers: {} vCPUs, {} GiB, {} GPUs each; the scheduler packs each year's workload onto {packed}{used}; plus {} spare(s)",
        s.vcpus, s.memory_gib, s.gpus, s.spares
    );
    let _ = writeln!(
        t.out,
        "Subscription ({}): {} h a month, {} off a month, {} off a year; the mix subscribes a level used over {} h a year",
        r.subscription_terms_from,
        r.subscription_terms.hours_per_month,
        percent(r.subscription_terms.month_discount),
        percent(r.subscription_terms.year_discount),
        r.subscribe_above_hours
    );
    let _ = writeln!(t.out);
    let _ = write!(t.out, "  {:<LABEL$}", "");
    for row in &r.by_year {
        let _ = write!(t.out, "{:>CELL$}", format!("Year {}", row.year));
    }
    let _ = writeln!(t.out, "{:>CELL$}", "Total");

    t.heading("Own");
    t.counts("servers in service", |y| y.own.year.servers_in_service);
    t.counts("servers bought", |y| y.own.year.servers_bought);
    t.money("servers", false, true, |y| y.own.year.capex.servers);
    t.money("storage", false, true, |y| y.own.year.capex.storage);
    t.money("switches", false, true, |y| y.own.year.capex.switches);
    t.money("racks", false, true, |y| y.own.year.capex.racks);
    t.money("disaster recovery (capex)", false, true, |y| y.own.year.capex.dr);
    t.money("resale at end of life", false, true, |y| y.own.year.resale);
    t.money("power", false, true, |y| y.own.year.opex.power);
    t.money("colocation", false, true, |y| y.own.year.opex.colocation);
    t.money("bandwidth", false, true, |y| y.own.year.opex.bandwidth);
    t.money("staff", false, true, |y| y.own.year.opex.staff);
    t.money("licences", false, true, |y| y.own.year.opex.licences);
    t.money("disaster recovery (running)", false, true, |y| y.own.year.opex.dr);
    t.money("migration", false, true, |y| y.own.year.migration);
    t.money("total", true, true, |y| y.total.own);
    if r.terminal_value.amount != Amount::ZERO {
        t.horizon(&format!("terminal value, end of year {}", r.years), r.terminal_value.amount);
        t.horizon("total, net of terminal value", r.total.own);
    }

    t.heading("Rent on Feiyun");
    if let Some(first) = r.by_year.first() {
        for (i, ty) in first.rent.by_type.iter().enumerate() {
            t.counts(&format!("{} at peak", ty.instance_type), |y| y.rent.by_type.get(i).map_or(0, |x| x.peak));
            t.counts(&format!("{} subscribed in mix", ty.instance_type), |y| {
                y.rent.by_type.get(i).map_or(0, |x| x.subscribed)
            });
        }
    }
    t.money("compute, pay-as-you-go", true, true, |y| y.rent.payg.compute_payg);
    t.money("compute, subscription", true, true, |y| y.rent.subscription.compute_subscription);
    t.money("compute, mix: subscribed part", true, true, |y| y.rent.mix.compute_subscription);
    t.money("compute, mix: by the second", true, true, |y| y.rent.mix.compute_payg);
    t.money("bandwidth", false, true, |y| y.rent.extras.bandwidth);
    t.money("disks", false, true, |y| y.rent.extras.disk);
    t.money("staff", false, true, |y| y.rent.extras.staff);
    t.money("migration", false, true, |y| y.rent.extras.migration);
    t.money("total, pay-as-you-go", true, true, |y| y.total.payg);
    t.money("total, subscription", true, true, |y| y.total.subscription);
    t.money("total, mix", true, true, |y| y.total.mix);

    t.heading("Present value (discounted at the cost of capital)");
    t.money("own", true, true, |y| y.present_value.own);
    if r.terminal_value.amount != Amount::ZERO {
        t.horizon("own: terminal value", r.terminal_value.present_value);
        t.horizon("own, net of terminal value", r.total_present_value.own);
    }
    t.money("rent, pay-as-you-go", true, true, |y| y.present_value.payg);
    t.money("rent, subscription", true, true, |y| y.present_value.subscription);
    t.money("rent, mix", true, true, |y| y.present_value.mix);
    t.cumulative("Cumulative", |y| y.cumulative);
    t.cumulative("Cumulative present value", |y| y.cumulative_present_value);
    let mut out = t.out;
    let _ = writeln!(out);
    let _ = writeln!(out, "{}", break_even_line("nominal", &r.break_even.nominal));
    let _ = writeln!(out, "{}", break_even_line("present value", &r.break_even.present_value));
    out
}

/// Amounts paid at the start and at the end of a year, per column: they are drawn as steps.
fn jumps(r: &Report, row: &YearRow) -> (Columns, Columns) {
    let (own, rent) = (&row.own.year, &row.rent);
    let start = Columns {
        own: own.upfront(),
        payg: rent.payg.compute_subscription + rent.extras.migration,
        subscription: rent.subscription.compute_subscription + rent.extras.migration,
        mix: rent.mix.compute_subscription + rent.extras.migration,
    };
    let terminal = if row.year == r.years { r.terminal_value.amount } else { Amount::ZERO };
    let end = Columns { own: terminal, ..Columns::default() };
    (start, end)
}

/// Cumulative nominal cost of owning and of each way of renting, month by month, in thousands;
/// what is paid at the start of a year is a vertical step, and so is the terminal value at the
/// end, which is named on the chart.
pub fn chart(r: &Report) -> String {
    let thousands = |a: Amount| a.to_f64_for_chart() / 1000.0;
    let line = |f: fn(&Columns) -> Amount| {
        let mut points = vec![(0.0, 0.0)];
        let mut before = Amount::ZERO;
        for (y, row) in r.by_year.iter().enumerate() {
            let (start, end) = jumps(r, row);
            let x0 = y as f64;
            points.push((x0, thousands(before + f(&start))));
            for m in 1..=12usize {
                let Some(month) = r.monthly.get(y * 12 + m - 1) else { break };
                let v = f(&month.cumulative);
                let x = x0 + m as f64 / 12.0;
                if m == 12 && f(&end) != Amount::ZERO {
                    points.push((x, thousands(v - f(&end))));
                }
                points.push((x, thousands(v)));
                before = v;
            }
        }
        points
    };
    let series = vec![
        Series::new("own", line(|c| c.own)).styled(Style::new("#1f77b4", "", 2.2)),
        Series::new("rent, pay-as-you-go", line(|c| c.payg)).styled(Style::new("#d62728", "7 3", 1.6)),
        Series::new("rent, subscription", line(|c| c.subscription)).styled(Style::new("#2ca02c", "12 3 3 3", 1.6)),
        Series::new("rent, mix", line(|c| c.mix)).styled(Style::new("#ff7f0e", "3 3", 1.8)),
    ];
    let mut panel = Panel::new("", format!("cumulative cost (thousand {})", r.currency), series, 400.0);
    let terminal = r.terminal_value.amount;
    if terminal != Amount::ZERO {
        let net = thousands(r.total.own);
        panel.brackets.push(Bracket {
            x: f64::from(r.years),
            y0: net - thousands(terminal),
            y1: net,
            lines: vec![
                "terminal value".to_string(),
                format!("{} {}:", terminal.grouped(), r.currency),
                "hardware still owned,".to_string(),
                "at book value".to_string(),
                format!("net total {}", r.total.own.grouped()),
            ],
        });
    }
    let mut chart = Chart::new(
        format!("Cumulative cost, own vs rent on Feiyun, {} years ({})", r.years, r.currency),
        "years",
        vec![panel],
    );
    chart.subtitle = break_even_line("nominal", &r.break_even.nominal);
    chart.right_margin = 180.0;
    render(&chart)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> Report {
        let catalog = feiyun_domain::catalog::Catalog::from_toml(include_str!("../../../catalog/instance-types.toml"))
            .expect("catalog");
        let prices = crate::PriceBook::from_toml(include_str!("../../../catalog/prices.toml")).expect("prices");
        crate::evaluate(include_str!("../../../docs/tco-example.toml"), &prices, "cn-local", &catalog, None)
            .expect("the example evaluates")
    }

    /// The drop at the end of the own line is named, with its amount and what is left.
    #[test]
    fn the_chart_labels_the_terminal_value() {
        let svg = chart(&example());
        for text in [">terminal value<", ">-275,880.00 CNY:<", ">at book value<", ">net total 1,318,077.28<"] {
            assert!(svg.contains(text), "{text}");
        }
        assert!(svg.contains("year 2, month 1"), "break-even in the subtitle");
        for (name, dash) in [("own", None), ("rent, pay-as-you-go", Some("7 3")), ("rent, mix", Some("3 3"))] {
            let legend = svg.lines().find(|l| l.ends_with(&format!(">{name}</text>"))).expect(name);
            assert_eq!(legend.split("stroke-dasharray=\"").nth(1).map(|d| &d[..d.find('"').unwrap_or(0)]), dash);
        }
    }

    /// The table shows the terminal value in the Total column only, never in a year.
    #[test]
    fn the_table_keeps_the_terminal_value_out_of_the_years() {
        let text = table(&example());
        let line = text.lines().find(|l| l.trim_start().starts_with("terminal value")).expect("terminal value line");
        let amounts: Vec<&str> = line.split_whitespace().filter(|w| w.ends_with(".00")).collect();
        assert_eq!(amounts, ["-275,880.00"], "{line}");
        assert_eq!(line.len(), text.lines().find(|l| l.contains("Total")).map_or(0, str::len), "in the Total column");
        assert!(text.contains("total, net of terminal value") && text.contains("1,318,077.28"));
    }
}
