//! `feiyun teardown`: stop the region that runs on a data directory, remove every instance it
//! has on this machine (processes, containers, mounts, cgroups), the loop devices and mounts of
//! its disks and snapshots (their files go with the directory), then the host's network (its
//! namespaces, links, rules, nftables tables and qdiscs, found by the host prefix of the last
//! network state the agent applied), and delete the data directory.
//!
//! This is the operator's tool for leaving a machine clean; it bypasses tenant rules such as
//! "a subscription cannot be deleted before it expires" because it ends the whole region.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use feiyun_runtime::Runtime;
use feiyun_server::DataDir;

use crate::DEFAULT_DATA_DIR;

#[derive(Args)]
pub struct TeardownArgs {
    /// The region's data directory.
    #[arg(long, default_value = DEFAULT_DATA_DIR, env = "FEIYUN_DATA_DIR")]
    data_dir: PathBuf,
    /// Really do it (without this, only say what would be removed).
    #[arg(long)]
    yes: bool,
    /// Seconds to wait for a running server to stop after SIGTERM before killing it.
    #[arg(long, default_value_t = 30)]
    wait: u64,
    /// The cgroup the instances were put under (`feiyun agent --cgroup-parent`).
    #[arg(long, default_value = crate::agent::DEFAULT_CGROUP_PARENT, value_parser = crate::agent::parse_cgroup_parent)]
    cgroup_parent: String,
}

pub fn run(args: TeardownArgs) -> anyhow::Result<ExitCode> {
    let dd = DataDir::new(&args.data_dir);
    if !dd.root.exists() {
        eprintln!("{} does not exist; nothing to tear down", dd.root.display());
        return Ok(ExitCode::SUCCESS);
    }
    if !dd.db().exists() && !dd.lock_file().exists() {
        bail!("{} is not a Feiyun data directory (no feiyun.db); refusing to remove it", dd.root.display());
    }
    let instances = instance_dirs(&dd.runtime());
    let network_file = dd.runtime().join(feiyun_agent::network::STATE_FILE);
    let read_network = || {
        feiyun_agent::network::load_state(&network_file).with_context(|| {
            format!("cannot tell which host network to remove; delete {} to go on without", network_file.display())
        })
    };
    if !args.yes {
        let network = read_network()?;
        println!(
            "Would stop the server on {}{}, remove {} instance(s) from this host ({}){} and delete the directory.\nRun again with --yes to do it.",
            dd.root.display(),
            dd.holder().map(|p| format!(" (pid {p})")).unwrap_or_default(),
            instances.len(),
            instances.join(", "),
            network.as_ref().map(|n| format!(", then its network (prefix {})", n.prefix)).unwrap_or_default(),
        );
        return Ok(ExitCode::from(1));
    }
    if let Some(pid) = dd.holder() {
        stop_server(&dd, pid, Duration::from_secs(args.wait))?;
    }
    // Hold the directory while we work, so that no server starts on it meanwhile.
    let lock = dd.lock()?;
    if !instances.is_empty() {
        let runc =
            feiyun_runtime::runc::find_runc().context("runc is not installed, so instances cannot be removed")?;
        let runtime = feiyun_runtime::runc::RuncRuntime::new(runc, dd.runtime(), &args.cgroup_parent)?;
        for id in runtime.list()? {
            runtime.destroy(&id).with_context(|| format!("cannot remove instance {id}"))?;
            eprintln!("removed instance {id}");
        }
    }
    // The cgroup the instances were put under, where no other region's instances are left in it.
    if let Some(runc) = feiyun_runtime::runc::find_runc() {
        let runtime = feiyun_runtime::runc::RuncRuntime::new(runc, dd.runtime(), &args.cgroup_parent)?;
        runtime.remove_parent_cgroup().context("cannot remove the instances' parent cgroup")?;
    }
    // Disks outlive instances: what is still mounted or on a loop device (a detached disk's
    // leftovers, a capture cut short) is released before the files go with the directory.
    if dd.runtime().join("disks").is_dir() {
        let storage = feiyun_runtime::disks::Storage::new(&dd.runtime())?;
        storage.release_all().context("cannot release the host's disks")?;
    }
    // After the instances: a namespace goes only once no container is in it. Read now, after
    // the server stopped: it no longer changes.
    if let Some(net) = read_network()? {
        let host = feiyun_net::HostNet::current().context("cannot open this machine's network namespace")?;
        host.teardown(&net.prefix).with_context(|| format!("cannot remove the host network {}", net.prefix))?;
        std::fs::remove_file(&network_file).with_context(|| format!("cannot remove {}", network_file.display()))?;
        eprintln!("removed the host network {}", net.prefix);
    }
    if let Some(m) = mounts_under(&dd.root).first() {
        bail!("{m} is still mounted under the data directory; not removing it");
    }
    drop(lock);
    std::fs::remove_dir_all(&dd.root).with_context(|| format!("cannot remove {}", dd.root.display()))?;
    eprintln!("removed {}", dd.root.display());
    Ok(ExitCode::SUCCESS)
}

/// SIGTERM, then SIGKILL after `wait`; returns once the process has exited. The server lets go
/// of the directory's lock when its main task ends, but its blocking work (an agent step removing
/// an instance's files, say) can still be finishing then: removing instances at the same time
/// would race it, so the process itself must be gone.
fn stop_server(dd: &DataDir, pid: u32, wait: Duration) -> anyhow::Result<()> {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    let pid_t = i32::try_from(pid).context("bad pid in the lock file")?;
    eprintln!("stopping the server (pid {pid})");
    let _ = kill(Pid::from_raw(pid_t), Signal::SIGTERM);
    let running = || dd.holder().is_some() || alive(pid);
    let deadline = Instant::now() + wait;
    while running() {
        if Instant::now() >= deadline {
            eprintln!("the server did not stop within {}s; killing it", wait.as_secs());
            let _ = kill(Pid::from_raw(pid_t), Signal::SIGKILL);
            let hard = Instant::now() + Duration::from_secs(10);
            while running() {
                if Instant::now() >= hard {
                    bail!("the server (pid {pid}) still holds {}", dd.root.display());
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// Whether a process runs; one that exited and waits for its parent to reap it (a zombie) does not.
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // `pid (comm) state ...`; comm may hold spaces and parentheses, the state follows the last ')'.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

fn instance_dirs(runtime_root: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(runtime_root.join("instances"))
        .map(|d| d.flatten().filter_map(|e| e.file_name().to_str().map(str::to_string)).collect())
        .unwrap_or_default();
    out.sort();
    out
}

/// Mount points at or below `dir`.
fn mounts_under(dir: &Path) -> Vec<String> {
    let Ok(canon) = dir.canonicalize() else { return Vec::new() };
    let prefix = canon.to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| *m == prefix || m.starts_with(&format!("{prefix}/")))
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::alive;

    #[test]
    fn a_process_runs_until_it_exits_even_unreaped() {
        assert!(alive(std::process::id()));
        let mut child = std::process::Command::new("true").spawn().expect("spawn true");
        let pid = child.id();
        // Not reaped yet: a zombie, which no longer runs.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while alive(pid) {
            assert!(std::time::Instant::now() < deadline, "{pid} still runs");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        child.wait().expect("reap");
        assert!(!alive(pid));
    }
}
