//! Elastic IP addresses: AllocateEipAddress, AssociateEipAddress, UnassociateEipAddress,
//! ReleaseEipAddress, DescribeEipAddresses.

use feiyun_control::EipFilter;
use feiyun_domain::net::{InternetCharge, PublicIp};
use feiyun_domain::ops::NewEip;
use serde_json::{json, Value};

use super::{ids, page, seconds, text, Call};
use crate::error::ApiError;

fn eip_json(c: &Call<'_>, e: &PublicIp) -> Value {
    let region = &c.cp.region().id;
    json!({
        "AllocationId": e.allocation_id,
        "IpAddress": e.ip.to_string(),
        "Status": if e.instance_id.is_some() { "InUse" } else { "Available" },
        "InstanceId": e.instance_id.clone().unwrap_or_default(),
        "InstanceType": if e.instance_id.is_some() { "EcsInstance" } else { "" },
        "InstanceRegionId": if e.instance_id.is_some() { region.as_str() } else { "" },
        "PrivateIpAddress": "",
        "RegionId": region,
        "Bandwidth": e.bandwidth_mbps.to_string(),
        "EipBandwidth": e.bandwidth_mbps.to_string(),
        "InternetChargeType": e.charge.as_str(),
        "ChargeType": "PostPaid",
        "AllocationTime": seconds(&e.created_at),
        "ExpiredTime": "",
        "Name": e.name,
        "Description": e.description,
        "ISP": "BGP",
        "Netmode": "public",
        "Mode": "NAT",
        "DeletionProtection": false,
        "ResourceGroupId": "",
        "BandwidthPackageId": "",
        "BandwidthPackageType": "",
        "BandwidthPackageBandwidth": "",
        "HasReservationData": "false",
        "SecondLimited": false,
        "ServiceManaged": 0,
        "OperationLocks": {"LockReason": []},
        "SecurityProtectionTypes": {"SecurityProtectionType": []},
        "Tags": {"Tag": []},
    })
}

/// Only ECS instances get elastic IP addresses here.
fn instance_type(c: &Call<'_>) -> Result<(), ApiError> {
    c.params.choice("InstanceType", &["EcsInstance"])?;
    Ok(())
}

pub(super) fn allocate_eip_address(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let bandwidth = p.int("Bandwidth", 1, 200)?.unwrap_or(5) as u32;
    let charge = p.choice("InternetChargeType", &["PayByTraffic", "PayByBandwidth"])?;
    let spec = NewEip {
        bandwidth_mbps: bandwidth,
        charge: charge.and_then(InternetCharge::parse).unwrap_or_default(),
        name: text("Name", p.get("Name"), 128, "InvalidParameter")?.unwrap_or_default(),
        description: text("Description", p.get("Description"), 256, "InvalidParameter")?.unwrap_or_default(),
        client_token: crate::client_token(c.action, p)?,
    };
    let e = c.cp.allocate_eip(c.account_id, &spec)?;
    Ok(json!({"AllocationId": e.allocation_id, "EipAddress": e.ip.to_string(), "OrderId": "", "ResourceGroupId": ""}))
}

pub(super) fn associate_eip_address(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    instance_type(c)?;
    c.cp.associate_eip(c.account_id, p.required("AllocationId")?, p.required("InstanceId")?)?;
    Ok(json!({}))
}

pub(super) fn unassociate_eip_address(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    instance_type(c)?;
    let id = p.required("AllocationId")?;
    let instance = match p.get("InstanceId") {
        Some(i) => i.to_string(),
        None => {
            c.cp.describe_eips(c.account_id, &EipFilter { ids: Some(vec![id.to_string()]), ..Default::default() })
                .into_iter()
                .next()
                .and_then(|e| e.instance_id)
                .unwrap_or_default()
        }
    };
    c.cp.unassociate_eip(c.account_id, id, &instance)?;
    Ok(json!({}))
}

pub(super) fn release_eip_address(c: &Call<'_>) -> Result<Value, ApiError> {
    c.cp.release_eip(c.account_id, c.params.required("AllocationId")?)?;
    Ok(json!({}))
}

pub(super) fn describe_eip_addresses(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let ip = match p.get("EipAddress") {
        None => None,
        Some(v) => Some(feiyun_domain::net::cidr::parse_ip(v).ok_or_else(|| ApiError::invalid("EipAddress"))?),
    };
    p.choice("AssociatedInstanceType", &["EcsInstance"])?;
    let status = p.choice("Status", &["Associating", "Unassociating", "InUse", "Available", "Releasing"])?;
    let filter = EipFilter {
        ids: ids("AllocationId", p.get("AllocationId"), 50)?,
        ip,
        instance_id: p.get("AssociatedInstanceId").map(str::to_string),
        in_use: match status {
            Some("InUse") => Some(true),
            Some("Available") => Some(false),
            _ => None,
        },
    };
    let (offset, size, number) = page(p, 100)?;
    let mut all = c.cp.describe_eips(c.account_id, &filter);
    if status.is_some_and(|s| s != "InUse" && s != "Available") {
        // Associating, unassociating and releasing happen at once here: nothing is ever between.
        all.clear();
    }
    let items: Vec<Value> = all.iter().skip(offset).take(size).map(|e| eip_json(c, e)).collect();
    Ok(json!({"EipAddresses": {"EipAddress": items}, "TotalCount": all.len(), "PageNumber": number, "PageSize": size}))
}
