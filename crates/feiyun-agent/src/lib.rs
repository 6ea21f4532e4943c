//! The host agent: joins a region over the host protocol and reconciles the host with its intent.
//!
//! It registers its host with a join token (or comes back with the credential it was given,
//! kept in an identity file), heartbeats, long-polls its intent and, for every instance the intent
//! names, takes one idempotent step at a time towards the desired state ([`reconcile::step`]),
//! reporting what it observed. Whatever the host has that its intent does not name is removed —
//! unknown leftovers after a crash, and the old copies of instances evacuated while the host was
//! away (a new epoch fences it). Cloud Assistant runs and console reads arrive as tasks in the
//! intent and their results go back in reports. Images are materialized locally on demand: the
//! built-in one is built here, a region image is fetched and checked against its checksum.
//!
//! When the intent carries the host's network, a worker thread makes the kernel match it
//! ([`network`]) before any instance with a port in it boots into its namespace, the metadata
//! service answers the host's instances ([`metadata`]), and public traffic counters go back in
//! reports. The host's network namespace is the agent's own. See `docs/networking.md`.
//!
//! The host's disks follow the intent too (`storage`): made, grown, attached to an instance
//! once its root filesystem exists (an instance about to boot waits for them; a running one
//! gets them live), detached, removed when the intent drops them; snapshots, resets, image
//! captures and disk uploads are tasks. See `docs/storage.md`.
//!
//! The loop is safe to stop and restart at any point: instances keep running without it and are
//! re-adopted, because every decision comes from the intent and from observation.
//!
//! Must not: change intent (only the control plane does), decide placement, or know about the
//! API, accounts or the store.

mod copies;
pub mod machine;
pub mod metadata;
pub mod network;
mod reconcile;
mod steps;
mod storage;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use feiyun_hostproto::{
    ControlLink, Credential, ExecOutcome, Heartbeat, HostSpec, ImageSource, InstanceEvent, InstanceIntent, Intent,
    ProtoError, Report, Task, TaskOutcome, TaskResult, TrafficCounters,
};
use feiyun_runtime::images::ImageStore;
use feiyun_runtime::{Runtime, RuntimeError};
use serde::{Deserialize, Serialize};

pub use reconcile::{step, step_with_retries, Assignment, Observer, MAX_BOOT_FAILURES};

/// How long one long-poll of the host's intent waits for a change: the control plane's longest
/// ([`feiyun_hostproto::http::MAX_WAIT`]). A poll that ends without a change brings the whole
/// intent again, so at 10,000 hosts 30 s polls cost the control plane as much as a third of
/// the heartbeats did; a host whose link went silently dead is found by its heartbeats
/// (the control plane's side) and by the poll's own timeout (the host's).
pub const LONG_POLL: Duration = Duration::from_secs(60);

/// How an agent joins and what it says about its host.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    pub host: HostSpec,
    /// The join token, needed the first time (and again if the credential was revoked).
    pub token: Option<String>,
    /// Where the credential registration gave is kept between runs (mode 0600). `None` keeps it
    /// in memory only (hollow hosts).
    pub identity_file: Option<PathBuf>,
    /// The static busybox the built-in image is built from.
    pub busybox: Option<PathBuf>,
    /// Where the last network state handed to the kernel is kept between runs (so that a
    /// restarted agent converges before its first intent, and `feiyun teardown` finds the host's
    /// prefix). `None` keeps it in memory only.
    pub network_state: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("Cannot join the region: {0}")]
    Join(ProtoError),
    #[error("Identity file {0}: {1}")]
    Identity(String, String),
    #[error("Stopped before joining the region")]
    Stopped,
}

/// Who this host is in the region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Identity {
    pub host_id: String,
    pub credential: Credential,
    pub zone: String,
    pub epoch: u64,
    pub heartbeat_ms: u64,
}

pub struct Agent {
    link: Arc<dyn ControlLink>,
    runtime: Arc<dyn Runtime>,
    /// The local image cache (`None` on a hollow host, which boots nothing).
    images: Option<Arc<ImageStore>>,
    opts: AgentOptions,
}

impl Agent {
    pub fn new(
        link: Arc<dyn ControlLink>,
        runtime: Arc<dyn Runtime>,
        images: Option<Arc<ImageStore>>,
        opts: AgentOptions,
    ) -> Agent {
        Agent { link, runtime, images, opts }
    }

    fn saved_identity(&self) -> Result<Option<Identity>, AgentError> {
        let Some(path) = &self.opts.identity_file else { return Ok(None) };
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| AgentError::Identity(path.display().to_string(), e.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(AgentError::Identity(path.display().to_string(), e.to_string())),
        }
    }

    fn save_identity(&self, id: &Identity) -> Result<(), AgentError> {
        let Some(path) = &self.opts.identity_file else { return Ok(()) };
        let err = |e: String| AgentError::Identity(path.display().to_string(), e);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
        }
        let text = serde_json::to_vec_pretty(id).map_err(|e| err(e.to_string()))?;
        write_private(path, &text).map_err(|e| err(e.to_string()))
    }

    /// Join the region: with the saved credential if it still works, else with the join token.
    /// Retries while the control plane cannot be reached; gives up on a refusal.
    pub async fn join(
        &self,
        shutdown: &mut (impl std::future::Future<Output = ()> + Unpin),
    ) -> Result<Identity, AgentError> {
        let mut backoff = Duration::from_millis(200);
        loop {
            let attempt = self.try_join().await;
            match attempt {
                Ok(id) => return Ok(id),
                Err(AgentError::Join(e)) if e.is_transient() => {
                    tracing::warn!(error = %e, "cannot reach the control plane; retrying");
                }
                Err(e) => return Err(e),
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = &mut *shutdown => return Err(AgentError::Stopped),
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    async fn try_join(&self) -> Result<Identity, AgentError> {
        if let Some(mut id) = self.saved_identity()? {
            match self.link.heartbeat(&id.credential, Heartbeat { epoch: id.epoch, instances: 0 }).await {
                Ok(ack) => {
                    id.epoch = ack.epoch;
                    return Ok(id);
                }
                // Fenced: it is still this host; the first intent brings the new epoch.
                Err(ProtoError::Fenced { .. }) => return Ok(id),
                Err(ProtoError::Unauthorized(m)) if self.opts.token.is_some() => {
                    tracing::warn!(host = %id.host_id, reason = %m, "the saved credential was refused; joining again with the token");
                }
                Err(e) => return Err(AgentError::Join(e)),
            }
        }
        let token = self.opts.token.as_deref().ok_or_else(|| {
            AgentError::Join(ProtoError::Unauthorized("no saved credential and no join token (--token)".into()))
        })?;
        let reg = self.link.register(token, self.opts.host.clone()).await.map_err(AgentError::Join)?;
        let id = Identity {
            host_id: reg.host_id,
            credential: reg.credential,
            zone: reg.zone,
            epoch: reg.epoch,
            heartbeat_ms: reg.heartbeat_ms,
        };
        self.save_identity(&id)?;
        tracing::info!(host = %id.host_id, zone = %id.zone, "joined the region");
        Ok(id)
    }

    /// Join, then reconcile until `shutdown` resolves. Instances keep running after it returns.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) -> Result<(), AgentError> {
        let mut shutdown = Box::pin(shutdown);
        let net_out = Arc::new(network::NetOutput::default());
        // A network applied before: converge to it while joining, before the first intent.
        let saved_network = match self.opts.network_state.as_deref().map(network::load_state).transpose() {
            Ok(s) => s.flatten().is_some(),
            Err(e) => {
                tracing::error!(error = %e, "ignoring the saved network state");
                false
            }
        };
        let net = saved_network.then(|| {
            Arc::new(network::NetWorker::start(self.runtime.clone(), self.opts.network_state.clone(), net_out.clone()))
        });
        let mut id = match self.join(&mut shutdown).await {
            Ok(id) => id,
            Err(e) => {
                if let Some(n) = net {
                    let _ = tokio::task::spawn_blocking(move || n.stop()).await;
                }
                return Err(e);
            }
        };
        let (metadata_port, metadata_port_rx) = tokio::sync::watch::channel(None);
        let inner = Arc::new(Inner {
            link: self.link.clone(),
            runtime: self.runtime.clone(),
            images: self.images.clone(),
            busybox: self.opts.busybox.clone(),
            credential: id.credential.clone(),
            host_id: id.host_id.clone(),
            epoch: AtomicU64::new(id.epoch),
            latest: Mutex::new(None),
            busy: Mutex::new(HashSet::new()),
            acted: Mutex::new(HashMap::new()),
            copies: copies::OwnCopies::default(),
            seq: AtomicU64::new(first_seq()),
            waiting: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
            seen_tasks: Mutex::new(HashSet::new()),
            outbox: Mutex::new(Report::default()),
            sending: tokio::sync::Mutex::new(()),
            image_locks: Mutex::new(HashMap::new()),
            swept_epoch: AtomicU64::new(0),
            storage_resweep: std::sync::atomic::AtomicBool::new(false),
            network_state: self.opts.network_state.clone(),
            net: Mutex::new(net),
            net_out,
            metadata: Arc::new(metadata::Metadata::default()),
            metadata_port,
            net_error_reported: Mutex::new(None),
            traffic_sent: Mutex::new(HashMap::new()),
            disks: Mutex::default(),
        });
        // Before any disk step or task: finish or undo what a killed agent left half-done.
        inner.recover_storage().await;
        let metadata_server = tokio::spawn(metadata::serve(inner.metadata.clone(), metadata_port_rx));
        let net_events = {
            let inner = inner.clone();
            tokio::spawn(async move {
                loop {
                    inner.net_out.changed.notified().await;
                    inner.clone().network_changed().await;
                }
            })
        };
        let beat = {
            let inner = inner.clone();
            let every = Duration::from_millis(id.heartbeat_ms.max(100));
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    let count = inner
                        .latest
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .as_ref()
                        .map(|i| i.instances.len())
                        .unwrap_or(0);
                    let beat = Heartbeat { epoch: inner.epoch.load(Ordering::SeqCst), instances: count as u32 };
                    match inner.link.heartbeat(&inner.credential, beat).await {
                        Ok(_) | Err(ProtoError::Fenced { .. }) => {}
                        Err(e) => tracing::warn!(host = %inner.host_id, error = %e, "heartbeat failed"),
                    }
                }
            })
        };
        let mut since = 0u64;
        let mut backoff = Duration::from_millis(200);
        let mut resync = tokio::time::interval(Duration::from_secs(1));
        resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The long-poll lives across resyncs: dropping it would close its connection and ask
        // again every second instead of once per change (or per `LONG_POLL`).
        let poll = |since: u64| {
            let (link, credential) = (self.link.clone(), inner.credential.clone());
            async move { link.intent(&credential, since, LONG_POLL).await }
        };
        let mut pending = Box::pin(poll(since));
        loop {
            tokio::select! {
                r = &mut pending => {
                    match r {
                        Ok(intent) => {
                            backoff = Duration::from_millis(200);
                            since = intent.revision;
                            inner.clone().apply(intent).await;
                            // Fenced: the next start comes back under the epoch the host now works in.
                            let epoch = inner.epoch.load(Ordering::SeqCst);
                            if epoch != id.epoch {
                                id.epoch = epoch;
                                if let Err(e) = self.save_identity(&id) {
                                    tracing::warn!(host = %id.host_id, error = %e, "cannot record the new epoch");
                                }
                            }
                        }
                        Err(e) => {
                            tracing::warn!(host = %inner.host_id, error = %e, "cannot get the host's intent; retrying");
                            tokio::select! {
                                _ = tokio::time::sleep(backoff) => {}
                                _ = &mut shutdown => break,
                            }
                            backoff = (backoff * 2).min(Duration::from_secs(5));
                        }
                    }
                    pending = Box::pin(poll(since));
                }
                // Look again even when nothing asked: catches guests that halt on their own.
                _ = resync.tick() => inner.clone().pass(),
                _ = &mut shutdown => break,
            }
        }
        beat.abort();
        net_events.abort();
        metadata_server.abort();
        let net = Inner::lock(&inner.net).take();
        if let Some(n) = net {
            // An apply in progress finishes; nothing of this agent touches the kernel afterwards.
            let _ = tokio::task::spawn_blocking(move || n.stop()).await;
        }
        Ok(())
    }
}

/// What the running agent shares between its tasks.
struct Inner {
    link: Arc<dyn ControlLink>,
    runtime: Arc<dyn Runtime>,
    images: Option<Arc<ImageStore>>,
    busybox: Option<PathBuf>,
    credential: Credential,
    host_id: String,
    epoch: AtomicU64,
    /// The last intent received.
    latest: Mutex<Option<Arc<Intent>>>,
    /// Instances a step is working on.
    busy: Mutex<HashSet<String>>,
    /// The intent revision each instance was last acted on at: it is not acted on again until a
    /// newer intent shows what the control plane made of the report (the resync still observes).
    acted: Mutex<HashMap<String, u64>>,
    /// The statuses this host moved its instances to by its own reports.
    copies: copies::OwnCopies,
    /// The number of the host's next event (`InstanceEvent::seq`).
    seq: AtomicU64,
    /// Since when an instance about to boot waits for its network port or disks, and whether
    /// the wait was logged.
    waiting: Mutex<HashMap<String, (std::time::Instant, bool)>>,
    failures: Mutex<HashMap<String, u32>>,
    seen_tasks: Mutex<HashSet<String>>,
    /// Observations and results not yet reported.
    outbox: Mutex<Report>,
    /// Held while a report is in flight: reports leave one at a time ([`deliver`]).
    sending: tokio::sync::Mutex<()>,
    image_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// The epoch whose intent the host was last swept against.
    swept_epoch: AtomicU64,
    /// A storage sweep is scheduled again: files it could not remove yet (a step still held the
    /// disk, or the disk was in use) are looked at again without waiting for the next intent.
    storage_resweep: std::sync::atomic::AtomicBool,
    network_state: Option<PathBuf>,
    /// The worker owning the host's network, started by the first network the host is given
    /// (or a saved one); hosts without a network never start it.
    net: Mutex<Option<Arc<network::NetWorker>>>,
    net_out: Arc<network::NetOutput>,
    metadata: Arc<metadata::Metadata>,
    /// The metadata service's port (`None`: not serving).
    metadata_port: tokio::sync::watch::Sender<Option<u16>>,
    /// The network error last reported to the control plane.
    net_error_reported: Mutex<Option<String>>,
    /// The host's disks: last seen and reported states, retries, per-disk locks.
    disks: Mutex<storage::DiskBook>,
    /// Traffic counters last sent, per instance: only changes are sent again.
    traffic_sent: Mutex<HashMap<String, (u64, u64)>>,
}

/// Collects observations into the outbox (a step's go through [`steps`]' observer).
struct Outbox<'a>(&'a Mutex<Report>);

impl Outbox<'_> {
    fn push(&self, event: InstanceEvent) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).events.push(event);
    }

    /// A step failed; it is retried at the next pass.
    fn report_error(&self, instance_id: &str, error: &str) {
        self.push(InstanceEvent {
            instance_id: instance_id.to_string(),
            event: None,
            error: Some(error.to_string()),
            status_after: None,
            seq: None,
        });
    }
}

impl Inner {
    fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        m.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Run blocking runtime work off the executor (or inline on a backend that never blocks).
    async fn blocking<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
        if self.runtime.blocking() {
            tokio::task::spawn_blocking(f).await.ok()
        } else {
            Some(f())
        }
    }

    async fn apply(self: Arc<Self>, intent: Intent) {
        let fenced = intent.epoch != self.epoch.load(Ordering::SeqCst);
        if fenced {
            tracing::warn!(host = %self.host_id, epoch = intent.epoch, "the host was fenced: dropping what its new intent does not name");
            self.epoch.store(intent.epoch, Ordering::SeqCst);
            // Observations made under the old epoch would be refused.
            *Self::lock(&self.outbox) = Report::default();
            self.forget_reported_disks();
        }
        if self.swept_epoch.load(Ordering::SeqCst) != intent.epoch {
            self.sweep(&intent).await;
            self.swept_epoch.store(intent.epoch, Ordering::SeqCst);
        }
        self.metadata.update(&intent);
        let port = intent.network.as_ref().and_then(|n| n.metadata.map(|m| m.port));
        self.metadata_port.send_if_modified(|p| std::mem::replace(p, port) != port);
        {
            let live: HashSet<&str> = intent.tasks.iter().map(|t| t.id()).collect();
            Self::lock(&self.seen_tasks).retain(|t| live.contains(t.as_str()));
        }
        let tasks = intent.tasks.clone();
        let network = intent.network.clone();
        let intent = Arc::new(intent);
        // A new intent says what the control plane made of the host's reports, and the host's
        // copies it was drawn too early to reflect stay ahead of it (renewed before a pass can
        // read the intent). The same intent again (a long-poll that ended without a change)
        // says nothing new.
        let newer = {
            let mut latest = Self::lock(&self.latest);
            let newer = latest.as_ref().is_none_or(|old| old.revision != intent.revision || old.epoch != intent.epoch);
            if newer {
                self.copies.renew(&intent, fenced);
            }
            *latest = Some(intent.clone());
            newer
        };
        if newer {
            let named: HashSet<&str> = intent.instances.iter().map(|i| i.id.as_str()).collect();
            Self::lock(&self.waiting).retain(|id, _| named.contains(id.as_str()));
        }
        // Disk and snapshot files the intent no longer names.
        tokio::spawn(self.clone().sweep_storage());
        // After the sweep (ports of instances it removed may go with their namespaces), and once
        // the intent is current (the worker's news is read against it).
        if let Some(net) = self.network_worker(network.is_some()) {
            net.submit(network);
            net.kick();
        }
        self.clone().pass();
        for task in tasks {
            if !Self::lock(&self.seen_tasks).insert(task.id().to_string()) {
                continue;
            }
            let me = self.clone();
            tokio::spawn(async move { me.run_task(task).await });
        }
    }

    /// Remove from the host whatever the intent does not name.
    async fn sweep(&self, intent: &Intent) {
        let keep: HashSet<String> = intent.instances.iter().map(|i| i.id.clone()).collect();
        let runtime = self.runtime.clone();
        let host = self.host_id.clone();
        let res = self
            .blocking(move || -> Result<usize, RuntimeError> {
                let mut n = 0;
                for id in runtime.list()? {
                    if !keep.contains(&id) {
                        tracing::info!(host = %host, instance = %id, "removing an instance the host's intent does not name");
                        runtime.destroy(&id)?;
                        n += 1;
                    }
                }
                Ok(n)
            })
            .await;
        if let Some(Err(e)) = res {
            tracing::warn!(host = %self.host_id, error = %e, "sweep failed; trying again at the next epoch change");
            self.swept_epoch.store(0, Ordering::SeqCst);
        }
    }

    /// The network worker, started if `start` and not running yet.
    fn network_worker(&self, start: bool) -> Option<Arc<network::NetWorker>> {
        let mut net = Self::lock(&self.net);
        if net.is_none() && start {
            // Started from the agent's threads: it acts on the agent's network namespace.
            *net = Some(Arc::new(network::NetWorker::start(
                self.runtime.clone(),
                self.network_state.clone(),
                self.net_out.clone(),
            )));
        }
        net.clone()
    }

    /// The worker applied something, failed, or read counters: boot what waited for its
    /// namespace, report the error or the traffic.
    async fn network_changed(self: Arc<Self>) {
        let Some(intent) = Self::lock(&self.latest).clone() else { return };
        let error = self.net_out.error();
        let changed = {
            let mut reported = Self::lock(&self.net_error_reported);
            let changed = *reported != error;
            *reported = error.clone();
            changed
        };
        if let (true, Some(e), Some(spec)) = (changed, &error, &intent.network) {
            for i in intent.instances.iter().filter(|i| spec.vpc_of_instance(&i.id).is_some()) {
                Outbox(&self.outbox).report_error(&i.id, &format!("Network: {e}"));
            }
        }
        if let Some(counters) = self.net_out.take_traffic() {
            let named: HashSet<&str> = intent.instances.iter().map(|i| i.id.as_str()).collect();
            let mut sent = Self::lock(&self.traffic_sent);
            sent.retain(|id, _| named.contains(id.as_str()));
            let fresh: Vec<TrafficCounters> = counters
                .into_iter()
                .filter(|c| named.contains(c.instance_id.as_str()))
                .filter(|c| {
                    sent.insert(c.instance_id.clone(), (c.in_bytes, c.out_bytes)) != Some((c.in_bytes, c.out_bytes))
                })
                .map(|c| TrafficCounters { instance_id: c.instance_id, in_bytes: c.in_bytes, out_bytes: c.out_bytes })
                .collect();
            drop(sent);
            merge_traffic(&mut Self::lock(&self.outbox).traffic, fresh);
        }
        self.clone().pass();
        self.flush().await;
    }

    /// The local root filesystem of an instance's image, materialized if needed.
    async fn image_rootfs(&self, i: &InstanceIntent) -> Result<PathBuf, String> {
        let Some(images) = self.images.clone() else {
            // A hollow host boots nothing.
            return Ok(PathBuf::from("/nonexistent"));
        };
        let image = &i.spec.image;
        if i.desired == feiyun_domain::instance::PowerState::Released || images.get(&image.id).is_some() {
            return Ok(images.rootfs(&image.id));
        }
        let lock = Self::lock(&self.image_locks).entry(image.id.clone()).or_default().clone();
        let _held = lock.lock().await;
        if images.get(&image.id).is_some() {
            return Ok(images.rootfs(&image.id));
        }
        let created = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
        match image.source {
            ImageSource::Builtin => {
                let busybox = self.busybox.clone().ok_or("busybox is not installed on this host")?;
                let store = images.clone();
                tokio::task::spawn_blocking(move || store.ensure_builtin(&busybox, &created))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| e.to_string())?;
            }
            ImageSource::Region => {
                let sha = image.sha256.clone().ok_or("the region recorded no checksum for the image")?;
                std::fs::create_dir_all(images.root()).map_err(|e| format!("{}: {e}", images.root().display()))?;
                let tmp = images.root().join(format!(".{}.fetch", image.id));
                self.link.fetch_image(&self.credential, &image.id, &tmp).await.map_err(|e| e.to_string())?;
                tracing::info!(host = %self.host_id, image = %image.id, "fetched a region image");
                let (store, id, t) = (images.clone(), image.id.clone(), tmp.clone());
                let res = tokio::task::spawn_blocking(move || store.install_archive(&id, &t, &sha, &created)).await;
                let _ = std::fs::remove_file(&tmp);
                res.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;
            }
        }
        Ok(images.rootfs(&image.id))
    }

    async fn run_task(self: Arc<Self>, task: Task) {
        if matches!(task, Task::Snapshot(_) | Task::ResetDisk(_) | Task::CaptureImage(_) | Task::UploadDisk(_)) {
            let outcome = self.clone().storage_task(&task).await;
            Self::lock(&self.outbox).results.push(TaskResult { task_id: task.id().to_string(), outcome });
            self.flush().await;
            return;
        }
        let runtime = self.runtime.clone();
        let t = task.clone();
        let outcome = self
            .blocking(move || match &t {
                Task::Exec(e) => match runtime.exec(
                    &e.instance_id,
                    &e.script,
                    &e.working_dir,
                    Duration::from_millis(e.timeout_ms),
                    e.max_output as usize,
                ) {
                    Ok(o) => TaskOutcome::Exec(ExecOutcome {
                        exit_code: o.exit_code,
                        output: o.output,
                        dropped: o.dropped,
                        timed_out: o.timed_out,
                    }),
                    Err(RuntimeError::NotRunning(_)) => TaskOutcome::NotRunning,
                    Err(e) => TaskOutcome::Failed(e.to_string()),
                },
                Task::Console(c) => match runtime.console(&c.instance_id, c.max_bytes as usize) {
                    Ok((bytes, modified)) => TaskOutcome::Console(feiyun_hostproto::ConsoleOutput {
                        bytes,
                        modified: modified.map(chrono::DateTime::<chrono::Utc>::from),
                    }),
                    Err(e) => TaskOutcome::Failed(e.to_string()),
                },
                Task::Snapshot(_) | Task::ResetDisk(_) | Task::CaptureImage(_) | Task::UploadDisk(_) => {
                    TaskOutcome::Failed("Not run here".into())
                }
            })
            .await
            .unwrap_or_else(|| TaskOutcome::Failed("the task panicked".into()));
        Self::lock(&self.outbox).results.push(TaskResult { task_id: task.id().to_string(), outcome });
        self.flush().await;
    }

    /// Send what the outbox holds; keep it for the next flush if the control plane cannot be
    /// reached.
    async fn flush(&self) {
        let on = Sender {
            link: self.link.as_ref(),
            credential: &self.credential,
            epoch: &self.epoch,
            host_id: &self.host_id,
        };
        deliver(&self.outbox, &self.sending, &self.copies, on).await;
    }
}

/// Where and as whom reports go.
struct Sender<'a> {
    link: &'a dyn ControlLink,
    credential: &'a Credential,
    epoch: &'a AtomicU64,
    host_id: &'a str,
}

/// Send what `outbox` holds, one report at a time: a flush waits for the report in flight before
/// it takes what is left. Two reports in flight at once could land in either order, and the
/// control plane applies events in the order they land (a host that stopped and booted an
/// instance for a reboot would be seen to boot it, then to halt it: the guest shut itself
/// down). What a report could not deliver goes back in front of what came after it.
async fn deliver(outbox: &Mutex<Report>, sending: &tokio::sync::Mutex<()>, copies: &copies::OwnCopies, on: Sender<'_>) {
    let Sender { link, credential, epoch, host_id } = on;
    let _turn = sending.lock().await;
    let report = {
        let mut out = outbox.lock().unwrap_or_else(|p| p.into_inner());
        if out.events.is_empty() && out.results.is_empty() && out.traffic.is_empty() && out.disks.is_empty() {
            return;
        }
        let mut r = std::mem::take(&mut *out);
        r.epoch = epoch.load(Ordering::SeqCst);
        r
    };
    match link.report(credential, report.clone()).await {
        Ok(()) => {}
        Err(e) if e.is_transient() => {
            tracing::warn!(host = %host_id, error = %e, "cannot report; keeping it for the next try");
            let mut out = outbox.lock().unwrap_or_else(|p| p.into_inner());
            let later = std::mem::take(&mut *out);
            *out = report;
            out.events.extend(later.events);
            out.results.extend(later.results);
            merge_traffic(&mut out.traffic, later.traffic);
            merge_disks(&mut out.disks, later.disks);
        }
        // Fenced or refused: the next intent says what is current.
        Err(e) => {
            tracing::warn!(host = %host_id, error = %e, "report refused");
            copies.refused(&report.events.iter().map(|e| e.instance_id.as_str()).collect());
        }
    }
}

/// The number of a new agent's first event: the clock in microseconds, so that the events of a
/// restarted agent come after those of its earlier run.
fn first_seq() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(1)
}

/// Newer absolute counters replace older ones of the same instance.
fn merge_traffic(into: &mut Vec<TrafficCounters>, newer: Vec<TrafficCounters>) {
    for t in newer {
        match into.iter_mut().find(|o| o.instance_id == t.instance_id) {
            Some(o) => *o = t,
            None => into.push(t),
        }
    }
}

/// Newer states replace older ones of the same disk.
fn merge_disks(into: &mut Vec<feiyun_hostproto::DiskStatus>, newer: Vec<feiyun_hostproto::DiskStatus>) {
    for d in newer {
        match into.iter_mut().find(|o| o.disk_id == d.disk_id) {
            Some(o) => *o = d,
            None => into.push(d),
        }
    }
}

pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests;
