//! Regions, zones and what is available where: DescribeRegions, DescribeZones,
//! DescribeAvailableResource.

use serde_json::{json, Value};

use super::Call;
use crate::error::ApiError;

pub(super) fn describe_regions(c: &Call<'_>) -> Result<Value, ApiError> {
    let r = c.cp.region();
    Ok(json!({"Regions": {"Region": [{
        "RegionId": r.id,
        "LocalName": r.local_name,
        "RegionEndpoint": c.endpoint,
        "Status": "available",
    }]}}))
}

pub(super) fn describe_zones(c: &Call<'_>) -> Result<Value, ApiError> {
    let verbose = c.params.bool("Verbose")?.unwrap_or(true);
    let available = c.cp.available(None, None)?;
    let hosts: Vec<feiyun_domain::host::Host> = c.cp.list_hosts().into_iter().map(|h| h.host).collect();
    let zones: Vec<Value> = c
        .cp
        .region()
        .zones
        .iter()
        .map(|z| {
            let types: Vec<&str> = available
                .iter()
                .filter(|a| a.zone_id == z.id)
                .filter(|a| {
                    hosts.iter().any(|h| {
                        h.zone_id == z.id
                            && c.cp
                                .catalog()
                                .instance_type(&a.instance_type)
                                .map(|t| {
                                    t.resources().fits_in(&h.capacity)
                                        && t.required_gpu_model()
                                            .map(|m| h.gpu_model.as_deref() == Some(m))
                                            .unwrap_or(true)
                                        && t.required_local_disk()
                                            .map(|d| h.local_disk_category.as_deref() == Some(d))
                                            .unwrap_or(true)
                                })
                                .unwrap_or(false)
                    })
                })
                .map(|a| a.instance_type.as_str())
                .collect();
            let mut families: Vec<String> =
                types.iter().filter_map(|t| c.cp.catalog().instance_type(t).map(|t| t.family.clone())).collect();
            families.sort();
            families.dedup();
            let categories: Vec<&str> = feiyun_domain::storage::DiskCategory::ALL.iter().map(|c| c.as_str()).collect();
            let mut zone = json!({
                "ZoneId": z.id,
                "LocalName": z.local_name,
                "ZoneType": "AvailabilityZone",
                "AvailableResourceCreation": {"ResourceTypes": ["Instance", "Disk"]},
                "AvailableDiskCategories": {"DiskCategories": categories},
                "AvailableVolumeCategories": {"VolumeCategories": []},
                "AvailableDedicatedHostTypes": {"DedicatedHostType": []},
                "DedicatedHostGenerations": {"DedicatedHostGeneration": []},
                "AvailableInstanceTypes": {"InstanceTypes": types},
            });
            if verbose {
                zone["AvailableResources"] = json!({"ResourcesInfo": [{
                    "IoOptimized": true,
                    "InstanceTypes": {"supportedInstanceType": types},
                    "InstanceTypeFamilies": {"supportedInstanceTypeFamily": families},
                    "InstanceGenerations": {"supportedInstanceGeneration": []},
                    "SystemDiskCategories": {"supportedSystemDiskCategory": categories},
                    "DataDiskCategories": {"supportedDataDiskCategory": categories},
                    "NetworkTypes": {"supportedNetworkCategory": ["vpc"]},
                }]});
            }
            zone
        })
        .collect();
    Ok(json!({"Zones": {"Zone": zones}}))
}

pub(super) fn describe_available_resource(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let dest = p.choice_or(
        "DestinationResource",
        &["Zone", "IoOptimized", "InstanceType", "SystemDisk", "DataDisk", "Network", "ddh"],
        || ApiError::new(404, "Invalid.DestinationResource", "The specified DestinationResource is not valid."),
    )?;
    let dest = dest.ok_or_else(|| ApiError::missing("DestinationResource"))?;
    let zone = p.get("ZoneId");
    let itype = p.get("InstanceType");
    let cores = p.int("Cores", 1, i64::MAX)?;
    let memory = p.decimal("Memory")?;
    let avail = c.cp.available(zone, itype)?;
    let zones: Vec<Value> = c
        .cp
        .region()
        .zones
        .iter()
        .filter(|z| zone.map(|w| w == z.id).unwrap_or(true))
        .map(|z| {
            let types: Vec<&feiyun_control::AvailableType> = avail
                .iter()
                .filter(|a| a.zone_id == z.id)
                .filter(|a| {
                    let t = c.cp.catalog().instance_type(&a.instance_type);
                    cores.map(|n| t.map(|t| t.vcpus as i64 == n).unwrap_or(false)).unwrap_or(true)
                        && memory.map(|m| t.map(|t| (t.memory_gib - m).abs() < 1e-9).unwrap_or(false)).unwrap_or(true)
                })
                .collect();
            let any = types.iter().any(|a| a.remaining > 0);
            let (status, category) = if any { ("Available", "WithStock") } else { ("SoldOut", "WithoutStock") };
            let resources = match dest {
                "Zone" => vec![json!({"Type": "Zone", "SupportedResources": {"SupportedResource": [
                    {"Value": z.id, "Status": status, "StatusCategory": category, "Min": 0, "Max": 0, "Unit": ""}
                ]}})],
                "InstanceType" | "IoOptimized" | "SystemDisk" | "DataDisk" | "Network" | "ddh" => {
                    let supported: Vec<Value> = types
                        .iter()
                        .map(|a| {
                            let (s, cat) = if a.remaining > 0 { ("Available", "WithStock") } else { ("SoldOut", "WithoutStock") };
                            json!({"Value": a.instance_type, "Status": s, "StatusCategory": cat, "Min": 0, "Max": a.remaining, "Unit": ""})
                        })
                        .collect();
                    vec![json!({"Type": "InstanceType", "SupportedResources": {"SupportedResource": supported}})]
                }
                _ => vec![],
            };
            json!({
                "RegionId": c.cp.region().id,
                "ZoneId": z.id,
                "Status": status,
                "StatusCategory": category,
                "AvailableResources": {"AvailableResource": resources},
            })
        })
        .collect();
    Ok(json!({"AvailableZones": {"AvailableZone": zones}}))
}
