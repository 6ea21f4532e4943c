//! VPC networking through the real system: the `feiyun` binary, its HTTP API, real containers in
//! VPC namespaces the agents build.
//!
//! `cargo bench -p feiyun --bench vpc` (as root, with runc, busybox-static, iproute2, nftables).
//!
//! 1. RunInstances (Amount=1, into a VPC) until DescribeInstanceStatus says Running: with the
//!    VPC's router already on the host (another instance of the VPC runs there), and for the
//!    VPC's first instance on the host (its router is built, and removed again after).
//! 2. TCP between instances: bulk throughput and one-byte round trips, on one host and across two
//!    hosts (VXLAN), next to the same measurement on the host's loopback. The instances are
//!    started through the API; the measuring threads join their network namespaces.
//!
//! Nothing touches the machine's own network: the benchmark moves itself into a fresh network
//! namespace first (the region's host 1 lives there), host 2 is a namespace it makes, joined by a
//! veth with link-local addresses. At the end every instance is deleted, both processes stop and
//! `feiyun teardown` removes what is left of each host.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use feiyun::client::Client;
use feiyun_net::Netns;
use serde_json::Value;

const TYPE: &str = "ecs.t5-lc2m1.nano";
const IMAGE: &str = "feiyun_busybox_x64";
const HOST1: &str = "169.254.77.1";
const HOST2: &str = "169.254.77.2";

fn sh(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().expect("run");
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn summary(mut ms: Vec<f64>) -> String {
    ms.sort_by(f64::total_cmp);
    format!("p50 {:.1} ms, p90 {:.1} ms, max {:.1} ms (n={})", pct(&ms, 0.5), pct(&ms, 0.9), ms[ms.len() - 1], ms.len())
}

struct Region {
    dir: tempfile::TempDir,
    tag: String,
    server: Option<Child>,
    agent: Option<Child>,
    client: Client,
    ns2: String,
}

impl Region {
    fn host1_dir(&self) -> PathBuf {
        self.dir.path().join("host1")
    }
    fn host2_dir(&self) -> PathBuf {
        self.dir.path().join("host2")
    }
    fn cgroup2(&self) -> String {
        format!("feiyun/bench-{}", self.tag)
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // Instances first, through the API, then the processes, then whatever a host still holds.
        let ids = list_ids(&self.client);
        delete(&self.client, &ids);
        wait_gone(&self.client, &ids);
        for child in [self.agent.take(), self.server.take()].into_iter().flatten() {
            stop(child);
        }
        let ns2 = format!("--net=/run/netns/{}", self.ns2);
        let (d1, d2) = (self.host1_dir(), self.host2_dir());
        let _ = Command::new("nsenter")
            .arg(&ns2)
            .arg(env!("CARGO_BIN_EXE_feiyun"))
            .args(["teardown", "--yes", "--cgroup-parent", &self.cgroup2(), "--data-dir"])
            .arg(&d2)
            .status();
        let _ = Command::new(env!("CARGO_BIN_EXE_feiyun")).args(["teardown", "--yes", "--data-dir"]).arg(&d1).status();
        let _ = Command::new("ip").args(["netns", "del", &self.ns2]).status();
        // Host 2's own cgroup parent, in every hierarchy.
        let root = Path::new("/sys/fs/cgroup");
        let hierarchies = std::fs::read_dir(root).into_iter().flatten().flatten().map(|e| e.path());
        for h in hierarchies.chain(std::iter::once(root.to_path_buf())) {
            let _ = std::fs::remove_dir(h.join(self.cgroup2()));
        }
    }
}

fn stop(mut child: Child) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
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

fn call_vpc(c: &Client, action: &str, params: &[(&str, &str)]) -> Value {
    let r = c.call_in("2016-04-28", action, params).expect("reachable");
    assert!(r.ok(), "{action} failed: {}", r.text);
    r.body
}

fn list_ids(c: &Client) -> Vec<String> {
    let v = call(c, "DescribeInstances", &[("RegionId", "cn-local"), ("PageSize", "100")]);
    v["Instances"]["Instance"]
        .as_array()
        .map(|a| a.iter().filter_map(|i| i["InstanceId"].as_str().map(String::from)).collect())
        .unwrap_or_default()
}

fn delete(c: &Client, ids: &[String]) {
    if ids.is_empty() {
        return;
    }
    let mut p: Vec<(String, String)> = vec![("RegionId".into(), "cn-local".into()), ("Force".into(), "true".into())];
    p.extend(ids.iter().enumerate().map(|(i, id)| (format!("InstanceId.{}", i + 1), id.clone())));
    let p: Vec<(&str, &str)> = p.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    call(c, "DeleteInstances", &p);
}

fn wait_gone(c: &Client, ids: &[String]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while ids.iter().any(|i| list_ids(c).contains(i)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn run(c: &Client, vswitch: &str, group: &str) -> String {
    let v = call(
        c,
        "RunInstances",
        &[
            ("RegionId", "cn-local"),
            ("InstanceType", TYPE),
            ("ImageId", IMAGE),
            ("VSwitchId", vswitch),
            ("SecurityGroupId", group),
        ],
    );
    v["InstanceIdSets"]["InstanceIdSet"][0].as_str().expect("id").to_string()
}

fn status(c: &Client, id: &str) -> String {
    let v = call(c, "DescribeInstanceStatus", &[("RegionId", "cn-local"), ("InstanceId.1", id)]);
    v["InstanceStatuses"]["InstanceStatus"][0]["Status"].as_str().unwrap_or_default().to_string()
}

fn wait_running(c: &Client, id: &str) {
    let t0 = Instant::now();
    while status(c, id) != "Running" {
        assert!(t0.elapsed() < Duration::from_secs(30), "{id} not Running");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn private_ip(c: &Client, id: &str) -> Ipv4Addr {
    let v = call(c, "DescribeInstances", &[("RegionId", "cn-local"), ("InstanceIds", &format!("[\"{id}\"]"))]);
    v["Instances"]["Instance"][0]["VpcAttributes"]["PrivateIpAddress"]["IpAddress"][0]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("private ip")
}

/// The host prefix of a host's last applied network.
fn prefix(data: &Path) -> String {
    let v: Value =
        serde_json::from_slice(&std::fs::read(data.join("host/network.json")).expect("network.json")).expect("json");
    v["prefix"].as_str().expect("prefix").to_string()
}

fn wait_path(p: &Path, present: bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while p.exists() != present {
        assert!(Instant::now() < deadline, "{} exists: {}", p.display(), p.exists());
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn start() -> Region {
    // A network namespace of our own: host 1's, the server's, the measuring threads' home.
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare a network namespace (root?)");
    sh(&["ip", "link", "set", "lo", "up"]);
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    let tag = format!("{:06x}", (std::process::id() ^ nanos) & 0xff_ffff);
    let ns2 = format!("fybench{tag}");
    sh(&["ip", "netns", "add", &ns2]);
    sh(&["ip", "-n", &ns2, "link", "set", "lo", "up"]);
    sh(&["ip", "link", "add", "ul0", "type", "veth", "peer", "name", "ul0", "netns", &ns2]);
    sh(&["ip", "addr", "add", &format!("{HOST1}/24"), "dev", "ul0"]);
    sh(&["ip", "link", "set", "ul0", "up"]);
    sh(&["ip", "-n", &ns2, "addr", "add", &format!("{HOST2}/24"), "dev", "ul0"]);
    sh(&["ip", "-n", &ns2, "link", "set", "ul0", "up"]);

    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("region.toml");
    std::fs::write(
        &cfg,
        "[region]\nid = \"cn-local\"\nname = \"bench\"\nzones = [{ id = \"cn-local-a\", name = \"A\" }, { id = \"cn-local-b\", name = \"B\" }]\n\
         [host]\nzone = \"cn-local-a\"\ncpu_allocation_ratio = 64.0\nmemory_allocation_ratio = 8.0\n\
         [instances]\nstop_grace_seconds = 0\n[network]\nprovisioning_seconds = 0\n",
    )
    .expect("config");
    let port = TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let host1 = dir.path().join("host1");
    let server = Command::new(env!("CARGO_BIN_EXE_feiyun"))
        .args(["up", "--listen", &format!("{HOST1}:{port}"), "--config"])
        .arg(&cfg)
        .arg("--data-dir")
        .arg(&host1)
        .env("FEIYUN_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start feiyun up");
    let creds = host1.join("credentials.json");
    let deadline = Instant::now() + Duration::from_secs(30);
    let client = loop {
        if let Some(c) = read_creds(&creds) {
            let client = Client::new(&c.2, &c.0, &c.1);
            if client.call("DescribeRegions", &[]).map(|r| r.ok()).unwrap_or(false) {
                break client;
            }
        }
        assert!(Instant::now() < deadline, "feiyun up did not come up");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut region = Region { dir, tag, server: Some(server), agent: None, client, ns2: ns2.clone() };
    // Host 2: an agent in zone B, in its own namespace.
    let token = Command::new(env!("CARGO_BIN_EXE_feiyun"))
        .args(["host", "token", "create", "--zone", "cn-local-b", "--data-dir"])
        .arg(&host1)
        .output()
        .expect("token");
    let token: Value = serde_json::from_slice(&token.stdout).expect("token json");
    let agent = Command::new("nsenter")
        .arg(format!("--net=/run/netns/{ns2}"))
        .arg(env!("CARGO_BIN_EXE_feiyun"))
        .args(["agent", "--join", &format!("http://{HOST1}:{port}"), "--zone", "cn-local-b", "--name", "bench-host2"])
        .args(["--token", token["Token"].as_str().expect("token"), "--underlay-ip", HOST2])
        .args(["--cpus", "2", "--memory-mib", "4096", "--cpu-allocation-ratio", "64", "--memory-allocation-ratio", "8"])
        .args(["--cgroup-parent", &region.cgroup2(), "--data-dir"])
        .arg(region.host2_dir())
        .env("FEIYUN_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start feiyun agent");
    region.agent = Some(agent);
    region
}

/// Bulk TCP for `secs` from `from`'s namespace to a receiver in `to`'s: Gbit/s.
fn throughput(from: &Path, to: &Path, dst: Ipv4Addr, secs: f64) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let listener =
        Netns::open(to).expect("ns").run(|| TcpListener::bind("0.0.0.0:5201")).expect("enter").expect("bind");
    let receiver = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        let mut buf = vec![0u8; 1 << 18];
        let mut total = 0u64;
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 {
                break;
            }
            total += n as u64;
        }
        total
    });
    let flag = stop.clone();
    let sent_for = Netns::open(from)
        .expect("ns")
        .run(move || {
            let mut s = TcpStream::connect(SocketAddr::from((dst, 5201))).expect("connect");
            let buf = vec![0u8; 1 << 18];
            let t0 = Instant::now();
            while t0.elapsed().as_secs_f64() < secs && !flag.load(Ordering::Relaxed) {
                s.write_all(&buf).expect("send");
            }
            drop(s);
            t0.elapsed().as_secs_f64()
        })
        .expect("enter");
    let total = receiver.join().expect("receiver");
    total as f64 * 8.0 / sent_for / 1e9
}

/// One-byte TCP round trips (TCP_NODELAY): p50 and p99 in µs.
fn round_trips(from: &Path, to: &Path, dst: Ipv4Addr, n: usize) -> (f64, f64) {
    let listener =
        Netns::open(to).expect("ns").run(|| TcpListener::bind("0.0.0.0:5202")).expect("enter").expect("bind");
    let echo = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        s.set_nodelay(true).expect("nodelay");
        let mut b = [0u8; 1];
        while s.read_exact(&mut b).is_ok() {
            if s.write_all(&b).is_err() {
                break;
            }
        }
    });
    let mut us = Netns::open(from)
        .expect("ns")
        .run(move || {
            let mut s = TcpStream::connect(SocketAddr::from((dst, 5202))).expect("connect");
            s.set_nodelay(true).expect("nodelay");
            let mut b = [7u8; 1];
            let mut out = Vec::with_capacity(n);
            for _ in 0..n {
                let t0 = Instant::now();
                s.write_all(&b).expect("send");
                s.read_exact(&mut b).expect("receive");
                out.push(t0.elapsed().as_secs_f64() * 1e6);
            }
            out
        })
        .expect("enter");
    let _ = echo.join();
    us.sort_by(f64::total_cmp);
    (pct(&us, 0.5), pct(&us, 0.99))
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let r = start();
    let c = &r.client;
    // Wait for host 2.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = Command::new(env!("CARGO_BIN_EXE_feiyun"))
            .args(["host", "list", "--data-dir"])
            .arg(r.host1_dir())
            .output()
            .expect("host list");
        if String::from_utf8_lossy(&out.stdout).matches("\"Up\"").count() >= 2 {
            break;
        }
        assert!(Instant::now() < deadline, "host 2 did not join");
        std::thread::sleep(Duration::from_millis(100));
    }

    let vpc = call_vpc(c, "CreateVpc", &[("RegionId", "cn-local"), ("CidrBlock", "192.168.0.0/16")]);
    let vpc = vpc["VpcId"].as_str().expect("vpc").to_string();
    let vsw = |zone: &str, block: &str| {
        let v = call_vpc(
            c,
            "CreateVSwitch",
            &[("RegionId", "cn-local"), ("VpcId", &vpc), ("ZoneId", zone), ("CidrBlock", block)],
        );
        v["VSwitchId"].as_str().expect("vsw").to_string()
    };
    let (vsw_a, vsw_b) = (vsw("cn-local-a", "192.168.1.0/24"), vsw("cn-local-b", "192.168.2.0/24"));
    let group = call(c, "CreateSecurityGroup", &[("RegionId", "cn-local"), ("VpcId", &vpc)]);
    let group = group["SecurityGroupId"].as_str().expect("group").to_string();

    // 1a. The VPC's first instance on the host: its router is built, and removed after.
    let mut cold = Vec::new();
    let mut router: Option<PathBuf> = None;
    for _ in 0..10 {
        let t0 = Instant::now();
        let id = run(c, &vsw_a, &group);
        wait_running(c, &id);
        cold.push(t0.elapsed().as_secs_f64() * 1000.0);
        let p = router.get_or_insert_with(|| {
            let vni = serde_json::from_slice::<Value>(
                &std::fs::read(r.host1_dir().join("host/network.json")).expect("network.json"),
            )
            .expect("json")["vpcs"][0]["vni"]
                .as_u64()
                .expect("vni");
            feiyun_net::ns::netns_path(&format!("{}-r-{vni}", prefix(&r.host1_dir())))
        });
        delete(c, std::slice::from_ref(&id));
        wait_gone(c, std::slice::from_ref(&id));
        wait_path(p, false);
        // Let the host finish that apply: the next run measures a quiet host.
        std::thread::sleep(Duration::from_millis(200));
    }
    println!("run_to_running_first_of_its_vpc_on_the_host (router built): {}", summary(cold));

    // 1b. With the VPC's router on the host: another instance of the VPC runs there.
    let anchor = run(c, &vsw_a, &group);
    wait_running(c, &anchor);
    let mut warm = Vec::new();
    for _ in 0..30 {
        let t0 = Instant::now();
        let id = run(c, &vsw_a, &group);
        wait_running(c, &id);
        warm.push(t0.elapsed().as_secs_f64() * 1000.0);
        delete(c, std::slice::from_ref(&id));
        wait_gone(c, std::slice::from_ref(&id));
        wait_path(&feiyun_net::instance_netns_path(&prefix(&r.host1_dir()), &id), false);
        std::thread::sleep(Duration::from_millis(200));
    }
    println!("run_to_running_in_a_vpc_on_the_host (router there): {}", summary(warm));

    // 2. TCP: x and y on host 1, z on host 2.
    let y = run(c, &vsw_a, &group);
    let z = run(c, &vsw_b, &group);
    wait_running(c, &y);
    wait_running(c, &z);
    let (p1, p2) = (prefix(&r.host1_dir()), prefix(&r.host2_dir()));
    let x_ns = feiyun_net::instance_netns_path(&p1, &anchor);
    let y_ns = feiyun_net::instance_netns_path(&p1, &y);
    let z_ns = feiyun_net::instance_netns_path(&p2, &z);
    let host_ns = PathBuf::from("/proc/self/ns/net");
    let (y_ip, z_ip) = (private_ip(c, &y), private_ip(c, &z));
    // The first packets pay for ARP and the routers' conntrack: warm up once.
    let _ = round_trips(&x_ns, &y_ns, y_ip, 10);
    let _ = round_trips(&x_ns, &z_ns, z_ip, 10);
    for run_no in 1..=3 {
        let lo = (
            throughput(&host_ns, &host_ns, Ipv4Addr::LOCALHOST, 3.0),
            round_trips(&host_ns, &host_ns, Ipv4Addr::LOCALHOST, 5000),
        );
        let same = (throughput(&x_ns, &y_ns, y_ip, 3.0), round_trips(&x_ns, &y_ns, y_ip, 5000));
        let across = (throughput(&x_ns, &z_ns, z_ip, 3.0), round_trips(&x_ns, &z_ns, z_ip, 5000));
        for (name, (gbps, (p50, p99))) in
            [("host loopback", lo), ("same host, instance to instance", same), ("two hosts over VXLAN", across)]
        {
            println!("tcp run {run_no} {name}: {gbps:.1} Gbit/s, round trip p50 {p50:.0} us, p99 {p99:.0} us");
        }
    }
}
