//! The region's storage: disks (system and data), snapshots, the images accounts make or import
//! and whom they are shared with, and SSH key pairs — in memory beside the instances, written
//! through with them.
//!
//! Where a disk's data lives is decided here: on the host where it was last attached (a disk
//! never attached has none, and is made on the first host it is attached on, from its origin).
//! Every host's intent lists the disks whose data it keeps, with their attachments, and the
//! snapshots it keeps; snapshots, resets, image captures and moves of a disk's data to another
//! host are tasks. What depends on a host (a disk made, attached, detached, reset; a snapshot
//! taken; an image captured) completes when the host reports it.

mod disks;
mod images;
pub(crate) mod import;
mod keypairs;
mod reports;
mod snapshots;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use feiyun_domain::storage::{Disk, DiskKind, DiskOrigin, DiskStatus, ImageLife, KeyPair, Snapshot};
use feiyun_domain::usage::{StorageEvent, StorageItem, StorageUsage};
use feiyun_hostproto::{BlobKind, BlobRef, DiskAttachment, DiskSource, DiskSpec};
use feiyun_store::{StorageLoaded, StorageWrites};

pub use disks::{
    data_disk_gib, system_disk_gib, DEFAULT_DATA_CATEGORY, DEFAULT_DISK_CATEGORY, DEFAULT_SYSTEM_CATEGORY,
};
pub use images::ImageView;
pub use import::{ImageImporter, ImportedImage};
pub use keypairs::{fingerprint, CreatedKeyPair};

use crate::State;

/// How long a host may take over a storage task (a snapshot, a reset, a capture, an upload)
/// before it counts as failed.
pub(crate) const STORAGE_TASK_DEADLINE: chrono::Duration = chrono::Duration::hours(2);

/// The region's storage in memory, with the indexes lookups need.
#[derive(Default)]
pub(crate) struct StorageState {
    /// Live disks by id (released ones are dropped).
    pub disks: BTreeMap<String, Disk>,
    /// Live snapshots by id.
    pub snapshots: BTreeMap<String, Snapshot>,
    /// By (account, name).
    pub key_pairs: BTreeMap<(String, String), KeyPair>,
    /// The images accounts made or imported, by image id.
    pub image_lives: BTreeMap<String, ImageLife>,
    /// Disks by the instance they are attached to.
    by_instance: HashMap<String, BTreeSet<String>>,
    /// Disks by the host holding (or about to make) their data.
    by_host: HashMap<String, BTreeSet<String>>,
    /// Snapshots a host is uploading for a disk on another host (at most one upload each).
    pub uploading: HashSet<String>,
}

impl StorageState {
    pub fn from_loaded(l: StorageLoaded) -> StorageState {
        let mut s = StorageState::default();
        for d in l.disks {
            s.put_disk(d);
        }
        for x in l.snapshots {
            s.snapshots.insert(x.id.clone(), x);
        }
        for k in l.key_pairs {
            s.key_pairs.insert((k.account_id.clone(), k.name.clone()), k);
        }
        for i in l.image_lives {
            s.image_lives.insert(i.image_id.clone(), i);
        }
        s
    }

    fn unindex(&mut self, d: &Disk) {
        if let Some(i) = d.instance_id() {
            if let Some(set) = self.by_instance.get_mut(i) {
                set.remove(&d.id);
            }
        }
        if let Some(h) = &d.host_id {
            if let Some(set) = self.by_host.get_mut(h) {
                set.remove(&d.id);
            }
        }
    }

    /// Record a disk as persisted (a released one is forgotten).
    pub fn put_disk(&mut self, d: Disk) {
        if let Some(old) = self.disks.remove(&d.id) {
            self.unindex(&old);
        }
        if !d.live() {
            return;
        }
        if let Some(i) = d.instance_id() {
            self.by_instance.entry(i.to_string()).or_default().insert(d.id.clone());
        }
        if let Some(h) = &d.host_id {
            self.by_host.entry(h.clone()).or_default().insert(d.id.clone());
        }
        self.disks.insert(d.id.clone(), d);
    }

    /// Apply what was persisted.
    pub fn apply(&mut self, w: &StorageWrites) {
        for d in &w.disks {
            self.put_disk(d.clone());
        }
        for s in &w.snapshots {
            if s.live() {
                self.snapshots.insert(s.id.clone(), s.clone());
            } else {
                self.snapshots.remove(&s.id);
            }
        }
        for (a, n) in &w.deleted_key_pairs {
            self.key_pairs.remove(&(a.clone(), n.clone()));
        }
        for k in &w.key_pairs {
            self.key_pairs.insert((k.account_id.clone(), k.name.clone()), k.clone());
        }
        for id in &w.deleted_images {
            self.image_lives.remove(id);
        }
        for l in &w.image_lives {
            self.image_lives.insert(l.image_id.clone(), l.clone());
        }
    }

    /// Disks attached (or being attached) to an instance.
    pub fn disks_of<'a>(&'a self, instance_id: &str) -> impl Iterator<Item = &'a Disk> + 'a {
        self.by_instance.get(instance_id).into_iter().flatten().filter_map(|id| self.disks.get(id))
    }

    pub fn system_disk_of(&self, instance_id: &str) -> Option<&Disk> {
        self.disks_of(instance_id).find(|d| d.kind == DiskKind::System)
    }

    /// Disks whose data a host holds (or is to make).
    pub fn disks_on<'a>(&'a self, host_id: &str) -> impl Iterator<Item = &'a Disk> + 'a {
        self.by_host.get(host_id).into_iter().flatten().filter_map(|id| self.disks.get(id))
    }

    /// A live disk of the account; another tenant's is as missing as a released one.
    pub fn owned_disk(&self, account_id: &str, id: &str) -> Result<&Disk, feiyun_domain::DomainError> {
        self.disks
            .get(id)
            .filter(|d| d.account_id == account_id)
            .ok_or_else(|| feiyun_domain::storage::StorageError::DiskNotFound(id.to_string()).into())
    }

    pub fn owned_snapshot(&self, account_id: &str, id: &str) -> Result<&Snapshot, feiyun_domain::DomainError> {
        self.snapshots
            .get(id)
            .filter(|s| s.account_id == account_id)
            .ok_or_else(|| feiyun_domain::storage::StorageError::SnapshotNotFound(id.to_string()).into())
    }

    /// Where a host that does not hold `d`'s data yet makes it from, when it can now: its
    /// snapshot on that host or uploaded, or its uploaded data. A disk already made there needs
    /// none (its snapshot may be gone): it gets an empty source the host ignores.
    pub fn source_for(&self, d: &Disk, host_id: &str) -> Option<DiskSource> {
        let source = match &d.origin {
            DiskOrigin::Empty => Some(DiskSource::Empty),
            DiskOrigin::Snapshot(s) => self.snapshots.get(s).and_then(|snap| {
                if snap.host_id == host_id && snap.status == feiyun_domain::storage::SnapshotStatus::Accomplished {
                    Some(DiskSource::LocalSnapshot(s.clone()))
                } else {
                    snap.blob.as_ref().map(|b| {
                        DiskSource::Blob(BlobRef {
                            kind: BlobKind::Snapshot,
                            id: s.clone(),
                            sha256: b.sha256.clone(),
                            size_bytes: b.size_bytes,
                        })
                    })
                }
            }),
            DiskOrigin::Blob(b) => Some(DiskSource::Blob(BlobRef {
                kind: BlobKind::Disk,
                id: b.id.clone(),
                sha256: b.sha256.clone(),
                size_bytes: b.size_bytes,
            })),
        };
        if d.made {
            return Some(source.unwrap_or(DiskSource::Empty));
        }
        source
    }

    /// The snapshot a disk waits for before its host can make it: one kept on another host and
    /// not uploaded yet.
    pub fn awaited_snapshot(&self, d: &Disk) -> Option<&Snapshot> {
        let host = d.host_id.as_deref()?;
        if d.made || d.transfer.is_some() {
            return None;
        }
        match &d.origin {
            DiskOrigin::Snapshot(s) => self.snapshots.get(s).filter(|snap| snap.host_id != host && snap.blob.is_none()),
            _ => None,
        }
    }
}

impl State {
    /// Bump a host's intent revision: what it must have changed (its disks or snapshots), or it
    /// must hear the region's word on an instance.
    pub(crate) fn bump_host(&mut self, host_id: &str) {
        if let Some(slot) = self.hosts.get_mut(host_id) {
            slot.bump();
        }
    }

    /// The disks a host keeps, as its intent lists them. A data disk is attached there when its
    /// instance runs on that host; a system disk is the instance's root filesystem, not a disk
    /// of the host's; a disk whose data is on its way elsewhere is listed, detached, until it
    /// arrived.
    pub(crate) fn host_disk_specs(&self, host_id: &str) -> Vec<DiskSpec> {
        let mut out = Vec::new();
        for d in self.storage.disks_on(host_id) {
            if d.kind != DiskKind::Data || d.status == DiskStatus::Deleted {
                continue;
            }
            let Some(source) = self.storage.source_for(d, host_id) else { continue };
            let attachment = d
                .attachment
                .as_ref()
                .filter(|_| d.transfer.is_none() && d.status != DiskStatus::Detaching)
                .filter(|a| self.instances.get(&a.instance_id).is_some_and(|i| i.host_id == host_id))
                .map(|a| DiskAttachment { instance_id: a.instance_id.clone(), device: a.device.clone() });
            out.push(DiskSpec { disk_id: d.id.clone(), size_gib: d.size_gib, source, attachment });
        }
        out
    }

    /// The snapshots a host keeps: every live one it took (one being taken included).
    pub(crate) fn host_snapshots(&self, host_id: &str) -> Vec<String> {
        self.storage.snapshots.values().filter(|s| s.host_id == host_id).map(|s| s.id.clone()).collect()
    }

    /// The OpenSSH public keys an instance's root accepts: its key pair's.
    pub(crate) fn authorized_keys(&self, i: &feiyun_domain::instance::Instance) -> Vec<String> {
        i.key_pair_name
            .as_ref()
            .and_then(|n| self.storage.key_pairs.get(&(i.account_id.clone(), n.clone())))
            .map(|k| vec![k.public_key.clone()])
            .unwrap_or_default()
    }
}

/// The usage event of a data disk's change (its revision and instant are the change's).
pub(crate) fn disk_usage(d: &Disk, kind: StorageEvent) -> StorageUsage {
    StorageUsage {
        key: StorageUsage::key_for(&d.id, kind, d.updated_at.timestamp_millis(), d.revision),
        resource_id: d.id.clone(),
        account_id: d.account_id.clone(),
        item: StorageItem::DataDisk,
        category: d.category.as_str().to_string(),
        gib: d.size_gib,
        zone_id: d.zone_id.clone(),
        at_s: d.updated_at.timestamp(),
        kind,
        seq: d.revision,
    }
}

/// The usage event of a snapshot's change.
pub(crate) fn snapshot_usage(s: &Snapshot, zone_id: &str, kind: StorageEvent) -> StorageUsage {
    StorageUsage {
        key: StorageUsage::key_for(&s.id, kind, s.updated_at.timestamp_millis(), s.revision),
        resource_id: s.id.clone(),
        account_id: s.account_id.clone(),
        item: StorageItem::Snapshot,
        category: "snapshot".to_string(),
        gib: s.billed_gib(),
        zone_id: zone_id.to_string(),
        at_s: s.updated_at.timestamp(),
        kind,
        seq: s.revision,
    }
}

impl crate::ControlPlane {
    /// The storage usage log (data disks and snapshots) of an account, or of every account.
    pub fn storage_usage(&self, account_id: Option<&str>) -> Result<Vec<StorageUsage>, feiyun_domain::DomainError> {
        self.store.storage_usage(account_id).map_err(crate::store_err)
    }
}
