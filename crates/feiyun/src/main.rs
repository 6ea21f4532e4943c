//! The `feiyun` command: run a one-machine region, call its API, administer accounts.
//!
//! Must not: hold any logic of its own beyond parsing arguments and printing results; it calls
//! the server crate to run a region and signs API calls like the official SDKs do.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde_json::json;

mod account;
mod agent;
mod billing;
mod cli;
mod host;
mod images;
mod logging;
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
    /// Call an ECS 2014-05-26 action: `feiyun ecs RunInstances --InstanceType ecs.g7.large ...`
    /// (`feiyun ecs --help` lists them).
    Ecs(cli::ApiArgs),
    /// Call a VPC 2016-04-28 action (VPCs, vSwitches, elastic IP addresses): `feiyun vpc DescribeVpcs`.
    Vpc(cli::ApiArgs),
    /// Call a BssOpenApi 2017-12-14 action (balances, bills, prices): `feiyun bss QueryAccountBalance`.
    #[command(visible_alias = "bssopenapi")]
    Bss(cli::ApiArgs),
    /// Call an action of Feiyun's own API (2026-11-01): `feiyun feiyun CalculateTco --Plan "$(cat plan.toml)"`.
    #[command(visible_alias = "api")]
    Feiyun(cli::ApiArgs),
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

fn main() -> ExitCode {
    let cli = Cli::parse_from(cli::normalize_product(std::env::args_os()));
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
        Cmd::Ecs(args) => cli::run("Ecs", args),
        Cmd::Vpc(args) => cli::run("Vpc", args),
        Cmd::Bss(args) => cli::run("BssOpenApi", args),
        Cmd::Feiyun(args) => cli::run("Feiyun", args),
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
