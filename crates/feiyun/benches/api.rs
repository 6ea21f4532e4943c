//! End-to-end API benchmarks against the real `feiyun` binary on loopback, with real containers.
//!
//! `cargo bench -p feiyun --bench api` (as root, with runc and busybox-static installed).
//! Scenarios (the targets of the foundation issue):
//! 1. RunInstances (Amount=1) until DescribeInstanceStatus says Running: p50 under 250 ms.
//! 2. RunInstances Amount=50 of ecs.t5-lc2m1.nano until all are Running: under 10 s.
//! 3. DescribeInstances over 200 instances with PageSize=100: at least 2,000 requests/s.
//! 4. Storage through the API: CreateDisk + AttachDisk until the disk is In_use and until a
//!    file written in it through RunCommand reads back; CreateSnapshot of a 10 GiB disk with
//!    1 GiB written until accomplished; CreateImage of a running instance until Available.
//!
//! The host is configured with a 128:1 CPU and 8:1 memory allocation ratio so that 200 small
//! instances fit on a 2-core machine (they idle; limits are ceilings, not reservations of real use).
//! Every instance is in a VPC (its account's default VPC): the benchmark moves itself into a fresh
//! network namespace first, so the host's network is built there, and `feiyun teardown` removes
//! it at the end.

use std::io::Write;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use feiyun::client::Client;
use serde_json::Value;

const TYPE: &str = "ecs.t5-lc2m1.nano";
const IMAGE: &str = "feiyun_busybox_x64";

struct Server {
    child: Child,
    client: Client,
    dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Remove the benchmark's containers, mounts, cgroups and the host's network (instances
        // run in VPCs: every instance has one, the default VPC if no other).
        let _ = Command::new(env!("CARGO_BIN_EXE_feiyun"))
            .args(["teardown", "--yes", "--data-dir"])
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .status();
    }
}

// The child is reaped by `Server::drop`, or right here if it never comes up.
#[allow(clippy::zombie_processes)]
fn start() -> Server {
    // A network namespace of our own: the region's host builds its VPC routers, its nftables
    // table and its routes there, not in the machine's.
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare a network namespace (root?)");
    let lo = Command::new("ip").args(["link", "set", "lo", "up"]).status().expect("ip");
    assert!(lo.success(), "cannot bring lo up");
    let dir = tempfile::tempdir().expect("tempdir");
    let port = TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let cfg = dir.path().join("bench.toml");
    std::fs::File::create(&cfg)
        .and_then(|mut f| f.write_all(b"[host]\ncpu_allocation_ratio = 128.0\nmemory_allocation_ratio = 8.0\n[instances]\nstop_grace_seconds = 0\n"))
        .expect("config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_feiyun"))
        .args(["up", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(dir.path())
        .arg("--config")
        .arg(&cfg)
        .env("FEIYUN_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start feiyun");
    let creds = dir.path().join("credentials.json");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(c) = read_creds(&creds) {
            let client = Client::new(&c.2, &c.0, &c.1);
            if client.call("DescribeRegions", &[]).map(|r| r.ok()).unwrap_or(false) {
                return Server { child, client, dir };
            }
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("feiyun did not come up");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn read_creds(p: &Path) -> Option<(String, String, String)> {
    let v: Value = serde_json::from_slice(&std::fs::read(p).ok()?).ok()?;
    Some((v["AccessKeyId"].as_str()?.into(), v["AccessKeySecret"].as_str()?.into(), v["Endpoint"].as_str()?.into()))
}

fn call(c: &Client, action: &str, params: &[(&str, &str)]) -> Value {
    let r = c.call(action, params).expect("reachable");
    assert!(r.ok(), "{action} failed: {}", r.text);
    r.body
}

fn run(c: &Client, amount: u32) -> Vec<String> {
    let n = amount.to_string();
    let v = call(
        c,
        "RunInstances",
        &[("RegionId", "cn-local"), ("InstanceType", TYPE), ("ImageId", IMAGE), ("Amount", &n)],
    );
    v["InstanceIdSets"]["InstanceIdSet"]
        .as_array()
        .expect("ids")
        .iter()
        .map(|x| x.as_str().expect("id").to_string())
        .collect()
}

/// `fixed` parameters followed by `InstanceId.1..N`.
fn with_ids(fixed: &[(&str, &str)], ids: &[String]) -> Vec<(String, String)> {
    let mut p: Vec<(String, String)> = fixed.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    p.extend(ids.iter().enumerate().map(|(i, id)| (format!("InstanceId.{}", i + 1), id.clone())));
    p
}

fn running_count(c: &Client, ids: &[String]) -> usize {
    let mut n = 0;
    for chunk in ids.chunks(50) {
        let p = with_ids(&[("RegionId", "cn-local"), ("PageSize", "50")], chunk);
        let p: Vec<(&str, &str)> = p.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let v = call(c, "DescribeInstanceStatus", &p);
        n += v["InstanceStatuses"]["InstanceStatus"]
            .as_array()
            .expect("list")
            .iter()
            .filter(|s| s["Status"] == "Running")
            .count();
    }
    n
}

fn wait_running(c: &Client, ids: &[String], timeout: Duration) -> Duration {
    let t0 = Instant::now();
    while running_count(c, ids) < ids.len() {
        assert!(t0.elapsed() < timeout, "instances not Running after {timeout:?}");
        std::thread::sleep(Duration::from_millis(2));
    }
    t0.elapsed()
}

fn delete_all(c: &Client, ids: &[String]) {
    for chunk in ids.chunks(100) {
        let p = with_ids(&[("RegionId", "cn-local"), ("Force", "true")], chunk);
        let p: Vec<(&str, &str)> = p.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        call(c, "DeleteInstances", &p);
    }
}

fn wait_host_empty(s: &Server) {
    let dir = s.dir.path().join("host/instances");
    let t0 = Instant::now();
    while std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0) > 0 && t0.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Poll `f` every 2 ms until it gives a value.
fn until<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let t0 = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(t0.elapsed() < timeout, "{what} not done after {timeout:?}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn disk_status(c: &Client, id: &str) -> (String, String) {
    let ids = format!("[\"{id}\"]");
    let v = call(c, "DescribeDisks", &[("RegionId", "cn-local"), ("DiskIds", &ids)]);
    let d = &v["Disks"]["Disk"][0];
    (d["Status"].as_str().unwrap_or("").to_string(), d["Device"].as_str().unwrap_or("").to_string())
}

/// Run a shell script in the instance through Cloud Assistant; its output once it finished.
fn sh(c: &Client, instance: &str, script: &str) -> String {
    let v = call(
        c,
        "RunCommand",
        &[
            ("RegionId", "cn-local"),
            ("Type", "RunShellScript"),
            ("CommandContent", script),
            ("InstanceId.1", instance),
            ("Timeout", "600"),
        ],
    );
    let invoke = v["InvokeId"].as_str().expect("invoke id").to_string();
    until("the command", Duration::from_secs(600), || {
        let v = call(
            c,
            "DescribeInvocationResults",
            &[
                ("RegionId", "cn-local"),
                ("InvokeId", &invoke),
                ("InstanceId", instance),
                ("ContentEncoding", "PlainText"),
            ],
        );
        let r = &v["Invocation"]["InvocationResults"]["InvocationResult"][0];
        match r["InvocationStatus"].as_str() {
            Some("Success") => Some(r["Output"].as_str().unwrap_or("").to_string()),
            Some("Running") | Some("Pending") | None => None,
            Some(other) => panic!("command {other}: {r}"),
        }
    })
}

fn create_disk(c: &Client, gib: u32, category: &str) -> String {
    let size = gib.to_string();
    let v = call(
        c,
        "CreateDisk",
        &[("RegionId", "cn-local"), ("ZoneId", "cn-local-a"), ("Size", &size), ("DiskCategory", category)],
    );
    v["DiskId"].as_str().expect("disk id").to_string()
}

/// Attach a disk and wait until it is In_use; its device.
fn attach(c: &Client, instance: &str, disk: &str) -> String {
    call(c, "AttachDisk", &[("InstanceId", instance), ("DiskId", disk)]);
    until("the attach", Duration::from_secs(60), || {
        let (status, device) = disk_status(c, disk);
        (status == "In_use").then_some(device)
    })
}

fn detach_and_delete(c: &Client, instance: &str, disk: &str) {
    call(c, "DetachDisk", &[("InstanceId", instance), ("DiskId", disk)]);
    until("the detach", Duration::from_secs(60), || (disk_status(c, disk).0 == "Available").then_some(()));
    call(c, "DeleteDisk", &[("DiskId", disk)]);
}

fn summary(mut ms: Vec<f64>) -> String {
    ms.sort_by(|a, b| a.total_cmp(b));
    format!("n={} p50={:.1}ms p90={:.1}ms max={:.1}ms", ms.len(), pct(&ms, 0.5), pct(&ms, 0.9), ms[ms.len() - 1])
}

/// Scenario 4, storage through the API: CreateDisk + AttachDisk until usable inside, a snapshot
/// of a 10 GiB disk with 1 GiB written, an image of the instance.
fn storage(c: &Client) {
    let ids = run(c, 1);
    wait_running(c, &ids, Duration::from_secs(30));
    let vm = ids[0].clone();
    let (mut in_use, mut usable) = (Vec::new(), Vec::new());
    for _ in 0..10 {
        let t0 = Instant::now();
        let disk = create_disk(c, 20, "cloud_essd");
        let device = attach(c, &vm, &disk);
        in_use.push(t0.elapsed().as_secs_f64() * 1000.0);
        let dev = device.trim_start_matches("/dev/");
        // In_use says the host has it; inside, the mount shows a moment later (at most 5 s).
        let script = format!(
            "i=0; while ! grep -q ' /mnt/{dev} ' /proc/mounts; do i=$((i+1)); \
             [ $i -gt 100 ] && echo not-mounted && exit 9; sleep 0.05; done; \
             echo ok > /mnt/{dev}/probe && cat /mnt/{dev}/probe"
        );
        let out = sh(c, &vm, &script);
        assert_eq!(out.trim(), "ok", "the disk is written inside: {out}");
        usable.push(t0.elapsed().as_secs_f64() * 1000.0);
        detach_and_delete(c, &vm, &disk);
    }
    println!("create_attach_in_use: {}", summary(in_use));
    println!("create_attach_written_inside_by_run_command: {}", summary(usable));

    // ESSDs start at 20 GiB: a 10 GiB disk is of the basic category.
    let disk = create_disk(c, 10, "cloud");
    let device = attach(c, &vm, &disk);
    let dev = device.trim_start_matches("/dev/");
    sh(
        c,
        &vm,
        &format!(
            "while ! grep -q ' /mnt/{dev} ' /proc/mounts; do sleep 0.05; done; \
             dd if=/dev/urandom of=/mnt/{dev}/data bs=1M count=1024 2>/dev/null && sync && echo done"
        ),
    );
    let t0 = Instant::now();
    let v = call(c, "CreateSnapshot", &[("DiskId", &disk)]);
    let snap = v["SnapshotId"].as_str().expect("snapshot id").to_string();
    let ids = format!("[\"{snap}\"]");
    until("the snapshot", Duration::from_secs(600), || {
        let v = call(c, "DescribeSnapshots", &[("RegionId", "cn-local"), ("SnapshotIds", &ids)]);
        let st = v["Snapshots"]["Snapshot"][0]["Status"].as_str().unwrap_or("").to_string();
        assert_ne!(st, "failed", "the snapshot failed");
        (st == "accomplished").then_some(())
    });
    println!("create_snapshot_10gib_1gib_written: {:.2}s", t0.elapsed().as_secs_f64());
    call(c, "DeleteSnapshot", &[("SnapshotId", &snap)]);
    detach_and_delete(c, &vm, &disk);

    let t0 = Instant::now();
    let v = call(c, "CreateImage", &[("RegionId", "cn-local"), ("InstanceId", &vm), ("ImageName", "bench-image")]);
    let image = v["ImageId"].as_str().expect("image id").to_string();
    until("the image", Duration::from_secs(600), || {
        let v = call(
            c,
            "DescribeImages",
            &[("RegionId", "cn-local"), ("ImageId", &image), ("Status", "Creating,Available,CreateFailed")],
        );
        let st = v["Images"]["Image"][0]["Status"].as_str().unwrap_or("").to_string();
        assert_ne!(st, "CreateFailed", "the image failed");
        (st == "Available").then_some(())
    });
    println!("create_image_of_a_running_instance: {:.2}s", t0.elapsed().as_secs_f64());
    delete_all(c, std::slice::from_ref(&vm));
    call(c, "DeleteImage", &[("RegionId", "cn-local"), ("ImageId", &image)]);
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let s = start();
    let c = &s.client;

    // 1. One instance to Running.
    let mut lat = Vec::new();
    for _ in 0..30 {
        let t0 = Instant::now();
        let ids = run(c, 1);
        wait_running(c, &ids, Duration::from_secs(10));
        lat.push(t0.elapsed().as_secs_f64() * 1000.0);
        delete_all(c, &ids);
        wait_host_empty(&s);
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    println!(
        "run_one_to_running: n={} p50={:.1}ms p90={:.1}ms max={:.1}ms",
        lat.len(),
        pct(&lat, 0.5),
        pct(&lat, 0.9),
        lat[lat.len() - 1]
    );

    // 2. Fifty at once.
    let mut batch = Vec::new();
    for _ in 0..3 {
        let t0 = Instant::now();
        let ids = run(c, 50);
        wait_running(c, &ids, Duration::from_secs(60));
        batch.push(t0.elapsed().as_secs_f64());
        delete_all(c, &ids);
        wait_host_empty(&s);
    }
    println!("run_fifty_to_running: runs={:?} (seconds)", batch.iter().map(|b| format!("{b:.2}")).collect::<Vec<_>>());

    // 3. DescribeInstances throughput over 200 instances.
    let mut ids = run(c, 100);
    ids.extend(run(c, 100));
    wait_running(c, &ids, Duration::from_secs(120));
    let threads = 8;
    let secs = 10.0;
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let lats = Arc::new(Mutex::new(Vec::new()));
    let creds = read_creds(&s.dir.path().join("credentials.json")).expect("creds");
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (stop, count, lats, creds) = (stop.clone(), count.clone(), lats.clone(), creds.clone());
            std::thread::spawn(move || {
                let client = Client::new(&creds.2, &creds.0, &creds.1);
                let mut mine = Vec::new();
                let mut page = 1 + t % 2;
                while !stop.load(Ordering::Relaxed) {
                    let p = page.to_string();
                    let t0 = Instant::now();
                    let (status, text) = client
                        .call_text(
                            "DescribeInstances",
                            &[("RegionId", "cn-local"), ("PageSize", "100"), ("PageNumber", &p)],
                        )
                        .expect("reachable");
                    mine.push(t0.elapsed().as_secs_f64() * 1000.0);
                    // The load generator shares the two cores with the server: count, don't parse.
                    assert_eq!(status, 200, "{text}");
                    assert_eq!(text.matches("\"InstanceId\":").count(), 100);
                    count.fetch_add(1, Ordering::Relaxed);
                    page = 3 - page;
                }
                lats.lock().expect("lock").extend(mine);
            })
        })
        .collect();
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(secs));
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().expect("worker");
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let n = count.load(Ordering::Relaxed);
    let mut l = lats.lock().expect("lock").clone();
    l.sort_by(|a, b| a.total_cmp(b));
    println!(
        "describe_instances_200_pagesize_100: {} requests in {:.1}s = {:.0} req/s with {threads} client threads, p50={:.2}ms p99={:.2}ms",
        n,
        elapsed,
        n as f64 / elapsed,
        pct(&l, 0.5),
        pct(&l, 0.99)
    );
    delete_all(c, &ids);
    wait_host_empty(&s);

    storage(c);
    wait_host_empty(&s);
}
