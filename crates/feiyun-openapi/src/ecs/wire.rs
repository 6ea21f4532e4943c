//! The wire shape of one instance, as DescribeInstances and DescribeInstanceAttribute return it,
//! built as a tree that borrows from the instance.
//!
//! Fields come in the order real ECS writes them (some clients read JSON in document order):
//! DescribeInstances as in its recorded sample answer (AlibabaCloudDocs/ecs, API Reference
//! `DescribeInstances.md`, 2021), DescribeInstanceAttribute as in its sample answer in the ECS
//! API reference (2025). Fields the samples do not show but the SDK models have come next to
//! their kin. `tests/e2e/data/recorded_field_order.json` records both orders; the e2e suite
//! checks the answers against it.

use std::borrow::Cow;

use feiyun_domain::catalog::InstanceTypeSpec;
use feiyun_domain::image::Image;
use feiyun_domain::instance::Instance;

use super::{minutes, seconds, Call};
use crate::render::{Node, Obj};

/// What the two answers say about an instance beyond its own record: its type and its image.
struct Facts<'a> {
    t: Option<&'a InstanceTypeSpec>,
    os_type: Cow<'a, str>,
    os_name: Cow<'a, str>,
}

impl<'a> Facts<'a> {
    fn of(c: &'a Call<'_>, i: &Instance, builtin: Option<&'a Image>) -> Facts<'a> {
        let (os_type, os_name): (Cow<'a, str>, Cow<'a, str>) = match builtin.filter(|b| b.id == i.image_id) {
            Some(b) => (Cow::Borrowed(b.os_type.as_str()), Cow::Borrowed(b.os_name.as_str())),
            None => match c.cp.image(&i.image_id) {
                Some(m) => (Cow::Owned(m.os_type), Cow::Owned(m.os_name)),
                None => (Cow::Borrowed("linux"), Cow::Borrowed("")),
            },
        };
        Facts { t: c.cp.catalog().instance_type(&i.instance_type), os_type, os_name }
    }

    fn cpu(&self) -> u32 {
        self.t.map(|t| t.vcpus).unwrap_or(0)
    }

    fn memory(&self) -> u64 {
        self.t.map(|t| t.memory_mib()).unwrap_or(0)
    }

    fn credit_specification(&self) -> &'static str {
        if self.t.is_some_and(|t| t.is_burstable()) {
            "Standard"
        } else {
            ""
        }
    }
}

fn ips<'a>() -> Node<'a> {
    Node::wrapped("IpAddress", Vec::new())
}

fn expired_time(i: &Instance) -> String {
    i.billing.expires_at.as_ref().map(minutes).unwrap_or_else(|| "2099-12-31T15:59Z".to_string())
}

fn operation_locks(i: &Instance) -> Node<'static> {
    Node::wrapped(
        "LockReason",
        i.billing.lock.map(|l| Obj::default().put("LockReason", l.as_str()).build()).into_iter().collect(),
    )
}

/// One instance of DescribeInstances.
pub(super) fn instance<'a>(c: &'a Call<'_>, i: &'a Instance, builtin: Option<&'a Image>) -> Node<'a> {
    let f = Facts::of(c, i, builtin);
    let t = f.t;
    let tags: Vec<Node<'a>> = i
        .tags
        .iter()
        .map(|t| Obj::default().put("TagKey", t.key.as_str()).put("TagValue", t.value.as_str()).build())
        .collect();
    Obj::with_capacity(64)
        .put("ResourceGroupId", "")
        .put("Memory", f.memory())
        .put("InstanceChargeType", i.charge_type.as_str())
        .put("Cpu", f.cpu())
        .put("OSName", f.os_name.clone())
        .put("InstanceNetworkType", "vpc")
        .put("InnerIpAddress", ips())
        .put("ExpiredTime", expired_time(i))
        .put("ImageId", i.image_id.as_str())
        .put(
            "EipAddress",
            Obj::default()
                .put("AllocationId", "")
                .put("IpAddress", "")
                .put("InternetChargeType", "")
                .put("Bandwidth", 0u32),
        )
        .put("HostName", i.hostname.as_str())
        .put("Tags", Node::wrapped("Tag", tags))
        .put("VlanId", "")
        .put("Status", i.status.as_str())
        .put(
            "MetadataOptions",
            Obj::default()
                .put("HttpTokens", "optional")
                .put("HttpEndpoint", "disabled")
                .put("HttpPutResponseHopLimit", 0u32),
        )
        .put("InstanceId", i.id.as_str())
        .put("StoppedMode", i.stopped_mode.map(|m| m.as_str()).unwrap_or(""))
        .put(
            "CpuOptions",
            Obj::default()
                .put("ThreadsPerCore", 2u32)
                .put("Numa", "")
                .put("CoreCount", t.map(|t| t.vcpus.div_ceil(2)).unwrap_or(0)),
        )
        .put("StartTime", i.started_at.as_ref().map(minutes).unwrap_or_default())
        .put("DeletionProtection", false)
        .put("SecurityGroupIds", Node::wrapped("SecurityGroupId", Vec::new()))
        .put(
            "VpcAttributes",
            Obj::default().put("PrivateIpAddress", ips()).put("VpcId", "").put("VSwitchId", "").put("NatIpAddress", ""),
        )
        .put("InternetChargeType", "PayByTraffic")
        .put("InstanceName", i.name.as_str())
        .put("DeploymentSetId", i.deployment_set_id.as_deref().unwrap_or(""))
        .put("InternetMaxBandwidthOut", 0u32)
        .put("SerialNumber", i.id.as_str())
        .put("OSType", f.os_type.clone())
        .put("CreationTime", minutes(&i.created_at))
        .put("AutoReleaseTime", i.billing.release_at.as_ref().map(seconds).unwrap_or_default())
        .put("Description", i.description.as_str())
        .put("InstanceTypeFamily", t.map(|t| t.family.as_str()).unwrap_or(""))
        .put("DedicatedInstanceAttribute", Obj::default().put("Tenancy", "").put("Affinity", ""))
        .put("PublicIpAddress", ips())
        .put("GPUSpec", t.map(|t| t.gpu_model.as_str()).unwrap_or(""))
        .put("NetworkInterfaces", Node::wrapped("NetworkInterface", Vec::new()))
        .put("SpotPriceLimit", i.billing.spot_price_limit_micros.map(|m| m as f64 / 1e6).unwrap_or(0.0))
        .put("DeviceAvailable", true)
        .put("SaleCycle", "")
        .put("InstanceType", i.instance_type.as_str())
        .put("OSNameEn", f.os_name.clone())
        .put("SpotStrategy", i.billing.spot_strategy.as_str())
        .put("SpotDuration", if i.billing.is_spot() { i.billing.spot_duration_h } else { 0 })
        .put("IoOptimized", true)
        .put("ZoneId", i.zone_id.as_str())
        .put("ClusterId", "")
        .put(
            "EcsCapacityReservationAttr",
            Obj::default().put("CapacityReservationPreference", "").put("CapacityReservationId", ""),
        )
        .put(
            "DedicatedHostAttribute",
            Obj::default().put("DedicatedHostId", "").put("DedicatedHostName", "").put("DedicatedHostClusterId", ""),
        )
        .put("GPUAmount", t.map(|t| t.gpu_count).unwrap_or(0))
        .put("LocalStorageAmount", t.map(|t| t.local_disk_count).unwrap_or(0))
        .put("LocalStorageCapacity", t.map(|t| t.local_disk_gib * t.local_disk_count as u64).unwrap_or(0))
        .put("OperationLocks", operation_locks(i))
        .put("InternetMaxBandwidthIn", 0u32)
        .put("Recyclable", false)
        .put("RegionId", i.region_id.as_str())
        .put("CreditSpecification", f.credit_specification())
        .put("KeyPairName", "")
        .build()
}

/// The answer of DescribeInstanceAttribute, request id included.
pub(super) fn instance_attribute<'a>(c: &'a Call<'_>, i: &'a Instance) -> Node<'a> {
    let f = Facts::of(c, i, None);
    Obj::with_capacity(40)
        .put("Status", i.status.as_str())
        .put("SerialNumber", i.id.as_str())
        .put("CreationTime", minutes(&i.created_at))
        .put("RequestId", Node::RequestId)
        .put("Description", i.description.as_str())
        .put("InstanceName", i.name.as_str())
        .put("InstanceNetworkType", "vpc")
        .put("Memory", f.memory())
        .put("ImageId", i.image_id.as_str())
        .put("ClusterId", "")
        .put("VlanId", "")
        .put("StoppedMode", i.stopped_mode.map(|m| m.as_str()).unwrap_or(""))
        .put("HostName", i.hostname.as_str())
        .put("InstanceId", i.id.as_str())
        .put("InstanceType", i.instance_type.as_str())
        .put("InternetMaxBandwidthIn", 0u32)
        .put("InternetMaxBandwidthOut", 0u32)
        .put("RegionId", i.region_id.as_str())
        .put("InstanceChargeType", i.charge_type.as_str())
        .put("IoOptimized", "optimized")
        .put("Cpu", f.cpu())
        .put("ExpiredTime", expired_time(i))
        .put("ZoneId", i.zone_id.as_str())
        .put("InternetChargeType", "PayByTraffic")
        .put("CreditSpecification", f.credit_specification())
        .put("SecurityGroupIds", Node::wrapped("SecurityGroupId", Vec::new()))
        .put("PublicIpAddress", ips())
        .put("InnerIpAddress", ips())
        .put(
            "VpcAttributes",
            Obj::default().put("VpcId", "").put("NatIpAddress", "").put("VSwitchId", "").put("PrivateIpAddress", ips()),
        )
        .put(
            "EipAddress",
            Obj::default()
                .put("InternetChargeType", "")
                .put("IpAddress", "")
                .put("Bandwidth", 0u32)
                .put("AllocationId", ""),
        )
        .put("DedicatedHostAttribute", Obj::default().put("DedicatedHostName", "").put("DedicatedHostId", ""))
        .put("OperationLocks", operation_locks(i))
        .put("EnableJumboFrame", false)
        .put("EnableNetworkEncryption", false)
        .put(
            "NetworkOptions",
            Obj::default()
                .put("EnableJumboFrame", false)
                .put("EnableNetworkEncryption", false)
                .put("BandwidthWeighting", ""),
        )
        .build()
}
