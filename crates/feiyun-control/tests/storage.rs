//! Storage through the control plane, with hosts played through the host protocol
//! ([`FakeHost`]): disks made, attached, detached, resized, reset and released as the hosts
//! report them; snapshots taken and uploaded; disks moving between hosts; images captured,
//! shared and deleted; key pairs in intents; refusals that change nothing; usage recorded.

mod common;

use std::sync::Arc;

use common::{region, spec, FakeHost, ManualClock};
use feiyun_control::{BillingSetup, ControlPlane, HostsSetup};
use feiyun_domain::instance::{InstanceStatus, UserAction};
use feiyun_domain::ops::{
    DiskAttributes, DiskFilter, ImageSourceRef, InstanceNetwork, InstanceStorage, NewDataDisk, NewDisk, NewImage,
    Purchase, ResizeType, SnapshotFilter, SystemDiskSpec,
};
use feiyun_domain::storage::{
    DiskCategory, DiskKind, DiskStatus, ImageStatus, SnapshotStatus, StorageError, SYSTEM_DEVICE,
};
use feiyun_domain::usage::{StorageEvent, StorageItem};
use feiyun_domain::DomainError;
use feiyun_hostproto::{BlobKind, DiskSource, Task};

fn clock() -> Arc<ManualClock> {
    let c = Arc::new(ManualClock(std::sync::Mutex::new(chrono::Utc::now())));
    c.set(0);
    c
}

/// A region of two zones (z1, z2) without hosts: tests join the hosts they need.
fn empty(dir: &std::path::Path, clock: &Arc<ManualClock>) -> Arc<ControlPlane> {
    region(dir, clock.clone(), BillingSetup::default(), HostsSetup::default(), &[("s1", "z1", 0), ("s2", "z2", 0)])
}

fn storage_err(r: Result<impl std::fmt::Debug, DomainError>) -> StorageError {
    match r {
        Err(DomainError::Storage(e)) => e,
        other => panic!("expected a storage error, got {other:?}"),
    }
}

/// One running g7.large on whichever host can take it, with `storage`.
fn run(cp: &ControlPlane, host: &mut FakeHost, acct: &str, storage: &InstanceStorage) -> String {
    let id = cp
        .create_instances_full(acct, &spec(Purchase::default()), &InstanceNetwork::default(), storage)
        .expect("created")
        .ids
        .remove(0);
    host.settle();
    assert_eq!(cp.instance(acct, &id).expect("there").status, InstanceStatus::Running);
    id
}

fn new_disk(zone: &str, size: u64) -> NewDisk {
    NewDisk {
        zone_id: zone.into(),
        category: Some(DiskCategory::CloudEssd),
        size_gib: Some(size),
        snapshot_id: None,
        name: "data".into(),
        description: String::new(),
        client_token: None,
    }
}

#[test]
fn a_disk_is_made_where_it_is_first_attached_and_follows_what_its_host_reports() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = clock();
    let cp = empty(dir.path(), &clock);
    let mut h = FakeHost::join(&cp, "a1", "z1", 64);
    let (acct, _) = cp.create_account("alice").expect("account");
    let vm = run(&cp, &mut h, &acct.id, &InstanceStorage::default());

    let d = cp.create_disk(&acct.id, &new_disk("z1", 20)).expect("disk");
    assert_eq!((d.status, d.host_id.as_deref(), d.kind), (DiskStatus::Available, None, DiskKind::Data));
    assert!(h.intent().expect("intent").disks.is_empty(), "a disk never attached lives nowhere yet");

    let a = cp.attach_disk(&acct.id, &vm, &d.id, None, None).expect("attach");
    assert_eq!(a.status, DiskStatus::Attaching);
    assert_eq!(a.attachment.as_ref().map(|x| x.device.as_str()), Some("/dev/vdb"));
    let intent = h.intent().expect("intent");
    assert_eq!(intent.disks.len(), 1);
    assert_eq!(intent.disks[0].source, DiskSource::Empty);
    assert_eq!(intent.disks[0].attachment.as_ref().map(|x| x.instance_id.as_str()), Some(vm.as_str()));
    h.settle();
    let d1 = cp.disk(&acct.id, &d.id).expect("disk");
    assert_eq!((d1.status, d1.made), (DiskStatus::InUse, true));
    assert_eq!(h.disks[&d.id].attached_to.as_deref(), Some(vm.as_str()));

    // The system disk is a disk too: the default size, the image's, /dev/xvda, not portable.
    let all = cp.describe_disks(&acct.id, &DiskFilter { instance_id: Some(vm.clone()), ..Default::default() });
    assert_eq!(all.len(), 2);
    let sys = all.iter().find(|x| x.kind == DiskKind::System).expect("system disk");
    assert_eq!((sys.size_gib, sys.category, sys.status), (40, DiskCategory::CloudEssd, DiskStatus::InUse));
    assert_eq!(sys.attachment.as_ref().map(|x| x.device.as_str()), Some(SYSTEM_DEVICE));
    assert!(!sys.portable());
    let only_data = cp.describe_disks(&acct.id, &DiskFilter { kind: Some(DiskKind::Data), ..Default::default() });
    assert_eq!(only_data.iter().map(|x| x.id.as_str()).collect::<Vec<_>>(), [d.id.as_str()]);

    // Refusals change nothing.
    let before = cp.describe_disks(&acct.id, &DiskFilter::default());
    assert_eq!(storage_err(cp.delete_disk(&acct.id, &d.id)), StorageError::DiskStillAttached);
    assert_eq!(storage_err(cp.detach_disk(&acct.id, &vm, &sys.id, None)), StorageError::SystemDisk);
    assert_eq!(storage_err(cp.delete_disk(&acct.id, &sys.id)), StorageError::SystemDisk);
    assert_eq!(storage_err(cp.attach_disk(&acct.id, &vm, &d.id, None, None)), StorageError::DiskInUse);
    assert_eq!(storage_err(cp.resize_disk(&acct.id, &d.id, 20, ResizeType::Offline)), StorageError::ShrinkRefused(20));
    assert!(matches!(
        storage_err(cp.resize_disk(&acct.id, &d.id, 40_000, ResizeType::Offline)),
        StorageError::TooLarge { max: 32_768 }
    ));
    let other = cp.create_disk(&acct.id, &new_disk("z1", 20)).expect("another");
    let before = {
        let mut b = before;
        b.push(other.clone());
        b
    };
    assert_eq!(
        storage_err(cp.attach_disk(&acct.id, &vm, &other.id, None, Some("/dev/vdb"))),
        StorageError::DeviceInUse("/dev/vdb".into())
    );
    assert_eq!(
        storage_err(cp.attach_disk(&acct.id, &vm, &other.id, None, Some("/dev/sda"))),
        StorageError::DeviceMalformed("/dev/sda".into())
    );
    let far = cp.create_disk(&acct.id, &new_disk("z2", 20)).expect("in z2");
    assert_eq!(storage_err(cp.attach_disk(&acct.id, &vm, &far.id, None, None)), StorageError::ZoneMismatch);
    cp.delete_disk(&acct.id, &far.id).expect("released");
    assert!(matches!(
        storage_err(cp.create_disk(&acct.id, &new_disk("z1", 19))),
        StorageError::DataDiskSize { size: 19, min: 20, max: 32_768, .. }
    ));
    let mut basic = new_disk("z1", 2001);
    basic.category = Some(DiskCategory::Cloud);
    assert!(matches!(storage_err(cp.create_disk(&acct.id, &basic)), StorageError::DataDiskSize { max: 2000, .. }));
    assert_eq!(cp.describe_disks(&acct.id, &DiskFilter::default()), before, "nothing changed");

    // Another tenant sees none of it and can touch none of it.
    let (mallory, _) = cp.create_account("mallory").expect("account");
    assert!(cp.describe_disks(&mallory.id, &DiskFilter::default()).is_empty());
    assert_eq!(storage_err(cp.delete_disk(&mallory.id, &other.id)), StorageError::DiskNotFound(other.id.clone()));
    assert!(matches!(cp.attach_disk(&mallory.id, &vm, &other.id, None, None), Err(DomainError::InstanceNotFound(_))));

    // Grow it: the host's intent carries the new size.
    let grown = cp.resize_disk(&acct.id, &d.id, 50, ResizeType::Online).expect("grown");
    assert_eq!(grown.size_gib, 50);
    h.settle();
    assert_eq!(h.disks[&d.id].size_gib, 50);

    // Detach: Detaching until the host reports it unmounted; its data stays on the host.
    let x = cp.detach_disk(&acct.id, &vm, &d.id, None).expect("detach");
    assert_eq!(x.status, DiskStatus::Detaching);
    h.settle();
    let x = cp.disk(&acct.id, &d.id).expect("disk");
    assert_eq!((x.status, x.host_id.as_deref()), (DiskStatus::Available, Some(h.reg.host_id.as_str())));
    assert_eq!(h.disks[&d.id].attached_to, None, "kept, unmounted");

    cp.delete_disk(&acct.id, &d.id).expect("released");
    h.settle();
    assert!(!h.disks.contains_key(&d.id), "the host removed it");
    assert!(matches!(storage_err(cp.disk(&acct.id, &d.id)), StorageError::DiskNotFound(_)));

    // Usage: created 20 GiB, grown to 50, released.
    let usage: Vec<(StorageEvent, u64)> = cp
        .storage_usage(Some(&acct.id))
        .expect("usage")
        .iter()
        .filter(|u| u.resource_id == d.id)
        .map(|u| (u.kind, u.gib))
        .collect();
    assert_eq!(usage, [(StorageEvent::Create, 20), (StorageEvent::Resize, 50), (StorageEvent::Release, 50)]);
}

#[test]
fn run_instances_makes_its_disks_and_releasing_it_keeps_those_meant_to_stay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = clock();
    let cp = empty(dir.path(), &clock);
    let mut h = FakeHost::join(&cp, "a1", "z1", 64);
    let (acct, _) = cp.create_account("alice").expect("account");
    let data = |size, keep: bool, device: Option<&str>| NewDataDisk {
        category: Some(DiskCategory::CloudSsd),
        size_gib: Some(size),
        snapshot_id: None,
        name: "d".into(),
        description: String::new(),
        device: device.map(str::to_string),
        delete_with_instance: !keep,
    };
    let storage = InstanceStorage {
        system_disk: SystemDiskSpec {
            category: Some(DiskCategory::CloudSsd),
            size_gib: Some(60),
            ..Default::default()
        },
        data_disks: vec![data(30, false, None), data(40, true, Some("/dev/vdd"))],
        key_pair_name: None,
    };
    // Checked before anything is made.
    let bad = |f: &dyn Fn(&mut InstanceStorage)| {
        let mut s = storage.clone();
        f(&mut s);
        cp.create_instances_full(&acct.id, &spec(Purchase::default()), &InstanceNetwork::default(), &s)
    };
    assert!(matches!(storage_err(bad(&|s| s.system_disk.size_gib = Some(10))), StorageError::SystemDiskSize { .. }));
    assert!(matches!(storage_err(bad(&|s| s.system_disk.size_gib = Some(3000))), StorageError::SystemDiskSize { .. }));
    assert!(matches!(storage_err(bad(&|s| s.data_disks[0].size_gib = Some(5))), StorageError::DataDiskSize { .. }));
    assert!(matches!(
        storage_err(bad(&|s| s.data_disks[0].device = Some("/dev/vdd".into()))),
        StorageError::DeviceInUse(_)
    ));
    assert!(matches!(
        storage_err(bad(&|s| s.data_disks[0].snapshot_id = Some("s-nope".into()))),
        StorageError::SnapshotNotFound(_)
    ));
    assert!(matches!(storage_err(bad(&|s| s.key_pair_name = Some("nope".into()))), StorageError::KeyPairNotFound(_)));
    assert!(cp.describe_disks(&acct.id, &DiskFilter::default()).is_empty());
    assert!(cp.describe_instances(&acct.id, &Default::default()).is_empty());

    let vm = run(&cp, &mut h, &acct.id, &storage);
    let disks = cp.describe_disks(&acct.id, &DiskFilter { instance_id: Some(vm.clone()), ..Default::default() });
    let shape: Vec<(DiskKind, u64, String, DiskStatus, bool)> = disks
        .iter()
        .map(|d| {
            let dev = d.attachment.as_ref().map(|a| a.device.clone()).unwrap_or_default();
            (d.kind, d.size_gib, dev, d.status, d.delete_with_instance)
        })
        .collect();
    assert!(shape.contains(&(DiskKind::System, 60, "/dev/xvda".into(), DiskStatus::InUse, true)), "{shape:?}");
    assert!(shape.contains(&(DiskKind::Data, 30, "/dev/vdb".into(), DiskStatus::InUse, true)), "{shape:?}");
    assert!(shape.contains(&(DiskKind::Data, 40, "/dev/vdd".into(), DiskStatus::InUse, false)), "{shape:?}");
    // The system disk is billed with the instance, at its size and category.
    let ev = cp.usage_events(Some(&acct.id), 0).expect("usage");
    assert_eq!((ev[0].disk_category.as_str(), ev[0].disk_gib), ("cloud_ssd", 60));
    // Data disks have their own usage.
    let created: Vec<u64> = cp
        .storage_usage(Some(&acct.id))
        .expect("usage")
        .iter()
        .filter(|u| u.kind == StorageEvent::Create && u.item == StorageItem::DataDisk)
        .map(|u| u.gib)
        .collect();
    assert_eq!(created.len(), 2);

    cp.act(&acct.id, std::slice::from_ref(&vm), UserAction::Delete { force: true }, None, true, false)
        .expect("released");
    h.settle();
    let left = cp.describe_disks(&acct.id, &DiskFilter::default());
    assert_eq!(left.len(), 1, "only the disk meant to stay");
    assert_eq!((left[0].size_gib, left[0].status, left[0].attachment.is_none()), (40, DiskStatus::Available, true));
    assert!(h.disks.contains_key(&left[0].id) && h.disks.len() == 1, "its host keeps its data, and only its");
    let released: Vec<u64> = cp
        .storage_usage(Some(&acct.id))
        .expect("usage")
        .iter()
        .filter(|u| u.kind == StorageEvent::Release)
        .map(|u| u.gib)
        .collect();
    assert_eq!(released, [30]);
}

#[test]
fn snapshots_are_taken_by_the_disks_host_and_disks_are_reset_and_made_from_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = clock();
    let cp = empty(dir.path(), &clock);
    let mut h = FakeHost::join(&cp, "a1", "z1", 64);
    let (acct, _) = cp.create_account("alice").expect("account");
    let vm = run(&cp, &mut h, &acct.id, &InstanceStorage::default());
    let d = cp.create_disk(&acct.id, &new_disk("z1", 20)).expect("disk");
    assert_eq!(storage_err(cp.create_snapshot(&acct.id, &d.id, "s", "", None)), StorageError::NeverAttached);
    let sys = cp.describe_disks(&acct.id, &DiskFilter { kind: Some(DiskKind::System), ..Default::default() });
    assert_eq!(storage_err(cp.create_snapshot(&acct.id, &sys[0].id, "s", "", None)), StorageError::SystemDiskSnapshot);
    cp.attach_disk(&acct.id, &vm, &d.id, None, None).expect("attach");
    h.settle();

    h.hold_storage = true;
    let ct = |fingerprint: &str| feiyun_domain::ops::ClientToken {
        token: "snap-retry".into(),
        fingerprint: fingerprint.into(),
    };
    let s = cp.create_snapshot(&acct.id, &d.id, "first", "before the upgrade", Some(&ct("a"))).expect("snapshot");
    assert_eq!(s.status, SnapshotStatus::Progressing);
    // Retried with its ClientToken: the snapshot being taken, not a refusal or a second one; the
    // token with other parameters is refused.
    let again = cp.create_snapshot(&acct.id, &d.id, "first", "before the upgrade", Some(&ct("a"))).expect("retry");
    assert_eq!(again.id, s.id);
    assert_eq!(
        cp.create_snapshot(&acct.id, &d.id, "other", "", Some(&ct("b"))).map(|x| x.id),
        Err(DomainError::IdempotentParameterMismatch)
    );
    let intent = h.intent().expect("intent");
    assert!(intent.snapshots.contains(&s.id), "listed while it is taken");
    assert!(intent.tasks.iter().any(|t| matches!(t, Task::Snapshot(x) if x.snapshot_id == s.id && !x.upload)));
    assert_eq!(storage_err(cp.create_snapshot(&acct.id, &d.id, "again", "", None)), StorageError::CreatingSnapshot);
    cp.detach_disk(&acct.id, &vm, &d.id, None).expect("detach");
    h.settle();
    assert_eq!(storage_err(cp.delete_disk(&acct.id, &d.id)), StorageError::DiskCreatingSnapshot);
    h.hold_storage = false;
    h.settle();
    let s = cp.describe_snapshots(&acct.id, &SnapshotFilter { disk_id: Some(d.id.clone()), ..Default::default() });
    assert_eq!(s.len(), 1);
    let s = s.into_iter().next().expect("one");
    assert_eq!(
        (s.status, s.size_bytes, s.billed_gib(), s.source_disk_gib),
        (SnapshotStatus::Accomplished, 3 << 29, 2, 20)
    );
    assert!(h.snapshots.contains(&s.id));

    // Reset: refused while the disk's instance runs; Available or stopped, it is ReIniting
    // until the host has done it.
    cp.attach_disk(&acct.id, &vm, &d.id, None, None).expect("attach again");
    h.settle();
    assert!(matches!(cp.reset_disk(&acct.id, &d.id, &s.id, false), Err(DomainError::IncorrectStatus { .. })));
    cp.act(&acct.id, std::slice::from_ref(&vm), UserAction::Stop, None, true, false).expect("stop");
    h.settle();
    assert_eq!(cp.reset_disk(&acct.id, &d.id, &s.id, true), Err(DomainError::DryRunOk));
    h.hold_storage = true;
    cp.reset_disk(&acct.id, &d.id, &s.id, false).expect("reset");
    assert_eq!(cp.disk(&acct.id, &d.id).expect("disk").status, DiskStatus::ReIniting);
    assert!(
        matches!(
            cp.act(&acct.id, std::slice::from_ref(&vm), UserAction::Start, None, true, false),
            Err(DomainError::IncorrectStatus { .. })
        ),
        "not started while its disk is reset"
    );
    h.hold_storage = false;
    h.settle();
    assert_eq!(cp.disk(&acct.id, &d.id).expect("disk").status, DiskStatus::InUse);
    assert_eq!(h.disks[&d.id].resets, std::slice::from_ref(&s.id));

    // A snapshot of another disk does not reset this one.
    let sys_id = sys[0].id.clone();
    assert!(matches!(
        storage_err(cp.reset_disk(&acct.id, &sys_id, &s.id, false)),
        StorageError::SnapshotOfAnotherDisk(_)
    ));

    // A disk made from it on the same host starts from the local snapshot.
    let mut from = new_disk("z1", 20);
    from.size_gib = None;
    from.snapshot_id = Some(s.id.clone());
    let copy = cp.create_disk(&acct.id, &from).expect("from the snapshot");
    assert_eq!((copy.size_gib, copy.source_snapshot_id.as_deref()), (20, Some(s.id.as_str())));
    from.size_gib = Some(10);
    assert!(matches!(storage_err(cp.create_disk(&acct.id, &from)), StorageError::SmallerThanSnapshot(20)));
    // Deleting the snapshot now: a disk was made from it; and this one is still to be made.
    assert!(matches!(storage_err(cp.delete_snapshot(&acct.id, &s.id, false)), StorageError::SnapshotCreatedDisk(_)));
    assert!(matches!(storage_err(cp.delete_snapshot(&acct.id, &s.id, true)), StorageError::SnapshotCreatedDisk(_)));
    cp.attach_disk(&acct.id, &vm, &copy.id, None, None).expect("attach the copy");
    let spec = h.intent().expect("intent").disks.into_iter().find(|x| x.disk_id == copy.id).expect("listed");
    assert_eq!(spec.source, DiskSource::LocalSnapshot(s.id.clone()));
    h.settle();
    // Made: with Force the snapshot may go now (the disk keeps its data).
    assert!(matches!(storage_err(cp.delete_snapshot(&acct.id, &s.id, false)), StorageError::SnapshotCreatedDisk(_)));
    cp.delete_snapshot(&acct.id, &s.id, true).expect("forced");
    h.settle();
    assert!(!h.snapshots.contains(&s.id), "its host removed it");
    assert!(h.disks.contains_key(&copy.id), "the disk made from it stays");
    assert!(h.intent().expect("intent").disks.iter().any(|x| x.disk_id == copy.id));

    // Usage: the snapshot billed at 2 GiB from when it was taken until deleted.
    let snap: Vec<(StorageEvent, u64)> = cp
        .storage_usage(Some(&acct.id))
        .expect("usage")
        .iter()
        .filter(|u| u.item == StorageItem::Snapshot)
        .map(|u| (u.kind, u.gib))
        .collect();
    assert_eq!(snap, [(StorageEvent::Create, 2), (StorageEvent::Release, 2)]);
}

#[test]
fn a_disk_attached_on_another_host_moves_there_and_snapshots_are_uploaded_when_needed_elsewhere() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = clock();
    let cp = empty(dir.path(), &clock);
    let mut h1 = FakeHost::join(&cp, "a1", "z1", 64);
    let (acct, _) = cp.create_account("alice").expect("account");
    let vm1 = run(&cp, &mut h1, &acct.id, &InstanceStorage::default());
    let mut h2 = FakeHost::join(&cp, "a2", "z1", 64);
    cp.drain_host("a1", true).expect("drain");
    let vm2 = run(&cp, &mut h2, &acct.id, &InstanceStorage::default());
    assert_eq!(cp.instance(&acct.id, &vm2).expect("vm2").host_id, h2.reg.host_id);

    let d = cp.create_disk(&acct.id, &new_disk("z1", 20)).expect("disk");
    cp.attach_disk(&acct.id, &vm1, &d.id, None, None).expect("attach on h1");
    h1.settle();
    let s = cp.create_snapshot(&acct.id, &d.id, "s", "", None).expect("snapshot");
    h1.settle();
    cp.detach_disk(&acct.id, &vm1, &d.id, None).expect("detach");
    h1.settle();

    // Attached to an instance on h2: h1 uploads it, then h2 makes it from the upload.
    h1.hold_storage = true;
    let a = cp.attach_disk(&acct.id, &vm2, &d.id, Some(true), None).expect("attach on h2");
    assert_eq!((a.status, a.host_id.as_deref()), (DiskStatus::Attaching, Some(h1.reg.host_id.as_str())));
    assert!(a.delete_with_instance);
    let i1 = h1.intent().expect("h1");
    let up = i1.tasks.iter().find_map(|t| match t {
        Task::UploadDisk(u) => Some(u.clone()),
        _ => None,
    });
    let up = up.expect("an upload task on h1");
    assert_eq!(up.disk_id, d.id);
    assert!(i1.disks.iter().any(|x| x.disk_id == d.id && x.attachment.is_none()), "kept, detached, meanwhile");
    assert!(h2.intent().expect("h2").disks.is_empty());
    // A host may upload only what its tasks ask for.
    assert!(h2.upload(BlobKind::Disk, &up.blob_id, b"x").is_err());
    assert!(h1.upload(BlobKind::Disk, "d-other-r1", b"x").is_err());
    h1.hold_storage = false;
    h1.settle();
    let moved = cp.disk(&acct.id, &d.id).expect("disk");
    assert_eq!(moved.host_id.as_deref(), Some(h2.reg.host_id.as_str()));
    let spec2 = h2.intent().expect("h2").disks.into_iter().find(|x| x.disk_id == d.id).expect("listed on h2");
    assert!(matches!(&spec2.source, DiskSource::Blob(b) if b.kind == BlobKind::Disk && b.id == up.blob_id));
    assert_eq!(spec2.attachment.as_ref().map(|x| x.instance_id.as_str()), Some(vm2.as_str()));
    h2.settle();
    h1.settle();
    assert_eq!(cp.disk(&acct.id, &d.id).expect("disk").status, DiskStatus::InUse);
    assert!(!h1.disks.contains_key(&d.id), "h1 dropped its copy");
    assert!(!dir.path().join("images/disk").join(&up.blob_id).exists(), "the region's copy is removed once made");

    // A disk from a snapshot kept on h1, attached on h2: h1 is asked to upload the snapshot,
    // and h2 makes the disk from the upload.
    let mut from = new_disk("z1", 20);
    from.snapshot_id = Some(s.id.clone());
    let copy = cp.create_disk(&acct.id, &from).expect("from the snapshot");
    h1.hold_storage = true;
    cp.attach_disk(&acct.id, &vm2, &copy.id, None, None).expect("attach");
    assert!(h2.intent().expect("h2").disks.iter().all(|x| x.disk_id != copy.id), "not before the upload");
    assert!(h1
        .intent()
        .expect("h1")
        .tasks
        .iter()
        .any(|t| matches!(t, Task::Snapshot(x) if x.snapshot_id == s.id && x.upload)));
    h1.hold_storage = false;
    h1.settle();
    let spec = h2.intent().expect("h2").disks.into_iter().find(|x| x.disk_id == copy.id).expect("listed now");
    assert!(matches!(&spec.source, DiskSource::Blob(b) if b.kind == BlobKind::Snapshot && b.id == s.id));
    h2.settle();
    assert_eq!(cp.disk(&acct.id, &copy.id).expect("copy").status, DiskStatus::InUse);
    // A reset happens where the snapshot is kept: the disk's data has moved to h2 since.
    cp.act(&acct.id, std::slice::from_ref(&vm2), UserAction::Stop, None, true, false).expect("stop");
    h2.settle();
    assert_eq!(
        storage_err(cp.reset_disk(&acct.id, &d.id, &s.id, false)),
        StorageError::SnapshotElsewhere(s.id.clone())
    );
}

#[test]
fn a_failed_move_gives_the_attachment_up_and_keeps_the_disk_where_it_was() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = clock();
    let cp = empty(dir.path(), &clock);
    let mut h1 = FakeHost::join(&cp, "a1", "z1", 64);
    let (acct, _) = cp.create_account("alice").expect("account");
    let vm1 = run(&cp, &mut h1, &acct.id, &InstanceStorage::default());
    let mut h2 = FakeHost::join(&cp, "a2", "z1", 64);
    cp.drain_host("a1", true).expect("drain");
    let vm2 = run(&cp, &mut h2, &acct.id, &InstanceStorage::default());
    let d = cp.create_disk(&acct.id, &new_disk("z1", 20)).expect("disk");
    cp.attach_disk(&acct.id, &vm1, &d.id, None, None).expect("attach on h1");
    h1.settle();
    cp.detach_disk(&acct.id, &vm1, &d.id, None).expect("detach");
    h1.settle();
    h1.storage_failure = Some("no space left".into());
    cp.attach_disk(&acct.id, &vm2, &d.id, None, None).expect("attach on h2");
    h1.settle();
    let back = cp.disk(&acct.id, &d.id).expect("disk");
    assert_eq!(
        (back.status, back.attachment, back.host_id.as_deref()),
        (DiskStatus::Available, None, Some(h1.reg.host_id.as_str()))
    );
    assert!(h1.disks.contains_key(&d.id), "its data is where it was");
}

#[test]
fn images_are_captured_shared_launched_and_deleted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = clock();
    let cp = empty(dir.path(), &clock);
    let mut h = FakeHost::join(&cp, "a1", "z1", 64);
    let (alice, _) = cp.create_account("alice").expect("account");
    let (bob, _) = cp.create_account("bob").expect("account");
    let vm = run(&cp, &mut h, &alice.id, &InstanceStorage::default());
    let new_image = |from| NewImage { from, name: Some("web".into()), description: String::new(), client_token: None };

    h.hold_storage = true;
    let img = cp.create_image(&alice.id, &new_image(ImageSourceRef::Instance(vm.clone())), false).expect("image");
    let view = |acct: &str| cp.image_views(acct).into_iter().find(|v| v.image.id == img);
    let v = view(&alice.id).expect("listed");
    assert_eq!((v.status, v.owner_alias, v.image.sha256.is_none()), (ImageStatus::Creating, "self", true));
    assert!(view(&bob.id).is_none(), "another tenant does not see it");
    let creating = cp.create_instances(&alice.id, &{
        let mut s = spec(Purchase::default());
        s.image_id = img.clone();
        s
    });
    assert!(matches!(storage_err(creating), StorageError::ImageNotReady(_)), "not launched while it is made");
    assert!(matches!(
        storage_err(cp.create_image(&alice.id, &new_image(ImageSourceRef::Instance(vm.clone())), false)),
        StorageError::ImageNameTaken(_)
    ));
    h.hold_storage = false;
    h.settle();
    let v = view(&alice.id).expect("listed");
    assert_eq!((v.status, v.progress), (ImageStatus::Available, 100));
    let archive = std::fs::read(dir.path().join("images/image").join(&img)).expect("uploaded");
    use sha2::Digest;
    assert_eq!(v.image.sha256.as_deref(), Some(hex::encode(sha2::Sha256::digest(&archive)).as_str()));

    // Shared with bob: he sees it as others', and may boot from it.
    assert!(matches!(
        storage_err(cp.share_image(&alice.id, &img, &["1".repeat(16)], &[])),
        StorageError::AccountNotFound(_)
    ));
    assert_eq!(
        storage_err(cp.share_image(&alice.id, &img, std::slice::from_ref(&alice.id), &[])),
        StorageError::ShareWithSelf
    );
    assert!(matches!(
        cp.share_image(&bob.id, &img, std::slice::from_ref(&bob.id), &[]),
        Err(DomainError::ImageNotFound(_))
    ));
    cp.share_image(&alice.id, &img, std::slice::from_ref(&bob.id), &[]).expect("share");
    assert_eq!(cp.image_shares(&alice.id, &img).expect("shares").len(), 1);
    assert_eq!(view(&bob.id).map(|v| v.owner_alias), Some("others"));
    assert!(view(&alice.id).expect("own").shared);
    let mut s = spec(Purchase::default());
    s.image_id = img.clone();
    let bobs = cp.create_instances(&bob.id, &s).expect("bob boots from it").ids.remove(0);
    h.settle();
    assert!(matches!(cp.delete_image(&bob.id, &img, true), Err(DomainError::ImageNotFound(_))), "not his to delete");
    assert_eq!(storage_err(cp.delete_image(&alice.id, &img, false)), StorageError::ImageShared(img.clone()));
    cp.share_image(&alice.id, &img, &[], std::slice::from_ref(&bob.id)).expect("unshare");
    assert!(view(&bob.id).is_none());
    assert_eq!(storage_err(cp.delete_image(&alice.id, &img, false)), StorageError::ImageInUse(img.clone()));
    // Forced: hidden from everyone, kept for the instance that runs from it.
    cp.delete_image(&alice.id, &img, true).expect("forced");
    assert!(view(&alice.id).is_none());
    let intent = h.intent().expect("intent");
    let bobs_spec = intent.instances.iter().find(|i| i.id == bobs).expect("bob's instance");
    assert_eq!(bobs_spec.spec.image.sha256.as_deref(), v.image.sha256.as_deref(), "its host can still fetch it");
    assert!(dir.path().join("images/image").join(&img).exists());

    // From a snapshot too; a failed capture says so.
    let d = cp.create_disk(&alice.id, &new_disk("z1", 20)).expect("disk");
    cp.attach_disk(&alice.id, &vm, &d.id, None, None).expect("attach");
    h.settle();
    let snap = cp.create_snapshot(&alice.id, &d.id, "root", "", None).expect("snapshot");
    h.settle();
    h.storage_failure = Some("not a root filesystem".into());
    let from_snap = NewImage { name: Some("from-snap".into()), ..new_image(ImageSourceRef::Snapshot(snap.id.clone())) };
    let failed = cp.create_image(&alice.id, &from_snap, false).expect("asked");
    h.settle();
    let v =
        view(&alice.id).into_iter().chain(cp.image_views(&alice.id)).find(|v| v.image.id == failed).expect("listed");
    assert_eq!(v.status, ImageStatus::CreateFailed);
    assert!(matches!(
        storage_err(cp.delete_snapshot(&alice.id, &snap.id, true)),
        StorageError::SnapshotCreatedImage(_)
    ));
    cp.delete_image(&alice.id, &failed, false).expect("a failed image can go");
    cp.delete_snapshot(&alice.id, &snap.id, false).expect("and then its snapshot");
}

#[test]
fn key_pairs_reach_the_instances_intent_and_metadata() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = clock();
    let cp = empty(dir.path(), &clock);
    let mut h = FakeHost::join(&cp, "a1", "z1", 64);
    let (alice, _) = cp.create_account("alice").expect("account");
    let (bob, _) = cp.create_account("bob").expect("account");
    let created = cp.create_key_pair(&alice.id, "ops").expect("created");
    assert!(created.private_key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    assert_eq!(storage_err(cp.create_key_pair(&alice.id, "ops")), StorageError::KeyPairExists("ops".into()));
    cp.create_key_pair(&bob.id, "ops").expect("bob has his own namespace");
    let imported = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDjcXjLNmMaUjlNhAYdA5Qqp6IfwVnf6RapYY+We1Nj2 test@feiyun";
    let k = cp.import_key_pair(&alice.id, "laptop", imported).expect("imported");
    assert_eq!(k.fingerprint, "bc:4c:e8:1f:5f:fc:70:7f:85:e9:e5:8f:aa:0d:0c:b2");
    assert!(matches!(
        storage_err(cp.import_key_pair(&alice.id, "bad", "ssh-rsa nope")),
        StorageError::PublicKeyMalformed(_)
    ));
    assert_eq!(cp.describe_key_pairs(&alice.id, Some("l*"), None).len(), 1);
    assert_eq!(cp.describe_key_pairs(&alice.id, None, Some(&k.fingerprint)).len(), 1);
    assert_eq!(cp.describe_key_pairs(&bob.id, None, None).len(), 1);

    let storage = InstanceStorage { key_pair_name: Some("laptop".into()), ..Default::default() };
    let vm = run(&cp, &mut h, &alice.id, &storage);
    assert_eq!(cp.instance(&alice.id, &vm).expect("vm").key_pair_name.as_deref(), Some("laptop"));
    let keys = |h: &FakeHost| {
        let i = h.intent().expect("intent");
        let i = i.instances.into_iter().find(|i| i.id == vm).expect("vm");
        (i.spec.authorized_keys, i.metadata.get("public-keys/0/openssh-key").cloned())
    };
    assert_eq!(keys(&h), (vec![imported.to_string()], Some(imported.to_string())));

    // Attach another: it replaces the first; a tenant's pair cannot reach another's instance.
    assert!(matches!(
        storage_err(cp.set_key_pair(&bob.id, "laptop", std::slice::from_ref(&vm), true)),
        StorageError::KeyPairNotFound(_)
    ));
    let out = cp.set_key_pair(&bob.id, "ops", std::slice::from_ref(&vm), true).expect("per instance");
    assert!(matches!(out[0].1, Err(DomainError::InstanceNotFound(_))));
    let out = cp.set_key_pair(&alice.id, "ops", &[vm.clone(), "i-nope".into()], true).expect("attached");
    assert!(out[0].1.is_ok() && out[1].1.is_err());
    assert_eq!(keys(&h).0, vec![created.key_pair.public_key.clone()]);
    let out = cp.set_key_pair(&alice.id, "laptop", std::slice::from_ref(&vm), false).expect("per instance");
    assert!(out[0].1.is_err(), "laptop is not its key pair any more");
    cp.set_key_pair(&alice.id, "ops", std::slice::from_ref(&vm), false).expect("detached");
    assert_eq!(keys(&h), (Vec::<String>::new(), None));
    cp.delete_key_pairs(&alice.id, &["ops".into(), "laptop".into(), "never".into()]).expect("deleted");
    assert!(cp.describe_key_pairs(&alice.id, None, None).is_empty());
    assert_eq!(cp.describe_key_pairs(&bob.id, None, None).len(), 1, "bob's stays");
}

#[test]
fn a_restart_resumes_what_hosts_had_not_finished() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = clock();
    let cp = empty(dir.path(), &clock);
    let mut h = FakeHost::join(&cp, "a1", "z1", 64);
    let (acct, _) = cp.create_account("alice").expect("account");
    let vm = run(&cp, &mut h, &acct.id, &InstanceStorage::default());
    let d = cp.create_disk(&acct.id, &new_disk("z1", 20)).expect("disk");
    cp.attach_disk(&acct.id, &vm, &d.id, None, None).expect("attach");
    h.settle();
    h.hold_storage = true;
    let s = cp.create_snapshot(&acct.id, &d.id, "s", "", None).expect("snapshot");
    let img = cp
        .create_image(
            &acct.id,
            &NewImage {
                from: ImageSourceRef::Instance(vm.clone()),
                name: None,
                description: String::new(),
                client_token: None,
            },
            false,
        )
        .expect("image");
    h.step().expect("nothing answered");
    drop(cp);
    let cp = empty(dir.path(), &clock);
    h.cp = cp.clone();
    let tasks = h.intent().expect("intent").tasks;
    assert!(tasks.iter().any(|t| matches!(t, Task::Snapshot(x) if x.snapshot_id == s.id)), "{tasks:?}");
    assert!(tasks.iter().any(|t| matches!(t, Task::CaptureImage(x) if x.image_id == img)), "{tasks:?}");
    h.hold_storage = false;
    h.settle();
    assert_eq!(cp.describe_snapshots(&acct.id, &SnapshotFilter::default())[0].status, SnapshotStatus::Accomplished);
    assert_eq!(
        cp.image_views(&acct.id).into_iter().find(|v| v.image.id == img).map(|v| v.status),
        Some(ImageStatus::Available)
    );
    let again = cp.describe_disks(&acct.id, &DiskFilter { instance_id: Some(vm), ..Default::default() });
    assert_eq!(again.len(), 2, "disks survive the restart");
}

#[test]
fn disk_attributes_change_and_a_system_disk_is_not_meant_to_outlive_its_instance() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = clock();
    let cp = empty(dir.path(), &clock);
    let mut h = FakeHost::join(&cp, "a1", "z1", 64);
    let (acct, _) = cp.create_account("alice").expect("account");
    let vm = run(&cp, &mut h, &acct.id, &InstanceStorage::default());
    let d = cp.create_disk(&acct.id, &new_disk("z1", 20)).expect("disk");
    let a = DiskAttributes {
        name: Some("logs".into()),
        description: Some("web logs".into()),
        delete_with_instance: Some(true),
        delete_auto_snapshot: Some(false),
    };
    cp.modify_disk(&acct.id, std::slice::from_ref(&d.id), &a).expect("modified");
    let m = cp.disk(&acct.id, &d.id).expect("disk");
    assert_eq!(
        (m.name.as_str(), m.description.as_str(), m.delete_with_instance, m.delete_auto_snapshot),
        ("logs", "web logs", true, false)
    );
    let sys = cp.describe_disks(
        &acct.id,
        &DiskFilter { instance_id: Some(vm.clone()), kind: Some(DiskKind::System), ..Default::default() },
    );
    let only_dwi = DiskAttributes { delete_with_instance: Some(false), ..Default::default() };
    assert_eq!(
        storage_err(cp.modify_disk(&acct.id, std::slice::from_ref(&sys[0].id), &only_dwi)),
        StorageError::SystemDisk
    );
    // A system disk grows with its instance's billing.
    cp.resize_disk(&acct.id, &sys[0].id, 80, ResizeType::Offline).expect("grown");
    let ev = cp.usage_events(Some(&acct.id), 0).expect("usage");
    let last = ev.last().expect("event");
    assert_eq!((last.kind, last.disk_gib), (feiyun_domain::usage::EventKind::Resize, 80));
}

/// An importer that makes the archive a copy of the file, or fails on files named `bad*`.
struct CopyImporter;

impl feiyun_control::ImageImporter for CopyImporter {
    fn import(
        &self,
        source: &std::path::Path,
        dest: &std::path::Path,
        _scratch: &std::path::Path,
    ) -> Result<feiyun_control::ImportedImage, String> {
        if source.file_name().is_some_and(|n| n.to_string_lossy().starts_with("bad")) {
            return Err("not a root filesystem".into());
        }
        let n = std::fs::copy(source, dest).map_err(|e| e.to_string())?;
        Ok(feiyun_control::ImportedImage { os_name: "Tiny Linux 1.0".into(), tree_bytes: n })
    }
}

#[test]
fn images_are_imported_from_the_import_directory_off_the_callers_thread() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = clock();
    let cp = empty(dir.path(), &clock);
    let (acct, _) = cp.create_account("alice").expect("account");
    let spec = |object: &str, name: &str| feiyun_domain::ops::ImportImage {
        object: object.into(),
        name: Some(name.into()),
        description: String::new(),
        architecture: "x86_64".into(),
        os_type: "linux".into(),
        platform: "Others Linux".into(),
        client_token: None,
    };
    assert_eq!(storage_err(cp.import_image(&acct.id, &spec("rootfs.tar", "a"))), StorageError::ImportNotConfigured);
    let imports = dir.path().join("imports");
    std::fs::create_dir_all(&imports).expect("dir");
    std::fs::write(imports.join("rootfs.tar"), b"a root filesystem").expect("file");
    std::fs::write(imports.join("bad.tar"), b"junk").expect("file");
    std::fs::write(dir.path().join("secret"), b"not for tenants").expect("file");
    cp.configure_imports(imports.clone(), Arc::new(CopyImporter));
    assert!(matches!(
        storage_err(cp.import_image(&acct.id, &spec("../secret", "a"))),
        StorageError::ImportObjectMalformed(_)
    ));
    assert!(matches!(
        storage_err(cp.import_image(&acct.id, &spec("none.tar", "a"))),
        StorageError::ImportObjectNotFound(_)
    ));
    let ok = cp.import_image(&acct.id, &spec("rootfs.tar", "tiny")).expect("import");
    let bad = cp.import_image(&acct.id, &spec("bad.tar", "junk")).expect("import");
    let status = |id: &str| cp.image_views(&acct.id).into_iter().find(|v| v.image.id == id).map(|v| v.status);
    for _ in 0..200 {
        if status(&ok) != Some(ImageStatus::Creating) && status(&bad) != Some(ImageStatus::Creating) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(status(&bad), Some(ImageStatus::CreateFailed));
    let v = cp.image_views(&acct.id).into_iter().find(|v| v.image.id == ok).expect("listed");
    assert_eq!(
        (v.status, v.image.os_name.as_str(), v.image.size_bytes),
        (ImageStatus::Available, "Tiny Linux 1.0", 17)
    );
    use sha2::Digest;
    assert_eq!(v.image.sha256, Some(hex::encode(sha2::Sha256::digest(b"a root filesystem"))));
    assert!(dir.path().join("images/image").join(&ok).exists(), "among the region's blobs, for hosts to fetch");
    // Its name is taken now; instances boot from it.
    assert!(matches!(
        storage_err(cp.import_image(&acct.id, &spec("rootfs.tar", "tiny"))),
        StorageError::ImageNameTaken(_)
    ));
    let mut h = FakeHost::join(&cp, "a1", "z1", 64);
    let mut s = spec_of(&ok);
    s.auto_start = true;
    let id = cp.create_instances(&acct.id, &s).expect("boots").ids.remove(0);
    h.settle();
    let intent = h.intent().expect("intent");
    assert_eq!(intent.instances[0].id, id);
    assert_eq!(intent.instances[0].spec.image.sha256, v.image.sha256);
}

fn spec_of(image: &str) -> feiyun_domain::ops::CreateInstances {
    let mut s = spec(Purchase::default());
    s.image_id = image.into();
    s
}

/// Storage is settled with everything else, from its own usage log. All at 0: an instance
/// with a 20 GiB ESSD data disk kept on release, a snapshot of it (2 GiB on its host), the
/// instance released at once. After 100 hours: disk 20 × 0.00139 × 100 = 2.78, snapshot
/// 2 × 0.000165 × 100 = 0.033: 2.813 → 2.81. A basic disk of 100 GiB made at 0, grown to 200
/// after an hour and released an hour later: 100 × 0.00041 + 200 × 0.00041 = 0.123 → 2.936 → 2.94.
#[test]
fn disks_and_snapshots_are_billed_by_size_and_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = clock();
    let cp = empty(dir.path(), &clock);
    let mut h = FakeHost::join(&cp, "a1", "z1", 64);
    let (acct, _) = cp.create_account("alice").expect("account");
    cp.top_up(&acct.id, 100_000, "t").expect("top up");
    let keep = NewDataDisk {
        category: Some(DiskCategory::CloudEssd),
        size_gib: Some(20),
        snapshot_id: None,
        name: String::new(),
        description: String::new(),
        device: None,
        delete_with_instance: false,
    };
    let storage = InstanceStorage { data_disks: vec![keep], ..Default::default() };
    let id = cp
        .create_instances_full(&acct.id, &spec(Purchase::default()), &InstanceNetwork::default(), &storage)
        .expect("created")
        .ids
        .remove(0);
    h.settle();
    let data = cp.describe_disks(&acct.id, &DiskFilter { kind: Some(DiskKind::Data), ..Default::default() });
    cp.create_snapshot(&acct.id, &data[0].id, "s", "", None).expect("snapshot");
    h.settle();
    cp.act(&acct.id, std::slice::from_ref(&id), UserAction::Delete { force: true }, None, true, false).expect("gone");
    h.settle();
    let mut basic = new_disk("z1", 100);
    basic.category = Some(DiskCategory::Cloud);
    let b = cp.create_disk(&acct.id, &basic).expect("basic");
    clock.set(3600);
    cp.resize_disk(&acct.id, &b.id, 200, ResizeType::Offline).expect("grown");
    clock.set(7200);
    cp.delete_disk(&acct.id, &b.id).expect("released");
    clock.set(360_000);
    cp.billing_tick().expect("tick");
    let charged: i64 = cp
        .ledger(&acct.id)
        .expect("ledger")
        .iter()
        .filter(|e| e.kind == feiyun_domain::usage::LedgerKind::PayAsYouGo)
        .map(|e| e.amount_cents)
        .sum();
    assert_eq!(charged, -294);
    // The bill lines say the same, per resource.
    let bills = cp.account_bills(&acct.id).expect("bills");
    let lines = cp.usage_lines(&bills, 0, clock.now_s()).expect("lines");
    let cents = |item| -> i64 { lines.iter().filter(|l| l.item == item).map(|l| l.amount.settle_cents() as i64).sum() };
    assert_eq!(cents(feiyun_billing::metering::Item::DataDisk), 278 + 12);
    assert_eq!(cents(feiyun_billing::metering::Item::Snapshot), 3);
}
