//! Address arithmetic of VPCs and vSwitches: which CIDR blocks a VPC or a vSwitch may have,
//! which addresses of a vSwitch are reserved, and the lowest free one.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::ops::RangeInclusive;

pub use ipnet::Ipv4Net;

/// Prefix lengths a VPC may have (Alibaba: /8 to /28; its docs recommend /16 to /28).
pub const VPC_PREFIX: RangeInclusive<u8> = 8..=28;
/// Prefix lengths a vSwitch may have.
pub const VSWITCH_PREFIX: RangeInclusive<u8> = 16..=29;

/// Blocks no VPC may use or overlap (as on Alibaba Cloud): shared address space (the region's
/// own transit links and 100.100.100.200 live there), multicast and above, loopback, link-local,
/// and "this network".
const FORBIDDEN: [(Ipv4Addr, u8); 5] = [
    (Ipv4Addr::new(100, 64, 0, 0), 10),
    (Ipv4Addr::new(224, 0, 0, 0), 3),
    (Ipv4Addr::new(127, 0, 0, 0), 8),
    (Ipv4Addr::new(169, 254, 0, 0), 16),
    (Ipv4Addr::new(0, 0, 0, 0), 8),
];

/// A CIDR block written exactly: `a.b.c.d/n` with no host bits set.
pub fn parse_cidr(text: &str) -> Option<Ipv4Net> {
    let (addr, len) = text.split_once('/')?;
    if len.is_empty() || len.len() > 2 || !len.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let addr: Ipv4Addr = addr.parse().ok()?;
    let net = Ipv4Net::new(addr, len.parse().ok()?).ok()?;
    (net.network() == addr).then_some(net)
}

/// An IPv4 address written as four decimal octets.
pub fn parse_ip(text: &str) -> Option<Ipv4Addr> {
    text.parse().ok()
}

pub fn overlaps(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// Whether `inner` lies wholly inside `outer`.
pub fn within(outer: &Ipv4Net, inner: &Ipv4Net) -> bool {
    outer.contains(&inner.network()) && inner.prefix_len() >= outer.prefix_len()
}

/// Whether a VPC may have this block: a prefix in [`VPC_PREFIX`], clear of the forbidden ranges.
pub fn vpc_block_allowed(net: &Ipv4Net) -> bool {
    VPC_PREFIX.contains(&net.prefix_len())
        && FORBIDDEN.iter().all(|(a, l)| Ipv4Net::new(*a, *l).map(|f| !overlaps(&f, net)).unwrap_or(true))
}

/// The gateway guests of a vSwitch see: the third-to-last address (one of the three Alibaba
/// reserves at the top of every vSwitch; `.253` in a /24).
pub fn gateway(net: &Ipv4Net) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(net.broadcast()) - 2)
}

/// Reserved: the first address and the last three of the block.
pub fn is_reserved(net: &Ipv4Net, ip: Ipv4Addr) -> bool {
    ip == net.network() || u32::from(ip) >= u32::from(net.broadcast()) - 2
}

/// An address instances of the vSwitch may have.
pub fn usable(net: &Ipv4Net, ip: Ipv4Addr) -> bool {
    net.contains(&ip) && !is_reserved(net, ip)
}

/// How many addresses instances may have in the block.
pub fn usable_count(net: &Ipv4Net) -> u64 {
    (1u64 << (32 - net.prefix_len() as u32)).saturating_sub(4)
}

/// The lowest usable address of the block that `used` does not hold.
pub fn first_free(net: &Ipv4Net, used: &BTreeSet<Ipv4Addr>) -> Option<Ipv4Addr> {
    first_free_of(net, used, &BTreeSet::new())
}

/// The lowest usable address of the block that neither `used` nor `picked` holds (addresses
/// recorded, and addresses being given out by the same decision), without merging the sets.
pub fn first_free_of(net: &Ipv4Net, used: &BTreeSet<Ipv4Addr>, picked: &BTreeSet<Ipv4Addr>) -> Option<Ipv4Addr> {
    let first = u32::from(net.network()) + 1;
    let last = u32::from(net.broadcast()).checked_sub(3)?;
    let range = Ipv4Addr::from(first)..=Ipv4Addr::from(last);
    let (mut a, mut b) = (used.range(range.clone()).peekable(), picked.range(range).peekable());
    let mut candidate = first;
    // Walk both sets in address order while they hold the candidate.
    loop {
        let next = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) if x <= y => a.next(),
            (Some(_), Some(_)) | (None, Some(_)) => b.next(),
            (Some(_), None) => a.next(),
            (None, None) => None,
        };
        let Some(u) = next.map(|u| u32::from(*u)) else { break };
        if u > candidate {
            break;
        }
        candidate = candidate.max(u + 1);
    }
    (candidate <= last).then(|| Ipv4Addr::from(candidate))
}

/// The lowest block of `prefix` inside `outer` that overlaps none of `taken`.
pub fn first_free_block(outer: &Ipv4Net, prefix: u8, taken: &[Ipv4Net]) -> Option<Ipv4Net> {
    outer.subnets(prefix).ok()?.find(|b| taken.iter().all(|t| !overlaps(t, b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        parse_cidr(s).expect("valid")
    }

    #[test]
    fn blocks_are_written_exactly() {
        assert_eq!(parse_cidr("192.168.0.0/16"), Some(net("192.168.0.0/16")));
        for bad in ["192.168.0.1/16", "192.168.0.0", "192.168.0.0/33", "192.168.0.0/", "10.0.0.0/+8", "x/8", "10.0.0/8"]
        {
            assert!(parse_cidr(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn vpc_blocks_avoid_the_reserved_ranges() {
        assert!(vpc_block_allowed(&net("10.0.0.0/8")));
        assert!(vpc_block_allowed(&net("192.168.1.0/28")));
        assert!(!vpc_block_allowed(&net("192.168.1.0/29")), "too small");
        assert!(!vpc_block_allowed(&net("10.0.0.0/7")), "too large");
        for bad in ["100.100.0.0/16", "100.64.0.0/10", "224.0.0.0/8", "127.0.0.0/16", "169.254.0.0/16", "0.0.0.0/8"] {
            assert!(!vpc_block_allowed(&net(bad)), "{bad}");
        }
    }

    #[test]
    fn reserved_addresses_are_the_first_and_the_last_three() {
        let n = net("192.168.1.0/24");
        assert_eq!(gateway(&n), Ipv4Addr::new(192, 168, 1, 253));
        for r in [0u8, 253, 254, 255] {
            assert!(is_reserved(&n, Ipv4Addr::new(192, 168, 1, r)), "{r}");
        }
        assert!(usable(&n, Ipv4Addr::new(192, 168, 1, 1)));
        assert!(usable(&n, Ipv4Addr::new(192, 168, 1, 252)));
        assert!(!usable(&n, Ipv4Addr::new(192, 168, 2, 1)));
        assert_eq!(usable_count(&n), 252);
        assert_eq!(usable_count(&net("10.0.0.0/29")), 4);
    }

    #[test]
    fn the_lowest_free_address_skips_used_and_reserved_ones() {
        let n = net("10.0.0.0/29");
        let mut used = BTreeSet::new();
        let mut got = Vec::new();
        while let Some(ip) = first_free(&n, &used) {
            used.insert(ip);
            got.push(ip.octets()[3]);
        }
        assert_eq!(got, [1, 2, 3, 4], ".5 is the gateway, .6 and .7 reserved");
        used.remove(&Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(first_free(&n, &used), Some(Ipv4Addr::new(10, 0, 0, 2)));
    }

    #[test]
    fn blocks_overlap_when_one_holds_the_other() {
        assert!(overlaps(&net("10.0.0.0/8"), &net("10.1.0.0/16")));
        assert!(!overlaps(&net("10.0.0.0/16"), &net("10.1.0.0/16")));
        assert!(within(&net("10.0.0.0/8"), &net("10.1.0.0/16")));
        assert!(!within(&net("10.1.0.0/16"), &net("10.0.0.0/8")));
        let taken = [net("172.16.0.0/20")];
        assert_eq!(first_free_block(&net("172.16.0.0/12"), 20, &taken), Some(net("172.16.16.0/20")));
    }

    #[test]
    fn the_first_free_address_of_two_sets_is_that_of_their_union() {
        let n = net("10.0.0.0/27");
        let addr = |k: u32| Ipv4Addr::from(u32::from(n.network()) + k);
        // Every split of the same taken addresses between the recorded and the picked.
        let taken: Vec<u32> = vec![1, 2, 3, 5, 6, 9, 27];
        for mask in 0u32..(1 << taken.len()) {
            let (mut used, mut picked, mut union) = (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
            for (bit, k) in taken.iter().enumerate() {
                if mask & (1 << bit) != 0 {
                    used.insert(addr(*k))
                } else {
                    picked.insert(addr(*k))
                };
                union.insert(addr(*k));
            }
            assert_eq!(first_free_of(&n, &used, &picked), first_free(&n, &union), "{used:?} {picked:?}");
            assert_eq!(first_free_of(&n, &used, &picked), Some(addr(4)));
        }
        // Full between them.
        let used: BTreeSet<Ipv4Addr> = (1..=14).map(addr).collect();
        let picked: BTreeSet<Ipv4Addr> = (15..=28).map(addr).collect();
        assert_eq!(first_free_of(&n, &used, &picked), None);
    }
}
