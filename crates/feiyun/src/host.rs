//! `feiyun host`: the region's hosts, for its administrator — list them, drain or evacuate one,
//! make and revoke join tokens. Calls Feiyun's own API (2026-11-01) with the administrator's key.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use crate::DEFAULT_DATA_DIR;

#[derive(Subcommand)]
pub enum HostCmd {
    /// Every host: state (Up, Draining, Unreachable), simulated or not, capacity, use, instances.
    List {
        #[arg(long, default_value = DEFAULT_DATA_DIR, env = "FEIYUN_DATA_DIR")]
        data_dir: PathBuf,
    },
    /// No new instances on HOST (by id or name); `--undo` opens it again.
    Drain {
        host: String,
        #[arg(long)]
        undo: bool,
        #[arg(long, default_value = DEFAULT_DATA_DIR, env = "FEIYUN_DATA_DIR")]
        data_dir: PathBuf,
    },
    /// Re-create the instances of an unreachable HOST on other hosts of their zone, with their
    /// ids, from their images (local disk contents are lost), and fence HOST so that it runs
    /// none of them if it returns. `--force` goes on when many hosts are unreachable at once.
    Evacuate {
        host: String,
        #[arg(long)]
        force: bool,
        #[arg(long, default_value = DEFAULT_DATA_DIR, env = "FEIYUN_DATA_DIR")]
        data_dir: PathBuf,
    },
    /// Join tokens for `feiyun agent --token`.
    Token {
        #[command(subcommand)]
        command: TokenCmd,
    },
}

#[derive(Subcommand)]
pub enum TokenCmd {
    /// A new join token, printed as JSON (`{"Token": ...}`); hosts joining with it go to ZONE.
    Create {
        #[arg(long)]
        zone: Option<String>,
        #[arg(long, default_value = DEFAULT_DATA_DIR, env = "FEIYUN_DATA_DIR")]
        data_dir: PathBuf,
    },
    /// Revoke a join token (hosts that joined with it stay).
    Revoke {
        token: String,
        #[arg(long, default_value = DEFAULT_DATA_DIR, env = "FEIYUN_DATA_DIR")]
        data_dir: PathBuf,
    },
}

fn call(data_dir: &std::path::Path, action: &str, params: &[(&str, &str)]) -> anyhow::Result<ExitCode> {
    let creds = crate::profile::resolve(data_dir, &crate::profile::Source::default())?;
    let client = feiyun::client::Client::new(&creds.endpoint, &creds.key_id, &creds.secret);
    let reply = client
        .call_in(
            feiyun_openapi::api::product_by_code("feiyun").map(|p| p.version).unwrap_or("2026-11-01"),
            action,
            params,
        )
        .map_err(|e| anyhow::anyhow!(e))?;
    let mut body = reply.body.clone();
    if reply.ok() {
        if let Some(o) = body.as_object_mut() {
            o.remove("RequestId");
        }
    }
    println!("{}", serde_json::to_string_pretty(&body)?);
    Ok(if reply.ok() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

pub fn run(cmd: HostCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        HostCmd::List { data_dir } => call(&data_dir, "ListHosts", &[]),
        HostCmd::Drain { host, undo, data_dir } => {
            call(&data_dir, "DrainHost", &[("HostId", &host), ("Drain", if undo { "false" } else { "true" })])
        }
        HostCmd::Evacuate { host, force, data_dir } => {
            call(&data_dir, "EvacuateHost", &[("HostId", &host), ("Force", if force { "true" } else { "false" })])
        }
        HostCmd::Token { command: TokenCmd::Create { zone, data_dir } } => match zone {
            Some(z) => call(&data_dir, "CreateHostJoinToken", &[("ZoneId", &z)]),
            None => call(&data_dir, "CreateHostJoinToken", &[]),
        },
        HostCmd::Token { command: TokenCmd::Revoke { token, data_dir } } => {
            call(&data_dir, "RevokeHostJoinToken", &[("Token", &token)])
        }
    }
}
