//! The control plane through the host protocol, with hosts played by the test: lifecycle, Cloud
//! Assistant, console, tokens, host loss, evacuation and fencing, and what a host may not do.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{host_spec, region, spec, FakeHost, ManualClock};
use feiyun_control::{BillingSetup, ControlPlane, EvacuationPolicy, HostsSetup};
use feiyun_domain::assistant::{CommandType, RunStatus};
use feiyun_domain::host::HostState;
use feiyun_domain::instance::{AgentEvent, InstanceStatus, UserAction};
use feiyun_domain::ops::{Purchase, RunScript};
use feiyun_domain::DomainError;
use feiyun_hostproto::{Credential, InstanceEvent, ProtoError, Report};

fn clock() -> Arc<ManualClock> {
    let c = Arc::new(ManualClock(std::sync::Mutex::new(chrono::Utc::now())));
    c.set(0);
    c
}

fn hosts_setup() -> HostsSetup {
    HostsSetup {
        heartbeat: Duration::from_secs(10),
        grace: Duration::from_secs(40),
        evacuation: EvacuationPolicy { automatic_after: None, per_tick: 2 },
    }
}

/// A region with no host yet, and hosts that join it.
fn empty(dir: &std::path::Path, clock: &Arc<ManualClock>) -> Arc<ControlPlane> {
    region(dir, clock.clone(), BillingSetup::default(), hosts_setup(), &[("seed", "z", 0)])
}

fn run(cp: &ControlPlane, account: &str, amount: u32) -> Vec<String> {
    let mut s = spec(Purchase::default());
    s.amount = amount;
    cp.create_instances(account, &s).expect("created").ids
}

fn status(cp: &ControlPlane, account: &str, id: &str) -> InstanceStatus {
    cp.instance(account, id).expect("instance").status
}

#[test]
fn lifecycle_through_the_host_protocol() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = clock();
    let cp = empty(dir.path(), &clock);
    let mut h = FakeHost::join(&cp, "node-1", "z", 64);
    let (acct, _) = cp.create_account("alice").expect("account");
    let ids = run(&cp, &acct.id, 2);
    let intent = h.intent().expect("intent");
    assert_eq!(intent.instances.len(), 2, "both instances are the host's intent");
    assert_eq!(intent.instances[0].spec.image.id, "img");
    h.settle();
    assert!(ids.iter().all(|i| status(&cp, &acct.id, i) == InstanceStatus::Running));
    cp.act(&acct.id, &ids[..1], UserAction::Stop, None, true, false).expect("stop");
    h.settle();
    assert_eq!(status(&cp, &acct.id, &ids[0]), InstanceStatus::Stopped);
    cp.act(&acct.id, &ids[..1], UserAction::Delete { force: false }, None, true, false).expect("delete");
    h.settle();
    assert!(h.intent().expect("intent").instances.iter().all(|i| i.id != ids[0]), "cleaned and forgotten");
    let listed = cp.list_hosts();
    let node = listed.iter().find(|x| x.host.name == "node-1").expect("listed");
    assert_eq!(node.instance_ids, vec![ids[1].clone()]);
    assert_eq!(node.used.vcpus, 2);
    assert_eq!(node.state, HostState::Up);
}

#[test]
fn intent_long_polls_until_the_revision_moves() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = clock();
    let cp = empty(dir.path(), &clock);
    let h = FakeHost::join(&cp, "node-1", "z", 64);
    let (acct, _) = cp.create_account("alice").expect("account");
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let first = h.intent().expect("intent");
    // Nothing changes: the poll waits out its time and answers the same revision.
    let same = rt.block_on(cp.host_intent(&h.reg.credential, first.revision, Duration::from_millis(50))).expect("poll");
    assert_eq!(same.revision, first.revision);
    // A change wakes the poll at once.
    let cp2 = cp.clone();
    let cred = h.reg.credential.clone();
    let poll = rt.spawn(async move { cp2.host_intent(&cred, first.revision, Duration::from_secs(30)).await });
    std::thread::sleep(Duration::from_millis(50));
    let started = std::time::Instant::now();
    run(&cp, &acct.id, 1);
    let woke = rt.block_on(poll).expect("join").expect("poll");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(woke.revision > first.revision);
    assert_eq!(woke.instances.len(), 1);
    // An agent that saw an earlier run of the control plane (a revision it never gave) is
    // answered at once.
    let old = rt.block_on(cp.host_intent(&h.reg.credential, 1, Duration::from_secs(30))).expect("poll");
    assert_eq!(old.revision, woke.revision);
}

#[test]
fn cloud_assistant_and_console_go_through_the_host() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = clock();
    let cp = empty(dir.path(), &clock);
    let mut h = FakeHost::join(&cp, "node-1", "z", 64);
    h.exec = Box::new(|script| if script == b"false" { (1, Vec::new()) } else { (0, b"hello\n".to_vec()) });
    h.console = b"booted\n".to_vec();
    let (acct, _) = cp.create_account("alice").expect("account");
    let ids = run(&cp, &acct.id, 1);
    h.settle();
    let script = |content: &str| RunScript {
        instance_ids: ids.clone(),
        content: content.as_bytes().to_vec(),
        name: "t".into(),
        description: String::new(),
        working_dir: String::new(),
        timeout_s: 60,
    };
    let (_, ok) = cp.run_command(&acct.id, CommandType::RunShellScript, false, script("echo hello")).expect("run");
    let (_, bad) = cp.run_command(&acct.id, CommandType::RunShellScript, false, script("false")).expect("run");
    let run_of = |invoke: &str| {
        cp.describe_invocations(
            &acct.id,
            &feiyun_control::InvocationFilter { invoke_id: Some(invoke.to_string()), ..Default::default() },
        )[0]
        .runs[0]
            .clone()
    };
    assert_eq!(run_of(&ok).status, RunStatus::Running, "sent to the host");
    h.settle();
    let r = run_of(&ok);
    assert_eq!((r.status, r.exit_code, r.output.as_slice()), (RunStatus::Success, Some(0), b"hello\n".as_slice()));
    assert_eq!(run_of(&bad).status, RunStatus::Failed);
    // The console is read from the host while the caller waits.
    let cp2 = cp.clone();
    let (a, i) = (acct.id.clone(), ids[0].clone());
    let reader = std::thread::spawn(move || cp2.console_output(&a, &i));
    for _ in 0..100 {
        if h.step().expect("step") {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let (bytes, _) = reader.join().expect("join").expect("console");
    assert_eq!(bytes, b"booted\n");
}

#[test]
fn join_tokens_credentials_and_what_a_host_may_not_do() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = clock();
    let cp = empty(dir.path(), &clock);
    let (t, token) = cp.create_join_token(Some("z")).expect("token");
    let reg = cp.register_host(&token, host_spec("node-1", "z", 8)).expect("joins");
    assert_eq!(reg.zone, "z");
    // The token decides the zone.
    let mut other_zone = host_spec("node-2", "z", 8);
    other_zone.zone = Some("elsewhere".into());
    assert!(matches!(cp.register_host(&token, other_zone), Err(ProtoError::BadRequest(_))));
    // A name is one host.
    assert!(matches!(cp.register_host(&token, host_spec("node-1", "z", 8)), Err(ProtoError::Conflict(_))));
    // Wrong, made-up and revoked tokens.
    assert!(matches!(cp.register_host("nonsense", host_spec("x", "z", 8)), Err(ProtoError::Unauthorized(_))));
    assert!(matches!(
        cp.register_host(&format!("{}.wrong", t.id), host_spec("x", "z", 8)),
        Err(ProtoError::Unauthorized(_))
    ));
    assert!(matches!(cp.register_host(&token, host_spec("", "z", 8)), Err(ProtoError::BadRequest(_))));
    let mut old = host_spec("x", "z", 8);
    old.protocol = 99;
    assert!(matches!(cp.register_host(&token, old), Err(ProtoError::UnsupportedVersion(99))));
    cp.revoke_join_token(&token).expect("revoke");
    assert!(matches!(cp.register_host(&token, host_spec("node-3", "z", 8)), Err(ProtoError::Unauthorized(_))));
    // A host that joined keeps its credential.
    let h1 = FakeHost::with(&cp, reg);
    h1.heartbeat().expect("still a member");
    // A wrong credential, or one host's id with another's secret, opens nothing.
    let forged = Credential(format!("{}.{}", h1.reg.host_id, "guess"));
    assert!(matches!(
        cp.host_heartbeat(&forged, &feiyun_hostproto::Heartbeat { epoch: 1, instances: 0 }),
        Err(ProtoError::Unauthorized(_))
    ));
    // A host reporting an instance it was not given changes nothing.
    let mut h2 = FakeHost::join(&cp, "node-2", "z", 8);
    let (acct, _) = cp.create_account("alice").expect("account");
    let mut s = spec(Purchase::default());
    s.instance_type = "ecs.g7.large".into();
    let id = cp.create_instances(&acct.id, &s).expect("created").ids.remove(0);
    let owner = cp.list_hosts().into_iter().find(|x| x.instance_ids.contains(&id)).expect("placed").host.id;
    let stranger = if owner == h1.reg.host_id { &h2 } else { &h1 };
    let before = cp.instance(&acct.id, &id).expect("instance");
    let err = cp
        .host_report(
            &stranger.reg.credential,
            Report {
                epoch: 1,
                events: vec![InstanceEvent {
                    instance_id: id.clone(),
                    event: Some(AgentEvent::Booted),
                    error: None,
                    status_after: None,
                    seq: None,
                }],
                results: Vec::new(),
                ..Report::default()
            },
        )
        .expect_err("not its instance");
    assert!(matches!(err, ProtoError::Forbidden(_)), "{err:?}");
    assert_eq!(cp.instance(&acct.id, &id).expect("instance"), before);
    h2.settle();
}

#[test]
fn a_late_word_on_a_cleaned_instance_does_not_sink_the_rest_of_a_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = clock();
    let cp = empty(dir.path(), &clock);
    let mut h = FakeHost::join(&cp, "node-1", "z", 16);
    let (acct, _) = cp.create_account("alice").expect("account");
    let ids = run(&cp, &acct.id, 2);
    h.settle();
    let (gone, kept) = (&ids[0], &ids[1]);
    cp.act(&acct.id, std::slice::from_ref(gone), UserAction::Delete { force: true }, None, true, false)
        .expect("delete");
    cp.act(&acct.id, std::slice::from_ref(kept), UserAction::Stop, None, true, false).expect("stop");
    let event = |id: &String, ev| InstanceEvent {
        instance_id: id.clone(),
        event: Some(ev),
        error: None,
        status_after: None,
        seq: None,
    };
    let report = |events| Report { epoch: 1, events, ..Report::default() };
    cp.host_report(&h.reg.credential, report(vec![event(gone, AgentEvent::Halted), event(gone, AgentEvent::Cleaned)]))
        .expect("cleaned");
    assert!(cp.instance(&acct.id, gone).is_err(), "forgotten");
    // The host cleaned it once more (it acted on an intent drawn before its first report landed)
    // and says so beside news of another instance: the news is not lost.
    cp.host_report(&h.reg.credential, report(vec![event(gone, AgentEvent::Cleaned), event(kept, AgentEvent::Halted)]))
        .expect("a late repeat is no offence");
    assert_eq!(status(&cp, &acct.id, kept), InstanceStatus::Stopped);
    assert_eq!(cp.last_error(gone), None);
    // An instance the region never had is no one's: nothing to apply, nothing refused.
    cp.host_report(&h.reg.credential, report(vec![event(&"i-neverwas".to_string(), AgentEvent::Booted)]))
        .expect("ignored");
}

#[test]
fn a_silent_host_becomes_unreachable_and_comes_back_to_its_instances() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = clock();
    let cp = empty(dir.path(), &clock);
    let mut a = FakeHost::join(&cp, "node-a", "z", 12);
    let mut b = FakeHost::join(&cp, "node-b", "z", 12);
    let (acct, _) = cp.create_account("alice").expect("account");
    let mut s = spec(Purchase::default());
    s.instance_type = "ecs.g7.2xlarge".into(); // 8 vCPU: one per 12-vCPU host
    s.amount = 2;
    let ids = cp.create_instances(&acct.id, &s).expect("created").ids;
    a.settle();
    b.settle();
    let on_a = a.instances.keys().next().cloned().expect("one on a");
    let before = cp.available(Some("z"), Some("ecs.g7.large")).expect("available")[0].remaining;
    clock.set(30);
    b.heartbeat().expect("b lives");
    cp.host_tick().expect("tick");
    assert_eq!(cp.list_hosts().iter().filter(|h| h.state == HostState::Up).count(), 2, "within the grace");
    clock.set(41);
    cp.host_tick().expect("tick");
    let listed = cp.list_hosts();
    assert_eq!(listed.iter().find(|h| h.host.name == "node-a").map(|h| h.state), Some(HostState::Unreachable));
    // Its instance stays listed, impaired, with a system event.
    let i = cp.instance(&acct.id, &on_a).expect("still listed");
    assert_eq!(i.status, InstanceStatus::Running);
    assert_eq!(cp.instance_health(&i), "Impaired");
    let ev = cp.system_events(&acct.id, Some(&on_a)).expect("events");
    assert_eq!((ev[0].kind.code(), ev[0].cycle.as_str()), ("SystemFailure.Reboot", "Executing"));
    // No new placements there: stock shrinks, and a new instance lands elsewhere or not at all.
    assert!(cp.available(Some("z"), Some("ecs.g7.large")).expect("available")[0].remaining < before);
    let mut one = spec(Purchase::default());
    one.instance_type = "ecs.g7.2xlarge".into();
    assert_eq!(cp.create_instances(&acct.id, &one), Err(DomainError::NoStock));
    // Cloud Assistant does not reach it: the run fails at once, saying why.
    let (_, inv) = cp
        .run_command(
            &acct.id,
            CommandType::RunShellScript,
            false,
            RunScript {
                instance_ids: vec![on_a.clone()],
                content: b"true".to_vec(),
                name: "t".into(),
                description: String::new(),
                working_dir: String::new(),
                timeout_s: 60,
            },
        )
        .expect("invoke");
    let r =
        &cp.describe_invocations(&acct.id, &Default::default()).into_iter().find(|v| v.id == inv).expect("inv").runs[0];
    assert_eq!(r.error_code, "ClientNotOnline");
    assert_eq!(cp.console_output(&acct.id, &on_a), Err(DomainError::HostUnreachable(on_a.clone())));
    // It comes back: re-adopted, nothing restarted, the event is over.
    a.heartbeat().expect("back");
    a.settle();
    assert_eq!(cp.instance_health(&cp.instance(&acct.id, &on_a).expect("instance")), "Ok");
    let ev = cp.system_events(&acct.id, Some(&on_a)).expect("events");
    assert_eq!(ev[0].cycle.as_str(), "Executed");
    assert!(ids.iter().all(|i| status(&cp, &acct.id, i) == InstanceStatus::Running));
}

#[test]
fn evacuation_moves_instances_keeps_their_ids_and_fences_the_old_host() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = clock();
    let cp = empty(dir.path(), &clock);
    let mut a = FakeHost::join(&cp, "node-a", "z", 16);
    let mut b = FakeHost::join(&cp, "node-b", "z", 16);
    let mut c = FakeHost::join(&cp, "node-c", "z", 16);
    let (acct, _) = cp.create_account("alice").expect("account");
    let ids = run(&cp, &acct.id, 3);
    for h in [&mut a, &mut b, &mut c] {
        h.settle();
    }
    let victim =
        [&a, &b, &c].into_iter().max_by_key(|h| h.instances.len()).map(|h| h.reg.host_id.clone()).expect("a host");
    let moved: Vec<String> = cp.list_hosts().into_iter().find(|h| h.host.id == victim).expect("host").instance_ids;
    assert!(!moved.is_empty());
    // A live host is not evacuated.
    assert_eq!(cp.evacuate_host(&victim, false), Err(DomainError::HostReachable(victim.clone())));
    clock.set(60);
    for h in [&a, &b, &c] {
        if h.reg.host_id != victim {
            h.heartbeat().expect("alive");
        }
    }
    cp.host_tick().expect("tick");
    let info = cp.evacuate_host(&victim, false).expect("evacuate");
    assert!(info.evacuating);
    assert_eq!(info.host.epoch, 2, "fenced");
    for _ in 0..3 {
        cp.host_tick().expect("tick");
    }
    for h in [&mut a, &mut b, &mut c] {
        if h.reg.host_id != victim {
            h.settle();
        }
    }
    for id in &moved {
        let i = cp.instance(&acct.id, id).expect("same id");
        assert_ne!(i.host_id, victim);
        assert_eq!(i.status, InstanceStatus::Running);
        let ev = cp.system_events(&acct.id, Some(id)).expect("events");
        assert!(ev.iter().any(|e| e.kind.code() == "SystemFailure.Redeploy" && e.cycle.as_str() == "Executed"));
    }
    // The old host comes back: its old epoch is refused, its new intent names none of them, and
    // after it applied that it runs none of them.
    let old = [&mut a, &mut b, &mut c].into_iter().find(|h| h.reg.host_id == victim).expect("victim");
    assert!(matches!(old.heartbeat(), Err(ProtoError::Fenced { epoch: 2 })));
    let intent = old.intent().expect("intent");
    assert!(intent.instances.iter().all(|i| !moved.contains(&i.id)));
    old.step().expect("applies the new epoch");
    assert!(moved.iter().all(|id| !old.instances.contains_key(id)), "no instance runs on two hosts");
    old.heartbeat().expect("welcome back under the new epoch");
    assert_eq!(ids.len(), 3);
}

#[test]
fn a_host_back_before_its_evacuation_finished_keeps_what_is_left() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = clock();
    let cp = empty(dir.path(), &clock);
    let mut a = FakeHost::join(&cp, "node-a", "z", 16);
    let (acct, _) = cp.create_account("alice").expect("account");
    let ids = run(&cp, &acct.id, 3);
    a.settle();
    let mut b = FakeHost::join(&cp, "node-b", "z", 16);
    let mut c = FakeHost::join(&cp, "node-c", "z", 16);
    clock.set(60);
    b.heartbeat().expect("b lives");
    c.heartbeat().expect("c lives");
    cp.host_tick().expect("tick");
    cp.evacuate_host("node-a", false).expect("evacuate");
    // Two per tick: one instance is still on node-a when it comes back.
    cp.host_tick().expect("tick");
    let on = |id: &str| cp.instance(&acct.id, id).expect("instance").host_id;
    let left: Vec<String> = ids.iter().filter(|i| on(i) == a.reg.host_id).cloned().collect();
    assert_eq!(left.len(), 1, "{ids:?}");
    assert!(matches!(a.heartbeat(), Err(ProtoError::Fenced { epoch: 2 })));
    a.step().expect("applies the new epoch");
    assert_eq!(a.instances.keys().cloned().collect::<Vec<_>>(), left, "kept what its intent names");
    for _ in 0..3 {
        cp.host_tick().expect("tick");
    }
    b.settle();
    c.settle();
    a.settle();
    // The evacuation ended with the host's return: what was left stays there, and no instance
    // runs on two hosts.
    assert_eq!(on(&left[0]), a.reg.host_id);
    let listed = cp.list_hosts();
    let node_a = listed.iter().find(|h| h.host.name == "node-a").expect("listed");
    assert!(!node_a.evacuating);
    assert_eq!(node_a.state, HostState::Up);
    assert_eq!(node_a.instance_ids, left);
    for id in &ids {
        let copies = [&a, &b, &c].iter().filter(|h| h.instances.contains_key(id)).count();
        assert_eq!(copies, 1, "{id} runs on one host");
        assert_eq!(status(&cp, &acct.id, id), InstanceStatus::Running);
    }
}

#[test]
fn evacuation_stops_when_a_third_of_the_hosts_vanish() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = clock();
    let cp = empty(dir.path(), &clock);
    let hosts: Vec<FakeHost> = (0..5).map(|n| FakeHost::join(&cp, &format!("n{n}"), "z", 8)).collect();
    clock.set(60);
    hosts[3].heartbeat().expect("alive");
    hosts[4].heartbeat().expect("alive");
    cp.host_tick().expect("tick");
    // Three of five are silent at once: a partition, not failures.
    assert!(matches!(
        cp.evacuate_host(&hosts[0].reg.host_id, false),
        Err(DomainError::PartitionSuspected { unreachable: 3, total: 5 })
    ));
    cp.evacuate_host(&hosts[0].reg.host_id, true).expect("the operator insists");
}

#[test]
fn drained_hosts_take_nothing_new() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = clock();
    let cp = empty(dir.path(), &clock);
    let a = FakeHost::join(&cp, "node-a", "z", 4);
    let (acct, _) = cp.create_account("alice").expect("account");
    cp.drain_host("node-a", true).expect("drain");
    assert_eq!(cp.list_hosts().iter().find(|h| h.host.name == "node-a").map(|h| h.state), Some(HostState::Draining));
    assert_eq!(cp.create_instances(&acct.id, &spec(Purchase::default())), Err(DomainError::NoStock));
    cp.drain_host(&a.reg.host_id, false).expect("undrain");
    cp.create_instances(&acct.id, &spec(Purchase::default())).expect("placed");
    assert_eq!(cp.drain_host("nope", true).expect_err("unknown"), DomainError::HostNotFound("nope".into()));
}

#[test]
fn hosts_and_their_instances_survive_a_control_plane_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = clock();
    let (acct_id, id, reg) = {
        let cp = empty(dir.path(), &clock);
        let mut h = FakeHost::join(&cp, "node-a", "z", 8);
        let (acct, _) = cp.create_account("alice").expect("account");
        let id = run(&cp, &acct.id, 1).remove(0);
        h.settle();
        (acct.id, id, h.reg.clone())
    };
    let cp = empty(dir.path(), &clock);
    let mut h = FakeHost::with(&cp, reg);
    h.heartbeat().expect("the credential still works");
    h.instances.insert(id.clone(), true);
    h.settle();
    assert_eq!(status(&cp, &acct_id, &id), InstanceStatus::Running);
    let node = cp.list_hosts().into_iter().find(|x| x.host.name == "node-a").expect("listed");
    assert_eq!(node.used.vcpus, 2, "capacity of its instances is taken again");
}

/// One instance placed on one fake host, and what the host says of it.
struct OneInstance {
    _dir: tempfile::TempDir,
    cp: Arc<ControlPlane>,
    host: FakeHost,
    account: String,
    id: String,
}

impl OneInstance {
    fn new() -> OneInstance {
        let dir = tempfile::tempdir().expect("tempdir");
        let cp = empty(dir.path(), &clock());
        let host = FakeHost::join(&cp, "node-1", "z", 16);
        let (acct, _) = cp.create_account("alice").expect("account");
        let id = run(&cp, &acct.id, 1).remove(0);
        OneInstance { _dir: dir, cp, host, account: acct.id, id }
    }

    /// The host reports `event`, and the status it moved its own copy to.
    fn report(&self, event: AgentEvent, status_after: Option<InstanceStatus>) {
        self.report_numbered(event, status_after, None)
    }

    /// [`OneInstance::report`], with the host's number for the event.
    fn report_numbered(&self, event: AgentEvent, status_after: Option<InstanceStatus>, seq: Option<u64>) {
        let events =
            vec![InstanceEvent { instance_id: self.id.clone(), event: Some(event), error: None, status_after, seq }];
        self.cp
            .host_report(&self.host.reg.credential, Report { epoch: 1, events, ..Report::default() })
            .expect("report");
    }

    fn revision(&self) -> u64 {
        self.host.intent().expect("intent").revision
    }

    fn status(&self) -> InstanceStatus {
        status(&self.cp, &self.account, &self.id)
    }

    fn act(&self, action: UserAction) {
        self.cp.act(&self.account, std::slice::from_ref(&self.id), action, None, true, false).expect("act");
    }
}

#[test]
fn a_host_whose_own_copy_went_elsewhere_hears_the_region_even_when_nothing_changes() {
    let one = OneInstance::new();
    one.report(AgentEvent::Provisioned, Some(InstanceStatus::Starting));
    one.report(AgentEvent::Booted, Some(InstanceStatus::Running));
    assert_eq!(one.status(), InstanceStatus::Running);
    one.act(UserAction::Reboot);
    let rebooting = one.revision();
    // A boot the host observed on an intent drawn before the reboot: the region keeps the
    // reboot (Stopping), and the host, whose copy says Running, is told so.
    one.report(AgentEvent::Booted, Some(InstanceStatus::Running));
    assert_eq!(one.status(), InstanceStatus::Stopping);
    assert!(one.revision() > rebooting);
    // The same event with the host's copy where the region's is: nothing to tell.
    let told = one.revision();
    one.report(AgentEvent::Booted, Some(InstanceStatus::Stopping));
    assert_eq!(one.revision(), told);
}

#[test]
fn a_host_is_woken_for_its_own_report_only_when_the_region_decides_otherwise() {
    let one = OneInstance::new();
    let placed = one.revision();
    // The host moved the instance to Starting on its own copy and says so: recorded, and the
    // host is not woken to be told what it knows.
    one.report(AgentEvent::Provisioned, Some(InstanceStatus::Starting));
    assert_eq!(one.status(), InstanceStatus::Starting);
    assert_eq!(one.revision(), placed);
    // A host whose copy went elsewhere than the region's state machine hears the region's word.
    one.report(AgentEvent::Booted, Some(InstanceStatus::Stopping));
    assert_eq!(one.status(), InstanceStatus::Running);
    assert!(one.revision() > placed);
    // A host that leaves the status to the region (an older agent; any agent for an event that
    // changes what is desired, such as a guest halting on its own) is woken for every change.
    one.act(UserAction::Stop);
    let stopping = one.revision();
    one.report(AgentEvent::Halted, None);
    assert_eq!(one.status(), InstanceStatus::Stopped);
    assert!(one.revision() > stopping);
}

#[test]
fn an_intent_says_the_last_of_the_hosts_events_the_region_applied() {
    let one = OneInstance::new();
    let said = || one.host.intent().expect("intent").instances[0].applied_seq;
    assert_eq!(said(), None);
    one.report_numbered(AgentEvent::Provisioned, Some(InstanceStatus::Starting), Some(7));
    assert_eq!(said(), Some(7));
    // An event that changes nothing was applied all the same.
    one.report_numbered(AgentEvent::Provisioned, Some(InstanceStatus::Starting), Some(8));
    assert_eq!(one.status(), InstanceStatus::Starting);
    assert_eq!(said(), Some(8));
    // An older host numbers nothing: the last number stands.
    one.report(AgentEvent::Booted, Some(InstanceStatus::Running));
    assert_eq!(one.status(), InstanceStatus::Running);
    assert_eq!(said(), Some(8));
    // A reboot asked now is the region's own: the host sees a status its events did not lead to.
    one.act(UserAction::Reboot);
    let intent = one.host.intent().expect("intent");
    assert_eq!((intent.instances[0].status, intent.instances[0].applied_seq), (InstanceStatus::Stopping, Some(8)));
}
