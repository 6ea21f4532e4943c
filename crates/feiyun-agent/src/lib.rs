//! The host agent: a reconcile loop between intent and observation.
//!
//! The control plane says what should exist on this host ([`HostControl::assigned`]); the runtime
//! says what does ([`Runtime::observe`]). Each pass closes the gap one idempotent step at a time and
//! reports what it saw as [`AgentEvent`]s, so the loop is safe to stop and restart at any point —
//! which is how instances are re-adopted after the control plane restarts.
//!
//! Must not: change intent (only the control plane does), decide placement, or know about the
//! API, accounts or the store.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use feiyun_domain::instance::{AgentEvent, InstanceStatus, PowerState};
use feiyun_runtime::{Observed, Runtime, RuntimeSpec};
use tokio::sync::Notify;

/// One instance this host is responsible for.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    pub status: InstanceStatus,
    pub desired: PowerState,
    /// Grace period for a polite stop (zero: force stop).
    pub stop_grace: Duration,
    pub spec: RuntimeSpec,
}

/// What the agent needs from the control plane.
pub trait HostControl: Send + Sync {
    /// Every instance placed on `host_id` that still has something on the host, released ones
    /// included.
    fn assigned(&self, host_id: &str) -> Vec<Assignment>;
    /// Whether the control plane knows this instance at all (unknown leftovers are removed).
    fn knows(&self, instance_id: &str) -> bool;
    fn report(&self, instance_id: &str, event: AgentEvent);
    /// A step failed; the agent will retry on its next pass.
    fn report_error(&self, instance_id: &str, error: &str);
}

pub struct Agent {
    host_id: String,
    runtime: Arc<dyn Runtime>,
    control: Arc<dyn HostControl>,
    wake: Arc<Notify>,
    busy: Arc<Mutex<HashSet<String>>>,
    failures: Arc<Mutex<HashMap<String, u32>>>,
    /// How often to look even when nothing asked (catches guests that halt on their own).
    resync: Duration,
    concurrency: Arc<tokio::sync::Semaphore>,
}

impl Agent {
    pub fn new(host_id: &str, runtime: Arc<dyn Runtime>, control: Arc<dyn HostControl>, wake: Arc<Notify>) -> Agent {
        Agent {
            host_id: host_id.to_string(),
            runtime,
            control,
            wake,
            busy: Arc::new(Mutex::new(HashSet::new())),
            failures: Arc::new(Mutex::new(HashMap::new())),
            resync: Duration::from_secs(1),
            concurrency: Arc::new(tokio::sync::Semaphore::new(8)),
        }
    }

    /// Run until `shutdown` resolves. Instances keep running after it returns.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        self.sweep_orphans().await;
        loop {
            self.pass();
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(self.resync) => {}
                _ = &mut shutdown => return,
            }
        }
    }

    /// Remove anything on the host the control plane has never heard of (e.g. leftovers of a
    /// crash between creating a root filesystem and committing the instance).
    async fn sweep_orphans(&self) {
        let runtime = self.runtime.clone();
        let control = self.control.clone();
        let res = tokio::task::spawn_blocking(move || -> Result<(), String> {
            for id in runtime.list().map_err(|e| e.to_string())? {
                if !control.knows(&id) {
                    tracing::info!(instance = %id, "removing unknown instance from host");
                    runtime.destroy(&id).map_err(|e| e.to_string())?;
                }
            }
            Ok(())
        })
        .await;
        if let Ok(Err(e)) | Err(e) = res.map_err(|e| e.to_string()) {
            tracing::warn!(error = %e, "orphan sweep failed");
        }
    }

    /// Start one step for every instance not already being worked on.
    fn pass(&self) {
        for a in self.control.assigned(&self.host_id) {
            {
                let mut busy = self.busy.lock().unwrap_or_else(|p| p.into_inner());
                if !busy.insert(a.spec.id.clone()) {
                    continue;
                }
            }
            let runtime = self.runtime.clone();
            let control = self.control.clone();
            let busy = self.busy.clone();
            let wake = self.wake.clone();
            let permits = self.concurrency.clone();
            let failures = self.failures.clone();
            tokio::spawn(async move {
                let _permit = permits.acquire_owned().await;
                let id = a.spec.id.clone();
                let c2 = control.clone();
                let changed = tokio::task::spawn_blocking(move || {
                    step_with_retries(runtime.as_ref(), c2.as_ref(), &a, &failures)
                })
                .await
                .unwrap_or(false);
                busy.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
                if changed {
                    // Intent may have moved on while we worked: look again now.
                    wake.notify_one();
                }
                let _ = control;
            });
        }
    }
}

/// Consecutive failures of a boot before the agent gives up and reports [`AgentEvent::BootFailed`].
pub const MAX_BOOT_FAILURES: u32 = 5;

/// [`step`], counting consecutive failures per instance: an instance that fails to boot
/// [`MAX_BOOT_FAILURES`] times in a row is reported as failed (it ends Stopped) instead of being
/// retried forever. Returns whether anything was reported.
pub fn step_with_retries(
    runtime: &dyn Runtime,
    control: &dyn HostControl,
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
pub fn step(
    runtime: &dyn Runtime,
    control: &dyn HostControl,
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
    let observed = runtime.observe(id)?;
    match (a.desired, observed, a.status) {
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
        (PowerState::Running, Observed::Running, S::Running) => Ok(false),
        (PowerState::Running, Observed::Running, _) => {
            control.report(id, AgentEvent::Booted);
            Ok(true)
        }
        // It was running and is not: the guest halted (or the host restarted).
        (PowerState::Running, Observed::Stopped | Observed::Absent, S::Running | S::Stopping) => {
            control.report(id, AgentEvent::Halted);
            Ok(true)
        }
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
    use std::collections::HashMap;
    use std::time::SystemTime;

    /// An in-memory runtime that records calls: the agent's decisions are tested without runc.
    #[derive(Default)]
    struct FakeRuntime {
        state: Mutex<HashMap<String, Observed>>,
        calls: Mutex<Vec<String>>,
        broken: bool,
    }

    impl Runtime for FakeRuntime {
        fn prepare(&self, s: &RuntimeSpec) -> feiyun_runtime::Result<()> {
            self.calls.lock().expect("lock").push(format!("prepare {}", s.id));
            self.state.lock().expect("lock").entry(s.id.clone()).or_insert(Observed::Stopped);
            Ok(())
        }
        fn start(&self, s: &RuntimeSpec) -> feiyun_runtime::Result<()> {
            self.calls.lock().expect("lock").push(format!("start {}", s.id));
            if self.broken {
                return Err(feiyun_runtime::RuntimeError::Command("runc run".into(), "broken image".into()));
            }
            self.state.lock().expect("lock").insert(s.id.clone(), Observed::Running);
            Ok(())
        }
        fn stop(&self, id: &str, _: Duration) -> feiyun_runtime::Result<()> {
            self.calls.lock().expect("lock").push(format!("stop {id}"));
            self.state.lock().expect("lock").insert(id.into(), Observed::Stopped);
            Ok(())
        }
        fn observe(&self, id: &str) -> feiyun_runtime::Result<Observed> {
            Ok(*self.state.lock().expect("lock").get(id).unwrap_or(&Observed::Absent))
        }
        fn destroy(&self, id: &str) -> feiyun_runtime::Result<()> {
            self.calls.lock().expect("lock").push(format!("destroy {id}"));
            self.state.lock().expect("lock").remove(id);
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
            Ok(self.state.lock().expect("lock").keys().cloned().collect())
        }
    }

    /// A control plane holding one instance and applying the domain's transitions to reports.
    struct OneInstance {
        a: Mutex<Assignment>,
        events: Mutex<Vec<AgentEvent>>,
        errors: Mutex<Vec<String>>,
    }

    impl HostControl for OneInstance {
        fn assigned(&self, _: &str) -> Vec<Assignment> {
            vec![self.a.lock().expect("lock").clone()]
        }
        fn knows(&self, id: &str) -> bool {
            self.a.lock().expect("lock").spec.id == id
        }
        fn report(&self, _: &str, e: AgentEvent) {
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

    fn setup(status: InstanceStatus, desired: PowerState) -> (FakeRuntime, OneInstance) {
        let spec = RuntimeSpec {
            id: "i-1".into(),
            hostname: "h".into(),
            vcpus: 1,
            memory_mib: 512,
            baseline_cpu_percent: 0,
            image_rootfs: "/nonexistent".into(),
            user_data: None,
        };
        let a = Assignment { status, desired, stop_grace: Duration::ZERO, spec };
        (
            FakeRuntime::default(),
            OneInstance { a: Mutex::new(a), events: Mutex::new(Vec::new()), errors: Mutex::new(Vec::new()) },
        )
    }

    fn settle(rt: &FakeRuntime, c: &OneInstance) -> InstanceStatus {
        for _ in 0..10 {
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
    }

    #[test]
    fn reboot_stops_then_starts() {
        let (rt, c) = setup(InstanceStatus::Pending, PowerState::Running);
        settle(&rt, &c);
        {
            let mut a = c.a.lock().expect("lock");
            let t = a.status.apply(a.desired, feiyun_domain::instance::UserAction::Reboot).expect("legal");
            a.status = t.status;
            a.desired = t.desired;
        }
        assert_eq!(settle(&rt, &c), InstanceStatus::Running);
        assert_eq!(rt.calls.lock().expect("lock")[2..], ["stop i-1".to_string(), "start i-1".to_string()]);
    }

    #[test]
    fn readopts_a_running_instance_without_touching_it() {
        let (rt, c) = setup(InstanceStatus::Running, PowerState::Running);
        rt.state.lock().expect("lock").insert("i-1".into(), Observed::Running);
        assert_eq!(settle(&rt, &c), InstanceStatus::Running);
        assert!(rt.calls.lock().expect("lock").is_empty());
    }

    #[test]
    fn guest_halt_is_reported_as_stopped() {
        let (rt, c) = setup(InstanceStatus::Running, PowerState::Running);
        rt.state.lock().expect("lock").insert("i-1".into(), Observed::Stopped);
        assert_eq!(settle(&rt, &c), InstanceStatus::Stopped);
    }

    #[test]
    fn a_boot_that_keeps_failing_ends_stopped() {
        let (mut rt, c) = setup(InstanceStatus::Starting, PowerState::Running);
        rt.broken = true;
        rt.state.lock().expect("lock").insert("i-1".into(), Observed::Stopped);
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
    }

    #[test]
    fn release_destroys() {
        let (rt, c) = setup(InstanceStatus::Deleted, PowerState::Released);
        rt.state.lock().expect("lock").insert("i-1".into(), Observed::Running);
        settle(&rt, &c);
        assert_eq!(*rt.calls.lock().expect("lock"), vec!["destroy i-1"]);
        assert_eq!(*c.events.lock().expect("lock"), vec![AgentEvent::Cleaned]);
    }
}
