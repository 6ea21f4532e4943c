//! Reading and writing inside a tree a guest controls (its root filesystem as the host sees it)
//! without ever following one of its symlinks: every step is relative to an open directory and
//! refuses symlinks, so a link to `/etc` planted by the guest cannot make the host read or write
//! its own files.

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::mkdirat;
use nix::sys::stat::{fstatat, FileStat, Mode};
use nix::unistd::{unlinkat, UnlinkatFlags};

/// An open directory of the tree.
pub(crate) struct DirHandle(Dir);

const DIR_FLAGS: OFlag = OFlag::O_RDONLY.union(OFlag::O_DIRECTORY).union(OFlag::O_NOFOLLOW).union(OFlag::O_CLOEXEC);

impl DirHandle {
    /// The tree's root (a path of the host, trusted).
    pub fn open_root(path: &Path) -> nix::Result<DirHandle> {
        Dir::open(path, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty()).map(DirHandle)
    }

    /// A subdirectory; a symlink or anything else is refused (`ELOOP`, `ENOTDIR`).
    pub fn open_dir(&self, name: &OsStr) -> nix::Result<DirHandle> {
        Dir::openat(Some(self.fd()), name, DIR_FLAGS, Mode::empty()).map(DirHandle)
    }

    /// A subdirectory, made with `mode` if missing.
    pub fn open_or_make_dir(&self, name: &str, mode: u32) -> nix::Result<DirHandle> {
        match self.open_dir(OsStr::new(name)) {
            Err(Errno::ENOENT) => {
                match mkdirat(Some(self.fd()), name, Mode::from_bits_truncate(mode)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(e),
                }
                self.open_dir(OsStr::new(name))
            }
            other => other,
        }
    }

    pub fn fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }

    /// A path naming `name` in this directory through the open descriptor: opening it with
    /// `O_NOFOLLOW` resolves nothing but that one name.
    pub fn path_of(&self, name: &OsStr) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.fd())).join(name)
    }

    /// `lstat` of an entry (`None` if it vanished).
    pub fn stat(&self, name: &OsStr) -> nix::Result<Option<FileStat>> {
        match fstatat(Some(self.fd()), name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(s) => Ok(Some(s)),
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn read_link(&self, name: &OsStr) -> nix::Result<OsString> {
        nix::fcntl::readlinkat(Some(self.fd()), name)
    }

    pub fn remove_file(&self, name: &str) -> nix::Result<()> {
        match unlinkat(Some(self.fd()), name, UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The entries' names (without `.` and `..`), sorted.
    pub fn names(&mut self) -> nix::Result<Vec<OsString>> {
        let mut out = Vec::new();
        for e in self.0.iter() {
            let e = e?;
            let n = e.file_name().to_bytes();
            if n != b"." && n != b".." {
                out.push(OsStr::from_bytes(n).to_os_string());
            }
        }
        out.sort();
        Ok(out)
    }
}
