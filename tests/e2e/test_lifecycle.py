"""Instance lifecycle end to end: real runc containers behind the ECS API."""

import json
import re
import time

import feiyun_e2e as fe

MINUTE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?Z$")


def check_instance_shape(inst: dict, *, instance_id: str, status: str, hostname: str | None = None,
                         tags: dict | None = None, itype: str = fe.SMALL_TYPE):
    assert inst["InstanceId"] == instance_id
    assert inst["Status"] == status
    assert inst["RegionId"] == fe.REGION
    assert inst["ZoneId"] == fe.ZONE
    assert inst["InstanceType"] == itype
    assert inst["InstanceTypeFamily"] == "ecs." + itype.split(".")[1].split("-")[0]  # ecs.t5-lc2m1.nano -> ecs.t5
    assert inst["ImageId"] == "feiyun_busybox_x64"
    assert inst["InstanceChargeType"] == "PostPaid"
    assert inst["OSType"] == "linux"
    # Cpu is an int vCPU count, Memory an int in MiB (CONTRACT §2.1).
    if itype == fe.SMALL_TYPE:
        assert inst["Cpu"] == 1 and isinstance(inst["Cpu"], int)
        assert inst["Memory"] == 512 and isinstance(inst["Memory"], int)
    assert isinstance(inst["InstanceName"], str)
    assert isinstance(inst["CreationTime"], str) and MINUTE_TIME.match(inst["CreationTime"]), inst["CreationTime"]
    if hostname is not None:
        assert inst["HostName"] == hostname
    assert isinstance(inst["Tags"]["Tag"], list)
    if tags is not None:
        assert {t["TagKey"]: t["TagValue"] for t in inst["Tags"]["Tag"]} == tags


def wait_console(tea, iid, marker, timeout=30):
    from alibabacloud_ecs20140526 import models as m

    deadline = time.monotonic() + timeout
    while True:
        c = tea.typed("get_instance_console_output",
                      m.GetInstanceConsoleOutputRequest(region_id=fe.REGION, instance_id=iid))
        console = fe.unb64(c.console_output or "")
        if marker in console:
            return c
        assert time.monotonic() < deadline, f"UserData output {marker!r} not in console:\n{console[-2000:]}"
        time.sleep(0.2)


def test_full_lifecycle_tea_v3(server, tea, track):
    """run -> Running -> hostname via RunCommand -> stop -> start -> reboot -> console shows UserData
    output -> delete -> gone. Uses the typed tea SDK (V3 signature) for the lifecycle calls."""
    from alibabacloud_ecs20140526 import models as m

    marker = fe.unique("userdata-marker")
    hostname = fe.unique("host")
    tag_val = fe.unique("lc")
    user_data = fe.b64(f"#!/bin/sh\necho {marker}\n")
    body = tea.typed("run_instances", m.RunInstancesRequest(
        region_id=fe.REGION, zone_id=fe.ZONE, image_id="feiyun_busybox_x64", instance_type=fe.SMALL_TYPE,
        amount=1, host_name=hostname, instance_name="lifecycle-1", user_data=user_data,
        instance_charge_type="PostPaid", tag=[m.RunInstancesRequestTag(key="suite", value=tag_val)]))
    ids = body.instance_id_sets.instance_id_set
    assert len(ids) == 1 and ids[0].startswith("i-"), body.to_map()
    iid = track.add(ids)[0]

    seen: set = set()
    fe.wait_status(tea, iid, "Running", timeout=60, seen=seen)
    assert seen <= {"Pending", "Starting", "Running"}, seen

    # Typed DescribeInstances with the InstanceIds JSON filter.
    d = tea.typed("describe_instances", m.DescribeInstancesRequest(region_id=fe.REGION,
                                                                   instance_ids=json.dumps([iid])))
    assert d.total_count == 1 and len(d.instances.instance) == 1
    inst = d.instances.instance[0]
    assert inst.host_name == hostname and inst.instance_name == "lifecycle-1"
    assert inst.memory == 512 and inst.cpu == 1 and inst.status == "Running"
    assert inst.tags.tag[0].tag_key == "suite" and inst.tags.tag[0].tag_value == tag_val
    check_instance_shape(d.to_map()["Instances"]["Instance"][0], instance_id=iid, status="Running",
                         hostname=hostname, tags={"suite": tag_val})

    # It is a real container: runc knows it and it is running.
    st = fe.runc_state(server.data_dir, iid)
    assert st is not None and st["status"] == "running", st
    pid_before = st["pid"]

    # DescribeInstanceStatus agrees.
    s = tea.typed("describe_instance_status", m.DescribeInstanceStatusRequest(region_id=fe.REGION,
                                                                              instance_id=[iid]))
    assert [(x.instance_id, x.status) for x in s.instance_statuses.instance_status] == [(iid, "Running")]

    # The hostname inside the instance is the HostName parameter.
    r = fe.run_command(tea, iid, "hostname")
    assert r["InvocationStatus"] == "Success", r
    assert r["ExitCode"] == 0
    assert fe.unb64(r["Output"]).strip() == hostname

    # The console shows the UserData script's output (first boot).
    wait_console(tea, iid, marker)

    # Stop.
    tea.typed("stop_instance", m.StopInstanceRequest(instance_id=iid))
    seen = set()
    fe.wait_status(tea, iid, "Stopped", timeout=60, seen=seen)
    assert seen <= {"Running", "Stopping", "Stopped"}, seen
    st = fe.runc_state(server.data_dir, iid)
    assert st is None or st["status"] != "running", f"instance Stopped but its container is {st}"

    # Start again.
    tea.typed("start_instance", m.StartInstanceRequest(instance_id=iid))
    fe.wait_status(tea, iid, "Running", timeout=60)
    st = fe.runc_state(server.data_dir, iid)
    assert st is not None and st["status"] == "running", st
    pid_after_start = st["pid"]
    assert pid_after_start != pid_before

    # Reboot: a new init process afterwards.
    tea.typed("reboot_instance", m.RebootInstanceRequest(instance_id=iid))
    deadline = time.monotonic() + 60
    while True:
        status = fe.statuses(tea, [iid]).get(iid)
        st = fe.runc_state(server.data_dir, iid)
        if status == "Running" and st and st["status"] == "running" and st["pid"] != pid_after_start:
            break
        assert time.monotonic() < deadline, f"reboot did not complete: status={status} runc={st}"
        time.sleep(0.1)
    r = fe.run_command(tea, iid, "hostname")
    assert fe.unb64(r["Output"]).strip() == hostname

    # Console output still contains the UserData script's output from the first boot.
    c = wait_console(tea, iid, marker)
    assert c.instance_id == iid
    assert isinstance(c.last_update_time, str)

    # Delete (Force, it is Running) and it is gone.
    tea.typed("delete_instance", m.DeleteInstanceRequest(instance_id=iid, force=True))
    fe.wait_gone(tea, iid, timeout=60)
    e = fe.expect_error(tea.typed, "describe_instance_attribute",
                        m.DescribeInstanceAttributeRequest(instance_id=iid), status=404,
                        code="InvalidInstanceId.NotFound")
    assert e.data.get("RequestId")
    fe.expect_error(tea.typed, "stop_instance", m.StopInstanceRequest(instance_id=iid), status=404,
                    code="InvalidInstanceId.NotFound")
    # And the container is gone from the host.
    deadline = time.monotonic() + 30
    while fe.runc_state(server.data_dir, iid) is not None:
        assert time.monotonic() < deadline, f"container {iid} still exists after delete"
        time.sleep(0.1)


def test_userdata_runs_once(server, raw, track):
    """UserData runs at first boot only: after a stop/start the marker appears once in the console
    of the new boot, i.e. the script's side effect (append to a file) happened once."""
    script = "#!/bin/sh\nmkdir -p /var/lib\necho ran >> /var/lib/userdata-count\n"
    iid = track.add(fe.run_instances(raw, UserData=fe.b64(script)))[0]
    fe.wait_status(raw, iid, "Running")
    deadline = time.monotonic() + 30
    while True:  # UserData runs asynchronously at boot
        r = fe.run_command(raw, iid, "cat /var/lib/userdata-count 2>/dev/null | wc -l")
        if fe.unb64(r["Output"]).strip() == "1":
            break
        assert time.monotonic() < deadline, f"UserData did not run: {r}"
        time.sleep(0.3)
    raw.call("StopInstance", {"InstanceId": iid})
    fe.wait_status(raw, iid, "Stopped")
    raw.call("StartInstance", {"InstanceId": iid})
    fe.wait_status(raw, iid, "Running")
    time.sleep(1.0)  # give a wrongly re-run UserData script time to show
    r = fe.run_command(raw, iid, "cat /var/lib/userdata-count | wc -l")
    assert fe.unb64(r["Output"]).strip() == "1", f"UserData ran again after restart: {r}"


def test_lifecycle_with_core_sdk(server, core, track):
    """The same lifecycle subset through aliyun-python-sdk-core request classes (V2 signature)."""
    from aliyunsdkecs.request.v20140526.DeleteInstanceRequest import DeleteInstanceRequest
    from aliyunsdkecs.request.v20140526.DescribeInstancesRequest import DescribeInstancesRequest
    from aliyunsdkecs.request.v20140526.RunInstancesRequest import RunInstancesRequest
    from aliyunsdkecs.request.v20140526.StartInstanceRequest import StartInstanceRequest
    from aliyunsdkecs.request.v20140526.StopInstanceRequest import StopInstanceRequest

    tag_val = fe.unique("core")
    req = RunInstancesRequest()
    req.set_ImageId("feiyun_busybox_x64")
    req.set_InstanceType(fe.SMALL_TYPE)
    req.set_Amount(2)
    req.set_HostName("core-host")
    req.set_Tags([{"Key": "suite", "Value": tag_val}])
    res = core.do(req)
    ids = res["InstanceIdSets"]["InstanceIdSet"]
    assert len(ids) == 2 and len(set(ids)) == 2
    track.add(ids)
    fe.wait_status(core, ids, "Running")

    req = DescribeInstancesRequest()
    req.set_Tags([{"Key": "suite", "Value": tag_val}])
    req.set_PageSize(50)
    res = core.do(req)
    assert res["TotalCount"] == 2
    assert sorted(i["InstanceId"] for i in res["Instances"]["Instance"]) == sorted(ids)
    for inst in res["Instances"]["Instance"]:
        check_instance_shape(inst, instance_id=inst["InstanceId"], status="Running", tags={"suite": tag_val})

    req = StopInstanceRequest()
    req.set_InstanceId(ids[0])
    res = core.do(req)
    assert "RequestId" in res
    fe.wait_status(core, [ids[0]], "Stopped")

    req = DeleteInstanceRequest()
    req.set_InstanceId(ids[0])
    core.do(req)  # Stopped: no Force needed
    fe.wait_gone(core, [ids[0]])

    req = StartInstanceRequest()
    req.set_InstanceId(ids[1])
    e = fe.expect_error(core.do, req, status=403, code="IncorrectInstanceStatus")
    assert e.data["RequestId"]

    req = DeleteInstanceRequest()
    req.set_InstanceId(ids[1])
    req.set_Force(True)
    core.do(req)
    fe.wait_gone(core, [ids[1]])


def test_create_instance_then_start(server, tea, track):
    from alibabacloud_ecs20140526 import models as m

    body = tea.typed("create_instance", m.CreateInstanceRequest(
        region_id=fe.REGION, zone_id=fe.ZONE, image_id="feiyun_busybox_x64", instance_type=fe.SMALL_TYPE,
        host_name="created-host", instance_name="created"))
    iid = body.instance_id
    assert isinstance(iid, str) and iid.startswith("i-"), body.to_map()
    track.add(iid)
    seen: set = set()
    fe.wait_status(tea, iid, "Stopped", seen=seen)
    assert seen <= {"Pending", "Stopped"}, seen
    # Created, not started: no running container.
    st = fe.runc_state(server.data_dir, iid)
    assert st is None or st["status"] != "running", st
    tea.typed("start_instance", m.StartInstanceRequest(instance_id=iid))
    fe.wait_status(tea, iid, "Running")
    r = fe.run_command(tea, iid, "hostname")
    assert fe.unb64(r["Output"]).strip() == "created-host"
    tea.typed("stop_instance", m.StopInstanceRequest(instance_id=iid))
    fe.wait_status(tea, iid, "Stopped")
    tea.typed("delete_instance", m.DeleteInstanceRequest(instance_id=iid))
    fe.wait_gone(tea, iid)


def test_batch_operations(server, tea_v2, track):
    """StopInstances / StartInstances / RebootInstances / DeleteInstances with InstanceId.N (tea, V2)."""
    ids = track.add(fe.run_instances(tea_v2, amount=2))
    fe.wait_status(tea_v2, ids, "Running")

    res = tea_v2.call("StopInstances", {"RegionId": fe.REGION, "InstanceId": ids})
    rs = res["InstanceResponses"]["InstanceResponse"]
    assert sorted(r["InstanceId"] for r in rs) == sorted(ids)
    for r in rs:
        assert r["Code"] == "200", r
        assert r["PreviousStatus"] == "Running"
        assert r["CurrentStatus"] in ("Stopping", "Stopped")
    fe.wait_status(tea_v2, ids, "Stopped")

    res = tea_v2.call("StartInstances", {"RegionId": fe.REGION, "InstanceId": ids})
    for r in res["InstanceResponses"]["InstanceResponse"]:
        assert r["Code"] == "200" and r["PreviousStatus"] == "Stopped", r
        assert r["CurrentStatus"] in ("Starting", "Running")
    fe.wait_status(tea_v2, ids, "Running")

    res = tea_v2.call("RebootInstances", {"RegionId": fe.REGION, "InstanceId": ids})
    for r in res["InstanceResponses"]["InstanceResponse"]:
        assert r["Code"] == "200" and r["PreviousStatus"] == "Running", r
    fe.wait_status(tea_v2, ids, "Running")

    st = tea_v2.call("DescribeInstanceStatus", {"RegionId": fe.REGION, "InstanceId": ids})
    assert st["TotalCount"] == 2
    assert {x["InstanceId"]: x["Status"] for x in st["InstanceStatuses"]["InstanceStatus"]} == {
        ids[0]: "Running", ids[1]: "Running"}

    # Without Force, Running instances cannot be deleted.
    fe.expect_error(tea_v2.call, "DeleteInstances", {"RegionId": fe.REGION, "InstanceId": ids}, status=403,
                    code="IncorrectInstanceStatus")
    assert fe.statuses(tea_v2, ids) == {ids[0]: "Running", ids[1]: "Running"}
    res = tea_v2.call("DeleteInstances", {"RegionId": fe.REGION, "InstanceId": ids, "Force": True})
    assert "RequestId" in res
    fe.wait_gone(tea_v2, ids)


def test_describe_instance_attribute(tea, track):
    iid = track.add(fe.run_instances(tea, HostName="attr-host", InstanceName="attr-name"))[0]
    fe.wait_status(tea, iid, "Running")
    a = tea.call("DescribeInstanceAttribute", {"InstanceId": iid})
    assert a["InstanceId"] == iid
    assert a["HostName"] == "attr-host" and a["InstanceName"] == "attr-name"
    assert a["Status"] == "Running"
    assert a["Cpu"] == 1 and a["Memory"] == 512
    assert a["RegionId"] == fe.REGION and a["ZoneId"] == fe.ZONE
