//! Usage events and the billable intervals derived from them.
//!
//! Every lifecycle transition of an instance produces one append-only event with an idempotency
//! key. Intervals are derived from the log alone: replaying an event (same key) or replaying the
//! whole log changes nothing.

use std::collections::HashMap;

pub use feiyun_domain::usage::{Charge, EventKind, UsageEvent};

/// What an interval charges for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Item {
    /// vCPU, memory and GPU of the instance type.
    Compute,
    /// The system disk.
    Disk,
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

/// Billable intervals from an event log, cut at `until_s` for what is still open.
/// Events are ordered by (time, kind, key) per instance; a duplicate key is dropped.
pub fn intervals(events: &[UsageEvent], until_s: i64) -> Vec<Interval> {
    let mut by_instance: HashMap<&str, Vec<&UsageEvent>> = HashMap::new();
    for e in events {
        by_instance.entry(e.instance_id.as_str()).or_default().push(e);
    }
    let mut instances: Vec<(&str, Vec<&UsageEvent>)> = by_instance.into_iter().collect();
    instances.sort_unstable_by_key(|(id, _)| *id);
    let mut out = Vec::new();
    for (_, mut evs) in instances {
        evs.sort_by(|a, b| (a.at_s, a.kind, &a.key).cmp(&(b.at_s, b.kind, &b.key)));
        // A replayed event has the same key as the original: keep one. Keys are per instance and
        // an event's key fixes its instant and kind, so duplicates sort next to each other.
        evs.dedup_by(|a, b| a.key == b.key);
        let mut compute_since: Option<i64> = None;
        let mut disk_since: Option<i64> = None;
        let mut released = false;
        // The charge in force: the first event's, until a Convert changes it.
        let mut charge = evs.first().map(|e| e.charge).unwrap_or_default();
        let push = |out: &mut Vec<Interval>, e: &UsageEvent, charge: Charge, item: Item, from: i64, to: i64| {
            if to > from {
                out.push(Interval {
                    account_id: e.account_id.clone(),
                    instance_id: e.instance_id.clone(),
                    item,
                    instance_type: e.instance_type.clone(),
                    disk_category: e.disk_category.clone(),
                    disk_gib: e.disk_gib,
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
            let t = e.at_s.min(until_s);
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
                        push(&mut out, e, charge, Item::Compute, s, t);
                    }
                }
                EventKind::StopKeepCharging => {}
                EventKind::Convert => {
                    // Usage up to now is charged the old way, from now on the new way.
                    if let Some(s) = compute_since.take() {
                        push(&mut out, e, charge, Item::Compute, s, t);
                        compute_since = Some(t);
                    }
                    if let Some(s) = disk_since.take() {
                        push(&mut out, e, charge, Item::Disk, s, t);
                        disk_since = Some(t);
                    }
                    charge = e.charge;
                }
                EventKind::Release => {
                    if let Some(s) = compute_since.take() {
                        push(&mut out, e, charge, Item::Compute, s, t);
                    }
                    if let Some(s) = disk_since.take() {
                        push(&mut out, e, charge, Item::Disk, s, t);
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
                    push(&mut empty, last, charge, item, s, s + 1);
                    out.extend(empty.into_iter().map(|i| Interval { end_s: s, ..i }));
                } else {
                    push(&mut out, last, charge, item, s, until_s);
                }
            }
        }
    }
    out
}
