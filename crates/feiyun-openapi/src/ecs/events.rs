//! Health and system events: DescribeInstancesFullStatus, DescribeInstanceHistoryEvents.
//!
//! Feiyun records two kinds of system event: `SystemFailure.Reboot` while an instance's host is
//! unreachable (executing until the host returns, then executed), and `SystemFailure.Redeploy`
//! when the instance was re-created on another host after its host failed.

use feiyun_domain::event::{EventCycle, EventKind, SystemEvent};
use feiyun_domain::instance::{Instance, InstanceStatus};
use feiyun_domain::ops::InstanceFilter;
use serde_json::{json, Value};

use super::{page, seconds, Call};
use crate::error::ApiError;

fn status_code(s: InstanceStatus) -> u32 {
    match s {
        InstanceStatus::Pending => 0,
        InstanceStatus::Running => 1,
        InstanceStatus::Starting => 2,
        InstanceStatus::Stopping => 3,
        InstanceStatus::Stopped | InstanceStatus::Deleted => 4,
    }
}

fn health_code(h: &str) -> u32 {
    match h {
        "Ok" => 0,
        "Impaired" => 1,
        "Initializing" => 2,
        "InsufficientData" => 3,
        _ => 4,
    }
}

fn event_type(k: EventKind) -> Value {
    let code = match k {
        EventKind::HostUnreachable => 65,
        EventKind::Redeployed => 66,
    };
    json!({"Code": code, "Name": k.code()})
}

fn cycle(c: EventCycle) -> Value {
    let code = match c {
        EventCycle::Executing => 32,
        EventCycle::Executed => 48,
        EventCycle::Canceled => 34,
        EventCycle::Failed => 64,
    };
    json!({"Code": code, "Name": c.as_str()})
}

fn event_json(e: &SystemEvent, host_id: &str) -> Value {
    json!({
        "EventId": e.id,
        "InstanceId": e.instance_id,
        "ResourceType": "instance",
        "EventType": event_type(e.kind),
        "EventCycleStatus": cycle(e.cycle),
        "EventPublishTime": seconds(&e.published_at),
        "NotBefore": seconds(&e.published_at),
        "EventFinishTime": e.finished_at.as_ref().map(seconds).unwrap_or_default(),
        "Reason": e.reason,
        "ReasonCode": "",
        "ImpactLevel": "",
        "ExtendedAttribute": {"HostId": host_id, "HostType": "feiyun"},
    })
}

pub(super) fn describe_instances_full_status(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let ids = p.list("InstanceId", 100)?;
    let status = p.get("Status").and_then(InstanceStatus::parse);
    let health = p.get("HealthStatus");
    let (offset, size, number) = page(p, 10, 100)?;
    let filter = InstanceFilter { ids: (!ids.is_empty()).then_some(ids), ..Default::default() };
    let matched: Vec<(Instance, &'static str)> =
        c.cp.describe_instances(c.account_id, &filter)
            .into_iter()
            .filter(|i| status.map(|s| i.status == s).unwrap_or(true))
            .map(|i| {
                let h = c.cp.instance_health(&i);
                (i, h)
            })
            .filter(|(_, h)| health.map(|w| w == *h).unwrap_or(true))
            .collect();
    let total = matched.len();
    let items: Vec<Value> = matched
        .iter()
        .skip(offset)
        .take(size)
        .map(|(i, h)| {
            let open: Vec<Value> = c.cp.open_event(&i.id).iter().map(|e| event_json(e, &i.host_id)).collect();
            json!({
                "InstanceId": i.id,
                "Status": {"Code": status_code(i.status), "Name": i.status.as_str()},
                "HealthStatus": {"Code": health_code(h), "Name": h},
                "ScheduledSystemEventSet": {"ScheduledSystemEventType": open},
            })
        })
        .collect();
    Ok(json!({
        "InstanceFullStatusSet": {"InstanceFullStatusType": items},
        "TotalCount": total,
        "PageNumber": number,
        "PageSize": size,
    }))
}

pub(super) fn describe_instance_history_events(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let instance = p.get("InstanceId");
    if let Some(id) = instance {
        // Another tenant's instance is as missing as one that never was.
        c.cp.instance(c.account_id, id)?;
    }
    let ids = p.list("EventId", 100)?;
    let types = p.list("InstanceEventType", 30)?;
    let cycles = p.list("InstanceEventCycleStatus", 10)?;
    let (offset, size, number) = page(p, 10, 100)?;
    let events: Vec<SystemEvent> =
        c.cp.system_events(c.account_id, instance)?
            .into_iter()
            .filter(|e| ids.is_empty() || ids.contains(&e.id))
            .filter(|e| types.is_empty() || types.iter().any(|t| t == e.kind.code()))
            .filter(|e| cycles.is_empty() || cycles.iter().any(|s| s == e.cycle.as_str()))
            .collect();
    let total = events.len();
    let items: Vec<Value> = events
        .iter()
        .skip(offset)
        .take(size)
        .map(|e| {
            let host = c.cp.instance(c.account_id, &e.instance_id).map(|i| i.host_id).unwrap_or_default();
            event_json(e, &host)
        })
        .collect();
    Ok(json!({
        "InstanceSystemEventSet": {"InstanceSystemEventType": items},
        "TotalCount": total,
        "PageNumber": number,
        "PageSize": size,
        "NextToken": "",
    }))
}
