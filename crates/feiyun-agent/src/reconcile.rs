//! One reconcile step of one instance: compare what the control plane wants (an
//! [`Assignment`]) with what the runtime observes, take one idempotent step, report what happened.
//!
//! An instance that does not run holds nothing on the host but its disk: the container, mount and
//! cgroup a boot set up are released when it stops, and found and released again after a guest halt
//! or a crash half-way through a stop ([`feiyun_runtime::Leftovers`]).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use feiyun_domain::instance::{AgentEvent, InstanceStatus, PowerState};
use feiyun_runtime::{Observed, Runtime, RuntimeSpec};

/// One instance this host is responsible for.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    pub status: InstanceStatus,
    pub desired: PowerState,
    /// Grace period for a polite stop (zero: force stop).
    pub stop_grace: Duration,
    pub spec: RuntimeSpec,
}

/// Where a reconcile step's observations go (the agent batches them into reports to the
/// control plane).
pub trait Observer: Send + Sync {
    fn report(&self, instance_id: &str, event: AgentEvent);
    /// A step failed; the agent will retry on its next pass.
    fn report_error(&self, instance_id: &str, error: &str);
}

/// Consecutive failures of a boot before the agent gives up and reports [`AgentEvent::BootFailed`].
pub const MAX_BOOT_FAILURES: u32 = 5;

/// [`step`], counting consecutive failures per instance: an instance that fails to boot
/// [`MAX_BOOT_FAILURES`] times in a row is reported as failed (it ends Stopped) instead of being
/// retried forever. Returns whether anything was reported.
pub fn step_with_retries(
    runtime: &dyn Runtime,
    control: &dyn Observer,
    a: &Assignment,
    failures: &Mutex<HashMap<String, u32>>,
) -> bool {
    let id = a.spec.id.as_str();
    match step(runtime, control, a) {
        Ok(changed) => {
            failures.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
            changed
        }
        Err(e) => {
            tracing::warn!(instance = %id, error = %e, "reconcile step failed");
            control.report_error(id, &e.to_string());
            let booting = a.desired == PowerState::Running
                && matches!(a.status, InstanceStatus::Pending | InstanceStatus::Starting);
            let mut f = failures.lock().unwrap_or_else(|p| p.into_inner());
            let n = f.entry(id.to_string()).or_insert(0);
            *n += 1;
            if booting && *n >= MAX_BOOT_FAILURES {
                f.remove(id);
                drop(f);
                tracing::error!(instance = %id, error = %e, "boot failed {MAX_BOOT_FAILURES} times; giving up");
                control.report(id, AgentEvent::BootFailed);
                return true;
            }
            false
        }
    }
}

/// Drive one instance one step towards its desired state. Returns whether anything was reported.
///
/// An instance that is not meant to run ends with nothing on the host but its disk: whatever its
/// last boot left (a container record, a mount, a cgroup — after a guest halt, a crash in the
/// middle of a stop, or a boot that failed) is removed before its halt is reported, and again
/// whenever it is found on an instance that is already Stopped.
pub fn step(
    runtime: &dyn Runtime,
    control: &dyn Observer,
    a: &Assignment,
) -> Result<bool, feiyun_runtime::RuntimeError> {
    let id = a.spec.id.as_str();
    use InstanceStatus as S;
    if a.desired == PowerState::Released {
        runtime.destroy(id)?;
        control.report(id, AgentEvent::Cleaned);
        // Terminal: the control plane forgets the instance, there is no next step.
        return Ok(false);
    }
    let seen = runtime.inspect(id)?;
    // Nothing of the instance runs: release what it still holds, keeping its disk.
    let release = || -> Result<(), feiyun_runtime::RuntimeError> {
        if seen.leftovers.any() {
            tracing::info!(instance = %id, leftovers = ?seen.leftovers, "releasing what the instance's last boot left");
            runtime.stop(id, a.stop_grace)?;
        }
        Ok(())
    };
    match (a.desired, seen.state, a.status) {
        (_, Observed::Absent, S::Pending) | (PowerState::Stopped, Observed::Stopped, S::Pending) => {
            runtime.prepare(&a.spec)?;
            control.report(id, AgentEvent::Provisioned);
            Ok(true)
        }
        (PowerState::Running, Observed::Stopped, S::Pending) => {
            control.report(id, AgentEvent::Provisioned);
            Ok(true)
        }
        // Reboot: the stop half.
        (PowerState::Running, Observed::Running, S::Stopping) => {
            runtime.stop(id, a.stop_grace)?;
            control.report(id, AgentEvent::Halted);
            Ok(true)
        }
        // Running as it should: only what may change while it runs (its key pair) is applied.
        (PowerState::Running, Observed::Running, S::Running) => {
            runtime.refresh(&a.spec)?;
            Ok(false)
        }
        (PowerState::Running, Observed::Running, _) => {
            control.report(id, AgentEvent::Booted);
            Ok(true)
        }
        // It was running and is not: the guest halted (or the host restarted), or a reboot's stop
        // half finished just before a crash.
        (PowerState::Running, Observed::Stopped | Observed::Absent, S::Running | S::Stopping) => {
            release()?;
            control.report(id, AgentEvent::Halted);
            Ok(true)
        }
        // Booting clears what an earlier boot left.
        (PowerState::Running, Observed::Stopped | Observed::Absent, _) => {
            runtime.start(&a.spec)?;
            control.report(id, AgentEvent::Booted);
            Ok(true)
        }
        (PowerState::Stopped, Observed::Running, _) => {
            runtime.stop(id, a.stop_grace)?;
            control.report(id, AgentEvent::Halted);
            Ok(true)
        }
        (PowerState::Stopped, _, S::Stopping | S::Starting | S::Running) => {
            release()?;
            control.report(id, AgentEvent::Halted);
            Ok(true)
        }
        // Already Stopped: it must hold nothing. Reporting the halt again changes no status but
        // clears an error left by a failed attempt.
        (PowerState::Stopped, _, _) if seen.leftovers.any() => {
            release()?;
            control.report(id, AgentEvent::Halted);
            Ok(true)
        }
        (PowerState::Stopped, _, _) => Ok(false),
        (PowerState::Released, _, _) => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use feiyun_domain::instance::UserAction;
    use feiyun_runtime::{Leftovers, Observation, RuntimeError};
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::SystemTime;

    /// What one instance has on the fake host.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    struct Held {
        /// Its disk (the writable layer) exists.
        disk: bool,
        /// Its first-boot data is written: preparing it finished.
        first_boot: bool,
        running: bool,
        container: bool,
        mount: bool,
        cgroup: bool,
    }

    impl Held {
        const NOTHING: Held =
            Held { disk: false, first_boot: false, running: false, container: false, mount: false, cgroup: false };
        /// Prepared, or stopped cleanly: the disk and nothing else.
        const DISK: Held = Held { disk: true, first_boot: true, ..Held::NOTHING };
        const RUNNING: Held = Held { running: true, container: true, mount: true, cgroup: true, ..Held::DISK };
        /// Init has exited (the guest halted, or a stop was cut short after the kill); everything
        /// its boot set up is still there.
        const HALTED: Held = Held { running: false, ..Held::RUNNING };
    }

    /// The agent's process: it dies after a budget of actions (host steps and reports). Once dead
    /// it changes nothing more, as after a `kill -9`.
    #[derive(Default)]
    struct Crash {
        left: Mutex<Option<usize>>,
        hit: AtomicBool,
    }

    impl Crash {
        fn arm(&self, actions: usize) {
            *self.left.lock().expect("lock") = Some(actions);
        }
        fn disarm(&self) {
            *self.left.lock().expect("lock") = None;
            self.hit.store(false, Ordering::SeqCst);
        }
        /// Whether one more action happens.
        fn survive(&self) -> bool {
            let mut left = self.left.lock().expect("lock");
            match *left {
                None => true,
                Some(0) => {
                    self.hit.store(true, Ordering::SeqCst);
                    false
                }
                Some(n) => {
                    *left = Some(n - 1);
                    true
                }
            }
        }
        fn hit(&self) -> bool {
            self.hit.load(Ordering::SeqCst)
        }
    }

    /// An in-memory runtime: the agent's decisions are tested without runc. Its operations take
    /// the real backend's steps in the real order, each skipped when already done, so a crash can
    /// be placed between any two of them.
    #[derive(Default)]
    struct FakeRuntime {
        host: Mutex<HashMap<String, Held>>,
        calls: Mutex<Vec<String>>,
        /// Booting fails after the container is created, leaving it, the mount and the cgroup.
        broken: bool,
        crash: Arc<Crash>,
    }

    impl FakeRuntime {
        fn held(&self, id: &str) -> Held {
            self.host.lock().expect("lock").get(id).copied().unwrap_or_default()
        }
        fn set(&self, id: &str, h: Held) {
            self.host.lock().expect("lock").insert(id.to_string(), h);
        }
        fn call(&self, what: &str, id: &str) {
            self.calls.lock().expect("lock").push(format!("{what} {id}"));
        }
        /// One step that changes the host; refused once the process is dead.
        fn act(&self, id: &str, what: &str, change: impl FnOnce(&mut Held)) -> feiyun_runtime::Result<()> {
            if !self.crash.survive() {
                return Err(RuntimeError::Command(what.into(), "process died".into()));
            }
            change(self.host.lock().expect("lock").entry(id.to_string()).or_default());
            Ok(())
        }
        fn prepare_steps(&self, id: &str) -> feiyun_runtime::Result<()> {
            if !self.held(id).disk {
                self.act(id, "create disk", |h| h.disk = true)?;
            }
            if !self.held(id).first_boot {
                self.act(id, "write first-boot data", |h| h.first_boot = true)?;
            }
            Ok(())
        }
        fn stop_steps(&self, id: &str) -> feiyun_runtime::Result<()> {
            if self.held(id).running {
                self.act(id, "kill", |h| h.running = false)?;
            }
            if self.held(id).container {
                self.act(id, "delete container", |h| h.container = false)?;
            }
            if self.held(id).mount {
                self.act(id, "unmount", |h| h.mount = false)?;
            }
            if self.held(id).cgroup {
                self.act(id, "remove cgroup", |h| h.cgroup = false)?;
            }
            Ok(())
        }
    }

    impl Runtime for FakeRuntime {
        fn prepare(&self, s: &RuntimeSpec) -> feiyun_runtime::Result<()> {
            self.call("prepare", &s.id);
            self.prepare_steps(&s.id)
        }
        fn start(&self, s: &RuntimeSpec) -> feiyun_runtime::Result<()> {
            self.call("start", &s.id);
            let id = s.id.as_str();
            if self.held(id).running {
                return Ok(());
            }
            if self.held(id).container {
                self.act(id, "delete stale container", |h| h.container = false)?;
            }
            if self.held(id).cgroup {
                self.act(id, "remove stale cgroup", |h| h.cgroup = false)?;
            }
            self.prepare_steps(id)?;
            if !self.held(id).mount {
                self.act(id, "mount", |h| h.mount = true)?;
            }
            self.act(id, "create container", |h| {
                h.container = true;
                h.cgroup = true;
            })?;
            if self.broken {
                return Err(RuntimeError::Command("runc run".into(), "broken image".into()));
            }
            self.act(id, "run init", |h| h.running = true)
        }
        fn stop(&self, id: &str, _: Duration) -> feiyun_runtime::Result<()> {
            self.call("stop", id);
            self.stop_steps(id)
        }
        fn observe(&self, id: &str) -> feiyun_runtime::Result<Observed> {
            let h = self.held(id);
            Ok(if h.running {
                Observed::Running
            } else if h.disk {
                Observed::Stopped
            } else {
                Observed::Absent
            })
        }
        fn inspect(&self, id: &str) -> feiyun_runtime::Result<Observation> {
            let h = self.held(id);
            let leftovers = Leftovers { container: h.container, mount: h.mount, cgroup: h.cgroup };
            Ok(Observation { state: self.observe(id)?, leftovers })
        }
        fn destroy(&self, id: &str) -> feiyun_runtime::Result<()> {
            self.call("destroy", id);
            self.stop_steps(id)?;
            if self.held(id).disk {
                self.act(id, "remove disk", |h| *h = Held::NOTHING)?;
            }
            Ok(())
        }
        fn exec(
            &self,
            _: &str,
            _: &[u8],
            _: &str,
            _: Duration,
            _: usize,
        ) -> feiyun_runtime::Result<feiyun_runtime::ExecOutcome> {
            unreachable!("not used by the agent")
        }
        fn console(&self, _: &str, _: usize) -> feiyun_runtime::Result<(Vec<u8>, Option<SystemTime>)> {
            Ok((Vec::new(), None))
        }
        fn list(&self) -> feiyun_runtime::Result<Vec<String>> {
            let host = self.host.lock().expect("lock");
            Ok(host.iter().filter(|(_, h)| **h != Held::NOTHING).map(|(id, _)| id.clone()).collect())
        }
    }

    /// A control plane holding one instance and applying the domain's transitions to reports. A
    /// report made after the process died is lost.
    struct OneInstance {
        a: Mutex<Assignment>,
        events: Mutex<Vec<AgentEvent>>,
        errors: Mutex<Vec<String>>,
        crash: Arc<Crash>,
    }

    impl Observer for OneInstance {
        fn report(&self, _: &str, e: AgentEvent) {
            if !self.crash.survive() {
                return;
            }
            let mut a = self.a.lock().expect("lock");
            let t = a.status.observe(a.desired, e);
            a.status = t.status;
            a.desired = t.desired;
            self.events.lock().expect("lock").push(e);
        }
        fn report_error(&self, _: &str, e: &str) {
            self.errors.lock().expect("lock").push(e.to_string());
        }
    }

    impl OneInstance {
        fn now(&self) -> (InstanceStatus, PowerState) {
            let a = self.a.lock().expect("lock");
            (a.status, a.desired)
        }
        /// A user command, committed by the control plane.
        fn user(&self, action: UserAction) {
            let mut a = self.a.lock().expect("lock");
            let t = a.status.apply(a.desired, action).expect("legal");
            a.status = t.status;
            a.desired = t.desired;
        }
    }

    fn setup(status: InstanceStatus, desired: PowerState) -> (FakeRuntime, OneInstance) {
        let spec = RuntimeSpec {
            id: "i-1".into(),
            hostname: "h".into(),
            vcpus: 1,
            memory_mib: 512,
            baseline_cpu_percent: 0,
            image_rootfs: "/nonexistent".into(),
            user_data: None,
            netns: None,
            authorized_keys: Vec::new(),
        };
        let a = Assignment { status, desired, stop_grace: Duration::ZERO, spec };
        let crash = Arc::new(Crash::default());
        (
            FakeRuntime { crash: crash.clone(), ..FakeRuntime::default() },
            OneInstance { a: Mutex::new(a), events: Mutex::new(Vec::new()), errors: Mutex::new(Vec::new()), crash },
        )
    }

    fn settle(rt: &FakeRuntime, c: &OneInstance) -> InstanceStatus {
        for _ in 0..20 {
            let a = c.a.lock().expect("lock").clone();
            if !step(rt, c, &a).expect("no runtime error") {
                break;
            }
        }
        c.a.lock().expect("lock").status
    }

    #[test]
    fn run_instances_reaches_running() {
        let (rt, c) = setup(InstanceStatus::Pending, PowerState::Running);
        assert_eq!(settle(&rt, &c), InstanceStatus::Running);
        assert_eq!(*rt.calls.lock().expect("lock"), vec!["prepare i-1", "start i-1"]);
    }

    #[test]
    fn create_instance_settles_stopped_without_booting() {
        let (rt, c) = setup(InstanceStatus::Pending, PowerState::Stopped);
        assert_eq!(settle(&rt, &c), InstanceStatus::Stopped);
        assert_eq!(*rt.calls.lock().expect("lock"), vec!["prepare i-1"]);
        assert_eq!(rt.held("i-1"), Held::DISK);
    }

    #[test]
    fn reboot_stops_then_starts() {
        let (rt, c) = setup(InstanceStatus::Pending, PowerState::Running);
        settle(&rt, &c);
        c.user(UserAction::Reboot);
        assert_eq!(settle(&rt, &c), InstanceStatus::Running);
        assert_eq!(rt.calls.lock().expect("lock")[2..], ["stop i-1".to_string(), "start i-1".to_string()]);
    }

    #[test]
    fn readopts_a_running_instance_without_touching_it() {
        let (rt, c) = setup(InstanceStatus::Running, PowerState::Running);
        rt.set("i-1", Held::RUNNING);
        assert_eq!(settle(&rt, &c), InstanceStatus::Running);
        assert!(rt.calls.lock().expect("lock").is_empty());
    }

    #[test]
    fn guest_halt_is_reported_as_stopped_and_leaves_only_the_disk() {
        let (rt, c) = setup(InstanceStatus::Running, PowerState::Running);
        rt.set("i-1", Held::HALTED);
        assert_eq!(settle(&rt, &c), InstanceStatus::Stopped);
        assert_eq!(c.now(), (InstanceStatus::Stopped, PowerState::Stopped));
        assert_eq!(rt.held("i-1"), Held::DISK);
    }

    #[test]
    fn a_boot_that_keeps_failing_ends_stopped_holding_nothing() {
        let (mut rt, c) = setup(InstanceStatus::Starting, PowerState::Running);
        rt.broken = true;
        rt.set("i-1", Held::DISK);
        let failures = Mutex::new(HashMap::new());
        for n in 1..MAX_BOOT_FAILURES {
            let a = c.a.lock().expect("lock").clone();
            assert!(!step_with_retries(&rt, &c, &a, &failures), "attempt {n} is retried");
            assert_eq!(c.a.lock().expect("lock").status, InstanceStatus::Starting);
        }
        let a = c.a.lock().expect("lock").clone();
        assert!(step_with_retries(&rt, &c, &a, &failures));
        assert_eq!(c.a.lock().expect("lock").status, InstanceStatus::Stopped);
        assert_eq!(c.errors.lock().expect("lock").len() as u32, MAX_BOOT_FAILURES);
        assert!(failures.lock().expect("lock").is_empty());
        // The failed boots left a container, a mount and a cgroup: the next pass removes them.
        assert!(rt.held("i-1").mount);
        assert_eq!(settle(&rt, &c), InstanceStatus::Stopped);
        assert_eq!(rt.held("i-1"), Held::DISK);
    }

    #[test]
    fn release_destroys() {
        let (rt, c) = setup(InstanceStatus::Deleted, PowerState::Released);
        rt.set("i-1", Held::RUNNING);
        settle(&rt, &c);
        assert_eq!(*rt.calls.lock().expect("lock"), vec!["destroy i-1"]);
        assert_eq!(*c.events.lock().expect("lock"), vec![AgentEvent::Cleaned]);
        assert_eq!(rt.held("i-1"), Held::NOTHING);
    }

    /// One reconcile step from each (status, desired, what the host holds) that matters: the
    /// runtime operations it calls, what it reports, and what the host holds afterwards.
    #[test]
    fn one_step_decisions() {
        use AgentEvent as E;
        use InstanceStatus as S;
        use PowerState as P;
        let only = |f: fn(&mut Held)| {
            let mut h = Held::DISK;
            f(&mut h);
            h
        };
        let half_prepared = Held { disk: true, ..Held::NOTHING };
        /// Status, desired, host before; runtime calls, report, host after.
        type Row = (S, P, Held, &'static [&'static str], Option<E>, Held);
        #[rustfmt::skip]
        let table: Vec<Row> = vec![
            // Stopped: only the disk may remain, whatever left the rest behind.
            (S::Stopped, P::Stopped, Held::DISK, &[], None, Held::DISK),
            (S::Stopped, P::Stopped, Held::HALTED, &["stop"], Some(E::Halted), Held::DISK),
            (S::Stopped, P::Stopped, only(|h| h.container = true), &["stop"], Some(E::Halted), Held::DISK),
            (S::Stopped, P::Stopped, only(|h| h.mount = true), &["stop"], Some(E::Halted), Held::DISK),
            (S::Stopped, P::Stopped, only(|h| h.cgroup = true), &["stop"], Some(E::Halted), Held::DISK),
            (S::Stopped, P::Stopped, Held::RUNNING, &["stop"], Some(E::Halted), Held::DISK),
            (S::Stopped, P::Stopped, Held::NOTHING, &[], None, Held::NOTHING),
            (S::Stopped, P::Stopped, Held { mount: true, ..Held::NOTHING }, &["stop"], Some(E::Halted), Held::NOTHING),
            // StopInstance in progress, or cut short by a crash.
            (S::Stopping, P::Stopped, Held::RUNNING, &["stop"], Some(E::Halted), Held::DISK),
            (S::Stopping, P::Stopped, Held::HALTED, &["stop"], Some(E::Halted), Held::DISK),
            (S::Stopping, P::Stopped, only(|h| h.mount = true), &["stop"], Some(E::Halted), Held::DISK),
            (S::Stopping, P::Stopped, Held::DISK, &[], Some(E::Halted), Held::DISK),
            // The guest halted on its own.
            (S::Running, P::Running, Held::HALTED, &["stop"], Some(E::Halted), Held::DISK),
            (S::Running, P::Running, Held::DISK, &[], Some(E::Halted), Held::DISK),
            (S::Running, P::Running, Held::RUNNING, &[], None, Held::RUNNING),
            // Reboot: the stop half (or its end, after a crash), then a boot.
            (S::Stopping, P::Running, Held::RUNNING, &["stop"], Some(E::Halted), Held::DISK),
            (S::Stopping, P::Running, Held::HALTED, &["stop"], Some(E::Halted), Held::DISK),
            (S::Starting, P::Running, Held::DISK, &["start"], Some(E::Booted), Held::RUNNING),
            (S::Starting, P::Running, Held::HALTED, &["start"], Some(E::Booted), Held::RUNNING),
            (S::Starting, P::Running, Held::RUNNING, &[], Some(E::Booted), Held::RUNNING),
            // Creation, from nothing or from a half-prepared disk.
            (S::Pending, P::Stopped, Held::NOTHING, &["prepare"], Some(E::Provisioned), Held::DISK),
            (S::Pending, P::Stopped, half_prepared, &["prepare"], Some(E::Provisioned), Held::DISK),
            (S::Pending, P::Running, Held::NOTHING, &["prepare"], Some(E::Provisioned), Held::DISK),
            (S::Pending, P::Running, half_prepared, &[], Some(E::Provisioned), half_prepared),
            // Release.
            (S::Deleted, P::Released, Held::HALTED, &["destroy"], Some(E::Cleaned), Held::NOTHING),
        ];
        for (status, desired, before, calls, event, after) in table {
            let (rt, c) = setup(status, desired);
            rt.set("i-1", before);
            let a = c.a.lock().expect("lock").clone();
            step(&rt, &c, &a).expect("no runtime error");
            let case = format!("{status:?}/{desired:?} holding {before:?}");
            let made: Vec<String> =
                rt.calls.lock().expect("lock").iter().filter_map(|c| c.split(' ').next()).map(String::from).collect();
            assert_eq!(made, calls, "{case}: runtime calls");
            assert_eq!(c.events.lock().expect("lock").first().copied(), event, "{case}: report");
            assert_eq!(rt.held("i-1"), after, "{case}: host afterwards");
        }
    }

    /// Where an instance starts, what the user asks, and where it must end.
    struct Scenario {
        status: InstanceStatus,
        desired: PowerState,
        host: Held,
        user: Option<UserAction>,
        end: InstanceStatus,
        /// Host steps and reports of the uninterrupted run: one crash point before each.
        actions: usize,
    }

    /// Run `s` with the agent dying after `budget` actions, then start a new agent on the same host
    /// and control plane and let it settle. Returns whether the crash happened (false: the run
    /// needed fewer actions than the budget).
    fn crash_then_recover(s: &Scenario, budget: usize) -> (bool, FakeRuntime, OneInstance) {
        let (rt, c) = setup(s.status, s.desired);
        rt.set("i-1", s.host);
        if let Some(action) = s.user {
            c.user(action);
        }
        rt.crash.arm(budget);
        for _ in 0..20 {
            let a = c.a.lock().expect("lock").clone();
            match step(&rt, &c, &a) {
                Ok(true) if !rt.crash.hit() => {}
                _ => break,
            }
        }
        let crashed = rt.crash.hit();
        rt.crash.disarm();
        settle(&rt, &c);
        (crashed, rt, c)
    }

    /// Every crash point of `s` converges: to Stopped holding only the disk, or to Running — and
    /// from there a stop leaves only the disk too. The disk is never thrown away.
    fn converges_from_every_crash_point(name: &str, s: Scenario) {
        let mut points = 0;
        loop {
            let (crashed, rt, c) = crash_then_recover(&s, points);
            let case = format!("{name}, crash after {points} actions");
            if s.end == InstanceStatus::Running {
                assert_eq!(c.now(), (InstanceStatus::Running, PowerState::Running), "{case}");
                assert_eq!(rt.held("i-1"), Held::RUNNING, "{case}");
                c.user(UserAction::Stop);
                settle(&rt, &c);
            }
            assert_eq!(c.now(), (InstanceStatus::Stopped, PowerState::Stopped), "{case}");
            assert_eq!(rt.held("i-1"), Held::DISK, "{case}: a Stopped instance holds only its disk");
            assert!(!rt.calls.lock().expect("lock").iter().any(|c| c.starts_with("destroy")), "{case}");
            assert!(c.errors.lock().expect("lock").is_empty(), "{case}");
            if !crashed {
                break;
            }
            points += 1;
        }
        assert_eq!(points, s.actions, "{name}: crash points");
    }

    #[test]
    fn stop_converges_from_every_crash_point() {
        // kill, delete container, unmount, remove cgroup, report.
        converges_from_every_crash_point(
            "stop",
            Scenario {
                status: InstanceStatus::Running,
                desired: PowerState::Running,
                host: Held::RUNNING,
                user: Some(UserAction::Stop),
                end: InstanceStatus::Stopped,
                actions: 5,
            },
        );
    }

    #[test]
    fn guest_halt_converges_from_every_crash_point() {
        // delete container, unmount, remove cgroup, report.
        converges_from_every_crash_point(
            "guest halt",
            Scenario {
                status: InstanceStatus::Running,
                desired: PowerState::Running,
                host: Held::HALTED,
                user: None,
                end: InstanceStatus::Stopped,
                actions: 4,
            },
        );
    }

    #[test]
    fn stopped_instance_holding_leftovers_converges_from_every_crash_point() {
        // What a stop cut short left before the agent looked at Stopped instances.
        converges_from_every_crash_point(
            "already stopped",
            Scenario {
                status: InstanceStatus::Stopped,
                desired: PowerState::Stopped,
                host: Held::HALTED,
                user: None,
                end: InstanceStatus::Stopped,
                actions: 4,
            },
        );
    }

    #[test]
    fn start_converges_from_every_crash_point() {
        // mount, create container, run init, report.
        converges_from_every_crash_point(
            "start",
            Scenario {
                status: InstanceStatus::Stopped,
                desired: PowerState::Stopped,
                host: Held::DISK,
                user: Some(UserAction::Start),
                end: InstanceStatus::Running,
                actions: 4,
            },
        );
    }

    #[test]
    fn reboot_converges_from_every_crash_point() {
        // The stop (4 steps, report) and the start (3 steps, report).
        converges_from_every_crash_point(
            "reboot",
            Scenario {
                status: InstanceStatus::Running,
                desired: PowerState::Running,
                host: Held::RUNNING,
                user: Some(UserAction::Reboot),
                end: InstanceStatus::Running,
                actions: 9,
            },
        );
    }

    #[test]
    fn create_converges_from_every_crash_point() {
        // create disk, write first-boot data, report.
        converges_from_every_crash_point(
            "create stopped",
            Scenario {
                status: InstanceStatus::Pending,
                desired: PowerState::Stopped,
                host: Held::NOTHING,
                user: None,
                end: InstanceStatus::Stopped,
                actions: 3,
            },
        );
    }

    #[test]
    fn run_converges_from_every_crash_point() {
        // The preparation (2 steps, report) and the boot (3 steps, report).
        converges_from_every_crash_point(
            "run",
            Scenario {
                status: InstanceStatus::Pending,
                desired: PowerState::Running,
                host: Held::NOTHING,
                user: None,
                end: InstanceStatus::Running,
                actions: 7,
            },
        );
    }
}
