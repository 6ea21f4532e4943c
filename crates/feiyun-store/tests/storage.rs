//! Storage in the store: disks, snapshots, key pairs and image states round-trip; disks and
//! snapshots are revision-checked; a device is one disk's on an instance; a key pair name is one
//! pair's in an account; storage usage is keyed and numbered.

use chrono::{TimeZone, Utc};
use feiyun_domain::image::{Image, ImageSource};
use feiyun_domain::storage::{
    Attachment, BlobCopy, Disk, DiskBlob, DiskCategory, DiskKind, DiskOrigin, DiskStatus, ImageLife, ImageOrigin,
    ImageShare, ImageStatus, KeyPair, Snapshot, SnapshotStatus, Transfer,
};
use feiyun_domain::usage::{StorageEvent, StorageItem, StorageUsage};
use feiyun_store::{SqliteStore, StorageWrites, Store, StoreError, WriteSet};

fn now() -> chrono::DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000, 0).single().expect("valid")
}

fn disk(id: &str) -> Disk {
    Disk {
        id: id.into(),
        account_id: "a".into(),
        region_id: "r".into(),
        zone_id: "z".into(),
        name: "data".into(),
        description: String::new(),
        category: DiskCategory::CloudEssd,
        kind: DiskKind::Data,
        size_gib: 20,
        source_snapshot_id: None,
        image_id: None,
        status: DiskStatus::Available,
        attachment: None,
        delete_with_instance: false,
        delete_auto_snapshot: true,
        host_id: None,
        origin: DiskOrigin::Empty,
        made: false,
        transfer: None,
        created_at: now(),
        attached_at: None,
        detached_at: None,
        updated_at: now(),
        revision: 1,
    }
}

fn snapshot(id: &str) -> Snapshot {
    Snapshot {
        id: id.into(),
        account_id: "a".into(),
        region_id: "r".into(),
        name: String::new(),
        description: "d".into(),
        disk_id: "d-1".into(),
        disk_kind: DiskKind::Data,
        disk_category: DiskCategory::CloudEssd,
        source_disk_gib: 20,
        status: SnapshotStatus::Progressing,
        host_id: "h".into(),
        size_bytes: 0,
        blob: None,
        failure: None,
        created_at: now(),
        finished_at: None,
        updated_at: now(),
        revision: 1,
    }
}

fn writes(f: impl FnOnce(&mut StorageWrites)) -> StorageWrites {
    let mut w = StorageWrites::default();
    f(&mut w);
    w
}

fn commit(s: &SqliteStore, w: &StorageWrites) -> Result<(), StoreError> {
    s.commit(&WriteSet { storage: Some(w), ..Default::default() })
}

#[test]
fn disks_and_snapshots_round_trip_and_are_revision_checked() {
    let s = SqliteStore::in_memory().expect("store");
    let d = disk("d-1");
    commit(&s, &writes(|w| w.disks.push(d.clone()))).expect("create");
    assert!(matches!(commit(&s, &writes(|w| w.disks.push(d.clone()))), Err(StoreError::Exists { .. })));
    let mut moved = d.revised(now());
    moved.status = DiskStatus::Attaching;
    moved.attachment = Some(Attachment { instance_id: "i-1".into(), device: "/dev/vdb".into() });
    moved.host_id = Some("h1".into());
    moved.origin = DiskOrigin::Blob(DiskBlob { id: "b-1".into(), sha256: "ab".into(), size_bytes: 9 });
    moved.transfer = Some(Transfer { to_host: "h2".into(), blob_id: "b-2".into(), task_id: "t-1".into() });
    moved.made = true;
    moved.attached_at = Some(now());
    commit(&s, &writes(|w| w.disks.push(moved.clone()))).expect("update");
    // A writer that read revision 1 too loses.
    let stale = d.revised(now());
    assert!(matches!(
        commit(&s, &writes(|w| w.disks.push(stale))),
        Err(StoreError::Conflict { expected: 1, found: 2, .. })
    ));
    let mut snap = snapshot("s-1");
    commit(&s, &writes(|w| w.snapshots.push(snap.clone()))).expect("snapshot");
    snap = snap.revised(now());
    snap.status = SnapshotStatus::Accomplished;
    snap.size_bytes = 1 << 20;
    snap.blob = Some(BlobCopy { sha256: "cd".into(), size_bytes: 5 });
    snap.finished_at = Some(now());
    commit(&s, &writes(|w| w.snapshots.push(snap.clone()))).expect("accomplished");
    let loaded = s.load().expect("load").storage;
    assert_eq!(loaded.disks, vec![moved.clone()]);
    assert_eq!(loaded.snapshots, vec![snap.clone()]);
    // Released ones are not loaded.
    let mut gone = moved.revised(now());
    gone.status = DiskStatus::Deleted;
    gone.attachment = None;
    let mut snap_gone = snap.revised(now());
    snap_gone.status = SnapshotStatus::Deleted;
    commit(
        &s,
        &writes(|w| {
            w.disks.push(gone);
            w.snapshots.push(snap_gone);
        }),
    )
    .expect("released");
    let loaded = s.load().expect("load").storage;
    assert!(loaded.disks.is_empty() && loaded.snapshots.is_empty());
}

#[test]
fn a_device_is_one_disks_on_an_instance() {
    let s = SqliteStore::in_memory().expect("store");
    let attached = |id: &str| Disk {
        attachment: Some(Attachment { instance_id: "i-1".into(), device: "/dev/vdb".into() }),
        status: DiskStatus::Attaching,
        ..disk(id)
    };
    commit(&s, &writes(|w| w.disks.push(attached("d-1")))).expect("first");
    assert!(commit(&s, &writes(|w| w.disks.push(attached("d-2")))).is_err(), "the device is taken");
    assert!(s.load().expect("load").storage.disks.iter().all(|d| d.id == "d-1"), "nothing of the refused write");
    // On another instance, or once the first disk is released, the name is free.
    let other =
        Disk { attachment: Some(Attachment { instance_id: "i-2".into(), device: "/dev/vdb".into() }), ..disk("d-3") };
    commit(&s, &writes(|w| w.disks.push(other))).expect("another instance");
}

#[test]
fn key_pairs_and_image_states() {
    let s = SqliteStore::in_memory().expect("store");
    let kp = KeyPair {
        id: "kp-1".into(),
        account_id: "a".into(),
        name: "ops".into(),
        fingerprint: "aa:bb".into(),
        public_key: "ssh-ed25519 AAAA x".into(),
        created_at: now(),
    };
    commit(&s, &writes(|w| w.key_pairs.push(kp.clone()))).expect("key pair");
    let again = KeyPair { id: "kp-2".into(), ..kp.clone() };
    assert!(matches!(commit(&s, &writes(|w| w.key_pairs.push(again.clone()))), Err(StoreError::Exists { .. })));
    // Another account may use the name.
    commit(&s, &writes(|w| w.key_pairs.push(KeyPair { account_id: "b".into(), ..again }))).expect("other account");
    let image = Image {
        id: "m-1".into(),
        name: "mine".into(),
        description: String::new(),
        owner_account_id: Some("a".into()),
        os_name: "linux".into(),
        os_type: "linux".into(),
        architecture: "x86_64".into(),
        size_bytes: 0,
        source: ImageSource::Region,
        sha256: None,
        created_at: now(),
    };
    let life = ImageLife {
        image_id: "m-1".into(),
        status: ImageStatus::Creating,
        progress: 0,
        origin: ImageOrigin::Instance("i-1".into()),
        failure: None,
        task_id: Some("t-1".into()),
        shared_with: vec![ImageShare { account_id: "b".into(), shared_at: now() }],
        updated_at: now(),
    };
    let w = writes(|w| w.image_lives.push(life.clone()));
    s.commit(&WriteSet { images: std::slice::from_ref(&image), storage: Some(&w), ..Default::default() })
        .expect("image");
    let loaded = s.load().expect("load");
    assert_eq!(loaded.storage.image_lives, vec![life]);
    assert_eq!(loaded.storage.key_pairs.len(), 2);
    commit(
        &s,
        &writes(|w| {
            w.deleted_images.push("m-1".into());
            w.deleted_key_pairs.push(("a".into(), "ops".into()));
        }),
    )
    .expect("delete");
    let loaded = s.load().expect("load");
    assert!(loaded.storage.image_lives.is_empty());
    assert!(loaded.images.iter().all(|i| i.id != "m-1"));
    assert_eq!(loaded.storage.key_pairs.iter().map(|k| k.account_id.as_str()).collect::<Vec<_>>(), ["b"]);
}

#[test]
fn storage_usage_is_keyed_and_numbered() {
    let s = SqliteStore::in_memory().expect("store");
    let u = |seq: u64, kind| StorageUsage {
        key: StorageUsage::key_for("d-1", kind, 1000, seq),
        resource_id: "d-1".into(),
        account_id: "a".into(),
        item: StorageItem::DataDisk,
        category: "cloud_essd".into(),
        gib: 20,
        zone_id: "z".into(),
        at_s: 1,
        kind,
        seq,
    };
    commit(&s, &writes(|w| w.usage.extend([u(1, StorageEvent::Create), u(2, StorageEvent::Resize)]))).expect("usage");
    // A replay changes nothing.
    commit(&s, &writes(|w| w.usage.push(u(1, StorageEvent::Create)))).expect("replay");
    assert_eq!(s.storage_usage(Some("a")).expect("usage").len(), 2);
    assert!(s.storage_usage(Some("b")).expect("usage").is_empty());
    // Another event with a sequence the resource used is refused.
    let mut clash = u(2, StorageEvent::Release);
    clash.key = "other".into();
    assert!(commit(&s, &writes(|w| w.usage.push(clash))).is_err());
}
