//! The agent keeping disks for real instances: sparse files on loop devices mounted into runc
//! containers, driven through the agent's loop by a fake control plane. A disk attached at
//! creation is there when the instance first boots, one attached to a running instance appears
//! live, data survives stop and start and moves with the disk to another instance; the size is
//! enforced and grows; a disk in use is not torn out of its instance; snapshots are consistent
//! under writes, resets bring older content back, blobs with a wrong checksum are refused;
//! captured images boot; key pairs land with the right modes; an agent killed in the middle of
//! an attach or a snapshot is finished by the next one; and nothing of a test is left on the
//! host. Needs root, runc, busybox-static, util-linux, e2fsprogs and qemu-utils; skipped
//! (saying why) without them.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use feiyun_agent::{Agent, AgentOptions};
use feiyun_domain::instance::{InstanceStatus, PowerState, UserAction};
use feiyun_domain::Resources;
use feiyun_hostproto::{
    BlobKind, BlobRef, CaptureImageTask, CaptureSource, DiskAttachment, DiskSource, DiskSpec, HostSpec, ImageRef,
    ImageSource, InstanceIntent, Intent, ResetDiskTask, SnapshotTask, Task, TaskOutcome, UploadDiskTask,
    PROTOCOL_VERSION,
};
use feiyun_runtime::images::{find_busybox, ImageStore};
use feiyun_runtime::runc::{find_runc, RuncRuntime};
use feiyun_runtime::sim::SimRuntime;
use feiyun_runtime::Runtime;

fn skip_reason() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status.lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|l| l.split_whitespace().nth(1));
    if euid != Some("0") {
        return Some("not root".into());
    }
    if find_runc().is_none() || find_busybox().is_none() {
        return Some("runc or busybox-static is not installed".into());
    }
    for tool in ["losetup", "fsfreeze", "mke2fs", "resize2fs", "e2fsck", "qemu-img"] {
        if Command::new(tool).arg("--version").output().is_err() && Command::new(tool).arg("-V").output().is_err() {
            return Some(format!("{tool} is not installed"));
        }
    }
    None
}

macro_rules! host_or_skip {
    ($tag:expr) => {
        match skip_reason() {
            Some(why) => {
                eprintln!("skipping a real-disk agent test: {why}");
                return;
            }
            None => DiskHost::new($tag),
        }
    };
}

/// A host on a private data directory, in the test's own namespaces. Dropping it removes every
/// instance, mount, loop device and file of the test, also when the test fails.
struct DiskHost {
    data: PathBuf,
    runtime: Arc<RuncRuntime>,
    images: Arc<ImageStore>,
}

impl DiskHost {
    fn dir(tag: &str) -> PathBuf {
        std::env::temp_dir().join(format!("feiyun-agentdisk-{tag}"))
    }

    fn new(tag: &str) -> DiskHost {
        let data = Self::dir(tag);
        // What an earlier run that was killed left (dropping it removes everything).
        drop(DiskHost::reopen(data.clone()));
        let images = Arc::new(ImageStore::new(data.join("images")));
        images.ensure_builtin(&find_busybox().expect("busybox"), "now").expect("image");
        DiskHost::reopen(data)
    }

    fn reopen(data: PathBuf) -> DiskHost {
        let runtime = Arc::new(
            RuncRuntime::new(find_runc().expect("runc"), data.join("host"), &cgroup_parent(&data)).expect("runtime"),
        );
        let images = Arc::new(ImageStore::new(data.join("images")));
        DiskHost { data, runtime, images }
    }

    fn options(&self) -> AgentOptions {
        AgentOptions {
            host: HostSpec {
                name: "disk-host".into(),
                zone: Some("z".into()),
                capacity: Resources { vcpus: 16, memory_mib: 16 * 1024, gpus: 0, local_disk_gib: 0 },
                gpu_model: None,
                local_disk_category: None,
                simulated: false,
                protocol: PROTOCOL_VERSION,
                agent_version: "test".into(),
                underlay_ip: None,
            },
            token: Some("token".into()),
            identity_file: None,
            busybox: find_busybox(),
            network_state: None,
        }
    }

    fn start_agent(&self, link: Arc<dyn feiyun_hostproto::ControlLink>) -> RunningAgent {
        RunningAgent::start(
            Path::new("/proc/self/ns/net"),
            link,
            self.runtime.clone(),
            self.images.clone(),
            self.options(),
        )
    }

    fn sh(&self, id: &str, script: &str) -> (i64, String) {
        let out = self.runtime.exec(id, script.as_bytes(), "/", Duration::from_secs(60), 64 * 1024).expect("exec");
        (out.exit_code.unwrap_or(-1), String::from_utf8_lossy(&out.output).into_owned())
    }

    fn ok(&self, id: &str, script: &str) -> String {
        let (code, out) = self.sh(id, script);
        assert_eq!(code, 0, "{script:?} in {id}: {out}");
        out
    }

    fn disk_file(&self, id: &str) -> PathBuf {
        self.data.join("host/disks").join(format!("{id}.img"))
    }

    fn snapshot_file(&self, id: &str) -> PathBuf {
        self.data.join("host/snapshots").join(format!("{id}.img"))
    }

    /// Loop devices and mounts of this host's directory.
    fn held(&self) -> Vec<String> {
        let d = self.data.to_string_lossy().into_owned();
        let mut out: Vec<String> =
            loops().into_iter().filter(|(_, f)| f.starts_with(&d)).map(|(l, f)| format!("{l} {f}")).collect();
        for l in std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default().lines() {
            if let Some(m) = l.split(' ').nth(4) {
                if m.starts_with(&d) {
                    out.push(format!("mount {m}"));
                }
            }
        }
        out
    }

    /// Loop devices bound to a file.
    fn loops_of(&self, file: &Path) -> Vec<String> {
        let f = file.to_string_lossy();
        loops().into_iter().filter(|(_, b)| b.trim_end_matches(" (deleted)") == f).map(|(l, _)| l).collect()
    }

    /// Mounts (in this namespace) of a loop device.
    fn mounts_of(&self, dev: &str) -> Vec<String> {
        let name = dev.trim_start_matches("/dev/");
        let majmin = std::fs::read_to_string(format!("/sys/block/{name}/dev")).unwrap_or_default();
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter(|l| l.split(' ').nth(2) == Some(majmin.trim()))
            .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
            .collect()
    }

    fn remove_everything(&self) {
        if let Ok(ids) = self.runtime.list() {
            for id in ids {
                if let Err(e) = self.runtime.destroy(&id) {
                    eprintln!("cleaning up {id}: {e}");
                }
            }
        }
        if let Some(s) = self.runtime.storage() {
            if let Err(e) = s.release_all() {
                eprintln!("releasing disks: {e}");
            }
        }
        if let Err(e) = self.runtime.remove_parent_cgroup() {
            eprintln!("removing the instances' parent cgroup: {e}");
        }
        if self.held().is_empty() {
            let _ = std::fs::remove_dir_all(&self.data);
        } else {
            eprintln!("leaving {}: {:?}", self.data.display(), self.held());
        }
    }
}

impl Drop for DiskHost {
    fn drop(&mut self) {
        self.remove_everything();
    }
}

/// Every bound loop device: (device, backing file).
fn loops() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/sys/block").map(|d| d.flatten().collect::<Vec<_>>()).unwrap_or_default() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Ok(b) = std::fs::read_to_string(e.path().join("loop/backing_file")) {
            out.push((format!("/dev/{name}"), b.trim().to_string()));
        }
    }
    out
}

fn disk(id: &str, size_gib: u64, source: DiskSource, at: Option<(&str, &str)>) -> DiskSpec {
    DiskSpec {
        disk_id: id.into(),
        size_gib,
        source,
        attachment: at.map(|(i, d)| DiskAttachment { instance_id: i.into(), device: d.into() }),
    }
}

fn with_disks(instances: Vec<InstanceIntent>, disks: Vec<DiskSpec>) -> Intent {
    let mut i = intent("h-disk", instances, None);
    i.disks = disks;
    i
}

fn disk_mut<'a>(i: &'a mut Intent, id: &str) -> &'a mut DiskSpec {
    i.disks.iter_mut().find(|d| d.disk_id == id).expect("disk")
}

fn instance_mut<'a>(i: &'a mut Intent, id: &str) -> &'a mut InstanceIntent {
    i.instances.iter_mut().find(|x| x.id == id).expect("instance")
}

/// The size of a filesystem inside an instance, KiB.
fn df_kib(h: &DiskHost, id: &str, path: &str) -> u64 {
    let df = h.ok(id, &format!("df -k {path} | tail -1"));
    df.split_whitespace().nth(1).and_then(|k| k.parse().ok()).expect("df")
}

fn fsck_clean(file: &Path) -> bool {
    match Command::new("e2fsck").args(["-f", "-n"]).arg(file).output() {
        Ok(o) if o.status.success() => true,
        Ok(o) => {
            eprintln!(
                "e2fsck {}: {}{}",
                file.display(),
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            false
        }
        Err(e) => {
            eprintln!("e2fsck: {e}");
            false
        }
    }
}

/// A process with its working directory on the disk at `/mnt/<dev>`, until killed.
fn hold(dev: &str) -> String {
    format!("cd /mnt/{dev} && {{ sleep 300 >/dev/null 2>&1 & echo $! > /root/holder.pid; }}")
}
const RELEASE: &str = "kill $(cat /root/holder.pid)";
/// Rewrites small files on the disk at `/mnt/vdb` as fast as it can, until killed.
const WRITER: &str =
    "{ i=0; while :; do i=$((i+1)); echo $i > /mnt/vdb/f$((i % 50)); done >/dev/null 2>&1 & echo $! > /root/writer.pid; }";

fn delete(i: &mut Intent, id: &str) {
    let inst = instance_mut(i, id);
    let t = inst.status.apply(inst.desired, UserAction::Delete { force: true }).expect("delete");
    inst.status = t.status;
    inst.desired = t.desired;
}

#[test]
fn disks_follow_the_intent() {
    let h = host_or_skip!("a");
    let (a, b) = ("i-sta", "i-stb");
    let key1 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKey1 one@test";
    let key2 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKey2 two@test";
    let mut ia = instance(a, Some("echo from-user-data > /mnt/vdb/boot"));
    ia.spec.authorized_keys = vec![key1.into()];
    let fake = FakeControl::new(with_disks(
        vec![ia, instance(b, None)],
        vec![disk("d-sta0", 1, DiskSource::Empty, Some((a, "/dev/vdb")))],
    ));
    let agent = h.start_agent(fake.clone());
    fake.wait_status(a, InstanceStatus::Running);
    fake.wait_status(b, InstanceStatus::Running);

    // Attached at creation: there at the first boot (the user data wrote to it).
    fake.wait_disk("d-sta0", "attached to a", |d| d.attached_to.as_deref() == Some(a) && d.size_gib == 1);
    wait_for("a's user data", Duration::from_secs(20), || h.sh(a, "cat /mnt/vdb/boot").1 == "from-user-data\n");
    assert!(h.ok(a, "grep ' /mnt/vdb ' /proc/mounts").contains("ext4"));

    // The key pair, with the modes sshd wants; replaced while the instance runs.
    assert_eq!(
        h.ok(a, "stat -c '%a %U' /root/.ssh /root/.ssh/authorized_keys; cat /root/.ssh/authorized_keys"),
        format!("700 root\n600 root\n{key1}\n")
    );
    fake.change(|i| instance_mut(i, a).spec.authorized_keys = vec![key2.into()]);
    wait_for("the new key", Duration::from_secs(20), || {
        h.sh(a, "cat /root/.ssh/authorized_keys").1 == format!("{key2}\n")
    });

    // Hot attach to a running instance.
    let boots = h.runtime.console(b, 1 << 20).map(|(c, _)| String::from_utf8_lossy(&c).matches("booting").count());
    fake.change(|i| i.disks.push(disk("d-sta1", 1, DiskSource::Empty, Some((b, "/dev/vdc")))));
    fake.wait_disk("d-sta1", "attached to b", |d| d.attached_to.as_deref() == Some(b));
    h.ok(b, "test -d /mnt/vdc/lost+found && echo kept > /mnt/vdc/kept");
    let again = h.runtime.console(b, 1 << 20).map(|(c, _)| String::from_utf8_lossy(&c).matches("booting").count());
    assert_eq!(boots.ok(), again.ok(), "attached without a reboot");

    // Its size is enforced.
    let (code, out) = h.sh(b, "dd if=/dev/zero of=/mnt/vdc/fill bs=1M count=1100 2>&1");
    assert!(code != 0 && out.contains("No space left on device"), "{code}: {out}");
    h.ok(b, "rm /mnt/vdc/fill");

    // It grows: online where the host may, else when its instance stops.
    let online = h.runtime.storage().expect("storage").online_resize();
    fake.change(|i| disk_mut(i, "d-sta1").size_gib = 2);
    if online {
        fake.wait_disk("d-sta1", "grown online", |d| d.size_gib == 2);
    } else {
        eprintln!("no CAP_SYS_RESOURCE here: the filesystem grows when its instance stops");
        std::thread::sleep(Duration::from_secs(2));
        assert_eq!(fake.disk("d-sta1").map(|d| d.size_gib), Some(1), "not while b runs");
    }
    fake.user(b, UserAction::Stop);
    fake.wait_status(b, InstanceStatus::Stopped);
    fake.wait_disk("d-sta1", "grown, attached to the stopped b", |d| {
        d.size_gib == 2 && d.attached_to.as_deref() == Some(b) && d.error.is_none()
    });
    fake.user(b, UserAction::Start);
    fake.wait_status(b, InstanceStatus::Running);
    assert_eq!(h.ok(b, "cat /mnt/vdc/kept"), "kept\n", "kept across stop and start");
    assert!(df_kib(&h, b, "/mnt/vdc") > 1_900_000);

    // A disk in use is not torn out of its instance; once let go, it detaches live.
    h.ok(b, &hold("vdc"));
    fake.change(|i| disk_mut(i, "d-sta1").attachment = None);
    fake.wait_disk("d-sta1", "refused while in use", |d| {
        d.attached_to.as_deref() == Some(b) && d.error.as_deref().is_some_and(|e| e.contains("in use"))
    });
    assert_eq!(h.ok(b, "cat /mnt/vdc/kept"), "kept\n");
    h.ok(b, RELEASE);
    fake.wait_disk("d-sta1", "detached", |d| d.attached_to.is_none() && d.error.is_none());
    assert_ne!(h.sh(b, "test -e /mnt/vdc/kept").0, 0, "gone from b");
    assert!(h.loops_of(&h.disk_file("d-sta1")).is_empty(), "its loop device is freed");

    // Attached to another instance, the data is there.
    fake.change(|i| {
        disk_mut(i, "d-sta1").attachment = Some(DiskAttachment { instance_id: a.into(), device: "/dev/vdc".into() })
    });
    fake.wait_disk("d-sta1", "attached to a", |d| d.attached_to.as_deref() == Some(a));
    assert_eq!(h.ok(a, "cat /mnt/vdc/kept"), "kept\n");

    // Deleting an instance detaches its disks; their files stay.
    fake.change(|i| {
        delete(i, a);
        for d in &mut i.disks {
            d.attachment = None;
        }
    });
    wait_for("a to be removed", Duration::from_secs(60), || fake.status(a).is_none());
    for d in ["d-sta0", "d-sta1"] {
        fake.wait_disk(d, "detached", |s| s.attached_to.is_none() && s.error.is_none());
        assert!(h.disk_file(d).exists(), "{d} outlives its instance");
    }
    // A disk the intent drops is removed; another instance still sees its own.
    fake.change(|i| i.disks.retain(|d| d.disk_id != "d-sta0"));
    wait_for("d-sta0's file to go", Duration::from_secs(30), || !h.disk_file("d-sta0").exists());
    assert!(h.disk_file("d-sta1").exists());

    // Everything goes: nothing of the test is left on the host.
    fake.change(|i| {
        delete(i, b);
        i.disks.clear();
    });
    wait_for("the host to be empty", Duration::from_secs(60), || {
        h.runtime.list().is_ok_and(|l| l.is_empty()) && !h.disk_file("d-sta1").exists()
    });
    assert_eq!(h.held(), Vec::<String>::new(), "no loop device or mount left");
    assert!(fake.read(|c| c.errors.is_empty()), "{:?}", fake.read(|c| c.errors.clone()));
    agent.stop();
}

#[test]
fn snapshots_resets_and_blobs() {
    let h = host_or_skip!("b");
    let c = "i-stc";
    let fake = FakeControl::new(with_disks(
        vec![instance(c, None)],
        vec![disk("d-stc", 1, DiskSource::Empty, Some((c, "/dev/vdb")))],
    ));
    fake.keep_blobs(&h.data.join("region-blobs"));
    let agent = h.start_agent(fake.clone());
    fake.wait_status(c, InstanceStatus::Running);
    fake.wait_disk("d-stc", "attached", |d| d.attached_to.as_deref() == Some(c));
    h.ok(c, "echo v1 > /mnt/vdb/version");

    // A snapshot taken while the instance writes is consistent.
    h.ok(c, WRITER);
    std::thread::sleep(Duration::from_millis(300));
    let snap = |id: &str, snapshot: &str, upload: bool| {
        Task::Snapshot(SnapshotTask { id: id.into(), disk_id: "d-stc".into(), snapshot_id: snapshot.into(), upload })
    };
    let out = fake.run_task(snap("t-s1", "s-stc1", false));
    assert!(matches!(out, TaskOutcome::Snapshot { size_bytes, blob: None } if size_bytes > 0), "{out:?}");
    h.ok(c, "kill $(cat /root/writer.pid)");
    assert!(fsck_clean(&h.snapshot_file("s-stc1")), "the snapshot is a clean filesystem");
    assert_eq!(h.ok(c, "echo v2 > /mnt/vdb/version; cat /mnt/vdb/version"), "v2\n", "writes go on after it");

    // ResetDisk: refused while the instance runs; once stopped, the older content is back.
    let reset = |id: &str| {
        Task::ResetDisk(ResetDiskTask { id: id.into(), disk_id: "d-stc".into(), snapshot_id: "s-stc1".into() })
    };
    let out = fake.run_task(reset("t-r1"));
    assert!(matches!(&out, TaskOutcome::Failed(m) if m.contains("running")), "{out:?}");
    fake.user(c, UserAction::Stop);
    fake.wait_status(c, InstanceStatus::Stopped);
    assert_eq!(fake.run_task(reset("t-r2")), TaskOutcome::Done);
    fake.user(c, UserAction::Start);
    fake.wait_status(c, InstanceStatus::Running);
    assert_eq!(h.ok(c, "cat /mnt/vdb/version"), "v1\n");

    // Uploaded, the snapshot makes a disk elsewhere (here: a second disk); a blob whose checksum
    // is not the one recorded is refused before anything is made of it.
    let out = fake.run_task(snap("t-s2", "s-stc2", true));
    let TaskOutcome::Snapshot { blob: Some(info), .. } = out else { panic!("no blob: {out:?}") };
    let blob =
        BlobRef { kind: BlobKind::Snapshot, id: "s-stc2".into(), sha256: "0".repeat(64), size_bytes: info.size_bytes };
    fake.change(|i| i.disks.push(disk("d-stc2", 2, DiskSource::Blob(blob.clone()), Some((c, "/dev/vdc")))));
    let refused = fake.wait_disk("d-stc2", "refused", |d| d.error.is_some());
    assert!(refused.error.as_deref().is_some_and(|e| e.contains("SHA-256")), "{refused:?}");
    assert!(!h.disk_file("d-stc2").exists() && !h.data.join("host/disks/d-stc2.fetch").exists());
    fake.change(|i| disk_mut(i, "d-stc2").source = DiskSource::Blob(BlobRef { sha256: info.sha256.clone(), ..blob }));
    fake.wait_disk("d-stc2", "made and attached", |d| d.attached_to.as_deref() == Some(c) && d.error.is_none());
    assert_eq!(h.ok(c, "cat /mnt/vdc/version"), "v1\n");
    assert!(df_kib(&h, c, "/mnt/vdc") > 1_900_000, "grown to its size");

    // A disk from a local snapshot, and a disk uploaded for another host (refused while its
    // instance runs).
    fake.change(|i| i.disks.push(disk("d-stc3", 1, DiskSource::LocalSnapshot("s-stc1".into()), None)));
    fake.wait_disk("d-stc3", "made", |d| d.size_gib == 1 && d.error.is_none());
    let upload = |id: &str, disk: &str| {
        Task::UploadDisk(UploadDiskTask { id: id.into(), disk_id: disk.into(), blob_id: format!("b-{disk}") })
    };
    let out = fake.run_task(upload("t-u1", "d-stc2"));
    assert!(matches!(&out, TaskOutcome::Failed(m) if m.contains("running")), "{out:?}");
    let out = fake.run_task(upload("t-u2", "d-stc3"));
    assert!(matches!(&out, TaskOutcome::Uploaded(b) if b.size_bytes > 0), "{out:?}");
    assert!(h.data.join("region-blobs/disk-b-d-stc3").exists());

    // Snapshots the intent drops are removed; nothing is left.
    fake.change(|i| {
        i.snapshots.clear();
        delete(i, c);
        i.disks.clear();
    });
    wait_for("the host to be empty", Duration::from_secs(60), || {
        h.runtime.list().is_ok_and(|l| l.is_empty())
            && std::fs::read_dir(h.data.join("host/disks")).is_ok_and(|d| d.count() == 0)
            && std::fs::read_dir(h.data.join("host/snapshots")).is_ok_and(|d| d.count() == 0)
    });
    assert_eq!(h.held(), Vec::<String>::new());
    assert!(std::fs::read_dir(h.data.join("host/scratch")).is_ok_and(|d| d.count() == 0), "no scratch file left");
    agent.stop();
}

#[test]
fn a_captured_image_boots_with_the_same_files() {
    let h = host_or_skip!("c");
    let (e, f) = ("i-ste", "i-stf");
    let fake = FakeControl::new(with_disks(vec![instance(e, Some("echo made-in-e > /root/hello"))], vec![]));
    fake.keep_blobs(&h.data.join("region-blobs"));
    let agent = h.start_agent(fake.clone());
    fake.wait_status(e, InstanceStatus::Running);
    wait_for("e's user data", Duration::from_secs(20), || h.sh(e, "cat /root/hello").1 == "made-in-e\n");
    h.ok(e, "mkdir -p /opt/app && echo 42 > /opt/app/answer && rm /etc/os-release");

    let capture = |id: &str, image: &str, source: CaptureSource| {
        Task::CaptureImage(CaptureImageTask { id: id.into(), image_id: image.into(), source })
    };
    let out = fake.run_task(capture("t-c1", "m-ste", CaptureSource::Instance(e.into())));
    let TaskOutcome::Uploaded(info) = out else { panic!("{out:?}") };

    // An instance of the captured image (fetched as a region image, checked by its SHA-256).
    let mut fi = instance(f, None);
    fi.spec.image = ImageRef {
        id: "m-ste".into(),
        source: ImageSource::Region,
        size_bytes: info.size_bytes,
        sha256: Some(info.sha256),
    };
    fake.change(|i| i.instances.push(fi));
    fake.wait_status(f, InstanceStatus::Running);
    assert_eq!(
        h.ok(f, "cat /root/hello /opt/app/answer; test -e /etc/os-release || echo no-os-release"),
        "made-in-e\n42\nno-os-release\n"
    );
    assert_eq!(h.ok(f, "cat /etc/hostname"), format!("{f}\n"), "its own hostname");

    // From a stopped instance, and from a snapshot of a disk holding a root filesystem.
    fake.user(e, UserAction::Stop);
    fake.wait_status(e, InstanceStatus::Stopped);
    let out = fake.run_task(capture("t-c2", "m-ste2", CaptureSource::Instance(e.into())));
    assert!(matches!(out, TaskOutcome::Uploaded(_)), "{out:?}");
    fake.change(|i| i.disks.push(disk("d-stf", 1, DiskSource::Empty, Some((f, "/dev/vdb")))));
    fake.wait_disk("d-stf", "attached", |d| d.attached_to.as_deref() == Some(f));
    h.ok(f, "cp -a /bin /sbin /etc /root /mnt/vdb/");
    let out = fake.run_task(Task::Snapshot(SnapshotTask {
        id: "t-s".into(),
        disk_id: "d-stf".into(),
        snapshot_id: "s-stf".into(),
        upload: false,
    }));
    assert!(matches!(out, TaskOutcome::Snapshot { .. }), "{out:?}");
    let out = fake.run_task(capture("t-c3", "m-ste3", CaptureSource::Snapshot("s-stf".into())));
    assert!(matches!(out, TaskOutcome::Uploaded(_)), "{out:?}");
    let out = fake.run_task(capture("t-c4", "m-ste4", CaptureSource::Instance("i-nowhere".into())));
    assert!(matches!(out, TaskOutcome::Failed(_)), "{out:?}");

    fake.change(|i| {
        delete(i, e);
        delete(i, f);
        i.disks.clear();
        i.snapshots.clear();
    });
    wait_for("the host to be empty", Duration::from_secs(60), || {
        h.runtime.list().is_ok_and(|l| l.is_empty()) && !h.disk_file("d-stf").exists()
    });
    assert_eq!(h.held(), Vec::<String>::new());
    agent.stop();
}

/// An agent process for [`a_killed_agent_is_finished_by_the_next`]: started by it with the
/// intent to serve, and killed by it. Does nothing when run on its own.
#[test]
fn child_disk_agent() {
    let Ok(config) = std::env::var(CHILD_ENV) else { return };
    let text = std::fs::read(&config).expect("child config");
    let (data, intent): (PathBuf, Intent) = serde_json::from_slice(&text).expect("child config");
    let h = DiskHost::reopen(data);
    let _agent = h.start_agent(FakeControl::new(intent));
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

const CHILD_ENV: &str = "FEIYUN_DISK_AGENT_TEST_CHILD";

/// An agent in a process of its own, killed with SIGKILL when dropped.
struct ChildAgent(std::process::Child);

impl ChildAgent {
    fn spawn(h: &DiskHost, intent: &Intent) -> ChildAgent {
        let config = h.data.join("child.json");
        std::fs::write(&config, serde_json::to_vec(&(&h.data, intent)).expect("config")).expect("write config");
        let child = Command::new(std::env::current_exe().expect("test binary"))
            .args(["child_disk_agent", "--exact", "--nocapture", "--test-threads", "1"])
            .env(CHILD_ENV, &config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn the child agent");
        ChildAgent(child)
    }
}

impl Drop for ChildAgent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_killed_agent_is_finished_by_the_next() {
    let h = host_or_skip!("k");
    let k = "i-stk";
    let file = h.disk_file("d-stk");
    let fake = FakeControl::new(with_disks(vec![instance(k, None)], vec![disk("d-stk", 1, DiskSource::Empty, None)]));
    let agent = h.start_agent(fake.clone());
    fake.wait_status(k, InstanceStatus::Running);
    fake.wait_disk("d-stk", "made", |d| d.size_gib == 1);
    agent.stop();
    let detached = fake.read(|c| c.intent.clone());
    let mut attached = detached.clone();
    disk_mut(&mut attached, "d-stk").attachment =
        Some(DiskAttachment { instance_id: k.into(), device: "/dev/vdb".into() });

    // Killed while attaching: as soon as the loop device exists (before its mount, when the kill
    // lands in time), and a little later. Then a loop device left unmounted for sure, as a kill
    // between `losetup` and the mount leaves it.
    for (n, delay_ms) in [0u64, 0, 1, 3, 10].into_iter().enumerate() {
        let child = ChildAgent::spawn(&h, &attached);
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while h.loops_of(&file).is_empty() {
            assert!(std::time::Instant::now() < deadline, "the child never attached the disk");
            std::thread::sleep(Duration::from_micros(200));
        }
        std::thread::sleep(Duration::from_millis(delay_ms));
        drop(child);
        let devs = h.loops_of(&file);
        let mounts: Vec<Vec<String>> = devs.iter().map(|d| h.mounts_of(d)).collect();
        eprintln!("killed {delay_ms} ms after the loop device appeared: {devs:?} mounted at {mounts:?}");
        converge_attached(&h, &attached, &file, n);
    }
    let out = Command::new("losetup").args(["--find", "--show"]).arg(&file).output().expect("losetup");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    converge_attached(&h, &attached, &file, 5);

    // Killed while snapshotting (the filesystem frozen, the copy half-made).
    let fake = FakeControl::new(attached.clone());
    let agent = h.start_agent(fake.clone());
    fake.wait_disk("d-stk", "attached", |d| d.attached_to.as_deref() == Some(k));
    assert_eq!(h.ok(k, "cat /mnt/vdb/rounds | wc -l").trim(), "6");
    h.ok(k, "dd if=/dev/urandom of=/mnt/vdb/big bs=1M count=300 2>/dev/null; sync");
    agent.stop();
    let mut snapshotting = fake.read(|c| c.intent.clone());
    snapshotting.tasks.push(Task::Snapshot(SnapshotTask {
        id: "t-k1".into(),
        disk_id: "d-stk".into(),
        snapshot_id: "s-stk".into(),
        upload: false,
    }));
    let partial = h.data.join("host/snapshots/s-stk.img.partial");
    let child = ChildAgent::spawn(&h, &snapshotting);
    wait_for("the child to start copying", Duration::from_secs(60), || partial.exists());
    drop(child);
    assert!(!h.snapshot_file("s-stk").exists(), "killed before the snapshot was complete");

    let fake = FakeControl::new(snapshotting);
    let agent = h.start_agent(fake.clone());
    wait_for("the task to be done", Duration::from_secs(120), || fake.read(|c| c.results.contains_key("t-k1")));
    let out = fake.read(|c| c.results.get("t-k1").cloned());
    assert!(matches!(out, Some(TaskOutcome::Snapshot { .. })), "{out:?}");
    assert!(!partial.exists() && fsck_clean(&h.snapshot_file("s-stk")));
    assert_eq!(h.ok(k, "echo thawed > /mnt/vdb/after; cat /mnt/vdb/after"), "thawed\n", "the instance writes again");
    assert_eq!(h.loops_of(&file).len(), 1);

    fake.change(|i| {
        delete(i, k);
        i.disks.clear();
        i.snapshots.clear();
    });
    wait_for("the host to be empty", Duration::from_secs(60), || {
        h.runtime.list().is_ok_and(|l| l.is_empty()) && !file.exists() && !h.snapshot_file("s-stk").exists()
    });
    assert_eq!(h.held(), Vec::<String>::new(), "no loop device or mount left");
    agent.stop();
}

/// A new agent finishes the attach a killed one left (round `n`), then detaches the disk again.
fn converge_attached(h: &DiskHost, attached: &Intent, file: &Path, n: usize) {
    let k = "i-stk";
    let fake = FakeControl::new(attached.clone());
    let agent = h.start_agent(fake.clone());
    fake.wait_disk("d-stk", "attached", |d| d.attached_to.as_deref() == Some(k) && d.error.is_none());
    let devs = h.loops_of(file);
    assert_eq!(devs.len(), 1, "one loop device: {devs:?}");
    assert_eq!(h.mounts_of(&devs[0]).len(), 1, "mounted once: {:?}", h.mounts_of(&devs[0]));
    h.ok(k, &format!("echo {n} >> /mnt/vdb/rounds"));
    fake.change(|i| disk_mut(i, "d-stk").attachment = None);
    fake.wait_disk("d-stk", "detached", |d| d.attached_to.is_none() && d.error.is_none());
    assert!(h.loops_of(file).is_empty());
    agent.stop();
}

/// A hollow host reports disks as the intent has them and answers storage tasks as simulated,
/// touching nothing.
#[test]
fn a_hollow_host_simulates_its_disks() {
    let fake = FakeControl::new(with_disks(
        vec![instance("i-sth", None)],
        vec![disk("d-sth", 20, DiskSource::Empty, Some(("i-sth", "/dev/vdb")))],
    ));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio");
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let mut opts = DiskHost::options_for_hollow();
    opts.host.simulated = true;
    let link: Arc<dyn feiyun_hostproto::ControlLink> = fake.clone();
    let agent = Agent::new(link, Arc::new(SimRuntime::new()), None, opts);
    let handle = rt.spawn(agent.run(async move {
        let _ = rx.await;
    }));
    fake.wait_status("i-sth", InstanceStatus::Running);
    fake.wait_disk("d-sth", "as the intent says", |d| d.size_gib == 20 && d.attached_to.as_deref() == Some("i-sth"));
    let out = fake.run_task(Task::Snapshot(SnapshotTask {
        id: "t-h1".into(),
        disk_id: "d-sth".into(),
        snapshot_id: "s-sth".into(),
        upload: false,
    }));
    assert_eq!(out, TaskOutcome::Snapshot { size_bytes: 0, blob: None });
    let out = fake.run_task(Task::CaptureImage(CaptureImageTask {
        id: "t-h2".into(),
        image_id: "m-sth".into(),
        source: CaptureSource::Instance("i-sth".into()),
    }));
    assert!(matches!(&out, TaskOutcome::Failed(m) if m.contains("simulated")), "{out:?}");
    let _ = stop.send(());
    let _ = rt.block_on(handle);
    assert_eq!(fake.status("i-sth").map(|s| s.1), Some(PowerState::Running));
}

impl DiskHost {
    fn options_for_hollow() -> AgentOptions {
        AgentOptions {
            host: HostSpec {
                name: "hollow-disks".into(),
                zone: Some("z".into()),
                capacity: Resources { vcpus: 16, memory_mib: 16 * 1024, gpus: 0, local_disk_gib: 0 },
                gpu_model: None,
                local_disk_category: None,
                simulated: true,
                protocol: PROTOCOL_VERSION,
                agent_version: "test".into(),
                underlay_ip: None,
            },
            token: Some("token".into()),
            identity_file: None,
            busybox: None,
            network_state: None,
        }
    }
}
