//! Usage events: the append-only record of what an instance held and when. Billing derives every
//! charge from these, never from mutable instance rows.

/// What happened to an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventKind {
    /// Created with its system disk (not running yet).
    Create,
    /// Began running.
    Start,
    /// Stopped in economical mode: compute stops charging, disks go on.
    StopCharging,
    /// Stopped keeping its resources: everything goes on charging.
    StopKeepCharging,
    /// Released: nothing charges any more.
    Release,
    /// The instance changed how it is paid (the event's `charge` applies from now on).
    Convert,
    /// The system disk was resized: from now on it is billed at the event's `disk_gib`.
    Resize,
}

impl EventKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            EventKind::Create => "Create",
            EventKind::Start => "Start",
            EventKind::StopCharging => "StopCharging",
            EventKind::StopKeepCharging => "StopKeepCharging",
            EventKind::Release => "Release",
            EventKind::Convert => "Convert",
            EventKind::Resize => "Resize",
        }
    }

    pub fn parse(s: &str) -> Option<EventKind> {
        [
            EventKind::Create,
            EventKind::Start,
            EventKind::StopCharging,
            EventKind::StopKeepCharging,
            EventKind::Release,
            EventKind::Convert,
            EventKind::Resize,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// How the usage of an event is charged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Charge {
    /// Per second at the list price.
    #[default]
    PayAsYouGo,
    /// Paid up front: usage is recorded but not charged per second.
    Subscription,
    /// Per second at the zone's spot market price.
    Spot,
}

impl Charge {
    pub fn as_str(&self) -> &'static str {
        match self {
            Charge::PayAsYouGo => "PayAsYouGo",
            Charge::Subscription => "Subscription",
            Charge::Spot => "Spot",
        }
    }

    pub fn parse(s: &str) -> Option<Charge> {
        [Charge::PayAsYouGo, Charge::Subscription, Charge::Spot].into_iter().find(|k| k.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageEvent {
    /// Unique per transition; a duplicate is ignored wherever events are stored or rated.
    pub key: String,
    pub instance_id: String,
    pub account_id: String,
    pub instance_type: String,
    pub disk_category: String,
    pub disk_gib: u64,
    /// Zone the instance runs in (spot prices are per zone).
    pub zone_id: String,
    pub charge: Charge,
    /// Unix seconds.
    pub at_s: i64,
    pub kind: EventKind,
    /// Where the transition falls among the instance's changes: the instance's revision after
    /// it. An instance's events are ordered by this, never by `at_s` (several transitions can
    /// share a second, or a millisecond). One transition makes at most one event, so two events
    /// of an instance never share it.
    pub seq: u64,
}

impl UsageEvent {
    /// The idempotency key of a transition: instance, kind, instant (milliseconds) and
    /// sequence. A replay of the transition has the same key; two transitions never do, even of
    /// the same kind within the same millisecond.
    pub fn key_for(instance_id: &str, kind: EventKind, at_ms: i64, seq: u64) -> String {
        format!("{instance_id}:{}:{at_ms}:{seq}", kind.as_str())
    }
}

/// What a storage usage event is about: storage billed on its own, apart from instances (a
/// system disk is billed with its instance's events).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StorageItem {
    DataDisk,
    Snapshot,
}

impl StorageItem {
    pub fn as_str(&self) -> &'static str {
        match self {
            StorageItem::DataDisk => "DataDisk",
            StorageItem::Snapshot => "Snapshot",
        }
    }
    pub fn parse(s: &str) -> Option<StorageItem> {
        [StorageItem::DataDisk, StorageItem::Snapshot].into_iter().find(|k| k.as_str() == s)
    }
}

/// What happened to a piece of storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StorageEvent {
    /// It exists from now on, at the event's size.
    Create,
    /// Its size changed to the event's.
    Resize,
    /// It no longer exists.
    Release,
}

impl StorageEvent {
    pub fn as_str(&self) -> &'static str {
        match self {
            StorageEvent::Create => "Create",
            StorageEvent::Resize => "Resize",
            StorageEvent::Release => "Release",
        }
    }
    pub fn parse(s: &str) -> Option<StorageEvent> {
        [StorageEvent::Create, StorageEvent::Resize, StorageEvent::Release].into_iter().find(|k| k.as_str() == s)
    }
}

/// One change of a data disk or a snapshot: append-only, keyed and sequenced like an instance's
/// usage events (the sequence is the resource's revision after the change).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageUsage {
    pub key: String,
    /// The disk or snapshot.
    pub resource_id: String,
    pub account_id: String,
    pub item: StorageItem,
    /// The disk category, or `snapshot`.
    pub category: String,
    /// Size in whole GiB from this event on.
    pub gib: u64,
    pub zone_id: String,
    /// Unix seconds.
    pub at_s: i64,
    pub kind: StorageEvent,
    pub seq: u64,
}

impl StorageUsage {
    /// The idempotency key of a change: resource, kind, instant (milliseconds) and sequence.
    pub fn key_for(resource_id: &str, kind: StorageEvent, at_ms: i64, seq: u64) -> String {
        format!("{resource_id}:{}:{at_ms}:{seq}", kind.as_str())
    }
}

/// What a ledger entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LedgerKind {
    /// Money paid in (positive).
    TopUp,
    /// Pay-as-you-go usage settled for an hour (negative).
    PayAsYouGo,
    /// A subscription bought up front (negative).
    Subscription,
    /// A subscription renewed (negative).
    Renewal,
    /// Unused subscription time paid back (positive).
    Refund,
    /// A step taken by the platform (stop or release for arrears, expiry, spot reclaim): zero.
    Notice,
}

impl LedgerKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            LedgerKind::TopUp => "TopUp",
            LedgerKind::PayAsYouGo => "PayAsYouGo",
            LedgerKind::Subscription => "Subscription",
            LedgerKind::Renewal => "Renewal",
            LedgerKind::Refund => "Refund",
            LedgerKind::Notice => "Notice",
        }
    }

    pub fn parse(s: &str) -> Option<LedgerKind> {
        [
            LedgerKind::TopUp,
            LedgerKind::PayAsYouGo,
            LedgerKind::Subscription,
            LedgerKind::Renewal,
            LedgerKind::Refund,
            LedgerKind::Notice,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// One line of an account's ledger: append-only, keyed for idempotency. The balance is the sum
/// of `amount_cents` over the account's entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    pub key: String,
    pub account_id: String,
    /// Unix seconds.
    pub at_s: i64,
    pub kind: LedgerKind,
    /// Positive pays in, negative charges; in cents (0.01) of the region's currency.
    pub amount_cents: i64,
    /// The instance concerned, or empty.
    pub instance_id: String,
    /// Human-readable detail shown on invoices.
    pub detail: String,
}

/// Public traffic of an instance between two reports of its host: append-only and keyed (the
/// instance and the number of the counter reading that produced it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrafficUsage {
    pub key: String,
    pub instance_id: String,
    pub account_id: String,
    /// Unix seconds: when the control plane received the reading.
    pub at_s: i64,
    pub in_bytes: u64,
    pub out_bytes: u64,
}

/// The last absolute counters a host reported for an instance: the next reading is metered as
/// the difference (a smaller value, or another host, starts over from zero).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrafficCounter {
    pub instance_id: String,
    pub host_id: String,
    pub in_bytes: u64,
    pub out_bytes: u64,
    /// Readings that produced usage so far.
    pub seq: u64,
}

/// The spot market of a zone from `at_s` on: spot prices are `percent` of pay-as-you-go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpotMarketPoint {
    pub zone_id: String,
    pub at_s: i64,
    pub percent: u32,
}
