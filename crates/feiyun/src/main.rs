//! The `feiyun` command: run a one-machine region, call its API, administer accounts.
//!
//! Must not: hold any logic of its own beyond parsing arguments and printing results; it calls
//! the server crate to run a region and signs API calls like the official SDKs do.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use serde_json::json;

mod account;
mod agent;
mod billing;
mod host;
mod profile;
mod replay;
mod tco;
mod teardown;
mod up;

const DEFAULT_DATA_DIR: &str = "/var/lib/feiyun";

#[derive(Parser)]
#[command(name = "feiyun", version, about = "Feiyun: an open-source cloud region with an Alibaba Cloud compatible API")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a region in the foreground: its control plane and store and, unless
    /// `--no-local-host`, this machine as its host.
    Up(up::UpArgs),
    /// Run a host that joins a region over the network (`--hollow N`: N simulated hosts).
    Agent(agent::AgentArgs),
    /// The region's hosts (administrator): list, drain, evacuate, join tokens.
    Host {
        #[command(subcommand)]
        command: host::HostCmd,
    },
    /// Call an ECS action, e.g. `feiyun ecs DescribeInstances --PageSize 50`.
    #[command(disable_help_flag = false, allow_hyphen_values = true)]
    Ecs(EcsArgs),
    /// Manage accounts.
    Account {
        #[command(subcommand)]
        command: account::AccountCmd,
    },
    /// Replay a trace through the scheduler on simulated hosts (no agents, no containers) and
    /// report hosts needed, the fluid lower bound, utilization, stranding and decision speed,
    /// beside the baseline policies.
    Replay(replay::ReplayArgs),
    /// Compare owning a data center with renting the same workload on Feiyun, year by year:
    /// a table, a JSON report and a chart, with the break-even point (see docs/tco.md).
    Tco(tco::TcoArgs),
    /// Balances and invoices: `feiyun billing topup ACCOUNT AMOUNT`, `feiyun billing invoice
    /// ACCOUNT [--month YYYY-MM] [--csv]`.
    Billing {
        #[command(subcommand)]
        command: billing::BillingCmd,
    },
    /// Stop the region on a data directory, remove all its instances from this machine
    /// (containers, mounts, cgroups) and delete the directory: `feiyun teardown --yes`.
    Teardown(teardown::TeardownArgs),
    /// Work with workload traces for replay.
    Trace {
        #[command(subcommand)]
        command: replay::TraceCmd,
    },
}

#[derive(Args)]
struct EcsArgs {
    /// The action, e.g. RunInstances.
    action: String,
    /// Data directory whose credentials.json to use (unless FEIYUN_ACCESS_KEY_ID and friends are set).
    #[arg(long, default_value = DEFAULT_DATA_DIR, env = "FEIYUN_DATA_DIR")]
    data_dir: PathBuf,
    /// Parameters as `--Name value` pairs (RegionId defaults to the region's id).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "--Name value")]
    params: Vec<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{}", json!({"Error": format!("{e:#}")}));
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Cmd::Up(args) => {
            raise_open_files_limit();
            up::run(args)
        }
        Cmd::Agent(args) => {
            raise_open_files_limit();
            agent::run(args)
        }
        Cmd::Host { command } => host::run(command),
        Cmd::Account { command } => account::run(command),
        Cmd::Ecs(args) => ecs(args),
        Cmd::Tco(args) => tco::run(args),
        Cmd::Billing { command } => billing::run(command),
        Cmd::Replay(args) => replay::run(args),
        Cmd::Teardown(args) => teardown::run(args),
        Cmd::Trace { command } => replay::trace(command),
    }
}

/// A region holds a connection per host (and `--hollow N` one per simulated host), so the
/// processes that serve or simulate hosts lift their soft limit on open files to the hard limit
/// (often 1,024 by default, and 10,000 hosts hold 10,000 connections).
fn raise_open_files_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => {
            if let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
                eprintln!("cannot raise the open files limit from {soft} to {hard}: {e}");
            }
        }
        Ok(_) => {}
        Err(e) => eprintln!("cannot read the open files limit: {e}"),
    }
}

fn ecs(args: EcsArgs) -> anyhow::Result<ExitCode> {
    let mut query: Vec<(String, String)> = Vec::new();
    let mut data_dir = args.data_dir.clone();
    let mut source = profile::Source::default();
    let mut it = args.params.into_iter();
    while let Some(name) = it.next() {
        let Some(name) = name.strip_prefix("--") else { bail!("expected --Name value, got {name:?}") };
        let (name, value) = match name.split_once('=') {
            Some((n, v)) => (n.to_string(), v.to_string()),
            None => (name.to_string(), it.next().with_context(|| format!("--{name} needs a value"))?),
        };
        match name.as_str() {
            "data-dir" => {
                data_dir = PathBuf::from(value);
                continue;
            }
            "profile" => {
                source.profile = Some(value);
                continue;
            }
            "credentials" => {
                source.file = Some(PathBuf::from(value));
                continue;
            }
            _ => {}
        }
        query.push((name, value));
    }
    let creds = profile::resolve(&data_dir, &source)?;
    if !query.iter().any(|(k, _)| k == "RegionId") && args.action != "DescribeRegions" {
        query.push(("RegionId".into(), std::env::var("FEIYUN_REGION_ID").unwrap_or_else(|_| "cn-local".into())));
    }
    let client = feiyun::client::Client::new(&creds.endpoint, &creds.key_id, &creds.secret);
    let params: Vec<(&str, &str)> = query.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let reply = client.call(&args.action, &params).map_err(|e| anyhow::anyhow!(e))?;
    let pretty = if reply.body.is_null() { reply.text.clone() } else { serde_json::to_string_pretty(&reply.body)? };
    println!("{pretty}");
    Ok(if reply.ok() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
