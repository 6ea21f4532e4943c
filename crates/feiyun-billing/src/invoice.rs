//! Bills of a period: usage lines per instance and billable item, and the readable monthly
//! invoice (text and CSV) that puts them beside the ledger.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use feiyun_domain::usage::{Charge, LedgerEntry, LedgerKind, StorageUsage, TrafficUsage, UsageEvent};

use crate::account::{payments, position, Paid};
use crate::metering::{intervals, storage_intervals, Item};
use crate::money::{format_cents, Money};
use crate::prices::{RegionPrices, TypeSize};
use crate::rating::{charge, Market, RatingError};
use crate::traffic;

/// `[start, end)` in unix seconds of a billing cycle `YYYY-MM` (UTC).
pub fn month_bounds(cycle: &str) -> Option<(i64, i64)> {
    let (y, m) = cycle.split_once('-')?;
    if y.len() != 4 || m.len() != 2 {
        return None;
    }
    let (y, m): (i32, u32) = (y.parse().ok()?, m.parse().ok()?);
    let start = NaiveDate::from_ymd_opt(y, m, 1)?;
    let end = if m == 12 { NaiveDate::from_ymd_opt(y + 1, 1, 1)? } else { NaiveDate::from_ymd_opt(y, m + 1, 1)? };
    Some((start.and_hms_opt(0, 0, 0)?.and_utc().timestamp(), end.and_hms_opt(0, 0, 0)?.and_utc().timestamp()))
}

/// `[start, end)` of a day `YYYY-MM-DD` (UTC).
pub fn day_bounds(date: &str) -> Option<(i64, i64)> {
    let d = NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
    if date.len() != 10 {
        return None;
    }
    let s = d.and_hms_opt(0, 0, 0)?.and_utc().timestamp();
    Some((s, s + 86_400))
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn iso(t: i64) -> String {
    Utc.timestamp_opt(t, 0)
        .single()
        .map(|d: DateTime<Utc>| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// The billing cycle (`YYYY-MM`) a second falls in.
pub fn cycle_of(t: i64) -> String {
    Utc.timestamp_opt(t, 0).single().map(|d| format!("{:04}-{:02}", d.year(), d.month())).unwrap_or_default()
}

/// Usage of one instance and item within a period, rated exactly.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub account_id: String,
    pub instance_id: String,
    pub item: Item,
    pub charge: Charge,
    pub instance_type: String,
    pub zone_id: String,
    pub disk_category: String,
    pub disk_gib: u64,
    /// First and last second of use inside the period.
    pub start_s: i64,
    pub end_s: i64,
    pub seconds: i64,
    /// Public bytes sent out (traffic lines only).
    pub out_bytes: u64,
    pub amount: Money,
}

/// The usage logs of one account (or several) that bills are rated from.
#[derive(Debug, Clone, Copy, Default)]
pub struct Logs<'a> {
    pub events: &'a [UsageEvent],
    /// Data disks and snapshots.
    pub storage: &'a [StorageUsage],
    /// Public traffic, per instance.
    pub traffic: &'a [TrafficUsage],
}

/// Usage lines of `[from_s, to_s)`, one per (instance, item) — data disks and snapshots one per
/// resource — from the whole usage logs (an interval that began before the period is cut at its
/// start). Public traffic is a line per instance with the bytes of the clock hours that start in
/// the period, priced as settlement prices them. Ordered by instance (or resource) id, then item.
pub fn lines(
    logs: Logs<'_>,
    from_s: i64,
    to_s: i64,
    prices: &RegionPrices,
    size: &dyn Fn(&str) -> Option<TypeSize>,
    market: &Market,
) -> Result<Vec<Line>, RatingError> {
    let mut by: BTreeMap<(String, Item), Line> = BTreeMap::new();
    for iv in intervals(logs.events, to_s).into_iter().chain(storage_intervals(logs.storage, to_s)) {
        let Some(iv) = iv.clip(from_s, to_s) else { continue };
        let m = charge(&iv, prices, size, market)?;
        let l = by.entry((iv.instance_id.clone(), iv.item)).or_insert_with(|| Line {
            account_id: iv.account_id.clone(),
            instance_id: iv.instance_id.clone(),
            item: iv.item,
            charge: iv.charge,
            instance_type: iv.instance_type.clone(),
            zone_id: iv.zone_id.clone(),
            disk_category: iv.disk_category.clone(),
            disk_gib: iv.disk_gib,
            start_s: iv.start_s,
            end_s: iv.end_s,
            seconds: 0,
            out_bytes: 0,
            amount: Money::ZERO,
        });
        l.start_s = l.start_s.min(iv.start_s);
        l.end_s = l.end_s.max(iv.end_s);
        l.seconds += iv.seconds();
        l.amount = l.amount.plus(m);
    }
    let mut sent: BTreeMap<&str, Vec<TrafficUsage>> = BTreeMap::new();
    for u in logs.traffic {
        let hour = u.at_s - u.at_s.rem_euclid(3600);
        if hour >= from_s && hour < to_s {
            sent.entry(u.instance_id.as_str()).or_default().push(u.clone());
        }
    }
    for (instance, used) in sent {
        let hours = traffic::hourly_out(&used);
        let out_bytes: u128 = hours.values().sum();
        if out_bytes == 0 {
            continue;
        }
        let compute = by.get(&(instance.to_string(), Item::Compute));
        let line = Line {
            account_id: used[0].account_id.clone(),
            instance_id: instance.to_string(),
            item: Item::Traffic,
            charge: Charge::PayAsYouGo,
            instance_type: compute.map(|c| c.instance_type.clone()).unwrap_or_default(),
            zone_id: compute.map(|c| c.zone_id.clone()).unwrap_or_default(),
            disk_category: String::new(),
            disk_gib: 0,
            start_s: hours.keys().map(|(_, h)| *h).min().unwrap_or(from_s),
            end_s: hours.keys().map(|(_, h)| h + 3600).max().unwrap_or(to_s).min(to_s),
            seconds: 0,
            out_bytes: u64::try_from(out_bytes).unwrap_or(u64::MAX),
            amount: traffic::charge(&used, prices),
        };
        by.insert((instance.to_string(), Item::Traffic), line);
    }
    Ok(by.into_values().collect())
}

/// A month's invoice for one account.
#[derive(Debug, Clone, PartialEq)]
pub struct Invoice {
    pub account_name: String,
    pub account_id: String,
    pub cycle: String,
    pub currency: String,
    pub opening_cents: i64,
    pub closing_cents: i64,
    /// Ledger entries of the month, each with what was paid of it (charges) so far.
    pub entries: Vec<(LedgerEntry, Paid)>,
    /// Usage rated in the month.
    pub lines: Vec<Line>,
}

#[derive(Debug, thiserror::Error)]
pub enum InvoiceError {
    #[error("Billing cycle {0:?} is not YYYY-MM")]
    Cycle(String),
    #[error(transparent)]
    Rating(#[from] RatingError),
}

/// Build the invoice of `cycle` from an account's whole ledger and usage log, with usage up to
/// `now_s` (a month not over yet has no usage after now).
#[allow(clippy::too_many_arguments)]
pub fn invoice(
    now_s: i64,
    account_name: &str,
    account_id: &str,
    cycle: &str,
    currency: &str,
    ledger: &[LedgerEntry],
    logs: Logs<'_>,
    prices: &RegionPrices,
    size: &dyn Fn(&str) -> Option<TypeSize>,
    market: &Market,
) -> Result<Invoice, InvoiceError> {
    let (from, to) = month_bounds(cycle).ok_or_else(|| InvoiceError::Cycle(cycle.to_string()))?;
    let before: Vec<LedgerEntry> = ledger.iter().filter(|e| e.at_s < from).cloned().collect();
    let through: Vec<LedgerEntry> = ledger.iter().filter(|e| e.at_s < to).cloned().collect();
    let paid = payments(ledger);
    let entries = ledger
        .iter()
        .filter(|e| e.at_s >= from && e.at_s < to)
        .map(|e| {
            let p = paid.get(&e.key).copied().unwrap_or_default();
            (e.clone(), p)
        })
        .collect();
    Ok(Invoice {
        account_name: account_name.to_string(),
        account_id: account_id.to_string(),
        cycle: cycle.to_string(),
        currency: currency.to_string(),
        opening_cents: position(&before).balance_cents,
        closing_cents: position(&through).balance_cents,
        entries,
        lines: lines(logs, from, to.min(now_s), prices, size, market)?,
    })
}

fn item_name(i: Item) -> &'static str {
    match i {
        Item::Compute => "Compute",
        Item::Disk => "SystemDisk",
        Item::DataDisk => "DataDisk",
        Item::Snapshot => "Snapshot",
        Item::Traffic => "Traffic",
    }
}

fn hours(seconds: i64) -> String {
    format!("{}.{:04}", seconds / 3600, (seconds % 3600) * 10_000 / 3600)
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

impl Invoice {
    /// Charges of the month (negative entries), in cents, as a positive number.
    pub fn charged_cents(&self) -> i64 {
        self.entries.iter().filter(|(e, _)| e.amount_cents < 0).map(|(e, _)| -e.amount_cents).sum()
    }

    pub fn outstanding_cents(&self) -> i64 {
        self.entries.iter().map(|(_, p)| p.outstanding_cents).sum()
    }

    /// A readable invoice.
    pub fn text(&self) -> String {
        let mut s = String::new();
        let c = &self.currency;
        let _ = writeln!(
            s,
            "Feiyun invoice {}  account {} ({})  currency {c}",
            self.cycle, self.account_name, self.account_id
        );
        let _ = writeln!(s);
        let _ = writeln!(s, "Opening balance {:>52}", format_cents(self.opening_cents as i128));
        let _ = writeln!(s);
        let _ = writeln!(s, "Ledger");
        let _ = writeln!(
            s,
            "  {:<21} {:<13} {:>12} {:>10} {:>11}  detail",
            "time (UTC)", "kind", "amount", "paid", "outstanding"
        );
        for (e, p) in &self.entries {
            let (paid, owed) = if e.amount_cents < 0 {
                (format_cents(p.paid_cents as i128), format_cents(p.outstanding_cents as i128))
            } else {
                (String::new(), String::new())
            };
            let what =
                if e.instance_id.is_empty() { e.detail.clone() } else { format!("{} {}", e.instance_id, e.detail) };
            let _ = writeln!(
                s,
                "  {:<21} {:<13} {:>12} {:>10} {:>11}  {}",
                iso(e.at_s),
                e.kind.as_str(),
                format_cents(e.amount_cents as i128),
                paid,
                owed,
                what
            );
        }
        if self.entries.is_empty() {
            let _ = writeln!(s, "  (no entries)");
        }
        let _ = writeln!(s);
        let _ = writeln!(s, "Usage this month (rated per second, rounded per line)");
        let _ = writeln!(
            s,
            "  {:<24} {:<22} {:<10} {:<12} {:>12} {:>10}",
            "instance", "type", "item", "charge", "hours", "amount"
        );
        let mut usage = Money::ZERO;
        for l in &self.lines {
            usage = usage.plus(l.amount);
            let _ = writeln!(
                s,
                "  {:<24} {:<22} {:<10} {:<12} {:>12} {:>10}",
                l.instance_id,
                l.instance_type,
                item_name(l.item),
                l.charge.as_str(),
                if l.item == Item::Traffic { format!("{:.3} GB", l.out_bytes as f64 / 1e9) } else { hours(l.seconds) },
                l.amount
            );
        }
        if self.lines.is_empty() {
            let _ = writeln!(s, "  (no usage)");
        }
        let _ = writeln!(s, "  {:<83} {:>10}", "usage total (exact sum, rounded once)", usage);
        let _ = writeln!(s);
        let _ = writeln!(s, "Charged this month {:>49}", format_cents(self.charged_cents() as i128));
        let _ = writeln!(s, "Outstanding {:>56}", format_cents(self.outstanding_cents() as i128));
        let _ = writeln!(s, "Closing balance {:>52}", format_cents(self.closing_cents as i128));
        let _ = writeln!(
            s,
            "\nPay-as-you-go usage is settled hourly; the last hour of a month is charged at the first settlement of the next."
        );
        s
    }

    /// The same invoice as CSV: one row per ledger entry and per usage line.
    pub fn csv(&self) -> String {
        let mut s = String::from(
            "section,time,kind,instance_id,instance_type,item,charge,seconds,amount,paid,outstanding,currency,detail\n",
        );
        for (e, p) in &self.entries {
            let _ = writeln!(
                s,
                "ledger,{},{},{},,,,,{},{},{},{},{}",
                iso(e.at_s),
                e.kind.as_str(),
                csv_field(&e.instance_id),
                format_cents(e.amount_cents as i128),
                if e.amount_cents < 0 { format_cents(p.paid_cents as i128) } else { String::new() },
                if e.amount_cents < 0 { format_cents(p.outstanding_cents as i128) } else { String::new() },
                self.currency,
                csv_field(&e.detail)
            );
        }
        for l in &self.lines {
            let _ = writeln!(
                s,
                "usage,{},{},{},{},{},{},{},{},,,{},{}",
                iso(l.start_s),
                if l.charge == Charge::Subscription { LedgerKind::Subscription.as_str() } else { "Usage" },
                csv_field(&l.instance_id),
                csv_field(&l.instance_type),
                item_name(l.item),
                l.charge.as_str(),
                l.seconds,
                l.amount,
                self.currency,
                if l.item == Item::Traffic { format!("{} bytes out", l.out_bytes) } else { String::new() }
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prices::tests::BOOK;
    use crate::prices::PriceBook;
    use crate::rating::tests::{ev, numbered, size};
    use feiyun_domain::usage::EventKind;

    #[test]
    fn cycles() {
        assert_eq!(month_bounds("2026-11"), Some((1_793_491_200, 1_796_083_200)));
        assert_eq!(month_bounds("2026-12").map(|(_, e)| e), Some(1_798_761_600), "December ends at New Year");
        for bad in ["2026-13", "2026-1", "26-11", "2026/11", "", "2026-11-01"] {
            assert_eq!(month_bounds(bad), None, "{bad}");
        }
        assert_eq!(day_bounds("2026-11-02"), Some((1_793_577_600, 1_793_664_000)));
        assert_eq!(day_bounds("2026-11-31"), None);
        assert_eq!(cycle_of(1_796_083_199), "2026-11");
        assert_eq!(iso(0), "1970-01-01T00:00:00Z");
    }

    /// An instance running from 1 hour before November to 2 hours into it: November's bill has
    /// 2 hours of compute (2 × 0.5296 = 1.0592 → 1.06) and disk (2 × 0.04 = 0.08).
    #[test]
    fn a_month_cuts_intervals_at_its_start() {
        let (nov, _) = month_bounds("2026-11").expect("valid");
        let book = PriceBook::from_toml(BOOK).expect("valid");
        let p = book.region("r1").expect("region");
        let log = numbered(vec![
            ev("c", nov - 3600, EventKind::Create),
            ev("s", nov - 3600, EventKind::Start),
            ev("r", nov + 7200, EventKind::Release),
        ]);
        let ledger = vec![
            LedgerEntry {
                key: "t".into(),
                account_id: "a".into(),
                at_s: nov - 10,
                kind: LedgerKind::TopUp,
                amount_cents: 100,
                instance_id: String::new(),
                detail: "top-up".into(),
            },
            LedgerEntry {
                key: "payg:a:x".into(),
                account_id: "a".into(),
                at_s: nov + 3600,
                kind: LedgerKind::PayAsYouGo,
                amount_cents: -150,
                instance_id: String::new(),
                detail: "pay-as-you-go usage".into(),
            },
        ];
        let inv = invoice(
            i64::MAX,
            "alice",
            "a",
            "2026-11",
            "CNY",
            &ledger,
            Logs { events: &log, ..Default::default() },
            p,
            &size,
            &Market::default(),
        )
        .expect("ok");
        // While the month is running, usage stops at now: one hour into November, one hour.
        let early = invoice(
            nov + 3600,
            "alice",
            "a",
            "2026-11",
            "CNY",
            &ledger,
            Logs { events: &log, ..Default::default() },
            p,
            &size,
            &Market::default(),
        )
        .expect("ok");
        assert_eq!(early.lines[0].seconds, 3600);
        assert_eq!(inv.lines.len(), 2);
        assert_eq!((inv.lines[0].seconds, inv.lines[0].amount.settle_cents()), (7200, 106));
        assert_eq!((inv.lines[1].seconds, inv.lines[1].amount.settle_cents()), (7200, 8));
        assert_eq!(
            (inv.opening_cents, inv.closing_cents, inv.charged_cents(), inv.outstanding_cents()),
            (100, -50, 150, 50)
        );
        let text = inv.text();
        assert!(text.contains("Outstanding") && text.contains("-1.50") && text.contains("2.0000"), "{text}");
        let csv = inv.csv();
        assert_eq!(csv.lines().count(), 1 + 1 + 2, "{csv}");
        assert!(
            csv.contains("ledger,2026-11-01T01:00:00Z,PayAsYouGo,,,,,,-1.50,1.00,0.50,CNY,pay-as-you-go usage"),
            "{csv}"
        );
        assert!(matches!(
            invoice(
                i64::MAX,
                "alice",
                "a",
                "2026-13",
                "CNY",
                &ledger,
                Logs { events: &log, ..Default::default() },
                p,
                &size,
                &Market::default()
            ),
            Err(InvoiceError::Cycle(_))
        ));
    }

    /// Traffic is a line per instance with the hours that start in the period, priced as
    /// settlement prices them; a replayed reading counts once, an hour of the month before does
    /// not count, and the line's type and zone are its instance's.
    #[test]
    fn traffic_is_a_line_of_its_own() {
        let (nov, _) = month_bounds("2026-11").expect("valid");
        let book = PriceBook::from_toml(BOOK).expect("valid");
        let p = book.region("r1").expect("region");
        let log = numbered(vec![ev("c", nov - 3600, EventKind::Create), ev("s", nov - 3600, EventKind::Start)]);
        let t = |key: &str, at_s: i64, out_bytes: u64| TrafficUsage {
            key: key.into(),
            instance_id: "i-1".into(),
            account_id: "a".into(),
            at_s,
            in_bytes: 7,
            out_bytes,
        };
        // October's last hour, then 4.5 GB in November's first hour (10 Mbit/s), one reading
        // replayed, then 450 MB (1 Mbit/s) in its third hour.
        let traffic = vec![
            t("k0", nov - 10, 9_000_000_000),
            t("k1", nov + 10, 2_250_000_000),
            t("k2", nov + 20, 2_250_000_000),
            t("k2", nov + 20, 2_250_000_000),
            t("k3", nov + 7300, 450_000_000),
        ];
        let logs = Logs { events: &log, traffic: &traffic, ..Default::default() };
        let rated = lines(logs, nov, nov + 4 * 3600, p, &size, &Market::default()).expect("rated");
        let l = rated.iter().find(|l| l.item == Item::Traffic).expect("a traffic line");
        assert_eq!((l.out_bytes, l.start_s, l.end_s), (4_950_000_000, nov, nov + 3 * 3600));
        assert_eq!((l.instance_type.as_str(), l.zone_id.as_str()), ("ecs.g7.large", "z"));
        let expected = traffic::charge(&traffic[1..], p);
        assert_eq!(l.amount, expected);
        assert_eq!(expected, Money::from_micros(p.bandwidth_hour(10) + p.bandwidth_hour(1)));
        // A period without traffic has no traffic line.
        let quiet = lines(logs, nov + 3600, nov + 7200, p, &size, &Market::default()).expect("rated");
        assert!(quiet.iter().all(|l| l.item != Item::Traffic));
        let inv = invoice(nov + 4 * 3600, "alice", "a", "2026-11", "CNY", &[], logs, p, &size, &Market::default())
            .expect("invoice");
        assert!(inv.text().contains("4.950 GB"), "{}", inv.text());
        assert!(inv.csv().contains("4950000000 bytes out"), "{}", inv.csv());
    }
}
