//! What hosts report of storage: disks made, attached and detached (`Report.disks`), and the
//! outcomes of storage tasks (snapshots taken and uploaded, disks reset, images captured, disks
//! uploaded for a move). Also what a restarted control plane resumes.

use feiyun_domain::storage::{
    Attachment, BlobCopy, Disk, DiskBlob, DiskKind, DiskOrigin, DiskStatus, ImageOrigin, ImageStatus, SnapshotStatus,
    SYSTEM_DEVICE,
};
use feiyun_domain::usage::StorageEvent;
use feiyun_domain::{ids, DomainError};
use feiyun_hostproto::{BlobKind, CaptureImageTask, CaptureSource, SnapshotTask, Task, TaskOutcome, UploadDiskTask};
use feiyun_store::StorageWrites;

use super::{snapshot_usage, STORAGE_TASK_DEADLINE};
use crate::tasks::{Completion, StorageCompletion};
use crate::{store_err, ControlPlane, State};

impl ControlPlane {
    fn commit_storage(&self, state: &mut State, w: StorageWrites) -> Result<(), DomainError> {
        if w.is_empty() {
            return Ok(());
        }
        self.store.commit(&feiyun_store::WriteSet { storage: Some(&w), ..Default::default() }).map_err(store_err)?;
        state.storage.apply(&w);
        Ok(())
    }

    /// What a host observed of its disks. A report on a disk the host does not hold (it moved,
    /// or was released) is dropped.
    pub(crate) fn record_disk_reports(
        &self,
        host_id: &str,
        reports: &[feiyun_hostproto::DiskStatus],
    ) -> Result<(), DomainError> {
        if reports.is_empty() {
            return Ok(());
        }
        let mut state = self.write();
        let now = self.now();
        let mut w = StorageWrites::default();
        let mut made_blobs = Vec::new();
        for r in reports {
            let Some(d) = state.storage.disks.get(&r.disk_id) else { continue };
            if d.host_id.as_deref() != Some(host_id) || d.transfer.is_some() {
                tracing::debug!(host = %host_id, disk = %r.disk_id, "report on a disk the host does not hold: dropped");
                continue;
            }
            if let Some(e) = &r.error {
                tracing::warn!(host = %host_id, disk = %d.id, error = %e, "disk not yet as its intent says");
            }
            let wanted = d
                .attachment
                .as_ref()
                .filter(|a| state.instances.get(&a.instance_id).is_some_and(|i| i.host_id == host_id))
                .map(|a| a.instance_id.as_str());
            let status = d.status.observe(r.attached_to.as_deref(), wanted);
            let made = d.made || r.size_gib > 0;
            if status == d.status && made == d.made {
                continue;
            }
            let mut n = d.revised(now);
            n.status = status;
            n.made = made;
            if made && !d.made {
                if let DiskOrigin::Blob(b) = &d.origin {
                    made_blobs.push(b.id.clone());
                }
            }
            if status == DiskStatus::Available && d.status == DiskStatus::Detaching {
                n.detached_at = Some(now);
            }
            if status == DiskStatus::InUse && d.status != DiskStatus::InUse {
                n.attached_at = Some(now);
            }
            tracing::info!(disk = %d.id, from = d.status.as_str(), to = status.as_str(), made, "disk");
            w.disks.push(n);
        }
        self.commit_storage(&mut state, w)?;
        drop(state);
        for b in made_blobs {
            // The disk is made from it on its new host: the region's copy has done its job.
            self.remove_blob(BlobKind::Disk, &b);
        }
        Ok(())
    }

    /// A storage task ended: with the host's outcome, or `interrupted` when its deadline passed.
    pub(crate) fn complete_storage(&self, c: StorageCompletion, outcome: TaskOutcome, interrupted: bool) {
        let res = match c {
            StorageCompletion::Snapshot { snapshot_id } => self.snapshot_done(&snapshot_id, outcome),
            StorageCompletion::Reset { disk_id } => self.reset_done(&disk_id, outcome),
            StorageCompletion::Capture { image_id } => self.capture_done(&image_id, outcome),
            StorageCompletion::Upload { disk_id } => self.upload_done(&disk_id, outcome),
        };
        if let Err(e) = res {
            tracing::error!(error = %e, interrupted, "cannot record the end of a storage task");
        }
    }

    fn snapshot_done(&self, snapshot_id: &str, outcome: TaskOutcome) -> Result<(), DomainError> {
        let mut state = self.write();
        state.storage.uploading.remove(snapshot_id);
        let Some(s) = state.storage.snapshots.get(snapshot_id).cloned() else {
            tracing::debug!(snapshot = %snapshot_id, "a deleted snapshot's task ended");
            return Ok(());
        };
        let zone = state.storage.disks.get(&s.disk_id).map(|d| d.zone_id.clone()).unwrap_or_default();
        let now = self.now();
        let mut n = s.revised(now);
        let mut w = StorageWrites::default();
        let mut failed_wait = false;
        match outcome {
            TaskOutcome::Snapshot { size_bytes, blob } => {
                if s.status == SnapshotStatus::Progressing {
                    n.status = SnapshotStatus::Accomplished;
                    n.size_bytes = size_bytes;
                    n.finished_at = Some(now);
                }
                if let Some(b) = blob {
                    n.blob = Some(BlobCopy { sha256: b.sha256, size_bytes: b.size_bytes });
                }
                if s.status == SnapshotStatus::Progressing {
                    w.usage.push(snapshot_usage(&n, &zone, StorageEvent::Create));
                }
                tracing::info!(snapshot = %s.id, size_bytes = n.size_bytes, uploaded = n.blob.is_some(), "snapshot taken");
            }
            other => {
                let why = match other {
                    TaskOutcome::Failed(e) => e,
                    o => format!("unexpected outcome {o:?}"),
                };
                if s.status == SnapshotStatus::Progressing {
                    n.status = SnapshotStatus::Failed;
                    n.failure = Some(why.clone());
                } else {
                    failed_wait = true;
                }
                tracing::warn!(snapshot = %s.id, error = %why, "snapshot task failed");
            }
        }
        w.snapshots.push(n);
        // Disks made from it on other hosts waited for its upload: they go on now, or (the upload
        // failed) their attachment fails and they stay where they were.
        let waiting: Vec<Disk> = state
            .storage
            .disks
            .values()
            .filter(|d| !d.made && matches!(&d.origin, DiskOrigin::Snapshot(x) if x == snapshot_id))
            .filter(|d| d.host_id.as_deref().is_some_and(|h| h != s.host_id))
            .cloned()
            .collect();
        let hosts: Vec<String> = waiting.iter().filter_map(|d| d.host_id.clone()).chain([s.host_id.clone()]).collect();
        if failed_wait {
            for d in &waiting {
                let mut x = d.revised(now);
                if d.kind == DiskKind::Data && d.status == DiskStatus::Attaching {
                    x.attachment = None;
                    x.status = DiskStatus::Available;
                    x.host_id = None;
                    w.disks.push(x);
                }
            }
        }
        self.commit_storage(&mut state, w)?;
        for h in hosts {
            state.bump_host(&h);
        }
        Ok(())
    }

    fn reset_done(&self, disk_id: &str, outcome: TaskOutcome) -> Result<(), DomainError> {
        let mut state = self.write();
        let Some(d) = state.storage.disks.get(disk_id).cloned() else { return Ok(()) };
        if d.status != DiskStatus::ReIniting {
            return Ok(());
        }
        match &outcome {
            TaskOutcome::Done => tracing::info!(disk = %d.id, "disk reset"),
            other => tracing::warn!(disk = %d.id, outcome = ?other, "disk reset failed"),
        }
        let mut n = d.revised(self.now());
        n.status = if d.attachment.is_some() { DiskStatus::InUse } else { DiskStatus::Available };
        self.commit_storage(&mut state, StorageWrites { disks: vec![n], ..Default::default() })?;
        if let Some(h) = &d.host_id {
            state.bump_host(h);
        }
        Ok(())
    }

    fn capture_done(&self, image_id: &str, outcome: TaskOutcome) -> Result<(), DomainError> {
        let mut state = self.write();
        let (Some(mut life), Some(mut image)) =
            (state.storage.image_lives.get(image_id).cloned(), self.image(image_id))
        else {
            // Deleted while it was captured: what was uploaded goes too.
            drop(state);
            self.remove_blob(BlobKind::Image, image_id);
            return Ok(());
        };
        if life.status != ImageStatus::Creating {
            return Ok(());
        }
        let now = self.now();
        life.updated_at = now;
        life.task_id = None;
        match outcome {
            TaskOutcome::Uploaded(info) => {
                life.status = ImageStatus::Available;
                life.progress = 100;
                image.sha256 = Some(info.sha256);
                image.size_bytes = info.size_bytes;
                tracing::info!(image = %image_id, bytes = info.size_bytes, "image captured");
            }
            other => {
                let why = match other {
                    TaskOutcome::Failed(e) => e,
                    o => format!("unexpected outcome {o:?}"),
                };
                tracing::warn!(image = %image_id, error = %why, "image capture failed");
                life.status = ImageStatus::CreateFailed;
                life.failure = Some(why);
            }
        }
        let w = StorageWrites { image_lives: vec![life], ..Default::default() };
        self.store
            .commit(&feiyun_store::WriteSet {
                images: std::slice::from_ref(&image),
                storage: Some(&w),
                ..Default::default()
            })
            .map_err(store_err)?;
        state.storage.apply(&w);
        self.images.write().unwrap_or_else(|p| p.into_inner()).insert(image.id.clone(), image);
        Ok(())
    }

    fn upload_done(&self, disk_id: &str, outcome: TaskOutcome) -> Result<(), DomainError> {
        let mut state = self.write();
        let Some(d) = state.storage.disks.get(disk_id).cloned() else { return Ok(()) };
        let Some(t) = d.transfer.clone() else { return Ok(()) };
        let old_host = d.host_id.clone();
        let mut n = d.revised(self.now());
        n.transfer = None;
        match outcome {
            TaskOutcome::Uploaded(info) => {
                n.host_id = Some(t.to_host.clone());
                n.made = false;
                n.origin = DiskOrigin::Blob(DiskBlob {
                    id: t.blob_id.clone(),
                    sha256: info.sha256,
                    size_bytes: info.size_bytes,
                });
                tracing::info!(disk = %d.id, to = %t.to_host, bytes = info.size_bytes, "disk data moving to its new host");
            }
            other => {
                tracing::warn!(disk = %d.id, outcome = ?other, "disk upload failed: the attachment is given up");
                n.attachment = None;
                n.status = DiskStatus::Available;
                self.remove_blob(BlobKind::Disk, &t.blob_id);
            }
        }
        self.commit_storage(&mut state, StorageWrites { disks: vec![n], ..Default::default() })?;
        for h in old_host.into_iter().chain([t.to_host]) {
            state.bump_host(&h);
        }
        Ok(())
    }

    /// After a start: give instances from before disks were recorded their system disk, send
    /// again the storage tasks hosts had not finished (they are idempotent on the host), ask for
    /// the uploads disks wait for, and fail imports the restart cut short.
    pub(crate) fn resume_storage(&self) -> Result<(), DomainError> {
        let mut state = self.write();
        let now = self.now();
        let mut w = StorageWrites::default();
        let legacy: Vec<feiyun_domain::instance::Instance> = state
            .instances
            .values()
            .filter(|i| i.status != feiyun_domain::instance::InstanceStatus::Deleted)
            .filter(|i| state.storage.system_disk_of(&i.id).is_none())
            .cloned()
            .collect();
        for i in legacy {
            let (category, gib) = self.system_disk(&i.image_id);
            w.disks.push(Disk {
                id: self.with_rng(ids::disk_id),
                account_id: i.account_id.clone(),
                region_id: i.region_id.clone(),
                zone_id: i.zone_id.clone(),
                name: String::new(),
                description: String::new(),
                category: feiyun_domain::storage::DiskCategory::parse(&category)
                    .unwrap_or(feiyun_domain::storage::DiskCategory::CloudEssd),
                kind: DiskKind::System,
                size_gib: gib,
                source_snapshot_id: None,
                image_id: Some(i.image_id.clone()),
                status: DiskStatus::InUse,
                attachment: Some(Attachment { instance_id: i.id.clone(), device: SYSTEM_DEVICE.to_string() }),
                delete_with_instance: true,
                delete_auto_snapshot: true,
                host_id: Some(i.host_id.clone()),
                origin: DiskOrigin::Empty,
                made: true,
                transfer: None,
                created_at: i.created_at,
                attached_at: Some(i.created_at),
                detached_at: None,
                updated_at: now,
                revision: 1,
            });
        }
        let interrupted: Vec<_> = state
            .storage
            .image_lives
            .values()
            .filter(|l| l.status == ImageStatus::Creating && matches!(l.origin, ImageOrigin::Import(_)))
            .cloned()
            .collect();
        for mut l in interrupted {
            l.status = ImageStatus::CreateFailed;
            l.failure = Some("the import was interrupted by a restart of the region".into());
            l.updated_at = now;
            w.image_lives.push(l);
        }
        if !w.is_empty() {
            tracing::info!(
                system_disks = w.disks.len(),
                failed_imports = w.image_lives.len(),
                "storage adopted after start"
            );
        }
        self.commit_storage(&mut state, w)?;
        let deadline = now + STORAGE_TASK_DEADLINE;
        let task_id = || self.with_rng(|r| ids::new_id("task", 20, r));
        let mut resend: Vec<(String, Task, Completion)> = Vec::new();
        for s in state.storage.snapshots.values().filter(|s| s.status == SnapshotStatus::Progressing) {
            resend.push((
                s.host_id.clone(),
                Task::Snapshot(SnapshotTask {
                    id: task_id(),
                    disk_id: s.disk_id.clone(),
                    snapshot_id: s.id.clone(),
                    upload: false,
                }),
                Completion::Storage(StorageCompletion::Snapshot { snapshot_id: s.id.clone() }),
            ));
        }
        for d in state.storage.disks.values() {
            let Some(host) = d.host_id.clone() else { continue };
            if let Some(t) = &d.transfer {
                resend.push((
                    host.clone(),
                    Task::UploadDisk(UploadDiskTask {
                        id: task_id(),
                        disk_id: d.id.clone(),
                        blob_id: t.blob_id.clone(),
                    }),
                    Completion::Storage(StorageCompletion::Upload { disk_id: d.id.clone() }),
                ));
            }
            if d.status == DiskStatus::ReIniting {
                // Which snapshot it was reset to is not recorded: the reset is given up and the
                // disk stays as its host has it.
                tracing::warn!(disk = %d.id, "a reset was cut short by a restart");
            }
        }
        for l in state.storage.image_lives.values().filter(|l| l.status == ImageStatus::Creating) {
            let (host, source) = match &l.origin {
                ImageOrigin::Instance(i) => match state.instances.get(i) {
                    Some(x) => (x.host_id.clone(), CaptureSource::Instance(i.clone())),
                    None => continue,
                },
                ImageOrigin::Snapshot(s) => match state.storage.snapshots.get(s) {
                    Some(x) => (x.host_id.clone(), CaptureSource::Snapshot(s.clone())),
                    None => continue,
                },
                ImageOrigin::Import(_) => continue,
            };
            resend.push((
                host,
                Task::CaptureImage(CaptureImageTask { id: task_id(), image_id: l.image_id.clone(), source }),
                Completion::Storage(StorageCompletion::Capture { image_id: l.image_id.clone() }),
            ));
        }
        let reiniting: Vec<Disk> =
            state.storage.disks.values().filter(|d| d.status == DiskStatus::ReIniting).cloned().collect();
        let mut w = StorageWrites::default();
        for d in reiniting {
            let mut n = d.revised(now);
            n.status = if d.attachment.is_some() { DiskStatus::InUse } else { DiskStatus::Available };
            w.disks.push(n);
        }
        self.commit_storage(&mut state, w)?;
        for (host, task, completion) in resend {
            if self.enqueue(&mut state, &host, task, completion, deadline).is_err() {
                tracing::warn!(host = %host, "cannot resend a storage task: the host is unknown");
            }
        }
        let waiting: Vec<String> = state.storage.disks.keys().cloned().collect();
        self.request_uploads(&mut state, &waiting, now);
        Ok(())
    }
}
