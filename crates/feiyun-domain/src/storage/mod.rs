//! Block storage and what is made from it: disks (system and data), their snapshots, the state
//! of the images accounts make or import, and SSH key pairs. Plain data and the rules about it
//! (categories and their sizes, device names, the disk status lifecycle); the control plane
//! decides where data lives and persists.

mod disk;
mod error;
mod image;
mod keypair;
mod snapshot;

pub use disk::{
    next_device, valid_data_device, Attachment, Disk, DiskBlob, DiskCategory, DiskKind, DiskOrigin, DiskStatus,
    Transfer, MAX_DATA_DISKS, SYSTEM_DEVICE,
};
pub use error::StorageError;
pub use image::{ImageLife, ImageOrigin, ImageShare, ImageStatus};
pub use keypair::{valid_key_pair_name, KeyPair};
pub use snapshot::{BlobCopy, Snapshot, SnapshotStatus};

/// Names of disks, snapshots and images: 2-128 characters starting with a letter (any script),
/// then letters, digits, `:`, `_`, `.` and `-`; not starting with `http://` or `https://`.
pub fn valid_resource_name(n: &str) -> bool {
    let len = n.chars().count();
    (2..=128).contains(&len)
        && n.chars().next().is_some_and(char::is_alphabetic)
        && n.chars().all(|c| c.is_alphanumeric() || matches!(c, ':' | '_' | '.' | '-'))
        && !n.starts_with("http://")
        && !n.starts_with("https://")
}

/// Descriptions: 2-256 characters, not starting with `http://` or `https://`.
pub fn valid_description(d: &str) -> bool {
    (2..=256).contains(&d.chars().count()) && !d.starts_with("http://") && !d.starts_with("https://")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_descriptions() {
        for ok in ["data", "db_1:a.b-c", "数据盘"] {
            assert!(valid_resource_name(ok), "{ok}");
        }
        for bad in ["d", "1disk", "-disk", "disk one", "disk/1", &"a".repeat(129)] {
            assert!(!valid_resource_name(bad), "{bad}");
        }
        assert!(valid_description("ok"));
        assert!(!valid_description("x"));
        assert!(!valid_description("https://x"));
    }
}
