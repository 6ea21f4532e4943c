//! The reconcile step against real runc containers: whatever ended an instance's boot — a stop, a
//! guest halt, a server that died half-way through a stop — it converges to Stopped holding
//! nothing on the host but its disk. Needs root, runc and busybox-static; skipped (saying why)
//! without them.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

mod common;

use common::cgroup_parent;
use feiyun_agent::{step, Assignment, Observer};
use feiyun_domain::instance::{AgentEvent, InstanceStatus, PowerState, UserAction};
use feiyun_runtime::images::{find_busybox, ImageStore, BUILTIN_IMAGE_ID};
use feiyun_runtime::runc::{find_runc, RuncRuntime};
use feiyun_runtime::{Observed, Runtime, RuntimeSpec};

/// runc and busybox, or None (saying why) where real containers cannot run.
fn real_host() -> Option<(PathBuf, PathBuf)> {
    // The effective uid: the second field of `Uid:` in /proc/self/status.
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status.lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|l| l.split_whitespace().nth(1));
    let why = match (find_runc(), find_busybox()) {
        _ if euid != Some("0") => "not root",
        (None, _) => "runc is not installed",
        (_, None) => "busybox-static is not installed",
        (Some(runc), Some(bb)) => return Some((runc, bb)),
    };
    eprintln!("skipping a real-container test: {why}");
    None
}

/// One host with one instance on a private directory. Dropping it, also when a test fails,
/// removes the instance (processes, container, mount, cgroup) and the directory.
struct Host {
    rt: RuncRuntime,
    runc: PathBuf,
    root: PathBuf,
    control: OneInstance,
}

impl Host {
    fn new(name: &str) -> Option<Host> {
        let (runc, bb) = real_host()?;
        let root = std::env::temp_dir().join(format!("feiyun-agent-{name}-{}", std::process::id()));
        // A directory left by an earlier run with the same pid holds nothing mounted: start afresh.
        let _ = fs::remove_dir_all(&root);
        let images = ImageStore::new(root.join("images"));
        images.ensure_builtin(&bb, "now").expect("image");
        // A parent cgroup of its own, removed with the host (a shared one could only be removed
        // by the last test to use it, which no test can tell).
        let rt = RuncRuntime::new(runc.clone(), root.join("host"), &cgroup_parent(&root)).expect("runtime");
        let spec = RuntimeSpec {
            id: format!("i-ag{}{name}", std::process::id()),
            hostname: name.into(),
            vcpus: 1,
            memory_mib: 128,
            baseline_cpu_percent: 0,
            image_rootfs: images.rootfs(BUILTIN_IMAGE_ID),
            user_data: Some(b"echo ran >> /root/user-data-runs".to_vec()),
            netns: None,
            authorized_keys: Vec::new(),
        };
        let a = Assignment {
            status: InstanceStatus::Pending,
            desired: PowerState::Running,
            stop_grace: Duration::from_secs(5),
            spec,
        };
        Some(Host { rt, runc, root, control: OneInstance { a: Mutex::new(a), events: Mutex::new(Vec::new()) } })
    }

    fn id(&self) -> String {
        self.control.a.lock().expect("lock").spec.id.clone()
    }

    /// Reconcile until nothing more is reported, as the agent's passes do.
    fn settle(&self) -> (InstanceStatus, PowerState) {
        for _ in 0..20 {
            let a = self.control.a.lock().expect("lock").clone();
            if !step(&self.rt, &self.control, &a).expect("reconcile step") {
                break;
            }
        }
        self.control.now()
    }

    /// runc itself, as a server that died half-way through a stop left it.
    fn runc(&self, args: &[&str]) {
        let out = Command::new(&self.runc).arg("--root").arg(self.rt.runc_root()).args(args).output().expect("runc");
        assert!(out.status.success(), "runc {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    fn sh(&self, script: &str) -> String {
        let out = self.rt.exec(&self.id(), script.as_bytes(), "/", Duration::from_secs(10), 4096).expect("exec");
        String::from_utf8_lossy(&out.output).into_owned()
    }

    /// UserData runs in the background at first boot.
    fn wait_for_user_data(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.sh("cat /root/user-data-runs 2>/dev/null") != "ran\n" {
            assert!(Instant::now() < deadline, "user data did not run");
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_until_not_running(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.rt.observe(&self.id()).expect("observe") == Observed::Running {
            assert!(Instant::now() < deadline, "init still running after 10s");
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// What the host holds of the instance, looked up without the runtime's help.
    fn held(&self) -> Vec<String> {
        let id = self.id();
        let mut held = Vec::new();
        let state = Command::new(&self.runc)
            .arg("--root")
            .arg(self.rt.runc_root())
            .args(["state", &id])
            .output()
            .expect("runc");
        if state.status.success() {
            held.push("runc container".to_string());
        }
        let dir = self.root.join("host/instances").join(&id);
        let mounts = fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
        for m in mounts.lines().filter_map(|l| l.split(' ').nth(4)) {
            if Path::new(m).starts_with(&dir) {
                held.push(format!("mount {m}"));
            }
        }
        let cgroups = Path::new("/sys/fs/cgroup");
        let hierarchies = fs::read_dir(cgroups).expect("cgroup root").flatten().map(|e| e.path());
        let parent = cgroup_parent(&self.root);
        for h in std::iter::once(cgroups.to_path_buf()).chain(hierarchies) {
            let cg = h.join(&parent).join(&id);
            if cg.exists() {
                held.push(format!("cgroup {}", cg.display()));
            }
        }
        held
    }

    fn assert_stopped_holding_only_its_disk(&self, case: &str) {
        assert_eq!(self.control.now(), (InstanceStatus::Stopped, PowerState::Stopped), "{case}");
        assert_eq!(self.held(), Vec::<String>::new(), "{case}: a Stopped instance holds nothing");
        let upper = self.root.join("host/instances").join(self.id()).join("upper");
        assert!(upper.is_dir(), "{case}: the disk is kept");
    }

    fn running(&self) {
        assert_eq!(self.settle(), (InstanceStatus::Running, PowerState::Running));
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let id = self.id();
        if let Err(e) = self.rt.destroy(&id) {
            eprintln!("cleaning up {id}: {e}");
            let _ = Command::new(&self.runc)
                .arg("--root")
                .arg(self.rt.runc_root())
                .args(["delete", "--force", &id])
                .output();
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.root.join("host/instances").join(&id).join("rootfs"))
                .output();
        }
        if let Err(e) = self.rt.remove_parent_cgroup() {
            eprintln!("removing the instances' parent cgroup: {e}");
        }
        let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let root = self.root.to_string_lossy();
        if mounts.lines().filter_map(|l| l.split(' ').nth(4)).any(|m| m.starts_with(root.as_ref())) {
            eprintln!("not removing {root}: something is still mounted under it");
            return;
        }
        let _ = fs::remove_dir_all(&self.root);
    }
}

/// The control plane of one instance, applying the domain's transitions to reports.
struct OneInstance {
    a: Mutex<Assignment>,
    events: Mutex<Vec<AgentEvent>>,
}

impl OneInstance {
    fn now(&self) -> (InstanceStatus, PowerState) {
        let a = self.a.lock().expect("lock");
        (a.status, a.desired)
    }

    fn user(&self, action: UserAction) {
        let mut a = self.a.lock().expect("lock");
        let t = a.status.apply(a.desired, action).expect("legal");
        a.status = t.status;
        a.desired = t.desired;
    }

    /// The state an agent without leftover cleaning reported: Stopped, whatever the host held.
    fn force(&self, status: InstanceStatus, desired: PowerState) {
        let mut a = self.a.lock().expect("lock");
        a.status = status;
        a.desired = desired;
    }
}

impl Observer for OneInstance {
    fn report(&self, _: &str, e: AgentEvent) {
        let mut a = self.a.lock().expect("lock");
        let t = a.status.observe(a.desired, e);
        a.status = t.status;
        a.desired = t.desired;
        self.events.lock().expect("lock").push(e);
    }
    fn report_error(&self, id: &str, e: &str) {
        panic!("step failed for {id}: {e}");
    }
}

#[test]
fn stop_then_start_keeps_the_disk_and_nothing_else() {
    let Some(h) = Host::new("stop") else { return };
    h.running();
    assert!(h.held().iter().any(|x| x.starts_with("cgroup")), "a running instance has a cgroup: {:?}", h.held());
    assert_eq!(h.sh("echo kept > /root/kept; cat /root/kept"), "kept\n");
    h.control.user(UserAction::Stop);
    h.settle();
    h.assert_stopped_holding_only_its_disk("stop");
    h.control.user(UserAction::Start);
    h.running();
    assert_eq!(h.sh("cat /root/kept"), "kept\n", "a file written before the stop survives it");
}

#[test]
fn guest_halt_converges_to_stopped_holding_nothing() {
    let Some(h) = Host::new("halt") else { return };
    h.running();
    assert_eq!(h.sh("echo kept > /root/kept; cat /root/kept"), "kept\n");
    // Init exits on its own; the exec'd shell dies with it.
    let _ = h.rt.exec(&h.id(), b"kill 1", "/", Duration::from_secs(10), 1024);
    h.wait_until_not_running();
    assert!(!h.held().is_empty(), "the halted boot left its container, mount and cgroup");
    h.settle();
    h.assert_stopped_holding_only_its_disk("guest halt");
    h.control.user(UserAction::Start);
    h.running();
    assert_eq!(h.sh("cat /root/kept"), "kept\n");
}

/// StopInstance was acknowledged and the server died after `runc kill` (or after `runc delete`,
/// or after reporting Stopped without cleaning up): the next reconcile finishes the stop.
#[test]
fn a_stop_cut_short_is_finished_by_the_next_reconcile() {
    let Some(h) = Host::new("crash") else { return };
    let id = h.id();
    let cases = ["after kill", "after delete, before unmount", "reported Stopped, not cleaned"];
    h.running();
    h.wait_for_user_data();
    for case in cases {
        h.running();
        h.control.user(UserAction::Stop);
        h.runc(&["kill", &id, "KILL"]);
        h.wait_until_not_running();
        match case {
            "after kill" => {}
            "after delete, before unmount" => h.runc(&["delete", &id]),
            _ => h.control.force(InstanceStatus::Stopped, PowerState::Stopped),
        }
        assert!(!h.held().is_empty(), "{case}: the cut-short stop left something");
        h.settle();
        h.assert_stopped_holding_only_its_disk(case);
        h.control.user(UserAction::Start);
    }
    h.running();
    // Init says it is ready only after it would have run user data. Earlier boots were killed,
    // maybe before saying so: look at the last boot's output only.
    let deadline = Instant::now() + Duration::from_secs(10);
    let last_boot_ready = || {
        let console = String::from_utf8_lossy(&h.rt.console(&id, 1 << 20).expect("console").0).into_owned();
        let last = console.rsplit("[feiyun-init] booting").next().unwrap_or_default();
        console.contains("[feiyun-init] booting") && last.contains("[feiyun-init] ready")
    };
    while !last_boot_ready() {
        assert!(Instant::now() < deadline, "last boot not ready");
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(h.sh("cat /root/user-data-runs"), "ran\n", "user data ran once over four boots");
}
