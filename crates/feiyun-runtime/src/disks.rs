//! Disks and snapshots a host keeps, and how a disk shows inside an instance.
//!
//! Layout under the runtime's root (`<data-dir>/host`):
//!
//! ```text
//! disks/<id>.img            a disk: a sparse file holding an ext4 filesystem of the disk's size
//! disks/<id>.img.partial    one being made (created, copied, converted), renamed when complete
//! disks/<id>.fetch          a blob being fetched for it
//! snapshots/<id>.img        a snapshot: a copy of a disk's file (reflinked where the filesystem
//!                           can, else a sparse copy); `.partial` while being made
//! scratch/                  archives, exports and read-only mounts of tasks in progress
//! instances/<id>/mnt/       the instance's disk directory: a bind mount of itself with shared
//!                           propagation, bind-mounted (read-only, `rslave`) at `/mnt` in the
//!                           container when it boots
//! instances/<id>/mnt/<dev>  where a disk attached as `/dev/<dev>` is mounted (from its loop
//!                           device); it shows at once as `/mnt/<dev>` inside the running container
//! ```
//!
//! Every operation first looks at what exists — files, loop devices (sysfs), mounts
//! (mountinfo) — and does only what is missing, so it can be repeated after a crash at any
//! point: half-made files are `.partial` until renamed, a loop device without its mount is
//! reused or freed, a filesystem left frozen is thawed by [`Storage::recover`].
//!
//! Must not: touch a file or loop device outside its own directories, mount a disk twice, or
//! remove a disk that is mounted.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Mutex;

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::loopdev::{self, LoopDev};
use crate::mounts::{self, Mount};

mod files;
use files::*;
pub(crate) use files::{fs_bytes, partial_of, remove_if_exists};

/// The largest disk a host makes (32 TiB, as ECS's largest cloud disk).
pub const MAX_DISK_GIB: u64 = 32 * 1024;
const GIB: u64 = 1 << 30;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("Invalid {0} {1:?}")]
    Invalid(&'static str, String),
    #[error("Disk {0} does not exist on this host")]
    NoDisk(String),
    #[error("Snapshot {0} does not exist on this host")]
    NoSnapshot(String),
    #[error("Instance {0} has nothing on this host yet")]
    NoInstance(String),
    #[error("Disk {disk} is attached to {instance}")]
    Attached { disk: String, instance: String },
    #[error("Disk {disk} is in use in instance {instance}: a process there has a file or directory open on it")]
    Busy { disk: String, instance: String },
    #[error("Device {device} of instance {instance} is taken by another disk")]
    DeviceTaken { device: String, instance: String },
    #[error("The blob's SHA-256 is {found}, the region recorded {expected}; refusing it")]
    Checksum { expected: String, found: String },
    #[error("Refused: {0}")]
    Refused(String),
    #[error("{0} failed: {1}")]
    Command(String, String),
    #[error("IO error on {0}: {1}")]
    Io(String, std::io::Error),
}

pub type Result<T> = std::result::Result<T, StorageError>;

pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StorageError + '_ {
    move |e| StorageError::Io(path.display().to_string(), e)
}

/// Disk, snapshot, instance and blob ids come from the control plane: refuse anything that could
/// escape a path or does not look like an id.
pub fn check_id(what: &'static str, id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(StorageError::Invalid(what, id.to_string()))
    }
}

/// The name a disk attached as `device` (`/dev/vdb`) has in its instance (`vdb`: it shows at
/// `/mnt/vdb`).
pub fn device_name(device: &str) -> Result<String> {
    let name = device.strip_prefix("/dev/").unwrap_or(device);
    let ok = !name.is_empty()
        && name.len() <= 16
        && name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if ok {
        Ok(name.to_string())
    } else {
        Err(StorageError::Invalid("device", device.to_string()))
    }
}

fn gib_bytes(size_gib: u64) -> Result<u64> {
    if size_gib == 0 || size_gib > MAX_DISK_GIB {
        return Err(StorageError::Invalid("disk size (GiB)", size_gib.to_string()));
    }
    Ok(size_gib * GIB)
}

/// What a disk is on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskState {
    /// The file's size (the disk's size).
    pub size_bytes: u64,
    pub attached: Option<Attached>,
}

/// Where a disk is mounted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attached {
    pub instance_id: String,
    /// `vdb`: the disk shows at `/mnt/vdb` in the instance.
    pub name: String,
    /// The loop device (`/dev/loopN`).
    pub device: PathBuf,
}

/// How a file was copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyMethod {
    /// The copy shares the original's blocks (FICLONE): instant, no space used until either
    /// changes.
    Reflink,
    /// Only the original's data was copied, holes stay holes.
    Sparse,
    /// Nothing was copied: the result existed already.
    Existing,
}

/// What [`Storage::grow`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grown {
    /// The disk and its filesystem already had the size.
    Unchanged,
    /// The disk and its filesystem grew (online if it is mounted).
    Grown,
    /// The disk grew but its mounted filesystem could not grow online (the host lacks
    /// `CAP_SYS_RESOURCE`): it grows once the disk is unmounted, at the next `grow`.
    Pending,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// Space the snapshot takes on the host (allocated blocks).
    pub size_bytes: u64,
    pub method: CopyMethod,
}

/// The host's disks and snapshots.
pub struct Storage {
    /// The runtime's root, canonical (mountinfo and sysfs name paths that way).
    root: PathBuf,
    /// Filesystem size each disk was last grown to by this process: skips re-reading it.
    grown: Mutex<HashMap<String, u64>>,
    /// Whether the data directory's filesystem clones files: 0 unknown, 1 yes, 2 no.
    reflink: AtomicU8,
    /// Whether this process may grow a mounted ext4 filesystem (it needs `CAP_SYS_RESOURCE`).
    online_resize: bool,
    seq: AtomicU64,
}

impl Storage {
    /// The store under `root` (the runtime's data directory), with its directories made.
    pub fn new(root: &Path) -> Result<Storage> {
        for d in ["disks", "snapshots", "scratch", "instances"] {
            let p = root.join(d);
            fs::create_dir_all(&p).map_err(io(&p))?;
        }
        let root = fs::canonicalize(root).map_err(io(root))?;
        let online_resize = has_capability(CAP_SYS_RESOURCE);
        if !online_resize {
            tracing::warn!("no CAP_SYS_RESOURCE: attached disks grow only once unmounted");
        }
        Ok(Storage { root, grown: Mutex::default(), reflink: AtomicU8::new(0), online_resize, seq: AtomicU64::new(0) })
    }

    /// Whether a mounted disk's filesystem can grow online on this host.
    pub fn online_resize(&self) -> bool {
        self.online_resize
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn disk_path(&self, id: &str) -> PathBuf {
        self.root.join("disks").join(format!("{id}.img"))
    }

    pub fn snapshot_path(&self, id: &str) -> PathBuf {
        self.root.join("snapshots").join(format!("{id}.img"))
    }

    /// Where a blob fetched for a disk is put before it is checked and converted.
    pub fn fetch_path(&self, disk_id: &str) -> PathBuf {
        self.root.join("disks").join(format!("{disk_id}.fetch"))
    }

    /// A new name in the scratch directory (for archives and exports of tasks).
    pub fn scratch_file(&self, what: &str) -> PathBuf {
        let n = self.seq.fetch_add(1, Ordering::SeqCst);
        self.root.join("scratch").join(format!("{what}-{}-{n}", std::process::id()))
    }

    pub(crate) fn instance_dir(&self, id: &str) -> PathBuf {
        self.root.join("instances").join(id)
    }

    /// The instance's disk directory, shown at `/mnt` inside it.
    pub fn instance_mnt(&self, id: &str) -> PathBuf {
        self.instance_dir(id).join("mnt")
    }

    fn lock_grown(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        self.grown.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `(instance, name)` of a mount point `<root>/instances/<instance>/mnt/<name>`.
    fn parse_mount_point(&self, p: &Path) -> Option<(String, String)> {
        let rest = p.strip_prefix(self.root.join("instances")).ok()?;
        let parts: Vec<String> = rest.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
        match parts.as_slice() {
            [instance, mnt, name] if mnt == "mnt" => Some((instance.clone(), name.clone())),
            _ => None,
        }
    }

    fn attachment_of(&self, file: &Path, loops: &[LoopDev], mounts: &[Mount]) -> Option<Attached> {
        for l in loopdev::of(loops, file).into_iter().filter(|l| !l.deleted) {
            for m in mounts.iter().filter(|m| m.dev == l.dev) {
                if let Some((instance_id, name)) = self.parse_mount_point(&m.mount_point) {
                    return Some(Attached { instance_id, name, device: l.path.clone() });
                }
            }
        }
        None
    }

    /// Where `file` is mounted in this mount namespace, from any of its loop devices.
    fn mounted_at(file: &Path, loops: &[LoopDev], mounts: &[Mount]) -> Vec<(LoopDev, PathBuf)> {
        let mut out = Vec::new();
        for l in loopdev::of(loops, file) {
            for m in mounts.iter().filter(|m| m.dev == l.dev) {
                out.push((l.clone(), m.mount_point.clone()));
            }
        }
        out
    }

    fn read_mounts() -> Result<Vec<Mount>> {
        mounts::read().map_err(io(Path::new("/proc/self/mountinfo")))
    }

    // ---- observation ----

    /// The disk's file and attachment; `None` if the disk is not on this host.
    pub fn state(&self, id: &str) -> Result<Option<DiskState>> {
        check_id("disk id", id)?;
        let file = self.disk_path(id);
        let size_bytes = match fs::metadata(&file) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StorageError::Io(file.display().to_string(), e)),
        };
        let attached = self.attachment_of(&file, &loopdev::list()?, &Self::read_mounts()?);
        Ok(Some(DiskState { size_bytes, attached }))
    }

    /// The size of the filesystem in the disk (below the disk's size while a grow is pending).
    pub fn filesystem_bytes(&self, id: &str) -> Result<u64> {
        check_id("disk id", id)?;
        fs_bytes(&self.disk_path(id))
    }

    /// Ids of every disk with any file here (complete, partial or being fetched).
    pub fn disk_ids(&self) -> Result<Vec<String>> {
        self.ids_in("disks", &[".img", ".img.partial", ".fetch"])
    }

    /// Ids of every snapshot with any file here (complete or partial).
    pub fn snapshot_ids(&self) -> Result<Vec<String>> {
        self.ids_in("snapshots", &[".img", ".img.partial"])
    }

    fn ids_in(&self, dir: &str, suffixes: &[&str]) -> Result<Vec<String>> {
        let d = self.root.join(dir);
        let mut out = Vec::new();
        for e in fs::read_dir(&d).map_err(io(&d))?.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            // Longest suffix first: `.img.partial` before `.img`.
            let mut suffixes = suffixes.to_vec();
            suffixes.sort_by_key(|s| std::cmp::Reverse(s.len()));
            if let Some(id) = suffixes.iter().find_map(|s| name.strip_suffix(s)) {
                if check_id("id", id).is_ok() {
                    out.push(id.to_string());
                }
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    // ---- making disks ----

    /// Make an empty disk (an ext4 filesystem of `size_gib`), unless it exists. Returns whether
    /// it made it.
    pub fn create_empty(&self, id: &str, size_gib: u64) -> Result<bool> {
        check_id("disk id", id)?;
        let file = self.disk_path(id);
        if file.exists() {
            return Ok(false);
        }
        let bytes = gib_bytes(size_gib)?;
        let partial = partial_of(&file);
        remove_if_exists(&partial)?;
        File::create(&partial).and_then(|f| f.set_len(bytes)).map_err(io(&partial))?;
        mkfs(&partial)?;
        self.complete(&partial, &file)?;
        tracing::info!(disk = %id, size_gib, "made an empty disk");
        Ok(true)
    }

    /// Make a disk from a snapshot this host keeps, grown to `size_gib`, unless it exists.
    pub fn create_from_snapshot(&self, id: &str, snapshot_id: &str, size_gib: u64) -> Result<bool> {
        check_id("disk id", id)?;
        check_id("snapshot id", snapshot_id)?;
        let file = self.disk_path(id);
        if file.exists() {
            return Ok(false);
        }
        let bytes = gib_bytes(size_gib)?;
        let snap = self.snapshot_path(snapshot_id);
        if !snap.exists() {
            return Err(StorageError::NoSnapshot(snapshot_id.to_string()));
        }
        let partial = partial_of(&file);
        let method = self.copy_file(&snap, &partial)?;
        grow_offline(&partial, bytes)?;
        self.complete(&partial, &file)?;
        tracing::info!(disk = %id, snapshot = %snapshot_id, ?method, "made a disk from a snapshot");
        Ok(true)
    }

    /// Make a disk from a blob fetched from the region (a qcow2 image of a disk, as
    /// [`Storage::export`] makes), unless it exists. The blob must have the SHA-256 the region
    /// recorded, be a plain qcow2 (no backing or external data file) and hold an ext4 filesystem
    /// that `e2fsck` finds sound, before the host's kernel ever mounts it.
    pub fn create_from_blob(&self, id: &str, blob: &Path, sha256: &str, size_gib: u64) -> Result<bool> {
        check_id("disk id", id)?;
        let file = self.disk_path(id);
        if file.exists() {
            return Ok(false);
        }
        let bytes = gib_bytes(size_gib)?;
        let found = crate::images::sha256_file(blob).map_err(|e| StorageError::Refused(e.to_string()))?;
        if !found.eq_ignore_ascii_case(sha256) {
            return Err(StorageError::Checksum { expected: sha256.to_string(), found });
        }
        check_qcow2(blob)?;
        let partial = partial_of(&file);
        remove_if_exists(&partial)?;
        loopdev::run(
            Command::new("qemu-img").args(["convert", "-q", "-f", "qcow2", "-O", "raw"]).arg(blob).arg(&partial),
        )?;
        fs_bytes(&partial)?;
        fsck(&partial).map_err(|e| StorageError::Refused(format!("the blob's filesystem is damaged: {e}")))?;
        grow_offline(&partial, bytes)?;
        self.complete(&partial, &file)?;
        tracing::info!(disk = %id, "made a disk from a blob");
        Ok(true)
    }

    fn complete(&self, partial: &Path, file: &Path) -> Result<()> {
        File::open(partial).and_then(|f| f.sync_all()).map_err(io(partial))?;
        fs::rename(partial, file).map_err(io(file))?;
        sync_dir(file)
    }

    /// Grow the disk to `size_gib` (never shrink it): the file, then the filesystem — online
    /// through its loop device when mounted, where the host may.
    pub fn grow(&self, id: &str, size_gib: u64) -> Result<Grown> {
        check_id("disk id", id)?;
        let want = gib_bytes(size_gib)?;
        let file = self.disk_path(id);
        let mut len = match fs::metadata(&file) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(StorageError::NoDisk(id.to_string())),
            Err(e) => return Err(StorageError::Io(file.display().to_string(), e)),
        };
        let mut changed = false;
        if len < want {
            OpenOptions::new().write(true).open(&file).and_then(|f| f.set_len(want)).map_err(io(&file))?;
            len = want;
            changed = true;
        }
        if !changed && self.lock_grown().get(id).is_some_and(|g| *g >= len) {
            return Ok(Grown::Unchanged);
        }
        // Read through the file: for a mounted filesystem the superblock there may lag behind a
        // resize just made, which only costs a resize2fs with nothing to do.
        if fs_bytes(&file)? < len {
            let loops = loopdev::list()?;
            let mounted = Self::mounted_at(&file, &loops, &Self::read_mounts()?).into_iter().find(|(l, _)| !l.deleted);
            match mounted {
                Some((l, _)) if !self.online_resize => {
                    if changed {
                        loopdev::refresh_capacity(&l.path)?;
                    }
                    return Ok(Grown::Pending);
                }
                Some((l, _)) => {
                    loopdev::refresh_capacity(&l.path)?;
                    loopdev::run(Command::new("resize2fs").arg(&l.path))?;
                }
                None => {
                    // A loop device without a mount is a leftover; resize the file itself.
                    for l in loopdev::of(&loops, &file) {
                        loopdev::detach(&l.path)?;
                    }
                    grow_offline(&file, len)?;
                }
            }
            changed = true;
            tracing::info!(disk = %id, size_gib = len / GIB, "grew a disk");
        }
        self.lock_grown().insert(id.to_string(), len);
        Ok(if changed { Grown::Grown } else { Grown::Unchanged })
    }

    // ---- attaching ----

    /// Make the instance's disk directory a shared mount, so that disks mounted there later
    /// show up in a container that bind-mounted it at boot. Idempotent.
    pub fn prepare_instance(&self, instance_id: &str) -> Result<()> {
        check_id("instance id", instance_id)?;
        let mnt = self.instance_mnt(instance_id);
        fs::create_dir_all(&mnt).map_err(io(&mnt))?;
        let mounts = Self::read_mounts()?;
        let found = mounts.iter().rfind(|m| m.mount_point == mnt);
        if found.is_none() {
            mount(Some(&mnt), &mnt, None::<&str>, MsFlags::MS_BIND, None::<&str>)
                .map_err(|e| cmd_err("bind mount", &mnt, e))?;
        }
        if !found.is_some_and(|m| m.shared) {
            mount(None::<&str>, &mnt, None::<&str>, MsFlags::MS_SHARED, None::<&str>)
                .map_err(|e| cmd_err("make shared", &mnt, e))?;
        }
        Ok(())
    }

    /// Attach the disk to an instance as `name` (`vdb`): its filesystem is mounted at
    /// `instances/<instance>/mnt/<name>` from a loop device, and shows at `/mnt/<name>` in the
    /// instance — at once if it runs. A disk mounted elsewhere is refused (detach it first).
    /// Returns whether anything changed.
    pub fn attach(&self, id: &str, instance_id: &str, name: &str) -> Result<bool> {
        check_id("disk id", id)?;
        check_id("instance id", instance_id)?;
        let name = device_name(name)?;
        let file = self.disk_path(id);
        if !file.exists() {
            return Err(StorageError::NoDisk(id.to_string()));
        }
        if !self.instance_dir(instance_id).is_dir() {
            return Err(StorageError::NoInstance(instance_id.to_string()));
        }
        self.prepare_instance(instance_id)?;
        let target = self.instance_mnt(instance_id).join(&name);
        let loops = loopdev::list()?;
        let mounts = Self::read_mounts()?;
        if let Some((l, at)) = Self::mounted_at(&file, &loops, &mounts).into_iter().next() {
            if at == target && !l.deleted {
                return Ok(false);
            }
            let instance = self.parse_mount_point(&at).map(|(i, _)| i).unwrap_or_else(|| at.display().to_string());
            return Err(StorageError::Attached { disk: id.to_string(), instance });
        }
        if mounts::is_mount_point(&mounts, &target) {
            return Err(StorageError::DeviceTaken {
                device: format!("/dev/{name}"),
                instance: instance_id.to_string(),
            });
        }
        // Reuse a device a crash left (unmounted); free ones bound to an older file.
        let mut dev = None;
        for l in loopdev::of(&loops, &file) {
            if l.deleted || dev.is_some() {
                loopdev::detach(&l.path)?;
            } else {
                dev = Some(l.path);
            }
        }
        let dev = match dev {
            Some(d) => d,
            None => loopdev::attach(&file, false)?,
        };
        match fs::create_dir(&target) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(StorageError::Io(target.display().to_string(), e)),
        }
        mount(Some(&dev), &target, Some("ext4"), MsFlags::MS_NODEV, None::<&str>)
            .map_err(|e| cmd_err("mount", &target, e))?;
        tracing::info!(disk = %id, instance = %instance_id, device = %dev.display(), "attached a disk");
        Ok(true)
    }

    /// Detach the disk from wherever it is mounted and free its loop device; the file stays. A
    /// disk that a process of the instance still uses is refused with [`StorageError::Busy`] and
    /// left attached. Returns whether anything changed.
    pub fn detach(&self, id: &str) -> Result<bool> {
        check_id("disk id", id)?;
        let file = self.disk_path(id);
        let loops = loopdev::list()?;
        let mounts = Self::read_mounts()?;
        let mut changed = false;
        for (_, at) in Self::mounted_at(&file, &loops, &mounts) {
            let instance = self.parse_mount_point(&at).map(|(i, _)| i);
            match umount2(&at, MntFlags::empty()) {
                Ok(()) | Err(Errno::EINVAL) | Err(Errno::ENOENT) => {}
                Err(Errno::EBUSY) => {
                    return Err(StorageError::Busy {
                        disk: id.to_string(),
                        instance: instance.unwrap_or_else(|| at.display().to_string()),
                    })
                }
                Err(e) => return Err(cmd_err("umount", &at, e)),
            }
            if instance.is_some() {
                let _ = fs::remove_dir(&at);
            }
            changed = true;
        }
        for l in loopdev::of(&loops, &file) {
            loopdev::detach(&l.path)?;
            changed = true;
        }
        if changed {
            tracing::info!(disk = %id, "detached a disk");
        }
        Ok(changed)
    }

    /// Detach every disk of an instance and unmount its disk directory (when the instance is
    /// removed). Disk files stay.
    pub fn release_instance(&self, instance_id: &str) -> Result<()> {
        check_id("instance id", instance_id)?;
        let mnt = self.instance_mnt(instance_id);
        let loops = loopdev::list()?;
        let mounts = Self::read_mounts()?;
        for at in mounts::below(&mounts, &mnt) {
            let dev = mounts.iter().find(|m| m.mount_point == at).map(|m| m.dev.clone()).unwrap_or_default();
            let lo = loops.iter().find(|l| l.dev == dev);
            match umount2(&at, MntFlags::empty()) {
                Ok(()) | Err(Errno::EINVAL) | Err(Errno::ENOENT) => {}
                Err(Errno::EBUSY) => {
                    let disk = lo
                        .and_then(|l| l.backing.file_stem())
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_else(|| at.display().to_string());
                    return Err(StorageError::Busy { disk, instance: instance_id.to_string() });
                }
                Err(e) => return Err(cmd_err("umount", &at, e)),
            }
            let _ = fs::remove_dir(&at);
            if let Some(l) = lo.filter(|l| l.backing.starts_with(self.root.join("disks"))) {
                loopdev::detach(&l.path)?;
            }
        }
        // The directory's own bind mount (twice, should a crash have stacked two).
        for _ in 0..4 {
            if !mounts::is_mount_point(&Self::read_mounts()?, &mnt) {
                break;
            }
            if let Err(e) = umount2(&mnt, MntFlags::empty()) {
                // Nothing is mounted below it any more: detaching it cannot hide a disk.
                umount2(&mnt, MntFlags::MNT_DETACH).map_err(|_| cmd_err("umount", &mnt, e))?;
            }
        }
        Ok(())
    }

    /// Unmount the instance's disk directory if no disk is attached there (when it stops: a
    /// stopped instance without disks holds nothing on the host but its own directory).
    pub fn release_idle_mnt(&self, instance_id: &str) -> Result<()> {
        check_id("instance id", instance_id)?;
        let mnt = self.instance_mnt(instance_id);
        let mounts = Self::read_mounts()?;
        if mounts::is_mount_point(&mounts, &mnt) && mounts::below(&mounts, &mnt).is_empty() {
            self.release_instance(instance_id)?;
        }
        Ok(())
    }

    /// Remove a disk's files (detaching it first); a disk in use is refused.
    pub fn remove_disk(&self, id: &str) -> Result<()> {
        check_id("disk id", id)?;
        self.detach(id)?;
        let file = self.disk_path(id);
        for f in [partial_of(&file), self.fetch_path(id), file] {
            remove_if_exists(&f)?;
        }
        self.lock_grown().remove(id);
        tracing::info!(disk = %id, "removed a disk");
        Ok(())
    }

    // ---- snapshots ----

    /// Take a crash-consistent snapshot of a disk: its filesystem, if mounted, is frozen
    /// (`fsfreeze`: writes drained and the journal committed) while the file is copied —
    /// reflinked where the filesystem can, else sparse. Repeating it once the snapshot exists
    /// does nothing.
    pub fn snapshot(&self, disk_id: &str, snapshot_id: &str) -> Result<SnapshotInfo> {
        check_id("disk id", disk_id)?;
        check_id("snapshot id", snapshot_id)?;
        let dst = self.snapshot_path(snapshot_id);
        if dst.exists() {
            return Ok(SnapshotInfo { size_bytes: allocated(&dst)?, method: CopyMethod::Existing });
        }
        let src = self.disk_path(disk_id);
        if !src.exists() {
            return Err(StorageError::NoDisk(disk_id.to_string()));
        }
        let partial = partial_of(&dst);
        let mounted = Self::mounted_at(&src, &loopdev::list()?, &Self::read_mounts()?)
            .into_iter()
            .find(|(l, _)| !l.deleted)
            .map(|(_, at)| at);
        let frozen = mounted.as_deref().map(Frozen::freeze).transpose()?;
        let copied = self.copy_file(&src, &partial);
        if let Some(f) = frozen {
            f.thaw()?;
        }
        let method = copied?;
        self.complete(&partial, &dst)?;
        let size_bytes = allocated(&dst)?;
        tracing::info!(disk = %disk_id, snapshot = %snapshot_id, ?method, size_bytes, "took a snapshot");
        Ok(SnapshotInfo { size_bytes, method })
    }

    /// Put the disk back as the snapshot was (its size stays). The disk is detached first; the
    /// caller makes sure its instance does not run.
    pub fn reset(&self, disk_id: &str, snapshot_id: &str) -> Result<()> {
        check_id("disk id", disk_id)?;
        check_id("snapshot id", snapshot_id)?;
        let snap = self.snapshot_path(snapshot_id);
        if !snap.exists() {
            return Err(StorageError::NoSnapshot(snapshot_id.to_string()));
        }
        let file = self.disk_path(disk_id);
        let size = match fs::metadata(&file) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StorageError::NoDisk(disk_id.to_string()))
            }
            Err(e) => return Err(StorageError::Io(file.display().to_string(), e)),
        };
        self.detach(disk_id)?;
        let partial = partial_of(&file);
        self.copy_file(&snap, &partial)?;
        grow_offline(&partial, size)?;
        self.complete(&partial, &file)?;
        self.lock_grown().remove(disk_id);
        tracing::info!(disk = %disk_id, snapshot = %snapshot_id, "reset a disk to a snapshot");
        Ok(())
    }

    /// Remove a snapshot's files. One a task has mounted (a capture in progress) is refused.
    pub fn remove_snapshot(&self, id: &str) -> Result<()> {
        check_id("snapshot id", id)?;
        let file = self.snapshot_path(id);
        if !loopdev::of(&loopdev::list()?, &file).is_empty() {
            return Err(StorageError::Refused(format!("snapshot {id} is in use")));
        }
        remove_if_exists(&partial_of(&file))?;
        remove_if_exists(&file)?;
        tracing::info!(snapshot = %id, "removed a snapshot");
        Ok(())
    }

    // ---- blobs ----

    /// Write a disk's content (`source`: a disk or snapshot file of this store) as a qcow2 image
    /// to `dest` — the format of disk and snapshot blobs: clusters of zeros are left out, so a
    /// mostly empty disk travels small. A mounted disk is flushed first (frozen and thawed);
    /// the caller makes sure nothing writes to it meanwhile.
    pub fn export(&self, source: &Path, dest: &Path) -> Result<u64> {
        if !source.starts_with(&self.root) || !source.exists() {
            return Err(StorageError::Refused(format!("{} is not a disk of this host", source.display())));
        }
        let mounted = Self::mounted_at(source, &loopdev::list()?, &Self::read_mounts()?);
        if let Some((_, at)) = mounted.iter().find(|(l, _)| !l.deleted) {
            Frozen::freeze(at)?.thaw()?;
        }
        let partial = partial_of(dest);
        remove_if_exists(&partial)?;
        loopdev::run(
            Command::new("qemu-img").args(["convert", "-q", "-f", "raw", "-O", "qcow2"]).arg(source).arg(&partial),
        )?;
        fs::rename(&partial, dest).map_err(io(dest))?;
        fs::metadata(dest).map(|m| m.len()).map_err(io(dest))
    }

    // ---- recovery ----

    /// Undo what a process killed in the middle of a task left: thaw any of our disks' frozen
    /// filesystems, unmount and free what captures had mounted, empty the scratch directory.
    /// Run before the first task of a process.
    pub fn recover(&self) -> Result<()> {
        let scratch = self.root.join("scratch");
        let mounts = Self::read_mounts()?;
        for at in mounts::below(&mounts, &scratch) {
            tracing::warn!(mount = %at.display(), "unmounting what a task cut short left");
            umount2(&at, MntFlags::MNT_DETACH).map_err(|e| cmd_err("umount", &at, e))?;
        }
        let loops = loopdev::list()?;
        for l in &loops {
            if l.backing.starts_with(&scratch) || l.backing.starts_with(self.root.join("snapshots")) {
                loopdev::detach(&l.path)?;
            }
        }
        for l in loops.iter().filter(|l| l.backing.starts_with(self.root.join("disks"))) {
            for m in mounts.iter().filter(|m| m.dev == l.dev) {
                // Not frozen answers EINVAL: nothing to do.
                let _ = Command::new("fsfreeze").arg("-u").arg(&m.mount_point).output();
            }
        }
        if mounts::below(&Self::read_mounts()?, &scratch).is_empty() {
            for e in fs::read_dir(&scratch).map_err(io(&scratch))?.flatten() {
                let p = e.path();
                let res = if p.is_dir() && !p.is_symlink() { fs::remove_dir_all(&p) } else { fs::remove_file(&p) };
                res.map_err(io(&p))?;
            }
        }
        Ok(())
    }

    /// Unmount and free everything of this store (disks of every instance, captures), leaving
    /// the files: before the data directory is removed.
    pub fn release_all(&self) -> Result<()> {
        self.recover()?;
        let instances = self.root.join("instances");
        for e in fs::read_dir(&instances).map_err(io(&instances))?.flatten() {
            let id = e.file_name().to_string_lossy().into_owned();
            if check_id("instance id", &id).is_ok() {
                self.release_instance(&id)?;
            }
        }
        for id in self.disk_ids()? {
            self.detach(&id)?;
        }
        Ok(())
    }

    /// Copy `src` to `dst` (replacing it): a reflink if the filesystem can, else a sparse copy.
    pub(crate) fn copy_file(&self, src: &Path, dst: &Path) -> Result<CopyMethod> {
        remove_if_exists(dst)?;
        if self.reflink.load(Ordering::Relaxed) != 2 {
            match loopdev::run(Command::new("cp").arg("--reflink=always").arg(src).arg(dst)) {
                Ok(_) => {
                    self.reflink.store(1, Ordering::Relaxed);
                    return Ok(CopyMethod::Reflink);
                }
                Err(e) => {
                    tracing::debug!(error = %e, "no reflink here; copying sparsely");
                    self.reflink.store(2, Ordering::Relaxed);
                    remove_if_exists(dst)?;
                }
            }
        }
        loopdev::run(Command::new("cp").args(["--reflink=never", "--sparse=always"]).arg(src).arg(dst))?;
        Ok(CopyMethod::Sparse)
    }
}

#[cfg(test)]
mod tests;
