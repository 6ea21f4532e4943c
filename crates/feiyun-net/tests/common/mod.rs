//! A lab of simulated hosts on one machine: each "host" is a network namespace made by the test,
//! hosts are joined by an underlay veth (169.254.0.0/16), and an optional "internet" namespace
//! hangs off the first host. Nothing is connected to the machine's own network. Every test
//! removes what it made, also when it fails (`Lab` tears down on drop).

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use feiyun_net::*;

pub const INTERNET_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
pub const HOST1_WAN_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

/// Why the namespace tests cannot run here, if they cannot.
pub fn skip_reason() -> Option<String> {
    if !nix::unistd::Uid::effective().is_root() {
        return Some("not root".into());
    }
    for tool in ["nft", "tc", "ip"] {
        if Command::new(tool).arg("-V").output().is_err() && Command::new(tool).arg("-v").output().is_err() {
            return Some(format!("{tool} is not installed (scripts/deps.sh --test)"));
        }
    }
    if !std::path::Path::new("/proc/self/ns/net").exists() {
        return Some("no network namespaces".into());
    }
    None
}

#[allow(unused_macros)]
macro_rules! lab_or_skip {
    ($tag:expr, $hosts:expr, $internet:expr) => {
        match common::skip_reason() {
            Some(why) => {
                eprintln!("skipped: {why}");
                return;
            }
            None => common::Lab::new($tag, $hosts, $internet),
        }
    };
}
#[allow(unused_imports)]
pub(crate) use lab_or_skip;

pub fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

pub struct Host {
    pub ns_name: String,
    pub prefix: String,
    pub underlay: Ipv4Addr,
    pub net: HostNet,
}

impl Host {
    pub fn path(&self) -> PathBuf {
        ns::netns_path(&self.ns_name)
    }
    pub fn apply(&self, spec: &HostNetSpec) -> ApplyReport {
        match self.net.apply(spec) {
            Ok(r) => r,
            Err(e) => panic!("apply on {}: {e}", self.ns_name),
        }
    }
}

pub struct Lab {
    pub tag: String,
    pub hosts: Vec<Host>,
    pub internet: Option<String>,
}

/// `tag` and three random characters: labs of runs side by side on one machine never share a
/// name, so no run removes what another made.
pub fn unique_tag(tag: &str) -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
    let mut n = h.finish();
    let alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let tail: String = (0..3)
        .map(|_| {
            let c = alphabet[(n % 36) as usize] as char;
            n /= 36;
            c
        })
        .collect();
    format!("{tag}{tail}")
}

impl Lab {
    /// `n` hosts with prefixes `<tag>1`, `<tag>2`, …, `tag` made unique by [`unique_tag`].
    pub fn new(tag: &str, n: usize, internet: bool) -> Lab {
        let tag = unique_tag(tag);
        let tag = tag.as_str();
        let mut lab = Lab { tag: tag.to_string(), hosts: Vec::new(), internet: None };
        for i in 1..=n {
            let ns_name = format!("fytest-{tag}-h{i}");
            ns::ensure_named(&ns_name).expect("create host namespace");
            ip(&["-n", &ns_name, "link", "set", "lo", "up"]);
            let net = HostNet::at(&ns::netns_path(&ns_name)).expect("open host namespace");
            let underlay = Ipv4Addr::new(169, 254, 0, i as u8);
            lab.hosts.push(Host { ns_name, prefix: format!("{tag}{i}"), underlay, net });
        }
        if n >= 2 {
            let (a, b) = (&lab.hosts[0].ns_name, &lab.hosts[1].ns_name);
            ip(&["-n", a, "link", "add", "ul0", "type", "veth", "peer", "name", "ul0", "netns", b]);
            for (i, h) in lab.hosts.iter().take(2).enumerate() {
                let addr = format!("169.254.0.{}/16", i + 1);
                ip(&["-n", &h.ns_name, "addr", "add", &addr, "dev", "ul0"]);
                ip(&["-n", &h.ns_name, "link", "set", "ul0", "up"]);
            }
        } else if n == 1 {
            // A lone host still needs its underlay address somewhere.
            let h = &lab.hosts[0].ns_name;
            ip(&["-n", h, "addr", "add", "169.254.0.1/32", "dev", "lo"]);
        }
        if internet {
            let name = format!("fytest-{tag}-inet");
            ns::ensure_named(&name).expect("create internet namespace");
            let h = &lab.hosts[0].ns_name;
            ip(&["-n", &name, "link", "set", "lo", "up"]);
            ip(&["-n", h, "link", "add", "wan0", "type", "veth", "peer", "name", "wan0", "netns", &name]);
            ip(&["-n", &name, "addr", "add", "198.18.0.1/24", "dev", "wan0"]);
            ip(&["-n", h, "addr", "add", "198.18.0.2/24", "dev", "wan0"]);
            ip(&["-n", &name, "link", "set", "wan0", "up"]);
            ip(&["-n", h, "link", "set", "wan0", "up"]);
            ip(&["-n", &name, "route", "add", "198.19.0.0/16", "via", "198.18.0.2"]);
            ip(&["-n", h, "route", "add", "default", "via", "198.18.0.1"]);
            lab.internet = Some(name);
        }
        lab
    }

    pub fn internet_path(&self) -> PathBuf {
        ns::netns_path(self.internet.as_deref().expect("lab has an internet"))
    }

    fn remove_namespaces(&self) {
        for name in ns::list_named().unwrap_or_default() {
            if name.starts_with(&format!("fytest-{}-", self.tag)) {
                let _ = ns::delete_named(&name);
            }
        }
    }

    /// Tears every host down and checks nothing of its prefix is left.
    pub fn teardown_and_check(&self) {
        for h in &self.hosts {
            h.net.teardown(&h.prefix).expect("teardown");
            assert_clean(h);
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for h in &self.hosts {
            let _ = h.net.teardown(&h.prefix);
        }
        self.remove_namespaces();
    }
}

fn json_out(ns_name: &str, cmd: &str, args: &[&str]) -> serde_json::Value {
    let out = Command::new("ip").args(["netns", "exec", ns_name, cmd, "-j"]).args(args).output().expect("run");
    assert!(out.status.success(), "{cmd} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
}

/// Nothing with this host's prefix: no namespace, link, rule, nftables table or qdisc.
pub fn assert_clean(h: &Host) {
    let p = &h.prefix;
    let leftover: Vec<String> =
        ns::list_named().expect("list").into_iter().filter(|n| n.starts_with(&format!("{p}-"))).collect();
    assert!(leftover.is_empty(), "namespaces left: {leftover:?}");
    let links = json_out(&h.ns_name, "ip", &["link", "show"]);
    for l in links.as_array().into_iter().flatten() {
        let name = l["ifname"].as_str().unwrap_or("");
        assert!(names::parse_host_link(p, name).is_none(), "link left: {name}");
    }
    let rules = json_out(&h.ns_name, "ip", &["rule", "show"]);
    for r in rules.as_array().into_iter().flatten() {
        let table = r["table"].as_str().and_then(|t| t.parse::<u32>().ok());
        assert!(table.and_then(names::vni_of_rule_table).is_none(), "rule left: {r}");
    }
    let tables = json_out(&h.ns_name, "nft", &["list", "tables"]);
    assert!(!tables.to_string().contains(&names::host_table(p)), "nft table left: {tables}");
    let qdiscs = json_out(&h.ns_name, "tc", &["qdisc", "show"]);
    for q in qdiscs.as_array().into_iter().flatten() {
        assert_ne!(q["kind"].as_str(), Some("htb"), "qdisc left: {q}");
    }
}

/// A TCP server inside a namespace that answers every connection with `<name> <peer> <local>`.
pub struct Server {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    pub fn start(ns_path: &std::path::Path, bind: SocketAddrV4, name: &str) -> Server {
        let listener =
            Netns::open(ns_path).expect("open ns").run(|| TcpListener::bind(bind)).expect("enter ns").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, name) = (stop.clone(), name.to_string());
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut s, peer)) => {
                        let local = s.local_addr().map(|a| a.to_string()).unwrap_or_default();
                        let _ = s.set_nonblocking(false);
                        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                        let mut buf = [0u8; 64];
                        let _ = s.read(&mut buf);
                        let _ = s.write_all(format!("{name} {} {local}", peer.ip()).as_bytes());
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(3)),
                }
            }
        });
        Server { stop, thread: Some(thread) }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Connects from a namespace; `Some(answer)` if a server answered within the timeout.
pub fn probe(from: &std::path::Path, to: SocketAddrV4, timeout: Duration) -> Option<String> {
    let stream =
        Netns::open(from).expect("open ns").run(|| TcpStream::connect_timeout(&SocketAddr::V4(to), timeout)).ok()?;
    let mut s = stream.ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"hi\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

pub fn reach(from: &std::path::Path, to: SocketAddrV4) -> Option<String> {
    probe(from, to, Duration::from_millis(1500))
}

/// For checks that expect nothing: a dropped SYN needs the whole timeout.
pub fn blocked(from: &std::path::Path, to: SocketAddrV4) -> bool {
    probe(from, to, Duration::from_millis(600)).is_none()
}

pub fn sa(ip: Ipv4Addr, port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(ip, port)
}

// ---- desired-state builders ----

pub fn host_spec(h: &Host, vpcs: Vec<VpcSpec>) -> HostNetSpec {
    HostNetSpec {
        prefix: h.prefix.clone(),
        underlay_ip: h.underlay,
        mtu: 1450,
        metadata: Some(MetadataTarget { port: 8775 }),
        vpcs,
    }
}

/// A VPC 192.168.0.0/16 with vSwitch 192.168.1.0/24 (gateway .253).
pub fn vpc(id: &str, vni: u32, transit_octet: u8) -> VpcSpec {
    VpcSpec {
        vpc_id: id.into(),
        vni,
        cidr: "192.168.0.0/16".parse().expect("cidr"),
        transit: TransitLink {
            host: Ipv4Addr::new(100, 127, transit_octet, 1),
            router: Ipv4Addr::new(100, 127, transit_octet, 2),
            prefix_len: 30,
        },
        vswitches: vec![VSwitchSpec {
            vswitch_id: "vsw-1".into(),
            cidr: "192.168.1.0/24".parse().expect("cidr"),
            gateway: Ipv4Addr::new(192, 168, 1, 253),
        }],
        ports: vec![],
        remote_ports: vec![],
        security_groups: vec![],
    }
}

pub fn port(id: &str, last_octet: u8, groups: &[&str]) -> PortSpec {
    PortSpec {
        instance_id: id.into(),
        vswitch_id: "vsw-1".into(),
        mac: MacAddr([0x02, 0x00, 0x00, 0x00, 0x01, last_octet]),
        ip: Ipv4Addr::new(192, 168, 1, last_octet),
        security_group_ids: groups.iter().map(|g| g.to_string()).collect(),
        egress_mbps: None,
        eip: None,
    }
}

pub fn basic_open(id: &str, members: &[Ipv4Addr]) -> SecurityGroupSpec {
    SecurityGroupSpec {
        id: id.into(),
        kind: GroupKind::Basic,
        inner_access: InnerAccessPolicy::Accept,
        members: members.to_vec(),
        rules: vec![allow_in(1, Protocol::All, None, "0.0.0.0/0")],
    }
}

pub fn allow_in(priority: u8, protocol: Protocol, ports: Option<(u16, u16)>, cidr: &str) -> SgRule {
    SgRule {
        direction: Direction::Ingress,
        policy: Policy::Accept,
        priority,
        protocol,
        ports,
        peer: Peer::Cidr(cidr.parse().expect("cidr")),
    }
}

pub fn ip4(a: u8, b: u8, c: u8, d: u8) -> Ipv4Addr {
    Ipv4Addr::new(a, b, c, d)
}

pub fn inst(h: &Host, id: &str) -> PathBuf {
    instance_netns_path(&h.prefix, id)
}
