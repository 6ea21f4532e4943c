//! Every lifecycle transition leaves one usage event, written with the transition; the bill
//! derived from the log is exact and a restart of the control plane does not change it.

mod common;

use std::sync::{Arc, Mutex};

use chrono::Utc;
use common::{control, spec, ManualClock};
use feiyun_billing::metering::{intervals, Item};
use feiyun_domain::instance::{AgentEvent, StoppedMode, UserAction};
use feiyun_domain::ops::StopOptions;
use feiyun_domain::usage::EventKind;

#[tokio::test]
async fn lifecycle_usage_is_recorded_once_and_bills_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock(Mutex::new(Utc::now())));
    clock.set(0);
    let cp = control(dir.path(), clock.clone());
    let (account, _) = cp.create_account("alice").expect("account");
    let spec = spec(Default::default());
    let id = cp.create_instances(&account.id, &spec).expect("created").ids.remove(0);
    clock.set(10);
    cp.record_event(&id, AgentEvent::Provisioned);
    cp.record_event(&id, AgentEvent::Booted);
    clock.set(3610);
    let stop = StopOptions { force: false, mode: StoppedMode::StopCharging };
    cp.act(&account.id, std::slice::from_ref(&id), UserAction::Stop, Some(stop), true, false).expect("stop");
    cp.record_event(&id, AgentEvent::Halted);
    clock.set(7210);
    cp.act(&account.id, std::slice::from_ref(&id), UserAction::Start, None, true, false).expect("start");
    cp.record_event(&id, AgentEvent::Booted);
    // Reports repeated after a crash or a resync change nothing.
    cp.record_event(&id, AgentEvent::Booted);
    clock.set(10810);
    cp.act(&account.id, std::slice::from_ref(&id), UserAction::Delete { force: true }, None, true, false)
        .expect("delete");

    let events = cp.usage_events(Some(&account.id), 0).expect("usage");
    let kinds: Vec<EventKind> = events.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        vec![EventKind::Create, EventKind::Start, EventKind::StopCharging, EventKind::Start, EventKind::Release]
    );
    // The default system disk: max(40 GiB, the image's 2 GiB).
    assert!(events.iter().all(|e| e.disk_gib == 40 && e.instance_type == "ecs.g7.large"));

    let seconds = |evs: &[feiyun_domain::usage::UsageEvent], item: Item| -> i64 {
        intervals(evs, i64::MAX).iter().filter(|i| i.item == item).map(|i| i.seconds()).sum()
    };
    // Compute ran 10 → 3610 and 7210 → 10810 (economical stop in between); the disk all along.
    assert_eq!(seconds(&events, Item::Compute), 7200);
    assert_eq!(seconds(&events, Item::Disk), 10810);

    // A restart of the control plane over the same store changes nothing.
    drop(cp);
    let cp = control(dir.path(), clock.clone());
    let again = cp.usage_events(Some(&account.id), 0).expect("usage");
    assert_eq!(again, events);
}
