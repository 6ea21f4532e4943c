"""Deployment sets: members of one set run on distinct hosts (this region has one host)."""

import json

import feiyun_e2e as fe


def test_deployment_set_spreads_members_across_hosts(tea, track):
    from alibabacloud_ecs20140526 import models as ecs

    created = tea.sdk.create_deployment_set(ecs.CreateDeploymentSetRequest(
        region_id=fe.REGION, deployment_set_name="web-spread", description="one per host", strategy="Availability"))
    ds = created.body.deployment_set_id
    assert ds.startswith("ds-")

    first = track.add(fe.run_instances(tea, DeploymentSetId=ds))[0]
    fe.wait_status(tea, first, "Running")
    # The only host already runs a member: a second member has nowhere to go.
    fe.expect_error(tea.call, "RunInstances", {"RegionId": fe.REGION, "ImageId": "feiyun_busybox_x64",
                                               "InstanceType": fe.SMALL_TYPE, "DeploymentSetId": ds},
                    status=403, code="OperationDenied.NoStock")
    # Instances outside the set still fit.
    other = track.add(fe.run_instances(tea))[0]
    fe.wait_status(tea, other, "Running")

    got = tea.call("DescribeDeploymentSets", {"RegionId": fe.REGION, "DeploymentSetIds": json.dumps([ds])})
    sets = got["DeploymentSets"]["DeploymentSet"]
    assert [s["DeploymentSetId"] for s in sets] == [ds]
    assert sets[0]["DeploymentSetName"] == "web-spread"
    assert sets[0]["InstanceAmount"] == 1
    assert sets[0]["InstanceIds"]["InstanceId"] == [first]
    inst = fe.describe(tea, [first])[0]
    assert inst["DeploymentSetId"] == ds

    # A set with members cannot be deleted; once they are gone it can.
    fe.expect_error(tea.call, "DeleteDeploymentSet", {"RegionId": fe.REGION, "DeploymentSetId": ds},
                    status=403, code="DeploymentSet.InstanceExist")
    fe.force_delete(tea, [first])
    fe.wait_gone(tea, [first])
    again = track.add(fe.run_instances(tea, DeploymentSetId=ds))[0]
    fe.wait_status(tea, again, "Running")
    fe.force_delete(tea, [again])
    fe.wait_gone(tea, [again])
    tea.call("DeleteDeploymentSet", {"RegionId": fe.REGION, "DeploymentSetId": ds})
    fe.expect_error(tea.call, "RunInstances", {"RegionId": fe.REGION, "ImageId": "feiyun_busybox_x64",
                                               "InstanceType": fe.SMALL_TYPE, "DeploymentSetId": ds},
                    status=404, code="DeploymentSet.NotFound")


def test_deployment_sets_are_per_tenant(tea, server, tenant_b):
    b = server.tea(tenant_b)
    ds = tea.call("CreateDeploymentSet", {"RegionId": fe.REGION, "DeploymentSetName": "mine"})["DeploymentSetId"]
    assert b.call("DescribeDeploymentSets", {"RegionId": fe.REGION, "DeploymentSetIds": json.dumps([ds])})[
        "DeploymentSets"]["DeploymentSet"] == []
    fe.expect_error(b.call, "RunInstances", {"RegionId": fe.REGION, "ImageId": "feiyun_busybox_x64",
                                             "InstanceType": fe.SMALL_TYPE, "DeploymentSetId": ds},
                    status=404, code="DeploymentSet.NotFound")
    fe.expect_error(b.call, "DeleteDeploymentSet", {"RegionId": fe.REGION, "DeploymentSetId": ds},
                    status=404, code="DeploymentSet.NotFound")
    tea.call("DeleteDeploymentSet", {"RegionId": fe.REGION, "DeploymentSetId": ds})
