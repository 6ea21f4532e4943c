//! The instance type catalogue: DescribeInstanceTypes, DescribeInstanceTypeFamilies.

use feiyun_domain::catalog::InstanceTypeSpec;
use serde_json::{json, Value};

use super::{decode_token, encode_token, Call};
use crate::error::ApiError;

pub(super) fn instance_type_json(c: &Call<'_>, t: &InstanceTypeSpec) -> Value {
    let fam = c.cp.catalog().family(&t.family);
    json!({
        "InstanceTypeId": t.id,
        "InstanceTypeFamily": t.family,
        "CpuCoreCount": t.vcpus,
        "MemorySize": t.memory_gib,
        "GPUAmount": t.gpu_count,
        "GPUSpec": t.gpu_model,
        "GPUMemorySize": t.gpu_memory_gib,
        "LocalStorageCapacity": t.local_disk_gib,
        "LocalStorageAmount": t.local_disk_count,
        "LocalStorageCategory": t.local_disk_category,
        "EniQuantity": t.enis,
        "EniTotalQuantity": t.enis,
        "EniPrivateIpAddressQuantity": t.ips_per_eni,
        "EniIpv6AddressQuantity": 0,
        "InstanceBandwidthRx": t.bandwidth_mbps as u64 * 1000,
        "InstanceBandwidthTx": t.bandwidth_mbps as u64 * 1000,
        "InstancePpsRx": t.pps_kpps as u64 * 1000,
        "InstancePpsTx": t.pps_kpps as u64 * 1000,
        "InstanceFamilyLevel": fam.map(|f| f.level.as_str()).unwrap_or(""),
        "InstanceCategory": fam.map(|f| f.category.as_str()).unwrap_or(""),
        "CpuArchitecture": "X86",
        "PhysicalProcessorModel": fam.map(|f| f.cpu_model.as_str()).unwrap_or(""),
        "CpuSpeedFrequency": fam.map(|f| f.cpu_base_ghz).unwrap_or(0.0),
        "CpuTurboFrequency": fam.map(|f| f.cpu_turbo_ghz).unwrap_or(0.0),
        "BaselineCredit": t.baseline_cpu_percent * t.vcpus,
        "InitialCredit": t.initial_credit,
        "NvmeSupport": "unsupported",
        "DiskQuantity": 17,
        "CpuOptions": {"Core": t.vcpus.div_ceil(2), "ThreadsPerCore": if t.vcpus > 1 { 2 } else { 1 }, "HyperThreadingAdjustable": false, "SupportedTopologyTypes": {"SupportedTopologyType": []}},
    })
}

pub(super) fn describe_instance_types(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let ids = p.list("InstanceTypes", 10)?;
    let families = p.list("InstanceTypeFamilies", 10)?;
    let family = p.get("InstanceTypeFamily");
    let min_cpu = p.int("MinimumCpuCoreCount", 0, i64::MAX)?;
    let max_cpu = p.int("MaximumCpuCoreCount", 0, i64::MAX)?;
    let min_gpu = p.int("MinimumGPUAmount", 0, i64::MAX)?;
    let max_gpu = p.int("MaximumGPUAmount", 0, i64::MAX)?;
    let (min_mem, max_mem) = (p.decimal("MinimumMemorySize")?, p.decimal("MaximumMemorySize")?);
    let gpu_spec = p.get("GPUSpec");
    let category = p.get("InstanceCategory");
    // ECS documents no code for an unknown level; this is the generic InvalidParameter.
    let level = p.choice("InstanceFamilyLevel", &["EntryLevel", "EnterpriseLevel", "CreditEntryLevel"])?;
    let max_results = p.int("MaxResults", 1, 1600)?.unwrap_or(1600) as usize;
    let offset = p.get("NextToken").map(decode_token).transpose()?.unwrap_or(0);
    let all: Vec<&InstanceTypeSpec> = c
        .cp
        .catalog()
        .instance_types()
        .filter(|t| ids.is_empty() || ids.contains(&t.id))
        .filter(|t| families.is_empty() || families.contains(&t.family))
        .filter(|t| family.map(|f| f == t.family).unwrap_or(true))
        .filter(|t| min_cpu.map(|m| t.vcpus as i64 >= m).unwrap_or(true))
        .filter(|t| max_cpu.map(|m| t.vcpus as i64 <= m).unwrap_or(true))
        .filter(|t| min_gpu.map(|m| t.gpu_count as i64 >= m).unwrap_or(true))
        .filter(|t| max_gpu.map(|m| t.gpu_count as i64 <= m).unwrap_or(true))
        .filter(|t| min_mem.map(|m| t.memory_gib >= m).unwrap_or(true))
        .filter(|t| max_mem.map(|m| t.memory_gib <= m).unwrap_or(true))
        .filter(|t| gpu_spec.map(|g| g == t.gpu_model).unwrap_or(true))
        .filter(|t| {
            category.map(|g| c.cp.catalog().family(&t.family).map(|f| f.category == g).unwrap_or(false)).unwrap_or(true)
        })
        .filter(|t| {
            level.map(|g| c.cp.catalog().family(&t.family).map(|f| f.level == g).unwrap_or(false)).unwrap_or(true)
        })
        .collect();
    let page: Vec<Value> = all.iter().skip(offset).take(max_results).map(|t| instance_type_json(c, t)).collect();
    let next = if offset + max_results < all.len() { encode_token(offset + max_results) } else { String::new() };
    Ok(json!({"InstanceTypes": {"InstanceType": page}, "NextToken": next}))
}

pub(super) fn describe_instance_type_families(c: &Call<'_>) -> Result<Value, ApiError> {
    let gen = c.params.get("Generation");
    let fams: Vec<Value> =
        c.cp.catalog()
            .families()
            .filter(|f| gen.map(|g| g == f.generation).unwrap_or(true))
            .map(|f| json!({"InstanceTypeFamilyId": f.id, "Generation": f.generation}))
            .collect();
    Ok(json!({"InstanceTypeFamilies": {"InstanceTypeFamily": fams}}))
}
