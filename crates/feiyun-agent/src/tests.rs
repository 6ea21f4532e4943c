//! The agent's loop against control planes that misbehave in time: quiet, quick, slow, late.

use super::*;
use std::sync::atomic::AtomicUsize;

use feiyun_domain::instance::AgentEvent;
use feiyun_hostproto::{HeartbeatAck, Registered};

/// A control plane whose intent never changes after the first: a long-poll waits it out.
#[derive(Default)]
struct Quiet {
    polls: AtomicUsize,
    /// The instances the intent names (all Pending, to run).
    instances: usize,
    /// Events of each report received.
    reports: Mutex<Vec<usize>>,
}

pub(crate) fn instance(n: usize, status: feiyun_domain::instance::InstanceStatus) -> InstanceIntent {
    InstanceIntent {
        id: format!("i-{n}"),
        status,
        desired: feiyun_domain::instance::PowerState::Running,
        stop_grace_ms: 0,
        spec: feiyun_hostproto::InstanceSpec {
            hostname: format!("i-{n}"),
            vcpus: 1,
            memory_mib: 512,
            baseline_cpu_percent: 0,
            image: feiyun_hostproto::ImageRef {
                id: "img".into(),
                source: ImageSource::Builtin,
                size_bytes: 0,
                sha256: None,
            },
            user_data: None,
            authorized_keys: Vec::new(),
        },
        metadata: Default::default(),
        applied_seq: None,
    }
}

/// The intent at `revision` of host `h-1` (epoch 1) naming `instances`, and nothing else.
pub(crate) fn intent_at(revision: u64, instances: Vec<InstanceIntent>) -> Intent {
    Intent {
        host_id: "h-1".into(),
        epoch: 1,
        revision,
        instances,
        tasks: Vec::new(),
        disks: Vec::new(),
        snapshots: Vec::new(),
        network: None,
    }
}

/// What a fake control plane scripts: the intents it answers and what it does with reports.
/// Registering, heartbeats and image fetches answer the same for every fake ([`Fake`]).
#[async_trait::async_trait]
trait Script: Send + Sync {
    async fn intent(&self, since: u64, wait: Duration) -> Intent;
    async fn report(&self, report: Report);
}

/// A control plane of one host, `h-1` at epoch 1, acting on a [`Script`].
struct Fake<S>(Arc<S>);

#[async_trait::async_trait]
impl<S: Script + 'static> ControlLink for Fake<S> {
    async fn register(&self, _: &str, _: HostSpec) -> Result<Registered, ProtoError> {
        Ok(Registered {
            host_id: "h-1".into(),
            credential: Credential("h-1.secret".into()),
            zone: "z".into(),
            epoch: 1,
            heartbeat_ms: 10_000,
            grace_ms: 40_000,
        })
    }
    async fn heartbeat(&self, _: &Credential, _: Heartbeat) -> Result<HeartbeatAck, ProtoError> {
        Ok(HeartbeatAck { epoch: 1, revision: 1 })
    }
    async fn intent(&self, _: &Credential, since: u64, wait: Duration) -> Result<Intent, ProtoError> {
        Ok(self.0.intent(since, wait).await)
    }
    async fn report(&self, _: &Credential, r: Report) -> Result<(), ProtoError> {
        self.0.report(r).await;
        Ok(())
    }
    async fn fetch_image(&self, _: &Credential, id: &str, _: &Path) -> Result<u64, ProtoError> {
        Err(ProtoError::NotFound(id.to_string()))
    }
}

impl Quiet {
    fn intent(&self) -> Intent {
        intent_at(
            1,
            (0..self.instances).map(|n| instance(n, feiyun_domain::instance::InstanceStatus::Pending)).collect(),
        )
    }
}

#[async_trait::async_trait]
impl Script for Quiet {
    async fn intent(&self, since: u64, wait: Duration) -> Intent {
        self.polls.fetch_add(1, Ordering::SeqCst);
        if since == self.intent().revision {
            tokio::time::sleep(wait).await;
        }
        self.intent()
    }
    async fn report(&self, r: Report) {
        self.reports.lock().expect("lock").push(r.events.len());
    }
}

/// A control plane that answers the first two polls at once with the intents given (the
/// second comes while the host is still busy with the first), then waits.
struct Quick {
    intents: Vec<Intent>,
    /// When each report came, and its events.
    reports: Mutex<Vec<(Duration, Vec<AgentEvent>)>>,
    start: tokio::time::Instant,
}

#[async_trait::async_trait]
impl Script for Quick {
    async fn intent(&self, since: u64, wait: Duration) -> Intent {
        match self.intents.iter().find(|i| i.revision > since) {
            Some(i) => i.clone(),
            None => {
                tokio::time::sleep(wait).await;
                self.intents[self.intents.len() - 1].clone()
            }
        }
    }
    async fn report(&self, r: Report) {
        let events = r.events.iter().filter_map(|e| e.event).collect();
        self.reports.lock().expect("lock").push((self.start.elapsed(), events));
    }
}

/// A control plane that takes 100 ms over its first report and applies each report when it
/// is done with it.
#[derive(Default)]
struct Slow {
    applied: Mutex<Vec<AgentEvent>>,
    calls: AtomicUsize,
}

#[async_trait::async_trait]
impl Script for Slow {
    async fn intent(&self, since: u64, wait: Duration) -> Intent {
        Script::intent(&Quiet::default(), since, wait).await
    }
    async fn report(&self, r: Report) {
        if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.applied.lock().expect("lock").extend(r.events.iter().filter_map(|e| e.event));
    }
}

#[tokio::test(start_paused = true)]
async fn reports_land_in_the_order_their_events_were_observed() {
    let slow = Arc::new(Slow::default());
    let link = Arc::new(Fake(slow.clone()));
    let outbox = Arc::new(Mutex::new(Report::default()));
    let sending = Arc::new(tokio::sync::Mutex::new(()));
    let flush = || {
        let (link, outbox, sending) = (link.clone(), outbox.clone(), sending.clone());
        tokio::spawn(async move {
            let credential = Credential("h-1.secret".into());
            let epoch = AtomicU64::new(1);
            let on = Sender { link: link.as_ref(), credential: &credential, epoch: &epoch, host_id: "h-1" };
            deliver(&outbox, &sending, &copies::OwnCopies::default(), on).await;
        })
    };
    // A reboot: the halt is in flight (slowly) when the boot is observed and flushed.
    let event =
        |e| InstanceEvent { instance_id: "i-0".into(), event: Some(e), error: None, status_after: None, seq: None };
    Outbox(&outbox).push(event(AgentEvent::Halted));
    let first = flush();
    tokio::time::sleep(Duration::from_millis(10)).await;
    Outbox(&outbox).push(event(AgentEvent::Booted));
    let second = flush();
    first.await.expect("first");
    second.await.expect("second");
    assert_eq!(*slow.applied.lock().expect("lock"), vec![AgentEvent::Halted, AgentEvent::Booted]);
    assert_eq!(slow.calls.load(Ordering::SeqCst), 2);
}

fn hollow<S: Script + 'static>(script: &Arc<S>) -> Agent {
    let opts = AgentOptions {
        host: HostSpec {
            name: "h".into(),
            zone: None,
            capacity: feiyun_domain::Resources::ZERO,
            gpu_model: None,
            local_disk_category: None,
            simulated: true,
            protocol: feiyun_hostproto::PROTOCOL_VERSION,
            agent_version: "test".into(),
            underlay_ip: None,
        },
        token: Some("token".into()),
        identity_file: None,
        busybox: None,
        network_state: None,
    };
    Agent::new(Arc::new(Fake(script.clone())), Arc::new(feiyun_runtime::sim::SimRuntime::new()), None, opts)
}

#[tokio::test(start_paused = true)]
async fn one_long_poll_spans_many_resyncs() {
    let link = Arc::new(Quiet::default());
    // Ten resyncs, a third of a long-poll.
    hollow(&link).run(tokio::time::sleep(Duration::from_secs(10))).await.expect("agent");
    // The first poll answers at once; the second is still waiting.
    assert_eq!(link.polls.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn a_hollow_host_reports_what_one_pass_observed_at_once() {
    let link = Arc::new(Quiet { instances: 3, ..Default::default() });
    hollow(&link).run(tokio::time::sleep(Duration::from_secs(3))).await.expect("agent");
    // Three instances provisioned and booted in the first pass (the host goes on from what
    // it reported without waiting for the intent to say it back): one report of six
    // events; nothing new after (the intent did not move, and each runs as it should).
    assert_eq!(*link.reports.lock().expect("lock"), vec![6]);
}

#[tokio::test(start_paused = true)]
async fn the_same_intent_again_leaves_the_hosts_own_copy_ahead() {
    let link = Arc::new(Quiet { instances: 3, ..Default::default() });
    // Two long-polls end without a change and bring the same intent (its instances still
    // Pending) back.
    hollow(&link).run(tokio::time::sleep(LONG_POLL * 2 + Duration::from_secs(5))).await.expect("agent");
    assert!(link.polls.load(Ordering::SeqCst) >= 3);
    // Booted once: the host does not go back to Pending and boot them again.
    assert_eq!(*link.reports.lock().expect("lock"), vec![6]);
}

#[tokio::test(start_paused = true)]
async fn an_intent_that_comes_while_the_host_is_busy_is_acted_on_without_waiting_for_a_resync() {
    use feiyun_domain::instance::InstanceStatus;
    let at = |revision, status| intent_at(revision, vec![instance(0, status)]);
    let link = Arc::new(Quick {
        intents: vec![at(1, InstanceStatus::Pending), at(2, InstanceStatus::Starting)],
        reports: Mutex::new(Vec::new()),
        start: tokio::time::Instant::now(),
    });
    hollow(&link).run(tokio::time::sleep(Duration::from_secs(3))).await.expect("agent");
    let reports = link.reports.lock().expect("lock").clone();
    let booted = reports.iter().find(|(_, e)| e.contains(&AgentEvent::Booted)).expect("booted");
    assert!(booted.0 < Duration::from_millis(500), "{reports:?}");
}

/// A control plane that asks for a reboot once the host booted its instance, and then, while
/// the reboot's reports are still on their way, sends the same word again at a newer revision
/// (drawn for something else on the host).
#[derive(Default)]
struct Late {
    /// Whether the late intent says which of the host's events it reflects.
    numbered: bool,
    /// Events received, and the number of the boot the reboot was asked after.
    events: Mutex<Vec<InstanceEvent>>,
    booted: Mutex<Option<u64>>,
}

impl Late {
    fn latest(&self) -> Intent {
        use feiyun_domain::instance::InstanceStatus;
        let events = self.events.lock().expect("lock");
        let seen = |e: AgentEvent| events.iter().any(|x| x.event == Some(e));
        let mut booted = self.booted.lock().expect("lock");
        if booted.is_none() && seen(AgentEvent::Booted) {
            *booted = events.iter().rev().find_map(|e| e.seq);
        }
        let (revision, status, applied_seq) = match *booted {
            None => (1, InstanceStatus::Pending, None),
            Some(seq) if !seen(AgentEvent::Halted) => (2, InstanceStatus::Stopping, Some(seq)),
            Some(seq) => (3, InstanceStatus::Stopping, Some(seq).filter(|_| self.numbered)),
        };
        intent_at(revision, vec![InstanceIntent { applied_seq, ..instance(0, status) }])
    }
}

#[async_trait::async_trait]
impl Script for Late {
    async fn intent(&self, since: u64, wait: Duration) -> Intent {
        let until = tokio::time::Instant::now() + wait;
        loop {
            let latest = self.latest();
            if latest.revision != since || tokio::time::Instant::now() >= until {
                return latest;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    async fn report(&self, r: Report) {
        self.events.lock().expect("lock").extend(r.events);
    }
}

async fn events_of(link: Arc<Late>) -> Vec<AgentEvent> {
    hollow(&link).run(tokio::time::sleep(Duration::from_secs(3))).await.expect("agent");
    let events = link.events.lock().expect("lock");
    let seqs: Vec<u64> = events.iter().filter_map(|e| e.seq).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "numbered in order: {seqs:?}");
    events.iter().filter_map(|e| e.event).collect()
}

#[tokio::test(start_paused = true)]
async fn an_intent_drawn_before_a_reboot_was_reported_does_not_reboot_again() {
    use AgentEvent::*;
    let rebooted = events_of(Arc::new(Late { numbered: true, ..Default::default() })).await;
    assert_eq!(rebooted, vec![Provisioned, Booted, Halted, Booted]);
    // Without the numbers, the late intent's older status is all the host has: it halts the
    // instance again (the region would read that as the guest shutting itself down).
    let again = events_of(Arc::new(Late::default())).await;
    assert_eq!(again, vec![Provisioned, Booted, Halted, Booted, Halted, Booted]);
}
