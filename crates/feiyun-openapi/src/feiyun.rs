//! Feiyun's own API (Version 2026-11-01), for what Alibaba Cloud's products have no action for:
//! `CalculateTco`, the own-versus-rent comparison of `feiyun tco`, priced from this region's
//! price book and catalog. Signed, throttled and audited like every other call.

use std::sync::Arc;

use feiyun_control::ControlPlane;
use serde_json::json;

use crate::error::ApiError;
use crate::params::Params;

pub const VERSION: &str = "2026-11-01";

pub(crate) struct Call<'a> {
    pub cp: &'a Arc<ControlPlane>,
    pub action: &'a str,
    pub params: &'a Params,
}

pub(crate) fn handle(c: &Call<'_>) -> Result<String, ApiError> {
    match c.action {
        "CalculateTco" => calculate_tco(c),
        _ => Err(ApiError::unknown_action()),
    }
}

/// `Plan`: the plan file's TOML text (docs/tco.md); `Trace`: optionally, a workload trace in the
/// neutral CSV of `feiyun trace convert` (docs/replay.md) instead of the plan's `[[workload]]`.
/// Returns the report (as `feiyun tco --out` writes it), the printed table and the SVG chart.
fn calculate_tco(c: &Call<'_>) -> Result<String, ApiError> {
    let p = c.params;
    let plan = p.required("Plan")?;
    let trace = match p.get("Trace") {
        Some(csv) => Some(
            feiyun_sim::trace::parse_csv(csv)
                .map_err(|e| ApiError::new(400, "InvalidParameter.Trace", format!("The trace is not valid: {e}")))?,
        ),
        None => None,
    };
    let report = feiyun_tco::evaluate(plan, c.cp.price_book(), &c.cp.region().id, c.cp.catalog(), trace.as_deref())
        .map_err(|e| ApiError::new(400, "InvalidParameter.Plan", e.to_string()))?;
    Ok(json!({
        "Report": report,
        "Table": feiyun_tco::table(&report),
        "Chart": feiyun_tco::chart(&report),
    })
    .to_string())
}
