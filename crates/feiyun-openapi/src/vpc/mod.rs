//! VPC 2016-04-28: VPCs, vSwitches and elastic IP addresses, one file per resource. Answers and
//! errors have ECS's shape. This file holds the dispatch and what the resources share.

mod eips;
mod vpcs;
mod vswitches;

use std::sync::Arc;

use chrono::SecondsFormat;
use feiyun_control::ControlPlane;
use feiyun_domain::Instant;
use serde_json::Value;

use crate::error::ApiError;
use crate::params::Params;

pub(crate) struct Call<'a> {
    pub cp: &'a Arc<ControlPlane>,
    pub account_id: &'a str,
    pub action: &'a str,
    pub params: &'a Params,
    pub reply: crate::render::Reply<'a>,
}

/// Run a VPC action (routed, its region checked); the result is its written answer.
pub(crate) fn handle(c: &Call<'_>) -> Result<Vec<u8>, ApiError> {
    let answer = handle_value(c)?;
    Ok(c.reply.write(&crate::render::Node::from(answer)))
}

fn handle_value(c: &Call<'_>) -> Result<Value, ApiError> {
    match c.action {
        "CreateVpc" => vpcs::create_vpc(c),
        "DescribeVpcs" => vpcs::describe_vpcs(c),
        "DescribeVpcAttribute" => vpcs::describe_vpc_attribute(c),
        "ModifyVpcAttribute" => vpcs::modify_vpc_attribute(c),
        "DeleteVpc" => vpcs::delete_vpc(c),
        "CreateVSwitch" => vswitches::create_vswitch(c),
        "DescribeVSwitches" => vswitches::describe_vswitches(c),
        "DescribeVSwitchAttributes" => vswitches::describe_vswitch_attributes(c),
        "DeleteVSwitch" => vswitches::delete_vswitch(c),
        "AllocateEipAddress" => eips::allocate_eip_address(c),
        "AssociateEipAddress" => eips::associate_eip_address(c),
        "UnassociateEipAddress" => eips::unassociate_eip_address(c),
        "ReleaseEipAddress" => eips::release_eip_address(c),
        "DescribeEipAddresses" => eips::describe_eip_addresses(c),
        _ => Err(ApiError::unknown_action()),
    }
}

/// VPC times: `2018-04-18T15:02:37Z`.
fn seconds(t: &Instant) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// PageNumber/PageSize paging: (offset, size, number).
fn page(p: &Params, max: i64) -> Result<(usize, usize, i64), ApiError> {
    let number = p.int("PageNumber", 1, i32::MAX as i64)?.unwrap_or(1);
    let size = p.int("PageSize", 1, max)?.unwrap_or(10);
    Ok((((number - 1) * size) as usize, size as usize, number))
}

/// An account id as the number Alibaba Cloud's `OwnerId` is (0 for the administrator's).
fn owner_id(account_id: &str) -> u64 {
    account_id.parse().unwrap_or(0)
}

/// Names and descriptions of VPC resources: 1-`max` characters, not starting with `http://` or
/// `https://`, refused with `code`.
fn text(name: &str, value: Option<&str>, max: usize, code: &str) -> Result<Option<String>, ApiError> {
    let Some(v) = value else { return Ok(None) };
    if v.chars().count() > max || v.starts_with("http://") || v.starts_with("https://") {
        return Err(ApiError::new(400, code, format!("The specified parameter \"{name}\" is not valid.")));
    }
    Ok(Some(v.to_string()))
}

/// `DryRun=true`: everything was checked.
fn dry_run(p: &Params) -> Result<bool, ApiError> {
    p.bool("DryRun").map(|d| d.unwrap_or(false))
}

/// A comma-separated list of ids (at most `max`).
fn ids(name: &str, value: Option<&str>, max: usize) -> Result<Option<Vec<String>>, ApiError> {
    let Some(v) = value else { return Ok(None) };
    let list: Vec<String> = v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
    if list.len() > max {
        return Err(ApiError::invalid_because(name, &format!("at most {max} ids")));
    }
    Ok(Some(list))
}
