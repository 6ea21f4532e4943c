//! ECS storage actions: disks, snapshots, images accounts make, share and import, key pairs.

use super::ecs::{CLIENT_TOKEN, DRY_RUN, INSTANCE_ID, PAGE_NUMBER, ZONE_ID};
use super::{int, one_of, opt, req, str_max, Action, Param, Region, Type, BOOL, STR};

const CATEGORIES: &[&str] = &["cloud", "cloud_efficiency", "cloud_ssd", "cloud_essd"];
const DISK_ID: Param = req("DiskId", STR, "The disk.");
const DISK_NAME: Param =
    opt("DiskName", str_max(128), "2-128 characters starting with a letter: letters, digits, ':', '_', '.', '-'.");
const DESCRIPTION: Param = opt("Description", str_max(256), "2-256 characters, not starting with http:// or https://.");
const MAX_RESULTS: Param = opt("MaxResults", STR, "Entries per token page, 10 to 500 (smaller means 10, larger 500).");
const NEXT_TOKEN: Param = opt("NextToken", STR, "Where the previous token page ended.");
const KEY_PAIR_NAME: Param =
    req("KeyPairName", str_max(128), "2-128 characters starting with a letter: letters, digits, ':', '_', '-', '.'.");

pub(super) const CREATE_DISK: Action = Action::change(
    "CreateDisk",
    "Create a data disk in a zone, empty or from a snapshot; its data is made where it is first attached.",
    Region::Required,
    &[
        ZONE_ID.required(),
        opt("DiskCategory", one_of(CATEGORIES), "cloud (default), cloud_efficiency, cloud_ssd or cloud_essd."),
        opt("Size", STR, "GiB: cloud 5-2000, the others 20-32768 (default: the snapshot's size)."),
        opt("SnapshotId", STR, "A snapshot of the account to make the disk from."),
        DISK_NAME,
        DESCRIPTION,
        CLIENT_TOKEN,
    ],
);

pub(super) const DESCRIBE_DISKS: Action = Action::query(
    "DescribeDisks",
    "Disks of the account, system and data, filtered, by page or by token.",
    Region::Required,
    &[
        opt("DiskIds", Type::JsonList { max_items: 100 }, "Only these disks, e.g. [\"d-1\"]."),
        opt("InstanceId", STR, "Only disks attached to this instance."),
        ZONE_ID,
        opt("DiskType", one_of(&["all", "system", "data"]), "Only system or data disks (default all)."),
        opt(
            "Category",
            one_of(&["all", "cloud", "cloud_efficiency", "cloud_ssd", "cloud_essd"]),
            "Only disks of this category.",
        ),
        opt(
            "Status",
            one_of(&["In_use", "Available", "Attaching", "Detaching", "Creating", "ReIniting", "All"]),
            "Only disks in this status.",
        ),
        opt("DiskName", STR, "Only disks with this name (* is a wildcard)."),
        opt("SnapshotId", STR, "Only disks made from this snapshot."),
        opt("Portable", BOOL, "Only data disks (true) or only system disks (false)."),
        opt("DeleteWithInstance", BOOL, "Only disks released (or not) with their instance."),
        PAGE_NUMBER,
        opt("PageSize", int(1, 100), "Entries per page (default 10)."),
        MAX_RESULTS,
        NEXT_TOKEN,
        DRY_RUN,
    ],
);

pub(super) const ATTACH_DISK: Action = Action::change(
    "AttachDisk",
    "Attach a data disk to a running or stopped instance of its zone.",
    Region::Optional,
    &[
        INSTANCE_ID,
        DISK_ID,
        opt("DeleteWithInstance", BOOL, "Release the disk with the instance (default false)."),
        opt("Device", STR, "The device name, /dev/vdb to /dev/vdz, or its older name /dev/xvdb to /dev/xvdz (default: the next free one)."),
    ],
);

pub(super) const DETACH_DISK: Action = Action::change(
    "DetachDisk",
    "Detach a data disk from its instance; its data stays.",
    Region::Optional,
    &[
        INSTANCE_ID,
        DISK_ID,
        opt("DeleteWithInstance", BOOL, "Whether the disk would go with the instance (default false)."),
    ],
);

pub(super) const DELETE_DISK: Action =
    Action::change("DeleteDisk", "Release a detached data disk.", Region::Optional, &[DISK_ID]);

pub(super) const RESIZE_DISK: Action = Action::change(
    "ResizeDisk",
    "Grow a disk (never shrink it).",
    Region::Optional,
    &[
        DISK_ID,
        req("NewSize", int(1, 32_768), "The new size, GiB, larger than the disk's."),
        opt(
            "Type",
            one_of(&["offline", "online"]),
            "offline (default): effective after a restart; online: on the running instance.",
        ),
        CLIENT_TOKEN,
    ],
);

pub(super) const RESET_DISK: Action = Action::change(
    "ResetDisk",
    "Put a disk back as one of its snapshots was (detached, or its instance stopped).",
    Region::Optional,
    &[DISK_ID, req("SnapshotId", STR, "A finished snapshot of this disk."), DRY_RUN],
);

pub(super) const MODIFY_DISK_ATTRIBUTE: Action = Action::change(
    "ModifyDiskAttribute",
    "Change a disk's name, description, and whether it goes with its instance.",
    Region::Optional,
    &[
        opt("DiskId", STR, "The disk."),
        opt("DiskIds.N", STR, "Several disks (only DeleteWithInstance and DeleteAutoSnapshot).").upto(100),
        DISK_NAME,
        DESCRIPTION,
        opt("DeleteWithInstance", BOOL, "Release the disk with its instance."),
        opt("DeleteAutoSnapshot", BOOL, "Release the disk's automatic snapshots with it."),
    ],
);

pub(super) const CREATE_SNAPSHOT: Action = Action::change(
    "CreateSnapshot",
    "Take a crash-consistent snapshot of a data disk.",
    Region::Optional,
    &[
        DISK_ID,
        opt("SnapshotName", str_max(128), "2-128 characters starting with a letter, not starting with auto."),
        DESCRIPTION,
        CLIENT_TOKEN,
    ],
);

pub(super) const DESCRIBE_SNAPSHOTS: Action = Action::query(
    "DescribeSnapshots",
    "Snapshots of the account, filtered, by page or by token.",
    Region::Required,
    &[
        opt("SnapshotIds", Type::JsonList { max_items: 100 }, "Only these snapshots, e.g. [\"s-1\"]."),
        opt("DiskId", STR, "Only snapshots of this disk."),
        opt("InstanceId", STR, "Only snapshots of disks attached to this instance."),
        opt("SnapshotName", STR, "Only snapshots with this name (* is a wildcard)."),
        opt("Status", one_of(&["progressing", "accomplished", "failed", "all"]), "Only snapshots in this status."),
        opt("SourceDiskType", STR, "Only snapshots of System or Data disks (any case)."),
        PAGE_NUMBER,
        opt("PageSize", int(1, 100), "Entries per page (default 10)."),
        MAX_RESULTS,
        NEXT_TOKEN,
        DRY_RUN,
    ],
);

pub(super) const DELETE_SNAPSHOT: Action = Action::change(
    "DeleteSnapshot",
    "Delete a snapshot (not while images or disks still to be made come from it).",
    Region::Optional,
    &[req("SnapshotId", STR, "The snapshot."), opt("Force", BOOL, "Delete it though disks were made from it.")],
);

pub(super) const CREATE_IMAGE: Action = Action::change(
    "CreateImage",
    "Capture an image of an instance's root filesystem or of a snapshot.",
    Region::Required,
    &[
        opt("InstanceId", STR, "The instance (running or stopped) whose root filesystem becomes the image."),
        opt("SnapshotId", STR, "The snapshot whose filesystem becomes the image."),
        opt("ImageName", str_max(128), "2-128 characters starting with a letter (default: the image id)."),
        DESCRIPTION,
        CLIENT_TOKEN,
        DRY_RUN,
    ],
);

pub(super) const DELETE_IMAGE: Action = Action::change(
    "DeleteImage",
    "Delete an image of the account (in use: only with Force, then hidden).",
    Region::Required,
    &[req("ImageId", STR, "The image."), opt("Force", BOOL, "Delete it though instances run from it.")],
);

pub(super) const IMPORT_IMAGE: Action = Action::change(
    "ImportImage",
    "Import an image from a file of the region's import directory (a root-filesystem tarball or a disk image).",
    Region::Required,
    &[
        req("DiskDeviceMapping.N.OSSObject", STR, "The file: a path inside OSSBucket, or inside the import directory.")
            .upto(1),
        opt("DiskDeviceMapping.N.OSSBucket", STR, "A directory of the import directory holding the file.").upto(1),
        opt("DiskDeviceMapping.N.Format", STR, "RAW, QCOW2, VHD or TAR, any case (default: detected).").upto(1),
        opt("ImageName", str_max(128), "2-128 characters starting with a letter (default: the image id)."),
        DESCRIPTION,
        opt("Architecture", one_of(&["x86_64", "i386", "arm64"]), "The image's architecture (default x86_64)."),
        opt("OSType", STR, "linux (the default; only Linux images boot here)."),
        opt("Platform", str_max(64), "The distribution, e.g. Ubuntu (default: Others Linux)."),
        CLIENT_TOKEN,
    ],
);

pub(super) const MODIFY_IMAGE_SHARE_PERMISSION: Action = Action::change(
    "ModifyImageSharePermission",
    "Share an image of the account with other accounts, or stop sharing it.",
    Region::Required,
    &[
        req("ImageId", STR, "The image."),
        opt("AddAccount.N", STR, "Accounts to share it with.").upto(10),
        opt("RemoveAccount.N", STR, "Accounts to stop sharing it with.").upto(10),
    ],
);

pub(super) const DESCRIBE_IMAGE_SHARE_PERMISSION: Action = Action::query(
    "DescribeImageSharePermission",
    "The accounts an image of the account is shared with.",
    Region::Required,
    &[req("ImageId", STR, "The image."), PAGE_NUMBER, opt("PageSize", int(1, 100), "Entries per page (default 10).")],
);

pub(super) const CREATE_KEY_PAIR: Action = Action::change(
    "CreateKeyPair",
    "Create an SSH key pair; its private key is returned once (PEM, PKCS#8).",
    Region::Required,
    &[KEY_PAIR_NAME],
);

pub(super) const IMPORT_KEY_PAIR: Action = Action::change(
    "ImportKeyPair",
    "Import the OpenSSH public key of a key pair made elsewhere.",
    Region::Required,
    &[KEY_PAIR_NAME, req("PublicKeyBody", str_max(16_384), "One OpenSSH public key: RSA, DSA, ECDSA or Ed25519.")],
);

pub(super) const DESCRIBE_KEY_PAIRS: Action = Action::query(
    "DescribeKeyPairs",
    "Key pairs of the account, by page.",
    Region::Required,
    &[
        opt("KeyPairName", STR, "Only key pairs with this name (* is a wildcard)."),
        opt("KeyPairFingerPrint", STR, "Only the key pair with this fingerprint."),
        opt("IncludePublicKey", BOOL, "Include each public key."),
        PAGE_NUMBER,
        opt("PageSize", int(1, 50), "Entries per page (default 10)."),
    ],
);

pub(super) const DELETE_KEY_PAIRS: Action = Action::change(
    "DeleteKeyPairs",
    "Delete key pairs of the account.",
    Region::Required,
    &[req("KeyPairNames", Type::JsonList { max_items: 100 }, "The key pairs, e.g. [\"ops\"].")],
);

pub(super) const ATTACH_KEY_PAIR: Action = Action::change(
    "AttachKeyPair",
    "Put a key pair's public key on instances (replacing the one they had).",
    Region::Required,
    &[KEY_PAIR_NAME, req("InstanceIds", Type::JsonList { max_items: 50 }, "The instances, e.g. [\"i-1\"].")],
);

pub(super) const DETACH_KEY_PAIR: Action = Action::change(
    "DetachKeyPair",
    "Take a key pair's public key off instances.",
    Region::Required,
    &[KEY_PAIR_NAME, req("InstanceIds", Type::JsonList { max_items: 50 }, "The instances, e.g. [\"i-1\"].")],
);
