//! Listings are oldest first — by creation time, then id — whatever happens to the instances
//! after they were made, and across a restart.

mod common;

use std::sync::{Arc, Mutex};

use chrono::Utc;
use common::{control, spec, ManualClock};
use feiyun_domain::instance::{AgentEvent, InstanceStatus, UserAction};
use feiyun_domain::ops::{InstanceFilter, Purchase};

#[test]
fn instances_are_listed_oldest_first_then_by_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock(Mutex::new(Utc::now())));
    clock.set(100);
    let cp = control(dir.path(), clock.clone());
    let (account, _) = cp.create_account("alice").expect("account");
    let mut several = spec(Purchase::default());
    several.amount = 3;
    let mut later = cp.create_instances(&account.id, &several).expect("created").ids;
    later.sort();
    // A clock that went back: made after, listed before.
    clock.set(50);
    let earlier = cp.create_instances(&account.id, &spec(Purchase::default())).expect("created").ids;
    let expected: Vec<String> = earlier.iter().chain(&later).cloned().collect();
    let listed = |cp: &feiyun_control::ControlPlane| -> Vec<String> {
        cp.describe_instances(&account.id, &InstanceFilter::default()).into_iter().map(|i| i.id).collect()
    };
    assert_eq!(listed(&cp), expected);
    // Changes keep the order; a released instance leaves the list.
    clock.set(200);
    for id in &later[..2] {
        cp.record_event(id, AgentEvent::Provisioned);
        cp.record_event(id, AgentEvent::Booted);
    }
    cp.act(&account.id, &later[1..2], UserAction::Delete { force: true }, None, true, false).expect("delete");
    let mut kept = expected.clone();
    kept.retain(|i| *i != later[1]);
    assert_eq!(listed(&cp), kept);
    cp.record_event(&later[1], AgentEvent::Cleaned);
    assert_eq!(listed(&cp), kept);
    // Pages, with and without a filter, are slices of the same list.
    let page = |f: &InstanceFilter, offset: usize, size: usize| {
        cp.with_instance_page(&account.id, f, offset, size, |total, p| {
            (total, p.iter().map(|i| i.id.clone()).collect::<Vec<_>>())
        })
    };
    let all = InstanceFilter::default();
    assert_eq!(page(&all, 1, 2), (3, kept[1..3].to_vec()));
    assert_eq!(page(&all, 2, 10), (3, kept[2..].to_vec()));
    assert_eq!(page(&all, 5, 10), (3, vec![]));
    let running = InstanceFilter { statuses: Some(vec![InstanceStatus::Running]), ..Default::default() };
    assert_eq!(page(&running, 0, 10), (1, vec![later[0].clone()]));
    assert_eq!(page(&running, 1, 10), (1, vec![]));
    assert_eq!(cp.with_instance_page("someone-else", &all, 0, 10, |total, p| (total, p.len())), (0, 0));
    // The same order after a restart.
    drop(cp);
    let cp = control(dir.path(), clock);
    assert_eq!(listed(&cp), kept);
}
