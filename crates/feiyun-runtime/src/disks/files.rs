//! What the host does to a disk file itself: format, check and grow its ext4 filesystem, read
//! its size from the superblock, freeze it for a snapshot, check an imported qcow2 blob, and the
//! small file steps (`.partial` names, removal, directory sync) every operation is built from.

use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::errno::Errno;

use super::{io, Result, StorageError, GIB, MAX_DISK_GIB};
use crate::loopdev;

/// A filesystem frozen with `fsfreeze`; thawed when dropped, should the caller not.
pub(super) struct Frozen(Option<PathBuf>);

impl Frozen {
    pub(super) fn freeze(at: &Path) -> Result<Frozen> {
        loopdev::run(Command::new("fsfreeze").arg("-f").arg(at))?;
        Ok(Frozen(Some(at.to_path_buf())))
    }

    pub(super) fn thaw(mut self) -> Result<()> {
        match self.0.take() {
            Some(at) => loopdev::run(Command::new("fsfreeze").arg("-u").arg(&at)).map(|_| ()),
            None => Ok(()),
        }
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        if let Some(at) = self.0.take() {
            if let Err(e) = loopdev::run(Command::new("fsfreeze").arg("-u").arg(&at)) {
                tracing::error!(mount = %at.display(), error = %e, "cannot thaw a filesystem");
            }
        }
    }
}

pub(super) const CAP_SYS_RESOURCE: u32 = 24;

/// Whether the calling process has a capability in its effective set.
pub(super) fn has_capability(cap: u32) -> bool {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .is_some_and(|bits| bits & (1 << cap) != 0)
}

pub(super) fn cmd_err(what: &str, path: &Path, e: Errno) -> StorageError {
    StorageError::Command(what.to_string(), format!("{}: {e}", path.display()))
}

pub(crate) fn partial_of(file: &Path) -> PathBuf {
    let mut name = file.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".partial");
    file.with_file_name(name)
}

pub(crate) fn remove_if_exists(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StorageError::Io(path.display().to_string(), e)),
    }
}

pub(super) fn sync_dir(file: &Path) -> Result<()> {
    match file.parent() {
        Some(dir) => File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir)),
        None => Ok(()),
    }
}

/// Bytes the file takes on the host.
pub(super) fn allocated(path: &Path) -> Result<u64> {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(path).map(|m| m.blocks() * 512).map_err(io(path))
}

/// Format a file as ext4: no blocks reserved for root (it is a data disk), inode tables and
/// journal initialized now (by punching holes) rather than by the kernel after the first mount.
pub(super) fn mkfs(file: &Path) -> Result<()> {
    loopdev::run(
        Command::new("mke2fs")
            .args(["-t", "ext4", "-q", "-F", "-m", "0", "-E", "lazy_itable_init=0,lazy_journal_init=0"])
            .arg(file),
    )
    .map(|_| ())
}

/// `e2fsck -f -p`: check and repair what is safe to repair; anything worse is an error.
pub(super) fn fsck(file: &Path) -> Result<()> {
    let out = Command::new("e2fsck")
        .args(["-f", "-p"])
        .arg(file)
        .output()
        .map_err(|e| StorageError::Command("e2fsck".into(), e.to_string()))?;
    match out.status.code() {
        // 0: clean, 1: errors fixed, 2: fixed, reboot advised (meaningless for a file).
        Some(0..=2) => Ok(()),
        code => Err(StorageError::Command(
            "e2fsck".into(),
            format!("exit {code:?}: {}", String::from_utf8_lossy(&out.stdout).trim()),
        )),
    }
}

/// Grow an unmounted disk file to `bytes` and its filesystem to the file.
pub(super) fn grow_offline(file: &Path, bytes: u64) -> Result<()> {
    let len = fs::metadata(file).map(|m| m.len()).map_err(io(file))?;
    if len < bytes {
        OpenOptions::new().write(true).open(file).and_then(|f| f.set_len(bytes)).map_err(io(file))?;
    }
    if fs_bytes(file)? < len.max(bytes) {
        // resize2fs wants a freshly checked filesystem.
        fsck(file)?;
        loopdev::run(Command::new("resize2fs").arg(file))?;
    }
    Ok(())
}

/// The size of the ext4 filesystem in a disk file, from its superblock.
pub(crate) fn fs_bytes(file: &Path) -> Result<u64> {
    use std::io::{Seek, SeekFrom};
    let mut f = File::open(file).map_err(io(file))?;
    let mut sb = [0u8; 1024];
    f.seek(SeekFrom::Start(1024)).and_then(|_| f.read_exact(&mut sb)).map_err(io(file))?;
    let u32_at = |o: usize| u32::from_le_bytes([sb[o], sb[o + 1], sb[o + 2], sb[o + 3]]) as u64;
    if u16::from_le_bytes([sb[0x38], sb[0x39]]) != 0xEF53 {
        return Err(StorageError::Refused(format!("{} holds no ext4 filesystem", file.display())));
    }
    let log = u32_at(0x18);
    if log > 6 {
        return Err(StorageError::Refused(format!("{}: implausible block size", file.display())));
    }
    let hi = if u32_at(0x60) & 0x80 != 0 { u32_at(0x150) } else { 0 };
    Ok(((hi << 32) | u32_at(0x04)) * (1024 << log))
}

/// A blob must be a plain qcow2 image: no backing file or external data file (which would make
/// `qemu-img` read other files of this host).
pub(super) fn check_qcow2(blob: &Path) -> Result<()> {
    let info = loopdev::run(Command::new("qemu-img").args(["info", "--output=json", "-f", "qcow2"]).arg(blob))
        .map_err(|e| StorageError::Refused(format!("the blob is not a qcow2 image: {e}")))?;
    let v: serde_json::Value =
        serde_json::from_str(&info).map_err(|e| StorageError::Refused(format!("qemu-img info: {e}")))?;
    if v["format"] != "qcow2" {
        return Err(StorageError::Refused("the blob is not a qcow2 image".into()));
    }
    if v.get("backing-filename").is_some() || v["format-specific"]["data"].get("data-file").is_some() {
        return Err(StorageError::Refused("the blob refers to other files".into()));
    }
    let size = v["virtual-size"].as_u64().unwrap_or(u64::MAX);
    if size > MAX_DISK_GIB * GIB {
        return Err(StorageError::Refused(format!("the blob's disk is too large ({size} bytes)")));
    }
    Ok(())
}
