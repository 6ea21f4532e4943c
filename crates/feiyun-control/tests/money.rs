//! Balances, hourly settlement, arrears, subscriptions and spot, driven through the control plane
//! with a manual clock. Every amount is computed by hand in the comments.
//!
//! Prices (catalog/prices.toml): ecs.g7.large = 2 × 0.1764 + 8 × 0.0221 = 0.5296 per hour; the
//! default system disk (max(40 GiB, the test image's 2 GiB), ESSD) = 40 × 0.00139 = 0.0556 per
//! hour.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use common::{control_with, spec, ManualClock};
use feiyun_control::BillingSetup;
use feiyun_domain::instance::{AgentEvent, ChargeType, InstanceStatus, LockReason, SpotStrategy, UserAction};
use feiyun_domain::ops::Purchase;
use feiyun_domain::usage::{EventKind, LedgerKind};
use feiyun_domain::DomainError;

fn setup() -> BillingSetup {
    BillingSetup {
        settle_every: Duration::from_secs(3600),
        arrears_stop_after: Duration::from_secs(7200),
        arrears_release_after: Duration::from_secs(3 * 3600),
        expired_release_after: Duration::from_secs(86_400),
        market_every: Duration::from_secs(300),
        spot_notice: Duration::from_secs(300),
    }
}

fn tick_at(cp: &feiyun_control::ControlPlane, clock: &ManualClock, s: i64) {
    clock.set(s);
    cp.billing_tick().expect("tick");
}

fn payg_charges(cp: &feiyun_control::ControlPlane, account: &str) -> Vec<i64> {
    cp.ledger(account)
        .expect("ledger")
        .iter()
        .filter(|e| e.kind == LedgerKind::PayAsYouGo)
        .map(|e| e.amount_cents)
        .collect()
}

#[tokio::test]
async fn pay_as_you_go_settles_hourly_and_arrears_stop_then_release() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock(Mutex::new(Utc::now())));
    clock.set(0);
    let cp = control_with(dir.path(), clock.clone(), setup());
    let (account, _) = cp.create_account("alice").expect("account");
    assert!(cp.top_up(&account.id, 100, "t1").expect("top up"));
    assert!(!cp.top_up(&account.id, 100, "t1").expect("replayed top-up"), "same reference, paid once");
    let id = cp.create_instances(&account.id, &spec(Purchase::default())).expect("created").ids.remove(0);
    clock.set(10);
    cp.record_event(&id, AgentEvent::Provisioned);
    cp.record_event(&id, AgentEvent::Booted);

    // Through 3600: compute 3590 s × 0.5296/3600 = 0.528129, disk 0.0556 → 0.583729 → 0.58.
    tick_at(&cp, &clock, 3600);
    assert_eq!(payg_charges(&cp, &account.id), vec![-58]);
    // Ticking again, or after a restart, settles nothing twice.
    cp.billing_tick().expect("tick");
    assert_eq!(payg_charges(&cp, &account.id), vec![-58]);
    // Through 7200: 7190 s → 1.057729 + 0.1112 = 1.168929 → 1.17; 1.17 − 0.58 = 0.59 due.
    // Balance 1.00 − 1.17 = −0.17: in arrears from 7200.
    tick_at(&cp, &clock, 7200);
    assert_eq!(payg_charges(&cp, &account.id), vec![-58, -59]);
    assert_eq!(cp.balance_cents(&account.id).expect("balance"), -17);
    // In arrears: no new pay-as-you-go instances.
    assert_eq!(cp.create_instances(&account.id, &spec(Purchase::default())), Err(DomainError::AccountArrearage));
    // Through 10800: 10790 s → 1.587329 + 0.1668 = 1.754129 → 1.75 (0.58 due).
    tick_at(&cp, &clock, 10_800);
    assert_eq!(payg_charges(&cp, &account.id), vec![-58, -59, -58]);
    assert_eq!(cp.instance(&account.id, &id).expect("there").status, InstanceStatus::Running, "still in grace");

    // 2 h into arrears (14400): settled (14390 s → 2.116929 + 0.2224 = 2.339329 → 2.34, 0.59
    // due), then stopped and locked.
    tick_at(&cp, &clock, 14_400);
    assert_eq!(payg_charges(&cp, &account.id), vec![-58, -59, -58, -59]);
    let i = cp.instance(&account.id, &id).expect("there");
    assert_eq!((i.status, i.billing.lock), (InstanceStatus::Stopping, Some(LockReason::Financial)));
    cp.record_event(&id, AgentEvent::Halted);
    assert_eq!(cp.instance(&account.id, &id).expect("there").status, InstanceStatus::Stopped);
    assert!(matches!(
        cp.act(&account.id, std::slice::from_ref(&id), UserAction::Start, None, true, false),
        Err(DomainError::InstanceLocked("financial"))
    ));

    // 3 h after the stop (25200): released. Disks charged to the end, compute only until the stop.
    tick_at(&cp, &clock, 25_200);
    assert!(matches!(cp.instance(&account.id, &id), Err(DomainError::InstanceNotFound(_))));
    let kinds: Vec<EventKind> = cp.usage_events(Some(&account.id), 0).expect("usage").iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        vec![EventKind::Create, EventKind::Start, EventKind::StopCharging, EventKind::Release],
        "the arrears stop is economical"
    );
    // Total through 25200: compute 14390 s → 2.116929; disk 25200 s → 0.3892; 2.506129 → 2.51.
    let charged: i64 = payg_charges(&cp, &account.id).iter().sum();
    assert_eq!(charged, -251);
    assert_eq!(cp.balance_cents(&account.id).expect("balance"), 100 - 251);
    let notices: Vec<String> = cp
        .ledger(&account.id)
        .expect("ledger")
        .iter()
        .filter(|e| e.kind == LedgerKind::Notice)
        .map(|e| e.key.split(':').next().unwrap_or("").to_string())
        .collect();
    assert_eq!(notices, vec!["arrears-stop", "release"]);
}

#[tokio::test]
async fn paying_arrears_lifts_the_lock_before_release() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock(Mutex::new(Utc::now())));
    clock.set(0);
    let cp = control_with(dir.path(), clock.clone(), setup());
    let (account, _) = cp.create_account("bob").expect("account");
    let id = cp.create_instances(&account.id, &spec(Purchase::default())).expect("created").ids.remove(0);
    cp.record_event(&id, AgentEvent::Provisioned);
    cp.record_event(&id, AgentEvent::Booted);
    tick_at(&cp, &clock, 3600); // 0.5296 + 0.0556 = 0.5852 → −0.59: arrears from 3600
    tick_at(&cp, &clock, 10_800); // stopped at 3600 + 7200
    cp.record_event(&id, AgentEvent::Halted);
    assert_eq!(cp.instance(&account.id, &id).expect("there").billing.lock, Some(LockReason::Financial));
    // Still in arrears: starting is refused for the lock first.
    cp.top_up(&account.id, 10_000, "pay").expect("top up");
    cp.billing_tick().expect("tick");
    let i = cp.instance(&account.id, &id).expect("there");
    assert_eq!((i.status, i.billing.lock), (InstanceStatus::Stopped, None));
    cp.act(&account.id, std::slice::from_ref(&id), UserAction::Start, None, true, false).expect("start again");
    tick_at(&cp, &clock, 30_000);
    assert!(cp.instance(&account.id, &id).is_ok(), "paid up: never released");
}

fn prepaid(months: u32, renew: Option<u32>) -> Purchase {
    Purchase {
        charge_type: ChargeType::PrePaid,
        period_months: Some(months),
        auto_renew_months: renew,
        ..Purchase::default()
    }
}

/// A month is 730 h: g7.large + disk = 0.5852 × 730 = 427.196 → 427.20 a month. A year:
/// 5126.352 list, 15% off (768.9528) → 4357.3992.
#[tokio::test]
async fn subscriptions_are_paid_up_front_and_renew_or_expire() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock(Mutex::new(Utc::now())));
    clock.set(0); // 2027-01-15T08:00:00Z
    let cp = control_with(dir.path(), clock.clone(), setup());
    let (account, _) = cp.create_account("carol").expect("account");
    assert_eq!(cp.create_instances(&account.id, &spec(prepaid(1, Some(1)))), Err(DomainError::NotEnoughBalance));
    cp.top_up(&account.id, 100_000, "t").expect("top up"); // 1000.00
    let t = cp.catalog().instance_type("ecs.g7.large").expect("type").clone();
    let year = cp.subscription_quote(&t, ("cloud_essd", 40), 12).expect("quote");
    assert_eq!((year.original, year.discount, year.trade), (5_126_352_000, 768_952_800, 4_357_399_200));

    let id = cp.create_instances(&account.id, &spec(prepaid(1, Some(1)))).expect("created").ids.remove(0);
    assert_eq!(cp.balance_cents(&account.id).expect("balance"), 100_000 - 42_720);
    let i = cp.instance(&account.id, &id).expect("there");
    assert_eq!(i.billing.expires_at.map(|e| e.to_rfc3339()), Some("2027-02-15T08:00:00+00:00".to_string()));
    assert!(matches!(
        cp.act(&account.id, std::slice::from_ref(&id), UserAction::Delete { force: true }, None, true, false),
        Err(DomainError::ChargeTypeViolation { .. })
    ));
    cp.record_event(&id, AgentEvent::Provisioned);
    cp.record_event(&id, AgentEvent::Booted);
    // No per-second charges during the term.
    tick_at(&cp, &clock, 20 * 86_400);
    assert!(payg_charges(&cp, &account.id).is_empty());

    // 2027-02-15T08:00 (31 days): renewed for a month, 427.20 charged → 145.60 left.
    tick_at(&cp, &clock, 31 * 86_400);
    let i = cp.instance(&account.id, &id).expect("there");
    assert_eq!(i.billing.expires_at.map(|e| e.to_rfc3339()), Some("2027-03-15T08:00:00+00:00".to_string()));
    assert_eq!(cp.balance_cents(&account.id).expect("balance"), 100_000 - 2 * 42_720);
    // Ticking again renews nothing more.
    cp.billing_tick().expect("tick");
    assert_eq!(cp.balance_cents(&account.id).expect("balance"), 100_000 - 2 * 42_720);

    // 2027-03-15T08:00 (59 days): 145.60 does not cover 427.20: expired, stopped and locked.
    tick_at(&cp, &clock, 59 * 86_400);
    let i = cp.instance(&account.id, &id).expect("there");
    assert_eq!((i.status, i.billing.lock), (InstanceStatus::Stopping, Some(LockReason::Financial)));
    cp.record_event(&id, AgentEvent::Halted);
    // A manual renewal after topping up brings it back.
    cp.top_up(&account.id, 40_000, "t2").expect("top up");
    let exp = cp.renew_instance(&account.id, &id, 1).expect("renewed");
    assert_eq!(exp.to_rfc3339(), "2027-04-15T08:00:00+00:00");
    assert_eq!(cp.instance(&account.id, &id).expect("there").billing.lock, None);
    // Without renewal it would be released a day after expiry: turn auto-renew off, let it lapse.
    cp.set_auto_renew(&account.id, std::slice::from_ref(&id), None).expect("off");
    tick_at(&cp, &clock, 90 * 86_400); // 2027-04-15T08:00: expires
    tick_at(&cp, &clock, 91 * 86_400); // a day later: released
    assert!(matches!(cp.instance(&account.id, &id), Err(DomainError::InstanceNotFound(_))));
    let kinds: Vec<LedgerKind> = cp.ledger(&account.id).expect("ledger").iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        vec![
            LedgerKind::TopUp,
            LedgerKind::Subscription,
            LedgerKind::Renewal,
            LedgerKind::Notice, // expired
            LedgerKind::TopUp,
            LedgerKind::Renewal,
            LedgerKind::Notice, // expired again
            LedgerKind::Notice, // released
        ]
    );
    assert!(payg_charges(&cp, &account.id).is_empty(), "subscription usage is never charged per second");
}

/// The zone (one 64-vCPU, 256 GiB host) starts empty: spot costs 10% of pay-as-you-go, 0.05296
/// for g7.large. Filling it to 62 of 64 vCPUs (96.9%) raises the price to 10 + 90 × 0.9385 =
/// 94.47 → 95%: 0.50312, above a 0.06 limit, so the spot instance is reclaimed with notice.
#[tokio::test]
async fn spot_prices_follow_free_capacity_and_outbid_instances_are_reclaimed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock(Mutex::new(Utc::now())));
    clock.set(0);
    let cp = control_with(dir.path(), clock.clone(), setup());
    let (account, _) = cp.create_account("dave").expect("account");
    cp.top_up(&account.id, 1_000_000, "t").expect("top up");
    cp.billing_tick().expect("first market");
    let q = cp.spot_quotes("ecs.g7.large", None).expect("quotes");
    assert_eq!((q[0].percent, q[0].hourly, q[0].origin), (10, 52_960, 529_600));
    let spot = |limit: Option<i64>, strategy| Purchase {
        spot_strategy: strategy,
        spot_price_limit_micros: limit,
        spot_duration_h: 0,
        ..Purchase::default()
    };
    assert!(matches!(
        cp.create_instances(&account.id, &spec(spot(Some(50_000), SpotStrategy::SpotWithPriceLimit))),
        Err(DomainError::SpotPriceTooLow { .. })
    ));
    let bid =
        cp.create_instances(&account.id, &spec(spot(Some(60_000), SpotStrategy::SpotWithPriceLimit))).expect("bid");
    let go = cp.create_instances(&account.id, &spec(spot(None, SpotStrategy::SpotAsPriceGo))).expect("go");
    let mut fill = spec(Purchase::default());
    fill.amount = 29;
    cp.create_instances(&account.id, &fill).expect("fill");
    // Not repriced until the market's next turn.
    tick_at(&cp, &clock, 299);
    assert_eq!(cp.spot_quotes("ecs.g7.large", None).expect("quotes")[0].percent, 10);
    tick_at(&cp, &clock, 300);
    assert_eq!(cp.spot_quotes("ecs.g7.large", None).expect("quotes")[0].percent, 95);
    let i = cp.instance(&account.id, &bid.ids[0]).expect("there");
    assert_eq!(i.billing.lock, Some(LockReason::Recycling));
    assert_eq!(i.billing.release_at.map(|t| t.timestamp() - clock.now_s()), Some(300), "5 minutes' notice");
    assert_eq!(cp.instance(&account.id, &go.ids[0]).expect("there").billing.lock, None, "SpotAsPriceGo stays");
    tick_at(&cp, &clock, 599);
    assert!(cp.instance(&account.id, &bid.ids[0]).is_ok());
    tick_at(&cp, &clock, 600);
    assert!(matches!(cp.instance(&account.id, &bid.ids[0]), Err(DomainError::InstanceNotFound(_))));
    // History: 10% from the start, 95% from 300 (released capacity does not move it back until
    // the next turn of the market).
    let h = cp.spot_history("ecs.g7.large", None, 0, i64::MAX).expect("history");
    let pts: Vec<u32> = h.iter().map(|q| q.percent).collect();
    assert_eq!(pts, vec![10, 95]);
}

/// Converting a one-month subscription (427.20 for 2027-01-15 → 02-15, 31 days) to pay-as-you-go
/// after 10 days refunds 21/31 of it: 427.20 × 21 / 31 = 289.3935… → 289.39. From then on usage
/// is charged per second: the next hour of g7.large + disk is 0.5852 → 0.59.
#[tokio::test]
async fn a_subscription_converted_to_pay_as_you_go_is_refunded_pro_rata() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock(Mutex::new(Utc::now())));
    clock.set(0);
    let cp = control_with(dir.path(), clock.clone(), setup());
    let (account, _) = cp.create_account("erin").expect("account");
    cp.top_up(&account.id, 50_000, "t").expect("top up");
    let id = cp.create_instances(&account.id, &spec(prepaid(1, None))).expect("created").ids.remove(0);
    cp.record_event(&id, AgentEvent::Provisioned);
    cp.record_event(&id, AgentEvent::Booted);
    clock.set(10 * 86_400);
    let ids = vec![id.clone()];
    assert_eq!(cp.convert_charge_type(&account.id, &ids, ChargeType::PostPaid, None, true), Err(DomainError::DryRunOk));
    let fees = cp.convert_charge_type(&account.id, &ids, ChargeType::PostPaid, None, false).expect("converted");
    assert_eq!(fees, vec![(id.clone(), -28_939)]);
    assert_eq!(cp.balance_cents(&account.id).expect("balance"), 50_000 - 42_720 + 28_939);
    assert!(matches!(
        cp.convert_charge_type(&account.id, &ids, ChargeType::PostPaid, None, false),
        Err(DomainError::ChargeTypeViolation { .. })
    ));
    // The conversion survives a restart.
    drop(cp);
    let cp = control_with(dir.path(), clock.clone(), setup());
    assert_eq!(cp.instance(&account.id, &id).expect("there").charge_type, ChargeType::PostPaid);
    tick_at(&cp, &clock, 10 * 86_400 + 3600);
    assert_eq!(payg_charges(&cp, &account.id), vec![-59]);
    // Now an ordinary pay-as-you-go instance: it can be released.
    cp.act(&account.id, &ids, UserAction::Delete { force: true }, None, true, false).expect("deleted");
}

/// Before the billing loop has priced the market, a spot bid is checked against the price
/// computed from the zone's live allocation, while the scheduler's state is held: this must
/// neither deadlock nor skip the check. The placed instance counts: 2 of 64 vCPUs used is
/// 10 + ⌈90 × 0.03125²⌉ = 11% of 0.5296 = 0.058256.
#[tokio::test(flavor = "multi_thread")]
async fn a_spot_bid_before_the_first_market_tick_is_checked_against_live_capacity() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock(Mutex::new(Utc::now())));
    clock.set(0);
    let cp = control_with(dir.path(), clock.clone(), setup());
    let (account, _) = cp.create_account("frank").expect("account");
    let bid = |limit| Purchase {
        spot_strategy: SpotStrategy::SpotWithPriceLimit,
        spot_price_limit_micros: Some(limit),
        ..Purchase::default()
    };
    let (tx, rx) = std::sync::mpsc::channel();
    let worker = cp.clone();
    let acct = account.id.clone();
    std::thread::spawn(move || {
        let low = worker.create_instances(&acct, &spec(bid(58_255)));
        let high = worker.create_instances(&acct, &spec(bid(58_256)));
        let _ = tx.send((low, high));
    });
    let (low, high) = rx.recv_timeout(Duration::from_secs(20)).expect("no deadlock");
    assert!(matches!(low, Err(DomainError::SpotPriceTooLow { .. })), "{low:?}");
    assert_eq!(high.expect("a bid at the price").ids.len(), 1);
}
