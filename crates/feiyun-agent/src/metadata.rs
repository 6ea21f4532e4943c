//! The instance metadata service, as Alibaba's at `http://100.100.100.200/`.
//!
//! Each VPC router sends `100.100.100.200:80` to the host's metadata port on that VPC's transit
//! host address, without source NAT, so the server (one socket on `0.0.0.0:<port>` in the host
//! namespace) sees the VPC in the connection's local address and the instance's private IP as
//! its peer ([`HostNetSpec::metadata_caller`]). It answers from what the intent says about that
//! instance: `InstanceIntent::metadata` under `/latest/meta-data/`, its user data under
//! `/latest/user-data`. A caller that is no instance of this host is refused (403).
//!
//! What Alibaba documents and this follows: plain-text answers; a directory (`instance/`,
//! `network/interfaces/macs/`) lists its entries one per line, subdirectories with a trailing
//! `/`; an unknown item is 404; user data is 404 when the instance has none; the versions
//! `latest` and `2016-01-01` (the one cloud-init asks for) answer the same. Both access modes
//! work: normal mode (plain GET), and security hardening mode — `PUT /latest/api/token` with
//! `X-aliyun-ecs-metadata-token-ttl-seconds` (1-21600) gives a token bound to the calling
//! instance, sent back as `X-aliyun-ecs-metadata-token`. A token request carrying
//! `X-Forwarded-For` is refused (403), a bad TTL is 400, and a wrong or expired token 401.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use axum::serve::IncomingStream;
use feiyun_hostproto::net::HostNetSpec;
use feiyun_hostproto::Intent;

pub const TOKEN_TTL_HEADER: &str = "x-aliyun-ecs-metadata-token-ttl-seconds";
pub const TOKEN_HEADER: &str = "x-aliyun-ecs-metadata-token";
const MAX_TOKEN_TTL: u64 = 21600;
/// Live tokens kept at most; the ones closest to expiry make room.
const MAX_TOKENS: usize = 10_000;
const VERSIONS: [&str; 2] = ["2016-01-01", "latest"];

/// What the service answers one instance.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Answers {
    pub items: BTreeMap<String, String>,
    pub user_data: Option<Vec<u8>>,
}

#[derive(Debug, Default)]
struct View {
    network: Option<HostNetSpec>,
    instances: HashMap<String, Answers>,
}

#[derive(Debug, Clone)]
struct Token {
    instance_id: String,
    expires: Instant,
}

/// The service's state: the latest intent's network and answers, and the issued tokens.
#[derive(Debug, Default)]
pub struct Metadata {
    view: RwLock<View>,
    tokens: Mutex<HashMap<String, Token>>,
}

/// Both ends of an accepted connection.
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    pub local: SocketAddr,
    pub peer: SocketAddr,
}

impl Connected<IncomingStream<'_, tokio::net::TcpListener>> for Caller {
    fn connect_info(stream: IncomingStream<'_, tokio::net::TcpListener>) -> Caller {
        let peer = *stream.remote_addr();
        // An unknown local address identifies no VPC: the caller is then refused.
        let local = stream.io().local_addr().unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        Caller { local, peer }
    }
}

/// One answer: status, body, and extra headers.
#[derive(Debug, PartialEq)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Vec<u8>,
    pub headers: Vec<(&'static str, String)>,
}

impl Reply {
    fn ok(body: impl Into<Vec<u8>>) -> Reply {
        Reply { status: StatusCode::OK, body: body.into(), headers: Vec::new() }
    }
    fn status(status: StatusCode) -> Reply {
        let text = format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or(""));
        Reply { status, body: text.trim_end().as_bytes().to_vec(), headers: Vec::new() }
    }
}

impl Metadata {
    /// Takes what the latest intent says: the network (to find callers) and each instance's
    /// answers.
    pub fn update(&self, intent: &Intent) {
        let instances = intent
            .instances
            .iter()
            .map(|i| (i.id.clone(), Answers { items: i.metadata.clone(), user_data: i.spec.user_data.clone() }))
            .collect();
        let mut view = self.view.write().unwrap_or_else(|p| p.into_inner());
        view.network = intent.network.clone();
        view.instances = instances;
    }

    /// The instance behind a connection, if it is one of this host's.
    fn caller(&self, c: &Caller) -> Option<(String, Answers)> {
        let (IpAddr::V4(local), IpAddr::V4(peer)) = (c.local.ip(), c.peer.ip()) else { return None };
        let view = self.view.read().unwrap_or_else(|p| p.into_inner());
        let (_, id) = view.network.as_ref()?.metadata_caller(local, peer)?;
        let answers = view.instances.get(id)?;
        Some((id.to_string(), answers.clone()))
    }

    /// Answers one request.
    pub fn answer(&self, caller: &Caller, method: &Method, path: &str, headers: &HeaderMap, now: Instant) -> Reply {
        let Some((id, answers)) = self.caller(caller) else {
            tracing::debug!(peer = %caller.peer, local = %caller.local, "metadata request from no known instance");
            return Reply::status(StatusCode::FORBIDDEN);
        };
        let path = percent_decode(path);
        if *method == Method::PUT {
            let is_token = VERSIONS.iter().any(|v| path == format!("/{v}/api/token"));
            return if is_token {
                self.issue_token(&id, headers, now)
            } else {
                Reply::status(StatusCode::METHOD_NOT_ALLOWED)
            };
        }
        if *method != Method::GET && *method != Method::HEAD {
            return Reply::status(StatusCode::METHOD_NOT_ALLOWED);
        }
        if let Some(token) = headers.get(TOKEN_HEADER) {
            if !self.token_valid(token, &id, now) {
                return Reply::status(StatusCode::UNAUTHORIZED);
            }
        }
        read(&answers, &path)
    }

    fn issue_token(&self, instance_id: &str, headers: &HeaderMap, now: Instant) -> Reply {
        if headers.contains_key("x-forwarded-for") {
            return Reply::status(StatusCode::FORBIDDEN);
        }
        let ttl =
            headers.get(TOKEN_TTL_HEADER).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok());
        let Some(ttl) = ttl.filter(|t| (1..=MAX_TOKEN_TTL).contains(t)) else {
            return Reply::status(StatusCode::BAD_REQUEST);
        };
        let token = new_token();
        let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        tokens.retain(|_, t| t.expires > now);
        if tokens.len() >= MAX_TOKENS {
            if let Some(k) = tokens.iter().min_by_key(|(_, t)| t.expires).map(|(k, _)| k.clone()) {
                tokens.remove(&k);
            }
        }
        tokens.insert(
            token.clone(),
            Token { instance_id: instance_id.to_string(), expires: now + Duration::from_secs(ttl) },
        );
        Reply { status: StatusCode::OK, body: token.into_bytes(), headers: vec![(TOKEN_TTL_HEADER, ttl.to_string())] }
    }

    fn token_valid(&self, token: &HeaderValue, instance_id: &str, now: Instant) -> bool {
        let Ok(token) = token.to_str() else { return false };
        let tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        tokens.get(token).is_some_and(|t| t.instance_id == instance_id && t.expires > now)
    }
}

fn new_token() -> String {
    let bytes: [u8; 24] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A GET of `path` for an instance with `answers`.
fn read(answers: &Answers, path: &str) -> Reply {
    let trimmed = path.trim_start_matches('/');
    if trimmed.is_empty() {
        return Reply::ok(VERSIONS.join("\n"));
    }
    let (version, rest) = trimmed.split_once('/').unwrap_or((trimmed, ""));
    if !VERSIONS.contains(&version) {
        return Reply::status(StatusCode::NOT_FOUND);
    }
    let (section, item) = rest.split_once('/').unwrap_or((rest, ""));
    match section {
        "" => {
            let mut top = vec!["meta-data"];
            if answers.user_data.is_some() {
                top.push("user-data");
            }
            Reply::ok(top.join("\n"))
        }
        "meta-data" => meta_data(&answers.items, item),
        "user-data" if item.is_empty() => match &answers.user_data {
            Some(ud) => Reply::ok(ud.clone()),
            None => Reply::status(StatusCode::NOT_FOUND),
        },
        _ => Reply::status(StatusCode::NOT_FOUND),
    }
}

/// An item's value, or a directory's listing (`dir/` names a subdirectory).
fn meta_data(items: &BTreeMap<String, String>, item: &str) -> Reply {
    let key = item.trim_end_matches('/');
    if !key.is_empty() && !item.ends_with('/') {
        if let Some(v) = items.get(key) {
            return Reply::ok(v.clone());
        }
    }
    if key.split('/').any(|s| s.is_empty()) && !key.is_empty() {
        return Reply::status(StatusCode::NOT_FOUND);
    }
    let prefix = if key.is_empty() { String::new() } else { format!("{key}/") };
    let entries: BTreeSet<String> = items
        .keys()
        .filter_map(|k| k.strip_prefix(&prefix))
        .filter(|rest| !rest.is_empty())
        .map(|rest| match rest.split_once('/') {
            Some((dir, _)) => format!("{dir}/"),
            None => rest.to_string(),
        })
        .collect();
    if entries.is_empty() {
        return Reply::status(StatusCode::NOT_FOUND);
    }
    Reply::ok(entries.into_iter().collect::<Vec<_>>().join("\n"))
}

/// `%XX` escapes decoded (MAC addresses in paths may arrive as `%3A`); anything malformed is
/// kept as it was.
fn percent_decode(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn handle(
    State(svc): State<Arc<Metadata>>,
    ConnectInfo(caller): ConnectInfo<Caller>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let reply = svc.answer(&caller, &method, uri.path(), &headers, Instant::now());
    let mut res = Response::new(Body::from(reply.body));
    *res.status_mut() = reply.status;
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    for (name, value) in reply.headers {
        if let Ok(v) = HeaderValue::from_str(&value) {
            res.headers_mut().insert(name, v);
        }
    }
    res
}

/// Serves the metadata service on `0.0.0.0:<port>` of the calling thread's network namespace
/// (the host's) while `port` says so; follows changes of the port, and stops when it is `None`.
pub async fn serve(svc: Arc<Metadata>, mut port: tokio::sync::watch::Receiver<Option<u16>>) {
    loop {
        let current = *port.borrow_and_update();
        let Some(p) = current else {
            if port.changed().await.is_err() {
                return;
            }
            continue;
        };
        let listener = match tokio::net::TcpListener::bind((std::net::Ipv4Addr::UNSPECIFIED, p)).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(port = p, error = %e, "cannot listen for metadata requests; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                    r = port.changed() => if r.is_err() { return },
                }
                continue;
            }
        };
        tracing::info!(port = p, "metadata service listening");
        let app = axum::Router::new().fallback(handle).with_state(svc.clone());
        let mut stop = port.clone();
        let served = axum::serve(listener, app.into_make_service_with_connect_info::<Caller>())
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|now| *now != Some(p)).await;
            })
            .await;
        if let Err(e) = served {
            tracing::warn!(port = p, error = %e, "the metadata service stopped");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        if port.has_changed().is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use feiyun_hostproto::net::*;
    use std::net::Ipv4Addr;

    fn answers(user_data: Option<&str>) -> Answers {
        let items = [
            ("instance-id", "i-1"),
            ("hostname", "web"),
            ("instance/instance-type", "ecs.g7.large"),
            ("instance/instance-name", "web-1"),
            ("network/interfaces/macs/02:00:00:00:01:0a/vpc-id", "vpc-1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        Answers { items, user_data: user_data.map(|u| u.as_bytes().to_vec()) }
    }

    fn get(a: &Answers, path: &str) -> (u16, String) {
        let r = read(a, path);
        (r.status.as_u16(), String::from_utf8_lossy(&r.body).into_owned())
    }

    #[test]
    fn items_directories_and_user_data() {
        let a = answers(Some("#!/bin/sh\necho hi\n"));
        assert_eq!(get(&a, "/latest/meta-data/instance-id"), (200, "i-1".into()));
        assert_eq!(get(&a, "/2016-01-01/meta-data/hostname"), (200, "web".into()));
        assert_eq!(get(&a, "/latest/meta-data/"), (200, "hostname\ninstance-id\ninstance/\nnetwork/".into()));
        assert_eq!(get(&a, "/latest/meta-data"), get(&a, "/latest/meta-data/"));
        assert_eq!(get(&a, "/latest/meta-data/instance/"), (200, "instance-name\ninstance-type".into()));
        assert_eq!(get(&a, "/latest/meta-data/instance"), get(&a, "/latest/meta-data/instance/"));
        assert_eq!(get(&a, "/latest/meta-data/network/interfaces/macs/"), (200, "02:00:00:00:01:0a/".into()));
        assert_eq!(
            get(&a, "/latest/meta-data/network/interfaces/macs/02:00:00:00:01:0a/vpc-id"),
            (200, "vpc-1".into())
        );
        assert_eq!(get(&a, "/latest/user-data"), (200, "#!/bin/sh\necho hi\n".into()));
        assert_eq!(get(&a, "/latest/"), (200, "meta-data\nuser-data".into()));
        assert_eq!(get(&a, "/"), (200, "2016-01-01\nlatest".into()));
        for missing in [
            "/latest/meta-data/nothing",
            "/latest/meta-data/instance-id/",
            "/latest/meta-data/instance//instance-type",
            "/latest/meta-data/instance-i",
            "/latest/user-data/x",
            "/1999-01-01/meta-data/instance-id",
            "/latest/dynamic/instance-identity/document",
        ] {
            assert_eq!(get(&a, missing).0, 404, "{missing}");
        }
        assert_eq!(get(&answers(None), "/latest/user-data").0, 404);
        assert_eq!(get(&answers(None), "/latest/"), (200, "meta-data".into()));
    }

    #[test]
    fn escapes_are_decoded() {
        assert_eq!(percent_decode("/a%3Ab%3a"), "/a:b:");
        assert_eq!(percent_decode("/a%zz%4"), "/a%zz%4");
        assert_eq!(percent_decode("%"), "%");
    }

    fn service() -> (Metadata, Caller) {
        let network = HostNetSpec {
            prefix: "h1".into(),
            underlay_ip: Ipv4Addr::LOCALHOST,
            mtu: 1450,
            metadata: Some(MetadataTarget { port: 8775 }),
            vpcs: vec![VpcSpec {
                vpc_id: "vpc-1".into(),
                vni: 7,
                cidr: "192.168.0.0/16".parse().expect("cidr"),
                transit: TransitLink {
                    host: Ipv4Addr::new(100, 127, 0, 1),
                    router: Ipv4Addr::new(100, 127, 0, 2),
                    prefix_len: 30,
                },
                vswitches: vec![],
                ports: vec![PortSpec {
                    instance_id: "i-1".into(),
                    vswitch_id: "vsw-1".into(),
                    mac: MacAddr([2, 0, 0, 0, 1, 10]),
                    ip: Ipv4Addr::new(192, 168, 1, 10),
                    security_group_ids: vec![],
                    egress_mbps: None,
                    eip: None,
                }],
                remote_ports: vec![],
                security_groups: vec![],
            }],
        };
        let svc = Metadata::default();
        {
            let mut v = svc.view.write().expect("lock");
            v.network = Some(network);
            v.instances.insert("i-1".into(), answers(Some("ud")));
        }
        let caller = Caller {
            local: SocketAddr::from(([100, 127, 0, 1], 8775)),
            peer: SocketAddr::from(([192, 168, 1, 10], 40000)),
        };
        (svc, caller)
    }

    #[test]
    fn only_known_instances_are_answered() {
        let (svc, me) = service();
        let now = Instant::now();
        let h = HeaderMap::new();
        let body = |r: Reply| (r.status.as_u16(), String::from_utf8_lossy(&r.body).into_owned());
        assert_eq!(body(svc.answer(&me, &Method::GET, "/latest/meta-data/instance-id", &h, now)), (200, "i-1".into()));
        let stranger = Caller { peer: SocketAddr::from(([192, 168, 1, 11], 1)), ..me };
        let wrong_vpc = Caller { local: SocketAddr::from(([100, 127, 9, 1], 8775)), ..me };
        let host =
            Caller { local: SocketAddr::from(([127, 0, 0, 1], 8775)), peer: SocketAddr::from(([127, 0, 0, 1], 1)) };
        for c in [stranger, wrong_vpc, host] {
            assert_eq!(svc.answer(&c, &Method::GET, "/latest/meta-data/instance-id", &h, now).status, 403);
        }
        assert_eq!(svc.answer(&me, &Method::POST, "/latest/meta-data/instance-id", &h, now).status, 405);
    }

    #[test]
    fn security_hardening_mode_tokens() {
        let (svc, me) = service();
        let now = Instant::now();
        let mut h = HeaderMap::new();
        assert_eq!(svc.answer(&me, &Method::PUT, "/latest/api/token", &h, now).status, 400, "no TTL");
        h.insert(TOKEN_TTL_HEADER, HeaderValue::from_static("21601"));
        assert_eq!(svc.answer(&me, &Method::PUT, "/latest/api/token", &h, now).status, 400, "TTL too long");
        h.insert(TOKEN_TTL_HEADER, HeaderValue::from_static("60"));
        let mut proxied = h.clone();
        proxied.insert("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        assert_eq!(svc.answer(&me, &Method::PUT, "/latest/api/token", &proxied, now).status, 403);
        let r = svc.answer(&me, &Method::PUT, "/latest/api/token", &h, now);
        assert_eq!(r.status, 200);
        let token = String::from_utf8(r.body).expect("text");
        let mut with = HeaderMap::new();
        with.insert(TOKEN_HEADER, HeaderValue::from_str(&token).expect("header"));
        let path = "/latest/meta-data/instance-id";
        assert_eq!(svc.answer(&me, &Method::GET, path, &with, now).status, 200);
        let later = now + Duration::from_secs(61);
        assert_eq!(svc.answer(&me, &Method::GET, path, &with, later).status, 401, "expired");
        with.insert(TOKEN_HEADER, HeaderValue::from_static("forged"));
        assert_eq!(svc.answer(&me, &Method::GET, path, &with, now).status, 401);
    }
}
