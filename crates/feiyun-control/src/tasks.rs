//! Work sent to a host beyond its desired state: Cloud Assistant runs, console reads and storage
//! tasks (snapshots, resets, image captures, disk uploads). A task travels in the host's intent
//! until the host reports its result, or its deadline passes.

use feiyun_domain::Instant;
use feiyun_hostproto::{Task, TaskOutcome};

use crate::{ControlPlane, State};

/// Who waits for a task's result.
pub(crate) enum Completion {
    /// A run of a Cloud Assistant invocation.
    Run { invoke_id: String, instance_id: String },
    /// A caller blocked on the console (GetInstanceConsoleOutput).
    Console(std::sync::mpsc::SyncSender<TaskOutcome>),
    /// A storage task, recorded on what it is about.
    Storage(StorageCompletion),
}

/// What a storage task's outcome completes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StorageCompletion {
    /// A snapshot taken (or uploaded).
    Snapshot { snapshot_id: String },
    /// A disk reset to a snapshot.
    Reset { disk_id: String },
    /// An image captured and uploaded.
    Capture { image_id: String },
    /// A disk's data uploaded to move to another host.
    Upload { disk_id: String },
}

pub(crate) struct Pending {
    pub task: Task,
    pub completion: Completion,
    pub deadline: Instant,
}

/// Take every task past its deadline off its host.
pub(crate) fn expire(state: &mut State, now: Instant) -> Vec<(Task, Completion)> {
    let mut out = Vec::new();
    for slot in state.hosts.values_mut() {
        let late: Vec<String> =
            slot.tasks.iter().filter(|(_, p)| p.deadline <= now).map(|(id, _)| id.clone()).collect();
        if late.is_empty() {
            continue;
        }
        for id in late {
            if let Some(p) = slot.tasks.remove(&id) {
                out.push((p.task, p.completion));
            }
        }
        slot.bump();
    }
    out
}

impl ControlPlane {
    /// Send a task to the host of `instance_id` (in the state's lock).
    pub(crate) fn enqueue(
        &self,
        state: &mut State,
        host_id: &str,
        task: Task,
        completion: Completion,
        deadline: Instant,
    ) -> Result<(), Completion> {
        match state.hosts.get_mut(host_id) {
            Some(slot) if !slot.unreachable => {
                slot.tasks.insert(task.id().to_string(), Pending { task, completion, deadline });
                slot.bump();
                Ok(())
            }
            _ => Err(completion),
        }
    }

    /// A task ended: with the host's outcome, or `interrupted` when its deadline passed.
    pub(crate) fn complete_task(&self, task: Task, completion: Completion, outcome: TaskOutcome, interrupted: bool) {
        match completion {
            Completion::Console(tx) => {
                // The caller may have given up waiting; nothing to do then.
                let _ = tx.try_send(outcome);
            }
            Completion::Run { invoke_id, instance_id } => {
                let now = self.now();
                self.update_run(&invoke_id, &instance_id, |r| {
                    crate::assistant::finish_run(r, outcome, interrupted, now);
                });
                tracing::debug!(task = %task.id(), invocation = %invoke_id, "run finished");
            }
            Completion::Storage(c) => {
                let outcome = if interrupted {
                    TaskOutcome::Failed("the host did not finish the task in time".into())
                } else {
                    outcome
                };
                self.complete_storage(c, outcome, interrupted);
            }
        }
    }
}
