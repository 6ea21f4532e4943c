//! Names of everything this crate creates. See `docs/networking.md` ("Naming").
//!
//! Machine-global names (named network namespaces under `/run/netns`) and names in the host
//! namespace (links, the nftables table) carry the host prefix `p` (1-6 characters, `[a-z][a-z0-9]*`):
//!
//! | object | name | example |
//! |---|---|---|
//! | router namespace of a VPC | `p-r-<vni>` | `h1-r-1001` |
//! | instance namespace | `p-i-<instance id>` | `h1-i-i-abc` |
//! | host end of the transit link | `p` `t` `<vni, 6 hex>` | `h1t0003e9` |
//! | router end, before it moves | `p` `u` `<vni, 6 hex>` | `h1u0003e9` |
//! | VXLAN device, before it moves | `p` `x` `<vni, 6 hex>` | `h1x0003e9` |
//! | host nftables table | `ip fy_p` | `fy_h1` |
//!
//! Host-side links are at most 6 + 1 + 6 = 13 bytes (Linux allows 15). Since a prefix cannot
//! contain `-` and host link names have an exact length, names of two different prefixes never
//! parse as each other's.
//!
//! Inside a router namespace (private to one VPC on one host) names need no prefix: `up0` (transit),
//! `vx0` (VXLAN), `i<10 hex>` per instance port (a hash of the instance id) and `j<10 hex>` for
//! its peer until it moves into the instance namespace as `eth0`. Nothing else in a router
//! namespace starts with `i`, which the firewall relies on.

use sha2::{Digest, Sha256};

use crate::error::{NetError, Result};

pub const ROUTER_UPLINK: &str = "up0";
pub const ROUTER_VXLAN: &str = "vx0";
pub const INSTANCE_IF: &str = "eth0";
/// The nftables table inside every router namespace.
pub const ROUTER_TABLE: &str = "fy";
/// Priority of the host's policy-routing rules (before `main` at 32766).
pub const RULE_PRIORITY: u32 = 32000;

pub fn check_prefix(prefix: &str) -> Result<()> {
    let bytes = prefix.as_bytes();
    let ok = (1..=6).contains(&bytes.len())
        && bytes[0].is_ascii_lowercase()
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(NetError::Invalid(format!("host prefix {prefix:?} must be 1-6 characters of [a-z][a-z0-9]*")))
    }
}

pub fn router_ns(prefix: &str, vni: u32) -> String {
    format!("{prefix}-r-{vni}")
}

pub fn instance_ns(prefix: &str, instance_id: &str) -> String {
    format!("{prefix}-i-{instance_id}")
}

/// What a named namespace of this prefix is, if it is one of ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnedNs {
    Router(u32),
    Instance(String),
}

pub fn parse_ns(prefix: &str, name: &str) -> Option<OwnedNs> {
    let rest = name.strip_prefix(prefix)?.strip_prefix('-')?;
    if let Some(vni) = rest.strip_prefix("r-") {
        return vni.parse().ok().map(OwnedNs::Router);
    }
    rest.strip_prefix("i-").filter(|id| !id.is_empty()).map(|id| OwnedNs::Instance(id.to_string()))
}

/// Kinds of host-namespace links: transit host end, router end before its move, VXLAN before its move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostLink {
    Transit,
    RouterEnd,
    Vxlan,
}

impl HostLink {
    fn letter(self) -> char {
        match self {
            HostLink::Transit => 't',
            HostLink::RouterEnd => 'u',
            HostLink::Vxlan => 'x',
        }
    }
}

pub fn host_link(prefix: &str, kind: HostLink, vni: u32) -> String {
    format!("{prefix}{}{vni:06x}", kind.letter())
}

pub fn parse_host_link(prefix: &str, name: &str) -> Option<(HostLink, u32)> {
    let rest = name.strip_prefix(prefix)?;
    if rest.len() != 7 {
        return None;
    }
    let kind = match rest.as_bytes()[0] {
        b't' => HostLink::Transit,
        b'u' => HostLink::RouterEnd,
        b'x' => HostLink::Vxlan,
        _ => return None,
    };
    let hex = &rest[1..];
    if !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return None;
    }
    u32::from_str_radix(hex, 16).ok().map(|vni| (kind, vni))
}

pub fn host_table(prefix: &str) -> String {
    format!("fy_{prefix}")
}

/// Routing table of a VPC in the host namespace (replies from the metadata address).
pub fn host_rule_table(vni: u32) -> u32 {
    0x0f00_0000 | vni
}

pub fn vni_of_rule_table(table: u32) -> Option<u32> {
    (table & 0xff00_0000 == 0x0f00_0000).then_some(table & 0x00ff_ffff)
}

pub(crate) fn short_hash(text: &str, hex_len: usize) -> String {
    let digest = Sha256::digest(text.as_bytes());
    let mut s = hex::encode(digest);
    s.truncate(hex_len);
    s
}

/// Router-side interface of an instance port.
pub fn port_if(instance_id: &str) -> String {
    format!("i{}", short_hash(instance_id, 10))
}

/// The instance end of the port's veth until it moves into the instance namespace.
pub fn port_peer_tmp(instance_id: &str) -> String {
    format!("j{}", short_hash(instance_id, 10))
}

/// MAC of a host's VXLAN device in every VPC, derived from its underlay address (as Flannel's
/// VTEP MAC is), so that a remote host can address it without asking.
pub fn vtep_mac(underlay: std::net::Ipv4Addr) -> [u8; 6] {
    let o = underlay.octets();
    [0x02, 0xfe, o[0], o[1], o[2], o[3]]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_links_fit_and_parse_back_only_for_their_prefix() {
        let name = host_link("abcdef", HostLink::Transit, 0xff_ffff);
        assert!(name.len() <= 15);
        assert_eq!(parse_host_link("abcdef", &name), Some((HostLink::Transit, 0xff_ffff)));
        let short = host_link("fy", HostLink::Vxlan, 1001);
        assert_eq!(parse_host_link("fy", &short), Some((HostLink::Vxlan, 1001)));
        assert_eq!(parse_host_link("fyt", &short), None);
        assert_eq!(parse_host_link("f", &short), None);
        assert_eq!(parse_host_link("fy", "fyt00000g"), None);
    }

    #[test]
    fn namespaces_parse_back() {
        assert_eq!(parse_ns("h1", &router_ns("h1", 7)), Some(OwnedNs::Router(7)));
        assert_eq!(parse_ns("h1", &instance_ns("h1", "i-x")), Some(OwnedNs::Instance("i-x".into())));
        assert_eq!(parse_ns("h", &router_ns("h1", 7)), None);
        assert_eq!(parse_ns("h1", "h1-q-1"), None);
    }

    #[test]
    fn prefixes_are_checked() {
        for ok in ["a", "h1", "abcdef"] {
            assert!(check_prefix(ok).is_ok(), "{ok}");
        }
        for bad in ["", "1a", "abcdefg", "a-b", "A"] {
            assert!(check_prefix(bad).is_err(), "{bad}");
        }
        assert!(port_if("i-0123456789abcdef").len() <= 15);
        assert_eq!(vni_of_rule_table(host_rule_table(77)), Some(77));
        assert_eq!(vni_of_rule_table(254), None);
    }
}
