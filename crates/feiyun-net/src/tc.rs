//! Egress bandwidth caps (`InternetMaxBandwidthOut`): an HTB qdisc (handle 1:) on a router's
//! uplink with one class per capped instance. The router's firewall sets each packet's priority
//! to its instance's class (`meta priority set`), which HTB uses directly, so no tc filters
//! exist. What exists is read through netlink; changes go through `tc -batch`.

use std::io::Write;
use std::process::{Command, Stdio};

use futures::TryStreamExt;
use rtnetlink::packet_route::tc::{TcAttribute, TcHandle, TcMessage};

use crate::error::{nl, NetError, Result};
use crate::nl as links;
use crate::ns::Netns;

fn kind(m: &TcMessage) -> Option<&str> {
    m.attributes.iter().find_map(|a| if let TcAttribute::Kind(k) = a { Some(k.as_str()) } else { None })
}

/// Makes `dev`'s classes exactly `want` (class minor, Mbit/s). Returns the structural changes.
pub fn converge(ns: &Netns, dev: &str, want: &[(u16, u32)]) -> Result<Vec<String>> {
    let dev_owned = dev.to_string();
    let seen = ns.netlink(|h| async move {
        let Some(index) = links::link_index(&h, &dev_owned).await? else { return Ok(None) };
        let index =
            i32::try_from(index).map_err(|_| NetError::Parse { what: "ifindex".into(), detail: index.to_string() })?;
        let qdiscs: Vec<TcMessage> =
            h.qdisc().get().index(index).execute().try_collect().await.map_err(nl("dump qdiscs"))?;
        let root_htb = qdiscs.iter().any(|q| {
            q.header.parent == TcHandle::ROOT
                && q.header.handle == TcHandle { major: 1, minor: 0 }
                && kind(q) == Some("htb")
        });
        let classes: Vec<TcMessage> = if root_htb {
            h.traffic_class(index).get().execute().try_collect().await.map_err(nl("dump classes"))?
        } else {
            Vec::new()
        };
        let minors: Vec<u16> =
            classes.iter().filter(|c| c.header.handle.major == 1).map(|c| c.header.handle.minor).collect();
        Ok(Some((root_htb, minors)))
    })?;
    let Some((root_htb, have)) = seen else { return Ok(Vec::new()) };
    let mut lines = Vec::new();
    let mut changes = Vec::new();
    if want.is_empty() {
        if root_htb {
            lines.push(format!("qdisc del dev {dev} root"));
            changes.push(format!("remove shaping on {dev}"));
        }
    } else {
        if !root_htb {
            lines.push(format!("qdisc replace dev {dev} root handle 1: htb"));
            changes.push(format!("add shaping on {dev}"));
        }
        for (minor, mbps) in want {
            // Replaced every time: a changed rate is applied, an unchanged one costs nothing.
            lines.push(format!(
                "class replace dev {dev} parent 1: classid 1:{minor:x} htb rate {mbps}mbit ceil {mbps}mbit"
            ));
            if !have.contains(minor) {
                changes.push(format!("shape class 1:{minor:x} at {mbps} Mbit/s"));
            }
        }
        for minor in have.iter().filter(|m| !want.iter().any(|(w, _)| w == *m)) {
            lines.push(format!("class del dev {dev} classid 1:{minor:x}"));
            changes.push(format!("remove class 1:{minor:x}"));
        }
    }
    if lines.is_empty() {
        return Ok(changes);
    }
    let script = lines.join("\n") + "\n";
    ns.run(|| run_batch(&script))??;
    Ok(changes)
}

fn run_batch(script: &str) -> Result<()> {
    let fail = |message: String| NetError::Tool { tool: "tc".into(), message };
    let mut child = Command::new("tc")
        .args(["-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("cannot start: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(script.as_bytes()).map_err(|e| fail(format!("cannot write: {e}")))?;
    }
    let out = child.wait_with_output().map_err(|e| fail(format!("cannot wait: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(fail(String::from_utf8_lossy(&out.stderr).trim().to_string()))
    }
}
