//! Snapshots: CreateSnapshot, DescribeSnapshots, DeleteSnapshot.

use feiyun_domain::ops::SnapshotFilter;
use feiyun_domain::storage::{valid_resource_name, DiskKind, Snapshot, SnapshotStatus};
use feiyun_domain::DomainError;
use serde_json::{json, Value};

use super::{names, next_token, paging, seconds, Call};
use crate::error::ApiError;

fn snapshot_json(c: &Call<'_>, s: &Snapshot) -> Value {
    let done = s.status == SnapshotStatus::Accomplished;
    json!({
        "Status": s.status.as_str(),
        "InstantAccess": false,
        "Progress": if done { "100%" } else { "0%" },
        "Usage": c.cp.snapshot_usage_of(&s.id),
        "Description": s.description,
        "Category": "standard",
        "KMSKeyId": "",
        "ProductCode": "",
        "Encrypted": false,
        "SnapshotName": s.name,
        "SourceDiskId": s.disk_id,
        "SourceStorageType": "disk",
        "SnapshotId": s.id,
        "SnapshotSN": "",
        "SourceDiskSize": s.source_disk_gib.to_string(),
        "CreationTime": seconds(&s.created_at),
        "LastModifiedTime": seconds(&s.updated_at),
        "SnapshotType": "user",
        "SourceDiskType": match s.disk_kind {
            DiskKind::System => "system",
            DiskKind::Data => "data",
        },
        "Tags": {"Tag": []},
        "RegionId": s.region_id,
        "Available": done,
        "RemainTime": 0,
        "RetentionDays": 0,
        "ResourceGroupId": "",
    })
}

pub(super) fn create_snapshot(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let disk = p.required("DiskId")?;
    let bad_name =
        || ApiError::new(400, "InvalidSnapshotName.Malformed", "The specified SnapshotName is wrongly formed.");
    let name = p.string("SnapshotName", 128).map_err(|_| bad_name())?.unwrap_or_default();
    if !name.is_empty() && (!valid_resource_name(&name) || name.starts_with("auto")) {
        return Err(bad_name());
    }
    let description = names::instance_description(p)?.unwrap_or_default();
    let token = crate::client_token(c.action, p)?;
    let s = c.cp.create_snapshot(c.account_id, disk, &name, &description, token.as_ref())?;
    Ok(json!({"SnapshotId": s.id}))
}

pub(super) fn describe_snapshots(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    let ids = p.json_list("SnapshotIds", 100).map_err(|_| {
        ApiError::new(
            403,
            "InvalidSnapshotIds.Malformed",
            "The amount of specified specified snapshot Ids exceeds the limit.",
        )
    })?;
    let status = match p.choice_or("Status", &["progressing", "accomplished", "failed", "all"], || {
        ApiError::new(404, "InvalidStatus.NotFound", "The specified Status is not found")
    })? {
        Some("all") | None => None,
        Some(s) => SnapshotStatus::parse(s),
    };
    let disk_kind = match p.get("SourceDiskType") {
        None => None,
        Some(t) if t.eq_ignore_ascii_case("all") => None,
        Some(t) if t.eq_ignore_ascii_case("system") => Some(DiskKind::System),
        Some(t) if t.eq_ignore_ascii_case("data") => Some(DiskKind::Data),
        Some(_) => return Err(ApiError::new(404, "InvalidSourceDiskType", "The specifed SourceDiskType is not valid")),
    };
    let filter = SnapshotFilter {
        ids,
        disk_id: p.get("DiskId").map(str::to_string),
        instance_id: p.get("InstanceId").map(str::to_string),
        name: p.get("SnapshotName").map(str::to_string),
        status,
        disk_kind,
    };
    let (offset, size, number, token_mode) = paging(p, 100)?;
    if p.bool("DryRun")?.unwrap_or(false) {
        return Err(DomainError::DryRunOk.into());
    }
    let all = c.cp.describe_snapshots(c.account_id, &filter);
    let items: Vec<Value> = all.iter().skip(offset).take(size).map(|s| snapshot_json(c, s)).collect();
    let next = next_token(token_mode, offset, size, all.len());
    Ok(json!({
        "TotalCount": all.len(),
        "PageSize": size,
        "NextToken": next,
        "PageNumber": number,
        "Snapshots": {"Snapshot": items},
    }))
}

pub(super) fn delete_snapshot(c: &Call<'_>) -> Result<Value, ApiError> {
    let p = c.params;
    c.cp.delete_snapshot(c.account_id, p.required("SnapshotId")?, p.bool("Force")?.unwrap_or(false))?;
    Ok(json!({}))
}
