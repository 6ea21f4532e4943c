//! Images: DescribeImages, CreateImage, DeleteImage, ImportImage, ModifyImageSharePermission,
//! DescribeImageSharePermission.

use feiyun_control::ImageView;
use feiyun_domain::ops::{ImageSourceRef, ImportImage, NewImage};
use feiyun_domain::storage::{valid_resource_name, ImageOrigin};
use serde_json::{json, Value};

use super::{names, page, seconds, Call};
use crate::error::ApiError;
use crate::params::Params;

fn image_json(v: &ImageView) -> Value {
    let i = &v.image;
    let (snapshot, import) = match &v.origin {
        Some(ImageOrigin::Snapshot(s)) => (s.clone(), String::new()),
        Some(ImageOrigin::Import(o)) => (String::new(), o.clone()),
        _ => (String::new(), String::new()),
    };
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
        "Size": i.disk_gib(),
        "Status": v.status.as_str(),
        "ImageOwnerAlias": v.owner_alias,
        "IsSupportCloudinit": false,
        "IsSupportIoOptimized": true,
        "IsSelfShared": if v.shared { "True" } else { "" },
        "IsCopied": false,
        "IsSubscribed": false,
        "IsPublic": false,
        "Usage": if v.in_use { "instance" } else { "none" },
        "Progress": format!("{}%", v.progress),
        "BootMode": "BIOS",
        "CreationTime": seconds(&i.created_at),
        "DiskDeviceMappings": {"DiskDeviceMapping": [{
            "Device": "/dev/xvda",
            "Type": "system",
            "Size": i.disk_gib().to_string(),
            "SnapshotId": snapshot,
            "Format": "",
            "ImportOSSBucket": "",
            "ImportOSSObject": import,
            "Progress": format!("{}%", v.progress),
        }]},
        "Tags": {"Tag": []},
    })
}

pub(super) fn describe_images(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let (offset, size, number) = page(p, 10, 100)?;
    let id = p.get("ImageId");
    let name = p.get("ImageName");
    let os = p.get("OSType");
    if os.is_some_and(|o| !o.eq_ignore_ascii_case("linux") && !o.eq_ignore_ascii_case("windows")) {
        return Err(ApiError::new(404, "InvalidOSType", "The specified OSType is not valid"));
    }
    let arch = p.choice_or("Architecture", &["i386", "x86_64", "arm64"], || {
        ApiError::new(404, "InvalidArchitecture", "The specified Architecture is not valid")
    })?;
    let owner = p.choice_or("ImageOwnerAlias", &["system", "self", "others", "marketplace"], || {
        ApiError::new(
            400,
            "InvalidImageOwnerAlias.ValueNotSupported",
            "The specified ImageOwnerAlias value is not supported.",
        )
    })?;
    let statuses: Vec<&str> =
        p.get("Status").map(|s| s.split(',').map(str::trim).collect()).unwrap_or_else(|| vec!["Available"]);
    // ECS documents no code for an unknown status; this is the generic InvalidParameter.
    const STATUSES: &[&str] = &["Creating", "Waiting", "Available", "UnAvailable", "CreateFailed", "Deprecated", "ALL"];
    if let Some(bad) = statuses.iter().find(|s| !STATUSES.contains(s)) {
        return Err(ApiError::invalid_because("Status", &format!("{bad} is not an image status")));
    }
    let images: Vec<Value> =
        c.cp.image_views(c.account_id)
            .into_iter()
            .filter(|v| id.map(|x| x.split(',').any(|x| x.trim() == v.image.id)).unwrap_or(true))
            .filter(|v| name.map(|n| v.image.name.contains(n)).unwrap_or(true))
            .filter(|v| os.map(|o| o.eq_ignore_ascii_case(&v.image.os_type)).unwrap_or(true))
            .filter(|v| arch.map(|a| a == v.image.architecture).unwrap_or(true))
            .filter(|v| owner.is_none_or(|o| o == v.owner_alias))
            .filter(|v| statuses.iter().any(|s| *s == "ALL" || *s == v.status.as_str()))
            .map(|v| image_json(&v))
            .collect();
    let total = images.len();
    let page: Vec<Value> = images.into_iter().skip(offset).take(size).collect();
    Ok(
        json!({"Images": {"Image": page}, "TotalCount": total, "PageNumber": number, "PageSize": size, "RegionId": c.cp.region().id}),
    )
}

fn image_name(p: &Params) -> Result<Option<String>, ApiError> {
    let bad = || ApiError::new(400, "InvalidImageName.Malformed", "The specified Image name is wrongly formed.");
    let Some(n) = p.string("ImageName", 128).map_err(|_| bad())? else { return Ok(None) };
    let reserved = n.starts_with("aliyun") || n.starts_with("acs:");
    if !valid_resource_name(&n) || reserved {
        return Err(bad());
    }
    Ok(Some(n))
}

pub(super) fn create_image(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let from = match (p.get("InstanceId"), p.get("SnapshotId")) {
        (Some(i), _) => ImageSourceRef::Instance(i.to_string()),
        (None, Some(s)) => ImageSourceRef::Snapshot(s.to_string()),
        (None, None) => {
            return Err(ApiError::new(
                400,
                "MissingParameter",
                "The input parameter SnapshotId or InstanceId that is mandatory for processing this request is not supplied.",
            ))
        }
    };
    let spec = NewImage {
        from,
        name: image_name(p)?,
        description: names::instance_description(p)?.unwrap_or_default(),
        client_token: crate::client_token(c.action, p)?,
    };
    let id = c.cp.create_image(c.account_id, &spec, p.bool("DryRun")?.unwrap_or(false))?;
    Ok(json!({"ImageId": id}))
}

pub(super) fn delete_image(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    c.cp.delete_image(c.account_id, p.required("ImageId")?, p.bool("Force")?.unwrap_or(false))?;
    Ok(json!({}))
}

/// ImportImage: `DiskDeviceMapping.1.OSSObject` names a file of the region's import directory
/// (inside the directory `DiskDeviceMapping.1.OSSBucket` when given).
pub(super) fn import_image(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let object = p.nth("DiskDeviceMapping.N.OSSObject", 1).ok_or_else(|| {
        ApiError::new(
            400,
            "MissingParameter",
            "An input parameter \"DiskDeviceMapping.1.OSSObject\" that is mandatory for processing the request is not supplied.",
        )
    })?;
    let object = match p.nth("DiskDeviceMapping.N.OSSBucket", 1) {
        Some(bucket) if bucket.contains('/') || bucket == "." || bucket == ".." => {
            return Err(ApiError::new(
                400,
                "InvalidOSSBucket.NotFound",
                "The specified OSS bucket does not exist in this region.",
            ))
        }
        Some(bucket) => format!("{bucket}/{object}"),
        None => object.to_string(),
    };
    if let Some(f) = p.nth("DiskDeviceMapping.N.Format", 1) {
        if !["raw", "qcow2", "vhd", "tar"].iter().any(|x| x.eq_ignore_ascii_case(f)) {
            return Err(ApiError::new(
                400,
                "InvalidImageFormat.Malformed",
                "The specified Image Format is wrongly formed.",
            ));
        }
    }
    let bad_architecture =
        || ApiError::new(400, "InvalidArchitecture.Malformed", "The specified Architecture is wrongly formed.");
    let architecture = p.choice_or("Architecture", &["x86_64", "i386", "arm64"], bad_architecture)?;
    let architecture = architecture.unwrap_or("x86_64");
    let os_type = p.get("OSType").unwrap_or("linux");
    if !os_type.eq_ignore_ascii_case("linux") {
        return Err(ApiError::new(
            400,
            "InvalidOSType.Malformed",
            "The specified OSType is wrongly formed: only Linux images boot in this region.",
        ));
    }
    let platform = p.string("Platform", 64);
    let bad_platform = || ApiError::new(400, "InvalidPlatform.Malformed", "The specified Platform is wrongly formed.");
    let platform = platform.map_err(|_| bad_platform())?.unwrap_or_else(|| "Others Linux".to_string());
    let spec = ImportImage {
        object,
        name: image_name(p)?,
        description: names::instance_description(p)?.unwrap_or_default(),
        architecture: architecture.to_string(),
        os_type: "linux".to_string(),
        platform,
        client_token: crate::client_token(c.action, p)?,
    };
    let id = c.cp.import_image(c.account_id, &spec)?;
    Ok(json!({"ImageId": id, "RegionId": c.cp.region().id, "TaskId": ""}))
}

pub(super) fn modify_image_share_permission(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let image = p.required("ImageId")?;
    let add = p.distinct_list("AddAccount", 10)?;
    let remove = p.distinct_list("RemoveAccount", 10)?;
    c.cp.share_image(c.account_id, image, &add, &remove)?;
    Ok(json!({}))
}

pub(super) fn describe_image_share_permission(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let image = p.required("ImageId")?;
    let (offset, size, number) = page(p, 10, 100)?;
    let shares = c.cp.image_shares(c.account_id, image)?;
    let accounts: Vec<Value> = shares
        .iter()
        .skip(offset)
        .take(size)
        .map(|s| json!({"AliyunId": s.account_id, "SharedTime": seconds(&s.shared_at)}))
        .collect();
    Ok(json!({
        "ImageId": image,
        "RegionId": c.cp.region().id,
        "TotalCount": shares.len(),
        "PageNumber": number,
        "PageSize": size,
        "ShareGroups": {"ShareGroup": []},
        "Accounts": {"Account": accounts},
    }))
}
