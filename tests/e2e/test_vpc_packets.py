"""VPC networking proven with packets, through the real binary and the official VPC and ECS SDKs.

One host (``vpcnet.OneHost``): `feiyun up` in a namespace of its own whose only way out is an
"internet" namespace the test made, with the region's EIP pool routed from there back to the
host. Instances run busybox servers and clients through RunCommand; the internet namespace runs
a small HTTP server that answers with the caller's address. Proven here: TCP inside a VPC;
two accounts' VPCs with the same CIDR never meet; security-group allow, deny, priority (drop wins
ties), group-reference rules, and how fast a rule change reaches a running instance; an EIP
reachable from the internet and unreachable once unassociated; SNAT of instances without one;
the egress cap of InternetMaxBandwidthOut; the metadata service; the default VPC; and a server
killed with SIGKILL right after RunInstances, restarted, converging.

Three hosts (``netns.Region``, agents started with ``--underlay-ip`` on the link network): TCP
between instances of one VPC on different hosts over VXLAN, security groups across hosts, two
VPCs with one CIDR spanning the same hosts kept apart, and agents killed with SIGKILL right after
RunInstances converging when they come back.

Both fixtures delete every instance through the API and check that the hosts removed every
container, mount, cgroup, namespace, link, rule and nftables table (then `feiyun teardown`
and the check again), also when a test failed.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

import feiyun_e2e as fe
import netns
import vpcnet as vn
from netns import ZONE_A, ZONE_B

LOG_DIR = fe.E2E_DIR / ".logs"


def fail_on(problems: list[str], what: str) -> None:
    if problems:
        pytest.fail(f"{what} left things behind:\n" + "\n".join(problems), pytrace=False)


def network(vpc_client, tea, block: str, vswitches: list[tuple[str, str]], name: str = "net"):
    """A VPC with vSwitches ``[(zone, block)]`` and one basic group: (vpc, [vswitch], group)."""
    v = vpc_client.call("CreateVpc", {"RegionId": fe.REGION, "CidrBlock": block, "VpcName": name})["VpcId"]
    vs = [vpc_client.call("CreateVSwitch", {"RegionId": fe.REGION, "VpcId": v, "ZoneId": zone,
                                            "CidrBlock": b, "VSwitchName": name})["VSwitchId"]
          for zone, b in vswitches]
    g = tea.call("CreateSecurityGroup", {"RegionId": fe.REGION, "VpcId": v, "SecurityGroupName": name})[
        "SecurityGroupId"]
    return v, vs, g


def group(tea, vpc_id: str, name: str) -> str:
    return tea.call("CreateSecurityGroup", {"RegionId": fe.REGION, "VpcId": vpc_id,
                                            "SecurityGroupName": name})["SecurityGroupId"]


def allow(tea, gid: str, *rules: dict) -> None:
    tea.call("AuthorizeSecurityGroup", {"RegionId": fe.REGION, "SecurityGroupId": gid, "Permissions": list(rules)})


def tcp(port: int, policy: str = "accept", priority: int = 1, cidr: str | None = None, group_id: str | None = None):
    r = {"IpProtocol": "tcp", "PortRange": f"{port}/{port}", "Policy": policy, "Priority": str(priority)}
    if group_id:
        r["SourceGroupId"] = group_id
    else:
        r["SourceCidrIp"] = cidr or "0.0.0.0/0"
    return r


def boot(created: set[str], tea, amount: int = 1, timeout: float = 60, **params) -> list[str]:
    ids = fe.run_instances(tea, amount=amount, **params)
    created.update(ids)
    fe.wait_status(tea, ids, "Running", timeout=timeout)
    return ids


def private_ip(tea, iid: str) -> str:
    return fe.describe(tea, [iid])[0]["VpcAttributes"]["PrivateIpAddress"]["IpAddress"][0]


def eth0_ip(tea, iid: str) -> str:
    out = vn.ok(tea, iid, "ip -4 -o addr show dev eth0")
    return out.split()[3].split("/")[0]


# ---------------------------------------------------------------------------------------------
# One host
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="class")
def one():
    missing = netns.require_tools()
    if missing:
        pytest.fail("the VPC packet tests need " + ", ".join(missing), pytrace=False)
    LOG_DIR.mkdir(exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix="feiyun-e2e-vpcnet-"))
    h = vn.OneHost(base, LOG_DIR)
    try:
        h.build()
        h.start_internet()
        h.start()
    except BaseException:
        print("\n".join(h.teardown()))
        raise
    yield h
    problems = h.teardown()
    if os.environ.get("FEIYUN_E2E_KEEP") != "1" and not fe.mounts_under(base):
        shutil.rmtree(base, ignore_errors=True)
    fail_on(problems, "the one-host region")


@pytest.fixture(scope="class")
def vpc_a(one):
    """Account A's VPC 192.168.0.0/16 with two instances that talk: a1 (192.168.1.1) and a2
    (192.168.1.2, serving HTTP)."""
    tea, vpc = one.tea(), one.vpc()
    v, (s,), g = network(vpc, tea, "192.168.0.0/16", [(fe.ZONE, "192.168.1.0/24")], "net-a")
    a1, a2 = boot(one.created, tea, 2, VSwitchId=s, SecurityGroupId=g)
    return {"vpc": v, "vsw": s, "group": g, "a1": a1, "a2": a2, "tea": tea, "vpc_client": vpc}


class TestOneHost:
    def test_instances_of_a_vpc_talk_and_overlapping_vpcs_of_two_accounts_never_meet(self, one, vpc_a):
        tea = vpc_a["tea"]
        a1, a2 = vpc_a["a1"], vpc_a["a2"]
        assert (private_ip(tea, a1), private_ip(tea, a2)) == ("192.168.1.1", "192.168.1.2")
        assert eth0_ip(tea, a1) == "192.168.1.1"
        vn.httpd(tea, a2, "account-a")
        assert vn.wait_for("a1 to reach a2", lambda: vn.wget(tea, a1, "http://192.168.1.2/"), 10) == "account-a\n"

        # Account B: the same blocks, three instances at .1, .2, .3.
        b = one.account("vpcb")
        tea_b = one.tea(b)
        _, (sb,), gb = network(one.vpc(b), tea_b, "192.168.0.0/16", [(fe.ZONE, "192.168.1.0/24")], "net-b")
        b1, b2, b3 = boot(one.created, tea_b, 3, VSwitchId=sb, SecurityGroupId=gb)
        assert [private_ip(tea_b, i) for i in (b1, b2, b3)] == ["192.168.1.1", "192.168.1.2", "192.168.1.3"]
        vn.httpd(tea_b, b2, "account-b")
        vn.httpd(tea_b, b3, "account-b-3")
        # Each account's 192.168.1.2 is its own.
        assert vn.wget(tea_b, b1, "http://192.168.1.2/") == "account-b\n"
        assert vn.wget(tea, a1, "http://192.168.1.2/") == "account-a\n"
        # An address only B uses is nothing in A's VPC (routed nowhere: refused at once).
        assert vn.wget(tea_b, b1, "http://192.168.1.3/") == "account-b-3\n"
        assert vn.wget(tea, a1, "http://192.168.1.3/") is None
        # Raw TCP with nc both ways round.
        vn.nc_servers(tea, a1, [7000])
        vn.nc_servers(tea_b, b1, [7000])
        assert vn.probe(tea, a2, "192.168.1.1", [7000]) == {7000: True}
        assert vn.probe(tea_b, b2, "192.168.1.1", [7000]) == {7000: True}
        out = vn.ok(tea_b, b2, "nc -w 2 192.168.1.1 7000 </dev/null")
        assert out.strip() == "7000"

    def test_security_groups_allow_deny_priority_and_source_groups(self, one, vpc_a):
        tea, v, s = vpc_a["tea"], vpc_a["vpc"], vpc_a["vsw"]
        srv, cli, oth = group(tea, v, "sg-srv"), group(tea, v, "sg-cli"), group(tea, v, "sg-oth")
        net = "192.168.0.0/16"
        allow(tea, srv,
              tcp(7080, priority=10, cidr=net),
              # 7082: an accept at priority 1 beats a drop at priority 2.
              tcp(7082, "drop", 2, net), tcp(7082, "accept", 1, net),
              # 7083: equal priority, the drop wins.
              tcp(7083, "accept", 5, net), tcp(7083, "drop", 5, net),
              # 7084: members of the client group only.
              tcp(7084, priority=10, group_id=cli))
        server, = boot(one.created, tea, VSwitchId=s, SecurityGroupId=srv)
        c1, = boot(one.created, tea, VSwitchId=s, SecurityGroupId=cli)
        c2, = boot(one.created, tea, VSwitchId=s, SecurityGroupId=oth)
        ports = [7080, 7081, 7082, 7083, 7084]
        vn.nc_servers(tea, server, ports)
        ip = private_ip(tea, server)
        assert vn.probe(tea, c1, ip, ports) == {7080: True, 7081: False, 7082: True, 7083: False, 7084: True}
        assert vn.probe(tea, c2, ip, [7080, 7084]) == {7080: True, 7084: False}

        # A rule added to a group reaches the running instance: new connections to 7081 from c1
        # are tried every 25 ms; the change counts from the moment the call was sent.
        vn.start_probe_loop(tea, c1, ip, 7081, seconds=4)
        time.sleep(1)
        sent, t0 = vn.uptime(), time.monotonic()
        allow(tea, srv, tcp(7081, priority=10, cidr=net))
        call = time.monotonic() - t0
        rows = vn.probe_log(tea, c1, 7081)
        opened = vn.switch_time(rows, True)
        assert opened is not None and any(not ok for _, ok in rows), rows
        authorize = opened - sent
        # Revoking closes it again.
        vn.start_probe_loop(tea, c1, ip, 7081, seconds=4)
        time.sleep(1)
        sent = vn.uptime()
        tea.call("RevokeSecurityGroup", {"RegionId": fe.REGION, "SecurityGroupId": srv, "IpProtocol": "tcp",
                                         "PortRange": "7081/7081", "SourceCidrIp": net, "Policy": "accept",
                                         "Priority": "10"})
        rows = vn.probe_log(tea, c1, 7081)
        closed = vn.switch_time(rows, False)
        assert closed is not None and any(ok for _, ok in rows), rows
        revoke = closed - sent
        print(f"\nsecurity group change reaching a running instance: authorize {authorize * 1000:.0f} ms, "
              f"revoke {revoke * 1000:.0f} ms (the AuthorizeSecurityGroup call itself took {call * 1000:.0f} ms)")
        assert authorize < 2.0 and revoke < 2.0, (authorize, revoke)

        # A membership change: c2 joins the client group and reaches 7084.
        tea.call("JoinSecurityGroup", {"RegionId": fe.REGION, "SecurityGroupId": cli, "InstanceId": c2})
        vn.wait_for("c2 to reach 7084 as a member", lambda: vn.probe(tea, c2, ip, [7084])[7084], 10, 0.2)
        # And a drop beats an accept of the same priority across two groups of one instance: the
        # server joins a group that drops 7080 at the priority its own group accepts it.
        deny = group(tea, v, "sg-deny")
        allow(tea, deny, tcp(7080, "drop", 10, net))
        tea.call("JoinSecurityGroup", {"RegionId": fe.REGION, "SecurityGroupId": deny, "InstanceId": server})
        vn.wait_for("the drop of the second group to win the tie",
                    lambda: not vn.probe(tea, c1, ip, [7080])[7080], 10, 0.2)

    def test_an_eip_is_reachable_from_the_internet_until_unassociated_and_others_go_out_by_snat(self, one, vpc_a):
        tea, vpc, v, s = vpc_a["tea"], vpc_a["vpc_client"], vpc_a["vpc"], vpc_a["vsw"]
        web = group(tea, v, "sg-web")
        allow(tea, web, tcp(80))
        w, = boot(one.created, tea, VSwitchId=s, SecurityGroupId=web)
        vn.httpd(tea, w, "web")
        eip = vpc.call("AllocateEipAddress", {"RegionId": fe.REGION, "Bandwidth": "200"})
        vpc.call("AssociateEipAddress", {"RegionId": fe.REGION, "AllocationId": eip["AllocationId"], "InstanceId": w})
        addr = eip["EipAddress"]
        got = vn.wait_for("the EIP to answer from the internet",
                          lambda: (r := vn.fetch(one.inet_ns, f"http://{addr}/cgi-bin/ip"))["ok"] and r, 10, 0.2)
        # The guest sees the caller's own address (busybox httpd writes it as IPv4-mapped IPv6).
        assert got["body"].strip().removeprefix("[::ffff:").removesuffix("]") == vn.INTERNET_IP, got
        assert vn.fetch(one.inet_ns, f"http://{addr}/")["body"] == "web\n"
        # Out of the instance, the internet sees the EIP; without one, the host's address.
        assert vn.wget(tea, w, f"http://{vn.INTERNET_IP}/") == f"{addr}\n"
        assert vn.wget(tea, vpc_a["a1"], f"http://{vn.INTERNET_IP}/") == f"{vn.HOST_WAN_IP}\n"
        # The metadata service knows the EIP.
        assert vn.wget(tea, w, "http://100.100.100.200/latest/meta-data/eipv4") == addr

        t0 = time.monotonic()
        vpc.call("UnassociateEipAddress", {"RegionId": fe.REGION, "AllocationId": eip["AllocationId"],
                                           "InstanceId": w})
        vn.wait_for("the EIP to stop answering", lambda: not vn.fetch(one.inet_ns, f"http://{addr}/", 0.3)["ok"],
                    10, 0.02)
        print(f"\nEIP unreachable {1000 * (time.monotonic() - t0):.0f} ms after UnassociateEipAddress was sent")
        assert vn.wget(tea, w, f"http://{vn.INTERNET_IP}/") == f"{vn.HOST_WAN_IP}\n"
        vpc.call("ReleaseEipAddress", {"RegionId": fe.REGION, "AllocationId": eip["AllocationId"]})

    def test_internet_max_bandwidth_out_caps_egress(self, one, vpc_a):
        tea, v, s = vpc_a["tea"], vpc_a["vpc"], vpc_a["vsw"]
        web = group(tea, v, "sg-bw")
        allow(tea, web, tcp(80))
        capped, = boot(one.created, tea, VSwitchId=s, SecurityGroupId=web, InternetMaxBandwidthOut=8)
        public = fe.describe(tea, [capped])[0]["PublicIpAddress"]["IpAddress"][0]
        vn.httpd(tea, capped, "capped")
        vn.ok(tea, capped, "dd if=/dev/zero of=/www/big bs=64k count=32 2>/dev/null")  # 2 MiB
        vn.wait_for("the public address to answer", lambda: vn.fetch(one.inet_ns, f"http://{public}/")["ok"], 10, 0.2)
        r = vn.fetch(one.inet_ns, f"http://{public}/big", 30)
        assert r["ok"] and r["bytes"] == 2 << 20, r
        mbps = r["bytes"] * 8 / r["seconds"] / 1e6
        print(f"\negress capped at 8 Mbit/s: 2 MiB in {r['seconds']:.2f} s = {mbps:.1f} Mbit/s")
        assert 4 <= mbps <= 10, mbps

    def test_metadata_answers_what_describe_instances_says(self, one, vpc_a):
        tea, a1 = vpc_a["tea"], vpc_a["a1"]
        inst = fe.describe(tea, [a1])[0]
        nic = inst["NetworkInterfaces"]["NetworkInterface"][0]
        base = "http://100.100.100.200/latest/meta-data/"
        want = {
            "instance-id": a1,
            "private-ipv4": inst["VpcAttributes"]["PrivateIpAddress"]["IpAddress"][0],
            "mac": nic["MacAddress"],
            "vpc-id": inst["VpcAttributes"]["VpcId"],
            "vswitch-id": inst["VpcAttributes"]["VSwitchId"],
            "hostname": inst["HostName"],
            "instance/instance-type": inst["InstanceType"],
        }
        got = {k: vn.wget(tea, a1, base + k) for k in want}
        assert got == want
        mac = nic["MacAddress"]
        assert vn.wget(tea, a1, f"{base}network/interfaces/macs/{mac}/gateway") == "192.168.1.253"
        assert vn.wget(tea, a1, f"{base}network/interfaces/macs/{mac}/network-interface-id") == \
            nic["NetworkInterfaceId"]
        # The guest's own view matches: its address, its MAC, its gateway.
        assert eth0_ip(tea, a1) == want["private-ipv4"]
        assert mac in vn.ok(tea, a1, "ip -o link show dev eth0")
        assert "via 192.168.1.253" in vn.ok(tea, a1, "ip -4 route show default")

    def test_an_account_that_never_made_a_vpc_gets_a_default_one_whose_instances_talk(self, one):
        c = one.account("vpcdef")
        tea, vpc = one.tea(c), one.vpc(c)
        assert vpc.call("DescribeVpcs", {"RegionId": fe.REGION})["TotalCount"] == 0
        d1, d2 = boot(one.created, tea, 2)
        vpcs = vpc.call("DescribeVpcs", {"RegionId": fe.REGION})["Vpcs"]["Vpc"]
        assert [(x["CidrBlock"], x["IsDefault"]) for x in vpcs] == [("172.16.0.0/12", True)]
        assert [private_ip(tea, i) for i in (d1, d2)] == ["172.16.0.1", "172.16.0.2"]
        vn.httpd(tea, d2, "default-vpc")
        assert vn.wget(tea, d1, "http://172.16.0.2/") == "default-vpc\n"
        # The default group lets SSH in from anywhere: d2 listens on 22, d1 reaches it.
        vn.nc_servers(tea, d2, [22])
        assert vn.probe(tea, d1, "172.16.0.2", [22]) == {22: True}
        # And it goes out through SNAT like any other.
        assert vn.wget(tea, d1, f"http://{vn.INTERNET_IP}/") == f"{vn.HOST_WAN_IP}\n"

    def test_a_server_killed_right_after_run_instances_converges_when_restarted(self, one, vpc_a):
        tea, s, g, a1 = vpc_a["tea"], vpc_a["vsw"], vpc_a["group"], vpc_a["a1"]
        one.note_prefix()
        ids = fe.run_instances(tea, VSwitchId=s, SecurityGroupId=g)
        one.kill9()
        one.created.update(ids)
        k = ids[0]
        one.start()
        fe.wait_status(tea, [k], "Running", timeout=60)
        ip = private_ip(tea, k)
        assert eth0_ip(tea, k) == ip
        vn.httpd(tea, k, "after-the-kill")
        assert vn.wget(tea, a1, f"http://{ip}/") == "after-the-kill\n"
        # The instances that ran before the kill kept their network.
        assert vn.wget(tea, a1, "http://192.168.1.2/") == "account-a\n"
        # One namespace per instance, nothing more: the kill left no half-made leftover.
        prefix = one.note_prefix()
        mine = sorted(n for n in netns.netns_names() if n.startswith(f"{prefix}-i-"))
        listed = sorted(f"{prefix}-i-{i}" for a in one.accounts for i in fe.all_instance_ids(one.raw(a)))
        assert mine == listed


# ---------------------------------------------------------------------------------------------
# Three hosts
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="class")
def region3():
    missing = netns.require_tools()
    if missing:
        pytest.fail("the multi-host VPC tests need " + ", ".join(missing), pytrace=False)
    LOG_DIR.mkdir(exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix="feiyun-e2e-vpchosts-"))
    r = netns.Region(base, LOG_DIR, grace_seconds=10, extra_config="\n[instances]\nstop_grace_seconds = 0\n\n"
                                                                   "[network]\nprovisioning_seconds = 0\n")
    try:
        r.build_network(["a1", "a2", "a3"])
        r.start_control_plane()
        zone_a, zone_b = r.token(ZONE_A), r.token(ZONE_B)
        r.add_agent("a1", ZONE_A, zone_a, underlay=True)
        r.add_agent("a2", ZONE_A, zone_a, underlay=True)
        r.add_agent("a3", ZONE_B, zone_b, underlay=True)
        r.wait_hosts({"a1": "Up", "a2": "Up", "a3": "Up"})
    except BaseException:
        print("\n".join(r.teardown()))
        raise
    yield r
    problems = r.teardown()
    if os.environ.get("FEIYUN_E2E_KEEP") != "1" and not fe.mounts_under(base):
        shutil.rmtree(base, ignore_errors=True)
    fail_on(problems, "the three-host region")


@pytest.fixture(scope="class")
def spanning(region3):
    """Account A's VPC 192.168.0.0/16 over two zones (192.168.1.0/24 in A, 192.168.2.0/24 in B):
    x on a host of zone A, y on the zone-B host."""
    tea, vpc = region3.tea(), fe.VpcClient(region3.api, region3.creds["AccessKeyId"],
                                           region3.creds["AccessKeySecret"])
    v, (sa, sb), g = network(vpc, tea, "192.168.0.0/16", [(ZONE_A, "192.168.1.0/24"), (ZONE_B, "192.168.2.0/24")],
                             "span-a")
    x, = boot(region3.created, tea, VSwitchId=sa, SecurityGroupId=g)
    y, = boot(region3.created, tea, VSwitchId=sb, SecurityGroupId=g)
    return {"tea": tea, "vpc": v, "vsw_a": sa, "vsw_b": sb, "group": g, "x": x, "y": y}


def vxlan_packets(region, agent: str, vni: int) -> tuple[int, int]:
    """(rx, tx) packets of the VPC's VXLAN device in the router of ``agent``'s host."""
    prefix = netns.host_prefix(region.agents[agent].data_dir)
    out = netns.sh("ip", "-n", f"{prefix}-r-{vni}", "-s", "-j", "link", "show", "vx0").stdout
    stats = json.loads(out)[0]["stats64"]
    return stats["rx"]["packets"], stats["tx"]["packets"]


class TestThreeHosts:
    def test_instances_of_one_vpc_on_two_hosts_talk_over_vxlan_and_security_groups_hold(self, region3, spanning):
        tea, x, y = spanning["tea"], spanning["x"], spanning["y"]
        where = region3.where()
        assert where[x] in ("a1", "a2") and where[y] == "a3", where
        assert (private_ip(tea, x), private_ip(tea, y)) == ("192.168.1.1", "192.168.2.1")
        applied = json.loads((region3.agents["a3"].data_dir / "host" / "network.json").read_text())
        vni = applied["vpcs"][0]["vni"]
        before = vxlan_packets(region3, "a3", vni)
        vn.httpd(tea, y, "y-on-a3")
        assert vn.wait_for("x to reach y across hosts", lambda: vn.wget(tea, x, "http://192.168.2.1/"), 10) == \
            "y-on-a3\n"
        vn.nc_servers(tea, x, [7000])
        assert vn.probe(tea, y, "192.168.1.1", [7000]) == {7000: True}
        after = vxlan_packets(region3, "a3", vni)
        assert after[0] > before[0] and after[1] > before[1], (before, after)
        assert vxlan_packets(region3, where[x], vni)[1] > 0

        # Security groups across hosts: z (zone B, a3) serves 7080 and 7081 to x's group only
        # on 7080; w (zone A) in another group reaches neither.
        v = spanning["vpc"]
        srv, other = group(tea, v, "span-srv"), group(tea, v, "span-oth")
        allow(tea, srv, tcp(7080, priority=10, group_id=spanning["group"]),
              tcp(7081, "drop", 1, "192.168.1.0/24"), tcp(7081, "accept", 1, "192.168.0.0/16"))
        z, = boot(region3.created, tea, VSwitchId=spanning["vsw_b"], SecurityGroupId=srv)
        w, = boot(region3.created, tea, VSwitchId=spanning["vsw_a"], SecurityGroupId=other)
        where = region3.where()
        assert where[z] == "a3" and where[w] in ("a1", "a2"), where
        zip_ = private_ip(tea, z)
        vn.nc_servers(tea, z, [7080, 7081])
        assert vn.probe(tea, x, zip_, [7080, 7081]) == {7080: True, 7081: False}
        assert vn.probe(tea, w, zip_, [7080, 7081]) == {7080: False, 7081: False}
        # From the same host as z, 7081 is accepted (192.168.2.0/24 is not dropped).
        assert vn.probe(tea, y, zip_, [7080, 7081]) == {7080: True, 7081: True}
        # w joins x's group: the member set changes on z's host, and w gets in.
        tea.call("JoinSecurityGroup", {"RegionId": fe.REGION, "SecurityGroupId": spanning["group"], "InstanceId": w})
        vn.wait_for("w to reach z as a member of x's group", lambda: vn.probe(tea, w, zip_, [7080])[7080], 10, 0.2)

    def test_a_vpc_spanning_hosts_is_isolated_from_another_with_the_same_cidr(self, region3, spanning):
        tea = spanning["tea"]
        b = region3.cli_json("account", "create", fe.unique("spanb"))
        region3.accounts.append(b)
        tea_b = region3.tea(b)
        vpc_b = fe.VpcClient(region3.api, b["AccessKeyId"], b["AccessKeySecret"])
        _, (sa, sb), g = network(vpc_b, tea_b, "192.168.0.0/16",
                                 [(ZONE_A, "192.168.1.0/24"), (ZONE_B, "192.168.2.0/24")], "span-b")
        bx, = boot(region3.created, tea_b, VSwitchId=sa, SecurityGroupId=g)
        by, = boot(region3.created, tea_b, VSwitchId=sb, SecurityGroupId=g)
        # Account B's instances sit at the very addresses of A's x and y.
        assert (private_ip(tea_b, bx), private_ip(tea_b, by)) == ("192.168.1.1", "192.168.2.1")
        where = region3.where()
        assert where[by] == "a3" and where[bx] in ("a1", "a2"), where
        vn.httpd(tea_b, by, "by-of-b")
        assert vn.wait_for("bx to reach by", lambda: vn.wget(tea_b, bx, "http://192.168.2.1/"), 10) == "by-of-b\n"
        # Each account's 192.168.2.1 and 192.168.1.1 are its own, across hosts both ways: bx
        # serves HTTP, A's x does not.
        assert vn.wget(tea, spanning["x"], "http://192.168.2.1/") == "y-on-a3\n"
        vn.httpd(tea_b, bx, "bx-of-b")
        assert vn.wget(tea_b, by, "http://192.168.1.1/") == "bx-of-b\n"
        assert vn.wget(tea, spanning["y"], "http://192.168.1.1/") is None

    def test_agents_killed_right_after_run_instances_converge_when_restarted(self, region3, spanning):
        tea, x = spanning["tea"], spanning["x"]
        ids = fe.run_instances(tea, VSwitchId=spanning["vsw_a"], SecurityGroupId=spanning["group"])
        # The instance goes to one of zone A's hosts: kill both mid-apply.
        for name in ("a1", "a2"):
            region3.agents[name].kill9()
        region3.created.update(ids)
        k = ids[0]
        for name in ("a1", "a2"):
            region3.agents[name].start()
        region3.wait_hosts({"a1": "Up", "a2": "Up", "a3": "Up"}, timeout=30)
        fe.wait_status(tea, [k], "Running", timeout=60)
        ip = private_ip(tea, k)
        assert eth0_ip(tea, k) == ip
        vn.httpd(tea, k, "after-the-kill")
        assert vn.wait_for("x to reach the new instance", lambda: vn.wget(tea, x, f"http://{ip}/"), 10) == \
            "after-the-kill\n"
        assert vn.wait_for("y (zone B) to reach it", lambda: vn.wget(tea, spanning["y"], f"http://{ip}/"), 10) == \
            "after-the-kill\n"
        # The instances that ran before kept their network.
        assert vn.wget(tea, x, "http://192.168.2.1/") == "y-on-a3\n"
