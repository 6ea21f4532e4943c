//! Prices: DescribePrice, DescribeSpotPriceHistory.

use feiyun_domain::DomainError;
use serde_json::{json, Value};

use super::subscription::{invalid_period, spot_strategy, MONTH_PERIODS};
use super::{seconds, Call};
use crate::error::ApiError;

/// Micro-units as a JSON number of currency (prices are display values here; money itself is
/// never a float in Feiyun).
pub(super) fn price_number(micros: i128) -> Value {
    json!(micros as f64 / 1_000_000.0)
}

pub(super) fn discount_rule(rule: Option<(u32, i128)>) -> Value {
    match rule {
        Some((months, f)) if f > 0 => json!([{
            "RuleId": 100_000 + months as i64,
            "Description": format!("{}% off for a subscription of {months} months or more", f as f64 / 10_000.0),
        }]),
        _ => json!([]),
    }
}

/// Price of an instance type with its system disk, data disks and public bandwidth: pay-as-you-go
/// or spot per hour (PriceUnit=Hour), or a subscription for Period months or years with its term
/// discount. The system disk is the one RunInstances would make: `SystemDisk.Size`, or max(40 GiB,
/// the image's size) with `ImageId`, else 40 GiB. Data disks are billed by the hour only.
pub(super) fn describe_price(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let resource_type = || {
        ApiError::new(
            400,
            "InvalidResourceType.ValueNotSupported",
            "The specified parameter ResourceType is not valid.",
        )
    };
    match p.choice_or(
        "ResourceType",
        &["instance", "disk", "bandwidth", "ddh", "ElasticityAssurance", "CapacityReservation"],
        resource_type,
    )? {
        None | Some("instance") => {}
        Some("disk") => return describe_disk_price(c),
        Some(_) => {
            return Err(ApiError::new(
                400,
                "InvalidResourceType.NotSupported",
                "Only ResourceType=instance and ResourceType=disk are priced in this region.",
            ))
        }
    }
    let unit = price_unit(p)?;
    let spot = spot_strategy(p)?.unwrap_or("NoSpot") != "NoSpot";
    let type_id = p.required("InstanceType")?;
    let t =
        c.cp.catalog()
            .instance_type(type_id)
            .ok_or_else(|| ApiError::from(DomainError::InstanceTypeNotFound(type_id.to_string())))?;
    let amount = || ApiError::new(403, "InvalidAmount.Malformed", "The specified parameter Amount is not valid.");
    let amount = p.int_or("Amount", 1, 1000, amount)?.unwrap_or(1) as i128;
    let system_category = || {
        ApiError::new(
            400,
            "InvalidSystemDiskCategory.ValueNotSupported",
            "The specified system disk category is not priced in this region.",
        )
    };
    let disk_category = match p.get("SystemDisk.Category") {
        None => feiyun_domain::storage::DiskCategory::CloudEssd,
        Some(c) => feiyun_domain::storage::DiskCategory::parse(c).ok_or_else(system_category)?,
    };
    let disk_size = || {
        ApiError::new(
            400,
            "InvalidSystemDiskSize.ValueNotSupported",
            "The specified parameter SystemDisk.Size is invalid.",
        )
    };
    let asked_gib = p.int_or("SystemDisk.Size", 1, 2048, disk_size)?.map(|n| n as u64);
    let image_gib = match p.get("ImageId") {
        None => 1,
        Some(id) => {
            c.cp.image_views(c.account_id)
                .into_iter()
                .find(|v| v.image.id == id)
                .map(|v| v.image.disk_gib())
                .ok_or_else(|| ApiError::from(DomainError::ImageNotFound(id.to_string())))?
        }
    };
    let disk_gib = feiyun_control::system_disk_gib(disk_category, asked_gib, image_gib).map_err(DomainError::from)?;
    let data_disks = super::disks::data_disk_prices(p)?;
    let bandwidth = || {
        ApiError::new(
            400,
            "InvalidInternetMaxBandwidthOut.ValueNotSupported",
            "The specified parameter InternetMaxBandwidthOut is not valid.",
        )
    };
    let mbps = p.int_or("InternetMaxBandwidthOut", 0, 100, bandwidth)?.unwrap_or(0) as u32;
    let charge = || {
        ApiError::new(
            400,
            "InvalidInternetChargeType.ValueNotSupported",
            "The specified InternetChargeType is not valid.",
        )
    };
    let by_traffic =
        p.choice_or("InternetChargeType", &["PayByBandwidth", "PayByTraffic"], charge)? == Some("PayByTraffic");
    let prices = c.cp.prices()?;
    let instance_h = c.cp.instance_hour(t)?;
    let disk_h = prices.disk_hour(disk_category.as_str(), disk_gib).ok_or_else(system_category)?;
    let mut data_h = 0;
    for (category, gib) in &data_disks {
        data_h += prices.disk_hour(category.as_str(), *gib).ok_or_else(|| {
            ApiError::new(
                400,
                "InvalidDataDiskCategory.ValueNotSupported",
                "The specified data disk category is not priced in this region.",
            )
        })?;
    }
    // Pay-by-traffic bandwidth is charged per GB transferred, not per hour.
    let bw_h = if by_traffic { 0 } else { prices.bandwidth_hour(mbps) };
    // (resource, original, discount, rule) per component, for `amount` instances.
    let mut parts: Vec<(&str, i128, i128, Value)> = Vec::new();
    let mut rules = json!([]);
    match unit {
        "Hour" if spot => {
            let zone = p.get("ZoneId");
            let q = c.cp.spot_quotes(&t.id, zone)?;
            let q = q.iter().min_by_key(|q| q.hourly).ok_or_else(ApiError::internal)?;
            let rule = json!([{"RuleId": 200_000 + q.percent as i64, "Description": format!("spot market price in {}: {}% of pay-as-you-go", q.zone_id, q.percent)}]);
            parts.push(("instanceType", q.origin * amount, (q.origin - q.hourly) * amount, rule.clone()));
            rules = rule;
            parts.push(("systemDisk", disk_h * amount, 0, json!([])));
            if !data_disks.is_empty() {
                parts.push(("dataDisk", data_h * amount, 0, json!([])));
            }
            parts.push(("bandwidth", bw_h * amount, 0, json!([])));
        }
        "Hour" => {
            parts.push(("instanceType", instance_h * amount, 0, json!([])));
            parts.push(("systemDisk", disk_h * amount, 0, json!([])));
            if !data_disks.is_empty() {
                parts.push(("dataDisk", data_h * amount, 0, json!([])));
            }
            parts.push(("bandwidth", bw_h * amount, 0, json!([])));
        }
        "Month" | "Year" => {
            if spot {
                return Err(ApiError::new(
                    400,
                    "InvalidSpotStrategy",
                    "Spot instances are priced by the hour (PriceUnit=Hour).",
                ));
            }
            if !data_disks.is_empty() {
                // Data disks are pay-as-you-go whatever their instance: a term price would not be
                // what is charged.
                return Err(ApiError::invalid_because(
                    "DataDisk.N.Size",
                    "data disks are billed by the hour here; price them with PriceUnit=Hour",
                ));
            }
            let n = p.int_or("Period", 1, 60, invalid_period)?.unwrap_or(1);
            let months = match unit {
                "Year" if (1..=5).contains(&n) => n * 12,
                "Month" if MONTH_PERIODS.contains(&n) => n,
                _ => return Err(invalid_period()),
            } as u32;
            for (name, hourly) in [("instanceType", instance_h), ("systemDisk", disk_h), ("bandwidth", bw_h)] {
                let q = prices.subscription(hourly, months);
                let rule = discount_rule(q.rule);
                if q.discount > 0 {
                    rules = rule.clone();
                }
                parts.push((name, q.original * amount, q.discount * amount, rule));
            }
        }
        _ => {
            return Err(ApiError::new(
                400,
                "InvalidPriceUnit.ValueNotSupported",
                "Weekly subscriptions are not sold in this region.",
            ))
        }
    }
    Ok(price_answer(&prices.currency, &parts, rules))
}

fn price_unit(p: &crate::params::Params) -> Result<&str, ApiError> {
    let bad =
        || ApiError::new(400, "InvalidPriceUnit.ValueNotSupported", "The specified parameter PriceUnit is not valid.");
    Ok(p.choice_or("PriceUnit", &["Hour", "Week", "Month", "Year"], bad)?.unwrap_or("Hour"))
}

/// DescribePrice's answer: the total and its parts, (resource, original, discount, rules) each.
fn price_answer(currency: &str, parts: &[(&str, i128, i128, Value)], rules: Value) -> Value {
    let detail: Vec<Value> = parts
        .iter()
        .map(|(r, o, d, rule)| json!({"Resource": r, "OriginalPrice": price_number(*o), "DiscountPrice": price_number(*d), "TradePrice": price_number(o - d), "SubRules": {"Rule": rule}}))
        .collect();
    let original: i128 = parts.iter().map(|x| x.1).sum();
    let discount: i128 = parts.iter().map(|x| x.2).sum();
    json!({
        "PriceInfo": {
            "Price": {
                "Currency": currency,
                "OriginalPrice": price_number(original),
                "DiscountPrice": price_number(discount),
                "TradePrice": price_number(original - discount),
                "DetailInfos": {"DetailInfo": detail},
            },
            "Rules": {"Rule": rules},
        }
    })
}

/// DescribePrice with `ResourceType=disk`: the data disks `DataDisk.1.Category` and
/// `DataDisk.1.Size` (CreateDisk's disks, billed by the hour whatever they are attached to).
fn describe_disk_price(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let unit = price_unit(p)?;
    let disks = super::disks::data_disk_prices(p)?;
    if disks.is_empty() {
        return Err(ApiError::missing("DataDisk.1.Size"));
    }
    if unit != "Hour" {
        return Err(ApiError::invalid_because(
            "PriceUnit",
            "data disks are billed by the hour here; price them with PriceUnit=Hour",
        ));
    }
    let amount = || ApiError::new(403, "InvalidAmount.Malformed", "The specified parameter Amount is not valid.");
    let amount = p.int_or("Amount", 1, 1000, amount)?.unwrap_or(1) as i128;
    let prices = c.cp.prices()?;
    let mut hourly = 0;
    for (category, gib) in &disks {
        hourly += prices.disk_hour(category.as_str(), *gib).ok_or_else(|| {
            ApiError::new(
                400,
                "InvalidDataDiskCategory.ValueNotSupported",
                "The specified data disk category is not priced in this region.",
            )
        })?;
    }
    Ok(price_answer(&prices.currency, &[("dataDisk", hourly * amount, 0, json!([]))], json!([])))
}

/// Spot price history of an instance type (one zone or all), from StartTime (default: a day
/// ago) to EndTime (default: now), at most 30 days.
pub(super) fn describe_spot_price_history(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    // The codes this action documents for its parameters.
    let invalid = |name: &str| {
        ApiError::new(400, &format!("InvalidParams.{name}"), format!("The specified {name} is not valid."))
    };
    p.choice_or("NetworkType", &["vpc", "classic"], || invalid("NetworkType"))?
        .ok_or_else(|| ApiError::missing("NetworkType"))?;
    let type_id = p.required("InstanceType")?;
    let now = c.cp.now();
    let end = p.timestamp("EndTime").map_err(|_| invalid("EndTime"))?.unwrap_or(now);
    let start = p.timestamp("StartTime").map_err(|_| invalid("StartTime"))?.unwrap_or(end - chrono::Duration::days(1));
    if start > end || end - start > chrono::Duration::days(30) {
        return Err(ApiError::new(
            400,
            "InvalidParameter.TimeRange",
            "StartTime must precede EndTime by at most 30 days.",
        ));
    }
    let offset = p.int_or("Offset", 0, i64::MAX, || invalid("Offset"))?.unwrap_or(0) as usize;
    let points = c.cp.spot_history(type_id, p.get("ZoneId"), start.timestamp(), end.timestamp())?;
    const PAGE: usize = 1000;
    let page: Vec<Value> = points
        .iter()
        .skip(offset)
        .take(PAGE)
        .map(|q| {
            json!({
                "ZoneId": q.zone_id,
                "InstanceType": q.instance_type,
                "IoOptimized": "optimized",
                "NetworkType": "vpc",
                "Timestamp": seconds(&chrono::DateTime::from_timestamp(q.at_s, 0).unwrap_or(now)),
                "SpotPrice": price_number(q.hourly),
                "OriginPrice": price_number(q.origin),
            })
        })
        .collect();
    let next = if offset + page.len() < points.len() { (offset + page.len()) as i64 } else { 0 };
    Ok(json!({
        "Currency": c.cp.prices()?.currency,
        "NextOffset": next,
        "SpotPrices": {"SpotPriceType": page},
    }))
}
