//! Cloud Assistant: saved commands and their invocations on instances.

use crate::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandType {
    RunShellScript,
}

impl CommandType {
    pub fn as_str(&self) -> &'static str {
        "RunShellScript"
    }
    pub fn parse(s: &str) -> Option<CommandType> {
        (s == "RunShellScript").then_some(CommandType::RunShellScript)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    pub id: String,
    pub account_id: String,
    pub name: String,
    pub description: String,
    pub kind: CommandType,
    /// The script itself (decoded).
    pub content: Vec<u8>,
    pub working_dir: String,
    pub timeout_s: u64,
    pub created_at: Instant,
    /// Created by RunCommand rather than CreateCommand (not listed unless asked for).
    pub ephemeral: bool,
}

/// Status of one instance's run of an invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Pending,
    Running,
    Success,
    Failed,
    Timeout,
    /// Could not be sent: the instance was not running.
    Aborted,
    /// The run was interrupted (the control plane restarted while it ran); its outcome is unknown.
    Error,
}

impl RunStatus {
    pub fn is_final(&self) -> bool {
        !matches!(self, RunStatus::Pending | RunStatus::Running)
    }
    pub fn as_str(&self) -> &'static str {
        match self {
            RunStatus::Pending => "Pending",
            RunStatus::Running => "Running",
            RunStatus::Success => "Success",
            RunStatus::Failed => "Failed",
            RunStatus::Timeout => "Timeout",
            RunStatus::Aborted => "Aborted",
            RunStatus::Error => "Error",
        }
    }
    pub fn parse(s: &str) -> Option<RunStatus> {
        [
            RunStatus::Pending,
            RunStatus::Running,
            RunStatus::Success,
            RunStatus::Failed,
            RunStatus::Timeout,
            RunStatus::Aborted,
            RunStatus::Error,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct InvocationRun {
    pub instance_id: String,
    pub status: RunStatus,
    pub exit_code: Option<i64>,
    pub output: Vec<u8>,
    /// Bytes of output dropped beyond the retained limit.
    pub dropped: u64,
    pub error_code: String,
    pub error_info: String,
    pub start_time: Option<Instant>,
    pub finish_time: Option<Instant>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    pub id: String,
    pub account_id: String,
    pub command_id: String,
    pub command_name: String,
    pub command_content: Vec<u8>,
    pub timeout_s: u64,
    pub created_at: Instant,
    pub runs: Vec<InvocationRun>,
}

/// The overall status of an invocation, derived from its runs as Cloud Assistant does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvocationStatus {
    Pending,
    Running,
    Success,
    Failed,
    PartialFailed,
}

impl InvocationStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            InvocationStatus::Pending => "Pending",
            InvocationStatus::Running => "Running",
            InvocationStatus::Success => "Success",
            InvocationStatus::Failed => "Failed",
            InvocationStatus::PartialFailed => "PartialFailed",
        }
    }
}

impl Invocation {
    pub fn status(&self) -> InvocationStatus {
        if self.runs.iter().all(|r| r.status == RunStatus::Pending) {
            return InvocationStatus::Pending;
        }
        if self.runs.iter().any(|r| !r.status.is_final()) {
            return InvocationStatus::Running;
        }
        let ok = self.runs.iter().filter(|r| r.status == RunStatus::Success).count();
        if ok == self.runs.len() {
            InvocationStatus::Success
        } else if ok == 0 {
            InvocationStatus::Failed
        } else {
            InvocationStatus::PartialFailed
        }
    }
}

/// Largest output kept per run, as Cloud Assistant does (24 KiB); the rest is counted as dropped.
pub const MAX_OUTPUT_BYTES: usize = 24 * 1024;
