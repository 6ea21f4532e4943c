//! Typed commands and queries the control plane executes. The OpenAPI layer builds these from
//! wire parameters; nothing here knows a wire name.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::instance::{ChargeType, InstanceStatus, SpotStrategy, StoppedMode, Tag};
use crate::net::{GroupKind, InternetCharge, RuleSpec};
use crate::storage::{DiskCategory, DiskKind, DiskStatus, SnapshotStatus};

/// Idempotency: the caller's token plus a fingerprint of the request's parameters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientToken {
    pub token: String,
    pub fingerprint: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CreateInstances {
    pub zone_id: Option<String>,
    pub instance_type: String,
    pub image_id: String,
    pub amount: u32,
    /// Create as many as fit, at least this many (RunInstances MinAmount).
    pub min_amount: Option<u32>,
    pub name: Option<String>,
    pub hostname: Option<String>,
    /// Append -001, -002... to names and host names when creating several.
    pub unique_suffix: bool,
    pub description: String,
    pub user_data: Option<Vec<u8>>,
    pub tags: Vec<Tag>,
    pub deployment_set_id: Option<String>,
    pub client_token: Option<ClientToken>,
    pub dry_run: bool,
    /// RunInstances starts the instances; CreateInstance leaves them Stopped.
    pub auto_start: bool,
    pub purchase: Purchase,
}

/// Where new instances go on the network (RunInstances `VSwitchId`, `SecurityGroupId(s)`,
/// `PrivateIpAddress`, `InternetMaxBandwidthOut`). Nothing given: the account's default VPC,
/// vSwitch of the instance's zone and security group, made on first need.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InstanceNetwork {
    pub vswitch_id: Option<String>,
    pub security_group_ids: Vec<String>,
    /// One instance only.
    pub private_ip: Option<Ipv4Addr>,
    /// Above zero: the instance gets a public address, and its outbound traffic this cap.
    pub bandwidth_out_mbps: u32,
    pub internet_charge: InternetCharge,
}

/// The storage of new instances (RunInstances `SystemDisk.*`, `DataDisk.N.*`, `KeyPairName`).
/// Nothing given: a system disk of the default category and size, no data disk, no key pair.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InstanceStorage {
    pub system_disk: SystemDiskSpec,
    pub data_disks: Vec<NewDataDisk>,
    pub key_pair_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SystemDiskSpec {
    /// `None`: cloud_essd.
    pub category: Option<DiskCategory>,
    /// `None`: max(40, the image's size), GiB.
    pub size_gib: Option<u64>,
    pub name: String,
    pub description: String,
}

/// A data disk made with an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDataDisk {
    /// `None`: cloud_efficiency.
    pub category: Option<DiskCategory>,
    /// `None`: the snapshot's size (a size is needed without a snapshot).
    pub size_gib: Option<u64>,
    pub snapshot_id: Option<String>,
    pub name: String,
    pub description: String,
    /// `None`: the next free one.
    pub device: Option<String>,
    pub delete_with_instance: bool,
}

/// CreateDisk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDisk {
    pub zone_id: String,
    /// `None`: cloud.
    pub category: Option<DiskCategory>,
    /// `None`: the snapshot's size.
    pub size_gib: Option<u64>,
    pub snapshot_id: Option<String>,
    pub name: String,
    pub description: String,
    pub client_token: Option<ClientToken>,
}

/// ModifyDiskAttribute: what is given changes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DiskAttributes {
    pub name: Option<String>,
    pub description: Option<String>,
    pub delete_with_instance: Option<bool>,
    pub delete_auto_snapshot: Option<bool>,
}

/// Filters on DescribeDisks, combined with AND.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DiskFilter {
    pub ids: Option<Vec<String>>,
    pub instance_id: Option<String>,
    pub zone_id: Option<String>,
    pub kind: Option<DiskKind>,
    pub category: Option<DiskCategory>,
    pub status: Option<DiskStatus>,
    /// Exact name, or a pattern with `*` wildcards.
    pub name: Option<String>,
    pub snapshot_id: Option<String>,
    pub portable: Option<bool>,
    pub delete_with_instance: Option<bool>,
}

/// Filters on DescribeSnapshots, combined with AND.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SnapshotFilter {
    pub ids: Option<Vec<String>>,
    pub disk_id: Option<String>,
    pub instance_id: Option<String>,
    pub name: Option<String>,
    pub status: Option<SnapshotStatus>,
    pub disk_kind: Option<DiskKind>,
}

/// ResizeDisk `Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResizeType {
    /// Takes effect when the instance restarts (or at once on a detached disk).
    #[default]
    Offline,
    /// Takes effect on the running instance.
    Online,
}

/// CreateImage: from an instance's root filesystem or a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewImage {
    pub from: ImageSourceRef,
    pub name: Option<String>,
    pub description: String,
    pub client_token: Option<ClientToken>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSourceRef {
    Instance(String),
    Snapshot(String),
}

/// ImportImage of a file of the region's import directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportImage {
    /// Its name inside the import directory.
    pub object: String,
    pub name: Option<String>,
    pub description: String,
    pub architecture: String,
    pub os_type: String,
    pub platform: String,
    pub client_token: Option<ClientToken>,
}

/// CreateVpc.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewVpc {
    /// `None`: 172.16.0.0/12.
    pub cidr: Option<Ipv4Net>,
    pub name: String,
    pub description: String,
    pub client_token: Option<ClientToken>,
}

/// CreateVSwitch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewVSwitch {
    pub vpc_id: String,
    pub zone_id: String,
    pub cidr: Ipv4Net,
    pub name: String,
    pub description: String,
    pub client_token: Option<ClientToken>,
}

/// CreateSecurityGroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSecurityGroup {
    /// `None`: the account's default VPC (made if needed).
    pub vpc_id: Option<String>,
    pub name: String,
    pub description: String,
    pub kind: GroupKind,
    pub client_token: Option<ClientToken>,
}

/// One rule to authorize or revoke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRule {
    pub spec: RuleSpec,
    pub description: String,
}

/// AllocateEipAddress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEip {
    pub bandwidth_mbps: u32,
    pub charge: InternetCharge,
    pub name: String,
    pub description: String,
    pub client_token: Option<ClientToken>,
}

/// How new instances are paid for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Purchase {
    pub charge_type: ChargeType,
    /// Subscription term in months (PrePaid only).
    pub period_months: Option<u32>,
    /// Renew a subscription automatically by this many months.
    pub auto_renew_months: Option<u32>,
    pub spot_strategy: SpotStrategy,
    /// Highest hourly price, micro-units (SpotWithPriceLimit).
    pub spot_price_limit_micros: Option<i64>,
    /// Protection hours after creation (0 or 1).
    pub spot_duration_h: u32,
    /// Stop (economical mode) instead of release when reclaimed.
    pub spot_stop_on_interrupt: bool,
}

/// Filters on DescribeInstances, combined with AND. `None` means "no filter".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InstanceFilter {
    pub ids: Option<Vec<String>>,
    pub statuses: Option<Vec<InstanceStatus>>,
    pub zone_id: Option<String>,
    pub instance_type: Option<String>,
    pub instance_type_family: Option<String>,
    /// Exact name, or a pattern with `*` wildcards.
    pub name: Option<String>,
    pub image_id: Option<String>,
    /// Tag key, and the value it must have (any value when `None`).
    pub tags: Vec<(String, Option<String>)>,
    pub vpc_id: Option<String>,
    pub vswitch_id: Option<String>,
    pub security_group_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopOptions {
    pub force: bool,
    pub mode: StoppedMode,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunScript {
    pub instance_ids: Vec<String>,
    pub content: Vec<u8>,
    pub name: String,
    pub description: String,
    pub working_dir: String,
    pub timeout_s: u64,
}

/// Names of instances and deployment sets: 2-128 characters, starting with a letter (any
/// script), not starting with `http://` or `https://`.
pub fn valid_name(n: &str) -> bool {
    let len = n.chars().count();
    (2..=128).contains(&len)
        && n.chars().next().map(|c| c.is_alphabetic()).unwrap_or(false)
        && !n.starts_with("http://")
        && !n.starts_with("https://")
}

/// Wildcard match where `*` matches any run of characters.
pub fn wildcard_match(pattern: &str, s: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == s;
    }
    let mut rest = s;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else if let Some(pos) = rest.find(part) {
            rest = &rest[pos + part.len()..];
        } else {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::{valid_name, wildcard_match};

    #[test]
    fn names() {
        assert!(valid_name("web"));
        assert!(valid_name("中文名"));
        assert!(!valid_name("1web"));
        assert!(!valid_name("w"));
        assert!(!valid_name("http://x"));
        assert!(!valid_name(&"a".repeat(129)));
    }

    #[test]
    fn wildcards() {
        assert!(wildcard_match("web", "web"));
        assert!(!wildcard_match("web", "web1"));
        assert!(wildcard_match("web*", "web1"));
        assert!(wildcard_match("*1", "web1"));
        assert!(wildcard_match("w*b*1", "wxxbyy1"));
        assert!(!wildcard_match("w*b*1", "wxxbyy2"));
        assert!(wildcard_match("*", ""));
    }
}
