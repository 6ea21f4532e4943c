//! nftables: changes as one batch in `nft`'s own language, applied by the kernel as one
//! transaction, and typed reads of what exists through its JSON output (`nft -j list`). Batches
//! are written as text because `nft` reads it several times faster than the same batch in JSON
//! (a thousand rules: about 10 ms of CPU against about 50). Every name and value written is
//! ours (prefix, hashes, addresses, numbers), so nothing needs escaping. Callers run these inside
//! the namespace the table lives in (see [`crate::ns::Netns::run`]).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::error::{NetError, Result};
use crate::names::{self, ROUTER_TABLE, ROUTER_UPLINK, ROUTER_VXLAN};
use crate::sg::Compiled;
use crate::spec::{HostNetSpec, VpcSpec};

pub const METADATA_IP: &str = "100.100.100.200";

/// Commands of one transaction, one per line.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Batch {
    lines: Vec<String>,
}

impl Batch {
    pub fn push(&mut self, line: impl Into<String>) {
        self.lines.push(line.into());
    }
    pub fn len(&self) -> usize {
        self.lines.len()
    }
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }
    pub fn text(&self) -> String {
        let mut t = self.lines.join("\n");
        t.push('\n');
        t
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
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| nft_error(format!("cannot start: {e}")))?;
    let text = batch.text();
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
    /// The batch that, built on this very state, would change nothing (this process wrote the
    /// table and knows it): it need not be sent. Empty when the table was listed.
    pub batch: String,
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
        batch: String::new(),
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
    Existing { chains, sets: compiled.sets.keys().cloned().collect(), counters, batch: String::new() }
}

/// `{ "a", "b" }`: a set of quoted names.
fn names_set<S: AsRef<str>>(names: &[S]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("\"{}\"", n.as_ref())).collect();
    format!("{{ {} }}", quoted.join(", "))
}

/// `{ a, b }`: a set of plain values.
fn values_set<S: AsRef<str>>(values: &[S]) -> String {
    let v: Vec<&str> = values.iter().map(|x| x.as_ref()).collect();
    format!("{{ {} }}", v.join(", "))
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
    let t = format!("ip {ROUTER_TABLE}");
    let mut b = Batch::default();
    b.push(format!("add table {t}"));
    let base = [
        ("forward", "filter", "forward", 0, "drop"),
        ("input", "filter", "input", 0, "drop"),
        ("prerouting", "nat", "prerouting", -100, "accept"),
        ("postrouting", "nat", "postrouting", 100, "accept"),
    ];
    for (name, kind, hook, prio, policy) in base {
        b.push(format!("add chain {t} {name} {{ type {kind} hook {hook} priority {prio}; policy {policy}; }}"));
        b.push(format!("flush chain {t} {name}"));
    }
    // Maps and sets with fixed names: declared, emptied and refilled.
    let maps = [
        ("egress", "map", "ifname : verdict"),
        ("ingress", "map", "ifname : verdict"),
        ("spoof", "set", "ifname . ipv4_addr"),
        ("pub_in", "map", "ipv4_addr : counter"),
        ("pub_out", "map", "ipv4_addr : counter"),
        ("eip_dnat", "map", "ipv4_addr : ipv4_addr"),
        ("eip_snat", "map", "ipv4_addr : ipv4_addr"),
        ("shape", "map", "ipv4_addr : classid"),
    ];
    for (name, kind, ty) in maps {
        b.push(format!("add {kind} {t} {name} {{ type {ty}; }}"));
        b.push(format!("flush {kind} {t} {name}"));
    }
    let mut elems: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut counters = BTreeSet::new();
    for (i, p) in vpc.ports.iter().enumerate() {
        let pif = names::port_if(&p.instance_id);
        if let Some((egress, ingress)) = compiled.dispatch.get(&pif) {
            elems.entry("egress").or_default().push(format!("\"{pif}\" : jump {egress}"));
            elems.entry("ingress").or_default().push(format!("\"{pif}\" : jump {ingress}"));
        }
        elems.entry("spoof").or_default().push(format!("\"{pif}\" . {}", p.ip));
        let (cin, cout) = counter_names(&pif);
        elems.entry("pub_in").or_default().push(format!("{} : \"{cin}\"", p.ip));
        elems.entry("pub_out").or_default().push(format!("{} : \"{cout}\"", p.ip));
        counters.insert(cin);
        counters.insert(cout);
        if let Some(eip) = p.eip {
            elems.entry("eip_dnat").or_default().push(format!("{eip} : {}", p.ip));
            elems.entry("eip_snat").or_default().push(format!("{} : {eip}", p.ip));
        }
        if p.egress_mbps.is_some() {
            elems.entry("shape").or_default().push(format!("{} : 1:{:x}", p.ip, shape_class(i)));
        }
    }
    for name in &counters {
        b.push(format!("add counter {t} {name}"));
    }
    // Security-group chains: create the new ones; member sets: declare, empty, refill.
    for (name, ips) in &compiled.sets {
        b.push(format!("add set {t} {name} {{ type ipv4_addr; }}"));
        b.push(format!("flush set {t} {name}"));
        if !ips.is_empty() {
            let list: Vec<String> = ips.iter().map(Ipv4Addr::to_string).collect();
            b.push(format!("add element {t} {name} {}", values_set(&list)));
        }
    }
    for chain in &compiled.chains {
        if existing.chains.contains(&chain.name) {
            continue;
        }
        // Flushed after declaring: if it existed after all, it is not doubled.
        b.push(format!("add chain {t} {}", chain.name));
        b.push(format!("flush chain {t} {}", chain.name));
        for rule in crate::sg::render(vpc, chain) {
            b.push(format!("add rule {t} {} {rule}", chain.name));
        }
    }
    for (name, list) in &elems {
        b.push(format!("add element {t} {name} {}", values_set(list)));
    }
    base_rules(&mut b, &t, host, vpc);
    // Whatever is no longer referenced goes last, after the maps that pointed at it were refilled.
    let keep: BTreeSet<&str> = compiled.chains.iter().map(|c| c.name.as_str()).collect();
    for name in existing.chains.iter().filter(|n| n.starts_with("c_") && !keep.contains(n.as_str())) {
        b.push(format!("delete chain {t} {name}"));
    }
    for name in existing.sets.iter().filter(|n| n.starts_with("m_") && !compiled.sets.contains_key(*n)) {
        b.push(format!("delete set {t} {name}"));
    }
    for name in existing.counters.iter().filter(|n| !counters.contains(*n)) {
        b.push(format!("delete counter {t} {name}"));
    }
    b
}

fn base_rules(b: &mut Batch, t: &str, host: &HostNetSpec, vpc: &VpcSpec) {
    let (up, meta_addr) = (ROUTER_UPLINK, vpc.transit.host);
    let mut fwd = vec![
        // Anti-spoofing: a port only sends from its own address.
        format!("iifname != {} iifname . ip saddr != @spoof drop", names_set(&[ROUTER_UPLINK, ROUTER_VXLAN])),
        // Public traffic counters (metadata excluded) and shaping class, before any verdict.
        format!("oifname \"{up}\" ip daddr != {meta_addr} counter name ip saddr map @pub_out"),
        format!("iifname \"{up}\" ip saddr != {meta_addr} counter name ip daddr map @pub_in"),
        format!("oifname \"{up}\" meta priority set ip saddr map @shape"),
        "ct state established,related accept".to_string(),
        "ct state invalid drop".to_string(),
    ];
    if let Some(m) = host.metadata {
        fwd.push(format!("ip daddr {meta_addr} tcp dport {} ct status dnat accept", m.port));
    }
    fwd.extend([
        format!("ip daddr {meta_addr} drop"),
        "iifname vmap @egress".to_string(),
        "oifname vmap @ingress".to_string(),
        "iifname \"i*\" accept".to_string(),
        "oifname \"i*\" accept".to_string(),
    ]);
    for r in fwd {
        b.push(format!("add rule {t} forward {r}"));
    }
    for r in ["ct state established,related accept", "iifname \"lo\" accept", "meta l4proto icmp accept"] {
        b.push(format!("add rule {t} input {r}"));
    }
    b.push(format!("add rule {t} prerouting iifname \"{up}\" dnat to ip daddr map @eip_dnat"));
    if let Some(m) = host.metadata {
        b.push(format!(
            "add rule {t} prerouting iifname \"i*\" ip daddr {METADATA_IP} tcp dport 80 dnat to {meta_addr}:{}",
            m.port
        ));
    }
    // Metadata requests keep the private source: it tells the server who asks.
    b.push(format!("add rule {t} postrouting oifname \"{up}\" ip daddr {meta_addr} return"));
    b.push(format!("add rule {t} postrouting oifname \"{up}\" snat to ip saddr map @eip_snat"));
    b.push(format!("add rule {t} postrouting oifname \"{up}\" snat to {}", vpc.transit.router));
}

/// The host namespace's table: only metadata (and ICMP) from routers reaches the host itself,
/// and traffic the routers send out from their transit address is masqueraded. A host without
/// VPCs has no table at all.
pub fn host_batch(host: &HostNetSpec) -> Batch {
    let t = format!("ip {}", names::host_table(&host.prefix));
    let mut b = Batch::default();
    b.push(format!("add table {t}"));
    if host.vpcs.is_empty() {
        // Declared first, so that deleting it is never an error.
        b.push(format!("delete table {t}"));
        return b;
    }
    b.push(format!("flush table {t}"));
    b.push(format!("add chain {t} input {{ type filter hook input priority 0; policy accept; }}"));
    b.push(format!("add chain {t} postrouting {{ type nat hook postrouting priority 100; policy accept; }}"));
    let transits: Vec<String> =
        host.vpcs.iter().map(|v| names::host_link(&host.prefix, names::HostLink::Transit, v.vni)).collect();
    let routers: Vec<String> = host.vpcs.iter().map(|v| v.transit.router.to_string()).collect();
    let hosts: Vec<String> = host.vpcs.iter().map(|v| v.transit.host.to_string()).collect();
    let from_router = format!("iifname {}", names_set(&transits));
    let mut input = vec![
        format!("{from_router} ct state established,related accept"),
        format!("{from_router} meta l4proto icmp accept"),
    ];
    if let Some(m) = host.metadata {
        input.push(format!("{from_router} ip daddr {} tcp dport {} accept", values_set(&hosts), m.port));
    }
    input.push(format!("{from_router} drop"));
    for r in input {
        b.push(format!("add rule {t} input {r}"));
    }
    b.push(format!(
        "add rule {t} postrouting oifname != {} ip saddr {} masquerade",
        names_set(&transits),
        values_set(&routers)
    ));
    b
}
