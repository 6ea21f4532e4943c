//! vSwitches: CreateVSwitch, DescribeVSwitches, DescribeVSwitchAttributes, DeleteVSwitch.

use feiyun_control::VSwitchFilter;
use feiyun_domain::net::cidr::parse_cidr;
use feiyun_domain::net::VSwitch;
use feiyun_domain::ops::NewVSwitch;
use feiyun_domain::DomainError;
use serde_json::{json, Value};

use super::{dry_run, ids, owner_id, page, seconds, text, Call};
use crate::error::ApiError;

fn vswitch_json(c: &Call<'_>, s: &VSwitch, free: u64) -> Value {
    json!({
        "VSwitchId": s.id,
        "VpcId": s.vpc_id,
        "Status": c.cp.provisioning_at(s.available_at).as_str(),
        "CidrBlock": s.cidr.to_string(),
        "Ipv6CidrBlock": "",
        "ZoneId": s.zone_id,
        "AvailableIpAddressCount": free,
        "Description": s.description,
        "VSwitchName": s.name,
        "CreationTime": seconds(&s.created_at),
        "IsDefault": s.is_default,
        "EnabledIpv6": false,
        "ResourceGroupId": "",
        "NetworkAclId": "",
        "OwnerId": owner_id(&s.account_id),
        "ShareType": "",
        "RouteTable": {"RouteTableId": "", "RouteTableType": ""},
        "Tags": {"Tag": []},
    })
}

pub(super) fn create_vswitch(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let spec = NewVSwitch {
        vpc_id: p.required("VpcId")?.to_string(),
        zone_id: p.required("ZoneId")?.to_string(),
        cidr: parse_cidr(p.required("CidrBlock")?)
            .ok_or_else(|| ApiError::new(400, "InvalidCidrBlock.Malformed", "Specified CIDR block is not valid."))?,
        name: text("VSwitchName", p.get("VSwitchName"), 128, "InvalidVSwitchName.Malformed")?.unwrap_or_default(),
        description: text("Description", p.get("Description"), 256, "InvalidDescription.Malformed")?
            .unwrap_or_default(),
        client_token: crate::client_token(c.action, p)?,
    };
    let s = c.cp.create_vswitch(c.account_id, &spec, false)?;
    Ok(json!({"VSwitchId": s.id}))
}

pub(super) fn describe_vswitches(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let filter = VSwitchFilter {
        ids: ids("VSwitchId", p.get("VSwitchId"), 100)?,
        vpc_id: p.get("VpcId").map(str::to_string),
        zone_id: p.get("ZoneId").map(str::to_string),
        name: p.get("VSwitchName").map(str::to_string),
        is_default: p.bool("IsDefault")?,
    };
    let (offset, size, number) = page(p, 50)?;
    if dry_run(p)? {
        return Err(DomainError::DryRunOk.into());
    }
    let all = c.cp.describe_vswitches(c.account_id, &filter);
    let items: Vec<Value> = all.iter().skip(offset).take(size).map(|(s, n)| vswitch_json(c, s, *n)).collect();
    Ok(json!({"VSwitches": {"VSwitch": items}, "TotalCount": all.len(), "PageNumber": number, "PageSize": size}))
}

pub(super) fn describe_vswitch_attributes(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let (s, free) = c.cp.vswitch(c.account_id, p.required("VSwitchId")?)?;
    if dry_run(p)? {
        return Err(DomainError::DryRunOk.into());
    }
    Ok(vswitch_json(c, &s, free))
}

pub(super) fn delete_vswitch(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    c.cp.delete_vswitch(c.account_id, p.required("VSwitchId")?, dry_run(p)?)?;
    Ok(json!({}))
}
