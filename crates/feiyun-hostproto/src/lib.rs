//! The host protocol: what the control plane and a host agent say to each other.
//!
//! Owns the typed, versioned messages (registration, heartbeats, a host's intent with its
//! revision, observations, Cloud Assistant runs and console reads as tasks, image fetches), the
//! fallible [`ControlLink`] interface a host uses to reach its control plane, the HTTP/JSON
//! mapping of that interface ([`http`]: paths, status codes, and — with the `client` feature — the
//! client an agent process uses).
//!
//! Every exchange is started by the host: it registers with a join token, then heartbeats and
//! long-polls its intent (`intent?since=REV&wait=60s`, in the style of Nomad's blocking
//! queries) with the credential registration gave it, and reports what it observed. So a host
//! needs no open port and the control plane needs no message broker. The in-process transport of
//! a one-machine region is the control plane itself implementing [`ControlLink`].
//!
//! Must not: decide anything (the control plane decides, the agent acts), run processes, or
//! know about accounts, billing or the public API.
#![forbid(unsafe_code)]

pub mod http;
pub mod net;
mod wire;

use std::path::Path;
use std::time::Duration;

use feiyun_domain::instance::{AgentEvent, InstanceStatus, PowerState};
use feiyun_domain::Resources;
use serde::{Deserialize, Serialize};

/// The protocol version this build speaks. A host that speaks another is refused at
/// registration with [`ProtoError::UnsupportedVersion`].
pub const PROTOCOL_VERSION: u32 = 1;

/// A host's bearer credential, `<host-id>.<secret>`, given at registration. It is not a tenant
/// access key and opens nothing but the host API, for that host alone.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Credential(pub String);

impl Credential {
    /// The host id the credential claims (checked against the secret by the control plane).
    pub fn host_id(&self) -> Option<&str> {
        self.0.split_once('.').map(|(h, _)| h).filter(|h| !h.is_empty())
    }
    pub fn secret(&self) -> &str {
        self.0.split_once('.').map(|(_, s)| s).unwrap_or("")
    }
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credential({}.…)", self.host_id().unwrap_or("?"))
    }
}

/// What a host says about itself when it joins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HostSpec {
    /// Unique in the region (the machine's hostname by default).
    pub name: String,
    /// The zone asked for; a join token made for a zone decides it.
    pub zone: Option<String>,
    /// Allocatable capacity: physical size minus the reserve, times the allocation ratios.
    pub capacity: Resources,
    pub gpu_model: Option<String>,
    pub local_disk_category: Option<String>,
    /// A hollow host: it speaks the protocol but starts nothing.
    pub simulated: bool,
    pub protocol: u32,
    pub agent_version: String,
    /// The host's address on the network between hosts, where VPC traffic to its instances is
    /// sent (VXLAN). `None`: the host cannot carry VPC traffic to other hosts.
    #[serde(default)]
    pub underlay_ip: Option<std::net::Ipv4Addr>,
}

/// The control plane's answer to a registration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Registered {
    pub host_id: String,
    pub credential: Credential,
    pub zone: String,
    pub epoch: u64,
    /// How often to heartbeat.
    pub heartbeat_ms: u64,
    /// Silence after which the control plane holds the host unreachable.
    pub grace_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Heartbeat {
    /// The epoch the host works under; a stale one is answered with [`ProtoError::Fenced`].
    pub epoch: u64,
    /// Instances the host has anything of, for the operator's view.
    pub instances: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HeartbeatAck {
    pub epoch: u64,
    /// The host's current intent revision: a host that saw an older one polls again.
    pub revision: u64,
}

/// Everything a host should have, at one revision. Hosts apply it whole: an instance on the
/// host that the intent does not name is removed, which is also how a fenced host drops the
/// copies of instances that were evacuated elsewhere.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Intent {
    pub host_id: String,
    pub epoch: u64,
    pub revision: u64,
    pub instances: Vec<InstanceIntent>,
    /// Work asked of the host that is not a desired state (Cloud Assistant runs, console reads),
    /// until the host reports its result.
    pub tasks: Vec<Task>,
    /// Every disk whose data lives on this host.
    #[serde(default)]
    pub disks: Vec<DiskSpec>,
    /// Every snapshot this host keeps (of its disks); other snapshot files are removed. A
    /// snapshot a pending task names (being taken, reset to, captured) is kept too, so the
    /// region lists a new snapshot here at the latest in the intent that drops its task.
    #[serde(default)]
    pub snapshots: Vec<String>,
    /// The host's whole network: the VPCs its instances are in, their ports, security groups and
    /// EIPs, and the other hosts' instances of those VPCs. `None` for a host the region does not
    /// network (a hollow one, or a region without VPCs).
    #[serde(default)]
    pub network: Option<net::HostNetSpec>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InstanceIntent {
    pub id: String,
    /// The status the control plane last recorded (from this host's reports).
    pub status: InstanceStatus,
    pub desired: PowerState,
    /// Grace of a polite stop before the instance is killed (zero: force).
    pub stop_grace_ms: u64,
    pub spec: InstanceSpec,
    /// What the instance metadata service answers this instance (`instance-id`, `private-ipv4`,
    /// `vpc-id`, `vswitch-id`, `eipv4`, `region-id`, `zone-id`, `hostname`, ...), under
    /// `/latest/meta-data/<name>`; `/latest/user-data` is the spec's user data.
    #[serde(default)]
    pub metadata: std::collections::BTreeMap<String, String>,
    /// The [`InstanceEvent::seq`] of the last event of this host about this instance that the
    /// control plane had applied when it drew this intent (`None`: none since it started, or an
    /// older control plane). An intent drawn before the host's later reports landed says so: the
    /// host keeps its own copy, which is ahead, when the region's status is the one the host's
    /// events up to this one led to (nothing else changed it), instead of taking steps again
    /// from an older status (a reboot repeated is not idempotent: the second halt would read as
    /// the guest's own shutdown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_seq: Option<u64>,
}

/// What a host needs to run one instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InstanceSpec {
    pub hostname: String,
    pub vcpus: u32,
    pub memory_mib: u64,
    /// Burstable types: baseline share of each vCPU in percent (0 = full vCPU).
    pub baseline_cpu_percent: u32,
    pub image: ImageRef,
    /// Run once at first boot.
    #[serde(with = "wire::b64_opt", default)]
    pub user_data: Option<Vec<u8>>,
    /// OpenSSH public keys for `/root/.ssh/authorized_keys` (the instance's key pair).
    #[serde(default)]
    pub authorized_keys: Vec<String>,
}

/// A disk whose data this host keeps, attached to one of its instances or not. Disk files the
/// intent does not name are removed (detached first). An attached disk is an ext4 filesystem
/// mounted at `/mnt/<device name>` in the instance (`/dev/vdb` → `/mnt/vdb`); it attaches once
/// the instance's root filesystem exists on the host, before the instance boots, and a running
/// instance gets it (and loses it) without a restart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DiskSpec {
    pub disk_id: String,
    /// Its size; a larger size than the host has grows the disk (disks never shrink).
    pub size_gib: u64,
    /// Where a disk new to this host gets its first content.
    pub source: DiskSource,
    /// The instance it is attached to and how it shows there; `None`: detached.
    #[serde(default)]
    pub attachment: Option<DiskAttachment>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DiskAttachment {
    pub instance_id: String,
    /// The device name the API reports (`/dev/vdb`, `/dev/vdc`, ...).
    pub device: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DiskSource {
    /// Empty, formatted when first made.
    Empty,
    /// A snapshot this host holds.
    LocalSnapshot(String),
    /// A blob the region holds (a snapshot taken elsewhere, or a disk moving to this host; kind
    /// [`BlobKind::Snapshot`] or [`BlobKind::Disk`]), fetched with [`ControlLink::fetch_blob`]
    /// and checked by its SHA-256.
    Blob(BlobRef),
}

/// What a blob the region holds is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BlobKind {
    /// An image archive (a tar of a root filesystem).
    Image,
    /// A snapshot of a disk: the disk as it was, as a qcow2 image (clusters of zeros left out).
    Snapshot,
    /// A disk's content on its way to another host, as a qcow2 image.
    Disk,
}

impl BlobKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            BlobKind::Image => "image",
            BlobKind::Snapshot => "snapshot",
            BlobKind::Disk => "disk",
        }
    }
    pub fn parse(s: &str) -> Option<BlobKind> {
        [BlobKind::Image, BlobKind::Snapshot, BlobKind::Disk].into_iter().find(|k| k.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BlobRef {
    pub kind: BlobKind,
    pub id: String,
    pub sha256: String,
    pub size_bytes: u64,
}

/// What the region recorded of an uploaded blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BlobInfo {
    pub sha256: String,
    pub size_bytes: u64,
}

/// Where a host gets an image's root filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ImageSource {
    /// Built on each host from its own components (the busybox image).
    Builtin,
    /// Held by the control plane; fetched with [`ControlLink::fetch_image`] and checked against
    /// [`ImageRef::sha256`].
    Region,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageRef {
    pub id: String,
    pub source: ImageSource,
    pub size_bytes: u64,
    /// Hex SHA-256 of the image archive (region images).
    pub sha256: Option<String>,
}

/// Work for a host beyond its desired state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Task {
    /// Run a shell script inside a running instance.
    Exec(ExecTask),
    /// Read the tail of an instance's console.
    Console(ConsoleTask),
    /// Take a crash-consistent snapshot of a disk this host keeps.
    Snapshot(SnapshotTask),
    /// Put a disk back as one of its snapshots was (the disk is not attached to a running
    /// instance).
    ResetDisk(ResetDiskTask),
    /// Archive an instance's or a snapshot's root filesystem as an image and upload it.
    CaptureImage(CaptureImageTask),
    /// Upload a disk's content, so that another host can take the disk over.
    UploadDisk(UploadDiskTask),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SnapshotTask {
    pub id: String,
    pub disk_id: String,
    pub snapshot_id: String,
    /// Also upload it (as a [`BlobKind::Snapshot`] blob), so that disks on other hosts can be
    /// made from it.
    pub upload: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ResetDiskTask {
    pub id: String,
    pub disk_id: String,
    pub snapshot_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CaptureSource {
    /// The instance's root filesystem (the image it booted from and what it wrote since).
    Instance(String),
    /// A snapshot of a system disk this host keeps.
    Snapshot(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CaptureImageTask {
    pub id: String,
    pub image_id: String,
    pub source: CaptureSource,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UploadDiskTask {
    pub id: String,
    pub disk_id: String,
    /// The blob id to upload it as ([`BlobKind::Disk`]).
    pub blob_id: String,
}

impl Task {
    pub fn id(&self) -> &str {
        match self {
            Task::Exec(t) => &t.id,
            Task::Console(t) => &t.id,
            Task::Snapshot(t) => &t.id,
            Task::ResetDisk(t) => &t.id,
            Task::CaptureImage(t) => &t.id,
            Task::UploadDisk(t) => &t.id,
        }
    }
    /// The instance the task is about, if any.
    pub fn instance_id(&self) -> Option<&str> {
        match self {
            Task::Exec(t) => Some(&t.instance_id),
            Task::Console(t) => Some(&t.instance_id),
            Task::CaptureImage(CaptureImageTask { source: CaptureSource::Instance(i), .. }) => Some(i),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ExecTask {
    pub id: String,
    pub instance_id: String,
    #[serde(with = "wire::b64")]
    pub script: Vec<u8>,
    pub working_dir: String,
    pub timeout_ms: u64,
    /// Output beyond this many bytes is counted and dropped.
    pub max_output: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConsoleTask {
    pub id: String,
    pub instance_id: String,
    pub max_bytes: u64,
}

/// What a host observed and finished since its last report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct Report {
    pub epoch: u64,
    pub events: Vec<InstanceEvent>,
    pub results: Vec<TaskResult>,
    /// Public traffic counters of instances, absolute since the host last (re)built them: the
    /// control plane meters the differences (a smaller value is a reset).
    #[serde(default)]
    pub traffic: Vec<TrafficCounters>,
    /// Disks of the intent whose state on the host changed since last reported.
    #[serde(default)]
    pub disks: Vec<DiskStatus>,
}

/// What a host observed of one of its disks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DiskStatus {
    pub disk_id: String,
    /// The size of its filesystem on the host, GiB (0: not made yet). Below the intent's size
    /// while a grow is under way (a host that cannot grow a mounted filesystem grows it once
    /// its instance stops).
    pub size_gib: u64,
    /// The instance it is attached to (mounted in), if any.
    pub attached_to: Option<String>,
    /// Why the host could not (yet) make the disk what the intent says; it keeps trying.
    /// `None` once it did.
    pub error: Option<String>,
}

/// Bytes an instance exchanged with the outside (through its EIP or SNAT).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TrafficCounters {
    pub instance_id: String,
    pub in_bytes: u64,
    pub out_bytes: u64,
}

/// One observation of one instance: an event, or the error of a step that will be retried.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InstanceEvent {
    pub instance_id: String,
    pub event: Option<AgentEvent>,
    pub error: Option<String>,
    /// The status the host moved the instance to on its own copy of the intent, by the
    /// domain's state machine, when the event did not change what is desired: the host goes on
    /// from there without waiting for the control plane to send the status back, and the
    /// control plane, when it comes to the same status, does not wake the host for it. Absent
    /// (an older host, or an event that changes what is desired): the host waits for the next
    /// intent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_after: Option<InstanceStatus>,
    /// The host's number for this event: increasing, in the order the host observed its events,
    /// across restarts of the agent (it starts from the clock). The control plane says in each
    /// instance's intent the last one it applied ([`InstanceIntent::applied_seq`]). Absent: an
    /// older host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TaskResult {
    pub task_id: String,
    pub outcome: TaskOutcome,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TaskOutcome {
    Exec(ExecOutcome),
    Console(ConsoleOutput),
    /// A snapshot was taken: the space it takes on the host, and the blob if it was uploaded.
    Snapshot {
        size_bytes: u64,
        blob: Option<BlobInfo>,
    },
    /// A blob (an image, a disk) was uploaded.
    Uploaded(BlobInfo),
    /// Done, nothing to tell.
    Done,
    /// The instance was not running when the task reached it.
    NotRunning,
    /// The host could not do it (the message says why).
    Failed(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ExecOutcome {
    /// `None` when the process was killed on timeout.
    pub exit_code: Option<i64>,
    #[serde(with = "wire::b64")]
    pub output: Vec<u8>,
    /// Bytes beyond the output limit that were discarded.
    pub dropped: u64,
    pub timed_out: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConsoleOutput {
    #[serde(with = "wire::b64")]
    pub bytes: Vec<u8>,
    /// When the console last changed.
    pub modified: Option<chrono::DateTime<chrono::Utc>>,
}

/// Why an exchange failed. Every variant has a code and an HTTP status ([`ProtoError::code`],
/// [`ProtoError::status`]) so that both transports report it the same way.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum ProtoError {
    /// A missing, wrong or revoked join token or host credential.
    #[error("Not authorized: {0}")]
    Unauthorized(String),
    /// The caller may not do this (another host's instance, a tenant key on the host API).
    #[error("Forbidden: {0}")]
    Forbidden(String),
    /// The host works under an old epoch (it was evacuated): it must drop what its intent at
    /// `epoch` does not name before anything else.
    #[error("The host was fenced; its epoch is now {epoch}")]
    Fenced { epoch: u64 },
    /// Another host holds this name.
    #[error("Conflict: {0}")]
    Conflict(String),
    #[error("Bad request: {0}")]
    BadRequest(String),
    #[error("Not found: {0}")]
    NotFound(String),
    #[error("Protocol version {0} is not supported (this control plane speaks {PROTOCOL_VERSION})")]
    UnsupportedVersion(u32),
    /// The control plane could not be reached or could not answer now; retry.
    #[error("Unavailable: {0}")]
    Unavailable(String),
    #[error("Internal error: {0}")]
    Internal(String),
}

impl ProtoError {
    pub fn code(&self) -> &'static str {
        match self {
            ProtoError::Unauthorized(_) => "Unauthorized",
            ProtoError::Forbidden(_) => "Forbidden",
            ProtoError::Fenced { .. } => "Fenced",
            ProtoError::Conflict(_) => "Conflict",
            ProtoError::BadRequest(_) => "BadRequest",
            ProtoError::NotFound(_) => "NotFound",
            ProtoError::UnsupportedVersion(_) => "UnsupportedVersion",
            ProtoError::Unavailable(_) => "Unavailable",
            ProtoError::Internal(_) => "Internal",
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            ProtoError::Unauthorized(_) => 401,
            ProtoError::Forbidden(_) => 403,
            ProtoError::NotFound(_) => 404,
            ProtoError::Fenced { .. } | ProtoError::Conflict(_) => 409,
            ProtoError::BadRequest(_) | ProtoError::UnsupportedVersion(_) => 400,
            ProtoError::Unavailable(_) => 503,
            ProtoError::Internal(_) => 500,
        }
    }

    /// Whether trying the same exchange again later can succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, ProtoError::Unavailable(_) | ProtoError::Internal(_))
    }
}

/// How a host reaches its control plane. Every method is fallible: across a network any call
/// can fail, and the agent retries with backoff.
#[async_trait::async_trait]
pub trait ControlLink: Send + Sync {
    /// Join the region with a join token (made by `feiyun host token create`).
    async fn register(&self, token: &str, spec: HostSpec) -> Result<Registered, ProtoError>;
    async fn heartbeat(&self, credential: &Credential, beat: Heartbeat) -> Result<HeartbeatAck, ProtoError>;
    /// The host's intent once its revision is above `since`, or as it stands after `wait`.
    async fn intent(&self, credential: &Credential, since: u64, wait: Duration) -> Result<Intent, ProtoError>;
    async fn report(&self, credential: &Credential, report: Report) -> Result<(), ProtoError>;
    /// Copy a region image's archive to `dest`; returns its size. The host checks its checksum.
    async fn fetch_image(&self, credential: &Credential, image_id: &str, dest: &Path) -> Result<u64, ProtoError>;
    /// Upload a file as a blob of the region; the region records (and returns) its SHA-256 and
    /// size. Uploading the same blob again replaces it. (The default: a control plane that keeps
    /// no blobs.)
    async fn upload_blob(
        &self,
        _credential: &Credential,
        kind: BlobKind,
        id: &str,
        _src: &Path,
    ) -> Result<BlobInfo, ProtoError> {
        Err(ProtoError::NotFound(format!("this control plane keeps no blobs ({} {id})", kind.as_str())))
    }
    /// Copy a blob of the region to `dest`; returns its size. The host checks its checksum.
    async fn fetch_blob(&self, _credential: &Credential, blob: &BlobRef, _dest: &Path) -> Result<u64, ProtoError> {
        Err(ProtoError::NotFound(format!("this control plane keeps no blobs ({} {})", blob.kind.as_str(), blob.id)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_name_their_host_and_hide_their_secret() {
        let c = Credential("h-abc.s3cr3t".into());
        assert_eq!(c.host_id(), Some("h-abc"));
        assert_eq!(c.secret(), "s3cr3t");
        assert!(!format!("{c:?}").contains("s3cr3t"));
        assert_eq!(Credential("nodot".into()).host_id(), None);
        assert_eq!(Credential(".x".into()).host_id(), None);
    }

    #[test]
    fn messages_round_trip_through_json() {
        let intent = Intent {
            host_id: "h-1".into(),
            epoch: 2,
            revision: 7,
            instances: vec![InstanceIntent {
                id: "i-1".into(),
                status: InstanceStatus::Pending,
                desired: PowerState::Running,
                stop_grace_ms: 5000,
                spec: InstanceSpec {
                    hostname: "web".into(),
                    vcpus: 2,
                    memory_mib: 1024,
                    baseline_cpu_percent: 0,
                    image: ImageRef {
                        id: "img".into(),
                        source: ImageSource::Region,
                        size_bytes: 10,
                        sha256: Some("ab".into()),
                    },
                    user_data: Some(b"echo hi\n".to_vec()),
                    authorized_keys: vec!["ssh-ed25519 AAAA test".into()],
                },
                metadata: [("instance-id".to_string(), "i-1".to_string())].into_iter().collect(),
                applied_seq: Some(41),
            }],
            tasks: vec![Task::Exec(ExecTask {
                id: "t-1".into(),
                instance_id: "i-1".into(),
                script: b"uname".to_vec(),
                working_dir: "/root".into(),
                timeout_ms: 1000,
                max_output: 100,
            })],
            disks: vec![DiskSpec {
                disk_id: "d-1".into(),
                size_gib: 20,
                source: DiskSource::Blob(BlobRef {
                    kind: BlobKind::Snapshot,
                    id: "s-1".into(),
                    sha256: "ab".into(),
                    size_bytes: 3,
                }),
                attachment: Some(DiskAttachment { instance_id: "i-1".into(), device: "/dev/vdb".into() }),
            }],
            snapshots: vec!["s-1".into()],
            network: None,
        };
        let text = serde_json::to_string(&intent).expect("serialize");
        assert!(text.contains("\"UserData\":\"ZWNobyBoaQo=\""), "{text}");
        assert!(text.contains(r#""AppliedSeq":41"#), "{text}");
        let back: Intent = serde_json::from_str(&text).expect("parse");
        assert_eq!(back, intent);
        // An older control plane's intent says nothing of the reports it applied.
        let older: Intent = serde_json::from_str(&text.replace(r#","AppliedSeq":41"#, "")).expect("older intent");
        assert_eq!(older.instances[0].applied_seq, None);
        let report = Report {
            epoch: 2,
            events: vec![InstanceEvent {
                instance_id: "i-1".into(),
                event: Some(AgentEvent::Booted),
                error: None,
                status_after: Some(InstanceStatus::Running),
                seq: Some(42),
            }],
            results: vec![TaskResult {
                task_id: "t-1".into(),
                outcome: TaskOutcome::Exec(ExecOutcome {
                    exit_code: Some(0),
                    output: vec![0, 255],
                    dropped: 0,
                    timed_out: false,
                }),
            }],
            traffic: vec![TrafficCounters { instance_id: "i-1".into(), in_bytes: 1, out_bytes: 2 }],
            disks: vec![DiskStatus {
                disk_id: "d-1".into(),
                size_gib: 20,
                attached_to: Some("i-1".into()),
                error: None,
            }],
        };
        let back: Report = serde_json::from_str(&serde_json::to_string(&report).expect("ser")).expect("parse");
        assert_eq!(back, report);
        // A report of a host that keeps no disks still parses.
        let old: Report = serde_json::from_str(r#"{"Epoch":1,"Events":[],"Results":[]}"#).expect("old report");
        assert!(old.disks.is_empty() && old.traffic.is_empty());
        // An event of a host that waits for every status to come back in an intent.
        let text = serde_json::to_string(&report.events[0]).expect("ser");
        assert!(text.contains(r#""StatusAfter":"Running""#), "{text}");
        assert!(text.contains(r#""Seq":42"#), "{text}");
        let older: InstanceEvent =
            serde_json::from_str(&text.replace(r#","StatusAfter":"Running","Seq":42"#, "")).expect("older event");
        assert_eq!(older.status_after, None);
        assert_eq!(older.seq, None);
        assert_eq!(older.event, Some(AgentEvent::Booted));
    }

    #[test]
    fn errors_have_codes_and_statuses() {
        assert_eq!(ProtoError::Fenced { epoch: 3 }.status(), 409);
        assert_eq!(ProtoError::Unauthorized("x".into()).code(), "Unauthorized");
        assert!(ProtoError::Unavailable("down".into()).is_transient());
        assert!(!ProtoError::Forbidden("no".into()).is_transient());
    }
}
