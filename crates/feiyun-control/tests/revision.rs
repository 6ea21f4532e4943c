//! An instance's revision is bumped by exactly one on every persisted change, whoever makes it:
//! the user, the agent, the billing loop, a renewal or a conversion. Observations that change
//! nothing bump nothing.

mod common;

use std::sync::{Arc, Mutex};

use chrono::Utc;
use common::{control, spec, ManualClock};
use feiyun_domain::instance::{AgentEvent, ChargeType, InstanceStatus, LockReason, StoppedMode, UserAction};
use feiyun_domain::ops::{Purchase, StopOptions};

#[tokio::test]
async fn every_persisted_change_bumps_the_revision_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock(Mutex::new(Utc::now())));
    clock.set(0);
    let cp = control(dir.path(), clock.clone());
    let (account, _) = cp.create_account("alice").expect("account");
    cp.top_up(&account.id, 100_000, "t").expect("top up");
    let id = cp.create_instances(&account.id, &spec(Purchase::default())).expect("created").ids.remove(0);
    let ids = [id.clone()];
    let rev = || cp.instance(&account.id, &id).expect("there").revision;
    assert_eq!(rev(), 1);

    cp.record_event(&id, AgentEvent::Provisioned);
    assert_eq!(rev(), 2, "agent report");
    cp.record_event(&id, AgentEvent::Booted);
    assert_eq!(rev(), 3);
    cp.record_event(&id, AgentEvent::Booted);
    assert_eq!(rev(), 3, "an observation that changes nothing is not a change");

    clock.set(100);
    let stop = StopOptions { force: false, mode: StoppedMode::KeepCharging };
    cp.act(&account.id, &ids, UserAction::Stop, Some(stop), true, false).expect("stop");
    assert_eq!(rev(), 4, "user action");
    cp.record_event(&id, AgentEvent::Halted);
    cp.act(&account.id, &ids, UserAction::Start, None, true, false).expect("start");
    cp.record_event(&id, AgentEvent::Booted);
    assert_eq!(rev(), 7);

    clock.set(200);
    cp.convert_charge_type(&account.id, &ids, ChargeType::PrePaid, Some(1), false).expect("to subscription");
    assert_eq!(rev(), 8, "conversion");
    cp.set_auto_renew(&account.id, &ids, None).expect("no auto-renewal");
    assert_eq!(rev(), 9, "attribute change");

    // A month and a day later the term is over: the billing loop stops and locks it.
    clock.set(200 + 32 * 86_400);
    cp.billing_tick().expect("tick");
    let i = cp.instance(&account.id, &id).expect("there");
    assert_eq!((i.status, i.billing.lock, i.revision), (InstanceStatus::Stopping, Some(LockReason::Financial), 10));
    cp.billing_tick().expect("tick");
    assert_eq!(rev(), 10, "a tick with nothing to do changes nothing");
    cp.record_event(&id, AgentEvent::Halted);
    assert_eq!(rev(), 11);
    cp.renew_instance(&account.id, &id, 1).expect("renewed");
    assert_eq!(rev(), 12, "renewal");
    cp.convert_charge_type(&account.id, &ids, ChargeType::PostPaid, None, false).expect("to pay-as-you-go");
    assert_eq!(rev(), 13);

    // A restart reads the revision back.
    drop(cp);
    let cp = control(dir.path(), clock.clone());
    assert_eq!(cp.instance(&account.id, &id).expect("there").revision, 13);
}
