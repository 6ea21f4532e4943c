//! Host-side storage, measured at the runtime (no agent, no control plane): a disk made and
//! attached until usable inside a running instance, a snapshot of a 10 GiB disk holding 1 GiB of
//! data, its qcow2 export, and image captures of an instance.
//!
//! ```sh
//! cargo bench -p feiyun-runtime --bench storage              # as root
//! FEIYUN_BENCH_DIR=/mnt/xfs cargo bench -p feiyun-runtime --bench storage   # another filesystem
//! ```
//!
//! Everything is made under `FEIYUN_BENCH_DIR` (default: the temporary directory) and removed
//! at the end. Needs runc, busybox-static, util-linux, e2fsprogs and qemu-utils.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use feiyun_runtime::disks::Storage;
use feiyun_runtime::images::{find_busybox, ImageStore, BUILTIN_IMAGE_ID};
use feiyun_runtime::runc::{find_runc, RuncRuntime};
use feiyun_runtime::{Runtime, RuntimeSpec};

const ATTACH_RUNS: usize = 30;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn summary(name: &str, mut v: Vec<f64>) {
    v.sort_by(|a, b| a.total_cmp(b));
    println!(
        "{name:<40} p50 {:>8.1} ms   p90 {:>8.1} ms   max {:>8.1} ms   ({} runs)",
        percentile(&v, 0.5),
        percentile(&v, 0.9),
        v.last().copied().unwrap_or(0.0),
        v.len()
    );
}

fn filesystem_of(path: &Path) -> String {
    let out = Command::new("findmnt").args(["-n", "-o", "FSTYPE", "--target"]).arg(path).output();
    out.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).unwrap_or_default()
}

struct Bench {
    rt: RuncRuntime,
    storage: Arc<Storage>,
    ids: Vec<String>,
    dir: PathBuf,
}

impl Drop for Bench {
    fn drop(&mut self) {
        for id in &self.ids {
            if let Err(e) = self.rt.destroy(id) {
                eprintln!("removing {id}: {e}");
            }
        }
        if let Err(e) = self.storage.release_all() {
            eprintln!("releasing disks: {e}");
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Bench {
    fn sh(&self, id: &str, script: &str) -> String {
        let out = self.rt.exec(id, script.as_bytes(), "/", Duration::from_secs(600), 1 << 16).expect("exec");
        assert_eq!(out.exit_code, Some(0), "{script}: {}", String::from_utf8_lossy(&out.output));
        String::from_utf8_lossy(&out.output).into_owned()
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("storage: bench");
        return;
    }
    let (Some(runc), Some(busybox)) = (find_runc(), find_busybox()) else {
        eprintln!("runc and busybox-static are needed");
        return;
    };
    let base = std::env::var_os("FEIYUN_BENCH_DIR").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    let dir = base.join(format!("feiyun-storage-bench-{}", std::process::id()));
    let images = ImageStore::new(dir.join("images"));
    images.ensure_builtin(&busybox, "now").expect("image");
    let rt = RuncRuntime::new(runc, dir.join("host"), "feiyun-bench").expect("runtime");
    let storage = rt.storage().expect("storage");
    let mut b = Bench { rt, storage: storage.clone(), ids: Vec::new(), dir: dir.clone() };
    println!(
        "data directory on {} ({}); online resize: {}",
        filesystem_of(&dir),
        dir.display(),
        if storage.online_resize() { "yes" } else { "no (no CAP_SYS_RESOURCE)" }
    );

    let id = format!("i-bench{}", std::process::id());
    b.ids.push(id.clone());
    let spec = RuntimeSpec {
        id: id.clone(),
        hostname: "bench".into(),
        vcpus: 1,
        memory_mib: 512,
        baseline_cpu_percent: 0,
        image_rootfs: images.rootfs(BUILTIN_IMAGE_ID),
        user_data: None,
        netns: None,
        authorized_keys: Vec::new(),
    };
    b.rt.start(&spec).expect("start");

    // A 20 GiB disk made, attached to the running instance, used inside.
    let (mut create, mut attach, mut total) = (Vec::new(), Vec::new(), Vec::new());
    for n in 0..ATTACH_RUNS {
        let disk = format!("d-bench{n}");
        let t0 = Instant::now();
        storage.create_empty(&disk, 20).expect("create");
        let t1 = Instant::now();
        storage.attach(&disk, &id, "vdb").expect("attach");
        let t2 = Instant::now();
        b.sh(&id, "echo x > /mnt/vdb/used");
        let t3 = Instant::now();
        create.push(ms(t1 - t0));
        attach.push(ms(t2 - t1));
        total.push(ms(t3 - t0));
        storage.remove_disk(&disk).expect("remove");
    }
    summary("create 20 GiB disk (mke2fs)", create);
    summary("attach to the running instance", attach);
    summary("create + attach + first write inside", total);

    // A 10 GiB disk with 1 GiB of data written inside, snapshotted idle and while written to.
    storage.create_empty("d-big", 10).expect("create");
    storage.attach("d-big", &id, "vdb").expect("attach");
    b.sh(&id, "dd if=/dev/urandom of=/mnt/vdb/data bs=1M count=1024 2>/dev/null; sync");
    let t = Instant::now();
    let info = storage.snapshot("d-big", "s-big1").expect("snapshot");
    println!(
        "{:<40} {:>8.1} ms   ({:?} copy, snapshot takes {} MiB)",
        "snapshot of 10 GiB disk, 1 GiB written",
        ms(t.elapsed()),
        info.method,
        info.size_bytes >> 20
    );
    b.sh(&id, "{ while :; do dd if=/dev/zero of=/mnt/vdb/busy bs=64k count=16; done >/dev/null 2>&1 & echo $! > /root/w.pid; }");
    let t = Instant::now();
    storage.snapshot("d-big", "s-big2").expect("snapshot");
    println!("{:<40} {:>8.1} ms", "the same, while the instance writes", ms(t.elapsed()));
    b.sh(&id, "kill $(cat /root/w.pid)");
    let export = storage.scratch_file("export");
    let t = Instant::now();
    let size = storage.export(&storage.snapshot_path("s-big1"), &export).expect("export");
    println!("{:<40} {:>8.1} ms   ({} MiB qcow2)", "export of that snapshot (qcow2 blob)", ms(t.elapsed()), size >> 20);
    let _ = std::fs::remove_file(&export);
    for s in ["s-big1", "s-big2"] {
        storage.remove_snapshot(s).expect("remove snapshot");
    }
    storage.remove_disk("d-big").expect("remove disk");

    // Image captures: the instance as booted, and with 200 MiB of files added.
    for (what, extra) in [("capture of a busybox instance", ""), ("the same with 200 MiB of files added", "200")] {
        if !extra.is_empty() {
            b.sh(&id, "mkdir -p /opt/data && for i in $(seq 1 20); do dd if=/dev/urandom of=/opt/data/f$i bs=1M count=10 2>/dev/null; done");
        }
        let out = storage.scratch_file("image");
        let t = Instant::now();
        let c = storage.capture_instance(&id, &images.rootfs(BUILTIN_IMAGE_ID), &out).expect("capture");
        println!(
            "{what:<40} {:>8.1} ms   ({} entries, {} MiB archive)",
            ms(t.elapsed()),
            c.entries,
            c.archive_bytes >> 20
        );
        let _ = std::fs::remove_file(&out);
    }
    b.rt.stop(&id, Duration::ZERO).expect("stop");
    let out = storage.scratch_file("image");
    let t = Instant::now();
    storage.capture_instance(&id, &images.rootfs(BUILTIN_IMAGE_ID), &out).expect("capture");
    println!("{:<40} {:>8.1} ms", "the same, instance stopped (overlay)", ms(t.elapsed()));
    let _ = std::fs::remove_file(&out);
}
