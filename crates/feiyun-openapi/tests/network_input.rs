//! Hostile input to the network actions (VPC 2016-04-28 and ECS's security groups and instance
//! network parameters): every malformed, out-of-range, foreign or conflicting parameter is
//! refused with its documented code, and a refused call changes nothing — no VPC, vSwitch,
//! group, rule, membership, address or instance.

mod common;

use std::time::Duration;

use common::{region_with, Region1, ECS, VPC};
use feiyun_control::{EipFilter, GroupFilter, NetworkSetup, VSwitchFilter, VpcFilter};
use feiyun_openapi::sign::pct;
use serde_json::Value;

fn net() -> NetworkSetup {
    NetworkSetup {
        eip_pool: Some("203.0.113.0/29".parse().expect("pool")),
        provisioning: Duration::ZERO,
        ..NetworkSetup::default()
    }
}

/// What a refused call must leave as it was.
fn footprint(r: &Region1, accounts: &[&str]) -> String {
    let mut out = format!("{:?}", r.footprint());
    for a in accounts {
        let vpcs: Vec<String> =
            r.cp.describe_vpcs(a, &VpcFilter::default())
                .iter()
                .map(|(v, s)| format!("{} {} {s:?}", v.id, v.name))
                .collect();
        let vsw: Vec<String> =
            r.cp.describe_vswitches(a, &VSwitchFilter::default())
                .iter()
                .map(|(s, n)| format!("{} {} {n}", s.id, s.cidr))
                .collect();
        let groups: Vec<String> = r
            .cp
            .describe_security_groups(a, &GroupFilter::default())
            .iter()
            .map(|(g, n)| {
                format!("{} {:?} {:?} {n}", g.id, g.inner_access, g.rules.iter().map(|x| &x.spec).collect::<Vec<_>>())
            })
            .collect();
        let eips: Vec<String> =
            r.cp.describe_eips(a, &EipFilter::default())
                .iter()
                .map(|e| format!("{} {:?}", e.ip, e.instance_id))
                .collect();
        out.push_str(&format!("\n{a}: {vpcs:?} {vsw:?} {groups:?} {eips:?}"));
    }
    out
}

fn ok(r: &Region1, version: &str, action: &str, q: &str) -> Value {
    r.call_version(version, action, q).unwrap_or_else(|e| panic!("{action} {q}: {} {}", e.code, e.message))
}

/// Everything the cases refer to.
struct World {
    vpc: String,
    vpc2: String,
    vsw: String,
    sg: String,
    sg_other_vpc: String,
    ent: String,
    instance: String,
    public_instance: String,
    eip: String,
    bob_vpc: String,
    bob_vsw: String,
    bob_sg: String,
}

fn world(r: &Region1, bob: &str) -> World {
    let id = |v: Value, k: &str| v[k].as_str().expect(k).to_string();
    let vpc = id(ok(r, VPC, "CreateVpc", "CidrBlock=10.0.0.0%2F16&VpcName=main"), "VpcId");
    let vpc2 = id(ok(r, VPC, "CreateVpc", "CidrBlock=10.1.0.0%2F16"), "VpcId");
    // A /29: .1 to .4 for instances.
    let vsw =
        id(ok(r, VPC, "CreateVSwitch", &format!("VpcId={vpc}&ZoneId=cn-local-a&CidrBlock=10.0.1.0%2F29")), "VSwitchId");
    let sg = id(ok(r, ECS, "CreateSecurityGroup", &format!("VpcId={vpc}&SecurityGroupName=web")), "SecurityGroupId");
    let sg_other_vpc = id(ok(r, ECS, "CreateSecurityGroup", &format!("VpcId={vpc2}")), "SecurityGroupId");
    let ent =
        id(ok(r, ECS, "CreateSecurityGroup", &format!("VpcId={vpc}&SecurityGroupType=enterprise")), "SecurityGroupId");
    let run = |extra: &str| {
        let v = ok(
            r,
            ECS,
            "RunInstances",
            &format!("ImageId=img&InstanceType=ecs.g7.large&VSwitchId={vsw}&SecurityGroupId={sg}{extra}"),
        );
        v["InstanceIdSets"]["InstanceIdSet"][0].as_str().expect("id").to_string()
    };
    let instance = run("&PrivateIpAddress=10.0.1.2");
    let public_instance = run("&InternetMaxBandwidthOut=5");
    let eip = id(ok(r, VPC, "AllocateEipAddress", "Bandwidth=5"), "AllocationId");
    // Bob's network, made directly.
    let b = r
        .cp
        .create_vpc(bob, &feiyun_domain::ops::NewVpc { cidr: "10.0.0.0/16".parse().ok(), ..Default::default() }, false)
        .expect("bob's vpc");
    let bvsw =
        r.cp.create_vswitch(
            bob,
            &feiyun_domain::ops::NewVSwitch {
                vpc_id: b.id.clone(),
                zone_id: "cn-local-a".into(),
                cidr: "10.0.1.0/24".parse().expect("block"),
                name: String::new(),
                description: String::new(),
                client_token: None,
            },
            false,
        )
        .expect("bob's vswitch");
    let bsg =
        r.cp.create_security_group(
            bob,
            &feiyun_domain::ops::NewSecurityGroup {
                vpc_id: Some(b.id.clone()),
                name: "b".into(),
                description: String::new(),
                kind: Default::default(),
                client_token: None,
            },
        )
        .expect("bob's group");
    World {
        vpc,
        vpc2,
        vsw,
        sg,
        sg_other_vpc,
        ent,
        instance,
        public_instance,
        eip,
        bob_vpc: b.id,
        bob_vsw: bvsw.id,
        bob_sg: bsg.id,
    }
}

/// (version, action, query, HTTP status, code)
fn cases(w: &World) -> Vec<(&'static str, &'static str, String, u16, &'static str)> {
    let long = |n: usize| "a".repeat(n);
    let run = |extra: &str| format!("ImageId=img&InstanceType=ecs.g7.large&{extra}");
    let in_vsw = |extra: &str| run(&format!("VSwitchId={}&SecurityGroupId={}&{extra}", w.vsw, w.sg));
    let auth = |extra: &str| format!("SecurityGroupId={}&{extra}", w.sg);
    let tcp = |extra: &str| auth(&format!("IpProtocol=tcp&PortRange=22%2F22&{extra}"));
    vec![
        // VPCs.
        (VPC, "CreateVpc", "CidrBlock=10.0.0.0%2F33".into(), 400, "InvalidCidrBlock.Malformed"),
        (VPC, "CreateVpc", "CidrBlock=abc".into(), 400, "InvalidCidrBlock.Malformed"),
        (VPC, "CreateVpc", "CidrBlock=10.0.0.1%2F16".into(), 400, "InvalidCidrBlock.Malformed"),
        (VPC, "CreateVpc", "CidrBlock=10.0.0%2F16".into(), 400, "InvalidCidrBlock.Malformed"),
        (VPC, "CreateVpc", "CidrBlock=100.64.0.0%2F16".into(), 400, "InvalidCidrBlock.Malformed"),
        (VPC, "CreateVpc", "CidrBlock=127.0.0.0%2F16".into(), 400, "InvalidCidrBlock.Malformed"),
        (VPC, "CreateVpc", "CidrBlock=10.0.0.0%2F29".into(), 400, "InvalidCidrBlock.Malformed"),
        (VPC, "CreateVpc", "CidrBlock=10.0.0.0%2F7".into(), 400, "InvalidCidrBlock.Malformed"),
        (VPC, "CreateVpc", format!("VpcName={}", pct("http://x")), 400, "InvalidVpcName.Malformed"),
        (VPC, "CreateVpc", format!("VpcName={}", long(129)), 400, "InvalidVpcName.Malformed"),
        (VPC, "CreateVpc", format!("Description={}", long(257)), 400, "InvalidDescription.Malformed"),
        (VPC, "CreateVpc", "RegionId=elsewhere".into(), 404, "InvalidRegionId.NotFound"),
        (VPC, "CreateVpc", "DryRun=true".into(), 400, "DryRunOperation"),
        (VPC, "DescribeVpcs", "PageSize=51".into(), 400, "InvalidParameter"),
        (VPC, "DescribeVpcs", "IsDefault=maybe".into(), 400, "InvalidParameter"),
        (VPC, "DescribeVpcAttribute", "VpcId=vpc-nothere".into(), 404, "InvalidVpcId.NotFound"),
        (VPC, "DescribeVpcAttribute", format!("VpcId={}", w.bob_vpc), 404, "InvalidVpcId.NotFound"),
        (VPC, "ModifyVpcAttribute", format!("VpcId={}&VpcName=x", w.bob_vpc), 404, "InvalidVpcId.NotFound"),
        (VPC, "ModifyVpcAttribute", format!("VpcId={}&VpcName={}", w.vpc, pct("https://x")), 400, "InvalidVpcName.Malformed"),
        (VPC, "DeleteVpc", format!("VpcId={}", w.vpc), 400, "DependencyViolation.VSwitch"),
        (VPC, "DeleteVpc", format!("VpcId={}", w.vpc2), 400, "DependencyViolation.SecurityGroup"),
        (VPC, "DeleteVpc", format!("VpcId={}", w.bob_vpc), 404, "InvalidVpcId.NotFound"),
        (VPC, "DeleteVpc", "".into(), 400, "MissingParameter"),
        // vSwitches.
        (VPC, "CreateVSwitch", format!("VpcId={}&ZoneId=cn-local-a&CidrBlock=10.0.2.0%2F33", w.vpc), 400, "InvalidCidrBlock.Malformed"),
        (VPC, "CreateVSwitch", format!("VpcId={}&ZoneId=cn-local-a&CidrBlock=10.0.1.0%2F24", w.vpc), 400, "InvalidCidrBlock.Overlapped"),
        (VPC, "CreateVSwitch", format!("VpcId={}&ZoneId=cn-local-a&CidrBlock=10.0.1.4%2F30", w.vpc), 400, "InvalidCidrBlock.Malformed"),
        (VPC, "CreateVSwitch", format!("VpcId={}&ZoneId=cn-local-a&CidrBlock=10.9.0.0%2F24", w.vpc), 400, "InvalidCidrBlock.Malformed"),
        (VPC, "CreateVSwitch", format!("VpcId={}&ZoneId=cn-local-a&CidrBlock=10.0.0.0%2F15", w.vpc), 400, "InvalidCidrBlock.Malformed"),
        (VPC, "CreateVSwitch", format!("VpcId={}&ZoneId=nowhere&CidrBlock=10.0.2.0%2F24", w.vpc), 404, "InvalidZoneId.NotFound"),
        (VPC, "CreateVSwitch", format!("VpcId={}&ZoneId=cn-local-a&CidrBlock=10.0.2.0%2F24", w.bob_vpc), 404, "InvalidVpcId.NotFound"),
        (VPC, "CreateVSwitch", format!("VpcId={}&ZoneId=cn-local-a", w.vpc), 400, "MissingParameter"),
        (VPC, "CreateVSwitch", format!("VpcId={}&ZoneId=cn-local-a&CidrBlock=10.0.2.0%2F24&VSwitchName={}", w.vpc, long(129)), 400, "InvalidVSwitchName.Malformed"),
        (VPC, "DescribeVSwitchAttributes", format!("VSwitchId={}", w.bob_vsw), 404, "InvalidVSwitchId.NotFound"),
        (VPC, "DeleteVSwitch", format!("VSwitchId={}", w.vsw), 400, "DependencyViolation"),
        (VPC, "DeleteVSwitch", format!("VSwitchId={}", w.bob_vsw), 404, "InvalidVSwitchId.NotFound"),
        // Elastic IP addresses.
        (VPC, "AllocateEipAddress", "Bandwidth=0".into(), 400, "InvalidParameter"),
        (VPC, "AllocateEipAddress", "Bandwidth=201".into(), 400, "InvalidParameter"),
        (VPC, "AllocateEipAddress", "InternetChargeType=Free".into(), 400, "InvalidParameter"),
        (VPC, "AssociateEipAddress", format!("AllocationId=eip-nothere&InstanceId={}", w.instance), 404, "InvalidAllocationId.NotFound"),
        (VPC, "AssociateEipAddress", format!("AllocationId={}&InstanceId=i-nothere", w.eip), 404, "InvalidInstanceId.NotFound"),
        (VPC, "AssociateEipAddress", format!("AllocationId={}&InstanceId={}&InstanceType=SlbInstance", w.eip, w.instance), 400, "InvalidParameter"),
        (VPC, "AssociateEipAddress", format!("AllocationId={}&InstanceId={}", w.eip, w.public_instance), 400, "InvalidAssociation.Duplicated"),
        (VPC, "UnassociateEipAddress", format!("AllocationId={}&InstanceId={}", w.eip, w.instance), 400, "IncorrectEipStatus"),
        (VPC, "ReleaseEipAddress", "AllocationId=eip-nothere".into(), 404, "InvalidAllocationId.NotFound"),
        (VPC, "DescribeEipAddresses", "Status=Lost".into(), 400, "InvalidParameter"),
        (VPC, "DescribeEipAddresses", "EipAddress=nope".into(), 400, "InvalidParameter"),
        // Security groups.
        (ECS, "CreateSecurityGroup", "VpcId=vpc-nothere".into(), 404, "InvalidVpcId.NotFound"),
        (ECS, "CreateSecurityGroup", format!("VpcId={}", w.bob_vpc), 404, "InvalidVpcId.NotFound"),
        (ECS, "CreateSecurityGroup", format!("VpcId={}&SecurityGroupName=1web", w.vpc), 400, "InvalidSecurityGroupName.Malformed"),
        (ECS, "CreateSecurityGroup", format!("VpcId={}&Description=x", w.vpc), 400, "InvalidDescription.Malformed"),
        (ECS, "CreateSecurityGroup", format!("VpcId={}&SecurityGroupType=special", w.vpc), 400, "InvalidParameter"),
        (ECS, "AuthorizeSecurityGroup", auth(""), 400, "MissingParameter"),
        (ECS, "AuthorizeSecurityGroup", auth("IpProtocol=gre&PortRange=-1%2F-1&SourceCidrIp=0.0.0.0%2F0"), 400, "InvalidIpProtocol.ValueNotSupported"),
        (ECS, "AuthorizeSecurityGroup", auth("IpProtocol=6&PortRange=1%2F1&SourceCidrIp=0.0.0.0%2F0"), 400, "InvalidIpProtocol.ValueNotSupported"),
        (ECS, "AuthorizeSecurityGroup", auth("IpProtocol=tcp&PortRange=0%2F10&SourceCidrIp=0.0.0.0%2F0"), 400, "InvalidIpProtocol.Malformed"),
        (ECS, "AuthorizeSecurityGroup", auth("IpProtocol=tcp&PortRange=10%2F1&SourceCidrIp=0.0.0.0%2F0"), 400, "InvalidIpProtocol.Malformed"),
        (ECS, "AuthorizeSecurityGroup", auth("IpProtocol=tcp&PortRange=1%2F65536&SourceCidrIp=0.0.0.0%2F0"), 400, "InvalidIpProtocol.Malformed"),
        (ECS, "AuthorizeSecurityGroup", auth("IpProtocol=tcp&PortRange=22&SourceCidrIp=0.0.0.0%2F0"), 400, "InvalidIpProtocol.Malformed"),
        (ECS, "AuthorizeSecurityGroup", auth("IpProtocol=tcp&PortRange=-1%2F-1&SourceCidrIp=0.0.0.0%2F0"), 400, "InvalidIpProtocol.Malformed"),
        (ECS, "AuthorizeSecurityGroup", auth("IpProtocol=icmp&PortRange=1%2F1&SourceCidrIp=0.0.0.0%2F0"), 400, "OperationDenied"),
        (ECS, "AuthorizeSecurityGroup", auth("IpProtocol=tcp&SourceCidrIp=0.0.0.0%2F0"), 400, "MissingParameter"),
        (ECS, "AuthorizeSecurityGroup", tcp("SourceCidrIp=0.0.0.0%2F0&Priority=0"), 400, "InvalidPriority.ValueNotSupported"),
        (ECS, "AuthorizeSecurityGroup", tcp("SourceCidrIp=0.0.0.0%2F0&Priority=101"), 400, "InvalidPriority.ValueNotSupported"),
        (ECS, "AuthorizeSecurityGroup", tcp("SourceCidrIp=0.0.0.0%2F0&Priority=first"), 400, "InvalidPriority.Malformed"),
        (ECS, "AuthorizeSecurityGroup", tcp("SourceCidrIp=0.0.0.0%2F0&Policy=maybe"), 400, "InvalidPolicy.Malformed"),
        (ECS, "AuthorizeSecurityGroup", tcp("SourceCidrIp=10.0.0.0%2F33"), 400, "InvalidSourceCidrIp.Malformed"),
        (ECS, "AuthorizeSecurityGroup", tcp("SourceCidrIp=10.0.0"), 400, "InvalidSourceCidrIp.Malformed"),
        (ECS, "AuthorizeSecurityGroup", tcp("SourceCidrIp=10.0.0.0%2F"), 400, "InvalidSourceCidrIp.Malformed"),
        (ECS, "AuthorizeSecurityGroup", tcp(""), 400, "MissingParameter.Source"),
        (ECS, "AuthorizeSecurityGroup", tcp("SourceGroupId=sg-nothere"), 404, "InvalidSourceGroupId.NotFound"),
        (ECS, "AuthorizeSecurityGroup", tcp(&format!("SourceGroupId={}", w.bob_sg)), 404, "InvalidSourceGroupId.NotFound"),
        (ECS, "AuthorizeSecurityGroup", tcp(&format!("SourceGroupId={}", w.sg_other_vpc)), 400, "InvalidSourceGroupId.Mismatch"),
        (ECS, "AuthorizeSecurityGroup", tcp("SourceCidrIp=0.0.0.0%2F0&NicType=internet"), 400, "InvalidNicType.ValueNotSupported"),
        (ECS, "AuthorizeSecurityGroup", tcp(&format!("SourceCidrIp=0.0.0.0%2F0&Description={}", long(513))), 400, "InvalidSecurityGroupDiscription.Malformed"),
        (ECS, "AuthorizeSecurityGroup", auth("Permissions.0.IpProtocol=tcp"), 400, "InvalidParameter"),
        (ECS, "AuthorizeSecurityGroup", auth("Permissions.101.IpProtocol=tcp"), 400, "InvalidParameter"),
        (
            ECS,
            "AuthorizeSecurityGroup",
            auth("Permissions.1.IpProtocol=tcp&Permissions.1.PortRange=80%2F80&Permissions.1.SourceCidrIp=0.0.0.0%2F0&Permissions.2.IpProtocol=udp&Permissions.2.PortRange=1%2F0&Permissions.2.SourceCidrIp=0.0.0.0%2F0"),
            400,
            "InvalidIpProtocol.Malformed",
        ),
        (ECS, "AuthorizeSecurityGroup", format!("SecurityGroupId={}&IpProtocol=tcp&PortRange=22%2F22&SourceCidrIp=0.0.0.0%2F0", w.bob_sg), 404, "InvalidSecurityGroupId.NotFound"),
        (ECS, "AuthorizeSecurityGroupEgress", auth("IpProtocol=tcp&PortRange=22%2F22"), 400, "MissingParameter.Dest"),
        (ECS, "AuthorizeSecurityGroupEgress", auth("IpProtocol=tcp&PortRange=22%2F22&DestCidrIp=300.0.0.0%2F8"), 400, "InvalidDestCidrIp.Malformed"),
        (ECS, "AuthorizeSecurityGroupEgress", auth("IpProtocol=tcp&PortRange=22%2F22&DestGroupId=sg-nothere"), 404, "InvalidDestGroupId.NotFound"),
        (ECS, "RevokeSecurityGroup", auth(""), 400, "MissingParameter"),
        (ECS, "RevokeSecurityGroup", auth("IpProtocol=tcp&PortRange=99999%2F1&SourceCidrIp=0.0.0.0%2F0"), 400, "InvalidIpProtocol.Malformed"),
        (ECS, "ModifySecurityGroupPolicy", auth("InnerAccessPolicy=Maybe"), 400, "InvalidInnerAccessPolicy.Malformed"),
        (ECS, "ModifySecurityGroupPolicy", format!("SecurityGroupId={}&InnerAccessPolicy=Drop", w.ent), 400, "InvalidParameter"),
        (ECS, "JoinSecurityGroup", format!("SecurityGroupId={}&InstanceId={}", w.bob_sg, w.instance), 404, "InvalidSecurityGroupId.NotFound"),
        (ECS, "JoinSecurityGroup", format!("SecurityGroupId={}&InstanceId=i-nothere", w.sg), 404, "InvalidInstanceId.NotFound"),
        (ECS, "JoinSecurityGroup", format!("SecurityGroupId={}&InstanceId={}", w.sg_other_vpc, w.instance), 400, "InvalidParameter.Mismatch"),
        (ECS, "JoinSecurityGroup", format!("SecurityGroupId={}&InstanceId={}", w.ent, w.instance), 403, "EnterpriseGroupLimited.MutliGroupType"),
        (ECS, "LeaveSecurityGroup", format!("SecurityGroupId={}&InstanceId={}", w.sg, w.instance), 403, "InstanceLastSecurityGroup"),
        (ECS, "DeleteSecurityGroup", format!("SecurityGroupId={}", w.sg), 403, "DependencyViolation"),
        (ECS, "DeleteSecurityGroup", "SecurityGroupId=sg-nothere".into(), 404, "InvalidSecurityGroupId.NotFound"),
        (ECS, "DescribeSecurityGroupAttribute", format!("SecurityGroupId={}", w.bob_sg), 404, "InvalidSecurityGroupId.NotFound"),
        (ECS, "DescribeSecurityGroups", "SecurityGroupIds=sg-1".into(), 400, "InvalidParameter"),
        // Instances' network parameters.
        (ECS, "RunInstances", run("VSwitchId=vsw-nothere&SecurityGroupId=x"), 404, "InvalidVSwitchId.NotFound"),
        (ECS, "RunInstances", run(&format!("VSwitchId={}&SecurityGroupId={}", w.bob_vsw, w.sg)), 404, "InvalidVSwitchId.NotFound"),
        (ECS, "RunInstances", run(&format!("VSwitchId={}&SecurityGroupId={}", w.vsw, w.bob_sg)), 404, "InvalidSecurityGroupId.NotFound"),
        (ECS, "RunInstances", run(&format!("VSwitchId={}&SecurityGroupId={}", w.vsw, w.sg_other_vpc)), 400, "InvalidParameter.Mismatch"),
        (ECS, "RunInstances", run(&format!("VSwitchId={}", w.vsw)), 400, "MissingParameter"),
        (ECS, "RunInstances", run(&format!("SecurityGroupId={}", w.sg)), 400, "InvalidSecurityGroup.NotInDefaultVpc"),
        (ECS, "RunInstances", in_vsw(&format!("SecurityGroupIds.1={}", w.sg)), 400, "InvalidParameter.Conflict"),
        (ECS, "RunInstances", run(&format!("VSwitchId={}&SecurityGroupIds.1={}&SecurityGroupIds.2={}", w.vsw, w.sg, w.ent)), 403, "EnterpriseGroupLimited.MutliGroupType"),
        (ECS, "RunInstances", in_vsw("PrivateIpAddress=abc"), 400, "InvalidPrivateIpAddress.Malformed"),
        (ECS, "RunInstances", in_vsw("PrivateIpAddress=10.0.1.2"), 400, "InvalidPrivateIpAddress.Duplicated"),
        (ECS, "RunInstances", in_vsw("PrivateIpAddress=10.0.1.0"), 400, "InvalidPrivateIpAddress"),
        (ECS, "RunInstances", in_vsw("PrivateIpAddress=10.0.1.5"), 400, "InvalidPrivateIpAddress"),
        (ECS, "RunInstances", in_vsw("PrivateIpAddress=10.0.1.7"), 400, "InvalidPrivateIpAddress"),
        (ECS, "RunInstances", in_vsw("PrivateIpAddress=10.0.2.1"), 400, "InvalidPrivateIpAddress"),
        (ECS, "RunInstances", in_vsw("PrivateIpAddress=10.0.1.3&Amount=2"), 400, "InvalidParameter"),
        (ECS, "RunInstances", run("PrivateIpAddress=172.16.0.9"), 400, "InvalidVSwitchId.Necessary"),
        (ECS, "RunInstances", in_vsw("Amount=3"), 400, "InvalidVSwitchId.IpNotEnough"),
        (ECS, "RunInstances", in_vsw("InternetMaxBandwidthOut=101"), 400, "InvalidInternetMaxBandwidthOut.Malformed"),
        (ECS, "RunInstances", in_vsw("InternetMaxBandwidthOut=-1"), 400, "InvalidInternetMaxBandwidthOut.Malformed"),
        (ECS, "RunInstances", in_vsw("InternetChargeType=Free"), 400, "InvalidInternetChargeType.ValueNotSupported"),
        (ECS, "CreateInstance", run("VSwitchId=vsw-nothere&SecurityGroupId=x"), 404, "InvalidVSwitchId.NotFound"),
        (ECS, "DescribeInstances", "VpcId=vpc-nothere".into(), 0, ""),
    ]
    .into_iter()
    .filter(|c| c.3 != 0)
    .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_network_parameters_are_refused_and_change_nothing() {
    let r = region_with(net());
    let (bob, _) = r.cp.create_account("bob").expect("bob");
    let w = world(&r, &bob.id);
    // A full pool: nothing public is left after three more (.1 to .6, two taken).
    let mut left = Vec::new();
    while let Ok(v) = r.call_version(VPC, "AllocateEipAddress", "") {
        left.push(v["AllocationId"].as_str().expect("id").to_string());
    }
    let accounts = [r.account.as_str(), bob.id.as_str()];
    let before = footprint(&r, &accounts);
    let mut wrong = Vec::new();
    let mut all = cases(&w);
    all.push((VPC, "AllocateEipAddress", "Bandwidth=5".into(), 400, "QuotaExceeded.Eip"));
    let public = format!(
        "ImageId=img&InstanceType=ecs.g7.large&VSwitchId={}&SecurityGroupId={}&InternetMaxBandwidthOut=1",
        w.vsw, w.sg
    );
    all.push((ECS, "RunInstances", public, 400, "ResourceNotAvailable"));
    for (version, action, query, status, code) in all {
        let shown = if query.len() > 140 { format!("{}…", &query[..140]) } else { query.clone() };
        match r.call_version(version, action, &query) {
            Ok(v) => {
                wrong.push(format!("{action} {shown}: accepted: {}", &v.to_string()[..v.to_string().len().min(200)]))
            }
            Err(e) if (e.status, e.code.as_str()) != (status, code) => {
                wrong.push(format!("{action} {shown}: {} {} ({}), not {status} {code}", e.status, e.code, e.message))
            }
            Err(_) => {}
        }
        assert_eq!(footprint(&r, &accounts), before, "{action} {shown} changed something");
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_network_calls_made_well_are_accepted() {
    let r = region_with(net());
    let (bob, _) = r.cp.create_account("bob").expect("bob");
    let w = world(&r, &bob.id);
    let rule = "IpProtocol=TCP&PortRange=80%2F80&SourceCidrIp=192.168.0.7&Policy=Drop&Priority=100&NicType=intranet";
    ok(&r, ECS, "AuthorizeSecurityGroup", &format!("SecurityGroupId={}&{rule}", w.sg));
    ok(&r, ECS, "AuthorizeSecurityGroup", &format!("SecurityGroupId={}&{rule}", w.sg));
    let attr = ok(&r, ECS, "DescribeSecurityGroupAttribute", &format!("SecurityGroupId={}", w.sg));
    let perms = attr["Permissions"]["Permission"].as_array().expect("permissions").clone();
    assert_eq!(perms.len(), 1, "a duplicate rule adds nothing: {perms:?}");
    assert_eq!(perms[0]["SourceCidrIp"], "192.168.0.7/32");
    assert_eq!((perms[0]["Policy"].as_str(), perms[0]["Priority"].as_str()), (Some("Drop"), Some("100")));
    ok(
        &r,
        ECS,
        "AuthorizeSecurityGroupEgress",
        &format!(
            "SecurityGroupId={}&Permissions.1.IpProtocol=all&Permissions.1.PortRange=-1%2F-1&Permissions.1.DestGroupId={}&Permissions.2.IpProtocol=icmp&Permissions.2.PortRange=-1%2F-1&Permissions.2.DestCidrIp=10.0.0.0%2F8",
            w.sg, w.sg
        ),
    );
    ok(&r, ECS, "RevokeSecurityGroup", &format!("SecurityGroupId={}&{rule}", w.sg));
    ok(&r, ECS, "RevokeSecurityGroup", &format!("SecurityGroupId={}&{rule}", w.sg));
    let attr = ok(&r, ECS, "DescribeSecurityGroupAttribute", &format!("SecurityGroupId={}&Direction=egress", w.sg));
    assert_eq!(attr["Permissions"]["Permission"].as_array().map(Vec::len), Some(2));
    ok(&r, ECS, "ModifySecurityGroupPolicy", &format!("SecurityGroupId={}&InnerAccessPolicy=Drop", w.sg));
    ok(&r, VPC, "AssociateEipAddress", &format!("AllocationId={}&InstanceId={}", w.eip, w.instance));
    let d = ok(
        &r,
        ECS,
        "DescribeInstances",
        &format!("VpcId={}&InstanceIds={}", w.vpc, pct(&format!("[\"{}\"]", w.instance))),
    );
    let i = &d["Instances"]["Instance"][0];
    assert_eq!(i["VpcAttributes"]["PrivateIpAddress"]["IpAddress"][0], "10.0.1.2");
    assert_eq!(i["EipAddress"]["AllocationId"], w.eip.as_str());
    assert_eq!(i["SecurityGroupIds"]["SecurityGroupId"][0], w.sg.as_str());
    assert_eq!(i["NetworkInterfaces"]["NetworkInterface"][0]["Type"], "Primary");
    ok(&r, VPC, "UnassociateEipAddress", &format!("AllocationId={}", w.eip));
    ok(&r, VPC, "ReleaseEipAddress", &format!("AllocationId={}", w.eip));
    ok(&r, ECS, "JoinSecurityGroup", &format!("SecurityGroupId={}&InstanceId={}", w.sg, w.instance));
    ok(&r, ECS, "DeleteSecurityGroup", &format!("SecurityGroupId={}", w.sg_other_vpc));
    ok(&r, VPC, "DeleteVpc", &format!("VpcId={}", w.vpc2));
    ok(&r, VPC, "ModifyVpcAttribute", &format!("VpcId={}&VpcName=renamed&Description=main+network", w.vpc));
    let v = ok(&r, VPC, "DescribeVpcs", &format!("VpcId={}", w.vpc));
    assert_eq!(v["Vpcs"]["Vpc"][0]["VpcName"], "renamed");
    assert_eq!(v["Vpcs"]["Vpc"][0]["Status"], "Available");
}
