//! Power and release: StartInstance(s), StopInstance(s), RebootInstance(s), DeleteInstance(s).

use feiyun_domain::instance::{InstanceStatus, StoppedMode, UserAction};
use feiyun_domain::ops::StopOptions;
use feiyun_domain::DomainError;
use serde_json::{json, Value};

use super::Call;
use crate::error::ApiError;
use crate::params::Params;

/// How StopInstance(s) stop: `StoppedMode` (KeepCharging by default).
fn stopped_mode(p: &Params) -> Result<StoppedMode, ApiError> {
    Ok(match p.choice("StoppedMode", &["StopCharging", "KeepCharging"])? {
        Some(m) => StoppedMode::parse(m).unwrap_or(StoppedMode::KeepCharging),
        None => StoppedMode::KeepCharging,
    })
}

pub(super) fn start_instance(c: &Call<'_>) -> Result<Value, ApiError> {
    single(c, UserAction::Start, None)
}

pub(super) fn stop_instance(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let stop = StopOptions { force: p.bool("ForceStop")?.unwrap_or(false), mode: stopped_mode(p)? };
    single(c, UserAction::Stop, Some(stop))
}

pub(super) fn reboot_instance(c: &Call<'_>) -> Result<Value, ApiError> {
    let stop = StopOptions { force: c.params.bool("ForceStop")?.unwrap_or(false), mode: StoppedMode::KeepCharging };
    single(c, UserAction::Reboot, Some(stop))
}

pub(super) fn delete_instance(c: &Call<'_>) -> Result<Value, ApiError> {
    let force = c.params.bool("Force")?.unwrap_or(false);
    single(c, UserAction::Delete { force }, None)
}

/// One instance, all-or-nothing.
fn single(c: &Call<'_>, action: UserAction, stop: Option<StopOptions>) -> Result<Value, ApiError> {
    let p = c.params;
    let id = p.required("InstanceId")?.to_string();
    let dry = p.bool("DryRun")?.unwrap_or(false);
    c.cp.act(c.account_id, &[id], action, stop, true, dry).map_err(|e| refusal(action, e))?;
    Ok(json!({}))
}

/// The code of a refused action. Starting an instance that is still being created (Pending:
/// its host has not set up its disk yet) is `InstanceNotReady`, as StartInstance documents it;
/// every other refusal is the domain's.
fn refusal(action: UserAction, e: DomainError) -> ApiError {
    match e {
        DomainError::IncorrectStatus { status: InstanceStatus::Pending } if action == UserAction::Start => {
            ApiError::new(403, "InstanceNotReady", "The specified instance is not ready for use.")
        }
        e => ApiError::from(e),
    }
}

pub(super) fn start_instances(c: &Call<'_>) -> Result<Value, ApiError> {
    batch(c, UserAction::Start, None)
}

pub(super) fn stop_instances(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let stop = StopOptions { force: p.bool("ForceStop")?.unwrap_or(false), mode: stopped_mode(p)? };
    batch(c, UserAction::Stop, Some(stop))
}

pub(super) fn reboot_instances(c: &Call<'_>) -> Result<Value, ApiError> {
    let stop = StopOptions { force: c.params.bool("ForceReboot")?.unwrap_or(false), mode: StoppedMode::KeepCharging };
    batch(c, UserAction::Reboot, Some(stop))
}

/// StartInstances, StopInstances, RebootInstances: per-instance outcomes.
fn batch(c: &Call<'_>, action: UserAction, stop: Option<StopOptions>) -> Result<Value, ApiError> {
    let p = c.params;
    let ids = p.distinct_list("InstanceId", 100)?;
    if ids.is_empty() {
        return Err(ApiError::missing("InstanceId.1"));
    }
    let all_together =
        !matches!(p.choice("BatchOptimization", &["AllTogether", "SuccessFirst"])?, Some("SuccessFirst"));
    let dry = p.bool("DryRun")?.unwrap_or(false);
    let out = c.cp.act(c.account_id, &ids, action, stop, all_together, dry).map_err(|e| refusal(action, e))?;
    let items: Vec<Value> = out
        .into_iter()
        .map(|(id, r)| match r {
            Ok((prev, cur)) => json!({"InstanceId": id, "Code": "200", "Message": "success", "PreviousStatus": prev.as_str(), "CurrentStatus": cur.as_str()}),
            Err(e) => {
                let current = c.cp.instance(c.account_id, &id).map(|i| i.status.as_str().to_string()).unwrap_or_default();
                let api = refusal(action, e);
                json!({"InstanceId": id, "Code": api.code, "Message": api.message, "PreviousStatus": current, "CurrentStatus": current})
            }
        })
        .collect();
    Ok(json!({"InstanceResponses": {"InstanceResponse": items}}))
}

pub(super) fn delete_instances(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let ids = p.distinct_list("InstanceId", 100)?;
    if ids.is_empty() {
        return Err(ApiError::missing("InstanceId.1"));
    }
    let force = p.bool("Force")?.unwrap_or(false);
    let dry = p.bool("DryRun")?.unwrap_or(false);
    c.cp.act(c.account_id, &ids, UserAction::Delete { force }, None, true, dry)?;
    Ok(json!({}))
}
