//! Images: the root filesystems instances boot from, as the region catalogs them.

use crate::Instant;

/// Id of the image every host builds from its own static busybox.
pub const BUILTIN_IMAGE_ID: &str = "feiyun_busybox_x64";

/// Where hosts get an image from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageSource {
    /// Built on each host from the host's own components.
    Builtin,
    /// An archive held by the region; hosts fetch it and check its checksum.
    Region,
}

impl ImageSource {
    pub fn as_str(&self) -> &'static str {
        match self {
            ImageSource::Builtin => "Builtin",
            ImageSource::Region => "Region",
        }
    }
    pub fn parse(s: &str) -> Option<ImageSource> {
        match s {
            "Builtin" => Some(ImageSource::Builtin),
            "Region" => Some(ImageSource::Region),
            _ => None,
        }
    }
}

/// An image in the region's catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    pub id: String,
    pub name: String,
    pub description: String,
    /// The owning account; `None` for system images every account sees.
    pub owner_account_id: Option<String>,
    pub os_name: String,
    pub os_type: String,
    pub architecture: String,
    /// Size of the root filesystem, in bytes (the system disk is billed on it, in whole GiB).
    pub size_bytes: u64,
    pub source: ImageSource,
    /// Hex SHA-256 of the archive of a region image.
    pub sha256: Option<String>,
    pub created_at: Instant,
}

impl Image {
    /// The built-in busybox image (each host builds its own copy).
    pub fn builtin(created_at: Instant) -> Image {
        Image {
            id: BUILTIN_IMAGE_ID.to_string(),
            name: "BusyBox minimal Linux userland (x86_64)".to_string(),
            description: "Built on each host from the host's static busybox".to_string(),
            owner_account_id: None,
            os_name: "Feiyun BusyBox Linux".to_string(),
            os_type: "linux".to_string(),
            architecture: "x86_64".to_string(),
            // busybox and a few files: well under the 1 GiB the system disk is billed at.
            size_bytes: 2 << 20,
            source: ImageSource::Builtin,
            sha256: None,
            created_at,
        }
    }

    /// The system disk an instance of this image gets, in whole GiB (at least 1).
    pub fn disk_gib(&self) -> u64 {
        self.size_bytes.div_ceil(1 << 30).max(1)
    }
}
