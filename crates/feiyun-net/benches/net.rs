//! Host networking benchmarks (as root): security-group apply at scale, one new port, and TCP
//! throughput and latency between instances next to the host's loopback.
//!
//! cargo bench -p feiyun-net --bench net

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use feiyun_net::*;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn summary(mut ms: Vec<f64>) -> String {
    ms.sort_by(f64::total_cmp);
    format!(
        "p50 {:.1} ms, p90 {:.1} ms, max {:.1} ms (n={})",
        percentile(&ms, 0.5),
        percentile(&ms, 0.9),
        percentile(&ms, 1.0),
        ms.len()
    )
}

/// 1,000 distinct rules, priorities spread over 1-100, both policies; `salt` makes each set new.
fn big_rules(salt: u16) -> Vec<SgRule> {
    (0..1000u16)
        .map(|i| SgRule {
            direction: if i % 4 == 0 { Direction::Egress } else { Direction::Ingress },
            policy: if i % 3 == 0 { Policy::Drop } else { Policy::Accept },
            priority: (i % 100 + 1) as u8,
            protocol: if i % 2 == 0 { Protocol::Tcp } else { Protocol::Udp },
            ports: Some((1000 + i + salt, 1000 + i + salt)),
            peer: Peer::Cidr(format!("10.{}.{}.0/24", i / 256, i % 256).parse().expect("cidr")),
        })
        .collect()
}

fn security_group_scale() {
    let lab = Lab::new("bs", 1, false);
    let h = &lab.hosts[0];
    let mut v = vpc("vpc-bench", 9001, 1);
    v.ports = (0..50u8).map(|i| port(&format!("i-b{i:02}"), 10 + i, &["sg-big"])).collect();
    v.security_groups = vec![SecurityGroupSpec {
        id: "sg-big".into(),
        kind: GroupKind::Basic,
        inner_access: InnerAccessPolicy::Accept,
        members: v.ports.iter().map(|p| p.ip).collect(),
        rules: big_rules(0),
    }];
    let mut spec = host_spec(h, vec![v]);
    let t = Instant::now();
    h.apply(&spec);
    println!("first apply, 50 ports and a 1,000-rule group: {:.0} ms", t.elapsed().as_secs_f64() * 1e3);
    let mut change = Vec::new();
    let mut commands = 0;
    for salt in 1..=15 {
        spec.vpcs[0].security_groups[0].rules = big_rules(salt);
        let r = h.apply(&spec);
        assert!(r.changes.is_empty());
        commands = r.firewall_commands;
        change.push(r.elapsed.as_secs_f64() * 1e3);
    }
    println!("apply a changed 1,000-rule group to 50 running instances: {} ({commands} nft commands)", summary(change));
    let mut noop = Vec::new();
    for _ in 0..10 {
        noop.push(h.apply(&spec).elapsed.as_secs_f64() * 1e3);
    }
    println!("apply with nothing to change (50 ports): {}", summary(noop));
    let mut add = Vec::new();
    for i in 0..10u8 {
        let mut more = spec.clone();
        more.vpcs[0].ports.push(port(&format!("i-new{i}"), 100 + i, &["sg-big"]));
        let r = h.apply(&more);
        add.push(r.elapsed.as_secs_f64() * 1e3);
        h.apply(&spec);
    }
    println!("apply one new instance port next to 50: {}", summary(add));
    lab.teardown_and_check();
}

fn listener(ns: &Path, at: SocketAddrV4) -> TcpListener {
    Netns::open(ns).expect("ns").run(|| TcpListener::bind(at)).expect("enter").expect("bind")
}

fn connect(ns: &Path, to: SocketAddrV4) -> TcpStream {
    Netns::open(ns)
        .expect("ns")
        .run(|| TcpStream::connect_timeout(&SocketAddr::V4(to), Duration::from_secs(3)))
        .expect("enter")
        .expect("connect")
}

/// Gbit/s for `secs` of bulk sending, then round-trip latency of 1-byte messages.
fn tcp(label: &str, server_ns: &Path, bind: SocketAddrV4, client_ns: &Path, to: SocketAddrV4) {
    let l = listener(server_ns, bind);
    let sink = std::thread::spawn(move || {
        let (mut s, _) = l.accept().expect("accept");
        let mut buf = vec![0u8; 256 * 1024];
        let mut total = 0u64;
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 {
                break;
            }
            total += n as u64;
        }
        let (mut s, _) = l.accept().expect("accept");
        let _ = s.set_nodelay(true);
        let mut b = [0u8; 1];
        while s.read_exact(&mut b).is_ok() {
            if s.write_all(&b).is_err() {
                break;
            }
        }
        total
    });
    let mut s = connect(client_ns, to);
    let chunk = vec![1u8; 256 * 1024];
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(3) {
        s.write_all(&chunk).expect("send");
    }
    drop(s);
    let total = 0;
    let mut s = connect(client_ns, to);
    let sent_secs = start.elapsed().as_secs_f64();
    s.set_nodelay(true).expect("nodelay");
    let mut rtts = Vec::new();
    let mut b = [7u8; 1];
    for _ in 0..5000 {
        let t = Instant::now();
        s.write_all(&b).expect("ping");
        s.read_exact(&mut b).expect("pong");
        rtts.push(t.elapsed().as_secs_f64() * 1e6);
    }
    drop(s);
    let received = sink.join().expect("sink") + total;
    rtts.sort_by(f64::total_cmp);
    println!(
        "| {label} | {:.2} Gbit/s | {:.0} µs | {:.0} µs |",
        received as f64 * 8.0 / sent_secs / 1e9,
        percentile(&rtts, 0.5),
        percentile(&rtts, 0.99)
    );
}

fn throughput() {
    let lab = Lab::new("bt", 2, false);
    let (h1, h2) = (&lab.hosts[0], &lab.hosts[1]);
    let ips = [ip4(192, 168, 1, 10), ip4(192, 168, 1, 11), ip4(192, 168, 1, 20)];
    let group = basic_open("sg-t", &ips);
    let mut v1 = vpc("vpc-t", 9101, 1);
    v1.ports = vec![port("i-t1", 10, &["sg-t"]), port("i-t2", 11, &["sg-t"])];
    v1.remote_ports = vec![RemotePort { ip: ips[2], underlay_ip: h2.underlay }];
    v1.security_groups = vec![group.clone()];
    let mut v2 = vpc("vpc-t", 9101, 1);
    v2.ports = vec![port("i-t3", 20, &["sg-t"])];
    v2.remote_ports =
        vec![RemotePort { ip: ips[0], underlay_ip: h1.underlay }, RemotePort { ip: ips[1], underlay_ip: h1.underlay }];
    v2.security_groups = vec![group];
    h1.apply(&host_spec(h1, vec![v1]));
    h2.apply(&host_spec(h2, vec![v2]));
    println!("| path | throughput | RTT p50 | RTT p99 |");
    println!("|---|---:|---:|---:|");
    let any = |p| sa(ip4(0, 0, 0, 0), p);
    tcp("host loopback (127.0.0.1)", &h1.path(), sa(ip4(127, 0, 0, 1), 7500), &h1.path(), sa(ip4(127, 0, 0, 1), 7500));
    tcp("same host, instance → instance", &inst(h1, "i-t2"), any(7501), &inst(h1, "i-t1"), sa(ips[1], 7501));
    tcp("two hosts over VXLAN", &inst(h2, "i-t3"), any(7502), &inst(h1, "i-t1"), sa(ips[2], 7502));
    lab.teardown_and_check();
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if let Some(why) = skip_reason() {
        println!("skipped: {why}");
        return;
    }
    security_group_scale();
    throughput();
}
