//! The outside: EIPs (1:1 NAT), SNAT, public traffic counters, egress caps and the metadata
//! address. "The internet" is a namespace joined to the first host.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use common::*;
use feiyun_net::*;

#[test]
fn eip_snat_counters_and_bandwidth() {
    let lab = lab_or_skip!("f", 1, true);
    let h = &lab.hosts[0];
    let eip = ip4(198, 19, 0, 10);
    let mut with_eip = port("i-pub", 10, &["sg-web"]);
    with_eip.eip = Some(eip);
    let mut capped = port("i-priv", 11, &["sg-web"]);
    capped.egress_mbps = Some(4);
    let mut v = vpc("vpc-f", 6001, 1);
    v.ports = vec![with_eip, capped];
    v.security_groups = vec![SecurityGroupSpec {
        id: "sg-web".into(),
        kind: GroupKind::Basic,
        inner_access: InnerAccessPolicy::Accept,
        members: vec![ip4(192, 168, 1, 10), ip4(192, 168, 1, 11)],
        rules: vec![allow_in(1, Protocol::Tcp, Some((80, 80)), "0.0.0.0/0")],
    }];
    let mut spec = host_spec(h, vec![v]);
    h.apply(&spec);
    let _web = Server::start(&inst(h, "i-pub"), sa(ip4(0, 0, 0, 0), 80), "web");
    let _blocked = Server::start(&inst(h, "i-pub"), sa(ip4(0, 0, 0, 0), 81), "web81");
    let _outside = Server::start(&lab.internet_path(), sa(INTERNET_IP, 9000), "inet");

    // In through the EIP: the guest sees the caller and its own private address only.
    let answer = reach(&lab.internet_path(), sa(eip, 80)).expect("EIP reachable from the internet");
    assert_eq!(answer, "web 198.18.0.1 192.168.1.10:80");
    assert!(blocked(&lab.internet_path(), sa(eip, 81)), "security group applies to EIP traffic");
    // Out: with an EIP the internet sees the EIP; without, the host's address.
    assert_eq!(
        reach(&inst(h, "i-pub"), sa(INTERNET_IP, 9000)).expect("out via EIP"),
        "inet 198.19.0.10 198.18.0.1:9000"
    );
    assert_eq!(
        reach(&inst(h, "i-priv"), sa(INTERNET_IP, 9000)).expect("out via SNAT"),
        "inet 198.18.0.2 198.18.0.1:9000"
    );

    let counters = h.net.counters(&spec).expect("counters");
    let pubc = counters.iter().find(|c| c.instance_id == "i-pub").expect("i-pub counters");
    assert!(pubc.in_bytes > 0 && pubc.out_bytes > 0 && pubc.in_packets > 0, "{pubc:?}");
    assert_eq!(pubc.eip, Some(eip));

    // The 4 Mbit/s cap of i-priv: 1 MB to the internet takes about 2 s, not milliseconds.
    let sink = Netns::open(&lab.internet_path())
        .expect("ns")
        .run(|| TcpListener::bind(sa(INTERNET_IP, 9100)))
        .expect("enter")
        .expect("bind");
    let reader = std::thread::spawn(move || {
        let (mut s, _) = sink.accept().expect("accept");
        let mut total = 0usize;
        let mut buf = vec![0u8; 65536];
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 {
                break;
            }
            total += n;
        }
        total
    });
    let mut s = Netns::open(&inst(h, "i-priv"))
        .expect("ns")
        .run(|| TcpStream::connect_timeout(&SocketAddr::V4(sa(INTERNET_IP, 9100)), Duration::from_secs(2)))
        .expect("enter")
        .expect("connect");
    let start = Instant::now();
    let chunk = vec![7u8; 64 * 1024];
    for _ in 0..16 {
        s.write_all(&chunk).expect("send");
    }
    drop(s);
    let got = reader.join().expect("reader");
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(got, 16 * 64 * 1024);
    let mbps = got as f64 * 8.0 / secs / 1e6;
    assert!(mbps < 6.0, "capped at 4 Mbit/s, measured {mbps:.1} Mbit/s");

    // Removing the EIP closes the way in at once.
    spec.vpcs[0].ports[0].eip = None;
    h.apply(&spec);
    assert!(blocked(&lab.internet_path(), sa(eip, 80)), "EIP gone");
    lab.teardown_and_check();
}

/// A tiny HTTP server in the host namespace answers with who is asking, as the agent's
/// metadata server would find out from the connection's two addresses.
#[test]
fn metadata_requests_reach_the_host_and_say_who_asks() {
    let lab = lab_or_skip!("g", 1, false);
    let h = &lab.hosts[0];
    // Two VPCs with the same private address on one host.
    let mut v1 = vpc("vpc-g1", 7001, 1);
    v1.ports = vec![port("i-g1", 10, &[])];
    let mut v2 = vpc("vpc-g2", 7002, 2);
    v2.ports = vec![port("i-g2", 10, &[])];
    let spec = host_spec(h, vec![v1, v2]);
    h.apply(&spec);
    let listener = Netns::open(&h.path())
        .expect("ns")
        .run(|| TcpListener::bind(sa(ip4(0, 0, 0, 0), 8775)))
        .expect("enter")
        .expect("bind");
    let served = spec.clone();
    let server = std::thread::spawn(move || {
        for _ in 0..2 {
            let (mut s, peer) = listener.accept().expect("accept");
            let mut req = [0u8; 256];
            let _ = s.read(&mut req);
            let (SocketAddr::V4(local), SocketAddr::V4(peer)) = (s.local_addr().expect("local"), peer) else {
                continue;
            };
            let who =
                served.metadata_caller(*local.ip(), *peer.ip()).map(|(v, i)| format!("{v} {i}")).unwrap_or_default();
            let _ = s.write_all(format!("HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{who}", who.len()).as_bytes());
        }
    });
    let ask = |id: &str| {
        let mut s = Netns::open(&inst(h, id))
            .expect("ns")
            .run(|| {
                TcpStream::connect_timeout(&SocketAddr::V4(sa(ip4(100, 100, 100, 200), 80)), Duration::from_secs(2))
            })
            .expect("enter")
            .expect("connect to 100.100.100.200");
        s.write_all(b"GET /latest/meta-data/instance-id HTTP/1.0\r\n\r\n").expect("send");
        let mut out = String::new();
        s.read_to_string(&mut out).expect("read");
        out.split("\r\n\r\n").nth(1).unwrap_or_default().to_string()
    };
    assert_eq!(ask("i-g1"), "vpc-g1 i-g1");
    assert_eq!(ask("i-g2"), "vpc-g2 i-g2");
    server.join().expect("server");
    // Metadata is not public traffic: neither direction is counted.
    for c in h.net.counters(&spec).expect("counters") {
        assert_eq!((c.in_bytes, c.out_bytes), (0, 0), "{c:?}");
    }
    // Instances reach nothing else on the host.
    let _other = Server::start(&h.path(), sa(ip4(0, 0, 0, 0), 9999), "host");
    assert!(blocked(&inst(h, "i-g1"), sa(ip4(100, 127, 1, 1), 9999)));
    lab.teardown_and_check();
}
