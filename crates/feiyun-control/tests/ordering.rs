//! Money follows what happened, whatever the clock's resolution: transitions of one instance
//! within the same second (or the same millisecond) are billed in the order they happened, and
//! each is recorded, in the usage log and in the ledger.
//!
//! Prices (catalog/prices.toml): ecs.g7.large = 0.5296 per hour; the default 40 GiB ESSD system
//! disk = 0.0556 per hour.

mod common;

use std::sync::{Arc, Mutex};

use chrono::Utc;
use common::{control, spec, ManualClock};
use feiyun_billing::metering::{intervals, Item};
use feiyun_control::ControlPlane;
use feiyun_domain::instance::{AgentEvent, ChargeType, StoppedMode, UserAction};
use feiyun_domain::ops::{Purchase, StopOptions};
use feiyun_domain::usage::{EventKind, LedgerKind};

fn payg_charges(cp: &ControlPlane, account: &str) -> Vec<i64> {
    cp.ledger(account)
        .expect("ledger")
        .iter()
        .filter(|e| e.kind == LedgerKind::PayAsYouGo)
        .map(|e| e.amount_cents)
        .collect()
}

/// Stop in economical mode and start again, the agent reporting both, all at the clock's current
/// instant (the manual clock does not move: same second, same millisecond).
fn stop_economical_and_start(cp: &ControlPlane, account: &str, id: &str) {
    let ids = [id.to_string()];
    let stop = StopOptions { force: false, mode: StoppedMode::StopCharging };
    cp.act(account, &ids, UserAction::Stop, Some(stop), true, false).expect("stop");
    cp.record_event(id, AgentEvent::Halted);
    cp.act(account, &ids, UserAction::Start, None, true, false).expect("start");
    cp.record_event(id, AgentEvent::Booted);
}

/// Compute seconds of an account's log, up to the clock's now.
fn compute_seconds(cp: &ControlPlane, account: &str) -> i64 {
    let events = cp.usage_events(Some(account), 0).expect("usage");
    intervals(&events, cp.now().timestamp()).iter().filter(|i| i.item == Item::Compute).map(|i| i.seconds()).sum()
}

/// The reported defect: stopped with StopCharging and started again within the same second, the
/// instance ran on uncharged (the log sorted the Start before the StopCharging).
///
/// Running from 0, stopped and started at 4000, running on: compute is charged all along.
/// Through 3600: 0.5296 + 0.0556 = 0.5852 → 0.59. Through 7200: 1.0592 + 0.1112 = 1.1704
/// → 1.17, 0.58 due. Through 10800: 1.5888 + 0.1668 = 1.7556 → 1.76, 0.59 due.
#[tokio::test]
async fn stop_economical_and_start_in_the_same_second_keeps_charging_compute() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock(Mutex::new(Utc::now())));
    clock.set(0);
    let cp = control(dir.path(), clock.clone());
    let (account, _) = cp.create_account("alice").expect("account");
    cp.top_up(&account.id, 100_000, "t").expect("top up");
    let id = cp.create_instances(&account.id, &spec(Purchase::default())).expect("created").ids.remove(0);
    cp.record_event(&id, AgentEvent::Provisioned);
    cp.record_event(&id, AgentEvent::Booted);
    clock.set(3600);
    cp.billing_tick().expect("tick");
    assert_eq!(payg_charges(&cp, &account.id), vec![-59]);

    clock.set(4000);
    stop_economical_and_start(&cp, &account.id, &id);
    let kinds: Vec<EventKind> = cp.usage_events(Some(&account.id), 0).expect("usage").iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        vec![EventKind::Create, EventKind::Start, EventKind::StopCharging, EventKind::Start],
        "the log keeps the order the transitions happened in"
    );

    clock.set(7200);
    cp.billing_tick().expect("tick");
    assert_eq!(payg_charges(&cp, &account.id), vec![-59, -58], "the second hour's compute is charged");
    assert_eq!(compute_seconds(&cp, &account.id), 7200);

    // A restart reads the same log back and bills the third hour too.
    drop(cp);
    let cp = control(dir.path(), clock.clone());
    clock.set(10_800);
    cp.billing_tick().expect("tick");
    assert_eq!(payg_charges(&cp, &account.id), vec![-59, -58, -59]);
    assert_eq!(compute_seconds(&cp, &account.id), 10_800);
}

/// Two transitions of the same kind within one millisecond are two events: stop, start and stop
/// again (economical) in the same instant leave the instance stopped and its compute stopped.
#[tokio::test]
async fn transitions_of_one_kind_in_the_same_millisecond_are_all_recorded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock(Mutex::new(Utc::now())));
    clock.set(0);
    let cp = control(dir.path(), clock.clone());
    let (account, _) = cp.create_account("bob").expect("account");
    let id = cp.create_instances(&account.id, &spec(Purchase::default())).expect("created").ids.remove(0);
    cp.record_event(&id, AgentEvent::Provisioned);
    cp.record_event(&id, AgentEvent::Booted);
    clock.set(500);
    stop_economical_and_start(&cp, &account.id, &id);
    let stop = StopOptions { force: false, mode: StoppedMode::StopCharging };
    cp.act(&account.id, std::slice::from_ref(&id), UserAction::Stop, Some(stop), true, false).expect("stop");
    cp.record_event(&id, AgentEvent::Halted);
    let events = cp.usage_events(Some(&account.id), 0).expect("usage");
    let kinds: Vec<EventKind> = events.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        vec![EventKind::Create, EventKind::Start, EventKind::StopCharging, EventKind::Start, EventKind::StopCharging]
    );
    // Compute ran 0 → 500 only, however long we wait.
    clock.set(3600);
    assert_eq!(compute_seconds(&cp, &account.id), 500);
}

/// Conversions back and forth within one millisecond are each charged or refunded. A month of
/// g7.large with its disk is 427.20, a year 4357.40; converting back at once refunds the whole
/// term.
#[tokio::test]
async fn conversions_within_one_millisecond_are_each_charged_and_refunded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock(Mutex::new(Utc::now())));
    clock.set(0);
    let cp = control(dir.path(), clock.clone());
    let (account, _) = cp.create_account("carol").expect("account");
    cp.top_up(&account.id, 1_000_000, "t").expect("top up");
    let id = cp.create_instances(&account.id, &spec(Purchase::default())).expect("created").ids.remove(0);
    cp.record_event(&id, AgentEvent::Provisioned);
    cp.record_event(&id, AgentEvent::Booted);
    clock.set(100);
    let ids = [id.clone()];
    let convert = |to, months| cp.convert_charge_type(&account.id, &ids, to, months, false).expect("converted");
    assert_eq!(convert(ChargeType::PrePaid, Some(1)), vec![(id.clone(), 42_720)]);
    assert_eq!(convert(ChargeType::PostPaid, None), vec![(id.clone(), -42_720)]);
    assert_eq!(convert(ChargeType::PrePaid, Some(12)), vec![(id.clone(), 435_740)]);
    assert_eq!(cp.balance_cents(&account.id).expect("balance"), 1_000_000 - 435_740, "the year is paid for");
    assert_eq!(convert(ChargeType::PostPaid, None), vec![(id.clone(), -435_740)]);
    assert_eq!(cp.balance_cents(&account.id).expect("balance"), 1_000_000, "and refunded");
    let kinds: Vec<LedgerKind> = cp.ledger(&account.id).expect("ledger").iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        vec![
            LedgerKind::TopUp,
            LedgerKind::Subscription,
            LedgerKind::Refund,
            LedgerKind::Subscription,
            LedgerKind::Refund
        ]
    );
    let converts =
        cp.usage_events(Some(&account.id), 0).expect("usage").iter().filter(|e| e.kind == EventKind::Convert).count();
    assert_eq!(converts, 4);
}
