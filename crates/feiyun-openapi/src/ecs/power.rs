//! Power and release: StartInstance(s), StopInstance(s), RebootInstance(s), DeleteInstance(s).

use feiyun_domain::instance::{StoppedMode, UserAction};
use feiyun_domain::ops::StopOptions;
use serde_json::{json, Value};

use super::Call;
use crate::error::ApiError;
use crate::params::Params;

pub(super) fn stop_options(p: &Params, force_param: &str) -> Result<StopOptions, ApiError> {
    let mode = match p.choice("StoppedMode", &["StopCharging", "KeepCharging"])? {
        Some(m) => StoppedMode::parse(m).unwrap_or(StoppedMode::KeepCharging),
        None => StoppedMode::KeepCharging,
    };
    Ok(StopOptions { force: p.bool(force_param)?.unwrap_or(false), mode })
}

/// StartInstance, StopInstance, RebootInstance, DeleteInstance: one instance, all-or-nothing.
pub(super) fn single(c: &Call<'_>, action: UserAction) -> Result<Value, ApiError> {
    let p = c.params;
    let id = p.required("InstanceId")?.to_string();
    let stop = match action {
        UserAction::Stop | UserAction::Reboot => Some(stop_options(p, "ForceStop")?),
        _ => None,
    };
    let dry = p.bool("DryRun")?.unwrap_or(false);
    c.cp.act(c.account_id, &[id], action, stop, true, dry)?;
    Ok(json!({}))
}

/// StartInstances, StopInstances, RebootInstances: per-instance outcomes.
pub(super) fn batch(c: &Call<'_>, action: UserAction, list: &str) -> Result<Value, ApiError> {
    let p = c.params;
    let ids = p.list(list, 100)?;
    if ids.is_empty() {
        return Err(ApiError::missing(&format!("{list}.1")));
    }
    let force = if action == UserAction::Reboot { "ForceReboot" } else { "ForceStop" };
    let stop = match action {
        UserAction::Stop | UserAction::Reboot => Some(stop_options(p, force)?),
        _ => None,
    };
    let all_together =
        !matches!(p.choice("BatchOptimization", &["AllTogether", "SuccessFirst"])?, Some("SuccessFirst"));
    let dry = p.bool("DryRun")?.unwrap_or(false);
    let out = c.cp.act(c.account_id, &ids, action, stop, all_together, dry)?;
    let items: Vec<Value> = out
        .into_iter()
        .map(|(id, r)| match r {
            Ok((prev, cur)) => json!({"InstanceId": id, "Code": "200", "Message": "success", "PreviousStatus": prev.as_str(), "CurrentStatus": cur.as_str()}),
            Err(e) => {
                let current = c.cp.instance(c.account_id, &id).map(|i| i.status.as_str().to_string()).unwrap_or_default();
                let api = ApiError::from(e);
                json!({"InstanceId": id, "Code": api.code, "Message": api.message, "PreviousStatus": current, "CurrentStatus": current})
            }
        })
        .collect();
    Ok(json!({"InstanceResponses": {"InstanceResponse": items}}))
}

pub(super) fn delete_instances(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let ids = p.list("InstanceId", 100)?;
    if ids.is_empty() {
        return Err(ApiError::missing("InstanceId.1"));
    }
    let force = p.bool("Force")?.unwrap_or(false);
    let dry = p.bool("DryRun")?.unwrap_or(false);
    c.cp.act(c.account_id, &ids, UserAction::Delete { force }, None, true, dry)?;
    Ok(json!({}))
}
