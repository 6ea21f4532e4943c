//! An instance's attachment to its VPC, and public addresses.

use std::net::Ipv4Addr;

use crate::Instant;

/// How public traffic is paid for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InternetCharge {
    /// By the traffic actually sent (metered from the hosts' counters).
    #[default]
    PayByTraffic,
    /// By the bandwidth cap, per hour.
    PayByBandwidth,
}

impl InternetCharge {
    pub fn as_str(&self) -> &'static str {
        match self {
            InternetCharge::PayByTraffic => "PayByTraffic",
            InternetCharge::PayByBandwidth => "PayByBandwidth",
        }
    }

    pub fn parse(s: &str) -> Option<InternetCharge> {
        match s {
            "PayByTraffic" => Some(InternetCharge::PayByTraffic),
            "PayByBandwidth" => Some(InternetCharge::PayByBandwidth),
            _ => None,
        }
    }
}

/// What a public address is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublicIpKind {
    /// An elastic IP address: allocated by the account, associated and unassociated at will.
    Eip,
    /// The public address an instance got at creation (`InternetMaxBandwidthOut` > 0): it goes
    /// with the instance.
    Instance,
}

impl PublicIpKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            PublicIpKind::Eip => "Eip",
            PublicIpKind::Instance => "Instance",
        }
    }

    pub fn parse(s: &str) -> Option<PublicIpKind> {
        match s {
            "Eip" => Some(PublicIpKind::Eip),
            "Instance" => Some(PublicIpKind::Instance),
            _ => None,
        }
    }
}

/// An address of the region's public pool held by an account.
#[derive(Debug, Clone, PartialEq)]
pub struct PublicIp {
    /// `eip-...` (instance addresses have an internal id of the same shape, never shown).
    pub allocation_id: String,
    pub ip: Ipv4Addr,
    pub account_id: String,
    pub kind: PublicIpKind,
    /// The instance it is associated with.
    pub instance_id: Option<String>,
    pub name: String,
    pub description: String,
    /// Outbound cap, Mbit/s.
    pub bandwidth_mbps: u32,
    pub charge: InternetCharge,
    pub created_at: Instant,
}

/// An instance's network interface: its place in a VPC.
#[derive(Debug, Clone, PartialEq)]
pub struct Nic {
    pub instance_id: String,
    pub account_id: String,
    pub vpc_id: String,
    pub vswitch_id: String,
    /// Unique in the VPC.
    pub ip: Ipv4Addr,
    pub mac: [u8; 6],
    /// `eni-...`: the primary network interface as DescribeInstances shows it.
    pub eni_id: String,
    /// In the order the instance joined them.
    pub security_group_ids: Vec<String>,
    /// `InternetMaxBandwidthOut`: with more than zero the instance has a public address.
    pub bandwidth_out_mbps: u32,
    pub internet_charge: InternetCharge,
}

/// A MAC address as `00:16:3e:xx:xx:xx`.
pub fn mac_string(mac: &[u8; 6]) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = s.split(':');
    for b in out.iter_mut() {
        let p = parts.next()?;
        if p.len() != 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

/// A MAC of Alibaba Cloud's prefix, 00:16:3e, with three given bytes.
pub fn instance_mac(tail: [u8; 3]) -> [u8; 6] {
    [0x00, 0x16, 0x3e, tail[0], tail[1], tail[2]]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_round_trip() {
        let m = instance_mac([1, 0xab, 0xff]);
        assert_eq!(mac_string(&m), "00:16:3e:01:ab:ff");
        assert_eq!(parse_mac("00:16:3e:01:ab:ff"), Some(m));
        assert_eq!(parse_mac("00:16:3e:01:ab"), None);
    }
}
