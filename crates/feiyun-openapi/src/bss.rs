//! BssOpenApi 2017-12-14: balances, bills and prices, in the BSS envelope
//! `{"Code":"Success","Message":"Successful!","Success":true,"Data":{…}}`.

use std::collections::BTreeMap;
use std::sync::Arc;

use feiyun_billing::account::{payments, Paid};
use feiyun_billing::invoice::{cycle_of, day_bounds, iso, month_bounds, Line};
use feiyun_billing::metering::Item;
use feiyun_billing::money::format_cents;
use feiyun_control::ControlPlane;
use feiyun_domain::usage::{Charge, LedgerKind};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::params::Params;
use crate::render::{Node, Reply};

pub(crate) struct Call<'a> {
    pub cp: &'a Arc<ControlPlane>,
    pub account_id: &'a str,
    pub account_name: &'a str,
    pub action: &'a str,
    pub params: &'a Params,
    pub reply: Reply<'a>,
}

/// Run a BSS action; the result is its written answer, in the BSS envelope.
pub(crate) fn handle(c: &Call<'_>) -> Result<Vec<u8>, ApiError> {
    let data = match c.action {
        "QueryAccountBalance" => query_account_balance(c),
        "QueryBill" => query_bill(c),
        "QueryBillOverview" => query_bill_overview(c),
        "QueryInstanceBill" => query_instance_bill(c),
        "DescribeInstanceBill" => describe_instance_bill(c),
        "GetPayAsYouGoPrice" => get_pay_as_you_go_price(c),
        "GetSubscriptionPrice" => get_subscription_price(c),
        _ => Err(ApiError::unknown_action()),
    }?;
    let envelope =
        json!({"Code": "Success", "Message": "Successful!", "RequestId": null, "Success": true, "Data": data});
    Ok(c.reply.write(&Node::from(envelope)))
}

/// A micro-unit amount as an exact decimal, trailing zeros dropped: 51_050 → "0.05105".
fn micros_text(m: i128) -> String {
    let s = format!("{}.{:06}", m / 1_000_000, (m % 1_000_000).abs());
    let s = s.trim_end_matches('0');
    s.strip_suffix('.').unwrap_or(s).to_string()
}

fn money(cents: i64) -> Value {
    json!(cents as f64 / 100.0)
}

fn product(p: &Params) -> Result<(), ApiError> {
    match p.get("ProductCode") {
        None | Some("ecs") => Ok(()),
        Some(_) => {
            Err(ApiError::new(400, "InvalidParameter.ProductCode", "Only ProductCode=ecs is billed in this region."))
        }
    }
}

fn cycle(p: &Params) -> Result<(String, i64, i64), ApiError> {
    let c = p.required("BillingCycle")?;
    let (from, to) = month_bounds(c).ok_or_else(|| ApiError::invalid_because("BillingCycle", "YYYY-MM"))?;
    Ok((c.to_string(), from, to))
}

fn subscription_filter(p: &Params) -> Result<Option<&'static str>, ApiError> {
    p.choice("SubscriptionType", &["Subscription", "PayAsYouGo"])
}

fn page(p: &Params) -> Result<(usize, usize), ApiError> {
    // Bounded so that the offset `(num - 1) * size` cannot overflow.
    let num = p.int("PageNum", 1, i32::MAX as i64)?.unwrap_or(1) as usize;
    let size = p.int("PageSize", 1, 300)?.unwrap_or(20) as usize;
    Ok((num, size))
}

fn query_account_balance(c: &Call<'_>) -> Result<Value, ApiError> {
    let cents = c.cp.balance_cents(c.account_id)?;
    let amount = format_cents(cents as i128);
    Ok(json!({
        "AvailableAmount": amount,
        "AvailableCashAmount": amount,
        "CreditAmount": "0.00",
        "MybankCreditAmount": "0.00",
        "QuotaLimit": "0.00",
        "Currency": c.cp.prices()?.currency,
    }))
}

/// A ledger charge as a bill: what it was for and how much of it is paid.
fn bill_item(c: &Call<'_>, e: &feiyun_domain::usage::LedgerEntry, paid: Paid, currency: &str) -> Value {
    let subscription = matches!(e.kind, LedgerKind::Subscription | LedgerKind::Renewal | LedgerKind::Refund);
    let amount = -e.amount_cents;
    let every = c.cp.billing_setup().settle_every.as_secs() as i64;
    let (start, end) = if subscription { (e.at_s, e.at_s) } else { (e.at_s - every, e.at_s) };
    json!({
        "RecordID": e.key,
        "Item": match e.kind {
            LedgerKind::Refund => "Refund",
            _ if subscription => "SubscriptionOrder",
            _ => "PayAsYouGoBill",
        },
        "ProductCode": "ecs",
        "ProductName": "Elastic Compute Service",
        "ProductType": "ecs",
        "ProductDetail": e.detail,
        "SubscriptionType": if subscription { "Subscription" } else { "PayAsYouGo" },
        "Status": if paid.outstanding_cents == 0 { "PayOff" } else { "Unpaid" },
        "UsageStartTime": iso(start),
        "UsageEndTime": iso(end),
        "PaymentTime": if paid.outstanding_cents == 0 { iso(e.at_s) } else { String::new() },
        "PaymentTransactionID": "",
        "Currency": currency,
        "PaymentCurrency": currency,
        "PretaxGrossAmount": money(amount),
        "PretaxAmount": money(amount),
        "PretaxAmountLocal": money(amount),
        "InvoiceDiscount": 0.0,
        "RoundDownDiscount": "0.00",
        "DeductedByCoupons": 0.0,
        "DeductedByCashCoupons": 0.0,
        "DeductedByPrepaidCard": 0.0,
        "PaymentAmount": money(paid.paid_cents),
        "CashAmount": money(paid.paid_cents),
        "OutstandingAmount": money(paid.outstanding_cents),
        "AfterTaxAmount": money(amount),
        "Tax": 0.0,
        "AdjustAmount": 0.0,
        "OwnerID": e.account_id,
        "SubOrderId": e.key,
        "PipCode": "ecs",
        "CommodityCode": if subscription { "ecs_pre" } else { "ecs" },
    })
}

/// Charges of the cycle, with what is paid of each.
#[allow(clippy::type_complexity)]
fn charges(c: &Call<'_>, from: i64, to: i64) -> Result<Vec<(feiyun_domain::usage::LedgerEntry, Paid)>, ApiError> {
    let ledger = c.cp.ledger(c.account_id)?;
    let paid = payments(&ledger);
    Ok(ledger
        .into_iter()
        .filter(|e| (e.amount_cents < 0 || e.kind == LedgerKind::Refund) && e.at_s >= from && e.at_s < to)
        .map(|e| {
            let p = paid.get(&e.key).copied().unwrap_or_default();
            (e, p)
        })
        .collect())
}

fn query_bill(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    product(p)?;
    let (cycle, from, to) = cycle(p)?;
    let sub = subscription_filter(p)?;
    let ty = p.choice("Type", &["SubscriptionOrder", "PayAsYouGoBill", "Refund", "Adjustment"])?;
    let hide_zero = p.bool("IsHideZeroCharge")?.unwrap_or(false);
    let (num, size) = page(p)?;
    let currency = c.cp.prices()?.currency.clone();
    let items: Vec<Value> = charges(c, from, to)?
        .into_iter()
        .map(|(e, paid)| bill_item(c, &e, paid, &currency))
        .filter(|v| sub.is_none_or(|s| v["SubscriptionType"] == s))
        .filter(|v| ty.is_none_or(|t| v["Item"] == t))
        .filter(|v| !hide_zero || v["PretaxGrossAmount"].as_f64() != Some(0.0))
        .collect();
    let total = items.len();
    let page: Vec<Value> = items.into_iter().skip((num - 1) * size).take(size).collect();
    Ok(json!({
        "BillingCycle": cycle,
        "AccountID": c.account_id,
        "AccountName": c.account_name,
        "TotalCount": total,
        "PageNum": num,
        "PageSize": size,
        "Items": {"Item": page},
    }))
}

fn query_bill_overview(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    product(p)?;
    let (cycle, from, to) = cycle(p)?;
    let sub = subscription_filter(p)?;
    let currency = c.cp.prices()?.currency.clone();
    // (gross, paid, outstanding) per subscription type.
    let mut sums: BTreeMap<&str, (i64, i64, i64)> = BTreeMap::new();
    for (e, paid) in charges(c, from, to)? {
        let st = if matches!(e.kind, LedgerKind::Subscription | LedgerKind::Renewal) {
            "Subscription"
        } else {
            "PayAsYouGo"
        };
        let s = sums.entry(st).or_default();
        s.0 += -e.amount_cents;
        s.1 += paid.paid_cents;
        s.2 += paid.outstanding_cents;
    }
    let items: Vec<Value> = sums
        .into_iter()
        .filter(|(st, _)| sub.is_none_or(|s| s == *st))
        .map(|(st, (gross, paid, owed))| {
            json!({
                "ProductCode": "ecs",
                "ProductName": "Elastic Compute Service",
                "ProductType": "ecs",
                "ProductDetail": "Elastic Compute Service",
                "SubscriptionType": st,
                "Item": if st == "Subscription" { "SubscriptionOrder" } else { "PayAsYouGoBill" },
                "BizType": "ecs",
                "Currency": currency,
                "PaymentCurrency": currency,
                "PretaxGrossAmount": money(gross),
                "PretaxAmount": money(gross),
                "PretaxAmountLocal": money(gross),
                "InvoiceDiscount": 0.0,
                "RoundDownDiscount": "0.00",
                "DeductedByCoupons": 0.0,
                "DeductedByCashCoupons": 0.0,
                "DeductedByPrepaidCard": 0.0,
                "PaymentAmount": money(paid),
                "CashAmount": money(paid),
                "OutstandingAmount": money(owed),
                "AfterTaxAmount": money(gross),
                "Tax": 0.0,
                "AdjustAmount": 0.0,
                "OwnerID": c.account_id,
                "BillAccountID": c.account_id,
                "BillAccountName": c.account_name,
                "PipCode": "ecs",
                "CommodityCode": if st == "Subscription" { "ecs_pre" } else { "ecs" },
            })
        })
        .collect();
    Ok(json!({
        "BillingCycle": cycle,
        "AccountID": c.account_id,
        "AccountName": c.account_name,
        "Items": {"Item": items},
    }))
}

fn line_item(
    c: &Call<'_>,
    l: &Line,
    by_item: bool,
    date: Option<&str>,
    currency: &str,
    cycle: &str,
) -> Result<Value, ApiError> {
    let t = c.cp.catalog().instance_type(&l.instance_type);
    let list_hour = match (l.item, t) {
        (Item::Compute, Some(t)) => c.cp.instance_hour(t)?,
        (Item::Disk | Item::DataDisk, _) => c.cp.prices()?.disk_hour(&l.disk_category, l.disk_gib).unwrap_or(0),
        (Item::Snapshot, _) => c.cp.prices()?.snapshot_hour(l.disk_gib),
        _ => 0,
    };
    let cents = l.amount.settle_cents() as i64;
    let sub = if l.charge == Charge::Subscription { "Subscription" } else { "PayAsYouGo" };
    let config = match l.item {
        Item::DataDisk => format!("Data disk: {} {} GiB", l.disk_category, l.disk_gib),
        Item::Snapshot => format!("Snapshot: {} GiB", l.disk_gib),
        Item::Traffic => format!("Outbound public traffic: {} bytes", l.out_bytes),
        _ => t
            .map(|t| {
                format!(
                    "CPU: {} cores; Memory: {} GB; System disk: {} {} GiB",
                    t.vcpus,
                    t.memory_mib() as f64 / 1024.0,
                    l.disk_category,
                    l.disk_gib
                )
            })
            .unwrap_or_default(),
    };
    let (item_name, item_code) = match l.item {
        Item::Compute => ("Cloud server configuration", "instance_type"),
        Item::Disk => ("System disk", "systemdisk"),
        Item::DataDisk => ("Data disk", "datadisk"),
        Item::Snapshot => ("Snapshot", "snapshot"),
        Item::Traffic => ("Internet traffic", "internet_traffic"),
    };
    let (usage, usage_unit) = match l.item {
        Item::Traffic => (format!("{:.4}", l.out_bytes as f64 / 1e9), "GB"),
        _ => (format!("{:.4}", l.seconds as f64 / 3600.0), "Hour"),
    };
    Ok(json!({
        "InstanceID": l.instance_id,
        "BillingItem": if by_item { item_name } else { "" },
        "BillingItemCode": if by_item { item_code } else { "" },
        "ItemName": item_name,
        "BillingDate": date.unwrap_or(""),
        "BillingType": if l.charge == Charge::Subscription { "Subscription" } else { "Usage" },
        "BizType": "ecs",
        "ProductCode": "ecs",
        "ProductName": "Elastic Compute Service",
        "ProductType": "ecs",
        "ProductDetail": "Elastic Compute Service",
        "PipCode": "ecs",
        "CommodityCode": if l.charge == Charge::Subscription { "ecs_pre" } else { "ecs" },
        "SubscriptionType": sub,
        "InstanceSpec": if l.instance_type.is_empty() { &l.disk_category } else { &l.instance_type },
        "InstanceConfig": config,
        "Region": c.cp.region().id,
        "Zone": l.zone_id,
        "IntranetIP": "",
        "InternetIP": "",
        "Tag": "",
        "ResourceGroup": "",
        "CostUnit": "",
        "NickName": "",
        // Traffic has tiers, not one hourly price.
        "ListPrice": if by_item && l.item != Item::Traffic { micros_text(list_hour) } else { String::new() },
        "ListPriceUnit": if by_item && l.item != Item::Traffic { format!("{currency}/Hour") } else { String::new() },
        "Usage": usage,
        "UsageUnit": usage_unit,
        "ServicePeriod": l.seconds.to_string(),
        "ServicePeriodUnit": "Second",
        "Currency": currency,
        "PretaxGrossAmount": money(cents),
        "PretaxAmount": money(cents),
        "AfterDiscountAmount": money(cents),
        "InvoiceDiscount": 0.0,
        "DeductedByCoupons": 0.0,
        "DeductedByCashCoupons": 0.0,
        "DeductedByPrepaidCard": 0.0,
        "DeductedByResourcePackage": "0",
        "PaymentAmount": money(cents),
        "CashAmount": money(cents),
        "OutstandingAmount": 0.0,
        "AdjustAmount": 0.0,
        "OwnerID": c.account_id,
        "BillAccountID": c.account_id,
        "BillAccountName": c.account_name,
        "Item": if l.charge == Charge::Subscription { "SubscriptionOrder" } else { "PayAsYouGoBill" },
        "BillingCycle": cycle,
    }))
}

/// QueryInstanceBill (`Items.Item`, PageNum/PageSize) and DescribeInstanceBill (`Items` plain,
/// MaxResults/NextToken): usage per instance (and per billable item with IsBillingItem) for the
/// month or one day of it, rated exactly and rounded per line. Subscription orders of the period
/// appear as their own lines.
fn instance_bill(c: &Call<'_>, only: Option<&str>) -> Result<(Value, Vec<Value>), ApiError> {
    let p = c.params;
    product(p)?;
    let (cycle, mut from, mut to) = cycle(p)?;
    let daily = p.choice("Granularity", &["MONTHLY", "DAILY"])? == Some("DAILY");
    let date = if daily {
        let d = p.required("BillingDate")?;
        let (f, t) = day_bounds(d).ok_or_else(|| ApiError::invalid_because("BillingDate", "YYYY-MM-DD"))?;
        if cycle_of(f) != cycle {
            return Err(ApiError::invalid_because("BillingDate", "must fall in BillingCycle"));
        }
        (from, to) = (f, t);
        Some(d.to_string())
    } else {
        None
    };
    let by_item = p.bool("IsBillingItem")?.unwrap_or(false);
    let hide_zero = p.bool("IsHideZeroCharge")?.unwrap_or(false);
    let sub = subscription_filter(p)?;
    let currency = c.cp.prices()?.currency.clone();
    let bills = c.cp.account_bills(c.account_id)?;
    let mut lines = c.cp.usage_lines(&bills, from, to)?;
    if !by_item {
        // One line per instance: merge its items.
        let mut merged: BTreeMap<String, Line> = BTreeMap::new();
        for l in lines {
            match merged.get_mut(&l.instance_id) {
                Some(m) => {
                    m.amount = m.amount.plus(l.amount);
                    if l.item == Item::Compute {
                        m.seconds = l.seconds;
                        m.item = Item::Compute;
                    }
                }
                None => {
                    merged.insert(l.instance_id.clone(), l);
                }
            }
        }
        lines = merged.into_values().collect();
    }
    let mut items = Vec::new();
    for l in &lines {
        if only.is_some_and(|id| id != l.instance_id) {
            continue;
        }
        let mut v = line_item(c, l, by_item, date.as_deref(), &currency, &cycle)?;
        if l.charge == Charge::Subscription {
            // The order (and renewals) paid in this period, attributed to the instance.
            let paid: i64 = bills
                .ledger
                .iter()
                .filter(|e| e.instance_id == l.instance_id && e.at_s >= from && e.at_s < to && e.amount_cents < 0)
                .filter(|_| l.item == Item::Compute || !by_item)
                .map(|e| -e.amount_cents)
                .sum();
            for k in ["PretaxGrossAmount", "PretaxAmount", "AfterDiscountAmount", "PaymentAmount", "CashAmount"] {
                v[k] = money(paid);
            }
        }
        if sub.is_some_and(|s| v["SubscriptionType"] != s) {
            continue;
        }
        if hide_zero && v["PretaxGrossAmount"].as_f64() == Some(0.0) {
            continue;
        }
        items.push(v);
    }
    let total = items.len();
    let base =
        json!({"BillingCycle": cycle, "AccountID": c.account_id, "AccountName": c.account_name, "TotalCount": total});
    Ok((base, items))
}

fn query_instance_bill(c: &Call<'_>) -> Result<Value, ApiError> {
    let (mut out, items) = instance_bill(c, None)?;
    let (num, size) = page(c.params)?;
    let page: Vec<Value> = items.into_iter().skip((num - 1) * size).take(size).collect();
    out["PageNum"] = json!(num);
    out["PageSize"] = json!(size);
    out["Items"] = json!({"Item": page});
    Ok(out)
}

fn describe_instance_bill(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let (mut out, items) = instance_bill(c, p.get("InstanceID"))?;
    let total = items.len();
    let max = p.int("MaxResults", 1, 300)?.unwrap_or(20) as usize;
    let start = match p.get("NextToken").filter(|t| !t.is_empty()) {
        None => 0,
        Some(t) => t.parse::<usize>().ok().filter(|n| *n <= total).ok_or_else(|| ApiError::invalid("NextToken"))?,
    };
    let page: Vec<Value> = items.into_iter().skip(start).take(max).collect();
    let next = if start + page.len() < total { (start + page.len()).to_string() } else { String::new() };
    out["MaxResults"] = json!(max);
    out["NextToken"] = json!(next);
    out["Items"] = json!(page);
    Ok(out)
}

/// One pricing module of ModuleList: its position, code and `AA:aa,BB:bb` attributes.
struct Module {
    n: usize,
    code: String,
    config: BTreeMap<String, String>,
}

fn modules(p: &Params) -> Result<Vec<Module>, ApiError> {
    let mut out = Vec::new();
    for n in 1..=50 {
        let Some(code) = p.nth("ModuleList.N.ModuleCode", n) else { break };
        let config_key = format!("ModuleList.{n}.Config");
        let raw = p.nth("ModuleList.N.Config", n).ok_or_else(|| ApiError::missing(&config_key))?;
        let mut config = BTreeMap::new();
        for kv in raw.split(',').filter(|s| !s.trim().is_empty()) {
            let (k, v) = kv.split_once(':').ok_or_else(|| ApiError::invalid_because(&config_key, "AA:aa,BB:bb"))?;
            config.insert(k.trim().to_string(), v.trim().to_string());
        }
        out.push(Module { n, code: code.to_string(), config });
    }
    if out.is_empty() {
        return Err(ApiError::missing("ModuleList.1.ModuleCode"));
    }
    Ok(out)
}

/// Hourly price of one ECS pricing module, micro-units.
fn module_hour(c: &Call<'_>, m: &Module) -> Result<i128, ApiError> {
    let prices = c.cp.prices()?;
    let get = |k: &str| m.config.get(k).map(String::as_str);
    match m.code.as_str() {
        "InstanceType" => {
            let id = get("InstanceType").ok_or_else(|| ApiError::invalid_because("Config", "InstanceType:<type>"))?;
            let t =
                c.cp.catalog()
                    .instance_type(id)
                    .ok_or_else(|| ApiError::from(feiyun_domain::DomainError::InstanceTypeNotFound(id.to_string())))?;
            Ok(c.cp.instance_hour(t)?)
        }
        "SystemDisk" | "DataDisk" => {
            let cat = get(&format!("{}.Category", m.code)).unwrap_or(feiyun_control::SYSTEM_DISK_CATEGORY);
            let size: u64 = get(&format!("{}.Size", m.code))
                .unwrap_or("40")
                .parse()
                .map_err(|_| ApiError::invalid_because("Config", "Size must be whole GiB"))?;
            prices.disk_hour(cat, size).ok_or_else(|| {
                ApiError::new(
                    400,
                    "InvalidParameter.Config",
                    format!("Disk category {cat} is not priced in this region."),
                )
            })
        }
        "InternetMaxBandwidthOut" => {
            let mbps: u32 = get("InternetMaxBandwidthOut")
                .unwrap_or("0")
                .parse()
                .map_err(|_| ApiError::invalid_because("Config", "InternetMaxBandwidthOut:<Mbit/s>"))?;
            Ok(prices.bandwidth_hour(mbps))
        }
        other => Err(ApiError::new(
            400,
            "InvalidParameter.ModuleCode",
            format!("Module {other} is not priced; use InstanceType, SystemDisk, DataDisk or InternetMaxBandwidthOut."),
        )),
    }
}

fn module_detail(code: &str, original: i128, discount: i128, unit: i128) -> Value {
    let f = |m: i128| m as f64 / 1e6;
    json!({"ModuleCode": code, "OriginalCost": f(original), "InvoiceDiscount": f(discount), "CostAfterDiscount": f(original - discount), "UnitPrice": f(unit)})
}

fn get_pay_as_you_go_price(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    p.required("ProductCode")?;
    product(p)?;
    if p.required("SubscriptionType")? != "PayAsYouGo" {
        return Err(ApiError::invalid_because("SubscriptionType", "must be PayAsYouGo"));
    }
    if let Some(r) = p.get("Region") {
        c.cp.check_region(r)?;
    }
    let hours_per_month = c.cp.prices()?.subscription.hours_per_month as i128;
    let mut details = Vec::new();
    for m in modules(p)? {
        let hourly = module_hour(c, &m)?;
        let factor = match p.nth("ModuleList.N.PriceType", m.n) {
            None | Some("Hour") => 1,
            Some("Month") => hours_per_month,
            Some("Year") => hours_per_month * 12,
            Some(_) => return Err(ApiError::invalid_because("PriceType", "Hour, Month or Year")),
        };
        details.push(module_detail(&m.code, hourly * factor, 0, hourly));
    }
    Ok(json!({
        "Currency": c.cp.prices()?.currency,
        "ModuleDetails": {"ModuleDetail": details},
        "PromotionDetails": {"PromotionDetail": []},
    }))
}

fn get_subscription_price(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    p.required("ProductCode")?;
    product(p)?;
    if p.required("SubscriptionType")? != "Subscription" {
        return Err(ApiError::invalid_because("SubscriptionType", "must be Subscription"));
    }
    match p.required("OrderType")? {
        "NewOrder" | "Renewal" => {}
        "Upgrade" => {
            return Err(ApiError::new(400, "InvalidParameter.OrderType", "Upgrades are not sold in this region."));
        }
        _ => return Err(ApiError::invalid_because("OrderType", "NewOrder, Renewal or Upgrade")),
    }
    if let Some(r) = p.get("Region") {
        c.cp.check_region(r)?;
    }
    let n = p.int("ServicePeriodQuantity", 1, 60)?.unwrap_or(1) as u32;
    let months = match p.choice("ServicePeriodUnit", &["Month", "Year"])? {
        Some("Year") if n <= 5 => n * 12,
        Some("Year") => return Err(ApiError::invalid_because("ServicePeriodQuantity", "1 to 5 years")),
        _ => n,
    };
    let quantity = p.int("Quantity", 1, 1000)?.unwrap_or(1) as i128;
    let prices = c.cp.prices()?;
    let (mut original, mut discount) = (0i128, 0i128);
    let mut details = Vec::new();
    let mut rule = None;
    for m in modules(p)? {
        let q = prices.subscription(module_hour(c, &m)?, months);
        original += q.original * quantity;
        discount += q.discount * quantity;
        rule = rule.or(q.rule.filter(|r| r.1 > 0));
        details.push(module_detail(&m.code, q.original * quantity, q.discount * quantity, q.original / months as i128));
    }
    let f = |m: i128| m as f64 / 1e6;
    let promotions: Vec<Value> = rule
        .map(|(m, frac)| {
            json!({"PromotionId": 100_000 + m as i64, "PromotionName": format!("{m}+ month term"), "PromotionDesc": format!("{}% off for a subscription of {m} months or more", frac as f64 / 10_000.0)})
        })
        .into_iter()
        .collect();
    Ok(json!({
        "Currency": prices.currency,
        "OriginalPrice": f(original),
        "DiscountPrice": f(discount),
        "TradePrice": f(original - discount),
        "Quantity": quantity,
        "ModuleDetails": {"ModuleDetail": details},
        "PromotionDetails": {"PromotionDetail": promotions},
    }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn list_prices_keep_their_micro_units() {
        assert_eq!(super::micros_text(51_050), "0.05105");
        assert_eq!(super::micros_text(33_894_400), "33.8944");
        assert_eq!(super::micros_text(1_390), "0.00139");
        assert_eq!(super::micros_text(2_000_000), "2");
    }
}
