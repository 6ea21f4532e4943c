//! Cloud Assistant: commands run inside instances.

use std::sync::Arc;

use feiyun_domain::assistant::{Command, CommandType, Invocation, InvocationRun, RunStatus, MAX_OUTPUT_BYTES};
use feiyun_domain::instance::InstanceStatus;
use feiyun_domain::ops::{wildcard_match, RunScript};
use feiyun_domain::{ids, DomainError, Instant};
use feiyun_hostproto::{ExecTask, Task, TaskOutcome};

use crate::tasks::Completion;
use crate::{store_err, ControlPlane};

/// Runs still pending or running when the control plane stopped have an unknown outcome.
pub(crate) fn interrupt_unfinished(v: &mut Invocation, now: Instant) -> bool {
    let mut changed = false;
    for r in v.runs.iter_mut().filter(|r| !r.status.is_final()) {
        r.status = RunStatus::Error;
        r.error_code = "ExecutionInterrupted".into();
        r.error_info = "the command execution has been interrupted".into();
        r.finish_time = Some(now);
        changed = true;
    }
    changed
}

/// Record how a run ended: the host's outcome, or an interruption when it never answered.
pub(crate) fn finish_run(r: &mut InvocationRun, outcome: TaskOutcome, interrupted: bool, now: Instant) {
    r.finish_time = Some(now);
    if interrupted {
        r.status = RunStatus::Error;
        r.error_code = "ExecutionInterrupted".into();
        r.error_info = "the command execution has been interrupted: the instance's host did not answer".into();
        return;
    }
    match outcome {
        TaskOutcome::Exec(out) => {
            r.output = out.output;
            r.dropped = out.dropped;
            r.exit_code = out.exit_code;
            if out.timed_out {
                r.status = RunStatus::Timeout;
                r.error_code = "ExecutionTimeout".into();
                r.error_info = "the command execution has been timeout".into();
            } else if out.exit_code == Some(0) {
                r.status = RunStatus::Success;
            } else {
                r.status = RunStatus::Failed;
                r.error_code = "ExitCodeNonzero".into();
                r.error_info = "the command execution exit code is not zero".into();
            }
        }
        TaskOutcome::NotRunning => {
            r.status = RunStatus::Aborted;
            r.error_code = "InstanceNotRunning".into();
            r.error_info = "the instance is not running when create task".into();
        }
        TaskOutcome::Failed(e) => {
            r.status = RunStatus::Error;
            r.error_code = "ExecutionException".into();
            r.error_info = format!("the command execution got an exception: {e}");
        }
        TaskOutcome::Console(_) | TaskOutcome::Snapshot { .. } | TaskOutcome::Uploaded(_) | TaskOutcome::Done => {
            r.status = RunStatus::Error;
            r.error_code = "ExecutionException".into();
            r.error_info = "the host answered a run with something else than its outcome".into();
        }
    }
}

fn new_run(instance_id: &str) -> InvocationRun {
    InvocationRun {
        instance_id: instance_id.to_string(),
        status: RunStatus::Pending,
        exit_code: None,
        output: Vec::new(),
        dropped: 0,
        error_code: String::new(),
        error_info: String::new(),
        start_time: None,
        finish_time: None,
    }
}

/// Filters for DescribeInvocations / DescribeInvocationResults.
#[derive(Debug, Clone, Default)]
pub struct InvocationFilter {
    pub invoke_id: Option<String>,
    pub command_id: Option<String>,
    pub command_name: Option<String>,
    pub instance_id: Option<String>,
}

impl ControlPlane {
    pub fn create_command(&self, account_id: &str, mut c: Command) -> Result<String, DomainError> {
        c.id = self.with_rng(ids::command_id);
        c.account_id = account_id.to_string();
        c.created_at = self.now();
        self.store.put_command(&c).map_err(store_err)?;
        let id = c.id.clone();
        self.write().commands.insert(id.clone(), c);
        Ok(id)
    }

    pub fn command(&self, account_id: &str, id: &str) -> Result<Command, DomainError> {
        self.read()
            .commands
            .get(id)
            .filter(|c| c.account_id == account_id)
            .cloned()
            .ok_or_else(|| DomainError::CommandNotFound(id.to_string()))
    }

    pub fn describe_commands(
        &self,
        account_id: &str,
        id: Option<&str>,
        name: Option<&str>,
        kind: Option<CommandType>,
    ) -> Vec<Command> {
        self.read()
            .commands
            .values()
            .filter(|c| c.account_id == account_id && !c.ephemeral)
            .filter(|c| id.map(|i| i == c.id).unwrap_or(true))
            .filter(|c| name.map(|n| wildcard_match(n, &c.name)).unwrap_or(true))
            .filter(|c| kind.map(|k| k == c.kind).unwrap_or(true))
            .cloned()
            .collect()
    }

    pub fn invoke_times(&self, command_id: &str) -> usize {
        self.read().invocations.values().filter(|v| v.command_id == command_id).count()
    }

    pub fn delete_command(&self, account_id: &str, id: &str) -> Result<(), DomainError> {
        let c = self.command(account_id, id)?;
        if c.ephemeral {
            return Err(DomainError::CommandNotFound(id.to_string()));
        }
        self.store.delete_command(id).map_err(store_err)?;
        self.write().commands.remove(id);
        Ok(())
    }

    /// RunCommand: a one-off command, invoked at once. Returns (command id, invocation id).
    pub fn run_command(
        self: &Arc<Self>,
        account_id: &str,
        kind: CommandType,
        keep: bool,
        run: RunScript,
    ) -> Result<(String, String), DomainError> {
        self.check_targets(account_id, &run.instance_ids)?;
        let command = Command {
            id: String::new(),
            account_id: String::new(),
            name: run.name.clone(),
            description: run.description.clone(),
            kind,
            content: run.content.clone(),
            working_dir: run.working_dir.clone(),
            timeout_s: run.timeout_s,
            created_at: self.now(),
            ephemeral: !keep,
        };
        let command_id = self.create_command(account_id, command)?;
        let invoke_id =
            self.invoke(account_id, &command_id, &run.instance_ids, Some(run.timeout_s), Some(&run.working_dir))?;
        Ok((command_id, invoke_id))
    }

    fn check_targets(&self, account_id: &str, instance_ids: &[String]) -> Result<(), DomainError> {
        if instance_ids.is_empty() {
            return Err(DomainError::missing("InstanceId"));
        }
        for id in instance_ids {
            self.instance(account_id, id)?;
        }
        Ok(())
    }

    /// InvokeCommand: run a saved command on instances. Returns the invocation id.
    pub fn invoke(
        self: &Arc<Self>,
        account_id: &str,
        command_id: &str,
        instance_ids: &[String],
        timeout_s: Option<u64>,
        working_dir: Option<&str>,
    ) -> Result<String, DomainError> {
        let command = self.command(account_id, command_id)?;
        self.check_targets(account_id, instance_ids)?;
        let now = self.now();
        let timeout_s = timeout_s.unwrap_or(command.timeout_s);
        let working_dir = working_dir.filter(|w| !w.is_empty()).unwrap_or(&command.working_dir).to_string();
        let mut unique: Vec<String> = Vec::new();
        for id in instance_ids {
            if !unique.contains(id) {
                unique.push(id.clone());
            }
        }
        let mut runs = Vec::new();
        let mut to_start = Vec::new();
        for id in &unique {
            let mut r = new_run(id);
            let running = self.instance(account_id, id).map(|i| i.status == InstanceStatus::Running).unwrap_or(false);
            if running {
                // Running from the moment its task can reach the host: the host may answer before
                // this call returns, and its answer must not be overwritten.
                r.status = RunStatus::Running;
                r.start_time = Some(now);
                to_start.push(id.clone());
            } else {
                r.status = RunStatus::Aborted;
                r.error_code = "InstanceNotRunning".into();
                r.error_info = "the instance is not running when create task".into();
                r.finish_time = Some(now);
            }
            runs.push(r);
        }
        let v = Invocation {
            id: self.with_rng(ids::invocation_id),
            account_id: account_id.to_string(),
            command_id: command.id.clone(),
            command_name: command.name.clone(),
            command_content: command.content.clone(),
            timeout_s,
            created_at: now,
            runs,
        };
        self.store.put_invocation(&v).map_err(store_err)?;
        let invoke_id = v.id.clone();
        self.write().invocations.insert(invoke_id.clone(), v);
        // Each run is a task for the instance's host; its result comes back in a report. A host
        // that does not answer within the timeout and a margin interrupts the run.
        let deadline = now + chrono::Duration::seconds(timeout_s as i64 + 30);
        for instance_id in to_start {
            let task = Task::Exec(ExecTask {
                id: self.with_rng(|r| ids::new_id("task", 20, r)),
                instance_id: instance_id.clone(),
                script: command.content.clone(),
                working_dir: working_dir.clone(),
                timeout_ms: timeout_s.saturating_mul(1000),
                max_output: MAX_OUTPUT_BYTES as u64,
            });
            let completion = Completion::Run { invoke_id: invoke_id.clone(), instance_id: instance_id.clone() };
            let queued = {
                let mut state = self.write();
                let host = state.instances.get(&instance_id).map(|i| i.host_id.clone()).unwrap_or_default();
                self.enqueue(&mut state, &host, task, completion, deadline)
            };
            if queued.is_err() {
                self.update_run(&invoke_id, &instance_id, |r| {
                    r.status = RunStatus::Error;
                    r.error_code = "ClientNotOnline".into();
                    r.error_info = "the Cloud Assistant of the instance is not online: its host is unreachable".into();
                    r.finish_time = Some(now);
                });
            }
        }
        Ok(invoke_id)
    }

    pub(crate) fn update_run(&self, invoke_id: &str, instance_id: &str, f: impl FnOnce(&mut InvocationRun)) {
        let mut state = self.write();
        let Some(v) = state.invocations.get(invoke_id) else {
            return;
        };
        let mut v = v.clone();
        if let Some(r) = v.runs.iter_mut().find(|r| r.instance_id == instance_id) {
            f(r);
        }
        match self.store.put_invocation(&v) {
            Ok(()) => {
                state.invocations.insert(v.id.clone(), v);
            }
            Err(e) => {
                tracing::error!(invocation = %invoke_id, error = %e, "cannot persist invocation")
            }
        }
    }

    /// Invocations of an account, newest first.
    pub fn describe_invocations(&self, account_id: &str, f: &InvocationFilter) -> Vec<Invocation> {
        let state = self.read();
        let mut out: Vec<Invocation> = state
            .invocations
            .values()
            .filter(|v| v.account_id == account_id)
            .filter(|v| f.invoke_id.as_ref().map(|i| i == &v.id).unwrap_or(true))
            .filter(|v| f.command_id.as_ref().map(|i| i == &v.command_id).unwrap_or(true))
            .filter(|v| f.command_name.as_ref().map(|n| wildcard_match(n, &v.command_name)).unwrap_or(true))
            .filter(|v| f.instance_id.as_ref().map(|i| v.runs.iter().any(|r| &r.instance_id == i)).unwrap_or(true))
            .cloned()
            .collect();
        out.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        out
    }
}
