//! Loop devices: which files are attached to which device (read from sysfs, so that a device
//! left by a crash is found again), and attaching and freeing them with `losetup`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::disks::StorageError;

/// A loop device bound to a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LoopDev {
    /// `/dev/loopN`.
    pub path: PathBuf,
    /// `major:minor`, as mountinfo names the device of a filesystem mounted from it.
    pub dev: String,
    pub backing: PathBuf,
    /// The backing file was removed or replaced since it was attached.
    pub deleted: bool,
}

/// Every bound loop device.
pub(crate) fn list() -> Result<Vec<LoopDev>, StorageError> {
    let sys = Path::new("/sys/block");
    let mut out = Vec::new();
    let entries = match fs::read_dir(sys) {
        Ok(e) => e,
        Err(e) => return Err(StorageError::Io(sys.display().to_string(), e)),
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with("loop") {
            continue;
        }
        // Unbound devices have no backing file; a device freed meanwhile has vanished.
        let Ok(backing) = fs::read_to_string(e.path().join("loop/backing_file")) else { continue };
        let Ok(dev) = fs::read_to_string(e.path().join("dev")) else { continue };
        let backing = backing.trim_end_matches('\n');
        let (backing, deleted) = match backing.strip_suffix(" (deleted)") {
            Some(b) => (b, true),
            None => (backing, false),
        };
        out.push(LoopDev {
            path: PathBuf::from("/dev").join(&name),
            dev: dev.trim().to_string(),
            backing: PathBuf::from(backing),
            deleted,
        });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// Devices bound to `file` (including ones whose file was replaced since).
pub(crate) fn of(all: &[LoopDev], file: &Path) -> Vec<LoopDev> {
    all.iter().filter(|l| l.backing == file).cloned().collect()
}

pub(crate) fn run(cmd: &mut Command) -> Result<String, StorageError> {
    let what = format!("{:?}", cmd.get_program()).trim_matches('"').to_string();
    let out = cmd.output().map_err(|e| StorageError::Command(what.clone(), e.to_string()))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
        let args: Vec<String> = cmd.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
        return Err(StorageError::Command(format!("{what} {}", args.join(" ")), err));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Attach `file` to a free loop device (or the one it already has: `--nooverlap`), with direct
/// I/O for a writable one.
pub(crate) fn attach(file: &Path, read_only: bool) -> Result<PathBuf, StorageError> {
    let mut cmd = Command::new("losetup");
    cmd.args(["--find", "--show", "--nooverlap"]);
    if read_only {
        cmd.arg("--read-only");
    } else {
        // The disk's data is cached once, by the filesystem in it, and the host's page cache of
        // the file is not charged to the instance writing it (with buffered loop I/O a small
        // instance writing a lot can be killed for memory).
        cmd.arg("--direct-io=on");
    }
    let dev = run(cmd.arg(file))?.trim().to_string();
    if !dev.starts_with("/dev/loop") {
        return Err(StorageError::Command("losetup".into(), format!("attached no device ({dev:?})")));
    }
    Ok(PathBuf::from(dev))
}

/// Free a loop device. One already freed is fine.
pub(crate) fn detach(dev: &Path) -> Result<(), StorageError> {
    match run(Command::new("losetup").arg("-d").arg(dev)) {
        Ok(_) => Ok(()),
        Err(StorageError::Command(_, e)) if e.contains("No such device") => Ok(()),
        Err(e) => Err(e),
    }
}

/// Make the device see its file's new size.
pub(crate) fn refresh_capacity(dev: &Path) -> Result<(), StorageError> {
    run(Command::new("losetup").arg("--set-capacity").arg(dev)).map(|_| ())
}
