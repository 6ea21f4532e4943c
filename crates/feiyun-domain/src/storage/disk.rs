//! Disks: categories and their sizes, device names, and the status lifecycle as ECS reports it.

use crate::Instant;

/// The device a system disk shows as (DescribeDisks `Device`).
pub const SYSTEM_DEVICE: &str = "/dev/xvda";

/// Data disks an instance can have at once (`/dev/vdb` to `/dev/vdq`).
pub const MAX_DATA_DISKS: usize = 16;

/// A cloud disk category, with the sizes ECS allows for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DiskCategory {
    /// Basic disk.
    Cloud,
    /// Ultra disk.
    CloudEfficiency,
    /// Standard SSD.
    CloudSsd,
    /// Enterprise SSD (performance level PL1).
    CloudEssd,
}

impl DiskCategory {
    pub const ALL: [DiskCategory; 4] =
        [DiskCategory::Cloud, DiskCategory::CloudEfficiency, DiskCategory::CloudSsd, DiskCategory::CloudEssd];

    pub fn as_str(&self) -> &'static str {
        match self {
            DiskCategory::Cloud => "cloud",
            DiskCategory::CloudEfficiency => "cloud_efficiency",
            DiskCategory::CloudSsd => "cloud_ssd",
            DiskCategory::CloudEssd => "cloud_essd",
        }
    }

    pub fn parse(s: &str) -> Option<DiskCategory> {
        DiskCategory::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// Sizes of a data disk, GiB (CreateDisk `Size`): basic 5-2000, the others 20-32768.
    pub fn data_sizes(&self) -> (u64, u64) {
        match self {
            DiskCategory::Cloud => (5, 2000),
            _ => (20, 32_768),
        }
    }

    /// Sizes of a system disk, GiB (RunInstances `SystemDisk.Size`): basic 20-500, the others
    /// 20-2048; never below the image.
    pub fn system_sizes(&self) -> (u64, u64) {
        match self {
            DiskCategory::Cloud => (20, 500),
            _ => (20, 2048),
        }
    }
}

/// System or data disk (DescribeDisks `Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DiskKind {
    System,
    Data,
}

impl DiskKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            DiskKind::System => "system",
            DiskKind::Data => "data",
        }
    }
    pub fn parse(s: &str) -> Option<DiskKind> {
        [DiskKind::System, DiskKind::Data].into_iter().find(|k| k.as_str() == s)
    }
}

/// Where a disk is in its life, as DescribeDisks reports it. Transitions that depend on a host
/// (made, attached, detached, reset) complete when the host reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DiskStatus {
    /// Made with an instance, until its host reports it attached.
    Creating,
    /// Not attached.
    Available,
    /// Being attached: until the instance's host reports it attached (after its data moved
    /// there, if it was on another host).
    Attaching,
    /// Attached (ECS writes `In_use`).
    InUse,
    /// Being detached, until the host reports it.
    Detaching,
    /// Being reset to a snapshot (ResetDisk), until the host reports it done.
    ReIniting,
    /// Released: hidden from the API; its host removes its data.
    Deleted,
}

impl DiskStatus {
    pub const ALL: [DiskStatus; 7] = [
        DiskStatus::Creating,
        DiskStatus::Available,
        DiskStatus::Attaching,
        DiskStatus::InUse,
        DiskStatus::Detaching,
        DiskStatus::ReIniting,
        DiskStatus::Deleted,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            DiskStatus::Creating => "Creating",
            DiskStatus::Available => "Available",
            DiskStatus::Attaching => "Attaching",
            DiskStatus::InUse => "In_use",
            DiskStatus::Detaching => "Detaching",
            DiskStatus::ReIniting => "ReIniting",
            DiskStatus::Deleted => "Deleted",
        }
    }

    pub fn parse(s: &str) -> Option<DiskStatus> {
        DiskStatus::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// What a host's report of the disk makes of this status: `attached_to` is the instance the
    /// host has the disk mounted in (if any), `wanted` the instance the disk should be attached
    /// to. Statuses that wait on nothing the host reports stay.
    pub fn observe(self, attached_to: Option<&str>, wanted: Option<&str>) -> DiskStatus {
        match (self, attached_to, wanted) {
            (DiskStatus::Creating | DiskStatus::Attaching, Some(a), Some(w)) if a == w => DiskStatus::InUse,
            (DiskStatus::Detaching, None, None) => DiskStatus::Available,
            (s, _, _) => s,
        }
    }
}

/// Where a disk is attached (or being attached).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub instance_id: String,
    /// `/dev/xvda` for a system disk, `/dev/vdb`... for data disks.
    pub device: String,
}

/// A disk's content held by the region, on its way from one host to another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskBlob {
    pub id: String,
    pub sha256: String,
    pub size_bytes: u64,
}

/// What a host that does not hold a disk's data yet makes it from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiskOrigin {
    /// An empty filesystem.
    Empty,
    /// A snapshot (kept on the host that took it, or uploaded to the region).
    Snapshot(String),
    /// The disk's own data, uploaded by the host it left.
    Blob(DiskBlob),
}

/// A move of a disk's data to another host (AttachDisk to an instance there): the host holding
/// it uploads it as `blob_id`, then the new host makes the disk from that blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    pub to_host: String,
    pub blob_id: String,
    /// The upload task on the old host.
    pub task_id: String,
}

/// A cloud disk.
#[derive(Debug, Clone, PartialEq)]
pub struct Disk {
    pub id: String,
    pub account_id: String,
    pub region_id: String,
    pub zone_id: String,
    pub name: String,
    pub description: String,
    pub category: DiskCategory,
    pub kind: DiskKind,
    pub size_gib: u64,
    /// The snapshot it was made from (DescribeDisks `SourceSnapshotId`).
    pub source_snapshot_id: Option<String>,
    /// The image of a system disk.
    pub image_id: Option<String>,
    pub status: DiskStatus,
    pub attachment: Option<Attachment>,
    pub delete_with_instance: bool,
    pub delete_auto_snapshot: bool,
    /// The host its data lives on: where it was last attached. `None` for a disk never attached
    /// (it is made on the first host it is attached on).
    pub host_id: Option<String>,
    /// What a host new to the disk makes it from.
    pub origin: DiskOrigin,
    /// The host `host_id` has reported the disk made.
    pub made: bool,
    pub transfer: Option<Transfer>,
    pub created_at: Instant,
    pub attached_at: Option<Instant>,
    pub detached_at: Option<Instant>,
    pub updated_at: Instant,
    /// Bumped by one on every persisted change (the sequence of its usage events).
    pub revision: u64,
}

impl Disk {
    /// The next revision of this disk, changed at `now`.
    pub fn revised(&self, now: Instant) -> Disk {
        Disk { revision: self.revision + 1, updated_at: now, ..self.clone() }
    }

    /// A data disk can be detached and attached elsewhere (DescribeDisks `Portable`).
    pub fn portable(&self) -> bool {
        self.kind == DiskKind::Data
    }

    pub fn instance_id(&self) -> Option<&str> {
        self.attachment.as_ref().map(|a| a.instance_id.as_str())
    }

    pub fn live(&self) -> bool {
        self.status != DiskStatus::Deleted
    }
}

/// A data disk device name: `/dev/vd` and one letter from `b` to `z`.
pub fn valid_data_device(d: &str) -> bool {
    d.strip_prefix("/dev/vd").is_some_and(|l| l.len() == 1 && matches!(l.as_bytes()[0], b'b'..=b'z'))
}

/// The first data disk device name not in `taken` (`/dev/vdb`, `/dev/vdc`, ...), within
/// [`MAX_DATA_DISKS`].
pub fn next_device<'a>(taken: impl IntoIterator<Item = &'a str> + Clone) -> Option<String> {
    (b'b'..=b'z')
        .take(MAX_DATA_DISKS)
        .map(|l| format!("/dev/vd{}", l as char))
        .find(|d| !taken.clone().into_iter().any(|t| t == d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_and_sizes() {
        for c in DiskCategory::ALL {
            assert_eq!(DiskCategory::parse(c.as_str()), Some(c));
        }
        assert_eq!(DiskCategory::parse("cloud_auto"), None);
        assert_eq!(DiskCategory::Cloud.data_sizes(), (5, 2000));
        assert_eq!(DiskCategory::CloudEssd.data_sizes(), (20, 32_768));
        assert_eq!(DiskCategory::Cloud.system_sizes(), (20, 500));
        assert_eq!(DiskCategory::CloudSsd.system_sizes(), (20, 2048));
    }

    #[test]
    fn devices() {
        assert!(valid_data_device("/dev/vdb") && valid_data_device("/dev/vdz"));
        for bad in ["/dev/vda", "/dev/xvdb", "/dev/vdbb", "vdb", "/dev/vd", "/dev/vd1"] {
            assert!(!valid_data_device(bad), "{bad}");
        }
        assert_eq!(next_device([]).as_deref(), Some("/dev/vdb"));
        assert_eq!(next_device(["/dev/vdb", "/dev/vdd"]).as_deref(), Some("/dev/vdc"));
        let all: Vec<String> = (b'b'..=b'q').map(|l| format!("/dev/vd{}", l as char)).collect();
        assert_eq!(next_device(all.iter().map(String::as_str)), None, "16 data disks at most");
    }

    /// Every status against every report: only waiting statuses move, and only to what the
    /// host says.
    #[test]
    fn host_reports_complete_only_what_waits_on_them() {
        use DiskStatus as S;
        for s in S::ALL {
            for (attached, wanted) in [
                (None, None),
                (Some("i-1"), Some("i-1")),
                (None, Some("i-1")),
                (Some("i-1"), None),
                (Some("i-2"), Some("i-1")),
            ] {
                let got = s.observe(attached, wanted);
                let want = match (s, attached, wanted) {
                    (S::Creating | S::Attaching, Some("i-1"), Some("i-1")) => S::InUse,
                    (S::Detaching, None, None) => S::Available,
                    _ => s,
                };
                assert_eq!(got, want, "{s:?} {attached:?} {wanted:?}");
            }
        }
    }
}
