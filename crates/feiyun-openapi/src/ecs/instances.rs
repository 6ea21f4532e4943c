//! Instances: RunInstances, CreateInstance, DescribeInstances, DescribeInstanceStatus,
//! DescribeInstanceAttribute.

use std::time::Duration;

use base64::Engine;
use feiyun_domain::instance::{InstanceStatus, Tag};
use feiyun_domain::net::InternetCharge;
use feiyun_domain::ops::{CreateInstances, InstanceFilter, InstanceNetwork};
use feiyun_domain::DomainError;
use serde_json::{json, Value};

use super::names;
use super::subscription::purchase_params;
use super::wire;
use super::{next_token, page, paging, Call, B64};
use crate::error::ApiError;
use crate::params::Params;
use crate::render::{Node, Obj};

pub(super) fn decode_user_data(p: &Params) -> Result<Option<Vec<u8>>, ApiError> {
    let Some(ud) = p.get("UserData") else {
        return Ok(None);
    };
    let bytes = B64.decode(ud.trim()).map_err(|_| {
        ApiError::new(
            400,
            "InvalidUserData.Base64FormatInvalid",
            "The specified parameter \"UserData\" is not a valid Base64 string.",
        )
    })?;
    if bytes.len() > 32 * 1024 {
        return Err(ApiError::new(
            400,
            "InvalidUserData.SizeExceeded",
            "The specified parameter \"UserData\" exceeds the size.",
        ));
    }
    Ok(Some(bytes))
}

/// RunInstances: `Amount` instances (at least `MinAmount`), started.
pub(super) fn run_instances(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let amount = p.int("Amount", 1, 100)?.unwrap_or(1) as u32;
    let bad_min =
        || ApiError::new(400, "InvalidMinAmount.Malformed", "The specified parameter MinAmount is not valid.");
    let min_amount = p.int_or("MinAmount", 1, 100, bad_min)?.map(|n| n as u32);
    if min_amount.is_some_and(|m| m > amount) {
        return Err(bad_min());
    }
    create(c, amount, min_amount, true)
}

/// CreateInstance: one instance, left stopped.
pub(super) fn create_instance(c: &Call<'_>) -> Result<Value, ApiError> {
    create(c, 1, None, false)
}

fn create(c: &Call<'_>, amount: u32, min_amount: Option<u32>, run: bool) -> Result<Value, ApiError> {
    let p = c.params;
    let instance_type = p.required("InstanceType")?.to_string();
    let image_id = p.required("ImageId")?.to_string();
    let purchase = purchase_params(p)?;
    let client_token = crate::client_token(c.action, p)?;
    let tags = p.resource_tags("Tag", 20)?.into_iter().map(|(key, value)| Tag { key, value }).collect();
    let name = names::instance_name(p)?;
    let hostname = names::host_name(p)?;
    let unique_suffix = p.bool("UniqueSuffix")?.unwrap_or(false);
    names::suffix_room(name.as_deref(), hostname.as_deref(), unique_suffix && amount > 1)?;
    let spec = CreateInstances {
        zone_id: p.get("ZoneId").map(str::to_string),
        instance_type,
        image_id,
        amount,
        min_amount,
        name,
        hostname,
        unique_suffix,
        description: names::instance_description(p)?.unwrap_or_default(),
        user_data: decode_user_data(p)?,
        tags,
        deployment_set_id: p.get("DeploymentSetId").map(str::to_string),
        client_token,
        dry_run: p.bool("DryRun")?.unwrap_or(false),
        auto_start: run,
        purchase,
    };
    let network = network_params(p)?;
    let storage = super::disks::instance_storage(p)?;
    // The command says what it made and what the order charged up front (subscriptions;
    // pay-as-you-go pays as it goes): nothing is read back after the commit.
    let created = c.cp.create_instances_full(c.account_id, &spec, &network, &storage).map_err(|e| match e {
        // RunInstances names a snapshot of its data disks so.
        DomainError::Storage(feiyun_domain::storage::StorageError::SnapshotNotFound(_)) => ApiError::new(
            404,
            "InvalidDataDiskSnapshotId.NotFound",
            "The specified parameter \"DataDisk.n.SnapshotId\" is not valid.",
        ),
        e => e.into(),
    })?;
    let trade = created.charged_cents as f64 / 100.0;
    if run {
        Ok(json!({
            "InstanceIdSets": {"InstanceIdSet": created.ids},
            "TradePrice": trade,
            "OrderId": created.order_id.unwrap_or_default(),
        }))
    } else {
        let id = created.ids.first().cloned().unwrap_or_default();
        settle(c, &id);
        Ok(json!({"InstanceId": id, "TradePrice": trade}))
    }
}

/// Where RunInstances and CreateInstance put the instances on the network.
fn network_params(p: &Params) -> Result<InstanceNetwork, ApiError> {
    let bad_bandwidth = || {
        ApiError::new(
            400,
            "InvalidInternetMaxBandwidthOut.Malformed",
            "The specified parameter internetMaxBandwidthOut is not valid.",
        )
    };
    let bandwidth = p.int_or("InternetMaxBandwidthOut", 0, 100, bad_bandwidth)?.unwrap_or(0) as u32;
    let bad_charge = || {
        ApiError::new(
            400,
            "InvalidInternetChargeType.ValueNotSupported",
            "The specified parameter InternetChargeType is not valid.",
        )
    };
    let charge = p.choice_or("InternetChargeType", &["PayByTraffic", "PayByBandwidth"], bad_charge)?;
    let mut groups = p.distinct_list("SecurityGroupIds", 16)?;
    if let Some(g) = p.get("SecurityGroupId") {
        if !groups.is_empty() {
            return Err(ApiError::new(
                400,
                "InvalidParameter.Conflict",
                "SecurityGroupId and SecurityGroupIds.N cannot be given together.",
            ));
        }
        groups.push(g.to_string());
    }
    let private_ip = match p.get("PrivateIpAddress") {
        None => None,
        Some(v) => Some(feiyun_domain::net::cidr::parse_ip(v).ok_or_else(|| {
            ApiError::new(400, "InvalidPrivateIpAddress.Malformed", "Specified private IP address is malformed.")
        })?),
    };
    Ok(InstanceNetwork {
        vswitch_id: p.get("VSwitchId").map(str::to_string),
        security_group_ids: groups,
        private_ip,
        bandwidth_out_mbps: bandwidth,
        internet_charge: charge.and_then(InternetCharge::parse).unwrap_or_default(),
    })
}

/// How long CreateInstance waits for its instance to leave Pending before it answers.
const SETTLE_FOR: Duration = Duration::from_secs(2);

/// Wait (a bounded while) until a new CreateInstance instance has left Pending: its host sets up
/// its disk and reports it Stopped within milliseconds. Clients such as Apache Libcloud call
/// StartInstance right after CreateInstance, and a StartInstance on a Pending instance is
/// refused (`InstanceNotReady`) after the instance was created and billed. Past the bound (a
/// host that does not answer) the answer goes out anyway; the instance stays Pending until its
/// host reports. Runs off the event loop, as every call that changes state.
fn settle(c: &Call<'_>, id: &str) {
    let deadline = std::time::Instant::now() + SETTLE_FOR;
    while std::time::Instant::now() < deadline {
        match c.cp.instance(c.account_id, id) {
            Ok(i) if i.status == InstanceStatus::Pending => std::thread::sleep(Duration::from_millis(2)),
            _ => return,
        }
    }
}

pub(super) fn describe_instances(c: &Call<'_>) -> Result<Vec<u8>, ApiError> {
    let p = c.params;
    let statuses = match p.get("Status") {
        None => None,
        Some(s) => Some(vec![InstanceStatus::parse(s)
            .filter(|s| *s != InstanceStatus::Deleted)
            .ok_or_else(|| ApiError::new(404, "InvalidStatus.NotFound", "The specified Status is not found"))?]),
    };
    let filter = InstanceFilter {
        ids: p.json_list("InstanceIds", 100)?,
        statuses,
        zone_id: p.get("ZoneId").map(str::to_string),
        instance_type: p.get("InstanceType").map(str::to_string),
        instance_type_family: p.get("InstanceTypeFamily").map(str::to_string),
        name: p.get("InstanceName").map(str::to_string),
        image_id: p.get("ImageId").map(str::to_string),
        tags: p.tags("Tag", 20)?,
        vpc_id: p.get("VpcId").map(str::to_string),
        vswitch_id: p.get("VSwitchId").map(str::to_string),
        security_group_id: p.get("SecurityGroupId").map(str::to_string),
    };
    if p.bool("DryRun")?.unwrap_or(false) {
        return Err(DomainError::DryRunOk.into());
    }
    let (offset, size, number, token_mode) = paging(p, 100)?;
    let image = c.cp.image(feiyun_domain::image::BUILTIN_IMAGE_ID);
    // Rendered under the read lock, from trees that borrow the instances.
    Ok(c.cp.with_instances_page(c.account_id, &filter, offset, size, |total, page, nets| {
        let items: Vec<Node<'_>> =
            page.iter().map(|i| wire::instance(c, i, image.as_ref(), wire::Net::of(nets.of(&i.id)))).collect();
        let next = next_token(token_mode, offset, size, total);
        // The order of ECS's own answer.
        let page = Obj::default()
            .put("Instances", Node::wrapped("Instance", items))
            .put("TotalCount", total)
            .put("RequestId", Node::RequestId)
            .put("PageSize", size)
            .put("PageNumber", number)
            .put("NextToken", next)
            .build();
        c.reply.write(&page)
    }))
}

pub(super) fn describe_instance_status(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let ids = p.list("InstanceId", 100)?;
    let (offset, size, number) = page(p, 10, 50)?;
    let filter = InstanceFilter {
        ids: if ids.is_empty() { None } else { Some(ids) },
        zone_id: p.get("ZoneId").map(str::to_string),
        ..Default::default()
    };
    let all = c.cp.describe_instances(c.account_id, &filter);
    let items: Vec<Value> =
        all.iter().skip(offset).take(size).map(|i| json!({"InstanceId": i.id, "Status": i.status.as_str()})).collect();
    Ok(
        json!({"InstanceStatuses": {"InstanceStatus": items}, "TotalCount": all.len(), "PageNumber": number, "PageSize": size}),
    )
}

pub(super) fn describe_instance_attribute(c: &Call<'_>) -> Result<Vec<u8>, ApiError> {
    let id = c.params.required("InstanceId")?;
    let i = c.cp.instance(c.account_id, id)?;
    let net = c.cp.instance_network(&i.id);
    Ok(c.reply.write(&wire::instance_attribute(c, &i, wire::Net::of(net.as_ref().map(|(n, p)| (n, p.as_ref()))))))
}
