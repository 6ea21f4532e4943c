"""A region of three hosts in two zones, each host a real `feiyun agent` in its own network
namespace, joined over veth links to a control plane in another (see netns.py for the topology).

The tests run in order on one region: instances spread over the hosts; an agent killed with
SIGKILL makes its host unreachable and comes back to the very containers it left running; a
host that lost power is evacuated and, when it returns, fenced; and the host API refuses what
it must refuse without changing anything.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import requests

import feiyun_e2e as fe
import netns
from netns import ZONE_A, ZONE_B

LOG_DIR = fe.E2E_DIR / ".logs"
SMALL = fe.SMALL_TYPE  # 1 vCPU, 512 MiB: four fit on each host (4 vCPUs, 2048 MiB)
PER_HOST = 4


@pytest.fixture(scope="module")
def region():
    missing = netns.require_tools()
    if missing:
        pytest.fail("the multi-host tests need " + ", ".join(missing)
                    + " (scripts/deps.sh --test installs the packages)", pytrace=False)
    LOG_DIR.mkdir(exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix="feiyun-e2e-hosts-"))
    r = netns.Region(base, LOG_DIR)
    try:
        r.build_network(["a1", "a2", "a3"])
        r.start_control_plane()
        zone_a, zone_b = r.token(ZONE_A), r.token(ZONE_B)
        r.add_agent("a1", ZONE_A, zone_a)
        r.add_agent("a2", ZONE_A, zone_a)
        r.add_agent("a3", ZONE_B, zone_b)
        r.wait_hosts({"a1": "Up", "a2": "Up", "a3": "Up"})
    except BaseException:
        problems = r.teardown()
        if problems:
            print("teardown after a failed start:\n" + "\n".join(problems))
        raise
    yield r
    problems = r.teardown()
    if os.environ.get("FEIYUN_E2E_KEEP") != "1" and not fe.mounts_under(base):
        shutil.rmtree(base, ignore_errors=True)
    if problems:
        pytest.fail("teardown left things behind:\n" + "\n".join(problems), pytrace=False)


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def slots(tea, zone: str) -> int:
    """How many more SMALL instances DescribeAvailableResource says the zone takes."""
    res = tea.call("DescribeAvailableResource", {"RegionId": fe.REGION, "DestinationResource": "InstanceType",
                                                 "ZoneId": zone, "InstanceType": SMALL})
    zones = res["AvailableZones"]["AvailableZone"]
    assert [z["ZoneId"] for z in zones] == [zone], res
    supported = zones[0]["AvailableResources"]["AvailableResource"][0]["SupportedResources"]["SupportedResource"]
    return next(s["Max"] for s in supported if s["Value"] == SMALL)


def health(tea, ids: list[str]) -> dict[str, str]:
    res = tea.call("DescribeInstancesFullStatus", {"RegionId": fe.REGION, "InstanceId": ids, "PageSize": 100})
    return {s["InstanceId"]: s["HealthStatus"]["Name"] for s in res["InstanceFullStatusSet"]["InstanceFullStatusType"]}


def events(tea, iid: str) -> list[tuple[str, str]]:
    res = tea.call("DescribeInstanceHistoryEvents", {"RegionId": fe.REGION, "InstanceId": iid, "PageSize": 100})
    return [(e["EventType"]["Name"], e["EventCycleStatus"]["Name"])
            for e in res["InstanceSystemEventSet"]["InstanceSystemEventType"]]


def hostnames(tea, ids: list[str]) -> dict[str, str]:
    return {i["InstanceId"]: i["HostName"] for i in fe.describe(tea, ids)}


def assert_runs_hostname(tea, ids: list[str]) -> None:
    """RunCommand reaches each instance wherever it runs: its output is the instance's hostname."""
    names = hostnames(tea, ids)
    for i in ids:
        r = fe.run_command(tea, i, "hostname", timeout=30)
        assert r["InvocationStatus"] == "Success", r
        assert fe.unb64(r["Output"]).strip() == names[i], (i, r)


def wait_for(what: str, check, timeout: float):
    deadline = time.monotonic() + timeout
    while True:
        v = check()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not so after {timeout}s")
        time.sleep(0.2)


def assert_nothing_runs_twice(region) -> dict[str, list[str]]:
    running = region.running_everywhere()
    twice = {i: hosts for i, hosts in running.items() if len(hosts) > 1}
    assert not twice, f"instances running on more than one host: {twice}"
    return running


# ---------------------------------------------------------------------------------------------
# Tests (in order, on one region)
# ---------------------------------------------------------------------------------------------


def test_instances_spread_over_three_hosts_in_two_zones(region):
    tea = region.tea()
    zones = {z["ZoneId"]: z for z in tea.call("DescribeZones", {"RegionId": fe.REGION})["Zones"]["Zone"]}
    assert set(zones) == {ZONE_A, ZONE_B}
    for z in zones.values():
        assert SMALL in z["AvailableInstanceTypes"]["InstanceTypes"], z
    assert slots(tea, ZONE_A) == 2 * PER_HOST
    assert slots(tea, ZONE_B) == PER_HOST

    in_a = fe.run_instances(tea, amount=2, ZoneId=ZONE_A)
    in_b = fe.run_instances(tea, amount=1, ZoneId=ZONE_B)
    ids = in_a + in_b
    region.created.update(ids)
    fe.wait_status(tea, ids, "Running", timeout=90)

    where = region.where()
    assert sorted(where[i] for i in in_a) == ["a1", "a2"], where
    assert where[in_b[0]] == "a3", where
    hosts = region.hosts()
    for name in ("a1", "a2", "a3"):
        assert hosts[name]["State"] == "Up" and len(hosts[name]["InstanceIds"]) == 1, hosts[name]
        assert hosts[name]["Zone"] == (ZONE_B if name == "a3" else ZONE_A)
        assert hosts[name]["Used"]["Vcpus"] == 1, hosts[name]
    # Each runs on the host the control plane chose, and nowhere else.
    running = assert_nothing_runs_twice(region)
    assert {i: h[0] for i, h in running.items()} == {i: where[i] for i in ids}
    assert slots(tea, ZONE_A) == 2 * PER_HOST - 2
    assert slots(tea, ZONE_B) == PER_HOST - 1
    assert_runs_hostname(tea, ids)
    region.placed = {where[i]: i for i in ids}


def test_a_killed_agent_comes_back_to_the_containers_it_left_running(region):
    tea = region.tea()
    a1 = region.agents["a1"]
    iid = region.placed["a1"]
    others = [region.placed["a2"], region.placed["a3"]]
    pid = a1.init_pid(iid)
    assert pid, f"{iid} does not run on a1: {a1.containers()}"
    before = slots(tea, ZONE_A)

    killed = time.monotonic()
    a1.kill9()
    hosts = region.wait_hosts({"a1": "Unreachable", "a2": "Up", "a3": "Up"}, timeout=region.grace + 10)
    silent = time.monotonic() - killed
    # The host missed at most one heartbeat before the kill: it is not given up before the grace.
    assert silent >= region.grace - 1.5, f"unreachable after {silent:.1f}s, the grace is {region.grace}s"
    assert hosts["a1"]["InstanceIds"] == [iid]

    # No new placements on it: the zone offers only what its other host has left.
    assert slots(tea, ZONE_A) == before - (PER_HOST - 1)
    assert slots(tea, ZONE_B) == PER_HOST - 1
    # Its instance is still listed, impaired, with a system event; the others are fine.
    assert health(tea, [iid, *others]) == {iid: "Impaired", others[0]: "Ok", others[1]: "Ok"}
    assert ("SystemFailure.Reboot", "Executing") in events(tea, iid)
    assert fe.statuses(tea, [iid]) == {iid: "Running"}
    assert a1.init_pid(iid) == pid, "the instance kept running without its agent"

    new = fe.run_instances(tea, amount=1, ZoneId=ZONE_A)
    region.created.update(new)
    fe.wait_status(tea, new, "Running", timeout=60)
    assert region.where()[new[0]] == "a2"

    # Back with the credential kept in its data dir (no join token this time): the same host.
    a1.start()
    assert region.wait_hosts({"a1": "Up"}, timeout=20)["a1"]["HostId"] == hosts["a1"]["HostId"]
    wait_for(f"{iid} healthy again", lambda: health(tea, [iid]) == {iid: "Ok"}, timeout=15)
    # Re-adopted: the same container, with the same init process, not a new boot.
    assert a1.init_pid(iid) == pid
    assert set(a1.containers()) == {iid}
    assert ("SystemFailure.Reboot", "Executed") in events(tea, iid)
    assert ("SystemFailure.Reboot", "Executing") not in events(tea, iid)
    assert slots(tea, ZONE_A) == 2 * PER_HOST - 3
    running = assert_nothing_runs_twice(region)
    assert running[iid] == ["a1"] and running[new[0]] == ["a2"]
    assert_runs_hostname(tea, [iid, new[0]])


def test_a_host_that_lost_power_is_evacuated_and_fenced_when_it_returns(region):
    tea = region.tea()
    a1, a2 = region.agents["a1"], region.agents["a2"]
    hosts = region.hosts()
    moved = sorted(hosts["a2"]["InstanceIds"])
    assert len(moved) == 2, hosts["a2"]
    epoch = hosts["a2"]["Epoch"]
    region.evacuated = moved

    # Kill the agent and every container of its host at once: this models the host losing power.
    a2.power_off()
    region.wait_hosts({"a2": "Unreachable"}, timeout=region.grace + 10)
    assert health(tea, moved) == {i: "Impaired" for i in moved}

    out = region.cli_json("host", "evacuate", a2.host_name)
    assert out["Host"]["Epoch"] == epoch + 1, out
    assert out["Host"]["State"] == "Unreachable", out

    # Re-created on the zone's other host, with the same ids.
    wait_for("the evacuated instances placed on a1",
             lambda: all(region.where().get(i) == "a1" for i in moved), timeout=15)
    fe.wait_status(tea, moved, "Running", timeout=60)
    assert all(a1.init_pid(i) for i in moved), a1.containers()
    assert_runs_hostname(tea, moved)
    for i in moved:
        ev = events(tea, i)
        assert ("SystemFailure.Redeploy", "Executed") in ev, ev
        assert ("SystemFailure.Reboot", "Executing") not in ev, ev
    assert health(tea, moved) == {i: "Ok" for i in moved}
    hosts = region.hosts()
    assert hosts["a2"]["InstanceIds"] == [] and hosts["a2"]["Epoch"] == epoch + 1, hosts["a2"]

    # The old host returns: it drops its copies instead of running them again.
    a2.start()
    region.wait_hosts({"a2": "Up"}, timeout=20)
    instances = a2.data_dir / "host" / "instances"
    wait_for("the returning host dropped its old copies",
             lambda: not (set(a2.containers()) & set(moved)) and not any((instances / i).exists() for i in moved),
             timeout=20)
    hosts = region.hosts()
    assert hosts["a2"]["Epoch"] == epoch + 1 and hosts["a2"]["InstanceIds"] == [], hosts["a2"]
    # It keeps the new epoch for its next start.
    wait_for("the host's identity at the new epoch", lambda: a2.identity()["Epoch"] == epoch + 1, timeout=5)
    running = assert_nothing_runs_twice(region)
    assert all(running.get(i) == ["a1"] for i in moved), running
    assert fe.statuses(tea, moved) == {i: "Running" for i in moved}
    assert_runs_hostname(tea, moved[:1])


# ---------------------------------------------------------------------------------------------
# The host API refuses bad input
# ---------------------------------------------------------------------------------------------


def host_spec(name: str, zone: str) -> dict:
    return {"Name": name, "Zone": zone, "Capacity": {"vcpus": 4, "memory_mib": 2048, "gpus": 0, "local_disk_gib": 0},
            "GpuModel": None, "LocalDiskCategory": None, "Simulated": False, "Protocol": 1, "AgentVersion": "0"}


def v3_signed_headers(endpoint: str, path: str, body: bytes, ak: str, secret: str) -> dict:
    """A tenant's ACS3-HMAC-SHA256 signature over a host API request."""
    headers = {
        "host": endpoint,
        "x-acs-action": "Heartbeat",
        "x-acs-version": fe.API_VERSION,
        "x-acs-date": fe.utc_timestamp(),
        "x-acs-signature-nonce": uuid.uuid4().hex,
        "x-acs-content-sha256": hashlib.sha256(body).hexdigest(),
    }
    signed = sorted(headers)
    canon = "\n".join(["POST", path, "", "".join(f"{h}:{headers[h]}\n" for h in signed), ";".join(signed),
                       headers["x-acs-content-sha256"]])
    sts = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canon.encode()).hexdigest()
    sig = hmac.new(secret.encode(), sts.encode(), hashlib.sha256).hexdigest()
    headers["Authorization"] = f"ACS3-HMAC-SHA256 Credential={ak},SignedHeaders={';'.join(signed)},Signature={sig}"
    headers["Content-Type"] = "application/json"
    return headers


def refused(r: requests.Response, status: int, code: str) -> dict:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers.get("Content-Type", "").startswith("application/json"), r.headers
    body = r.json()
    assert body.get("Code") == code, body
    assert isinstance(body.get("Message"), str) and body["Message"], body
    return body


def snapshot(region, tea) -> tuple:
    hosts = {n: {k: v for k, v in h.items() if k != "LastHeartbeat"} for n, h in region.hosts().items()}
    instances = sorted((i["InstanceId"], i["Status"]) for i in tea.call(
        "DescribeInstances", {"RegionId": fe.REGION, "PageSize": 100})["Instances"]["Instance"])
    return hosts, instances


def test_the_host_api_refuses_bad_input_and_nothing_changes(region):
    tea = region.tea()
    url = f"http://{region.api}/host/v1"
    a1, a2 = region.agents["a1"], region.agents["a2"]
    s = requests.Session()
    bearer = lambda t: {"Authorization": f"Bearer {t}"}  # noqa: E731
    before = snapshot(region, tea)

    # A join token that was never made.
    refused(s.post(f"{url}/register", json=host_spec("intruder-1", ZONE_A), headers=bearer("jt-0000.nothing"),
                   timeout=10), 401, "Unauthorized")
    # A revoked one.
    token = region.token(ZONE_A)
    assert region.cli_json("host", "token", "revoke", token)["Revoked"] is True
    refused(s.post(f"{url}/register", json=host_spec("intruder-2", ZONE_A), headers=bearer(token), timeout=10),
            401, "Unauthorized")
    # A tenant's access key, however well signed, opens nothing here.
    out = region.cli_json("account", "create", f"hosts-{uuid.uuid4().hex[:6]}")
    body = json.dumps({"Epoch": 1, "Instances": 0}).encode()
    headers = v3_signed_headers(region.api, "/host/v1/heartbeat", body, out["AccessKeyId"], out["AccessKeySecret"])
    e = refused(s.post(f"{url}/heartbeat", data=body, headers=headers, timeout=10), 401, "Unauthorized")
    assert "access key" in e["Message"], e
    # Garbage instead of JSON, from a real host.
    cred = a1.identity()["Credential"]
    refused(s.post(f"{url}/heartbeat", data=b'{"Epoch": 1, "Inst', headers={**bearer(cred),
                                                                          "Content-Type": "application/json"},
                   timeout=10), 400, "BadRequest")
    # A path the host API does not have.
    refused(s.get(f"{url}/instances", headers=bearer(cred), timeout=10), 404, "NotFound")
    refused(s.post(f"{url}/register/again", json={}, headers=bearer(cred), timeout=10), 404, "NotFound")
    refused(s.post(f"{url}/", json={}, headers=bearer(cred), timeout=10), 404, "NotFound")
    # A path asked with a method it does not take.
    r = s.get(f"{url}/register", headers=bearer(cred), timeout=10)
    refused(r, 405, "MethodNotAllowed")
    assert r.headers.get("Allow") == "POST", r.headers
    # A host reporting on an instance it was not given: a1 says a3's instance halted.
    other = region.placed["a3"]
    report = {"Epoch": region.hosts()["a1"]["Epoch"],
              "Events": [{"InstanceId": other, "Event": "Halted", "Error": None}], "Results": []}
    e = refused(s.post(f"{url}/report", json=report, headers=bearer(cred), timeout=10), 403, "Forbidden")
    assert other in e["Message"], e
    # A second host under a name the region has already.
    token = region.token(ZONE_A)
    refused(s.post(f"{url}/register", json=host_spec(a1.host_name, ZONE_A), headers=bearer(token), timeout=10),
            409, "Conflict")
    # A stale epoch: a2's credential with the epoch it worked under before it was fenced.
    cred2 = a2.identity()["Credential"]
    current = region.hosts()["a2"]["Epoch"]
    old = current - 1
    e = refused(s.post(f"{url}/heartbeat", json={"Epoch": old, "Instances": 0}, headers=bearer(cred2), timeout=10),
                409, "Fenced")
    assert e.get("Epoch") == current, e
    # ... and its report that the copies it had before are halted.
    stale = {"Epoch": old, "Results": [],
             "Events": [{"InstanceId": i, "Event": "Halted", "Error": None} for i in region.evacuated]}
    refused(s.post(f"{url}/report", json=stale, headers=bearer(cred2), timeout=10), 409, "Fenced")

    assert snapshot(region, tea) == before
    assert fe.statuses(tea, [other]) == {other: "Running"}
    assert_nothing_runs_twice(region)

