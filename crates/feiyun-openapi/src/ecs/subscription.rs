//! How an instance is paid for: purchase parameters shared by RunInstances and DescribePrice,
//! RenewInstance, ModifyInstanceAutoRenewAttribute, ModifyInstanceChargeType.

use feiyun_billing::money::Money;
use feiyun_domain::instance::{ChargeType, SpotStrategy};
use feiyun_domain::ops::Purchase;
use serde_json::{json, Value};

use super::Call;
use crate::error::ApiError;
use crate::params::Params;

/// Subscription terms ECS sells, in months (PeriodUnit=Month).
pub(super) const MONTH_PERIODS: &[i64] = &[1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 24, 36, 48, 60];
pub(super) const AUTO_RENEW_PERIODS: &[i64] = &[1, 2, 3, 6, 12, 24, 36, 48, 60];

/// A subscription term from `Period` and `PeriodUnit` (Month default, or Year), in months.
pub(super) fn period_months(p: &Params) -> Result<Option<u32>, ApiError> {
    let Some(n) = p.int("Period", 1, 60)? else { return Ok(None) };
    let months = match p.choice("PeriodUnit", &["Month", "Year", "Week"])? {
        None | Some("Month") if MONTH_PERIODS.contains(&n) => n,
        Some("Year") if (1..=5).contains(&n) => n * 12,
        Some("Week") => {
            return Err(ApiError::new(
                400,
                "InvalidPeriodUnit.ValueNotSupported",
                "Weekly subscriptions are not sold in this region.",
            ))
        }
        _ => return Err(ApiError::new(400, "InvalidPeriod", "The specified period is not valid.")),
    };
    Ok(Some(months as u32))
}

/// How RunInstances / CreateInstance / DescribePrice ask to pay: charge type, term, spot bid.
pub(super) fn purchase_params(p: &Params) -> Result<Purchase, ApiError> {
    let charge_type = match p.choice("InstanceChargeType", &["PostPaid", "PrePaid"])? {
        Some("PrePaid") => ChargeType::PrePaid,
        _ => ChargeType::PostPaid,
    };
    let spot_strategy = match p.choice("SpotStrategy", &["NoSpot", "SpotWithPriceLimit", "SpotAsPriceGo"])? {
        Some("SpotWithPriceLimit") => SpotStrategy::SpotWithPriceLimit,
        Some("SpotAsPriceGo") => SpotStrategy::SpotAsPriceGo,
        _ => SpotStrategy::NoSpot,
    };
    let mut out = Purchase { charge_type, spot_strategy, spot_duration_h: 1, ..Purchase::default() };
    if charge_type == ChargeType::PrePaid {
        if spot_strategy != SpotStrategy::NoSpot {
            return Err(ApiError::new(400, "InvalidSpotStrategy", "Spot instances must be pay-as-you-go (PostPaid)."));
        }
        out.period_months = Some(period_months(p)?.ok_or_else(|| ApiError::missing("Period"))?);
        if p.bool("AutoRenew")?.unwrap_or(false) {
            let n = p.int("AutoRenewPeriod", 1, 60)?.unwrap_or(1);
            if !AUTO_RENEW_PERIODS.contains(&n) {
                return Err(ApiError::new(
                    400,
                    "InvalidAutoRenewPeriod.ValueNotSupported",
                    "The specified AutoRenewPeriod is not valid.",
                ));
            }
            out.auto_renew_months = Some(n as u32);
        }
    }
    if spot_strategy == SpotStrategy::SpotWithPriceLimit {
        let limit = p.required("SpotPriceLimit")?;
        let micros = Money::parse_micros(limit).filter(|m| *m > 0 && *m < i64::MAX as i128).ok_or_else(|| {
            ApiError::invalid_because("SpotPriceLimit", "a positive hourly price with at most 6 decimals")
        })?;
        out.spot_price_limit_micros = Some(micros as i64);
    }
    if spot_strategy != SpotStrategy::NoSpot {
        out.spot_duration_h = p.int("SpotDuration", 0, 1)?.unwrap_or(1) as u32;
        out.spot_stop_on_interrupt = p.choice("SpotInterruptionBehavior", &["Terminate", "Stop"])? == Some("Stop");
    }
    Ok(out)
}

/// RenewInstance: extend a subscription, paid now from the balance.
pub(super) fn renew_instance(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let id = p.required("InstanceId")?;
    let months = period_months(p)?.ok_or_else(|| ApiError::missing("Period"))?;
    let before = c.cp.balance_cents(c.account_id)?;
    c.cp.renew_instance(c.account_id, id, months)?;
    let after = c.cp.balance_cents(c.account_id)?;
    Ok(json!({"OrderId": format!("{id}-renew-{months}"), "TradePrice": (before - after) as f64 / 100.0}))
}

/// ModifyInstanceChargeType: PrePaid → PostPaid (refunding unused time) or PostPaid → PrePaid.
pub(super) fn modify_instance_charge_type(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let raw = p.required("InstanceIds")?;
    let ids: Vec<String> = serde_json::from_str(raw)
        .map_err(|_| ApiError::invalid_because("InstanceIds", "a JSON array of instance ids"))?;
    if ids.is_empty() || ids.len() > 20 {
        return Err(ApiError::invalid_because("InstanceIds", "1 to 20 instance ids"));
    }
    let to = match p.choice("InstanceChargeType", &["PostPaid", "PrePaid"])? {
        Some("PostPaid") => ChargeType::PostPaid,
        _ => ChargeType::PrePaid,
    };
    let months = if to == ChargeType::PrePaid { Some(period_months(p)?.unwrap_or(1)) } else { None };
    let dry_run = p.bool("DryRun")?.unwrap_or(false);
    let fees = c.cp.convert_charge_type(c.account_id, &ids, to, months, dry_run)?;
    let currency = c.cp.prices()?.currency.clone();
    let fee: Vec<Value> = fees
        .iter()
        .map(|(id, cents)| json!({"InstanceId": id, "Fee": format!("{:.2}", *cents as f64 / 100.0), "Currency": currency}))
        .collect();
    Ok(json!({"OrderId": format!("{}-charge-{}", ids[0], to.as_str()), "FeeOfInstances": {"FeeOfInstance": fee}}))
}

/// ModifyInstanceAutoRenewAttribute: turn auto-renewal on (with a duration) or off.
pub(super) fn modify_auto_renew(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let ids: Vec<String> =
        p.required("InstanceId")?.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
    let renew = match p.choice("RenewalStatus", &["AutoRenewal", "Normal", "NotRenewal"])? {
        Some(s) => s == "AutoRenewal",
        None => p.bool("AutoRenew")?.unwrap_or(false),
    };
    let months = if renew {
        let n = p.int("Duration", 1, 60)?.unwrap_or(1);
        let n = if p.get("PeriodUnit") == Some("Year") { n * 12 } else { n };
        if !AUTO_RENEW_PERIODS.contains(&n) {
            return Err(ApiError::new(400, "InvalidDuration", "The specified Duration is not valid."));
        }
        Some(n as u32)
    } else {
        None
    };
    c.cp.set_auto_renew(c.account_id, &ids, months)?;
    Ok(json!({}))
}
