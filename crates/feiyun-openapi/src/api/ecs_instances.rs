//! ECS instance actions: creating, listing and describing instances.

use super::ecs::{
    CLIENT_TOKEN, DRY_RUN, IMAGE_ID, INSTANCE_ID, INSTANCE_TYPE, PAGE_NUMBER, TAG_KEY, TAG_VALUE, ZONE_ID,
};
use super::{int, one_of, opt, str_max, Action, Param, Region, Type, BOOL, STR};

// What RunInstances and CreateInstance share.
const INSTANCE_NAME: Param = opt(
    "InstanceName",
    str_max(128),
    "2-128 characters: letters, digits, ':', '_', '.', '-', starting with a letter (default: the instance id).",
);
const HOST_NAME: Param =
    opt("HostName", str_max(64), "2-64 letters, digits, '.' and '-'; not starting or ending with '.' or '-'.");
const UNIQUE_SUFFIX: Param =
    opt("UniqueSuffix", BOOL, "Append 001, 002, ... to InstanceName and HostName when creating several.");
const DESCRIPTION: Param = opt("Description", str_max(256), "2-256 characters, not starting with http:// or https://.");
const USER_DATA: Param =
    opt("UserData", Type::Base64 { max_bytes: 32 * 1024 }, "Data the instance reads at boot, base64, at most 32 KiB.");
const DEPLOYMENT_SET_ID: Param =
    opt("DeploymentSetId", STR, "Deployment set to place the instance in (each instance on its own host).");
const CHARGE_TYPE: Param =
    opt("InstanceChargeType", one_of(&["PostPaid", "PrePaid"]), "PostPaid (pay-as-you-go, default) or PrePaid.");
const PERIOD: Param = opt(
    "Period",
    int(1, 60),
    "Subscription term, required with PrePaid: 1-9, 12, 24, 36, 48 or 60 months, or 1-5 years.",
);
const PERIOD_UNIT: Param = opt("PeriodUnit", one_of(&["Month", "Year", "Week"]), "Unit of Period (default Month).");
const AUTO_RENEW: Param = opt("AutoRenew", BOOL, "Renew the subscription automatically when it ends.");
const AUTO_RENEW_PERIOD: Param =
    opt("AutoRenewPeriod", int(1, 60), "Months each automatic renewal adds: 1, 2, 3, 6, 12, 24, 36, 48 or 60.");
const SPOT_STRATEGY: Param = opt(
    "SpotStrategy",
    one_of(&["NoSpot", "SpotWithPriceLimit", "SpotAsPriceGo"]),
    "Spot bidding of a pay-as-you-go instance (default NoSpot).",
);
const SPOT_PRICE_LIMIT: Param =
    opt("SpotPriceLimit", Type::Decimal, "Highest hourly price, required with SpotWithPriceLimit, e.g. 0.25.");
const SPOT_DURATION: Param = opt("SpotDuration", int(0, 1), "Hours the spot instance is protected from reclaim.");
const SPOT_INTERRUPTION: Param = opt(
    "SpotInterruptionBehavior",
    one_of(&["Terminate", "Stop"]),
    "What reclaiming a spot instance does (default Terminate).",
);

// Where new instances go on the network.
const VSWITCH_ID: Param = opt(
    "VSwitchId",
    STR,
    "The vSwitch, and so the VPC and zone (default: the account's default vSwitch of the zone, made if needed).",
);
const SECURITY_GROUP_ID: Param =
    opt("SecurityGroupId", STR, "The security group, of the vSwitch's VPC (default: the default VPC's default group).");
const SECURITY_GROUP_IDS: Param =
    opt("SecurityGroupIds.N", STR, "Several security groups, at most 5 (not with SecurityGroupId).").upto(16);
const PRIVATE_IP: Param = opt(
    "PrivateIpAddress",
    STR,
    "The private address: free and not reserved in the vSwitch (needs VSwitchId; one instance only).",
);
const BANDWIDTH_OUT: Param = opt(
    "InternetMaxBandwidthOut",
    int(0, 100),
    "Above 0: a public address, and outbound public traffic capped at this many Mbit/s (default 0).",
);
// The storage of new instances.
const DISK_CATEGORIES: &[&str] = &["cloud", "cloud_efficiency", "cloud_ssd", "cloud_essd"];
const SYSTEM_DISK_CATEGORY: Param =
    opt("SystemDisk.Category", one_of(DISK_CATEGORIES), "The system disk's category (default cloud_essd).");
const SYSTEM_DISK_SIZE: Param = opt(
    "SystemDisk.Size",
    STR,
    "The system disk's size, GiB: 20-2048 (cloud 20-500), at least the image's (default max(40, the image's)).",
);
const SYSTEM_DISK_NAME: Param = opt("SystemDisk.DiskName", str_max(128), "The system disk's name.");
const SYSTEM_DISK_DESCRIPTION: Param = opt("SystemDisk.Description", str_max(256), "The system disk's description.");
const DATA_DISK_SIZE: Param = opt(
    "DataDisk.N.Size",
    STR,
    "Size of data disk N, GiB: cloud 5-2000, the others 20-32768 (default: its snapshot's).",
)
.upto(16);
const DATA_DISK_CATEGORY: Param =
    opt("DataDisk.N.Category", one_of(DISK_CATEGORIES), "Category of data disk N (default cloud_efficiency).").upto(16);
const DATA_DISK_SNAPSHOT: Param = opt("DataDisk.N.SnapshotId", STR, "A snapshot to make data disk N from.").upto(16);
const DATA_DISK_DELETE: Param =
    opt("DataDisk.N.DeleteWithInstance", BOOL, "Release data disk N with the instance (default true).").upto(16);
const DATA_DISK_NAME: Param = opt("DataDisk.N.DiskName", str_max(128), "Data disk N's name.").upto(16);
const DATA_DISK_DESCRIPTION: Param = opt("DataDisk.N.Description", str_max(256), "Data disk N's description.").upto(16);
const DATA_DISK_DEVICE: Param = opt(
    "DataDisk.N.Device",
    STR,
    "Data disk N's device, /dev/vdb to /dev/vdz or /dev/xvdb to /dev/xvdz (default: the next free one).",
)
.upto(16);
const KEY_PAIR: Param = opt("KeyPairName", STR, "A key pair whose public key goes into root's authorized keys.");

const INTERNET_CHARGE: Param = opt(
    "InternetChargeType",
    one_of(&["PayByTraffic", "PayByBandwidth"]),
    "How public traffic is paid (default PayByTraffic; both are metered by traffic).",
);

pub(super) const RUN_INSTANCES: Action = Action::change(
    "RunInstances",
    "Create and start one or more instances.",
    Region::Required,
    &[
        INSTANCE_TYPE.required(),
        IMAGE_ID.required(),
        opt("Amount", int(1, 100), "How many instances to create (default 1)."),
        opt("MinAmount", int(1, 100), "Create as many as fit when at least this many do (default: Amount)."),
        ZONE_ID,
        INSTANCE_NAME,
        HOST_NAME,
        UNIQUE_SUFFIX,
        DESCRIPTION,
        USER_DATA,
        TAG_KEY,
        TAG_VALUE,
        DEPLOYMENT_SET_ID,
        CHARGE_TYPE,
        PERIOD,
        PERIOD_UNIT,
        AUTO_RENEW,
        AUTO_RENEW_PERIOD,
        SPOT_STRATEGY,
        SPOT_PRICE_LIMIT,
        SPOT_DURATION,
        SPOT_INTERRUPTION,
        VSWITCH_ID,
        SECURITY_GROUP_ID,
        SECURITY_GROUP_IDS,
        PRIVATE_IP,
        BANDWIDTH_OUT,
        INTERNET_CHARGE,
        SYSTEM_DISK_CATEGORY,
        SYSTEM_DISK_SIZE,
        SYSTEM_DISK_NAME,
        SYSTEM_DISK_DESCRIPTION,
        DATA_DISK_SIZE,
        DATA_DISK_CATEGORY,
        DATA_DISK_SNAPSHOT,
        DATA_DISK_DELETE,
        DATA_DISK_NAME,
        DATA_DISK_DESCRIPTION,
        DATA_DISK_DEVICE,
        KEY_PAIR,
        CLIENT_TOKEN,
        DRY_RUN,
    ],
);

pub(super) const CREATE_INSTANCE: Action = Action::change(
    "CreateInstance",
    "Create one instance, left stopped.",
    Region::Required,
    &[
        INSTANCE_TYPE.required(),
        IMAGE_ID.required(),
        ZONE_ID,
        INSTANCE_NAME,
        HOST_NAME,
        UNIQUE_SUFFIX,
        DESCRIPTION,
        USER_DATA,
        TAG_KEY,
        TAG_VALUE,
        DEPLOYMENT_SET_ID,
        CHARGE_TYPE,
        PERIOD,
        PERIOD_UNIT,
        AUTO_RENEW,
        AUTO_RENEW_PERIOD,
        SPOT_STRATEGY,
        SPOT_PRICE_LIMIT,
        SPOT_DURATION,
        SPOT_INTERRUPTION,
        VSWITCH_ID,
        SECURITY_GROUP_ID,
        SECURITY_GROUP_IDS,
        PRIVATE_IP,
        BANDWIDTH_OUT,
        INTERNET_CHARGE,
        SYSTEM_DISK_CATEGORY,
        SYSTEM_DISK_SIZE,
        SYSTEM_DISK_NAME,
        SYSTEM_DISK_DESCRIPTION,
        DATA_DISK_SIZE,
        DATA_DISK_CATEGORY,
        DATA_DISK_SNAPSHOT,
        DATA_DISK_DELETE,
        DATA_DISK_NAME,
        DATA_DISK_DESCRIPTION,
        DATA_DISK_DEVICE,
        KEY_PAIR,
        CLIENT_TOKEN,
        DRY_RUN,
    ],
);

pub(super) const DESCRIBE_INSTANCES: Action = Action::query(
    "DescribeInstances",
    "List instances, filtered, by page or by token.",
    Region::Required,
    &[
        opt("InstanceIds", Type::JsonList { max_items: 100 }, "Only these instances, e.g. [\"i-1\",\"i-2\"]."),
        opt(
            "Status",
            one_of(&["Pending", "Starting", "Running", "Stopping", "Stopped"]),
            "Only instances in this status.",
        ),
        ZONE_ID,
        opt("InstanceType", STR, "Only instances of this type."),
        opt("InstanceTypeFamily", STR, "Only instances of this family."),
        opt("InstanceName", STR, "Only instances with this name."),
        opt("ImageId", STR, "Only instances of this image."),
        opt("VpcId", STR, "Only instances in this VPC."),
        opt("VSwitchId", STR, "Only instances in this vSwitch."),
        opt("SecurityGroupId", STR, "Only instances in this security group."),
        TAG_KEY,
        TAG_VALUE,
        PAGE_NUMBER,
        opt("PageSize", int(1, 100), "Entries per page (default 10)."),
        opt("MaxResults", STR, "Entries per token page, 10 to 100 (smaller means 10, larger 100)."),
        opt("NextToken", STR, "Where the previous token page ended."),
        DRY_RUN,
    ],
);

pub(super) const DESCRIBE_INSTANCE_STATUS: Action = Action::query(
    "DescribeInstanceStatus",
    "The status of instances, by page.",
    Region::Required,
    &[
        opt("InstanceId.N", STR, "Only these instances.").upto(100),
        ZONE_ID,
        PAGE_NUMBER,
        opt("PageSize", int(1, 50), "Entries per page (default 10)."),
    ],
);

pub(super) const DESCRIBE_INSTANCE_ATTRIBUTE: Action =
    Action::query("DescribeInstanceAttribute", "The attributes of one instance.", Region::Optional, &[INSTANCE_ID]);
