//! The wire shape of one instance, as DescribeInstances returns it.

use std::borrow::Cow;

use feiyun_domain::image::Image;
use feiyun_domain::instance::Instance;
use feiyun_domain::net::address::mac_string;
use feiyun_domain::net::{Nic, PublicIp, PublicIpKind};
use serde::Serialize;

use super::{minutes, seconds, Call};

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct WireInstancePage<'a> {
    pub(super) instances: WireInstances<'a>,
    pub(super) total_count: usize,
    pub(super) page_number: i64,
    pub(super) page_size: usize,
    pub(super) next_token: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct WireInstances<'a> {
    pub(super) instance: Vec<WireInstance<'a>>,
}

#[derive(Serialize)]
pub(super) struct IpList {
    #[serde(rename = "IpAddress")]
    ip_address: Vec<String>,
}

fn ips(ip: Option<std::net::Ipv4Addr>) -> IpList {
    IpList { ip_address: ip.map(|i| i.to_string()).into_iter().collect() }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct WireVpc<'a> {
    vpc_id: &'a str,
    #[serde(rename = "VSwitchId")]
    vswitch_id: &'a str,
    nat_ip_address: &'static str,
    private_ip_address: IpList,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct WireEip<'a> {
    allocation_id: &'a str,
    ip_address: String,
    internet_charge_type: &'static str,
    bandwidth: u32,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct WireCpuOptions {
    core_count: u32,
    threads_per_core: u32,
    numa: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct WireMetadataOptions {
    http_endpoint: &'static str,
    http_tokens: &'static str,
    http_put_response_hop_limit: u32,
}

#[derive(Serialize)]
pub(super) struct WireTag<'a> {
    #[serde(rename = "TagKey")]
    key: &'a str,
    #[serde(rename = "TagValue")]
    value: &'a str,
}

#[derive(Serialize)]
pub(super) struct WireTags<'a> {
    #[serde(rename = "Tag")]
    tag: Vec<WireTag<'a>>,
}

#[derive(Serialize)]
pub(super) struct SgIds<'a> {
    #[serde(rename = "SecurityGroupId")]
    ids: &'a [String],
}

#[derive(Serialize)]
pub(super) struct Nics<'a> {
    #[serde(rename = "NetworkInterface")]
    nics: Vec<WireNic<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct WireNic<'a> {
    network_interface_id: &'a str,
    mac_address: String,
    primary_ip_address: String,
    #[serde(rename = "Type")]
    kind: &'static str,
    private_ip_sets: PrivateIpSets,
}

#[derive(Serialize)]
pub(super) struct PrivateIpSets {
    #[serde(rename = "PrivateIpSet")]
    sets: [PrivateIpSet; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct PrivateIpSet {
    private_ip_address: String,
    primary: bool,
}

#[derive(Serialize)]
pub(super) struct Locks {
    #[serde(rename = "LockReason")]
    locks: Vec<WireLock>,
}

#[derive(Serialize)]
pub(super) struct WireLock {
    #[serde(rename = "LockReason")]
    reason: &'static str,
}

/// One instance as DescribeInstances (and, trimmed, DescribeInstanceAttribute) returns it.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct WireInstance<'a> {
    instance_id: &'a str,
    instance_name: &'a str,
    description: &'a str,
    host_name: &'a str,
    region_id: &'a str,
    zone_id: &'a str,
    image_id: &'a str,
    #[serde(rename = "OSType")]
    os_type: Cow<'a, str>,
    #[serde(rename = "OSName")]
    os_name: Cow<'a, str>,
    #[serde(rename = "OSNameEn")]
    os_name_en: Cow<'a, str>,
    instance_type: &'a str,
    instance_type_family: &'a str,
    cpu: u32,
    memory: u64,
    #[serde(rename = "GPUAmount")]
    gpu_amount: u32,
    #[serde(rename = "GPUSpec")]
    gpu_spec: &'a str,
    local_storage_amount: u32,
    local_storage_capacity: u64,
    cpu_options: WireCpuOptions,
    status: &'static str,
    stopped_mode: &'static str,
    creation_time: String,
    start_time: String,
    expired_time: String,
    auto_release_time: String,
    instance_charge_type: &'static str,
    deployment_set_id: &'a str,
    spot_strategy: &'static str,
    spot_price_limit: f64,
    spot_duration: u32,
    internet_charge_type: &'static str,
    internet_max_bandwidth_out: u32,
    internet_max_bandwidth_in: u32,
    instance_network_type: &'static str,
    io_optimized: bool,
    device_available: bool,
    recyclable: bool,
    deletion_protection: bool,
    sale_cycle: &'static str,
    serial_number: &'a str,
    key_pair_name: &'static str,
    resource_group_id: &'static str,
    vlan_id: &'static str,
    vpc_attributes: WireVpc<'a>,
    public_ip_address: IpList,
    inner_ip_address: IpList,
    eip_address: WireEip<'a>,
    security_group_ids: SgIds<'a>,
    network_interfaces: Nics<'a>,
    operation_locks: Locks,
    tags: WireTags<'a>,
    metadata_options: WireMetadataOptions,
}

/// One instance on the wire, with its interface and public address when it has them.
pub(super) fn wire_instance<'a>(
    c: &'a Call<'_>,
    i: &'a Instance,
    builtin: Option<&'a Image>,
    net: Option<(&'a Nic, Option<&'a PublicIp>)>,
) -> WireInstance<'a> {
    let cat = c.cp.catalog();
    let t = cat.instance_type(&i.instance_type);
    let (os_type, os_name): (Cow<'a, str>, Cow<'a, str>) = match builtin.filter(|b| b.id == i.image_id) {
        Some(b) => (Cow::Borrowed(b.os_type.as_str()), Cow::Borrowed(b.os_name.as_str())),
        None => match c.cp.image(&i.image_id) {
            Some(m) => (Cow::Owned(m.os_type), Cow::Owned(m.os_name)),
            None => (Cow::Borrowed("linux"), Cow::Borrowed("")),
        },
    };
    let (family, gpu_spec) = t.map(|t| (t.family.as_str(), t.gpu_model.as_str())).unwrap_or(("", ""));
    let nic = net.map(|n| n.0);
    let public = net.and_then(|n| n.1);
    let own = public.filter(|p| p.kind == PublicIpKind::Instance);
    let eip = public.filter(|p| p.kind == PublicIpKind::Eip);
    WireInstance {
        instance_id: &i.id,
        instance_name: &i.name,
        description: &i.description,
        host_name: &i.hostname,
        region_id: &i.region_id,
        zone_id: &i.zone_id,
        image_id: &i.image_id,
        os_type,
        os_name_en: os_name.clone(),
        os_name,
        instance_type: &i.instance_type,
        instance_type_family: family,
        cpu: t.map(|t| t.vcpus).unwrap_or(0),
        memory: t.map(|t| t.memory_mib()).unwrap_or(0),
        gpu_amount: t.map(|t| t.gpu_count).unwrap_or(0),
        gpu_spec,
        local_storage_amount: t.map(|t| t.local_disk_count).unwrap_or(0),
        local_storage_capacity: t.map(|t| t.local_disk_gib * t.local_disk_count as u64).unwrap_or(0),
        cpu_options: WireCpuOptions {
            core_count: t.map(|t| t.vcpus.div_ceil(2)).unwrap_or(0),
            threads_per_core: 2,
            numa: "",
        },
        status: i.status.as_str(),
        stopped_mode: i.stopped_mode.map(|m| m.as_str()).unwrap_or(""),
        creation_time: minutes(&i.created_at),
        start_time: i.started_at.as_ref().map(minutes).unwrap_or_default(),
        expired_time: i.billing.expires_at.as_ref().map(minutes).unwrap_or_else(|| "2099-12-31T15:59Z".to_string()),
        auto_release_time: i.billing.release_at.as_ref().map(seconds).unwrap_or_default(),
        instance_charge_type: i.charge_type.as_str(),
        deployment_set_id: i.deployment_set_id.as_deref().unwrap_or(""),
        spot_strategy: i.billing.spot_strategy.as_str(),
        spot_price_limit: i.billing.spot_price_limit_micros.map(|m| m as f64 / 1e6).unwrap_or(0.0),
        spot_duration: if i.billing.is_spot() { i.billing.spot_duration_h } else { 0 },
        internet_charge_type: nic.map(|n| n.internet_charge.as_str()).unwrap_or("PayByTraffic"),
        internet_max_bandwidth_out: nic.map(|n| n.bandwidth_out_mbps).unwrap_or(0),
        internet_max_bandwidth_in: 0,
        instance_network_type: "vpc",
        io_optimized: true,
        device_available: true,
        recyclable: false,
        deletion_protection: false,
        sale_cycle: "",
        serial_number: &i.id,
        key_pair_name: "",
        resource_group_id: "",
        vlan_id: "",
        vpc_attributes: WireVpc {
            vpc_id: nic.map(|n| n.vpc_id.as_str()).unwrap_or(""),
            vswitch_id: nic.map(|n| n.vswitch_id.as_str()).unwrap_or(""),
            nat_ip_address: "",
            private_ip_address: ips(nic.map(|n| n.ip)),
        },
        public_ip_address: ips(own.map(|p| p.ip)),
        inner_ip_address: ips(None),
        eip_address: WireEip {
            allocation_id: eip.map(|p| p.allocation_id.as_str()).unwrap_or(""),
            ip_address: eip.map(|p| p.ip.to_string()).unwrap_or_default(),
            internet_charge_type: eip.map(|p| p.charge.as_str()).unwrap_or(""),
            bandwidth: eip.map(|p| p.bandwidth_mbps).unwrap_or(0),
        },
        security_group_ids: SgIds { ids: nic.map(|n| n.security_group_ids.as_slice()).unwrap_or(&[]) },
        network_interfaces: Nics {
            nics: nic
                .map(|n| WireNic {
                    network_interface_id: &n.eni_id,
                    mac_address: mac_string(&n.mac),
                    primary_ip_address: n.ip.to_string(),
                    kind: "Primary",
                    private_ip_sets: PrivateIpSets {
                        sets: [PrivateIpSet { private_ip_address: n.ip.to_string(), primary: true }],
                    },
                })
                .into_iter()
                .collect(),
        },
        operation_locks: Locks { locks: i.billing.lock.map(|l| WireLock { reason: l.as_str() }).into_iter().collect() },
        tags: WireTags { tag: i.tags.iter().map(|t| WireTag { key: &t.key, value: &t.value }).collect() },
        metadata_options: WireMetadataOptions {
            http_endpoint: "disabled",
            http_tokens: "optional",
            http_put_response_hop_limit: 0,
        },
    }
}
