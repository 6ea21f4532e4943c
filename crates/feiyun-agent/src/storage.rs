//! The host's disks and snapshots, reconciled with the intent, and the storage tasks.
//!
//! For every disk of the intent, one step at a time (never two on one disk): make it if it is
//! not here (empty, from a local snapshot, or from a blob fetched and checked), grow it, then
//! move its attachment to where the intent says — detach from where it is, attach where it
//! should be once that instance's root filesystem exists on the host. A step that touches an
//! instance holds that instance like a reconcile step does, so it never runs beside the
//! instance's boot, stop or removal; an instance about to boot waits for the disks attached to
//! it (unless one of them failed). What each disk is goes back in reports when it changes. A
//! failing step is retried with backoff, at once when the intent changes the disk.
//!
//! Disk and snapshot files the intent does not name (nor a pending task) are removed after each
//! new intent: only ids of files this host made, in its own directories, a disk detached first
//! (one still in use is left for the next intent). The region lists a snapshot taken
//! at the latest in the intent that drops its task.
//!
//! Tasks: a snapshot (uploaded if asked), a reset to a snapshot (refused while the disk's
//! instance runs), an image captured from an instance or a snapshot, a disk uploaded for
//! another host. A hollow host keeps no disk data: it reports disks as the intent has them and
//! answers tasks as simulated.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use feiyun_domain::instance::PowerState;
use feiyun_hostproto::{
    BlobKind, CaptureImageTask, CaptureSource, DiskSource, DiskSpec, DiskStatus, Intent, ResetDiskTask, SnapshotTask,
    Task, TaskOutcome, UploadDiskTask,
};
use feiyun_runtime::disks::{device_name, Grown, Storage, StorageError};
use feiyun_runtime::Observed;

use crate::Inner;

const GIB: u64 = 1 << 30;
const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(60);
/// A disk in use in its instance is tried again soon: the user may just have let go of it.
const MAX_RETRY_BUSY: Duration = Duration::from_secs(5);
/// When a storage sweep left a file whose disk a step held, or one it could not remove, it looks
/// again after this long.
const RESWEEP_BUSY: Duration = Duration::from_millis(500);
const RESWEEP_FAILED: Duration = Duration::from_secs(5);
/// How often a disk already as the intent wants it is looked at again (drift: a host reboot, a
/// mount removed by hand).
const RECHECK: Duration = Duration::from_secs(10);
/// How long a disk step waits for an instance's reconcile step to let go of it (a boot or a stop
/// may take seconds); then it tries again at a later pass.
const CLAIM_STEP: Duration = Duration::from_secs(10);
/// How long a task waits for an instance's reconcile step to let go of it.
const CLAIM_WAIT: Duration = Duration::from_secs(120);

/// What the agent keeps about its disks between steps.
#[derive(Default)]
pub(crate) struct DiskBook {
    /// Last observed state of each disk of the intent.
    seen: HashMap<String, DiskStatus>,
    /// Last reported state.
    sent: HashMap<String, DiskStatus>,
    /// Failed disks: the spec that failed, and when to try again.
    retry: HashMap<String, Retry>,
    /// Per disk (`disk:<id>`) and per snapshot (`snap:<id>`): one step or task at a time.
    locks: HashMap<String, Arc<tokio::sync::Mutex<()>>>,
    /// Disks found as the intent wants them, with its revision and when: not looked at again
    /// until the intent changes or [`RECHECK`] has passed.
    settled: HashMap<String, (u64, Instant)>,
}

struct Retry {
    spec: DiskSpec,
    at: Instant,
    backoff: Duration,
}

/// An instance held away from reconcile steps (released when dropped).
pub(crate) struct Claim {
    inner: Arc<Inner>,
    id: String,
}

impl Drop for Claim {
    fn drop(&mut self) {
        Inner::lock(&self.inner.busy).remove(&self.id);
    }
}

fn store_err(e: StorageError) -> String {
    e.to_string()
}

impl Inner {
    fn book(&self) -> std::sync::MutexGuard<'_, DiskBook> {
        Self::lock(&self.disks)
    }

    fn storage_lock(&self, key: String) -> Arc<tokio::sync::Mutex<()>> {
        self.book().locks.entry(key).or_default().clone()
    }

    /// Hold an instance away from reconcile steps, if no step holds it now.
    pub(crate) fn try_claim(self: &Arc<Self>, id: &str) -> Option<Claim> {
        Self::lock(&self.busy).insert(id.to_string()).then(|| Claim { inner: self.clone(), id: id.to_string() })
    }

    /// Hold an instance away from reconcile steps, waiting up to `wait` for a step to let go.
    async fn claim(self: &Arc<Self>, id: &str, wait: Duration) -> Option<Claim> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(c) = self.try_claim(id) {
                return Some(c);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The outbox was dropped (the host was fenced): report every disk again.
    pub(crate) fn forget_reported_disks(&self) {
        self.book().sent.clear();
    }

    /// Before the first step or task of this process: undo what a killed one left half-done.
    pub(crate) async fn recover_storage(&self) {
        let Some(store) = self.runtime.storage() else { return };
        match tokio::task::spawn_blocking(move || store.recover()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(host = %self.host_id, error = %e, "cannot recover the disks' state"),
            Err(e) => tracing::error!(host = %self.host_id, error = %e, "disk recovery panicked"),
        }
    }

    /// Whether an instance about to boot waits for a disk attached to it: one of its intent's
    /// disks has not failed and is not mounted in it yet, or its filesystem has not grown to
    /// the disk's size yet (a grow that could not be done online is done while the instance
    /// does not run: a restart after ResizeDisk finds the disk grown, as on ECS).
    pub(crate) fn waits_for_disks(&self, intent: &Intent, instance_id: &str) -> bool {
        if self.runtime.storage().is_none() {
            return false;
        }
        let book = self.book();
        intent.disks.iter().filter(|d| d.attachment.as_ref().is_some_and(|a| a.instance_id == instance_id)).any(|d| {
            match book.seen.get(&d.disk_id) {
                Some(s) => {
                    s.error.is_none() && (s.attached_to.as_deref() != Some(instance_id) || s.size_gib < d.size_gib)
                }
                None => true,
            }
        })
    }

    /// Start a step for every disk of the intent not being worked on and not waiting to retry.
    pub(crate) fn storage_pass(self: &Arc<Self>, intent: &Arc<Intent>) {
        if self.runtime.storage().is_none() {
            self.simulate_disks(intent);
            return;
        }
        for d in &intent.disks {
            {
                let mut book = self.book();
                if book
                    .settled
                    .get(&d.disk_id)
                    .is_some_and(|(rev, at)| *rev == intent.revision && at.elapsed() < RECHECK)
                {
                    continue;
                }
                if let Some(r) = book.retry.get(&d.disk_id) {
                    if r.spec == *d && Instant::now() < r.at {
                        continue;
                    }
                    if r.spec != *d {
                        book.retry.remove(&d.disk_id);
                    }
                }
            }
            let Ok(guard) = self.storage_lock(format!("disk:{}", d.disk_id)).try_lock_owned() else { continue };
            let me = self.clone();
            let (d, intent) = (d.clone(), intent.clone());
            tokio::spawn(async move {
                let status = me.disk_step(&d, &intent).await;
                drop(guard);
                me.disk_observed(&d, intent.revision, status).await;
            });
        }
    }

    /// A hollow host: its disks are what the intent says, at once.
    fn simulate_disks(&self, intent: &Intent) {
        let fresh: Vec<DiskStatus> = {
            let mut book = self.book();
            let named: HashSet<&str> = intent.disks.iter().map(|d| d.disk_id.as_str()).collect();
            book.sent.retain(|id, _| named.contains(id.as_str()));
            intent
                .disks
                .iter()
                .map(|d| DiskStatus {
                    disk_id: d.disk_id.clone(),
                    size_gib: d.size_gib,
                    attached_to: d.attachment.as_ref().map(|a| a.instance_id.clone()),
                    error: None,
                })
                .filter(|s| book.sent.insert(s.disk_id.clone(), s.clone()).as_ref() != Some(s))
                .collect()
        };
        if !fresh.is_empty() {
            crate::merge_disks(&mut Self::lock(&self.outbox).disks, fresh);
        }
    }

    /// Record what a step left, report it if it changed, and let instances waiting for the disk
    /// boot.
    async fn disk_observed(
        self: Arc<Self>,
        d: &DiskSpec,
        revision: u64,
        status: Result<DiskStatus, (DiskStatus, String, bool)>,
    ) {
        let status = {
            let mut book = self.book();
            book.settled.remove(&d.disk_id);
            let status = match status {
                Ok(s) => {
                    book.retry.remove(&d.disk_id);
                    let wanted = d.attachment.as_ref().map(|a| a.instance_id.as_str());
                    if s.attached_to.as_deref() == wanted && s.size_gib >= d.size_gib {
                        book.settled.insert(d.disk_id.clone(), (revision, Instant::now()));
                    }
                    s
                }
                Err((mut s, error, busy)) => {
                    let cap = if busy { MAX_RETRY_BUSY } else { MAX_RETRY };
                    let backoff = match book.retry.get(&d.disk_id) {
                        Some(r) if r.spec == *d => (r.backoff * 2).min(cap),
                        _ => FIRST_RETRY,
                    };
                    tracing::warn!(host = %self.host_id, disk = %d.disk_id, error = %error, "disk step failed; retrying");
                    book.retry
                        .insert(d.disk_id.clone(), Retry { spec: d.clone(), at: Instant::now() + backoff, backoff });
                    s.error = Some(error);
                    s
                }
            };
            book.seen.insert(d.disk_id.clone(), status.clone());
            if book.sent.get(&d.disk_id) == Some(&status) {
                return;
            }
            book.sent.insert(d.disk_id.clone(), status.clone());
            status
        };
        crate::merge_disks(&mut Self::lock(&self.outbox).disks, vec![status]);
        self.flush().await;
        self.pass();
    }

    /// One step of one disk towards its spec: what it is afterwards, or that with the error.
    async fn disk_step(
        self: &Arc<Self>,
        d: &DiskSpec,
        intent: &Intent,
    ) -> Result<DiskStatus, (DiskStatus, String, bool)> {
        let Some(store) = self.runtime.storage() else {
            return Err((status_of(d), "This host keeps no disks".into(), false));
        };
        match self.converge_disk(&store, d, intent).await {
            Ok(pending) => {
                let s = self.observe_disk(&store, d, pending).await;
                s.map_err(|e| (status_of(d), e, false))
            }
            Err((e, busy)) => {
                let s = self.observe_disk(&store, d, false).await.unwrap_or_else(|_| status_of(d));
                Err((s, e, busy))
            }
        }
    }

    async fn observe_disk(&self, store: &Arc<Storage>, d: &DiskSpec, pending: bool) -> Result<DiskStatus, String> {
        let (s, id) = (store.clone(), d.disk_id.clone());
        let seen = self
            .blocking(move || -> Result<_, StorageError> {
                let st = s.state(&id)?;
                let fs = match &st {
                    Some(_) if pending => s.filesystem_bytes(&id)?,
                    Some(st) => st.size_bytes,
                    None => 0,
                };
                Ok((st, fs))
            })
            .await
            .ok_or("The disk step panicked")?
            .map_err(store_err)?;
        let (st, fs) = seen;
        Ok(DiskStatus {
            disk_id: d.disk_id.clone(),
            size_gib: fs / GIB,
            attached_to: st.and_then(|s| s.attached).map(|a| a.instance_id),
            error: None,
        })
    }

    /// Make, grow and attach (or detach) the disk. `Ok(true)`: a grow waits for the disk's
    /// instance to stop. `Err((message, busy))`.
    async fn converge_disk(
        self: &Arc<Self>,
        store: &Arc<Storage>,
        d: &DiskSpec,
        intent: &Intent,
    ) -> Result<bool, (String, bool)> {
        let plain = |e: StorageError| (store_err(e), false);
        let id = d.disk_id.clone();
        let size = d.size_gib;
        let i = id.clone();
        if self.blocking_raw(store, move |s| s.state(&i)).await.map_err(plain)?.is_none() {
            match &d.source {
                DiskSource::Empty => {
                    let i = id.clone();
                    self.blocking_raw(store, move |s| s.create_empty(&i, size)).await.map_err(plain)?;
                }
                DiskSource::LocalSnapshot(snap) => {
                    let _snap = self.storage_lock(format!("snap:{snap}")).lock_owned().await;
                    let (i, snap) = (id.clone(), snap.clone());
                    self.blocking_raw(store, move |s| s.create_from_snapshot(&i, &snap, size)).await.map_err(plain)?;
                }
                DiskSource::Blob(blob) => {
                    if blob.kind == BlobKind::Image {
                        return Err((format!("Blob {} is an image, not a disk", blob.id), false));
                    }
                    let fetched = store.fetch_path(&id);
                    let _ = tokio::fs::remove_file(&fetched).await;
                    if let Err(e) = self.link.fetch_blob(&self.credential, blob, &fetched).await {
                        let _ = tokio::fs::remove_file(&fetched).await;
                        return Err((format!("Cannot fetch {} {}: {e}", blob.kind.as_str(), blob.id), false));
                    }
                    let (i, f, sha) = (id.clone(), fetched.clone(), blob.sha256.clone());
                    let made = self.blocking_raw(store, move |s| s.create_from_blob(&i, &f, &sha, size)).await;
                    let _ = tokio::fs::remove_file(&fetched).await;
                    made.map_err(plain)?;
                }
            }
        }
        let i = id.clone();
        let grown = self.blocking_raw(store, move |s| s.grow(&i, size)).await.map_err(plain)?;
        let pending = grown == Grown::Pending;

        // Where it should be attached: an instance of the intent that is not being removed.
        let want = match &d.attachment {
            None => None,
            Some(a) => {
                let name = device_name(&a.device).map_err(plain)?;
                match intent.instances.iter().find(|i| i.id == a.instance_id) {
                    None => return Err((format!("Instance {} is not on this host", a.instance_id), false)),
                    Some(i) if i.desired == PowerState::Released => None,
                    Some(_) => Some((a.instance_id.clone(), name)),
                }
            }
        };
        let i = id.clone();
        let here = self
            .blocking_raw(store, move |s| s.state(&i))
            .await
            .map_err(plain)?
            .and_then(|s| s.attached)
            .map(|a| (a.instance_id, a.name));
        if here != want {
            if let Some((from, _)) = &here {
                let Some(_held) = self.claim(from, CLAIM_STEP).await else { return Ok(pending) };
                let i = id.clone();
                self.blocking_raw(store, move |s| s.detach(&i)).await.map_err(|e| {
                    let busy = matches!(e, StorageError::Busy { .. });
                    (store_err(e), busy)
                })?;
            }
            if let Some((to, name)) = &want {
                if !self.instance_present(to).await {
                    // Its root filesystem is not made yet: the instance's next step makes it.
                    return Ok(pending);
                }
                let Some(_held) = self.claim(to, CLAIM_STEP).await else { return Ok(pending) };
                let (i, to, name) = (id.clone(), to.clone(), name.clone());
                self.blocking_raw(store, move |s| s.attach(&i, &to, &name)).await.map_err(plain)?;
            }
        }
        if !pending {
            return Ok(false);
        }
        // The filesystem grows only unmounted here: do it while its instance does not run.
        let Some((at, name)) = want else { return Ok(true) };
        if self.instance_running(&at).await {
            return Ok(true);
        }
        let Some(_held) = self.claim(&at, CLAIM_STEP).await else { return Ok(true) };
        if self.instance_running(&at).await {
            return Ok(true);
        }
        self.blocking_raw(store, move |s| {
            s.detach(&id)?;
            let g = s.grow(&id, size)?;
            s.attach(&id, &at, &name)?;
            Ok(g == Grown::Pending)
        })
        .await
        .map_err(plain)
    }

    async fn instance_state(&self, id: &str) -> Option<Observed> {
        let (rt, id) = (self.runtime.clone(), id.to_string());
        self.blocking(move || rt.observe(&id).ok()).await.flatten()
    }

    async fn instance_present(&self, id: &str) -> bool {
        matches!(self.instance_state(id).await, Some(Observed::Stopped | Observed::Running))
    }

    async fn instance_running(&self, id: &str) -> bool {
        // When it cannot tell, it runs.
        !matches!(self.instance_state(id).await, Some(Observed::Stopped | Observed::Absent))
    }

    /// Remove disk and snapshot files the intent (and its pending tasks) do not name; what is
    /// left for later is looked at again soon, without waiting for the next intent (one sweep
    /// waits at a time).
    pub(crate) async fn sweep_storage(self: Arc<Self>) {
        while let Some(after) = self.sweep_storage_once().await {
            if self.storage_resweep.swap(true, Ordering::SeqCst) {
                return;
            }
            tokio::time::sleep(after).await;
            self.storage_resweep.store(false, Ordering::SeqCst);
        }
    }

    /// One storage sweep; how long to wait before the next when something was left.
    async fn sweep_storage_once(&self) -> Option<Duration> {
        let store = self.runtime.storage()?;
        let s = store.clone();
        let Some(Ok((disks, snapshots))) =
            self.blocking(move || -> Result<_, StorageError> { Ok((s.disk_ids()?, s.snapshot_ids()?)) }).await
        else {
            return None;
        };
        // Something left for later: a file whose disk a step still holds (try again soon), or
        // one that could not be removed yet (a disk in use; try again a little later).
        let mut busy = false;
        let mut failed = false;
        let named =
            |id: &str| Self::lock(&self.latest).as_ref().is_none_or(|i| i.disks.iter().any(|d| d.disk_id == id));
        for id in disks {
            if named(&id) {
                continue;
            }
            let Ok(_g) = self.storage_lock(format!("disk:{id}")).try_lock_owned() else {
                busy = true;
                continue;
            };
            // Read again under the lock: a newer intent may name it.
            if named(&id) {
                continue;
            }
            let (s, d) = (store.clone(), id.clone());
            match self.blocking(move || s.remove_disk(&d)).await {
                Some(Ok(())) => {
                    tracing::info!(host = %self.host_id, disk = %id, "removed a disk the intent does not name")
                }
                Some(Err(e)) => {
                    failed = true;
                    tracing::warn!(host = %self.host_id, disk = %id, error = %e, "cannot remove a disk yet")
                }
                None => {}
            }
            let mut book = self.book();
            book.seen.remove(&id);
            book.sent.remove(&id);
            book.retry.remove(&id);
        }
        let kept = |id: &str| Self::lock(&self.latest).as_ref().is_none_or(|i| kept_snapshots(i).contains(id));
        for id in snapshots {
            if kept(&id) {
                continue;
            }
            let Ok(_g) = self.storage_lock(format!("snap:{id}")).try_lock_owned() else {
                busy = true;
                continue;
            };
            if kept(&id) {
                continue;
            }
            let (s, d) = (store.clone(), id.clone());
            match self.blocking(move || s.remove_snapshot(&d)).await {
                Some(Ok(())) => {
                    tracing::info!(host = %self.host_id, snapshot = %id, "removed a snapshot the intent does not name")
                }
                Some(Err(e)) => {
                    failed = true;
                    tracing::warn!(host = %self.host_id, snapshot = %id, error = %e, "cannot remove a snapshot yet")
                }
                None => {}
            }
        }
        let mut book = self.book();
        let named: HashSet<String> = Self::lock(&self.latest)
            .as_ref()
            .map(|i| i.disks.iter().map(|d| d.disk_id.clone()).collect())
            .unwrap_or_default();
        book.seen.retain(|id, _| named.contains(id));
        book.sent.retain(|id, _| named.contains(id));
        book.retry.retain(|id, _| named.contains(id));
        book.settled.retain(|id, _| named.contains(id));
        drop(book);
        match (busy, failed) {
            (true, _) => Some(RESWEEP_BUSY),
            (false, true) => Some(RESWEEP_FAILED),
            (false, false) => None,
        }
    }

    // ---- tasks ----

    /// Run a storage task to its outcome.
    pub(crate) async fn storage_task(self: Arc<Self>, task: &Task) -> TaskOutcome {
        let Some(store) = self.runtime.storage() else { return simulated(task) };
        let res = match task {
            Task::Snapshot(t) => self.snapshot_task(&store, t).await,
            Task::ResetDisk(t) => self.reset_task(&store, t).await,
            Task::CaptureImage(t) => self.capture_task(&store, t).await,
            Task::UploadDisk(t) => self.upload_disk_task(&store, t).await,
            Task::Exec(_) | Task::Console(_) => Err("Not a storage task".into()),
        };
        res.unwrap_or_else(|e| {
            tracing::warn!(host = %self.host_id, task = %task.id(), error = %e, "storage task failed");
            TaskOutcome::Failed(e)
        })
    }

    async fn in_blocking<T: Send + 'static>(
        &self,
        store: &Arc<Storage>,
        f: impl FnOnce(&Storage) -> Result<T, StorageError> + Send + 'static,
    ) -> Result<T, String> {
        self.blocking_raw(store, f).await.map_err(store_err)
    }

    /// Run store work on the blocking pool.
    async fn blocking_raw<T: Send + 'static>(
        &self,
        store: &Arc<Storage>,
        f: impl FnOnce(&Storage) -> Result<T, StorageError> + Send + 'static,
    ) -> Result<T, StorageError> {
        let s = store.clone();
        self.blocking(move || f(&s)).await.unwrap_or_else(|| Err(StorageError::Refused("the step panicked".into())))
    }

    /// Upload a file of the scratch directory and remove it, whatever happened.
    async fn upload(&self, kind: BlobKind, id: &str, file: &Path) -> Result<feiyun_hostproto::BlobInfo, String> {
        let res = self.link.upload_blob(&self.credential, kind, id, file).await;
        let _ = tokio::fs::remove_file(file).await;
        res.map_err(|e| format!("Cannot upload {} {id}: {e}", kind.as_str()))
    }

    async fn snapshot_task(self: &Arc<Self>, store: &Arc<Storage>, t: &SnapshotTask) -> Result<TaskOutcome, String> {
        let disk_lock = self.storage_lock(format!("disk:{}", t.disk_id)).lock_owned().await;
        let _snap = self.storage_lock(format!("snap:{}", t.snapshot_id)).lock_owned().await;
        let (d, s) = (t.disk_id.clone(), t.snapshot_id.clone());
        let info = self.in_blocking(store, move |st| st.snapshot(&d, &s)).await?;
        drop(disk_lock);
        let blob = if t.upload {
            let file = store.scratch_file("snapshot");
            let src = store.snapshot_path(&t.snapshot_id);
            let f = file.clone();
            self.in_blocking(store, move |st| st.export(&src, &f)).await?;
            Some(self.upload(BlobKind::Snapshot, &t.snapshot_id, &file).await?)
        } else {
            None
        };
        Ok(TaskOutcome::Snapshot { size_bytes: info.size_bytes, blob })
    }

    async fn reset_task(self: &Arc<Self>, store: &Arc<Storage>, t: &ResetDiskTask) -> Result<TaskOutcome, String> {
        let _disk = self.storage_lock(format!("disk:{}", t.disk_id)).lock_owned().await;
        let _snap = self.storage_lock(format!("snap:{}", t.snapshot_id)).lock_owned().await;
        let d = t.disk_id.clone();
        let state = self.in_blocking(store, move |st| st.state(&d)).await?;
        let Some(state) = state else { return Err(format!("Disk {} does not exist on this host", t.disk_id)) };
        let _held = match &state.attached {
            Some(a) => {
                let held = self
                    .claim(&a.instance_id, CLAIM_WAIT)
                    .await
                    .ok_or(format!("Instance {} is busy", a.instance_id))?;
                if self.instance_running(&a.instance_id).await {
                    return Err(format!(
                        "Disk {} is attached to {}, which is running: stop it first",
                        t.disk_id, a.instance_id
                    ));
                }
                Some(held)
            }
            None => None,
        };
        let (d, s) = (t.disk_id.clone(), t.snapshot_id.clone());
        self.in_blocking(store, move |st| st.reset(&d, &s)).await?;
        // Detached now: an instance about to boot waits until the disk's next step attaches it.
        let mut book = self.book();
        book.settled.remove(&t.disk_id);
        if let Some(seen) = book.seen.get_mut(&t.disk_id) {
            seen.attached_to = None;
        }
        Ok(TaskOutcome::Done)
    }

    async fn capture_task(self: &Arc<Self>, store: &Arc<Storage>, t: &CaptureImageTask) -> Result<TaskOutcome, String> {
        let file = store.scratch_file("image");
        let made = match &t.source {
            CaptureSource::Instance(id) => {
                let i = Self::lock(&self.latest)
                    .as_ref()
                    .and_then(|l| l.instances.iter().find(|i| &i.id == id).cloned())
                    .ok_or(format!("Instance {id} is not on this host"))?;
                let rootfs = self.image_rootfs(&i).await?;
                let _held = self.claim(id, CLAIM_WAIT).await.ok_or(format!("Instance {id} is busy"))?;
                let (id, f) = (id.clone(), file.clone());
                self.in_blocking(store, move |st| st.capture_instance(&id, &rootfs, &f)).await
            }
            CaptureSource::Snapshot(s) => {
                let _snap = self.storage_lock(format!("snap:{s}")).lock_owned().await;
                let (s, f) = (s.clone(), file.clone());
                self.in_blocking(store, move |st| st.capture_snapshot(&s, &f)).await
            }
        };
        if let Err(e) = made {
            let _ = tokio::fs::remove_file(&file).await;
            return Err(e);
        }
        Ok(TaskOutcome::Uploaded(self.upload(BlobKind::Image, &t.image_id, &file).await?))
    }

    async fn upload_disk_task(
        self: &Arc<Self>,
        store: &Arc<Storage>,
        t: &UploadDiskTask,
    ) -> Result<TaskOutcome, String> {
        let disk_lock = self.storage_lock(format!("disk:{}", t.disk_id)).lock_owned().await;
        let d = t.disk_id.clone();
        let state = self.in_blocking(store, move |st| st.state(&d)).await?;
        let Some(state) = state else { return Err(format!("Disk {} does not exist on this host", t.disk_id)) };
        let _held = match &state.attached {
            Some(a) => {
                let held = self
                    .claim(&a.instance_id, CLAIM_WAIT)
                    .await
                    .ok_or(format!("Instance {} is busy", a.instance_id))?;
                if self.instance_running(&a.instance_id).await {
                    return Err(format!("Disk {} is attached to {}, which is running", t.disk_id, a.instance_id));
                }
                Some(held)
            }
            None => None,
        };
        let file = store.scratch_file("disk");
        let (src, f) = (store.disk_path(&t.disk_id), file.clone());
        if let Err(e) = self.in_blocking(store, move |st| st.export(&src, &f)).await {
            let _ = tokio::fs::remove_file(&file).await;
            return Err(e);
        }
        drop(_held);
        drop(disk_lock);
        Ok(TaskOutcome::Uploaded(self.upload(BlobKind::Disk, &t.blob_id, &file).await?))
    }
}

/// What a step reports of a disk it could not look at.
fn status_of(d: &DiskSpec) -> DiskStatus {
    DiskStatus { disk_id: d.disk_id.clone(), size_gib: 0, attached_to: None, error: None }
}

/// Snapshots the host keeps: the intent's, and those its pending tasks and new disks name.
fn kept_snapshots(intent: &Intent) -> HashSet<&str> {
    let mut keep: HashSet<&str> = intent.snapshots.iter().map(String::as_str).collect();
    for t in &intent.tasks {
        match t {
            Task::Snapshot(s) => {
                keep.insert(&s.snapshot_id);
            }
            Task::ResetDisk(r) => {
                keep.insert(&r.snapshot_id);
            }
            Task::CaptureImage(CaptureImageTask { source: CaptureSource::Snapshot(s), .. }) => {
                keep.insert(s);
            }
            _ => {}
        }
    }
    for d in &intent.disks {
        if let DiskSource::LocalSnapshot(s) = &d.source {
            keep.insert(s);
        }
    }
    keep
}

/// A hollow host's answer: it keeps no disk data.
fn simulated(task: &Task) -> TaskOutcome {
    match task {
        Task::Snapshot(t) if !t.upload => TaskOutcome::Snapshot { size_bytes: 0, blob: None },
        Task::ResetDisk(_) => TaskOutcome::Done,
        _ => TaskOutcome::Failed("[simulated host] it keeps no disk data to upload".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use feiyun_hostproto::{DiskAttachment, SnapshotTask};

    fn intent(disks: Vec<DiskSpec>, snapshots: Vec<String>, tasks: Vec<Task>) -> Intent {
        Intent { host_id: "h".into(), epoch: 1, revision: 1, instances: vec![], tasks, disks, snapshots, network: None }
    }

    #[test]
    fn keeps_the_snapshots_the_intent_and_its_tasks_name() {
        let disk = |id: &str, src: DiskSource| DiskSpec {
            disk_id: id.into(),
            size_gib: 1,
            source: src,
            attachment: Some(DiskAttachment { instance_id: "i".into(), device: "/dev/vdb".into() }),
        };
        let i = intent(
            vec![disk("d-1", DiskSource::LocalSnapshot("s-src".into())), disk("d-2", DiskSource::Empty)],
            vec!["s-kept".into()],
            vec![
                Task::Snapshot(SnapshotTask {
                    id: "t1".into(),
                    disk_id: "d-2".into(),
                    snapshot_id: "s-new".into(),
                    upload: false,
                }),
                Task::ResetDisk(ResetDiskTask {
                    id: "t2".into(),
                    disk_id: "d-2".into(),
                    snapshot_id: "s-reset".into(),
                }),
                Task::CaptureImage(CaptureImageTask {
                    id: "t3".into(),
                    image_id: "m".into(),
                    source: CaptureSource::Snapshot("s-cap".into()),
                }),
            ],
        );
        let mut kept: Vec<&str> = kept_snapshots(&i).into_iter().collect();
        kept.sort();
        assert_eq!(kept, vec!["s-cap", "s-kept", "s-new", "s-reset", "s-src"]);
    }

    #[test]
    fn a_hollow_host_answers_as_simulated() {
        let snap = Task::Snapshot(SnapshotTask {
            id: "t".into(),
            disk_id: "d".into(),
            snapshot_id: "s".into(),
            upload: false,
        });
        assert_eq!(simulated(&snap), TaskOutcome::Snapshot { size_bytes: 0, blob: None });
        let up = Task::UploadDisk(UploadDiskTask { id: "t".into(), disk_id: "d".into(), blob_id: "b".into() });
        assert!(matches!(simulated(&up), TaskOutcome::Failed(m) if m.contains("simulated")));
    }
}
