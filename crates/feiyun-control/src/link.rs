//! The control plane's side of the host protocol: what hosts are told ([`Intent`]) and what
//! they report, over [`ControlLink`] (in-process for the embedded host, HTTP for the others).

use std::path::Path;
use std::time::Duration;

use feiyun_domain::image::ImageSource;
use feiyun_domain::instance::{AgentEvent, Instance, InstanceStatus, PowerState, StoppedMode};
use feiyun_domain::usage::{EventKind, UsageEvent};
use feiyun_hostproto::{
    BlobInfo, BlobKind, BlobRef, ControlLink, Credential, Heartbeat, HeartbeatAck, HostSpec, ImageRef, InstanceIntent,
    InstanceSpec, Intent, ProtoError, Registered, Report, Task,
};

use crate::{ControlPlane, State};
use feiyun_store::{CommitPos, WriteSet};

/// Category billed for every instance's system disk.
pub const SYSTEM_DISK_CATEGORY: &str = "cloud_essd";

impl ControlPlane {
    /// The usage event of the transition that made `i` (its revision and instant are the
    /// transition's; a transition makes at most one event), with its system disk (category,
    /// GiB) as it stands after the transition.
    pub(crate) fn usage_event_sized(&self, i: &Instance, kind: EventKind, disk: (&str, u64)) -> UsageEvent {
        UsageEvent {
            key: UsageEvent::key_for(&i.id, kind, i.updated_at.timestamp_millis(), i.revision),
            seq: i.revision,
            instance_id: i.id.clone(),
            account_id: i.account_id.clone(),
            instance_type: i.instance_type.clone(),
            disk_category: disk.0.to_string(),
            disk_gib: disk.1,
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

    fn instance_intent(&self, state: &State, i: &Instance) -> InstanceIntent {
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
                authorized_keys: state.authorized_keys(i),
            },
            metadata: self.instance_metadata(state, i),
            applied_seq: state.hosts.get(&i.host_id).and_then(|s| s.applied_seq.get(&i.id).copied()),
        }
    }

    /// What the metadata service answers an instance, its network included.
    pub(crate) fn instance_metadata(&self, state: &State, i: &Instance) -> std::collections::BTreeMap<String, String> {
        let network = self.network_metadata(state, i);
        [
            ("instance-id", i.id.clone()),
            ("region-id", i.region_id.clone()),
            ("zone-id", i.zone_id.clone()),
            ("hostname", i.hostname.clone()),
            ("image-id", i.image_id.clone()),
            ("instance/instance-type", i.instance_type.clone()),
            ("instance/instance-name", i.name.clone()),
            ("owner-account-id", i.account_id.clone()),
            ("serial-number", i.id.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .chain(network)
        .chain(state.authorized_keys(i).into_iter().take(1).map(|k| ("public-keys/0/openssh-key".to_string(), k)))
        .collect()
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
                .map(|i| self.instance_intent(state, i))
                .collect(),
            tasks: slot.tasks.values().map(|p| p.task.clone()).collect(),
            disks: state.host_disk_specs(host_id),
            snapshots: state.host_snapshots(host_id),
            network: self.host_net_spec(state, host_id),
        })
    }

    /// The intent of the host `credential` names, once its revision differs from `since` (or
    /// after `wait`).
    pub async fn host_intent(&self, credential: &Credential, since: u64, wait: Duration) -> Result<Intent, ProtoError> {
        // The credential is checked (a sign of life: a write) under the write lock; the intent
        // is built under the read lock, beside other readers.
        let (id, mut rx) = {
            let mut state = self.write();
            let id = self.authenticate(&mut state, credential)?;
            let slot = state.hosts.get(&id).ok_or_else(|| ProtoError::Unauthorized("unknown host".into()))?;
            let rx = (slot.revision == since).then(|| slot.watch.subscribe());
            (id, rx)
        };
        if let Some(rx) = rx.as_mut() {
            // Any change of revision ends the wait (an older `since` is an agent that saw an
            // earlier run of the control plane: it gets the intent at once).
            let _ = tokio::time::timeout(wait, rx.wait_for(|r| *r != since)).await;
            let mut state = self.write();
            self.authenticate(&mut state, credential)?;
        }
        self.intent_of(&self.read(), &id)
    }

    /// What a host reports: all of it is checked before any of it is applied, so a report that
    /// names an instance of another host changes nothing. Words on an instance the region no
    /// longer has are dropped: a host may clean an instance twice (it acts on an intent drawn
    /// before its first report landed), and the rest of its report must not be lost for that.
    pub fn host_report(&self, credential: &Credential, mut report: Report) -> Result<(), ProtoError> {
        let (host_id, finished) = {
            let mut state = self.write();
            let id = self.authenticate(&mut state, credential)?;
            let slot = state.hosts.get(&id).ok_or_else(|| ProtoError::Unauthorized("unknown host".into()))?;
            if report.epoch < slot.host.epoch {
                return Err(ProtoError::Fenced { epoch: slot.host.epoch });
            }
            for e in &report.events {
                if !slot.instances.contains(&e.instance_id) && state.instances.contains_key(&e.instance_id) {
                    tracing::warn!(host = %id, instance = %e.instance_id, "report about an instance the host was not given: refused");
                    return Err(ProtoError::Forbidden(format!(
                        "instance {} is not assigned to host {id}",
                        e.instance_id
                    )));
                }
            }
            report.events.retain(|e| {
                let known = slot.instances.contains(&e.instance_id);
                if !known {
                    tracing::debug!(host = %id, instance = %e.instance_id, "report about an instance the region no longer has: dropped");
                }
                known
            });
            let mut finished = Vec::new();
            if let Some(slot) = state.hosts.get_mut(&id) {
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
            (id, finished)
        };
        let mut recorded = None;
        for e in report.events {
            if let Some(err) = e.error {
                tracing::warn!(host = %host_id, instance = %e.instance_id, error = %err, "step failed on the host");
                self.write().errors.insert(e.instance_id.clone(), err);
            }
            if let Some(ev) = e.event {
                recorded = self.record_event_ordered(&e.instance_id, ev, e.status_after, e.seq).or(recorded);
            }
        }
        if let Some(pos) = recorded {
            // The host hears its report was taken only once what it changed is durable.
            self.durable(pos).map_err(|e| ProtoError::Unavailable(format!("report not recorded: {e}")))?;
        }
        for (p, outcome) in finished {
            self.complete_task(p.task, p.completion, outcome, false);
        }
        if let Err(e) = self.record_disk_reports(&host_id, &report.disks) {
            // Not recorded: the host reports its disks again when they change, and at its start.
            tracing::error!(host = %host_id, error = %e, "cannot record disk reports");
        }
        if let Err(e) = self.meter_traffic(&host_id, &report.traffic) {
            // The readings stay the host's to send again: nothing was recorded.
            tracing::error!(host = %host_id, error = %e, "cannot meter traffic");
            return Err(ProtoError::Unavailable(format!("traffic not recorded: {e}")));
        }
        Ok(())
    }

    /// Apply what a host observed of an instance through the domain's state machine; returns
    /// once the change is durable.
    pub fn record_event(&self, instance_id: &str, event: AgentEvent) {
        if let Some(pos) = self.record_event_ordered(instance_id, event, None, None) {
            let _ = self.durable(pos);
        }
    }

    /// [`ControlPlane::record_event`], returning the position of the change it committed (if
    /// any) instead of waiting for it to be durable. `host_applied` is the status the reporting
    /// host moved the instance to on its own copy of the intent: when the control plane comes to
    /// the same status and desired state, the host is not woken for it (nothing else in its
    /// intent depends on the status). `seq` is the host's number for the event: the host's
    /// intent says the last one applied (recorded or not, as its status then shows).
    fn record_event_ordered(
        &self,
        instance_id: &str,
        event: AgentEvent,
        host_applied: Option<InstanceStatus>,
        seq: Option<u64>,
    ) -> Option<CommitPos> {
        let mut state = self.write();
        state.errors.remove(instance_id);
        if event == AgentEvent::Cleaned {
            match self.store.mark_cleaned(instance_id) {
                Ok(()) => state.forget(instance_id),
                Err(e) => tracing::error!(instance = %instance_id, error = %e, "cannot record cleanup"),
            }
            return None;
        }
        let host = state.instances.get(instance_id)?.host_id.clone();
        if let (Some(seq), Some(slot)) = (seq, state.hosts.get_mut(&host)) {
            slot.applied_seq.insert(instance_id.to_string(), seq);
        }
        let cur = state.instances.get(instance_id)?;
        let t = cur.status.observe(cur.desired, event);
        // A host that moved its own copy elsewhere than the region did (it acted on an older
        // intent, or its event could not be recorded) hears the region's word: it takes no
        // further step on its own copy otherwise.
        let host_differs = host_applied.is_some_and(|s| s != t.status);
        if t.status == cur.status && t.desired == cur.desired {
            if host_differs {
                let host = cur.host_id.clone();
                state.bump_host(&host);
            }
            return None;
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
            usage.push(self.usage_event(&state, &next, EventKind::Start));
        }
        if next.status == InstanceStatus::Stopped
            && cur.status != InstanceStatus::Stopped
            && cur.status != InstanceStatus::Pending
        {
            let kind = match next.stopped_mode {
                Some(StoppedMode::StopCharging) => EventKind::StopCharging,
                _ => EventKind::StopKeepCharging,
            };
            usage.push(self.usage_event(&state, &next, kind));
        }
        let writes = WriteSet { instances: std::slice::from_ref(&next), usage: &usage, ..Default::default() };
        match self.store.commit_ordered(&writes) {
            Ok(pos) => {
                tracing::info!(instance = %instance_id, from = cur.status.as_str(), to = next.status.as_str(), "status");
                let host_knows = host_applied == Some(next.status) && next.desired == cur.desired;
                state.put_observed(next, !host_knows);
                Some(pos)
            }
            // Not applied in memory either: the host is woken to observe again and report again.
            Err(e) => {
                tracing::error!(instance = %instance_id, error = %e, "cannot persist status");
                let host = next.host_id.clone();
                state.bump_host(&host);
                None
            }
        }
    }

    /// Where a region image's archive is, for a host to fetch.
    pub fn host_image_archive(
        &self,
        credential: &Credential,
        image_id: &str,
    ) -> Result<std::path::PathBuf, ProtoError> {
        {
            let mut state = self.write();
            self.authenticate(&mut state, credential)?;
        }
        let image = self.image(image_id).ok_or_else(|| ProtoError::NotFound(format!("image {image_id}")))?;
        if image.source != ImageSource::Region {
            return Err(ProtoError::NotFound(format!("image {image_id} is built on each host, not fetched")));
        }
        self.blob_path(BlobKind::Image, image_id)
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

impl ControlPlane {
    /// Where a blob of the region is kept.
    pub fn blob_path(&self, kind: BlobKind, id: &str) -> Result<std::path::PathBuf, ProtoError> {
        let dir = self.blob_dir.as_ref().ok_or_else(|| ProtoError::NotFound(format!("{} {id}", kind.as_str())))?;
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(ProtoError::BadRequest(format!("blob id {id:?}")));
        }
        Ok(dir.join(kind.as_str()).join(id))
    }

    /// Where a host may upload a blob: only one a task it was given asks for.
    pub fn host_upload_target(
        &self,
        credential: &Credential,
        kind: BlobKind,
        id: &str,
    ) -> Result<std::path::PathBuf, ProtoError> {
        let mut state = self.write();
        let host = self.authenticate(&mut state, credential)?;
        let expected = state.hosts.get(&host).is_some_and(|slot| {
            slot.tasks.values().any(|p| match (&p.task, kind) {
                (Task::CaptureImage(t), BlobKind::Image) => t.image_id == id,
                (Task::Snapshot(t), BlobKind::Snapshot) => t.upload && t.snapshot_id == id,
                (Task::UploadDisk(t), BlobKind::Disk) => t.blob_id == id,
                _ => false,
            })
        });
        if !expected {
            tracing::warn!(host = %host, kind = kind.as_str(), id, "upload no task asked for: refused");
            return Err(ProtoError::Forbidden(format!("no task of host {host} uploads {} {id}", kind.as_str())));
        }
        drop(state);
        let path = self.blob_path(kind, id)?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| ProtoError::Internal(format!("{}: {e}", dir.display())))?;
        }
        Ok(path)
    }

    /// A blob, for a host to fetch (hosts are the region's own machines: any may read any blob).
    pub fn host_blob(
        &self,
        credential: &Credential,
        kind: BlobKind,
        id: &str,
    ) -> Result<std::path::PathBuf, ProtoError> {
        {
            let mut state = self.write();
            self.authenticate(&mut state, credential)?;
        }
        let path = self.blob_path(kind, id)?;
        if !path.exists() {
            return Err(ProtoError::NotFound(format!("{} {id}", kind.as_str())));
        }
        Ok(path)
    }
}

/// Copy `src` to `dest` (through a temporary file, renamed when complete), returning the
/// SHA-256 and size of what was copied.
pub async fn copy_blob(src: &Path, dest: &Path) -> Result<BlobInfo, ProtoError> {
    use sha2::Digest;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let io = |p: &Path, e: std::io::Error| ProtoError::Internal(format!("{}: {e}", p.display()));
    let tmp = dest.with_extension("partial");
    let mut from = tokio::fs::File::open(src).await.map_err(|e| io(src, e))?;
    let mut to = tokio::fs::File::create(&tmp).await.map_err(|e| io(&tmp, e))?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut n = 0u64;
    loop {
        let k = from.read(&mut buf).await.map_err(|e| io(src, e))?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        to.write_all(&buf[..k]).await.map_err(|e| io(&tmp, e))?;
        n += k as u64;
    }
    to.sync_all().await.map_err(|e| io(&tmp, e))?;
    tokio::fs::rename(&tmp, dest).await.map_err(|e| io(dest, e))?;
    Ok(BlobInfo { sha256: hex::encode(h.finalize()), size_bytes: n })
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
        // It waits for the store to make the report durable (a log sync): on a multi-threaded
        // runtime the worker hands its other tasks over meanwhile.
        if tokio::runtime::Handle::current().runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread {
            tokio::task::block_in_place(|| self.host_report(credential, report))
        } else {
            self.host_report(credential, report)
        }
    }
    async fn fetch_image(&self, credential: &Credential, image_id: &str, dest: &Path) -> Result<u64, ProtoError> {
        self.host_fetch_image(credential, image_id, dest).await
    }
    async fn upload_blob(
        &self,
        credential: &Credential,
        kind: BlobKind,
        id: &str,
        src: &Path,
    ) -> Result<BlobInfo, ProtoError> {
        let dest = self.host_upload_target(credential, kind, id)?;
        copy_blob(src, &dest).await
    }
    async fn fetch_blob(&self, credential: &Credential, blob: &BlobRef, dest: &Path) -> Result<u64, ProtoError> {
        let src = self.host_blob(credential, blob.kind, &blob.id)?;
        tokio::fs::copy(&src, dest).await.map_err(|e| ProtoError::Internal(format!("{}: {e}", dest.display())))
    }
}
