"""VPC networking end to end: a one-host region whose "outside" is a namespace the test made,
what the tests run inside instances (through RunCommand) and in that "internet", and the check
that a host's network left nothing behind.

``OneHost`` builds, for one test run (every name carries a random tag):

```
 root namespace (the test)            host namespace fy<tag>h                internet namespace fy<tag>i
 fy<tag>m 169.254.N.254/24 ──veth── mgmt0 169.254.N.1/24  (API, underlay)
                                      feiyun up (control plane + embedded host)
                                      wan0 198.51.100.2/24 ──────veth────── wan0 198.51.100.1/24
                                      default via 198.51.100.1               203.0.113.0/28 via 198.51.100.2
                                      EIP /32s → VPC routers                 netprobe.py serve (HTTP: caller's address)
```

The host's default route leads into the internet namespace and nowhere else, the EIP pool is
routed from there back to the host, and the API is on a link-local address: no packet leaves
the machine. ``feiyun up`` runs inside the host namespace (``nsenter --net``, as the agents of
``netns.py`` do), so its routers, EIP routes, policy rules and nftables tables are that
namespace's and not the machine's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import requests

import feiyun_e2e as fe
import netns
from netns import host_prefix, network_leaks, sh

INTERNET_IP = "198.51.100.1"
HOST_WAN_IP = "198.51.100.2"
EIP_POOL = "203.0.113.0/28"
API_PORT = 8080
NETPROBE = str(fe.E2E_DIR / "netprobe.py")

# ---------------------------------------------------------------------------------------------
# Inside instances (busybox, through RunCommand)
# ---------------------------------------------------------------------------------------------

# busybox httpd serving /www: index.html says who it is, /cgi-bin/ip answers the caller's address.
HTTPD = ("mkdir -p /www/cgi-bin && echo {name} > /www/index.html && "
         "printf '#!/bin/sh\\necho Content-Type: text/plain\\necho\\necho $REMOTE_ADDR\\n' > /www/cgi-bin/ip && "
         "chmod +x /www/cgi-bin/ip && httpd -p 80 -h /www")


def run(client, iid: str, script: str, timeout: float = 30) -> tuple[int | None, str]:
    """RunCommand; (exit code, output)."""
    r = fe.run_command(client, iid, script, timeout=timeout)
    return r.get("ExitCode"), fe.unb64(r.get("Output") or "")


def ok(client, iid: str, script: str, timeout: float = 30) -> str:
    code, out = run(client, iid, script, timeout)
    assert code == 0, f"{iid}: `{script}` exited {code}: {out}"
    return out


def httpd(client, iid: str, name: str) -> None:
    ok(client, iid, HTTPD.format(name=name))


def wget(client, iid: str, url: str, seconds: int = 3) -> str | None:
    """The body of a GET from inside the instance, or None. busybox wget crashes on URLs that
    name a port, so URLs here are port 80; `timeout` bounds it."""
    code, out = run(client, iid, f"timeout {seconds} wget -qO- {url}", timeout=seconds + 20)
    return out if code == 0 else None


def nc_servers(client, iid: str, ports: list[int]) -> None:
    """Persistent TCP servers that answer each connection with their port number."""
    loop = " ".join(str(p) for p in ports)
    ok(client, iid, f"for p in {loop}; do nc -ll -p $p -e /bin/echo $p </dev/null >/dev/null 2>&1 & done")


def probe(client, iid: str, ip: str, ports: list[int]) -> dict[int, bool]:
    """Connects from the instance to each port at once (1 s connect timeout): which answered."""
    loop = " ".join(str(p) for p in ports)
    script = (f"for p in {loop}; do (r=$(nc -w 1 {ip} $p </dev/null 2>/dev/null); echo \"$p:$r\") & done; wait")
    out = ok(client, iid, script)
    got = {}
    for line in out.splitlines():
        p, _, answer = line.partition(":")
        if p.strip().isdigit():
            got[int(p)] = answer.strip() == p.strip()
    assert set(got) == set(ports), f"probe output: {out!r}"
    return got


def start_probe_loop(client, iid: str, ip: str, port: int, seconds: int, every_ms: int = 25) -> None:
    """Starts, in the background, a new connection attempt every ``every_ms`` for ``seconds``;
    each appends `<uptime at start> <answer>` to /tmp/probe-<port>.log. /proc/uptime is the
    kernel's, the same inside instances and for the test."""
    log = f"/tmp/probe-{port}.log"
    script = (
        f"rm -f {log}; ("
        f"end=$(( $(cut -d. -f1 /proc/uptime) + {seconds} )); "
        f"while [ $(cut -d. -f1 /proc/uptime) -lt $end ]; do "
        f"(s=$(cut -d' ' -f1 /proc/uptime); r=$(nc -w 1 {ip} {port} </dev/null 2>/dev/null); echo \"$s $r\" >> {log}) & "
        f"usleep {every_ms * 1000}; done; wait; echo done >> {log}"
        f") </dev/null >/dev/null 2>&1 &")
    ok(client, iid, script)


def probe_log(client, iid: str, port: int, timeout: float = 30) -> list[tuple[float, bool]]:
    """What a probe loop recorded, once it finished: (start, answered) in start order."""
    log = f"/tmp/probe-{port}.log"
    deadline = time.monotonic() + timeout
    while True:
        out = ok(client, iid, f"cat {log} 2>/dev/null; true")
        if out.rstrip().endswith("done"):
            break
        assert time.monotonic() < deadline, f"probe loop on {iid} did not finish: {out[-500:]}"
        time.sleep(0.5)
    rows = []
    for line in out.splitlines():
        parts = line.split()
        if parts and parts[0] != "done":
            rows.append((float(parts[0]), len(parts) > 1 and parts[1] == str(port)))
    rows.sort()
    return rows


def switch_time(rows: list[tuple[float, bool]], now_ok: bool) -> float | None:
    """The start of the first probe from which on every probe's outcome is ``now_ok``."""
    at = None
    for start, answered in reversed(rows):
        if answered != now_ok:
            break
        at = start
    return at


def uptime() -> float:
    return float(Path("/proc/uptime").read_text().split()[0])


# ---------------------------------------------------------------------------------------------
# Outside instances
# ---------------------------------------------------------------------------------------------


def in_ns(ns: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(["nsenter", f"--net={netns.netns_path(ns)}", *args], capture_output=True, text=True,
                          timeout=timeout)


def fetch(ns: str, url: str, timeout: float = 3) -> dict:
    """One GET from namespace ``ns`` (netprobe.py fetch)."""
    out = in_ns(ns, sys.executable, NETPROBE, "fetch", url, str(timeout), timeout=timeout + 30)
    assert out.returncode == 0, f"netprobe fetch failed: {out.stderr}"
    return json.loads(out.stdout.strip().splitlines()[-1])


def instance_leaks(data_dir: Path, created: set[str], cgroup_parent: str = "feiyun") -> list[str]:
    """Containers, mounts and instance cgroups left by a host."""
    problems = []
    left = fe.runc_list(data_dir) if Path(data_dir).exists() else []
    if left:
        problems.append(f"containers left: {[(c['id'], c['status']) for c in left]}")
    mounts = fe.mounts_under(data_dir)
    if mounts:
        problems.append(f"mounts left: {mounts}")
    cgroups = [c for i in sorted(created) for c in fe.instance_cgroups(i, cgroup_parent)]
    if cgroups:
        problems.append(f"cgroups left: {cgroups}")
    return problems


def wait_for(what: str, check, timeout: float, every: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        v = check()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not so after {timeout}s")
        time.sleep(every)


# ---------------------------------------------------------------------------------------------
# The one-host region
# ---------------------------------------------------------------------------------------------


class OneHost:
    """``feiyun up`` in a namespace of its own, with an "internet" namespace as its outside."""

    def __init__(self, base: Path, log_dir: Path):
        self.tag = uuid.uuid4().hex[:6]
        self.base = base
        self.log_dir = log_dir
        self.subnet = netns.free_subnet()
        self.host_ns = f"fy{self.tag}h"
        self.inet_ns = f"fy{self.tag}i"
        self.root_link = f"fy{self.tag}m"
        self.api = f"169.254.{self.subnet}.1:{API_PORT}"
        self.data_dir = base / "host"
        self.namespaces: list[str] = []
        self.links: list[str] = []
        self.proc: netns.Proc | None = None
        self.internet: subprocess.Popen | None = None
        self.creds: dict | None = None
        self.accounts: list[dict] = []
        self.created: set[str] = set()
        self.prefix: str | None = None

    # network ---------------------------------------------------------------------------------
    def _add_ns(self, name: str) -> None:
        sh("ip", "netns", "add", name)
        self.namespaces.append(name)
        sh("ip", "-n", name, "link", "set", "lo", "up")

    def build(self) -> None:
        n, h, i = self.subnet, self.host_ns, self.inet_ns
        self._add_ns(h)
        self._add_ns(i)
        sh("ip", "link", "add", self.root_link, "type", "veth", "peer", "name", "mgmt0", "netns", h)
        self.links.append(self.root_link)
        sh("ip", "addr", "add", f"169.254.{n}.254/24", "dev", self.root_link)
        sh("ip", "link", "set", self.root_link, "up")
        sh("ip", "-n", h, "addr", "add", f"169.254.{n}.1/24", "dev", "mgmt0")
        sh("ip", "-n", h, "link", "set", "mgmt0", "up")
        sh("ip", "-n", h, "link", "add", "wan0", "type", "veth", "peer", "name", "wan0", "netns", i)
        sh("ip", "-n", h, "addr", "add", f"{HOST_WAN_IP}/24", "dev", "wan0")
        sh("ip", "-n", i, "addr", "add", f"{INTERNET_IP}/24", "dev", "wan0")
        sh("ip", "-n", h, "link", "set", "wan0", "up")
        sh("ip", "-n", i, "link", "set", "wan0", "up")
        sh("ip", "-n", h, "route", "add", "default", "via", INTERNET_IP)
        sh("ip", "-n", i, "route", "add", EIP_POOL, "via", HOST_WAN_IP)

    def start_internet(self) -> None:
        log = open(self.log_dir / "vpc-internet.log", "wb")
        self.internet = subprocess.Popen(["nsenter", f"--net={netns.netns_path(self.inet_ns)}", sys.executable,
                                          NETPROBE, "serve", INTERNET_IP, "80"], stdout=log, stderr=subprocess.STDOUT)
        log.close()
        wait_for("the internet's HTTP server", lambda: fetch(self.inet_ns, f"http://{INTERNET_IP}/")["ok"], 10, 0.2)

    # the server ------------------------------------------------------------------------------
    def config(self) -> str:
        return f"""
[host]
cpu_allocation_ratio = 16.0
memory_allocation_ratio = 4.0

[instances]
stop_grace_seconds = 0

[network]
eip_pool = "{EIP_POOL}"
provisioning_seconds = 0
"""

    def start(self, timeout: float = 30) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cfg = self.base / "region.toml"
        cfg.write_text(self.config())
        if self.proc is None:
            self.proc = netns.Proc("host", self.host_ns, ["up", "--data-dir", str(self.data_dir), "--listen", self.api,
                                                          "--config", str(cfg)], self.log_dir / "vpc-host.log")
        self.proc.start()
        cred_file = self.data_dir / "credentials.json"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.proc.running():
                raise RuntimeError(f"feiyun up exited during start-up:\n{self.proc.log_tail()}")
            if cred_file.exists():
                try:
                    if "RequestId" in requests.get(f"http://{self.api}/", timeout=1).json():
                        self.creds = json.loads(cred_file.read_text())
                        if self.creds not in self.accounts:
                            self.accounts.append(self.creds)
                        return
                except (OSError, ValueError, requests.RequestException):
                    pass
            time.sleep(0.05)
        raise RuntimeError(f"feiyun up is not ready after {timeout}s:\n{self.proc.log_tail()}")

    def kill9(self) -> None:
        self.proc.kill9()

    def account(self, name: str) -> dict:
        out = subprocess.run([fe.feiyun_bin(), "account", "create", fe.unique(name), "--data-dir",
                              str(self.data_dir)], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, f"account create failed: {out.stdout} {out.stderr}"
        acct = json.loads(out.stdout)
        self.accounts.append(acct)
        return acct

    def tea(self, creds: dict | None = None) -> fe.TeaClient:
        c = creds or self.creds
        return fe.TeaClient(self.api, c["AccessKeyId"], c["AccessKeySecret"])

    def vpc(self, creds: dict | None = None) -> fe.VpcClient:
        c = creds or self.creds
        return fe.VpcClient(self.api, c["AccessKeyId"], c["AccessKeySecret"])

    def raw(self, creds: dict | None = None) -> fe.RawClient:
        c = creds or self.creds
        return fe.RawClient(self.api, c["AccessKeyId"], c["AccessKeySecret"])

    def note_prefix(self) -> str | None:
        self.prefix = self.prefix or host_prefix(self.data_dir)
        return self.prefix

    # teardown --------------------------------------------------------------------------------
    def teardown(self) -> list[str]:
        """Deletes every instance through the API and checks that the host removed their
        containers, mounts, cgroups and network; stops the server, runs `feiyun teardown` in the
        host namespace and checks that nothing of the host's network is left; removes the
        namespaces and links the test made. Returns what was left behind."""
        problems: list[str] = []
        self.note_prefix()
        if self.proc is not None and self.proc.running() and self.creds:
            for acct in self.accounts:
                try:
                    raw = self.raw(acct)
                    ids = fe.all_instance_ids(raw)
                    self.created.update(ids)
                    if ids:
                        fe.force_delete(raw, ids)
                        fe.wait_gone(raw, ids, timeout=60)
                except Exception as e:  # noqa: BLE001
                    problems.append(f"removing the instances of {acct.get('AccessKeyId')} failed: {e}")
            # The host removes containers, then their namespaces and routers, asynchronously.
            def settled():
                try:
                    net = network_leaks(self.prefix, self.host_ns) if self.prefix else []
                    return not fe.runc_list(self.data_dir) and not net
                except AssertionError:  # runc list raced a container being removed
                    return False
            try:
                wait_for("the host to remove every instance and its network", settled, 30, 0.2)
            except AssertionError as e:
                problems.append(str(e))
            problems += instance_leaks(self.data_dir, self.created)
            if self.prefix:
                problems += [f"with every instance deleted: {p}" for p in network_leaks(self.prefix, self.host_ns)]
        if self.proc is not None and self.proc.stop() is None and self.proc.proc is not None:
            problems.append("feiyun up did not stop on SIGTERM")
        if self.internet is not None:
            self.internet.terminate()
            try:
                self.internet.wait(10)
            except subprocess.TimeoutExpired:
                self.internet.kill()
                self.internet.wait(10)
        if self.data_dir.exists() and self.host_ns in netns.netns_names():
            out = in_ns(self.host_ns, fe.feiyun_bin(), "teardown", "--yes", "--data-dir", str(self.data_dir),
                        timeout=120)
            if out.returncode != 0:
                problems.append(f"feiyun teardown failed: {out.stderr.strip()}")
        if self.prefix:
            problems += [f"after feiyun teardown: {p}" for p in network_leaks(self.prefix, self.host_ns)]
        problems += instance_leaks(self.data_dir, self.created)
        if fe.mounts_under(self.data_dir):
            fe.hard_cleanup(self.data_dir)
        for ns in reversed(self.namespaces):
            r = sh("ip", "netns", "del", ns, check=False)
            if r.returncode != 0:
                problems.append(f"ip netns del {ns}: {r.stderr.strip()}")
        for link in self.links:
            if link in netns.link_names():
                sh("ip", "link", "del", link, check=False)
        deadline = time.monotonic() + 10
        while True:
            left_ns = [n for n in netns.netns_names() if self.tag in n]
            left_links = [n for n in netns.link_names() if self.tag in n]
            if not (left_ns or left_links) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        if left_ns:
            problems.append(f"test namespaces left: {left_ns}")
        if left_links:
            problems.append(f"test links left: {left_links}")
        if self.data_dir.exists():
            problems.append(f"data dir left: {self.data_dir}")
        return problems
