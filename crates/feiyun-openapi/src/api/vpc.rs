//! VPC 2016-04-28: VPCs, vSwitches and elastic IP addresses.

use super::ecs::CLIENT_TOKEN;
use super::{int, one_of, opt, req, str_max, Action, Param, Product, ProductKind, Region, BOOL, STR};

const DRY_RUN: Param =
    opt("DryRun", BOOL, "Only check the request: DryRunOperation when it would succeed, its error otherwise.");
const PAGE_NUMBER: Param = opt("PageNumber", int(1, i32::MAX as i64), "Page to return, from 1.");
const VPC_ID: Param = req("VpcId", STR, "The VPC.");
const VPC_NAME: Param = opt("VpcName", str_max(128), "1-128 characters, not starting with http:// or https://.");
const DESCRIPTION: Param = opt("Description", str_max(256), "1-256 characters, not starting with http:// or https://.");
const VSWITCH_ID: Param = req("VSwitchId", STR, "The vSwitch.");
const ALLOCATION_ID: Param = req("AllocationId", STR, "The elastic IP address, by its allocation id.");
const INSTANCE_TYPE: Param =
    opt("InstanceType", one_of(&["EcsInstance"]), "The kind of instance: EcsInstance (the default) only.");
const IS_DEFAULT: Param = opt("IsDefault", BOOL, "Only the default one (true) or only the others (false).");

pub(super) static PRODUCT: Product = Product {
    kind: ProductKind::Vpc,
    code: "Vpc",
    version: "2016-04-28",
    summary: "Virtual Private Cloud: VPCs, vSwitches and elastic IP addresses.",
    actions: &[
        Action::change(
            "CreateVpc",
            "Create a VPC (Pending, then Available).",
            Region::Required,
            &[
                opt(
                    "CidrBlock",
                    STR,
                    "Its block, /8 to /28, outside 100.64.0.0/10, 224.0.0.0/4, 127.0.0.0/8 and 169.254.0.0/16 (default 172.16.0.0/12).",
                ),
                VPC_NAME,
                DESCRIPTION,
                CLIENT_TOKEN,
                DRY_RUN,
            ],
        ),
        Action::query(
            "DescribeVpcs",
            "VPCs of the account, filtered, by page.",
            Region::Required,
            &[
                opt("VpcId", STR, "Only these VPCs, comma-separated (at most 20)."),
                opt("VpcName", STR, "Only VPCs with this name."),
                IS_DEFAULT,
                PAGE_NUMBER,
                opt("PageSize", int(1, 50), "Entries per page (default 10)."),
                DRY_RUN,
            ],
        ),
        Action::query("DescribeVpcAttribute", "One VPC.", Region::Required, &[VPC_ID, DRY_RUN]),
        Action::change(
            "ModifyVpcAttribute",
            "Rename a VPC or change its description.",
            Region::Optional,
            &[VPC_ID, VPC_NAME, DESCRIPTION],
        ),
        Action::change(
            "DeleteVpc",
            "Delete an available VPC without vSwitches or security groups.",
            Region::Optional,
            &[VPC_ID, DRY_RUN],
        ),
        Action::change(
            "CreateVSwitch",
            "Create a vSwitch: a block of a VPC in one zone (Pending, then Available).",
            Region::Optional,
            &[
                VPC_ID,
                req("ZoneId", STR, "Its zone."),
                req("CidrBlock", STR, "Its block: /16 to /29, inside the VPC's, overlapping none of its vSwitches."),
                opt("VSwitchName", str_max(128), "1-128 characters, not starting with http:// or https://."),
                DESCRIPTION,
                CLIENT_TOKEN,
            ],
        ),
        Action::query(
            "DescribeVSwitches",
            "vSwitches of the account, filtered, by page.",
            Region::Optional,
            &[
                opt("VpcId", STR, "Only the vSwitches of this VPC."),
                opt("VSwitchId", STR, "Only these vSwitches, comma-separated."),
                opt("ZoneId", STR, "Only the vSwitches of this zone."),
                opt("VSwitchName", STR, "Only vSwitches with this name."),
                IS_DEFAULT,
                PAGE_NUMBER,
                opt("PageSize", int(1, 50), "Entries per page (default 10)."),
                DRY_RUN,
            ],
        ),
        Action::query("DescribeVSwitchAttributes", "One vSwitch.", Region::Optional, &[VSWITCH_ID, DRY_RUN]),
        Action::change(
            "DeleteVSwitch",
            "Delete an available vSwitch without instances.",
            Region::Optional,
            &[VSWITCH_ID, DRY_RUN],
        ),
        Action::change(
            "AllocateEipAddress",
            "Allocate an elastic IP address from the region's pool.",
            Region::Required,
            &[
                opt("Bandwidth", int(1, 200), "Outbound cap, Mbit/s (default 5)."),
                opt(
                    "InternetChargeType",
                    one_of(&["PayByTraffic", "PayByBandwidth"]),
                    "How its traffic is paid (default PayByTraffic).",
                ),
                opt("Name", str_max(128), "1-128 characters, not starting with http:// or https://."),
                DESCRIPTION,
                CLIENT_TOKEN,
            ],
        ),
        Action::change(
            "AssociateEipAddress",
            "Associate an elastic IP address with an instance that has no public address.",
            Region::Optional,
            &[ALLOCATION_ID, req("InstanceId", STR, "The instance."), INSTANCE_TYPE],
        ),
        Action::change(
            "UnassociateEipAddress",
            "Take an elastic IP address off its instance.",
            Region::Optional,
            &[ALLOCATION_ID, opt("InstanceId", STR, "The instance it is associated with."), INSTANCE_TYPE],
        ),
        Action::change(
            "ReleaseEipAddress",
            "Give an unassociated elastic IP address back to the pool.",
            Region::Optional,
            &[ALLOCATION_ID],
        ),
        Action::query(
            "DescribeEipAddresses",
            "Elastic IP addresses of the account, filtered, by page.",
            Region::Required,
            &[
                opt("AllocationId", STR, "Only these addresses, comma-separated (at most 50)."),
                opt("EipAddress", STR, "Only this address."),
                opt("AssociatedInstanceId", STR, "Only the address of this instance."),
                opt("AssociatedInstanceType", one_of(&["EcsInstance"]), "Only addresses of this kind of instance."),
                opt("Status", one_of(&["Associating", "Unassociating", "InUse", "Available", "Releasing"]), "Only addresses in this status."),
                PAGE_NUMBER,
                opt("PageSize", int(1, 100), "Entries per page (default 10)."),
            ],
        ),
    ],
};
