//! Feiyun's own API (Version 2026-11-01), for what Alibaba Cloud's products have no action for:
//! `CalculateTco`, the own-versus-rent comparison of `feiyun tco`, priced from this region's
//! price book and catalog. Signed, throttled and audited like every other call.

use std::sync::Arc;

use feiyun_control::ControlPlane;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::params::Params;
use crate::render::{Node, Reply};

pub const VERSION: &str = "2026-11-01";

pub(crate) struct Call<'a> {
    pub cp: &'a Arc<ControlPlane>,
    pub account_id: &'a str,
    pub action: &'a str,
    pub params: &'a Params,
    pub reply: Reply<'a>,
}

pub(crate) fn handle(c: &Call<'_>) -> Result<Vec<u8>, ApiError> {
    let answer = match c.action {
        "CalculateTco" => calculate_tco(c),
        "ListHosts" => list_hosts(c),
        "CreateHostJoinToken" => create_join_token(c),
        "RevokeHostJoinToken" => revoke_join_token(c),
        "DrainHost" => drain_host(c),
        "EvacuateHost" => evacuate_host(c),
        _ => Err(ApiError::unknown_action()),
    }?;
    Ok(c.reply.write(&Node::from(answer)))
}

/// Host operations are the administrator's.
fn admin(c: &Call<'_>) -> Result<(), ApiError> {
    match c.cp.account(c.account_id)? {
        Some(a) if a.name == feiyun_control::ADMIN_ACCOUNT => Ok(()),
        _ => Err(feiyun_domain::DomainError::Forbidden.into()),
    }
}

fn resources(r: &feiyun_domain::Resources) -> Value {
    json!({"Vcpus": r.vcpus, "MemoryMib": r.memory_mib, "Gpus": r.gpus, "LocalDiskGib": r.local_disk_gib})
}

fn host_json(h: &feiyun_control::HostInfo) -> Value {
    json!({
        "HostId": h.host.id,
        "Name": h.host.name,
        "Zone": h.host.zone_id,
        "State": h.state.as_str(),
        "Simulated": h.host.simulated,
        "Capacity": resources(&h.host.capacity),
        "Used": resources(&h.used),
        "InstanceIds": h.instance_ids,
        "LastHeartbeat": h.last_heartbeat.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "Epoch": h.host.epoch,
        "Evacuating": h.evacuating,
    })
}

fn list_hosts(c: &Call<'_>) -> Result<Value, ApiError> {
    admin(c)?;
    let hosts: Vec<Value> = c.cp.list_hosts().iter().map(host_json).collect();
    Ok(json!({"Hosts": hosts}))
}

fn create_join_token(c: &Call<'_>) -> Result<Value, ApiError> {
    admin(c)?;
    let (t, token) = c.cp.create_join_token(c.params.get("ZoneId"))?;
    Ok(json!({"Token": token, "TokenId": t.id, "ZoneId": t.zone_id.unwrap_or_default()}))
}

fn revoke_join_token(c: &Call<'_>) -> Result<Value, ApiError> {
    admin(c)?;
    let t = c.cp.revoke_join_token(c.params.required("Token")?)?;
    Ok(json!({"TokenId": t.id, "Revoked": true}))
}

fn drain_host(c: &Call<'_>) -> Result<Value, ApiError> {
    admin(c)?;
    let h = c.cp.drain_host(c.params.required("HostId")?, c.params.bool("Drain")?.unwrap_or(true))?;
    Ok(json!({"Host": host_json(&h)}))
}

fn evacuate_host(c: &Call<'_>) -> Result<Value, ApiError> {
    admin(c)?;
    let h = c.cp.evacuate_host(c.params.required("HostId")?, c.params.bool("Force")?.unwrap_or(false))?;
    Ok(json!({"Host": host_json(&h)}))
}

/// `Plan`: the plan file's TOML text (docs/tco.md); `Trace`: optionally, a workload trace in the
/// neutral CSV of `feiyun trace convert` (docs/replay.md) instead of the plan's `[[workload]]`.
/// Returns the report (as `feiyun tco --out` writes it), the printed table and the SVG chart.
fn calculate_tco(c: &Call<'_>) -> Result<Value, ApiError> {
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
    }))
}
