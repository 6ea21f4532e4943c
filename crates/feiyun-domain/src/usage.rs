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
}

impl EventKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            EventKind::Create => "Create",
            EventKind::Start => "Start",
            EventKind::StopCharging => "StopCharging",
            EventKind::StopKeepCharging => "StopKeepCharging",
            EventKind::Release => "Release",
        }
    }

    pub fn parse(s: &str) -> Option<EventKind> {
        [EventKind::Create, EventKind::Start, EventKind::StopCharging, EventKind::StopKeepCharging, EventKind::Release]
            .into_iter()
            .find(|k| k.as_str() == s)
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
    /// Unix seconds.
    pub at_s: i64,
    pub kind: EventKind,
}

impl UsageEvent {
    /// The idempotency key of a transition: instance, kind and instant (milliseconds).
    pub fn key_for(instance_id: &str, kind: EventKind, at_ms: i64) -> String {
        format!("{instance_id}:{}:{at_ms}", kind.as_str())
    }
}
