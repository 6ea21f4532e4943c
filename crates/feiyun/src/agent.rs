//! `feiyun agent`: a host joining a region over the network, or `--hollow N` simulated hosts
//! that speak the real protocol and run nothing (for measuring the control plane at scale).

use std::net::{IpAddr, Ipv4Addr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use feiyun_agent::{Agent, AgentOptions};
use feiyun_domain::host::Overcommit;
use feiyun_hostproto::http::HttpLink;
use feiyun_hostproto::{ControlLink, HostSpec, PROTOCOL_VERSION};
use feiyun_runtime::images::{find_busybox, ImageStore};
use feiyun_runtime::runc::{find_runc, RuncRuntime};
use feiyun_runtime::sim::SimRuntime;
use feiyun_server::DataDir;

#[derive(Args)]
pub struct AgentArgs {
    /// The region's endpoint, e.g. http://10.0.0.1:8080 (the API's address).
    #[arg(long)]
    join: String,
    /// A join token from `feiyun host token create` (needed the first time).
    #[arg(long, env = "FEIYUN_JOIN_TOKEN")]
    token: Option<String>,
    /// The zone to join (a token made for a zone decides it).
    #[arg(long)]
    zone: Option<String>,
    /// Where the host keeps its credential, images and instances.
    #[arg(long, default_value = "/var/lib/feiyun-agent", env = "FEIYUN_AGENT_DATA_DIR")]
    data_dir: PathBuf,
    /// The host's name in the region (default: this machine's hostname).
    #[arg(long)]
    name: Option<String>,
    /// Run this many simulated (hollow) hosts instead: they register, heartbeat, poll and report
    /// like real ones and start nothing. Shown as simulated everywhere.
    #[arg(long)]
    hollow: Option<u32>,
    /// Physical CPUs (default: this machine's; 32 for hollow hosts).
    #[arg(long)]
    cpus: Option<u32>,
    /// Physical memory in MiB (default: this machine's; 131072 for hollow hosts).
    #[arg(long)]
    memory_mib: Option<u64>,
    /// vCPUs offered per physical CPU (default 16 for a real host, 1 for hollow hosts).
    #[arg(long)]
    cpu_allocation_ratio: Option<f64>,
    /// Memory offered per MiB (default 1.5 for a real host, 1 for hollow hosts).
    #[arg(long)]
    memory_allocation_ratio: Option<f64>,
    /// GPUs, and their model.
    #[arg(long, default_value_t = 0)]
    gpus: u32,
    #[arg(long)]
    gpu_model: Option<String>,
    /// This host's IPv4 address on the network between hosts, where VPC traffic to its
    /// instances arrives (VXLAN). Default: the address this machine would send from to reach
    /// the control plane.
    #[arg(long)]
    underlay_ip: Option<Ipv4Addr>,
    /// The cgroup every instance of this host goes under (`<hierarchy>/<parent>/<instance>`).
    /// Agents that share one machine need different ones, or one would remove the other's
    /// cgroup for an instance id both have held (after an evacuation); `feiyun teardown` needs
    /// the same value.
    #[arg(long, default_value = DEFAULT_CGROUP_PARENT, value_parser = parse_cgroup_parent)]
    cgroup_parent: String,
}

/// The cgroup instances go under unless told otherwise (the embedded host's too).
pub const DEFAULT_CGROUP_PARENT: &str = "feiyun";

/// A relative cgroup path of plain names: `feiyun`, `feiyun/rack-1`.
pub fn parse_cgroup_parent(text: &str) -> Result<String, String> {
    let path = text.trim_matches('/');
    let ok = !path.is_empty()
        && path.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        });
    if ok {
        Ok(path.to_string())
    } else {
        Err(format!("{text:?}: a cgroup path of names made of letters, digits, '-', '_' and '.'"))
    }
}

pub fn run(args: AgentArgs) -> anyhow::Result<ExitCode> {
    crate::logging::init();
    if args.gpus > 0 && args.gpu_model.is_none() {
        anyhow::bail!("a host with GPUs needs --gpu-model");
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        let (_tx, stop) = feiyun_server::stop_on_signals();
        match args.hollow {
            Some(n) => hollow(&args, n, stop).await,
            None => real(&args, stop).await,
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

/// The host's underlay address: given, or the source address of the route to the control plane
/// (looked up by the kernel; nothing is sent).
fn underlay_ip(args: &AgentArgs, endpoint: &str) -> anyhow::Result<Ipv4Addr> {
    if let Some(ip) = args.underlay_ip {
        return Ok(ip);
    }
    let url = url::Url::parse(endpoint).with_context(|| format!("--join {endpoint} is not a URL"))?;
    let host = url.host_str().with_context(|| format!("--join {endpoint} names no host"))?;
    let port = url.port_or_known_default().unwrap_or(80);
    let addrs = (host, port).to_socket_addrs().with_context(|| format!("cannot resolve {host}"))?;
    for to in addrs.filter(|a| a.is_ipv4()) {
        if let Ok(IpAddr::V4(ip)) = feiyun_agent::machine::source_address(to) {
            return Ok(ip);
        }
    }
    anyhow::bail!("no IPv4 route to {host}: pass --underlay-ip")
}

fn spec(args: &AgentArgs, name: String, simulated: bool, underlay_ip: Option<Ipv4Addr>) -> HostSpec {
    let defaults = Overcommit::default();
    let o = Overcommit {
        cpu_allocation_ratio: args.cpu_allocation_ratio.unwrap_or(if simulated {
            1.0
        } else {
            defaults.cpu_allocation_ratio
        }),
        memory_allocation_ratio: args.memory_allocation_ratio.unwrap_or(if simulated {
            1.0
        } else {
            defaults.memory_allocation_ratio
        }),
        reserved_memory_mib: if simulated { 0 } else { defaults.reserved_memory_mib },
        ..defaults
    };
    let (cpus, mem) = if simulated {
        (Some(args.cpus.unwrap_or(32)), Some(args.memory_mib.unwrap_or(128 * 1024)))
    } else {
        (args.cpus, args.memory_mib)
    };
    HostSpec {
        name,
        zone: args.zone.clone(),
        capacity: feiyun_agent::machine::capacity(&o, cpus, mem, args.gpus, 0),
        gpu_model: args.gpu_model.clone(),
        local_disk_category: None,
        simulated,
        protocol: PROTOCOL_VERSION,
        agent_version: env!("CARGO_PKG_VERSION").to_string(),
        underlay_ip,
    }
}

async fn real(args: &AgentArgs, stop: tokio::sync::watch::Receiver<bool>) -> anyhow::Result<()> {
    let dd = DataDir::new(&args.data_dir);
    let _lock = dd.lock()?;
    let runc = find_runc().context("runc is not installed: install it (Debian: apt-get install runc)")?;
    let busybox =
        find_busybox().context("busybox is not installed: install it (Debian: apt-get install busybox-static)")?;
    let runtime = Arc::new(RuncRuntime::new(runc, dd.runtime(), &args.cgroup_parent)?);
    let images = Arc::new(ImageStore::new(dd.images()));
    let http = HttpLink::new(&args.join)?;
    let underlay = underlay_ip(args, http.endpoint())?;
    let link: Arc<dyn ControlLink> = Arc::new(http);
    let name = args.name.clone().unwrap_or_else(feiyun_agent::machine::hostname);
    let opts = AgentOptions {
        host: spec(args, name, false, Some(underlay)),
        token: args.token.clone(),
        identity_file: Some(dd.runtime().join("identity.json")),
        busybox: Some(busybox),
        network_state: Some(dd.runtime().join(feiyun_agent::network::STATE_FILE)),
    };
    eprintln!("Feiyun host agent joining {} (underlay {underlay}, data in {})", args.join, dd.root.display());
    let mut s = stop.clone();
    Agent::new(link, runtime, Some(images), opts)
        .run(async move {
            let _ = s.wait_for(|x| *x).await;
        })
        .await?;
    Ok(())
}

async fn hollow(args: &AgentArgs, n: u32, stop: tokio::sync::watch::Receiver<bool>) -> anyhow::Result<()> {
    if n == 0 {
        anyhow::bail!("--hollow needs at least one host");
    }
    let token = args.token.clone().context("hollow hosts register each run: pass --token")?;
    // Each host keeps its connections; one client shares them.
    let link: Arc<dyn ControlLink> = Arc::new(HttpLink::new(&args.join)?);
    // Names are new each run: hosts of an earlier run go unreachable rather than clash.
    let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let prefix = args.name.clone().unwrap_or_else(|| "hollow".into());
    eprintln!("Starting {n} simulated (hollow) hosts {prefix}-{run}-* joining {}", args.join);
    let started = std::time::Instant::now();
    let mut tasks = Vec::with_capacity(n as usize);
    for i in 0..n {
        let opts = AgentOptions {
            host: spec(args, format!("{prefix}-{run}-{i:05}"), true, None),
            token: Some(token.clone()),
            identity_file: None,
            busybox: None,
            network_state: None,
        };
        let agent = Agent::new(link.clone(), Arc::new(SimRuntime::new()), None, opts);
        let mut s = stop.clone();
        tasks.push(tokio::spawn(agent.run(async move {
            let _ = s.wait_for(|x| *x).await;
        })));
    }
    tracing::info!(hosts = n, ms = started.elapsed().as_millis() as u64, "hollow hosts started");
    for t in tasks {
        if let Ok(Err(e)) = t.await {
            tracing::error!(error = %e, "a hollow host stopped");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_cgroup_parent;

    #[test]
    fn cgroup_parents_are_plain_relative_paths() {
        assert_eq!(parse_cgroup_parent("feiyun").as_deref(), Ok("feiyun"));
        assert_eq!(parse_cgroup_parent("/feiyun/rack-1/").as_deref(), Ok("feiyun/rack-1"));
        for bad in ["", "/", "feiyun/../etc", "a//b", "./x", "a b", "feiyun/x*"] {
            assert!(parse_cgroup_parent(bad).is_err(), "{bad}");
        }
    }
}
