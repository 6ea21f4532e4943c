//! Running a routed call and writing its answer or its failure: the one entry from the server
//! into the products' handlers.

use std::sync::Arc;

use feiyun_control::ControlPlane;
use serde_json::json;

use crate::api::{self, ProductKind, Region, Route};
use crate::error::ApiError;
use crate::params::Params;
use crate::render::{self, Format, Node, Reply};
use crate::{bss, ecs, feiyun, vpc};

/// Who calls, with what, and how the answer is to be written; the route says what for.
pub struct Ctx<'a> {
    pub cp: &'a Arc<ControlPlane>,
    /// The caller's account (from its access key).
    pub account_id: &'a str,
    pub params: &'a Params,
    /// The endpoint the client called (its Host header), which DescribeRegions reports.
    pub endpoint: &'a str,
    /// The request's id, written into the answer.
    pub request_id: &'a str,
    /// The format the request asked for ([`Format::of_request`]).
    pub format: Format,
}

/// Run a routed call. The result is the written answer, in the request's format.
pub fn dispatch(route: Route, ctx: &Ctx<'_>) -> Result<Vec<u8>, ApiError> {
    let action = route.action.name;
    match (ctx.params.get("RegionId"), route.action.region) {
        (_, Region::Absent) => {}
        (Some(region), _) => ctx.cp.check_region(region)?,
        (None, Region::Required) => return Err(ApiError::missing("RegionId")),
        (None, Region::Optional) => {}
    }
    let reply = Reply { format: ctx.format, action, request_id: ctx.request_id };
    match route.product.kind {
        ProductKind::Ecs => ecs::handle(&ecs::Call {
            cp: ctx.cp,
            account_id: ctx.account_id,
            action,
            params: ctx.params,
            endpoint: ctx.endpoint,
            reply,
        }),
        ProductKind::Vpc => {
            vpc::handle(&vpc::Call { cp: ctx.cp, account_id: ctx.account_id, action, params: ctx.params, reply })
        }
        ProductKind::Bss => {
            let name = ctx.cp.account(ctx.account_id)?.map(|a| a.name).unwrap_or_default();
            bss::handle(&bss::Call {
                cp: ctx.cp,
                account_id: ctx.account_id,
                account_name: &name,
                action,
                params: ctx.params,
                reply,
            })
        }
        ProductKind::Feiyun => {
            feiyun::handle(&feiyun::Call { cp: ctx.cp, account_id: ctx.account_id, action, params: ctx.params, reply })
        }
    }
}

/// The tree of an error answer. BssOpenApi's carries its envelope (`Success: false`, `Data:
/// null`); every other, including a request whose version is unknown or missing, the ECS shape
/// with `HostId` and `Recommend` (naming the product, ECS when unknown).
pub fn error_body(version: Option<&str>, e: &ApiError, request_id: &str, host: &str) -> Node<'static> {
    let product = version.and_then(api::product_by_version);
    let tree = match product.map(|p| p.kind) {
        Some(ProductKind::Bss) => json!({
            "RequestId": request_id,
            "HostId": host,
            "Code": e.code,
            "Message": e.message,
            "Success": false,
            "Data": null,
        }),
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
    };
    Node::from(tree)
}

/// An error answer, written in `format` (XML: `<Error>…</Error>`).
pub fn render_error(format: Format, version: Option<&str>, e: &ApiError, request_id: &str, host: &str) -> Vec<u8> {
    render::error(format, request_id, &error_body(version, e, request_id, host))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn parsed(version: Option<&str>, e: &ApiError) -> Value {
        serde_json::from_slice(&render_error(Format::Json, version, e, "RID", "h")).expect("JSON")
    }

    #[test]
    fn errors_carry_their_product_envelope() {
        let e = ApiError::unknown_action();
        assert_eq!(
            String::from_utf8(render_error(Format::Json, Some("2017-12-14"), &e, "RID", "h")).expect("UTF-8"),
            format!(
                r#"{{"RequestId":"RID","HostId":"h","Code":"InvalidAction.NotFound","Message":"{}","Success":false,"Data":null}}"#,
                e.message
            )
        );
        for version in [Some("2014-05-26"), Some("2026-11-01"), Some("2099-01-01"), None] {
            let ecs = parsed(version, &e);
            assert_eq!(ecs["RequestId"], "RID");
            assert_eq!(ecs["HostId"], "h");
            assert_eq!(ecs["Code"], "InvalidAction.NotFound");
            assert!(ecs["Recommend"].as_str().is_some_and(|r| r.contains("requestId=RID")));
        }
    }

    #[test]
    fn errors_in_xml_are_an_error_element() {
        let e = ApiError::missing("ImageId");
        let x = String::from_utf8(render_error(Format::Xml, Some("2014-05-26"), &e, "RID", "h")).expect("UTF-8");
        assert!(
            x.starts_with(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><RequestId>RID</RequestId><HostId>h</HostId>\
                 <Code>MissingParameter</Code><Message>The input parameter \"ImageId\" that is mandatory"
            ),
            "{x}"
        );
        assert!(x.contains("<Recommend>https://api.aliyun.com/troubleshoot?q=MissingParameter&amp;product=Ecs&amp;requestId=RID</Recommend></Error>"), "{x}");
        let bss = String::from_utf8(render_error(Format::Xml, Some("2017-12-14"), &e, "RID", "h")).expect("UTF-8");
        assert!(bss.ends_with("<Success>false</Success><Data/></Error>"), "{bss}");
    }
}
