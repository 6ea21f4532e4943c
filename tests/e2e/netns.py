"""A region of several hosts on one machine, each host in its own network namespace.

``Region`` builds, for one test run (every name carries a random tag, so that runs side by side
do not meet):

- a namespace for the control plane, holding a bridge with ``169.254.N.1/24`` (link-local, so
  nothing on it routes off the machine); ``feiyun up --no-local-host`` listens on that address;
- one namespace per agent, joined to the bridge by a veth pair (the agent's end is
  ``169.254.N.(10+k)/24``); ``feiyun agent --join http://169.254.N.1:8080`` runs inside it;
- one more veth pair from the root namespace (``169.254.N.254/24``) to the bridge, through which
  the test process reaches the API.

No process listens on the machine's real interfaces and no route leads off the bridge.

Processes enter their namespace with ``nsenter --net=/run/netns/NAME``, not ``ip netns exec``:
the latter also gives the process a mount namespace of its own with a fresh /sys (without the
cgroup hierarchies runc needs), and the instances' mounts would then be invisible from here.

Each agent puts its instances under its own cgroup (``feiyun/<tag>-<agent>``): the agents
share one machine, and an instance evacuated from one to another keeps its id.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import requests

import feiyun_e2e as fe

API_PORT = 8080
ZONE_A = "cn-local-a"
ZONE_B = "cn-local-b"


def sh(*args: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
    out = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)
    if check and out.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({out.returncode}): {out.stderr.strip()}")
    return out


def require_tools() -> list[str]:
    """What this machine lacks to run the multi-host tests (empty when nothing)."""
    missing = []
    if os.geteuid() != 0:
        missing.append("root (network namespaces and runc)")
    for tool, package in (("ip", "iproute2"), ("nsenter", "util-linux"), ("runc", "runc")):
        if shutil.which(tool) is None:
            missing.append(f"{tool} (Debian package {package})")
    return missing


def netns_path(name: str) -> str:
    for d in ("/run/netns", "/var/run/netns"):
        if os.path.exists(f"{d}/{name}"):
            return f"{d}/{name}"
    raise RuntimeError(f"network namespace {name} has no file under /run/netns")


def netns_names() -> list[str]:
    out = sh("ip", "netns", "list").stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def link_names(ns: str | None = None) -> list[str]:
    args = ["ip"] + (["-n", ns] if ns else []) + ["-o", "link", "show"]
    names = []
    for line in sh(*args).stdout.splitlines():
        # "7: name@peer: <...>"
        names.append(line.split(":")[1].strip().split("@")[0])
    return names


def free_subnet() -> int:
    """A 169.254.N.0/24 no address or route of this machine uses yet."""
    used = sh("ip", "-4", "-o", "addr", "show").stdout + sh("ip", "-4", "route", "show", "table", "all").stdout
    for _ in range(200):
        n = random.randint(1, 254)
        if n != 169 and f"169.254.{n}." not in used:
            return n
    raise RuntimeError("no free 169.254.N.0/24 subnet")


def host_prefix(data_dir: Path) -> str | None:
    """The host prefix of the last network state an agent applied (its data dir's network.json)."""
    try:
        return json.loads((Path(data_dir) / "host" / "network.json").read_text())["prefix"]
    except (OSError, ValueError, KeyError):
        return None


def network_leaks(prefix: str, host_ns: str) -> list[str]:
    """What is left of a host's network: named namespaces, links, policy rules and the nftables
    table of host prefix ``prefix``, the host's namespace being ``host_ns``. Empty when nothing
    is."""
    problems = []
    left_ns = [n for n in netns_names() if n.startswith(prefix + "-")]
    if left_ns:
        problems.append(f"namespaces of {prefix} left: {left_ns}")
    if host_ns not in netns_names():
        return problems
    pattern = re.compile(rf"^{re.escape(prefix)}[tux][0-9a-f]{{6}}$")
    links = [n for n in link_names(host_ns) if pattern.match(n)]
    if links:
        problems.append(f"links of {prefix} left in {host_ns}: {links}")
    rules = [r for r in sh("ip", "-n", host_ns, "rule", "show").stdout.splitlines() if r.startswith("32000:")]
    if rules:
        problems.append(f"policy rules left in {host_ns}: {rules}")
    tables = sh("nsenter", f"--net={netns_path(host_ns)}", "nft", "list", "tables").stdout
    if f"fy_{prefix}" in tables:
        problems.append(f"nftables table fy_{prefix} left in {host_ns}")
    return problems


def cgroup_hierarchies() -> list[Path]:
    root = Path("/sys/fs/cgroup")
    if not root.is_dir():
        return []
    return [root] + [h for h in root.iterdir() if h.is_dir()]


class Proc:
    """A feiyun process inside a network namespace, its output in a log file."""

    def __init__(self, label: str, ns: str, args: list[str], log: Path):
        self.label, self.ns, self.args, self.log_path = label, ns, args, log
        self.proc: subprocess.Popen | None = None
        self._log = None
        # One run's log: its restarts append, an earlier run's is gone.
        log.unlink(missing_ok=True)

    def start(self) -> "Proc":
        assert not self.running(), f"{self.label} runs already"
        self._log = open(self.log_path, "ab")
        self._log.write(f"\n===== start {time.ctime()} =====\n".encode())
        self._log.flush()
        env = {**os.environ, "FEIYUN_LOG": os.environ.get("FEIYUN_LOG", "info")}
        # nsenter execs the command: the Popen's pid is feiyun's own.
        self.proc = subprocess.Popen(["nsenter", f"--net={netns_path(self.ns)}", fe.feiyun_bin(), *self.args],
                                     stdout=self._log, stderr=subprocess.STDOUT, env=env)
        return self

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        assert self.proc is not None and self.running(), f"{self.label} is not running"
        self.proc.kill()
        self.proc.wait(10)
        self._close()

    def stop(self, timeout: float = 20) -> int | None:
        """SIGTERM and wait; returns the exit code, None if it had to be killed."""
        if self.proc is None:
            return None
        rc: int | None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                rc = None
        else:
            rc = self.proc.returncode
        self._close()
        return rc

    def _close(self) -> None:
        if self._log:
            self._log.close()
            self._log = None

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"


class Agent(Proc):
    def __init__(self, region: "Region", name: str, zone: str, index: int, token: str, underlay: bool = False):
        self.name, self.zone, self.index = name, zone, index
        self.ns = f"fy{region.tag}{name}"
        self.data_dir = region.base / name
        self.cgroup_parent = f"feiyun/{region.tag}-{name}"
        # The agent's address on the link network: where other hosts send its VPC traffic.
        self.underlay_ip = f"169.254.{region.subnet}.{10 + index}"
        args = ["agent", "--join", f"http://{region.api}", "--zone", zone,
                "--data-dir", str(self.data_dir), "--name", f"{region.tag}-{name}",
                "--cpus", "4", "--memory-mib", "2560", "--cpu-allocation-ratio", "1",
                "--memory-allocation-ratio", "1", "--cgroup-parent", self.cgroup_parent]
        if underlay:
            args += ["--underlay-ip", self.underlay_ip]
        super().__init__(name, self.ns, args, region.log_dir / f"hosts-{name}.log")
        self.host_name = f"{region.tag}-{name}"
        self.token = token

    def start(self) -> "Agent":
        """The first start joins with the token; later ones come back with the credential the
        host was given, kept in its data dir."""
        first = not (self.data_dir / "host" / "identity.json").exists()
        base = [a for a in self.args if a != "--token" and a != self.token]
        self.args = base + (["--token", self.token] if first else [])
        super().start()
        return self

    @property
    def runc_root(self) -> Path:
        return self.data_dir / "host" / "runc"

    def containers(self) -> dict[str, dict]:
        """runc's containers on this host, by id."""
        return {c["id"]: c for c in fe.runc_list(self.data_dir)}

    def running_ids(self) -> set[str]:
        return {i for i, c in self.containers().items() if c["status"] == "running"}

    def init_pid(self, iid: str) -> int | None:
        st = fe.runc_state(self.data_dir, iid)
        return st["pid"] if st and st["status"] == "running" else None

    def identity(self) -> dict:
        return json.loads((self.data_dir / "host" / "identity.json").read_text())

    def power_off(self) -> None:
        """What losing power does to a host: the agent and every container die at once."""
        if self.running():
            self.kill9()
        for cid in self.containers():
            sh("runc", "--root", str(self.runc_root), "kill", "--all", cid, "KILL", check=False)
        deadline = time.monotonic() + 10
        while self.running_ids() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not self.running_ids(), f"containers of {self.name} still run: {self.running_ids()}"


class Region:
    """The control plane and its agents, each in a network namespace of its own."""

    def __init__(self, base: Path, log_dir: Path, grace_seconds: int = 4, extra_config: str = ""):
        self.tag = uuid.uuid4().hex[:6]
        self.extra_config = extra_config
        self.base = base
        self.log_dir = log_dir
        self.grace = grace_seconds
        self.subnet = free_subnet()
        self.cp_ns = f"fy{self.tag}cp"
        self.root_link = f"fy{self.tag}t"
        self.api = f"169.254.{self.subnet}.1:{API_PORT}"
        self.cp_dir = base / "cp"
        self.namespaces: list[str] = []
        self.links: list[str] = []
        self.cp: Proc | None = None
        self.agents: dict[str, Agent] = {}
        self.creds: dict | None = None
        # Every instance id the tests made, for the leak check.
        self.created: set[str] = set()
        # Accounts other than the administrator's whose instances teardown deletes too.
        self.accounts: list[dict] = []
        # What the tests share as they go: the instance first placed on each agent, and the
        # instances evacuated off a host.
        self.placed: dict[str, str] = {}
        self.evacuated: list[str] = []

    # network ---------------------------------------------------------------------------------
    def _add_ns(self, name: str) -> None:
        sh("ip", "netns", "add", name)
        self.namespaces.append(name)
        sh("ip", "-n", name, "link", "set", "lo", "up")

    def build_network(self, agents: list[str]) -> None:
        n = self.subnet
        self._add_ns(self.cp_ns)
        sh("ip", "-n", self.cp_ns, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", self.cp_ns, "addr", "add", f"169.254.{n}.1/24", "dev", "br0")
        sh("ip", "-n", self.cp_ns, "link", "set", "br0", "up")
        for k, name in enumerate(agents, 1):
            ns = f"fy{self.tag}{name}"
            self._add_ns(ns)
            port = f"p{name}"
            sh("ip", "-n", self.cp_ns, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
            sh("ip", "-n", self.cp_ns, "link", "set", port, "master", "br0", "up")
            sh("ip", "-n", ns, "addr", "add", f"169.254.{n}.{10 + k}/24", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
        # The test's own way in, from the root namespace.
        sh("ip", "link", "add", self.root_link, "type", "veth", "peer", "name", "ptest", "netns", self.cp_ns)
        self.links.append(self.root_link)
        sh("ip", "-n", self.cp_ns, "link", "set", "ptest", "master", "br0", "up")
        sh("ip", "addr", "add", f"169.254.{n}.254/24", "dev", self.root_link)
        sh("ip", "link", "set", self.root_link, "up")

    # control plane ---------------------------------------------------------------------------
    def config(self) -> str:
        return f"""
[region]
id = "{fe.REGION}"
name = "Feiyun test region"
zones = [{{ id = "{ZONE_A}", name = "Zone A" }}, {{ id = "{ZONE_B}", name = "Zone B" }}]

[hosts]
heartbeat_seconds = 1
grace_seconds = {self.grace}

[scheduler]
# Emptiest host first, so that instances spread over the hosts of a zone.
policy = "spread"
""" + self.extra_config

    def start_control_plane(self, timeout: float = 30) -> None:
        self.cp_dir.mkdir(parents=True, exist_ok=True)
        cfg = self.base / "region.toml"
        cfg.write_text(self.config())
        self.cp = Proc("cp", self.cp_ns, ["up", "--no-local-host", "--data-dir", str(self.cp_dir),
                                          "--listen", self.api, "--config", str(cfg)],
                       self.log_dir / "hosts-cp.log").start()
        cred_file = self.cp_dir / "credentials.json"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.cp.running():
                raise RuntimeError(f"the control plane exited during start-up:\n{self.cp.log_tail()}")
            if cred_file.exists():
                try:
                    if "RequestId" in requests.get(f"http://{self.api}/", timeout=1).json():
                        self.creds = json.loads(cred_file.read_text())
                        return
                except (OSError, ValueError, requests.RequestException):
                    pass
            time.sleep(0.05)
        raise RuntimeError(f"the control plane is not ready after {timeout}s:\n{self.cp.log_tail()}")

    def cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        """`feiyun ARGS --data-dir <control plane's>`: the administrator's commands."""
        return subprocess.run([fe.feiyun_bin(), *args, "--data-dir", str(self.cp_dir)], capture_output=True,
                              text=True, timeout=timeout)

    def cli_json(self, *args: str) -> dict:
        out = self.cli(*args)
        assert out.returncode == 0, f"feiyun {' '.join(args)} failed ({out.returncode}): {out.stdout} {out.stderr}"
        return json.loads(out.stdout)

    def token(self, zone: str | None = None) -> str:
        return self.cli_json("host", "token", "create", *(["--zone", zone] if zone else []))["Token"]

    def tea(self, creds: dict | None = None) -> fe.TeaClient:
        c = creds or self.creds
        return fe.TeaClient(self.api, c["AccessKeyId"], c["AccessKeySecret"])

    def raw(self, creds: dict | None = None) -> fe.RawClient:
        c = creds or self.creds
        return fe.RawClient(self.api, c["AccessKeyId"], c["AccessKeySecret"])

    # hosts -----------------------------------------------------------------------------------
    def add_agent(self, name: str, zone: str, token: str, underlay: bool = False) -> Agent:
        """``underlay``: pass the agent's link address as ``--underlay-ip``."""
        a = Agent(self, name, zone, len(self.agents) + 1, token, underlay)
        self.agents[name] = a
        return a.start()

    def hosts(self) -> dict[str, dict]:
        """`feiyun host list`, by agent name."""
        by_name = {a.host_name: n for n, a in self.agents.items()}
        return {by_name.get(h["Name"], h["Name"]): h for h in self.cli_json("host", "list")["Hosts"]}

    def wait_hosts(self, want: dict[str, str], timeout: float = 30) -> dict[str, dict]:
        """Wait until each named host is in the given state (Up, Unreachable, ...)."""
        deadline = time.monotonic() + timeout
        while True:
            hosts = self.hosts()
            if all(hosts.get(n, {}).get("State") == s for n, s in want.items()):
                return hosts
            for n in want:
                a = self.agents.get(n)
                if a is not None and a.proc is not None and not a.running() and want[n] == "Up":
                    raise AssertionError(f"agent {n} exited ({a.proc.returncode}):\n{a.log_tail()}")
            if time.monotonic() > deadline:
                states = {n: h.get("State") for n, h in hosts.items()}
                raise AssertionError(f"hosts not {want} after {timeout}s: {states}")
            time.sleep(0.2)

    def where(self) -> dict[str, str]:
        """Instance id -> the agent the control plane placed it on."""
        return {i: n for n, h in self.hosts().items() for i in h["InstanceIds"]}

    def running_everywhere(self) -> dict[str, list[str]]:
        """Instance id -> every agent whose runc runs a container of it."""
        out: dict[str, list[str]] = {}
        for n, a in self.agents.items():
            for i in a.running_ids():
                out.setdefault(i, []).append(n)
        return out

    # teardown --------------------------------------------------------------------------------
    def teardown(self) -> list[str]:
        """Remove every instance, stop every process, tear down every data dir, namespace and
        link; return what was left behind (empty when nothing)."""
        problems: list[str] = []
        if self.cp is not None and self.cp.running() and self.creds:
            try:
                for acct in [self.creds, *self.accounts]:
                    raw = self.raw(acct)
                    ids = fe.all_instance_ids(raw)
                    self.created.update(ids)
                    if ids:
                        fe.force_delete(raw, ids)
                        fe.wait_gone(raw, ids, timeout=60)
                # Deleting is asynchronous on the hosts: wait for the agents that run.
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline and any(
                        a.containers() for a in self.agents.values() if a.running()):
                    time.sleep(0.2)
            except Exception as e:  # noqa: BLE001
                problems.append(f"removing the instances through the API failed: {e}")
        for a in self.agents.values():
            # A refused report is observations lost: none is expected from a real agent.
            refused = [line for line in a.log_path.read_text(errors="replace").splitlines()
                       if "report refused" in line] if a.log_path.exists() else []
            if refused:
                problems.append(f"{a.name}: reports refused by the control plane: {refused[:3]}")
            if a.running():
                left = a.containers()
                if left:
                    problems.append(f"{a.name}: containers left after every instance was deleted: {sorted(left)}")
            if a.stop() is None and a.proc is not None:
                problems.append(f"{a.name}: the agent did not stop on SIGTERM")
        if self.cp is not None and self.cp.stop() is None and self.cp.proc is not None:
            problems.append("the control plane did not stop on SIGTERM")
        # `feiyun teardown` removes whatever a data dir still holds: containers, mounts, cgroups,
        # and the host's network, found in the namespace it runs in: the agent's.
        prefixes = {}
        for a in self.agents.values():
            prefix = host_prefix(a.data_dir)
            if prefix:
                prefixes[a.name] = prefix
            if a.data_dir.exists():
                enter = ["nsenter", f"--net={netns_path(a.ns)}"] if a.ns in netns_names() else []
                out = subprocess.run([*enter, fe.feiyun_bin(), "teardown", "--yes", "--data-dir", str(a.data_dir),
                                      "--cgroup-parent", a.cgroup_parent],
                                     capture_output=True, text=True, timeout=120)
                if out.returncode != 0:
                    problems.append(f"{a.name}: feiyun teardown failed: {out.stderr.strip()}")
        for name, prefix in prefixes.items():
            problems += [f"{name}: {p}" for p in network_leaks(prefix, self.agents[name].ns)]
        if self.cp_dir.exists():
            out = subprocess.run([fe.feiyun_bin(), "teardown", "--yes", "--data-dir", str(self.cp_dir)],
                                 capture_output=True, text=True, timeout=120)
            if out.returncode != 0:
                problems.append(f"control plane: feiyun teardown failed: {out.stderr.strip()}")
        # Each agent's own cgroup parent goes too; rmdir refuses while an instance's is inside.
        for a in self.agents.values():
            for h in cgroup_hierarchies():
                d = h / a.cgroup_parent
                if d.is_dir():
                    try:
                        d.rmdir()
                    except OSError as e:
                        problems.append(f"{a.name}: cgroup {d} not empty: {e}")
        for ns in reversed(self.namespaces):
            r = sh("ip", "netns", "del", ns, check=False)
            if r.returncode != 0:
                problems.append(f"ip netns del {ns}: {r.stderr.strip()}")
        for link in self.links:
            if link in link_names():
                sh("ip", "link", "del", link, check=False)
        # What is left: namespaces, links (they go with their namespace, asynchronously), mounts,
        # data dirs, cgroups.
        deadline = time.monotonic() + 10
        while True:
            left_ns = [n for n in netns_names() if self.tag in n]
            left_links = [n for n in link_names() if self.tag in n]
            if not (left_ns or left_links) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        if left_ns:
            problems.append(f"network namespaces left: {left_ns}")
        if left_links:
            problems.append(f"links left: {left_links}")
        mounts = fe.mounts_under(self.base)
        if mounts:
            problems.append(f"mounts left: {mounts}")
            for a in self.agents.values():
                fe.hard_cleanup(a.data_dir)
        dirs = [str(p) for p in [self.cp_dir, *(a.data_dir for a in self.agents.values())] if p.exists()]
        if dirs:
            problems.append(f"data dirs left: {dirs}")
        cgroups = [str(p) for h in cgroup_hierarchies() if (h / "feiyun").is_dir()
                   for p in (h / "feiyun").rglob("*") if p.is_dir() and (self.tag in p.name or p.name in self.created)]
        if cgroups:
            problems.append(f"cgroups left under feiyun/: {cgroups}")
        return problems
