//! ECS 2014-05-26: actions, their parameters and their response shapes, one file per resource.
//! This file holds the dispatch and the helpers the resources share (paging, times, encodings).

mod assistant;
mod console;
mod deployment_sets;
mod disks;
mod events;
mod images;
mod instance_types;
mod instances;
mod key_pairs;
mod names;
mod power;
mod prices;
mod regions;
mod security_groups;
mod sg_rules;
mod snapshots;
mod subscription;
mod wire;

use std::sync::Arc;

use base64::Engine;
use chrono::SecondsFormat;
use feiyun_control::ControlPlane;
use feiyun_domain::Instant;
use serde_json::Value;

use crate::error::ApiError;
use crate::params::Params;
use crate::render::{Node, Reply};

/// Everything an action handler needs: who calls, with what.
pub(crate) struct Call<'a> {
    pub cp: &'a Arc<ControlPlane>,
    pub account_id: &'a str,
    pub action: &'a str,
    pub params: &'a Params,
    /// The endpoint the client called (its Host header).
    pub endpoint: &'a str,
    pub reply: Reply<'a>,
}

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Run an ECS action (routed, its region checked); the result is its written answer.
pub(crate) fn handle(c: &Call<'_>) -> Result<Vec<u8>, ApiError> {
    match c.action {
        // Trees that borrow from the instances, written while the instances are lent.
        "DescribeInstances" => instances::describe_instances(c),
        "DescribeInstanceAttribute" => instances::describe_instance_attribute(c),
        _ => handle_value(c).map(|v| c.reply.write(&Node::from(v))),
    }
}

fn handle_value(c: &Call<'_>) -> Result<Value, ApiError> {
    match c.action {
        "DescribeRegions" => regions::describe_regions(c),
        "DescribeZones" => regions::describe_zones(c),
        "DescribeInstanceTypes" => instance_types::describe_instance_types(c),
        "DescribeInstanceTypeFamilies" => instance_types::describe_instance_type_families(c),
        "DescribeImages" => images::describe_images(c),
        "DescribeAvailableResource" => regions::describe_available_resource(c),
        "RunInstances" => instances::run_instances(c),
        "CreateInstance" => instances::create_instance(c),
        "DescribeInstanceStatus" => instances::describe_instance_status(c),
        "StartInstance" => power::start_instance(c),
        "StopInstance" => power::stop_instance(c),
        "RebootInstance" => power::reboot_instance(c),
        "DeleteInstance" => power::delete_instance(c),
        "StartInstances" => power::start_instances(c),
        "StopInstances" => power::stop_instances(c),
        "RebootInstances" => power::reboot_instances(c),
        "DeleteInstances" => power::delete_instances(c),
        "CreateCommand" => assistant::create_command(c),
        "DescribeCommands" => assistant::describe_commands(c),
        "DeleteCommand" => assistant::delete_command(c),
        "InvokeCommand" => assistant::invoke_command(c),
        "RunCommand" => assistant::run_command(c),
        "DescribeInvocations" => assistant::describe_invocations(c),
        "DescribeInvocationResults" => assistant::describe_invocation_results(c),
        "GetInstanceConsoleOutput" => console::console_output(c),
        "DescribeInstancesFullStatus" => events::describe_instances_full_status(c),
        "DescribeInstanceHistoryEvents" => events::describe_instance_history_events(c),
        "DescribePrice" => prices::describe_price(c),
        "DescribeSpotPriceHistory" => prices::describe_spot_price_history(c),
        "RenewInstance" => subscription::renew_instance(c),
        "ModifyInstanceAutoRenewAttribute" => subscription::modify_auto_renew(c),
        "ModifyInstanceChargeType" => subscription::modify_instance_charge_type(c),
        "CreateDeploymentSet" => deployment_sets::create_deployment_set(c),
        "DescribeDeploymentSets" => deployment_sets::describe_deployment_sets(c),
        "DeleteDeploymentSet" => deployment_sets::delete_deployment_set(c),
        "CreateSecurityGroup" => security_groups::create_security_group(c),
        "DescribeSecurityGroups" => security_groups::describe_security_groups(c),
        "DescribeSecurityGroupAttribute" => security_groups::describe_security_group_attribute(c),
        "AuthorizeSecurityGroup" => security_groups::authorize_security_group(c),
        "AuthorizeSecurityGroupEgress" => security_groups::authorize_security_group_egress(c),
        "RevokeSecurityGroup" => security_groups::revoke_security_group(c),
        "RevokeSecurityGroupEgress" => security_groups::revoke_security_group_egress(c),
        "ModifySecurityGroupPolicy" => security_groups::modify_security_group_policy(c),
        "JoinSecurityGroup" => security_groups::join_security_group(c),
        "LeaveSecurityGroup" => security_groups::leave_security_group(c),
        "DeleteSecurityGroup" => security_groups::delete_security_group(c),
        "CreateDisk" => disks::create_disk(c),
        "DescribeDisks" => disks::describe_disks(c),
        "AttachDisk" => disks::attach_disk(c),
        "DetachDisk" => disks::detach_disk(c),
        "DeleteDisk" => disks::delete_disk(c),
        "ResizeDisk" => disks::resize_disk(c),
        "ResetDisk" => disks::reset_disk(c),
        "ModifyDiskAttribute" => disks::modify_disk_attribute(c),
        "CreateSnapshot" => snapshots::create_snapshot(c),
        "DescribeSnapshots" => snapshots::describe_snapshots(c),
        "DeleteSnapshot" => snapshots::delete_snapshot(c),
        "CreateImage" => images::create_image(c),
        "DeleteImage" => images::delete_image(c),
        "ImportImage" => images::import_image(c),
        "ModifyImageSharePermission" => images::modify_image_share_permission(c),
        "DescribeImageSharePermission" => images::describe_image_share_permission(c),
        "CreateKeyPair" => key_pairs::create_key_pair(c),
        "ImportKeyPair" => key_pairs::import_key_pair(c),
        "DescribeKeyPairs" => key_pairs::describe_key_pairs(c),
        "DeleteKeyPairs" => key_pairs::delete_key_pairs(c),
        "AttachKeyPair" => key_pairs::attach_key_pair(c),
        "DetachKeyPair" => key_pairs::detach_key_pair(c),
        _ => Err(ApiError::unknown_action()),
    }
}

/// ECS instance times have minute precision: `2017-12-10T04:04Z`.
fn minutes(t: &Instant) -> String {
    use chrono::{Datelike, Timelike};
    format!("{:04}-{:02}-{:02}T{:02}:{:02}Z", t.year(), t.month(), t.day(), t.hour(), t.minute())
}

fn seconds(t: &Instant) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn opt_seconds(t: &Option<Instant>) -> String {
    t.as_ref().map(seconds).unwrap_or_default()
}

/// PageNumber/PageSize paging: (offset, size, number).
fn page(p: &Params, default: i64, max: i64) -> Result<(usize, usize, i64), ApiError> {
    let number = p.int("PageNumber", 1, i32::MAX as i64)?.unwrap_or(1);
    let size = p.int("PageSize", 1, max)?.unwrap_or(default);
    Ok((((number - 1) * size) as usize, size as usize, number))
}

/// A page asked for either way ECS's listings take: NextToken/MaxResults when either is given
/// (MaxResults clamped to 10..=`max_results`, 10 by default), else PageNumber/PageSize (10 by
/// default, at most 100). (offset, size, number, whether tokens were used.)
fn paging(p: &Params, max_results: i64) -> Result<(usize, usize, i64, bool), ApiError> {
    if p.get("NextToken").is_none() && p.get("MaxResults").is_none() {
        let (offset, size, number) = page(p, 10, 100)?;
        return Ok((offset, size, number, false));
    }
    let max = p
        .get("MaxResults")
        .map(|v| v.trim().parse::<i64>().map_err(|_| ApiError::invalid("MaxResults")))
        .transpose()?
        .unwrap_or(10)
        .clamp(10, max_results) as usize;
    Ok((p.get("NextToken").map(decode_token).transpose()?.unwrap_or(0), max, 1, true))
}

/// The NextToken of a page of `total` items asked for with tokens; empty on the last page or
/// with PageNumber/PageSize.
fn next_token(tokens: bool, offset: usize, size: usize, total: usize) -> String {
    if tokens && offset + size < total {
        encode_token(offset + size)
    } else {
        String::new()
    }
}

/// Paging tokens are offsets, masked so clients treat them as opaque.
const TOKEN_MASK: u128 = 0x5f37_59df_0000_0000_0000_0000_0000_0000;

fn encode_token(offset: usize) -> String {
    format!("{:032x}", offset as u128 ^ TOKEN_MASK)
}

/// An offset from a token; one no answer could have given (beyond `u32::MAX`) is refused, so
/// offset arithmetic cannot overflow.
fn decode_token(t: &str) -> Result<usize, ApiError> {
    u128::from_str_radix(t, 16)
        .ok()
        .filter(|_| t.len() == 32)
        .map(|v| v ^ TOKEN_MASK)
        .and_then(|v| u32::try_from(v).ok())
        .map(|v| v as usize)
        .ok_or_else(|| ApiError::invalid("NextToken"))
}

fn content_encoding(p: &Params, default_plain: bool) -> Result<bool, ApiError> {
    Ok(match p.get("ContentEncoding") {
        None => default_plain,
        Some(v) if v.eq_ignore_ascii_case("PlainText") => true,
        Some(v) if v.eq_ignore_ascii_case("Base64") => false,
        // Documented: an unknown value falls back to the default.
        Some(_) => default_plain,
    })
}

fn render_bytes(b: &[u8], plain: bool) -> String {
    if plain {
        String::from_utf8_lossy(b).into_owned()
    } else {
        B64.encode(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_reject_garbage() {
        for n in [0usize, 10, 12345] {
            assert_eq!(decode_token(&encode_token(n)).expect("valid"), n);
        }
        assert!(decode_token("zz").is_err());
        assert!(decode_token(&"f".repeat(32)).is_err());
        // The largest offset a usize holds would overflow `offset + size`.
        assert!(decode_token(&format!("{:032x}", usize::MAX as u128 ^ TOKEN_MASK)).is_err());
    }

    #[test]
    fn instance_times_have_minute_precision() {
        let t =
            chrono::DateTime::parse_from_rfc3339("2017-12-10T04:04:59.9Z").expect("valid").with_timezone(&chrono::Utc);
        assert_eq!(minutes(&t), "2017-12-10T04:04Z");
    }
}
