//! ECS 2014-05-26: actions, their parameters and their response shapes.

use std::borrow::Cow;
use std::sync::Arc;

use base64::Engine;
use chrono::{FixedOffset, SecondsFormat};
use feiyun_billing::money::Money;
use feiyun_control::{ControlPlane, InvocationFilter};
use feiyun_domain::assistant::{Command, CommandType, Invocation, InvocationRun, RunStatus};
use feiyun_domain::catalog::InstanceTypeSpec;
use feiyun_domain::instance::{ChargeType, Instance, InstanceStatus, SpotStrategy, StoppedMode, Tag, UserAction};
use feiyun_domain::ops::{ClientToken, CreateInstances, InstanceFilter, Purchase, RunScript, StopOptions};
use feiyun_domain::usage::LedgerKind;
use feiyun_domain::{DomainError, Instant};
use feiyun_runtime::images::ImageInfo;
use serde::Serialize;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::params::Params;

/// Everything an action handler needs: who calls, with what.
pub struct Call<'a> {
    pub cp: &'a Arc<ControlPlane>,
    pub account_id: &'a str,
    pub action: &'a str,
    pub params: &'a Params,
    /// The endpoint the client called (its Host header).
    pub endpoint: &'a str,
}

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Every ECS action this server implements.
pub const ACTIONS: &[&str] = &[
    "DescribeRegions",
    "DescribeZones",
    "DescribeInstanceTypes",
    "DescribeInstanceTypeFamilies",
    "DescribeImages",
    "DescribeAvailableResource",
    "RunInstances",
    "CreateInstance",
    "DescribeInstances",
    "DescribeInstanceStatus",
    "DescribeInstanceAttribute",
    "StartInstance",
    "StartInstances",
    "StopInstance",
    "StopInstances",
    "RebootInstance",
    "RebootInstances",
    "DeleteInstance",
    "DeleteInstances",
    "CreateCommand",
    "DescribeCommands",
    "DeleteCommand",
    "InvokeCommand",
    "RunCommand",
    "DescribeInvocations",
    "DescribeInvocationResults",
    "GetInstanceConsoleOutput",
    "DescribePrice",
    "DescribeSpotPriceHistory",
    "RenewInstance",
    "ModifyInstanceAutoRenewAttribute",
    "ModifyInstanceChargeType",
    "CreateDeploymentSet",
    "DescribeDeploymentSets",
    "DeleteDeploymentSet",
];

/// Run an action; the result is the response's JSON object (without `RequestId`).
const REGION_OPTIONAL: &[&str] = &[
    "DescribeRegions",
    "DescribeInstanceTypes",
    "DescribeInstanceAttribute",
    "StartInstance",
    "StopInstance",
    "RebootInstance",
    "DeleteInstance",
    "RenewInstance",
    "ModifyInstanceAutoRenewAttribute",
];

pub fn handle(c: &Call<'_>) -> Result<String, ApiError> {
    // The SDK models of DescribeRegions, DescribeInstanceTypes, DescribeInstanceAttribute and the
    // single-instance actions carry no RegionId; every other action requires it.
    match c.params.get("RegionId") {
        Some(region) => c.cp.check_region(region)?,
        None if REGION_OPTIONAL.contains(&c.action) => {}
        None => return Err(ApiError::missing("RegionId")),
    }
    if c.action == "DescribeInstances" {
        return describe_instances(c);
    }
    handle_value(c).map(|v| v.to_string())
}

fn handle_value(c: &Call<'_>) -> Result<Value, ApiError> {
    match c.action {
        "DescribeRegions" => describe_regions(c),
        "DescribeZones" => describe_zones(c),
        "DescribeInstanceTypes" => describe_instance_types(c),
        "DescribeInstanceTypeFamilies" => describe_instance_type_families(c),
        "DescribeImages" => describe_images(c),
        "DescribeAvailableResource" => describe_available_resource(c),
        "RunInstances" => run_instances(c, true),
        "CreateInstance" => run_instances(c, false),
        "DescribeInstanceStatus" => describe_instance_status(c),
        "DescribeInstanceAttribute" => describe_instance_attribute(c),
        "StartInstance" => single(c, UserAction::Start),
        "StopInstance" => single(c, UserAction::Stop),
        "RebootInstance" => single(c, UserAction::Reboot),
        "DeleteInstance" => {
            let force = c.params.bool("Force")?.unwrap_or(false);
            single(c, UserAction::Delete { force })
        }
        "StartInstances" => batch(c, UserAction::Start, "InstanceId"),
        "StopInstances" => batch(c, UserAction::Stop, "InstanceId"),
        "RebootInstances" => batch(c, UserAction::Reboot, "InstanceId"),
        "DeleteInstances" => delete_instances(c),
        "CreateCommand" => create_command(c),
        "DescribeCommands" => describe_commands(c),
        "DeleteCommand" => delete_command(c),
        "InvokeCommand" => invoke_command(c),
        "RunCommand" => run_command(c),
        "DescribeInvocations" => describe_invocations(c),
        "DescribeInvocationResults" => describe_invocation_results(c),
        "GetInstanceConsoleOutput" => console_output(c),
        "DescribePrice" => describe_price(c),
        "DescribeSpotPriceHistory" => describe_spot_price_history(c),
        "RenewInstance" => renew_instance(c),
        "ModifyInstanceAutoRenewAttribute" => modify_auto_renew(c),
        "ModifyInstanceChargeType" => modify_instance_charge_type(c),
        "CreateDeploymentSet" => create_deployment_set(c),
        "DescribeDeploymentSets" => describe_deployment_sets(c),
        "DeleteDeploymentSet" => delete_deployment_set(c),
        _ => Err(ApiError::unknown_action()),
    }
}

/// ECS instance times have minute precision: `2017-12-10T04:04Z`.
fn minutes(t: &Instant) -> String {
    use chrono::{Datelike, Timelike};
    format!("{:04}-{:02}-{:02}T{:02}:{:02}Z", t.year(), t.month(), t.day(), t.hour(), t.minute())
}

fn seconds(t: &Instant) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn opt_seconds(t: &Option<Instant>) -> String {
    t.as_ref().map(seconds).unwrap_or_default()
}

/// PageNumber/PageSize paging: (offset, size, number).
fn page(p: &Params, default: i64, max: i64) -> Result<(usize, usize, i64), ApiError> {
    let number = p.int("PageNumber", 1, i32::MAX as i64)?.unwrap_or(1);
    let size = p.int("PageSize", 1, max)?.unwrap_or(default);
    Ok((((number - 1) * size) as usize, size as usize, number))
}

/// Paging tokens are offsets, masked so clients treat them as opaque.
const TOKEN_MASK: u128 = 0x5f37_59df_0000_0000_0000_0000_0000_0000;

fn encode_token(offset: usize) -> String {
    format!("{:032x}", offset as u128 ^ TOKEN_MASK)
}

fn decode_token(t: &str) -> Result<usize, ApiError> {
    u128::from_str_radix(t, 16)
        .ok()
        .filter(|_| t.len() == 32)
        .map(|v| v ^ TOKEN_MASK)
        .and_then(|v| usize::try_from(v).ok())
        .ok_or_else(|| ApiError::invalid("NextToken"))
}

fn content_encoding(p: &Params, default_plain: bool) -> Result<bool, ApiError> {
    Ok(match p.get("ContentEncoding") {
        None => default_plain,
        Some(v) if v.eq_ignore_ascii_case("PlainText") => true,
        Some(v) if v.eq_ignore_ascii_case("Base64") => false,
        // Documented: an unknown value falls back to the default.
        Some(_) => default_plain,
    })
}

fn render_bytes(b: &[u8], plain: bool) -> String {
    if plain {
        String::from_utf8_lossy(b).into_owned()
    } else {
        B64.encode(b)
    }
}

// ---- catalogue --------------------------------------------------------------------------------

fn describe_regions(c: &Call<'_>) -> Result<Value, ApiError> {
    let r = c.cp.region();
    Ok(json!({"Regions": {"Region": [{
        "RegionId": r.id,
        "LocalName": r.local_name,
        "RegionEndpoint": c.endpoint,
        "Status": "available",
    }]}}))
}

fn describe_zones(c: &Call<'_>) -> Result<Value, ApiError> {
    let verbose = c.params.bool("Verbose")?.unwrap_or(true);
    let available = c.cp.available(None, None)?;
    let zones: Vec<Value> =
        c.cp.region()
            .zones
            .iter()
            .map(|z| {
                let types: Vec<&str> = available
                    .iter()
                    .filter(|a| a.zone_id == z.id)
                    .filter(|a| {
                        c.cp.hosts().iter().any(|h| {
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
                let mut zone = json!({
                    "ZoneId": z.id,
                    "LocalName": z.local_name,
                    "ZoneType": "AvailabilityZone",
                    "AvailableResourceCreation": {"ResourceTypes": ["Instance"]},
                    "AvailableDiskCategories": {"DiskCategories": []},
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
                        "SystemDiskCategories": {"supportedSystemDiskCategory": []},
                        "DataDiskCategories": {"supportedDataDiskCategory": []},
                        "NetworkTypes": {"supportedNetworkCategory": ["vpc"]},
                    }]});
                }
                zone
            })
            .collect();
    Ok(json!({"Zones": {"Zone": zones}}))
}

fn instance_type_json(c: &Call<'_>, t: &InstanceTypeSpec) -> Value {
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

fn describe_instance_types(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let ids = p.list("InstanceTypes", 10)?;
    let families = p.list("InstanceTypeFamilies", 10)?;
    let family = p.get("InstanceTypeFamily");
    let min_cpu = p.int("MinimumCpuCoreCount", 0, i64::MAX)?;
    let max_cpu = p.int("MaximumCpuCoreCount", 0, i64::MAX)?;
    let min_gpu = p.int("MinimumGPUAmount", 0, i64::MAX)?;
    let max_gpu = p.int("MaximumGPUAmount", 0, i64::MAX)?;
    let mem = |n: &str| -> Result<Option<f64>, ApiError> {
        p.get(n).map(|v| v.parse::<f64>().map_err(|_| ApiError::invalid(n))).transpose()
    };
    let (min_mem, max_mem) = (mem("MinimumMemorySize")?, mem("MaximumMemorySize")?);
    let gpu_spec = p.get("GPUSpec");
    let category = p.get("InstanceCategory");
    let level = p.get("InstanceFamilyLevel");
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

fn describe_instance_type_families(c: &Call<'_>) -> Result<Value, ApiError> {
    let gen = c.params.get("Generation");
    let fams: Vec<Value> =
        c.cp.catalog()
            .families()
            .filter(|f| gen.map(|g| g == f.generation).unwrap_or(true))
            .map(|f| json!({"InstanceTypeFamilyId": f.id, "Generation": f.generation}))
            .collect();
    Ok(json!({"InstanceTypeFamilies": {"InstanceTypeFamily": fams}}))
}

fn describe_images(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let (offset, size, number) = page(p, 10, 100)?;
    let id = p.get("ImageId");
    let name = p.get("ImageName");
    let os = p.get("OSType");
    let arch = p.get("Architecture");
    let owner = p.get("ImageOwnerAlias");
    let statuses: Vec<&str> =
        p.get("Status").map(|s| s.split(',').map(str::trim).collect()).unwrap_or_else(|| vec!["Available"]);
    let images: Vec<Value> =
        c.cp.images()
            .list()
            .into_iter()
            .filter(|i| id.map(|x| x.split(',').any(|x| x.trim() == i.id)).unwrap_or(true))
            .filter(|i| name.map(|n| i.name.contains(n)).unwrap_or(true))
            .filter(|i| os.map(|o| o.eq_ignore_ascii_case(&i.os_type)).unwrap_or(true))
            .filter(|i| arch.map(|a| a == i.architecture).unwrap_or(true))
            .filter(|_| owner.map(|o| o == "system").unwrap_or(true))
            .filter(|_| statuses.iter().any(|s| *s == "Available" || *s == "ALL"))
            .map(|i| {
                json!({
                    "ImageId": i.id,
                    "ImageName": i.name,
                    "ImageFamily": "",
                    "ImageVersion": "",
                    "Description": i.description,
                    "OSName": i.os_name,
                    "OSNameEn": i.os_name,
                    "OSType": i.os_type,
                    "Platform": "Others Linux",
                    "Architecture": i.architecture,
                    "Size": i.size_bytes.div_ceil(1 << 30).max(1),
                    "Status": "Available",
                    "ImageOwnerAlias": "system",
                    "IsSupportCloudinit": false,
                    "IsSupportIoOptimized": true,
                    "IsSelfShared": "",
                    "IsCopied": false,
                    "IsSubscribed": false,
                    "Usage": "instance",
                    "Progress": "100%",
                    "BootMode": "BIOS",
                    "CreationTime": i.created_at,
                    "DiskDeviceMappings": {"DiskDeviceMapping": []},
                    "Tags": {"Tag": []},
                })
            })
            .collect();
    let total = images.len();
    let page: Vec<Value> = images.into_iter().skip(offset).take(size).collect();
    Ok(
        json!({"Images": {"Image": page}, "TotalCount": total, "PageNumber": number, "PageSize": size, "RegionId": c.cp.region().id}),
    )
}

fn describe_available_resource(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let dest = p.choice(
        "DestinationResource",
        &["Zone", "IoOptimized", "InstanceType", "SystemDisk", "DataDisk", "Network", "ddh"],
    )?;
    let dest = dest.ok_or_else(|| ApiError::missing("DestinationResource"))?;
    let zone = p.get("ZoneId");
    let itype = p.get("InstanceType");
    let cores = p.int("Cores", 1, i64::MAX)?;
    let memory = p.get("Memory").map(|v| v.parse::<f64>().map_err(|_| ApiError::invalid("Memory"))).transpose()?;
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

// ---- instances --------------------------------------------------------------------------------

fn decode_user_data(p: &Params) -> Result<Option<Vec<u8>>, ApiError> {
    let Some(ud) = p.get("UserData") else {
        return Ok(None);
    };
    let bytes = B64.decode(ud.trim()).map_err(|_| {
        ApiError::new(
            400,
            "InvalidUserData.Base64FormatInvalid",
            "The specified parameter \"UserData\" is not a valid Base64 string.",
        )
    })?;
    if bytes.len() > 32 * 1024 {
        return Err(ApiError::new(
            400,
            "InvalidUserData.SizeExceeded",
            "The specified parameter \"UserData\" exceeds the size.",
        ));
    }
    Ok(Some(bytes))
}

/// Subscription terms ECS sells, in months (PeriodUnit=Month).
const MONTH_PERIODS: &[i64] = &[1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 24, 36, 48, 60];
const AUTO_RENEW_PERIODS: &[i64] = &[1, 2, 3, 6, 12, 24, 36, 48, 60];

/// A subscription term from `Period` and `PeriodUnit` (Month default, or Year), in months.
fn period_months(p: &Params, period: &str, unit: &str) -> Result<Option<u32>, ApiError> {
    let Some(n) = p.int(period, 1, 60)? else { return Ok(None) };
    let months = match p.choice(unit, &["Month", "Year", "Week"])? {
        None | Some("Month") if MONTH_PERIODS.contains(&n) => n,
        Some("Year") if (1..=5).contains(&n) => n * 12,
        Some("Week") => {
            return Err(ApiError::new(
                400,
                "InvalidPeriodUnit.ValueNotSupported",
                "Weekly subscriptions are not sold in this region.",
            ))
        }
        _ => return Err(ApiError::new(400, "InvalidPeriod", "The specified period is not valid.")),
    };
    Ok(Some(months as u32))
}

/// How RunInstances / CreateInstance / DescribePrice ask to pay: charge type, term, spot bid.
fn purchase_params(p: &Params) -> Result<Purchase, ApiError> {
    let charge_type = match p.choice("InstanceChargeType", &["PostPaid", "PrePaid"])? {
        Some("PrePaid") => ChargeType::PrePaid,
        _ => ChargeType::PostPaid,
    };
    let spot_strategy = match p.choice("SpotStrategy", &["NoSpot", "SpotWithPriceLimit", "SpotAsPriceGo"])? {
        Some("SpotWithPriceLimit") => SpotStrategy::SpotWithPriceLimit,
        Some("SpotAsPriceGo") => SpotStrategy::SpotAsPriceGo,
        _ => SpotStrategy::NoSpot,
    };
    let mut out = Purchase { charge_type, spot_strategy, spot_duration_h: 1, ..Purchase::default() };
    if charge_type == ChargeType::PrePaid {
        if spot_strategy != SpotStrategy::NoSpot {
            return Err(ApiError::new(400, "InvalidSpotStrategy", "Spot instances must be pay-as-you-go (PostPaid)."));
        }
        out.period_months = Some(period_months(p, "Period", "PeriodUnit")?.ok_or_else(|| ApiError::missing("Period"))?);
        if p.bool("AutoRenew")?.unwrap_or(false) {
            let n = p.int("AutoRenewPeriod", 1, 60)?.unwrap_or(1);
            if !AUTO_RENEW_PERIODS.contains(&n) {
                return Err(ApiError::new(
                    400,
                    "InvalidAutoRenewPeriod.ValueNotSupported",
                    "The specified AutoRenewPeriod is not valid.",
                ));
            }
            out.auto_renew_months = Some(n as u32);
        }
    }
    if spot_strategy == SpotStrategy::SpotWithPriceLimit {
        let limit = p.required("SpotPriceLimit")?;
        let micros = Money::parse_micros(limit).filter(|m| *m > 0 && *m < i64::MAX as i128).ok_or_else(|| {
            ApiError::invalid_because("SpotPriceLimit", "a positive hourly price with at most 6 decimals")
        })?;
        out.spot_price_limit_micros = Some(micros as i64);
    }
    if spot_strategy != SpotStrategy::NoSpot {
        out.spot_duration_h = p.int("SpotDuration", 0, 1)?.unwrap_or(1) as u32;
        out.spot_stop_on_interrupt = p.choice("SpotInterruptionBehavior", &["Terminate", "Stop"])? == Some("Stop");
    }
    Ok(out)
}

fn run_instances(c: &Call<'_>, run: bool) -> Result<Value, ApiError> {
    let p = c.params;
    let instance_type = p.required("InstanceType")?.to_string();
    let image_id = p.required("ImageId")?.to_string();
    let amount = if run { p.int("Amount", 1, 100)?.unwrap_or(1) as u32 } else { 1 };
    let min_amount = if run { p.int("MinAmount", 1, 100)?.map(|n| n as u32) } else { None };
    if let Some(m) = min_amount {
        if m > amount {
            return Err(ApiError::new(
                400,
                "InvalidMinAmount.Malformed",
                "The specified parameter MinAmount is not valid.",
            ));
        }
    }
    let purchase = purchase_params(p)?;
    let token = p.string("ClientToken", 64)?;
    if let Some(t) = &token {
        if !t.is_ascii() {
            return Err(ApiError::invalid("ClientToken"));
        }
    }
    let tags = p.tags("Tag", 20)?.into_iter().map(|(k, v)| Tag { key: k, value: v.unwrap_or_default() }).collect();
    let spec = CreateInstances {
        zone_id: p.get("ZoneId").map(str::to_string),
        instance_type,
        image_id,
        amount,
        min_amount,
        name: p.string("InstanceName", 128)?,
        hostname: p.string("HostName", 64)?,
        unique_suffix: p.bool("UniqueSuffix")?.unwrap_or(false),
        description: p.string("Description", 256)?.unwrap_or_default(),
        user_data: decode_user_data(p)?,
        tags,
        deployment_set_id: p.get("DeploymentSetId").map(str::to_string),
        client_token: token.map(|t| ClientToken { token: t, fingerprint: crate::fingerprint(c.action, p) }),
        dry_run: p.bool("DryRun")?.unwrap_or(false),
        auto_start: run,
        purchase,
    };
    let ids = c.cp.create_instances(c.account_id, &spec)?;
    // What the order charged up front (subscriptions; pay-as-you-go pays as it goes).
    let trade: i64 =
        c.cp.ledger(c.account_id)?
            .iter()
            .filter(|e| e.kind == LedgerKind::Subscription && ids.contains(&e.instance_id))
            .map(|e| -e.amount_cents)
            .sum();
    let trade = trade as f64 / 100.0;
    if run {
        Ok(
            json!({"InstanceIdSets": {"InstanceIdSet": ids}, "TradePrice": trade, "OrderId": if trade > 0.0 { ids.first().cloned().unwrap_or_default() } else { String::new() }}),
        )
    } else {
        Ok(json!({"InstanceId": ids.first().cloned().unwrap_or_default(), "TradePrice": trade}))
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct WireInstancePage<'a> {
    instances: WireInstances<'a>,
    total_count: usize,
    page_number: i64,
    page_size: usize,
    next_token: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct WireInstances<'a> {
    instance: Vec<WireInstance<'a>>,
}

#[derive(Serialize)]
struct IpList {
    #[serde(rename = "IpAddress")]
    ip_address: [&'static str; 0],
}

const NO_IPS: IpList = IpList { ip_address: [] };

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct WireVpc {
    vpc_id: &'static str,
    #[serde(rename = "VSwitchId")]
    vswitch_id: &'static str,
    nat_ip_address: &'static str,
    private_ip_address: IpList,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct WireEip {
    allocation_id: &'static str,
    ip_address: &'static str,
    internet_charge_type: &'static str,
    bandwidth: u32,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct WireCpuOptions {
    core_count: u32,
    threads_per_core: u32,
    numa: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct WireMetadataOptions {
    http_endpoint: &'static str,
    http_tokens: &'static str,
    http_put_response_hop_limit: u32,
}

#[derive(Serialize)]
struct WireTag<'a> {
    #[serde(rename = "TagKey")]
    key: &'a str,
    #[serde(rename = "TagValue")]
    value: &'a str,
}

#[derive(Serialize)]
struct WireTags<'a> {
    #[serde(rename = "Tag")]
    tag: Vec<WireTag<'a>>,
}

#[derive(Serialize)]
struct SgIds {
    #[serde(rename = "SecurityGroupId")]
    ids: [&'static str; 0],
}

#[derive(Serialize)]
struct Nics {
    #[serde(rename = "NetworkInterface")]
    nics: [&'static str; 0],
}

#[derive(Serialize)]
struct Locks {
    #[serde(rename = "LockReason")]
    locks: Vec<WireLock>,
}

#[derive(Serialize)]
struct WireLock {
    #[serde(rename = "LockReason")]
    reason: &'static str,
}

/// One instance as DescribeInstances (and, trimmed, DescribeInstanceAttribute) returns it.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct WireInstance<'a> {
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

fn wire_instance<'a>(c: &'a Call<'_>, i: &'a Instance, builtin: Option<&'a ImageInfo>) -> WireInstance<'a> {
    let cat = c.cp.catalog();
    let t = cat.instance_type(&i.instance_type);
    let (os_type, os_name): (Cow<'a, str>, Cow<'a, str>) = match builtin.filter(|b| b.id == i.image_id) {
        Some(b) => (Cow::Borrowed(b.os_type.as_str()), Cow::Borrowed(b.os_name.as_str())),
        None => match c.cp.images().get(&i.image_id) {
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

fn instance_json(c: &Call<'_>, i: &Instance) -> Value {
    serde_json::to_value(wire_instance(c, i, None)).unwrap_or(Value::Null)
}

fn describe_instances(c: &Call<'_>) -> Result<String, ApiError> {
    let p = c.params;
    let statuses = match p.get("Status") {
        None => None,
        Some(s) => Some(vec![InstanceStatus::parse(s)
            .filter(|s| *s != InstanceStatus::Deleted)
            .ok_or_else(|| ApiError::invalid("Status"))?]),
    };
    let filter = InstanceFilter {
        ids: p.json_list("InstanceIds", 100)?,
        statuses,
        zone_id: p.get("ZoneId").map(str::to_string),
        instance_type: p.get("InstanceType").map(str::to_string),
        instance_type_family: p.get("InstanceTypeFamily").map(str::to_string),
        name: p.get("InstanceName").map(str::to_string),
        image_id: p.get("ImageId").map(str::to_string),
        tags: p.tags("Tag", 20)?,
    };
    if p.bool("DryRun")?.unwrap_or(false) {
        return Err(DomainError::DryRunOk.into());
    }
    let token_mode = p.get("NextToken").is_some() || p.get("MaxResults").is_some();
    let (offset, size, number) = if token_mode {
        let max = p
            .get("MaxResults")
            .map(|v| v.trim().parse::<i64>().map_err(|_| ApiError::invalid("MaxResults")))
            .transpose()?
            .unwrap_or(10)
            .clamp(10, 100) as usize;
        (p.get("NextToken").map(decode_token).transpose()?.unwrap_or(0), max, 1)
    } else {
        page(p, 10, 100)?
    };
    let image = c.cp.images().get(feiyun_runtime::images::BUILTIN_IMAGE_ID);
    c.cp.with_instances(c.account_id, &filter, |all| {
        let total = all.len();
        let items: Vec<WireInstance<'_>> =
            all.iter().skip(offset).take(size).map(|i| wire_instance(c, i, image.as_ref())).collect();
        let next = if token_mode && offset + size < total { encode_token(offset + size) } else { String::new() };
        let page = WireInstancePage {
            instances: WireInstances { instance: items },
            total_count: total,
            page_number: number,
            page_size: size,
            next_token: next,
        };
        serde_json::to_string(&page).map_err(|_| ApiError::internal())
    })
}

fn describe_instance_status(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let ids = p.list("InstanceId", 100)?;
    let (offset, size, number) = page(p, 10, 50)?;
    let filter = InstanceFilter {
        ids: if ids.is_empty() { None } else { Some(ids) },
        zone_id: p.get("ZoneId").map(str::to_string),
        ..Default::default()
    };
    let all = c.cp.describe_instances(c.account_id, &filter);
    let items: Vec<Value> =
        all.iter().skip(offset).take(size).map(|i| json!({"InstanceId": i.id, "Status": i.status.as_str()})).collect();
    Ok(
        json!({"InstanceStatuses": {"InstanceStatus": items}, "TotalCount": all.len(), "PageNumber": number, "PageSize": size}),
    )
}

fn describe_instance_attribute(c: &Call<'_>) -> Result<Value, ApiError> {
    let id = c.params.required("InstanceId")?;
    let i = c.cp.instance(c.account_id, id)?;
    let mut v = instance_json(c, &i);
    if let Some(obj) = v.as_object_mut() {
        obj.insert("IoOptimized".into(), json!("optimized"));
        obj.insert("ClusterId".into(), json!(""));
        obj.insert(
            "CreditSpecification".into(),
            json!(if c.cp.catalog().instance_type(&i.instance_type).map(|t| t.is_burstable()).unwrap_or(false) {
                "Standard"
            } else {
                ""
            }),
        );
        for k in [
            "InstanceTypeFamily",
            "GPUAmount",
            "GPUSpec",
            "OSType",
            "OSName",
            "OSNameEn",
            "Tags",
            "NetworkInterfaces",
            "CpuOptions",
            "StartTime",
            "LocalStorageAmount",
            "LocalStorageCapacity",
        ] {
            obj.remove(k);
        }
    }
    Ok(v)
}

fn stop_options(p: &Params, force_param: &str) -> Result<StopOptions, ApiError> {
    let mode = match p.choice("StoppedMode", &["StopCharging", "KeepCharging"])? {
        Some(m) => StoppedMode::parse(m).unwrap_or(StoppedMode::KeepCharging),
        None => StoppedMode::KeepCharging,
    };
    Ok(StopOptions { force: p.bool(force_param)?.unwrap_or(false), mode })
}

/// StartInstance, StopInstance, RebootInstance, DeleteInstance: one instance, all-or-nothing.
fn single(c: &Call<'_>, action: UserAction) -> Result<Value, ApiError> {
    let p = c.params;
    let id = p.required("InstanceId")?.to_string();
    let stop = match action {
        UserAction::Stop | UserAction::Reboot => Some(stop_options(p, "ForceStop")?),
        _ => None,
    };
    let dry = p.bool("DryRun")?.unwrap_or(false);
    c.cp.act(c.account_id, &[id], action, stop, true, dry)?;
    Ok(json!({}))
}

/// StartInstances, StopInstances, RebootInstances: per-instance outcomes.
fn batch(c: &Call<'_>, action: UserAction, list: &str) -> Result<Value, ApiError> {
    let p = c.params;
    let ids = p.list(list, 100)?;
    if ids.is_empty() {
        return Err(ApiError::missing(&format!("{list}.1")));
    }
    let force = if action == UserAction::Reboot { "ForceReboot" } else { "ForceStop" };
    let stop = match action {
        UserAction::Stop | UserAction::Reboot => Some(stop_options(p, force)?),
        _ => None,
    };
    let all_together =
        !matches!(p.choice("BatchOptimization", &["AllTogether", "SuccessFirst"])?, Some("SuccessFirst"));
    let dry = p.bool("DryRun")?.unwrap_or(false);
    let out = c.cp.act(c.account_id, &ids, action, stop, all_together, dry)?;
    let items: Vec<Value> = out
        .into_iter()
        .map(|(id, r)| match r {
            Ok((prev, cur)) => json!({"InstanceId": id, "Code": "200", "Message": "success", "PreviousStatus": prev.as_str(), "CurrentStatus": cur.as_str()}),
            Err(e) => {
                let current = c.cp.instance(c.account_id, &id).map(|i| i.status.as_str().to_string()).unwrap_or_default();
                let api = ApiError::from(e);
                json!({"InstanceId": id, "Code": api.code, "Message": api.message, "PreviousStatus": current, "CurrentStatus": current})
            }
        })
        .collect();
    Ok(json!({"InstanceResponses": {"InstanceResponse": items}}))
}

fn delete_instances(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let ids = p.list("InstanceId", 100)?;
    if ids.is_empty() {
        return Err(ApiError::missing("InstanceId.1"));
    }
    let force = p.bool("Force")?.unwrap_or(false);
    let dry = p.bool("DryRun")?.unwrap_or(false);
    c.cp.act(c.account_id, &ids, UserAction::Delete { force }, None, true, dry)?;
    Ok(json!({}))
}

fn console_output(c: &Call<'_>) -> Result<Value, ApiError> {
    let id = c.params.required("InstanceId")?;
    let remove_symbols = c.params.bool("RemoveSymbols")?.unwrap_or(false);
    let (mut bytes, modified) = c.cp.console_output(c.account_id, id).map_err(|e| match e {
        DomainError::IncorrectStatus { status } => ApiError::new(
            405,
            "IncorrectInstanceStatus",
            format!("The instance status \"{}\" is not applicable", status.as_str()),
        ),
        other => other.into(),
    })?;
    if remove_symbols {
        bytes = strip_escapes(&bytes);
    }
    // Documented as UTC+8, `yyyy-MM-dd HH:mm:ss`.
    let tz = FixedOffset::east_opt(8 * 3600).expect("valid offset");
    let last = modified.map(|t| t.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S").to_string()).unwrap_or_default();
    Ok(json!({"InstanceId": id, "ConsoleOutput": B64.encode(bytes), "LastUpdateTime": last}))
}

/// Remove ANSI escape sequences and control characters other than newline and tab.
fn strip_escapes(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == 0x1b {
            i += 1;
            if i < b.len() && b[i] == b'[' {
                i += 1;
                while i < b.len() && !(0x40..=0x7e).contains(&b[i]) {
                    i += 1;
                }
            }
            i += 1;
            continue;
        }
        if b[i] >= 0x20 || b[i] == b'\n' || b[i] == b'\t' {
            out.push(b[i]);
        }
        i += 1;
    }
    out
}

// ---- prices --------------------------------------------------------------------------------------

/// Micro-units as a JSON number of currency (prices are display values here; money itself is
/// never a float in Feiyun).
fn price_number(micros: i128) -> Value {
    json!(micros as f64 / 1_000_000.0)
}

fn discount_rule(rule: Option<(u32, i128)>) -> Value {
    match rule {
        Some((months, f)) if f > 0 => json!([{
            "RuleId": 100_000 + months as i64,
            "Description": format!("{}% off for a subscription of {months} months or more", f as f64 / 10_000.0),
        }]),
        _ => json!([]),
    }
}

/// Price of an instance type with its system disk and public bandwidth: pay-as-you-go or spot per
/// hour (PriceUnit=Hour), or a subscription for Period months or years with its term discount.
fn describe_price(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    match p.choice(
        "ResourceType",
        &["instance", "disk", "bandwidth", "ddh", "ElasticityAssurance", "CapacityReservation"],
    )? {
        None | Some("instance") => {}
        Some(_) => {
            return Err(ApiError::new(
                400,
                "InvalidResourceType.NotSupported",
                "Only ResourceType=instance is priced in this region.",
            ))
        }
    }
    let unit = p.choice("PriceUnit", &["Hour", "Week", "Month", "Year"])?.unwrap_or("Hour");
    let spot =
        p.choice("SpotStrategy", &["NoSpot", "SpotWithPriceLimit", "SpotAsPriceGo"])?.unwrap_or("NoSpot") != "NoSpot";
    let type_id = p.required("InstanceType")?;
    let t =
        c.cp.catalog()
            .instance_type(type_id)
            .ok_or_else(|| ApiError::from(DomainError::InstanceTypeNotFound(type_id.to_string())))?;
    let amount = p.int("Amount", 1, 1000)?.unwrap_or(1) as i128;
    let disk_category = p.get("SystemDisk.Category").unwrap_or(feiyun_control::SYSTEM_DISK_CATEGORY);
    let disk_gib = p.int("SystemDisk.Size", 1, 2048)?.unwrap_or(40) as u64;
    let mbps = p.int("InternetMaxBandwidthOut", 0, 100)?.unwrap_or(0) as u32;
    let by_traffic = p.choice("InternetChargeType", &["PayByBandwidth", "PayByTraffic"])? == Some("PayByTraffic");
    let prices = c.cp.prices()?;
    let instance_h = c.cp.instance_hour(t)?;
    let disk_h = prices.disk_hour(disk_category, disk_gib).ok_or_else(|| {
        ApiError::new(
            400,
            "InvalidSystemDiskCategory.ValueNotSupported",
            "The specified system disk category is not priced in this region.",
        )
    })?;
    // Pay-by-traffic bandwidth is charged per GB transferred, not per hour.
    let bw_h = if by_traffic { 0 } else { prices.bandwidth_hour(mbps) };
    // (resource, original, discount, rule) per component, for `amount` instances.
    let mut parts: Vec<(&str, i128, i128, Value)> = Vec::new();
    let mut rules = json!([]);
    match unit {
        "Hour" if spot => {
            let zone = p.get("ZoneId");
            let q = c.cp.spot_quotes(&t.id, zone)?;
            let q = q.iter().min_by_key(|q| q.hourly).ok_or_else(ApiError::internal)?;
            let rule = json!([{"RuleId": 200_000 + q.percent as i64, "Description": format!("spot market price in {}: {}% of pay-as-you-go", q.zone_id, q.percent)}]);
            parts.push(("instanceType", q.origin * amount, (q.origin - q.hourly) * amount, rule.clone()));
            rules = rule;
            parts.push(("systemDisk", disk_h * amount, 0, json!([])));
            parts.push(("bandwidth", bw_h * amount, 0, json!([])));
        }
        "Hour" => {
            parts.push(("instanceType", instance_h * amount, 0, json!([])));
            parts.push(("systemDisk", disk_h * amount, 0, json!([])));
            parts.push(("bandwidth", bw_h * amount, 0, json!([])));
        }
        "Month" | "Year" => {
            if spot {
                return Err(ApiError::new(
                    400,
                    "InvalidSpotStrategy",
                    "Spot instances are priced by the hour (PriceUnit=Hour).",
                ));
            }
            let n = p.int("Period", 1, 60)?.unwrap_or(1);
            let months = match unit {
                "Year" if (1..=5).contains(&n) => n * 12,
                "Month" if MONTH_PERIODS.contains(&n) => n,
                _ => return Err(ApiError::new(400, "InvalidPeriod", "The specified period is not valid.")),
            } as u32;
            for (name, hourly) in [("instanceType", instance_h), ("systemDisk", disk_h), ("bandwidth", bw_h)] {
                let q = prices.subscription(hourly, months);
                let rule = discount_rule(q.rule);
                if q.discount > 0 {
                    rules = rule.clone();
                }
                parts.push((name, q.original * amount, q.discount * amount, rule));
            }
        }
        _ => {
            return Err(ApiError::new(
                400,
                "InvalidPriceUnit.ValueNotSupported",
                "Weekly subscriptions are not sold in this region.",
            ))
        }
    }
    let detail: Vec<Value> = parts
        .iter()
        .map(|(r, o, d, rule)| json!({"Resource": r, "OriginalPrice": price_number(*o), "DiscountPrice": price_number(*d), "TradePrice": price_number(o - d), "SubRules": {"Rule": rule}}))
        .collect();
    let original: i128 = parts.iter().map(|x| x.1).sum();
    let discount: i128 = parts.iter().map(|x| x.2).sum();
    Ok(json!({
        "PriceInfo": {
            "Price": {
                "Currency": prices.currency,
                "OriginalPrice": price_number(original),
                "DiscountPrice": price_number(discount),
                "TradePrice": price_number(original - discount),
                "DetailInfos": {"DetailInfo": detail},
            },
            "Rules": {"Rule": rules},
        }
    }))
}

/// Spot price history of an instance type (one zone or all), from StartTime (default: a day
/// ago) to EndTime (default: now), at most 30 days.
fn describe_spot_price_history(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    p.required("NetworkType")?;
    let type_id = p.required("InstanceType")?;
    let now = c.cp.now();
    let time = |name: &str| -> Result<Option<Instant>, ApiError> {
        p.get(name)
            .map(|v| {
                chrono::DateTime::parse_from_rfc3339(v)
                    .or_else(|_| chrono::DateTime::parse_from_rfc3339(&v.replace('Z', ":00Z")))
                    .map(|d| d.with_timezone(&chrono::Utc))
                    .map_err(|_| ApiError::invalid_because(name, "yyyy-MM-ddTHH:mm:ssZ"))
            })
            .transpose()
    };
    let end = time("EndTime")?.unwrap_or(now);
    let start = time("StartTime")?.unwrap_or(end - chrono::Duration::days(1));
    if start > end || end - start > chrono::Duration::days(30) {
        return Err(ApiError::new(
            400,
            "InvalidParameter.TimeRange",
            "StartTime must precede EndTime by at most 30 days.",
        ));
    }
    let offset = p.int("Offset", 0, i64::MAX)?.unwrap_or(0) as usize;
    let points = c.cp.spot_history(type_id, p.get("ZoneId"), start.timestamp(), end.timestamp())?;
    const PAGE: usize = 1000;
    let page: Vec<Value> = points
        .iter()
        .skip(offset)
        .take(PAGE)
        .map(|q| {
            json!({
                "ZoneId": q.zone_id,
                "InstanceType": q.instance_type,
                "IoOptimized": "optimized",
                "NetworkType": "vpc",
                "Timestamp": seconds(&chrono::DateTime::from_timestamp(q.at_s, 0).unwrap_or(now)),
                "SpotPrice": price_number(q.hourly),
                "OriginPrice": price_number(q.origin),
            })
        })
        .collect();
    let next = if offset + page.len() < points.len() { (offset + page.len()) as i64 } else { 0 };
    Ok(json!({
        "Currency": c.cp.prices()?.currency,
        "NextOffset": next,
        "SpotPrices": {"SpotPriceType": page},
    }))
}

/// RenewInstance: extend a subscription, paid now from the balance.
fn renew_instance(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let id = p.required("InstanceId")?;
    let months = period_months(p, "Period", "PeriodUnit")?.ok_or_else(|| ApiError::missing("Period"))?;
    let before = c.cp.balance_cents(c.account_id)?;
    c.cp.renew_instance(c.account_id, id, months)?;
    let after = c.cp.balance_cents(c.account_id)?;
    Ok(json!({"OrderId": format!("{id}-renew-{months}"), "TradePrice": (before - after) as f64 / 100.0}))
}

/// ModifyInstanceChargeType: PrePaid → PostPaid (refunding unused time) or PostPaid → PrePaid.
fn modify_instance_charge_type(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let raw = p.required("InstanceIds")?;
    let ids: Vec<String> = serde_json::from_str(raw)
        .map_err(|_| ApiError::invalid_because("InstanceIds", "a JSON array of instance ids"))?;
    if ids.is_empty() || ids.len() > 20 {
        return Err(ApiError::invalid_because("InstanceIds", "1 to 20 instance ids"));
    }
    let to = match p.choice("InstanceChargeType", &["PostPaid", "PrePaid"])? {
        Some("PostPaid") => ChargeType::PostPaid,
        _ => ChargeType::PrePaid,
    };
    let months =
        if to == ChargeType::PrePaid { Some(period_months(p, "Period", "PeriodUnit")?.unwrap_or(1)) } else { None };
    let dry_run = p.bool("DryRun")?.unwrap_or(false);
    let fees = c.cp.convert_charge_type(c.account_id, &ids, to, months, dry_run)?;
    let currency = c.cp.prices()?.currency.clone();
    let fee: Vec<Value> = fees
        .iter()
        .map(|(id, cents)| json!({"InstanceId": id, "Fee": format!("{:.2}", *cents as f64 / 100.0), "Currency": currency}))
        .collect();
    Ok(json!({"OrderId": format!("{}-charge-{}", ids[0], to.as_str()), "FeeOfInstances": {"FeeOfInstance": fee}}))
}

/// ModifyInstanceAutoRenewAttribute: turn auto-renewal on (with a duration) or off.
fn modify_auto_renew(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let ids: Vec<String> =
        p.required("InstanceId")?.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
    let renew = match p.choice("RenewalStatus", &["AutoRenewal", "Normal", "NotRenewal"])? {
        Some(s) => s == "AutoRenewal",
        None => p.bool("AutoRenew")?.unwrap_or(false),
    };
    let months = if renew {
        let n = p.int("Duration", 1, 60)?.unwrap_or(1);
        let n = if p.get("PeriodUnit") == Some("Year") { n * 12 } else { n };
        if !AUTO_RENEW_PERIODS.contains(&n) {
            return Err(ApiError::new(400, "InvalidDuration", "The specified Duration is not valid."));
        }
        Some(n as u32)
    } else {
        None
    };
    c.cp.set_auto_renew(c.account_id, &ids, months)?;
    Ok(json!({}))
}

// ---- deployment sets --------------------------------------------------------------------------

fn create_deployment_set(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    match p.get("Strategy") {
        None | Some("Availability") => {}
        Some(_) => {
            return Err(ApiError::new(
                400,
                "InvalidParameter.Strategy",
                "Only the Availability strategy (every instance on its own host) is supported.",
            ))
        }
    }
    let name = p.string("DeploymentSetName", 128)?.unwrap_or_default();
    let description = p.string("Description", 256)?.unwrap_or_default();
    let id = c.cp.create_deployment_set(c.account_id, &name, &description)?;
    Ok(json!({"DeploymentSetId": id}))
}

fn describe_deployment_sets(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let ids = p.json_list("DeploymentSetIds", 100)?;
    let (offset, size, number) = page(p, 10, 50)?;
    let all = c.cp.describe_deployment_sets(c.account_id, ids.as_deref(), p.get("DeploymentSetName"));
    let items: Vec<Value> = all
        .iter()
        .skip(offset)
        .take(size)
        .map(|(d, members)| {
            json!({
                "DeploymentSetId": d.id,
                "DeploymentSetName": d.name,
                "DeploymentSetDescription": d.description,
                "DeploymentStrategy": "Availability",
                "Strategy": "Availability",
                "Domain": "Default",
                "Granularity": "Host",
                "InstanceAmount": members.len(),
                "InstanceIds": {"InstanceId": members},
                "CreationTime": minutes(&d.created_at),
                "GroupCount": 0,
                "Capacities": {"Capacity": []},
            })
        })
        .collect();
    Ok(
        json!({"DeploymentSets": {"DeploymentSet": items}, "TotalCount": all.len(), "PageNumber": number, "PageSize": size, "RegionId": c.cp.region().id}),
    )
}

fn delete_deployment_set(c: &Call<'_>) -> Result<Value, ApiError> {
    let id = c.params.required("DeploymentSetId")?;
    c.cp.delete_deployment_set(c.account_id, id)?;
    Ok(json!({}))
}

// ---- Cloud Assistant --------------------------------------------------------------------------

fn command_type(p: &Params, name: &str) -> Result<Option<CommandType>, ApiError> {
    match p.get(name) {
        None => Ok(None),
        Some(t) => CommandType::parse(t)
            .map(Some)
            .ok_or_else(|| ApiError::new(403, "InvalidCmdType.NotFound", "The specified command type does not exist.")),
    }
}

fn command_content(p: &Params, default_plain: bool) -> Result<Vec<u8>, ApiError> {
    let raw = p.required("CommandContent")?;
    let plain = content_encoding(p, default_plain)?;
    let bytes = if plain {
        raw.as_bytes().to_vec()
    } else {
        B64.decode(raw.trim()).map_err(|_| {
            ApiError::new(400, "CmdContent.DecodeError", "The CommandContent can not be base64 decoded.")
        })?
    };
    if B64.encode(&bytes).len() > 24 * 1024 {
        return Err(ApiError::new(403, "CmdContent.ExceedLimit", "The command content exceeds the limit."));
    }
    Ok(bytes)
}

fn timeout(p: &Params) -> Result<Option<u64>, ApiError> {
    Ok(p.int("Timeout", 10, 86400)?.map(|t| t as u64))
}

fn check_repeat_mode(p: &Params) -> Result<(), ApiError> {
    match p.get("RepeatMode") {
        None | Some("Once") => {}
        Some("Period" | "NextRebootOnly" | "EveryReboot" | "DryRun") => {
            return Err(ApiError::new(
                400,
                "InvalidRepeatMode.NotSupported",
                "Only RepeatMode=Once is supported in this region.",
            ))
        }
        Some(_) => {
            return Err(ApiError::new(404, "InvalidRepeatMode.NotFound", "The specified repeat mode does not exist."))
        }
    }
    if p.get("Frequency").is_some() {
        return Err(ApiError::new(
            400,
            "InvalidRepeatMode.NotSupported",
            "Only RepeatMode=Once is supported in this region.",
        ));
    }
    Ok(())
}

fn create_command(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let name = p.string("Name", 128)?.ok_or_else(|| ApiError::missing("Name"))?;
    let kind = command_type(p, "Type")?.ok_or_else(|| ApiError::missing("Type"))?;
    let content = command_content(p, false)?;
    let command = Command {
        id: String::new(),
        account_id: String::new(),
        name,
        description: p.string("Description", 512)?.unwrap_or_default(),
        kind,
        content,
        working_dir: p.string("WorkingDir", 200)?.unwrap_or_default(),
        timeout_s: timeout(p)?.unwrap_or(60),
        created_at: c.cp.now(),
        ephemeral: false,
    };
    let id = c.cp.create_command(c.account_id, command).map_err(ApiError::from_domain_assistant)?;
    Ok(json!({"CommandId": id}))
}

fn describe_commands(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let plain = content_encoding(p, false)?;
    let (offset, size, number) = page(p, 10, 50)?;
    let kind = command_type(p, "Type")?;
    let all = c.cp.describe_commands(c.account_id, p.get("CommandId"), p.get("Name"), kind);
    let items: Vec<Value> = all
        .iter()
        .skip(offset)
        .take(size)
        .map(|cmd| {
            json!({
                "CommandId": cmd.id,
                "Name": cmd.name,
                "Type": cmd.kind.as_str(),
                "Description": cmd.description,
                "CommandContent": render_bytes(&cmd.content, plain),
                "WorkingDir": cmd.working_dir,
                "Timeout": cmd.timeout_s,
                "EnableParameter": false,
                "CreationTime": seconds(&cmd.created_at),
                "InvokeTimes": c.cp.invoke_times(&cmd.id),
                "Category": "",
                "Provider": "",
                "Version": 1,
                "Latest": true,
                "Launcher": "",
                "ResourceGroupId": "",
                "ParameterNames": {"ParameterName": []},
                "ParameterDefinitions": {"ParameterDefinition": []},
                "Tags": {"Tag": []},
            })
        })
        .collect();
    Ok(
        json!({"Commands": {"Command": items}, "TotalCount": all.len(), "PageNumber": number, "PageSize": size, "NextToken": ""}),
    )
}

fn delete_command(c: &Call<'_>) -> Result<Value, ApiError> {
    let id = c.params.required("CommandId")?;
    c.cp.delete_command(c.account_id, id).map_err(ApiError::from_domain_assistant)?;
    Ok(json!({}))
}

fn targets(p: &Params) -> Result<Vec<String>, ApiError> {
    let ids = p.list("InstanceId", 100)?;
    if ids.is_empty() {
        return Err(ApiError::new(400, "MissingParam.InstanceId", "The parameter InstanceId is missing."));
    }
    Ok(ids)
}

fn invoke_command(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let command_id = p.required("CommandId")?;
    check_repeat_mode(p)?;
    let ids = targets(p)?;
    let wd = p.string("WorkingDir", 200)?;
    let id =
        c.cp.invoke(c.account_id, command_id, &ids, timeout(p)?, wd.as_deref())
            .map_err(ApiError::from_domain_assistant)?;
    Ok(json!({"InvokeId": id}))
}

fn run_command(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let kind = command_type(p, "Type")?.ok_or_else(|| ApiError::missing("Type"))?;
    let content = command_content(p, true)?;
    check_repeat_mode(p)?;
    let ids = targets(p)?;
    let run = RunScript {
        instance_ids: ids,
        content,
        name: p.string("Name", 128)?.unwrap_or_else(|| "RunCommand".to_string()),
        description: p.string("Description", 512)?.unwrap_or_default(),
        working_dir: p.string("WorkingDir", 200)?.unwrap_or_default(),
        timeout_s: timeout(p)?.unwrap_or(60),
    };
    let keep = p.bool("KeepCommand")?.unwrap_or(false);
    let (command_id, invoke_id) =
        c.cp.run_command(c.account_id, kind, keep, run).map_err(ApiError::from_domain_assistant)?;
    Ok(json!({"CommandId": command_id, "InvokeId": invoke_id}))
}

/// The legacy per-record status next to the current one.
fn record_status(r: &InvocationRun) -> &'static str {
    match r.status {
        RunStatus::Pending | RunStatus::Running => "Running",
        RunStatus::Success | RunStatus::Failed => "Finished",
        RunStatus::Timeout | RunStatus::Aborted | RunStatus::Error => "Failed",
    }
}

fn legacy_invoke_status(v: &Invocation) -> &'static str {
    if v.runs.iter().any(|r| !r.status.is_final()) {
        return "Running";
    }
    if v.runs.iter().all(|r| matches!(r.status, RunStatus::Timeout | RunStatus::Aborted | RunStatus::Error)) {
        "Failed"
    } else if v.runs.iter().any(|r| matches!(r.status, RunStatus::Timeout | RunStatus::Aborted | RunStatus::Error)) {
        "PartialFailed"
    } else {
        "Finished"
    }
}

fn invocation_filter(p: &Params) -> InvocationFilter {
    InvocationFilter {
        invoke_id: p.get("InvokeId").map(str::to_string),
        command_id: p.get("CommandId").map(str::to_string),
        command_name: p.get("CommandName").map(str::to_string),
        instance_id: p.get("InstanceId").map(str::to_string),
    }
}

fn describe_invocations(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let plain = content_encoding(p, false)?;
    let include_output = p.bool("IncludeOutput")?.unwrap_or(false);
    let (offset, size, number) = page(p, 10, 50)?;
    let status_filter = p.get("InvokeStatus");
    let all: Vec<Invocation> =
        c.cp.describe_invocations(c.account_id, &invocation_filter(p))
            .into_iter()
            .filter(|v| status_filter.map(|s| s == v.status().as_str() || s == legacy_invoke_status(v)).unwrap_or(true))
            .collect();
    let items: Vec<Value> = all
        .iter()
        .skip(offset)
        .take(size)
        .map(|v| {
            let runs: Vec<Value> = v
                .runs
                .iter()
                .map(|r| {
                    json!({
                        "InstanceId": r.instance_id,
                        "InvocationStatus": r.status.as_str(),
                        "InstanceInvokeStatus": record_status(r),
                        "ExitCode": r.exit_code.unwrap_or(0),
                        "Output": if include_output { render_bytes(&r.output, plain) } else { String::new() },
                        "Dropped": r.dropped,
                        "ErrorCode": r.error_code,
                        "ErrorInfo": r.error_info,
                        "Repeats": u8::from(r.start_time.is_some()),
                        "Timed": false,
                        "CreationTime": seconds(&v.created_at),
                        "StartTime": opt_seconds(&r.start_time),
                        "FinishTime": opt_seconds(&r.finish_time),
                        "UpdateTime": opt_seconds(&r.finish_time.or(r.start_time).or(Some(v.created_at))),
                        "StopTime": "",
                    })
                })
                .collect();
            json!({
                "InvokeId": v.id,
                "CommandId": v.command_id,
                "CommandName": v.command_name,
                "CommandType": "RunShellScript",
                "CommandDescription": "",
                "CommandContent": render_bytes(&v.command_content, plain),
                "InvocationStatus": v.status().as_str(),
                "InvokeStatus": legacy_invoke_status(v),
                "RepeatMode": "Once",
                "Frequency": "",
                "Timed": false,
                "CreationTime": seconds(&v.created_at),
                "Parameters": "{}",
                "Timeout": v.timeout_s,
                "Username": "root",
                "WorkingDir": "",
                "Tags": {"Tag": []},
                "InvokeInstances": {"InvokeInstance": runs},
            })
        })
        .collect();
    Ok(
        json!({"Invocations": {"Invocation": items}, "TotalCount": all.len(), "PageNumber": number, "PageSize": size, "NextToken": ""}),
    )
}

fn describe_invocation_results(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let plain = content_encoding(p, false)?;
    let (offset, size, number) = page(p, 10, 50)?;
    let record_filter = p.get("InvokeRecordStatus");
    let instance = p.get("InstanceId");
    let mut rows: Vec<(&Invocation, &InvocationRun)> = Vec::new();
    let invs = c.cp.describe_invocations(c.account_id, &invocation_filter(p));
    for v in &invs {
        for r in &v.runs {
            if instance.map(|i| i == r.instance_id).unwrap_or(true)
                && record_filter.map(|s| s == record_status(r)).unwrap_or(true)
            {
                rows.push((v, r));
            }
        }
    }
    let items: Vec<Value> = rows
        .iter()
        .skip(offset)
        .take(size)
        .map(|(v, r)| {
            json!({
                "CommandId": v.command_id,
                "InvokeId": v.id,
                "InstanceId": r.instance_id,
                "InvocationStatus": r.status.as_str(),
                "InvokeRecordStatus": record_status(r),
                "ExitCode": r.exit_code.unwrap_or(0),
                "Output": render_bytes(&r.output, plain),
                "Dropped": r.dropped,
                "ErrorCode": r.error_code,
                "ErrorInfo": r.error_info,
                "Repeats": u8::from(r.start_time.is_some()),
                "StartTime": opt_seconds(&r.start_time),
                "FinishedTime": opt_seconds(&r.finish_time),
                "StopTime": "",
                "Username": "root",
                "ContainerId": "",
                "ContainerName": "",
                "Launcher": "",
                "Tags": {"Tag": []},
            })
        })
        .collect();
    Ok(
        json!({"Invocation": {"InvocationResults": {"InvocationResult": items}, "TotalCount": rows.len(), "PageNumber": number, "PageSize": size, "NextToken": ""}}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_reject_garbage() {
        for n in [0usize, 10, 12345] {
            assert_eq!(decode_token(&encode_token(n)).expect("valid"), n);
        }
        assert!(decode_token("zz").is_err());
        assert!(decode_token(&"f".repeat(32)).is_err());
    }

    #[test]
    fn instance_times_have_minute_precision() {
        let t =
            chrono::DateTime::parse_from_rfc3339("2017-12-10T04:04:59.9Z").expect("valid").with_timezone(&chrono::Utc);
        assert_eq!(minutes(&t), "2017-12-10T04:04Z");
    }

    #[test]
    fn strips_escapes() {
        assert_eq!(strip_escapes(b"\x1b[1;32mok\x1b[0m\r\n"), b"ok\n");
    }
}
