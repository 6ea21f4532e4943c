//! The instances' cgroups: where the hierarchies are, an instance's directories in them, and
//! removing them (with whatever still runs inside) when runc could not.

use std::fs;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use super::{io, mountinfo, RuncRuntime};
use crate::{Result, RuntimeError};

impl RuncRuntime {
    /// Where the machine's cgroup hierarchies are mounted, read from the mount table once: they are
    /// set up at boot, while the table grows with every instance and was read on every look at
    /// every instance.
    pub(super) fn cgroup_hierarchies(&self) -> Result<&[PathBuf]> {
        if let Some(h) = self.hierarchies.get() {
            return Ok(h);
        }
        let found: Vec<PathBuf> = mountinfo()?
            .into_iter()
            .filter(|m| m.fstype == "cgroup" || m.fstype == "cgroup2")
            .map(|m| m.mount_point)
            .collect();
        Ok(self.hierarchies.get_or_init(|| found))
    }

    /// Remove the cgroup every instance was put under (`<hierarchy>/<cgroup parent>`) in each
    /// hierarchy where it is empty, for a host that is being taken down. Where instances still
    /// have cgroups under it, it stays.
    pub fn remove_parent_cgroup(&self) -> Result<()> {
        for h in self.cgroup_hierarchies()? {
            let d = h.join(&self.cgroup_parent);
            match fs::remove_dir(&d) {
                Ok(()) => {}
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(nix::libc::ENOENT | nix::libc::EBUSY | nix::libc::ENOTEMPTY)
                    ) => {}
                Err(e) => return Err(io(&d)(e)),
            }
        }
        Ok(())
    }

    /// The instance's cgroup directories that exist, one per mounted hierarchy (cgroup v1 has one
    /// per controller, v2 one in all).
    pub(super) fn cgroup_dirs(&self, id: &str) -> Result<Vec<PathBuf>> {
        let rel = self.cgroups_path(id);
        let mut dirs: Vec<PathBuf> = self
            .cgroup_hierarchies()?
            .iter()
            .map(|h| h.join(rel.trim_start_matches('/')))
            .filter(|d| d.is_dir())
            .collect();
        dirs.sort();
        dirs.dedup();
        Ok(dirs)
    }

    /// Remove the instance's cgroups. runc removes them when it deletes the container; this covers
    /// a delete that failed half-way. Any process still inside belongs to the instance and is
    /// killed first.
    pub(super) fn remove_cgroup(&self, id: &str) -> Result<()> {
        let dirs = self.cgroup_dirs(id)?;
        if dirs.is_empty() {
            return Ok(());
        }
        let mut pids = Vec::new();
        for d in &dirs {
            thaw(d);
            cgroup_pids(d, &mut pids)?;
        }
        if !pids.is_empty() {
            tracing::warn!(instance = %id, count = pids.len(), "killing processes left in the instance's cgroup");
            for pid in &pids {
                // Gone already (ESRCH) is what we want.
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(*pid), nix::sys::signal::SIGKILL);
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let mut left = Vec::new();
                for d in &dirs {
                    cgroup_pids(d, &mut left)?;
                }
                if left.is_empty() || Instant::now() >= deadline {
                    break;
                }
                thread::sleep(Duration::from_millis(20));
            }
        }
        for d in &dirs {
            remove_cgroup_dir(d)?;
        }
        Ok(())
    }
}

/// Processes in a cgroup and its descendants (pid 0: outside our pid namespace, not ours to kill).
pub(super) fn cgroup_pids(dir: &Path, out: &mut Vec<i32>) -> Result<()> {
    let procs = dir.join("cgroup.procs");
    match fs::read_to_string(&procs) {
        Ok(text) => out.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()).filter(|p| *p > 0)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(RuntimeError::Io(procs.display().to_string(), e)),
    }
    for child in cgroup_children(dir)? {
        cgroup_pids(&child, out)?;
    }
    Ok(())
}

pub(super) fn cgroup_children(dir: &Path) -> Result<Vec<PathBuf>> {
    match fs::read_dir(dir) {
        Ok(rd) => {
            Ok(rd.flatten().filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false)).map(|e| e.path()).collect())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(RuntimeError::Io(dir.display().to_string(), e)),
    }
}

/// A frozen process cannot die: thaw the cgroup before killing (v1 freezer, v2 cgroup.freeze).
pub(super) fn thaw(dir: &Path) {
    let v1 = dir.join("freezer.state");
    if v1.exists() {
        let _ = fs::write(&v1, "THAWED");
    }
    let v2 = dir.join("cgroup.freeze");
    if v2.exists() {
        let _ = fs::write(&v2, "0");
    }
}

/// rmdir a cgroup and its descendants, deepest first. Already gone is fine.
pub(super) fn remove_cgroup_dir(dir: &Path) -> Result<()> {
    for child in cgroup_children(dir)? {
        remove_cgroup_dir(&child)?;
    }
    match fs::remove_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(RuntimeError::Io(dir.display().to_string(), e)),
    }
}
