//! The runtime of a hollow host: it keeps what would run in memory and runs nothing. Hollow hosts
//! speak the real host protocol so that the control plane can be measured end to end at the scale
//! of thousands of hosts (as Kubernetes' kubemark does with hollow kubelets); everything they
//! answer says it is simulated.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use crate::{ExecOutcome, Observed, Result, Runtime, RuntimeError, RuntimeSpec};

/// What a simulated command run answers.
pub const SIMULATED_OUTPUT: &[u8] = b"[simulated host] nothing was run\n";

#[derive(Default)]
pub struct SimRuntime {
    /// Instance id → running?
    instances: Mutex<BTreeMap<String, bool>>,
}

impl SimRuntime {
    pub fn new() -> SimRuntime {
        SimRuntime::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut BTreeMap<String, bool>) -> T) -> T {
        f(&mut self.instances.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl Runtime for SimRuntime {
    fn prepare(&self, spec: &RuntimeSpec) -> Result<()> {
        self.with(|m| {
            m.entry(spec.id.clone()).or_insert(false);
        });
        Ok(())
    }
    fn start(&self, spec: &RuntimeSpec) -> Result<()> {
        self.with(|m| m.insert(spec.id.clone(), true));
        Ok(())
    }
    fn stop(&self, id: &str, _grace: Duration) -> Result<()> {
        self.with(|m| {
            if let Some(r) = m.get_mut(id) {
                *r = false;
            }
        });
        Ok(())
    }
    fn observe(&self, id: &str) -> Result<Observed> {
        Ok(match self.with(|m| m.get(id).copied()) {
            Some(true) => Observed::Running,
            Some(false) => Observed::Stopped,
            None => Observed::Absent,
        })
    }
    fn destroy(&self, id: &str) -> Result<()> {
        self.with(|m| m.remove(id));
        Ok(())
    }
    fn exec(&self, id: &str, _: &[u8], _: &str, _: Duration, _: usize) -> Result<ExecOutcome> {
        if self.with(|m| m.get(id).copied()) != Some(true) {
            return Err(RuntimeError::NotRunning(id.to_string()));
        }
        Ok(ExecOutcome { exit_code: Some(0), output: SIMULATED_OUTPUT.to_vec(), dropped: 0, timed_out: false })
    }
    fn console(&self, id: &str, _: usize) -> Result<(Vec<u8>, Option<SystemTime>)> {
        Ok((format!("[simulated host] {id} has no console: nothing runs here\n").into_bytes(), None))
    }
    fn list(&self) -> Result<Vec<String>> {
        Ok(self.with(|m| m.keys().cloned().collect()))
    }
    fn blocking(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_state_and_says_it_is_simulated() {
        let rt = SimRuntime::new();
        let spec = RuntimeSpec {
            id: "i-1".into(),
            hostname: "h".into(),
            vcpus: 1,
            memory_mib: 1,
            baseline_cpu_percent: 0,
            image_rootfs: "/nowhere".into(),
            user_data: None,
            netns: None,
            authorized_keys: Vec::new(),
        };
        assert_eq!(rt.observe("i-1").ok(), Some(Observed::Absent));
        rt.prepare(&spec).expect("prepare");
        assert_eq!(rt.observe("i-1").ok(), Some(Observed::Stopped));
        assert!(matches!(rt.exec("i-1", b"x", "/", Duration::ZERO, 10), Err(RuntimeError::NotRunning(_))));
        rt.start(&spec).expect("start");
        assert_eq!(rt.exec("i-1", b"x", "/", Duration::ZERO, 10).expect("exec").output, SIMULATED_OUTPUT);
        assert!(String::from_utf8_lossy(&rt.console("i-1", 10).expect("console").0).contains("simulated"));
        rt.destroy("i-1").expect("destroy");
        assert_eq!(rt.list().expect("list"), Vec::<String>::new());
        assert!(!rt.blocking());
    }
}
