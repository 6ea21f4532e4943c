//! The control plane's side of the host protocol: what hosts are told ([`Intent`]) and what
//! they report, over [`ControlLink`] (in-process for the embedded host, HTTP for the others).

use std::path::Path;
use std::time::Duration;

use feiyun_domain::image::ImageSource;
use feiyun_domain::instance::{AgentEvent, Instance, InstanceStatus, PowerState, StoppedMode};
use feiyun_domain::usage::{EventKind, UsageEvent};
use feiyun_hostproto::{
    ControlLink, Credential, Heartbeat, HeartbeatAck, HostSpec, ImageRef, InstanceIntent, InstanceSpec, Intent,
    ProtoError, Registered, Report,
};

use crate::commit::{Changes, Decided};
use crate::{ControlPlane, State};

/// Category billed for every instance's system disk.
pub const SYSTEM_DISK_CATEGORY: &str = "cloud_essd";

impl ControlPlane {
    /// The usage event of the transition that made `i` (its revision and instant are the
    /// transition's; a transition makes at most one event). The system disk is the image's root
    /// filesystem, rounded up to whole GiB.
    pub(crate) fn usage_event(&self, i: &Instance, kind: EventKind) -> UsageEvent {
        UsageEvent {
            key: UsageEvent::key_for(&i.id, kind, i.updated_at.timestamp_millis(), i.revision),
            seq: i.revision,
            instance_id: i.id.clone(),
            account_id: i.account_id.clone(),
            instance_type: i.instance_type.clone(),
            disk_category: SYSTEM_DISK_CATEGORY.to_string(),
            disk_gib: self.system_disk(&i.image_id).1,
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

    fn instance_intent(&self, i: &Instance) -> InstanceIntent {
        let t = self.catalog.instance_type(&i.instance_type);
        let images = self.images.read().unwrap_or_else(|p| p.into_inner());
        let image = images.get(&i.image_id);
        InstanceIntent {
            id: i.id.clone(),
            status: i.status,
            desired: i.desired,
            stop_grace_ms: self.setup.stop_grace.as_millis() as u64,
            spec: InstanceSpec {
                hostname: i.hostname.clone(),
                vcpus: t.map(|t| t.vcpus).unwrap_or(1),
                memory_mib: t.map(|t| t.memory_mib()).unwrap_or(512),
                baseline_cpu_percent: t.map(|t| t.baseline_cpu_percent).unwrap_or(0),
                image: ImageRef {
                    id: i.image_id.clone(),
                    source: match image.map(|m| m.source) {
                        Some(ImageSource::Region) => feiyun_hostproto::ImageSource::Region,
                        _ => feiyun_hostproto::ImageSource::Builtin,
                    },
                    size_bytes: image.map(|m| m.size_bytes).unwrap_or(0),
                    sha256: image.and_then(|m| m.sha256.clone()),
                },
                user_data: i.user_data.clone(),
            },
        }
    }

    /// A host's whole intent as it stands.
    fn intent_of(&self, state: &State, host_id: &str) -> Result<Intent, ProtoError> {
        let slot = state.hosts.get(host_id).ok_or_else(|| ProtoError::Unauthorized("unknown host".into()))?;
        Ok(Intent {
            host_id: host_id.to_string(),
            epoch: slot.host.epoch,
            revision: slot.revision,
            instances: slot
                .instances
                .iter()
                .filter_map(|id| state.instances.get(id))
                .map(|i| self.instance_intent(i))
                .collect(),
            tasks: slot.tasks.values().map(|p| p.task.clone()).collect(),
        })
    }

    /// The intent of the host `credential` names, once its revision differs from `since` (or
    /// after `wait`).
    pub async fn host_intent(&self, credential: &Credential, since: u64, wait: Duration) -> Result<Intent, ProtoError> {
        let mut rx = {
            let (state, id) = self.authenticate(credential)?;
            let slot = state.hosts.get(&id).ok_or_else(|| ProtoError::Unauthorized("unknown host".into()))?;
            if slot.revision != since {
                return self.intent_of(&state, &id);
            }
            slot.watch.subscribe()
        };
        // Any change of revision ends the wait (an older `since` is an agent that saw an earlier
        // run of the control plane: it gets the intent at once, above).
        let _ = tokio::time::timeout(wait, rx.wait_for(|r| *r != since)).await;
        let (state, id) = self.authenticate(credential)?;
        self.intent_of(&state, &id)
    }

    /// What a host reports: all of it is checked before any of it is applied, so a report that
    /// names an instance the host was not given changes nothing.
    pub fn host_report(&self, credential: &Credential, report: Report) -> Result<(), ProtoError> {
        let host_id = {
            let (state, id) = self.authenticate(credential)?;
            let slot = state.hosts.get(&id).ok_or_else(|| ProtoError::Unauthorized("unknown host".into()))?;
            if report.epoch < slot.host.epoch {
                return Err(ProtoError::Fenced { epoch: slot.host.epoch });
            }
            for e in &report.events {
                if !slot.instances.contains(&e.instance_id) {
                    tracing::warn!(host = %id, instance = %e.instance_id, "report about an instance the host was not given: refused");
                    return Err(ProtoError::Forbidden(format!(
                        "instance {} is not assigned to host {id}",
                        e.instance_id
                    )));
                }
            }
            id
        };
        let mut finished = Vec::new();
        if !report.results.is_empty() {
            let mut state = self.write();
            let id = &host_id;
            if let Some(slot) = state.hosts.get_mut(id) {
                for r in report.results {
                    match slot.tasks.remove(&r.task_id) {
                        Some(p) => finished.push((p, r.outcome)),
                        // A result reported twice (a retried report) or after its deadline.
                        None => tracing::debug!(host = %id, task = %r.task_id, "result of a task no longer pending"),
                    }
                }
                if !finished.is_empty() {
                    slot.bump();
                }
            }
        }
        let observed: Vec<(String, AgentEvent)> =
            report.events.iter().filter_map(|e| e.event.map(|ev| (e.instance_id.clone(), ev))).collect();
        for e in &report.events {
            if let Some(err) = &e.error {
                tracing::warn!(host = %host_id, instance = %e.instance_id, error = %err, "step failed on the host");
            }
        }
        // Errors are kept, and cleared by a later observation, in the order they were reported.
        let note_errors = move |state: &mut State| {
            for e in report.events {
                match (e.error, e.event) {
                    (Some(err), _) => {
                        state.errors.insert(e.instance_id, err);
                    }
                    (None, Some(_)) => {
                        state.errors.remove(&e.instance_id);
                    }
                    (None, None) => {}
                }
            }
        };
        if observed.is_empty() {
            note_errors(&mut self.write());
        } else {
            self.record_events(observed, note_errors);
        }
        for (p, outcome) in finished {
            self.complete_task(p.task, p.completion, outcome, false);
        }
        Ok(())
    }

    /// Apply what a host observed of an instance through the domain's state machine.
    pub fn record_event(&self, instance_id: &str, event: AgentEvent) {
        let id = instance_id.to_string();
        self.record_events(vec![(id.clone(), event)], move |state| {
            state.errors.remove(&id);
        });
    }

    /// Apply observations, in order, through the domain's state machine; they are durable
    /// together before any is applied. `then` runs in the same lock once they are (or once
    /// writing them failed: they are not applied then, and the host reports them again).
    fn record_events(&self, observed: Vec<(String, AgentEvent)>, then: impl FnOnce(&mut State) + Send + 'static) {
        let mut keys: Vec<String> = observed.iter().map(|(id, _)| id.clone()).collect();
        keys.sort();
        keys.dedup();
        self.submit(keys, move |cp, state| {
            let changes = cp.decide_events(state, &observed);
            if changes.instances.is_empty() && changes.cleaned.is_empty() {
                // Nothing changes (an observation repeated): nothing to write.
                then(state);
                return Decided::Answer(());
            }
            Decided::Write(
                changes,
                Box::new(move |_, state, changes, written| {
                    match written {
                        Ok(()) => {
                            for i in changes.instances {
                                state.put(i);
                            }
                            for id in &changes.cleaned {
                                state.forget(id);
                            }
                        }
                        // Not applied in memory either: the host will observe again and report
                        // again.
                        Err(e) => tracing::error!(error = %e, "cannot persist what a host observed"),
                    }
                    then(state);
                }),
            )
        })
    }

    /// What observations change: each instance's transitions (chained when one instance has
    /// several), their usage events, and the instances the host has cleaned up.
    fn decide_events(&self, state: &State, observed: &[(String, AgentEvent)]) -> Changes {
        let mut changes = Changes::default();
        let now = self.now();
        for (instance_id, event) in observed {
            if *event == AgentEvent::Cleaned {
                if state.instances.contains_key(instance_id) && !changes.cleaned.contains(instance_id) {
                    changes.cleaned.push(instance_id.clone());
                }
                continue;
            }
            let cur = match changes.instances.iter().rev().find(|i| &i.id == instance_id) {
                Some(i) => i,
                None => match state.instances.get(instance_id) {
                    Some(i) => i,
                    None => continue,
                },
            };
            let t = cur.status.observe(cur.desired, *event);
            if t.status == cur.status && t.desired == cur.desired {
                continue;
            }
            let mut next = cur.revised(now);
            next.status = t.status;
            next.desired = t.desired;
            if t.status == InstanceStatus::Running && cur.status != InstanceStatus::Running {
                next.started_at = Some(next.updated_at);
            }
            if t.desired == PowerState::Stopped && cur.desired == PowerState::Running && next.stopped_mode.is_none() {
                // The guest shut itself down.
                next.stopped_mode = Some(self.default_stopped_mode());
            }
            // Usage: compute starts charging when the instance runs, and stops (in economical
            // mode) when it has stopped.
            if next.status == InstanceStatus::Running && cur.status != InstanceStatus::Running {
                changes.usage.push(self.usage_event(&next, EventKind::Start));
            }
            if next.status == InstanceStatus::Stopped
                && cur.status != InstanceStatus::Stopped
                && cur.status != InstanceStatus::Pending
            {
                let kind = match next.stopped_mode {
                    Some(StoppedMode::StopCharging) => EventKind::StopCharging,
                    _ => EventKind::StopKeepCharging,
                };
                changes.usage.push(self.usage_event(&next, kind));
            }
            tracing::info!(instance = %instance_id, from = cur.status.as_str(), to = next.status.as_str(), "status");
            changes.instances.push(next);
        }
        changes
    }

    /// Where a region image's archive is, for a host to fetch.
    pub fn host_image_archive(
        &self,
        credential: &Credential,
        image_id: &str,
    ) -> Result<std::path::PathBuf, ProtoError> {
        drop(self.authenticate(credential)?);
        let image = self.image(image_id).ok_or_else(|| ProtoError::NotFound(format!("image {image_id}")))?;
        if image.source != ImageSource::Region {
            return Err(ProtoError::NotFound(format!("image {image_id} is built on each host, not fetched")));
        }
        let dir = self.image_dir.as_ref().ok_or_else(|| ProtoError::NotFound(format!("image {image_id}")))?;
        Ok(dir.join(format!("{image_id}.tar")))
    }

    /// Copy a region image's archive for a host (the in-process transport).
    pub async fn host_fetch_image(
        &self,
        credential: &Credential,
        image_id: &str,
        dest: &Path,
    ) -> Result<u64, ProtoError> {
        let source = self.host_image_archive(credential, image_id)?;
        tokio::fs::copy(&source, dest).await.map_err(|e| ProtoError::NotFound(format!("image {image_id}: {e}")))
    }
}

/// The in-process transport: the embedded host calls the control plane directly.
#[async_trait::async_trait]
impl ControlLink for ControlPlane {
    async fn register(&self, token: &str, spec: HostSpec) -> Result<Registered, ProtoError> {
        self.register_host(token, spec)
    }
    async fn heartbeat(&self, credential: &Credential, beat: Heartbeat) -> Result<HeartbeatAck, ProtoError> {
        self.host_heartbeat(credential, &beat)
    }
    async fn intent(&self, credential: &Credential, since: u64, wait: Duration) -> Result<Intent, ProtoError> {
        self.host_intent(credential, since, wait).await
    }
    async fn report(&self, credential: &Credential, report: Report) -> Result<(), ProtoError> {
        self.host_report(credential, report)
    }
    async fn fetch_image(&self, credential: &Credential, image_id: &str, dest: &Path) -> Result<u64, ProtoError> {
        self.host_fetch_image(credential, image_id, dest).await
    }
}
