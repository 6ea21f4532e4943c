"""Error responses: authentication, anti-replay, routing, parameter validation, stock, status.
CONTRACT §2.2: JSON {"RequestId","HostId","Code","Message","Recommend"} with a 4xx/5xx status."""

import json
import re
import time

import pytest
import requests

import feiyun_e2e as fe

REQUEST_ID = re.compile(r"^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$")


def check_error(r: requests.Response, status: int, code: str | None = None) -> dict:
    assert r.status_code == status, f"expected {status} {code}, got {r.status_code}: {r.text[:600]}"
    assert r.headers.get("Content-Type", "").startswith("application/json"), r.headers
    body = r.json()
    for k in ("RequestId", "HostId", "Code", "Message", "Recommend"):
        assert isinstance(body.get(k), str), f"error field {k} missing or not a string: {body}"
    assert REQUEST_ID.match(body["RequestId"]), body["RequestId"]
    assert body["Message"], body
    if code is not None:
        assert body["Code"] == code, f"expected Code {code}, got {body}"
    return body


# --- authentication -------------------------------------------------------------------------


def test_wrong_secret_v2_raw(raw):
    r = raw.send_v2("DescribeRegions", {}, secret="definitely-wrong")
    body = check_error(r, 400, "SignatureDoesNotMatch")
    # aliyun-python-sdk-core splits the message on ':' (CONTRACT §0.5): it must contain one.
    assert ":" in body["Message"], body


def test_wrong_secret_v3_raw(raw):
    check_error(raw.send_v3("DescribeRegions", {}, secret="definitely-wrong"), 400, "SignatureDoesNotMatch")


def test_wrong_secret_tea_v3(server):
    c = fe.TeaClient(server.endpoint, server.creds["AccessKeyId"], "wrong-secret")
    fe.expect_error(c.call, "DescribeRegions", {}, status=400, code="SignatureDoesNotMatch")


def test_wrong_secret_tea_v2(server):
    c = fe.TeaClient(server.endpoint, server.creds["AccessKeyId"], "wrong-secret", algorithm="v2")
    fe.expect_error(c.call, "DescribeRegions", {}, status=400, code="SignatureDoesNotMatch")


def test_wrong_secret_core_sees_exact_string_to_sign(server):
    """aliyun-python-sdk-core compares the server's string-to-sign (after the ':') with its own;
    when they are equal it reports InvalidAccessKeySecret. So this checks the server's V2
    string-to-sign is byte-identical to the SDK's."""
    from aliyunsdkecs.request.v20140526.DescribeInstancesRequest import DescribeInstancesRequest

    c = fe.CoreClient(server.endpoint, server.creds["AccessKeyId"], "wrong-secret")
    req = DescribeInstancesRequest()  # (CommonRequest does not keep string_to_sign: use a request class)
    req.set_Tags([{"Key": "k k", "Value": "v*~/"}])
    req.set_InstanceIds('["i-1", "i-2"]')
    e = fe.expect_error(c.do, req, status=400)
    assert e.code == "InvalidAccessKeySecret", (
        f"server string-to-sign differs from the SDK's (or wrong code): {e}")
    # With CommonRequest the SDK cannot compare and reports the server's code as is.
    fe.expect_error(c.call, "DescribeRegions", {}, status=400, code="SignatureDoesNotMatch")


def test_unknown_access_key(raw):
    r = raw.send_v2("DescribeRegions", {}, ak="LTAI-no-such-key-123")
    check_error(r, 404, "InvalidAccessKeyId.NotFound")
    r = raw.send_v3("DescribeRegions", {}, ak="LTAI-no-such-key-123")
    check_error(r, 404, "InvalidAccessKeyId.NotFound")


def test_unknown_access_key_tea(server):
    c = fe.TeaClient(server.endpoint, "LTAI-no-such-key-456", "whatever")
    fe.expect_error(c.call, "DescribeRegions", {}, status=404, code="InvalidAccessKeyId.NotFound")


def test_unsigned_request(server):
    r = requests.get(f"http://{server.endpoint}/?Action=DescribeRegions&Version=2014-05-26&Format=JSON", timeout=30)
    assert 400 <= r.status_code < 500, r.text
    body = r.json()
    assert isinstance(body.get("Code"), str) and body["Code"], body
    assert body["Code"] not in ("", "OK")


# --- anti-replay ------------------------------------------------------------------------------


def test_stale_timestamp_v2(raw):
    r = raw.send_v2("DescribeRegions", {}, timestamp=fe.utc_timestamp(-20 * 60))
    check_error(r, 400, "InvalidTimeStamp.Expired")


def test_future_timestamp_v2(raw):
    r = raw.send_v2("DescribeRegions", {}, timestamp=fe.utc_timestamp(+20 * 60))
    check_error(r, 400, "InvalidTimeStamp.Expired")


def test_timestamp_within_window_ok(raw):
    """Client clocks are never exact: a timestamp a little in the past or minutes in the future
    is inside the 15-minute window. (The server also rejects timestamps from before its own start,
    which the session server passed long ago when this runs with the whole suite.)"""
    r = raw.send_v2("DescribeRegions", {}, timestamp=fe.utc_timestamp(-2))
    assert r.status_code == 200, r.text
    r = raw.send_v2("DescribeRegions", {}, timestamp=fe.utc_timestamp(+5 * 60))
    assert r.status_code == 200, r.text
    r = raw.send_v3("DescribeRegions", {}, date=fe.utc_timestamp(+5 * 60))
    assert r.status_code == 200, r.text


def test_first_request_right_after_start(make_server):
    """Requests signed in the very second the server started must be accepted (SDK timestamps
    have whole seconds)."""
    srv = make_server("firstsecond", settle=0)
    r = srv.raw().send_v2("DescribeRegions", {})
    assert r.status_code == 200, r.text
    r = srv.raw().send_v3("DescribeRegions", {})
    assert r.status_code == 200, r.text


def test_stale_date_v3(raw):
    check_error(raw.send_v3("DescribeRegions", {}, date=fe.utc_timestamp(-20 * 60)), 400, "InvalidTimeStamp.Expired")


def test_replayed_nonce_v2(raw):
    signed = raw.signed_v2("DescribeRegions", {})
    r1 = raw.send_v2("DescribeRegions", signed_params=signed)
    assert r1.status_code == 200, r1.text
    r2 = raw.send_v2("DescribeRegions", signed_params=signed)
    check_error(r2, 400, "SignatureNonceUsed")


def test_replayed_nonce_v3(raw):
    nonce = fe.unique("nonce")
    r1 = raw.send_v3("DescribeRegions", {}, nonce=nonce)
    assert r1.status_code == 200, r1.text
    check_error(raw.send_v3("DescribeRegions", {}, nonce=nonce), 400, "SignatureNonceUsed")


def test_nonce_reused_with_fresh_signature_v2(raw):
    """A nonce is single-use even when the rest of the request differs."""
    nonce = fe.unique("nonce")
    assert raw.send_v2("DescribeRegions", {}, nonce=nonce).status_code == 200
    check_error(raw.send_v2("DescribeZones", {"RegionId": fe.REGION}, nonce=nonce), 400, "SignatureNonceUsed")


# --- routing ------------------------------------------------------------------------------------


def test_unknown_action(raw, tea):
    check_error(raw.send_v2("DescribeUnicorns", {"RegionId": fe.REGION}), 404, "InvalidAction.NotFound")
    fe.expect_error(tea.call, "DescribeUnicorns", {"RegionId": fe.REGION}, status=404, code="InvalidAction.NotFound")


def test_unknown_version(raw):
    check_error(raw.send_v2("DescribeRegions", {}, version="2099-01-01"), 400, "InvalidVersion")
    check_error(raw.send_v3("DescribeRegions", {}, version="2099-01-01"), 400, "InvalidVersion")


def test_unknown_route_is_json(server):
    r = requests.get(f"http://{server.endpoint}/no/such/path", timeout=30)
    assert 400 <= r.status_code < 500
    assert r.headers.get("Content-Type", "").startswith("application/json"), r.headers
    assert isinstance(r.json().get("Code"), str)


def test_get_and_form_post_are_accepted(raw):
    """GET with query, POST with query, POST with everything in a form body (pop-core style)."""
    for method, body in (("GET", False), ("POST", False), ("POST", True)):
        r = raw.send_v2("DescribeZones", {"RegionId": fe.REGION}, method=method, body=body)
        assert r.status_code == 200, (method, body, r.text)
        assert r.json()["Zones"]["Zone"][0]["ZoneId"] == fe.ZONE


# --- parameters -------------------------------------------------------------------------------


def test_missing_region(tea):
    e = fe.expect_error(tea.call, "DescribeInstances", {}, status=400, code="MissingParameter")
    assert '"RegionId"' in e.message or "RegionId" in e.message, e


def test_missing_image(tea):
    e = fe.expect_error(tea.call, "RunInstances", {"RegionId": fe.REGION, "InstanceType": fe.SMALL_TYPE},
                        status=400, code="MissingParameter")
    assert "ImageId" in e.message, e


def test_missing_instance_id(tea):
    e = fe.expect_error(tea.call, "StopInstance", {}, status=400, code="MissingParameter")
    assert "InstanceId" in e.message, e


@pytest.mark.parametrize("amount", ["abc", "0", "101", "-1", "1.5"])
def test_invalid_amount(tea, amount):
    tag = fe.unique("amt")
    e = fe.expect_error(tea.call, "RunInstances", {"RegionId": fe.REGION, "ImageId": "feiyun_busybox_x64",
                                                   "InstanceType": fe.SMALL_TYPE, "Amount": amount,
                                                   "Tag": [{"Key": "amt", "Value": tag}]},
                        status=400, code="InvalidParameter")
    assert "Amount" in e.message, e
    assert fe.describe_by_tag(tea, "amt", tag) == []


def test_invalid_userdata(tea):
    tag = fe.unique("ud")
    e = fe.expect_error(tea.call, "RunInstances", {"RegionId": fe.REGION, "ImageId": "feiyun_busybox_x64",
                                                   "InstanceType": fe.SMALL_TYPE, "UserData": "%%% not base64 %%%",
                                                   "Tag": [{"Key": "ud", "Value": tag}]},
                        status=400, code_prefix=("InvalidUserData", "InvalidParameter"))
    assert fe.describe_by_tag(tea, "ud", tag) == []


def test_invalid_boolean(tea):
    fe.expect_error(tea.call, "RunInstances", {"RegionId": fe.REGION, "ImageId": "feiyun_busybox_x64",
                                               "InstanceType": fe.SMALL_TYPE, "DryRun": "maybe"},
                    status=400, code="InvalidParameter")


def test_unknown_region(tea):
    fe.expect_error(tea.call, "DescribeInstances", {"RegionId": "cn-hangzhou"}, status=404,
                    code="InvalidRegionId.NotFound")


def test_unknown_zone(tea):
    fe.expect_error(tea.call, "RunInstances", {"RegionId": fe.REGION, "ZoneId": "cn-local-z",
                                               "ImageId": "feiyun_busybox_x64", "InstanceType": fe.SMALL_TYPE},
                    status=404, code="InvalidZoneId.NotFound")


def test_unknown_image(tea):
    fe.expect_error(tea.call, "RunInstances", {"RegionId": fe.REGION, "ImageId": "no_such_image",
                                               "InstanceType": fe.SMALL_TYPE},
                    status=404, code="InvalidImageId.NotFound")


def test_unknown_instance_type(tea):
    e = fe.expect_error(tea.call, "RunInstances", {"RegionId": fe.REGION, "ImageId": "feiyun_busybox_x64",
                                                   "InstanceType": "ecs.nope.large"},
                        status=(400, 403, 404), code_prefix="InvalidInstanceType")
    assert e.status in (400, 403)


def test_unknown_instance_ids(tea):
    for action in ("StartInstance", "StopInstance", "RebootInstance", "DeleteInstance", "DescribeInstanceAttribute"):
        fe.expect_error(tea.call, action, {"InstanceId": "i-doesnotexist0000"}, status=404,
                        code="InvalidInstanceId.NotFound")
    fe.expect_error(tea.call, "GetInstanceConsoleOutput", {"RegionId": fe.REGION, "InstanceId": "i-doesnotexist0000"},
                    status=404)


def test_describe_instances_unknown_ids_is_empty(tea):
    res = tea.call("DescribeInstances", {"RegionId": fe.REGION, "InstanceIds": json.dumps(["i-doesnotexist0000"])})
    assert res["Instances"]["Instance"] == [] and res["TotalCount"] == 0


def test_describe_instances_malformed_instance_ids(tea):
    fe.expect_error(tea.call, "DescribeInstances", {"RegionId": fe.REGION, "InstanceIds": "i-1,i-2"},
                    status=400, code_prefix=("InvalidParameter", "InvalidInstanceIds"))


# --- stock ------------------------------------------------------------------------------------


@pytest.mark.parametrize("itype", [fe.GPU_TYPE, fe.HUGE_TYPE])
def test_no_stock_run_instances(tea, itype):
    tag = fe.unique("nostock")
    e = fe.expect_error(tea.call, "RunInstances", {"RegionId": fe.REGION, "ImageId": "feiyun_busybox_x64",
                                                   "InstanceType": itype, "Tag": [{"Key": "ns", "Value": tag}]},
                        status=403, code="OperationDenied.NoStock")
    assert e.data["RequestId"]
    assert fe.describe_by_tag(tea, "ns", tag) == []


@pytest.mark.parametrize("itype", [fe.GPU_TYPE, fe.HUGE_TYPE])
def test_no_stock_create_instance(tea_v2, itype):
    fe.expect_error(tea_v2.call, "CreateInstance", {"RegionId": fe.REGION, "ImageId": "feiyun_busybox_x64",
                                                    "InstanceType": itype},
                    status=403, code="OperationDenied.NoStock")


def test_no_stock_is_all_or_nothing(tea):
    """20 x ecs.g7.large = 40 vCPU / 160 GiB: more than the host has, so nothing is created."""
    tag = fe.unique("batch")
    fe.expect_error(tea.call, "RunInstances", {"RegionId": fe.REGION, "ImageId": "feiyun_busybox_x64",
                                               "InstanceType": "ecs.g7.large", "Amount": 20,
                                               "Tag": [{"Key": "batch", "Value": tag}]},
                    status=403, code="OperationDenied.NoStock")
    assert fe.describe_by_tag(tea, "batch", tag) == []


# --- status -----------------------------------------------------------------------------------


def test_incorrect_instance_status(server, tea, track):
    iid = track.add(fe.run_instances(tea))[0]
    fe.wait_status(tea, iid, "Running")
    fe.expect_error(tea.call, "StartInstance", {"InstanceId": iid}, status=403, code="IncorrectInstanceStatus")
    fe.expect_error(tea.call, "DeleteInstance", {"InstanceId": iid}, status=403, code="IncorrectInstanceStatus")
    fe.expect_error(tea.call, "DeleteInstance", {"InstanceId": iid, "Force": False}, status=403,
                    code="IncorrectInstanceStatus")
    assert fe.statuses(tea, [iid]) == {iid: "Running"}
    st = fe.runc_state(server.data_dir, iid)
    assert st and st["status"] == "running"
    tea.call("StopInstance", {"InstanceId": iid})
    fe.wait_status(tea, iid, "Stopped")
    fe.expect_error(tea.call, "StopInstance", {"InstanceId": iid}, status=403, code="IncorrectInstanceStatus")
    fe.expect_error(tea.call, "RebootInstance", {"InstanceId": iid}, status=403, code="IncorrectInstanceStatus")
    tea.call("DeleteInstance", {"InstanceId": iid})
    fe.wait_gone(tea, iid)
    fe.expect_error(tea.call, "DeleteInstance", {"InstanceId": iid, "Force": True}, status=404,
                    code="InvalidInstanceId.NotFound")


def test_dry_run(tea, raw):
    tag = fe.unique("dry")
    params = {"RegionId": fe.REGION, "ImageId": "feiyun_busybox_x64", "InstanceType": fe.SMALL_TYPE,
              "Tag": [{"Key": "dry", "Value": tag}]}
    # The Python tea SDK sends booleans as "True"; others send "true".
    e = fe.expect_error(tea.call, "RunInstances", {**params, "DryRun": True}, status=400, code="DryRunOperation")
    assert e.data["RequestId"]
    check_error(raw.send_v2("RunInstances", {**params, "DryRun": "true"}), 400, "DryRunOperation")
    assert fe.describe_by_tag(tea, "dry", tag) == []
    # A dry run still validates: an impossible request fails with its real error.
    fe.expect_error(tea.call, "RunInstances", {**params, "DryRun": True, "InstanceType": fe.GPU_TYPE},
                    status=403, code="OperationDenied.NoStock")
    fe.expect_error(tea.call, "RunInstances", {**params, "DryRun": True, "ImageId": "nope"},
                    status=404, code="InvalidImageId.NotFound")
    assert fe.describe_by_tag(tea, "dry", tag) == []


def test_oversized_body_is_a_json_413(server):
    r = requests.post(f"http://{server.endpoint}/", data=b"A=" + b"x" * (600 * 1024),
                      headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=30)
    assert r.status_code == 413
    body = r.json()
    assert body["Code"] == "InvalidParameter.TooLarge" and body["RequestId"]


def test_failed_run_instances_leaves_nothing_on_the_host(server, raw):
    host_dir = server.data_dir / "host" / "instances"
    before = sorted(p.name for p in host_dir.glob("i-*"))
    # Too big for the host, a batch over capacity, and an unknown image: nothing may be created.
    for params in ({"InstanceType": "ecs.g7.32xlarge"},
                   {"InstanceType": fe.SMALL_TYPE, "Amount": 100, "MinAmount": 100},
                   {"InstanceType": fe.SMALL_TYPE, "ImageId": "no_such_image"}):
        p = {"RegionId": fe.REGION, "ImageId": "feiyun_busybox_x64", **params}
        fe.expect_error(raw.call, "RunInstances", p, status=(403, 404))
    time.sleep(0.5)
    # Nothing new on the host (instances of earlier tests may still be going away meanwhile).
    assert set(p.name for p in host_dir.glob("i-*")) - set(before) == set()
