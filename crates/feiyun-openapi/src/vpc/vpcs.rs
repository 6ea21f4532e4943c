//! VPCs: CreateVpc, DescribeVpcs, DescribeVpcAttribute, ModifyVpcAttribute, DeleteVpc.

use feiyun_control::VpcFilter;
use feiyun_domain::net::cidr::parse_cidr;
use feiyun_domain::net::Vpc;
use feiyun_domain::ops::NewVpc;
use feiyun_domain::DomainError;
use serde_json::{json, Value};

use super::{dry_run, ids, owner_id, page, seconds, text, Call};
use crate::error::ApiError;

fn malformed_cidr() -> ApiError {
    ApiError::new(400, "InvalidCidrBlock.Malformed", "Specified CIDR block is not valid.")
}

/// One VPC as DescribeVpcs lists it (DescribeVpcAttribute has the same fields at the top).
fn vpc_json(c: &Call<'_>, v: &Vpc, vswitches: &[String]) -> Value {
    json!({
        "VpcId": v.id,
        "RegionId": c.cp.region().id,
        "Status": c.cp.provisioning_at(v.available_at).as_str(),
        "VpcName": v.name,
        "CreationTime": seconds(&v.created_at),
        "CidrBlock": v.cidr.to_string(),
        "Ipv6CidrBlock": "",
        "VRouterId": "",
        "Description": v.description,
        "IsDefault": v.is_default,
        "EnabledIpv6": false,
        "DhcpOptionsSetId": "",
        "DhcpOptionsSetStatus": "",
        "DnsHostnameStatus": "DISABLED",
        "CenStatus": "",
        "ClassicLinkEnabled": false,
        "ResourceGroupId": "",
        "OwnerId": owner_id(&v.account_id),
        "VSwitchIds": {"VSwitchId": vswitches},
        "UserCidrs": {"UserCidr": []},
        "NatGatewayIds": {"NatGatewayIds": []},
        "RouterTableIds": {"RouterTableIds": []},
        "SecondaryCidrBlocks": {"SecondaryCidrBlock": []},
        "Ipv6CidrBlocks": {"Ipv6CidrBlock": []},
        "Tags": {"Tag": []},
    })
}

pub(super) fn create_vpc(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let cidr = match p.get("CidrBlock") {
        None => None,
        Some(v) => Some(parse_cidr(v).ok_or_else(malformed_cidr)?),
    };
    let spec = NewVpc {
        cidr,
        name: text("VpcName", p.get("VpcName"), 128, "InvalidVpcName.Malformed")?.unwrap_or_default(),
        description: text("Description", p.get("Description"), 256, "InvalidDescription.Malformed")?
            .unwrap_or_default(),
        client_token: crate::client_token(c.action, p)?,
    };
    let v = c.cp.create_vpc(c.account_id, &spec, dry_run(p)?)?;
    Ok(json!({"VpcId": v.id, "VRouterId": "", "RouteTableId": "", "ResourceGroupId": ""}))
}

pub(super) fn describe_vpcs(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let filter = VpcFilter {
        ids: ids("VpcId", p.get("VpcId"), 20)?,
        name: p.get("VpcName").map(str::to_string),
        is_default: p.bool("IsDefault")?,
    };
    let (offset, size, number) = page(p, 50)?;
    if dry_run(p)? {
        return Err(DomainError::DryRunOk.into());
    }
    let all = c.cp.describe_vpcs(c.account_id, &filter);
    let items: Vec<Value> = all.iter().skip(offset).take(size).map(|(v, s)| vpc_json(c, v, s)).collect();
    Ok(json!({"Vpcs": {"Vpc": items}, "TotalCount": all.len(), "PageNumber": number, "PageSize": size}))
}

pub(super) fn describe_vpc_attribute(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let id = p.required("VpcId")?;
    if dry_run(p)? {
        c.cp.vpc(c.account_id, id)?;
        return Err(DomainError::DryRunOk.into());
    }
    let (v, s) = c.cp.vpc(c.account_id, id)?;
    let mut out = vpc_json(c, &v, &s);
    if let Some(o) = out.as_object_mut() {
        o.insert("CloudResources".into(), json!({"CloudResourceSetType": []}));
        o.insert("AssociatedCens".into(), json!({"AssociatedCen": []}));
        o.insert("SupportIpv4Gateway".into(), json!(false));
        o.insert("Ipv4GatewayId".into(), json!(""));
    }
    Ok(out)
}

pub(super) fn modify_vpc_attribute(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let id = p.required("VpcId")?;
    let name = text("VpcName", p.get("VpcName"), 128, "InvalidVpcName.Malformed")?;
    let description = text("Description", p.get("Description"), 256, "InvalidDescription.Malformed")?;
    c.cp.modify_vpc(c.account_id, id, name, description)?;
    Ok(json!({}))
}

pub(super) fn delete_vpc(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let id = p.required("VpcId")?;
    c.cp.delete_vpc(c.account_id, id, dry_run(p)?)?;
    Ok(json!({}))
}
