//! VPCs and vSwitches.

use ipnet::Ipv4Net;

use crate::Instant;

/// Where a VPC or vSwitch is in its asynchronous creation, as Alibaba Cloud reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provisioning {
    /// Being configured: it may not be used yet.
    Pending,
    Available,
}

impl Provisioning {
    /// The state at `now` of something that becomes available at `available_at`.
    pub fn at(available_at: Instant, now: Instant) -> Provisioning {
        if now >= available_at {
            Provisioning::Available
        } else {
            Provisioning::Pending
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Provisioning::Pending => "Pending",
            Provisioning::Available => "Available",
        }
    }
}

/// The block of an account's default VPC, as on Alibaba Cloud.
pub fn default_vpc_block() -> Ipv4Net {
    Ipv4Net::new(std::net::Ipv4Addr::new(172, 16, 0, 0), 12).unwrap_or_default()
}

/// The prefix of each default vSwitch (one per zone) inside the default VPC.
pub const DEFAULT_VSWITCH_PREFIX: u8 = 20;

/// A virtual private cloud: an isolated network of one account. Two VPCs never reach each other,
/// whatever their blocks.
#[derive(Debug, Clone, PartialEq)]
pub struct Vpc {
    pub id: String,
    pub account_id: String,
    pub name: String,
    pub description: String,
    pub cidr: Ipv4Net,
    /// The VXLAN network identifier of the VPC on the hosts: unique in the region.
    pub vni: u32,
    /// The account's default VPC, made the first time an instance needed one.
    pub is_default: bool,
    pub created_at: Instant,
    /// Pending until then.
    pub available_at: Instant,
}

/// A vSwitch: a block of a VPC in one zone, where instances get their addresses.
#[derive(Debug, Clone, PartialEq)]
pub struct VSwitch {
    pub id: String,
    pub account_id: String,
    pub vpc_id: String,
    pub zone_id: String,
    pub cidr: Ipv4Net,
    pub name: String,
    pub description: String,
    /// The default vSwitch of its zone in the account's default VPC.
    pub is_default: bool,
    pub created_at: Instant,
    pub available_at: Instant,
}

impl VSwitch {
    /// The gateway its instances see.
    pub fn gateway(&self) -> std::net::Ipv4Addr {
        super::cidr::gateway(&self.cidr)
    }
}
