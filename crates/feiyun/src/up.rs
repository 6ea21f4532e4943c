//! `feiyun up`: a region's control plane, and (unless `--no-local-host`) this machine as its
//! embedded host, joined in-process over the same host protocol remote agents speak.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use feiyun_agent::{Agent, AgentOptions};
use feiyun_hostproto::{ControlLink, HostSpec, PROTOCOL_VERSION};
use feiyun_runtime::images::{find_busybox, ImageStore};
use feiyun_runtime::runc::{find_runc, RuncRuntime};
use feiyun_server::{Config, Region, RegionOptions};

use crate::DEFAULT_DATA_DIR;

#[derive(Args)]
pub struct UpArgs {
    /// Where state, images and instances live.
    #[arg(long, default_value = DEFAULT_DATA_DIR, env = "FEIYUN_DATA_DIR")]
    data_dir: PathBuf,
    /// Address of the API endpoint (hosts join at the same address).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Region configuration (TOML); defaults describe this machine as one host in one zone.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Run the control plane only: no instance runs on this machine; hosts join with
    /// `feiyun agent --join URL --token TOKEN` (tokens from `feiyun host token create`).
    #[arg(long)]
    no_local_host: bool,
    /// The embedded host's IPv4 address on the network between hosts (VXLAN). Default: the
    /// address of `--listen` (127.0.0.1 unless told otherwise: a region only this machine can
    /// reach has no other host to exchange VPC traffic with), or for an unspecified one the
    /// source address of this machine's default route.
    #[arg(long)]
    underlay_ip: Option<Ipv4Addr>,
}

/// Threads for work off the event loop (changes, store reads).
const BLOCKING_THREADS: usize = 64;

pub fn run(args: UpArgs) -> anyhow::Result<ExitCode> {
    crate::logging::init();
    let config = Config::load(args.config.as_deref())?;
    // Changes wait for the state's lock and the store's sync on a blocking thread; with
    // thousands of hosts reporting on a busy machine, an unbounded pool grows to hundreds of
    // threads parked behind one commit at a time, each with its stack and allocator arena. Past
    // a few dozen threads nothing goes faster: the rest wait in the queue.
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().max_blocking_threads(BLOCKING_THREADS).build()?;
    rt.block_on(async move {
        let region = Region::open(RegionOptions { data_dir: args.data_dir, listen: args.listen, config }).await?;
        if let Some(dir) = &region.config.images.import_dir {
            // ImportImage runs the runtime's import on this machine.
            region.cp.configure_imports(PathBuf::from(dir), Arc::new(crate::images::RuntimeImporter));
        }
        let (_stop_tx, stop) = feiyun_server::stop_on_signals();
        let agent = if args.no_local_host {
            None
        } else {
            let agent = embedded_host(&region, embedded_underlay(args.listen, args.underlay_ip))?;
            // The region starts with its host in it: its clocks (the first spot price of the
            // zone, liveness) see the machine's capacity from their first tick.
            let mut s = stop.clone();
            let mut stopped = Box::pin(async move {
                let _ = s.wait_for(|x| *x).await;
            });
            agent.join(&mut stopped).await?;
            let mut s = stop.clone();
            Some(tokio::spawn(agent.run(async move {
                let _ = s.wait_for(|x| *x).await;
            })))
        };
        let lock = region.serve(stop).await?;
        if let Some(task) = agent {
            match task.await {
                Ok(Err(e)) => tracing::error!(error = %e, "the embedded host stopped"),
                Err(e) => tracing::error!(error = %e, "the embedded host panicked"),
                Ok(Ok(())) => {}
            }
        }
        // Only now may another server take the data directory.
        drop(lock);
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// The embedded host's underlay address. Other hosts reach this machine where they reach the
/// API: at the listen address. A wildcard listen address says nothing, so the kernel is asked
/// which address it would send from towards the outside (nothing is sent); without a route the
/// machine can only be a one-host region, and loopback does.
fn embedded_underlay(listen: SocketAddr, given: Option<Ipv4Addr>) -> Ipv4Addr {
    if let Some(ip) = given {
        return ip;
    }
    match listen.ip() {
        IpAddr::V4(ip) if !ip.is_unspecified() => ip,
        _ => {
            // TEST-NET-1: any address outside the machine picks the default route.
            let outside = SocketAddr::from((Ipv4Addr::new(192, 0, 2, 1), 9));
            match feiyun_agent::machine::source_address(outside) {
                Ok(IpAddr::V4(ip)) => ip,
                _ => Ipv4Addr::LOCALHOST,
            }
        }
    }
}

/// This machine as the region's host, reaching the control plane in-process.
fn embedded_host(region: &Region, underlay_ip: Ipv4Addr) -> anyhow::Result<Agent> {
    let runc = find_runc().context("runc is not installed: install it (Debian: apt-get install runc)")?;
    let busybox =
        find_busybox().context("busybox is not installed: install it (Debian: apt-get install busybox-static)")?;
    let local = region.config.local_host();
    let runtime = Arc::new(RuncRuntime::new(runc, region.data.runtime(), crate::agent::DEFAULT_CGROUP_PARENT)?);
    let images = Arc::new(ImageStore::new(region.data.images()));
    let link: Arc<dyn ControlLink> = region.cp.clone();
    let opts = AgentOptions {
        host: HostSpec {
            name: local.name,
            zone: Some(local.zone),
            capacity: local.capacity,
            gpu_model: local.gpu_model,
            local_disk_category: local.local_disk_category,
            simulated: false,
            protocol: PROTOCOL_VERSION,
            agent_version: env!("CARGO_PKG_VERSION").to_string(),
            underlay_ip: Some(underlay_ip),
        },
        token: Some(region.cp.process_join_token()),
        identity_file: Some(region.data.runtime().join("identity.json")),
        busybox: Some(busybox),
        network_state: Some(region.data.runtime().join(feiyun_agent::network::STATE_FILE)),
    };
    Ok(Agent::new(link, runtime, Some(images), opts))
}
