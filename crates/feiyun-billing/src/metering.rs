//! Usage events and the billable intervals derived from them.
//!
//! Every lifecycle transition of an instance produces one append-only event with an idempotency
//! key and a per-instance sequence. Intervals are derived from the log alone, each instance's
//! events taken in the order they happened (by sequence, whatever the clock's resolution):
//! replaying an event (same key), replaying the whole log or reading it in any order changes
//! nothing.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

pub use feiyun_domain::usage::{Charge, EventKind, StorageEvent, StorageItem, StorageUsage, UsageEvent};

/// What an interval charges for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Item {
    /// vCPU, memory and GPU of the instance type.
    Compute,
    /// The system disk.
    Disk,
    /// A data disk (its own usage log; `instance_id` is the disk's id).
    DataDisk,
    /// A snapshot (its own usage log; `instance_id` is the snapshot's id).
    Snapshot,
    /// Public traffic out of an instance: metered bytes per clock hour, never an interval.
    Traffic,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Interval {
    pub account_id: String,
    pub instance_id: String,
    pub item: Item,
    pub instance_type: String,
    pub disk_category: String,
    pub disk_gib: u64,
    pub zone_id: String,
    pub charge: Charge,
    /// [start, end) in unix seconds.
    pub start_s: i64,
    pub end_s: i64,
}

impl Interval {
    pub fn seconds(&self) -> i64 {
        self.end_s - self.start_s
    }

    /// The part of the interval inside [from, to), if any. An empty interval (an instance open at
    /// the very end of the log) is kept when it lies within [from, to].
    pub fn clip(&self, from_s: i64, to_s: i64) -> Option<Interval> {
        if self.start_s == self.end_s {
            return (from_s <= self.start_s && self.start_s <= to_s).then(|| self.clone());
        }
        let (s, e) = (self.start_s.max(from_s), self.end_s.min(to_s));
        (e > s).then(|| Interval { start_s: s, end_s: e, ..self.clone() })
    }
}

/// The order of one instance's events: what happened first comes first. The sequence decides;
/// the rest only makes the order total (two events of an instance never share a sequence), so
/// the result never depends on the order the log was read in.
fn happened_before(a: &UsageEvent, b: &UsageEvent) -> Ordering {
    fn rank(e: &UsageEvent) -> (u64, i64, EventKind, &str, Charge, &str, &str, &str, u64, &str) {
        (
            e.seq,
            e.at_s,
            e.kind,
            &e.key,
            e.charge,
            &e.account_id,
            &e.instance_type,
            &e.disk_category,
            e.disk_gib,
            &e.zone_id,
        )
    }
    rank(a).cmp(&rank(b))
}

/// Billable intervals from an event log, cut at `until_s` for what is still open.
///
/// Each instance's events are taken in sequence order; an event whose key was seen already is a
/// replay and is dropped. An instant never goes back within an instance: an event stamped
/// before the one preceding it (a clock stepped back) counts at that earlier event's instant, so
/// one instance's intervals never overlap.
pub fn intervals(events: &[UsageEvent], until_s: i64) -> Vec<Interval> {
    let mut by_instance: HashMap<&str, Vec<&UsageEvent>> = HashMap::new();
    for e in events {
        by_instance.entry(e.instance_id.as_str()).or_default().push(e);
    }
    let mut instances: Vec<(&str, Vec<&UsageEvent>)> = by_instance.into_iter().collect();
    instances.sort_unstable_by_key(|(id, _)| *id);
    let mut out = Vec::new();
    for (_, mut evs) in instances {
        evs.sort_by(|a, b| happened_before(a, b));
        // A replayed event has the same key as the original: keep the first.
        let mut seen = HashSet::new();
        evs.retain(|e| seen.insert(e.key.as_str()));
        let mut clock = i64::MIN;
        let mut compute_since: Option<i64> = None;
        let mut disk_since: Option<i64> = None;
        let mut released = false;
        // The charge in force: the first event's, until a Convert changes it.
        let mut charge = evs.first().map(|e| e.charge).unwrap_or_default();
        // The system disk in force: as created, then as last resized.
        let mut disk = evs.first().map(|e| (e.disk_category.clone(), e.disk_gib)).unwrap_or_default();
        let push = |out: &mut Vec<Interval>,
                    e: &UsageEvent,
                    disk: &(String, u64),
                    charge: Charge,
                    item: Item,
                    from: i64,
                    to: i64| {
            if to > from {
                out.push(Interval {
                    account_id: e.account_id.clone(),
                    instance_id: e.instance_id.clone(),
                    item,
                    instance_type: e.instance_type.clone(),
                    disk_category: disk.0.clone(),
                    disk_gib: disk.1,
                    zone_id: e.zone_id.clone(),
                    charge,
                    start_s: from,
                    end_s: to,
                });
            }
        };
        let Some(last) = evs.last().copied() else { continue };
        for e in &evs {
            if released {
                break;
            }
            clock = clock.max(e.at_s);
            let t = clock.min(until_s);
            match e.kind {
                EventKind::Create => {
                    disk_since.get_or_insert(t);
                }
                EventKind::Start => {
                    disk_since.get_or_insert(t);
                    compute_since.get_or_insert(t);
                }
                EventKind::StopCharging => {
                    if let Some(s) = compute_since.take() {
                        push(&mut out, e, &disk, charge, Item::Compute, s, t);
                    }
                }
                EventKind::StopKeepCharging => {}
                EventKind::Convert => {
                    // Usage up to now is charged the old way, from now on the new way.
                    if let Some(s) = compute_since.take() {
                        push(&mut out, e, &disk, charge, Item::Compute, s, t);
                        compute_since = Some(t);
                    }
                    if let Some(s) = disk_since.take() {
                        push(&mut out, e, &disk, charge, Item::Disk, s, t);
                        disk_since = Some(t);
                    }
                    charge = e.charge;
                }
                EventKind::Resize => {
                    // The disk up to now at its old size, from now on at the new one.
                    if let Some(s) = disk_since.take() {
                        push(&mut out, e, &disk, charge, Item::Disk, s, t);
                        disk_since = Some(t);
                    }
                    disk = (e.disk_category.clone(), e.disk_gib);
                }
                EventKind::Release => {
                    if let Some(s) = compute_since.take() {
                        push(&mut out, e, &disk, charge, Item::Compute, s, t);
                    }
                    if let Some(s) = disk_since.take() {
                        push(&mut out, e, &disk, charge, Item::Disk, s, t);
                    }
                    released = true;
                }
            }
        }
        // Still open at `until`: kept even when empty, so an instance started this very second
        // shows in its bill with no usage yet.
        for (since, item) in [(compute_since, Item::Compute), (disk_since, Item::Disk)] {
            if let Some(s) = since {
                if s == until_s {
                    let mut empty = Vec::new();
                    push(&mut empty, last, &disk, charge, item, s, s + 1);
                    out.extend(empty.into_iter().map(|i| Interval { end_s: s, ..i }));
                } else {
                    push(&mut out, last, &disk, charge, item, s, until_s);
                }
            }
        }
    }
    out
}

/// Billable intervals of data disks and snapshots from their usage log, cut at `until_s` for what
/// still exists. Each resource's events are taken in sequence order, a replayed key dropped;
/// a resize closes the interval at the old size and opens one at the new; an instant never
/// goes back within a resource. Storage is always pay-as-you-go.
pub fn storage_intervals(usage: &[StorageUsage], until_s: i64) -> Vec<Interval> {
    let mut by_resource: HashMap<&str, Vec<&StorageUsage>> = HashMap::new();
    for u in usage {
        by_resource.entry(u.resource_id.as_str()).or_default().push(u);
    }
    let mut resources: Vec<(&str, Vec<&StorageUsage>)> = by_resource.into_iter().collect();
    resources.sort_unstable_by_key(|(id, _)| *id);
    let mut out = Vec::new();
    for (_, mut evs) in resources {
        evs.sort_by(|a, b| (a.seq, a.at_s, a.kind, &a.key).cmp(&(b.seq, b.at_s, b.kind, &b.key)));
        let mut seen = HashSet::new();
        evs.retain(|e| seen.insert(e.key.as_str()));
        let interval = |e: &StorageUsage, from: i64, to: i64| Interval {
            account_id: e.account_id.clone(),
            instance_id: e.resource_id.clone(),
            item: match e.item {
                StorageItem::DataDisk => Item::DataDisk,
                StorageItem::Snapshot => Item::Snapshot,
            },
            instance_type: String::new(),
            disk_category: e.category.clone(),
            disk_gib: e.gib,
            zone_id: e.zone_id.clone(),
            charge: Charge::PayAsYouGo,
            start_s: from,
            end_s: to,
        };
        let mut clock = i64::MIN;
        // The event that opened the interval now open, and when.
        let mut open: Option<(&StorageUsage, i64)> = None;
        let mut released = false;
        for e in &evs {
            if released {
                break;
            }
            clock = clock.max(e.at_s);
            let t = clock.min(until_s);
            if let Some((o, since)) = open.take() {
                if t > since {
                    out.push(interval(o, since, t));
                }
            }
            match e.kind {
                StorageEvent::Create | StorageEvent::Resize => open = Some((e, t)),
                StorageEvent::Release => released = true,
            }
        }
        if let Some((o, since)) = open {
            // Still there at `until`: kept even when empty, as instances are.
            out.push(interval(o, since, until_s.max(since)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;
    use crate::money::Money;
    use crate::prices::tests::BOOK;
    use crate::prices::PriceBook;
    use crate::rating::tests::size;
    use crate::rating::{bill, Market};

    /// 2027-01-15T08:00:00Z, in milliseconds.
    const T0_MS: i64 = 1_800_000_000_000;

    fn event(id: &str, seq: u64, at_ms: i64, kind: EventKind, charge: Charge) -> UsageEvent {
        UsageEvent {
            key: UsageEvent::key_for(id, kind, at_ms, seq),
            instance_id: id.into(),
            account_id: "a".into(),
            instance_type: "ecs.g7.large".into(),
            disk_category: "cloud_essd".into(),
            disk_gib: 40,
            zone_id: "z".into(),
            charge,
            at_s: at_ms.div_euclid(1000),
            kind,
            seq,
        }
    }

    /// One transition: how long after the previous one (milliseconds), what, and the charge a
    /// conversion switches to.
    #[derive(Debug, Clone)]
    struct Step {
        after_ms: i64,
        kind: EventKind,
        to: Charge,
    }

    /// The log the control plane writes for one instance: created with `charge`, then each step,
    /// numbered in the order they happened. Conversions carry the new charge, every other event
    /// the charge in force.
    fn log_of(id: &str, charge: Charge, steps: &[Step]) -> Vec<UsageEvent> {
        let (mut t, mut charge) = (T0_MS, charge);
        let mut log = vec![event(id, 1, t, EventKind::Create, charge)];
        for (s, seq) in steps.iter().zip(2..) {
            t += s.after_ms;
            if s.kind == EventKind::Convert {
                charge = s.to;
            }
            log.push(event(id, seq, t, s.kind, charge));
        }
        log
    }

    /// The reference: second by second, what the instance held after every transition stamped
    /// at or before that second, applied in the order they happened. Seconds per (item, charge).
    fn reference(log: &[UsageEvent], until_s: i64) -> BTreeMap<(Item, Charge), i64> {
        let mut out = BTreeMap::new();
        let Some(first) = log.first() else { return out };
        let (mut compute, mut disk, mut released, mut charge) = (false, false, false, first.charge);
        let mut next = log.iter().peekable();
        for s in first.at_s..until_s {
            while let Some(e) = next.next_if(|e| e.at_s <= s) {
                match e.kind {
                    _ if released => {}
                    EventKind::Create => disk = true,
                    EventKind::Start => (compute, disk) = (true, true),
                    EventKind::StopCharging => compute = false,
                    EventKind::StopKeepCharging => {}
                    EventKind::Convert => charge = e.charge,
                    EventKind::Resize => {}
                    EventKind::Release => (compute, disk, released) = (false, false, true),
                }
            }
            for (held, item) in [(compute, Item::Compute), (disk, Item::Disk)] {
                if held {
                    *out.entry((item, charge)).or_default() += 1;
                }
            }
        }
        out
    }

    fn seconds_of(iv: &[Interval], id: &str) -> BTreeMap<(Item, Charge), i64> {
        let mut out = BTreeMap::new();
        for i in iv.iter().filter(|i| i.instance_id == id) {
            *out.entry((i.item, i.charge)).or_default() += i.seconds();
        }
        out.retain(|_, s| *s > 0);
        out
    }

    fn step() -> impl Strategy<Value = Step> {
        // Most transitions fall in the same millisecond or second as the one before.
        let after_ms = prop_oneof![4 => Just(0i64), 2 => 0i64..3, 2 => 0i64..2_500, 1 => 0i64..600_000];
        let kind = prop_oneof![
            3 => Just(EventKind::Start),
            2 => Just(EventKind::StopCharging),
            2 => Just(EventKind::StopKeepCharging),
            1 => Just(EventKind::Convert),
            1 => Just(EventKind::Release),
        ];
        let to = prop_oneof![Just(Charge::PayAsYouGo), Just(Charge::Subscription), Just(Charge::Spot)];
        (after_ms, kind, to).prop_map(|(after_ms, kind, to)| Step { after_ms, kind, to })
    }

    /// The reported defect: stopped in economical mode and started again within one second, the
    /// instance must go on being charged for compute.
    #[test]
    fn a_stop_and_a_start_in_the_same_second_follow_their_sequence() {
        let t = T0_MS + 100_000;
        let log = vec![
            event("i", 1, T0_MS, EventKind::Create, Charge::PayAsYouGo),
            event("i", 2, T0_MS, EventKind::Start, Charge::PayAsYouGo),
            event("i", 3, t + 400, EventKind::StopCharging, Charge::PayAsYouGo),
            event("i", 4, t + 400, EventKind::Start, Charge::PayAsYouGo),
        ];
        let until = T0_MS / 1000 + 3600;
        assert_eq!(seconds_of(&intervals(&log, until), "i").get(&(Item::Compute, Charge::PayAsYouGo)), Some(&3600));
        // Stopped again in the same millisecond: a second StopCharging, with its own key.
        let mut again = log.clone();
        again.push(event("i", 5, t + 400, EventKind::StopCharging, Charge::PayAsYouGo));
        assert_ne!(again[2].key, again[4].key);
        assert_eq!(seconds_of(&intervals(&again, until), "i").get(&(Item::Compute, Charge::PayAsYouGo)), Some(&100));
    }

    /// A clock stepped back between two transitions: the later one counts at the earlier
    /// instant, and nothing is charged twice.
    #[test]
    fn an_instant_never_goes_back_within_an_instance() {
        let log = vec![
            event("i", 1, T0_MS, EventKind::Start, Charge::PayAsYouGo),
            event("i", 2, T0_MS + 50_000, EventKind::StopCharging, Charge::PayAsYouGo),
            event("i", 3, T0_MS + 20_000, EventKind::Start, Charge::PayAsYouGo),
            event("i", 4, T0_MS + 60_000, EventKind::Release, Charge::PayAsYouGo),
        ];
        let s = seconds_of(&intervals(&log, i64::MAX), "i");
        assert_eq!(s.get(&(Item::Compute, Charge::PayAsYouGo)), Some(&60));
        assert_eq!(s.get(&(Item::Disk, Charge::PayAsYouGo)), Some(&60));
    }

    fn storage(id: &str, item: StorageItem, seq: u64, at_s: i64, kind: StorageEvent, gib: u64) -> StorageUsage {
        StorageUsage {
            key: StorageUsage::key_for(id, kind, at_s * 1000, seq),
            resource_id: id.into(),
            account_id: "a".into(),
            item,
            category: if item == StorageItem::Snapshot { "snapshot".into() } else { "cloud_essd".into() },
            gib,
            zone_id: "z".into(),
            at_s,
            kind,
            seq,
        }
    }

    /// A data disk of 20 GiB grown to 50 after an hour and released two hours later; a snapshot
    /// of 2 GiB kept on. Read in any order, replayed, the same intervals.
    #[test]
    fn storage_is_billed_at_each_size_for_its_time() {
        let log = vec![
            storage("d-1", StorageItem::DataDisk, 1, 0, StorageEvent::Create, 20),
            storage("d-1", StorageItem::DataDisk, 2, 3600, StorageEvent::Resize, 50),
            storage("d-1", StorageItem::DataDisk, 3, 10_800, StorageEvent::Release, 50),
            storage("s-1", StorageItem::Snapshot, 2, 1800, StorageEvent::Create, 2),
        ];
        let iv = storage_intervals(&log, 14_400);
        let shape: Vec<(&str, Item, u64, i64, i64)> =
            iv.iter().map(|i| (i.instance_id.as_str(), i.item, i.disk_gib, i.start_s, i.end_s)).collect();
        assert_eq!(
            shape,
            [
                ("d-1", Item::DataDisk, 20, 0, 3600),
                ("d-1", Item::DataDisk, 50, 3600, 10_800),
                ("s-1", Item::Snapshot, 2, 1800, 14_400)
            ]
        );
        let mut shuffled: Vec<StorageUsage> = log.iter().rev().cloned().collect();
        shuffled.extend(log.iter().cloned());
        assert_eq!(storage_intervals(&shuffled, 14_400), iv);
        // By hand, in the test book (ESSD 0.001 per GiB-hour, snapshots 0.0002): 20 × 0.001 +
        // 50 × 2 × 0.001 = 0.12 for the disk; 2 × 3.5 × 0.0002 = 0.0014 for the snapshot.
        let book = PriceBook::from_toml(BOOK).expect("valid");
        let b = bill(&iv, book.region("r1").expect("region"), &size, &Market::default()).expect("rates");
        let get = |id: &str, item| b.get(&("a".to_string(), id.to_string(), item)).map(|x| x.1);
        assert_eq!(get("d-1", Item::DataDisk), Some(Money::from_micros(120_000)));
        assert_eq!(get("s-1", Item::Snapshot), Some(Money::from_micros(1_400)));
    }

    /// A system disk of 40 GiB resized to 100 GiB after an hour and released an hour later: an
    /// hour at each size (ESSD at 0.001 per GiB-hour in the test book: 0.04 + 0.1).
    #[test]
    fn a_resized_system_disk_is_billed_at_each_size_for_its_time() {
        let mut resized = event("i", 2, T0_MS + 3_600_000, EventKind::Resize, Charge::PayAsYouGo);
        resized.disk_gib = 100;
        let mut released = event("i", 3, T0_MS + 7_200_000, EventKind::Release, Charge::PayAsYouGo);
        released.disk_gib = 100;
        let log = vec![event("i", 1, T0_MS, EventKind::Create, Charge::PayAsYouGo), resized, released];
        let iv = intervals(&log, i64::MAX);
        let disks: Vec<(u64, i64)> =
            iv.iter().filter(|i| i.item == Item::Disk).map(|i| (i.disk_gib, i.seconds())).collect();
        assert_eq!(disks, [(40, 3600), (100, 3600)]);
        let book = PriceBook::from_toml(BOOK).expect("valid");
        let b = bill(&iv, book.region("r1").expect("region"), &size, &Market::default()).expect("rates");
        let disk = b.get(&("a".to_string(), "i".to_string(), Item::Disk)).map(|x| x.1);
        assert_eq!(disk, Some(Money::from_micros(40_000 + 100_000)));
    }

    proptest! {
        /// Billed seconds of two interleaved instances equal the reference's, per item and charge;
        /// pay-as-you-go and spot compute (the market unknown: the list price) cost exactly
        /// their seconds; keys are unique; shuffling the log or replaying events changes nothing.
        #[test]
        fn billed_seconds_follow_what_happened(
            a in prop::collection::vec(step(), 0..40),
            b in prop::collection::vec(step(), 0..40),
            charge in prop_oneof![Just(Charge::PayAsYouGo), Just(Charge::Spot), Just(Charge::Subscription)],
            cut in -20_000i64..2_000,
            order in prop::collection::vec(any::<u32>(), 82),
            replays in prop::collection::vec(any::<prop::sample::Index>(), 0..10),
        ) {
            let (la, lb) = (log_of("i-a", charge, &a), log_of("i-b", Charge::PayAsYouGo, &b));
            let last = la.iter().chain(&lb).map(|e| e.at_s).max().unwrap_or(0);
            let until = last + cut;
            let log: Vec<UsageEvent> = la.iter().chain(&lb).cloned().collect();
            let keys: HashSet<&str> = log.iter().map(|e| e.key.as_str()).collect();
            prop_assert_eq!(keys.len(), log.len(), "one key per transition");

            let iv = intervals(&log, until);
            for (id, l) in [("i-a", &la), ("i-b", &lb)] {
                let want = reference(l, until);
                prop_assert_eq!(seconds_of(&iv, id), want.clone());
                let book = PriceBook::from_toml(BOOK).expect("valid");
                let p = book.region("r1").expect("region");
                let billed = bill(&iv, p, &size, &Market::default()).expect("rates");
                let paid = |item| -> i64 {
                    [Charge::PayAsYouGo, Charge::Spot].iter().map(|c| want.get(&(item, *c)).copied().unwrap_or(0)).sum()
                };
                let amount = |item| billed.get(&("a".to_string(), id.to_string(), item)).map(|x| x.1).unwrap_or(Money::ZERO);
                prop_assert_eq!(amount(Item::Compute), Money::per_second(529_600, paid(Item::Compute) as i128));
                prop_assert_eq!(amount(Item::Disk), Money::per_second(40_000, paid(Item::Disk) as i128));
            }

            let mut shuffled: Vec<(u32, UsageEvent)> = order.iter().copied().zip(log.iter().cloned()).collect();
            shuffled.sort_by_key(|(k, _)| *k);
            let mut shuffled: Vec<UsageEvent> = shuffled.into_iter().map(|(_, e)| e).collect();
            prop_assert_eq!(intervals(&shuffled, until), iv.clone());
            shuffled.extend(replays.iter().map(|r| log[r.index(log.len())].clone()));
            prop_assert_eq!(intervals(&shuffled, until), iv);
        }
    }
}
