//! Instances and their lifecycle state machine.
//!
//! The API-visible `status` follows the ECS states exactly (Pending, Starting, Running, Stopping,
//! Stopped). `desired` is the power state the user asked for; the host agent drives the runtime
//! towards it and reports what happened as [`AgentEvent`]s. Both user commands and agent events go
//! through [`InstanceStatus::apply`] / [`InstanceStatus::observe`], which are total functions over
//! (state, input) and are tested exhaustively.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum InstanceStatus {
    Pending,
    Starting,
    Running,
    Stopping,
    Stopped,
    /// Released: hidden from the API, kept until the host has cleaned up.
    Deleted,
}

impl InstanceStatus {
    pub const ALL: [InstanceStatus; 6] = [
        InstanceStatus::Pending,
        InstanceStatus::Starting,
        InstanceStatus::Running,
        InstanceStatus::Stopping,
        InstanceStatus::Stopped,
        InstanceStatus::Deleted,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            InstanceStatus::Pending => "Pending",
            InstanceStatus::Starting => "Starting",
            InstanceStatus::Running => "Running",
            InstanceStatus::Stopping => "Stopping",
            InstanceStatus::Stopped => "Stopped",
            InstanceStatus::Deleted => "Deleted",
        }
    }

    pub fn parse(s: &str) -> Option<InstanceStatus> {
        InstanceStatus::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// The power state the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PowerState {
    Running,
    Stopped,
    /// Released: everything on the host must go.
    Released,
}

impl PowerState {
    pub fn as_str(&self) -> &'static str {
        match self {
            PowerState::Running => "Running",
            PowerState::Stopped => "Stopped",
            PowerState::Released => "Released",
        }
    }
    pub fn parse(s: &str) -> Option<PowerState> {
        [PowerState::Running, PowerState::Stopped, PowerState::Released].into_iter().find(|x| x.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StoppedMode {
    KeepCharging,
    StopCharging,
}

impl StoppedMode {
    pub fn as_str(&self) -> &'static str {
        match self {
            StoppedMode::KeepCharging => "KeepCharging",
            StoppedMode::StopCharging => "StopCharging",
        }
    }
    pub fn parse(s: &str) -> Option<StoppedMode> {
        match s {
            "KeepCharging" => Some(StoppedMode::KeepCharging),
            "StopCharging" => Some(StoppedMode::StopCharging),
            _ => None,
        }
    }
}

/// How an instance is paid for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum ChargeType {
    /// Pay-as-you-go: per second, settled hourly against the balance.
    #[default]
    PostPaid,
    /// Subscription: paid up front for a term.
    PrePaid,
}

impl ChargeType {
    pub fn as_str(&self) -> &'static str {
        match self {
            ChargeType::PostPaid => "PostPaid",
            ChargeType::PrePaid => "PrePaid",
        }
    }
    pub fn parse(s: &str) -> Option<ChargeType> {
        match s {
            "PostPaid" => Some(ChargeType::PostPaid),
            "PrePaid" => Some(ChargeType::PrePaid),
            _ => None,
        }
    }
}

/// Spot bidding of a pay-as-you-go instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum SpotStrategy {
    #[default]
    NoSpot,
    /// Reclaimed when the market price rises above the limit.
    SpotWithPriceLimit,
    /// Pays the market price, whatever it is (never above pay-as-you-go).
    SpotAsPriceGo,
}

impl SpotStrategy {
    pub fn as_str(&self) -> &'static str {
        match self {
            SpotStrategy::NoSpot => "NoSpot",
            SpotStrategy::SpotWithPriceLimit => "SpotWithPriceLimit",
            SpotStrategy::SpotAsPriceGo => "SpotAsPriceGo",
        }
    }
}

/// Why the platform holds an instance (DescribeInstances `OperationLocks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LockReason {
    /// Overdue payment, or an expired subscription.
    #[serde(rename = "financial")]
    Financial,
    /// A spot instance outbid or out of stock, pending release.
    Recycling,
}

impl LockReason {
    pub fn as_str(&self) -> &'static str {
        match self {
            LockReason::Financial => "financial",
            LockReason::Recycling => "Recycling",
        }
    }
}

/// The commercial side of an instance: spot bid, subscription term, platform locks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Billing {
    pub spot_strategy: SpotStrategy,
    /// Highest hourly price accepted, in micro-units (SpotWithPriceLimit).
    pub spot_price_limit_micros: Option<i64>,
    /// Hours after creation during which a spot instance is not reclaimed (0 or 1).
    pub spot_duration_h: u32,
    /// Reclaim stops the instance (economical mode) instead of releasing it.
    pub spot_stop_on_interrupt: bool,
    /// End of the paid subscription term.
    pub expires_at: Option<Instant>,
    /// Start of the span `term_paid_cents` pays for (to `expires_at`), for pro-rata refunds.
    pub term_started_at: Option<Instant>,
    pub term_paid_cents: i64,
    /// Renew automatically by this many months at expiry.
    pub auto_renew_months: Option<u32>,
    pub lock: Option<LockReason>,
    /// When a locked instance is released (spot notice end, arrears or expiry grace end).
    pub release_at: Option<Instant>,
}

impl Billing {
    pub fn is_spot(&self) -> bool {
        self.spot_strategy != SpotStrategy::NoSpot
    }
}

/// What a user asks of an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserAction {
    Start,
    Stop,
    Reboot,
    Delete { force: bool },
}

/// What the platform does to an instance on its own (arrears, an expired subscription, a spot
/// reclaim). Unlike a user's action it is never refused: it applies in any status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlatformAction {
    /// Stop it (and keep it stopped): whatever it is doing, its desired state becomes Stopped.
    Stop,
    /// Release it.
    Release,
}

/// What the host agent observed while driving an instance towards its desired state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AgentEvent {
    /// The root filesystem and bundle exist; the instance can be booted.
    Provisioned,
    /// The instance's init process is running.
    Booted,
    /// The instance's processes have all exited (asked to, or on their own).
    Halted,
    /// Everything the instance had on the host is gone.
    Cleaned,
    /// Booting failed again and again; the agent gives up until the user starts it again.
    BootFailed,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleError {
    #[error("The current status of the resource does not support this operation.")]
    IncorrectStatus { status: InstanceStatus },
    #[error("The instance is still being created.")]
    Initializing,
}

/// The outcome of a transition: the new visible status and the new desired power state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub status: InstanceStatus,
    pub desired: PowerState,
}

impl InstanceStatus {
    /// A user command against an instance in this status with this desired power state.
    pub fn apply(self, desired: PowerState, action: UserAction) -> Result<Transition, LifecycleError> {
        use InstanceStatus as S;
        let t = |status, desired| Ok(Transition { status, desired });
        let refuse = Err(LifecycleError::IncorrectStatus { status: self });
        match (self, action) {
            (S::Deleted, _) => refuse,
            (S::Stopped, UserAction::Start) => t(S::Starting, PowerState::Running),
            (S::Running, UserAction::Stop) => t(S::Stopping, PowerState::Stopped),
            // Reboot: stop, then (because desired stays Running) boot again.
            (S::Running, UserAction::Reboot) => t(S::Stopping, PowerState::Running),
            (S::Stopped, UserAction::Delete { .. }) => t(S::Deleted, PowerState::Released),
            (S::Pending, UserAction::Delete { .. }) => Err(LifecycleError::Initializing),
            (_, UserAction::Delete { force: true }) => t(S::Deleted, PowerState::Released),
            _ => {
                let _ = desired;
                refuse
            }
        }
    }

    /// A platform action against an instance in this status with this desired power state. Total:
    /// the platform's decisions are never refused.
    pub fn platform(self, desired: PowerState, action: PlatformAction) -> Transition {
        use InstanceStatus as S;
        let t = |status, desired| Transition { status, desired };
        match (self, action) {
            (S::Deleted, _) => t(S::Deleted, PowerState::Released),
            (_, PlatformAction::Release) => t(S::Deleted, PowerState::Released),
            // A running instance is stopped; one on its way up stops once it has booted (the
            // agent sees desired Stopped); one stopped or stopping stays as it is.
            (S::Running, PlatformAction::Stop) => t(S::Stopping, PowerState::Stopped),
            (s, PlatformAction::Stop) => {
                let _ = desired;
                t(s, PowerState::Stopped)
            }
        }
    }

    /// An observation by the host agent. Observations never fail: they describe what happened.
    pub fn observe(self, desired: PowerState, event: AgentEvent) -> Transition {
        use InstanceStatus as S;
        let status = match (self, event, desired) {
            (S::Deleted, _, _) => S::Deleted,
            (_, _, PowerState::Released) => S::Deleted,
            (S::Pending | S::Starting, AgentEvent::BootFailed, _) => S::Stopped,
            (S::Pending, AgentEvent::Provisioned, PowerState::Running) => S::Starting,
            (S::Pending, AgentEvent::Provisioned, PowerState::Stopped) => S::Stopped,
            (S::Pending | S::Starting, AgentEvent::Booted, PowerState::Running) => S::Running,
            // Booted although the user has since asked to stop: the agent will stop it.
            (_, AgentEvent::Booted, PowerState::Stopped) => S::Stopping,
            // A reboot's stop half is not done by a boot: a host never boots an instance it has
            // as Stopping, so this Booted was observed before the reboot was asked for (a report
            // acted on an older intent). The stop half still comes.
            (S::Stopping, AgentEvent::Booted, PowerState::Running) => S::Stopping,
            (S::Stopped | S::Running, AgentEvent::Booted, PowerState::Running) => S::Running,
            // Halted while meant to run: a reboot in progress, or the guest shut itself down.
            (S::Stopping, AgentEvent::Halted, PowerState::Running) => S::Starting,
            (S::Running, AgentEvent::Halted, PowerState::Running) => S::Stopped,
            (S::Starting, AgentEvent::Halted, PowerState::Running) => S::Starting,
            (_, AgentEvent::Halted, PowerState::Stopped) => S::Stopped,
            (s, _, _) => s,
        };
        // A guest that halts on its own leaves the desired state at Stopped, as on ECS when the
        // OS shuts down from inside.
        let desired = match (self, event, desired) {
            (S::Running, AgentEvent::Halted, PowerState::Running) => PowerState::Stopped,
            (S::Pending | S::Starting, AgentEvent::BootFailed, PowerState::Running) => PowerState::Stopped,
            (_, _, d) => d,
        };
        Transition { status, desired }
    }
}

/// A user-supplied tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// An instance: intent (what the user asked for) and the last observed status.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    pub id: String,
    pub account_id: String,
    pub name: String,
    pub hostname: String,
    pub description: String,
    pub region_id: String,
    pub zone_id: String,
    pub host_id: String,
    pub instance_type: String,
    pub image_id: String,
    pub status: InstanceStatus,
    pub desired: PowerState,
    pub stopped_mode: Option<StoppedMode>,
    pub charge_type: ChargeType,
    pub billing: Billing,
    /// Decoded user data (a shell script), run once at first boot.
    pub user_data: Option<Vec<u8>>,
    pub tags: Vec<Tag>,
    /// The deployment set whose members run on distinct hosts, if any.
    pub deployment_set_id: Option<String>,
    /// The SSH key pair whose public key is in root's authorized keys.
    pub key_pair_name: Option<String>,
    pub created_at: Instant,
    pub started_at: Option<Instant>,
    pub updated_at: Instant,
    /// Bumped by one on every persisted change of the instance: user actions, agent reports,
    /// billing and platform steps (locks, renewals, stops, releases), charge-type conversions and
    /// attribute changes alike. It orders the states of one instance whatever the clock's
    /// resolution: the usage event of a transition carries the revision the transition made
    /// (its `seq`), and a decision taken from an older copy can tell that the instance changed
    /// since. Created instances start at 1.
    pub revision: u64,
}

impl Instance {
    pub fn tag_map(&self) -> BTreeMap<&str, &str> {
        self.tags.iter().map(|t| (t.key.as_str(), t.value.as_str())).collect()
    }

    /// The next revision of this instance, changed at `now`: every persisted change starts here.
    pub fn revised(&self, now: Instant) -> Instance {
        Instance { revision: self.revision + 1, updated_at: now, ..self.clone() }
    }

    /// Whether this instance holds host capacity (everything except a released instance).
    pub fn holds_capacity(&self) -> bool {
        self.status != InstanceStatus::Deleted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use InstanceStatus as S;

    const ACTIONS: [UserAction; 5] = [
        UserAction::Start,
        UserAction::Stop,
        UserAction::Reboot,
        UserAction::Delete { force: false },
        UserAction::Delete { force: true },
    ];

    /// The full table of platform actions: every (status, action) pair is listed once, and it
    /// holds whatever the desired state was.
    #[test]
    fn platform_actions_exhaustive_table() {
        use PlatformAction::{Release, Stop};
        use PowerState::{Released, Stopped};
        let t = |s, d| Transition { status: s, desired: d };
        let table = [
            (S::Pending, Stop, t(S::Pending, Stopped)),
            (S::Pending, Release, t(S::Deleted, Released)),
            (S::Starting, Stop, t(S::Starting, Stopped)),
            (S::Starting, Release, t(S::Deleted, Released)),
            (S::Running, Stop, t(S::Stopping, Stopped)),
            (S::Running, Release, t(S::Deleted, Released)),
            (S::Stopping, Stop, t(S::Stopping, Stopped)),
            (S::Stopping, Release, t(S::Deleted, Released)),
            (S::Stopped, Stop, t(S::Stopped, Stopped)),
            (S::Stopped, Release, t(S::Deleted, Released)),
            (S::Deleted, Stop, t(S::Deleted, Released)),
            (S::Deleted, Release, t(S::Deleted, Released)),
        ];
        assert_eq!(table.len(), S::ALL.len() * 2);
        for (s, a, want) in table {
            for d in [PowerState::Running, PowerState::Stopped, PowerState::Released] {
                if s == S::Deleted || d != PowerState::Released {
                    assert_eq!(s.platform(d, a), want, "{s:?} {a:?} desired {d:?}");
                }
            }
        }
        // A platform stop followed by the agent's observations ends Stopped from any live status.
        for s in [S::Pending, S::Starting, S::Running, S::Stopping] {
            let mut t = s.platform(PowerState::Running, Stop);
            for e in [AgentEvent::Provisioned, AgentEvent::Booted, AgentEvent::Halted] {
                t = t.status.observe(t.desired, e);
            }
            assert_eq!((t.status, t.desired), (S::Stopped, Stopped), "from {s:?}");
        }
    }

    /// The full table of user actions: every (status, action) pair is listed once.
    #[test]
    fn user_actions_exhaustive_table() {
        use PowerState::Running as R;
        let ok = |s, d| Ok(Transition { status: s, desired: d });
        let no = |s| Err(LifecycleError::IncorrectStatus { status: s });
        let table: Vec<(S, UserAction, Result<Transition, LifecycleError>)> = vec![
            (S::Pending, ACTIONS[0], no(S::Pending)),
            (S::Pending, ACTIONS[1], no(S::Pending)),
            (S::Pending, ACTIONS[2], no(S::Pending)),
            (S::Pending, ACTIONS[3], Err(LifecycleError::Initializing)),
            (S::Pending, ACTIONS[4], Err(LifecycleError::Initializing)),
            (S::Starting, ACTIONS[0], no(S::Starting)),
            (S::Starting, ACTIONS[1], no(S::Starting)),
            (S::Starting, ACTIONS[2], no(S::Starting)),
            (S::Starting, ACTIONS[3], no(S::Starting)),
            (S::Starting, ACTIONS[4], ok(S::Deleted, PowerState::Released)),
            (S::Running, ACTIONS[0], no(S::Running)),
            (S::Running, ACTIONS[1], ok(S::Stopping, PowerState::Stopped)),
            (S::Running, ACTIONS[2], ok(S::Stopping, R)),
            (S::Running, ACTIONS[3], no(S::Running)),
            (S::Running, ACTIONS[4], ok(S::Deleted, PowerState::Released)),
            (S::Stopping, ACTIONS[0], no(S::Stopping)),
            (S::Stopping, ACTIONS[1], no(S::Stopping)),
            (S::Stopping, ACTIONS[2], no(S::Stopping)),
            (S::Stopping, ACTIONS[3], no(S::Stopping)),
            (S::Stopping, ACTIONS[4], ok(S::Deleted, PowerState::Released)),
            (S::Stopped, ACTIONS[0], ok(S::Starting, R)),
            (S::Stopped, ACTIONS[1], no(S::Stopped)),
            (S::Stopped, ACTIONS[2], no(S::Stopped)),
            (S::Stopped, ACTIONS[3], ok(S::Deleted, PowerState::Released)),
            (S::Stopped, ACTIONS[4], ok(S::Deleted, PowerState::Released)),
            (S::Deleted, ACTIONS[0], no(S::Deleted)),
            (S::Deleted, ACTIONS[1], no(S::Deleted)),
            (S::Deleted, ACTIONS[2], no(S::Deleted)),
            (S::Deleted, ACTIONS[3], no(S::Deleted)),
            (S::Deleted, ACTIONS[4], no(S::Deleted)),
        ];
        assert_eq!(table.len(), S::ALL.len() * ACTIONS.len());
        for (s, a, want) in table {
            // The desired state does not change which user actions are legal.
            for d in [PowerState::Running, PowerState::Stopped] {
                assert_eq!(s.apply(d, a), want, "{s:?} {a:?} desired {d:?}");
            }
        }
    }

    #[test]
    fn run_instances_path() {
        let t = S::Pending.observe(PowerState::Running, AgentEvent::Provisioned);
        assert_eq!(t.status, S::Starting);
        let t = t.status.observe(t.desired, AgentEvent::Booted);
        assert_eq!(t, Transition { status: S::Running, desired: PowerState::Running });
    }

    #[test]
    fn create_instance_path_ends_stopped() {
        let t = S::Pending.observe(PowerState::Stopped, AgentEvent::Provisioned);
        assert_eq!(t.status, S::Stopped);
    }

    #[test]
    fn reboot_path() {
        let t = S::Running.apply(PowerState::Running, UserAction::Reboot).expect("legal");
        let t = t.status.observe(t.desired, AgentEvent::Halted);
        assert_eq!(t.status, S::Starting);
        let t = t.status.observe(t.desired, AgentEvent::Booted);
        assert_eq!(t.status, S::Running);
    }

    #[test]
    fn a_boot_reported_late_does_not_end_a_reboot() {
        let t = S::Running.apply(PowerState::Running, UserAction::Reboot).expect("legal");
        // The host booted the instance again on an intent drawn before the reboot was asked for.
        let late = t.status.observe(t.desired, AgentEvent::Booted);
        assert_eq!(late, t);
        // The stop half, then the boot, as on any reboot; a guest halt is not read into it.
        let t = late.status.observe(late.desired, AgentEvent::Halted);
        assert_eq!(t, Transition { status: S::Starting, desired: PowerState::Running });
    }

    #[test]
    fn guest_shutdown_leaves_it_stopped() {
        let t = S::Running.observe(PowerState::Running, AgentEvent::Halted);
        assert_eq!(t, Transition { status: S::Stopped, desired: PowerState::Stopped });
    }

    #[test]
    fn observations_never_resurrect_a_released_instance() {
        for s in S::ALL {
            for e in [
                AgentEvent::Provisioned,
                AgentEvent::Booted,
                AgentEvent::Halted,
                AgentEvent::Cleaned,
                AgentEvent::BootFailed,
            ] {
                assert_eq!(s.observe(PowerState::Released, e).status, S::Deleted);
                assert_eq!(S::Deleted.observe(PowerState::Running, e).status, S::Deleted);
            }
        }
    }

    #[test]
    fn a_boot_that_keeps_failing_ends_stopped_and_can_be_started_again() {
        for s in [S::Pending, S::Starting] {
            let t = s.observe(PowerState::Running, AgentEvent::BootFailed);
            assert_eq!(t, Transition { status: S::Stopped, desired: PowerState::Stopped });
            assert_eq!(t.status.apply(t.desired, UserAction::Start).map(|t| t.status), Ok(S::Starting));
        }
        // Nothing else is affected by it.
        for s in [S::Running, S::Stopping, S::Stopped] {
            assert_eq!(s.observe(PowerState::Running, AgentEvent::BootFailed).status, s);
        }
    }

    #[test]
    fn stop_requested_while_booting_settles_stopped() {
        let t = S::Starting.observe(PowerState::Stopped, AgentEvent::Booted);
        assert_eq!(t.status, S::Stopping);
        assert_eq!(t.status.observe(t.desired, AgentEvent::Halted).status, S::Stopped);
    }

    #[test]
    fn status_strings_round_trip() {
        for s in S::ALL {
            assert_eq!(S::parse(s.as_str()), Some(s));
        }
    }
}
