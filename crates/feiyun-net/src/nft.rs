//! nftables through its JSON interface (`nft -j`): one batch per change, applied by the kernel as
//! one transaction, and typed reads of what exists. Callers run these inside the namespace the
//! table lives in (see [`crate::ns::Netns::run`]).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

use crate::error::{NetError, Result};
use crate::names::{self, ROUTER_TABLE, ROUTER_UPLINK, ROUTER_VXLAN};
use crate::sg::Compiled;
use crate::spec::{HostNetSpec, VpcSpec};

pub const METADATA_IP: &str = "100.100.100.200";

/// Commands of one transaction.
#[derive(Debug, Default)]
pub struct Batch {
    cmds: Vec<Value>,
}

impl Batch {
    pub fn push(&mut self, verb: &str, object: Value) {
        self.cmds.push(json!({ verb: object }));
    }
    pub fn len(&self) -> usize {
        self.cmds.len()
    }
    pub fn is_empty(&self) -> bool {
        self.cmds.is_empty()
    }
    pub fn to_json(&self) -> String {
        json!({ "nftables": self.cmds }).to_string()
    }
}

fn nft_error(message: String) -> NetError {
    NetError::Tool { tool: "nft".into(), message }
}

/// Applies a batch in the calling thread's namespace.
pub fn run(batch: &Batch) -> Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let mut child = Command::new("nft")
        .args(["-j", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| nft_error(format!("cannot start: {e}")))?;
    let text = batch.to_json();
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(text.as_bytes()).map_err(|e| nft_error(format!("cannot write batch: {e}")))?;
    }
    let out = child.wait_with_output().map_err(|e| nft_error(format!("cannot wait: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(nft_error(String::from_utf8_lossy(&out.stderr).trim().to_string()))
    }
}

/// `nft -j list <what…>`: the objects of the answer (metainfo dropped).
pub fn list(what: &[&str]) -> Result<Vec<Value>> {
    let out = Command::new("nft")
        .arg("-j")
        .arg("list")
        .args(what)
        .output()
        .map_err(|e| nft_error(format!("cannot start: {e}")))?;
    if !out.status.success() {
        return Err(nft_error(String::from_utf8_lossy(&out.stderr).trim().to_string()));
    }
    let doc: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| NetError::Parse { what: "nft JSON".into(), detail: e.to_string() })?;
    Ok(doc.get("nftables").and_then(Value::as_array).cloned().unwrap_or_default())
}

/// Names of objects of one kind (`chain`, `set`, `counter`, `table`) in `family`/`table`.
pub fn names_of(objects: &[Value], kind: &str, family: &str, table: Option<&str>) -> BTreeSet<String> {
    objects
        .iter()
        .filter_map(|o| o.get(kind))
        .filter(|o| o.get("family").and_then(Value::as_str) == Some(family))
        .filter(|o| table.is_none() || o.get("table").and_then(Value::as_str) == table)
        .filter_map(|o| o.get("name").and_then(Value::as_str).map(str::to_string))
        .collect()
}

/// Named counters of a table: name → (packets, bytes).
pub fn counters(table: &str) -> Result<BTreeMap<String, (u64, u64)>> {
    let mut out = BTreeMap::new();
    for o in list(&["counters", "table", "ip", table])? {
        if let Some(c) = o.get("counter") {
            let name = c.get("name").and_then(Value::as_str);
            let packets = c.get("packets").and_then(Value::as_u64);
            let bytes = c.get("bytes").and_then(Value::as_u64);
            if let (Some(n), Some(p), Some(b)) = (name, packets, bytes) {
                out.insert(n.to_string(), (p, b));
            }
        }
    }
    Ok(out)
}

/// What already exists in a router's table, to decide what the batch adds and deletes.
#[derive(Debug, Default, Clone)]
pub struct Existing {
    pub chains: BTreeSet<String>,
    pub sets: BTreeSet<String>,
    pub counters: BTreeSet<String>,
}

pub fn existing_router() -> Result<Existing> {
    // The table always has its base chains once it exists; none listed means no table.
    let chains = names_of(&list(&["chains", "ip"])?, "chain", "ip", Some(ROUTER_TABLE));
    if chains.is_empty() {
        return Ok(Existing::default());
    }
    Ok(Existing {
        chains,
        sets: names_of(&list(&["sets", "ip"])?, "set", "ip", Some(ROUTER_TABLE)),
        counters: counters(ROUTER_TABLE)?.into_keys().collect(),
    })
}

/// What a router's table holds after `router_batch` succeeded.
pub fn after(compiled: &Compiled, vpc: &VpcSpec) -> Existing {
    let mut chains: BTreeSet<String> = compiled.chains.iter().map(|c| c.name.clone()).collect();
    chains.extend(["forward", "input", "prerouting", "postrouting"].map(String::from));
    let counters = vpc
        .ports
        .iter()
        .flat_map(|p| {
            let (i, o) = counter_names(&names::port_if(&p.instance_id));
            [i, o]
        })
        .collect();
    Existing { chains, sets: compiled.sets.keys().cloned().collect(), counters }
}

fn obj(table: &str, name: &str) -> Value {
    json!({"family": "ip", "table": table, "name": name})
}

fn with(mut base: Value, extra: Value) -> Value {
    if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    base
}

fn rule(table: &str, chain: &str, expr: Vec<Value>) -> Value {
    json!({"family": "ip", "table": table, "chain": chain, "expr": expr})
}

fn meta(key: &str) -> Value {
    json!({"meta": {"key": key}})
}

fn ip(field: &str) -> Value {
    json!({"payload": {"protocol": "ip", "field": field}})
}

fn eq(left: Value, right: Value) -> Value {
    json!({"match": {"op": "==", "left": left, "right": right}})
}

fn ne(left: Value, right: Value) -> Value {
    json!({"match": {"op": "!=", "left": left, "right": right}})
}

fn ct_in(key: &str, right: Value) -> Value {
    json!({"match": {"op": "in", "left": {"ct": {"key": key}}, "right": right}})
}

/// Names of per-port public traffic counters.
pub fn counter_names(port_if: &str) -> (String, String) {
    (format!("in_{port_if}"), format!("out_{port_if}"))
}

/// Class of a shaped port on the uplink's HTB qdisc (handle 1:).
pub fn shape_class(index: usize) -> u16 {
    u16::try_from(index + 1).unwrap_or(u16::MAX)
}

/// The router's whole firewall and NAT for one VPC, as one batch. Base chains and maps are
/// rewritten; security-group chains and member sets are content-addressed (see [`crate::sg`]).
pub fn router_batch(host: &HostNetSpec, vpc: &VpcSpec, compiled: &Compiled, existing: &Existing) -> Batch {
    let t = ROUTER_TABLE;
    let mut b = Batch::default();
    b.push("add", json!({"table": {"family": "ip", "name": t}}));
    let base = [
        ("forward", "filter", "forward", 0, "drop"),
        ("input", "filter", "input", 0, "drop"),
        ("prerouting", "nat", "prerouting", -100, "accept"),
        ("postrouting", "nat", "postrouting", 100, "accept"),
    ];
    for (name, kind, hook, prio, policy) in base {
        b.push(
            "add",
            json!({"chain": with(obj(t, name), json!({"type": kind, "hook": hook, "prio": prio, "policy": policy}))}),
        );
        b.push("flush", json!({"chain": obj(t, name)}));
    }
    // Maps and sets with fixed names: declared, emptied and refilled.
    let maps = [
        ("egress", json!({"type": "ifname", "map": "verdict"})),
        ("ingress", json!({"type": "ifname", "map": "verdict"})),
        ("spoof", json!({"type": ["ifname", "ipv4_addr"]})),
        ("pub_in", json!({"type": "ipv4_addr", "map": "counter"})),
        ("pub_out", json!({"type": "ipv4_addr", "map": "counter"})),
        ("eip_dnat", json!({"type": "ipv4_addr", "map": "ipv4_addr"})),
        ("eip_snat", json!({"type": "ipv4_addr", "map": "ipv4_addr"})),
        ("shape", json!({"type": "ipv4_addr", "map": "classid"})),
    ];
    for (name, def) in &maps {
        let kind = if def.get("map").is_some() { "map" } else { "set" };
        b.push("add", json!({ kind: with(obj(t, name), def.clone()) }));
        b.push("flush", json!({ kind: obj(t, name) }));
    }
    let mut elems: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    let mut counters = BTreeSet::new();
    for (i, p) in vpc.ports.iter().enumerate() {
        let pif = names::port_if(&p.instance_id);
        if let Some((egress, ingress)) = compiled.dispatch.get(&pif) {
            elems.entry("egress").or_default().push(json!([pif, {"jump": {"target": egress}}]));
            elems.entry("ingress").or_default().push(json!([pif, {"jump": {"target": ingress}}]));
        }
        elems.entry("spoof").or_default().push(json!({"concat": [pif, p.ip.to_string()]}));
        let (cin, cout) = counter_names(&pif);
        elems.entry("pub_in").or_default().push(json!([p.ip.to_string(), cin]));
        elems.entry("pub_out").or_default().push(json!([p.ip.to_string(), cout]));
        counters.insert(cin);
        counters.insert(cout);
        if let Some(eip) = p.eip {
            elems.entry("eip_dnat").or_default().push(json!([eip.to_string(), p.ip.to_string()]));
            elems.entry("eip_snat").or_default().push(json!([p.ip.to_string(), eip.to_string()]));
        }
        if p.egress_mbps.is_some() {
            elems.entry("shape").or_default().push(json!([p.ip.to_string(), format!("1:{:x}", shape_class(i))]));
        }
    }
    for name in &counters {
        b.push("add", json!({"counter": obj(t, name)}));
    }
    // Security-group chains: create the new ones; member sets: declare, empty, refill.
    for (name, ips) in &compiled.sets {
        b.push("add", json!({"set": with(obj(t, name), json!({"type": "ipv4_addr"}))}));
        b.push("flush", json!({"set": obj(t, name)}));
        if !ips.is_empty() {
            let list: Vec<String> = ips.iter().map(Ipv4Addr::to_string).collect();
            b.push("add", json!({"element": with(obj(t, name), json!({"elem": list}))}));
        }
    }
    for chain in &compiled.chains {
        if existing.chains.contains(&chain.name) {
            continue;
        }
        // Flushed after declaring: if it existed after all, it is not doubled.
        b.push("add", json!({"chain": obj(t, &chain.name)}));
        b.push("flush", json!({"chain": obj(t, &chain.name)}));
        for expr in crate::sg::render(vpc, chain) {
            b.push("add", json!({"rule": rule(t, &chain.name, expr)}));
        }
    }
    for (name, list) in &elems {
        b.push("add", json!({"element": with(obj(t, name), json!({"elem": list}))}));
    }
    base_rules(&mut b, host, vpc);
    // Whatever is no longer referenced goes last, after the maps that pointed at it were refilled.
    let keep: BTreeSet<&str> = compiled.chains.iter().map(|c| c.name.as_str()).collect();
    for name in existing.chains.iter().filter(|n| n.starts_with("c_") && !keep.contains(n.as_str())) {
        b.push("delete", json!({"chain": obj(t, name)}));
    }
    for name in existing.sets.iter().filter(|n| n.starts_with("m_") && !compiled.sets.contains_key(*n)) {
        b.push("delete", json!({"set": obj(t, name)}));
    }
    for name in existing.counters.iter().filter(|n| !counters.contains(*n)) {
        b.push("delete", json!({"counter": obj(t, name)}));
    }
    b
}

fn base_rules(b: &mut Batch, host: &HostNetSpec, vpc: &VpcSpec) {
    let t = ROUTER_TABLE;
    let up = json!(ROUTER_UPLINK);
    let ports = json!("i*");
    let meta_addr = json!(vpc.transit.host.to_string());
    let mut fwd = vec![
        // Anti-spoofing: a port only sends from its own address.
        vec![
            ne(meta("iifname"), json!({"set": [ROUTER_UPLINK, ROUTER_VXLAN]})),
            ne(json!({"concat": [meta("iifname"), ip("saddr")]}), json!("@spoof")),
            json!({"drop": null}),
        ],
        // Public traffic counters (metadata excluded) and shaping class, before any verdict.
        vec![
            eq(meta("oifname"), up.clone()),
            ne(ip("daddr"), meta_addr.clone()),
            json!({"counter": {"map": {"key": ip("saddr"), "data": "@pub_out"}}}),
        ],
        vec![
            eq(meta("iifname"), up.clone()),
            ne(ip("saddr"), meta_addr.clone()),
            json!({"counter": {"map": {"key": ip("daddr"), "data": "@pub_in"}}}),
        ],
        vec![
            eq(meta("oifname"), up.clone()),
            json!({"mangle": {"key": meta("priority"), "value": {"map": {"key": ip("saddr"), "data": "@shape"}}}}),
        ],
        vec![ct_in("state", json!(["established", "related"])), json!({"accept": null})],
        vec![ct_in("state", json!("invalid")), json!({"drop": null})],
    ];
    if let Some(m) = host.metadata {
        fwd.push(vec![
            eq(ip("daddr"), meta_addr.clone()),
            eq(json!({"payload": {"protocol": "tcp", "field": "dport"}}), json!(m.port)),
            ct_in("status", json!("dnat")),
            json!({"accept": null}),
        ]);
    }
    fwd.extend([
        vec![eq(ip("daddr"), meta_addr.clone()), json!({"drop": null})],
        vec![json!({"vmap": {"key": meta("iifname"), "data": "@egress"}})],
        vec![json!({"vmap": {"key": meta("oifname"), "data": "@ingress"}})],
        vec![eq(meta("iifname"), ports.clone()), json!({"accept": null})],
        vec![eq(meta("oifname"), ports.clone()), json!({"accept": null})],
    ]);
    for e in fwd {
        b.push("add", json!({"rule": rule(t, "forward", e)}));
    }
    let input = [
        vec![ct_in("state", json!(["established", "related"])), json!({"accept": null})],
        vec![eq(meta("iifname"), json!("lo")), json!({"accept": null})],
        vec![eq(meta("l4proto"), json!("icmp")), json!({"accept": null})],
    ];
    for e in input {
        b.push("add", json!({"rule": rule(t, "input", e)}));
    }
    let mut pre = vec![vec![
        eq(meta("iifname"), up.clone()),
        json!({"dnat": {"addr": {"map": {"key": ip("daddr"), "data": "@eip_dnat"}}}}),
    ]];
    if let Some(m) = host.metadata {
        pre.push(vec![
            eq(meta("iifname"), ports.clone()),
            eq(ip("daddr"), json!(METADATA_IP)),
            eq(json!({"payload": {"protocol": "tcp", "field": "dport"}}), json!(80)),
            json!({"dnat": {"addr": vpc.transit.host.to_string(), "port": m.port}}),
        ]);
    }
    for e in pre {
        b.push("add", json!({"rule": rule(t, "prerouting", e)}));
    }
    let post = [
        // Metadata requests keep the private source: it tells the server who asks.
        vec![eq(meta("oifname"), up.clone()), eq(ip("daddr"), meta_addr), json!({"return": null})],
        vec![
            eq(meta("oifname"), up.clone()),
            json!({"snat": {"addr": {"map": {"key": ip("saddr"), "data": "@eip_snat"}}}}),
        ],
        vec![eq(meta("oifname"), up), json!({"snat": {"addr": vpc.transit.router.to_string()}})],
    ];
    for e in post {
        b.push("add", json!({"rule": rule(t, "postrouting", e)}));
    }
}

/// The host namespace's table: only metadata (and ICMP) from routers reaches the host itself,
/// and traffic the routers send out from their transit address is masqueraded.
pub fn host_batch(host: &HostNetSpec) -> Batch {
    let t = names::host_table(&host.prefix);
    let mut b = Batch::default();
    b.push("add", json!({"table": {"family": "ip", "name": t}}));
    b.push("flush", json!({"table": {"family": "ip", "name": t}}));
    b.push("add", json!({"chain": with(obj(&t, "input"), json!({"type": "filter", "hook": "input", "prio": 0, "policy": "accept"}))}));
    b.push(
        "add",
        json!({"chain": with(obj(&t, "postrouting"), json!({"type": "nat", "hook": "postrouting", "prio": 100, "policy": "accept"}))}),
    );
    let transits: Vec<String> =
        host.vpcs.iter().map(|v| names::host_link(&host.prefix, names::HostLink::Transit, v.vni)).collect();
    let routers: Vec<String> = host.vpcs.iter().map(|v| v.transit.router.to_string()).collect();
    let hosts: Vec<String> = host.vpcs.iter().map(|v| v.transit.host.to_string()).collect();
    if transits.is_empty() {
        return b;
    }
    let from_router = eq(meta("iifname"), json!({"set": transits}));
    let mut input = vec![
        vec![from_router.clone(), ct_in("state", json!(["established", "related"])), json!({"accept": null})],
        vec![from_router.clone(), eq(meta("l4proto"), json!("icmp")), json!({"accept": null})],
    ];
    if let Some(m) = host.metadata {
        input.push(vec![
            from_router.clone(),
            eq(ip("daddr"), json!({"set": hosts})),
            eq(json!({"payload": {"protocol": "tcp", "field": "dport"}}), json!(m.port)),
            json!({"accept": null}),
        ]);
    }
    input.push(vec![from_router, json!({"drop": null})]);
    for e in input {
        b.push("add", json!({"rule": rule(&t, "input", e)}));
    }
    let outside = ne(
        meta("oifname"),
        json!({"set": host.vpcs.iter().map(|v| names::host_link(&host.prefix, names::HostLink::Transit, v.vni)).collect::<Vec<_>>()}),
    );
    b.push(
        "add",
        json!({"rule": rule(&t, "postrouting", vec![outside, eq(ip("saddr"), json!({"set": routers})), json!({"masquerade": null})])}),
    );
    b
}
