"""Catalogue actions: regions, zones, instance types and families, images, available resources.
Checked through the typed tea SDK (V3), the tea SDK in V2 mode and aliyun-python-sdk-core."""

import re

import pytest

import feiyun_e2e as fe

REQUEST_ID = re.compile(r"^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$")


def assert_request_id(res: dict):
    assert isinstance(res.get("RequestId"), str) and REQUEST_ID.match(res["RequestId"]), res.get("RequestId")


def test_describe_regions_typed_v3(tea):
    from alibabacloud_ecs20140526 import models as m

    body = tea.typed("describe_regions", m.DescribeRegionsRequest())
    regions = body.regions.region
    assert [r.region_id for r in regions] == [fe.REGION]
    r = regions[0]
    assert r.local_name and isinstance(r.local_name, str)
    assert isinstance(r.region_endpoint, str) and r.region_endpoint
    assert r.status == "available"
    assert_request_id(body.to_map())


@pytest.mark.parametrize("client_name", ["tea", "tea_v2", "core"])
def test_describe_regions_all_clients(client_name, request):
    client = request.getfixturevalue(client_name)
    res = client.call("DescribeRegions", {})
    assert_request_id(res)
    assert isinstance(res["Regions"]["Region"], list)
    assert {r["RegionId"] for r in res["Regions"]["Region"]} == {fe.REGION}
    assert "Code" not in res, "success responses must not carry a top-level Code (pop-core would throw)"


def test_describe_regions_get_with_core(core):
    res = core.call("DescribeRegions", {}, method="GET")
    assert res["Regions"]["Region"][0]["RegionId"] == fe.REGION


@pytest.mark.parametrize("client_name", ["tea", "core"])
def test_describe_zones(client_name, request):
    client = request.getfixturevalue(client_name)
    res = client.call("DescribeZones", {"RegionId": fe.REGION})
    assert_request_id(res)
    zones = res["Zones"]["Zone"]
    assert [z["ZoneId"] for z in zones] == [fe.ZONE]
    z = zones[0]
    assert isinstance(z["LocalName"], str) and z["LocalName"]
    assert "Instance" in z["AvailableResourceCreation"]["ResourceTypes"]
    types = z["AvailableInstanceTypes"]["InstanceTypes"]
    assert isinstance(types, list) and fe.SMALL_TYPE in types
    assert isinstance(z["AvailableDiskCategories"]["DiskCategories"], list)
    infos = z["AvailableResources"]["ResourcesInfo"]
    assert isinstance(infos, list) and infos
    assert fe.SMALL_TYPE in infos[0]["InstanceTypes"]["supportedInstanceType"]


def test_describe_zones_typed(tea):
    from alibabacloud_ecs20140526 import models as m

    body = tea.typed("describe_zones", m.DescribeZonesRequest(region_id=fe.REGION))
    assert body.zones.zone[0].zone_id == fe.ZONE
    assert fe.SMALL_TYPE in body.zones.zone[0].available_instance_types.instance_types


def test_describe_instance_types_shapes(tea):
    res = tea.call("DescribeInstanceTypes", {})
    assert_request_id(res)
    types = {t["InstanceTypeId"]: t for t in res["InstanceTypes"]["InstanceType"]}
    assert len(types) >= 20, f"only {len(types)} instance types listed"
    nano = types[fe.SMALL_TYPE]
    assert nano["CpuCoreCount"] == 1 and isinstance(nano["CpuCoreCount"], int)
    assert nano["MemorySize"] == 0.5 and isinstance(nano["MemorySize"], float)
    assert nano["InstanceTypeFamily"] == "ecs.t5"
    g7 = types["ecs.g7.large"]
    assert g7["CpuCoreCount"] == 2
    # Must be a JSON float (8.0), not an int: typed SDKs (Go/Java) declare MemorySize as float.
    assert isinstance(g7["MemorySize"], float) and g7["MemorySize"] == 8.0
    assert g7["InstanceTypeFamily"] == "ecs.g7"
    assert isinstance(g7["GPUAmount"], int) and g7["GPUAmount"] == 0
    gpu = types[fe.GPU_TYPE]
    assert gpu["GPUAmount"] == 1 and gpu["CpuCoreCount"] == 12
    assert isinstance(gpu["GPUSpec"], str) and "A100" in gpu["GPUSpec"]
    huge = types[fe.HUGE_TYPE]
    assert huge["CpuCoreCount"] == 128 and huge["MemorySize"] == 512.0
    assert "NextToken" in res and isinstance(res["NextToken"], str)


def test_describe_instance_types_filters(tea, tea_v2):
    res = tea.call("DescribeInstanceTypes", {"InstanceTypes": ["ecs.g7.large", fe.SMALL_TYPE]})
    assert sorted(t["InstanceTypeId"] for t in res["InstanceTypes"]["InstanceType"]) == sorted(
        ["ecs.g7.large", fe.SMALL_TYPE])
    res = tea_v2.call("DescribeInstanceTypes", {"InstanceTypeFamily": "ecs.g7"})
    ids = [t["InstanceTypeId"] for t in res["InstanceTypes"]["InstanceType"]]
    assert ids and all(i.startswith("ecs.g7.") for i in ids), ids
    assert "ecs.g7.large" in ids and fe.HUGE_TYPE in ids


def test_describe_instance_types_typed(tea):
    from alibabacloud_ecs20140526 import models as m

    body = tea.typed("describe_instance_types", m.DescribeInstanceTypesRequest(instance_types=["ecs.g7.large"]))
    t = body.instance_types.instance_type
    assert len(t) == 1 and t[0].instance_type_id == "ecs.g7.large"
    assert t[0].cpu_core_count == 2 and t[0].memory_size == 8.0


def test_describe_instance_type_families(tea, core):
    res = tea.call("DescribeInstanceTypeFamilies", {"RegionId": fe.REGION})
    assert_request_id(res)
    fams = res["InstanceTypeFamilies"]["InstanceTypeFamily"]
    by_id = {f["InstanceTypeFamilyId"]: f for f in fams}
    for fam in ("ecs.g7", "ecs.c7", "ecs.r7", "ecs.t5", "ecs.gn7"):
        assert fam in by_id, f"{fam} missing from {sorted(by_id)}"
    for f in fams:
        assert re.match(r"^ecs-\d+$", f["Generation"]), f
    gen = by_id["ecs.g7"]["Generation"]
    res = core.call("DescribeInstanceTypeFamilies", {"RegionId": fe.REGION, "Generation": gen})
    fams2 = res["InstanceTypeFamilies"]["InstanceTypeFamily"]
    assert fams2 and all(f["Generation"] == gen for f in fams2)
    assert "ecs.g7" in {f["InstanceTypeFamilyId"] for f in fams2}


def test_describe_instance_type_families_requires_region(tea):
    e = fe.expect_error(tea.call, "DescribeInstanceTypeFamilies", {}, status=400, code="MissingParameter")
    assert "RegionId" in e.message


def test_describe_images(tea, image_id):
    res = tea.call("DescribeImages", {"RegionId": fe.REGION})
    assert_request_id(res)
    assert isinstance(res["TotalCount"], int) and res["TotalCount"] >= 1
    assert res["PageNumber"] == 1 and isinstance(res["PageSize"], int)
    assert res["RegionId"] == fe.REGION
    images = {i["ImageId"]: i for i in res["Images"]["Image"]}
    assert "feiyun_busybox_x64" in images
    img = images["feiyun_busybox_x64"]
    assert img["OSType"] == "linux"
    assert img["Architecture"] == "x86_64"
    assert img["Status"] == "Available"
    assert img["ImageOwnerAlias"] == "system"
    assert isinstance(img["Size"], int)
    assert isinstance(img["ImageName"], str) and img["ImageName"]
    assert image_id == "feiyun_busybox_x64"


def test_describe_images_by_id(tea_v2):
    res = tea_v2.call("DescribeImages", {"RegionId": fe.REGION, "ImageId": "feiyun_busybox_x64"})
    assert [i["ImageId"] for i in res["Images"]["Image"]] == ["feiyun_busybox_x64"]
    res = tea_v2.call("DescribeImages", {"RegionId": fe.REGION, "ImageId": "no_such_image"})
    assert res["Images"]["Image"] == [] and res["TotalCount"] == 0


def _supported(res):
    zones = res["AvailableZones"]["AvailableZone"]
    assert [z["ZoneId"] for z in zones] == [fe.ZONE]
    z = zones[0]
    assert z["RegionId"] == fe.REGION
    out = {}
    for ar in z["AvailableResources"]["AvailableResource"]:
        for s in ar["SupportedResources"]["SupportedResource"]:
            out[(ar["Type"], s["Value"])] = s
    return out


def test_describe_available_resource_instance_type(tea):
    res = tea.call("DescribeAvailableResource", {"RegionId": fe.REGION, "DestinationResource": "InstanceType",
                                                 "ZoneId": fe.ZONE})
    assert_request_id(res)
    sup = _supported(res)
    nano = sup[("InstanceType", fe.SMALL_TYPE)]
    assert nano["Status"] == "Available"
    assert nano["StatusCategory"] == "WithStock"
    # A type the host can never place is either not offered or offered as sold out.
    for t in (fe.GPU_TYPE, fe.HUGE_TYPE):
        if ("InstanceType", t) in sup:
            assert sup[("InstanceType", t)]["Status"] == "SoldOut", sup[("InstanceType", t)]
            assert sup[("InstanceType", t)]["StatusCategory"] in ("WithoutStock", "ClosedWithoutStock")


def test_describe_available_resource_zone(tea):
    res = tea.call("DescribeAvailableResource", {"RegionId": fe.REGION, "DestinationResource": "Zone"})
    sup = _supported(res)
    assert ("Zone", fe.ZONE) in sup
    assert sup[("Zone", fe.ZONE)]["Status"] == "Available"


def test_describe_available_resource_requires_destination(tea):
    e = fe.expect_error(tea.call, "DescribeAvailableResource", {"RegionId": fe.REGION}, status=400,
                        code="MissingParameter")
    assert "DestinationResource" in e.message
