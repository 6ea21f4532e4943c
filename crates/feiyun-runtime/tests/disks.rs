//! Disks against real loop devices, mounts and runc containers: a disk attached to a running
//! instance shows at `/mnt/<dev>` at once, is the size it says (ENOSPC beyond), grows online,
//! refuses to detach while in use, snapshots consistently while written to, resets, moves
//! through a qcow2 blob, and leaves no loop device or mount behind. Needs root, runc,
//! busybox-static, e2fsprogs, util-linux and qemu-utils; skipped (saying why) without them.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use feiyun_runtime::disks::{CopyMethod, Grown, Storage, StorageError};
use feiyun_runtime::images::{find_busybox, sha256_file, ImageStore, BUILTIN_IMAGE_ID};
use feiyun_runtime::runc::{find_runc, RuncRuntime};
use feiyun_runtime::{Observed, Runtime, RuntimeSpec};

fn skip_reason() -> Option<&'static str> {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status.lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|l| l.split_whitespace().nth(1));
    if euid != Some("0") {
        return Some("not root");
    }
    if find_runc().is_none() || find_busybox().is_none() {
        return Some("runc or busybox-static is not installed");
    }
    for tool in ["losetup", "mke2fs", "resize2fs", "e2fsck", "fsfreeze", "qemu-img"] {
        if Command::new(tool).arg("--version").output().is_err() && Command::new(tool).arg("-V").output().is_err() {
            return Some("e2fsprogs, util-linux or qemu-utils is missing");
        }
    }
    None
}

/// A runtime on a private directory; dropping it removes every instance, disk mount and loop
/// device of the test, then the directory.
struct Host {
    rt: RuncRuntime,
    storage: Arc<Storage>,
    image: PathBuf,
    ids: Vec<String>,
    dir: PathBuf,
    tag: String,
}

impl Host {
    fn new(tag: &str) -> Host {
        let dir = std::env::temp_dir().join(format!("feiyun-disks-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let images = ImageStore::new(dir.join("images"));
        images.ensure_builtin(&find_busybox().expect("busybox"), "now").expect("image");
        // A parent cgroup of its own, removed with the host.
        let parent = format!("feiyun-test-disks-{tag}-{}", std::process::id());
        let rt = RuncRuntime::new(find_runc().expect("runc"), dir.join("host"), &parent).expect("runtime");
        let storage = rt.storage().expect("a real runtime keeps disks");
        Host { rt, storage, image: images.rootfs(BUILTIN_IMAGE_ID), ids: Vec::new(), dir, tag: tag.into() }
    }

    fn spec(&mut self, name: &str) -> RuntimeSpec {
        // Cgroups are machine-wide: ids must differ between the tests of this process.
        let id = format!("i-dk{}{}{name}", std::process::id(), self.tag);
        self.ids.push(id.clone());
        RuntimeSpec {
            id,
            hostname: name.into(),
            vcpus: 1,
            memory_mib: 128,
            baseline_cpu_percent: 0,
            image_rootfs: self.image.clone(),
            user_data: None,
            netns: None,
            authorized_keys: Vec::new(),
        }
    }

    fn sh(&self, id: &str, script: &str) -> (i64, String) {
        let out = self.rt.exec(id, script.as_bytes(), "/", Duration::from_secs(60), 64 * 1024).expect("exec");
        (out.exit_code.unwrap_or(-1), String::from_utf8_lossy(&out.output).into_owned())
    }

    fn ok(&self, id: &str, script: &str) -> String {
        let (code, out) = self.sh(id, script);
        assert_eq!(code, 0, "{script:?}: {out}");
        out
    }

    /// Loop devices and mounts of this test's directory.
    fn held(&self) -> Vec<String> {
        held_under(&self.dir)
    }
}

fn held_under(dir: &Path) -> Vec<String> {
    let d = dir.to_string_lossy().into_owned();
    let mut out = Vec::new();
    let loops = Command::new("losetup").args(["--list", "--noheadings", "-O", "NAME,BACK-FILE"]).output();
    for l in String::from_utf8_lossy(&loops.map(|o| o.stdout).unwrap_or_default()).lines() {
        if l.contains(&d) {
            out.push(format!("loop {}", l.trim()));
        }
    }
    for l in fs::read_to_string("/proc/self/mountinfo").unwrap_or_default().lines() {
        if let Some(m) = l.split(' ').nth(4) {
            if m.starts_with(&d) {
                out.push(format!("mount {m}"));
            }
        }
    }
    out
}

impl Drop for Host {
    fn drop(&mut self) {
        for id in &self.ids {
            if let Err(e) = self.rt.destroy(id) {
                eprintln!("cleaning up {id}: {e}");
            }
        }
        if let Err(e) = self.storage.release_all() {
            eprintln!("releasing the disks: {e}");
        }
        if let Err(e) = self.rt.remove_parent_cgroup() {
            eprintln!("removing the instances' parent cgroup: {e}");
        }
        if held_under(&self.dir).is_empty() {
            let _ = fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("leaving {}: {:?}", self.dir.display(), held_under(&self.dir));
        }
    }
}

fn fsck_clean(file: &Path) -> bool {
    Command::new("e2fsck").args(["-f", "-n"]).arg(file).output().map(|o| o.status.success()).unwrap_or(false)
}

/// A process whose working directory is on the disk, until killed.
const HOLD_VDB: &str = "cd /mnt/vdb && { sleep 300 >/dev/null 2>&1 & echo $! > /root/holder.pid; }";
/// Rewrites 50 small files on the disk as fast as it can, until killed.
const WRITER: &str = "{ i=0; while :; do i=$((i+1)); echo $i > /mnt/vdc/f$((i % 50)); done >/dev/null 2>&1 & echo $! > /root/writer.pid; }";

#[test]
fn a_disk_in_a_running_instance() {
    if let Some(why) = skip_reason() {
        eprintln!("skipping a real-disk test: {why}");
        return;
    }
    let mut h = Host::new("run");
    let (a, b) = (h.spec("a"), h.spec("b"));
    let s = h.storage.clone();
    h.rt.start(&a).expect("start a");
    h.rt.start(&b).expect("start b");

    // Hot attach: it shows at once, ext4 of the size asked for.
    assert!(s.create_empty("d-run1", 1).expect("create"));
    assert!(!s.create_empty("d-run1", 1).expect("again"), "idempotent");
    assert!(s.attach("d-run1", &a.id, "/dev/vdb").expect("attach"));
    assert!(!s.attach("d-run1", &a.id, "/dev/vdb").expect("attach again"));
    let df = h.ok(&a.id, "df -k /mnt/vdb | tail -1; grep ' /mnt/vdb ' /proc/mounts");
    assert!(df.contains("ext4"), "{df}");
    let kib: u64 = df.split_whitespace().nth(1).and_then(|k| k.parse().ok()).expect("size");
    assert!((900_000..=1_048_576).contains(&kib), "{df}");
    h.ok(&a.id, "echo kept > /mnt/vdb/kept");
    let (code, out) = h.sh(&a.id, "touch /mnt/other 2>&1");
    assert!(code != 0 && out.contains("Read-only"), "/mnt itself is read-only: {out}");

    // The size is enforced.
    let (code, out) = h.sh(&a.id, "dd if=/dev/zero of=/mnt/vdb/fill bs=1M count=1100 2>&1");
    assert!(code != 0 && out.contains("No space left"), "{code} {out}");
    h.ok(&a.id, "rm /mnt/vdb/fill");

    // Grows online where the host may (CAP_SYS_RESOURCE); else once unmounted.
    let kib = |h: &Host, id: &str, dev: &str| -> u64 {
        let df = h.ok(id, &format!("df -k /mnt/{dev} | tail -1"));
        df.split_whitespace().nth(1).and_then(|k| k.parse().ok()).expect("size")
    };
    if s.online_resize() {
        assert_eq!(s.grow("d-run1", 2).expect("grow"), Grown::Grown);
        assert!(kib(&h, &a.id, "vdb") > 1_900_000, "grown online");
    } else {
        eprintln!("no CAP_SYS_RESOURCE here: the filesystem grows once unmounted");
        assert_eq!(s.grow("d-run1", 2).expect("grow"), Grown::Pending);
        assert_eq!(s.grow("d-run1", 2).expect("grow"), Grown::Pending);
        assert!(kib(&h, &a.id, "vdb") < 1_100_000, "not yet");
    }
    assert_eq!(
        s.grow("d-run1", 1).expect("never shrinks"),
        if s.online_resize() { Grown::Unchanged } else { Grown::Pending }
    );

    // In use in the instance: refused, still attached; free: detached and gone inside.
    h.ok(&a.id, HOLD_VDB);
    assert!(matches!(s.detach("d-run1"), Err(StorageError::Busy { .. })), "busy");
    assert_eq!(h.ok(&a.id, "cat /mnt/vdb/kept"), "kept\n");
    h.ok(&a.id, "kill $(cat /root/holder.pid)");
    let mut detached = false;
    for _ in 0..50 {
        if s.detach("d-run1").is_ok() {
            detached = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(detached, "detaches once nothing uses it");
    if !s.online_resize() {
        assert_eq!(s.grow("d-run1", 2).expect("grow"), Grown::Grown, "grown once unmounted");
    }
    assert_eq!(s.grow("d-run1", 2).expect("grow"), Grown::Unchanged);
    assert!(h.sh(&a.id, "test -e /mnt/vdb/kept").0 != 0, "gone from a");

    // Attached to another instance: the data is there. Stop and start keep it.
    assert!(s.attach("d-run1", &b.id, "/dev/vdc").expect("attach to b"));
    assert_eq!(h.ok(&b.id, "cat /mnt/vdc/kept"), "kept\n");
    assert!(kib(&h, &b.id, "vdc") > 1_900_000, "grown");
    h.rt.stop(&b.id, Duration::from_secs(5)).expect("stop b");
    assert!(s.state("d-run1").expect("state").and_then(|d| d.attached).is_some(), "stays attached while stopped");
    h.rt.start(&b).expect("start b");
    assert_eq!(h.ok(&b.id, "cat /mnt/vdc/kept; touch /mnt/vdc/rw && echo rw"), "kept\nrw\n");

    // A snapshot taken while the instance writes is consistent.
    h.ok(&b.id, WRITER);
    std::thread::sleep(Duration::from_millis(300));
    let snap = s.snapshot("d-run1", "s-run1").expect("snapshot");
    assert!(matches!(snap.method, CopyMethod::Reflink | CopyMethod::Sparse));
    assert!(snap.size_bytes > 0);
    assert_eq!(s.snapshot("d-run1", "s-run1").expect("again").method, CopyMethod::Existing);
    h.ok(&b.id, "kill $(cat /root/writer.pid)");
    assert!(fsck_clean(&s.snapshot_path("s-run1")), "the snapshot is clean");
    assert_eq!(h.ok(&b.id, "echo after > /mnt/vdc/after; cat /mnt/vdc/after"), "after\n", "thawed");

    // Reset: refused while the disk is in use, then the older content is back.
    h.ok(&b.id, "echo v1 > /mnt/vdc/version; sync");
    s.snapshot("d-run1", "s-run2").expect("snapshot");
    h.ok(&b.id, "echo v2 > /mnt/vdc/version");
    h.ok(&b.id, &HOLD_VDB.replace("vdb", "vdc"));
    assert!(matches!(s.reset("d-run1", "s-run2"), Err(StorageError::Busy { .. })));
    h.rt.stop(&b.id, Duration::ZERO).expect("stop b");
    s.reset("d-run1", "s-run2").expect("reset");
    assert!(s.state("d-run1").expect("state").and_then(|d| d.attached).is_none(), "reset leaves it detached");
    assert!(s.attach("d-run1", &b.id, "vdc").expect("attach"));
    h.rt.start(&b).expect("start b");
    assert_eq!(h.ok(&b.id, "cat /mnt/vdc/version; test -e /mnt/vdc/after && echo after"), "v1\nafter\n");

    // Through a qcow2 blob to a new disk; a wrong checksum is refused.
    let blob = s.scratch_file("blob");
    let size = s.export(&s.disk_path("d-run1"), &blob).expect("export");
    assert!(size < 64 << 20, "a mostly empty disk travels small: {size}");
    let sum = sha256_file(&blob).expect("sum");
    let wrong = "0".repeat(64);
    assert!(matches!(s.create_from_blob("d-run2", &blob, &wrong, 3), Err(StorageError::Checksum { .. })));
    assert!(s.state("d-run2").expect("state").is_none());
    assert!(s.create_from_blob("d-run2", &blob, &sum, 3).expect("from blob"));
    fs::remove_file(&blob).expect("rm blob");
    assert!(s.attach("d-run2", &a.id, "vdd").expect("attach"));
    assert_eq!(h.ok(&a.id, "cat /mnt/vdd/version; df -k /mnt/vdd | tail -1 | awk '{print ($2 > 2900000)}'"), "v1\n1\n");
    // From a local snapshot too.
    assert!(s.create_from_snapshot("d-run3", "s-run1", 1).expect("from snapshot"));
    assert!(fsck_clean(&s.disk_path("d-run3")));

    // Removing an instance detaches its disks and keeps their files.
    h.rt.destroy(&a.id).expect("destroy a");
    assert!(s.state("d-run2").expect("state").is_some_and(|d| d.attached.is_none()));
    s.remove_disk("d-run2").expect("remove");
    assert!(s.state("d-run2").expect("state").is_none());
    h.rt.destroy(&b.id).expect("destroy b");
    assert_eq!(h.rt.observe(&b.id).expect("observe"), Observed::Absent);
    assert_eq!(h.held(), Vec::<String>::new(), "no loop device or mount left");
}

#[test]
fn captures_an_instance_and_a_snapshot() {
    if let Some(why) = skip_reason() {
        eprintln!("skipping a real-disk test: {why}");
        return;
    }
    let mut h = Host::new("cap");
    let mut a = h.spec("a");
    a.authorized_keys = vec!["ssh-ed25519 AAAAPLATFORM a".into()];
    a.user_data = Some(b"echo once >> /root/ran".to_vec());
    let s = h.storage.clone();
    h.rt.start(&a).expect("start");
    h.ok(&a.id, "echo hello > /root/hello; rm /etc/os-release; echo 'ssh-rsa GUEST' >> /root/.ssh/authorized_keys");
    assert_eq!(h.ok(&a.id, "stat -c '%a %u' /root/.ssh /root/.ssh/authorized_keys"), "700 0\n600 0\n");

    let images = ImageStore::new(h.dir.join("images"));
    for (n, running) in [(1, true), (2, false)] {
        if !running {
            h.rt.stop(&a.id, Duration::ZERO).expect("stop");
        }
        let out = s.scratch_file("capture");
        let got = s.capture_instance(&a.id, &h.image, &out).expect("capture");
        assert!(got.entries > 100, "{got:?}");
        let id = format!("m-cap{n}");
        images.install_archive(&id, &out, &sha256_file(&out).expect("sum"), "now").expect("install");
        fs::remove_file(&out).expect("rm");
        let r = images.rootfs(&id);
        assert_eq!(fs::read_to_string(r.join("root/hello")).expect("hello"), "hello\n");
        assert!(!r.join("etc/os-release").exists(), "a deleted file stays deleted");
        assert!(!r.join("var/lib/feiyun/user-data").exists() && !r.join("var/lib/feiyun/user-data.done").exists());
        assert_eq!(fs::read_to_string(r.join("root/.ssh/authorized_keys")).expect("keys"), "ssh-rsa GUEST\n");
        assert!(r.join("sbin/feiyun-init").exists());
    }
    // The capture boots: a new instance from it has the files, runs its own user data only.
    let mut c = h.spec("c");
    c.image_rootfs = images.rootfs("m-cap2");
    h.rt.start(&c).expect("start from the captured image");
    assert_eq!(h.ok(&c.id, "cat /root/hello; cat /root/ran 2>/dev/null | wc -l"), "hello\n1\n");

    // A disk holding a root filesystem, snapshotted, captured.
    s.create_empty("d-cap1", 1).expect("disk");
    s.attach("d-cap1", &c.id, "vdb").expect("attach");
    h.ok(&c.id, "cp -a /bin /sbin /etc /mnt/vdb/ && sync");
    s.snapshot("d-cap1", "s-cap1").expect("snapshot");
    let out = s.scratch_file("capture");
    let got = s.capture_snapshot("s-cap1", &out).expect("capture snapshot");
    assert!(got.entries > 50);
    fs::remove_file(&out).expect("rm");
    s.create_empty("d-cap2", 1).expect("empty disk");
    s.snapshot("d-cap2", "s-cap2").expect("snapshot");
    assert!(matches!(s.capture_snapshot("s-cap2", &out), Err(StorageError::Refused(_))), "no root filesystem");
    assert_eq!(h.held().iter().filter(|m| m.contains("scratch")).count(), 0, "captures undo their mounts");
}
