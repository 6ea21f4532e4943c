//! Disk commands: CreateDisk, AttachDisk, DetachDisk, DeleteDisk, ResizeDisk, ResetDisk,
//! ModifyDiskAttribute, DescribeDisks; the disks RunInstances makes with its instances, what
//! releasing an instance does to its disks, and moving a disk's data to another host.

use feiyun_domain::instance::{ChargeType, Instance, InstanceStatus};
use feiyun_domain::ops::{DiskAttributes, DiskFilter, NewDataDisk, NewDisk, ResizeType, SystemDiskSpec};
use feiyun_domain::storage::{
    next_device, valid_data_device, Attachment, Disk, DiskCategory, DiskKind, DiskOrigin, DiskStatus, SnapshotStatus,
    StorageError, Transfer, MAX_DATA_DISKS, SYSTEM_DEVICE,
};
use feiyun_domain::usage::{EventKind, StorageEvent, UsageEvent};
use feiyun_domain::{ids, DomainError, Instant};
use feiyun_hostproto::{Task, UploadDiskTask};
use feiyun_store::StorageWrites;

use super::{disk_usage, STORAGE_TASK_DEADLINE};
use crate::tasks::{Completion, StorageCompletion};
use crate::{store_err, ControlPlane, State};

/// The category of a system disk when none is asked for.
pub const DEFAULT_SYSTEM_CATEGORY: DiskCategory = DiskCategory::CloudEssd;
/// The category of a data disk made with an instance when none is asked for.
pub const DEFAULT_DATA_CATEGORY: DiskCategory = DiskCategory::CloudEfficiency;
/// The category of a disk CreateDisk makes when none is asked for.
pub const DEFAULT_DISK_CATEGORY: DiskCategory = DiskCategory::Cloud;

fn refused(status: DiskStatus) -> DomainError {
    StorageError::IncorrectDiskStatus { status: status.as_str() }.into()
}

/// A system disk's size: the one asked for, or max(40, the image's); within the category's
/// range and never below the image.
pub fn system_disk_gib(category: DiskCategory, asked: Option<u64>, image_gib: u64) -> Result<u64, StorageError> {
    let size = asked.unwrap_or_else(|| image_gib.max(40));
    let (min, max) = category.system_sizes();
    if size < image_gib {
        return Err(StorageError::SystemDiskBelowImage { size, image: image_gib });
    }
    if size < min || size > max {
        return Err(StorageError::SystemDiskSize { size, min, max });
    }
    Ok(size)
}

/// A data disk's size: the one asked for or its snapshot's, within the category's range and
/// never below the snapshot.
pub fn data_disk_gib(
    category: DiskCategory,
    asked: Option<u64>,
    snapshot_gib: Option<u64>,
) -> Result<u64, DomainError> {
    let size = match (asked, snapshot_gib) {
        (Some(s), _) => s,
        (None, Some(s)) => s,
        (None, None) => return Err(DomainError::missing("Size")),
    };
    if let Some(s) = snapshot_gib {
        if size < s {
            return Err(StorageError::SmallerThanSnapshot(s).into());
        }
    }
    let (min, max) = category.data_sizes();
    if size < min || size > max {
        return Err(StorageError::DataDiskSize { category: category.as_str().into(), size, min, max }.into());
    }
    Ok(size)
}

/// The disks of new instances, checked once for all of them.
pub(crate) struct PlannedStorage {
    pub system_category: DiskCategory,
    pub system_gib: u64,
    pub data: Vec<(DiskCategory, u64, NewDataDisk)>,
}

impl ControlPlane {
    /// Check the storage RunInstances asks for: the system disk's category and size, and each
    /// data disk's category, size, snapshot (the account's, finished) and device.
    pub(crate) fn plan_storage(
        &self,
        state: &State,
        account_id: &str,
        image_gib: u64,
        system: &SystemDiskSpec,
        data: &[NewDataDisk],
    ) -> Result<PlannedStorage, DomainError> {
        let system_category = system.category.unwrap_or(DEFAULT_SYSTEM_CATEGORY);
        let system_gib = system_disk_gib(system_category, system.size_gib, image_gib)?;
        if data.len() > MAX_DATA_DISKS {
            return Err(StorageError::TooManyDisks(MAX_DATA_DISKS).into());
        }
        let mut planned = Vec::with_capacity(data.len());
        let mut devices: Vec<&str> = Vec::new();
        for d in data {
            let category = d.category.unwrap_or(DEFAULT_DATA_CATEGORY);
            let snapshot_gib = match &d.snapshot_id {
                None => None,
                Some(s) => {
                    let snap = state.storage.owned_snapshot(account_id, s)?;
                    if snap.status != SnapshotStatus::Accomplished {
                        return Err(StorageError::SnapshotNotReady(s.clone()).into());
                    }
                    Some(snap.source_disk_gib)
                }
            };
            let gib = data_disk_gib(category, d.size_gib, snapshot_gib)?;
            if let Some(dev) = &d.device {
                if !valid_data_device(dev) {
                    return Err(StorageError::DeviceMalformed(dev.clone()).into());
                }
                if devices.contains(&dev.as_str()) {
                    return Err(StorageError::DeviceInUse(dev.clone()).into());
                }
                devices.push(dev);
            }
            planned.push((category, gib, d.clone()));
        }
        Ok(PlannedStorage { system_category, system_gib, data: planned })
    }

    /// The disks of a new instance: its system disk and its data disks, attached on its host.
    pub(crate) fn instance_disks(&self, i: &Instance, plan: &PlannedStorage, now: Instant) -> Vec<Disk> {
        let base = |kind, category, size_gib, name: &str, description: &str| Disk {
            id: self.with_rng(ids::disk_id),
            account_id: i.account_id.clone(),
            region_id: i.region_id.clone(),
            zone_id: i.zone_id.clone(),
            name: name.to_string(),
            description: description.to_string(),
            category,
            kind,
            size_gib,
            source_snapshot_id: None,
            image_id: None,
            status: DiskStatus::InUse,
            attachment: None,
            delete_with_instance: true,
            delete_auto_snapshot: true,
            host_id: Some(i.host_id.clone()),
            origin: DiskOrigin::Empty,
            made: false,
            transfer: None,
            created_at: now,
            attached_at: Some(now),
            detached_at: None,
            updated_at: now,
            revision: 1,
        };
        let mut out = Vec::with_capacity(1 + plan.data.len());
        let system = Disk {
            image_id: Some(i.image_id.clone()),
            attachment: Some(Attachment { instance_id: i.id.clone(), device: SYSTEM_DEVICE.to_string() }),
            // The instance's root filesystem: made with the instance.
            made: true,
            ..base(DiskKind::System, plan.system_category, plan.system_gib, "", "")
        };
        out.push(system);
        let mut taken: Vec<String> = plan.data.iter().filter_map(|(_, _, d)| d.device.clone()).collect();
        for (category, gib, d) in &plan.data {
            let device = match &d.device {
                Some(dev) => dev.clone(),
                None => {
                    let dev = next_device(taken.iter().map(String::as_str)).unwrap_or_default();
                    taken.push(dev.clone());
                    dev
                }
            };
            out.push(Disk {
                status: DiskStatus::Creating,
                attachment: Some(Attachment { instance_id: i.id.clone(), device }),
                delete_with_instance: d.delete_with_instance,
                source_snapshot_id: d.snapshot_id.clone(),
                origin: d.snapshot_id.clone().map(DiskOrigin::Snapshot).unwrap_or(DiskOrigin::Empty),
                ..base(DiskKind::Data, *category, *gib, &d.name, &d.description)
            });
        }
        out
    }

    /// CreateDisk: a data disk of a zone, empty or from a snapshot, attached nowhere (its data is
    /// made on the host it is first attached on).
    pub fn create_disk(&self, account_id: &str, spec: &NewDisk) -> Result<Disk, DomainError> {
        if self.setup.region.zone(&spec.zone_id).is_none() {
            return Err(DomainError::ZoneNotFound(spec.zone_id.clone()));
        }
        if self.in_arrears(account_id)? {
            return Err(DomainError::AccountArrearage);
        }
        let mut state = self.write();
        if let Some(id) = state.replayed(account_id, "CreateDisk", spec.client_token.as_ref())? {
            return state.storage.owned_disk(account_id, &id).cloned();
        }
        let category = spec.category.unwrap_or(DEFAULT_DISK_CATEGORY);
        let snapshot_gib = match &spec.snapshot_id {
            None => None,
            Some(s) => {
                let snap = state.storage.owned_snapshot(account_id, s)?;
                if snap.status != SnapshotStatus::Accomplished {
                    return Err(StorageError::SnapshotNotReady(s.clone()).into());
                }
                Some(snap.source_disk_gib)
            }
        };
        let size_gib = data_disk_gib(category, spec.size_gib, snapshot_gib)?;
        let now = self.now();
        let d = Disk {
            id: self.with_rng(ids::disk_id),
            account_id: account_id.to_string(),
            region_id: self.setup.region.id.clone(),
            zone_id: spec.zone_id.clone(),
            name: spec.name.clone(),
            description: spec.description.clone(),
            category,
            kind: DiskKind::Data,
            size_gib,
            source_snapshot_id: spec.snapshot_id.clone(),
            image_id: None,
            status: DiskStatus::Available,
            attachment: None,
            delete_with_instance: false,
            delete_auto_snapshot: true,
            host_id: None,
            origin: spec.snapshot_id.clone().map(DiskOrigin::Snapshot).unwrap_or(DiskOrigin::Empty),
            made: false,
            transfer: None,
            created_at: now,
            attached_at: None,
            detached_at: None,
            updated_at: now,
            revision: 1,
        };
        let token = crate::token_record(account_id, "CreateDisk", spec.client_token.as_ref(), &d.id);
        let w = StorageWrites {
            disks: vec![d.clone()],
            usage: vec![disk_usage(&d, StorageEvent::Create)],
            ..Default::default()
        };
        self.store
            .commit(&feiyun_store::WriteSet { token: token.as_ref(), storage: Some(&w), ..Default::default() })
            .map_err(store_err)?;
        state.storage.apply(&w);
        if let Some(t) = token {
            state.remember(t);
        }
        tracing::info!(disk = %d.id, size_gib, category = category.as_str(), "disk created");
        Ok(d)
    }

    /// DescribeDisks: the account's disks matching a filter, oldest first.
    pub fn describe_disks(&self, account_id: &str, f: &DiskFilter) -> Vec<Disk> {
        let state = self.read();
        let matches = |d: &&Disk| {
            d.account_id == account_id
                && f.instance_id.as_ref().is_none_or(|i| d.instance_id() == Some(i.as_str()))
                && f.zone_id.as_ref().is_none_or(|z| &d.zone_id == z)
                && f.kind.is_none_or(|k| d.kind == k)
                && f.category.is_none_or(|c| d.category == c)
                && f.status.is_none_or(|s| d.status == s)
                && f.name.as_ref().is_none_or(|n| feiyun_domain::ops::wildcard_match(n, &d.name))
                && f.snapshot_id.as_ref().is_none_or(|s| d.source_snapshot_id.as_ref() == Some(s))
                && f.portable.is_none_or(|p| d.portable() == p)
                && f.delete_with_instance.is_none_or(|x| d.delete_with_instance == x)
        };
        let mut out: Vec<Disk> = match &f.ids {
            Some(ids) => ids.iter().filter_map(|id| state.storage.disks.get(id)).filter(matches).cloned().collect(),
            None => state.storage.disks.values().filter(matches).cloned().collect(),
        };
        out.sort_by(|a, b| {
            (a.created_at, a.kind == DiskKind::Data, &a.id).cmp(&(b.created_at, b.kind == DiskKind::Data, &b.id))
        });
        out.dedup_by(|a, b| a.id == b.id);
        out
    }

    /// A disk of the account.
    pub fn disk(&self, account_id: &str, id: &str) -> Result<Disk, DomainError> {
        self.read().storage.owned_disk(account_id, id).cloned()
    }

    /// AttachDisk: attach a data disk to an instance of its zone, as `device` or the next free
    /// one. Its data is made on the instance's host the first time; a disk whose data is on
    /// another host moves there first (that host uploads it).
    pub fn attach_disk(
        &self,
        account_id: &str,
        instance_id: &str,
        disk_id: &str,
        delete_with_instance: Option<bool>,
        device: Option<&str>,
    ) -> Result<Disk, DomainError> {
        let mut state = self.write();
        let i = state.owned(account_id, instance_id)?.clone();
        let d = state.storage.owned_disk(account_id, disk_id)?.clone();
        if d.kind == DiskKind::System {
            return Err(StorageError::SystemDisk.into());
        }
        if d.attachment.is_some() {
            return Err(StorageError::DiskInUse.into());
        }
        if d.status != DiskStatus::Available {
            return Err(refused(d.status));
        }
        if !matches!(i.status, InstanceStatus::Running | InstanceStatus::Stopped) {
            return Err(DomainError::IncorrectStatus { status: i.status });
        }
        if d.zone_id != i.zone_id {
            return Err(StorageError::ZoneMismatch.into());
        }
        let attached: Vec<&Disk> = state.storage.disks_of(&i.id).filter(|x| x.kind == DiskKind::Data).collect();
        if attached.len() >= MAX_DATA_DISKS {
            return Err(StorageError::TooManyDisks(MAX_DATA_DISKS).into());
        }
        let taken: Vec<&str> =
            attached.iter().filter_map(|x| x.attachment.as_ref().map(|a| a.device.as_str())).collect();
        let device = match device {
            Some(dev) if !valid_data_device(dev) => return Err(StorageError::DeviceMalformed(dev.into()).into()),
            Some(dev) if taken.contains(&dev) => return Err(StorageError::DeviceInUse(dev.into()).into()),
            Some(dev) => dev.to_string(),
            None => next_device(taken.iter().copied()).ok_or(StorageError::TooManyDisks(MAX_DATA_DISKS))?,
        };
        let now = self.now();
        let mut n = d.revised(now);
        n.attachment = Some(Attachment { instance_id: i.id.clone(), device });
        n.delete_with_instance = delete_with_instance.unwrap_or(false);
        n.status = DiskStatus::Attaching;
        let mut upload = None;
        match d.host_id.as_deref() {
            Some(h) if h != i.host_id && d.made => {
                // Its data is on another host: that host uploads it, then the instance's host
                // makes the disk from the upload.
                if state.hosts.get(h).is_none_or(|s| s.unreachable) {
                    return Err(StorageError::HostUnavailable(h.to_string()).into());
                }
                let task_id = self.with_rng(|r| ids::new_id("task", 20, r));
                let blob_id = format!("{}-r{}", d.id, n.revision);
                n.transfer =
                    Some(Transfer { to_host: i.host_id.clone(), blob_id: blob_id.clone(), task_id: task_id.clone() });
                upload = Some((
                    h.to_string(),
                    Task::UploadDisk(UploadDiskTask { id: task_id, disk_id: d.id.clone(), blob_id }),
                ));
            }
            _ => {
                n.host_id = Some(i.host_id.clone());
                n.made = d.made && d.host_id.as_deref() == Some(i.host_id.as_str());
            }
        }
        let w = StorageWrites { disks: vec![n.clone()], ..Default::default() };
        self.store.commit(&feiyun_store::WriteSet { storage: Some(&w), ..Default::default() }).map_err(store_err)?;
        state.storage.apply(&w);
        for h in [d.host_id.clone(), Some(i.host_id.clone())].into_iter().flatten() {
            state.bump_host(&h);
        }
        if let Some((host, task)) = upload {
            let completion = Completion::Storage(StorageCompletion::Upload { disk_id: d.id.clone() });
            if self.enqueue(&mut state, &host, task, completion, now + STORAGE_TASK_DEADLINE).is_err() {
                // Checked above under the same lock; cannot happen.
                tracing::error!(disk = %d.id, host = %host, "the upload task could not be sent");
            }
        }
        self.request_uploads(&mut state, std::slice::from_ref(&n.id), now);
        tracing::info!(disk = %d.id, instance = %i.id, "disk attaching");
        Ok(n)
    }

    /// DetachDisk: detach a data disk from its instance (the host unmounts it and keeps its data).
    pub fn detach_disk(
        &self,
        account_id: &str,
        instance_id: &str,
        disk_id: &str,
        delete_with_instance: Option<bool>,
    ) -> Result<Disk, DomainError> {
        let mut state = self.write();
        let i = state.owned(account_id, instance_id)?.clone();
        let d = state.storage.owned_disk(account_id, disk_id)?.clone();
        if d.kind == DiskKind::System {
            return Err(StorageError::SystemDisk.into());
        }
        if d.instance_id() != Some(i.id.as_str()) {
            return Err(StorageError::NotAttachedThere.into());
        }
        if d.status != DiskStatus::InUse {
            return Err(refused(d.status));
        }
        if !matches!(i.status, InstanceStatus::Running | InstanceStatus::Stopped) {
            return Err(DomainError::IncorrectStatus { status: i.status });
        }
        let now = self.now();
        let mut n = d.revised(now);
        n.attachment = None;
        n.delete_with_instance = delete_with_instance.unwrap_or(false);
        n.detached_at = Some(now);
        // The host reports it unmounted; one whose host never made it has nothing to unmount.
        n.status = if d.made { DiskStatus::Detaching } else { DiskStatus::Available };
        let w = StorageWrites { disks: vec![n.clone()], ..Default::default() };
        self.store.commit(&feiyun_store::WriteSet { storage: Some(&w), ..Default::default() }).map_err(store_err)?;
        state.storage.apply(&w);
        if let Some(h) = &d.host_id {
            state.bump_host(h);
        }
        tracing::info!(disk = %d.id, instance = %i.id, "disk detaching");
        Ok(n)
    }

    /// DeleteDisk: release a detached data disk (its host removes its data; its snapshots stay).
    pub fn delete_disk(&self, account_id: &str, disk_id: &str) -> Result<(), DomainError> {
        let mut state = self.write();
        let d = state.storage.owned_disk(account_id, disk_id)?.clone();
        if d.kind == DiskKind::System {
            return Err(StorageError::SystemDisk.into());
        }
        if d.attachment.is_some() {
            return Err(StorageError::DiskStillAttached.into());
        }
        if d.status != DiskStatus::Available {
            return Err(refused(d.status));
        }
        if state.storage.snapshots.values().any(|s| s.disk_id == d.id && s.status == SnapshotStatus::Progressing) {
            return Err(StorageError::DiskCreatingSnapshot.into());
        }
        let now = self.now();
        let mut n = d.revised(now);
        n.status = DiskStatus::Deleted;
        let w =
            StorageWrites { usage: vec![disk_usage(&n, StorageEvent::Release)], disks: vec![n], ..Default::default() };
        self.store.commit(&feiyun_store::WriteSet { storage: Some(&w), ..Default::default() }).map_err(store_err)?;
        state.storage.apply(&w);
        if let Some(h) = &d.host_id {
            state.bump_host(h);
        }
        if let DiskOrigin::Blob(b) = &d.origin {
            self.remove_blob(feiyun_hostproto::BlobKind::Disk, &b.id);
        }
        tracing::info!(disk = %d.id, "disk released");
        Ok(())
    }

    /// ResizeDisk: grow a disk (never shrink it). Offline takes effect when its instance
    /// restarts, or at once on a detached disk; online needs its instance running. A system
    /// disk is billed with its instance (an instance usage event); a subscription instance's is
    /// not resized here.
    pub fn resize_disk(
        &self,
        account_id: &str,
        disk_id: &str,
        new_gib: u64,
        how: ResizeType,
    ) -> Result<Disk, DomainError> {
        let mut state = self.write();
        let d = state.storage.owned_disk(account_id, disk_id)?.clone();
        if new_gib <= d.size_gib {
            return Err(StorageError::ShrinkRefused(d.size_gib).into());
        }
        let max = match d.kind {
            DiskKind::System => d.category.system_sizes().1,
            DiskKind::Data => d.category.data_sizes().1,
        };
        if new_gib > max {
            return Err(StorageError::TooLarge { max }.into());
        }
        if !matches!(d.status, DiskStatus::Available | DiskStatus::InUse) {
            return Err(refused(d.status));
        }
        if state.storage.snapshots.values().any(|s| s.disk_id == d.id && s.status == SnapshotStatus::Progressing) {
            return Err(StorageError::DiskCreatingSnapshot.into());
        }
        let instance = d.instance_id().and_then(|i| state.instances.get(i)).cloned();
        if how == ResizeType::Online {
            match &instance {
                Some(i) if d.status == DiskStatus::InUse && i.status == InstanceStatus::Running => {}
                Some(i) => return Err(DomainError::IncorrectStatus { status: i.status }),
                None => return Err(refused(d.status)),
            }
        }
        let now = self.now();
        let mut n = d.revised(now);
        n.size_gib = new_gib;
        let mut w = StorageWrites { disks: vec![n.clone()], ..Default::default() };
        let mut instances = Vec::new();
        let mut usage = Vec::new();
        match d.kind {
            DiskKind::Data => w.usage.push(disk_usage(&n, StorageEvent::Resize)),
            DiskKind::System => {
                let i =
                    instance.ok_or_else(|| DomainError::Internal(format!("system disk {} has no instance", d.id)))?;
                if i.charge_type == ChargeType::PrePaid {
                    return Err(DomainError::ChargeTypeViolation { charge: "PrePaid" });
                }
                let ni = i.revised(now);
                usage.push(self.usage_event_sized(&ni, EventKind::Resize, (n.category.as_str(), n.size_gib)));
                instances.push(ni);
            }
        }
        self.store
            .commit(&feiyun_store::WriteSet {
                instances: &instances,
                usage: &usage,
                storage: Some(&w),
                ..Default::default()
            })
            .map_err(store_err)?;
        state.storage.apply(&w);
        for i in instances {
            state.put(i);
        }
        if let Some(h) = &d.host_id {
            state.bump_host(h);
        }
        tracing::info!(disk = %d.id, size_gib = new_gib, "disk resized");
        Ok(n)
    }

    /// ModifyDiskAttribute of one disk.
    pub fn modify_disk(&self, account_id: &str, disk_ids: &[String], a: &DiskAttributes) -> Result<(), DomainError> {
        let mut state = self.write();
        let now = self.now();
        let mut changed = Vec::new();
        for id in disk_ids {
            let d = state.storage.owned_disk(account_id, id)?;
            if a.delete_with_instance.is_some() && d.kind == DiskKind::System {
                return Err(StorageError::SystemDisk.into());
            }
            let mut n = d.revised(now);
            if let Some(x) = &a.name {
                n.name = x.clone();
            }
            if let Some(x) = &a.description {
                n.description = x.clone();
            }
            if let Some(x) = a.delete_with_instance {
                n.delete_with_instance = x;
            }
            if let Some(x) = a.delete_auto_snapshot {
                n.delete_auto_snapshot = x;
            }
            changed.push(n);
        }
        let w = StorageWrites { disks: changed, ..Default::default() };
        self.store.commit(&feiyun_store::WriteSet { storage: Some(&w), ..Default::default() }).map_err(store_err)?;
        state.storage.apply(&w);
        Ok(())
    }

    /// What releasing instances does to their disks: the system disk and the data disks meant
    /// to go with them are released; the others are detached (their host keeps their data).
    pub(crate) fn release_disk_writes<'a>(
        &self,
        state: &State,
        instance_ids: impl Iterator<Item = &'a str>,
        now: Instant,
    ) -> StorageWrites {
        let mut w = StorageWrites::default();
        for id in instance_ids {
            for d in state.storage.disks_of(id) {
                let mut n = d.revised(now);
                n.attachment = None;
                n.transfer = None;
                n.detached_at = Some(now);
                if d.kind == DiskKind::System || d.delete_with_instance {
                    n.status = DiskStatus::Deleted;
                    if d.kind == DiskKind::Data {
                        w.usage.push(disk_usage(&n, StorageEvent::Release));
                    }
                } else {
                    n.status = DiskStatus::Available;
                    n.delete_with_instance = false;
                    if !d.made {
                        // Never made on its host: it starts from its origin wherever it goes.
                        n.host_id = None;
                    }
                }
                w.disks.push(n);
            }
        }
        w
    }

    /// What moving an instance to another host (evacuation) does to its disks: they follow it,
    /// and are made afresh there from their origin (their data on the fenced host is lost).
    pub(crate) fn moved_disk_writes(&self, state: &State, i: &Instance, to_host: &str, now: Instant) -> StorageWrites {
        let mut w = StorageWrites::default();
        for d in state.storage.disks_of(&i.id) {
            let mut n = d.revised(now);
            n.host_id = Some(to_host.to_string());
            n.transfer = None;
            if d.kind == DiskKind::Data {
                n.made = false;
                n.status = DiskStatus::Attaching;
                let origin_reachable = match &d.origin {
                    DiskOrigin::Snapshot(s) => {
                        state.storage.snapshots.get(s).is_some_and(|x| x.blob.is_some() || x.host_id == to_host)
                    }
                    DiskOrigin::Blob(_) | DiskOrigin::Empty => true,
                };
                if !origin_reachable {
                    n.origin = DiskOrigin::Empty;
                }
            }
            w.disks.push(n);
        }
        w
    }

    /// Ask the hosts keeping snapshots that disks of `disk_ids` wait for to upload them.
    pub(crate) fn request_uploads(&self, state: &mut State, disk_ids: &[String], now: Instant) {
        let wanted: Vec<(String, String, String)> = disk_ids
            .iter()
            .filter_map(|id| state.storage.disks.get(id))
            .filter_map(|d| state.storage.awaited_snapshot(d))
            .filter(|s| !state.storage.uploading.contains(&s.id))
            .map(|s| (s.host_id.clone(), s.disk_id.clone(), s.id.clone()))
            .collect();
        for (host, disk_id, snapshot_id) in wanted {
            let task = Task::Snapshot(feiyun_hostproto::SnapshotTask {
                id: self.with_rng(|r| ids::new_id("task", 20, r)),
                disk_id,
                snapshot_id: snapshot_id.clone(),
                upload: true,
            });
            let completion = Completion::Storage(StorageCompletion::Snapshot { snapshot_id: snapshot_id.clone() });
            match self.enqueue(state, &host, task, completion, now + STORAGE_TASK_DEADLINE) {
                Ok(()) => {
                    state.storage.uploading.insert(snapshot_id.clone());
                    tracing::info!(snapshot = %snapshot_id, host = %host, "snapshot upload asked for");
                }
                Err(_) => {
                    tracing::warn!(snapshot = %snapshot_id, host = %host, "cannot ask for a snapshot upload: its host is unreachable")
                }
            }
        }
    }

    /// The usage event of an instance's transition, with its system disk as it stands in
    /// `state` (an instance from before disks were recorded: the image's size, in the default
    /// category).
    pub(crate) fn usage_event(&self, state: &State, i: &Instance, kind: EventKind) -> UsageEvent {
        let disk = state.storage.system_disk_of(&i.id).map(|d| (d.category.as_str(), d.size_gib));
        let legacy;
        let disk = match disk {
            Some(d) => d,
            None => {
                legacy = self.system_disk(&i.image_id);
                (legacy.0.as_str(), legacy.1)
            }
        };
        self.usage_event_sized(i, kind, disk)
    }
}
