//! Group commit: changes are decided one after another against the state, made durable together
//! by one commit of the store (one sync to disk for the group), and only then applied to the
//! state and answered.
//!
//! A caller queues its change and waits. Whoever finds no group under way takes the turn: it
//! decides every queued change in the state's lock, in order, each seeing what the ones before
//! it reserved (capacity in the scheduler's index); lets the lock go while the store syncs, so
//! that heartbeats, long-polls and reads go on; takes the lock again to apply what was written
//! (or undo what was reserved for what was not) and wakes the callers. Changes queued meanwhile
//! make the next group. Nothing is in memory, visible to anyone, before it is durable.
//!
//! Two changes that name the same key (an instance, a client token, an account's money, a host
//! name) are never in one group: the later waits for the next, where it is decided against the
//! outcome of the first.
//!
//! Changes made outside this pipeline that decide on the same state take the turn for their
//! whole decision and commit ([`ControlPlane::exclusive`]); they are serialized with the groups.

use std::cell::Cell;
use std::collections::HashSet;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLockWriteGuard};
use std::thread::Thread;

use feiyun_domain::host::Host;
use feiyun_domain::instance::Instance;
use feiyun_domain::usage::{LedgerEntry, UsageEvent};
use feiyun_store::{StoreError, TokenRecord, WriteSet};

use crate::{ControlPlane, State};

/// What one change writes.
#[derive(Debug, Default)]
pub(crate) struct Changes {
    pub instances: Vec<Instance>,
    pub token: Option<TokenRecord>,
    pub usage: Vec<UsageEvent>,
    pub ledger: Vec<LedgerEntry>,
    pub hosts: Vec<Host>,
    pub cleaned: Vec<String>,
}

impl Changes {
    fn write_set(&self) -> WriteSet<'_> {
        WriteSet {
            instances: &self.instances,
            token: self.token.as_ref(),
            usage: &self.usage,
            ledger: &self.ledger,
            hosts: &self.hosts,
            cleaned: &self.cleaned,
            ..Default::default()
        }
    }
}

/// Once the group's commit is over: apply the change (`Ok`: it is durable) or undo what its
/// decision reserved (`Err`), and make the caller's answer. It is given back what it wrote.
pub(crate) type Finish<R> = Box<dyn FnOnce(&ControlPlane, &mut State, Changes, Result<(), StoreError>) -> R + Send>;

/// What deciding a change came to.
// Returned once per change and taken apart at once: not worth a box.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Decided<R> {
    /// Nothing to write (a refusal, a repeated request): the answer.
    Answer(R),
    /// Write this, then finish.
    Write(Changes, Finish<R>),
}

type Finisher = Box<dyn FnOnce(&ControlPlane, &mut State, Changes, Result<(), StoreError>) + Send>;
type Job = Box<dyn FnOnce(&ControlPlane, &mut State) -> Option<(Changes, Finisher)> + Send>;

struct Queued {
    keys: Vec<String>,
    job: Job,
    /// The thread waiting for the change's answer.
    waiter: Thread,
}

#[derive(Default)]
struct Queue {
    jobs: Vec<Queued>,
    /// A group (or an exclusive change) is under way.
    busy: bool,
    /// Exclusive changes waiting for the turn.
    exclusive_waiting: usize,
}

/// The queue of changes waiting for a group, and whose turn it is. A caller waiting for its
/// change sleeps until its group is over or it is its turn to lead one; only those are woken
/// (a wake-up of every waiter at every group costs more than the group's own work).
#[derive(Default)]
pub(crate) struct GroupCommit {
    queue: Mutex<Queue>,
    /// Where exclusive changes wait for the turn.
    turn: Condvar,
}

thread_local! {
    /// This thread has the turn: queueing a change or asking for the turn again would wait for
    /// itself.
    static HAS_TURN: Cell<bool> = const { Cell::new(false) };
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Having the turn; given back (and the waiting woken) when dropped, also on a panic.
struct Turn<'a>(&'a GroupCommit);

impl<'a> Turn<'a> {
    fn take(group: &'a GroupCommit, mut q: MutexGuard<'_, Queue>) -> Turn<'a> {
        q.busy = true;
        drop(q);
        HAS_TURN.with(|t| t.set(true));
        Turn(group)
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        HAS_TURN.with(|t| t.set(false));
        let mut q = lock(&self.0.queue);
        q.busy = false;
        if q.exclusive_waiting > 0 {
            self.0.turn.notify_all();
        }
        // The oldest change waiting leads the next group.
        if let Some(next) = q.jobs.first() {
            next.waiter.unpark();
        }
    }
}

/// Wakes the callers of a group's changes when the group is over, however it ends.
struct WakeWhenDone(Vec<Thread>);

impl Drop for WakeWhenDone {
    fn drop(&mut self) {
        for t in &self.0 {
            t.unpark();
        }
    }
}

fn check_no_turn() {
    assert!(!HAS_TURN.with(Cell::get), "a change was started while this thread decides or commits others");
}

/// The state's write lock with the turn: nothing else is decided or committed until it is
/// dropped.
pub(crate) struct Exclusive<'a> {
    // Dropped first: the state's lock goes before the turn.
    state: RwLockWriteGuard<'a, State>,
    _turn: Turn<'a>,
}

impl std::ops::Deref for Exclusive<'_> {
    type Target = State;
    fn deref(&self) -> &State {
        &self.state
    }
}

impl std::ops::DerefMut for Exclusive<'_> {
    fn deref_mut(&mut self) -> &mut State {
        &mut self.state
    }
}

impl ControlPlane {
    /// Decide and commit a change in the next group; waits until it is durable and applied (or
    /// refused). `keys` name what the change decides on (see the module's documentation).
    pub(crate) fn submit<R: Send + 'static>(
        &self,
        keys: Vec<String>,
        decide: impl FnOnce(&ControlPlane, &mut State) -> Decided<R> + Send + 'static,
    ) -> R {
        check_no_turn();
        let answer: Arc<Mutex<Option<R>>> = Arc::new(Mutex::new(None));
        let job: Job = {
            let answer = answer.clone();
            Box::new(move |cp, state| match decide(cp, state) {
                Decided::Answer(r) => {
                    *lock(&answer) = Some(r);
                    None
                }
                Decided::Write(changes, finish) => {
                    let finisher: Finisher = Box::new(move |cp, state, changes, written| {
                        let r = finish(cp, state, changes, written);
                        *lock(&answer) = Some(r);
                    });
                    Some((changes, finisher))
                }
            })
        };
        let group = &self.group;
        let me = std::thread::current();
        let mut q = lock(&group.queue);
        q.jobs.push(Queued { keys, job, waiter: me.clone() });
        loop {
            if let Some(r) = lock(&answer).take() {
                return r;
            }
            if !q.busy {
                // No group under way and no answer: the change is queued (deferred or new), or
                // was lost with a group that panicked (nothing but this holds its answer).
                assert!(Arc::strong_count(&answer) > 1, "a change was lost with a failed commit group");
                let jobs = std::mem::take(&mut q.jobs);
                let turn = Turn::take(group, q);
                let deferred = self.run_group(jobs, &me);
                q = lock(&group.queue);
                // Deferred changes were queued before the ones that came since: they go first.
                let later = std::mem::replace(&mut q.jobs, deferred);
                q.jobs.extend(later);
                drop(q);
                drop(turn);
                q = lock(&group.queue);
                continue;
            }
            drop(q);
            std::thread::park();
            q = lock(&group.queue);
        }
    }

    /// The state's write lock, once no group is under way, for a change decided and committed
    /// outside the group pipeline.
    pub(crate) fn exclusive(&self) -> Exclusive<'_> {
        check_no_turn();
        let group = &self.group;
        let mut q = lock(&group.queue);
        q.exclusive_waiting += 1;
        while q.busy {
            q = group.turn.wait(q).unwrap_or_else(|p| p.into_inner());
        }
        q.exclusive_waiting -= 1;
        let turn = Turn::take(group, q);
        Exclusive { state: self.write(), _turn: turn }
    }

    /// Decide, commit and apply one group (led by `leader`); returns the changes left for the
    /// next.
    fn run_group(&self, jobs: Vec<Queued>, leader: &Thread) -> Vec<Queued> {
        let _wake = WakeWhenDone(jobs.iter().map(|j| j.waiter.clone()).filter(|t| t.id() != leader.id()).collect());
        let mut deferred = Vec::new();
        let mut staged = Vec::new();
        {
            let mut state = self.write();
            let mut taken: HashSet<String> = HashSet::new();
            for Queued { keys, job, waiter } in jobs {
                if keys.iter().any(|k| taken.contains(k)) {
                    deferred.push(Queued { keys, job, waiter });
                    continue;
                }
                taken.extend(keys);
                if let Some(s) = job(self, &mut state) {
                    staged.push(s);
                }
            }
        }
        if staged.is_empty() {
            return deferred;
        }
        let outcomes = {
            let sets: Vec<WriteSet<'_>> = staged.iter().map(|(c, _)| c.write_set()).collect();
            match self.store.commit_group(&sets) {
                Ok(o) if o.len() == sets.len() => o,
                Ok(o) => {
                    let e = format!("the store answered {} outcomes for {} write sets", o.len(), sets.len());
                    sets.iter().map(|_| Err(StoreError::Backend(e.clone()))).collect()
                }
                Err(e) => {
                    let e = e.to_string();
                    sets.iter().map(|_| Err(StoreError::Backend(e.clone()))).collect()
                }
            }
        };
        let mut state = self.write();
        for ((changes, finish), written) in staged.into_iter().zip(outcomes) {
            finish(self, &mut state, changes, written);
        }
        deferred
    }
}
