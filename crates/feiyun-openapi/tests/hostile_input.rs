//! Hostile input: every malformed or out-of-range parameter is refused with its documented code
//! (or the generic InvalidParameter where ECS documents none), and a refused call changes
//! nothing — no instance, no ledger entry, no change of balance.

mod common;

use common::{region, Region1, BSS, ECS};
use feiyun_openapi::sign::pct;

const RUN: &str = "ImageId=img&InstanceType=ecs.g7.large";

/// (version, action, query, HTTP status, code)
fn cases(id: &str) -> Vec<(&'static str, &'static str, String, u16, &'static str)> {
    let long = |n: usize| "a".repeat(n);
    let run = |extra: &str| format!("{RUN}&{extra}");
    let prepaid = |extra: &str| format!("{RUN}&InstanceChargeType=PrePaid&{extra}");
    let mut v = vec![
        // Tags.
        (ECS, "RunInstances", run("Tag.1.Key="), 400, "InvalidTagKey.Malformed"),
        (ECS, "RunInstances", run("Tag.1.Key=+&Tag.1.Value=v"), 400, "InvalidTagKey.Malformed"),
        (ECS, "RunInstances", run("Tag.1.Key=aliyun-x"), 400, "InvalidTagKey.Malformed"),
        (ECS, "RunInstances", run(&format!("Tag.1.Key={}", pct("acs:x"))), 400, "InvalidTagKey.Malformed"),
        (ECS, "RunInstances", run(&format!("Tag.1.Key={}", pct("see http://x"))), 400, "InvalidTagKey.Malformed"),
        (ECS, "RunInstances", run(&format!("Tag.1.Key={}", long(129))), 400, "InvalidTagKey.Malformed"),
        (
            ECS,
            "RunInstances",
            run(&format!("Tag.1.Key=k&Tag.1.Value={}", pct("https://x"))),
            400,
            "InvalidTagValue.Malformed",
        ),
        (ECS, "RunInstances", run(&format!("Tag.1.Key=k&Tag.1.Value={}", long(129))), 400, "InvalidTagValue.Malformed"),
        (ECS, "RunInstances", run("Tag.1.Value=v"), 400, "InvalidTag.Mismatch"),
        (ECS, "RunInstances", run("Tag.1.Key=k&Tag.2.Key=k"), 400, "Duplicate.TagKey"),
        (ECS, "RunInstances", run("Tag.21.Key=k"), 400, "InvalidTagCount"),
        (ECS, "RunInstances", run("Tag.01.Key=k"), 400, "InvalidParameter"),
        (ECS, "CreateInstance", run("Tag.1.Key="), 400, "InvalidTagKey.Malformed"),
        (ECS, "DescribeInstances", "Tag.1.Value=v".into(), 400, "InvalidTag.Mismatch"),
        (ECS, "DescribeInstances", "Tag.21.Key=k".into(), 400, "InvalidTagCount"),
        // Names, descriptions, tokens.
        (ECS, "RunInstances", run("InstanceName=a"), 400, "InvalidInstanceName.Malformed"),
        (ECS, "RunInstances", run("InstanceName=1web"), 400, "InvalidInstanceName.Malformed"),
        (ECS, "RunInstances", run("InstanceName=web+server"), 400, "InvalidInstanceName.Malformed"),
        (ECS, "RunInstances", run(&format!("InstanceName={}", long(129))), 400, "InvalidInstanceName.Malformed"),
        (ECS, "RunInstances", run("HostName=-web"), 400, "InvalidHostName.Malformed"),
        (ECS, "RunInstances", run("HostName=we..b"), 400, "InvalidHostName.Malformed"),
        (ECS, "RunInstances", run("HostName=web_1"), 400, "InvalidHostName.Malformed"),
        (ECS, "RunInstances", run(&format!("HostName={}", long(65))), 400, "InvalidHostName.Malformed"),
        (ECS, "RunInstances", run("Description=x"), 400, "InvalidDescription.Malformed"),
        (
            ECS,
            "RunInstances",
            run(&format!("Description={}", pct("http://x.example"))),
            400,
            "InvalidDescription.Malformed",
        ),
        (ECS, "RunInstances", run(&format!("Description={}", long(257))), 400, "InvalidDescription.Malformed"),
        (
            ECS,
            "RunInstances",
            run(&format!("Amount=2&UniqueSuffix=true&InstanceName={}", long(126))),
            403,
            "InvalidParams.InstanceNameExceed",
        ),
        (
            ECS,
            "RunInstances",
            run(&format!("Amount=2&UniqueSuffix=true&HostName={}", long(62))),
            403,
            "InvalidParams.HostnameExceed",
        ),
        (ECS, "RunInstances", run(&format!("ClientToken={}", long(65))), 400, "InvalidClientToken.ValueNotSupported"),
        (
            ECS,
            "RunInstances",
            run(&format!("ClientToken={}", pct("令牌"))),
            400,
            "InvalidClientToken.ValueNotSupported",
        ),
        // Numbers.
        (ECS, "RunInstances", run("Amount=abc"), 400, "InvalidParameter"),
        (ECS, "RunInstances", run("Amount=0"), 400, "InvalidParameter"),
        (ECS, "RunInstances", run("Amount=101"), 400, "InvalidParameter"),
        (ECS, "RunInstances", run("MinAmount=0"), 400, "InvalidMinAmount.Malformed"),
        (ECS, "RunInstances", run("MinAmount=x"), 400, "InvalidMinAmount.Malformed"),
        (ECS, "RunInstances", run("Amount=2&MinAmount=3"), 400, "InvalidMinAmount.Malformed"),
        (ECS, "RunInstances", run("DryRun=maybe"), 400, "InvalidParameter"),
        // Paying.
        (ECS, "RunInstances", run("InstanceChargeType=Free"), 404, "InvalidInstanceChargeType.NotFound"),
        (ECS, "RunInstances", prepaid("Period=abc"), 400, "InvalidPeriod"),
        (ECS, "RunInstances", prepaid("Period=10"), 400, "InvalidPeriod"),
        (ECS, "RunInstances", prepaid("Period=61"), 400, "InvalidPeriod"),
        (ECS, "RunInstances", prepaid("Period=6&PeriodUnit=Year"), 400, "InvalidPeriod"),
        (ECS, "RunInstances", prepaid("Period=1&PeriodUnit=Day"), 400, "InvalidPeriodUnit.ValueNotSupported"),
        (
            ECS,
            "RunInstances",
            prepaid("Period=1&AutoRenew=true&AutoRenewPeriod=5"),
            400,
            "InvalidAutoRenewPeriod.ValueNotSupported",
        ),
        (
            ECS,
            "RunInstances",
            prepaid("Period=1&AutoRenew=true&AutoRenewPeriod=x"),
            400,
            "InvalidAutoRenewPeriod.ValueNotSupported",
        ),
        (ECS, "RunInstances", run("SpotStrategy=Cheap"), 400, "InvalidSpotStrategy"),
        (ECS, "RunInstances", run("SpotStrategy=SpotWithPriceLimit&SpotPriceLimit=abc"), 400, "InvalidSpotPriceLimit"),
        (ECS, "RunInstances", run("SpotStrategy=SpotWithPriceLimit&SpotPriceLimit=-1"), 400, "InvalidSpotPriceLimit"),
        (ECS, "RunInstances", run("SpotStrategy=SpotWithPriceLimit&SpotPriceLimit=0"), 400, "InvalidSpotPriceLimit"),
        (ECS, "RunInstances", run("SpotStrategy=SpotAsPriceGo&SpotDuration=2"), 400, "InvalidSpotDuration"),
        (
            ECS,
            "RunInstances",
            run("SpotStrategy=SpotAsPriceGo&SpotInterruptionBehavior=Explode"),
            400,
            "InvalidSpotInterruptionBehavior",
        ),
        // Data, places.
        (ECS, "RunInstances", run("UserData=%25%25%25"), 400, "InvalidUserData.Base64FormatInvalid"),
        (
            ECS,
            "RunInstances",
            run(&format!("UserData={}", pct(&"QUFB".repeat(11 * 1024)))),
            400,
            "InvalidUserData.SizeExceeded",
        ),
        (ECS, "RunInstances", run("ZoneId=cn-hangzhou-b"), 404, "InvalidZoneId.NotFound"),
        (ECS, "RunInstances", run("RegionId=cn-hangzhou"), 404, "InvalidRegionId.NotFound"),
        // Listing and paging.
        (ECS, "DescribeInstances", "Status=Deleted".into(), 404, "InvalidStatus.NotFound"),
        (ECS, "DescribeInstances", "Status=Sleeping".into(), 404, "InvalidStatus.NotFound"),
        (ECS, "DescribeInstances", "InstanceIds=i-1,i-2".into(), 400, "InvalidParameter"),
        (ECS, "DescribeInstances", format!("InstanceIds={}", pct("[\"i-1\", 2]")), 400, "InvalidParameter"),
        (ECS, "DescribeInstances", "PageSize=0".into(), 400, "InvalidParameter"),
        (ECS, "DescribeInstances", "PageSize=-1".into(), 400, "InvalidParameter"),
        (ECS, "DescribeInstances", "PageSize=101".into(), 400, "InvalidParameter"),
        (ECS, "DescribeInstances", "PageNumber=0".into(), 400, "InvalidParameter"),
        (ECS, "DescribeInstances", "PageNumber=x".into(), 400, "InvalidParameter"),
        (
            ECS,
            "DescribeInstances",
            format!("NextToken={:032x}", u64::MAX as u128 ^ 0x5f37_59df_0000_0000_0000_0000_0000_0000),
            400,
            "InvalidParameter",
        ),
        (ECS, "DescribeInstanceStatus", "InstanceId.0=i-1".into(), 400, "InvalidParameter"),
        (ECS, "DescribeImages", "OSType=beos".into(), 404, "InvalidOSType"),
        (ECS, "DescribeImages", "Architecture=mips".into(), 404, "InvalidArchitecture"),
        (ECS, "DescribeImages", "ImageOwnerAlias=me".into(), 400, "InvalidImageOwnerAlias.ValueNotSupported"),
        (ECS, "DescribeImages", "Status=Broken".into(), 400, "InvalidParameter"),
        (ECS, "DescribeInstanceTypes", "InstanceFamilyLevel=Top".into(), 400, "InvalidParameter"),
        (ECS, "DescribeInstanceTypes", "MinimumMemorySize=-1".into(), 400, "InvalidParameter"),
        (ECS, "DescribeInstanceTypes", "MaximumMemorySize=NaN".into(), 400, "InvalidParameter"),
        (ECS, "DescribeAvailableResource", "DestinationResource=Moon".into(), 404, "Invalid.DestinationResource"),
        (ECS, "DescribeAvailableResource", "DestinationResource=InstanceType&Cores=0".into(), 400, "InvalidParameter"),
        // Prices.
        (
            ECS,
            "DescribePrice",
            "InstanceType=ecs.g7.large&ResourceType=moon".into(),
            400,
            "InvalidResourceType.ValueNotSupported",
        ),
        (
            ECS,
            "DescribePrice",
            "InstanceType=ecs.g7.large&PriceUnit=Day".into(),
            400,
            "InvalidPriceUnit.ValueNotSupported",
        ),
        (ECS, "DescribePrice", "InstanceType=ecs.g7.large&Amount=0".into(), 403, "InvalidAmount.Malformed"),
        (
            ECS,
            "DescribePrice",
            "InstanceType=ecs.g7.large&SystemDisk.Size=5000".into(),
            400,
            "InvalidSystemDiskSize.ValueNotSupported",
        ),
        (
            ECS,
            "DescribePrice",
            "InstanceType=ecs.g7.large&InternetMaxBandwidthOut=101".into(),
            400,
            "InvalidInternetMaxBandwidthOut.ValueNotSupported",
        ),
        (
            ECS,
            "DescribePrice",
            "InstanceType=ecs.g7.large&InternetChargeType=Free".into(),
            400,
            "InvalidInternetChargeType.ValueNotSupported",
        ),
        (ECS, "DescribePrice", "InstanceType=ecs.g7.large&PriceUnit=Month&Period=x".into(), 400, "InvalidPeriod"),
        (ECS, "DescribePrice", "InstanceType=ecs.g7.large&SpotStrategy=x".into(), 400, "InvalidSpotStrategy"),
        (
            ECS,
            "DescribeSpotPriceHistory",
            "InstanceType=ecs.g7.large&NetworkType=ipx".into(),
            400,
            "InvalidParams.NetworkType",
        ),
        (
            ECS,
            "DescribeSpotPriceHistory",
            "InstanceType=ecs.g7.large&NetworkType=vpc&StartTime=yesterday".into(),
            400,
            "InvalidParams.StartTime",
        ),
        (
            ECS,
            "DescribeSpotPriceHistory",
            "InstanceType=ecs.g7.large&NetworkType=vpc&Offset=-1".into(),
            400,
            "InvalidParams.Offset",
        ),
        // Acting on instances: each once.
        (ECS, "StartInstances", format!("InstanceId.1={id}&InstanceId.2={id}"), 400, "InvalidParameter"),
        (ECS, "StopInstances", format!("InstanceId.1={id}&InstanceId.2={id}"), 400, "InvalidParameter"),
        (ECS, "RebootInstances", format!("InstanceId.1={id}&InstanceId.2={id}"), 400, "InvalidParameter"),
        (ECS, "DeleteInstances", format!("Force=true&InstanceId.1={id}&InstanceId.2={id}"), 400, "InvalidParameter"),
        (ECS, "DeleteInstances", format!("Force=true&InstanceId.101={id}"), 400, "InvalidParameter"),
        (ECS, "DeleteInstances", format!("Force=true&InstanceId.01={id}"), 400, "InvalidParameter"),
        (
            ECS,
            "ModifyInstanceChargeType",
            format!("InstanceIds={}", pct(&format!("[\"{id}\",\"{id}\"]"))),
            400,
            "InvalidParameter",
        ),
        (ECS, "ModifyInstanceChargeType", format!("InstanceIds={id}"), 400, "InvalidParameter"),
        (
            ECS,
            "ModifyInstanceChargeType",
            format!("InstanceIds={}&InstanceChargeType=Free", pct(&format!("[\"{id}\"]"))),
            404,
            "InvalidInstanceChargeType.NotFound",
        ),
        (
            ECS,
            "ModifyInstanceAutoRenewAttribute",
            format!("InstanceId={id},{id}&AutoRenew=true"),
            400,
            "InvalidParameter",
        ),
        (
            ECS,
            "ModifyInstanceAutoRenewAttribute",
            format!("InstanceId={id}&AutoRenew=true&PeriodUnit=Week"),
            400,
            "InvalidPeriodUnit.ValueNotSupported",
        ),
        (
            ECS,
            "ModifyInstanceAutoRenewAttribute",
            format!("InstanceId={id}&AutoRenew=true&Duration=x"),
            400,
            "InvalidDuration",
        ),
        (ECS, "RenewInstance", format!("InstanceId={id}&Period=x"), 400, "InvalidPeriod"),
        (
            ECS,
            "RenewInstance",
            format!("InstanceId={id}&Period=1&PeriodUnit=Day"),
            400,
            "InvalidPeriodUnit.ValueNotSupported",
        ),
        // Cloud Assistant, deployment sets.
        (ECS, "DescribeInvocations", "InvokeStatus=Exploded".into(), 400, "InvalidParameter"),
        (ECS, "DescribeInvocationResults", "InvokeRecordStatus=Exploded".into(), 400, "InvalidParameter"),
        (ECS, "CreateDeploymentSet", "Description=x".into(), 400, "InvalidParameter"),
        (ECS, "CreateDeploymentSet", format!("Description={}", pct("https://x.example")), 400, "InvalidParameter"),
        // Billing.
        (BSS, "QueryBill", "BillingCycle=2026-01&PageNum=9223372036854775807".into(), 400, "InvalidParameter"),
        (BSS, "QueryInstanceBill", "BillingCycle=2026-01&PageNum=0".into(), 400, "InvalidParameter"),
    ];
    v.retain(|c| !c.2.is_empty());
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_parameters_are_refused_and_change_nothing() {
    let r: Region1 = region();
    let id = r.instance();
    let before = r.footprint();
    let mut wrong = Vec::new();
    for (version, action, query, status, code) in cases(&id) {
        let shown = if query.len() > 120 { format!("{}…", &query[..120]) } else { query.clone() };
        match r.call_version(version, action, &query) {
            Ok(v) => {
                wrong.push(format!("{action} {shown}: accepted: {}", &v.to_string()[..v.to_string().len().min(200)]))
            }
            Err(e) if (e.status, e.code.as_str()) != (status, code) => {
                wrong.push(format!("{action} {shown}: {} {} ({}), not {status} {code}", e.status, e.code, e.message))
            }
            Err(_) => {}
        }
        assert_eq!(r.footprint(), before, "{action} {shown} changed something");
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_calls_made_well_are_accepted() {
    let r = region();
    let ok = |action: &str, q: &str| {
        r.call(action, q).unwrap_or_else(|e| panic!("{action} {q}: {} {}", e.code, e.message));
    };
    ok("RunInstances", &format!("{RUN}&Tag.1.Key=env&Tag.1.Value=&Tag.2.Key=team&Tag.2.Value=a&InstanceName=web-1&HostName=web-1.local&Description=ok"));
    ok("RunInstances", &format!("{RUN}&Amount=2&UniqueSuffix=true&InstanceName={}", "a".repeat(125)));
    ok(
        "RunInstances",
        &format!("{RUN}&SpotStrategy=SpotWithPriceLimit&SpotPriceLimit=5&SpotDuration=0&SpotInterruptionBehavior=Stop"),
    );
    ok(
        "RunInstances",
        &format!("{RUN}&InstanceChargeType=PrePaid&Period=1&PeriodUnit=Month&AutoRenew=true&AutoRenewPeriod=12"),
    );
    ok("DescribeInstances", &format!("Tag.1.Key={}&Status=Running", pct("acs:anything")));
    ok("DescribeImages", "OSType=Linux&Architecture=x86_64&ImageOwnerAlias=system&Status=Available,Deprecated");
    ok("DescribeInstanceTypes", "InstanceFamilyLevel=EnterpriseLevel&MinimumMemorySize=0.5");
    ok("DescribePrice", "InstanceType=ecs.g7.large&PriceUnit=Month&Period=12&SystemDisk.Size=2048");
    ok("DescribeSpotPriceHistory", "InstanceType=ecs.g7.large&NetworkType=vpc&Offset=0");
    ok("DescribeInvocations", "InvokeStatus=Finished");
    assert_eq!(r.footprint().instances_len(), 5);
}
