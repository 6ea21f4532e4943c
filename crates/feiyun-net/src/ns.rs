//! Network namespaces: named ones under `/run/netns` (created and removed the way `ip netns`
//! does, with the same files, so `ip netns exec` works on them), and running code inside any
//! namespace on a short-lived thread that joins it with `setns` — the rest of the process keeps
//! its own namespace, and sockets opened on that thread stay in the joined one.

use std::fs::{File, OpenOptions};
use std::future::Future;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::statfs::{statfs, NSFS_MAGIC};

use crate::error::{io, sys, NetError, Result};

pub const NETNS_DIR: &str = "/run/netns";

pub fn netns_path(name: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(name)
}

/// An open network namespace.
#[derive(Debug)]
pub struct Netns {
    file: File,
    label: String,
}

impl Netns {
    /// The namespace of the calling thread.
    pub fn current() -> Result<Netns> {
        Netns::open(Path::new("/proc/thread-self/ns/net"))
    }

    pub fn open(path: &Path) -> Result<Netns> {
        let file = File::open(path).map_err(io(path))?;
        Ok(Netns { file, label: path.display().to_string() })
    }

    pub fn open_named(name: &str) -> Result<Netns> {
        Netns::open(&netns_path(name))
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    pub(crate) fn file(&self) -> &File {
        &self.file
    }

    /// Runs `f` on a new thread that has joined this namespace. Processes it spawns and sockets it
    /// opens belong to the namespace.
    pub fn run<R: Send>(&self, f: impl FnOnce() -> R + Send) -> Result<R> {
        std::thread::scope(|s| {
            s.spawn(|| {
                setns(&self.file, CloneFlags::CLONE_NEWNET).map_err(sys(format!("setns {}", self.label)))?;
                Ok(f())
            })
            .join()
            .map_err(|_| NetError::Thread(self.label.clone()))?
        })
    }

    /// Runs an async netlink conversation inside this namespace.
    pub fn netlink<R, F, Fut>(&self, f: F) -> Result<R>
    where
        R: Send,
        F: FnOnce(rtnetlink::Handle) -> Fut + Send,
        Fut: Future<Output = Result<R>>,
    {
        self.run(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_io().build().map_err(io("tokio runtime"))?;
            rt.block_on(async move {
                let (conn, handle, _) = rtnetlink::new_connection().map_err(io("netlink socket"))?;
                let task = tokio::spawn(conn);
                let out = f(handle).await;
                task.abort();
                out
            })
        })?
    }
}

/// `/run/netns` as `ip netns` leaves it: a shared mount point, so that namespaces mounted there
/// are seen by every mount namespace.
fn ensure_netns_dir() -> Result<()> {
    let dir = Path::new(NETNS_DIR);
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let shared = || mount(None::<&str>, dir, None::<&str>, MsFlags::MS_SHARED | MsFlags::MS_REC, None::<&str>);
    match shared() {
        Ok(()) => Ok(()),
        Err(Errno::EINVAL) => {
            mount(Some(dir), dir, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
                .map_err(sys("bind-mount /run/netns"))?;
            shared().map_err(sys("make /run/netns shared"))
        }
        Err(e) => Err(sys("make /run/netns shared")(e)),
    }
}

/// A namespace is mounted at `path`.
pub fn is_mounted_ns(path: &Path) -> Result<bool> {
    match statfs(path) {
        Ok(st) => Ok(st.filesystem_type() == NSFS_MAGIC),
        Err(Errno::ENOENT) => Ok(false),
        Err(e) => Err(sys(format!("statfs {}", path.display()))(e)),
    }
}

/// Creates the named namespace unless it exists. Returns whether it was created.
pub fn ensure_named(name: &str) -> Result<bool> {
    let path = netns_path(name);
    if is_mounted_ns(&path)? {
        return Ok(false);
    }
    ensure_netns_dir()?;
    // A file left by a crash between creating it and mounting on it is reused.
    OpenOptions::new().write(true).create(true).truncate(false).mode(0o444).open(&path).map_err(io(&path))?;
    std::thread::scope(|s| {
        s.spawn(|| -> Result<()> {
            unshare(CloneFlags::CLONE_NEWNET).map_err(sys("unshare network namespace"))?;
            mount(Some(Path::new("/proc/thread-self/ns/net")), &path, None::<&str>, MsFlags::MS_BIND, None::<&str>)
                .map_err(sys(format!("bind-mount namespace {name}")))
        })
        .join()
        .map_err(|_| NetError::Thread(format!("create namespace {name}")))?
    })?;
    Ok(true)
}

/// Removes the named namespace (its links and everything in it go once nothing else holds it).
pub fn delete_named(name: &str) -> Result<()> {
    let path = netns_path(name);
    match umount2(&path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(Errno::EINVAL) | Err(Errno::ENOENT) => {}
        Err(e) => return Err(sys(format!("unmount namespace {name}"))(e)),
    }
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io(&path)(e)),
    }
}

/// Names under `/run/netns`.
pub fn list_named() -> Result<Vec<String>> {
    let dir = Path::new(NETNS_DIR);
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(dir)(e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io(dir))?;
        if let Some(name) = entry.file_name().to_str() {
            out.push(name.to_string());
        }
    }
    out.sort();
    Ok(out)
}

/// Writes a sysctl of the namespace the calling thread is in (`/proc/sys/net` follows the thread).
/// Returns whether it changed.
pub(crate) fn write_sysctl(key: &str, value: &str) -> Result<bool> {
    let path = Path::new("/proc/sys").join(key);
    let current = std::fs::read_to_string(&path).map_err(io(&path))?;
    if current.trim() == value {
        return Ok(false);
    }
    std::fs::write(&path, value).map_err(io(&path))?;
    Ok(true)
}
