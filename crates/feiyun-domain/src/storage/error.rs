//! What can be refused about disks, snapshots, images and key pairs. The wire layer maps each
//! variant to the code Alibaba Cloud documents, once.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    #[error("Disk {0} does not exist")]
    DiskNotFound(String),
    #[error("Snapshot {0} does not exist")]
    SnapshotNotFound(String),
    #[error("Key pair {0} does not exist")]
    KeyPairNotFound(String),
    #[error("Key pair {0} exists already")]
    KeyPairExists(String),
    #[error("The public key is not an OpenSSH public key of a supported type: {0}")]
    PublicKeyMalformed(String),
    /// A disk category this region does not sell (or not for this use).
    #[error("Disk category {0} is not supported")]
    CategoryNotSupported(String),
    /// A size outside the category's range, for a data disk.
    #[error("Data disk size {size} GiB is outside {min}-{max} GiB for {category}")]
    DataDiskSize { category: String, size: u64, min: u64, max: u64 },
    /// A size outside the category's range, for a system disk.
    #[error("System disk size {size} GiB is outside {min}-{max} GiB")]
    SystemDiskSize { size: u64, min: u64, max: u64 },
    #[error("System disk size {size} GiB is smaller than the image's {image} GiB")]
    SystemDiskBelowImage { size: u64, image: u64 },
    #[error("The new size must be larger than the disk's {0} GiB")]
    ShrinkRefused(u64),
    #[error("The new size is beyond {max} GiB, the largest of the disk's category")]
    TooLarge { max: u64 },
    #[error("The disk is smaller than the {0} GiB of its snapshot")]
    SmallerThanSnapshot(u64),
    #[error("The disk is {status}; the operation is not allowed")]
    IncorrectDiskStatus { status: &'static str },
    #[error("The disk is attached to an instance")]
    DiskStillAttached,
    #[error("The disk is attached to an instance already")]
    DiskInUse,
    #[error("The disk is not attached to that instance")]
    NotAttachedThere,
    #[error("A system disk cannot be detached, deleted or attached")]
    SystemDisk,
    #[error("The disk and the instance are in different zones")]
    ZoneMismatch,
    #[error("Device {0} is not a data disk device name (/dev/vdb to /dev/vdz)")]
    DeviceMalformed(String),
    #[error("Device {0} is taken on the instance")]
    DeviceInUse(String),
    #[error("The instance has {0} data disks already")]
    TooManyDisks(usize),
    /// CreateSnapshot while another snapshot of the disk is being taken.
    #[error("A snapshot of the disk is still being taken")]
    CreatingSnapshot,
    /// Deleting or resetting a disk while a snapshot of it is being taken.
    #[error("A snapshot of the disk is still being taken")]
    DiskCreatingSnapshot,
    #[error("The disk has never been attached to an instance: it holds no data yet")]
    NeverAttached,
    #[error("Snapshots of system disks are not taken here (the system disk is the instance's root filesystem)")]
    SystemDiskSnapshot,
    #[error("Snapshot {0} is not finished")]
    SnapshotNotReady(String),
    #[error("Snapshot {0} was not taken of that disk")]
    SnapshotOfAnotherDisk(String),
    #[error("Snapshot {0} is kept on another host than the disk's data")]
    SnapshotElsewhere(String),
    #[error("Snapshot {0} was used to create images")]
    SnapshotCreatedImage(String),
    #[error("Snapshot {0} was used to create disks not made yet")]
    SnapshotCreatedDisk(String),
    #[error("Image {0} is being created")]
    ImageNotReady(String),
    #[error("Image {0} is being imported")]
    ImageImporting(String),
    #[error("Image {0} is used by instances")]
    ImageInUse(String),
    #[error("Image {0} is shared with other accounts")]
    ImageShared(String),
    #[error("An image named {0} exists already")]
    ImageNameTaken(String),
    #[error("Account {0} does not exist")]
    AccountNotFound(String),
    #[error("An image cannot be shared with its own account")]
    ShareWithSelf,
    #[error("The file to import does not exist: {0}")]
    ImportObjectNotFound(String),
    #[error("The file to import is not a name inside the import directory: {0}")]
    ImportObjectMalformed(String),
    #[error("This region imports no images (no import directory is configured)")]
    ImportNotConfigured,
    #[error("The data of the disk cannot reach its instance's host now: {0}")]
    HostUnavailable(String),
}
