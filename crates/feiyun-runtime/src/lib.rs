//! Running instances on one host.
//!
//! Owns the [`Runtime`] trait (prepare, start, stop, observe, exec, console, destroy), its default
//! backend [`runc::RuncRuntime`] (OCI containers under `runc`, one per instance, with their own PID,
//! mount, UTS, IPC and network namespaces, a cgroup sized from the instance type and a private
//! writable root filesystem), the [`images::ImageStore`] those root filesystems come from, and the
//! simulated backend of hollow hosts ([`sim::SimRuntime`]: nothing runs, clearly labelled), and
//! the host's disks, snapshots and image captures ([`disks::Storage`]; see `docs/storage.md`):
//! sparse files holding ext4 filesystems, attached through loop devices and mounted into
//! instances live, snapshotted under `fsfreeze`, moved between hosts as qcow2 blobs.
//!
//! Must not: decide what should run (that is the agent's reconcile loop and the control plane's
//! intent), know about accounts, billing or the API, or touch anything outside its data directory
//! and the cgroups and mounts of its own instances.

pub mod capture;
pub mod disks;
pub mod images;
pub mod import;
pub mod keys;
mod loopdev;
mod mounts;
pub mod runc;
pub mod sim;
mod tree;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// What the runtime needs to run one instance.
#[derive(Debug, Clone, PartialEq)]
pub struct RuntimeSpec {
    pub id: String,
    pub hostname: String,
    pub vcpus: u32,
    pub memory_mib: u64,
    /// Burstable types: baseline share of each vCPU in percent (0 = full vCPU).
    pub baseline_cpu_percent: u32,
    /// Read-only root filesystem of the image.
    pub image_rootfs: PathBuf,
    /// Script run once at first boot.
    pub user_data: Option<Vec<u8>>,
    /// A network namespace to join (a named one that exists before the instance starts and
    /// survives stop and start); `None` gives the instance a new, empty one.
    pub netns: Option<PathBuf>,
    /// OpenSSH public keys for `/root/.ssh/authorized_keys`, written before each boot and
    /// whenever they change while it runs ([`Runtime::refresh`]).
    pub authorized_keys: Vec<String>,
}

/// What the runtime observes of an instance's disk and processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    /// It has no disk on this host and none of its processes runs.
    Absent,
    /// Its disk (the writable layer that survives stop and start) exists and none of its processes
    /// runs. It may still hold what its last boot set up: see [`Leftovers`].
    Stopped,
    /// Its init process runs (or is paused).
    Running,
}

/// Host resources an instance holds besides its disk. A running instance needs all of them; once
/// nothing runs they are leftovers of its last boot (a guest that halted on its own, a stop cut
/// short by a crash), and [`Runtime::stop`] removes them. A stopped instance holds none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Leftovers {
    /// The container manager still has a container record for it.
    pub container: bool,
    /// Its root filesystem is mounted.
    pub mount: bool,
    /// Its cgroup exists (in any hierarchy).
    pub cgroup: bool,
}

impl Leftovers {
    pub fn any(&self) -> bool {
        self.container || self.mount || self.cgroup
    }
}

/// One look at an instance: its state and what it holds on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observation {
    pub state: Observed,
    pub leftovers: Leftovers,
}

impl Observation {
    /// Stopped and holding nothing but its disk.
    pub fn is_clean_stop(&self) -> bool {
        self.state == Observed::Stopped && !self.leftovers.any()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutcome {
    /// `None` when the process was killed on timeout.
    pub exit_code: Option<i64>,
    pub output: Vec<u8>,
    /// Bytes beyond the output limit that were discarded.
    pub dropped: u64,
    pub timed_out: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("Instance {0} is not running")]
    NotRunning(String),
    #[error("{0} failed: {1}")]
    Command(String, String),
    #[error("IO error on {0}: {1}")]
    Io(String, std::io::Error),
    #[error("Image error: {0}")]
    Image(String),
    #[error(transparent)]
    Storage(#[from] disks::StorageError),
}

pub type Result<T> = std::result::Result<T, RuntimeError>;

/// A host's instance runtime. Every method is idempotent, so a reconcile loop can retry any step
/// after a crash. Methods block; callers run them off the async executor.
pub trait Runtime: Send + Sync {
    /// Create the instance's private root filesystem and first-boot data.
    fn prepare(&self, spec: &RuntimeSpec) -> Result<()>;
    /// Boot the instance (prepares it first if needed).
    fn start(&self, spec: &RuntimeSpec) -> Result<()>;
    /// Stop the instance and release everything it holds besides its disk, each step skipped when
    /// already done: stop its processes (politely first, then by force after `grace`), remove its
    /// container, unmount its root filesystem, remove its cgroup. Afterwards it is
    /// [`Observed::Stopped`] (or `Absent` if it never had a disk) with no [`Leftovers`].
    fn stop(&self, id: &str, grace: Duration) -> Result<()>;
    fn observe(&self, id: &str) -> Result<Observed>;
    /// [`Runtime::observe`] plus the [`Leftovers`] the instance holds. The default reports none: it
    /// suits only backends that hold nothing besides the disk once the instance's processes exit.
    fn inspect(&self, id: &str) -> Result<Observation> {
        Ok(Observation { state: self.observe(id)?, leftovers: Leftovers::default() })
    }
    /// Remove everything the instance had on this host: processes, cgroups, mounts, files.
    fn destroy(&self, id: &str) -> Result<()>;
    /// Run a shell script inside a running instance.
    fn exec(
        &self,
        id: &str,
        script: &[u8],
        working_dir: &str,
        timeout: Duration,
        max_output: usize,
    ) -> Result<ExecOutcome>;
    /// The instance's console output (most recent `max` bytes) and when it last changed.
    fn console(&self, id: &str, max: usize) -> Result<(Vec<u8>, Option<SystemTime>)>;
    /// Ids of every instance with anything on this host.
    fn list(&self) -> Result<Vec<String>>;
    /// Whether calls block (run processes, touch disks) and belong off the async executor.
    fn blocking(&self) -> bool {
        true
    }
    /// Apply to a running instance what may change while it runs (its authorized keys);
    /// whether anything changed. An instance that does not run gets it at its next boot.
    fn refresh(&self, _spec: &RuntimeSpec) -> Result<bool> {
        Ok(false)
    }
    /// The host's disks and snapshots; `None` on a backend that keeps none (a hollow host).
    fn storage(&self) -> Option<Arc<disks::Storage>> {
        None
    }
}
