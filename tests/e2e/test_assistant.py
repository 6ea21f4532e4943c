"""Cloud Assistant: RunCommand, CreateCommand/InvokeCommand, DescribeInvocations(+Results)."""

import time

import pytest

import feiyun_e2e as fe


@pytest.fixture(scope="module")
def vm(server):
    """One running instance shared by the Cloud Assistant tests."""
    raw = server.raw()
    iid = fe.run_instances(raw, HostName="assist-host")[0]
    try:
        fe.wait_status(raw, iid, "Running")
        yield iid
    finally:
        fe.force_delete(raw, [iid])
        fe.wait_gone(raw, [iid])


def test_run_command_plaintext(tea, vm):
    res = tea.call("RunCommand", {"RegionId": fe.REGION, "Type": "RunShellScript", "InstanceId": [vm],
                                  "CommandContent": "echo hello; echo $((6*7)); uname -s"})
    assert res["InvokeId"].startswith("t-"), res
    assert res["CommandId"].startswith("c-"), res
    r = fe.wait_invocation(tea, res["InvokeId"], vm)
    assert r["InvocationStatus"] == "Success", r
    assert r["ExitCode"] == 0 and isinstance(r["ExitCode"], int)
    assert fe.unb64(r["Output"]) == "hello\n42\nLinux\n"
    assert r["InstanceId"] == vm and r["InvokeId"] == res["InvokeId"]
    assert r["InvokeRecordStatus"] == "Finished"
    assert isinstance(r["Dropped"], int)


def test_run_command_base64_encoding(tea_v2, vm):
    res = tea_v2.call("RunCommand", {"RegionId": fe.REGION, "Type": "RunShellScript", "InstanceId": [vm],
                                     "ContentEncoding": "Base64", "CommandContent": fe.b64("echo b64-ok")})
    r = fe.wait_invocation(tea_v2, res["InvokeId"], vm)
    assert r["InvocationStatus"] == "Success", r
    assert fe.unb64(r["Output"]) == "b64-ok\n"


def test_run_command_plaintext_output_encoding(tea, vm):
    res = tea.call("RunCommand", {"RegionId": fe.REGION, "Type": "RunShellScript", "InstanceId": [vm],
                                  "CommandContent": "echo plain"})
    fe.wait_invocation(tea, res["InvokeId"], vm)
    r = tea.call("DescribeInvocationResults", {"RegionId": fe.REGION, "InvokeId": res["InvokeId"],
                                               "ContentEncoding": "PlainText"})
    assert r["Invocation"]["InvocationResults"]["InvocationResult"][0]["Output"] == "plain\n"


def test_failing_command(core, vm):
    res = core.call("RunCommand", {"RegionId": fe.REGION, "Type": "RunShellScript", "InstanceId": [vm],
                                   "CommandContent": "echo before-fail; exit 3"})
    r = fe.wait_invocation(core, res["InvokeId"], vm)
    assert r["InvocationStatus"] == "Failed", r
    assert r["ExitCode"] == 3
    assert fe.unb64(r["Output"]) == "before-fail\n"
    inv = core.call("DescribeInvocations", {"RegionId": fe.REGION, "InvokeId": res["InvokeId"]})
    i = inv["Invocations"]["Invocation"][0]
    assert i["InvocationStatus"] == "Failed"
    ii = i["InvokeInstances"]["InvokeInstance"][0]
    assert ii["InvocationStatus"] == "Failed" and ii["ExitCode"] == 3


def test_command_runs_with_sh_inside_instance(tea, vm):
    """The script runs inside the instance (its hostname, its filesystem), not on the host."""
    r = fe.run_command(tea, vm, "hostname; test -f /bin/busybox && echo busybox-root; echo $0")
    out = fe.unb64(r["Output"]).splitlines()
    assert out[0] == "assist-host"
    assert out[1] == "busybox-root"
    assert out[2].endswith("sh"), out


def test_create_and_invoke_command(tea, vm):
    name = fe.unique("cmd")
    script = "echo invoked-$((1+2))\n"
    res = tea.call("CreateCommand", {"RegionId": fe.REGION, "Name": name, "Type": "RunShellScript",
                                     "CommandContent": fe.b64(script), "Description": "e2e", "Timeout": 30})
    cid = res["CommandId"]
    assert cid.startswith("c-"), res

    cmds = tea.call("DescribeCommands", {"RegionId": fe.REGION, "CommandId": cid})
    assert cmds["TotalCount"] == 1
    c = cmds["Commands"]["Command"][0]
    assert c["CommandId"] == cid and c["Name"] == name and c["Type"] == "RunShellScript"
    assert fe.unb64(c["CommandContent"]) == script  # Base64 by default in responses
    assert c["Timeout"] == 30 and c["Description"] == "e2e"

    inv = tea.call("InvokeCommand", {"RegionId": fe.REGION, "CommandId": cid, "InstanceId": [vm]})
    invoke_id = inv["InvokeId"]
    assert invoke_id.startswith("t-"), inv

    # DescribeInvocations until the invocation is finished.
    deadline = time.monotonic() + 60
    while True:
        d = tea.call("DescribeInvocations", {"RegionId": fe.REGION, "InvokeId": invoke_id, "IncludeOutput": True})
        invs = d["Invocations"]["Invocation"]
        assert len(invs) == 1, d
        if invs[0]["InvocationStatus"] in ("Success", "Failed"):
            break
        assert time.monotonic() < deadline, d
        time.sleep(0.1)
    i = invs[0]
    assert i["InvokeId"] == invoke_id and i["CommandId"] == cid and i["CommandName"] == name
    assert i["CommandType"] == "RunShellScript"
    assert i["InvocationStatus"] == "Success"
    assert i["InvokeStatus"] == "Finished"
    ii = i["InvokeInstances"]["InvokeInstance"]
    assert [x["InstanceId"] for x in ii] == [vm]
    assert ii[0]["InvocationStatus"] == "Success" and ii[0]["ExitCode"] == 0
    assert fe.unb64(ii[0]["Output"]) == "invoked-3\n"

    r = tea.call("DescribeInvocationResults", {"RegionId": fe.REGION, "InvokeId": invoke_id})
    inv_obj = r["Invocation"]
    assert inv_obj["TotalCount"] == 1 and isinstance(inv_obj["PageSize"], int)
    res0 = inv_obj["InvocationResults"]["InvocationResult"][0]
    assert res0["CommandId"] == cid and res0["InstanceId"] == vm
    assert res0["InvocationStatus"] == "Success" and res0["ExitCode"] == 0
    assert fe.unb64(res0["Output"]) == "invoked-3\n"

    # The command was invoked once.
    c = tea.call("DescribeCommands", {"RegionId": fe.REGION, "CommandId": cid})["Commands"]["Command"][0]
    assert c["InvokeTimes"] == 1

    tea.call("DeleteCommand", {"RegionId": fe.REGION, "CommandId": cid})
    cmds = tea.call("DescribeCommands", {"RegionId": fe.REGION, "CommandId": cid})
    assert cmds["TotalCount"] == 0 and cmds["Commands"]["Command"] == []
    fe.expect_error(tea.call, "InvokeCommand", {"RegionId": fe.REGION, "CommandId": cid, "InstanceId": [vm]},
                    status=404, code="InvalidCmdId.NotFound")
    fe.expect_error(tea.call, "DeleteCommand", {"RegionId": fe.REGION, "CommandId": cid},
                    status=404, code="InvalidCmdId.NotFound")


def test_invoke_with_typed_sdk(tea, vm):
    from alibabacloud_ecs20140526 import models as m

    c = tea.typed("create_command", m.CreateCommandRequest(region_id=fe.REGION, name=fe.unique("typed"),
                                                           type="RunShellScript",
                                                           command_content=fe.b64("echo typed")))
    i = tea.typed("invoke_command", m.InvokeCommandRequest(region_id=fe.REGION, command_id=c.command_id,
                                                           instance_id=[vm]))
    r = fe.wait_invocation(tea, i.invoke_id, vm)
    assert fe.unb64(r["Output"]) == "typed\n"
    body = tea.typed("describe_invocation_results",
                     m.DescribeInvocationResultsRequest(region_id=fe.REGION, invoke_id=i.invoke_id))
    res = body.invocation.invocation_results.invocation_result[0]
    assert res.exit_code == 0 and res.invocation_status == "Success"
    tea.typed("delete_command", m.DeleteCommandRequest(region_id=fe.REGION, command_id=c.command_id))


def test_run_command_on_unknown_instance(tea):
    e = fe.expect_error(tea.call, "RunCommand", {"RegionId": fe.REGION, "Type": "RunShellScript",
                                                 "InstanceId": ["i-doesnotexist000"], "CommandContent": "true"},
                        status=404)
    assert e.code in ("InvalidInstance.NotFound", "InvalidInstanceId.NotFound"), e


def test_run_command_bad_type(tea, vm):
    fe.expect_error(tea.call, "RunCommand", {"RegionId": fe.REGION, "Type": "Shell", "InstanceId": [vm],
                                             "CommandContent": "true"},
                    status=(400, 403, 404), code="InvalidCmdType.NotFound")


def test_unknown_invocation_is_empty(tea):
    r = tea.call("DescribeInvocationResults", {"RegionId": fe.REGION, "InvokeId": "t-doesnotexist"})
    assert r["Invocation"]["InvocationResults"]["InvocationResult"] == []
    d = tea.call("DescribeInvocations", {"RegionId": fe.REGION, "InvokeId": "t-doesnotexist"})
    assert d["Invocations"]["Invocation"] == [] and d["TotalCount"] == 0
