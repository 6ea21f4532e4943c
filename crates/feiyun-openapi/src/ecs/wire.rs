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
use feiyun_domain::net::address::mac_string;
use feiyun_domain::net::{Nic, PublicIp, PublicIpKind};

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

/// An instance's place on the network, when it has one: its interface and public address.
#[derive(Clone, Copy, Default)]
pub(super) struct Net<'a> {
    nic: Option<&'a Nic>,
    public: Option<&'a PublicIp>,
}

impl<'a> Net<'a> {
    pub(super) fn of(net: Option<(&'a Nic, Option<&'a PublicIp>)>) -> Net<'a> {
        Net { nic: net.map(|n| n.0), public: net.and_then(|n| n.1) }
    }

    fn ip_list(ip: Option<std::net::Ipv4Addr>) -> Node<'a> {
        Node::wrapped("IpAddress", ip.map(|i| Node::from(i.to_string())).into_iter().collect())
    }

    fn private_ips(&self) -> Node<'a> {
        Self::ip_list(self.nic.map(|n| n.ip))
    }

    /// The instance's own public address (not an EIP).
    fn public_ips(&self) -> Node<'a> {
        Self::ip_list(self.public.filter(|p| p.kind == PublicIpKind::Instance).map(|p| p.ip))
    }

    fn eip(&self) -> Option<&'a PublicIp> {
        self.public.filter(|p| p.kind == PublicIpKind::Eip)
    }

    fn vpc_id(&self) -> &'a str {
        self.nic.map(|n| n.vpc_id.as_str()).unwrap_or("")
    }

    fn vswitch_id(&self) -> &'a str {
        self.nic.map(|n| n.vswitch_id.as_str()).unwrap_or("")
    }

    fn internet_charge(&self) -> &'static str {
        self.nic.map(|n| n.internet_charge.as_str()).unwrap_or("PayByTraffic")
    }

    fn bandwidth_out(&self) -> u32 {
        self.nic.map(|n| n.bandwidth_out_mbps).unwrap_or(0)
    }

    fn security_groups(&self) -> Node<'a> {
        Node::wrapped(
            "SecurityGroupId",
            self.nic.map(|n| n.security_group_ids.iter().map(|g| Node::from(g.as_str())).collect()).unwrap_or_default(),
        )
    }

    fn interfaces(&self) -> Node<'a> {
        Node::wrapped(
            "NetworkInterface",
            self.nic
                .map(|n| {
                    Obj::default()
                        .put("Type", "Primary")
                        .put("PrimaryIpAddress", n.ip.to_string())
                        .put("NetworkInterfaceId", n.eni_id.as_str())
                        .put("MacAddress", mac_string(&n.mac))
                        .put(
                            "PrivateIpSets",
                            Node::wrapped(
                                "PrivateIpSet",
                                vec![Obj::default()
                                    .put("PrivateIpAddress", n.ip.to_string())
                                    .put("Primary", true)
                                    .build()],
                            ),
                        )
                        .build()
                })
                .into_iter()
                .collect(),
        )
    }

    fn eip_address(&self, attribute_order: bool) -> Node<'a> {
        let e = self.eip();
        let (id, ip, charge, bw) = (
            e.map(|p| p.allocation_id.as_str()).unwrap_or(""),
            e.map(|p| p.ip.to_string()).unwrap_or_default(),
            e.map(|p| p.charge.as_str()).unwrap_or(""),
            e.map(|p| p.bandwidth_mbps).unwrap_or(0),
        );
        if attribute_order {
            Obj::default()
                .put("InternetChargeType", charge)
                .put("IpAddress", ip)
                .put("Bandwidth", bw)
                .put("AllocationId", id)
                .build()
        } else {
            Obj::default()
                .put("AllocationId", id)
                .put("IpAddress", ip)
                .put("InternetChargeType", charge)
                .put("Bandwidth", bw)
                .build()
        }
    }
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
pub(super) fn instance<'a>(c: &'a Call<'_>, i: &'a Instance, builtin: Option<&'a Image>, net: Net<'a>) -> Node<'a> {
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
        .put("EipAddress", net.eip_address(false))
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
        .put("SecurityGroupIds", net.security_groups())
        .put(
            "VpcAttributes",
            Obj::default()
                .put("PrivateIpAddress", net.private_ips())
                .put("VpcId", net.vpc_id())
                .put("VSwitchId", net.vswitch_id())
                .put("NatIpAddress", ""),
        )
        .put("InternetChargeType", net.internet_charge())
        .put("InstanceName", i.name.as_str())
        .put("DeploymentSetId", i.deployment_set_id.as_deref().unwrap_or(""))
        .put("InternetMaxBandwidthOut", net.bandwidth_out())
        .put("SerialNumber", i.id.as_str())
        .put("OSType", f.os_type.clone())
        .put("CreationTime", minutes(&i.created_at))
        .put("AutoReleaseTime", i.billing.release_at.as_ref().map(seconds).unwrap_or_default())
        .put("Description", i.description.as_str())
        .put("InstanceTypeFamily", t.map(|t| t.family.as_str()).unwrap_or(""))
        .put("DedicatedInstanceAttribute", Obj::default().put("Tenancy", "").put("Affinity", ""))
        .put("PublicIpAddress", net.public_ips())
        .put("GPUSpec", t.map(|t| t.gpu_model.as_str()).unwrap_or(""))
        .put("NetworkInterfaces", net.interfaces())
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
        .put("KeyPairName", i.key_pair_name.as_deref().unwrap_or(""))
        .build()
}

/// The answer of DescribeInstanceAttribute, request id included.
pub(super) fn instance_attribute<'a>(c: &'a Call<'_>, i: &'a Instance, net: Net<'a>) -> Node<'a> {
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
        .put("InternetMaxBandwidthOut", net.bandwidth_out())
        .put("RegionId", i.region_id.as_str())
        .put("InstanceChargeType", i.charge_type.as_str())
        .put("IoOptimized", "optimized")
        .put("Cpu", f.cpu())
        .put("ExpiredTime", expired_time(i))
        .put("ZoneId", i.zone_id.as_str())
        .put("InternetChargeType", net.internet_charge())
        .put("CreditSpecification", f.credit_specification())
        .put("SecurityGroupIds", net.security_groups())
        .put("PublicIpAddress", net.public_ips())
        .put("InnerIpAddress", ips())
        .put(
            "VpcAttributes",
            Obj::default()
                .put("VpcId", net.vpc_id())
                .put("NatIpAddress", "")
                .put("VSwitchId", net.vswitch_id())
                .put("PrivateIpAddress", net.private_ips()),
        )
        .put("EipAddress", net.eip_address(true))
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
