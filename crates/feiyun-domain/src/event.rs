//! System events: what the platform did to or saw of an instance, as ECS reports them
//! (DescribeInstanceHistoryEvents, DescribeInstancesFullStatus).

use crate::Instant;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// The instance's host stopped answering; the instance's state is unknown until it returns.
    /// (ECS: SystemFailure.Reboot, executing until the host is back.)
    HostUnreachable,
    /// The instance was re-created on another host from its image after its host failed; local
    /// disk contents are lost. (ECS: SystemFailure.Redeploy.)
    Redeployed,
}

impl EventKind {
    /// The ECS event type code.
    pub fn code(&self) -> &'static str {
        match self {
            EventKind::HostUnreachable => "SystemFailure.Reboot",
            EventKind::Redeployed => "SystemFailure.Redeploy",
        }
    }
    pub fn parse(code: &str) -> Option<EventKind> {
        [EventKind::HostUnreachable, EventKind::Redeployed].into_iter().find(|k| k.code() == code)
    }
}

/// Where an event is in its life (ECS EventCycleStatus).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventCycle {
    Executing,
    Executed,
    Canceled,
    Failed,
}

impl EventCycle {
    pub fn as_str(&self) -> &'static str {
        match self {
            EventCycle::Executing => "Executing",
            EventCycle::Executed => "Executed",
            EventCycle::Canceled => "Canceled",
            EventCycle::Failed => "Failed",
        }
    }
    pub fn parse(s: &str) -> Option<EventCycle> {
        [EventCycle::Executing, EventCycle::Executed, EventCycle::Canceled, EventCycle::Failed]
            .into_iter()
            .find(|c| c.as_str() == s)
    }
    pub fn is_final(&self) -> bool {
        *self != EventCycle::Executing
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SystemEvent {
    pub id: String,
    pub instance_id: String,
    pub account_id: String,
    pub kind: EventKind,
    pub cycle: EventCycle,
    /// Why, in words.
    pub reason: String,
    pub published_at: Instant,
    pub finished_at: Option<Instant>,
}
