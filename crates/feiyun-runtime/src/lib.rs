//! Running instances on one host.
//!
//! Owns the [`Runtime`] trait (prepare, start, stop, observe, exec, console, destroy), its default
//! backend [`runc::RuncRuntime`] (OCI containers under `runc`, one per instance, with their own PID,
//! mount, UTS, IPC and network namespaces, a cgroup sized from the instance type and a private
//! writable root filesystem) and the [`images::ImageStore`] those root filesystems come from.
//!
//! Must not: decide what should run (that is the agent's reconcile loop and the control plane's
//! intent), know about accounts, billing or the API, or touch anything outside its data directory
//! and the cgroups and mounts of its own instances.

pub mod images;
pub mod runc;

use std::path::PathBuf;
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
}

/// What the runtime observes of an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    /// Nothing of the instance exists on this host.
    Absent,
    /// Its root filesystem exists; no process runs.
    Stopped,
    /// Its init process runs.
    Running,
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
}

pub type Result<T> = std::result::Result<T, RuntimeError>;

/// A host's instance runtime. Every method is idempotent, so a reconcile loop can retry any step
/// after a crash. Methods block; callers run them off the async executor.
pub trait Runtime: Send + Sync {
    /// Create the instance's private root filesystem and first-boot data.
    fn prepare(&self, spec: &RuntimeSpec) -> Result<()>;
    /// Boot the instance (prepares it first if needed).
    fn start(&self, spec: &RuntimeSpec) -> Result<()>;
    /// Stop every process of the instance: politely first, then by force after `grace`.
    fn stop(&self, id: &str, grace: Duration) -> Result<()>;
    fn observe(&self, id: &str) -> Result<Observed>;
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
}
