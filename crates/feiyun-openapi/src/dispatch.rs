//! Running a routed call and rendering its failure: the one entry from the server into the
//! products' handlers.

use std::sync::Arc;

use feiyun_control::ControlPlane;
use serde_json::{json, Value};

use crate::api::{self, ProductKind, Region, Route};
use crate::error::ApiError;
use crate::params::Params;
use crate::{bss, ecs, feiyun, vpc};

/// Who calls, with what; the route says what for.
pub struct Ctx<'a> {
    pub cp: &'a Arc<ControlPlane>,
    /// The caller's account (from its access key).
    pub account_id: &'a str,
    pub params: &'a Params,
    /// The endpoint the client called (its Host header), which DescribeRegions reports.
    pub endpoint: &'a str,
}

/// Run a routed call. The result is the response's JSON object without `RequestId`; the caller
/// puts the request id first.
pub fn dispatch(route: Route, ctx: &Ctx<'_>) -> Result<String, ApiError> {
    let action = route.action.name;
    match (ctx.params.get("RegionId"), route.action.region) {
        (_, Region::Absent) => {}
        (Some(region), _) => ctx.cp.check_region(region)?,
        (None, Region::Required) => return Err(ApiError::missing("RegionId")),
        (None, Region::Optional) => {}
    }
    match route.product.kind {
        ProductKind::Ecs => ecs::handle(&ecs::Call {
            cp: ctx.cp,
            account_id: ctx.account_id,
            action,
            params: ctx.params,
            endpoint: ctx.endpoint,
        }),
        ProductKind::Vpc => {
            vpc::handle(&vpc::Call { cp: ctx.cp, account_id: ctx.account_id, action, params: ctx.params })
        }
        ProductKind::Bss => {
            let name = ctx.cp.account(ctx.account_id)?.map(|a| a.name).unwrap_or_default();
            bss::handle(&bss::Call {
                cp: ctx.cp,
                account_id: ctx.account_id,
                account_name: &name,
                action,
                params: ctx.params,
            })
        }
        ProductKind::Feiyun => {
            feiyun::handle(&feiyun::Call { cp: ctx.cp, account_id: ctx.account_id, action, params: ctx.params })
        }
    }
}

/// The body of an error answer. BssOpenApi's carries its envelope (`Success: false`, `Data:
/// null`); every other, including a request whose version is unknown or missing, the ECS shape
/// with `HostId` and `Recommend` (naming the product, ECS when unknown).
pub fn error_body(version: Option<&str>, e: &ApiError, request_id: &str, host: &str) -> Value {
    let product = version.and_then(api::product_by_version);
    match product.map(|p| p.kind) {
        Some(ProductKind::Bss) => {
            json!({"RequestId": request_id, "Code": e.code, "Message": e.message, "Success": false, "Data": null})
        }
        kind => json!({
            "RequestId": request_id,
            "HostId": host,
            "Code": e.code,
            "Message": e.message,
            "Recommend": format!(
                "https://api.aliyun.com/troubleshoot?q={}&product={}&requestId={}",
                e.code,
                if kind == Some(ProductKind::Vpc) { "Vpc" } else { "Ecs" },
                request_id
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_carry_their_product_envelope() {
        let e = ApiError::unknown_action();
        let bss = error_body(Some("2017-12-14"), &e, "RID", "h");
        assert_eq!(
            bss,
            json!({"RequestId": "RID", "Code": "InvalidAction.NotFound", "Message": e.message, "Success": false, "Data": null})
        );
        for version in [Some("2014-05-26"), Some("2026-11-01"), Some("2099-01-01"), None] {
            let ecs = error_body(version, &e, "RID", "h");
            assert_eq!(ecs["HostId"], "h");
            assert_eq!(ecs["Code"], "InvalidAction.NotFound");
            assert!(ecs["Recommend"].as_str().is_some_and(|r| r.contains("requestId=RID")));
        }
    }
}
