"""Storage end to end, through the real binary and the official Python SDK (alibabacloud-ecs20140526):
data disks made, attached, written inside the instance (Cloud Assistant), detached, attached to
another instance and read back, across stop and start; DescribeDisks' fields, filters and pages;
DeleteWithInstance; snapshots and ResetDisk; disks from snapshots; images captured from an
instance and imported from a root-filesystem tarball, shared with another account and refused
deletion while in use; key pairs in /root/.ssh/authorized_keys; another tenant's resources and
bad requests refused with nothing changed; disks billed by size and time as DescribePrice quotes.

Every test deletes what it made (instances, disks, snapshots, images, key pairs), also when it
fails, and checks that the host removed the files of the disks it deleted and every loop device
bound to them.
"""

from __future__ import annotations

import json
import subprocess
import tarfile
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import pytest

import feiyun_e2e as fe
from conftest import ServerFactory

IMAGE = "feiyun_busybox_x64"


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def wait_for(fn, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = fn()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timeout after {timeout}s waiting for {what}; last: {last!r}")
        time.sleep(interval)


def disks(client, ids=None, **filters) -> list[dict]:
    params = {"RegionId": fe.REGION, "PageSize": 100, **filters}
    if ids is not None:
        params["DiskIds"] = json.dumps(ids)
    return client.call("DescribeDisks", params)["Disks"]["Disk"]


def disk(client, disk_id: str) -> dict:
    found = disks(client, [disk_id])
    assert len(found) == 1, found
    return found[0]


def wait_disk(client, disk_id: str, status: str, timeout: float = 60) -> dict:
    last = {}

    def ready():
        nonlocal last
        found = disks(client, [disk_id])
        last = found[0] if found else {}
        return last if last.get("Status") == status else None

    try:
        return wait_for(ready, timeout, f"disk {disk_id} {status}")
    except AssertionError:
        raise AssertionError(f"disk {disk_id} not {status} after {timeout}s: {last}") from None


def snapshot(client, snapshot_id: str) -> dict | None:
    found = client.call("DescribeSnapshots", {"RegionId": fe.REGION, "SnapshotIds": json.dumps([snapshot_id])})
    s = found["Snapshots"]["Snapshot"]
    return s[0] if s else None


def wait_snapshot(client, snapshot_id: str, timeout: float = 120) -> dict:
    s = wait_for(lambda: (lambda x: x if x and x["Status"] != "progressing" else None)(snapshot(client, snapshot_id)),
                 timeout, f"snapshot {snapshot_id}")
    assert s["Status"] == "accomplished", s
    return s


def image(client, image_id: str) -> dict | None:
    res = client.call("DescribeImages", {"RegionId": fe.REGION, "ImageId": image_id,
                                         "Status": "Creating,Available,CreateFailed,UnAvailable"})
    found = res["Images"]["Image"]
    return found[0] if found else None


def wait_image(client, image_id: str, timeout: float = 180) -> dict:
    i = wait_for(lambda: (lambda x: x if x and x["Status"] != "Creating" else None)(image(client, image_id)),
                 timeout, f"image {image_id}")
    assert i["Status"] == "Available", i
    return i


def sh(client, iid: str, script: str, timeout: float = 60) -> str:
    """Run a shell script in the instance; it must succeed. Returns its output."""
    r = fe.run_command(client, iid, script, timeout=timeout)
    assert r["InvocationStatus"] == "Success" and r["ExitCode"] == 0, (script, r, fe.unb64(r.get("Output", "")))
    return fe.unb64(r["Output"])


def mounted(dev: str) -> str:
    """A shell line that waits (5 s at most) for /mnt/<dev> to be a mount in the instance."""
    return (f"i=0; while ! grep -q ' /mnt/{dev} ' /proc/mounts; do i=$((i+1)); "
            f"[ $i -gt 50 ] && echo 'not mounted' && exit 9; sleep 0.1; done; ")


def run(client, **extra) -> str:
    return fe.run_instances(client, **extra)[0]


def account_id(srv: fe.FeiyunServer, name: str) -> str:
    out = srv.cli("account", "list", "--data-dir", str(srv.data_dir))
    assert out.returncode == 0, out.stderr
    ids = [a["AccountId"] for a in json.loads(out.stdout)["Accounts"] if a["AccountName"] == name]
    assert len(ids) == 1, out.stdout
    return ids[0]


def loop_devices_of(data_dir: Path) -> list[str]:
    out = subprocess.run(["losetup", "-l", "-n", "-O", "NAME,BACK-FILE"], capture_output=True, text=True,
                         timeout=30)
    root = str(Path(data_dir).resolve())
    return [line for line in out.stdout.splitlines() if root in line]


class Made:
    """What a test made, deleted in order at its end (instances, images, disks, snapshots, key
    pairs), whatever happened; then the host must hold no file or loop device of a deleted disk."""

    def __init__(self, srv: fe.FeiyunServer, client):
        self.srv = srv
        self.client = client
        self.instances: list[tuple[object, str]] = []
        self.disks: list[tuple[object, str]] = []
        self.snapshots: list[tuple[object, str]] = []
        self.images: list[tuple[object, str]] = []
        self.key_pairs: list[tuple[object, str]] = []

    def _add(self, where, ident, client):
        where.append((client or self.client, ident))
        return ident

    def instance(self, ident, client=None):
        return self._add(self.instances, ident, client)

    def disk(self, ident, client=None):
        return self._add(self.disks, ident, client)

    def snapshot(self, ident, client=None):
        return self._add(self.snapshots, ident, client)

    def image(self, ident, client=None):
        return self._add(self.images, ident, client)

    def key_pair(self, ident, client=None):
        return self._add(self.key_pairs, ident, client)

    def cleanup(self) -> list[str]:
        problems: list[str] = []

        def attempt(what, fn):
            try:
                fn()
            except Exception as e:  # noqa: BLE001
                problems.append(f"{what}: {e}")

        for c, iid in self.instances:
            def gone(c=c, iid=iid):
                if fe.describe(c, [iid]):
                    fe.force_delete(c, [iid])
                    fe.wait_gone(c, [iid])
            attempt(f"instance {iid}", gone)
        for c, mid in self.images:
            def unimage(c=c, mid=mid):
                if image(c, mid) is None:
                    return
                shares = c.call("DescribeImageSharePermission", {"RegionId": fe.REGION, "ImageId": mid})
                accounts = [a["AliyunId"] for a in shares["Accounts"]["Account"]]
                if accounts:
                    c.call("ModifyImageSharePermission", {"RegionId": fe.REGION, "ImageId": mid,
                                                          "RemoveAccount": accounts})
                c.call("DeleteImage", {"RegionId": fe.REGION, "ImageId": mid, "Force": True})
            attempt(f"image {mid}", unimage)
        for c, did in self.disks:
            def release(c=c, did=did):
                found = disks(c, [did])
                if not found:
                    return
                d = found[0]
                if d["Status"] in ("Attaching", "Detaching", "Creating", "ReIniting"):
                    d = wait_for(lambda: (lambda x: x if x and x[0]["Status"] in ("In_use", "Available") else None)(
                        disks(c, [did])), 60, f"disk {did} settled")[0]
                if d["Status"] == "In_use" and d["InstanceId"]:
                    c.call("DetachDisk", {"InstanceId": d["InstanceId"], "DiskId": did})
                    wait_disk(c, did, "Available")
                c.call("DeleteDisk", {"DiskId": did})
            attempt(f"disk {did}", release)
        for c, sid in self.snapshots:
            def drop(c=c, sid=sid):
                if snapshot(c, sid) is not None:
                    c.call("DeleteSnapshot", {"SnapshotId": sid, "Force": True})
            attempt(f"snapshot {sid}", drop)
        for c, name in self.key_pairs:
            def unkey(c=c, name=name):
                left = c.call("DescribeKeyPairs", {"RegionId": fe.REGION, "KeyPairName": name})
                if left["KeyPairs"]["KeyPair"]:
                    c.call("DeleteKeyPairs", {"RegionId": fe.REGION, "KeyPairNames": json.dumps([name])})
            attempt(f"key pair {name}", unkey)
        # The host removes a deleted disk's file, and the loop device bound to it.
        disk_dir = self.srv.data_dir / "host" / "disks"
        for _, did in self.disks:
            def no_file(did=did):
                wait_for(lambda: not list(disk_dir.glob(f"{did}.*")) or None, 10,
                         f"disk {did}'s files removed from the host")
                loops = [x for x in loop_devices_of(self.srv.data_dir) if did in x]
                assert not loops, f"loop devices left for {did}: {loops}"
            attempt(f"host files of {did}", no_file)
        return problems


@pytest.fixture
def made(server, raw):
    m = Made(server, raw)
    yield m
    problems = m.cleanup()
    if problems:
        pytest.fail("cleanup failed:\n" + "\n".join(problems), pytrace=False)


# ---------------------------------------------------------------------------------------------
# 1. Data disks through the typed SDK
# ---------------------------------------------------------------------------------------------


def test_data_disk_moves_between_instances_and_survives_stop_start(tea, made):
    from alibabacloud_ecs20140526 import models as m

    a = made.instance(run(tea))
    b = made.instance(run(tea))
    fe.wait_status(tea, [a, b], "Running")
    name = fe.unique("data")
    body = tea.typed("create_disk", m.CreateDiskRequest(region_id=fe.REGION, zone_id=fe.ZONE, size=20,
                                                        disk_category="cloud_efficiency", disk_name=name,
                                                        description="e2e data disk"))
    d = made.disk(body.disk_id)
    assert d.startswith("d-"), body.to_map()

    got = tea.typed("describe_disks", m.DescribeDisksRequest(region_id=fe.REGION, disk_ids=json.dumps([d])))
    assert got.total_count == 1
    x = got.disks.disk[0]
    assert (x.disk_id, x.disk_name, x.status, x.type, x.category, x.size) == (
        d, name, "Available", "data", "cloud_efficiency", 20)
    assert (x.instance_id, x.device, x.zone_id, x.portable, x.delete_with_instance) == ("", "", fe.ZONE, True, False)

    # Attached to a running instance: hot, at /mnt/vdb, as an ext4 filesystem of its size.
    tea.typed("attach_disk", m.AttachDiskRequest(instance_id=a, disk_id=d))
    x = wait_disk(tea, d, "In_use")
    assert (x["InstanceId"], x["Device"]) == (a, "/dev/vdb"), x
    assert x["Attachments"]["Attachment"][0]["InstanceId"] == a, x
    marker = fe.unique("on-disk")
    out = sh(tea, a, mounted("vdb") + f"echo {marker} > /mnt/vdb/file && sync && cat /mnt/vdb/file && "
                                      "df -k /mnt/vdb | tail -1 && grep ' /mnt/vdb ' /proc/mounts")
    lines = out.splitlines()
    assert lines[0] == marker, out
    total_kib = int(lines[1].split()[1])
    assert 19 * 1024 * 1024 < total_kib <= 20 * 1024 * 1024, out
    assert " ext4 " in lines[2], out

    # Stop and start: still attached, the data still there.
    tea.typed("stop_instance", m.StopInstanceRequest(instance_id=a))
    fe.wait_status(tea, a, "Stopped")
    x = disk(tea, d)
    assert (x["Status"], x["InstanceId"]) == ("In_use", a), x
    tea.typed("start_instance", m.StartInstanceRequest(instance_id=a))
    fe.wait_status(tea, a, "Running")
    assert sh(tea, a, mounted("vdb") + "cat /mnt/vdb/file").strip() == marker

    # Detached: gone from the running instance.
    tea.typed("detach_disk", m.DetachDiskRequest(instance_id=a, disk_id=d))
    x = wait_disk(tea, d, "Available")
    assert (x["InstanceId"], x["Device"]) == ("", ""), x
    assert x["DetachedTime"], x
    assert sh(tea, a, "grep -c ' /mnt/vdb ' /proc/mounts || true").strip() == "0"

    # Attached to the second instance (same zone) as /dev/vdc: the data is there.
    tea.typed("attach_disk", m.AttachDiskRequest(instance_id=b, disk_id=d, device="/dev/vdc"))
    x = wait_disk(tea, d, "In_use")
    assert (x["InstanceId"], x["Device"]) == (b, "/dev/vdc"), x
    assert sh(tea, b, mounted("vdc") + "cat /mnt/vdc/file").strip() == marker

    # DescribeDisks: b's system disk and its data disk, filters and pages.
    mine = disks(tea, InstanceId=b)
    assert [(y["Type"], y["Device"], y["Status"], y["InstanceId"]) for y in mine] == [
        ("system", "/dev/xvda", "In_use", b), ("data", "/dev/vdc", "In_use", b)], mine
    system = mine[0]
    assert system["DeleteWithInstance"] is True and system["Portable"] is False, system
    assert system["ImageId"] == IMAGE and system["Category"] == "cloud_essd", system
    assert [y["DiskId"] for y in disks(tea, InstanceId=b, DiskType="data")] == [d]
    assert [y["DiskId"] for y in disks(tea, InstanceId=b, DiskType="system")] == [system["DiskId"]]
    assert [y["DiskId"] for y in disks(tea, InstanceId=b, Status="Available")] == []
    assert [y["DiskId"] for y in disks(tea, DiskName=name)] == [d]
    assert [y["DiskId"] for y in disks(tea, [d, system["DiskId"]], Category="cloud_efficiency")] == [d]
    page = tea.call("DescribeDisks", {"RegionId": fe.REGION, "InstanceId": b, "PageSize": 1, "PageNumber": 2})
    assert (page["TotalCount"], page["PageSize"], page["PageNumber"]) == (2, 1, 2), page
    assert [y["DiskId"] for y in page["Disks"]["Disk"]] == [d], page
    first = tea.call("DescribeDisks", {"RegionId": fe.REGION, "InstanceId": b, "MaxResults": 10})
    assert first["NextToken"] == "" and len(first["Disks"]["Disk"]) == 2, first
    # a's system disk is listed too, with a's id.
    assert [(y["Type"], y["InstanceId"]) for y in disks(tea, InstanceId=a)] == [("system", a)]

    # DeleteWithInstance set afterwards is honoured: deleting b releases the disk with it.
    tea.typed("modify_disk_attribute", m.ModifyDiskAttributeRequest(disk_id=d, delete_with_instance=True))
    assert disk(tea, d)["DeleteWithInstance"] is True
    tea.typed("delete_instance", m.DeleteInstanceRequest(instance_id=b, force=True))
    fe.wait_gone(tea, [b])
    wait_for(lambda: not disks(tea, [d, system["DiskId"]]), 30, "b's disks released with it")
    fe.expect_error(tea.call, "DeleteDisk", {"DiskId": d}, status=404, code="InvalidDiskId.NotFound")


def test_data_disk_kept_when_its_instance_is_deleted(raw, made):
    """A disk made with RunInstances (DataDisk.1) with DeleteWithInstance=false outlives it."""
    iid = made.instance(run(raw, DataDisk=[{"Size": 20, "Category": "cloud_ssd", "DeleteWithInstance": False,
                                            "DiskName": "kept"}]))
    fe.wait_status(raw, iid, "Running")
    data = disks(raw, InstanceId=iid, DiskType="data")
    assert len(data) == 1, data
    d = made.disk(data[0]["DiskId"])
    x = wait_disk(raw, d, "In_use")
    assert (x["Device"], x["Category"], x["Size"], x["DeleteWithInstance"]) == ("/dev/vdb", "cloud_ssd", 20, False)
    sh(raw, iid, mounted("vdb") + "echo kept > /mnt/vdb/k")
    fe.force_delete(raw, [iid])
    fe.wait_gone(raw, [iid])
    x = wait_disk(raw, d, "Available")
    assert x["InstanceId"] == "", x
    # And its data comes along to the next instance.
    other = made.instance(run(raw))
    fe.wait_status(raw, other, "Running")
    raw.call("AttachDisk", {"InstanceId": other, "DiskId": d})
    wait_disk(raw, d, "In_use")
    assert sh(raw, other, mounted("vdb") + "cat /mnt/vdb/k").strip() == "kept"


# ---------------------------------------------------------------------------------------------
# 2. Snapshots
# ---------------------------------------------------------------------------------------------


def test_snapshot_reset_and_disk_from_snapshot(raw, made):
    iid = made.instance(run(raw))
    fe.wait_status(raw, iid, "Running")
    d = made.disk(raw.call("CreateDisk", {"RegionId": fe.REGION, "ZoneId": fe.ZONE, "Size": 20})["DiskId"])
    # A disk never attached holds no data: there is nothing to snapshot yet.
    fe.expect_error(raw.call, "CreateSnapshot", {"DiskId": d}, status=403, code="IncorrectDiskStatus.NeverAttached")
    raw.call("AttachDisk", {"InstanceId": iid, "DiskId": d})
    wait_disk(raw, d, "In_use")
    sh(raw, iid, mounted("vdb") + "echo A > /mnt/vdb/state && sync")

    sid = made.snapshot(raw.call("CreateSnapshot", {"DiskId": d, "SnapshotName": fe.unique("snap"),
                                                    "Description": "before B"})["SnapshotId"])
    s = wait_snapshot(raw, sid)
    assert (s["SourceDiskId"], s["SourceDiskType"], s["SourceDiskSize"], s["Progress"]) == (d, "data", "20", "100%")
    listed = raw.call("DescribeSnapshots", {"RegionId": fe.REGION, "DiskId": d})["Snapshots"]["Snapshot"]
    assert [x["SnapshotId"] for x in listed] == [sid], listed

    sh(raw, iid, "echo B > /mnt/vdb/state && sync")
    # Alibaba resets only a disk whose instance is stopped.
    fe.expect_error(raw.call, "ResetDisk", {"DiskId": d, "SnapshotId": sid}, status=403,
                    code="IncorrectInstanceStatus")
    assert sh(raw, iid, "cat /mnt/vdb/state").strip() == "B"
    raw.call("StopInstance", {"InstanceId": iid})
    fe.wait_status(raw, iid, "Stopped")
    raw.call("ResetDisk", {"DiskId": d, "SnapshotId": sid})
    wait_disk(raw, d, "In_use", timeout=120)
    raw.call("StartInstance", {"InstanceId": iid})
    fe.wait_status(raw, iid, "Running")
    assert sh(raw, iid, mounted("vdb") + "cat /mnt/vdb/state").strip() == "A"

    # A new disk from the snapshot carries its content (and is at least its size).
    fe.expect_error(raw.call, "CreateDisk", {"RegionId": fe.REGION, "ZoneId": fe.ZONE, "SnapshotId": sid,
                                             "Size": 10, "DiskCategory": "cloud_efficiency"},
                    status=403, code="InvalidDiskSize.TooSmall")
    d2 = made.disk(raw.call("CreateDisk", {"RegionId": fe.REGION, "ZoneId": fe.ZONE, "SnapshotId": sid,
                                           "DiskName": "from-snapshot"})["DiskId"])
    x = disk(raw, d2)
    assert (x["SourceSnapshotId"], x["Size"]) == (sid, 20), x
    assert [y["DiskId"] for y in disks(raw, SnapshotId=sid)] == [d2]
    raw.call("AttachDisk", {"InstanceId": iid, "DiskId": d2})
    x = wait_disk(raw, d2, "In_use", timeout=120)
    assert x["Device"] == "/dev/vdc", x
    assert sh(raw, iid, mounted("vdc") + "cat /mnt/vdc/state").strip() == "A"

    # A snapshot that disks were made from is deleted only with Force (ECS: the disks can then no
    # longer be reset to it); the disks made from it stay as they are.
    fe.expect_error(raw.call, "DeleteSnapshot", {"SnapshotId": sid}, status=403, code="SnapshotCreatedDisk")
    assert snapshot(raw, sid)["Status"] == "accomplished"
    raw.call("DeleteSnapshot", {"SnapshotId": sid, "Force": True})
    assert snapshot(raw, sid) is None
    assert sh(raw, iid, "cat /mnt/vdc/state /mnt/vdb/state").split() == ["A", "A"]


# ---------------------------------------------------------------------------------------------
# 3. Images
# ---------------------------------------------------------------------------------------------


def test_image_from_an_instance_boots_with_its_files_and_is_shared(server, raw, tenant_b, made):
    iid = made.instance(run(raw))
    fe.wait_status(raw, iid, "Running")
    marker = fe.unique("in-image")
    sh(raw, iid, f"mkdir -p /opt/app && echo {marker} > /opt/app/marker && sync")
    name = fe.unique("captured")
    mid = made.image(raw.call("CreateImage", {"RegionId": fe.REGION, "InstanceId": iid, "ImageName": name,
                                              "Description": "captured by e2e"})["ImageId"])
    img = wait_image(raw, mid)
    assert (img["ImageName"], img["ImageOwnerAlias"], img["OSType"]) == (name, "self", "linux"), img
    own = raw.call("DescribeImages", {"RegionId": fe.REGION, "ImageOwnerAlias": "self", "PageSize": 100})
    assert mid in [i["ImageId"] for i in own["Images"]["Image"]]

    child = made.instance(run(raw, image_id=mid))
    fe.wait_status(raw, child, "Running", timeout=120)
    assert sh(raw, child, "cat /opt/app/marker").strip() == marker
    assert image(raw, mid)["Usage"] == "instance"

    # In use: DeleteImage is refused, and the image is still there.
    fe.expect_error(raw.call, "DeleteImage", {"RegionId": fe.REGION, "ImageId": mid}, status=403,
                    code="ImageUsingByInstance")
    assert image(raw, mid)["Status"] == "Available"

    # Another account neither sees nor uses it until it is shared.
    b = server.raw(tenant_b)
    assert image(b, mid) is None
    fe.expect_error(fe.run_instances, b, image_id=mid, status=404, code="InvalidImageId.NotFound")
    b_id = account_id(server, tenant_b["AccountName"])
    raw.call("ModifyImageSharePermission", {"RegionId": fe.REGION, "ImageId": mid, "AddAccount": [b_id]})
    shares = raw.call("DescribeImageSharePermission", {"RegionId": fe.REGION, "ImageId": mid})
    assert [a["AliyunId"] for a in shares["Accounts"]["Account"]] == [b_id], shares
    seen = image(b, mid)
    assert seen is not None and seen["ImageOwnerAlias"] == "others", seen
    theirs = made.instance(run(b, image_id=mid), client=b)
    fe.wait_status(b, theirs, "Running", timeout=120)
    assert sh(b, theirs, "cat /opt/app/marker").strip() == marker
    # ... but cannot delete or share it.
    fe.expect_error(b.call, "DeleteImage", {"RegionId": fe.REGION, "ImageId": mid}, status=404,
                    code="InvalidImageId.NotFound")
    fe.force_delete(b, [theirs])
    fe.wait_gone(b, [theirs])
    raw.call("ModifyImageSharePermission", {"RegionId": fe.REGION, "ImageId": mid, "RemoveAccount": [b_id]})
    assert image(b, mid) is None

    # Once no instance uses it, it is deleted.
    fe.force_delete(raw, [child])
    fe.wait_gone(raw, [child])
    raw.call("DeleteImage", {"RegionId": fe.REGION, "ImageId": mid})
    assert image(raw, mid) is None
    fe.expect_error(fe.run_instances, raw, image_id=mid, status=404, code="InvalidImageId.NotFound")


def busybox_rootfs_tarball(path: Path, marker: str) -> None:
    """A root filesystem as a user would bring it: busybox, its applets, /etc/os-release, and a
    file of its own — no platform files."""
    bb = next(p for p in ("/bin/busybox", "/usr/bin/busybox") if Path(p).exists())
    applets = subprocess.run([bb, "--list-full"], capture_output=True, text=True, check=True).stdout.split()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for d in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "root", "tmp", "proc", "sys", "dev", "opt"):
            (root / d).mkdir(parents=True, exist_ok=True)
        (root / "bin/busybox").write_bytes(Path(bb).read_bytes())
        (root / "bin/busybox").chmod(0o755)
        for a in applets:
            link = root / a
            if a != "bin/busybox" and ".." not in a and not link.exists():
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to("/bin/busybox")
        (root / "etc/os-release").write_text('NAME="Imported BusyBox"\nID=imported\nPRETTY_NAME="Imported BusyBox 1"\n')
        (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
        (root / "opt/imported").write_text(marker + "\n")
        with tarfile.open(path, "w:gz") as t:
            for p in sorted(root.iterdir()):
                t.add(p, arcname=p.name)


@pytest.fixture(scope="module")
def region2():
    """A private region of two zones (this host in zone a) that imports images from a directory."""
    imports = Path(tempfile.mkdtemp(prefix="feiyun-e2e-imports-"))
    config = f"""
[region]
id = "cn-local"
name = "Two zones"
zones = [{{ id = "cn-local-a", name = "Zone A" }}, {{ id = "cn-local-b", name = "Zone B" }}]

[images]
import_dir = "{imports}"
"""
    factory = ServerFactory("storage")
    try:
        srv = factory.start("two-zones", config=config)
        srv.imports = imports  # type: ignore[attr-defined]
        yield srv
    finally:
        problems = factory.teardown()
        subprocess.run(["rm", "-rf", str(imports)], check=False)
        if problems:
            pytest.fail("leak check failed:\n" + "\n".join(problems), pytrace=False)


def test_imported_rootfs_tarball_boots(region2):
    srv = region2
    raw = srv.raw()
    m = Made(srv, raw)
    try:
        marker = fe.unique("imported")
        name = fe.unique("rootfs") + ".tar.gz"
        busybox_rootfs_tarball(srv.imports / name, marker)
        # A name outside the directory, or one that is not there, is refused.
        fe.expect_error(raw.call, "ImportImage", {"RegionId": fe.REGION, "DiskDeviceMapping": [
            {"OSSObject": "../etc/passwd"}]}, status=400, code="InvalidOSSObject.Malformed")
        fe.expect_error(raw.call, "ImportImage", {"RegionId": fe.REGION, "DiskDeviceMapping": [
            {"OSSObject": "missing.tar"}]}, status=400, code="InvalidOSSObject.NotFound")
        img_name = fe.unique("imported")
        mid = m.image(raw.call("ImportImage", {"RegionId": fe.REGION, "ImageName": img_name, "OSType": "linux",
                                               "Architecture": "x86_64",
                                               "DiskDeviceMapping": [{"OSSObject": name, "Format": "tar"}]})["ImageId"])
        img = wait_image(raw, mid)
        assert (img["ImageName"], img["OSName"], img["ImageOwnerAlias"]) == (img_name, "Imported BusyBox 1", "self"), img
        iid = m.instance(run(raw, image_id=mid))
        fe.wait_status(raw, iid, "Running", timeout=120)
        assert sh(raw, iid, "cat /opt/imported; . /etc/os-release; echo $ID").split() == [marker, "imported"]
        # A data disk works in it too.
        d = m.disk(raw.call("CreateDisk", {"RegionId": fe.REGION, "ZoneId": "cn-local-a", "Size": 20})["DiskId"])
        raw.call("AttachDisk", {"InstanceId": iid, "DiskId": d})
        wait_disk(raw, d, "In_use")
        assert sh(raw, iid, mounted("vdb") + "echo ok > /mnt/vdb/x && cat /mnt/vdb/x").strip() == "ok"
    finally:
        problems = m.cleanup()
    assert not problems, problems


def test_disk_of_another_zone_is_not_attached(region2):
    srv = region2
    raw = srv.raw()
    m = Made(srv, raw)
    try:
        iid = m.instance(run(raw))
        fe.wait_status(raw, iid, "Running")
        d = m.disk(raw.call("CreateDisk", {"RegionId": fe.REGION, "ZoneId": "cn-local-b", "Size": 20})["DiskId"])
        assert disk(raw, d)["ZoneId"] == "cn-local-b"
        fe.expect_error(raw.call, "AttachDisk", {"InstanceId": iid, "DiskId": d}, status=400,
                        code="InvalidParameter.Mismatch")
        x = disk(raw, d)
        assert (x["Status"], x["InstanceId"]) == ("Available", ""), x
        assert [y["Type"] for y in disks(raw, InstanceId=iid)] == ["system"]
        fe.expect_error(raw.call, "CreateDisk", {"RegionId": fe.REGION, "ZoneId": "cn-local-z", "Size": 20},
                        status=404, code_prefix="InvalidZoneId")
    finally:
        problems = m.cleanup()
    assert not problems, problems


# ---------------------------------------------------------------------------------------------
# 4. Key pairs
# ---------------------------------------------------------------------------------------------


def openssh_public(private_pem: str) -> str:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    return key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                         serialization.PublicFormat.OpenSSH).decode()


def new_ed25519() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    return ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


def authorized_keys(client, iid: str) -> list[str]:
    out = sh(client, iid, "cat /root/.ssh/authorized_keys 2>/dev/null || true")
    return [" ".join(line.split()[:2]) for line in out.splitlines() if line.strip() and not line.startswith("#")]


def test_key_pairs(tea, made):
    from alibabacloud_ecs20140526 import models as m

    name = fe.unique("kp")
    created = tea.typed("create_key_pair", m.CreateKeyPairRequest(region_id=fe.REGION, key_pair_name=name))
    made.key_pair(name, client=tea)
    assert created.key_pair_name == name and created.key_pair_id, created.to_map()
    pem = created.private_key_body
    assert pem.startswith("-----BEGIN RSA PRIVATE KEY-----") or pem.startswith("-----BEGIN PRIVATE KEY-----"), pem[:40]
    public = openssh_public(pem)
    # The private key is given once: DescribeKeyPairs shows its fingerprint and public key only.
    listed = tea.call("DescribeKeyPairs", {"RegionId": fe.REGION, "KeyPairName": name, "IncludePublicKey": True})
    kp = listed["KeyPairs"]["KeyPair"]
    assert len(kp) == 1 and kp[0]["KeyPairFingerPrint"] == created.key_pair_finger_print, listed
    assert "PrivateKeyBody" not in json.dumps(listed)
    assert " ".join(kp[0]["PublicKey"].split()[:2]) == public
    fe.expect_error(tea.call, "CreateKeyPair", {"RegionId": fe.REGION, "KeyPairName": name}, status=400,
                    code="KeyPair.AlreadyExist")

    # KeyPairName on RunInstances: the key is in root's authorized_keys, 0600 in a 0700 directory.
    iid = made.instance(run(tea, KeyPairName=name))
    fe.wait_status(tea, iid, "Running")
    attr = tea.call("DescribeInstances", {"RegionId": fe.REGION, "InstanceIds": json.dumps([iid])})
    assert attr["Instances"]["Instance"][0]["KeyPairName"] == name, attr
    assert authorized_keys(tea, iid) == [public]
    modes = sh(tea, iid, "stat -c '%a %u' /root/.ssh /root/.ssh/authorized_keys").split()
    assert modes == ["700", "0", "600", "0"], modes
    # The metadata service has it too, where the instance reaches one: an instance that reads
    # its own id there must read its key.
    # (This busybox's wget crashes with -q or -T: `timeout` bounds it instead.) The metadata
    # service listens on one port of the machine, which another region on it may hold.
    def md(path: str) -> str:
        return (f"rm -f /tmp/md; timeout 5 wget -O /tmp/md http://100.100.100.200/latest/meta-data/{path} "
                f">/dev/null 2>&1; cat /tmp/md 2>/dev/null")

    reachable = fe.unb64(fe.run_command(tea, iid, md("instance-id"))["Output"]).strip() == iid
    if reachable:
        assert sh(tea, iid, md("public-keys/")).split() == ["0/"]
        assert " ".join(sh(tea, iid, md("public-keys/0/openssh-key")).split()[:2]) == public

    # An imported key replaces it on the running instance (AttachKeyPair), and goes (DetachKeyPair).
    other = fe.unique("kp-imported")
    imported_pub = new_ed25519()
    res = tea.typed("import_key_pair", m.ImportKeyPairRequest(region_id=fe.REGION, key_pair_name=other,
                                                              public_key_body=imported_pub + " me@laptop"))
    made.key_pair(other, client=tea)
    assert res.key_pair_name == other and res.key_pair_finger_print
    fe.expect_error(tea.call, "ImportKeyPair", {"RegionId": fe.REGION, "KeyPairName": fe.unique("bad"),
                                                "PublicKeyBody": "ssh-rsa not-base64!"}, status=400,
                    code="InvalidPublicKeyBody.Malformed")
    r = tea.call("AttachKeyPair", {"RegionId": fe.REGION, "KeyPairName": other, "InstanceIds": json.dumps([iid])})
    assert (r["TotalCount"], r["FailCount"]) == ("1", "0"), r
    wait_for(lambda: authorized_keys(tea, iid) == [imported_pub], 30, "the attached key in authorized_keys")
    # Lines the guest added itself stay.
    sh(tea, iid, "echo 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGuestOwnKeyGuestOwnKeyGuestOwnKey1 guest' "
                 ">> /root/.ssh/authorized_keys")
    r = tea.call("DetachKeyPair", {"RegionId": fe.REGION, "KeyPairName": other, "InstanceIds": json.dumps([iid])})
    assert (r["TotalCount"], r["FailCount"]) == ("1", "0"), r
    wait_for(lambda: authorized_keys(tea, iid) == [
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGuestOwnKeyGuestOwnKeyGuestOwnKey1"], 30,
        "the detached key gone, the guest's own line kept")
    attr = tea.call("DescribeInstances", {"RegionId": fe.REGION, "InstanceIds": json.dumps([iid])})
    assert attr["Instances"]["Instance"][0]["KeyPairName"] == "", attr

    # A stopped instance gets its key at its next boot.
    tea.call("StopInstance", {"InstanceId": iid})
    fe.wait_status(tea, iid, "Stopped")
    r = tea.call("AttachKeyPair", {"RegionId": fe.REGION, "KeyPairName": name, "InstanceIds": json.dumps([iid])})
    assert (r["TotalCount"], r["FailCount"]) == ("1", "0"), r
    tea.call("StartInstance", {"InstanceId": iid})
    fe.wait_status(tea, iid, "Running")
    assert public in authorized_keys(tea, iid)

    # DeleteKeyPairs.
    tea.call("DeleteKeyPairs", {"RegionId": fe.REGION, "KeyPairNames": json.dumps([name, other])})
    left = tea.call("DescribeKeyPairs", {"RegionId": fe.REGION, "KeyPairName": name})
    assert left["KeyPairs"]["KeyPair"] == [] and left["TotalCount"] == 0, left
    fe.expect_error(tea.call, "AttachKeyPair", {"RegionId": fe.REGION, "KeyPairName": name,
                                                "InstanceIds": json.dumps([iid])}, status=400,
                    code="InvalidKeyPairName.NotFound")


# ---------------------------------------------------------------------------------------------
# 5. Tenancy and bad input
# ---------------------------------------------------------------------------------------------


def test_another_tenants_storage_is_not_found(server, raw, tenant_b, made):
    b = server.raw(tenant_b)
    iid = made.instance(run(raw))
    mine_b = made.instance(run(b), client=b)
    fe.wait_status(raw, iid, "Running")
    fe.wait_status(b, mine_b, "Running")
    d = made.disk(raw.call("CreateDisk", {"RegionId": fe.REGION, "ZoneId": fe.ZONE, "Size": 20})["DiskId"])
    raw.call("AttachDisk", {"InstanceId": iid, "DiskId": d})
    wait_disk(raw, d, "In_use")
    sh(raw, iid, mounted("vdb") + "echo mine > /mnt/vdb/x && sync")
    sid = made.snapshot(raw.call("CreateSnapshot", {"DiskId": d})["SnapshotId"])
    wait_snapshot(raw, sid)
    kp = made.key_pair(fe.unique("kp-a"))
    raw.call("CreateKeyPair", {"RegionId": fe.REGION, "KeyPairName": kp})
    before = disk(raw, d)

    assert disks(b, [d]) == []
    assert b.call("DescribeSnapshots", {"RegionId": fe.REGION, "SnapshotIds": json.dumps([sid])})[
        "Snapshots"]["Snapshot"] == []
    assert b.call("DescribeKeyPairs", {"RegionId": fe.REGION, "KeyPairName": kp})["KeyPairs"]["KeyPair"] == []
    nf_disk = {"status": 404, "code": "InvalidDiskId.NotFound"}
    nf_snap = {"status": 404, "code": "InvalidSnapshotId.NotFound"}
    fe.expect_error(b.call, "DetachDisk", {"InstanceId": iid, "DiskId": d}, status=404)
    fe.expect_error(b.call, "DetachDisk", {"InstanceId": mine_b, "DiskId": d}, **nf_disk)
    fe.expect_error(b.call, "AttachDisk", {"InstanceId": mine_b, "DiskId": d}, **nf_disk)
    fe.expect_error(b.call, "DeleteDisk", {"DiskId": d}, **nf_disk)
    fe.expect_error(b.call, "ResizeDisk", {"DiskId": d, "NewSize": 40}, **nf_disk)
    fe.expect_error(b.call, "ModifyDiskAttribute", {"DiskId": d, "DiskName": "stolen"}, **nf_disk)
    fe.expect_error(b.call, "CreateSnapshot", {"DiskId": d}, **nf_disk)
    fe.expect_error(b.call, "ResetDisk", {"DiskId": d, "SnapshotId": sid}, **nf_disk)
    fe.expect_error(b.call, "DeleteSnapshot", {"SnapshotId": sid}, **nf_snap)
    fe.expect_error(b.call, "CreateDisk", {"RegionId": fe.REGION, "ZoneId": fe.ZONE, "SnapshotId": sid}, **nf_snap)
    # RunInstances names the parameter in its code.
    fe.expect_error(fe.run_instances, b, DataDisk=[{"SnapshotId": sid}], status=404,
                    code="InvalidDataDiskSnapshotId.NotFound")
    fe.expect_error(b.call, "CreateImage", {"RegionId": fe.REGION, "InstanceId": iid}, status=404,
                    code="InvalidInstanceId.NotFound")
    fe.expect_error(b.call, "CreateImage", {"RegionId": fe.REGION, "SnapshotId": sid}, **nf_snap)
    fe.expect_error(b.call, "AttachKeyPair", {"RegionId": fe.REGION, "KeyPairName": kp,
                                              "InstanceIds": json.dumps([mine_b])}, status=400,
                    code="InvalidKeyPairName.NotFound")
    fe.expect_error(fe.run_instances, b, KeyPairName=kp, status=400, code="InvalidKeyPairName.NotFound")
    # A's own key pair, asked for on B's behalf, does not touch A's: B's name space is its own.
    b.call("CreateKeyPair", {"RegionId": fe.REGION, "KeyPairName": kp})
    made.key_pair(kp, client=b)
    b.call("DeleteKeyPairs", {"RegionId": fe.REGION, "KeyPairNames": json.dumps([kp])})
    assert len(raw.call("DescribeKeyPairs", {"RegionId": fe.REGION, "KeyPairName": kp})["KeyPairs"]["KeyPair"]) == 1

    # Nothing of A's changed.
    after = disk(raw, d)
    assert {k: after[k] for k in ("Status", "InstanceId", "Size", "DiskName")} == {
        k: before[k] for k in ("Status", "InstanceId", "Size", "DiskName")}
    assert snapshot(raw, sid)["Status"] == "accomplished"
    assert sh(raw, iid, "cat /mnt/vdb/x").strip() == "mine"


def test_bad_disk_requests_change_nothing(raw, made):
    a = made.instance(run(raw))
    b = made.instance(run(raw))
    fe.wait_status(raw, [a, b], "Running")
    d = made.disk(raw.call("CreateDisk", {"RegionId": fe.REGION, "ZoneId": fe.ZONE, "Size": 20,
                                          "DiskCategory": "cloud_efficiency"})["DiskId"])
    raw.call("AttachDisk", {"InstanceId": a, "DiskId": d})
    wait_disk(raw, d, "In_use")
    before = disk(raw, d)
    count = len(disks(raw))

    # Already attached: to another instance, or again to the same one.
    fe.expect_error(raw.call, "AttachDisk", {"InstanceId": b, "DiskId": d}, status=404, code="InvalidDisk.InUse")
    fe.expect_error(raw.call, "AttachDisk", {"InstanceId": a, "DiskId": d}, status=404, code="InvalidDisk.InUse")
    # Attached: not deleted; detached from an instance it is not on: refused.
    fe.expect_error(raw.call, "DeleteDisk", {"DiskId": d}, status=403, code="DiskStillAttached")
    fe.expect_error(raw.call, "DetachDisk", {"InstanceId": b, "DiskId": d}, status=403, code="DependencyViolation")
    # Sizes out of range (cloud_efficiency: 20 to 32768 GiB), and shrinking.
    for size in (1, 19, 32769):
        fe.expect_error(raw.call, "CreateDisk", {"RegionId": fe.REGION, "ZoneId": fe.ZONE, "Size": size,
                                                 "DiskCategory": "cloud_efficiency"},
                        status=400, code="InvalidDataDiskSize.ValueNotSupported")
    fe.expect_error(raw.call, "CreateDisk", {"RegionId": fe.REGION, "ZoneId": fe.ZONE, "Size": 0},
                    status=400, code="InvalidSize.ValueNotSupported")
    fe.expect_error(raw.call, "ResizeDisk", {"DiskId": d, "NewSize": 10}, status=403, code="InvalidDiskSize.TooSmall")
    fe.expect_error(raw.call, "ResizeDisk", {"DiskId": d, "NewSize": 20}, status=403, code="InvalidDiskSize.TooSmall")
    fe.expect_error(raw.call, "ResizeDisk", {"DiskId": d, "NewSize": 40000}, status=403,
                    code="InvalidDiskSize.TooLarge")
    # The system disk: not detached, not deleted.
    system = disks(raw, InstanceId=a, DiskType="system")[0]["DiskId"]
    fe.expect_error(raw.call, "DetachDisk", {"InstanceId": a, "DiskId": system}, status=403, code="DiskNotPortable")
    fe.expect_error(raw.call, "DeleteDisk", {"DiskId": system}, status=403, code="DiskNotPortable")
    # A device that is not a data disk's.
    d2 = made.disk(raw.call("CreateDisk", {"RegionId": fe.REGION, "ZoneId": fe.ZONE, "Size": 20})["DiskId"])
    fe.expect_error(raw.call, "AttachDisk", {"InstanceId": b, "DiskId": d2, "Device": "/dev/vda"}, status=400,
                    code="InvalidDevice.Malformed")
    fe.expect_error(raw.call, "AttachDisk", {"InstanceId": a, "DiskId": d2, "Device": "/dev/vdb"}, status=403,
                    code="InvalidDevice.InUse")

    after = disk(raw, d)
    for k in ("Status", "InstanceId", "Device", "Size", "Category", "DeleteWithInstance"):
        assert after[k] == before[k], (k, before, after)
    assert len(disks(raw)) == count + 1  # d2 only
    assert disk(raw, d2)["Status"] == "Available"
    # Growing works, and the disk stays attached; its filesystem has the new size once the
    # instance restarted (online where the host may grow a mounted filesystem).
    raw.call("ResizeDisk", {"DiskId": d, "NewSize": 30})
    x = disk(raw, d)
    assert (x["Size"], x["Status"], x["InstanceId"]) == (30, "In_use", a), x
    raw.call("StopInstance", {"InstanceId": a})
    fe.wait_status(raw, a, "Stopped")
    raw.call("StartInstance", {"InstanceId": a})
    fe.wait_status(raw, a, "Running")
    total_kib = int(sh(raw, a, mounted("vdb") + "df -k /mnt/vdb | tail -1").split()[1])
    assert 29 * 1024 * 1024 < total_kib <= 30 * 1024 * 1024, total_kib


# ---------------------------------------------------------------------------------------------
# 6. Billing
# ---------------------------------------------------------------------------------------------


def cents(x: Decimal) -> Decimal:
    from decimal import ROUND_HALF_UP

    return x.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def disk_line(bss, disk_id: str) -> dict | None:
    import datetime as dt

    month = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m")
    items = bss.call("DescribeInstanceBill", {"BillingCycle": month, "InstanceID": disk_id,
                                              "IsBillingItem": True})["Data"]["Items"]
    lines = [x for x in items if x["BillingItem"] == "Data disk"]
    assert len(lines) <= 1, items
    return lines[0] if lines else None


def test_data_disk_is_billed_by_size_and_time(server, made):
    acct = server.create_account(fe.unique("diskbill"))
    server.accounts.append(acct)
    raw, bss, tea = server.raw(acct), server.bss(acct), server.tea(acct)
    made.client = raw
    # The largest ESSD (32768 GiB) costs 32768 × 0.00139 = 45.54752 per hour: cents in seconds. A
    # disk never attached takes no room on a host.
    size = 32768
    hourly = Decimal("0.00139") * size
    quote = tea.call("DescribePrice", {"RegionId": fe.REGION, "InstanceType": fe.SMALL_TYPE, "PriceUnit": "Hour",
                                       "DataDisk": [{"Category": "cloud_essd", "Size": size}]})
    parts = {p["Resource"]: p for p in quote["PriceInfo"]["Price"]["DetailInfos"]["DetailInfo"]}
    assert Decimal(str(parts["dataDisk"]["TradePrice"])) == hourly, parts
    alone = tea.call("DescribePrice", {"RegionId": fe.REGION, "ResourceType": "disk", "PriceUnit": "Hour",
                                       "DataDisk": [{"Category": "cloud_essd", "Size": size}]})
    assert Decimal(str(alone["PriceInfo"]["Price"]["TradePrice"])) == hourly, alone

    t0 = time.time()
    d = made.disk(raw.call("CreateDisk", {"RegionId": fe.REGION, "ZoneId": fe.ZONE, "Size": size,
                                          "DiskCategory": "cloud_essd"})["DiskId"])
    time.sleep(4)
    line = wait_for(lambda: disk_line(bss, d), 10, "the disk's bill line")
    assert line["ListPrice"] == str(hourly.normalize()) and line["ListPriceUnit"] == "CNY/Hour", line
    assert line["InstanceConfig"] == f"Data disk: cloud_essd {size} GiB", line
    seconds = int(line["ServicePeriod"])
    assert 3 <= seconds <= time.time() - t0 + 1, line
    assert Decimal(str(line["PretaxAmount"])) == cents(hourly * seconds / 3600) > 0, line

    raw.call("DeleteDisk", {"DiskId": d})
    released = time.time()
    final = int(disk_line(bss, d)["ServicePeriod"])
    assert final <= released - t0 + 1
    time.sleep(3)
    last = disk_line(bss, d)
    assert int(last["ServicePeriod"]) == final, (final, last)
    assert Decimal(str(last["PretaxAmount"])) == cents(hourly * final / 3600), last

    # A data disk made with its instance is billed the same way, and released with it.
    iid = made.instance(run(raw, DataDisk=[{"Size": 100, "Category": "cloud_efficiency"}]))
    fe.wait_status(raw, iid, "Running")
    with_instance = disks(raw, InstanceId=iid, DiskType="data")[0]["DiskId"]
    line = wait_for(lambda: disk_line(bss, with_instance), 10, "the instance's data disk's bill line")
    assert line["ListPrice"] == "0.049" and line["InstanceConfig"] == "Data disk: cloud_efficiency 100 GiB", line
    time.sleep(2)  # billed by the second: a disk that lived less than one has no line
    fe.force_delete(raw, [iid])
    fe.wait_gone(raw, [iid])
    final = int(disk_line(bss, with_instance)["ServicePeriod"])
    assert final >= 2
    time.sleep(2)
    assert int(disk_line(bss, with_instance)["ServicePeriod"]) == final


# ---------------------------------------------------------------------------------------------
# More of a disk's life
# ---------------------------------------------------------------------------------------------


def test_disks_at_boot_user_data_and_stopped_instances(raw, made):
    """A data disk given on RunInstances is mounted before user data runs; one attached to a
    stopped instance is there when it starts; CreateDisk with a ClientToken makes one disk."""
    ud = fe.b64("#!/bin/sh\necho from-user-data > /mnt/vdb/ud\n")
    iid = made.instance(run(raw, UserData=ud, DataDisk=[{"Size": 20}]))
    fe.wait_status(raw, iid, "Running")
    for d in disks(raw, InstanceId=iid, DiskType="data"):
        made.disk(d["DiskId"])
    assert wait_for(lambda: sh(raw, iid, "cat /mnt/vdb/ud 2>/dev/null || true").strip() == "from-user-data",
                    30, "user data's file on the data disk")

    token = fe.unique("tok")
    spec = {"RegionId": fe.REGION, "ZoneId": fe.ZONE, "Size": 20, "ClientToken": token}
    d = made.disk(raw.call("CreateDisk", spec)["DiskId"])
    assert raw.call("CreateDisk", spec)["DiskId"] == d
    fe.expect_error(raw.call, "CreateDisk", {**spec, "Size": 30}, status=400, code="IdempotentParameterMismatch")

    raw.call("StopInstance", {"InstanceId": iid})
    fe.wait_status(raw, iid, "Stopped")
    raw.call("AttachDisk", {"InstanceId": iid, "DiskId": d})
    x = wait_disk(raw, d, "In_use")
    assert (x["InstanceId"], x["Device"]) == (iid, "/dev/vdc"), x
    raw.call("StartInstance", {"InstanceId": iid})
    fe.wait_status(raw, iid, "Running")
    out = sh(raw, iid, mounted("vdc") + "echo later > /mnt/vdc/f && cat /mnt/vdc/f /mnt/vdb/ud")
    assert out.split() == ["later", "from-user-data"], out


def test_image_from_a_snapshot_of_a_root_filesystem(raw, made):
    """A data disk holding a copy of an instance's root filesystem, snapshotted, makes an image
    (CreateImage SnapshotId) that boots; a snapshot of something else is no image."""
    iid = made.instance(run(raw))
    fe.wait_status(raw, iid, "Running")
    d = made.disk(raw.call("CreateDisk", {"RegionId": fe.REGION, "ZoneId": fe.ZONE, "Size": 20})["DiskId"])
    raw.call("AttachDisk", {"InstanceId": iid, "DiskId": d})
    wait_disk(raw, d, "In_use")
    # Not a root filesystem yet: refused once captured.
    sh(raw, iid, mounted("vdb") + "echo data > /mnt/vdb/only-data && sync")
    empty = made.snapshot(raw.call("CreateSnapshot", {"DiskId": d})["SnapshotId"])
    wait_snapshot(raw, empty)
    bad = made.image(raw.call("CreateImage", {"RegionId": fe.REGION, "SnapshotId": empty})["ImageId"])
    failed = wait_for(lambda: (lambda x: x if x and x["Status"] != "Creating" else None)(image(raw, bad)), 120,
                      "the capture of a snapshot that is no root filesystem to end")
    assert failed["Status"] == "CreateFailed", failed
    marker = fe.unique("from-snapshot")
    sh(raw, iid, "rm /mnt/vdb/only-data && for d in bin sbin etc usr root; do [ -e /$d ] && cp -a /$d /mnt/vdb/; done; "
                 f"mkdir -p /mnt/vdb/opt && echo {marker} > /mnt/vdb/opt/marker && sync", timeout=120)
    sid = made.snapshot(raw.call("CreateSnapshot", {"DiskId": d})["SnapshotId"])
    wait_snapshot(raw, sid)
    mid = made.image(raw.call("CreateImage", {"RegionId": fe.REGION, "SnapshotId": sid,
                                              "ImageName": fe.unique("snapimg")})["ImageId"])
    img = wait_image(raw, mid)
    assert img["DiskDeviceMappings"]["DiskDeviceMapping"][0]["SnapshotId"] == sid, img
    # The snapshot an image was made from is kept while the image is.
    fe.expect_error(raw.call, "DeleteSnapshot", {"SnapshotId": sid, "Force": True}, status=403,
                    code="SnapshotCreatedImage")
    child = made.instance(run(raw, image_id=mid))
    fe.wait_status(raw, child, "Running", timeout=120)
    assert sh(raw, child, "cat /opt/marker").strip() == marker


def test_a_disk_in_use_detaches_once_let_go(raw, made):
    """DetachDisk of a disk a process of the instance holds (its working directory) is not
    forced: the disk stays Detaching, still mounted and intact, and detaches once the process
    lets go."""
    iid = made.instance(run(raw))
    fe.wait_status(raw, iid, "Running")
    d = made.disk(raw.call("CreateDisk", {"RegionId": fe.REGION, "ZoneId": fe.ZONE, "Size": 20})["DiskId"])
    raw.call("AttachDisk", {"InstanceId": iid, "DiskId": d})
    wait_disk(raw, d, "In_use")
    sh(raw, iid, mounted("vdb") + "echo kept > /mnt/vdb/f; cd /mnt/vdb && "
                                  "(sleep 600 </dev/null >/dev/null 2>&1 & echo $! > /tmp/holder)")
    raw.call("DetachDisk", {"InstanceId": iid, "DiskId": d})
    time.sleep(3)
    x = disk(raw, d)
    assert x["Status"] == "Detaching", x
    assert sh(raw, iid, "cat /mnt/vdb/f").strip() == "kept"
    # Nothing else may happen to it meanwhile.
    fe.expect_error(raw.call, "DeleteDisk", {"DiskId": d}, status=403)
    sh(raw, iid, "kill $(cat /tmp/holder)")
    x = wait_disk(raw, d, "Available", timeout=30)
    assert x["InstanceId"] == "", x
    assert sh(raw, iid, "grep -c ' /mnt/vdb ' /proc/mounts || true").strip() == "0"
