"""Hostile input through the official SDKs: malformed, out-of-range and contradictory parameters
are refused with the code ECS (or BSS) documents for them, or the generic InvalidParameter where
none is documented, and a refused call changes nothing: no instance, no deployment set, no
command, no charge.

The calls run as an account of their own with money on it and no instance, so that nothing else
(another test's instances, an hourly settlement) can move what is compared."""

import json

import pytest

import feiyun_e2e as fe

IMAGE = "feiyun_busybox_x64"
RUN = {"RegionId": fe.REGION, "ImageId": IMAGE, "InstanceType": fe.SMALL_TYPE}
PREPAID = {**RUN, "InstanceChargeType": "PrePaid"}
PRICE = {"RegionId": fe.REGION, "InstanceType": fe.SMALL_TYPE}
SPOT_HISTORY = {"RegionId": fe.REGION, "InstanceType": fe.SMALL_TYPE, "NetworkType": "vpc"}
LONG = "a" * 129

# (action, params, HTTP status, code)
ECS_CASES = [
    # Tags: an empty key used to create an instance.
    ("RunInstances", {**RUN, "Tag": [{"Key": ""}]}, 400, "InvalidTagKey.Malformed"),
    ("RunInstances", {**RUN, "Tag": [{"Key": "", "Value": "v"}]}, 400, "InvalidTagKey.Malformed"),
    ("RunInstances", {**RUN, "Tag": [{"Key": "   ", "Value": "v"}]}, 400, "InvalidTagKey.Malformed"),
    ("RunInstances", {**RUN, "Tag": [{"Key": "aliyun-owned"}]}, 400, "InvalidTagKey.Malformed"),
    ("RunInstances", {**RUN, "Tag": [{"Key": "acs:ecs"}]}, 400, "InvalidTagKey.Malformed"),
    ("RunInstances", {**RUN, "Tag": [{"Key": "see https://x.example"}]}, 400, "InvalidTagKey.Malformed"),
    ("RunInstances", {**RUN, "Tag": [{"Key": LONG}]}, 400, "InvalidTagKey.Malformed"),
    ("RunInstances", {**RUN, "Tag": [{"Key": "k", "Value": "http://x.example"}]}, 400, "InvalidTagValue.Malformed"),
    ("RunInstances", {**RUN, "Tag": [{"Key": "k", "Value": LONG}]}, 400, "InvalidTagValue.Malformed"),
    ("RunInstances", {**RUN, "Tag.1.Value": "orphan"}, 400, "InvalidTag.Mismatch"),
    ("RunInstances", {**RUN, "Tag": [{"Key": "k", "Value": "1"}, {"Key": "k", "Value": "2"}]}, 400, "Duplicate.TagKey"),
    ("RunInstances", {**RUN, "Tag": [{"Key": f"k{i}"} for i in range(21)]}, 400, "InvalidTagCount"),
    ("RunInstances", {**RUN, "Tag.01.Key": "k"}, 400, "InvalidParameter"),
    ("CreateInstance", {**RUN, "Tag": [{"Key": ""}]}, 400, "InvalidTagKey.Malformed"),
    ("DescribeInstances", {"RegionId": fe.REGION, "Tag.1.Value": "orphan"}, 400, "InvalidTag.Mismatch"),
    ("DescribeInstances", {"RegionId": fe.REGION, "Tag": [{"Key": f"k{i}"} for i in range(21)]}, 400,
     "InvalidTagCount"),
    # Names, descriptions, client tokens.
    ("RunInstances", {**RUN, "InstanceName": "a"}, 400, "InvalidInstanceName.Malformed"),
    ("RunInstances", {**RUN, "InstanceName": "1web"}, 400, "InvalidInstanceName.Malformed"),
    ("RunInstances", {**RUN, "InstanceName": "web server"}, 400, "InvalidInstanceName.Malformed"),
    ("RunInstances", {**RUN, "InstanceName": LONG}, 400, "InvalidInstanceName.Malformed"),
    ("RunInstances", {**RUN, "HostName": "-web"}, 400, "InvalidHostName.Malformed"),
    ("RunInstances", {**RUN, "HostName": "we..b"}, 400, "InvalidHostName.Malformed"),
    ("RunInstances", {**RUN, "HostName": "web_1"}, 400, "InvalidHostName.Malformed"),
    ("RunInstances", {**RUN, "HostName": "h" * 65}, 400, "InvalidHostName.Malformed"),
    ("RunInstances", {**RUN, "Description": "x"}, 400, "InvalidDescription.Malformed"),
    ("RunInstances", {**RUN, "Description": "https://x.example"}, 400, "InvalidDescription.Malformed"),
    ("RunInstances", {**RUN, "Description": "d" * 257}, 400, "InvalidDescription.Malformed"),
    ("RunInstances", {**RUN, "Amount": 2, "UniqueSuffix": True, "InstanceName": "n" * 126}, 403,
     "InvalidParams.InstanceNameExceed"),
    ("RunInstances", {**RUN, "Amount": 2, "UniqueSuffix": True, "HostName": "h" * 62}, 403,
     "InvalidParams.HostnameExceed"),
    ("RunInstances", {**RUN, "ClientToken": "t" * 65}, 400, "InvalidClientToken.ValueNotSupported"),
    ("RunInstances", {**RUN, "ClientToken": "令牌"}, 400, "InvalidClientToken.ValueNotSupported"),
    # Counts.
    ("RunInstances", {**RUN, "MinAmount": 0}, 400, "InvalidMinAmount.Malformed"),
    ("RunInstances", {**RUN, "MinAmount": "x"}, 400, "InvalidMinAmount.Malformed"),
    ("RunInstances", {**RUN, "Amount": 2, "MinAmount": 3}, 400, "InvalidMinAmount.Malformed"),
    # Paying.
    ("RunInstances", {**RUN, "InstanceChargeType": "Free"}, 404, "InvalidInstanceChargeType.NotFound"),
    ("RunInstances", {**PREPAID, "Period": "abc"}, 400, "InvalidPeriod"),
    ("RunInstances", {**PREPAID, "Period": 61}, 400, "InvalidPeriod"),
    ("RunInstances", {**PREPAID, "Period": 6, "PeriodUnit": "Year"}, 400, "InvalidPeriod"),
    ("RunInstances", {**PREPAID, "Period": 1, "PeriodUnit": "Day"}, 400, "InvalidPeriodUnit.ValueNotSupported"),
    ("RunInstances", {**PREPAID, "Period": 1, "AutoRenew": True, "AutoRenewPeriod": 5}, 400,
     "InvalidAutoRenewPeriod.ValueNotSupported"),
    ("RunInstances", {**PREPAID, "Period": 1, "AutoRenew": True, "AutoRenewPeriod": "x"}, 400,
     "InvalidAutoRenewPeriod.ValueNotSupported"),
    ("CreateInstance", {**PREPAID, "Period": "abc"}, 400, "InvalidPeriod"),
    ("RunInstances", {**RUN, "SpotStrategy": "Cheap"}, 400, "InvalidSpotStrategy"),
    ("RunInstances", {**RUN, "SpotStrategy": "SpotWithPriceLimit", "SpotPriceLimit": "abc"}, 400,
     "InvalidSpotPriceLimit"),
    ("RunInstances", {**RUN, "SpotStrategy": "SpotWithPriceLimit", "SpotPriceLimit": "-1"}, 400,
     "InvalidSpotPriceLimit"),
    ("RunInstances", {**RUN, "SpotStrategy": "SpotWithPriceLimit", "SpotPriceLimit": "0"}, 400,
     "InvalidSpotPriceLimit"),
    ("RunInstances", {**RUN, "SpotStrategy": "SpotAsPriceGo", "SpotDuration": 2}, 400, "InvalidSpotDuration"),
    ("RunInstances", {**RUN, "SpotStrategy": "SpotAsPriceGo", "SpotInterruptionBehavior": "Explode"}, 400,
     "InvalidSpotInterruptionBehavior"),
    # Data and places.
    ("RunInstances", {**RUN, "UserData": fe.b64(b"x" * (32 * 1024 + 1))}, 400, "InvalidUserData.SizeExceeded"),
    ("RunInstances", {**RUN, "ZoneId": "cn-hangzhou-b"}, 404, "InvalidZoneId.NotFound"),
    ("RunInstances", {**RUN, "RegionId": "cn-hangzhou"}, 404, "InvalidRegionId.NotFound"),
    # Listing and paging.
    ("DescribeInstances", {"RegionId": fe.REGION, "Status": "Deleted"}, 404, "InvalidStatus.NotFound"),
    ("DescribeInstances", {"RegionId": fe.REGION, "Status": "Sleeping"}, 404, "InvalidStatus.NotFound"),
    ("DescribeInstances", {"RegionId": fe.REGION, "InstanceIds": '["i-1", 2]'}, 400, "InvalidParameter"),
    ("DescribeInstances", {"RegionId": fe.REGION, "InstanceIds": json.dumps([f"i-{n}" for n in range(101)])}, 400,
     "InvalidParameter"),
    ("DescribeInstances", {"RegionId": fe.REGION, "PageSize": 0}, 400, "InvalidParameter"),
    ("DescribeInstances", {"RegionId": fe.REGION, "PageSize": -1}, 400, "InvalidParameter"),
    ("DescribeInstances", {"RegionId": fe.REGION, "PageNumber": 0}, 400, "InvalidParameter"),
    ("DescribeInstances", {"RegionId": fe.REGION, "PageNumber": "two"}, 400, "InvalidParameter"),
    # An offset at the end of the address space: refused, not an overflow.
    ("DescribeInstances", {"RegionId": fe.REGION, "NextToken": f"{(2**64 - 1) ^ (0x5f3759df << 96):032x}"}, 400,
     "InvalidParameter"),
    ("DescribeInstanceStatus", {"RegionId": fe.REGION, "InstanceId.0": "i-1"}, 400, "InvalidParameter"),
    ("DescribeImages", {"RegionId": fe.REGION, "OSType": "beos"}, 404, "InvalidOSType"),
    ("DescribeImages", {"RegionId": fe.REGION, "Architecture": "mips"}, 404, "InvalidArchitecture"),
    ("DescribeImages", {"RegionId": fe.REGION, "ImageOwnerAlias": "me"}, 400,
     "InvalidImageOwnerAlias.ValueNotSupported"),
    ("DescribeImages", {"RegionId": fe.REGION, "Status": "Broken"}, 400, "InvalidParameter"),
    ("DescribeInstanceTypes", {"InstanceFamilyLevel": "Top"}, 400, "InvalidParameter"),
    ("DescribeInstanceTypes", {"MinimumMemorySize": -1}, 400, "InvalidParameter"),
    ("DescribeInstanceTypes", {"MaximumMemorySize": "NaN"}, 400, "InvalidParameter"),
    ("DescribeAvailableResource", {"RegionId": fe.REGION, "DestinationResource": "Moon"}, 404,
     "Invalid.DestinationResource"),
    ("DescribeAvailableResource", {"RegionId": fe.REGION, "DestinationResource": "InstanceType", "Cores": 0}, 400,
     "InvalidParameter"),
    # Prices.
    ("DescribePrice", {**PRICE, "ResourceType": "moon"}, 400, "InvalidResourceType.ValueNotSupported"),
    ("DescribePrice", {**PRICE, "PriceUnit": "Day"}, 400, "InvalidPriceUnit.ValueNotSupported"),
    ("DescribePrice", {**PRICE, "Amount": 0}, 403, "InvalidAmount.Malformed"),
    ("DescribePrice", {**PRICE, "SystemDisk.Size": 5000}, 400, "InvalidSystemDiskSize.ValueNotSupported"),
    ("DescribePrice", {**PRICE, "InternetMaxBandwidthOut": 101}, 400,
     "InvalidInternetMaxBandwidthOut.ValueNotSupported"),
    ("DescribePrice", {**PRICE, "InternetChargeType": "Free"}, 400, "InvalidInternetChargeType.ValueNotSupported"),
    ("DescribePrice", {**PRICE, "PriceUnit": "Month", "Period": "x"}, 400, "InvalidPeriod"),
    ("DescribePrice", {**PRICE, "SpotStrategy": "x"}, 400, "InvalidSpotStrategy"),
    ("DescribeSpotPriceHistory", {**SPOT_HISTORY, "NetworkType": "ipx"}, 400, "InvalidParams.NetworkType"),
    ("DescribeSpotPriceHistory", {**SPOT_HISTORY, "StartTime": "yesterday"}, 400, "InvalidParams.StartTime"),
    ("DescribeSpotPriceHistory", {**SPOT_HISTORY, "Offset": -1}, 400, "InvalidParams.Offset"),
    # Lists of instances to act on: out of bounds, or naming one twice. The refusal comes before
    # any instance is looked at.
    ("StartInstances", {"RegionId": fe.REGION, "InstanceId.101": "i-1"}, 400, "InvalidParameter"),
    ("DeleteInstances", {"RegionId": fe.REGION, "InstanceId.01": "i-1", "Force": True}, 400, "InvalidParameter"),
    ("ModifyInstanceChargeType", {"RegionId": fe.REGION, "InstanceIds": "i-1"}, 400, "InvalidParameter"),
    ("ModifyInstanceChargeType", {"RegionId": fe.REGION, "InstanceIds": '["i-1"]', "InstanceChargeType": "Free"},
     404, "InvalidInstanceChargeType.NotFound"),
    ("ModifyInstanceAutoRenewAttribute", {"RegionId": fe.REGION, "InstanceId": "i-1", "AutoRenew": True,
                                          "PeriodUnit": "Week"}, 400, "InvalidPeriodUnit.ValueNotSupported"),
    ("ModifyInstanceAutoRenewAttribute", {"RegionId": fe.REGION, "InstanceId": "i-1", "AutoRenew": True,
                                          "Duration": "x"}, 400, "InvalidDuration"),
    ("RenewInstance", {"InstanceId": "i-1", "Period": "x"}, 400, "InvalidPeriod"),
    # Cloud Assistant and deployment sets.
    ("DescribeInvocations", {"RegionId": fe.REGION, "InvokeStatus": "Exploded"}, 400, "InvalidParameter"),
    ("DescribeInvocationResults", {"RegionId": fe.REGION, "InvokeRecordStatus": "Exploded"}, 400,
     "InvalidParameter"),
    ("CreateDeploymentSet", {"RegionId": fe.REGION, "DeploymentSetName": "spread", "Description": "x"}, 400,
     "InvalidParameter"),
    ("CreateDeploymentSet", {"RegionId": fe.REGION, "DeploymentSetName": "spread",
                             "Description": "https://x.example"}, 400, "InvalidParameter"),
]

BSS_CASES = [
    # Used to overflow computing the page's offset.
    ("QueryBill", {"BillingCycle": "2026-01", "PageNum": 2**63 - 1}, 400, "InvalidParameter"),
    ("QueryInstanceBill", {"BillingCycle": "2026-01", "PageNum": 0}, 400, "InvalidParameter"),
]


@pytest.fixture(scope="module")
def hostile(server):
    """An account of its own, with 1,000.00 on it and nothing else."""
    acct = server.create_account(fe.unique("hostile"))
    server.accounts.append(acct)
    server.top_up(acct["AccountName"], "1000")
    return {"tea": server.tea(acct), "bss": server.bss(acct), "raw": server.raw(acct)}


def footprint(h) -> dict:
    """What a refused call must leave as it was."""
    tea, bss = h["tea"], h["bss"]
    return {
        "instances": {i["InstanceId"]: i["Status"] for i in fe.describe(tea, fe.all_instance_ids(tea))},
        "balance": bss.call("QueryAccountBalance", {})["Data"]["AvailableAmount"],
        "deployment_sets": tea.call("DescribeDeploymentSets", {"RegionId": fe.REGION})["TotalCount"],
        "commands": tea.call("DescribeCommands", {"RegionId": fe.REGION})["TotalCount"],
    }


def _id(case) -> str:
    action, params, _, code = case
    shown = ",".join(f"{k}={str(v)[:12]}" for k, v in params.items() if k not in ("RegionId", "ImageId"))
    return f"{action}-{code}-{shown}"[:90]


@pytest.mark.parametrize("case", ECS_CASES, ids=_id)
def test_hostile_ecs_parameter_is_refused_and_changes_nothing(hostile, case):
    action, params, status, code = case
    before = footprint(hostile)
    fe.expect_error(hostile["tea"].call, action, params, status=status, code=code)
    assert footprint(hostile) == before


@pytest.mark.parametrize("case", BSS_CASES, ids=_id)
def test_hostile_bss_parameter_is_refused_in_the_bss_envelope(hostile, case):
    action, params, status, code = case
    e = fe.expect_error(hostile["bss"].call, action, params, status=status, code=code)
    r = hostile["raw"].send_v2(action, params, version=fe.BSS_VERSION)
    body = r.json()
    assert (r.status_code, body["Code"], body["Success"], body["Data"]) == (status, code, False, None), body
    assert e.message


def test_hostile_empty_tag_key_through_the_typed_sdk(hostile):
    """The request model of RunInstances, as an application would build it."""
    from alibabacloud_ecs20140526 import models as ecs

    before = footprint(hostile)
    req = ecs.RunInstancesRequest(region_id=fe.REGION, image_id=IMAGE, instance_type=fe.SMALL_TYPE,
                                  tag=[ecs.RunInstancesRequestTag(key="", value="v")])
    fe.expect_error(hostile["tea"].typed, "run_instances", req, status=400, code="InvalidTagKey.Malformed")
    req = ecs.RunInstancesRequest(region_id=fe.REGION, image_id=IMAGE, instance_type=fe.SMALL_TYPE,
                                  spot_strategy="SpotWithPriceLimit", spot_price_limit=-1.0)
    fe.expect_error(hostile["tea"].typed, "run_instances", req, status=400, code="InvalidSpotPriceLimit")
    req = ecs.RunInstancesRequest(region_id=fe.REGION, image_id=IMAGE, instance_type=fe.SMALL_TYPE,
                                  instance_charge_type="PrePaid", period=7, period_unit="Year")
    fe.expect_error(hostile["tea"].typed, "run_instances", req, status=400, code="InvalidPeriod")
    assert footprint(hostile) == before


def test_hostile_repeated_ids_act_on_nothing(hostile, track):
    """An instance named twice in one call must not be released twice (its capacity would be
    returned twice) or converted twice (charged or refunded twice): the call is refused whole."""
    tea = hostile["tea"]
    iid = track.add(fe.run_instances(tea), client=tea)[0]
    fe.wait_status(tea, iid, "Running")
    twice = {"RegionId": fe.REGION, "InstanceId": [iid, iid]}
    for action, extra in (("StopInstances", {"ForceStop": True}), ("RebootInstances", {}),
                          ("DeleteInstances", {"Force": True})):
        fe.expect_error(tea.call, action, {**twice, **extra}, status=400, code="InvalidParameter")
    fe.expect_error(tea.call, "ModifyInstanceChargeType",
                    {"RegionId": fe.REGION, "InstanceIds": json.dumps([iid, iid]), "InstanceChargeType": "PrePaid",
                     "Period": 1}, status=400, code="InvalidParameter")
    fe.expect_error(tea.call, "ModifyInstanceAutoRenewAttribute",
                    {"RegionId": fe.REGION, "InstanceId": f"{iid},{iid}", "AutoRenew": True}, status=400,
                    code="InvalidParameter")
    assert fe.statuses(tea, [iid]) == {iid: "Running"}
    inst = fe.describe(tea, [iid])[0]
    assert inst["InstanceChargeType"] == "PostPaid"
    # Named once, the same calls work.
    tea.call("DeleteInstances", {"RegionId": fe.REGION, "InstanceId": [iid], "Force": True})
    fe.wait_gone(tea, [iid])


def test_hostile_well_formed_neighbours_are_accepted(hostile, track):
    """The limits are where ECS puts them: values just inside are accepted."""
    tea = hostile["tea"]
    tags = [{"Key": "env", "Value": ""}] + [{"Key": f"k{i}", "Value": "v" * 128} for i in range(19)]
    ids = track.add(fe.run_instances(tea, amount=2, UniqueSuffix=True, InstanceName="n" * 125, HostName="h" * 61,
                                     Description="d" * 256, Tag=tags, ClientToken="t" * 64), client=tea)
    got = {i["InstanceId"]: i for i in fe.describe(tea, ids)}
    assert sorted(i["InstanceName"] for i in got.values()) == ["n" * 125 + "001", "n" * 125 + "002"]
    assert len(next(iter(got.values()))["Tags"]["Tag"]) == 20
    fe.force_delete(tea, ids)
    fe.wait_gone(tea, ids)
    # Filters may name what could never be written.
    tea.call("DescribeInstances", {"RegionId": fe.REGION, "Tag": [{"Key": "acs:ecs:x"}, {"Key": "acs:ecs:x"}]})
    tea.call("DescribeImages", {"RegionId": fe.REGION, "OSType": "Linux", "Status": "Available,Deprecated"})
