//! Snapshots of disks.

use crate::storage::DiskCategory;
use crate::storage::DiskKind;
use crate::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SnapshotStatus {
    /// Being taken on the disk's host.
    Progressing,
    Accomplished,
    Failed,
    /// Deleted: hidden; its host removes its file.
    Deleted,
}

impl SnapshotStatus {
    pub const ALL: [SnapshotStatus; 4] =
        [SnapshotStatus::Progressing, SnapshotStatus::Accomplished, SnapshotStatus::Failed, SnapshotStatus::Deleted];

    /// As ECS writes it (lower case).
    pub fn as_str(&self) -> &'static str {
        match self {
            SnapshotStatus::Progressing => "progressing",
            SnapshotStatus::Accomplished => "accomplished",
            SnapshotStatus::Failed => "failed",
            SnapshotStatus::Deleted => "deleted",
        }
    }

    pub fn parse(s: &str) -> Option<SnapshotStatus> {
        SnapshotStatus::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// A copy of a snapshot the region holds (uploaded by the host that took it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobCopy {
    pub sha256: String,
    pub size_bytes: u64,
}

/// A crash-consistent copy of a disk as it was, kept on the host that holds the disk's data,
/// and uploaded to the region when a disk on another host is made from it.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub id: String,
    pub account_id: String,
    pub region_id: String,
    pub name: String,
    pub description: String,
    pub disk_id: String,
    pub disk_kind: DiskKind,
    pub disk_category: DiskCategory,
    /// The disk's size when the snapshot was taken, GiB.
    pub source_disk_gib: u64,
    pub status: SnapshotStatus,
    /// The host that took it and keeps its file.
    pub host_id: String,
    /// The space it takes, as its host reported (0 until accomplished).
    pub size_bytes: u64,
    /// The region's copy, once uploaded.
    pub blob: Option<BlobCopy>,
    /// Why it failed.
    pub failure: Option<String>,
    pub created_at: Instant,
    pub finished_at: Option<Instant>,
    pub updated_at: Instant,
    /// Bumped by one on every persisted change (the sequence of its usage events).
    pub revision: u64,
}

impl Snapshot {
    pub fn revised(&self, now: Instant) -> Snapshot {
        Snapshot { revision: self.revision + 1, updated_at: now, ..self.clone() }
    }

    pub fn live(&self) -> bool {
        self.status != SnapshotStatus::Deleted
    }

    /// Whole GiB it is billed for: its size on the host, rounded up (nothing while it is taken).
    pub fn billed_gib(&self) -> u64 {
        self.size_bytes.div_ceil(1 << 30)
    }
}
