//! Group commit: many transactions made durable by one sync of the write-ahead log.
//!
//! The connection runs in WAL mode with `synchronous=NORMAL`: a commit appends its frames to
//! the log (the operating system's cache) and returns without syncing. Each commit takes the
//! next position in the store's commit order while the connection is still held, so positions
//! are the log's order. A caller that must not go on before its commit is durable waits for its
//! position: the first waiter to find no sync under way becomes the leader, notes the last
//! position committed so far, syncs the log file (`fdatasync`), and marks everything up to that
//! position durable; the others wait for it, and a commit made during a sync is covered by the
//! next one. Under load one sync covers every commit made while the previous one ran.
//!
//! Why a sync of the log file is enough: the log's frames carry cumulative checksums, so after
//! a power loss SQLite replays the log up to the first frame that is missing or torn and ignores
//! the rest. What a crash can lose is therefore a suffix of the commit order, made only of
//! commits nobody waited for successfully; a commit that depends on an earlier one comes after
//! it and is lost with it. A process crash loses nothing committed (the frames are in the
//! kernel's cache). A checkpoint syncs the log before copying it into the database file and
//! syncs the database after (SQLite's rule for `NORMAL`), so positions checkpointed are durable
//! too.
//!
//! A failed sync is final: the kernel may have dropped the pages it could not write, so a retry
//! could report success for data that is gone. From then on every wait fails, and the caller
//! must stop (as PostgreSQL does on a failed fsync) and let a restart recover from what is on
//! disk.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};

use crate::StoreError;

#[derive(Default)]
struct Synced {
    /// Every position up to this one is durable.
    through: u64,
    /// A leader is syncing.
    syncing: bool,
    /// A sync failed: nothing is durable from then on.
    failed: Option<String>,
}

pub(super) struct GroupCommit {
    /// The write-ahead log; `None` for an in-memory database (nothing to make durable).
    wal: Option<PathBuf>,
    /// The last position committed (taken while the connection is held).
    committed: AtomicU64,
    synced: Mutex<Synced>,
    done: Condvar,
    /// Syncs made (for tests and diagnosis).
    syncs: AtomicU64,
}

impl GroupCommit {
    pub(super) fn new(wal: Option<PathBuf>) -> GroupCommit {
        GroupCommit {
            wal,
            committed: AtomicU64::new(0),
            synced: Mutex::new(Synced::default()),
            done: Condvar::new(),
            syncs: AtomicU64::new(0),
        }
    }

    /// A transaction has committed: its position. Call while holding the connection.
    pub(super) fn committed(&self) -> u64 {
        self.committed.fetch_add(1, Ordering::SeqCst) + 1
    }

    pub(super) fn last(&self) -> u64 {
        self.committed.load(Ordering::SeqCst)
    }

    pub(super) fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Synced> {
        self.synced.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Refuse to change anything once a sync has failed.
    pub(super) fn check(&self) -> Result<(), StoreError> {
        match &self.lock().failed {
            Some(e) => Err(StoreError::NotDurable(e.clone())),
            None => Ok(()),
        }
    }

    /// Return once every commit up to `pos` is durable.
    pub(super) fn wait(&self, pos: u64) -> Result<(), StoreError> {
        let Some(wal) = &self.wal else { return Ok(()) };
        let mut s = self.lock();
        loop {
            if let Some(e) = &s.failed {
                return Err(StoreError::NotDurable(e.clone()));
            }
            if s.through >= pos {
                return Ok(());
            }
            if s.syncing {
                s = self.done.wait(s).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            s.syncing = true;
            let target = self.last();
            drop(s);
            let outcome = sync_file(wal);
            self.syncs.fetch_add(1, Ordering::Relaxed);
            s = self.lock();
            s.syncing = false;
            match outcome {
                Ok(()) => s.through = s.through.max(target),
                Err(e) => s.failed = Some(e),
            }
            self.done.notify_all();
        }
    }
}

/// Copies the log into the database file on a connection and thread of its own, so that no
/// commit waits for it. The committing connection has SQLite's automatic checkpoints turned off:
/// they run inside the commit that crosses the threshold, which is taken under the region's
/// state lock, and stall every caller for the time it takes to write and sync the database file.
/// A passive checkpoint runs beside readers and the writer; the writer starts the log over
/// once a checkpoint has copied all of it.
pub(super) struct Checkpointer {
    nudge: Mutex<Option<std::sync::mpsc::SyncSender<()>>>,
    worker: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// The commit position at the last nudge.
    nudged_at: AtomicU64,
}

/// Commits between checkpoints (a few thousand pages of log).
const CHECKPOINT_EVERY: u64 = 256;

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
                    // Copy what the log holds without holding up the writer; then, with the
                    // writer held for the moment it takes, the little it appended meanwhile.
                    // The log is then wholly in the database, and the writer starts it over
                    // at its next commit: the log stays bounded under any load.
                    passive();
                    let writer = main.lock().unwrap_or_else(|p| p.into_inner());
                    passive();
                    drop(writer);
                }
            })
            .map_err(|e| StoreError::Backend(format!("checkpoint thread: {e}")))?;
        Ok(Checkpointer { nudge: Mutex::new(Some(tx)), worker: Mutex::new(Some(worker)), nudged_at: AtomicU64::new(0) })
    }

    /// Ask for a checkpoint when enough has been committed since the last one.
    pub(super) fn after(&self, last: u64) {
        let at = self.nudged_at.load(Ordering::Relaxed);
        if last.saturating_sub(at) < CHECKPOINT_EVERY
            || self.nudged_at.compare_exchange(at, last, Ordering::Relaxed, Ordering::Relaxed).is_err()
        {
            return;
        }
        if let Some(tx) = self.nudge.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            // Full: a checkpoint is asked for already.
            let _ = tx.try_send(());
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.nudge.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(w) = self.worker.lock().unwrap_or_else(|p| p.into_inner()).take() {
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
    use std::sync::Arc;

    #[test]
    fn one_sync_covers_every_commit_made_before_it() {
        let dir = tempfile::tempdir().expect("dir");
        let wal = dir.path().join("db-wal");
        std::fs::write(&wal, b"frames").expect("write");
        let g = GroupCommit::new(Some(wal));
        let positions: Vec<u64> = (0..5).map(|_| g.committed()).collect();
        assert_eq!(positions, vec![1, 2, 3, 4, 5]);
        g.wait(3).expect("durable");
        assert_eq!(g.syncs(), 1);
        // The sync covered 4 and 5 as well: no second sync.
        g.wait(5).expect("durable");
        assert_eq!(g.syncs(), 1);
        let six = g.committed();
        g.wait(six).expect("durable");
        assert_eq!(g.syncs(), 2);
    }

    #[test]
    fn concurrent_waiters_share_syncs() {
        let dir = tempfile::tempdir().expect("dir");
        let wal = dir.path().join("db-wal");
        std::fs::write(&wal, b"frames").expect("write");
        let g = Arc::new(GroupCommit::new(Some(wal)));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let g = g.clone();
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        let p = g.committed();
                        g.wait(p).expect("durable");
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        assert_eq!(g.last(), 400);
        assert!(g.syncs() <= 400, "never more syncs than commits: {}", g.syncs());
        g.wait(400).expect("all durable");
    }

    #[test]
    fn a_failed_sync_fails_every_wait_after_it() {
        let dir = tempfile::tempdir().expect("dir");
        // A log path below a regular file: it cannot be opened, as a sync that fails would.
        let file = dir.path().join("file");
        std::fs::write(&file, b"x").expect("write");
        let g = GroupCommit::new(Some(file.join("db-wal")));
        let p = g.committed();
        assert!(matches!(g.wait(p), Err(StoreError::NotDurable(_))));
        // Even a position that was "covered" before is refused now, and so is any new change:
        // the store is unusable until the process restarts.
        assert!(matches!(g.wait(0), Err(StoreError::NotDurable(_))));
        assert!(matches!(g.check(), Err(StoreError::NotDurable(_))));
    }

    #[test]
    fn an_in_memory_database_is_durable_at_once() {
        let g = GroupCommit::new(None);
        let p = g.committed();
        g.wait(p).expect("nothing to sync");
        assert_eq!(g.syncs(), 0);
    }
}
