//! How an instance is paid for: purchase parameters of RunInstances and CreateInstance,
//! RenewInstance, ModifyInstanceAutoRenewAttribute, ModifyInstanceChargeType.

use feiyun_billing::money::Money;
use feiyun_domain::instance::{ChargeType, SpotStrategy};
use feiyun_domain::ops::Purchase;
use serde_json::{json, Value};

use super::Call;
use crate::error::ApiError;
use crate::params::{distinct, Params};

/// Subscription terms ECS sells, in months (PeriodUnit=Month).
pub(super) const MONTH_PERIODS: &[i64] = &[1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 24, 36, 48, 60];
pub(super) const AUTO_RENEW_PERIODS: &[i64] = &[1, 2, 3, 6, 12, 24, 36, 48, 60];

pub(super) fn invalid_period() -> ApiError {
    ApiError::new(400, "InvalidPeriod", "The specified period is not valid.")
}

fn invalid_period_unit() -> ApiError {
    ApiError::new(400, "InvalidPeriodUnit.ValueNotSupported", "The specified parameter PeriodUnit is not valid.")
}

/// A subscription term from `Period` and `PeriodUnit` (Month default, or Year), in months.
pub(super) fn period_months(p: &Params) -> Result<Option<u32>, ApiError> {
    let unit = p.choice_or("PeriodUnit", &["Month", "Year", "Week"], invalid_period_unit)?;
    let Some(n) = p.int_or("Period", 1, 60, invalid_period)? else { return Ok(None) };
    let months = match unit {
        None | Some("Month") if MONTH_PERIODS.contains(&n) => n,
        Some("Year") if (1..=5).contains(&n) => n * 12,
        Some("Week") => {
            return Err(ApiError::new(
                400,
                "InvalidPeriodUnit.ValueNotSupported",
                "Weekly subscriptions are not sold in this region.",
            ))
        }
        _ => return Err(invalid_period()),
    };
    Ok(Some(months as u32))
}

/// `InstanceChargeType`, refused with ECS's code for an unknown one.
fn charge_type(p: &Params) -> Result<Option<ChargeType>, ApiError> {
    let unknown = || {
        ApiError::new(404, "InvalidInstanceChargeType.NotFound", "The InstanceChargeType does not exist in our records")
    };
    Ok(p.choice_or("InstanceChargeType", &["PostPaid", "PrePaid"], unknown)?.and_then(ChargeType::parse))
}

/// How RunInstances / CreateInstance ask to pay: charge type, term, spot bid.
pub(super) fn purchase_params(p: &Params) -> Result<Purchase, ApiError> {
    let charge_type = charge_type(p)?.unwrap_or(ChargeType::PostPaid);
    let spot_strategy = match spot_strategy(p)? {
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
            let invalid = || {
                ApiError::new(
                    400,
                    "InvalidAutoRenewPeriod.ValueNotSupported",
                    "The specified AutoRenewPeriod is not valid.",
                )
            };
            let n = p.int_or("AutoRenewPeriod", 1, 60, invalid)?.unwrap_or(1);
            if !AUTO_RENEW_PERIODS.contains(&n) {
                return Err(invalid());
            }
            out.auto_renew_months = Some(n as u32);
        }
    }
    // Like Period, SpotPriceLimit and the other spot parameters only count (and are only
    // checked) when they take effect.
    if spot_strategy == SpotStrategy::SpotWithPriceLimit {
        let limit = p.required("SpotPriceLimit")?;
        let micros = Money::parse_micros(limit)
            .filter(|m| *m > 0 && *m < i64::MAX as i128)
            .ok_or_else(|| ApiError::new(400, "InvalidSpotPriceLimit", "The specified SpotPriceLimit is not valid."))?;
        out.spot_price_limit_micros = Some(micros as i64);
    }
    if spot_strategy != SpotStrategy::NoSpot {
        let duration = || ApiError::new(400, "InvalidSpotDuration", "The specified SpotDuration is not valid.");
        out.spot_duration_h = p.int_or("SpotDuration", 0, 1, duration)?.unwrap_or(1) as u32;
        let behavior = || {
            ApiError::new(
                400,
                "InvalidSpotInterruptionBehavior",
                "The specified SpotInterruptionBehavior is not valid.",
            )
        };
        out.spot_stop_on_interrupt =
            p.choice_or("SpotInterruptionBehavior", &["Terminate", "Stop"], behavior)? == Some("Stop");
    }
    Ok(out)
}

/// `SpotStrategy`, refused with ECS's code for an unknown one.
pub(super) fn spot_strategy(p: &Params) -> Result<Option<&'static str>, ApiError> {
    let invalid = || ApiError::new(400, "InvalidSpotStrategy", "The specified SpotStrategy is not valid.");
    p.choice_or("SpotStrategy", &["NoSpot", "SpotWithPriceLimit", "SpotAsPriceGo"], invalid)
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
    let ids = p.json_list("InstanceIds", 20)?.ok_or_else(|| ApiError::missing("InstanceIds"))?;
    if ids.is_empty() {
        return Err(ApiError::invalid_because("InstanceIds", "1 to 20 instance ids"));
    }
    // Converting one instance twice in one order would charge or refund it twice.
    distinct("InstanceIds", &ids)?;
    let to = charge_type(p)?.unwrap_or(ChargeType::PrePaid);
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
    if ids.is_empty() || ids.len() > 100 {
        return Err(ApiError::invalid_because("InstanceId", "1 to 100 instance ids, comma-separated"));
    }
    distinct("InstanceId", &ids)?;
    let renew = match p.choice("RenewalStatus", &["AutoRenewal", "Normal", "NotRenewal"])? {
        Some(s) => s == "AutoRenewal",
        None => p.bool("AutoRenew")?.unwrap_or(false),
    };
    let unit = p.choice_or("PeriodUnit", &["Month", "Year"], invalid_period_unit)?;
    let months = if renew {
        let invalid = || ApiError::new(400, "InvalidDuration", "The specified Duration is not valid.");
        let n = p.int_or("Duration", 1, 60, invalid)?.unwrap_or(1);
        let n = if unit == Some("Year") { n * 12 } else { n };
        if !AUTO_RENEW_PERIODS.contains(&n) {
            return Err(invalid());
        }
        Some(n as u32)
    } else {
        None
    };
    c.cp.set_auto_renew(c.account_id, &ids, months)?;
    Ok(json!({}))
}
