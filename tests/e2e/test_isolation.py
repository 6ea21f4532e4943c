"""Tenant isolation: an account never sees or touches another account's resources."""

import json

import feiyun_e2e as fe


def test_tenant_isolation(server, tea, tenant_b, track):
    b = server.tea(tenant_b)
    b_core = server.core(tenant_b)
    assert tenant_b["AccessKeyId"] != server.creds["AccessKeyId"]

    a_id = track.add(fe.run_instances(tea, tags={"owner": "a"}))[0]
    b_id = track.add(fe.run_instances(b, tags={"owner": "b"}), client=b)[0]
    fe.wait_status(tea, a_id, "Running")
    fe.wait_status(b, b_id, "Running")

    # Listing: each sees only its own.
    a_all = fe.all_instance_ids(tea)
    b_all = fe.all_instance_ids(b)
    assert a_id in a_all and b_id not in a_all
    assert b_id in b_all and a_id not in b_all
    assert b.call("DescribeInstances", {"RegionId": fe.REGION, "InstanceIds": json.dumps([a_id])})[
        "Instances"]["Instance"] == []
    assert fe.describe_by_tag(b, "owner", "a") == []
    st = b.call("DescribeInstanceStatus", {"RegionId": fe.REGION, "InstanceId": [a_id]})
    assert a_id not in [s["InstanceId"] for s in st["InstanceStatuses"]["InstanceStatus"]]

    # Acting on the other tenant's instance: 404 as if it did not exist.
    for action, extra in (("StopInstance", {}), ("RebootInstance", {}), ("StartInstance", {}),
                          ("DeleteInstance", {"Force": True}), ("DescribeInstanceAttribute", {})):
        fe.expect_error(b.call, action, {"InstanceId": a_id, **extra}, status=404, code="InvalidInstanceId.NotFound")
    fe.expect_error(b_core.call, "StopInstance", {"InstanceId": a_id}, status=404, code="InvalidInstanceId.NotFound")
    e = fe.expect_error(b.call, "StopInstances", {"RegionId": fe.REGION, "InstanceId": [a_id]}, status=404)
    assert e.code == "InvalidInstanceId.NotFound"
    fe.expect_error(b.call, "DeleteInstances", {"RegionId": fe.REGION, "InstanceId": [a_id], "Force": True},
                    status=404, code="InvalidInstanceId.NotFound")
    fe.expect_error(b.call, "GetInstanceConsoleOutput", {"RegionId": fe.REGION, "InstanceId": a_id}, status=404)
    e = fe.expect_error(b.call, "RunCommand", {"RegionId": fe.REGION, "Type": "RunShellScript",
                                               "InstanceId": [a_id], "CommandContent": "id"}, status=404)
    assert e.code in ("InvalidInstance.NotFound", "InvalidInstanceId.NotFound"), e

    # A's instance is untouched.
    assert fe.statuses(tea, [a_id]) == {a_id: "Running"}
    st = fe.runc_state(server.data_dir, a_id)
    assert st and st["status"] == "running"

    # Cloud Assistant records are per account too.
    res = tea.call("RunCommand", {"RegionId": fe.REGION, "Type": "RunShellScript", "InstanceId": [a_id],
                                  "CommandContent": "echo secret-a", "KeepCommand": True})
    fe.wait_invocation(tea, res["InvokeId"], a_id)
    assert b.call("DescribeInvocations", {"RegionId": fe.REGION, "InvokeId": res["InvokeId"]})[
        "Invocations"]["Invocation"] == []
    assert b.call("DescribeInvocationResults", {"RegionId": fe.REGION, "InvokeId": res["InvokeId"]})[
        "Invocation"]["InvocationResults"]["InvocationResult"] == []
    assert b.call("DescribeCommands", {"RegionId": fe.REGION, "CommandId": res["CommandId"]})[
        "Commands"]["Command"] == []
    fe.expect_error(b.call, "InvokeCommand", {"RegionId": fe.REGION, "CommandId": res["CommandId"],
                                              "InstanceId": [b_id]}, status=404, code="InvalidCmdId.NotFound")
    fe.expect_error(b.call, "DeleteCommand", {"RegionId": fe.REGION, "CommandId": res["CommandId"]},
                    status=404, code="InvalidCmdId.NotFound")
    tea.call("DeleteCommand", {"RegionId": fe.REGION, "CommandId": res["CommandId"]})

    # And the other way round.
    fe.expect_error(tea.call, "StopInstance", {"InstanceId": b_id}, status=404, code="InvalidInstanceId.NotFound")
    assert fe.statuses(b, [b_id]) == {b_id: "Running"}


def test_secret_of_other_account_does_not_sign(server, tenant_b):
    """A's key id with B's secret is a signature mismatch, not B's access."""
    c = fe.TeaClient(server.endpoint, server.creds["AccessKeyId"], tenant_b["AccessKeySecret"])
    fe.expect_error(c.call, "DescribeRegions", {}, status=400, code="SignatureDoesNotMatch")


def test_new_account_starts_empty(server):
    acct = server.create_account(fe.unique("fresh"))
    server.accounts.append(acct)
    c = server.tea(acct)
    res = c.call("DescribeInstances", {"RegionId": fe.REGION})
    assert res["TotalCount"] == 0 and res["Instances"]["Instance"] == []
    assert c.call("DescribeCommands", {"RegionId": fe.REGION})["Commands"]["Command"] == []
