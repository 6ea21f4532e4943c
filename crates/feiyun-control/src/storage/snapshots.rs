//! Snapshot commands: CreateSnapshot, DescribeSnapshots, DeleteSnapshot, and ResetDisk (a disk
//! put back as one of its snapshots was).

use feiyun_domain::instance::InstanceStatus;
use feiyun_domain::ops::SnapshotFilter;
use feiyun_domain::storage::{DiskKind, DiskOrigin, DiskStatus, ImageOrigin, Snapshot, SnapshotStatus, StorageError};
use feiyun_domain::usage::StorageEvent;
use feiyun_domain::{ids, DomainError};
use feiyun_hostproto::{ResetDiskTask, SnapshotTask, Task};
use feiyun_store::StorageWrites;

use super::{snapshot_usage, STORAGE_TASK_DEADLINE};
use crate::tasks::{Completion, StorageCompletion};
use crate::{store_err, ControlPlane};

impl ControlPlane {
    /// CreateSnapshot: a crash-consistent snapshot of a data disk, taken by the host holding
    /// its data. A system disk is its instance's root filesystem (CreateImage captures it); a disk
    /// never attached holds no data yet.
    pub fn create_snapshot(
        &self,
        account_id: &str,
        disk_id: &str,
        name: &str,
        description: &str,
        client_token: Option<&feiyun_domain::ops::ClientToken>,
    ) -> Result<Snapshot, DomainError> {
        let mut state = self.write();
        if let Some(id) = state.replayed(account_id, "CreateSnapshot", client_token)? {
            return state.storage.owned_snapshot(account_id, &id).cloned();
        }
        let d = state.storage.owned_disk(account_id, disk_id)?.clone();
        if d.kind == DiskKind::System {
            return Err(StorageError::SystemDiskSnapshot.into());
        }
        let Some(host) = d.host_id.clone().filter(|_| d.made) else {
            return Err(StorageError::NeverAttached.into());
        };
        if !matches!(d.status, DiskStatus::Available | DiskStatus::InUse) || d.transfer.is_some() {
            return Err(StorageError::IncorrectDiskStatus { status: d.status.as_str() }.into());
        }
        if state.storage.snapshots.values().any(|s| s.disk_id == d.id && s.status == SnapshotStatus::Progressing) {
            return Err(StorageError::CreatingSnapshot.into());
        }
        if state.hosts.get(&host).is_none_or(|s| s.unreachable) {
            return Err(StorageError::HostUnavailable(host).into());
        }
        let now = self.now();
        let s = Snapshot {
            id: self.with_rng(ids::snapshot_id),
            account_id: account_id.to_string(),
            region_id: self.setup.region.id.clone(),
            name: name.to_string(),
            description: description.to_string(),
            disk_id: d.id.clone(),
            disk_kind: d.kind,
            disk_category: d.category,
            source_disk_gib: d.size_gib,
            status: SnapshotStatus::Progressing,
            host_id: host.clone(),
            size_bytes: 0,
            blob: None,
            failure: None,
            created_at: now,
            finished_at: None,
            updated_at: now,
            revision: 1,
        };
        let w = StorageWrites { snapshots: vec![s.clone()], ..Default::default() };
        let token = crate::token_record(account_id, "CreateSnapshot", client_token, &s.id);
        self.store
            .commit(&feiyun_store::WriteSet { storage: Some(&w), token: token.as_ref(), ..Default::default() })
            .map_err(store_err)?;
        state.storage.apply(&w);
        if let Some(t) = token {
            state.remember(t);
        }
        let task = Task::Snapshot(SnapshotTask {
            id: self.with_rng(|r| ids::new_id("task", 20, r)),
            disk_id: d.id.clone(),
            snapshot_id: s.id.clone(),
            upload: false,
        });
        let completion = Completion::Storage(StorageCompletion::Snapshot { snapshot_id: s.id.clone() });
        if self.enqueue(&mut state, &host, task, completion, now + STORAGE_TASK_DEADLINE).is_err() {
            tracing::error!(snapshot = %s.id, host = %host, "the snapshot task could not be sent");
        }
        tracing::info!(snapshot = %s.id, disk = %d.id, host = %host, "snapshot asked for");
        Ok(s)
    }

    /// DescribeSnapshots: the account's snapshots matching a filter, newest first.
    pub fn describe_snapshots(&self, account_id: &str, f: &SnapshotFilter) -> Vec<Snapshot> {
        let state = self.read();
        let disks_of_instance: Option<Vec<&str>> = f.instance_id.as_ref().map(|i| {
            state
                .storage
                .disks
                .values()
                .filter(|d| d.instance_id() == Some(i.as_str()))
                .map(|d| d.id.as_str())
                .collect()
        });
        let matches = |s: &&Snapshot| {
            s.account_id == account_id
                && f.disk_id.as_ref().is_none_or(|d| &s.disk_id == d)
                && disks_of_instance.as_ref().is_none_or(|ds| ds.contains(&s.disk_id.as_str()))
                && f.name.as_ref().is_none_or(|n| feiyun_domain::ops::wildcard_match(n, &s.name))
                && f.status.is_none_or(|st| s.status == st)
                && f.disk_kind.is_none_or(|k| s.disk_kind == k)
        };
        let mut out: Vec<Snapshot> = match &f.ids {
            Some(ids) => ids.iter().filter_map(|id| state.storage.snapshots.get(id)).filter(matches).cloned().collect(),
            None => state.storage.snapshots.values().filter(matches).cloned().collect(),
        };
        out.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        out.dedup_by(|a, b| a.id == b.id);
        out
    }

    /// What a snapshot is used for (DescribeSnapshots `Usage`): `image`, `disk`, `image_disk`
    /// or `none`.
    pub fn snapshot_usage_of(&self, snapshot_id: &str) -> &'static str {
        let state = self.read();
        let disk = state.storage.disks.values().any(|d| d.source_snapshot_id.as_deref() == Some(snapshot_id));
        let image = state
            .storage
            .image_lives
            .values()
            .any(|l| matches!(&l.origin, ImageOrigin::Snapshot(s) if s == snapshot_id));
        match (image, disk) {
            (true, true) => "image_disk",
            (true, false) => "image",
            (false, true) => "disk",
            (false, false) => "none",
        }
    }

    /// DeleteSnapshot. Refused while images made from it exist, and while disks made from it
    /// exist unless `force` — and even then while a disk made from it is still to be made.
    /// A snapshot being taken is deleted too (its host drops it once its task ends).
    pub fn delete_snapshot(&self, account_id: &str, snapshot_id: &str, force: bool) -> Result<(), DomainError> {
        let mut state = self.write();
        let s = state.storage.owned_snapshot(account_id, snapshot_id)?.clone();
        if state.storage.image_lives.values().any(|l| matches!(&l.origin, ImageOrigin::Snapshot(x) if x == snapshot_id))
        {
            return Err(StorageError::SnapshotCreatedImage(s.id).into());
        }
        let used = state.storage.disks.values().filter(|d| d.source_snapshot_id.as_deref() == Some(snapshot_id));
        let mut pending = false;
        let mut any = false;
        for d in used {
            any = true;
            pending |= !d.made && matches!(&d.origin, DiskOrigin::Snapshot(x) if x == snapshot_id);
        }
        if (any && !force) || pending {
            return Err(StorageError::SnapshotCreatedDisk(s.id).into());
        }
        let zone = state.storage.disks.get(&s.disk_id).map(|d| d.zone_id.clone()).unwrap_or_default();
        let now = self.now();
        let mut n = s.revised(now);
        n.status = SnapshotStatus::Deleted;
        let mut w = StorageWrites::default();
        if s.status == SnapshotStatus::Accomplished {
            w.usage.push(snapshot_usage(&n, &zone, StorageEvent::Release));
        }
        w.snapshots.push(n);
        self.store.commit(&feiyun_store::WriteSet { storage: Some(&w), ..Default::default() }).map_err(store_err)?;
        state.storage.apply(&w);
        state.storage.uploading.remove(&s.id);
        state.bump_host(&s.host_id);
        if s.blob.is_some() {
            self.remove_blob(feiyun_hostproto::BlobKind::Snapshot, &s.id);
        }
        tracing::info!(snapshot = %s.id, "snapshot deleted");
        Ok(())
    }

    /// ResetDisk: put a disk back as one of its snapshots was. The disk must be detached, or its
    /// instance stopped; the snapshot must be kept on the host holding the disk's data.
    pub fn reset_disk(
        &self,
        account_id: &str,
        disk_id: &str,
        snapshot_id: &str,
        dry_run: bool,
    ) -> Result<(), DomainError> {
        let mut state = self.write();
        let d = state.storage.owned_disk(account_id, disk_id)?.clone();
        let s = state.storage.owned_snapshot(account_id, snapshot_id)?.clone();
        if s.disk_id != d.id {
            return Err(StorageError::SnapshotOfAnotherDisk(s.id).into());
        }
        if s.status != SnapshotStatus::Accomplished {
            return Err(StorageError::SnapshotNotReady(s.id).into());
        }
        if let Some(i) = d.instance_id().and_then(|i| state.instances.get(i)) {
            if i.status != InstanceStatus::Stopped {
                return Err(DomainError::IncorrectStatus { status: i.status });
            }
        }
        if !matches!(d.status, DiskStatus::Available | DiskStatus::InUse) || d.transfer.is_some() {
            return Err(StorageError::IncorrectDiskStatus { status: d.status.as_str() }.into());
        }
        if state.storage.snapshots.values().any(|x| x.disk_id == d.id && x.status == SnapshotStatus::Progressing) {
            return Err(StorageError::DiskCreatingSnapshot.into());
        }
        let host = d.host_id.clone().unwrap_or_default();
        if !d.made || host != s.host_id {
            return Err(StorageError::SnapshotElsewhere(s.id).into());
        }
        if state.hosts.get(&host).is_none_or(|h| h.unreachable) {
            return Err(StorageError::HostUnavailable(host).into());
        }
        if dry_run {
            return Err(DomainError::DryRunOk);
        }
        let now = self.now();
        let mut n = d.revised(now);
        n.status = DiskStatus::ReIniting;
        let w = StorageWrites { disks: vec![n], ..Default::default() };
        self.store.commit(&feiyun_store::WriteSet { storage: Some(&w), ..Default::default() }).map_err(store_err)?;
        state.storage.apply(&w);
        let task = Task::ResetDisk(ResetDiskTask {
            id: self.with_rng(|r| ids::new_id("task", 20, r)),
            disk_id: d.id.clone(),
            snapshot_id: s.id.clone(),
        });
        let completion = Completion::Storage(StorageCompletion::Reset { disk_id: d.id.clone() });
        if self.enqueue(&mut state, &host, task, completion, now + STORAGE_TASK_DEADLINE).is_err() {
            tracing::error!(disk = %d.id, host = %host, "the reset task could not be sent");
        }
        tracing::info!(disk = %d.id, snapshot = %s.id, "disk resetting");
        Ok(())
    }
}
