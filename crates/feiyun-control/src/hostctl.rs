//! The agent-facing side of the control plane.

use feiyun_agent::{Assignment, HostControl};
use feiyun_domain::instance::{AgentEvent, InstanceStatus, PowerState, StoppedMode};
use feiyun_domain::usage::{EventKind, UsageEvent};
use feiyun_runtime::RuntimeSpec;

use crate::ControlPlane;

impl ControlPlane {
    pub(crate) fn runtime_spec(&self, i: &feiyun_domain::instance::Instance) -> RuntimeSpec {
        let t = self.catalog.instance_type(&i.instance_type);
        RuntimeSpec {
            id: i.id.clone(),
            hostname: i.hostname.clone(),
            vcpus: t.map(|t| t.vcpus).unwrap_or(1),
            memory_mib: t.map(|t| t.memory_mib()).unwrap_or(512),
            baseline_cpu_percent: t.map(|t| t.baseline_cpu_percent).unwrap_or(0),
            image_rootfs: self.images.rootfs(&i.image_id),
            user_data: i.user_data.clone(),
            netns: None,
        }
    }

    /// The usage event of the transition that made `i` (its revision and instant are the
    /// transition's; a transition makes at most one event). The system disk is the image's root
    /// filesystem, rounded up to whole GiB.
    pub(crate) fn usage_event(&self, i: &feiyun_domain::instance::Instance, kind: EventKind) -> UsageEvent {
        let disk_gib = self.images.get(&i.image_id).map(|m| m.size_bytes.div_ceil(1 << 30).max(1)).unwrap_or(1);
        UsageEvent {
            key: UsageEvent::key_for(&i.id, kind, i.updated_at.timestamp_millis(), i.revision),
            seq: i.revision,
            instance_id: i.id.clone(),
            account_id: i.account_id.clone(),
            instance_type: i.instance_type.clone(),
            disk_category: SYSTEM_DISK_CATEGORY.to_string(),
            disk_gib,
            zone_id: i.zone_id.clone(),
            charge: crate::billing::charge_of(i),
            at_s: i.updated_at.timestamp(),
            kind,
        }
    }

    /// The last runtime error seen for an instance, if its last step failed.
    pub fn last_error(&self, id: &str) -> Option<String> {
        self.read().errors.get(id).cloned()
    }
}

/// Category billed for every instance's system disk.
pub const SYSTEM_DISK_CATEGORY: &str = "cloud_essd";

impl HostControl for ControlPlane {
    fn assigned(&self, host_id: &str) -> Vec<Assignment> {
        let state = self.read();
        state
            .instances
            .values()
            .filter(|i| i.host_id == host_id)
            .map(|i| Assignment {
                status: i.status,
                desired: i.desired,
                stop_grace: self.stop_grace(false),
                spec: self.runtime_spec(i),
            })
            .collect()
    }

    fn knows(&self, instance_id: &str) -> bool {
        self.read().instances.contains_key(instance_id)
    }

    fn report(&self, instance_id: &str, event: AgentEvent) {
        let mut state = self.write();
        state.errors.remove(instance_id);
        if event == AgentEvent::Cleaned {
            match self.store.mark_cleaned(instance_id) {
                Ok(()) => {
                    state.instances.remove(instance_id);
                }
                Err(e) => {
                    tracing::error!(instance = %instance_id, error = %e, "cannot record cleanup")
                }
            }
            return;
        }
        let Some(cur) = state.instances.get(instance_id) else {
            return;
        };
        let t = cur.status.observe(cur.desired, event);
        if t.status == cur.status && t.desired == cur.desired {
            return;
        }
        let mut next = cur.revised(self.now());
        next.status = t.status;
        next.desired = t.desired;
        if t.status == InstanceStatus::Running && cur.status != InstanceStatus::Running {
            next.started_at = Some(next.updated_at);
        }
        if t.desired == PowerState::Stopped && cur.desired == PowerState::Running && next.stopped_mode.is_none() {
            // The guest shut itself down.
            next.stopped_mode = Some(self.default_stopped_mode());
        }
        // Usage: compute starts charging when the instance runs, and stops (in economical mode)
        // when it has stopped.
        let mut usage = Vec::new();
        if next.status == InstanceStatus::Running && cur.status != InstanceStatus::Running {
            usage.push(self.usage_event(&next, EventKind::Start));
        }
        if next.status == InstanceStatus::Stopped
            && cur.status != InstanceStatus::Stopped
            && cur.status != InstanceStatus::Pending
        {
            let kind = match next.stopped_mode {
                Some(StoppedMode::StopCharging) => EventKind::StopCharging,
                _ => EventKind::StopKeepCharging,
            };
            usage.push(self.usage_event(&next, kind));
        }
        match self.store.put_instances(std::slice::from_ref(&next), None, &usage, &[]) {
            Ok(()) => {
                tracing::info!(instance = %instance_id, from = cur.status.as_str(), to = next.status.as_str(), "status");
                state.instances.insert(next.id.clone(), next);
            }
            // Not applied in memory either: the agent will observe again and report again.
            Err(e) => tracing::error!(instance = %instance_id, error = %e, "cannot persist status"),
        }
    }

    fn report_error(&self, instance_id: &str, error: &str) {
        self.write().errors.insert(instance_id.to_string(), error.to_string());
    }
}
