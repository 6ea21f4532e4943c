//! The control plane with many hosts, end to end: the real `feiyun` binary as a control plane only
//! (`feiyun up --no-local-host`) on a free loopback port, and `feiyun agent --hollow N` as N
//! simulated hosts that speak the real host protocol over HTTP and run nothing.
//!
//! `FEIYUN_BENCH_HOSTS=10000 cargo bench -p feiyun --bench hosts` (default 1,000 hosts).
//!
//! Measured, in order:
//! 1. time until all N hosts are registered (from starting the agent process);
//! 2. the control plane's CPU over an idle window while the hosts heartbeat (every 10 s, the
//!    default) and long-poll their intent, as a share of one core;
//! 3. RunInstances (Amount=1, all in one /16 vSwitch of a VPC made for the run, with one
//!    security group) through the signed API from several client threads: instances
//!    acknowledged per second, p50/p99 latency, and — for a sample of instances — the time from
//!    acknowledgement until DescribeInstanceStatus shows Running; then the time until all of them
//!    are Running;
//! 4. DescribeInstances over all of them, PageSize=100: requests per second;
//! 5. the idle CPU again, now with the instances placed;
//! 6. the control plane's resident memory (VmRSS, and its peak VmHWM).
//!
//! Knobs (environment): FEIYUN_BENCH_HOSTS (1000), FEIYUN_BENCH_INSTANCES (10000),
//! FEIYUN_BENCH_CLIENTS (client threads for RunInstances, 16), FEIYUN_BENCH_IDLE_SECONDS (30).
//! Everything it starts is stopped, and its temporary directory removed, when it ends.

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
const FEIYUN_API: &str = "2026-11-01";
/// The zone of a region with the default configuration, where hollow hosts join.
const ZONE: &str = "cn-local-a";

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok()).unwrap_or(default)
}

/// A child process killed and reaped when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    fn pid(&self) -> u32 {
        self.0.id()
    }
}

/// Process CPU time (user + system) in seconds, from /proc/PID/stat.
fn cpu_seconds(pid: u32, ticks: f64) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    let ut: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    let st: f64 = f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    (ut + st) / ticks
}

/// A numeric `/proc/PID/status` field: VmRSS and VmHWM (KiB), Threads.
fn status_field(pid: u32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(field).and_then(|r| r.trim_start_matches(':').split_whitespace().next()))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Busy time of the whole machine (all cores, every process) in seconds, from /proc/stat.
fn machine_busy_seconds(ticks: f64) -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let cpu: Vec<f64> =
        stat.lines().next().unwrap_or("").split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal: all but idle and iowait are busy.
    let busy: f64 = cpu.iter().take(8).enumerate().filter(|(i, _)| *i != 3 && *i != 4).map(|(_, v)| v).sum();
    busy / ticks
}

/// What the machine spends during a phase, to tell a slow run from a busy machine: the control
/// plane, the agent process, this load generator, and everything else (other work on the machine).
struct Usage {
    at: Instant,
    cpu: [f64; 4],
}

impl Usage {
    fn start(server: u32, agent: u32, ticks: f64) -> Usage {
        Usage { at: Instant::now(), cpu: Usage::sample(server, agent, ticks) }
    }

    fn sample(server: u32, agent: u32, ticks: f64) -> [f64; 4] {
        [
            cpu_seconds(server, ticks),
            cpu_seconds(agent, ticks),
            cpu_seconds(std::process::id(), ticks),
            machine_busy_seconds(ticks),
        ]
    }

    /// Cores used on average since `start`: "control plane 1.2, agent 0.1, load generator 0.5,
    /// other 0.1".
    fn report(&self, server: u32, agent: u32, ticks: f64) -> String {
        let now = Usage::sample(server, agent, ticks);
        let wall = self.at.elapsed().as_secs_f64();
        let d: Vec<f64> = now.iter().zip(self.cpu).map(|(b, a)| (b - a) / wall).collect();
        let other = (d[3] - d[0] - d[1] - d[2]).max(0.0);
        format!(
            "cores used: control plane {:.2}, agent {:.2}, load generator {:.2}, other processes {:.2}",
            d[0], d[1], d[2], other
        )
    }
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

fn read_creds(p: &Path) -> Option<(String, String, String)> {
    let v: Value = serde_json::from_slice(&std::fs::read(p).ok()?).ok()?;
    Some((v["AccessKeyId"].as_str()?.into(), v["AccessKeySecret"].as_str()?.into(), v["Endpoint"].as_str()?.into()))
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(|a, b| a.total_cmp(b));
    v
}

/// CPU of the control plane (and of the agent process, for context) over `secs` of idling.
fn idle_cpu(label: &str, server: u32, agent: u32, secs: u64, ticks: f64) {
    let usage = Usage::start(server, agent, ticks);
    let s0 = cpu_seconds(server, ticks);
    std::thread::sleep(Duration::from_secs(secs));
    let wall = usage.at.elapsed().as_secs_f64();
    let s1 = cpu_seconds(server, ticks);
    println!("{label}: control plane {:.2}% of one core over {wall:.0} s", (s1 - s0) / wall * 100.0);
    println!("  {}", usage.report(server, agent, ticks));
}

/// A VPC with one /16 vSwitch in the region's zone and a security group: (vSwitch, group).
fn network(c: &Client) -> (String, String) {
    // A new VPC (or vSwitch) is Pending for a moment: what needs it Available is asked again.
    let call = |version: &str, action: &str, params: &[(&str, &str)]| -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let r = c.call_in(version, action, params).expect("reachable");
            let pending = r.body["Code"].as_str().is_some_and(|code| code.starts_with("Incorrect"));
            if r.ok() || !pending || Instant::now() > deadline {
                assert!(r.ok(), "{action} failed: {}", r.text);
                return r.body;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let vpc = call("2016-04-28", "CreateVpc", &[("RegionId", "cn-local"), ("CidrBlock", "10.0.0.0/8")]);
    let vpc = vpc["VpcId"].as_str().expect("VpcId").to_string();
    let vsw = call(
        "2016-04-28",
        "CreateVSwitch",
        &[("RegionId", "cn-local"), ("VpcId", &vpc), ("ZoneId", ZONE), ("CidrBlock", "10.0.0.0/16")],
    );
    let vsw = vsw["VSwitchId"].as_str().expect("VSwitchId").to_string();
    let group = call("2014-05-26", "CreateSecurityGroup", &[("RegionId", "cn-local"), ("VpcId", &vpc)]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !call("2016-04-28", "DescribeVSwitches", &[("RegionId", "cn-local"), ("VSwitchId", &vsw)])
        .to_string()
        .contains("\"Available\"")
    {
        assert!(Instant::now() < deadline, "{vsw} not Available after 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    (vsw, group["SecurityGroupId"].as_str().expect("SecurityGroupId").to_string())
}

fn count_up(c: &Client) -> Option<usize> {
    let r = c.call_in(FEIYUN_API, "ListHosts", &[]).ok()?;
    r.ok().then(|| r.text.matches("\"State\":\"Up\"").count())
}

fn running_total(c: &Client) -> usize {
    c.call("DescribeInstances", &[("RegionId", "cn-local"), ("Status", "Running"), ("PageSize", "10")])
        .ok()
        .and_then(|r| r.body["TotalCount"].as_u64())
        .unwrap_or(0) as usize
}

fn is_running(c: &Client, id: &str) -> bool {
    c.call("DescribeInstanceStatus", &[("RegionId", "cn-local"), ("InstanceId.1", id)])
        .ok()
        .map(|r| r.body["InstanceStatuses"]["InstanceStatus"][0]["Status"] == "Running")
        .unwrap_or(false)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let hosts = env_num("FEIYUN_BENCH_HOSTS", 1000);
    let instances = env_num("FEIYUN_BENCH_INSTANCES", 10_000);
    let clients = env_num("FEIYUN_BENCH_CLIENTS", 16).max(1);
    let idle = env_num("FEIYUN_BENCH_IDLE_SECONDS", 30);
    let ticks = clock_ticks();
    let bin = env!("CARGO_BIN_EXE_feiyun");
    println!("hollow hosts: {hosts}, instances: {instances}, RunInstances clients: {clients}");

    let dir = tempfile::tempdir().expect("tempdir");
    let port = TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let cfg = dir.path().join("bench.toml");
    // Per-key throttling is not what is measured here.
    std::fs::File::create(&cfg)
        .and_then(|mut f| f.write_all(b"[api]\nrequests_per_second = 1000000.0\nburst = 1000000.0\n"))
        .expect("config");
    let data = dir.path().join("region");
    let server = Proc(
        Command::new(bin)
            .args(["up", "--no-local-host", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
            .arg(&data)
            .arg("--config")
            .arg(&cfg)
            // As it runs by default (info: an audit line per change, a line per status change),
            // logging to a file.
            .env("FEIYUN_LOG", std::env::var("FEIYUN_BENCH_LOG").unwrap_or_else(|_| "info".into()))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("up.log")).expect("log"))
            .spawn()
            .expect("start feiyun up"),
    );
    let creds_path = data.join("credentials.json");
    let deadline = Instant::now() + Duration::from_secs(60);
    let creds = loop {
        if let Some(c) = read_creds(&creds_path) {
            if Client::new(&c.2, &c.0, &c.1).call("DescribeRegions", &[]).map(|r| r.ok()).unwrap_or(false) {
                break c;
            }
        }
        assert!(Instant::now() < deadline, "feiyun up did not come up");
        std::thread::sleep(Duration::from_millis(50));
    };
    let admin = Client::new(&creds.2, &creds.0, &creds.1);
    let out = Command::new(bin)
        .args(["host", "token", "create", "--data-dir"])
        .arg(&data)
        .output()
        .expect("feiyun host token create");
    let token: Value = serde_json::from_slice(&out.stdout).expect("token JSON");
    let token = token["Token"].as_str().expect("token").to_string();

    // The control plane's threads, sampled all along (its peak memory is VmHWM).
    let most_threads = Arc::new(AtomicU64::new(0));
    let watching = Arc::new(AtomicBool::new(true));
    let watcher = {
        let (most, watching, pid) = (most_threads.clone(), watching.clone(), server.pid());
        std::thread::spawn(move || {
            while watching.load(Ordering::Relaxed) {
                most.fetch_max(status_field(pid, "Threads"), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };

    // 1. Registration.
    let t0 = Instant::now();
    let agent = Proc(
        Command::new(bin)
            .args(["agent", "--join", &format!("http://127.0.0.1:{port}"), "--hollow", &hosts.to_string()])
            .env("FEIYUN_JOIN_TOKEN", &token)
            .env("FEIYUN_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("agent.log")).expect("log"))
            .spawn()
            .expect("start feiyun agent"),
    );
    let deadline = t0 + Duration::from_secs(600);
    let mut last = 0;
    loop {
        let up = count_up(&admin).unwrap_or(last);
        if up != last {
            last = up;
        }
        if up as u64 >= hosts {
            break;
        }
        assert!(Instant::now() < deadline, "only {up} of {hosts} hosts registered after 10 minutes");
        std::thread::sleep(Duration::from_millis(250));
    }
    println!("register {hosts} hosts: {:.1} s (all Up in ListHosts)", t0.elapsed().as_secs_f64());
    // Let the registration burst settle into the steady rhythm of heartbeats and long-polls.
    std::thread::sleep(Duration::from_secs(5));

    // 2. Heartbeats and long-polls alone.
    idle_cpu(&format!("idle with {hosts} hosts, no instances"), server.pid(), agent.pid(), idle, ticks);

    // 3. RunInstances, into a vSwitch large enough for all of them (the default vSwitch, a /20
    // as in ECS, holds 4,092 instances).
    let net = Arc::new(network(&admin));
    let left = Arc::new(AtomicU64::new(instances));
    let acked: Arc<Mutex<Option<(String, Instant)>>> = Arc::new(Mutex::new(None));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (acked, done, creds) = (acked.clone(), done.clone(), creds.clone());
        std::thread::spawn(move || {
            let c = Client::new(&creds.2, &creds.0, &creds.1);
            let mut delays = Vec::new();
            while !done.load(Ordering::Relaxed) {
                let Some((id, at)) = acked.lock().expect("lock").take() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                while !is_running(&c, &id) {
                    if at.elapsed() > Duration::from_secs(120) {
                        panic!("{id} not Running two minutes after it was acknowledged");
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
                delays.push(at.elapsed().as_secs_f64() * 1000.0);
            }
            delays
        })
    };
    let usage = Usage::start(server.pid(), agent.pid(), ticks);
    let t0 = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let (left, acked, creds, net) = (left.clone(), acked.clone(), creds.clone(), net.clone());
            std::thread::spawn(move || {
                let c = Client::new(&creds.2, &creds.0, &creds.1);
                let mut lat = Vec::new();
                let mut failed = 0u64;
                while left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
                    let t = Instant::now();
                    let r = c
                        .call(
                            "RunInstances",
                            &[
                                ("RegionId", "cn-local"),
                                ("InstanceType", TYPE),
                                ("ImageId", IMAGE),
                                ("Amount", "1"),
                                ("VSwitchId", &net.0),
                                ("SecurityGroupId", &net.1),
                            ],
                        )
                        .expect("reachable");
                    let ms = t.elapsed().as_secs_f64() * 1000.0;
                    if !r.ok() {
                        failed += 1;
                        eprintln!("RunInstances failed: {}", r.text);
                        continue;
                    }
                    lat.push(ms);
                    if let Some(id) = r.body["InstanceIdSets"]["InstanceIdSet"][0].as_str() {
                        *acked.lock().expect("lock") = Some((id.to_string(), Instant::now()));
                    }
                }
                (lat, failed)
            })
        })
        .collect();
    let mut lat = Vec::new();
    let mut failed = 0;
    for w in workers {
        let (l, f) = w.join().expect("worker");
        lat.extend(l);
        failed += f;
    }
    let wall = t0.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    let delays = sorted(sampler.join().expect("sampler"));
    let lat = sorted(lat);
    println!(
        "RunInstances Amount=1, {clients} clients: {} acknowledged in {wall:.1} s = {:.0} instances/s, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, {failed} failed",
        lat.len(),
        lat.len() as f64 / wall,
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        lat.last().copied().unwrap_or(f64::NAN),
    );
    println!("  {}", usage.report(server.pid(), agent.pid(), ticks));
    println!(
        "acknowledged → Running (sample of {} during the load): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        delays.len(),
        pct(&delays, 0.5),
        pct(&delays, 0.99),
        delays.last().copied().unwrap_or(f64::NAN),
    );
    let total = lat.len();
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let n = running_total(&admin);
        if n >= total {
            break;
        }
        assert!(Instant::now() < deadline, "only {n} of {total} instances Running five minutes after the load");
        std::thread::sleep(Duration::from_millis(50));
    }
    println!(
        "all {total} Running {:.1} s after the first RunInstances ({:.1} s after the last acknowledgement)",
        t0.elapsed().as_secs_f64(),
        t0.elapsed().as_secs_f64() - wall
    );

    // 4. DescribeInstances, PageSize=100.
    let pages = (total / 100).max(1);
    let threads = 8;
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let usage = Usage::start(server.pid(), agent.pid(), ticks);
    let t0 = Instant::now();
    let readers: Vec<_> = (0..threads)
        .map(|t| {
            let (stop, count, creds) = (stop.clone(), count.clone(), creds.clone());
            std::thread::spawn(move || {
                let c = Client::new(&creds.2, &creds.0, &creds.1);
                let mut mine = Vec::new();
                let mut page = 1 + t * pages / threads;
                while !stop.load(Ordering::Relaxed) {
                    let p = (page % pages + 1).to_string();
                    let t = Instant::now();
                    let (status, text) = c
                        .call_text(
                            "DescribeInstances",
                            &[("RegionId", "cn-local"), ("PageSize", "100"), ("PageNumber", &p)],
                        )
                        .expect("reachable");
                    mine.push(t.elapsed().as_secs_f64() * 1000.0);
                    // The load generator shares the two cores with the server: count, don't parse.
                    assert_eq!(status, 200, "{text}");
                    assert_eq!(text.matches("\"InstanceId\":").count(), 100.min(total));
                    count.fetch_add(1, Ordering::Relaxed);
                    page += 7;
                }
                mine
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(10));
    stop.store(true, Ordering::Relaxed);
    let mut dl = Vec::new();
    for r in readers {
        dl.extend(r.join().expect("reader"));
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let dl = sorted(dl);
    println!(
        "DescribeInstances over {total} instances, PageSize=100, {threads} clients: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms",
        count.load(Ordering::Relaxed) as f64 / elapsed,
        pct(&dl, 0.5),
        pct(&dl, 0.99),
    );
    println!("  {}", usage.report(server.pid(), agent.pid(), ticks));

    // 5. Idle again, with the instances placed.
    idle_cpu(&format!("idle with {hosts} hosts, {total} instances"), server.pid(), agent.pid(), idle, ticks);

    // 6. Memory.
    watching.store(false, Ordering::Relaxed);
    let _ = watcher.join();
    println!(
        "control plane memory: VmRSS {:.0} MiB, peak VmHWM {:.0} MiB; threads {}, at most {} (agent process VmRSS {:.0} MiB)",
        status_field(server.pid(), "VmRSS") as f64 / 1024.0,
        status_field(server.pid(), "VmHWM") as f64 / 1024.0,
        status_field(server.pid(), "Threads"),
        most_threads.load(Ordering::Relaxed),
        status_field(agent.pid(), "VmRSS") as f64 / 1024.0,
    );
    for (who, file) in [("agent", "agent.log"), ("control plane", "up.log")] {
        let log = std::fs::read_to_string(dir.path().join(file)).unwrap_or_default();
        let (warn, error) = (log.matches(" WARN ").count(), log.matches(" ERROR ").count());
        if warn + error > 0 {
            let first = log.lines().find(|l| l.contains(" WARN ") || l.contains(" ERROR ")).unwrap_or("");
            println!("{who} log: {warn} warnings, {error} errors; first: {first}");
        }
    }
    drop(agent);
    drop(server);
}
