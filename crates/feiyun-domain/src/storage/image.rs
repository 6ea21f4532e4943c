//! What the region knows of an account's own image beyond its catalog entry: how it is being
//! made, and which accounts it is shared with.

use crate::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageStatus {
    /// Being captured or imported.
    Creating,
    Available,
    /// Capture or import failed.
    CreateFailed,
    /// Deleted by its owner while instances still used it (`DeleteImage` with `Force`): hidden
    /// from everyone, kept only for the hosts of those instances.
    UnAvailable,
}

impl ImageStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            ImageStatus::Creating => "Creating",
            ImageStatus::Available => "Available",
            ImageStatus::CreateFailed => "CreateFailed",
            ImageStatus::UnAvailable => "UnAvailable",
        }
    }
    pub fn parse(s: &str) -> Option<ImageStatus> {
        [ImageStatus::Creating, ImageStatus::Available, ImageStatus::CreateFailed, ImageStatus::UnAvailable]
            .into_iter()
            .find(|x| x.as_str() == s)
    }
}

/// Where an account's image came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageOrigin {
    /// CreateImage from an instance's root filesystem.
    Instance(String),
    /// CreateImage from a snapshot.
    Snapshot(String),
    /// ImportImage of a file (its name in the import directory).
    Import(String),
}

impl ImageOrigin {
    pub fn kind(&self) -> &'static str {
        match self {
            ImageOrigin::Instance(_) => "Instance",
            ImageOrigin::Snapshot(_) => "Snapshot",
            ImageOrigin::Import(_) => "Import",
        }
    }
    pub fn id(&self) -> &str {
        match self {
            ImageOrigin::Instance(s) | ImageOrigin::Snapshot(s) | ImageOrigin::Import(s) => s,
        }
    }
    pub fn parse(kind: &str, id: String) -> Option<ImageOrigin> {
        match kind {
            "Instance" => Some(ImageOrigin::Instance(id)),
            "Snapshot" => Some(ImageOrigin::Snapshot(id)),
            "Import" => Some(ImageOrigin::Import(id)),
            _ => None,
        }
    }
}

/// An account the image is shared with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageShare {
    pub account_id: String,
    pub shared_at: Instant,
}

/// The life of an image an account made or imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageLife {
    pub image_id: String,
    pub status: ImageStatus,
    /// Percent done.
    pub progress: u8,
    pub origin: ImageOrigin,
    /// Why it failed.
    pub failure: Option<String>,
    /// The task capturing it, while it is made by a host.
    pub task_id: Option<String>,
    pub shared_with: Vec<ImageShare>,
    pub updated_at: Instant,
}
