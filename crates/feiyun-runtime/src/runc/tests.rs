//! Tests of `runc`.

use super::*;
use crate::images::{find_busybox, ImageStore, BUILTIN_IMAGE_ID};

/// Real containers: needs root, runc and busybox-static (installed by the README's setup).
#[test]
fn container_lifecycle() {
    let runc = find_runc().expect("runc must be installed for the runtime tests");
    let bb = find_busybox().expect("busybox-static must be installed");
    let dir = tempfile::tempdir().expect("tempdir");
    let images = ImageStore::new(dir.path().join("images"));
    images.ensure_builtin(&bb, "now").expect("image");
    let parent = format!("feiyun-test-lifecycle-{}", std::process::id());
    let rt = RuncRuntime::new(runc, dir.path().join("rt"), &parent).expect("runtime");
    let id = format!("i-rttest{}", std::process::id());
    let spec = RuntimeSpec {
        id: id.clone(),
        hostname: "unit-host".into(),
        vcpus: 1,
        memory_mib: 256,
        baseline_cpu_percent: 0,
        image_rootfs: images.rootfs(BUILTIN_IMAGE_ID),
        user_data: Some(b"echo user-data-ran > /root/marker; echo hello-from-userdata".to_vec()),
        netns: None,
        authorized_keys: Vec::new(),
    };
    assert_eq!(rt.observe(&id).expect("observe"), Observed::Absent);
    rt.start(&spec).expect("start");
    assert_eq!(rt.observe(&id).expect("observe"), Observed::Running);
    let out = rt
        .exec(
            &id,
            b"hostname; cat /root/marker 2>/dev/null || sleep 1; cat /root/marker",
            "/",
            Duration::from_secs(10),
            1024,
        )
        .expect("exec");
    assert_eq!(out.exit_code, Some(0));
    let text = String::from_utf8_lossy(&out.output);
    assert!(text.starts_with("unit-host\n"), "{text}");
    assert!(text.contains("user-data-ran"), "{text}");
    let cg = format!("/sys/fs/cgroup/memory/{parent}/{id}/memory.limit_in_bytes");
    if let Ok(limit) = fs::read_to_string(&cg) {
        assert_eq!(limit.trim(), (256u64 * 1024 * 1024).to_string());
    }
    let out = rt.exec(&id, b"exit 3", "/", Duration::from_secs(5), 1024).expect("exec");
    assert_eq!(out.exit_code, Some(3));
    let out = rt.exec(&id, b"sleep 30", "/", Duration::from_millis(300), 1024).expect("exec");
    assert!(out.timed_out && out.exit_code.is_none());
    let out = rt.exec(&id, b"head -c 5000 /dev/zero", "/", Duration::from_secs(5), 1000).expect("exec");
    assert_eq!((out.output.len(), out.dropped), (1000, 4000));
    rt.stop(&id, Duration::from_secs(5)).expect("stop");
    assert_eq!(rt.observe(&id).expect("observe"), Observed::Stopped);
    // Booting again keeps the disk and does not run user data twice.
    rt.start(&spec).expect("restart");
    let out = rt.exec(&id, b"cat /root/marker", "/", Duration::from_secs(5), 1024).expect("exec");
    assert_eq!(String::from_utf8_lossy(&out.output), "user-data-ran\n");
    let (console, _) = rt.console(&id, 65536).expect("console");
    let console = String::from_utf8_lossy(&console);
    assert_eq!(console.matches("hello-from-userdata").count(), 1, "{console}");
    assert!(console.contains("shutting down"), "{console}");
    rt.destroy(&id).expect("destroy");
    assert_eq!(rt.observe(&id).expect("observe"), Observed::Absent);
    assert!(!Path::new(&format!("/sys/fs/cgroup/memory/{parent}/{id}")).exists());
    assert!(rt.list().expect("list").is_empty());
    rt.remove_parent_cgroup().expect("parent cgroup");
    assert!(!Path::new(&format!("/sys/fs/cgroup/memory/{parent}")).exists());
}

/// runc and busybox, or None (saying why) where real containers cannot run.
fn real_host() -> Option<(PathBuf, PathBuf)> {
    // The effective uid: the second field of `Uid:` in /proc/self/status.
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status.lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|l| l.split_whitespace().nth(1));
    let found = (find_runc(), find_busybox());
    let why = match found {
        _ if euid != Some("0") => "not root",
        (None, _) => "runc is not installed",
        (_, None) => "busybox-static is not installed",
        (Some(runc), Some(bb)) => return Some((runc, bb)),
    };
    eprintln!("skipping a real-container test: {why}");
    None
}

/// A runtime on a private directory. Dropping it, also when a test fails, removes every
/// instance the test made: processes, containers, mounts, cgroups, files.
struct Scratch {
    rt: RuncRuntime,
    /// The instances' parent cgroup, the test's own: removed with the scratch runtime (a shared
    /// one could only be removed by the last test to use it, which no test can tell).
    parent: String,
    runc: PathBuf,
    image: PathBuf,
    ids: Vec<String>,
    _dir: tempfile::TempDir,
}

impl Scratch {
    fn new(runc: PathBuf, busybox: &Path) -> Scratch {
        let dir = tempfile::tempdir().expect("tempdir");
        let images = ImageStore::new(dir.path().join("images"));
        images.ensure_builtin(busybox, "now").expect("image");
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let parent = format!("feiyun-test-{}-{n}", std::process::id());
        let rt = RuncRuntime::new(runc.clone(), dir.path().join("rt"), &parent).expect("runtime");
        Scratch { rt, parent, runc, image: images.rootfs(BUILTIN_IMAGE_ID), ids: Vec::new(), _dir: dir }
    }

    fn spec(&mut self, name: &str, user_data: Option<&[u8]>) -> RuntimeSpec {
        let id = format!("i-rt{}{name}", std::process::id());
        self.ids.push(id.clone());
        RuntimeSpec {
            id,
            hostname: name.into(),
            vcpus: 1,
            memory_mib: 128,
            baseline_cpu_percent: 0,
            image_rootfs: self.image.clone(),
            user_data: user_data.map(<[u8]>::to_vec),
            netns: None,
            authorized_keys: Vec::new(),
        }
    }

    /// runc itself, as a server that died half-way through a stop left it.
    fn runc(&self, args: &[&str]) {
        let out = Command::new(&self.runc).arg("--root").arg(self.rt.runc_root()).args(args).output().expect("runc");
        assert!(out.status.success(), "runc {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    fn wait_for(&self, id: &str, want: Observed) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.rt.observe(id).expect("observe") != want {
            assert!(Instant::now() < deadline, "{id} not {want:?} after 10s");
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Until the last boot's init says it is ready, which it does after running user data.
    fn wait_ready(&self, id: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (console, _) = self.rt.console(id, 1 << 20).expect("console");
            let console = String::from_utf8_lossy(&console);
            let last_boot = console.rsplit("[feiyun-init] booting").next().unwrap_or_default();
            if console.contains("[feiyun-init] booting") && last_boot.contains("[feiyun-init] ready") {
                return;
            }
            assert!(Instant::now() < deadline, "{id}: init not ready after 10s");
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn sh(&self, id: &str, script: &str) -> String {
        let out = self.rt.exec(id, script.as_bytes(), "/", Duration::from_secs(10), 4096).expect("exec");
        String::from_utf8_lossy(&out.output).into_owned()
    }

    /// What the host still holds of an instance, looked up without the runtime's help: runc's
    /// record, mounts under its directory, its cgroup directories.
    fn held_on_host(&self, id: &str) -> Vec<String> {
        let mut held = Vec::new();
        let state =
            Command::new(&self.runc).arg("--root").arg(self.rt.runc_root()).args(["state", id]).output().expect("runc");
        if state.status.success() {
            held.push("runc container".to_string());
        }
        let dir = self.rt.dir(id);
        let text = fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
        for m in crate::mounts::parse(&text).into_iter().map(|m| m.mount_point) {
            if m.starts_with(&dir) {
                held.push(format!("mount {}", m.display()));
            }
        }
        let root = Path::new("/sys/fs/cgroup");
        let hierarchies = fs::read_dir(root).expect("cgroup root").flatten().map(|e| e.path());
        for h in std::iter::once(root.to_path_buf()).chain(hierarchies) {
            let cg = h.join(&self.parent).join(id);
            if cg.exists() {
                held.push(format!("cgroup {}", cg.display()));
            }
        }
        held
    }

    fn assert_holds_only_its_disk(&self, id: &str) {
        assert_eq!(
            self.rt.inspect(id).expect("inspect"),
            Observation { state: Observed::Stopped, leftovers: Leftovers::default() }
        );
        assert_eq!(self.held_on_host(id), Vec::<String>::new(), "{id} is stopped");
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for id in &self.ids {
            if let Err(e) = self.rt.destroy(id) {
                eprintln!("cleaning up {id}: {e}");
                let _ = Command::new(&self.runc)
                    .arg("--root")
                    .arg(self.rt.runc_root())
                    .args(["delete", "--force", id])
                    .output();
                let _ = umount2(&self.rt.dir(id).join("rootfs"), MntFlags::MNT_DETACH);
            }
        }
        if let Err(e) = self.rt.remove_parent_cgroup() {
            eprintln!("removing the instances' parent cgroup: {e}");
        }
    }
}

#[test]
fn a_stopped_instance_holds_only_its_disk() {
    let Some((runc, bb)) = real_host() else { return };
    let mut s = Scratch::new(runc, &bb);
    let spec = s.spec("stop", Some(b"echo ran >> /root/user-data-runs"));
    let id = spec.id.clone();
    s.rt.start(&spec).expect("start");
    let seen = s.rt.inspect(&id).expect("inspect");
    assert_eq!(seen.state, Observed::Running);
    assert!(seen.leftovers.container && seen.leftovers.mount && seen.leftovers.cgroup, "{seen:?}");
    let held = s.held_on_host(&id);
    assert!(held.iter().any(|h| h.starts_with("cgroup")) && held.iter().any(|h| h.starts_with("mount")), "{held:?}");
    assert_eq!(s.sh(&id, "echo kept > /root/kept; sync; cat /root/kept"), "kept\n");
    s.wait_ready(&id);

    s.rt.stop(&id, Duration::from_secs(5)).expect("stop");
    s.assert_holds_only_its_disk(&id);
    // Stopping twice is stopping once.
    s.rt.stop(&id, Duration::from_secs(5)).expect("stop again");
    s.assert_holds_only_its_disk(&id);
    // The disk kept what the instance wrote.
    let kept = s.rt.dir(&id).join("upper/root/kept");
    assert_eq!(fs::read_to_string(&kept).expect("written file survives stop"), "kept\n");

    s.rt.start(&spec).expect("start again");
    s.wait_ready(&id);
    assert_eq!(s.sh(&id, "cat /root/kept /root/user-data-runs"), "kept\nran\n", "user data runs once");
    s.rt.stop(&id, Duration::ZERO).expect("stop by force");
    s.assert_holds_only_its_disk(&id);
}

/// One `runc list` answers for a moment, never past a change the runtime made itself; a change
/// from outside (runc kills the guest behind the runtime's back) shows within the listing's
/// freshness.
#[test]
fn observations_come_from_a_fresh_listing() {
    let Some((runc, bb)) = real_host() else { return };
    let mut s = Scratch::new(runc.clone(), &bb);
    let spec = s.spec("list", None);
    let id = spec.id.clone();
    assert_eq!(s.rt.observe(&id).expect("observe"), Observed::Absent);
    s.rt.start(&spec).expect("start");
    assert_eq!(s.rt.observe(&id).expect("observe"), Observed::Running, "the start is seen at once");
    s.wait_ready(&id);
    let killed = Command::new(&runc)
        .arg("--root")
        .arg(s.rt.runc_root())
        .args(["kill", "--all", &id, "KILL"])
        .status()
        .expect("runc kill");
    assert!(killed.success());
    let stopped = s.rt.wait_status(&id, |st| st != Some("running"), Duration::from_secs(10)).expect("state");
    assert!(stopped, "runc says the guest is gone");
    let deadline = Instant::now() + LISTING_FRESH + Duration::from_secs(2);
    while s.rt.observe(&id).expect("observe") == Observed::Running {
        assert!(Instant::now() < deadline, "still Running {:?} after the kill", LISTING_FRESH);
        thread::sleep(Duration::from_millis(50));
    }
    let seen = s.rt.inspect(&id).expect("inspect");
    assert_eq!(seen.state, Observed::Stopped);
    assert!(seen.leftovers.container, "the stopped container is a leftover until stopped: {seen:?}");
    s.rt.stop(&id, Duration::ZERO).expect("stop");
    assert!(!s.rt.inspect(&id).expect("inspect").leftovers.container, "the stop is seen at once");
    s.assert_holds_only_its_disk(&id);
}

/// The instances' parent cgroup goes once no instance is in it, and only then.
#[test]
fn the_parent_cgroup_goes_when_empty() {
    let Some((runc, bb)) = real_host() else { return };
    let mut s = Scratch::new(runc.clone(), &bb);
    let parent = format!("feiyun-test-parent-{}", std::process::id());
    s.rt = RuncRuntime::new(runc, s._dir.path().join("rt2"), &parent).expect("runtime");
    let spec = s.spec("parent", None);
    let id = spec.id.clone();
    s.rt.start(&spec).expect("start");
    let under: Vec<PathBuf> = s.rt.cgroup_hierarchies().expect("hierarchies").iter().map(|h| h.join(&parent)).collect();
    assert!(under.iter().any(|d| d.is_dir()), "runc made the parent: {under:?}");
    s.rt.remove_parent_cgroup().expect("kept while an instance is in it");
    assert!(under.iter().any(|d| d.is_dir()), "a parent with an instance in it stays");
    assert_eq!(s.rt.observe(&id).expect("observe"), Observed::Running);
    s.rt.stop(&id, Duration::ZERO).expect("stop");
    s.rt.remove_parent_cgroup().expect("removed");
    assert!(under.iter().all(|d| !d.exists()), "{under:?}");
    s.rt.remove_parent_cgroup().expect("removing it again is nothing");
}

/// The ways a boot can end without a complete stop — the guest halts, the server dies after
/// `runc kill`, or after `runc delete` but before the unmount, or a delete that left the cgroup
/// with a process in it — each leaves leftovers that the next stop (or start) removes.
#[test]
fn stop_and_start_finish_what_a_cut_short_stop_left() {
    let Some((runc, bb)) = real_host() else { return };
    let mut s = Scratch::new(runc, &bb);
    let spec = s.spec("crash", None);
    let id = spec.id.clone();
    let all = Leftovers { container: true, mount: true, cgroup: true };
    let cases: [(&str, Leftovers); 3] = [
        ("guest halt", all),
        ("killed", all),
        ("deleted, not unmounted", Leftovers { mount: true, ..Leftovers::default() }),
    ];
    for (n, (how, left)) in cases.into_iter().enumerate() {
        s.rt.start(&spec).expect("start");
        if n == 0 {
            s.sh(&id, "echo kept > /root/kept");
        }
        assert_eq!(s.sh(&id, "cat /root/kept"), "kept\n", "{how}");
        match how {
            "guest halt" => {
                // Init exits: the exec'd shell dies with it.
                let _ = s.rt.exec(&id, b"kill 1", "/", Duration::from_secs(10), 1024);
            }
            "killed" => s.runc(&["kill", &id, "KILL"]),
            _ => {
                s.runc(&["kill", &id, "KILL"]);
                s.wait_for(&id, Observed::Stopped);
                s.runc(&["delete", &id]);
            }
        }
        s.wait_for(&id, Observed::Stopped);
        assert_eq!(
            s.rt.inspect(&id).expect("inspect"),
            Observation { state: Observed::Stopped, leftovers: left },
            "{how}"
        );
        s.rt.stop(&id, Duration::from_secs(5)).expect("stop");
        s.assert_holds_only_its_disk(&id);
    }

    // Booting over leftovers clears them first.
    s.rt.start(&spec).expect("start");
    s.runc(&["kill", &id, "KILL"]);
    s.wait_for(&id, Observed::Stopped);
    s.rt.start(&spec).expect("start over a killed container");
    assert_eq!(s.sh(&id, "cat /root/kept"), "kept\n");
    s.rt.stop(&id, Duration::ZERO).expect("stop");
    s.assert_holds_only_its_disk(&id);

    // runc's record is gone but a process is left in the instance's cgroup.
    let memory = Path::new("/sys/fs/cgroup/memory");
    if memory.is_dir() {
        let cg = memory.join(&s.parent).join(&id);
        fs::create_dir_all(&cg).expect("cgroup");
        let mut stray = Command::new("sleep").arg("60").spawn().expect("sleep");
        fs::write(cg.join("cgroup.procs"), stray.id().to_string()).expect("move into cgroup");
        let seen = s.rt.inspect(&id).expect("inspect");
        assert_eq!(seen.leftovers, Leftovers { cgroup: true, ..Leftovers::default() });
        s.rt.stop(&id, Duration::ZERO).expect("stop");
        let status = stray.wait().expect("wait");
        assert!(!status.success(), "the stray process was killed");
        s.assert_holds_only_its_disk(&id);
    }
}

#[test]
fn joins_the_given_network_namespace() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = RuncRuntime::new(PathBuf::from("runc"), dir.path().to_path_buf(), "feiyun-test").expect("runtime");
    let mut spec = RuntimeSpec {
        id: "i-net".into(),
        hostname: "i-net".into(),
        vcpus: 1,
        memory_mib: 128,
        baseline_cpu_percent: 0,
        image_rootfs: dir.path().join("image"),
        user_data: None,
        netns: None,
        authorized_keys: Vec::new(),
    };
    let network = |spec: &RuntimeSpec| {
        let config = rt.oci_config(spec);
        let namespaces = config["linux"]["namespaces"].as_array().cloned().unwrap_or_default();
        namespaces.into_iter().find(|n| n["type"] == "network").expect("a network namespace")
    };
    assert_eq!(network(&spec), json!({"type": "network"}));
    spec.netns = Some(PathBuf::from("/run/netns/h1-i-i-net"));
    assert_eq!(network(&spec), json!({"type": "network", "path": "/run/netns/h1-i-i-net"}));
}

#[test]
fn refuses_path_like_ids() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = RuncRuntime::new(PathBuf::from("/bin/false"), dir.path().to_path_buf(), "x").expect("rt");
    assert!(rt.observe("../etc").is_err());
    assert!(rt.destroy("a/b").is_err());
}
