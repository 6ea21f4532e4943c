"""ClientToken idempotency (CONTRACT §3.3)."""

import feiyun_e2e as fe


def test_client_token_replay(tea, tea_v2, track):
    from alibabacloud_ecs20140526 import models as m

    token = fe.unique("tok")
    tag = fe.unique("idem")

    def req(amount=2, name="idem"):
        return m.RunInstancesRequest(region_id=fe.REGION, image_id="feiyun_busybox_x64", instance_type=fe.SMALL_TYPE,
                                     amount=amount, instance_name=name, client_token=token,
                                     tag=[m.RunInstancesRequestTag(key="idem", value=tag)])

    first = tea.typed("run_instances", req()).instance_id_sets.instance_id_set
    track.add(first)
    assert len(first) == 2
    # Same token, same params: the same instances, nothing new. Retries carry a fresh nonce and
    # timestamp, so the token must be keyed on API params only.
    again = tea.typed("run_instances", req()).instance_id_sets.instance_id_set
    assert again == first
    # Same again through the V2 signature (other wire encoding of the same params).
    res = tea_v2.call("RunInstances", {"RegionId": fe.REGION, "ImageId": "feiyun_busybox_x64",
                                       "InstanceType": fe.SMALL_TYPE, "Amount": 2, "InstanceName": "idem",
                                       "ClientToken": token, "Tag": [{"Key": "idem", "Value": tag}]})
    assert res["InstanceIdSets"]["InstanceIdSet"] == first

    found = fe.describe_by_tag(tea, "idem", tag)
    assert sorted(i["InstanceId"] for i in found) == sorted(first)

    # Same token, different params.
    e = fe.expect_error(tea.typed, "run_instances", req(amount=1), status=400, code="IdempotentParameterMismatch")
    assert e.data["RequestId"]
    fe.expect_error(tea.typed, "run_instances", req(name="other"), status=400, code="IdempotentParameterMismatch")
    assert len(fe.describe_by_tag(tea, "idem", tag)) == 2

    # The replay keeps working after the instances changed state.
    fe.wait_status(tea, first, "Running")
    assert tea.typed("run_instances", req()).instance_id_sets.instance_id_set == first


def test_client_token_create_instance(tea, track):
    token = fe.unique("tok")
    params = {"RegionId": fe.REGION, "ImageId": "feiyun_busybox_x64", "InstanceType": fe.SMALL_TYPE,
              "ClientToken": token}
    a = tea.call("CreateInstance", params)["InstanceId"]
    track.add(a)
    b = tea.call("CreateInstance", params)["InstanceId"]
    assert a == b
    fe.expect_error(tea.call, "CreateInstance", {**params, "InstanceName": "different"}, status=400,
                    code="IdempotentParameterMismatch")


def test_client_token_is_per_account(server, tea, tenant_b, track):
    """Two tenants using the same token get their own instances."""
    token = fe.unique("tok")
    params = {"RegionId": fe.REGION, "ImageId": "feiyun_busybox_x64", "InstanceType": fe.SMALL_TYPE,
              "ClientToken": token}
    b_client = server.tea(tenant_b)
    a = tea.call("RunInstances", params)["InstanceIdSets"]["InstanceIdSet"]
    track.add(a)
    b = b_client.call("RunInstances", params)["InstanceIdSets"]["InstanceIdSet"]
    track.add(b, client=b_client)
    assert len(a) == 1 and len(b) == 1 and a != b
