"""A Stopped instance holds nothing on its host but its disk: no runc container, no mount under
its directory, no cgroup — after StopInstance, after a server killed right after StopInstance was
acknowledged, and after the guest's init exits on its own. Its disk survives all three."""

import signal
import subprocess
import time

import feiyun_e2e as fe


def write_marker(client, iid: str, text: str) -> None:
    r = fe.run_command(client, iid, f"echo {text} > /root/kept && cat /root/kept")
    assert fe.unb64(r["Output"]).strip() == text, r


def assert_marker(client, iid: str, text: str) -> None:
    r = fe.run_command(client, iid, "cat /root/kept")
    assert fe.unb64(r["Output"]).strip() == text, f"file written before the stop is gone: {r}"


def assert_holds_while_running(data_dir, iid: str) -> None:
    """The checks below would prove nothing if a running instance showed none of these."""
    held = fe.host_holdings(data_dir, iid)
    kinds = {h.split()[0] for h in held}
    assert {"runc", "mount", "cgroup"} <= kinds, f"running {iid} holds {held}"


def test_stop_leaves_no_container_mount_or_cgroup(server, raw, track):
    iid = track.add(fe.run_instances(raw))[0]
    fe.wait_status(raw, iid, "Running")
    assert_holds_while_running(server.data_dir, iid)
    write_marker(raw, iid, "before-stop")

    raw.call("StopInstance", {"InstanceId": iid})
    fe.wait_status(raw, iid, "Stopped")
    # Stopped is reported only once everything is released.
    assert fe.host_holdings(server.data_dir, iid) == []
    assert (server.data_dir / "host" / "instances" / iid / "upper").is_dir(), "the disk is kept"

    raw.call("StartInstance", {"InstanceId": iid})
    fe.wait_status(raw, iid, "Running")
    assert_marker(raw, iid, "before-stop")


def test_kill9_right_after_stop_converges_to_stopped_and_clean(make_server):
    srv = make_server("stopkill9")
    c = srv.raw()
    ids = fe.run_instances(c, amount=2)
    fe.wait_status(c, ids, "Running")
    for i in ids:
        write_marker(c, i, f"kept-{i}")

    for i in ids:
        c.call("StopInstance", {"InstanceId": i})
    srv.send_signal(signal.SIGKILL)
    srv.proc.wait(10)
    srv.stop()  # closes the log

    # The dead server may not have reached an instance yet: kill it as the server was about to,
    # so that every instance is left stopped half-way (container record, mount and cgroup kept).
    root = str(fe.runc_root(srv.data_dir))
    for i in ids:
        st = fe.runc_state(srv.data_dir, i)
        if st is not None and st["status"] == "running":
            subprocess.run(["runc", "--root", root, "kill", i, "KILL"], capture_output=True, timeout=30)
    deadline = time.monotonic() + 10
    while any((fe.runc_state(srv.data_dir, i) or {}).get("status") == "running" for i in ids):
        assert time.monotonic() < deadline, "containers still running 10s after SIGKILL"
        time.sleep(0.05)
    left = {i: fe.host_holdings(srv.data_dir, i) for i in ids}
    assert any(left.values()), f"nothing was left half-way, the test proves nothing: {left}"

    srv.start()
    c = srv.raw()
    fe.wait_status(c, ids, "Stopped", timeout=60)
    for i in ids:
        assert fe.host_holdings(srv.data_dir, i) == [], f"{i} Stopped after a restart, was holding {left[i]}"

    c.call("StartInstance", {"InstanceId": ids[0]})
    fe.wait_status(c, ids[:1], "Running")
    assert_marker(c, ids[0], f"kept-{ids[0]}")
    # The make_server teardown deletes everything and checks nothing is left.


def test_guest_halt_leaves_stopped_and_clean(server, raw, track):
    iid = track.add(fe.run_instances(raw))[0]
    fe.wait_status(raw, iid, "Running")
    assert_holds_while_running(server.data_dir, iid)
    write_marker(raw, iid, "before-halt")

    # Init exits on its own (the command dies with it, so its result is not waited for).
    raw.call("RunCommand", {"RegionId": fe.REGION, "Type": "RunShellScript", "CommandContent": "kill 1",
                            "InstanceId": [iid]})
    fe.wait_status(raw, iid, "Stopped", timeout=60)
    assert fe.host_holdings(server.data_dir, iid) == []

    raw.call("StartInstance", {"InstanceId": iid})
    fe.wait_status(raw, iid, "Running")
    assert_marker(raw, iid, "before-halt")
