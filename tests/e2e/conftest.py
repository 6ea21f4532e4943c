"""Fixtures for the Feiyun end-to-end suite.

One ``feiyun up`` server (the ``server`` fixture) is shared by the whole session; tests that
kill or restart a server start their own with ``make_server``.

Environment:
- FEIYUN_BIN: server binary (default <repo>/target/debug/feiyun).
- FEIYUN_E2E_KEEP=1: keep the temp data dirs (for debugging).
Server logs go to tests/e2e/.logs/.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

import feiyun_e2e as fe

LOG_DIR = fe.E2E_DIR / ".logs"


def _host_prefix(data_dir: Path) -> str | None:
    """The name prefix of the host's network (namespaces `<prefix>-...`), if it has one."""
    try:
        return json.loads((data_dir / "host" / "network.json").read_text()).get("prefix") or None
    except (OSError, ValueError, AttributeError):
        return None


def _host_namespaces(prefix: str | None) -> list[str]:
    if not prefix:
        return []
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=30)
    return [line.split()[0] for line in out.stdout.splitlines() if line.startswith(f"{prefix}-")]


def _cleanup_server(srv: fe.FeiyunServer, accounts: list[dict], label: str) -> list[str]:
    """Force-delete every instance of every account, stop the server with SIGTERM and check that
    nothing is left on the host, its network namespaces included (a VPC's router left behind
    keeps its VXLAN device, which the next server on this machine cannot create). Returns a list
    of problems (empty when clean)."""
    problems: list[str] = []
    deleted: list[str] = []
    prefix = _host_prefix(srv.data_dir)
    if srv.running():
        for acct in accounts:
            try:
                cli = srv.raw(acct)
                ids = fe.all_instance_ids(cli)
                deleted += ids
                if ids:
                    fe.force_delete(cli, ids)
                    fe.wait_gone(cli, ids, timeout=60)
            except Exception as e:  # noqa: BLE001
                problems.append(f"[{label}] cleanup via API failed for {acct.get('AccessKeyId')}: {e}")
        # Deleting is asynchronous on the host: give the agent time to remove the containers.
        instances_dir = srv.data_dir / "host" / "instances"
        deadline = time.monotonic() + 30
        while (fe.runc_list(srv.data_dir) or any(instances_dir.glob("i-*"))) and time.monotonic() < deadline:
            time.sleep(0.2)
        # Then the host removes their networks (routers and namespaces), asynchronously too.
        prefix = prefix or _host_prefix(srv.data_dir)
        while _host_namespaces(prefix) and time.monotonic() < deadline + 30:
            time.sleep(0.2)
    rc = srv.stop(signal.SIGTERM)
    if rc is None:
        problems.append(f"[{label}] server did not exit within 20s of SIGTERM (killed)")
    left = fe.runc_list(srv.data_dir)
    if left:
        problems.append(f"[{label}] runc containers left after all instances were deleted: "
                        f"{[(c['id'], c['status']) for c in left]}")
    mounts = fe.mounts_under(srv.data_dir)
    if mounts:
        problems.append(f"[{label}] mounts left under the data dir: {mounts}")
    dirs = sorted(p.name for p in (srv.data_dir / "host" / "instances").glob("i-*"))
    if dirs:
        problems.append(f"[{label}] instance directories left on the host: {dirs}")
    cgroups = [str(p) for i in deleted for p in Path("/sys/fs/cgroup").glob(f"*/feiyun/{i}")]
    if cgroups:
        problems.append(f"[{label}] cgroups left for deleted instances: {cgroups}")
    if left or mounts:
        fe.hard_cleanup(srv.data_dir)
    namespaces = _host_namespaces(prefix)
    if namespaces:
        problems.append(f"[{label}] network namespaces left after all instances were deleted: {namespaces}")
        # `feiyun teardown` removes the host's network (and the data dir).
        out = srv.cli("teardown", "--yes", "--data-dir", str(srv.data_dir), timeout=120)
        if out.returncode != 0 or _host_namespaces(prefix):
            problems.append(f"[{label}] feiyun teardown left {_host_namespaces(prefix)}: {out.stderr.strip()}")
    return problems


def _parent_cgroups() -> set[Path]:
    """The cgroup every instance of the suite's servers is put under, in each hierarchy."""
    v2 = Path("/sys/fs/cgroup/feiyun")
    return set(Path("/sys/fs/cgroup").glob("*/feiyun")) | ({v2} if v2.is_dir() else set())


@pytest.fixture(scope="session", autouse=True)
def parent_cgroups_made_by_the_suite_go():
    """runc makes the instances' parent cgroup (`feiyun`) at the first boot and nothing removes it
    while a region may still boot instances under it. What the suite made, it removes at the end
    (only where empty; one that was there before the suite is left alone)."""
    before = _parent_cgroups()
    yield
    for d in sorted(_parent_cgroups() - before):
        try:
            d.rmdir()
        except OSError as e:
            pytest.fail(f"the suite's parent cgroup {d} could not be removed: {e}", pytrace=False)


class ServerFactory:
    """Starts servers on fresh temp data dirs and tears all of them down (with leak checks)."""

    def __init__(self, label: str):
        self.label = label
        self.base = Path(tempfile.mkdtemp(prefix=f"feiyun-e2e-{label}-"))
        self.servers: list[tuple[fe.FeiyunServer, list[dict]]] = []
        LOG_DIR.mkdir(exist_ok=True)

    def new(self, name: str = "srv", config: str | None = None) -> fe.FeiyunServer:
        data = self.base / name
        srv = fe.FeiyunServer(data, log_path=LOG_DIR / f"{self.label}-{name}.log", config=config)
        if srv.log_path.exists():
            srv.log_path.unlink()
        accounts: list[dict] = []
        srv.accounts = accounts  # type: ignore[attr-defined]
        self.servers.append((srv, accounts))
        return srv

    def start(self, name: str = "srv", settle: float = 0.0, config: str | None = None) -> fe.FeiyunServer:
        """``config``: region configuration TOML text for `feiyun up --config`."""
        srv = self.new(name, config)
        srv.start(settle=settle)
        srv.accounts.append(srv.creds)  # type: ignore[attr-defined]
        return srv

    def teardown(self) -> list[str]:
        problems: list[str] = []
        for srv, accounts in self.servers:
            if not accounts and srv.creds:
                accounts.append(srv.creds)
            if not srv.running() and (fe.runc_list(srv.data_dir) or fe.mounts_under(srv.data_dir)):
                # The test left the server down with instances on the host: bring it back to delete them.
                try:
                    srv.start()
                except Exception as e:  # noqa: BLE001
                    problems.append(f"[{self.label}] could not restart server for cleanup: {e}")
            problems += _cleanup_server(srv, accounts, f"{self.label}/{srv.data_dir.name}")
        if os.environ.get("FEIYUN_E2E_KEEP") != "1":
            try:
                fe.safe_rmtree(self.base)
            except RuntimeError as e:
                problems.append(str(e))
        return problems


@pytest.fixture(scope="session")
def server():
    """The shared server. Teardown deletes every instance, SIGTERMs it and checks for leaks."""
    factory = ServerFactory("session")
    try:
        srv = factory.start("main")
    except Exception:
        factory.teardown()
        raise
    yield srv
    problems = factory.teardown()
    if problems:
        pytest.fail("leak check failed:\n" + "\n".join(problems), pytrace=False)


@pytest.fixture
def make_server():
    """Start private servers for tests that kill/restart them or need their own configuration:
    ``srv = make_server('name')``, ``make_server('name', config=TOML_TEXT)``."""
    factory = ServerFactory("private")
    yield factory.start
    problems = factory.teardown()
    if problems:
        pytest.fail("leak check failed:\n" + "\n".join(problems), pytrace=False)


@pytest.fixture(scope="session")
def tea(server) -> fe.TeaClient:
    """alibabacloud-ecs20140526, default V3 (ACS3-HMAC-SHA256) signature."""
    return server.tea()


@pytest.fixture(scope="session")
def tea_v2(server) -> fe.TeaClient:
    """alibabacloud-ecs20140526 with signature_algorithm='v2'."""
    return server.tea(algorithm="v2")


@pytest.fixture(scope="session")
def core(server) -> fe.CoreClient:
    """aliyun-python-sdk-core AcsClient (V2)."""
    return server.core()


@pytest.fixture(scope="session")
def raw(server) -> fe.RawClient:
    """Our own V2/V3 signer over requests, for crafted requests."""
    return server.raw()


@pytest.fixture(scope="session")
def tenant_b(server) -> dict:
    """A second account created with `feiyun account create`."""
    acct = server.create_account(fe.unique("tenantb"))
    server.accounts.append(acct)
    return acct


@pytest.fixture(scope="session")
def image_id(tea) -> str:
    """The built-in busybox image, discovered through DescribeImages."""
    res = tea.call("DescribeImages", {"RegionId": fe.REGION, "PageSize": 100})
    images = res["Images"]["Image"]
    ids = [i["ImageId"] for i in images]
    assert ids, f"DescribeImages returned no images: {res}"
    busy = [i for i in ids if "busybox" in i]
    return busy[0] if busy else ids[0]


class Tracker:
    """Records instances a test created and force-deletes them at the end of the test."""

    def __init__(self, client):
        self.client = client
        self.owned: list[tuple[object, str]] = []

    def add(self, ids, client=None):
        for i in [ids] if isinstance(ids, str) else list(ids):
            self.owned.append((client or self.client, i))
        return ids

    def cleanup(self):
        by_client: dict[int, tuple[object, list[str]]] = {}
        for c, i in self.owned:
            by_client.setdefault(id(c), (c, []))[1].append(i)
        for c, ids in by_client.values():
            left = [i["InstanceId"] for i in fe.describe(c, ids)]
            if left:
                fe.force_delete(c, left)
                fe.wait_gone(c, left, timeout=60)


@pytest.fixture
def track(raw):
    t = Tracker(raw)
    yield t
    t.cleanup()
