//! Capturing images: a plain tar of a root filesystem — an instance's (the image it booted from
//! with what it wrote since) or one a snapshot holds — in the format the image store installs.
//!
//! A running instance is archived from its live root filesystem (as mounted for its container):
//! files written during the capture may be caught half-way, as with a snapshot of a running
//! machine's disk without a freeze. A stopped instance is archived from a read-only overlay of
//! its writable layer on its image, mounted for the capture. A snapshot is attached read-only
//! and mounted without replaying its journal (a snapshot taken under `fsfreeze` has none to
//! replay). Everything a capture mounts lives in the scratch directory and is undone when it
//! ends, also on failure; [`Storage::recover`] undoes what a killed process left.
//!
//! The tree is walked through directory descriptors without following symlinks ([`tree`]), so a
//! guest cannot make the host archive its own files. Left out: the instance's first-boot data
//! (`/var/lib/feiyun/user-data*`: an instance made from the image runs its own), its hostname,
//! and the keys the platform wrote into `/root/.ssh/authorized_keys` (the guest's own lines
//! stay). Sockets are skipped; extended attributes (file capabilities) are not kept.
//!
//! [`tree`]: crate::tree

use std::ffi::OsStr;
use std::fs;
use std::io::{BufWriter, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{FileStat, SFlag};

use crate::disks::{io, remove_if_exists, Storage, StorageError};
use crate::loopdev;
use crate::mounts;
use crate::tree::DirHandle;

/// What a capture produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Captured {
    /// Bytes of the archive.
    pub archive_bytes: u64,
    /// Files, directories and links in it.
    pub entries: u64,
}

/// Paths (relative to the root) never put in an image.
const LEFT_OUT: &[&str] =
    &["var/lib/feiyun/user-data", "var/lib/feiyun/user-data.done", "var/lib/feiyun/user-data.tmp", "etc/hostname"];
const AUTHORIZED_KEYS: &str = "root/.ssh/authorized_keys";

/// Unmounts (and removes the directory of) a scratch mount when dropped.
struct ScratchMount(PathBuf);

impl Drop for ScratchMount {
    fn drop(&mut self) {
        if let Err(e) = umount2(&self.0, MntFlags::MNT_DETACH) {
            tracing::warn!(mount = %self.0.display(), error = %e, "cannot unmount a capture's mount");
        }
        let _ = fs::remove_dir(&self.0);
    }
}

/// Frees a loop device when dropped.
struct ScratchLoop(PathBuf);

impl Drop for ScratchLoop {
    fn drop(&mut self) {
        if let Err(e) = loopdev::detach(&self.0) {
            tracing::warn!(device = %self.0.display(), error = %e, "cannot free a capture's loop device");
        }
    }
}

impl Storage {
    /// Archive an instance's root filesystem to `dest`: live if it runs, else from a read-only
    /// overlay of its writable layer on `image_rootfs`. The caller keeps the instance from
    /// starting or stopping meanwhile.
    pub fn capture_instance(
        &self,
        instance_id: &str,
        image_rootfs: &Path,
        dest: &Path,
    ) -> Result<Captured, StorageError> {
        crate::disks::check_id("instance id", instance_id)?;
        let dir = self.instance_dir(instance_id);
        let upper = dir.join("upper");
        if !upper.is_dir() {
            return Err(StorageError::NoInstance(instance_id.to_string()));
        }
        let platform_keys = crate::keys::recorded(&dir.join(crate::keys::RECORD));
        let rootfs = dir.join("rootfs");
        let live = mounts::is_mount_point(&mounts::read().map_err(io(Path::new("/proc/self/mountinfo")))?, &rootfs)
            || dir.join("rootfs.copy").exists();
        let _mounted;
        let tree = if live {
            rootfs
        } else {
            let at = self.scratch_file("root");
            fs::create_dir(&at).map_err(io(&at))?;
            let opts = format!("lowerdir={}:{}", upper.display(), image_rootfs.display());
            let res = mount(Some("overlay"), &at, Some("overlay"), MsFlags::MS_RDONLY, Some(opts.as_str()));
            if let Err(e) = res {
                let _ = fs::remove_dir(&at);
                return Err(StorageError::Command("mount overlay".into(), format!("{}: {e}", at.display())));
            }
            _mounted = ScratchMount(at.clone());
            at
        };
        archive(&tree, dest, &platform_keys)
    }

    /// Archive the root filesystem a snapshot holds to `dest`.
    pub fn capture_snapshot(&self, snapshot_id: &str, dest: &Path) -> Result<Captured, StorageError> {
        crate::disks::check_id("snapshot id", snapshot_id)?;
        let file = self.snapshot_path(snapshot_id);
        if !file.exists() {
            return Err(StorageError::NoSnapshot(snapshot_id.to_string()));
        }
        let dev = loopdev::attach(&file, true)?;
        let _lo = ScratchLoop(dev.clone());
        let at = self.scratch_file("snap");
        fs::create_dir(&at).map_err(io(&at))?;
        let flags = MsFlags::MS_RDONLY | MsFlags::MS_NODEV | MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC;
        if let Err(e) = mount(Some(&dev), &at, Some("ext4"), flags, Some("noload")) {
            let _ = fs::remove_dir(&at);
            return Err(StorageError::Command("mount".into(), format!("snapshot {snapshot_id}: {e}")));
        }
        let _mounted = ScratchMount(at.clone());
        let looks_like_root = ["bin/sh", "etc/os-release", "usr/lib/os-release", "sbin/feiyun-init"]
            .iter()
            .any(|p| at.join(p).symlink_metadata().is_ok());
        if !looks_like_root {
            return Err(StorageError::Refused(format!("snapshot {snapshot_id} holds no root filesystem")));
        }
        archive(&at, dest, &[])
    }
}

/// Write a plain tar of the tree at `root` to `dest` (through `dest.partial`).
fn archive(root: &Path, dest: &Path, platform_keys: &[String]) -> Result<Captured, StorageError> {
    let partial = crate::disks::partial_of(dest);
    remove_if_exists(&partial)?;
    let file = fs::File::create(&partial).map_err(io(&partial))?;
    let mut b = tar::Builder::new(BufWriter::new(file));
    let mut dir = DirHandle::open_root(root).map_err(|e| StorageError::Io(root.display().to_string(), e.into()))?;
    let mut entries = 0u64;
    walk(&mut b, &mut dir, Path::new(""), platform_keys, &mut entries)?;
    let terr = |e: std::io::Error| StorageError::Io(partial.display().to_string(), e);
    let mut w = b.into_inner().map_err(terr)?;
    w.flush().map_err(terr)?;
    let f = w.into_inner().map_err(|e| terr(e.into_error()))?;
    f.sync_all().map_err(terr)?;
    fs::rename(&partial, dest).map_err(io(dest))?;
    let archive_bytes = fs::metadata(dest).map(|m| m.len()).map_err(io(dest))?;
    Ok(Captured { archive_bytes, entries })
}

fn header(st: &FileStat, kind: tar::EntryType, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(st.st_uid as u64);
    h.set_gid(st.st_gid as u64);
    h.set_mtime(st.st_mtime.max(0) as u64);
    h.set_size(size);
    h
}

fn walk<W: Write>(
    b: &mut tar::Builder<W>,
    dir: &mut DirHandle,
    rel: &Path,
    platform_keys: &[String],
    entries: &mut u64,
) -> Result<(), StorageError> {
    let names = dir.names().map_err(|e| StorageError::Io(rel.display().to_string(), e.into()))?;
    for name in names {
        let path = rel.join(&name);
        if LEFT_OUT.iter().any(|p| Path::new(p) == path) {
            continue;
        }
        let terr = |e: std::io::Error| StorageError::Io(path.display().to_string(), e);
        let nerr = |e: nix::Error| StorageError::Io(path.display().to_string(), e.into());
        // Gone since it was listed (a running instance): skipped.
        let Some(st) = dir.stat(&name).map_err(nerr)? else { continue };
        let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
        if kind == SFlag::S_IFDIR {
            let mut h = header(&st, tar::EntryType::Directory, 0);
            b.append_data(&mut h, &path, std::io::empty()).map_err(terr)?;
            *entries += 1;
            match dir.open_dir(&name) {
                Ok(mut sub) => walk(b, &mut sub, &path, platform_keys, entries)?,
                // Replaced by something else since the stat: its new content is not taken.
                Err(nix::Error::ELOOP | nix::Error::ENOTDIR | nix::Error::ENOENT) => {}
                Err(e) => return Err(nerr(e)),
            }
        } else if kind == SFlag::S_IFREG {
            let p = dir.path_of(&name);
            let file =
                match fs::OpenOptions::new().read(true).custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits()).open(&p) {
                    Ok(f) => f,
                    Err(e)
                        if e.raw_os_error() == Some(nix::libc::ELOOP) || e.kind() == std::io::ErrorKind::NotFound =>
                    {
                        continue
                    }
                    Err(e) => return Err(terr(e)),
                };
            let meta = file.metadata().map_err(terr)?;
            if !meta.is_file() {
                continue;
            }
            if path == Path::new(AUTHORIZED_KEYS) && !platform_keys.is_empty() {
                let mut text = String::new();
                let _ = (&file).take(1 << 20).read_to_string(&mut text);
                let kept: String = text
                    .lines()
                    .filter(|l| !platform_keys.iter().any(|k| k == l.trim_end()))
                    .map(|l| format!("{l}\n"))
                    .collect();
                let mut h = header(&st, tar::EntryType::Regular, kept.len() as u64);
                b.append_data(&mut h, &path, kept.as_bytes()).map_err(terr)?;
            } else {
                let len = meta.len();
                let mut h = header(&st, tar::EntryType::Regular, len);
                b.append_data(&mut h, &path, Exactly { inner: file, left: len }).map_err(terr)?;
            }
            *entries += 1;
        } else if kind == SFlag::S_IFLNK {
            let target = match dir.read_link(&name) {
                Ok(t) => t,
                Err(nix::Error::ENOENT | nix::Error::EINVAL) => continue,
                Err(e) => return Err(nerr(e)),
            };
            let mut h = header(&st, tar::EntryType::Symlink, 0);
            b.append_link(&mut h, &path, Path::new(OsStr::from_bytes(target.as_bytes()))).map_err(terr)?;
            *entries += 1;
        } else if kind == SFlag::S_IFIFO || kind == SFlag::S_IFCHR || kind == SFlag::S_IFBLK {
            let t = if kind == SFlag::S_IFIFO {
                tar::EntryType::Fifo
            } else if kind == SFlag::S_IFCHR {
                tar::EntryType::Char
            } else {
                tar::EntryType::Block
            };
            let mut h = header(&st, t, 0);
            h.set_device_major(nix::sys::stat::major(st.st_rdev) as u32).map_err(terr)?;
            h.set_device_minor(nix::sys::stat::minor(st.st_rdev) as u32).map_err(terr)?;
            b.append_data(&mut h, &path, std::io::empty()).map_err(terr)?;
            *entries += 1;
        }
        // Sockets cannot be archived and mean nothing in an image.
    }
    Ok(())
}

/// Exactly `left` bytes of a file: zeros if it shrank while being read, cut if it grew — the
/// tar entry's size was fixed by its header.
struct Exactly {
    inner: fs::File,
    left: u64,
}

impl Read for Exactly {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = match self.inner.read(&mut buf[..want])? {
            0 => {
                buf[..want].fill(0);
                want
            }
            n => n,
        };
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn names(archive: &Path) -> Vec<String> {
        let mut t = tar::Archive::new(fs::File::open(archive).expect("open"));
        let mut out: Vec<String> = t
            .entries()
            .expect("entries")
            .map(|e| e.expect("entry").path().expect("path").to_string_lossy().into_owned())
            .collect();
        out.sort();
        out
    }

    #[test]
    fn archives_a_tree_without_what_an_image_must_not_carry() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("root");
        for d in ["bin", "etc", "root/.ssh", "var/lib/feiyun", "deep/a/b"] {
            fs::create_dir_all(root.join(d)).expect("dir");
        }
        fs::write(root.join("bin/tool"), "#!/bin/sh\n").expect("write");
        symlink("tool", root.join("bin/sh")).expect("link");
        symlink("/etc/shadow", root.join("etc/escape")).expect("link");
        fs::write(root.join("etc/hostname"), "old\n").expect("write");
        fs::write(root.join("var/lib/feiyun/user-data"), "echo once\n").expect("write");
        fs::write(root.join("var/lib/feiyun/user-data.done"), "").expect("write");
        fs::write(root.join("root/.ssh/authorized_keys"), "ssh-ed25519 PLATFORM\nssh-rsa GUEST\n").expect("write");
        fs::write(root.join("deep/a/b/file"), vec![7u8; 3000]).expect("write");
        let _sock = std::os::unix::net::UnixListener::bind(root.join("sock")).expect("socket");
        let out = dir.path().join("out.tar");
        let got = archive(&root, &out, &["ssh-ed25519 PLATFORM".to_string()]).expect("archive");
        let n = names(&out);
        assert!(n.contains(&"bin/tool".to_string()) && n.contains(&"deep/a/b/file".to_string()), "{n:?}");
        for gone in ["etc/hostname", "var/lib/feiyun/user-data", "var/lib/feiyun/user-data.done", "sock"] {
            assert!(!n.contains(&gone.to_string()), "{gone} left out: {n:?}");
        }
        assert_eq!(got.entries as usize, n.len());
        // Links are kept as links (never followed), and the platform's key is not in the image.
        let store = crate::images::ImageStore::new(dir.path().join("images"));
        let sum = crate::images::sha256_file(&out).expect("sum");
        store.install_archive("m-cap", &out, &sum, "now").expect("install");
        let r = store.rootfs("m-cap");
        assert_eq!(fs::read_link(r.join("etc/escape")).expect("link"), PathBuf::from("/etc/shadow"));
        assert_eq!(fs::read_to_string(r.join("root/.ssh/authorized_keys")).expect("keys"), "ssh-rsa GUEST\n");
        assert_eq!(fs::read(r.join("deep/a/b/file")).expect("file").len(), 3000);
    }
}
