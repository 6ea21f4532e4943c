//! Address arithmetic of VPCs and vSwitches: which CIDR blocks a VPC or a vSwitch may have,
//! which addresses of a vSwitch are reserved, and the lowest free one.

use std::collections::{BTreeMap, BTreeSet};
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

/// A set of IPv4 addresses kept as runs of consecutive addresses. Instances take the lowest free
/// address of their vSwitch, so a VPC's addresses are a few long runs: the lowest free address
/// is found in logarithmic time however many are taken below it (a set of single addresses had
/// to be walked from the block's start, which made filling a vSwitch quadratic).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressRuns {
    /// First address of each run → its last (inclusive); runs neither overlap nor touch.
    runs: BTreeMap<u32, u32>,
    len: usize,
}

impl AddressRuns {
    /// The run holding `x`, if any.
    fn run_of(&self, x: u32) -> Option<(u32, u32)> {
        self.runs.range(..=x).next_back().filter(|(_, last)| **last >= x).map(|(first, last)| (*first, *last))
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        self.run_of(u32::from(ip)).is_some()
    }

    /// Add an address; false if it was there.
    pub fn insert(&mut self, ip: Ipv4Addr) -> bool {
        let x = u32::from(ip);
        if self.run_of(x).is_some() {
            return false;
        }
        let (mut first, mut last) = (x, x);
        if let Some((before, _)) = x.checked_sub(1).and_then(|b| self.run_of(b)) {
            self.runs.remove(&before);
            first = before;
        }
        if let Some(after) = x.checked_add(1).and_then(|a| self.runs.remove(&a)) {
            last = after;
        }
        self.runs.insert(first, last);
        self.len += 1;
        true
    }

    /// Take an address out; false if it was not there.
    pub fn remove(&mut self, ip: Ipv4Addr) -> bool {
        let x = u32::from(ip);
        let Some((first, last)) = self.run_of(x) else { return false };
        self.runs.remove(&first);
        if first < x {
            self.runs.insert(first, x - 1);
        }
        if x < last {
            self.runs.insert(x + 1, last);
        }
        self.len -= 1;
        true
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many of the addresses lie in `net`.
    pub fn count_in(&self, net: &Ipv4Net) -> usize {
        let (lo, hi) = (u32::from(net.network()), u32::from(net.broadcast()));
        let from = self.run_of(lo).map(|(first, _)| first).unwrap_or(lo);
        self.runs.range(from..=hi).map(|(first, last)| (*last.min(&hi) - *first.max(&lo)) as usize + 1).sum()
    }

    /// The lowest address from `x` up that the set does not hold (`None`: none below 2³²).
    fn free_from(&self, x: u32) -> Option<u32> {
        match self.run_of(x) {
            Some((_, last)) => last.checked_add(1),
            None => Some(x),
        }
    }
}

impl FromIterator<Ipv4Addr> for AddressRuns {
    fn from_iter<I: IntoIterator<Item = Ipv4Addr>>(iter: I) -> Self {
        let mut runs = AddressRuns::default();
        for ip in iter {
            runs.insert(ip);
        }
        runs
    }
}

/// The lowest usable address of the block that `used` does not hold.
pub fn first_free(net: &Ipv4Net, used: &AddressRuns) -> Option<Ipv4Addr> {
    first_free_of(net, used, &BTreeSet::new())
}

/// The lowest usable address of the block that neither `used` nor `picked` holds (addresses
/// recorded, and the few being given out by the same decision), without merging the sets:
/// a jump over a run of `used` per address of `picked` in the way, at most.
pub fn first_free_of(net: &Ipv4Net, used: &AddressRuns, picked: &BTreeSet<Ipv4Addr>) -> Option<Ipv4Addr> {
    let first = u32::from(net.network()) + 1;
    let last = u32::from(net.broadcast()).checked_sub(3)?;
    let mut candidate = first;
    loop {
        candidate = used.free_from(candidate)?;
        if candidate > last || !picked.contains(&Ipv4Addr::from(candidate)) {
            break;
        }
        candidate += 1;
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
        let mut used = AddressRuns::default();
        let mut got = Vec::new();
        while let Some(ip) = first_free(&n, &used) {
            used.insert(ip);
            got.push(ip.octets()[3]);
        }
        assert_eq!(got, [1, 2, 3, 4], ".5 is the gateway, .6 and .7 reserved");
        used.remove(Ipv4Addr::new(10, 0, 0, 2));
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
            let (mut used, mut picked, mut union) = (AddressRuns::default(), BTreeSet::new(), AddressRuns::default());
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
        let used: AddressRuns = (1..=14).map(addr).collect();
        let picked: BTreeSet<Ipv4Addr> = (15..=28).map(addr).collect();
        assert_eq!(first_free_of(&n, &used, &picked), None);
    }

    /// The lowest free address by walking every address of the block.
    fn first_free_by_walking(n: &Ipv4Net, taken: &BTreeSet<Ipv4Addr>) -> Option<Ipv4Addr> {
        let (first, last) = (u32::from(n.network()) + 1, u32::from(n.broadcast()) - 3);
        (first..=last).map(Ipv4Addr::from).find(|ip| !taken.contains(ip))
    }

    proptest::proptest! {
        /// Any sequence of additions and removals leaves the runs holding what a plain set
        /// holds, and the lowest free address the one a walk finds.
        #[test]
        fn runs_hold_what_a_set_holds(
            ops in proptest::collection::vec((proptest::bool::ANY, 0u32..40), 0..200),
            picked in proptest::collection::btree_set(0u32..40, 0..6),
        ) {
            let n = net("10.0.0.0/26");
            let addr = |k: u32| Ipv4Addr::from(u32::from(n.network()) + k);
            let (mut runs, mut set) = (AddressRuns::default(), BTreeSet::new());
            for (add, k) in ops {
                if add {
                    proptest::prop_assert_eq!(runs.insert(addr(k)), set.insert(addr(k)));
                } else {
                    proptest::prop_assert_eq!(runs.remove(addr(k)), set.remove(&addr(k)));
                }
            }
            proptest::prop_assert_eq!(runs.len(), set.len());
            for k in 0..64 {
                proptest::prop_assert_eq!(runs.contains(addr(k)), set.contains(&addr(k)));
            }
            for block in ["10.0.0.0/26", "10.0.0.0/28", "10.0.0.16/28", "10.0.0.8/29", "10.0.0.32/27"] {
                let b = net(block);
                let in_block = set.iter().filter(|ip| b.contains(*ip)).count();
                proptest::prop_assert_eq!(runs.count_in(&b), in_block);
            }
            let picked: BTreeSet<Ipv4Addr> = picked.into_iter().map(addr).collect();
            let union: BTreeSet<Ipv4Addr> = set.union(&picked).copied().collect();
            proptest::prop_assert_eq!(first_free_of(&n, &runs, &picked), first_free_by_walking(&n, &union));
        }
    }
}
