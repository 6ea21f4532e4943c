//! The wire shape of one instance, as DescribeInstances returns it.

use std::borrow::Cow;

use feiyun_domain::image::Image;
use feiyun_domain::instance::Instance;
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
    ip_address: [&'static str; 0],
}

pub(super) const NO_IPS: IpList = IpList { ip_address: [] };

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct WireVpc {
    vpc_id: &'static str,
    #[serde(rename = "VSwitchId")]
    vswitch_id: &'static str,
    nat_ip_address: &'static str,
    private_ip_address: IpList,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct WireEip {
    allocation_id: &'static str,
    ip_address: &'static str,
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
pub(super) struct SgIds {
    #[serde(rename = "SecurityGroupId")]
    ids: [&'static str; 0],
}

#[derive(Serialize)]
pub(super) struct Nics {
    #[serde(rename = "NetworkInterface")]
    nics: [&'static str; 0],
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
    vpc_attributes: WireVpc,
    public_ip_address: IpList,
    inner_ip_address: IpList,
    eip_address: WireEip,
    security_group_ids: SgIds,
    network_interfaces: Nics,
    operation_locks: Locks,
    tags: WireTags<'a>,
    metadata_options: WireMetadataOptions,
}

pub(super) fn wire_instance<'a>(c: &'a Call<'_>, i: &'a Instance, builtin: Option<&'a Image>) -> WireInstance<'a> {
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
        internet_charge_type: "PayByTraffic",
        internet_max_bandwidth_out: 0,
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
        vpc_attributes: WireVpc { vpc_id: "", vswitch_id: "", nat_ip_address: "", private_ip_address: NO_IPS },
        public_ip_address: NO_IPS,
        inner_ip_address: NO_IPS,
        eip_address: WireEip { allocation_id: "", ip_address: "", internet_charge_type: "", bandwidth: 0 },
        security_group_ids: SgIds { ids: [] },
        network_interfaces: Nics { nics: [] },
        operation_locks: Locks { locks: i.billing.lock.map(|l| WireLock { reason: l.as_str() }).into_iter().collect() },
        tags: WireTags { tag: i.tags.iter().map(|t| WireTag { key: &t.key, value: &t.value }).collect() },
        metadata_options: WireMetadataOptions {
            http_endpoint: "disabled",
            http_tokens: "optional",
            http_put_response_hop_limit: 0,
        },
    }
}
