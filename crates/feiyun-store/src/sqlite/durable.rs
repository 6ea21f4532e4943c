//! The store's writer: one thread applies every change in the order changes were submitted,
//! many to a transaction, and makes them durable with one sync of the write-ahead log.
//!
//! Callers submit a change and get its position in the commit order at once. Changes made
//! under the control plane's state lock are submitted under it ([`Writer::submit`]), so the
//! order of positions is the order of the decisions; the caller releases the lock and waits for
//! its position to be durable ([`Writer::wait_durable`]). The SQL work is done by the writer
//! thread, off the state lock, and whatever queued up while it wrote the previous batch goes
//! into the next transaction (a waited change in a savepoint of its own), followed by one
//! `fdatasync` of the log. A change whose outcome the caller needs before it acts (an account
//! name that may be taken, a revision-checked write that may conflict) is run the same way and
//! waited for ([`Writer::run`]): its error is its own and changes nothing else.
//!
//! A change submitted without waiting is already applied in the caller's memory, so the store
//! must not refuse it: if it fails (only an I/O error or a bug can make it), or a transaction
//! cannot commit, or a sync fails, the writer stops making anything durable. From then on
//! every wait and every change is refused, and the process must stop and recover from what is
//! on disk (as PostgreSQL does on a failed fsync: the kernel may have dropped pages it could
//! not write, so a retry could report success for data that is gone).
//!
//! Reads wait until everything submitted before them is applied ([`Writer::caught_up`]), so a
//! read never misses a change ordered before it.
//!
//! Why a sync of the log is enough: the connection runs in WAL mode with
//! `synchronous=NORMAL`, and the log's frames carry cumulative checksums, so after a power loss
//! SQLite replays the log up to the first frame that is missing or torn and ignores the rest.
//! What a crash can lose is a suffix of the commit order, made only of changes nobody was told
//! were durable. A process crash loses nothing applied (the frames are in the kernel's cache).

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use rusqlite::Connection;

use crate::StoreError;

/// A change: SQL run inside the writer's transaction.
pub(super) type Job = Box<dyn FnOnce(&Connection) -> Result<(), StoreError> + Send>;

/// Where a waited-for change's outcome is left.
type Slot = Arc<Mutex<Option<Result<(), StoreError>>>>;

struct Queued {
    pos: u64,
    job: Job,
    /// Waited for: its error goes back to its caller. Otherwise an error is final.
    outcome: Option<Slot>,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Queued>,
    /// The last position given out.
    issued: u64,
    closed: bool,
}

#[derive(Default)]
struct Progress {
    /// Every position up to this one is applied (in the database, perhaps not yet synced).
    applied: u64,
    /// Every position up to this one is durable.
    durable: u64,
    /// Nothing is made durable any more.
    failed: Option<String>,
}

struct Shared {
    queue: Mutex<Queue>,
    work: Condvar,
    progress: Mutex<Progress>,
    moved: Condvar,
    syncs: AtomicU64,
}

pub(super) struct Writer {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Changes in one transaction at most.
const BATCH: usize = 512;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Writer {
    /// Start the writer on the connection (shared with readers and the checkpointer); `wal`
    /// is the log to sync (`None` in memory: applied is durable).
    pub(super) fn start(
        conn: Arc<Mutex<Connection>>,
        wal: Option<PathBuf>,
        checkpoints: Option<Checkpointer>,
    ) -> Result<Writer, StoreError> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            work: Condvar::new(),
            progress: Mutex::new(Progress::default()),
            moved: Condvar::new(),
            syncs: AtomicU64::new(0),
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("feiyun-store".into())
            .spawn(move || write_loop(&s, &conn, wal.as_ref(), checkpoints))
            .map_err(|e| StoreError::Backend(format!("store writer thread: {e}")))?;
        Ok(Writer { shared, thread: Some(thread) })
    }

    fn push(&self, job: Job, outcome: Option<Slot>) -> Result<u64, StoreError> {
        if let Some(e) = &lock(&self.shared.progress).failed {
            return Err(StoreError::NotDurable(e.clone()));
        }
        let mut q = lock(&self.shared.queue);
        if q.closed {
            return Err(StoreError::Backend("the store is closed".into()));
        }
        q.issued += 1;
        let pos = q.issued;
        q.jobs.push_back(Queued { pos, job, outcome });
        self.shared.work.notify_one();
        Ok(pos)
    }

    /// Submit a change the caller has applied already: its position, at once.
    pub(super) fn submit(&self, job: Job) -> Result<u64, StoreError> {
        self.push(job, None)
    }

    /// Run a change and return once it is durable, with its own outcome.
    pub(super) fn run<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        let value: Arc<Mutex<Option<R>>> = Arc::new(Mutex::new(None));
        let out = value.clone();
        let slot: Slot = Arc::new(Mutex::new(None));
        let pos = self.push(
            Box::new(move |c| {
                let r = f(c)?;
                *lock(&out) = Some(r);
                Ok(())
            }),
            Some(slot.clone()),
        )?;
        self.wait_applied(pos)?;
        let outcome = lock(&slot).take().unwrap_or_else(|| Err(StoreError::Backend("the change was not run".into())));
        outcome?;
        self.wait_durable(pos)?;
        let r = lock(&value).take();
        r.ok_or_else(|| StoreError::Backend("the change left no result".into()))
    }

    fn wait_until(&self, done: impl Fn(&Progress) -> bool) -> Result<(), StoreError> {
        let mut p = lock(&self.shared.progress);
        loop {
            if done(&p) {
                return Ok(());
            }
            if let Some(e) = &p.failed {
                return Err(StoreError::NotDurable(e.clone()));
            }
            p = self.shared.moved.wait(p).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn wait_applied(&self, pos: u64) -> Result<(), StoreError> {
        self.wait_until(|p| p.applied >= pos)
    }

    /// Return once every change up to `pos` is durable.
    pub(super) fn wait_durable(&self, pos: u64) -> Result<(), StoreError> {
        // A failure is final even for positions made durable before it: the store is unusable.
        if let Some(e) = &lock(&self.shared.progress).failed {
            return Err(StoreError::NotDurable(e.clone()));
        }
        self.wait_until(|p| p.durable >= pos)
    }

    /// Return once everything submitted so far is applied (before a read).
    pub(super) fn caught_up(&self) -> Result<(), StoreError> {
        let issued = lock(&self.shared.queue).issued;
        self.wait_until(|p| p.applied >= issued)
    }

    /// The last position given out.
    pub(super) fn last(&self) -> u64 {
        lock(&self.shared.queue).issued
    }

    pub(super) fn syncs(&self) -> u64 {
        self.shared.syncs.load(Ordering::Relaxed)
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        lock(&self.shared.queue).closed = true;
        self.shared.work.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn write_loop(s: &Shared, conn: &Mutex<Connection>, wal: Option<&PathBuf>, mut checkpoints: Option<Checkpointer>) {
    loop {
        let batch: Vec<Queued> = {
            let mut q = lock(&s.queue);
            while q.jobs.is_empty() && !q.closed {
                q = s.work.wait(q).unwrap_or_else(|e| e.into_inner());
            }
            if q.jobs.is_empty() {
                return;
            }
            let n = q.jobs.len().min(BATCH);
            q.jobs.drain(..n).collect()
        };
        let last = batch.last().map(|q| q.pos).unwrap_or(0);
        let already = lock(&s.progress).failed.clone();
        let (outcomes, fatal) = match already {
            Some(e) => (refused(batch.into_iter().map(|q| q.outcome), &e), None),
            None => apply(&mut lock(conn), batch),
        };
        // Outcomes first: a waiter that sees its position applied finds its outcome there.
        for (slot, r) in outcomes {
            if let Some(slot) = slot {
                *lock(&slot) = Some(r);
            }
        }
        {
            let mut p = lock(&s.progress);
            p.applied = last;
            if let Some(e) = fatal {
                p.failed.get_or_insert(e);
            }
        }
        s.moved.notify_all();
        if lock(&s.progress).failed.is_some() {
            continue;
        }
        let synced = match wal {
            Some(w) => {
                s.syncs.fetch_add(1, Ordering::Relaxed);
                sync_file(w)
            }
            None => Ok(()),
        };
        {
            let mut p = lock(&s.progress);
            match synced {
                Ok(()) => p.durable = last,
                Err(e) => {
                    p.failed.get_or_insert(e);
                }
            }
        }
        s.moved.notify_all();
        if let Some(c) = checkpoints.as_mut() {
            c.after(last);
        }
    }
}

type Outcomes = Vec<(Option<Slot>, Result<(), StoreError>)>;

/// Every change of a batch refused with the store's failure.
fn refused(slots: impl IntoIterator<Item = Option<Slot>>, e: &str) -> Outcomes {
    slots.into_iter().map(|o| (o, Err(StoreError::NotDurable(e.to_string())))).collect()
}

/// One transaction for the batch. A change whose caller waits for its outcome runs in a
/// savepoint of its own, so its error rolls back only itself. A change already applied in its
/// caller's memory runs without one (it can fail only on I/O or a bug, and then the store stops):
/// if it fails, the whole transaction is rolled back, so no change is left half-written, and
/// every change of the batch is refused. Returns each change's outcome, and what makes the store
/// unusable, if anything did.
fn apply(conn: &mut Connection, batch: Vec<Queued>) -> (Outcomes, Option<String>) {
    let mut outcomes = Vec::with_capacity(batch.len());
    let mut tx = match conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => {
            let e = format!("begin: {e}");
            return (refused(batch.into_iter().map(|q| q.outcome), &e), Some(e));
        }
    };
    let mut jobs = batch.into_iter();
    while let Some(q) = jobs.next() {
        if q.outcome.is_none() {
            if let Err(e) = (q.job)(&tx) {
                // Dropping the transaction rolls it back.
                drop(tx);
                let e = format!("a change already applied could not be written: {e}");
                let slots = outcomes.into_iter().map(|(o, _)| o).chain([None]).chain(jobs.map(|q| q.outcome));
                return (refused(slots, &e), Some(e));
            }
            outcomes.push((None, Ok(())));
            continue;
        }
        let r = match tx.savepoint() {
            Ok(sp) => match (q.job)(&sp) {
                Ok(()) => sp.commit().map_err(StoreError::from),
                // Dropping the savepoint rolls it back.
                Err(e) => Err(e),
            },
            Err(e) => Err(StoreError::from(e)),
        };
        outcomes.push((q.outcome, r));
    }
    if let Err(e) = tx.commit() {
        let e = format!("commit: {e}");
        return (refused(outcomes.into_iter().map(|(o, _)| o), &e), Some(e));
    }
    (outcomes, None)
}

/// Copies the log into the database file on a connection and thread of its own. The writer's
/// connection has SQLite's automatic checkpoints turned off: they would run inside the commit
/// that crosses the threshold and hold up every change queued behind it while the database
/// file is written and synced. A passive checkpoint runs beside readers and the writer; then,
/// holding the writer's connection for the moment it takes, the checkpointer copies what was
/// appended meanwhile, so the writer starts the log over at its next commit and the log stays
/// bounded under any load.
/// Owned by the writer thread, the only one that asks for checkpoints.
pub(super) struct Checkpointer {
    nudge: Option<std::sync::mpsc::SyncSender<()>>,
    worker: Option<std::thread::JoinHandle<()>>,
    /// The position at the last request.
    nudged_at: u64,
}

/// Changes between checkpoints: a page changed many times in between is copied once.
const CHECKPOINT_EVERY: u64 = 1024;

impl Checkpointer {
    /// A checkpointer for the database at `path` (its own connection).
    pub(super) fn start(
        path: &std::path::Path,
        main: std::sync::Arc<Mutex<rusqlite::Connection>>,
    ) -> Result<Checkpointer, StoreError> {
        let conn = rusqlite::Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let (tx, rx) = std::sync::mpsc::sync_channel::<()>(1);
        let worker = std::thread::Builder::new()
            .name("feiyun-checkpoint".into())
            .spawn(move || {
                let passive = || {
                    // A failure is not a loss: the log keeps everything until the next one.
                    let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                };
                while rx.recv().is_ok() {
                    passive();
                    let writer = main.lock().unwrap_or_else(|p| p.into_inner());
                    passive();
                    drop(writer);
                }
            })
            .map_err(|e| StoreError::Backend(format!("checkpoint thread: {e}")))?;
        Ok(Checkpointer { nudge: Some(tx), worker: Some(worker), nudged_at: 0 })
    }

    /// Ask for a checkpoint when enough has been applied since the last request.
    pub(super) fn after(&mut self, last: u64) {
        if last.saturating_sub(self.nudged_at) < CHECKPOINT_EVERY {
            return;
        }
        self.nudged_at = last;
        if let Some(tx) = &self.nudge {
            // Full: a checkpoint is asked for already.
            let _ = tx.try_send(());
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        // Closing the channel ends the thread once its checkpoint is done.
        self.nudge.take();
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

/// `fdatasync` the log. A log that does not exist has nothing unsynced: SQLite removes it only
/// when the last connection closes, after checkpointing it into the (synced) database file.
fn sync_file(path: &PathBuf) -> Result<(), String> {
    match std::fs::OpenOptions::new().read(true).open(path) {
        Ok(f) => f.sync_data().map_err(|e| format!("sync {}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("open {}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer(dir: &std::path::Path) -> (Writer, Arc<Mutex<Connection>>) {
        let path = dir.join("db");
        let c = Connection::open(&path).expect("open");
        c.pragma_update(None, "journal_mode", "WAL").expect("wal");
        c.execute_batch("CREATE TABLE t (n INTEGER PRIMARY KEY)").expect("table");
        let conn = Arc::new(Mutex::new(c));
        let w = Writer::start(conn.clone(), Some(dir.join("db-wal")), None).expect("start");
        (w, conn)
    }

    fn insert(n: i64) -> Job {
        Box::new(move |c| {
            c.execute("INSERT INTO t (n) VALUES (?1)", [n])?;
            Ok(())
        })
    }

    fn count(conn: &Mutex<Connection>) -> i64 {
        lock(conn).query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0)).expect("count")
    }

    #[test]
    fn changes_are_applied_in_order_and_share_syncs() {
        let dir = tempfile::tempdir().expect("dir");
        let (w, conn) = writer(dir.path());
        let positions: Vec<u64> = (1..=300).map(|n| w.submit(insert(n)).expect("submit")).collect();
        assert_eq!(positions, (1..=300).collect::<Vec<u64>>());
        w.wait_durable(300).expect("durable");
        assert_eq!(count(&conn), 300);
        assert!(w.syncs() < 300, "{} syncs for 300 changes", w.syncs());
        // A read after catching up sees everything submitted before it.
        let p = w.submit(insert(301)).expect("submit");
        w.caught_up().expect("caught up");
        assert_eq!(count(&conn), 301);
        w.wait_durable(p).expect("durable");
    }

    #[test]
    fn a_waited_change_gets_its_own_error_and_the_store_goes_on() {
        let dir = tempfile::tempdir().expect("dir");
        let (w, conn) = writer(dir.path());
        w.run(|c| Ok(c.execute("INSERT INTO t (n) VALUES (1)", [])?)).expect("first");
        let dup = w.run(|c| Ok(c.execute("INSERT INTO t (n) VALUES (1)", [])?));
        assert!(matches!(dup, Err(StoreError::Backend(_))), "{dup:?}");
        let n = w.run(|c| Ok(c.execute("INSERT INTO t (n) VALUES (2)", [])?)).expect("usable");
        assert_eq!(n, 1);
        assert_eq!(count(&conn), 2);
    }

    #[test]
    fn an_applied_change_that_cannot_be_written_stops_the_store() {
        let dir = tempfile::tempdir().expect("dir");
        let (w, conn) = writer(dir.path());
        let good = w.submit(insert(1)).expect("submit");
        w.wait_durable(good).expect("durable");
        // Half of it can be written, half cannot.
        let bad = w
            .submit(Box::new(|c| {
                c.execute("INSERT INTO t (n) VALUES (5)", [])?;
                c.execute("INSERT INTO t (n) VALUES (1)", [])?;
                Ok(())
            }))
            .expect("submitted: the caller has applied it");
        assert!(matches!(w.wait_durable(bad), Err(StoreError::NotDurable(_))));
        // Final: earlier positions, new changes and reads are refused too.
        assert!(matches!(w.wait_durable(good), Err(StoreError::NotDurable(_))));
        assert!(matches!(w.submit(insert(2)), Err(StoreError::NotDurable(_))));
        assert!(w.run(|_| Ok(())).is_err());
        assert_eq!(count(&conn), 1, "the failed change is rolled back, all of it");
    }

    #[test]
    fn a_failed_sync_stops_the_store() {
        let dir = tempfile::tempdir().expect("dir");
        let c = Connection::open_in_memory().expect("open");
        c.execute_batch("CREATE TABLE t (n INTEGER PRIMARY KEY)").expect("table");
        // A log path below a regular file: it cannot be opened, as a sync that fails would.
        let file = dir.path().join("file");
        std::fs::write(&file, b"x").expect("write");
        let w = Writer::start(Arc::new(Mutex::new(c)), Some(file.join("db-wal")), None).expect("start");
        let p = w.submit(insert(1)).expect("submit");
        assert!(matches!(w.wait_durable(p), Err(StoreError::NotDurable(_))));
        assert!(matches!(w.submit(insert(2)), Err(StoreError::NotDurable(_))));
    }

    #[test]
    fn in_memory_applied_is_durable() {
        let c = Connection::open_in_memory().expect("open");
        c.execute_batch("CREATE TABLE t (n INTEGER PRIMARY KEY)").expect("table");
        let conn = Arc::new(Mutex::new(c));
        let w = Writer::start(conn.clone(), None, None).expect("start");
        let p = w.submit(insert(1)).expect("submit");
        w.wait_durable(p).expect("durable");
        assert_eq!(w.syncs(), 0);
        assert_eq!(count(&conn), 1);
    }
}
