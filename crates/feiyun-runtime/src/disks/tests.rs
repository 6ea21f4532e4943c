//! Tests of `disks`.

use super::*;

#[test]
fn ids_devices_and_sizes() {
    assert!(check_id("disk id", "d-2ze8x_1").is_ok());
    for bad in ["", "../x", "a/b", "-x", ".img", &"x".repeat(65)] {
        assert!(check_id("disk id", bad).is_err(), "{bad:?}");
    }
    assert_eq!(device_name("/dev/vdb").ok().as_deref(), Some("vdb"));
    assert_eq!(device_name("xvdc1").ok().as_deref(), Some("xvdc1"));
    for bad in ["/dev/", "/dev/../x", "/dev/VDB", "/dev/1a", "/dev/vd b"] {
        assert!(device_name(bad).is_err(), "{bad:?}");
    }
    assert!(gib_bytes(0).is_err() && gib_bytes(MAX_DISK_GIB + 1).is_err());
    assert_eq!(partial_of(Path::new("/x/d.img")), PathBuf::from("/x/d.img.partial"));
}

#[test]
fn lists_only_files_it_made() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Storage::new(dir.path()).expect("store");
    for name in ["d-1.img", "d-2.img.partial", "d-3.fetch", "notes.txt", ".hidden.img", "d-1.img.partial"] {
        fs::write(dir.path().join("disks").join(name), b"").expect("write");
    }
    assert_eq!(s.disk_ids().expect("ids"), vec!["d-1", "d-2", "d-3"]);
    fs::write(dir.path().join("snapshots/s-1.img"), b"").expect("write");
    assert_eq!(s.snapshot_ids().expect("ids"), vec!["s-1"]);
}

#[test]
fn reads_the_filesystem_size_from_the_superblock() {
    if Command::new("mke2fs").arg("-V").output().is_err() {
        eprintln!("skipping: e2fsprogs is not installed");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("d.img");
    File::create(&f).and_then(|x| x.set_len(64 << 20)).expect("file");
    mkfs(&f).expect("mkfs");
    assert_eq!(fs_bytes(&f).expect("size"), 64 << 20);
    grow_offline(&f, 96 << 20).expect("grow");
    assert_eq!(fs_bytes(&f).expect("size"), 96 << 20);
    fs::write(dir.path().join("junk"), vec![0u8; 4096]).expect("junk");
    assert!(matches!(fs_bytes(&dir.path().join("junk")), Err(StorageError::Refused(_))));
}
