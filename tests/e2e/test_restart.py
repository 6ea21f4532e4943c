"""Control-plane restarts: instances are real containers and outlive the server process.
Each test runs its own server (``make_server``) so the shared one is not disturbed."""

import json
import signal
import time

import feiyun_e2e as fe


def test_kill9_and_restart_keeps_instances(make_server):
    srv = make_server("kill9")
    c = srv.raw()
    running = fe.run_instances(c, amount=2, HostName="survivor", tags={"r": "1"})
    stopped = fe.run_instances(c, amount=1, tags={"r": "1"})
    fe.wait_status(c, running + stopped, "Running")
    c.call("StopInstance", {"InstanceId": stopped[0]})
    fe.wait_status(c, stopped, "Stopped")
    before = {i["InstanceId"]: i for i in fe.describe(c, running + stopped)}
    pids = {i: fe.runc_state(srv.data_dir, i)["pid"] for i in running}

    srv.send_signal(signal.SIGKILL)
    srv.proc.wait(10)
    srv.stop()  # closes the log

    # The containers did not die with the control plane.
    for i in running:
        st = fe.runc_state(srv.data_dir, i)
        assert st is not None and st["status"] == "running", f"{i} after kill -9: {st}"
        assert st["pid"] == pids[i]
    st = fe.runc_state(srv.data_dir, stopped[0])
    assert st is None or st["status"] != "running", st

    # Same data dir, same port.
    srv.start()
    c = srv.raw()  # same credentials
    after = {i["InstanceId"]: i for i in fe.describe(c, running + stopped)}
    assert set(after) == set(before)
    for i in running:
        assert after[i]["Status"] == "Running", after[i]
        assert after[i]["HostName"] == "survivor"
        assert after[i]["CreationTime"] == before[i]["CreationTime"]
    assert after[stopped[0]]["Status"] == "Stopped"
    # The running instances were adopted, not rebooted.
    for i in running:
        assert fe.runc_state(srv.data_dir, i)["pid"] == pids[i], "instance was restarted by the new server"

    # And they are fully manageable again: Cloud Assistant, stop, start.
    r = fe.run_command(c, running[0], "hostname")
    assert fe.unb64(r["Output"]).strip() == "survivor"
    c.call("StopInstance", {"InstanceId": running[1]})
    fe.wait_status(c, [running[1]], "Stopped")
    c.call("StartInstance", {"InstanceId": stopped[0]})
    fe.wait_status(c, stopped, "Running")

    # The admin key did not change across restarts.
    assert json.loads((srv.data_dir / "credentials.json").read_text())["AccessKeyId"] == srv.creds["AccessKeyId"]
    # The make_server teardown force-deletes everything and checks no container is left.


def test_restart_mid_transition(make_server):
    """kill -9 right after RunInstances: the new server finishes the job (no instance stuck in
    Pending/Starting)."""
    srv = make_server("midway")
    c = srv.raw()
    ids = fe.run_instances(c, amount=2)
    srv.send_signal(signal.SIGKILL)
    srv.proc.wait(10)
    srv.stop()
    srv.start()
    c = srv.raw()
    fe.wait_status(c, ids, "Running", timeout=90)
    for i in ids:
        st = fe.runc_state(srv.data_dir, i)
        assert st and st["status"] == "running", (i, st)
    # Exactly one container per instance.
    assert sorted(x["id"] for x in fe.runc_list(srv.data_dir)) == sorted(ids)


def test_sigint_shutdown_keeps_instances_running(make_server):
    srv = make_server("sigint")
    c = srv.raw()
    ids = fe.run_instances(c, amount=1, HostName="ctrl-c")
    fe.wait_status(c, ids, "Running")
    pid = fe.runc_state(srv.data_dir, ids[0])["pid"]

    t0 = time.monotonic()
    rc = srv.stop(signal.SIGINT, timeout=15)
    assert rc is not None, "server did not exit within 15s of SIGINT"
    assert rc in (0, 130, -signal.SIGINT), f"unexpected exit code {rc} on SIGINT"
    assert time.monotonic() - t0 < 15

    st = fe.runc_state(srv.data_dir, ids[0])
    assert st is not None and st["status"] == "running" and st["pid"] == pid, st

    srv.start()
    c = srv.raw()
    assert fe.statuses(c, ids) == {ids[0]: "Running"}
    r = fe.run_command(c, ids[0], "hostname")
    assert fe.unb64(r["Output"]).strip() == "ctrl-c"


def test_sigterm_shutdown_keeps_instances_running(make_server):
    srv = make_server("sigterm")
    c = srv.raw()
    ids = fe.run_instances(c, amount=1)
    fe.wait_status(c, ids, "Running")
    rc = srv.stop(signal.SIGTERM, timeout=15)
    assert rc is not None and rc in (0, 143, -signal.SIGTERM), rc
    st = fe.runc_state(srv.data_dir, ids[0])
    assert st is not None and st["status"] == "running", st
    srv.start()
    assert fe.statuses(srv.raw(), ids) == {ids[0]: "Running"}


def test_deleted_while_down_is_cleaned_on_restart(make_server):
    """A container whose instance was released is removed even if the server restarts in between."""
    srv = make_server("delete")
    c = srv.raw()
    ids = fe.run_instances(c, amount=1)
    fe.wait_status(c, ids, "Running")
    c.call("DeleteInstance", {"InstanceId": ids[0], "Force": True})
    srv.send_signal(signal.SIGKILL)
    srv.proc.wait(10)
    srv.stop()
    srv.start()
    c = srv.raw()
    fe.wait_gone(c, ids)
    deadline = time.monotonic() + 30
    while fe.runc_state(srv.data_dir, ids[0]) is not None:
        assert time.monotonic() < deadline, "released instance's container survived a restart"
        time.sleep(0.1)
