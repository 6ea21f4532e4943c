//! The agent networking real instances: runc containers in VPC namespaces the agent applies
//! with `feiyun-net`, reaching each other over TCP on one host and across two, reading their
//! metadata at 100.100.100.200, keeping their address across stop and start, following a
//! security-group change, reporting public traffic; and an agent killed in the middle of an
//! apply, restarted, and finally leaving the host clean. Needs root, runc, busybox-static,
//! iproute2 and nftables; skipped (saying why) without them.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use feiyun_domain::instance::{InstanceStatus, UserAction};
use feiyun_hostproto::net::RemotePort;
use feiyun_hostproto::Intent;
use feiyun_net::ns;
use feiyun_runtime::Runtime;

const HTTPD: &str = "mkdir -p /www && echo hello-from-b > /www/index.html && httpd -p 80 -h /www";
const METADATA: &str = "http://100.100.100.200";

/// `wget` of b's page from inside `from`: (exit code, body). The static busybox's `wget`
/// crashes on URLs that name a port and with `-T`: b serves on port 80, and `timeout` bounds it.
fn get(h: &LabHost, from: &str, ip: &str) -> (i64, String) {
    h.sh(from, &format!("timeout 3 wget -qO- http://{ip}/"))
}

fn reaches(h: &LabHost, from: &str, ip: &str) -> bool {
    get(h, from, ip) == (0, "hello-from-b\n".to_string())
}

fn metadata(h: &LabHost, id: &str, item: &str) -> String {
    h.ok(id, &format!("timeout 10 wget -qO- {METADATA}{item}"))
}

#[test]
fn instances_in_a_vpc_talk_read_their_metadata_and_keep_their_address() {
    let lab = lab_or_skip!("a", 1, true);
    let h = &lab.hosts[0];
    let (a, b) = ("i-vpcaa", "i-vpcab");
    let mut v = vpc("vpc-a", 101);
    v.ports = vec![port(a, 10, "sg-web"), port(b, 11, "sg-web")];
    v.security_groups = vec![group("sg-web", &[10, 11], vec![allow_tcp_in(80, "192.168.0.0/16")])];
    let net = h.spec(vec![v]);
    let fake =
        FakeControl::new(intent("h-a", vec![instance(a, Some("echo from-user-data")), instance(b, None)], Some(net)));
    let agent = h.start_agent(fake.clone());
    fake.wait_status(a, InstanceStatus::Running);
    fake.wait_status(b, InstanceStatus::Running);
    assert!(h.instance_netns(a).exists() && h.instance_netns(b).exists());
    let eth0 = h.ok(a, "ip -4 -o addr show dev eth0");
    assert!(eth0.contains("192.168.1.10/24"), "{eth0}");

    // Same host, same VPC: TCP between the two.
    h.ok(b, HTTPD);
    wait_for("a to reach b", Duration::from_secs(20), || reaches(h, a, "192.168.1.11"));

    // The metadata service answers each instance about itself.
    assert_eq!(metadata(h, a, "/latest/meta-data/instance-id"), a);
    assert_eq!(metadata(h, b, "/latest/meta-data/instance-id"), b);
    assert_eq!(metadata(h, a, "/latest/meta-data/instance/instance-type"), "ecs.t6-c1m1.large");
    assert_eq!(metadata(h, a, "/latest/user-data"), "echo from-user-data");
    let listing = metadata(h, a, "/latest/meta-data/");
    assert!(listing.lines().any(|l| l == "instance/") && listing.lines().any(|l| l == "instance-id"), "{listing}");
    let (code, out) = h.sh(b, &format!("timeout 10 wget -qO- {METADATA}/latest/user-data 2>&1"));
    assert!(code != 0 && out.contains("404"), "b has no user data: {code} {out}");
    let (code, out) = h.sh(a, &format!("timeout 10 wget -qO- {METADATA}/latest/meta-data/no-such-item 2>&1"));
    assert!(code != 0 && out.contains("404"), "{code} {out}");
    // Anything that is not one of the host's instances is refused.
    let from_host =
        http_status(&h.ns_path(), SocketAddr::from(([100, 127, 1, 1], METADATA_PORT)), "/latest/meta-data/instance-id");
    assert!(from_host.as_deref().is_some_and(|s| s.contains("403")), "{from_host:?}");

    // Public traffic (SNAT to the internet) is counted and reported, absolute.
    let _internet = Sender::start(&lab.internet_path(), SocketAddr::from((INTERNET_IP, 9000)), 5000);
    assert_eq!(h.ok(a, "nc -w 5 198.18.0.1 9000 </dev/null | wc -c").trim(), "5000");
    wait_for("a's public traffic to be reported", Duration::from_secs(40), || {
        fake.traffic(a).is_some_and(|t| t.in_bytes >= 5000 && t.out_bytes > 0)
    });
    assert_eq!(fake.traffic(b).map(|t| t.in_bytes), Some(0), "b exchanged nothing with the outside");

    // A security-group change applies to running instances.
    fake.network(|n| n.vpcs[0].security_groups[0].rules.clear());
    wait_for("b's ingress to close", Duration::from_secs(30), || get(h, a, "192.168.1.11").0 != 0);
    fake.network(|n| n.vpcs[0].security_groups[0].rules = vec![allow_tcp_in(80, "192.168.0.0/16")]);
    wait_for("b's ingress to open again", Duration::from_secs(30), || reaches(h, a, "192.168.1.11"));

    // Stop and start: the namespace and the address stay.
    fake.user(a, UserAction::Stop);
    fake.wait_status(a, InstanceStatus::Stopped);
    assert!(!h.has_container(a), "a stopped instance has no container");
    assert!(h.instance_netns(a).exists(), "a stopped instance keeps its namespace");
    fake.user(a, UserAction::Start);
    fake.wait_status(a, InstanceStatus::Running);
    let eth0 = h.ok(a, "ip -4 -o addr show dev eth0");
    assert!(eth0.contains("192.168.1.10/24"), "{eth0}");
    wait_for("a to reach b after its restart", Duration::from_secs(20), || reaches(h, a, "192.168.1.11"));
    assert_eq!(metadata(h, a, "/latest/meta-data/instance-id"), a);

    // Delete: the port leaves the network in the same change. The namespace goes, but only once
    // the container is gone.
    fake.change(|i| {
        let inst = i.instances.iter_mut().find(|x| x.id == a).expect("a");
        let t = inst.status.apply(inst.desired, UserAction::Delete { force: true }).expect("delete");
        inst.status = t.status;
        inst.desired = t.desired;
        let n = i.network.as_mut().expect("network");
        n.vpcs[0].ports.retain(|p| p.instance_id != a);
        n.vpcs[0].security_groups[0].members.retain(|m| *m != private_ip(10));
    });
    wait_for("a's namespace to go", Duration::from_secs(60), || {
        let container = h.has_container(a);
        let netns = h.instance_netns(a).exists();
        assert!(netns || !container, "the namespace went before the container");
        !netns
    });
    wait_for("a to be forgotten", Duration::from_secs(30), || fake.status(a).is_none());
    assert!(h.runtime.list().expect("list").iter().all(|i| i != a));
    assert_eq!(metadata(h, b, "/latest/meta-data/instance-id"), b, "b is untouched");
    assert!(fake.read(|c| c.errors.is_empty()), "no step failed: {:?}", fake.read(|c| c.errors.clone()));
    agent.stop();
}

/// An agent process for [`a_killed_agent_converges_and_a_leaving_host_is_torn_down`]: started
/// by it with the intent to serve, and killed by it. Does nothing when run on its own.
#[test]
fn child_agent() {
    let Ok(config) = std::env::var(CHILD_ENV) else { return };
    let text = std::fs::read(&config).expect("child config");
    let (ns_name, prefix, underlay, data, intent): (String, String, std::net::Ipv4Addr, std::path::PathBuf, Intent) =
        serde_json::from_slice(&text).expect("child config");
    let h = LabHost::reopen(ns_name, prefix, underlay, data);
    let _agent = h.start_agent(FakeControl::new(intent));
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

const CHILD_ENV: &str = "FEIYUN_AGENT_TEST_CHILD";

/// An agent in a process of its own, killed with SIGKILL when dropped.
struct ChildAgent(std::process::Child);

impl ChildAgent {
    fn spawn(h: &LabHost, intent: &Intent) -> ChildAgent {
        let config = h.data.join("child.json");
        let text = serde_json::to_vec(&(&h.ns_name, &h.prefix, h.underlay, &h.data, intent)).expect("config");
        std::fs::write(&config, text).expect("write config");
        let exe = std::env::current_exe().expect("test binary");
        let child = std::process::Command::new(exe)
            .args(["child_agent", "--exact", "--nocapture", "--test-threads", "1"])
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

/// A new instance's disk is prepared (and the control plane told: Starting) while its network
/// cannot be applied yet; it boots into its namespace only once the network is there.
#[test]
fn a_new_instance_is_prepared_before_its_network_and_booted_after() {
    let lab = lab_or_skip!("p", 1, false);
    let h = &lab.hosts[0];
    let a = "i-vpcpa";
    let mut v = vpc("vpc-p", 301);
    let mut p = port(a, 10, "sg-p");
    // The vSwitch's gateway: the state is refused (nothing applied) until it is fixed.
    p.ip = private_ip(253);
    v.ports = vec![p];
    v.security_groups = vec![group("sg-p", &[10], vec![])];
    let fake = FakeControl::new(intent("h-p", vec![instance(a, None)], Some(h.spec(vec![v]))));
    let agent = h.start_agent(fake.clone());
    fake.wait_status(a, InstanceStatus::Starting);
    wait_for("the network error to be reported", Duration::from_secs(30), || {
        fake.read(|c| c.errors.iter().any(|(i, e)| i == a && e.starts_with("Network:")))
    });
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(fake.status(a).map(|s| s.0), Some(InstanceStatus::Starting));
    assert!(!h.has_container(a), "booted without its network");
    fake.network(|n| n.vpcs[0].ports[0].ip = private_ip(10));
    fake.wait_status(a, InstanceStatus::Running);
    assert!(h.ok(a, "ip -4 -o addr show dev eth0").contains("192.168.1.10/24"));
    agent.stop();
}

#[test]
fn a_killed_agent_converges_and_a_leaving_host_is_torn_down() {
    let lab = lab_or_skip!("c", 1, false);
    let h = &lab.hosts[0];
    let (a, b) = ("i-vpcca", "i-vpccb");
    let mut v = vpc("vpc-c", 201);
    v.ports = vec![port(a, 10, "sg-c"), port(b, 11, "sg-c")];
    v.security_groups = vec![group("sg-c", &[10, 11], vec![allow_tcp_in(80, "192.168.0.0/16")])];
    let placed = intent("h-c", vec![instance(a, None), instance(b, None)], Some(h.spec(vec![v])));
    let router = ns::netns_path(&format!("{}-r-201", h.prefix));
    for delay_ms in [0u64, 15, 60, 500] {
        // Killed this long after the apply started (its router namespace appeared): the first
        // kills land in the middle of the apply, the last one once instances boot.
        let child = ChildAgent::spawn(h, &placed);
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !router.exists() {
            assert!(std::time::Instant::now() < deadline, "the child agent never started applying");
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(delay_ms));
        drop(child);
        eprintln!("killed {delay_ms} ms into the apply; the host had {:?}", h.network_leftovers());

        // A new agent on the same data directory converges.
        let fake = FakeControl::new(placed.clone());
        let agent = h.start_agent(fake.clone());
        fake.wait_status(a, InstanceStatus::Running);
        fake.wait_status(b, InstanceStatus::Running);
        h.ok(b, HTTPD);
        wait_for("a to reach b", Duration::from_secs(30), || reaches(h, a, "192.168.1.11"));
        assert_eq!(metadata(h, a, "/latest/meta-data/instance-id"), a);
        agent.stop();

        // Restarted: it re-applies the same network, re-adopts the instances, reboots nothing.
        let boots = (h.boots(a), h.boots(b));
        let again = FakeControl::new(fake.read(|c| c.intent.clone()));
        let agent = h.start_agent(again.clone());
        wait_for("the restarted agent's first counters", Duration::from_secs(30), || again.traffic(a).is_some());
        assert!(reaches(h, a, "192.168.1.11"), "traffic flows after the restart");
        assert_eq!((h.boots(a), h.boots(b)), boots, "nothing was rebooted");
        agent.stop();

        // The host leaves the VPC (evacuated: a new epoch names nothing): instances go, then
        // everything of its network.
        let mut left = placed.clone();
        left.epoch = 2;
        left.instances.clear();
        left.network = None;
        let agent = h.start_agent(FakeControl::new(left));
        wait_for("the host's network to be torn down", Duration::from_secs(60), || {
            h.runtime.list().is_ok_and(|l| l.is_empty())
                && h.network_leftovers().is_empty()
                && !h.network_state().exists()
        });
        agent.stop();
    }
}

#[test]
fn two_hosts_reach_each_other_over_the_underlay() {
    let lab = lab_or_skip!("x", 2, false);
    let (h1, h2) = (&lab.hosts[0], &lab.hosts[1]);
    let (a, b) = ("i-vpcxa", "i-vpcxb");
    let sg = group("sg-x", &[10, 11], vec![allow_tcp_in(80, "192.168.0.0/16")]);
    let mut v1 = vpc("vpc-x", 301);
    v1.ports = vec![port(a, 10, "sg-x")];
    v1.remote_ports = vec![RemotePort { ip: private_ip(11), underlay_ip: h2.underlay }];
    v1.security_groups = vec![sg.clone()];
    let mut v2 = vpc("vpc-x", 301);
    v2.ports = vec![port(b, 11, "sg-x")];
    v2.remote_ports = vec![RemotePort { ip: private_ip(10), underlay_ip: h1.underlay }];
    v2.security_groups = vec![sg];
    let f1 = FakeControl::new(intent("h-x1", vec![instance(a, None)], Some(h1.spec(vec![v1]))));
    let f2 = FakeControl::new(intent("h-x2", vec![instance(b, None)], Some(h2.spec(vec![v2]))));
    let agent1 = h1.start_agent(f1.clone());
    let agent2 = h2.start_agent(f2.clone());
    f1.wait_status(a, InstanceStatus::Running);
    f2.wait_status(b, InstanceStatus::Running);
    h2.ok(b, HTTPD);
    wait_for("a to reach b on the other host", Duration::from_secs(30), || reaches(h1, a, "192.168.1.11"));
    assert_eq!(metadata(h2, b, "/latest/meta-data/instance-id"), b);
    assert_eq!(metadata(h1, a, "/latest/meta-data/instance-id"), a);
    agent1.stop();
    agent2.stop();
}
