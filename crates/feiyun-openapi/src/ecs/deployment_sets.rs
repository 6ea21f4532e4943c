//! Deployment sets: CreateDeploymentSet, DescribeDeploymentSets, DeleteDeploymentSet.

use serde_json::{json, Value};

use super::{minutes, names, page, Call};
use crate::error::ApiError;

pub(super) fn create_deployment_set(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    match p.get("Strategy") {
        None | Some("Availability") => {}
        Some(_) => {
            return Err(ApiError::new(
                400,
                "InvalidParameter.Strategy",
                "Only the Availability strategy (every instance on its own host) is supported.",
            ))
        }
    }
    let name = p.string("DeploymentSetName", 128)?.unwrap_or_default();
    let description = names::deployment_set_description(p)?.unwrap_or_default();
    let id = c.cp.create_deployment_set(c.account_id, &name, &description)?;
    Ok(json!({"DeploymentSetId": id}))
}

pub(super) fn describe_deployment_sets(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let ids = p.json_list("DeploymentSetIds", 100)?;
    let (offset, size, number) = page(p, 10, 50)?;
    let all = c.cp.describe_deployment_sets(c.account_id, ids.as_deref(), p.get("DeploymentSetName"));
    let items: Vec<Value> = all
        .iter()
        .skip(offset)
        .take(size)
        .map(|(d, members)| {
            json!({
                "DeploymentSetId": d.id,
                "DeploymentSetName": d.name,
                "DeploymentSetDescription": d.description,
                "DeploymentStrategy": "Availability",
                "Strategy": "Availability",
                "Domain": "Default",
                "Granularity": "Host",
                "InstanceAmount": members.len(),
                "InstanceIds": {"InstanceId": members},
                "CreationTime": minutes(&d.created_at),
                "GroupCount": 0,
                "Capacities": {"Capacity": []},
            })
        })
        .collect();
    Ok(
        json!({"DeploymentSets": {"DeploymentSet": items}, "TotalCount": all.len(), "PageNumber": number, "PageSize": size, "RegionId": c.cp.region().id}),
    )
}

pub(super) fn delete_deployment_set(c: &Call<'_>) -> Result<Value, ApiError> {
    let id = c.params.required("DeploymentSetId")?;
    c.cp.delete_deployment_set(c.account_id, id)?;
    Ok(json!({}))
}
