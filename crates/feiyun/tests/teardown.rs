//! `feiyun teardown` removes the host's network, found by the prefix of the last network state
//! the agent applied. The command runs inside a namespace made by the test, which stands in for
//! the machine. Needs root, iproute2 and nftables; skipped (saying why) without them.

use std::net::Ipv4Addr;
use std::process::Command;

use feiyun_hostproto::net::*;
use feiyun_net::{ns, HostNet};

const HOST_NS: &str = "fyteardown-h1";
const PREFIX: &str = "ytd";

fn skip_reason() -> Option<&'static str> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status.lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|l| l.split_whitespace().nth(1));
    if euid != Some("0") {
        return Some("not root");
    }
    if Command::new("nft").arg("-v").output().is_err() || Command::new("ip").arg("-V").output().is_err() {
        return Some("iproute2 or nftables is not installed");
    }
    None
}

fn leftovers() -> Vec<String> {
    ns::list_named().unwrap_or_default().into_iter().filter(|n| n.starts_with(&format!("{PREFIX}-"))).collect()
}

/// Removes what the test made, also when it fails.
struct Cleanup;

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Ok(net) = HostNet::at(&ns::netns_path(HOST_NS)) {
            let _ = net.teardown(PREFIX);
        }
        for n in leftovers() {
            let _ = ns::delete_named(&n);
        }
        let _ = ns::delete_named(HOST_NS);
    }
}

fn spec() -> HostNetSpec {
    HostNetSpec {
        prefix: PREFIX.into(),
        underlay_ip: Ipv4Addr::new(169, 254, 0, 1),
        mtu: 1450,
        metadata: Some(MetadataTarget { port: 8775 }),
        vpcs: vec![VpcSpec {
            vpc_id: "vpc-td".into(),
            vni: 901,
            cidr: "192.168.0.0/16".parse().expect("cidr"),
            transit: TransitLink {
                host: Ipv4Addr::new(100, 127, 9, 1),
                router: Ipv4Addr::new(100, 127, 9, 2),
                prefix_len: 30,
            },
            vswitches: vec![VSwitchSpec {
                vswitch_id: "vsw-td".into(),
                cidr: "192.168.1.0/24".parse().expect("cidr"),
                gateway: Ipv4Addr::new(192, 168, 1, 253),
            }],
            ports: vec![PortSpec {
                instance_id: "i-td".into(),
                vswitch_id: "vsw-td".into(),
                mac: MacAddr([2, 0, 0, 0, 9, 10]),
                ip: Ipv4Addr::new(192, 168, 1, 10),
                security_group_ids: vec![],
                egress_mbps: Some(10),
                eip: None,
            }],
            remote_ports: vec![],
            security_groups: vec![],
        }],
    }
}

#[test]
fn teardown_removes_the_host_network() {
    if let Some(why) = skip_reason() {
        eprintln!("skipping: {why}");
        return;
    }
    let _cleanup = Cleanup;
    let _ = ns::delete_named(HOST_NS);
    ns::ensure_named(HOST_NS).expect("host namespace");
    let ip = |args: &[&str]| {
        let out = Command::new("ip").args(["-n", HOST_NS]).args(args).output().expect("ip");
        assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    ip(&["link", "set", "lo", "up"]);
    ip(&["addr", "add", "169.254.0.1/32", "dev", "lo"]);
    HostNet::at(&ns::netns_path(HOST_NS)).expect("host").apply(&spec()).expect("apply");
    assert!(!leftovers().is_empty());

    // A host data directory as an agent leaves it: its lock file and its last network state.
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    std::fs::create_dir_all(data.join("host")).expect("data dir");
    std::fs::write(data.join("feiyun.lock"), b"").expect("lock file");
    std::fs::write(data.join("host/network.json"), serde_json::to_vec(&spec()).expect("json")).expect("state");

    let dry = Command::new("ip")
        .args(["netns", "exec", HOST_NS, env!("CARGO_BIN_EXE_feiyun"), "teardown", "--data-dir"])
        .arg(&data)
        .output()
        .expect("run feiyun teardown");
    assert!(String::from_utf8_lossy(&dry.stdout).contains("its network (prefix ytd)"), "{dry:?}");
    assert!(!leftovers().is_empty(), "a dry run changes nothing");

    let out = Command::new("ip")
        .args(["netns", "exec", HOST_NS, env!("CARGO_BIN_EXE_feiyun"), "teardown", "--yes", "--data-dir"])
        .arg(&data)
        .output()
        .expect("run feiyun teardown");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(leftovers(), Vec::<String>::new(), "namespaces of the prefix are gone");
    let tables = Command::new("ip").args(["netns", "exec", HOST_NS, "nft", "list", "tables"]).output().expect("nft");
    assert!(!String::from_utf8_lossy(&tables.stdout).contains("fy_ytd"), "the host table is gone");
    assert!(!data.exists(), "the data directory is gone");
}
