//! Steps of the host's instances: which instance may take a step now, one step at a time
//! each, and the host's own copy of each instance's status. The agent applies each event it
//! reports through the domain's state machine, as the control plane will, and goes on from the
//! new status at once instead of waiting for the intent to bring it back (`docs/hosts.md`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use feiyun_domain::instance::{InstanceStatus, PowerState};
use feiyun_hostproto::{InstanceEvent, InstanceIntent, Intent, Report};
use feiyun_runtime::RuntimeSpec;

use crate::copies::{OwnCopies, Word};
use crate::reconcile::{step_with_retries, Assignment, Observer};
use crate::{Inner, Outbox};

/// Collects one step's observations of one instance into the outbox, numbered, and applies each
/// to the host's copy of the instance's status through the domain's state machine, as the
/// control plane will: the host goes on from the new status without waiting for its report to
/// come back in an intent ([`OwnCopies`]). An observation that changes what is desired (the
/// guest halted on its own, a boot failed) is the control plane's to decide: from then on the
/// host waits for the next intent.
struct Stepping<'a> {
    outbox: Outbox<'a>,
    /// The host's event counter.
    seq: &'a AtomicU64,
    copies: &'a OwnCopies,
    /// The intent's word the step acts on.
    word: Word,
    /// The instance's status on this host (`None` once it waits for the control plane).
    status: Mutex<Option<InstanceStatus>>,
}

impl<'a> Stepping<'a> {
    fn new(
        outbox: &'a Mutex<Report>,
        seq: &'a AtomicU64,
        copies: &'a OwnCopies,
        word: Word,
        status: InstanceStatus,
    ) -> Self {
        Stepping { outbox: Outbox(outbox), seq, copies, word, status: Mutex::new(Some(status)) }
    }

    fn status(&self) -> Option<InstanceStatus> {
        *self.status.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Observer for Stepping<'_> {
    fn report(&self, instance_id: &str, event: feiyun_domain::instance::AgentEvent) {
        let mut status = self.status.lock().unwrap_or_else(|p| p.into_inner());
        let desired = self.word.desired;
        let after = status.map(|s| s.observe(desired, event)).filter(|t| t.desired == desired);
        *status = after.map(|t| t.status);
        let seq = self.seq.fetch_add(1, Ordering::SeqCst);
        // The copy first: an intent that comes meanwhile is judged against this event too.
        self.copies.note(instance_id, self.word, seq, *status);
        self.outbox.push(InstanceEvent {
            instance_id: instance_id.to_string(),
            event: Some(event),
            error: None,
            status_after: *status,
            seq: Some(seq),
        });
    }
    fn report_error(&self, instance_id: &str, error: &str) {
        self.outbox.report_error(instance_id, error);
    }
}

/// How long an instance may wait for its network port or disks before the wait is logged.
const WAIT_WORTH_A_WORD: Duration = Duration::from_secs(5);

impl Inner {
    /// Start one step for every instance not already being worked on.
    pub(crate) fn pass(self: Arc<Self>) {
        let Some(intent) = Self::lock(&self.latest).clone() else { return };
        self.storage_pass(&intent);
        let revision = intent.revision;
        let due: Vec<(usize, InstanceStatus, Option<PathBuf>)> = intent
            .instances
            .iter()
            .enumerate()
            .filter_map(|(n, i)| {
                if Self::lock(&self.acted).get(&i.id).is_some_and(|rev| *rev >= revision) {
                    return None;
                }
                let status = self.status_of(i, revision);
                let netns = self.ready(&intent, i, status)?;
                if !Self::lock(&self.busy).insert(i.id.clone()) {
                    return None;
                }
                Some((n, status, netns))
            })
            .collect();
        if due.is_empty() {
            return;
        }
        if !self.runtime.blocking() {
            // Steps that never block (a hollow host's) are taken in turn by one task, and what
            // they observed goes in one report.
            tokio::spawn(async move {
                for (n, status, netns) in due {
                    self.clone().step_and_note(&intent, n, status, netns).await;
                }
                self.flush().await;
                self.pass_if_newer(revision);
            });
            return;
        }
        for (n, status, netns) in due {
            let (me, intent) = (self.clone(), intent.clone());
            tokio::spawn(async move {
                me.clone().step_and_note(&intent, n, status, netns).await;
                me.flush().await;
                me.pass_if_newer(revision);
            });
        }
    }

    /// An instance's status on this host: the intent's, or the one the host's own reports
    /// moved it to since.
    fn status_of(&self, i: &InstanceIntent, revision: u64) -> InstanceStatus {
        self.copies.status(i, revision)
    }

    /// Whether an instance may take a step now, and in which network namespace (`None`: it
    /// waits). An instance with a port in the host's network is not booted before the kernel has
    /// its namespace (its disk may be prepared before); the disks attached to it are there when
    /// it boots (they attach to its root filesystem).
    fn ready(&self, intent: &Intent, i: &InstanceIntent, status: InstanceStatus) -> Option<Option<PathBuf>> {
        let netns = intent
            .network
            .as_ref()
            .filter(|net| net.vpc_of_instance(&i.id).is_some())
            .map(|net| (feiyun_net::instance_netns_path(&net.prefix, &i.id), net.prefix.as_str()));
        let boots = i.desired == PowerState::Running && status != InstanceStatus::Pending;
        // Only a boot needs the namespace: a new instance's disk is prepared (and the control
        // plane told) while the network is still being applied. The worker's next apply brings
        // a pass; so does the disk's next step.
        let waits_for = if boots && netns.as_ref().is_some_and(|(_, prefix)| !self.net_out.has_port(prefix, &i.id)) {
            Some("its network port")
        } else if boots && status == InstanceStatus::Starting && self.waits_for_disks(intent, &i.id) {
            Some("its disks")
        } else {
            None
        };
        let mut waiting = Self::lock(&self.waiting);
        match waits_for {
            Some(what) => {
                let (since, told) = waiting.entry(i.id.clone()).or_insert((Instant::now(), false));
                if !*told && since.elapsed() > WAIT_WORTH_A_WORD {
                    *told = true;
                    tracing::warn!(host = %self.host_id, instance = %i.id, waited_s = since.elapsed().as_secs(), "the instance waits for {what} to boot");
                }
                None
            }
            None => {
                waiting.remove(&i.id);
                Some(netns.map(|(path, _)| path))
            }
        }
    }

    /// A pass skips the instances a step is busy with; when a newer intent came meanwhile, look
    /// again now rather than at the next resync.
    fn pass_if_newer(self: Arc<Self>, revision: u64) {
        let newer = Self::lock(&self.latest).as_ref().is_some_and(|i| i.revision != revision);
        if newer {
            self.pass();
        }
    }

    /// Steps of an instance the pass marked busy, from `status`: while the host can apply
    /// what it reports to its own copy of the instance's status (and the intent is still the
    /// latest, and nothing makes the instance wait), it takes the next step at once. An instance
    /// whose report waits for the control plane is not acted on again before a newer intent.
    /// Then it is not busy.
    async fn step_and_note(
        self: Arc<Self>,
        intent: &Intent,
        n: usize,
        mut status: InstanceStatus,
        mut netns: Option<PathBuf>,
    ) {
        let i = &intent.instances[n];
        // Enough for the longest chain (a reboot: halted, booted), and a bound on a bug.
        for _ in 0..4 {
            let (changed, after) = self.clone().step(i, intent.revision, status, netns.clone()).await;
            if changed {
                // A container may be gone: a port kept for it may go too.
                if let Some(net) = self.network_worker(false) {
                    net.kick();
                }
            }
            match after {
                // The host's copy has it (the observer noted each event).
                Some(next) if changed && next != status => status = next,
                _ => {
                    if changed {
                        Self::lock(&self.acted).insert(i.id.clone(), intent.revision);
                    }
                    break;
                }
            }
            let current = Self::lock(&self.latest).as_ref().is_some_and(|l| l.revision == intent.revision);
            match self.ready(intent, i, status) {
                Some(ns) if current => netns = ns,
                // The next pass takes it from here.
                _ => break,
            }
        }
        Self::lock(&self.busy).remove(&i.id);
    }

    /// One reconcile step of one instance from `status`: whether it reported anything, and the
    /// status its reports moved it to on this host (`None`: the control plane decides).
    async fn step(
        self: Arc<Self>,
        i: &InstanceIntent,
        revision: u64,
        status: InstanceStatus,
        netns: Option<PathBuf>,
    ) -> (bool, Option<InstanceStatus>) {
        let rootfs = match self.image_rootfs(i).await {
            Ok(p) => p,
            Err(e) => {
                Outbox(&self.outbox).report_error(&i.id, &e);
                return (false, None);
            }
        };
        let a = Assignment {
            status,
            desired: i.desired,
            stop_grace: Duration::from_millis(i.stop_grace_ms),
            spec: RuntimeSpec {
                id: i.id.clone(),
                hostname: i.spec.hostname.clone(),
                vcpus: i.spec.vcpus,
                memory_mib: i.spec.memory_mib,
                baseline_cpu_percent: i.spec.baseline_cpu_percent,
                image_rootfs: rootfs,
                user_data: i.spec.user_data.clone(),
                netns,
                authorized_keys: i.spec.authorized_keys.clone(),
            },
        };
        let me = self.clone();
        let word = Word::of(revision, i);
        self.blocking(move || {
            let observer = Stepping::new(&me.outbox, &me.seq, &me.copies, word, status);
            let changed = step_with_retries(me.runtime.as_ref(), &observer, &a, &me.failures);
            (changed, observer.status())
        })
        .await
        .unwrap_or((false, None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use feiyun_domain::instance::AgentEvent;

    fn reported(outbox: &Mutex<Report>) -> Vec<(Option<AgentEvent>, Option<InstanceStatus>)> {
        outbox.lock().expect("lock").events.iter().map(|e| (e.event, e.status_after)).collect()
    }

    fn word(status: InstanceStatus) -> Word {
        Word { revision: 1, status, desired: PowerState::Running, applied_seq: None }
    }

    #[test]
    fn the_host_applies_its_own_reports_until_one_changes_what_is_desired() {
        let outbox = Mutex::new(Report::default());
        let (seq, copies) = (AtomicU64::new(1), OwnCopies::default());
        let boot = Stepping::new(&outbox, &seq, &copies, word(InstanceStatus::Pending), InstanceStatus::Pending);
        boot.report("i-1", AgentEvent::Provisioned);
        assert_eq!(boot.status(), Some(InstanceStatus::Starting));
        boot.report("i-1", AgentEvent::Booted);
        assert_eq!(boot.status(), Some(InstanceStatus::Running));
        // The guest halts on its own: the region decides it is meant to stay stopped, and the
        // host waits for its word (nothing it reports after that is applied here either).
        boot.report("i-1", AgentEvent::Halted);
        assert_eq!(boot.status(), None);
        boot.report("i-1", AgentEvent::Booted);
        assert_eq!(boot.status(), None);
        boot.report_error("i-1", "boom");
        assert_eq!(
            reported(&outbox),
            vec![
                (Some(AgentEvent::Provisioned), Some(InstanceStatus::Starting)),
                (Some(AgentEvent::Booted), Some(InstanceStatus::Running)),
                (Some(AgentEvent::Halted), None),
                (Some(AgentEvent::Booted), None),
                (None, None),
            ]
        );
        // A boot that fails for good stops the instance: that too is the region's decision.
        let outbox = Mutex::new(Report::default());
        let failing = Stepping::new(&outbox, &seq, &copies, word(InstanceStatus::Starting), InstanceStatus::Starting);
        failing.report("i-2", AgentEvent::BootFailed);
        assert_eq!(failing.status(), None);
        assert_eq!(reported(&outbox), vec![(Some(AgentEvent::BootFailed), None)]);
    }
}
