//! Images: DescribeImages.

use serde_json::{json, Value};

use super::{page, Call};
use crate::error::ApiError;

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
            .map(|v| v.image)
            .filter(|i| id.map(|x| x.split(',').any(|x| x.trim() == i.id)).unwrap_or(true))
            .filter(|i| name.map(|n| i.name.contains(n)).unwrap_or(true))
            .filter(|i| os.map(|o| o.eq_ignore_ascii_case(&i.os_type)).unwrap_or(true))
            .filter(|i| arch.map(|a| a == i.architecture).unwrap_or(true))
            .filter(|i| match owner {
                Some("system") => i.owner_account_id.is_none(),
                Some("self") => i.owner_account_id.as_deref() == Some(c.account_id),
                Some(_) => false,
                None => true,
            })
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
                    "Size": i.disk_gib(),
                    "Status": "Available",
                    "ImageOwnerAlias": if i.owner_account_id.is_some() { "self" } else { "system" },
                    "IsSupportCloudinit": false,
                    "IsSupportIoOptimized": true,
                    "IsSelfShared": "",
                    "IsCopied": false,
                    "IsSubscribed": false,
                    "Usage": "instance",
                    "Progress": "100%",
                    "BootMode": "BIOS",
                    "CreationTime": i.created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
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
