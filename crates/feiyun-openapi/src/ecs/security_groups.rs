//! Security groups: CreateSecurityGroup, DescribeSecurityGroups, DescribeSecurityGroupAttribute,
//! AuthorizeSecurityGroup(Egress), RevokeSecurityGroup(Egress), ModifySecurityGroupPolicy,
//! JoinSecurityGroup, LeaveSecurityGroup, DeleteSecurityGroup.

use feiyun_control::GroupFilter;
use feiyun_domain::net::{Direction, GroupKind, InnerAccess, SecurityGroup};
use feiyun_domain::ops::NewSecurityGroup;
use feiyun_domain::DomainError;
use serde_json::{json, Value};

use super::sg_rules::{egress_rules, ingress_rules, wire_permission};
use super::{page, seconds, Call};
use crate::error::ApiError;

fn kind_name(k: GroupKind) -> &'static str {
    match k {
        GroupKind::Basic => "normal",
        GroupKind::Enterprise => "enterprise",
    }
}

fn group_json(c: &Call<'_>, g: &SecurityGroup, members: usize) -> Value {
    let group_rules = g.referenced().count();
    json!({
        "SecurityGroupId": g.id,
        "SecurityGroupName": g.name,
        "Description": g.description,
        "SecurityGroupType": kind_name(g.kind),
        "VpcId": g.vpc_id,
        "CreationTime": seconds(&g.created_at),
        "ResourceGroupId": "",
        "ServiceManaged": false,
        "EcsCount": members,
        "AvailableInstanceAmount": match g.kind {
            GroupKind::Basic => 2000usize.saturating_sub(members),
            GroupKind::Enterprise => 65536usize.saturating_sub(members),
        },
        "RuleCount": g.rules.len(),
        "GroupToGroupRuleCount": group_rules,
        "Tags": {"Tag": []},
        "RegionId": c.cp.region().id,
    })
}

/// `SecurityGroupName`: 2-128 characters starting with a letter, not starting with `http://`
/// or `https://`.
fn group_name(c: &Call<'_>) -> Result<String, ApiError> {
    let Some(n) = c.params.string("SecurityGroupName", 128)? else { return Ok(String::new()) };
    let ok = n.chars().count() >= 2
        && n.chars().next().is_some_and(char::is_alphabetic)
        && !n.starts_with("http://")
        && !n.starts_with("https://");
    if !ok {
        return Err(ApiError::new(
            400,
            "InvalidSecurityGroupName.Malformed",
            "Specified security group name is not valid.",
        ));
    }
    Ok(n)
}

pub(super) fn create_security_group(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let description = match p.string("Description", 256)? {
        None => String::new(),
        Some(d) if d.chars().count() < 2 || d.starts_with("http://") || d.starts_with("https://") => {
            return Err(ApiError::new(
                400,
                "InvalidDescription.Malformed",
                "The specified parameter \"Description\" is not valid.",
            ))
        }
        Some(d) => d,
    };
    let kind = match p.choice("SecurityGroupType", &["normal", "enterprise"])? {
        Some("enterprise") => GroupKind::Enterprise,
        _ => GroupKind::Basic,
    };
    let spec = NewSecurityGroup {
        vpc_id: p.get("VpcId").map(str::to_string),
        name: group_name(c)?,
        description,
        kind,
        client_token: crate::client_token(c.action, p)?,
    };
    let g = c.cp.create_security_group(c.account_id, &spec)?;
    Ok(json!({"SecurityGroupId": g.id}))
}

pub(super) fn describe_security_groups(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let mut ids = p.json_list("SecurityGroupIds", 100)?;
    if let Some(one) = p.get("SecurityGroupId") {
        ids.get_or_insert_with(Vec::new).push(one.to_string());
    }
    let kind = match p.choice("SecurityGroupType", &["normal", "enterprise"])? {
        None => None,
        Some("enterprise") => Some(GroupKind::Enterprise),
        Some(_) => Some(GroupKind::Basic),
    };
    let filter = GroupFilter {
        ids,
        vpc_id: p.get("VpcId").map(str::to_string),
        name: p.get("SecurityGroupName").map(str::to_string),
        kind,
    };
    p.bool("IsQueryEcsCount")?;
    let (offset, size, number) = page(p, 10, 50)?;
    if p.bool("DryRun")?.unwrap_or(false) {
        return Err(DomainError::DryRunOk.into());
    }
    let all = c.cp.describe_security_groups(c.account_id, &filter);
    let items: Vec<Value> = all.iter().skip(offset).take(size).map(|(g, n)| group_json(c, g, *n)).collect();
    Ok(json!({
        "SecurityGroups": {"SecurityGroup": items},
        "TotalCount": all.len(),
        "PageNumber": number,
        "PageSize": size,
        "NextToken": "",
        "RegionId": c.cp.region().id,
    }))
}

pub(super) fn describe_security_group_attribute(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let id = p.required("SecurityGroupId")?;
    let direction = match p.choice("Direction", &["ingress", "egress", "all"])? {
        Some("ingress") => Some(Direction::Ingress),
        Some("egress") => Some(Direction::Egress),
        _ => None,
    };
    let (g, names) = c.cp.security_group(c.account_id, id)?;
    let permissions: Vec<Value> = g
        .rules
        .iter()
        .filter(|r| direction.is_none_or(|d| r.spec.direction == d))
        .map(|r| wire_permission(r, &names))
        .collect();
    Ok(json!({
        "RegionId": c.cp.region().id,
        "SecurityGroupId": g.id,
        "SecurityGroupName": g.name,
        "Description": g.description,
        "VpcId": g.vpc_id,
        "InnerAccessPolicy": match (g.kind, g.inner_access) {
            (GroupKind::Basic, InnerAccess::Accept) => "Accept",
            _ => "Drop",
        },
        "Permissions": {"Permission": permissions},
        "SnapshotPolicyIds": {"SnapshotPolicyId": []},
        "NextToken": "",
    }))
}

pub(super) fn authorize_security_group(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let id = p.required("SecurityGroupId")?;
    let rules = ingress_rules(p)?;
    if rules.is_empty() {
        return Err(ApiError::missing("Permissions"));
    }
    c.cp.authorize(c.account_id, id, &rules)?;
    Ok(json!({}))
}

pub(super) fn authorize_security_group_egress(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let id = p.required("SecurityGroupId")?;
    let rules = egress_rules(p)?;
    if rules.is_empty() {
        return Err(ApiError::missing("Permissions"));
    }
    c.cp.authorize(c.account_id, id, &rules)?;
    Ok(json!({}))
}

pub(super) fn revoke_security_group(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let id = p.required("SecurityGroupId")?;
    let rules = ingress_rules(p)?;
    let ids = p.distinct_list("SecurityGroupRuleId", 100)?;
    if rules.is_empty() && ids.is_empty() {
        return Err(ApiError::missing("Permissions"));
    }
    c.cp.revoke(c.account_id, id, &rules, &ids)?;
    Ok(json!({}))
}

pub(super) fn revoke_security_group_egress(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let id = p.required("SecurityGroupId")?;
    let rules = egress_rules(p)?;
    let ids = p.distinct_list("SecurityGroupRuleId", 100)?;
    if rules.is_empty() && ids.is_empty() {
        return Err(ApiError::missing("Permissions"));
    }
    c.cp.revoke(c.account_id, id, &rules, &ids)?;
    Ok(json!({}))
}

pub(super) fn modify_security_group_policy(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let id = p.required("SecurityGroupId")?;
    let bad = || {
        ApiError::new(
            400,
            "InvalidInnerAccessPolicy.Malformed",
            "The specified parameter InnerAccessPolicy is not valid.",
        )
    };
    let policy = match p.choice_or("InnerAccessPolicy", &["Accept", "Drop"], bad)? {
        Some("Accept") => InnerAccess::Accept,
        Some(_) => InnerAccess::Drop,
        None => return Err(ApiError::missing("InnerAccessPolicy")),
    };
    c.cp.set_inner_access(c.account_id, id, policy)?;
    Ok(json!({}))
}

pub(super) fn join_security_group(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let (group, instance) = (p.required("SecurityGroupId")?, p.required("InstanceId")?);
    c.cp.set_membership(c.account_id, instance, group, true)?;
    Ok(json!({}))
}

pub(super) fn leave_security_group(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let (group, instance) = (p.required("SecurityGroupId")?, p.required("InstanceId")?);
    c.cp.set_membership(c.account_id, instance, group, false)?;
    Ok(json!({}))
}

pub(super) fn delete_security_group(c: &Call<'_>) -> Result<Value, ApiError> {
    c.cp.delete_security_group(c.account_id, c.params.required("SecurityGroupId")?)?;
    Ok(json!({}))
}
