//! ECS security groups: creating, describing, deleting them, their rules and their members.

use super::ecs::{CLIENT_TOKEN, DRY_RUN, INSTANCE_ID, PAGE_NUMBER};
use super::{int, one_of, opt, req, str_max, Action, Param, Region, Type, BOOL, STR};

const GROUP_ID: Param = req("SecurityGroupId", STR, "The security group.");
const NIC_TYPE: Param = opt("NicType", one_of(&["intranet"]), "intranet (the default): rules of a VPC group.");

/// What every rule says, given once (the deprecated top-level form) or as `Permissions.N.*`.
macro_rules! rule_params {
    ($peer_cidr:literal, $peer_group:literal, $pattern_cidr:literal, $pattern_group:literal, $what:literal) => {
        [
            opt("IpProtocol", STR, "TCP, UDP, ICMP or ALL, any case (one rule given without Permissions)."),
            opt("PortRange", STR, "Destination ports a/b: 1-65535 for TCP and UDP, -1/-1 for ICMP and ALL."),
            opt($peer_cidr, STR, concat!("The ", $what, " block or address.")),
            opt($peer_group, STR, concat!("The ", $what, " security group, of the same VPC.")),
            opt("Policy", STR, "accept (default) or drop, any case."),
            opt("Priority", STR, "1 (first, the default) to 100."),
            opt("Description", STR, "1-512 characters."),
            NIC_TYPE,
            opt("Permissions.N.IpProtocol", STR, "A rule's protocol: TCP, UDP, ICMP or ALL, any case.").upto(100),
            opt("Permissions.N.PortRange", STR, "A rule's destination ports a/b (-1/-1 for ICMP and ALL).").upto(100),
            opt($pattern_cidr, STR, concat!("A rule's ", $what, " block or address.")).upto(100),
            opt($pattern_group, STR, concat!("A rule's ", $what, " security group.")).upto(100),
            opt("Permissions.N.Policy", STR, "A rule's policy: accept (default) or drop.").upto(100),
            opt("Permissions.N.Priority", STR, "A rule's priority, 1 (default) to 100.").upto(100),
            opt("Permissions.N.Description", STR, "A rule's description, 1-512 characters.").upto(100),
            opt("Permissions.N.NicType", one_of(&["intranet"]), "intranet (the default).").upto(100),
        ]
    };
}

const INGRESS: [Param; 16] = rule_params!(
    "SourceCidrIp",
    "SourceGroupId",
    "Permissions.N.SourceCidrIp",
    "Permissions.N.SourceGroupId",
    "source"
);
const EGRESS: [Param; 16] =
    rule_params!("DestCidrIp", "DestGroupId", "Permissions.N.DestCidrIp", "Permissions.N.DestGroupId", "destination");

const fn with_group(rules: [Param; 16]) -> [Param; 17] {
    let mut out = [GROUP_ID; 17];
    let mut i = 0;
    while i < 16 {
        out[i + 1] = rules[i];
        i += 1;
    }
    out
}

const fn with_rule_ids(rules: [Param; 17]) -> [Param; 18] {
    let mut out = [GROUP_ID; 18];
    let mut i = 0;
    while i < 17 {
        out[i] = rules[i];
        i += 1;
    }
    out[17] = opt("SecurityGroupRuleId.N", STR, "Rules to revoke, by id.").upto(100);
    out
}

const AUTHORIZE_INGRESS: [Param; 17] = with_group(INGRESS);
const AUTHORIZE_EGRESS: [Param; 17] = with_group(EGRESS);
const REVOKE_INGRESS: [Param; 18] = with_rule_ids(AUTHORIZE_INGRESS);
const REVOKE_EGRESS: [Param; 18] = with_rule_ids(AUTHORIZE_EGRESS);

pub(super) const CREATE_SECURITY_GROUP: Action = Action::change(
    "CreateSecurityGroup",
    "Create a security group in a VPC (the default VPC when none is named).",
    Region::Required,
    &[
        opt("VpcId", STR, "The VPC (default: the account's default VPC, made if needed)."),
        opt("SecurityGroupName", str_max(128), "2-128 characters starting with a letter."),
        opt("Description", str_max(256), "2-256 characters, not starting with http:// or https://."),
        opt(
            "SecurityGroupType",
            one_of(&["normal", "enterprise"]),
            "normal (basic, the default) or enterprise (advanced: denies what it does not allow).",
        ),
        CLIENT_TOKEN,
    ],
);

pub(super) const DESCRIBE_SECURITY_GROUPS: Action = Action::query(
    "DescribeSecurityGroups",
    "Security groups of the account, filtered, by page.",
    Region::Required,
    &[
        opt("VpcId", STR, "Only the groups of this VPC."),
        opt("SecurityGroupId", STR, "Only this group."),
        opt("SecurityGroupIds", Type::JsonList { max_items: 100 }, "Only these groups, e.g. [\"sg-1\"]."),
        opt("SecurityGroupName", STR, "Only groups with this name."),
        opt("SecurityGroupType", one_of(&["normal", "enterprise"]), "Only groups of this type."),
        opt("IsQueryEcsCount", BOOL, "Count each group's instances (they are always counted)."),
        PAGE_NUMBER,
        opt("PageSize", int(1, 50), "Entries per page (default 10)."),
        DRY_RUN,
    ],
);

pub(super) const DESCRIBE_SECURITY_GROUP_ATTRIBUTE: Action = Action::query(
    "DescribeSecurityGroupAttribute",
    "A security group and its rules.",
    Region::Required,
    &[GROUP_ID, opt("Direction", one_of(&["ingress", "egress", "all"]), "Only rules of this direction (default all).")],
);

pub(super) const AUTHORIZE_SECURITY_GROUP: Action = Action::change(
    "AuthorizeSecurityGroup",
    "Add inbound rules (a rule the group has is no change).",
    Region::Required,
    &AUTHORIZE_INGRESS,
);

pub(super) const AUTHORIZE_SECURITY_GROUP_EGRESS: Action = Action::change(
    "AuthorizeSecurityGroupEgress",
    "Add outbound rules (a rule the group has is no change).",
    Region::Required,
    &AUTHORIZE_EGRESS,
);

pub(super) const REVOKE_SECURITY_GROUP: Action = Action::change(
    "RevokeSecurityGroup",
    "Remove inbound rules, given whole or by id.",
    Region::Required,
    &REVOKE_INGRESS,
);

pub(super) const REVOKE_SECURITY_GROUP_EGRESS: Action = Action::change(
    "RevokeSecurityGroupEgress",
    "Remove outbound rules, given whole or by id.",
    Region::Required,
    &REVOKE_EGRESS,
);

pub(super) const MODIFY_SECURITY_GROUP_POLICY: Action = Action::change(
    "ModifySecurityGroupPolicy",
    "Whether the members of a basic group reach each other.",
    Region::Required,
    &[GROUP_ID, req("InnerAccessPolicy", one_of(&["Accept", "Drop"]), "Accept or Drop.")],
);

pub(super) const JOIN_SECURITY_GROUP: Action = Action::change(
    "JoinSecurityGroup",
    "Put an instance in a security group.",
    Region::Optional,
    &[GROUP_ID, INSTANCE_ID],
);

pub(super) const LEAVE_SECURITY_GROUP: Action = Action::change(
    "LeaveSecurityGroup",
    "Take an instance out of a security group (not its last one).",
    Region::Optional,
    &[GROUP_ID, INSTANCE_ID],
);

pub(super) const DELETE_SECURITY_GROUP: Action = Action::change(
    "DeleteSecurityGroup",
    "Delete a security group without members that no other group's rule names.",
    Region::Required,
    &[GROUP_ID],
);
