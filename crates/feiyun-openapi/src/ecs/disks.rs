//! Disks: CreateDisk, DescribeDisks, AttachDisk, DetachDisk, DeleteDisk, ResizeDisk, ResetDisk,
//! ModifyDiskAttribute; the storage parameters of RunInstances and CreateInstance (`SystemDisk.*`,
//! `DataDisk.N.*`, `KeyPairName`) and of DescribePrice (`DataDisk.N.*`).

use feiyun_domain::ops::{
    DiskAttributes, DiskFilter, InstanceStorage, NewDataDisk, NewDisk, ResizeType, SystemDiskSpec,
};
use feiyun_domain::storage::{
    valid_data_device, valid_description, valid_resource_name, Disk, DiskCategory, DiskKind, DiskStatus,
};
use feiyun_domain::DomainError;
use serde_json::{json, Value};

use super::{names, next_token, paging, seconds, Call};
use crate::error::ApiError;
use crate::params::Params;

const CATEGORIES: &[&str] = &["cloud", "cloud_efficiency", "cloud_ssd", "cloud_essd"];

fn disk_name_malformed() -> ApiError {
    ApiError::new(400, "InvalidDiskName.Malformed", "The specified disk name is wrongly formed.")
}

fn disk_description_malformed(param: &str) -> ApiError {
    ApiError::new(400, "InvalidDiskDescription.Malformed", format!("The specified parameter \"{param}\" is not valid."))
}

fn data_category_invalid(n: usize) -> ApiError {
    ApiError::new(
        400,
        "InvalidDataDiskCategory.ValueNotSupported",
        format!("The specified parameter \"DataDisk.{n}.Category\" is not valid."),
    )
}

fn data_size_invalid(n: usize) -> ApiError {
    ApiError::new(
        400,
        "InvalidDataDiskSize.ValueNotSupported",
        format!("The specified DataDisk.{n}.Size beyond the permitted range, or the capacity of snapshot exceeds the size limit of the specified disk category."),
    )
}

/// A data disk's device as clients name it: `/dev/vdb` to `/dev/vdz`, or the API's older names
/// `/dev/xvdb` to `/dev/xvdz`, which Apache Libcloud documents for `attach_volume` and which mean
/// the same device (an instance's data disks are virtio devices, `/dev/vd*`).
fn device_name(d: &str) -> String {
    match d.strip_prefix("/dev/xvd") {
        Some(rest) => format!("/dev/vd{rest}"),
        None => d.to_string(),
    }
}

fn gib(v: &str) -> Option<u64> {
    v.trim().parse::<u64>().ok().filter(|n| *n > 0)
}

/// The data disks a price is asked for (DescribePrice `DataDisk.N.Category`, `DataDisk.N.Size`):
/// (category, GiB) each, checked as RunInstances checks them.
pub(super) fn data_disk_prices(p: &Params) -> Result<Vec<(DiskCategory, u64)>, ApiError> {
    let mut out = Vec::new();
    for n in 1..=16 {
        let category = p.nth("DataDisk.N.Category", n);
        let size = p.nth("DataDisk.N.Size", n);
        if category.is_none() && size.is_none() {
            continue;
        }
        let category = match category {
            None => feiyun_control::DEFAULT_DATA_CATEGORY,
            Some(c) => DiskCategory::parse(c).ok_or_else(|| data_category_invalid(n))?,
        };
        let size = size.ok_or_else(|| ApiError::missing(&format!("DataDisk.{n}.Size")))?;
        let size = gib(size).ok_or_else(|| data_size_invalid(n))?;
        out.push((
            category,
            feiyun_control::data_disk_gib(category, Some(size), None).map_err(|_| data_size_invalid(n))?,
        ));
    }
    Ok(out)
}

/// The storage RunInstances and CreateInstance ask for, checked as ECS checks it.
pub(super) fn instance_storage(p: &Params) -> Result<InstanceStorage, ApiError> {
    let system_category = || {
        ApiError::new(
            400,
            "InvalidSystemDiskCategory.ValueNotSupported",
            "The specified parameter \"SystemDisk.Category\" is not valid.",
        )
    };
    let category = p.choice_or("SystemDisk.Category", CATEGORIES, system_category)?.and_then(DiskCategory::parse);
    let size = match p.get("SystemDisk.Size") {
        None => None,
        Some(v) => Some(gib(v).ok_or_else(|| {
            ApiError::new(
                400,
                "InvalidSystemDiskSize.ValueNotSupported",
                "The specified parameter \"SystemDisk.Size\" is not valid.",
            )
        })?),
    };
    let name = p.string("SystemDisk.DiskName", 128).map_err(|_| disk_name_malformed())?.unwrap_or_default();
    if !name.is_empty() && !valid_resource_name(&name) {
        return Err(disk_name_malformed());
    }
    let description = p.string("SystemDisk.Description", 256);
    let description =
        description.map_err(|_| disk_description_malformed("SystemDisk.Description"))?.unwrap_or_default();
    if !description.is_empty() && !valid_description(&description) {
        return Err(disk_description_malformed("SystemDisk.Description"));
    }
    let mut data_disks = Vec::new();
    for n in 1..=16 {
        let (category, size, snapshot) =
            (p.nth("DataDisk.N.Category", n), p.nth("DataDisk.N.Size", n), p.nth("DataDisk.N.SnapshotId", n));
        let (delete, dname, ddesc, device) = (
            p.nth("DataDisk.N.DeleteWithInstance", n),
            p.nth("DataDisk.N.DiskName", n),
            p.nth("DataDisk.N.Description", n),
            p.nth("DataDisk.N.Device", n),
        );
        if [category, size, snapshot, delete, dname, ddesc, device].iter().all(Option::is_none) {
            continue;
        }
        let category = match category {
            None => None,
            Some(c) => Some(DiskCategory::parse(c).ok_or_else(|| data_category_invalid(n))?),
        };
        let size = match size {
            None => None,
            Some(v) => Some(gib(v).ok_or_else(|| data_size_invalid(n))?),
        };
        if size.is_none() && snapshot.is_none() {
            return Err(ApiError::missing(&format!("DataDisk.{n}.Size")));
        }
        let delete_with_instance = match delete {
            None => true,
            Some(v) if v.eq_ignore_ascii_case("true") => true,
            Some(v) if v.eq_ignore_ascii_case("false") => false,
            Some(_) => return Err(ApiError::invalid(&format!("DataDisk.{n}.DeleteWithInstance"))),
        };
        let name = dname.unwrap_or_default();
        if !name.is_empty() && !valid_resource_name(name) {
            return Err(disk_name_malformed());
        }
        let description = ddesc.unwrap_or_default();
        if !description.is_empty() && !valid_description(description) {
            return Err(disk_description_malformed(&format!("DataDisk.{n}.Description")));
        }
        let device = device.map(device_name);
        if let Some(d) = &device {
            if !valid_data_device(d) {
                return Err(ApiError::new(
                    400,
                    "InvalidDataDevice.Malformed",
                    format!("The specified parameter \"DataDisk.{n}.Device\" is not valid."),
                ));
            }
        }
        data_disks.push(NewDataDisk {
            category,
            size_gib: size,
            snapshot_id: snapshot.map(str::to_string),
            name: name.to_string(),
            description: description.to_string(),
            device,
            delete_with_instance,
        });
    }
    Ok(InstanceStorage {
        system_disk: SystemDiskSpec { category, size_gib: size, name, description },
        data_disks,
        key_pair_name: p.get("KeyPairName").map(str::to_string),
    })
}

/// `DiskName` and `Description` of a disk.
fn disk_name(p: &Params) -> Result<Option<String>, ApiError> {
    let Some(n) = p.string("DiskName", 128).map_err(|_| disk_name_malformed())? else { return Ok(None) };
    if !valid_resource_name(&n) {
        return Err(disk_name_malformed());
    }
    Ok(Some(n))
}

/// ECS times of disks and snapshots: `2019-11-11T08:35:32Z`.
fn time(t: &Option<feiyun_domain::Instant>) -> String {
    t.as_ref().map(seconds).unwrap_or_default()
}

pub(super) fn disk_json(c: &Call<'_>, d: &Disk) -> Value {
    let (instance, device) = d
        .attachment
        .as_ref()
        .filter(|_| d.status != DiskStatus::Attaching || d.kind == DiskKind::System)
        .map(|a| (a.instance_id.as_str(), a.device.as_str()))
        .unwrap_or(("", ""));
    let attachments: Vec<Value> = d
        .attachment
        .iter()
        .filter(|_| !instance.is_empty())
        .map(|a| json!({"InstanceId": a.instance_id, "Device": a.device, "AttachedTime": time(&d.attached_at)}))
        .collect();
    json!({
        "DiskChargeType": "PostPaid",
        "ImageId": d.image_id.clone().unwrap_or_default(),
        "Device": device,
        "DetachedTime": time(&d.detached_at),
        "Type": d.kind.as_str(),
        "InstanceId": instance,
        "Encrypted": false,
        "ZoneId": d.zone_id,
        "EnableAutoSnapshot": false,
        "AttachedTime": if instance.is_empty() { String::new() } else { time(&d.attached_at) },
        "PerformanceLevel": if d.category == DiskCategory::CloudEssd { "PL1" } else { "" },
        "SerialNumber": d.id.trim_start_matches("d-"),
        "SourceSnapshotId": d.source_snapshot_id.clone().unwrap_or_default(),
        "DeleteAutoSnapshot": d.delete_auto_snapshot,
        "KMSKeyId": "",
        "Size": d.size_gib,
        "Description": d.description,
        "BdfId": "",
        "ProductCode": "",
        "Portable": d.portable(),
        "EnableAutomatedSnapshotPolicy": false,
        "ResourceGroupId": "",
        "DiskName": d.name,
        "StorageSetId": "",
        "AutoSnapshotPolicyId": "",
        "CreationTime": seconds(&d.created_at),
        "MountInstances": {"MountInstance": []},
        "MountInstanceNum": 0,
        "Attachments": {"Attachment": attachments},
        "Status": d.status.as_str(),
        "Tags": {"Tag": []},
        "Category": d.category.as_str(),
        "RegionId": c.cp.region().id,
        "DeleteWithInstance": d.delete_with_instance,
        "OperationLocks": {"OperationLock": []},
        "ExpiredTime": "2999-09-08T16:00Z",
        "DiskId": d.id,
    })
}

pub(super) fn create_disk(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let zone = p.required("ZoneId")?.to_string();
    let invalid_category = || {
        ApiError::new(
            400,
            "InvalidDiskCategory.ValueNotSupported",
            "The specified parameter \"DiskCategory\" is not valid.",
        )
    };
    let category = p.choice_or("DiskCategory", CATEGORIES, invalid_category)?.and_then(DiskCategory::parse);
    let size = match p.get("Size") {
        None => None,
        Some(v) => Some(gib(v).ok_or_else(|| {
            ApiError::new(400, "InvalidSize.ValueNotSupported", "The specified parameter Size is not valid.")
        })?),
    };
    let snapshot_id = p.get("SnapshotId").map(str::to_string);
    if size.is_none() && snapshot_id.is_none() {
        return Err(ApiError::new(
            400,
            "MissingParameter",
            "The input parameter either \"SnapshotId\" or \"Size\" should be specified.",
        ));
    }
    let spec = NewDisk {
        zone_id: zone,
        category,
        size_gib: size,
        snapshot_id,
        name: disk_name(p)?.unwrap_or_default(),
        description: names::instance_description(p)?.unwrap_or_default(),
        client_token: crate::client_token(c.action, p)?,
    };
    let d = c.cp.create_disk(c.account_id, &spec)?;
    Ok(json!({"DiskId": d.id}))
}

pub(super) fn describe_disks(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let ids = p.json_list("DiskIds", 100).map_err(|e| {
        if e.message.contains("at most") {
            ApiError::new(403, "InvalidDiskIds.Malformed", "The amount of specified disk Ids exceeds the limit.")
        } else {
            ApiError::new(400, "InvalidParameter.DiskIds", "The specified parameter diskIds is not valid.")
        }
    })?;
    let kind = match p.choice_or("DiskType", &["all", "system", "data"], || {
        ApiError::new(400, "InvalidDiskType.ValueNotSupported", "The specified disk type is not supported.")
    })? {
        Some("system") => Some(DiskKind::System),
        Some("data") => Some(DiskKind::Data),
        _ => None,
    };
    let bad_category =
        || ApiError::new(400, "InvalidCategory.ValueNotSupported", "The specified disk category is not supported.");
    let all_categories = &["all", "cloud", "cloud_efficiency", "cloud_ssd", "cloud_essd"];
    let category = p.choice_or("Category", all_categories, bad_category)?.and_then(DiskCategory::parse);
    let bad_status =
        || ApiError::new(400, "InvalidStatus.ValueNotSupported", "The specified disk status is not supported.");
    let statuses = &["In_use", "Available", "Attaching", "Detaching", "Creating", "ReIniting", "All"];
    let status = p.choice_or("Status", statuses, bad_status)?.and_then(DiskStatus::parse);
    let filter = DiskFilter {
        ids,
        instance_id: p.get("InstanceId").map(str::to_string),
        zone_id: p.get("ZoneId").map(str::to_string),
        kind,
        category,
        status,
        name: p.get("DiskName").map(str::to_string),
        snapshot_id: p.get("SnapshotId").map(str::to_string),
        portable: p.bool("Portable")?,
        delete_with_instance: p.bool("DeleteWithInstance")?,
    };
    let (offset, size, number, token_mode) = paging(p, 500)?;
    if p.bool("DryRun")?.unwrap_or(false) {
        return Err(DomainError::DryRunOk.into());
    }
    let all = c.cp.describe_disks(c.account_id, &filter);
    let items: Vec<Value> = all.iter().skip(offset).take(size).map(|d| disk_json(c, d)).collect();
    let next = next_token(token_mode, offset, size, all.len());
    Ok(json!({
        "PageNumber": number,
        "TotalCount": all.len(),
        "PageSize": size,
        "NextToken": next,
        "Disks": {"Disk": items},
    }))
}

pub(super) fn attach_disk(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let (instance, disk) = (p.required("InstanceId")?, p.required("DiskId")?);
    let device = p.get("Device").map(device_name);
    if let Some(d) = &device {
        if !valid_data_device(d) {
            return Err(ApiError::new(400, "InvalidDevice.Malformed", "The specified port is not valid."));
        }
    }
    c.cp.attach_disk(c.account_id, instance, disk, p.bool("DeleteWithInstance")?, device.as_deref())?;
    Ok(json!({}))
}

pub(super) fn detach_disk(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let (instance, disk) = (p.required("InstanceId")?, p.required("DiskId")?);
    c.cp.detach_disk(c.account_id, instance, disk, p.bool("DeleteWithInstance")?)?;
    Ok(json!({}))
}

pub(super) fn delete_disk(c: &Call<'_>) -> Result<Value, ApiError> {
    c.cp.delete_disk(c.account_id, c.params.required("DiskId")?)?;
    Ok(json!({}))
}

pub(super) fn resize_disk(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let disk = p.required("DiskId")?;
    let too_large =
        || ApiError::new(403, "InvalidDiskSize.TooLarge", "Specified new disk size is beyond the permitted range.");
    let size = p.int_or("NewSize", 1, 32_768, too_large)?;
    let size = size.ok_or_else(|| ApiError::missing("NewSize"))? as u64;
    let how = match p.choice_or("Type", &["offline", "online"], || {
        ApiError::new(400, "InvalidParam.Type", "The specified type is not supported.")
    })? {
        Some("online") => ResizeType::Online,
        _ => ResizeType::Offline,
    };
    crate::client_token(c.action, p)?;
    c.cp.resize_disk(c.account_id, disk, size, how)?;
    Ok(json!({"OrderId": ""}))
}

pub(super) fn reset_disk(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let (disk, snapshot) = (p.required("DiskId")?, p.required("SnapshotId")?);
    c.cp.reset_disk(c.account_id, disk, snapshot, p.bool("DryRun")?.unwrap_or(false))?;
    Ok(json!({}))
}

pub(super) fn modify_disk_attribute(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let mut ids = p.distinct_list("DiskIds", 100)?;
    if let Some(one) = p.get("DiskId") {
        ids.insert(0, one.to_string());
    }
    if ids.is_empty() {
        return Err(ApiError::missing("DiskId"));
    }
    let a = DiskAttributes {
        name: disk_name(p)?,
        description: names::instance_description(p)?,
        delete_with_instance: p.bool("DeleteWithInstance")?,
        delete_auto_snapshot: p.bool("DeleteAutoSnapshot")?,
    };
    if a == DiskAttributes::default() {
        return Err(ApiError::new(400, "NoAttributeToModify", "No attribute to be modified in this request."));
    }
    if ids.len() > 1 && (a.name.is_some() || a.description.is_some()) {
        return Err(ApiError::invalid_because("DiskIds.N", "a name or a description is set on one disk at a time"));
    }
    c.cp.modify_disk(c.account_id, &ids, &a)?;
    Ok(json!({}))
}
