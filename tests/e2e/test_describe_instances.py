"""DescribeInstances paging (PageNumber/PageSize, NextToken/MaxResults) and filters."""

import json

import pytest

import feiyun_e2e as fe

FLEET = 12


@pytest.fixture(scope="module")
def fleet(server):
    """12 nano instances tagged fleet=<uuid>: 10 Running, 2 Stopped; plus one Stopped ecs.t5-lc1m1.small
    created with CreateInstance, also tagged role=odd."""
    raw = server.raw()
    tag = fe.unique("fleet")
    ids = fe.run_instances(raw, amount=FLEET, tags={"fleet": tag})
    extra = None
    try:
        fe.wait_status(raw, ids, "Running", timeout=120)
        stopped = ids[:2]
        raw.call("StopInstances", {"RegionId": fe.REGION, "InstanceId": stopped})
        extra = raw.call("CreateInstance", {"RegionId": fe.REGION, "ImageId": "feiyun_busybox_x64",
                                            "InstanceType": "ecs.t5-lc1m1.small",
                                            "Tag": [{"Key": "fleet", "Value": tag},
                                                    {"Key": "role", "Value": "odd"}]})["InstanceId"]
        fe.wait_status(raw, stopped + [extra], "Stopped")
        yield {"tag": tag, "ids": ids, "running": ids[2:], "stopped": stopped, "extra": extra,
               "all": ids + [extra]}
    finally:
        fe.force_delete(raw, ids + ([extra] if extra else []))
        fe.wait_gone(raw, ids + ([extra] if extra else []), timeout=120)


def q(client, fleet, **extra):
    params = {"RegionId": fe.REGION, "Tag": [{"Key": "fleet", "Value": fleet["tag"]}], **extra}
    return client.call("DescribeInstances", params)


def test_default_page_size(tea, fleet):
    res = q(tea, fleet)
    assert res["TotalCount"] == FLEET + 1
    assert res["PageNumber"] == 1 and res["PageSize"] == 10
    assert len(res["Instances"]["Instance"]) == 10


def test_page_number_page_size(tea, fleet):
    seen = []
    for page, want in ((1, 5), (2, 5), (3, 3), (4, 0)):
        res = q(tea, fleet, PageNumber=page, PageSize=5)
        assert res["TotalCount"] == FLEET + 1 and isinstance(res["TotalCount"], int)
        assert res["PageNumber"] == page and res["PageSize"] == 5
        got = [i["InstanceId"] for i in res["Instances"]["Instance"]]
        assert len(got) == want, (page, got)
        seen += got
    assert len(seen) == len(set(seen)), "an instance appeared on two pages"
    assert sorted(seen) == sorted(fleet["all"])


def test_page_order_is_stable(tea, fleet):
    a = [i["InstanceId"] for i in q(tea, fleet, PageSize=100)["Instances"]["Instance"]]
    b = [i["InstanceId"] for i in q(tea, fleet, PageSize=100)["Instances"]["Instance"]]
    assert a == b


def test_next_token_max_results(tea_v2, fleet):
    res = q(tea_v2, fleet, MaxResults=10)
    first = [i["InstanceId"] for i in res["Instances"]["Instance"]]
    assert len(first) == 10
    token = res["NextToken"]
    assert isinstance(token, str) and token, res
    res2 = q(tea_v2, fleet, MaxResults=10, NextToken=token)
    second = [i["InstanceId"] for i in res2["Instances"]["Instance"]]
    assert len(second) == FLEET + 1 - 10
    assert res2["NextToken"] == "", res2.get("NextToken")
    assert sorted(first + second) == sorted(fleet["all"])


def test_max_results_below_10_means_10(tea, fleet):
    """SDK doc: 'If you do not set this parameter or set it to a value less than 10, the default value is 10.'"""
    res = q(tea, fleet, MaxResults=3)
    assert len(res["Instances"]["Instance"]) == 10
    assert res["NextToken"]


def test_next_token_ignores_page_number(tea, fleet):
    res = q(tea, fleet, MaxResults=10)
    res2 = q(tea, fleet, MaxResults=10, NextToken=res["NextToken"], PageNumber=1, PageSize=5)
    assert len(res2["Instances"]["Instance"]) == FLEET + 1 - 10


def test_invalid_next_token(tea, fleet):
    fe.expect_error(q, tea, fleet, MaxResults=10, NextToken="garbage-token", status=400,
                    code_prefix=("InvalidParameter", "InvalidNextToken"))


def test_filter_status(tea, fleet):
    res = q(tea, fleet, Status="Stopped", PageSize=100)
    assert sorted(i["InstanceId"] for i in res["Instances"]["Instance"]) == sorted(fleet["stopped"] + [fleet["extra"]])
    assert all(i["Status"] == "Stopped" for i in res["Instances"]["Instance"])
    assert res["TotalCount"] == 3
    res = q(tea, fleet, Status="Running", PageSize=100)
    assert sorted(i["InstanceId"] for i in res["Instances"]["Instance"]) == sorted(fleet["running"])


def test_filter_instance_ids(tea, core, fleet):
    want = fleet["ids"][3:6]
    for client in (tea, core):
        res = client.call("DescribeInstances", {"RegionId": fe.REGION, "InstanceIds": json.dumps(want)})
        assert sorted(i["InstanceId"] for i in res["Instances"]["Instance"]) == sorted(want)
        assert res["TotalCount"] == 3
    # Compact JSON (no spaces) as other SDKs send it, mixed with an unknown id.
    res = tea.call("DescribeInstances", {"RegionId": fe.REGION,
                                         "InstanceIds": json.dumps([want[0], "i-unknown000"], separators=(",", ":"))})
    assert [i["InstanceId"] for i in res["Instances"]["Instance"]] == [want[0]]
    # [] is a valid filter that matches nothing.
    res = tea.call("DescribeInstances", {"RegionId": fe.REGION, "InstanceIds": "[]"})
    assert res["Instances"]["Instance"] == [] and res["TotalCount"] == 0


def test_filter_instance_ids_combined_with_status(tea, fleet):
    want = fleet["ids"][:4]  # two stopped, two running
    res = tea.call("DescribeInstances", {"RegionId": fe.REGION, "InstanceIds": json.dumps(want), "Status": "Running"})
    assert sorted(i["InstanceId"] for i in res["Instances"]["Instance"]) == sorted(fleet["ids"][2:4])


def test_filter_tags(tea, fleet):
    # Two tags: AND.
    res = tea.call("DescribeInstances", {"RegionId": fe.REGION, "Tag": [{"Key": "fleet", "Value": fleet["tag"]},
                                                                         {"Key": "role", "Value": "odd"}]})
    assert [i["InstanceId"] for i in res["Instances"]["Instance"]] == [fleet["extra"]]
    tags = {t["TagKey"]: t["TagValue"] for t in res["Instances"]["Instance"][0]["Tags"]["Tag"]}
    assert tags == {"fleet": fleet["tag"], "role": "odd"}
    # Wrong value: nothing.
    res = tea.call("DescribeInstances", {"RegionId": fe.REGION, "Tag": [{"Key": "fleet", "Value": fleet["tag"] + "x"}]})
    assert res["Instances"]["Instance"] == [] and res["TotalCount"] == 0
    # Key only: any value.
    res = tea.call("DescribeInstances", {"RegionId": fe.REGION, "Tag": [{"Key": "role"}], "PageSize": 100})
    assert fleet["extra"] in [i["InstanceId"] for i in res["Instances"]["Instance"]]


def test_filter_instance_type(tea, fleet):
    res = q(tea, fleet, InstanceType="ecs.t5-lc1m1.small")
    insts = res["Instances"]["Instance"]
    assert [i["InstanceId"] for i in insts] == [fleet["extra"]]
    assert insts[0]["Cpu"] == 1 and insts[0]["Memory"] == 1024
    res = q(tea, fleet, InstanceType=fe.SMALL_TYPE, PageSize=100)
    assert sorted(i["InstanceId"] for i in res["Instances"]["Instance"]) == sorted(fleet["ids"])


def test_filter_zone_and_image(tea, fleet):
    assert q(tea, fleet, ZoneId=fe.ZONE)["TotalCount"] == FLEET + 1
    assert q(tea, fleet, ImageId="feiyun_busybox_x64")["TotalCount"] == FLEET + 1
    assert q(tea, fleet, ImageId="other_image")["TotalCount"] == 0


def test_describe_instance_status_paging(tea, fleet):
    ids = fleet["ids"]
    res = tea.call("DescribeInstanceStatus", {"RegionId": fe.REGION, "InstanceId": ids, "PageSize": 5,
                                              "PageNumber": 3})
    assert res["TotalCount"] == FLEET and res["PageNumber"] == 3 and res["PageSize"] == 5
    assert len(res["InstanceStatuses"]["InstanceStatus"]) == 2
    res = tea.call("DescribeInstanceStatus", {"RegionId": fe.REGION, "InstanceId": ids, "PageSize": 50})
    got = {s["InstanceId"]: s["Status"] for s in res["InstanceStatuses"]["InstanceStatus"]}
    assert got == {i: ("Stopped" if i in fleet["stopped"] else "Running") for i in ids}
