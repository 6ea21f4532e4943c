//! ECS 2014-05-26: every action this server implements and the parameters it reads.

use super::ecs_instances::{
    CREATE_INSTANCE, DESCRIBE_INSTANCES, DESCRIBE_INSTANCE_ATTRIBUTE, DESCRIBE_INSTANCE_STATUS, RUN_INSTANCES,
};
use super::ecs_security_groups::{
    AUTHORIZE_SECURITY_GROUP, AUTHORIZE_SECURITY_GROUP_EGRESS, CREATE_SECURITY_GROUP, DELETE_SECURITY_GROUP,
    DESCRIBE_SECURITY_GROUPS, DESCRIBE_SECURITY_GROUP_ATTRIBUTE, JOIN_SECURITY_GROUP, LEAVE_SECURITY_GROUP,
    MODIFY_SECURITY_GROUP_POLICY, REVOKE_SECURITY_GROUP, REVOKE_SECURITY_GROUP_EGRESS,
};
use super::ecs_storage::{
    ATTACH_DISK, ATTACH_KEY_PAIR, CREATE_DISK, CREATE_IMAGE, CREATE_KEY_PAIR, CREATE_SNAPSHOT, DELETE_DISK,
    DELETE_IMAGE, DELETE_KEY_PAIRS, DELETE_SNAPSHOT, DESCRIBE_DISKS, DESCRIBE_IMAGE_SHARE_PERMISSION,
    DESCRIBE_KEY_PAIRS, DESCRIBE_SNAPSHOTS, DETACH_DISK, DETACH_KEY_PAIR, IMPORT_IMAGE, IMPORT_KEY_PAIR,
    MODIFY_DISK_ATTRIBUTE, MODIFY_IMAGE_SHARE_PERMISSION, RESET_DISK, RESIZE_DISK,
};
use super::{int, one_of, opt, req, str_max, Action, Param, Product, ProductKind, Region, Type, BOOL, STR};

// Parameters many actions share.
pub(super) const DRY_RUN: Param =
    opt("DryRun", BOOL, "Only check the request: DryRunOperation when it would succeed, its error otherwise.");
pub(super) const PAGE_NUMBER: Param = opt("PageNumber", int(1, i32::MAX as i64), "Page to return, from 1.");
pub(super) const INSTANCE_ID: Param = req("InstanceId", STR, "The instance.");
pub(super) const INSTANCE_IDS: Param = req("InstanceId.N", STR, "The instances.").upto(100);
pub(super) const INSTANCE_TYPE: Param = opt("InstanceType", STR, "An instance type, e.g. ecs.g7.large.");
pub(super) const IMAGE_ID: Param = opt("ImageId", STR, "An image (see DescribeImages).");
pub(super) const ZONE_ID: Param = opt("ZoneId", STR, "A zone of the region.");
pub(super) const CLIENT_TOKEN: Param =
    opt("ClientToken", str_max(64), "At most 64 ASCII characters making a retry of the same request idempotent.");
pub(super) const TAG_KEY: Param = opt(
    "Tag.N.Key",
    str_max(128),
    "Tag key: 1-128 characters, not starting with aliyun or acs:, without http:// or https://.",
)
.upto(20);
pub(super) const TAG_VALUE: Param =
    opt("Tag.N.Value", str_max(128), "Tag value: at most 128 characters, without http:// or https://.").upto(20);
const PERIOD_UNIT: Param = opt("PeriodUnit", one_of(&["Month", "Year", "Week"]), "Unit of Period (default Month).");
const CONTENT_ENCODING: Param = opt(
    "ContentEncoding",
    one_of(&["PlainText", "Base64"]),
    "Encoding of command content and output (another value means the action's default).",
);
const PAGE_SIZE_50: Param = opt("PageSize", int(1, 50), "Entries per page (default 10).");
const TIMEOUT: Param = opt("Timeout", int(10, 86400), "Seconds before the command is stopped (default 60).");
const WORKING_DIR: Param = opt("WorkingDir", str_max(200), "Directory the command runs in.");
const REPEAT_MODE: Param = opt("RepeatMode", STR, "Once (the default) is the only mode supported.");
const FREQUENCY: Param = opt("Frequency", STR, "Not supported: periodic runs are refused.");
const COMMAND_TYPE: Param = opt("Type", one_of(&["RunShellScript"]), "The command's interpreter.");

pub(super) static PRODUCT: Product = Product {
    kind: ProductKind::Ecs,
    code: "Ecs",
    version: "2014-05-26",
    summary: "Elastic Compute Service: instances, disks, snapshots, images, key pairs, prices, security groups and Cloud Assistant.",
    actions: &[
        // Regions, zones and what is available where.
        Action::query("DescribeRegions", "The region this server runs.", Region::Optional, &[]),
        Action::query(
            "DescribeZones",
            "Zones of the region and the instance types each can run.",
            Region::Required,
            &[opt("Verbose", BOOL, "Include each zone's resources (default true).")],
        ),
        Action::query(
            "DescribeAvailableResource",
            "Stock of instance types per zone.",
            Region::Required,
            &[
                req(
                    "DestinationResource",
                    one_of(&["Zone", "IoOptimized", "InstanceType", "SystemDisk", "DataDisk", "Network", "ddh"]),
                    "What to list: Zone, or the instance types of each zone.",
                ),
                ZONE_ID,
                INSTANCE_TYPE,
                opt("Cores", int(1, i64::MAX), "Only types with this many vCPUs."),
                opt("Memory", Type::Decimal, "Only types with this much memory, GiB."),
            ],
        ),
        // The catalogue.
        Action::query(
            "DescribeInstanceTypes",
            "Instance types and their resources, filtered, by token.",
            Region::Optional,
            &[
                opt("InstanceTypes.N", STR, "Only these types.").upto(10),
                opt("InstanceTypeFamilies.N", STR, "Only types of these families.").upto(10),
                opt("InstanceTypeFamily", STR, "Only types of this family."),
                opt("MinimumCpuCoreCount", int(0, i64::MAX), "Only types with at least this many vCPUs."),
                opt("MaximumCpuCoreCount", int(0, i64::MAX), "Only types with at most this many vCPUs."),
                opt("MinimumGPUAmount", int(0, i64::MAX), "Only types with at least this many GPUs."),
                opt("MaximumGPUAmount", int(0, i64::MAX), "Only types with at most this many GPUs."),
                opt("MinimumMemorySize", Type::Decimal, "Only types with at least this much memory, GiB."),
                opt("MaximumMemorySize", Type::Decimal, "Only types with at most this much memory, GiB."),
                opt("GPUSpec", STR, "Only types with this GPU model."),
                opt("InstanceCategory", STR, "Only types of this category, e.g. General-purpose."),
                opt("InstanceFamilyLevel", one_of(&["EntryLevel", "EnterpriseLevel", "CreditEntryLevel"]), "Only types of this level."),
                opt("MaxResults", int(1, 1600), "Entries per page (default 1600)."),
                opt("NextToken", STR, "Where the previous page ended."),
            ],
        ),
        Action::query(
            "DescribeInstanceTypeFamilies",
            "Instance families and their generations.",
            Region::Required,
            &[opt("Generation", STR, "Only families of this generation, e.g. ecs-5.")],
        ),
        Action::query(
            "DescribeImages",
            "Images instances can boot from, by page.",
            Region::Required,
            &[
                opt("ImageId", STR, "Only these images, comma-separated."),
                opt("ImageName", STR, "Only images whose name contains this."),
                opt("OSType", STR, "Only images of this OS type: linux or windows, any case."),
                opt("Architecture", one_of(&["i386", "x86_64", "arm64"]), "Only images of this architecture."),
                opt("ImageOwnerAlias", one_of(&["system", "self", "others", "marketplace"]), "Only system images, the account's own, or those shared with it (marketplace: none)."),
                opt("Status", STR, "Only images in these statuses, comma-separated: Creating, Waiting, Available, UnAvailable, CreateFailed, Deprecated or ALL (default Available)."),
                PAGE_NUMBER,
                opt("PageSize", int(1, 100), "Entries per page (default 10)."),
            ],
        ),
        // Instances.
        RUN_INSTANCES,
        CREATE_INSTANCE,
        DESCRIBE_INSTANCES,
        DESCRIBE_INSTANCE_STATUS,
        DESCRIBE_INSTANCE_ATTRIBUTE,
        // Power and release.
        Action::change("StartInstance", "Start a stopped instance.", Region::Optional, &[INSTANCE_ID, DRY_RUN]),
        Action::change(
            "StartInstances",
            "Start stopped instances.",
            Region::Required,
            &[INSTANCE_IDS, BATCH_OPTIMIZATION, DRY_RUN],
        ),
        Action::change(
            "StopInstance",
            "Stop a running instance.",
            Region::Optional,
            &[INSTANCE_ID, FORCE_STOP, STOPPED_MODE, DRY_RUN],
        ),
        Action::change(
            "StopInstances",
            "Stop running instances.",
            Region::Required,
            &[INSTANCE_IDS, FORCE_STOP, STOPPED_MODE, BATCH_OPTIMIZATION, DRY_RUN],
        ),
        Action::change(
            "RebootInstance",
            "Restart a running instance.",
            Region::Optional,
            &[INSTANCE_ID, FORCE_STOP, DRY_RUN],
        ),
        Action::change(
            "RebootInstances",
            "Restart running instances.",
            Region::Required,
            &[INSTANCE_IDS, opt("ForceReboot", BOOL, "Restart without a clean shutdown."), BATCH_OPTIMIZATION, DRY_RUN],
        ),
        Action::change("DeleteInstance", "Release an instance.", Region::Optional, &[INSTANCE_ID, FORCE, DRY_RUN]),
        Action::change("DeleteInstances", "Release instances.", Region::Required, &[INSTANCE_IDS, FORCE, DRY_RUN]),
        Action::blocking_query(
            "GetInstanceConsoleOutput",
            "The last console output of an instance, base64 (read from its host).",
            Region::Required,
            &[INSTANCE_ID, opt("RemoveSymbols", BOOL, "Remove escape sequences and control characters.")],
        ),
        // Health and system events.
        Action::query(
            "DescribeInstancesFullStatus",
            "Status, health and open system events of instances, by page.",
            Region::Required,
            &[
                opt("InstanceId.N", STR, "Only these instances.").upto(100),
                opt("Status", one_of(&["Pending", "Running", "Starting", "Stopping", "Stopped"]), "Only instances in this status."),
                opt("HealthStatus", one_of(&["Impaired", "Initializing", "InsufficientData", "NotApplicable", "Ok"]), "Only instances of this health."),
                PAGE_NUMBER,
                opt("PageSize", int(1, 100), "Entries per page (default 10)."),
            ],
        ),
        Action::blocking_query(
            "DescribeInstanceHistoryEvents",
            "System events of instances (host failures, redeployments), newest first.",
            Region::Required,
            &[
                opt("InstanceId", STR, "Only this instance."),
                opt("EventId.N", STR, "Only these events.").upto(100),
                opt("InstanceEventType.N", one_of(&["SystemFailure.Reboot", "SystemFailure.Redeploy"]), "Only these event types.").upto(30),
                opt("InstanceEventCycleStatus.N", one_of(&["Executing", "Executed", "Canceled", "Failed"]), "Only events in these states.").upto(10),
                PAGE_NUMBER,
                opt("PageSize", int(1, 100), "Entries per page (default 10)."),
            ],
        ),
        // Cloud Assistant.
        Action::change(
            "CreateCommand",
            "Save a shell script as a command.",
            Region::Required,
            &[
                req("Name", str_max(128), "The command's name."),
                COMMAND_TYPE.required(),
                req("CommandContent", Type::Text, "The script: base64 unless ContentEncoding=PlainText."),
                CONTENT_ENCODING,
                opt("Description", str_max(512), "What the command does."),
                WORKING_DIR,
                TIMEOUT,
            ],
        ),
        Action::query(
            "DescribeCommands",
            "Saved commands, by page.",
            Region::Required,
            &[
                opt("CommandId", STR, "Only this command."),
                opt("Name", STR, "Only commands with this name."),
                COMMAND_TYPE,
                CONTENT_ENCODING,
                PAGE_NUMBER,
                PAGE_SIZE_50,
            ],
        ),
        Action::change(
            "DeleteCommand",
            "Delete a saved command.",
            Region::Required,
            &[req("CommandId", STR, "The command.")],
        ),
        Action::change(
            "InvokeCommand",
            "Run a saved command on instances.",
            Region::Required,
            &[req("CommandId", STR, "The command."), INSTANCE_IDS, REPEAT_MODE, FREQUENCY, WORKING_DIR, TIMEOUT],
        ),
        Action::change(
            "RunCommand",
            "Run a shell script on instances.",
            Region::Required,
            &[
                COMMAND_TYPE.required(),
                req("CommandContent", Type::Text, "The script: plain text unless ContentEncoding=Base64."),
                CONTENT_ENCODING,
                INSTANCE_IDS,
                opt("Name", str_max(128), "A name for the run's command."),
                opt("Description", str_max(512), "What the command does."),
                WORKING_DIR,
                TIMEOUT,
                opt("KeepCommand", BOOL, "Keep the command afterwards, as CreateCommand would."),
                REPEAT_MODE,
                FREQUENCY,
            ],
        ),
        Action::query(
            "DescribeInvocations",
            "Runs of commands and their per-instance status, by page.",
            Region::Required,
            &[
                opt("InvokeId", STR, "Only this run."),
                opt("CommandId", STR, "Only runs of this command."),
                opt("CommandName", STR, "Only runs of commands with this name."),
                opt("InstanceId", STR, "Only runs on this instance."),
                opt("InvokeStatus", one_of(&["Running", "Finished", "Success", "Failed", "Stopped", "Stopping", "PartialFailed", "Pending", "Scheduled"]), "Only runs in this status."),
                opt("IncludeOutput", BOOL, "Include each instance's output."),
                CONTENT_ENCODING,
                PAGE_NUMBER,
                PAGE_SIZE_50,
            ],
        ),
        Action::query(
            "DescribeInvocationResults",
            "Per-instance results of runs, with output, by page.",
            Region::Required,
            &[
                opt("InvokeId", STR, "Only this run."),
                opt("CommandId", STR, "Only runs of this command."),
                opt("InstanceId", STR, "Only results on this instance."),
                opt("InvokeRecordStatus", one_of(&["Running", "Finished", "Success", "Failed", "PartialFailed", "Stopped", "Stopping"]), "Only results in this status."),
                CONTENT_ENCODING,
                PAGE_NUMBER,
                PAGE_SIZE_50,
            ],
        ),
        // Prices.
        Action::query(
            "DescribePrice",
            "The price of instances (by the hour, spot, or a subscription term) or of data disks (by the hour).",
            Region::Required,
            &[
                opt("InstanceType", STR, "An instance type, e.g. ecs.g7.large; required unless ResourceType is disk."),
                opt(
                    "ResourceType",
                    one_of(&["instance", "disk", "bandwidth", "ddh", "ElasticityAssurance", "CapacityReservation"]),
                    "What to price: instance (the default) or disk (the data disks DataDisk.N.*); the others are not priced here.",
                ),
                opt("PriceUnit", one_of(&["Hour", "Week", "Month", "Year"]), "Hour (default), Month or Year."),
                opt("Period", int(1, 60), "Terms of PriceUnit: 1-9, 12, 24, 36, 48 or 60 months, or 1-5 years."),
                opt(
                    "SpotStrategy",
                    one_of(&["NoSpot", "SpotWithPriceLimit", "SpotAsPriceGo"]),
                    "Price a spot instance by the hour.",
                ),
                opt("Amount", int(1, 1000), "How many instances (default 1)."),
                opt("SystemDisk.Category", one_of(&["cloud", "cloud_efficiency", "cloud_ssd", "cloud_essd"]), "System disk category (default cloud_essd)."),
                opt("SystemDisk.Size", int(1, 2048), "System disk size, GiB (default max(40, the image's size))."),
                opt("ImageId", STR, "The image the instances boot from: its size bounds the system disk's."),
                opt("DataDisk.N.Category", one_of(&["cloud", "cloud_efficiency", "cloud_ssd", "cloud_essd"]), "Category of data disk N (default cloud_efficiency); data disks are priced by the hour.").upto(16),
                opt("DataDisk.N.Size", STR, "Size of data disk N, GiB: cloud 5-2000, the others 20-32768.").upto(16),
                opt("InternetMaxBandwidthOut", int(0, 100), "Public bandwidth, Mbit/s (default 0)."),
                opt(
                    "InternetChargeType",
                    one_of(&["PayByBandwidth", "PayByTraffic"]),
                    "How public bandwidth is paid (default PayByBandwidth).",
                ),
                ZONE_ID,
            ],
        ),
        Action::query(
            "DescribeSpotPriceHistory",
            "Spot prices of an instance type over at most 30 days.",
            Region::Required,
            &[
                INSTANCE_TYPE.required(),
                req("NetworkType", one_of(&["vpc", "classic"]), "The network type."),
                ZONE_ID,
                opt("StartTime", Type::Time, "From (default: a day before EndTime)."),
                opt("EndTime", Type::Time, "To (default: now)."),
                opt("Offset", int(0, i64::MAX), "Entries to skip."),
            ],
        ),
        // Subscriptions.
        Action::change(
            "RenewInstance",
            "Extend a subscription, paid now from the balance.",
            Region::Optional,
            &[
                INSTANCE_ID,
                req("Period", int(1, 60), "Term to add: 1-9, 12, 24, 36, 48 or 60 months, or 1-5 years."),
                PERIOD_UNIT,
            ],
        ),
        Action::change(
            "ModifyInstanceAutoRenewAttribute",
            "Turn automatic renewal of subscriptions on or off.",
            Region::Optional,
            &[
                req("InstanceId", Type::CommaList { max_items: 100 }, "The instances, comma-separated."),
                opt("RenewalStatus", one_of(&["AutoRenewal", "Normal", "NotRenewal"]), "AutoRenewal turns it on."),
                opt("AutoRenew", BOOL, "Turn it on (when RenewalStatus is not given)."),
                opt("Duration", int(1, 60), "Term of each renewal: 1, 2, 3, 6, 12, 24, 36, 48 or 60 months."),
                opt("PeriodUnit", one_of(&["Month", "Year"]), "Unit of Duration (default Month)."),
            ],
        ),
        Action::change(
            "ModifyInstanceChargeType",
            "Convert instances between pay-as-you-go and subscription.",
            Region::Required,
            &[
                req("InstanceIds", Type::JsonList { max_items: 20 }, "The instances, e.g. [\"i-1\"]."),
                opt("InstanceChargeType", one_of(&["PostPaid", "PrePaid"]), "The new charge type (default PrePaid)."),
                opt("Period", int(1, 60), "Subscription term when converting to PrePaid (default 1 month)."),
                PERIOD_UNIT,
                DRY_RUN,
            ],
        ),
        // Deployment sets.
        Action::change(
            "CreateDeploymentSet",
            "Create a deployment set: its instances each on their own host.",
            Region::Required,
            &[
                opt("DeploymentSetName", str_max(128), "2-128 characters starting with a letter."),
                opt("Description", str_max(256), "2-256 characters, not starting with http:// or https://."),
                opt("Strategy", STR, "Availability (the default) is the only strategy."),
            ],
        ),
        Action::query(
            "DescribeDeploymentSets",
            "Deployment sets and their instances, by page.",
            Region::Required,
            &[
                opt("DeploymentSetIds", Type::JsonList { max_items: 100 }, "Only these sets, e.g. [\"ds-1\"]."),
                opt("DeploymentSetName", STR, "Only sets with this name."),
                PAGE_NUMBER,
                PAGE_SIZE_50,
            ],
        ),
        Action::change(
            "DeleteDeploymentSet",
            "Delete an empty deployment set.",
            Region::Required,
            &[req("DeploymentSetId", STR, "The deployment set.")],
        ),
        // Disks, snapshots, the account's images and key pairs.
        CREATE_DISK,
        DESCRIBE_DISKS,
        ATTACH_DISK,
        DETACH_DISK,
        DELETE_DISK,
        RESIZE_DISK,
        RESET_DISK,
        MODIFY_DISK_ATTRIBUTE,
        CREATE_SNAPSHOT,
        DESCRIBE_SNAPSHOTS,
        DELETE_SNAPSHOT,
        CREATE_IMAGE,
        DELETE_IMAGE,
        IMPORT_IMAGE,
        MODIFY_IMAGE_SHARE_PERMISSION,
        DESCRIBE_IMAGE_SHARE_PERMISSION,
        CREATE_KEY_PAIR,
        IMPORT_KEY_PAIR,
        DESCRIBE_KEY_PAIRS,
        DELETE_KEY_PAIRS,
        ATTACH_KEY_PAIR,
        DETACH_KEY_PAIR,
        // Security groups.
        CREATE_SECURITY_GROUP,
        DESCRIBE_SECURITY_GROUPS,
        DESCRIBE_SECURITY_GROUP_ATTRIBUTE,
        AUTHORIZE_SECURITY_GROUP,
        AUTHORIZE_SECURITY_GROUP_EGRESS,
        REVOKE_SECURITY_GROUP,
        REVOKE_SECURITY_GROUP_EGRESS,
        MODIFY_SECURITY_GROUP_POLICY,
        JOIN_SECURITY_GROUP,
        LEAVE_SECURITY_GROUP,
        DELETE_SECURITY_GROUP,
    ],
};

const FORCE_STOP: Param = opt("ForceStop", BOOL, "Stop without a clean shutdown.");
const FORCE: Param = opt("Force", BOOL, "Release a running instance too.");
const STOPPED_MODE: Param = opt(
    "StoppedMode",
    one_of(&["StopCharging", "KeepCharging"]),
    "Whether a stopped pay-as-you-go instance keeps being charged (default KeepCharging).",
);
const BATCH_OPTIMIZATION: Param = opt(
    "BatchOptimization",
    one_of(&["AllTogether", "SuccessFirst"]),
    "AllTogether: all or none (default); SuccessFirst: each instance on its own.",
);
