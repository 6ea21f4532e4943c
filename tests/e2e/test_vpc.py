"""VPC networking through the official SDKs: VPC 2016-04-28 (VPCs, vSwitches, EIPs) and ECS
(security groups, instances' network parameters and attributes), on one host. What reaches the
host's kernel is tested elsewhere; here the API shapes, the defaults and the documented errors."""

import json
import time

import pytest

import feiyun_e2e as fe

POOL_CONFIG = """
[network]
eip_pool = "203.0.113.0/29"
provisioning_seconds = 3
"""


def vpc_models():
    from alibabacloud_vpc20160428 import models as vpc

    return vpc


def ecs_models():
    from alibabacloud_ecs20140526 import models as ecs

    return ecs


def wait_available(vpc_client, kind: str, rid: str, timeout: float = 30.0) -> None:
    m = vpc_models()
    deadline = time.monotonic() + timeout
    while True:
        if kind == "vpc":
            body = vpc_client.typed("describe_vpc_attribute", m.DescribeVpcAttributeRequest(region_id=fe.REGION, vpc_id=rid))
        else:
            body = vpc_client.typed("describe_vswitch_attributes",
                                    m.DescribeVSwitchAttributesRequest(region_id=fe.REGION, v_switch_id=rid))
        if body.status == "Available":
            return
        assert body.status == "Pending", body.to_map()
        assert time.monotonic() < deadline, f"{rid} still {body.status}"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def pool_server():
    """A server of its own, with a public address pool and VPCs that stay Pending for 3 s."""
    from conftest import ServerFactory

    factory = ServerFactory("vpc")
    srv = factory.start("pool", config=POOL_CONFIG)
    yield srv
    problems = factory.teardown()
    if problems:
        pytest.fail("leak check failed:\n" + "\n".join(problems), pytrace=False)


def network(vpc_client, ecs_client, block: str, vsw_block: str, name: str = "net"):
    """A VPC with one vSwitch and a basic group, all available: (vpc, vswitch, group)."""
    m = vpc_models()
    v = vpc_client.typed("create_vpc", m.CreateVpcRequest(region_id=fe.REGION, cidr_block=block, vpc_name=name)).vpc_id
    wait_available(vpc_client, "vpc", v)
    s = vpc_client.typed("create_vswitch", m.CreateVSwitchRequest(
        region_id=fe.REGION, vpc_id=v, zone_id=fe.ZONE, cidr_block=vsw_block, v_switch_name=name)).v_switch_id
    wait_available(vpc_client, "vswitch", s)
    g = ecs_client.call("CreateSecurityGroup", {"RegionId": fe.REGION, "VpcId": v,
                                                "SecurityGroupName": name})["SecurityGroupId"]
    return v, s, g


def test_vpcs_and_vswitches_with_the_vpc_sdk(pool_server):
    m = vpc_models()
    vpc = pool_server.vpc()
    tea = pool_server.tea()
    created = vpc.typed("create_vpc", m.CreateVpcRequest(region_id=fe.REGION, cidr_block="10.20.0.0/16",
                                                         vpc_name="web", description="the web tier"))
    vid = created.vpc_id
    assert vid.startswith("vpc-")
    attr = vpc.typed("describe_vpc_attribute", m.DescribeVpcAttributeRequest(region_id=fe.REGION, vpc_id=vid))
    assert attr.status == "Pending", "a new VPC is being configured for a moment"
    assert (attr.cidr_block, attr.vpc_name, attr.description, attr.is_default) == ("10.20.0.0/16", "web", "the web tier", False)
    fe.expect_error(vpc.call, "CreateVSwitch", {"RegionId": fe.REGION, "VpcId": vid, "ZoneId": fe.ZONE,
                                               "CidrBlock": "10.20.1.0/24"}, status=400, code="IncorrectVpcStatus")
    wait_available(vpc, "vpc", vid)
    sid = vpc.typed("create_vswitch", m.CreateVSwitchRequest(region_id=fe.REGION, vpc_id=vid, zone_id=fe.ZONE,
                                                            cidr_block="10.20.1.0/24", v_switch_name="a")).v_switch_id
    assert sid.startswith("vsw-")
    wait_available(vpc, "vswitch", sid)
    listed = vpc.typed("describe_vswitches", m.DescribeVSwitchesRequest(region_id=fe.REGION, vpc_id=vid))
    assert listed.total_count == 1
    s = listed.v_switches.v_switch[0]
    assert (s.v_switch_id, s.cidr_block, s.zone_id, s.available_ip_address_count) == (sid, "10.20.1.0/24", fe.ZONE, 252)
    vpcs = vpc.typed("describe_vpcs", m.DescribeVpcsRequest(region_id=fe.REGION, vpc_id=vid))
    assert vpcs.vpcs.vpc[0].v_switch_ids.v_switch_id == [sid]
    assert vpcs.vpcs.vpc[0].status == "Available"
    vpc.typed("modify_vpc_attribute", m.ModifyVpcAttributeRequest(region_id=fe.REGION, vpc_id=vid, vpc_name="web-2"))
    assert vpc.call("DescribeVpcAttribute", {"RegionId": fe.REGION, "VpcId": vid})["VpcName"] == "web-2"

    # Refusals, as documented.
    for block, code in [("10.20.1.128/25", "InvalidCidrBlock.Overlapped"), ("10.21.0.0/24", "InvalidCidrBlock.Malformed"),
                        ("10.20.9.0/30", "InvalidCidrBlock.Malformed"), ("10.20.9.0/33", "InvalidCidrBlock.Malformed"),
                        ("not-a-block", "InvalidCidrBlock.Malformed")]:
        fe.expect_error(vpc.call, "CreateVSwitch", {"RegionId": fe.REGION, "VpcId": vid, "ZoneId": fe.ZONE,
                                                   "CidrBlock": block}, status=400, code=code)
    for block in ["100.64.0.0/16", "10.0.0.1/8", "192.168.0.0/29"]:
        fe.expect_error(vpc.call, "CreateVpc", {"RegionId": fe.REGION, "CidrBlock": block},
                        status=400, code="InvalidCidrBlock.Malformed")
    fe.expect_error(vpc.call, "DescribeVpcAttribute", {"RegionId": fe.REGION, "VpcId": "vpc-nothere"},
                    status=404, code="InvalidVpcId.NotFound")
    fe.expect_error(vpc.call, "DeleteVpc", {"RegionId": fe.REGION, "VpcId": vid}, status=400,
                    code="DependencyViolation.VSwitch")

    # An instance in the vSwitch, at the address asked for.
    g = tea.call("CreateSecurityGroup", {"RegionId": fe.REGION, "VpcId": vid})["SecurityGroupId"]
    e = ecs_models()
    run = tea.typed("run_instances", e.RunInstancesRequest(
        region_id=fe.REGION, image_id="feiyun_busybox_x64", instance_type=fe.SMALL_TYPE, v_switch_id=sid,
        security_group_id=g, private_ip_address="10.20.1.10"))
    iid = run.instance_id_sets.instance_id_set[0]
    body = tea.typed("describe_instances", e.DescribeInstancesRequest(region_id=fe.REGION,
                                                                       instance_ids=json.dumps([iid])))
    inst = body.instances.instance[0]
    assert inst.instance_network_type == "vpc"
    assert (inst.vpc_attributes.vpc_id, inst.vpc_attributes.v_switch_id) == (vid, sid)
    assert inst.vpc_attributes.private_ip_address.ip_address == ["10.20.1.10"]
    assert inst.security_group_ids.security_group_id == [g]
    nic = inst.network_interfaces.network_interface[0]
    assert nic.primary_ip_address == "10.20.1.10" and nic.mac_address.startswith("00:16:3e:")
    assert nic.network_interface_id.startswith("eni-")
    attr = tea.typed("describe_instance_attribute", e.DescribeInstanceAttributeRequest(instance_id=iid))
    assert attr.vpc_attributes.private_ip_address.ip_address == ["10.20.1.10"]
    fe.expect_error(tea.call, "RunInstances", {"RegionId": fe.REGION, "ImageId": "feiyun_busybox_x64",
                                               "InstanceType": fe.SMALL_TYPE, "VSwitchId": sid,
                                               "SecurityGroupId": g, "PrivateIpAddress": "10.20.1.10"},
                    status=400, code="InvalidPrivateIpAddress.Duplicated")
    fe.expect_error(tea.call, "RunInstances", {"RegionId": fe.REGION, "ImageId": "feiyun_busybox_x64",
                                               "InstanceType": fe.SMALL_TYPE, "VSwitchId": sid,
                                               "SecurityGroupId": g, "PrivateIpAddress": "10.20.1.253"},
                    status=400, code="InvalidPrivateIpAddress")
    assert vpc.call("DescribeVSwitchAttributes", {"RegionId": fe.REGION, "VSwitchId": sid})["AvailableIpAddressCount"] == 251
    fe.expect_error(vpc.call, "DeleteVSwitch", {"RegionId": fe.REGION, "VSwitchId": sid}, status=400,
                    code="DependencyViolation")
    fe.force_delete(tea, [iid])
    fe.wait_gone(tea, [iid])
    vpc.typed("delete_vswitch", m.DeleteVSwitchRequest(region_id=fe.REGION, v_switch_id=sid))
    fe.expect_error(vpc.call, "DeleteVpc", {"RegionId": fe.REGION, "VpcId": vid}, status=400,
                    code="DependencyViolation.SecurityGroup")
    tea.call("DeleteSecurityGroup", {"RegionId": fe.REGION, "SecurityGroupId": g})
    vpc.typed("delete_vpc", m.DeleteVpcRequest(region_id=fe.REGION, vpc_id=vid))
    assert vpc.call("DescribeVpcs", {"RegionId": fe.REGION, "VpcId": vid})["Vpcs"]["Vpc"] == []


def test_security_groups_with_the_ecs_sdks(pool_server):
    e = ecs_models()
    tea, core, vpc = pool_server.tea(), pool_server.core(), pool_server.vpc()
    v, s, web = network(vpc, tea, "10.30.0.0/16", "10.30.1.0/24", "sg-test")
    db = tea.typed("create_security_group", e.CreateSecurityGroupRequest(
        region_id=fe.REGION, vpc_id=v, security_group_name="db", description="the database")).security_group_id
    rules = [
        e.AuthorizeSecurityGroupRequestPermissions(ip_protocol="tcp", port_range="80/80", source_cidr_ip="0.0.0.0/0",
                                                   policy="accept", priority="1", description="http"),
        e.AuthorizeSecurityGroupRequestPermissions(ip_protocol="TCP", port_range="22/22", source_group_id=db,
                                                   priority="10"),
        e.AuthorizeSecurityGroupRequestPermissions(ip_protocol="icmp", port_range="-1/-1", source_cidr_ip="10.0.0.0/8",
                                                   policy="drop", priority="100"),
    ]
    for _ in range(2):  # the second time adds nothing
        tea.typed("authorize_security_group", e.AuthorizeSecurityGroupRequest(
            region_id=fe.REGION, security_group_id=web, permissions=rules))
    # The deprecated single-rule form, through the V2 core SDK.
    core.call("AuthorizeSecurityGroupEgress", {"RegionId": fe.REGION, "SecurityGroupId": web, "IpProtocol": "udp",
                                               "PortRange": "53/53", "DestCidrIp": "8.8.8.8", "Policy": "Drop"})
    attr = tea.typed("describe_security_group_attribute", e.DescribeSecurityGroupAttributeRequest(
        region_id=fe.REGION, security_group_id=web))
    perms = attr.permissions.permission
    assert len(perms) == 4, [p.to_map() for p in perms]
    by_port = {(p.direction, p.port_range): p for p in perms}
    http = by_port[("ingress", "80/80")]
    assert (http.ip_protocol, http.source_cidr_ip, http.policy, http.priority, http.description) == (
        "TCP", "0.0.0.0/0", "Accept", "1", "http")
    ssh = by_port[("ingress", "22/22")]
    assert (ssh.source_group_id, ssh.source_group_name) == (db, "db")
    assert by_port[("ingress", "-1/-1")].policy == "Drop"
    dns = by_port[("egress", "53/53")]
    assert (dns.dest_cidr_ip, dns.ip_protocol, dns.policy) == ("8.8.8.8/32", "UDP", "Drop")
    assert attr.inner_access_policy == "Accept" and attr.vpc_id == v
    egress = tea.call("DescribeSecurityGroupAttribute", {"RegionId": fe.REGION, "SecurityGroupId": web,
                                                         "Direction": "egress"})
    assert [p["PortRange"] for p in egress["Permissions"]["Permission"]] == ["53/53"]

    tea.typed("revoke_security_group", e.RevokeSecurityGroupRequest(
        region_id=fe.REGION, security_group_id=web, security_group_rule_id=[ssh.security_group_rule_id]))
    tea.call("RevokeSecurityGroupEgress", {"RegionId": fe.REGION, "SecurityGroupId": web, "IpProtocol": "UDP",
                                           "PortRange": "53/53", "DestCidrIp": "8.8.8.8/32", "Policy": "drop"})
    left = tea.call("DescribeSecurityGroupAttribute", {"RegionId": fe.REGION, "SecurityGroupId": web})
    assert sorted(p["PortRange"] for p in left["Permissions"]["Permission"]) == ["-1/-1", "80/80"]
    tea.call("ModifySecurityGroupPolicy", {"RegionId": fe.REGION, "SecurityGroupId": web, "InnerAccessPolicy": "Drop"})
    assert tea.call("DescribeSecurityGroupAttribute", {"RegionId": fe.REGION, "SecurityGroupId": web})[
        "InnerAccessPolicy"] == "Drop"

    # Members: one instance, two groups, never none.
    iid = fe.run_instances(tea, VSwitchId=s, SecurityGroupIds=[web])[0]
    tea.call("JoinSecurityGroup", {"RegionId": fe.REGION, "SecurityGroupId": db, "InstanceId": iid})
    assert fe.describe(tea, [iid])[0]["SecurityGroupIds"]["SecurityGroupId"] == [web, db]
    listed = tea.typed("describe_security_groups", e.DescribeSecurityGroupsRequest(region_id=fe.REGION, vpc_id=v))
    counts = {g.security_group_id: g.ecs_count for g in listed.security_groups.security_group}
    assert counts == {web: 1, db: 1}
    assert {g.security_group_type for g in listed.security_groups.security_group} == {"normal"}
    tea.call("LeaveSecurityGroup", {"RegionId": fe.REGION, "SecurityGroupId": web, "InstanceId": iid})
    fe.expect_error(tea.call, "LeaveSecurityGroup", {"RegionId": fe.REGION, "SecurityGroupId": db, "InstanceId": iid},
                    status=403, code="InstanceLastSecurityGroup")
    fe.expect_error(tea.call, "DeleteSecurityGroup", {"RegionId": fe.REGION, "SecurityGroupId": db},
                    status=403, code="DependencyViolation")
    ent = tea.call("CreateSecurityGroup", {"RegionId": fe.REGION, "VpcId": v,
                                           "SecurityGroupType": "enterprise"})["SecurityGroupId"]
    fe.expect_error(tea.call, "JoinSecurityGroup", {"RegionId": fe.REGION, "SecurityGroupId": ent, "InstanceId": iid},
                    status=403, code="EnterpriseGroupLimited.MutliGroupType")

    # Hostile rules.
    base = {"RegionId": fe.REGION, "SecurityGroupId": web}
    for extra, status, code in [
        ({"IpProtocol": "tcp", "PortRange": "0/10", "SourceCidrIp": "0.0.0.0/0"}, 400, "InvalidIpProtocol.Malformed"),
        ({"IpProtocol": "tcp", "PortRange": "22/22", "SourceCidrIp": "0.0.0.0/0", "Priority": "101"}, 400,
         "InvalidPriority.ValueNotSupported"),
        ({"IpProtocol": "gre", "PortRange": "-1/-1", "SourceCidrIp": "0.0.0.0/0"}, 400, "InvalidIpProtocol.ValueNotSupported"),
        ({"IpProtocol": "tcp", "PortRange": "22/22", "SourceCidrIp": "10.0.0.0/33"}, 400, "InvalidSourceCidrIp.Malformed"),
        ({"IpProtocol": "tcp", "PortRange": "22/22", "SourceGroupId": "sg-nothere"}, 404, "InvalidSourceGroupId.NotFound"),
        ({"IpProtocol": "tcp", "PortRange": "22/22"}, 400, "MissingParameter.Source"),
    ]:
        fe.expect_error(tea.call, "AuthorizeSecurityGroup", {**base, **extra}, status=status, code=code)
    fe.force_delete(tea, [iid])
    fe.wait_gone(tea, [iid])


def test_an_account_without_a_vpc_gets_a_default_one(server, image_id):
    acct = server.create_account(fe.unique("netdef"))
    server.accounts.append(acct)
    tea, vpc = server.tea(acct), server.vpc(acct)
    assert vpc.call("DescribeVpcs", {"RegionId": fe.REGION})["TotalCount"] == 0
    iid = fe.run_instances(tea)[0]
    vpcs = vpc.call("DescribeVpcs", {"RegionId": fe.REGION, "IsDefault": True})["Vpcs"]["Vpc"]
    assert len(vpcs) == 1 and vpcs[0]["CidrBlock"] == "172.16.0.0/12" and vpcs[0]["Status"] == "Available"
    vsws = vpc.call("DescribeVSwitches", {"RegionId": fe.REGION, "VpcId": vpcs[0]["VpcId"]})["VSwitches"]["VSwitch"]
    assert [(x["ZoneId"], x["CidrBlock"], x["IsDefault"]) for x in vsws] == [(fe.ZONE, "172.16.0.0/20", True)]
    groups = tea.call("DescribeSecurityGroups", {"RegionId": fe.REGION})["SecurityGroups"]["SecurityGroup"]
    assert len(groups) == 1 and groups[0]["VpcId"] == vpcs[0]["VpcId"]
    inst = fe.describe(tea, [iid])[0]
    assert inst["VpcAttributes"]["VpcId"] == vpcs[0]["VpcId"]
    assert inst["VpcAttributes"]["PrivateIpAddress"]["IpAddress"] == ["172.16.0.1"]
    assert inst["SecurityGroupIds"]["SecurityGroupId"] == [groups[0]["SecurityGroupId"]]
    assert inst["PublicIpAddress"]["IpAddress"] == [] and inst["EipAddress"]["IpAddress"] == ""
    # The shared server has no public pool.
    fe.expect_error(vpc.call, "AllocateEipAddress", {"RegionId": fe.REGION}, status=400, code="ResourceNotAvailable")
    fe.force_delete(tea, [iid])
    fe.wait_gone(tea, [iid])


def test_eips_with_the_vpc_sdk(pool_server):
    m = vpc_models()
    tea, vpc = pool_server.tea(), pool_server.vpc()
    _, s, g = network(vpc, tea, "10.40.0.0/16", "10.40.1.0/24", "eip-test")
    plain = fe.run_instances(tea, VSwitchId=s, SecurityGroupId=g)[0]
    public = fe.run_instances(tea, VSwitchId=s, SecurityGroupId=g, InternetMaxBandwidthOut=5)[0]
    pub = fe.describe(tea, [public])[0]
    assert len(pub["PublicIpAddress"]["IpAddress"]) == 1 and pub["InternetMaxBandwidthOut"] == 5
    alloc = vpc.typed("allocate_eip_address", m.AllocateEipAddressRequest(region_id=fe.REGION, bandwidth="10",
                                                                          internet_charge_type="PayByTraffic"))
    eid, ip = alloc.allocation_id, alloc.eip_address
    assert eid.startswith("eip-") and ip.startswith("203.0.113.")
    fe.expect_error(vpc.call, "AssociateEipAddress", {"RegionId": fe.REGION, "AllocationId": eid,
                                                     "InstanceId": public}, status=400,
                    code="InvalidAssociation.Duplicated")
    vpc.typed("associate_eip_address", m.AssociateEipAddressRequest(region_id=fe.REGION, allocation_id=eid,
                                                                    instance_id=plain))
    listed = vpc.typed("describe_eip_addresses", m.DescribeEipAddressesRequest(region_id=fe.REGION, allocation_id=eid))
    e = listed.eip_addresses.eip_address[0]
    assert (e.ip_address, e.status, e.instance_id, e.instance_type, e.bandwidth) == (ip, "InUse", plain, "EcsInstance", "10")
    inst = fe.describe(tea, [plain])[0]
    assert (inst["EipAddress"]["AllocationId"], inst["EipAddress"]["IpAddress"]) == (eid, ip)
    fe.expect_error(vpc.call, "ReleaseEipAddress", {"RegionId": fe.REGION, "AllocationId": eid}, status=400,
                    code="IncorrectEipStatus")
    vpc.typed("unassociate_eip_address", m.UnassociateEipAddressRequest(region_id=fe.REGION, allocation_id=eid,
                                                                        instance_id=plain))
    assert fe.describe(tea, [plain])[0]["EipAddress"]["IpAddress"] == ""
    fe.expect_error(vpc.call, "UnassociateEipAddress", {"RegionId": fe.REGION, "AllocationId": eid,
                                                       "InstanceId": plain}, status=400, code="IncorrectEipStatus")
    vpc.typed("release_eip_address", m.ReleaseEipAddressRequest(region_id=fe.REGION, allocation_id=eid))
    fe.expect_error(vpc.call, "ReleaseEipAddress", {"RegionId": fe.REGION, "AllocationId": eid}, status=404,
                    code="InvalidAllocationId.NotFound")
    # The pool is a /29: six addresses; the public instance holds one.
    got = []
    while True:
        try:
            got.append(vpc.call("AllocateEipAddress", {"RegionId": fe.REGION})["AllocationId"])
        except fe.ApiError as err:
            assert (err.status, err.code) == (400, "QuotaExceeded.Eip"), err
            break
    assert len(got) == 5
    for a in got:
        vpc.call("ReleaseEipAddress", {"RegionId": fe.REGION, "AllocationId": a})
    fe.force_delete(tea, [plain, public])
    fe.wait_gone(tea, [plain, public])


def test_tenants_cannot_reach_each_others_networks(pool_server):
    a_tea, a_vpc = pool_server.tea(), pool_server.vpc()
    b = pool_server.create_account(fe.unique("netb"))
    pool_server.accounts.append(b)
    b_tea, b_vpc = pool_server.tea(b), pool_server.vpc(b)
    va, sa, ga = network(a_vpc, a_tea, "10.50.0.0/16", "10.50.1.0/24", "net-a")
    vb, sb, gb = network(b_vpc, b_tea, "10.50.0.0/16", "10.50.1.0/24", "net-b")
    ia = fe.run_instances(a_tea, VSwitchId=sa, SecurityGroupId=ga)[0]
    ib = fe.run_instances(b_tea, VSwitchId=sb, SecurityGroupId=gb)[0]
    ip = lambda c, i: fe.describe(c, [i])[0]["VpcAttributes"]["PrivateIpAddress"]["IpAddress"]  # noqa: E731
    assert ip(a_tea, ia) == ip(b_tea, ib) == ["10.50.1.1"], "overlapping VPCs of two accounts are independent"
    assert b_vpc.call("DescribeVpcs", {"RegionId": fe.REGION, "VpcId": va})["Vpcs"]["Vpc"] == []
    fe.expect_error(b_vpc.call, "DescribeVSwitchAttributes", {"RegionId": fe.REGION, "VSwitchId": sa},
                    status=404, code="InvalidVSwitchId.NotFound")
    fe.expect_error(b_tea.call, "RunInstances", {"RegionId": fe.REGION, "ImageId": "feiyun_busybox_x64",
                                                 "InstanceType": fe.SMALL_TYPE, "VSwitchId": sa, "SecurityGroupId": gb},
                    status=404, code="InvalidVSwitchId.NotFound")
    fe.expect_error(b_tea.call, "RunInstances", {"RegionId": fe.REGION, "ImageId": "feiyun_busybox_x64",
                                                 "InstanceType": fe.SMALL_TYPE, "VSwitchId": sb, "SecurityGroupId": ga},
                    status=404, code="InvalidSecurityGroupId.NotFound")
    fe.expect_error(b_tea.call, "JoinSecurityGroup", {"RegionId": fe.REGION, "SecurityGroupId": ga, "InstanceId": ib},
                    status=404, code="InvalidSecurityGroupId.NotFound")
    fe.expect_error(b_tea.call, "AuthorizeSecurityGroup", {"RegionId": fe.REGION, "SecurityGroupId": gb,
                                                           "IpProtocol": "tcp", "PortRange": "22/22",
                                                           "SourceGroupId": ga},
                    status=404, code="InvalidSourceGroupId.NotFound")
    fe.force_delete(a_tea, [ia])
    fe.force_delete(b_tea, [ib])
    fe.wait_gone(a_tea, [ia])
    fe.wait_gone(b_tea, [ib])


def test_the_command_line_calls_vpc_actions(pool_server):
    out = pool_server.cli("vpc", "DescribeVpcs", "--RegionId", fe.REGION, "--data-dir", str(pool_server.data_dir),
                          "--raw")
    assert out.returncode == 0, out.stderr
    assert "Vpcs" in out.stdout
    help_out = pool_server.cli("vpc", "--help")
    assert "CreateVSwitch" in help_out.stdout


def test_creates_retried_with_a_client_token_make_one_resource(pool_server):
    """Terraform and the SDKs retry creates with the same ClientToken: one VPC, vSwitch, group
    and EIP come of it, and the token reused with other parameters is refused."""
    m = vpc_models()
    vpc = pool_server.vpc()
    ecs = pool_server.tea()
    token = f"tok-{time.time_ns()}"
    req = m.CreateVpcRequest(region_id=fe.REGION, cidr_block="10.77.0.0/16", vpc_name="retried", client_token=token)
    first = vpc.typed("create_vpc", req).vpc_id
    assert vpc.typed("create_vpc", req).vpc_id == first
    fe.expect_error(vpc.call, "CreateVpc", {"RegionId": fe.REGION, "CidrBlock": "10.78.0.0/16", "VpcName": "retried",
                                            "ClientToken": token}, status=400, code="IdempotentParameterMismatch")
    named = vpc.typed("describe_vpcs", m.DescribeVpcsRequest(region_id=fe.REGION, vpc_name="retried"))
    assert [v.vpc_id for v in named.vpcs.vpc] == [first]
    wait_available(vpc, "vpc", first)
    sreq = m.CreateVSwitchRequest(region_id=fe.REGION, vpc_id=first, zone_id=fe.ZONE, cidr_block="10.77.1.0/24",
                                  client_token=token)
    sid = vpc.typed("create_vswitch", sreq).v_switch_id
    assert vpc.typed("create_vswitch", sreq).v_switch_id == sid
    gparams = {"RegionId": fe.REGION, "VpcId": first, "SecurityGroupName": "retried", "ClientToken": token}
    gid = ecs.call("CreateSecurityGroup", gparams)["SecurityGroupId"]
    assert ecs.call("CreateSecurityGroup", gparams)["SecurityGroupId"] == gid
    ereq = m.AllocateEipAddressRequest(region_id=fe.REGION, client_token=token)
    eip = vpc.typed("allocate_eip_address", ereq)
    again = vpc.typed("allocate_eip_address", ereq)
    assert (again.allocation_id, again.eip_address) == (eip.allocation_id, eip.eip_address)
    # Clean up: one of each to delete.
    vpc.call("ReleaseEipAddress", {"RegionId": fe.REGION, "AllocationId": eip.allocation_id})
    ecs.call("DeleteSecurityGroup", {"RegionId": fe.REGION, "SecurityGroupId": gid})
    wait_available(vpc, "vswitch", sid)
    vpc.call("DeleteVSwitch", {"RegionId": fe.REGION, "VSwitchId": sid})
    vpc.call("DeleteVpc", {"RegionId": fe.REGION, "VpcId": first})
    assert vpc.typed("describe_vpcs", m.DescribeVpcsRequest(region_id=fe.REGION, vpc_name="retried")).total_count == 0
