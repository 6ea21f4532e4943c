"""Alibaba's wire formats as real tools use them: XML answers and errors (V2 GET and POST, V3
with an Accept header), timestamps with fractions of a second, field order of the recorded ECS
answers, CreateInstance then StartInstance at once, what happens to unknown, repeated and
wrong-case parameter names, and Apache Libcloud's ECS driver, unchanged."""

from __future__ import annotations

import ast
import datetime as dt
import json
import time
import xml.etree.ElementTree as ET

import pytest

import feiyun_e2e as fe

XML_TYPE = "text/xml;charset=utf-8"
JSON_TYPE = "application/json;charset=utf-8"
RECORDED = json.loads((fe.E2E_DIR / "data" / "recorded_field_order.json").read_text())


def parse_xml(r, root: str) -> ET.Element:
    assert r.headers["Content-Type"] == XML_TYPE, r.headers
    assert r.text.startswith('<?xml version="1.0" encoding="UTF-8"?>'), r.text[:200]
    doc = ET.fromstring(r.content)
    assert doc.tag == root, r.text[:300]
    return doc


def assert_same(elem: ET.Element, value, path: str = "", skip: frozenset = frozenset()) -> None:
    """The XML element says what the JSON value says, in the same order: a field is an element
    of its name, a list its items repeated under the list's name."""
    if isinstance(value, dict):
        expected: list[tuple[str, object]] = []
        for k, v in value.items():
            expected += [(k, item) for item in v] if isinstance(v, list) else [(k, v)]
        tags = [c.tag for c in elem]
        assert tags == [k for k, _ in expected], f"{path}: {tags} != {[k for k, _ in expected]}"
        for child, (k, v) in zip(elem, expected):
            if k not in skip:
                assert_same(child, v, f"{path}/{k}")
        return
    text = elem.text or ""
    assert len(elem) == 0, f"{path}: {ET.tostring(elem)[:200]}"
    if value is None:
        assert text == "", path
    elif isinstance(value, bool):
        assert text == ("true" if value else "false"), f"{path}: {text!r} != {value!r}"
    elif isinstance(value, (int, float)):
        assert float(text) == float(value), f"{path}: {text!r} != {value!r}"
    else:
        assert text == value, f"{path}: {text!r} != {value!r}"


def json_and_xml(raw: fe.RawClient, action: str, params: dict, *, version: str = fe.API_VERSION,
                 method: str = "GET", body: bool = False) -> tuple[dict, ET.Element]:
    rj = raw.send_v2(action, {**params, "Format": "JSON"}, version=version, method=method, body=body)
    rx = raw.send_v2(action, {**params, "Format": "XML"}, version=version, method=method, body=body)
    assert rj.status_code == 200 and rx.status_code == 200, (rj.text[:300], rx.text[:300])
    assert rj.headers["Content-Type"] == JSON_TYPE
    return rj.json(), parse_xml(rx, f"{action}Response")


# ---- XML answers --------------------------------------------------------------------------------

PRODUCTS = [
    # (version, action, params, method, form body)
    (fe.API_VERSION, "DescribeRegions", {}, "GET", False),
    (fe.API_VERSION, "DescribeZones", {"RegionId": fe.REGION}, "POST", False),
    (fe.API_VERSION, "DescribeInstanceTypes", {"InstanceTypes": [fe.SMALL_TYPE, "ecs.g7.large"]}, "POST", True),
    (fe.API_VERSION, "DescribeImages", {"RegionId": fe.REGION}, "GET", False),
    (fe.BSS_VERSION, "QueryAccountBalance", {}, "GET", False),
    (fe.BSS_VERSION, "GetPayAsYouGoPrice", {"ProductCode": "ecs", "SubscriptionType": "PayAsYouGo",
                                            "ModuleList": [{"ModuleCode": "InstanceType", "PriceType": "Hour",
                                                            "Config": f"InstanceType:{fe.SMALL_TYPE}"}]},
     "POST", True),
    ("2026-11-01", "ListHosts", {}, "GET", False),
]


@pytest.mark.parametrize("version,action,params,method,body", PRODUCTS, ids=[p[1] for p in PRODUCTS])
def test_each_product_answers_in_xml_what_it_answers_in_json(raw, version, action, params, method, body):
    as_json, as_xml = json_and_xml(raw, action, params, version=version, method=method, body=body)
    assert as_xml.find("RequestId").text and as_xml.find("RequestId").text != as_json["RequestId"]
    assert_same(as_xml, as_json, skip=frozenset({"RequestId"}))


def test_instances_in_xml(raw, track):
    ids = track.add(fe.run_instances(raw, amount=2, tags={"env": "a<b&c>"}))
    fe.wait_status(raw, ids, "Running")
    params = {"RegionId": fe.REGION, "InstanceIds": json.dumps(ids)}
    as_json, as_xml = json_and_xml(raw, "DescribeInstances", params)
    assert sorted(i.findtext("InstanceId") for i in as_xml.findall("Instances/Instance")) == sorted(ids)
    assert as_xml.findtext("Instances/Instance/Tags/Tag/TagValue") == "a<b&c>"
    assert_same(as_xml, as_json, skip=frozenset({"RequestId"}))
    as_json, as_xml = json_and_xml(raw, "DescribeInstanceAttribute", {"InstanceId": ids[0]}, method="POST")
    assert_same(as_xml, as_json, skip=frozenset({"RequestId"}))
    # A batch answer, and an answer with nothing but the request id.
    r = raw.send_v2("RebootInstances", {"RegionId": fe.REGION, "InstanceId": ids, "Format": "XML"})
    doc = parse_xml(r, "RebootInstancesResponse")
    assert [x.findtext("Code") for x in doc.findall("InstanceResponses/InstanceResponse")] == ["200", "200"]
    fe.wait_status(raw, ids, "Running")
    r = raw.send_v2("StopInstance", {"InstanceId": ids[0], "Format": "XML"}, method="GET")
    doc = parse_xml(r, "StopInstanceResponse")
    assert [c.tag for c in doc] == ["RequestId"]


def test_v3_asks_for_xml_with_its_accept_header(raw):
    r = raw.send_v3("DescribeRegions", headers={"accept": "application/xml"})
    doc = parse_xml(r, "DescribeRegionsResponse")
    assert doc.findtext("Regions/Region/RegionId") == fe.REGION
    r = raw.send_v3("DescribeRegions", headers={"accept": "application/json"})
    assert r.headers["Content-Type"] == JSON_TYPE and r.json()["Regions"]["Region"][0]["RegionId"] == fe.REGION
    r = raw.send_v3("DescribeUnicorns", headers={"accept": "text/xml"})
    assert r.status_code == 404
    assert parse_xml(r, "Error").findtext("Code") == "InvalidAction.NotFound"


def test_format_names_any_case_and_nothing_else(raw):
    r = raw.send_v2("DescribeRegions", {"Format": "xml"}, method="GET")
    parse_xml(r, "DescribeRegionsResponse")
    r = raw.send_v2("DescribeRegions", {"Format": "json"}, method="GET")
    assert r.headers["Content-Type"] == JSON_TYPE
    r = raw.send_v2("DescribeRegions", {"Format": "YAML"})
    assert r.status_code == 400 and r.json()["Code"] == "InvalidParameter.Format", r.text


# ---- XML errors ---------------------------------------------------------------------------------

def error_of(r, status: int, code: str) -> ET.Element:
    assert r.status_code == status, r.text[:300]
    doc = parse_xml(r, "Error")
    assert doc.findtext("Code") == code, r.text[:300]
    return doc


@pytest.mark.parametrize("method,body", [("GET", False), ("POST", False), ("POST", True)])
def test_errors_in_xml(raw, method, body):
    xml = {"Format": "XML"}
    kw = {"method": method, "body": body}
    doc = error_of(raw.send_v2("DescribeInstances", xml, **kw), 400, "MissingParameter")
    assert [c.tag for c in doc] == ["RequestId", "HostId", "Code", "Message", "Recommend"]
    assert doc.findtext("HostId") == raw.endpoint
    assert doc.findtext("Message") == ('The input parameter "RegionId" that is mandatory for processing this '
                                       'request is not supplied.')
    error_of(raw.send_v2("DescribeUnicorns", xml, **kw), 404, "InvalidAction.NotFound")
    error_of(raw.send_v2("DescribeRegions", xml, version="2099-01-01", **kw), 400, "InvalidVersion")
    doc = error_of(raw.send_v2("DescribeRegions", xml, secret="wrong", **kw), 400, "SignatureDoesNotMatch")
    assert ":" in doc.findtext("Message")
    doc = error_of(raw.send_v2("StartInstance", {**xml, "InstanceId": "i-nothere"}, **kw), 404,
                   "InvalidInstanceId.NotFound")
    # BSS errors keep their envelope's fields.
    doc = error_of(raw.send_v2("QueryBill", xml, version=fe.BSS_VERSION, **kw), 400, "MissingParameter")
    assert [c.tag for c in doc] == ["RequestId", "HostId", "Code", "Message", "Success", "Data"]
    assert doc.findtext("Success") == "false"


def test_libcloud_reads_our_xml_errors(server):
    from libcloud.common.exceptions import BaseHTTPError
    drv = libcloud_driver(server)
    with pytest.raises(BaseHTTPError) as e:
        drv.ex_start_node(type("N", (), {"id": "i-nothere"})())
    # Libcloud's parser turns our <Error> into a dict, which it hands over as text.
    err = ast.literal_eval(e.value.message)
    assert err["code"] == "InvalidInstanceId.NotFound" and err["host_id"] == server.endpoint, err
    assert err["request_id"], err


# ---- Timestamps ---------------------------------------------------------------------------------

def stamp(seconds: float = 0, digits: int = 3, offset_hours: int | None = None) -> str:
    t = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=seconds)
    if offset_hours is not None:
        t = t.astimezone(dt.timezone(dt.timedelta(hours=offset_hours)))
    text = t.strftime("%Y-%m-%dT%H:%M:%S")
    if digits:
        text += "." + (t.strftime("%f") + "000")[:digits]
    return text + ("Z" if offset_hours is None else t.strftime("%z")[:3] + ":" + t.strftime("%z")[3:])


@pytest.mark.parametrize("method,body", [("GET", False), ("POST", False), ("POST", True)])
def test_fractional_timestamps_are_accepted(raw, method, body):
    for ts in (stamp(), stamp(digits=1), stamp(digits=6), stamp(digits=9), stamp(digits=0, offset_hours=8),
               stamp(digits=3, offset_hours=-5)):
        r = raw.send_v2("DescribeRegions", {}, timestamp=ts, method=method, body=body)
        assert r.status_code == 200, (ts, r.text[:300])
    r = raw.send_v3("DescribeRegions", date=stamp())
    assert r.status_code == 200, r.text[:300]


def test_malformed_timestamps_are_refused(raw):
    now = dt.datetime.now(dt.timezone.utc)
    for ts in (now.strftime("%Y-%m-%dT%H:%M:%S"), now.strftime("%Y-%m-%d %H:%M:%SZ"),
               now.strftime("%Y-%m-%dT%H:%M:%S.Z"), str(int(now.timestamp())), now.strftime("%Y%m%dT%H%M%SZ")):
        r = raw.send_v2("DescribeRegions", {}, timestamp=ts)
        assert r.status_code == 400 and r.json()["Code"] == "InvalidTimeStamp.Format", (ts, r.text)
    r = raw.send_v3("DescribeRegions", date=now.strftime("%Y-%m-%dT%H:%M:%S"))
    assert r.status_code == 400 and r.json()["Code"] == "InvalidTimeStamp.Format", r.text


def test_fractional_timestamps_keep_freshness_and_nonces(raw):
    for ts in (stamp(seconds=-20 * 60), stamp(seconds=20 * 60), stamp(seconds=-20 * 60, offset_hours=8)):
        r = raw.send_v2("DescribeRegions", {}, timestamp=ts)
        assert r.status_code == 400 and r.json()["Code"] == "InvalidTimeStamp.Expired", (ts, r.text)
    signed = raw.signed_v2("DescribeRegions", {}, timestamp=stamp())
    assert raw.send_v2("DescribeRegions", signed_params=signed).status_code == 200
    r = raw.send_v2("DescribeRegions", signed_params=signed)
    assert r.status_code == 400 and r.json()["Code"] == "SignatureNonceUsed", r.text


# ---- Field order --------------------------------------------------------------------------------

def objects_at(answer, path: str) -> list:
    level = [answer]
    if path == ".":
        return level
    for segment in path.split("/"):
        name, items = (segment[:-2], True) if segment.endswith("[]") else (segment, False)
        nxt = []
        for v in level:
            if isinstance(v, dict) and name in v:
                nxt += v[name] if items else [v[name]]
        level = nxt
    return level


def assert_recorded_order(action: str, answer: dict) -> int:
    """Every field of the recorded answer is in ours, in the recorded order. Returns how many
    objects were checked."""
    checked = 0
    for path, want in RECORDED[action].items():
        for obj in objects_at(answer, path):
            got = list(obj)
            missing = [k for k in want if k not in got]
            assert not missing, f"{action} {path}: {missing} missing from {got}"
            at = [got.index(k) for k in want]
            assert at == sorted(at), f"{action} {path}: {got} is not in the order of {want}"
            checked += 1
    return checked


def test_field_order_is_that_of_the_recorded_answers(raw, track):
    ids = track.add(fe.run_instances(raw, tags={"k": "v"}))
    fe.wait_status(raw, ids, "Running")
    r = raw.send_v2("DescribeInstances", {"RegionId": fe.REGION, "InstanceIds": json.dumps(ids)})
    answer = json.loads(r.text)  # dicts keep the document's order
    assert list(answer) == ["Instances", "TotalCount", "RequestId", "PageSize", "PageNumber", "NextToken"]
    assert assert_recorded_order("DescribeInstances", answer) >= 10
    r = raw.send_v2("DescribeInstanceAttribute", {"InstanceId": ids[0]})
    answer = json.loads(r.text)
    assert list(answer)[:4] == ["Status", "SerialNumber", "CreationTime", "RequestId"]
    assert assert_recorded_order("DescribeInstanceAttribute", answer) >= 4
    # The XML has the same order (the same tree is written).
    r = raw.send_v2("DescribeInstances", {"RegionId": fe.REGION, "InstanceIds": json.dumps(ids), "Format": "XML"})
    inst = parse_xml(r, "DescribeInstancesResponse").find("Instances/Instance")
    tags = [c.tag for c in inst]
    want = RECORDED["DescribeInstances"]["Instances/Instance[]"]
    assert [t for t in tags if t in want] == want


# ---- CreateInstance, then StartInstance at once --------------------------------------------------

def test_create_instance_then_start_at_once(raw, server, track):
    started = time.monotonic()
    iid = raw.call("CreateInstance", {"RegionId": fe.REGION, "ImageId": "feiyun_busybox_x64",
                                      "InstanceType": fe.SMALL_TYPE})["InstanceId"]
    took = time.monotonic() - started
    track.add(iid)
    # Answered once the host has set up the instance: it is Stopped, and quickly.
    assert fe.statuses(raw, [iid]) == {iid: "Stopped"}
    assert took < 1.0, took
    st = fe.runc_state(server.data_dir, iid)
    assert st is None or st["status"] != "running", st
    raw.call("StartInstance", {"InstanceId": iid})
    fe.wait_status(raw, iid, "Running")
    raw.call("DeleteInstance", {"InstanceId": iid, "Force": True})
    fe.wait_gone(raw, [iid])


# ---- Parameter names: unknown, repeated, wrong case ----------------------------------------------

def test_unknown_parameters_are_ignored(raw, track):
    ids = track.add(fe.run_instances(raw))
    everything = raw.call("DescribeInstances", {"RegionId": fe.REGION, "PageSize": 100})["TotalCount"]
    # InstanceId is not a DescribeInstances parameter (InstanceIds is): it filters nothing.
    r = raw.call("DescribeInstances", {"RegionId": fe.REGION, "PageSize": 100, "InstanceId": "i-nothere"})
    assert r["TotalCount"] == everything >= 1
    assert raw.call("DescribeRegions", {"Unicorn": "1", "Tag.1.Key": "x"})["Regions"]["Region"]
    fe.wait_status(raw, ids, "Running")


def test_wrong_case_names_are_other_names(raw):
    fe.expect_error(raw.call, "DescribeInstances", {"regionId": fe.REGION}, status=400, code="MissingParameter")
    e = fe.expect_error(raw.call, "StartInstance", {"instanceId": "i-nothere"}, status=400, code="MissingParameter")
    assert '"InstanceId"' in e.message
    # `format` is not `Format`: the answer stays JSON.
    r = raw.send_v2("DescribeRegions", {"format": "XML"}, method="GET")
    assert r.status_code == 200 and r.headers["Content-Type"] == JSON_TYPE
    # Lowercase `timestamp` is not `Timestamp`, which is then missing.
    plist = [(("timestamp" if k == "Timestamp" else k), v) for k, v in raw.v2_params("DescribeRegions", {})]
    plist.append(("Signature", fe.v2_signature("POST", plist, raw.secret)))
    r = raw.send_v2("DescribeRegions", signed_params=plist)
    assert r.status_code == 400 and r.json()["Code"] == "MissingParameter", r.text
    assert '"Timestamp"' in r.json()["Message"]


@pytest.mark.parametrize("where", ["query", "body", "both"])
def test_repeated_names_are_refused(raw, track, where):
    ids = track.add(fe.run_instances(raw))
    plist = raw.v2_params("StopInstance", {"InstanceId": ids[0]}) + [("InstanceId", "i-other")]
    plist.append(("Signature", fe.v2_signature("POST", plist, raw.secret)))
    enc = lambda pairs: "&".join(f"{fe.pct(k)}={fe.pct(v)}" for k, v in pairs)  # noqa: E731
    if where == "query":
        r = raw.session.post(raw.url + "?" + enc(plist), timeout=60)
    elif where == "body":
        r = raw.session.post(raw.url, data=enc(plist), timeout=60,
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
    else:
        dup = [p for p in plist if p[0] == "InstanceId"][-1]
        rest = [p for p in plist if p is not dup]
        r = raw.session.post(raw.url + "?" + enc([dup]), data=enc(rest), timeout=60,
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["Code"] == "InvalidParameter" and "InstanceId" in body["Message"], body
    fe.wait_status(raw, ids, "Running")  # nothing was stopped


# ---- Apache Libcloud's ECS driver, unchanged -------------------------------------------------------

def libcloud_driver(server):
    from libcloud.compute.drivers.ecs import ECSDriver
    host, port = server.endpoint.split(":")
    return ECSDriver(server.creds["AccessKeyId"], server.creds["AccessKeySecret"], region=fe.REGION,
                     secure=False, host=host, port=int(port))


def test_libcloud_lists_locations_sizes_images_and_nodes(server, raw, track):
    drv = libcloud_driver(server)
    assert [loc.id for loc in drv.list_locations()] == [fe.REGION]
    zones = drv.ex_list_zones()
    assert [z.id for z in zones] == [fe.ZONE]
    assert "Instance" in zones[0].available_resource_types
    assert fe.SMALL_TYPE in zones[0].available_instance_types
    sizes = {s.id: s for s in drv.list_sizes()}
    assert sizes[fe.SMALL_TYPE].ram == 0.5 and sizes[fe.SMALL_TYPE].extra["cpu_core_count"] == 1
    images = drv.list_images()
    assert "feiyun_busybox_x64" in [i.id for i in images]
    ids = track.add(fe.run_instances(raw, amount=2))
    fe.wait_status(raw, ids, "Running")
    nodes = {n.id: n for n in drv.list_nodes()}
    assert set(ids) <= set(nodes)
    assert nodes[ids[0]].state == "running" and nodes[ids[0]].extra["instance_type"] == fe.SMALL_TYPE
    assert [n.id for n in drv.list_nodes(ex_node_ids=[ids[1]])] == [ids[1]]


def test_libcloud_reboots_stops_starts_and_destroys(server, raw, track):
    drv = libcloud_driver(server)
    ids = track.add(fe.run_instances(raw))
    fe.wait_status(raw, ids, "Running")
    node = drv.list_nodes(ex_node_ids=ids)[0]
    assert drv.reboot_node(node) is True
    assert drv.stop_node(node) is True
    assert fe.statuses(raw, ids) == {ids[0]: "Stopped"}
    assert drv.start_node(node) is True
    assert fe.statuses(raw, ids) == {ids[0]: "Running"}
    # destroy_node stops a running node first, then deletes it.
    assert drv.destroy_node(node) is True
    fe.wait_gone(raw, ids)


def test_libcloud_create_node_sequence(server, raw, track):
    """create_node's own calls, made through Libcloud's connection and parser: CreateInstance,
    DescribeInstances, StartInstance at once, then waiting for Running. (create_node itself
    also sends a security group; see the next test.)"""
    from libcloud.utils.xml import findtext
    drv = libcloud_driver(server)
    resp = drv.connection.request(drv.path, params={
        "Action": "CreateInstance", "RegionId": drv.region, "ImageId": "feiyun_busybox_x64",
        "InstanceType": fe.SMALL_TYPE, "InstanceName": "libcloud-node"})
    node_id = findtext(resp.object, xpath="InstanceId", namespace=drv.namespace)
    track.add(node_id)
    nodes = drv.list_nodes(ex_node_ids=[node_id])
    assert len(nodes) == 1 and nodes[0].state == "stopped"
    assert drv.ex_start_node(nodes[0]) is True
    assert drv.list_nodes(ex_node_ids=[node_id])[0].state == "running"
    assert drv.destroy_node(nodes[0]) is True
    fe.wait_gone(raw, [node_id])


def test_libcloud_create_node(server, raw, track):
    """Libcloud's create_node requires a security group (ex_security_group_id): one made through
    the API."""
    r = raw.send_v2("CreateSecurityGroup", {"RegionId": fe.REGION, "SecurityGroupName": fe.unique("lc")})
    assert r.status_code == 200, r.text
    sg = r.json()["SecurityGroupId"]
    drv = libcloud_driver(server)
    size = [s for s in drv.list_sizes() if s.id == fe.SMALL_TYPE][0]
    image = [i for i in drv.list_images() if i.id == "feiyun_busybox_x64"][0]
    name = fe.unique("lc")
    try:
        node = drv.create_node(name=name, size=size, image=image, ex_security_group_id=sg)
        track.add(node.id)
        assert drv.list_nodes(ex_node_ids=[node.id])[0].state == "running"
        assert drv.destroy_node(node) is True
        fe.wait_gone(raw, [node.id])
    finally:
        left = [n.id for n in drv.list_nodes() if n.name == name]
        if left:
            fe.force_delete(raw, left)
            fe.wait_gone(raw, left)
        raw.send_v2("DeleteSecurityGroup", {"RegionId": fe.REGION, "SecurityGroupId": sg})


def test_libcloud_volumes_and_snapshots(server, raw, track):
    """Libcloud's volume calls, unchanged: create_volume, list_volumes, attach_volume (with the
    device name Libcloud documents, `/dev/xvdc`), create_volume_snapshot, list_volume_snapshots,
    detach_volume (which looks the instance up itself), destroy_volume_snapshot, destroy_volume.
    CreateSnapshot, AttachDisk, DetachDisk, DeleteDisk and DeleteSnapshot come without RegionId
    from Libcloud, which the server takes (RegionId is optional for them)."""
    from libcloud.compute.types import StorageVolumeState, VolumeSnapshotState

    drv = libcloud_driver(server)
    ids = track.add(fe.run_instances(raw))
    fe.wait_status(raw, ids, "Running")
    node = drv.list_nodes(ex_node_ids=ids)[0]
    name = fe.unique("lcvol")
    volumes: list[str] = []
    snapshots: list[str] = []

    def volume():
        found = drv.list_volumes(ex_volume_ids=[volumes[0]])
        assert len(found) == 1, found
        return found[0]

    def wait_volume(state):
        deadline = time.monotonic() + 60
        while (v := volume()).state != state:
            assert time.monotonic() < deadline, (v, v.extra)
            time.sleep(0.2)
        return v

    try:
        vol = drv.create_volume(size=20, name=name, ex_zone_id=fe.ZONE, ex_disk_category="cloud_efficiency",
                                ex_description="made by libcloud")
        volumes.append(vol.id)
        assert (vol.name, vol.size, vol.state) == (name, 20, StorageVolumeState.AVAILABLE), vol
        assert (vol.extra["zone_id"], vol.extra["category"], vol.extra["type"]) == (
            fe.ZONE, "cloud_efficiency", "data"), vol.extra
        assert vol.extra["portable"] is True and vol.extra["delete_with_instance"] is False, vol.extra
        everything = {v.id: v for v in drv.list_volumes()}
        assert vol.id in everything
        system = [v for v in everything.values() if v.extra["instance_id"] == node.id]
        assert [(v.extra["type"], v.state) for v in system] == [("system", StorageVolumeState.INUSE)], system

        # Libcloud documents devices as /dev/xvdb to /dev/xvdz (the API's old names); the
        # disk is attached as /dev/vdc.
        assert drv.attach_volume(node, vol, device="/dev/xvdc") is True
        v = wait_volume(StorageVolumeState.INUSE)
        assert (v.extra["instance_id"], v.extra["device"]) == (node.id, "/dev/vdc"), v.extra
        r = fe.run_command(raw, node.id, "i=0; while ! grep -q ' /mnt/vdc ' /proc/mounts; do i=$((i+1)); "
                                         "[ $i -gt 50 ] && exit 9; sleep 0.1; done; echo lc > /mnt/vdc/f; cat /mnt/vdc/f")
        assert r["ExitCode"] == 0 and fe.unb64(r["Output"]) == "lc\n", r

        snap = drv.create_volume_snapshot(vol, name=fe.unique("lcsnap"), ex_description="by libcloud")
        snapshots.append(snap.id)
        assert snap.extra["source_disk_id"] == vol.id and snap.extra["source_disk_size"] == 20, snap.extra
        deadline = time.monotonic() + 60
        while (s := drv.list_volume_snapshots(vol)[0]).state != VolumeSnapshotState.AVAILABLE:
            assert s.state == VolumeSnapshotState.CREATING and time.monotonic() < deadline, (s, s.extra)
            time.sleep(0.2)
        assert [x.id for x in drv.list_volume_snapshots(vol)] == [snap.id]

        assert drv.detach_volume(vol) is True
        v = wait_volume(StorageVolumeState.AVAILABLE)
        assert (v.extra["instance_id"], v.extra["device"]) == ("", ""), v.extra
        assert drv.destroy_volume_snapshot(snap) is True
        snapshots.remove(snap.id)
        assert drv.list_volume_snapshots(vol) == []
        assert drv.destroy_volume(v) is True
        volumes.remove(vol.id)
        assert drv.list_volumes(ex_volume_ids=[vol.id]) == []
    finally:
        for sid in snapshots:
            raw.send_v2("DeleteSnapshot", {"SnapshotId": sid, "Force": True})
        for did in volumes:
            d = raw.call("DescribeDisks", {"RegionId": fe.REGION, "DiskIds": json.dumps([did])})["Disks"]["Disk"]
            if d and d[0]["InstanceId"]:
                raw.call("DetachDisk", {"InstanceId": d[0]["InstanceId"], "DiskId": did})
                deadline = time.monotonic() + 60
                while raw.call("DescribeDisks", {"RegionId": fe.REGION, "DiskIds": json.dumps([did])})[
                        "Disks"]["Disk"][0]["Status"] != "Available" and time.monotonic() < deadline:
                    time.sleep(0.2)
            if d:
                raw.send_v2("DeleteDisk", {"DiskId": did})
